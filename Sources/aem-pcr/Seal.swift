// SPDX-License-Identifier: Apache-2.0
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
            against the PCRs; seal takes no --force), then makes Anti Evil Maid's sealed set \
            for the predicted values, in AEM's own formats, so that AEM's unseal shows the \
            secret at the next boot without a blind boot in between: on a TPM 2.0 a new sealing \
            object under AEM's SRK (0x81000001) with the PolicyPCR of sha256:13,17,18,19 \
            (PCR13 predicted from the LUKS headers when the PCR13 model holds, see --current-cmdline, else as now; PCR17-19 predicted) as its policy and 16 random bytes as data \
            (key.pub, key.priv, key.pcrs), and each secret.X re-encrypted into \
            secret.X.sealed2 as 'openssl enc -aes-256-ctr -pbkdf2' with the hex of those bytes. \
            Refuses a PCR that would be all 00 or all FF, or that the log does not let it \
            predict. The PCRs come from the TPM it seals on, always (TPM 2.0: the --tcti it \
            seals through; TPM 1.2: tcsd, through trousers): the current log must replay to \
            them. --pcrs FILE is accepted only with \
            --dry-run, for a plan from saved values. The SRK password is read from --srk-password-file or asked on the \
            terminal, never from the command line or the environment.

            The new set replaces the old one as a whole (an interruption leaves one or the \
            other); the old one is kept as LABEL.prev-TIME until 'check-boot' confirms the next \
            boot. AEM reads the set from its boot device at boot: seal writes that copy too, \
            in aem/tpms/ID/LABEL on the device (ID from the link /var/lib/tpm -> tpms/ID), \
            found as AEM finds it (aem.uuid= on the kernel command line, else \
            /dev/disk/by-label/LABEL) and mounted privately when it is not mounted; no device, \
            no seal (--aem-device, --aem-mount or --no-aem-device say otherwise). On a TPM 1.2 each \
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

    @Option(name: .customLong("aem-conf"), help: ArgumentHelp("AEM's configuration, whose SEAL names the PCRs to seal to (default when absent: 13, 17, 18, 19; on a TrenchBoot boot 13, 17, 18, its AEM's SEAL).", valueName: "file"))
    var aemConf = AEMConfig.defaultPath

    @Option(name: .customLong("srk-password-file"), help: ArgumentHelp("Read the SRK password from this file (trailing newlines dropped, as AEM's $(cat) does); default: ask on the terminal.", valueName: "file"))
    var srkPasswordFile: String?

    @Flag(name: .customLong("srk-well-known"), help: "TPM 1.2: the SRK has the well-known secret (AEM set up without an SRK password; its tpm_unsealdata -z).")
    var srkWellKnown = false

    @Flag(name: .customLong("dry-run"), help: "Show the predicted values, the policy and what would change; seal nothing.")
    var dryRun = false

    @OptionGroup var aemDevice: AEMDeviceOptions
    @OptionGroup var boot: BootOptions
    @OptionGroup var replace: ReplaceOptions
    @OptionGroup var launch: LaunchOptions
    /// The current boot's log and PCRs, with no --force: seal never seals to a log that does not verify.
    @OptionGroup var log: CurrentBootOptions
    @OptionGroup var luks: LUKSSealOptions
    @OptionGroup var output: OutputOptions

    func validate() throws {
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
        // /var/lib/tpm as AEM has it (the link tpms/ID), and the set's copy on the AEM device.
        let (tpmRoot, deviceCopy, deviceRefusal) = try aemDevice.prepare(label: label, tpmDir: tpmDir, readOnly: dryRun)
        defer { deviceCopy?.release() }
        let layout = try AEMLayout(label: label, secretsRoot: aemDir, sealedRoot: tpmRoot.real)
        // The current boot, through one session with the TPM this seals on (TPM 1.2: tcsd).
        let current = log.live.currentBoot(eventLog: log.eventLog, pcrs: log.pcrs, verbose: output.verbose,
                                           stated: launch.tpm, familyFromLog: true, tpm12: .tcsd)
        // The family of the TPM this seals on, and the log verified against its PCRs (PCR13,
        // which is sealed as it is, in the same read). A file (--pcrs) only for a dry run's plan.
        let (family, verified) = try current.forSeal()
        // TrenchBoot: refused unless every PCR its SEAL names is predicted, each named with why.
        let secureLaunch = DRTMLaunch.recognise(verified.log)
        if secureLaunch.isTrenchBoot {
            let statements = try SecureLaunchPrediction.statements(verified.log, boot: boot.bootSpec(replacing: replace))
            // No anti-evil-maid.conf: TrenchBoot AEM's own SEAL, PCR13, 17 and 18.
            let seal = access(aemConf, F_OK) == 0 ? try AEMConfig.sealPCRs(path: aemConf) : [13, 17, 18]
            throw CodedError(.secureLaunchNotPredicted, (SecureLaunchView.refusal(launch: secureLaunch, statements: statements, sealPCRs: seal)
                ?? "\(secureLaunch.description): every sealed PCR is predicted, but this version does not seal a TrenchBoot boot") + "; nothing is sealed")
        }
        let p = try launch.predict(.verified(verified), boot: boot.bootSpec(replacing: replace), allowPolicyChange: false, forceOffered: false)
        // AEM's rules: SEAL's PCRs, PCR13 as now, listbadpcrs.
        var sealPlan = try AEMSealPlan(prediction: p, family: family, sealPCRs: AEMConfig.sealPCRs(path: aemConf),
                                       now: verified.pcrs, source: verified.pcrSource, fromTPM: log.pcrs == nil, conf: aemConf)
        // PCR13: the LUKS model checked against the TPM, then predicted, kept or refused.
        let pcr13Predicted = try luks.apply(to: &sealPlan, files: p.files, fromTPM: log.pcrs == nil, dryRun: dryRun)
        let (values, refusals, selection) = (sealPlan.values, sealPlan.refusals, sealPlan.selection)
        if !dryRun, let first = refusals.first { throw CodedError(.sealRefused, first + "; nothing is sealed") }
        if !sealPlan.unsupported.isEmpty {
            printPlan(values: values, selection: selection, layout: layout,
                      reason: "SEAL in \(aemConf) names \(sealPlan.unsupported.map { "PCR\($0)" }.joined(separator: ", ")), which this tool does not seal to (it seals PCR13 as now and PCR17-19 predicted)")
            throw ExitCode(ExitStatus.mismatch)
        }
        let record = try sealPlan.record(p, label: label, sealedAt: utcStamp())
        let policy = record.policyDigest
        let writer = SealedSetWriter(target: layout.sealedDir)
        let tpm = family == .tpm20 ? "2.0" : "1.2"
        // A directory another user can write: refused before a password is asked.
        let unsafeDirectory = writer.unsafeDirectory()
        if !dryRun, let unsafeDirectory { throw CodedError(.sealRefused, unsafeDirectory) }
        if !dryRun, let why = deviceCopy?.writer.unsafeDirectory() { throw CodedError(.sealRefused, why) }

        // Checked before a password is asked.
        let secrets = try AEMSealer.secretsToSeal(layout)
        if dryRun {
            let names = (family == .tpm20 ? ["key.pub", "key.priv", "key.pcrs"] : []) + secrets.map(AEMLayout.sealedName)
                + [AEMLayout.predictionFile]
            let plan = try writer.plan(names.map { SealedFile(name: $0, bytes: []) }, dropping: Set(secrets.map { "secret.\($0).sealed" }))
            let wouldRefuse = refusals + [unsafeDirectory, deviceRefusal].compactMap { $0 }
            report(values: values, selection: selection, policy: policy, layout: layout, plan: plan, prev: nil, dryRun: true, tpm: tpm, pcr13Predicted: pcr13Predicted,
                   refusals: wouldRefuse,
                   device: try deviceCopy.map { AEMDeviceOptions.Report(copy: $0, plan: try $0.plan(after: plan)) },
                   deviceRefused: deviceRefusal != nil)
            return
        }
        if family == .tpm20 && srkWellKnown {
            throw CodedError(.usage, "--srk-well-known is for a TPM 1.2 SRK; AEM's TPM 2.0 SRK (0x81000001) has a password: give --srk-password-file or answer the prompt")
        }
        // Sealed through the session the PCRs were read in.
        let session = try current.source(family: family)
        if let tcsd = session as? TPM12TcsdSource {
            try sealTPM12(tcsd, values: values, selection: selection, layout: layout, secrets: secrets, record: record, writer: writer, device: deviceCopy, pcr13Predicted: pcr13Predicted)
            return
        }
        guard let tpm2 = session as? TPM2PCRSource else {
            throw CodedError(.usage, "seal reads and seals through one TPM, and \(session.name) is not a TPM \(family.rawValue) it can seal on")
        }
        let password = try srkPasswordFile.map { try AEMSealer.readSRKPassword(path: $0) }
            ?? AEMSealer.promptSRKPassword("TPM SRK password: ")
        let (files, dropping) = try AEMSealer.tpm2Files(device: tpm2.device, srkPassword: password, policy: policy,
                                                        selection: selection, layout: layout, secrets: secrets, prediction: record)
        let plan = try writer.plan(files, dropping: dropping)
        let outcome = try writer.commit(files, dropping: dropping)
        let copied = try aemDevice.write(deviceCopy, from: layout.sealedDir)
        report(values: values, selection: selection, policy: policy, layout: layout, plan: plan, prev: outcome.previous, dryRun: false,
               pcr13Predicted: pcr13Predicted, outcome: outcome, device: copied)
        try afterSwap(outcome, layout: layout, device: copied)
    }

    /// TPM 1.2: each secret sealed by TPM12Sealer (trousers, through tcsd) to the predicted
    /// values, in tpm_sealdata's file, named secret.X.sealed2 as AEM names it.
    func sealTPM12(_ tcsd: TPM12TcsdSource, values: PCRValues, selection: PCRSelection, layout: AEMLayout, secrets: [String],
                   record: SealedPrediction, writer: SealedSetWriter, device deviceCopy: AEMDeviceCopy?, pcr13Predicted: Bool) throws {
        let srk: TPM12Sealer.SRKSecret
        if srkWellKnown {
            srk = .wellKnown
        } else {
            let password = try srkPasswordFile.map { try AEMSealer.readSRKPassword(path: $0) }
                ?? AEMSealer.promptSRKPassword("TPM SRK password: ")
            srk = .password(password)
        }
        let (files, dropping) = try AEMSealer.tpm12Files(values: values, layout: layout, secrets: secrets, prediction: record) {
            try tcsd.seal($0, toPCRs: $1, srk: srk)
        }
        let plan = try writer.plan(files, dropping: dropping)
        let outcome = try writer.commit(files, dropping: dropping)
        let copied = try aemDevice.write(deviceCopy, from: layout.sealedDir)
        report(values: values, selection: selection, policy: Digest.zeros(.sha256), layout: layout, plan: plan, prev: outcome.previous, dryRun: false,
               tpm: "1.2", pcr13Predicted: pcr13Predicted, outcome: outcome, device: copied)
        try afterSwap(outcome, layout: layout, device: copied)
    }

    /// An error after the swap is not an error of the seal: the new set is in place. Said in
    /// one line on standard error, with its own exit status.
    func afterSwap(_ outcome: SealedSetWriter.Outcome, layout: AEMLayout, device: AEMDeviceOptions.Report? = nil) throws {
        let errors = outcome.afterSwapErrors + (device?.errors ?? [])
        guard !errors.isEmpty else { return }
        Terminal.warning("the new set is in place in \(layout.sealedDir)\(device.map { " and \($0.place)" } ?? ""), sealed; cleaning after the swap failed: " + errors.joined(separator: "; ") + " (the next seal, or check-boot after a confirmed boot, removes what is left)")
        throw ExitCode(ExitStatus.notCleaned)
    }

    func report(values: PCRValues, selection: PCRSelection, policy: Digest, layout: AEMLayout,
                plan: [(String, SealedSetWriter.Change)], prev: String?, dryRun: Bool, tpm: String = "2.0", pcr13Predicted: Bool = false,
                refusals: [String] = [], outcome: SealedSetWriter.Outcome? = nil, device: AEMDeviceOptions.Report? = nil,
                deviceRefused: Bool = false) {
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
                ("aem_device", device?.json ?? .null),
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
                out += Terminal.pad("PCR\(pcr)", 6) + Terminal.pad("\(bank)", 7) + (pcr == 13 && !pcr13Predicted ? " as now" : " predicted") + "\n"
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
        if let device { out += device.text(dryRun: dryRun) }
        if !refusals.isEmpty {
            // A dry run that a seal would refuse: no reboot to check yet, so no check-boot command.
            out += Terminal.wrap("seal would refuse for the reason\(refusals.count == 1 ? "" : "s") above: resolve \(refusals.count == 1 ? "it" : "them") and run the same command without --dry-run before rebooting.") + "\n"
            Terminal.output(Terminal.fold(out))
            return
        }
        out += aemDevice.afterword(device, tpmDir: tpmDir, deviceRefused: deviceRefused) + "\n"
        // The command after fold: its lines are made to be pasted, a quoted word never broken.
        Terminal.output(Terminal.fold(out) + Terminal.command(checkBootCommand) + "\n")
    }

    /// check-boot's command for the set this seal writes: every option that names the set or the
    /// TPM (--tpm-dir, the AEM device's, --tcti), paths absolute.
    var checkBootCommand: [[String]] {
        var words = [["aem-pcr", "check-boot"], ["--label", label]]
        if tpmDir != AEMLayout.defaultSealedRoot { words.append(["--tpm-dir", Terminal.absolute(tpmDir)]) }
        if !aemDevice.commandWords.isEmpty { words.append(aemDevice.commandWords) }
        if let tcti = log.live.tcti { words.append(["--tcti", LiveOptions.absoluteTCTI(tcti)]) }
        return words
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
