// SPDX-License-Identifier: Apache-2.0
/// A tboot release, e.g. `1.10.5`. Measurement rules change at 1.9.4, 1.9.12, 1.10.0 and 1.11.0.
public struct TbootVersion: Comparable, Hashable, Sendable, CustomStringConvertible {
    public var major: Int, minor: Int, patch: Int

    public init(_ major: Int, _ minor: Int, _ patch: Int) {
        self.major = major
        self.minor = minor
        self.patch = patch
    }

    /// Parses `1.10.5` (a trailing Debian/Fedora revision such as `-4` or `.fc37` is ignored).
    public init?(_ text: String) {
        let core = text.split(whereSeparator: { $0 == "-" || $0 == "+" || $0 == "~" }).first.map(String.init) ?? ""
        let parts = core.split(separator: ".").prefix(3).map { Int($0) }
        guard parts.count >= 2, parts.allSatisfy({ $0 != nil }) else { return nil }
        self.init(parts[0]!, parts[1]!, parts.count > 2 ? parts[2]! : 0)
    }

    /// Debian 12's tboot (1.10.5; its measurement code equals 1.10.2).
    public static let debian12 = TbootVersion(1, 10, 5)

    /// ≤ 1.8.3 removed the first word of every command line (`skip_filename`); 1.9.4 stopped.
    public var skipsFilename: Bool { self < TbootVersion(1, 9, 4) }
    /// Default `extpol`: sha1 up to 1.9.11, sha256 from 1.9.12.
    public var defaultExtendPolicy: ExtendPolicy { self < TbootVersion(1, 9, 12) ? .sha1 : .sha256 }
    /// `extpol=embedded` hashes SHA-384/512 too from 1.10.0 (`tboot_alg_list`).
    public var embeddedBanks: [HashAlgorithm] {
        self < TbootVersion(1, 10, 0) ? [.sha1, .sha256] : [.sha1, .sha256, .sha384, .sha512]
    }
    /// 1.11.0 dropped `extpol=agile` (mapped to sha256).
    public var supportsAgile: Bool { self < TbootVersion(1, 11, 0) }
    /// `extpol=sha384|sha512` exist from 1.9.12.
    public var supportsSHA384And512: Bool { self >= TbootVersion(1, 9, 12) }

    public var description: String { "\(major).\(minor).\(patch)" }
    public static func < (a: TbootVersion, b: TbootVersion) -> Bool {
        (a.major, a.minor, a.patch) < (b.major, b.minor, b.patch)
    }
}

/// tboot's `extpol=` option on TPM 2.0: which banks tboot extends and who hashes (tboot
/// `common/cmdline.c: get_tboot_extpol`, `policy.c`).
public enum ExtendPolicy: String, Sendable, CaseIterable {
    case sha1, sha256, sha384, sha512, embedded, agile, sm3
}

/// The TPM family.
public enum TPMFamily: String, Sendable, CaseIterable {
    case tpm12 = "1.2"
    case tpm20 = "2.0"
}

/// How the DRTM measurements map to PCRs: legacy (TPM 1.2 default) or Details/Authorities.
public enum PCRMapping: String, Sendable, CaseIterable {
    case legacy, da
}
