import AEMPCR
#if canImport(Glibc)
import Glibc
#endif

/// One file of a sealed set: ciphertexts, TPM blobs, `key.pcrs`, the saved prediction. None
/// of these is a secret in clear; they are still written 0600 as AEM's are.
public struct SealedFile: Sendable, Equatable {
    public let name: String
    public let bytes: [UInt8]
    public init(name: String, bytes: [UInt8]) {
        self.name = name
        self.bytes = bytes
    }
}

/// Replaces a sealed set (the directory `/var/lib/tpm/LABEL`) as a whole, so that an
/// interruption at any point leaves either the old or the new complete set at that path:
///
/// 1. the new files are written into a staging directory beside the target
///    (`.LABEL.aem-pcr-staging`), each fsynced, then the directory;
/// 2. the previous set is kept: its files are hard-linked into `LABEL.prev-<UTC time>`,
///    which `check-boot` removes once a boot with the new set is confirmed;
/// 3. staging and target are swapped in one `renameat2(RENAME_EXCHANGE)` (a plain rename when
///    there is no target yet), and the parent directory is fsynced;
/// 4. the staging name, now holding the old files (also in `.prev`), is removed.
///
/// A staging directory left by a killed run is safe to delete at any time: before step 3 it
/// holds an incomplete new set, after it the old files already linked into `.prev`.
///
/// Two runs at once would share the staging name (one could swap in the other's half-written
/// set), so `commit` and `dropPrevious` hold an exclusive `flock` on the parent directory and
/// refuse while another holds it.
public struct SealedSetWriter {
    public let target: String
    public var parent: String {
        guard let slash = target.lastIndex(of: "/") else { return "." }
        return slash == target.startIndex ? "/" : String(target[..<slash])
    }
    public var label: String {
        guard let slash = target.lastIndex(of: "/") else { return target }
        return String(target[target.index(after: slash)...])
    }
    public var staging: String { parent + "/." + label + ".aem-pcr-staging" }

    public init(target: String) {
        var t = target
        while t.count > 1 && t.hasSuffix("/") { t.removeLast() }
        self.target = t
    }

    /// What a commit of `files` does to the target, file by file.
    public enum Change: String, Sendable { case create = "new", replace = "replaced", keep = "kept", remove = "removed" }

    /// The new set: `files`, then every other regular file of the current set kept, except
    /// those in `dropping` (AEM's `anti-evil-maid-seal` removes `secret.X.sealed`, the TPM 1.2
    /// file, once `secret.X.sealed2` is written).
    public func plan(_ files: [SealedFile], dropping: Set<String> = []) throws -> [(String, Change)] {
        let old = try currentFiles()
        let new = Set(files.map(\.name))
        var out = files.map { ($0.name, old.contains($0.name) ? Change.replace : Change.create) }
        for name in old.sorted() where !new.contains(name) {
            out.append((name, dropping.contains(name) ? .remove : .keep))
        }
        return out
    }

    /// Regular files of the current set (none when it does not exist yet).
    public func currentFiles() throws -> [String] {
        var st = stat()
        guard lstat(target, &st) == 0 else { return [] }
        guard (st.st_mode & S_IFMT) == S_IFDIR else { throw SealError(.layout, "\(target) is not a directory") }
        return try SealedSetWriter.list(target).filter { name in
            var st = stat()
            return lstat(target + "/" + name, &st) == 0 && (st.st_mode & S_IFMT) == S_IFREG
        }.sorted()
    }

    /// Writes the new set and swaps it in; returns the `.prev` directory holding the old set
    /// (nil when there was none). On error nothing but the staging directory was touched,
    /// and it is removed.
    @discardableResult
    public func commit(_ files: [SealedFile], dropping: Set<String> = [], now: time_t = time(nil)) throws -> String? {
        let oldUmask = umask(0o077)
        defer { umask(oldUmask) }
        for f in files where !AEMLayout.isValidLabel(f.name) {
            throw SealError(.layout, "'\(f.name)' is not a plain file name")
        }
        try makeParents(parent)  // as AEM's `mkdir -p "$TPM_DIR/$LABEL"`
        let lock = try lockParent()
        defer { close(lock) }
        let plan = try plan(files, dropping: dropping)
        try removeTree(staging)
        do {
            try check(mkdir(staging, 0o700), "create \(staging)")
            for f in files {
                try writeDurably(staging + "/" + f.name, f.bytes)
                testCrashPoint("staged:" + f.name)
            }
            for (name, change) in plan where change == .keep {
                let bytes = try readFile(target + "/" + name)
                try writeDurably(staging + "/" + name, bytes)
            }
            try fsyncPath(staging)
            testCrashPoint("staged")
        } catch {
            try? removeTree(staging)
            throw error
        }
        var prev: String? = nil
        let targetExists = access(target, F_OK) == 0
        do {
            if targetExists {
                let p = try keepPrevious(now: now)
                prev = p
                testCrashPoint("kept")
                do {
                    try exchange(staging, target)
                } catch {
                    // Nothing was replaced: the copy in .prev is not needed.
                    try? removeTree(p)
                    throw error
                }
            } else {
                try check(rename(staging, target), "rename \(staging) to \(target)")
            }
        } catch {
            try? removeTree(staging)
            throw error
        }
        try fsyncPath(parent)
        testCrashPoint("swapped")
        if targetExists { try removeTree(staging) }
        testCrashPoint("done")
        return prev
    }

    /// `.prev` directories of this set, oldest first.
    public func previousSets() throws -> [String] {
        guard access(parent, F_OK) == 0 else { return [] }
        return try SealedSetWriter.list(parent)
            .filter { $0.hasPrefix(label + ".prev-") }.sorted().map { parent + "/" + $0 }
    }

    /// Removes the `.prev` sets (after a confirmed boot) and any staging directory left behind.
    public func dropPrevious() throws -> [String] {
        guard access(parent, F_OK) == 0 else { return [] }
        let lock = try lockParent()
        defer { close(lock) }
        let prevs = try previousSets()
        for p in prevs { try removeTree(p) }
        try removeTree(staging)
        try fsyncPath(parent)
        return prevs
    }

    private func keepPrevious(now: time_t) throws -> String {
        let stamp = SealedSetWriter.utcStamp(now)
        var name = parent + "/" + label + ".prev-" + stamp
        var n = 1
        while access(name, F_OK) == 0 {
            n += 1
            name = parent + "/" + label + ".prev-" + stamp + "-\(n)"
        }
        let tmp = parent + "/." + label + ".aem-pcr-prev"
        try removeTree(tmp)
        try check(mkdir(tmp, 0o700), "create \(tmp)")
        for file in try currentFiles() {
            // A hard link where the filesystem has them, else a copy.
            if link(target + "/" + file, tmp + "/" + file) != 0 {
                try writeDurably(tmp + "/" + file, try readFile(target + "/" + file))
            }
        }
        try fsyncPath(tmp)
        // Only a complete copy takes the .prev name.
        try check(rename(tmp, name), "rename \(tmp) to \(name)")
        try fsyncPath(parent)
        return name
    }

    /// An exclusive `flock` on the parent directory, held while the returned descriptor is
    /// open; refused at once when another run holds it.
    private func lockParent() throws -> Int32 {
        let fd = open(parent, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        if fd < 0 { throw SealError(.io, "open \(parent): \(String(cString: strerror(errno)))") }
        while flock(fd, LOCK_EX | LOCK_NB) != 0 {
            let e = errno
            if e == EINTR { continue }
            close(fd)
            if e == EWOULDBLOCK {
                throw SealError(.io, "another aem-pcr seal or check-boot is changing \(parent) (it holds a lock on the directory); nothing was changed, run again once it has finished")
            }
            throw SealError(.io, "lock \(parent): \(String(cString: strerror(e)))")
        }
        return fd
    }

    // MARK: - small POSIX helpers

    private func check(_ status: Int32, _ what: String) throws {
        if status != 0 { throw SealError(.io, "\(what): \(String(cString: strerror(errno)))") }
    }

    private func writeDurably(_ path: String, _ bytes: [UInt8]) throws {
        let fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0o600)
        if fd < 0 { throw SealError(.io, "create \(path): \(String(cString: strerror(errno)))") }
        defer { close(fd) }
        var done = 0
        while done < bytes.count {
            let n = bytes[done...].withUnsafeBytes { Glibc.write(fd, $0.baseAddress, $0.count) }
            if n < 0 && errno == EINTR { continue }
            if n < 0 { throw SealError(.io, "write \(path): \(String(cString: strerror(errno)))") }
            done += n
        }
        try check(fsync(fd), "fsync \(path)")
    }

    private func readFile(_ path: String) throws -> [UInt8] {
        // A FIFO planted in the set is refused, not opened (it would wait for a writer forever).
        let fd = try RegularFile.open(path, flags: O_RDONLY | O_NOFOLLOW) { e in
            SealError(.io, "read \(path): \(String(cString: strerror(e)))")
        }
        defer { close(fd) }
        var out = [UInt8]()
        var chunk = [UInt8](repeating: 0, count: 65536)
        while true {
            let n = chunk.withUnsafeMutableBytes { Glibc.read(fd, $0.baseAddress, $0.count) }
            if n < 0 && errno == EINTR { continue }
            if n < 0 { throw SealError(.io, "read \(path): \(String(cString: strerror(errno)))") }
            if n == 0 { return out }
            out += chunk[0..<n]
            if out.count > 1 << 24 { throw SealError(.io, "\(path): larger than 16 MiB, not an AEM file") }
        }
    }

    /// `now` as `20261130T042700Z`.
    static func utcStamp(_ now: time_t) -> String {
        var t = now
        var tmv = tm()
        gmtime_r(&t, &tmv)
        var buf = [CChar](repeating: 0, count: 32)
        let n = strftime(&buf, buf.count, "%Y%m%dT%H%M%SZ", &tmv)
        return String(decoding: buf.prefix(n).map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }

    /// Names in a directory, without `.` and `..`.
    static func list(_ path: String) throws -> [String] {
        guard let d = opendir(path) else { throw SealError(.io, "list \(path): \(String(cString: strerror(errno)))") }
        defer { closedir(d) }
        var out = [String]()
        while let e = readdir(d) {
            let name = withUnsafeBytes(of: e.pointee.d_name) { raw in
                String(decoding: raw.prefix(while: { $0 != 0 }), as: UTF8.self)
            }
            if name != "." && name != ".." { out.append(name) }
        }
        return out.sorted()
    }

    private func makeParents(_ path: String) throws {
        if path.isEmpty || access(path, F_OK) == 0 { return }
        if let slash = path.lastIndex(of: "/"), slash != path.startIndex { try makeParents(String(path[..<slash])) }
        if mkdir(path, 0o755) != 0 && errno != EEXIST {
            throw SealError(.io, "create \(path): \(String(cString: strerror(errno)))")
        }
    }

    private func fsyncPath(_ path: String) throws {
        let fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        if fd < 0 { throw SealError(.io, "open \(path): \(String(cString: strerror(errno)))") }
        defer { close(fd) }
        try check(fsync(fd), "fsync \(path)")
    }

    private func removeTree(_ path: String) throws {
        var st = stat()
        guard lstat(path, &st) == 0 else { return }
        if (st.st_mode & S_IFMT) == S_IFDIR {
            for name in try SealedSetWriter.list(path) { try removeTree(path + "/" + name) }
            try check(rmdir(path), "remove \(path)")
        } else {
            try check(unlink(path), "remove \(path)")
        }
    }

    /// glibc's `renameat2`, which Swift's Glibc module does not declare: resolved once.
    private typealias Renameat2 = @convention(c) (Int32, UnsafePointer<CChar>, Int32, UnsafePointer<CChar>, UInt32) -> Int32
    private static let renameat2: Renameat2? = {
        guard let sym = dlsym(UnsafeMutableRawPointer(bitPattern: 0), "renameat2") else { return nil }
        return unsafeBitCast(sym, to: Renameat2.self)
    }()

    private func exchange(_ a: String, _ b: String) throws {
        guard let f = SealedSetWriter.renameat2 else {
            throw SealError(.io, "this C library has no renameat2 (glibc 2.28 or later), needed to swap \(b) atomically")
        }
        let RENAME_EXCHANGE: UInt32 = 1 << 1  // linux/fs.h
        if f(AT_FDCWD, a, AT_FDCWD, b, RENAME_EXCHANGE) != 0 {
            let e = errno
            if e == EINVAL || e == ENOSYS || e == EOPNOTSUPP {
                throw SealError(.io, "the filesystem of \(b) cannot exchange two directories in one step (renameat2 RENAME_EXCHANGE: \(String(cString: strerror(e)))); nothing was replaced")
            }
            throw SealError(.io, "swap \(a) with \(b): \(String(cString: strerror(e)))")
        }
    }
}

/// Debug builds only: `AEM_PCR_TEST_CRASH_AT=<step>` kills the process with SIGKILL at that
/// step, so tests can check that an interrupted seal leaves a complete set. Release builds
/// ignore it.
func testCrashPoint(_ step: String) {
    #if DEBUG
    if let at = getenv("AEM_PCR_TEST_CRASH_AT"), String(cString: at) == step { raise(SIGKILL) }
    #endif
}
