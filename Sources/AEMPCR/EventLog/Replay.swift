// SPDX-License-Identifier: Apache-2.0
/// The PCR values a DRTM log claims, computed from the DRTM initial value (zeros: the launch resets PCR17–22 from all FF), with
/// per PCR and bank the events that went into it — the report that verification compares with the
/// TPM (STYLE.md 6).
public struct ReplayResult: Sendable {
    /// One PCR of one bank.
    public struct Entry: Sendable, Equatable {
        public let pcr: PCRIndex
        public let bank: HashAlgorithm
        /// The value the replay starts from: zeros, as a dynamic launch resets PCR17–22.
        public let initial: Digest
        /// The value after extending every event of `eventIndices`.
        public let value: Digest
        /// Indices (into `DRTMEventLog.events`) of the events extended into this bank, in order.
        public let eventIndices: [Int]
        /// Events for this PCR that carry no digest of this bank (e.g. tboot's events in the SHA-1
        /// bank under `extpol=sha256`). The replay leaves them out, as the TPM did.
        public let missingEventIndices: [Int]

        /// Whether the log extends this bank only for some of the PCR's events.
        public var isPartial: Bool { !missingEventIndices.isEmpty }
    }

    /// The replayed values (only the PCR/bank pairs of `entries`).
    public let values: PCRValues
    /// Sorted by PCR, then bank.
    public let entries: [Entry]
    /// Events not extended anywhere: `EV_NO_ACTION` records and records for PCRs outside 0–23.
    public let notExtendedEventIndices: [Int]
    /// Banks the log has digests for that this tool cannot hash (SM3): not replayed.
    public let uncomputableBanks: [HashAlgorithm]

    public subscript(pcr: PCRIndex, bank: HashAlgorithm) -> Entry? {
        entries.first { $0.pcr == pcr && $0.bank == bank }
    }

    /// The entries replayed only in part.
    public var partialEntries: [Entry] { entries.filter(\.isPartial) }
}

/// An event whose data is present but whose digest is not the hash of that data.
public struct DataDigestMismatch: Sendable, Equatable {
    public let eventIndex: Int
    public let bank: HashAlgorithm
    /// `H_bank(data)`.
    public let expected: Digest
    /// The digest the log records.
    public let logged: Digest
}

extension DRTMEventLog {
    /// Replays the log: for each PCR and bank, extend every event's digest of that bank in log
    /// order, starting from zeros. `EV_NO_ACTION` and PCRs outside 0–23 are not extended.
    ///
    /// Every bank the log declares (and any other its records carry) gets an entry for each PCR the
    /// log extends; a bank that some of that PCR's events lack is replayed faithfully without them
    /// and marked partial.
    public func replay() -> ReplayResult {
        var pcrOrder = [PCRIndex]()
        var byPCR = [PCRIndex: [Int]]()
        var notExtended = [Int]()
        var banks = [HashAlgorithm]()
        for b in self.banks where !banks.contains(b) { banks.append(b) }
        for (i, e) in events.enumerated() {
            if e.type == .noAction || e.pcr.rawValue > 23 {
                notExtended.append(i)
                continue
            }
            if byPCR[e.pcr] == nil { pcrOrder.append(e.pcr) }
            byPCR[e.pcr, default: []].append(i)
            for b in e.digests.keys.sorted() where !banks.contains(b) { banks.append(b) }
        }
        let computable = banks.filter(\.isComputable).sorted()
        let uncomputable = banks.filter { !$0.isComputable }.sorted()

        var values = PCRValues()
        var entries = [ReplayResult.Entry]()
        for pcr in pcrOrder.sorted() {
            let indices = byPCR[pcr] ?? []
            for bank in computable {
                var value = Digest.zeros(bank)
                var used = [Int](), missing = [Int]()
                for i in indices {
                    if let d = events[i].digests[bank] {
                        value = value.extended(with: d)
                        used.append(i)
                    } else {
                        missing.append(i)
                    }
                }
                values[bank, pcr] = value
                entries.append(.init(pcr: pcr, bank: bank, initial: .zeros(bank), value: value,
                                     eventIndices: used, missingEventIndices: missing))
            }
        }
        return ReplayResult(values: values, entries: entries, notExtendedEventIndices: notExtended,
                            uncomputableBanks: uncomputable)
    }

    /// Event types whose digest is the hash of their data when they carry data: SINIT's
    /// measurements 0x401–0x41A and 0x4FF (TXT Software Development Guide, "Event Log" appendix).
    /// In the real logs of `Vectors/logs` every SINIT record with data verifies (0x402, 0x40A,
    /// 0x40B, 0x40C, 0x40E, 0x40F, 0x412, 0x413, 0x414, SHA-1 and SHA-256); 0x404 (MLE hash),
    /// 0x410 (SINIT public key hash) and tboot's 0x501 carry no data.
    public static func dataIsMeasured(_ type: EventType) -> Bool {
        (0x401...0x41A).contains(type.rawValue) || type.rawValue == 0x4FF
    }

    /// Events of a `dataIsMeasured` type with non-empty data whose digest (in a bank this tool can
    /// hash) differs from the hash of the data.
    public func dataDigestMismatches() -> [DataDigestMismatch] {
        var out = [DataDigestMismatch]()
        for (i, e) in events.enumerated() where !e.data.isEmpty && Self.dataIsMeasured(e.type) {
            for logged in e.sortedDigests where logged.algorithm.isComputable {
                let expected = MultiHasher.hash(logged.algorithm, e.data)
                if expected != logged {
                    out.append(DataDigestMismatch(eventIndex: i, bank: logged.algorithm, expected: expected, logged: logged))
                }
            }
        }
        return out
    }
}
