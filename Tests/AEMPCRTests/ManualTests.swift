// SPDX-License-Identifier: Apache-2.0
import Foundation
import Testing
import Glibc
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
            Issue.record("python3 jsonschema missing; .ci/run installs it")  // the test's trait ran it: the reference must be there
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

/// Every example of the manual (EXAMPLES, as `mandoc -T ascii` renders it) and of every
/// `--help` text runs as printed, in bash, on a machine laid out as the examples assume. In a
/// private mount namespace: /boot holds the shipped example (Vectors/example/boot, its grub.cfg
/// as /boot/grub2/grub.cfg); /var/lib is a fresh directory; the TPM is a software TPM 2.0
/// (swtpm, named by TPM2TOOLS_TCTI as a user would) on which Tests/Scripts/simulate-drtm-boot.py
/// (python3) ran the example AEM entry's measured launch; /dev/mem is an image of physical memory
/// whose TXT registers point at a heap holding the log that launch wrote. `sudo` runs its
/// command (the namespace is root already); everything else is the real program.
@Suite(.serialized) struct ExampleTests {
    /// Rendered page text without overstrike.
    static func rendered() throws -> String {
        let r = try run(findTool("mandoc") ?? "/usr/bin/mandoc", ["-T", "ascii", Repo.path("man/aem-pcr.8")])
        var out = String.UnicodeScalarView()
        for u in r.stdout.unicodeScalars {
            if u == "\u{8}" { if !out.isEmpty { out.removeLast() }; continue }
            out.append(u)
        }
        return String(out)
    }

    static func indent(_ line: Substring) -> Int { line.prefix { $0 == " " }.count }

    /// The literal blocks of the EXAMPLES section, dedented.
    static func manualExamples() throws -> [String] {
        let lines = try rendered().split(separator: "\n", omittingEmptySubsequences: false)
        guard let start = lines.firstIndex(of: "EXAMPLES") else { return [] }
        var blocks = [String](), current = [Substring](), base = 0
        for line in lines[(start + 1)...] {
            if !line.isEmpty && indent(line) == 0 { break }
            if line.isEmpty || indent(line) <= 5 {
                if !current.isEmpty { blocks.append(current.map { String($0.dropFirst(base)) }.joined(separator: "\n")) }
                current = []
                continue
            }
            if current.isEmpty { base = indent(line) }
            current.append(line)
        }
        if !current.isEmpty { blocks.append(current.map { String($0.dropFirst(base)) }.joined(separator: "\n")) }
        return blocks
    }

    /// The `Example:` lines of a `--help` text, dedented.
    static func helpExample(_ help: String) -> String? {
        let lines = help.split(separator: "\n", omittingEmptySubsequences: false)
        guard let k = lines.firstIndex(where: { $0 == "Example:" || $0 == "Examples:" }) else { return nil }
        let body = lines[(k + 1)...].prefix { !$0.isEmpty }
        guard let base = body.first.map(indent) else { return nil }
        return body.map { String($0.dropFirst(base)) }.joined(separator: "\n")
    }

    static var unshareArgs: [String] {
        getuid() == 0 ? ["--mount", "--propagation", "private"] : ["--map-root-user", "--mount", "--propagation", "private"]
    }

    static var sandboxAvailable: Bool {
        guard let unshare = findTool("unshare") else { return false }
        return (try? run(unshare, unshareArgs + ["true"]).status) == 0 && FileManager.default.fileExists(atPath: "/boot")
    }

    /// Lays out the fixture, runs each example in the namespace; returns (example, status,
    /// stdout, stderr) in order.
    static func runExamples(_ examples: [String]) throws -> [(String, Int32, String, String)] {
        let fix = try tempDir()
        let fm = FileManager.default
        defer { try? fm.removeItem(atPath: fix) }
        for d in ["boot/grub2", "varlib", "dev", "bin", "work", "examples"] {
            try fm.createDirectory(atPath: fix + "/" + d, withIntermediateDirectories: true)
        }
        for f in try fm.contentsOfDirectory(atPath: Repo.path("Vectors/example/boot")) {
            try fm.copyItem(atPath: Repo.path("Vectors/example/boot/" + f), toPath: fix + "/boot/" + f)
        }
        // The machine's tboot runs with extpol=embedded (what the simulator extends), and says so
        // on its command line, as a real machine's grub.cfg would.
        let tbootLine = "multiboot\t/tboot.gz placeholder logging=memory,serial "
        let cfg = try readText("Vectors/example/grub.cfg")
        #expect(cfg.contains(tbootLine))
        try cfg.replacingOccurrences(of: tbootLine, with: tbootLine + "extpol=embedded ")
            .write(toFile: fix + "/boot/grub2/grub.cfg", atomically: true, encoding: .utf8)
        let expected = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: Repo.path("Vectors/expected.json")))) as! [String: Any]
        let p = (expected["predictions"] as! [[String: Any]]).first { ($0["name"] as! String).hasSuffix("tpm20-embedded") }!
        let boot: [String: Any] = [
            "tboot": Repo.path((p["boot_dir"] as! String) + "/tboot.gz"),
            "tboot_cmdline": (p["tboot_cmdline"] as! String) + " extpol=embedded",
            "modules": zip(p["module_files"] as! [String], p["module_cmdlines"] as! [String]).map { ["file": Repo.path($0), "cmdline": $1] },
        ]
        try JSONSerialization.data(withJSONObject: boot).write(to: URL(fileURLWithPath: fix + "/boot.json"))
        // The measured launch on a software TPM, and its log in a TXT heap in physical memory.
        guard let tpm = try SwTPM2.start() else { return [] }
        // A machine whose active banks are those the launch extends (SINIT extends every active
        // bank; the simulator extends SHA-1 and SHA-256): the others are deallocated, then reset.
        let env = ["TPM2TOOLS_TCTI": tpm.tcti]
        for (t, args) in [("tpm2_pcrallocate", ["sha1:all+sha256:all+sha384:none+sha512:none"]),
                          ("swtpm_ioctl", ["--unix", tpm.control, "-i"]), ("tpm2_startup", ["-c"])] {
            let r = try run(tool(t) ?? "/usr/bin/" + t, args, env: env)
            #expect(r.status == 0, "\(t): \(r.stderr)")
        }
        let logPath = try tpm.boot(["--boot", fix + "/boot.json"])
        let log = Array(try Data(contentsOf: URL(fileURLWithPath: logPath)))
        // An AEM machine (issue 12): AEM's TPM setup with its own tpm2-tools commands (SRK at
        // 0x81000001), PCR13 extended as AEM's initramfs does, a secret, and a set pre-sealed
        // by aem-pcr seal before this "reboot" (the files did not change, so this boot is the
        // predicted one), for the examples of seal and check-boot. tboot's default DA policy,
        // which the simulated launch runs, extends nothing into PCR19 (all 00, which AEM
        // refuses): this AEM seals to 13, 17, 18 (its SEAL, as in /etc/anti-evil-maid.conf).
        try write(Array("srk password\n".utf8), to: fix + "/srk-password")
        try write(Array("SEAL=\"--pcr 13 --pcr 17 --pcr 18\"\n".utf8), to: fix + "/anti-evil-maid.conf")
        let setup = try run("/bin/bash", [Repo.path("Tests/Scripts/aem-tpm2.sh"), "setup", "owner password", fix + "/srk-password"], env: env)
        #expect(setup.status == 0, "aem-tpm2.sh setup: \(setup.stderr)")
        let luks = try run(tool("tpm2_pcrextend") ?? "/usr/bin/tpm2_pcrextend",
                           ["13:sha256=" + MultiHasher.hash(.sha256, Array("LUKS header".utf8)).hex], env: env)
        #expect(luks.status == 0, "tpm2_pcrextend: \(luks.stderr)")
        try fm.createDirectory(atPath: fix + "/varlib/anti-evil-maid/aem", withIntermediateDirectories: true)
        try write(Array("an AEM secret\n".utf8), to: fix + "/varlib/anti-evil-maid/aem/secret.txt")
        let preseal = try aemPCR(["seal", "--label", "aem", "--aem-dir", fix + "/varlib/anti-evil-maid",
                                  "--tpm-dir", fix + "/varlib/tpm", "--srk-password-file", fix + "/srk-password",
                                  "--event-log", logPath, "--tcti", tpm.tcti, "--grub-cfg", fix + "/boot/grub2/grub.cfg",
                                  "--boot-dir", fix + "/boot", "--entry", "AEM Qubes, with Xen hypervisor",
                                  "--aem-conf", fix + "/anti-evil-maid.conf"])
        #expect(preseal.status == 0, "seal: \(preseal.stderr)")
        let base: UInt64 = 0x7BF2_0000
        let dump = LogWriter.heapDump(.tcg(log, allocated: UInt32(max(0x2000, (log.count + 0xFFF) & ~0xFFF))), base: base)
        _ = try LogCommandTests().memoryImage(regs: Array(dump.prefix(16)), heap: Array(dump.dropFirst(16)), heapAt: base, in: fix)
        try "#!/bin/sh\n# the namespace runs as root already\nexec \"$@\"\n".write(toFile: fix + "/bin/sudo", atomically: true, encoding: .utf8)
        #expect(chmod(fix + "/bin/sudo", 0o755) == 0)
        try fm.createSymbolicLink(atPath: fix + "/bin/aem-pcr", withDestinationPath: Repo.binary)
        for (k, e) in examples.enumerated() {
            try e.write(toFile: fix + "/examples/\(k).sh", atomically: true, encoding: .utf8)
        }
        let driver = """
            set -u
            fix=$1
            mount --bind "$fix/boot" /boot
            mount --bind "$fix/varlib" /var/lib
            for n in null zero random urandom; do
              touch "$fix/dev/$n" && mount --bind "/dev/$n" "$fix/dev/$n"
            done
            ln -s /proc/self/fd "$fix/dev/fd"
            touch "$fix/dev/mem" && mount --bind "$fix/mem" "$fix/dev/mem"
            mount --rbind "$fix/dev" /dev
            export PATH="$fix/bin:$PATH" TPM2TOOLS_TCTI="\(tpm.tcti)"
            cd "$fix/work"
            n=0
            while [ -f "$fix/examples/$n.sh" ]; do
              bash -e -o pipefail "$fix/examples/$n.sh" >"$fix/examples/$n.out" 2>"$fix/examples/$n.err"
              echo $? >"$fix/examples/$n.status"
              n=$((n + 1))
            done
            """
        try driver.write(toFile: fix + "/driver.sh", atomically: true, encoding: .utf8)
        let r = try run(findTool("unshare")!, unshareArgs + ["/bin/bash", fix + "/driver.sh", fix])
        #expect(r.status == 0, "\(r.stderr)")
        return try examples.indices.map { k in
            let text = { (ext: String) in (try? String(contentsOfFile: fix + "/examples/\(k).\(ext)", encoding: .utf8)) ?? "" }
            return (examples[k], Int32(text("status").trimmingCharacters(in: .whitespacesAndNewlines)) ?? -1, text("out"), text("err"))
        }
    }

    @Test(.needsTool("mandoc", package: "mandoc"), .needsSoftwareTPM,
          .needs("mount namespaces (unshare from util-linux, as root or with user namespaces) and /boot", sandboxAvailable))
    func everyExampleRunsAsPrinted() throws {
        let manual = try Self.manualExamples()
        #expect(manual.count >= 6, "examples found: \(manual)")
        var examples = manual
        var commands = [[String]()]
        for sub in try ManualTests.cliOptions().keys.sorted() where sub != "help" { commands.append(sub.split(separator: " ").map(String.init)) }
        commands.append(["log"])
        for c in commands {
            let help = try aemPCR(c + ["--help"]).stdout
            if let e = Self.helpExample(help) { examples.append(e) } else if !c.isEmpty { Issue.record("\(c) --help has no example") }
        }
        let results = try Self.runExamples(examples)
        #expect(results.count == examples.count)
        for (example, status, out, err) in results {
            // Standard error carries no error or warning; a note such as tpm2-pcr's "wrote …" may stand there.
            let complaints = err.split(separator: "\n").filter { !$0.hasPrefix("aem-pcr: wrote ") }
            #expect(status == 0 && complaints.isEmpty, "\(example)\n→ status \(status): \(err)")
            // The launch replays to the TPM's values, read through TPM2TOOLS_TCTI.
            if example.hasPrefix("sudo aem-pcr verify") { #expect(out.hasPrefix("Verified: the TXT heap (tpm20-tcg) against the TPM"), "\(out)") }
            #expect(!out.isEmpty, "\(example) printed nothing")
        }
    }
}
