// SPDX-License-Identifier: Apache-2.0
/// Predicts every PCR tboot touches, in every bank, from the current boot's DRTM log and the
/// candidate files (tboot `policy.c`): SINIT's events are kept, SINIT's MLE hash is recomputed for the
/// candidate tboot and command line, tboot's own events are replaced by those predicted from the
/// files, and the result is replayed from zeros. One choice per logged event (STYLE 7).
public enum LogPredictor {
    /// What a log tells about the launch that wrote it.
    public struct LaunchFacts: Sendable, Equatable {
        /// nil when the format does not tell (a SHA-1-only text log).
        public var tpm: TPMFamily?
        public var mapping: PCRMapping
        /// Banks of tboot's own events (0x501).
        public var tbootBanks: [HashAlgorithm]
        /// PCR of SINIT's MLE hash event.
        public var mlePCR: PCRIndex
    }

    public static func facts(of log: DRTMEventLog) throws -> LaunchFacts {
        let launch = DRTMLaunch.recognise(log)
        if launch.isTrenchBoot {
            throw CodedError(.secureLaunchNotPredicted, "\(log.source): \(launch.description): "
                + SecureLaunchPrediction.refusal(SecureLaunchPrediction.assess(log, changed: nil)))
        }
        guard let mle = log.events.first(where: { $0.type == .mleHash }) else {
            throw CodedError(.logIncomplete, "\(log.source): no MLE_HASH event (0x404); not the log of a complete TXT launch")
        }
        let tbootEvents = log.events.filter { $0.type == .tbootMeasurement }
        guard !tbootEvents.isEmpty else {
            throw CodedError(.logIncomplete, "\(log.source): no tboot event (0x501); tboot did not measure in this boot")
        }
        var banks = Set<HashAlgorithm>()
        for e in tbootEvents { banks.formUnion(e.digests.keys) }
        let tpm: TPMFamily?
        switch log.format {
        case .tpm12Container: tpm = .tpm12
        case .tpm20TCG: tpm = .tpm20
        // SHA-1-only per-algorithm records look like TPM 1.2 records without their container.
        case .tpm20Legacy: tpm = log.banks.contains { $0 != .sha1 } ? .tpm20 : nil
        case .txtStatText: tpm = log.banks.contains { $0 != .sha1 } ? .tpm20 : nil
        }
        return LaunchFacts(tpm: tpm, mapping: mle.pcr == 18 ? .legacy : .da, tbootBanks: banks.sorted(), mlePCR: mle.pcr)
    }

    /// The launch configuration the log shows, checked against what the user said. `banks`
    /// must be banks of the log; the configuration's active banks are all of the log's.
    /// `nextBoot`: the `pcr_map=`/`extpol=` of the next boot's tboot command line; they must be
    /// what the log shows, since SINIT's kept events depend on them.
    public static func configuration(for log: DRTMEventLog, tpm: TPMFamily?, mapping: PCRMapping?,
                                     extendPolicy: ExtendPolicy?, nextBoot: TbootCommandLine = try! TbootCommandLine(""),
                                     tbootVersion: TbootVersion = .debian12,
                                     banks: [HashAlgorithm]?) throws -> LaunchConfiguration {
        let f = try facts(of: log)
        if let t = tpm, let ft = f.tpm, t != ft {
            throw CodedError(.optionsContradictLog, "\(log.source) is a TPM \(ft.rawValue) log but --tpm \(t.rawValue) was given")
        }
        guard let family = tpm ?? f.tpm else {
            throw CodedError(.optionsContradictLog, "\(log.source) does not tell the TPM family (SHA-1 records only): give --tpm 1.2 or --tpm 2.0")
        }
        if let m = mapping, m != f.mapping {
            throw CodedError(.optionsContradictLog, "\(log.source) shows the \(f.mapping.rawValue) PCR mapping (MLE hash in PCR\(f.mlePCR)) but --pcr-map \(m.rawValue) was given")
        }
        if family == .tpm12, let m = nextBoot.pcrMap, m != f.mapping {
            throw CodedError(.optionsContradictLog, "the next boot's tboot command line has pcr_map=\(m.rawValue), but \(log.source) shows the \(f.mapping.rawValue) mapping: SINIT measures differently under another mapping, so this log cannot predict that boot")
        }
        let logBanks = log.banks.filter(\.isComputable)
        if let b = banks, let extra = b.first(where: { !log.banks.contains($0) }) {
            throw CodedError(.optionsContradictLog, "\(log.source) has no \(extra) bank; its banks: \(log.banks.map(\.description).joined(separator: ", "))")
        }
        var extpol = extendPolicy
        if family == .tpm20, let e = nextBoot.extendPolicy {
            if let o = extendPolicy, o != e {
                throw CodedError(.optionsContradictLog, "--extpol \(o.rawValue) contradicts extpol=\(e.rawValue) on the next boot's tboot command line")
            }
            extpol = e
        }
        // No extpol= on the next boot's line (and no --extpol): tboot uses its default, whatever
        // the current boot ran with. An omitted option is a change like an explicit one.
        let implicit = family == .tpm20 && extpol == nil
        // The TPM's active banks are the log's; `banks` only chooses what to report.
        let c = try LaunchConfiguration(tpm: family, mapping: f.mapping, extendPolicy: extpol,
                                        tbootVersion: tbootVersion, activeBanks: logBanks)
        if Set(c.extendedBanks.filter(\.isComputable)) != Set(f.tbootBanks.filter(\.isComputable)) {
            let source = implicit
                ? "the next boot's tboot command line has no extpol=, so tboot \(tbootVersion) uses its default extpol=\(c.extendPolicy.rawValue), which"
                : "extpol=\(c.extendPolicy.rawValue)"
            throw CodedError(.optionsContradictLog,
                "\(log.source) shows tboot extending \(f.tbootBanks.map(\.description).joined(separator: "+")), but \(source) would extend \(c.extendedBanks.map(\.description).joined(separator: "+")); SINIT's kept events and tboot's differ in banks under another extend policy, so this log cannot predict that boot (keep the current boot's extpol= on the next boot's tboot command line)")
        }
        // Every tboot event of the log must carry the same banks: otherwise the log is not one
        // extend policy's.
        let tbootEvents = log.events.filter { $0.type == .tbootMeasurement }
        if let odd = tbootEvents.first(where: { Set($0.digests.keys) != Set(f.tbootBanks) }) {
            throw CodedError(.logIncomplete, "\(log.source): tboot's event at \(odd.location) carries \(odd.digests.keys.sorted().map(\.description).joined(separator: "+")), others \(f.tbootBanks.map(\.description).joined(separator: "+")); not one extend policy's log")
        }
        return c
    }

    /// The prediction, with the current log replayed beside it.
    /// `allowPolicyChange`: predict even though the policy event of the current log differs from
    /// the one predicted (the policy is meant to change at this reboot). `forceOffered`: the
    /// command takes `--force` for that, so a refusal names it (seal takes none).
    public static func predict(log: DRTMEventLog, boot: BootSpec, predictor: Predictor,
                               allowPolicyChange: Bool = false, forceOffered: Bool = true) throws -> LogPrediction {
        let changeWayOut = forceOffered
            ? ", or --force if it changes at this reboot"
            : "; a policy that changes at this reboot cannot be sealed to before it: reboot, then reseal with AEM's anti-evil-maid-seal once you trust the boot"
        let files = try predictor.predict(boot, alsoMLEBanks: log.banks.filter(\.isComputable))
        guard let mle = files.events.first(where: { $0.part == .measured(.mle) }) else {
            throw CodedError(.logIncomplete, "no MLE hash predicted")
        }
        let predictedTboot = files.events.filter { $0.type == .tbootMeasurement }
        var notes = files.notes

        // tboot's first event in the policy event's PCR is its policy event: the log shows which
        // policy this boot used (a log grouped per PCR keeps each PCR's own order).
        if let predicted = predictedTboot.first(where: { $0.part == .measured(.policy) }),
           let logged = log.events.first(where: { $0.type == .tbootMeasurement && $0.pcr == predicted.pcr }) {
            let differing = logged.digests.keys.sorted().filter { b in
                predicted.digests[b].map { $0 != logged.digests[b] } ?? false
            }
            if let b = differing.first {
                let message = "\(log.source): the policy event of the current boot (\(b) \(logged.digests[b]!.hex)) is not that of \(files.policy.source) (\(predicted.digests[b]!.hex)): tboot ran with another policy (a custom one in TPM NV, or another tboot release)"
                if !allowPolicyChange {
                    throw CodedError(.policyDiffersFromLog, message + "; give that policy with --policy FILE (as tb_polgen writes it) or the right --tboot-version" + changeWayOut)
                }
                notes.append(message + "; predicting with the new policy as asked (--force)")
            }
        }

        // PCRs of the policy's NV entries that no file measurement goes to (PCR22 by default).
        let nvPCRs = Set(files.policy.entries.filter(\.isNV).compactMap(\.pcrIndex))
            .subtracting(predictedTboot.map(\.pcr))
        var events = [PredictedEvent]()
        var oldTboot = [DRTMEvent]()
        for e in log.events {
            switch e.type {
            case .mleHash:
                var n = mle
                n.pcr = e.pcr
                n.digests = [:]
                for bank in e.digests.keys.sorted() {
                    guard let d = mle.digests[bank] else {
                        throw CodedError(.logIncomplete, "\(log.source): the MLE hash event has a \(bank) digest, which cannot be computed")
                    }
                    n.digests[bank] = d
                }
                events.append(n)
            case .tbootMeasurement where nvPCRs.contains(e.pcr):
                // tboot's measurement of TPM NV (measure_nv=true, TPM 1.2): NV does not change
                // with the files, so it is kept.
                events.append(PredictedEvent(logged: e, what: "tboot's measurement of TPM NV, kept from \(log.source)"))
            case .tbootMeasurement:
                oldTboot.append(e)
            default:
                events.append(PredictedEvent(logged: e, what: "SINIT event kept from \(log.source)"))
            }
        }
        // tboot's events as predicted, in the log's banks.
        for p in predictedTboot {
            var n = p
            n.digests = p.digests.filter { log.banks.contains($0.key) }
            events.append(n)
        }
        // The routing: tboot extends the same PCRs as in the current boot (how many events each
        // gets follows the number of modules, which may change).
        let oldPCRs = Set(oldTboot.map(\.pcr)), newPCRs = Set(predictedTboot.map(\.pcr))
        if oldPCRs != newPCRs {
            func counts(_ es: [PCRIndex]) -> String {
                Set(es).sorted().map { p in "\(es.filter { $0 == p }.count) to PCR\(p)" }.joined(separator: ", ")
            }
            let message = "tboot's events go to other PCRs than in the current boot (now \(counts(oldTboot.map(\.pcr))); next \(counts(predictedTboot.map(\.pcr)))): the policy's routing differs from the one this boot used"
            if !allowPolicyChange {
                throw CodedError(.policyDiffersFromLog, "\(log.source): " + message + "; give the policy in TPM NV with --policy FILE" + changeWayOut)
            }
            notes.append(message + " (--force)")
        }
        // What changes: the one per-PCR comparison of the current log with the predicted one.
        // SINIT's kept events precede tboot's in each PCR (SINIT runs first), so the k-th tboot
        // event of a PCR meets the k-th predicted for it.
        let changes = EventDiff(old: log.events.map { e in
            PredictedEvent(logged: e, what: e.type == .tbootMeasurement ? "a tboot event of the current log" : "an event of the current log")
        }, new: events).changes

        let newLog = DRTMEventLog(format: log.format, banks: log.banks,
                                  events: events.map { DRTMEvent(pcr: $0.pcr, type: $0.type, digests: Array($0.digests.values)) },
                                  source: "prediction")
        let current = log.replay()
        let replay = newLog.replay()
        var predicted = PCRValues()
        var currentValues = PCRValues()
        let pcrs = Set<PCRIndex>([17, 18, 19]).union(replay.entries.map(\.pcr)).union(current.entries.map(\.pcr)).sorted()
        for bank in files.configuration.activeBanks where bank.isComputable {
            for pcr in pcrs where pcr.isDynamic {
                predicted[bank, pcr] = replay[pcr, bank]?.value ?? .zeros(bank)
                currentValues[bank, pcr] = current[pcr, bank]?.value ?? .zeros(bank)
            }
        }
        if changes.contains(where: { $0.type == .mleHash }) {
            notes.append("tboot or its command line changes (the MLE hash differs): SINIT also measures the capabilities tboot requests (event 0x40f); they are kept from the current boot, which holds only if the new tboot requests the same ones")
        }
        notes.append("SINIT's events are kept from \(log.source): the prediction holds while the SINIT ACM, the platform's LCP/BIOS policy and the TXT configuration stay as in that boot")
        return LogPrediction(files: files, log: log, events: events,
                             current: currentValues, predicted: predicted, changes: changes, notes: notes)
    }
}

/// A prediction of every DRTM PCR from the current log and the candidate files.
public struct LogPrediction: Sendable {
    /// The prediction from the files alone (modules, policy, MLE).
    public var files: Prediction
    public var log: DRTMEventLog
    /// The predicted log, in order: the current log's events kept (SINIT's, tboot's TPM NV
    /// measurement), the MLE hash recomputed in place, then tboot's events predicted.
    public var events: [PredictedEvent]
    /// Replay of the current log (PCR17–19 and any other it extends).
    public var current: PCRValues
    /// Replay of the predicted log.
    public var predicted: PCRValues
    /// The events that differ between the current log and the predicted one (`EventDiff`).
    public var changes: [EventDiff.Change]
    public var notes: [String]
}
