// SPDX-License-Identifier: Apache-2.0
/// An output file or directory that could not be written: the path and why, in one line.
/// (`AEMPCR` makes it an `AEMPCRError` with the code `output-write-failed`.)
public struct OutputFileError: Error, CustomStringConvertible, Sendable {
    public let path: String
    public let reason: String
    public init(path: String, _ reason: String) {
        self.path = path
        self.reason = reason
    }
    public var errorCode: String { "output-write-failed" }
    public var description: String { "\(path): \(reason)" }
}
