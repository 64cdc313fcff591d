import AEMPCR
import ArgumentParser

struct Predict: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Predict PCR17/18/19 of the next boot from its files.",
        discussion: """
            Reads the boot's files the way GRUB, SINIT and tboot do (gunzip where GRUB would, \
            tboot's command line inside its MLE, the verified-launch policy, module routing) and \
            prints each PCR and bank that follows from the files, with every extend in order. A PCR \
            that also holds SINIT's own events (PCR17 always, PCR18 under DA) is reported as \
            needing the current DRTM event log, never guessed.

            On TPM 1.2 with the legacy mapping (Qubes AEM 4.x), PCR18 = MLE hash then Xen, and \
            PCR19 = kernel then initramfs: both are predicted completely.

            Example:
              aem-pcr predict --grub-cfg /boot/grub2/grub.cfg \\
                --entry 'AEM Qubes, with Xen hypervisor' --boot-dir /boot
            """)

    @OptionGroup var boot: BootOptions
    @OptionGroup var launch: LaunchOptions
    @OptionGroup var output: OutputOptions

    func run() throws {
        Terminal.verbose = output.verbose
        let predictor = Predictor(configuration: try launch.configuration(), customPolicy: try launch.customPolicy())
        let prediction = try predictor.predict(try boot.bootSpec())
        if output.json {
            print(PredictionOutput.json(prediction).render())
        } else {
            print(PredictionOutput.text(prediction, verbose: output.verbose), terminator: "")
        }
    }
}

enum PredictionOutput {
    static func json(_ p: Prediction) -> JSON {
        var pcrs = [(String, JSON)]()
        for bank in p.banks {
            let values = p.pcrs.pcrs(in: bank).map { (String($0.rawValue), JSON.string(p.pcrs[bank, $0]!.hex)) }
            pcrs.append((bank.description, .object(values)))
        }
        var events = [JSON]()
        for e in p.events {
            for bank in p.banks {
                guard let d = e.digests[bank] else { continue }
                events.append(.object([
                    ("pcr", .int(Int(e.pcr.rawValue))), ("bank", .string(bank.description)),
                    ("type", .string(e.type.hex)), ("component", .string(e.component.label)),
                    ("what", .string(e.what)), ("digest", .string(d.hex)),
                ]))
            }
        }
        let incomplete = p.incomplete.map { i in
            JSON.object([("pcr", .int(Int(i.pcr.rawValue))), ("bank", .string(i.bank.description)), ("reason", .string(i.reason))])
        }
        let c = p.configuration
        let modules = p.modules.map { m in
            JSON.object([
                ("file", .string(m.spec.path)),
                ("index", m.index.map { .int($0) } ?? .null),
                ("removed", m.removedAs.map { .string($0 == .sinitACM ? "sinit-acm" : "lcp-policy-data") } ?? .null),
                ("cmdline", .string(m.hashedCmdline)),
                ("gunzipped", .bool(m.encoding == .gzip)),
                ("image_size", .int(Int(m.imageSize))),
            ])
        }
        return .object([
            ("pcrs", .object(pcrs)),
            ("events", .array(events)),
            ("incomplete", .array(incomplete)),
            ("launch", .object([
                ("tpm", .string(c.tpm.rawValue)), ("pcr_map", .string(c.mapping.rawValue)),
                ("extpol", c.tpm == .tpm20 ? .string(c.extendPolicy.rawValue) : .null),
                ("tboot_version", .string(c.tbootVersion.description)),
                ("policy", .string(p.policy.source)),
                ("tboot", .string(p.boot.tbootPath)), ("tboot_cmdline", .string(p.tbootCmdline)),
            ])),
            ("modules", .array(modules)),
            ("notes", .array(p.notes.map { .string($0) })),
        ])
    }

    static func text(_ p: Prediction, verbose: Bool) -> String {
        let c = p.configuration
        var out = ""
        func line(_ s: String = "") { out += s + "\n" }
        var launch = "TPM \(c.tpm.rawValue), \(c.mapping == .da ? "DA" : "legacy") mapping, tboot \(c.tbootVersion)"
        if c.tpm == .tpm20 { launch += ", extpol=\(c.extendPolicy.rawValue)" }
        line(Terminal.bold("Prediction") + " for \(p.boot.origin)")
        line("  \(launch)")
        line()
        line(Terminal.bold("PCR  bank    value"))
        for pcr in p.reportedPCRs {
            for bank in p.banks {
                let label = Terminal.pad(String(pcr.rawValue), 4) + " " + bank.description
                if let v = p.pcrs[bank, pcr] {
                    line(Terminal.digestLine(indent: 0, label: label, labelWidth: 12, hex: v.hex))
                } else if p.incomplete.contains(where: { $0.pcr == pcr && $0.bank == bank }) {
                    line(Terminal.pad(label, 12) + " not predicted (see below)")
                }
            }
        }
        var reasons = [String: [String]]()
        var order = [String]()
        for i in p.incomplete {
            if reasons[i.reason] == nil { order.append(i.reason) }
            reasons[i.reason, default: []].append("PCR\(i.pcr) \(i.bank)")
        }
        for r in order { line(Terminal.wrap("Not predicted, \(reasons[r]!.joined(separator: ", ")): \(r).")) }
        line()
        line(Terminal.bold("Extends, in order"))
        for (n, e) in p.events.enumerated() {
            let by = e.type == .mleHash ? "by SINIT" : "by tboot"
            line("\(Terminal.pad("\(n + 1).", 3)) PCR\(e.pcr)  \(e.component.label) (\(e.type.hex) \(by))")
            line(Terminal.wrap(e.what, indent: 6))
            for bank in p.banks {
                if let d = e.digests[bank] {
                    line(Terminal.digestLine(indent: 6, label: bank.description, labelWidth: 7, hex: d.hex))
                }
            }
        }
        if verbose {
            line()
            line(Terminal.bold("Modules"))
            for m in p.modules {
                let idx = m.index.map { "module \($0)" } ?? "removed"
                line("  \(idx): \(m.spec.path) (\(m.spec.origin))")
                line("    file \(m.fileSize) bytes, \(m.encoding == .gzip ? "gunzipped to" : "loaded as") \(m.imageSize) bytes")
                line("    cmdline '\(m.hashedCmdline)'")
                for (b, d) in m.imageDigests.sorted(by: { $0.key < $1.key }) {
                    line(Terminal.digestLine(indent: 4, label: "H(image) " + b.description, labelWidth: 16, hex: d.hex))
                }
            }
            line("  MLE header at \(p.mleHeader.offset): range [\(p.mleHeader.mleStart), \(p.mleHeader.mleEnd)), command line slot [\(p.mleHeader.cmdlineStart), \(p.mleHeader.cmdlineEnd))")
        }
        if !p.notes.isEmpty {
            line()
            line(Terminal.bold("Notes"))
            for n in p.notes { line(Terminal.wrap("- " + n, indent: 2)) }
        }
        return out
    }
}
