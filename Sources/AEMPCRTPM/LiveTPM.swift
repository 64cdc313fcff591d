import AEMPCR
import Glibc

/// The running machine's TPM: which family it is, and its PCR values, from tpm2-tss (TPM 2.0)
/// or the kernel's sysfs text (TPM 1.2, which tpm2-tss cannot reach).
public enum LiveTPM {
    /// Where the kernel describes the first TPM.
    public static let sysfsDirectory = "/sys/class/tpm/tpm0"

    /// The TPM 1.2 PCR text files the kernel has written, newest location first.
    public static let tpm12PCRFiles = [
        "/sys/class/tpm/tpm0/pcrs",
        "/sys/class/tpm/tpm0/device/pcrs",
        "/sys/class/misc/tpm0/device/pcrs",
    ]

    /// The family of the machine's TPM, from what the kernel says: `tpm_version_major` where the
    /// kernel has it; else a PCR text file (only TPM 1.2 drivers write one) or the TPM 2.0
    /// resource manager device. Throws when there is no TPM or the kernel does not say.
    public static func family(sysfs: String = sysfsDirectory) throws -> TPMFamily {
        if let bytes = try? FileReader.readAll(path: sysfs + "/tpm_version_major", limit: 64) {
            switch String(decoding: bytes, as: UTF8.self).trimmingCharacters(in: [" ", "\n"]) {
            case "1": return .tpm12
            case "2": return .tpm20
            case let other:
                throw TPMError(.family, "\(sysfs)/tpm_version_major says '\(other)', neither 1 nor 2")
            }
        }
        if tpm12PCRFiles.contains(where: { access($0, F_OK) == 0 }) { return .tpm12 }
        if access("/dev/tpmrm0", F_OK) == 0 { return .tpm20 }
        if access(sysfs, F_OK) != 0 && access("/dev/tpm0", F_OK) != 0 {
            throw TPMError(.noDevice, "this machine shows no TPM (\(sysfs) and /dev/tpm0 are missing): is it enabled in the firmware?")
        }
        throw TPMError(.family, "the kernel does not say which TPM family \(sysfs) is: give --tpm 1.2 or 2.0")
    }

    /// A TPM 1.2's PCRs from the kernel's text (`path`, or the first file the kernel has).
    public static func tpm12PCRs(path: String? = nil) throws -> (values: PCRValues, source: String) {
        let candidates = path.map { [$0] } ?? tpm12PCRFiles
        for p in candidates {
            if path == nil && access(p, F_OK) != 0 { continue }
            if access(p, R_OK) != 0 && errno == EACCES {
                throw TPMError(.permission, "no permission to read \(p): run as root")
            }
            let bytes = try FileReader.readAll(path: p, limit: 1 << 16)
            return (try TPM12PCRText.parse(bytes, source: p), p)
        }
        throw TPMError(.noDevice, "no TPM 1.2 PCR file (\(tpm12PCRFiles.joined(separator: ", "))): is the tpm_tis driver loaded?")
    }
}

private extension String {
    func trimmingCharacters(in set: Set<Character>) -> String {
        var s = Substring(self)
        while let f = s.first, set.contains(f) { s.removeFirst() }
        while let l = s.last, set.contains(l) { s.removeLast() }
        return String(s)
    }
}
