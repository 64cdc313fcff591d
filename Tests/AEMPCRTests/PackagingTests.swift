import Foundation
import Testing
@testable import AEMPCR

/// The shipped binary and its packages (Issue 15). The static-stdlib release binary comes from
/// `AEMPCR_RELEASE_BINARY` (CI builds it first: `swift build -c release --static-swift-stdlib
/// -Xswiftc -Osize --product aem-pcr`, as packaging/build does); without it the static-binary checks are skipped outside CI and the
/// packages are built around the debug binary.
@Suite(.serialized) struct PackagingTests {
    static let releaseBinary = ProcessInfo.processInfo.environment["AEMPCR_RELEASE_BINARY"].map {
        $0.hasPrefix("/") ? $0 : Repo.path($0)
    }

    func releaseBinary() -> String? {
        guard let b = Self.releaseBinary else {
            if Repo.inCI { Issue.record("AEMPCR_RELEASE_BINARY is not set; .ci/run builds the static binary and sets it") }
            return nil
        }
        return b
    }

    /// Foundation in a target drags FoundationInternationalization's ICU data into the static
    /// binary (60 MiB stripped instead of 15): no source imports it.
    @Test func noSourceImportsFoundation() throws {
        let fm = FileManager.default
        let root = Repo.path("Sources")
        for rel in try fm.subpathsOfDirectory(atPath: root) where rel.hasSuffix(".swift") {
            let text = try String(contentsOfFile: root + "/" + rel, encoding: .utf8)
            #expect(!text.split(separator: "\n").contains { $0.hasPrefix("import Foundation") }, "Sources/\(rel) imports Foundation")
        }
    }

    /// ELF NEEDED: only the C runtime, zlib, libcrypto and tpm2-tss (trousers and ISA-L are
    /// loaded at run time); stripped at most 16 MiB; runs with an empty environment and hashes
    /// tboot as tboot's own lcp2_mlehash does.
    @Test func staticBinary() throws {
        guard let bin = releaseBinary(), let readelf = tool("readelf"), let strip = tool("strip"),
              let mlehash = tool("lcp2_mlehash") else { return }
        let dyn = try run(readelf, ["-d", bin])
        #expect(dyn.status == 0, "\(dyn.stderr)")
        let needed = dyn.stdout.split(separator: "\n").filter { $0.contains("(NEEDED)") }.compactMap { line -> String? in
            guard let a = line.firstIndex(of: "["), let b = line.lastIndex(of: "]") else { return nil }
            return String(line[line.index(after: a)..<b])
        }
        let allowed = ["libc.so.6", "libm.so.6", "libstdc++.so.6", "libgcc_s.so.1", "ld-linux-x86-64.so.2",
                       "libz.so.1", "libcrypto.so.3", "libisal.so.2"]
        #expect(!needed.isEmpty)
        for lib in needed {
            #expect(allowed.contains(lib) || lib.hasPrefix("libtss2-"), "unexpected NEEDED \(lib)")
        }
        #expect(!needed.contains { $0.hasPrefix("libswift") || $0.hasPrefix("libFoundation") || $0.hasPrefix("libdispatch") })
        let dir = try tempDir()
        let stripped = dir + "/aem-pcr"
        #expect(try run(strip, ["-o", stripped, bin]).status == 0)
        let size = try FileManager.default.attributesOfItem(atPath: stripped)[.size] as! Int
        #expect(size <= 16 << 20, "stripped binary is \(size) bytes")

        guard FileManager.default.fileExists(atPath: "/boot/tboot.gz") || Repo.inCI else { return }
        let r = try run("/usr/bin/env", ["-i", stripped, "mle-hash", "--bank", "sha256", "/boot/tboot.gz"])
        #expect(r.status == 0, "\(r.stderr)")
        let ref = try run(mlehash, ["--create", "--alg", "sha256", "/boot/tboot.gz"]).stdout.filter { !$0.isWhitespace }
        #expect(r.stdout.contains(ref) && ref.count == 64, "\(r.stdout) vs \(ref)")
    }

    /// packaging/build makes both packages; each lists the binary, the manual, the schemas and
    /// its hook; the RPM installs into a scratch root and its binary runs from there.
    @Test func rpmAndDeb() throws {
        guard let rpmbuild = tool("rpmbuild"), let rpm = tool("rpm"), let dpkgDeb = tool("dpkg-deb"),
              tool("strip") != nil else { return }
        _ = rpmbuild
        let bin = Self.releaseBinary ?? Repo.binary
        let out = try tempDir()
        let build = try run("/bin/bash", [Repo.path("packaging/build"), "--binary", bin, "--out", out])
        #expect(build.status == 0, "\(build.stderr)")
        let files = build.stdout.split(separator: "\n").map(String.init)
        guard files.count == 2 else { Issue.record("packaging/build printed \(build.stdout)"); return }
        let (rpmFile, debFile) = (files[0], files[1])
        #expect(rpmFile.hasSuffix(".x86_64.rpm") && debFile.hasSuffix("_amd64.deb"))

        let schemas = try FileManager.default.contentsOfDirectory(atPath: Repo.path("man")).filter { $0.hasSuffix(".schema.json") }
        #expect(schemas.count >= 8)
        let common = ["/usr/bin/aem-pcr", "/usr/share/man/man8/aem-pcr.8.gz", "/var/lib/aem-pcr"]
            + schemas.map { "/usr/share/aem-pcr/" + $0 }

        let rpmList = try run(rpm, ["-qlp", rpmFile])
        #expect(rpmList.status == 0, "\(rpmList.stderr)")
        let rpmPaths = Set(rpmList.stdout.split(separator: "\n").map(String.init))
        for p in common + ["/etc/dnf/plugins/post-transaction-actions.d/aem-pcr.action"] {
            #expect(rpmPaths.contains(p), "RPM lacks \(p)")
        }
        let requires = try run(rpm, ["-qRp", rpmFile]).stdout
        for r in ["zlib", "openssl-libs", "tpm2-tss", "libz.so.1()(64bit)", "libcrypto.so.3()(64bit)"] {
            #expect(requires.split(separator: "\n").contains(Substring(r)), "RPM does not require \(r)")
        }

        let debList = try run(dpkgDeb, ["-c", debFile])
        #expect(debList.status == 0, "\(debList.stderr)")
        let debPaths = Set(debList.stdout.split(separator: "\n").compactMap { line -> String? in
            line.split(separator: " ").last.map { p in
                var s = String(p.dropFirst())  // "./usr/bin/aem-pcr" → "/usr/bin/aem-pcr"
                if s.hasSuffix("/") && s.count > 1 { s.removeLast() }
                return s
            }
        })
        for p in common + ["/etc/apt/apt.conf.d/90aem-pcr"] {
            #expect(debPaths.contains(p), "deb lacks \(p)")
        }
        let control = try run(dpkgDeb, ["-f", debFile, "Depends"]).stdout
        for d in ["zlib1g", "libssl3", "libtss2-esys"] { #expect(control.contains(d), "deb does not depend on \(d)") }

        // The .deb unpacked: its binary runs and its hook runs the packaged command.
        let debRoot = try tempDir()
        #expect(try run(dpkgDeb, ["-x", debFile, debRoot]).status == 0)
        let debVersion = try run(debRoot + "/usr/bin/aem-pcr", ["--version"])
        #expect(debVersion.status == 0 && !debVersion.stdout.isEmpty, "\(debVersion.stderr)")
        let hook = try String(contentsOfFile: debRoot + "/etc/apt/apt.conf.d/90aem-pcr", encoding: .utf8)
        #expect(hook.contains("DPkg::Post-Invoke") && hook.contains("/usr/bin/aem-pcr notice || true"), "\(hook)")

        // Install into a scratch root (no dependencies there) and run the installed binary.
        let root = try tempDir()
        let install = try run(rpm, ["--root", root, "--dbpath", "/var/lib/rpm", "--nodeps", "-i", rpmFile])
        #expect(install.status == 0, "\(install.stderr)")
        let installed = root + "/usr/bin/aem-pcr"
        let version = try run(installed, ["--version"])
        #expect(version.status == 0 && !version.stdout.isEmpty, "\(version.stderr)")
        let r = try run(installed, ["predict", "--json", "--tpm", "1.2", "--grub-cfg", "Vectors/example/grub.cfg",
                                    "--entry", "0", "--boot-dir", "Vectors/example/boot"], cwd: Repo.root)
        #expect(r.status == 0, "\(r.stderr)")
        let expected = try JSONSerialization.jsonObject(with: Data(readText("Vectors/expected.json").utf8)) as! [String: Any]
        let top = (expected["predictions"] as! [[String: Any]]).first { $0["name"] as? String == "aem-top.pc.tpm12" }!
        let want = (top["pcrs"] as! [String: [String: String]])["sha1"]!
        let got = ((try JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as? [String: Any])?["pcrs"] as? [String: [String: String]])?["sha1"]
        #expect(got?["18"] == want["18"] && got?["19"] == want["19"])
        // The hook file names the command that exists in the package.
        let action = try String(contentsOfFile: root + "/etc/dnf/plugins/post-transaction-actions.d/aem-pcr.action", encoding: .utf8)
        let lines = action.split(separator: "\n").filter { !$0.hasPrefix("#") }
        #expect(lines.count >= 6 && lines.allSatisfy { $0.hasSuffix(":any:/usr/bin/aem-pcr notice") }, "\(action)")
        for p in ["xen-hypervisor*", "kernel*", "tboot*", "grub2*", "dracut*"] {
            #expect(lines.contains { $0.hasPrefix(p + ":") }, "no trigger for \(p)")
        }
    }

    /// The apt hook: valid apt configuration (apt-config parses it), and the command it runs.
    @Test func aptHookParses() throws {
        guard let aptConfig = tool("apt-config") else { return }
        let r = try run(aptConfig, ["-c", Repo.path("packaging/hooks/90aem-pcr"), "dump", "DPkg::Post-Invoke"])
        #expect(r.status == 0, "\(r.stderr)")
        #expect(r.stdout.contains("/usr/bin/aem-pcr notice || true"), "\(r.stdout)")
    }
}
