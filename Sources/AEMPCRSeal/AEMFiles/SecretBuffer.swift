// SPDX-License-Identifier: Apache-2.0
import AEMPCR
import AEMPCRSystem
import CLibcrypto
internal import CLinux
import Glibc

/// Bytes of a secret (an AEM secret file, the SRK password, the 16-byte sealed key, its hex
/// password, PBKDF2's key and IV): in pages of their own, never copied into Swift arrays or
/// strings by this type, and only reachable through `withUnsafeBytes`, so that the only copies
/// are the ones a caller makes on purpose.
///
/// The pages come from `mmap` (no other allocation shares them), are locked in memory (`mlock`:
/// never written to swap; best effort, see `lockFailure`) and left out of core dumps
/// (`MADV_DONTDUMP`); when the buffer is freed they are wiped with `explicit_bzero`, unlocked and
/// unmapped (as libsodium's `sodium_malloc` and swift-crypto's `SecureBytes` do).
public final class SecretBuffer {
    public let count: Int
    private let base: UnsafeMutableRawPointer
    /// The mapping: `count` rounded up to whole pages (at least one).
    private let mapped: Int
    private let locked: Bool

    /// The errno of the first `mlock` that failed (EPERM without CAP_IPC_LOCK and a zero
    /// RLIMIT_MEMLOCK, ENOMEM over the limit), 0 when every buffer was locked. The buffer is
    /// used anyway; `seal --verbose` says that secrets may have reached swap. Written only by
    /// the thread that makes buffers (seal makes them on its one thread).
    nonisolated(unsafe) public private(set) static var lockFailure: Int32 = 0

    public init(count: Int) {
        precondition(count >= 0, "SecretBuffer of a negative size")
        self.count = count
        let page = max(Int(sysconf(Int32(_SC_PAGESIZE))), 4096)
        mapped = (max(count, 1) + page - 1) / page * page
        guard let p = mmap(nil, mapped, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0), p != MAP_FAILED else {
            fatalError("out of memory for a \(count)-byte secret")
        }
        base = p
        if mlock(base, mapped) == 0 {
            locked = true
        } else {
            locked = false
            if SecretBuffer.lockFailure == 0 { SecretBuffer.lockFailure = errno }
        }
        _ = aempcr_madvise_dontdump(base, mapped)
    }

    /// A copy of `bytes` (for values that are not secret in tests, or already in an array).
    public convenience init(copying bytes: [UInt8]) {
        self.init(count: bytes.count)
        bytes.withUnsafeBytes { if let b = $0.baseAddress { base.copyMemory(from: b, byteCount: bytes.count) } }
    }

    deinit {
        explicit_bzero(base, mapped)
        if locked { munlock(base, mapped) }
        munmap(base, mapped)
    }

    public func withUnsafeBytes<R>(_ body: (UnsafeRawBufferPointer) throws -> R) rethrows -> R {
        try body(UnsafeRawBufferPointer(start: base, count: count))
    }

    public func withUnsafeMutableBytes<R>(_ body: (UnsafeMutableRawBufferPointer) throws -> R) rethrows -> R {
        try body(UnsafeMutableRawBufferPointer(start: base, count: count))
    }

    /// `count` fresh random bytes from libcrypto's CSPRNG (`RAND_bytes`).
    public static func random(count: Int) throws -> SecretBuffer {
        let b = SecretBuffer(count: count)
        guard RAND_bytes(b.base.assumingMemoryBound(to: UInt8.self), Int32(count)) == 1 else {
            throw CodedError(.sealCrypto, "libcrypto's RAND_bytes failed")
        }
        return b
    }

    /// The lower-case hex of these bytes, as AEM's `hex` (`xxd -ps | tr -dc 0-9a-f`) writes it:
    /// no newline.
    public func lowerHex() -> SecretBuffer {
        let out = SecretBuffer(count: count * 2)
        let digits = Array("0123456789abcdef".utf8)
        let src = base.assumingMemoryBound(to: UInt8.self)
        let dst = out.base.assumingMemoryBound(to: UInt8.self)
        for i in 0..<count {
            dst[2 * i] = digits[Int(src[i] >> 4)]
            dst[2 * i + 1] = digits[Int(src[i] & 0x0F)]
        }
        return out
    }

    /// Equal contents, in time independent of where they differ.
    public func constantTimeEquals(_ other: SecretBuffer) -> Bool {
        guard count == other.count else { return false }
        return CRYPTO_memcmp(base, other.base, count) == 0
    }

    /// Reads a whole regular file of at most `limit` bytes (an AEM secret).
    /// `singleLink`: refuse a file with another hard link (an AEM secret: a link to a file of
    /// someone else's, planted in the secrets directory, would be sealed and shown at boot).
    public static func read(path: String, limit: Int, singleLink: Bool = false) throws -> SecretBuffer {
        // A FIFO is refused before it is opened (opening it would wait for a writer forever).
        let fd = try RegularFile.open(path, flags: O_RDONLY | O_NOFOLLOW) { e in
            CodedError(.sealIO, "\(path): \(Errno(e))")
        }
        defer { close(fd) }
        var st = stat()
        guard fstat(fd, &st) == 0 else { throw CodedError(.sealIO, "\(path): \(Errno.current)") }
        if singleLink && st.st_nlink != 1 {
            throw CodedError(.sealRefused, "\(path) has \(st.st_nlink) hard links: a secret is a file of its own (another name may be someone else's file, which would be sealed and shown at boot); copy it, nothing was sealed")
        }
        guard st.st_size <= limit else { throw CodedError(.sealIO, "\(path): larger than \(limit) bytes") }
        let b = SecretBuffer(count: Int(st.st_size))
        var done = 0
        while done < b.count {
            let n = Glibc.read(fd, b.base + done, b.count - done)
            if n < 0 && errno == EINTR { continue }
            if n < 0 { throw CodedError(.sealIO, "\(path): \(Errno.current)") }
            if n == 0 { throw CodedError(.sealIO, "\(path): changed size while read") }
            done += n
        }
        return b
    }
}
