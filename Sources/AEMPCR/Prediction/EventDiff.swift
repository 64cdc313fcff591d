// SPDX-License-Identifier: Apache-2.0
/// The one comparison of two boots' events: which events a boot adds, removes or changes, per
/// PCR, and why. A PCR's value depends only on its own sequence of extends, so the k-th event a
/// PCR receives in the old boot is compared with the k-th it receives in the new one (a log
/// written grouped per PCR compares the same as one in boot order). Two events are the same when
/// they have the same type and the same digest in every bank both carry.
///
/// `LogPredictor` compares the current log with the predicted one (`diff`'s and `notice`'s
/// changes); `check-boot` compares the saved prediction with the new boot's log.
public struct EventDiff: Sendable {
    /// Why two events, or an event and its absence, differ.
    public enum Reason: Sendable, Equatable {
        /// The new boot extends an event the old one does not (at this position of the PCR).
        case added
        /// The old boot extends an event the new one does not.
        case removed
        /// The digests differ in this bank (the first in TCG order that both carry and differ in).
        case digest(HashAlgorithm)
        /// Same digests where both have one, another event type.
        case type
        /// Same type, and no bank in common to compare: neither the same nor shown to differ.
        case noCommonBank
    }

    /// One position of one PCR where the boots differ.
    public struct Change: Sendable, Equatable {
        public var pcr: PCRIndex
        /// The position among the PCR's events, from 0.
        public var position: Int
        public var old: PredictedEvent?
        public var new: PredictedEvent?
        public var reason: Reason

        /// The event that explains the change: the new one, or the removed one.
        public var event: PredictedEvent { new ?? old! }
        public var type: EventType { event.type }
        /// "MLE hash", "policy", "module 1", "tboot event" (a removed event of a log) …
        public var label: String { event.label }
        /// The new event's explanation; for a removed one, its own and that the new boot lacks it.
        public var what: String {
            if let new { return new.what }
            return "\(old!.what) that the next boot will not have"
        }
    }

    /// The changes: those with a new event in the new boot's order, then the removed ones by PCR
    /// and position.
    public var changes: [Change]

    public init(old: [PredictedEvent], new: [PredictedEvent]) {
        var oldByPCR = [PCRIndex: [PredictedEvent]]()
        for e in old { oldByPCR[e.pcr, default: []].append(e) }
        var newByPCR = [PCRIndex: [(index: Int, event: PredictedEvent)]]()
        for (i, e) in new.enumerated() { newByPCR[e.pcr, default: []].append((i, e)) }
        var withNew = [(index: Int, change: Change)]()
        var removed = [Change]()
        for pcr in Set(oldByPCR.keys).union(newByPCR.keys).sorted() {
            let o = oldByPCR[pcr] ?? [], n = newByPCR[pcr] ?? []
            for k in 0..<max(o.count, n.count) {
                let a = k < o.count ? o[k] : nil, b = k < n.count ? n[k].event : nil
                guard let reason = EventDiff.reason(a, b) else { continue }
                let change = Change(pcr: pcr, position: k, old: a, new: b, reason: reason)
                if b != nil { withNew.append((n[k].index, change)) } else { removed.append(change) }
            }
        }
        changes = withNew.sorted { $0.index < $1.index }.map(\.change) + removed
    }

    /// Why `old` and `new` differ; nil when they are the same.
    static func reason(_ old: PredictedEvent?, _ new: PredictedEvent?) -> Reason? {
        guard let old else { return new == nil ? nil : .added }
        guard let new else { return .removed }
        let banks = Set(old.digests.keys).intersection(new.digests.keys).sorted()
        if let b = banks.first(where: { old.digests[$0] != new.digests[$0] }) { return .digest(b) }
        if old.type != new.type { return .type }
        return banks.isEmpty ? .noCommonBank : nil
    }

    /// The PCRs with a change, ascending.
    public var pcrs: [PCRIndex] { Set(changes.map(\.pcr)).sorted() }

    /// Per PCR (ascending), its changes in position order.
    public var byPCR: [(pcr: PCRIndex, changes: [Change])] {
        pcrs.map { pcr in (pcr, changes.filter { $0.pcr == pcr }.sorted { $0.position < $1.position }) }
    }

    /// Per component, the PCRs its changes reach, in the order components first change: what a
    /// one-line summary says ("module 1 changes PCR17"). Components are told apart by label and
    /// file.
    public var components: [(label: String, file: String?, pcrs: [PCRIndex])] {
        var out = [(label: String, file: String?, pcrs: [PCRIndex])]()
        for c in changes {
            let e = c.event
            if let i = out.firstIndex(where: { $0.label == e.label && $0.file == e.file }) {
                if !out[i].pcrs.contains(c.pcr) { out[i].pcrs = (out[i].pcrs + [c.pcr]).sorted() }
            } else {
                out.append((e.label, e.file, [c.pcr]))
            }
        }
        return out
    }
}
