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

    /// Lines longer than 80 columns broken at spaces, continued two columns further in. A word
    /// is never cut: a path longer than a line stays whole on a line of its own, so that it can
    /// be copied and pasted (a shell command's trailing ` \` stays with its last word). A space
    /// inside a path is a space like any other: commands to paste are printed by `command`,
    /// after the folded text.
    static func fold(_ text: TerminalText) -> TerminalText {
        TerminalText(shown: text.shown.split(separator: "\n", omittingEmptySubsequences: false).map { line -> String in
            guard line.count > 80 else { return String(line) }
            let indent = line.prefix { $0 == " " }.count
            var words = line.dropFirst(indent).split(separator: " ", omittingEmptySubsequences: false).map(String.init)
            if words.count > 1 && words.last == "\\" { words[words.count - 2] += " \\"; words.removeLast() }
            var lines = [String]()
            var cur = String(line.prefix(indent)), curHasWord = false
            for word in words {
                if curHasWord && cur.count + 1 + word.count > 80 {
                    lines.append(cur)
                    cur = String(repeating: " ", count: indent + 2)
                    curHasWord = false
                }
                cur += (curHasWord ? " " : "") + word
                curHasWord = true
            }
            lines.append(cur)
            return lines.joined(separator: "\n")
        }.joined(separator: "\n"))
    }

    /// A shell command to paste: each word quoted for bash where it needs it (`shellWord`), on
    /// lines of at most 80 columns continued by ` \` (a word longer than a line stays whole),
    /// the first indented by `indent`, the others by two more. The words of a group (an option
    /// and its value) stay on one line where it has room for them.
    static func command(_ groups: [[String]], indent: Int = 2) -> TerminalText {
        let units = groups.flatMap { group -> [String] in
            let words = group.map(shellWord)
            let joined = words.joined(separator: " ")
            return indent + 2 + joined.count + 2 <= 80 ? [joined] : words
        }
        var lines = [String]()
        var cur = String(repeating: " ", count: indent), curHasWord = false
        for word in units {
            if curHasWord && cur.count + 1 + word.count + 2 > 80 {
                lines.append(cur + " \\")
                cur = String(repeating: " ", count: indent + 2)
                curHasWord = false
            }
            cur += (curHasWord ? " " : "") + word
            curHasWord = true
        }
        lines.append(cur)
        // shellWord leaves no control character: each line is shown as it is.
        return TerminalText(shown: lines.joined(separator: "\n"))
    }

    /// One word for bash, as it must be typed to reach the program unchanged: as it is when
    /// made only of characters no shell treats specially, else in single quotes (`'` as
    /// `'\''`), or as `$'…'` with `\xHH` escapes when it holds a control character.
    static func shellWord(_ s: String) -> String {
        func plain(_ u: Unicode.Scalar) -> Bool {
            switch u {
            case "a"..."z", "A"..."Z", "0"..."9", "_", "@", "%", "+", "=", ":", ",", ".", "/", "-": true
            default: false
            }
        }
        func control(_ u: Unicode.Scalar) -> Bool { u.value < 0x20 || (0x7F...0x9F).contains(u.value) }
        if !s.isEmpty && s.unicodeScalars.allSatisfy(plain) { return s }
        if s.unicodeScalars.contains(where: control) {
            var out = "$'"
            for u in s.unicodeScalars {
                if u == "\\" || u == "'" {
                    out += "\\" + String(u)
                } else if control(u) {
                    for b in String(u).utf8 { out += "\\x" + (b < 16 ? "0" : "") + String(b, radix: 16) }
                } else {
                    out.unicodeScalars.append(u)
                }
            }
            return out + "'"
        }
        var out = "'"
        for c in s { out += c == "'" ? "'\\''" : String(c) }
        return out + "'"
    }

    /// `path` made absolute against the working directory (a command printed for later may be
    /// run from another directory); unchanged when already absolute or when the directory
    /// cannot be read.
    static func absolute(_ path: String) -> String {
        guard !path.hasPrefix("/"), let cwd = getcwd(nil, 0) else { return path }
        defer { free(cwd) }
        var dir = String(cString: cwd)
        if dir != "/" { dir += "/" }
        var rest = Substring(path)
        while rest.hasPrefix("./") { rest = rest.dropFirst(2).drop { $0 == "/" } }
        return dir + (rest == "." ? "" : rest)
    }
}
