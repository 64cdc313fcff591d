/// Which TCTI (tpm2-tss transport) to open, and where that choice came from, so every output
/// that used the TPM can say what it read.
public struct TCTIChoice: Sendable, Equatable, CustomStringConvertible {
    /// The configuration in the TCTI loader's syntax: `device:/dev/tpmrm0`, `swtpm:path=…`.
    public let configuration: String
    /// Where it came from: `--tcti`, `TPM2TOOLS_TCTI`, `TCTI` or `default`.
    public let origin: String

    /// The kernel's resource manager: what tpm2-tools uses on a machine with a TPM 2.0.
    public static let defaultConfiguration = "device:/dev/tpmrm0"

    public init(configuration: String, origin: String) {
        self.configuration = configuration
        self.origin = origin
    }

    /// `--tcti`, else `TPM2TOOLS_TCTI` or `TCTI` from the environment (as tpm2-tools reads them),
    /// else the kernel's resource manager named explicitly — never the loader's own default
    /// search, which can reach a stray simulator on localhost.
    public static func resolve(option: String?, environment: [String: String]) -> TCTIChoice {
        if let o = option, !o.isEmpty { return TCTIChoice(configuration: o, origin: "--tcti") }
        for name in ["TPM2TOOLS_TCTI", "TCTI"] {
            if let v = environment[name], !v.isEmpty { return TCTIChoice(configuration: v, origin: name) }
        }
        return TCTIChoice(configuration: defaultConfiguration, origin: "default")
    }

    /// The device path of a `device:` configuration (`device` alone means tpm2-tss's default,
    /// /dev/tpm0), or nil for other TCTIs.
    public var devicePath: String? {
        let parts = configuration.split(separator: ":", maxSplits: 1, omittingEmptySubsequences: false)
        guard parts.first == "device" else { return nil }
        if parts.count == 1 || parts[1].isEmpty { return "/dev/tpm0" }
        return String(parts[1])
    }

    public var description: String {
        origin == "default" ? configuration : "\(configuration), from \(origin)"
    }
}
