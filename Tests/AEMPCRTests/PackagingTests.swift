// SPDX-License-Identifier: Apache-2.0
import Foundation
import Testing
@testable import AEMPCR

/// The shipped binary and its packages (Issues 15, 23). The static-stdlib release binary comes
/// from `AEMPCR_RELEASE_BINARY` (CI builds it first: `swift build -c release --static-swift-stdlib
/// -Xswiftc -Osize -Xswiftc -Xfrontend -Xswiftc -function-sections -Xswiftc -use-ld=lld -Xlinker --gc-sections -Xlinker --icf=safe -Xlinker -z -Xlinker pack-relative-relocs --disable-local-rpath --product aem-pcr`, as packaging/build does); without it
/// the tests that need it are skipped outside CI (packaging/build refuses the debug binary).
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
        // No search path of its own (SwiftPM adds RUNPATH $ORIGIN unless --disable-local-rpath):
        // nothing is installed beside /usr/bin/aem-pcr.
        let paths = dyn.stdout.split(separator: "\n").filter { $0.contains("(RUNPATH)") || $0.contains("(RPATH)") }
        #expect(paths.isEmpty, "\(paths)")
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

    /// packaging/build's two packages of `bin`, written in `out`: the RPM and the .deb (nil,
    /// recorded as an issue, when it did not print two files).
    func packages(_ bin: String, in out: String, options: [String] = []) throws -> (rpm: String, deb: String)? {
        let build = try run("/bin/bash", [Repo.path("packaging/build"), "--binary", bin, "--out", out] + options)
        #expect(build.status == 0, "\(build.stderr)")
        if options.contains("--maintainer") { #expect(!build.stderr.contains("placeholder"), "\(build.stderr)") }
        let files = build.stdout.split(separator: "\n").map(String.init)
        guard files.count == 2 else { Issue.record("packaging/build printed \(build.stdout)"); return nil }
        return (files[0], files[1])
    }

    /// packaging/build makes both packages from the static binary (it refuses the debug one: it
    /// carries RUNPATH); each lists the binary, the manual, the schemas, the kernel-install plugin
    /// and its hooks; the RPM installs into a scratch root and its binary runs from there.
    @Test func rpmAndDeb() throws {
        guard let bin = releaseBinary(), let rpm = tool("rpm"), let dpkgDeb = tool("dpkg-deb"),
              tool("rpmbuild") != nil, tool("strip") != nil else { return }
        let out = try tempDir()
        defer { try? FileManager.default.removeItem(atPath: out) }
        guard let built = try packages(bin, in: out) else { return }
        let (rpmFile, debFile) = built
        #expect(rpmFile.hasSuffix(".x86_64.rpm") && debFile.hasSuffix("_amd64.deb"))

        let schemas = try FileManager.default.contentsOfDirectory(atPath: Repo.path("man")).filter { $0.hasSuffix(".schema.json") }
        #expect(schemas.count >= 8)
        let common = ["/usr/bin/aem-pcr", "/usr/share/man/man8/aem-pcr.8.gz", "/var/lib/aem-pcr",
                      "/usr/lib/kernel/install.d/99-zz-aem-pcr.install"]
            + schemas.map { "/usr/share/aem-pcr/" + $0 }

        let rpmList = try run(rpm, ["-qlp", rpmFile])
        #expect(rpmList.status == 0, "\(rpmList.stderr)")
        let rpmPaths = Set(rpmList.stdout.split(separator: "\n").map(String.init))
        for p in common + ["/etc/dnf/plugins/post-transaction-actions.d/aem-pcr.action",
                           "/etc/dnf/libdnf5-plugins/actions.d/aem-pcr.actions",
                           "/usr/share/licenses/aem-pcr/LICENSE", "/var/lib/aem-pcr/notice.state"] {
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
        for p in common + ["/etc/apt/apt.conf.d/90aem-pcr", "/usr/share/doc/aem-pcr/copyright",
                           "/usr/share/doc/aem-pcr/changelog.Debian.gz"] {
            #expect(debPaths.contains(p), "deb lacks \(p)")
        }
        let control = try run(dpkgDeb, ["-f", debFile, "Depends"]).stdout
        for d in ["zlib1g", "libssl3", "libtss2-esys"] { #expect(control.contains(d), "deb does not depend on \(d)") }

        // The .deb unpacked: its binary runs and its hook runs the packaged command.
        let debRoot = try tempDir()
        defer { try? FileManager.default.removeItem(atPath: debRoot) }
        #expect(try run(dpkgDeb, ["-x", debFile, debRoot]).status == 0)
        let debVersion = try run(debRoot + "/usr/bin/aem-pcr", ["--version"])
        #expect(debVersion.status == 0 && !debVersion.stdout.isEmpty, "\(debVersion.stderr)")
        let hook = try String(contentsOfFile: debRoot + "/etc/apt/apt.conf.d/90aem-pcr", encoding: .utf8)
        #expect(hook.contains("DPkg::Post-Invoke") && hook.contains("/usr/bin/aem-pcr notice || true"), "\(hook)")

        // Install into a scratch root (no dependencies there) and run the installed binary.
        let root = try tempDir()
        defer { try? FileManager.default.removeItem(atPath: root) }
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
        // notice's state belongs to the package: rpm -e removes the file notice wrote.
        try "saved by notice\n".write(toFile: root + "/var/lib/aem-pcr/notice.state", atomically: false, encoding: .utf8)
        let erase = try run(rpm, ["--root", root, "--dbpath", "/var/lib/rpm", "--nodeps", "-e", "aem-pcr"])
        #expect(erase.status == 0, "\(erase.stderr)")
        #expect(!FileManager.default.fileExists(atPath: root + "/var/lib/aem-pcr/notice.state"), "rpm -e left notice.state")
        #expect(!FileManager.default.fileExists(atPath: root + "/var/lib/aem-pcr"), "rpm -e left /var/lib/aem-pcr")
    }

    /// What a distribution needs besides the files: the licence in both packages, one changelog
    /// (dpkg-parsechangelog reads it; the RPM's %changelog carries the same entry), the
    /// maintainer a release build is given (`--release --maintainer`: the .deb's Maintainer, the
    /// RPM's Packager, the signer of the changelog entries packaging/changelog signs with its
    /// placeholder), and the .deb purged with dpkg itself in a scratch root: purge removes
    /// notice's state and its directory.
    @Test func releaseMetadataAndPurge() throws {
        guard let bin = releaseBinary(), let rpm = tool("rpm"), let dpkgDeb = tool("dpkg-deb"), let dpkg = tool("dpkg"),
              let parse = tool("dpkg-parsechangelog"), tool("rpmbuild") != nil else { return }
        let out = try tempDir()
        defer { try? FileManager.default.removeItem(atPath: out) }
        let packager = "Test Packager <test-packager@aem-pcr.org>"
        guard let built = try packages(bin, in: out, options: ["--release", "--maintainer", packager]) else { return }
        let (rpmFile, debFile) = built

        #expect(try run(rpm, ["-qp", "--qf", "%{LICENSE}", rpmFile]).stdout == "Apache-2.0")
        let flags = try run(rpm, ["-qp", "--qf", "[%{FILEFLAGS:fflags} %{FILENAMES}\n]", rpmFile]).stdout
        #expect(flags.split(separator: "\n").contains("g /var/lib/aem-pcr/notice.state"), "notice.state is not %ghost: \(flags)")
        #expect(flags.split(separator: "\n").contains("l /usr/share/licenses/aem-pcr/LICENSE"), "\(flags)")
        let license = try readText("LICENSE")
        #expect(license.contains("Apache License") && license.contains("Version 2.0, January 2004"))

        // The changelog as dpkg reads it; both packages carry it and its maintainer.
        let fields = try run(parse, ["-l", Repo.path("packaging/changelog")])
        #expect(fields.status == 0, "\(fields.stderr)")
        func field(_ name: String) -> String? {
            fields.stdout.split(separator: "\n").first { $0.hasPrefix(name + ": ") }.map { String($0.dropFirst(name.count + 2)) }
        }
        let signer = try #require(field("Maintainer")), fullVersion = try #require(field("Version"))
        #expect(signer == "aem-pcr maintainers <aem-pcr-maintainers@example.org>", "packaging/changelog's signer is \(signer): a real address? then --release needs no --maintainer")
        let maintainer = packager
        #expect(try run(dpkgDeb, ["-f", debFile, "Maintainer"]).stdout == maintainer + "\n")
        #expect(try run(rpm, ["-qp", "--qf", "%{PACKAGER}", rpmFile]).stdout == maintainer)
        #expect(try run(dpkgDeb, ["-f", debFile, "Version"]).stdout == fullVersion + "\n")
        let binVersion = try run(bin, ["--version"]).stdout.filter { !$0.isWhitespace }
        #expect(fullVersion.hasPrefix(binVersion + "-"), "changelog \(fullVersion), binary \(binVersion)")
        let rpmLog = try run(rpm, ["-qp", "--changelog", rpmFile]).stdout
        #expect(rpmLog.hasPrefix("* ") && rpmLog.split(separator: "\n")[0].hasSuffix(" \(maintainer) - \(fullVersion)"), "\(rpmLog)")
        let firstItem = try #require(fields.stdout.split(separator: "\n").first { $0.hasPrefix("   * ") })
        #expect(rpmLog.contains("- " + firstItem.dropFirst(5)), "\(rpmLog)")

        // dpkg installs into a scratch root (maintainer scripts run outside it with DPKG_ROOT set,
        // --force-script-chrootless), notice's state appears, purge removes it.
        let root = try tempDir()
        defer { try? FileManager.default.removeItem(atPath: root) }
        for d in ["var/lib/dpkg/updates", "var/lib/dpkg/info", "var/lib/dpkg/triggers"] {
            try FileManager.default.createDirectory(atPath: root + "/" + d, withIntermediateDirectories: true)
        }
        for f in ["var/lib/dpkg/status", "var/lib/dpkg/available"] {
            FileManager.default.createFile(atPath: root + "/" + f, contents: Data())
        }
        let common = ["--root=" + root, "--log=/dev/null", "--force-script-chrootless", "--force-depends"]
        let install = try run(dpkg, common + ["-i", debFile])
        #expect(install.status == 0, "\(install.stderr)")
        let copyrightText = try String(contentsOfFile: root + "/usr/share/doc/aem-pcr/copyright", encoding: .utf8)
        // The changelog the .deb installs, read by dpkg-parsechangelog: signed by the packager.
        let installedLog = root + "/usr/share/doc/aem-pcr/changelog.Debian.gz"
        let plain = try run("/bin/sh", ["-c", "gzip -dc '\(installedLog)' > '\(root)/changelog'"])
        #expect(plain.status == 0, "\(plain.stderr)")
        let shipped = try run(parse, ["-l", root + "/changelog"]).stdout
        #expect(shipped.contains("Maintainer: \(packager)\n") && shipped.contains("Version: \(fullVersion)\n"), "\(shipped)")
        #expect(copyrightText.contains("License: Apache-2.0") && copyrightText.contains("/usr/share/common-licenses/Apache-2.0"))
        try "saved by notice\n".write(toFile: root + "/var/lib/aem-pcr/notice.state", atomically: false, encoding: .utf8)
        let purge = try run(dpkg, common + ["--purge", "aem-pcr"])
        #expect(purge.status == 0, "\(purge.stderr)")
        #expect(!purge.stderr.contains("/var/lib/aem-pcr"), "\(purge.stderr)")
        #expect(!FileManager.default.fileExists(atPath: root + "/var/lib/aem-pcr"), "purge left /var/lib/aem-pcr")
    }

    /// The dnf 4 hook with real dnf 4 (Debian's dnf 4.14 and dnf-plugins-core's
    /// post-transaction-actions plugin): packaging/hooks/aem-pcr.action read by the plugin
    /// (its actiondir), transactions into a scratch --installroot of small RPMs made here with
    /// rpmbuild. /usr/bin/aem-pcr in the action is replaced by a stand-in that records its call
    /// and runs the built aem-pcr's notice on the shipped example's AEM entry with the scratch
    /// root's /boot. A transaction of nothing the boot measures runs nothing; one that updates
    /// Xen and a kernel package runs notice once, and dnf prints its report (prefixed
    /// `post-transaction-actions:`) naming module 0 and PCR18 (TPM 1.2: Xen is measured into
    /// PCR18); one whose package has no matching name but ships /boot/initramfs-* (the file
    /// filter) names module 2 and PCR19.
    ///
    /// Debian 12's plugin calls `libdnf.conf.ConfigParser_substitute`, a name Debian's
    /// python3-libdnf (0.69, built with a newer SWIG) exports only as
    /// `ConfigParser.substitute`: every action fails there with an AttributeError. A
    /// sitecustomize on PYTHONPATH adds that one alias, and only when it is missing; the plugin
    /// and dnf run unchanged (on Fedora and Qubes dom0 the name exists).
    @Test(.needs("dnf 4 and its post-transaction-actions plugin (Debian packages dnf, dnf-plugins-core), rpmbuild (rpm)",
                 findTool("dnf") != nil && findTool("rpmbuild") != nil
                    && FileManager.default.fileExists(atPath: "/usr/lib/python3/dist-packages/dnf-plugins/post-transaction-actions.py")))
    func dnf4PostTransactionActions() throws {
        guard let dnf = tool("dnf"), let rpmbuild = tool("rpmbuild") else { return }
        let dir = try tempDir()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let fm = FileManager.default
        for d in ["root/boot", "plugins", "actions", "shim", "bin", "rpms"] {
            try fm.createDirectory(atPath: dir + "/" + d, withIntermediateDirectories: true)
        }
        // The machine before the update: the example's boot files, notice's reference saved.
        for f in try fm.contentsOfDirectory(atPath: Repo.path("Vectors/example/boot")) {
            try fm.copyItem(atPath: Repo.path("Vectors/example/boot/" + f), toPath: dir + "/root/boot/" + f)
        }
        let stand = dir + "/bin/aem-pcr"
        try """
            #!/bin/sh
            echo "$*" >> '\(dir)/calls'
            exec '\(Repo.binary)' "$@" --grub-cfg '\(Repo.path("Vectors/example/grub.cfg"))' --boot-dir '\(dir)/root/boot' \\
              --state-dir '\(dir)/state' --mem '\(dir)/no-mem' --aem-dir '\(dir)/no-aem' --tpm 1.2

            """.write(toFile: stand, atomically: false, encoding: .utf8)
        chmod(stand, 0o755)
        let first = try run(stand, ["notice"])
        #expect(first.status == 0 && first.stdout.contains("saved the measurements"), "\(first)")
        try fm.removeItem(atPath: dir + "/calls")

        let action = try readText("packaging/hooks/aem-pcr.action").replacingOccurrences(of: "/usr/bin/aem-pcr", with: stand)
        try action.write(toFile: dir + "/actions/aem-pcr.action", atomically: false, encoding: .utf8)
        try "[main]\nenabled = 1\nactiondir = \(dir)/actions/\n"
            .write(toFile: dir + "/plugins/post-transaction-actions.conf", atomically: false, encoding: .utf8)
        try """
            import libdnf.conf
            if not hasattr(libdnf.conf, "ConfigParser_substitute"):
                libdnf.conf.ConfigParser_substitute = libdnf.conf.ConfigParser.substitute

            """.write(toFile: dir + "/shim/sitecustomize.py", atomically: false, encoding: .utf8)

        // Packages: NAME VERSION, and the file each puts in /boot (copied from the example).
        try """
            Name: %{pname}
            Version: %{pver}
            Release: 1
            Summary: aem-pcr test package
            License: Apache-2.0
            BuildArch: noarch
            %description
            aem-pcr test package
            %install
            mkdir -p %{buildroot}/usr/share/%{pname}
            echo %{pver} > %{buildroot}/usr/share/%{pname}/version
            %{?bootfile:install -D -m 0644 "%{payload}" "%{buildroot}/boot/%{bootfile}"}
            %files
            /usr/share/%{pname}/version
            %{?bootfile:/boot/%{bootfile}}

            """.write(toFile: dir + "/test.spec", atomically: false, encoding: .utf8)
        func rpm(_ name: String, _ version: String, boot: (file: String, from: String)? = nil) throws -> String {
            var defs = ["--define", "_topdir \(dir)/rpmbuild", "--define", "_rpmdir \(dir)/rpms",
                        "--define", "_build_name_fmt %%{NAME}-%%{VERSION}.rpm",
                        "--define", "pname \(name)", "--define", "pver \(version)"]
            if let boot { defs += ["--define", "bootfile \(boot.file)", "--define", "payload \(Repo.path("Vectors/example/boot/" + boot.from))"] }
            let r = try run(rpmbuild, ["-bb", "--quiet"] + defs + [dir + "/test.spec"])
            #expect(r.status == 0, "\(r.stderr)")
            return "\(dir)/rpms/\(name)-\(version).rpm"
        }
        let unrelated = try rpm("unrelated", "1.0")
        let xen = try rpm("xen-hypervisor", "4.17.5", boot: ("xen-4.17.5.gz", "xen-4.17.4.gz"))
        let kernel = try rpm("kernel-core", "6.6.63")
        let initramfs = try rpm("dom0-initrd", "1.0", boot: ("initramfs-6.6.63-1.qubes.fc37.x86_64.img", "initramfs-6.6.48-1.qubes.fc37.x86_64.img"))

        func transaction(_ args: [String]) throws -> ProcessResult {
            let r = try run(dnf, ["-y", "--installroot=\(dir)/root", "--releasever=37", "--nogpgcheck",
                                  "--setopt=reposdir=\(dir)/no-repos", "--setopt=cachedir=\(dir)/cache",
                                  "--setopt=system_cachedir=\(dir)/cache", "--setopt=pluginconfpath=\(dir)/plugins",
                                  "--disableplugin=*", "--enableplugin=post-transaction-actions"] + args,
                            env: ["PYTHONPATH": dir + "/shim", "LC_ALL": "C.UTF-8"])
            #expect(r.status == 0, "\(r.stdout)\(r.stderr)")
            return r
        }
        func calls() -> String { (try? String(contentsOfFile: dir + "/calls", encoding: .utf8)) ?? "" }

        let none = try transaction(["install", unrelated])
        #expect(calls().isEmpty && !none.stdout.contains("post-transaction-actions"), "\(calls()) \(none)")

        let update = try transaction(["install", xen, kernel])
        #expect(calls() == "notice\n", "\(calls())")
        let report = update.stdout + update.stderr
        #expect(report.contains("post-transaction-actions: aem-pcr: after this update the boot 'AEM Qubes, with Xen hypervisor' changes"), "\(report)")
        #expect(report.contains("module 0 (xen-4.17.5.gz) changes: PCR18"), "\(report)")
        #expect(!report.contains("module 2") && !report.contains("Traceback"), "\(report)")

        let byFile = try transaction(["install", initramfs])
        #expect(calls() == "notice\nnotice\n", "\(calls())")
        #expect((byFile.stdout + byFile.stderr).contains("module 2 (initramfs-6.6.63-1.qubes.fc37.x86_64.img) changes: PCR19"), "\(byFile)")
    }

    /// packaging/build refuses, in one line naming the symbol or the bytes, what dom0 cannot run
    /// or what is over budget. The binaries are real ELF files made with gcc: one that needs a
    /// symbol version newer than the floor (from a library whose version script defines
    /// GLIBC_2.99, exactly how glibc versions its symbols), one that needs glibc's own
    /// arc4random (GLIBC_2.36, which objdump reads from libc.so.6) under a 2.35 floor, one with
    /// 17 MiB of data, one linked with RUNPATH $ORIGIN. No package is made for any of them.
    @Test func buildRefusesWhatTheTargetCannotRun() throws {
        guard let gcc = tool("gcc"), let strip = tool("strip"), let objdump = tool("objdump"),
              tool("rpmbuild") != nil, tool("dpkg-deb") != nil else { return }
        let dir = try tempDir()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        func cc(_ name: String, _ source: String, _ flags: [String] = []) throws -> String {
            try source.write(toFile: "\(dir)/\(name).c", atomically: false, encoding: .utf8)
            let r = try run(gcc, ["-o", "\(dir)/\(name)", "\(dir)/\(name).c"] + flags)
            #expect(r.status == 0, "\(r.stderr)")
            return "\(dir)/\(name)"
        }
        func build(_ binary: String, _ extra: [String] = []) throws -> ProcessResult {
            let out = dir + "/out-" + (binary as NSString).lastPathComponent
            let r = try run("/bin/bash", [Repo.path("packaging/build"), "--binary", binary, "--out", out] + extra)
            let made = (try? FileManager.default.contentsOfDirectory(atPath: out)) ?? []
            #expect(made.isEmpty, "packages made: \(made)")
            #expect(r.stderr.split(separator: "\n").count == 1, "\(r.stderr)")
            return r
        }

        // A symbol version the floor (2.36, packaging/build's default) does not have.
        try "GLIBC_2.99 { global: aem_fake_newer; local: *; };\n".write(toFile: dir + "/fake.map", atomically: false, encoding: .utf8)
        _ = try cc("libfake.so", "int aem_fake_newer(void) { return 0; }\n",
                   ["-shared", "-fPIC", "-Wl,--version-script=\(dir)/fake.map", "-Wl,-soname,libfake.so"])
        let newer = try cc("newer", "int aem_fake_newer(void);\nint main(void) { return aem_fake_newer(); }\n",
                           ["-L" + dir, "-lfake"])
        let r1 = try build(newer)
        #expect(r1.status == 1 && r1.stderr.contains("needs glibc 2.99, newer than the target's 2.36: aem_fake_newer@GLIBC_2.99"), "\(r1.stderr)")

        // glibc's own symbol versions: arc4random's, read from libc.so.6 by objdump.
        let libc = try #require(["/lib/x86_64-linux-gnu/libc.so.6", "/lib64/libc.so.6"].first { FileManager.default.fileExists(atPath: $0) })
        let arcLine = try #require(try run(objdump, ["-T", libc]).stdout.split(separator: "\n").first { $0.hasSuffix(" arc4random") })
        let arcVersion = try #require(arcLine.split(separator: " ").first { $0.hasPrefix("GLIBC_") }).dropFirst("GLIBC_".count)
        #expect(arcVersion == "2.36", "\(arcLine)")
        let arc = try cc("arc", "#include <stdlib.h>\n#include <stdio.h>\nint main(void) { printf(\"%u\\n\", arc4random()); return 0; }\n")
        let r2 = try build(arc, ["--glibc-floor", "2.35"])
        #expect(r2.status == 1 && r2.stderr.contains("needs glibc \(arcVersion), newer than the target's 2.35: arc4random@GLIBC_\(arcVersion)"), "\(r2.stderr)")

        // Over the 16 MiB budget once stripped: the bytes, as strip and stat count them.
        let big = try cc("big", "const unsigned char pad[17 << 20] = {1};\nint main(int argc, char **argv) { (void)argv; return pad[argc]; }\n")
        #expect(try run(strip, ["-o", dir + "/big.stripped", big]).status == 0)
        let size = try FileManager.default.attributesOfItem(atPath: dir + "/big.stripped")[.size] as! Int
        let r3 = try build(big)
        #expect(r3.status == 1 && r3.stderr.contains("is \(size) bytes stripped, \(size - 16_777_216) bytes over the budget of 16777216 bytes"), "\(r3.stderr)")

        // RUNPATH $ORIGIN, as SwiftPM links it without --disable-local-rpath.
        let rp = try cc("rp", "int main(void) { return 0; }\n", ["-Wl,-rpath,$ORIGIN"])
        let r4 = try build(rp)
        #expect(r4.status == 1 && r4.stderr.contains("carries RUNPATH $ORIGIN"), "\(r4.stderr)")

        // A release with the placeholder maintainer, or an address nobody reads: refused before
        // anything is built (this binary's RUNPATH, refused above, is not reached).
        for m in [nil, "Someone <someone@localhost>", "Someone <someone@build.example.com>", "someone@example.net"] {
            let r = try build(rp, ["--release"] + (m.map { ["--maintainer", $0] } ?? []))
            let shown = m ?? "aem-pcr maintainers <aem-pcr-maintainers@example.org>"
            #expect(r.status == 1 && r.stderr.contains("the maintainer '\(shown)' is a placeholder") && r.stderr.contains("--maintainer 'NAME <ADDRESS>'"), "\(r.stderr)")
        }
    }

    /// dnf 5's actions file, read as libdnf5's actions plugin reads it (libdnf5-actions(8);
    /// Actions::parse_action_files in libdnf5-plugins/actions/actions.cpp): five fields split at
    /// the first four colons, a known callback, a package filter only for goal_resolved,
    /// pre_transaction and post_transaction, a direction of "", "in" or "out" and only with a
    /// filter, known options, a command split at unescaped spaces then unescaped. Its filters are
    /// the dnf 4 file's, its command runs once per transaction (identical commands), and the
    /// command leaves standard output empty: the plugin parses it as tmp./conf./var. lines.
    @Test func dnf5ActionsGrammar() throws {
        let text = try readText("packaging/hooks/aem-pcr.actions")
        let dnf4 = try readText("packaging/hooks/aem-pcr.action").split(separator: "\n")
            .filter { !$0.isEmpty && !$0.hasPrefix("#") }
        let dnf4Filters = Set(dnf4.map { String($0.split(separator: ":", omittingEmptySubsequences: false)[0]) })
        let hooks: Set<String> = ["pre_base_setup", "post_base_setup", "repos_configured", "repos_loaded",
                                  "pre_add_cmdline_packages", "post_add_cmdline_packages", "goal_resolved",
                                  "pre_transaction", "post_transaction"]
        var filters = Set<String>(), commands = Set<[String]>()
        for line in text.split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
            where !line.isEmpty && !line.hasPrefix("#") {
            let f = line.split(separator: ":", maxSplits: 4, omittingEmptySubsequences: false).map(String.init)
            #expect(f.count == 5, "not HOOK:PKG_FILTER:DIRECTION:OPTIONS:CMD: \(line)")
            guard f.count == 5 else { continue }
            #expect(hooks.contains(f[0]), "unknown hook \(f[0])")
            #expect(f[0] == "post_transaction", "\(line)")
            #expect(f[1].isEmpty || ["goal_resolved", "pre_transaction", "post_transaction"].contains(f[0]))
            #expect(["", "in", "out"].contains(f[2]) && (f[2].isEmpty || !f[1].isEmpty), "direction '\(f[2])'")
            for opt in Self.dnf5Split(f[3]) {
                let ok = ["enabled=1", "enabled=host-only", "enabled=installroot-only", "mode=plain", "mode=json",
                          "raise_error=0", "raise_error=1"].contains(opt)
                #expect(ok, "unknown option \(opt)")
            }
            let args = Self.dnf5Split(f[4]).map(Self.dnf5Unescape)
            #expect(!args.isEmpty, "missing command: \(line)")
            filters.insert(f[1])
            commands.insert(args)
        }
        #expect(filters == dnf4Filters, "dnf 5 filters \(filters.sorted()) vs dnf 4 \(dnf4Filters.sorted())")
        #expect(commands == [["/bin/sh", "-c", "exec /usr/bin/aem-pcr notice 1>&2"]], "\(commands)")

        // The command as the plugin executes it (execvp, no shell of its own), with a stand-in
        // for /usr/bin/aem-pcr that prints its report on standard output as notice does.
        let dir = try tempDir()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let fake = dir + "/aem-pcr"
        try "#!/bin/sh\necho \"aem-pcr: after this update ... $*\"\n".write(toFile: fake, atomically: false, encoding: .utf8)
        chmod(fake, 0o755)
        let args = try #require(commands.first).map { $0.replacingOccurrences(of: "/usr/bin/aem-pcr", with: fake) }
        let r = try run(args[0], Array(args.dropFirst()))
        #expect(r.status == 0 && r.stdout.isEmpty && r.stderr == "aem-pcr: after this update ... notice\n", "\(r)")
    }

    /// libdnf5's split(): spaces separate, a backslash escapes the next character.
    static func dnf5Split(_ s: String) -> [String] {
        var out = [String](), cur = "", escape = false, inWord = false
        for c in s {
            if !escape && c == " " {
                if inWord { out.append(cur); cur = ""; inWord = false }
                continue
            }
            inWord = true
            cur.append(c)
            escape = !escape && c == "\\"
        }
        if inWord { out.append(cur) }
        return out
    }

    /// libdnf5's unescape(): \a \b \f \n \r \t \v, any other escaped character as itself.
    static func dnf5Unescape(_ s: String) -> String {
        var out = "", escape = false
        let map: [Character: Character] = ["a": "\u{07}", "b": "\u{08}", "f": "\u{0C}", "n": "\n", "r": "\r", "t": "\t", "v": "\u{0B}"]
        for c in s {
            if escape { out.append(map[c] ?? c); escape = false } else if c == "\\" { escape = true } else { out.append(c) }
        }
        return out
    }

    /// The kernel-install plugin, run by systemd's own kernel-install (layout "other" in a scratch
    /// $BOOT_ROOT, so nothing is written) and called directly as kernel-install calls plugins
    /// (COMMAND KERNEL_VERSION ENTRY_DIR KERNEL_IMAGE [INITRD...]), with a stand-in aem-pcr first
    /// on PATH: add and remove run `aem-pcr notice`; other commands do not; a failing notice or
    /// a missing aem-pcr never fails kernel-install. Its name sorts after Fedora's
    /// 99-grub-mkconfig.install (which rewrites grub.cfg) both as kernel-install 252 sorts
    /// (sort -V) and as later versions do (byte order).
    @Test func kernelInstallPlugin() throws {
        let plugin = Repo.path("packaging/hooks/99-zz-aem-pcr.install")
        #expect(FileManager.default.isExecutableFile(atPath: plugin))
        let dir = try tempDir()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try FileManager.default.createDirectory(atPath: dir + "/bin", withIntermediateDirectories: true)
        try FileManager.default.createDirectory(atPath: dir + "/boot", withIntermediateDirectories: true)
        func fake(exit status: Int) throws {
            try "#!/bin/sh\necho \"$*\" >> \(dir)/calls\necho 'aem-pcr: report'\nexit \(status)\n"
                .write(toFile: dir + "/bin/aem-pcr", atomically: false, encoding: .utf8)
            chmod(dir + "/bin/aem-pcr", 0o755)
        }
        func calls() -> String { (try? String(contentsOfFile: dir + "/calls", encoding: .utf8)) ?? "" }
        let path = dir + "/bin:/usr/bin:/bin"
        try fake(exit: 0)
        let kver = "6.6.63-1.qubes.fc37.x86_64"
        for f in ["vmlinuz-" + kver, "initramfs-" + kver + ".img"] { FileManager.default.createFile(atPath: "\(dir)/boot/\(f)", contents: Data("x".utf8)) }
        let entry = "\(dir)/boot/0123456789abcdef0123456789abcdef/\(kver)"

        if let kernelInstall = findTool("kernel-install") {
            try FileManager.default.createDirectory(atPath: dir + "/conf", withIntermediateDirectories: true)
            try "layout=other\n".write(toFile: dir + "/conf/install.conf", atomically: false, encoding: .utf8)
            let r = try run(kernelInstall, ["add", kver, "\(dir)/boot/vmlinuz-\(kver)", "\(dir)/boot/initramfs-\(kver).img"],
                            env: ["PATH": path, "KERNEL_INSTALL_CONF_ROOT": dir + "/conf", "BOOT_ROOT": dir + "/boot",
                                  "MACHINE_ID": "0123456789abcdef0123456789abcdef", "KERNEL_INSTALL_PLUGINS": plugin])
            #expect(r.status == 0 && r.stdout.contains("aem-pcr: report"), "\(r)")
            #expect(calls() == "notice\n", "\(calls())")
            try? FileManager.default.removeItem(atPath: dir + "/calls")
        }

        let add = try run(plugin, ["add", kver, entry, "\(dir)/boot/vmlinuz-\(kver)", "\(dir)/boot/initramfs-\(kver).img"], env: ["PATH": path])
        #expect(add.status == 0 && add.stdout == "aem-pcr: report\n", "\(add)")
        let remove = try run(plugin, ["remove", kver, entry], env: ["PATH": path])
        #expect(remove.status == 0, "\(remove)")
        #expect(calls() == "notice\nnotice\n", "\(calls())")
        let inspect = try run(plugin, ["inspect"], env: ["PATH": path])
        #expect(inspect.status == 0 && calls() == "notice\nnotice\n", "\(inspect) \(calls())")
        try fake(exit: 2)
        let failing = try run(plugin, ["add", kver, entry, "\(dir)/boot/vmlinuz-\(kver)"], env: ["PATH": path])
        #expect(failing.status == 0, "\(failing)")
        try FileManager.default.removeItem(atPath: dir + "/bin/aem-pcr")
        let missing = try run(plugin, ["add", kver, entry, "\(dir)/boot/vmlinuz-\(kver)"], env: ["PATH": dir + "/bin:/nonexistent"])
        #expect(missing.status == 0 && missing.stdout.isEmpty, "\(missing)")

        let names = ["50-dracut.install", "99-grub-mkconfig.install", "99-zz-aem-pcr.install", "92-crashkernel.install"]
        let sorted = try run("/usr/bin/env", ["LC_ALL=C", "sh", "-c", "printf '%s\\n' \"$@\" | sort -V", "sh"] + names).stdout
        #expect(sorted.split(separator: "\n").last == "99-zz-aem-pcr.install", "\(sorted)")
        #expect(names.sorted { $0.utf8.lexicographicallyPrecedes($1.utf8) }.last == "99-zz-aem-pcr.install")
    }

    /// Every source file names its licence in its first lines (SPDX), found by walking the
    /// directories rather than through packaging/spdx-headers' own list; that script, run with
    /// --check, agrees.
    @Test func spdxHeaders() throws {
        let fm = FileManager.default
        var files = ["Package.swift", ".ci/run", "packaging/aem-pcr.spec", "packaging/build", "packaging/size-report",
                     "packaging/spdx-headers"]
        for dir in ["Sources", "Tests", "bench", "packaging/hooks"] {
            for rel in try fm.subpathsOfDirectory(atPath: Repo.path(dir)) {
                var isDir: ObjCBool = false
                if fm.fileExists(atPath: Repo.path(dir + "/" + rel), isDirectory: &isDir), !isDir.boolValue { files.append(dir + "/" + rel) }
            }
        }
        files += try fm.contentsOfDirectory(atPath: Repo.path("Vectors")).filter { $0.hasSuffix(".py") }.map { "Vectors/" + $0 }
        #expect(files.count > 150)
        for f in files {
            let head = try readText(f).split(separator: "\n", maxSplits: 3, omittingEmptySubsequences: false).prefix(3)
            #expect(head.contains { $0.hasSuffix("SPDX-License-Identifier: Apache-2.0") }, "\(f) has no SPDX-License-Identifier line")
        }
        if findTool("git") != nil {
            let r = try run("/bin/bash", [Repo.path("packaging/spdx-headers"), "--check"], cwd: Repo.root)
            #expect(r.status == 0, "\(r.stderr)")
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
