// SPDX-License-Identifier: Apache-2.0
/// Entry points: read a DRTM log from a file or bytes, detecting the format by content, never by
/// file name (issue 3).
extension DRTMEventLog {
    /// What the first bytes say the input is.
    enum Input: Equatable {
        case tpm12Container
        case tcgLog
        /// A per-algorithm log that opens with its SHA-1-format header (non-SHA-1 logs).
        case legacyLogWithHeader
        /// Fixed SHA-1 records with no header (a SHA-1 per-algorithm log).
        case legacySHA1Log
        case heapDump
        case text
    }

    /// Detection, most specific first:
    /// 1. `"TXT Event Container\0"` (or a prefix of it): TPM 1.2 container;
    /// 2. a first record with PCR 0 and type `EV_NO_ACTION`: its data size 28 makes it the header
    ///    of a per-algorithm log, anything else a TCG log (whose Spec ID Event03 header is then
    ///    checked in full);
    /// 3. page-aligned nonzero TXT.HEAP.BASE and TXT.HEAP.SIZE in the first 16 bytes: heap dump;
    /// 4. text without NUL bytes holding `PCRIndex:` or `pcr_index:`: tboot's printed log;
    /// 5. a first record for PCR 0–23 or 255 with a SINIT/tboot type (0x400–0x5FF): the records of
    ///    a SHA-1 per-algorithm log.
    static func detect(_ bytes: ArraySlice<UInt8>) -> Input? {
        let r = ByteReader(bytes, source: "")
        let sig = BinaryLogs.containerSignature
        if bytes.count < sig.count ? (!bytes.isEmpty && Array(bytes) == Array(sig.prefix(bytes.count)))
                                   : Array(bytes.prefix(sig.count)) == sig {
            return .tpm12Container
        }
        if let pcr = r.peekU32(at: 0), let type = r.peekU32(at: 4), pcr == 0, type == EventType.noAction.rawValue {
            return r.peekU32(at: 28) == BinaryLogs.legacyDescriptorSize && !BinaryLogs.looksLikeTCGHeader(r, at: 0)
                ? .legacyLogWithHeader : .tcgLog
        }
        if TXTHeap.looksLikeDump(bytes) { return .heapDump }
        if TextLog.looksLikeText(bytes) { return .text }
        if let pcr = r.peekU32(at: 0), let type = r.peekU32(at: 4), pcr <= 23 || pcr == 255, (0x400...0x5FF).contains(type) {
            return .legacySHA1Log
        }
        return nil
    }

    /// Reads a log from bytes in any of the formats (tboot `include/txt/heap.h`): a raw TCG log, TPM 1.2 container,
    /// per-algorithm log, a TXT heap dump, or tboot's printed text.
    ///
    /// Raw log files carry no size of their own: they end at the end of the bytes or where only zero
    /// bytes remain (the unused part of SINIT's buffer), so a file cut exactly between two records
    /// reads as a shorter log. Wherever a header declares the log's extent (TPM 1.2 container, heap
    /// elements 7 and 8) the records must fill it exactly, and a shorter copy is an error.
    ///
    /// - Parameter checks: semantic checks applied after framing (default: all).
    public static func parse(bytes: ArraySlice<UInt8>, source: String = "<bytes>", checks: Checks = .all) throws -> DRTMEventLog {
        guard !bytes.isEmpty else {
            throw CodedError(.logUnknownFormat, source: source, offset: 0, "the file is empty")
        }
        guard let input = detect(bytes) else {
            throw CodedError(.logUnknownFormat, source: source, offset: 0, notALog)
        }
        var r = ByteReader(bytes, source: source)
        switch input {
        case .tpm12Container:
            let raw = try BinaryLogs.tpm12Container(&r)
            return try DRTMEventLog(format: .tpm12Container, banks: [.sha1], raw: raw, source: source, checks: checks)
        case .tcgLog:
            let (banks, raw) = try BinaryLogs.tcgLog(&r, zeroTail: true)
            return try DRTMEventLog(format: .tpm20TCG, banks: banks, raw: raw, source: source, checks: checks)
        case .legacyLogWithHeader:
            var h = r
            guard let alg = try BinaryLogs.legacyHeader(&h) else {
                throw CodedError(.logBadHeader, source: source, offset: 52,
                    "the per-algorithm log header names no known algorithm (digest_id 1–5 with its digest size)")
            }
            let raw = try BinaryLogs.legacyLog(&r, algorithm: alg, zeroTail: true)
            return try DRTMEventLog(format: .tpm20Legacy, banks: [alg], raw: raw, source: source, checks: checks)
        case .legacySHA1Log:
            let raw = try BinaryLogs.legacyLog(&r, algorithm: .sha1, zeroTail: true)
            return try DRTMEventLog(format: .tpm20Legacy, banks: [.sha1], raw: raw, source: source, checks: checks)
        case .heapDump:
            return try TXTHeap.parse(bytes, source: source, checks: checks)
        case .text:
            return try TextLog.parse(String(decoding: bytes, as: UTF8.self), source: source, checks: checks)
        }
    }

    public static func parse(bytes: [UInt8], source: String = "<bytes>", checks: Checks = .all) throws -> DRTMEventLog {
        try parse(bytes: bytes[...], source: source, checks: checks)
    }

    /// The largest log file read: a TXT heap dump of the largest heap read from memory
    /// (`TXTHeapDump.maxHeapSize`) with its 16-byte header; every binary log lies inside the heap.
    static let maxFileSize = Int(TXTHeapDump.maxHeapSize) + 4096
    /// The largest printed log: txt-stat prints tens of KiB (each line read costs ~50 bytes).
    static let maxTextSize = 1 << 20

    /// Reads the log in a file (any format, see `parse(bytes:)`); errors name the path. The
    /// format is told from the first MiB: a file that is no log is refused before the rest is
    /// read, and the rest is read into one buffer of the file's size (memory: the file, once).
    public static func parse(path: String, checks: Checks = .all) throws -> DRTMEventLog {
        let reader = try FileReader(path: path)
        var bytes = [UInt8]()
        var chunk = try reader.next()
        bytes.reserveCapacity(Int(min(reader.size, UInt64(maxFileSize))) + 1)
        bytes.append(contentsOf: chunk)
        if !bytes.isEmpty {
            let more = reader.size > UInt64(bytes.count)
            switch detect(bytes[...]) {
            case nil where more:
                throw CodedError(.logUnknownFormat, source: path, offset: 0, notALog)
            case .text? where reader.size > UInt64(maxTextSize):
                throw CodedError(.logUnknownFormat, source: path, offset: 0,
                    "text of \(reader.size) bytes: no printed DRTM log is larger than \(maxTextSize >> 20) MiB (txt-stat prints tens of KiB)")
            default: break
            }
        }
        while !chunk.isEmpty {
            chunk = try reader.next()
            bytes.append(contentsOf: chunk)
            if bytes.count > maxFileSize {
                throw CodedError(.logUnknownFormat, source: path, offset: 0,
                    "larger than \(maxFileSize >> 20) MiB: no DRTM log or TXT heap dump is (the heap read from memory is at most \(TXTHeapDump.maxHeapSize >> 20) MiB)")
            }
        }
        return try parse(bytes: bytes, source: path, checks: checks)
    }

    static let notALog = "not a DRTM event log: no TCG Spec ID Event03 header, no \"TXT Event Container\", no TXT "
        + "heap registers, no SINIT records and no txt-stat text (give the log, a heap dump or the text)"

    /// Reads tboot's printed log (`txt-stat` output or tboot's serial log), strictly.
    public static func parse(text: String, source: String = "<text>", checks: Checks = .all) throws -> DRTMEventLog {
        try TextLog.parse(text, source: source, checks: checks)
    }
}
