import AEMPCR
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

    @Option(help: ArgumentHelp("The entry to check (default: the first top-level entry whose title starts with 'AEM').", valueName: "title|index"))
    var entry: String?

    @Option(name: .customLong("boot-dir"), help: ArgumentHelp("Where grub.cfg's paths resolve.", valueName: "dir"))
    var bootDir = "/boot"

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
        // The parsed grub.cfg is dropped once the entry is read: a menu of 200,000 entries is
        // not held while the files are hashed.
        let grubEntry: GrubEntry, spec: BootSpec
        do {
            let config = try GrubConfig(path: cfg)
            if let entry {
                grubEntry = try config.entry(entry, bootDir: bootDir)
            } else if let aem = try Notice.firstAEMEntry(config, bootDir: bootDir) {
                grubEntry = aem
            } else {
                return []  // No AEM entry: nothing to notice (a machine without Anti Evil Maid).
            }
            spec = try BootSpec(entry: grubEntry, config: config, bootDir: bootDir)
        }
        let title = grubEntry.titlePath.joined(separator: ">")
        var lines = [TerminalText]()
        var baseline: NoticeState.Record?
        var source = ""
        var changedPCRs = Set<PCRIndex>()
        var changes = [String]()
        var current: Prediction?
        var logProblem: String?

        if let log = liveLog() {
            do {
                // The log tells the family unless it holds SHA-1 records only; then ask the kernel.
                let family = tpm ?? ((try? LogPredictor.facts(of: log))?.tpm == nil ? Notice.sysfsFamily() : nil)
                let configuration = try LogPredictor.configuration(
                    for: log, tpm: family, mapping: nil, extendPolicy: nil,
                    nextBoot: TbootCommandLine(String(decoding: spec.tbootCmdline, as: UTF8.self)),
                    tbootVersion: TbootVersion("1.10.5")!, banks: nil)
                let p = try LogPredictor.predict(log: log, boot: spec, predictor: Predictor(configuration: configuration),
                                                 allowPolicyChange: true)
                current = p.files
                source = "the current boot's DRTM log (\(mem); not checked against the TPM here)"
                for c in p.changes {
                    changedPCRs.insert(c.pcr)
                    let line = "\(c.label) changes: PCR\(c.pcr)"
                    if !changes.contains(line) { changes.append(line) }
                }
            } catch {
                // The saved measurements still serve; say why the log did not.
                logProblem = "\(error)"
            }
        }
        let now: Prediction
        if let c = current {
            now = c
        } else {
            let family = tpm ?? Notice.sysfsFamily() ?? .tpm12
            let configuration = try LaunchConfiguration(tpm: family, mapping: nil, extendPolicy: nil,
                                                        tbootVersion: TbootVersion("1.10.5")!, activeBanks: nil)
            now = try Predictor(configuration: configuration).predict(spec)
        }
        let record = NoticeState.Record(now)
        let bootID = Notice.bootID()
        let saved = NoticeState.load(path: statePath, config: cfg, entry: title)
        if source.isEmpty {
            if let s = saved {
                // Saved before this boot: those files are the ones this boot measured. Saved in
                // this boot: the reference it kept for this boot.
                baseline = s.bootID == bootID ? (s.baseline ?? s.next) : s.next
                source = "the measurements aem-pcr notice saved for the current boot (\(statePath))"
            }
        }
        if let b = baseline {
            for c in record.compare(with: b) {
                changedPCRs.formUnion(c.pcrs)
                changes.append("\(c.what) changes: \(c.pcrs.map { "PCR\($0)" }.joined(separator: ", "))")
            }
        }
        let keep = saved.flatMap { $0.bootID == bootID ? ($0.baseline ?? $0.next) : $0.next }
        let saveError = save(NoticeState(bootID: bootID, config: cfg, entry: title,
                                         baseline: source.hasPrefix("the current boot's") ? nil : keep,
                                         next: record))

        if source.isEmpty {
            let kept: TerminalText = saveError == nil ? "saved the measurements of '\(title)' in \(stateDir) for the next update"
                : "and the measurements of '\(title)' could not be saved (\(saveError!))"
            let noLog: TerminalText = logProblem == nil ? "no readable DRTM log in \(mem)" : "the live DRTM log not usable"
            lines.append(Terminal.wrap("aem-pcr: no record of what the current boot measured (\(noLog), nothing saved yet); \(kept).", hang: 2))
            if let p = logProblem { lines.append(Terminal.wrap("  (the live DRTM log was not used: \(p))", indent: 0, hang: 4)) }
            return lines
        } else if changedPCRs.isEmpty {
            lines.append(Terminal.wrap("aem-pcr: '\(title)' boots the files the current boot measured (compared with \(source)): no DRTM PCR changes, nothing to reseal.", hang: 2))
        } else {
            let list = changedPCRs.sorted().map { "PCR\($0)" }.joined(separator: ", ")
            lines.append(Terminal.wrap("aem-pcr: after this update the AEM boot '\(title)' changes \(list).", hang: 2))
            for c in changes { lines.append(Terminal.wrap("  \(c)", indent: 0, hang: 4)) }
            lines.append(Terminal.wrap("  Compared with \(source).", indent: 0, hang: 4))
            lines.append("  Pre-seal the AEM secret before rebooting:")
            lines.append(contentsOf: sealCommand(config: cfg, title: title))
        }
        if let e = saveError { lines.append(Terminal.wrap("  (not saved: \(e))", indent: 0, hang: 4)) }
        if let p = logProblem { lines.append(Terminal.wrap("  (the live DRTM log was not used: \(p))", indent: 0, hang: 4)) }
        return lines
    }

    var statePath: String { (stateDir.hasSuffix("/") ? stateDir : stateDir + "/") + "notice.state" }

    /// The pre-seal command, one option per line so it pastes as printed.
    func sealCommand(config: String, title: String) -> [TerminalText] {
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
        if mkdir(stateDir, 0o755) != 0 && errno != EEXIST {
            return "\(stateDir): \(Errno.current)"
        }
        do {
            try SavedSet.write(dir: stateDir, files: [("notice.state", Array(state.text.utf8))])
        } catch {
            return "\(error)"
        }
        return nil
    }

    /// The live DRTM log, or nil when it cannot be read (not root, no TXT, lockdown).
    func liveLog() -> DRTMEventLog? {
        try? LiveBoot.currentLog(mem: mem)
    }

    static func defaultGrubCfg() throws -> String {
        for p in ["/boot/grub2/grub.cfg", "/boot/grub/grub.cfg"] where access(p, F_OK) == 0 { return p }
        throw UsageError("no /boot/grub2/grub.cfg or /boot/grub/grub.cfg; give --grub-cfg")
    }

    /// The first top-level entry whose title starts with "AEM", evaluated, if any: the menu is
    /// evaluated once for all its entries (`GrubConfig.firstEntry`), however many there are.
    static func firstAEMEntry(_ config: GrubConfig, bootDir: String) throws -> GrubEntry? {
        try config.firstEntry(bootDir: bootDir) { $0.hasPrefix("AEM") }
    }

    /// The kernel's view of the TPM (`/sys/class/tpm/tpm0`), if it says.
    static func sysfsFamily() -> TPMFamily? {
        try? LiveTPM.family()
    }

    static func bootID() -> String {
        guard let b = try? FileReader.readAll(path: "/proc/sys/kernel/random/boot_id", limit: 64) else { return "unknown" }
        return String(decoding: b, as: UTF8.self).trimmingCharacters(in: " \n")
    }

    /// Directory names under AEM's state directory (its labels), sorted; no file is opened.
    static func labels(in dir: String) -> [String] {
        guard let d = opendir(dir) else { return [] }
        defer { closedir(d) }
        var out = [String]()
        while let e = readdir(d) {
            let name = withUnsafeBytes(of: e.pointee.d_name) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) }
            if name.hasPrefix(".") { continue }
            var st = stat()
            if stat(dir + "/" + name, &st) == 0, (st.st_mode & S_IFMT) == S_IFDIR,
               name.utf8.allSatisfy({ $0 > 0x20 && $0 < 0x7F }) {
                out.append(name)
            }
        }
        return out.sorted()
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

/// What `notice` keeps between runs (`STATE/notice.state`, a small text file): for one entry of
/// one grub.cfg, the measurements of the files it named at the last run (`next`) and, within one
/// boot, the reference for that boot (`baseline`), with the boot it was written in.
struct NoticeState {
    /// One extend: component, PCR and digest per bank (`module 0\t18\tsha1:…,sha256:…\tFILE`).
    struct Extend: Equatable {
        var component: String
        var pcr: PCRIndex
        var digests: [String: String]
        var file: String
    }

    /// The extends of one set of files, in order, plus SINIT modules (component `SINIT`, PCR17).
    struct Record {
        var extends: [Extend]

        init(extends: [Extend]) { self.extends = extends }

        init(_ p: Prediction) {
            var out = [Extend]()
            for e in p.events {
                let file: String
                switch e.component {
                case .mle: file = p.boot.tbootPath
                case .policy: file = p.policyFromFile ? p.policy.source : "built-in policy"
                case .module(let i): file = p.modules.first { $0.index == i }?.spec.path ?? ""
                }
                out.append(Extend(component: e.component.label, pcr: e.pcr,
                                  digests: Dictionary(uniqueKeysWithValues: e.digests.map { ($0.key.description, $0.value.hex) }),
                                  file: file))
            }
            for m in p.modules where m.removedAs == .sinitACM {
                out.append(Extend(component: "SINIT", pcr: 17,
                                  digests: Dictionary(uniqueKeysWithValues: m.imageDigests.map { ($0.key.description, $0.value.hex) }),
                                  file: m.spec.path))
            }
            extends = out
        }

        /// What differs from `old`: per component, the PCRs it changes.
        func compare(with old: Record) -> [(what: String, pcrs: [PCRIndex])] {
            func key(_ list: [Extend]) -> [String: Extend] {
                var seen = [String: Int]()
                var out = [String: Extend]()
                for e in list {
                    let base = e.component == "SINIT" ? "SINIT \(e.file)" : "\(e.component)@\(e.pcr)"
                    let n = seen[base, default: 0]
                    seen[base] = n + 1
                    out["\(base)#\(n)"] = e
                }
                return out
            }
            let a = key(old.extends), b = key(extends)
            var changed = [String: Set<PCRIndex>]()
            var order = [String]()
            func add(_ e: Extend, _ pcrs: [PCRIndex]) {
                let what = e.component == "SINIT" ? "SINIT module \(printableName(e.file))"
                    : "\(e.component)\(e.file.isEmpty ? "" : " (\(printableName(e.file)))")"
                if changed[what] == nil { order.append(what) }
                changed[what, default: []].formUnion(pcrs)
            }
            for (k, e) in b {
                guard let o = a[k] else { add(e, [e.pcr]); continue }
                let common = Set(o.digests.keys).intersection(e.digests.keys)
                if common.isEmpty || common.contains(where: { o.digests[$0] != e.digests[$0] }) { add(e, [e.pcr]) }
            }
            for (k, o) in a where b[k] == nil { add(o, [o.pcr]) }
            return order.sorted().map { ($0, changed[$0]!.sorted()) }
        }

        var lines: [String] {
            extends.map { e in
                let d = e.digests.sorted { $0.key < $1.key }.map { "\($0.key):\($0.value)" }.joined(separator: ",")
                return "\(e.component)\t\(e.pcr.rawValue)\t\(d)\t\(e.file.filter { $0 != "\t" && $0 != "\n" })"
            }
        }

        static func parse(_ line: Substring) -> Extend? {
            let f = line.split(separator: "\t", omittingEmptySubsequences: false)
            guard f.count == 4, let pcr = UInt32(f[1]) else { return nil }
            var digests = [String: String]()
            for pair in f[2].split(separator: ",") {
                let kv = pair.split(separator: ":")
                guard kv.count == 2 else { return nil }
                digests[String(kv[0])] = String(kv[1])
            }
            return Extend(component: String(f[0]), pcr: PCRIndex(rawValue: pcr), digests: digests, file: String(f[3]))
        }
    }

    var bootID: String
    var config: String
    var entry: String
    var baseline: Record?
    var next: Record

    var text: String {
        var out = "# aem-pcr notice state: measurements of the AEM entry's files (no secret)\n"
        out += "version\t1\nboot_id\t\(bootID)\nconfig\t\(config)\nentry\t\(entry)\n"
        if let b = baseline { out += b.lines.map { "baseline\t" + $0 + "\n" }.joined() }
        out += next.lines.map { "next\t" + $0 + "\n" }.joined()
        return out
    }

    /// The saved state for this grub.cfg and entry; nil when absent, unreadable, or for another
    /// entry.
    static func load(path: String, config: String, entry: String) -> NoticeState? {
        guard let bytes = try? FileReader.readAll(path: path, limit: 1 << 20) else { return nil }
        var fields = [String: String]()
        var baseline = [Extend](), next = [Extend]()
        for line in String(decoding: bytes, as: UTF8.self).split(separator: "\n") where !line.hasPrefix("#") {
            guard let tab = line.firstIndex(of: "\t") else { return nil }
            let key = String(line[..<tab]), rest = line[line.index(after: tab)...]
            switch key {
            case "baseline", "next":
                guard let e = Record.parse(rest) else { return nil }
                if key == "baseline" { baseline.append(e) } else { next.append(e) }
            default: fields[key] = String(rest)
            }
        }
        guard fields["version"] == "1", fields["config"] == config, fields["entry"] == entry,
              let id = fields["boot_id"], !next.isEmpty else { return nil }
        return NoticeState(bootID: id, config: config, entry: entry,
                           baseline: baseline.isEmpty ? nil : Record(extends: baseline), next: Record(extends: next))
    }
}

/// A file's last path component, cut at 60 characters (escaped where it is printed).
private func printableName(_ path: String) -> String {
    String((path.split(separator: "/").last.map(String.init) ?? path).prefix(60))
}
