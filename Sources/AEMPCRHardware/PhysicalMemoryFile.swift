// SPDX-License-Identifier: Apache-2.0
// The hardware layer: reads the machine (physical memory through /dev/mem). The AEMPCR library
// computes and explains from what this layer reads, and never touches hardware itself.
import AEMPCR
import AEMPCRSystem
import Glibc

/// `/dev/mem` (or a file laid out like physical memory) read with `pread` at the physical address.
///
/// Nothing is mapped: `pread` on `/dev/mem` copies through the kernel, which checks each page
/// (CONFIG_STRICT_DEVMEM) and answers EPERM for a range it will not show.
public final class PhysicalMemoryFile: PhysicalMemory {
    public let name: String
    private let fd: Int32

    /// Opens `path` read-only; errors say what to do (run as root, the kernel's restrictions).
    public init(path: String = "/dev/mem") throws {
        self.name = path
        // /dev/mem is a character device, an image a regular file; a FIFO or socket is refused
        // before it is opened (opening a FIFO waits for a writer forever).
        let fd: Int32
        do {
            fd = try RegularFile.open(path, flags: O_RDONLY, allow: .characterDevice) { e in
                switch e {
                case ENOENT, ENOTDIR:
                    return CodedError(.memNotFound, source: path,
                        "no such file (a kernel built without CONFIG_DEVMEM has no /dev/mem)")
                case EACCES:
                    return CodedError(.memPermissionDenied, source: path,
                        "permission denied: run as root (/dev/mem is readable by root only)")
                case EPERM:
                    return CodedError(.memPermissionDenied, source: path,
                        "operation not permitted: reading /dev/mem needs root with CAP_SYS_RAWIO and a kernel "
                        + "not in lockdown (Secure Boot's lockdown closes /dev/mem)")
                default:
                    return CodedError(.memReadFailed, source: path, "cannot open: \(Errno(e))")
                }
            }
        } catch let e as CodedError where e.code == .fileIsDirectory {
            throw CodedError(.memReadFailed, source: path, "is a directory, not /dev/mem or a memory image")
        } catch let e as CodedError where e.code.isFile {
            throw CodedError(.memReadFailed, source: path, e.reason)
        }
        self.fd = fd
    }

    deinit { close(fd) }

    /// Reads through a read-only shared mapping of the pages holding `[address, address+count)`.
    private func mapped(at address: UInt64, count: Int) throws -> [UInt8] {
        let page = UInt64(sysconf(Int32(_SC_PAGESIZE)))
        let start = address / page * page
        let length = Int(address - start) + count
        guard start <= UInt64(Int64.max) else {
            throw CodedError(.memReadFailed, source: name, address: address, "address out of range")
        }
        let p = mmap(nil, length, PROT_READ, MAP_SHARED, fd, off_t(start))
        guard let base = p, base != MAP_FAILED else {
            let e = errno
            if e == EPERM {
                throw CodedError(.memBlocked, source: name, address: address,
                    "the kernel blocks mapping this range of /dev/mem "
                    + "(CONFIG_IO_STRICT_DEVMEM): boot with iomem=relaxed")
            }
            throw CodedError(.memReadFailed, source: name, address: address,
                                 "neither read nor mapped: \(Errno(e))")
        }
        defer { munmap(base, length) }
        let from = UnsafeRawPointer(base) + Int(address - start)
        return Array(UnsafeRawBufferPointer(start: from, count: count))
    }

    public func read(at address: UInt64, count: Int) throws -> [UInt8] {
        precondition(count >= 0, "negative read")
        guard address <= UInt64(Int64.max), UInt64(count) <= UInt64(Int64.max) - address else {
            throw CodedError(.memReadFailed, source: name, address: address,
                                 "\(count) bytes from here pass the largest file offset")
        }
        var out = [UInt8](repeating: 0, count: count)
        var done = 0
        while done < count {
            let n = out.withUnsafeMutableBytes { buf in
                pread(fd, buf.baseAddress! + done, count - done, off_t(address + UInt64(done)))
            }
            if n < 0 {
                let e = errno
                if e == EINTR { continue }
                let at = address + UInt64(done)
                if e == EFAULT || e == EINVAL || e == ENXIO {
                    // Linux's read of /dev/mem stops at high_memory (a dom0 limited to 4 GiB);
                    // txt-stat maps the range instead, and so does this.
                    let rest = try mapped(at: at, count: count - done)
                    out.withUnsafeMutableBytes { buf in
                        rest.withUnsafeBytes { (buf.baseAddress! + done).copyMemory(from: $0.baseAddress!, byteCount: rest.count) }
                    }
                    done = count
                    break
                }
                if e == EPERM {
                    throw CodedError(.memBlocked, source: name, address: at,
                        "the kernel blocks reading this range of /dev/mem "
                        + "(CONFIG_IO_STRICT_DEVMEM): boot with iomem=relaxed")
                }
                throw CodedError(.memReadFailed, source: name, address: at,
                                     "read failed: \(Errno(e))")
            }
            if n == 0 {
                throw CodedError(.memReadFailed, source: name, address: address + UInt64(done),
                    "the file ends here, \(count - done) bytes short of the \(count) needed at "
                    + "0x\(String(address, radix: 16)): not /dev/mem or an image of physical memory that reaches this address")
            }
            done += n
        }
        return out
    }
}

