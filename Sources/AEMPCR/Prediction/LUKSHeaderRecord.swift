// SPDX-License-Identifier: Apache-2.0
/// The LUKS header digests of a boot, kept so that a seal after `cryptsetup luksAddKey` can
/// still check the PCR13 model: once a header changed, the headers read now no longer fold to
/// the TPM's PCR13, but the digests recorded while they did still do. Digests only, never header
/// bytes (the keyslot area is key material). The record is tied to nothing but itself: it is
/// trusted only while its fold equals the TPM's PCR13 now, so one of an earlier boot is ignored.
///
///     aem-pcr-luks-headers/1
///     boot sha256 3e1c9b52-8a77-4f0e-b2a1-5d4c6e7f8091 <hex of H(backup)>
///     sealed sha256 3e1c9b52-8a77-4f0e-b2a1-5d4c6e7f8091 <hex>
///
/// `boot`: the headers this boot's PCR13 was extended with, in AEM's order. `sealed`: the
/// headers of the last seal's predicted PCR13 (so check-boot can name the one that changed).
public struct LUKSHeaderRecord: Sendable, Equatable {
    public static let format = "aem-pcr-luks-headers/1"

    /// One device's H(header backup).
    public struct Entry: Sendable, Equatable {
        public var uuid: String
        public var digest: Digest
        public init(uuid: String, digest: Digest) {
            self.uuid = uuid
            self.digest = digest
        }
    }

    public var boot: [Entry]
    public var sealed: [Entry]

    public init(boot: [Entry], sealed: [Entry] = []) {
        self.boot = boot
        self.sealed = sealed
    }

    public init(boot extends: [LUKSMeasurement.Extend], sealed: [LUKSMeasurement.Extend] = []) {
        self.boot = extends.map { Entry(uuid: $0.uuid, digest: $0.digest) }
        self.sealed = sealed.map { Entry(uuid: $0.uuid, digest: $0.digest) }
    }

    /// PCR13 after `entries` in `bank` (nil when an entry is of another bank).
    public static func fold(_ entries: [Entry], bank: HashAlgorithm) -> Digest? {
        guard entries.allSatisfy({ $0.digest.algorithm == bank }) else { return nil }
        var v = Digest.zeros(bank)
        for e in entries { v = v.extended(with: e.digest) }
        return v
    }

    /// True when the boot's digests fold to `pcr13` (the TPM's value now): the only case the
    /// record is used in. No entry: never (PCR13 all zeros proves nothing).
    public func verifies(_ pcr13: Digest) -> Bool {
        !boot.isEmpty && Self.fold(boot, bank: pcr13.algorithm) == pcr13
    }

    /// The UUIDs whose header differs between `old` and `new` (changed, added or removed),
    /// sorted.
    public static func changed(_ old: [Entry], _ new: [Entry]) -> [String] {
        let o = Dictionary(old.map { ($0.uuid, $0.digest) }, uniquingKeysWith: { a, _ in a })
        let n = Dictionary(new.map { ($0.uuid, $0.digest) }, uniquingKeysWith: { a, _ in a })
        return Set(o.keys).union(n.keys).filter { o[$0] != n[$0] }.sorted()
    }

    public func render() -> String {
        var out = Self.format + "\n"
        for (section, entries) in [("boot", boot), ("sealed", sealed)] {
            for e in entries { out += "\(section) \(e.digest.algorithm) \(e.uuid) \(e.digest.hex)\n" }
        }
        return out
    }

    /// A record read back, or why it cannot be used (said in one line, and it is ignored).
    public enum Parsed: Sendable, Equatable {
        case record(LUKSHeaderRecord)
        case unusable(String)
    }

    /// Parses a record; a problem names the line. At most 256 entries.
    public static func parse(_ text: String) -> Parsed {
        var lines = text.split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
        if lines.last == "" { lines.removeLast() }
        guard lines.first == format else { return .unusable("the first line is not \(format)") }
        guard lines.count <= 257 else { return .unusable("more than 256 entries") }
        var r = LUKSHeaderRecord(boot: [Entry](), sealed: [Entry]())
        for (n, line) in lines.enumerated().dropFirst() {
            let f = line.split(separator: " ", omittingEmptySubsequences: false).map(String.init)
            guard f.count == 4, f[0] == "boot" || f[0] == "sealed", let bank = HashAlgorithm(name: f[1]),
                  !f[2].isEmpty, f[2].utf8.allSatisfy({ $0 > 0x20 && $0 < 0x7F }),
                  let size = bank.digestSize, f[3].utf8.count == size * 2, let d = Digest(bank, hex: f[3]) else {
                return .unusable("line \(n + 1) is not 'boot|sealed BANK UUID HEX'")
            }
            if f[0] == "boot" { r.boot.append(Entry(uuid: f[2], digest: d)) } else { r.sealed.append(Entry(uuid: f[2], digest: d)) }
        }
        return .record(r)
    }
}
