// SPDX-License-Identifier: Apache-2.0
import Foundation
import Testing
@testable import AEMPCR
import AEMPCRSeal

/// TrenchBoot Secure Launch logs (issue 24): the two logs of real v0.5.3-rc1 launches (QEMU's
/// emulated SKINIT on swtpm, Vectors/logs/trenchboot) with the PCR values tpm2_pcrread gave in
/// those boots, and logs written by Tests/Scripts/trenchboot-log.py as the loaders' code writes
/// them, replayed on swtpm by the same script.
@Suite struct TrenchBootTests {
    static let xenLog = "Vectors/logs/trenchboot/drtm-tests-xen-v0.5.3-rc1.bin"
    static let linuxLog = "Vectors/logs/trenchboot/drtm-tests-linux-v0.5.3-rc1.bin"
    /// tpm2_pcrread's values in the boots that left these logs (drtm-tests tests/test_eventlog.py).
    static let xenPCRs = """
          sha1:
            17: 0x0318A2C7CC558C5D9DD6F4D5ACF751C2A2DCEC01
            18: 0x1D770AD1285CB8F85DCB4DD03E4CDFB4C301A30E
          sha256:
            17: 0xE17D42476DF9D13CD73119CBD30D14795BDF8304C6A1F85E7C1ECA554E07C055
            18: 0x3E282D7905A8CAFF55B6537B255E16DC3B3CEDE1048481EA67D267BEA7B3608E

        """
    static let linuxPCRs = """
          sha1:
            17: 0xA8C09473C7A5F90A84098E779F276333CDBF661A
            18: 0x153DE987125E37F9CD9E7A61791222F65EE7036B
          sha256:
            17: 0x67BE67686D82DA37B760991194FFF2CCA163A4BAD507B37927AE1742545AAFE1
            18: 0x8790E9BCCAEBFE038E13173CFB2D3B8F41434643669055978EC2E210DA724A38

        """

    static func generate(_ args: [String]) throws -> ProcessResult {
        let r = try run("/usr/bin/env", ["python3", Repo.path("Tests/Scripts/trenchboot-log.py")] + args)
        #expect(r.status == 0, "trenchboot-log.py: \(r.stderr)")
        return r
    }

    @Test func realLaunchLogsAreNamedAndTheLaunchRecognised() throws {
        let xen = try aemPCR(["log", "show", Repo.path(Self.xenLog)])
        #expect(xen.status == 0, "\(xen.stderr)")
        let x = flat(xen.stdout)
        #expect(x.contains("launch TrenchBoot on AMD SKINIT (Xen through EFI), PCRs 17, 18"))
        #expect(x.contains("from event 0: the first measurement is the secure-kernel-loader's \"SKINIT\""))
        #expect(x.contains("0 PCR17 0x502 SLAUNCH (byte 89)"))
        for text in ["SKINIT", "DLME entry offset", "DLME", "Xen's command line", "MB module string", "MB module"] {
            #expect(x.contains("bytes: \"\(text)\""), "\(text)")
        }
        #expect(!x.contains("note:"), "a clean two-bank log has no notes")
        let linux = try aemPCR(["log", "show", Repo.path(Self.linuxLog)])
        let l = flat(linux.stdout)
        #expect(l.contains("launch TrenchBoot on AMD SKINIT (Linux Secure Launch), PCRs 17, 18"))
        #expect(l.contains("note: events 3, 7 are EV_NO_ACTION records on PCR17 (Linux Secure Launch's tags"))
        #expect(l.contains("bytes: \"Measured Kernel command line\""))
    }

    @Test func showAndReplayJSONCarryTheLaunchAndTheText() throws {
        let show = try aemPCR(["log", "show", "--json", Repo.path(Self.linuxLog)])
        #expect(show.status == 0, "\(show.stderr)")
        let o = try JSONSerialization.jsonObject(with: Data(show.stdout.utf8)) as! [String: Any]
        let launch = o["launch"] as! [String: Any]
        #expect(launch["kind"] as? String == "trenchboot-amd-skinit")
        #expect(launch["target"] as? String == "linux")
        #expect(launch["pcrs"] as? [Int] == [17, 18])
        #expect((launch["notes"] as! [[String: Any]]).map { $0["code"] as! String } == ["no-action-tags"])
        let events = o["events"] as! [[String: Any]]
        #expect(events[0]["type_name"] as? String == "SLAUNCH")
        #expect(events[0]["data_text"] as? String == "SKINIT")
        #expect(events[3]["data_text"] is NSNull)
        let replay = try aemPCR(["log", "replay", "--json", Repo.path(Self.xenLog)])
        #expect(replay.status == 0, "\(replay.stderr)")
        // The replay is what tpm2_pcrread read in the launch.
        let pcrs = try jsonPCRs(replay.stdout)
        let real = pcrreadValues(Self.xenPCRs)
        #expect(pcrs == real)
        if try SchemaTests.haveJSONSchema() {
            try SchemaTests().expectFollowsSchema("log-show", show.stdout, "TrenchBoot Linux log")
            try SchemaTests().expectFollowsSchema("log-replay", replay.stdout, "TrenchBoot Xen log")
        }
    }

    @Test func realLaunchLogsVerifyAgainstTheirPCRsAndAChangedPCRIsNamed() throws {
        let dir = try tempDir()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        for (log, pcrs) in [(Self.xenLog, Self.xenPCRs), (Self.linuxLog, Self.linuxPCRs)] {
            try pcrs.write(toFile: dir + "/pcrs.yaml", atomically: true, encoding: .utf8)
            let ok = try aemPCR(["verify", "--event-log", Repo.path(log), "--pcrs", dir + "/pcrs.yaml"])
            #expect(ok.status == 0, "\(log): \(ok.stdout) \(ok.stderr)")
            #expect(ok.stdout.hasPrefix("Verified"))
            #expect(flat(ok.stdout).contains("launch TrenchBoot on AMD SKINIT"))
            // PCR18 of another boot: refused, naming the PCR.
            let lines = pcrs.split(separator: "\n", omittingEmptySubsequences: false)
            let changed = lines.map { $0.hasPrefix("    18: 0x3E28") || $0.hasPrefix("    18: 0x8790")
                ? "    18: 0x" + String(repeating: "AB", count: 32) : String($0) }.joined(separator: "\n")
            try changed.write(toFile: dir + "/other.yaml", atomically: true, encoding: .utf8)
            let no = try aemPCR(["verify", "--event-log", Repo.path(log), "--pcrs", dir + "/other.yaml"])
            #expect(no.status == 1, "\(no.stdout) \(no.stderr)")
            #expect(no.stdout.contains("PCR18 sha256  DIFFERS"))
            #expect(no.stdout.contains("PCR17 sha256  match"))
        }
    }

    @Test(.needsSoftwareTPM, arguments: ["amd-efi", "amd-mb2", "intel-mb2"])
    func generatedLaunchVerifiesOnSwtpmAndAnExtraExtendIsNamed(scenario: String) throws {
        guard let tpm = try SwTPM2.start() else { return }
        let log = tpm.dir + "/\(scenario).log"
        try Self.generate(["--scenario", scenario, "--log", log, "--server", tpm.socket, "--ctrl", tpm.control])
        let ok = try aemPCR(["verify", "--event-log", log, "--tcti", tpm.tcti])
        #expect(ok.status == 0, "\(ok.stdout) \(ok.stderr)")
        let kind = scenario == "intel-mb2" ? "TrenchBoot on Intel TXT" : "TrenchBoot on AMD SKINIT"
        let target = scenario == "amd-efi" ? "(Xen through EFI)" : "(Xen through Multiboot2)"
        #expect(flat(ok.stdout).contains("launch \(kind) \(target), PCRs 17, 18"), "\(ok.stdout)")
        // The swtpm's PCRs are what python's own replay of the records gives.
        let replayed = pcrreadValues(try Self.generate(["--scenario", scenario, "--log", tpm.dir + "/x.log", "--print-pcrs"]).stdout)
        #expect(pcrreadValues(try tpm.pcrread("sha1:17,18+sha256:17,18")) == replayed)
        // The live way: Xen's console text names the range, the log is read from memory and
        // checked against the TPM itself.
        let live = try SwTPM2.start()!
        try Self.generate(["--scenario", scenario, "--log", live.dir + "/l.log", "--server", live.socket, "--ctrl", live.control,
                           "--mem-image", live.dir + "/mem", "--dmesg", live.dir + "/dmesg.txt", "--dmesg-style", "2026"])
        let fromXen = try aemPCR(["verify", "--xen-dmesg", live.dir + "/dmesg.txt", "--mem", live.dir + "/mem", "--tcti", live.tcti, "--json"])
        #expect(fromXen.status == 0, "\(fromXen.stdout) \(fromXen.stderr)")
        if try SchemaTests.haveJSONSchema() { try SchemaTests().expectFollowsSchema("verify", fromXen.stdout, scenario) }
        // The same launch with one PCR18 extend the log does not record.
        let tpm2 = try SwTPM2.start()!
        let bad = tpm2.dir + "/bad.log"
        try Self.generate(["--scenario", scenario, "--log", bad, "--server", tpm2.socket, "--ctrl", tpm2.control, "--extra-extend", "18"])
        let no = try aemPCR(["verify", "--event-log", bad, "--tcti", tpm2.tcti])
        #expect(no.status == 1, "\(no.stdout) \(no.stderr)")
        #expect(no.stdout.contains("PCR18 sha256  DIFFERS"))
        #expect(no.stdout.contains("PCR17 sha256  match"))
    }

    @Test(arguments: ["2024", "2026"])
    func xenConsoleRangeIsReadFromMemoryAndDumped(style: String) throws {
        let dir = try tempDir()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let pcrs = try Self.generate(["--scenario", "amd-mb2", "--log", dir + "/log.bin", "--mem-image", dir + "/mem",
                                      "--dmesg", dir + "/dmesg.txt", "--dmesg-style", style, "--print-pcrs"]).stdout
        try pcrs.write(toFile: dir + "/pcrs.yaml", atomically: true, encoding: .utf8)
        let dmesg = try String(contentsOfFile: dir + "/dmesg.txt", encoding: .utf8)
        #expect(dmesg.contains(style == "2024" ? "(0x7e9f5000 - 0x7e9fd000)" : "[0x7e9f5000, 0x7e9fd000)"))
        let dump = try aemPCR(["log", "dump", "--xen-dmesg", dir + "/dmesg.txt", "--mem", dir + "/mem", "-o", dir + "/out.bin"])
        #expect(dump.status == 0, "\(dump.stderr)")
        #expect(flat(dump.stdout).contains("TrenchBoot on AMD SKINIT (Xen through Multiboot2)"))
        #expect(try Data(contentsOf: URL(fileURLWithPath: dir + "/out.bin")) == Data(contentsOf: URL(fileURLWithPath: dir + "/log.bin")))
        let v = try aemPCR(["verify", "--xen-dmesg", dir + "/dmesg.txt", "--mem", dir + "/mem", "--pcrs", dir + "/pcrs.yaml"])
        #expect(v.status == 0, "\(v.stdout) \(v.stderr)")
        #expect(flat(v.stdout).contains("dmesg.txt line 3"))
    }

    @Test func xenConsoleWithoutTheLineOrWithABadOneIsOneError() throws {
        let dir = try tempDir()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try "(XEN) Xen version 4.19\n(XEN) Brought up 2 CPUs\n".write(toFile: dir + "/none.txt", atomically: true, encoding: .utf8)
        try "(XEN) SLAUNCH: reserving event log (0x7e9f5000 0x7e9fd000)\n".write(toFile: dir + "/bad.txt", atomically: true, encoding: .utf8)
        try write([0], to: dir + "/mem")
        for (file, code, text) in [("none.txt", "slaunch-no-log-range", "no \"SLAUNCH: reserving event log\" line"),
                                   ("bad.txt", "slaunch-log-range-bad", "bad.txt:1: the \"SLAUNCH: reserving event log\" line does not give a range")] {
            let r = try aemPCR(["log", "dump", "--xen-dmesg", dir + "/" + file, "--mem", dir + "/mem", "-o", dir + "/out.bin"])
            #expect(r.status == 2, "\(r.stdout) \(r.stderr)")
            #expect(r.stderr.split(separator: "\n").count == 1, "\(r.stderr)")
            #expect(flat(r.stderr).contains(text), "\(r.stderr)")
            let v = try aemPCR(["log", "dump", "-v", "--xen-dmesg", dir + "/" + file, "--mem", dir + "/mem", "-o", dir + "/out.bin"])
            #expect(v.stderr.contains("error code: " + code), "\(v.stderr)")
            #expect(!FileManager.default.fileExists(atPath: dir + "/out.bin"))
        }
        // Library: both range formats, the last line wins, the end must follow the start.
        let two = "(XEN) SLAUNCH: reserving event log (0x1000 - 0x2000)\n(XEN) SLAUNCH: reserving event log [0x3000, 0x5000)\n"
        #expect(try SecureLaunchLog.xenRange(in: two, source: "t") == .init(start: 0x3000, end: 0x5000, line: 2))
        #expect(throws: CodedError.self) { try SecureLaunchLog.xenRange(in: "SLAUNCH: reserving event log [0x3000, 0x2000)", source: "t") }
        #expect(throws: CodedError.self) { try SecureLaunchLog.xenRange(in: "SLAUNCH: reserving event log (0x3000, 0x5000)", source: "t") }
    }

    /// A patched SKL declaring the TPM's one bank (SHA-256) still writes its fixed SHA-1 +
    /// SHA-256 records (`ev_log_hash_t`), while Xen writes the header's one bank.
    @Test(.needsSoftwareTPM) func oneBankHeaderWithTwoBankRecordsIsANoteNotAnError() throws {
        guard let tpm = try SwTPM2.start() else { return }
        let log = tpm.dir + "/one-bank.log"
        try Self.generate(["--scenario", "amd-efi", "--header-banks", "sha256", "--log", log, "--server", tpm.socket, "--ctrl", tpm.control])
        let show = try aemPCR(["log", "show", log])
        #expect(show.status == 0, "\(show.stderr)")
        #expect(flat(show.stdout).contains("note: events 0, 1, 2 carry a sha1 digest the log header does not declare (it declares sha256)"))
        let v = try aemPCR(["verify", "--event-log", log, "--tcti", tpm.tcti])
        #expect(v.status == 0, "\(v.stdout) \(v.stderr)")
        #expect(!v.stdout.contains("PCR17 sha1"), "the undeclared bank is not verified")
        // Other records still may not carry digests the header did not declare: the SKINIT
        // record (after the 85-byte one-bank header) made a tboot record is refused.
        var bytes = Array(try Data(contentsOf: URL(fileURLWithPath: log)))
        #expect(bytes[85 + 4] == 0x02 && bytes[85 + 5] == 0x05)
        bytes[85 + 4] = 0x01  // 0x502 → 0x501: no longer a Secure Launch record
        #expect(throws: CodedError.self) { try DRTMEventLog.parse(bytes: bytes) }
    }

    @Test func placeholderDigestsAndBanksMissingFromRecordsAreNotes() throws {
        let dir = try tempDir()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try Self.generate(["--scenario", "amd-efi", "--header-banks", "sha1,sha256,sha384", "--log", dir + "/log.bin"])
        let r = try aemPCR(["log", "show", "--json", dir + "/log.bin"])
        #expect(r.status == 0, "\(r.stderr)")
        let o = try JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as! [String: Any]
        let notes = ((o["launch"] as! [String: Any])["notes"] as! [[String: Any]])
        #expect(notes.map { $0["code"] as! String } == ["bank-missing-from-records", "placeholder-digest"])
        #expect(notes[0]["events"] as? [Int] == [0, 1, 2])
        #expect(notes[1]["events"] as? [Int] == [3, 4, 5, 6, 7, 8])
        #expect((notes[1]["message"] as! String).contains("bank sha384 of PCR17, PCR18 records no measurement"))
    }

    @Test func pspCapAndAllFFAreExplained() throws {
        let dir = try tempDir()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        // SHA-256(32 zero bytes || 32 FF bytes), computed by python3, not by aem-pcr.
        let cap = try run("/usr/bin/env", ["python3", "-c", "import hashlib;print(hashlib.sha256(bytes(32)+b'\\xff'*32).hexdigest())"])
            .stdout.trimmingCharacters(in: .whitespacesAndNewlines)
        #expect(cap == "bba91ca85dc914b2ec3efb9e16e7267bf9193b14350d20fba8a8b406730ae30a")
        let capped = Self.xenPCRs.replacingOccurrences(of: "0x3E282D7905A8CAFF55B6537B255E16DC3B3CEDE1048481EA67D267BEA7B3608E", with: "0x" + cap)
        try capped.write(toFile: dir + "/capped.yaml", atomically: true, encoding: .utf8)
        let r = try aemPCR(["verify", "--event-log", Repo.path(Self.xenLog), "--pcrs", dir + "/capped.yaml"])
        #expect(r.status == 1, "\(r.stdout) \(r.stderr)")
        #expect(flat(r.stdout).contains("PCR18 sha256 DIFFERS: PCR18 reads the cap the AMD PSP's DRTM service leaves"))
        #expect(flat(r.stdout).contains("note: sha256: PCR18 reads the cap"))
        // No launch at all: PCR17 and PCR18 all FF.
        let ff = "  sha256:\n    17: 0x" + String(repeating: "FF", count: 32) + "\n    18: 0x" + String(repeating: "FF", count: 32) + "\n"
        try ff.write(toFile: dir + "/ff.yaml", atomically: true, encoding: .utf8)
        let none = try aemPCR(["verify", "--event-log", Repo.path(Self.xenLog), "--pcrs", dir + "/ff.yaml"])
        #expect(none.status == 2)
        #expect(flat(none.stderr).contains("PCR17 sha256 reads all FF: no measured launch happened"))
    }

    @Test func recogniseTellsTbootAndIntelTrenchBootApart() throws {
        // tboot: SINIT's records, then tboot's 0x501.
        let sha = { (s: String) in MultiHasher.hash(.sha256, Array(s.utf8)) }
        let tboot = DRTMEventLog(format: .tpm20TCG, banks: [.sha256], events: [
            DRTMEvent(pcr: 17, type: .hashStart, digests: [sha("a")]),
            DRTMEvent(pcr: 17, type: .tbootMeasurement, digests: [sha("b")]),
        ], source: "t")
        let l = DRTMLaunch.recognise(tboot)
        #expect(l.kind == .tboot && l.target == nil && l.evidence.map(\.eventIndex) == [0, 1])
        let intel = DRTMEventLog(format: .tpm20TCG, banks: [.sha256], events: [
            DRTMEvent(pcr: 17, type: .hashStart, digests: [sha("a")]),
            DRTMEvent(pcr: 18, type: .secureLaunch, digests: [sha("b")]),
            DRTMEvent(pcr: 18, type: .secureLaunch, digests: [sha("c")]),
        ], source: "t")
        let i = DRTMLaunch.recognise(intel)
        #expect(i.kind == .trenchBootIntel && i.target == .xenMultiboot2 && i.pcrs == [17, 18])
        #expect(DRTMLaunch.recognise(DRTMEventLog(format: .tpm20TCG, banks: [.sha256], events: [], source: "t")).kind == .unknown)
    }

    /// The real launch against a tboot entry (Vectors/example): predict and diff say per PCR
    /// why it cannot be predicted, naming the records; seal refuses naming each sealed PCR.
    @Test func predictDiffAndSealStateEachPCROfARealLaunch() throws {
        let dir = try tempDir()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try Self.xenPCRs.write(toFile: dir + "/pcrs.yaml", atomically: true, encoding: .utf8)
        let common = ["--event-log", Repo.path(Self.xenLog), "--pcrs", dir + "/pcrs.yaml", "--grub-cfg", Repo.path("Vectors/example/grub.cfg"),
                      "--boot-dir", Repo.path("Vectors/example/boot"), "--entry", "0"]
        for command in ["predict", "diff"] {
            let r = try aemPCR([command] + common)
            #expect(r.status == 0, "\(command): \(r.stdout) \(r.stderr)")
            let t = flat(r.stdout)
            #expect(t.contains("launch TrenchBoot on AMD SKINIT (Xen through EFI), PCRs 17, 18"))
            #expect(t.contains("PCR17 NOT PREDICTED") && t.contains("PCR18 NOT PREDICTED"), "\(r.stdout)")
            #expect(t.contains("PCR17 cannot be predicted: event 0 \"SKINIT\": SKINIT's hash of the SKL image's first bytes"))
            #expect(t.contains("event 2 \"DLME\": the kernel as GRUB laid it out in memory"))
            #expect(t.contains("PCR18 cannot be predicted: event 4 \"Xen's command line\": the entry's Xen command line 'placeholder logging=memory,serial' hashes to sha1"))
            #expect(t.contains("event 5 \"MB module string\""))
            let j = try aemPCR([command, "--json"] + common)
            #expect(j.status == 0, "\(j.stderr)")
            let o = (try JSONSerialization.jsonObject(with: Data(j.stdout.utf8)) as! [String: Any])["secure_launch"] as! [String: Any]
            #expect(o["verified"] as? Bool == true)
            let pcrs = o["pcrs"] as! [[String: Any]]
            #expect(pcrs.map { $0["pcr"] as! Int } == [17, 18] && pcrs.allSatisfy { $0["predicted"] as? Bool == false && $0["values"] is NSNull })
            let checks = (pcrs[1]["records"] as! [[String: Any]]).map { "\($0["event"]!):\($0["check"]!)" }
            #expect(checks == ["3:constant", "4:differs", "5:differs"])
            #expect(((pcrs[1]["current"] as! [String: String])["sha256"]) == "3e282d7905a8caff55b6537b255e16dc3b3cede1048481ea67d267bea7b3608e")
            if try SchemaTests.haveJSONSchema() { try SchemaTests().expectFollowsSchema(command, j.stdout, "TrenchBoot") }
        }
        try "srk\n".write(toFile: dir + "/srk", atomically: true, encoding: .utf8)
        let seal = ["seal", "--dry-run", "--label", "aem", "--aem-dir", dir + "/aem", "--tpm-dir", dir + "/tpm",
                    "--srk-password-file", dir + "/srk", "--aem-conf", dir + "/none.conf"]
        let r = try aemPCR(seal + common)
        #expect(r.status == 2, "\(r.stdout) \(r.stderr)")
        #expect(r.stderr.split(separator: "\n").count == 1, "\(r.stderr)")
        #expect(r.stderr.contains("TrenchBoot on AMD SKINIT (Xen through EFI): AEM seals PCRs 13, 17, 18; PCR13 is not predicted for a TrenchBoot boot"))
        #expect(r.stderr.contains("; PCR17 cannot be predicted: event 0 \"SKINIT\", event 1 \"DLME entry offset\", event 2 \"DLME\" cannot be computed from files; "
            + "event 6 \"MB module\" differs from the entry's; the entry loads 4 modules the log did not measure;"))
        #expect(r.stderr.contains("; PCR18 cannot be predicted: event 4 \"Xen's command line\", event 5 \"MB module string\" differ from the entry's ("))
        #expect(r.stderr.hasSuffix("; nothing is sealed\n"))
        #expect(r.stdout.isEmpty)
        #expect(!FileManager.default.fileExists(atPath: dir + "/aem"))
    }

    /// A launch whose inputs are known (trenchboot-log.py's amd-efi) and an entry loading the
    /// same files and strings: PCR18 is copied forward, to the value python3 replays; PCR17
    /// is not (Xen as laid out in memory). A changed Xen command line or initramfs is named.
    @Test func pcr18IsCopiedForwardOnlyWhileItsInputsStayTheSame() throws {
        let dir = try tempDir()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let pcrs = try Self.generate(["--scenario", "amd-efi", "--log", dir + "/log.bin", "--print-pcrs"]).stdout
        try pcrs.write(toFile: dir + "/pcrs.yaml", atomically: true, encoding: .utf8)
        try FileManager.default.createDirectory(atPath: dir + "/boot", withIntermediateDirectories: true)
        // The generator's module bytes; its module strings carry the module's name first, so
        // the entry repeats it.
        try write(Array(String(repeating: "synthetic dom0 kernel", count: 8192).utf8), to: dir + "/boot/vmlinuz-6.6")
        try write(Array(String(repeating: "synthetic initramfs", count: 16384).utf8), to: dir + "/boot/initramfs-6.6.img")
        try write(Array("xen".utf8), to: dir + "/boot/xen.gz")
        func entry(_ xen: String) -> String {
            """
            menuentry 'AEM Qubes (TrenchBoot)' {
            \tslaunch skinit
            \tslaunch_module /skl.bin
            \tmultiboot2 /xen.gz \(xen)
            \tmodule2 /vmlinuz-6.6 vmlinuz-6.6 placeholder root=/dev/mapper/qubes_dom0-root ro
            \tmodule2 /initramfs-6.6.img initramfs-6.6.img
            }

            """
        }
        let xen = "placeholder console=none dom0_mem=min:1024M dom0_mem=max:4096M ucode=scan"
        try entry(xen).write(toFile: dir + "/grub.cfg", atomically: true, encoding: .utf8)
        let args = ["--event-log", dir + "/log.bin", "--pcrs", dir + "/pcrs.yaml", "--grub-cfg", dir + "/grub.cfg",
                    "--boot-dir", dir + "/boot", "--entry", "0", "--json"]
        func statements() throws -> [[String: Any]] {
            let r = try aemPCR(["predict"] + args)
            #expect(r.status == 0, "\(r.stderr)")
            if try SchemaTests.haveJSONSchema() { try SchemaTests().expectFollowsSchema("predict", r.stdout, "TrenchBoot") }
            return ((try JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as! [String: Any])["secure_launch"] as! [String: Any])["pcrs"] as! [[String: Any]]
        }
        var s = try statements()
        #expect(s[0]["predicted"] as? Bool == false)
        #expect(s[1]["predicted"] as? Bool == true, "\(s[1])")
        let expected = pcrreadValues(pcrs)
        #expect((s[1]["values"] as! [String: String]) == ["sha1": expected["sha1"]![18]!.lowercased(), "sha256": expected["sha256"]![18]!.lowercased()])
        #expect((s[1]["reason"] as! String).hasPrefix("copied forward from the current log: nothing that feeds it changes (event 3 constant, event 4 \"Xen's command line\" unchanged"))
        #expect((s[0]["records"] as! [[String: Any]]).map { $0["check"] as! String } == ["unchecked", "unchecked", "unchecked", "same", "same"])
        // Another Xen command line: PCR18 no longer.
        try entry(xen + " smt=off").write(toFile: dir + "/grub.cfg", atomically: true, encoding: .utf8)
        s = try statements()
        #expect(s[1]["predicted"] as? Bool == false)
        #expect((s[1]["reason"] as! String).hasPrefix("cannot be predicted: event 4 \"Xen's command line\": the entry's Xen command line '\(xen) smt=off' hashes to sha1 "))
        // Another initramfs: PCR17 names its record too; PCR18 is copied again.
        try entry(xen).write(toFile: dir + "/grub.cfg", atomically: true, encoding: .utf8)
        try write(Array("another initramfs".utf8), to: dir + "/boot/initramfs-6.6.img")
        s = try statements()
        #expect(s[1]["predicted"] as? Bool == true)
        #expect((s[0]["reason"] as! String).contains("event 8 \"MB module\": module 1 (\(dir)/boot/initramfs-6.6.img, as GRUB loads it) hashes to sha1 "))
        // Seal names PCR17 with that reason and leaves PCR18 out of the refusal.
        try "srk\n".write(toFile: dir + "/srk", atomically: true, encoding: .utf8)
        try "SEAL=\"--pcr 17 --pcr 18\"\n".write(toFile: dir + "/aem.conf", atomically: true, encoding: .utf8)
        let r = try aemPCR(["seal", "--dry-run", "--label", "aem", "--aem-dir", dir + "/aem", "--tpm-dir", dir + "/tpm",
                            "--srk-password-file", dir + "/srk", "--tpm", "2.0", "--aem-conf", dir + "/aem.conf"] + args.dropLast())
        #expect(r.status == 2, "\(r.stdout) \(r.stderr)")
        #expect(r.stderr.contains("AEM seals PCRs 17, 18; PCR17 cannot be predicted: ") && r.stderr.contains("event 8 \"MB module\""))
        #expect(!r.stderr.contains("PCR18 cannot"))
    }

    @Test func assessCopiesAPCRForwardOnlyWhenNothingFeedingItChanges() throws {
        let dir = try tempDir()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try Self.generate(["--scenario", "amd-mb2", "--log", dir + "/mb2.bin"])
        let mb2 = try DRTMEventLog.parse(path: dir + "/mb2.bin")
        let same = SecureLaunchPrediction.assess(mb2, changed: [])
        #expect(same.map(\.pcr) == [17, 18] && same.allSatisfy(\.predictable))
        // A new initramfs (module 1): PCR17 measures it, PCR18's Multiboot2 block holds its size.
        let module = SecureLaunchPrediction.assess(mb2, changed: [.module(1)])
        #expect(!module[0].predictable && module[0].reason.contains("event 6 \"Measured MB2 module\" (the hash of module 1 as loaded) changes"))
        #expect(!module[1].predictable && module[1].reason.contains("the Multiboot2 information block") && module[1].reason.contains("cannot be computed from files"))
        // Xen through EFI: a new Xen command line leaves PCR17 alone.
        let efi = try DRTMEventLog.parse(path: Repo.path(Self.xenLog))
        let cmdline = SecureLaunchPrediction.assess(efi, changed: [.kernelCommandLine])
        #expect(cmdline[0].predictable && !cmdline[1].predictable)
        #expect(cmdline[1].reason.contains("event 4 \"Xen's command line\""))
        // The SLRT platform entry is constant: it never stops a copy.
        #expect(SecureLaunchPrediction.sources(efi).first { $0.eventIndex == 3 }?.input == .constant)
    }

    @Test func linuxSecurityfsLogIsDumpedAsRead() throws {
        let dir = try tempDir()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let r = try aemPCR(["log", "dump", "--slaunch-eventlog", Repo.path(Self.linuxLog), "-o", dir + "/out.bin"])
        #expect(r.status == 0, "\(r.stderr)")
        #expect(flat(r.stdout).contains("TrenchBoot on AMD SKINIT (Linux Secure Launch)"))
        #expect(try Data(contentsOf: URL(fileURLWithPath: dir + "/out.bin")) == Data(contentsOf: URL(fileURLWithPath: Repo.path(Self.linuxLog))))
        let both = try aemPCR(["log", "dump", "--slaunch-eventlog", Repo.path(Self.linuxLog), "--xen-dmesg", "x", "-o", dir + "/o2.bin"])
        #expect(both.status != 0 && both.stderr.contains("not both"))
    }

    /// A directory holding an executable `xl` that runs `body` (a shell script's lines): put
    /// first on PATH, it stands in for Xen's tools in dom0.
    static func fakeXl(in dir: String, _ body: String) throws -> [String: String] {
        let bin = dir + "/bin"
        try FileManager.default.createDirectory(atPath: bin, withIntermediateDirectories: true)
        try ("#!/bin/sh\n" + body + "\n").write(toFile: bin + "/xl", atomically: true, encoding: .utf8)
        try FileManager.default.setAttributes([.posixPermissions: 0o755], ofItemAtPath: bin + "/xl")
        return ["PATH": bin + ":" + (ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/bin")]
    }

    /// No option names the log: `xl dmesg` (a fake on PATH printing what Xen prints, in both
    /// range formats) gives the range, read from a file laid out like physical memory.
    @Test(arguments: ["2024", "2026"])
    func liveLogIsFoundThroughXlDmesgAndDumped(style: String) throws {
        let dir = try tempDir()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let pcrs = try Self.generate(["--scenario", "amd-efi", "--log", dir + "/log.bin", "--mem-image", dir + "/mem",
                                      "--dmesg", dir + "/dmesg.txt", "--dmesg-style", style, "--print-pcrs"]).stdout
        try pcrs.write(toFile: dir + "/pcrs.yaml", atomically: true, encoding: .utf8)
        let env = try Self.fakeXl(in: dir, "[ \"$1\" = dmesg ] || exit 9\ncat '\(dir)/dmesg.txt'")
        let dump = try aemPCR(["log", "dump", "--mem", dir + "/mem", "-o", dir + "/out.bin"], env: env)
        #expect(dump.status == 0, "\(dump.stdout) \(dump.stderr)")
        #expect(flat(dump.stdout).contains("of \(dir)/mem that 'xl dmesg' names (line 3)"), "\(dump.stdout)")
        #expect(flat(dump.stdout).contains("TrenchBoot on AMD SKINIT (Xen through EFI)"))
        #expect(try Data(contentsOf: URL(fileURLWithPath: dir + "/out.bin")) == Data(contentsOf: URL(fileURLWithPath: dir + "/log.bin")))
        let v = try aemPCR(["verify", "--mem", dir + "/mem", "--pcrs", dir + "/pcrs.yaml"], env: env)
        #expect(v.status == 0, "\(v.stdout) \(v.stderr)")
        #expect(flat(v.stdout).contains("'xl dmesg''s output, line 3"), "\(v.stdout)")
        // An xl whose ring holds no SLAUNCH line (tboot's Xen, or a ring that lost its early
        // lines), and no TXT heap either: one error saying each place looked at.
        let none = try Self.fakeXl(in: dir, "echo '(XEN) Xen version 4.19'")
        try write([0], to: dir + "/small")
        let r = try aemPCR(["verify", "--mem", dir + "/small", "--pcrs", dir + "/pcrs.yaml"], env: none)
        #expect(r.status == 2, "\(r.stdout) \(r.stderr)")
        #expect(r.stderr.split(separator: "\n").count == 1, "\(r.stderr)")
        #expect(flat(r.stderr).contains("the current DRTM log cannot be read (the TXT heap: "), "\(r.stderr)")
        #expect(flat(r.stderr).contains("(Linux Secure Launch), 'xl dmesg' printed no \"SLAUNCH: reserving event log\" line; "
            + "give the log with --event-log FILE (saved with 'aem-pcr log dump' on the machine), or --xen-dmesg FILE"), "\(r.stderr)")
        let failing = try Self.fakeXl(in: dir, "exit 3")
        let f = try aemPCR(["log", "dump", "--mem", dir + "/small", "-o", dir + "/o2.bin"], env: failing)
        #expect(f.status == 2 && flat(f.stderr).contains("'xl dmesg' exited with status 3"), "\(f.stderr)")
        #expect(!FileManager.default.fileExists(atPath: dir + "/o2.bin"))
    }

    /// The search order in the seal layer: Linux's securityfs file before Xen's console, which
    /// is not even run then; the console's range before the TXT heap.
    @Test func findLogLooksAtSecurityfsThenXenThenTheTXTHeap() throws {
        let dir = try tempDir()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try Self.generate(["--scenario", "amd-mb2", "--log", dir + "/log.bin", "--mem-image", dir + "/mem",
                           "--dmesg", dir + "/dmesg.txt", "--dmesg-style", "2026"])
        let linux = Array(try Data(contentsOf: URL(fileURLWithPath: Repo.path(Self.linuxLog))))
        try write(linux, to: dir + "/eventlog")
        // The console command leaves a mark when it runs.
        let xl = ["/bin/sh", "-c", "touch '\(dir)/ran'; cat '\(dir)/dmesg.txt'"]
        let fs = try CurrentBoot.findLog(securityfs: dir + "/eventlog", xenConsole: xl, mem: dir + "/mem")
        #expect(fs.origin == .securityfs(path: dir + "/eventlog") && fs.bytes == linux)
        #expect(!FileManager.default.fileExists(atPath: dir + "/ran"))
        let xen = try CurrentBoot.findLog(securityfs: dir + "/absent", xenConsole: xl, mem: dir + "/mem")
        #expect(FileManager.default.fileExists(atPath: dir + "/ran"))
        #expect(xen.bytes == Array(try Data(contentsOf: URL(fileURLWithPath: dir + "/log.bin"))))
        guard case .xenConsole(_, let range, _) = xen.origin else { Issue.record("\(xen.origin)"); return }
        #expect(range.start == 0x7E9F_5000 && range.end == 0x7E9F_D000)
        // A command not on PATH is passed over and said.
        #expect(throws: CodedError.self) { try CurrentBoot.findLog(securityfs: dir + "/absent", xenConsole: ["aem-pcr-no-such-xl"], mem: dir + "/absent") }
        do {
            _ = try CurrentBoot.findLog(securityfs: dir + "/absent", xenConsole: ["aem-pcr-no-such-xl"], mem: dir + "/absent")
        } catch let e as CodedError {
            #expect("\(e)".contains("no \(dir)/absent (Linux Secure Launch), no aem-pcr-no-such-xl on PATH (not Xen's dom0)"), "\(e)")
        }
    }

    @Test func verifyWithoutATXTHeapPointsAtTrenchBootsLog() throws {
        let dir = try tempDir()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        // Physical memory whose TXT heap registers (0xFED30300) read all FF: no TXT, as on AMD.
        let fd = open(dir + "/mem", O_CREAT | O_WRONLY, 0o600)
        #expect(fd >= 0)
        let ff = [UInt8](repeating: 0xFF, count: 16)
        #expect(pwrite(fd, ff, 16, 0xFED3_0300) == 16)
        close(fd)
        try Self.xenPCRs.write(toFile: dir + "/pcrs.yaml", atomically: true, encoding: .utf8)
        let r = try aemPCR(["verify", "--mem", dir + "/mem", "--pcrs", dir + "/pcrs.yaml"], env: try Self.fakeXl(in: dir, "exit 1"))
        #expect(r.status == 2, "\(r.stdout) \(r.stderr)")
        #expect(r.stderr.split(separator: "\n").count == 1, "\(r.stderr)")
        #expect(flat(r.stderr).contains("no TXT"))
        #expect(flat(r.stderr).contains("also looked for: no /sys/kernel/security/slaunch/eventlog (Linux Secure Launch), 'xl dmesg' exited with status 1"))
        #expect(flat(r.stderr).contains("give the log with --event-log FILE (saved with 'aem-pcr log dump' on the machine), or --xen-dmesg FILE ('xl dmesg' saved to a file)"))
    }
}
