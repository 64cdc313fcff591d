import CZlib

/// Streaming gunzip through zlib: compressed chunks in, decompressed chunks out to a callback.
/// One gzip member only, checked against its CRC-32 and length trailer.
public final class GzipInflater {
    public static let outputChunkSize = 1 << 20

    private var stream = z_stream()
    private let output: UnsafeMutableRawBufferPointer
    private let path: String
    private var finished = false
    /// Compressed bytes consumed so far (for error offsets).
    private var consumed: UInt64 = 0
    public private(set) var decompressedSize: UInt64 = 0

    public init(path: String) {
        self.path = path
        output = .allocate(byteCount: GzipInflater.outputChunkSize, alignment: 64)
        // 16 + MAX_WBITS: gzip wrapper only, with header and trailer checks.
        let rc = aempcr_inflateInit2(&stream, 16 + 15)
        precondition(rc == Z_OK, "inflateInit2 failed: zlib out of memory")
    }

    deinit {
        inflateEnd(&stream)
        output.deallocate()
    }

    /// Feeds compressed bytes; calls `body` with each decompressed chunk.
    public func feed(_ input: UnsafeRawBufferPointer, _ body: (UnsafeRawBufferPointer) throws -> Void) throws {
        guard !input.isEmpty else { return }
        if finished {
            throw FileError(.trailingGzipData, path: path, offset: consumed,
                            "data after the end of the gzip stream; GRUB's handling of concatenated gzip members is not modelled, so no prediction is made")
        }
        stream.next_in = UnsafeMutablePointer(mutating: input.baseAddress!.assumingMemoryBound(to: Bytef.self))
        stream.avail_in = uInt(input.count)
        while stream.avail_in > 0 && !finished {
            stream.next_out = output.baseAddress!.assumingMemoryBound(to: Bytef.self)
            stream.avail_out = uInt(output.count)
            let before = stream.avail_in
            let rc = inflate(&stream, Z_NO_FLUSH)
            consumed += UInt64(before - stream.avail_in)
            let produced = output.count - Int(stream.avail_out)
            switch rc {
            case Z_OK, Z_BUF_ERROR:
                break
            case Z_STREAM_END:
                finished = true
            case Z_DATA_ERROR:
                let msg = stream.msg.map { String(cString: $0) } ?? "invalid data"
                throw FileError(.corruptGzip, path: path, offset: consumed, "corrupt gzip data (\(msg)); GRUB would fail to load it")
            case Z_MEM_ERROR:
                throw FileError(.readFailed, path: path, "zlib ran out of memory")
            default:
                throw FileError(.corruptGzip, path: path, offset: consumed, "gzip error \(rc)")
            }
            if produced > 0 {
                decompressedSize += UInt64(produced)
                try body(UnsafeRawBufferPointer(rebasing: UnsafeRawBufferPointer(output)[0..<produced]))
            }
            if rc == Z_BUF_ERROR && produced == 0 { break }
        }
        if finished && stream.avail_in > 0 {
            throw FileError(.trailingGzipData, path: path, offset: consumed,
                            "\(stream.avail_in) bytes after the end of the gzip stream; GRUB's handling of concatenated gzip members is not modelled, so no prediction is made")
        }
    }

    /// Call at the end of the compressed input.
    public func finish() throws {
        if !finished {
            throw FileError(.truncatedGzip, path: path, offset: consumed,
                            "gzip stream ends early (file truncated?); GRUB would fail to load it")
        }
    }
}
