// SPDX-License-Identifier: Apache-2.0
import Foundation
import Testing
@testable import AEMPCR

/// The command line: documented error cases give one line naming the culprit, and exit 2.
@Suite(.serialized) struct CLITests {
    static let dir: String = {
        let d = try! tempDir()
        let payload = (0..<300_000).map { UInt8(truncatingIfNeeded: $0 &* 97 >> 3) }
        try! write(payload, to: d + "/xen")
        _ = try! run("/bin/gzip", ["-n", "-k", d + "/xen"])
        let gz = [UInt8](try! Data(contentsOf: URL(fileURLWithPath: d + "/xen.gz")))
        try! write(Array(gz.prefix(gz.count / 3)), to: d + "/truncated.gz")
        try! write(Array("not a policy".utf8), to: d + "/bad.pol")
        try! write(Array("menuentry 'Linux' {\n linux /vmlinuz ro\n initrd /initrd\n}\n".utf8), to: d + "/linux.cfg")
        // check-boot: a sealed set whose prediction record is a directory, and one without it.
        try! FileManager.default.createDirectory(atPath: d + "/tpm/aem/aem-pcr-prediction.json", withIntermediateDirectories: true)
        try! FileManager.default.createDirectory(atPath: d + "/tpm/aem2", withIntermediateDirectories: true)
        // check-boot: sets whose key.pub is cut short (aem3) or whose key.pcrs has a blank (aem4).
        let zeros = String(repeating: "00", count: 32)
        for label in ["aem3", "aem4"] {
            try! FileManager.default.createDirectory(atPath: d + "/tpm/" + label, withIntermediateDirectories: true)
            try! write(Array("""
                {"format": "aem-pcr-sealed-prediction/1", "label": "\(label)", "sealed_at": "20261130T042700Z",
                 "selection": "sha256:13,17", "policy_digest": "\(zeros)",
                 "pcrs": {"sha256": {"13": "\(zeros)", "17": "\(zeros)"}}, "events": []}

                """.utf8), to: d + "/tpm/\(label)/aem-pcr-prediction.json")
        }
        try! write(Array(SealedObjectTests.keyPub.prefix(40)), to: d + "/tpm/aem3/key.pub")
        try! write(Array("sha256:13,17\n".utf8), to: d + "/tpm/aem3/key.pcrs")
        try! write(SealedObjectTests.keyPub, to: d + "/tpm/aem4/key.pub")
        try! write(Array("sha256:13, 17\n".utf8), to: d + "/tpm/aem4/key.pcrs")
        return d
    }()
    static let tboot = "/boot/tboot.gz"

    struct ErrorCase: CustomStringConvertible, Sendable {
        var name: String
        var args: [String]
        var mentions: [String]
        var description: String { name }
    }

    static let errorCases: [ErrorCase] = [
        ErrorCase(name: "missing file", args: ["measure", dir + "/nope.gz"], mentions: ["nope.gz", "no such file"]),
        ErrorCase(name: "truncated gzip", args: ["measure", dir + "/truncated.gz"], mentions: ["truncated.gz", "gzip stream ends early"]),
        ErrorCase(name: "tboot without MLE header", args: ["mle-hash", dir + "/xen.gz"], mentions: ["xen.gz", "not an ELF image"]),
        ErrorCase(name: "grub entry not found", args: ["predict", "--grub-cfg", "Vectors/example/grub.cfg", "--entry", "Windows"],
                  mentions: ["grub.cfg", "no menu entry 'Windows'"]),
        ErrorCase(name: "grub entry without tboot", args: ["predict", "--grub-cfg", dir + "/linux.cfg", "--entry", "Linux"],
                  mentions: ["linux.cfg", "does not boot tboot"]),
        ErrorCase(name: "unknown bank", args: ["measure", "--bank", "md5", dir + "/xen"], mentions: ["md5"]),
        ErrorCase(name: "sm3 bank", args: ["measure", "--bank", "sm3_256", dir + "/xen"], mentions: ["sm3", "broken"]),
        ErrorCase(name: "sm3 extpol", args: ["predict", "--tpm", "2.0", "--extpol", "sm3", "--tboot", tboot, "--module", dir + "/xen"],
                  mentions: ["sm3", "broken"]),
        ErrorCase(name: "policy does not parse", args: ["predict", "--tpm", "1.2", "--policy", dir + "/bad.pol", "--tboot", tboot, "--module", dir + "/xen"],
                  mentions: ["bad.pol", "version 110"]),
        ErrorCase(name: "no boot named", args: ["predict"], mentions: ["--grub-cfg"]),
        ErrorCase(name: "legacy on TPM 2.0", args: ["predict", "--tpm", "2.0", "--pcr-map", "legacy", "--tboot", tboot],
                  mentions: ["DA mapping"]),
        ErrorCase(name: "unknown option", args: ["measure", "--frobnicate", "x"], mentions: ["--frobnicate"]),
        ErrorCase(name: "device instead of a file", args: ["measure", "--nounzip", "/dev/zero"], mentions: ["/dev/zero", "not a regular file"]),
        ErrorCase(name: "module without file", args: ["predict", "--tboot", tboot, "--module", " "], mentions: ["names no file"]),
        // Usage (issue 14): a mistyped option is named before what else is missing, with the
        // one meant; an option without effect names the one it needs; unknown commands.
        ErrorCase(name: "mistyped option", args: ["predict", "--grubcfg", "F"],
                  mentions: ["unknown option '--grubcfg' for 'aem-pcr predict'; did you mean '--grub-cfg'?"]),
        ErrorCase(name: "mistyped option with =", args: ["verify", "--event-logg=x", "--pcrs", "y"],
                  mentions: ["unknown option '--event-logg' for 'aem-pcr verify'; did you mean '--event-log'?"]),
        ErrorCase(name: "mistyped option of a nested command", args: ["log", "show", "--lenent", "x"],
                  mentions: ["unknown option '--lenent' for 'aem-pcr log show'; did you mean '--lenient'?"]),
        ErrorCase(name: "invalid value", args: ["predict", "--tpm", "3", "--tboot", tboot],
                  mentions: ["'3' is invalid for '--tpm <1.2|2.0>'", "(see 'aem-pcr predict --help')"]),
        ErrorCase(name: "missing value", args: ["measure", "--bank"], mentions: ["missing value for '--bank <bank>'"]),
        ErrorCase(name: "unexpected argument", args: ["measure", "a", "b"], mentions: ["unexpected argument 'b' (see 'aem-pcr measure --help')"]),
        ErrorCase(name: "missing argument", args: ["mle-hash"], mentions: ["missing expected argument '<file>'"]),
        ErrorCase(name: "force without a current boot", args: ["predict", "--tpm", "1.2", "--force", "--tboot", tboot],
                  mentions: ["--force has no effect without --live or --event-log"]),
        ErrorCase(name: "help of an unknown command", args: ["help", "bogus"],
                  mentions: ["help: unknown command 'bogus'", "predict, diff, verify"]),
        ErrorCase(name: "help of an unknown nested command", args: ["help", "log", "shw"],
                  mentions: ["help: unknown command 'shw'; did you mean 'show'?", "'aem-pcr log' commands: show, replay, dump"]),
        ErrorCase(name: "unknown command", args: ["prdict"], mentions: ["unknown command 'prdict'; did you mean 'predict'?"]),
        ErrorCase(name: "control bytes escaped", args: ["measure", "--x\u{1B}[31m"], mentions: ["'--x\\x1b[31m'"]),
        ErrorCase(name: "control bytes of a title escaped", args: ["predict", "--tpm", "1.2", "--grub-cfg", "Vectors/example/grub.cfg", "--entry", "A \\\n(B)"],
                  mentions: ["no menu entry 'A \\\\n(B)'"]),
        ErrorCase(name: "TPM family unknown", args: ["predict", "--tboot", tboot, "--module", dir + "/xen"],
                  mentions: ["TPM family is not known: give --tpm 1.2 or --tpm 2.0", "tpm_version_major"]),
        // check-boot says why the record cannot be read; "missing" only when it is.
        ErrorCase(name: "check-boot record unreadable", args: ["check-boot", "--label", "aem", "--tpm-dir", dir + "/tpm", "--pcrs", dir + "/xen"],
                  mentions: ["aem-pcr-prediction.json: is a directory"]),
        ErrorCase(name: "check-boot record missing", args: ["check-boot", "--label", "aem2", "--tpm-dir", dir + "/tpm", "--pcrs", dir + "/xen"],
                  mentions: ["aem2/aem-pcr-prediction.json is missing", "not sealed by 'aem-pcr seal'"]),
        // check-boot's verdict is read from key.pub and key.pcrs: a malformed one is named, with the offset.
        ErrorCase(name: "check-boot key.pub cut short", args: ["check-boot", "--label", "aem3", "--tpm-dir", dir + "/tpm", "--pcrs", dir + "/xen"],
                  mentions: ["aem3/key.pub: byte 0: the TPM2B_PUBLIC size is 78 but 38 bytes follow"]),
        ErrorCase(name: "check-boot key.pcrs with a blank", args: ["check-boot", "--label", "aem4", "--tpm-dir", dir + "/tpm", "--pcrs", dir + "/xen"],
                  mentions: ["aem4/key.pcrs: byte 10 (0x20) is not part of a selection"]),
    ]

    @Test(arguments: errorCases)
    func errorCase(_ c: ErrorCase) throws {
        let r = try aemPCR(c.args)
        #expect(r.status == 2, "\(c.name): status \(r.status), \(r.stderr)")
        #expect(r.stdout.isEmpty)
        for m in c.mentions { #expect(r.stderr.contains(m), "\(c.name): '\(m)' not in: \(r.stderr)") }
        #expect(!r.stderr.contains("Fatal error") && !r.stderr.contains("Stack dump"))
        // Every error, the argument parser's included, is one line.
        #expect(r.stderr.hasPrefix("aem-pcr: error: ") && r.stderr.split(separator: "\n").count == 1, "one line: \(r.stderr)")
    }

    @Test func verboseAddsErrorCode() throws {
        let r = try aemPCR(["measure", "--verbose", Self.dir + "/truncated.gz"])
        #expect(r.status == 2 && r.stderr.contains("error code: gzip-truncated"))
    }

    /// measure prints '<bank> <hex>' per bank; expected digests by python3.
    @Test func measureOutput() throws {
        let r = try aemPCR(["measure", "--bank", "sha1", "--bank", "sha512", "--cmdline", "placeholder a b", Self.dir + "/xen.gz"])
        #expect(r.status == 0)
        let py = """
            import hashlib,gzip,sys
            img=gzip.open(sys.argv[1]).read()
            for a in ['sha1','sha512']:
                h=lambda b: hashlib.new(a,b).digest()
                print(a, hashlib.new(a, h(b'placeholder a b')+h(img)).hexdigest())
            """
        let expected = try run("/usr/bin/env", ["python3", "-c", py, Self.dir + "/xen.gz"]).stdout
        #expect(r.stdout == expected)
        let raw = try aemPCR(["measure", "--nounzip", "--json", Self.dir + "/xen.gz"])
        let obj = try JSONSerialization.jsonObject(with: Data(raw.stdout.utf8)) as! [String: Any]
        #expect(obj["gunzipped"] as? Bool == false)
        #expect((obj["digests"] as? [String: String])?.keys.sorted() == ["sha1", "sha256"])
    }

    @Test(.needsTool("lcp2_mlehash", package: "tboot"), .needsDebianTboot) func mleHashOutputMatchesLcp2Mlehash() throws {
        guard let mlehash = tool("lcp2_mlehash") else { return }
        let line = "placeholder logging=memory,serial"
        let r = try aemPCR(["mle-hash", "--bank", "sha384", "--cmdline", line, Self.tboot])
        let ref = try run(mlehash, ["--create", "--alg", "sha384", "--cmdline", line, Self.tboot]).stdout.filter { !$0.isWhitespace }
        #expect(r.stdout == "sha384 \(ref)\n")
    }

    /// Human output stays within 80 columns and has no colour when not on a terminal.
    @Test(.needsDebianTboot) func textOutputFits80Columns() throws {
        let r = try aemPCR(["predict", "--tpm", "2.0", "--extpol", "embedded", "--bank", "sha1", "--bank", "sha512",
                            "--tboot", Self.tboot, "--tboot-cmdline", "placeholder logging=memory,serial",
                            "--module", Self.dir + "/xen.gz placeholder console=none"])
        #expect(r.status == 0, "\(r.stderr)")
        for line in r.stdout.split(separator: "\n") {
            #expect(line.count <= 80, "too wide: \(line)")
        }
        #expect(!r.stdout.contains("\u{1B}["))
    }
}

/// tboot ≤ 1.8.3 hashed command lines without their first word (`skip_filename`), tboot's own
/// included; later releases hash them whole. Expected digests by python3 and lcp2_mlehash.
@Suite struct OldTbootTests {
    @Test(.needsTool("lcp2_mlehash", package: "tboot"), .needsDebianTboot) func skipFilenameOnTboot183() throws {
        #expect(Predictor.skipFilename("  placeholder   console=none x") == "console=none x")
        #expect(Predictor.skipFilename("single") == "")
        guard let mlehash = tool("lcp2_mlehash") else { return }
        let dir = try tempDir()
        try write((0..<50_000).map { UInt8(truncatingIfNeeded: $0 * 13) }, to: dir + "/xen")
        let r = try aemPCR(["predict", "--json", "--tpm", "1.2", "--tboot-version", "1.8.3", "--tboot", "/boot/tboot.gz",
                            "--tboot-cmdline", "placeholder logging=memory,serial",
                            "--module", dir + "/xen placeholder console=none"])
        #expect(r.status == 0, "\(r.stderr)")
        let obj = try JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as! [String: Any]
        #expect((obj["launch"] as! [String: Any])["tboot_cmdline"] as? String == "logging=memory,serial")
        #expect((obj["modules"] as! [[String: Any]])[0]["cmdline"] as? String == "console=none")
        let mle = try run(mlehash, ["--create", "--alg", "sha1", "--cmdline", "logging=memory,serial", "/boot/tboot.gz"])
            .stdout.filter { !$0.isWhitespace }
        let m0 = try run("/usr/bin/env", ["python3", "-c", """
            import hashlib, sys
            h = lambda b: hashlib.sha1(b).digest()
            print(hashlib.sha1(h(b'console=none') + h(open(sys.argv[1], 'rb').read())).hexdigest())
            """, dir + "/xen"]).stdout.trimmingCharacters(in: .whitespacesAndNewlines)
        let events = obj["events"] as! [[String: Any]]
        #expect(events.first { $0["type"] as? String == "0x404" }?["digest"] as? String == mle)
        #expect(events.first { $0["component"] as? String == "module 0" }?["digest"] as? String == m0)
    }
}

/// Colour only on a terminal, never with NO_COLOR (run under a pseudo-terminal with script(1)).
@Suite struct ColourTests {
    @Test(.needsTool("script", package: "bsdutils", in: ["/usr/bin", "/bin"]), .needsDebianTboot)
    func colourOnlyOnTTYAndNeverWithNoColor() throws {
        guard let script = tool("script", in: ["/usr/bin", "/bin"]) else { return }
        let cmd = "\(Repo.binary) predict --tpm 1.2 --tboot /boot/tboot.gz --module /boot/tboot.gz"
        // The test runner's environment may carry NO_COLOR itself: remove it for this run.
        let tty = try run(script, ["-qec", "env -u NO_COLOR " + cmd, "/dev/null"], env: ["TERM": "xterm"])
        #expect(tty.stdout.contains("\u{1B}[1m"), "no colour on a TTY")
        let noColor = try run(script, ["-qec", cmd, "/dev/null"], env: ["TERM": "xterm", "NO_COLOR": "1"])
        #expect(noColor.status == 0 && !noColor.stdout.contains("\u{1B}["))
    }
}

/// Every command's text output stays within 80 columns (digests wrap onto their own lines).
@Test func allTextOutputFits80Columns() throws {
    let dir = try tempDir()
    let replay = try aemPCR(["log", "replay", "--json", "Vectors/logs/isecl_tagent_txt-logs.bin"])
    try replay.stdout.write(toFile: dir + "/p.json", atomically: true, encoding: .utf8)
    let log = ["--event-log", "Vectors/logs/isecl_tagent_txt-logs.bin", "--pcrs", dir + "/p.json"]
    let entry = ["--grub-cfg", "Vectors/example/grub.cfg", "--entry", "0", "--boot-dir", "Vectors/example/boot"]
    let commands: [[String]] = [
        ["log", "show", "Vectors/logs/isecl_tagent_txt_heap_info.bin"],
        ["log", "show", "-v", "Vectors/logs/isecl_tagent_txt-logs.bin"],
        ["log", "replay", "Vectors/logs/isecl_tagent_txt-logs.bin"],
        ["verify"] + log,
        ["diff"] + log + entry,
        ["predict"] + log + entry,
        ["predict", "--tpm", "2.0", "--extpol", "embedded", "--bank", "sha512"] + entry,
        ["policy", "--pcr", "17,18", "--bank", "sha1", "--values", dir + "/p.json"],
        ["policy", "-v", "--pcr", "17", "--bank", "sha1", "--values", dir + "/p.json", "-o", dir + "/pol"],
    ]
    for c in commands {
        let r = try aemPCR(c)
        #expect(r.status == 0, "\(c): \(r.stderr)")
        for line in r.stdout.split(separator: "\n") {
            #expect(line.count <= 80, "\(c.prefix(2)): too wide: \(line)")
        }
    }
}

/// A grub.cfg written for a /boot that is no partition of its own names /boot/… paths; with
/// --boot-dir ending in /boot the error says which --boot-dir to give, and that one works.
@Test func bootPrefixHint() throws {
    let dir = try tempDir()
    try FileManager.default.createDirectory(atPath: dir + "/root/boot", withIntermediateDirectories: true)
    for f in try FileManager.default.contentsOfDirectory(atPath: Repo.path("Vectors/example/boot")) {
        try FileManager.default.copyItem(atPath: Repo.path("Vectors/example/boot/" + f), toPath: dir + "/root/boot/" + f)
    }
    let cfg = try readText("Vectors/example/grub.cfg")
        .replacingOccurrences(of: "\tmultiboot\t/", with: "\tmultiboot\t/boot/")
        .replacingOccurrences(of: "\tmodule\t/", with: "\tmodule\t/boot/")
    try cfg.write(toFile: dir + "/grub.cfg", atomically: true, encoding: .utf8)
    let args = ["predict", "--tpm", "1.2", "--grub-cfg", dir + "/grub.cfg", "--entry", "0"]
    let r = try aemPCR(args + ["--boot-dir", dir + "/root/boot/"])
    #expect(r.status == 2)
    #expect(r.stderr == "aem-pcr: error: \(dir)/grub.cfg:131: /boot/tboot.gz resolves to \(dir)/root/boot/boot/tboot.gz, no such file: grub.cfg's paths begin with /boot/ (a /boot that is not its own partition), so give --boot-dir \(dir)/root\n")
    let ok = try aemPCR(args + ["--boot-dir", dir + "/root"])
    #expect(ok.status == 0, "\(ok.stderr)")
    // The same files from the unchanged grub.cfg: the same values.
    let same = try aemPCR(["predict", "--tpm", "1.2", "--grub-cfg", "Vectors/example/grub.cfg", "--entry", "0", "--boot-dir", "Vectors/example/boot"])
    let values = { (out: String) in out.split(separator: "\n").filter { $0.hasPrefix("18 ") || $0.hasPrefix("19 ") } }
    #expect(values(ok.stdout).count == 2 && values(ok.stdout) == values(same.stdout))
}
