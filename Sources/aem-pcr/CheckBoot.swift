// SPDX-License-Identifier: Apache-2.0
import AEMPCR
import AEMPCRSeal
import AEMPCRTPM
import ArgumentParser
import Glibc

struct CheckBoot: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "check-boot",
        abstract: "After the reboot: check that the boot is the one 'seal' predicted.",
        discussion: """
            Says whether AEM's unseal will release the secrets on this boot, from what the TPM \
            enforces, never from a file written beside it: on a TPM 2.0 the authPolicy of the \
            sealing object (key.pub) must equal the PolicyPCR of the current PCRs over the \
            selection of key.pcrs; on a TPM 1.2 the digestAtRelease of every secret.X.sealed2 \
            (tpm_sealdata's file) must equal the TPM_COMPOSITE_HASH of the current PCRs over \
            its release selection. The current PCRs are read from the TPM (TPM 1.2: through \
            tcsd). The prediction 'seal' saved (aem-pcr-prediction.json) only explains: per PCR \
            and bank it says what differs, and the new log (--event-log, or the TXT heap) is \
            compared with the predicted one event by event to name the first component that \
            differs (tboot, the policy, or a module such as the initramfs). A prediction whose \
            values do not give the sealed object's digest, or that lacks a sealed PCR, is \
            refused (exit status 2) and nothing is removed. Exit status 0 when the TPM will \
            unseal and every sealed PCR has its predicted value; then the previous set kept by \
            'seal' (LABEL.prev-TIME) is removed. 1 when the TPM will not unseal, or when AEM \
            resealed the set to this boot's PCRs and they are not the predicted ones, or when \
            a file seal wrote into the set (key.pub, key.priv, key.pcrs, secret.X.sealed2; \
            their SHA-256 is in the prediction) is missing or changed: the previous set stays. With --pcrs FILE the verdict is computed from \
            the file (offline analysis) and the previous set is never removed.

            Example:
              sudo aem-pcr check-boot --label aem
            """)

    @Option(help: ArgumentHelp("The AEM boot device's label, as given to seal.", valueName: "label"))
    var label: String

    @Option(name: .customLong("tpm-dir"), help: ArgumentHelp("Where the sealed set is, LABEL/ below it (AEM's TPM_DIR).", valueName: "dir"))
    var tpmDir = AEMLayout.defaultSealedRoot

    @Option(name: .customLong("event-log"), help: ArgumentHelp("The new boot's DRTM event log (default: read from the TXT heap, as root).", valueName: "file"))
    var eventLog: String?

    @Option(help: ArgumentHelp("Compute the verdict from these PCR values (tpm2_pcrread's output or this tool's --json) instead of the TPM's; the previous set is then kept.", valueName: "file"))
    var pcrs: String?

    @OptionGroup var aemDevice: AEMDeviceOptions
    @OptionGroup var live: LiveOptions
    @OptionGroup var luks: LUKSOptions
    @OptionGroup var luksBoot: LUKSBootOptions
    @OptionGroup var output: OutputOptions

    func validate() throws {
        if !AEMLayout.isValidLabel(label) {
            throw ValidationError("--label '\(label)' must be letters, digits, '.', '_' or '-' (AEM's labels are aem plus a suffix)")
        }
    }

    struct Row {
        var pcr: PCRIndex
        var bank: HashAlgorithm
        var sealed: Bool
        var expected: Digest
        var now: Digest
        var match: Bool { expected == now }
    }

    struct Difference {
        var pcr: PCRIndex
        var component: String
        var detail: String
        /// The line shown, when not "PCRn: component differs: detail".
        var text: String? = nil
    }

    func run() throws {
        Terminal.verbose = output.verbose
        // A reader that goes away (`| head`) must not kill the run by SIGPIPE once the previous set is already removed:
        // exit 141 with no line said nothing of what was done. Output to a closed pipe is dropped.
        signal(SIGPIPE, SIG_IGN)
        // /var/lib/tpm as AEM has it (the link tpms/ID), and the set's copy on the AEM device.
        let (tpmRoot, deviceCopy, deviceNote) = try aemDevice.prepareForCheck(label: label, tpmDir: tpmDir)
        defer { deviceCopy?.release() }
        let layout = try AEMLayout(label: label, sealedRoot: tpmRoot.real)
        let dir = layout.sealedDir
        let recordPath = dir + "/" + AEMLayout.predictionFile
        let keyPCRsPath = dir + "/key.pcrs"
        // Only a missing record means "not sealed by this tool"; any other failure (no
        // permission, a directory, too large) is said as it is.
        let recordBytes: [UInt8]
        do {
            recordBytes = try FileReader.readAll(path: recordPath, limit: 1 << 22, noFollow: true)
        } catch let e as CodedError where e.code == .fileNotFound {
            throw CodedError(.usage, "\(recordPath) is missing: \(dir) was not sealed by 'aem-pcr seal' (or AEM has resealed it since), so there is no prediction to check")
        }
        let record = try SealedPrediction.parse(String(decoding: recordBytes, as: UTF8.self), source: recordPath)
        // The verdict comes from what the TPM will enforce: the sealed objects themselves
        // (key.pub's authPolicy over key.pcrs; each tpm_sealdata file's digestAtRelease). The
        // saved prediction only explains which event differs.
        let enforced = try SealedEnforcement.read(dir: dir)
        // AEM's own seal runs at every AEM boot (anti-evil-maid-seal.service) and reseals the set
        // to the PCRs of that boot, leaving this tool's prediction beside it: the verdict is
        // still from the sealed object; the prediction then explains an older key.
        var resealed = false
        if case .tpm2 = enforced {
            let keyPCRs = (try? FileReader.readAll(path: keyPCRsPath, limit: 4096, noFollow: true)).map { String(decoding: $0, as: UTF8.self) }
            let pub = try? FileReader.readAll(path: dir + "/key.pub", limit: 1 << 16, noFollow: true)
            let samePCRs = keyPCRs.map { String($0.reversed().drop { $0 == "\n" }.reversed()) } == record.selection.description
            let sameKey = record.keyPublicSHA256 == nil || pub.map { MultiHasher.hash(.sha256, $0) } == record.keyPublicSHA256
            resealed = !samePCRs || !sameKey
        }
        // The set's files against what seal wrote (recorded in the prediction), unless AEM has
        // resealed it (then they are AEM's). A missing or changed file, or a secret.X.sealed2 seal
        // did not write, is one AEM's unseal fails on (or is not seal's): the boot is not confirmed.
        let setFiles: [SetFileState]? = resealed ? nil : record.setFiles.map { Self.compareSetFiles($0, dir: dir) }
        let setFilesNote: String? = !resealed && record.setFiles == nil
            ? "\(recordPath) records no digest of the set's files (written by an older aem-pcr seal): key.priv and secret.X.sealed2 are not checked"
            : nil
        let intact = setFiles?.isEmpty ?? true
        let resealNote = resealed
            ? "AEM has resealed \(dir) since 'aem-pcr seal' (\(record.sealedAt)), as it does at each AEM boot, to the PCRs of that boot: the verdict is from AEM's key; the prediction is compared all the same"
            : nil
        // A prediction of this set must give what the sealed objects hold; one that does not
        // (rewritten, or of another set) explains nothing and is said so, nothing removed.
        if !resealed, let why = enforced.disagreement(of: record.pcrs) {
            throw CodedError(.usage, "\(recordPath) disagrees with the sealed object (\(enforced.objectNames.joined(separator: ", "))): \(why); it cannot explain this boot, and nothing is removed")
        }

        // The PCRs now: the sealed selection and every one the record has, in their banks.
        let selection = enforced.selection
        let selectedBanks = selection?.banks ?? []
        let wanted = Set(record.pcrs.banks.flatMap { record.pcrs.pcrs(in: $0) } + selectedBanks.flatMap(\.pcrs) + [17]).sorted()
        let banks = Array(Set(record.pcrs.banks + selectedBanks.map(\.algorithm))).sorted()
        // One session with the TPM that enforces the set (TPM 1.2: tcsd), or the --pcrs file.
        let current = live.currentBoot(eventLog: eventLog, pcrs: pcrs, verbose: output.verbose, tpm12: .tcsd)
        let tpm: any PCRSource
        if case .tpm12 = enforced { tpm = try current.source(family: .tpm12) } else { tpm = try current.source(family: .tpm20) }
        let now = try tpm.read(wanted, banks: tpm.family == .tpm12 ? [.sha1] : banks, onlyActive: true)
        let source = tpm.name
        let refusing: [String]
        let currentDigests: [(name: String, hex: String)]
        do {
            currentDigests = try enforced.currentDigests(now)
            refusing = try enforced.refusing(now)
        } catch let e as CodedError {
            throw CodedError(.usage, "\(source) cannot give the verdict: \(e.reason)")
        }
        let unseals = refusing.isEmpty
        var rows = [Row]()
        for bank in record.pcrs.banks {
            for pcr in record.pcrs.pcrs(in: bank) {
                let sealed = selectedBanks.contains { $0.algorithm == bank && $0.pcrs.contains(pcr) }
                guard let v = now[bank, pcr] else { continue }
                rows.append(Row(pcr: pcr, bank: bank, sealed: sealed, expected: record.pcrs[bank, pcr]!, now: v))
            }
        }
        let allMatch = rows.allSatisfy(\.match)
        // The boot confirmed: the TPM will unseal AND the sealed PCRs are the predicted ones.
        // The two part only when AEM resealed the set to this boot's PCRs (its key opens then,
        // whatever booted): such a boot is not the predicted one, and the previous set stays.
        let predicted = rows.filter(\.sealed).allSatisfy(\.match)
        // AEM's unseal reads the device's copy: it must be the set checked here.
        let deviceDifferences = try deviceCopy?.differences(from: dir) ?? []
        let confirmed = unseals && predicted && intact && deviceDifferences.isEmpty
        let verdictFrom: String
        switch enforced {
        case .tpm2:
            if case .tpm2(let o, _) = enforced, o.nameAlg != .sha256 {
                verdictFrom = "key.pub's name algorithm is \(o.nameAlg), and AEM's tpm2_unseal runs a SHA-256 policy session, which the TPM refuses for it"
            } else {
                verdictFrom = "the authPolicy of key.pub \(unseals ? "equals" : "differs from") the PolicyPCR of the current PCRs over key.pcrs (\(enforced.selectionDescription))"
            }
        case .tpm12(let files):
            verdictFrom = unseals
                ? "the digestAtRelease of \(files.map(\.name).joined(separator: ", ")) equals the TPM_COMPOSITE_HASH of the current PCRs over \(enforced.selectionDescription)"
                : "the digestAtRelease of \(refusing.joined(separator: ", ")) differs from the TPM_COMPOSITE_HASH of the current PCRs (or its localityAtRelease excludes locality 0)"
        }
        let fromFile = pcrs != nil
        let fileNote = fromFile
            ? "The PCRs come from \(source), not from the TPM: the previous set is kept (check-boot removes it only on a verdict from the TPM's own PCRs)."
            : nil

        // Which component differs: the new log against the predicted one.
        var differences = [Difference]()
        var logNote: String? = nil
        if !allMatch || !unseals {
            do {
                let log = try current.currentLog()
                // Only a log verified against the PCRs the verdict is from names a component.
                if let verified = try? Verifier.verified(log, against: now, source: source) {
                    differences = compare(record, verified.log)
                } else {
                    logNote = "\(log.source) does not verify against \(source): its events cannot say what differs"
                }
            } catch let e as AEMPCRError {
                logNote = "no new DRTM log to name the differing component (\(e))"
            }
        }

        let luksFamily: TPMFamily
        if case .tpm12 = enforced { luksFamily = .tpm12 } else { luksFamily = .tpm20 }
        differences += luksDifferences(now: now, family: luksFamily, rows: rows, fromFile: fromFile)

        var drop = SealedSetWriter.Drop()
        if confirmed && !fromFile { drop = try SealedSetWriter(target: dir).dropPrevious() }
        if confirmed && !fromFile, let d = deviceCopy {
            let more = try d.writer.dropPrevious()
            drop.removed += more.removed.map { AEMDeviceOptions.Report.show(d, $0) }
            drop.kept += more.kept.map { SealedSetWriter.Kept(path: AEMDeviceOptions.Report.show(d, $0.path), reason: $0.reason) }
            drop.errors += more.errors
        }
        let dropped = drop.removed

        if output.json {
            Terminal.output(JSON.object([
                ("label", .string(label)), ("matched", .bool(confirmed)), ("unseals", .bool(unseals)), ("pcr_source", .string(source)),
                ("pcrs_from_tpm", .bool(!fromFile)),
                ("verdict", JSON.object([
                    ("from", .string(verdictFrom)),
                    ("sealed", .array(enforced.sealedDigests.map { JSON.object([("file", .string($0.name)), ("digest", .string($0.hex))]) })),
                    ("now", .array(currentDigests.map { JSON.object([("file", .string($0.name)), ("digest", .string($0.hex))]) })),
                    ("selection", .string(enforced.selectionDescription)),
                ])),
                ("selection", .string(record.selection.description)), ("sealed_at", .string(record.sealedAt)),
                ("pcrs", .array(rows.map { r in
                    JSON.object([("pcr", .int(Int(r.pcr.rawValue))), ("bank", .string(r.bank.description)),
                                 ("sealed", .bool(r.sealed)), ("expected", .string(r.expected.hex)),
                                 ("now", .string(r.now.hex)), ("match", .bool(r.match))])
                })),
                ("differences", .array(differences.map { d in
                    JSON.object([("pcr", .int(Int(d.pcr.rawValue))), ("component", .string(d.component)), ("detail", .string(d.detail))])
                })),
                ("log_note", logNote.map { .string($0) } ?? .null),
                ("resealed_by_aem", .bool(resealed)),
                ("set_files", setFiles.map { .array($0.map { JSON.object([("name", .string($0.name)), ("state", .string($0.state))]) }) } ?? .null),
                ("set_files_note", setFilesNote.map { .string($0) } ?? .null),
                ("dropped", .array(dropped.map { .string($0) })),
                ("kept", .array(drop.kept.map { JSON.object([("path", .string($0.path)), ("reason", .string($0.reason))]) })),
                ("cleanup_errors", .array(drop.errors.map { .string($0) })),
                ("aem_device", AEMDeviceOptions.checkJSON(deviceCopy, differences: deviceDifferences, note: deviceNote)),
            ]))
        } else {
            // From a file the verdict is about those values, not about this boot.
            let head: TerminalText = fromFile
                ? (unseals ? "The PCR values in \(source) open the set sealed for: \(label) (sealed \(record.sealedAt))"
                    : "The PCR values in \(source) do NOT open the set sealed for: \(label) (sealed \(record.sealedAt))")
                : (confirmed ? "The boot is the one sealed for: \(label) (sealed \(record.sealedAt), PCRs from \(source))"
                    : unseals && predicted ? "The sealed set is NOT the one seal wrote, though the boot is the predicted one: \(label) (sealed \(record.sealedAt), PCRs from \(source))"
                    : unseals ? "The boot is NOT the one predicted, though AEM's key opens on it: \(label) (sealed \(record.sealedAt), PCRs from \(source))"
                    : "The boot is NOT the one sealed for: \(label) (sealed \(record.sealedAt), PCRs from \(source))")
            var out: TerminalText = Terminal.wrap(Terminal.bold(head)) + "\n"
            out += Terminal.wrap("Verdict: \(verdictFrom).") + "\n"
            for r in rows {
                let head: TerminalText = Terminal.pad("PCR\(r.pcr)", 6) + Terminal.pad("\(r.bank)", 7) + (r.sealed ? " sealed " : " logged ")
                if r.match {
                    out += head + " match\n"
                } else {
                    out += head + " DIFFERS\n"
                    out += Terminal.digestLine(indent: 4, label: "predicted", labelWidth: 10, hex: r.expected.hex) + "\n"
                    out += Terminal.digestLine(indent: 4, label: "now", labelWidth: 10, hex: r.now.hex) + "\n"
                }
            }
            for d in differences {
                let line: TerminalText = d.text.map { "\($0)" } ?? "PCR\(d.pcr): \(d.component) differs: \(d.detail)"
                out += Terminal.wrap(line, indent: 0) + "\n"
            }
            if let logNote { out += Terminal.wrap("\(logNote)") + "\n" }
            if let resealNote { out += Terminal.wrap("\(resealNote)") + "\n" }
            if let setFilesNote { out += Terminal.wrap("\(setFilesNote)") + "\n" }
            for f in setFiles ?? [] {
                out += Terminal.wrap("\(f.name) \(f.description), in \(dir): AEM's unseal will fail or is not what seal wrote.") + "\n"
            }
            if let fileNote { out += Terminal.wrap("\(fileNote)") + "\n" }
            if let d = deviceCopy, !deviceDifferences.isEmpty {
                out += Terminal.wrap("The copy on the AEM device, \(AEMDeviceOptions.Report.show(d, d.setDir)), which AEM's unseal reads, is not this set: \(deviceDifferences.joined(separator: ", ")). Seal again to write both.") + "\n"
            }
            if let deviceNote { out += Terminal.wrap("Note: \(deviceNote).") + "\n" }
            // The previous sets that are there (none after a first seal, or once a confirmed
            // boot removed them): named, never a pattern that matches nothing.
            let previous = confirmed && !fromFile ? [] : previousSets(dir: dir, device: deviceCopy)
            let kept: TerminalText = previous.isEmpty
                ? "No previous set is kept to go back to (there was none before this seal, or check-boot removed it after a confirmed boot)"
                : "The previous set stays in \(previous.joined(separator: ", "))"
            if unseals && !predicted {
                out += Terminal.wrap("Sealed PCRs differ from the prediction, yet the sealed object accepts this boot's PCRs: AEM resealed the set to them. This boot is not the one predicted. " + kept + (previous.isEmpty ? "." : " until you know why.")) + "\n"
            } else if unseals && !allMatch {
                out += Terminal.wrap("Some PCRs the secret is not sealed to differ from the prediction; the sealed object accepts this boot's PCRs.") + "\n"
            }
            if unseals && !predicted {
            } else if unseals && (!intact || !deviceDifferences.isEmpty) {
                out += Terminal.wrap("The boot is not confirmed. " + kept + "; reseal (aem-pcr seal, or AEM's anti-evil-maid-seal once you trust this boot).") + "\n"
            } else if unseals && fromFile {
                out += Terminal.wrap("AEM's unseal would succeed with these PCR values.") + "\n"
            } else if unseals {
                out += Terminal.wrap(dropped.isEmpty ? "No previous set to remove." : "Removed the previous set: \(dropped.joined(separator: ", "))") + "\n"
                for k in drop.kept { out += Terminal.wrap("Kept \(k.path): \(k.reason)") + "\n" }
            } else {
                out += Terminal.wrap("AEM's unseal fails on this boot. " + kept + "; check what changed, then reseal with AEM (anti-evil-maid-seal) once you trust this boot.") + "\n"
            }
            Terminal.output(Terminal.fold(out))
        }
        if !confirmed { throw ExitCode(ExitStatus.mismatch) }
        if !drop.errors.isEmpty {
            Terminal.warning("the boot is the one sealed for, but removing the previous set failed: " + drop.errors.joined(separator: "; "))
            throw ExitCode(ExitStatus.notCleaned)
        }
    }

    /// The previous sets seal kept, in the TPM directory and on the AEM device (its paths as
    /// the report shows them); none when they cannot be listed.
    func previousSets(dir: String, device: AEMDeviceCopy?) -> [String] {
        let here = (try? SealedSetWriter(target: dir).previousSets()) ?? []
        let there = device.map { d in ((try? d.writer.previousSets()) ?? []).map { AEMDeviceOptions.Report.show(d, $0) } } ?? []
        return here + there
    }

    /// PCR13: records this boot's LUKS header digests when they fold to the TPM's PCR13 (not
    /// from a --pcrs file), and, when PCR13 differs from the prediction, names the header that
    /// changed since the seal: the digests seal recorded for the predicted PCR13 against the
    /// headers read now, when those fold to PCR13 now. Otherwise says it cannot tell, and why.
    func luksDifferences(now: PCRValues, family: TPMFamily, rows: [Row], fromFile: Bool) -> [Difference] {
        let bank = LUKSMeasurement.bank(family)
        guard let pcr13 = now[bank, LUKSMeasurement.pcr] else { return [] }
        let (current, why) = luksBoot.current(family: family, headers: luks.parsed)
        let old = LUKSRecordFile.read(luksBoot.record)
        if !fromFile { luksBoot.save(now: pcr13, current: current, old: old, sealed: nil) }
        guard let row = rows.first(where: { $0.pcr == LUKSMeasurement.pcr && $0.bank == bank }), !row.match else { return [] }
        // No rd.luks.uuid on this boot's command line: AEM measured no header.
        if let current, current.uuids.isEmpty { return [] }
        func cannotTell(_ reason: String) -> [Difference] {
            [Difference(pcr: LUKSMeasurement.pcr, component: "LUKS headers", detail: reason,
                        text: "PCR13 differs, and which LUKS header changed cannot be told: \(reason)")]
        }
        guard let current, let value = current.value else {
            return cannotTell("this boot's headers cannot be read (\(why ?? "not known"))")
        }
        guard value == pcr13 else {
            return cannotTell("the headers of \(current.uuids.joined(separator: ", ")) read now fold to \(value.hex), not to PCR13 now (a header changed since this boot, or another PCR13 extend)")
        }
        guard case .record(let r)? = old, !r.sealed.isEmpty, LUKSHeaderRecord.fold(r.sealed, bank: bank) == row.expected else {
            return cannotTell("\(luksBoot.record) holds no digests of the headers the seal predicted PCR13 from")
        }
        let measured = LUKSHeaderRecord(boot: current.extends).boot
        return LUKSHeaderRecord.changed(r.sealed, measured).map { u in
            let was = r.sealed.first { $0.uuid == u }?.digest.hex ?? "none"
            let isNow = measured.first { $0.uuid == u }?.digest.hex ?? "none"
            return Difference(pcr: LUKSMeasurement.pcr, component: "the LUKS header of \(u)",
                              detail: "changed since the seal: sealed for \(bank) \(was), this boot measured \(isNow)",
                              text: "PCR13: the LUKS header of \(u) changed since the seal (sealed for \(bank) \(was), this boot measured \(isNow))")
        }
    }

    /// A file of the set that is not what seal wrote.
    struct SetFileState {
        var name: String
        /// missing, changed, unreadable (a link, a directory, no permission), or extra (a
        /// secret.X.sealed2 seal did not write).
        var state: String
        var description: String {
            switch state {
            case "missing": "is missing (seal wrote it)"
            case "changed": "is not the file seal wrote (its SHA-256 differs)"
            case "extra": "was not written by seal"
            default: "cannot be read as the regular file seal wrote"
            }
        }
    }

    /// The recorded files against the set's (read without following a link), and any
    /// secret.X.sealed2 in the set that seal did not write. Only the differing ones.
    static func compareSetFiles(_ recorded: [SealedPrediction.SetFile], dir: String) -> [SetFileState] {
        var out = [SetFileState]()
        for f in recorded {
            do {
                let bytes = try FileReader.readAll(path: dir + "/" + f.name, limit: AEMLayout.secretSizeLimit * 2 + (1 << 20), noFollow: true)
                if MultiHasher.hash(.sha256, bytes) != f.sha256 { out.append(SetFileState(name: f.name, state: "changed")) }
            } catch let e as CodedError where e.code == .fileNotFound {
                out.append(SetFileState(name: f.name, state: "missing"))
            } catch {
                out.append(SetFileState(name: f.name, state: "unreadable"))
            }
        }
        let names = Set(recorded.map(\.name))
        for ext in AEMLayout.secretExtensions {
            let name = AEMLayout.sealedName(ext)
            var st = stat()
            if !names.contains(name) && lstat(dir + "/" + name, &st) == 0 { out.append(SetFileState(name: name, state: "extra")) }
        }
        return out
    }

    /// Per PCR, the predicted and the logged events in order (the one `EventDiff`); the first
    /// that differs in a bank both have names the component.
    func compare(_ record: SealedPrediction, _ log: DRTMEventLog) -> [Difference] {
        let logged = log.events.map { PredictedEvent(logged: $0, what: "") }
        var out = [Difference]()
        for (pcr, changes) in EventDiff(old: record.events, new: logged).byPCR {
            // Events with no bank in common are not shown to differ: the next one may be.
            guard let c = changes.first(where: { $0.reason != .noCommonBank }) else { continue }
            switch c.reason {
            case .added:
                let more = changes.filter { $0.reason == .added }.count
                out.append(Difference(pcr: pcr, component: "an event not predicted", detail: "the log has \(more) more event(s) (type \(c.new!.type.hex)) than the prediction"))
            case .removed:
                out.append(Difference(pcr: pcr, component: c.old!.what, detail: "predicted but not in the log"))
            case .digest(let bank):
                out.append(Difference(pcr: pcr, component: c.old!.what, detail: "predicted \(bank) \(c.old!.digests[bank]!.hex), logged \(c.new!.digests[bank]!.hex)"))
            case .type, .noCommonBank:
                out.append(Difference(pcr: pcr, component: c.old!.what, detail: "predicted type \(c.old!.type.hex), logged \(c.new!.type.hex)"))
            }
        }
        return out
    }
}
