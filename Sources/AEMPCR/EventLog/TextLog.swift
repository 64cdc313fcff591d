// SPDX-License-Identifier: Apache-2.0
/// Reads the DRTM log as tboot prints it (`txt-stat`, or tboot's own serial/memory log): the
/// fallback when only that text is at hand (tboot `txt/heap.c: print_event`,
/// `print_event_2`, `print_event_2_1`, `print_evt_log_ptr_elt_2*`).
///
/// Two shapes, with or without a `TBOOT:` prefix on each line:
///
///     Log Descrption:            (TPM 2.0 legacy: one section per algorithm)
///                 Alg: 4
///     Event:                     (TPM 1.2 and legacy records)
///         PCRIndex: 17
///             Type: 0x402
///           Digest: e0 64 42 …
///             Data: 36 bytes
///             01 e0 e4 69 …
///
///     TCG Event Log Header:      (TCG crypto-agile)
///         algorithm_id: 0xb
///          digest_size: 32
///     TCG Event:
///          pcr_index: 17
///         event_type: 0x402
///              count: 2
///     SHA1:
///     76 36 db …
///     SHA256:
///     …
///         event_data: 36 bytes
///         72 58 93 …
///
/// Lines outside records are ignored (the print holds much else). Inside a record the parser is
/// strict: every field in its place, every byte count exact, every hex byte two digits; anything
/// else is an error naming the line.
enum TextLog {
    struct Line {
        let number: Int
        let offset: Int
        /// Without leading/trailing blanks and without a `TBOOT:` prefix.
        let text: Substring
    }

    static func lines(_ text: String) -> [Line] {
        var out = [Line]()
        var offset = 0
        var number = 1
        // Split at "\n" scalars: "\r\n" is one Character, so CRLF text splits too (the "\r" is
        // dropped below with the trailing blanks).
        for scalars in text.unicodeScalars.split(separator: "\n", omittingEmptySubsequences: false) {
            let raw = Substring(scalars)
            var t = raw.drop { $0 == " " || $0 == "\t" }
            if t.hasPrefix("TBOOT:") { t = t.dropFirst(6).drop { $0 == " " || $0 == "\t" } }
            while let l = t.last, l == " " || l == "\t" || l == "\r" { t = t.dropLast() }
            out.append(Line(number: number, offset: offset, text: t))
            offset += raw.utf8.count + 1
            number += 1
        }
        return out
    }

    /// Whether the bytes are text holding a printed DRTM log.
    static func looksLikeText(_ bytes: ArraySlice<UInt8>) -> Bool {
        guard !bytes.prefix(65_536).contains(0) else { return false }
        // Searched in the bytes: no text copy of a file that may be large and no log at all.
        func contains(_ needle: String) -> Bool {
            let n = Array(needle.utf8)
            guard let first = n.first, bytes.count >= n.count else { return false }
            var i = bytes.startIndex
            let last = bytes.endIndex - n.count
            while i <= last {
                if bytes[i] == first && bytes[i..<(i + n.count)].elementsEqual(n) { return true }
                i += 1
            }
            return false
        }
        return contains("PCRIndex:") || contains("pcr_index:")
    }

    /// A cursor over the lines, with the errors this format raises.
    struct Cursor {
        let lines: [Line]
        let source: String
        var index = 0
        /// The last line with content: a bad byte at its very end means the text was cut there.
        let lastContentLine: Int

        var atEnd: Bool { index >= lines.count }

        func malformed(_ line: Line, _ reason: String) -> CodedError {
            CodedError(.logTextMalformed, source: source, offset: line.offset, line: line.number, reason)
        }

        func truncated(_ what: String) -> CodedError {
            let last = lines.last
            return CodedError(.logTruncated, source: source, offset: last.map { $0.offset + $0.text.utf8.count },
                                 line: last?.number, "the text ends inside \(what)")
        }

        /// The next line, which must start with `label` (e.g. `PCRIndex:`); returns the rest.
        mutating func field(_ label: String, in what: String) throws -> (Line, Substring) {
            guard index < lines.count else { throw truncated(what) }
            let line = lines[index]
            guard line.text.hasPrefix(label) else {
                throw malformed(line, "expected \"\(label)\" in \(what), found \"\(Escape.text(String(line.text), limit: 60))\"")
            }
            index += 1
            return (line, line.text.dropFirst(label.count).drop { $0 == " " || $0 == "\t" })
        }

        /// `count` hex bytes: those of `rest` (the end of a field line), then whole lines of hex bytes.
        mutating func hexBytes(_ count: Int, first rest: Substring, of line: Line, _ what: String) throws -> [UInt8] {
            var out = [UInt8]()
            try appendHex(rest, line: line, to: &out, limit: count, what)
            while out.count < count {
                guard index < lines.count else { throw truncated("\(what) (\(out.count) of \(count) bytes)") }
                let next = lines[index]
                if next.text.contains(":") || next.text.isEmpty {
                    throw malformed(next, "\(what) has \(out.count) bytes where \(count) are needed")
                }
                index += 1
                try appendHex(next.text, line: next, to: &out, limit: count, what)
            }
            return out
        }

        private func appendHex(_ s: Substring, line: Line, to out: inout [UInt8], limit: Int, _ what: String) throws {
            let tokens = s.split(whereSeparator: { $0 == " " || $0 == "\t" })
            for (k, tok) in tokens.enumerated() {
                guard tok.utf8.count == 2, let b = UInt8(tok, radix: 16) else {
                    let isLastOfText = line.number == lastContentLine && k == tokens.count - 1
                    if isLastOfText {
                        throw CodedError(.logTruncated, source: source, offset: line.offset, line: line.number,
                            "the text ends in the middle of \(what) (\"\(Escape.text(String(tok), limit: 20))\" is a cut-off byte)")
                    }
                    throw malformed(line, "\"\(Escape.text(String(tok), limit: 20))\" in \(what) is not a byte in hex")
                }
                guard out.count < limit else {
                    throw malformed(line, "\(what) has more than the \(limit) bytes expected")
                }
                out.append(b)
            }
        }
    }

    static func decimal(_ s: Substring, _ line: Line, _ c: Cursor, _ what: String) throws -> UInt32 {
        guard s.allSatisfy({ $0.isASCII && $0.isNumber }), let v = UInt32(s) else {
            throw c.malformed(line, "\(what) \"\(Escape.text(String(s), limit: 30))\" is not a decimal number")
        }
        return v
    }

    static func hexNumber(_ s: Substring, _ line: Line, _ c: Cursor, _ what: String) throws -> UInt32 {
        let digits = s.hasPrefix("0x") || s.hasPrefix("0X") ? s.dropFirst(2) : s
        guard !digits.isEmpty, digits.allSatisfy(\.isHexDigit), let v = UInt32(digits, radix: 16) else {
            throw c.malformed(line, "\(what) \"\(Escape.text(String(s), limit: 30))\" is not a hex number")
        }
        return v
    }

    /// `Data: N bytes` / `event_data: N bytes`, then the bytes.
    static func eventData(_ c: inout Cursor, label: String, recordLine: Line) throws -> [UInt8] {
        let (line, rest) = try c.field(label, in: "the record at line \(recordLine.number)")
        let parts = rest.split(separator: " ", maxSplits: 2, omittingEmptySubsequences: true)
        guard parts.count >= 2, parts[1] == "bytes", let n = Int(parts[0]), n >= 0, parts[0].allSatisfy(\.isNumber) else {
            throw c.malformed(line, "expected \"\(label) N bytes\"")
        }
        guard n <= 1 << 20 else { throw c.malformed(line, "\(n) bytes of event data is more than any DRTM event holds") }
        return try c.hexBytes(n, first: parts.count > 2 ? parts[2] : "", of: line, "the event data")
    }

    /// A TPM 1.2 / legacy record; the cursor is on the line after `Event:`.
    static func legacyRecord(_ c: inout Cursor, at start: Line, algorithm: HashAlgorithm) throws -> RawRecord {
        let what = "the record at line \(start.number)"
        let size = try algorithm.requireSize(source: c.source, offset: start.offset, line: start.number)
        let (pl, pv) = try c.field("PCRIndex:", in: what)
        let pcr = try decimal(pv, pl, c, "PCRIndex")
        let (tl, tv) = try c.field("Type:", in: what)
        let type = try hexNumber(tv, tl, c, "Type")
        let (dl, dv) = try c.field("Digest:", in: what)
        let digest = try c.hexBytes(size, first: dv, of: dl, "the \(algorithm) digest")
        let data = try eventData(&c, label: "Data:", recordLine: start)
        return RawRecord(offset: start.offset, line: start.number, pcr: pcr, type: type,
                         digests: [(algorithm, ArraySlice(digest))], data: ArraySlice(data))
    }

    /// A TCG record; the cursor is on the line after `TCG Event:`.
    static func tcgRecord(_ c: inout Cursor, at start: Line, declared: [(algorithm: HashAlgorithm, size: Int)]) throws -> RawRecord {
        let what = "the record at line \(start.number)"
        let (pl, pv) = try c.field("pcr_index:", in: what)
        let pcr = try decimal(pv, pl, c, "pcr_index")
        let (tl, tv) = try c.field("event_type:", in: what)
        let type = try hexNumber(tv, tl, c, "event_type")
        let (cl, cv) = try c.field("count:", in: what)
        let count = try decimal(cv, cl, c, "count")
        guard count >= 1 else {
            throw CodedError(.logBadDigestList, source: c.source, offset: cl.offset, line: cl.number, "\(what) has no digest (count 0)")
        }
        let limit = declared.isEmpty ? EventLogLimits.maxAlgorithms : declared.count
        guard count <= UInt32(limit) else {
            throw CodedError(.logCountTooLarge, source: c.source, offset: cl.offset, line: cl.number,
                "\(what) lists \(count) digests; \(declared.isEmpty ? "at most \(limit) algorithms exist" : "the header declared \(limit) algorithms")")
        }
        var digests = [(algorithm: HashAlgorithm, bytes: ArraySlice<UInt8>)]()
        for _ in 0..<count {
            guard !c.atEnd else { throw c.truncated(what) }
            let line = c.lines[c.index]
            let label = line.text.prefix { $0 != ":" }
            guard line.text.dropFirst(label.count).hasPrefix(":"), let alg = HashAlgorithm(name: String(label)) else {
                throw c.malformed(line, "expected a bank name such as \"SHA256:\" in \(what), found \"\(Escape.text(String(line.text), limit: 60))\"")
            }
            c.index += 1
            let size = try alg.requireSize(source: c.source, offset: line.offset, line: line.number)
            if !declared.isEmpty, !declared.contains(where: { $0.algorithm == alg }) {
                throw CodedError(.logUndeclaredAlgorithm, source: c.source, offset: line.offset, line: line.number,
                    "\(what) has a \(alg) digest, which the log header did not declare")
            }
            guard !digests.contains(where: { $0.algorithm == alg }) else {
                throw CodedError(.logBadDigestList, source: c.source, offset: line.offset, line: line.number,
                    "\(what) lists its \(alg) digest twice")
            }
            let rest = line.text.dropFirst(label.count + 1).drop { $0 == " " || $0 == "\t" }
            digests.append((alg, ArraySlice(try c.hexBytes(size, first: rest, of: line, "the \(alg) digest"))))
        }
        let data = try eventData(&c, label: "event_data:", recordLine: start)
        return RawRecord(offset: start.offset, line: start.number, pcr: pcr, type: type, digests: digests, data: ArraySlice(data))
    }

    static func parse(_ text: String, source: String, checks: DRTMEventLog.Checks) throws -> DRTMEventLog {
        let all = lines(text)
        var c = Cursor(lines: all, source: source, lastContentLine: all.last { !$0.text.isEmpty }?.number ?? 0)
        // Legacy sections (one per "Log Descrption"); records before any section are SHA-1 (TPM 1.2).
        var sections = [(algorithm: HashAlgorithm?, records: [RawRecord], headerSeen: Bool)]()
        var declared = [(algorithm: HashAlgorithm, size: Int)]()
        var pendingAlgorithm: (HashAlgorithm, Line)? = nil
        var tcgRecords = [RawRecord]()
        var total = 0

        while !c.atEnd {
            let line = all[c.index]
            let t = line.text
            c.index += 1
            if t == "Log Descrption:" || t == "Log Description:" {
                sections.append((nil, [], false))
            } else if t == "Event Log Container:" {
                // tboot's TPM 1.2 print: one container, SHA-1 records. A second one with records
                // (two boots in one serial log) is refused below, not merged.
                sections.append((.sha1, [], false))
            } else if t.hasPrefix("PCRIndex:") {
                throw c.malformed(line, "a record's field outside any \"Event:\" record (is the record's first line garbled?)")
            } else if t.hasPrefix("Alg:"), let last = sections.indices.last, sections[last].algorithm == nil {
                let id = try decimal(t.dropFirst(4).drop { $0 == " " }, line, c, "Alg")
                let alg = HashAlgorithm(rawValue: UInt16(truncatingIfNeeded: id))
                guard id <= UInt32(UInt16.max) else { throw c.malformed(line, "Alg \(id) is not a TPM_ALG_ID") }
                _ = try alg.requireSize(source: source, offset: line.offset, line: line.number)
                sections[last].algorithm = alg
            } else if t.hasPrefix("algorithm_id:") {
                let id = try hexNumber(t.dropFirst(13).drop { $0 == " " }, line, c, "algorithm_id")
                guard id <= UInt32(UInt16.max) else { throw c.malformed(line, "algorithm_id \(id) is not a TPM_ALG_ID") }
                pendingAlgorithm = (HashAlgorithm(rawValue: UInt16(id)), line)
            } else if t.hasPrefix("digest_size:"), case let (alg, algLine)? = pendingAlgorithm {
                let size = try decimal(t.dropFirst(12).drop { $0 == " " }, line, c, "digest_size")
                let known = try alg.requireSize(source: source, offset: algLine.offset, line: algLine.number)
                guard known == Int(size) else {
                    throw c.malformed(line, "the header declares \(size)-byte digests for \(alg), whose digests have \(known) bytes")
                }
                guard declared.count < EventLogLimits.maxAlgorithms, !declared.contains(where: { $0.algorithm == alg }) else {
                    throw c.malformed(line, "the header declares \(alg) twice or too many algorithms")
                }
                declared.append((alg, known))
                pendingAlgorithm = nil
            } else if t == "Event:" || t == "TCG Event:" {
                total += 1
                guard total <= EventLogLimits.maxRecords else {
                    throw CodedError(.logCountTooLarge, source: source, offset: line.offset, line: line.number,
                        "more than \(EventLogLimits.maxRecords) records; no DRTM log is that long")
                }
                if t == "Event:" {
                    guard tcgRecords.isEmpty else { throw c.malformed(line, "a legacy \"Event:\" among TCG records") }
                    if sections.isEmpty { sections.append((.sha1, [], false)) }
                    let last = sections.count - 1
                    let alg = sections[last].algorithm ?? .sha1
                    sections[last].algorithm = alg
                    if alg != .sha1 && sections[last].records.isEmpty && !sections[last].headerSeen {
                        // A non-SHA-1 log opens with a SHA-1-format EV_NO_ACTION header record, which
                        // tboot prints with a 20-byte digest (heap.c: print_event_2(…, TB_HALG_SHA1)).
                        let header = try legacyRecord(&c, at: line, algorithm: .sha1)
                        guard header.pcr == 0, header.type == EventType.noAction.rawValue else {
                            throw c.malformed(line, "the \(alg) log's first record is not its SHA-1-format header (PCR 0, type 0x3)")
                        }
                        sections[last].headerSeen = true
                        continue
                    }
                    sections[last].records.append(try legacyRecord(&c, at: line, algorithm: alg))
                } else {
                    guard sections.allSatisfy({ $0.records.isEmpty }) else {
                        throw c.malformed(line, "a \"TCG Event:\" among legacy records")
                    }
                    tcgRecords.append(try tcgRecord(&c, at: line, declared: declared))
                }
            } else if t.hasPrefix("Wrong Event Log") {
                throw c.malformed(line, "tboot marked the record before this line as malformed (\"Wrong Event Log\")")
            }
        }

        if !tcgRecords.isEmpty || !declared.isEmpty {
            var banks = declared.map(\.algorithm)
            if banks.isEmpty {
                for r in tcgRecords { for d in r.digests where !banks.contains(d.algorithm) { banks.append(d.algorithm) } }
            }
            return try DRTMEventLog(format: .txtStatText, banks: banks, raw: tcgRecords, source: source, checks: checks)
        }
        guard sections.contains(where: { !$0.records.isEmpty }) else {
            throw CodedError(.logUnknownFormat, source: source, offset: 0,
                "no event records (\"Event:\" or \"TCG Event:\") in this text; tboot prints \"No Event Log.\" "
                + "when the launch measured nothing")
        }
        // One log per algorithm. A section printed again without records ("No Event Log.", as tboot
        // prints os_sinit_data twice) adds nothing; two sections with records for one algorithm is
        // two logs in one text.
        var logs = [(algorithm: HashAlgorithm, records: [RawRecord])]()
        for section in sections {
            let alg = section.algorithm ?? .sha1
            if let k = logs.firstIndex(where: { $0.algorithm == alg }) {
                guard logs[k].records.isEmpty || section.records.isEmpty else {
                    throw CodedError(.logBadHeader, source: source, offset: section.records[0].offset,
                        line: section.records[0].line, "a second printed \(alg) log; give one print of the log")
                }
                if logs[k].records.isEmpty { logs[k].records = section.records }
            } else {
                logs.append((alg, section.records))
            }
        }
        let banks = logs.map(\.algorithm)
        let merged = try BinaryLogs.mergeLegacy(logs, source: source)
        return try DRTMEventLog(format: .txtStatText, banks: banks, raw: merged, source: source, checks: checks)
    }
}
