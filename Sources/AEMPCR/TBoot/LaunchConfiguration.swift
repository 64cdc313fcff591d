// SPDX-License-Identifier: Apache-2.0
/// What decides how tboot measures: TPM family, PCR mapping, extend policy, tboot release and
/// the TPM's active banks.
public struct LaunchConfiguration: Sendable, Equatable {
    public var tpm: TPMFamily
    public var mapping: PCRMapping
    /// Only meaningful on TPM 2.0.
    public var extendPolicy: ExtendPolicy
    public var tbootVersion: TbootVersion
    /// The TPM's active PCR banks (the banks to predict).
    public var activeBanks: [HashAlgorithm]

    /// Validates the combination; TPM 2.0 is always DA (tboot `txt.c: init_txt_heap`).
    public init(tpm: TPMFamily, mapping: PCRMapping? = nil, extendPolicy: ExtendPolicy? = nil,
                tbootVersion: TbootVersion = .debian12, activeBanks: [HashAlgorithm]? = nil) throws {
        self.tpm = tpm
        self.tbootVersion = tbootVersion
        switch tpm {
        case .tpm12:
            self.mapping = mapping ?? .legacy
            if let e = extendPolicy, e != .sha1 {
                throw CodedError(.bankUnsupported, "extpol=\(e.rawValue) is a TPM 2.0 option; tboot on TPM 1.2 always extends SHA-1")
            }
            self.extendPolicy = .sha1
            let banks = activeBanks ?? [.sha1]
            if let other = banks.first(where: { $0 != .sha1 }) {
                throw CodedError(.bankUnsupported, "bank \(other) does not exist on TPM 1.2 (SHA-1 only)")
            }
            self.activeBanks = [.sha1]
        case .tpm20:
            if mapping == .legacy {
                throw CodedError(.bankUnsupported, "TPM 2.0 always uses the DA mapping; --pcr-map legacy is TPM 1.2 only")
            }
            self.mapping = .da
            var e = extendPolicy ?? tbootVersion.defaultExtendPolicy
            if e == .agile && !tbootVersion.supportsAgile { e = .sha256 }
            if e == .sm3 {
                throw CodedError(.bankUnsupported, "extpol=sm3 is broken in tboot (modules are not measured); no prediction is possible")
            }
            if (e == .sha384 || e == .sha512) && !tbootVersion.supportsSHA384And512 {
                throw CodedError(.bankUnsupported, "extpol=\(e.rawValue) needs tboot ≥ 1.9.12; tboot \(tbootVersion) does not know it")
            }
            self.extendPolicy = e
            let defaultBanks: [HashAlgorithm]
            switch e {
            case .sha1: defaultBanks = [.sha1]
            case .sha256: defaultBanks = [.sha256]
            case .sha384: defaultBanks = [.sha384]
            case .sha512: defaultBanks = [.sha512]
            default: defaultBanks = [.sha1, .sha256]
            }
            var banks = [HashAlgorithm]()
            for b in activeBanks ?? defaultBanks where !banks.contains(b) { banks.append(b) }
            self.activeBanks = banks.sorted()
        }
    }

    /// The FIXED algorithm (`tpm->cur_alg`): hashes the policy inside the policy event.
    public var currentAlgorithm: HashAlgorithm {
        guard tpm == .tpm20 else { return .sha1 }
        switch extendPolicy {
        case .sha1: return .sha1
        case .sha384: return .sha384
        case .sha512: return .sha512
        default: return .sha256
        }
    }

    /// Banks tboot extends, and whether tboot (true) or the TPM (false, agile) hashes them.
    /// Includes active banks this tool cannot compute (SM3 under agile).
    public var extendedBanks: [HashAlgorithm] {
        guard tpm == .tpm20 else { return [.sha1] }
        switch extendPolicy {
        case .embedded: return activeBanks.filter { tbootVersion.embeddedBanks.contains($0) }
        case .agile: return activeBanks
        default: return [currentAlgorithm]
        }
    }

    /// Whether tboot's measurements go to the DA PCRs.
    public var usesDA: Bool { mapping == .da }

    /// PCR of module 0's forced measurement: 18 under legacy, 17 under DA.
    public var module0PCR: PCRIndex { usesDA ? 17 : 18 }
}
