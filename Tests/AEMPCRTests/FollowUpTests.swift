// SPDX-License-Identifier: Apache-2.0
import Foundation
import Testing
@testable import AEMPCR

/// What the tool tells a user to do next matches what it accepts (issue 21, items 3 and 5):
/// no option offered that is refused, the way out named where a TPM or a file is missing, the
/// manual's words checked against the CLI.
@Suite struct FollowUpTests {
    /// The lines of `--help`'s OPTIONS that document `option`.
    static func documents(_ help: String, _ option: String) -> Bool {
        help.split(separator: "\n").contains { $0.trimmingCharacters(in: .whitespaces).hasPrefix(option + " ") || $0.trimmingCharacters(in: .whitespaces) == option }
    }

    /// seal takes no --force: its help does not offer it (the discussion says so), and given it
    /// is an unknown option (predict and diff still take it).
    @Test func sealOffersNoForce() throws {
        let help = try aemPCR(["seal", "--help"])
        #expect(help.status == 0 && !Self.documents(help.stdout, "--force") && flat(help.stdout).contains("seal takes no --force"), "\(help.stdout)")
        for sub in ["predict", "diff"] {
            #expect(Self.documents(try aemPCR([sub, "--help"]).stdout, "--force"), "\(sub)")
        }
        let r = try aemPCR(["seal", "--label", "aem", "--force"] + LogPredictionTests.entryArgs)
        #expect(MessageTests.oneLine(r) && r.stderr.contains("unknown option '--force' for 'aem-pcr seal'"), "\(r.stderr)")
    }

    /// The synthetic TPM 2.0 boot (its log, python3's replay of it with PCR13 added) and a
    /// secret, for seal's dry runs.
    static func sealInputs(_ dir: String) throws -> (args: [String], log: String, pcrs13: String) {
        let (log, pcrs) = try OutputEscapingTests.boot(dir)
        let pcrs13 = dir + "/pcrs13.yaml"
        try (try String(contentsOfFile: pcrs, encoding: .utf8) + "    13: 0x" + String(repeating: "AB", count: 32) + "\n")
            .write(toFile: pcrs13, atomically: true, encoding: .utf8)
        try FileManager.default.createDirectory(atPath: dir + "/aem/aem", withIntermediateDirectories: true)
        try write(Array("secret".utf8), to: dir + "/aem/aem/secret.txt")
        let args = ["seal", "--label", "aem", "--aem-dir", dir + "/aem", "--tpm-dir", dir + "/tpm", "--dry-run",
                    "--event-log", log, "--boot-dir", "Vectors/example/boot"]
            + LogPredictionTests.entryArgs + LogPredictionTests.embedded
        return (args, log, pcrs13)
    }

    /// seal's refusals name no --force (it takes none): a policy other than the one the log
    /// shows, and a log the PCRs do not replay. predict, which takes --force, still names it.
    @Test func sealRefusalsOfferNoForce() throws {
        let dir = try tempDir()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let (args, log, pcrs13) = try Self.sealInputs(dir)
        // tboot's default DA policy with "any module" sent to PCR19: not the boot's routing.
        try write(Hex.decode(SealTests.policyPCR19)!, to: dir + "/pcr19.pol")
        let policy = try aemPCR(args + ["--pcrs", pcrs13, "--policy", dir + "/pcr19.pol"])
        #expect(MessageTests.oneLine(policy) && policy.stderr.contains("--policy FILE") && !policy.stderr.contains("--force")
                && policy.stderr.contains("anti-evil-maid-seal"), "\(policy.stderr)")
        let predict = try aemPCR(["predict", "--event-log", log, "--pcrs", pcrs13, "--policy", dir + "/pcr19.pol",
                                  "--boot-dir", "Vectors/example/boot"] + LogPredictionTests.entryArgs + LogPredictionTests.embedded)
        #expect(predict.status == 2 && predict.stderr.contains("--force"), "\(predict.stderr)")
        // PCR17 and 18 that the log does not replay to (python3 wrote the values).
        let py = try run("/usr/bin/env", ["python3", "-c", """
            import sys
            print("sha1:"); [print("  %d: 0x%s" % (p, "11" * 20)) for p in (17, 18, 19)]
            print("sha256:"); [print("  %d: 0x%s" % (p, "22" * 32)) for p in (13, 17, 18, 19)]
            """])
        try py.stdout.write(toFile: dir + "/other.yaml", atomically: true, encoding: .utf8)
        let other = try aemPCR(args + ["--pcrs", dir + "/other.yaml"])
        #expect(MessageTests.oneLine(other) && other.stderr.contains("does not verify") && !other.stderr.contains("--force"), "\(other.stderr)")
        let predictOther = try aemPCR(["predict", "--event-log", log, "--pcrs", dir + "/other.yaml",
                                       "--boot-dir", "Vectors/example/boot"] + LogPredictionTests.entryArgs + LogPredictionTests.embedded)
        #expect(predictOther.status == 2 && predictOther.stderr.contains("--force"), "\(predictOther.stderr)")
    }

    /// A dry run exits 0 whenever it prints the plan, refusals included (the manual): the
    /// synthetic boot ran tboot's default policy, so PCR19 would be all 00; and 2 when no plan
    /// can be made (no secret to seal).
    @Test func dryRunExitsZeroWithItsRefusals() throws {
        let dir = try tempDir()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let (args, _, pcrs13) = try Self.sealInputs(dir)
        let r = try aemPCR(args + ["--pcrs", pcrs13])
        #expect(r.status == 0 && r.stdout.hasPrefix("Would NOT seal") && flat(r.stdout).contains("Refused: PCR19") && r.stderr.isEmpty,
                "\(r.stdout)\(r.stderr)")
        // nothing would be sealed: no reboot to check, so no check-boot command, but the way on
        #expect(!r.stdout.contains("check-boot") && flat(r.stdout).contains("run the same command without --dry-run before rebooting"), "\(r.stdout)")
        let json = try aemPCR(args + ["--pcrs", pcrs13, "--json"])
        #expect(json.status == 0 && json.stdout.contains("\"would_refuse\": [\n"), "\(json.stdout)")
        try FileManager.default.removeItem(atPath: dir + "/aem/aem/secret.txt")
        let none = try aemPCR(args + ["--pcrs", pcrs13])
        #expect(MessageTests.oneLine(none) && none.stdout.isEmpty, "\(none.stdout)\(none.stderr)")
        #expect(!FileManager.default.fileExists(atPath: dir + "/tpm"))
    }

    /// `read` without a reachable TPM names the ways around it.
    @Test func readNamesTheWayOut() throws {
        let dir = try tempDir()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let r = try aemPCR(["read", "--tcti", "swtpm:path=" + dir + "/no-such-socket"])
        #expect(MessageTests.oneLine(r) && r.stderr.contains("check --tcti") && r.stderr.contains("--tpm12-pcrs FILE")
                && r.stderr.contains("--pcrs FILE"), "\(r.stderr)")
        let env = ProcessInfo.processInfo.environment
        let noTPM = !FileManager.default.fileExists(atPath: "/sys/class/tpm/tpm0") && !FileManager.default.fileExists(atPath: "/dev/tpm0")
            && (env["TPM2TOOLS_TCTI"] ?? "").isEmpty && (env["TCTI"] ?? "").isEmpty
        if noTPM {
            let none = try aemPCR(["read"])
            #expect(MessageTests.oneLine(none) && none.stderr.contains("shows no TPM") && none.stderr.contains("--tcti TCTI")
                    && none.stderr.contains("--tpm12-pcrs FILE") && none.stderr.contains("--pcrs FILE"), "\(none.stderr)")
        }
    }

    /// A file of the entry missing under --boot-dir: the grub.cfg line, the path as GRUB names
    /// it and where it resolved; a --replace stands in for a missing file.
    @Test func missingEntryFileSaysWhereItsPathCameFrom() throws {
        let dir = try tempDir()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let base = ["predict", "--tpm", "2.0"] + LogPredictionTests.entryArgs
        let r = try aemPCR(base + ["--boot-dir", dir])
        #expect(MessageTests.oneLine(r) && r.stderr.contains("Vectors/example/grub.cfg:131: /tboot.gz, resolved under --boot-dir \(dir), is \(dir)/tboot.gz: no such file"), "\(r.stderr)")
        let replaced = try aemPCR(base + ["--boot-dir", dir, "--replace", "tboot=Vectors/example/boot/tboot.gz"])
        #expect(MessageTests.oneLine(replaced) && replaced.stderr.contains("grub.cfg:138: /xen-4.17.5.gz, resolved under --boot-dir"), "\(replaced.stderr)")
        if !FileManager.default.fileExists(atPath: "/boot/xen-4.17.5.gz") && FileManager.default.fileExists(atPath: "/boot/tboot.gz") {
            let d = try aemPCR(base)
            #expect(MessageTests.oneLine(d) && d.stderr.contains("/xen-4.17.5.gz, resolved under --boot-dir /boot (the default), is /boot/xen-4.17.5.gz"), "\(d.stderr)")
        }
    }

    /// The manual's `diff` takes predict's options except those it names (and its own, described
    /// in its paragraph): the CLI agrees.
    @Test func diffsOptionsAreAsTheManualSays() throws {
        let page = try readText("man/aem-pcr.8")
        let start = try #require(page.range(of: "\n.It Cm diff\n"))
        let end = try #require(page.range(of: "it always compares with the current log", range: start.upperBound..<page.endIndex))
        let text = page[start.upperBound..<end.lowerBound]
        let except = try #require(text.range(of: "except\n"))
        let named = Set(text[except.upperBound...].split(separator: "\n").filter { $0.hasPrefix(".Fl ") }
            .map { "-" + $0.dropFirst(4).split(separator: " ")[0] })
        let cli = try ManualTests.cliOptions()
        #expect(named == cli["predict"]!.subtracting(cli["diff"]!), "manual: \(named.sorted())")
        // diff's own options (not predict's) are described in its paragraph
        let paragraph = try #require(page.range(of: "\n.It Cm verify\n", range: start.upperBound..<page.endIndex))
        for o in cli["diff"]!.subtracting(cli["predict"]!) {
            #expect(page[start.upperBound..<paragraph.lowerBound].contains("Fl " + o.dropFirst()), "diff's \(o)")
        }
    }

    /// README's commands for trying the example logs by hand run as printed, without a TPM,
    /// and leave nothing behind.
    @Test func readmesByHandExampleRuns() throws {
        let block = try #require(ReadmeTests.shellBlocks().first { $0.contains("log=Vectors/example/drtm-tpm12.log") })
        let tmp = try tempDir()
        defer { try? FileManager.default.removeItem(atPath: tmp) }
        let r = try run("/bin/bash", ["-euo", "pipefail", "-c", block.replacingOccurrences(of: ".build/debug/aem-pcr", with: Repo.binary)],
                        cwd: Repo.root, env: ["TMPDIR": tmp])
        #expect(r.status == 0 && r.stdout.contains("PCR19  module 2") && r.stdout.contains("PCR19 sha1    CHANGES"), "\(r.stdout)\(r.stderr)")
        #expect(try FileManager.default.contentsOfDirectory(atPath: tmp).isEmpty)
    }

    /// No file of the repository cites the project's design notes, which it does not ship.
    @Test func noFileCitesTheUnshippedSpec() throws {
        let files = try run("/usr/bin/env", ["git", "-C", Repo.root, "ls-files"])
        try #require(files.status == 0, "\(files.stderr)")
        let needle = "SPEC" + ".md"
        for f in files.stdout.split(separator: "\n") {
            guard let data = FileManager.default.contents(atPath: Repo.path(String(f))) else { continue }
            #expect(!String(decoding: data, as: UTF8.self).contains(needle), "\(f) cites \(needle), which is not in the repository")
        }
    }
}
