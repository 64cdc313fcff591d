// SPDX-License-Identifier: Apache-2.0
import AEMPCR
import AEMPCRHardware
import AEMPCRTPM
import Glibc

/// The current boot, read once per command: its DRTM log (a file, or the TXT heap in physical
/// memory) and the PCR values that log must replay to (a file, or this machine's TPM). The TPM
/// is opened at most once, on first use, and every value the command needs is read through that
/// one session (`PCRSource`); `seal` then seals through the same session. The log is verified
/// here, into a `VerifiedDRTMLog`, or used unverified only when asked (`predictionLog(force:)`).
public final class CurrentBoot {
    /// How a TPM 1.2 is read.
    public enum TPM12Access: Sendable {
        /// The kernel's text (`/sys/class/tpm/tpm0/pcrs`, or a file in its format): read,
        /// verify, predict.
        case sysfs(path: String?)
        /// trousers through tcsd: the TPM that seals and that AEM's tpm_unsealdata asks (seal,
        /// check-boot).
        case tcsd
    }

    /// What the command line says about the current boot.
    public struct Inputs {
        /// --event-log: the log in a file (nil: the TXT heap in `mem`).
        public var eventLog: String?
        /// --xen-dmesg: Xen's console text, whose 'SLAUNCH: reserving event log' line gives where
        /// a TrenchBoot log lies in `mem`.
        public var xenDmesg: String?
        /// --pcrs: the values in a file (nil: this machine's TPM).
        public var pcrs: String?
        /// --mem: physical memory, or a file laid out like it.
        public var mem: String
        /// --tcti, for a TPM 2.0.
        public var tcti: String?
        /// --tpm, where the command takes it as the TPM to read (seal); nil: the machine's.
        public var stated: TPMFamily?
        /// The log's format tells the family before the kernel does (seal: the TPM it seals on
        /// is the one that measured the log).
        public var familyFromLog: Bool
        public var tpm12: TPM12Access
        public var verbose: Bool
        public var environment: [String: String]
        /// Says something to the user (a TCTI from the environment ignored on a TPM 1.2).
        public var note: (String) -> Void

        public init(eventLog: String? = nil, pcrs: String? = nil, mem: String = "/dev/mem", tcti: String? = nil,
                    stated: TPMFamily? = nil, familyFromLog: Bool = false, tpm12: TPM12Access = .sysfs(path: nil),
                    verbose: Bool = false, environment: [String: String] = [:], note: @escaping (String) -> Void = { _ in },
                    xenDmesg: String? = nil) {
            self.eventLog = eventLog
            self.xenDmesg = xenDmesg
            self.pcrs = pcrs
            self.mem = mem
            self.tcti = tcti
            self.stated = stated
            self.familyFromLog = familyFromLog
            self.tpm12 = tpm12
            self.verbose = verbose
            self.environment = environment
            self.note = note
        }
    }

    public let inputs: Inputs
    /// The family resolver for this machine's TPM (`TPMFamilyResolver`, asked `.machine`).
    public let resolver: TPMFamilyResolver
    private var noted = Set<String>()
    /// How many sessions with a TPM this command opened (never more than one).
    public private(set) var sessionsOpened = 0

    private let openTPM: (TPMFamily) throws -> any PCRSource
    private let readLog: () throws -> DRTMEventLog
    private var log: DRTMEventLog?
    private var session: (any PCRSource)?

    /// The machine as it is: the log from `inputs.eventLog` or memory, the TPM through tpm2-tss,
    /// sysfs or tcsd.
    public convenience init(_ inputs: Inputs) {
        self.init(inputs, resolver: .live(stated: inputs.stated, tcti: inputs.tcti, environment: inputs.environment),
                  log: { try CurrentBoot.readLog(inputs) },
                  openTPM: { try CurrentBoot.openTPM($0, inputs) })
    }

    /// With the log and the TPM given (tests: a fake TPM, a log in memory).
    public init(_ inputs: Inputs, resolver: TPMFamilyResolver, log: @escaping () throws -> DRTMEventLog,
                openTPM: @escaping (TPMFamily) throws -> any PCRSource) {
        self.inputs = inputs
        self.resolver = resolver
        self.readLog = log
        self.openTPM = openTPM
    }

    // MARK: The log

    /// The current boot's DRTM log, read once.
    public func currentLog() throws -> DRTMEventLog {
        if let log { return log }
        let l = try readLog()
        log = l
        return l
    }

    static let logHint = "give the log with --event-log FILE (saved with 'aem-pcr log dump' on the machine)"

    /// The log in `inputs.eventLog`, else the running boot's, read from the TXT heap in
    /// physical memory as `log dump` reads it.
    static func readLog(_ inputs: Inputs) throws -> DRTMEventLog {
        if let file = inputs.eventLog { return try DRTMEventLog.parse(path: file) }
        if let d = inputs.xenDmesg {
            let (bytes, range) = try SecureLaunchMemory.xenLog(dmesgFile: d, mem: inputs.mem)
            return try DRTMEventLog.parse(bytes: bytes, source: "the event log at 0x\(String(range.start, radix: 16)) (\(d) line \(range.line))")
        }
        let mem = inputs.mem
        if mem == "/dev/mem" && geteuid() != 0 {
            throw CodedError(.usage, "reading the current DRTM log from /dev/mem needs root: run with sudo, or \(logHint)")
        }
        do {
            let memory = try PhysicalMemoryFile(path: mem)
            let dump = try TXTHeapDump.capture(from: memory)
            return try DRTMEventLog.parse(bytes: dump, source: mem == "/dev/mem" ? "the TXT heap" : "the TXT heap in \(mem)")
        } catch let e as CodedError {
            throw CodedError(e.code, "the current DRTM log cannot be read (\(e)); \(logHint)")
        }
    }

    // MARK: The TPM

    /// This machine's TPM family as the resolver finds it (stated, the log where
    /// `familyFromLog`, the kernel, a TCTI named), checked against a TCTI given.
    public func family() throws -> (family: TPMFamily, origin: TPMFamilyResolver.Origin) {
        let found = try resolver.family(log: inputs.familyFromLog ? currentLog() : nil, for: .machine)
        if let note = try TPMFamilyResolver.checkTCTI(for: found.family, origin: found.origin, tcti: inputs.tcti,
                                                      environment: inputs.environment), !noted.contains(note) {
            noted.insert(note)
            inputs.note(note)
        }
        return found
    }

    /// The PCR source of this command: the --pcrs file, else this machine's TPM of `family`
    /// (nil: as `family()` finds it), opened on the first call; every later call returns the same
    /// session.
    public func source(family explicit: TPMFamily? = nil) throws -> any PCRSource {
        if let session { return session }
        let s: any PCRSource
        if let path = inputs.pcrs {
            s = PCRValuesFileSource(path: path)
        } else {
            let family = try explicit ?? family().family
            s = try openTPM(family)
            sessionsOpened += 1
        }
        session = s
        return s
    }

    static func openTPM(_ family: TPMFamily, _ inputs: Inputs) throws -> any PCRSource {
        switch family {
        case .tpm20:
            let choice = TCTIChoice.resolve(option: inputs.tcti, environment: inputs.environment)
            return TPM2PCRSource(device: try TPM2Device(tcti: choice, verbose: inputs.verbose))
        case .tpm12:
            switch inputs.tpm12 {
            case .sysfs(let path): return TPM12SysfsSource(path: path)
            case .tcsd: return try TPM12TcsdSource()
            }
        }
    }

    /// The values `log` must replay to: PCR17–22 as far as the log extends them (PCR17 and 18
    /// when it extends none) and `also`, in `banks` (nil: the log's) as far as the source keeps
    /// them; a file gives all it holds. With the source's name, for messages.
    public func values(for log: DRTMEventLog, also: [PCRIndex] = [], banks: [HashAlgorithm]? = nil,
                       family: TPMFamily? = nil) throws -> (PCRValues, String) {
        var pcrs = Set(log.events.map(\.pcr)).filter(\.isDynamic)
        if pcrs.isEmpty { pcrs = [17, 18] }
        pcrs.formUnion(also)
        let s = try source(family: family)
        return (try s.read(pcrs.sorted(), banks: banks ?? log.banks, onlyActive: true), s.name)
    }

    /// `values(for:)`, a TPM's failure said with the way around it (--pcrs FILE).
    public func currentPCRs(for log: DRTMEventLog) throws -> (PCRValues, String) {
        do {
            return try values(for: log)
        } catch let e as CodedError where inputs.pcrs == nil {
            let why = "\(e)"
            throw CodedError(e.code, why + (why.hasSuffix("?") ? " Or" : "; or") + " give the PCR values with --pcrs FILE (tpm2_pcrread's output, saved with 'aem-pcr read --save')")
        }
    }

    // MARK: Verification

    /// The current log verified against the current PCRs (`log-not-verified` otherwise).
    public func verifiedLog() throws -> VerifiedDRTMLog {
        let log = try currentLog()
        let (values, name) = try currentPCRs(for: log)
        return try Verifier.verified(log, against: values, source: name)
    }

    /// The log for a prediction: verified, or with `force` used as it is when the values cannot
    /// be read or it does not verify (with the report, where one was made).
    public func predictionLog(force: Bool) throws -> PredictionLog {
        guard force else { return .verified(try verifiedLog()) }
        let log = try currentLog()
        let values: PCRValues, name: String
        do {
            (values, name) = try currentPCRs(for: log)
        } catch {
            return .unverified(log, because: .forced(nil))
        }
        do {
            return .verified(try Verifier.verified(log, against: values, source: name))
        } catch {
            return .unverified(log, because: .forced(Verifier.verify(log, against: values)))
        }
    }
}
