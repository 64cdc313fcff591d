// SPDX-License-Identifier: Apache-2.0
import Foundation
import Testing
@testable import AEMPCR

/// `aem-pcr seal` and `check-boot` end to end on swtpm (issue 12, "How it is checked"): boot A
/// is simulated by Tests/Scripts/simulate-drtm-boot.py, AEM seals its secrets with its own
/// tpm2-tools commands (Tests/Scripts/aem-tpm2.sh), aem-pcr pre-seals for the files of boot B,
/// the TPM is power-cycled and boot B simulated, and AEM's own unseal commands must recover
/// every secret byte for byte; a tampered initramfs must fail and be named by check-boot.
@Suite(.serialized) struct SealTests {
    static let entry = "AEM Qubes, with Xen hypervisor"
    static let initramfs = "initramfs-6.6.63-1.qubes.fc37.x86_64.img"
    /// tboot's default DA policy (Vectors/expected.py DEF_POLICY_DA) with its "any module"
    /// entry routed to PCR19 (0x13) instead of PCR17, as a policy in TPM NV. With the default
    /// policy a TPM 2.0 launch never extends PCR19, which stays all 00, and AEM's listbadpcrs
    /// (so seal too) refuses to seal to it.
    static let policyPCR19 = "02000b01000000000000000300ff00000000000081130000000000008316001000004000"

    /// One machine: swtpm, AEM's TPM setup, boot A with PCR13 extended, secrets, a copy of the
    /// boot partition whose initramfs can be changed.
    final class Machine {
        let tpm: SwTPM2
        let dir: String
        var bootDir: String { dir + "/boot" }
        var aemDir: String { dir + "/aem" }
        var tpmDir: String { dir + "/tpm" }
        var secrets: String { aemDir + "/aem" }
        var sealed: String { tpmDir + "/aem" }
        var srkFile: String { dir + "/srk-password" }
        var policy: String { dir + "/tboot-policy.pol" }
        var env: [String: String] { ["TPM2TOOLS_TCTI": tpm.tcti] }
        var logA: String = ""
        let secretBytes: [String: [UInt8]] = [
            "txt": Array("Hello from AEM: the secret text\n".utf8),
            "key": (0..<64).map { UInt8(($0 * 73 + 5) & 0xFF) },
            "fre": (0..<20).map { UInt8(($0 * 151 + 9) & 0xFF) },
        ]

        init?() throws {
            for t in ["tpm2_createprimary", "tpm2_evictcontrol", "tpm2_create", "tpm2_load", "tpm2_unseal",
                      "tpm2_policypcr", "tpm2_startauthsession", "tpm2_changeauth", "tpm2_pcrextend", "tpm2_startup",
                      "openssl", "xxd"] where tool(t) == nil { return nil }
            guard let t = try SwTPM2.start() else { return nil }
            tpm = t
            dir = try tempDir()
            try FileManager.default.createDirectory(atPath: bootDir, withIntermediateDirectories: true)
            for f in try FileManager.default.contentsOfDirectory(atPath: Repo.path("Vectors/example/boot")) {
                try FileManager.default.copyItem(atPath: Repo.path("Vectors/example/boot/" + f), toPath: bootDir + "/" + f)
            }
            try FileManager.default.createDirectory(atPath: secrets, withIntermediateDirectories: true)
            for (ext, b) in secretBytes { try write(b, to: secrets + "/secret." + ext) }
            try write(Array("srk pass\n".utf8), to: srkFile)
            try write(Hex.decode(SealTests.policyPCR19)!, to: policy)
            try aem(["setup", "owner pass", srkFile])
            logA = try boot(log: "A.log")
        }

        deinit { try? FileManager.default.removeItem(atPath: dir) }

        /// AEM's commands (Tests/Scripts/aem-tpm2.sh).
        @discardableResult
        func aem(_ args: [String], expectSuccess: Bool = true, sourceLocation: SourceLocation = #_sourceLocation) throws -> ProcessResult {
            let r = try run("/bin/bash", [Repo.path("Tests/Scripts/aem-tpm2.sh")] + args, env: env)
            if expectSuccess { #expect(r.status == 0, "aem-tpm2.sh \(args[0]): \(r.stderr)", sourceLocation: sourceLocation) }
            return r
        }

        /// A measured launch with the initramfs `initramfs` (default: the one of Vectors), then
        /// AEM's initramfs extending PCR13 with the LUKS header as at every boot.
        func boot(log: String, initramfs: String? = nil) throws -> String {
            let path = try tpm.boot(["--policy", policy] + (initramfs.map { ["--replace", "2=\($0)"] } ?? []), log: log)
            let r = try run(tool("tpm2_pcrextend")!, ["13:sha256=" + (try pyHash("sha256", "LUKS header of this disk"))], env: env)
            #expect(r.status == 0, "\(r.stderr)")
            return path
        }

        func powerCycle() throws {
            let i = try run(tool("swtpm_ioctl")!, ["--unix", tpm.control, "-i"])
            #expect(i.status == 0, "\(i.stderr)")
            let s = try run(tool("tpm2_startup")!, ["-c"], env: env)
            #expect(s.status == 0, "\(s.stderr)")
        }

        /// Files B: a different initramfs under the same name in the boot partition.
        func installNewInitramfs() throws -> String {
            let path = bootDir + "/" + SealTests.initramfs
            try? FileManager.default.removeItem(atPath: path)
            try FileManager.default.copyItem(atPath: Repo.path("Vectors/example/boot/initramfs-6.6.48-1.qubes.fc37.x86_64.img"), toPath: path)
            return path
        }

        func seal(_ extra: [String] = [], log: String? = nil, env extraEnv: [String: String] = [:]) throws -> ProcessResult {
            try aemPCR(sealArguments(extra, log: log), env: extraEnv)
        }

        func sealArguments(_ extra: [String] = [], log: String? = nil) -> [String] {
            ["seal", "--label", "aem", "--aem-dir", aemDir, "--tpm-dir", tpmDir, "--srk-password-file", srkFile,
             "--event-log", log ?? logA, "--tcti", tpm.tcti, "--grub-cfg", "Vectors/example/grub.cfg",
             "--entry", SealTests.entry, "--boot-dir", bootDir, "--policy", policy,
             // the simulated boots run tboot with extpol=embedded; the entry's line names none
             "--extpol", "embedded"] + extra
        }

        /// AEM's unseal of every secret; nil when it fails.
        func unsealWithAEM() throws -> [String: [UInt8]]? {
            let out = dir + "/unsealed-" + UUID().uuidString
            let r = try aem(["unseal", srkFile, sealed, out], expectSuccess: false)
            guard r.status == 0 else { return nil }
            var got = [String: [UInt8]]()
            for f in try FileManager.default.contentsOfDirectory(atPath: out) {
                got[String(f.dropFirst("secret.".count))] = Array(try Data(contentsOf: URL(fileURLWithPath: out + "/" + f)))
            }
            return got
        }

        /// The regular files of a directory.
        func snapshot(_ path: String) throws -> [String: [UInt8]] {
            var out = [String: [UInt8]]()
            for f in try FileManager.default.contentsOfDirectory(atPath: path)
            where try FileManager.default.attributesOfItem(atPath: path + "/" + f)[.type] as? FileAttributeType == .typeRegular {
                out[f] = Array(try Data(contentsOf: URL(fileURLWithPath: path + "/" + f)))
            }
            return out
        }
    }

    @Test func preSealedSecretsUnsealWithAEMsCommandsAfterTheNewBoot() throws {
        guard let m = try Machine() else { return }
        // AEM seals on boot A with its own commands; its unseal works on boot A.
        try m.aem(["seal", m.srkFile, m.secrets, m.sealed])
        #expect(try m.unsealWithAEM() == m.secretBytes)
        let old = try m.snapshot(m.sealed)

        // Pre-seal for the new initramfs; nothing changes on a dry run.
        let newInitramfs = try m.installNewInitramfs()
        let dry = try m.seal(["--dry-run"])
        #expect(dry.status == 0, "\(dry.stderr)")
        #expect(dry.stdout.contains("secret.txt.sealed2") && dry.stdout.contains("replaced"))
        expectFitsWidth(dry.stdout)
        #expect(try m.snapshot(m.sealed) == old)
        let r = try m.seal(["--json"])
        #expect(r.status == 0, "\(r.stderr)")
        try SchemaTests().expectFollowsSchema("seal", r.stdout, "seal --json")
        let sealedNow = try m.snapshot(m.sealed)
        #expect(Set(sealedNow.keys) == ["key.pub", "key.priv", "key.pcrs", "secret.txt.sealed2", "secret.key.sealed2",
                                        "secret.fre.sealed2", "aem-pcr-prediction.json"])
        #expect(sealedNow["key.pcrs"] == Array("sha256:13,17,18,19\n".utf8))
        for (name, _) in sealedNow {
            let mode = try FileManager.default.attributesOfItem(atPath: m.sealed + "/" + name)[.posixPermissions] as! Int
            #expect(mode == 0o600, "\(name) is \(String(mode, radix: 8))")
        }
        let prevs = try FileManager.default.contentsOfDirectory(atPath: m.tpmDir).filter { $0.hasPrefix("aem.prev-") }
        #expect(prevs.count == 1)
        if let prev = prevs.first {
            // the old set, and seal's record that lets check-boot remove it
            var kept = try m.snapshot(m.tpmDir + "/" + prev)
            #expect(kept.removeValue(forKey: ".aem-pcr-prev") != nil)
            #expect(kept == old)
        }
        #expect(try FileManager.default.contentsOfDirectory(atPath: m.tpmDir).filter { $0.hasPrefix(".") }.isEmpty)
        // Still boot A: AEM's unseal of the new set fails (sealed to boot B's values).
        #expect(try m.unsealWithAEM() == nil)

        // key.pub has tpm2_create's layout and attributes (only `unique`, H(seed || data), differs)
        let aemPub = Self.publicArea(old["key.pub"] ?? []), ourPub = Self.publicArea(sealedNow["key.pub"] ?? [])
        #expect(aemPub != nil && ourPub != nil)
        #expect(ourPub?.type == aemPub?.type && ourPub?.nameAlg == aemPub?.nameAlg && ourPub?.scheme == aemPub?.scheme)
        #expect(ourPub?.attributes == aemPub?.attributes && ourPub?.attributes == 0x12, "fixedTPM|fixedParent, no userWithAuth")

        // Boot B after a power cycle: AEM's unseal recovers every secret byte for byte.
        try m.powerCycle()
        let logB = try m.boot(log: "B.log", initramfs: newInitramfs)
        #expect(try m.unsealWithAEM() == m.secretBytes)
        // the authPolicy is what tpm2-tools computes from the TPM on boot B
        let polFile = m.dir + "/policyB"
        let cp = try run(tool("tpm2_createpolicy")!, ["--policy-pcr", "-l", "sha256:13,17,18,19", "-L", polFile], env: m.env)
        #expect(cp.status == 0, "\(cp.stderr)")
        #expect(ourPub?.authPolicy == Array(try Data(contentsOf: URL(fileURLWithPath: polFile))))
        _ = try run(tool("tpm2_flushcontext")!, ["-s"], env: m.env)
        // and check-boot confirms it, drops the previous set seal made, and only that: another
        // label's set, a user's directory and one without seal's record stay (the last said)
        let strangers = ["aem.prev-usb2", "aem.prev-notes", "aem.prev-20261130T042700Z"]
        for d in strangers {
            try FileManager.default.createDirectory(atPath: m.tpmDir + "/" + d, withIntermediateDirectories: false)
            try write(Array("keep\n".utf8), to: m.tpmDir + "/" + d + "/key.pub")
        }
        let c = try aemPCR(["check-boot", "--label", "aem", "--tpm-dir", m.tpmDir, "--event-log", logB, "--tcti", m.tpm.tcti])
        #expect(c.status == 0, "\(c.stdout)\(c.stderr)")
        #expect(c.stdout.contains("The boot is the one sealed for") && !c.stdout.contains("resealed"))
        #expect(try FileManager.default.contentsOfDirectory(atPath: m.tpmDir).sorted() == (["aem"] + strangers).sorted())
        // (a long path stays whole on its line; the sentence wraps around it)
        #expect(c.stdout.contains("\(m.tpmDir)/aem.prev-20261130T042700Z:") && flat(c.stdout).contains("Kept \(m.tpmDir)/aem.prev-20261130T042700Z: no .aem-pcr-prev record"), "\(c.stdout)")
        for d in strangers {
            #expect(try FileManager.default.contentsOfDirectory(atPath: m.tpmDir + "/" + d) == ["key.pub"])
            try FileManager.default.removeItem(atPath: m.tpmDir + "/" + d)
        }
        expectFitsWidth(c.stdout)
        // AEM's seal service reseals at this boot, to the same values: still the predicted boot.
        try m.aem(["seal", m.srkFile, m.secrets, m.sealed])
        let c2 = try aemPCR(["check-boot", "--label", "aem", "--tpm-dir", m.tpmDir, "--event-log", logB, "--tcti", m.tpm.tcti])
        #expect(c2.status == 0 && flat(c2.stdout).contains("AEM has resealed"), "\(c2.stdout)\(c2.stderr)")
        // and aem-pcr seals again for the same files (the tampered boot below is checked against it)
        let s2 = try m.seal(log: logB)
        #expect(s2.status == 0, "\(s2.stderr)")

        // A tampered initramfs instead: AEM's unseal fails, check-boot names the initramfs.
        let tampered = m.dir + "/tampered.img"
        let py = try run("/usr/bin/env", ["python3", "-c", "import gzip,sys; d=gzip.decompress(open(sys.argv[1],'rb').read()); open(sys.argv[2],'wb').write(gzip.compress(d + b'evil maid was here'))", newInitramfs, tampered])
        #expect(py.status == 0, "\(py.stderr)")
        try m.powerCycle()
        let logT = try m.boot(log: "T.log", initramfs: tampered)
        #expect(try m.unsealWithAEM() == nil)
        let t = try aemPCR(["check-boot", "--label", "aem", "--tpm-dir", m.tpmDir, "--event-log", logT, "--tcti", m.tpm.tcti])
        #expect(t.status == 1, "\(t.stdout)\(t.stderr)")
        // (the file's path is one word longer than a line: fold never cuts it, so that it can be
        // copied; it stands whole on one line)
        #expect(flat(t.stdout).contains("module 2") && t.stdout.contains(m.bootDir + "/" + SealTests.initramfs), "\(t.stdout)")
        #expect(flat(t.stdout).contains("PCR19 sha256 sealed DIFFERS") || flat(t.stdout).contains("PCR18 sha256 sealed DIFFERS"), "\(t.stdout)")
        expectFitsWidth(t.stdout)
        let tj = try aemPCR(["check-boot", "--json", "--label", "aem", "--tpm-dir", m.tpmDir, "--event-log", logT, "--tcti", m.tpm.tcti])
        #expect(tj.status == 1)
        try SchemaTests().expectFollowsSchema("check-boot", tj.stdout, "check-boot --json (tampered)")

        #expect(tj.stdout.contains("\"matched\": false") && tj.stdout.contains("\"pcrs_from_tpm\": true"))

        // AEM's own seal at boot reseals the set to this boot's PCRs: AEM's key opens on this
        // boot (tpm2_unseal agrees), yet the sealed PCRs are not the predicted ones: not the
        // boot sealed for (exit 1), and the previous set stays.
        try m.aem(["seal", m.srkFile, m.secrets, m.sealed])
        let prevBefore = try FileManager.default.contentsOfDirectory(atPath: m.tpmDir).filter { $0.hasPrefix("aem.prev-") }
        #expect(!prevBefore.isEmpty)
        let again = try aemPCR(["check-boot", "--json", "--label", "aem", "--tpm-dir", m.tpmDir, "--event-log", logT, "--tcti", m.tpm.tcti])
        #expect(again.status == 1, "\(again.stderr)")
        #expect(again.stdout.contains("\"resealed_by_aem\": true") && again.stdout.contains("\"unseals\": true")
                && again.stdout.contains("\"matched\": false"), "\(again.stdout)")
        try SchemaTests().expectFollowsSchema("check-boot", again.stdout, "check-boot --json (resealed by AEM on a tampered boot)")
        #expect(try FileManager.default.contentsOfDirectory(atPath: m.tpmDir).filter { $0.hasPrefix("aem.prev-") } == prevBefore)
        let againText = try aemPCR(["check-boot", "--label", "aem", "--tpm-dir", m.tpmDir, "--event-log", logT, "--tcti", m.tpm.tcti])
        #expect(againText.status == 1 && flat(againText.stdout).contains("NOT the one predicted"), "\(againText.stdout)")
        #expect(again.stdout.contains("\"match\": false"), "the rows still show what differs from the prediction")
        #expect(try m.unsealWithAEM() == m.secretBytes)
    }

    /// The first seal ever (no set before it), run from a directory whose name needs quoting,
    /// with a relative --tpm-dir: the check-boot command it prints, pasted into bash from
    /// another directory, checks that set (absolute, quoted paths; --tpm-dir and --tcti
    /// carried). After a tampered boot check-boot names no previous set, as there is none.
    @Test func firstSealPrintsACheckBootCommandThatRunsAsPasted() throws {
        guard let m = try Machine() else { return }
        let cwd = m.dir + "/it's a dir"
        try FileManager.default.createDirectory(atPath: cwd, withIntermediateDirectories: false)
        let newInitramfs = try m.installNewInitramfs()
        let args = m.sealArguments().map { $0 == m.tpmDir ? "../tpm" : $0 == "Vectors/example/grub.cfg" ? Repo.path($0) : $0 }
        let s = try run(Repo.binary, args, cwd: cwd)
        #expect(s.status == 0, "\(s.stdout)\(s.stderr)")
        #expect(!s.stdout.contains("previous set"), "\(s.stdout)")
        // the command's lines, up to the one not continued by a backslash
        let lines = s.stdout.split(separator: "\n", omittingEmptySubsequences: false)
        let head = try #require(lines.firstIndex { $0.hasPrefix("  aem-pcr check-boot") }, "\(s.stdout)")
        var command = [Substring]()
        for l in lines[head...] { command.append(l); if !l.hasSuffix("\\") { break } }
        let pasted = command.joined(separator: "\n")
        // bash, given the lines with printf in place of aem-pcr, prints the words check-boot gets
        let words = try run("/bin/bash", ["-c", "printf '%s\\n' " + pasted.dropFirst("  aem-pcr ".count)], cwd: "/")
        #expect(words.stdout.split(separator: "\n").map(String.init)
                == ["check-boot", "--label", "aem", "--tpm-dir", cwd + "/../tpm", "--tcti", m.tpm.tcti], "\(pasted)")
        expectFitsWidth(lines[..<head].joined(separator: "\n"))
        let path = (Repo.binary as NSString).deletingLastPathComponent + ":" + (ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/bin")
        // bash parses it (as it will be pasted), from another directory
        let parse = try run("/bin/bash", ["-n", "-c", pasted], cwd: "/")
        #expect(parse.status == 0, "\(parse.stderr)")

        // the reboot into the new files: the printed command confirms the boot
        try m.powerCycle()
        _ = try m.boot(log: "B.log", initramfs: newInitramfs)
        let ok = try run("/bin/bash", ["-c", pasted], cwd: "/", env: ["PATH": path])
        #expect(ok.status == 0 && ok.stdout.contains("The boot is the one sealed for") && ok.stdout.contains("No previous set to remove."),
                "\(ok.stdout)\(ok.stderr)")
        // a tampered initramfs: the verdict, and no previous set spoken of that does not exist
        let tampered = m.dir + "/tampered.img"
        let py = try run("/usr/bin/env", ["python3", "-c", "import gzip,sys; d=gzip.decompress(open(sys.argv[1],'rb').read()); open(sys.argv[2],'wb').write(gzip.compress(d + b'evil maid was here'))", newInitramfs, tampered])
        #expect(py.status == 0, "\(py.stderr)")
        try m.powerCycle()
        _ = try m.boot(log: "T.log", initramfs: tampered)
        let bad = try run("/bin/bash", ["-c", pasted], cwd: "/", env: ["PATH": path])
        #expect(bad.status == 1 && flat(bad.stdout).contains("No previous set is kept") && !bad.stdout.contains(".prev-"), "\(bad.stdout)\(bad.stderr)")
    }

    /// Rewrites the saved prediction with python3: `current` puts the TPM's PCR values now
    /// (tpm2_pcrread's output) in place of the predicted ones; `drop19` removes PCR19.
    static func rewritePrediction(_ m: Machine, current: Bool = false, drop19: Bool = false) throws {
        let yaml = m.dir + "/now.yaml"
        let r = try run(tool("tpm2_pcrread")!, ["sha1:13,17,18,19+sha256:13,17,18,19"], env: m.env)
        try r.stdout.write(toFile: yaml, atomically: true, encoding: .utf8)
        let py = try run("/usr/bin/env", ["python3", "-c", """
            import json, re, sys
            path, yaml, current, drop19 = sys.argv[1], sys.argv[2], sys.argv[3] == "1", sys.argv[4] == "1"
            rec = json.load(open(path))
            bank = None
            for line in open(yaml).read().splitlines():
                m = re.match(r"^\\s*(sha1|sha256)\\s*:\\s*$", line)
                if m: bank = m.group(1); continue
                m = re.match(r"^\\s*(\\d+)\\s*:\\s*0x([0-9A-Fa-f]+)\\s*$", line)
                if m and bank and current: rec["pcrs"].setdefault(bank, {})[m.group(1)] = m.group(2).lower()
            if drop19:
                for b in rec["pcrs"].values(): b.pop("19", None)
            json.dump(rec, open(path, "w"), indent=1)
            """, m.sealed + "/aem-pcr-prediction.json", yaml, current ? "1" : "0", drop19 ? "1" : "0"])
        #expect(py.status == 0, "\(py.stderr)")
    }

    /// check-boot's verdict is the sealed object's (STYLE 18): a prediction rewritten to the
    /// PCRs of a tampered boot does not make it "the one sealed for", and one that does not
    /// cover key.pcrs's selection explains nothing: both exit 2 and keep the previous set; the
    /// genuine prediction on the predicted boot still confirms it and removes that set.
    @Test func forgedOrPartialPredictionIsRefusedAndThePreviousSetKept() throws {
        guard let m = try Machine() else { return }
        try m.aem(["seal", m.srkFile, m.secrets, m.sealed])
        let newInitramfs = try m.installNewInitramfs()
        let s = try m.seal()
        try #require(s.status == 0, "\(s.stderr)")
        let genuine = try m.snapshot(m.sealed)
        func prevs() throws -> [String] { try FileManager.default.contentsOfDirectory(atPath: m.tpmDir).filter { $0.hasPrefix("aem.prev-") } }
        try #require(try prevs().count == 1)
        func checkBoot(_ log: String, json: Bool = false) throws -> ProcessResult {
            try aemPCR(["check-boot", "--label", "aem", "--tpm-dir", m.tpmDir, "--event-log", log, "--tcti", m.tpm.tcti] + (json ? ["--json"] : []))
        }

        // A tampered boot; the prediction rewritten to its PCRs.
        let tampered = m.dir + "/tampered.img"
        let py = try run("/usr/bin/env", ["python3", "-c", "import gzip,sys; d=gzip.decompress(open(sys.argv[1],'rb').read()); open(sys.argv[2],'wb').write(gzip.compress(d + b'evil maid was here'))", newInitramfs, tampered])
        #expect(py.status == 0, "\(py.stderr)")
        try m.powerCycle()
        let logT = try m.boot(log: "T.log", initramfs: tampered)
        #expect(try m.unsealWithAEM() == nil)
        try Self.rewritePrediction(m, current: true)
        let forged = try checkBoot(logT)
        #expect(forged.status == 2, "\(forged.stdout)\(forged.stderr)")
        #expect(!forged.stdout.contains("The boot is the one sealed for"))
        #expect(forged.stderr.hasPrefix("aem-pcr: error: \(m.sealed)/aem-pcr-prediction.json disagrees with the sealed object")
                && forged.stderr.contains("authPolicy of key.pub") && forged.stderr.split(separator: "\n").count == 1, "\(forged.stderr)")
        #expect(try prevs().count == 1)
        // the genuine prediction on that boot: NOT the one sealed for (exit 1), set kept
        try write(genuine["aem-pcr-prediction.json"]!, to: m.sealed + "/aem-pcr-prediction.json")
        let t = try checkBoot(logT)
        #expect(t.status == 1 && t.stdout.contains("The boot is NOT the one sealed for"), "\(t.stdout)\(t.stderr)")
        #expect(flat(t.stdout).contains("Verdict: the authPolicy of key.pub differs from the PolicyPCR of the current PCRs"), "\(t.stdout)")
        #expect(try prevs().count == 1)

        // The predicted boot, with a prediction that lacks PCR19 (sealed to): exit 2, set kept.
        try m.powerCycle()
        let logB = try m.boot(log: "B.log", initramfs: newInitramfs)
        #expect(try m.unsealWithAEM() == m.secretBytes)
        try Self.rewritePrediction(m, drop19: true)
        let partial = try checkBoot(logB)
        #expect(partial.status == 2, "\(partial.stdout)\(partial.stderr)")
        #expect(partial.stderr.contains("aem-pcr-prediction.json disagrees with the sealed object")
                && partial.stderr.contains("does not cover the sealed selection sha256:13,17,18,19")
                && partial.stderr.contains("PCR19"), "\(partial.stderr)")
        #expect(try prevs().count == 1)
        #expect(try m.snapshot(m.sealed).filter { $0.key != "aem-pcr-prediction.json" } == genuine.filter { $0.key != "aem-pcr-prediction.json" })

        // The genuine prediction: PCRs from a file give the verdict but keep the previous set;
        // from the TPM, exit 0 and the previous set goes.
        try write(genuine["aem-pcr-prediction.json"]!, to: m.sealed + "/aem-pcr-prediction.json")
        let nowFile = m.dir + "/B.yaml"
        try m.tpm.pcrread("sha1:13,17,18,19+sha256:13,17,18,19", to: nowFile)
        let offline = try aemPCR(["check-boot", "--label", "aem", "--tpm-dir", m.tpmDir, "--event-log", logB, "--pcrs", nowFile])
        #expect(offline.status == 0 && flat(offline.stdout).contains("not from the TPM: the previous set is kept"), "\(offline.stdout)\(offline.stderr)")
        #expect(flat(offline.stdout).hasPrefix("The PCR values in \(nowFile) open the set sealed for: aem") && !offline.stdout.contains("The boot is"), "\(offline.stdout)")
        #expect(try prevs().count == 1)
        let ok = try checkBoot(logB, json: true)
        #expect(ok.status == 0, "\(ok.stdout)\(ok.stderr)")
        try SchemaTests().expectFollowsSchema("check-boot", ok.stdout, "check-boot --json (genuine)")
        let obj = try #require(try JSONSerialization.jsonObject(with: Data(ok.stdout.utf8)) as? [String: Any])
        let verdict = try #require(obj["verdict"] as? [String: Any])
        let sealedDigest = ((verdict["sealed"] as? [[String: Any]])?.first?["digest"] as? String) ?? ""
        let pub = Self.publicArea(genuine["key.pub"] ?? [])
        #expect(sealedDigest == pub.map { Hex.encode($0.authPolicy) }, "the authPolicy of key.pub, read by the test")
        #expect(((verdict["now"] as? [[String: Any]])?.first?["digest"] as? String) == sealedDigest)
        #expect(obj["matched"] as? Bool == true && obj["pcrs_from_tpm"] as? Bool == true)
        #expect(try prevs().isEmpty)
    }

    /// seal reads the PCRs of the TPM it seals on (issue 19, item 4): a log of an earlier boot
    /// with a --pcrs file saved on that boot (so the file matches the log) is refused, and
    /// without the file the log does not replay to the TPM: refused too, nothing written.
    @Test func sealRefusesAPCRsFileAndALogTheTPMDoesNotReplay() throws {
        guard let m = try Machine() else { return }
        try m.aem(["seal", m.srkFile, m.secrets, m.sealed])
        let old = try m.snapshot(m.sealed)
        let fileA = m.dir + "/A.yaml"
        try m.tpm.pcrread("sha1:13,17,18,19+sha256:13,17,18,19", to: fileA)
        _ = try m.installNewInitramfs()
        // another boot: the TPM's PCRs are no longer the ones of log A and file A
        try m.powerCycle()
        _ = try m.boot(log: "X.log", initramfs: m.dir + "/boot/initramfs-6.6.48-1.qubes.fc37.x86_64.img")
        let forged = try m.seal(["--pcrs", fileA])
        #expect(forged.status == 2, "\(forged.stdout)\(forged.stderr)")
        #expect(forged.stderr.contains("seal reads the PCRs of the TPM it seals on") && forged.stderr.contains("--pcrs"), "\(forged.stderr)")
        #expect(try m.snapshot(m.sealed) == old)
        let fromTPM = try m.seal()
        #expect(fromTPM.status == 2 && fromTPM.stderr.contains("does not verify against the TPM"), "\(fromTPM.stderr)")
        #expect(try m.snapshot(m.sealed) == old)
        #expect(try FileManager.default.contentsOfDirectory(atPath: m.tpmDir) == ["aem"])
        // a dry run may take the file: a plan, nothing written
        let dry = try m.seal(["--pcrs", fileA, "--dry-run"])
        #expect(dry.status == 0 && flat(dry.stdout).contains("from \(fileA)"), "\(dry.stdout)\(dry.stderr)")
        #expect(try m.snapshot(m.sealed) == old)
    }

    struct PublicArea: Equatable {
        var type: UInt16, nameAlg: UInt16, attributes: UInt32, authPolicy: [UInt8], scheme: UInt16
    }

    /// A keyed-hash TPM2B_PUBLIC as tpm2-tools writes key.pub (TPM 2.0 Part 2, 12.2.5), read
    /// here byte by byte: size, type, nameAlg, objectAttributes, authPolicy, scheme, unique.
    static func publicArea(_ b: [UInt8]) -> PublicArea? {
        func u16(_ i: Int) -> UInt16 { UInt16(b[i]) << 8 | UInt16(b[i + 1]) }
        guard b.count >= 12, Int(u16(0)) == b.count - 2 else { return nil }
        let policySize = Int(u16(10))
        guard b.count >= 12 + policySize + 4 else { return nil }
        let attrs = UInt32(u16(6)) << 16 | UInt32(u16(8))
        return PublicArea(type: u16(2), nameAlg: u16(4), attributes: attrs,
                          authPolicy: Array(b[12..<(12 + policySize)]), scheme: u16(12 + policySize))
    }

    /// SIGKILL at each step of the swap (debug builds honour AEM_PCR_TEST_CRASH_AT): the target
    /// always holds a complete set, the old one or the new one.
    @Test func killedAtEachStepLeavesACompleteSet() throws {
        guard let m = try Machine() else { return }
        try m.aem(["seal", m.srkFile, m.secrets, m.sealed])
        // a user's directory in the set: never lost, back in the set after the next run
        try FileManager.default.createDirectory(atPath: m.sealed + "/notes", withIntermediateDirectories: false)
        try write(Array("my notes\n".utf8), to: m.sealed + "/notes/today.txt")
        _ = try m.installNewInitramfs()
        let complete: Set<String> = ["key.pub", "key.priv", "key.pcrs", "secret.txt.sealed2", "secret.key.sealed2", "secret.fre.sealed2"]
        var before = try m.snapshot(m.sealed)
        for step in ["staged:key.pub", "staged:secret.key.sealed2", "staged", "kept", "moved", "swapped", "done"] {
            let r = try m.seal(env: ["AEM_PCR_TEST_CRASH_AT": step])
            #expect(r.status != 0 && r.status != 2, "\(step): \(r.stderr)")
            let after = try m.snapshot(m.sealed)
            let isOld = after == before
            let isNew = Set(after.keys) == complete.union(["aem-pcr-prediction.json"]) && after != before
            #expect(isOld != isNew, "\(step): the set is neither the old nor a complete new one: \(after.keys.sorted())")
            #expect(isOld == step.hasPrefix("staged") || step == "kept" || step == "moved", "\(step)")
            let notes = step == "moved" ? m.tpmDir + "/.aem.aem-pcr-staging/notes" : m.sealed + "/notes"
            #expect((try? Data(contentsOf: URL(fileURLWithPath: notes + "/today.txt"))) == Data("my notes\n".utf8), "\(step): notes lost")
            for (k, v) in before where complete.contains(k) && isNew { #expect(after[k] != v || k == "key.pcrs", "\(step): \(k) unchanged") }
            before = after
        }
        // the next run cleans what the killed ones left and seals
        let r = try m.seal()
        #expect(r.status == 0, "\(r.stderr)")
        #expect(try FileManager.default.contentsOfDirectory(atPath: m.tpmDir).filter { $0.hasPrefix(".") }.isEmpty)
        #expect((try? Data(contentsOf: URL(fileURLWithPath: m.sealed + "/notes/today.txt"))) == Data("my notes\n".utf8))
    }

    /// An I/O error after the swap (every unlink fails, injected by strace into the built
    /// binary): the new set is in place, and seal says so with exit status 3, not 2, naming
    /// what it could not clean; the next run cleans it.
    @Test(.needsTool("strace", package: "strace")) func anErrorAfterTheSwapSaysTheNewSetIsInPlace() throws {
        guard let m = try Machine(), let strace = tool("strace") else { return }
        try m.aem(["seal", m.srkFile, m.secrets, m.sealed])
        let old = try m.snapshot(m.sealed)
        _ = try m.installNewInitramfs()
        let r = try run(strace, ["-f", "-qq", "-o", "/dev/null", "-e", "trace=unlink,unlinkat,rmdir",
                                 "-e", "inject=unlink,unlinkat,rmdir:error=EIO", Repo.binary] + m.sealArguments(), cwd: Repo.root)
        #expect(r.status == 3, "\(r.stdout)\(r.stderr)")
        #expect(r.stderr.split(separator: "\n").count == 1, "\(r.stderr)")
        #expect(r.stderr.hasPrefix("aem-pcr: warning: the new set is in place in \(m.sealed)"), "\(r.stderr)")
        #expect(r.stderr.contains(".aem.aem-pcr-staging") && r.stderr.contains("Input/output error"), "\(r.stderr)")
        #expect(flat(r.stdout).contains("Sealed aem") && flat(r.stdout).contains("cleaning after the swap failed"), "\(r.stdout)")
        let now = try m.snapshot(m.sealed)
        #expect(now["aem-pcr-prediction.json"] != nil && now["key.pub"] != old["key.pub"], "the new set is not in place")
        // the old set's copy at the staging name is removed by the next seal
        #expect(FileManager.default.fileExists(atPath: m.tpmDir + "/.aem.aem-pcr-staging"))
        let again = try m.seal()
        #expect(again.status == 0, "\(again.stderr)")
        #expect(try FileManager.default.contentsOfDirectory(atPath: m.tpmDir).filter { $0.hasPrefix(".") }.isEmpty)

        // The last fsync of a seal is the parent directory's, after the swap: counted on a
        // run, then failed on the next.
        let trace = m.dir + "/fsync.trace"
        let counted = try run(strace, ["-f", "-qq", "-o", trace, "-e", "trace=fsync", Repo.binary] + m.sealArguments(), cwd: Repo.root)
        #expect(counted.status == 0, "\(counted.stderr)")
        let fsyncs = try String(contentsOfFile: trace, encoding: .utf8).split(separator: "\n").filter { $0.contains("fsync(") }.count
        let before = try m.snapshot(m.sealed)
        let f = try run(strace, ["-f", "-qq", "-o", "/dev/null", "-e", "trace=fsync", "-e", "inject=fsync:error=EIO:when=\(fsyncs)",
                                 Repo.binary] + m.sealArguments(), cwd: Repo.root)
        #expect(f.status == 3, "\(f.stdout)\(f.stderr)")
        #expect(f.stderr.hasPrefix("aem-pcr: warning: the new set is in place in \(m.sealed)")
                && f.stderr.contains("fsync \(m.tpmDir): Input/output error") && f.stderr.split(separator: "\n").count == 1, "\(f.stderr)")
        #expect(try m.snapshot(m.sealed)["key.pub"] != before["key.pub"], "the new set is not in place")
    }

    @Test func refusalsAndErrorsLeaveTheSetAlone() throws {
        guard let m = try Machine() else { return }
        try m.aem(["seal", m.srkFile, m.secrets, m.sealed])
        let old = try m.snapshot(m.sealed)
        // a wrong SRK password: one line, nothing replaced, no temporary left
        let wrong = m.dir + "/wrong"
        try write(Array("not it".utf8), to: wrong)
        let w = try aemPCR(["seal", "--label", "aem", "--aem-dir", m.aemDir, "--tpm-dir", m.tpmDir, "--srk-password-file", wrong,
                            "--event-log", m.logA, "--tcti", m.tpm.tcti, "--grub-cfg", "Vectors/example/grub.cfg",
                            "--entry", Self.entry, "--boot-dir", m.bootDir, "--policy", m.policy, "--extpol", "embedded"])
        #expect(w.status == 2)
        #expect(w.stderr.contains("SRK password is wrong") && w.stderr.split(separator: "\n").count == 1, "\(w.stderr)")
        #expect(!w.stderr.contains("not it"))
        #expect(try m.snapshot(m.sealed) == old)
        #expect(try FileManager.default.contentsOfDirectory(atPath: m.tpmDir) == ["aem"])
        // no secret to seal: said before the SRK password is asked (no --srk-password-file)
        try FileManager.default.createDirectory(atPath: m.dir + "/no-secrets/aem", withIntermediateDirectories: true)
        let e = try aemPCR(["seal", "--label", "aem", "--aem-dir", m.dir + "/no-secrets", "--tpm-dir", m.tpmDir,
                            "--event-log", m.logA, "--tcti", m.tpm.tcti, "--grub-cfg", "Vectors/example/grub.cfg",
                            "--entry", Self.entry, "--boot-dir", m.bootDir, "--policy", m.policy, "--extpol", "embedded"])
        #expect(e.status == 2 && e.stderr.contains("no secret to seal in") && !e.stderr.contains("SRK password"), "\(e.stderr)")
        #expect(try m.snapshot(m.sealed) == old)
        // --srk-well-known names a TPM 1.2 SRK: refused on TPM 2.0, before anything is asked or sealed
        let k = try aemPCR(["seal", "--label", "aem", "--aem-dir", m.aemDir, "--tpm-dir", m.tpmDir, "--srk-well-known",
                            "--event-log", m.logA, "--tcti", m.tpm.tcti, "--grub-cfg", "Vectors/example/grub.cfg",
                            "--entry", Self.entry, "--boot-dir", m.bootDir, "--policy", m.policy, "--extpol", "embedded"])
        #expect(k.status == 2 && k.stderr.contains("--srk-well-known is for a TPM 1.2 SRK") && k.stderr.split(separator: "\n").count == 1, "\(k.stderr)")
        #expect(try m.snapshot(m.sealed) == old)
        // a log that does not verify (one extend more than it records)
        try m.powerCycle()
        let bad = try m.tpm.boot(["--extra-extend", "--policy", m.policy], log: "bad.log")
        let b = try m.seal(log: bad)
        #expect(b.status == 2 && b.stderr.contains("does not verify"), "\(b.stderr)")
        // PCR13 never extended (AEM's initramfs did not run): all 00, refused by name
        try m.powerCycle()
        let plain = try m.tpm.boot(["--policy", m.policy], log: "noluks.log")
        let n = try m.seal(log: plain)
        #expect(n.status == 2 && n.stderr.contains("PCR13 sha256 would be all 00"), "\(n.stderr)")
        #expect(try m.snapshot(m.sealed) == old)
        // a sealed root another user can write: one line, before the SRK password is read
        try m.powerCycle()
        m.logA = try m.boot(log: "A2.log")
        #expect(chmod(m.tpmDir, 0o777) == 0)
        let u = try m.seal()
        #expect(chmod(m.tpmDir, 0o755) == 0)
        #expect(u.status == 2 && u.stderr.hasPrefix("aem-pcr: error: \(m.tpmDir) can be written by every user (mode 0777)")
                && u.stderr.split(separator: "\n").count == 1, "\(u.stderr)")
        #expect(try m.snapshot(m.sealed) == old)
        #expect(try FileManager.default.contentsOfDirectory(atPath: m.tpmDir) == ["aem"])
        // seal takes no --force
        let f = try m.seal(["--force"])
        #expect(f.status == 2 && f.stderr.contains("unknown option '--force' for 'aem-pcr seal'"), "\(f.stderr)")
    }
}
