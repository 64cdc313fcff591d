// SPDX-License-Identifier: Apache-2.0
/// The type of a DRTM event-log record (Intel TXT Software Development Guide, Appendix "Event Log";
/// tboot `include/tpm_20.h`, `txt/heap.h`).
public struct EventType: RawRepresentable, Hashable, Sendable, CustomStringConvertible {
    public let rawValue: UInt32
    public init(rawValue: UInt32) { self.rawValue = rawValue }

    /// `EV_NO_ACTION`: log headers (TCG Spec ID event), never extended.
    public static let noAction = EventType(rawValue: 0x3)
    /// `EVTYPE_PCRMAPPING`
    public static let pcrMapping = EventType(rawValue: 0x401)
    /// `EVTYPE_HASH_START`
    public static let hashStart = EventType(rawValue: 0x402)
    /// `EVTYPE_COMBINED_HASH`
    public static let combinedHash = EventType(rawValue: 0x403)
    /// `EVTYPE_MLE_HASH`: SINIT's measurement of tboot (the MLE).
    public static let mleHash = EventType(rawValue: 0x404)
    /// `EVTYPE_BIOSAC_REG_DATA`
    public static let biosACRegistrationData = EventType(rawValue: 0x40A)
    /// `EVTYPE_CPU_SCRTM_STAT`
    public static let cpuSCRTMStatus = EventType(rawValue: 0x40B)
    /// `EVTYPE_LCP_CONTROL_HASH`
    public static let lcpControlHash = EventType(rawValue: 0x40C)
    /// `EVTYPE_ELEMENTS_HASH`
    public static let elementsHash = EventType(rawValue: 0x40D)
    /// `EVTYPE_STM_HASH`
    public static let stmHash = EventType(rawValue: 0x40E)
    /// `EVTYPE_OSSINITDATA_CAP_HASH`
    public static let osSinitDataCapabilitiesHash = EventType(rawValue: 0x40F)
    /// `EVTYPE_SINIT_PUBKEY_HASH`
    public static let sinitPublicKeyHash = EventType(rawValue: 0x410)
    /// `EVTYPE_LCP_HASH`
    public static let lcpHash = EventType(rawValue: 0x411)
    /// `EVTYPE_LCP_DETAILS_HASH`
    public static let lcpDetailsHash = EventType(rawValue: 0x412)
    /// `EVTYPE_LCP_AUTHORITIES_HASH`
    public static let lcpAuthoritiesHash = EventType(rawValue: 0x413)
    /// `EVTYPE_NV_INFO_HASH`
    public static let nvInfoHash = EventType(rawValue: 0x414)
    /// `EVTYPE_COLD_BOOT_BIOS_HASH`
    public static let coldBootBIOSHash = EventType(rawValue: 0x415)
    /// `EVTYPE_KM_HASH` (CBnT key manifest)
    public static let keyManifestHash = EventType(rawValue: 0x416)
    /// `EVTYPE_BPM_HASH` (CBnT boot policy manifest)
    public static let bootPolicyManifestHash = EventType(rawValue: 0x417)
    /// `EVTYPE_KM_INFO_HASH`
    public static let keyManifestInfoHash = EventType(rawValue: 0x418)
    /// `EVTYPE_BPM_INFO_HASH`
    public static let bootPolicyManifestInfoHash = EventType(rawValue: 0x419)
    /// `EVTYPE_BOOT_POL_HASH`
    public static let bootPolicyHash = EventType(rawValue: 0x41A)
    /// `EVTYPE_CAP_VALUE`
    public static let capabilityValue = EventType(rawValue: 0x4FF)
    /// `TPM_EVT_TBOOT` (tboot's own measurements: policy and modules)
    public static let tbootMeasurement = EventType(rawValue: 0x501)
    /// `DLE_EVTYPE_SLAUNCH` (TXT_EVTYPE_BASE + 0x102): TrenchBoot Secure Launch measurements by
    /// the secure-kernel-loader, Xen and Linux; the data is an ASCII description (Xen
    /// `asm/slaunch.h`, SKL `event_log.c`).
    public static let secureLaunch = EventType(rawValue: 0x502)
    /// `DLE_EVTYPE_SLAUNCH_START` (Xen `asm/slaunch.h`).
    public static let secureLaunchStart = EventType(rawValue: 0x503)
    /// `DLE_EVTYPE_SLAUNCH_END` (Xen `asm/slaunch.h`).
    public static let secureLaunchEnd = EventType(rawValue: 0x504)

    public var name: String? {
        switch rawValue {
        case 0x3: return "EV_NO_ACTION"
        case 0x401: return "PCR_MAPPING"
        case 0x402: return "HASH_START"
        case 0x403: return "COMBINED_HASH"
        case 0x404: return "MLE_HASH"
        case 0x40A: return "BIOSAC_REG_DATA"
        case 0x40B: return "CPU_SCRTM_STAT"
        case 0x40C: return "LCP_CONTROL_HASH"
        case 0x40D: return "ELEMENTS_HASH"
        case 0x40E: return "STM_HASH"
        case 0x40F: return "OSSINITDATA_CAP_HASH"
        case 0x410: return "SINIT_PUBKEY_HASH"
        case 0x411: return "LCP_HASH"
        case 0x412: return "LCP_DETAILS_HASH"
        case 0x413: return "LCP_AUTHORITIES_HASH"
        case 0x414: return "NV_INFO_HASH"
        case 0x415: return "COLD_BOOT_BIOS_HASH"
        case 0x416: return "KM_HASH"
        case 0x417: return "BPM_HASH"
        case 0x418: return "KM_INFO_HASH"
        case 0x419: return "BPM_INFO_HASH"
        case 0x41A: return "BOOT_POL_HASH"
        case 0x4FF: return "CAP_VALUE"
        case 0x501: return "TBOOT"
        case 0x502: return "SLAUNCH"
        case 0x503: return "SLAUNCH_START"
        case 0x504: return "SLAUNCH_END"
        default: return nil
        }
    }

    /// `0x` and four hex digits, as tboot's log prints it.
    public var hex: String { String(format0x: rawValue, width: 3) }
    public var description: String { name.map { "\(hex) \($0)" } ?? hex }
}
