// SPDX-License-Identifier: Apache-2.0
import AEMPCR

/// What AEM will seal to at the next boot, by AEM's rules: SEAL's PCRs from
/// anti-evil-maid.conf in the bank AEM uses (sha256 on a TPM 2.0, sha1 on a TPM 1.2), PCR13 as
/// the TPM has it now (AEM's initramfs extends the LUKS header(s) into it; the update does not
/// change it) until `apply(_:)` sets the predicted one (LUKS/LUKSPrediction.swift), PCR17-19 as predicted, and every value checked as AEM's `listbadpcrs` checks
/// (qubes-antievilmaid, `sbin/anti-evil-maid-lib`): none may be all 00 or all FF.
public struct AEMSealPlan: Sendable {
    /// The PCRs this tool seals to: PCR13 as now, the DRTM PCRs predicted.
    public static let sealable: [PCRIndex] = [13, 17, 18, 19]

    public let bank: HashAlgorithm
    public let selection: PCRSelection
    /// SEAL's PCRs this tool does not seal to (only a plan can be shown).
    public let unsupported: [PCRIndex]
    /// The values to seal to: PCR13 now, the others predicted.
    public internal(set) var values: PCRValues
    /// Why AEM would refuse them, one sentence each (empty: none).
    public internal(set) var refusals: [String]

    /// The plan for `prediction`, with `now` (read from `source`: the TPM this seals on, or
    /// for a dry run's plan a file) giving PCR13.
    /// `conf` names anti-evil-maid.conf in the ways out of an all-00 PCR19.
    public init(prediction p: LogPrediction, family: TPMFamily, sealPCRs: [PCRIndex], now: PCRValues,
                source: String, fromTPM: Bool, conf: String = AEMConfig.defaultPath) throws {
        bank = family == .tpm20 ? .sha256 : .sha1
        selection = try PCRSelection(banks: [bank], pcrs: sealPCRs)
        unsupported = sealPCRs.filter { !AEMSealPlan.sealable.contains($0) }
        let known = sealPCRs.filter { AEMSealPlan.sealable.contains($0) }
        var values = PCRValues()
        var refusals = [String]()
        if known.contains(13) {
            guard let v = now[bank, 13] else {
                throw CodedError(.sealRefused, fromTPM
                    ? "\(source) gave no PCR13 \(bank), which the seal keeps as it is now (is the \(bank) bank active?); nothing is sealed"
                    : "\(source) has no PCR13 \(bank), which the seal keeps as it is now: add it (\(bank == .sha1 ? "the TPM 1.2's /sys/class/tpm/tpm0/pcrs has it" : "tpm2_pcrread \(bank):13,17,18,19"))")
            }
            values[bank, 13] = v
        }
        for pcr in known where pcr != 13 {
            guard p.log.banks.contains(bank) else {
                throw CodedError(.sealRefused, "PCR\(pcr) \(bank) is not predicted: \(p.log.source) has no \(bank) digests, so the next \(bank) values are unknown; nothing is sealed")
            }
            values[bank, pcr] = p.predicted[bank, pcr] ?? .zeros(bank)
        }
        for pcr in known {
            let v = values[bank, pcr]!
            guard v.isAllZero || v.isAllOnes else { continue }
            let what: String
            if pcr == 13 {
                what = "now (\(source)): AEM's initramfs has not extended the LUKS header(s) into it"
            } else if !p.events.contains(where: { $0.pcr == pcr }) {
                what = "after the next launch, which extends nothing into it (tboot's default DA policy measures every module into PCR17)"
            } else {
                what = "in the prediction"
            }
            refusals.append("PCR\(pcr) \(bank) would be all \(v.isAllZero ? "00" : "FF") \(what); AEM refuses such a PCR (listbadpcrs)"
                + (pcr == 19 && v.isAllZero ? "; " + AEMConfig.pcr19WaysOut(conf: conf) : ""))
        }
        self.values = values
        self.refusals = refusals
    }

    /// The PolicyPCR digest of the values over the selection (TPM 2.0's authPolicy).
    public func policy() throws -> Digest {
        try PolicyPCR.digest(selection, values: values)
    }

    /// The prediction `check-boot` reads after the reboot: the sealed values (the predicted
    /// ones for every other PCR), the policy, the predicted events.
    public func record(_ p: LogPrediction, label: String, sealedAt: String) throws -> SealedPrediction {
        SealedPrediction(label: label, sealedAt: sealedAt, selection: selection, policyDigest: try policy(),
                         pcrs: values.overridden(by: p.predicted), events: SealedPrediction.events(of: p))
    }
}

extension CurrentBoot {
    /// What a seal starts from: the family of the TPM it seals on (--tpm, else the log's, else
    /// the machine's) and the current log verified against that TPM's PCRs, read in one read
    /// with PCR13 (which the seal keeps as it is): PCR13 and the DRTM PCRs the log extends
    /// (PCR17 and 18 at least), in the log's banks and sha256 that a TPM 2.0 keeps, or in
    /// SHA-1 from the TPM 1.2 behind tcsd. From --pcrs FILE only for a dry run's plan.
    public func forSeal() throws -> (family: TPMFamily, log: VerifiedDRTMLog) {
        let drtm = try currentLog()
        let family = try self.family().family
        let (now, source): (PCRValues, String)
        do {
            (now, source) = try values(for: drtm, also: [13, 17, 18],
                                       banks: family == .tpm20 ? Array(Set(drtm.banks + [.sha256])).sorted() : [.sha1],
                                       family: family)
        } catch let e as CodedError where inputs.pcrs == nil {
            throw CodedError(e.code, "seal reads the PCRs of the TPM it seals on, and cannot: \(e)")
        }
        // seal takes no --force: the refusal does not offer it.
        return (family, try Verifier.verified(drtm, against: now, source: source, forceOffered: false))
    }
}
