// SPDX-License-Identifier: Apache-2.0
import AEMPCR
import Glibc

/// AEM's `/etc/anti-evil-maid.conf`: a shell file that `anti-evil-maid-seal` sources with bash
/// (`source /etc/anti-evil-maid.conf`, as root, under `set -euo pipefail`), whose
/// `SEAL="--pcr 13 --pcr 17 …"` names the PCRs AEM seals to: on TPM 2.0 `tpmsealprepare` takes
/// every number of `$SEAL` (`grep -Eo '\b[0-9]+\b'`), on TPM 1.2 `tpm_sealdata $SEAL` takes its
/// words as options.
///
/// The file is evaluated exactly as bash would, or refused: only blank lines, comments and
/// `SEAL=value` / `SEAL+=value` assignments (the last one wins, `+=` appends), with a value of
/// plain characters, 'single-quoted' and "double-quoted" text without `$`, backquote or
/// backslash. Anything else (a command, `if`, `export`, an expansion, `;`, another variable)
/// could make AEM seal to other PCRs than a reader that does not run bash would plan, so it is
/// refused with one line naming the file and line. `$SEAL` itself must be `--pcr N` words, which
/// both families read alike.
public enum AEMConfig {
    public static let defaultPath = "/etc/anti-evil-maid.conf"
    public static let defaultPCRs: [PCRIndex] = [13, 17, 18, 19]

    /// TPM 2.0 under tboot's default policy: every module is measured into PCR17, nothing into
    /// PCR19, which stays all 00, so AEM's default SEAL can never seal (its listbadpcrs refuses
    /// PCR19 too). The two ways out AEM supports, as one clause for a refusal naming `conf`.
    public static func pcr19WaysOut(conf: String) -> String {
        "AEM seals on such a TPM 2.0 one of two ways: drop PCR19 from the seal (SEAL=\"--pcr 13 --pcr 17 --pcr 18\" in \(conf)), or give tboot a custom policy (tb_polgen, written to the TPM's NV) that measures the modules into PCR19"
    }

    /// The PCRs `$SEAL` names once the file is sourced; AEM's default when the file does not exist.
    public static func sealPCRs(path: String) throws -> [PCRIndex] {
        guard access(path, F_OK) == 0 else { return defaultPCRs }
        let bytes = try FileReader.readAll(path: path, limit: 1 << 16)
        guard let (value, line) = try sealValue(bytes, source: path) else {
            throw CodedError(.sealLayout, "\(path) has no SEAL=\"--pcr N …\" line: which PCRs AEM seals to is unknown")
        }
        return try pcrs(ofSEAL: value, source: "\(path):\(line)")
    }

    /// `$SEAL` after bash has sourced `bytes`, and the line of its last assignment; nil when the
    /// file never assigns it. Throws for anything that is more than this can evaluate exactly.
    public static func sealValue(_ bytes: [UInt8], source: String) throws -> (String, Int)? {
        var seal: [UInt8]? = nil
        var lastLine = 0
        var lineNo = 0
        for raw in bytes.split(separator: 0x0A, omittingEmptySubsequences: false) {
            lineNo += 1
            let line = Array(raw)
            func refuse(_ why: String) -> CodedError {
                CodedError(.sealLayout, "\(source):\(lineNo): \(why); only blank lines, comments and SEAL=\"--pcr N …\" assignments are evaluated as AEM's bash would (refused rather than read otherwise)")
            }
            if line.contains(0) { throw refuse("a NUL byte") }
            var i = 0
            func blank(_ b: UInt8) -> Bool { b == 0x20 || b == 0x09 }
            while i < line.count, blank(line[i]) { i += 1 }
            if i == line.count || line[i] == UInt8(ascii: "#") { continue }
            // NAME
            let nameStart = i
            func nameByte(_ b: UInt8, first: Bool) -> Bool {
                (b >= 0x41 && b <= 0x5A) || (b >= 0x61 && b <= 0x7A) || b == 0x5F || (!first && b >= 0x30 && b <= 0x39)
            }
            while i < line.count, nameByte(line[i], first: i == nameStart) { i += 1 }
            let name = String(decoding: line[nameStart..<i], as: UTF8.self)
            var append = false
            if i + 1 < line.count, line[i] == UInt8(ascii: "+"), line[i + 1] == UInt8(ascii: "=") {
                append = true
                i += 2
            } else if i < line.count, line[i] == UInt8(ascii: "=") {
                i += 1
            } else {
                // Only the leading name is quoted, never the rest of the line: --aem-conf may
                // name a file that is not AEM's (run as root, /etc/shadow's hash would be shown).
                throw refuse(name.isEmpty ? "a command, not an assignment (bash would run it)"
                    : "a command starting '\(Escape.text(name, limit: 40))', not an assignment (bash would run it)")
            }
            guard !name.isEmpty else { throw refuse("an assignment without a name") }
            guard name == "SEAL" else { throw refuse("an assignment to \(Escape.text(name, limit: 40)), not SEAL") }
            // The value: one word of plain characters and quoted text.
            var value = [UInt8]()
            word: while i < line.count {
                let b = line[i]
                switch b {
                case 0x20, 0x09:
                    break word
                case UInt8(ascii: "'"):
                    guard let close = line[(i + 1)...].firstIndex(of: UInt8(ascii: "'")) else {
                        throw refuse("a single quote not closed on its line")
                    }
                    value += line[(i + 1)..<close]
                    i = close + 1
                case UInt8(ascii: "\""):
                    var j = i + 1
                    while j < line.count, line[j] != UInt8(ascii: "\"") {
                        switch line[j] {
                        case UInt8(ascii: "$"): throw refuse("'$' (an expansion) in a double-quoted value")
                        case UInt8(ascii: "`"): throw refuse("a backquote (a command substitution) in a double-quoted value")
                        case UInt8(ascii: "\\"): throw refuse("a backslash in a double-quoted value")
                        default: j += 1
                        }
                    }
                    guard j < line.count else { throw refuse("a double quote not closed on its line") }
                    value += line[(i + 1)..<j]
                    i = j + 1
                default:
                    // Characters bash keeps as they are in an assignment's value.
                    let plain = (b >= 0x30 && b <= 0x39) || (b >= 0x41 && b <= 0x5A) || (b >= 0x61 && b <= 0x7A)
                        || "-_.,:/=+@%#".utf8.contains(b)
                    guard plain else {
                        let shown = b == 0x0D ? "a carriage return (a DOS line end)"
                            : b >= 0x20 && b < 0x7F ? "'\(Character(Unicode.Scalar(b)))'" : "byte 0x\(Hex.encode([b]))"
                        throw refuse("\(shown) unquoted in SEAL's value")
                    }
                    value.append(b)
                    i += 1
                }
            }
            while i < line.count, blank(line[i]) { i += 1 }
            if i < line.count, line[i] != UInt8(ascii: "#") {
                throw refuse("more after SEAL's value (bash would run it as a command, with SEAL set for it only)")
            }
            if append {
                guard let old = seal else {
                    throw refuse("SEAL+= before any SEAL= (the result would depend on AEM's environment)")
                }
                seal = old + value
            } else {
                seal = value
            }
            lastLine = lineNo
        }
        return seal.map { (String(decoding: $0, as: UTF8.self), lastLine) }
    }

    /// The PCRs of a `$SEAL` value made of `--pcr N` (or `--pcr=N`, `-p N`) words: what
    /// `tpm_sealdata $SEAL` and `grep -Eo '\b[0-9]+\b'` both take from it. Anything else is
    /// refused, naming `source`.
    public static func pcrs(ofSEAL value: String, source: String) throws -> [PCRIndex] {
        func refuse(_ why: String) -> CodedError {
            CodedError(.sealLayout, "\(source): SEAL=\"\(Escape.text(value, limit: 80))\": \(why); write SEAL=\"--pcr 13 --pcr 17 …\"")
        }
        guard value.utf8.allSatisfy({ $0 >= 0x20 && $0 < 0x7F }) else { throw refuse("a byte that is not printable ASCII") }
        let words = value.split(whereSeparator: { $0 == " " || $0 == "\t" }).map(String.init)
        var pcrs = [PCRIndex]()
        var k = 0
        func number(_ w: String) throws -> PCRIndex {
            guard !w.isEmpty, w.utf8.allSatisfy({ $0 >= 0x30 && $0 <= 0x39 }), w == "0" || !w.hasPrefix("0"),
                  let v = UInt32(w), v <= 23 else {
                throw refuse("'\(Escape.text(w, limit: 20))' is not a PCR number (0-23, no leading zero)")
            }
            return PCRIndex(rawValue: v)
        }
        while k < words.count {
            let w = words[k]
            if w == "--pcr" || w == "-p" {
                guard k + 1 < words.count else { throw refuse("'\(w)' without a number") }
                pcrs.append(try number(words[k + 1]))
                k += 2
            } else if w.hasPrefix("--pcr=") {
                pcrs.append(try number(String(w.dropFirst(6))))
                k += 1
            } else {
                throw refuse("'\(Escape.text(w, limit: 20))' is not --pcr N")
            }
        }
        guard !pcrs.isEmpty else { throw refuse("no PCR") }
        var seen = Set<UInt32>()
        return pcrs.filter { seen.insert($0.rawValue).inserted }.sorted()
    }
}
