// SPDX-License-Identifier: Apache-2.0
import Foundation
import Testing
@testable import AEMPCR

/// Every `--json` output against its JSON Schema in `man/` (Issue 6), validated by python3's
/// `jsonschema` (Draft 2020-12) as `predictJSONFollowsSchema` does; duplicate keys are refused
/// too, which a schema cannot see. Without `jsonschema` the tests are skipped, except in CI.
@Suite struct SchemaTests {
    static let rawLog = "Vectors/logs/isecl_tagent_txt-logs.bin"
    static let heapDump = "Vectors/logs/isecl_tagent_txt_heap_info.bin"
    static let example = ["--grub-cfg", "Vectors/example/grub.cfg", "--entry", "0", "--boot-dir", "Vectors/example/boot"]

    /// Whether python3 can import jsonschema; records an Issue when it cannot in CI.
    static func haveJSONSchema() throws -> Bool {
        let check = try run("/usr/bin/env", ["python3", "-c", "import jsonschema"])
        guard check.status == 0 else {
            Issue.record("python3 jsonschema missing; .ci/run installs it")  // the test's trait ran it: the reference must be there
            return false
        }
        return true
    }

    static let validator = """
        import json, sys, jsonschema
        def pairs(kv):
            keys = [k for k, _ in kv]
            dup = sorted({k for k in keys if keys.count(k) > 1})
            if dup:
                sys.exit("duplicate keys: " + ", ".join(dup))
            return dict(kv)
        schema = json.load(open(sys.argv[1]))
        jsonschema.Draft202012Validator.check_schema(schema)
        jsonschema.validate(json.load(open(sys.argv[2]), object_pairs_hook=pairs), schema,
                            cls=jsonschema.Draft202012Validator)
        """

    /// Checks `output` against `man/aem-pcr-<command>.schema.json`.
    func expectFollowsSchema(_ command: String, _ output: String, _ what: String,
                             sourceLocation: SourceLocation = #_sourceLocation) throws {
        let file = try tempDir() + "/out.json"
        try output.write(toFile: file, atomically: true, encoding: .utf8)
        let v = try run("/usr/bin/env", ["python3", "-c", Self.validator,
                                         Repo.path("man/aem-pcr-\(command).schema.json"), file])
        #expect(v.status == 0, "\(command) \(what): \(v.stderr)", sourceLocation: sourceLocation)
    }

    func object(_ text: String) -> [String: Any] {
        (try? JSONSerialization.jsonObject(with: Data(text.utf8))) as? [String: Any] ?? [:]
    }

    /// The first three records of OpenCIT issue 63's txt-stat log: a HASH_START logged twice,
    /// a record for PCR 255, digests that are not the hash of their data.
    func corruptTextLog() throws -> String {
        let lines = try readText("Vectors/logs/opencit_issue63_txtstat_tpm2_sha1_eventlog_excerpt.txt")
            .split(separator: "\n", omittingEmptySubsequences: false)
        let path = try tempDir() + "/txt-stat.txt"
        try write(Array(lines.prefix(37).joined(separator: "\n").utf8) + [10], to: path)
        return path
    }

    /// The real log's events that carry SHA-1 and SHA-256, rewritten as a TPM 1.2 container, a
    /// heap dump with TPM 2.0 per-algorithm logs, and a TCG log that also declares SM3.
    func derivedLogs() throws -> [(format: String, path: String)] {
        let log = try DRTMEventLog.parse(path: Repo.path(Self.rawLog))
        let both = log.events.filter { $0.digests[.sha1] != nil && $0.digests[.sha256] != nil }
        let dir = try tempDir()
        try write(LogWriter.container(both), to: dir + "/container.bin")
        let legacy: [(HashAlgorithm, [UInt8])] = [.sha1, .sha256].map { ($0, LogWriter.legacyLog(both, algorithm: $0)) }
        try write(LogWriter.heapDump(.legacy(legacy)), to: dir + "/legacy-heap.bin")
        let sm3 = try #require(Digest(.sm3_256, hex: String(repeating: "5a", count: 32)))
        let withSM3 = both.map { e in
            DRTMEvent(pcr: e.pcr, type: e.type, digests: e.sortedDigests + [sm3], data: e.data)
        }
        try write(LogWriter.tcgLog(withSM3, banks: [.sha1, .sha256, .sm3_256]), to: dir + "/tcg-sm3.bin")
        return [("tpm12-container", dir + "/container.bin"), ("tpm20-legacy", dir + "/legacy-heap.bin"),
                ("tpm20-tcg", dir + "/tcg-sm3.bin")]
    }

    @Test(.needsJSONSchema) func logShowJSONFollowsSchema() throws {
        guard try Self.haveJSONSchema() else { return }
        var formats = Set<String>()
        for file in [Self.rawLog, Self.heapDump] + (try derivedLogs().map(\.path)) {
            let r = try aemPCR(["log", "show", "--json", file])
            #expect(r.status == 0, "\(file): \(r.stderr)")
            try expectFollowsSchema("log-show", r.stdout, file)
            formats.insert(object(r.stdout)["format"] as? String ?? "")
        }
        #expect(formats == ["tpm12-container", "tpm20-legacy", "tpm20-tcg"])
    }

    @Test(.needsJSONSchema) func logShowLenientJSONFollowsSchema() throws {
        guard try Self.haveJSONSchema() else { return }
        let file = try corruptTextLog()
        let r = try aemPCR(["log", "show", "--lenient", "--json", file])
        #expect(r.status == 0, "\(r.stderr)")
        let json = object(r.stdout)
        #expect(json["format"] as? String == "txt-stat-text")
        #expect((json["problems"] as? [Any])?.count == 2)
        try expectFollowsSchema("log-show", r.stdout, "--lenient \(file)")
    }

    @Test(.needsJSONSchema) func logReplayJSONFollowsSchema() throws {
        guard try Self.haveJSONSchema() else { return }
        let derived = try derivedLogs()
        for file in [Self.rawLog, Self.heapDump] + derived.map(\.path) {
            let r = try aemPCR(["log", "replay", "--json", file])
            #expect(r.status == 0, "\(file): \(r.stderr)")
            try expectFollowsSchema("log-replay", r.stdout, file)
        }
        // Partial banks (the raw log) and a bank this tool cannot replay (SM3).
        #expect((object(try aemPCR(["log", "replay", "--json", Self.rawLog]).stdout)["partial"] as? [Any])?.count == 2)
        let sm3 = object(try aemPCR(["log", "replay", "--json", derived[2].path]).stdout)
        #expect(sm3["uncomputable_banks"] as? [String] == ["sm3_256"])

        // Lenient: data mismatches, an event not extended, problems.
        let corrupt = try corruptTextLog()
        let r = try aemPCR(["log", "replay", "--lenient", "--json", corrupt])
        #expect(r.status == 0, "\(r.stderr)")
        let json = object(r.stdout)
        #expect((json["data_mismatches"] as? [Any])?.isEmpty == false)
        #expect(json["not_extended"] as? [Int] == [2])
        try expectFollowsSchema("log-replay", r.stdout, "--lenient \(corrupt)")
    }

    /// The raw log's replay as a PCR file, and a copy with its PCR18 SHA-256 value changed.
    func pcrFiles() throws -> (good: String, bad: String) {
        let replay = try aemPCR(["log", "replay", "--json", Self.rawLog])
        #expect(replay.status == 0, "\(replay.stderr)")
        let pcrs = object(replay.stdout)["pcrs"] as? [String: [String: String]]
        let value = try #require(pcrs?["sha256"]?["18"])
        let changed = String(value.dropLast()) + (value.hasSuffix("0") ? "1" : "0")
        let dir = try tempDir()
        try replay.stdout.write(toFile: dir + "/pcrs.json", atomically: true, encoding: .utf8)
        try replay.stdout.replacingOccurrences(of: value, with: changed)
            .write(toFile: dir + "/changed.json", atomically: true, encoding: .utf8)
        return (dir + "/pcrs.json", dir + "/changed.json")
    }

    @Test(.needsJSONSchema) func verifyJSONFollowsSchema() throws {
        guard try Self.haveJSONSchema() else { return }
        let (good, bad) = try pcrFiles()
        let ok = try aemPCR(["verify", "--json", "--event-log", Self.rawLog, "--pcrs", good])
        #expect(ok.status == 0, "\(ok.stderr)")
        #expect(object(ok.stdout)["verified"] as? Bool == true)
        try expectFollowsSchema("verify", ok.stdout, "matching PCRs")

        // Exit status 1, and the JSON still printed.
        let differs = try aemPCR(["verify", "--json", "--event-log", Self.rawLog, "--pcrs", bad])
        #expect(differs.status == 1, "\(differs.stderr)")
        let json = object(differs.stdout)
        #expect(json["verified"] as? Bool == false)
        #expect((json["pcrs"] as? [[String: Any]])?.filter { $0["status"] as? String == "mismatch" }.count == 1)
        try expectFollowsSchema("verify", differs.stdout, "one PCR changed")
    }

    @Test(.needsJSONSchema) func diffJSONFollowsSchema() throws {
        guard try Self.haveJSONSchema() else { return }
        let (good, bad) = try pcrFiles()
        let cases: [(args: [String], verified: Bool?)] = [
            (["--pcrs", good], true),
            (["--pcrs", good, "--bank", "sha256"], true),
            (["--pcrs", bad, "--force"], false),
            (["--force"], nil),
        ]
        for c in cases {
            let r = try aemPCR(["diff", "--json", "--event-log", Self.rawLog] + c.args + Self.example)
            #expect(r.status == 0, "\(c.args): \(r.stderr)")
            let json = object(r.stdout)
            #expect(json["verified"] as? Bool == c.verified && (json["verified"] is NSNull) == (c.verified == nil), "\(c.args)")
            #expect((json["changes"] as? [Any])?.isEmpty == false, "\(c.args)")
            try expectFollowsSchema("diff", r.stdout, "\(c.args)")
        }
    }

    @Test(.needsJSONSchema) func measureJSONFollowsSchema() throws {
        guard try Self.haveJSONSchema() else { return }
        let cases: [[String]] = [
            ["Vectors/example/boot/xen-4.17.5.gz"],
            ["--bank", "sha512", "--bank", "sha384", "--nounzip", "--cmdline", "a \"quoted\"\targ", "Vectors/example/boot/xen-4.17.5.gz"],
            ["--bank", "sha256", "--cmdline", "placeholder root=/dev/x ro", "Vectors/example/boot/vmlinuz-6.6.63-1.qubes.fc37.x86_64"],
        ]
        for args in cases {
            let r = try aemPCR(["measure", "--json"] + args)
            #expect(r.status == 0, "\(args): \(r.stderr)")
            try expectFollowsSchema("measure", r.stdout, "\(args)")
        }
    }

    @Test(.needsJSONSchema) func mleHashJSONFollowsSchema() throws {
        guard try Self.haveJSONSchema() else { return }
        let cases: [[String]] = [
            [],
            ["--bank", "sha384", "--bank", "sha1", "--cmdline", "placeholder logging=memory,serial"],
            ["--cmdline", String(repeating: "x", count: 600)],  // cut to 511 bytes as tboot does
        ]
        for args in cases {
            let r = try aemPCR(["mle-hash", "--json"] + args + ["Vectors/example/boot/tboot.gz"])
            #expect(r.status == 0, "\(args): \(r.stderr)")
            try expectFollowsSchema("mle-hash", r.stdout, "\(args)")
        }
    }

    @Test func policyJSONFollowsSchema() throws {
        guard try Self.haveJSONSchema() else { return }
        let dir = try tempDir()
        let replay = try aemPCR(["log", "replay", "--json", Self.rawLog])
        try replay.stdout.write(toFile: dir + "/p.json", atomically: true, encoding: .utf8)
        let zeros = dir + "/z.yaml"
        try "sha256:\n  13: 0x\(String(repeating: "00", count: 32))\n".write(toFile: zeros, atomically: true, encoding: .utf8)
        for args in [["--pcr", "17,18", "--bank", "sha1"], ["--pcr", "13,17", "--bank", "sha256"],
                     ["--pcr", "17", "--bank", "sha256", "--bank", "sha1"]] {
            let r = try aemPCR(["policy", "--json", "--values", zeros, "--values", dir + "/p.json"] + args)
            #expect(r.status == 0, "\(args): \(r.stderr)")
            try expectFollowsSchema("policy", r.stdout, "\(args)")
        }
    }

    /// The manual names every schema file in man/.
    @Test func manualListsEverySchema() throws {
        let page = try readText("man/aem-pcr.8")
        let schemas = try FileManager.default.contentsOfDirectory(atPath: Repo.path("man"))
            .filter { $0.hasSuffix(".schema.json") }
        #expect(schemas.count >= 7)
        for s in schemas { #expect(page.contains("man/" + s), "\(s)") }
    }
}
