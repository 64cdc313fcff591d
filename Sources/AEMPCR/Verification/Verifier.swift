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
    }

    public var rows: [Row]
    /// Events whose data is present but whose digest is not the hash of that data.
    public var dataMismatches: [DataDigestMismatch]
    /// Banks in the PCR file that the log does not cover.
    public var banksNotInLog: [HashAlgorithm]

    /// True when every compared PCR matches and every event with data hashes to its digest.
    public var verified: Bool {
        !rows.contains { $0.status == .mismatch } && dataMismatches.isEmpty
            && rows.contains { $0.status == .match }
    }
}

public enum Verifier {
    /// Replays `log` and compares PCR17–22 in every bank both the log and `pcrs` have.
    public static func verify(_ log: DRTMEventLog, against pcrs: PCRValues) -> VerificationReport {
        let replay = log.replay()
        let banks = log.banks.filter { $0.isComputable && pcrs.banks.contains($0) }
        var rows = [VerificationReport.Row]()
        for bank in banks {
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
                        } else if entry!.isPartial {
                            why = "the log lacks this bank's digest for \(entry!.missingEventIndices.count) event(s)"
                        } else {
                            why = "the log does not describe this boot (or was altered)"
                        }
                    }
                }
                rows.append(.init(pcr: pcr, bank: bank, calculated: calculated, observed: observed,
                                  status: status, partial: entry?.isPartial ?? false, explanation: why))
            }
        }
        return VerificationReport(rows: rows, dataMismatches: log.dataDigestMismatches(),
                                  banksNotInLog: pcrs.banks.filter { !log.banks.contains($0) })
    }

    /// Refuses PCR values that cannot come from a measured launch (SPEC §1, §6): PCR17 or PCR18
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
