// SPDX-License-Identifier: Apache-2.0
/// A PCR number. DRTM launches use 17–22; 255 is tboot's "no PCR" in policies (`TB_POL_PCR_NONE`).
public struct PCRIndex: RawRepresentable, Hashable, Comparable, Sendable, CustomStringConvertible,
    ExpressibleByIntegerLiteral
{
    public let rawValue: UInt32
    public init(rawValue: UInt32) { self.rawValue = rawValue }
    public init(integerLiteral value: UInt32) { self.rawValue = value }

    /// PCR17: SINIT's details (and, on TPM 2.0 / DA, everything tboot measures).
    public static let drtmDetails: PCRIndex = 17
    /// PCR18: the MLE (tboot) and Xen under the legacy mapping; SINIT authorities under DA.
    public static let drtmAuthorities: PCRIndex = 18
    /// PCR19: the other modules under TPM 1.2's default policy.
    public static let modules: PCRIndex = 19
    /// PCR22: TPM NV contents when tboot runs with `measure_nv=true`.
    public static let nvMeasurement: PCRIndex = 22

    /// PCRs reset by a dynamic launch (17–22).
    public var isDynamic: Bool { (17...22).contains(rawValue) }

    public var description: String { String(rawValue) }
    public static func < (a: PCRIndex, b: PCRIndex) -> Bool { a.rawValue < b.rawValue }
}
