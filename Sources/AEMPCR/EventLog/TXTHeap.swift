// SPDX-License-Identifier: Apache-2.0
/// Walks a dump of the Intel TXT heap to the DRTM event log (tboot
/// `include/txt/heap.h`, `txt/heap.c: verify_ext_data_elts`).
///
/// A dump file starts with the values of TXT.HEAP.BASE and TXT.HEAP.SIZE (two u64) and holds the
/// heap in one of two layouts:
/// - *compact*: the heap bytes follow at byte 16 (file size = 16 + heap size);
/// - *memory image*: the file is an image of physical memory from address 0 whose first 16 bytes
///   are replaced by the two registers, so the heap is at file offset = heap base. Intel SecL's
///   trust agent reads `/dev/mem` this way, and its test dump (`isecl_tagent_txt_heap_info.bin`,
///   base 0x1000) has this layout.
///
/// The heap is four sections, each prefixed by its u64 size (which includes the size field):
/// BiosData, OsMleData, OsSinitData, SinitMleData. OsSinitData (version ≥ 6) ends with extended
/// data elements `{u32 type; u32 size (incl. these 8 bytes); data}` closed by type 0; element 5,
/// 7 or 8 points at the log. The log lives in OsMleData (tboot's `event_log_buffer`).
enum TXTHeap {
    /// The fixed part of OsSinitData (`os_sinit_data_t` up to `ext_data_elts`): version, flags,
    /// nine u64 (mle_ptab … lcp_po_size), capabilities (u32), efi_rsdt_ptr (u64).
    static let osSinitFixedSize = 4 + 4 + 9 * 8 + 4 + 8
    /// The largest heap this reader accepts (real heaps are 1 MiB or less).
    static let maxHeapSize: UInt64 = 256 << 20
    static let sectionNames = ["BiosData", "OsMleData", "OsSinitData", "SinitMleData"]

    /// Element types (`HEAP_EXTDATA_TYPE_*`).
    static let endElement: UInt32 = 0
    static let tpm12LogElement: UInt32 = 5
    static let legacyLogElement: UInt32 = 7
    static let tcgLogElement: UInt32 = 8

    /// Where the heap is in the file.
    struct Heap {
        let base: UInt64
        let size: Int
        /// File offset of heap byte 0.
        let fileOffset: Int
    }

    /// Whether the first 16 bytes look like TXT.HEAP.BASE / TXT.HEAP.SIZE: both page-aligned,
    /// base nonzero, size nonzero and at most `maxHeapSize`. No log format starts like that.
    static func looksLikeDump(_ bytes: ArraySlice<UInt8>) -> Bool {
        let r = ByteReader(bytes, source: "")
        guard let b = r.peek(at: 0, count: 16) else { return false }
        let base = UInt64(b.le32(at: 0)) | UInt64(b.le32(at: 4)) << 32
        let size = UInt64(b.le32(at: 8)) | UInt64(b.le32(at: 12)) << 32
        return base != 0 && base % 4096 == 0 && size != 0 && size % 4096 == 0 && size <= maxHeapSize
    }

    /// Locates the heap in the dump (see the layouts above).
    static func locate(_ r: inout ByteReader) throws -> Heap {
        let base = try r.u64("TXT.HEAP.BASE")
        let size64 = try r.u64("TXT.HEAP.SIZE")
        guard size64 >= 8, size64 <= maxHeapSize, let size = Int(exactly: size64) else {
            throw CodedError(.heapBadSection, source: r.source, offset: 8,
                "TXT.HEAP.SIZE \(hex0x(size64, width: 1)) is not a heap size this tool reads (8 bytes to 256 MiB)")
        }
        let fileSize = r.bytes.count
        if let b = Int(exactly: base), b >= 16, b <= fileSize - size {
            return Heap(base: base, size: size, fileOffset: b)
        }
        if fileSize - 16 == size {
            return Heap(base: base, size: size, fileOffset: 16)
        }
        throw CodedError(.heapTruncated, source: r.source, offset: fileSize,
            "the dump declares a heap of \(size) bytes at \(hex0x(base, width: 1)), but the file has "
            + "\(fileSize) bytes: neither \(16 + size) (heap after the two registers) nor at least "
            + "base + size (memory image); copy the whole dump again")
    }

    /// A heap section: file offsets of its data (after the size field) and of its end.
    struct Section {
        let name: String
        let start: Int
        let dataStart: Int
        let end: Int
    }

    /// The four sections, each checked to advance and to fit the heap.
    static func sections(_ bytes: ArraySlice<UInt8>, heap: Heap, source: String) throws -> [Section] {
        var out = [Section]()
        var at = heap.fileOffset
        let heapEnd = heap.fileOffset + heap.size
        for name in sectionNames {
            var r = ByteReader(bytes, source: source, start: at, end: heapEnd)
            guard r.remaining >= 8 else {
                throw CodedError(.heapOverrun, source: source, offset: at,
                    "the heap ends before the size field of \(name) (\(r.remaining) bytes left)")
            }
            let size = try r.u64("the size of \(name)")
            guard size >= 8 else {
                throw CodedError(.heapLoop, source: source, offset: at,
                    "\(name) declares a size of \(size) bytes, less than its own 8-byte size field; the "
                    + "section chain would not advance")
            }
            guard size <= UInt64(heapEnd - at) else {
                throw CodedError(.heapOverrun, source: source, offset: at,
                    "\(name) declares \(size) bytes, past the end of the heap (\(heapEnd - at) bytes left)")
            }
            let end = at + Int(size)
            out.append(Section(name: name, start: at, dataStart: at + 8, end: end))
            at = end
        }
        return out
    }

    /// A log pointer element of OsSinitData.
    struct LogElement {
        let type: UInt32
        let offset: Int
        let data: ByteReader
    }

    /// The first event-log element (type 5, 7 or 8) of OsSinitData's extended elements.
    static func logElement(_ bytes: ArraySlice<UInt8>, osSinit s: Section, source: String) throws -> LogElement {
        var r = ByteReader(bytes, source: source, start: s.dataStart, end: s.end)
        let version = try r.u32("the OsSinitData version")
        guard version >= 6 else {
            throw CodedError(.heapNoLog, source: source, offset: s.dataStart,
                "OsSinitData version \(version) has no extended data elements, so no event-log pointer "
                + "(version 6 or later is needed: a TPM 2.0-capable tboot and SINIT)")
        }
        guard s.end - s.dataStart >= osSinitFixedSize else {
            throw CodedError(.heapBadSection, source: source, offset: s.start,
                "OsSinitData has \(s.end - s.dataStart) bytes, fewer than its \(osSinitFixedSize) fixed bytes")
        }
        var at = s.dataStart + osSinitFixedSize
        var seen = [UInt32]()
        while true {
            var e = ByteReader(bytes, source: source, start: at, end: s.end)
            guard e.remaining >= 8 else {
                throw CodedError(.heapOverrun, source: source, offset: at,
                    "OsSinitData's extended elements run to the end of the section without an END element")
            }
            guard seen.count < EventLogLimits.maxHeapElements else {
                throw CodedError(.heapLoop, source: source, offset: at,
                    "more than \(EventLogLimits.maxHeapElements) extended elements in OsSinitData")
            }
            let type = try e.u32("an element type")
            let size = try e.u32("an element size")
            if type == endElement { break }
            guard size >= 8 else {
                throw CodedError(.heapLoop, source: source, offset: at + 4,
                    "element type \(type) declares \(size) bytes, less than its 8-byte header; the element "
                    + "chain would not advance")
            }
            guard Int(size) <= s.end - at else {
                throw CodedError(.heapOverrun, source: source, offset: at + 4,
                    "element type \(type) declares \(size) bytes, past the end of OsSinitData (\(s.end - at) left)")
            }
            seen.append(type)
            if [tpm12LogElement, legacyLogElement, tcgLogElement].contains(type) {
                return LogElement(type: type, offset: at,
                                  data: ByteReader(bytes, source: source, start: at + 8, end: at + Int(size)))
            }
            at += Int(size)
        }
        throw CodedError(.heapNoLog, source: source, offset: s.dataStart,
            "OsSinitData has no event-log pointer element (types 5, 7 or 8); elements found: "
            + (seen.isEmpty ? "none" : seen.map(String.init).joined(separator: ", "))
            + ". tboot did not ask SINIT for a log")
    }

    /// The file offset of `length` bytes at physical `address`, which must lie in the heap.
    ///
    /// The address is translated as `address − base`. Intel SecL's published dump stores its log
    /// pointer relative to the heap (as if the heap were at physical 0); when the standard
    /// translation does not find a log there (`isLog` fails) but the heap-relative reading does,
    /// that one is used.
    static func resolve(_ address: UInt64, length: Int, heap: Heap, source: String, elementOffset: Int,
                        isLog: (Int) -> Bool) throws -> Int {
        func inHeap(_ heapOffset: UInt64) -> Int? {
            guard heapOffset <= UInt64(heap.size), Int(heapOffset) <= heap.size - length else { return nil }
            return heap.fileOffset + Int(heapOffset)
        }
        let standard = address >= heap.base ? inHeap(address - heap.base) : nil
        if let s = standard, isLog(s) { return s }
        if let rel = inHeap(address), isLog(rel) { return rel }
        if let s = standard { return s }  // parsed there, so that the error says what is wrong
        throw CodedError(.heapOverrun, source: source, offset: elementOffset,
            "the log pointer \(hex0x(address, width: 1)) (+\(length) bytes) lies outside the heap "
            + "[\(hex0x(heap.base, width: 1)), \(hex0x(heap.base &+ UInt64(heap.size), width: 1))); "
            + "the log must be in the dump")
    }

    /// Walks the dump to its log and frames it.
    static func parse(_ bytes: ArraySlice<UInt8>, source: String, checks: DRTMEventLog.Checks) throws -> DRTMEventLog {
        var r = ByteReader(bytes, source: source)
        let heap = try locate(&r)
        let secs = try sections(bytes, heap: heap, source: source)
        let element = try logElement(bytes, osSinit: secs[2], source: source)
        var e = element.data
        let whole = ByteReader(bytes, source: source)

        switch element.type {
        case tcgLogElement:
            // heap_event_log_ptr_elt2_1_t: u64 phys_addr; u32 allocated size; u32 first, next record offset.
            let phys = try e.u64("the TCG log address")
            let allocated = try e.u32("the TCG log's allocated size")
            let first = Int(try e.u32("first_record_offset"))
            let next = Int(try e.u32("next_record_offset"))
            guard first <= next, UInt32(next) <= allocated else {
                throw CodedError(.logBadHeader, source: source, offset: element.offset + 8,
                    "the TCG log element's records range [\(first), \(next)) does not fit its \(allocated) allocated bytes")
            }
            if first == next {  // SINIT logged nothing
                return DRTMEventLog(format: .tpm20TCG, banks: [], events: [], source: source)
            }
            let at = try resolve(phys, length: next, heap: heap, source: source, elementOffset: element.offset) {
                BinaryLogs.looksLikeTCGHeader(whole, at: $0 + first)
            }
            var log = ByteReader(bytes, source: source, start: at + first, end: at + next)
            let (banks, raw) = try BinaryLogs.tcgLog(&log, zeroTail: false)
            return try DRTMEventLog(format: .tpm20TCG, banks: banks, raw: raw, source: source, checks: checks)

        case legacyLogElement:
            // heap_event_log_ptr_elt2_t: u32 count; count × heap_event_log_descr_t (24 bytes).
            let count = try e.u32("the number of log descriptors")
            guard count <= UInt32(EventLogLimits.maxAlgorithms) else {
                throw CodedError(.logCountTooLarge, source: source, offset: element.offset + 8,
                    "the element lists \(count) per-algorithm logs; at most \(EventLogLimits.maxAlgorithms) exist")
            }
            var logs = [(algorithm: HashAlgorithm, records: [RawRecord])]()
            for _ in 0..<count {
                let at = e.position
                let alg = HashAlgorithm(rawValue: try e.u16("a descriptor's algorithm"))
                try e.skip(2, "a descriptor's reserved field")
                let phys = try e.u64("a per-algorithm log address")
                let size = try e.u32("a per-algorithm log size")
                let first = Int(try e.u32("pcr_events_offset"))
                let next = Int(try e.u32("next_event_offset"))
                _ = try alg.requireSize(source: source, offset: at)
                guard !logs.contains(where: { $0.algorithm == alg }) else {
                    throw CodedError(.logBadHeader, source: source, offset: at, "two per-algorithm logs for \(alg)")
                }
                guard first <= next, UInt32(next) <= size else {
                    throw CodedError(.logBadHeader, source: source, offset: at + 16,
                        "the \(alg) log's events range [\(first), \(next)) does not fit its \(size) bytes")
                }
                if first == next { logs.append((alg, [])); continue }
                let base = try resolve(phys, length: next, heap: heap, source: source, elementOffset: at) {
                    alg == .sha1 ? (whole.peekU32(at: $0 + first).map { $0 <= 23 || $0 == 255 } ?? false)
                                 : BinaryLogs.looksLikeLegacyHeader(whole, at: $0 + first)
                }
                var log = ByteReader(bytes, source: source, start: base + first, end: base + next)
                logs.append((alg, try BinaryLogs.legacyLog(&log, algorithm: alg, zeroTail: false)))
            }
            let merged = try BinaryLogs.mergeLegacy(logs, source: source)
            return try DRTMEventLog(format: .tpm20Legacy, banks: logs.map(\.algorithm), raw: merged,
                                    source: source, checks: checks)

        default:
            // heap_event_log_ptr_elt_t: u64 address of an event_log_container_t.
            let phys = try e.u64("the TPM 1.2 container address")
            let at = try resolve(phys, length: BinaryLogs.containerHeaderSize, heap: heap, source: source,
                                 elementOffset: element.offset) {
                whole.peek(at: $0, count: 20).map { Array($0) == BinaryLogs.containerSignature } ?? false
            }
            var log = ByteReader(bytes, source: source, start: at, end: heap.fileOffset + heap.size)
            let raw = try BinaryLogs.tpm12Container(&log)
            return try DRTMEventLog(format: .tpm12Container, banks: [.sha1], raw: raw, source: source, checks: checks)
        }
    }
}
