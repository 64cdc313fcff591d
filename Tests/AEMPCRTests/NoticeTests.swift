import Foundation
import Testing
@testable import AEMPCR

/// `aem-pcr notice`, the package hooks' command: exit 0 always, writes only its state directory,
/// names the PCRs an updated file changes (TPM 1.2 legacy: Xen and the MLE hash → PCR18, kernel
/// and initramfs → PCR19; TPM 2.0: everything → PCR17; SPEC.md §3's table).
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
        // A grub.cfg without AEM entries: nothing to say.
        try "menuentry 'Debian GNU/Linux' {\n  linux /vmlinuz root=/dev/sda1\n}\n".write(toFile: s.dir + "/plain.cfg", atomically: true, encoding: .utf8)
        let plain = try aemPCR(["notice", "--grub-cfg", s.dir + "/plain.cfg", "--state-dir", s.state])
        #expect(plain.status == 0 && plain.stdout.isEmpty && plain.stderr.isEmpty, "\(plain.stdout)\(plain.stderr)")
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
}
