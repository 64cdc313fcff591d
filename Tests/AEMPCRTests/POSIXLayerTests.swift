// SPDX-License-Identifier: Apache-2.0
import Foundation
import Testing
import AEMPCRSystem
import Glibc

/// The POSIX layer (`Sources/AEMPCRSystem`): errno messages, `mkdir -p`, directory listing, the
/// atomic file and the all-or-nothing set of files. What the system did is read from outside the
/// code under test: python3's os.strerror, ls, stat, and strace's record of the system calls
/// (with its fault injection for the failures).
@Suite struct POSIXLayerTests {
    @Test func errnoReadsAsTheCLibrarySaysIt() throws {
        let r = try run("/usr/bin/env", ["python3", "-c", "import os; print(os.strerror(2)); print(os.strerror(5)); print(os.strerror(13))"])
        #expect(r.status == 0)
        #expect(r.stdout == "\(Errno(ENOENT))\n\(Errno(EIO))\n\(Errno(EACCES))\n")
        #expect(Errno(ENOENT) == Errno(2) && Errno(ENOENT) != Errno(EIO))
    }

    @Test func directoryCreateMakesEveryMissingParent() throws {
        let dir = try tempDir()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try Directory.create(dir + "/a/b/c", mode: 0o700)
        try Directory.create(dir + "/a/b/c", mode: 0o700)  // present already: nothing to do
        let r = try run("/usr/bin/stat", ["-c", "%F %a", dir + "/a", dir + "/a/b", dir + "/a/b/c"])
        #expect(r.stdout == String(repeating: "directory 700\n", count: 3), "\(r.stdout)")
        // A component that is a file: the error names it.
        try write([1], to: dir + "/f")
        #expect(throws: OutputFileError.self) { try Directory.create(dir + "/f/g", mode: 0o700) }
        do { try Directory.create(dir + "/f/g", mode: 0o700) } catch let e as OutputFileError {
            #expect(e.path == dir + "/f/g" && e.reason == "cannot create the directory: Not a directory", "\(e)")
        }
    }

    /// A symbolic link another user planted on the way (here owned by nobody, made with ln and
    /// chown -h) is not followed: nothing is made where it points. One root or this user owns
    /// is followed, as before.
    @Test(.enabled(if: geteuid() == 0, "needs root to give the link to another user"))
    func directoryCreateRefusesAPlantedSymbolicLink() throws {
        let dir = try tempDir()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try Directory.create(dir + "/real", mode: 0o755)
        for (link, owner) in [("planted", "65534:65534"), ("own", "0:0")] {
            #expect(try run("/bin/ln", ["-s", "real", dir + "/" + link]).status == 0)
            #expect(try run("/bin/chown", ["-h", owner, dir + "/" + link]).status == 0)
        }
        #expect(try run("/usr/bin/stat", ["-c", "%F %u", dir + "/planted"]).stdout == "symbolic link 65534\n")
        do {
            try Directory.create(dir + "/planted/a/b", mode: 0o700)
            Issue.record("followed the planted link")
        } catch let e as OutputFileError {
            #expect(e.path == dir + "/planted" && e.reason.hasPrefix("is a symbolic link owned by user 65534"), "\(e)")
        }
        // Only the last component: the same.
        #expect(throws: OutputFileError.self) { try Directory.create(dir + "/planted/c", mode: 0o700, parents: false) }
        #expect(try Directory.entries(dir + "/real") == [])
        try Directory.create(dir + "/own/a/b", mode: 0o700)
        #expect(try Directory.entries(dir + "/real/a") == ["b"])
        // Without parents, a missing parent is an error, not made.
        #expect(throws: OutputFileError.self) { try Directory.create(dir + "/none/d", mode: 0o700, parents: false) }
        #expect(!FileManager.default.fileExists(atPath: dir + "/none"))
    }

    @Test func directoryEntriesAreWhatLsLists() throws {
        let dir = try tempDir()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        for n in ["b", ".hidden", "a b", "z"] { try write([0], to: dir + "/" + n) }
        try Directory.create(dir + "/sub", mode: 0o755)
        try FileManager.default.createSymbolicLink(atPath: dir + "/link", withDestinationPath: "sub")
        let ls = try run("/usr/bin/env", ["LC_ALL=C", "ls", "-A1", dir])
        #expect(try Directory.entries(dir) == ls.stdout.split(separator: "\n").map(String.init))
        #expect(try Directory.subdirectories(dir) == ["link", "sub"])
        #expect(throws: Errno(ENOENT)) { try Directory.entries(dir + "/none") }
    }

    // MARK: the atomic file and the set, through the CLI under strace

    private static func strace() -> String? { tool("strace") }

    /// `log dump -o` flushes the directory after renaming its file into it: strace -y names the
    /// descriptor of each fsync, and one of the directory comes after the rename.
    @Test(.needsTool("strace", package: "strace")) func atomicFileFlushesItsDirectory() throws {
        guard let strace = Self.strace() else { return }
        let dir = try tempDir()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let mem = try LogCommandTests().memoryImage(regs: LogCommandTests.registers(base: 0x1000, size: 0x100000),
                                                    heap: try LogCommandTests.realHeap(), heapAt: 0x1000, in: dir)
        try Directory.create(dir + "/out", mode: 0o755)
        let r = try run(strace, ["-f", "-qq", "-y", "-o", dir + "/trace", "-e", "trace=fsync,rename,renameat,renameat2",
                                 Repo.binary, "log", "dump", "-o", dir + "/out/heap.dump", "--mem", mem], cwd: Repo.root)
        #expect(r.status == 0, "\(r.stderr)")
        let lines = try String(contentsOfFile: dir + "/trace", encoding: .utf8).split(separator: "\n").map { String($0.drop { $0 != " " }.drop { $0 == " " }) }
        let renamed = try #require(lines.firstIndex { $0.hasPrefix("rename") && $0.contains(dir + "/out/heap.dump") }, "\(lines)")
        #expect(lines[..<renamed].contains { $0.hasPrefix("fsync(") && $0.contains("/out/.heap.dump.") }, "\(lines)")
        #expect(lines[renamed...].contains { $0.hasPrefix("fsync(") && $0.contains("<\(dir)/out>") }, "\(lines)")
    }

    /// A TPM 1.2 PCR file in the kernel's format, PCR17 = `fill`, for `read --tpm12-pcrs`.
    private static func pcrFile(_ path: String, fill: UInt8) throws {
        var text = ""
        for i in 0..<24 {
            let b: UInt8 = i == 17 ? fill : (i >= 18 && i <= 22 ? 0xFF : 0)
            text += String(format: "PCR-%02d: ", i) + String(repeating: String(format: "%02X ", b), count: 20) + "\n"
        }
        try text.write(toFile: path, atomically: true, encoding: .utf8)
    }

    private struct Saved: Equatable { var yaml: String; var json: String; var dump: [UInt8] }

    private static func saved(_ dir: String) -> Saved? {
        guard let y = try? String(contentsOfFile: dir + "/pcrs.yaml", encoding: .utf8),
              let j = try? String(contentsOfFile: dir + "/pcrs.json", encoding: .utf8),
              let d = try? Data(contentsOf: URL(fileURLWithPath: dir + "/heap.dump")) else { return nil }
        return Saved(yaml: y, json: j, dump: Array(d))
    }

    /// `read --save` under strace's fault injection: whichever rename, fsync or getdents64 fails,
    /// the directory holds the whole previous set or the whole new one, never a mix, and no
    /// temporary directory is left beside it. (Renamed one file at a time, a failed second
    /// rename left a new pcrs.yaml beside the old pcrs.json.)
    @Test(.needsTool("strace", package: "strace")) func savedSetIsAllOrNothing() throws {
        guard let strace = Self.strace() else { return }
        let dir = try tempDir()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let mem = try LogCommandTests().memoryImage(regs: LogCommandTests.registers(base: 0x1000, size: 0x100000),
                                                    heap: try LogCommandTests.realHeap(), heapAt: 0x1000, in: dir)
        try Self.pcrFile(dir + "/old", fill: 0x11)
        try Self.pcrFile(dir + "/new", fill: 0x22)
        let out = dir + "/parent/out"
        func save(_ pcrs: String, inject: [String] = []) throws -> ProcessResult {
            try run(strace, ["-f", "-qq", "-o", "/dev/null"] + inject + [Repo.binary, "read", "--tpm12-pcrs", pcrs, "--save", out, "--mem", mem], cwd: Repo.root)
        }
        let first = try save(dir + "/old")
        try #require(first.status == 0, "\(first.stderr)")
        let old = try #require(Self.saved(out))
        #expect(old.yaml.contains("17: 0x" + String(repeating: "11", count: 20)))
        let second = try save(dir + "/new")
        try #require(second.status == 0, "\(second.stderr)")
        let new = try #require(Self.saved(out))
        #expect(new.yaml.contains("17: 0x" + String(repeating: "22", count: 20)) && new.json != old.json)

        var failures = 0
        for (call, n) in [("rename,renameat,renameat2", 1), ("rename,renameat,renameat2", 2), ("rename,renameat,renameat2", 3),
                          ("fsync", 1), ("fsync", 2), ("fsync", 3), ("fsync", 4), ("getdents64", 1)] {
            // Back to the old set, then the new one again with one call failing.
            #expect(try save(dir + "/old").status == 0)
            let r = try save(dir + "/new", inject: ["-e", "inject=\(call):error=EIO:when=\(n)"])
            let now = Self.saved(out)
            #expect(now == old || now == new, "\(call) #\(n): \(r.stderr)")
            if r.status != 0 {
                failures += 1
                #expect(r.stderr.hasPrefix("aem-pcr: error: \(out)") && r.stderr.split(separator: "\n").count == 1, "\(call) #\(n): \(r.stderr)")
                #expect(now == old, "\(call) #\(n): failed, yet the set changed")
            }
            #expect(try Directory.entries(dir + "/parent") == ["out"], "\(call) #\(n)")
            #expect(try Directory.entries(out) == ["heap.dump", "pcrs.json", "pcrs.yaml"], "\(call) #\(n)")
        }
        #expect(failures >= 3)
    }

    /// A directory that holds other files is not replaced (they would go with the previous set).
    @Test func savedSetRefusesADirectoryWithOtherFiles() throws {
        let dir = try tempDir()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try write([7], to: dir + "/mine")
        #expect(throws: OutputFileError.self) { try SavedSet.write(dir: dir, files: [("a", [1]), ("b", [2])]) }
        #expect(try Directory.entries(dir) == ["mine"])
        let parent = Directory.split(dir).directory
        #expect(try !Directory.entries(parent).contains { $0.hasPrefix("." + Directory.split(dir).name + ".") })
        // A set of one file is written in place beside the others.
        try SavedSet.write(dir: dir, files: [("a", [1])])
        #expect(try Directory.entries(dir) == ["a", "mine"])
    }
}
