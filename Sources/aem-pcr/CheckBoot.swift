import AEMPCR
import AEMPCRSeal
import AEMPCRTPM
import ArgumentParser

struct CheckBoot: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "check-boot",
        abstract: "After the reboot: check that the boot is the one 'seal' predicted.",
        discussion: """
            Reads what 'seal' sealed to (key.pcrs and the saved prediction in the sealed set), \
            the PCRs (--pcrs, or the TPM) and the new DRTM log (--event-log, or the TXT heap), \
            and says per PCR and bank whether the boot matched. When a PCR differs, the new log \
            is compared with the predicted one event by event and the first component that \
            differs is named (tboot, the policy, or a module such as the initramfs). Exit \
            status 0 only when every PCR matches; then the previous set kept by 'seal' \
            (LABEL.prev-TIME) is removed. 1 when anything differs: the previous set stays.

            Example:
              sudo aem-pcr check-boot --label aem
            """)

    @Option(help: ArgumentHelp("The AEM boot device's label, as given to seal.", valueName: "label"))
    var label: String

    @Option(name: .customLong("tpm-dir"), help: ArgumentHelp("Where the sealed set is, LABEL/ below it (AEM's TPM_DIR).", valueName: "dir"))
    var tpmDir = AEMLayout.defaultSealedRoot

    @Option(name: .customLong("event-log"), help: ArgumentHelp("The new boot's DRTM event log (default: read from the TXT heap, as root).", valueName: "file"))
    var eventLog: String?

    @Option(help: ArgumentHelp("The PCR values now (tpm2_pcrread's output or this tool's --json; default: read from the TPM).", valueName: "file"))
    var pcrs: String?

    @OptionGroup var live: LiveOptions
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
    }

    func run() throws {
        Terminal.verbose = output.verbose
        let layout = try AEMLayout(label: label, sealedRoot: tpmDir)
        let dir = layout.sealedDir
        let recordPath = dir + "/" + AEMLayout.predictionFile
        let keyPCRsPath = dir + "/key.pcrs"
        // Only a missing record means "not sealed by this tool"; any other failure (no
        // permission, a directory, too large) is said as it is.
        let recordBytes: [UInt8]
        do {
            recordBytes = try FileReader.readAll(path: recordPath, limit: 1 << 22)
        } catch let e as FileError where e.code == .notFound {
            throw UsageError("\(recordPath) is missing: \(dir) was not sealed by 'aem-pcr seal' (or AEM has resealed it since), so there is no prediction to check")
        }
        let record = try SealedPrediction.parse(String(decoding: recordBytes, as: UTF8.self), source: recordPath)
        // AEM's own seal runs at every AEM boot (anti-evil-maid-seal.service) and reseals the set
        // to the PCRs of that boot, leaving this tool's prediction beside it: the check below
        // compares those PCRs with the prediction all the same; say that the key is AEM's now.
        var resealed = false
        if record.selection.banks.contains(where: { $0.algorithm != .sha1 }) {
            let keyPCRs = (try? FileReader.readAll(path: keyPCRsPath, limit: 4096)).map { String(decoding: $0, as: UTF8.self) }
            let pub = try? FileReader.readAll(path: dir + "/key.pub", limit: 1 << 16)
            let samePCRs = keyPCRs.map { String($0.reversed().drop { $0 == "\n" }.reversed()) } == record.selection.description
            let sameKey = record.keyPublicSHA256 == nil || pub.map { MultiHasher.hash(.sha256, $0) } == record.keyPublicSHA256
            resealed = !samePCRs || !sameKey
        }
        let resealNote = resealed
            ? "AEM has resealed \(dir) since 'aem-pcr seal' (\(record.sealedAt)), as it does at each AEM boot, to the PCRs of that boot; they are compared with the prediction all the same"
            : nil

        // The PCRs now: every one the record has, in its banks.
        let wanted = Set(record.pcrs.banks.flatMap { record.pcrs.pcrs(in: $0) }).sorted()
        let (now, source): (PCRValues, String)
        if let p = pcrs {
            (now, source) = (try PCRValuesFile.read(path: p), p)
        } else {
            (now, source) = try LiveBoot.read(pcrs: wanted, banks: record.pcrs.banks, tcti: live.tcti, verbose: output.verbose, onlyActive: true)
        }
        var rows = [Row]()
        for bank in record.pcrs.banks {
            for pcr in record.pcrs.pcrs(in: bank) {
                let sealed = record.selection.banks.contains { $0.algorithm == bank && $0.pcrs.contains(pcr) }
                guard let v = now[bank, pcr] else {
                    if sealed { throw UsageError("\(source) has no PCR\(pcr) \(bank), which the secret is sealed to") }
                    continue
                }
                rows.append(Row(pcr: pcr, bank: bank, sealed: sealed, expected: record.pcrs[bank, pcr]!, now: v))
            }
        }
        let allMatch = rows.allSatisfy(\.match)

        // Which component differs: the new log against the predicted one.
        var differences = [Difference]()
        var logNote: String? = nil
        if !allMatch {
            do {
                let log = try live.log(eventLog)
                let report = Verifier.verify(log, against: now)
                if !report.verified {
                    logNote = "\(log.source) does not verify against \(source): its events cannot say what differs"
                } else {
                    differences = compare(record, log)
                }
            } catch let e as AEMPCRError {
                logNote = "no new DRTM log to name the differing component (\(e))"
            }
        }

        var drop = SealedSetWriter.Drop()
        if allMatch { drop = try SealedSetWriter(target: dir).dropPrevious() }
        let dropped = drop.removed

        if output.json {
            print(JSON.object([
                ("label", .string(label)), ("matched", .bool(allMatch)), ("pcr_source", .string(source)),
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
                ("dropped", .array(dropped.map { .string($0) })),
                ("kept", .array(drop.kept.map { JSON.object([("path", .string($0.path)), ("reason", .string($0.reason))]) })),
                ("cleanup_errors", .array(drop.errors.map { .string($0) })),
            ]).render())
        } else {
            var out = Terminal.wrap(Terminal.bold(allMatch ? "The boot is the one sealed for" : "The boot is NOT the one sealed for") + ": \(label) (sealed \(record.sealedAt), PCRs from \(source))") + "\n"
            for r in rows {
                let head = Terminal.pad("PCR\(r.pcr)", 6) + Terminal.pad(r.bank.description, 7) + (r.sealed ? " sealed " : " logged ")
                if r.match {
                    out += head + " match\n"
                } else {
                    out += head + " DIFFERS\n"
                    out += Terminal.digestLine(indent: 4, label: "predicted", labelWidth: 10, hex: r.expected.hex) + "\n"
                    out += Terminal.digestLine(indent: 4, label: "now", labelWidth: 10, hex: r.now.hex) + "\n"
                }
            }
            for d in differences { out += Terminal.wrap("PCR\(d.pcr): \(d.component) differs: \(d.detail)", indent: 0) + "\n" }
            if let logNote { out += Terminal.wrap(logNote) + "\n" }
            if let resealNote { out += Terminal.wrap(resealNote) + "\n" }
            if allMatch {
                out += Terminal.wrap(dropped.isEmpty ? "No previous set to remove." : "Removed the previous set: \(dropped.joined(separator: ", "))") + "\n"
                for k in drop.kept { out += Terminal.wrap("Kept " + Terminal.escaped(k.path) + ": " + Terminal.escaped(k.reason)) + "\n" }
            } else {
                out += Terminal.wrap("AEM's unseal fails on this boot. The previous set stays in \(dir).prev-*; check what changed, then reseal with AEM (anti-evil-maid-seal) once you trust this boot.") + "\n"
            }
            print(fold(out), terminator: "")
        }
        if !allMatch { throw ExitCode(ExitStatus.mismatch) }
        if !drop.errors.isEmpty {
            Terminal.writeError("aem-pcr: warning: \(Escape.text("the boot is the one sealed for, but removing the previous set failed: " + drop.errors.joined(separator: "; "), limit: 2000))\n")
            throw ExitCode(ExitStatus.notCleaned)
        }
    }

    /// Per PCR, the predicted and the logged events in order; the first that differs in a
    /// bank both have names the component.
    func compare(_ record: SealedPrediction, _ log: DRTMEventLog) -> [Difference] {
        var out = [Difference]()
        let pcrs = Set(record.events.map(\.pcr)).union(log.events.map(\.pcr)).sorted()
        for pcr in pcrs {
            let predicted = record.events.filter { $0.pcr == pcr }
            let logged = log.events.filter { $0.pcr == pcr }
            for i in 0..<max(predicted.count, logged.count) {
                guard i < predicted.count else {
                    out.append(Difference(pcr: pcr, component: "an event not predicted", detail: "the log has \(logged.count - predicted.count) more event(s) (type \(logged[i].type.hex)) than the prediction"))
                    break
                }
                guard i < logged.count else {
                    out.append(Difference(pcr: pcr, component: predicted[i].what, detail: "predicted but not in the log"))
                    break
                }
                let p = predicted[i], l = logged[i]
                let banks = Set(p.digests.keys).intersection(l.digests.keys).sorted()
                if p.type != l.type || banks.contains(where: { p.digests[$0] != l.digests[$0] }) {
                    let bank = banks.first { p.digests[$0] != l.digests[$0] }
                    let detail = bank.map { "predicted \($0) \(p.digests[$0]!.hex), logged \(l.digests[$0]!.hex)" }
                        ?? "predicted type \(p.type.hex), logged \(l.type.hex)"
                    out.append(Difference(pcr: pcr, component: p.what, detail: detail))
                    break
                }
            }
        }
        return out
    }
}
