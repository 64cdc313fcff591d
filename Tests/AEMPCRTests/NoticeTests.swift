// SPDX-License-Identifier: Apache-2.0
import Foundation
import Testing
@testable import AEMPCR

/// `aem-pcr notice`, the package hooks' command: exit 0 always, writes only its state directory,
/// names the PCRs an updated file changes (TPM 1.2 legacy: Xen and the MLE hash → PCR18, kernel
/// and initramfs → PCR19; TPM 2.0: everything → PCR17; tboot `policy.c`'s default policies).
@Suite(.serialized) struct NoticeTests {
    struct Scratch {
        let dir: String
        var boot: String { dir + "/boot" }
        var state: String { dir + "/state" }
        var aem: String { dir + "/anti-evil-maid" }
    }

    func scratch() throws -> Scratch {
        let s = Scratch(dir: try tempDir())
        try FileManager.default.copyItem(atPath: Repo.path("Vectors/example/boot"), toPath: s.boot)
        try FileManager.default.createDirectory(atPath: s.aem + "/aem", withIntermediateDirectories: true)
        return s
    }

    func notice(_ s: Scratch, _ extra: [String] = []) throws -> ProcessResult {
        // Relative paths (run in the scratch directory): lines as short as on a real dom0.
        let r = try run(Repo.binary, ["notice", "--grub-cfg", Repo.path("Vectors/example/grub.cfg"), "--boot-dir", "boot",
                                      "--state-dir", "state", "--aem-dir", "anti-evil-maid", "--mem", "no-dev-mem"] + extra,
                        cwd: s.dir)
        #expect(r.status == 0, "\(r.stdout)\(r.stderr)")
        for line in r.stdout.split(separator: "\n") { #expect(line.count <= 80, "\(line)") }
        return r
    }

    /// The output with line wrapping undone (runs of blanks and newlines as one space).
    func flat(_ s: String) -> String {
        s.split(whereSeparator: { $0 == " " || $0 == "\n" }).joined(separator: " ")
    }

    func replace(_ s: Scratch, _ name: String, with other: String) throws {
        try FileManager.default.removeItem(atPath: s.boot + "/" + name)
        try FileManager.default.copyItem(atPath: Repo.path("Vectors/example/boot/" + other), toPath: s.boot + "/" + name)
    }

    /// Marks the saved state as written in an earlier boot (as after a reboot).
    func reboot(_ s: Scratch) throws {
        let path = s.state + "/notice.state"
        let text = try String(contentsOfFile: path, encoding: .utf8)
        let lines = text.split(separator: "\n").map { $0.hasPrefix("boot_id\t") ? "boot_id\tan-earlier-boot" : String($0) }
        try (lines.joined(separator: "\n") + "\n").write(toFile: path, atomically: true, encoding: .utf8)
    }

    @Test func firstRunSavesThenUpdateNamesPCRs() throws {
        let s = try scratch()
        let first = try notice(s, ["--tpm", "1.2"])
        #expect(flat(first.stdout).contains("no record of what the current boot measured"), "\(first.stdout)")
        // Only the state file was written.
        #expect(try FileManager.default.contentsOfDirectory(atPath: s.state) == ["notice.state"])
        #expect(try FileManager.default.contentsOfDirectory(atPath: s.dir).sorted() == ["anti-evil-maid", "boot", "state"])

        let same = try notice(s, ["--tpm", "1.2"])
        #expect(flat(same.stdout).contains("no DRTM PCR changes"), "\(same.stdout)")

        try replace(s, "xen-4.17.5.gz", with: "xen-4.17.4.gz")
        let xen = try notice(s, ["--tpm", "1.2"])
        #expect(flat(xen.stdout).contains("changes PCR18."), "\(xen.stdout)")
        #expect(flat(xen.stdout).contains("module 0 (xen-4.17.5.gz) changes: PCR18"), "\(xen.stdout)")
        #expect(!flat(xen.stdout).contains("PCR19") && !xen.stdout.contains("PCR17"), "\(xen.stdout)")
        #expect(flat(xen.stdout).contains("sudo aem-pcr seal --label aem"), "\(xen.stdout)")
        #expect(flat(xen.stdout).contains("--entry 'AEM Qubes, with Xen hypervisor'"), "\(xen.stdout)")

        // A second update in the same boot still compares with what this boot measured.
        try replace(s, "initramfs-6.6.63-1.qubes.fc37.x86_64.img", with: "initramfs-6.6.48-1.qubes.fc37.x86_64.img")
        let both = try notice(s, ["--tpm", "1.2"])
        #expect(flat(both.stdout).contains("changes PCR18, PCR19."), "\(both.stdout)")
        #expect(flat(both.stdout).contains("module 2 (initramfs-6.6.63-1.qubes.fc37.x86_64.img) changes: PCR19"), "\(both.stdout)")

        // After the reboot the new files are the current boot's.
        try reboot(s)
        let after = try notice(s, ["--tpm", "1.2"])
        #expect(flat(after.stdout).contains("no DRTM PCR changes"), "\(after.stdout)")
    }

    @Test func tpm20RoutesEverythingToPCR17() throws {
        let s = try scratch()
        _ = try notice(s, ["--tpm", "2.0"])
        try replace(s, "vmlinuz-6.6.63-1.qubes.fc37.x86_64", with: "vmlinuz-6.6.48-1.qubes.fc37.x86_64")
        try replace(s, "2nd_gen_i5_i7_SINIT_51.BIN", with: "3rd_gen_i5_i7_SINIT_67.BIN")
        let r = try notice(s, ["--tpm", "2.0"])
        #expect(flat(r.stdout).contains("changes PCR17."), "\(r.stdout)")
        #expect(flat(r.stdout).contains("module 1 (vmlinuz-6.6.63-1.qubes.fc37.x86_64) changes: PCR17"), "\(r.stdout)")
        #expect(flat(r.stdout).contains("SINIT module 2nd_gen_i5_i7_SINIT_51.BIN changes: PCR17"), "\(r.stdout)")
    }

    /// The live log (a memory image holding the published SecL heap, TPM 2.0, tboot extending
    /// SHA-1 and SHA-256: extpol=embedded): its tboot events are for other files than the
    /// example's, so the example's modules change PCR17. The entry's tboot line must say
    /// extpol=embedded for the log to predict it; without, notice falls back to its saved state
    /// and says why.
    @Test func liveLogIsTheReference() throws {
        let s = try scratch()
        let heap = try LogCommandTests.realHeap()
        let mem = try LogCommandTests().memoryImage(regs: LogCommandTests.registers(base: 0x1000, size: 0x100000),
                                                    heap: heap, heapAt: 0x1000, in: s.dir)
        defer { try? FileManager.default.removeItem(atPath: mem) }
        let example = try readText("Vectors/example/grub.cfg")
        let embedded = example.replacingOccurrences(of: "/tboot.gz placeholder logging=memory,serial",
                                                    with: "/tboot.gz placeholder logging=memory,serial extpol=embedded")
        #expect(embedded != example)
        try embedded.write(toFile: s.dir + "/grub.cfg", atomically: true, encoding: .utf8)
        let r = try run(Repo.binary, ["notice", "--grub-cfg", "grub.cfg", "--boot-dir", "boot", "--state-dir", "state",
                                      "--aem-dir", "anti-evil-maid", "--mem", mem], cwd: s.dir)
        #expect(r.status == 0)
        #expect(flat(r.stdout).contains("Compared with the current boot's DRTM log"), "\(r.stdout)")
        #expect(flat(r.stdout).contains("changes PCR17."), "\(r.stdout)")
        #expect(flat(r.stdout).contains("module 0 changes: PCR17"), "\(r.stdout)")

        let plain = try run(Repo.binary, ["notice", "--grub-cfg", Repo.path("Vectors/example/grub.cfg"), "--boot-dir", "boot",
                                          "--state-dir", "state2", "--aem-dir", "anti-evil-maid", "--mem", mem, "--tpm", "2.0"], cwd: s.dir)
        #expect(plain.status == 0)
        #expect(flat(plain.stdout).contains("no record of what the current boot measured"), "\(plain.stdout)")
        #expect(flat(plain.stdout).contains("(the live DRTM log was not used: "), "\(plain.stdout)")
    }

    /// State files written by an earlier release (commit e9723fb, `Vectors/notice/`) stay the
    /// reference: read, compared with the files now, and the change named as that release named it.
    @Test func stateWrittenByEarlierReleaseIsRead() throws {
        let s = try scratch()
        defer { try? FileManager.default.removeItem(atPath: s.dir) }
        try FileManager.default.copyItem(atPath: Repo.path("Vectors/example/grub.cfg"), toPath: s.dir + "/grub.cfg")
        func notice(_ family: String, state: String) throws -> String {
            try FileManager.default.createDirectory(atPath: s.state, withIntermediateDirectories: true)
            try? FileManager.default.removeItem(atPath: s.state + "/notice.state")
            try FileManager.default.copyItem(atPath: Repo.path("Vectors/notice/" + state), toPath: s.state + "/notice.state")
            let r = try run(Repo.binary, ["notice", "--grub-cfg", "grub.cfg", "--boot-dir", "boot", "--state-dir", "state",
                                          "--aem-dir", "anti-evil-maid", "--mem", "no-dev-mem", "--tpm", family], cwd: s.dir)
            #expect(r.status == 0, "\(r.stdout)\(r.stderr)")
            #expect(!r.stdout.contains("unusable"), "\(r.stdout)")
            return flat(r.stdout)
        }
        // TPM 1.2: saved while Xen 4.17.5 held 4.17.4's bytes; the example's Xen differs in PCR18 only.
        let xen = try notice("1.2", state: "state-tpm12.v1")
        #expect(xen.contains("Compared with the measurements aem-pcr notice saved"), "\(xen)")
        #expect(xen.contains("changes PCR18. module 0 (xen-4.17.5.gz) changes: PCR18 Compared"), "\(xen)")
        #expect(!xen.contains("PCR17") && !xen.contains("PCR19"), "\(xen)")
        // TPM 2.0: saved on the example's files; the same files change nothing, a kernel and a
        // SINIT module each change PCR17.
        let same = try notice("2.0", state: "state-tpm20.v1")
        #expect(same.contains("no DRTM PCR changes, nothing to reseal."), "\(same)")
        try replace(s, "vmlinuz-6.6.63-1.qubes.fc37.x86_64", with: "vmlinuz-6.6.48-1.qubes.fc37.x86_64")
        try replace(s, "2nd_gen_i5_i7_SINIT_51.BIN", with: "3rd_gen_i5_i7_SINIT_67.BIN")
        let two = try notice("2.0", state: "state-tpm20.v1")
        #expect(two.contains("changes PCR17. SINIT module 2nd_gen_i5_i7_SINIT_51.BIN changes: PCR17 module 1 (vmlinuz-6.6.63-1.qubes.fc37.x86_64) changes: PCR17 Compared"), "\(two)")
    }

    /// The comparison is the per-PCR event diff for the boot's events, by file for the SINIT
    /// modules: a module added under TPM 2.0 (every event in PCR17, the SINIT modules' images
    /// recorded after them) names that module only, and SINIT modules saved in another order
    /// change nothing (the CPU measures the one that matches, whatever its place).
    @Test func addedModuleNamesOnlyItself() throws {
        func e(_ c: String, _ digit: Character, _ file: String) -> NoticeState.Extend {
            NoticeState.Extend(component: c, pcr: 17, digests: ["sha256": String(repeating: digit, count: 64)], file: file)
        }
        let sinit = [e("SINIT", "a", "/A.BIN"), e("SINIT", "b", "/B.BIN")]
        let old = NoticeState.Record(extends: [e("MLE hash", "1", "/tboot.gz"), e("module 0", "2", "/xen.gz")] + sinit)
        let new = NoticeState.Record(extends: [e("MLE hash", "1", "/tboot.gz"), e("module 0", "2", "/xen.gz"),
                                               e("module 1", "3", "/vmlinuz")] + sinit.reversed())
        #expect(NoticeComparison.changes(from: old, to: new) == [NoticeComparison.Change(what: "module 1 (vmlinuz)", pcrs: [17])])
        #expect(NoticeComparison.changes(from: new, to: old) == [NoticeComparison.Change(what: "module 1 (vmlinuz)", pcrs: [17])])
    }

    @Test func failuresAreOneLineAndExitZero() throws {
        let s = try scratch()
        let missing = try aemPCR(["notice", "--grub-cfg", s.dir + "/no-grub.cfg", "--state-dir", s.state])
        #expect(missing.status == 0)
        #expect(missing.stdout.split(separator: "\n").count == 1 && missing.stdout.contains("no-grub.cfg: no such file"), "\(missing.stdout)")
        // A control byte in a path reaches the terminal escaped, never raw.
        let escape = try aemPCR(["notice", "--grub-cfg", s.dir + "/no-\u{1B}[2J.cfg", "--state-dir", s.state])
        #expect(escape.status == 0 && !escape.stdout.contains("\u{1B}") && escape.stdout.contains("no-\\x1b[2J.cfg"), "\(escape.stdout)")
        let badOption = try aemPCR(["notice", "--no-such-option"])
        #expect(badOption.status == 0)
        let badTPM = try aemPCR(["notice", "--tpm", "3.0"])
        #expect(badTPM.status == 0)
        // A state directory that cannot be created: the notice still prints, and says so.
        try "x".write(toFile: s.dir + "/file", atomically: true, encoding: .utf8)
        let r = try aemPCR(["notice", "--grub-cfg", Repo.path("Vectors/example/grub.cfg"), "--boot-dir", s.boot,
                            "--state-dir", s.dir + "/file/state", "--mem", s.dir + "/no-dev-mem", "--tpm", "1.2"])
        #expect(r.status == 0)
        #expect(flat(r.stdout).contains("could not be saved ("), "\(r.stdout)")
        // A grub.cfg without AEM or tboot entries: one line naming the option (issue 23, 1: it
        // printed nothing, which reads as "nothing changed").
        try "menuentry 'Debian GNU/Linux' {\n  linux /vmlinuz root=/dev/sda1\n}\n".write(toFile: s.dir + "/plain.cfg", atomically: true, encoding: .utf8)
        let plain = try aemPCR(["notice", "--grub-cfg", s.dir + "/plain.cfg", "--state-dir", s.state])
        #expect(plain.status == 0 && plain.stderr.isEmpty, "\(plain.stdout)\(plain.stderr)")
        #expect(plain.stdout.split(separator: "\n").count == 1 && plain.stdout.contains("boots tboot") && plain.stdout.contains("give --entry"), "\(plain.stdout)")
    }

    /// A title with a control byte (an escape sequence) is printed escaped, never raw.
    @Test func controlBytesInTitleAreEscaped() throws {
        let s = try scratch()
        let cfg = try readText("Vectors/example/grub.cfg")
            .replacingOccurrences(of: "menuentry 'AEM Qubes, with Xen hypervisor'", with: "menuentry 'AEM \u{1B}[2J Qubes'")
        try cfg.write(toFile: s.dir + "/grub.cfg", atomically: true, encoding: .utf8)
        for _ in 0..<2 {
            let r = try run(Repo.binary, ["notice", "--grub-cfg", "grub.cfg", "--boot-dir", "boot", "--state-dir", "state",
                                          "--aem-dir", "anti-evil-maid", "--mem", "no-dev-mem", "--tpm", "1.2"], cwd: s.dir)
            #expect(r.status == 0)
            #expect(!r.stdout.contains("\u{1B}"), "\(r.stdout)")
            #expect(flat(r.stdout).contains("'AEM \\x1b[2J Qubes'"), "\(r.stdout)")
        }
        try replace(s, "xen-4.17.5.gz", with: "xen-4.17.4.gz")
        let r = try run(Repo.binary, ["notice", "--grub-cfg", "grub.cfg", "--boot-dir", "boot", "--state-dir", "state",
                                      "--aem-dir", "anti-evil-maid", "--mem", "no-dev-mem", "--tpm", "1.2"], cwd: s.dir)
        #expect(!r.stdout.contains("\u{1B}") && flat(r.stdout).contains("changes PCR18."), "\(r.stdout)")
    }

    /// The reader of notice's output gone before it writes (dnf's plugin killed, `| head -c 1`):
    /// the writes fail with EPIPE and are dropped; exit 0, not 141 (killed by SIGPIPE). bash
    /// runs the pipeline: `true` has exited long before notice starts writing, 1 s later. Nor
    /// does a file size limit kill it when it saves its state (SIGXFSZ).
    @Test func closedReaderExitsZero() throws {
        let s = try scratch()
        defer { try? FileManager.default.removeItem(atPath: s.dir) }
        let notice = [Repo.binary, "notice", "--grub-cfg", Repo.path("Vectors/example/grub.cfg"), "--boot-dir", "boot",
                      "--state-dir", "state", "--aem-dir", "anti-evil-maid", "--mem", "no-dev-mem", "--tpm", "1.2"]
        for args in [notice, notice, [Repo.binary, "notice", "--help"], [Repo.binary, "notice", "--no-such-option"]] {
            let r = try run("/bin/bash", ["-c", "{ sleep 1; \"$@\"; echo \"status $?\" >&2; } | true", "bash"] + args, cwd: s.dir)
            #expect(r.stderr.hasSuffix("status 0\n"), "\(args): \(r.stderr)")
        }
        // The state was still saved (the first run) and compared (the second).
        #expect(FileManager.default.fileExists(atPath: s.state + "/notice.state"))
        // A file size limit (ulimit -f 0) makes writing the state fail, not SIGXFSZ kill it (153).
        try FileManager.default.removeItem(atPath: s.state)
        let limited = try run("/bin/bash", ["-c", "ulimit -f 0; \"$@\"; echo \"status $?\"", "bash"] + notice, cwd: s.dir)
        #expect(limited.stdout.hasSuffix("status 0\n") && flat(limited.stdout).contains("could not be saved"), "\(limited.stdout)\(limited.stderr)")
    }
    /// The AEM entry after 300 others is found: the menu is listed in one evaluation of the
    /// file (it was evaluated again for each index and given up after 256).
    @Test func aemEntryAfter300OthersIsFound() throws {
        let s = try scratch()
        defer { try? FileManager.default.removeItem(atPath: s.dir) }
        var cfg = ""
        for k in 0..<300 { cfg += "menuentry 'Other \(k)' {\n  linux /vmlinuz-\(k)\n}\n" }
        cfg += try readText("Vectors/example/grub.cfg")
        try cfg.write(toFile: s.dir + "/grub.cfg", atomically: true, encoding: .utf8)
        let r = try run(Repo.binary, ["notice", "--grub-cfg", "grub.cfg", "--boot-dir", "boot", "--state-dir", "state",
                                      "--aem-dir", "anti-evil-maid", "--mem", "no-dev-mem", "--tpm", "1.2"], cwd: s.dir)
        #expect(r.status == 0)
        #expect(flat(r.stdout).contains("saved the measurements of 'AEM Qubes, with Xen hypervisor'"), "\(r.stdout)")
    }

    /// A corrupt state file (issue 23, 6: it was taken for "nothing saved yet" and overwritten,
    /// losing the reference): kept aside under a name with the UTC time, one message says so,
    /// a new state is written. A state that cannot be read (a directory in its place) is kept
    /// aside the same way.
    @Test func unusableStateIsKeptAside() throws {
        let s = try scratch()
        defer { try? FileManager.default.removeItem(atPath: s.dir) }
        _ = try notice(s, ["--tpm", "1.2"])
        // A write cut short: the third line lost its digests and file.
        let corrupt = Array("version\t1\nboot_id\tx\nnext\tmodule 0\t18".utf8)
        try write(corrupt, to: s.state + "/notice.state")
        let before = Self.utcStamp()
        let r = try notice(s, ["--tpm", "1.2"])
        let after = Self.utcStamp()
        // One message (wrapped at 80 columns: its continuation lines are indented), then the
        // first-run message of the new state.
        let messages = r.stdout.split(separator: "\n").filter { !$0.hasPrefix(" ") }
        #expect(messages.count == 2, "\(r.stdout)")
        #expect(messages.first?.hasPrefix("aem-pcr: the saved state was unusable (state/notice.state: line 3") == true, "\(r.stdout)")
        let kept = try FileManager.default.contentsOfDirectory(atPath: s.state).filter { $0 != "notice.state" }
        #expect(kept.count == 1, "\(kept)")
        let name = kept.first ?? ""
        #expect(name.hasPrefix("notice.state.unusable-") && flat(r.stdout).contains("kept it as state/\(name) and started a new one."), "\(r.stdout)")
        let stamp = String(name.dropFirst("notice.state.unusable-".count))
        #expect(stamp.count == 16 && stamp >= before && stamp <= after, "\(stamp) not within \(before)…\(after)")
        #expect(Array(try Data(contentsOf: URL(fileURLWithPath: s.state + "/" + name))) == corrupt)
        #expect(flat(r.stdout).contains("(no readable DRTM log in no-dev-mem, the saved state set aside); saved the measurements"), "\(r.stdout)")
        // The new state is the reference of the next run.
        try replace(s, "xen-4.17.5.gz", with: "xen-4.17.4.gz")
        let xen = try notice(s, ["--tpm", "1.2"])
        #expect(flat(xen.stdout).contains("module 0 (xen-4.17.5.gz) changes: PCR18"), "\(xen.stdout)")

        // Unreadable: a directory where the file should be.
        try FileManager.default.removeItem(atPath: s.state)
        try FileManager.default.createDirectory(atPath: s.state + "/notice.state", withIntermediateDirectories: true)
        let dir = try notice(s, ["--tpm", "1.2"])
        #expect(flat(dir.stdout).hasPrefix("aem-pcr: the saved state was unusable (state/notice.state: "), "\(dir.stdout)")
        var isDir: ObjCBool = false
        #expect(FileManager.default.fileExists(atPath: s.state + "/notice.state", isDirectory: &isDir) && !isDir.boolValue)
        #expect(try FileManager.default.contentsOfDirectory(atPath: s.state).count == 2)
    }

    /// The UTC time as notice stamps a kept state (YYYYMMDDTHHMMSSZ), by Foundation.
    static func utcStamp() -> String {
        let f = DateFormatter()
        f.locale = Locale(identifier: "en_US_POSIX")
        f.timeZone = TimeZone(identifier: "UTC")
        f.dateFormat = "yyyyMMdd'T'HHmmss'Z'"
        return f.string(from: Date())
    }

    /// A Debian tboot machine (issue 23, 1): grub.cfg written by Debian's own /etc/grub.d
    /// scripts (the tboot package's 20_linux_tboot and 20_linux_xen_tboot, with 00_header,
    /// 10_linux and 20_linux_xen) over a fake /boot, in a private mount namespace whose /boot is
    /// that directory (Tests/Scripts/debian-tboot-grub-cfg.sh; grub-probe and grub-mkrelpath are
    /// stubs there, explained in it). notice runs with its default grub.cfg, entry and boot
    /// directory (the state directory, the memory file and the TPM family are given: the
    /// host's are not the fake machine's) before and after a Xen update, and names module 0
    /// (Xen) and PCR17; the digests it saved for Xen are python3's, from the module line of the
    /// generated grub.cfg and the files (tboot's module measurement: H(H(cmdline) || H(image)),
    /// the image gunzipped as GRUB's module2 loads it).
    ///
    /// separate: /boot its own partition (GRUB reads /xen-4.17-amd64.gz), every script; GRUB's
    /// default is entry 0 (Linux without tboot), so the first entry that boots tboot, tboot
    /// without Xen, until grubenv's saved_entry (GRUB_DEFAULT=saved, set with grub-editenv) names
    /// the Xen one. root: /boot on the root filesystem (GRUB reads /boot/xen-4.17-amd64.gz),
    /// without 20_linux_tboot: the first entry that boots tboot is the Xen one, after
    /// 20_linux_xen's Xen entries (multiboot of Xen, not tboot).
    @Test(.needs("mount namespaces (unshare), /boot, grub-editenv, and Debian's /etc/grub.d/20_linux_tboot and 20_linux_xen_tboot (Debian packages tboot, grub-common)",
                 ExampleTests.sandboxAvailable && FileManager.default.fileExists(atPath: "/etc/grub.d/20_linux_xen_tboot")
                    && FileManager.default.fileExists(atPath: "/etc/grub.d/20_linux_tboot") && findTool("grub-editenv") != nil),
          arguments: ["separate", "root"])
    func debianTbootDefaults(layout: String) throws {
        let fix = try tempDir()
        let fm = FileManager.default
        defer { try? fm.removeItem(atPath: fix) }
        try fm.createDirectory(atPath: fix + "/boot/grub", withIntermediateDirectories: true)
        let ex = "Vectors/example/boot/"
        for (from, to) in [("tboot.gz", "tboot.gz"), ("xen-4.17.5.gz", "xen-4.17-amd64.gz"),
                           ("vmlinuz-6.6.63-1.qubes.fc37.x86_64", "vmlinuz-6.1.0-28-amd64"),
                           ("initramfs-6.6.63-1.qubes.fc37.x86_64.img", "initrd.img-6.1.0-28-amd64"),
                           ("2nd_gen_i5_i7_SINIT_51.BIN", "2nd_gen_i5_i7_SINIT_51.BIN"), ("xen-4.17.4.gz", "../xen-update.gz")] {
            try fm.copyItem(atPath: Repo.path(ex + from), toPath: fix + "/boot/" + to)
        }
        // What 10_linux, 20_linux_tboot and 20_linux_xen_tboot look for in a kernel's config.
        try "CONFIG_INTEL_TXT=y\nCONFIG_XEN_DOM0=y\n".write(toFile: fix + "/boot/config-6.1.0-28-amd64", atomically: true, encoding: .utf8)
        let scripts = layout == "separate" ? "00_header 10_linux 20_linux_tboot 20_linux_xen 20_linux_xen_tboot"
            : "00_header 10_linux 20_linux_xen 20_linux_xen_tboot"
        let xenEntry = "Xen 4.17-amd64>Debian GNU/Linux, with Xen 4.17-amd64, Tboot 1.10.5 and Linux 6.1.0-28-amd64"
        let notice = "\(Repo.binary) notice --state-dir \"$fix/state\" --mem \"$fix/no-mem\" --tpm 2.0 --aem-dir \"$fix/no-aem\""
        let driver = """
            set -eu
            fix=$1
            mount --bind "$fix/boot" /boot
            bash \(Repo.path("Tests/Scripts/debian-tboot-grub-cfg.sh")) \(layout) \(layout == "separate" ? "saved" : "0") \(scripts) \
              > /boot/grub/grub.cfg 2> "$fix/mkconfig.err"
            cp /boot/grub/grub.cfg "$fix/grub.cfg"
            \(layout == "separate" ? "\(notice) --state-dir \"$fix/state0\" > \"$fix/out0\"" : "")
            \(layout == "separate" ? "grub-editenv /boot/grub/grubenv set 'saved_entry=\(xenEntry)'" : "")
            \(notice) > "$fix/out1"
            cp "$fix/state/notice.state" "$fix/state1"
            cp "$fix/xen-update.gz" /boot/xen-4.17-amd64.gz
            \(notice) > "$fix/out2"
            """
        try driver.write(toFile: fix + "/driver.sh", atomically: true, encoding: .utf8)
        let r = try run(findTool("unshare")!, ExampleTests.unshareArgs + ["/bin/bash", fix + "/driver.sh", fix])
        #expect(r.status == 0, "\(r.stderr)")
        let text = { (name: String) in (try? String(contentsOfFile: fix + "/" + name, encoding: .utf8)) ?? "" }
        let cfg = text("grub.cfg")
        let xenPath = layout == "separate" ? "/xen-4.17-amd64.gz" : "/boot/xen-4.17-amd64.gz"
        #expect(cfg.contains("multiboot2\t\(layout == "separate" ? "/tboot.gz" : "/boot/tboot.gz") ") && cfg.contains("module2\t\(xenPath) iommu=force"),
                "\(cfg)\n\(text("mkconfig.err"))")

        if layout == "separate" {
            #expect(flat(text("out0")).contains("saved the measurements of 'tboot 1.10.5>Debian GNU/Linux, with tboot 1.10.5 and Linux 6.1.0-28-amd64'"), "\(text("out0"))")
        }
        #expect(flat(text("out1")).contains("saved the measurements of '\(xenEntry)'"), "\(text("out1"))")
        let out = flat(text("out2"))
        #expect(out.contains("after this update the boot '\(xenEntry)' changes PCR17."), "\(text("out2"))")
        #expect(out.contains("module 0 (xen-4.17-amd64.gz) changes: PCR17 Compared with"), "\(text("out2"))")
        #expect(!out.contains("module 1") && !out.contains("module 2") && !out.contains("SINIT"), "\(text("out2"))")
        #expect(out.contains("--grub-cfg /boot/grub/grub.cfg"), "\(text("out2"))")
        // The boot directory it found: / on the root filesystem, for the seal command too.
        #expect(out.contains("--boot-dir / \\") == (layout == "root"), "\(text("out2"))")

        // Xen's measurement, before and after, from python3.
        let py = """
            import gzip, hashlib, sys
            cfg, old, new = sys.argv[1:4]
            line = next(l for l in open(cfg).read().split('\\n') if l.split()[:2] == ['module2', sys.argv[4]])
            cmdline = ' '.join(line.split()[2:]).encode()
            for name, path in (('old', old), ('new', new)):
                img = gzip.decompress(open(path, 'rb').read())
                for a in ('sha1', 'sha256'):
                    h = lambda b: hashlib.new(a, b).digest()
                    print(name, a, hashlib.new(a, h(cmdline) + h(img)).hexdigest())
            """
        let m = try run("/usr/bin/env", ["python3", "-c", py, fix + "/grub.cfg", Repo.path(ex + "xen-4.17.5.gz"), Repo.path(ex + "xen-4.17.4.gz"), xenPath])
        #expect(m.status == 0, "\(m.stderr)")
        var want = [String: String]()
        for l in m.stdout.split(separator: "\n") {
            let f = l.split(separator: " ")
            want["\(f[0]) \(f[1])"] = String(f[2])
        }
        /// The digests of `next module 0` in a saved state, bank → hex.
        func xenDigests(_ state: String) -> [String: String] {
            guard let line = state.split(separator: "\n").first(where: { $0.hasPrefix("next\tmodule 0\t17\t") }) else { return [:] }
            let fields = line.split(separator: "\t")
            #expect(fields.last.map(String.init) == "/boot/xen-4.17-amd64.gz", "\(line)")
            return Dictionary(uniqueKeysWithValues: fields[3].split(separator: ",").map { p in
                let kv = p.split(separator: ":"); return (String(kv[0]), String(kv[1])) })
        }
        for (name, state) in [("old", text("state1")), ("new", text("state/notice.state"))] {
            let saved = xenDigests(state)
            #expect(!saved.isEmpty, "\(state)")
            for (bank, hex) in saved { #expect(hex == want["\(name) \(bank)"], "\(name) \(bank)") }
        }
        #expect(want["old sha256"] != want["new sha256"])
    }

    /// Nothing says which boot to check: one line naming the option, never silence.
    @Test func noTbootEntryIsOneLineNamingTheOption() throws {
        let dir = try tempDir()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        // A tboot entry whose files are in neither reading of its paths (/boot/boot/…, /boot/…).
        try "menuentry 'Debian, with tboot' {\n  multiboot2 /boot/tboot-not-here.gz\n  module2 /boot/vmlinuz\n}\n"
            .write(toFile: dir + "/grub.cfg", atomically: true, encoding: .utf8)
        let r = try aemPCR(["notice", "--grub-cfg", dir + "/grub.cfg", "--state-dir", dir + "/state"])
        #expect(r.status == 0 && r.stderr.isEmpty)
        #expect(r.stdout.split(separator: "\n").count == 1, "\(r.stdout)")
        #expect(r.stdout.contains("loads '/boot/tboot-not-here.gz', found neither as /boot/tboot-not-here.gz nor /boot/boot/tboot-not-here.gz; give --boot-dir"), "\(r.stdout)")
        #expect(!FileManager.default.fileExists(atPath: dir + "/state"))
    }

    /// grubenv as GRUB's own grub-editenv writes it (a backslash escaped, `#` padding to
    /// 1024 bytes): the variables notice reads GRUB's saved entry from.
    @Test(.needsTool("grub-editenv", package: "grub-common"))
    func environmentBlockAsGrubEditenvWritesIt() throws {
        guard let editenv = tool("grub-editenv") else { return }
        let dir = try tempDir()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let r = try run(editenv, [dir + "/grubenv", "set", "saved_entry=Xen 4.17>Debian, with \\ and > in it", "next_entry="])
        #expect(r.status == 0, "\(r.stderr)")
        let bytes = Array(try Data(contentsOf: URL(fileURLWithPath: dir + "/grubenv")))
        #expect(bytes.count == 1024)
        #expect(GrubConfig.parseEnvironmentBlock(bytes) == ["saved_entry": "Xen 4.17>Debian, with \\ and > in it", "next_entry": ""])
    }
}
