// SPDX-License-Identifier: Apache-2.0
import Foundation
import Testing
@testable import AEMPCR
import AEMPCRTPM

/// `{bank: {pcr: lowercase hex}}` from tpm2_pcrread's YAML, parsed here with string operations
/// (not with the code under test).
func pcrreadValues(_ yaml: String) -> [String: [Int: String]] {
    var out = [String: [Int: String]]()
    var bank = ""
    for line in yaml.split(separator: "\n") {
        let t = line.trimmingCharacters(in: .whitespaces)
        if t.hasSuffix(":") { bank = String(t.dropLast()); continue }
        let kv = t.split(separator: ":", maxSplits: 1).map { $0.trimmingCharacters(in: .whitespaces) }
        if kv.count == 2, let i = Int(kv[0]) { out[bank, default: [:]][i] = kv[1].lowercased().replacingOccurrences(of: "0x", with: "") }
    }
    return out
}

/// Text with its line wrapping undone: runs of blanks and newlines as one space.
func flat(_ s: String) -> String {
    s.split(whereSeparator: { $0 == " " || $0 == "\n" }).joined(separator: " ")
}

/// The `pcrs` object of this tool's --json output.
func jsonPCRs(_ text: String) throws -> [String: [Int: String]] {
    let top = try JSONSerialization.jsonObject(with: Data(text.utf8)) as! [String: Any]
    var out = [String: [Int: String]]()
    for (bank, v) in top["pcrs"] as! [String: [String: String]] {
        for (k, hex) in v { out[bank, default: [:]][Int(k)!] = hex }
    }
    return out
}

@Suite struct LiveTPMTests {
    /// The simulated boot ran tboot with extpol=embedded (both banks); the example entry's tboot
    /// line has no extpol= (tboot's default, sha256), so the next boot's policy is named.
    static let entry = ["--grub-cfg", "Vectors/example/grub.cfg", "--entry", "AEM Qubes, with Xen hypervisor",
                        "--boot-dir", "Vectors/example/boot", "--extpol", "embedded"]

    @Test(.needsSoftwareTPM) func readEqualsTpm2PcrreadBeforeAndAfterALaunch() throws {
        guard let tpm = try SwTPM2.start() else { return }
        // Before any launch: PCR17-19 hold their reset value (all FF) and say so.
        let before = try aemPCR(["read", "--tcti", tpm.tcti])
        #expect(before.status == 0, "\(before.stderr)")
        #expect(flat(before.stdout).contains("no measured launch in this boot (PCR17–22 still at their reset value)"))
        #expect(before.stdout.contains("swtpm:path="))
        try tpm.boot()
        // 4 PCRs in 4 banks: 16 digests, more than one TPM2_PCR_Read returns.
        let r = try aemPCR(["read", "--tcti", tpm.tcti, "--json"])
        #expect(r.status == 0, "\(r.stderr)")
        let mine = try jsonPCRs(r.stdout)
        let theirs = pcrreadValues(try tpm.pcrread("sha1:13,17,18,19+sha256:13,17,18,19+sha384:13,17,18,19+sha512:13,17,18,19"))
        #expect(mine.count == 4)
        #expect(mine == theirs)
        if try SchemaTests.haveJSONSchema() { try SchemaTests().expectFollowsSchema("read", r.stdout, "after a launch") }
        #expect(!r.stdout.contains("no measured launch"))
        // The launch is what the independent simulator computed.
        let simulated = pcrreadValues(try run("/usr/bin/env", ["python3", Repo.path("Tests/Scripts/simulate-drtm-boot.py"),
                                                               "--no-tpm", "--log", tpm.dir + "/x.log", "--print-pcrs"]).stdout)
        #expect(mine["sha256"]?[17] == simulated["sha256"]?[17])
        #expect(mine["sha1"]?[18] == simulated["sha1"]?[18])
    }

    @Test(.needsSoftwareTPM) func manyPCRsInSeveralReads() throws {
        guard let tpm = try SwTPM2.start() else { return }
        try tpm.boot()
        let pcrs = Array(0...23)
        let r = try aemPCR(["read", "--tcti", tpm.tcti, "--json", "--bank", "sha256", "--bank", "sha1"] + pcrs.flatMap { ["--pcr", "\($0)"] })
        #expect(r.status == 0, "\(r.stderr)")
        let list = pcrs.map(String.init).joined(separator: ",")
        #expect(try jsonPCRs(r.stdout) == pcrreadValues(try tpm.pcrread("sha1:\(list)+sha256:\(list)")))
    }

    @Test(.needsSoftwareTPM) func verifyReadsTheTPMWhenNoPCRFileIsGiven() throws {
        guard let tpm = try SwTPM2.start() else { return }
        let log = try tpm.boot()
        let ok = try aemPCR(["verify", "--event-log", log, "--tcti", tpm.tcti])
        #expect(ok.status == 0, "\(ok.stdout) \(ok.stderr)")
        // tpm2_pcrread of every active bank: sha384/512, which this log does not cover, hold
        // PCR18 all 00 here; that says nothing about the log and is not refused.
        let dir = try tempDir()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let all = try tpm.pcrread("sha1:17,18+sha256:17,18+sha384:17,18+sha512:17,18")
        #expect(pcrreadValues(all)["sha384"]?[18] == String(repeating: "00", count: 48))
        try all.write(toFile: dir + "/all.yaml", atomically: true, encoding: .utf8)
        let withOthers = try aemPCR(["verify", "--event-log", log, "--pcrs", dir + "/all.yaml"])
        #expect(withOthers.status == 0, "\(withOthers.stdout) \(withOthers.stderr)")
        #expect(ok.stdout.contains("Verified") && ok.stdout.contains(tpm.tcti))
        // The same boot with one extend the log does not record.
        let bad = try tpm.boot(["--extra-extend"], log: "bad.log")
        let no = try aemPCR(["verify", "--event-log", bad, "--tcti", tpm.tcti])
        #expect(no.status == 1)
        #expect(no.stdout.contains("PCR17 sha1    DIFFERS"))
        #expect(no.stdout.contains("PCR18 sha1    match"))
        // The TCTI also comes from the environment, as tpm2-tools reads it.
        let env = try aemPCR(["verify", "--event-log", bad], env: ["TPM2TOOLS_TCTI": tpm.tcti])
        #expect(env.status == 1)
        #expect(flat(env.stdout).contains("from TPM2TOOLS_TCTI"))
    }

    @Test(.needsSoftwareTPM) func diffAndPredictFromTheTPMEqualThemWithAPCRFile() throws {
        guard let tpm = try SwTPM2.start() else { return }
        let log = try tpm.boot()
        let dir = try tempDir()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try tpm.pcrread("sha1:17,18,19+sha256:17,18,19").write(toFile: dir + "/pcrs.yaml", atomically: true, encoding: .utf8)
        for cmd in ["predict", "diff"] {
            let live = try aemPCR([cmd, "--json", "--event-log", log, "--tcti", tpm.tcti] + Self.entry)
            let file = try aemPCR([cmd, "--json", "--event-log", log, "--pcrs", dir + "/pcrs.yaml"] + Self.entry)
            #expect(live.status == 0, "\(live.stderr)")
            #expect(file.status == 0, "\(file.stderr)")
            #expect(live.stdout == file.stdout)
        }
        // The prediction for the same files is the boot the simulator ran.
        let p = try aemPCR(["predict", "--json", "--event-log", log, "--tcti", tpm.tcti] + Self.entry)
        let predicted = try jsonPCRs(p.stdout)
        let now = pcrreadValues(try tpm.pcrread("sha1:17,18+sha256:17,18"))
        #expect(predicted["sha256"]?[17] == now["sha256"]?[17])
        #expect(predicted["sha1"]?[18] == now["sha1"]?[18])
    }

    @Test func unreachableTCTIIsOneLine() throws {
        let dir = try tempDir()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let r = try aemPCR(["read", "--tcti", "swtpm:path=\(dir)/none"])
        #expect(r.status == 2)
        #expect(r.stderr.hasPrefix("aem-pcr: error: cannot open the TPM through TCTI 'swtpm:path="))
        #expect(r.stderr.split(separator: "\n").count == 1)
        #expect(!r.stderr.contains("ERROR:"), "tpm2-tss's own log lines must be silenced")
    }

    /// An empty TCTI or TPM2TOOLS_TCTI names no TCTI (as for the TCTI chosen): the family is
    /// still the kernel's, so the result is the one without them.
    @Test func emptyTCTIVariablesNameNoTPM() throws {
        let unset = try run("/usr/bin/env", ["-u", "TCTI", "-u", "TPM2TOOLS_TCTI", Repo.binary, "read", "--pcr", "17"])
        let empty = try run("/usr/bin/env", ["-u", "TCTI", "-u", "TPM2TOOLS_TCTI", "TCTI=", "TPM2TOOLS_TCTI=", Repo.binary, "read", "--pcr", "17"])
        #expect(empty.status == unset.status && empty.stderr == unset.stderr, "\(empty.stderr) vs \(unset.stderr)")
    }

    /// The current log from (an image of) physical memory when --event-log is absent.
    @Test func verifyReadsTheLogFromTheTXTHeap() throws {
        let dir = try tempDir()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let mem = try LogCommandTests().memoryImage(regs: LogCommandTests.registers(base: 0x1000, size: 0x100000),
                                                    heap: try LogCommandTests.realHeap(), heapAt: 0x1000, in: dir)
        // The values the vector's python3 replay lists for this heap's log.
        let listed = try LogVectors.listing("isecl_tagent_txt_heap_info.txt").pcrs
        var yaml = ""
        for bank in ["sha1", "sha256"] {
            yaml += "  \(bank):\n"
            for pcr in [17, 18] { yaml += "    \(pcr): 0x\(listed["\(pcr) \(bank)"]!)\n" }
        }
        let pcrs = dir + "/pcrs.yaml"
        try yaml.write(toFile: pcrs, atomically: true, encoding: .utf8)
        let r = try aemPCR(["verify", "--mem", mem, "--pcrs", pcrs])
        #expect(r.status == 0, "\(r.stdout) \(r.stderr)")
        #expect(flat(r.stdout).contains("Verified: the TXT heap in \(mem) (tpm20-tcg)"))
        // No TXT in the image: one line that says how to give the log instead.
        let none = try LogCommandTests().memoryImage(regs: [UInt8](repeating: 0xFF, count: 16), in: dir)
        let e = try aemPCR(["verify", "--mem", none, "--pcrs", pcrs])
        #expect(e.status == 2)
        #expect(e.stderr.hasPrefix("aem-pcr: error: the current DRTM log cannot be read ("))
        #expect(e.stderr.contains("give the log with --event-log FILE"))
        #expect(e.stderr.split(separator: "\n").count == 1)
        let p = try aemPCR(["predict", "--live", "--mem", none, "--pcrs", pcrs] + Self.entry)
        #expect(p.status == 2)
        #expect(p.stderr.contains("the current DRTM log cannot be read"))
    }

    @Test(.needsSoftwareTPM) func saveKeepsValuesAndLogThatVerifyTogether() throws {
        guard let tpm = try SwTPM2.start() else { return }
        try tpm.boot()
        let dir = try tempDir()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        // The simulated boot's log placed in a TXT heap: the real heap with its log swapped is
        // not needed; the real heap's log is saved and the values are the TPM's.
        let mem = try LogCommandTests().memoryImage(regs: LogCommandTests.registers(base: 0x1000, size: 0x100000),
                                                    heap: try LogCommandTests.realHeap(), heapAt: 0x1000, in: dir)
        let r = try aemPCR(["read", "--tcti", tpm.tcti, "--save", dir + "/parent/out", "--mem", mem])
        #expect(r.status == 0, "\(r.stderr)")
        // The missing directories are made, for their owner only.
        for d in ["/parent", "/parent/out"] {
            let dirMode = (try FileManager.default.attributesOfItem(atPath: dir + d)[.posixPermissions] as? NSNumber)?.intValue
            #expect(dirMode == 0o700)
        }
        for f in ["pcrs.yaml", "pcrs.json", "heap.dump"] {
            let mode = (try FileManager.default.attributesOfItem(atPath: dir + "/parent/out/" + f)[.posixPermissions] as? NSNumber)?.intValue
            #expect(mode == 0o600, "\(f)")
        }
        // The saved YAML is what tpm2_pcrread prints for the same PCRs.
        let saved = pcrreadValues(try String(contentsOfFile: dir + "/parent/out/pcrs.yaml", encoding: .utf8))
        #expect(saved == pcrreadValues(try tpm.pcrread("sha1:13,17,18,19+sha256:13,17,18,19+sha384:13,17,18,19+sha512:13,17,18,19")))
        #expect(try jsonPCRs(String(contentsOfFile: dir + "/parent/out/pcrs.json", encoding: .utf8)) == saved)
        // The dump is the TXT heap, as log dump writes it.
        let dump = Array(try Data(contentsOf: URL(fileURLWithPath: dir + "/parent/out/heap.dump")))
        #expect(dump == LogCommandTests.registers(base: 0x1000, size: 0x100000) + (try LogCommandTests.realHeap()))
    }

    @Test(.needsSoftwareTPM) func saveWritesValuesAndLogOrNothing() throws {
        guard let tpm = try SwTPM2.start() else { return }
        try tpm.boot()
        let dir = try tempDir()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        // No TXT heap in this memory image: nothing is written, not even the directory.
        try write([UInt8](repeating: 0xFF, count: 16), to: dir + "/mem")
        let r = try aemPCR(["read", "--tcti", tpm.tcti, "--save", dir + "/out", "--mem", dir + "/mem"])
        #expect(r.status == 2)
        #expect(r.stderr.split(separator: "\n").count == 1)
        #expect(!FileManager.default.fileExists(atPath: dir + "/out"))
    }
}

@Suite struct TPM12SysfsTests {
    /// The kernel's format (drivers/char/tpm/tpm-sysfs.c: "PCR-%02d: " then "%02X " per byte),
    /// written here by python3 for PCR values python3 computes.
    static func sysfsText() throws -> (text: String, pcr17: String) {
        let py = """
            import hashlib
            v = {i: bytes(20) for i in range(24)}
            for i in range(17, 23): v[i] = b'\\xff' * 20
            v[17] = hashlib.sha1(bytes(20) + hashlib.sha1(b'SINIT').digest()).digest()
            v[10] = hashlib.sha1(b'ima').digest()
            print(''.join('PCR-%02d: %s\\n' % (i, ''.join('%02X ' % b for b in v[i])) for i in range(24)), end='')
            """
        let r = try run("/usr/bin/env", ["python3", "-c", py])
        #expect(r.status == 0)
        let line17 = r.stdout.split(separator: "\n")[17]
        return (r.stdout, line17.dropFirst(8).replacingOccurrences(of: " ", with: "").lowercased())
    }

    @Test func parsesTheKernelsText() throws {
        let dir = try tempDir()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let (text, pcr17) = try Self.sysfsText()
        try text.write(toFile: dir + "/pcrs", atomically: true, encoding: .utf8)
        let r = try aemPCR(["read", "--tpm12-pcrs", dir + "/pcrs", "--json"])
        #expect(r.status == 0, "\(r.stderr)")
        let v = try jsonPCRs(r.stdout)
        if try SchemaTests.haveJSONSchema() { try SchemaTests().expectFollowsSchema("read", r.stdout, "TPM 1.2") }
        #expect(v.keys.sorted() == ["sha1"])
        #expect(v["sha1"]?[17] == pcr17)
        #expect(v["sha1"]?[18] == String(repeating: "ff", count: 20))
        #expect(v["sha1"]?[13] == String(repeating: "00", count: 20))
        // PCR18/19 still FF: said, not hidden.
        let t = try aemPCR(["read", "--tpm12-pcrs", dir + "/pcrs"])
        #expect(flat(t.stdout).contains("PCR18, PCR19 sha1: no measured launch"))
        // Another bank does not exist on a TPM 1.2.
        let b = try aemPCR(["read", "--tpm12-pcrs", dir + "/pcrs", "--bank", "sha256"])
        #expect(b.status == 2)
        #expect(b.stderr.contains("only the sha1 bank"))
    }

    @Test(arguments: [
        ("PCR-17: 00 11\n", "2 bytes instead of 20"),
        ("PCR-17 00\n", "not a PCR line"),
        ("PCR-24: " + String(repeating: "00 ", count: 20) + "\n", "PCR24 does not exist"),
        ("PCR-17: " + String(repeating: "0G ", count: 20) + "\n", "is not a byte in hex"),
        ("PCR-17: " + String(repeating: "00 ", count: 20) + "\nPCR-17: " + String(repeating: "00 ", count: 20) + "\n", "appears twice"),
        ("PCR-17: " + String(repeating: "00 ", count: 21) + "\n", "21 bytes instead of 20"),
    ])
    func refusesGarbledText(_ text: String, _ why: String) throws {
        let dir = try tempDir()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try text.write(toFile: dir + "/pcrs", atomically: true, encoding: .utf8)
        let r = try aemPCR(["read", "--tpm12-pcrs", dir + "/pcrs"])
        #expect(r.status == 2)
        #expect(r.stderr.contains(why), "\(r.stderr)")
        #expect(r.stderr.hasPrefix("aem-pcr: error: \(dir)/pcrs:"))
        #expect(r.stderr.split(separator: "\n").count == 1)
    }
}

@Suite struct TPMFamilyTests {
    /// The kernel's word (tpm_version_major), never a guess: 1, 2, or an error naming the file.
    @Test(arguments: [("1\n", "1.2"), ("2\n", "2.0"), ("3\n", "error")])
    func familyFromSysfs(_ text: String, _ expected: String) throws {
        let dir = try tempDir()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try text.write(toFile: dir + "/tpm_version_major", atomically: true, encoding: .utf8)
        do {
            let f = try LiveTPM.family(sysfs: dir)
            #expect(f.rawValue == expected)
        } catch {
            #expect(expected == "error")
            #expect("\(error)".contains("\(dir)/tpm_version_major says '3'"))
        }
    }
}
