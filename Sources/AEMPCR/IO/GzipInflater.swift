// SPDX-License-Identifier: Apache-2.0
import AEMPCRSystem
internal import CISAL
import CZlib
import Glibc

/// Streaming gunzip: compressed chunks in, decompressed chunks out to a callback. One gzip
/// member only, checked against its CRC-32 and length trailer; bytes after it, a second member
/// included, are an error, and so is a stream that ends early (the rule `ModuleImage` states).
/// Inflates with Intel ISA-L when libisal.so.2 can be loaded (twice zlib's speed), else with
/// zlib; both give the same bytes and the same errors. Memory: one 1 MiB output buffer plus the
/// engine's state (zlib ~40 KiB, ISA-L ~85 KiB).
public final class GzipInflater {
    public static let outputChunkSize = 1 << 20

    /// The inflate implementation.
    public enum Engine: String, Sendable, CaseIterable {
        /// Intel ISA-L's igzip, loaded at run time (`ISALLibrary`).
        case isal = "ISA-L"
        /// zlib, linked.
        case zlib

        /// Whether this engine can run in this process.
        public var isAvailable: Bool {
            switch self {
            case .zlib: return true
            case .isal: if case .success = ISALLibrary.loaded { return true } else { return false }
            }
        }
    }

    /// The engine used unless one is named: ISA-L when it loads, zlib otherwise or when the
    /// environment variable `AEMPCR_INFLATER` is `zlib` (to compare the two).
    public static let preferredEngine: Engine = {
        if let v = getenv("AEMPCR_INFLATER"), String(cString: v) == "zlib" { return .zlib }
        return Engine.isal.isAvailable ? .isal : .zlib
    }()

    /// One line on the engine `preferredEngine` chose and why, for `--verbose`.
    public static var engineNote: String {
        switch (preferredEngine, ISALLibrary.loaded) {
        case (.isal, _):
            return "gunzip with ISA-L (\(ISALLibrary.soname))"
        case (.zlib, .success):
            return "gunzip with zlib \(String(cString: zlibVersion())) (AEMPCR_INFLATER=zlib)"
        case (.zlib, .failure(let f)):
            return "gunzip with zlib \(String(cString: zlibVersion())) (ISA-L not loaded: \(f.reason))"
        }
    }

    /// The engines that have inflated something in this process so far.
    public static var enginesUsed: Set<Engine> { usage.value }
    /// The engines used so far in this process: inflaters run on several threads (two files at a time).
    private static let usage = Threads.Locked<Set<Engine>>([])

    /// The engine this inflater runs.
    public let engine: Engine
    private let state: State
    private let output: UnsafeMutableRawBufferPointer
    private let path: String
    private var finished = false
    /// Compressed bytes consumed so far (for error offsets).
    private var consumed: UInt64 = 0
    public private(set) var decompressedSize: UInt64 = 0

    /// Each engine's stream state, on the heap: zlib's keeps a pointer back to its `z_stream`,
    /// which therefore must not move.
    private enum State {
        case zlib(UnsafeMutablePointer<z_stream>)
        case isal(UnsafeMutablePointer<inflate_state>, UnsafeMutablePointer<isal_gzip_header>, ISALLibrary)
    }
    /// ISA-L: the gzip header has been read (then `isal_inflate` takes the deflate data and
    /// checks the trailer).
    private var headerRead = false

    /// An inflater for one gzip member read from `path` (named in errors). `engine` falls back
    /// to zlib when ISA-L cannot be loaded; `engine` then says so.
    public init(path: String, engine: Engine = GzipInflater.preferredEngine) {
        self.path = path
        output = .allocate(byteCount: GzipInflater.outputChunkSize, alignment: 64)
        if engine == .isal, case .success(let lib) = ISALLibrary.loaded {
            let raw = UnsafeMutableRawPointer.allocate(byteCount: MemoryLayout<inflate_state>.size,
                                                       alignment: MemoryLayout<inflate_state>.alignment)
            raw.initializeMemory(as: UInt8.self, repeating: 0, count: MemoryLayout<inflate_state>.size)
            let s = raw.bindMemory(to: inflate_state.self, capacity: 1)
            lib.inflateInit(s)
            // Gzip wrapper: CRC-32 and length trailer checked.
            s.pointee.crc_flag = UInt32(ISAL_GZIP)
            let header = UnsafeMutablePointer<isal_gzip_header>.allocate(capacity: 1)
            header.initialize(to: isal_gzip_header())
            lib.gzipHeaderInit(header)
            state = .isal(s, header, lib)
            self.engine = .isal
        } else {
            let s = UnsafeMutablePointer<z_stream>.allocate(capacity: 1)
            s.initialize(to: z_stream())
            // 16 + MAX_WBITS: gzip wrapper only, with header and trailer checks.
            let rc = aempcr_inflateInit2(s, 16 + 15)
            precondition(rc == Z_OK, "inflateInit2 failed: zlib out of memory")
            state = .zlib(s)
            self.engine = .zlib
        }
        let engine = self.engine
        GzipInflater.usage.withLock { _ = $0.value.insert(engine) }
    }

    deinit {
        switch state {
        case .zlib(let s):
            inflateEnd(s)
            s.deinitialize(count: 1)
            s.deallocate()
        case .isal(let s, let header, _):
            UnsafeMutableRawPointer(s).deallocate()
            header.deinitialize(count: 1)
            header.deallocate()
        }
        output.deallocate()
    }

    /// Feeds compressed bytes; calls `body` with each decompressed chunk.
    public func feed(_ input: UnsafeRawBufferPointer, _ body: (UnsafeRawBufferPointer) throws -> Void) throws {
        guard !input.isEmpty else { return }
        if finished {
            throw CodedError(.gzipTrailingData, source: path, offset: Int(clamping: consumed),
                            "data after the end of the gzip stream; GRUB's handling of concatenated gzip members is not modelled, so no prediction is made")
        }
        var rest = input
        while true {
            let (used, produced, end) = try step(rest)
            consumed += UInt64(used)
            rest = UnsafeRawBufferPointer(rebasing: rest[used...])
            if produced > 0 {
                decompressedSize += UInt64(produced)
                try body(UnsafeRawBufferPointer(rebasing: UnsafeRawBufferPointer(output)[0..<produced]))
            }
            if end {
                finished = true
                break
            }
            // A full output buffer may leave more inside the engine, even with no input left.
            if produced == output.count { continue }
            if rest.isEmpty { break }
            if used == 0 && produced == 0 {
                throw CodedError(.gzipCorrupt, source: path, offset: Int(clamping: consumed),
                                "gzip inflate (\(engine.rawValue)) made no progress; GRUB would fail to load it")
            }
        }
        if finished && !rest.isEmpty {
            throw CodedError(.gzipTrailingData, source: path, offset: Int(clamping: consumed),
                            "\(rest.count) bytes after the end of the gzip stream; GRUB's handling of concatenated gzip members is not modelled, so no prediction is made")
        }
    }

    /// Call at the end of the compressed input.
    public func finish() throws {
        if !finished {
            throw CodedError(.gzipTruncated, source: path, offset: Int(clamping: consumed),
                            "gzip stream ends early (file truncated?); GRUB would fail to load it")
        }
    }

    /// One call into the engine with `input` and the whole output buffer: bytes consumed,
    /// bytes produced, and whether the member (trailer included) has ended.
    private func step(_ input: UnsafeRawBufferPointer) throws -> (used: Int, produced: Int, end: Bool) {
        let out = output.baseAddress!.assumingMemoryBound(to: UInt8.self)
        let inPtr = UnsafeMutablePointer(mutating: (input.baseAddress ?? UnsafeRawPointer(out)).assumingMemoryBound(to: UInt8.self))
        switch state {
        case .zlib(let s):
            s.pointee.next_in = inPtr
            s.pointee.avail_in = uInt(input.count)
            s.pointee.next_out = out
            s.pointee.avail_out = uInt(output.count)
            let rc = inflate(s, Z_NO_FLUSH)
            let used = input.count - Int(s.pointee.avail_in)
            let produced = output.count - Int(s.pointee.avail_out)
            switch rc {
            case Z_OK, Z_BUF_ERROR:
                return (used, produced, false)
            case Z_STREAM_END:
                return (used, produced, true)
            case Z_DATA_ERROR:
                let msg = s.pointee.msg.map { String(cString: $0) } ?? "invalid data"
                throw corrupt(after: used, msg)
            case Z_MEM_ERROR:
                throw CodedError(.fileReadFailed, source: path, "zlib ran out of memory")
            default:
                throw corrupt(after: used, "zlib error \(rc)")
            }
        case .isal(let s, let header, let lib):
            s.pointee.next_in = inPtr
            s.pointee.avail_in = UInt32(input.count)
            s.pointee.next_out = out
            s.pointee.avail_out = UInt32(output.count)
            if !headerRead {
                // The header may come in pieces; the same record carries its flags across calls.
                let rc = lib.readGzipHeader(s, header)
                if rc < 0 {
                    throw corrupt(after: input.count - Int(s.pointee.avail_in), "invalid gzip header")
                }
                if rc > 0 { return (input.count - Int(s.pointee.avail_in), 0, false) }  // needs more input
                headerRead = true
            }
            let rc = lib.inflate(s)
            let used = input.count - Int(s.pointee.avail_in)
            let produced = output.count - Int(s.pointee.avail_out)
            switch rc {
            case ISAL_DECOMP_OK:
                // FINISH: the last block is out and the trailer matched; unread bytes are
                // returned to avail_in.
                return (used, produced, s.pointee.block_state == ISAL_BLOCK_FINISH)
            case ISAL_INVALID_BLOCK:
                throw corrupt(after: used, "invalid deflate block")
            case ISAL_INVALID_SYMBOL:
                throw corrupt(after: used, "invalid deflate code")
            case ISAL_INVALID_LOOKBACK:
                throw corrupt(after: used, "invalid distance too far back")
            case ISAL_INVALID_WRAPPER, ISAL_UNSUPPORTED_METHOD:
                throw corrupt(after: used, "invalid gzip header")
            case ISAL_INCORRECT_CHECKSUM:
                throw corrupt(after: used, "CRC-32 or length in the gzip trailer does not match")
            default:
                throw corrupt(after: used, "ISA-L error \(rc)")
            }
        }
    }

    private func corrupt(after used: Int, _ message: String) -> CodedError {
        CodedError(.gzipCorrupt, source: path, offset: Int(clamping: consumed + UInt64(used)),
                  "corrupt gzip data (\(message)); GRUB would fail to load it")
    }
}

