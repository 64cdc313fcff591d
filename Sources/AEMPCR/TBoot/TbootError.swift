/// A tboot input (image, policy file, option) that cannot be used, with the file and offset.
public struct TbootError: AEMPCRError {
    public enum Code: String, Sendable {
        case notELF32 = "tboot-not-elf32"
        case badELF = "tboot-bad-elf"
        case noMLEHeader = "tboot-no-mle-header"
        case badMLEHeader = "tboot-bad-mle-header"
        case cmdlineTooLong = "tboot-cmdline-too-long"
        case badPolicy = "policy-malformed"
        case unsupportedPolicy = "policy-unsupported"
        case unsupportedBank = "bank-unsupported"
        case missingPolicyEntry = "policy-no-entry-for-module"
    }
    public let code: Code
    public let path: String?
    public let offset: Int?
    public let reason: String

    public init(_ code: Code, path: String? = nil, offset: Int? = nil, _ reason: String) {
        self.code = code
        self.path = path
        self.offset = offset
        self.reason = reason
    }

    public var errorCode: String { code.rawValue }
    public var description: String {
        var s = ""
        if let p = path { s += p }
        if let o = offset { s += (s.isEmpty ? "" : " ") + "at byte \(o)" }
        return s.isEmpty ? reason : s + ": " + reason
    }
}
