// SPDX-License-Identifier: Apache-2.0
/// Compares a DRTM log's replay with PCR values read from the TPM (STYLE 6: a parsed log is
/// untrusted until its replay matches the PCRs). Returns a report, not a bare error.
public struct VerificationReport: Sendable {
    public enum Status: String, Sendable {
        /// Replay equals the TPM's value.
        case match
        /// Replay differs from the TPM's value.
        case mismatch
        /// The PCR file has no value for this PCR and bank.
        case notObserved = "not-observed"
    }

    public struct Row: Sendable {
        public var pcr: PCRIndex
        public var bank: HashAlgorithm
        /// Replay of the log (zeros when the log has no event for this PCR).
        public var calculated: Digest
        public var observed: Digest?
        public var status: Status
        /// The log extends this bank for only some of the PCR's events.
        public var partial: Bool
        /// Why it differs, when that can be told (no launch, log without this bank's events).
        public var explanation: String?
        /// The log has events for this PCR in this bank.
        public var extendedByLog: Bool
    }

    public var rows: [Row]
    /// Events whose data is present but whose digest is not the hash of that data.
    public var dataMismatches: [DataDigestMismatch]
    /// Banks in the PCR file that the log does not cover.
    public var banksNotInLog: [HashAlgorithm]

    /// PCRs and banks the log extends that the PCR file lacks: the log is not verified there.
    public var missing: [Row] { rows.filter { $0.status == .notObserved && $0.extendedByLog } }

    /// True when every PCR and bank the log extends is in the PCR file and matches, and every
    /// event with data hashes to its digest.
    public var verified: Bool {
        !rows.contains { $0.status == .mismatch } && dataMismatches.isEmpty && missing.isEmpty
            && rows.contains { $0.status == .match }
    }
}

public enum Verifier {
    /// Replays `log` and compares PCR17–22 in every bank the log has: each PCR the log extends,
    /// and each PCR the file gives, whether or not the log extends it.
    public static func verify(_ log: DRTMEventLog, against pcrs: PCRValues) -> VerificationReport {
        let replay = log.replay()
        var rows = [VerificationReport.Row]()
        for bank in log.banks where bank.isComputable {
            var indices = Set(replay.entries.filter { $0.bank == bank }.map(\.pcr))
            indices.formUnion(pcrs.pcrs(in: bank))
            for pcr in indices.sorted() where pcr.isDynamic {
                let entry = replay[pcr, bank]
                let calculated = entry?.value ?? .zeros(bank)
                let observed = pcrs[bank, pcr]
                var status: VerificationReport.Status = .notObserved
                var why: String? = nil
                if let o = observed {
                    status = o == calculated ? .match : .mismatch
                    if status == .mismatch {
                        if o.isAllOnes {
                            why = "the TPM reads all FF: no measured launch happened in this boot"
                        } else if entry == nil {
                            why = "the log has no event for this PCR in this bank"
                        } else {
                            why = "the log does not describe this boot, or was altered"
                            if entry!.isPartial {
                                why! += " (the log carries this bank's digest for only some of the PCR's events)"
                            }
                        }
                    }
                }
                rows.append(.init(pcr: pcr, bank: bank, calculated: calculated, observed: observed,
                                  status: status, partial: entry?.isPartial ?? false, explanation: why,
                                  extendedByLog: entry != nil))
            }
        }
        return VerificationReport(rows: rows, dataMismatches: log.dataDigestMismatches(),
                                  banksNotInLog: pcrs.banks.filter { !log.banks.contains($0) })
    }

    /// The inputs a verification cannot be made from (exit status 2, not a mismatch): PCR values
    /// not from a measured launch, PCRs the log extends that the file lacks, nothing in common.
    public static func checkInputs(_ report: VerificationReport, pcrs: PCRValues, log: DRTMEventLog,
                                   pcrSource: String) throws {
        // Only the banks the log records: a bank it does not cover says nothing about this log.
        var covered = PCRValues()
        for bank in pcrs.banks where log.banks.contains(bank) {
            for pcr in pcrs.pcrs(in: bank) { covered[bank, pcr] = pcrs[bank, pcr] }
        }
        if let (pcr, bank, why) = unlaunched(covered) {
            throw CodedError(.pcrNotLaunched, "\(pcrSource): PCR\(pcr) \(bank) \(why)")
        }
        let missing = report.missing
        if !missing.isEmpty {
            let names = missing.map { "PCR\($0.pcr) \($0.bank)" }.joined(separator: ", ")
            var banks = [String]()
            for b in Set(missing.map(\.bank)).sorted() {
                let list = Set(missing.filter { $0.bank == b }.map(\.pcr.rawValue)).sorted().map(String.init)
                banks.append("\(b):\(list.joined(separator: ","))")
            }
            throw CodedError(.pcrsIncomplete, "\(pcrSource) lacks \(names), which \(log.source) extends; read them too (tpm2_pcrread \(banks.joined(separator: "+")))")
        }
        if !report.rows.contains(where: { $0.observed != nil }) {
            throw CodedError(.pcrsIncomplete, "\(pcrSource) has no PCR of \(log.source)'s banks and PCRs 17–22")
        }
    }

    /// Refuses PCR values that cannot come from a measured launch (the launch resets PCR17–22 from all FF; AEM's `listbadpcrs`): PCR17 or PCR18
    /// all-00 or all-FF, PCR19 all-FF. Returns the PCR and reason of the first such value.
    public static func unlaunched(_ pcrs: PCRValues) -> (PCRIndex, HashAlgorithm, String)? {
        for bank in pcrs.banks {
            for pcr in pcrs.pcrs(in: bank) {
                guard let v = pcrs[bank, pcr] else { continue }
                if [17, 18, 19].contains(pcr.rawValue) && v.isAllOnes {
                    return (pcr, bank, "reads all FF: no measured launch happened in the boot these values come from")
                }
                if [17, 18].contains(pcr.rawValue) && v.isAllZero {
                    return (pcr, bank, "reads all 00: SINIT always extends PCR17 and PCR18, so these values are not from a measured launch")
                }
            }
        }
        return nil
    }
}
