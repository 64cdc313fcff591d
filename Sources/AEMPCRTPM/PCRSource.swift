// SPDX-License-Identifier: Apache-2.0
import AEMPCR

/// Where PCR values come from: one open session with a TPM (the tpm2-tss device, a TPM 1.2's
/// sysfs text, a TPM 1.2 behind tcsd), or a file of saved values (STYLE 16: the orchestration is
/// tested against a fake, the real ones against swtpm). A command opens one source and reads
/// every value it needs through it.
public protocol PCRSource: AnyObject {
    /// The source for messages: "the TPM (swtpm:path=…)", a file's path.
    var name: String { get }
    /// The TPM family the values are of; nil for a file, which does not say.
    var family: TPMFamily? { get }
    /// The values come from this machine's TPM (false: from a file, for a plan or an analysis).
    var isTPM: Bool { get }
    /// The banks the source keeps (a TPM 2.0's allocated banks; sha1 on a TPM 1.2; a file's).
    func activeBanks() throws -> [HashAlgorithm]
    /// `pcrs` in `banks` (banks the source keeps), in one consistent read where the TPM allows.
    /// A file gives every value it holds: what a check needs and lacks, the check says.
    func readPCRs(_ pcrs: [PCRIndex], banks: [HashAlgorithm]) throws -> PCRValues
    /// `readPCRs` with the banks chosen (below); a file gives all it holds.
    func read(_ pcrs: [PCRIndex], banks: [HashAlgorithm]?, onlyActive: Bool) throws -> PCRValues
}

extension PCRSource {
    /// Reads `pcrs` in `banks` (nil: every computable bank the source keeps). With
    /// `onlyActive`, requested banks the source does not keep are left out instead of refused;
    /// none left is refused (`tpm-bank-not-active`).
    public func read(_ pcrs: [PCRIndex], banks: [HashAlgorithm]?, onlyActive: Bool) throws -> PCRValues {
        let all = try activeBanks()
        let active = all.filter(\.isComputable)
        var wanted = banks ?? active
        if onlyActive { wanted = wanted.filter { active.contains($0) } }
        if wanted.isEmpty {
            let asked = (banks ?? HashAlgorithm.computable).map(\.description).joined(separator: ", ")
            let kept = all.isEmpty ? "none" : all.map(\.description).joined(separator: ", ")
            throw CodedError(.tpmBankNotActive, "the TPM keeps none of the banks \(asked) (active: \(kept))")
        }
        return try readPCRs(pcrs, banks: wanted)
    }
}

/// A TPM 2.0 through tpm2-tss: one `TPM2Device` (one TCTI connection) for every read and the
/// seal that follows; its active banks asked once.
public final class TPM2PCRSource: PCRSource {
    public let device: TPM2Device
    private var banks: [HashAlgorithm]?

    public init(device: TPM2Device) { self.device = device }

    public var name: String { "the TPM (\(device.tcti))" }
    public var family: TPMFamily? { .tpm20 }
    public var isTPM: Bool { true }

    public func activeBanks() throws -> [HashAlgorithm] {
        if let banks { return banks }
        let b = try device.activeBanks()
        banks = b
        return b
    }

    public func readPCRs(_ pcrs: [PCRIndex], banks: [HashAlgorithm]) throws -> PCRValues {
        try device.readPCRs(pcrs, banks: banks, active: activeBanks())
    }
}

/// A TPM 1.2's PCRs from the kernel's text (`/sys/class/tpm/tpm0/pcrs`, or a file in its
/// format): read once, SHA-1 only.
public final class TPM12SysfsSource: PCRSource {
    private let path: String?
    private var cached: (values: PCRValues, source: String)?

    /// `path`: a file in the kernel's format (nil: the first file the kernel has written).
    public init(path: String? = nil) { self.path = path }

    private func values() throws -> (values: PCRValues, source: String) {
        if let cached { return cached }
        let read = try LiveTPM.tpm12PCRs(path: path)
        cached = read
        return read
    }

    public var name: String { (try? values().source) ?? path ?? LiveTPM.tpm12PCRFiles[0] }
    public var family: TPMFamily? { .tpm12 }
    public var isTPM: Bool { true }
    public func activeBanks() throws -> [HashAlgorithm] { [.sha1] }

    public func readPCRs(_ pcrs: [PCRIndex], banks: [HashAlgorithm]) throws -> PCRValues {
        try TPM12Banks.check(banks)
        let (all, source) = try values()
        var out = PCRValues()
        for p in pcrs {
            guard let v = all[.sha1, p] else { throw CodedError(.tpm12PCRs, "\(source) has no line for PCR\(p)") }
            out[.sha1, p] = v
        }
        return out
    }
}

/// Saved PCR values (--pcrs: tpm2_pcrread's output, this tool's --json, a TPM 1.2's sysfs
/// text), read once. Gives every value it holds, whatever is asked.
public final class PCRValuesFileSource: PCRSource {
    public let path: String
    private var cached: PCRValues?

    public init(path: String) { self.path = path }

    private func values() throws -> PCRValues {
        if let cached { return cached }
        let v = try PCRValuesFile.read(path: path)
        cached = v
        return v
    }

    public var name: String { path }
    public var family: TPMFamily? { nil }
    public var isTPM: Bool { false }
    public func activeBanks() throws -> [HashAlgorithm] { try values().banks }
    public func readPCRs(_ pcrs: [PCRIndex], banks: [HashAlgorithm]) throws -> PCRValues { try values() }
    public func read(_ pcrs: [PCRIndex], banks: [HashAlgorithm]?, onlyActive: Bool) throws -> PCRValues { try values() }
}

/// A TPM 1.2 keeps one bank, SHA-1: the check both TPM 1.2 sources (sysfs, tcsd) make.
public enum TPM12Banks {
    public static func check(_ banks: [HashAlgorithm]) throws {
        if let other = banks.first(where: { $0 != .sha1 }) {
            throw CodedError(.tpmBankNotActive, "a TPM 1.2 has only the sha1 bank, not \(other)")
        }
    }
}
