// SPDX-License-Identifier: Apache-2.0
import Foundation
import Testing
@testable import AEMPCR

/// `predict --format keylime|tpm2-pcr`: the values come from python3 (Vectors/expected.json and
/// python3 replays of the synthetic TPM 2.0 boot); the PCR values file goes through tpm2-tools'
/// tpm2_policypcr on swtpm, whose policy digest is compared with the one tpm2-tools computes
/// from a file python3 wrote, and with TPM2_PolicyPCR's formula (TPM 2.0 Part 3) in python3.
@Suite(.serialized) struct ExportTests {
    static let example = ["--grub-cfg", "Vectors/example/grub.cfg", "--entry", "AEM Qubes, with Xen hypervisor",
                          "--boot-dir", "Vectors/example/boot"]

    func validateKeylime(_ text: String) throws {
        guard try SchemaTests.haveJSONSchema() else { return }
        try SchemaTests().expectFollowsSchema("predict-keylime", text, "predict --format keylime")
        // Keylime's own reading (keylime/tpm/tpm_main.py readPolicy): keys are PCR numbers ≤ 24,
        // values lists of lower-case hex; it adds the mask.
        let py = """
            import json, sys
            policy = json.loads(sys.argv[1])
            mask = 0
            for k, v in policy.items():
                assert k.isdigit() and int(k) <= 24, k
                assert isinstance(v, list) and all(x == x.lower() for x in v), v
                mask |= 1 << int(k)
            print("0x%X" % mask)
            """
        let r = try run("/usr/bin/env", ["python3", "-c", py, text])
        #expect(r.status == 0, "\(r.stderr)")
    }

    /// TPM 1.2 is refused by both exports (issue 23, 5): Keylime dropped TPM 1.2, and
    /// tpm2_policypcr builds TPM 2.0 policies; a TPM 1.2 prediction exported as either was a
    /// file nothing can use. One line, exit 2, nothing on standard output.
    @Test(arguments: [("keylime", "Keylime supports TPM 2.0 only"), ("tpm2-pcr", "tpm2_policypcr builds TPM 2.0 policies only")])
    func exportsRefuseTPM12(format: String, why: String) throws {
        let r = try aemPCR(["predict", "--tpm", "1.2", "--format", format] + Self.example)
        #expect(r.status == 2 && r.stdout.isEmpty, "\(r.stdout)")
        #expect(r.stderr.hasPrefix("aem-pcr: error: --format \(format) is for a TPM 2.0 and this prediction is for a TPM 1.2: \(why)"), "\(r.stderr)")
        #expect(r.stderr.split(separator: "\n").count == 1, "\(r.stderr)")
    }

    /// A TPM 2.0 prediction from the files alone fixes PCR19 (and not PCR17, which holds
    /// SINIT's events): `--format tpm2-pcr` wrote PCR19's value alone, which the real
    /// tpm2_policypcr on swtpm rejects for the selection sha256:17,18,19 the manual and the
    /// standard error line promise. It now refuses, naming the PCRs and the way to fix them.
    @Test func tpm2PCRFileFromFilesAloneRefuses() throws {
        let r = try run("/bin/sh", ["-c", "exec \"$0\" \"$@\" > /dev/null", Repo.binary, "predict", "--tpm", "2.0", "--format", "tpm2-pcr"] + Self.example,
                        cwd: Repo.root)
        #expect(r.status == 2, "\(r.stderr)")
        #expect(r.stderr.hasPrefix("aem-pcr: error: --format tpm2-pcr writes PCR17, PCR18 and PCR19 and the prediction does not fix PCR17"), "\(r.stderr)")
        #expect(r.stderr.contains("--live, or --event-log FILE --pcrs FILE") && r.stderr.split(separator: "\n").count == 1, "\(r.stderr)")
        // What it wrote before (PCR19's 32 bytes: all zero, nothing extends it on TPM 2.0),
        // through the real tpm2_policypcr; three values pass.
        guard findTool("swtpm") != nil, findTool("tpm2_policypcr") != nil else { return }
        let dir = try tempDir()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try write([UInt8](repeating: 0, count: 32), to: dir + "/pcr19-only.bin")
        let partial = try run("/bin/bash", [Repo.path("Tests/Scripts/swtpm-policypcr.sh"), "sha256:17,18,19", dir + "/pcr19-only.bin"])
        #expect(partial.status != 0 && partial.status != 77, "tpm2_policypcr accepted 32 bytes for three PCRs: \(partial.stdout)")
        try write([UInt8](repeating: 0, count: 96), to: dir + "/three.bin")
        let whole = try run("/bin/bash", [Repo.path("Tests/Scripts/swtpm-policypcr.sh"), "sha256:17,18,19", dir + "/three.bin"])
        #expect(whole.status == 0 && whole.stdout.count == 65, "\(whole.stderr)")
    }

    /// The synthetic TPM 2.0 boot with a new kernel: the policy accepts the current boot (python3
    /// replay of the logged events) and the next one (python3 replay with the new kernel's
    /// measurement, python3 hashlib), sha256 by default on TPM 2.0.
    @Test func keylimeAcceptsCurrentAndPredicted() throws {
        let dir = try tempDir()
        let (log, events) = try LogPredictionTests.syntheticBoot(dir)
        try LogPredictionTests.pythonReplay(events, to: dir + "/pcrs.yaml")
        let current = try PCRValuesFile.read(path: dir + "/pcrs.yaml")
        let newKernel = "Vectors/example/boot/vmlinuz-6.6.48-1.qubes.fc37.x86_64"
        let r = try aemPCR(["predict", "--format", "keylime", "--accept", "current,predicted",
                            "--event-log", log, "--pcrs", dir + "/pcrs.yaml", "--replace", "kernel=" + newKernel] + Self.example + LogPredictionTests.embedded)
        #expect(r.status == 0, "\(r.stderr)")
        try validateKeylime(r.stdout)
        let obj = try JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as! [String: [String]]

        let newM1 = try LogPredictionTests.pythonKernelEvent(Repo.path(newKernel))
        var swapped = events
        swapped[events.count - 5 + 3] = (17, newM1)  // policy, policy, M0, M1, M2
        try LogPredictionTests.pythonReplay(swapped, to: dir + "/next.yaml")
        let next = try PCRValuesFile.read(path: dir + "/next.yaml")

        #expect(obj["17"] == [current[.sha256, 17]!.hex, next[.sha256, 17]!.hex])
        #expect(current[.sha256, 17] != next[.sha256, 17])
        // Unchanged PCRs are listed once.
        #expect(obj["18"] == [current[.sha256, 18]!.hex])
        #expect(obj["19"] == [current[.sha256, 19]!.hex])
        #expect(obj["18"] == [next[.sha256, 18]!.hex])
        // The SHA-1 bank on request.
        let sha1 = try aemPCR(["predict", "--format", "keylime", "--bank", "sha1", "--event-log", log,
                               "--pcrs", dir + "/pcrs.yaml", "--replace", "kernel=" + newKernel] + Self.example + LogPredictionTests.embedded)
        #expect(sha1.status == 0, "\(sha1.stderr)")
        let obj1 = try JSONSerialization.jsonObject(with: Data(sha1.stdout.utf8)) as! [String: [String]]
        #expect(obj1 == ["17": [next[.sha1, 17]!.hex], "18": [next[.sha1, 18]!.hex], "19": [next[.sha1, 19]!.hex]])
    }

    /// The values file through tpm2_policypcr on swtpm: the same policy digest as for the file
    /// python3 writes from its own replay, and as TPM2_PolicyPCR's formula.
    @Test func tpm2PCRFileGivesTheSamePolicy() throws {
        guard tool("swtpm") != nil, tool("tpm2_policypcr") != nil else { return }
        let dir = try tempDir()
        let (log, events) = try LogPredictionTests.syntheticBoot(dir)
        try LogPredictionTests.pythonReplay(events, to: dir + "/pcrs.yaml")
        let values = try PCRValuesFile.read(path: dir + "/pcrs.yaml")
        let out = dir + "/ours.bin"
        let r = try run("/bin/sh", ["-c", "exec \"$0\" \"$@\" > \(out)", Repo.binary, "predict", "--format", "tpm2-pcr",
                                    "--event-log", log, "--pcrs", dir + "/pcrs.yaml"] + Self.example + LogPredictionTests.embedded, cwd: Repo.root)
        #expect(r.status == 0, "\(r.stderr)")
        #expect(r.stderr.contains("sha256:17,18,19"), "\(r.stderr)")
        let theirs = dir + "/python.bin"
        let py = """
            import sys
            vals = [l.split('0x')[1].strip() for l in open(sys.argv[1]) if l.strip().startswith(('17:', '18:', '19:'))]
            # sha256 section follows sha1 in the YAML: the last three values.
            open(sys.argv[2], 'wb').write(bytes.fromhex(''.join(vals[-3:])))
            """
        let w = try run("/usr/bin/env", ["python3", "-c", py, dir + "/pcrs.yaml", theirs])
        #expect(w.status == 0, "\(w.stderr)")
        let ours = try run("/bin/bash", [Repo.path("Tests/Scripts/swtpm-policypcr.sh"), "sha256:17,18,19", out])
        let ref = try run("/bin/bash", [Repo.path("Tests/Scripts/swtpm-policypcr.sh"), "sha256:17,18,19", theirs])
        #expect(ours.status == 0 && ref.status == 0, "\(ours.stderr)\(ref.stderr)")
        #expect(ours.stdout.count == 65 && ours.stdout == ref.stdout, "\(ours.stdout) vs \(ref.stdout)")
        let formula = """
            import hashlib, struct, sys
            vals = bytes.fromhex(sys.argv[1])
            sel = struct.pack('>IHB', 1, 0x000B, 3) + bytes([0, 0, 0x0E])
            print(hashlib.sha256(bytes(32) + struct.pack('>I', 0x17F) + sel + hashlib.sha256(vals).digest()).hexdigest())
            """
        let hex = [17, 18, 19].map { values[.sha256, PCRIndex(rawValue: UInt32($0))]!.hex }.joined()
        let f = try run("/usr/bin/env", ["python3", "-c", formula, hex])
        #expect(f.stdout == ours.stdout)
    }

    @Test(arguments: [
        (["--format", "keylime", "--bank", "sha1", "--bank", "sha256", "--tpm", "2.0", "--extpol", "embedded"], "exports one bank"),
        (["--format", "keylime", "--accept", "current,predicted", "--tpm", "1.2"], "--accept current needs"),
        (["--format", "keylime", "--accept", "next", "--tpm", "1.2"], "'next' is neither"),
        (["--format", "keylime", "--tpm", "2.0"], "no DRTM PCR in the sha256 bank"),
    ])
    func exportErrorsAreOneLine(args: [String], message: String) throws {
        var a = args
        // PCR19 is fixed on TPM 2.0 (stays zero); ask for a PCR-free bank to get the error.
        if message.contains("no DRTM PCR") { a += ["--extpol", "sha1"] }
        let r = try aemPCR(["predict"] + Self.example + a)
        #expect(r.status == 2)
        #expect(r.stderr.hasPrefix("aem-pcr: error: "), "\(r.stderr)")
        #expect(r.stderr.contains(message), "\(r.stderr)")
        #expect(r.stderr.split(separator: "\n").count == 1, "\(r.stderr)")
    }
}
