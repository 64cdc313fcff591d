// SPDX-License-Identifier: Apache-2.0
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

// MARK: - item 5: /etc/anti-evil-maid.conf as AEM's bash reads it

@Suite struct AEMConfTests {
    /// `$SEAL` as anti-evil-maid-seal has it: bash sources the file under AEM's `set -euo pipefail`.
    static func bashSEAL(_ path: String) throws -> String {
        let r = try run("/bin/bash", ["-c", "set -euo pipefail; source \"$1\"; printf %s \"$SEAL\"", "bash", path], env: ["SEAL": ""])
        #expect(r.status == 0, "bash: \(r.stderr)")
        return r.stdout
    }

    /// The PCRs of `--pcr N` / `--pcr=N` / `-p N` words (tpm_sealdata's options), sorted, once each.
    static func pcrsOfWords(_ value: String) -> [UInt32] {
        let words = value.split(whereSeparator: { $0 == " " || $0 == "\t" }).map(String.init)
        var out = Set<UInt32>()
        var k = 0
        while k < words.count {
            if (words[k] == "--pcr" || words[k] == "-p"), k + 1 < words.count, let v = UInt32(words[k + 1]) { out.insert(v); k += 2 }
            else if words[k].hasPrefix("--pcr="), let v = UInt32(words[k].dropFirst(6)) { out.insert(v); k += 1 }
            else { Issue.record("bash's SEAL has a word the test cannot read: \(words[k])"); return [] }
        }
        return out.sorted()
    }

    /// Files the tool evaluates: its PCRs are those of bash's `$SEAL`.
    @Test(arguments: [
        // AEM's own file (qubes-antievilmaid etc/anti-evil-maid.conf)
        "# List of PCRs -- but note that Qubes DOESN'T USE TrustedGRUB:\n#\n#  13:        LUKS header(s)\n# 17-19: (DRTM) TBoot\n\n# shellcheck disable=SC2034\nSEAL=\"--pcr 13 --pcr 17 --pcr 18 --pcr 19\"\n",
        // += appends: AEM seals to PCR0 too
        "SEAL=\"--pcr 13 --pcr 17 --pcr 18 --pcr 19\"\nSEAL+=\" --pcr 0\"\n",
        // a second assignment: the last one wins
        "SEAL=\"--pcr 13 --pcr 17 --pcr 18 --pcr 19\"\n\n  SEAL='--pcr 13 --pcr 17 --pcr 18'   # no PCR19 on this machine\n",
        // quoting, --pcr=N, -p N, a # inside a word, no newline at the end
        "SEAL=--pcr=13\"  -p 17\"' --pcr 18'\t# comment\nSEAL+=\" --pcr \"19\nSEAL+=' -p 2'",
    ])
    func evaluatedAsBashDoes(_ text: String) throws {
        let dir = try tempDir()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let path = dir + "/anti-evil-maid.conf"
        try text.write(toFile: path, atomically: true, encoding: .utf8)
        let expected = Self.pcrsOfWords(try Self.bashSEAL(path))
        #expect(!expected.isEmpty)
        #expect(try AEMConfig.sealPCRs(path: path).map(\.rawValue) == expected)
    }

    /// --aem-conf naming a file that is not AEM's (/etc/shadow, read as root): the error names
    /// file:line and what is refused, and quotes at most the leading name, never the hash.
    @Test func aShadowLineIsNotEchoed() throws {
        let dir = try tempDir()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let hash = try run("/usr/bin/openssl", ["passwd", "-6", "-salt", "Zq8wX1yv", "not-a-real-password"]).stdout
            .trimmingCharacters(in: .whitespacesAndNewlines)
        try #require(hash.hasPrefix("$6$Zq8wX1yv$"), "openssl: \(hash)")
        let path = dir + "/shadow"
        try "root:\(hash):19700:0:99999:7:::\ndaemon:*:19700:0:99999:7:::\n".write(toFile: path, atomically: true, encoding: .utf8)
        do {
            let got = try AEMConfig.sealPCRs(path: path)
            Issue.record("accepted as \(got)")
        } catch let e as CodedError {
            #expect(e.description.hasPrefix("\(path):1: a command starting 'root', not an assignment"), "\(e.description)")
            #expect(!e.description.contains("Zq8wX1yv") && !e.description.contains(String(hash.suffix(20))) && !e.description.contains("19700"),
                    "\(e.description)")
        }
    }

    /// Files that are more than plain SEAL assignments: refused, one line naming file:line.
    @Test(arguments: [
        ("SEAL=\"--pcr 13 --pcr 17\"\nif true; then\n  SEAL=\"--pcr 0 --pcr 13\"\nfi\n", 2),
        ("# conf\nexport SEAL=\"--pcr 13 --pcr 17 --pcr 18\"\n", 2),
        ("SEAL=\"--pcr 13 --pcr $PCR\"\n", 1),
        ("SEAL=$(echo --pcr 13)\n", 1),
        ("SEAL=\"--pcr 13 --pcr `echo 0`\"\n", 1),
        ("SEAL=\"--pcr 13\"; SEAL+=\" --pcr 0\"\n", 1),
        ("\nSEAL+=\" --pcr 0\"\n", 2),
        ("SEAL=--pcr\\ 13\n", 1),
        ("SEAL=\"--pcr 13\" true\n", 1),
        ("SEAL=\"--pcr 13\"\nPCRS=\"--pcr 0\"\n", 2),
        ("SEAL=\"--pcr 13 --pcr 17\"\r\n", 1),
        ("SEAL=\"--pcr 13\n --pcr 17\"\n", 1),
        ("SEAL=\"-p13 --pcr 17\"\n", 1),
        ("SEAL=\"--pcr 013 --pcr 17\"\n", 1),
        ("SEAL=\"--pcr 13 --pcr 17\"\nSEAL+=\"--pcr 18\"\n", 2),
        ("f() { SEAL=\"--pcr 0\"; }\nSEAL=\"--pcr 13\"\n", 1),
    ])
    func refusedNamingTheLine(_ text: String, _ line: Int) throws {
        let dir = try tempDir()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let path = dir + "/anti-evil-maid.conf"
        try text.write(toFile: path, atomically: true, encoding: .utf8)
        do {
            let got = try AEMConfig.sealPCRs(path: path)
            Issue.record("accepted as \(got) (bash says SEAL=\(try Self.bashSEAL(path)))")
        } catch let e as CodedError {
            #expect(e.description.hasPrefix("\(path):\(line): ") && !e.description.contains("\n"), "\(e.description)")
        }
    }
}

// MARK: - policy -o does not write through a symbolic link

@Suite struct PolicyOutputTests {
    /// A link at -o's name (planted where root writes the policy) is refused: the file it
    /// names keeps its bytes, the link stays a link. A plain name gets python3's digest.
    @Test func aSymbolicLinkAtTheOutputIsRefused() throws {
        let dir = try tempDir()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let h13 = String(repeating: "13", count: 32)
        try "  sha256:\n    13: 0x\(h13)\n".write(toFile: dir + "/v.yaml", atomically: true, encoding: .utf8)
        let victim = dir + "/victim"
        try "root's file, not to be overwritten\n".write(toFile: victim, atomically: true, encoding: .utf8)
        let link = dir + "/policy.out"
        #expect(symlink(victim, link) == 0)
        for format in ["hex", "binary"] {
            let r = try bounded(["policy", "--pcr", "13", "--values", dir + "/v.yaml", "--format", format, "-o", link])
            expectOneLineRefusal(r, naming: link, "policy -o a link (\(format))")
            #expect(r.stderr.contains("symbolic link"), "\(r.stderr)")
        }
        #expect(try String(contentsOfFile: victim, encoding: .utf8) == "root's file, not to be overwritten\n")
        #expect((try? FileManager.default.destinationOfSymbolicLink(atPath: link)) == victim)
        let plain = dir + "/policy.hex"
        let ok = try bounded(["policy", "--pcr", "13", "--values", dir + "/v.yaml", "-o", plain])
        #expect(ok.status == 0, "\(ok.stderr)")
        #expect(try String(contentsOfFile: plain, encoding: .utf8) == (try StrictPCRFileTests.pythonPolicy(h13)) + "\n")
    }
}

// MARK: - item 6: JSON and YAML with one meaning only

@Suite struct StrictPCRFileTests {
    static let h13 = String(repeating: "13", count: 32)
    static let h17 = String(repeating: "17", count: 32)

    /// PolicyPCR(sha256:13) over `value`, computed by python3 (TPM 2.0 Part 3, PolicyPCR).
    static func pythonPolicy(_ value: String) throws -> String {
        let py = """
        import hashlib,struct,sys
        sel=struct.pack('>IHB',1,0x000B,3)+bytes([0x00,0x20,0x00])
        pd=hashlib.sha256(bytes.fromhex(sys.argv[1])).digest()
        print(hashlib.sha256(bytes(32)+struct.pack('>I',0x17F)+sel+pd).hexdigest())
        """
        return try run("/usr/bin/env", ["python3", "-c", py, value]).stdout.trimmingCharacters(in: .whitespacesAndNewlines)
    }

    @Test(arguments: [
        // data after the document
        ("{\"pcrs\": {\n  \"sha256\": {\"13\": \"\(h13)\"}\n}}\ngarbage\n", 4),
        // two documents: the first was used
        ("{\"sha256\": {\"13\": \"\(h13)\"}}\n{\"sha256\": {\"13\": \"\(h17)\"}}\n", 2),
        // "pcrs" twice
        ("{\"pcrs\": {\"sha256\": {\"13\": \"\(h13)\"}},\n \"pcrs\": {\"sha256\": {\"13\": \"\(h17)\"}}}\n", 2),
        // a bank twice
        ("{\"pcrs\": {\n  \"sha256\": {\"13\": \"\(h13)\"},\n  \"sha256\": {\"17\": \"\(h17)\"}\n}}\n", 3),
        // a PCR twice in JSON
        ("{\"sha256\": {\n \"13\": \"\(h13)\",\n \"13\": \"\(h17)\"}}\n", 3),
        // tpm2_pcrread YAML: a bank twice, a PCR twice
        ("  sha256:\n    13: 0x\(h13)\n  sha256:\n    17: 0x\(h17)\n", 3),
        ("  sha256:\n    13: 0x\(h13)\n    13: 0x\(h17)\n", 3),
        ("  sm3_256:\n    13: 0x\(h13)\n    13: 0x\(h17)\n  sha256:\n    13: 0x\(h13)\n", 3),
    ])
    func ambiguousFilesRefused(_ text: String, _ line: Int) throws {
        let dir = try tempDir()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let path = dir + "/values"
        try text.write(toFile: path, atomically: true, encoding: .utf8)
        let r = try bounded(["policy", "--pcr", "13", "--values", path])
        expectOneLineRefusal(r, naming: "\(path):\(line): ", "policy --values")
    }

    @Test func blanksAfterTheDocumentAccepted() throws {
        let dir = try tempDir()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let path = dir + "/values.json"
        try "\n{\"pcrs\": {\"sha256\": {\"13\": \"\(Self.h13)\"}}}\n \t\r\n\n".write(toFile: path, atomically: true, encoding: .utf8)
        let r = try bounded(["policy", "--pcr", "13", "--values", path])
        #expect(r.status == 0, "\(r.stderr)")
        #expect(r.stdout == (try Self.pythonPolicy(Self.h13)) + "\n")
    }

    /// The prediction seal saves, read by check-boot: one document, keys once.
    @Test func savedPredictionStrict() throws {
        var values = PCRValues()
        values[.sha256, 13] = Digest(.sha256, bytes: Array(repeating: 0x13, count: 32))!
        let selection = try PCRSelection(parsing: "sha256:13")
        let record = SealedPrediction(label: "aem", sealedAt: "20261130T040000Z", selection: selection,
                                      policyDigest: try PolicyPCR.digest(selection, values: values), pcrs: values, events: [])
        let text = record.render()
        #expect(try SealedPrediction.parse(text + "\n\n", source: "p") == record)
        let lines = text.split(separator: "\n", omittingEmptySubsequences: false).count
        let twice = text.replacingOccurrences(of: "{\n", with: "{\n  \"label\": \"aem2\",\n", options: .anchored)
        // the line of the second "label" (python3 finds it)
        let py = try run("/usr/bin/env", ["python3", "-c", "import sys; l=[i+1 for i,x in enumerate(sys.argv[1].split('\\n')) if x.lstrip().startswith('\"label\"')]; print(l[1])", twice])
        let second = Int(py.stdout.trimmingCharacters(in: .whitespacesAndNewlines)) ?? 0
        #expect(second > 2, "\(py.stderr)")
        for (bad, line) in [(text + "{}\n", lines), (twice, second)] {
            do {
                _ = try SealedPrediction.parse(bad, source: "p")
                Issue.record("accepted: \(bad)")
            } catch let e as CodedError {
                #expect(e.description.hasPrefix("p:\(line): "), "\(e.description)")
            }
        }
    }
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

// MARK: - seal on swtpm: FIFOs and a NUL in the SRK password file, before the TPM is asked

@Suite(.serialized, .needsSoftwareTPM) struct SealInputTests {
    static func sealArgs(_ m: SealTests.Machine, srk: String, conf: String? = nil) -> [String] {
        ["seal", "--label", "aem", "--aem-dir", m.aemDir, "--tpm-dir", m.tpmDir, "--srk-password-file", srk,
         "--event-log", m.logA, "--tcti", m.tpm.tcti, "--grub-cfg", "Vectors/example/grub.cfg",
         "--entry", SealTests.entry, "--boot-dir", m.bootDir, "--policy", m.policy, "--extpol", "embedded"]
            + (conf.map { ["--aem-conf", $0] } ?? [])
    }

    /// TPM2_PT_LOCKOUT_COUNTER, read by tpm2_getcap: a failed authorisation raises it.
    static func lockoutCounter(_ m: SealTests.Machine) throws -> String {
        let r = try m.tpm.tpm2("tpm2_getcap", ["properties-variable"])
        return r.stdout.split(separator: "\n").first { $0.contains("TPM2_PT_LOCKOUT_COUNTER") }.map(String.init) ?? "?"
    }

    @Test func fifosAndNULRefusedBeforeTheTPM() throws {
        guard let m = try SealTests.Machine() else { return }
        defer { try? FileManager.default.removeItem(atPath: m.dir) }
        let fifo = m.dir + "/fifo"
        #expect(mkfifo(fifo, 0o600) == 0)
        // --srk-password-file and --aem-conf as FIFOs
        expectOneLineRefusal(try bounded(Self.sealArgs(m, srk: fifo)), naming: fifo, "--srk-password-file")
        expectOneLineRefusal(try bounded(Self.sealArgs(m, srk: m.srkFile, conf: fifo)), naming: fifo, "--aem-conf")
        #expect(!FileManager.default.fileExists(atPath: m.sealed))

        // A NUL in the SRK password file: bash's $(cat) (what AEM passes) drops it, with a warning.
        let nul = m.dir + "/srk-nul"
        try write(Array("srk \0pass\n".utf8), to: nul)
        let bash = try run("/bin/bash", ["-c", "printf %s \"$(cat \"$1\")\" | od -An -c", "bash", nul])
        #expect(bash.stderr.contains("ignored null byte"), "\(bash.stderr)")
        #expect(bash.stdout.split(whereSeparator: { $0 == " " || $0 == "\n" }) == ["s", "r", "k", "p", "a", "s", "s"], "\(bash.stdout)")
        let before = try Self.lockoutCounter(m)
        let r = try bounded(Self.sealArgs(m, srk: nul))
        expectOneLineRefusal(r, naming: nul, "NUL in the SRK password")
        #expect(r.stderr.contains("NUL") && !r.stderr.contains("srk pass") && !r.stderr.contains("srk \u{0}") && !r.stderr.contains("SRK password is wrong"), "\(r.stderr)")
        #expect(try Self.lockoutCounter(m) == before, "the TPM counted a failed authorisation")
        #expect(!FileManager.default.fileExists(atPath: m.sealed))

        // A secret that is a FIFO
        try FileManager.default.removeItem(atPath: m.secrets + "/secret.txt")
        #expect(mkfifo(m.secrets + "/secret.txt", 0o600) == 0)
        expectOneLineRefusal(try bounded(Self.sealArgs(m, srk: m.srkFile)), naming: m.secrets + "/secret.txt", "secret.txt")
        #expect(!FileManager.default.fileExists(atPath: m.sealed))
    }
}
