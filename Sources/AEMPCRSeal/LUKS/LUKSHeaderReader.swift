// SPDX-License-Identifier: Apache-2.0
// The LUKS header backup AEM's initramfs hashes into PCR13, made by the same operation:
// libcryptsetup's crypt_header_backup (what `cryptsetup luksHeaderBackup` calls), loaded at run
// time so that aem-pcr starts and predicts without it. The backup holds the keyslot area (key
// material): it is written into a private directory on tmpfs, opened, unlinked at once, hashed
// from the descriptor and truncated; no name is left behind, on success or on error.
import AEMPCR
import AEMPCRSystem
import Glibc

/// A LUKS header that could not be read, naming the UUID and path.
/// libcryptsetup.so.12 opened with `dlopen`, the four functions used resolved up front.
final class CryptsetupLibrary: @unchecked Sendable {
    // @unchecked Sendable: every stored property is a constant (the handle and function pointers);
    // each use creates and frees its own crypt_device.

    // int crypt_init(struct crypt_device **cd, const char *device);
    typealias InitFn = @convention(c) (UnsafeMutablePointer<OpaquePointer?>, UnsafePointer<CChar>) -> Int32
    // int crypt_load(struct crypt_device *cd, const char *requested_type, void *params);
    typealias LoadFn = @convention(c) (OpaquePointer, UnsafePointer<CChar>?, UnsafeMutableRawPointer?) -> Int32
    // int crypt_header_backup(struct crypt_device *cd, const char *requested_type, const char *backup_file);
    typealias HeaderBackupFn = @convention(c) (OpaquePointer, UnsafePointer<CChar>?, UnsafePointer<CChar>) -> Int32
    // void crypt_free(struct crypt_device *cd);
    typealias FreeFn = @convention(c) (OpaquePointer?) -> Void

    let initDevice: InitFn
    let load: LoadFn
    let headerBackup: HeaderBackupFn
    let free: FreeFn
    private let handle: UnsafeMutableRawPointer

    /// The soname of cryptsetup 2.x (Debian `libcryptsetup12`, Fedora `cryptsetup-libs`).
    static let soname = "libcryptsetup.so.12"

    static let shared: Result<CryptsetupLibrary, CodedError> = {
        do { return .success(try CryptsetupLibrary(soname)) } catch let e as CodedError { return .failure(e) }
        catch { return .failure(missing(String(describing: error))) }
    }()

    static func missing(_ what: String) -> CodedError {
        CodedError(.luksLibcryptsetupMissing, "cannot load \(what), which reads LUKS headers as cryptsetup luksHeaderBackup does: install libcryptsetup12 (Debian) or cryptsetup-libs (Fedora)")
    }

    init(_ soname: String) throws {
        guard let h = dlopen(soname, RTLD_NOW | RTLD_LOCAL) else { throw CryptsetupLibrary.missing(soname) }
        var missingNames = [String]()
        func sym<T>(_ name: String, _: T.Type) -> T? {
            guard let p = dlsym(h, name) else { missingNames.append(name); return nil }
            return unsafeBitCast(p, to: T.self)
        }
        let a = sym("crypt_init", InitFn.self)
        let b = sym("crypt_load", LoadFn.self)
        let c = sym("crypt_header_backup", HeaderBackupFn.self)
        let d = sym("crypt_free", FreeFn.self)
        guard let a, let b, let c, let d else {
            dlclose(h)
            throw CryptsetupLibrary.missing("\(soname) without \(missingNames.joined(separator: ", "))")
        }
        handle = h
        (initDevice, load, headerBackup, free) = (a, b, c, d)
    }
    // Never closed: loaded for the life of the process, as trousers is.
}

/// Reads LUKS header backups and hashes them for PCR13.
public enum LUKSHeaderReader {
    /// The device AEM's initramfs reads for `uuid`.
    public static func devicePath(_ uuid: String) -> String { "/dev/disk/by-uuid/\(uuid)" }

    /// H(backup of the LUKS header at `path`) in `bank`, as AEM's `hashfile` computes it.
    /// `soname` is for tests (a missing library).
    public static func measure(uuid: String, path: String, bank: HashAlgorithm,
                               soname: String? = nil) throws -> LUKSMeasurement.Extend {
        let shown = Escape.text(path)
        let u = Escape.text(uuid)
        // Our own checks first, so that the common failures name the cause in one sentence.
        var st = stat()
        if stat(path, &st) != 0 {
            let e = errno
            if e == EACCES {
                throw CodedError(.luksPermission, "cannot read the LUKS header of \(u) at \(shown): permission denied (reading a disk's header needs root)")
            }
            throw CodedError(.luksHeaderNotFound, "no LUKS header for \(u): \(shown) \(e == ENOENT ? "does not exist" : "\(Errno(e))") (give --luks-header \(u)=PATH: a device, image or header backup file)")
        }
        let probe = open(path, O_RDONLY | O_CLOEXEC)
        if probe < 0 {
            let e = errno
            if e == EACCES || e == EPERM {
                throw CodedError(.luksPermission, "cannot read the LUKS header of \(u) at \(shown): permission denied (reading a disk's header needs root)")
            }
            throw CodedError(.luksHeaderNotFound, "cannot open the LUKS header of \(u) at \(shown): \(Errno(e))")
        }
        close(probe)

        let lib: CryptsetupLibrary
        if let soname {
            lib = try CryptsetupLibrary(soname)
        } else {
            lib = try CryptsetupLibrary.shared.get()
        }

        var cdOut: OpaquePointer?
        var r = lib.initDevice(&cdOut, path)
        guard r >= 0, let cd = cdOut else {
            throw CodedError(-r == EACCES || -r == EPERM ? .luksPermission : .luksBackupFailed,
                            "libcryptsetup cannot open \(shown) (LUKS \(u)): \(Errno(-r))\(-r == EACCES || -r == EPERM ? " (needs root)" : "")")
        }
        defer { lib.free(cd) }
        // CRYPT_LUKS is NULL: LUKS1 or LUKS2, as cryptsetup luksHeaderBackup accepts.
        r = lib.load(cd, nil, nil)
        if r < 0 {
            if -r == EACCES || -r == EPERM {
                throw CodedError(.luksPermission, "cannot read the LUKS header of \(u) at \(shown): permission denied (reading a disk's header needs root)")
            }
            throw CodedError(.luksNotLuks, "\(shown), given for \(u), is not a LUKS device, image or header backup (libcryptsetup: \(Errno(-r)))")
        }

        // A private directory on tmpfs; crypt_header_backup creates the file with O_EXCL.
        let base = isDirectory("/dev/shm") ? "/dev/shm" : "/tmp"
        var template = Array("\(base)/aem-pcr-luks.XXXXXX".utf8CString)
        guard let dirPtr = template.withUnsafeMutableBufferPointer({ mkdtemp($0.baseAddress!) }) else {
            throw CodedError(.luksBackupFailed, "cannot make a private directory in \(base) for the header backup of \(u): \(Errno.current)")
        }
        let dir = String(cString: dirPtr)
        let file = dir + "/header"
        defer {
            unlink(file)
            rmdir(dir)
        }
        r = lib.headerBackup(cd, nil, file)
        if r < 0 {
            throw CodedError(.luksBackupFailed, "libcryptsetup cannot back up the LUKS header of \(u) from \(shown): \(Errno(-r))")
        }
        let fd = open(file, O_RDONLY | O_CLOEXEC | O_NOFOLLOW)
        guard fd >= 0 else {
            throw CodedError(.luksBackupFailed, "cannot open the header backup of \(u): \(Errno.current)")
        }
        unlink(file)
        defer {
            ftruncate(fd, 0)
            close(fd)
        }
        var hasher = MultiHasher([bank])
        var total: UInt64 = 0
        let chunk = 1 << 16
        let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: chunk, alignment: 16)
        defer {
            memset(buffer.baseAddress!, 0, chunk)
            buffer.deallocate()
        }
        while true {
            let n = read(fd, buffer.baseAddress, chunk)
            if n < 0 {
                if errno == EINTR { continue }
                throw CodedError(.luksBackupFailed, "cannot read the header backup of \(u): \(Errno.current)")
            }
            if n == 0 { break }
            hasher.update(UnsafeRawBufferPointer(rebasing: buffer[0..<n]))
            total += UInt64(n)
        }
        return LUKSMeasurement.Extend(uuid: uuid, source: path, backupSize: total, digest: hasher.finalize()[bank]!)
    }

    private static func isDirectory(_ path: String) -> Bool {
        var st = stat()
        return stat(path, &st) == 0 && (st.st_mode & S_IFMT) == S_IFDIR
    }
}
