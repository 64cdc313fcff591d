// SPDX-License-Identifier: Apache-2.0
/// Input text made safe for a one-line message or a terminal: control characters and bytes that
/// are not UTF-8 are written `\xHH` (`\n`, `\r`, `\t` for those three), the line separators and
/// bidirectional controls `\u{202e}`, everything else as is.
/// The JSON output carries exact bytes separately (`*_hex` fields).
public enum Escape {
    /// Escapes a string's control characters (C0, DEL, C1); cuts it after `limit` characters.
    public static func text(_ s: String, limit: Int? = nil) -> String {
        var out = ""
        var n = 0
        for u in s.unicodeScalars {
            if let l = limit, n >= l { out += "…"; break }
            append(u, to: &out)
            n += 1
        }
        return out
    }

    /// Bytes as text: valid UTF-8 kept (control characters escaped), every other byte `\xHH`.
    public static func bytes(_ b: [UInt8], limit: Int? = nil) -> String {
        var out = ""
        var n = 0
        var it = b.makeIterator()
        var parser = Unicode.UTF8.ForwardParser()
        var consumed = 0
        while true {
            if let l = limit, n >= l { out += "…"; break }
            switch parser.parseScalar(from: &it) {
            case .valid(let enc):
                append(Unicode.UTF8.decode(enc), to: &out)
                consumed += enc.count
            case .error(let length):
                for k in 0..<length { out += hex(b[consumed + k]) }
                consumed += length
            case .emptyInput:
                return out
            }
            n += 1
        }
        return out
    }

    /// Whether the bytes are valid UTF-8 (then `String(decoding:as:)` is exact).
    public static func isUTF8(_ b: [UInt8]) -> Bool {
        var it = b.makeIterator()
        var parser = Unicode.UTF8.ForwardParser()
        while true {
            switch parser.parseScalar(from: &it) {
            case .valid: continue
            case .error: return false
            case .emptyInput: return true
            }
        }
    }

    /// A list cut to its first `max` items, "… and N more" after them.
    public static func list(_ items: [String], max: Int = 10, separator: String = "; ") -> String {
        if items.count <= max { return items.joined(separator: separator) }
        return items.prefix(max).joined(separator: separator) + "\(separator)… and \(items.count - max) more"
    }

    private static func append(_ u: Unicode.Scalar, to out: inout String) {
        switch u {
        case "\n": out += "\\n"
        case "\r": out += "\\r"
        case "\t": out += "\\t"
        default:
            if u.value < 0x20 || (u.value >= 0x7F && u.value < 0xA0) || isFormatControl(u) {
                out += u.value < 0x100 ? hex(UInt8(u.value)) : "\\u{\(String(u.value, radix: 16))}"
            } else {
                out.unicodeScalars.append(u)
            }
        }
    }

    /// Line and paragraph separators and the bidirectional controls: not terminal escapes, but
    /// they break or reorder a line on screen (U+202E shows the rest of a line reversed), so a
    /// forged string could still pass for the tool's own words.
    private static func isFormatControl(_ u: Unicode.Scalar) -> Bool {
        switch u.value {
        case 0x200E, 0x200F, 0x2028...0x202E, 0x2066...0x2069: return true
        default: return false
        }
    }

    private static func hex(_ b: UInt8) -> String {
        let d = Array("0123456789abcdef")
        return "\\x" + String(d[Int(b >> 4)]) + String(d[Int(b & 15)])
    }
}

extension String {
    /// GRUB script text: one scalar U+0000–U+00FF per byte, so any byte survives lexing and
    /// expansion unchanged (GRUB itself works on bytes).
    init(grubBytes b: some Sequence<UInt8>) {
        var s = String.UnicodeScalarView()
        for x in b { s.append(Unicode.Scalar(x)) }
        self = String(s)
    }

    /// The bytes of a string made by `init(grubBytes:)`.
    var grubBytes: [UInt8] {
        // ASCII (nearly every grub.cfg word): the UTF-8 bytes are the GRUB bytes.
        utf8.allSatisfy { $0 < 0x80 } ? Array(utf8) : unicodeScalars.map { UInt8(truncatingIfNeeded: $0.value) }
    }

    /// A user's UTF-8 text in the form above (to match grub.cfg titles).
    var asGrubText: String { String(grubBytes: utf8) }

    /// A grub.cfg string for display: its bytes decoded as UTF-8 and escaped.
    var grubDisplay: String {
        // Printable ASCII (nearly every title and path) is shown as it is.
        utf8.allSatisfy { $0 >= 0x20 && $0 < 0x7F } ? self : Escape.bytes(grubBytes)
    }
}
