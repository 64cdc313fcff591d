/// A grub.cfg that cannot be read, or an entry that cannot be used, with file and line.
public struct GrubError: AEMPCRError {
    public enum Code: String, Sendable {
        case syntax = "grub-syntax"
        case unsupported = "grub-unsupported"
        case entryNotFound = "grub-entry-not-found"
        case entryWithoutTboot = "grub-entry-without-tboot"
        case badLoaderLine = "grub-bad-loader-line"
    }
    public let code: Code
    public let path: String
    public let line: Int?
    public let reason: String

    public init(_ code: Code, path: String, line: Int? = nil, _ reason: String) {
        self.code = code
        self.path = path
        self.line = line
        self.reason = reason
    }

    public var errorCode: String { code.rawValue }
    public var description: String {
        "\(path)\(line.map { ":\($0)" } ?? ""): \(reason)"
    }
}
