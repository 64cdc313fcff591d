// SPDX-License-Identifier: Apache-2.0
import AEMPCR
import AEMPCRSeal
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

            With --live (or --event-log, --pcrs), the prediction starts from the current boot's \
            verified log: SINIT's events are kept, the MLE hash and tboot's events recomputed for \
            the new files, and every DRTM PCR predicted. From files alone, nothing reads the TPM \
            or physical memory.

            A TrenchBoot Secure Launch log (--live, --event-log) is stated per PCR: copied \
            forward while every record feeding it is constant or hashes the same from the entry's \
            files and strings, else NOT PREDICTED with each record that stops it (Xen as laid out \
            in memory, the secure-kernel-loader and the Multiboot2 information block are not \
            computed from files). Never a guess.

            --replace ROLE=FILE predicts with FILE (a new Xen, kernel or initramfs unpacked from \
            a package, not yet installed) in place of the one the entry names, keeping its \
            command line. ROLE: tboot, xen, kernel, initramfs, or a module index.

            Examples:
              aem-pcr predict --tpm 1.2 --grub-cfg /boot/grub2/grub.cfg \\
                --entry 'AEM Qubes, with Xen hypervisor' --boot-dir /boot
              aem-pcr predict --tpm 1.2 --grub-cfg /boot/grub2/grub.cfg --entry 0 \\
                --replace xen=/boot/xen-4.17.4.gz
              aem-pcr predict --live --grub-cfg /boot/grub2/grub.cfg --entry 0 \\
                --format keylime

            PCR13 (Qubes AEM's LUKS measurement): for each rd.luks.uuid on the dom0 kernel's \
            command line, the header as cryptsetup luksHeaderBackup writes it, read through \
            libcryptsetup from /dev/disk/by-uuid/UUID (root) or --luks-header UUID=PATH, hashed \
            and folded as AEM's initramfs extends it (sha256 on TPM 2.0, SHA-1 on TPM 1.2):
              aem-pcr predict --tpm 2.0 --grub-cfg /boot/grub2/grub.cfg --entry 0 \\
                --luks-header 3e1c9b52-8a77-4f0e-b2a1-5d4c6e7f8091=/dev/sda2

            --format keylime prints a Keylime tpm_policy of the PCRs among 17-19 the prediction \
            fixes (one bank); --accept current,predicted adds the current boot's values (with \
            --event-log). --format tpm2-pcr writes the values file tpm2_policypcr -f reads, PCR17-19 \
            (from the current boot: --live or --event-log). Both are for TPM 2.0 only.
            """)

    @OptionGroup var boot: BootOptions
    @OptionGroup var replace: ReplaceOptions
    @OptionGroup var launch: LaunchOptions
    @OptionGroup var log: EventLogOptions
    @OptionGroup var luks: LUKSOptions

    @Flag(help: "Predict from the running boot: its DRTM log from the TXT heap and its PCRs from the TPM, as diff does (root). Implied by --event-log, --pcrs, --tcti and --mem.")
    var live = false

    @OptionGroup var output: OutputOptions

    /// Whether the prediction starts from the current boot (its log and PCRs) or from the files
    /// alone, which never touches the TPM or physical memory.
    var usesCurrentBoot: Bool {
        live || log.eventLog != nil || log.pcrs != nil || log.live.tcti != nil || log.live.mem != "/dev/mem"
    }

    @Option(help: ArgumentHelp("What to print: text (default), json (as --json), keylime (a Keylime tpm_policy of PCR17-19, one bank), tpm2-pcr (the binary values of PCR17, 18 and 19 in one bank that tpm2_policypcr -f reads, to standard output). TPM 2.0 only.", valueName: "format"))
    var format: PredictFormat?

    @Option(help: ArgumentHelp("With --format keylime: the boots the policy accepts, current and/or predicted (default predicted); current needs --live or --event-log.", valueName: "current,predicted"))
    var accept: String?

    func validate() throws {
        if log.force && !usesCurrentBoot {
            throw ValidationError("--force has no effect without --live or --event-log: it lets an unverified current-boot log be used")
        }
        if output.json, let f = format, f != .json {
            throw ValidationError("--json and --format \(f.rawValue) ask for two outputs; give one")
        }
        if accept != nil && format != .keylime {
            throw ValidationError("--accept is for --format keylime")
        }
    }

    func run() throws {
        Terminal.verbose = output.verbose
        var view: PredictionView
        if usesCurrentBoot {
            switch try log.prediction(boot: boot, launch: launch, replace: replace, verbose: output.verbose) {
            case .secureLaunch(let sl):
                switch format ?? (output.json ? .json : .text) {
                case .text: return Terminal.output(sl.text(diff: false))
                case .json: return Terminal.output(sl.json())
                case let f:
                    throw CodedError(.secureLaunchNotPredicted, "--format \(f.rawValue) needs PCR17-19 of a tboot boot; \(sl.launch.description) is said per PCR with text or --json")
                }
            case .tboot(let p, let report):
                view = PredictionView(p, verified: report?.verified, onlyBanks: launch.banks)
            }
        } else {
            let spec = try boot.bootSpec(replacing: replace)
            let predictor = Predictor(configuration: try launch.configuration(tbootCmdline: String(decoding: spec.tbootCmdline, as: UTF8.self)),
                                      customPolicy: try launch.customPolicy())
            view = PredictionView(try predictor.predict(spec))
        }
        view.add(try luks.predict(view.files))
        let format = self.format ?? (output.json ? .json : .text)
        switch format {
        case .text:
            Terminal.output(PredictionOutput.text(view, verbose: output.verbose))
        case .json:
            Terminal.output(PredictionOutput.json(view))
        case .keylime:
            let accepted = try Export.accepted(accept)
            if accepted.contains(.current) && view.log == nil {
                throw CodedError(.usage, "--accept current needs the current boot's values: give --live (or --event-log FILE --pcrs FILE)")
            }
            let bank = try Export.bank(launch.banks, tpm: view.files.configuration.tpm, format: format)
            Terminal.output(try Export.keylime(predicted: view.pcrs, current: view.log?.current, bank: bank, accept: accepted))
        case .tpm2PCR:
            let bank = try Export.bank(launch.banks, tpm: view.files.configuration.tpm, format: format)
            let file = try Export.tpm2PCRFile(predicted: view.pcrs, bank: bank)
            try Export.writeBinary(file.bytes)
            Terminal.writeError("aem-pcr: wrote \(file.selection) (\(file.bytes.count) bytes): tpm2_policypcr -l \(file.selection) -f FILE\n")
        }
    }
}

/// What `predict` prints, from files alone or with the current log.
struct PredictionView {
    var files: Prediction
    var pcrs: PCRValues
    var events: [PredictedEvent]
    var incomplete: [IncompletePCR]
    var notes: [String]
    /// With a log: its source and format, whether it verified, and the current values.
    var log: (source: String, format: String, verified: Bool?, current: PCRValues)?

    init(_ p: Prediction) {
        files = p
        pcrs = p.pcrs
        events = p.events
        incomplete = p.incomplete
        notes = p.notes
        log = nil
    }

    /// PCR13 as AEM's initramfs extends it (nil: the boot has no dom0 kernel module).
    var luks: LUKSPrediction?

    /// Banks to print (empty: all).
    var onlyBanks: [HashAlgorithm] = []

    init(_ p: LogPrediction, verified: Bool?, onlyBanks: [HashAlgorithm] = []) {
        self.onlyBanks = onlyBanks
        files = p.files
        pcrs = p.predicted
        events = p.events
        incomplete = []
        notes = p.notes + (verified == nil ? ["the event log was used without verification (--force without --pcrs)"] : [])
        log = (p.log.source, p.log.format.rawValue, verified, p.current)
    }

    var banks: [HashAlgorithm] { files.banks.filter { $0.isComputable && (onlyBanks.isEmpty || onlyBanks.contains($0)) } }
    var reportedPCRs: [PCRIndex] {
        Set<PCRIndex>([17, 18, 19]).union(events.map(\.pcr)).filter(\.isDynamic)
            .union(luks == nil ? [] : [LUKSMeasurement.pcr]).sorted()
    }
}

enum PredictionOutput {
    static func json(_ v: PredictionView) -> JSON {
        let p = v.files
        var events = [JSON]()
        for e in v.events {
            for bank in v.banks {
                guard let d = e.digests[bank] else { continue }
                events.append(.object([
                    ("pcr", .int(Int(e.pcr.rawValue))), ("bank", .string(bank.description)),
                    ("type", .string(e.type.hex)), ("component", .string(e.label)),
                    ("what", .string(e.what)), ("digest", .string(d.hex)),
                ]))
            }
        }
        let incomplete = v.incomplete.map { i in
            JSON.object([("pcr", .int(Int(i.pcr.rawValue))), ("bank", .string(i.bank.description)), ("reason", .string(i.reason))])
        }
        let c = p.configuration
        let modules = p.modules.map { m in
            JSON.object([
                ("file", .string(m.spec.path)),
                ("index", m.index.map { .int($0) } ?? .null),
                ("removed", m.removedAs.map { .string($0 == .sinitACM ? "sinit-acm" : "lcp-policy-data") } ?? .null),
                ("cmdline", .string(String(decoding: m.hashedCmdline, as: UTF8.self))),
                ("cmdline_hex", .string(Hex.encode(m.hashedCmdline))),
                ("gunzipped", .bool(m.encoding == .gzip)),
                ("image_size", .int(Int(m.imageSize))),
            ])
        }
        var top: [(String, JSON)] = [
            ("pcrs", JSON.pcrs(v.pcrs, banks: v.banks)),
            ("events", .array(events)),
            ("incomplete", .array(incomplete)),
            ("launch", .object([
                ("tpm", .string(c.tpm.rawValue)), ("pcr_map", .string(c.mapping.rawValue)),
                ("extpol", c.tpm == .tpm20 ? .string(c.extendPolicy.rawValue) : .null),
                ("tboot_version", .string(c.tbootVersion.description)),
                ("policy", .string(p.policy.source)),
                ("tboot", .string(p.boot.tbootPath)), ("tboot_cmdline", .string(String(decoding: p.tbootCmdline, as: UTF8.self))),
                ("tboot_cmdline_hex", .string(Hex.encode(p.tbootCmdline))),
            ])),
            ("modules", .array(modules)),
            ("notes", .array(v.notes.map { .string($0) })),
        ]
        if let l = v.luks { top.append(("luks", LUKSOutput.json(l))) }
        if let l = v.log {
            top.append(("event_log", .object([
                ("source", .string(l.source)), ("format", .string(l.format)),
                ("verified", l.verified.map { .bool($0) } ?? .null),
                ("current", JSON.pcrs(l.current, banks: v.banks)),
            ])))
        }
        return .object(top)
    }

    static func text(_ v: PredictionView, verbose: Bool) -> TerminalText {
        let p = v.files
        let c = p.configuration
        var out: TerminalText = ""
        func line(_ s: TerminalText = "") { out += s + "\n" }
        var launch = "TPM \(c.tpm.rawValue), \(c.mapping == .da ? "DA" : "legacy") mapping, tboot \(c.tbootVersion)"
        if c.tpm == .tpm20 { launch += ", extpol=\(c.extendPolicy.rawValue)" }
        line(Terminal.bold("Prediction") + " for \(p.boot.origin)")
        line("  \(launch)")
        if let l = v.log {
            let state = l.verified == true ? "verified against the PCR values" : l.verified == false ? "NOT verified (--force)" : "NOT verified (no PCR values, --force)"
            line(Terminal.wrap("  from the current boot's log \(l.source) (\(l.format)), \(state)", indent: 0, hang: 4))
        }
        line()
        line(Terminal.bold("PCR  bank    value"))
        for pcr in v.reportedPCRs {
            for bank in v.banks {
                let label = Terminal.pad("\(pcr.rawValue)", 4) + " \(bank)"
                if let value = v.pcrs[bank, pcr] {
                    line(Terminal.digestLine(indent: 0, label: label, labelWidth: 12, hex: value.hex))
                } else if v.incomplete.contains(where: { $0.pcr == pcr && $0.bank == bank }) {
                    line(Terminal.pad(label, 12) + " not predicted (see below)")
                }
            }
        }
        var reasons = [String: [String]]()
        var order = [String]()
        for i in v.incomplete {
            if reasons[i.reason] == nil { order.append(i.reason) }
            reasons[i.reason, default: []].append("PCR\(i.pcr) \(i.bank)")
        }
        for r in order { line(Terminal.wrap("Not predicted, \(reasons[r]!.joined(separator: ", ")): \(r).")) }
        line()
        line(Terminal.bold("Extends, in order"))
        for (n, e) in v.events.enumerated() {
            let by = e.type == .tbootMeasurement ? "by tboot" : "by SINIT"
            line("\(Terminal.pad("\(n + 1).", 3)) PCR\(e.pcr)  \(e.label) (\(e.type.description) \(by))")
            line(Terminal.wrap("\(e.what)", indent: 6))
            for bank in v.banks {
                if let d = e.digests[bank] {
                    line(Terminal.digestLine(indent: 6, label: "\(bank)", labelWidth: 7, hex: d.hex))
                }
            }
        }
        if let l = v.luks, !l.extends.isEmpty || !l.uuids.isEmpty {
            line()
            out += LUKSOutput.text(l)
        }
        if verbose {
            line()
            line(Terminal.bold("Modules"))
            for m in p.modules {
                let idx = m.index.map { "module \($0)" } ?? "removed"
                line(Terminal.wrap("\(idx): \(m.spec.path) (\(m.spec.origin))", indent: 2, hang: 4))
                line("    file \(m.fileSize) bytes, \(m.encoding == .gzip ? "gunzipped to" : "loaded as") \(m.imageSize) bytes")
                // Exact, on one line, to compare with tboot's log: not wrapped.
                line("    cmdline '\(Escape.bytes(m.hashedCmdline))'")
                for (b, d) in m.imageDigests.sorted(by: { $0.key < $1.key }) {
                    line(Terminal.digestLine(indent: 4, label: "H(image) \(b)", labelWidth: 16, hex: d.hex))
                }
            }
            line("  MLE header at \(p.mleHeader.offset): range [\(p.mleHeader.mleStart), \(p.mleHeader.mleEnd)), command line slot [\(p.mleHeader.cmdlineStart), \(p.mleHeader.cmdlineEnd))")
        }
        if !v.notes.isEmpty {
            line()
            line(Terminal.bold("Notes"))
            for n in v.notes { line(Terminal.wrap("- \(n)", indent: 2)) }
        }
        return out
    }
}
