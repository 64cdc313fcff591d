// Sealing the Anti Evil Maid secrets to predicted PCR values: AEM's file layout, written
// atomically; TPM 2.0 through AEMPCRTPM, TPM 1.2 through trousers loaded at run time.
import AEMPCR

/// What went wrong while sealing, with the file or step concerned.
public struct SealError: AEMPCRError {
    public enum Code: String, Sendable {
        case io = "seal-io"
        case crypto = "seal-crypto"
        case layout = "seal-layout"
        case refused = "seal-refused"
        case tpm = "seal-tpm"
        case unsupported = "seal-unsupported"
    }
    public let code: Code
    public let reason: String

    public init(_ code: Code, _ reason: String) {
        self.code = code
        self.reason = reason
    }

    public var errorCode: String { code.rawValue }
    public var description: String { reason }
}
