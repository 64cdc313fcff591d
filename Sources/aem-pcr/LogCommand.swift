// SPDX-License-Identifier: Apache-2.0
import AEMPCR
import ArgumentParser

/// `aem-pcr log`: the current boot's DRTM event log — capture it, list it, replay it.
struct LogCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "log",
        abstract: "Read, replay and capture the DRTM event log of a measured launch (Intel TXT, TrenchBoot).",
        discussion: """
            SINIT and tboot log every measurement of a measured launch into a buffer in the TXT \
            heap. 'log dump' copies that heap from /dev/mem into a file (as root); 'log show' lists \
            the events of a log file and 'log replay' computes the PCR values they produce. Every \
            subcommand reads any of the formats: a raw TPM 1.2 container, TPM 2.0 per-algorithm or \
            TCG crypto-agile log, a TXT heap dump, or tboot's log as txt-stat prints it. The \
            format is detected from the content, not the file name.

            'log show' and 'log replay' also say which launch wrote the log (tboot on Intel TXT, \
            TrenchBoot on AMD SKINIT or on Intel TXT), from which events, and the PCRs it \
            extended; TrenchBoot's Secure Launch records (type 0x502) are named and their ASCII \
            descriptions shown as text. Known defects of TrenchBoot's logs are notes, not errors.

            Example:
              sudo aem-pcr log dump -o heap.dump
              aem-pcr log show heap.dump
              aem-pcr log replay --json heap.dump > replayed-pcrs.json
            """,
        subcommands: [LogShow.self, LogReplay.self, LogDump.self])
}

/// The log file and how strictly to read it (`log show`, `log replay`).
struct LogInputOptions: ParsableArguments {
    @Argument(help: ArgumentHelp("A DRTM event log, TXT heap dump or txt-stat text.", valueName: "file"))
    var file: String

    @Flag(help: "Read a log with duplicated SINIT records or PCRs outside 0–23, and warn about them, instead of refusing it.")
    var lenient = false

    /// The log, strictly or leniently, with the problems a lenient read let through.
    func read() throws -> (DRTMEventLog, [CodedError]) {
        if lenient {
            let log = try DRTMEventLog.parse(path: file, checks: [])
            return (log, log.problems(.all))
        }
        return (try DRTMEventLog.parse(path: file), [])
    }
}

/// Output shared by the log subcommands.
enum LogOutput {
    /// `aem-pcr: warning: …` on standard error.
    static func warn(_ message: String) {
        Terminal.warning(message)
    }

    static func formatDescription(_ f: DRTMEventLog.Format) -> String {
        switch f {
        case .tpm12Container: return "TPM 1.2 event container"
        case .tpm20Legacy: return "TPM 2.0 per-algorithm logs"
        case .tpm20TCG: return "TPM 2.0 TCG crypto-agile log"
        case .txtStatText: return "tboot's log as txt-stat prints it"
        }
    }

    /// `event 3`, `events 3, 4, 9`.
    static func eventList(_ indices: [Int]) -> String {
        (indices.count == 1 ? "event " : "events ") + indices.map(String.init).joined(separator: ", ")
    }

    /// The launch the log records, which events said so and the notes on known log defects:
    /// `launch TrenchBoot on AMD SKINIT (Xen through EFI), PCRs 17, 18`.
    static func launchText(_ launch: DRTMLaunch, extraNotes: [DRTMLaunch.Note] = []) -> TerminalText {
        var out: TerminalText = Terminal.wrap("launch \(launch.description), "
            + (launch.pcrs.isEmpty ? "no PCR extended" : "PCR\(launch.pcrs.count == 1 ? "" : "s") \(launch.pcrs.map { "\($0)" }.joined(separator: ", "))"), indent: 2) + "\n"
        for e in launch.evidence {
            out += Terminal.wrap("from event \(e.eventIndex): \(e.reason)", indent: 4, hang: 2) + "\n"
        }
        for n in launch.notes + extraNotes {
            out += Terminal.wrap("note: \(n.message)", indent: 2, hang: 6) + "\n"
        }
        return out
    }

    /// `launch` of `--json`: kind, description, target, pcrs, evidence, notes.
    static func launchJSON(_ launch: DRTMLaunch, extraNotes: [DRTMLaunch.Note] = []) -> JSON {
        .object([
            ("kind", .string(launch.kind.rawValue)),
            ("description", .string(launch.description)),
            ("target", launch.target.map { .string($0.rawValue) } ?? .null),
            ("pcrs", .array(launch.pcrs.map { .int(Int($0.rawValue)) })),
            ("evidence", .array(launch.evidence.map { .object([("event", .int($0.eventIndex)), ("reason", .string($0.reason))]) })),
            ("notes", .array((launch.notes + extraNotes).map {
                .object([("code", .string($0.code)), ("message", .string($0.message)),
                         ("events", .array($0.eventIndices.map { .int($0) }))])
            })),
        ])
    }

    /// The problems of a lenient read, for `--json`.
    static func problemsJSON(_ problems: [CodedError]) -> JSON {
        .array(problems.map { p in
            .object([("code", .string(p.errorCode)), ("offset", p.offset.map { .int($0) } ?? .null),
                     ("line", p.line.map { .int($0) } ?? .null), ("message", .string(p.reason))])
        })
    }
}
