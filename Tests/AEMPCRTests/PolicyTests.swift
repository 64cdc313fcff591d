// SPDX-License-Identifier: Apache-2.0
import Foundation
import Testing
@testable import AEMPCR

@Suite struct PolicyTests {
    /// tboot's default policy bytes, copied from its policy.c.
    static let def12 = "02000401000000000000000300ff00000000000081130000000000008316001000004000"
    static let defDA = "02000b01000000000000000300ff00000000000081110000000000008316001000004000"

    @Test func defaultPoliciesByVersion() throws {
        let tpm12 = try LaunchConfiguration(tpm: .tpm12)
        #expect(Hex.encode(TbootPolicy.defaultPolicy(for: tpm12).bytes(normalisingHashAlgorithm: false)) == Self.def12)
        let tpm2 = try LaunchConfiguration(tpm: .tpm20)
        #expect(Hex.encode(TbootPolicy.defaultPolicy(for: tpm2).bytes(normalisingHashAlgorithm: false)) == Self.defDA)
        // 1.10.x keeps _def_policy_12 (any → 19) for TPM 1.2 even under DA.
        let tpm12da = try LaunchConfiguration(tpm: .tpm12, mapping: .da)
        #expect(TbootPolicy.defaultPolicy(for: tpm12da).entry(forModule: 1)?.pcr == 19)
        // ≤ 1.9.11: hash_alg 04 everywhere, and TPM 1.2 DA uses _def_policy_da (any → 17).
        let old = try LaunchConfiguration(tpm: .tpm12, mapping: .da, tbootVersion: TbootVersion(1, 9, 11))
        #expect(Hex.encode(TbootPolicy.defaultPolicy(for: old).bytes(normalisingHashAlgorithm: false))
                == "02000401000000000000000300ff00000000000081110000000000008316001000004000")
        // 1.9.12: hash_alg 0b in _def_policy (TPM 1.2 legacy).
        let v1912 = try LaunchConfiguration(tpm: .tpm12, tbootVersion: TbootVersion(1, 9, 12))
        #expect(TbootPolicy.defaultPolicy(for: v1912).hashAlgorithmByte == 0x0B)
    }

    /// Three reference digests, each seen in real tboot logs.
    @Test func referencePolicyEvents() throws {
        let p12 = try TbootPolicy(bytes: Hex.decode(Self.def12)!, source: "def12")
        #expect(p12.policyEvent(bank: .sha1, current: .sha1, fromNV: false).hex == "c3438497fda827be3b321c5309a204f0c9e53943")
        let pda = try TbootPolicy(bytes: Hex.decode(Self.defDA)!, source: "defDA")
        #expect(pda.policyEvent(bank: .sha256, current: .sha256, fromNV: false).hex == "71be5852a14eabefebf0df0e1acc5da291883b6d4c5ab20914ed987c1daf3f91")
        #expect(pda.policyEvent(bank: .sha1, current: .sha256, fromNV: false).hex == "0afc07618e3739481f4c2abaf703ca4e35507e6e")
    }

    /// Older tboot releases' defaults, digests recomputed from tboot's source by a reviewer
    /// (python3 hashlib) and quoted in the issue note.
    @Test func olderReleasePolicyEvents() throws {
        let c1912 = try LaunchConfiguration(tpm: .tpm12, tbootVersion: TbootVersion(1, 9, 12))
        #expect(TbootPolicy.defaultPolicy(for: c1912).policyEvent(bank: .sha1, current: .sha1, fromNV: false).hex
                == "c1aabfc9fd8e2ac370fc4373810279102ae730c3")
        let c1911da = try LaunchConfiguration(tpm: .tpm12, mapping: .da, tbootVersion: TbootVersion(1, 9, 11))
        #expect(TbootPolicy.defaultPolicy(for: c1911da).policyEvent(bank: .sha1, current: .sha1, fromNV: false).hex
                == "fbb1b9eab0c92ac09c2814f538b5ad02afe0eeaf")
        let c1912da = try LaunchConfiguration(tpm: .tpm12, mapping: .da, tbootVersion: TbootVersion(1, 9, 12))
        #expect(TbootPolicy.defaultPolicy(for: c1912da).policyEvent(bank: .sha1, current: .sha1, fromNV: false).hex
                == "7c41072ad0356c4724528df88c99ff6e8bd2ece5")
    }

    @Test func controlBitClearHashesZeros() throws {
        var b = Hex.decode(Self.defDA)!
        b[3] = 0  // policy_control = 0
        let p = try TbootPolicy(bytes: b, source: "x")
        let expected = MultiHasher.hash(.sha256, [UInt8](repeating: 0, count: 36))
        #expect(p.policyEvent(bank: .sha256, current: .sha256, fromNV: false) == expected)
    }

    /// Malformed policies: each names the byte offset of the fault.
    @Test(arguments: [
        ("0200", 2, "header alone is 12"),
        ("03000401000000000000000300", 0, "version 3"),
        ("02070401000000000000000000", 1, "policy type 7"),
        ("02000901000000000000000000", 2, "hash algorithm 0x09"),
        ("0200040100000000000000" + "01", 12, "entry 0 of 1 is cut short"),
        ("0200040100000000000000" + "01" + "0012010000000001" + "aabb", 20, "declares 1 hashes of 20 bytes"),
        ("0200040100000000000000" + "01" + "0012000000000000" + "ff", 20, "1 bytes after the last"),
        ("0200040100000000000000" + "01" + "0063000000000000", 13, "PCR 99"),
        ("0200040100000000000000" + "01" + "0012050000000000", 14, "hash type 5"),
    ])
    func malformedPolicies(hex: String, offset: Int, message: String) {
        do {
            _ = try TbootPolicy(bytes: Hex.decode(hex)!, source: "bad.pol")
            Issue.record("accepted \(hex)")
        } catch let e as CodedError {
            #expect(e.code == .policyMalformed)
            #expect(e.offset == offset, "\(e)")
            #expect(e.description.contains(message), "\(e)")
            #expect(e.description.hasPrefix("bad.pol at byte \(offset): "))
        } catch {
            Issue.record("unexpected \(error)")
        }
    }

    /// Real tb_polgen (Debian's tboot) writes a policy; the parser reads back what it wrote, and
    /// the image hash tb_polgen stored equals this tool's module measurement.
    @Test(.needsTool("tb_polgen", package: "tboot")) func tbPolgenRoundTrip() throws {
        guard let polgen = tool("tb_polgen") else { return }
        let dir = try tempDir()
        let pol = dir + "/p.pol"
        let image = dir + "/xen.gz"
        let raw = (0..<70_000).map { UInt8(truncatingIfNeeded: ($0 * 7919) >> 3) }
        try write(raw, to: dir + "/xen")
        try run("/bin/gzip", ["-n", "-k", dir + "/xen"])
        for alg in ["sha1", "sha256"] {
            try? FileManager.default.removeItem(atPath: pol)
            #expect(try run(polgen, ["--create", "--type", "halt", "--alg", alg, "--ctrl", "0x00", pol]).status == 0)
            #expect(try run(polgen, ["--add", "--num", "0", "--pcr", "18", "--hash", "image",
                                     "--cmdline", "placeholder console=none x=\"y\"", "--image", image, pol]).status == 0)
            #expect(try run(polgen, ["--add", "--num", "any", "--pcr", "none", "--hash", "any", pol]).status == 0)
            let bytes = [UInt8](try Data(contentsOf: URL(fileURLWithPath: pol)))
            let p = try TbootPolicy(bytes: bytes, source: pol)
            let bank: HashAlgorithm = alg == "sha1" ? .sha1 : .sha256
            #expect(p.hashAlgorithm == bank)
            #expect(p.policyType == .halt && p.control == 0)
            #expect(p.entries.count == 2)
            #expect(p.entries[0].moduleNumber == 0 && p.entries[0].pcr == 18 && p.entries[0].hashType == 1)
            #expect(p.entries[1].matchesAnyModule && p.entries[1].pcrIndex == nil)
            #expect(p.bytes(normalisingHashAlgorithm: true) == bytes)
            let m = try ModuleMeasurement.measure(
                BootSpec.Module(path: image, cmdline: "placeholder console=none x=\"y\""), banks: [bank])
            #expect(p.entries[0].hashes == [m.measurements[bank]!.bytes])
        }
    }
}
