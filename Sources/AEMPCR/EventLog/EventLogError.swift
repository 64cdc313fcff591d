/// A DRTM event log (or the TXT heap dump holding it) that cannot be read, with the file, the byte
/// offset (and, for text logs, the line) where reading stopped, and what to do about it.
///
/// Every length in a log is checked against what remains before it is used; nothing is accepted
/// partially. Codes are stable: scripts may match on `errorCode`.
public struct EventLogError: AEMPCRError {
    public enum Code: String, Sendable, CaseIterable {
        /// The bytes end inside a record or header (a truncated file or dump).
        case truncated = "log-truncated"
        /// A size or offset field points past the end of the data it belongs to.
        case sizePastEnd = "log-size-past-end"
        /// A TCG record carries a digest of an algorithm the Spec ID header did not declare.
        case undeclaredAlgorithm = "log-undeclared-algorithm"
        /// A count (digests, algorithms, descriptors, events) is larger than allowed.
        case countTooLarge = "log-count-too-large"
        /// A digest list that is empty or names one algorithm twice.
        case badDigestList = "log-bad-digest-list"
        /// A hash algorithm this tool does not know (no digest size for it).
        case unknownAlgorithm = "log-unknown-algorithm"
        /// The log header (TCG Spec ID event, TPM 1.2 container, per-algorithm header) is malformed.
        case badHeader = "log-bad-header"
        /// The content is none of the formats this tool reads.
        case unknownFormat = "log-unknown-format"
        /// The per-algorithm logs of the TPM 2.0 legacy format disagree about an event.
        case legacyMismatch = "log-legacy-mismatch"
        /// The same SINIT record appears twice in a row.
        case duplicateEvent = "log-duplicate-event"
        /// A record names a PCR outside 0–23 (e.g. 255).
        case invalidPCR = "log-pcr-invalid"
        /// A line of a `txt-stat` text log is not what the format requires at that place.
        case malformedText = "log-text-malformed"
        /// A heap dump shorter than the heap its header declares.
        case heapTruncated = "heap-truncated"
        /// A heap size field that would not advance the walk (zero or smaller than its header), or
        /// too many elements.
        case heapLoop = "heap-loop"
        /// A heap section or element that extends past its container, or a pointer outside the heap.
        case heapOverrun = "heap-overrun"
        /// The heap holds no event-log pointer (OsSinitData too old, or no element 5, 7 or 8).
        case heapNoLog = "heap-no-log"
        /// A heap section whose fixed fields are malformed.
        case heapBadSection = "heap-bad-section"
        /// Xen's console text has no `SLAUNCH: reserving event log` line.
        case xenRangeMissing = "slaunch-no-log-range"
        /// That line does not give a range as Xen prints it.
        case xenRangeBad = "slaunch-log-range-bad"
    }

    public let code: Code
    /// The file (or the name given for in-memory bytes).
    public let source: String
    /// Byte offset in `source` where the problem was found, where known.
    public let offset: Int?
    /// 1-based line number, for text logs.
    public let line: Int?
    /// One line saying what is wrong and, where possible, what to do.
    public let reason: String

    public init(_ code: Code, source: String, offset: Int? = nil, line: Int? = nil, _ reason: String) {
        self.code = code
        self.source = source
        self.offset = offset
        self.line = line
        self.reason = reason
    }

    public var errorCode: String { code.rawValue }

    public var description: String {
        var at = ""
        if let line { at += " line \(line)" }
        if let offset { at += (line == nil ? " at byte " : " (byte ") + String(offset) + (line == nil ? "" : ")") }
        return "\(source)\(at): \(reason)"
    }
}
