// SPDX-License-Identifier: Apache-2.0
import Foundation
import Testing
@testable import AEMPCR
@testable import AEMPCRSeal

/// `aem-pcr seal` and `check-boot` on a TPM 1.2 (swtpm behind its own tcsd, the fixture of
/// TPM12SealTests; in that suite, which runs one fixture at a time). Boots are computed by
/// python3 from Vectors/expected.py (tboot's rules), never by aem-pcr: a TPM 1.2 container log
/// with SINIT's launch event, the MLE hash in PCR18 and tboot's events (default TPM 1.2 policy:
/// module 0 to PCR18, the others to PCR19), the same extends done on the TPM.
extension TPM12SealTests {
    static let boot12 = """
        import json, sys, hashlib
        sys.path.insert(0, "Vectors")
        import expected as ref
        e = json.load(open("Vectors/expected.json"))
        p = next(p for p in e["predictions"] if p["name"] == "aem-top.pc.tpm12")
        files = p["module_files"][:2] + [sys.argv[1]]
        mods = [(open(f, "rb").read(), c, False) for f, c in zip(files, p["module_cmdlines"])]
        data, luks = sys.argv[2], sys.argv[3]
        H = lambda b: hashlib.sha1(b).digest()
        tb = open(p["boot_dir"] + "/tboot.gz", "rb").read()
        ev = [[17, 0x402, H(data.encode()).hex()], [18, 0x404, ref.mle_digest(tb, p["tboot_cmdline"], "sha1")]]
        ev += [[x["pcr"], 0x501, x["digest"]] for x in ref.tboot_events(ref.DEF_POLICY_TPM12, mods, "1.2", ["sha1"])]
        pcrs = {13: H(bytes(20) + bytes.fromhex(luks)).hex()}
        for i in (17, 18, 19):
            v = bytes(20)
            for pcr, _, d in ev:
                if pcr == i: v = H(v + bytes.fromhex(d))
            pcrs[i] = v.hex()
        print(json.dumps({"events": ev, "pcrs": pcrs}))
        """

    /// One simulated TPM 1.2 boot with `initramfs` as module 2: the fixture's extends, the log
    /// and tpm2_pcrread-style values written into `dir` under `name`.
    static func boot12(_ tpm: TPM12Fixture, initramfs: String, dir: String, name: String,
                       luks: String = sha1Hex("LUKS header")) throws -> (log: String, pcrs: String) {
        let r = try run("/usr/bin/env", ["python3", "-c", boot12, initramfs, "SINIT-ACM", luks], cwd: Repo.root)
        try #require(r.status == 0, "\(r.stderr)")
        let out = try json(r.stdout)
        let events = out["events"] as! [[Any]]
        var log = [DRTMEvent]()
        var extends = [(13, luks)]
        for e in events {
            let pcr = e[0] as! Int, type = e[1] as! Int, hex = e[2] as! String
            log.append(DRTMEvent(pcr: PCRIndex(rawValue: UInt32(pcr)), type: EventType(rawValue: UInt32(type)), digests: [Digest(.sha1, hex: hex)!]))
            if type != 0x402 { extends.append((pcr, hex)) }
        }
        try tpm.boot("SINIT-ACM", extends)
        let logPath = dir + "/\(name).log", pcrPath = dir + "/\(name).yaml"
        try write(LogWriter.container(log), to: logPath)
        let values = out["pcrs"] as! [String: String]
        try ("sha1:\n" + values.keys.sorted { Int($0)! < Int($1)! }.map { "  \($0): 0x\(values[$0]!)\n" }.joined())
            .write(toFile: pcrPath, atomically: true, encoding: .utf8)
        return (logPath, pcrPath)
    }

    @Test func sealPredictsABootAndTpmUnsealdataOpensIt() throws {
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
        let secrets: [String: [UInt8]] = ["txt": Array("TPM 1.2 secret\n".utf8), "fre": (0..<20).map { UInt8($0 * 7 + 3) }]
        try FileManager.default.createDirectory(atPath: dir + "/aem/aem", withIntermediateDirectories: true)
        for (ext, b) in secrets { try write(b, to: dir + "/aem/aem/secret." + ext) }

        let a = try Self.boot12(tpm, initramfs: initramfs, dir: dir, name: "A")
        // files B: another initramfs under the same name
        try FileManager.default.removeItem(atPath: initramfs)
        try FileManager.default.copyItem(atPath: Repo.path("Vectors/example/boot/initramfs-6.6.48-1.qubes.fc37.x86_64.img"), toPath: initramfs)
        // seal reads the PCRs of the TPM it seals on (through tcsd), never a file
        let sealArgs = ["seal", "--label", "aem", "--aem-dir", dir + "/aem", "--tpm-dir", dir + "/tpm",
                        "--srk-well-known", "--event-log", a.log, "--boot-dir", boot] + LogPredictionTests.entryArgs
        let refused = try aemPCR(sealArgs + ["--pcrs", a.pcrs], env: env)
        #expect(refused.status == 2 && refused.stderr.contains("seal reads the PCRs of the TPM it seals on"), "\(refused.stderr)")
        #expect(!FileManager.default.fileExists(atPath: dir + "/tpm/aem"))
        let first = try aemPCR(sealArgs, env: env)
        try #require(first.status == 0, "\(first.stderr)")
        let seal = try aemPCR(sealArgs + ["--json"], env: env)
        try #require(seal.status == 0, "\(seal.stderr)")
        func prevs() throws -> [String] { try FileManager.default.contentsOfDirectory(atPath: dir + "/tpm").filter { $0.hasPrefix("aem.prev-") } }
        #expect(try prevs().count == 1)
        try SchemaTests().expectFollowsSchema("seal", seal.stdout, "seal --json (TPM 1.2)")
        let names = try FileManager.default.contentsOfDirectory(atPath: dir + "/tpm/aem").sorted()
        #expect(names == ["aem-pcr-prediction.json", "secret.fre.sealed2", "secret.txt.sealed2"])

        func unsealed(_ ext: String) throws -> [UInt8]? {
            let out = dir + "/out." + ext
            try? FileManager.default.removeItem(atPath: out)
            let r = try run(unseal, ["-z", "-i", dir + "/tpm/aem/secret.\(ext).sealed2", "-o", out], env: env)
            guard r.status == 0 else { return nil }
            return [UInt8](try Data(contentsOf: URL(fileURLWithPath: out)))
        }
        for ext in secrets.keys { #expect(try unsealed(ext) == nil, "opened on boot A: \(ext)") }

        // boot B: AEM's tpm_unsealdata -z recovers every secret byte for byte; check-boot agrees
        let b = try Self.boot12(tpm, initramfs: initramfs, dir: dir, name: "B")
        for (ext, plain) in secrets { #expect(try unsealed(ext) == plain, "secret.\(ext)") }
        // from a file: the verdict, the previous set kept; from the TPM (tcsd): removed
        let offline = try aemPCR(["check-boot", "--label", "aem", "--tpm-dir", dir + "/tpm", "--event-log", b.log, "--pcrs", b.pcrs])
        #expect(offline.status == 0, "\(offline.stdout)\(offline.stderr)")
        #expect(try prevs().count == 1)
        let ok = try aemPCR(["check-boot", "--label", "aem", "--tpm-dir", dir + "/tpm", "--event-log", b.log], env: env)
        #expect(ok.status == 0, "\(ok.stdout)\(ok.stderr)")
        #expect(flat(ok.stdout).contains("Verdict: the digestAtRelease of secret.txt.sealed2, secret.fre.sealed2 equals the TPM_COMPOSITE_HASH of the current PCRs over sha1:13,17,18,19")
                || flat(ok.stdout).contains("Verdict: the digestAtRelease of secret.fre.sealed2, secret.txt.sealed2 equals"), "\(ok.stdout)")
        #expect(try prevs().isEmpty)
        let genuine = try Data(contentsOf: URL(fileURLWithPath: dir + "/tpm/aem/aem-pcr-prediction.json"))

        // a tampered initramfs: refused, and named
        let tampered = dir + "/tampered.img"
        let py = try run("/usr/bin/env", ["python3", "-c", "import gzip,sys; d=gzip.decompress(open(sys.argv[1],'rb').read()); open(sys.argv[2],'wb').write(gzip.compress(d + b'evil'))", initramfs, tampered])
        #expect(py.status == 0)
        let t = try Self.boot12(tpm, initramfs: tampered, dir: dir, name: "T")
        for ext in secrets.keys { #expect(try unsealed(ext) == nil, "opened after tampering: \(ext)") }
        let bad = try aemPCR(["check-boot", "--label", "aem", "--tpm-dir", dir + "/tpm", "--event-log", t.log], env: env)
        #expect(bad.status == 1)
        #expect(flat(bad.stdout).contains("PCR19 sha1 sealed DIFFERS") && flat(bad.stdout).contains("module 2"), "\(bad.stdout)")
        #expect(flat(bad.stdout).contains("digestAtRelease of secret."), "\(bad.stdout)")

        // the prediction rewritten to this tampered boot's PCRs (python3): it disagrees with
        // the blobs' digestAtRelease, exit 2, not "the one sealed for"
        let rewrite = try run("/usr/bin/env", ["python3", "-c", """
            import json, re, sys
            rec = json.load(open(sys.argv[1]))
            for line in open(sys.argv[2]).read().splitlines():
                m = re.match(r"^\\s*(\\d+): 0x([0-9a-f]{40})$", line)
                if m: rec["pcrs"]["sha1"][m.group(1)] = m.group(2)
            json.dump(rec, open(sys.argv[1], "w"))
            """, dir + "/tpm/aem/aem-pcr-prediction.json", t.pcrs])
        #expect(rewrite.status == 0, "\(rewrite.stderr)")
        #expect(try Data(contentsOf: URL(fileURLWithPath: dir + "/tpm/aem/aem-pcr-prediction.json")) != genuine)
        let forged = try aemPCR(["check-boot", "--label", "aem", "--tpm-dir", dir + "/tpm", "--event-log", t.log], env: env)
        #expect(forged.status == 2 && !forged.stdout.contains("The boot is the one sealed for"), "\(forged.stdout)\(forged.stderr)")
        #expect(forged.stderr.contains("aem-pcr-prediction.json disagrees with the sealed object") && forged.stderr.contains("digestAtRelease"), "\(forged.stderr)")
        // the same from a file of this boot's PCRs (offline): refused, not "the one sealed for"
        let offlineForged = try aemPCR(["check-boot", "--label", "aem", "--tpm-dir", dir + "/tpm", "--event-log", t.log, "--pcrs", t.pcrs])
        #expect(offlineForged.status == 2 && !offlineForged.stdout.contains("The boot is the one sealed for"), "\(offlineForged.stdout)\(offlineForged.stderr)")
    }
}
