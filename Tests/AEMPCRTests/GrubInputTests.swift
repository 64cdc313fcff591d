// SPDX-License-Identifier: Apache-2.0
import Foundation
import Testing
@testable import AEMPCR

/// grub.cfg as GRUB reads it (issue 13): `source`, device prefixes, `..`, bytes. Argument lists
/// are checked against grub-emu where it can show them; digests come from python3.
@Suite struct GrubInputTests {
    static let harness = Repo.path("Tests/Scripts/grub-emu-args.sh")

    static func grubEmu(_ cfg: String, _ entry: String) throws -> String? {
        guard tool("grub-emu") != nil else { return nil }
        let r = try run("/bin/bash", [harness, cfg, entry])
        #expect(r.status == 0, "\(r.stderr)")
        return r.stdout
    }

    static func render(_ e: GrubEntry) -> String {
        e.loaderCommands.map { c in ([c.command] + c.options + [c.file] + c.argumentStrings).joined(separator: "\t") }
            .joined(separator: "\n") + "\n"
    }

    /// A variable set in a sourced file reaches the command line, as in GRUB (grub-emu reads the
    /// same absolute path on the host, so the boot directory here is `/`).
    @Test func sourceIsFollowed() throws {
        let dir = try tempDir()
        try "set extra=\"from=inc\"\nset two='a b'\n".write(toFile: dir + "/inc.cfg", atomically: true, encoding: .utf8)
        let text = """
            source \(dir)/inc.cfg
            menuentry 'S' {
            \tmultiboot /tboot.gz placeholder $extra $two
            }
            """
        try text.write(toFile: dir + "/main.cfg", atomically: true, encoding: .utf8)
        let e = try GrubConfig(path: dir + "/main.cfg").entry("S", bootDir: "/")
        #expect(e.loaderCommands[0].argumentStrings == ["placeholder", "from=inc", "a", "b"])
        if let expected = try Self.grubEmu(dir + "/main.cfg", "S") { #expect(Self.render(e) == expected) }
        // Without a boot directory the file cannot be found: refused, naming it.
        #expect { try GrubConfig(path: dir + "/main.cfg").entry("S") } throws: { e in
            (e as? CodedError)?.description.contains("'source \(dir)/inc.cfg'") == true
        }
        // Relative to the boot directory: /inc.cfg under dir.
        let rel = try GrubConfig(text: "source /inc.cfg\nmenuentry 'S' {\n multiboot /t $extra\n}\n", path: "r.cfg")
        #expect(try rel.entry("S", bootDir: dir).loaderCommands[0].argumentStrings == ["from=inc"])
        // A file GRUB would not find is skipped as GRUB skips it, and said so.
        let missing = try GrubConfig(text: "source /nope.cfg\nmenuentry 'S' {\n multiboot /t x$extra\n}\n", path: "m.cfg")
        let m = try missing.entry("S", bootDir: dir)
        #expect(m.loaderCommands[0].argumentStrings == ["x"])
        #expect(m.notes.count == 1 && m.notes[0].contains("/nope.cfg"))
        // configfile replaces the menu: refused, naming the file.
        let cf = try GrubConfig(text: "configfile /other.cfg\nmenuentry 'S' {\n multiboot /t\n}\n", path: "c.cfg")
        #expect { try cf.entry("S", bootDir: dir) } throws: { e in
            (e as? CodedError)?.description == "c.cfg:1: 'configfile /other.cfg' shows another file's menu; predict from that file (--grub-cfg /other.cfg)"
        }
        // A file that sources itself stops at the depth cap with one line.
        try "source /loop.cfg\n".write(toFile: dir + "/loop.cfg", atomically: true, encoding: .utf8)
        let loop = try GrubConfig(text: "source /loop.cfg\nmenuentry 'S' {\n multiboot /t\n}\n", path: "l.cfg")
        #expect { try loop.entry("S", bootDir: dir) } throws: { e in
            (e as? CodedError)?.description.contains("nests too deep") == true
        }
    }

    /// `(hd0,msdos1)/…` and `($root)/…` are read under the boot directory and said so; a loop
    /// device, the network, a memory disk or an unset `$root` are refused, naming the path.
    @Test func devicePrefixes() throws {
        let dir = try tempDir()
        let text = """
            set root='hd0,msdos1'
            menuentry 'Local' {
            \tmultiboot (hd0,msdos1)/tboot.gz placeholder
            \tmodule ($root)/xen.gz placeholder
            \tmodule (lvm/qubes_dom0-boot)/vmlinuz x
            }
            menuentry 'Loop' {
            \tloopback iso /images/q.iso
            \tmultiboot (iso)/tboot.gz placeholder
            }
            menuentry 'Loop2' {
            \tmultiboot (loop0)/tboot.gz placeholder
            }
            menuentry 'Http' {
            \tmultiboot (http,example.com)/tboot.gz placeholder
            }
            menuentry 'Memdisk' {
            \tmultiboot (memdisk)/tboot.gz placeholder
            }
            menuentry 'NoRoot' {
            \tunset root
            \tmultiboot ($root)/tboot.gz placeholder
            }
            """
        let cfg = try GrubConfig(text: text, path: "d.cfg")
        let local = try cfg.entry("Local", bootDir: dir)
        let spec = try BootSpec(entry: local, config: cfg, bootDir: dir)
        #expect(spec.tbootPath == dir + "/tboot.gz")
        #expect(spec.modules.map(\.path) == [dir + "/xen.gz", dir + "/vmlinuz"])
        #expect(spec.notes.contains { $0.contains("(hd0,msdos1)/tboot.gz") && $0.contains("read as \(dir)/tboot.gz") })
        #expect(spec.notes.count == 3)
        let refused: [(String, String)] = [
            ("Loop", "'(iso)/tboot.gz' is on a loop device"), ("Loop2", "'(loop0)/tboot.gz' is on a loop device"),
            ("Http", "'(http,example.com)/tboot.gz' is fetched over the network"),
            ("Memdisk", "'(memdisk)/tboot.gz' is on device '(memdisk)'"), ("NoRoot", "'()/tboot.gz' is on an empty device"),
        ]
        for (entry, message) in refused {
            #expect { try cfg.entry(entry, bootDir: dir) } throws: { e in
                guard let g = e as? CodedError else { return false }
                return g.code == .grubUnsupported && g.description.contains(message)
            }
        }
    }

    /// `..` never leaves the boot directory: on GRUB's filesystems `/..` is `/`. A symbolic link
    /// out of the boot directory is refused.
    @Test func dotDotStaysInside() throws {
        let dir = try tempDir()
        try FileManager.default.createDirectory(atPath: dir + "/grub", withIntermediateDirectories: true)
        let text = "menuentry 'D' {\n multiboot /../../../etc/hostname a\n module /grub/../x/./y.gz b\n module /link c\n}\n"
        let cfg = try GrubConfig(text: text, path: "dd.cfg")
        let e = try cfg.entry("D", bootDir: dir)
        #expect(try GrubPath.resolve(e.loaderCommands[0].fileBytes, bootDir: dir, config: "dd.cfg", line: 2) == dir + "/etc/hostname")
        #expect(try GrubPath.resolve(e.loaderCommands[1].fileBytes, bootDir: dir, config: "dd.cfg", line: 3) == dir + "/x/y.gz")
        try FileManager.default.createSymbolicLink(atPath: dir + "/link", withDestinationPath: "/etc/hostname")
        #expect { try BootSpec(entry: e, config: cfg, bootDir: dir) } throws: { e in
            (e as? CodedError)?.description.contains("outside the boot directory") == true
        }
    }

    /// What GRUB itself refuses stays refused: `{` on the next line ("no menuentry definition"
    /// in grub-emu), an option without its value defines no entry.
    @Test func braceMustBeOnTheLine() throws {
        #expect { try GrubConfig(text: "menuentry 'I'\n{\n multiboot /t\n}\n", path: "b.cfg") } throws: { e in
            (e as? CodedError)?.description == "b.cfg:1: menuentry without '{' on its line"
        }
        let cfg = try GrubConfig(text: "menuentry 'I' --class {\n multiboot /t\n}\n", path: "c.cfg")
        #expect { try cfg.entry("I") } throws: { e in (e as? CodedError)?.code == .grubEntryNotFound }
    }

    /// GRUB's `test`, as `commands/test.c` reads it (the same cases run in grub-emu through
    /// Vectors/grub/syntax.cfg).
    @Test func testCommand() {
        let cases: [([String], Bool)] = [
            (["=", "0"], true), (["!=", "0"], true), (["x", "=", "y"], false), (["!", "x", "=", "y"], true),
            ([], true), ([""], false), (["-n", ""], false), (["-z", ""], true), (["0x10", "-eq", "16"], true),
            (["010", "-eq", "8"], true), (["-5", "-lt", "3"], true), (["a", "-a", ""], false), (["", "-o", "a"], true),
            (["(", "", "-o", "a", ")", "-a", "b"], true), (["!", "(", "a", ")"], false),
            (["vmlinuz-2", "-plt", "vmlinuz-11"], true), (["a", "<", "b"], true),
            (Array(repeating: "!", count: 100_001) + ["x"], false),
            (Array(repeating: "(", count: 100_000) + ["x"], true),
        ]
        for (args, expected) in cases {
            #expect(GrubEvaluator.test(args) == expected, "\(args.prefix(8))")
        }
    }

    /// A command line is bytes: 0xE9 in grub.cfg is hashed as 0xE9 (digest from python3),
    /// printed as `\xe9`, and carried exactly in JSON's `cmdline_hex`.
    @Test func bytesNotText() throws {
        let dir = try tempDir()
        let module: [UInt8] = (0..<4096).map { UInt8(truncatingIfNeeded: $0 &* 7) }
        try write(module, to: dir + "/mod.bin")
        var cfg = Array("menuentry 'B' {\n multiboot /tboot.gz placeholder\n module /mod.bin placeholder caf".utf8)
        cfg += [0xE9, 0x20, 0x01, 0xFF]
        cfg += Array("\n}\n".utf8)
        try write(cfg, to: dir + "/grub.cfg")
        let config = try GrubConfig(path: dir + "/grub.cfg")
        let spec = try BootSpec(entry: try config.entry("B", bootDir: dir), config: config, bootDir: dir)
        let line: [UInt8] = Array("placeholder caf".utf8) + [0xE9, 0x20, 0x01, 0xFF]
        #expect(spec.modules[0].cmdline == line)
        let m = try ModuleMeasurement.measure(spec.modules[0], banks: [.sha1, .sha256])
        let py = """
            import hashlib, sys
            img = open(sys.argv[1], 'rb').read()
            line = b'placeholder caf\\xe9 \\x01\\xff'
            for a in ('sha1', 'sha256'):
                h = lambda b: hashlib.new(a, b).digest()
                print(a, hashlib.new(a, h(line) + h(img)).hexdigest())
            """
        let expected = try run("/usr/bin/env", ["python3", "-c", py, dir + "/mod.bin"]).stdout
        #expect("sha1 \(m.measurements[.sha1]!.hex)\nsha256 \(m.measurements[.sha256]!.hex)\n" == expected)
        #expect(Escape.bytes(line) == "placeholder caf\\xe9 \\x01\\xff")

        // Through the CLI with the example's tboot: JSON carries the bytes in hex.
        try FileManager.default.copyItem(atPath: Repo.path("Vectors/example/boot/tboot.gz"), toPath: dir + "/tboot.gz")
        let r = try aemPCR(["predict", "--tpm", "1.2", "--grub-cfg", dir + "/grub.cfg", "--entry", "B", "--boot-dir", dir, "--json"])
        #expect(r.status == 0, "\(r.stderr)")
        let json = try JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as! [String: Any]
        let mods = json["modules"] as! [[String: Any]]
        #expect(mods[0]["cmdline_hex"] as? String == line.map { String(format: "%02x", $0) }.joined())
        let whats = (json["events"] as! [[String: Any]]).compactMap { $0["what"] as? String }
        #expect(whats.contains { $0.hasSuffix("with command line 'placeholder' (measured by SINIT)") }, "\(whats)")
        #expect(whats.contains { $0.hasSuffix("cmdline 'placeholder caf\\xe9 \\x01\\xff'") }, "\(whats)")
        let text = try aemPCR(["predict", "--tpm", "1.2", "--grub-cfg", dir + "/grub.cfg", "--entry", "B", "--boot-dir", dir, "-v"])
        #expect(text.stdout.contains("cmdline 'placeholder caf\\xe9 \\x01\\xff'"))
    }

    /// Bytes given on aem-pcr's own command line are hashed as given too (python3 passes 0xE9
    /// in argv and computes the digest).
    @Test func argumentBytes() throws {
        let dir = try tempDir()
        try write((0..<1000).map { UInt8(truncatingIfNeeded: $0 &* 13) }, to: dir + "/mod.bin")
        let py = """
            import hashlib, subprocess, sys
            img = open(sys.argv[2], 'rb').read()
            line = b'placeholder caf\\xe9'
            h = lambda b: hashlib.sha256(b).digest()
            print('sha256 ' + hashlib.sha256(h(line) + h(img)).hexdigest())
            for args in ([b'--cmdline', line], [b'--cmdline=' + line]):
                r = subprocess.run([sys.argv[1].encode(), b'measure', b'--bank', b'sha256'] + args + [sys.argv[2].encode()],
                                   capture_output=True)
                sys.stdout.write(r.stdout.decode())
            r = subprocess.run([sys.argv[1].encode(), b'measure', b'--json', b'--cmdline', line, sys.argv[2].encode()],
                               capture_output=True)
            print('hex' if b'"cmdline_hex": "' + line.hex().encode() + b'"' in r.stdout else 'no hex')
            """
        let r = try run("/usr/bin/env", ["python3", "-c", py, Repo.binary, dir + "/mod.bin"])
        let lines = r.stdout.split(separator: "\n").map(String.init)
        #expect(lines.count == 4, "\(r.stdout) \(r.stderr)")
        #expect(lines.count == 4 && lines[1] == lines[0] && lines[2] == lines[0] && lines[3] == "hex", "\(r.stdout)")
    }
}

