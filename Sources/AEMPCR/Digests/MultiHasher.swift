import Crypto

/// Hashes one byte stream in several banks at once: every byte is read once and fed to each bank.
public struct MultiHasher {
    private enum State {
        case sha1(Insecure.SHA1)
        case sha256(SHA256)
        case sha384(SHA384)
        case sha512(SHA512)

        init(_ algorithm: HashAlgorithm) {
            switch algorithm {
            case .sha1: self = .sha1(Insecure.SHA1())
            case .sha256: self = .sha256(SHA256())
            case .sha384: self = .sha384(SHA384())
            case .sha512: self = .sha512(SHA512())
            default: preconditionFailure("bank \(algorithm) is not computable; callers check isComputable")
            }
        }

        mutating func update(_ buffer: UnsafeRawBufferPointer) {
            switch self {
            case .sha1(var h): h.update(bufferPointer: buffer); self = .sha1(h)
            case .sha256(var h): h.update(bufferPointer: buffer); self = .sha256(h)
            case .sha384(var h): h.update(bufferPointer: buffer); self = .sha384(h)
            case .sha512(var h): h.update(bufferPointer: buffer); self = .sha512(h)
            }
        }

        func finalize() -> [UInt8] {
            switch self {
            case .sha1(let h): return Array(h.finalize())
            case .sha256(let h): return Array(h.finalize())
            case .sha384(let h): return Array(h.finalize())
            case .sha512(let h): return Array(h.finalize())
            }
        }
    }

    public let algorithms: [HashAlgorithm]
    private var states: [State]

    /// `algorithms` must all be computable (`HashAlgorithm.isComputable`); duplicates are dropped.
    public init<S: Sequence>(_ algorithms: S) where S.Element == HashAlgorithm {
        var seen = [HashAlgorithm]()
        for a in algorithms where !seen.contains(a) { seen.append(a) }
        self.algorithms = seen
        self.states = seen.map(State.init)
    }

    public mutating func update(_ buffer: UnsafeRawBufferPointer) {
        for i in states.indices { states[i].update(buffer) }
    }

    public mutating func update(_ bytes: [UInt8]) {
        bytes.withUnsafeBytes { update($0) }
    }

    public func finalize() -> [HashAlgorithm: Digest] {
        var out = [HashAlgorithm: Digest]()
        for (a, s) in zip(algorithms, states) { out[a] = Digest(a, bytes: s.finalize())! }
        return out
    }

    /// The digest of `bytes` in one bank.
    public static func hash(_ algorithm: HashAlgorithm, _ bytes: [UInt8]) -> Digest {
        var h = MultiHasher([algorithm])
        h.update(bytes)
        return h.finalize()[algorithm]!
    }
}
