// SPDX-License-Identifier: Apache-2.0
/// A bounded little-endian reader over a window `[position, end)` of a source's bytes.
///
/// Positions are offsets from the start of the source (the file), so every error names the byte
/// in the file, also when the window is a log inside a heap dump. No read goes past `end`: each
/// one checks what remains first, and no arithmetic on sizes from the file can overflow because
/// sizes are compared with `remaining` before they are added.
struct ByteReader {
    /// The whole source; index `i` of the source is `bytes[bytes.startIndex + i]`.
    let bytes: ArraySlice<UInt8>
    let source: String
    private(set) var position: Int
    let end: Int

    /// A reader over `[start, end)` of `bytes`; both are clamped to the source.
    init(_ bytes: ArraySlice<UInt8>, source: String, start: Int = 0, end: Int? = nil) {
        self.bytes = bytes
        self.source = source
        let e = min(max(end ?? bytes.count, 0), bytes.count)
        self.end = e
        self.position = min(max(start, 0), e)
    }

    var remaining: Int { end - position }
    var isAtEnd: Bool { position >= end }

    /// Whether every byte left in the window is zero (the unused tail of a log buffer).
    var restIsZero: Bool {
        let base = bytes.startIndex
        return bytes[(base + position)..<(base + end)].allSatisfy { $0 == 0 }
    }

    func truncated(_ what: String, needs n: Int, recordAt record: Int? = nil) -> CodedError {
        let rec = record.map { " of the record at byte \($0)" } ?? ""
        return CodedError(.logTruncated, source: source, offset: position,
                             "the log ends inside \(what)\(rec): \(n) bytes needed, \(remaining) left "
                             + "(a truncated file or dump: copy the whole log again)")
    }

    /// Fails unless `n` bytes remain.
    func require(_ n: Int, _ what: String, recordAt record: Int? = nil) throws {
        guard n >= 0, n <= remaining else { throw truncated(what, needs: n, recordAt: record) }
    }

    mutating func skip(_ n: Int, _ what: String, recordAt record: Int? = nil) throws {
        try require(n, what, recordAt: record)
        position += n
    }

    mutating func take(_ n: Int, _ what: String, recordAt record: Int? = nil) throws -> ArraySlice<UInt8> {
        try require(n, what, recordAt: record)
        let s = bytes.startIndex + position
        position += n
        return bytes[s..<(s + n)]
    }

    mutating func u8(_ what: String, recordAt record: Int? = nil) throws -> UInt8 {
        try require(1, what, recordAt: record)
        defer { position += 1 }
        return bytes[bytes.startIndex + position]
    }

    mutating func u16(_ what: String, recordAt record: Int? = nil) throws -> UInt16 {
        UInt16(truncatingIfNeeded: try uint(2, what, recordAt: record))
    }

    mutating func u32(_ what: String, recordAt record: Int? = nil) throws -> UInt32 {
        UInt32(truncatingIfNeeded: try uint(4, what, recordAt: record))
    }

    mutating func u64(_ what: String, recordAt record: Int? = nil) throws -> UInt64 {
        try uint(8, what, recordAt: record)
    }

    private mutating func uint(_ n: Int, _ what: String, recordAt record: Int?) throws -> UInt64 {
        try require(n, what, recordAt: record)
        let s = bytes.startIndex + position
        var v: UInt64 = 0
        for i in (0..<n).reversed() { v = v << 8 | UInt64(bytes[s + i]) }
        position += n
        return v
    }

    /// Little-endian integer at absolute `offset` without moving; nil if it does not fit the window.
    func peekU32(at offset: Int) -> UInt32? {
        guard offset >= 0, offset <= end - 4 else { return nil }
        let s = bytes.startIndex + offset
        return UInt32(bytes[s]) | UInt32(bytes[s + 1]) << 8 | UInt32(bytes[s + 2]) << 16 | UInt32(bytes[s + 3]) << 24
    }

    /// The bytes `[offset, offset + n)` of the window, or nil if they do not fit.
    func peek(at offset: Int, count n: Int) -> ArraySlice<UInt8>? {
        guard offset >= 0, n >= 0, offset <= end - n else { return nil }
        let s = bytes.startIndex + offset
        return bytes[s..<(s + n)]
    }
}

/// Little-endian integers of a byte slice at an offset relative to its start (no bounds beyond the
/// slice's own: callers check the length first).
extension ArraySlice where Element == UInt8 {
    func le32(at i: Int) -> UInt32 {
        let s = startIndex + i
        return UInt32(self[s]) | UInt32(self[s + 1]) << 8 | UInt32(self[s + 2]) << 16 | UInt32(self[s + 3]) << 24
    }
}
