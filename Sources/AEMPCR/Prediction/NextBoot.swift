// SPDX-License-Identifier: Apache-2.0
/// The update plan, "current boot → next boot": the prediction of the next boot from the current
/// boot's verified DRTM log and the next boot's files (`LogPredictor`), and what changes between
/// the two, per PCR and bank (the values) and per PCR (the events, `EventDiff`). `diff` prints
/// it; `seal` seals to its values and saves its events (`SealedPrediction`).
public struct NextBoot: Sendable {
    /// One PCR in one bank, now and at the next boot.
    public struct Value: Sendable, Equatable {
        public var pcr: PCRIndex
        public var bank: HashAlgorithm
        /// nil when the current log does not give it.
        public var current: Digest?
        public var next: Digest
        public var changed: Bool { current != next }
    }

    public var prediction: LogPrediction

    public init(_ prediction: LogPrediction) {
        self.prediction = prediction
    }

    /// Predicts the next boot from `log` (verified against the PCRs by the caller) and `boot`.
    /// `allowPolicyChange`: as `LogPredictor.predict`.
    public init(log: DRTMEventLog, boot: BootSpec, predictor: Predictor, allowPolicyChange: Bool = false) throws {
        self.init(try LogPredictor.predict(log: log, boot: boot, predictor: predictor, allowPolicyChange: allowPolicyChange))
    }

    /// The computable banks of the launch, limited to `only` when it names any.
    public func banks(only: [HashAlgorithm] = []) -> [HashAlgorithm] {
        prediction.files.banks.filter { $0.isComputable && (only.isEmpty || only.contains($0)) }
    }

    /// Every predicted PCR (ascending) in each of `banks`, now and next.
    public func values(banks: [HashAlgorithm]) -> [Value] {
        let p = prediction
        var out = [Value]()
        for pcr in Set(p.predicted.banks.flatMap { p.predicted.pcrs(in: $0) }).sorted() {
            for bank in banks {
                guard let next = p.predicted[bank, pcr] else { continue }
                out.append(Value(pcr: pcr, bank: bank, current: p.current[bank, pcr], next: next))
            }
        }
        return out
    }

    /// The events that differ between the current log and the predicted one.
    public var changes: [EventDiff.Change] { prediction.changes }

    /// The events to save with a seal: the predicted log.
    public var events: [PredictedEvent] { prediction.events }
}
