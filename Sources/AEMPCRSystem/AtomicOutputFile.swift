// SPDX-License-Identifier: Apache-2.0
import Glibc

/// A file that appears at `path` complete or not at all: written to a temporary file in the same
/// directory (0600, `mkstemp`), flushed (`fsync`), renamed over `path`, and the directory flushed
/// so that the new name survives a power loss (git's lockfile.c, systemd's
/// `write_string_file_atomic`).
public final class AtomicOutputFile {
    public let path: String
    private let directory: String
    private let tempPath: String
    private var fd: Int32
    private var committed = false

    public init(path: String) throws {
        self.path = path
        let (dir, name) = Directory.split(path)
        guard !name.isEmpty, name != ".", name != ".." else {
            throw OutputFileError(path: path, "names a directory, not a file to write")
        }
        // The file is renamed over `path`, never opened; still, a FIFO, socket or device there is
        // refused rather than replaced (the user named something that is not a file).
        try FileKind.checkReplaceable(path)
        var template = Array("\(dir)/.\(name).XXXXXX".utf8CString)
        let fd = template.withUnsafeMutableBufferPointer { mkstemp($0.baseAddress!) }
        guard fd >= 0 else {
            let e = errno
            let why: String
            switch e {
            case ENOENT, ENOTDIR: why = "directory \(dir) does not exist"
            case EACCES, EPERM: why = "directory \(dir) is not writable (permission denied)"
            case EROFS: why = "directory \(dir) is on a read-only file system"
            default: why = "cannot create a file in \(dir): \(Errno(e))"
            }
            throw OutputFileError(path: path, why)
        }
        self.fd = fd
        self.directory = dir
        self.tempPath = String(cString: template.map { UInt8(bitPattern: $0) } + [0])
        // mkstemp's 0600 stays: what is written may come from root-only /dev/mem.
    }

    deinit { discard() }

    public func write(_ bytes: [UInt8]) throws {
        var done = 0
        while done < bytes.count {
            let n = bytes.withUnsafeBytes { Glibc.write(fd, $0.baseAddress! + done, $0.count - done) }
            if n < 0 {
                if errno == EINTR { continue }
                throw OutputFileError(path: path, "write failed: \(Errno.current)")
            }
            done += n
        }
    }

    /// Flushes, closes and renames the temporary file to `path`, then flushes the directory.
    public func commit() throws {
        if fsync(fd) != 0 {
            throw OutputFileError(path: path, "write failed: \(Errno.current)")
        }
        let c = close(fd)
        fd = -1
        if c != 0 {
            throw OutputFileError(path: path, "write failed: \(Errno.current)")
        }
        if rename(tempPath, path) != 0 {
            throw OutputFileError(path: path, "cannot rename \(tempPath) to it: \(Errno.current)")
        }
        committed = true
        do {
            try Directory.sync(directory)
        } catch {
            throw OutputFileError(path: path, "written, but its directory could not be flushed (fsync \(directory): \(error)): the new file may not survive a power loss")
        }
    }

    /// Removes the temporary file, unless it became `path`.
    public func discard() {
        if fd >= 0 { close(fd); fd = -1 }
        if !committed { unlink(tempPath); committed = true }
    }

    /// Writes `bytes` to `path` in one step: all of them or, on an error, nothing (`path` keeps
    /// what it had).
    public static func write(_ bytes: [UInt8], to path: String) throws {
        let f = try AtomicOutputFile(path: path)
        try f.write(bytes)
        try f.commit()
    }
}

/// What kind of file a path names, in words, for refusing what is not a regular file.
public enum FileKind {
    /// Refuses an existing `path` that is not a regular file (a link is followed), without
    /// opening it: for outputs written beside their name and renamed over it.
    public static func checkReplaceable(_ path: String) throws {
        var st = stat()
        guard lstat(path, &st) == 0 else { return }
        let kind = st.st_mode & S_IFMT
        if kind == S_IFDIR { throw OutputFileError(path: path, "is a directory; give the name of the file to write") }
        if kind != S_IFREG && kind != S_IFLNK { throw OutputFileError(path: path, refusal(kind)) }
        if kind == S_IFLNK, stat(path, &st) == 0, st.st_mode & S_IFMT != S_IFREG, st.st_mode & S_IFMT != S_IFDIR {
            throw OutputFileError(path: path, refusal(st.st_mode & S_IFMT))
        }
    }

    /// Why a file of `kind` (`st_mode & S_IFMT`, not a regular file) is refused.
    public static func refusal(_ kind: mode_t) -> String {
        let what: String
        switch kind {
        case S_IFIFO: what = "a FIFO"
        case S_IFSOCK: what = "a socket"
        case S_IFCHR: what = "a character device"
        case S_IFBLK: what = "a block device"
        default: what = "not a regular file"
        }
        let head = what == "not a regular file" ? "is not a regular file" : "is \(what), not a regular file"
        return head + ": refused before it is opened (opening a FIFO waits forever)"
    }
}
