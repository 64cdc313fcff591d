// SPDX-License-Identifier: Apache-2.0
import AEMPCR
import AEMPCRSystem
import Glibc

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
///    with a record (`.aem-pcr-prev`) naming the label and those files, which is what lets
///    `check-boot` remove it once a boot with the new set is confirmed;
/// 3. what the set holds besides regular files (a user's subdirectory, a symbolic link, a
///    FIFO) is moved into the staging directory, so that it stays in the set;
/// 4. staging and target are swapped in one `renameat2(RENAME_EXCHANGE)` (a plain rename when
///    there is no target yet), and the parent directory is fsynced;
/// 5. the staging name, now holding the old files (also in `.prev`), is removed.
///
/// Every step works relative to the parent directory, opened once (`O_NOFOLLOW`): a path
/// swapped for a symbolic link mid-run redirects nothing. Removal walks by descriptor
/// (`openat(O_NOFOLLOW|O_DIRECTORY)`, the device and inode compared with what `fstatat` saw,
/// `unlinkat`), removes only regular files of the names this tool creates (its staging and
/// temporary names, `.prev` directories carrying its record, for this label only) and never
/// descends: anything else found there is kept and reported, never deleted.
///
/// A directory another user can write (the parent or the set) is refused before anything is
/// changed (`otherWriter`). Two runs at once would share the staging name, so `commit` and
/// `dropPrevious` hold an exclusive `flock` on the parent directory and refuse while another
/// holds it. An error after step 4 does not throw: the new set is in place, and `commit`
/// returns what could not be cleaned (`Outcome.afterSwapErrors`).
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
    var stagingName: String { "." + label + ".aem-pcr-staging" }
    var tmpPrevName: String { "." + label + ".aem-pcr-prev" }
    public var staging: String { path(stagingName) }
    /// The record inside each `.prev` directory this tool made: `aem-pcr previous set of
    /// LABEL`, then the name of each file it holds, one a line.
    public static let prevRecord = ".aem-pcr-prev"

    public init(target: String) {
        var t = target
        while t.count > 1 && t.hasSuffix("/") { t.removeLast() }
        self.target = t
    }

    func path(_ name: String) -> String { parent == "/" ? "/" + name : parent + "/" + name }

    /// What a commit of `files` does to the target, entry by entry. `left`: not a regular
    /// file (a directory, a symbolic link, a FIFO): it stays in the set as it is.
    public enum Change: String, Sendable { case create = "new", replace = "replaced", keep = "kept", remove = "removed", left = "left" }

    /// Something this tool found where it removes and did not remove, and why.
    public struct Kept: Sendable, Equatable {
        public let path: String
        public let reason: String
        public init(path: String, reason: String) {
            self.path = path
            self.reason = reason
        }
    }

    /// What a commit did besides replacing the set.
    public struct Outcome: Sendable {
        /// The `.prev` directory holding the old set (nil when there was none).
        public var previous: String? = nil
        /// Entries not removed, and why.
        public var kept: [Kept] = []
        /// Steps after the swap that failed: the new set is in place all the same.
        public var afterSwapErrors: [String] = []
        public init() {}
    }

    /// What `dropPrevious` removed, kept (and why) and failed to remove.
    public struct Drop: Sendable {
        public var removed: [String] = []
        public var kept: [Kept] = []
        public var errors: [String] = []
        public init() {}
    }

    /// The new set: `files`, then every other regular file of the current set kept, except
    /// those in `dropping` (AEM's `anti-evil-maid-seal` removes `secret.X.sealed`, the TPM 1.2
    /// file, once `secret.X.sealed2` is written); entries that are not regular files are left.
    public func plan(_ files: [SealedFile], dropping: Set<String> = []) throws -> [(String, Change)] {
        guard let p = try openDirectory(AT_FDCWD, parent, display: parent) else { return files.map { ($0.name, .create) } }
        defer { close(p.fd) }
        guard let t = try openDirectory(p.fd, label, display: target) else { return files.map { ($0.name, .create) } }
        defer { close(t.fd) }
        let current = try entries(t.fd, display: target)
        return plan(files, dropping: dropping, current: current)
    }

    private func plan(_ files: [SealedFile], dropping: Set<String>, current: Entries) -> [(String, Change)] {
        let old = Set(current.regular)
        let new = Set(files.map(\.name))
        var out = files.map { ($0.name, old.contains($0.name) ? Change.replace : Change.create) }
        for name in current.regular where !new.contains(name) {
            out.append((name, dropping.contains(name) ? .remove : .keep))
        }
        for (name, _) in current.other { out.append((name, .left)) }
        return out
    }

    /// Regular files of the current set (none when it does not exist yet).
    public func currentFiles() throws -> [String] {
        guard let p = try openDirectory(AT_FDCWD, parent, display: parent) else { return [] }
        defer { close(p.fd) }
        guard let t = try openDirectory(p.fd, label, display: target) else { return [] }
        defer { close(t.fd) }
        return try entries(t.fd, display: target).regular
    }

    /// Why the parent directory or the set cannot be written safely (another user can write
    /// it, or it is a symbolic link), as one sentence; nil when it can, or does not exist yet.
    public func unsafeDirectory() -> String? {
        do {
            if let why = ancestorRefusal() { return why }
            guard let p = try openDirectory(AT_FDCWD, parent, display: parent) else { return nil }
            defer { close(p.fd) }
            if let why = SealedSetWriter.otherWriter(p.st) { return refusal(parent, why) }
            guard let t = try openDirectory(p.fd, label, display: target) else { return nil }
            defer { close(t.fd) }
            if let why = SealedSetWriter.otherWriter(t.st) { return refusal(target, why) }
            return nil
        } catch {
            return "\(error)"
        }
    }

    /// Writes the new set and swaps it in. Throws only before the swap, when nothing but
    /// this tool's own staging and temporary names were touched (and they are removed);
    /// after it, what failed is in the outcome.
    @discardableResult
    public func commit(_ files: [SealedFile], dropping: Set<String> = [], now: time_t = time(nil)) throws -> Outcome {
        let oldUmask = umask(0o077)
        defer { umask(oldUmask) }
        for f in files where !AEMLayout.isValidLabel(f.name) {
            throw CodedError(.sealLayout, "'\(f.name)' is not a plain file name")
        }
        if let why = ancestorRefusal() { throw CodedError(.sealRefused, why) }
        try makeParents(parent)  // as AEM's `mkdir -p "$TPM_DIR/$LABEL"`
        guard let p = try openDirectory(AT_FDCWD, parent, display: parent) else {
            throw CodedError(.sealIO, "open \(parent): \(Errno(ENOENT))")
        }
        defer { close(p.fd) }
        let old = try checkedSet(in: p)
        defer { if let old { close(old.fd) } }

        var outcome = Outcome()
        // What a killed run left: removed, or the run stops here with nothing changed.
        for name in [stagingName, tmpPrevName] {
            let r = removeOwnDirectory(p, name, setFD: name == stagingName ? old?.fd : nil)
            outcome.kept += r.moved
            if let first = r.errors.first { throw CodedError(.sealIO, first + "; nothing was changed") }
            if let k = r.kept.first {
                throw CodedError(.sealRefused, "\(path(name)), left by an earlier run, holds \(k.path) (\(k.reason)), which aem-pcr did not write: move it away and seal again; nothing was changed")
            }
        }
        let current = try old.map { try entries($0.fd, display: target) } ?? Entries()
        let plan = plan(files, dropping: dropping, current: current)

        try check(mkdirat(p.fd, stagingName, 0o700), "create \(staging)")
        guard let new = try openDirectory(p.fd, stagingName, display: staging) else {
            throw CodedError(.sealIO, "open \(staging): \(Errno(ENOENT))")
        }
        defer { close(new.fd) }
        let abandonStaging = { _ = self.removeOwnDirectory(p, self.stagingName, setFD: nil, expected: new.st) }
        do {
            for f in files {
                try writeDurably(new.fd, f.name, f.bytes, display: staging)
                testCrashPoint("staged:" + f.name)
            }
            for (name, change) in plan where change == .keep {
                try writeDurably(new.fd, name, try readRegular(old!.fd, name, display: target), display: staging)
            }
            try check(fsync(new.fd), "fsync \(staging)")
            testCrashPoint("staged")
        } catch {
            abandonStaging()
            throw error
        }

        guard let old else {
            do {
                try check(renameat(p.fd, stagingName, p.fd, label), "rename \(staging) to \(target)")
            } catch {
                abandonStaging()
                throw error
            }
            afterSwap(p.fd, &outcome)
            testCrashPoint("done")
            return outcome
        }

        let prevName: String
        do {
            prevName = try keepPrevious(p, old.fd, files: current.regular, now: now)
        } catch {
            abandonStaging()
            throw error
        }
        outcome.previous = path(prevName)
        testCrashPoint("kept")
        // Entries that are not files of the set move with the set (so they stay at its path).
        var moved = [String]()
        do {
            for (name, _) in current.other {
                try check(renameat(old.fd, name, new.fd, name), "move \(target)/\(name) into \(staging)")
                moved.append(name)
            }
            testCrashPoint("moved")
            // The name still holds the directory written above.
            var st = stat()
            guard fstatat(p.fd, stagingName, &st, AT_SYMLINK_NOFOLLOW) == 0, same(st, new.st) else {
                throw CodedError(.sealIO, "\(staging) was replaced while it was written; nothing was replaced")
            }
            try exchange(p.fd, stagingName, label)
        } catch {
            var notBack = [String]()
            for name in moved where renameat(new.fd, name, old.fd, name) != 0 { notBack.append(name) }
            if notBack.isEmpty {
                // Nothing was replaced: the copy in .prev is not needed.
                _ = removePrevious(p, prevName)
                abandonStaging()
                throw error
            }
            throw CodedError(.sealIO, "\(error); \(notBack.joined(separator: ", ")) could not be moved back from \(staging) into \(target): move them by hand")
        }
        afterSwap(p.fd, &outcome)
        // The old set, now at the staging name (its files are also in .prev).
        let r = removeOwnDirectory(p, stagingName, setFD: nil, expected: old.st)
        outcome.kept += r.kept
        outcome.afterSwapErrors += r.errors
        testCrashPoint("done")
        return outcome
    }

    /// The new set is in place: what fails from here on is said, not thrown.
    private func afterSwap(_ pfd: Int32, _ outcome: inout Outcome) {
        if fsync(pfd) != 0 {
            outcome.afterSwapErrors.append("fsync \(parent): \(Errno.current) (the swap may not survive a power loss before the next sync)")
        }
        testCrashPoint("swapped")
    }

    /// `.prev` directories of this set, oldest first: `LABEL.prev-` and a UTC time as
    /// `seal` names them (`20261130T042700Z`, `-2` and on for a second one in that second).
    public func previousSets() throws -> [String] {
        guard let p = try openDirectory(AT_FDCWD, parent, display: parent) else { return [] }
        defer { close(p.fd) }
        return try SealedSetWriter.names(p.fd, display: parent).filter(isPreviousName).map(path)
    }

    func isPreviousName(_ name: String) -> Bool {
        let prefix = label + ".prev-"
        guard name.hasPrefix(prefix) else { return false }
        let rest = Array(name.utf8.dropFirst(prefix.utf8.count))
        func digits(_ s: ArraySlice<UInt8>) -> Bool { !s.isEmpty && s.allSatisfy { $0 >= 0x30 && $0 <= 0x39 } }
        guard rest.count >= 16, digits(rest[0..<8]), rest[8] == UInt8(ascii: "T"), digits(rest[9..<15]),
              rest[15] == UInt8(ascii: "Z") else { return false }
        if rest.count == 16 { return true }
        return rest[16] == UInt8(ascii: "-") && rest.count <= 23 && digits(rest[17...])
    }

    /// Removes this set's `.prev` directories this tool made (after a confirmed boot) and any
    /// staging directory left behind; keeps, and says, anything else.
    public func dropPrevious() throws -> Drop {
        guard let p = try openDirectory(AT_FDCWD, parent, display: parent) else { return Drop() }
        defer { close(p.fd) }
        let set = try checkedSet(in: p)
        defer { if let set { close(set.fd) } }
        var drop = Drop()
        for name in try SealedSetWriter.names(p.fd, display: parent) where isPreviousName(name) {
            let r = removePrevious(p, name)
            if r.gone { drop.removed.append(path(name)) }
            drop.kept += r.kept
            drop.errors += r.errors
        }
        for name in [stagingName, tmpPrevName] {
            let r = removeOwnDirectory(p, name, setFD: name == stagingName ? set?.fd : nil)
            drop.kept += r.moved + r.kept
            drop.errors += r.errors
        }
        if fsync(p.fd) != 0 { drop.errors.append("fsync \(parent): \(Errno.current)") }
        return drop
    }

    /// The old set's files hard-linked (or copied) into a temporary directory with the record,
    /// which then takes the `.prev` name: only a complete copy has it. Returns that name.
    private func keepPrevious(_ p: Opened, _ setFD: Int32, files: [String], now: time_t) throws -> String {
        let stamp = utcStamp(now)
        var name = label + ".prev-" + stamp
        var n = 1
        var st = stat()
        while fstatat(p.fd, name, &st, AT_SYMLINK_NOFOLLOW) == 0 {
            n += 1
            name = label + ".prev-" + stamp + "-\(n)"
        }
        let tmp = path(tmpPrevName)
        try check(mkdirat(p.fd, tmpPrevName, 0o700), "create \(tmp)")
        guard let h = try openDirectory(p.fd, tmpPrevName, display: tmp) else {
            throw CodedError(.sealIO, "open \(tmp): \(Errno(ENOENT))")
        }
        defer { close(h.fd) }
        do {
            for file in files {
                // A hard link where the filesystem has them, else a copy.
                if linkat(setFD, file, h.fd, file, 0) != 0 {
                    try writeDurably(h.fd, file, try readRegular(setFD, file, display: target), display: tmp)
                }
            }
            let record = "aem-pcr previous set of \(label)\n" + files.map { $0 + "\n" }.joined()
            try writeDurably(h.fd, SealedSetWriter.prevRecord, Array(record.utf8), display: tmp)
            try check(fsync(h.fd), "fsync \(tmp)")
            try check(renameat(p.fd, tmpPrevName, p.fd, name), "rename \(tmp) to \(path(name))")
            try check(fsync(p.fd), "fsync \(parent)")
        } catch {
            _ = removeOwnDirectory(p, tmpPrevName, setFD: nil, expected: h.st)
            throw error
        }
        return name
    }

    // MARK: - removal by descriptor

    struct Opened {
        let fd: Int32
        let st: stat
    }

    struct Removal {
        var gone = false
        var kept = [Kept]()
        var errors = [String]()
        var moved = [Kept]()
    }

    /// Opens `name` below `dirfd` as a directory, never through a symbolic link; nil when
    /// it does not exist.
    private func openDirectory(_ dirfd: Int32, _ name: String, display: String) throws -> Opened? {
        let fd = openat(dirfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK)
        if fd < 0 {
            let e = errno
            if e == ENOENT { return nil }
            var st = stat()
            // O_NOFOLLOW|O_DIRECTORY on a symbolic link: ELOOP, or ENOTDIR on Linux
            if e == ELOOP || (e == ENOTDIR && fstatat(dirfd, name, &st, AT_SYMLINK_NOFOLLOW) == 0 && (st.st_mode & S_IFMT) == S_IFLNK) {
                throw CodedError(.sealRefused, "\(display) is a symbolic link: aem-pcr writes the sealed set only in a directory named as it is (give its real path); nothing was changed")
            }
            if e == ENOTDIR { throw CodedError(.sealLayout, "\(display) is not a directory") }
            throw CodedError(.sealIO, "open \(display): \(Errno(e))")
        }
        var st = stat()
        if fstat(fd, &st) != 0 {
            let e = errno
            close(fd)
            throw CodedError(.sealIO, "stat \(display): \(Errno(e))")
        }
        return Opened(fd: fd, st: st)
    }

    /// One of this tool's own directories (staging, temporary `.prev`), left by a killed run
    /// or to be removed now: opened by descriptor (the one `fstatat` saw, and `expected` when
    /// given, on the parent's file system); its regular files removed; anything else moved
    /// back into the set when `setFD` is given and the name is free there (a killed run may
    /// have moved it into staging), else kept with the directory.
    private func removeOwnDirectory(_ p: Opened, _ name: String, setFD: Int32?, expected: stat? = nil) -> Removal {
        var r = Removal()
        let display = path(name)
        let d: Opened
        switch openForRemoval(p, name, expected: expected) {
        case .absent: r.gone = true; return r
        case .kept(let k): r.kept.append(k); return r
        case .failed(let e): r.errors.append(e); return r
        case .opened(let o): d = o
        }
        defer { close(d.fd) }
        let list: [(String, stat)]
        do { list = try SealedSetWriter.stats(d.fd, display: display) } catch { r.errors.append("\(error)"); return r }
        for (entry, st) in list {
            if (st.st_mode & S_IFMT) == S_IFREG {
                if unlinkat(d.fd, entry, 0) != 0 && errno != ENOENT {
                    r.errors.append("remove \(display)/\(entry): \(Errno.current)")
                }
                continue
            }
            var there = stat()
            if let setFD, fstatat(setFD, entry, &there, AT_SYMLINK_NOFOLLOW) != 0, errno == ENOENT,
               renameat(d.fd, entry, setFD, entry) == 0 {
                r.moved.append(Kept(path: target + "/" + entry, reason: "\(SealedSetWriter.kind(st.st_mode)) a killed run had moved into \(display), moved back into the set"))
                continue
            }
            r.kept.append(Kept(path: display + "/" + entry, reason: "\(SealedSetWriter.kind(st.st_mode)), not a file aem-pcr wrote; the directory is kept"))
        }
        if r.kept.isEmpty && r.errors.isEmpty { removeEmpty(p.fd, name, &r) }
        return r
    }

    /// A `.prev` directory: removed only when it carries this tool's record for this label
    /// and holds nothing but the files the record names (or nothing at all).
    private func removePrevious(_ p: Opened, _ name: String) -> Removal {
        var r = Removal()
        let display = path(name)
        let d: Opened
        switch openForRemoval(p, name, expected: nil) {
        case .absent: return r
        case .kept(let k): r.kept.append(k); return r
        case .failed(let e): r.errors.append(e); return r
        case .opened(let o): d = o
        }
        defer { close(d.fd) }
        let list: [(String, stat)]
        do { list = try SealedSetWriter.stats(d.fd, display: display) } catch { r.errors.append("\(error)"); return r }
        if list.isEmpty {
            removeEmpty(p.fd, name, &r)
            return r
        }
        guard let recorded = readRecord(d.fd) else {
            r.kept.append(Kept(path: display, reason: "no \(SealedSetWriter.prevRecord) record of aem-pcr (a directory aem-pcr did not make, or one an older aem-pcr made): remove it yourself once it is not needed"))
            return r
        }
        let strangers = list.filter { entry, st in
            entry != SealedSetWriter.prevRecord && !((st.st_mode & S_IFMT) == S_IFREG && recorded.contains(entry))
        }
        if let (entry, st) = strangers.first {
            let more = strangers.count > 1 ? " and \(strangers.count - 1) more" : ""
            r.kept.append(Kept(path: display, reason: "it holds \(entry) (\(SealedSetWriter.kind(st.st_mode)))\(more), which aem-pcr did not put there"))
            return r
        }
        // The record last, so that an interrupted removal can be finished by the next run.
        for (entry, _) in list where entry != SealedSetWriter.prevRecord {
            if unlinkat(d.fd, entry, 0) != 0 && errno != ENOENT {
                r.errors.append("remove \(display)/\(entry): \(Errno.current)")
            }
        }
        if r.errors.isEmpty && unlinkat(d.fd, SealedSetWriter.prevRecord, 0) != 0 && errno != ENOENT {
            r.errors.append("remove \(display)/\(SealedSetWriter.prevRecord): \(Errno.current)")
        }
        if r.errors.isEmpty { removeEmpty(p.fd, name, &r) }
        return r
    }

    /// The file names a `.prev` record lists when it is this label's record; nil otherwise.
    private func readRecord(_ dfd: Int32) -> Set<String>? {
        guard let bytes = try? readRegular(dfd, SealedSetWriter.prevRecord, display: SealedSetWriter.prevRecord, limit: 1 << 16) else { return nil }
        let lines = String(decoding: bytes, as: UTF8.self).split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
        guard lines.first == "aem-pcr previous set of \(label)", lines.last == "" else { return nil }
        return Set(lines.dropFirst().dropLast().filter { !$0.isEmpty && $0 != SealedSetWriter.prevRecord })
    }

    private enum Opening {
        case absent, kept(Kept), failed(String), opened(Opened)
    }

    /// `name` in the parent opened for removal: a directory (a symbolic link or anything else
    /// in its place is kept), the very one `fstatat` saw, on the parent's file system, owned
    /// by root or this user.
    private func openForRemoval(_ p: Opened, _ name: String, expected: stat?) -> Opening {
        let display = path(name)
        var seen = stat()
        if fstatat(p.fd, name, &seen, AT_SYMLINK_NOFOLLOW) != 0 {
            return errno == ENOENT ? .absent : .failed("stat \(display): \(Errno.current)")
        }
        guard (seen.st_mode & S_IFMT) == S_IFDIR else {
            return .kept(Kept(path: display, reason: "\(SealedSetWriter.kind(seen.st_mode)), not a directory aem-pcr made"))
        }
        let fd = openat(p.fd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK)
        if fd < 0 {
            let e = errno
            if e == ENOENT { return .absent }
            if e == ELOOP || e == ENOTDIR { return .kept(Kept(path: display, reason: "replaced by a non-directory while it was opened")) }
            return .failed("open \(display): \(Errno(e))")
        }
        var st = stat()
        guard fstat(fd, &st) == 0 else {
            let e = errno
            close(fd)
            return .failed("stat \(display): \(Errno(e))")
        }
        var why: String? = nil
        if !same(st, seen) || (expected.map { !same(st, $0) } ?? false) {
            why = "not the directory aem-pcr made (it was replaced)"
        } else if st.st_dev != p.st.st_dev {
            why = "a mount point"
        } else if st.st_uid != 0 && st.st_uid != geteuid() {
            why = "owned by uid \(st.st_uid), not by root"
        }
        if let why {
            close(fd)
            return .kept(Kept(path: display, reason: why))
        }
        return .opened(Opened(fd: fd, st: st))
    }

    /// `rmdir` of the name: it removes an empty directory only, whatever took the name.
    private func removeEmpty(_ pfd: Int32, _ name: String, _ r: inout Removal) {
        if unlinkat(pfd, name, AT_REMOVEDIR) == 0 || errno == ENOENT {
            r.gone = true
        } else {
            r.errors.append("remove \(path(name)): \(Errno.current)")
        }
    }

    struct Entries {
        var regular = [String]()
        var other = [(String, mode_t)]()
    }

    /// A set's entries: regular files (this tool's record excluded), and the rest.
    private func entries(_ fd: Int32, display: String) throws -> Entries {
        var out = Entries()
        for (name, st) in try SealedSetWriter.stats(fd, display: display) where name != SealedSetWriter.prevRecord {
            if (st.st_mode & S_IFMT) == S_IFREG { out.regular.append(name) } else { out.other.append((name, st.st_mode)) }
        }
        return out
    }

    /// The TPM software stack's account, `tss`, or nil where it does not exist. AEM's
    /// trousers-changer (qubes-trousers-changer, `trousers_changer_identify`: `install -d -m 700
    /// -o tss -g tss /var/lib/tpms/$ID`) gives it the TPM's directory at every AEM boot, and
    /// tcsd, running as tss, keeps its `system.data` there: a directory it owns is the TPM
    /// stack's own, and refusing it would refuse every AEM 4.2 install.
    static let tssUID: uid_t? = {
        guard let pw = getpwnam("tss") else { return nil }
        return pw.pointee.pw_uid
    }()

    /// A directory on the way to a set, or the set's, may be owned by root, this process's
    /// user or the TPM stack's account (`tssUID`); group and others still may not write it.
    static func trustedOwner(_ uid: uid_t) -> Bool {
        uid == 0 || uid == geteuid() || (tssUID.map { uid == $0 } ?? false)
    }

    static var notTrusted: String { tssUID == nil ? "not by root" : "not by root or tss" }

    /// Why another user could change the directory `st` describes, or nil. It must be owned
    /// by root, this process's user or tss (`trustedOwner`), and neither its group nor others may write it (with
    /// a POSIX ACL the group bits are the ACL's mask, so a named user or group allowed to
    /// write shows there too). A sticky bit is no exception: in a sticky directory another
    /// user can still create the names this tool uses (staging, the next `.prev`) first.
    static func otherWriter(_ st: stat) -> String? {
        if !trustedOwner(st.st_uid) { return "is owned by uid \(st.st_uid), \(notTrusted)" }
        let mode = st.st_mode & 0o7777
        let octal = "0" + String(mode, radix: 8)
        if mode & 0o002 != 0 { return "can be written by every user (mode \(octal))" }
        if mode & 0o020 != 0 { return "can be written by its group (mode \(octal))" }
        return nil
    }

    /// Why another user could replace a directory on the way to `path` (each directory above
    /// it, named as given and as resolved), or nil: one that user can write could have a
    /// component swapped for a symbolic link between two runs, or mid-run, and root would follow
    /// it. Owned by a trusted owner (`trustedOwner`), and not writable by group or others unless
    /// sticky (in a sticky directory only the owner renames an entry, and the next one down is
    /// checked in turn).
    static func unsafeAncestor(of path: String) -> (dir: String, why: String)? {
        var absolute = path
        if !absolute.hasPrefix("/") {
            var buf = [CChar](repeating: 0, count: Int(PATH_MAX) + 1)
            guard getcwd(&buf, buf.count) != nil else { return nil }
            absolute = String(cString: buf) + "/" + path
        }
        var chains = [absolute]
        if let r = realpath(absolute, nil) {
            chains.append(String(cString: r))
            free(r)
        }
        for chain in chains {
            let parts = chain.split(separator: "/").map(String.init)
            var prefix = ""
            for part in ["/"] + parts.dropLast() {
                prefix = part == "/" ? "/" : (prefix == "/" ? "/" + part : prefix + "/" + part)
                var st = stat()
                guard stat(prefix, &st) == 0, st.st_mode & S_IFMT == S_IFDIR else { continue }
                let sticky = st.st_mode & mode_t(S_ISVTX) != 0
                if !trustedOwner(st.st_uid) { return (prefix, "is owned by uid \(st.st_uid), \(notTrusted)") }
                if !sticky, let why = otherWriter(st) { return (prefix, why) }
            }
        }
        return nil
    }

    /// The checks commit and dropPrevious make before they change anything, in this order:
    /// neither the opened parent, its ancestors nor the set (opened below the parent; nil when
    /// it does not exist yet) can be written by another user; then the parent is locked. The
    /// caller closes the set's descriptor.
    private func checkedSet(in p: Opened) throws -> Opened? {
        if let why = SealedSetWriter.otherWriter(p.st) { throw CodedError(.sealRefused, refusal(parent, why)) }
        if let why = ancestorRefusal() { throw CodedError(.sealRefused, why) }
        let set = try openDirectory(p.fd, label, display: target)
        do {
            if let set, let why = SealedSetWriter.otherWriter(set.st) { throw CodedError(.sealRefused, refusal(target, why)) }
            try lock(p.fd)
        } catch {
            if let set { close(set.fd) }
            throw error
        }
        return set
    }

    private func ancestorRefusal() -> String? {
        guard let (dir, why) = SealedSetWriter.unsafeAncestor(of: parent) else { return nil }
        return "\(dir), above \(parent), \(why): another user could swap a directory on the way for a symbolic link and root would follow it; make it root's (or tss's, as AEM makes the TPM's directory) and not writable by group or others (chown root:root, chmod go-w), nothing was changed"
    }

    private func refusal(_ dir: String, _ why: String) -> String {
        "\(dir) \(why): another user could replace the sealed set or plant names aem-pcr removes; make it root's (or tss's, as AEM makes the TPM's directory) and not writable by group or others (chown root:root, chmod go-w; mount a boot device for root only), nothing was changed"
    }

    static func kind(_ mode: mode_t) -> String {
        switch mode & S_IFMT {
        case S_IFDIR: return "a directory"
        case S_IFLNK: return "a symbolic link"
        case S_IFIFO: return "a FIFO"
        case S_IFSOCK: return "a socket"
        case S_IFCHR, S_IFBLK: return "a device"
        case S_IFREG: return "a file"
        default: return "a special file"
        }
    }

    private func same(_ a: stat, _ b: stat) -> Bool { a.st_dev == b.st_dev && a.st_ino == b.st_ino }

    // MARK: - small POSIX helpers

    /// An exclusive `flock` on the parent directory, held while its descriptor is open;
    /// refused at once when another run holds it.
    private func lock(_ fd: Int32) throws {
        while flock(fd, LOCK_EX | LOCK_NB) != 0 {
            let e = errno
            if e == EINTR { continue }
            if e == EWOULDBLOCK {
                throw CodedError(.sealIO, "another aem-pcr seal or check-boot is changing \(parent) (it holds a lock on the directory); nothing was changed, run again once it has finished")
            }
            throw CodedError(.sealIO, "lock \(parent): \(Errno(e))")
        }
    }

    private func check(_ status: Int32, _ what: String) throws {
        if status != 0 { throw CodedError(.sealIO, "\(what): \(Errno.current)") }
    }

    private func writeDurably(_ dirfd: Int32, _ name: String, _ bytes: [UInt8], display: String) throws {
        let fd = openat(dirfd, name, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0o600)
        if fd < 0 { throw CodedError(.sealIO, "create \(display)/\(name): \(Errno.current)") }
        defer { close(fd) }
        var done = 0
        while done < bytes.count {
            let n = bytes[done...].withUnsafeBytes { Glibc.write(fd, $0.baseAddress, $0.count) }
            if n < 0 && errno == EINTR { continue }
            if n < 0 { throw CodedError(.sealIO, "write \(display)/\(name): \(Errno.current)") }
            done += n
        }
        try check(fsync(fd), "fsync \(display)/\(name)")
    }

    /// A regular file below `dirfd` (never a FIFO or device put in its place: opened
    /// non-blocking and checked).
    private func readRegular(_ dirfd: Int32, _ name: String, display: String, limit: Int = 1 << 24) throws -> [UInt8] {
        let fd = openat(dirfd, name, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK)
        if fd < 0 { throw CodedError(.sealIO, "read \(display)/\(name): \(Errno.current)") }
        defer { close(fd) }
        var st = stat()
        guard fstat(fd, &st) == 0, (st.st_mode & S_IFMT) == S_IFREG else {
            throw CodedError(.sealIO, "read \(display)/\(name): not a regular file")
        }
        var out = [UInt8]()
        var chunk = [UInt8](repeating: 0, count: 65536)
        while true {
            let n = chunk.withUnsafeMutableBytes { Glibc.read(fd, $0.baseAddress, $0.count) }
            if n < 0 && errno == EINTR { continue }
            if n < 0 { throw CodedError(.sealIO, "read \(display)/\(name): \(Errno.current)") }
            if n == 0 { return out }
            out += chunk[0..<n]
            if out.count > limit { throw CodedError(.sealIO, "\(display)/\(name): larger than \(limit >> 10) KiB, not an AEM file") }
        }
    }

    /// Names in the directory open as `fd`, without `.` and `..`, sorted (`Directory.entries`).
    /// A read error fails the listing: a list cut short by one would pass for the whole
    /// directory (check-boot said "No previous set to remove" with every .prev still there,
    /// and exit 0).
    static func names(_ fd: Int32, display: String) throws -> [String] {
        do { return try Directory.entries(fd: fd) } catch { throw CodedError(.sealIO, "list \(display): \(error)") }
    }

    /// Each entry with what `fstatat` (not following a symbolic link) says of it; entries
    /// gone meanwhile are left out.
    static func stats(_ fd: Int32, display: String) throws -> [(String, stat)] {
        var out: [(String, stat)] = []
        for name in try names(fd, display: display) {
            var st = stat()
            if fstatat(fd, name, &st, AT_SYMLINK_NOFOLLOW) == 0 {
                out.append((name, st))
            } else if errno != ENOENT {
                throw CodedError(.sealIO, "stat \(display)/\(name): \(Errno.current)")
            }
        }
        return out
    }

    private func makeParents(_ path: String) throws {
        if path.isEmpty { return }
        do {
            try Directory.create(path, mode: 0o755)
        } catch let e as OutputFileError {
            throw CodedError(.sealIO, "create \(e)")
        }
    }

    /// glibc's `renameat2`, which Swift's Glibc module does not declare: resolved once.
    private typealias Renameat2 = @convention(c) (Int32, UnsafePointer<CChar>, Int32, UnsafePointer<CChar>, UInt32) -> Int32
    private static let renameat2: Renameat2? = {
        guard let sym = dlsym(UnsafeMutableRawPointer(bitPattern: 0), "renameat2") else { return nil }
        return unsafeBitCast(sym, to: Renameat2.self)
    }()

    private func exchange(_ pfd: Int32, _ a: String, _ b: String) throws {
        guard let f = SealedSetWriter.renameat2 else {
            throw CodedError(.sealIO, "this C library has no renameat2 (glibc 2.28 or later), needed to swap \(target) atomically")
        }
        let RENAME_EXCHANGE: UInt32 = 1 << 1  // linux/fs.h
        if f(pfd, a, pfd, b, RENAME_EXCHANGE) != 0 {
            let e = errno
            if e == EINVAL || e == ENOSYS || e == EOPNOTSUPP {
                throw CodedError(.sealIO, "the filesystem of \(target) cannot exchange two directories in one step (renameat2 RENAME_EXCHANGE: \(Errno(e))); nothing was replaced")
            }
            throw CodedError(.sealIO, "swap \(path(a)) with \(target): \(Errno(e))")
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
