// SPDX-License-Identifier: Apache-2.0
import Foundation
import Testing
@testable import AEMPCR

@Suite struct PCRFileTests {
    /// A real TPM (swtpm) after a DRTM hash sequence, read by tpm2_pcrread: the parser reads it,
    /// and PCR17 equals H(0 || H(data)) in both banks, the DRTM rule this tool replays with.
    @Test(.needsTool("swtpm", package: "swtpm"), .needsTool("swtpm_ioctl", package: "swtpm-tools"),
          .needsTool("tpm2_pcrread", package: "tpm2-tools"))
    func tpm2PcrreadAfterHashSequence() throws {
        let r = try run("/bin/bash", [Repo.path("Tests/Scripts/swtpm-drtm.sh"), "aem-pcr test data"])
        if r.status == 77 {
            Issue.record("swtpm / tpm2-tools missing")  // the test's trait ran it: the reference must be there
            return
        }
        #expect(r.status == 0, "\(r.stderr)")
        let v = try PCRValuesFile.parse(r.stdout, source: "tpm2_pcrread")
        // H(0 || H(data)) by python3, not by the code under test.
        let py = try run("/usr/bin/env", ["python3", "-c", """
            import hashlib
            for a in ('sha1', 'sha256'):
                n = hashlib.new(a).digest_size
                print(a, hashlib.new(a, bytes(n) + hashlib.new(a, b'aem-pcr test data').digest()).hexdigest())
            """]).stdout
        let expected = Dictionary(uniqueKeysWithValues: py.split(separator: "\n").map { l in
            let f = l.split(separator: " "); return (String(f[0]), String(f[1])) })
        for bank in [HashAlgorithm.sha1, .sha256] {
            #expect(v[bank, 17]?.hex == expected[bank.description])
            #expect(v[bank, 18] == Digest.zeros(bank))
            #expect(v[bank, 16] == Digest.zeros(bank))
        }
        // Without a launch PCR17-19 read all FF.
        let idle = try run("/bin/bash", [Repo.path("Tests/Scripts/swtpm-drtm.sh"), "x", "--no-launch"])
        let w = try PCRValuesFile.parse(idle.stdout, source: "tpm2_pcrread")
        #expect(w[.sha256, 17]?.isAllOnes == true && w[.sha1, 19]?.isAllOnes == true)
    }

    @Test func ownJSONRoundTrip() throws {
        let json = #"{"pcrs": {"sha1": {"18": "c0d6bd015ca25f08dd05e11747451f216ce67c32"}}, "events": []}"#
        let v = try PCRValuesFile.parse(json, source: "p.json")
        #expect(v[.sha1, 18]?.hex == "c0d6bd015ca25f08dd05e11747451f216ce67c32")
        let inner = try PCRValuesFile.parse(#"{"sha256": {"17": "\#(String(repeating: "ab", count: 32))"}}"#, source: "i.json")
        #expect(inner[.sha256, 17]?.hex == String(repeating: "ab", count: 32))
    }

    @Test(arguments: [
        ("  sha1:\n    17: 0x1234\n", "p.yaml:2: PCR17 sha1"),
        ("    17: 0x00\n", "p.yaml:1: a PCR value before"),
        ("  md5:\n", "p.yaml:1: unknown bank 'md5'"),
        ("  sha1:\n    99: 0x00\n", "p.yaml:2: '99' is not a PCR index"),
        ("  sha1:\n    17: 0x\(String(repeating: "00", count: 20))\n    17: 0x\(String(repeating: "00", count: 20))\n", "p.yaml:3: PCR17 sha1 given twice"),
        ("", "p.yaml: no PCR values"),
        ("{\"sha1\": {\"17\": 5}}", "p.yaml: bank sha1: '17' must be"),
        ("{\"sha1\": {\"17\": \"00\"", "JSON at byte"),
    ])
    func badFiles(text: String, message: String) {
        #expect { try PCRValuesFile.parse(text, source: "p.yaml") } throws: { e in
            (e as? CodedError)?.description.hasPrefix(message) == true || (e as? CodedError)?.description.contains(message) == true
        }
    }
}
