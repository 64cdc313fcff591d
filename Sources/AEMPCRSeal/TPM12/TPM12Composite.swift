// SPDX-License-Identifier: Apache-2.0
import AEMPCR

/// TPM 1.2 PCR selections and composite digests (TPM Main Part 2, 8.1 TPM_PCR_SELECTION,
/// 8.2 TPM_PCR_COMPOSITE, 5.4.1 TPM_COMPOSITE_HASH), as a sealed blob's `digestAtRelease`
/// carries them: what a TPM 1.2 compares at TPM_Unseal.
public enum TPM12Composite {
    /// PCRs of a PC-client TPM 1.2.
    public static let pcrCount: UInt32 = 24

    /// TPM_PCR_SELECTION: `u16be sizeOfSelect` (3 for 24 PCRs), then the bitmap, PCR `i` at bit
    /// `i % 8` of byte `i / 8`.
    public static func selection<S: Sequence>(_ pcrs: S) -> [UInt8] where S.Element == UInt32 {
        var map = [UInt8](repeating: 0, count: Int(pcrCount / 8))
        for i in pcrs {
            precondition(i < pcrCount, "PCR \(i) is outside a TPM 1.2's 24 PCRs")
            map[Int(i / 8)] |= 1 << (i % 8)
        }
        return [0, UInt8(map.count)] + map
    }

    /// TPM_COMPOSITE_HASH = SHA-1(TPM_PCR_COMPOSITE), the composite being the selection,
    /// `u32be valueSize` (20 × PCRs) and the selected values in ascending PCR order.
    /// `values` maps PCR index to its 20-byte SHA-1 value; `nil` when a value is not 20 bytes
    /// or an index is not below 24.
    public static func digest(_ values: [UInt32: [UInt8]]) -> [UInt8]? {
        guard values.keys.allSatisfy({ $0 < pcrCount }),
              values.values.allSatisfy({ $0.count == 20 }) else { return nil }
        let order = values.keys.sorted()
        var composite = selection(order)
        let size = UInt32(20 * order.count)
        composite += [UInt8(size >> 24), UInt8(size >> 16 & 0xFF), UInt8(size >> 8 & 0xFF),
                      UInt8(size & 0xFF)]
        for i in order { composite += values[i]! }
        return MultiHasher.hash(.sha1, composite).bytes
    }
}
