// SPDX-License-Identifier: Apache-2.0
/// What `aem-pcr notice` keeps between runs (`STATE/notice.state`, a small text file): for one
/// entry of one grub.cfg, the measurements of the files it named at the last run (`next`) and,
/// within one boot, the reference for that boot (`baseline`), with the boot it was written in.
/// Version 1 of the format:
///
///     # comment
///     version\t1
///     boot_id\t<the kernel's boot_id>
///     config\t<grub.cfg>
///     entry\t<title path>
///     baseline\t<extend>        (zero or more)
///     next\t<extend>            (one or more)
///
/// where an extend is `component\tPCR\tbank:hex,bank:hex\tFILE` (`NoticeState.Extend`).
public struct NoticeState: Sendable, Equatable {
    /// One extend: component, PCR and digest per bank (`module 0\t18\tsha1:…,sha256:…\tFILE`).
    public struct Extend: Sendable, Equatable {
        public var component: String
        public var pcr: PCRIndex
        /// Bank name (`sha1`) → lowercase hex.
        public var digests: [String: String]
        public var file: String

        public init(component: String, pcr: PCRIndex, digests: [String: String], file: String) {
            self.component = component
            self.pcr = pcr
            self.digests = digests
            self.file = file
        }

        /// A SINIT module's image (component `SINIT`), not an event of the boot.
        public var isSINITModule: Bool { component == Self.sinitComponent }
        static let sinitComponent = "SINIT"

        /// What notice prints for it: "module 0 (xen-4.17.5.gz)", "SINIT module NAME".
        var summary: String {
            let name = NoticeComparison.printableName(file)
            if isSINITModule { return "SINIT module \(name)" }
            return "\(component)\(file.isEmpty ? "" : " (\(name))")"
        }

        /// The extend as the event model holds it, for `EventDiff` (its `what` is `summary`);
        /// nil for a SINIT module, an unknown component, bank or digest. The state does not
        /// keep the event type: the MLE hash's is 0x404, tboot's (policy, modules) 0x501.
        public var event: PredictedEvent? {
            guard !isSINITModule, let c = Component(label: component), let d = parsedDigests else { return nil }
            let type: EventType = c == .mle ? .mleHash : .tbootMeasurement
            return PredictedEvent(pcr: pcr, type: type, part: .measured(c), file: file, what: summary, digests: d)
        }

        /// The digests as values; nil when a bank name or a digest is not one.
        var parsedDigests: [HashAlgorithm: Digest]? {
            var out = [HashAlgorithm: Digest]()
            for (name, hex) in digests {
                guard let bank = HashAlgorithm(name: name), bank.name == name, let d = Digest(bank, hex: hex),
                      d.hex == hex else { return nil }
                out[bank] = d
            }
            return out
        }
    }

    /// The extends of one set of files, in order, plus SINIT modules (component `SINIT`, PCR17).
    public struct Record: Sendable, Equatable {
        public var extends: [Extend]

        public init(extends: [Extend]) { self.extends = extends }

        /// The boot's events, in order (every extend but the SINIT modules').
        public var events: [PredictedEvent] { extends.compactMap(\.event) }

        /// The SINIT modules' images.
        public var sinitModules: [Extend] { extends.filter(\.isSINITModule) }

        /// What a prediction from files measures: each event, and each SINIT module's image.
        public init(_ p: Prediction) {
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
                out.append(Extend(component: Extend.sinitComponent, pcr: 17,
                                  digests: Dictionary(uniqueKeysWithValues: m.imageDigests.map { ($0.key.description, $0.value.hex) }),
                                  file: m.spec.path))
            }
            extends = out
        }

        var lines: [String] {
            extends.map { e in
                let d = e.digests.sorted { $0.key < $1.key }.map { "\($0.key):\($0.value)" }.joined(separator: ",")
                return "\(e.component)\t\(e.pcr.rawValue)\t\(d)\t\(e.file.filter { $0 != "\t" && $0 != "\n" })"
            }
        }

        /// One extend's line after its `baseline`/`next` key; nil when it is not one.
        static func parse(_ line: Substring) -> Extend? {
            let f = line.split(separator: "\t", omittingEmptySubsequences: false)
            guard f.count == 4, let pcr = UInt32(f[1]) else { return nil }
            var digests = [String: String]()
            for pair in f[2].split(separator: ",") {
                let kv = pair.split(separator: ":")
                guard kv.count == 2 else { return nil }
                digests[String(kv[0])] = String(kv[1])
            }
            let e = Extend(component: String(f[0]), pcr: PCRIndex(rawValue: pcr), digests: digests, file: String(f[3]))
            // Every extend is an event of the model or a SINIT module, with digests that are values.
            guard e.isSINITModule ? e.parsedDigests != nil : e.event != nil else { return nil }
            return e
        }
    }

    public var bootID: String
    public var config: String
    public var entry: String
    public var baseline: Record?
    public var next: Record

    public init(bootID: String, config: String, entry: String, baseline: Record?, next: Record) {
        self.bootID = bootID
        self.config = config
        self.entry = entry
        self.baseline = baseline
        self.next = next
    }

    /// The largest state file read (a few hundred bytes per module in practice).
    public static let sizeLimit = 1 << 20

    /// The file's text.
    public var text: String {
        var out = "# aem-pcr notice state: measurements of the AEM entry's files (no secret)\n"
        out += "version\t1\nboot_id\t\(bootID)\nconfig\t\(config)\nentry\t\(entry)\n"
        if let b = baseline { out += b.lines.map { "baseline\t" + $0 + "\n" }.joined() }
        out += next.lines.map { "next\t" + $0 + "\n" }.joined()
        return out
    }

    /// Whether it was saved for this grub.cfg and entry.
    public func isFor(config: String, entry: String) -> Bool {
        self.config == config && self.entry == entry
    }

    /// What the current boot measured, as far as the state knows: saved in an earlier boot,
    /// the files it names are the ones this boot measured (`next`); saved in this boot, the
    /// reference it kept for this boot (`baseline`, else `next`).
    public func reference(bootID now: String) -> Record {
        bootID == now ? (baseline ?? next) : next
    }

    /// Parses a state file's bytes; the reason (with the line) when they are not one.
    public static func parse(_ bytes: [UInt8]) -> Result<NoticeState, ParseFailure> {
        guard Escape.isUTF8(bytes) else { return .failure(ParseFailure("not UTF-8 text")) }
        var fields = [String: String]()
        var baseline = [Extend](), next = [Extend]()
        var number = 0
        for line in String(decoding: bytes, as: UTF8.self).split(separator: "\n", omittingEmptySubsequences: false) {
            number += 1
            if line.isEmpty || line.hasPrefix("#") { continue }
            guard let tab = line.firstIndex(of: "\t") else {
                return .failure(ParseFailure("line \(number): no tab after the key"))
            }
            let key = String(line[..<tab]), rest = line[line.index(after: tab)...]
            switch key {
            case "baseline", "next":
                guard let e = Record.parse(rest) else {
                    return .failure(ParseFailure("line \(number): not an extend (component, PCR, digests, file)"))
                }
                if key == "baseline" { baseline.append(e) } else { next.append(e) }
            case "version", "boot_id", "config", "entry":
                fields[key] = String(rest)
            default:
                return .failure(ParseFailure("line \(number): unknown key"))
            }
        }
        guard fields["version"] == "1" else {
            return .failure(ParseFailure(fields["version"] == nil ? "no version line" : "version is not 1"))
        }
        for k in ["boot_id", "config", "entry"] where fields[k] == nil {
            return .failure(ParseFailure("no \(k) line"))
        }
        guard !next.isEmpty else { return .failure(ParseFailure("no measurements (next lines)")) }
        return .success(NoticeState(bootID: fields["boot_id"]!, config: fields["config"]!, entry: fields["entry"]!,
                                    baseline: baseline.isEmpty ? nil : Record(extends: baseline), next: Record(extends: next)))
    }

    /// Why a state file is not one.
    public struct ParseFailure: Error, Sendable, CustomStringConvertible {
        public var description: String
        init(_ d: String) { description = d }
    }

    /// A state file as read: absent (the first run), a state, or a file that is there but not
    /// usable (unreadable, too large, corrupt), with the reason.
    public enum Loaded: Sendable {
        case absent
        case state(NoticeState)
        case unusable(reason: String)
    }

    /// Reads the state file.
    public static func load(path: String) -> Loaded {
        let bytes: [UInt8]
        do {
            bytes = try FileReader.readAll(path: path, limit: sizeLimit)
        } catch let e as CodedError where e.code == .fileNotFound {
            return .absent
        } catch {
            return .unusable(reason: "\(error)")
        }
        switch parse(bytes) {
        case .success(let s): return .state(s)
        case .failure(let f): return .unusable(reason: "\(path): \(f)")
        }
    }
}

/// notice's comparison of two sets of measurements. The extends of the boot's events go through
/// the library's one per-PCR event diff (`EventDiff`); the SINIT modules, which are no event of
/// the boot (the CPU measures the one that matches the platform, as part of SINIT's own events),
/// are compared by file: any that changes, appears or goes may change PCR17.
public enum NoticeComparison {
    /// One changed component: what (the component and its file's name) and the PCRs it changes.
    public struct Change: Sendable, Equatable {
        public var what: String
        public var pcrs: [PCRIndex]
    }

    /// What differs in `new` from `old`: per component, the PCRs it changes, sorted by name.
    public static func changes(from old: NoticeState.Record, to new: NoticeState.Record) -> [Change] {
        var changed = [String: Set<PCRIndex>]()
        // The events, PCR by PCR and position by position.
        let diff = EventDiff(old: old.events, new: new.events)
        for c in diff.changes { changed[c.event.what, default: []].insert(c.pcr) }
        // The SINIT modules, by file.
        func images(_ r: NoticeState.Record) -> [String: NoticeState.Extend] {
            var out = [String: NoticeState.Extend]()
            for e in r.sinitModules where out[e.file] == nil { out[e.file] = e }
            return out
        }
        let a = images(old), b = images(new)
        for (file, e) in b where a[file].map({ !sameDigests($0, e) }) ?? true {
            changed[e.summary, default: []].insert(e.pcr)
        }
        for (file, o) in a where b[file] == nil { changed[o.summary, default: []].insert(o.pcr) }
        return changed.keys.sorted().map { Change(what: $0, pcrs: changed[$0]!.sorted()) }
    }

    /// The same digest in every bank both carry, and at least one bank in common (as
    /// `EventDiff` judges an event).
    static func sameDigests(_ a: NoticeState.Extend, _ b: NoticeState.Extend) -> Bool {
        let common = Set(a.digests.keys).intersection(b.digests.keys)
        return !common.isEmpty && common.allSatisfy { a.digests[$0] == b.digests[$0] }
    }

    /// A file's last path component, cut at 60 characters (escaped where it is printed).
    static func printableName(_ path: String) -> String {
        String((path.split(separator: "/").last.map(String.init) ?? path).prefix(60))
    }
}
