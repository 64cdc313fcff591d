// SPDX-License-Identifier: Apache-2.0
import AEMPCR

/// What `predict` and `diff` print for a TrenchBoot Secure Launch (issue 24): per PCR the log
/// extends, its value copied forward or "cannot be predicted" and why, each record with what
/// the next boot's entry says of it. Never a computed guess.
struct SecureLaunchView {
    let launch: DRTMLaunch
    let logSource: String
    /// nil: not checked (--force with values that could not be read).
    let verified: Bool?
    /// The current values, where read.
    let current: PCRValues?
    let statements: [SecureLaunchPrediction.Statement]
    let bootOrigin: String
    let banks: [HashAlgorithm]

    init(_ current: PredictionLog, boot: BootSpec, onlyBanks: [HashAlgorithm]) throws {
        let log = current.log
        launch = DRTMLaunch.recognise(log)
        logSource = log.source
        verified = current.report?.verified
        if case .verified(let v) = current { self.current = v.pcrs } else { self.current = nil }
        statements = try SecureLaunchPrediction.statements(log, boot: boot)
        bootOrigin = boot.origin
        let logBanks = log.banks.filter(\.isComputable)
        banks = onlyBanks.isEmpty ? logBanks : logBanks.filter { onlyBanks.contains($0) }
    }

    /// The one-line refusal of `seal`: each sealed PCR not predicted, with its reason.
    static func refusal(launch: DRTMLaunch, statements: [SecureLaunchPrediction.Statement], sealPCRs: [PCRIndex]) -> String? {
        var parts = [String]()
        for pcr in sealPCRs {
            if let s = statements.first(where: { $0.pcr == pcr }) {
                if !s.isPredicted { parts.append("PCR\(pcr) \(s.summary)") }
            } else if pcr == 13 {
                parts.append("PCR13 is not predicted for a TrenchBoot boot: this version predicts AEM's LUKS measurement for tboot's boots only")
            } else {
                parts.append("PCR\(pcr) is not extended by this launch, so AEM's SEAL naming it cannot be predicted from this log")
            }
        }
        guard !parts.isEmpty else { return nil }
        return "\(launch.description): AEM seals PCR\(sealPCRs.count == 1 ? "" : "s") "
            + sealPCRs.map { "\($0)" }.joined(separator: ", ") + "; " + parts.joined(separator: "; ")
            + " ('aem-pcr predict' with the same options says why, record by record)"
    }

    func text(diff: Bool) -> TerminalText {
        var out: TerminalText = ""
        func line(_ s: TerminalText = "") { out += s + "\n" }
        line(Terminal.wrap(Terminal.bold(diff ? "Current boot → next boot" : "Next boot") + " (\(bootOrigin)), from \(logSource)"
            + (verified == true ? " (verified)" : verified == false ? " (NOT verified: used as asked, --force)" : "")))
        out += LogOutput.launchText(launch)
        for s in statements {
            line()
            if let values = s.predicted {
                for bank in banks {
                    guard let v = values[bank, s.pcr] else { continue }
                    line(Terminal.pad("PCR\(s.pcr)", 6) + Terminal.pad("\(bank)", 7) + (diff ? " unchanged" : " predicted"))
                    line(Terminal.digestLine(indent: 4, label: diff ? "now" : "value", labelWidth: 6, hex: v.hex))
                }
                line(Terminal.wrap("PCR\(s.pcr) \(s.reason)", indent: 2))
            } else {
                line(Terminal.pad("PCR\(s.pcr)", 6) + "NOT PREDICTED")
                if diff, let current {
                    for bank in banks { if let v = current[bank, s.pcr] { line(Terminal.digestLine(indent: 4, label: "\(bank) now", labelWidth: 11, hex: v.hex)) } }
                }
                line(Terminal.wrap("PCR\(s.pcr) \(s.reason)", indent: 2))
            }
        }
        return out
    }

    func json() -> JSON {
        .object([("secure_launch", .object([
            ("launch", LogOutput.launchJSON(launch)),
            ("event_log", .string(logSource)),
            ("verified", verified.map { .bool($0) } ?? .null),
            ("boot", .string(bootOrigin)),
            ("pcrs", .array(statements.map { s in
                .object([
                    ("pcr", .int(Int(s.pcr.rawValue))),
                    ("predicted", .bool(s.isPredicted)),
                    ("reason", .string(s.reason)),
                    ("values", s.predicted.map { v in .object(banks.compactMap { b in v[b, s.pcr].map { (b.description, .string($0.hex)) } }) } ?? .null),
                    ("current", current.map { v in .object(banks.compactMap { b in v[b, s.pcr].map { (b.description, .string($0.hex)) } }) } ?? .null),
                    ("records", .array(s.records.map { r in
                        .object([
                            ("event", r.eventIndex.map { .int($0) } ?? .null),
                            ("input", .string(r.input.description)),
                            ("check", .string(r.check.rawValue)),
                            ("detail", .string(r.detail)),
                        ])
                    })),
                ])
            })),
        ]))])
    }
}
