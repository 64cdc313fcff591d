// SPDX-License-Identifier: Apache-2.0
/// GRUB's rule for the bytes a module occupies in memory (`grub-core/loader/multiboot.c` opens
/// it through `gzio.c`): `module`/`module2`/`multiboot` gunzip a file whose gzip header GRUB
/// accepts, unless `--nounzip` is given; anything else is loaded unchanged.
public enum ModuleImage {
    /// What GRUB's gzio would do with a file that starts with these bytes.
    public enum Encoding: Equatable, Sendable {
        case raw
        case gzip
    }

    /// GRUB `gzio.c: test_header`: magic 1f 8b, method 8 (deflate), none of the flags it refuses
    /// (continuation 0x02, encrypted 0x20, reserved 0xC0). A file failing the test is passed
    /// through raw by GRUB, not rejected.
    public static func encoding(ofPrefix p: UnsafeRawBufferPointer, path: String, unzip: Bool) throws -> Encoding {
        guard unzip else { return .raw }
        if p.count >= 10, p[0] == 0x1F, p[1] == 0x8B, p[2] == 8, p[3] & 0xE2 == 0 {
            return .gzip
        }
        if p.count >= 6, p[0] == 0xFD, p[1] == 0x37, p[2] == 0x7A, p[3] == 0x58, p[4] == 0x5A, p[5] == 0 {
            throw CodedError(.compressionUnsupported, source: path, offset: 0,
                            "xz-compressed: GRUB decompresses it only if its xzio module is loaded, which this tool cannot know; give the line --nounzip if GRUB loads it raw")
        }
        return .raw
    }

    /// Result of reading a module the way GRUB loads it.
    public struct Hashed: Sendable {
        public let path: String
        public let encoding: Encoding
        /// Size of the file on disk.
        public let fileSize: UInt64
        /// Size of the image in memory (after gunzip).
        public let imageSize: UInt64
        /// `H(image)` per requested bank.
        public let digests: [HashAlgorithm: Digest]
    }

    /// Streams the file once, gunzipping as GRUB would, and hashes the in-memory image in every
    /// bank. Memory stays bounded (a few MiB) whatever the file size.
    /// `engine`: the gunzip implementation (the same bytes either way; tests run both).
    public static func hash(path: String, unzip: Bool, banks: [HashAlgorithm], parallel: Bool = true,
                            engine: GzipInflater.Engine = GzipInflater.preferredEngine) throws -> Hashed {
        let (encoding, fileSize, imageSize, digests) = try hashStream(path: path, unzip: unzip, banks: banks,
                                                                      parallel: parallel, engine: engine) { _ in }
        return Hashed(path: path, encoding: encoding, fileSize: fileSize, imageSize: imageSize, digests: digests)
    }

    /// Streams the image once into every bank (each bank on its own thread when `parallel` and
    /// there is more than one bank or a gunzip to overlap), also passing each chunk to `peek`.
    static func hashStream(path: String, unzip: Bool, banks: [HashAlgorithm], parallel: Bool,
                           engine: GzipInflater.Engine = GzipInflater.preferredEngine,
                           peek: (UnsafeRawBufferPointer) throws -> Void)
        throws -> (Encoding, UInt64, UInt64, [HashAlgorithm: Digest])
    {
        if parallel {
            let pipeline = BankPipeline(banks: banks)
            do {
                let (e, f, i) = try stream(path: path, unzip: unzip, engine: engine) { chunk in
                    try peek(chunk)
                    pipeline.update(chunk)
                }
                return (e, f, i, pipeline.finish())
            } catch {
                _ = pipeline.finish()
                throw error
            }
        }
        var hasher = MultiHasher(banks)
        let (e, f, i) = try stream(path: path, unzip: unzip, engine: engine) { chunk in
            try peek(chunk)
            hasher.update(chunk)
        }
        return (e, f, i, hasher.finalize())
    }

    /// The largest image GRUB can load as a multiboot module. `grub_cmd_module`
    /// (grub-core/loader/multiboot.c) places the module with `grub_relocator_alloc_chunk_align`
    /// between `lowest_addr` (1 MiB) and `UP_TO_TOP32 (size)`, so that it ends below 4 GiB (the
    /// module list's `mod_start`/`mod_end` are 32-bit); and for a gzip file the size it loads is
    /// the trailer's 32-bit ISIZE (grub-core/io/gzio.c `test_header`: "this does not handle files
    /// whose original size is over 4GB"), so of a larger image GRUB would load only a part.
    public static let maxImageSize: UInt64 = (1 << 32) - 1

    static func tooLarge(_ path: String, _ encoding: Encoding) -> CodedError {
        CodedError(.imageTooLarge, source: path, encoding == .gzip
            ? "decompresses to more than 4 GiB: GRUB takes the size from the gzip trailer (32 bits) and would load only part of it, below 4 GiB; stopped at 4 GiB"
            : "is larger than 4 GiB: GRUB places a multiboot module below 4 GiB, so it cannot boot; stopped at 4 GiB")
    }

    /// Reads `path` once and passes the in-memory image, chunk by chunk, to `body`. An image
    /// over `maxImageSize` is refused as soon as that many bytes have been read or inflated.
    /// Returns the encoding, file size and image size.
    @discardableResult
    public static func stream(path: String, unzip: Bool,
                              engine: GzipInflater.Engine = GzipInflater.preferredEngine,
                              _ body: (UnsafeRawBufferPointer) throws -> Void) throws -> (Encoding, UInt64, UInt64) {
        let reader = try FileReader(path: path)
        var chunk = try reader.next()
        let encoding = try encoding(ofPrefix: chunk, path: path, unzip: unzip)
        switch encoding {
        case .raw:
            var size: UInt64 = 0
            while !chunk.isEmpty {
                size += UInt64(chunk.count)
                if size > maxImageSize { throw tooLarge(path, .raw) }
                try body(chunk)
                chunk = try reader.next()
            }
            return (.raw, size, size)
        case .gzip:
            let inflater = GzipInflater(path: path, engine: engine)
            var size: UInt64 = 0
            while !chunk.isEmpty {
                // A gzip bomb stops here, at 4 GiB of output, not at its end.
                try inflater.feed(chunk) { out in
                    size += UInt64(out.count)
                    if size > maxImageSize { throw tooLarge(path, .gzip) }
                    try body(out)
                }
                chunk = try reader.next()
            }
            try inflater.finish()
            return (.gzip, reader.offset, inflater.decompressedSize)
        }
    }
}
