// SPDX-License-Identifier: Apache-2.0
/// One record of a DRTM (Intel TXT) event log: what SINIT or tboot extended into which PCR.
///
/// Parsed events are *unverified* (STYLE.md 6): they say what the log claims. Only a replay that
/// matches the TPM's PCRs makes them trustworthy.
public struct DRTMEvent: Hashable, Sendable {
    public var pcr: PCRIndex
    public var type: EventType
    /// The digest of each bank the record carries (a TPM 1.2 record: SHA-1 only; a TCG record:
    /// the banks its digest list names; a merged legacy record: one per per-algorithm log).
    public var digests: [HashAlgorithm: Digest]
    /// The event data (may be empty: tboot's events and the MLE hash carry none).
    public var data: [UInt8]
    /// Byte offset of the record in its source (for a log inside a heap dump: in the dump file).
    public var offset: Int
    /// 1-based line of the record, for text logs.
    public var line: Int?

    public init(pcr: PCRIndex, type: EventType, digests: [Digest], data: [UInt8] = [], offset: Int = 0, line: Int? = nil) {
        self.pcr = pcr
        self.type = type
        var d = [HashAlgorithm: Digest]()
        for digest in digests { d[digest.algorithm] = digest }
        self.digests = d
        self.data = data
        self.offset = offset
        self.line = line
    }

    /// The digests in bank order (TPM_ALG_ID ascending).
    public var sortedDigests: [Digest] { digests.keys.sorted().compactMap { digests[$0] } }

    /// The digest of one bank, if the record carries it.
    public subscript(bank: HashAlgorithm) -> Digest? { digests[bank] }

    /// Same PCR, type, digests and data, wherever the record was found.
    public func isSameRecord(as other: DRTMEvent) -> Bool {
        pcr == other.pcr && type == other.type && digests == other.digests && data == other.data
    }

    /// Whether the type is one SINIT logs (0x400–0x4FF), as opposed to tboot's 0x501 and EV_NO_ACTION.
    public var isSINITEvent: Bool { (0x400...0x4FF).contains(type.rawValue) }

    /// Where the record is, for messages: `byte N` or `line N`.
    var location: String { line.map { "line \($0)" } ?? "byte \(offset)" }
}

/// A parsed DRTM event log: the records in log order, the banks the log declares, its format.
public struct DRTMEventLog: Sendable {
    /// The on-disk or in-memory format the log came in (the heap's event-log elements of tboot `include/txt/heap.h`).
    public enum Format: String, Sendable, CaseIterable {
        /// TPM 1.2: `"TXT Event Container\0"` with SHA-1 records (heap element type 5).
        case tpm12Container = "tpm12-container"
        /// TPM 2.0 legacy: one log per algorithm (heap element type 7), merged by position.
        case tpm20Legacy = "tpm20-legacy"
        /// TPM 2.0 TCG crypto-agile log with a Spec ID Event03 header (heap element type 8).
        case tpm20TCG = "tpm20-tcg"
        /// The text tboot's `txt-stat` (or tboot's serial log) prints of one of the above.
        case txtStatText = "txt-stat-text"
    }

    /// Checks on the meaning of the records, applied after framing. A log that fails one is not
    /// what SINIT and tboot write; `parse` rejects it unless the check is left out.
    public struct Checks: OptionSet, Sendable {
        public let rawValue: Int
        public init(rawValue: Int) { self.rawValue = rawValue }
        /// A SINIT record repeated back to back (SINIT logs each measurement once).
        public static let duplicates = Checks(rawValue: 1 << 0)
        /// A record for a PCR outside 0–23 (e.g. 255).
        public static let pcrRange = Checks(rawValue: 1 << 1)
        public static let all: Checks = [.duplicates, .pcrRange]
    }

    public var format: Format
    /// Banks the log declares (TCG header, legacy descriptors), or that its records carry.
    public var banks: [HashAlgorithm]
    public var events: [DRTMEvent]
    /// File name (or the name given for in-memory bytes).
    public var source: String

    public init(format: Format, banks: [HashAlgorithm], events: [DRTMEvent], source: String) {
        self.format = format
        self.banks = banks
        self.events = events
        self.source = source
    }

    /// Every semantic problem of the log, in log order: duplicated SINIT records and PCRs outside
    /// 0–23. `parse` throws the first one of the checks it applies.
    public func problems(_ checks: Checks = .all) -> [CodedError] {
        var out = [CodedError]()
        for (i, e) in events.enumerated() {
            if checks.contains(.pcrRange), e.pcr.rawValue > 23 {
                out.append(CodedError(.logPCRInvalid, source: source, offset: e.offset, line: e.line,
                    "event \(i) (type \(e.type)) names PCR \(e.pcr); a TPM has PCRs 0–23, so this record "
                    + "was never extended as logged and the log cannot be replayed"))
            }
            if checks.contains(.duplicates), i > 0, e.isSINITEvent, e.isSameRecord(as: events[i - 1]) {
                let prev = events[i - 1]
                out.append(CodedError(.logDuplicateEvent, source: source, offset: e.offset, line: e.line,
                    "event \(i) (PCR \(e.pcr), type \(e.type)) repeats event \(i - 1) at \(prev.location) "
                    + "byte for byte; SINIT logs each measurement once, so this log is corrupt"))
            }
        }
        return out
    }

    /// Throws the first problem of `checks`.
    func validated(_ checks: Checks) throws -> DRTMEventLog {
        if let first = problems(checks).first { throw first }
        return self
    }
}

/// A record as framed from the bytes (phase 1, STYLE.md 4): sizes checked, fields not yet typed.
struct RawRecord {
    let offset: Int
    var line: Int? = nil
    let pcr: UInt32
    let type: UInt32
    /// In the order the record lists them.
    let digests: [(algorithm: HashAlgorithm, bytes: ArraySlice<UInt8>)]
    let data: ArraySlice<UInt8>

    /// Phase 2: typed values. Framing has matched every digest's length to its algorithm.
    func decoded(source: String) throws -> DRTMEvent {
        var list = [Digest]()
        for d in digests {
            guard let digest = Digest(d.algorithm, bytes: Array(d.bytes)) else {
                throw CodedError(.logBadDigestList, source: source, offset: offset, line: line,
                    "the \(d.algorithm) digest of this record has \(d.bytes.count) bytes, not \(d.algorithm.digestSize ?? 0)")
            }
            list.append(digest)
        }
        return DRTMEvent(pcr: PCRIndex(rawValue: pcr), type: EventType(rawValue: type), digests: list,
                         data: Array(data), offset: offset, line: line)
    }
}

/// Limits that keep a hostile log from costing more than a real one ever needs.
enum EventLogLimits {
    /// Records per log (real DRTM logs hold 10–40).
    static let maxRecords = 65_536
    /// Algorithms in a TCG header and descriptors in a legacy element (5 exist).
    static let maxAlgorithms = 16
    /// Extended-data elements per heap section.
    static let maxHeapElements = 256
}

extension HashAlgorithm {
    /// The digest size, or an `unknownAlgorithm` error naming where the id was found.
    func requireSize(source: String, offset: Int, line: Int? = nil) throws -> Int {
        guard let size = digestSize else {
            throw CodedError(.logUnknownAlgorithm, source: source, offset: offset, line: line,
                "hash algorithm \(hex0x(rawValue, width: 4)) is not one this tool knows "
                + "(sha1 0x0004, sha256 0x000b, sha384 0x000c, sha512 0x000d, sm3_256 0x0012)")
        }
        return size
    }
}
