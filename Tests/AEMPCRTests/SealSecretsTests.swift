// SPDX-License-Identifier: Apache-2.0
import Foundation
import Testing

/// Issue 19, "secrets never in clear", inside the seal process: no core dump while secrets are
/// held, secret pages locked (mlock) and wiped, the terminal's echo restored when the SRK prompt
/// is interrupted, and no prompt on a /dev/tty that is not a terminal. The references are
/// outside the code: the kernel (/proc/PID/limits, WCOREDUMP, the pty's termios read by
/// python3's termios module through Tests/Scripts/pty-prompt.py) and strace.
@Suite(.serialized) struct SealSecretsTests {
    /// seal's arguments for SealTests' machine, without --srk-password-file (so it prompts).
    static func promptArgs(_ m: SealTests.Machine) -> [String] {
        ["seal", "--label", "aem", "--aem-dir", m.aemDir, "--tpm-dir", m.tpmDir,
         "--event-log", m.logA, "--tcti", m.tpm.tcti, "--grub-cfg", Repo.path("Vectors/example/grub.cfg"),
         "--entry", SealTests.entry, "--boot-dir", m.bootDir, "--policy", m.policy, "--extpol", "embedded"]
    }

    /// Runs seal under Tests/Scripts/pty-prompt.py and sends `signal` at the prompt.
    static func prompt(_ m: SealTests.Machine, signal: String) throws -> [String: Any] {
        let out = m.dir + "/pty-out-" + signal
        defer { try? FileManager.default.removeItem(atPath: out) }
        let r = try run("/usr/bin/env", ["python3", Repo.path("Tests/Scripts/pty-prompt.py"), signal, out, "--",
                                         Repo.binary] + promptArgs(m), cwd: m.dir, env: m.env)
        #expect(r.status == 0, "pty-prompt.py: \(r.stderr)")
        let report = (try? JSONSerialization.jsonObject(with: Data(r.stdout.utf8))) as? [String: Any] ?? [:]
        #expect(report["error"] == nil, "\(report["error"] ?? "")")
        return report
    }

    /// SIGINT, SIGTERM or SIGHUP at the SRK prompt (echo off, "srk " typed): the process ends by
    /// that signal and the terminal has echo again. Without EchoGuard the pty kept ECHO off.
    @Test func interruptedPromptRestoresEcho() throws {
        guard let m = try SealTests.Machine() else { return }
        for (name, number) in [("INT", SIGINT), ("TERM", SIGTERM), ("HUP", SIGHUP)] {
            let r = try Self.prompt(m, signal: name)
            #expect(r["echo_at_prompt"] as? Bool == false, "\(name): \(r)")
            #expect(r["signal"] as? Int == Int(number), "\(name): \(r)")
            #expect(r["echo_after"] as? Bool == true, "\(name): echo left off: \(r)")
        }
        #expect(!FileManager.default.fileExists(atPath: m.sealed + "/key.pub"))
    }

    /// SIGTSTP at the prompt: echo on while the process is stopped, off again once it is
    /// continued, the rest of the password is read and the seal completes (AEM unseals it).
    @Test func suspendedPromptRestoresEchoAndResumes() throws {
        guard let m = try SealTests.Machine() else { return }
        let r = try Self.prompt(m, signal: "TSTP")
        #expect(r["stopped"] as? Bool == true, "\(r)")
        #expect(r["echo_stopped"] as? Bool == true, "echo off while stopped: \(r)")
        #expect(r["echo_continued"] as? Bool == false, "echo on after SIGCONT: \(r)")
        #expect(r["exit"] as? Int == 0, "\(r)")
        #expect(r["echo_after"] as? Bool == true, "\(r)")
        #expect(FileManager.default.fileExists(atPath: m.sealed + "/key.pub"))
    }

    /// While seal holds a secret (at the SRK prompt) its core limit is 0 (/proc/PID/limits),
    /// although its parent raised RLIMIT_CORE to unlimited. (SIGQUIT is not used: the Swift
    /// runtime's backtracer catches it and the process did not end within 60 s.)
    @Test func noCoreDumpWhileSecretsAreHeld() throws {
        guard let m = try SealTests.Machine() else { return }
        let r = try Self.prompt(m, signal: "INT")
        #expect(r["core_limit"] as? String == "0", "\(r)")
        #expect(r["signal"] as? Int == Int(SIGINT), "\(r)")
    }

    /// Every secret buffer is mlock'ed, munlock'ed and unmapped (strace sees the calls); when
    /// mlock fails (strace injects EPERM) seal still seals, and says so only with --verbose.
    @Test func secretPagesAreLockedOrSaidSo() throws {
        guard let m = try SealTests.Machine(), let strace = tool("strace") else { return }
        let trace = m.dir + "/strace.out"
        defer { try? FileManager.default.removeItem(atPath: trace) }
        let base = [Repo.binary] + (try Self.passwordFileArgs(m))
        let ok = try run(strace, ["-f", "-qq", "-e", "trace=mlock,munlock", "-o", trace] + base, cwd: Repo.root, env: m.env)
        #expect(ok.status == 0, "\(ok.stderr)")
        let lines = try String(contentsOfFile: trace, encoding: .utf8).split(separator: "\n")
        let locks = lines.filter { $0.contains("mlock(") && $0.hasSuffix("= 0") }.count
        let unlocks = lines.filter { $0.contains("munlock(") && $0.hasSuffix("= 0") }.count
        // at least: the SRK password, three secrets, the key, its hex, PBKDF2's key and IV
        #expect(locks >= 8, "\(lines.prefix(20))")
        #expect(unlocks >= 8 && unlocks <= locks, "\(locks) mlock, \(unlocks) munlock")
        #expect(!ok.stderr.contains("could not be locked"))

        let inject = ["-f", "-qq", "-e", "trace=mlock", "-e", "inject=mlock:error=EPERM", "-o", "/dev/null"]
        let quiet = try run(strace, inject + base, cwd: Repo.root, env: m.env)
        #expect(quiet.status == 0, "\(quiet.stderr)")
        #expect(!quiet.stderr.contains("could not be locked"), "\(quiet.stderr)")
        let loud = try run(strace, inject + base + ["--verbose"], cwd: Repo.root, env: m.env)
        #expect(loud.status == 0, "\(loud.stderr)")
        #expect(loud.stderr.contains("aem-pcr: note: secrets could not be locked in memory (mlock: Operation not permitted)"), "\(loud.stderr)")
    }

    static func passwordFileArgs(_ m: SealTests.Machine) throws -> [String] {
        promptArgs(m) + ["--srk-password-file", m.srkFile]
    }

    /// A regular file bound over /dev/tty (a mount namespace of unshare(1)): refused in one
    /// line before the prompt is written into it; the file is unchanged.
    @Test func promptRefusesANonTerminalDevTTY() throws {
        guard let m = try SealTests.Machine(), let unshare = tool("unshare") else { return }
        let fake = m.dir + "/fake-tty"
        try write(Array("srk pass\n".utf8), to: fake)
        let script = "mount --bind \"$0\" /dev/tty && exec \"$@\""
        let r = try run(unshare, ExampleTests.unshareArgs + ["/bin/sh", "-c", script, fake, Repo.binary] + Self.promptArgs(m), cwd: Repo.root, env: m.env)
        #expect(r.status == 2, "\(r.stderr)")
        #expect(r.stderr == "aem-pcr: error: /dev/tty is not a terminal, so the SRK password is not asked there: give it with --srk-password-file FILE\n", "\(r.stderr)")
        #expect(try String(contentsOfFile: fake, encoding: .utf8) == "srk pass\n")
        #expect(!FileManager.default.fileExists(atPath: m.sealed + "/key.pub"))
    }
}
