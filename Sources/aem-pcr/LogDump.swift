import AEMPCR
import AEMPCRHardware
import ArgumentParser
import Glibc

struct LogDump: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "dump",
        abstract: "Save the TXT heap, with this boot's DRTM event log, to a file (as root).",
        discussion: """
            Reads the TXT heap registers (TXT.HEAP.BASE and TXT.HEAP.SIZE at physical 0xFED30300) \
            and the heap they point at from /dev/mem, checks that the heap leads to a DRTM event \
            log, and writes a heap dump: the two registers (u64, little-endian) then the heap. \
            Every command that reads a DRTM event log reads that file. It is written whole or not \
            at all.

            Reading /dev/mem needs root. A kernel in lockdown (Secure Boot) refuses it; one built \
            with CONFIG_IO_STRICT_DEVMEM may refuse the heap's range until booted with \
            iomem=relaxed. Registers that read all FF or all zero mean no TXT, so no measured launch.

            Example:
              sudo aem-pcr log dump -o heap.dump
            """)

    @Option(name: .shortAndLong, help: ArgumentHelp("Where to write the heap dump.", valueName: "file"))
    var output: String

    @Option(help: ArgumentHelp("Physical memory to read: /dev/mem, or a file laid out like it (byte N at physical address N), for tests and offline copies.", valueName: "path"))
    var mem = "/dev/mem"

    @Flag(name: .shortAndLong, help: "Print error codes with errors.")
    var verbose = false

    func run() throws {
        Terminal.verbose = verbose
        // Create the output's temporary file first: an unwritable directory fails before /dev/mem is read.
        let file = try AtomicOutputFile(path: output)
        let dump: [UInt8]
        do {
            let memory = try PhysicalMemoryFile(path: mem)
            dump = try TXTHeapDump.capture(from: memory)
            try file.write(dump)
            try file.commit()
        } catch {
            file.discard()
            throw error
        }
        // Describe what was written, read back the way every other command will read it.
        let log = try DRTMEventLog.parse(bytes: dump, source: output, checks: [])
        let base = dump[0..<8].reversed().reduce(UInt64(0)) { $0 << 8 | UInt64($1) }
        let size = dump.count - 16
        Terminal.outputLine(Terminal.wrap("Wrote \(output): TXT heap of \(size) bytes at 0x\(String(base, radix: 16)), "
            + "\(log.format.rawValue) log, \(log.events.count) event\(log.events.count == 1 ? "" : "s")."))
        Terminal.outputLine("List it with: aem-pcr log show \(output)")
        for p in log.problems(.all) {
            LogOutput.warn("\(p) (the dump is kept; read it with --lenient)")
        }
    }
}

/// A file that appears at `path` complete or not at all: written to a temporary file in the same
/// directory, then renamed over `path`.
final class AtomicOutputFile {
    let path: String
    private let tempPath: String
    private var fd: Int32
    private var committed = false

    init(path: String) throws {
        self.path = path
        var dir = "."
        var name = path
        if let slash = path.lastIndex(of: "/") {
            dir = slash == path.startIndex ? "/" : String(path[..<slash])
            name = String(path[path.index(after: slash)...])
        }
        guard !name.isEmpty, name != ".", name != ".." else {
            throw OutputFileError(path: path, "names a directory, not a file to write")
        }
        // The file is renamed over `path`, never opened; still, a FIFO, socket or device there is
        // refused rather than replaced (the user named something that is not a file).
        do {
            try RegularFile.checkReplaceable(path)
        } catch let e as FileError {
            throw OutputFileError(path: path, e.reason)
        }
        var template = Array("\(dir)/.\(name).XXXXXX".utf8CString)
        let fd = template.withUnsafeMutableBufferPointer { mkstemp($0.baseAddress!) }
        guard fd >= 0 else {
            let e = errno
            let why: String
            switch e {
            case ENOENT, ENOTDIR: why = "directory \(dir) does not exist"
            case EACCES, EPERM: why = "directory \(dir) is not writable (permission denied)"
            case EROFS: why = "directory \(dir) is on a read-only file system"
            default: why = "cannot create a file in \(dir): \(String(cString: strerror(e)))"
            }
            throw OutputFileError(path: path, why)
        }
        self.fd = fd
        self.tempPath = String(cString: template.map { UInt8(bitPattern: $0) } + [0])
        // mkstemp's 0600 stays: the dump comes from root-only /dev/mem.
    }

    deinit { discard() }

    func write(_ bytes: [UInt8]) throws {
        var done = 0
        while done < bytes.count {
            let n = bytes.withUnsafeBytes { Glibc.write(fd, $0.baseAddress! + done, $0.count - done) }
            if n < 0 {
                if errno == EINTR { continue }
                throw OutputFileError(path: path, "write failed: \(String(cString: strerror(errno)))")
            }
            done += n
        }
    }

    /// Flushes, closes and renames the temporary file to `path`.
    func commit() throws {
        if fsync(fd) != 0 {
            throw OutputFileError(path: path, "write failed: \(String(cString: strerror(errno)))")
        }
        let c = close(fd)
        fd = -1
        if c != 0 {
            throw OutputFileError(path: path, "write failed: \(String(cString: strerror(errno)))")
        }
        if rename(tempPath, path) != 0 {
            throw OutputFileError(path: path, "cannot rename \(tempPath) to it: \(String(cString: strerror(errno)))")
        }
        committed = true
    }

    /// Removes the temporary file, unless it became `path`.
    func discard() {
        if fd >= 0 { close(fd); fd = -1 }
        if !committed { unlink(tempPath); committed = true }
    }
}

/// An output file that could not be written.
struct OutputFileError: AEMPCRError {
    let path: String
    let reason: String
    init(path: String, _ reason: String) {
        self.path = path
        self.reason = reason
    }
    var errorCode: String { "output-write-failed" }
    var description: String { "\(path): \(reason)" }
}
