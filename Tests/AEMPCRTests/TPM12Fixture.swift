// SPDX-License-Identifier: Apache-2.0
import Foundation
import Testing

/// Tests/Scripts/tpm12-swtpm.sh as a child process: commands on its stdin, answers on its
/// stdout. Closing its stdin (or this process dying) stops swtpm and tcsd and removes the state.
final class TPM12Fixture {
    let process: Process
    let input: FileHandle
    let output: FileHandle
    private(set) var tcsdPort = ""
    private var buffer = [UInt8]()

    private init(process: Process, input: FileHandle, output: FileHandle) {
        self.process = process
        self.input = input
        self.output = output
    }

    /// tcsd's port for every fixture of this test process. trousers in this process finds tcsd
    /// through TSS_TCSD_PORT: it is set once, the first time a fixture starts, and never changed
    /// again, so that no test changes the environment while others read it (the fixtures run
    /// one at a time: the suite is serialized).
    static let processPort: String = {
        let r = try? run("/usr/bin/env", ["python3", "-c", """
            import socket
            s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])
            """])
        let port = r?.stdout.trimmingCharacters(in: .whitespacesAndNewlines) ?? "30003"
        setenv("TSS_TCSD_PORT", port, 1)
        return port
    }()

    /// nil when the script cannot run here (exit 77: a tool missing, or not root); in CI that
    /// is a failure.
    static func start(_ arguments: [String] = []) throws -> TPM12Fixture? {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/bin/bash")
        p.arguments = [Repo.path("Tests/Scripts/tpm12-swtpm.sh")] + arguments
        var env = ProcessInfo.processInfo.environment
        env["TPM12_TCSD_PORT"] = processPort
        p.environment = env
        let stdin = Pipe(), stdout = Pipe()
        p.standardInput = stdin
        p.standardOutput = stdout
        p.standardError = FileHandle.standardError
        try p.run()
        let fixture = TPM12Fixture(process: p, input: stdin.fileHandleForWriting,
                                   output: stdout.fileHandleForReading)
        guard let line = fixture.readLine() else {
            p.waitUntilExit()
            if p.terminationStatus == 77 {
                Issue.record("tpm12-swtpm.sh could not run (exit 77) though the test's trait found its tools")
                return nil
            }
            Issue.record("tpm12-swtpm.sh exited \(p.terminationStatus) before it was ready")
            return nil
        }
        guard line.hasPrefix("ready TSS_TCSD_PORT=") else {
            Issue.record("tpm12-swtpm.sh: \(line)")
            fixture.stop()
            return nil
        }
        fixture.tcsdPort = String(line.dropFirst("ready TSS_TCSD_PORT=".count))
        return fixture
    }

    func readLine() -> String? {
        while true {
            if let nl = buffer.firstIndex(of: 10) {
                let line = String(decoding: buffer[..<nl], as: UTF8.self)
                buffer.removeSubrange(...nl)
                return line
            }
            let data = output.availableData
            if data.isEmpty { return nil }
            buffer += data
        }
    }

    /// Sends one command; throws unless the script answers "ok".
    func command(_ line: String) throws {
        input.write(Data((line + "\n").utf8))
        let answer = readLine() ?? "fail (script ended)"
        try #require(answer == "ok", "tpm12-swtpm.sh \(line): \(answer)")
    }

    /// A power cycle and a measured launch: `data` into the DRTM sequence, then the extends
    /// (PCR, hex SHA-1 digest), static PCRs at locality 0, PCR17-19 at locality 2.
    func boot(_ data: String, _ extends: [(Int, String)]) throws {
        try command((["boot", data] + extends.map { "\($0.0):\($0.1)" }).joined(separator: " "))
    }

    func stop() {
        try? input.close()
        process.waitUntilExit()
    }
}

extension Trait where Self == ConditionTrait {
    /// A TPM 1.2 on swtpm behind its own tcsd (Tests/Scripts/tpm12-swtpm.sh): its tools, and root
    /// for tcsd.
    static var needsTPM12: Self {
        needs("root and swtpm, swtpm_setup, swtpm_ioctl, tcsd, tpm_sealdata, tpm_unsealdata or tpm_takeownership (Debian packages swtpm, swtpm-tools, trousers, tpm-tools)",
              getuid() == 0 && ["swtpm", "swtpm_setup", "swtpm_ioctl", "tcsd", "tpm_sealdata", "tpm_unsealdata", "tpm_takeownership"].allSatisfy { findTool($0) != nil })
    }
}
