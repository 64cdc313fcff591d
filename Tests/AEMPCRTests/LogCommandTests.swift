// SPDX-License-Identifier: Apache-2.0
import Foundation
import Testing
@testable import AEMPCR
import Glibc

/// `aem-pcr log show | replay | dump` and the TXT memory reader behind `dump`. Expected events and
/// PCR values come from the Python listings printed in `Vectors/logs/isecl_*.txt`, never from the
/// code under test.
@Suite struct LogCommandTests {
    static let rawLog = "Vectors/logs/isecl_tagent_txt-logs.bin"
    static let heapDump = "Vectors/logs/isecl_tagent_txt_heap_info.bin"

    // MARK: log show

    @Test(arguments: [(rawLog, "isecl_tagent_txt-logs.txt"), (heapDump, "isecl_tagent_txt_heap_info.txt")])
    func showJSONMatchesListing(file: String, listing: String) throws {
        let r = try logCLI(["log", "show", "--json", file])
        #expect(r.status == 0, "\(r.stderr)")
        let json = try jsonObject(r.stdout)
        #expect(json["source"] as? String == file)
        #expect(json["format"] as? String == "tpm20-tcg")
        #expect(json["banks"] as? [String] == ["sha1", "sha256"])
        let events = try #require(json["events"] as? [[String: Any]])
        let listed = try LogVectors.listing(listing).events
        #expect(events.count == 19 && listed.count == 19)
        for (i, (e, l)) in zip(events, listed).enumerated() {
            #expect(e["index"] as? Int == i)
            #expect(e["pcr"] as? Int == Int(l.pcr), "event \(i)")
            #expect(e["type"] as? String == String(format: "0x%03x", l.type), "event \(i)")
            #expect(e["digests"] as? [String: String] == l.digests, "event \(i)")
            #expect((e["data"] as? String)?.hasPrefix(l.dataPrefix) == true, "event \(i)")
        }
        #expect(events[0]["type_name"] as? String == "HASH_START")
        #expect(events[7]["type_name"] as? String == "MLE_HASH" && events[7]["data"] as? String == "")
        #expect(events[18]["type_name"] as? String == "TBOOT")
        #expect((json["problems"] as? [Any])?.isEmpty == true)
    }

    @Test func showText() throws {
        let r = try logCLI(["log", "show", Self.rawLog])
        #expect(r.status == 0, "\(r.stderr)")
        let out = r.stdout
        #expect(out.contains("format tpm20-tcg"))
        #expect(out.contains("banks sha1, sha256, 19 events"))
        #expect(out.contains("0   PCR17  0x402 HASH_START"))
        #expect(out.contains("18  PCR17  0x501 TBOOT"))
        // SHA-256 digests of the listing, whole, on the digest lines.
        #expect(out.contains("sha256  5d0220ffbceca9ca4e28215480c0280b1681328326c593743fa183f70ffbe834"))
        // HASH_START: 36 bytes, shown whole in rows of 32 bytes.
        #expect(out.contains("data    36 bytes:\n      72589322d1c6cab6e7a1fb82b44565777ffaab90ee8c1c3559578adf1c1ba11b\n      00000000\n"))
        #expect(out.contains("data    4 bytes: 01000000"))
        #expect(out.contains("data    0 bytes"))
        // NV_INFO_HASH: 95 bytes, cut to its first 32 without --verbose.
        #expect(out.contains("data    95 bytes:\n      0101c10102000b620444080020ef9a26fc22d1ae8cecff59e9481ac1ec533dbe…\n"))
        for line in out.split(separator: "\n") { #expect(line.count <= 80, "\(line)") }

        let v = try logCLI(["log", "show", "-v", Self.rawLog])
        #expect(v.stdout.contains("      0101c10102000b620444080020ef9a26fc22d1ae8cecff59e9481ac1ec533dbe\n"
                                  + "      228bec6d17930f4cb2cc5b972400680101c10103000b6204040800209f970e88\n"))
        #expect(!v.stdout.contains("…"))
        for line in v.stdout.split(separator: "\n") { #expect(line.count <= 80, "\(line)") }
    }

    /// The first three records of a real, corrupt `txt-stat` log (OpenCIT issue 63): a HASH_START
    /// logged twice, then a record for PCR 255; its digest is not SHA-1 of its data.
    func corruptTextLog() throws -> String {
        let lines = try LogVectors.text("opencit_issue63_txtstat_tpm2_sha1_eventlog_excerpt.txt")
            .split(separator: "\n", omittingEmptySubsequences: false)
        let path = try tempDir() + "/txt-stat.txt"
        try write(Array(lines.prefix(37).joined(separator: "\n").utf8) + [10], to: path)
        return path
    }

    @Test func strictRefusesLenientWarns() throws {
        let file = try corruptTextLog()
        let strict = try logCLI(["log", "show", file])
        #expect(strict.status == 2)
        #expect(strict.stdout.isEmpty)
        #expect(strict.stderr.contains("line 24") && strict.stderr.contains("repeats event 0"))

        let lenient = try logCLI(["log", "show", "--lenient", file])
        #expect(lenient.status == 0, "\(lenient.stderr)")
        #expect(lenient.stdout.contains("3 events") && lenient.stdout.contains("PCR255  0x401 PCR_MAPPING"))
        let warnings = lenient.stderr.split(separator: "\n")
        #expect(warnings.count == 2)
        #expect(warnings.allSatisfy { $0.hasPrefix("aem-pcr: warning: ") })
        #expect(warnings.first?.contains("repeats event 0") == true && warnings.last?.contains("PCR 255") == true)

        let json = try jsonObject(try logCLI(["log", "show", "--lenient", "--json", file]).stdout)
        let problems = try #require(json["problems"] as? [[String: Any]])
        #expect(problems.compactMap { $0["code"] as? String } == ["log-duplicate-event", "log-pcr-invalid"])
        #expect(problems.compactMap { $0["line"] as? Int } == [24, 32])
    }

    // MARK: log replay

    @Test func replayRawLogMarksPartialBanks() throws {
        let r = try logCLI(["log", "replay", Self.rawLog])
        #expect(r.status == 0, "\(r.stderr)")
        #expect(r.stderr.isEmpty)
        // PCR values printed by the separate Python parser at the end of the listing.
        let pcrs = try LogVectors.listing("isecl_tagent_txt-logs.txt").pcrs
        #expect(pcrs.count == 4)
        #expect(r.stdout.contains("17   sha1*    " + pcrs["17 sha1"]!))
        #expect(r.stdout.contains("17   sha256   " + pcrs["17 sha256"]!))
        #expect(r.stdout.contains("18   sha1*    " + pcrs["18 sha1"]!))
        #expect(r.stdout.contains("18   sha256   " + pcrs["18 sha256"]!))
        #expect(r.stdout.contains("* partial: bank sha1 of PCR17 lacks events 15, 17, 18 (tboot extended only\n    sha256)"))
        #expect(r.stdout.contains("* partial: bank sha1 of PCR18 lacks event 16 (tboot extended only sha256)"))
        for line in r.stdout.split(separator: "\n") { #expect(line.count <= 80, "\(line)") }
    }

    @Test(arguments: [(rawLog, "isecl_tagent_txt-logs.txt"), (heapDump, "isecl_tagent_txt_heap_info.txt")])
    func replayJSONFeedsPCRFile(file: String, listing: String) throws {
        let r = try logCLI(["log", "replay", "--json", file])
        #expect(r.status == 0, "\(r.stderr)")
        let json = try jsonObject(r.stdout)
        let pcrs = try #require(json["pcrs"] as? [String: [String: String]])
        let listed = try LogVectors.listing(listing).pcrs
        var flat = [String: String]()
        for (bank, values) in pcrs { for (pcr, hex) in values { flat["\(pcr) \(bank)"] = hex } }
        #expect(flat == listed)
        #expect((json["data_mismatches"] as? [Any])?.isEmpty == true)

        // The whole output is a PCR file, as `predict --json` is.
        let values = try PCRValuesFile.parse(r.stdout, source: "replay.json")
        #expect(values.banks == [.sha1, .sha256])
        for (key, hex) in listed {
            let f = key.split(separator: " ")
            #expect(values[HashAlgorithm(name: String(f[1]))!, PCRIndex(rawValue: UInt32(f[0])!)]?.hex == hex, "\(key)")
        }

        let partial = try #require(json["partial"] as? [[String: Any]])
        if file == Self.rawLog {
            #expect(partial.count == 2)
            #expect(partial[0]["pcr"] as? Int == 17 && partial[0]["bank"] as? String == "sha1")
            #expect(partial[0]["missing_events"] as? [Int] == [15, 17, 18])
            #expect(partial[1]["pcr"] as? Int == 18 && partial[1]["missing_events"] as? [Int] == [16])
        } else {
            #expect(partial.isEmpty)  // this boot's tboot extended both banks
        }
    }

    @Test(.needsTool("sha1sum", package: "coreutils")) func replayWarnsAboutDataMismatches() throws {
        let file = try corruptTextLog()
        #expect(try logCLI(["log", "replay", file]).status == 2)
        let r = try logCLI(["log", "replay", "--lenient", "--json", file])
        #expect(r.status == 0, "\(r.stderr)")
        let json = try jsonObject(r.stdout)
        let m = try #require(json["data_mismatches"] as? [[String: Any]])
        #expect(m.compactMap { $0["event"] as? Int } == [0, 1, 2])
        #expect(m[0]["bank"] as? String == "sha1" && m[0]["logged"] as? String == "e064421772da0cca59cea47801c2ee5e5c2a1758")
        if let sha1sum = tool("sha1sum") {  // the trait runs this test only with it
            // SHA-1 of HASH_START's 36 data bytes, by coreutils.
            let data = try tempDir() + "/data"
            try write(Hex.decode("01e0e469911a09c3cfea6e492cb36a50fcc4a53780608b90b8031a4dc32cff7b00000000")!, to: data)
            let sum = try run(sha1sum, [data]).stdout.prefix(40)
            #expect(m[0]["expected"] as? String == String(sum))
        }
        #expect(json["not_extended"] as? [Int] == [2])  // PCR 255
        #expect((json["pcrs"] as? [String: [String: String]])?["sha1"]?.keys.sorted() == ["17"])

        let text = try logCLI(["log", "replay", "--lenient", file])
        #expect(text.stdout.contains("Not extended: event 2 (PCR 255)."))
        #expect(text.stderr.contains("aem-pcr: warning: event 0 (PCR17, 0x402 HASH_START): its sha1 digest e064421772da0cca59cea47801c2ee5e5c2a1758 is not the hash of its data"))
    }

    // MARK: log dump

    /// The heap of the published dump (0x100000 bytes at file offset 0x1000).
    static func realHeap() throws -> [UInt8] {
        let b = try LogVectors.bytes("isecl_tagent_txt_heap_info.bin")
        return Array(b[0x1000..<0x101000])
    }

    /// A sparse file laid out like physical memory: `regs` at TXT.HEAP.BASE's address, `heap`
    /// (if any) at `heapAt`, size up to the end of the TXT public space.
    func memoryImage(regs: [UInt8], heap: [UInt8] = [], heapAt: UInt64 = 0, in dir: String) throws -> String {
        let path = dir + "/mem"
        let fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0o644)
        #expect(fd >= 0)
        defer { close(fd) }
        #expect(ftruncate(fd, off_t(0xFED4_0000)) == 0)
        if !heap.isEmpty { #expect(heap.withUnsafeBytes { pwrite(fd, $0.baseAddress, $0.count, off_t(heapAt)) } == heap.count) }
        #expect(regs.withUnsafeBytes { pwrite(fd, $0.baseAddress, $0.count, off_t(0xFED3_0300)) } == regs.count)
        return path
    }

    static func registers(base: UInt64, size: UInt64) -> [UInt8] {
        (0..<8).map { UInt8(truncatingIfNeeded: base >> (8 * UInt64($0))) }
            + (0..<8).map { UInt8(truncatingIfNeeded: size >> (8 * UInt64($0))) }
    }

    @Test(arguments: [UInt64(0x1000), 0x7AE0_0000])
    func dumpFromMemoryImage(base: UInt64) throws {
        let dir = try tempDir()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let heap = try Self.realHeap()
        let mem = try memoryImage(regs: Self.registers(base: base, size: 0x100000), heap: heap, heapAt: base, in: dir)
        let out = dir + "/heap.bin"
        let r = try logCLI(["log", "dump", "--mem", mem, "-o", out])
        #expect(r.status == 0, "\(r.stderr)")
        #expect(r.stdout.contains("19 events"))
        // Read from root-only /dev/mem: the dump is readable by its owner only.
        let mode = (try FileManager.default.attributesOfItem(atPath: out)[.posixPermissions] as? NSNumber)?.intValue
        #expect(mode == 0o600)
        #expect(try FileManager.default.contentsOfDirectory(atPath: dir).sorted() == ["heap.bin", "mem"])

        // The compact layout: the two registers, then the heap.
        let dump = Array(try Data(contentsOf: URL(fileURLWithPath: out)))
        #expect(dump == Self.registers(base: base, size: 0x100000) + heap)

        let log = try DRTMEventLog.parse(path: out)
        let reference = try DRTMEventLog.parse(path: LogVectors.path("isecl_tagent_txt_heap_info.bin"))
        #expect(log.events.count == 19)
        #expect(zip(log.events, reference.events).allSatisfy { $0.isSameRecord(as: $1) })
        LogVectors.check(log, against: try LogVectors.listing("isecl_tagent_txt_heap_info.txt").events)
    }

    /// Each failure: exit 2, one error line, and neither the output nor a temporary file left.
    @Test(arguments: [
        ("missing", "no such file"),
        ("all-ff", "read all FF, so this machine has no TXT (or the firmware disabled it) and no measured launch happened"),
        ("all-zero", "read all zero"),
        ("size-0", "TXT.HEAP.SIZE is 0"),
        ("huge", "more than 64 MiB"),
        ("no-heap", "BiosData declares a size of 0 bytes"),
        ("short", "the file ends here"),
        ("no-dir", "does not exist"),
        ("dir", "is a directory"),
    ])
    func dumpFailsCleanly(kind: String, message: String) throws {
        let dir = try tempDir()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        var mem = dir + "/mem"
        var out = dir + "/heap.bin"
        switch kind {
        case "missing": mem = dir + "/no-such-dev-mem"
        case "all-ff": mem = try memoryImage(regs: [UInt8](repeating: 0xFF, count: 16), in: dir)
        case "all-zero": mem = try memoryImage(regs: [UInt8](repeating: 0, count: 16), in: dir)
        case "size-0": mem = try memoryImage(regs: Self.registers(base: 0x7AE0_0000, size: 0), in: dir)
        case "huge": mem = try memoryImage(regs: Self.registers(base: 0x7AE0_0000, size: 128 << 20), in: dir)
        case "no-heap":  // registers fine, but the heap is zeros: BiosData's size 0 stops the walk
            mem = try memoryImage(regs: Self.registers(base: 0x7AE0_0000, size: 0x100000), in: dir)
        case "short":  // the image ends before the registers
            try write([UInt8](repeating: 0, count: 4096), to: mem)
        case "no-dir":
            mem = try memoryImage(regs: Self.registers(base: 0x1000, size: 0x100000), heap: try Self.realHeap(), heapAt: 0x1000, in: dir)
            out = dir + "/no-such-dir/heap.bin"
        case "dir":
            mem = try memoryImage(regs: Self.registers(base: 0x1000, size: 0x100000), heap: try Self.realHeap(), heapAt: 0x1000, in: dir)
            out = dir
        default: Issue.record("unknown case \(kind)")
        }
        let before = try FileManager.default.contentsOfDirectory(atPath: dir).sorted()
        let r = try logCLI(["log", "dump", "--mem", mem, "-o", out])
        #expect(r.status == 2)
        #expect(r.stdout.isEmpty)
        #expect(r.stderr.hasPrefix("aem-pcr: error: ") && r.stderr.contains(message), "\(r.stderr)")
        #expect(r.stderr.split(separator: "\n").count == 1, "\(r.stderr)")
        #expect(try FileManager.default.contentsOfDirectory(atPath: dir).sorted() == before)
    }

    /// A failed dump leaves an existing output file as it was.
    @Test func failedDumpKeepsOldFile() throws {
        let dir = try tempDir()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let out = dir + "/heap.bin"
        try write(Array("old".utf8), to: out)
        let mem = try memoryImage(regs: [UInt8](repeating: 0xFF, count: 16), in: dir)
        #expect(try logCLI(["log", "dump", "--mem", mem, "-o", out]).status == 2)
        #expect(Array(try Data(contentsOf: URL(fileURLWithPath: out))) == Array("old".utf8))
        #expect(try FileManager.default.contentsOfDirectory(atPath: dir).sorted() == ["heap.bin", "mem"])
    }

    /// As a user other than root (dropped to nobody when the tests run as root): an unreadable
    /// memory device says to run as root; an unwritable output directory says so.
    @Test(.needs("setpriv (Debian package util-linux), to drop root", getuid() != 0 || findTool("setpriv") != nil),
          arguments: ["unreadable-mem", "unwritable-dir"])
    func dumpAsUnprivilegedUser(kind: String) throws {
        let dir = try tempDir()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        #expect(chmod(dir, 0o755) == 0)
        let mem = try memoryImage(regs: Self.registers(base: 0x1000, size: 0x100000), heap: try Self.realHeap(), heapAt: 0x1000, in: dir)
        let rw = dir + "/out"
        try FileManager.default.createDirectory(atPath: rw, withIntermediateDirectories: false)
        #expect(chmod(rw, 0o777) == 0)
        var out = rw + "/heap.bin"
        let message: String
        if kind == "unreadable-mem" {
            #expect(chmod(mem, 0o600) == 0)
            message = "permission denied: run as root"
        } else {
            let ro = dir + "/ro"
            try FileManager.default.createDirectory(atPath: ro, withIntermediateDirectories: false)
            #expect(chmod(ro, 0o555) == 0)
            out = ro + "/heap.bin"
            message = "directory \(ro) is not writable"
        }
        let args = ["log", "dump", "--mem", mem, "-o", out]
        let r: ProcessResult
        if getuid() == 0 {
            guard let setpriv = tool("setpriv") else { return }
            r = try run(setpriv, ["--reuid=65534", "--regid=65534", "--clear-groups", "--", LogCLI.binary] + args, cwd: "/")
        } else {
            r = try logCLI(args)
        }
        #expect(r.status == 2)
        #expect(r.stderr.contains(message), "\(r.stderr)")
        #expect(!FileManager.default.fileExists(atPath: out))
        #expect(try FileManager.default.contentsOfDirectory(atPath: rw).isEmpty)
    }

    // MARK: the library's memory reader

    /// Physical memory as a few regions; anything else reads as FF, like unclaimed MMIO.
    struct FakeMemory: PhysicalMemory {
        var name = "fake"
        var regions: [UInt64: [UInt8]]
        func read(at address: UInt64, count: Int) throws -> [UInt8] {
            for (start, bytes) in regions where address >= start && address + UInt64(count) <= start + UInt64(bytes.count) {
                let s = Int(address - start)
                return Array(bytes[s..<(s + count)])
            }
            return [UInt8](repeating: 0xFF, count: count)
        }
    }

    @Test func captureReadsRegistersThenHeap() throws {
        let heap = try Self.realHeap()
        let memory = FakeMemory(regions: [0xFED3_0300: Self.registers(base: 0x9000_0000, size: 0x100000), 0x9000_0000: heap])
        #expect(try TXTHeapDump.registers(from: memory) == .init(base: 0x9000_0000, size: 0x100000))
        let dump = try TXTHeapDump.capture(from: memory)
        #expect(dump == Self.registers(base: 0x9000_0000, size: 0x100000) + heap)
        #expect(try DRTMEventLog.parse(bytes: dump).events.count == 19)
    }

    @Test(arguments: [
        (UInt64(0xFFFF_FFFF_FFFF_F000), UInt64(0x2000), "passes the end of the address space", CodedError.Code.txtHeapRegistersBad),
        (0x9000_0000, 0x100800, "not page-aligned", .txtHeapRegistersBad),
        (0x9000_0800, 0x100000, "not page-aligned", .txtHeapRegistersBad),
        (0, 0x100000, "TXT.HEAP.BASE is 0", .txtHeapRegistersBad),
        (0x9000_0000, 64 << 20 + 4096, "more than 64 MiB", .txtHeapRegistersBad),
        (0xFFFF_FFFF_FFFF_FFFF, 0xFFFF_FFFF_FFFF_FFFF, "read all FF", .txtAbsent),
    ])
    func badRegisters(base: UInt64, size: UInt64, message: String, code: CodedError.Code) {
        let memory = FakeMemory(regions: [0xFED3_0300: Self.registers(base: base, size: size)])
        #expect {
            try TXTHeapDump.capture(from: memory)
        } throws: { error in
            guard let e = error as? CodedError else { return false }
            return e.code == code && e.description.hasPrefix("fake at physical 0xfed3030") && e.reason.contains(message)
        }
    }

    @Test func capturedHeapMustLeadToALog() throws {
        var heap = try Self.realHeap()
        heap[0..<8] = [4, 0, 0, 0, 0, 0, 0, 0]  // BiosData size 4: smaller than its own size field
        let memory = FakeMemory(regions: [0xFED3_0300: Self.registers(base: 0x9000_0000, size: 0x100000), 0x9000_0000: heap])
        #expect(throws: CodedError.self) { try TXTHeapDump.capture(from: memory) }
    }

    // MARK: help

    @Test(arguments: [["log"], ["log", "show"], ["log", "replay"], ["log", "dump"]])
    func helpHasExample(command: [String]) throws {
        let r = try logCLI(command + ["--help"])
        #expect(r.status == 0)
        #expect(r.stdout.contains("Example:\n  aem-pcr log") || r.stdout.contains("Example:\n  sudo aem-pcr log"))
    }
}

/// The `aem-pcr` built with this test bundle, in whatever scratch path (`swift test
/// --scratch-path X` builds both into X/debug); `Repo.binary` when not found there.
private enum LogCLI {
    static let binary: String = {
        if let exe = try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe") {
            let candidate = URL(fileURLWithPath: exe).deletingLastPathComponent().appendingPathComponent("aem-pcr").path
            if FileManager.default.isExecutableFile(atPath: candidate) { return candidate }
        }
        return Repo.binary
    }()
}

private func logCLI(_ args: [String]) throws -> ProcessResult {
    guard FileManager.default.isExecutableFile(atPath: LogCLI.binary) else {
        Issue.record("\(LogCLI.binary) not built: run `swift build` before `swift test`")
        return ProcessResult(status: -1, stdout: "", stderr: "")
    }
    return try run(LogCLI.binary, args, cwd: Repo.root)
}

private func jsonObject(_ text: String) throws -> [String: Any] {
    try #require(try JSONSerialization.jsonObject(with: Data(text.utf8)) as? [String: Any])
}
