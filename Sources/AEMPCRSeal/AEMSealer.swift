// SPDX-License-Identifier: Apache-2.0
import AEMPCR
import AEMPCRSystem
import AEMPCRTPM
import Glibc

/// The files of a new sealed set for predicted PCR values, made as AEM's `tpmsealprepare` and
/// `tpmsealdata` (qubes-antievilmaid 4.2.0, `sbin/anti-evil-maid-lib-tpm2`) make them, except
/// that the policy comes from the predicted values instead of a trial session on the TPM:
///
/// - `key.pub`, `key.priv`: a sealing object under the SRK 0x81000001 whose data are 16
///   random bytes (`head -c 16 /dev/random | tpm2_create … -L policy -i -`);
/// - `key.pcrs`: `sha256:13,17,18,19` and a newline (`echo "$_pcrs" > key.pcrs`);
/// - `secret.X.sealed2` for each `secret.X` present: `openssl enc -aes-256-ctr -pbkdf2 -e
///   -kfile -` with the 16 bytes in lower-case hex as password (`tpm2_unseal | hex`, where
///   `hex` is `xxd -ps | tr -dc 0-9a-f`: no newline);
/// - and, for `check-boot`, the saved prediction.
///
/// `anti-evil-maid-seal` removes `secret.X.sealed` (the TPM 1.2 file) once `secret.X.sealed2`
/// is written; the plan does the same.
public enum AEMSealer {
    /// The names the new set will have (for --dry-run): which secrets exist.
    public static func presentSecrets(_ layout: AEMLayout) -> [String] {
        AEMLayout.secretExtensions.filter { access(layout.secretPath($0), F_OK) == 0 }
    }

    /// The secrets a seal makes files of: those present, at least one (the one place that
    /// refuses a layout without any, before a password is asked or the TPM is opened).
    public static func secretsToSeal(_ layout: AEMLayout) throws -> [String] {
        let present = presentSecrets(layout)
        if present.isEmpty {
            throw CodedError(.sealLayout, "no secret to seal in \(layout.secretsDir) (secret.txt, secret.key, secret.otp or secret.fre): set up AEM first")
        }
        return present
    }

    /// One secret, from a directory no other user can change (else a secret could be swapped
    /// for a link to another file mid-run), as a file with one name.
    static func readSecret(_ layout: AEMLayout, _ ext: String) throws -> SecretBuffer {
        var st = stat()
        if stat(layout.secretsDir, &st) == 0, let why = SealedSetWriter.otherWriter(st) {
            throw CodedError(.sealRefused, "\(layout.secretsDir) \(why): another user could put someone else's file in place of a secret; make it root's and not writable by group or others (chown root:root, chmod go-w), nothing was sealed")
        }
        if let (dir, why) = SealedSetWriter.unsafeAncestor(of: layout.secretsDir) {
            throw CodedError(.sealRefused, "\(dir), above \(layout.secretsDir), \(why): another user could swap the secrets directory for a link to someone else's files; make it root's and not writable by group or others (chown root:root, chmod go-w), nothing was sealed")
        }
        return try SecretBuffer.read(path: layout.secretPath(ext), limit: AEMLayout.secretSizeLimit, singleLink: true)
    }

    /// `key.pcrs` as AEM writes it.
    public static func keyPCRs(_ selection: PCRSelection) -> SealedFile {
        SealedFile(name: "key.pcrs", bytes: Array((selection.description + "\n").utf8))
    }

    /// The SHA-256 of every file of the set, for the saved prediction: check-boot compares
    /// them before it confirms a boot (a truncated or missing secret.X.sealed2 no longer unseals).
    static func setFiles(_ files: [SealedFile]) -> [SealedPrediction.SetFile] {
        files.map { SealedPrediction.SetFile(name: $0.name, sha256: MultiHasher.hash(.sha256, $0.bytes)) }
    }

    /// Makes the files of the new set on a TPM 2.0. Secrets are read here and never leave
    /// this function except encrypted; every secret is decrypted again and compared before
    /// the files are returned.
    /// `secrets`: `secretsToSeal(layout)`, as the caller checked it before asking a password.
    public static func tpm2Files(device: TPM2Device, srkPassword: SecretBuffer, policy: Digest,
                                 selection: PCRSelection, layout: AEMLayout, secrets present: [String],
                                 prediction: SealedPrediction) throws -> (files: [SealedFile], dropping: Set<String>) {
        let secrets = try present.map { ($0, try readSecret(layout, $0)) }
        let key = try SecretBuffer.random(count: 16)
        let object = try srkPassword.withUnsafeBytes { auth in
            try key.withUnsafeBytes { data in
                try device.createSealedObject(parentAuth: auth, data: data, authPolicy: policy)
            }
        }
        let password = key.lowerHex()
        var files = [SealedFile(name: "key.pub", bytes: object.publicBytes),
                     SealedFile(name: "key.priv", bytes: object.privateBytes),
                     keyPCRs(selection)]
        for (ext, secret) in secrets {
            let sealed = try OpenSSLEnc.encrypt(secret, password: password)
            guard try OpenSSLEnc.decrypt(sealed, password: password).constantTimeEquals(secret) else {
                throw CodedError(.sealCrypto, "secret.\(ext) did not decrypt back to itself; nothing was replaced")
            }
            files.append(SealedFile(name: AEMLayout.sealedName(ext), bytes: sealed))
        }
        var record = prediction
        record.keyPublicSHA256 = MultiHasher.hash(.sha256, object.publicBytes)
        record.setFiles = setFiles(files)
        files.append(SealedFile(name: AEMLayout.predictionFile, bytes: Array(record.render().utf8)))
        return (files, Set(present.map { "secret.\($0).sealed" }))
    }

    /// Makes the files of the new set on a TPM 1.2, as `anti-evil-maid-seal` does through
    /// `anti-evil-maid-lib-tpm1`'s `tpmsealdata`: `tpm_sealdata $SEAL -i secret.X -o
    /// secret.X.sealed2` (the same `.sealed2` name as on TPM 2.0; the file is tpm_sealdata's),
    /// but for the predicted values. `seal12` seals one secret to the values per PCR and
    /// returns the file (`TPM12Sealer.seal`; a parameter so that tests can watch the calls).
    /// The saved prediction goes beside; `secret.X.sealed` is dropped as AEM drops it.
    /// `secrets`: `secretsToSeal(layout)` where the caller checked it already (nil: checked here).
    public static func tpm12Files(values: PCRValues, layout: AEMLayout, secrets: [String]? = nil, prediction: SealedPrediction,
                                  seal12: (SecretBuffer, [UInt32: [UInt8]]) throws -> [UInt8]) throws -> (files: [SealedFile], dropping: Set<String>) {
        let present = try secrets ?? secretsToSeal(layout)
        var pcrs = [UInt32: [UInt8]]()
        for pcr in values.pcrs(in: .sha1) { pcrs[pcr.rawValue] = values[.sha1, pcr]!.bytes }
        var files = [SealedFile]()
        for ext in present {
            let secret = try readSecret(layout, ext)
            let sealed = try seal12(secret, pcrs)
            files.append(SealedFile(name: AEMLayout.sealedName(ext), bytes: sealed))
        }
        var record = prediction
        record.setFiles = setFiles(files)
        files.append(SealedFile(name: AEMLayout.predictionFile, bytes: Array(record.render().utf8)))
        return (files, Set(present.map { "secret.\($0).sealed" }))
    }

    /// Reads the SRK password as AEM passes it (`-P "str:$(cat "$SRK_PASSWORD_CACHE")"`): the
    /// file's bytes without the trailing newlines the shell's `$(…)` drops. An empty file is
    /// the empty password.
    public static func readSRKPassword(path: String) throws -> SecretBuffer {
        let raw = try SecretBuffer.read(path: path, limit: 4096)
        // AEM passes `-P "str:$(cat FILE)"`: bash drops every NUL byte of a command substitution
        // (with a warning), so the TPM gets another password than the file's bytes. Refused here,
        // before the TPM is touched (a wrong password counts toward the TPM's lockout).
        let hasNUL = raw.withUnsafeBytes { $0.contains(0) }
        if hasNUL {
            throw CodedError(.sealIO, "\(path): the SRK password file holds a NUL byte, which AEM's $(cat) would drop; remove it (nothing was sent to the TPM)")
        }
        var n = raw.count
        raw.withUnsafeBytes { b in while n > 0 && b[n - 1] == 0x0A { n -= 1 } }
        let out = SecretBuffer(count: n)
        raw.withUnsafeBytes { src in out.withUnsafeMutableBytes { dst in if n > 0 { dst.copyMemory(from: UnsafeRawBufferPointer(rebasing: src[0..<n])) } } }
        return out
    }

    /// Prompts on the controlling terminal with echo off (as `systemd-ask-password` does for
    /// AEM); never reads standard input, the environment or the command line. `/dev/tty` must
    /// be a terminal (a character device that `isatty` accepts): a file or FIFO put in its place
    /// is refused before anything is written or read. SIGINT, SIGTERM, SIGHUP and SIGTSTP while
    /// echo is off first turn echo back on (`EchoGuard`).
    public static func promptSRKPassword(_ prompt: String) throws -> SecretBuffer {
        let fd = open("/dev/tty", O_RDWR | O_CLOEXEC | O_NOCTTY | O_NONBLOCK)
        if fd < 0 {
            throw CodedError(.sealIO, "no terminal to ask for the SRK password: give it with --srk-password-file FILE")
        }
        defer { close(fd) }
        var st = stat()
        guard fstat(fd, &st) == 0, (st.st_mode & S_IFMT) == S_IFCHR, isatty(fd) == 1 else {
            throw CodedError(.sealIO, "/dev/tty is not a terminal, so the SRK password is not asked there: give it with --srk-password-file FILE")
        }
        _ = fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) & ~O_NONBLOCK)
        var old = termios()
        guard tcgetattr(fd, &old) == 0 else { throw CodedError(.sealIO, "cannot set up the terminal: give --srk-password-file FILE") }
        var quiet = old
        quiet.c_lflag &= ~tcflag_t(ECHO)
        _ = Array(prompt.utf8).withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
        // The handlers first: a signal between the two steps must still find echo restorable.
        let guardian = EchoGuard(fd: fd, normal: old, quiet: quiet)
        defer { guardian.remove() }
        guard tcsetattr(fd, TCSAFLUSH, &quiet) == 0 else { throw CodedError(.sealIO, "cannot turn off echo: give --srk-password-file FILE") }
        defer {
            _ = tcsetattr(fd, TCSAFLUSH, &old)
            _ = write(fd, "\n", 1)
        }
        let line = SecretBuffer(count: 1024)
        var n = 0
        // Read straight into the locked buffer, one byte at a time (no copy on the stack).
        try line.withUnsafeMutableBytes { buf in
            while n < buf.count {
                let r = read(fd, buf.baseAddress! + n, 1)
                if r < 0 && errno == EINTR { continue }
                if r < 0 { throw CodedError(.sealIO, "reading the SRK password: \(Errno.current)") }
                if r == 0 || buf[n] == 0x0A || buf[n] == 0x0D { buf[n] = 0; return }
                n += 1
            }
            throw CodedError(.sealIO, "the SRK password is longer than 1024 bytes")
        }
        let out = SecretBuffer(count: n)
        line.withUnsafeBytes { src in out.withUnsafeMutableBytes { dst in if n > 0 { dst.copyMemory(from: UnsafeRawBufferPointer(rebasing: src[0..<n])) } } }
        return out
    }
}
