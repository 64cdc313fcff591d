// SPDX-License-Identifier: Apache-2.0
import Foundation
import Testing
@testable import AEMPCR

/// Paths and helpers shared by the tests.
enum Repo {
    static let root: String = {
        var url = URL(fileURLWithPath: #filePath)
        for _ in 0..<3 { url.deleteLastPathComponent() }
        return url.path
    }()
    static func path(_ relative: String) -> String { root + "/" + relative }
    static var binary: String { root + "/.build/debug/aem-pcr" }
    static let inCI = ProcessInfo.processInfo.environment["CI"] == "true"
}

struct ProcessResult {
    var status: Int32
    var stdout: String
    var stderr: String
}

/// Runs a program and collects its output.
@discardableResult
func run(_ executable: String, _ args: [String], cwd: String? = nil, env: [String: String]? = nil) throws -> ProcessResult {
    let p = Process()
    p.executableURL = URL(fileURLWithPath: executable)
    p.arguments = args
    if let cwd { p.currentDirectoryURL = URL(fileURLWithPath: cwd) }
    if let env { p.environment = ProcessInfo.processInfo.environment.merging(env) { $1 } }
    let out = Pipe(), err = Pipe()
    p.standardOutput = out
    p.standardError = err
    p.standardInput = FileHandle.nullDevice
    try p.run()
    // Read both pipes concurrently so neither fills up; the semaphore orders the error read
    // before its use.
    final class Box: @unchecked Sendable { var data = Data() }
    let errBox = Box()
    let done = DispatchSemaphore(value: 0)
    let t = Thread {
        errBox.data = err.fileHandleForReading.readDataToEndOfFile()
        done.signal()
    }
    t.start()
    let outData = out.fileHandleForReading.readDataToEndOfFile()
    p.waitUntilExit()
    done.wait()
    let errData = errBox.data
    return ProcessResult(status: p.terminationStatus, stdout: String(decoding: outData, as: UTF8.self),
                         stderr: String(decoding: errData, as: UTF8.self))
}

/// Where an external reference tool is installed, or nil.
func findTool(_ name: String, in dirs: [String] = ["/usr/sbin", "/usr/bin", "/sbin", "/bin"]) -> String? {
    dirs.map { $0 + "/" + name }.first { FileManager.default.isExecutableFile(atPath: $0) }
}

/// Finds an external reference tool inside a test. The test carries `.needsTool(name, …)`, so
/// outside CI it only runs when the tool is there; in CI, where .ci/run installs it, a missing
/// tool fails the test here (nil is returned after the failure is recorded).
func tool(_ name: String, in dirs: [String] = ["/usr/sbin", "/usr/bin", "/sbin", "/bin"]) -> String? {
    if let path = findTool(name, in: dirs) { return path }
    Issue.record("\(name) is missing; .ci/run installs it")
    return nil
}

/// Test conditions for what lies outside the package: a test whose reference is missing is
/// reported SKIPPED with the reason naming it (Swift Testing's `.enabled(if:)`), never counted
/// as passed. In CI (`CI=true`) the test always runs, so a missing reference fails it.
extension Trait where Self == ConditionTrait {
    /// Runs when `available` holds (or in CI); `what` names the missing reference.
    static func needs(_ what: String, _ available: @autoclosure @escaping @Sendable () -> Bool) -> Self {
        .enabled(if: Repo.inCI || available(), Comment(rawValue: "\(what) is missing"))
    }

    /// Runs when the tool `name` (from Debian's `package`) is installed (or in CI).
    static func needsTool(_ name: String, package: String, in dirs: [String] = ["/usr/sbin", "/usr/bin", "/sbin", "/bin"]) -> Self {
        needs("\(name) (Debian package \(package))", findTool(name, in: dirs) != nil)
    }

    /// swtpm, swtpm_ioctl and tpm2_pcrread, for a software TPM 2.0.
    static var needsSoftwareTPM: Self {
        needs("swtpm, swtpm_ioctl or tpm2_pcrread (Debian packages swtpm, swtpm-tools, tpm2-tools)",
              ["swtpm", "swtpm_ioctl", "tpm2_pcrread"].allSatisfy { findTool($0) != nil })
    }

    /// Debian's /boot/tboot.gz, a real tboot image.
    static var needsDebianTboot: Self {
        needs("/boot/tboot.gz (Debian package tboot)", FileManager.default.fileExists(atPath: "/boot/tboot.gz"))
    }

    /// python3 with the jsonschema module (Debian package python3-jsonschema).
    static var needsJSONSchema: Self {
        needs("python3's jsonschema module (Debian package python3-jsonschema)",
              (try? run("/usr/bin/env", ["python3", "-c", "import jsonschema"]).status) == 0)
    }
}

/// The built `aem-pcr` executable (built by `swift build` before `swift test`, as README says).
func aemPCR(_ args: [String], env: [String: String]? = nil) throws -> ProcessResult {
    let bin = Repo.binary
    guard FileManager.default.isExecutableFile(atPath: bin) else {
        Issue.record("\(bin) not built: run `swift build` before `swift test`")
        return ProcessResult(status: -1, stdout: "", stderr: "")
    }
    return try run(bin, args, cwd: Repo.root, env: env)
}

func readText(_ relative: String) throws -> String {
    try String(contentsOfFile: Repo.path(relative), encoding: .utf8)
}

/// Data lines of a vector file: `#` comments and blank lines dropped, split at tabs.
func tsvRows(_ text: String) -> [[String]] {
    text.split(separator: "\n", omittingEmptySubsequences: true)
        .filter { !$0.hasPrefix("#") }
        .map { $0.split(separator: "\t", omittingEmptySubsequences: false).map(String.init) }
}

/// A new scratch directory, `aem-pcr-tests-PID-UUID` in the temporary directory. Tests remove
/// theirs with `defer`; whatever a test leaves (one that returns early, fails, or never had
/// its `defer`) is removed when the test process exits, by the handler the first call
/// registers: every `aem-pcr-tests-PID-` directory of this process.
func tempDir() throws -> String {
    let d = scratchPrefix + UUID().uuidString
    try FileManager.default.createDirectory(atPath: d, withIntermediateDirectories: true)
    return d
}

/// The prefix of this process's scratch directories; its first use registers their removal
/// at exit (`atexit`, which Swift Testing's runner reaches by returning from main).
private let scratchPrefix: String = {
    atexit {
        let tmp = NSTemporaryDirectory()
        let mine = "aem-pcr-tests-\(getpid())-"
        for name in (try? FileManager.default.contentsOfDirectory(atPath: tmp)) ?? [] where name.hasPrefix(mine) {
            try? FileManager.default.removeItem(atPath: tmp + name)
        }
    }
    return NSTemporaryDirectory() + "aem-pcr-tests-\(getpid())-"
}()

func write(_ bytes: [UInt8], to path: String) throws {
    try Data(bytes).write(to: URL(fileURLWithPath: path))
}

/// Text output within 80 columns, except where a line holds one word longer than that (a path,
/// never cut inside, so that it can be copied; a command's trailing ` \` stays with it; a
/// word of a command is as bash splits it, a quoted space inside it).
func expectFitsWidth(_ text: String, sourceLocation: SourceLocation = #_sourceLocation) {
    for line in text.split(separator: "\n") where line.count > 80 {
        var words = [String](), current = "", quoted = false, escaped = false
        for c in line {
            if escaped { current.append(c); escaped = false; continue }
            if c == "'" { quoted.toggle() } else if c == "\\" && !quoted { escaped = true } else if c == " " && !quoted {
                if !current.isEmpty { words.append(current) }
                current = ""
                continue
            }
            current.append(c)
        }
        if !current.isEmpty { words.append(current) }
        if words.last == "\\" { words.removeLast() }
        #expect(words.count == 1, "too wide: \(line)", sourceLocation: sourceLocation)
    }
}
