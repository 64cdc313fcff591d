// SPDX-License-Identifier: Apache-2.0
import AEMPCR

/// PCR13 of the next boot: the UUIDs on the dom0 kernel's command line, each header read by
/// libcryptsetup (from `--luks-header UUID=PATH`, else `/dev/disk/by-uuid/UUID`), folded.
public struct LUKSPrediction: Sendable {
    public var bank: HashAlgorithm
    /// Where the UUIDs came from: "module 1 (grub.cfg:140)".
    public var commandLine: String
    /// The UUIDs AEM measures, in its order.
    public var uuids: [String]
    public var extends: [LUKSMeasurement.Extend]
    /// PCR13 after AEM's initramfs; nil when not predicted (see `notPredicted`).
    public var value: Digest?
    /// Why PCR13 is not predicted (no header given and the device not readable here).
    public var notPredicted: String?
    /// Facts for the user.
    public var notes: [String]

    public init(bank: HashAlgorithm, commandLine: String, uuids: [String], extends: [LUKSMeasurement.Extend],
                value: Digest?, notPredicted: String?, notes: [String]) {
        (self.bank, self.commandLine, self.uuids, self.extends) = (bank, commandLine, uuids, extends)
        (self.value, self.notPredicted, self.notes) = (value, notPredicted, notes)
    }

    /// The prediction for `cmdline` (the dom0 kernel's, `origin` naming it). `headers` are the
    /// `--luks-header` arguments; when there are none, a UUID whose device cannot be read leaves
    /// PCR13 not predicted (the boot files may be another machine's); when there are some, every
    /// UUID must resolve, else the error names it.
    public static func predict(cmdline: [UInt8], origin: String, family: TPMFamily,
                               headers: [(uuid: String, path: String)],
                               soname: String? = nil) throws -> LUKSPrediction {
        let bank = LUKSMeasurement.bank(family)
        let uuids = LUKSMeasurement.uuids(cmdline: cmdline)
        for h in headers where !uuids.contains(h.uuid) {
            let on = uuids.isEmpty ? "it has no rd.luks.uuid" : "it has \(uuids.joined(separator: ", "))"
            throw CodedError(.luksUuidNotOnCmdline, "--luks-header \(Escape.text(h.uuid))=…: \(Escape.text(h.uuid)) is not an rd.luks.uuid on the next boot's kernel command line (\(origin)); \(on)")
        }
        var p = LUKSPrediction(bank: bank, commandLine: origin, uuids: uuids, extends: [], value: nil,
                               notPredicted: nil, notes: [])
        for uuid in uuids {
            if let given = headers.last(where: { $0.uuid == uuid }) {
                p.extends.append(try LUKSHeaderReader.measure(uuid: uuid, path: given.path, bank: bank, soname: soname))
                continue
            }
            do {
                p.extends.append(try LUKSHeaderReader.measure(uuid: uuid, path: LUKSHeaderReader.devicePath(uuid), bank: bank, soname: soname))
            } catch let e as CodedError where e.code.rawValue.hasPrefix("luks-") && headers.isEmpty {
                p.notPredicted = e.reason
                p.extends = []
                return p
            }
        }
        p.value = LUKSMeasurement.fold(p.extends, bank: bank)
        if uuids.isEmpty {
            p.notes.append("no rd.luks.uuid on the next boot's kernel command line (\(origin)): AEM's initramfs extends nothing into PCR13, which stays all zeros from reset (and AEM refuses to seal to it)")
        }
        if uuids.count > 1 {
            p.notes.append("\(uuids.count) LUKS UUIDs: AEM's unseal backs every header up to the same /tmp/luks-header-dump, and cryptsetup luksHeaderBackup refuses an existing file; compare with the current boot's PCR13 before relying on this")
        }
        return p
    }
}

extension AEMSealPlan {
    /// The PCR13 a seal uses, and why.
    public enum PCR13Choice: Equatable, Sendable {
        /// The model holds on this machine: the predicted value of the next boot.
        case predicted(Digest, String)
        /// The value the TPM has now (the seal's rule before PCR13 was predicted).
        case current(Digest, String)
        /// Neither can be trusted: nothing is sealed.
        case refused(String)
    }

    /// Which PCR13 to seal to. The model is checked first: the headers of the current boot's
    /// UUIDs (from its command line, read now) folded must equal the TPM's PCR13 `now`, or,
    /// when a header changed since this boot (`cryptsetup luksAddKey`), the digests `record`ed
    /// while they did must fold to it. Either way the prediction for the next boot is used, so
    /// a seal after a keyslot change pre-seals the new header. A record whose fold is not `now`
    /// (an earlier boot's) is ignored. With neither, nothing can be trusted: refused, saying
    /// what to run. `recordPath` names the record in the sentences.
    public static func pcr13(now: Digest, current: LUKSPrediction?, next: LUKSPrediction?,
                             record: LUKSHeaderRecord.Parsed? = nil, recordPath: String = LUKSRecordFile.defaultPath) -> PCR13Choice {
        guard let next, let nextValue = next.value else {
            let why = next?.notPredicted ?? "the next boot has no dom0 kernel command line"
            return .current(now, "PCR13 \(now.algorithm) kept as the TPM has it now: the next boot's PCR13 is not predicted (\(why))")
        }
        var valid: LUKSHeaderRecord?
        let ignored: String
        switch record {
        case nil: ignored = "\(recordPath) does not exist"
        case .unusable(let why)?: ignored = "\(recordPath) cannot be used (\(why)): ignored"
        case .record(let r)?:
            if r.verifies(now) { valid = r }
            ignored = "\(recordPath) is of an earlier boot (its headers fold to \(LUKSHeaderRecord.fold(r.boot, bank: now.algorithm)?.hex ?? "another bank"), not to PCR13 now): ignored"
        }
        if let current, let currentValue = current.value, currentValue == now {
            return .predicted(nextValue, "the current boot's LUKS headers (\(current.uuids.joined(separator: ", "))) folded give the TPM's PCR13 \(now.algorithm); sealed to the next boot's predicted PCR13")
        }
        if let valid {
            let changed = current?.value == nil ? [] : LUKSHeaderRecord.changed(valid.boot, LUKSHeaderRecord(boot: current!.extends).boot)
            let what = changed.isEmpty ? "" : "; changed since: \(changed.map { "the LUKS header of \($0)" }.joined(separator: ", "))"
            return .predicted(nextValue, "the LUKS header digests recorded at this boot in \(recordPath) (\(valid.boot.map(\.uuid).joined(separator: ", "))) fold to the TPM's PCR13 \(now.algorithm)\(what); sealed to the next boot's PCR13 predicted from the headers now")
        }
        guard let current, let currentValue = current.value else {
            let why = current?.notPredicted ?? "the current boot's command line is not known"
            return next.uuids.isEmpty
                ? .refused("the next boot measures no LUKS header (PCR13 stays all zeros) and the current boot's headers cannot be checked (\(why))")
                : .current(now, "PCR13 \(now.algorithm) kept as the TPM has it now: the current boot's headers cannot be checked against it (\(why))")
        }
        return .refused("the current boot's LUKS headers folded give \(currentValue.hex), not the TPM's PCR13 \(now.hex) (a header changed since this boot, such as a passphrase or keyslot added or removed, another PCR13 extend, or a cryptsetup version whose backup differs), and no record of this boot's header digests folds to it (\(ignored)); if a header changed, reboot, check the boot and seal then (sudo aem-pcr seal, or AEM's anti-evil-maid-seal), and next time run sudo aem-pcr check-boot or aem-pcr seal before changing a LUKS header: either records the digests in \(recordPath)")
    }
}

extension AEMSealPlan {
    /// Applies `choice` to PCR13 of the plan (when SEAL names PCR13); returns the sentence that
    /// explains it. A refusal or an all-00 value becomes one of the plan's refusals.
    public mutating func apply(_ choice: PCR13Choice) -> String? {
        guard values[bank, LUKSMeasurement.pcr] != nil else { return nil }
        switch choice {
        case .predicted(let v, let why), .current(let v, let why):
            values[bank, LUKSMeasurement.pcr] = v
            refusals.removeAll { $0.hasPrefix("PCR13 ") }
            if v.isAllZero || v.isAllOnes {
                refusals.append("PCR13 \(bank) would be all \(v.isAllZero ? "00" : "FF") (\(why)); AEM refuses such a PCR (listbadpcrs)")
            }
            return why
        case .refused(let why):
            refusals.append("PCR13: \(why)")
            return why
        }
    }
}
