import AEMPCR
import AEMPCRSeal
import AEMPCRTPM
import ArgumentParser
#if canImport(Glibc)
import Glibc
#endif

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
            predict. The SRK password is read from --srk-password-file or asked on the \
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
        if srkWellKnown && srkPasswordFile != nil {
            throw ValidationError("--srk-well-known and --srk-password-file both name the SRK secret: give one")
        }
        if !AEMLayout.isValidLabel(label) {
            throw ValidationError("--label '\(label)' must be letters, digits, '.', '_' or '-' (AEM's labels are aem plus a suffix)")
        }
    }

    func run() throws {
        Terminal.verbose = output.verbose
        // No core dump, no ptrace by the same user: before any secret is read.
        try SecretProcess.harden()
        defer {
            if output.verbose && SecretBuffer.lockFailure != 0 {
                Terminal.writeError("aem-pcr: note: secrets could not be locked in memory (mlock: \(String(cString: strerror(SecretBuffer.lockFailure)))): they may have been written to swap\n")
            }
        }
        // A TCTI that logs or runs commands is refused before the TPM is opened or a password asked.
        if let refusal = TCTIChoice.resolve(option: log.live.tcti, environment: Environment.variables).refusal { throw refusal }
        let layout = try AEMLayout(label: label, secretsRoot: aemDir, sealedRoot: tpmDir)
        let (p, _) = try log.predict(boot: boot, launch: launch, replace: replace, verbose: output.verbose)
        // The family the log shows (or --tpm); the machine's only when the log cannot say.
        let family = try launch.tpm ?? LogPredictor.facts(of: p.log).tpm ?? LiveBoot.family(tcti: log.live.tcti)
        let bank: HashAlgorithm = family == .tpm20 ? .sha256 : .sha1
        let sealPCRs = try AEMConfig.sealPCRs(path: aemConf)
        let other = sealPCRs.filter { ![13, 17, 18, 19].contains($0.rawValue) }
        let selection = try PCRSelection(banks: [bank], pcrs: sealPCRs)
        let known = sealPCRs.filter { [13, 17, 18, 19].contains($0.rawValue) }
        let (values, refusals) = try checkedValues(p, bank: bank, pcrs: known)
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

        // Checked before a password is asked or the TPM is opened.
        let secrets = AEMSealer.presentSecrets(layout)
        if secrets.isEmpty { throw SealError(.layout, "no secret to seal in \(layout.secretsDir) (secret.txt, secret.key, secret.otp or secret.fre): set up AEM first") }
        if dryRun {
            let names = (family == .tpm20 ? ["key.pub", "key.priv", "key.pcrs"] : []) + secrets.map(AEMLayout.sealedName)
                + [AEMLayout.predictionFile]
            let plan = try writer.plan(names.map { SealedFile(name: $0, bytes: []) }, dropping: Set(secrets.map { "secret.\($0).sealed" }))
            report(values: values, selection: selection, policy: policy, layout: layout, plan: plan, prev: nil, dryRun: true, tpm: tpm,
                   refusals: refusals)
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
        let prev = try writer.commit(files, dropping: dropping)
        report(values: values, selection: selection, policy: policy, layout: layout, plan: plan, prev: prev, dryRun: false)
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
        let prev = try writer.commit(files, dropping: dropping)
        report(values: values, selection: selection, policy: Digest.zeros(.sha256), layout: layout, plan: plan, prev: prev, dryRun: false,
               tpm: "1.2")
    }

    /// PCR13 as now (AEM's initramfs extends the LUKS header(s) into it; unchanged by the
    /// update), PCR17-19 as predicted; every one checked as AEM's listbadpcrs checks.
    /// The values to seal to and, one sentence each, why AEM would refuse them.
    func checkedValues(_ p: LogPrediction, bank: HashAlgorithm, pcrs: [PCRIndex]) throws -> (PCRValues, [String]) {
        var values = PCRValues()
        var refusals = [String]()
        var source = ""
        if pcrs.contains(13) {
            let (now, from) = try currentPCR13(bank: bank)
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

    func currentPCR13(bank: HashAlgorithm) throws -> (Digest, String) {
        if let path = log.pcrs {
            guard let v = try PCRValuesFile.read(path: path)[bank, 13] else {
                throw SealError(.refused, "\(path) has no PCR13 \(bank), which the seal keeps as it is now: add it (\(bank == .sha1 ? "the TPM 1.2's /sys/class/tpm/tpm0/pcrs has it" : "tpm2_pcrread \(bank):13,17,18,19"))")
            }
            return (v, path)
        }
        let (values, source) = try LiveBoot.read(pcrs: [13], banks: [bank], tcti: log.live.tcti, verbose: output.verbose)
        return (values[bank, 13]!, source)
    }

    func report(values: PCRValues, selection: PCRSelection, policy: Digest, layout: AEMLayout,
                plan: [(String, SealedSetWriter.Change)], prev: String?, dryRun: Bool, tpm: String = "2.0",
                refusals: [String] = []) {
        if output.json {
            print(JSON.object([
                ("label", .string(label)), ("dry_run", .bool(dryRun)), ("tpm", .string(tpm)),
                ("selection", .string(selection.description)), ("policy_digest", tpm == "2.0" ? .string(policy.hex) : .null),
                ("pcrs", JSON.pcrs(values, banks: values.banks)),
                ("sealed_dir", .string(layout.sealedDir)),
                ("files", .array(plan.map { JSON.object([("name", .string($0.0)), ("change", .string($0.1.rawValue))]) })),
                ("previous", prev.map { .string($0) } ?? .null),
                ("would_refuse", .array(refusals.map { .string($0) })),
            ]).render())
            return
        }
        var out = Terminal.wrap(Terminal.bold(dryRun ? (refusals.isEmpty ? "Would seal" : "Would NOT seal") : "Sealed") + " \(label) for the next boot to \(selection)") + "\n"
        for r in refusals { out += Terminal.wrap("Refused: " + r) + "\n" }
        for bank in values.banks {
            for pcr in values.pcrs(in: bank) {
                out += Terminal.pad("PCR\(pcr)", 6) + Terminal.pad(bank.description, 7) + (pcr == 13 ? " as now" : " predicted") + "\n"
                out += Terminal.digestLine(indent: 4, label: "", labelWidth: 0, hex: values[bank, pcr]!.hex) + "\n"
            }
        }
        if tpm == "2.0" { out += "PolicyPCR digest\n" + Terminal.digestLine(indent: 4, label: "", labelWidth: 0, hex: policy.hex) + "\n" }
        out += Terminal.wrap("Files in \(layout.sealedDir)" + (dryRun ? " (nothing written):" : ":")) + "\n"
        for (name, change) in plan { out += "  " + Terminal.pad(name, 28) + " " + change.rawValue + "\n" }
        if let prev { out += Terminal.wrap("The previous set is kept in \(prev) until check-boot confirms the next boot.") + "\n" }
        out += Terminal.wrap("AEM unseals from its boot device: write the set there too (--tpm-dir MOUNT/aem/tpms/ID). After the reboot: aem-pcr check-boot --label \(label)") + "\n"
        print(fold(out), terminator: "")
    }

    /// For a setup this tool cannot seal: what to expect and how to reseal with AEM itself.
    func printPlan(values: PCRValues, selection: PCRSelection, layout: AEMLayout, reason: String) {
        var out = Terminal.wrap(Terminal.bold("Cannot seal here") + ": \(reason). The plan:") + "\n"
        out += "After the reboot these PCRs should read:\n"
        for bank in values.banks {
            for pcr in values.pcrs(in: bank) {
                out += Terminal.pad("PCR\(pcr)", 6) + Terminal.pad(bank.description, 7) + "\n"
                out += Terminal.digestLine(indent: 4, label: "", labelWidth: 0, hex: values[bank, pcr]!.hex) + "\n"
            }
        }
        out += Terminal.wrap("Check them after the reboot (AEM's unseal will fail once: the secret is sealed to the old values). If they match, the boot is the predicted one: reseal with AEM's own command, sudo anti-evil-maid-seal, which seals \(layout.sealedDir) to the values then current.") + "\n"
        print(fold(out), terminator: "")
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

/// Lines longer than 80 columns (a long path is one word that wrapping cannot break) cut
/// into 80-column pieces, continued with two spaces.
func fold(_ text: String) -> String {
    text.split(separator: "\n", omittingEmptySubsequences: false).map { line -> String in
        var rest = Substring(line)
        var pieces = [String]()
        while rest.count > 80 {
            pieces.append(String(rest.prefix(80)))
            rest = "  " + rest.dropFirst(80)
        }
        pieces.append(String(rest))
        return pieces.joined(separator: "\n")
    }.joined(separator: "\n")
}
