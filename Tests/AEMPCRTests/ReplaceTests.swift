// SPDX-License-Identifier: Apache-2.0
import Foundation
import Testing
@testable import AEMPCR

/// `--replace ROLE=FILE`: the entry's command lines with other files, checked against the python3
/// reference (Vectors/reference_legacy.py) fed the replaced files and the entry's command lines
/// as real GRUB produced them (Vectors/expected.json, from grub-emu).
@Suite struct ReplaceTests {
    static let example = ["--grub-cfg", "Vectors/example/grub.cfg", "--entry", "AEM Qubes, with Xen hypervisor",
                          "--boot-dir", "Vectors/example/boot"]

    /// The top AEM entry's TPM 1.2 case in Vectors/expected.json.
    func topEntry() throws -> [String: Any] {
        let json = try JSONSerialization.jsonObject(with: Data(readText("Vectors/expected.json").utf8)) as! [String: Any]
        return (json["predictions"] as! [[String: Any]]).first { $0["name"] as? String == "aem-top.pc.tpm12" }!
    }

    func predictedPCRs(_ args: [String]) throws -> [String: String] {
        let r = try aemPCR(["predict", "--json", "--tpm", "1.2"] + Self.example + args)
        #expect(r.status == 0, "\(r.stderr)")
        let json = try JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as? [String: Any]
        return (json?["pcrs"] as? [String: [String: String]])?["sha1"] ?? [:]
    }

    func reference(mle: String, files: [String], cmdlines: [String]) throws -> [String: String] {
        let ref = try run("/usr/bin/env", ["python3", Repo.path("Vectors/reference_legacy.py"), mle]
                          + zip(files, cmdlines).map { "\(Repo.path($0))::\($1)" })
        #expect(ref.status == 0, "\(ref.stderr)")
        return Dictionary(uniqueKeysWithValues: tsvRows(ref.stdout.replacingOccurrences(of: " ", with: "\t")).map { ($0[0], $0[1]) })
    }

    @Test func xenAndKernelReplacedKeepCommandLines() throws {
        let top = try topEntry()
        let mle = (top["mle"] as! [String: String])["sha1"]!
        let cmdlines = top["module_cmdlines"] as! [String]
        let files = ["Vectors/example/boot/xen-4.17.4.gz", "Vectors/example/boot/vmlinuz-6.6.48-1.qubes.fc37.x86_64",
                     "Vectors/example/boot/initramfs-6.6.63-1.qubes.fc37.x86_64.img"]
        let got = try predictedPCRs(["--replace", "xen=" + files[0], "--replace", "1=" + files[1]])
        let want = try reference(mle: mle, files: files, cmdlines: cmdlines)
        #expect(got["18"] == want["18"] && got["18"] != nil)
        #expect(got["19"] == want["19"] && got["19"] != nil)
        // The replacement changed something: the entry's own prediction differs.
        #expect(got["18"] != (top["pcrs"] as! [String: [String: String]])["sha1"]!["18"])
    }

    /// tboot replaced by Debian's real tboot: the MLE hash from tboot's own lcp2_mlehash with the
    /// entry's tboot command line.
    @Test func tbootReplaced() throws {
        guard let mlehash = tool("lcp2_mlehash") else { return }
        guard FileManager.default.fileExists(atPath: "/boot/tboot.gz") || Repo.inCI else { return }
        let top = try topEntry()
        let line = top["tboot_cmdline"] as! String
        let mle = try run(mlehash, ["--create", "--alg", "sha1", "--cmdline", line, "/boot/tboot.gz"])
            .stdout.filter { !$0.isWhitespace }
        let got = try predictedPCRs(["--replace", "tboot=/boot/tboot.gz", "--replace", "initramfs=Vectors/example/boot/initramfs-6.6.48-1.qubes.fc37.x86_64.img"])
        var files = (top["module_files"] as! [String])
        files[2] = "Vectors/example/boot/initramfs-6.6.48-1.qubes.fc37.x86_64.img"
        let want = try reference(mle: mle, files: files, cmdlines: top["module_cmdlines"] as! [String])
        #expect(got["18"] == want["18"] && got["18"] != nil)
        #expect(got["19"] == want["19"] && got["19"] != nil)
    }

    @Test(arguments: [
        (["--replace", "hypervisor=Vectors/example/boot/xen-4.17.4.gz"], "unknown role 'hypervisor'"),
        (["--replace", "xen=/nonexistent/xen.gz"], "/nonexistent/xen.gz: no such file"),
        (["--replace", "kernel=Vectors/example"], "is a directory"),
        (["--replace", "9=Vectors/example/grub.cfg"], "no module 9"),
        (["--replace", "xen"], "not ROLE=FILE"),
        (["--replace", "xen=Vectors/example/grub.cfg", "--replace", "0=Vectors/example/grub.cfg"], "xen is replaced twice"),
        // Xen given as the kernel: no Linux boot header ("HdrS" at byte 0x202), so refused.
        (["--replace", "kernel=Vectors/example/boot/xen-4.17.4.gz"], "the replacement, Vectors/example/boot/xen-4.17.4.gz, is not a Linux kernel (no 'HdrS'"),
    ])
    func badReplacementIsOneLine(args: [String], message: String) throws {
        for cmd in [["predict"], ["diff", "--event-log", "Vectors/logs/isecl_tagent_txt_heap_info.bin", "--force"]] {
            let r = try aemPCR(cmd + Self.example + args)
            #expect(r.status == 2)
            #expect(r.stderr.hasPrefix("aem-pcr: error: --replace "), "\(r.stderr)")
            #expect(r.stderr.contains(message), "\(r.stderr)")
            #expect(r.stderr.split(separator: "\n").count == 1, "\(r.stderr)")
        }
    }

    /// "kernel" is module 1: an entry whose module 1 is no Linux kernel is refused by role and
    /// accepted by index.
    @Test func kernelRoleNeedsAKernelAtModule1() throws {
        let b = "Vectors/example/boot/"
        let base = ["predict", "--tpm", "1.2", "--tboot", b + "tboot.gz", "--tboot-cmdline", "placeholder",
                    "--module", b + "xen-4.17.5.gz placeholder", "--module", b + "initramfs-6.6.63-1.qubes.fc37.x86_64.img",
                    "--module", b + "vmlinuz-6.6.63-1.qubes.fc37.x86_64 placeholder root=/dev/x"]
        let byRole = try aemPCR(base + ["--replace", "kernel=" + b + "vmlinuz-6.6.48-1.qubes.fc37.x86_64"])
        #expect(byRole.status == 2)
        #expect(byRole.stderr.contains("module 1 of the entry, \(b)initramfs-6.6.63"), "\(byRole.stderr)")
        #expect(byRole.stderr.contains("is not a Linux kernel (no 'HdrS' boot header at byte 0x202)"), "\(byRole.stderr)")
        let byIndex = try aemPCR(base + ["--replace", "2=" + b + "vmlinuz-6.6.48-1.qubes.fc37.x86_64"])
        #expect(byIndex.status == 0, "\(byIndex.stderr)")
    }

    /// In diff, against the synthetic TPM 2.0 boot of LogPredictionTests: replacing the kernel
    /// changes exactly its event and PCR17 (what replacing the file on disk does there).
    @Test func diffWithReplacedKernel() throws {
        let dir = try tempDir()
        let (log, events) = try LogPredictionTests.syntheticBoot(dir)
        try LogPredictionTests.pythonReplay(events, to: dir + "/pcrs.yaml")
        let d = try aemPCR(["diff", "--json", "--event-log", log, "--pcrs", dir + "/pcrs.yaml",
                            "--replace", "kernel=Vectors/example/boot/vmlinuz-6.6.48-1.qubes.fc37.x86_64"] + Self.example + LogPredictionTests.embedded)
        #expect(d.status == 0, "\(d.stderr)")
        let diff = try JSONSerialization.jsonObject(with: Data(d.stdout.utf8)) as! [String: Any]
        #expect((diff["changes"] as! [[String: Any]]).map { $0["component"] as! String } == ["module 1"])
        let changed = (diff["pcrs"] as! [[String: Any]]).filter { $0["changed"] as! Bool }.map { "\($0["pcr"]!) \($0["bank"]!)" }
        #expect(changed == ["17 sha1", "17 sha256"])
    }
}
