import AEMPCR
import AEMPCRSeal
import AEMPCRSystem
import AEMPCRTPM
import ArgumentParser
import Glibc

struct Seal: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Seal the AEM secrets to the PCR values the next boot will have.",
        discussion: """
            Predicts the next boot as 'diff' does (the current boot's DRTM log must verify \
            against the PCRs; --force is not accepted), then makes Anti Evil Maid's sealed set \
            for the predicted values, in AEM's own formats, so that AEM's unseal shows the \
            secret at the next boot without a blind boot in between: on a TPM 2.0 a new sealing \
            object under AEM's SRK (0x81000001) with the PolicyPCR of sha256:13,17,18,19 \
            (PCR13 as now, PCR17-19 predicted) as its policy and 16 random bytes as data \
            (key.pub, key.priv, key.pcrs), and each secret.X re-encrypted into \
            secret.X.sealed2 as 'openssl enc -aes-256-ctr -pbkdf2' with the hex of those bytes. \
            Refuses a PCR that would be all 00 or all FF, or that the log does not let it \
            predict. The PCRs come from the TPM it seals on, always (TPM 2.0: the --tcti it \
            seals through; TPM 1.2: tcsd, through trousers): the current log must replay to \
            them and PCR13 is sealed as the TPM has it. --pcrs FILE is accepted only with \
            --dry-run, for a plan from saved values. The SRK password is read from --srk-password-file or asked on the \
            terminal, never from the command line or the environment.

            The new set replaces the old one as a whole (an interruption leaves one or the \
            other); the old one is kept as LABEL.prev-TIME until 'check-boot' confirms the next \
            boot. AEM reads the set from its boot device at boot: write it there too, with \
            --tpm-dir naming the mounted device's aem/tpms/ID directory. On a TPM 1.2 each \
            secret.X.sealed2 is tpm_sealdata's file, sealed through trousers (tcsd) to the \
            predicted values. A SEAL in /etc/anti-evil-maid.conf naming other PCRs gets the \
            plan: predicted values, what to check, AEM's reseal command.

            Example:
              sudo aem-pcr seal --label aem --dry-run \\
                --grub-cfg /boot/grub2/grub.cfg --entry 'AEM Qubes, with Xen hypervisor'
            """)

    @Option(help: ArgumentHelp("The AEM boot device's label (aem plus its suffix), as in /var/lib/anti-evil-maid/LABEL.", valueName: "label"))
    var label: String

    @Option(name: .customLong("aem-dir"), help: ArgumentHelp("Where the secrets are, LABEL/secret.{txt,key,otp,fre} below it (AEM's AEM_DIR).", valueName: "dir"))
    var aemDir = AEMLayout.defaultSecretsRoot

    @Option(name: .customLong("tpm-dir"), help: ArgumentHelp("Where the sealed set is written, LABEL/ below it (AEM's TPM_DIR).", valueName: "dir"))
    var tpmDir = AEMLayout.defaultSealedRoot

    @Option(name: .customLong("aem-conf"), help: ArgumentHelp("AEM's configuration, whose SEAL names the PCRs to seal to (default when absent: 13, 17, 18, 19).", valueName: "file"))
    var aemConf = AEMConfig.defaultPath

    @Option(name: .customLong("srk-password-file"), help: ArgumentHelp("Read the SRK password from this file (trailing newlines dropped, as AEM's $(cat) does); default: ask on the terminal.", valueName: "file"))
    var srkPasswordFile: String?

    @Flag(name: .customLong("srk-well-known"), help: "TPM 1.2: the SRK has the well-known secret (AEM set up without an SRK password; its tpm_unsealdata -z).")
    var srkWellKnown = false

    @Flag(name: .customLong("dry-run"), help: "Show the predicted values, the policy and what would change; seal nothing.")
    var dryRun = false

    @OptionGroup var boot: BootOptions
    @OptionGroup var replace: ReplaceOptions
    @OptionGroup var launch: LaunchOptions
    @OptionGroup var log: EventLogOptions
    @OptionGroup var output: OutputOptions

    func validate() throws {
        if log.force {
            throw ValidationError("seal never uses a log that does not verify: --force is not accepted")
        }
        if log.pcrs != nil && !dryRun {
            throw ValidationError("seal reads the PCRs of the TPM it seals on: --pcrs FILE is accepted only with --dry-run (a plan from saved values)")
        }
        if srkWellKnown && srkPasswordFile != nil {
            throw ValidationError("--srk-well-known and --srk-password-file both name the SRK secret: give one")
        }
        if !AEMLayout.isValidLabel(label) {
            throw ValidationError("--label '\(label)' must be letters, digits, '.', '_' or '-' (AEM's labels are aem plus a suffix)")
        }
    }

    func run() throws {
        Terminal.verbose = output.verbose
        // A reader that goes away (`| head`) must not kill the run by SIGPIPE once the new set is in place:
        // exit 141 with no line said nothing of what was done. Output to a closed pipe is dropped.
        signal(SIGPIPE, SIG_IGN)
        // No core dump, no ptrace by the same user: before any secret is read.
        try SecretProcess.harden()
        defer {
            if output.verbose && SecretBuffer.lockFailure != 0 {
                Terminal.note("secrets could not be locked in memory (mlock: \(Errno(SecretBuffer.lockFailure))): they may have been written to swap")
            }
        }
        // A TCTI that logs or runs commands is refused before the TPM is opened or a password asked.
        if let refusal = TCTIChoice.resolve(option: log.live.tcti, environment: Environment.variables).refusal { throw refusal }
        let layout = try AEMLayout(label: label, secretsRoot: aemDir, sealedRoot: tpmDir)
        let drtm = try log.live.log(log.eventLog)
        // The family the log shows (or --tpm); the machine's only when the log cannot say.
        let family = try launch.tpm ?? LogPredictor.facts(of: drtm).tpm ?? LiveBoot.family(tcti: log.live.tcti)
        // The PCRs of the TPM this seals on: the current log must replay to them, and PCR13 is
        // sealed as it is there. A file (--pcrs) only for a dry run's plan.
        let tpmPCRs = log.pcrs == nil ? try readTPM(family, for: drtm) : nil
        let (p, _) = try log.predict(boot: boot, launch: launch, replace: replace, verbose: output.verbose,
                                     read: (drtm, tpmPCRs))
        try LiveBoot.checkTCTI(for: family, tcti: log.live.tcti, stated: launch.tpm != nil)
        let bank: HashAlgorithm = family == .tpm20 ? .sha256 : .sha1
        let sealPCRs = try AEMConfig.sealPCRs(path: aemConf)
        let other = sealPCRs.filter { ![13, 17, 18, 19].contains($0.rawValue) }
        let selection = try PCRSelection(banks: [bank], pcrs: sealPCRs)
        let known = sealPCRs.filter { [13, 17, 18, 19].contains($0.rawValue) }
        let (values, refusals) = try checkedValues(p, bank: bank, pcrs: known, tpm: tpmPCRs)
        if !dryRun, let first = refusals.first { throw SealError(.refused, first + "; nothing is sealed") }
        if !other.isEmpty {
            printPlan(values: values, selection: selection, layout: layout,
                      reason: "SEAL in \(aemConf) names \(other.map { "PCR\($0)" }.joined(separator: ", ")), which this tool does not seal to (it seals PCR13 as now and PCR17-19 predicted)")
            throw ExitCode(ExitStatus.mismatch)
        }
        let policy = try PolicyPCR.digest(selection, values: values)
        var record = SealedPrediction(label: label, sealedAt: "", selection: selection, policyDigest: policy,
                                      pcrs: values.overridden(by: p.predicted), events: SealedPrediction.events(of: p))
        record.sealedAt = utcNow()
        let writer = SealedSetWriter(target: layout.sealedDir)
        let tpm = family == .tpm20 ? "2.0" : "1.2"
        // A directory another user can write: refused before a password is asked.
        let unsafeDirectory = writer.unsafeDirectory()
        if !dryRun, let unsafeDirectory { throw SealError(.refused, unsafeDirectory) }

        // Checked before a password is asked or the TPM is opened.
        let secrets = AEMSealer.presentSecrets(layout)
        if secrets.isEmpty { throw SealError(.layout, "no secret to seal in \(layout.secretsDir) (secret.txt, secret.key, secret.otp or secret.fre): set up AEM first") }
        if dryRun {
            let names = (family == .tpm20 ? ["key.pub", "key.priv", "key.pcrs"] : []) + secrets.map(AEMLayout.sealedName)
                + [AEMLayout.predictionFile]
            let plan = try writer.plan(names.map { SealedFile(name: $0, bytes: []) }, dropping: Set(secrets.map { "secret.\($0).sealed" }))
            report(values: values, selection: selection, policy: policy, layout: layout, plan: plan, prev: nil, dryRun: true, tpm: tpm,
                   refusals: refusals + (unsafeDirectory.map { [$0] } ?? []))
            return
        }
        if family == .tpm20 && srkWellKnown {
            throw UsageError("--srk-well-known is for a TPM 1.2 SRK; AEM's TPM 2.0 SRK (0x81000001) has a password: give --srk-password-file or answer the prompt")
        }
        guard family == .tpm20 else {
            try sealTPM12(values: values, selection: selection, layout: layout, record: record, writer: writer)
            return
        }
        let password = try srkPasswordFile.map { try AEMSealer.readSRKPassword(path: $0) }
            ?? AEMSealer.promptSRKPassword("TPM SRK password: ")
        let device = try TPM2Device(tcti: TCTIChoice.resolve(option: log.live.tcti, environment: Environment.variables),
                                    verbose: output.verbose)
        let (files, dropping) = try AEMSealer.tpm2Files(device: device, srkPassword: password, policy: policy,
                                                        selection: selection, layout: layout, prediction: record)
        let plan = try writer.plan(files, dropping: dropping)
        let outcome = try writer.commit(files, dropping: dropping)
        report(values: values, selection: selection, policy: policy, layout: layout, plan: plan, prev: outcome.previous, dryRun: false,
               outcome: outcome)
        try afterSwap(outcome, layout: layout)
    }

    /// TPM 1.2: each secret sealed by TPM12Sealer (trousers, through tcsd) to the predicted
    /// values, in tpm_sealdata's file, named secret.X.sealed2 as AEM names it.
    func sealTPM12(values: PCRValues, selection: PCRSelection, layout: AEMLayout, record: SealedPrediction,
                   writer: SealedSetWriter) throws {
        let srk: TPM12Sealer.SRKSecret
        if srkWellKnown {
            srk = .wellKnown
        } else {
            let password = try srkPasswordFile.map { try AEMSealer.readSRKPassword(path: $0) }
                ?? AEMSealer.promptSRKPassword("TPM SRK password: ")
            srk = .password(password)
        }
        let (files, dropping) = try AEMSealer.tpm12Files(values: values, layout: layout, prediction: record) {
            try TPM12Sealer.seal($0, toPCRs: $1, tcsHost: nil, srk: srk)
        }
        let plan = try writer.plan(files, dropping: dropping)
        let outcome = try writer.commit(files, dropping: dropping)
        report(values: values, selection: selection, policy: Digest.zeros(.sha256), layout: layout, plan: plan, prev: outcome.previous, dryRun: false,
               tpm: "1.2", outcome: outcome)
        try afterSwap(outcome, layout: layout)
    }

    /// An error after the swap is not an error of the seal: the new set is in place. Said in
    /// one line on standard error, with its own exit status.
    func afterSwap(_ outcome: SealedSetWriter.Outcome, layout: AEMLayout) throws {
        guard !outcome.afterSwapErrors.isEmpty else { return }
        Terminal.warning("the new set is in place in \(layout.sealedDir), sealed; cleaning after the swap failed: " + outcome.afterSwapErrors.joined(separator: "; ") + " (the next seal, or check-boot after a confirmed boot, removes what is left)")
        throw ExitCode(ExitStatus.notCleaned)
    }

    /// PCR13 as now (AEM's initramfs extends the LUKS header(s) into it; unchanged by the
    /// update), PCR17-19 as predicted; every one checked as AEM's listbadpcrs checks.
    /// The values to seal to and, one sentence each, why AEM would refuse them.
    func checkedValues(_ p: LogPrediction, bank: HashAlgorithm, pcrs: [PCRIndex], tpm: (PCRValues, String)?) throws -> (PCRValues, [String]) {
        var values = PCRValues()
        var refusals = [String]()
        var source = ""
        if pcrs.contains(13) {
            let (now, from) = try currentPCR13(bank: bank, tpm: tpm)
            values[bank, 13] = now
            source = from
        }
        for pcr in pcrs where pcr != 13 {
            guard p.log.banks.contains(bank) else {
                throw SealError(.refused, "PCR\(pcr) \(bank) is not predicted: \(p.log.source) has no \(bank) digests, so the next \(bank) values are unknown; nothing is sealed")
            }
            values[bank, pcr] = p.predicted[bank, pcr] ?? .zeros(bank)
        }
        for pcr in pcrs {
            let v = values[bank, pcr]!
            if v.isAllZero || v.isAllOnes {
                let what: String
                if pcr == 13 {
                    what = "now (\(source)): AEM's initramfs has not extended the LUKS header(s) into it"
                } else if !p.events.contains(where: { $0.pcr == pcr }) {
                    what = "after the next launch, which extends nothing into it (tboot's default DA policy measures every module into PCR17)"
                } else {
                    what = "in the prediction"
                }
                refusals.append("PCR\(pcr) \(bank) would be all \(v.isAllZero ? "00" : "FF") \(what); AEM refuses such a PCR (listbadpcrs)")
            }
        }
        return (values, refusals)
    }

    /// PCR13 as the TPM this seals on has it (or, for a dry run's plan, as --pcrs says).
    func currentPCR13(bank: HashAlgorithm, tpm: (PCRValues, String)?) throws -> (Digest, String) {
        if let (values, source) = tpm {
            guard let v = values[bank, 13] else {
                throw SealError(.refused, "\(source) gave no PCR13 \(bank), which the seal keeps as it is now (is the \(bank) bank active?); nothing is sealed")
            }
            return (v, source)
        }
        let path = log.pcrs!
        guard let v = try PCRValuesFile.read(path: path)[bank, 13] else {
            throw SealError(.refused, "\(path) has no PCR13 \(bank), which the seal keeps as it is now: add it (\(bank == .sha1 ? "the TPM 1.2's /sys/class/tpm/tpm0/pcrs has it" : "tpm2_pcrread \(bank):13,17,18,19"))")
        }
        return (v, path)
    }

    /// The PCRs of the TPM this seals on, that the current log must replay to: PCR13 and the
    /// DRTM PCRs the log extends (PCR17 and 18 at least), in the log's banks the TPM keeps
    /// (TPM 2.0, through the TCTI it seals with), or in SHA-1 from the TPM 1.2 behind tcsd
    /// (trousers' Tspi_TPM_PcrRead: the TPM that tpm_sealdata and AEM's tpm_unsealdata use).
    func readTPM(_ family: TPMFamily, for drtm: DRTMEventLog) throws -> (PCRValues, String) {
        let pcrs = Set(drtm.events.map(\.pcr)).filter(\.isDynamic).union([13, 17, 18]).sorted()
        do {
            switch family {
            case .tpm12:
                return try LiveBoot.readTPM12(pcrs: pcrs)
            case .tpm20:
                return try LiveBoot.readTPM2(pcrs: pcrs, banks: Array(Set(drtm.banks + [.sha256])).sorted(),
                                             tcti: log.live.tcti, verbose: output.verbose, onlyActive: true)
            }
        } catch let e as AEMPCRError {
            throw LiveError(code: e.errorCode, "seal reads the PCRs of the TPM it seals on, and cannot: \(e)")
        }
    }

    func report(values: PCRValues, selection: PCRSelection, policy: Digest, layout: AEMLayout,
                plan: [(String, SealedSetWriter.Change)], prev: String?, dryRun: Bool, tpm: String = "2.0",
                refusals: [String] = [], outcome: SealedSetWriter.Outcome? = nil) {
        if output.json {
            Terminal.output(JSON.object([
                ("label", .string(label)), ("dry_run", .bool(dryRun)), ("tpm", .string(tpm)),
                ("selection", .string(selection.description)), ("policy_digest", tpm == "2.0" ? .string(policy.hex) : .null),
                ("pcrs", JSON.pcrs(values, banks: values.banks)),
                ("sealed_dir", .string(layout.sealedDir)),
                ("files", .array(plan.map { JSON.object([("name", .string($0.0)), ("change", .string($0.1.rawValue))]) })),
                ("previous", prev.map { .string($0) } ?? .null),
                ("would_refuse", .array(refusals.map { .string($0) })),
                ("kept", .array((outcome?.kept ?? []).map { JSON.object([("path", .string($0.path)), ("reason", .string($0.reason))]) })),
                ("cleanup_errors", .array((outcome?.afterSwapErrors ?? []).map { .string($0) })),
            ]))
            return
        }
        var out: TerminalText = Terminal.wrap(Terminal.bold(dryRun ? (refusals.isEmpty ? "Would seal" : "Would NOT seal") : "Sealed") + " \(label) for the next boot to \(selection)") + "\n"
        if let file = log.pcrs {
            out += Terminal.wrap("PCR13 and the current log's PCRs from \(file), not from the TPM: a plan only (seal itself reads the TPM it seals on).") + "\n"
        }
        for r in refusals { out += Terminal.wrap("Refused: \(r)") + "\n" }
        for bank in values.banks {
            for pcr in values.pcrs(in: bank) {
                out += Terminal.pad("PCR\(pcr)", 6) + Terminal.pad("\(bank)", 7) + (pcr == 13 ? " as now" : " predicted") + "\n"
                out += Terminal.digestLine(indent: 4, label: "", labelWidth: 0, hex: values[bank, pcr]!.hex) + "\n"
            }
        }
        if tpm == "2.0" { out += "PolicyPCR digest\n" + Terminal.digestLine(indent: 4, label: "", labelWidth: 0, hex: policy.hex) + "\n" }
        out += Terminal.wrap("Files in \(layout.sealedDir)\(dryRun ? " (nothing written):" : ":")") + "\n"
        for (name, change) in plan { out += "  " + Terminal.pad("\(name)", 28) + " \(change.rawValue)\n" }
        if plan.contains(where: { $0.1 == .left }) {
            out += Terminal.wrap("Entries marked left are not files of the set (a directory, a link, a FIFO): they stay in it as they are.") + "\n"
        }
        for k in outcome?.kept ?? [] { out += Terminal.wrap("Kept \(k.path): \(k.reason)") + "\n" }
        if let errors = outcome?.afterSwapErrors, !errors.isEmpty {
            out += Terminal.wrap("The new set is in place, but cleaning after the swap failed: \(errors.joined(separator: "; "))") + "\n"
        }
        if let prev { out += Terminal.wrap("The previous set is kept in \(prev) until check-boot confirms the next boot.") + "\n" }
        out += Terminal.wrap("AEM unseals from its boot device: write the set there too (--tpm-dir MOUNT/aem/tpms/ID). After the reboot: aem-pcr check-boot --label \(label)") + "\n"
        Terminal.output(Terminal.fold(out))
    }

    /// For a setup this tool cannot seal: what to expect and how to reseal with AEM itself.
    func printPlan(values: PCRValues, selection: PCRSelection, layout: AEMLayout, reason: String) {
        var out: TerminalText = Terminal.wrap(Terminal.bold("Cannot seal here") + ": \(reason). The plan:") + "\n"
        out += "After the reboot these PCRs should read:\n"
        for bank in values.banks {
            for pcr in values.pcrs(in: bank) {
                out += Terminal.pad("PCR\(pcr)", 6) + Terminal.pad("\(bank)", 7) + "\n"
                out += Terminal.digestLine(indent: 4, label: "", labelWidth: 0, hex: values[bank, pcr]!.hex) + "\n"
            }
        }
        out += Terminal.wrap("Check them after the reboot (AEM's unseal will fail once: the secret is sealed to the old values). If they match, the boot is the predicted one: reseal with AEM's own command, sudo anti-evil-maid-seal, which seals \(layout.sealedDir) to the values then current.") + "\n"
        Terminal.output(Terminal.fold(out))
    }
}

/// The current time as `20261130T042700Z`.
func utcNow() -> String {
    var t = time(nil)
    var tmv = tm()
    gmtime_r(&t, &tmv)
    var buf = [CChar](repeating: 0, count: 32)
    let n = strftime(&buf, buf.count, "%Y%m%dT%H%M%SZ", &tmv)
    return String(decoding: buf.prefix(n).map { UInt8(bitPattern: $0) }, as: UTF8.self)
}
