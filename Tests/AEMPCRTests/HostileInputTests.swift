import Foundation
import Testing
@testable import AEMPCR
@testable import AEMPCRSeal

/// Issue 19, items 5, 6, 8 (files) and 12: inputs a reader could take two ways, and files that
/// would make the tool wait forever.

/// Runs the built aem-pcr under `timeout -s KILL 10`: a command that would hang ends with
/// status 137. (SIGKILL: the children Foundation's Process starts here have SIGTERM blocked.)
private func bounded(_ args: [String], env: [String: String]? = nil) throws -> ProcessResult {
    try run("/usr/bin/timeout", ["-s", "KILL", "10", Repo.binary] + args, cwd: Repo.root, env: env)
}

/// One `aem-pcr: error: ...` line naming `path`, exit 2.
private func expectOneLineRefusal(_ r: ProcessResult, naming path: String, _ what: String,
                                  sourceLocation: SourceLocation = #_sourceLocation) {
    #expect(r.status == 2, "\(what): status \(r.status): \(r.stderr)", sourceLocation: sourceLocation)
    #expect(r.stderr.hasPrefix("aem-pcr: error: ") && r.stderr.split(separator: "\n").count == 1
            && r.stderr.contains(path), "\(what): \(r.stderr)", sourceLocation: sourceLocation)
}

// MARK: - item 8 (files): a FIFO is refused before it is opened

@Suite struct FIFOTests {
    static let entry = ["--grub-cfg", "Vectors/example/grub.cfg", "--entry", "0", "--boot-dir", "Vectors/example/boot"]

    @Test func everyInputAndOutputRefusesAFIFO() throws {
        let dir = try tempDir()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let fifo = dir + "/fifo"
        #expect(mkfifo(fifo, 0o600) == 0)
        let h13 = String(repeating: "13", count: 32)
        try "  sha256:\n    13: 0x\(h13)\n".write(toFile: dir + "/v.yaml", atomically: true, encoding: .utf8)
        let log = "Vectors/logs/isecl_tagent_txt_heap_info.bin"
        let cases: [(String, [String])] = [
            ("policy --values", ["policy", "--pcr", "13", "--values", fifo]),
            ("policy -o", ["policy", "--pcr", "13", "--values", dir + "/v.yaml", "-o", fifo]),
            ("predict --event-log", ["predict", "--event-log", fifo] + Self.entry),
            ("predict --grub-cfg", ["predict", "--event-log", log, "--force", "--grub-cfg", fifo, "--entry", "0",
                                    "--boot-dir", "Vectors/example/boot"]),
            ("predict --mem", ["predict", "--live", "--mem", fifo] + Self.entry),
            ("verify --mem", ["verify", "--mem", fifo]),
            ("verify --pcrs", ["verify", "--event-log", log, "--pcrs", fifo]),
            ("log dump --mem", ["log", "dump", "--mem", fifo, "-o", dir + "/heap.dump"]),
            ("log dump -o", ["log", "dump", "--mem", dir + "/v.yaml", "-o", fifo]),
            ("log show", ["log", "show", fifo]),
        ]
        for (what, args) in cases {
            let r = try bounded(args)
            expectOneLineRefusal(r, naming: fifo, what)
            #expect(r.stderr.contains("FIFO"), "\(what): \(r.stderr)")
        }
        #expect(!FileManager.default.fileExists(atPath: dir + "/heap.dump"))
        // notice keeps its promise: its one line and exit 0, with a FIFO as --mem and as its state
        try FileManager.default.createDirectory(atPath: dir + "/state", withIntermediateDirectories: true)
        #expect(mkfifo(dir + "/state/notice.state", 0o600) == 0)
        let n = try bounded(["notice", "--mem", fifo, "--state-dir", dir + "/state", "--grub-cfg", "Vectors/example/grub.cfg",
                             "--boot-dir", "Vectors/example/boot"])
        #expect(n.status == 0, "notice: \(n.status) \(n.stdout) \(n.stderr)")
        #expect((n.stdout + n.stderr).contains("FIFO"), "notice: \(n.stdout) \(n.stderr)")
    }
}
