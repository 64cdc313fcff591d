// SPDX-License-Identifier: Apache-2.0
/// tboot's verified-launch policy (`include/tb_policy.h`, packed little-endian), as written by
/// `tb_polgen` or built into tboot as a default.
public struct TbootPolicy: Sendable, Equatable {
    /// `mod_num` of an entry that matches any module (`TB_POL_MOD_NUM_ANY`).
    public static let anyModule: UInt8 = 129
    /// `TB_POL_MOD_NUM_NV`: hash of a TPM NV index (TPM 1.2, `measure_nv`).
    public static let nvModule: UInt8 = 130
    /// `TB_POL_MOD_NUM_NV_RAW`: raw contents of a TPM NV index.
    public static let nvRawModule: UInt8 = 131
    /// `pcr` of an entry whose modules are not extended (`TB_POL_PCR_NONE`).
    public static let noPCR: UInt8 = 255

    public enum PolicyType: UInt8, Sendable {
        /// `TB_POLTYPE_CONT_NON_FATAL`: verification failures are ignored.
        case continueNonFatal = 0
        /// `TB_POLTYPE_CONT_VERIFY_FAIL`: continue (with TPM caps) on hash mismatch, halt on others.
        case continueVerifyFail = 1
        /// `TB_POLTYPE_HALT`: any failure halts.
        case halt = 2
    }

    public struct Entry: Sendable, Equatable {
        public var moduleNumber: UInt8
        public var pcr: UInt8
        /// `TB_HTYPE_ANY` 0, `TB_HTYPE_IMAGE` 1.
        public var hashType: UInt8
        public var nvIndex: UInt32
        public var hashes: [[UInt8]]

        public var matchesAnyModule: Bool { moduleNumber == TbootPolicy.anyModule }
        public var isNV: Bool { moduleNumber == TbootPolicy.nvModule || moduleNumber == TbootPolicy.nvRawModule }
        /// The PCR, or nil for "none".
        public var pcrIndex: PCRIndex? { pcr == TbootPolicy.noPCR ? nil : PCRIndex(rawValue: UInt32(pcr)) }
    }

    public var version: UInt8
    public var policyType: PolicyType
    /// `TB_HALG_*` = TPM_ALG_ID low byte (0 = old SHA-1 id, normalised to 4 when loaded from NV).
    public var hashAlgorithmByte: UInt8
    public var control: UInt32
    public var reserved: UInt32
    public var entries: [Entry]
    /// Where it came from, for messages.
    public var source: String

    /// `TB_POLCTL_EXTEND_PCR17`: whether the policy's own hash goes into the policy event.
    public var extendsPolicyHash: Bool { control & 1 != 0 }

    /// The algorithm of the entries' hashes.
    public var hashAlgorithm: HashAlgorithm {
        HashAlgorithm(rawValue: hashAlgorithmByte == 0 ? 4 : UInt16(hashAlgorithmByte))
    }

    /// Parses policy bytes (a `tb_polgen` file or an NV index dump). Every field is checked and
    /// the exact size must match; errors name the byte offset.
    public init(bytes: [UInt8], source: String) throws {
        self.source = source
        func fail(_ at: Int, _ why: String) -> CodedError {
            CodedError(.policyMalformed, source: source, offset: at, why)
        }
        guard bytes.count >= 12 else {
            throw fail(bytes.count, "policy is \(bytes.count) bytes; the header alone is 12 (is this a tb_polgen file?)")
        }
        func u32(_ o: Int) -> UInt32 {
            UInt32(bytes[o]) | UInt32(bytes[o + 1]) << 8 | UInt32(bytes[o + 2]) << 16 | UInt32(bytes[o + 3]) << 24
        }
        version = bytes[0]
        guard version == 2 else { throw fail(0, "policy version \(version); tboot reads version 2 only") }
        guard let t = PolicyType(rawValue: bytes[1]) else {
            throw fail(1, "policy type \(bytes[1]) unknown (0 nonfatal, 1 continue, 2 halt)")
        }
        policyType = t
        hashAlgorithmByte = bytes[2]
        let alg = HashAlgorithm(rawValue: hashAlgorithmByte == 0 ? 4 : UInt16(hashAlgorithmByte))
        guard let size = alg.digestSize else {
            throw fail(2, "hash algorithm \(hex0x(bytes[2], width: 2)) unknown (04 sha1, 0b sha256, 0c sha384, 0d sha512)")
        }
        control = u32(3)
        reserved = u32(7)
        let count = Int(bytes[11])
        var entries = [Entry]()
        var o = 12
        for i in 0..<count {
            guard bytes.count - o >= 8 else {
                throw fail(o, "entry \(i) of \(count) is cut short: 8 header bytes needed, \(bytes.count - o) left")
            }
            var e = Entry(moduleNumber: bytes[o], pcr: bytes[o + 1], hashType: bytes[o + 2],
                          nvIndex: u32(o + 3), hashes: [])
            let nh = Int(bytes[o + 7])
            guard e.hashType <= 1 else { throw fail(o + 2, "entry \(i): hash type \(e.hashType) unknown (0 any, 1 image)") }
            guard e.pcr == TbootPolicy.noPCR || e.pcr <= 23 else {
                throw fail(o + 1, "entry \(i): PCR \(e.pcr) does not exist (0–23 or 255 for none)")
            }
            guard e.moduleNumber <= 127 || e.moduleNumber == TbootPolicy.anyModule || e.isNV else {
                throw fail(o, "entry \(i): module number \(e.moduleNumber) is invalid (0–127, 129 any, 130/131 NV)")
            }
            o += 8
            guard (bytes.count - o) / size >= nh else {
                throw fail(o, "entry \(i) declares \(nh) hashes of \(size) bytes; only \(bytes.count - o) bytes left")
            }
            for _ in 0..<nh {
                e.hashes.append(Array(bytes[o..<(o + size)]))
                o += size
            }
            entries.append(e)
        }
        guard o == bytes.count else {
            throw fail(o, "\(bytes.count - o) bytes after the last of \(count) entries; the policy size does not match its contents")
        }
        self.entries = entries
    }

    /// The policy bytes tboot hashes (`calc_policy_size`), with `hash_alg` 0 written as 4 when
    /// the policy was loaded from NV (tboot `policy.c: set_policy`).
    public func bytes(normalisingHashAlgorithm: Bool) -> [UInt8] {
        var b = [UInt8]()
        func le32(_ v: UInt32) { for k in 0..<4 { b.append(UInt8(truncatingIfNeeded: v >> (8 * k))) } }
        b.append(version)
        b.append(policyType.rawValue)
        b.append(normalisingHashAlgorithm && hashAlgorithmByte == 0 ? 4 : hashAlgorithmByte)
        le32(control)
        le32(reserved)
        b.append(UInt8(entries.count))
        for e in entries {
            b.append(e.moduleNumber)
            b.append(e.pcr)
            b.append(e.hashType)
            le32(e.nvIndex)
            b.append(UInt8(e.hashes.count))
            for h in e.hashes { b.append(contentsOf: h) }
        }
        return b
    }

    /// The first entry for module `i`, in file order (`find_policy_entry`).
    public func entry(forModule i: Int) -> Entry? {
        entries.first { !$0.isNV && (Int($0.moduleNumber) == i || $0.matchesAnyModule) }
    }

    // MARK: default policies (tboot `policy.c`)

    private static func builtIn(_ hex: String, _ name: String) -> TbootPolicy {
        try! TbootPolicy(bytes: Hex.decode(hex)!, source: name)
    }

    /// The policy tboot uses when TPM NV holds none, by release, TPM family and mapping.
    public static func defaultPolicy(for c: LaunchConfiguration) -> TbootPolicy {
        let v = c.tbootVersion
        let alg = v < TbootVersion(1, 9, 12) ? "04" : "0b"
        // Entries: {0 → none}, {any → 19 or 17}, {NV raw 0x40000010 → 22}.
        func policy(_ alg: String, anyPCR: String, _ name: String) -> TbootPolicy {
            builtIn("0200" + alg + "0100000000000000" + "03" + "00ff000000000000" + "81" + anyPCR + "000000000000"
                    + "8316001000004000", name)
        }
        if v >= TbootVersion(1, 10, 0), c.tpm == .tpm12 {
            return policy("04", anyPCR: "13", "built-in _def_policy_12 (tboot \(v))")
        }
        return c.usesDA ? policy(alg, anyPCR: "11", "built-in _def_policy_da (tboot \(v))")
                        : policy(alg, anyPCR: "13", "built-in _def_policy (tboot \(v))")
    }

    // MARK: the policy event

    /// `E = H_bank( LE32(policy_control) || H_cur(policy) )` (`policy.c: verify_g_policy`), where
    /// `H_cur` is the FIXED algorithm (SHA-256 under embedded/agile) and zeros replace it when
    /// bit 0 of policy_control is clear. `fromNV` applies tboot's hash_alg 0 → 4 fix-up.
    public func policyEvent(bank: HashAlgorithm, current: HashAlgorithm, fromNV: Bool) -> Digest {
        var buf = [UInt8]()
        for k in 0..<4 { buf.append(UInt8(truncatingIfNeeded: control >> (8 * k))) }
        if extendsPolicyHash {
            buf += MultiHasher.hash(current, bytes(normalisingHashAlgorithm: fromNV)).bytes
        } else {
            buf += [UInt8](repeating: 0, count: current.digestSize!)
        }
        return MultiHasher.hash(bank, buf)
    }
}
