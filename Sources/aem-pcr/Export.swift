// SPDX-License-Identifier: Apache-2.0
import AEMPCR
import ArgumentParser
import Glibc

/// What `predict` prints: the report, or values for a remote verifier or a TPM policy.
enum PredictFormat: String, ExpressibleByArgument, CaseIterable {
    /// The explained prediction (default).
    case text
    /// The prediction as one JSON object (the same as `--json`).
    case json
    /// A Keylime `tpm_policy` object: `{"17": ["<hex>", …], …}`, one bank.
    case keylime
    /// The PCR values file `tpm2_policypcr -f` reads: the selected PCRs' values of one bank,
    /// concatenated in ascending PCR order, raw bytes.
    case tpm2PCR = "tpm2-pcr"
}

/// Which boots a Keylime policy accepts.
enum AcceptedBoot: String, CaseIterable {
    case current, predicted
}

/// The fleet exports of `predict --format keylime|tpm2-pcr`.
enum Export {
    /// The DRTM PCRs a measured launch policy names (Anti Evil Maid seals these).
    static let drtmPCRs: [PCRIndex] = [17, 18, 19]

    /// The one bank to export: the `--bank` given, else sha256. Both exports are for TPM 2.0
    /// only: Keylime dropped TPM 1.2 (its agent and verifier speak TPM 2.0 alone since 2022),
    /// and `tpm2_policypcr` builds a TPM 2.0 policy; a TPM 1.2 prediction is refused.
    static func bank(_ requested: [HashAlgorithm], tpm: TPMFamily, format: PredictFormat) throws -> HashAlgorithm {
        if tpm == .tpm12 {
            let user = format == .keylime ? "Keylime supports TPM 2.0 only (it dropped TPM 1.2)"
                : "tpm2_policypcr builds TPM 2.0 policies only"
            throw CodedError(.usage, "--format \(format.rawValue) is for a TPM 2.0 and this prediction is for a TPM 1.2: \(user); use --format json or text")
        }
        let unique = Array(Set(requested)).sorted()
        if unique.count > 1 {
            throw CodedError(.usage, "--format \(format.rawValue) exports one bank; give one --bank (got \(unique.map(\.description).joined(separator: ", ")))")
        }
        return unique.first ?? .sha256
    }

    /// Parses `--accept current,predicted`.
    static func accepted(_ value: String?) throws -> [AcceptedBoot] {
        guard let value else { return [.predicted] }
        var out = [AcceptedBoot]()
        for word in value.split(separator: ",", omittingEmptySubsequences: false) {
            guard let a = AcceptedBoot(rawValue: String(word)) else {
                throw CodedError(.usage, "--accept '\(value)': '\(word)' is neither current nor predicted (give current,predicted or one of them)")
            }
            if !out.contains(a) { out.append(a) }
        }
        return out
    }

    /// The PCRs of `bank` among 17–19 that the prediction fully knows; an error naming the bank
    /// when it knows none.
    static func known(_ pcrs: PCRValues, bank: HashAlgorithm) throws -> [PCRIndex] {
        let known = drtmPCRs.filter { pcrs[bank, $0] != nil }
        if known.isEmpty {
            let have = pcrs.banks.filter { !pcrs.pcrs(in: $0).isEmpty }.map(\.description)
            throw CodedError(.usage, "the prediction fixes no DRTM PCR in the \(bank) bank\(have.isEmpty ? "" : " (it has \(have.joined(separator: ", ")); choose with --bank)")")
        }
        return known
    }

    /// `{"17": [...], "18": [...], "19": [...]}`: Keylime's `tpm_policy`, lowercase hex, each
    /// PCR's accepted values in the order asked (current, then predicted), each value once.
    static func keylime(predicted: PCRValues, current: PCRValues?, bank: HashAlgorithm,
                        accept: [AcceptedBoot]) throws -> JSON {
        let pcrs = try known(predicted, bank: bank)
        var members = [(String, JSON)]()
        for pcr in pcrs {
            var values = [String]()
            for a in accept {
                let v: Digest?
                switch a {
                case .predicted: v = predicted[bank, pcr]
                case .current: v = current?[bank, pcr]
                }
                guard let v else {
                    throw CodedError(.usage, "--accept current: the current boot's PCR\(pcr) \(bank) is not in the event log")
                }
                if !values.contains(v.hex) { values.append(v.hex) }
            }
            members.append((String(pcr.rawValue), .array(values.map { .string($0) })))
        }
        return JSON.object(members)
    }

    /// The raw values `tpm2_policypcr -l BANK:17,18,19 -f FILE` reads, and that selection:
    /// always the three DRTM PCRs (what `--help` and the manual promise), or an error naming
    /// those the prediction does not fix (a file with fewer values would not match the
    /// selection: tpm2_policypcr rejects it).
    static func tpm2PCRFile(predicted: PCRValues, bank: HashAlgorithm) throws -> (bytes: [UInt8], selection: String) {
        let missing = drtmPCRs.filter { predicted[bank, $0] == nil }
        if !missing.isEmpty {
            throw CodedError(.usage, "--format tpm2-pcr writes PCR17, PCR18 and PCR19 and the prediction does not fix \(missing.map { "PCR\($0)" }.joined(separator: ", ")) in the \(bank) bank (SINIT's events): predict from the current boot (--live, or --event-log FILE --pcrs FILE)")
        }
        let bytes = drtmPCRs.flatMap { predicted[bank, $0]!.bytes }
        return (bytes, "\(bank):" + drtmPCRs.map { String($0.rawValue) }.joined(separator: ","))
    }

    /// Writes binary output to standard output, never to a terminal.
    static func writeBinary(_ bytes: [UInt8]) throws {
        try Terminal.outputBinary(bytes, refusing: "--format tpm2-pcr writes binary PCR values; redirect standard output to a file (> pcrs.bin)")
    }
}
