// SPDX-License-Identifier: Apache-2.0
internal import CTSS2
import AEMPCR
import Glibc

/// A sealed data object as `tpm2_create -C PARENT -L POLICY -i DATA -u key.pub -r key.priv`
/// makes it (tpm2-tools 5, `tools/tpm2_create.c` and `lib/files.c`): the two files are the
/// TPM2B_PUBLIC and the TPM2B_PRIVATE the TPM returned, marshaled as tpm2-tss's
/// `Tss2_MU_TPM2B_PUBLIC_Marshal` / `Tss2_MU_TPM2B_PRIVATE_Marshal` write them (a big-endian
/// 16-bit size, then the structure), with no header of their own.
public struct TPM2SealedObject: Sendable {
    /// key.pub
    public let publicBytes: [UInt8]
    /// key.priv (the sensitive part, encrypted by the TPM under the parent)
    public let privateBytes: [UInt8]
}

extension TPM2Device {
    /// AEM's storage root key (qubes-antievilmaid `anti-evil-maid-lib-tpm2`: `TPM2_SRK_HANDLE`,
    /// the TCG provisioning guidance's persistent SRK handle).
    public static let aemSRKHandle: UInt32 = 0x8100_0001

    /// The object attributes tpm2-tools gives a sealing object with a policy and no password:
    /// its defaults (fixedTPM, fixedParent, sensitiveDataOrigin, userWithAuth, decrypt, sign)
    /// without sign, decrypt and sensitiveDataOrigin (data given: `-i`) and without userWithAuth
    /// (a policy and no `-p`): only a policy session that satisfies authPolicy can unseal it.
    public static let sealingObjectAttributes: UInt32 = 0x0000_0002 /* fixedTPM */ | 0x0000_0010 /* fixedParent */

    /// Creates a keyed-hash object holding `data`, under the persistent `parent` (whose
    /// password is `parentAuth`), unsealable only through `authPolicy` (SHA-256 name and
    /// policy hash, as tpm2-tools' defaults).
    ///
    /// Neither the password nor the data cross to the TPM in clear (`tpm2_create -P str:…
    /// -i -`, which AEM runs, sends both in clear): TPM2_Create is authorised by an HMAC
    /// session salted with a secret encrypted to the parent's public key and bound to the
    /// parent (its session key derives from the salt and the password), with AES-128-CFB
    /// parameter encryption (`decrypt`: the TPM2B_SENSITIVE_CREATE goes encrypted). The
    /// password is only the HMAC's key; someone who sees the bus, or a logging TCTI, sees an
    /// encrypted salt, nonces, HMACs and the encrypted parameter. The session is flushed on
    /// every path, and every copy of the password and data made here is wiped.
    public func createSealedObject(parent: UInt32 = TPM2Device.aemSRKHandle, parentAuth: UnsafeRawBufferPointer,
                                   data: UnsafeRawBufferPointer, authPolicy: Digest) throws -> TPM2SealedObject {
        guard authPolicy.algorithm == .sha256 else {
            throw CodedError(.tpmError, "the sealing object's policy must be a SHA-256 digest, not \(authPolicy.algorithm)")
        }
        guard parentAuth.count <= 64 else {
            throw CodedError(.tpmError, "the SRK password is longer than a TPM accepts (64 bytes)")
        }
        guard data.count > 0 && data.count <= 128 else {
            throw CodedError(.tpmError, "sealed data must be 1 to 128 bytes, not \(data.count)")
        }
        let hex = String(parent, radix: 16)
        var parentTR: UInt32 = 0
        var rc = command {
            Esys_TR_FromTPMPublic(esys, parent, aempcr_esys_tr_none(), aempcr_esys_tr_none(), aempcr_esys_tr_none(), &parentTR)
        }
        guard rc == 0 else {
            if TPM2Device.formatOne(rc, is: 0x0B) {  // TPM_RC_HANDLE
                throw CodedError(.tpmError, "there is no persistent key at 0x\(hex) (AEM's SRK): set up AEM first (anti-evil-maid-tpm-setup)")
            }
            throw TPM2Device.error(rc, doing: "finding the SRK at 0x\(hex)")
        }
        defer {
            // ESYS keeps the password in the parent's resource and frees it unwiped: overwrite
            // it with the empty value (the whole TPM2B_AUTH is copied) before closing.
            var empty = TPM2B_AUTH()
            _ = Esys_TR_SetAuth(esys, parentTR, &empty)
            Esys_TR_Close(esys, &parentTR)
        }

        var auth = TPM2B_AUTH()
        auth.size = UInt16(parentAuth.count)
        withUnsafeMutableBytes(of: &auth.buffer) { dst in
            if let src = parentAuth.baseAddress { dst.baseAddress!.copyMemory(from: src, byteCount: parentAuth.count) }
        }
        rc = Esys_TR_SetAuth(esys, parentTR, &auth)
        wipe(&auth)
        guard rc == 0 else { throw TPM2Device.error(rc, doing: "setting the SRK password") }

        let session = try startSaltedSession(parentTR, hex: hex)
        defer { _ = command { Esys_FlushContext(esys, session) } }

        var sensitive = TPM2B_SENSITIVE_CREATE()
        defer { wipe(&sensitive) }
        sensitive.sensitive.data.size = UInt16(data.count)
        withUnsafeMutableBytes(of: &sensitive.sensitive.data.buffer) { dst in
            dst.baseAddress!.copyMemory(from: data.baseAddress!, byteCount: data.count)
        }

        var template = TPM2B_PUBLIC()
        template.publicArea.type = 0x0008          // TPM2_ALG_KEYEDHASH
        template.publicArea.nameAlg = 0x000B       // TPM2_ALG_SHA256
        template.publicArea.objectAttributes = TPM2Device.sealingObjectAttributes
        template.publicArea.authPolicy.size = 32
        withUnsafeMutableBytes(of: &template.publicArea.authPolicy.buffer) { dst in
            for (i, b) in authPolicy.bytes.enumerated() { dst[i] = b }
        }
        template.publicArea.parameters.keyedHashDetail.scheme.scheme = 0x0010  // TPM2_ALG_NULL
        template.publicArea.unique.keyedHash.size = 0

        var outsideInfo = TPM2B_DATA()
        var creationPCR = TPML_PCR_SELECTION()
        var outPrivate: UnsafeMutablePointer<TPM2B_PRIVATE>?
        var outPublic: UnsafeMutablePointer<TPM2B_PUBLIC>?
        var creationData: UnsafeMutablePointer<TPM2B_CREATION_DATA>?
        var creationHash: UnsafeMutablePointer<TPM2B_DIGEST>?
        var ticket: UnsafeMutablePointer<TPMT_TK_CREATION>?
        rc = command {
            Esys_Create(esys, parentTR, session, aempcr_esys_tr_none(), aempcr_esys_tr_none(),
                        &sensitive, &template, &outsideInfo, &creationPCR,
                        &outPrivate, &outPublic, &creationData, &creationHash, &ticket)
        }
        defer {
            if let outPrivate { Esys_Free(outPrivate) }
            if let outPublic { Esys_Free(outPublic) }
            if let creationData { Esys_Free(creationData) }
            if let creationHash { Esys_Free(creationHash) }
            if let ticket { Esys_Free(ticket) }
        }
        guard rc == 0, let outPrivate, let outPublic else {
            if TPM2Device.formatOne(rc, is: 0x0E) || TPM2Device.formatOne(rc, is: 0x22) {  // TPM_RC_AUTH_FAIL, _BAD_AUTH
                throw CodedError(.tpmError, "the SRK password is wrong (the TPM counts this failure against its dictionary-attack limit)")
            }
            throw TPM2Device.error(rc, doing: "creating the sealing object under 0x\(hex)")
        }
        return TPM2SealedObject(publicBytes: try TPM2Device.marshal(outPublic, Tss2_MU_TPM2B_PUBLIC_Marshal, "TPM2B_PUBLIC"),
                                privateBytes: try TPM2Device.marshal(outPrivate, Tss2_MU_TPM2B_PRIVATE_Marshal, "TPM2B_PRIVATE"))
    }

    /// TPM2_StartAuthSession of an HMAC session salted with `key` (ESYS draws the salt and
    /// encrypts it to the key's public part, which it read with TPM2_ReadPublic) and bound to
    /// it (the key's password, set beforehand, enters the session key), SHA-256, AES-128-CFB
    /// parameter encryption of the command's first parameter (`decrypt`); `continueSession`
    /// stays set, so that the caller's flush ends it whether the command worked or not.
    private func startSaltedSession(_ key: UInt32, hex: String) throws -> UInt32 {
        var symmetric = TPMT_SYM_DEF()
        symmetric.algorithm = 0x0006               // TPM2_ALG_AES
        symmetric.keyBits.aes = 128
        symmetric.mode.aes = 0x0043                // TPM2_ALG_CFB
        var session: UInt32 = 0
        var rc = command {
            Esys_StartAuthSession(esys, key, key, aempcr_esys_tr_none(), aempcr_esys_tr_none(), aempcr_esys_tr_none(),
                                  nil, 0x00 /* TPM2_SE_HMAC */, &symmetric, 0x000B /* TPM2_ALG_SHA256 */, &session)
        }
        guard rc == 0 else { throw TPM2Device.error(rc, doing: "starting a salted session with the SRK at 0x\(hex)") }
        let decrypt: UInt8 = 0x20, continueSession: UInt8 = 0x01   // TPMA_SESSION_DECRYPT, _CONTINUESESSION
        rc = Esys_TRSess_SetAttributes(esys, session, decrypt | continueSession, 0xFF)
        guard rc == 0 else {
            _ = command { Esys_FlushContext(esys, session) }
            throw TPM2Device.error(rc, doing: "setting the session's attributes")
        }
        return session
    }

    /// Zeroes a local holding a secret with glibc's `explicit_bzero`: a plain `memset` of a
    /// local that is dead afterwards is a store the optimizer may drop.
    private func wipe<T>(_ value: inout T) {
        withUnsafeMutableBytes(of: &value) { explicit_bzero($0.baseAddress!, $0.count) }
    }

    /// A TPM response code of format one (TPM 2.0 Part 2, 6.6.3: bit 7 set) from the TPM itself
    /// (layer 0) whose error number (bits 0-5) is `number`, whatever handle, parameter or
    /// session it names.
    static func formatOne(_ rc: UInt32, is number: UInt32) -> Bool {
        rc >> 16 == 0 && rc & 0x80 != 0 && rc & 0x3F == number
    }

    static func marshal<T>(_ value: UnsafeMutablePointer<T>,
                           _ f: (UnsafePointer<T>?, UnsafeMutablePointer<UInt8>?, Int, UnsafeMutablePointer<Int>?) -> UInt32,
                           _ name: String) throws -> [UInt8] {
        var buffer = [UInt8](repeating: 0, count: MemoryLayout<T>.size + 16)
        var offset = 0
        let rc = buffer.withUnsafeMutableBufferPointer { f(value, $0.baseAddress, $0.count, &offset) }
        guard rc == 0 else { throw CodedError(.tpmError, "tpm2-tss could not marshal the \(name) the TPM returned: \(decode(rc))") }
        return Array(buffer.prefix(offset))
    }
}
