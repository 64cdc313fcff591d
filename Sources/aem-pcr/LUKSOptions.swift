// SPDX-License-Identifier: Apache-2.0
import AEMPCR
import AEMPCRSeal
import ArgumentParser

/// `--luks-header UUID=PATH`: where PCR13's LUKS headers are read.
struct LUKSOptions: ParsableArguments {
    @Option(name: .customLong("luks-header"), help: ArgumentHelp("PCR13: read the LUKS header of UUID (an rd.luks.uuid on the dom0 kernel command line) from PATH, a device, image or header backup file, instead of /dev/disk/by-uuid/UUID. Repeatable.", valueName: "UUID=PATH"))
    var headers: [String] = []

    var parsed: [(uuid: String, path: String)] {
        headers.compactMap(LUKSMeasurement.parseHeaderArgument)
    }

    func validate() throws {
        for h in headers where LUKSMeasurement.parseHeaderArgument(h) == nil {
            throw ValidationError("--luks-header \(Escape.text(h)): not UUID=PATH")
        }
    }

    /// PCR13 for the prediction: the dom0 kernel is module 1 (tboot hands Xen its modules; Xen
    /// boots the first as dom0). No such module: nothing to say about PCR13.
    func predict(_ p: Prediction) throws -> LUKSPrediction? {
        guard let dom0 = p.modules.first(where: { $0.index == 1 }) else {
            if !headers.isEmpty {
                throw CodedError(.usage, "--luks-header: the boot has no dom0 kernel (module 1) whose command line names rd.luks.uuid")
            }
            return nil
        }
        return try LUKSPrediction.predict(cmdline: dom0.spec.cmdline, origin: "module 1, \(dom0.spec.origin)",
                                          family: p.configuration.tpm, headers: parsed)
    }
}

extension PredictionView {
    /// Adds PCR13 (AEM's LUKS extends) to the view.
    mutating func add(_ luks: LUKSPrediction?) {
        guard let luks else { return }
        self.luks = luks
        if let v = luks.value {
            pcrs[luks.bank, LUKSMeasurement.pcr] = v
        } else if let why = luks.notPredicted {
            incomplete.append(.luks(bank: luks.bank, reason: why))
        }
        notes += luks.notes
    }
}

enum LUKSOutput {
    static func json(_ l: LUKSPrediction) -> JSON {
        .object([
            ("pcr", .int(Int(LUKSMeasurement.pcr.rawValue))), ("bank", .string(l.bank.description)),
            ("cmdline", .string(l.commandLine)),
            ("uuids", .array(l.uuids.map { .string($0) })),
            ("extends", .array(l.extends.map { e in
                .object([("uuid", .string(e.uuid)), ("source", .string(e.source)),
                         ("backup_size", .int(Int(e.backupSize))), ("digest", .string(e.digest.hex))])
            })),
            ("value", l.value.map { .string($0.hex) } ?? .null),
        ])
    }

    static func text(_ l: LUKSPrediction) -> TerminalText {
        var out: TerminalText = ""
        out += Terminal.bold("PCR13: LUKS headers (AEM's initramfs)") + "\n"
        out += Terminal.wrap("  rd.luks.uuid from \(l.commandLine): \(l.uuids.isEmpty ? "none" : l.uuids.joined(separator: ", "))", indent: 0, hang: 4) + "\n"
        for (n, e) in l.extends.enumerated() {
            out += "\(Terminal.pad("\(n + 1).", 3)) PCR13  \(e.uuid)\n"
            out += Terminal.wrap("\(e.source): cryptsetup luksHeaderBackup, \(e.backupSize) bytes", indent: 6) + "\n"
            out += Terminal.digestLine(indent: 6, label: "\(l.bank)", labelWidth: 7, hex: e.digest.hex) + "\n"
        }
        return out
    }
}

/// The current boot's side of PCR13: its command line (whose headers, folded, must give the
/// TPM's PCR13) and the record of its header digests.
struct LUKSBootOptions: ParsableArguments {
    @Option(name: .customLong("current-cmdline"), help: ArgumentHelp("The current boot's dom0 kernel command line, whose rd.luks.uuid headers folded must give the TPM's PCR13 (the PCR13 model check).", valueName: "file"))
    var currentCmdline = "/proc/cmdline"

    @Option(name: .customLong("luks-record"), help: ArgumentHelp("The record of this boot's LUKS header digests (digests only): written by seal and check-boot when the headers fold to the TPM's PCR13, read back by seal and diff when a header changed since.", valueName: "file"))
    var record = LUKSRecordFile.defaultPath

    /// The current boot's headers (the given paths for its UUIDs, else /dev/disk/by-uuid), or
    /// why they are not known.
    func current(family: TPMFamily, headers: [(uuid: String, path: String)]) -> (LUKSPrediction?, String?) {
        let bytes: [UInt8]
        do { bytes = try FileReader.readAll(path: currentCmdline, limit: 1 << 16) } catch { return (nil, "\(error)") }
        let uuids = LUKSMeasurement.uuids(cmdline: bytes)
        do {
            let p = try LUKSPrediction.predict(cmdline: bytes, origin: currentCmdline, family: family,
                                               headers: headers.filter { uuids.contains($0.uuid) })
            return (p, p.notPredicted)
        } catch {
            return (nil, "\(error)")
        }
    }

    /// Records the digests of this boot's headers when they are known to give `now` (read now
    /// and folded to it, or the old record still folding to it); `sealed` replaces the seal's
    /// part. A failure to write is a warning: the record only helps a later seal.
    func save(now: Digest, current: LUKSPrediction?, old: LUKSHeaderRecord.Parsed?, sealed: [LUKSMeasurement.Extend]?) {
        var previous: LUKSHeaderRecord?
        if case .record(let r)? = old { previous = r }
        let boot: [LUKSHeaderRecord.Entry]
        if let c = current, c.value == now, !c.extends.isEmpty {
            boot = LUKSHeaderRecord(boot: c.extends).boot
        } else if let previous, previous.verifies(now) {
            boot = previous.boot
        } else {
            return  // nothing known of this boot's headers: an old record stays as it is (ignored)
        }
        let new = LUKSHeaderRecord(boot: boot, sealed: sealed.map { LUKSHeaderRecord(boot: $0).boot } ?? previous?.sealed ?? [])
        if new == previous { return }
        do { try LUKSRecordFile.write(new, to: record) } catch { Terminal.warning("\(error)") }
    }
}

/// seal's PCR13 options: the headers, and the current boot's command line for the model check.
struct LUKSSealOptions: ParsableArguments {
    @OptionGroup var luks: LUKSOptions
    @OptionGroup var boot: LUKSBootOptions

    /// PCR13 for `plan`: checked, then predicted or refused; the sentence is printed. The
    /// record is written only from the TPM's own PCR13 (`fromTPM`); its seal part only when
    /// sealing (not `dryRun`).
    /// True when PCR13 is the predicted one.
    func apply(to plan: inout AEMSealPlan, files: Prediction, fromTPM: Bool, dryRun: Bool) throws -> Bool {
        guard let now = plan.values[plan.bank, LUKSMeasurement.pcr] else { return false }
        let next = try luks.predict(files)
        let (current, _) = boot.current(family: files.configuration.tpm, headers: luks.parsed)
        let old = LUKSRecordFile.read(boot.record)
        let choice = AEMSealPlan.pcr13(now: now, current: current, next: next, record: old, recordPath: boot.record)
        // Quiet when nothing is predicted (seal's rule before PCR13 was predicted) unless -v;
        // a refusal is said once, by the error (or the dry run's report).
        if case .refused = choice {
            _ = plan.apply(choice)
        } else if let why = plan.apply(choice), next?.value != nil || Terminal.verbose {
            Terminal.note(why)
        }
        if fromTPM {
            var sealed: [LUKSMeasurement.Extend]?
            if !dryRun, case .predicted = choice { sealed = next?.extends }
            boot.save(now: now, current: current, old: old, sealed: sealed)
        }
        if case .predicted = choice { return true }
        return false
    }
}

/// diff's PCR13: this boot's headers (the record, or the headers read now, whichever folds to
/// the TPM's PCR13) against the next boot's, per UUID.
struct LUKSDiff {
    struct Header {
        var uuid: String
        var current: Digest?
        var next: Digest?
        var changed: Bool { current != next }
    }
    var bank: HashAlgorithm
    /// The TPM's PCR13 now (nil when it cannot be read) and the next boot's (nil: not predicted).
    var current: Digest?
    var next: Digest?
    var headers: [Header]
    /// Where this boot's digests come from, or why they are not known.
    var currentFrom: String
    var notPredicted: String?

    /// nil when neither boot's command line names an rd.luks.uuid (nothing to show).
    init?(next prediction: LUKSPrediction?, now: Digest?, family: TPMFamily, luks: LUKSOptions, boot: LUKSBootOptions) {
        guard let prediction else { return nil }
        let (current, why) = boot.current(family: family, headers: luks.parsed)
        guard !prediction.uuids.isEmpty || !(current?.uuids.isEmpty ?? true) else { return nil }
        bank = prediction.bank
        self.current = now
        next = prediction.value
        notPredicted = prediction.notPredicted
        var before: [LUKSHeaderRecord.Entry]?
        if let now {
            if let c = current, c.value == now {
                before = LUKSHeaderRecord(boot: c.extends).boot
                currentFrom = "the headers read now fold to the TPM's PCR13"
            } else if case .record(let r)? = LUKSRecordFile.read(boot.record), r.verifies(now) {
                before = r.boot
                currentFrom = "recorded in \(boot.record), whose digests fold to the TPM's PCR13"
            } else {
                currentFrom = "not known: neither the headers read now (\(current?.value?.hex ?? why ?? "not read")) nor a record in \(boot.record) fold to the TPM's PCR13"
            }
        } else {
            currentFrom = "not known: the TPM's PCR13 was not read"
        }
        let after = LUKSHeaderRecord(boot: prediction.extends).boot
        let uuids = Set((before ?? []).map(\.uuid) + prediction.uuids).sorted { Array($0.utf8).lexicographicallyPrecedes(Array($1.utf8)) }
        headers = uuids.map { u in
            Header(uuid: u, current: before?.first { $0.uuid == u }?.digest, next: after.first { $0.uuid == u }?.digest)
        }
    }

    var json: JSON {
        .object([
            ("pcr", .int(Int(LUKSMeasurement.pcr.rawValue))), ("bank", .string(bank.description)),
            ("current", current.map { .string($0.hex) } ?? .null), ("predicted", next.map { .string($0.hex) } ?? .null),
            ("current_from", .string(currentFrom)), ("not_predicted", notPredicted.map { .string($0) } ?? .null),
            ("headers", .array(headers.map { h in
                .object([("uuid", .string(h.uuid)), ("current", h.current.map { .string($0.hex) } ?? .null),
                         ("predicted", h.next.map { .string($0.hex) } ?? .null), ("changed", .bool(h.changed))])
            })),
        ])
    }

    var text: TerminalText {
        var out: TerminalText = Terminal.pad("PCR13", 6) + Terminal.pad("\(bank)", 7) + (current == next && current != nil ? " unchanged" : " CHANGES") + "\n"
        if current != next || current == nil {
            out += Terminal.digestLine(indent: 4, label: "now", labelWidth: 5, hex: current?.hex ?? "(not read)") + "\n"
            out += Terminal.digestLine(indent: 4, label: "next", labelWidth: 5, hex: next?.hex ?? "(not predicted)") + "\n"
        }
        for h in headers {
            out += Terminal.wrap("  the LUKS header of \(h.uuid): \(h.changed ? "changes" : "unchanged")", indent: 0, hang: 4) + "\n"
            if h.changed {
                out += Terminal.digestLine(indent: 4, label: "now", labelWidth: 5, hex: h.current?.hex ?? "(none)") + "\n"
                out += Terminal.digestLine(indent: 4, label: "next", labelWidth: 5, hex: h.next?.hex ?? "(none)") + "\n"
            }
        }
        out += Terminal.wrap("  This boot's headers: \(currentFrom)." + (notPredicted.map { " Next boot: not predicted (\($0))." } ?? ""), indent: 0, hang: 4) + "\n"
        return out
    }
}
