// SPDX-License-Identifier: Apache-2.0
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
                throw CodedError(.tpmFamily, "\(sysfs)/tpm_version_major says '\(other)', neither 1 nor 2")
            }
        }
        if tpm12PCRFiles.contains(where: { access($0, F_OK) == 0 }) { return .tpm12 }
        if access("/dev/tpmrm0", F_OK) == 0 { return .tpm20 }
        if access(sysfs, F_OK) != 0 && access("/dev/tpm0", F_OK) != 0 {
            throw CodedError(.tpmNoDevice, "this machine shows no TPM (\(sysfs) and /dev/tpm0 are missing): is it enabled in the firmware?")
        }
        throw CodedError(.tpmFamily, "the kernel does not say which TPM family \(sysfs) is: give --tpm 1.2 or 2.0")
    }

    /// A TPM 1.2's PCRs from the kernel's text (`path`, or the first file the kernel has).
    public static func tpm12PCRs(path: String? = nil) throws -> (values: PCRValues, source: String) {
        let candidates = path.map { [$0] } ?? tpm12PCRFiles
        for p in candidates {
            if path == nil && access(p, F_OK) != 0 { continue }
            if access(p, R_OK) != 0 && errno == EACCES {
                throw CodedError(.tpmPermission, "no permission to read \(p): run as root")
            }
            let bytes = try FileReader.readAll(path: p, limit: 1 << 16)
            return (try TPM12PCRText.parse(bytes, source: p), p)
        }
        throw CodedError(.tpmNoDevice, "no TPM 1.2 PCR file (\(tpm12PCRFiles.joined(separator: ", "))): is the tpm_tis driver loaded?")
    }
}

/// The TPM family a command works with, decided in this one place, from the first that tells:
///
/// 1. `--tpm`, as stated;
/// 2. the current boot's DRTM log, when one is given and its format says (a TPM 1.2 container, a
///    TCG log, records with a bank other than SHA-1): the log describes the TPM that measured it,
///    which may be another machine's (--event-log from a saved set);
/// 3. this machine's TPM as the kernel describes it (`LiveTPM.family`: sysfs, no TPM command);
/// 4. for this machine's TPM only, a TCTI named (--tcti, TPM2TOOLS_TCTI or TCTI): TPM 2.0.
///
/// Never a silent default: a TPM 2.0 user who forgot `--tpm` would otherwise get TPM 1.2 values.
/// The log comes before sysfs so that a log saved on another machine is not read as this one's.
public struct TPMFamilyResolver {
    /// Where the family was found.
    public enum Origin: Sendable, Equatable {
        case stated, log, kernel, tcti
    }

    /// What the family is for, which says what is asked when nothing tells.
    public enum Question: Sendable {
        /// The next boot's, to predict (a TCTI says nothing about it).
        case nextBoot
        /// This machine's TPM, to read or seal on.
        case machine
    }

    public let stated: TPMFamily?
    /// A TCTI was named (--tcti, or TPM2TOOLS_TCTI / TCTI non-empty).
    public let tctiNamed: Bool
    private let kernel: () throws -> TPMFamily

    /// `kernel`: what sysfs says (tests give their own).
    public init(stated: TPMFamily?, tctiNamed: Bool = false, kernel: @escaping () throws -> TPMFamily = { try LiveTPM.family() }) {
        self.stated = stated
        self.tctiNamed = tctiNamed
        self.kernel = kernel
    }

    /// The resolver for this process: `--tcti` and the environment as `TCTIChoice.resolve`
    /// takes them (an empty one names none).
    public static func live(stated: TPMFamily?, tcti: String?, environment: [String: String]) -> TPMFamilyResolver {
        TPMFamilyResolver(stated: stated, tctiNamed: TCTIChoice.resolve(option: tcti, environment: environment).origin != "default")
    }

    /// The family and where it was found. Throws when nothing tells: for `.machine` the
    /// kernel's reason (no TPM, an unknown tpm_version_major); for `.nextBoot` what to give.
    /// A log that is not a complete launch's is refused as `LogPredictor.facts` refuses it.
    public func family(log: DRTMEventLog? = nil, for question: Question) throws -> (family: TPMFamily, origin: Origin) {
        if let stated { return (stated, .stated) }
        // A TrenchBoot log is a TPM 2.0 TCG log (GRUB writes that format on both branches).
        if let log, DRTMLaunch.recognise(log).isTrenchBoot, log.format == .tpm20TCG { return (.tpm20, .log) }
        if let log, let family = try LogPredictor.facts(of: log).tpm { return (family, .log) }
        let fromKernel = Result { try kernel() }
        if case .success(let family) = fromKernel { return (family, .kernel) }
        switch question {
        case .machine:
            if tctiNamed { return (.tpm20, .tcti) }
            return (try fromKernel.get(), .kernel)
        case .nextBoot:
            let hint = "give --tpm 1.2 or --tpm 2.0 (\(LiveTPM.sysfsDirectory)/tpm_version_major says 1 or 2)"
            if let log { throw CodedError(.tpmFamily, "\(log.source) does not tell the TPM family (SHA-1 records only): \(hint)") }
            throw CodedError(.tpmFamily, "the next boot's TPM family is not known: \(hint), or predict from the current boot (--live)")
        }
    }

    /// A TPM 1.2 is read from sysfs and sealed to through trousers, never through tpm2-tss: a
    /// TCTI on the command line contradicts the family (refused); one from the environment (set
    /// for another machine, or by tpm2-tools habits) is ignored, and the returned note says so.
    public static func checkTCTI(for family: TPMFamily, origin: Origin, tcti: String?, environment: [String: String]) throws -> String? {
        guard family == .tpm12 else { return nil }
        let whose = origin == .stated ? "--tpm 1.2 names a TPM 1.2" : "this machine's TPM is a TPM 1.2 (\(LiveTPM.sysfsDirectory)/tpm_version_major)"
        let choice = TCTIChoice.resolve(option: tcti, environment: environment)
        switch choice.origin {
        case "--tcti":
            throw CodedError(.tpmTCTIRefused, "--tcti \(choice.configuration) names a TPM 2.0 transport, but \(whose), which is read from sysfs and sealed to through tcsd: drop --tcti")
        case "default":
            return nil
        default:
            return "\(choice.origin)=\(choice.configuration) is ignored: \(whose), which tpm2-tss cannot reach"
        }
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
