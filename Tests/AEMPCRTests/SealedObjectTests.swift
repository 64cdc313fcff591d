// SPDX-License-Identifier: Apache-2.0
import Foundation
import Testing
@testable import AEMPCR
@testable import AEMPCRSeal

/// What check-boot's verdict is read from (STYLE 18): key.pub's authPolicy and key.pcrs, parsed
/// without a TPM, against tpm2-tools on swtpm (tpm2_readpublic of the object AEM's own
/// tpm2_create made; tpm2_unseal's success or failure as the verdict).
@Suite(.serialized) struct SealedObjectTests {
    /// A keyed-hash TPM2B_PUBLIC as tpm2_create writes it (TPM 2.0 Part 2, 12.2.5), annotated.
    static let policy = [UInt8](repeating: 0xA5, count: 32)
    static let keyPub: [UInt8] = [0x00, 0x4E]            // size: 78 bytes follow
        + [0x00, 0x08]                                   // type TPM_ALG_KEYEDHASH
        + [0x00, 0x0B]                                   // nameAlg TPM_ALG_SHA256
        + [0x00, 0x00, 0x00, 0x12]                       // objectAttributes fixedTPM|fixedParent
        + [0x00, 0x20] + policy                          // authPolicy
        + [0x00, 0x10]                                   // scheme TPM_ALG_NULL
        + [0x00, 0x20] + [UInt8](repeating: 0x5A, count: 32)  // unique

    @Test func readsTheAnnotatedPublicArea() throws {
        let o = try SealedObjectPublic(parsing: Self.keyPub, source: "key.pub")
        #expect(o.authPolicy == Self.policy && o.nameAlg == .sha256 && o.objectAttributes == 0x12)
    }

    /// Every truncated prefix, a byte more, and wrong fields: one error naming the file and the offset.
    @Test func malformedPublicAreasNameFileAndOffset() throws {
        func expectError(_ bytes: [UInt8], _ text: String, sourceLocation: SourceLocation = #_sourceLocation) {
            do {
                _ = try SealedObjectPublic(parsing: bytes, source: "/x/key.pub")
                Issue.record("accepted: \(text)", sourceLocation: sourceLocation)
            } catch let e as CodedError {
                #expect(e.code == .sealedObjectInvalid && e.reason.hasPrefix("/x/key.pub: byte ") && e.reason.contains(text),
                        "\(e.reason)", sourceLocation: sourceLocation)
            } catch {
                Issue.record("\(error)", sourceLocation: sourceLocation)
            }
        }
        for n in 0..<Self.keyPub.count {
            var cut = Array(Self.keyPub.prefix(n))
            // with the size claiming what is there, the field that is cut off is named
            if n >= 2 { cut[0] = UInt8((n - 2) >> 8); cut[1] = UInt8((n - 2) & 0xFF) }
            expectError(cut, n < 2 ? "size" : "remain")
        }
        var longer = Self.keyPub + [0]
        expectError(longer, "is 78 but 79 bytes follow")
        longer[1] = 0x4F
        expectError(longer, "byte 80: 1 bytes after")
        var rsa = Self.keyPub
        rsa[3] = 0x01
        expectError(rsa, "byte 2: type 0x1 is not a sealed data object")
        var sm3 = Self.keyPub
        sm3[5] = 0x12
        expectError(sm3, "byte 4: nameAlg sm3_256")
        var short = Self.keyPub
        short[11] = 0x14  // a 20-byte authPolicy for a sha256 object
        expectError(short, "byte 10: authPolicy of 20 bytes")
        var scheme = Self.keyPub
        scheme[45] = 0x99
        expectError(scheme, "byte 44: keyed-hash scheme 0x99")
    }

    /// key.pcrs as AEM's `echo "$_pcrs"` writes it, and nothing looser.
    @Test func keyPCRsIsReadStrictly() throws {
        let ok = try PCRSelection(keyPCRsFile: Array("sha256:13,17,18,19\n".utf8), source: "k")
        #expect(ok.description == "sha256:13,17,18,19")
        #expect(try PCRSelection(keyPCRsFile: Array("sha256:17,13+sha1:17\n".utf8), source: "k").description == "sha256:13,17+sha1:17")
        for bad in ["sha256:13,17,18,19", "sha256:13,17\n\n", "sha256:13,17\r\n", " sha256:13\n", "sha256:13, 17\n",
                    "sha256:13,,17\n", "sha256:\n", "sha256:13,24\n", "md5:13\n", "sha256:13+\n", "sha256:0x11\n",
                    "sha256:13\u{0}\n", "sha256:13,17,18,19\nsha1:17\n"] {
            do {
                _ = try PCRSelection(keyPCRsFile: Array(bad.utf8), source: "/t/key.pcrs")
                Issue.record("accepted \(bad.debugDescription)")
            } catch let e as CodedError {
                #expect(e.code == .sealedObjectInvalid && e.reason.hasPrefix("/t/key.pcrs: "), "\(e.reason)")
            }
        }
    }

    /// AEM's own tpm2_create (Tests/Scripts/aem-tpm2.sh) makes the object; tpm2_readpublic says
    /// its authorization policy and name algorithm; the verdict from key.pub and key.pcrs over
    /// the TPM's PCRs is whether tpm2_unseal succeeds, before and after PCR13 changes.
    @Test func authPolicyIsTpm2ReadpublicsAndTheVerdictIsTpm2Unseals() throws {
        guard let tpm = try SwTPM2.start(), tool("tpm2_readpublic") != nil, tool("tpm2_load") != nil,
              tool("tpm2_pcrextend") != nil, tool("openssl") != nil, tool("xxd") != nil else { return }
        let dir = try tempDir()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try write(Array("srk pw\n".utf8), to: dir + "/srk")
        try FileManager.default.createDirectory(atPath: dir + "/secrets", withIntermediateDirectories: true)
        try write(Array("secret\n".utf8), to: dir + "/secrets/secret.txt")
        func aem(_ args: [String]) throws -> ProcessResult {
            try run("/bin/bash", [Repo.path("Tests/Scripts/aem-tpm2.sh")] + args, env: tpm.env)
        }
        try #require(try aem(["setup", "owner", dir + "/srk"]).status == 0)
        try tpm.tpm2("tpm2_pcrextend", ["13:sha256=" + (try pyHash("sha256", "LUKS header"))])
        let s = try aem(["seal", dir + "/srk", dir + "/secrets", dir + "/sealed"])
        try #require(s.status == 0, "\(s.stderr)")

        // tpm2_readpublic of the loaded object
        try tpm.tpm2("tpm2_load", ["-Q", "-C", "0x81000001", "-P", "str:srk pw", "-u", dir + "/sealed/key.pub",
                                   "-r", dir + "/sealed/key.priv", "-c", dir + "/obj.ctx"])
        let rp = try tpm.tpm2("tpm2_readpublic", ["-c", dir + "/obj.ctx"]).stdout
        try tpm.flush()
        let lines = rp.split(separator: "\n").map(String.init)
        let readPolicy = lines.first { $0.hasPrefix("authorization policy: ") }.map { String($0.dropFirst("authorization policy: ".count)) }
        let nameAlgRaw = lines.firstIndex(of: "name-alg:").map { lines[$0 + 2].trimmingCharacters(in: .whitespaces) }
        let pub = try SealedObjectPublic(parsing: Array(try Data(contentsOf: URL(fileURLWithPath: dir + "/sealed/key.pub"))), source: "key.pub")
        #expect(readPolicy != nil && Hex.encode(pub.authPolicy) == readPolicy, "\(rp)")
        #expect(nameAlgRaw == "raw: 0x\(String(pub.nameAlg.rawValue, radix: 16))", "\(rp)")

        var verdicts = [(Bool, Bool)]()
        for step in 0..<2 {
            if step == 1 { try tpm.tpm2("tpm2_pcrextend", ["13:sha256=" + (try pyHash("sha256", "another disk"))]) }
            let values = dir + "/values\(step).yaml"
            try tpm.pcrread("sha256:13,17,18,19", to: values)
            let enforced = try SealedEnforcement.read(dir: dir + "/sealed")
            let verdict = try enforced.refusing(try PCRValuesFile.read(path: values)).isEmpty
            let unsealed = try aem(["unseal", dir + "/srk", dir + "/sealed", dir + "/out\(step)"]).status == 0
            try tpm.flush()
            verdicts.append((verdict, unsealed))
        }
        #expect(verdicts.map(\.0) == verdicts.map(\.1), "verdict vs tpm2_unseal: \(verdicts)")
        #expect(verdicts.map(\.1) == [true, false])

        // An object with a SHA-1 name and the SHA-1 PolicyPCR of the PCRs as they are: the
        // policy matches, but tpm2_unseal's SHA-256 session is refused for it; so is the verdict.
        try tpm.tpm2("tpm2_startauthsession", ["-S", dir + "/s.ctx", "-g", "sha1"])
        try tpm.tpm2("tpm2_policypcr", ["-Q", "-S", dir + "/s.ctx", "-l", "sha256:13,17,18,19", "-L", dir + "/pol1"])
        try tpm.flush()
        try FileManager.default.createDirectory(atPath: dir + "/sha1", withIntermediateDirectories: true)
        try write(Array(repeating: 7, count: 16), to: dir + "/data")
        try tpm.tpm2("tpm2_create", ["-Q", "-C", "0x81000001", "-P", "str:srk pw", "-g", "sha1", "-L", dir + "/pol1",
                                     "-i", dir + "/data", "-u", dir + "/sha1/key.pub", "-r", dir + "/sha1/key.priv"])
        try write(Array("sha256:13,17,18,19\n".utf8), to: dir + "/sha1/key.pcrs")
        try tpm.tpm2("tpm2_load", ["-Q", "-C", "0x81000001", "-P", "str:srk pw", "-u", dir + "/sha1/key.pub",
                                   "-r", dir + "/sha1/key.priv", "-c", dir + "/sha1.ctx"])
        let u = try run(tool("tpm2_unseal")!, ["-c", dir + "/sha1.ctx", "-p", "pcr:sha256:13,17,18,19"], env: tpm.env)
        try tpm.flush()
        let values = try PCRValuesFile.read(path: dir + "/values1.yaml")
        let sha1Object = try SealedEnforcement.read(dir: dir + "/sha1")
        #expect(sha1Object.disagreement(of: values) == nil, "the SHA-1 policy is that of these values")
        #expect(u.status != 0)
        #expect(try sha1Object.refusing(values) == ["key.pub"])
    }
}
