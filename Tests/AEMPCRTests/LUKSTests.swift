// SPDX-License-Identifier: Apache-2.0
import AEMPCR
import AEMPCRSeal
import Foundation
import Testing

/// PCR13 as AEM's initramfs extends it, checked against cryptsetup itself: images made by
/// `cryptsetup luksFormat`, expected values by python3 hashlib over the files `cryptsetup
/// luksHeaderBackup` writes (the same fold `anti-evil-maid-unseal` performs with sha256sum /
/// sha1sum and tpm2_pcrextend / tpm_pcr_extend).
@Suite(.serialized, .needsTool("cryptsetup", package: "cryptsetup-bin")) struct LUKSTests {
    static let cryptsetup = tool("cryptsetup") ?? "/usr/sbin/cryptsetup"

    /// A LUKS image in a regular file with a key file; returns (image, key, uuid).
    func image(_ dir: String, _ name: String, type: String) throws -> (img: String, key: String, uuid: String) {
        let img = dir + "/" + name, key = dir + "/" + name + ".key"
        #expect(try run("/usr/bin/truncate", ["-s", "20M", img]).status == 0)
        try write(Array(repeating: 0x41, count: 32), to: key)
        let f = try run(Self.cryptsetup, ["luksFormat", "--type", type, "--pbkdf", "pbkdf2",
                                          "--pbkdf-force-iterations", "1000", "-q", "--key-file", key, img])
        #expect(f.status == 0, "\(f.stderr)")
        let u = try run(Self.cryptsetup, ["luksUUID", img])
        return (img, key, u.stdout.trimmingCharacters(in: .whitespacesAndNewlines))
    }

    /// PCR13 from python3 hashlib over cryptsetup's own backups of `images`, in `uuids` order
    /// sorted as `sort -u` does; the backups are removed.
    func expected(_ dir: String, _ images: [(uuid: String, img: String)], bank: String) throws -> String {
        var files = [String]()
        for (n, i) in images.sorted(by: { $0.uuid < $1.uuid }).enumerated() {
            let f = "\(dir)/backup-\(n)"
            let b = try run(Self.cryptsetup, ["luksHeaderBackup", i.img, "--header-backup-file", f])
            #expect(b.status == 0, "\(b.stderr)")
            files.append(f)
        }
        defer { for f in files { try? FileManager.default.removeItem(atPath: f) } }
        let py = """
            import hashlib, sys
            h = getattr(hashlib, sys.argv[1]); v = bytes(h().digest_size)
            for f in sys.argv[2:]: v = h(v + h(open(f, 'rb').read()).digest()).digest()
            print(v.hex())
            """
        let r = try run("/usr/bin/env", ["python3", "-c", py, bank] + files)
        #expect(r.status == 0, "\(r.stderr)")
        return r.stdout.trimmingCharacters(in: .whitespacesAndNewlines)
    }

    /// Vectors/example's grub.cfg with its rd.luks.uuid replaced by `cmdline` words.
    func grubCfg(_ dir: String, luks words: String) throws -> String {
        let cfg = try readText("Vectors/example/grub.cfg")
            .replacingOccurrences(of: "rd.luks.uuid=luks-3e1c9b52-8a77-4f0e-b2a1-5d4c6e7f8091", with: words)
        let path = dir + "/grub.cfg"
        try cfg.write(toFile: path, atomically: true, encoding: .utf8)
        return path
    }

    func predict(_ cfg: String, tpm: String, _ extra: [String]) throws -> ProcessResult {
        try aemPCR(["predict", "--tpm", tpm, "--grub-cfg", cfg, "--entry", "0",
                    "--boot-dir", Repo.path("Vectors/example/boot")] + extra + ["--json"])
    }

    func pcr13(_ r: ProcessResult, bank: String) -> String? {
        let o = (try? JSONSerialization.jsonObject(with: Data(r.stdout.utf8))) as? [String: Any]
        return ((o?["pcrs"] as? [String: Any])?[bank] as? [String: Any])?["13"] as? String
    }

    func shmNames() -> Set<String> {
        Set(((try? FileManager.default.contentsOfDirectory(atPath: "/dev/shm")) ?? []).filter { $0.hasPrefix("aem-pcr-luks") })
    }

    @Test func luks2OnTPM20FollowsKeyslotChanges() throws {
        let dir = try tempDir()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let d = try image(dir, "luks2.img", type: "luks2")
        let cfg = try grubCfg(dir, luks: "rd.luks.uuid=luks-\(d.uuid)")
        let before = shmNames()

        let first = try expected(dir, [(d.uuid, d.img)], bank: "sha256")
        let r = try predict(cfg, tpm: "2.0", ["--luks-header", "\(d.uuid)=\(d.img)"])
        #expect(r.status == 0, "\(r.stderr)")
        #expect(pcr13(r, bank: "sha256") == first)
        #expect(pcr13(r, bank: "sha1") == nil)  // tpm2_pcrextend 13:sha256= moves one bank
        if try SchemaTests.haveJSONSchema() {
            try SchemaTests().expectFollowsSchema("predict", r.stdout, "with --luks-header")
            let text = try aemPCR(["predict", "--tpm", "2.0", "--grub-cfg", cfg, "--entry", "0",
                                   "--boot-dir", Repo.path("Vectors/example/boot"), "--luks-header", "\(d.uuid)=\(d.img)"])
            #expect(text.status == 0 && text.stdout.contains("13   sha256  \(first.prefix(16))"), "\(text.stdout)")
        }

        // A second passphrase: the keyslot area changes, and so does PCR13.
        let key2 = dir + "/second.key"
        try write(Array(repeating: 0x42, count: 32), to: key2)
        let add = try run(Self.cryptsetup, ["luksAddKey", "--pbkdf", "pbkdf2", "--pbkdf-force-iterations", "1000",
                                            "-q", "--key-file", d.key, d.img, key2])
        #expect(add.status == 0, "\(add.stderr)")
        let second = try expected(dir, [(d.uuid, d.img)], bank: "sha256")
        #expect(second != first)
        #expect(pcr13(try predict(cfg, tpm: "2.0", ["--luks-header", "\(d.uuid)=\(d.img)"]), bank: "sha256") == second)

        let kill = try run(Self.cryptsetup, ["luksKillSlot", "-q", "--key-file", d.key, d.img, "1"])
        #expect(kill.status == 0, "\(kill.stderr)")
        let third = try expected(dir, [(d.uuid, d.img)], bank: "sha256")
        #expect(third != second)
        #expect(pcr13(try predict(cfg, tpm: "2.0", ["--luks-header", "\(d.uuid)=\(d.img)"]), bank: "sha256") == third)

        // The backup (key material) never stays under a name. LUKSSealTests, run in parallel,
        // read headers too: a name of theirs lives for milliseconds, a leaked one for ever.
        var left = shmNames().subtracting(before)
        for _ in 0..<50 where !left.isEmpty {
            usleep(200_000)
            left = shmNames().subtracting(before)
        }
        #expect(left.isEmpty, "\(left)")
    }

    @Test func luks1OnTPM12AndTwoDevicesSorted() throws {
        let dir = try tempDir()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let a = try image(dir, "luks1.img", type: "luks1")
        let b = try image(dir, "luks2.img", type: "luks2")
        // Both spellings AEM accepts, one UUID twice (sort -u), in an order sorting changes.
        let (hi, lo) = a.uuid > b.uuid ? (a, b) : (b, a)
        let cfg = try grubCfg(dir, luks: "rd_LUKS_UUID=\(hi.uuid) rd.luks.uuid=luks-\(lo.uuid) rd.luks.uuid=\(hi.uuid)")

        let args = ["--luks-header", "\(a.uuid)=\(a.img)", "--luks-header", "luks-\(b.uuid)=\(b.img)"]
        let r12 = try predict(cfg, tpm: "1.2", args)
        #expect(r12.status == 0, "\(r12.stderr)")
        #expect(pcr13(r12, bank: "sha1") == (try expected(dir, [(a.uuid, a.img), (b.uuid, b.img)], bank: "sha1")))
        let r20 = try predict(cfg, tpm: "2.0", args)
        #expect(pcr13(r20, bank: "sha256") == (try expected(dir, [(a.uuid, a.img), (b.uuid, b.img)], bank: "sha256")))

        // A header backup file is a source too, and gives the same value.
        let backup = dir + "/a.backup"
        #expect(try run(Self.cryptsetup, ["luksHeaderBackup", a.img, "--header-backup-file", backup]).status == 0)
        let fromBackup = try predict(cfg, tpm: "1.2", ["--luks-header", "\(a.uuid)=\(backup)", "--luks-header", "\(b.uuid)=\(b.img)"])
        #expect(pcr13(fromBackup, bank: "sha1") == pcr13(r12, bank: "sha1"))
    }

    @Test func noUUIDLeavesPCR13AtZero() throws {
        let dir = try tempDir()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let cfg = try grubCfg(dir, luks: "")
        let r = try predict(cfg, tpm: "2.0", [])
        #expect(r.status == 0, "\(r.stderr)")
        #expect(pcr13(r, bank: "sha256") == String(repeating: "0", count: 64))
        #expect(r.stdout.contains("extends nothing into PCR13"))
    }

    @Test func errorsNameTheUUIDOrPath() throws {
        let dir = try tempDir()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let d = try image(dir, "luks2.img", type: "luks2")
        let other = "0b0b0b0b-1111-4222-8333-444455556666"
        let cfg = try grubCfg(dir, luks: "rd.luks.uuid=\(d.uuid) rd.luks.uuid=\(other)")
        let plain = dir + "/plain.img"
        try write(Array(repeating: 0, count: 1 << 20), to: plain)

        func oneLine(_ r: ProcessResult, _ needle: String, sourceLocation: SourceLocation = #_sourceLocation) {
            #expect(r.status != 0, sourceLocation: sourceLocation)
            let lines = r.stderr.split(separator: "\n")
            #expect(lines.count == 1 && lines[0].hasPrefix("aem-pcr: error: ") && r.stderr.contains(needle),
                    "\(r.stderr)", sourceLocation: sourceLocation)
        }
        // A UUID on the command line with no header given or found.
        oneLine(try predict(cfg, tpm: "2.0", ["--luks-header", "\(d.uuid)=\(d.img)"]), "no LUKS header for \(other)")
        // A path that is not LUKS.
        oneLine(try predict(cfg, tpm: "2.0", ["--luks-header", "\(d.uuid)=\(plain)", "--luks-header", "\(other)=\(d.img)"]),
                "\(plain), given for \(d.uuid), is not a LUKS")
        // A UUID that the command line does not name.
        oneLine(try predict(cfg, tpm: "2.0", ["--luks-header", "\(d.uuid)=\(d.img)", "--luks-header", "\(other)=\(d.img)",
                                              "--luks-header", "feedface-0000-4000-8000-000000000000=\(d.img)"]),
                "feedface-0000-4000-8000-000000000000 is not an rd.luks.uuid")
        // Without --luks-header, a device missing here leaves PCR13 unpredicted, named.
        let r = try predict(cfg, tpm: "2.0", [])
        #expect(r.status == 0)
        #expect(pcr13(r, bank: "sha256") == nil)
        #expect(r.stdout.contains("/dev/disk/by-uuid/\(min(d.uuid, other)) does not exist"))
    }

    /// A device the user cannot read: the error says root (run as nobody with setpriv).
    @Test(.needsTool("setpriv", package: "util-linux")) func noPermissionSaysRoot() throws {
        guard getuid() == 0 else { return }  // only root can drop to nobody
        let dir = try tempDir()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let d = try image(dir, "luks2.img", type: "luks2")
        #expect(chmod(d.img, 0o600) == 0)
        let cfg = try grubCfg(dir, luks: "rd.luks.uuid=\(d.uuid)")
        let r = try run(tool("setpriv")!, ["--reuid=65534", "--regid=65534", "--clear-groups", Repo.binary,
                                          "predict", "--tpm", "2.0", "--grub-cfg", cfg, "--entry", "0",
                                          "--boot-dir", Repo.path("Vectors/example/boot"), "--luks-header", "\(d.uuid)=\(d.img)"])
        #expect(r.status != 0)
        #expect(r.stderr == "aem-pcr: error: cannot read the LUKS header of \(d.uuid) at \(d.img): permission denied (reading a disk's header needs root)\n")
    }

    @Test func missingLibcryptsetupNamesThePackages() throws {
        let dir = try tempDir()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let d = try image(dir, "luks2.img", type: "luks2")
        #expect {
            _ = try LUKSHeaderReader.measure(uuid: d.uuid, path: d.img, bank: .sha256, soname: "libcryptsetup.so.0-missing")
        } throws: { e in
            let s = String(describing: e)
            return s.contains("libcryptsetup.so.0-missing") && s.contains("libcryptsetup12 (Debian)")
                && s.contains("cryptsetup-libs (Fedora)")
        }
    }

    /// The same through the command: libcryptsetup made unloadable in a private mount namespace
    /// (/dev/null bound over the library file): one line naming both packages.
    @Test(.needsTool("unshare", package: "util-linux")) func missingLibcryptsetupThroughTheCommand() throws {
        guard getuid() == 0 else { return }  // mounting needs root
        let lib = try run("/usr/bin/env", ["python3", "-c", "import ctypes.util, os, sys; n = ctypes.util.find_library('cryptsetup'); print(next(os.path.realpath(os.path.join(d, n)) for d in ['/usr/lib/x86_64-linux-gnu', '/lib/x86_64-linux-gnu', '/usr/lib64', '/usr/lib'] if n and os.path.exists(os.path.join(d, n))))"])
        let path = lib.stdout.trimmingCharacters(in: .whitespacesAndNewlines)
        guard lib.status == 0, !path.isEmpty else { Issue.record("libcryptsetup not found: \(lib.stderr)"); return }
        let dir = try tempDir()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let d = try image(dir, "luks2.img", type: "luks2")
        let cfg = try grubCfg(dir, luks: "rd.luks.uuid=\(d.uuid)")
        let r = try run(tool("unshare")!, ["--mount", "--propagation", "private", "/bin/sh", "-c", "mount --bind /dev/null \"$1\" && shift && exec \"$@\"", "sh", path,
                                          Repo.binary, "predict", "--tpm", "2.0", "--grub-cfg", cfg, "--entry", "0",
                                          "--boot-dir", Repo.path("Vectors/example/boot"), "--luks-header", "\(d.uuid)=\(d.img)"])
        #expect(r.status != 0)
        #expect(r.stderr == "aem-pcr: error: cannot load libcryptsetup.so.12, which reads LUKS headers as cryptsetup luksHeaderBackup does: install libcryptsetup12 (Debian) or cryptsetup-libs (Fedora)\n", "\(r.stderr)")
    }

    /// The library's fold and command-line parsing against python3 and AEM's getparams rules.
    @Test func foldAndCommandLine() throws {
        #expect(LUKSMeasurement.uuids(cmdline: Array("placeholder root=/x rd.luks.uuid=luks-b rd_LUKS_UUID=a rd.luks.uuid=b xrd.luks.uuid=c".utf8)) == ["a", "b"])
        let h1 = MultiHasher.hash(.sha256, Array("one".utf8)), h2 = MultiHasher.hash(.sha256, Array("two".utf8))
        let v = LUKSMeasurement.fold([.init(uuid: "a", source: "", backupSize: 0, digest: h1),
                                      .init(uuid: "b", source: "", backupSize: 0, digest: h2)], bank: .sha256)
        let py = try run("/usr/bin/env", ["python3", "-c", """
            import hashlib; s = lambda b: hashlib.sha256(b).digest()
            print(s(s(bytes(32) + s(b'one')) + s(b'two')).hex())
            """])
        #expect(v.hex == py.stdout.trimmingCharacters(in: .whitespacesAndNewlines))
    }
}

/// Which PCR13 seal uses: the model checked against the TPM's value first.
@Suite struct LUKSSealChoiceTests {
    static func digest(_ s: String) -> Digest { MultiHasher.hash(.sha256, Array(s.utf8)) }
    static func prediction(_ uuids: [String], _ headers: [String]?) -> LUKSPrediction {
        let extends = (headers ?? []).enumerated().map { LUKSMeasurement.Extend(uuid: uuids[$0.offset], source: "", backupSize: 0, digest: digest($0.element)) }
        return LUKSPrediction(bank: .sha256, commandLine: "test", uuids: uuids, extends: extends,
                              value: headers == nil ? nil : LUKSMeasurement.fold(extends, bank: .sha256),
                              notPredicted: headers == nil ? "no header" : nil, notes: [])
    }
    /// PCR13 as tpm2_pcrextend leaves it, from python3 hashlib.
    static func python(_ headers: [String]) throws -> Digest {
        let r = try run("/usr/bin/env", ["python3", "-c", """
            import hashlib, sys; s = lambda b: hashlib.sha256(b).digest(); v = bytes(32)
            for h in sys.argv[1:]: v = s(v + s(h.encode()))
            print(v.hex())
            """] + headers)
        return Digest(.sha256, hex: r.stdout.trimmingCharacters(in: .whitespacesAndNewlines))!
    }

    @Test func modelHoldsSoThePredictionIsSealed() throws {
        let now = try Self.python(["old header"])
        let choice = AEMSealPlan.pcr13(now: now, current: Self.prediction(["u"], ["old header"]),
                                       next: Self.prediction(["u"], ["new header"]))
        guard case .predicted(let v, _) = choice else { Issue.record("\(choice)"); return }
        #expect(v == (try Self.python(["new header"])))
    }

    /// No record and a mismatch: refused, saying what to run (it kept PCR13 as now before the
    /// record existed, which AEM could not unseal after a keyslot change).
    @Test func modelFailsWithoutRecordRefusesSayingWhatToRun() throws {
        let now = try Self.python(["header at boot"])
        for next in [Self.prediction(["u"], ["header now"]), Self.prediction(["u", "w"], ["header now", "x"])] {
            let c = AEMSealPlan.pcr13(now: now, current: Self.prediction(["u"], ["header now"]), next: next,
                                      record: nil, recordPath: "/r")
            guard case .refused(let r) = c else { Issue.record("\(c)"); return }
            #expect(r.contains("a header changed since this boot") && r.contains("/r does not exist")
                    && r.contains("run sudo aem-pcr check-boot or aem-pcr seal before changing a LUKS header"), "\(r)")
        }
    }

    /// A keyslot changed since this boot: the record made while the headers folded to PCR13
    /// verifies the model, the changed UUID is named, and the next boot's header is sealed.
    @Test func recordVerifiesTheModelAfterAKeyslotChange() throws {
        let now = try Self.python(["a at boot", "b"])
        let boot = LUKSHeaderRecord(boot: Self.prediction(["a", "b"], ["a at boot", "b"]).extends)
        let afterAddKey = Self.prediction(["a", "b"], ["a now", "b"])
        let c = AEMSealPlan.pcr13(now: now, current: afterAddKey, next: afterAddKey, record: .record(boot), recordPath: "/r")
        guard case .predicted(let v, let why) = c else { Issue.record("\(c)"); return }
        #expect(v == (try Self.python(["a now", "b"])))
        #expect(why.contains("recorded at this boot in /r (a, b) fold to the TPM's PCR13 sha256; changed since: the LUKS header of a;"), "\(why)")
        // Read back from its text, the same record.
        #expect(LUKSHeaderRecord.parse(boot.render()) == .record(boot))

        // A record of an earlier boot (its fold is not PCR13 now) is ignored, said so.
        let stale = LUKSHeaderRecord(boot: Self.prediction(["a", "b"], ["a before", "b"]).extends)
        let s = AEMSealPlan.pcr13(now: now, current: afterAddKey, next: afterAddKey, record: .record(stale), recordPath: "/r")
        guard case .refused(let r) = s else { Issue.record("\(s)"); return }
        let before = try Self.python(["a before", "b"]).hex
        #expect(r.contains("/r is of an earlier boot (its headers fold to \(before), not to PCR13 now): ignored"), "\(r)")
        // One damaged: ignored, named.
        let d = AEMSealPlan.pcr13(now: now, current: afterAddKey, next: afterAddKey,
                                  record: LUKSHeaderRecord.parse(LUKSHeaderRecord.format + "\nboot sha256 a 12\n"), recordPath: "/r")
        guard case .refused(let r2) = d else { Issue.record("\(d)"); return }
        #expect(r2.contains("/r cannot be used (line 2 is not 'boot|sealed BANK UUID HEX'): ignored"), "\(r2)")
    }

    @Test func notPredictedKeepsNow() throws {
        let now = try Self.python(["h"])
        let c = AEMSealPlan.pcr13(now: now, current: nil, next: Self.prediction(["u"], nil))
        guard case .current(let v, let why) = c else { Issue.record("\(c)"); return }
        #expect(v == now && why.contains("no header"))
    }
}

/// seal on swtpm with PCR13 extended as AEM's initramfs does (H(cryptsetup's header backup)).
@Suite(.serialized, .needsTool("cryptsetup", package: "cryptsetup-bin")) struct LUKSSealTests {
    /// H(backup) from cryptsetup and python3 hashlib; the backup is removed.
    func headerHash(_ img: String, _ dir: String) throws -> String {
        let f = dir + "/hb-" + UUID().uuidString
        defer { try? FileManager.default.removeItem(atPath: f) }
        #expect(try run(LUKSTests.cryptsetup, ["luksHeaderBackup", img, "--header-backup-file", f]).status == 0)
        let r = try run("/usr/bin/env", ["python3", "-c", "import hashlib,sys; print(hashlib.sha256(open(sys.argv[1],'rb').read()).hexdigest())", f])
        return r.stdout.trimmingCharacters(in: .whitespacesAndNewlines)
    }

    @Test func sealChecksTheModelThenSealsPCR13() throws {
        guard let m = try SealTests.Machine() else { return }
        let t = LUKSTests()
        let d = try t.image(m.dir, "disk.img", type: "luks2")
        // The simulated launch measures the entry's command line with this disk's UUID.
        let bootJSON = m.dir + "/boot.json"
        let g = try run("/usr/bin/env", ["python3", "-c", """
            import json, os, sys
            root, out, uuid = sys.argv[1:]
            exp = json.load(open(os.path.join(root, "Vectors", "expected.json")))
            p = next(p for p in exp["predictions"] if p["name"].endswith("tpm20-embedded"))
            old = "rd.luks.uuid=luks-3e1c9b52-8a77-4f0e-b2a1-5d4c6e7f8091"
            assert any(old in c for c in p["module_cmdlines"])
            json.dump({"tboot": os.path.join(root, p["boot_dir"], "tboot.gz"), "tboot_cmdline": p["tboot_cmdline"],
                       "modules": [{"file": os.path.join(root, f), "cmdline": c.replace(old, "rd.luks.uuid=luks-" + uuid)}
                                   for f, c in zip(p["module_files"], p["module_cmdlines"])]}, open(out, "w"))
            """, Repo.root, bootJSON, d.uuid])
        #expect(g.status == 0, "\(g.stderr)")
        // A boot whose initramfs extends this disk's header into PCR13.
        try m.powerCycle()
        let log = try m.tpm.boot(["--policy", m.policy, "--boot", bootJSON], log: "L.log")
        let x = try run(tool("tpm2_pcrextend")!, ["13:sha256=" + (try headerHash(d.img, m.dir))], env: m.env)
        #expect(x.status == 0, "\(x.stderr)")
        let cmdline = m.dir + "/cmdline"
        try "placeholder root=/dev/mapper/qubes_dom0-root rd.luks.uuid=luks-\(d.uuid) quiet\n".write(toFile: cmdline, atomically: true, encoding: .utf8)
        let cfg = try t.grubCfg(m.dir, luks: "rd.luks.uuid=luks-\(d.uuid)")
        let record = m.dir + "/state/luks-headers"
        func sealArgs(_ log: String) -> [String] {
            m.sealArguments(["--luks-header", "\(d.uuid)=\(d.img)", "--current-cmdline", cmdline, "--luks-record", record], log: log)
                .map { $0 == "Vectors/example/grub.cfg" ? cfg : $0 }
        }
        /// A reboot: the DRTM launch, then AEM's initramfs extending PCR13 with H(backup) as
        /// computed by cryptsetup and python3 from the header as it is now.
        func reboot(_ name: String) throws -> String {
            // An orderly shutdown, as the OS does: a TPM 2.0 started without one counts a
            // dictionary-attack failure, and five reboots would lock it out.
            let down = try run(tool("tpm2_shutdown")!, ["-c"], env: m.env)
            #expect(down.status == 0, "\(down.stderr)")
            try m.powerCycle()
            let l = try m.tpm.boot(["--policy", m.policy, "--boot", bootJSON], log: name)
            let e = try run(tool("tpm2_pcrextend")!, ["13:sha256=" + (try headerHash(d.img, m.dir))], env: m.env)
            #expect(e.status == 0, "\(e.stderr)")
            return l
        }
        func slot(_ args: [String]) throws {
            // luksAddKey DEVICE NEWKEYFILE; luksKillSlot DEVICE SLOT
            let add = args[0] == "luksAddKey"
            let r = try run(LUKSTests.cryptsetup, [args[0]] + (add ? ["--pbkdf", "pbkdf2", "--pbkdf-force-iterations", "1000"] : [])
                            + ["-q", "--key-file", d.key, d.img] + (add ? [d.key] : Array(args.dropFirst())))
            #expect(r.status == 0, "\(r.stderr)")
        }
        // The model holds: the predicted PCR13 is sealed, and AEM unseals after the next boot.
        // The digests of this boot's header are recorded (python3's, not aem-pcr's).
        let h1 = try headerHash(d.img, m.dir)
        // Step 1 of the manual's walkthrough: a dry run records them, sealing nothing.
        let setBefore = try? m.snapshot(m.sealed)
        let dry = try aemPCR(sealArgs(log) + ["--dry-run"])
        #expect(dry.status == 0 && (try? String(contentsOfFile: record, encoding: .utf8)) == "\(LUKSHeaderRecord.format)\nboot sha256 \(d.uuid) \(h1)\n",
                "\(dry.stderr)")
        #expect((try? m.snapshot(m.sealed)) == setBefore)
        let s = try aemPCR(sealArgs(log))
        #expect(s.status == 0, "\(s.stderr)")
        #expect(s.stderr.contains("folded give the TPM's PCR13"), "\(s.stderr)")
        let recorded = try String(contentsOfFile: record, encoding: .utf8)
        #expect(recorded.contains("boot sha256 \(d.uuid) \(h1)\n"), "\(recorded)")
        let log2 = try reboot("L2.log")
        #expect(try m.unsealWithAEM() == m.secretBytes)

        // A passphrase added since this boot: the headers read now no longer give PCR13, the
        // record does; the seal names the changed header and pre-seals the new one.
        try slot(["luksAddKey"])
        let h2 = try headerHash(d.img, m.dir)
        // diff shows PCR13 per UUID: this boot's header (the record's) → the next boot's.
        var diffArgs = Array(sealArgs(log2).dropFirst())
        for opt in ["--label", "--aem-dir", "--tpm-dir", "--srk-password-file"] {
            if let i = diffArgs.firstIndex(of: opt) { diffArgs.removeSubrange(i...i + 1) }
        }
        let diff = try aemPCR(["diff"] + diffArgs + ["--json"])
        #expect(diff.status == 0, "\(diff.stderr)")
        let luks = ((try? JSONSerialization.jsonObject(with: Data(diff.stdout.utf8))) as? [String: Any])?["luks"] as? [String: Any]
        let tpm13 = try run(tool("tpm2_pcrread")!, ["sha256:13", "-o", m.dir + "/pcr13.bin"], env: m.env)
        #expect(tpm13.status == 0)
        let tpm13hex = Data(try Data(contentsOf: URL(fileURLWithPath: m.dir + "/pcr13.bin"))).map { String(format: "%02x", $0) }.joined()
        #expect(luks?["current"] as? String == tpm13hex, "\(diff.stdout)")
        let rows = luks?["headers"] as? [[String: Any]] ?? []
        #expect(rows.count == 1 && rows.first?["uuid"] as? String == d.uuid && rows.first?["current"] as? String == h1
                && rows.first?["predicted"] as? String == h2 && rows.first?["changed"] as? Bool == true, "\(diff.stdout)")
        if try SchemaTests.haveJSONSchema() { try SchemaTests().expectFollowsSchema("diff", diff.stdout, "with PCR13") }
        let diffText = try aemPCR(["diff"] + diffArgs)
        #expect(flat(diffText.stdout).contains("the LUKS header of \(d.uuid): changes"), "\(diffText.stdout)")

        let added = try aemPCR(sealArgs(log2))
        #expect(added.status == 0, "\(added.stderr)")
        #expect(added.stderr.contains("changed since: the LUKS header of \(d.uuid);"), "\(added.stderr)")
        #expect(added.stdout.contains("PCR13 sha256  predicted"), "\(added.stdout)")
        let log3 = try reboot("L3.log")
        #expect(try m.unsealWithAEM() == m.secretBytes)
        // check-boot confirms the boot and records its header.
        let c = try aemPCR(["check-boot", "--label", "aem", "--tpm-dir", m.tpmDir, "--event-log", log3, "--tcti", m.tpm.tcti,
                            "--luks-header", "\(d.uuid)=\(d.img)", "--current-cmdline", cmdline, "--luks-record", record])
        #expect(c.status == 0, "\(c.stdout)\(c.stderr)")
        #expect(try String(contentsOfFile: record, encoding: .utf8).contains("boot sha256 \(d.uuid) \(h2)\n"))

        // A keyslot killed: the same, across luksKillSlot.
        try slot(["luksKillSlot", "1"])
        let killed = try aemPCR(sealArgs(log3))
        #expect(killed.status == 0 && killed.stderr.contains("changed since: the LUKS header of \(d.uuid);"), "\(killed.stdout)\(killed.stderr)")
        let log4 = try reboot("L4.log")
        #expect(try m.unsealWithAEM() == m.secretBytes)

        // After the seal, the header changed once more: check-boot names it.
        let sealedAgain = try aemPCR(sealArgs(log4))
        #expect(sealedAgain.status == 0, "\(sealedAgain.stderr)")
        try slot(["luksAddKey"])
        let log5 = try reboot("L5.log")
        #expect(try m.unsealWithAEM() == nil)
        let named = try aemPCR(["check-boot", "--label", "aem", "--tpm-dir", m.tpmDir, "--event-log", log5, "--tcti", m.tpm.tcti,
                                "--luks-header", "\(d.uuid)=\(d.img)", "--current-cmdline", cmdline, "--luks-record", record])
        #expect(named.status == 1 && flat(named.stdout).contains("PCR13: the LUKS header of \(d.uuid) changed since the seal"), "\(named.stdout)\(named.stderr)")

        // Without the digests the seal recorded, check-boot says it cannot tell.
        let unknown = try aemPCR(["check-boot", "--label", "aem", "--tpm-dir", m.tpmDir, "--event-log", log5, "--tcti", m.tpm.tcti,
                                  "--luks-header", "\(d.uuid)=\(d.img)", "--current-cmdline", cmdline, "--luks-record", m.dir + "/other/luks-headers"])
        let squeezed = { (s: String) in s.filter { !$0.isWhitespace } }  // a long path is wrapped mid-word
        #expect(unknown.status == 1 && squeezed(unknown.stdout).contains(squeezed("PCR13 differs, and which LUKS header changed cannot be told: \(m.dir)/other/luks-headers holds no digests of the headers the seal predicted PCR13 from")),
                "\(unknown.stdout)\(unknown.stderr)")

        // No record of this boot and a header changed since: refused in one line saying what to run.
        try FileManager.default.removeItem(atPath: record)
        try slot(["luksKillSlot", "1"])
        let refused = try aemPCR(sealArgs(log5))
        #expect(refused.status != 0)
        #expect(refused.stderr.split(separator: "\n").count == 1 && refused.stderr.hasPrefix("aem-pcr: error: PCR13: the current boot's LUKS headers folded give")
                && refused.stderr.contains("\(record) does not exist") && refused.stderr.contains("run sudo aem-pcr check-boot or aem-pcr seal before changing a LUKS header"),
                "\(refused.stderr)")
        // A record of an earlier boot is ignored, said in the same line.
        try "\(LUKSHeaderRecord.format)\nboot sha256 \(d.uuid) \(h1)\n".write(toFile: record, atomically: true, encoding: .utf8)
        let stale = try aemPCR(sealArgs(log5))
        #expect(stale.status != 0 && stale.stderr.contains("\(record) is of an earlier boot"), "\(stale.stderr)")
    }
}

/// The same on a TPM 1.2 (swtpm behind tcsd, TPM12SealTests' fixture, one at a time): PCR13
/// extended with SHA-1 of cryptsetup's backup, as AEM's tpm_pcr_extend does; after luksAddKey
/// the record verifies the model and tpm_unsealdata opens the secret at the next boot.
extension TPM12SealTests {
    @Test(.needsTool("cryptsetup", package: "cryptsetup-bin")) func luksKeyslotChangePreSealedOnTPM12() throws {
        guard let unseal = tool("tpm_unsealdata"), tool("tcsd") != nil, tool("swtpm") != nil else { return }
        guard let tpm = try TPM12Fixture.start() else { return }
        defer { tpm.stop() }
        let env = ["TSS_TCSD_PORT": tpm.tcsdPort]
        let dir = try tempDir()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let boot = dir + "/boot"
        try FileManager.default.createDirectory(atPath: boot, withIntermediateDirectories: true)
        for f in try FileManager.default.contentsOfDirectory(atPath: Repo.path("Vectors/example/boot")) {
            try FileManager.default.copyItem(atPath: Repo.path("Vectors/example/boot/" + f), toPath: boot + "/" + f)
        }
        let initramfs = boot + "/initramfs-6.6.63-1.qubes.fc37.x86_64.img"
        try FileManager.default.createDirectory(atPath: dir + "/aem/aem", withIntermediateDirectories: true)
        let secret = Array("TPM 1.2 secret across luksAddKey\n".utf8)
        try write(secret, to: dir + "/aem/aem/secret.txt")
        // The example entry's rd.luks.uuid, read from this image.
        let d = try LUKSTests().image(dir, "disk.img", type: "luks1")
        let uuid = "3e1c9b52-8a77-4f0e-b2a1-5d4c6e7f8091"
        let cmdline = dir + "/cmdline"
        try "root=/dev/mapper/qubes_dom0-root rd.luks.uuid=luks-\(uuid)\n".write(toFile: cmdline, atomically: true, encoding: .utf8)
        let record = dir + "/state/luks-headers"
        func sha1OfBackup() throws -> String {
            let f = dir + "/backup"
            defer { try? FileManager.default.removeItem(atPath: f) }
            #expect(try run(LUKSTests.cryptsetup, ["luksHeaderBackup", d.img, "--header-backup-file", f]).status == 0)
            return try run("/usr/bin/env", ["python3", "-c", "import hashlib,sys; print(hashlib.sha1(open(sys.argv[1],'rb').read()).hexdigest())", f])
                .stdout.trimmingCharacters(in: .whitespacesAndNewlines)
        }
        func sealArgs(_ log: String) -> [String] {
            ["seal", "--label", "aem", "--aem-dir", dir + "/aem", "--tpm-dir", dir + "/tpm", "--srk-well-known", "--event-log", log,
             "--boot-dir", boot, "--luks-header", "\(uuid)=\(d.img)", "--current-cmdline", cmdline, "--luks-record", record] + LogPredictionTests.entryArgs
        }
        let h1 = try sha1OfBackup()
        let a = try Self.boot12(tpm, initramfs: initramfs, dir: dir, name: "A", luks: h1)
        let first = try aemPCR(sealArgs(a.log) + ["--dry-run"], env: env)
        #expect(first.status == 0 && (try? String(contentsOfFile: record, encoding: .utf8)) == "\(LUKSHeaderRecord.format)\nboot sha1 \(uuid) \(h1)\n",
                "\(first.stderr)")

        let add = try run(LUKSTests.cryptsetup, ["luksAddKey", "--pbkdf", "pbkdf2", "--pbkdf-force-iterations", "1000", "-q", "--key-file", d.key, d.img, d.key])
        #expect(add.status == 0, "\(add.stderr)")
        let h2 = try sha1OfBackup()
        #expect(h2 != h1)
        let s = try aemPCR(sealArgs(a.log), env: env)
        #expect(s.status == 0 && s.stderr.contains("changed since: the LUKS header of \(uuid);"), "\(s.stderr)")
        _ = try Self.boot12(tpm, initramfs: initramfs, dir: dir, name: "B", luks: h2)
        let out = dir + "/out.txt"
        let r = try run(unseal, ["-z", "-i", dir + "/tpm/aem/secret.txt.sealed2", "-o", out], env: env)
        #expect(r.status == 0, "\(r.stderr)")
        #expect((try? [UInt8](Data(contentsOf: URL(fileURLWithPath: out)))) == secret)
    }
}
