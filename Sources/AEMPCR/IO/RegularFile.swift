// SPDX-License-Identifier: Apache-2.0
import AEMPCRSystem
import Glibc

/// Opens a file named by the user, never waiting on it: opening a FIFO blocks (for reading, until a
/// writer comes; for writing, until a reader comes), so a FIFO, socket or device is refused before
/// anything is read or written. One place for every input and output the tool opens by name.
///
/// The file is checked with `stat` first, then opened with `O_NONBLOCK | O_NOCTTY | O_CLOEXEC`
/// (a FIFO then opens at once, or fails with ENXIO for writing) and checked again with `fstat`
/// (it may have been swapped in between); `O_NONBLOCK` is cleared before the descriptor is returned.
public enum RegularFile {
    /// What may be opened besides a regular file.
    public enum Allow: Sendable {
        /// A regular file only.
        case regularOnly
        /// A regular file or a character device (`/dev/mem`).
        case characterDevice
    }

    /// A descriptor of the regular file at `path`, opened with `flags` (`O_RDONLY`, or `O_WRONLY |
    /// O_CREAT | O_TRUNC`, with `O_NOFOLLOW` where a link must not be followed). Throws a
    /// `CodedError` naming `path`.
    /// `openError`, when given, makes the error for a failed `open` (its errno) instead of the
    /// generic one, where the caller can say more (run as root, the kernel's lockdown).
    public static func open(_ path: String, flags: Int32, mode: mode_t = 0o644, allow: Allow = .regularOnly,
                            openError: ((Int32) -> any Error)? = nil) throws -> Int32 {
        var pre = stat()
        if stat(path, &pre) == 0 {
            let kind = pre.st_mode & S_IFMT
            if kind == S_IFDIR { throw CodedError(.fileIsDirectory, source: path, "is a directory, not a file") }
            if !acceptable(kind, allow) { throw refusal(path, kind) }
        }
        let fd = systemOpen(path, flags | O_NONBLOCK | O_NOCTTY | O_CLOEXEC, mode)
        if fd < 0 {
            let e = errno
            if e != ENXIO, let openError { throw openError(e) }
            switch e {
            case ENOENT, ENOTDIR:
                throw CodedError(.fileNotFound, source: path, "no such file")
            case EACCES, EPERM:
                throw CodedError(.fileNotReadable, source: path, "permission denied (run as a user who can \(flags & O_ACCMODE == O_RDONLY ? "read" : "write") it)")
            case ENXIO:
                // A FIFO with no reader, opened for writing without waiting.
                throw refusal(path, S_IFIFO)
            case ELOOP where flags & O_NOFOLLOW != 0:
                throw CodedError(.fileNotReadable, source: path, "is a symbolic link, not followed here")
            case EISDIR:
                throw CodedError(.fileIsDirectory, source: path, "is a directory, not a file")
            default:
                throw CodedError(.fileNotReadable, source: path, "cannot open: \(Errno(e))")
            }
        }
        var st = stat()
        guard fstat(fd, &st) == 0 else {
            let e = errno
            close(fd)
            throw CodedError(.fileNotReadable, source: path, "cannot stat: \(Errno(e))")
        }
        let kind = st.st_mode & S_IFMT
        if kind == S_IFDIR {
            close(fd)
            throw CodedError(.fileIsDirectory, source: path, "is a directory, not a file")
        }
        if !acceptable(kind, allow) {
            close(fd)
            throw refusal(path, kind)
        }
        let fl = fcntl(fd, F_GETFL)
        if fl >= 0 { _ = fcntl(fd, F_SETFL, fl & ~O_NONBLOCK) }
        return fd
    }

    private static func acceptable(_ kind: mode_t, _ allow: Allow) -> Bool {
        kind == S_IFREG || (allow == .characterDevice && kind == S_IFCHR)
    }

    private static func refusal(_ path: String, _ kind: mode_t) -> CodedError {
        CodedError(.fileNotReadable, source: path, FileKind.refusal(kind))
    }
}

/// The C library's open(2), named apart from `RegularFile.open` (whichever C module is imported).
private func systemOpen(_ path: String, _ flags: Int32, _ mode: mode_t) -> Int32 {
    open(path, flags, mode)
}
