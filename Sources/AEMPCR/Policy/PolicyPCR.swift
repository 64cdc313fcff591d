// SPDX-License-Identifier: Apache-2.0
/// The PCRs a TPM 2.0 policy names: banks in the order given, each with its PCRs (a
/// `TPML_PCR_SELECTION`), written as tpm2-tools writes it: `sha256:13,17,18,19+sha1:17`.
public struct PCRSelection: Equatable, Sendable, CustomStringConvertible {
    public struct Bank: Equatable, Sendable {
        public let algorithm: HashAlgorithm
        /// Ascending, each once.
        public let pcrs: [PCRIndex]
    }

    public let banks: [Bank]

    /// `pcrs` in each of `banks`, banks in the order given.
    public init(banks: [HashAlgorithm], pcrs: [PCRIndex]) throws {
        try self.init(banks.map { ($0, pcrs) })
    }

    public init(_ selection: [(HashAlgorithm, [PCRIndex])]) throws {
        var out = [Bank]()
        for (algorithm, pcrs) in selection {
            guard algorithm.isComputable else {
                throw CodedError(.policySelection, "bank \(algorithm): not a bank this tool can hash (sha1, sha256, sha384, sha512)")
            }
            if out.contains(where: { $0.algorithm == algorithm }) {
                throw CodedError(.policySelection, "bank \(algorithm) selected twice")
            }
            if pcrs.isEmpty { throw CodedError(.policySelection, "bank \(algorithm): no PCR selected") }
            for p in pcrs where p.rawValue > 23 {
                throw CodedError(.policySelection, "PCR\(p.rawValue) does not exist (a PC TPM has PCR0–23)")
            }
            out.append(Bank(algorithm: algorithm, pcrs: Array(Set(pcrs)).sorted()))
        }
        if out.isEmpty { throw CodedError(.policySelection, "no bank selected") }
        banks = out
    }

    /// tpm2-tools' notation: `bank:i,j,…` joined by `+`.
    public init(parsing text: String) throws {
        var selection = [(HashAlgorithm, [PCRIndex])]()
        for part in text.split(separator: "+", omittingEmptySubsequences: false) {
            let fields = part.split(separator: ":", omittingEmptySubsequences: false)
            guard fields.count == 2, let bank = HashAlgorithm(name: String(fields[0])) else {
                throw CodedError(.policySelection, "'\(printable(String(part)))' is not 'bank:pcr,pcr,…' (e.g. sha256:13,17,18,19)")
            }
            selection.append((bank, try PCRSelection.indices(String(fields[1]))))
        }
        try self.init(selection)
    }

    /// A list such as `13,17,18,19`.
    public static func indices(_ text: String) throws -> [PCRIndex] {
        try text.split(separator: ",", omittingEmptySubsequences: false).map { field in
            guard let n = UInt32(String(field).trimmingBlanks()), n <= 23 else {
                throw CodedError(.policySelection, "'\(printable(String(field)))' is not a PCR index (0–23)")
            }
            return PCRIndex(rawValue: n)
        }
    }

    public var description: String {
        banks.map { "\($0.algorithm):" + $0.pcrs.map { String($0.rawValue) }.joined(separator: ",") }
            .joined(separator: "+")
    }

    /// The `TPML_PCR_SELECTION` as TPM2_PolicyPCR receives it: a 32-bit count, then per bank the
    /// 16-bit algorithm, `sizeofSelect` (3: PCR0–23) and the bitmap (PCR n is bit n%8 of byte
    /// n/8). Big-endian, as the TPM marshals.
    public var marshaled: [UInt8] {
        var out = bigEndian(UInt32(banks.count))
        for b in banks {
            out += bigEndian(b.algorithm.rawValue)
            var bitmap: [UInt8] = [0, 0, 0]
            for p in b.pcrs { bitmap[Int(p.rawValue / 8)] |= UInt8(1) << (p.rawValue % 8) }
            out += [3] + bitmap
        }
        return out
    }
}

/// TPM2_PolicyPCR computed offline, as a trial session on a TPM holding the same values computes it.
///
/// TPM 2.0 Part 3, PolicyPCR: `policyDigest' = H(policyDigest || TPM_CC_PolicyPCR || pcrs ||
/// pcrDigest)`, with `pcrDigest = H(the selected PCR values, bank after bank in the selection's
/// order, each bank's PCRs ascending)`, every H the policy session's hash (SHA-256 for AEM).
public enum PolicyPCR {
    /// `TPM_CC_PolicyPCR`
    public static let commandCode: UInt32 = 0x0000_017F

    /// The selected values, in the order `pcrDigest` hashes them; an error names the first missing one.
    public static func selectedValues(_ selection: PCRSelection, values: PCRValues) throws -> [Digest] {
        var out = [Digest]()
        for bank in selection.banks {
            for pcr in bank.pcrs {
                guard let v = values[bank.algorithm, pcr] else {
                    throw CodedError(.policyMissingValue, "no value for PCR\(pcr) in bank \(bank.algorithm)")
                }
                out.append(v)
            }
        }
        return out
    }

    /// The policy digest after one TPM2_PolicyPCR, from `start` (a fresh session: all zeros).
    public static func digest(_ selection: PCRSelection, values: PCRValues,
                              policyHash: HashAlgorithm = .sha256, start: Digest? = nil) throws -> Digest {
        guard policyHash.isComputable else {
            throw CodedError(.policySelection, "policy hash \(policyHash) is not one this tool can compute")
        }
        if let s = start, s.algorithm != policyHash {
            throw CodedError(.policySelection, "the starting policy digest is \(s.algorithm), the policy hash \(policyHash)")
        }
        let selected = try selectedValues(selection, values: values)
        let pcrDigest = MultiHasher.hash(policyHash, selected.flatMap(\.bytes))
        let old = start ?? .zeros(policyHash)
        return MultiHasher.hash(policyHash, old.bytes + bigEndian(commandCode) + selection.marshaled + pcrDigest.bytes)
    }
}

extension PCRValues {
    /// These values with every value of `later` put in their place, PCR by PCR and bank by
    /// bank: predicted PCR17–19 over the current PCR13, for example.
    public func overridden(by later: PCRValues) -> PCRValues {
        var out = self
        for bank in later.banks {
            for pcr in later.pcrs(in: bank) { out[bank, pcr] = later[bank, pcr] }
        }
        return out
    }
}

func bigEndian<T: FixedWidthInteger>(_ value: T) -> [UInt8] {
    withUnsafeBytes(of: value.bigEndian) { Array($0) }
}
