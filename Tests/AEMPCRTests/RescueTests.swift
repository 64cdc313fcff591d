// SPDX-License-Identifier: Apache-2.0
import Foundation
import Testing
@testable import AEMPCR

/// The machine as a rescue system or an unusual setup presents it (issue 19, item 13), each
/// in a private mount namespace (root, as CI runs): no /proc, and a TPM 1.2 whose kernel files
/// are faked over /sys/class while a TPM 2.0 TCTI is in the environment.
@Suite(.serialized) struct RescueTests {
    /// Runs `args` (the binary first) after `setup` in a private mount namespace; nil (the test
    /// recorded in CI) when this is not root.
    static func inNamespace(_ setup: String, _ args: [String], env: [String: String]? = nil) throws -> ProcessResult? {
        guard let unshare = tool("unshare") else { return nil }
        guard getuid() == 0 else {
            if Repo.inCI { Issue.record("CI runs this test as root; uid is \(getuid())") }
            return nil
        }
        return try run(unshare, ["--mount", "--propagation", "private", "sh", "-c", setup + " && exec \"$@\"", "sh"] + args, env: env)
    }

    /// Without /proc (hidden under an empty tmpfs) the Swift runtime has no argv: the command
    /// line captured before main serves, so each command does what it is asked — never the
    /// help with exit 0.
    @Test func commandsWorkWithoutProc() throws {
        let dir = try tempDir()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let hideProc = "mount -t tmpfs none /proc && test ! -e /proc/self/cmdline"
        // verify and check-boot "succeeded" (the help, exit 0): now the file they name is missing.
        guard let verify = try Self.inNamespace(hideProc, [Repo.binary, "verify", "--event-log", dir + "/nope.log", "--pcrs", dir + "/p"]) else { return }
        #expect(verify.status == 2 && verify.stdout.isEmpty, "\(verify.stdout)")
        #expect(verify.stderr == "aem-pcr: error: \(dir)/nope.log: no such file\n", "\(verify.stderr)")
        let check = try Self.inNamespace(hideProc, [Repo.binary, "check-boot", "--label", "aem", "--tpm-dir", dir, "--pcrs", dir + "/p"])
        #expect(check?.status == 2 && check?.stderr.contains("\(dir)/aem/aem-pcr-prediction.json is missing") == true, "\(check?.stderr ?? "")")
        // A measurement: tboot's H(H(cmdline) || H(image)), the command line empty, by python3.
        try write(Array("AEM".utf8), to: dir + "/f")
        let m = try Self.inNamespace(hideProc, [Repo.binary, "measure", "--nounzip", "--bank", "sha256", dir + "/f"])
        let py = try run("/usr/bin/env", ["python3", "-c", "import hashlib as h; print('sha256', h.sha256(h.sha256(b'').digest() + h.sha256(b'AEM').digest()).hexdigest())"])
        #expect(m?.status == 0 && m?.stdout == py.stdout, "\(m?.stdout ?? "")\(m?.stderr ?? "")")
    }

    /// A fake TPM 1.2 in sysfs (tpm_version_major 1, the kernel's pcrs text written by python3).
    static func tpm12Setup(_ pcrs: String) -> String {
        "mount -t tmpfs none /sys/class && mkdir -p /sys/class/tpm/tpm0 && echo 1 > /sys/class/tpm/tpm0/tpm_version_major"
            + " && cp '\(pcrs)' /sys/class/tpm/tpm0/pcrs"
    }

    /// On a TPM 1.2 machine a TPM 2.0 TCTI in the environment is ignored (one note) and the PCRs
    /// come from sysfs; --tcti contradicts the machine and is refused.
    @Test func tpm12MachineIgnoresTheTCTIVariable() throws {
        let dir = try tempDir()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let (text, pcr17) = try TPM12SysfsTests.sysfsText()
        try text.write(toFile: dir + "/pcrs", atomically: true, encoding: .utf8)
        let env = ["TPM2TOOLS_TCTI": "swtpm:path=\(dir)/no-such-socket", "TCTI": "swtpm:path=\(dir)/no-such-socket"]
        guard let r = try Self.inNamespace(Self.tpm12Setup(dir + "/pcrs"), [Repo.binary, "read", "--pcr", "17", "--json"], env: env) else { return }
        #expect(r.status == 0, "\(r.stderr)")
        #expect(try jsonPCRs(r.stdout)["sha1"]?[17] == pcr17, "\(r.stdout)")
        #expect(r.stderr == "aem-pcr: note: TPM2TOOLS_TCTI=swtpm:path=\(dir)/no-such-socket is ignored: this machine's TPM is a TPM 1.2 (/sys/class/tpm/tpm0/tpm_version_major), which tpm2-tss cannot reach\n", "\(r.stderr)")
        // --tcti on the command line: refused, one line.
        let t = try Self.inNamespace(Self.tpm12Setup(dir + "/pcrs"), [Repo.binary, "read", "--pcr", "17", "--tcti", "device:/dev/tpmrm0"])
        #expect(t?.status == 2 && t?.stdout.isEmpty == true, "\(t?.stdout ?? "")")
        #expect(t?.stderr == "aem-pcr: error: --tcti device:/dev/tpmrm0 names a TPM 2.0 transport, but this machine's TPM is a TPM 1.2 (/sys/class/tpm/tpm0/tpm_version_major), which is read from sysfs and sealed to through tcsd: drop --tcti\n", "\(t?.stderr ?? "")")
        // Without the variables: no note.
        let plain = try Self.inNamespace(Self.tpm12Setup(dir + "/pcrs"), ["/usr/bin/env", "-u", "TPM2TOOLS_TCTI", "-u", "TCTI", Repo.binary, "read", "--pcr", "17"])
        #expect(plain?.status == 0 && plain?.stderr.isEmpty == true && plain?.stdout.contains(pcr17) == true, "\(plain?.stdout ?? "")\(plain?.stderr ?? "")")
    }
}
