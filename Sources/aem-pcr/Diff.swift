// SPDX-License-Identifier: Apache-2.0
import AEMPCR
import ArgumentParser

struct Diff: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Show how the next boot's PCRs and events differ from the current boot's.",
        discussion: """
            Predicts the next boot from the current boot's verified DRTM log and the candidate \
            files (as 'predict --event-log' does), then prints, for each PCR and bank, the \
            current and the predicted value, and each event that changes: which component, its \
            old and new digest. Read this before deciding to reboot.

            Without --event-log the current log is read from the TXT heap (root), and without \
            --pcrs the values it must replay to are read from the TPM (see 'aem-pcr read').

            Example:
              sudo aem-pcr diff --grub-cfg /boot/grub2/grub.cfg \\
                --entry 'AEM Qubes, with Xen hypervisor'
            """)

    @OptionGroup var boot: BootOptions
    @OptionGroup var replace: ReplaceOptions
    @OptionGroup var launch: LaunchOptions
    @OptionGroup var log: EventLogOptions
    @OptionGroup var luks: LUKSOptions
    @OptionGroup var luksBoot: LUKSBootOptions
    @OptionGroup var output: OutputOptions

    func run() throws {
        Terminal.verbose = output.verbose
        let (p, report) = try log.predict(boot: boot, launch: launch, replace: replace, verbose: output.verbose)
        let plan = NextBoot(p)
        let banks = plan.banks(only: launch.banks)
        let values = plan.values(banks: banks)
        let pcr13 = try luksDiff(p.files)
        if output.json {
            let rows = values.map { v in
                JSON.object([
                    ("pcr", .int(Int(v.pcr.rawValue))), ("bank", .string(v.bank.description)),
                    ("current", v.current.map { .string($0.hex) } ?? .null), ("predicted", .string(v.next.hex)),
                    ("changed", .bool(v.changed)),
                ])
            }
            let changes = plan.changes.map { c in
                JSON.object([
                    ("pcr", .int(Int(c.pcr.rawValue))), ("type", .string(c.type.hex)), ("component", .string(c.label)),
                    ("what", .string(c.what)),
                    ("old", c.old.map { JSON.digests($0.digests.values) } ?? .null),
                    ("new", c.new.map { JSON.digests($0.digests.values) } ?? .null),
                ])
            }
            Terminal.output(JSON.object([
                ("verified", report.map { .bool($0.verified) } ?? .null),
                ("pcrs", .array(rows)), ("changes", .array(changes)),
                ("notes", .array(p.notes.map { .string($0) })),
            ] + (pcr13.map { [("luks", $0.json)] } ?? [])))
            return
        }
        var out: TerminalText = ""
        func line(_ s: TerminalText = "") { out += s + "\n" }
        line(Terminal.wrap(Terminal.bold("Current boot → next boot") + " (\(p.files.boot.origin))"))
        for v in values {
            if !v.changed {
                line(Terminal.pad("PCR\(v.pcr)", 6) + Terminal.pad("\(v.bank)", 7) + " unchanged")
            } else {
                line(Terminal.pad("PCR\(v.pcr)", 6) + Terminal.pad("\(v.bank)", 7) + " CHANGES")
                line(Terminal.digestLine(indent: 4, label: "now", labelWidth: 5, hex: v.current?.hex ?? "(none)"))
                line(Terminal.digestLine(indent: 4, label: "next", labelWidth: 5, hex: v.next.hex))
            }
        }
        if let pcr13 { out += pcr13.text }
        line()
        line(Terminal.bold(plan.changes.isEmpty ? "No event changes." : "Events that change"))
        for c in plan.changes {
            line("PCR\(c.pcr)  \(c.label) (\(c.type.description))")
            line(Terminal.wrap("\(c.what)", indent: 2))
            for bank in banks {
                if let o = c.old?.digests[bank] { line(Terminal.digestLine(indent: 4, label: "\(bank) now", labelWidth: 12, hex: o.hex)) }
                if let n = c.new?.digests[bank] { line(Terminal.digestLine(indent: 4, label: "\(bank) next", labelWidth: 12, hex: n.hex)) }
            }
        }
        if !p.notes.isEmpty {
            line()
            line(Terminal.bold("Notes"))
            for n in p.notes { line(Terminal.wrap("- \(n)", indent: 2)) }
        }
        Terminal.output(out)
    }

    /// PCR13, when the next boot's is predicted or --luks-header is given: this boot's value
    /// from the TPM (or --pcrs) and headers against the next boot's.
    func luksDiff(_ files: Prediction) throws -> LUKSDiff? {
        guard let next = try luks.predict(files), next.value != nil || !luks.headers.isEmpty else { return nil }
        let current = log.currentBoot(verbose: false)
        var now: Digest?
        if let l = try? current.currentLog(), let (v, _) = try? current.values(for: l, also: [LUKSMeasurement.pcr], banks: [next.bank]) {
            now = v[next.bank, LUKSMeasurement.pcr]
        }
        return LUKSDiff(next: next, now: now, family: files.configuration.tpm, luks: luks, boot: luksBoot)
    }
}
