// SPDX-License-Identifier: Apache-2.0
import AEMPCR

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

    /// The TCTIs aem-pcr opens, by the name the loader takes before the first ':': the kernel's
    /// device (`/dev/tpmrm0`, `/dev/tpm0`), the two software TPMs' sockets (swtpm, the
    /// Microsoft simulator) and the access broker (tpm2-abrmd). Every other TCTI is refused:
    /// `pcap` writes every command and response, secrets included, to a file; `cmd` runs a
    /// command to carry them; the others (libtpms, spi-*, i2c-*, a library path) are not a TPM
    /// a user seals on, and a name outside the list may load any library.
    public static let allowedNames = ["device", "swtpm", "mssim", "tabrmd"]

    /// The TCTI's name: what comes before the first ':' (the loader's split).
    public var name: String {
        String(configuration.prefix { $0 != ":" })
    }

    /// What follows the name (empty: the TCTI's own default).
    var arguments: String {
        guard let colon = configuration.firstIndex(of: ":") else { return "" }
        return String(configuration[configuration.index(after: colon)...])
    }

    /// The configuration the loader is given: the allowed name spelled as its library's
    /// soname (`libtss2-tcti-device.so.0:/dev/tpmrm0`), so that the loader never tries the bare
    /// name as a file first.
    var loaderConfiguration: String {
        "libtss2-tcti-\(name).so.0" + (arguments.isEmpty ? "" : ":" + arguments)
    }

    /// Why this TCTI is refused, or nil when it is one of `allowedNames`.
    public var refusal: CodedError? {
        if TCTIChoice.allowedNames.contains(name) { return nil }
        let why: String
        switch name {
        case "pcap": why = "it writes every TPM command and answer, secrets included, to a file"
        case "cmd": why = "it runs a command to carry the TPM commands"
        case "": why = "it names no TCTI (the loader would search for one)"
        default: why = "it is not one of them"
        }
        return CodedError(.tpmTCTIRefused, "refusing TCTI '\(configuration)'\(origin == "default" ? "" : " (from \(origin))"): aem-pcr reaches a TPM 2.0 only through the device, swtpm, mssim or tabrmd TCTI, and \(why)")
    }

    /// The transport named in the watchdog's line: `TCTI 'swtpm:path=…' (from --tcti)`.
    var transport: String {
        "TCTI '\(configuration)'" + (origin == "default" ? "" : " (from \(origin))")
    }

    public var description: String {
        origin == "default" ? configuration : "\(configuration), from \(origin)"
    }
}
