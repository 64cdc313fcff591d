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

    @Test func testCommandIsCIs() throws {
        let blocks = try Self.shellBlocks()
        #expect(blocks.contains("swift build && swift test"))
        #expect(try readText(".ci/run").contains("\nswift build && swift test\n"))
    }
}
