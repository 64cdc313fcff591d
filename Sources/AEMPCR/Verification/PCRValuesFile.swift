// SPDX-License-Identifier: Apache-2.0
/// Reads PCR values from `tpm2_pcrread`'s YAML output, or from the JSON this tool prints
/// (`{"pcrs": {"sha1": {"17": "hex"}}}`, or the inner object alone), or a TPM 1.2's sysfs `pcrs` text. Values of an SM3 bank are
/// left out: nothing this tool predicts or verifies is in that bank.
public enum PCRValuesFile {
    public static func read(path: String) throws -> PCRValues {
        let bytes = try FileReader.readAll(path: path, limit: 1 << 20)
        return try parse(String(decoding: bytes, as: UTF8.self), source: path)
    }

    public static func parse(_ text: String, source: String) throws -> PCRValues {
        let trimmed = text.trimmingBlanks()
        if trimmed.hasPrefix("PCR-") { return try TPM12PCRText.parse(Array(text.utf8), source: source) }
        // The whole text, not the trimmed one, so errors name the file's own line numbers.
        let values = trimmed.hasPrefix("{") ? try parseJSON(text, source: source) : try parseYAML(text, source: source)
        if values.banks.isEmpty { throw CodedError(.pcrFileEmpty, source: source, "no PCR values found") }
        return values
    }

    /// `tpm2_pcrread` output: `  sha1:` then `    17: 0x…` lines.
    static func parseYAML(_ text: String, source: String) throws -> PCRValues {
        var values = PCRValues()
        var bank: HashAlgorithm? = nil
        // Each bank and each PCR once, whether or not the bank is kept: a repeated key is two
        // answers to one question, refused rather than merged or overwritten.
        var banksSeen = [HashAlgorithm: Int]()
        var pcrsSeen = Set<String>()
        // "\r\n" is one Character in Swift: split at it too, so CRLF files read as text.
        for (n, raw) in text.split(omittingEmptySubsequences: false, whereSeparator: { $0 == "\n" || $0 == "\r\n" }).enumerated() {
            let lineNo = n + 1
            let line = String(raw).trimmingBlanks()
            if line.isEmpty || line.hasPrefix("#") { continue }
            guard let colon = line.firstIndex(of: ":") else {
                throw CodedError(.pcrFileSyntax, source: source, line: lineNo, "expected 'bank:' or 'index: 0xHEX', found '\(printable(line))'")
            }
            let key = String(line[..<colon]).trimmingBlanks()
            let value = String(line[line.index(after: colon)...]).trimmingBlanks()
            if value.isEmpty {
                guard let b = HashAlgorithm(name: key) else {
                    throw CodedError(.pcrFileSyntax, source: source, line: lineNo, "unknown bank '\(printable(key))'")
                }
                if let first = banksSeen[b] {
                    throw CodedError(.pcrFileDuplicate, source: source, line: lineNo, "bank \(b) given twice (first on line \(first))")
                }
                banksSeen[b] = lineNo
                bank = b
                continue
            }
            guard let b = bank else {
                throw CodedError(.pcrFileSyntax, source: source, line: lineNo, "a PCR value before any 'bank:' line")
            }
            guard let index = UInt32(key), index <= 23 else {
                throw CodedError(.pcrFileSyntax, source: source, line: lineNo, "'\(printable(key))' is not a PCR index (0–23)")
            }
            guard pcrsSeen.insert("\(b):\(index)").inserted else {
                throw CodedError(.pcrFileDuplicate, source: source, line: lineNo, "PCR\(index) \(b) given twice")
            }
            try store(&values, bank: b, index: index, hex: value, source: source, line: lineNo)
        }
        return values
    }

    private static func store(_ values: inout PCRValues, bank: HashAlgorithm, index: UInt32, hex: String,
                              source: String, line: Int?) throws {
        // A bank this tool never computes (SM3, which tboot cannot extend) is left out.
        if !bank.isComputable { return }
        guard let d = Digest(bank, hex: hex) else {
            throw CodedError(.pcrFileBadDigest, source: source, line: line,
                               "PCR\(index) \(bank): '\(printable(hex))' is not a \(bank.digestSize.map { "\($0)-byte" } ?? "known") hex digest")
        }
        let pcr = PCRIndex(rawValue: index)
        if values[bank, pcr] != nil {
            throw CodedError(.pcrFileDuplicate, source: source, line: line, "PCR\(index) \(bank) given twice")
        }
        values[bank, pcr] = d
    }

    /// The JSON this tool prints: a small strict reader for objects of objects of strings.
    static func parseJSON(_ text: String, source: String) throws -> PCRValues {
        var p = MiniJSON(text: Array(text.utf8), source: source)
        let root = try p.parseDocument()
        guard case .object(var top) = root else {
            throw CodedError(.pcrFileSyntax, source: source, "expected a JSON object")
        }
        if let inner = top.first(where: { $0.0 == "pcrs" }), case .object(let o) = inner.1 { top = o }
        var values = PCRValues()
        for (bankName, v) in top {
            guard let bank = HashAlgorithm(name: bankName) else {
                throw CodedError(.pcrFileSyntax, source: source, "unknown bank '\(printable(bankName))'")
            }
            guard case .object(let pcrs) = v else {
                throw CodedError(.pcrFileSyntax, source: source, "bank \(bank): expected an object of PCR values")
            }
            for (k, hv) in pcrs {
                guard let idx = UInt32(k), idx <= 23, case .string(let hex) = hv else {
                    throw CodedError(.pcrFileSyntax, source: source, "bank \(bank): '\(printable(k))' must be a PCR index (0–23) with a hex string")
                }
                try store(&values, bank: bank, index: idx, hex: hex, source: source, line: nil)
            }
        }
        return values
    }
}

/// Just enough JSON for PCR files: objects, strings, numbers and literals, with line numbers and
/// byte offsets in errors. Strict where a reader could otherwise pick one of two meanings: a key
/// given twice in one object and anything but blanks after the document are refused.
struct MiniJSON {
    indirect enum Value {
        case object([(String, Value)])
        case array([Value])
        case string(String)
        /// A number or a literal (true, false, null), as written.
        case other(String)
    }
    let text: [UInt8]
    let source: String
    var i = 0
    var depth = 0
    /// Values read so far, and the cap: a PCR file holds at most 5 banks of 24 values and a
    /// saved prediction a few hundred, so a file with more is refused as it is read, before
    /// its values fill memory (a 4 MiB array of numbers is 2 million of them).
    var values = 0
    static let maxValues = 65_536

    init(text: [UInt8], source: String) {
        self.text = text
        self.source = source
    }

    func fail(_ why: String, at offset: Int? = nil) -> CodedError {
        let at = min(offset ?? i, text.count)
        var line = 1
        for b in text[..<at] where b == 0x0A { line += 1 }
        return CodedError(.pcrFileSyntax, source: source, line: line, "JSON at byte \(at): \(why)")
    }

    /// One whole document: a value, then only blanks to the end (no second document, no
    /// trailing data).
    mutating func parseDocument() throws -> Value {
        let v = try parseValue()
        skip()
        if i < text.count {
            throw fail(text[i] == UInt8(ascii: "{") || text[i] == UInt8(ascii: "[")
                       ? "a second JSON document after the first; give one" : "data after the end of the JSON document")
        }
        return v
    }

    mutating func skip() { while i < text.count, [0x20, 0x09, 0x0A, 0x0D].contains(text[i]) { i += 1 } }

    mutating func parseValue() throws -> Value {
        skip()
        guard i < text.count else { throw fail("unexpected end") }
        depth += 1
        defer { depth -= 1 }
        guard depth < 64 else { throw fail("nested too deep") }
        values += 1
        guard values <= MiniJSON.maxValues else {
            throw fail("more than \(MiniJSON.maxValues) values; no PCR file or saved prediction holds that many")
        }
        switch text[i] {
        case UInt8(ascii: "{"):
            i += 1
            var members = [(String, Value)]()
            var keys = Set<String>()
            skip()
            if i < text.count, text[i] == UInt8(ascii: "}") { i += 1; return .object(members) }
            while true {
                skip()
                let keyAt = i
                guard case .string(let k) = try parseValue() else { throw fail("object key must be a string", at: keyAt) }
                guard keys.insert(k).inserted else { throw fail("key \"\(printable(k))\" given twice in one object", at: keyAt) }
                skip()
                guard i < text.count, text[i] == UInt8(ascii: ":") else { throw fail("':' expected") }
                i += 1
                members.append((k, try parseValue()))
                skip()
                guard i < text.count else { throw fail("unexpected end") }
                if text[i] == UInt8(ascii: ",") { i += 1; continue }
                if text[i] == UInt8(ascii: "}") { i += 1; return .object(members) }
                throw fail("',' or '}' expected")
            }
        case UInt8(ascii: "["):
            i += 1
            var items = [Value]()
            skip()
            if i < text.count, text[i] == UInt8(ascii: "]") { i += 1; return .array(items) }
            while true {
                items.append(try parseValue())
                skip()
                guard i < text.count else { throw fail("unexpected end") }
                if text[i] == UInt8(ascii: ",") { i += 1; continue }
                if text[i] == UInt8(ascii: "]") { i += 1; return .array(items) }
                throw fail("',' or ']' expected")
            }
        case UInt8(ascii: "\""):
            i += 1
            var out = [UInt8]()
            while i < text.count, text[i] != UInt8(ascii: "\"") {
                if text[i] == UInt8(ascii: "\\") {
                    i += 1
                    guard i < text.count else { break }
                    switch text[i] {
                    case UInt8(ascii: "n"): out.append(0x0A)
                    case UInt8(ascii: "t"): out.append(0x09)
                    case UInt8(ascii: "r"): out.append(0x0D)
                    case UInt8(ascii: "u"):
                        guard i + 4 < text.count, let v = UInt32(String(decoding: text[(i + 1)...(i + 4)], as: UTF8.self), radix: 16),
                              let sc = Unicode.Scalar(v) else { throw fail("bad \\u escape") }
                        out.append(contentsOf: Array(String(Character(sc)).utf8))
                        i += 4
                    default: out.append(text[i])
                    }
                    i += 1
                    continue
                }
                out.append(text[i])
                i += 1
            }
            guard i < text.count else { throw fail("unterminated string") }
            i += 1
            return .string(String(decoding: out, as: UTF8.self))
        default:
            let start = i
            while i < text.count, !([0x2C, 0x7D, 0x5D, 0x20, 0x0A, 0x0D, 0x09] as [UInt8]).contains(text[i]) { i += 1 }
            guard i > start else { throw fail("unexpected character") }
            return .other(String(decoding: text[start..<i], as: UTF8.self))
        }
    }
}

/// Text from a file, safe to print on a terminal: control and non-ASCII bytes as `\xHH`, at most
/// 60 characters.
func printable(_ s: String) -> String {
    var out = ""
    for b in s.utf8.prefix(60) {
        if b >= 0x20 && b < 0x7F { out.unicodeScalars.append(Unicode.Scalar(b)) } else { out += "\\x" + Hex.encode([b]) }
    }
    return s.utf8.count > 60 ? out + "…" : out
}
