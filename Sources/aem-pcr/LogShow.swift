// SPDX-License-Identifier: Apache-2.0
import AEMPCR
import ArgumentParser

struct LogShow: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "show",
        abstract: "List the events of a DRTM event log.",
        discussion: """
            Prints the format found and the banks the log declares, then each event: its index \
            (the number other commands use), PCR, type with its name, the digest of each bank, \
            and the data with its size, in hex (data longer than 64 bytes is cut to its first 32 \
            bytes unless --verbose). The ASCII description a TrenchBoot Secure Launch record \
            (type 0x502 SLAUNCH) carries is shown as text in quotes. Before the events: which \
            launch wrote the log, from which events, the PCRs it extended, and notes on known \
            defects of TrenchBoot's logs (digests of banks the header does not declare, banks \
            missing from Xen's records, placeholder digests, Linux's EV_NO_ACTION tags).

            The events are what the log claims: only a replay that matches the TPM's PCRs makes \
            them trustworthy. A log with a SINIT record repeated back to back or a record for a \
            PCR outside 0–23 is refused; --lenient lists it anyway and warns about each such record.

            Example:
              aem-pcr log show heap.dump
              aem-pcr log show --json heap.dump
            """)

    @OptionGroup var input: LogInputOptions
    @OptionGroup var output: OutputOptions

    func run() throws {
        Terminal.verbose = output.verbose
        let (log, problems) = try input.read()
        if output.json {
            Terminal.output(Self.json(log, problems: problems))
        } else {
            Terminal.output(Self.text(log, verbose: output.verbose))
            for p in problems { LogOutput.warn("\(p)") }
        }
    }

    /// Data up to this size is shown whole; longer data is cut to `shownPrefix` bytes.
    static let shownWhole = 64
    static let shownPrefix = 32

    static func json(_ log: DRTMEventLog, problems: [CodedError]) -> JSON {
        let events = log.events.enumerated().map { (i, e) -> JSON in
            .object([
                ("index", .int(i)),
                ("pcr", .int(Int(e.pcr.rawValue))),
                ("type", .string(e.type.hex)),
                ("type_name", e.type.name.map { .string($0) } ?? .null),
                ("digests", JSON.digests(e.digests.values)),
                ("data", .string(Hex.encode(e.data))),
                ("data_text", e.dataText.map { .string($0) } ?? .null),
                ("offset", e.line == nil ? .int(e.offset) : .null),
                ("line", e.line.map { .int($0) } ?? .null),
            ])
        }
        return .object([
            ("source", .string(log.source)),
            ("format", .string(log.format.rawValue)),
            ("banks", .array(log.banks.map { .string($0.description) })),
            ("launch", LogOutput.launchJSON(DRTMLaunch.recognise(log))),
            ("events", .array(events)),
            ("problems", LogOutput.problemsJSON(problems)),
        ])
    }

    static func text(_ log: DRTMEventLog, verbose: Bool) -> TerminalText {
        var out: TerminalText = ""
        func line(_ s: TerminalText = "") { out += s + "\n" }
        line(Terminal.bold("DRTM event log") + " \(log.source)")
        line(Terminal.wrap("format \(log.format.rawValue) (\(LogOutput.formatDescription(log.format))), "
            + "banks \(log.banks.isEmpty ? "none" : log.banks.map(\.description).joined(separator: ", ")), "
            + "\(log.events.count) event\(log.events.count == 1 ? "" : "s")", indent: 2))
        out += LogOutput.launchText(DRTMLaunch.recognise(log))
        if log.events.isEmpty {
            line("  no events: SINIT logged nothing")
        }
        let indexWidth = String(max(log.events.count - 1, 0)).count
        for (i, e) in log.events.enumerated() {
            line()
            let at = e.line.map { "line \($0)" } ?? "byte \(e.offset)"
            line(Terminal.bold(Terminal.pad("\(i)", indexWidth)) + "  PCR\(e.pcr)  \(e.type)  (\(at))")
            let indent = indexWidth + 2
            for d in e.sortedDigests {
                line(Terminal.digestLine(indent: indent, label: "\(d.algorithm)", labelWidth: 7, hex: d.hex))
            }
            if let text = e.dataText {
                line(Terminal.wrap("\(Terminal.pad("data", 7)) \(e.data.count) byte\(e.data.count == 1 ? "" : "s"): \"\(text)\"", indent: indent, hang: 2))
            } else {
                line(dataLines(e.data, indent: indent, verbose: verbose))
            }
        }
        return out
    }

    /// `data    4 bytes: 01000000`, or the size then the hex in rows of 32 bytes.
    static func dataLines(_ data: [UInt8], indent: Int, verbose: Bool) -> TerminalText {
        let head: TerminalText = "\(String(repeating: " ", count: indent))\(Terminal.pad("data", 7)) "
            + "\(data.count) byte\(data.count == 1 ? "" : "s")"
        if data.isEmpty { return head }
        let cut = !verbose && data.count > shownWhole
        let shown = cut ? Array(data.prefix(shownPrefix)) : data
        let mark = cut ? "…" : ""
        let hex = Hex.encode(shown)
        if head.count + 2 + hex.count + mark.count <= 80 { return "\(head): \(hex)\(mark)" }
        var rows: [TerminalText] = [head + ":"]
        var rest = shown[...]
        while !rest.isEmpty {
            let row = Hex.encode(rest.prefix(shownPrefix))
            rest = rest.dropFirst(shownPrefix)
            rows.append("\(String(repeating: " ", count: indent + 2))\(row)\(rest.isEmpty ? mark : "")")
        }
        return rows.joined(separator: "\n")
    }
}
