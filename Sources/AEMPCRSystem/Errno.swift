// SPDX-License-Identifier: Apache-2.0
import Glibc

/// An `errno` value: the one way errors of the C library are kept and shown. Its description is
/// the C library's sentence for it (`strerror`: "No such file or directory"), so every message
/// that quotes a failed call reads the same.
public struct Errno: Error, Hashable, Sendable, CustomStringConvertible {
    public let rawValue: Int32

    public init(_ rawValue: Int32) { self.rawValue = rawValue }

    /// The calling thread's `errno` now: read it before any other call that may change it.
    public static var current: Errno { Errno(errno) }

    /// `strerror`'s text (glibc returns a constant string for every known value).
    public var description: String { String(cString: strerror(rawValue)) }
}
