// SPDX-License-Identifier: Apache-2.0
/// What can be predicted of a TrenchBoot Secure Launch's PCRs, per PCR, and why not — never a
/// guess (issue 24). Each record of the current log is mapped to what feeds it (the sources are
/// listed on `DRTMLaunch`); a PCR is predicted only by copying its current value forward, and
/// only when nothing that feeds it changes: `statements(_:boot:)` compares each record that the
/// next boot's entry determines (a module, its string, Xen's command line) with the logged
/// digest; records it cannot compute (the SKL, Xen as laid out, the Multiboot2 block) stop a copy.
public enum SecureLaunchPrediction {
    /// What a record measures.
    public enum Input: Hashable, Sendable, CustomStringConvertible {
        /// The secure-kernel-loader image (the SLB SKINIT measures).
        case loader
        /// The launched kernel (Xen) as the loader laid it out: `DLME`, its entry offset, SINIT's MLE hash.
        case kernelImage
        /// Xen's or Linux's command line.
        case kernelCommandLine
        /// Module `k` (0-based, in log order).
        case module(Int)
        /// Module `k`'s name and arguments as Xen reads them.
        case moduleString(Int)
        /// The Multiboot2 information block, or Linux's boot parameters: addresses, sizes,
        /// command lines and the firmware's memory map.
        case bootInformation
        /// The SLRT platform entry (its addresses zeroed) or SINIT's own records.
        case constant
        /// A record this version does not know.
        case unknown

        public var description: String {
            switch self {
            case .loader: return "the secure-kernel-loader"
            case .kernelImage: return "the launched kernel's image"
            case .kernelCommandLine: return "the kernel's command line"
            case .module(let k): return "module \(k)"
            case .moduleString(let k): return "module \(k)'s name and arguments"
            case .bootInformation: return "the boot information block"
            case .constant: return "a constant"
            case .unknown: return "an unknown input"
            }
        }
    }

    /// One record and what feeds it.
    public struct Source: Sendable, Equatable {
        public let eventIndex: Int
        public let input: Input
        /// Whether a new value could be computed from files (else: copied forward only).
        public let computableFromFiles: Bool
        public let why: String
    }

    /// One PCR: predicted (its current value copied forward) or not, and why.
    public struct Verdict: Sendable, Equatable {
        public let pcr: PCRIndex
        public let predictable: Bool
        public let reason: String
        public let sources: [Source]
    }

    /// What feeds each record of `log` that is extended (EV_NO_ACTION left out).
    public static func sources(_ log: DRTMEventLog) -> [Source] {
        var out = [Source]()
        var module = 0, moduleString = 0
        var bareSeen = 0
        let launch = DRTMLaunch.recognise(log)
        for (i, e) in log.events.enumerated() where e.type != .noAction && e.pcr.rawValue <= 23 {
            if e.isSINITEvent {
                if e.type == .mleHash {
                    out.append(.init(eventIndex: i, input: .kernelImage, computableFromFiles: false,
                        why: "SINIT's hash of the MLE pages GRUB built for the kernel"))
                } else {
                    out.append(.init(eventIndex: i, input: .constant, computableFromFiles: false,
                        why: "SINIT's own record, copied from the current log"))
                }
                continue
            }
            switch e.type == .secureLaunch ? (e.dataText ?? "") : "\u{0}" {
            case "SKINIT":
                out.append(.init(eventIndex: i, input: .loader, computableFromFiles: true,
                    why: "SKINIT's hash of the SKL image's first bytes, as many as its header's length field says"))
            case "DLME entry offset":
                out.append(.init(eventIndex: i, input: .kernelImage, computableFromFiles: false,
                    why: "the entry offset GRUB read from the kernel's MLE header"))
            case "DLME":
                out.append(.init(eventIndex: i, input: .kernelImage, computableFromFiles: false,
                    why: "the kernel as GRUB laid it out in memory, which is not its file byte for byte"))
            case "MB module", "Measured MB2 module":
                out.append(.init(eventIndex: i, input: .module(module), computableFromFiles: true,
                    why: "the hash of module \(module) as loaded"))
                module += 1
            case "MB module string":
                out.append(.init(eventIndex: i, input: .moduleString(moduleString), computableFromFiles: true,
                    why: "module \(moduleString)'s name and arguments as Xen reads them from its configuration"))
                moduleString += 1
            case "Xen's command line", "Measured Kernel command line":
                out.append(.init(eventIndex: i, input: .kernelCommandLine, computableFromFiles: true,
                    why: "the kernel's command line"))
            case "Measured boot parameters", "Measured MB2 information":
                out.append(.init(eventIndex: i, input: .bootInformation, computableFromFiles: false,
                    why: "boot information holding addresses, sizes and the memory map"))
            case "" where e.type == .secureLaunch && e.pcr == 18:
                // Xen's records without data: on the Multiboot2 path first the information block,
                // then the SLRT platform entry; on EFI only the platform entry.
                bareSeen += 1
                if launch.target == .xenMultiboot2 && bareSeen == 1 {
                    out.append(.init(eventIndex: i, input: .bootInformation, computableFromFiles: false,
                        why: "the Multiboot2 information block: module sizes, command lines and the firmware's memory map"))
                } else {
                    out.append(.init(eventIndex: i, input: .constant, computableFromFiles: false,
                        why: "the SLRT platform entry, whose addresses Xen zeroes before measuring it"))
                }
            default:
                out.append(.init(eventIndex: i, input: .unknown, computableFromFiles: false,
                    why: "a record this version does not know"))
            }
        }
        return out
    }

    /// Whether `input` changes when `changed` does: the boot information block holds every
    /// module's size and string and the command line.
    static func affected(_ input: Input, by changed: Set<Input>) -> Bool {
        if changed.contains(input) { return true }
        if input == .bootInformation {
            return changed.contains { if case .module = $0 { return true }; if case .moduleString = $0 { return true }
                                      return $0 == .kernelCommandLine }
        }
        return false
    }

    /// Per PCR the log extends: predictable (copied forward) only when nothing feeding it is in
    /// `changed`. `changed` nil means the caller cannot tell what changes in the next boot.
    public static func assess(_ log: DRTMEventLog, changed: Set<Input>?) -> [Verdict] {
        let all = sources(log)
        var out = [Verdict]()
        for pcr in Set(all.map { log.events[$0.eventIndex].pcr }).sorted() {
            let mine = all.filter { log.events[$0.eventIndex].pcr == pcr }
            let name = { (s: Source) in "event \(s.eventIndex)" + (log.events[s.eventIndex].dataText.map { " \"\($0)\"" } ?? "") }
            if let unknown = mine.first(where: { $0.input == .unknown }) {
                out.append(Verdict(pcr: pcr, predictable: false,
                    reason: "cannot be predicted: \(name(unknown)) is \(unknown.why)", sources: mine))
                continue
            }
            guard let changed else {
                let feeds = Set(mine.filter { $0.input != .constant }.map { "\($0.input)" }).sorted()
                out.append(Verdict(pcr: pcr, predictable: false,
                    reason: "cannot be predicted: it can only be copied forward while \(feeds.joined(separator: ", ")) stay the same, "
                        + "and nothing here compares them with the next boot's entry (predict, diff and seal do)", sources: mine))
                continue
            }
            let hit = mine.filter { affected($0.input, by: changed) }
            if hit.isEmpty {
                out.append(Verdict(pcr: pcr, predictable: true,
                    reason: "copied forward: nothing that feeds it changes", sources: mine))
            } else {
                let why = hit.map { s in
                    "\(name(s)) (\(s.why)) changes" + (s.computableFromFiles
                        ? ", and its new value, computable from the file, is not computed by this version" : " and cannot be computed from files")
                }
                out.append(Verdict(pcr: pcr, predictable: false,
                    reason: "cannot be predicted: " + why.joined(separator: "; "), sources: mine))
            }
        }
        return out
    }

    /// One line for a refusal: `PCR17 cannot be predicted: …; PCR18 …`.
    public static func refusal(_ verdicts: [Verdict]) -> String {
        verdicts.filter { !$0.predictable }.map { "PCR\($0.pcr) \($0.reason)" }.joined(separator: "; ")
    }
}

// MARK: The next boot's entry against the current log

extension SecureLaunchPrediction {
    /// What the next boot's files say of one record of the current log.
    public enum Check: String, Sendable, Equatable {
        /// The SLRT platform entry or SINIT's own record: the same in every boot.
        case constant
        /// Computed from the entry's file or string, it is the logged digest: unchanged.
        case same
        /// Computed from the entry, it is not the logged digest: changed (or measured in a
        /// form this version does not compute), so the PCR is not copied forward.
        case differs
        /// Not computable from the entry's files: whether it changes cannot be told.
        case unchecked
    }

    /// One record (or a module the log did not measure: no event) and what the entry says of it.
    public struct RecordCheck: Sendable, Equatable {
        public let eventIndex: Int?
        public let pcr: PCRIndex
        public let input: Input
        public let check: Check
        public let detail: String
    }

    /// One PCR of the next boot: its value copied forward from the current log (every record
    /// constant or unchanged), or "cannot be predicted" with every record that stops it.
    public struct Statement: Sendable, Equatable {
        public let pcr: PCRIndex
        /// Per bank, the log's replay, which the next boot repeats; nil when not predicted.
        public let predicted: PCRValues?
        /// `copied forward: …` or `cannot be predicted: …`.
        public let reason: String
        public let records: [RecordCheck]
        /// The reason in a few words, for a one-line refusal: the records named, not explained.
        public let summary: String
        public var isPredicted: Bool { predicted != nil }
    }

    /// The log's PCRs, each stated against `boot` (the next boot's entry). `log` should be the
    /// verified current log: a PCR copied forward is its replay.
    public static func statements(_ log: DRTMEventLog, boot: BootSpec, parallel: Bool = true) throws -> [Statement] {
        let launch = DRTMLaunch.recognise(log)
        let banks = log.banks.filter(\.isComputable)
        let all = sources(log)
        let moduleCount = all.filter { if case .module = $0.input { return true }; return false }.count
        let usesFiles = launch.target != .linux && all.contains { $0.computableFromFiles && $0.input != .loader }
        let measured = usesFiles ? try ModuleMeasurement.measureAll(boot.modules, banks: banks, skipFilename: false, parallel: parallel) : []
        var cmd = MultiHasher(banks)
        cmd.update(boot.tbootCmdline)
        let cmdline = cmd.finalize()

        /// The logged digests of `e` this version can compare (placeholders and uncomputable banks left out).
        func compare(_ i: Int, _ computed: [HashAlgorithm: Digest], what: String) -> (Check, String) {
            let e = log.events[i]
            let pairs = e.sortedDigests.filter { !DRTMLaunch.isOneDigest($0) }.compactMap { d in computed[d.algorithm].map { (d, $0) } }
            guard !pairs.isEmpty else { return (.unchecked, "\(what): the log has no digest in a bank this version computes") }
            if let (logged, new) = pairs.first(where: { $0.0 != $0.1 }) {
                return (.differs, "\(what) hashes to \(logged.algorithm) \(new.hex), the log has \(logged.hex): changed, or measured in a form this version does not compute")
            }
            return (.same, "\(what) hashes to the logged digest")
        }

        var checks = [RecordCheck]()
        for s in all {
            let e = log.events[s.eventIndex]
            let check: Check, detail: String
            switch s.input {
            case .constant:
                (check, detail) = (.constant, s.why)
            case .kernelCommandLine where launch.target != .linux:
                (check, detail) = compare(s.eventIndex, cmdline, what: "the entry's Xen command line '\(String(decoding: boot.tbootCmdline, as: UTF8.self))'")
            case .module(let k) where launch.target != .linux:
                if k < measured.count {
                    (check, detail) = compare(s.eventIndex, measured[k].imageDigests, what: "module \(k) (\(boot.modules[k].path), as GRUB loads it)")
                } else {
                    (check, detail) = (.differs, "the entry loads \(boot.modules.count) module\(boot.modules.count == 1 ? "" : "s"), so module \(k) is not measured in the next boot")
                }
            case .moduleString(let k) where launch.target != .linux:
                if k < measured.count {
                    (check, detail) = compare(s.eventIndex, measured[k].cmdlineDigests, what: "module \(k)'s string '\(String(decoding: boot.modules[k].cmdline, as: UTF8.self))'")
                } else {
                    (check, detail) = (.differs, "the entry loads \(boot.modules.count) module\(boot.modules.count == 1 ? "" : "s"), so module \(k)'s string is not measured in the next boot")
                }
            case .loader:
                (check, detail) = (.unchecked, s.why + "; the secure-kernel-loader's file is not read from the entry by this version, so whether it changes cannot be told")
            case .kernelImage:
                (check, detail) = (.unchecked, s.why + "; not computable from the kernel's file by this version, and the log cannot tell whether the next boot's kernel is the one measured")
            case .bootInformation:
                (check, detail) = (.unchecked, s.why + ", which cannot be computed from files")
            case .unknown:
                (check, detail) = (.unchecked, s.why)
            default:
                (check, detail) = (.unchecked, s.why + "; this version reads Xen's boot entries only, not Linux Secure Launch's")
            }
            checks.append(RecordCheck(eventIndex: s.eventIndex, pcr: e.pcr, input: s.input, check: check, detail: detail))
        }
        // Modules the entry loads beyond those the log measured: new records in the next boot.
        if launch.target != .linux, boot.modules.count > moduleCount,
           let pcr = all.first(where: { if case .module = $0.input { return true }; return false }).map({ log.events[$0.eventIndex].pcr }) {
            for k in moduleCount..<boot.modules.count {
                checks.append(RecordCheck(eventIndex: nil, pcr: pcr, input: .module(k), check: .differs,
                    detail: "the entry loads module \(k) (\(boot.modules[k].path)), which the current log did not measure"))
            }
        }

        let replayed = log.replay().values
        var out = [Statement]()
        for pcr in Set(checks.map(\.pcr)).sorted() {
            let mine = checks.filter { $0.pcr == pcr }
            let name = { (c: RecordCheck) -> String in
                guard let i = c.eventIndex else { return "a new record" }
                return "event \(i)" + (log.events[i].dataText.map { " \"\($0)\"" } ?? "")
            }
            let stops = mine.filter { $0.check == .differs || $0.check == .unchecked }
            if stops.isEmpty {
                var values = PCRValues()
                for b in banks { if let v = replayed[b, pcr] { values[b, pcr] = v } }
                let kept = mine.map { "\(name($0)) \($0.check == .constant ? "constant" : "unchanged")" }
                out.append(Statement(pcr: pcr, predicted: values,
                    reason: "copied forward from the current log: nothing that feeds it changes (" + kept.joined(separator: ", ") + ")",
                    records: mine, summary: "copied forward"))
            } else {
                let unchecked = stops.filter { $0.check == .unchecked }.map(name)
                let differs = stops.filter { $0.check == .differs && $0.eventIndex != nil }.map(name)
                let new = stops.filter { $0.eventIndex == nil }.count
                var parts = [String]()
                if !unchecked.isEmpty { parts.append(unchecked.joined(separator: ", ") + " cannot be computed from files") }
                if !differs.isEmpty { parts.append(differs.joined(separator: ", ") + " differ\(differs.count == 1 ? "s" : "") from the entry's") }
                if new > 0 { parts.append("the entry loads \(new) module\(new == 1 ? "" : "s") the log did not measure") }
                out.append(Statement(pcr: pcr, predicted: nil,
                    reason: "cannot be predicted: " + stops.map { "\(name($0)): \($0.detail)" }.joined(separator: "; "),
                    records: mine, summary: "cannot be predicted: " + parts.joined(separator: "; ")))
            }
        }
        return out
    }
}
