// SPDX-License-Identifier: Apache-2.0
/// What can be predicted of a TrenchBoot Secure Launch's PCRs, per PCR, and why not — never a
/// guess (issue 24). Each record of the current log is mapped to what feeds it (the sources are
/// listed on `DRTMLaunch`); a PCR is predicted only by copying its current value forward, and
/// only when nothing that feeds it changes. Recomputing a record from a new file is possible for
/// some records (the SKL's `SKINIT`, a module, a command line) and said so, but this version does
/// not read a TrenchBoot boot entry, so it does not compute them.
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
                        + "and this version does not read a TrenchBoot boot entry to tell", sources: mine))
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
