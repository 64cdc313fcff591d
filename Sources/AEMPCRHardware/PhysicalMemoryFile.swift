// The hardware layer: reads the machine (physical memory through /dev/mem). The AEMPCR library
// computes and explains from what this layer reads, and never touches hardware itself.
import AEMPCR
#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

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
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        if fd < 0 {
            let e = errno
            switch e {
            case ENOENT, ENOTDIR:
                throw TXTMemoryError(.notFound, source: path,
                    "no such file (a kernel built without CONFIG_DEVMEM has no /dev/mem)")
            case EACCES:
                throw TXTMemoryError(.permissionDenied, source: path,
                    "permission denied: run as root (/dev/mem is readable by root only)")
            case EPERM:
                throw TXTMemoryError(.permissionDenied, source: path,
                    "operation not permitted: reading /dev/mem needs root with CAP_SYS_RAWIO and a kernel "
                    + "not in lockdown (Secure Boot's lockdown closes /dev/mem)")
            default:
                throw TXTMemoryError(.readFailed, source: path, "cannot open: \(String(cString: strerror(e)))")
            }
        }
        var st = stat()
        if fstat(fd, &st) == 0, (st.st_mode & S_IFMT) == S_IFDIR {
            close(fd)
            throw TXTMemoryError(.readFailed, source: path, "is a directory, not /dev/mem or a memory image")
        }
        self.fd = fd
    }

    deinit { close(fd) }

    public func read(at address: UInt64, count: Int) throws -> [UInt8] {
        precondition(count >= 0, "negative read")
        guard address <= UInt64(Int64.max), UInt64(count) <= UInt64(Int64.max) - address else {
            throw TXTMemoryError(.readFailed, source: name, address: address,
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
                if e == EPERM {
                    throw TXTMemoryError(.blocked, source: name, address: at,
                        "the kernel blocks reading this range of /dev/mem (CONFIG_STRICT_DEVMEM, "
                        + "CONFIG_IO_STRICT_DEVMEM): boot with iomem=relaxed")
                }
                throw TXTMemoryError(.readFailed, source: name, address: at,
                                     "read failed: \(String(cString: strerror(e)))")
            }
            if n == 0 {
                throw TXTMemoryError(.readFailed, source: name, address: address + UInt64(done),
                    "the file ends here, \(count - done) bytes short of the \(count) needed at "
                    + "0x\(String(address, radix: 16)): not /dev/mem or an image of physical memory that reaches this address")
            }
            done += n
        }
        return out
    }
}

