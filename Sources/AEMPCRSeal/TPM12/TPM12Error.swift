import AEMPCR

/// Why sealing on a TPM 1.2 through trousers failed: a stable code and one sentence a user can
/// act on. Never carries key material or plaintext.
public struct TPM12Error: AEMPCRError, Equatable {
    public enum Code: String, Sendable {
        /// libtspi.so.1 (or one of its functions) could not be loaded.
        case libraryMissing = "tpm12-libtspi-missing"
        /// tcsd does not answer.
        case tcsdUnreachable = "tpm12-tcsd-unreachable"
        /// The TPM has no owner, hence no SRK.
        case noOwner = "tpm12-no-owner"
        /// The SRK refused the secret given (well-known or password).
        case srkAuthFailed = "tpm12-srk-auth-failed"
        /// The TPM is disabled or deactivated.
        case tpmDisabled = "tpm12-disabled"
        /// A PCR index or value handed to the sealer is unusable.
        case badPCR = "tpm12-bad-pcr"
        /// A trousers call failed for another reason.
        case tss = "tpm12-tss-failed"
        /// libcrypto's AES-256-CBC failed.
        case crypto = "tpm12-crypto-failed"
        /// A file is not in tpm_sealdata's format, or its sealed key is malformed.
        case sealedFile = "tpm12-sealed-file-invalid"
    }

    public let code: Code
    public let message: String

    init(_ code: Code, _ message: String) {
        self.code = code
        self.message = message
    }

    public var errorCode: String { code.rawValue }
    public var description: String { message }

    static func libraryMissing(_ what: String) -> TPM12Error {
        TPM12Error(.libraryMissing, "cannot load trousers' \(what): install libtspi1 and trousers "
            + "(Debian) or trousers-lib and trousers (Fedora) to seal on a TPM 1.2")
    }
}
