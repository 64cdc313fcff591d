// SPDX-License-Identifier: Apache-2.0
import Foundation
import Testing
@testable import AEMPCRSeal
@testable import AEMPCR

/// secret.X.sealed2 as AEM's tpmsealdata writes it, checked against openssl(1) itself.
@Suite struct OpenSSLEncTests {
    static let plaintexts: [[UInt8]] = [
        Array("my AEM text secret\n".utf8),
        [],                                                   // an empty secret file
        (0..<20).map { UInt8(($0 * 37 + 11) & 0xFF) },        // secret.fre: 20 random-like bytes
        (0..<4099).map { UInt8(($0 * 131 + 7) & 0xFF) },      // several AES blocks, not a multiple of 16
    ]

    /// Our file decrypts with `openssl enc -d -aes-256-ctr -pbkdf2 -kfile`, byte for byte, with
    /// the password file written as AEM's pipeline writes it (hex, no newline) and with a
    /// newline (which -kfile strips).
    @Test func opensslDecryptsWhatWeWrite() throws {
        guard let openssl = tool("openssl") else { return }
        let dir = try tempDir()
        let key = try SecretBuffer.random(count: 16)
        let hex = key.lowerHex()
        let pw = hex.withUnsafeBytes { Array($0) }
        #expect(pw.count == 32 && pw.allSatisfy { Array("0123456789abcdef".utf8).contains($0) })
        for (i, plain) in Self.plaintexts.enumerated() {
            let sealed = try OpenSSLEnc.encrypt(SecretBuffer(copying: plain), password: hex)
            #expect(sealed.count == 16 + plain.count)
            #expect(Array(sealed.prefix(8)) == Array("Salted__".utf8))
            try write(sealed, to: dir + "/s\(i).sealed2")
            for (n, pwFile) in [(0, pw), (1, pw + [0x0A])] {
                try write(pwFile, to: dir + "/pw\(n)")
                let r = try run(openssl, ["enc", "-d", "-aes-256-ctr", "-pbkdf2", "-kfile", dir + "/pw\(n)",
                                          "-in", dir + "/s\(i).sealed2", "-out", dir + "/out\(i)-\(n)"])
                #expect(r.status == 0, "\(r.stderr)")
                let out = try Data(contentsOf: URL(fileURLWithPath: dir + "/out\(i)-\(n)"))
                #expect(Array(out) == plain, "plaintext \(i), password file \(n)")
            }
        }
    }

    /// With the same salt (-S), openssl's ciphertext is ours byte for byte (openssl writes no
    /// header when the salt is given); and we decrypt what openssl encrypts with a fresh salt.
    @Test func sameBytesAsOpensslAndBack() throws {
        guard let openssl = tool("openssl") else { return }
        let dir = try tempDir()
        let pwText = "00112233445566778899aabbccddeeff"
        try write(Array(pwText.utf8), to: dir + "/pw")
        let salt: [UInt8] = [0xde, 0xad, 0xbe, 0xef, 0x01, 0x02, 0x03, 0x04]
        for (i, plain) in Self.plaintexts.enumerated() {
            try write(plain, to: dir + "/p\(i)")
            let r = try run(openssl, ["enc", "-e", "-aes-256-ctr", "-pbkdf2", "-kfile", dir + "/pw", "-S", "deadbeef01020304",
                                      "-in", dir + "/p\(i)", "-out", dir + "/o\(i)"])
            #expect(r.status == 0, "\(r.stderr)")
            let theirs = Array(try Data(contentsOf: URL(fileURLWithPath: dir + "/o\(i)")))
            let ours = try OpenSSLEnc.encrypt(SecretBuffer(copying: plain), password: SecretBuffer(copying: Array(pwText.utf8)), salt: salt)
            #expect(Array(ours.dropFirst(16)) == theirs, "plaintext \(i)")
            #expect(Array(ours[8..<16]) == salt)
            // openssl with its own salt, as AEM's tpmsealdata runs it; we decrypt it
            let e = try run(openssl, ["enc", "-e", "-aes-256-ctr", "-pbkdf2", "-kfile", dir + "/pw",
                                      "-in", dir + "/p\(i)", "-out", dir + "/f\(i)"])
            #expect(e.status == 0)
            let file = Array(try Data(contentsOf: URL(fileURLWithPath: dir + "/f\(i)")))
            let back = try OpenSSLEnc.decrypt(file, password: SecretBuffer(copying: Array(pwText.utf8)))
            #expect(back.withUnsafeBytes { Array($0) } == plain)
        }
        // a wrong password does not give the plaintext back (CTR has no check: only different bytes)
        let sealed = try OpenSSLEnc.encrypt(SecretBuffer(copying: Self.plaintexts[0]), password: SecretBuffer(copying: Array(pwText.utf8)))
        let wrong = try OpenSSLEnc.decrypt(sealed, password: SecretBuffer(copying: Array("x".utf8)))
        #expect(wrong.withUnsafeBytes { Array($0) } != Self.plaintexts[0])
    }
}

/// The TPM 1.2 files: each secret goes to the TPM 1.2 sealer (TPM12Sealer; here a recording
/// double) with the sealed values by PCR, and its bytes become secret.X.sealed2 (AEM's name
/// on both TPM families); absent secrets are skipped as AEM skips them.
@Test func tpm12FilesHandEachSecretAndThePCRsToTheSealer() throws {
    let dir = try tempDir()
    let layout = AEMLayout(secretsDir: dir + "/aem", sealedDir: dir + "/tpm/aem")
    try FileManager.default.createDirectory(atPath: layout.secretsDir, withIntermediateDirectories: true)
    try write(Array("text".utf8), to: layout.secretPath("txt"))
    try write([1, 2, 3], to: layout.secretPath("fre"))
    var values = PCRValues()
    for pcr: PCRIndex in [13, 17, 18, 19] {
        values[.sha1, pcr] = Digest(.sha1, bytes: Array(repeating: UInt8(pcr.rawValue), count: 20))!
    }
    let selection = try PCRSelection(parsing: "sha1:13,17,18,19")
    let record = SealedPrediction(label: "aem", sealedAt: "20261130T000000Z", selection: selection,
                                  policyDigest: .zeros(.sha256), pcrs: values, events: [])
    var calls = [([UInt8], [UInt32: [UInt8]])]()
    // The sealer gets the secret in its wiping buffer, never an array copy that would outlive it.
    let (files, dropping) = try AEMSealer.tpm12Files(values: values, layout: layout, prediction: record) {
        (plain: SecretBuffer, pcrs) in
        let bytes = plain.withUnsafeBytes { Array($0) }
        calls.append((bytes, pcrs))
        return Array(bytes.reversed())
    }
    #expect(files.map(\.name) == ["secret.txt.sealed2", "secret.fre.sealed2", "aem-pcr-prediction.json"])
    #expect(dropping == ["secret.txt.sealed", "secret.fre.sealed"])
    #expect(calls.map(\.0) == [Array("text".utf8), [1, 2, 3]])
    #expect(calls.allSatisfy { $0.1 == [13: Array(repeating: 13, count: 20), 17: Array(repeating: 17, count: 20),
                                        18: Array(repeating: 18, count: 20), 19: Array(repeating: 19, count: 20)] })
    #expect(files[0].bytes == Array("txet".utf8))
}
