// SPDX-License-Identifier: Apache-2.0
import AEMPCRSystem
import Glibc

/// Reads a file sequentially in fixed-size chunks into one reused buffer: bounded memory whatever
/// the file size.
public final class FileReader {
    public static let defaultChunkSize = 1 << 20

    public let path: String
    private let fd: Int32
    private let buffer: UnsafeMutableRawBufferPointer
    /// Bytes returned so far.
    public private(set) var offset: UInt64 = 0
    /// The file's size when it was opened (it may grow or shrink while it is read).
    public let size: UInt64

    /// `noFollow`: a symbolic link as the file itself is refused (`O_NOFOLLOW`), for files in a
    /// directory someone else may have written (a sealed set on a boot device).
    public init(path: String, chunkSize: Int = FileReader.defaultChunkSize, noFollow: Bool = false) throws {
        self.path = path
        // A FIFO, device or socket is refused before it is opened: opening a FIFO for reading
        // waits for a writer, forever (RegularFile).
        let fd = try RegularFile.open(path, flags: O_RDONLY | (noFollow ? O_NOFOLLOW : 0))
        self.fd = fd
        var st = stat()
        self.size = fstat(fd, &st) == 0 ? UInt64(max(st.st_size, 0)) : 0
        self.buffer = .allocate(byteCount: chunkSize, alignment: 64)
    }

    deinit {
        close(fd)
        buffer.deallocate()
    }

    /// The next chunk, empty at the end of the file. Valid until the next call.
    public func next() throws -> UnsafeRawBufferPointer {
        var filled = 0
        while filled < buffer.count {
            let n = read(fd, buffer.baseAddress! + filled, buffer.count - filled)
            if n < 0 {
                if errno == EINTR { continue }
                throw CodedError(.fileReadFailed, source: path, offset: Int(clamping: offset + UInt64(filled)),
                                "read failed: \(Errno.current)")
            }
            if n == 0 { break }
            filled += n
        }
        offset += UInt64(filled)
        return UnsafeRawBufferPointer(rebasing: buffer[0..<filled])
    }

    /// Reads the whole (small) file: for policies, configs and tboot images, never for modules.
    public static func readAll(path: String, limit: Int = 64 << 20, noFollow: Bool = false) throws -> [UInt8] {
        let r = try FileReader(path: path, noFollow: noFollow)
        var out = [UInt8]()
        // One buffer of the file's size: appending chunk by chunk doubles it up to twice that.
        out.reserveCapacity(Int(min(r.size, UInt64(limit))) + 1)
        while true {
            let chunk = try r.next()
            if chunk.isEmpty { return out }
            out.append(contentsOf: chunk)
            if out.count > limit {
                throw CodedError(.fileReadFailed, source: path, "larger than \(limit >= 1 << 20 ? "\(limit >> 20) MiB" : "\(limit >> 10) KiB"); this is not the file expected here")
            }
        }
    }
}
