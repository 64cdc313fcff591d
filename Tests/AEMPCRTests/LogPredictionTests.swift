// SPDX-License-Identifier: Apache-2.0
import Foundation
import Testing
@testable import AEMPCR

/// `verify`, `predict --event-log` and `diff`: SINIT's events kept from a real log, tboot's
/// recomputed from files. Expected PCRs come from python3 replays of digests python3 computed
/// (Vectors/expected.json), never from the Swift code.
@Suite(.serialized) struct LogPredictionTests {
    static let realLog = "Vectors/logs/isecl_tagent_txt-logs.bin"

    /// The PCR values the SecL listing prints for the real log (python replay, in the vector file).
    static func listedPCRs(_ dir: String) throws -> String {
        var yaml = ["sha1": [String](), "sha256": [String]()]
        for line in try readText("Vectors/logs/isecl_tagent_txt-logs.txt").split(separator: "\n") where line.hasPrefix("PCR ") {
            let f = line.split(separator: " ")
            yaml[String(f[2])]!.append("    \(f[1]): 0x\(f[3])")
        }
        let text = "  sha1:\n" + yaml["sha1"]!.joined(separator: "\n") + "\n  sha256:\n" + yaml["sha256"]!.joined(separator: "\n") + "\n"
        try text.write(toFile: dir + "/pcrs.yaml", atomically: true, encoding: .utf8)
        return dir + "/pcrs.yaml"
    }

    /// python3 replay: events as [[pcr, {bank: hex}]] → tpm2_pcrread-style YAML of PCR17-19.
    static func pythonReplay(_ events: [(UInt32, [String: String])], to path: String,
                             banks: [String] = ["sha1", "sha256"], pcrs: [Int] = [17, 18, 19]) throws {
        let json = "[" + events.map { e in
            "[\(e.0), {" + e.1.map { "\"\($0.key)\": \"\($0.value)\"" }.joined(separator: ", ") + "}]"
        }.joined(separator: ", ") + "]"
        let py = """
            import hashlib, json, sys
            ev = json.loads(sys.argv[1])
            out = []
            for bank in sys.argv[2].split(','):
                out.append('  %s:' % bank)
                size = hashlib.new(bank).digest_size
                for pcr in json.loads(sys.argv[3]):
                    v = bytes(size)
                    for p, d in ev:
                        if p == pcr and bank in d:
                            v = hashlib.new(bank, v + bytes.fromhex(d[bank])).digest()
                    out.append('    %d: 0x%s' % (pcr, v.hex()))
            print('\\n'.join(out))
            """
        let r = try run("/usr/bin/env", ["python3", "-c", py, json, banks.joined(separator: ","), "\(pcrs)"])
        #expect(r.status == 0, "\(r.stderr)")
        try r.stdout.write(toFile: path, atomically: true, encoding: .utf8)
    }

    /// A TPM 2.0 log as SINIT (the real SecL events) and tboot (embedded, both banks) would write
    /// it for the example AEM entry; the tboot and MLE digests from expected.json.
    static func syntheticBoot(_ dir: String) throws -> (log: String, events: [(UInt32, [String: String])]) {
        let expected = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: Repo.path("Vectors/expected.json")))) as! [String: Any]
        let p = (expected["predictions"] as! [[String: Any]]).first { ($0["name"] as! String).hasSuffix("tpm20-embedded") }!
        let mle = p["mle"] as! [String: String]
        let flat = p["events"] as! [[String: Any]]
        let real = try DRTMEventLog.parse(path: Repo.path(realLog))
        var events = [DRTMEvent]()
        var plain = [(UInt32, [String: String])]()
        for e in real.events where e.type != .tbootMeasurement {
            if e.type == .mleHash {
                events.append(DRTMEvent(pcr: e.pcr, type: e.type, digests: [Digest(.sha1, hex: mle["sha1"]!)!, Digest(.sha256, hex: mle["sha256"]!)!]))
                plain.append((e.pcr.rawValue, mle))
            } else {
                events.append(e)
                plain.append((e.pcr.rawValue, Dictionary(uniqueKeysWithValues: e.digests.map { ($0.key.description, $0.value.hex) })))
            }
        }
        for k in stride(from: 0, to: flat.count, by: 2) {
            let a = flat[k], b = flat[k + 1]
            let pcr = UInt32(a["pcr"] as! Int)
            let d = [a["bank"] as! String: a["digest"] as! String, b["bank"] as! String: b["digest"] as! String]
            events.append(DRTMEvent(pcr: PCRIndex(rawValue: pcr), type: .tbootMeasurement,
                                    digests: [Digest(.sha1, hex: d["sha1"]!)!, Digest(.sha256, hex: d["sha256"]!)!]))
            plain.append((pcr, d))
        }
        try write(LogWriter.tcgLog(events, banks: [.sha1, .sha256]), to: dir + "/current.log")
        return (dir + "/current.log", plain)
    }

    static let entryArgs = ["--grub-cfg", "Vectors/example/grub.cfg", "--entry", "AEM Qubes, with Xen hypervisor"]

    /// tboot's event for `kernel` as module 1 of the example's AEM entry, by python3 alone:
    /// H(H(command line) || H(image)) in sha1 and sha256, the command line read from grub.cfg's
    /// text (the words after the file, joined by single spaces: the line has no quotes, escapes
    /// or variables, which python3 checks).
    static func pythonKernelEvent(_ kernel: String) throws -> [String: String] {
        let py = """
            import hashlib, sys
            lines = open(sys.argv[1], 'rb').read().split(b'\\n')
            start = next(i for i, l in enumerate(lines) if l.startswith(b"menuentry 'AEM Qubes, with Xen hypervisor'"))
            module = next(l for l in lines[start:] if l.split()[:2] == [b'module', b'/vmlinuz-6.6.63-1.qubes.fc37.x86_64'])
            assert not any(c in module for c in b'\\'"$\\\\')
            cmdline = b' '.join(module.split()[2:])
            img = open(sys.argv[2], 'rb').read()
            for a in ('sha1', 'sha256'):
                h = lambda b: hashlib.new(a, b).digest()
                print(a, hashlib.new(a, h(cmdline) + h(img)).hexdigest())
            """
        let m = try run("/usr/bin/env", ["python3", "-c", py, Repo.path("Vectors/example/grub.cfg"), kernel])
        #expect(m.status == 0, "\(m.stderr)")
        return Dictionary(uniqueKeysWithValues: m.stdout.split(separator: "\n").map { l in
            let f = l.split(separator: " "); return (String(f[0]), String(f[1])) })
    }
    /// The synthetic logs are extpol=embedded; the example entry's tboot line has no extpol=
    /// (tboot's default, sha256), so these predictions say which policy the next boot runs.
    static let embedded = ["--extpol", "embedded"]

    @Test func verifyRealLog() throws {
        let dir = try tempDir()
        let pcrs = try Self.listedPCRs(dir)
        let ok = try aemPCR(["verify", "--event-log", Self.realLog, "--pcrs", pcrs])
        #expect(ok.status == 0, "\(ok.stdout)\(ok.stderr)")
        #expect(ok.stdout.hasPrefix("Verified"))
        // One PCR value off: exit 1, naming PCR and bank.
        let text = try String(contentsOfFile: pcrs, encoding: .utf8)
        try text.replacingOccurrences(of: "0xff8a57bf", with: "0xff8a57be").write(toFile: dir + "/bad.yaml", atomically: true, encoding: .utf8)
        let bad = try aemPCR(["verify", "--event-log", Self.realLog, "--pcrs", dir + "/bad.yaml", "--json"])
        #expect(bad.status == 1)
        let obj = try JSONSerialization.jsonObject(with: Data(bad.stdout.utf8)) as! [String: Any]
        let rows = obj["pcrs"] as! [[String: Any]]
        #expect(rows.filter { $0["status"] as? String == "mismatch" }.map { "\($0["pcr"]!) \($0["bank"]!)" } == ["17 sha256"])
        #expect(obj["verified"] as? Bool == false)
    }

    /// Same files as the logged boot: every PCR reproduced exactly, nothing changes.
    @Test func sameFilesReproduceTheLoggedPCRs() throws {
        let dir = try tempDir()
        let (log, events) = try Self.syntheticBoot(dir)
        try Self.pythonReplay(events, to: dir + "/pcrs.yaml")
        let current = try PCRValuesFile.read(path: dir + "/pcrs.yaml")
        let r = try aemPCR(["predict", "--json", "--event-log", log, "--pcrs", dir + "/pcrs.yaml",
                            "--boot-dir", "Vectors/example/boot"] + Self.entryArgs + Self.embedded)
        #expect(r.status == 0, "\(r.stderr)")
        let got = try PCRValuesFile.parse(r.stdout, source: "predict")
        for bank in [HashAlgorithm.sha1, .sha256] {
            for pcr: PCRIndex in [17, 18, 19] {
                #expect(got[bank, pcr] == current[bank, pcr], "PCR\(pcr) \(bank)")
            }
        }
        let obj = try JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as! [String: Any]
        #expect((obj["launch"] as! [String: Any])["extpol"] as? String == "embedded")
        #expect((obj["event_log"] as! [String: Any])["verified"] as? Bool == true)
        let d = try aemPCR(["diff", "--json", "--event-log", log, "--pcrs", dir + "/pcrs.yaml",
                            "--boot-dir", "Vectors/example/boot"] + Self.entryArgs + Self.embedded)
        #expect(d.status == 0, "\(d.stderr)")
        let diff = try JSONSerialization.jsonObject(with: Data(d.stdout.utf8)) as! [String: Any]
        #expect((diff["changes"] as! [Any]).isEmpty)
        #expect((diff["pcrs"] as! [[String: Any]]).allSatisfy { $0["changed"] as? Bool == false })
    }

    /// A new kernel: only its event and PCR17 change; the value equals a python3 replay with the
    /// new kernel's measurement (python3 hashlib) in its place.
    @Test func changedKernelChangesOnlyItsEvent() throws {
        let dir = try tempDir()
        let (log, events) = try Self.syntheticBoot(dir)
        try Self.pythonReplay(events, to: dir + "/pcrs.yaml")
        let boot = dir + "/boot"
        try FileManager.default.copyItem(atPath: Repo.path("Vectors/example/boot"), toPath: boot)
        let kernel = boot + "/vmlinuz-6.6.63-1.qubes.fc37.x86_64"
        try FileManager.default.removeItem(atPath: kernel)
        try FileManager.default.copyItem(atPath: Repo.path("Vectors/example/boot/vmlinuz-6.6.48-1.qubes.fc37.x86_64"), toPath: kernel)
        let d = try aemPCR(["diff", "--json", "--event-log", log, "--pcrs", dir + "/pcrs.yaml", "--boot-dir", boot] + Self.entryArgs + Self.embedded)
        #expect(d.status == 0, "\(d.stderr)")
        let diff = try JSONSerialization.jsonObject(with: Data(d.stdout.utf8)) as! [String: Any]
        let changes = diff["changes"] as! [[String: Any]]
        #expect(changes.map { $0["component"] as! String } == ["module 1"])
        let changed = (diff["pcrs"] as! [[String: Any]]).filter { $0["changed"] as! Bool }.map { "\($0["pcr"]!) \($0["bank"]!)" }
        #expect(changed == ["17 sha1", "17 sha256"])

        // Independent value: python3 measures the new kernel with the entry's command line.
        let newM1 = try Self.pythonKernelEvent(kernel)
        var swapped = events
        let tbootStart = events.count - 5
        swapped[tbootStart + 3] = (17, newM1)  // policy, policy, M0, M1, M2
        try Self.pythonReplay(swapped, to: dir + "/expected.yaml")
        let expected = try PCRValuesFile.read(path: dir + "/expected.yaml")
        let rows = diff["pcrs"] as! [[String: Any]]
        for bank in [HashAlgorithm.sha1, .sha256] {
            let row = rows.first { $0["pcr"] as? Int == 17 && $0["bank"] as? String == bank.description }!
            #expect(row["predicted"] as? String == expected[bank, 17]!.hex)
        }
    }

    @Test func refusals() throws {
        let dir = try tempDir()
        let pcrs = try Self.listedPCRs(dir)
        let base = ["predict", "--event-log", Self.realLog, "--boot-dir", "Vectors/example/boot"] + Self.entryArgs
        let noPCRs = try aemPCR(base)
        #expect(noPCRs.status == 2 && noPCRs.stderr.contains("--pcrs"))
        let forced = try aemPCR(base + ["--force", "--json"])
        #expect(forced.status == 0, "\(forced.stderr)")
        // No --tpm: the TCG crypto-agile log says TPM 2.0.
        let launch = (try JSONSerialization.jsonObject(with: Data(forced.stdout.utf8)) as? [String: Any])?["launch"] as? [String: Any]
        #expect(launch?["tpm"] as? String == "2.0")
        #expect(forced.stdout.contains("without verification"))
        try "  sha256:\n    17: 0x\(String(repeating: "FF", count: 32))\n".write(toFile: dir + "/ff.yaml", atomically: true, encoding: .utf8)
        let ff = try aemPCR(base + ["--pcrs", dir + "/ff.yaml"])
        #expect(ff.status == 2 && ff.stderr.contains("no measured launch"), "\(ff.stderr)")
        let contradiction = try aemPCR(base + ["--pcrs", pcrs, "--extpol", "embedded"])
        #expect(contradiction.status == 2 && contradiction.stderr.contains("tboot extending sha256"), "\(contradiction.stderr)")
        let tpm12 = try aemPCR(base + ["--pcrs", pcrs, "--tpm", "1.2"])
        #expect(tpm12.status == 2 && tpm12.stderr.contains("TPM 2.0 log"), "\(tpm12.stderr)")
        let text = try String(contentsOfFile: pcrs, encoding: .utf8)
        try text.replacingOccurrences(of: "0xd45891", with: "0xd45890").write(toFile: dir + "/bad.yaml", atomically: true, encoding: .utf8)
        let unverified = try aemPCR(base + ["--pcrs", dir + "/bad.yaml"])
        #expect(unverified.status == 2 && unverified.stderr.contains("does not verify") && unverified.stderr.contains("PCR18 sha1"))
    }

    /// A PCR file that leaves out PCRs the log extends cannot verify it (exit 2, naming them);
    /// all-FF values are no measured launch (exit 2); an SM3 bank in the file is left out.
    @Test func verifyInputsThatCannotVerify() throws {
        let dir = try tempDir()
        try "  sha256:\n    19: 0x\(String(repeating: "00", count: 32))\n".write(toFile: dir + "/p19.yaml", atomically: true, encoding: .utf8)
        let partial = try aemPCR(["verify", "--event-log", Self.realLog, "--pcrs", dir + "/p19.yaml"])
        #expect(partial.status == 2 && partial.stderr.contains("lacks PCR17 sha1, PCR18 sha1, PCR17 sha256, PCR18 sha256"), "\(partial.stderr)")
        try "  sha1:\n    17: 0x\(String(repeating: "FF", count: 20))\n".write(toFile: dir + "/ff.yaml", atomically: true, encoding: .utf8)
        let ff = try aemPCR(["verify", "--event-log", Self.realLog, "--pcrs", dir + "/ff.yaml"])
        #expect(ff.status == 2 && ff.stderr.contains("no measured launch"), "\(ff.stderr)")
        let listed = try String(contentsOfFile: try Self.listedPCRs(dir), encoding: .utf8)
        try (listed + "  sm3_256:\n    17: 0x\(String(repeating: "ab", count: 32))\n").write(toFile: dir + "/sm3.yaml", atomically: true, encoding: .utf8)
        let sm3 = try aemPCR(["verify", "--event-log", Self.realLog, "--pcrs", dir + "/sm3.yaml"])
        #expect(sm3.status == 0, "\(sm3.stderr)")
    }

    /// The log's policy event must be the one predicted: another policy (a custom one in TPM NV)
    /// is refused unless --force; then it is noted.
    @Test func policyOfTheLogMustMatch() throws {
        let dir = try tempDir()
        let (log, events) = try Self.syntheticBoot(dir)
        try Self.pythonReplay(events, to: dir + "/pcrs.yaml")
        let custom = ["--policy", "Vectors/example/boot/policy-custom.pol", "--boot-dir", "Vectors/example/boot"]
        let r = try aemPCR(["predict", "--event-log", log, "--pcrs", dir + "/pcrs.yaml"] + custom + Self.entryArgs + Self.embedded)
        #expect(r.status == 2 && r.stderr.contains("policy event of the current boot"), "\(r.stderr)")
        let forced = try aemPCR(["predict", "--json", "--force", "--event-log", log, "--pcrs", dir + "/pcrs.yaml"] + custom + Self.entryArgs + Self.embedded)
        #expect(forced.status == 0, "\(forced.stderr)")
        #expect(forced.stdout.contains("predicting with the new policy as asked"))
    }

    /// `--bank sha256` with a two-bank log reports one bank; the values equal the two-bank run's.
    @Test func oneBankOfATwoBankLog() throws {
        let dir = try tempDir()
        let (log, events) = try Self.syntheticBoot(dir)
        try Self.pythonReplay(events, to: dir + "/pcrs.yaml")
        let args = ["predict", "--json", "--event-log", log, "--pcrs", dir + "/pcrs.yaml", "--boot-dir", "Vectors/example/boot"] + Self.entryArgs + Self.embedded
        let one = try aemPCR(args + ["--bank", "sha256"])
        #expect(one.status == 0, "\(one.stderr)")
        let both = try aemPCR(args)
        let a = try PCRValuesFile.parse(one.stdout, source: "one"), b = try PCRValuesFile.parse(both.stdout, source: "both")
        #expect(a.banks == [.sha256])
        #expect(a[.sha256, 17] == b[.sha256, 17] && a[.sha256, 18] == b[.sha256, 18])
    }

    /// TPM 1.2, legacy mapping, through the TPM 1.2 event container: SINIT's PCR17 events of a
    /// real log (SHA-1), the MLE hash in PCR18 and tboot's events from expected.json; all three
    /// PCRs reproduced, and PCR18/19 equal the files-only prediction.
    @Test func tpm12ContainerLog() throws {
        let dir = try tempDir()
        let expected = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: Repo.path("Vectors/expected.json")))) as! [String: Any]
        let p = (expected["predictions"] as! [[String: Any]]).first { ($0["name"] as! String) == "aem-top.pc.tpm12" }!
        let real = try DRTMEventLog.parse(path: Repo.path(Self.realLog))
        var events = [DRTMEvent]()
        var plain = [(UInt32, [String: String])]()
        for e in real.events where e.pcr == 17 && e.type != .tbootMeasurement && e.type != .mleHash {
            events.append(DRTMEvent(pcr: 17, type: e.type, digests: [e.digests[.sha1]!], data: e.data))
            plain.append((17, ["sha1": e.digests[.sha1]!.hex]))
        }
        let mle = (p["mle"] as! [String: String])["sha1"]!
        events.append(DRTMEvent(pcr: 18, type: .mleHash, digests: [Digest(.sha1, hex: mle)!]))
        plain.append((18, ["sha1": mle]))
        for e in p["events"] as! [[String: Any]] {
            let pcr = UInt32(e["pcr"] as! Int), d = e["digest"] as! String
            events.append(DRTMEvent(pcr: PCRIndex(rawValue: pcr), type: .tbootMeasurement, digests: [Digest(.sha1, hex: d)!]))
            plain.append((pcr, ["sha1": d]))
        }
        // tboot's NV measurement (measure_nv=true) into PCR22: kept, not predicted from files.
        let nv = "5f" + String(repeating: "1e", count: 19)
        events.append(DRTMEvent(pcr: 22, type: .tbootMeasurement, digests: [Digest(.sha1, hex: nv)!]))
        plain.append((22, ["sha1": nv]))
        try write(LogWriter.container(events), to: dir + "/tpm12.log")
        try Self.pythonReplay(plain, to: dir + "/pcrs.yaml", banks: ["sha1"], pcrs: [17, 18, 19, 22])
        let r = try aemPCR(["predict", "--json", "--event-log", dir + "/tpm12.log", "--pcrs", dir + "/pcrs.yaml",
                            "--boot-dir", "Vectors/example/boot"] + Self.entryArgs)
        #expect(r.status == 0, "\(r.stderr)")
        let got = try PCRValuesFile.parse(r.stdout, source: "predict")
        let current = try PCRValuesFile.read(path: dir + "/pcrs.yaml")
        for pcr: PCRIndex in [17, 18, 19, 22] { #expect(got[.sha1, pcr] == current[.sha1, pcr], "PCR\(pcr)") }
        // The next boot's tboot asking for pcr_map=da cannot be predicted from a legacy log.
        let da = try aemPCR(["predict", "--event-log", dir + "/tpm12.log", "--pcrs", dir + "/pcrs.yaml",
                             "--tboot", "Vectors/example/boot/tboot.gz", "--tboot-cmdline", "placeholder pcr_map=da",
                             "--module", "Vectors/example/boot/xen-4.17.5.gz"])
        #expect(da.status == 2 && da.stderr.contains("pcr_map=da"), "\(da.stderr)")
        let filesOnly = p["pcrs"] as! [String: [String: String]]
        #expect(got[.sha1, 18]?.hex == filesOnly["sha1"]!["18"] && got[.sha1, 19]?.hex == filesOnly["sha1"]!["19"])
        let obj = try JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as! [String: Any]
        let launch = obj["launch"] as! [String: Any]
        // No --tpm: the TPM 1.2 container says the family.
        #expect(launch["tpm"] as? String == "1.2" && launch["pcr_map"] as? String == "legacy")
        // tboot's NV measurement, kept from the log, is tboot's event: not labelled SINIT's.
        let nvEvents = (obj["events"] as! [[String: Any]]).filter { $0["pcr"] as? Int == 22 }
        #expect(nvEvents.map { $0["component"] as? String } == ["tboot event"], "\(nvEvents)")
        let text = try aemPCR(["predict", "--event-log", dir + "/tpm12.log", "--pcrs", dir + "/pcrs.yaml",
                               "--boot-dir", "Vectors/example/boot"] + Self.entryArgs)
        #expect(text.stdout.contains("PCR22  tboot event (0x501 TBOOT by tboot)"), "\(text.stdout)")

        // seal on a TPM 1.2, dry run: PCR13 as now, PCR17-19 predicted, secret.X.sealed2 planned.
        let pcr13 = String(repeating: "ab", count: 20)
        try (try String(contentsOfFile: dir + "/pcrs.yaml", encoding: .utf8) + "  13: 0x\(pcr13)\n")
            .write(toFile: dir + "/pcrs13.yaml", atomically: true, encoding: .utf8)
        try FileManager.default.createDirectory(atPath: dir + "/aem/aem", withIntermediateDirectories: true)
        try write(Array("secret".utf8), to: dir + "/aem/aem/secret.txt")
        let sealArgs = ["seal", "--label", "aem", "--aem-dir", dir + "/aem", "--tpm-dir", dir + "/tpm",
                        "--event-log", dir + "/tpm12.log", "--pcrs", dir + "/pcrs13.yaml",
                        "--boot-dir", "Vectors/example/boot"] + Self.entryArgs
        // --pcrs without PCR13: refused, pointing at where a TPM 1.2 shows it (not tpm2_pcrread).
        let no13 = try aemPCR(sealArgs.map { $0 == dir + "/pcrs13.yaml" ? dir + "/pcrs.yaml" : $0 } + ["--dry-run"])
        #expect(no13.status == 2 && no13.stderr.contains("has no PCR13 sha1") && no13.stderr.contains("/sys/class/tpm/tpm0/pcrs")
                && !no13.stderr.contains("tpm2_pcrread"), "\(no13.stderr)")
        let dry = try aemPCR(sealArgs + ["--dry-run"])
        #expect(dry.status == 0, "\(dry.stderr)")
        #expect(dry.stdout.contains("sha1:13,17,18,19") && dry.stdout.contains("secret.txt.sealed2"), "\(dry.stdout)")
        #expect(dry.stdout.contains(pcr13) && dry.stdout.contains(filesOnly["sha1"]!["19"]!))
        #expect(!FileManager.default.fileExists(atPath: dir + "/tpm"))
        expectFitsWidth(dry.stdout)
        // A SEAL naming a PCR this tool does not seal to: the plan, exit 1, nothing written.
        try "# AEM\nSEAL=\"--pcr 0 --pcr 13 --pcr 17 --pcr 18 --pcr 19\"\n".write(toFile: dir + "/aem.conf", atomically: true, encoding: .utf8)
        let plan = try aemPCR(sealArgs + ["--aem-conf", dir + "/aem.conf", "--dry-run"])
        #expect(plan.status == 1, "\(plan.stderr)")
        #expect(flat(plan.stdout).contains("names PCR0") && plan.stdout.contains("anti-evil-maid-seal"), "\(plan.stdout)")
        #expect(plan.stdout.contains(pcr13) && plan.stdout.contains(filesOnly["sha1"]!["19"]!))
        #expect(!FileManager.default.fileExists(atPath: dir + "/tpm"))
        expectFitsWidth(plan.stdout)
        // SEAL+= as AEM's bash appends it: PCR0 too, so the plan, never a seal to 13,17-19 only
        try "SEAL=\"--pcr 13 --pcr 17 --pcr 18 --pcr 19\"\nSEAL+=\" --pcr 0\"\n".write(toFile: dir + "/aem.conf", atomically: true, encoding: .utf8)
        let appended = try aemPCR(sealArgs + ["--aem-conf", dir + "/aem.conf", "--dry-run"])
        #expect(appended.status == 1 && flat(appended.stdout).contains("names PCR0"), "\(appended.stdout)\(appended.stderr)")
        // an if block AEM's bash would run: refused, naming the line, nothing written
        try "SEAL=\"--pcr 13 --pcr 17 --pcr 18 --pcr 19\"\nif true; then SEAL+=\" --pcr 0\"; fi\n".write(toFile: dir + "/aem.conf", atomically: true, encoding: .utf8)
        let block = try aemPCR(sealArgs + ["--aem-conf", dir + "/aem.conf", "--dry-run"])
        #expect(block.status == 2 && block.stderr.hasPrefix("aem-pcr: error: \(dir)/aem.conf:2: ")
                && block.stderr.split(separator: "\n").count == 1, "\(block.stderr)")
        #expect(!FileManager.default.fileExists(atPath: dir + "/tpm"))
    }

    /// A SHA-1-only per-algorithm log (txt-stat's print) does not tell TPM 1.2 from 2.0: without
    /// --tpm the one line asks for it; with it, the log's family question is settled.
    @Test func sha1OnlyLogAsksForTheFamily() throws {
        let dir = try tempDir()
        let events = [
            DRTMEvent(pcr: 17, type: .mleHash, digests: [MultiHasher.hash(.sha1, [1])]),
            DRTMEvent(pcr: 17, type: .tbootMeasurement, digests: [MultiHasher.hash(.sha1, [2])]),
        ]
        try TextWriter.legacyLog(events, banks: [.sha1]).write(toFile: dir + "/txt-stat.txt", atomically: true, encoding: .utf8)
        let args = ["predict", "--force", "--event-log", dir + "/txt-stat.txt", "--boot-dir", "Vectors/example/boot"] + Self.entryArgs
        let r = try aemPCR(args)
        #expect(r.status == 2)
        #expect(r.stderr == "aem-pcr: error: \(dir)/txt-stat.txt does not tell the TPM family (SHA-1 records only): give --tpm 1.2 or --tpm 2.0 (/sys/class/tpm/tpm0/tpm_version_major says 1 or 2)\n")
        let given = try aemPCR(args + ["--tpm", "2.0"])
        #expect(!given.stderr.contains("TPM family"), "\(given.stderr)")
    }

    /// Without a log, tboot's own command line decides extpol= (TPM 2.0) and pcr_map= (TPM 1.2);
    /// an option that says otherwise is refused.
    @Test func tbootCommandLineOptions() throws {
        let base = ["predict", "--json", "--tboot", "Vectors/example/boot/tboot.gz", "--module", "Vectors/example/boot/xen-4.17.5.gz"]
        let e = try aemPCR(base + ["--tpm", "2.0", "--tboot-cmdline", "placeholder logging=memory extpol=embedded"])
        #expect(e.status == 0, "\(e.stderr)")
        let launch = (try JSONSerialization.jsonObject(with: Data(e.stdout.utf8)) as! [String: Any])["launch"] as! [String: Any]
        #expect(launch["extpol"] as? String == "embedded")
        let d = try aemPCR(base + ["--tpm", "1.2", "--tboot-cmdline", "placeholder pcr_map=da"])
        #expect(d.status == 0)
        #expect(((try JSONSerialization.jsonObject(with: Data(d.stdout.utf8)) as! [String: Any])["launch"] as! [String: Any])["pcr_map"] as? String == "da")
        let clash = try aemPCR(base + ["--tpm", "2.0", "--extpol", "sha1", "--tboot-cmdline", "extpol=sha256"])
        #expect(clash.status == 2 && clash.stderr.contains("contradicts extpol=sha256"), "\(clash.stderr)")
    }

    /// Issue 13: the next boot's tboot line has no extpol= while the current boot ran embedded.
    /// tboot then uses its default (sha256 only): refused like an explicit change, not predicted
    /// into SHA-1 as if the current policy stayed.
    @Test func implicitExtendPolicyChange() throws {
        let dir = try tempDir()
        let (log, events) = try Self.syntheticBoot(dir)
        try Self.pythonReplay(events, to: dir + "/pcrs.yaml")
        let r = try aemPCR(["predict", "--event-log", log, "--pcrs", dir + "/pcrs.yaml",
                            "--boot-dir", "Vectors/example/boot"] + Self.entryArgs)
        #expect(r.status == 2, "\(r.stdout)")
        #expect(r.stderr.contains("shows tboot extending sha1+sha256, but the next boot's tboot command line has no extpol=, so tboot 1.10.5 uses its default extpol=sha256, which would extend sha256"), "\(r.stderr)")
        let explicit = try aemPCR(["predict", "--event-log", log, "--pcrs", dir + "/pcrs.yaml", "--extpol", "sha256",
                                   "--boot-dir", "Vectors/example/boot"] + Self.entryArgs)
        #expect(explicit.status == 2 && explicit.stderr.contains("but extpol=sha256 would extend sha256"), "\(explicit.stderr)")
    }

    /// Issue 13: a log whose events are grouped per PCR (as logs rebuilt from Keylime or Intel
    /// SecL manifests are) holds each PCR's sequence unchanged: accepted, same prediction; the
    /// PCR values are python3's replay of the grouped events.
    @Test func logGroupedPerPCR() throws {
        let dir = try tempDir()
        let (log, events) = try Self.syntheticBoot(dir)
        let parsed = try DRTMEventLog.parse(path: log)
        let grouped = parsed.events.enumerated().sorted { ($0.element.pcr, $0.offset) < ($1.element.pcr, $1.offset) }.map(\.element)
        #expect(grouped.map(\.pcr) != parsed.events.map(\.pcr))
        try write(LogWriter.tcgLog(grouped, banks: [.sha1, .sha256]), to: dir + "/grouped.log")
        let groupedPlain = events.enumerated().sorted { ($0.element.0, $0.offset) < ($1.element.0, $1.offset) }.map(\.element)
        try Self.pythonReplay(groupedPlain, to: dir + "/pcrs.yaml")
        let args = ["predict", "--json", "--pcrs", dir + "/pcrs.yaml", "--boot-dir", "Vectors/example/boot"] + Self.entryArgs + Self.embedded
        let a = try aemPCR(args + ["--event-log", dir + "/grouped.log"])
        #expect(a.status == 0, "\(a.stderr)")
        let current = try PCRValuesFile.read(path: dir + "/pcrs.yaml")
        let got = try PCRValuesFile.parse(a.stdout, source: "predict")
        for bank in [HashAlgorithm.sha1, .sha256] {
            for pcr: PCRIndex in [17, 18, 19] { #expect(got[bank, pcr] == current[bank, pcr], "PCR\(pcr) \(bank)") }
        }
        let d = try aemPCR(["diff", "--json", "--event-log", dir + "/grouped.log", "--pcrs", dir + "/pcrs.yaml",
                            "--boot-dir", "Vectors/example/boot"] + Self.entryArgs + Self.embedded)
        #expect(d.status == 0, "\(d.stderr)")
        let diff = try JSONSerialization.jsonObject(with: Data(d.stdout.utf8)) as! [String: Any]
        #expect((diff["changes"] as! [Any]).isEmpty)
    }
}
