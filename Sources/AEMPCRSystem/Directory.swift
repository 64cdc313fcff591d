// SPDX-License-Identifier: Apache-2.0
import Glibc

/// Directories: made with their parents (`mkdir -p`), listed, synced.
public enum Directory {
    /// Makes `path` and every missing parent, each new one with `mode`, as `mkdir -p` does; a
    /// component that exists already is left as it is. `parents: false`: only the last
    /// component is made (`mkdir`), its parents must exist.
    ///
    /// The walk goes by descriptor, never by a path string resolved again: each component is
    /// made with `mkdirat` in the directory opened before it and opened with `O_NOFOLLOW`. A
    /// symbolic link on the way is followed only when root or this user owns it (as the
    /// kernel's `protected_symlinks` rule for sticky directories): one another user planted
    /// cannot redirect where the directory is made.
    public static func create(_ path: String, mode: mode_t, parents: Bool = true) throws {
        let parts = path.split(separator: "/").map(String.init)
        var walked = path.hasPrefix("/") ? "" : "."
        var fd = open(path.hasPrefix("/") ? "/" : ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        guard fd >= 0 else { throw OutputFileError(path: path.hasPrefix("/") ? "/" : ".", "cannot open: \(Errno.current)") }
        defer { close(fd) }
        for (i, part) in parts.enumerated() {
            let here = walked + "/" + part
            let last = i == parts.count - 1
            if (parents || last) && mkdirat(fd, part, mode) != 0 && errno != EEXIST {
                throw OutputFileError(path: here, "cannot create the directory: \(Errno.current)")
            }
            if last { break }
            var next = openat(fd, part, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)
            if next < 0 {
                let e = errno
                var st = stat()
                guard (e == ELOOP || e == ENOTDIR), fstatat(fd, part, &st, AT_SYMLINK_NOFOLLOW) == 0,
                      st.st_mode & S_IFMT == S_IFLNK else {
                    // As mkdir -p says it: the next directory cannot be made in this one.
                    throw OutputFileError(path: here + "/" + parts[i + 1], "cannot create the directory: \(Errno(e))")
                }
                guard st.st_uid == 0 || st.st_uid == geteuid() else {
                    throw OutputFileError(path: here, "is a symbolic link owned by user \(st.st_uid), neither root nor this user: not followed (another user could point it elsewhere); give the real path")
                }
                next = openat(fd, part, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
                if next < 0 { throw OutputFileError(path: here, "cannot open the directory: \(Errno.current)") }
            }
            close(fd)
            fd = next
            walked = here
        }
    }

    /// The names in the directory `path`, without `.` and `..`, sorted. A read error (EIO) is
    /// thrown, never taken for the end of the directory.
    public static func entries(_ path: String) throws(Errno) -> [String] {
        let fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        guard fd >= 0 else { throw Errno.current }
        defer { close(fd) }
        return try entries(fd: fd)
    }

    /// The names in the directory open as `fd` (read from its start; `fd` stays open), without
    /// `.` and `..`, sorted.
    public static func entries(fd: Int32) throws(Errno) -> [String] {
        let copy = fcntl(fd, F_DUPFD_CLOEXEC, 0)
        guard copy >= 0 else { throw Errno.current }
        guard let d = fdopendir(copy) else {
            let e = Errno.current
            close(copy)
            throw e
        }
        defer { closedir(d) }
        rewinddir(d)  // the copy shares the offset of `fd`
        var out = [String]()
        while true {
            // readdir returns nil at the end and on an error: errno tells them apart.
            errno = 0
            guard let e = readdir(d) else {
                if errno != 0 { throw Errno.current }
                break
            }
            let name = withUnsafeBytes(of: e.pointee.d_name) { raw in
                String(decoding: raw.prefix(while: { $0 != 0 }), as: UTF8.self)
            }
            if name != "." && name != ".." { out.append(name) }
        }
        return out.sorted()
    }

    /// The names in `path` that are directories (a symbolic link to one counts), sorted.
    public static func subdirectories(_ path: String) throws(Errno) -> [String] {
        try entries(path).filter { name in
            var st = stat()
            return stat(path + "/" + name, &st) == 0 && st.st_mode & S_IFMT == S_IFDIR
        }
    }

    /// `fsync` of the directory `path`: makes the names created, renamed or removed in it
    /// survive a power loss.
    public static func sync(_ path: String) throws(Errno) {
        let fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        guard fd >= 0 else { throw Errno.current }
        defer { close(fd) }
        if fsync(fd) != 0 { throw Errno.current }
    }

    /// `path` cut at its last slash: the directory (`.` when none, `/` for the root) and the
    /// last component.
    public static func split(_ path: String) -> (directory: String, name: String) {
        guard let slash = path.lastIndex(of: "/") else { return (".", path) }
        let dir = slash == path.startIndex ? "/" : String(path[..<slash])
        return (dir, String(path[path.index(after: slash)...]))
    }
}
