// SPDX-License-Identifier: Apache-2.0
import Glibc

/// Directories: made with their parents (`mkdir -p`), listed, synced.
public enum Directory {
    /// Makes `path` and every missing parent, each new one with `mode`, as `mkdir -p` does; a
    /// component that exists already is left as it is.
    public static func create(_ path: String, mode: mode_t) throws {
        var prefix = path.hasPrefix("/") ? "" : "."
        for part in path.split(separator: "/") {
            prefix += "/" + part
            if mkdir(prefix, mode) != 0 && errno != EEXIST {
                throw OutputFileError(path: prefix, "cannot create the directory: \(Errno.current)")
            }
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
