import Foundation
import Testing
@testable import AEMPCR

/// man/aem-pcr.8 is valid mdoc and documents exactly the CLI's subcommands and options.
@Suite struct ManualTests {
    static let page = (try? readText("man/aem-pcr.8")) ?? ""

    @Test(.needsTool("mandoc", package: "mandoc")) func mandocLintIsClean() throws {
        guard let mandoc = tool("mandoc") else { return }
        let r = try run(mandoc, ["-T", "lint", "-W", "warning", Repo.path("man/aem-pcr.8")])
        #expect(r.status == 0, "\(r.stdout)\(r.stderr)")
    }

    /// Subcommand ("predict", "log show") → its long/short option names, from the CLI itself.
    /// Groups such as `log` count through their subcommands.
    static func cliOptions() throws -> [String: Set<String>] {
        let r = try aemPCR(["--experimental-dump-help"])
        let root = (try JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as! [String: Any])["command"] as! [String: Any]
        var out = [String: Set<String>]()
        func walk(_ command: [String: Any], _ path: [String]) {
            let subs = command["subcommands"] as? [[String: Any]] ?? []
            if !path.isEmpty && (subs.isEmpty || path == ["help"]) {
                var opts = Set<String>()
                for a in command["arguments"] as? [[String: Any]] ?? [] {
                    for n in a["names"] as? [[String: Any]] ?? [] {
                        let kind = n["kind"] as! String
                        let s = n["name"] as! String
                        opts.insert(kind == "short" ? "-" + s : "--" + s)
                    }
                }
                out[path.joined(separator: " ")] = opts
                return
            }
            for sub in subs where (sub["commandName"] as! String) != "help" || path.isEmpty {
                walk(sub, path + [sub["commandName"] as! String])
            }
        }
        walk(root, [])
        return out
    }

    /// Options per subcommand as the SYNOPSIS lists them (`.Cm name`, then `Fl` macros).
    static func synopsisOptions() -> [String: Set<String>] {
        guard let start = page.range(of: ".Sh SYNOPSIS\n"), let end = page.range(of: ".Sh DESCRIPTION\n") else { return [:] }
        var out = [String: Set<String>]()
        var current: String? = nil
        for line in page[start.upperBound..<end.lowerBound].split(separator: "\n") {
            if line == ".Nm" { current = nil; continue }
            if line.hasPrefix(".Cm ") { current = String(line.dropFirst(4)); out[current!] = []; continue }
            guard let c = current else { continue }
            // `Fl a | -b Ar x`: every word after Fl up to the next macro is a flag ('|' separates).
            var inFlags = false
            for (k, word) in line.split(separator: " ").enumerated() {
                let w = k == 0 && word.hasPrefix(".") ? word.dropFirst() : word[...]
                if w == "Fl" { inFlags = true; continue }
                let isMacro = w.count <= 3 && w.first!.isUppercase && w.dropFirst().allSatisfy(\.isLowercase)
                if isMacro { inFlags = false; continue }
                if inFlags && w != "|" { out[c]!.insert("-" + w) }
            }
        }
        return out
    }

    @Test func synopsisMatchesCLI() throws {
        let cli = try Self.cliOptions()
        let man = Self.synopsisOptions()
        #expect(Set(cli.keys) == Set(man.keys), "subcommands: CLI \(cli.keys.sorted()) vs page \(man.keys.sorted())")
        for (sub, opts) in cli where sub != "help" {
            // --help/-h and --version are documented once for every command.
            let documented = man[sub] ?? []
            let expected = opts.subtracting(["--help", "-h", "--version"])
            #expect(expected == documented, "\(sub): only in CLI \(expected.subtracting(documented).sorted()), only in page \(documented.subtracting(expected).sorted())")
        }
    }

    /// Every subcommand and option has its own description in COMMANDS.
    @Test func commandsSectionDescribesEveryOption() throws {
        guard let start = Self.page.range(of: ".Sh COMMANDS\n"), let end = Self.page.range(of: ".Sh JSON OUTPUT\n") else {
            Issue.record("no COMMANDS section"); return
        }
        let section = String(Self.page[start.upperBound..<end.lowerBound])
        for (sub, opts) in try Self.cliOptions() {
            #expect(section.contains(".It Cm \(sub)"), "COMMANDS lacks \(sub)")
            for o in opts.subtracting(["--help", "-h", "--version"]) {
                let macro = "Fl " + o.dropFirst()
                #expect(section.contains(".It " + macro) || section.contains(", " + macro), "COMMANDS lacks \(o) of \(sub)")
            }
        }
    }

    /// `--help` of every subcommand has a discussion with an example.
    @Test func helpHasExamples() throws {
        for sub in try Self.cliOptions().keys where sub != "help" {
            let r = try aemPCR(sub.split(separator: " ").map(String.init) + ["--help"])
            #expect(r.status == 0)
            #expect(r.stdout.contains("Example"), "\(sub) --help has no example")
        }
    }

    /// `predict --json` output follows man/aem-pcr-predict.schema.json (python3 jsonschema).
    @Test(.needsJSONSchema) func predictJSONFollowsSchema() throws {
        let check = try run("/usr/bin/env", ["python3", "-c", "import jsonschema"])
        guard check.status == 0 else {
            if Repo.inCI { Issue.record("python3 jsonschema missing; .ci/run installs it") }
            return
        }
        let dir = try tempDir()
        for (k, args) in [["--tpm", "1.2"], ["--tpm", "2.0", "--extpol", "embedded", "--bank", "sha1", "--bank", "sha384"]].enumerated() {
            let r = try aemPCR(["predict", "--json", "--grub-cfg", "Vectors/example/grub.cfg", "--entry", "0",
                                "--boot-dir", "Vectors/example/boot"] + args)
            #expect(r.status == 0, "\(r.stderr)")
            try r.stdout.write(toFile: dir + "/out\(k).json", atomically: true, encoding: .utf8)
            let v = try run("/usr/bin/env", ["python3", "-c", """
                import json, sys, jsonschema
                schema = json.load(open(sys.argv[1]))
                jsonschema.Draft202012Validator.check_schema(schema)
                jsonschema.validate(json.load(open(sys.argv[2])), schema, cls=jsonschema.Draft202012Validator)
                """, Repo.path("man/aem-pcr-predict.schema.json"), dir + "/out\(k).json"])
            #expect(v.status == 0, "\(v.stderr)")
        }
    }
}
