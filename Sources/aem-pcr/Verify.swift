// SPDX-License-Identifier: Apache-2.0
import AEMPCR
import AEMPCRSeal
import ArgumentParser

struct Verify: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Check the current boot's DRTM event log against the TPM's PCR values.",
        discussion: """
            Replays the log from the DRTM initial value (zeros) and compares PCR17–22 in every \
            bank that both the log and the PCR file have; each event that carries data is also \
            checked (digest = H(data)). Exit status 0 when everything matches, 1 when anything \
            differs, 2 on bad input. A log that does not verify must not be used to predict.

            Without --event-log the running boot's log is looked for, as root, in this order: \
            Linux Secure Launch's /sys/kernel/security/slaunch/eventlog; the range the \
            "SLAUNCH: reserving event log" line of 'xl dmesg' names (TrenchBoot's Xen, dom0), read \
            from /dev/mem; the TXT heap (tboot). --xen-dmesg reads the range from Xen's console text \
            saved to a file instead. Without --pcrs the values are read from the TPM (TPM 2.0 \
            through tpm2-tss, TPM 1.2 from sysfs). The launch the log records is said first, \
            with notes on the known defects of TrenchBoot's logs; a PCR18–20 value that is the \
            AMD PSP's cap is explained as such.

            Example:
              sudo aem-pcr verify
            """)

    @Option(name: .customLong("event-log"), help: ArgumentHelp("The DRTM event log: a raw log, a TXT heap dump or txt-stat's text (default: read from the TXT heap, as root).", valueName: "file"))
    var eventLog: String?

    @Option(help: ArgumentHelp("PCR values: tpm2_pcrread's output, this tool's --json, or a TPM 1.2's sysfs pcrs (default: read from the TPM).", valueName: "file"))
    var pcrs: String?

    @Option(name: .customLong("xen-dmesg"), help: ArgumentHelp("TrenchBoot under Xen: Xen's console text ('xl dmesg' saved to a file); the log is read from the range its 'SLAUNCH: reserving event log' line gives, in --mem (as root).", valueName: "file"))
    var xenDmesg: String?

    @OptionGroup var live: LiveOptions
    @OptionGroup var output: OutputOptions

    func validate() throws {
        if xenDmesg != nil && eventLog != nil { throw ValidationError("give --event-log or --xen-dmesg, not both") }
    }

    func run() throws {
        Terminal.verbose = output.verbose
        let boot = live.currentBoot(eventLog: eventLog, pcrs: pcrs, verbose: output.verbose, xenDmesg: xenDmesg)
        // Without --event-log or --xen-dmesg the error says where the log was looked for.
        let log = try boot.currentLog()
        let (values, pcrs) = try boot.currentPCRs(for: log)
        var report = Verifier.verify(log, against: values)
        let launch = DRTMLaunch.recognise(log)
        let launchNotes = launch.notes(against: values, log: log)
        for i in report.rows.indices where report.rows[i].status == .mismatch {
            let r = report.rows[i]
            if let why = launch.explanation(pcr: r.pcr, bank: r.bank, observed: r.observed!) { report.rows[i].explanation = why }
        }
        try Verifier.checkInputs(report, pcrs: values, log: log, pcrSource: pcrs)
        if output.json {
            let rows = report.rows.map { r in
                JSON.object([
                    ("pcr", .int(Int(r.pcr.rawValue))), ("bank", .string(r.bank.description)),
                    ("status", .string(r.status.rawValue)), ("calculated", .string(r.calculated.hex)),
                    ("observed", r.observed.map { .string($0.hex) } ?? .null), ("partial", .bool(r.partial)),
                    ("explanation", r.explanation.map { .string($0) } ?? .null),
                ])
            }
            let data = report.dataMismatches.map { m in
                JSON.object([("event", .int(m.eventIndex)), ("bank", .string(m.bank.description)),
                             ("expected", .string(m.expected.hex)), ("logged", .string(m.logged.hex))])
            }
            Terminal.output(JSON.object([
                ("verified", .bool(report.verified)), ("event_log", .string(log.source)), ("format", .string(log.format.rawValue)),
                ("launch", LogOutput.launchJSON(launch, extraNotes: launchNotes)),
                ("pcrs", .array(rows)), ("data_mismatches", .array(data)),
                ("banks_not_in_log", .array(report.banksNotInLog.map { .string($0.description) })),
            ]))
        } else {
            var out: TerminalText = Terminal.wrap(Terminal.bold(report.verified ? "Verified" : "NOT verified") + ": \(log.source) (\(log.format.rawValue)) against \(pcrs)") + "\n"
            out += LogOutput.launchText(launch, extraNotes: launchNotes)
            for r in report.rows {
                let label = Terminal.pad("PCR\(r.pcr)", 6) + Terminal.pad("\(r.bank)", 7)
                switch r.status {
                case .match:
                    out += label + " match" + (r.partial ? " (bank extended only in part)" : "") + "\n"
                case .notObserved:
                    out += label + " not in \(pcrs)\n"
                case .mismatch:
                    out += label + " DIFFERS: \(r.explanation ?? "")\n"
                    out += Terminal.digestLine(indent: 4, label: "log", labelWidth: 4, hex: r.calculated.hex) + "\n"
                    out += Terminal.digestLine(indent: 4, label: "TPM", labelWidth: 4, hex: r.observed!.hex) + "\n"
                }
            }
            for m in report.dataMismatches {
                out += Terminal.wrap("event \(m.eventIndex) (\(log.events[m.eventIndex].type)): its \(m.bank) digest is not the hash of its data", indent: 0) + "\n"
            }
            if !report.banksNotInLog.isEmpty {
                out += Terminal.wrap("Banks in \(pcrs) that the log does not cover: \(report.banksNotInLog.map(\.description).joined(separator: ", "))") + "\n"
            }
            Terminal.output(out)
        }
        if !report.verified { throw ExitCode(ExitStatus.mismatch) }
    }
}
