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
    @OptionGroup var output: OutputOptions

    func run() throws {
        Terminal.verbose = output.verbose
        let (p, report) = try log.predict(boot: boot, launch: launch, replace: replace, verbose: output.verbose)
        let banks = p.files.banks.filter { $0.isComputable && (launch.banks.isEmpty || launch.banks.contains($0)) }
        let pcrs = Set(p.predicted.banks.flatMap { p.predicted.pcrs(in: $0) }).sorted()
        if output.json {
            var rows = [JSON]()
            for pcr in pcrs {
                for bank in banks {
                    guard let new = p.predicted[bank, pcr] else { continue }
                    let old = p.current[bank, pcr]
                    rows.append(.object([
                        ("pcr", .int(Int(pcr.rawValue))), ("bank", .string(bank.description)),
                        ("current", old.map { .string($0.hex) } ?? .null), ("predicted", .string(new.hex)),
                        ("changed", .bool(old != new)),
                    ]))
                }
            }
            let changes = p.changes.map { c in
                JSON.object([
                    ("pcr", .int(Int(c.pcr.rawValue))), ("type", .string(c.type.hex)), ("component", .string(c.label)),
                    ("what", .string(c.what)),
                    ("old", c.old.map { JSON.digests($0.values) } ?? .null),
                    ("new", c.new.map { JSON.digests($0.values) } ?? .null),
                ])
            }
            Terminal.output(JSON.object([
                ("verified", report.map { .bool($0.verified) } ?? .null),
                ("pcrs", .array(rows)), ("changes", .array(changes)),
                ("notes", .array(p.notes.map { .string($0) })),
            ]))
            return
        }
        var out: TerminalText = ""
        func line(_ s: TerminalText = "") { out += s + "\n" }
        line(Terminal.wrap(Terminal.bold("Current boot → next boot") + " (\(p.files.boot.origin))"))
        for pcr in pcrs {
            for bank in banks {
                guard let new = p.predicted[bank, pcr] else { continue }
                let old = p.current[bank, pcr]
                if old == new {
                    line(Terminal.pad("PCR\(pcr)", 6) + Terminal.pad("\(bank)", 7) + " unchanged")
                } else {
                    line(Terminal.pad("PCR\(pcr)", 6) + Terminal.pad("\(bank)", 7) + " CHANGES")
                    line(Terminal.digestLine(indent: 4, label: "now", labelWidth: 5, hex: old?.hex ?? "(none)"))
                    line(Terminal.digestLine(indent: 4, label: "next", labelWidth: 5, hex: new.hex))
                }
            }
        }
        line()
        line(Terminal.bold(p.changes.isEmpty ? "No event changes." : "Events that change"))
        for c in p.changes {
            line("PCR\(c.pcr)  \(c.label) (\(c.type.description))")
            line(Terminal.wrap("\(c.what)", indent: 2))
            for bank in banks {
                if let o = c.old?[bank] { line(Terminal.digestLine(indent: 4, label: "\(bank) now", labelWidth: 12, hex: o.hex)) }
                if let n = c.new?[bank] { line(Terminal.digestLine(indent: 4, label: "\(bank) next", labelWidth: 12, hex: n.hex)) }
            }
        }
        if !p.notes.isEmpty {
            line()
            line(Terminal.bold("Notes"))
            for n in p.notes { line(Terminal.wrap("- \(n)", indent: 2)) }
        }
        Terminal.output(out)
    }
}
