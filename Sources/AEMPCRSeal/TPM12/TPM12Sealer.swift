// SPDX-License-Identifier: Apache-2.0
// Seals data on a TPM 1.2 to GIVEN PCR values, writing tpm-tools' `tpm_sealdata` file, so that
// `tpm_unsealdata` (what Qubes AEM runs at boot) opens it once the PCRs hold those values.
//
// tpm_sealdata (tpm-tools 1.3.9, src/cmds/tpm_sealdata.c) reads the current PCRs into the PCR
// object it hands to Tspi_Data_Seal; TPM_Seal itself takes any digestAtRelease. Everything else
// here is done as tpm_sealdata does it:
// - a 2048-bit, volatile, non-migratable storage key with usage secret "password" (plain),
//   created under the SRK (UUID 0…01 in tcsd's system store), its TPM_KEY12 blob in the file;
// - 32 random bytes from the TPM (Tspi_TPM_GetRandom) sealed under that key, secret "password",
//   to a TPM_PCR_INFO_LONG with localityAtRelease = all five localities when a PCR above 15 is
//   selected (a short TPM_PCR_INFO otherwise); the TPM_STORED_DATA12 blob in the file;
// - the data encrypted with AES-256-CBC, key = those 32 bytes, IV = "IBM SEALIBM SEAL",
//   PKCS#7 padding (EVP's default);
// - the SRK secret: the well-known one (20 zero bytes, TSS_SECRET_MODE_SHA1; tpm_sealdata -z),
//   or a password hashed by trousers (TSS_SECRET_MODE_PLAIN), as tpm_sealdata reads it.
// The file (include/tpm_seal.h, lib/tpm_unseal.c) is text: "-----BEGIN TSS-----", "-----TSS
// KEY-----", the key blob in base64, "-----ENC KEY-----", "Symmetric Key: AES-256-CBC", the
// sealed blob in base64, "-----ENC DAT-----", the ciphertext in base64, "-----END TSS-----";
// each line ends in "\n" and base64 comes in lines of 64 characters (OpenSSL's base64 BIO).
internal import CTspi
import CLibcrypto
import AEMPCR
import AEMPCRTPM
import Glibc

/// Pre-seals data for a TPM 1.2 through trousers (tcsd), in `tpm_sealdata`'s file format.
public enum TPM12Sealer {
    /// The secret of the TPM's storage root key, as AEM knows it: the well-known secret when
    /// AEM was set up without an SRK password (AEM then runs `tpm_unsealdata -z`), else the
    /// password it prompts for at boot (its bytes, without a newline; wiped when the buffer is
    /// freed, never copied into an array here).
    public enum SRKSecret {
        case wellKnown
        case password(SecretBuffer)
    }

    /// The usage secret tpm_sealdata gives its storage key and sealed key (`TPMSEAL_SECRET`).
    static let objectSecret = Array("password".utf8)
    /// tpm_sealdata's AES-256-CBC initialisation vector (`TPMSEAL_IV`).
    static let iv = Array("IBM SEALIBM SEAL".utf8)

    /// Seals `plaintext` so that it is released only while each PCR in `toPCRs` holds the
    /// 20-byte value given, and returns the complete `tpm_sealdata`-format file. `tcsHost` is
    /// the machine whose tcsd to use (`nil`: trousers' default, tcsd on localhost, or
    /// `TSS_TCSD_HOSTNAME`; trousers takes tcsd's port from `TSS_TCSD_PORT`, default 30003).
    /// The symmetric key and this function's copies of secrets are zeroed after use and never
    /// leave it; `plaintext` and an SRK password stay in the caller's buffers, which wipe
    /// themselves. Nothing is printed or written: the caller writes the returned file (0600,
    /// beside its target).
    public static func seal(_ plaintext: SecretBuffer, toPCRs: [UInt32: [UInt8]], tcsHost: String? = nil,
                            srk: SRKSecret = .wellKnown) throws -> [UInt8] {
        try check(toPCRs)
        return try seal(plaintext, toPCRs: toPCRs, context: Context(library(), host: tcsHost), srk: srk)
    }

    /// trousers, loaded once per process (`TSPILibrary`), or the one sentence naming the package.
    static func library() throws -> TSPILibrary {
        switch TSPILibrary.shared {
        case .success(let l): return l
        case .failure(let e): throw e
        }
    }

    /// `seal` through an open context (one tcsd connection for a whole set).
    static func seal(_ plaintext: SecretBuffer, toPCRs: [UInt32: [UInt8]], context: Context, srk: SRKSecret) throws -> [UInt8] {
        try check(toPCRs)
        // The AES key lives only in SecretBuffers (locked, wiped when freed); no Swift array
        // holds it, so no copy-on-write copy can be left behind unwiped.
        let key = try context.random(32)
        let (keyBlob, sealedKey) = try context.sealKey(key, pcrs: toPCRs, srk: srk)
        let ciphertext = try plaintext.withUnsafeBytes { try encrypt($0, key: key) }
        var file = Array("-----BEGIN TSS-----\n-----TSS KEY-----\n".utf8)
        file += base64Lines(keyBlob)
        file += Array("-----ENC KEY-----\nSymmetric Key: AES-256-CBC\n".utf8)
        file += base64Lines(sealedKey)
        file += Array("-----ENC DAT-----\n".utf8)
        file += base64Lines(ciphertext)
        file += Array("-----END TSS-----\n".utf8)
        return file
    }

    /// The current values of `pcrs` on the TPM 1.2 behind tcsd (`Tspi_TPM_PcrRead`, what
    /// tpm_sealdata reads): the TPM that `seal` seals on and that AEM's tpm_unsealdata asks.
    /// `tcsHost` as for `seal`.
    public static func readPCRs(_ pcrs: [UInt32], tcsHost: String? = nil) throws -> [UInt32: [UInt8]] {
        for i in pcrs where i >= TPM12Composite.pcrCount {
            throw CodedError(.tpm12BadPCR, "PCR \(i) does not exist on a TPM 1.2 (PCRs 0-23)")
        }
        return try readPCRs(pcrs, context: Context(library(), host: tcsHost))
    }

    /// `readPCRs` through an open context.
    static func readPCRs(_ pcrs: [UInt32], context: Context) throws -> [UInt32: [UInt8]] {
        for i in pcrs where i >= TPM12Composite.pcrCount {
            throw CodedError(.tpm12BadPCR, "PCR \(i) does not exist on a TPM 1.2 (PCRs 0-23)")
        }
        let library = context.lib
        var tpm: TSS.Handle = 0
        try context.check(context.tcsd { library.contextGetTpmObject(context.handle, &tpm) }, "Tspi_Context_GetTpmObject")
        var out = [UInt32: [UInt8]]()
        for i in Set(pcrs).sorted() {
            var n: UInt32 = 0
            var p: UnsafeMutablePointer<UInt8>? = nil
            try context.check(context.tcsd { library.tpmPcrRead(tpm, i, &n, &p) }, "Tspi_TPM_PcrRead(PCR \(i))")
            guard let p else { throw CodedError(.tpm12TSSFailed, "Tspi_TPM_PcrRead(PCR \(i)) returned no data") }
            let value = Array(UnsafeBufferPointer(start: p, count: Int(n)))
            _ = library.contextFreeMemory(context.handle, p)
            guard value.count == 20 else {
                throw CodedError(.tpm12TSSFailed, "Tspi_TPM_PcrRead(PCR \(i)) returned \(value.count) bytes, not a 20-byte SHA-1 value")
            }
            out[i] = value
        }
        return out
    }

    /// PCR indices below 24, 20-byte values, at least one PCR.
    static func check(_ pcrs: [UInt32: [UInt8]]) throws {
        guard !pcrs.isEmpty else {
            throw CodedError(.tpm12BadPCR, "no PCR to seal to: name at least one PCR and its value")
        }
        for (i, v) in pcrs.sorted(by: { $0.key < $1.key }) {
            guard i < TPM12Composite.pcrCount else {
                throw CodedError(.tpm12BadPCR, "PCR \(i) does not exist on a TPM 1.2 (PCRs 0-23)")
            }
            guard v.count == 20 else {
                throw CodedError(.tpm12BadPCR, "PCR \(i): a TPM 1.2 value is 20 bytes (SHA-1), not \(v.count)")
            }
        }
    }

    /// `seal` for a plaintext that is not secret (tests), or already the caller's array to wipe.
    public static func seal(_ plaintext: [UInt8], toPCRs: [UInt32: [UInt8]], tcsHost: String? = nil,
                            srk: SRKSecret = .wellKnown) throws -> [UInt8] {
        try seal(SecretBuffer(copying: plaintext), toPCRs: toPCRs, tcsHost: tcsHost, srk: srk)
    }

    /// AES-256-CBC with PKCS#7 padding under tpm_sealdata's IV.
    static func encrypt(_ plaintext: [UInt8], key: SecretBuffer) throws -> [UInt8] {
        try plaintext.withUnsafeBytes { try encrypt($0, key: key) }
    }

    static func encrypt(_ plaintext: UnsafeRawBufferPointer, key: SecretBuffer) throws -> [UInt8] {
        guard key.count == 32 else { throw CodedError(.tpm12CryptoFailed, "an AES-256 key is 32 bytes, not \(key.count)") }
        guard let ctx = EVP_CIPHER_CTX_new() else { throw CodedError(.tpm12CryptoFailed, "libcrypto: out of memory") }
        defer { EVP_CIPHER_CTX_free(ctx) }  // cleanses the key schedule
        let started = key.withUnsafeBytes { k in
            EVP_EncryptInit_ex(ctx, EVP_aes_256_cbc(), nil, k.baseAddress!.assumingMemoryBound(to: UInt8.self), iv)
        }
        guard started == 1 else {
            throw CodedError(.tpm12CryptoFailed, "libcrypto refused AES-256-CBC encryption")
        }
        var out = [UInt8](repeating: 0, count: plaintext.count + 16)
        var total = 0
        var n: Int32 = 0
        // EVP takes int lengths: feed at most 1 GiB at a time.
        var offset = 0
        while offset < plaintext.count {
            let chunk = min(plaintext.count - offset, 1 << 30)
            let src = plaintext.baseAddress!.assumingMemoryBound(to: UInt8.self)
            let ok = out.withUnsafeMutableBufferPointer { dst in
                EVP_EncryptUpdate(ctx, dst.baseAddress! + total, &n, src + offset, Int32(chunk))
            }
            guard ok == 1 else { throw CodedError(.tpm12CryptoFailed, "libcrypto AES-256-CBC encryption failed") }
            total += Int(n)
            offset += chunk
        }
        let ok = out.withUnsafeMutableBufferPointer { EVP_EncryptFinal_ex(ctx, $0.baseAddress! + total, &n) }
        guard ok == 1 else { throw CodedError(.tpm12CryptoFailed, "libcrypto AES-256-CBC padding failed") }
        total += Int(n)
        return Array(out.prefix(total))
    }

    /// Base64 in lines of 64 characters, each ending in "\n", as OpenSSL's base64 BIO writes.
    static func base64Lines(_ bytes: [UInt8]) -> [UInt8] {
        let alphabet = Array("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/".utf8)
        var text = [UInt8]()
        text.reserveCapacity((bytes.count + 2) / 3 * 4 + bytes.count / 48 + 1)
        var column = 0
        var i = 0
        while i < bytes.count {
            let n = min(3, bytes.count - i)
            let b0 = UInt32(bytes[i])
            let b1 = n > 1 ? UInt32(bytes[i + 1]) : 0
            let b2 = n > 2 ? UInt32(bytes[i + 2]) : 0
            let v = b0 << 16 | b1 << 8 | b2
            text.append(alphabet[Int(v >> 18 & 63)])
            text.append(alphabet[Int(v >> 12 & 63)])
            text.append(n > 1 ? alphabet[Int(v >> 6 & 63)] : UInt8(ascii: "="))
            text.append(n > 2 ? alphabet[Int(v & 63)] : UInt8(ascii: "="))
            column += 4
            if column == 64 { text.append(UInt8(ascii: "\n")); column = 0 }
            i += 3
        }
        if column > 0 { text.append(UInt8(ascii: "\n")) }
        return text
    }

    static func cleanse(_ bytes: inout [UInt8]) {
        bytes.withUnsafeMutableBytes { b in
            if let p = b.baseAddress { OPENSSL_cleanse(p, b.count) }
        }
    }

    /// One trousers context, connected to tcsd; closing it frees every object and buffer
    /// trousers handed out.
    final class Context {
        let lib: TSPILibrary
        let handle: TSS.Handle
        let host: String
        /// tcsd's address, for the watchdog's line.
        let transport: String

        /// Runs one trousers call that talks to tcsd (and the TPM behind it) under the
        /// watchdog's bound; `seconds` overrides it for this call.
        func tcsd<T>(seconds: Double? = nil, _ body: () throws -> T) rethrows -> T {
            try TPMWatchdog.shared.guarding(transport, seconds: seconds, body)
        }

        /// The bound on Tspi_Key_CreateKey: a TPM 1.2 generates an RSA-2048 key in it, which
        /// takes some chips a minute.
        static let keyGenerationSeconds = 120.0

        init(_ lib: TSPILibrary, host: String?) throws {
            self.lib = lib
            self.host = host ?? "localhost"
            let port = getenv("TSS_TCSD_PORT").map { String(cString: $0) } ?? "30003"
            let name = host ?? getenv("TSS_TCSD_HOSTNAME").map { String(cString: $0) } ?? "localhost"
            transport = "tcsd at \(name):\(port)"
            var h: TSS.Handle = 0
            let r = lib.contextCreate(&h)
            guard r == 0 else {
                throw CodedError(.tpm12TSSFailed, "Tspi_Context_Create failed: \(Context.hex(r)) (\(lib.describe(r)))")
            }
            handle = h
            var wide: [UInt16]? = host.map { Array($0.utf16) + [0] }
            let c: TSS.Result
            if wide != nil {
                c = tcsd { wide!.withUnsafeMutableBufferPointer { lib.contextConnect(h, $0.baseAddress) } }
            } else {
                c = tcsd { lib.contextConnect(h, nil) }
            }
            wide = nil
            try check(c, "Tspi_Context_Connect")
        }

        deinit { _ = tcsd { lib.contextClose(handle) } }

        static func hex(_ r: TSS.Result) -> String { "0x" + String(r, radix: 16) }

        /// Turns a trousers result into the error a user can act on.
        func check(_ r: TSS.Result, _ function: String) throws {
            guard r != 0 else { return }
            let code = TSS.code(r), layer = TSS.layer(r)
            if [TSS.eCommFailure, TSS.eNoConnection, TSS.eConnectionFailed, TSS.eConnectionBroken]
                .contains(code) && layer != 0 {
                throw CodedError(.tpm12TcsdUnreachable, "cannot reach tcsd on \(host) (\(function): "
                    + "\(lib.describe(r))): start tcsd (trousers), as AEM does with `systemctl start tcsd`")
            }
            if layer == 0 && code == TSS.tpmNoSRK
                || function == "Tspi_Context_LoadKeyByUUID" && code == TSS.ePSKeyNotFound {
                throw CodedError(.tpm12NoOwner, "the TPM has no owner (or tcsd lost its SRK): take "
                    + "ownership as AEM does, with anti-evil-maid-tpm-setup")
            }
            if layer == 0 && (code == TSS.tpmDisabled || code == TSS.tpmDeactivated) {
                throw CodedError(.tpm12Disabled, "the TPM is disabled or deactivated (\(function)): "
                    + "enable and activate it in the firmware setup")
            }
            throw CodedError(.tpm12TSSFailed, "\(function) failed: \(Context.hex(r)) (\(lib.describe(r)))")
        }

        func object(_ type: UInt32, _ flags: UInt32, _ what: String) throws -> TSS.Handle {
            var h: TSS.Handle = 0
            try check(lib.contextCreateObject(handle, type, flags, &h), "Tspi_Context_CreateObject(\(what))")
            return h
        }

        /// Sets a policy secret; the copy handed to trousers is cleansed afterwards.
        func setSecret(_ policy: TSS.Handle, mode: UInt32, _ secret: [UInt8], _ what: String) throws {
            try setSecret(policy, mode: mode, SecretBuffer(copying: secret), what)
        }

        /// Sets a policy secret from a buffer that wipes itself (trousers takes a non-const
        /// pointer: it gets a copy, cleansed when that copy is freed).
        func setSecret(_ policy: TSS.Handle, mode: UInt32, _ secret: SecretBuffer, _ what: String) throws {
            let s = SecretBuffer(count: secret.count)
            let r = s.withUnsafeMutableBytes { dst in
                secret.withUnsafeBytes { src in if src.count > 0 { dst.copyMemory(from: src) } }
                return lib.policySetSecret(policy, mode, UInt32(dst.count),
                                           dst.baseAddress?.assumingMemoryBound(to: UInt8.self))
            }
            try check(r, "Tspi_Policy_SetSecret(\(what))")
        }

        /// A new usage policy with tpm_sealdata's secret, assigned to `object`.
        func assignObjectSecret(to object: TSS.Handle, _ what: String) throws {
            let policy = try self.object(TSS.objectTypePolicy, TSS.policyUsage, "policy")
            try setSecret(policy, mode: TSS.secretModePlain, TPM12Sealer.objectSecret, what)
            try check(lib.policyAssignToObject(policy, object), "Tspi_Policy_AssignToObject(\(what))")
        }

        /// Random bytes from the TPM, straight into a SecretBuffer; trousers' copy is cleansed
        /// before it is freed.
        func random(_ count: UInt32) throws -> SecretBuffer {
            var tpm: TSS.Handle = 0
            try check(tcsd { lib.contextGetTpmObject(handle, &tpm) }, "Tspi_Context_GetTpmObject")
            var p: UnsafeMutablePointer<UInt8>? = nil
            try check(tcsd { lib.tpmGetRandom(tpm, count, &p) }, "Tspi_TPM_GetRandom")
            guard let p else { throw CodedError(.tpm12TSSFailed, "Tspi_TPM_GetRandom returned no data") }
            let bytes = SecretBuffer(count: Int(count))
            bytes.withUnsafeMutableBytes { $0.baseAddress!.copyMemory(from: p, byteCount: Int(count)) }
            OPENSSL_cleanse(p, Int(count))
            _ = lib.contextFreeMemory(handle, p)
            return bytes
        }

        /// A blob attribute, copied out of trousers' memory.
        func blob(_ object: TSS.Handle, _ flag: UInt32, _ sub: UInt32, _ what: String) throws -> [UInt8] {
            var n: UInt32 = 0
            var p: UnsafeMutablePointer<UInt8>? = nil
            try check(lib.getAttribData(object, flag, sub, &n, &p), "Tspi_GetAttribData(\(what))")
            guard let p, n > 0 else { throw CodedError(.tpm12TSSFailed, "Tspi_GetAttribData(\(what)) returned no data") }
            let bytes = Array(UnsafeBufferPointer(start: p, count: Int(n)))
            _ = lib.contextFreeMemory(handle, p)
            return bytes
        }

        /// Creates tpm_sealdata's storage key under the SRK and seals `key` with it to `pcrs`;
        /// returns the key's TPM_KEY12 blob and the TPM_STORED_DATA12 blob.
        func sealKey(_ key: SecretBuffer, pcrs: [UInt32: [UInt8]], srk: SRKSecret) throws -> ([UInt8], [UInt8]) {
            // The PCR object: the values at release, as tpm_sealdata would have read them.
            let long = pcrs.keys.contains { $0 > 15 }
            let pcrObject = try object(TSS.objectTypePCRs, long ? TSS.pcrsStructInfoLong : 0, "PCRs")
            for (i, value) in pcrs.sorted(by: { $0.key < $1.key }) {
                var v = value
                try check(lib.pcrCompositeSetPcrValue(pcrObject, i, UInt32(v.count), &v),
                          "Tspi_PcrComposite_SetPcrValue(PCR \(i))")
            }
            if long {
                try check(lib.pcrCompositeSetPcrLocality(pcrObject, TSS.allLocalities),
                          "Tspi_PcrComposite_SetPcrLocality")
            }

            // The SRK and its secret.
            var srkHandle: TSS.Handle = 0
            try check(tcsd { lib.contextLoadKeyByUUID(handle, TSS.psTypeSystem, TSS.srkUUID, &srkHandle) },
                      "Tspi_Context_LoadKeyByUUID")
            var srkPolicy: TSS.Handle = 0
            try check(lib.getPolicyObject(srkHandle, TSS.policyUsage, &srkPolicy), "Tspi_GetPolicyObject(SRK)")
            switch srk {
            case .wellKnown:
                try setSecret(srkPolicy, mode: TSS.secretModeSHA1, TSS.wellKnownSecret, "SRK")
            case .password(let p):
                try setSecret(srkPolicy, mode: TSS.secretModePlain, p, "SRK")
            }

            // The storage key under the SRK.
            let flags = TSS.keyTypeStorage | TSS.keySize2048 | TSS.keyVolatile | TSS.keyAuthorization
                | TSS.keyNotMigratable
            let storageKey = try object(TSS.objectTypeRSAKey, flags, "storage key")
            try assignObjectSecret(to: storageKey, "storage key")
            let created = tcsd(seconds: Context.keyGenerationSeconds) { lib.keyCreateKey(storageKey, srkHandle, 0) }
            if TSS.layer(created) == 0 && TSS.code(created) == TSS.tpmAuthFail {
                switch srk {
                case .wellKnown:
                    throw CodedError(.tpm12SRKAuthFailed, "the TPM's SRK does not take the well-known secret "
                        + "(AEM's tpm_z_srk prints no -z): give the SRK password AEM asks for at boot")
                case .password:
                    throw CodedError(.tpm12SRKAuthFailed, "the TPM's SRK refused the SRK password given "
                        + "(AEM runs tpm_z_srk: with -z the SRK takes the well-known secret)")
                }
            }
            try check(created, "Tspi_Key_CreateKey")
            try check(tcsd { lib.keyLoadKey(storageKey, srkHandle) }, "Tspi_Key_LoadKey")

            // The sealed symmetric key.
            let sealed = try object(TSS.objectTypeEncData, TSS.encDataSeal, "sealed data")
            try assignObjectSecret(to: sealed, "sealed data")
            // Tspi_Data_Seal takes a non-const pointer: it gets a copy in a SecretBuffer of its own.
            let k = SecretBuffer(count: key.count)
            let sealedRC = k.withUnsafeMutableBytes { dst in
                key.withUnsafeBytes { dst.copyMemory(from: $0) }
                return tcsd { lib.dataSeal(sealed, storageKey, UInt32(dst.count), dst.baseAddress!.assumingMemoryBound(to: UInt8.self), pcrObject) }
            }
            try check(sealedRC, "Tspi_Data_Seal")

            let sealedBlob = try blob(sealed, TSS.attribEncDataBlob, TSS.attribEncDataBlobBlob, "sealed data")
            let keyBlob = try blob(storageKey, TSS.attribKeyBlob, TSS.attribKeyBlobBlob, "storage key")
            return (keyBlob, sealedBlob)
        }
    }
}
