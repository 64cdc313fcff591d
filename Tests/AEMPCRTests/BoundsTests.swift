// SPDX-License-Identifier: Apache-2.0
import Foundation
import Testing
@testable import AEMPCR

/// Bounded work on hostile inputs (issue 13): the grub.cfg evaluator caps steps and expansion,
/// deep `!`/`(` cannot exhaust the stack, and no input is opened when it is a FIFO or device.
@Suite struct BoundsTests {
    /// 235 bytes that double a variable 24 times (16 MiB, then 400 MB of arguments before the
    /// cap): stopped with one line.
    @Test func doublingIsCapped() throws {
        var text = "set a=xxxxxxxxxxxxxxxx\n"
        for _ in 0..<24 { text += "set a=$a$a\n" }
        text += "menuentry 'E' {\n multiboot /t $a $a $a $a\n}\n"
        let cfg = try GrubConfig(text: text, path: "d.cfg")
        #expect { try cfg.entry("E") } throws: { e in
            guard let g = e as? CodedError else { return false }
            return g.code == .grubUnsupported && !g.description.contains("\n")
                && (g.description.contains("MiB of text") || g.description.contains("longer than"))
        }
    }

    /// `"$@"` passed on twice per call level doubles the arguments without a single `$a`:
    /// 1 KiB words through 17 levels would make 128 MiB, and empty words through 31 levels
    /// 2^31 arguments. Stopped by the expansion caps, in a few steps.
    @Test func positionalDoublingIsCapped() throws {
        for (arg, levels) in [(String(repeating: "x", count: 1024), 17), ("''", 31)] {
            var text = ""
            for k in 0..<levels { text += "function f\(k) { f\(k + 1) \"$@\" \"$@\"; }\n" }
            text += "function f\(levels) { true; }\nmenuentry 'E' {\n f0 \(arg)\n multiboot /t\n}\n"
            let cfg = try GrubConfig(text: text, path: "p.cfg")
            #expect { try cfg.entry("E") } throws: { e in
                guard let g = e as? CodedError else { return false }
                return g.code == .grubUnsupported && !g.description.contains("\n")
                    && (g.description.contains("MiB of text") || g.description.contains("arguments"))
            }
        }
    }

    /// A function that calls itself twice per level (2^32 calls): stopped by the step cap.
    @Test func exponentialCallsAreCapped() throws {
        let text = "function f {\n f\n f\n}\nmenuentry 'E' {\n f\n multiboot /t\n}\n"
        let cfg = try GrubConfig(text: text, path: "f.cfg")
        #expect { try cfg.entry("E") } throws: { e in
            (e as? CodedError)?.description == "f.cfg:2: function 'f' recurses too deep"
        }
        // Wide, not deep: many short functions each called many times also stop.
        var wide = "function g { true; true; true; true; }\n"
        for k in 0..<8 { wide += "function h\(k) { " + String(repeating: (k == 0 ? "g" : "h\(k - 1)") + "; ", count: 8) + "}\n" }
        wide += "h7\nmenuentry 'E' {\n multiboot /t\n}\n"
        #expect { try GrubConfig(text: wide, path: "w.cfg").entry("E") } throws: { e in
            (e as? CodedError)?.description == "w.cfg:1: evaluation stopped after 500000 steps (a loop of functions?); no real grub.cfg needs that many"
        }
    }

    /// 100,000 `!` in a test expression, and as many `(`: evaluated without recursion.
    @Test func deepTestExpressions() throws {
        let bangs = String(repeating: "! ", count: 100_000)
        // An even number of `!` leaves `x` (true); one more makes it false.
        for (extra, v) in [("", "yes"), ("! ", "no")] {
            let text = "if [ \(bangs)\(extra)x ]; then set v=yes; else set v=no; fi\nmenuentry 'E' {\n multiboot /t $v\n}\n"
            #expect(try GrubConfig(text: text, path: "b.cfg").entry("E").loaderCommands[0].argumentStrings == [v])
        }
        let parens = String(repeating: "( ", count: 100_000)
        let text2 = "if [ \(parens)x ]; then set v=yes; fi\nmenuentry 'E' {\n multiboot /t $v\n}\n"
        #expect(try GrubConfig(text: text2, path: "p.cfg").entry("E").loaderCommands[0].argumentStrings == ["yes"])
    }

    /// A FIFO named as any input is refused before it is opened for reading (it would block
    /// forever waiting for a writer); so is a character device.
    @Test func fifosAreRefused() throws {
        let dir = try tempDir()
        let fifo = dir + "/fifo"
        #expect(mkfifo(fifo, 0o600) == 0)
        let boot = Repo.path("Vectors/example/boot")
        let runs: [[String]] = [
            ["predict", "--tpm", "1.2", "--grub-cfg", fifo, "--entry", "0"],
            ["predict", "--tpm", "1.2", "--tboot", fifo, "--module", boot + "/xen-4.17.5.gz placeholder"],
            ["predict", "--tpm", "1.2", "--tboot", boot + "/tboot.gz", "--module", fifo + " placeholder"],
            ["predict", "--tpm", "1.2", "--tboot", boot + "/tboot.gz", "--module", boot + "/xen-4.17.5.gz x", "--policy", fifo],
            ["verify", "--event-log", fifo, "--pcrs", fifo],
            ["log", "show", fifo], ["log", "replay", fifo],
            ["measure", fifo], ["mle-hash", fifo], ["measure", "/dev/zero"],
        ]
        for args in runs {
            let r = try aemPCR(args)
            #expect(r.status == 2, "\(args)")
            let lines = r.stderr.split(separator: "\n")
            #expect(lines.count == 1 && lines[0].hasPrefix("aem-pcr: error: ") && lines[0].contains("not a regular file"),
                    "\(args): \(r.stderr)")
        }
        // The PCR file too, with a readable log.
        let log = Repo.path("Vectors/logs") 
        if let first = try FileManager.default.contentsOfDirectory(atPath: log).sorted().first(where: { $0.hasSuffix(".bin") }) {
            let r = try aemPCR(["verify", "--event-log", log + "/" + first, "--pcrs", fifo])
            #expect(r.status == 2 && r.stderr.contains("not a regular file"), "\(r.stderr)")
        }
    }
    /// 200,000 entries (issue 19): the menu is evaluated once for all of them, one step per
    /// entry, and the last one is found by index and by title (notice used to evaluate the file
    /// again for every index, up to 256). The time and memory are measured by bench/bounds.sh.
    @Test func menuOf200kEntriesIsOnePass() throws {
        var text = ""
        text.reserveCapacity(200_000 * 60)
        for k in 0..<200_000 { text += "menuentry 'Entry \(k)' {\n multiboot /t\(k)\n}\n" }
        text += "submenu 'S' {\n menuentry 'Inner' {\n  multiboot /inner\n }\n}\n"
        let cfg = try GrubConfig(text: text, path: "big.cfg")
        let (items, steps) = try cfg.entriesCountingSteps()
        #expect(items.count == 200_002)
        #expect(items[199_999].indexPath == [199_999] && items[199_999].titlePath == ["Entry 199999"])
        #expect(items[199_999].line == 199_999 * 3 + 1)
        #expect(items.last == GrubMenuItem(indexPath: [200_000, 0], titlePath: ["S", "Inner"], id: nil, line: 200_000 * 3 + 2, isSubmenu: false))
        // One step per top-level item and one for the submenu's entry: no entry body was run.
        #expect(steps == 200_002, "\(steps)")
        for selector in ["199999", "Entry 199999"] {
            #expect(try cfg.entry(selector).loaderCommands.map(\.file) == ["/t199999"])
        }
        // An unknown name lists the first entries and counts the rest, never all 200,000.
        #expect { try cfg.entry("nope") } throws: { e in
            (e as? CodedError)?.description.hasSuffix("; 9: Entry 9; … and 199991 more") == true
        }
    }
    /// A walk that runs every entry's body (notice on a Debian machine: no AEM title, so each
    /// entry is evaluated until one boots tboot) over a large menu of entries as long as
    /// Debian's (some twenty commands each) reaches the last one: the step bound grows with the
    /// menu (`GrubEvaluator.stepsPerMenuItem` per item) instead of stopping the walk a fifth of
    /// the way, where one evaluation's 500,000 steps run out. A loop of functions still stops.
    @Test func walkOverEveryEntryOfALargeMenu() throws {
        let body = String(repeating: " insmod gzio\n", count: 20) + " multiboot2 /xen.gz\n module2 /vmlinuz\n"
        var text = ""
        for k in 0..<25_000 { text += "menuentry 'Xen \(k)' {\n\(body)}\n" }
        text += "menuentry 'Debian, with tboot' {\n multiboot2 /tboot.gz\n module2 /xen.gz\n}\n"
        let cfg = try GrubConfig(text: text, path: "big.cfg")
        var seen = 0
        var last: GrubEntry?
        try cfg.forEachEvaluatedEntry { _, e in
            seen += 1
            last = e
            return true
        }
        #expect(seen == 25_001)
        #expect(last?.titlePath == ["Debian, with tboot"] && last?.loaderCommands.map(\.file) == ["/tboot.gz", "/xen.gz"])
        // A menu of 100 entries, then a loop of functions (8^8 calls): stopped at the bound
        // those entries gave it.
        let loop = "function g { true; }\n" + (0..<8).map { k in "function h\(k) { " + String(repeating: (k == 0 ? "g" : "h\(k - 1)") + "; ", count: 8) + "}\n" }.joined()
        let small = (0..<100).map { "menuentry 'E\($0)' {\n multiboot /t\n}\n" }.joined()
        let looping = try GrubConfig(text: small + loop + "h7\n", path: "loop.cfg")
        #expect { try looping.forEachEvaluatedEntry { _, _ in true } } throws: { e in
            (e as? CodedError)?.description.hasSuffix("evaluation stopped after \(500_000 + 100 * 32) steps (a loop of functions?); no real grub.cfg needs that many") == true
        }
    }

    /// Entry bodies are kept as text, as GRUB keeps them, and parsed again when they run:
    /// what they define and the lines their errors name are the same as in one parse.
    @Test func entryBodiesRunFromTheirText() throws {
        let body = "menuentry 'A' --id a {\n  function f { multiboot /f$1 \"}\"; }\n  if true; then\n    f 2\n  fi\n"
        let ok = try GrubConfig(text: "set x=1\n" + body + "}\n", path: "b.cfg").entry("a")
        #expect(ok.loaderCommands.map(\.file) == ["/f2"] && ok.loaderCommands[0].argumentStrings == ["}"])
        #expect(ok.loaderCommands[0].line == 3)
        let bad = try GrubConfig(text: "set x=1\n" + body + "  configfile /other.cfg\n}\n", path: "b.cfg")
        #expect { try bad.entry("A") } throws: { e in (e as? CodedError)?.line == 7 }
    }

    /// One run of aem-pcr and its peak resident memory in KiB, as GNU time measures it (`%M`).
    func peakMemory(_ args: [String], in dir: String) throws -> (ProcessResult, Int) {
        guard let time = tool("time") else { return (ProcessResult(status: -1, stdout: "", stderr: ""), 0) }
        let report = dir + "/time.out"
        let r = try run(time, ["-f", "%M", "-o", report, Repo.binary] + args, cwd: dir)
        let kib = Int(try String(contentsOfFile: report, encoding: .utf8).split(separator: "\n").last ?? "") ?? -1
        return (r, kib)
    }

    /// A gzip module that inflates past 4 GiB is not what GRUB loads (it loads the trailer's
    /// 32-bit size, below 4 GiB): refused as soon as 4 GiB have come out, not at the end of a
    /// 4.25 GiB bomb made by python3 (Tests/Scripts/gzip-bomb.py; its small copies pass
    /// `gzip -t`). Its trailer says 256 MiB: all GRUB would load. notice says it in one line and
    /// exits 0.
    @Test(.needsTool("time", package: "time")) func gzipBombStopsAt4GiB() throws {
        let dir = try tempDir()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let bomb = dir + "/bomb.gz"
        let size = (1 << 32) + (1 << 28)
        let made = try run("/usr/bin/env", ["python3", Repo.path("Tests/Scripts/gzip-bomb.py"), String(size), bomb])
        #expect(made.status == 0, "\(made.stderr)")
        // The trailer's ISIZE, the size modulo 2^32: what GRUB's gzio would take as the size.
        let h = try #require(FileHandle(forReadingAtPath: bomb))
        try h.seek(toOffset: try h.seekToEnd() - 4)
        let isize = try #require(try h.read(upToCount: 4)).reversed().reduce(0) { $0 << 8 | Int($1) }
        try h.close()
        #expect(isize == 1 << 28)
        var passed: UInt64 = 0
        #expect { try ModuleImage.stream(path: bomb, unzip: true) { passed += UInt64($0.count) } } throws: { e in
            guard let f = e as? CodedError else { return false }
            return f.code == .imageTooLarge && f.description == "\(bomb): decompresses to more than 4 GiB: GRUB takes the size from the gzip trailer (32 bits) and would load only part of it, below 4 GiB; stopped at 4 GiB"
        }
        // Everything up to the limit was passed on, nothing beyond it.
        #expect(passed <= (1 << 32) - 1 && passed > (1 << 32) - (2 << 20), "\(passed)")

        // notice with the bomb as the initramfs: one line naming the file, exit 0.
        try FileManager.default.copyItem(atPath: Repo.path("Vectors/example/boot"), toPath: dir + "/boot")
        let initramfs = dir + "/boot/initramfs-6.6.63-1.qubes.fc37.x86_64.img"
        try FileManager.default.removeItem(atPath: initramfs)
        try FileManager.default.moveItem(atPath: bomb, toPath: initramfs)
        let (r, kib) = try peakMemory(["notice", "--grub-cfg", Repo.path("Vectors/example/grub.cfg"), "--boot-dir", "boot",
                                       "--state-dir", "state", "--mem", "no-mem", "--aem-dir", "no-aem", "--tpm", "1.2"], in: dir)
        #expect(r.status == 0)
        #expect(r.stdout == "aem-pcr notice: could not check the AEM boot: boot/initramfs-6.6.63-1.qubes.fc37.x86_64.img: decompresses to more than 4 GiB: GRUB takes the size from the gzip trailer (32 bits) and would load only part of it, below 4 GiB; stopped at 4 GiB\n", "\(r.stdout)")
        #expect(kib > 0 && kib < 100 * 1024, "\(kib) KiB")
    }

    /// `log show` on 60 MB of text that is no log: refused from its first MiB, in one line,
    /// with the memory of that MiB (it read the whole file and copied it as text: 135 MB);
    /// a printed log over 1 MiB is refused too (each of its lines would cost ~50 bytes).
    @Test(.needsTool("time", package: "time")) func logShowRefusesNonLogsEarly() throws {
        let dir = try tempDir()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let line = Array("hello, this is not a DRTM event log\n".utf8)
        var text = [UInt8]()
        text.reserveCapacity(60_000_000)
        while text.count < 60_000_000 { text += line }
        try write(text, to: dir + "/notes.txt")
        let (r, kib) = try peakMemory(["log", "show", "notes.txt"], in: dir)
        #expect(r.status == 2)
        #expect(r.stderr.hasPrefix("aem-pcr: error: notes.txt at byte 0: not a DRTM event log: ") && r.stderr.split(separator: "\n").count == 1, "\(r.stderr)")
        #expect(kib > 0 && kib < 100 * 1024, "\(kib) KiB")

        try write(Array("PCRIndex: 17\n".utf8) + Array(repeating: UInt8(ascii: "\n"), count: 2 << 20), to: dir + "/long.txt")
        let long = try aemPCR(["log", "show", dir + "/long.txt"])
        #expect(long.status == 2)
        #expect(long.stderr == "aem-pcr: error: \(dir)/long.txt at byte 0: text of \((2 << 20) + 13) bytes: no printed DRTM log is larger than 1 MiB (txt-stat prints tens of KiB)\n", "\(long.stderr)")
    }

    /// A 4 MiB saved prediction holding one array of 2 million numbers: refused at its
    /// 65,537th value, before the values fill memory (262 MB), by both readers of the file.
    @Test func hugeJSONArrayIsRefused() throws {
        let text = "{\"events\": [" + Array(repeating: "1", count: 2 << 20).joined(separator: ",") + "]}"
        #expect(text.utf8.count > 4_000_000)
        // Values: the object, its key, the array, then numbers: the 65,534th number (at byte
        // 12 + 2 × 65,533, after `{"events": [`) is the 65,537th value.
        let expected = "p.json:1: JSON at byte \(12 + 2 * 65_533): more than 65536 values; no PCR file or saved prediction holds that many"
        #expect { try SealedPrediction.parse(text, source: "p.json") } throws: { e in "\(e)" == expected }
        #expect { try PCRValuesFile.parseJSON(text, source: "p.json") } throws: { e in "\(e)" == expected }
        // Nested objects count too.
        let objects = "{\"pcrs\": {" + (0..<70_000).map { "\"k\($0)\": {}" }.joined(separator: ", ") + "}}"
        #expect { try PCRValuesFile.parseJSON(objects, source: "o.json") } throws: { e in "\(e)".contains("more than 65536 values") }
    }
    /// predict on a grub.cfg of 200,000 entries: the last one predicted, within 100 MB (141 MB
    /// before: every entry's body was a tree of nodes and every token was kept in a list).
    @Test(.needsTool("time", package: "time")) func predictOn200kEntriesStaysUnder100MB() throws {
        let dir = try tempDir()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        var text = ""
        text.reserveCapacity(200_000 * 70)
        for k in 0..<200_000 { text += "menuentry 'Entry \(k)' {\n multiboot /tboot.gz\n module /xen-4.17.5.gz\n}\n" }
        try text.write(toFile: dir + "/grub.cfg", atomically: false, encoding: .utf8)
        let (r, kib) = try peakMemory(["predict", "--grub-cfg", "grub.cfg", "--entry", "199999", "--boot-dir",
                                       Repo.path("Vectors/example/boot"), "--tpm", "1.2"], in: dir)
        #expect(r.status == 0, "\(r.stderr)")
        #expect(r.stdout.contains("entry 'Entry 199999'"), "\(r.stdout)")
        #expect(kib > 0 && kib < 100 * 1024, "\(kib) KiB")
    }
}
