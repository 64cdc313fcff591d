// SPDX-License-Identifier: Apache-2.0
import Foundation
import Testing
@testable import AEMPCR

/// Bounded, seeded fuzzing of every parser (issue 13): grub.cfg, the DRTM log formats, PCR value
/// files, tboot policies, gzip modules and tboot images. A few thousand cases in all; for each:
/// no crash, no case over a second, every rejection the library's error type (`AEMPCRError`) with
/// a one-line message, and the process's peak memory not 100 MB above where it started. A sample
/// of cases also runs through the CLI: every rejection there is one line and exit status 2.
@Suite(.serialized) struct FuzzTests {
    static func peakRSS() -> Int {
        var u = rusage()
        getrusage(RUSAGE_SELF.rawValue, &u)
        return u.ru_maxrss * 1024
    }

    /// GRUB words that reach the evaluator's corners: blocks, tests, expansion, `source`.
    static let grubTokens: [String] = [
        "{", "}", ";", "\n", "menuentry 'M' {", "submenu 'S' {", "if", "then", "else", "fi", "[", "]", "!", "(", ")",
        "-a", "-o", "=", "$a$a$a$a", "${x}", "\"$@\"", "set a=$a$a", "function f { f; f; }", "f", "source /s.cfg",
        "configfile /c.cfg", "(hd0,msdos1)/x", "(loop)/x", "(http,h)/x", "/../../x", "multiboot /t a", "module /m b",
        "'", "\"", "\\", "\u{E9}", "\r\n", "#", "$", "export a", "unset a", "--class", "--id", "loopback l /i",
    ]

    static func mutate(_ b: inout [UInt8], _ rng: inout SplitMix64, tokens: [String]) {
        if !tokens.isEmpty, !b.isEmpty, Bool.random(using: &rng) {
            for _ in 0..<Int.random(in: 1...6, using: &rng) {
                let at = Int.random(in: 0...b.count, using: &rng)
                var t = Array(tokens.randomElement(using: &rng)!.utf8)
                if Int.random(in: 0..<4, using: &rng) == 0 { t += [0x20] }
                b.insert(contentsOf: t, at: min(at, b.count))
            }
        } else {
            EventLogRobustnessTests.mutate(&b, &rng, in: 0..<b.count, resize: true)
        }
    }

    /// Runs one case: it must end within a second, and fail only with a one-line AEMPCRError.
    static func check(_ what: String, _ k: Int, _ body: () throws -> Void) {
        let start = ContinuousClock.now
        do {
            try body()
        } catch let e as AEMPCRError {
            let d = e.description
            if d.contains("\n") || d.contains("\r") { Issue.record("\(what) case \(k): a message of several lines: \(d.prefix(200))") }
        } catch {
            Issue.record("\(what) case \(k): not an AEMPCRError: \(error)")
        }
        let took = ContinuousClock.now - start
        if took > .seconds(1) { Issue.record("\(what) case \(k) took \(took)") }
    }

    @Test func grubConfigs() throws {
        let dir = try tempDir()
        try "set a=$a$a\nsource /s.cfg\n".write(toFile: dir + "/s.cfg", atomically: true, encoding: .utf8)
        try "menuentry 'C' {\n multiboot /t\n}\n".write(toFile: dir + "/c.cfg", atomically: true, encoding: .utf8)
        var seeds = [Array(try readText("Vectors/example/grub.cfg").utf8)]
        for f in ["conditions", "quoting", "submenu", "syntax", "variables"] {
            seeds.append(Array(try readText("Vectors/grub/\(f).cfg").utf8))
        }
        var rng = SplitMix64(seed: 0x6_2B0C_F613)
        let base = Self.peakRSS()
        var parsed = 0, evaluated = 0
        for k in 0..<1500 {
            var b = seeds[k % seeds.count]
            Self.mutate(&b, &rng, tokens: Self.grubTokens)
            Self.check("grub.cfg", k) {
                let cfg = try GrubConfig(bytes: b, path: "fuzz.cfg")
                parsed += 1
                for sel in ["0", "1", "1>0", "2>0>0", "AEM Qubes, with Xen hypervisor"] {
                    Self.check("grub.cfg entry", k) {
                        let e = try cfg.entry(sel, bootDir: dir)
                        evaluated += 1
                        _ = try BootSpec(entry: e, config: cfg, bootDir: dir)
                    }
                }
            }
        }
        #expect(parsed > 100 && evaluated > 100)  // both outcomes are reached
        #expect(Self.peakRSS() - base < 100 << 20)
    }

    @Test func pcrFilesAndPolicies() throws {
        let yaml = "sha1:\n  17: 0x" + String(repeating: "11", count: 20) + "\n  18: 0x" + String(repeating: "12", count: 20)
            + "\nsha256:\n  17: 0x" + String(repeating: "22", count: 32) + "\n"
        let json = #"{"pcrs": {"sha1": {"17": "\#(String(repeating: "ab", count: 20))"}, "sha256": {"19": "\#(String(repeating: "cd", count: 32))"}}}"#
        let pcrSeeds = [Array(yaml.utf8), Array(json.utf8)]
        let pcrTokens = ["{", "}", "[", "]", "\"", ":", ",", "\\u0000", "\\ud800", "sha1:", "sm3_256:", "0x", "\r\n", "\n", "  ", "#",
                         String(repeating: "[", count: 100), String(repeating: "{\"a\":", count: 100)]
        var rng = SplitMix64(seed: 0x9C2F_11E5)
        let base = Self.peakRSS()
        var ok = 0
        for k in 0..<1500 {
            var b = pcrSeeds[k % 2]
            Self.mutate(&b, &rng, tokens: pcrTokens)
            Self.check("PCR file", k) {
                _ = try PCRValuesFile.parse(String(decoding: b, as: UTF8.self), source: "fuzz")
                ok += 1
            }
        }
        #expect(ok > 0 && ok < 1500)
        let defaultDA: [UInt8] = Hex.decode("02000b01000000000000000300ff00000000000081110000000000008316001000004000")!
        let policySeeds = [defaultDA, Array(try Data(contentsOf: URL(fileURLWithPath: Repo.path("Vectors/example/boot/policy-custom.pol"))))]
        var accepted = 0
        for k in 0..<1000 {
            var b = policySeeds[k % 2]
            EventLogRobustnessTests.mutate(&b, &rng, in: 0..<b.count, resize: true)
            Self.check("policy", k) {
                _ = try TbootPolicy(bytes: b, source: "fuzz")
                accepted += 1
            }
        }
        #expect(accepted > 0 && accepted < 1000)
        #expect(Self.peakRSS() - base < 100 << 20)
    }

    /// gzip modules and tboot images (gunzip, ELF, MLE header), from the example tboot.gz.
    @Test func gzipAndTbootImages() throws {
        let dir = try tempDir()
        let seed = Array(try Data(contentsOf: URL(fileURLWithPath: Repo.path("Vectors/example/boot/tboot.gz"))))
        var rng = SplitMix64(seed: 0x1F8B_0808)
        let base = Self.peakRSS()
        var ok = 0
        for k in 0..<600 {
            var b = seed
            // Edits in the header, the deflate stream's start, anywhere, and the trailer.
            let regions = [0..<16, 16..<600, 0..<b.count, (b.count - 8)..<b.count]
            EventLogRobustnessTests.mutate(&b, &rng, in: regions[k % 4], resize: k % 3 == 0)
            try write(b, to: dir + "/m.gz")
            Self.check("gzip", k) {
                _ = try ModuleImage.hash(path: dir + "/m.gz", unzip: true, banks: [.sha256], parallel: false)
                ok += 1
            }
            Self.check("tboot image", k) {
                let image = try MLEImage(path: dir + "/m.gz")
                _ = try image.hash(cmdline: "placeholder", banks: [.sha1])
            }
        }
        #expect(ok > 0 && ok < 600)
        #expect(Self.peakRSS() - base < 100 << 20)
    }

    /// The log formats, each case timed (EventLogRobustnessTests fuzzes them further).
    @Test func eventLogs() throws {
        let tcg = Array(try LogVectors.bytes("isecl_tagent_txt-logs.bin").prefix(1700))
        let text = Array(TextWriter.tcgLog(try DRTMEventLog.parse(bytes: tcg).events, banks: [.sha1, .sha256]).utf8)
        let events = EventLogRoundTripTests.events([.sha1], tbootBanks: [.sha1])
        let seeds: [[UInt8]] = [tcg, text, LogWriter.container(events, padToSize: false),
                                LogWriter.legacyLog(EventLogRoundTripTests.events([.sha256], tbootBanks: [.sha256]), algorithm: .sha256)]
        var rng = SplitMix64(seed: 0x0501_0404)
        let base = Self.peakRSS()
        for k in 0..<1200 {
            var b = seeds[k % seeds.count]
            Self.mutate(&b, &rng, tokens: k % 4 == 1 ? ["PCRIndex: ", "Type: 0x", "Digest: ", "\r\n", "Data: 9999999 bytes", "pcr_index: "] : [])
            Self.check("event log", k) {
                let log = try DRTMEventLog.parse(bytes: b[...], source: "fuzz", checks: [])
                _ = log.replay()
                _ = log.problems()
            }
        }
        #expect(Self.peakRSS() - base < 100 << 20)
    }

    /// A sample through the CLI: each rejection is one line on standard error, exit status 2.
    @Test func cliRejectionsAreOneLine() throws {
        let dir = try tempDir()
        var rng = SplitMix64(seed: 0xC11_0002)
        let grub = Array(try readText("Vectors/grub/syntax.cfg").utf8)
        let log = Array(try LogVectors.bytes("isecl_tagent_txt-logs.bin").prefix(1700))
        let pcrs = Array("sha256:\n  17: 0x\(String(repeating: "22", count: 32))\n".utf8)
        let policy: [UInt8] = Hex.decode("02000b01000000000000000300ff00000000000081110000000000008316001000004000")!
        let gz = Array(try Data(contentsOf: URL(fileURLWithPath: Repo.path("Vectors/example/boot/tboot.gz"))))
        let boot = Repo.path("Vectors/example/boot")
        let cases: [([UInt8], [String], (String) -> [String])] = [
            (grub, Self.grubTokens, { ["predict", "--tpm", "1.2", "--grub-cfg", $0, "--entry", "Glued", "--boot-dir", dir] }),
            (log, [], { ["log", "replay", $0] }),
            (pcrs, ["{", ":", "\n", "0x", "\u{1B}", "sha1:"], { ["verify", "--event-log", Repo.path("Vectors/logs/isecl_tagent_txt-logs.bin"), "--pcrs", $0] }),
            (policy, [], { ["predict", "--tboot", boot + "/tboot.gz", "--module", boot + "/xen-4.17.5.gz x", "--tpm", "2.0", "--policy", $0] }),
            (gz, [], { ["measure", $0] }),
        ]
        for (n, (seed, tokens, args)) in cases.enumerated() {
            for k in 0..<30 {
                var b = seed
                Self.mutate(&b, &rng, tokens: tokens)
                let f = dir + "/in\(n)"
                try write(b, to: f)
                let r = try aemPCR(args(f))
                if r.status != 0 {
                    let lines = r.stderr.split(separator: "\n", omittingEmptySubsequences: false)
                    #expect(r.status == 2 && lines.count == 2 && lines[0].hasPrefix("aem-pcr: error: ") && lines[1].isEmpty,
                            "case \(n).\(k): status \(r.status): \(r.stderr.prefix(300))")
                }
            }
        }
    }
}
