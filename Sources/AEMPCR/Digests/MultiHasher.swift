// SPDX-License-Identifier: Apache-2.0
import CLibcrypto

/// Hashes one byte stream in several banks at once: every byte is read once and fed to each bank.
///
/// The hashes are the system libcrypto's (OpenSSL 3; SHA-NI where the CPU has it), the same
/// library tpm2-tss links, so the binary carries no second copy of them.
public struct MultiHasher {
    /// One libcrypto digest context. A class so that it is freed exactly once; `MultiHasher`
    /// copies it before a write when it is shared, so the struct keeps value semantics.
    private final class Context {
        let pointer: OpaquePointer

        init(_ md: OpaquePointer) {
            guard let ctx = EVP_MD_CTX_new(), EVP_DigestInit_ex(ctx, md, nil) == 1 else {
                fatalError("libcrypto could not start a digest (out of memory)")
            }
            pointer = ctx
        }

        init(copying other: Context) {
            guard let ctx = EVP_MD_CTX_new(), EVP_MD_CTX_copy_ex(ctx, other.pointer) == 1 else {
                fatalError("libcrypto could not copy a digest (out of memory)")
            }
            pointer = ctx
        }

        deinit { EVP_MD_CTX_free(pointer) }

        func update(_ buffer: UnsafeRawBufferPointer) {
            guard let base = buffer.baseAddress, buffer.count > 0 else { return }
            precondition(EVP_DigestUpdate(pointer, base, buffer.count) == 1, "libcrypto digest update failed")
        }

        /// The digest so far; the context itself is left as it was.
        func digest() -> [UInt8] {
            let done = Context(copying: self)
            var out = [UInt8](repeating: 0, count: Int(EVP_MAX_MD_SIZE))
            var length: UInt32 = 0
            precondition(EVP_DigestFinal_ex(done.pointer, &out, &length) == 1, "libcrypto digest final failed")
            return Array(out.prefix(Int(length)))
        }
    }

    private static func messageDigest(_ algorithm: HashAlgorithm) -> OpaquePointer {
        switch algorithm {
        case .sha1: return EVP_sha1()
        case .sha256: return EVP_sha256()
        case .sha384: return EVP_sha384()
        case .sha512: return EVP_sha512()
        default: preconditionFailure("bank \(algorithm) is not computable; callers check isComputable")
        }
    }

    public let algorithms: [HashAlgorithm]
    private var contexts: [Context]

    /// `algorithms` must all be computable (`HashAlgorithm.isComputable`); duplicates are dropped.
    public init<S: Sequence>(_ algorithms: S) where S.Element == HashAlgorithm {
        var seen = [HashAlgorithm]()
        for a in algorithms where !seen.contains(a) { seen.append(a) }
        self.algorithms = seen
        self.contexts = seen.map { Context(MultiHasher.messageDigest($0)) }
    }

    public mutating func update(_ buffer: UnsafeRawBufferPointer) {
        for i in contexts.indices {
            if !isKnownUniquelyReferenced(&contexts[i]) { contexts[i] = Context(copying: contexts[i]) }
            contexts[i].update(buffer)
        }
    }

    public mutating func update(_ bytes: [UInt8]) {
        bytes.withUnsafeBytes { update($0) }
    }

    public func finalize() -> [HashAlgorithm: Digest] {
        var out = [HashAlgorithm: Digest]()
        for (a, c) in zip(algorithms, contexts) { out[a] = Digest(a, bytes: c.digest())! }
        return out
    }

    /// The digest of `bytes` in one bank.
    public static func hash(_ algorithm: HashAlgorithm, _ bytes: [UInt8]) -> Digest {
        var h = MultiHasher([algorithm])
        h.update(bytes)
        return h.finalize()[algorithm]!
    }
}
