// SPDX-License-Identifier: Apache-2.0
/// What `aem-pcr notice` finds after a package update: the boot it checks, what the current
/// boot measured (its live DRTM log, else the state notice saved), which PCRs the next boot
/// changes and which component changes each, and the state to save for the next run. Reads
/// grub.cfg and the boot files; the caller reads the log (`CurrentBoot`), resolves the TPM
/// family (`TPMFamilyResolver`), reads the state file and the boot id, and writes the state:
/// this computes and explains. Both comparisons are the library's per-PCR event diff
/// (`NextBoot`'s with the live log, `NoticeComparison` with the saved state).
public enum NoticeCheck {
    /// What the caller read.
    public struct Inputs {
        public var config: String
        /// `--entry` and `--boot-dir`, nil when not given.
        public var entry: String?
        public var bootDir: String?
        /// grubenv's variables (beside grub.cfg), as `load_env` sets them.
        public var environmentBlock: [String: String]
        /// The next boot's TPM family as the one resolver finds it (`--tpm`, the log given, the
        /// kernel), nil when nothing tells.
        public var family: (DRTMEventLog?) -> TPMFamily?
        /// The current boot's DRTM log, unverified (read live; nil when it cannot be read).
        public var liveLog: DRTMEventLog?
        /// The state file as read.
        public var saved: NoticeState.Loaded
        /// The kernel's boot id.
        public var bootID: String

        public init(config: String, entry: String?, bootDir: String?, environmentBlock: [String: String],
                    family: @escaping (DRTMEventLog?) -> TPMFamily?, liveLog: DRTMEventLog?, saved: NoticeState.Loaded, bootID: String) {
            self.config = config
            self.entry = entry
            self.bootDir = bootDir
            self.environmentBlock = environmentBlock
            self.family = family
            self.liveLog = liveLog
            self.saved = saved
            self.bootID = bootID
        }
    }

    /// What the next boot is compared with.
    public enum Reference: Sendable, Equatable {
        /// The current boot's DRTM log (not checked against the TPM here).
        case liveLog
        /// The measurements saved in the state file.
        case savedState
        /// Nothing: the first run, or the state was unusable.
        case none
    }

    public struct Report: Sendable {
        public var target: NoticeTarget
        /// The entry's title path, `>` between levels.
        public var title: String
        public var reference: Reference
        /// Per component, the PCRs it changes (empty: nothing changes, or no reference).
        public var changes: [NoticeComparison.Change]
        /// Every PCR that changes, sorted.
        public var changedPCRs: [PCRIndex]
        /// Why the live log was not used, when there was one.
        public var logProblem: String?
        /// Why the state file could not be used, when it was there.
        public var unusableState: String?
        /// The state to save.
        public var newState: NoticeState
    }

    /// Chooses the boot, predicts it, compares it with the reference.
    public static func run(_ inputs: Inputs) throws -> Report {
        // The parsed grub.cfg is dropped once the entry is read: a menu of 200,000 entries is
        // not held while the files are hashed.
        let target: NoticeTarget, spec: BootSpec
        do {
            let config = try GrubConfig(path: inputs.config)
            target = try NoticeTarget.choose(config: config, entry: inputs.entry, bootDir: inputs.bootDir,
                                             environmentBlock: inputs.environmentBlock)
            spec = try BootSpec(entry: target.entry, config: config, bootDir: target.bootDir)
        }
        let title = target.entry.titlePath.joined(separator: ">")
        var reference = Reference.none
        var changedPCRs = Set<PCRIndex>()
        var changes = [NoticeComparison.Change]()
        var current: Prediction?
        var logProblem: String?

        if let log = inputs.liveLog {
            do {
                // Where nothing tells the family, the configuration says why.
                let configuration = try LogPredictor.configuration(
                    for: log, tpm: inputs.family(log), mapping: nil, extendPolicy: nil,
                    nextBoot: TbootCommandLine(String(decoding: spec.tbootCmdline, as: UTF8.self)),
                    tbootVersion: .debian12, banks: nil)
                let next = try NextBoot(log: log, boot: spec, predictor: Predictor(configuration: configuration),
                                        allowPolicyChange: true)
                current = next.prediction.files
                reference = .liveLog
                for c in next.changes {
                    changedPCRs.insert(c.pcr)
                    let change = NoticeComparison.Change(what: c.label, pcrs: [c.pcr])
                    if !changes.contains(change) { changes.append(change) }
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
            let family = inputs.family(nil) ?? .tpm12
            let configuration = try LaunchConfiguration(tpm: family, mapping: nil, extendPolicy: nil,
                                                        tbootVersion: .debian12, activeBanks: nil)
            now = try Predictor(configuration: configuration).predict(spec)
        }
        let record = NoticeState.Record(now)
        var saved: NoticeState?
        var unusable: String?
        switch inputs.saved {
        case .absent: break
        case .state(let s): saved = s.isFor(config: inputs.config, entry: title) ? s : nil
        case .unusable(let reason): unusable = reason
        }
        if reference == .none, let s = saved {
            // Saved before this boot: those files are the ones this boot measured. Saved in
            // this boot: the reference it kept for this boot.
            reference = .savedState
            for c in NoticeComparison.changes(from: s.reference(bootID: inputs.bootID), to: record) {
                changedPCRs.formUnion(c.pcrs)
                changes.append(c)
            }
        }
        let keep = saved?.reference(bootID: inputs.bootID)
        let newState = NoticeState(bootID: inputs.bootID, config: inputs.config, entry: title,
                                   baseline: reference == .liveLog ? nil : keep, next: record)
        return Report(target: target, title: title, reference: reference, changes: changes,
                      changedPCRs: changedPCRs.sorted(), logProblem: logProblem, unusableState: unusable, newState: newState)
    }
}
