// SPDX-License-Identifier: Apache-2.0
import AEMPCR
import AEMPCRSeal
import AEMPCRSystem
import AEMPCRTPM
import ArgumentParser
import Glibc

struct Notice: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "After a package update: say which AEM PCRs the next boot changes (package hook).",
        discussion: """
            Run by the dnf and apt hooks after a Xen, kernel, tboot, GRUB or initramfs update. \
            Reads the AEM entry of grub.cfg (the first top-level entry whose title starts with \
            'AEM'), measures the files it names, compares them with what the current boot \
            measured - the live DRTM event log from /dev/mem where it can be read (root), else \
            the measurements it saved in the state directory before this boot - and prints in a \
            few lines which PCRs will change and the command that pre-seals the AEM secret \
            before the reboot.

            It always exits 0 (a problem is one line of output), never prompts, reads no \
            secret, and writes only its state file in the state directory.

            Example:
              aem-pcr notice --grub-cfg Vectors/example/grub.cfg \\
                --boot-dir Vectors/example/boot --state-dir /tmp/aem-pcr-state
            """)

    @Option(name: .customLong("grub-cfg"), help: ArgumentHelp("The grub.cfg with the AEM entries (default /boot/grub2/grub.cfg, else /boot/grub/grub.cfg).", valueName: "file"))
    var grubCfg: String?

    @Option(help: ArgumentHelp("The entry to check (default: the first top-level entry whose title starts with 'AEM'; else GRUB's default entry if it boots tboot; else the first entry that boots tboot).", valueName: "title|index"))
    var entry: String?

    @Option(name: .customLong("boot-dir"), help: ArgumentHelp("Where grub.cfg's paths resolve (default: / for paths under /boot/, the root filesystem's /boot; else /boot, a separate partition).", valueName: "dir"))
    var bootDir: String?

    @Option(name: .customLong("state-dir"), help: ArgumentHelp("Where the measurements of the files are saved between runs; nothing else is written.", valueName: "dir"))
    var stateDir = "/var/lib/aem-pcr"

    @Option(help: ArgumentHelp("Physical memory holding the live DRTM log (as for log dump); unreadable: use the saved state.", valueName: "path"))
    var mem = "/dev/mem"

    @Option(help: ArgumentHelp("TPM family (default: the kernel's /sys/class/tpm/tpm0, or the live log, else 1.2).", valueName: "1.2|2.0"))
    var tpm: TPMFamily?

    @Option(name: .customLong("aem-dir"), help: ArgumentHelp("AEM's directory, whose subdirectories name the labels to pre-seal (only their names are read).", valueName: "dir"))
    var aemDir = "/var/lib/anti-evil-maid"

    func run() {
        do {
            for line in try check() { Terminal.outputLine(line) }
        } catch {
            // Never fail the package transaction: one line, exit 0.
            Terminal.outputLine("aem-pcr notice: could not check the AEM boot: \("\(error)", limit: 2000)")
        }
    }

    /// The lines to print.
    func check() throws -> [TerminalText] {
        let cfg = try grubCfg ?? Notice.defaultGrubCfg()
        // The live log is read without the TPM (notice never opens one): unreadable, the saved
        // state serves.
        let current = CurrentBoot(CurrentBoot.Inputs(mem: mem, stated: tpm))
        let report = try NoticeCheck.run(NoticeCheck.Inputs(
            config: cfg, entry: entry, bootDir: bootDir, environmentBlock: Notice.environmentBlock(beside: cfg),
            family: { log in try? current.resolver.family(log: log, for: .nextBoot).family },
            liveLog: try? current.currentLog(), saved: NoticeState.load(path: statePath), bootID: Notice.bootID()))
        let title = report.title
        var lines = [TerminalText]()
        var setAside = false
        var saveError: String?
        if let reason = report.unusableState {
            // Kept for whoever looks into it, never overwritten: the next runs start anew.
            if let aside = setAsideState() {
                setAside = true
                lines.append(Terminal.wrap("aem-pcr: the saved state was unusable (\(reason, limit: 300)); kept it as \(aside) and started a new one.", hang: 2))
            } else {
                let why = Errno.current
                saveError = "the unusable state is in the way"
                lines.append(Terminal.wrap("aem-pcr: the saved state was unusable (\(reason, limit: 300)) and could not be renamed (\(why)); left as it is.", hang: 2))
            }
        }
        if saveError == nil { saveError = save(report.newState) }
        let source: TerminalText
        switch report.reference {
        case .liveLog: source = "the current boot's DRTM log (\(mem); not checked against the TPM here)"
        case .savedState: source = "the measurements aem-pcr notice saved for the current boot (\(statePath))"
        case .none:
            let kept: TerminalText = saveError == nil ? "saved the measurements of '\(title)' in \(stateDir) for the next update"
                : "and the measurements of '\(title)' could not be saved (\(saveError!))"
            let noLog: TerminalText = report.logProblem == nil ? "no readable DRTM log in \(mem)" : "the live DRTM log not usable"
            let noState: TerminalText = setAside ? "the saved state set aside" : "nothing saved yet"
            lines.append(Terminal.wrap("aem-pcr: no record of what the current boot measured (\(noLog), \(noState)); \(kept).", hang: 2))
            if let p = report.logProblem { lines.append(Terminal.wrap("  (the live DRTM log was not used: \(p))", indent: 0, hang: 4)) }
            return lines
        }
        if report.changedPCRs.isEmpty {
            lines.append(Terminal.wrap("aem-pcr: '\(title)' boots the files the current boot measured (compared with \(source)): no DRTM PCR changes, nothing to reseal.", hang: 2))
        } else {
            let list = report.changedPCRs.map { "PCR\($0)" }.joined(separator: ", ")
            lines.append(Terminal.wrap("aem-pcr: after this update the boot '\(title)' changes \(list).", hang: 2))
            for c in report.changes {
                lines.append(Terminal.wrap("  \(c.what) changes: \(c.pcrs.map { "PCR\($0)" }.joined(separator: ", "))", indent: 0, hang: 4))
            }
            lines.append(Terminal.wrap("  Compared with \(source).", indent: 0, hang: 4))
            lines.append("  Pre-seal the AEM secret before rebooting:")
            lines.append(contentsOf: sealCommand(config: cfg, title: title, bootDir: report.target.bootDir))
        }
        if let e = saveError { lines.append(Terminal.wrap("  (not saved: \(e))", indent: 0, hang: 4)) }
        if let p = report.logProblem { lines.append(Terminal.wrap("  (the live DRTM log was not used: \(p))", indent: 0, hang: 4)) }
        return lines
    }

    var statePath: String { (stateDir.hasSuffix("/") ? stateDir : stateDir + "/") + "notice.state" }

    /// The pre-seal command, one option per line so it pastes as printed.
    func sealCommand(config: String, title: String, bootDir: String) -> [TerminalText] {
        let labels = Notice.labels(in: aemDir)
        let label = labels.count == 1 ? labels[0] : "LABEL"
        var out: [TerminalText] = ["    sudo aem-pcr seal --label \(Notice.quote(label)) \\",
                                   "      --grub-cfg \(Notice.quote(config)) \\"]
        if bootDir != "/boot" { out.append("      --boot-dir \(Notice.quote(bootDir)) \\") }
        out.append("      --entry \(Notice.quote(title))")
        if labels.count > 1 {
            out.append(Terminal.wrap("  (AEM labels: \(labels.joined(separator: ", ")); once for each)", indent: 0, hang: 4))
        }
        return out
    }

    /// Saves the state; the reason when it cannot (not root, read-only).
    func save(_ state: NoticeState) -> String? {
        do {
            try Directory.create(stateDir, mode: 0o755, parents: false)
            try SavedSet.write(dir: stateDir, files: [("notice.state", Array(state.text.utf8))])
        } catch {
            return "\(error)"
        }
        return nil
    }

    static func defaultGrubCfg() throws -> String {
        for p in ["/boot/grub2/grub.cfg", "/boot/grub/grub.cfg"] where access(p, F_OK) == 0 { return p }
        throw CodedError(.usage, "no /boot/grub2/grub.cfg or /boot/grub/grub.cfg; give --grub-cfg")
    }

    /// GRUB's environment block beside grub.cfg (`$prefix/grubenv`), for `saved_entry`; empty
    /// when there is none.
    static func environmentBlock(beside cfg: String) -> [String: String] {
        let dir = cfg.split(separator: "/", omittingEmptySubsequences: false).dropLast().joined(separator: "/")
        let path = (dir.isEmpty ? (cfg.hasPrefix("/") ? "" : ".") : dir) + "/grubenv"
        guard let bytes = try? FileReader.readAll(path: path, limit: 64 << 10) else { return [:] }
        return GrubConfig.parseEnvironmentBlock(bytes)
    }

    /// Renames the unusable state file to `notice.state.unusable-YYYYMMDDTHHMMSSZ` (UTC), a
    /// free name; that name, or nil (errno set) when it cannot.
    func setAsideState() -> String? {
        let stamp = utcStamp()
        for n in 0..<100 {
            let name = statePath + ".unusable-" + stamp + (n == 0 ? "" : "-\(n)")
            var st = stat()
            if lstat(name, &st) == 0 { continue }
            return rename(statePath, name) == 0 ? name : nil
        }
        errno = EEXIST
        return nil
    }

    static func bootID() -> String {
        guard let b = try? FileReader.readAll(path: "/proc/sys/kernel/random/boot_id", limit: 64) else { return "unknown" }
        return String(decoding: b, as: UTF8.self).trimmingCharacters(in: " \n")
    }

    /// Directory names under AEM's state directory (its labels), sorted; no file is opened.
    static func labels(in dir: String) -> [String] {
        ((try? Directory.subdirectories(dir)) ?? []).filter { name in
            !name.hasPrefix(".") && name.utf8.allSatisfy { $0 > 0x20 && $0 < 0x7F }
        }
    }

    /// A shell word: bare when safe, else single-quoted.
    static func quote(_ s: String) -> String {
        let safe = s.utf8.allSatisfy { c in
            (c >= 0x30 && c <= 0x39) || (c >= 0x41 && c <= 0x5A) || (c >= 0x61 && c <= 0x7A) || "/._-=:,+".utf8.contains(c)
        }
        return safe && !s.isEmpty ? s : "'" + s.replacingOccurrences(of: "'", with: "'\\''") + "'"
    }
}

private extension String {
    func trimmingCharacters(in set: String) -> String {
        var s = Substring(self)
        while let c = s.first, set.contains(c) { s = s.dropFirst() }
        while let c = s.last, set.contains(c) { s = s.dropLast() }
        return String(s)
    }

    func replacingOccurrences(of target: String, with replacement: String) -> String {
        split(separator: Character(target), omittingEmptySubsequences: false).joined(separator: replacement)
    }
}
