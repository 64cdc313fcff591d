// SPDX-License-Identifier: Apache-2.0
import AEMPCR
import AEMPCRTPM
import ArgumentParser
import CArguments
import Glibc

@main
struct AEMPCRCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "aem-pcr",
        abstract: "Predict the TPM PCRs of an Intel TXT launch (tboot + Xen, Qubes Anti Evil Maid).",
        discussion: """
            aem-pcr computes what SINIT and tboot will extend into PCR17, PCR18 and PCR19 when the \
            machine next boots the given tboot, Xen, kernel and initramfs, so the Anti Evil Maid \
            secret can be checked and resealed without a blind boot. See aem-pcr(8).
            """,
        version: "0.1.0",
        subcommands: [Predict.self, Diff.self, Verify.self, Read.self, Measure.self, MLEHash.self, LogCommand.self, Notice.self,
                      PolicyCommand.self, Seal.self, CheckBoot.self])

    static func main() {
        guard let args = ProgramArguments.read() else {
            // Without them every command would run as a bare `aem-pcr`: the help, exit 0.
            Terminal.error("the command line cannot be read: the Swift runtime takes it from /proc/self/cmdline, and /proc is not mounted (mount -t proc proc /proc)", code: CodedError.Code.noArguments.rawValue)
            Glibc.exit(ExitStatus.badInput)
        }
        // `notice` runs from package hooks: it never fails the transaction, even on bad usage.
        let failure = args.first == "notice" ? ExitStatus.ok : ExitStatus.badInput
        if args.first == "notice" {
            // Its reader (dnf's plugin, `| head`) may close first: a write then fails with EPIPE
            // and is dropped, instead of SIGPIPE killing it (exit 141). SIGXFSZ likewise: a
            // state file past RLIMIT_FSIZE is a failed save, said in one line.
            signal(SIGPIPE, SIG_IGN)
            signal(SIGXFSZ, SIG_IGN)
        }
        if let message = Usage.commandError(args) {
            Terminal.error(message, code: CodedError.Code.usage.rawValue)
            Glibc.exit(failure)
        }
        // Every wait on a TPM is bounded: one line, exit status 2 (0 for notice; see TPMWatchdog).
        TPMWatchdog.shared.enable(seconds: tpmTimeout(), status: failure) {
            "aem-pcr: error: \(Escape.text($0, limit: 2000))\n"
        }
        do {
            var command = try parseAsRoot(args)
            try command.run()
            noteInflater()
        } catch let error as AEMPCRError {
            noteInflater()
            Terminal.error("\(error)", code: error.errorCode)
            Glibc.exit(failure)
        } catch let code as ExitCode {
            Glibc.exit(code.rawValue)
        } catch {
            if exitCode(for: error) == .success {
                let message = fullMessage(for: error)
                if !message.isEmpty { Terminal.outputLine(TerminalText(lines: message)) }
                Glibc.exit(0)
            }
            // The argument parser's own usage errors, as the one line every usage error is. It
            // reports a missing option or a failed validate() before an unknown option, so a
            // mistyped option is looked for first (see Usage).
            Terminal.error(Usage.unknownOption(args) ?? Usage.oneLine(message(for: error), args), code: CodedError.Code.usage.rawValue)
            Glibc.exit(failure)
        }
    }
}

/// The bound on a TPM call: 10 s. Debug builds only: `AEM_PCR_TEST_TPM_TIMEOUT` (seconds,
/// 0.5 to 10) shortens it, so tests of a TPM that never answers end sooner. Release builds
/// ignore it.
func tpmTimeout() -> Double {
    #if DEBUG
    if let v = getenv("AEM_PCR_TEST_TPM_TIMEOUT"), let s = Double(String(cString: v)), s >= 0.5, s <= 10 { return s }
    #endif
    return TPMWatchdog.defaultSeconds
}

/// The arguments after the program name: the C library's argv, captured before main
/// (CArguments), which needs no /proc; else the Swift runtime's (/proc/self/cmdline); nil when
/// neither has them (no /proc, and a C library that does not hand argv to constructors).
enum ProgramArguments {
    static func read() -> [String]? {
        let argc = Int(aempcr_argc())
        if argc >= 0, let argv = aempcr_argv() {
            return (0..<argc).dropFirst().map { argv[$0].map { String(cString: $0) } ?? "" }
        }
        return CommandLine.arguments.isEmpty ? nil : Array(CommandLine.arguments.dropFirst())
    }
}

/// Usage errors the argument parser words otherwise (or not at all): unknown commands, `help`
/// of an unknown command, and a mistyped option, with the name meant when one is close.
///
/// Why not the parser's own "Did you mean" (swift-argument-parser 1.8.2): it looks for unknown
/// options only after decoding and `validate()` succeed (CommandParser.extractLastParsedValue),
/// and it suggests no subcommand. So a mistyped option is reported as what it left missing:
/// `predict --grubcfg F` says "name the boot: --grub-cfg FILE …" and `measure --x` says
/// "missing expected argument '<file>'", neither naming the typo; `aem-pcr bogus` says
/// "unexpected argument 'bogus'" with no command list, and `help bogus` prints the root help
/// and exits 0. Only a typo after an otherwise complete command line gets the parser's
/// "Did you mean '--bank'?". (Checked again on 2026-12-03: seven mistyped command lines run on
/// a build with the scan disabled; the parser's words are the ones quoted here.) The scan needs each
/// command's option names, which the parser makes public only as help text (`helpMessage`) or
/// the underscored `_dumpHelp()` JSON; help text it is.
enum Usage {
    static func name(_ c: ParsableCommand.Type) -> String { c.configuration.commandName ?? c._commandName }

    /// The subcommand the leading words name, those words, and the first word that names none.
    static func command(_ args: [String]) -> (type: ParsableCommand.Type, path: [String], unknown: String?) {
        var current: ParsableCommand.Type = AEMPCRCommand.self
        var path = [String]()
        for word in args {
            let subs = current.configuration.subcommands
            if word.hasPrefix("-") || subs.isEmpty { break }
            guard let sub = subs.first(where: { name($0) == word }) else { return (current, path, word) }
            current = sub
            path.append(word)
        }
        return (current, path, nil)
    }

    /// `aem-pcr bogus`, `aem-pcr log bogus`, `aem-pcr help bogus`.
    static func commandError(_ args: [String]) -> String? {
        var words = args
        let help = words.first == "help"
        if help { words.removeFirst() }
        let (type, path, unknown) = command(words)
        guard let word = unknown, !(path.isEmpty && word == "help" && !help) else { return nil }
        let names = type.configuration.subcommands.map(name) + (path.isEmpty && !help ? ["help"] : [])
        let whose = path.isEmpty ? "" : "'\((["aem-pcr"] + path).joined(separator: " "))' "
        var message = "\(help ? "help: " : "")unknown command '\(word)'"
        if let near = closest(word, in: names) { message += "; did you mean '\(near)'?" }
        return message + " (\(whose)commands: \(names.joined(separator: ", ")))"
    }

    /// The long and short options of a command, from its help, and whether each takes a value.
    static func options(of type: ParsableCommand.Type) -> [String: Bool] {
        var out = ["--help": false, "-h": false, "--version": false]
        let help = AEMPCRCommand.helpMessage(for: type, includeHidden: true, columns: 10_000)
        for line in help.split(separator: "\n") where line.hasPrefix("  -") {
            let spec = line.dropFirst(2).components(separatedBy: "  ").first ?? ""
            for part in spec.components(separatedBy: ", ") {
                let words = part.split(separator: " ")
                guard let n = words.first else { continue }
                out[String(n)] = words.count > 1
            }
        }
        return out
    }

    /// The first option the command does not know, as one message.
    static func unknownOption(_ args: [String]) -> String? {
        let (type, path, _) = command(args)
        let known = options(of: type)
        var k = path.count
        while k < args.count {
            let a = args[k]
            k += 1
            if a == "--" { break }
            guard a.hasPrefix("-"), a.count > 1 else { continue }
            let n = a.hasPrefix("--") ? String(a.prefix { $0 != "=" }) : a
            if let takesValue = known[n] {
                if takesValue && !a.contains("=") { k += 1 }
                continue
            }
            if !a.hasPrefix("--"), a.count > 2 || a.dropFirst().allSatisfy(\.isNumber) { continue }
            let command = (["aem-pcr"] + path).joined(separator: " ")
            var message = "unknown option '\(n)' for '\(command)'"
            if let near = closest(n, in: known.keys.filter { $0.hasPrefix("--") }) {
                message += "; did you mean '\(near)'?"
            } else {
                message += " (see '\(command) --help')"
            }
            return message
        }
        return nil
    }

    /// The argument parser's message on one line, starting lower case like ours.
    static func oneLine(_ message: String, _ args: [String]) -> String {
        var line = message.split(separator: "\n").first.map(String.init) ?? "usage error"
        if line.hasPrefix("Error: ") { line.removeFirst(7) }
        if let f = line.first, f.isUppercase, line.dropFirst().first?.isLowercase == true {
            line = f.lowercased() + line.dropFirst()
        }
        let command = (["aem-pcr"] + command(args).path).joined(separator: " ")
        return "\(line) (see '\(command) --help')"
    }

    /// The name within a small edit distance of `word`, if exactly one is nearest.
    static func closest(_ word: String, in names: [String]) -> String? {
        let scored = names.map { ($0, distance(word.lowercased(), $0)) }.sorted { $0.1 < $1.1 || ($0.1 == $1.1 && $0.0 < $1.0) }
        guard let best = scored.first, best.1 <= max(2, best.0.count / 3) else { return nil }
        if scored.count > 1 && scored[1].1 == best.1 { return nil }
        return best.0
    }

    /// Levenshtein distance.
    static func distance(_ a: String, _ b: String) -> Int {
        let a = Array(a), b = Array(b)
        var row = Array(0...b.count)
        for i in 1...max(a.count, 1) where !a.isEmpty {
            var prev = row[0]
            row[0] = i
            for j in stride(from: 1, through: b.count, by: 1) {
                let cur = row[j]
                row[j] = min(row[j] + 1, row[j - 1] + 1, prev + (a[i - 1] == b[j - 1] ? 0 : 1))
                prev = cur
            }
        }
        return a.isEmpty ? b.count : row[b.count]
    }
}

/// With --verbose, after a gunzip: which inflater ran (ISA-L or zlib, and why), on standard error.
private func noteInflater() {
    if Terminal.verbose && !GzipInflater.enginesUsed.isEmpty {
        Terminal.writeError(Terminal.wrap("aem-pcr: \(GzipInflater.engineNote)", hang: 4) + "\n")
    }
}

/// Exit statuses, as aem-pcr(8) documents them.
enum ExitStatus {
    static let ok: Int32 = 0
    /// A verification found a difference.
    static let mismatch: Int32 = 1
    /// Bad input or usage.
    static let badInput: Int32 = 2
    /// Done, but cleaning after it failed: seal's new set is in place (or check-boot's verdict
    /// stands) and something after the swap (a sync, the removal of the old set) failed.
    static let notCleaned: Int32 = 3
}

/// The command line's codes.
extension CodedError.Code {
    /// The command line cannot be read (no /proc, and a C library that does not pass argv).
    static let noArguments = Self("no-arguments")
    /// An output file or directory (`log dump -o`, `read -o`) could not be written.
    static let outputWriteFailed = Self("output-write-failed")
}
