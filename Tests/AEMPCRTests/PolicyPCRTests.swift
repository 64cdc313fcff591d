// SPDX-License-Identifier: Apache-2.0
import Foundation
import Testing
@testable import AEMPCR

/// `aem-pcr policy` against tpm2-tools' `tpm2_createpolicy --policy-pcr` on swtpm, which reads
/// the PCR values from the TPM and has the TPM compute the digest in a trial session.
@Suite(.serialized) struct PolicyPCRTests {
    /// PCR13/16 at locality 0, a DRTM launch for PCR17, PCR18/19 at locality 2: distinct values
    /// in both banks.
    static func preparedTPM() throws -> SwTPM2? {
        guard let tpm = try SwTPM2() else { return nil }
        try tpm.drtm("policy test launch")
        for (pcr, loc) in [(13, 0), (16, 0), (18, 2), (19, 2)] {
            try tpm.extend(pcr, locality: loc, ["sha1=" + pyHash("sha1", "pcr\(pcr)"),
                                                "sha256=" + pyHash("sha256", "pcr\(pcr)")])
        }
        return tpm
    }

    func createpolicy(_ tpm: SwTPM2, _ selection: String) throws -> String {
        let out = tpm.dir + "/policy.bin"
        try tpm.tpm2("tpm2_createpolicy", ["--policy-pcr", "-l", selection, "-L", out])
        try tpm.flush()
        return Data(try Data(contentsOf: URL(fileURLWithPath: out))).map { String(format: "%02x", $0) }.joined()
    }

    @Test func equalsTpm2CreatepolicyForSeveralSelections() throws {
        guard let tpm = try Self.preparedTPM() else { return }
        let values = tpm.dir + "/values.yaml"
        try tpm.pcrread("sha1:13,16,17,18,19+sha256:13,16,17,18,19", to: values)
        let cases: [(String, [String])] = [
            ("sha256:13,17,18,19", ["--pcr", "13,17,18,19", "--bank", "sha256"]),
            ("sha1:17,18,19", ["--pcr", "19,17,18", "--bank", "sha1"]),
            ("sha1:13,16+sha256:13,16", ["--pcr", "13,16", "--bank", "sha1", "--bank", "sha256"]),
            ("sha256:17,18,19+sha1:17,18,19", ["--pcr", "17,18,19", "--bank", "sha256", "--bank", "sha1"]),
            ("sha256:18", ["--pcr", "18"]),
        ]
        for (selection, args) in cases {
            let expected = try createpolicy(tpm, selection)
            #expect(expected.count == 64)
            let r = try aemPCR(["policy", "--values", values] + args)
            #expect(r.status == 0, "\(selection): \(r.stderr)")
            #expect(r.stdout == expected + "\n", "\(selection)")
        }
    }

    /// A stale tpm2_pcrread file with a later JSON file (predict --json's shape) over it: the
    /// later values win PCR by PCR; --format binary writes the raw digest as tpm2_policypcr -L.
    @Test func laterFilesOverrideEarlierOnesAndBinaryMatches() throws {
        guard let tpm = try SwTPM2() else { return }
        try tpm.drtm("first boot")
        try tpm.extend(13, locality: 0, ["sha256=" + pyHash("sha256", "luks header")])
        let stale = tpm.dir + "/stale.yaml"
        try tpm.pcrread("sha256:13,17,18,19", to: stale)
        // the "next boot": new PCR17 and 18 (PCR13 unchanged)
        try tpm.drtm("second boot")
        try tpm.extend(18, locality: 2, ["sha256=" + pyHash("sha256", "new xen")])
        let now = tpm.dir + "/now.yaml"
        try tpm.pcrread("sha256:17,18,19", to: now)
        let yaml = try String(contentsOfFile: now, encoding: .utf8)
        var json = "{\"tool\": \"predict\", \"pcrs\": {\"sha256\": {"
        json += yaml.split(separator: "\n").compactMap { line -> String? in
            let f = line.split(separator: ":").map { $0.trimmingCharacters(in: .whitespaces) }
            guard f.count == 2, let n = Int(f[0]) else { return nil }
            return "\"\(n)\": \"\(f[1].dropFirst(2).lowercased())\""
        }.joined(separator: ", ")
        json += "}}}"
        let predicted = tpm.dir + "/next.json"
        try json.write(toFile: predicted, atomically: true, encoding: .utf8)
        let expected = try createpolicy(tpm, "sha256:13,17,18,19")
        let bin = tpm.dir + "/ours.bin"
        let r = try aemPCR(["policy", "--pcr", "13,17,18,19", "--values", stale, "--values", predicted,
                            "--format", "binary", "-o", bin])
        #expect(r.status == 0, "\(r.stderr)")
        let ours = try Data(contentsOf: URL(fileURLWithPath: bin)).map { String(format: "%02x", $0) }.joined()
        #expect(ours == expected)
        // the stale file alone gives another digest
        let alone = try aemPCR(["policy", "--pcr", "13,17,18,19", "--values", stale])
        #expect(alone.status == 0 && alone.stdout != expected + "\n")
        // in the other order the stale 17/18 win
        let reversed = try aemPCR(["policy", "--pcr", "13,17,18,19", "--values", predicted, "--values", stale])
        #expect(reversed.stdout == alone.stdout)
    }

    @Test func missingValueIsOneLineNamingThePCR() throws {
        let dir = try tempDir()
        let values = dir + "/v.yaml"
        try "sha256:\n  17: 0x\(String(repeating: "00", count: 32))\n".write(toFile: values, atomically: true, encoding: .utf8)
        let r = try aemPCR(["policy", "--pcr", "13,17", "--values", values])
        #expect(r.status == 2)
        #expect(r.stderr.hasPrefix("aem-pcr: error: no value for PCR13 in bank sha256 in \(values)"), "\(r.stderr)")
        #expect(r.stderr.split(separator: "\n").count == 1)
        let bad = try aemPCR(["policy", "--pcr", "13,24", "--values", values])
        #expect(bad.status == 2 && bad.stderr.contains("'24' is not a PCR index"), "\(bad.stderr)")
    }
}

/// The prediction `seal` saves reads back as written (check-boot relies on it), control
/// characters in descriptions included.
@Test func sealedPredictionRoundTrip() throws {
    var values = PCRValues()
    values[.sha256, 13] = Digest(.sha256, bytes: Array(repeating: 0x13, count: 32))!
    values[.sha256, 17] = Digest(.sha256, bytes: Array(repeating: 0x17, count: 32))!
    values[.sha1, 18] = Digest(.sha1, bytes: Array(repeating: 0x18, count: 20))!
    let selection = try PCRSelection(parsing: "sha256:13,17")
    let record = SealedPrediction(
        label: "aem1", sealedAt: "20261130T040000Z", selection: selection,
        policyDigest: try PolicyPCR.digest(selection, values: values), pcrs: values,
        events: [.init(pcr: 17, type: EventType(rawValue: 0x501), what: "module 2: /boot/\"init\"\tramfs\u{1}",
                       digests: [.sha256: values[.sha256, 17]!, .sha1: values[.sha1, 18]!])],
        keyPublicSHA256: MultiHasher.hash(.sha256, [1, 2, 3]))
    let text = record.render()
    #expect(try SealedPrediction.parse(text, source: "t") == record)
    // and python3's json reads it as the same values
    let dir = try tempDir()
    try text.write(toFile: dir + "/p.json", atomically: true, encoding: .utf8)
    let r = try run("/usr/bin/env", ["python3", "-c", "import json,sys; d=json.load(open(sys.argv[1])); print(d['pcrs']['sha1']['18'], d['events'][0]['what'])", dir + "/p.json"])
    #expect(r.stdout == String(repeating: "18", count: 20) + " module 2: /boot/\"init\"\tramfs\u{1}\n")
    #expect(throws: CodedError.self) { try SealedPrediction.parse(text.replacingOccurrences(of: "aem-pcr-sealed-prediction/1", with: "x"), source: "t") }
}
