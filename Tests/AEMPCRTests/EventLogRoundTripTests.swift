// SPDX-License-Identifier: Apache-2.0
import Foundation
import Testing
@testable import AEMPCR

/// Logs the test writer builds in every format parse back to the events they were built from.
@Suite("DRTM event log: round trips")
struct EventLogRoundTripTests {
    static func digest(_ alg: HashAlgorithm, _ seed: UInt8) -> Digest {
        Digest(alg, bytes: (0..<alg.digestSize!).map { UInt8(truncatingIfNeeded: Int(seed) &* 31 &+ $0) })!
    }

    /// SINIT-like records in both banks (data hashed, as SINIT does), then tboot's, whose banks
    /// vary: `tbootBanks`.
    static func events(_ banks: [HashAlgorithm], tbootBanks: [HashAlgorithm]) -> [DRTMEvent] {
        var out = [DRTMEvent]()
        let sinit: [(PCRIndex, UInt32, [UInt8])] = [
            (17, 0x402, (0..<36).map { UInt8($0) }), (17, 0x40B, [1, 0, 0, 0]), (17, 0x404, []),
            (18, 0x410, []), (18, 0x40B, [1, 0, 0, 0]), (18, 0x413, [0]),
        ]
        for (pcr, type, data) in sinit {
            let digests = banks.map { b in b.isComputable && !data.isEmpty ? MultiHasher.hash(b, data) : digest(b, UInt8(type & 0xFF)) }
            out.append(DRTMEvent(pcr: pcr, type: EventType(rawValue: type), digests: digests, data: data))
        }
        for (k, pcr) in ([17, 18, 17, 17] as [PCRIndex]).enumerated() {
            out.append(DRTMEvent(pcr: pcr, type: .tbootMeasurement, digests: tbootBanks.map { digest($0, UInt8(100 + k)) }))
        }
        return out
    }

    static func expectSame(_ parsed: DRTMEventLog, _ events: [DRTMEvent], sourceLocation: SourceLocation = #_sourceLocation) {
        #expect(parsed.events.count == events.count, sourceLocation: sourceLocation)
        for (p, e) in zip(parsed.events, events) {
            #expect(p.isSameRecord(as: e), "\(p) vs \(e)", sourceLocation: sourceLocation)
        }
    }

    @Test(arguments: [
        [HashAlgorithm.sha1, .sha256],
        [.sha256],
        [.sha1, .sha256, .sha384, .sha512],
        [.sha256, .sm3_256],
    ])
    func tcgLogRawAndInHeap(banks: [HashAlgorithm]) throws {
        let events = Self.events(banks, tbootBanks: [banks.contains(.sha256) ? .sha256 : banks[0]])
        let bytes = LogWriter.tcgLog(events, banks: banks)
        let raw = try DRTMEventLog.parse(bytes: bytes, source: "raw")
        #expect(raw.format == .tpm20TCG && raw.banks == banks)
        Self.expectSame(raw, events)
        // The same with the unused buffer after it, as SINIT leaves it.
        Self.expectSame(try DRTMEventLog.parse(bytes: bytes + [UInt8](repeating: 0, count: 4096)), events)

        let dump = LogWriter.heapDump(.tcg(bytes))
        let heap = try DRTMEventLog.parse(bytes: dump, source: "dump")
        #expect(heap.format == .tpm20TCG && heap.banks == banks)
        Self.expectSame(heap, events)
        #expect(heap.replay().values == raw.replay().values)
        #expect(raw.replay().uncomputableBanks == banks.filter { !$0.isComputable })
        // Offsets name bytes of the dump: the first record is where its PCR index is.
        let first = try #require(heap.events.first)
        #expect(dump[first.offset] == 17 && dump[first.offset + 4] == 0x02 && dump[first.offset + 5] == 0x04)
    }

    @Test func tpm12ContainerRawAndInHeap() throws {
        let events = Self.events([.sha1], tbootBanks: [.sha1])
        for padded in [true, false] {
            let bytes = LogWriter.container(events, padToSize: padded)
            let raw = try DRTMEventLog.parse(bytes: bytes)
            #expect(raw.format == .tpm12Container && raw.banks == [.sha1])
            Self.expectSame(raw, events)
        }
        let heap = try DRTMEventLog.parse(bytes: LogWriter.heapDump(.container(LogWriter.container(events))))
        #expect(heap.format == .tpm12Container)
        Self.expectSame(heap, events)
        #expect(heap.replay().partialEntries.isEmpty)
    }

    /// Element 7: SINIT's records in every per-algorithm log, tboot's (extpol=sha256) only in the
    /// SHA-256 one. Merged by position; the SHA-1 bank replays partially.
    @Test func legacyPerAlgorithmLogsInHeap() throws {
        let events = Self.events([.sha1, .sha256], tbootBanks: [.sha256])
        let logs: [(HashAlgorithm, [UInt8])] = [.sha1, .sha256].map { ($0, LogWriter.legacyLog(events, algorithm: $0)) }
        let log = try DRTMEventLog.parse(bytes: LogWriter.heapDump(.legacy(logs)))
        #expect(log.format == .tpm20Legacy && log.banks == [.sha1, .sha256])
        Self.expectSame(log, events)
        let replay = log.replay()
        #expect(replay[17, .sha1]?.missingEventIndices == [6, 8, 9])
        #expect(replay[18, .sha1]?.missingEventIndices == [7])
        #expect(replay[17, .sha256]?.isPartial == false)

        // Both banks for everything (extpol=embedded).
        let both = Self.events([.sha1, .sha256], tbootBanks: [.sha1, .sha256])
        let logs2: [(HashAlgorithm, [UInt8])] = [.sha1, .sha256].map { ($0, LogWriter.legacyLog(both, algorithm: $0)) }
        let log2 = try DRTMEventLog.parse(bytes: LogWriter.heapDump(.legacy(logs2)))
        Self.expectSame(log2, both)
        #expect(log2.replay().partialEntries.isEmpty)
    }

    @Test func rawPerAlgorithmLogs() throws {
        let events = Self.events([.sha256], tbootBanks: [.sha256])
        let sha256 = try DRTMEventLog.parse(bytes: LogWriter.legacyLog(events, algorithm: .sha256))
        #expect(sha256.format == .tpm20Legacy && sha256.banks == [.sha256])
        Self.expectSame(sha256, events)

        let sha1Events = Self.events([.sha1], tbootBanks: [.sha1])
        let sha1 = try DRTMEventLog.parse(bytes: LogWriter.legacyLog(sha1Events, algorithm: .sha1) + [UInt8](repeating: 0, count: 100))
        #expect(sha1.format == .tpm20Legacy && sha1.banks == [.sha1])
        Self.expectSame(sha1, sha1Events)
    }

    @Test func txtStatTextLegacyAndTCG() throws {
        let legacy = Self.events([.sha1, .sha256], tbootBanks: [.sha256])
        let text = TextWriter.legacyLog(legacy, banks: [.sha1, .sha256])
        let parsed = try DRTMEventLog.parse(text: text)
        #expect(parsed.format == .txtStatText && parsed.banks == [.sha1, .sha256])
        Self.expectSame(parsed, legacy)
        Self.expectSame(try DRTMEventLog.parse(bytes: Array(text.utf8)), legacy)  // detected by content

        for banks in [[HashAlgorithm.sha1, .sha256], [.sha256, .sha384]] {
            let tcg = Self.events(banks, tbootBanks: [banks[1]])
            let t = TextWriter.tcgLog(tcg, banks: banks)
            let p = try DRTMEventLog.parse(text: t)
            #expect(p.banks == banks)
            Self.expectSame(p, tcg)
            #expect(p.events.first?.line == t.split(separator: "\n", omittingEmptySubsequences: false)
                .firstIndex { $0.hasSuffix("TCG Event:") }.map { $0 + 1 })
        }
    }

    /// The real log printed as txt-stat would print it reads back to the same events.
    @Test func realLogAsText() throws {
        let log = try DRTMEventLog.parse(bytes: try LogVectors.bytes("isecl_tagent_txt_heap_info.bin"))
        let text = TextWriter.tcgLog(log.events, banks: log.banks)
        let p = try DRTMEventLog.parse(text: text)
        Self.expectSame(p, log.events)
        #expect(p.replay().values == log.replay().values)
    }
}
