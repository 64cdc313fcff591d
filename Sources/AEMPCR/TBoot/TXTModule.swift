// SPDX-License-Identifier: Apache-2.0
/// Modules tboot removes before measuring (`loader.c: remove_txt_modules`): SINIT ACMs, told by
/// content (`txt/acmod.c: is_sinit_acmod`), and one LCP policy-data file. Never by name.
public enum TXTModule: Sendable, Equatable {
    case sinitACM
    case lcpPolicyData

    /// ACM_UUID_V3 as bytes.
    static let acmUUID: [UInt8] = [0xAA, 0x3A, 0xC0, 0x7F, 0xA7, 0x46, 0xDB, 0x18,
                                   0x2E, 0xAC, 0x69, 0x8F, 0x8D, 0x41, 0x7F, 0x5A]
    /// `LCP_POLICY_DATA_FILE_SIGNATURE`
    static let lcpSignature = Array("Intel(R) TXT LCP_POLICY_DATA".utf8)

    /// Classifies a module from its first bytes (the loaded image) and its loaded size.
    /// Returns nil for a module tboot keeps and measures.
    public static func classify(prefix p: [UInt8], size: UInt64) -> TXTModule? {
        func u16(_ o: Int) -> UInt32 { UInt32(p[o]) | UInt32(p[o + 1]) << 8 }
        func u32(_ o: Int) -> UInt32 { u16(o) | u16(o + 2) << 16 }
        if p.count >= lcpSignature.count, Array(p[0..<lcpSignature.count]) == lcpSignature {
            return .lcpPolicyData
        }
        // acm_hdr_t: module_type u16 @0 == 2 (ACM_TYPE_CHIPSET), module_vendor u32 @16 == 0x8086,
        // size u32 @24 in dwords, header_len @4 and scratch_size @124 (dwords) locate the info table.
        guard p.count >= 128, u16(0) == 2, u32(16) == 0x8086 else { return nil }
        let declared = UInt64(u32(24)) * 4
        guard declared <= size else { return nil }
        let info = (UInt64(u32(4)) + UInt64(u32(124))) * 4
        guard info + 18 <= UInt64(p.count) else { return nil }
        let o = Int(info)
        guard Array(p[o..<(o + 16)]) == acmUUID else { return nil }
        // acm_info_table_t: uuid[16], chipset_acm_type u8 (1 = SINIT), version u8 (≥ 3).
        guard p[o + 16] == 1, p[o + 17] >= 3 else { return nil }
        return .sinitACM
    }
}
