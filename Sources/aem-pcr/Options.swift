// SPDX-License-Identifier: Apache-2.0
import AEMPCR
import AEMPCRSeal
import AEMPCRTPM
import ArgumentParser
import Glibc

extension HashAlgorithm: ExpressibleByArgument {
    public init?(argument: String) { self.init(name: argument) }
    public static var allValueStrings: [String] { ["sha1", "sha256", "sha384", "sha512"] }
}
extension TPMFamily: ExpressibleByArgument {}
extension PCRMapping: ExpressibleByArgument {}
extension ExtendPolicy: ExpressibleByArgument {
    /// sm3 is read (to refuse it with the reason) but not offered.
    public static var allValueStrings: [String] { allCases.filter { $0 != .sm3 }.map(\.rawValue) }
}
extension GrubPlatform: ExpressibleByArgument {}
extension GrubCmdlineStyle: ExpressibleByArgument {}

/// Checks `--bank` values: known, computable, and not SM3 (tboot's SM3 path is broken).
func validateBanks(_ banks: [HashAlgorithm]) throws {
    for b in banks {
        if b == .sm3_256 {
            throw ValidationError("bank sm3_256: tboot's SM3 support is broken (modules are not measured), so nothing can be predicted for it")
        }
        if !b.isComputable {
            throw ValidationError("unknown bank '\(b)'; use sha1, sha256, sha384 or sha512")
        }
    }
}

/// `--bank` values once each in TCG order; sha1 and sha256 when none is given.
func requestedBanks(_ banks: [HashAlgorithm]) -> [HashAlgorithm] {
    banks.isEmpty ? [.sha1, .sha256] : Array(Set(banks)).sorted()
}

struct OutputOptions: ParsableArguments {
    @Flag(help: "Print one JSON object instead of text (see aem-pcr(8) for its schema).")
    var json = false

    @Flag(name: .shortAndLong, help: "Print more detail, and error codes with errors.")
    var verbose = false
}

/// Where the boot comes from: a grub.cfg entry, or tboot and modules named one by one.
struct BootOptions: ParsableArguments {
    @Option(name: .customLong("grub-cfg"), help: ArgumentHelp("Read the boot entry from this grub.cfg.", valueName: "file"))
    var grubCfg: String?

    @Option(help: ArgumentHelp("The entry to boot: its title, id or index; submenus joined by '>' as GRUB_DEFAULT names them.", valueName: "title|index"))
    var entry: String?

    @Option(name: .customLong("boot-dir"), help: ArgumentHelp("Where the paths of grub.cfg resolve: the partition GRUB reads.", valueName: "dir"))
    var bootDir = "/boot"

    @Option(name: .customLong("grub-platform"), help: ArgumentHelp("Firmware GRUB runs on, for grub.cfg conditions (tboot AEM boots pc).", valueName: "pc|efi"))
    var grubPlatform: GrubPlatform = .pc

    @Option(name: .customLong("grub-cmdline"), help: ArgumentHelp("How GRUB joins a line's arguments: fedora (Qubes, GRUB ≥ 2.04 with \\xHH kept), upstream (GRUB ≥ 2.04), plain (GRUB ≤ 2.02).", valueName: "style"))
    var grubCmdline: GrubCmdlineStyle = .fedora

    @Option(help: ArgumentHelp("tboot image (instead of --grub-cfg).", valueName: "file"))
    var tboot: String?

    @Option(name: .customLong("tboot-cmdline"), help: ArgumentHelp("tboot's command line as GRUB passes it (Qubes: 'placeholder logging=memory,serial').", valueName: "string"))
    var tbootCmdline = ""

    @Option(name: .customLong("module"), help: ArgumentHelp("A module in boot order: its file, then its command line ('xen.gz placeholder dom0_mem=…'); prefix --nounzip to load it raw. Repeatable.", valueName: "'file args…'"))
    var modules: [String] = []

    func validate() throws {
        if grubCfg != nil && tboot != nil {
            throw ValidationError("give either --grub-cfg (with --entry) or --tboot with --module, not both")
        }
        if grubCfg == nil && tboot == nil {
            throw ValidationError("name the boot: --grub-cfg FILE --entry TITLE, or --tboot FILE --module 'FILE ARGS…'")
        }
        if grubCfg != nil && !modules.isEmpty {
            throw ValidationError("--module is for --tboot; with --grub-cfg the modules come from the entry")
        }
        if grubCfg != nil && entry == nil {
            throw ValidationError("--grub-cfg needs --entry (a title, an id or an index such as 0)")
        }
    }

    /// A grub.cfg written for a /boot that is no partition of its own names `/boot/xen.gz`; with
    /// `--boot-dir /boot` that resolves to `/boot/boot/xen.gz`. Said before "no such file".
    func checkBootPrefix(_ spec: BootSpec) throws {
        var base = bootDir
        while base.count > 1 && base.hasSuffix("/") { base.removeLast() }
        guard base == "/boot" || base.hasSuffix("/boot") else { return }
        let files = [(spec.tbootPath, spec.grubEntry.map { "\($0.config):\($0.line)" } ?? spec.origin)]
            + spec.modules.map { ($0.path, $0.origin) }
        for (path, origin) in files where path.hasPrefix(base + "/boot/") {
            if access(path, F_OK) == 0 { continue }
            let parent = base == "/boot" ? "/" : String(base.dropLast("/boot".count))
            let named = "/" + path.dropFirst(base.count + 1)
            throw CodedError(.usage, "\(origin): \(named) resolves to \(path), no such file: grub.cfg's paths begin with /boot/ (a /boot that is not its own partition), so give --boot-dir \(parent)")
        }
    }

    /// The boot these options describe with `replace`'s files in place. A file the grub.cfg
    /// entry names (and no --replace stands in for) that is missing is said with where its
    /// path came from: the entry's line, resolved under --boot-dir.
    func bootSpec(replacing replace: ReplaceOptions) throws -> BootSpec {
        let entry = try bootSpec()
        let spec = try replace.apply(to: entry)
        guard let ref = entry.grubEntry else { return spec }
        let files = [(entry.tbootPath, spec.tbootPath, "\(ref.config):\(ref.line)")]
            + zip(entry.modules, spec.modules).map { ($0.path, $1.path, $0.origin) }
        var base = bootDir
        while base.hasSuffix("/") { base.removeLast() }
        for (path, now, origin) in files where path == now {
            var st = stat()
            guard stat(path, &st) != 0 && errno == ENOENT else { continue }
            let named = path.hasPrefix(base + "/") ? String(path.dropFirst(base.count)) : path
            let dir = bootDir == "/boot" ? "/boot (the default)" : bootDir
            throw CodedError(.fileNotFound, "\(origin): \(named), resolved under --boot-dir \(dir), is \(path): no such file; give --boot-dir the directory GRUB reads this entry's files from (the boot partition's mount point), or --replace ROLE=FILE for a file not installed there yet")
        }
        return spec
    }

    /// The boot these options describe.
    func bootSpec() throws -> BootSpec {
        if let cfgPath = grubCfg {
            let cfg = try GrubConfig(path: cfgPath)
            let e = try cfg.entry(entry!, platform: grubPlatform, bootDir: bootDir)
            let spec = try BootSpec(entry: e, config: cfg, bootDir: bootDir, style: grubCmdline)
            try checkBootPrefix(spec)
            return spec
        }
        let mods = try modules.map { line -> BootSpec.Module in
            // Bytes as given: the command line is everything after the file name, as written.
            let space = UInt8(ascii: " ")
            var rest = RawArgument.bytes(line)[...]
            func word() -> ArraySlice<UInt8> {
                while rest.first == space { rest = rest.dropFirst() }
                let w = rest.prefix { $0 != space }
                return w
            }
            var noUnzip = false
            if word().elementsEqual("--nounzip".utf8) { noUnzip = true; rest = rest.dropFirst("--nounzip".count) }
            let file = word()
            guard !file.isEmpty else {
                throw CodedError(.usage, "--module '\(Escape.text(line, limit: 100))' names no file")
            }
            rest = rest.dropFirst(file.count)
            if rest.first == space { rest = rest.dropFirst() }
            return BootSpec.Module(path: String(decoding: file, as: UTF8.self), cmdline: Array(rest), noUnzip: noUnzip,
                                   origin: "--module")
        }
        return BootSpec(tbootPath: tboot!, tbootCmdline: RawArgument.bytes(tbootCmdline), modules: mods)
    }
}

/// Files to boot in place of the ones the entry names, command lines kept (predict, diff, seal).
struct ReplaceOptions: ParsableArguments {
    @Option(name: .customLong("replace"), help: ArgumentHelp("Predict with FILE in place of the file the entry names for ROLE (tboot, xen, kernel, initramfs, or a module index from 0), keeping its command line. Repeatable.", valueName: "role=file"))
    var replacements: [String] = []

    /// The boot with the replacements applied; one-line errors (exit 2) for an unknown role, a
    /// missing or unreadable file, or a module the boot does not have.
    func apply(to spec: BootSpec) throws -> BootSpec {
        try spec.replacing(replacements.map { try BootReplacement(parsing: $0) })
    }
}

/// How tboot will measure: TPM family, mapping, extend policy, release, policy, banks.
struct LaunchOptions: ParsableArguments {
    @Option(help: ArgumentHelp("TPM family: /sys/class/tpm/tpm0/tpm_version_major says 1 or 2. With --event-log, the log's format tells.", valueName: "1.2|2.0"))
    var tpm: TPMFamily?

    @Option(name: .customLong("pcr-map"), help: ArgumentHelp("PCR mapping: legacy (TPM 1.2 default) or da (TPM 1.2 with pcr_map=da; TPM 2.0 always).", valueName: "legacy|da"))
    var pcrMap: PCRMapping?

    @Option(help: ArgumentHelp("tboot's extpol= on TPM 2.0 (default: sha256 for tboot ≥ 1.9.12, else sha1).", valueName: "sha1|sha256|sha384|sha512|embedded|agile"))
    var extpol: ExtendPolicy?

    @Option(name: .customLong("tboot-version"), help: ArgumentHelp("The tboot release that will boot (default 1.10.5, Debian 12 and Qubes 4.2).", valueName: "x.y.z"))
    var tbootVersion = TbootVersion.debian12.description

    @Option(help: ArgumentHelp("tboot's verified-launch policy as written by tb_polgen, when the TPM holds one (default: tboot's built-in policy).", valueName: "file"))
    var policy: String?

    @Option(name: .customLong("bank"), help: ArgumentHelp("A PCR bank active in the TPM, to predict. Repeatable (default: sha1 on TPM 1.2; the extpol's bank, or sha1 and sha256 for embedded/agile).", valueName: "bank"))
    var banks: [HashAlgorithm] = []

    func validate() throws {
        try validateBanks(banks)
        if TbootVersion(tbootVersion) == nil {
            throw ValidationError("--tboot-version '\(tbootVersion)' is not a version such as 1.10.5")
        }
    }

    /// The configuration these options and the next boot's tboot command line (its `pcr_map=`
    /// and `extpol=`) describe.
    func configuration(tbootCmdline: String) throws -> LaunchConfiguration {
        let line = try TbootCommandLine(tbootCmdline)
        let family = try TPMFamilyResolver(stated: tpm).family(for: .nextBoot).family
        let mapping = try TbootCommandLine.merge(pcrMap, family == .tpm12 ? line.pcrMap : nil, name: "pcr_map")
        let policy = try TbootCommandLine.merge(extpol, family == .tpm20 ? line.extendPolicy : nil, name: "extpol")
        return try LaunchConfiguration(tpm: family, mapping: mapping, extendPolicy: policy,
                                tbootVersion: TbootVersion(tbootVersion)!,
                                activeBanks: banks.isEmpty ? nil : banks)
    }

    /// The configuration the current boot's log shows, checked against these options.
    func configuration(for log: DRTMEventLog, tbootCmdline: String) throws -> LaunchConfiguration {
        let line = try TbootCommandLine(tbootCmdline)
        let family = try TPMFamilyResolver(stated: tpm).family(log: log, for: .nextBoot).family
        return try LogPredictor.configuration(for: log, tpm: family, mapping: pcrMap, extendPolicy: extpol,
                                       nextBoot: line,
                                       tbootVersion: TbootVersion(tbootVersion)!,
                                       banks: banks.isEmpty ? nil : banks)
    }

    /// The next boot of `spec` predicted from the current boot's log (verified, or not as the
    /// caller says).
    func predict(_ current: PredictionLog, boot spec: BootSpec, allowPolicyChange: Bool, forceOffered: Bool = true) throws -> LogPrediction {
        let predictor = Predictor(configuration: try configuration(for: current.log, tbootCmdline: String(decoding: spec.tbootCmdline, as: UTF8.self)),
                                  customPolicy: try customPolicy())
        return try LogPredictor.predict(current, boot: spec, predictor: predictor, allowPolicyChange: allowPolicyChange,
                                        forceOffered: forceOffered)
    }

    func customPolicy() throws -> TbootPolicy? {
        guard let p = policy else { return nil }
        return try TbootPolicy(bytes: FileReader.readAll(path: p, limit: 1 << 16), source: p)
    }
}

/// The current boot's DRTM log and the PCR values it must replay to: files, or the running
/// machine (the TXT heap and the TPM) for what is not given (seal: with no --force).
struct CurrentBootOptions: ParsableArguments {
    @Option(name: .customLong("event-log"), help: ArgumentHelp("The current boot's DRTM event log: a raw log, a TXT heap dump (aem-pcr log dump) or txt-stat's text (default: read from the TXT heap, as root).", valueName: "file"))
    var eventLog: String?

    @Option(help: ArgumentHelp("The current PCR values (tpm2_pcrread's output, this tool's --json, or a TPM 1.2's sysfs pcrs); the log must replay to them (default: read from the TPM).", valueName: "file"))
    var pcrs: String?

    @OptionGroup var live: LiveOptions
}

/// `CurrentBootOptions` and `--force` (predict, diff): the log used even when it does not verify.
struct EventLogOptions: ParsableArguments {
    @OptionGroup var current: CurrentBootOptions

    @Flag(help: "Use the event log even when it does not verify against the PCR values (or they cannot be read).")
    var force = false

    var eventLog: String? { current.eventLog }
    var pcrs: String? { current.pcrs }
    var live: LiveOptions { current.live }

    /// The current boot these options name, read once per command.
    func currentBoot(verbose: Bool) -> CurrentBoot {
        live.currentBoot(eventLog: eventLog, pcrs: pcrs, verbose: verbose)
    }

    /// The next boot from the current log: tboot's prediction, or per PCR what a TrenchBoot
    /// launch lets be copied forward and why not (`SecureLaunchView`).
    enum CurrentPrediction {
        case tboot(LogPrediction, VerificationReport?)
        case secureLaunch(SecureLaunchView)
    }

    /// Verifies the log (unless --force), then predicts the next boot from it and the boot's
    /// files (`predict --event-log`, `diff`); a TrenchBoot log gets its per-PCR statement.
    func prediction(boot: BootOptions, launch: LaunchOptions, replace: ReplaceOptions, verbose: Bool) throws -> CurrentPrediction {
        let current = try currentBoot(verbose: verbose).predictionLog(force: force)
        let spec = try replace.apply(to: boot.bootSpec())
        if DRTMLaunch.recognise(current.log).isTrenchBoot {
            return .secureLaunch(try SecureLaunchView(current, boot: spec, onlyBanks: launch.banks))
        }
        return .tboot(try launch.predict(current, boot: spec, allowPolicyChange: force), current.report)
    }

    /// Verifies the log (unless --force), then predicts the next boot from it and the boot's
    /// files (`predict --event-log`, `diff`).
    func predict(boot: BootOptions, launch: LaunchOptions, replace: ReplaceOptions, verbose: Bool) throws -> (LogPrediction, VerificationReport?) {
        let current = try currentBoot(verbose: verbose).predictionLog(force: force)
        let spec = try boot.bootSpec(replacing: replace)
        return (try launch.predict(current, boot: spec, allowPolicyChange: force), current.report)
    }
}
