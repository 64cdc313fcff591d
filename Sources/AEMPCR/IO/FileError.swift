import AEMPCRSystem

/// Something wrong with an input file: it is missing, unreadable, or not what GRUB would load.
public struct FileError: AEMPCRError {
    public enum Code: String, Sendable {
        case notFound = "file-not-found"
        case notReadable = "file-not-readable"
        case isDirectory = "file-is-directory"
        case readFailed = "file-read-failed"
        case truncatedGzip = "gzip-truncated"
        case corruptGzip = "gzip-corrupt"
        case trailingGzipData = "gzip-trailing-data"
        case unsupportedCompression = "compression-unsupported"
        /// A module image of 4 GiB or more: GRUB cannot place it below 4 GiB.
        case imageTooLarge = "image-too-large"
    }
    public let code: Code
    public let path: String
    /// Byte offset in the file (compressed offset for gzip errors), where known.
    public let offset: UInt64?
    public let reason: String

    public init(_ code: Code, path: String, offset: UInt64? = nil, _ reason: String) {
        self.code = code
        self.path = path
        self.offset = offset
        self.reason = reason
    }

    public var errorCode: String { code.rawValue }
    public var description: String {
        let at = offset.map { " at byte \($0)" } ?? ""
        return "\(path)\(at): \(reason)"
    }
}

/// The common face of every error the library throws: a stable code and a one-line message
/// naming the file, PCR, bank or offset concerned. The library never prints or exits.
public protocol AEMPCRError: Error, CustomStringConvertible, Sendable {
    /// A stable, documented identifier such as `gzip-truncated`.
    var errorCode: String { get }
}

/// An output the CLI could not write (`AEMPCRSystem`'s atomic file and set of files).
extension OutputFileError: AEMPCRError {}
