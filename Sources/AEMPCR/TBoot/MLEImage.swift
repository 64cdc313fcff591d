// SPDX-License-Identifier: Apache-2.0
/// tboot's image as SINIT measures it (`lcptools-v2/mlehash.c`): the ELF32 PT_LOAD segments laid out by physical
/// address, the MLE header found by its UUID, tboot's command line written into its slot, and the
/// range `[mle_start_off, mle_end_off)` hashed. Equals `lcp2_mlehash --create --alg A --cmdline C`.
public struct MLEImage: Sendable {
    /// `MLE_HDR_UUID` (tboot `include/mle.h`), as bytes in memory.
    public static let headerUUID: [UInt8] = [0x5A, 0xAC, 0x82, 0x90, 0x6F, 0x47, 0xA7, 0x74,
                                              0x0F, 0x5C, 0x55, 0xA2, 0xCB, 0x51, 0xB6, 0x42]

    /// The MLE header fields (tboot `mle_hdr_t`), offsets relative to the laid-out image.
    public struct Header: Sendable, Equatable {
        public var offset: Int
        public var length: UInt32
        public var version: UInt32
        public var entryPoint: UInt32
        public var firstValidPage: UInt32
        public var mleStart: UInt32
        public var mleEnd: UInt32
        public var capabilities: UInt32
        public var cmdlineStart: UInt32
        public var cmdlineEnd: UInt32
    }

    private struct Segment: Sendable {
        var imageOffset: Int   // p_paddr - lowest p_paddr
        var fileOffset: Int
        var fileSize: Int
        var memSize: Int
        /// File bytes held in memory (less than fileSize while only a prefix is loaded).
        var available: Int
    }

    public let path: String
    public let header: Header
    private let elf: [UInt8]
    private let segments: [Segment]
    /// Size of the laid-out image (up to the end of the last segment's memory).
    public let imageSize: Int

    /// Loads tboot (gunzipped as GRUB's `multiboot` does) and finds its MLE header. Only the
    /// image prefix that holds the MLE is kept in memory; the rest is still decompressed, so a
    /// corrupt or truncated file is reported.
    public init(path: String) throws {
        var buffer = [UInt8]()
        var found: MLEImage? = nil
        var lastTry = 0
        try ModuleImage.stream(path: path, unzip: true) { chunk in
            guard found == nil else { return }
            buffer.append(contentsOf: chunk)
            guard buffer.count - lastTry >= 1 << 20 else { return }
            lastTry = buffer.count
            found = try MLEImage(elf: buffer, path: path, complete: false)
            if buffer.count > 128 << 20 {
                throw CodedError(.tbootBadELF, source: path, "no complete MLE within the first 128 MiB; not a tboot image")
            }
        }
        self = try found ?? MLEImage(elf: buffer, path: path, complete: true)!
    }

    /// Parses an image held in memory.
    public init(elf: [UInt8], path: String) throws {
        self = try MLEImage(elf: elf, path: path, complete: true)!
    }

    /// With `complete` false, `elf` may be a prefix of the image: returns nil when the prefix does
    /// not yet hold the whole MLE.
    private init?(elf: [UInt8], path: String, complete: Bool) throws {
        self.path = path
        self.elf = elf
        func u16(_ o: Int) -> Int { Int(elf[o]) | Int(elf[o + 1]) << 8 }
        func u32(_ o: Int) -> Int { Int(elf[o]) | Int(elf[o + 1]) << 8 | Int(elf[o + 2]) << 16 | Int(elf[o + 3]) << 24 }

        guard elf.count >= 52, elf[0] == 0x7F, elf[1] == 0x45, elf[2] == 0x4C, elf[3] == 0x46 else {
            throw CodedError(.tbootNotELF32, source: path, offset: 0, "not an ELF image (is this tboot.gz?)")
        }
        guard elf[4] == 1, elf[5] == 1 else {
            throw CodedError(.tbootNotELF32, source: path, offset: 4, "not a little-endian ELF32 image; tboot is built as ELF32")
        }
        let phoff = u32(28), phentsize = u16(42), phnum = u16(44)
        guard phnum > 0, phnum <= 64, phentsize >= 32,
              phoff <= elf.count, phnum * phentsize <= elf.count - phoff else {
            if !complete { return nil }
            throw CodedError(.tbootBadELF, source: path, offset: 28, "program headers (offset \(phoff), \(phnum) × \(phentsize) bytes) lie outside the file")
        }
        var loads = [(paddr: Int, off: Int, filesz: Int, memsz: Int, at: Int)]()
        for i in 0..<phnum {
            let p = phoff + i * phentsize
            guard u32(p) == 1 else { continue }  // PT_LOAD
            let off = u32(p + 4), paddr = u32(p + 12), filesz = u32(p + 16), memsz = u32(p + 20)
            guard off <= elf.count, filesz <= elf.count - off else {
                if !complete {
                    loads.append((paddr, off, filesz, memsz, p))
                    continue
                }
                throw CodedError(.tbootBadELF, source: path, offset: p, "PT_LOAD segment \(i) (offset \(off), \(filesz) bytes) runs past the end of the image")
            }
            guard memsz >= filesz else {
                throw CodedError(.tbootBadELF, source: path, offset: p, "PT_LOAD segment \(i) has p_memsz < p_filesz")
            }
            loads.append((paddr, off, filesz, memsz, p))
        }
        guard let base = loads.map(\.paddr).min() else {
            throw CodedError(.tbootBadELF, source: path, offset: phoff, "no PT_LOAD segment")
        }
        var segs = [Segment]()
        var end = 0
        for l in loads.sorted(by: { $0.paddr < $1.paddr }) {
            let at = l.paddr - base
            guard at >= end else {
                throw CodedError(.tbootBadELF, source: path, offset: l.at, "PT_LOAD segments overlap in memory")
            }
            segs.append(Segment(imageOffset: at, fileOffset: l.off, fileSize: l.filesz, memSize: l.memsz,
                                available: max(0, min(l.filesz, elf.count - l.off))))
            end = at + l.memsz
        }
        guard end <= 256 << 20 else {
            throw CodedError(.tbootBadELF, source: path, "laid-out image would be \(end >> 20) MiB; not a tboot image")
        }
        segments = segs
        imageSize = end

        // Find the MLE header: scan the laid-out image in 16-byte steps (as lcp2_mlehash does).
        var found: Int? = nil
        search: for s in segs {
            var o = s.imageOffset
            if o % 16 != 0 { o += 16 - o % 16 }
            while o + 16 <= s.imageOffset + s.available {
                let f = s.fileOffset + (o - s.imageOffset)
                if elf[f] == 0x5A, elf[f..<(f + 16)].elementsEqual(MLEImage.headerUUID) {
                    found = o
                    break search
                }
                o += 16
            }
        }
        guard let h = found else {
            if !complete { return nil }
            throw CodedError(.tbootNoMLEHeader, source: path, "no MLE header (UUID 5aac8290-6f47-a774-0f5c-55a2cb51b642) in the image; not a tboot image")
        }
        var fieldBytes = [UInt8](repeating: 0, count: 52)
        guard Self.copy(image: (elf, segs), from: h, into: &fieldBytes) else {
            // Part of the header's file bytes is not in memory yet (only with a prefix).
            if !complete { return nil }
            throw CodedError(.tbootBadMLEHeader, source: path, offset: h, "the MLE header is cut off by the end of the image")
        }
        func f(_ i: Int) -> UInt32 {
            let o = 16 + 4 * i
            return UInt32(fieldBytes[o]) | UInt32(fieldBytes[o + 1]) << 8 | UInt32(fieldBytes[o + 2]) << 16 | UInt32(fieldBytes[o + 3]) << 24
        }
        header = Header(offset: h, length: f(0), version: f(1), entryPoint: f(2), firstValidPage: f(3),
                        mleStart: f(4), mleEnd: f(5), capabilities: f(6), cmdlineStart: f(7), cmdlineEnd: f(8))
        guard header.mleStart < header.mleEnd, Int(header.mleEnd) <= imageSize else {
            throw CodedError(.tbootBadMLEHeader, source: path, offset: h,
                             "MLE range [\(hex0x(header.mleStart, width: 1)), \(hex0x(header.mleEnd, width: 1))) is empty or outside the \(imageSize)-byte image")
        }
        // A prefix is enough once every file byte of the MLE range is in memory.
        if !complete {
            let need = Int(header.mleStart)..<Int(header.mleEnd)
            for sg in segs where sg.imageOffset < need.upperBound && need.lowerBound < sg.imageOffset + sg.fileSize {
                if min(need.upperBound, sg.imageOffset + sg.fileSize) > sg.imageOffset + sg.available { return nil }
            }
        }
        if header.cmdlineEnd != 0 || header.cmdlineStart != 0 {
            guard header.cmdlineStart <= header.cmdlineEnd, Int(header.cmdlineEnd) <= imageSize else {
                throw CodedError(.tbootBadMLEHeader, source: path, offset: h,
                                 "command-line slot [\(hex0x(header.cmdlineStart, width: 1)), \(hex0x(header.cmdlineEnd, width: 1))) lies outside the image")
            }
        }
    }

    /// Copies laid-out image bytes starting at `from` (zeros where only memory, no file data).
    /// Returns false when a file byte needed is not in memory (a prefix still loading).
    private static func copy(image: ([UInt8], [Segment]), from: Int, into out: inout [UInt8]) -> Bool {
        for i in out.indices {
            let pos = from + i
            out[i] = 0
            if let s = image.1.first(where: { $0.imageOffset <= pos && pos < $0.imageOffset + $0.fileSize }) {
                guard pos < s.imageOffset + s.available else { return false }
                out[i] = image.0[s.fileOffset + pos - s.imageOffset]
            }
        }
        return true
    }

    /// Room for tboot's command line in the image (bytes, including the terminating NUL).
    public var cmdlineCapacity: Int { Int(header.cmdlineEnd) - Int(header.cmdlineStart) }

    /// The command line as it ends up in the image: tboot copies at most 511 bytes into its
    /// buffer (`tboot.c`: `tb_strncpy(g_cmdline, cmdline, 511)`), and never more than the slot.
    /// Returns the bytes kept (a cut may split a UTF-8 character, as tboot's does) and whether
    /// the line was cut.
    public func effectiveCmdline(_ cmdline: String) -> ([UInt8], Bool) {
        effectiveCmdline(Array(cmdline.utf8))
    }

    public func effectiveCmdline(_ bytes: [UInt8]) -> ([UInt8], Bool) {
        let room = max(0, min(511, cmdlineCapacity))
        guard bytes.count > room else { return (bytes, false) }
        return (Array(bytes.prefix(room)), true)
    }

    /// The MLE hash in each bank, with `cmdline` (as GRUB passes it to tboot) in its slot.
    /// Pass the line through `effectiveCmdline` first; a longer one is refused.
    public func hash(cmdline: String, banks: [HashAlgorithm]) throws -> [HashAlgorithm: Digest] {
        try hash(cmdline: Array(cmdline.utf8), banks: banks)
    }

    public func hash(cmdline line: [UInt8], banks: [HashAlgorithm]) throws -> [HashAlgorithm: Digest] {
        if line.count > max(0, min(511, cmdlineCapacity)) {
            throw CodedError(.tbootCmdlineTooLong, source: path,
                             "tboot command line is \(line.count) bytes; this tboot keeps \(max(0, min(511, cmdlineCapacity)))")
        }
        // Overlay: the command-line slot is zeroed and the line copied to its start.
        let slot = Int(header.cmdlineStart)..<Int(header.cmdlineEnd)
        var hasher = MultiHasher(banks)
        let zeros = [UInt8](repeating: 0, count: 1 << 16)
        let start = Int(header.mleStart), end = Int(header.mleEnd)

        func emitZeros(_ n: Int) {
            var left = n
            while left > 0 {
                let k = min(left, zeros.count)
                zeros.withUnsafeBytes { hasher.update(UnsafeRawBufferPointer(rebasing: $0[0..<k])) }
                left -= k
            }
        }
        // Walk [start, end) in pieces: file bytes, zero fill, and the command-line slot.
        var pos = start
        while pos < end {
            if slot.contains(pos) {
                let inSlot = min(slot.upperBound, end) - pos
                let lineFrom = pos - slot.lowerBound
                let lineBytes = max(0, min(line.count - lineFrom, inSlot))
                if lineBytes > 0 { hasher.update(Array(line[lineFrom..<(lineFrom + lineBytes)])) }
                emitZeros(inSlot - lineBytes)
                pos += inSlot
                continue
            }
            let stop = min(end, pos < slot.lowerBound ? slot.lowerBound : end)
            // Find the segment holding pos.
            if let s = segments.first(where: { $0.imageOffset <= pos && pos < $0.imageOffset + $0.memSize }) {
                let fileEnd = s.imageOffset + s.fileSize
                if pos < fileEnd {
                    let n = min(stop, fileEnd) - pos
                    let f = s.fileOffset + (pos - s.imageOffset)
                    elf.withUnsafeBytes { hasher.update(UnsafeRawBufferPointer(rebasing: $0[f..<(f + n)])) }
                    pos += n
                } else {
                    let n = min(stop, s.imageOffset + s.memSize) - pos
                    emitZeros(n)
                    pos += n
                }
            } else {
                // A gap between segments: zeros.
                let next = segments.map(\.imageOffset).filter { $0 > pos }.min() ?? end
                let n = min(stop, next) - pos
                emitZeros(n)
                pos += n
            }
        }
        return hasher.finalize()
    }
}

