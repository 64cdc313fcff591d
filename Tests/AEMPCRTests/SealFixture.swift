// SPDX-License-Identifier: Apache-2.0
import Foundation
import Testing

/// A software TPM 2.0 (swtpm) in a temporary directory, driven by tpm2-tools and by
/// Tests/Scripts/tpm2-extend.py for PCR17-19 at localities above 0: the reference the sealing
/// tests compare with. nil (test skipped) when swtpm or tpm2-tools are missing outside CI.
final class SwTPM2 {
    let dir: String
    private var process: Process?
    var socket: String { dir + "/sock" }
    var control: String { dir + "/sock.ctrl" }
    var tcti: String { "swtpm:path=\(socket)" }
    var env: [String: String] { ["TPM2TOOLS_TCTI": tcti, "TCTI": tcti] }
    /// swtpm's process id (tests stop it with SIGSTOP to see a TPM that never answers).
    var pid: Int32? { process?.processIdentifier }

    init?() throws {
        for t in ["swtpm", "swtpm_ioctl", "tpm2_pcrread", "tpm2_createpolicy", "tpm2_flushcontext", "tpm2_startup"] {
            if tool(t) == nil { return nil }
        }
        dir = try tempDir()
        try start()
    }

    private func start() throws {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: tool("swtpm")!)
        p.arguments = ["socket", "--tpm2", "--tpmstate", "dir=\(dir)",
                       "--server", "type=unixio,path=\(socket)",
                       "--ctrl", "type=unixio,path=\(control)", "--flags", "not-need-init,startup-clear"]
        p.standardOutput = FileHandle.nullDevice
        p.standardError = FileHandle.nullDevice
        try p.run()
        process = p
        for _ in 0..<100 {
            if FileManager.default.fileExists(atPath: socket) && FileManager.default.fileExists(atPath: control) { return }
            usleep(50_000)
        }
        Issue.record("swtpm did not open its sockets in \(dir)")
    }

    func stop() {
        if let p = process, p.isRunning { kill(p.processIdentifier, SIGKILL); p.waitUntilExit() }
        process = nil
    }

    deinit {
        stop()
        try? FileManager.default.removeItem(atPath: dir)
    }

    /// A started swtpm, or nil (test skipped) when swtpm or tpm2-tools are missing outside CI.
    static func start() throws -> SwTPM2? { try SwTPM2() }

    /// Simulates a measured launch with Tests/Scripts/simulate-drtm-boot.py (python3, independent
    /// of aem-pcr); returns the path of the TCG log it wrote.
    @discardableResult
    func boot(_ extra: [String] = [], log name: String = "boot.log") throws -> String {
        let log = dir + "/" + name
        let r = try run("/usr/bin/env", ["python3", Repo.path("Tests/Scripts/simulate-drtm-boot.py"),
                                         "--server", socket, "--ctrl", control, "--log", log] + extra)
        #expect(r.status == 0, "simulate-drtm-boot.py: \(r.stderr)")
        return log
    }

    /// tpm2_pcrread's YAML for `selection`, e.g. `sha1:17,18+sha256:17`.
    func pcrread(_ selection: String) throws -> String {
        try tpm2("tpm2_pcrread", [selection]).stdout
    }

    /// Runs a tpm2-tools command against this TPM; records an Issue when it fails.
    @discardableResult
    func tpm2(_ name: String, _ args: [String], sourceLocation: SourceLocation = #_sourceLocation) throws -> ProcessResult {
        let r = try run(tool(name)!, args, env: env)
        #expect(r.status == 0, "\(name) \(args.joined(separator: " ")): \(r.stderr)", sourceLocation: sourceLocation)
        return r
    }

    /// Leaves no session or transient object behind (swtpm has few slots), as AEM's trap does.
    func flush() throws {
        for flag in ["-t", "-s", "-l"] { _ = try run(tool("tpm2_flushcontext")!, [flag], env: env) }
    }

    func ioctl(_ args: [String]) throws {
        let r = try run(tool("swtpm_ioctl")!, ["--unix", control] + args)
        #expect(r.status == 0, "swtpm_ioctl \(args.joined(separator: " ")): \(r.stderr)")
    }

    /// Extends `pcr` at `locality` with one digest per bank (`sha256=HEX`).
    func extend(_ pcr: Int, locality: Int, _ digests: [String]) throws {
        try ioctl(["-l", String(locality)])
        let r = try run("/usr/bin/env", ["python3", Repo.path("Tests/Scripts/tpm2-extend.py"), socket, String(pcr)] + digests)
        #expect(r.status == 0, "extend PCR\(pcr): \(r.stderr)")
        try ioctl(["-l", "0"])
    }

    /// A DRTM launch as SINIT starts it: PCR17-22 reset, PCR17 = H(0 || H(data)) (locality 4).
    func drtm(_ data: String) throws { try ioctl(["-h", data]) }

    /// Power cycle: TPM_Init, then TPM2_Startup(CLEAR). PCRs reset; persistent objects stay.
    func powerCycle() throws {
        try ioctl(["-i"])
        try tpm2("tpm2_startup", ["-c"])
    }

    /// tpm2_pcrread's YAML for `selection`, written to `path`.
    func pcrread(_ selection: String, to path: String) throws {
        let r = try tpm2("tpm2_pcrread", [selection])
        try r.stdout.write(toFile: path, atomically: true, encoding: .utf8)
    }
}

/// Hex digest of `text` by python3's hashlib (independent of the code under test).
func pyHash(_ alg: String, _ text: String) throws -> String {
    let r = try run("/usr/bin/env", ["python3", "-c", "import hashlib,sys; print(hashlib.new(sys.argv[1], sys.argv[2].encode()).hexdigest())", alg, text])
    return r.stdout.trimmingCharacters(in: .whitespacesAndNewlines)
}
