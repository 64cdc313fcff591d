// SPDX-License-Identifier: Apache-2.0
/// Framing of the three binary DRTM log formats (tboot `include/txt/heap.h`,
/// `txt/heap.c: print_evt_log*`; TCG PC Client Platform Firmware Profile, `TCG_PCR_EVENT`,
/// `TCG_PCR_EVENT2`, `TCG_EfiSpecIDEventStruct`).
///
/// Each function reads one window of a source with a `ByteReader` and returns raw records; the
/// typed `DRTMEvent`s are built afterwards (`RawRecord.decoded`).
enum BinaryLogs {
    // MARK: Fixed-digest records (TPM 1.2 container, TPM 2.0 per-algorithm logs)

    /// `{u32 pcr; u32 type; u8 digest[size]; u32 data_size; u8 data[data_size]}`: `tpm12_pcr_event_t`
    /// and its per-algorithm variants.
    static func fixedRecord(_ r: inout ByteReader, algorithm: HashAlgorithm, digestSize: Int) throws -> RawRecord {
        let start = r.position
        let pcr = try r.u32("the PCR index", recordAt: start)
        let type = try r.u32("the event type", recordAt: start)
        let digest = try r.take(digestSize, "the \(algorithm) digest", recordAt: start)
        let size = try r.u32("the event data size", recordAt: start)
        let data = try eventData(&r, size: size, recordAt: start)
        return RawRecord(offset: start, pcr: pcr, type: type, digests: [(algorithm, digest)], data: data)
    }

    /// Event data of `size` bytes; a size larger than what remains is an error, not a short read.
    static func eventData(_ r: inout ByteReader, size: UInt32, recordAt start: Int) throws -> ArraySlice<UInt8> {
        let n = Int(size)
        guard n <= r.remaining else {
            throw CodedError(.logSizePastEnd, source: r.source, offset: r.position - 4,
                "the record at byte \(start) declares \(n) bytes of event data but only \(r.remaining) "
                + "bytes of the log remain (a corrupt size field or a truncated log)")
        }
        return try r.take(n, "the event data", recordAt: start)
    }

    /// Records from the reader's position up to its end. With `zeroTail`, a rest of all-zero bytes
    /// ends the log (the unused part of the buffer SINIT writes into, as raw log files carry it);
    /// without it the records must end exactly at the window's end (a size the header declared).
    static func records(_ r: inout ByteReader, zeroTail: Bool,
                        next: (inout ByteReader) throws -> RawRecord) throws -> [RawRecord] {
        var out = [RawRecord]()
        while !r.isAtEnd {
            if zeroTail && r.restIsZero { break }
            guard out.count < EventLogLimits.maxRecords else {
                throw CodedError(.logCountTooLarge, source: r.source, offset: r.position,
                    "more than \(EventLogLimits.maxRecords) records; no DRTM log is that long")
            }
            out.append(try next(&r))
        }
        return out
    }

    // MARK: TPM 1.2 container (element type 5)

    /// `"TXT Event Container\0"`: `EVTLOG_SIGNATURE` in tboot's `heap.h`.
    static let containerSignature: [UInt8] = Array("TXT Event Container".utf8) + [0]
    /// `sizeof(event_log_container_t)`: signature 20, reserved 12, 4 version bytes, 3 × u32.
    static let containerHeaderSize = 48

    /// A TPM 1.2 event container starting at the reader's position. Its header declares the events
    /// region `[pcr_events_offset, next_event_offset)`; those bytes must be present (the rest of the
    /// container's `size` is unused buffer and may be missing from a copy).
    static func tpm12Container(_ r: inout ByteReader) throws -> [RawRecord] {
        let start = r.position
        let sig = try r.take(20, "the container signature", recordAt: start)
        guard Array(sig) == containerSignature else {
            throw CodedError(.logBadHeader, source: r.source, offset: start,
                "no \"TXT Event Container\" signature where the TPM 1.2 log should start")
        }
        try r.skip(12, "the container's reserved bytes", recordAt: start)
        try r.skip(4, "the container version", recordAt: start)
        let size = Int(try r.u32("the container size", recordAt: start))
        let first = Int(try r.u32("pcr_events_offset", recordAt: start))
        let next = Int(try r.u32("next_event_offset", recordAt: start))
        guard first >= containerHeaderSize, first <= next, next <= size else {
            throw CodedError(.logBadHeader, source: r.source, offset: start + 36,
                "the container's events range [\(first), \(next)) does not fit a container of \(size) bytes "
                + "with a \(containerHeaderSize)-byte header")
        }
        let available = r.end - start
        guard next <= available else {
            throw CodedError(.logSizePastEnd, source: r.source, offset: start + 44,
                "the container declares events up to byte \(start + next), but the data ends at byte "
                + "\(r.end) (a truncated copy of the log)")
        }
        var events = ByteReader(r.bytes, source: r.source, start: start + first, end: start + next)
        let out = try records(&events, zeroTail: false) {
            try fixedRecord(&$0, algorithm: .sha1, digestSize: 20)
        }
        r = ByteReader(r.bytes, source: r.source, start: start + next, end: r.end)
        return out
    }

    // MARK: TPM 2.0 per-algorithm logs (element type 7)

    /// `sizeof(tpm20_log_descr_t)`: signature 16, revision, digest_id, digest_size.
    static let legacyDescriptorSize: UInt32 = 28

    /// The SHA-1-format `EV_NO_ACTION` record that opens every non-SHA-1 per-algorithm log
    /// (tboot `heap.c`: "the first entry … TCG_PCR_EVENT … EventData = TCG_LOG_DESCRIPTOR").
    /// Returns the algorithm its descriptor names (`digest_id` 1–5 as in tboot's `DIGEST_ALG_ID_*`),
    /// if that id is known and its `digest_size` agrees.
    @discardableResult
    static func legacyHeader(_ r: inout ByteReader) throws -> HashAlgorithm? {
        let start = r.position
        // PCR and type first: a log without its header has a real record here, whose sizes would
        // otherwise be misread.
        if let pcr = r.peekU32(at: start), let type = r.peekU32(at: start + 4),
           pcr != 0 || type != EventType.noAction.rawValue {
            throw CodedError(.logBadHeader, source: r.source, offset: start,
                "a non-SHA-1 per-algorithm log must start with a PCR 0 EV_NO_ACTION header record; "
                + "found PCR \(pcr), type \(hex0x(type, width: 3))")
        }
        let rec = try fixedRecord(&r, algorithm: .sha1, digestSize: 20)
        guard rec.pcr == 0, rec.type == EventType.noAction.rawValue, rec.data.count == Int(legacyDescriptorSize) else {
            throw CodedError(.logBadHeader, source: r.source, offset: start,
                "a non-SHA-1 per-algorithm log must start with a PCR 0 EV_NO_ACTION record of "
                + "\(legacyDescriptorSize) bytes (found PCR \(rec.pcr), type \(hex0x(rec.type, width: 3)), "
                + "\(rec.data.count) bytes)")
        }
        let id = rec.data.le32(at: 20), size = rec.data.le32(at: 24)
        let byID: [UInt32: HashAlgorithm] = [1: .sha1, 2: .sha256, 3: .sha384, 4: .sha512, 5: .sm3_256]
        guard let alg = byID[id], UInt32(alg.digestSize ?? 0) == size else { return nil }
        return alg
    }

    /// Whether a per-algorithm log header starts at `offset` (for format detection).
    static func looksLikeLegacyHeader(_ r: ByteReader, at offset: Int) -> Bool {
        guard let head = r.peek(at: offset, count: 32) else { return false }
        return head.le32(at: 0) == 0 && head.le32(at: 4) == EventType.noAction.rawValue
            && head.dropFirst(8).prefix(20).allSatisfy { $0 == 0 } && head.le32(at: 28) == legacyDescriptorSize
    }

    /// One per-algorithm log: the header record (non-SHA-1 only), then fixed records.
    static func legacyLog(_ r: inout ByteReader, algorithm: HashAlgorithm, zeroTail: Bool) throws -> [RawRecord] {
        let size = try algorithm.requireSize(source: r.source, offset: r.position)
        if algorithm != .sha1 && !r.isAtEnd { try legacyHeader(&r) }
        return try records(&r, zeroTail: zeroTail) { try fixedRecord(&$0, algorithm: algorithm, digestSize: size) }
    }

    /// Merges per-algorithm logs by position into records with one digest per log.
    ///
    /// SINIT writes the same records into every log; tboot then appends its own only to the logs of
    /// the banks it extends (e.g. `extpol=sha256`), so logs may differ in length at the end. At each
    /// position the logs that have a record there must agree on PCR, type and data.
    static func mergeLegacy(_ logs: [(algorithm: HashAlgorithm, records: [RawRecord])], source: String) throws -> [RawRecord] {
        let count = logs.map(\.records.count).max() ?? 0
        var out = [RawRecord]()
        out.reserveCapacity(count)
        for i in 0..<count {
            var first: RawRecord? = nil
            var firstAlg = HashAlgorithm.sha1
            var digests = [(algorithm: HashAlgorithm, bytes: ArraySlice<UInt8>)]()
            for log in logs where i < log.records.count {
                let rec = log.records[i]
                if let f = first {
                    guard f.pcr == rec.pcr, f.type == rec.type, f.data == rec.data else {
                        throw CodedError(.logLegacyMismatch, source: source, offset: rec.offset, line: rec.line,
                            "record \(i) of the \(log.algorithm) log (PCR \(rec.pcr), type \(hex0x(rec.type, width: 3))) "
                            + "differs from record \(i) of the \(firstAlg) log at \(f.line.map { "line \($0)" } ?? "byte \(f.offset)") "
                            + "(PCR \(f.pcr), type \(hex0x(f.type, width: 3))); the per-algorithm logs must list the same events")
                    }
                } else {
                    first = rec
                    firstAlg = log.algorithm
                }
                digests.append(contentsOf: rec.digests)
            }
            if let f = first {
                out.append(RawRecord(offset: f.offset, line: f.line, pcr: f.pcr, type: f.type, digests: digests, data: f.data))
            }
        }
        return out
    }

    // MARK: TCG crypto-agile log (element type 8)

    /// `"Spec ID Event03\0"`, the signature of `TCG_EfiSpecIDEventStruct`.
    static let specIDSignature: [UInt8] = Array("Spec ID Event03".utf8) + [0]

    /// Whether a Spec ID Event03 header record starts at `offset` (for detection and pointer checks).
    static func looksLikeTCGHeader(_ r: ByteReader, at offset: Int) -> Bool {
        guard let head = r.peek(at: offset, count: 48) else { return false }
        return head.le32(at: 0) == 0 && head.le32(at: 4) == EventType.noAction.rawValue
            && Array(head.suffix(16)) == specIDSignature
    }

    /// The algorithms (and digest sizes) a Spec ID Event03 header declares, in header order.
    static func tcgHeader(_ r: inout ByteReader) throws -> [(algorithm: HashAlgorithm, size: Int)] {
        let start = r.position
        let rec = try fixedRecord(&r, algorithm: .sha1, digestSize: 20)
        guard rec.pcr == 0, rec.type == EventType.noAction.rawValue else {
            throw CodedError(.logBadHeader, source: r.source, offset: start,
                "a TCG log starts with a PCR 0 EV_NO_ACTION header record; found PCR \(rec.pcr), "
                + "type \(hex0x(rec.type, width: 3))")
        }
        guard rec.digests.allSatisfy({ $0.bytes.allSatisfy { $0 == 0 } }) else {
            throw CodedError(.logBadHeader, source: r.source, offset: start + 8,
                "the digest of the TCG header record must be 20 zero bytes")
        }
        // The Spec ID structure, read inside the record's own data.
        let dataStart = start + 32
        var h = ByteReader(r.bytes, source: r.source, start: dataStart, end: dataStart + rec.data.count)
        let sig = try h.take(16, "the Spec ID signature", recordAt: start)
        guard Array(sig) == specIDSignature else {
            throw CodedError(.logBadHeader, source: r.source, offset: dataStart,
                "the header record's data is not a \"Spec ID Event03\" structure")
        }
        try h.skip(4 + 4, "the Spec ID platform class and version", recordAt: start)
        let n = try h.u32("numberOfAlgorithms", recordAt: start)
        guard n >= 1, n <= UInt32(EventLogLimits.maxAlgorithms) else {
            throw CodedError(n == 0 ? .logBadHeader : .logCountTooLarge, source: r.source, offset: h.position - 4,
                "the Spec ID header declares \(n) algorithms; a log has 1 to \(EventLogLimits.maxAlgorithms)")
        }
        var algs = [(algorithm: HashAlgorithm, size: Int)]()
        for _ in 0..<n {
            let at = h.position
            let alg = HashAlgorithm(rawValue: try h.u16("an algorithm id", recordAt: start))
            let size = Int(try h.u16("a digest size", recordAt: start))
            let known = try alg.requireSize(source: r.source, offset: at)
            guard known == size else {
                throw CodedError(.logBadHeader, source: r.source, offset: at,
                    "the header declares \(size)-byte digests for \(alg), whose digests have \(known) bytes")
            }
            guard !algs.contains(where: { $0.algorithm == alg }) else {
                throw CodedError(.logBadHeader, source: r.source, offset: at, "the header declares \(alg) twice")
            }
            algs.append((alg, size))
        }
        let vendor = Int(try h.u8("vendorInfoSize", recordAt: start))
        try h.skip(vendor, "the vendor info", recordAt: start)
        guard h.isAtEnd else {
            throw CodedError(.logBadHeader, source: r.source, offset: h.position,
                "\(h.remaining) unexplained bytes after the Spec ID structure in the header record")
        }
        return algs
    }

    /// `TCG_PCR_EVENT2`: `{u32 pcr; u32 type; u32 count; count × (u16 alg, digest); u32 size; data}`.
    /// Only algorithms the header declared, each at most once.
    static func tcgRecord(_ r: inout ByteReader, algorithms: [(algorithm: HashAlgorithm, size: Int)]) throws -> RawRecord {
        let start = r.position
        let pcr = try r.u32("the PCR index", recordAt: start)
        let type = try r.u32("the event type", recordAt: start)
        let count = try r.u32("the digest count", recordAt: start)
        guard count >= 1 else {
            throw CodedError(.logBadDigestList, source: r.source, offset: r.position - 4,
                "the record at byte \(start) has no digest (count 0)")
        }
        // TrenchBoot's secure-kernel-loader writes SHA-1 and SHA-256 into every 0x502 record
        // whatever the header declares (SKL `event_log.c`, `ev_log_hash_t`): a digest of a known
        // algorithm the header left out is read there, and `DRTMLaunch` reports it.
        let undeclaredAllowed = type == EventType.secureLaunch.rawValue
        guard count <= UInt32(undeclaredAllowed ? EventLogLimits.maxAlgorithms : algorithms.count) else {
            throw CodedError(.logCountTooLarge, source: r.source, offset: r.position - 4,
                "the record at byte \(start) lists \(count) digests; the header declared \(algorithms.count) algorithms")
        }
        var digests = [(algorithm: HashAlgorithm, bytes: ArraySlice<UInt8>)]()
        for _ in 0..<count {
            let at = r.position
            let alg = HashAlgorithm(rawValue: try r.u16("a digest's algorithm id", recordAt: start))
            let known = undeclaredAllowed ? alg.digestSize.map { (algorithm: alg, size: $0) } : nil
            guard let declared = algorithms.first(where: { $0.algorithm == alg }) ?? known else {
                throw CodedError(.logUndeclaredAlgorithm, source: r.source, offset: at,
                    "the record at byte \(start) has a digest of algorithm \(alg) (\(hex0x(alg.rawValue, width: 4))), "
                    + "which the log header did not declare (declared: \(algorithms.map { "\($0.algorithm)" }.joined(separator: ", ")))")
            }
            guard !digests.contains(where: { $0.algorithm == alg }) else {
                throw CodedError(.logBadDigestList, source: r.source, offset: at,
                    "the record at byte \(start) lists its \(alg) digest twice")
            }
            digests.append((alg, try r.take(declared.size, "the \(alg) digest", recordAt: start)))
        }
        let size = try r.u32("the event data size", recordAt: start)
        let data = try eventData(&r, size: size, recordAt: start)
        return RawRecord(offset: start, pcr: pcr, type: type, digests: digests, data: data)
    }

    /// A TCG log: header, then records to the window's end (or to an all-zero tail with `zeroTail`).
    static func tcgLog(_ r: inout ByteReader, zeroTail: Bool) throws -> (banks: [HashAlgorithm], records: [RawRecord]) {
        let algs = try tcgHeader(&r)
        let recs = try records(&r, zeroTail: zeroTail) { try tcgRecord(&$0, algorithms: algs) }
        return (algs.map(\.algorithm), recs)
    }
}

extension DRTMEventLog {
    /// Phase 2 for every record, then the semantic checks.
    init(format: Format, banks: [HashAlgorithm], raw: [RawRecord], source: String, checks: Checks) throws {
        let events = try raw.map { try $0.decoded(source: source) }
        self = try DRTMEventLog(format: format, banks: banks, events: events, source: source).validated(checks)
    }
}
