// SPDX-License-Identifier: Apache-2.0
import Glibc

/// Physical memory, addressed by physical address: the kernel's `/dev/mem`, or a file laid out
/// the same way (byte N of the file is physical address N) for tests and for offline copies.
public protocol PhysicalMemory {
    /// What to call the memory in messages (its path).
    var name: String { get }
    /// Exactly `count` bytes at physical `address`, or an error naming the address.
    func read(at address: UInt64, count: Int) throws -> [UInt8]
}

/// Captures the TXT heap of the running machine into a heap dump file that `DRTMEventLog.parse`
/// reads (tboot `include/txt/config_regs.h`, `heap.h`): the *compact* layout of `TXTHeap`, u64 TXT.HEAP.BASE, u64 TXT.HEAP.SIZE
/// (little-endian), then the heap bytes.
public enum TXTHeapDump {
    /// The TXT public configuration registers (Intel TXT Software Development Guide, appendix B).
    public static let publicSpace: UInt64 = 0xFED3_0000
    /// TXT.HEAP.BASE, u64: physical address of the heap.
    public static let heapBaseRegister: UInt64 = publicSpace + 0x300
    /// TXT.HEAP.SIZE, u64: its size in bytes.
    public static let heapSizeRegister: UInt64 = publicSpace + 0x308
    /// The largest heap captured (real heaps are 1 MiB or less); log files are read up to this
    /// size plus 4 KiB (`DRTMEventLog.maxFileSize`).
    public static let maxHeapSize: UInt64 = 64 << 20

    /// TXT.HEAP.BASE and TXT.HEAP.SIZE as read.
    public struct Registers: Equatable, Sendable {
        public let base: UInt64
        public let size: UInt64
    }

    /// Reads the two heap registers and checks they describe a heap: not all FF or all zero (no
    /// TXT), both nonzero and page-aligned, size at most `maxHeapSize`, base + size in range.
    public static func registers(from memory: PhysicalMemory) throws -> Registers {
        let b = try memory.read(at: heapBaseRegister, count: 16)
        let regs = Registers(base: le64(b, 0), size: le64(b, 8))
        let source = memory.name
        if b.allSatisfy({ $0 == 0xFF }) || b.allSatisfy({ $0 == 0 }) {
            throw CodedError(.txtAbsent, source: source, address: heapBaseRegister,
                "no TXT: the heap registers TXT.HEAP.BASE and TXT.HEAP.SIZE read all "
                + (b[0] == 0 ? "zero" : "FF") + ", so this machine has no TXT (or the firmware disabled it) "
                + "and no measured launch happened")
        }
        let base = hex0x(regs.base, width: 1), size = hex0x(regs.size, width: 1)
        guard regs.size != 0 else {
            throw CodedError(.txtHeapRegistersBad, source: source, address: heapSizeRegister,
                "TXT.HEAP.SIZE is 0 (TXT.HEAP.BASE \(base)): the firmware set up no TXT heap, so no measured launch happened")
        }
        guard regs.base != 0 else {
            throw CodedError(.txtHeapRegistersBad, source: source, address: heapBaseRegister,
                "TXT.HEAP.BASE is 0 (TXT.HEAP.SIZE \(size)): the firmware set up no TXT heap, so no measured launch happened")
        }
        guard regs.size <= maxHeapSize else {
            throw CodedError(.txtHeapRegistersBad, source: source, address: heapSizeRegister,
                "TXT.HEAP.SIZE \(size) is more than 64 MiB (real heaps are 1 MiB or less): these are not TXT registers")
        }
        guard regs.base <= UInt64.max - regs.size else {
            throw CodedError(.txtHeapRegistersBad, source: source, address: heapBaseRegister,
                "TXT.HEAP.BASE \(base) + TXT.HEAP.SIZE \(size) passes the end of the address space: these are not TXT registers")
        }
        guard regs.base % 4096 == 0, regs.size % 4096 == 0 else {
            throw CodedError(.txtHeapRegistersBad, source: source, address: heapBaseRegister,
                "TXT.HEAP.BASE \(base) or TXT.HEAP.SIZE \(size) is not page-aligned: these are not TXT registers")
        }
        return regs
    }

    /// The heap dump of `memory`: the registers, then the heap they point at. The dump is checked
    /// to parse as a DRTM log the way `DRTMEventLog.parse(bytes:)` reads a dump file (heap walk,
    /// log framing; no semantic checks, so a log with duplicated records is still captured and
    /// `aem-pcr log show --lenient` can list it). Errors of that check give offsets in the dump.
    public static func capture(from memory: PhysicalMemory) throws -> [UInt8] {
        let regs = try registers(from: memory)
        let heap = try memory.read(at: regs.base, count: Int(regs.size))
        var dump = [UInt8]()
        dump.reserveCapacity(16 + heap.count)
        for v in [regs.base, regs.size] {
            for i in 0..<8 { dump.append(UInt8(truncatingIfNeeded: v >> (8 * UInt64(i)))) }
        }
        dump.append(contentsOf: heap)
        let source = "the TXT heap read from \(memory.name) (\(hex0x(regs.size, width: 1)) bytes at \(hex0x(regs.base, width: 1)))"
        guard DRTMEventLog.detect(dump[...]) == .heapDump else {
            throw CodedError(.txtHeapRegistersBad, source: memory.name, address: heapBaseRegister,
                "TXT.HEAP.BASE \(hex0x(regs.base, width: 1)) makes a dump this tool would not read back as one")
        }
        _ = try DRTMEventLog.parse(bytes: dump, source: source, checks: [])
        return dump
    }

    private static func le64(_ b: [UInt8], _ at: Int) -> UInt64 {
        var v: UInt64 = 0
        for i in (0..<8).reversed() { v = v << 8 | UInt64(b[at + i]) }
        return v
    }
}
