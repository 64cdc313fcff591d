// SPDX-License-Identifier: Apache-2.0
/// What a TPM 2.0 enforces before it unseals AEM's sealing object, read from the files AEM keeps
/// beside it (`key.pub`, `key.pcrs`) without a TPM: the object's `authPolicy` and `nameAlg`
/// from its public area, the PCR selection `tpm2_unseal -p pcr:$(cat key.pcrs)` starts its
/// policy session with. The object unseals for AEM on a boot iff the PolicyPCR (SHA-256, the
/// hash of tpm2_unseal's session, which must be the object's nameAlg) of that boot's PCRs over
/// the selection equals `authPolicy`; AEM's object has no other policy.
public struct SealedObjectPublic: Sendable, Equatable {
    /// `TPM_ALG_KEYEDHASH`: a sealed data object (TPM 2.0 Part 2, 12.2.3.2).
    public static let keyedHash: UInt16 = 0x0008
    /// `TPM_ALG_NULL`
    public static let algNull: UInt16 = 0x0010
    /// `TPM_ALG_HMAC`, `TPM_ALG_XOR`: the other keyed-hash schemes.
    public static let algHMAC: UInt16 = 0x0005
    public static let algXOR: UInt16 = 0x000A

    /// The object's name algorithm: also the hash of its policy session.
    public let nameAlg: HashAlgorithm
    public let objectAttributes: UInt32
    /// The policy digest the TPM compares at TPM2_Unseal (empty: no policy).
    public let authPolicy: [UInt8]

    /// Reads a marshaled `TPM2B_PUBLIC` as tpm2_create writes `-u key.pub` (TPM 2.0 Part 2,
    /// 12.2.5 and 12.2.4): `u16 size`, then a `TPMT_PUBLIC` of exactly that size — `type`
    /// (keyed hash), `nameAlg`, `objectAttributes`, `authPolicy` (a `TPM2B_DIGEST`), the
    /// keyed-hash scheme and its details, `unique` (a `TPM2B_DIGEST`). Every length is checked
    /// against what remains; nothing may follow. Errors name `source` and the byte offset.
    public init(parsing bytes: [UInt8], source: String) throws {
        var r = SealedObjectReader(bytes: bytes, source: source)
        let size = try r.u16("the TPM2B_PUBLIC size")
        guard Int(size) == bytes.count - 2 else {
            throw r.bad(at: 0, "the TPM2B_PUBLIC size is \(size) but \(bytes.count - 2) bytes follow (not a key.pub written by tpm2_create)")
        }
        let typeAt = r.offset
        let type = try r.u16("type")
        guard type == Self.keyedHash else {
            throw r.bad(at: typeAt, "type 0x\(String(type, radix: 16)) is not a sealed data object (TPM_ALG_KEYEDHASH, 0x8)")
        }
        let algAt = r.offset
        let alg = HashAlgorithm(rawValue: try r.u16("nameAlg"))
        guard alg.isComputable, let digestSize = alg.digestSize else {
            throw r.bad(at: algAt, "nameAlg \(alg) is not a hash this tool computes (sha1, sha256, sha384, sha512)")
        }
        nameAlg = alg
        objectAttributes = try r.u32("objectAttributes")
        let policyAt = r.offset
        let policySize = Int(try r.u16("the authPolicy size"))
        guard policySize == 0 || policySize == digestSize else {
            throw r.bad(at: policyAt, "authPolicy of \(policySize) bytes; a \(alg) policy has \(digestSize)")
        }
        authPolicy = try r.bytes(policySize, "authPolicy")
        let schemeAt = r.offset
        switch try r.u16("the keyed-hash scheme") {
        case Self.algNull:
            break
        case Self.algHMAC:
            _ = try r.u16("the HMAC scheme's hash")
        case Self.algXOR:
            _ = try r.u16("the XOR scheme's hash")
            _ = try r.u16("the XOR scheme's KDF")
        case let other:
            throw r.bad(at: schemeAt, "keyed-hash scheme 0x\(String(other, radix: 16)) is none of NULL, HMAC, XOR")
        }
        let uniqueAt = r.offset
        let uniqueSize = Int(try r.u16("the unique size"))
        guard uniqueSize <= 64 else {
            throw r.bad(at: uniqueAt, "unique of \(uniqueSize) bytes (a digest has at most 64)")
        }
        _ = try r.bytes(uniqueSize, "unique")
        guard r.offset == bytes.count else {
            throw r.bad(at: r.offset, "\(bytes.count - r.offset) bytes after the public area")
        }
    }
}

extension PCRSelection {
    /// `key.pcrs` as AEM writes it (`echo "$_pcrs" > key.pcrs`, `_pcrs` such as
    /// `sha256:13,17,18,19`): tpm2-tools' selection, then one newline, nothing else — no blank,
    /// no empty field, decimal indices. `tpm2_unseal -p pcr:$(cat key.pcrs)` selects these PCRs.
    public init(keyPCRsFile bytes: [UInt8], source: String) throws {
        func bad(_ why: String) -> CodedError { CodedError(.sealedObjectInvalid, "\(source): \(why)") }
        guard bytes.last == 0x0A else { throw bad("does not end in a newline (AEM writes it with echo)") }
        let body = bytes.dropLast()
        for (i, b) in body.enumerated() {
            let ok = (b >= 0x30 && b <= 0x39) || (b >= 0x61 && b <= 0x7A) || b == 0x3A || b == 0x2C || b == 0x2B || b == 0x5F
            guard ok else { throw bad("byte \(i) (0x\(String(b, radix: 16))) is not part of a selection such as sha256:13,17,18,19") }
        }
        let text = String(decoding: body, as: UTF8.self)
        for part in text.split(separator: "+", omittingEmptySubsequences: false) {
            let fields = part.split(separator: ":", omittingEmptySubsequences: false)
            guard fields.count == 2, !fields[1].split(separator: ",", omittingEmptySubsequences: false).contains(where: \.isEmpty) else {
                throw bad("'\(part)' is not bank:pcr,pcr,… (such as sha256:13,17,18,19)")
            }
        }
        do {
            try self.init(parsing: text)
        } catch let e as CodedError {
            throw bad(e.reason)
        }
    }
}

/// Big-endian reads that check what remains first; errors name the file and offset.
struct SealedObjectReader {
    let bytes: [UInt8]
    let source: String
    var offset = 0

    func bad(at offset: Int, _ why: String) -> CodedError {
        CodedError(.sealedObjectInvalid, "\(source): byte \(offset): \(why)")
    }

    mutating func bytes(_ n: Int, _ what: String) throws -> [UInt8] {
        guard n <= bytes.count - offset else {
            throw bad(at: offset, "\(what) needs \(n) bytes, \(bytes.count - offset) remain (a truncated key.pub)")
        }
        defer { offset += n }
        return Array(bytes[offset..<offset + n])
    }

    mutating func u16(_ what: String) throws -> UInt16 {
        let b = try bytes(2, what)
        return UInt16(b[0]) << 8 | UInt16(b[1])
    }

    mutating func u32(_ what: String) throws -> UInt32 {
        try bytes(4, what).reduce(0) { $0 << 8 | UInt32($1) }
    }
}
