// SPDX-License-Identifier: Apache-2.0
import Foundation
import Testing
@testable import AEMPCR

/// The DRTM log reader and replay against real logs (Vectors/logs, see its README). Expected values
/// come from the files themselves (host-reported PCRs, listings made by a separate parser) or are
/// recomputed here with plain hashing.
enum LogVectors {
    static func path(_ name: String) -> String { Repo.path("Vectors/logs/" + name) }
    static func bytes(_ name: String) throws -> [UInt8] { Array(try Data(contentsOf: URL(fileURLWithPath: path(name)))) }
    static func text(_ name: String) throws -> String { try readText("Vectors/logs/" + name) }

    /// The copied material of a vector `.txt`: its `#` header lines removed.
    static func body(_ name: String) throws -> String {
        try text(name).split(separator: "\n", omittingEmptySubsequences: false)
            .filter { !$0.hasPrefix("#") }.joined(separator: "\n")
    }

    /// One `ev` line of the Python listings in `isecl_*.txt`.
    struct ListedEvent {
        var pcr: UInt32
        var type: UInt32
        var digests: [String: String]
        /// The listing prints at most 64 bytes of data.
        var dataPrefix: String
    }

    /// `ev 17 0x402 {'sha1': '…', 'sha256': '…'} 7258…` lines, and the `PCR 17 sha1 …` lines.
    static func listing(_ name: String) throws -> (events: [ListedEvent], pcrs: [String: String]) {
        var events = [ListedEvent]()
        var pcrs = [String: String]()
        for line in try text(name).split(separator: "\n") {
            let f = line.split(separator: " ")
            if line.hasPrefix("ev "), let open = line.firstIndex(of: "{"), let close = line.firstIndex(of: "}") {
                var d = [String: String]()
                for item in line[line.index(after: open)..<close].split(separator: ",") {
                    let kv = item.split(separator: ":").map { $0.trimmingCharacters(in: CharacterSet(charactersIn: " '")) }
                    d[kv[0]] = kv[1]
                }
                let rest = line[line.index(after: close)...].split(separator: " ")
                let data = rest.first.map(String.init).flatMap { $0.hasPrefix("b'") ? nil : $0 } ?? ""
                events.append(ListedEvent(pcr: UInt32(f[1])!, type: UInt32(f[2].dropFirst(2), radix: 16)!, digests: d, dataPrefix: data))
            } else if line.hasPrefix("PCR ") {
                pcrs["\(f[1]) \(f[2])"] = String(f[3])
            }
        }
        return (events, pcrs)
    }

    static func check(_ log: DRTMEventLog, against listed: [ListedEvent]) {
        #expect(log.events.count == listed.count)
        for (e, l) in zip(log.events, listed) {
            #expect(e.pcr.rawValue == l.pcr && e.type.rawValue == l.type, "event at byte \(e.offset)")
            #expect(Dictionary(uniqueKeysWithValues: e.digests.map { ($0.key.description, $0.value.hex) }) == l.digests,
                    "digests of the event at byte \(e.offset)")
            #expect(Hex.encode(e.data).hasPrefix(l.dataPrefix), "data of the event at byte \(e.offset)")
        }
    }
}

@Suite("DRTM event log: real logs")
struct EventLogRealTests {
    static let defaultDAPolicySHA256 = "71be5852a14eabefebf0df0e1acc5da291883b6d4c5ab20914ed987c1daf3f91"
    static let defaultDAPolicySHA1 = "0afc07618e3739481f4c2abaf703ca4e35507e6e"

    // MARK: Intel SecL trust report (JSON)

    /// PCR17/18 event lists of the trust report, both banks, replayed from zeros, give the PCR
    /// values the host reported.
    @Test func trustReportEventListsReplayToReportedPCRs() throws {
        let json = try JSONSerialization.jsonObject(with: Data(try LogVectors.body("isecl_trust_report_tpm2_tboot_linux.txt").utf8))
        let manifest = try #require(((json as? [String: Any])?["host_manifest"] as? [String: Any])?["pcr_manifest"] as? [String: Any])
        let eventMap = try #require(manifest["pcr_event_log_map"] as? [String: Any])
        var reported = [String: String]()  // "sha1 pcr_17" -> value
        for (key, bank) in [("sha1pcrs", "sha1"), ("sha2pcrs", "sha256")] {
            for p in try #require(manifest[key] as? [[String: Any]]) {
                reported["\(bank) \(p["index"] as! String)"] = p["value"] as? String
            }
        }
        // label and digest per position, per PCR, per bank
        var lists = [String: [String: [(String, String)]]]()
        for (jsonBank, bank) in [("SHA1", "sha1"), ("SHA256", "sha256")] {
            for entry in try #require(eventMap[jsonBank] as? [[String: Any]]) {
                let pcr = entry["pcr_index"] as! String
                lists[pcr, default: [:]][bank] = (entry["event_log"] as! [[String: Any]]).map {
                    ($0["label"] as! String, $0["value"] as! String)
                }
            }
        }
        var events = [DRTMEvent]()
        for pcrName in ["pcr_17", "pcr_18"] {
            let sha1 = try #require(lists[pcrName]?["sha1"]), sha256 = try #require(lists[pcrName]?["sha256"])
            #expect(sha1.map(\.0) == sha256.map(\.0), "both banks list the same events")
            #expect(sha1.count == (pcrName == "pcr_17" ? 12 : 7))
            for (a, b) in zip(sha1, sha256) {
                let type: EventType = a.0 == "tb_policy" || a.0 == "vmlinuz" || a.0 == "initrd"
                    ? .tbootMeasurement : EventType(rawValue: 0x400)
                events.append(DRTMEvent(pcr: PCRIndex(rawValue: UInt32(pcrName.dropFirst(4))!), type: type,
                                        digests: [Digest(.sha1, hex: a.1)!, Digest(.sha256, hex: b.1)!]))
            }
        }
        let log = DRTMEventLog(format: .tpm20TCG, banks: [.sha1, .sha256], events: events, source: "trust report")
        let replay = log.replay()
        for pcr in [17, 18] as [PCRIndex] {
            for bank in [HashAlgorithm.sha1, .sha256] {
                let entry = try #require(replay[pcr, bank])
                #expect(!entry.isPartial)
                #expect(entry.value.hex == reported["\(bank) pcr_\(pcr)"], "PCR\(pcr) \(bank)")
            }
        }
        // The report's tb_policy event is NOT §3's default DA digest: this host ran another policy.
        let policy = try #require(events.first { $0.pcr == 17 && $0.type == .tbootMeasurement })
        #expect(policy[.sha256]?.hex == "27808f64e6383982cd3bcc10cfcb3457c0b65f465f779d89b668839eaf263a67")
        #expect(policy[.sha1]?.hex == "ca96de412b4e8c062e570d3013d2fccb4b20250a")
        #expect(policy[.sha256]?.hex != Self.defaultDAPolicySHA256)
    }

    // MARK: Raw TCG log

    @Test func rawTCGLogParsesToItsNineteenEvents() throws {
        let log = try DRTMEventLog.parse(path: LogVectors.path("isecl_tagent_txt-logs.bin"))
        #expect(log.format == .tpm20TCG)
        #expect(log.banks == [.sha1, .sha256])
        #expect(log.source.hasSuffix("isecl_tagent_txt-logs.bin"))
        let listed = try LogVectors.listing("isecl_tagent_txt-logs.txt")
        LogVectors.check(log, against: listed.events)
        #expect(log.events.first?.offset == 69)  // after the 69-byte Spec ID header record
        #expect(log.events.map(\.offset).last == 1584)

        // Every SINIT event with data: digest == H(data) in both banks; the others carry no data.
        for e in log.events {
            if e.data.isEmpty {
                #expect([0x404, 0x410, 0x501].contains(e.type.rawValue))
            } else {
                #expect(e.isSINITEvent)
                for d in e.sortedDigests { #expect(MultiHasher.hash(d.algorithm, e.data) == d, "event at \(e.offset)") }
            }
        }
        #expect(log.dataDigestMismatches().isEmpty)

        // tboot (extpol=sha256) logged its events in SHA-256 only: the SHA-1 bank is partial.
        let tboot = log.events.indices.filter { log.events[$0].type == .tbootMeasurement }
        #expect(tboot == [15, 16, 17, 18])
        #expect(log.events[15][.sha256]?.hex == Self.defaultDAPolicySHA256)
        #expect(log.events[16][.sha256]?.hex == Self.defaultDAPolicySHA256 && log.events[16].pcr == 18)
        let replay = log.replay()
        for (pcr, bank) in [(17, "sha1"), (17, "sha256"), (18, "sha1"), (18, "sha256")] as [(PCRIndex, String)] {
            let entry = try #require(replay[pcr, HashAlgorithm(name: bank)!])
            #expect(entry.value.hex == listed.pcrs["\(pcr) \(bank)"], "PCR\(pcr) \(bank)")
            #expect(entry.initial.isAllZero)
        }
        #expect(replay[17, .sha1]?.missingEventIndices == [15, 17, 18])
        #expect(replay[18, .sha1]?.missingEventIndices == [16])
        #expect(replay[17, .sha256]?.isPartial == false)
        #expect(replay[17, .sha256]?.eventIndices == [0, 1, 2, 3, 4, 5, 6, 7, 8, 15, 17, 18])
        #expect(replay.partialEntries.count == 2)
        #expect(replay.values[.sha256, 17] == replay[17, .sha256]?.value)
    }

    /// Parse, write back with the test writer, same bytes: the 1634 bytes of records.
    @Test func rawTCGLogWritesBackToTheSameBytes() throws {
        let bytes = try LogVectors.bytes("isecl_tagent_txt-logs.bin")
        let log = try DRTMEventLog.parse(bytes: bytes)
        let written = LogWriter.tcgLog(log.events, banks: log.banks)
        #expect(written.count == 1634)
        #expect(written == Array(bytes.prefix(1634)))
        #expect(bytes.dropFirst(1634).allSatisfy { $0 == 0 })
    }

    // MARK: Heap dump

    @Test func heapDumpWalksToTheSameNineteenEvents() throws {
        let log = try DRTMEventLog.parse(path: LogVectors.path("isecl_tagent_txt_heap_info.bin"))
        let raw = try DRTMEventLog.parse(path: LogVectors.path("isecl_tagent_txt-logs.bin"))
        #expect(log.format == .tpm20TCG)
        #expect(log.banks == [.sha1, .sha256])
        let listed = try LogVectors.listing("isecl_tagent_txt_heap_info.txt")
        LogVectors.check(log, against: listed.events)
        // Same 19 records as the raw log (PCR, type, data); a different boot, so some digests differ.
        #expect(log.events.map(\.pcr) == raw.events.map(\.pcr))
        #expect(log.events.map(\.type) == raw.events.map(\.type))
        #expect(log.events.filter { $0.type != .osSinitDataCapabilitiesHash }.map(\.data)
                == raw.events.filter { $0.type != .osSinitDataCapabilitiesHash }.map(\.data))
        // The log is at file offset 0x1114C; offsets name bytes of the dump file.
        #expect(log.events.first?.offset == 0x1114C + 69)
        // tboot (embedded/agile) logged both banks: the default DA policy digest in each.
        let policy = log.events[15]
        #expect(policy.type == .tbootMeasurement && policy.pcr == 17)
        #expect(policy[.sha256]?.hex == Self.defaultDAPolicySHA256)
        #expect(policy[.sha1]?.hex == Self.defaultDAPolicySHA1)
        #expect(log.dataDigestMismatches().isEmpty)
        let replay = log.replay()
        #expect(replay.partialEntries.isEmpty)
        for (pcr, bank) in [(17, "sha1"), (17, "sha256"), (18, "sha1"), (18, "sha256")] as [(PCRIndex, String)] {
            #expect(replay[pcr, HashAlgorithm(name: bank)!]?.value.hex == listed.pcrs["\(pcr) \(bank)"], "PCR\(pcr) \(bank)")
        }
    }

    // MARK: OpenCIT TPM 1.2

    /// The quote's module list (XML, not a txt-stat print: the text parser does not apply) replayed
    /// as TPM 1.2 events: PCR19 = SHA1(0^20 ‖ initrd) is the quoted PCR19.
    @Test func openCITModuleListReplaysToQuotedPCR19() throws {
        let text = try LogVectors.text("opencit_tpm12_quote_with_module_eventlog.txt")
        let quoted = try #require(text.split(separator: "\n").first { $0.hasPrefix("PCR-19: ") }).dropFirst(8)
        let modules = try #require(text.split(separator: "\n").first { $0.hasPrefix("eventLog: <modules>") })
        var events = [DRTMEvent]()
        for m in modules.components(separatedBy: "<module>").dropFirst() {
            func field(_ tag: String) -> String? {
                guard let a = m.range(of: "<\(tag)>"), let b = m.range(of: "</\(tag)>") else { return nil }
                return String(m[a.upperBound..<b.lowerBound])
            }
            let pcr = try #require(field("pcrNumber").flatMap { UInt32($0) })
            let value = try #require(field("value").flatMap { Digest(.sha1, hex: $0) })
            events.append(DRTMEvent(pcr: PCRIndex(rawValue: pcr), type: .tbootMeasurement, digests: [value]))
        }
        #expect(events.map(\.pcr) == [17, 18, 19])
        let log = DRTMEventLog(format: .tpm12Container, banks: [.sha1], events: events, source: "opencit")
        let replay = log.replay()
        #expect(replay[19, .sha1]?.value.hex == String(quoted))
    }

    // MARK: OpenCIT issue 63 (txt-stat text, malformed)

    @Test func issue63ExcerptIsReportedPrecisely() throws {
        let text = try LogVectors.text("opencit_issue63_txtstat_tpm2_sha1_eventlog_excerpt.txt")
        let lines = text.split(separator: "\n", omittingEmptySubsequences: false)
        let eventLines = lines.indices.filter { lines[$0].hasSuffix("Event:") }.map { $0 + 1 }  // 1-based
        #expect(eventLines.count == 4)

        // The whole excerpt: it ends in the middle of the fourth record's digest.
        let cut = #expect(throws: CodedError.self) { try DRTMEventLog.parse(text: text, source: "issue63") }
        #expect(cut?.code == .logTruncated)
        #expect(cut?.line == lines.lastIndex { !$0.isEmpty }.map { $0 + 1 })
        // Detected as text by content, too.
        let viaBytes = #expect(throws: CodedError.self) { try DRTMEventLog.parse(bytes: Array(text.utf8), source: "issue63") }
        #expect(viaBytes?.code == .logTruncated)

        // Up to the last complete record: the duplicate is the first problem, then PCR 255.
        let complete = lines[..<(eventLines[3] - 1)].joined(separator: "\n") + "\n"
        let dup = #expect(throws: CodedError.self) { try DRTMEventLog.parse(text: complete, source: "issue63") }
        #expect(dup?.code == .logDuplicateEvent)
        #expect(dup?.line == eventLines[1])
        #expect(dup?.description.contains("line \(eventLines[0])") == true)

        let log = try DRTMEventLog.parse(text: complete, source: "issue63", checks: [])
        #expect(log.format == .txtStatText)
        #expect(log.banks == [.sha1])
        #expect(log.events.map(\.pcr) == [17, 17, 255])
        #expect(log.events.map(\.line) == [eventLines[0], eventLines[1], eventLines[2]])
        #expect(log.events[0].data.count == 36)
        let problems = log.problems()
        #expect(problems.map(\.code) == [.logDuplicateEvent, .logPCRInvalid])
        #expect(problems.map(\.line) == [eventLines[1], eventLines[2]])

        // Digest e0644217… is not SHA-1 of the 36 data bytes (24edd516…); nor is the PCR 255 record's.
        let mismatches = log.dataDigestMismatches()
        #expect(mismatches.map(\.eventIndex) == [0, 1, 2])
        #expect(mismatches[0].logged.hex == "e064421772da0cca59cea47801c2ee5e5c2a1758")
        #expect(mismatches[0].expected.hex == "24edd51604348d9143bf0616ed622e57d9e5bdae")
        #expect(mismatches[0].expected == MultiHasher.hash(.sha1, log.events[0].data))

        // PCR 255 is not extended by a replay.
        #expect(log.replay().notExtendedEventIndices == [2])
    }

    /// A failed launch prints "No Event Log.": no records, so not a log.
    @Test func failedLaunchSerialLogHasNoEvents() throws {
        let text = try LogVectors.text("tbootdevel_2019_R730_failed_launch_serial_log.txt")
        let e = #expect(throws: CodedError.self) { try DRTMEventLog.parse(text: text, source: "r730") }
        #expect(e?.code == .logUnknownFormat)
        let b = #expect(throws: CodedError.self) { try DRTMEventLog.parse(path: LogVectors.path("tbootdevel_2019_R730_failed_launch_serial_log.txt")) }
        #expect(b?.code == .logUnknownFormat)
    }

    @Test func missingFileIsAFileError() {
        #expect { try DRTMEventLog.parse(path: LogVectors.path("no-such-log.bin")) } throws: { ($0 as? CodedError)?.code.isFile == true }
    }
}
