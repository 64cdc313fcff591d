// SPDX-License-Identifier: Apache-2.0
// Sealing the Anti Evil Maid secrets to predicted PCR values: AEM's file layout, written
// atomically; TPM 2.0 through AEMPCRTPM, TPM 1.2 through trousers loaded at run time.
import AEMPCR

/// Sealing's codes: AEM's files, the sealed set, and TPM 1.2 through trousers. A message never
/// carries key material or plaintext.
extension CodedError.Code {
    /// Reading or writing AEM's files failed, or the process could not be made safe to hold
    /// secrets (core dumps); the file or step is named.
    public static let sealIO = Self("seal-io")
    /// Encryption, decryption or randomness failed (libcrypto), or a secret did not decrypt back.
    public static let sealCrypto = Self("seal-crypto")
    /// AEM's files are not as AEM sets them up (no secret to seal, no SEAL line or one that does
    /// not parse, a missing key.pcrs …).
    public static let sealLayout = Self("seal-layout")
    /// Sealing refused before anything changed: a PCR not predicted, all 00 or all FF, a directory
    /// another user can write ….
    public static let sealRefused = Self("seal-refused")

    // PCR13: LUKS headers read through libcryptsetup.
    /// libcryptsetup.so.12 (or one of its functions) could not be loaded: PCR13 cannot be predicted.
    public static let luksLibcryptsetupMissing = Self("luks-libcryptsetup-missing")
    /// A LUKS UUID of the kernel command line with no header given (--luks-header) or found (/dev/disk/by-uuid).
    public static let luksHeaderNotFound = Self("luks-header-not-found")
    /// The LUKS device cannot be read: root is needed.
    public static let luksPermission = Self("luks-permission")
    /// A path given for a LUKS UUID is not a LUKS device, image or header backup.
    public static let luksNotLuks = Self("luks-not-luks")
    /// libcryptsetup could not back up a LUKS header, or the backup could not be read.
    public static let luksBackupFailed = Self("luks-backup-failed")
    /// A --luks-header UUID that the next boot's kernel command line does not name.
    public static let luksUuidNotOnCmdline = Self("luks-uuid-not-on-cmdline")

    /// libtspi.so.1 (or one of its functions) could not be loaded.
    public static let tpm12LibtspiMissing = Self("tpm12-libtspi-missing")
    /// tcsd does not answer.
    public static let tpm12TcsdUnreachable = Self("tpm12-tcsd-unreachable")
    /// The TPM has no owner, hence no SRK.
    public static let tpm12NoOwner = Self("tpm12-no-owner")
    /// The SRK refused the secret given (well-known or password).
    public static let tpm12SRKAuthFailed = Self("tpm12-srk-auth-failed")
    /// The TPM is disabled or deactivated.
    public static let tpm12Disabled = Self("tpm12-disabled")
    /// A PCR index or value handed to the sealer is unusable.
    public static let tpm12BadPCR = Self("tpm12-bad-pcr")
    /// A trousers call failed for another reason.
    public static let tpm12TSSFailed = Self("tpm12-tss-failed")
    /// libcrypto's AES-256-CBC failed.
    public static let tpm12CryptoFailed = Self("tpm12-crypto-failed")
    /// A file is not in tpm_sealdata's format, or its sealed key is malformed.
    public static let tpm12SealedFileInvalid = Self("tpm12-sealed-file-invalid")
}

extension CodedError {
    static func tpm12LibtspiMissing(_ what: String) -> CodedError {
        CodedError(.tpm12LibtspiMissing, "cannot load trousers' \(what): install libtspi1 and trousers "
            + "(Debian) or trousers-lib and trousers (Fedora) to seal on a TPM 1.2")
    }
}
