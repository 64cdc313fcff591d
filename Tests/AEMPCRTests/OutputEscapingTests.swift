// SPDX-License-Identifier: Apache-2.0
import Foundation
import Testing
@testable import AEMPCR

/// One escaping rule for every text output (issue 19, item 11): a string that came from a file,
/// an option or the environment reaches the terminal with its control characters escaped
/// (`\x1b`, `\n` …), never raw; `--json` escapes them as `\u00XX`. Each case is an attack the
/// issue found: a forged line and a screen-clearing sequence printed as the tool's own words.
@Suite(.serialized) struct OutputEscapingTests {
    /// What an attacker writes: a line that looks like the tool's verdict, and ESC[2J.
    static let forged = "x\n PCR17: all good\u{1B}[2J\r"

    /// No raw control character but the line ends: what a terminal shows is what was printed.
    static func clean(_ s: String, sourceLocation: SourceLocation = #_sourceLocation) {
        let bad = s.unicodeScalars.filter { $0 != "\n" && ($0.value < 0x20 || (0x7F..<0xA0).contains($0.value)) }
        #expect(bad.isEmpty, "raw control characters \(bad.map { String($0.value, radix: 16) }): \(s)", sourceLocation: sourceLocation)
        #expect(!s.contains("\n PCR17: all good"), "the forged line is printed as a line: \(s)", sourceLocation: sourceLocation)
    }

    /// The output with line wrapping and folding undone: without blanks and newlines.
    static func flat(_ s: String) -> String {
        String(s.filter { $0 != " " && $0 != "\n" })
    }

    /// The synthetic TPM 2.0 boot of LogPredictionTests (log and python3's replay of it).
    static func boot(_ dir: String) throws -> (log: String, pcrs: String) {
        let (log, events) = try LogPredictionTests.syntheticBoot(dir)
        try LogPredictionTests.pythonReplay(events, to: dir + "/pcrs.yaml")
        return (log, dir + "/pcrs.yaml")
    }

    /// seal's report names --tpm-dir: a directory name holding a newline and ESC.
    @Test func sealReportEscapesTheTPMDir() throws {
        let dir = try tempDir()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let (log, pcrs) = try Self.boot(dir)
        // PCR13 as now, in the sha256 bank (the last one of the YAML).
        try (try String(contentsOfFile: pcrs, encoding: .utf8) + "    13: 0x" + String(repeating: "AB", count: 32) + "\n")
            .write(toFile: dir + "/pcrs13.yaml", atomically: true, encoding: .utf8)
        try FileManager.default.createDirectory(atPath: dir + "/aem/aem", withIntermediateDirectories: true)
        try write(Array("secret".utf8), to: dir + "/aem/aem/secret.txt")
        let tpmDir = dir + "/tpm" + Self.forged
        let r = try aemPCR(["seal", "--label", "aem", "--aem-dir", dir + "/aem", "--tpm-dir", tpmDir, "--dry-run",
                            "--event-log", log, "--pcrs", dir + "/pcrs13.yaml", "--boot-dir", "Vectors/example/boot"]
                           + LogPredictionTests.entryArgs + LogPredictionTests.embedded)
        #expect(r.status == 0, "\(r.stderr)")
        Self.clean(r.stdout)
        #expect(Self.flat(r.stdout).contains(Self.flat("tpmx\\n PCR17: all good\\x1b[2J\\r/aem")), "\(r.stdout)")
        #expect(!FileManager.default.fileExists(atPath: tpmDir))
    }

    /// check-boot prints strings of the saved prediction (an event's description): a forged one
    /// is shown escaped, never as a line of its own.
    @Test func checkBootEscapesTheSavedPrediction() throws {
        let dir = try tempDir()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let (log, pcrs) = try Self.boot(dir)
        var values = PCRValues()
        values[.sha256, 17] = Digest(.sha256, bytes: Array(repeating: 0x11, count: 32))!
        let selection = try PCRSelection(parsing: "sha256:17")
        let record = SealedPrediction(
            label: "aem", sealedAt: "20261130T040000Z", selection: selection,
            policyDigest: try PolicyPCR.digest(selection, values: values), pcrs: values,
            events: [.init(pcr: 17, type: EventType(rawValue: 0x501), what: "module 2: /boot/initramfs" + Self.forged,
                           digests: [.sha256: Digest(.sha256, bytes: Array(repeating: 0x22, count: 32))!])])
        try FileManager.default.createDirectory(atPath: dir + "/tpm/aem", withIntermediateDirectories: true)
        try record.render().write(toFile: dir + "/tpm/aem/aem-pcr-prediction.json", atomically: true, encoding: .utf8)
        // The sealed object the verdict comes from: a key.pub (TPM2B_PUBLIC of a keyed-hash
        // object, SHA-256 name, fixedTPM|fixedParent) whose authPolicy is the record's digest,
        // and key.pcrs as AEM writes it.
        var pub: [UInt8] = [0x00, 0x08, 0x00, 0x0B, 0x00, 0x00, 0x00, 0x12, 0x00, 0x20] + record.policyDigest.bytes
        pub += [0x00, 0x10, 0x00, 0x20] + Array(repeating: 0, count: 32)
        try write([UInt8(pub.count >> 8), UInt8(pub.count & 0xFF)] + pub, to: dir + "/tpm/aem/key.pub")
        try "sha256:17\n".write(toFile: dir + "/tpm/aem/key.pcrs", atomically: true, encoding: .utf8)
        let r = try aemPCR(["check-boot", "--label", "aem", "--tpm-dir", dir + "/tpm", "--event-log", log, "--pcrs", pcrs])
        #expect(r.status == 1, "\(r.stdout)\(r.stderr)")
        Self.clean(r.stdout)
        #expect(Self.flat(r.stdout).contains(Self.flat("/boot/initramfsx\\n PCR17: all good\\x1b[2J\\r differs")), "\(r.stdout)")
        // --json: the same string, each control character as \u00XX, read back exactly by python3.
        let j = try aemPCR(["check-boot", "--label", "aem", "--tpm-dir", dir + "/tpm", "--event-log", log, "--pcrs", pcrs, "--json"])
        Self.clean(j.stdout)
        #expect(j.stdout.contains("\\n PCR17: all good\\u001b[2J\\r"), "\(j.stdout)")
        try j.stdout.write(toFile: dir + "/out.json", atomically: true, encoding: .utf8)
        let py = try run("/usr/bin/env", ["python3", "-c", "import json,sys; print(repr(json.load(open(sys.argv[1]))['differences'][0]['component']))", dir + "/out.json"])
        #expect(py.stdout == "'module 2: /boot/initramfsx\\n PCR17: all good\\x1b[2J\\r'\n", "\(py.stdout)\(py.stderr)")
    }

    /// notice prints component and file names it saved in notice.state: a state file rewritten
    /// by someone else shows them escaped.
    @Test func noticeEscapesNamesFromItsState() throws {
        let dir = try tempDir()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try FileManager.default.copyItem(atPath: Repo.path("Vectors/example/boot"), toPath: dir + "/boot")
        let args = ["notice", "--grub-cfg", Repo.path("Vectors/example/grub.cfg"), "--boot-dir", "boot",
                    "--state-dir", "state", "--aem-dir", "aem", "--mem", "no-dev-mem", "--tpm", "1.2"]
        let first = try run(Repo.binary, args, cwd: dir)
        #expect(first.status == 0 && Self.flat(first.stdout).contains(Self.flat("no record of what the current boot measured")), "\(first.stdout)")
        // notice.state is one record a line (tabs between fields): a forged file name keeps them
        // (a forged component is no longer read at all: the state is set aside as unusable).
        let path = dir + "/state/notice.state"
        let forged = "\u{1B}]0;t\u{7} PCR17: all good\u{1B}[2J\r\u{9B}31m"
        let text = try String(contentsOfFile: path, encoding: .utf8).split(separator: "\n").map { line -> String in
            if line.hasPrefix("boot_id\t") { return "boot_id\tan-earlier-boot" }
            // a saved SINIT file is named by its saved path when it is not in /boot any more
            if line.hasPrefix("next\tSINIT\t"), line.hasSuffix("SINIT_67.BIN") { return String(line) + forged }
            return String(line)
        }.joined(separator: "\n") + "\n"
        #expect(text.contains(forged))
        try text.write(toFile: path, atomically: true, encoding: .utf8)
        let r = try run(Repo.binary, args, cwd: dir)
        #expect(r.status == 0, "\(r.stderr)")
        Self.clean(r.stdout)
        #expect(Self.flat(r.stdout).contains(Self.flat("SINIT module 3rd_gen_i5_i7_SINIT_67.BIN\\x1b]0;t\\x07 PCR17: all good\\x1b[2J\\r\\x9b31m changes: PCR17")), "\(r.stdout)")
    }

    /// predict names a module's file in its text (the events, --verbose's modules) and --json.
    @Test func predictEscapesAModulePath() throws {
        let dir = try tempDir()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        // --module splits its value at blanks: a name without one.
        let xen = dir + "/xen\nPCR17:all-good\u{1B}[2J\r\u{9B}2J.gz"
        try FileManager.default.copyItem(atPath: Repo.path("Vectors/example/boot/xen-4.17.5.gz"), toPath: xen)
        let args = ["predict", "--tpm", "2.0", "--tboot", Repo.path("Vectors/example/boot/tboot.gz"), "--tboot-cmdline", "logging=memory",
                    "--module", xen + " placeholder", "--module", Repo.path("Vectors/example/boot/vmlinuz-6.6.63-1.qubes.fc37.x86_64") + " ro"]
        let r = try aemPCR(args + ["--verbose"])
        #expect(r.status == 0, "\(r.stderr)")
        Self.clean(r.stdout)
        let shown = "xen\\nPCR17:all-good\\x1b[2J\\r\\x9b2J.gz"
        #expect(Self.flat(r.stdout).contains(Self.flat("module 0: \(dir)/\(shown) (--module)")), "\(r.stdout)")
        let j = try aemPCR(args + ["--json"])
        #expect(j.status == 0, "\(j.stderr)")
        Self.clean(j.stdout)
        #expect(j.stdout.contains("xen\\nPCR17:all-good\\u001b[2J\\r\\u009b2J.gz"), "\(j.stdout)")
        try j.stdout.write(toFile: dir + "/out.json", atomically: true, encoding: .utf8)
        let py = try run("/usr/bin/env", ["python3", "-c", "import json,sys; print(json.load(open(sys.argv[1]))['modules'][0]['file'] == sys.argv[2])", dir + "/out.json", xen])
        #expect(py.stdout == "True\n", "\(py.stdout)\(py.stderr)")
    }

    /// The bidirectional controls and line separators reorder or break a line on screen: they
    /// are escaped too, in the text output and in the one-line errors.
    @Test func bidiControlsAreEscaped() throws {
        let dir = try tempDir()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let xen = dir + "/xen\u{202E}zg.5.71.4-nex\u{2028}"
        try FileManager.default.copyItem(atPath: Repo.path("Vectors/example/boot/xen-4.17.5.gz"), toPath: xen)
        let r = try aemPCR(["predict", "--tpm", "2.0", "--verbose", "--tboot", Repo.path("Vectors/example/boot/tboot.gz"),
                            "--module", xen + " placeholder"])
        #expect(r.status == 0, "\(r.stderr)")
        #expect(!r.stdout.unicodeScalars.contains { [0x202E, 0x2028].contains($0.value) }, "\(r.stdout)")
        #expect(Self.flat(r.stdout).contains(Self.flat("module 0: \(dir)/xen\\u{202e}zg.5.71.4-nex\\u{2028} (--module)")), "\(r.stdout)")
        let e = try aemPCR(["measure", dir + "/no\u{202E}such\u{2066}"])
        #expect(e.status == 2 && e.stderr == "aem-pcr: error: \(dir)/no\\u{202e}such\\u{2066}: no such file\n", "\(e.stderr)")
    }

    /// The mechanism: nothing in the CLI writes to standard output or standard error except
    /// through Terminal.swift, which takes only TerminalText (escaped by construction) or JSON.
    @Test func noRawOutputOutsideTerminal() throws {
        let dir = Repo.path("Sources/aem-pcr")
        let pattern = #"\b(print|debugPrint|dump|fputs|puts|putchar|fwrite|fprintf|printf|vprintf)\(|FileHandle|\bwrite\((1|2|STDOUT|STDERR)|writeAll\((1|2)|STDOUT_FILENO|STDERR_FILENO|\bstdout\b|\bstderr\b"#
        let r = try run("/bin/grep", ["-rnE", pattern, dir, "--include=*.swift"])
        let hits = r.stdout.split(separator: "\n").filter { !$0.hasPrefix(dir + "/Terminal.swift:") }
        #expect(hits.isEmpty, "writes outside Terminal: \(hits)")
        // and the grep does find them where they are
        #expect(r.stdout.contains("Terminal.swift:"), "\(r.stdout)")
    }
}
