// SPDX-License-Identifier: Apache-2.0
/// Where a TrenchBoot boot keeps its DRTM log (TrenchBoot's Xen `slaunch.c`, Linux Secure Launch): Xen reserves the range the loader
/// gave it and prints it on its console; dom0 reads the range from physical memory. Linux
/// Secure Launch exposes the log as a file in securityfs instead.
public enum SecureLaunchLog {
    /// Linux Secure Launch's copy of the DRTM log.
    public static let securityfsPath = "/sys/kernel/security/slaunch/eventlog"
    /// What Xen prints before the range (`slaunch.c: slaunch_reserve_mem_regions`).
    public static let xenMarker = "SLAUNCH: reserving event log"
    /// The largest range read: GRUB allocates tens of KiB for the log.
    public static let maxSize: UInt64 = 16 << 20

    /// The range `[start, end)` of physical memory Xen reserved for the log, and where it said so.
    public struct Range: Equatable, Sendable {
        public let start: UInt64
        public let end: UInt64
        /// 1-based line of the console text that gave it.
        public let line: Int
        public var size: UInt64 { end - start }
    }

    /// The range in Xen's console text (`xl dmesg`), from its last `SLAUNCH: reserving event log`
    /// line: `(0xa - 0xb)` in the 2024–2025 code (`%#lx - %#lx`), `[0xa, 0xb)` in the 2026 code.
    public static func xenRange(in text: String, source: String) throws -> Range {
        var found: (Int, Substring)? = nil
        var n = 0
        for line in text.split(separator: "\n", omittingEmptySubsequences: false) {
            n += 1
            if let after = Self.after(xenMarker, in: line) { found = (n, after) }
        }
        guard let (line, rest) = found else {
            throw CodedError(.slaunchNoLogRange, source: source,
                "no \"\(xenMarker)\" line: Xen did not boot through a TrenchBoot Secure Launch, or its console "
                + "ring lost its early lines (save 'xl dmesg' soon after boot, or raise conring_size=)")
        }
        func bad(_ why: String) -> CodedError {
            CodedError(.slaunchLogRangeBad, source: source, line: line,
                "the \"\(xenMarker)\" line does not give a range as Xen prints it, (0xA - 0xB) or [0xA, 0xB): \(why)")
        }
        var s = rest.drop { $0 == " " }
        guard let open = s.first, open == "(" || open == "[" else { throw bad("no ( or [") }
        s = s.dropFirst()
        func number() throws -> UInt64 {
            s = s.drop { $0 == " " }
            let digits = s.prefix { $0.isHexDigit || $0 == "x" || $0 == "X" }
            s = s.dropFirst(digits.count)
            var d = Substring(digits)
            if d.hasPrefix("0x") || d.hasPrefix("0X") { d = d.dropFirst(2) }
            guard !d.isEmpty, let v = UInt64(d, radix: 16) else { throw bad("\"\(digits)\" is not a hex address") }
            return v
        }
        let start = try number()
        s = s.drop { $0 == " " }
        guard let sep = s.first, sep == (open == "(" ? "-" : ",") else { throw bad("no separator after the start") }
        s = s.dropFirst()
        let end = try number()
        s = s.drop { $0 == " " }
        guard s.first == ")" else { throw bad("no closing )") }
        guard end > start else { throw bad("the end \(hex0x(end, width: 1)) is not after the start \(hex0x(start, width: 1))") }
        guard end - start <= maxSize else {
            throw bad("\(end - start) bytes; no DRTM log buffer is larger than \(maxSize >> 20) MiB")
        }
        return Range(start: start, end: end, line: line)
    }

    /// What follows the first occurrence of `marker` in `line` (no Foundation here).
    static func after(_ marker: String, in line: Substring) -> Substring? {
        let m = Array(marker.utf8), u = line.utf8
        guard u.count >= m.count else { return nil }
        var i = u.startIndex
        while u.distance(from: i, to: u.endIndex) >= m.count {
            let end = u.index(i, offsetBy: m.count)
            if u[i..<end].elementsEqual(m) { return Substring(u[end...]) }
            i = u.index(after: i)
        }
        return nil
    }

    /// The bytes of the range in `memory`, checked to read back as a DRTM log (any format,
    /// told from the content; no semantic checks, so `log show --lenient` can list a log with
    /// problems).
    public static func capture(_ range: Range, from memory: PhysicalMemory) throws -> [UInt8] {
        let bytes = try memory.read(at: range.start, count: Int(range.size))
        let source = "the event log Xen reserved (\(range.size) bytes at \(hex0x(range.start, width: 1)) in \(memory.name))"
        if bytes.allSatisfy({ $0 == 0 }) || bytes.allSatisfy({ $0 == 0xFF }) {
            throw CodedError(.memReadFailed, source: memory.name, address: range.start,
                "the \(range.size) bytes Xen reserved for the event log read all \(bytes[0] == 0 ? "zero" : "FF"): "
                + "no log there (a kernel that hides the range, or the wrong boot's console text)")
        }
        _ = try DRTMEventLog.parse(bytes: bytes, source: source, checks: [])
        return bytes
    }
}
