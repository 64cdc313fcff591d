// SPDX-License-Identifier: Apache-2.0
import AEMPCR
import AEMPCRSystem
import Glibc

/// Text on its way to the terminal, safe by construction: its literal parts are the tool's own
/// words (newlines and the bold sequences included), and every value interpolated into it — a
/// path, a title, a string read from a file, a number — is escaped (`Escape.text`: control
/// characters, ESC and newline as `\x1b`, `\n` …) as it is interpolated. A `String` cannot be
/// turned into one except by interpolation, and `Terminal.output` takes nothing else: no call
/// site can forget the escaping. (A test checks that nothing in the CLI writes to standard
/// output or standard error except through `Terminal`.)
struct TerminalText: ExpressibleByStringInterpolation, Equatable, CustomStringConvertible {
    /// The text as it reaches the terminal.
    fileprivate(set) var shown: String

    fileprivate init(shown: String) { self.shown = shown }

    init(stringLiteral value: String) { shown = value }

    init(stringInterpolation: StringInterpolation) { shown = stringInterpolation.shown }

    /// Text made of lines whose only control characters are their line ends: a text the tool
    /// itself composed (the argument parser's help), its other control characters escaped.
    init(lines text: String) {
        shown = text.split(separator: "\n", omittingEmptySubsequences: false)
            .map { Escape.text(String($0)) }.joined(separator: "\n")
    }

    struct StringInterpolation: StringInterpolationProtocol {
        fileprivate var shown = ""
        init(literalCapacity: Int, interpolationCount: Int) { shown.reserveCapacity(literalCapacity) }
        /// The tool's own words, as written in the source.
        mutating func appendLiteral(_ literal: String) { shown += literal }
        /// Text already safe (a bold heading, a wrapped paragraph).
        mutating func appendInterpolation(_ text: TerminalText) { shown += text.shown }
        /// Any other value: its description, escaped.
        mutating func appendInterpolation<T>(_ value: T) { shown += Escape.text(String(describing: value)) }
        /// A value escaped and cut after `limit` characters.
        mutating func appendInterpolation(_ value: String, limit: Int) { shown += Escape.text(value, limit: limit) }
    }

    var description: String { shown }
    var isEmpty: Bool { shown.isEmpty }
    var count: Int { shown.count }

    static func + (a: TerminalText, b: TerminalText) -> TerminalText { TerminalText(shown: a.shown + b.shown) }
    static func += (a: inout TerminalText, b: TerminalText) { a.shown += b.shown }
}

extension Sequence where Element == TerminalText {
    func joined(separator: TerminalText = "") -> TerminalText {
        TerminalText(shown: map(\.shown).joined(separator: separator.shown))
    }
}

/// All the CLI's output: colour only on a terminal and never with NO_COLOR; digests wrap onto
/// their own line when a row would pass 80 columns. Standard output and standard error are
/// written here only, and only as `TerminalText` (or JSON, which escapes itself).
enum Terminal {
    static var verbose: Bool {
        get { verboseSetting.value }
        set { verboseSetting.withLock { $0.value = newValue } }
    }
    private static let verboseSetting = Threads.Locked(false)

    static var colour: Bool {
        isatty(1) != 0 && getenv("NO_COLOR") == nil && String(cString: getenv("TERM") ?? strdup("dumb")!) != "dumb"
    }

    static func bold(_ s: TerminalText) -> TerminalText {
        colour ? TerminalText(shown: "\u{1B}[1m" + s.shown + "\u{1B}[0m") : s
    }

    /// The text on standard output.
    static func output(_ text: TerminalText) { write(1, text.shown) }

    /// The text and a line end on standard output.
    static func outputLine(_ text: TerminalText) { write(1, text.shown + "\n") }

    /// JSON on standard output, one document and a line end (`JSON.quote` escapes every
    /// control character as `\u00XX`).
    static func output(_ json: JSON) { write(1, json.render() + "\n") }

    /// Binary output (a PCR file, a digest) on standard output, never on a terminal.
    static func outputBinary(_ bytes: [UInt8], refusing message: String) throws {
        if isatty(1) != 0 { throw CodedError(.usage, message) }
        try writeAll(1, bytes, what: "standard output")
    }

    /// Writes to standard error (file descriptor 2).
    static func writeError(_ text: TerminalText) { write(2, text.shown) }

    /// `aem-pcr: warning: …`, one line on standard error whatever the message holds.
    static func warning(_ message: String) {
        writeError("aem-pcr: warning: \(message, limit: 2000)\n")
    }

    /// `aem-pcr: note: …`, one line on standard error whatever the message holds.
    static func note(_ message: String) {
        writeError("aem-pcr: note: \(message, limit: 2000)\n")
    }

    /// One line whatever the inputs held: control characters a message carries (a file name, a
    /// title) are escaped, and the line is cut at 2,000 characters.
    static func error(_ message: String, code: String) {
        writeError("aem-pcr: error: \(message, limit: 2000)\n")
        if verbose { writeError("aem-pcr: error code: \(code)\n") }
    }

    /// Every byte of `s` to `fd`; a closed reader ends the output quietly.
    private static func write(_ fd: Int32, _ s: String) {
        var bytes = Array(s.utf8)[...]
        while !bytes.isEmpty {
            let n = bytes.withUnsafeBytes { Glibc.write(fd, $0.baseAddress, $0.count) }
            if n < 0 && errno == EINTR { continue }
            if n <= 0 { return }
            bytes = bytes.dropFirst(n)
        }
    }

    static func pad(_ s: TerminalText, _ width: Int) -> TerminalText {
        s.count >= width ? s : TerminalText(shown: s.shown + String(repeating: " ", count: width - s.count))
    }

    /// Wraps words to 80 columns; continuation lines indented by `hang` more than the first.
    static func wrap(_ text: TerminalText, indent: Int = 0, hang: Int = 2, width: Int = 80) -> TerminalText {
        var lines = [String]()
        var cur = String(repeating: " ", count: indent)
        var curHasWord = false
        for word in text.shown.split(separator: " ", omittingEmptySubsequences: false) {
            if curHasWord && cur.count + 1 + word.count > width {
                lines.append(cur)
                cur = String(repeating: " ", count: indent + hang)
                curHasWord = false
            }
            cur += (curHasWord ? " " : "") + word
            curHasWord = true
        }
        lines.append(cur)
        return TerminalText(shown: lines.joined(separator: "\n"))
    }

    /// `label` then the hex digest, on one line if it fits in 80 columns, else on the next.
    static func digestLine(indent: Int, label: TerminalText, labelWidth: Int, hex: String) -> TerminalText {
        let hex = Escape.text(hex)
        let head = String(repeating: " ", count: indent) + pad(label, labelWidth).shown
        if head.count + 1 + hex.count <= 80 { return TerminalText(shown: head + " " + hex) }
        var out = String(repeating: " ", count: indent) + label.shown
        var rest = Substring(hex)
        let room = 80 - indent - 2
        while !rest.isEmpty {
            out += "\n" + String(repeating: " ", count: indent + 2) + rest.prefix(room)
            rest = rest.dropFirst(room)
        }
        return TerminalText(shown: out)
    }

    /// Lines longer than 80 columns (a long path is one word that wrapping cannot break) cut
    /// into 80-column pieces, continued with two spaces.
    static func fold(_ text: TerminalText) -> TerminalText {
        TerminalText(shown: text.shown.split(separator: "\n", omittingEmptySubsequences: false).map { line -> String in
            var rest = Substring(line)
            var pieces = [String]()
            while rest.count > 80 {
                pieces.append(String(rest.prefix(80)))
                rest = "  " + rest.dropFirst(80)
            }
            pieces.append(String(rest))
            return pieces.joined(separator: "\n")
        }.joined(separator: "\n"))
    }
}
