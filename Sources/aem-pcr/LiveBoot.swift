import AEMPCR
import AEMPCRHardware
import AEMPCRSeal
import AEMPCRTPM
import ArgumentParser
import Glibc

/// Where the running machine is read: the TPM's transport and physical memory.
struct LiveOptions: ParsableArguments {
    @Option(help: ArgumentHelp("The TPM 2.0 to read, in tpm2-tss's TCTI syntax: device:/dev/tpmrm0, swtpm:path=SOCKET, swtpm:host=H,port=P, mssim:…, tabrmd:… (no other TCTI is opened; default: TPM2TOOLS_TCTI or TCTI from the environment, else device:/dev/tpmrm0).", valueName: "tcti"))
    var tcti: String?

    @Option(help: ArgumentHelp("Physical memory to read the current DRTM log from: /dev/mem, or a file laid out like it (tests, offline copies).", valueName: "path"))
    var mem = "/dev/mem"

    /// The DRTM log in `file` (--event-log), else the running boot's from `mem`.
    func log(_ file: String?) throws -> DRTMEventLog {
        try file.map { try DRTMEventLog.parse(path: $0) } ?? LiveBoot.currentLog(mem: mem)
    }

    /// The PCR values in `file` (--pcrs), else the TPM's that `log` must replay to; with a name
    /// for messages.
    func pcrs(_ file: String?, for log: DRTMEventLog, verbose: Bool) throws -> (PCRValues, String) {
        if let file { return (try PCRValuesFile.read(path: file), file) }
        return try LiveBoot.currentPCRs(for: log, tcti: tcti, verbose: verbose)
    }
}

/// The running boot as a source: its DRTM log from the TXT heap and its PCRs from the TPM.
enum LiveBoot {
    /// The current boot's DRTM log, read from the TXT heap in physical memory as `log dump` reads it.
    static func currentLog(mem: String) throws -> DRTMEventLog {
        let hint = "give the log with --event-log FILE (saved with 'aem-pcr log dump' on the machine)"
        if mem == "/dev/mem" && geteuid() != 0 {
            throw UsageError("reading the current DRTM log from /dev/mem needs root: run with sudo, or \(hint)")
        }
        do {
            let memory = try PhysicalMemoryFile(path: mem)
            let dump = try TXTHeapDump.capture(from: memory)
            return try DRTMEventLog.parse(bytes: dump, source: mem == "/dev/mem" ? "the TXT heap" : "the TXT heap in \(mem)")
        } catch let e as AEMPCRError {
            throw LiveError(code: e.errorCode, "the current DRTM log cannot be read (\(e)); \(hint)")
        }
    }

    /// The TPM's family: `stated` (--tpm) where given, else what the kernel says
    /// (`LiveTPM.family`, as every command asks it); only where neither says does a TCTI
    /// named (--tcti, TPM2TOOLS_TCTI or TCTI, as `TCTIChoice.resolve` takes them: an empty one
    /// names none) mean TPM 2.0. On a TPM 1.2 a TCTI from the environment is ignored, with one
    /// note; --tcti is refused (`checkTCTI`).
    static func family(stated: TPMFamily? = nil, tcti: String?) throws -> TPMFamily {
        let kernel = Result { try LiveTPM.family() }
        if let family = stated ?? (try? kernel.get()) {
            try checkTCTI(for: family, tcti: tcti, stated: stated != nil)
            return family
        }
        if TCTIChoice.resolve(option: tcti, environment: Environment.variables).origin != "default" {
            return .tpm20
        }
        return try kernel.get()
    }

    nonisolated(unsafe) private static var notedIgnoredTCTI = false

    /// A TPM 1.2 is read from sysfs and sealed to through trousers, never through tpm2-tss: a
    /// TCTI on the command line contradicts the family (one line, exit 2); one from the
    /// environment (set for another machine, or by tpm2-tools habits) is ignored and said so.
    static func checkTCTI(for family: TPMFamily, tcti: String?, stated: Bool) throws {
        guard family == .tpm12 else { return }
        let whose = stated ? "--tpm 1.2 names a TPM 1.2" : "this machine's TPM is a TPM 1.2 (\(LiveTPM.sysfsDirectory)/tpm_version_major)"
        let choice = TCTIChoice.resolve(option: tcti, environment: Environment.variables)
        switch choice.origin {
        case "--tcti":
            throw UsageError("--tcti \(choice.configuration) names a TPM 2.0 transport, but \(whose), which is read from sysfs and sealed to through tcsd: drop --tcti")
        case "default":
            return
        default:
            if !notedIgnoredTCTI {
                notedIgnoredTCTI = true
                Terminal.note("\(choice.origin)=\(choice.configuration) is ignored: \(whose), which tpm2-tss cannot reach")
            }
        }
    }

    /// The live PCR values that `log` must replay to: PCR17–22 as far as the log extends them,
    /// in the banks the log has and the TPM keeps. Returns the values and a name for messages.
    static func currentPCRs(for log: DRTMEventLog, tcti: String?, verbose: Bool) throws -> (PCRValues, String) {
        let pcrs = Set(log.events.map(\.pcr)).filter(\.isDynamic).sorted()
        do {
            return try read(pcrs: pcrs.isEmpty ? [17, 18] : pcrs, banks: log.banks, tcti: tcti, verbose: verbose, onlyActive: true)
        } catch let e as AEMPCRError {
            let why = "\(e)"
            throw LiveError(code: e.errorCode, why + (why.hasSuffix("?") ? " Or" : "; or") + " give the PCR values with --pcrs FILE (tpm2_pcrread's output, saved with 'aem-pcr read --save')")
        }
    }

    /// Reads `pcrs` in `banks` (nil: every active bank) from the TPM. With `onlyActive`, banks
    /// the TPM does not keep are left out instead of refused.
    static func read(pcrs: [PCRIndex], banks: [HashAlgorithm]?, tcti: String?, verbose: Bool,
                     onlyActive: Bool = false, tpm12File: String? = nil, stated: TPMFamily? = nil) throws -> (PCRValues, String) {
        let family = tpm12File != nil ? .tpm12 : try family(stated: stated, tcti: tcti)
        switch family {
        case .tpm12:
            let (all, source) = try LiveTPM.tpm12PCRs(path: tpm12File)
            if let banks, let other = banks.first(where: { $0 != .sha1 }), !onlyActive {
                throw LiveError(code: "tpm-bank-not-active", "a TPM 1.2 has only the sha1 bank, not \(other)")
            }
            var values = PCRValues()
            for p in pcrs {
                guard let v = all[.sha1, p] else {
                    throw LiveError(code: "tpm12-pcrs", "\(source) has no line for PCR\(p)")
                }
                values[.sha1, p] = v
            }
            return (values, source)
        case .tpm20:
            return try readTPM2(pcrs: pcrs, banks: banks, tcti: tcti, verbose: verbose, onlyActive: onlyActive)
        }
    }

    /// Reads `pcrs` of the TPM 1.2 behind tcsd, through trousers (`Tspi_TPM_PcrRead`): the TPM
    /// that seals and that AEM's tpm_unsealdata asks. Returns the values and a name for messages.
    static func readTPM12(pcrs: [PCRIndex]) throws -> (PCRValues, String) {
        let read = try TPM12Sealer.readPCRs(pcrs.map(\.rawValue))
        var values = PCRValues()
        for (i, v) in read { values[.sha1, PCRIndex(rawValue: i)] = Digest(.sha1, bytes: v) }
        return (values, "the TPM 1.2 (through tcsd)")
    }

    /// Reads `pcrs` in `banks` (nil: every active bank) from the TPM 2.0 the TCTI names.
    static func readTPM2(pcrs: [PCRIndex], banks: [HashAlgorithm]?, tcti: String?, verbose: Bool,
                         onlyActive: Bool = false) throws -> (PCRValues, String) {
            let choice = TCTIChoice.resolve(option: tcti, environment: Environment.variables)
            let device = try TPM2Device(tcti: choice, verbose: verbose)
            let allActive = try device.activeBanks()
            let active = allActive.filter(\.isComputable)
            var wanted = banks ?? active
            if onlyActive { wanted = wanted.filter { active.contains($0) } }
            if wanted.isEmpty {
                let asked = (banks ?? HashAlgorithm.computable).map(\.description).joined(separator: ", ")
                let kept = allActive.isEmpty ? "none" : allActive.map(\.description).joined(separator: ", ")
                throw LiveError(code: "tpm-bank-not-active", "the TPM keeps none of the banks \(asked) (active: \(kept))")
            }
            let values = try device.readPCRs(pcrs, banks: wanted, active: allActive)
            return (values, "the TPM (\(choice))")
    }
}

/// The running machine could not serve as the source: one line, exit 2.
struct LiveError: AEMPCRError {
    let errorCode: String
    let message: String
    init(code: String, _ message: String) {
        self.errorCode = code
        self.message = message
    }
    var description: String { message }
}

/// The process environment, without Foundation.
enum Environment {
    static var variables: [String: String] {
        var out = [String: String]()
        var p = environ
        while let entry = p.pointee {
            let s = String(cString: entry)
            if let eq = s.firstIndex(of: "=") { out[String(s[..<eq])] = String(s[s.index(after: eq)...]) }
            p += 1
        }
        return out
    }
}
