// SPDX-License-Identifier: Apache-2.0
/// The options in tboot's own command line that change what is measured where (tboot
/// `common/cmdline.c`): `pcr_map=legacy|da` (TPM 1.2) and `extpol=…` (TPM 2.0). tboot reads
/// blank-separated `name=value` words; the last occurrence wins.
public struct TbootCommandLine: Sendable, Equatable {
    public var pcrMap: PCRMapping?
    public var extendPolicy: ExtendPolicy?

    public init(_ line: String) throws {
        for word in line.split(whereSeparator: { $0 == " " || $0 == "\t" }) {
            guard let eq = word.firstIndex(of: "=") else { continue }
            let name = word[..<eq], value = String(word[word.index(after: eq)...])
            switch name {
            case "pcr_map":
                guard let m = PCRMapping(rawValue: value) else {
                    throw CodedError(.bankUnsupported, "tboot's command line has pcr_map=\(value); tboot knows legacy and da")
                }
                pcrMap = m
            case "extpol":
                guard let e = ExtendPolicy(rawValue: value) else {
                    throw CodedError(.bankUnsupported, "tboot's command line has extpol=\(value); tboot knows sha1, sha256, sha384, sha512, sm3, agile and embedded")
                }
                extendPolicy = e
            default:
                continue
            }
        }
    }

    /// Merges with what the user said: a setting given both ways must agree.
    public static func merge<T: Equatable & RawRepresentable>(_ option: T?, _ fromLine: T?, name: String) throws -> T? where T.RawValue == String {
        if let o = option, let l = fromLine, o != l {
            throw CodedError(.bankUnsupported, "--\(name == "pcr_map" ? "pcr-map" : name) \(o.rawValue) contradicts \(name)=\(l.rawValue) on the next boot's tboot command line")
        }
        return option ?? fromLine
    }
}
