// SPDX-License-Identifier: Apache-2.0
/// PCR13 as Qubes AEM's initramfs extends it (qubes-antievilmaid 4.2.0,
/// `90anti-evil-maid/anti-evil-maid-unseal`): for every `rd.luks.uuid=` or `rd_LUKS_UUID=` on the
/// dom0 kernel's command line (`getluksuuids`: `luks-` stripped), `sort -u`, `cryptsetup
/// luksHeaderBackup` of `/dev/disk/by-uuid/UUID` into a file, that file hashed (`sha256sum` on
/// TPM 2.0, `sha1sum` on TPM 1.2) and extended into PCR13 of that one bank. PCR13 is a static
/// PCR, all zeros from reset; with no UUID on the command line nothing extends it.
/// Pure: the header bytes are hashed elsewhere (libcryptsetup, outside the library).
public enum LUKSMeasurement {
    /// The PCR AEM extends (`LUKS_PCR=13`).
    public static let pcr: PCRIndex = 13

    /// The bank AEM's `tpmpcrextend` reaches: `tpm2_pcrextend 13:sha256=…` on TPM 2.0 (only the
    /// sha256 bank moves), `tpm_pcr_extend` (SHA-1) on TPM 1.2.
    public static func bank(_ tpm: TPMFamily) -> HashAlgorithm {
        tpm == .tpm20 ? .sha256 : .sha1
    }

    /// The UUIDs AEM measures, in its order: `getparams rd.luks.uuid rd_LUKS_UUID` splits the
    /// command line on blanks and takes what follows the first `=` of each matching word;
    /// `sed s/^luks-//`; `sort -u` (byte order, as in the initramfs's C locale).
    public static func uuids(cmdline: [UInt8]) -> [String] {
        let words = cmdline.split(whereSeparator: { $0 == 0x20 || $0 == 0x09 || $0 == 0x0A })
        var found = Set<String>()
        for w in words {
            let word = String(decoding: w, as: UTF8.self)
            for key in ["rd.luks.uuid=", "rd_LUKS_UUID="] where word.hasPrefix(key) {
                var v = String(word.dropFirst(key.count))
                if v.hasPrefix("luks-") { v = String(v.dropFirst(5)) }
                found.insert(v)
                break
            }
        }
        return found.sorted { Array($0.utf8).lexicographicallyPrecedes(Array($1.utf8)) }
    }

    /// One `--luks-header UUID=PATH`.
    public static func parseHeaderArgument(_ argument: String) -> (uuid: String, path: String)? {
        guard let eq = argument.firstIndex(of: "=") else { return nil }
        var uuid = String(argument[..<eq])
        if uuid.hasPrefix("luks-") { uuid = String(uuid.dropFirst(5)) }
        let path = String(argument[argument.index(after: eq)...])
        guard !uuid.isEmpty, !path.isEmpty else { return nil }
        return (uuid, path)
    }

    /// One device's extend: H(header backup) in the bank.
    public struct Extend: Sendable, Equatable {
        public var uuid: String
        /// Where the header was read (the device, image or backup file).
        public var source: String
        /// Bytes of the backup `cryptsetup luksHeaderBackup` writes.
        public var backupSize: UInt64
        public var digest: Digest

        public init(uuid: String, source: String, backupSize: UInt64, digest: Digest) {
            self.uuid = uuid
            self.source = source
            self.backupSize = backupSize
            self.digest = digest
        }
    }

    /// PCR13 after the extends in order: H(prev ‖ H(backup)) from zeros. `extends` must share
    /// one bank; none gives zeros (PCR13 untouched).
    public static func fold(_ extends: [Extend], bank: HashAlgorithm) -> Digest {
        var v = Digest.zeros(bank)
        for e in extends {
            precondition(e.digest.algorithm == bank, "extend in the wrong bank")
            v = v.extended(with: e.digest)
        }
        return v
    }
}

extension IncompletePCR {
    /// PCR13 not predicted, with the reason (a header that could not be read).
    public static func luks(bank: HashAlgorithm, reason: String) -> IncompletePCR {
        IncompletePCR(pcr: LUKSMeasurement.pcr, bank: bank, reason: reason)
    }
}
