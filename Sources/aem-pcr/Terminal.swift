import AEMPCR
#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// Output helpers: colour only on a terminal and never with NO_COLOR; digests wrap onto their
/// own line when a row would pass 80 columns.
enum Terminal {
    nonisolated(unsafe) static var verbose = false

    static var colour: Bool {
        isatty(1) != 0 && getenv("NO_COLOR") == nil && String(cString: getenv("TERM") ?? strdup("dumb")!) != "dumb"
    }

    static func bold(_ s: String) -> String { colour ? "\u{1B}[1m" + s + "\u{1B}[0m" : s }

    /// Writes to standard error (file descriptor 2).
    static func writeError(_ s: String) {
        var bytes = Array(s.utf8)[...]
        while !bytes.isEmpty {
            let n = bytes.withUnsafeBytes { Glibc.write(2, $0.baseAddress, $0.count) }
            if n <= 0 { return }
            bytes = bytes.dropFirst(n)
        }
    }

    /// User input in a message: control characters escaped (`Escape.text`).
    static func escaped(_ s: String) -> String { Escape.text(s) }

    /// One line whatever the inputs held: control characters a message still carries (a file
    /// name, a title) are escaped here, and the line is cut at 2,000 characters.
    static func error(_ message: String, code: String) {
        writeError("aem-pcr: error: \(Escape.text(message, limit: 2000))\n")
        if verbose { writeError("aem-pcr: error code: \(code)\n") }
    }

    static func pad(_ s: String, _ width: Int) -> String {
        s.count >= width ? s : s + String(repeating: " ", count: width - s.count)
    }

    /// Wraps words to 80 columns; continuation lines indented by `hang` more than the first.
    static func wrap(_ text: String, indent: Int = 0, hang: Int = 2, width: Int = 80) -> String {
        var lines = [String]()
        var cur = String(repeating: " ", count: indent)
        var curHasWord = false
        for word in text.split(separator: " ", omittingEmptySubsequences: false) {
            if curHasWord && cur.count + 1 + word.count > width {
                lines.append(cur)
                cur = String(repeating: " ", count: indent + hang)
                curHasWord = false
            }
            cur += (curHasWord ? " " : "") + word
            curHasWord = true
        }
        lines.append(cur)
        return lines.joined(separator: "\n")
    }

    /// `label` then the hex digest, on one line if it fits in 80 columns, else on the next.
    static func digestLine(indent: Int, label: String, labelWidth: Int, hex: String) -> String {
        let head = String(repeating: " ", count: indent) + pad(label, labelWidth)
        if head.count + 1 + hex.count <= 80 { return head + " " + hex }
        var out = String(repeating: " ", count: indent) + label
        var rest = Substring(hex)
        let room = 80 - indent - 2
        while !rest.isEmpty {
            out += "\n" + String(repeating: " ", count: indent + 2) + rest.prefix(room)
            rest = rest.dropFirst(room)
        }
        return out
    }
}
