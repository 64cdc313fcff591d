// SPDX-License-Identifier: Apache-2.0
import AEMPCR
import AEMPCRSystem
internal import CLinux
import Glibc

/// AEM's TPM directory as qubes-trousers-changer 4.2 makes it (`sbin/trousers_changer_identify`):
/// `/var/lib/tpm` is a symbolic link `tpms/ID` to the directory of the TPM this boot identified,
/// ID being `tpm2_id`'s (or `tpm_id`'s) 40 hex digits, or `unknown` when the TPM has no ID in NV.
/// AEM's sealed set is `/var/lib/tpm/LABEL`, so `/var/lib/tpms/ID/LABEL`; its boot device holds
/// the copy `aem/tpms/ID/LABEL` (`synctpms` in `sbin/anti-evil-maid-lib`).
public struct AEMTPMDirectory: Sendable, Equatable {
    /// As given (`--tpm-dir`, default `/var/lib/tpm`).
    public let given: String
    /// The directory itself: the link's target, or `given` when it is no link.
    public let real: String
    /// The TPM ID as AEM names it (the link's last component, or the directory's name below a
    /// `tpms` directory); nil when the directory is not AEM's `tpms/ID`.
    public let tpmID: String?

    public init(given: String, real: String, tpmID: String?) {
        self.given = given
        self.real = real
        self.tpmID = tpmID
    }

    public static func resolve(_ path: String) throws -> AEMTPMDirectory {
        var p = path
        while p.count > 1 && p.hasSuffix("/") { p.removeLast() }
        let (parent, base) = split(p)
        var st = stat()
        guard lstat(p, &st) == 0 else {
            if errno == ENOENT { return AEMTPMDirectory(given: p, real: p, tpmID: idBelowTPMs(p)) }
            throw CodedError(.sealIO, "stat \(p): \(Errno.current)")
        }
        guard st.st_mode & S_IFMT == S_IFLNK else { return AEMTPMDirectory(given: p, real: p, tpmID: idBelowTPMs(p)) }
        var buf = [CChar](repeating: 0, count: Int(PATH_MAX) + 1)
        let n = readlink(p, &buf, buf.count - 1)
        guard n >= 0 else { throw CodedError(.sealIO, "readlink \(p): \(Errno.current)") }
        let target = String(decoding: buf.prefix(n).map { UInt8(bitPattern: $0) }, as: UTF8.self)
        // trousers_changer_identify: ln -s "${TPM_DIR##*/}s/$1" "$TPM_DIR"
        let relative = base + "s/"
        let absolute = (parent == "/" ? "" : parent) + "/" + relative
        for prefix in [relative, absolute] where target.hasPrefix(prefix) {
            let id = String(target.dropFirst(prefix.count))
            if AEMLayout.isValidLabel(id) {
                return AEMTPMDirectory(given: p, real: absolute + id, tpmID: id)
            }
        }
        throw CodedError(.sealRefused, "\(p) is a symbolic link to '\(TerminalSafe.text(target))', not AEM's '\(relative)ID' (the link qubes-trousers-changer's trousers_changer_identify makes): name the sealed set's directory itself with --tpm-dir; nothing was changed")
    }

    /// `/x/tpms/ID` names TPM ID (a path given as AEM's real directory).
    static func idBelowTPMs(_ path: String) -> String? {
        let (parent, base) = split(path)
        guard split(parent).1 == "tpms", AEMLayout.isValidLabel(base) else { return nil }
        return base
    }

    static func split(_ path: String) -> (String, String) {
        guard let slash = path.lastIndex(of: "/") else { return (".", path) }
        let parent = slash == path.startIndex ? "/" : String(path[..<slash])
        return (parent, String(path[path.index(after: slash)...]))
    }
}

/// Printable ASCII of a string from the system (a link's target, a label): anything else as `?`.
enum TerminalSafe {
    static func text(_ s: String) -> String {
        String(s.unicodeScalars.map { $0.isASCII && $0.value >= 0x20 && $0.value < 0x7F ? Character($0) : "?" })
    }
}

/// One line of `/proc/self/mountinfo` (proc(5)): `ID PARENT MAJOR:MINOR ROOT MOUNTPOINT OPTIONS
/// [OPTIONAL…] - FSTYPE SOURCE SUPEROPTIONS`, ROOT, MOUNTPOINT and SOURCE with the kernel's
/// octal escapes (`\040` space, `\011` tab, `\012` newline, `\134` backslash) decoded.
public struct MountInfoEntry: Sendable, Equatable {
    public let major: UInt32
    public let minor: UInt32
    public let root: String
    public let mountPoint: String
    public let options: [String]
    public let fsType: String
    public let source: String

    public var readOnly: Bool { options.contains("ro") }

    /// glibc's `makedev` (a macro Swift does not import): the `st_rdev` of MAJOR:MINOR.
    public static func makedev(_ major: UInt32, _ minor: UInt32) -> UInt64 {
        let ma = UInt64(major), mi = UInt64(minor)
        return (ma & 0xFFFF_F000) << 32 | (ma & 0xFFF) << 8 | (mi & 0xFFFF_FF00) << 12 | (mi & 0xFF)
    }

    /// Every well-formed line; a malformed one is skipped (the kernel writes them, a line that
    /// does not parse names no device).
    public static func parse(_ text: [UInt8]) -> [MountInfoEntry] {
        text.split(separator: 0x0A).compactMap { parseLine(Array($0)) }
    }

    public static func parseLine(_ line: [UInt8]) -> MountInfoEntry? {
        let fields = line.split(separator: 0x20, omittingEmptySubsequences: true).map { Array($0) }
        guard fields.count >= 10, let dash = fields.indices.dropFirst(6).first(where: { fields[$0] == [0x2D] }),
              dash + 2 < fields.count else { return nil }
        let devno = fields[2].split(separator: 0x3A).map { String(decoding: $0, as: UTF8.self) }
        guard devno.count == 2, let major = UInt32(devno[0]), let minor = UInt32(devno[1]) else { return nil }
        func text(_ f: [UInt8]) -> String { String(decoding: unescape(f), as: UTF8.self) }
        return MountInfoEntry(major: major, minor: minor, root: text(fields[3]), mountPoint: text(fields[4]),
                              options: text(fields[5]).split(separator: ",").map(String.init),
                              fsType: text(fields[dash + 1]), source: text(fields[dash + 2]))
    }

    /// The kernel's `mangle_path`/`seq_escape` form: a backslash and three octal digits.
    static func unescape(_ f: [UInt8]) -> [UInt8] {
        var out = [UInt8]()
        var i = 0
        func octal(_ b: UInt8) -> UInt8? { b >= 0x30 && b <= 0x37 ? b - 0x30 : nil }
        while i < f.count {
            if f[i] == 0x5C, i + 3 < f.count,
               let a = octal(f[i + 1]), let b = octal(f[i + 2]), let c = octal(f[i + 3]), a <= 3 {
                out.append(a << 6 | b << 3 | c)
                i += 4
            } else {
                out.append(f[i])
                i += 1
            }
        }
        return out
    }
}

/// The copy of the sealed set on AEM's boot device, where AEM's initramfs unseals from
/// (`90anti-evil-maid/anti-evil-maid-unseal`: `cp -Tr "$MNT/aem/tpms" /var/lib/tpms`).
/// Found as `anti-evil-maid-seal` finds the device: `aem.uuid=` on the kernel command line
/// (`/dev/disk/by-uuid/UUID`, taken when that file system's label is the set's label), else
/// `/dev/disk/by-label/LABEL`; its mount point from `/proc/self/mountinfo`, else mounted (ext4,
/// as AEM's unseal mounts it) in a private mount namespace on a root-only directory and
/// unmounted by `release()`. The copy mirrors the set's regular files, as `synctpms` does.
public final class AEMDeviceCopy {
    /// How the device is chosen (`--aem-device`, `--aem-mount`, `--no-aem-device`).
    public enum Choice: Sendable, Equatable {
        case automatic
        case device(String)
        case mount(String)
        case none
    }

    public let label: String
    public let tpmID: String
    /// The block device (nil when the mount point was named).
    public let device: String?
    /// How the device was found, for the report.
    public let found: String
    public let mountPoint: String
    /// Mounted by this process (privately), unmounted by `release()`.
    public private(set) var mountedHere: Bool

    /// `MOUNT/aem/tpms/ID/LABEL` (`synctpms`: `$_mnt/aem/${TPMS_DIR##*/}/$_id/$_label`).
    public var setDir: String { (mountPoint == "/" ? "" : mountPoint) + "/aem/tpms/" + tpmID + "/" + label }
    public var writer: SealedSetWriter { SealedSetWriter(target: setDir) }

    init(label: String, tpmID: String, device: String?, found: String, mountPoint: String, mountedHere: Bool) {
        self.label = label
        self.tpmID = tpmID
        self.device = device
        self.found = found
        self.mountPoint = mountPoint
        self.mountedHere = mountedHere
    }

    deinit { _ = release() }

    /// The way out when no device is found, for every refusal below.
    static func wayOut(_ tpm: AEMTPMDirectory) -> String {
        "plug in the AEM device, or name it with --aem-device DEVICE|UUID or its mount point with --aem-mount DIR; or write only \(tpm.given) with --no-aem-device (AEM's unseal then reads the old set from the device at the next boot); nothing was changed"
    }

    /// The device copy for the set `label` of `tpm`, or nil when there is none to write: skipped
    /// (`.none`), or `tpm` is not AEM's `tpms/ID` and no device was named. Throws a one-line
    /// refusal naming what to do when the device cannot be found or mounted. `readOnly`: a dry
    /// run (a private mount is read-only).
    public static func prepare(label: String, tpm: AEMTPMDirectory, choice: Choice, readOnly: Bool,
                               cmdline: String? = nil, diskDir: String = "/dev/disk",
                               mountInfo: [MountInfoEntry]? = nil) throws -> AEMDeviceCopy? {
        if choice == .none { return nil }
        guard let id = tpm.tpmID else {
            if choice == .automatic { return nil }
            throw CodedError(.sealRefused, "\(tpm.given) is not AEM's tpms/ID directory (a link made by trousers_changer_identify, or a directory below tpms/), so the TPM ID that names the copy on the AEM device (aem/tpms/ID/\(label)) is unknown: give --tpm-dir /var/lib/tpm as AEM has it; nothing was changed")
        }
        if case .mount(let dir) = choice {
            var st = stat()
            guard stat(dir, &st) == 0, st.st_mode & S_IFMT == S_IFDIR else {
                throw CodedError(.sealRefused, "--aem-mount \(dir) is not a directory (the mounted AEM device); nothing was changed")
            }
            return AEMDeviceCopy(label: label, tpmID: id, device: nil, found: "--aem-mount", mountPoint: dir, mountedHere: false)
        }
        let (node, found) = try locate(label: label, tpm: tpm, choice: choice, cmdline: cmdline, diskDir: diskDir)
        var st = stat()
        guard stat(node, &st) == 0, st.st_mode & S_IFMT == S_IFBLK else {
            throw CodedError(.sealRefused, "\(node) (\(found)) is not a block device: \(wayOut(tpm))")
        }
        let mounts = try mountInfo ?? MountInfoEntry.parse(FileReader.readAll(path: "/proc/self/mountinfo", limit: 16 << 20))
        let here = mounts.filter { $0.root == "/" && MountInfoEntry.makedev($0.major, $0.minor) == UInt64(st.st_rdev) }
        if let rw = here.first(where: { !$0.readOnly }) ?? (readOnly ? here.first : nil) {
            return AEMDeviceCopy(label: label, tpmID: id, device: node, found: found, mountPoint: rw.mountPoint, mountedHere: false)
        }
        if let ro = here.first {
            throw CodedError(.sealRefused, "the AEM device \(node) is mounted read-only at \(ro.mountPoint): mount it read-write (mount -o remount,rw \(ro.mountPoint)) and seal again, or give --no-aem-device; nothing was changed")
        }
        let dir = try mountPrivately(node, readOnly: readOnly)
        return AEMDeviceCopy(label: label, tpmID: id, device: node, found: found, mountPoint: dir, mountedHere: true)
    }

    /// The device node and how it was found.
    static func locate(label: String, tpm: AEMTPMDirectory, choice: Choice, cmdline: String?, diskDir: String) throws -> (String, String) {
        if case .device(let d) = choice {
            if d.hasPrefix("/") { return (d, "--aem-device") }
            guard AEMLayout.isValidLabel(d) else { throw CodedError(.sealRefused, "--aem-device '\(TerminalSafe.text(d))' is neither a path nor a file system UUID; nothing was changed") }
            return (diskDir + "/by-uuid/" + d, "--aem-device \(d)")
        }
        // anti-evil-maid-seal: DEV=/dev/disk/by-uuid/$(getparams aem.uuid), or by-label/$LABEL.
        let line = cmdline ?? ((try? FileReader.readAll(path: "/proc/cmdline", limit: 1 << 16)).map { String(decoding: $0, as: UTF8.self) } ?? "")
        let uuid = line.split(whereSeparator: { $0 == " " || $0 == "\n" || $0 == "\t" })
            .last { $0.hasPrefix("aem.uuid=") }.map { String($0.dropFirst("aem.uuid=".count)) }
        var notes = [String]()
        if let uuid, AEMLayout.isValidLabel(uuid) {
            let node = diskDir + "/by-uuid/" + uuid
            if access(node, F_OK) == 0 {
                let fsLabel = ext4Label(path: node)
                if fsLabel == label { return (node, "aem.uuid=\(uuid) on the kernel command line") }
                notes.append("aem.uuid=\(uuid) on the kernel command line is labelled \(fsLabel.map { "'\(TerminalSafe.text($0))'" } ?? "with no ext4 label"), not \(label)")
            } else {
                notes.append("\(node) (aem.uuid= on the kernel command line) does not exist")
            }
        }
        let byLabel = diskDir + "/by-label/" + label
        if access(byLabel, F_OK) == 0 { return (byLabel, byLabel) }
        notes.append("\(byLabel) does not exist")
        throw CodedError(.sealRefused, "no AEM device for \(label) (\(notes.joined(separator: "; "))): \(wayOut(tpm))")
    }

    /// The volume label of the ext4 file system on `path` (superblock at byte 1024: magic
    /// 0xEF53 at 0x38, `s_volume_name[16]` at 0x78); nil when it is no ext4 or cannot be read.
    public static func ext4Label(path: String) -> String? {
        let fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK)
        guard fd >= 0 else { return nil }
        defer { close(fd) }
        var sb = [UInt8](repeating: 0, count: 1024)
        let n = sb.withUnsafeMutableBytes { pread(fd, $0.baseAddress, 1024, 1024) }
        guard n == 1024, sb[0x38] == 0x53, sb[0x39] == 0xEF else { return nil }
        return String(decoding: sb[0x78..<0x88].prefix { $0 != 0 }, as: UTF8.self)
    }

    /// Mounts `node` (ext4) in a mount namespace of this process's own (so that nothing else
    /// sees it, and it goes when the process ends however it ends) on a new root-only
    /// directory under /run; returns that directory.
    static func mountPrivately(_ node: String, readOnly: Bool) throws -> String {
        guard geteuid() == 0 else {
            throw CodedError(.sealRefused, "the AEM device \(node) is not mounted, and mounting it needs root: run as root, or mount it and give --aem-mount DIR; nothing was changed")
        }
        guard aempcr_unshare_mount_namespace() == 0 else {
            throw CodedError(.sealIO, "a private mount namespace for the AEM device \(node) (unshare): \(Errno.current); mount it yourself and give --aem-mount DIR; nothing was changed")
        }
        // No mount made below propagates to the system's namespace.
        guard mount("none", "/", nil, UInt(MS_REC | MS_PRIVATE), nil) == 0 else {
            throw CodedError(.sealIO, "make the private mount namespace private (mount --make-rprivate /): \(Errno.current); nothing was changed")
        }
        let base = access("/run", W_OK) == 0 ? "/run" : "/tmp"
        var template = Array((base + "/aem-pcr-device.XXXXXX").utf8CString)
        guard let made = mkdtemp(&template) else {
            throw CodedError(.sealIO, "create a mount point under \(base): \(Errno.current); nothing was changed")
        }
        let dir = String(cString: made)
        var flags = UInt(MS_NOSUID | MS_NODEV | MS_NOEXEC)
        if readOnly { flags |= UInt(MS_RDONLY) }
        guard mount(node, dir, "ext4", flags, nil) == 0 else {
            let e = errno
            rmdir(dir)
            throw CodedError(.sealIO, "mount the AEM device \(node) (ext4, as AEM's unseal mounts it) on \(dir): \(Errno(e)); nothing was changed")
        }
        return dir
    }

    /// Unmounts what `prepare` mounted (and removes its directory); the error, if any.
    @discardableResult
    public func release() -> String? {
        guard mountedHere else { return nil }
        mountedHere = false
        guard umount2(mountPoint, 0) == 0 else {
            return "unmount \(mountPoint): \(Errno.current) (the mount is this process's own and goes with it)"
        }
        rmdir(mountPoint)
        return nil
    }

    /// The new set's names for the device: those of the set in the TPM directory once `plan`
    /// is done (new, replaced and kept files), and the device's own files it would drop.
    public func plan(after primary: [(String, SealedSetWriter.Change)]) throws -> [(String, SealedSetWriter.Change)] {
        let names = primary.filter { [.create, .replace, .keep].contains($0.1) }.map(\.0)
        let extra = Set(try writer.currentFiles()).subtracting(names)
        return try writer.plan(names.map { SealedFile(name: $0, bytes: []) }, dropping: extra)
    }

    /// Replaces the device's set with the regular files of the set in `primaryDir` (each
    /// file's bytes as they are there), atomically, with `SealedSetWriter`; files the device's
    /// set has and `primaryDir`'s has not are dropped, as `synctpms` (`rm -rf`, `cp -r`) does.
    public func copy(from primaryDir: String, now: time_t = time(nil)) throws -> (plan: [(String, SealedSetWriter.Change)], outcome: SealedSetWriter.Outcome) {
        let names = try SealedSetWriter(target: primaryDir).currentFiles()
        var files = [SealedFile]()
        for name in names {
            files.append(SealedFile(name: name, bytes: try FileReader.readAll(path: primaryDir + "/" + name, limit: 1 << 24, noFollow: true)))
        }
        let w = writer
        let dropping = Set(try w.currentFiles()).subtracting(names)
        let plan = try w.plan(files, dropping: dropping)
        return (plan, try w.commit(files, dropping: dropping, now: now))
    }

    /// How the device's set differs from the one in `primaryDir`: each regular file missing,
    /// different or extra, as `NAME missing|differs|extra`. Empty when they are the same.
    public func differences(from primaryDir: String) throws -> [String] {
        let mine = try SealedSetWriter(target: primaryDir).currentFiles()
        let theirs = try writer.currentFiles()
        var out = [String]()
        for name in mine {
            guard theirs.contains(name) else { out.append(name + " missing"); continue }
            let a = try FileReader.readAll(path: primaryDir + "/" + name, limit: 1 << 24, noFollow: true)
            let b = try FileReader.readAll(path: setDir + "/" + name, limit: 1 << 24, noFollow: true)
            if a != b { out.append(name + " differs") }
        }
        for name in theirs where !mine.contains(name) { out.append(name + " extra") }
        return out
    }
}
