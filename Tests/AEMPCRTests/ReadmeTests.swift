// SPDX-License-Identifier: Apache-2.0
import Foundation
import Testing

/// README.md's commands, as printed: the prediction of its first command runs on the shipped
/// example and gives the values python3 computed (Vectors/expected.json); the test command is
/// the one .ci/run runs.
@Suite struct ReadmeTests {
    /// The `sh` code blocks of README.md, in order.
    static func shellBlocks() throws -> [String] {
        var blocks = [String](), current: [Substring]? = nil
        for line in try readText("README.md").split(separator: "\n", omittingEmptySubsequences: false) {
            if current == nil, line == "```sh" { current = []; continue }
            if current != nil, line == "```" { blocks.append(current!.joined(separator: "\n")); current = nil; continue }
            current?.append(line)
        }
        return blocks
    }

    @Test func firstCommandsPredictionRunsAsPrinted() throws {
        let block = try #require(Self.shellBlocks().first { $0.contains("aem-pcr predict") })
        // The part after the set-up and release build; the release binary is the debug one here.
        let release = ".build/release/aem-pcr "
        let start = try #require(block.range(of: release))
        #expect(block[..<start.lowerBound].hasSuffix("swift build -c release && "))
        #expect(block.contains("apt-get install -y zlib1g-dev libisal-dev libssl-dev pkg-config libtss2-dev "))
        let command = "\"$AEM_PCR\" " + block[start.upperBound...]
        let r = try run("/bin/bash", ["-c", command], cwd: Repo.root, env: ["AEM_PCR": Repo.binary])
        #expect(r.status == 0, "\(r.stderr)")

        let expected = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: Repo.path("Vectors/expected.json")))) as! [String: Any]
        let p = (expected["predictions"] as! [[String: Any]]).first { ($0["name"] as! String) == "aem-top.pc.tpm12" }!
        #expect(command.contains("--entry '\(p["entry"] as! String)' --boot-dir \(p["boot_dir"] as! String) --tpm 1.2"))
        let sha1 = (p["pcrs"] as! [String: [String: String]])["sha1"]!
        let readme = try readText("README.md")
        for pcr in ["18", "19"] {
            #expect(r.stdout.contains("\(pcr)   sha1    \(sha1[pcr]!)\n"), "PCR\(pcr): \(r.stdout)")
            #expect(readme.contains("PCR\(pcr) `\(sha1[pcr]!.prefix(8))…`"), "README's PCR\(pcr) value")
        }
    }

    /// README's "The binary" holds no figure typed by hand: the size, the versions needed and the
    /// size table sit between the markers of the scripts that measure them (packaging/build
    /// --update-readme, packaging/size-report --update-readme), each block written and dated.
    /// Outside the markers only the declared budget (16 MiB) may appear.
    @Test func binaryFiguresAreWrittenByTheirScripts() throws {
        let readme = try readText("README.md")
        let start = try #require(readme.range(of: "\n## The binary\n"))
        let rest = readme[start.upperBound...]
        let section = String(rest[..<(rest.range(of: "\n## ")?.lowerBound ?? rest.endIndex)])
        var outside = section
        for script in ["packaging/build", "packaging/size-report"] {
            let begin = "<!-- \(script) begin -->\n", end = "<!-- \(script) end -->"
            let a = try #require(outside.range(of: begin), "no \(begin) in The binary")
            let b = try #require(outside.range(of: end, range: a.upperBound..<outside.endIndex), "no \(end) after \(begin)")
            let block = outside[a.upperBound..<b.lowerBound]
            #expect(block.contains("(`\(script) --update-readme`, 20"), "\(script)'s block was not written by it: \(block)")
            #expect(try readText(script).contains("--update-readme"))
            outside.removeSubrange(a.lowerBound..<b.upperBound)
        }
        let figure = try Regex(#"[0-9][0-9.,\u{202F} ]*\s*(MiB|MB|KiB|kB|bytes|s\b)|GLIBC(XX)?_[0-9]"#)
        for line in outside.split(separator: "\n") {
            let stripped = line.replacingOccurrences(of: "16 MiB budget", with: "")
            #expect(stripped.firstMatch(of: figure) == nil, "a figure typed outside the markers: \(line)")
        }
    }

    /// The build times of "Try it" and the timings of the hook and of hostile inputs are the
    /// figures of the bench scripts that measured them, between their markers and dated by them
    /// (each script has --update-readme); no build time is typed elsewhere in README.
    @Test func benchFiguresAreWrittenByTheirScripts() throws {
        let readme = try readText("README.md")
        var outside = readme
        for script in ["bench/build-times.sh", "bench/notice.sh", "bench/bounds.sh", "bench/run.sh"] {
            let begin = "<!-- \(script) begin -->\n", end = "<!-- \(script) end -->"
            let a = try #require(outside.range(of: begin), "no \(begin)")
            let b = try #require(outside.range(of: end, range: a.upperBound..<outside.endIndex), "no \(end)")
            let block = outside[a.upperBound..<b.lowerBound]
            #expect(block.contains("`\(script)") && block.contains(", 20"), "\(script)'s block was not written by it: \(block)")
            #expect(try readText(script).contains("--update-readme"))
            outside.removeSubrange(a.lowerBound..<b.upperBound)
        }
        #expect(!outside.contains("s of CPU)"), "a build time typed outside bench/build-times.sh's markers")
        #expect(!outside.contains(" s mean"), "a notice timing typed outside bench/notice.sh's markers")
    }

    /// The scripts that measure README's figures and write them between their markers.
    static let measuringScripts = ["bench/build-times.sh", "bench/notice.sh", "bench/bounds.sh", "bench/run.sh",
                                   "packaging/build", "packaging/size-report"]

    /// Every figure in README (a time, a size, a ratio, a glibc symbol version, a glibc or Swift
    /// version) either sits in a block a measuring script wrote (between its markers, dated by
    /// it) or is a value declared in the file that sets it (a budget, a goal, a benchmark's
    /// input, a limit of tboot), and that file is checked to declare it. A figure typed by hand
    /// goes stale unseen (the bench table did, and the binary's size before it).
    @Test func everyFigureIsMeasuredOrDeclared() throws {
        var text = try readText("README.md")
        for script in Self.measuringScripts {
            let begin = "<!-- \(script) begin -->\n", end = "<!-- \(script) end -->"
            let a = try #require(text.range(of: begin), "no \(begin)")
            let b = try #require(text.range(of: end, range: a.upperBound..<text.endIndex), "no \(end)")
            let block = text[a.upperBound..<b.lowerBound]
            #expect(block.contains("`\(script)") && block.contains(", 20"), "\(script)'s block was not written by it: \(block)")
            #expect(try readText(script).contains("--update-readme"), "\(script) cannot write README")
            text.removeSubrange(a.lowerBound..<b.upperBound)
        }
        // Lines joined: a phrase may be wrapped.
        var flat = text.split(whereSeparator: { $0 == " " || $0 == "\n" }).joined(separator: " ")
        let declared: [(phrase: String, file: String, declaration: String)] = [
            ("Swift 6.0 or later", "Package.swift", "swift-tools-version:6.0"),
            ("16 MiB budget", "packaging/build", "size_budget=16777216"),
            ("a glibc newer than 2.36", "packaging/build", "glibc_floor=2.36"),
            ("(Fedora 37, glibc 2.36)", "packaging/build", "glibc_floor=2.36"),
            ("goal < 1 s", "bench/notice.sh", "under 1 second"),
            ("a 12 MiB kernel", "bench/notice.sh", "head -c $((12 << 20)) /dev/urandom"),
            ("a gzip initramfs of 64 MiB unpacked", "bench/notice.sh",
             "{ head -c $((32 << 20)) /dev/urandom; yes 'usr/lib/modules/6.6.63/kernel/drivers/x.ko' | head -c $((32 << 20)); }"),
            ("a 10 GB gzip bomb", "bench/bounds.sh", "gzip-bomb.py 10000000000"),
            ("up to 510 bytes; from 511 bytes on", "Tests/AEMPCRTests/MLEHashTests.swift", "for n in [510, 511, 512, 600]"),
            ("keeps 511 bytes", "Sources/AEMPCR/TBoot/MLEImage.swift", "tb_strncpy(g_cmdline, cmdline, 511)"),
            ("eight 1 MiB buffers", "Sources/AEMPCR/IO/BankPipeline.swift", "static let slotSize = 1 << 20\n    static let slots = 8\n"),
        ]
        for d in declared {
            #expect(flat.contains(d.phrase), "README no longer says '\(d.phrase)': drop it from this list")
            #expect(try readText(d.file).contains(d.declaration), "\(d.file) no longer declares '\(d.phrase)' (\(d.declaration))")
            flat = flat.replacingOccurrences(of: d.phrase, with: "")
        }
        let figure = try Regex(#"[0-9][0-9.,]*([–-][0-9][0-9.,]*)?\s*(MiB|MB|KiB|kB|GiB|GB|bytes|B|ms|s|×|%)(?![A-Za-z0-9])|GLIBC(XX)?_[0-9]|glibc[ -][0-9]|Swift [0-9]|[0-9]+ min\b"#)
        for m in flat.matches(of: figure) {
            let from = flat.index(m.range.lowerBound, offsetBy: -40, limitedBy: flat.startIndex) ?? flat.startIndex
            let to = flat.index(m.range.upperBound, offsetBy: 20, limitedBy: flat.endIndex) ?? flat.endIndex
            Issue.record("'\(flat[m.range])' typed in README outside a measuring script's block: …\(flat[from..<to])…")
        }
    }

    @Test func testCommandIsCIs() throws {
        let blocks = try Self.shellBlocks()
        #expect(blocks.contains("swift build && swift test"))
        #expect(try readText(".ci/run").contains("\nswift build && swift test\n"))
    }
}
