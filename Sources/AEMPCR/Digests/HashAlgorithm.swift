// SPDX-License-Identifier: Apache-2.0
/// A TPM hash algorithm identifier (TCG Algorithm Registry, `TPM_ALG_ID`), i.e. a PCR bank.
public struct HashAlgorithm: RawRepresentable, Hashable, Comparable, Sendable, CustomStringConvertible {
    public let rawValue: UInt16
    public init(rawValue: UInt16) { self.rawValue = rawValue }

    /// `TPM_ALG_SHA1`
    public static let sha1 = HashAlgorithm(rawValue: 0x0004)
    /// `TPM_ALG_SHA256`
    public static let sha256 = HashAlgorithm(rawValue: 0x000B)
    /// `TPM_ALG_SHA384`
    public static let sha384 = HashAlgorithm(rawValue: 0x000C)
    /// `TPM_ALG_SHA512`
    public static let sha512 = HashAlgorithm(rawValue: 0x000D)
    /// `TPM_ALG_SM3_256`: known so logs can name it; tboot's SM3 path is broken, nothing hashes with it.
    public static let sm3_256 = HashAlgorithm(rawValue: 0x0012)

    /// The banks this tool can compute, in TCG order.
    public static let computable: [HashAlgorithm] = [.sha1, .sha256, .sha384, .sha512]

    /// Digest size in bytes, or nil for an algorithm this tool does not know.
    public var digestSize: Int? {
        switch self {
        case .sha1: return 20
        case .sha256, .sm3_256: return 32
        case .sha384: return 48
        case .sha512: return 64
        default: return nil
        }
    }

    /// Whether this tool can hash with it (SM3 and unknown ids cannot).
    public var isComputable: Bool { HashAlgorithm.computable.contains(self) }

    public var name: String? {
        switch self {
        case .sha1: return "sha1"
        case .sha256: return "sha256"
        case .sha384: return "sha384"
        case .sha512: return "sha512"
        case .sm3_256: return "sm3_256"
        default: return nil
        }
    }

    public var description: String { name ?? String(format0x: rawValue, width: 4) }

    /// Parses a bank name as users and tpm2-tools write it (`sha1`, `sha256`, `sm3_256`, `sha-256`).
    public init?(name: String) {
        switch String(name.lowercased().filter { $0 != "-" }) {
        case "sha1": self = .sha1
        case "sha256": self = .sha256
        case "sha384": self = .sha384
        case "sha512": self = .sha512
        case "sm3", "sm3_256", "sm3256": self = .sm3_256
        default: return nil
        }
    }

    public static func < (a: HashAlgorithm, b: HashAlgorithm) -> Bool { a.rawValue < b.rawValue }
}

extension String {
    /// `0x` followed by `value` in lower-case hex, zero-padded to `width` digits.
    init<T: BinaryInteger>(format0x value: T, width: Int) {
        self = hex0x(value, width: width)
    }
}

func hex0x<T: BinaryInteger>(_ value: T, width: Int) -> String {
    let digits = String(value, radix: 16)
    return "0x" + String(repeating: "0", count: max(0, width - digits.count)) + digits
}
