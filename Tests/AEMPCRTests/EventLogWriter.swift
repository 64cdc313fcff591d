// SPDX-License-Identifier: Apache-2.0
@testable import AEMPCR

/// Test-side writer of DRTM logs in the three binary formats and of TXT heap dumps, written from
/// the layouts of tboot `include/txt/heap.h` and the TCG PC Client firmware profile (independently of the parser), for round trips and
/// for building malformed inputs field by field.
enum LogWriter {
    static func le16(_ v: UInt16) -> [UInt8] { [UInt8(v & 0xFF), UInt8(v >> 8)] }
    static func le32(_ v: UInt32) -> [UInt8] { (0..<4).map { UInt8(truncatingIfNeeded: v >> (8 * $0)) } }
    static func le64(_ v: UInt64) -> [UInt8] { (0..<8).map { UInt8(truncatingIfNeeded: v >> (8 * $0)) } }

    /// `{u32 pcr; u32 type; digest; u32 size; data}` (TPM 1.2 and per-algorithm logs).
    static func fixedRecord(pcr: UInt32, type: UInt32, digest: [UInt8], data: [UInt8]) -> [UInt8] {
        le32(pcr) + le32(type) + digest + le32(UInt32(data.count)) + data
    }

    // MARK: TCG

    /// The Spec ID Event03 header record, fields as in the Intel SecL log by default.
    static func tcgHeader(_ algs: [(UInt16, UInt16)], platformClass: UInt32 = 0, minor: UInt8 = 0, major: UInt8 = 2,
                          errata: UInt8 = 0, uintnSize: UInt8 = 1, vendor: [UInt8] = [],
                          count: UInt32? = nil) -> [UInt8] {
        var spec = Array("Spec ID Event03".utf8) + [0]
        spec += le32(platformClass) + [minor, major, errata, uintnSize]
        spec += le32(count ?? UInt32(algs.count))
        for (a, s) in algs { spec += le16(a) + le16(s) }
        spec += [UInt8(vendor.count)] + vendor
        return fixedRecord(pcr: 0, type: 3, digest: [UInt8](repeating: 0, count: 20), data: spec)
    }

    /// A `TCG_PCR_EVENT2` record with the given digests in the given order.
    static func tcgRecord(pcr: UInt32, type: UInt32, digests: [(UInt16, [UInt8])], data: [UInt8], count: UInt32? = nil) -> [UInt8] {
        var out = le32(pcr) + le32(type) + le32(count ?? UInt32(digests.count))
        for (a, d) in digests { out += le16(a) + d }
        return out + le32(UInt32(data.count)) + data
    }

    static func tcgLog(_ events: [DRTMEvent], banks: [HashAlgorithm]) -> [UInt8] {
        var out = tcgHeader(banks.map { ($0.rawValue, UInt16($0.digestSize!)) })
        for e in events {
            out += tcgRecord(pcr: e.pcr.rawValue, type: e.type.rawValue,
                             digests: e.sortedDigests.map { ($0.algorithm.rawValue, $0.bytes) }, data: e.data)
        }
        return out
    }

    // MARK: TPM 1.2 container

    static let containerSignature = Array("TXT Event Container".utf8) + [0]

    /// `event_log_container_t` of `size` bytes (tboot: 20 KiB) holding SHA-1 records.
    static func container(_ events: [DRTMEvent], size: UInt32 = 0x5000, padToSize: Bool = true,
                          first: UInt32? = nil, next: UInt32? = nil) -> [UInt8] {
        var body = [UInt8]()
        for e in events {
            body += fixedRecord(pcr: e.pcr.rawValue, type: e.type.rawValue, digest: e.digests[.sha1]!.bytes, data: e.data)
        }
        var out = containerSignature + [UInt8](repeating: 0, count: 12) + [1, 0, 1, 0]
        out += le32(size) + le32(first ?? 48) + le32(next ?? UInt32(48 + body.count))
        out += body
        if padToSize && out.count < Int(size) { out += [UInt8](repeating: 0, count: Int(size) - out.count) }
        return out
    }

    // MARK: TPM 2.0 per-algorithm logs

    /// tboot's `DIGEST_ALG_ID_*`.
    static func digestID(_ a: HashAlgorithm) -> UInt32 {
        switch a { case .sha1: 1; case .sha256: 2; case .sha384: 3; case .sha512: 4; default: 5 }
    }

    /// One per-algorithm log: for non-SHA-1, the SHA-1-format header record first.
    static func legacyLog(_ events: [DRTMEvent], algorithm: HashAlgorithm) -> [UInt8] {
        var out = [UInt8]()
        if algorithm != .sha1 {
            let descr = Array("TCG_LOG_DESCRIPT".utf8) + le32(1) + le32(digestID(algorithm)) + le32(UInt32(algorithm.digestSize!))
            out += fixedRecord(pcr: 0, type: 3, digest: [UInt8](repeating: 0, count: 20), data: descr)
        }
        for e in events where e.digests[algorithm] != nil {
            out += fixedRecord(pcr: e.pcr.rawValue, type: e.type.rawValue, digest: e.digests[algorithm]!.bytes, data: e.data)
        }
        return out
    }

    // MARK: TXT heap dump

    /// An OsSinitData extended element.
    static func element(_ type: UInt32, _ data: [UInt8]) -> [UInt8] { le32(type) + le32(UInt32(8 + data.count)) + data }

    /// What a test heap holds: the element data (addresses filled in by `heapDump`) and the log
    /// buffers placed in OsMleData.
    enum HeapLog {
        case tcg([UInt8], allocated: UInt32 = 0x2000)
        case container([UInt8])
        case legacy([(HashAlgorithm, [UInt8])])
        case none
    }

    /// A compact heap dump (u64 base, u64 size, heap) with the given log in OsMleData.
    /// `osSinitVersion`, `extraElements` and `mutateElement` let tests break it on purpose.
    static func heapDump(_ log: HeapLog, base: UInt64 = 0x7BF2_0000, heapSize: Int = 0x10000,
                         osSinitVersion: UInt32 = 7, elementsBefore: [[UInt8]] = [],
                         mutateElement: ((inout [UInt8]) -> Void)? = nil, end: Bool = true) -> [UInt8] {
        let bios = le32(3) + le32(0x20000) + le64(0) + le64(0) + le32(8) + le64(0)
        let osMleHeader = le32(3) + [UInt8](repeating: 0xAB, count: 0x40)  // stand-in for tboot's fields
        // OsMleData: header, then log buffers (each 4 KiB aligned within the section for readability).
        let osMleStart = 8 + bios.count
        var osMle = osMleHeader
        var buffers = [(offset: Int, bytes: [UInt8])]()
        func place(_ b: [UInt8]) -> UInt64 {
            let heapOffset = osMleStart + 8 + osMle.count
            osMle += b
            buffers.append((heapOffset, b))
            return base + UInt64(heapOffset)
        }
        var elt: [UInt8]
        switch log {
        case .tcg(let b, let allocated):
            let addr = place(b + [UInt8](repeating: 0, count: max(0, Int(allocated) - b.count)))
            elt = element(8, le64(addr) + le32(allocated) + le32(0) + le32(UInt32(b.count)))
        case .container(let b):
            elt = element(5, le64(place(b)))
        case .legacy(let logs):
            var d = le32(UInt32(logs.count))
            for (alg, b) in logs {
                let addr = place(b + [UInt8](repeating: 0, count: 4096 - b.count % 4096))
                d += le16(alg.rawValue) + le16(0) + le64(addr) + le32(4096 * UInt32((b.count / 4096) + 1))
                    + le32(0) + le32(UInt32(b.count))
            }
            elt = element(7, d)
        case .none:
            elt = []
        }
        mutateElement?(&elt)
        var osSinit = le32(osSinitVersion) + le32(0) + [UInt8](repeating: 0, count: 72) + le32(0x227) + le64(0)
        for e in elementsBefore { osSinit += e }
        osSinit += elt
        if end { osSinit += element(0, []) }
        let sinitMle = le32(9) + [UInt8](repeating: 0, count: 0x100)

        var heap = le64(UInt64(8 + bios.count)) + bios
        heap += le64(UInt64(8 + osMle.count)) + osMle
        heap += le64(UInt64(8 + osSinit.count)) + osSinit
        heap += le64(UInt64(8 + sinitMle.count)) + sinitMle
        precondition(heap.count <= heapSize, "test heap too small")
        heap += [UInt8](repeating: 0, count: heapSize - heap.count)
        return le64(base) + le64(UInt64(heapSize)) + heap
    }
}

/// SplitMix64: a small seeded generator so the fuzz tests are reproducible.
struct SplitMix64: RandomNumberGenerator {
    var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}

/// Test-side writer of tboot's printed log (`txt-stat`), shaped like tboot's `print_event`,
/// `print_event_2` and `print_event_2_1`: tabs, a `TBOOT:` prefix on field lines, 16 bytes a line.
enum TextWriter {
    static func hexLines(_ bytes: [UInt8], prefix: String) -> String {
        stride(from: 0, to: bytes.count, by: 16).map { i in
            prefix + bytes[i..<min(i + 16, bytes.count)].map { Hex.encode([$0]) + " " }.joined() + "\n"
        }.joined()
    }

    /// One `Event:` record (TPM 1.2 / legacy) with the digest of `bank`.
    static func legacyEvent(_ e: DRTMEvent, bank: HashAlgorithm) -> String {
        var s = "TBOOT: \t\t\t Event:\n"
        s += "TBOOT: \t\t\t     PCRIndex: \(e.pcr.rawValue)\n"
        s += "TBOOT: \t\t\t         Type: 0x\(String(e.type.rawValue, radix: 16))\n"
        let d = e.digests[bank]!.bytes
        s += "TBOOT: \t\t\t       Digest: " + d.prefix(16).map { Hex.encode([$0]) + " " }.joined() + "\n"
        if d.count > 16 { s += hexLines(Array(d.dropFirst(16)), prefix: "") }
        s += "TBOOT: \t\t\t         Data: \(e.data.count) bytes\n"
        s += hexLines(e.data, prefix: "\t\t\t         ")
        return s
    }

    /// The legacy print: one `Log Descrption` per bank with that bank's records.
    static func legacyLog(_ events: [DRTMEvent], banks: [HashAlgorithm]) -> String {
        var s = "TBOOT: \t\t EVENT_LOG_PTR:\nTBOOT: \t\t      count: \(banks.count)\n"
        for b in banks {
            s += "TBOOT: \t\t\t Log Descrption:\nTBOOT: \t\t\t             Alg: \(b.rawValue)\n"
            s += "TBOOT: \t\t\t            Size: 4096\nTBOOT: \t\t\t    EventsOffset: [0,1234]\n"
            if b != .sha1 {
                // tboot prints the SHA-1-format header record of a non-SHA-1 log with a 20-byte digest.
                let descr = Array("TCG_LOG_DESCRIPT".utf8) + LogWriter.le32(1) + LogWriter.le32(LogWriter.digestID(b))
                    + LogWriter.le32(UInt32(b.digestSize!))
                let header = DRTMEvent(pcr: 0, type: .noAction, digests: [Digest.zeros(.sha1)], data: descr)
                s += legacyEvent(header, bank: .sha1)
            }
            for e in events where e.digests[b] != nil { s += legacyEvent(e, bank: b) }
        }
        return s
    }

    /// The TCG print: header with the algorithms, then `TCG Event:` records.
    static func tcgLog(_ events: [DRTMEvent], banks: [HashAlgorithm]) -> String {
        var s = "\t TCG Event Log Header:\n\t\t       pcr_index: 0\n\t\t      event_type: 3\n\t\t          digest: \n"
        s += "\t\t event_data_size: 37\n\t\t \t   header event data:  \n\t\t\t              signature: Spec ID Event03\n"
        s += "\t\t\t   number_of_algorithms: \(banks.count)\n"
        for b in banks { s += "\t\t\t\t   algorithm_id: 0x\(String(b.rawValue, radix: 16)) \n\t\t\t\t    digest_size: \(b.digestSize!)\n" }
        s += "\t\t\t       vendor_info: 0 bytes\n"
        for e in events {
            s += "\t\t\t TCG Event:\n\t\t\t      pcr_index: \(e.pcr.rawValue)\n"
            s += "\t\t\t     event_type: 0x\(String(e.type.rawValue, radix: 16))\n\t\t\t          count: \(e.digests.count)\n"
            for d in e.sortedDigests { s += d.algorithm.description.uppercased() + ": \n" + hexLines(d.bytes, prefix: "") }
            s += "\t\t\t     event_data: \(e.data.count) bytes" + (e.data.isEmpty ? "\n" : "\n" + hexLines(e.data, prefix: "\t\t\t     "))
        }
        return s
    }
}
