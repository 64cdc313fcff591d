// SPDX-License-Identifier: Apache-2.0
import Foundation
import Testing
@testable import AEMPCR

/// Bad input gets a precise `CodedError` — never a crash, a hang, or a partial log accepted
/// silently: every truncated prefix of the real logs, annotated malformed inputs, seeded fuzzing.
@Suite("DRTM event log: bad input")
struct EventLogRobustnessTests {
    /// Parses; any error other than `CodedError` fails the test.
    static func outcome(_ bytes: ArraySlice<UInt8>, checks: DRTMEventLog.Checks = .all,
                        sourceLocation: SourceLocation = #_sourceLocation) -> Result<DRTMEventLog, CodedError> {
        do {
            return .success(try DRTMEventLog.parse(bytes: bytes, source: "t", checks: checks))
        } catch let e as CodedError {
            return .failure(e)
        } catch {
            Issue.record("not a CodedError: \(error)", sourceLocation: sourceLocation)
            return .failure(CodedError(.logUnknownFormat, source: "t", "?"))
        }
    }

    static func expectError(_ bytes: [UInt8], _ code: CodedError.Code, _ comment: Comment,
                            sourceLocation: SourceLocation = #_sourceLocation) {
        switch outcome(bytes[...], sourceLocation: sourceLocation) {
        case .success(let log):
            Issue.record("\(comment): accepted (\(log.events.count) events), expected \(code.rawValue)", sourceLocation: sourceLocation)
        case .failure(let e):
            #expect(e.code == code, "\(comment): \(e)", sourceLocation: sourceLocation)
            #expect(e.description.hasPrefix("t"), sourceLocation: sourceLocation)
        }
    }

    // MARK: Truncation

    /// The raw TCG file has no size of its own, so a cut exactly between two records reads as a
    /// shorter log (documented in `parse(bytes:)`); every other cut is an error at or before the cut.
    @Test func everyPrefixOfTheRawLog() throws {
        let bytes = try LogVectors.bytes("isecl_tagent_txt-logs.bin")
        let full = try DRTMEventLog.parse(bytes: bytes)
        let ends = full.events.dropFirst().map(\.offset) + [1634]   // where each event ends
        for n in 0...bytes.count {
            switch Self.outcome(bytes[..<n]) {
            case .success(let log):
                let expected = ends.filter { $0 <= n }.count
                #expect(n == 69 || ends.contains(n) || n >= 1634, "prefix \(n) accepted")
                #expect(log.events.count == expected, "prefix \(n)")
                #expect(zip(log.events, full.events).allSatisfy { $0.isSameRecord(as: $1) })
            case .failure(let e):
                #expect(!(n == 69 || ends.contains(n) || n >= 1634), "prefix \(n): \(e)")
                if n < 8 {
                    #expect(e.code == .logUnknownFormat, "prefix \(n): \(e)")
                } else {
                    #expect([.logTruncated, .logSizePastEnd].contains(e.code), "prefix \(n): \(e)")
                    #expect((e.offset ?? .max) <= n, "prefix \(n): \(e)")
                }
            }
        }
    }

    /// The heap declares its size, and element 8 the log's: no cut of either is accepted.
    @Test func heapDumpCutsInTheLogRegion() throws {
        var dump = try LogVectors.bytes("isecl_tagent_txt_heap_info.bin")
        let logStart = 0x1114C, logEnd = 0x1114C + 1722
        // The file ends inside (or around) the log.
        for n in Array(0..<64) + Array((logStart - 16)...(logEnd + 16)) + Array(stride(from: 0, to: dump.count, by: 4093)) {
            switch Self.outcome(dump[..<n]) {
            case .success: Issue.record("heap dump prefix \(n) accepted")
            case .failure(let e):
                #expect(n < 16 ? e.code == .logUnknownFormat : [.heapTruncated, .heapLoop].contains(e.code), "prefix \(n): \(e)")
            }
        }
        // Element 8's next_record_offset set to every value up to the real one: a record boundary
        // is a shorter log that the header declares; anything else is an error.
        let nextField = 0x161C8
        #expect(dump[nextField..<(nextField + 4)].le32(at: 0) == 1722)
        let full = try DRTMEventLog.parse(bytes: dump)
        let ends = [69] + full.events.dropFirst().map { $0.offset - logStart } + [1722]
        for k in 0...1722 {
            dump.replaceSubrange(nextField..<(nextField + 4), with: LogWriter.le32(UInt32(k)))
            switch Self.outcome(dump[...]) {
            case .success(let log):
                #expect(k == 0 || ends.contains(k), "next_record_offset \(k) accepted")
                #expect(log.events.count == max(0, ends.filter { $0 <= k }.count - 1), "next_record_offset \(k)")
            case .failure(let e):
                #expect(!(k == 0 || ends.contains(k)), "next_record_offset \(k): \(e)")
                #expect([.logTruncated, .logSizePastEnd].contains(e.code), "next_record_offset \(k): \(e)")
                #expect((e.offset ?? .max) <= logStart + k, "next_record_offset \(k): \(e)")
            }
        }
        dump.replaceSubrange(nextField..<(nextField + 4), with: LogWriter.le32(1722))
        // The log zeroed from a record boundary on, its declared size kept: zeros are not records.
        for cut in ends.dropLast() {
            let saved = Array(dump[(logStart + cut)..<logEnd])
            dump.replaceSubrange((logStart + cut)..<logEnd, with: [UInt8](repeating: 0, count: logEnd - logStart - cut))
            switch Self.outcome(dump[...]) {
            case .success: Issue.record("log zeroed from \(cut) accepted")
            case .failure(let e): #expect(e.code == .logBadDigestList && e.offset == logStart + cut + 8, "\(e)")
            }
            dump.replaceSubrange((logStart + cut)..<logEnd, with: saved)
        }
        #expect(try DRTMEventLog.parse(bytes: dump).events.count == 19)
    }

    @Test func everyPrefixOfAContainerAndAPerAlgorithmLog() throws {
        let events = EventLogRoundTripTests.events([.sha1], tbootBanks: [.sha1])
        for padded in [false, true] {
            let c = LogWriter.container(events, padToSize: padded)
            let next = Int(c[44..<48].le32(at: 0))
            for n in 0...c.count {
                switch Self.outcome(c[..<n]) {
                case .success(let log):
                    #expect(n >= next && log.events.count == events.count, "container prefix \(n)")
                case .failure(let e):
                    #expect(n < next, "container prefix \(n): \(e)")
                    #expect(n == 0 ? e.code == .logUnknownFormat : [.logTruncated, .logSizePastEnd].contains(e.code), "prefix \(n): \(e)")
                }
            }
        }
        let sha256 = EventLogRoundTripTests.events([.sha256], tbootBanks: [.sha256])
        let log = LogWriter.legacyLog(sha256, algorithm: .sha256)
        let full = try DRTMEventLog.parse(bytes: log)
        let ends = full.events.dropFirst().map(\.offset) + [log.count]
        for n in 1...log.count {
            switch Self.outcome(log[..<n]) {
            case .success(let l):
                #expect(n == 60 || ends.contains(n), "per-algorithm prefix \(n)")
                #expect(l.events.count == ends.filter { $0 <= n }.count)
            case .failure(let e):
                #expect(!(n == 60 || ends.contains(n)), "per-algorithm prefix \(n): \(e)")
            }
        }
    }

    // MARK: Annotated malformed inputs

    static let d20 = [UInt8](repeating: 0x11, count: 20)
    static let d32 = [UInt8](repeating: 0x22, count: 32)
    static let header = LogWriter.tcgHeader([(0x0004, 20), (0x000B, 32)])
    static func record(pcr: UInt32 = 17, type: UInt32 = 0x402, digests: [(UInt16, [UInt8])]? = nil,
                       data: [UInt8] = [1, 2, 3], count: UInt32? = nil) -> [UInt8] {
        LogWriter.tcgRecord(pcr: pcr, type: type, digests: digests ?? [(0x0004, d20), (0x000B, d32)], data: data, count: count)
    }

    @Test func malformedTCGLogs() {
        let h = Self.header, r = Self.record()
        Self.expectError(LogWriter.tcgHeader([]) + r, .logBadHeader, "Spec ID header declaring no algorithm")
        Self.expectError(LogWriter.tcgHeader([(0x0004, 20), (0x000B, 20)]) + r, .logBadHeader, "sha256 declared with 20-byte digests")
        Self.expectError(LogWriter.tcgHeader([(0x0027, 32)]) + r, .logUnknownAlgorithm, "algorithm 0x0027 (SHA3-256) in the header")
        Self.expectError(LogWriter.tcgHeader([(0x0004, 20), (0x0004, 20)]) + r, .logBadHeader, "sha1 declared twice")
        Self.expectError(LogWriter.tcgHeader([(0x0004, 20)], count: 1000) + r, .logCountTooLarge, "numberOfAlgorithms 1000")
        Self.expectError(LogWriter.tcgHeader([(0x0004, 20)], vendor: [1, 2]).dropLast(2) + [9, 9, 0xFF], .logTruncated,
                         "vendorInfoSize past the header record's data")
        var nonzero = h + r; nonzero[8] = 1
        Self.expectError(nonzero, .logBadHeader, "header record with a nonzero digest")
        Self.expectError(h + Self.record(count: 3), .logCountTooLarge, "3 digests when the header declared 2")
        Self.expectError(h + Self.record(digests: [], count: 0), .logBadDigestList, "no digest")
        Self.expectError(h + Self.record(digests: [(0x000C, [UInt8](repeating: 3, count: 48))]), .logUndeclaredAlgorithm, "sha384 digest, sha384 not declared")
        Self.expectError(h + Self.record(digests: [(0x0004, Self.d20), (0x0004, Self.d20)]), .logBadDigestList, "sha1 digest twice")
        var huge = h + r
        huge.replaceSubrange((huge.count - 7)..<(huge.count - 3), with: LogWriter.le32(0xFFFF_FFFF))
        Self.expectError(huge, .logSizePastEnd, "event data size 0xFFFFFFFF")
        Self.expectError(h + r.prefix(20), .logTruncated, "record cut inside its SHA-1 digest")
        Self.expectError(h + Self.record(pcr: 24), .logPCRInvalid, "PCR 24")
        Self.expectError(h + Self.record(pcr: 255, type: 0x401), .logPCRInvalid, "PCR 255")
        Self.expectError(h + r + r, .logDuplicateEvent, "SINIT record twice in a row")
        // Not errors: the same tboot measurement twice (two identical modules), and the same SINIT
        // record in two PCRs (CPU S-CRTM status goes to 17 and 18).
        let tboot = Self.record(type: 0x501, data: [])
        #expect((try? DRTMEventLog.parse(bytes: h + tboot + tboot))?.events.count == 2)
        #expect((try? DRTMEventLog.parse(bytes: h + Self.record(pcr: 17) + Self.record(pcr: 18)))?.events.count == 2)
        // Left out of the checks, the records are read and the problems listed.
        let lenient = try? DRTMEventLog.parse(bytes: h + r + r + Self.record(pcr: 255), checks: [])
        #expect(lenient?.problems().map(\.code) == [.logDuplicateEvent, .logPCRInvalid])
        #expect(lenient?.problems(.pcrRange).map(\.code) == [.logPCRInvalid])
        // Garbage is not a log.
        Self.expectError(Array("hello, world".utf8), .logUnknownFormat, "text without a log")
        Self.expectError([0xDE, 0xAD, 0xBE, 0xEF, 0, 0, 0, 0], .logUnknownFormat, "random bytes")
    }

    @Test func malformedContainers() {
        let events = EventLogRoundTripTests.events([.sha1], tbootBanks: [.sha1])
        Self.expectError(LogWriter.container(events, size: 0x100, next: 0x101), .logBadHeader, "events past the container size")
        Self.expectError(LogWriter.container(events, first: 40), .logBadHeader, "events inside the header")
        let short = LogWriter.container(events, padToSize: false)
        Self.expectError(LogWriter.container(events, padToSize: false, next: UInt32(short.count + 100)), .logSizePastEnd,
                         "next_event_offset past the end of the file")
        Self.expectError(LogWriter.container(events, next: UInt32(short.count - 1)), .logTruncated,
                         "last record crossing next_event_offset")
        var sig = short; sig[3] = UInt8(ascii: "x")
        Self.expectError(sig, .logUnknownFormat, "signature misspelt")
    }

    @Test func malformedHeaps() throws {
        let tcg = LogWriter.tcgLog(EventLogRoundTripTests.events([.sha1, .sha256], tbootBanks: [.sha256]), banks: [.sha1, .sha256])
        #expect((try? DRTMEventLog.parse(bytes: LogWriter.heapDump(.tcg(tcg))))?.events.count == 10)
        Self.expectError(LogWriter.heapDump(.tcg(tcg), osSinitVersion: 5), .heapNoLog, "OsSinitData version 5")
        Self.expectError(LogWriter.heapDump(.none), .heapNoLog, "no log element")
        Self.expectError(LogWriter.heapDump(.tcg(tcg), elementsBefore: [LogWriter.le32(2) + LogWriter.le32(0)]), .heapLoop, "element of size 0")
        Self.expectError(LogWriter.heapDump(.tcg(tcg), mutateElement: { $0.replaceSubrange(4..<8, with: LogWriter.le32(0x1000)) }),
                         .heapOverrun, "element larger than OsSinitData")
        Self.expectError(LogWriter.heapDump(.none, end: false), .heapOverrun, "no END element")
        Self.expectError(LogWriter.heapDump(.tcg(tcg), mutateElement: { $0.replaceSubrange(8..<16, with: LogWriter.le64(0x10)) }),
                         .heapOverrun, "log pointer below the heap")
        Self.expectError(LogWriter.heapDump(.tcg(tcg), mutateElement: { $0.replaceSubrange(24..<28, with: LogWriter.le32(0x3000)) }),
                         .logBadHeader, "next_record_offset beyond the allocated size")
        Self.expectError(LogWriter.heapDump(.tcg(tcg), mutateElement: { $0.replaceSubrange(8..<16, with: LogWriter.le64(0x7BF2_0000)) }),
                         .logBadHeader, "log pointer at the heap's start, where no log is")
        var loop = LogWriter.heapDump(.tcg(tcg)); loop.replaceSubrange(16..<24, with: LogWriter.le64(0))
        Self.expectError(loop, .heapLoop, "BiosData of size 0")
        var over = LogWriter.heapDump(.tcg(tcg)); over.replaceSubrange(16..<24, with: LogWriter.le64(0x20000))
        Self.expectError(over, .heapOverrun, "BiosData larger than the heap")
        Self.expectError(Array(LogWriter.heapDump(.tcg(tcg)).dropLast()), .heapTruncated, "dump one byte short")
        var top = LogWriter.heapDump(.tcg(tcg)); top.replaceSubrange(0..<8, with: LogWriter.le64(0xFFFF_FFFF_FFFF_F000))
        Self.expectError(top, .heapOverrun, "heap base at the top of the address space, log pointer below it")

        // Per-algorithm logs that disagree, or name an unknown algorithm.
        let a = EventLogRoundTripTests.events([.sha1, .sha256], tbootBanks: [.sha256])
        var b = a; b[2].data = [9]
        Self.expectError(LogWriter.heapDump(.legacy([(.sha1, LogWriter.legacyLog(a, algorithm: .sha1)),
                                                    (.sha256, LogWriter.legacyLog(b, algorithm: .sha256))])),
                         .logLegacyMismatch, "SHA-1 and SHA-256 logs list different data for record 2")
        Self.expectError(LogWriter.heapDump(.legacy([(.sha1, LogWriter.legacyLog(a, algorithm: .sha1))]),
                                            mutateElement: { $0.replaceSubrange(12..<14, with: LogWriter.le16(0x27)) }),
                         .logUnknownAlgorithm, "descriptor for algorithm 0x0027")
        Self.expectError(LogWriter.heapDump(.legacy([(.sha256, Array(LogWriter.legacyLog(a, algorithm: .sha256).dropFirst(60)))])),
                         .logBadHeader, "SHA-256 log without its SHA-1-format header record")
    }

    @Test func malformedText() {
        let events = EventLogRoundTripTests.events([.sha1], tbootBanks: [.sha1])
        let good = TextWriter.legacyLog(events, banks: [.sha1])
        #expect((try? DRTMEventLog.parse(text: good))?.events.count == events.count)
        func bad(_ text: String, _ code: CodedError.Code, _ comment: Comment, line: Int? = nil,
                 sourceLocation: SourceLocation = #_sourceLocation) {
            do {
                let log = try DRTMEventLog.parse(text: text, source: "t")
                Issue.record("\(comment): accepted \(log.events.count) events", sourceLocation: sourceLocation)
            } catch let e as CodedError {
                #expect(e.code == code, "\(comment): \(e)", sourceLocation: sourceLocation)
                if let line { #expect(e.line == line, "\(comment): \(e)", sourceLocation: sourceLocation) }
                #expect(e.description.contains("line "), sourceLocation: sourceLocation)
            } catch { Issue.record("\(error)", sourceLocation: sourceLocation) }
        }
        let lines = good.split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
        func edit(_ i: Int, _ f: (String) -> String) -> String {
            var l = lines; l[i] = f(l[i]); return l.joined(separator: "\n")
        }
        let digestLine = lines.firstIndex { $0.contains("Digest:") }!
        let typeLine = lines.firstIndex { $0.contains("Type:") }!
        let dataLine = lines.firstIndex { $0.contains("Data: 36 bytes") }!
        bad(edit(digestLine) { String($0.dropLast(3)) }, .logTextMalformed, "digest of 19 bytes", line: digestLine + 3)
        bad(edit(digestLine) { $0 + "ff " }, .logTextMalformed, "digest of 21 bytes", line: digestLine + 2)
        bad(edit(typeLine) { $0.replacingOccurrences(of: "0x402", with: "0xg02") }, .logTextMalformed, "type not hex", line: typeLine + 1)
        bad(edit(dataLine) { $0.replacingOccurrences(of: "36 bytes", with: "37 bytes") }, .logTextMalformed, "one data byte missing")
        bad(edit(dataLine + 1) { $0.replacingOccurrences(of: "00 01", with: "00 1") }, .logTextMalformed, "a one-digit byte", line: dataLine + 2)
        bad(edit(typeLine) { _ in "TBOOT: \t\t\t       Kind: 0x402" }, .logTextMalformed, "a field out of place", line: typeLine + 1)
        bad(edit(typeLine - 1) { $0.replacingOccurrences(of: "PCRIndex: 17", with: "PCRIndex: +17") }, .logTextMalformed,
            "a signed PCR index", line: typeLine)
        bad(edit(dataLine) { $0.replacingOccurrences(of: "36 bytes", with: "-36 bytes") }, .logTextMalformed, "a negative data size",
            line: dataLine + 1)
        bad(lines.prefix(dataLine + 1).joined(separator: "\n"), .logTruncated, "text ending after \"Data: 36 bytes\"")
        bad(TextWriter.tcgLog(EventLogRoundTripTests.events([.sha1], tbootBanks: [.sha256]), banks: [.sha1]),
            .logUndeclaredAlgorithm, "SHA256 digest when the header declared only sha1")
        bad(good + TextWriter.tcgLog(events, banks: [.sha1]), .logTextMalformed, "legacy and TCG records mixed")
    }

    // MARK: Fuzzing (bounded, seeded)

    static let interesting: [UInt32] = [0, 1, 3, 4, 11, 20, 24, 32, 255, 0x401, 0x501, 0x7F, 0xFF, 0x100, 0xFFFF,
                                        0x7FFF_FFFF, 0x8000_0000, 0xFFFF_FFFF, 0xFFFF_FFF0]

    /// One to four random edits: bit flips, bytes, interesting u32s; with `resize`, also cuts,
    /// repeated and deleted chunks.
    static func mutate(_ b: inout [UInt8], _ rng: inout SplitMix64, in region: Range<Int>, resize: Bool) {
        for _ in 0..<Int.random(in: 1...4, using: &rng) {
            guard !b.isEmpty else { return }
            let lo = min(region.lowerBound, b.count - 1), hi = min(region.upperBound, b.count)
            let at = Int.random(in: lo..<max(lo + 1, hi), using: &rng)
            switch Int.random(in: 0..<(resize ? 6 : 3), using: &rng) {
            case 0: b[at] ^= 1 << UInt8.random(in: 0..<8, using: &rng)
            case 1: b[at] = UInt8.random(in: 0...255, using: &rng)
            case 2:
                let v = interesting.randomElement(using: &rng)!
                for i in 0..<4 where at + i < b.count { b[at + i] = UInt8(truncatingIfNeeded: v >> (8 * UInt32(i))) }
            case 3: b.removeSubrange(at...)
            case 4:
                let n = Int.random(in: 1...64, using: &rng)
                b.insert(contentsOf: b[at..<min(b.count, at + n)], at: at)
            default:
                b.removeSubrange(at..<min(b.count, at + Int.random(in: 1...64, using: &rng)))
            }
        }
    }

    /// Whatever the bytes, parse returns a log or a CodedError, and a returned log replays.
    static func exercise(_ b: [UInt8]) {
        if case .success(let log) = outcome(b[...], checks: []) {
            _ = log.replay()
            _ = log.dataDigestMismatches()
            _ = log.problems()
        }
    }

    @Test func fuzzRawLogsAndText() throws {
        let start = ContinuousClock.now
        var rng = SplitMix64(seed: 0xAE11_0003)
        let tcg = Array(try LogVectors.bytes("isecl_tagent_txt-logs.bin").prefix(1700))
        let events = EventLogRoundTripTests.events([.sha1], tbootBanks: [.sha1])
        let seeds: [[UInt8]] = [tcg, LogWriter.container(events, padToSize: false),
                                LogWriter.legacyLog(EventLogRoundTripTests.events([.sha256], tbootBanks: [.sha256]), algorithm: .sha256)]
        var accepted = 0
        for i in 0..<2000 {
            var b = seeds[i % 5 == 0 ? (i / 5) % 3 : 0]
            Self.mutate(&b, &rng, in: 0..<b.count, resize: true)
            if case .success = Self.outcome(b[...], checks: []) { accepted += 1 }
            Self.exercise(b)
        }
        #expect(accepted > 0 && accepted < 2000)  // both outcomes are reached

        let texts = [try LogVectors.text("opencit_issue63_txtstat_tpm2_sha1_eventlog_excerpt.txt"),
                     TextWriter.tcgLog(try DRTMEventLog.parse(bytes: tcg).events, banks: [.sha1, .sha256])]
        for i in 0..<500 {
            var b = Array(texts[i % 2].utf8)
            Self.mutate(&b, &rng, in: 0..<b.count, resize: true)
            Self.exercise(b)
            _ = try? DRTMEventLog.parse(text: String(decoding: b, as: UTF8.self), checks: [])
        }
        #expect(ContinuousClock.now - start < .seconds(30))
    }

    @Test func fuzzHeapDump() throws {
        let start = ContinuousClock.now
        var rng = SplitMix64(seed: 0x7E47_0008)
        let original = try LogVectors.bytes("isecl_tagent_txt_heap_info.bin")
        var dump = original
        // Section headers, OsSinitData and its element, and the log.
        let regions = [0..<16, 0x1000..<0x1040, 0x1614C..<0x161E0, 0x1114C..<(0x1114C + 1722)]
        for i in 0..<400 {
            let region = regions[i % regions.count]
            Self.mutate(&dump, &rng, in: region, resize: false)
            Self.exercise(dump)
            // Restore the edited region (a u32 may reach 3 bytes past it) without copying the megabyte.
            let touched = region.lowerBound..<(region.upperBound + 3)
            dump.replaceSubrange(touched, with: original[touched])
        }
        #expect(dump.elementsEqual(original))
        #expect(ContinuousClock.now - start < .seconds(30))
    }
}
