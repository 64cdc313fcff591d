// SPDX-License-Identifier: Apache-2.0
import Foundation
import Testing
@testable import AEMPCR

/// The grub.cfg reader against real GRUB (grub-emu).
@Suite struct GrubTests {
    struct Case: CustomStringConvertible, Sendable {
        var config: String, entry: String, platform: GrubPlatform, expected: String
        var description: String { "\(config) '\(entry)' \(platform)" }
    }

    static let cases: [Case] = {
        guard let text = try? readText("Vectors/grub/cases.tsv") else { return [] }
        return tsvRows(text).map { Case(config: $0[0], entry: $0[1], platform: GrubPlatform(rawValue: $0[2])!, expected: $0[3]) }
    }()

    /// Loader commands in the harness's format: command, file, arguments, tab separated.
    static func render(_ e: GrubEntry) -> String {
        e.loaderCommands.map { c in
            ([c.command] + c.options + [c.file] + c.argumentStrings).joined(separator: "\t")
        }.joined(separator: "\n")
    }

    @Test func casesAreListed() { #expect(Self.cases.count >= 10) }

    /// Parser output equals what real GRUB passed, recorded in Vectors (no grub-emu needed).
    @Test(arguments: cases)
    func matchesRecordedGrub(_ c: Case) throws {
        let cfg = try GrubConfig(path: Repo.path(c.config))
        let e = try cfg.entry(c.entry, platform: c.platform, bootDir: Repo.path("Vectors/example/boot"))
        let expected = try readText(c.expected).trimmingCharacters(in: .newlines)
        #expect(Self.render(e) == expected)
    }

    /// The same, with grub-emu run now (CI installs it).
    @Test(.needsTool("grub-emu", package: "grub-emu"), arguments: cases)
    func matchesLiveGrubEmu(_ c: Case) throws {
        guard tool("grub-emu") != nil else { return }
        let r = try run("/bin/bash", [Repo.path("Tests/Scripts/grub-emu-args.sh"), Repo.path(c.config), c.entry, c.platform.rawValue])
        #expect(r.status == 0, "\(r.stderr)")
        let e = try GrubConfig(path: Repo.path(c.config)).entry(c.entry, platform: c.platform, bootDir: Repo.path("Vectors/example/boot"))
        #expect(Self.render(e) == r.stdout.trimmingCharacters(in: .newlines))
    }

    static let scopeText = """
        set foo=bar
        set ex=yes
        export ex
        menuentry 'A' {
        \tmultiboot /t.gz $foo $ex
        }
        submenu 'S' {
        \tmenuentry 'B' {
        \t\tmultiboot /t.gz x$foo y$ex
        \t}
        }
        set foo=late
        """

    /// Variables: a top-level entry sees the whole file's final values; a submenu only exported
    /// ones (GRUB grub_env_context_open).
    @Test func variableScopes() throws {
        let cfg = try GrubConfig(text: Self.scopeText, path: "scope.cfg")
        #expect(try cfg.entry("A", bootDir: Repo.path("Vectors/example/boot")).loaderCommands[0].argumentStrings == ["late", "yes"])
        #expect(try cfg.entry("S>B", bootDir: Repo.path("Vectors/example/boot")).loaderCommands[0].argumentStrings == ["x", "yyes"])
        #expect(try cfg.entry("1>0", bootDir: Repo.path("Vectors/example/boot")).loaderCommands[0].argumentStrings == ["x", "yyes"])
    }

    /// The same scopes in real GRUB.
    @Test(.needsTool("grub-emu", package: "grub-emu")) func variableScopesInGrubEmu() throws {
        guard tool("grub-emu") != nil else { return }
        let dir = try tempDir()
        try Self.scopeText.write(toFile: dir + "/s.cfg", atomically: true, encoding: .utf8)
        let a = try run("/bin/bash", [Repo.path("Tests/Scripts/grub-emu-args.sh"), dir + "/s.cfg", "A"])
        #expect(a.stdout == "multiboot\t/t.gz\tlate\tyes\n")
        let b = try run("/bin/bash", [Repo.path("Tests/Scripts/grub-emu-args.sh"), dir + "/s.cfg", "S>B"])
        #expect(b.stdout == "multiboot\t/t.gz\tx\tyyes\n")
    }

    /// GRUB ≥ 2.04 (grub-core/lib/cmdline.c) and the Fedora/Qubes \xHH exception; ≤ 2.02 plain.
    @Test func commandLineJoining() {
        let args = ["placeholder", "a b", "x\"y", "it's", "back\\slash", "", "q\\x41"]
        #expect(GrubCmdlineStyle.upstream.join(args) == #"placeholder "a b" x\"y it\'s back\\slash  q\\x41"#)
        #expect(GrubCmdlineStyle.fedora.join(args) == #"placeholder "a b" x\"y it\'s back\\slash  q\x41"#)
        #expect(GrubCmdlineStyle.plain.join(args) == #"placeholder a b x"y it's back\slash  q\x41"#)
        #expect(GrubCmdlineStyle.fedora.join([]) == "")
    }

    @Test func entryPathsAndErrors() throws {
        let cfg = try GrubConfig(path: Repo.path("Vectors/example/grub.cfg"))
        // By index and by title reach the same entry.
        let byTitle = try cfg.entry("AEM Qubes, with Xen hypervisor", bootDir: Repo.path("Vectors/example/boot"))
        let byIndex = try cfg.entry("0", bootDir: Repo.path("Vectors/example/boot"))
        #expect(byTitle.loaderCommands == byIndex.loaderCommands)
        #expect { try cfg.entry("No such entry", bootDir: Repo.path("Vectors/example/boot")) } throws: { e in
            guard let g = e as? CodedError else { return false }
            return g.code == .grubEntryNotFound && g.description.contains("No such entry") && g.description.contains("0: AEM Qubes")
        }
        #expect { try cfg.entry("Advanced options with AEM boot for Qubes (with Xen hypervisor)", bootDir: Repo.path("Vectors/example/boot")) } throws: { e in
            (e as? CodedError)?.description.contains("is a submenu") == true
        }
        #expect(GrubConfig.splitEntryPath("a>b>>c>d") == ["a", "b>c", "d"])
    }

    @Test func syntaxErrorsNameTheLine() {
        let bad: [(String, Int, String)] = [
            ("menuentry 'x' {\n multiboot /a\n", 1, "'}' missing"),
            ("if true; then\n set a=b\n", 1, "'fi' missing"),
            ("set a=b\nfi\n", 2, "outside an if"),
            ("menuentry 'x' {\n multiboot '/a\n}\n", 2, "unterminated single quote"),
            ("menuentry 'x' {\n multiboot ${a\n}\n", 2, "unterminated ${"),
            ("for x in a b; do echo; done\n", 1, "loops are not supported"),
            (String(repeating: "if true; then\n", count: 20_000) + String(repeating: "fi\n", count: 20_000), 100, "nested more than 100 deep"),
            // Bodies that begin on the next line (as grub-mkconfig writes them): no stack overflow.
            (String(repeating: "submenu 'x' {\n", count: 20_000) + String(repeating: "}\n", count: 20_000), 101, "nested more than 100 deep"),
            (String(repeating: "function f {\n", count: 20_000) + String(repeating: "}\n", count: 20_000), 101, "nested more than 100 deep"),
            (String(repeating: "menuentry 'x' {\n", count: 150), 101, "nested more than 100 deep"),
        ]
        for (text, line, message) in bad {
            #expect { try GrubConfig(text: text, path: "bad.cfg") } throws: { e in
                guard let g = e as? CodedError else { return false }
                return g.line == line && g.description.contains(message) && g.description.hasPrefix("bad.cfg:\(line): ")
            }
        }
    }

    /// Every boot the example offers resolves to files in the example boot directory.
    @Test func exampleEntryToBootSpec() throws {
        let cfg = try GrubConfig(path: Repo.path("Vectors/example/grub.cfg"))
        let e = try cfg.entry("AEM Qubes, with Xen hypervisor", bootDir: Repo.path("Vectors/example/boot"))
        let spec = try BootSpec(entry: e, config: cfg, bootDir: "/b/")
        #expect(spec.tbootPath == "/b/tboot.gz")
        #expect(spec.tbootCmdline == Array("placeholder logging=memory,serial".utf8))
        #expect(spec.modules.map(\.path).first == "/b/xen-4.17.5.gz")
        #expect(spec.modules.count == 5)
        #expect(try BootSpec.resolve("(hd0,msdos1)/x/y.gz", bootDir: "/boot") == "/boot/x/y.gz")
        let normal = try cfg.entry("Qubes, with Xen hypervisor", bootDir: Repo.path("Vectors/example/boot"))
        // A non-AEM entry boots Xen directly through multiboot2: the tboot check happens on the
        // file (no MLE header), which the predictor reports.
        #expect(normal.loaderCommands.first?.command == "multiboot2")
    }
}
