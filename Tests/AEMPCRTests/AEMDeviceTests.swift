// SPDX-License-Identifier: Apache-2.0
import Foundation
import Testing
@testable import AEMPCR
@testable import AEMPCRSeal

/// The copy of the sealed set on AEM's boot device (issue 21, item 1): found as
/// qubes-antievilmaid 4.2.0's anti-evil-maid-seal finds it (aem.uuid=, else
/// /dev/disk/by-label/LABEL), its mount point from /proc/self/mountinfo, the TPM ID as
/// qubes-trousers-changer's trousers_changer_identify names it (/var/lib/tpm -> tpms/ID), the set
/// written to MOUNT/aem/tpms/ID/LABEL as synctpms copies it.
@Suite(.serialized) struct AEMDeviceTests {
    static let id = "6c1e2f0a9b8d7c6e5f4a3b2c1d0e9f8a7b6c5d4e"

    // MARK: - /proc/self/mountinfo

    /// proc(5)'s example line, and one without optional fields.
    @Test func mountInfoLinesAsProcDocumentsThem() {
        let e = MountInfoEntry.parseLine(Array("36 35 98:0 /mnt1 /mnt2 rw,noatime master:1 - ext3 /dev/root rw,errors=continue".utf8))
        #expect(e == MountInfoEntry(major: 98, minor: 0, root: "/mnt1", mountPoint: "/mnt2", options: ["rw", "noatime"],
                                    fsType: "ext3", source: "/dev/root"))
        let f = MountInfoEntry.parseLine(Array("66 46 7:0 / /tmp/x\\040y ro,relatime - ext4 /dev/loop0 rw".utf8))
        #expect(f?.mountPoint == "/tmp/x y" && f?.readOnly == true && f?.major == 7 && f?.minor == 0)
        // an optional field named "-" is impossible; a line cut short names nothing
        #expect(MountInfoEntry.parseLine(Array("36 35 98:0 /mnt1 /mnt2 rw,noatime master:1 -".utf8)) == nil)
        #expect(MountInfoEntry.parseLine(Array("36 35 98 /mnt1 /mnt2 rw - ext3 /dev/root rw".utf8)) == nil)
        // glibc's makedev (python3's os.makedev gives the reference)
        let r = try? run("/usr/bin/env", ["python3", "-c", "import os; print(os.makedev(259, 1048577), os.makedev(7, 0))"])
        #expect(r?.stdout.split(separator: " ").map { UInt64($0.trimmingCharacters(in: .whitespacesAndNewlines)) } == [MountInfoEntry.makedev(259, 1048577), MountInfoEntry.makedev(7, 0)])
    }

    /// The kernel's own escapes: a tmpfs mounted (in a private mount namespace) on a directory
    /// whose name holds a space, a tab, a newline and a backslash; the line the kernel writes
    /// must give that name back.
    @Test(.needs("root and unshare -m (util-linux)", geteuid() == 0 && tool("unshare") != nil))
    func mountInfoEscapesAsTheKernelWritesThem() throws {
        let dir = try tempDir()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let odd = dir + "/a b\tc\nd\\e"
        try FileManager.default.createDirectory(atPath: odd, withIntermediateDirectories: false)
        let r = try run(tool("unshare")!, ["-m", "sh", "-c", "mount -t tmpfs none \"$1\" && cat /proc/self/mountinfo", "sh", odd])
        try #require(r.status == 0, "\(r.stderr)")
        #expect(r.stdout.contains("\\040") && r.stdout.contains("\\011") && r.stdout.contains("\\012") && r.stdout.contains("\\134"))
        let entries = MountInfoEntry.parse(Array(r.stdout.utf8))
        #expect(entries.contains { $0.mountPoint == odd && $0.fsType == "tmpfs" && $0.root == "/" }, "\(r.stdout)")
    }

    // MARK: - the TPM directory as trousers_changer_identify makes it

    @Test func tpmDirectoryAsTrousersChangerLinksIt() throws {
        let dir = try tempDir()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try FileManager.default.createDirectory(atPath: dir + "/tpms/" + Self.id, withIntermediateDirectories: true)
        // trousers_changer_identify's own command: ln -s "${TPM_DIR##*/}s/$1" "$TPM_DIR"
        #expect(try run("/bin/ln", ["-s", "tpms/" + Self.id, dir + "/tpm"]).status == 0)
        let t = try AEMTPMDirectory.resolve(dir + "/tpm/")
        #expect(t == AEMTPMDirectory(given: dir + "/tpm", real: dir + "/tpms/" + Self.id, tpmID: Self.id))
        #expect(try AEMTPMDirectory.resolve(dir + "/tpms/" + Self.id).tpmID == Self.id)
        #expect(try AEMTPMDirectory.resolve(dir + "/tpms").tpmID == nil)
        #expect(try AEMTPMDirectory.resolve(dir + "/absent").tpmID == nil)
        // a link elsewhere is no TPM ID: refused, naming what to do
        #expect(try run("/bin/ln", ["-s", "/etc", dir + "/other"]).status == 0)
        #expect(throws: CodedError.self) { try AEMTPMDirectory.resolve(dir + "/other") }
        do { _ = try AEMTPMDirectory.resolve(dir + "/other") } catch let e as CodedError {
            #expect(e.reason.contains("not AEM's 'others/ID'") && e.reason.contains("--tpm-dir"))
        }
    }

    // MARK: - finding the device

    @Test(.needsTool("mkfs.ext4", package: "e2fsprogs")) func ext4LabelAsMkfsWritesIt() throws {
        let dir = try tempDir()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let img = dir + "/img"
        #expect(try run("/usr/bin/truncate", ["-s", "2M", img]).status == 0)
        #expect(AEMDeviceCopy.ext4Label(path: img) == nil, "no file system yet")
        let r = try run(tool("mkfs.ext4")!, ["-q", "-F", "-L", "aem.sd", img])
        try #require(r.status == 0, "\(r.stderr)")
        #expect(AEMDeviceCopy.ext4Label(path: img) == "aem.sd")
    }

    /// A scratch /dev/disk whose by-label/LABEL names a real block device (/dev/loop0) and a
    /// mountinfo where that device is mounted: found as AEM finds it, at that mount point.
    @Test(.needs("the block device /dev/loop0", FileManager.default.fileExists(atPath: "/dev/loop0")))
    func deviceFoundByLabelAndItsMountPoint() throws {
        let dir = try tempDir()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let tpm = AEMTPMDirectory(given: "/var/lib/tpm", real: "/var/lib/tpms/" + Self.id, tpmID: Self.id)
        try FileManager.default.createDirectory(atPath: dir + "/disk/by-label", withIntermediateDirectories: true)
        try FileManager.default.createDirectory(atPath: dir + "/mnt point", withIntermediateDirectories: true)
        #expect(try run("/bin/ln", ["-s", "/dev/loop0", dir + "/disk/by-label/aem"]).status == 0)
        var st = stat()
        try #require(stat("/dev/loop0", &st) == 0)
        let (major, minor) = (UInt32((st.st_rdev >> 8) & 0xFFF), UInt32(st.st_rdev & 0xFF))
        let escaped = (dir + "/mnt point").replacingOccurrences(of: " ", with: "\\040")
        let mounts = MountInfoEntry.parse(Array("""
            22 27 0:21 / /proc rw,relatime - proc proc rw
            70 46 \(major):\(minor) /sub /elsewhere rw,relatime - ext4 /dev/loop0 rw
            71 46 \(major):\(minor) / \(escaped) rw,relatime shared:7 - ext4 /dev/loop0 rw

            """.utf8))
        let c = try AEMDeviceCopy.prepare(label: "aem", tpm: tpm, choice: .automatic, readOnly: false,
                                          cmdline: "BOOT_IMAGE=/vmlinuz ro", diskDir: dir + "/disk", mountInfo: mounts)
        #expect(c?.mountPoint == dir + "/mnt point" && c?.mountedHere == false && c?.found == dir + "/disk/by-label/aem")
        #expect(c?.setDir == dir + "/mnt point/aem/tpms/\(Self.id)/aem")
        // mounted read-only only: refused for a seal, named
        let ro = MountInfoEntry.parse(Array("71 46 \(major):\(minor) / /ro ro,relatime - ext4 /dev/loop0 rw\n".utf8))
        #expect(throws: CodedError.self) {
            try AEMDeviceCopy.prepare(label: "aem", tpm: tpm, choice: .automatic, readOnly: false, cmdline: "", diskDir: dir + "/disk", mountInfo: ro)
        }
        #expect(try AEMDeviceCopy.prepare(label: "aem", tpm: tpm, choice: .automatic, readOnly: true, cmdline: "", diskDir: dir + "/disk", mountInfo: ro)?.mountPoint == "/ro")
        // aem.uuid= naming a device that is not labelled aem (here: no file system at all) is
        // passed over for the label's device, as AEM's label check would refuse it
        try FileManager.default.createDirectory(atPath: dir + "/disk/by-uuid", withIntermediateDirectories: true)
        #expect(try run("/bin/ln", ["-s", "/dev/null", dir + "/disk/by-uuid/1234-ABCD"]).status == 0)
        let u = try AEMDeviceCopy.prepare(label: "aem", tpm: tpm, choice: .automatic, readOnly: false,
                                          cmdline: "rd.luks.uuid=x aem.uuid=1234-ABCD quiet", diskDir: dir + "/disk", mountInfo: mounts)
        #expect(u?.found == dir + "/disk/by-label/aem")
        // no TPM ID (a plain --tpm-dir): no copy unless one was asked for
        let plain = AEMTPMDirectory(given: dir + "/tpm", real: dir + "/tpm", tpmID: nil)
        #expect(try AEMDeviceCopy.prepare(label: "aem", tpm: plain, choice: .automatic, readOnly: false, cmdline: "", diskDir: dir + "/disk", mountInfo: mounts) == nil)
        #expect(throws: CodedError.self) {
            try AEMDeviceCopy.prepare(label: "aem", tpm: plain, choice: .mount(dir), readOnly: false, cmdline: "", diskDir: dir + "/disk", mountInfo: mounts)
        }
        #expect(try AEMDeviceCopy.prepare(label: "aem", tpm: tpm, choice: .none, readOnly: false) == nil)
    }

    /// No device: one line saying what to do, whichever way it was looked for.
    @Test func noDeviceSaysWhatToDo() throws {
        let dir = try tempDir()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let tpm = AEMTPMDirectory(given: "/var/lib/tpm", real: "/var/lib/tpms/" + Self.id, tpmID: Self.id)
        for cmdline in ["quiet", "aem.uuid=0f1e2d3c-aaaa-bbbb-cccc-112233445566 quiet"] {
            do {
                _ = try AEMDeviceCopy.prepare(label: "aem", tpm: tpm, choice: .automatic, readOnly: false, cmdline: cmdline, diskDir: dir, mountInfo: [])
                Issue.record("found a device in an empty \(dir)")
            } catch let e as CodedError {
                #expect(e.code == .sealRefused && !e.reason.contains("\n"))
                #expect(e.reason.contains("no AEM device for aem (\(dir)/by-label/aem does not exist)") || e.reason.contains("aem.uuid= on the kernel command line) does not exist"), "\(e.reason)")
                for way in ["--aem-device DEVICE|UUID", "--aem-mount DIR", "--no-aem-device", "nothing was changed"] {
                    #expect(e.reason.contains(way), "\(e.reason)")
                }
            }
        }
        // a named device that is not a block device
        #expect(throws: CodedError.self) {
            try AEMDeviceCopy.prepare(label: "aem", tpm: tpm, choice: .device("/dev/null"), readOnly: false, cmdline: "", diskDir: dir, mountInfo: [])
        }
    }
}

/// Seal and check-boot with AEM's layout on swtpm: /var/lib/tpm as the link tpms/ID, the AEM
/// device a directory (--aem-mount) or, as root, a file-backed ext4 image on a loop device.
extension SealTests {
    static let tpmID = AEMDeviceTests.id

    /// The machine's TPM directory made as trousers_changer_identify makes it.
    static func aemLayout(_ m: Machine) throws -> String {
        try FileManager.default.createDirectory(atPath: m.dir + "/tpms/" + tpmID, withIntermediateDirectories: true)
        #expect(try run("/bin/ln", ["-s", "tpms/" + tpmID, m.tpmDir]).status == 0)
        return m.dir + "/tpms/" + tpmID
    }

    @Test func sealWritesTheSetAndItsCopyOnTheAEMDevice() throws {
        guard let m = try Machine() else { return }
        let real = try Self.aemLayout(m)
        let mount = m.dir + "/aem device"
        let onDevice = mount + "/aem/tpms/\(Self.tpmID)/aem"
        // AEM seals on boot A and copies the set to its device (synctpms)
        try m.aem(["seal", m.srkFile, m.secrets, m.sealed])
        try FileManager.default.createDirectory(atPath: mount + "/aem/tpms/\(Self.tpmID)", withIntermediateDirectories: true)
        try FileManager.default.copyItem(atPath: real + "/aem", toPath: onDevice)

        // without a device, refused before anything is written: the one line says what to do
        let before = try m.snapshot(real + "/aem")
        _ = try m.installNewInitramfs()
        let refused = try m.seal()
        #expect(refused.status == 2, "\(refused.stdout)\(refused.stderr)")
        #expect(refused.stderr.hasPrefix("aem-pcr: error: no AEM device for aem") && refused.stderr.split(separator: "\n").count == 1, "\(refused.stderr)")
        #expect(refused.stderr.contains("--aem-mount DIR") && refused.stderr.contains("--no-aem-device"), "\(refused.stderr)")
        #expect(try m.snapshot(real + "/aem") == before)

        // a dry run without a device: the plan, the refusal in it, exit 0 as the manual says
        let dryNone = try m.seal(["--dry-run"])
        #expect(dryNone.status == 0 && dryNone.stdout.hasPrefix("Would NOT seal")
                && flat(dryNone.stdout).contains("Refused: no AEM device for aem"), "\(dryNone.stdout)\(dryNone.stderr)")
        #expect(try m.snapshot(real + "/aem") == before)
        // a dry run lists both places (each path whole on its line, never cut)
        let dry = try m.seal(["--dry-run", "--aem-mount", mount])
        #expect(dry.status == 0, "\(dry.stderr)")
        #expect(flat(dry.stdout).contains("Files in \(real)/aem (nothing written):") && dry.stdout.contains(real + "/aem"), "\(dry.stdout)")
        #expect(flat(dry.stdout).contains("Files on the AEM device in \(onDevice)"), "\(dry.stdout)")
        #expect(dry.stdout.components(separatedBy: "aem-pcr-prediction.json").count == 3, "listed for both: \(dry.stdout)")
        expectFitsWidth(dry.stdout)
        #expect(try m.snapshot(onDevice) == before)

        // the seal writes both, byte for byte the same, each keeping its previous set
        let r = try m.seal(["--json", "--aem-mount", mount])
        #expect(r.status == 0, "\(r.stderr)")
        try SchemaTests().expectFollowsSchema("seal", r.stdout, "seal --json with the AEM device")
        #expect(r.stdout.contains("\"sealed_dir\": \"\(real)/aem\"") && r.stdout.contains("\"sealed_dir\": \"\(onDevice)\""), "\(r.stdout)")
        let primary = try m.snapshot(real + "/aem"), copy = try m.snapshot(onDevice)
        #expect(primary == copy && primary.keys.contains("key.pub") && primary != before)
        for d in [real, mount + "/aem/tpms/\(Self.tpmID)"] {
            #expect(try FileManager.default.contentsOfDirectory(atPath: d).filter { $0.hasPrefix("aem.prev-") }.count == 1, "\(d)")
        }
        let text = try m.seal(["--aem-mount", mount])
        #expect(text.status == 0 && flat(text.stdout).contains("AEM's unseal reads the copy on the AEM device"), "\(text.stdout)\(text.stderr)")
        // the next step printed names the device as given, quoted for the shell: bash, given
        // the printed lines with printf in place of aem-pcr, prints the words check-boot gets
        let lines = text.stdout.split(separator: "\n")
        let head = try #require(lines.firstIndex { $0.hasPrefix("  aem-pcr check-boot") }, "\(text.stdout)")
        var command = [Substring]()
        for l in lines[head...] { command.append(l); if !l.hasSuffix("\\") { break } }
        let words = try run("/bin/bash", ["-c", "printf '%s\\n' " + command.joined(separator: "\n").dropFirst("  aem-pcr ".count)])
        #expect(words.stdout.split(separator: "\n").map(String.init)
                == ["check-boot", "--label", "aem", "--tpm-dir", m.tpmDir, "--aem-mount", mount, "--tcti", m.tpm.tcti], "\(text.stdout)")

        // the reboot: AEM's unseal, from the device's copy, shows every secret
        try m.powerCycle()
        let logB = try m.boot(log: "B.log", initramfs: m.bootDir + "/" + SealTests.initramfs)
        let out = m.dir + "/unsealed"
        #expect(try m.aem(["unseal", m.srkFile, onDevice, out]).status == 0)
        for (ext, bytes) in m.secretBytes {
            #expect(Array(try Data(contentsOf: URL(fileURLWithPath: out + "/secret." + ext))) == bytes, "secret.\(ext)")
        }

        // a device copy that differs: not confirmed, both previous sets stay
        let check = ["check-boot", "--label", "aem", "--tpm-dir", m.tpmDir, "--event-log", logB, "--tcti", m.tpm.tcti, "--aem-mount", mount]
        try write(Array("not the set\n".utf8), to: onDevice + "/key.pcrs")
        let differs = try aemPCR(check)
        #expect(differs.status == 1 && flat(differs.stdout).contains("key.pcrs differs"), "\(differs.stdout)\(differs.stderr)")
        #expect(try FileManager.default.contentsOfDirectory(atPath: real).filter { $0.hasPrefix("aem.prev-") }.count == 2)
        try write(primary["key.pcrs"]!, to: onDevice + "/key.pcrs")

        // check-boot confirms and removes the previous sets in both places
        let c = try aemPCR(check + ["--json"])
        #expect(c.status == 0, "\(c.stdout)\(c.stderr)")
        try SchemaTests().expectFollowsSchema("check-boot", c.stdout, "check-boot --json with the AEM device")
        for d in [real, mount + "/aem/tpms/\(Self.tpmID)"] {
            #expect(try FileManager.default.contentsOfDirectory(atPath: d) == ["aem"], "\(d)")
        }
    }

    /// As root with unshare: the AEM device a file-backed ext4 image on a loop device. Not
    /// mounted, seal mounts it in a private namespace (unmounted after: nothing in this
    /// namespace's mountinfo); mounted (in a private namespace of the test), seal writes at that
    /// mount point, found in /proc/self/mountinfo.
    @Test(.needs("root, unshare, losetup and mkfs.ext4", geteuid() == 0 && tool("unshare") != nil && tool("losetup") != nil && tool("mkfs.ext4") != nil))
    func sealMountsTheAEMDeviceWhenItIsNotMounted() throws {
        guard let m = try Machine() else { return }
        let real = try Self.aemLayout(m)
        let img = m.dir + "/aem.img"
        #expect(try run("/usr/bin/truncate", ["-s", "8M", img]).status == 0)
        #expect(try run(tool("mkfs.ext4")!, ["-q", "-F", "-L", "aem", img]).status == 0)
        let lo = try run(tool("losetup")!, ["-f", "--show", img])
        try #require(lo.status == 0, "\(lo.stderr)")
        let loop = lo.stdout.trimmingCharacters(in: .whitespacesAndNewlines)
        defer { _ = try? run(tool("losetup")!, ["-d", loop]) }
        let mountsBefore = try String(contentsOfFile: "/proc/self/mountinfo", encoding: .utf8)

        _ = try m.installNewInitramfs()
        let r = try m.seal(["--aem-device", loop])
        #expect(r.status == 0, "\(r.stdout)\(r.stderr)")
        #expect(flat(r.stdout).contains("Files on the AEM device in \(loop):aem/tpms/\(Self.tpmID)/aem (mounted privately for this run):"), "\(r.stdout)")
        #expect(try String(contentsOfFile: "/proc/self/mountinfo", encoding: .utf8) == mountsBefore)
        #expect(try FileManager.default.contentsOfDirectory(atPath: "/run").filter { $0.hasPrefix("aem-pcr-device.") }.isEmpty)
        // what is on the image, read in a namespace of its own
        let cat = "d=$(mktemp -d) && mount -o ro \"$1\" \"$d\" && cd \"$d/aem/tpms/$2/aem\" && sha256sum * && cd / && umount \"$d\" && rmdir \"$d\""
        let onImage = try run(tool("unshare")!, ["-m", "sh", "-c", cat, "sh", loop, Self.tpmID])
        #expect(onImage.status == 0, "\(onImage.stderr)")
        let here = try run("/bin/sh", ["-c", "cd \"$1\" && sha256sum *", "sh", real + "/aem"])
        #expect(onImage.stdout == here.stdout && here.stdout.contains("key.pub"), "\(onImage.stdout) vs \(here.stdout)")

        // mounted already (in the test's own namespace): written there, nothing mounted again
        let mountedRun = "d=$(mktemp -d) && mount \"$1\" \"$d\" && shift && \"$@\"; s=$?; umount \"$d\"; rmdir \"$d\"; exit $s"
        let again = try run(tool("unshare")!, ["-m", "sh", "-c", mountedRun, "sh", loop, Repo.binary] + m.sealArguments(["--json", "--aem-device", loop]), cwd: Repo.root)
        #expect(again.status == 0, "\(again.stderr)")
        #expect(again.stdout.contains("\"found_by\": \"--aem-device\"") && again.stdout.contains("\"mount_point\": \"/tmp/"), "\(again.stdout)")
    }
}

extension SealTests {
    /// TPM 2.0 under tboot's default policy (every module into PCR17): PCR19 stays 00 and AEM's
    /// default SEAL can never seal. The refusal names the two ways out AEM supports, and the
    /// first (SEAL without PCR19 in anti-evil-maid.conf) seals.
    @Test func tpm2DefaultPolicyRefusalNamesTheWaysOut() throws {
        guard let m = try Machine() else { return }
        try m.powerCycle()
        let log = try m.tpm.boot([], log: "default-policy.log")
        let luks = try run(tool("tpm2_pcrextend")!, ["13:sha256=" + (try pyHash("sha256", "LUKS header of this disk"))], env: m.env)
        #expect(luks.status == 0, "\(luks.stderr)")
        var args = m.sealArguments(log: log)
        let i = try #require(args.firstIndex(of: "--policy"))
        args.removeSubrange(i...(i + 1))
        let r = try aemPCR(args)
        #expect(r.status == 2, "\(r.stdout)\(r.stderr)")
        #expect(r.stderr.split(separator: "\n").count == 1 && r.stderr.hasPrefix("aem-pcr: error: PCR19 sha256 would be all 00"), "\(r.stderr)")
        #expect(r.stderr.contains("SEAL=\"--pcr 13 --pcr 17 --pcr 18\" in /etc/anti-evil-maid.conf"), "\(r.stderr)")
        #expect(r.stderr.contains("a custom policy (tb_polgen, written to the TPM's NV) that measures the modules into PCR19"), "\(r.stderr)")
        #expect(!FileManager.default.fileExists(atPath: m.sealed))
        // the first way out
        let conf = m.dir + "/anti-evil-maid.conf"
        try write(Array("SEAL=\"--pcr 13 --pcr 17 --pcr 18\"\n".utf8), to: conf)
        let ok = try aemPCR(args + ["--aem-conf", conf])
        #expect(ok.status == 0, "\(ok.stdout)\(ok.stderr)")
        #expect(try Data(contentsOf: URL(fileURLWithPath: m.sealed + "/key.pcrs")) == Data("sha256:13,17,18\n".utf8))
    }
}
