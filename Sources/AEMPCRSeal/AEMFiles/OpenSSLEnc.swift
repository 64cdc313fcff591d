// SPDX-License-Identifier: Apache-2.0
import AEMPCR
import CLibcrypto

/// The file format of `openssl enc -aes-256-ctr -pbkdf2 -e -kfile FILE` (OpenSSL 3, apps/enc.c),
/// which AEM's `tpmsealdata` writes and `tpmunsealdata` reads:
///
///     "Salted__" || salt (8 random bytes) || AES-256-CTR(key, iv, plaintext)
///
/// with key (32 bytes) || iv (16 bytes) = PBKDF2-HMAC-SHA256(password, salt, 10000 iterations,
/// 48 bytes): `-pbkdf2` sets 10000 iterations unless `-iter` is given, `-md` defaults to SHA-256.
/// `-kfile` takes the file's first line without its trailing CR/LF as the password; AEM gives
/// the lower-case hex of the 16 sealed bytes (32 characters, no newline). CTR has no padding:
/// the ciphertext is as long as the plaintext.
public enum OpenSSLEnc {
    public static let magic: [UInt8] = Array("Salted__".utf8)
    public static let saltLength = 8
    public static let iterations: Int32 = 10000

    /// Encrypts `plaintext` under `password` with a fresh salt (or `salt`, for tests).
    public static func encrypt(_ plaintext: SecretBuffer, password: SecretBuffer, salt: [UInt8]? = nil) throws -> [UInt8] {
        var s = salt ?? [UInt8](repeating: 0, count: saltLength)
        if salt == nil {
            guard RAND_bytes(&s, Int32(saltLength)) == 1 else { throw CodedError(.sealCrypto, "libcrypto's RAND_bytes failed") }
        }
        guard s.count == saltLength else { throw CodedError(.sealCrypto, "salt must be \(saltLength) bytes") }
        return magic + s + (try ctr(plaintext, password: password, salt: s).withUnsafeBytes { Array($0) })
    }

    /// Decrypts a file in this format (to check what was written before it replaces anything).
    public static func decrypt(_ file: [UInt8], password: SecretBuffer) throws -> SecretBuffer {
        guard file.count >= 16, Array(file.prefix(8)) == magic else {
            throw CodedError(.sealCrypto, "not an 'openssl enc' file with a salt (no 'Salted__' header)")
        }
        let body = SecretBuffer(copying: Array(file.dropFirst(16)))
        return try ctr(body, password: password, salt: Array(file[8..<16]))
    }

    /// AES-256-CTR under the PBKDF2 key and IV; the same operation both ways.
    static func ctr(_ input: SecretBuffer, password: SecretBuffer, salt: [UInt8]) throws -> SecretBuffer {
        let keyIV = SecretBuffer(count: 48)
        let ok = password.withUnsafeBytes { pw in
            keyIV.withUnsafeMutableBytes { out in
                PKCS5_PBKDF2_HMAC(pw.baseAddress?.assumingMemoryBound(to: CChar.self), Int32(pw.count),
                                  salt, Int32(salt.count), iterations, EVP_sha256(),
                                  48, out.baseAddress!.assumingMemoryBound(to: UInt8.self))
            }
        }
        guard ok == 1 else { throw CodedError(.sealCrypto, "libcrypto's PKCS5_PBKDF2_HMAC failed") }
        guard let ctx = EVP_CIPHER_CTX_new() else { throw CodedError(.sealCrypto, "libcrypto: out of memory") }
        defer { EVP_CIPHER_CTX_free(ctx) }
        let output = SecretBuffer(count: input.count)
        let status: Int32 = keyIV.withUnsafeBytes { kiv in
            let k = kiv.baseAddress!.assumingMemoryBound(to: UInt8.self)
            guard EVP_CipherInit_ex(ctx, EVP_aes_256_ctr(), nil, k, k + 32, 1) == 1 else { return 0 }
            var produced: Int32 = 0
            var total = 0
            let r: Int32 = input.withUnsafeBytes { inp in
                output.withUnsafeMutableBytes { out in
                    guard input.count > 0 else { return 1 }
                    return EVP_CipherUpdate(ctx, out.baseAddress!.assumingMemoryBound(to: UInt8.self), &produced,
                                            inp.baseAddress!.assumingMemoryBound(to: UInt8.self), Int32(inp.count))
                }
            }
            guard r == 1 else { return 0 }
            total += Int(produced)
            var tail = [UInt8](repeating: 0, count: 32)
            guard EVP_CipherFinal_ex(ctx, &tail, &produced) == 1, produced == 0 else { return 0 }
            return total == input.count ? 1 : 0
        }
        guard status == 1 else { throw CodedError(.sealCrypto, "libcrypto's AES-256-CTR failed") }
        return output
    }
}
