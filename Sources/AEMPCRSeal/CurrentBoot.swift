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
        /// Linux Secure Launch's log, looked for first when no log is given.
        public var securityfs: String = SecureLaunchLog.securityfsPath
        /// The command printing Xen's console ring, run next (nil: not run).
        public var xenConsole: [String]? = XenConsole.defaultCommand
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

    /// The log in `inputs.eventLog`, in the range `inputs.xenDmesg` names, else the running
    /// boot's as `findLog` finds it.
    static func readLog(_ inputs: Inputs) throws -> DRTMEventLog {
        if let file = inputs.eventLog { return try DRTMEventLog.parse(path: file) }
        if let d = inputs.xenDmesg {
            let (bytes, range) = try SecureLaunchMemory.xenLog(dmesgFile: d, mem: inputs.mem)
            return try DRTMEventLog.parse(bytes: bytes, source: "the event log at 0x\(String(range.start, radix: 16)) (\(d) line \(range.line))")
        }
        let found = try findLog(securityfs: inputs.securityfs, xenConsole: inputs.xenConsole, mem: inputs.mem)
        return try DRTMEventLog.parse(bytes: found.bytes, source: found.source)
    }

    /// The running boot's DRTM log as found, in the bytes `log dump` saves.
    public struct FoundLog {
        public enum Origin: Equatable {
            /// Linux Secure Launch's securityfs file.
            case securityfs(path: String)
            /// The range Xen's console named (`command`'s output, line `range.line`), read from memory.
            case xenConsole(command: String, range: SecureLaunchLog.Range, mem: String)
            /// A TXT heap dump (registers then heap) read from memory.
            case txtHeap(mem: String)
        }
        public let bytes: [UInt8]
        /// The log's name in messages.
        public let source: String
        public let origin: Origin
    }

    /// Where the running boot's DRTM log is looked for, in this order: Linux Secure Launch's
    /// `securityfs` file (TrenchBoot with Linux); the range the `SLAUNCH: reserving event log`
    /// line of `xenConsole`'s output names (`xl dmesg` in a TrenchBoot Xen's dom0), read from
    /// `mem`; the TXT heap in `mem` (tboot, TXT). A place that does not apply (no file, no `xl`,
    /// no such line) is passed over and said in the error when nothing is found; a place that
    /// applies but cannot be read is the error.
    public static func findLog(securityfs: String, xenConsole: [String]?, mem: String) throws -> FoundLog {
        var tried = [String]()
        var st = stat()
        if stat(securityfs, &st) == 0 {
            let bytes = try FileReader.readAll(path: securityfs, limit: Int(SecureLaunchLog.maxSize))
            _ = try DRTMEventLog.parse(bytes: bytes, source: securityfs, checks: [])
            return FoundLog(bytes: bytes, source: securityfs, origin: .securityfs(path: securityfs))
        }
        tried.append("no \(securityfs) (Linux Secure Launch)")
        if let command = xenConsole {
            let name = "'\(command.joined(separator: " "))'"
            switch try XenConsole.read(command: command) {
            case .notFound:
                tried.append("no \(command.first ?? "") on PATH (not Xen's dom0)")
            case .cannotRun(let why):
                tried.append("\(name) could not be run (\(why))")
            case .failed(let status, let signal):
                tried.append("\(name) " + (status.map { "exited with status \($0)" } ?? "was ended by signal \(signal ?? 0)")
                    + (geteuid() == 0 ? "" : " (it needs root)"))
            case .text(let text):
                if text.contains(SecureLaunchLog.xenMarker) {
                    let source = "\(name)'s output"
                    if mem == "/dev/mem" && geteuid() != 0 {
                        throw CodedError(.usage, "reading the DRTM log Xen reserved from /dev/mem needs root: run with sudo, or \(logHint)")
                    }
                    let (bytes, range) = try SecureLaunchMemory.xenLog(consoleText: text, source: source, mem: mem)
                    return FoundLog(bytes: bytes,
                                    source: "the event log at 0x\(String(range.start, radix: 16)) (\(source), line \(range.line))",
                                    origin: .xenConsole(command: name, range: range, mem: mem))
                }
                tried.append("\(name) printed no \"\(SecureLaunchLog.xenMarker)\" line")
            }
        }
        let options = "\(logHint), or --xen-dmesg FILE ('xl dmesg' saved to a file)"
        let also = "; also looked for: " + tried.joined(separator: ", ") + "; "
        if mem == "/dev/mem" && geteuid() != 0 {
            throw CodedError(.usage, "reading the current DRTM log from the TXT heap in /dev/mem needs root: run with sudo"
                + also + options)
        }
        do {
            let memory = try PhysicalMemoryFile(path: mem)
            let dump = try TXTHeapDump.capture(from: memory)
            return FoundLog(bytes: dump, source: mem == "/dev/mem" ? "the TXT heap" : "the TXT heap in \(mem)", origin: .txtHeap(mem: mem))
        } catch let e as CodedError {
            throw CodedError(e.code, "the current DRTM log cannot be read (the TXT heap: \(e))" + also + options)
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
