// SPDX-License-Identifier: Apache-2.0
/// A digest of one bank: its algorithm and exactly `algorithm.digestSize` bytes.
public struct Digest: Hashable, Sendable, CustomStringConvertible {
    public let algorithm: HashAlgorithm
    public let bytes: [UInt8]

    /// Fails unless `bytes` has the algorithm's digest size.
    public init?(_ algorithm: HashAlgorithm, bytes: [UInt8]) {
        guard let size = algorithm.digestSize, bytes.count == size else { return nil }
        self.algorithm = algorithm
        self.bytes = bytes
    }

    /// Parses hex (spaces, colons and an `0x` prefix allowed); nil if not hex of the right size.
    public init?(_ algorithm: HashAlgorithm, hex: String) {
        guard let bytes = Hex.decode(hex) else { return nil }
        self.init(algorithm, bytes: bytes)
    }

    /// All-zero value: the DRTM PCRs' value right after a dynamic launch (the launch resets PCR17–22 from all FF).
    public static func zeros(_ algorithm: HashAlgorithm) -> Digest {
        Digest(algorithm, bytes: [UInt8](repeating: 0, count: algorithm.digestSize ?? 0))!
    }

    /// All-FF value: what PCR17–22 read when no dynamic launch happened.
    public static func ones(_ algorithm: HashAlgorithm) -> Digest {
        Digest(algorithm, bytes: [UInt8](repeating: 0xFF, count: algorithm.digestSize ?? 0))!
    }

    public var isAllZero: Bool { bytes.allSatisfy { $0 == 0 } }
    public var isAllOnes: Bool { bytes.allSatisfy { $0 == 0xFF } }

    /// Lower-case hex, no separators.
    public var hex: String { Hex.encode(bytes) }
    public var description: String { hex }

    /// `PCR_new = H(PCR_old || digest)` in this digest's bank.
    public func extended(with measurement: Digest) -> Digest {
        precondition(measurement.algorithm == algorithm, "extend mixes banks")
        return MultiHasher.hash(algorithm, bytes + measurement.bytes)
    }
}

public enum Hex {
    private static let digits = Array("0123456789abcdef".utf8)

    public static func encode<C: Collection>(_ bytes: C) -> String where C.Element == UInt8 {
        var out = [UInt8]()
        out.reserveCapacity(bytes.count * 2)
        for b in bytes {
            out.append(digits[Int(b >> 4)])
            out.append(digits[Int(b & 0xF)])
        }
        return String(decoding: out, as: UTF8.self)
    }

    /// Decodes hex, ignoring blanks and `:` separators and an optional `0x` prefix.
    public static func decode(_ text: String) -> [UInt8]? {
        var s = Substring(text.trimmingBlanks())
        if s.hasPrefix("0x") || s.hasPrefix("0X") { s = s.dropFirst(2) }
        var out = [UInt8]()
        var high: UInt8? = nil
        for c in s.utf8 {
            let v: UInt8
            switch c {
            case UInt8(ascii: "0")...UInt8(ascii: "9"): v = c - UInt8(ascii: "0")
            case UInt8(ascii: "a")...UInt8(ascii: "f"): v = c - UInt8(ascii: "a") + 10
            case UInt8(ascii: "A")...UInt8(ascii: "F"): v = c - UInt8(ascii: "A") + 10
            case UInt8(ascii: " "), UInt8(ascii: ":"), UInt8(ascii: "\t"): continue
            default: return nil
            }
            if let h = high { out.append(h << 4 | v); high = nil } else { high = v }
        }
        return high == nil ? out : nil
    }
}

extension String {
    func trimmingBlanks() -> String {
        var s = Substring(self)
        while let f = s.first, f == " " || f == "\t" || f == "\n" || f == "\r" { s = s.dropFirst() }
        while let l = s.last, l == " " || l == "\t" || l == "\n" || l == "\r" { s = s.dropLast() }
        return String(s)
    }
}
