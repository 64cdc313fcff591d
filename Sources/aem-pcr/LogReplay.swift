// SPDX-License-Identifier: Apache-2.0
import AEMPCR
import ArgumentParser

struct LogReplay: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "replay",
        abstract: "Compute the PCR values a DRTM event log produces.",
        discussion: """
            Extends each event's digests, in log order, into its PCR in every bank, starting from \
            zeros: the value a dynamic launch gives PCR17–22. EV_NO_ACTION records are not extended.

            A bank that only some of a PCR's events carry (tboot with extpol=sha256 extends only \
            the SHA-256 bank, while SINIT extends both) is replayed as the TPM saw it, without \
            those events, and is marked partial with the events it lacks. An event whose data is \
            present but whose digest is not the hash of that data is reported as a warning.

            The launch that wrote the log is said first (see 'log show'), with notes on the known \
            defects of TrenchBoot's logs: a bank only the secure-kernel-loader's records carry is \
            replayed for reference, never verified.

            With --json, the "pcrs" member has the shape of 'aem-pcr predict --json' and can be \
            given back as a file of PCR values.

            Example:
              aem-pcr log replay heap.dump
              aem-pcr log replay --json heap.dump > replayed.json
            """)

    @OptionGroup var input: LogInputOptions
    @OptionGroup var output: OutputOptions

    func run() throws {
        Terminal.verbose = output.verbose
        let (log, problems) = try input.read()
        let result = log.replay()
        let mismatches = log.dataDigestMismatches()
        if output.json {
            Terminal.output(Self.json(log, result, mismatches: mismatches, problems: problems))
            return
        }
        Terminal.output(Self.text(log, result, verbose: output.verbose))
        for p in problems { LogOutput.warn("\(p)") }
        for m in mismatches {
            let e = log.events[m.eventIndex]
            LogOutput.warn("event \(m.eventIndex) (PCR\(e.pcr), \(e.type)): its \(m.bank) digest "
                + "\(m.logged.hex) is not the hash of its data (\(m.expected.hex))")
        }
    }

    /// Why a bank lacks events: the banks those events do carry, and who extended them.
    static func partialReason(_ log: DRTMEventLog, _ entry: ReplayResult.Entry) -> String {
        let missing = entry.missingEventIndices.map { log.events[$0] }
        var carried = Set<HashAlgorithm>()
        for e in missing { carried.formUnion(e.digests.keys) }
        let banks = carried.sorted().map(\.description).joined(separator: ", ")
        let who = missing.allSatisfy { $0.type == .tbootMeasurement } ? "tboot extended" : "those events carry"
        return carried.isEmpty ? "those events carry no digest" : "\(who) only \(banks)"
    }

    static func json(_ log: DRTMEventLog, _ r: ReplayResult, mismatches: [DataDigestMismatch],
                     problems: [CodedError]) -> JSON {
        let pcrs = JSON.pcrs(r.values, banks: r.values.banks)
        let partial = r.partialEntries.map { e in
            JSON.object([
                ("pcr", .int(Int(e.pcr.rawValue))), ("bank", .string(e.bank.description)),
                ("missing_events", .array(e.missingEventIndices.map { .int($0) })),
            ])
        }
        let data = mismatches.map { m in
            JSON.object([
                ("event", .int(m.eventIndex)), ("bank", .string(m.bank.description)),
                ("expected", .string(m.expected.hex)), ("logged", .string(m.logged.hex)),
            ])
        }
        return .object([
            ("source", .string(log.source)),
            ("format", .string(log.format.rawValue)),
            ("launch", LogOutput.launchJSON(DRTMLaunch.recognise(log))),
            ("pcrs", pcrs),
            ("partial", .array(partial)),
            ("data_mismatches", .array(data)),
            ("not_extended", .array(r.notExtendedEventIndices.map { .int($0) })),
            ("uncomputable_banks", .array(r.uncomputableBanks.map { .string($0.description) })),
            ("problems", LogOutput.problemsJSON(problems)),
        ])
    }

    static func text(_ log: DRTMEventLog, _ r: ReplayResult, verbose: Bool) -> TerminalText {
        var out: TerminalText = ""
        func line(_ s: TerminalText = "") { out += s + "\n" }
        line(Terminal.bold("Replay") + " of \(log.source)")
        line(Terminal.wrap("\(log.format.rawValue), \(log.events.count) event\(log.events.count == 1 ? "" : "s"), "
            + "from zeros (PCR17–22 after a dynamic launch)", indent: 2))
        out += LogOutput.launchText(DRTMLaunch.recognise(log))
        line()
        if r.entries.isEmpty {
            line("No PCR extended: the log holds no event to replay.")
        } else {
            line(Terminal.bold("PCR  bank     value"))
            for e in r.entries {
                let label = Terminal.pad("\(e.pcr.rawValue)", 4) + " \(e.bank)\(e.isPartial ? "*" : "")"
                line(Terminal.digestLine(indent: 0, label: label, labelWidth: 13, hex: e.value.hex))
                if verbose {
                    let named = e.eventIndices.map { i in log.events[i].dataText.map { "\(i) \"\($0)\"" } ?? "\(i)" }
                    line(Terminal.wrap("from event\(named.count == 1 ? "" : "s") \(named.joined(separator: ", "))", indent: 14))
                }
            }
        }
        if !r.partialEntries.isEmpty {
            line()
            for e in r.partialEntries {
                line(Terminal.wrap("* partial: bank \(e.bank) of PCR\(e.pcr) lacks "
                    + "\(LogOutput.eventList(e.missingEventIndices)) (\(partialReason(log, e))); replayed without "
                    + "\(e.missingEventIndices.count == 1 ? "it" : "them"), as the TPM extended this bank.", hang: 4))
            }
        }
        if !r.notExtendedEventIndices.isEmpty {
            let what = r.notExtendedEventIndices.map { i -> String in
                let e = log.events[i]
                return e.type == .noAction ? "\(i) (EV_NO_ACTION)" : "\(i) (PCR \(e.pcr))"
            }
            line()
            line(Terminal.wrap("Not extended: event\(what.count == 1 ? "" : "s") \(what.joined(separator: ", ")).", hang: 4))
        }
        if !r.uncomputableBanks.isEmpty {
            line(Terminal.wrap("Not replayed: bank \(r.uncomputableBanks.map(\.description).joined(separator: ", ")) "
                + "(this tool cannot compute SM3).", hang: 4))
        }
        return out
    }
}
