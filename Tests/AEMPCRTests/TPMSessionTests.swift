// SPDX-License-Identifier: Apache-2.0
import Foundation
import Testing
@testable import AEMPCR

/// Each command opens the TPM once (issue 20): the built binary's connect() calls, traced by
/// strace, are counted. tpm2-tss's swtpm TCTI connects to swtpm's command socket anew for each
/// command, and to its control socket once per TCTI context (it sets the locality there before
/// the context's first command; traced here: a `read` connects to it once): so a TPM 2.0
/// session is a connect() to the control socket; a TPM 1.2 session one to tcsd's port. seal reads the
/// PCRs, PCR13 with them, and seals through that one session.
enum TPMSessions {
    /// The result of `aem-pcr args` under `strace -f -e trace=connect`, and how many of its
    /// connect() calls name `address` (a socket path, or a TCP port as strace prints it).
    static func connects(to address: String, _ args: [String], env: [String: String]? = nil, dir: String) throws -> (ProcessResult, Int) {
        let strace = try #require(tool("strace"))
        let trace = dir + "/connect-\(UUID().uuidString).trace"
        defer { try? FileManager.default.removeItem(atPath: trace) }
        let r = try run(strace, ["-f", "-qq", "-s", "4096", "-o", trace, "-e", "trace=connect", Repo.binary] + args,
                        cwd: Repo.root, env: env)
        let lines = try String(contentsOfFile: trace, encoding: .utf8).split(separator: "\n")
        return (r, lines.filter { $0.contains("connect(") && $0.contains(address) }.count)
    }
}

extension SealTests {
    @Test(.needsTool("strace", package: "strace")) func eachCommandOpensTheTPMOnce() throws {
        guard let m = try Machine() else { return }
        // One TCTI context (one session) per connect to the control socket.
        let socket = "sun_path=\"\(m.tpm.control)\""
        try m.aem(["seal", m.srkFile, m.secrets, m.sealed])
        let newInitramfs = try m.installNewInitramfs()
        let (seal, n) = try TPMSessions.connects(to: socket, m.sealArguments(), dir: m.dir)
        #expect(seal.status == 0, "\(seal.stderr)")
        #expect(n == 1, "seal opened the TPM \(n) times")
        let (read, r) = try TPMSessions.connects(to: socket, ["read", "--tcti", m.tpm.tcti], dir: m.dir)
        #expect(read.status == 0 && r == 1, "read: \(r) \(read.stderr)")
        let (verify, v) = try TPMSessions.connects(to: socket, ["verify", "--event-log", m.logA, "--tcti", m.tpm.tcti], dir: m.dir)
        #expect(verify.status == 0 && v == 1, "verify: \(v) \(verify.stderr)")
        try m.powerCycle()
        let logB = try m.boot(log: "B.log", initramfs: newInitramfs)
        let (check, c) = try TPMSessions.connects(to: socket, ["check-boot", "--label", "aem", "--tpm-dir", m.tpmDir,
                                                             "--event-log", logB, "--tcti", m.tpm.tcti], dir: m.dir)
        #expect(check.status == 0 && c == 1, "check-boot: \(c) \(check.stdout)\(check.stderr)")
    }
}

extension TPM12SealTests {
    /// On a TPM 1.2, seal reads the PCRs and seals every secret through one tcsd connection,
    /// and check-boot reads through one.
    @Test(.needsTool("strace", package: "strace")) func sealConnectsToTcsdOnce() throws {
        guard tool("tcsd") != nil, tool("swtpm") != nil else { return }
        guard let tpm = try TPM12Fixture.start() else { return }
        defer { tpm.stop() }
        let env = ["TSS_TCSD_PORT": tpm.tcsdPort]
        let port = "sin_port=htons(\(tpm.tcsdPort))"
        let (dir, boot, initramfs) = try Self.exampleBoot()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try FileManager.default.createDirectory(atPath: dir + "/aem/aem", withIntermediateDirectories: true)
        for ext in ["txt", "key", "fre"] { try write(Array("secret \(ext)\n".utf8), to: dir + "/aem/aem/secret." + ext) }
        let a = try Self.boot12(tpm, initramfs: initramfs, dir: dir, name: "A")
        let sealArgs = ["seal", "--label", "aem", "--aem-dir", dir + "/aem", "--tpm-dir", dir + "/tpm",
                        "--srk-well-known", "--event-log", a.log, "--boot-dir", boot] + LogPredictionTests.entryArgs
        let (seal, n) = try TPMSessions.connects(to: port, sealArgs, env: env, dir: dir)
        #expect(seal.status == 0, "\(seal.stderr)")
        #expect(n == 1, "seal connected to tcsd \(n) times for three secrets")
        let (check, c) = try TPMSessions.connects(to: port, ["check-boot", "--label", "aem", "--tpm-dir", dir + "/tpm", "--event-log", a.log],
                                                  env: env, dir: dir)
        #expect(check.status == 0 && c == 1, "check-boot: \(c) \(check.stdout)\(check.stderr)")
    }
}
