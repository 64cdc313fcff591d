// SPDX-License-Identifier: Apache-2.0
import Glibc

/// Several files that appear in a directory all together or not at all.
///
/// The files are written into a new directory beside the target (`.NAME.XXXXXX`, each file
/// flushed, then the directory), which then takes the target's name in one `rename`; an
/// existing target (holding nothing but files of the set: an earlier save) is exchanged with it
/// in one `renameat2(RENAME_EXCHANGE)`, and the previous set removed afterwards. A failure at
/// any step before that one call leaves the target as it was and removes what was written; a
/// crash leaves the previous set or the new one, never a mix. A set of one file is one
/// `AtomicOutputFile` in the directory, which may hold other files.
public enum SavedSet {
    /// Writes `files` (a name without a slash, and its bytes; each file 0600) as the directory
    /// `dir`, whose parent must exist. Returns what could not be tidied after the set was in
    /// place (the previous set left under a temporary name), for a warning; throws
    /// `OutputFileError` when the set was not written.
    @discardableResult
    public static func write(dir: String, files: [(String, [UInt8])]) throws -> [String] {
        precondition(files.allSatisfy { !$0.0.isEmpty && !$0.0.contains("/") && $0.0 != "." && $0.0 != ".." })
        if files.count == 1 {
            try AtomicOutputFile.write(files[0].1, to: dir + "/" + files[0].0)
            return []
        }
        var target = dir
        while target.count > 1 && target.hasSuffix("/") { target.removeLast() }
        // What is there now: nothing, or a directory of the set's files only (a link to a
        // directory is followed: the directory it names is replaced).
        var old = stat()
        var exists = false
        if lstat(target, &old) == 0 {
            if old.st_mode & S_IFMT == S_IFLNK {
                guard let real = realpath(target, nil) else {
                    throw OutputFileError(path: dir, "cannot follow the symbolic link: \(Errno.current)")
                }
                target = String(cString: real)
                free(real)
                guard lstat(target, &old) == 0 else { throw OutputFileError(path: dir, "cannot stat \(target): \(Errno.current)") }
            }
            guard old.st_mode & S_IFMT == S_IFDIR else {
                throw OutputFileError(path: dir, "is not a directory")
            }
            let present: [String]
            do { present = try Directory.entries(target) } catch {
                throw OutputFileError(path: dir, "cannot list the directory: \(error)")
            }
            let names = Set(files.map(\.0))
            let others = present.filter { !names.contains($0) }
            if !others.isEmpty {
                throw OutputFileError(path: dir, "holds other files than the set (\(others.prefix(3).joined(separator: ", "))\(others.count > 3 ? ", …" : "")): the set replaces the directory as a whole, so give a new directory or one an earlier save wrote")
            }
            exists = true
        } else if errno != ENOENT {
            throw OutputFileError(path: dir, "cannot stat: \(Errno.current)")
        }
        let (parent, base) = Directory.split(target)
        guard !base.isEmpty, base != ".", base != ".." else {
            throw OutputFileError(path: dir, "names no directory that can be replaced (give its name, not . or ..)")
        }
        let pfd = open(parent, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        guard pfd >= 0 else {
            throw OutputFileError(path: dir, "cannot open the directory \(parent): \(Errno.current)")
        }
        defer { close(pfd) }

        // The staging directory, 0700 (mkdtemp), or the mode and owner the target had.
        var template = Array("\(parent)/.\(base).XXXXXX".utf8CString)
        guard template.withUnsafeMutableBufferPointer({ mkdtemp($0.baseAddress!) }) != nil else {
            throw OutputFileError(path: dir, "cannot create a directory in \(parent): \(Errno.current)")
        }
        let staging = String(cString: template.map { UInt8(bitPattern: $0) } + [0])
        let stagingName = Directory.split(staging).name
        let sfd = openat(pfd, stagingName, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)
        guard sfd >= 0 else {
            let e = Errno.current
            unlinkat(pfd, stagingName, AT_REMOVEDIR)
            throw OutputFileError(path: dir, "cannot open \(staging): \(e)")
        }
        defer { close(sfd) }
        var written = [String]()
        func abandon(_ why: String) -> OutputFileError {
            for name in written { unlinkat(sfd, name, 0) }
            unlinkat(pfd, stagingName, AT_REMOVEDIR)
            return OutputFileError(path: dir, why)
        }
        if exists {
            _ = fchown(sfd, old.st_uid, old.st_gid)
            if fchmod(sfd, old.st_mode & 0o7777) != 0 { throw abandon("cannot set the mode of \(staging): \(Errno.current)") }
        }
        for (name, bytes) in files {
            let fd = openat(sfd, name, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0o600)
            guard fd >= 0 else { throw abandon("cannot create \(staging)/\(name): \(Errno.current)") }
            written.append(name)
            var done = 0
            while done < bytes.count {
                let n = bytes.withUnsafeBytes { Glibc.write(fd, $0.baseAddress! + done, $0.count - done) }
                if n < 0 && errno == EINTR { continue }
                if n < 0 {
                    let e = Errno.current
                    close(fd)
                    throw abandon("write failed (\(name)): \(e)")
                }
                done += n
            }
            if fsync(fd) != 0 {
                let e = Errno.current
                close(fd)
                throw abandon("write failed (\(name)): \(e)")
            }
            if close(fd) != 0 { throw abandon("write failed (\(name)): \(Errno.current)") }
        }
        if fsync(sfd) != 0 { throw abandon("write failed (fsync \(staging)): \(Errno.current)") }

        // The one step that puts the set in place.
        if !exists {
            if renameat(pfd, stagingName, pfd, base) != 0 {
                throw abandon("cannot rename \(staging) to it: \(Errno.current)")
            }
        } else {
            guard let exchange = renameat2 else {
                throw abandon("this C library has no renameat2 (glibc 2.28 or later), needed to replace the set in one step")
            }
            let RENAME_EXCHANGE: UInt32 = 1 << 1  // linux/fs.h
            if exchange(pfd, stagingName, pfd, base, RENAME_EXCHANGE) != 0 {
                let e = Errno.current
                if e.rawValue == EINVAL || e.rawValue == ENOSYS || e.rawValue == EOPNOTSUPP {
                    throw abandon("the filesystem of \(parent) cannot exchange two directories in one step (renameat2 RENAME_EXCHANGE: \(e)); nothing was replaced")
                }
                throw abandon("cannot exchange \(staging) with it: \(e)")
            }
        }
        var leftovers = [String]()
        if exists {
            // The previous set, now under the staging name: its files of the set, then itself,
            // by descriptor, and only the directory that was the target.
            let ofd = openat(pfd, stagingName, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)
            var st = stat()
            if ofd >= 0, fstat(ofd, &st) == 0, st.st_dev == old.st_dev, st.st_ino == old.st_ino {
                for (name, _) in files { unlinkat(ofd, name, 0) }
                if unlinkat(pfd, stagingName, AT_REMOVEDIR) != 0 {
                    leftovers.append("the previous set is left in \(staging): \(Errno.current)")
                }
            } else {
                leftovers.append("the previous set is left in \(staging)")
            }
            if ofd >= 0 { close(ofd) }
        }
        if fsync(pfd) != 0 {
            throw OutputFileError(path: dir, "written, but \(parent) could not be flushed (fsync: \(Errno.current)): the new set may not survive a power loss")
        }
        return leftovers
    }

    /// glibc's `renameat2`, which Swift's Glibc module does not declare: resolved once.
    private typealias Renameat2 = @convention(c) (Int32, UnsafePointer<CChar>, Int32, UnsafePointer<CChar>, UInt32) -> Int32
    private static let renameat2: Renameat2? = {
        guard let sym = dlsym(UnsafeMutableRawPointer(bitPattern: 0), "renameat2") else { return nil }
        return unsafeBitCast(sym, to: Renameat2.self)
    }()
}
