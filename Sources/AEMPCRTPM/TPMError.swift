import AEMPCR

/// Why the live TPM could not be read: one sentence a user can act on, never a bare number.
public struct TPMError: AEMPCRError {
    public enum Code: String, Sendable {
        case noDevice = "tpm-no-device"
        case permission = "tpm-permission"
        case unreachable = "tpm-unreachable"
        case bankNotActive = "tpm-bank-not-active"
        case lockout = "tpm-lockout"
        case notStarted = "tpm-not-started"
        case busy = "tpm-busy"
        case counterMoved = "tpm-pcrs-changing"
        case tpm = "tpm-error"
        case sysfs = "tpm12-pcrs"
        case family = "tpm-family"
        case refusedTCTI = "tpm-tcti-refused"
    }
    public let code: Code
    public let message: String

    public init(_ code: Code, _ message: String) {
        self.code = code
        self.message = message
    }

    public var errorCode: String { code.rawValue }
    public var description: String { message }
}
