// SPDX-License-Identifier: Apache-2.0
import Foundation
import Testing
@testable import AEMPCR
@testable import AEMPCRSeal
import CTspi

/// CTspi's TSS_UUID, named for MemoryLayout.
typealias CTspiUUIDProbe = CTspi_UUID

/// The TPM 1.2 sealer against independent references: python3 hashlib for PCR values and
/// composite digests, openssl(1) for AES-256-CBC, and tpm-tools on a TPM 1.2 swtpm behind tcsd
/// (Tests/Scripts/tpm12-swtpm.sh) for the file: `tpm_unsealdata -z`, what AEM runs at boot,
/// must open what the sealer wrote for predicted PCR values once a simulated boot produces them.
@Suite(.serialized) struct TPM12SealTests {
    static let reference = Repo.path("Tests/Scripts/tpm12-reference.py")

    static func python(_ args: [String]) throws -> String {
        let r = try run("/usr/bin/env", ["python3", reference] + args)
        try #require(r.status == 0, "tpm12-reference.py: \(r.stderr)")
        return r.stdout.trimmingCharacters(in: .whitespacesAndNewlines)
    }

    static func json(_ text: String) throws -> [String: Any] {
        try #require(JSONSerialization.jsonObject(with: Data(text.utf8)) as? [String: Any])
    }

    static func sha1Hex(_ s: String) -> String { MultiHasher.hash(.sha1, Array(s.utf8)).hex }

    // MARK: without a TPM

    /// TPM_COMPOSITE_HASH of several selections against python3's.
    @Test(arguments: [[13, 17, 18, 19], [0], [17], [0, 7, 8, 15, 16, 23], [19, 13]] as [[UInt32]])
    func compositeDigestMatchesPython(_ pcrs: [UInt32]) throws {
        var values = [UInt32: [UInt8]]()
        for i in pcrs { values[i] = MultiHasher.hash(.sha1, Array("pcr \(i)".utf8)).bytes }
        let arg = "{" + values.map { "\"\($0.key)\": \"\(Hex.encode($0.value))\"" }.joined(separator: ", ") + "}"
        let expected = try Self.python(["composite", arg])
        #expect(TPM12Composite.digest(values).map { Hex.encode($0) } == expected)
    }

    @Test func compositeRefusesBadValues() {
        #expect(TPM12Composite.digest([24: [UInt8](repeating: 0, count: 20)]) == nil)
        #expect(TPM12Composite.digest([17: [UInt8](repeating: 0, count: 32)]) == nil)
    }

    /// The data part equals `openssl enc -aes-256-cbc` with tpm_sealdata's IV, for lengths
    /// around the block size.
    @Test(.needsTool("openssl", package: "openssl"), arguments: [0, 1, 15, 16, 17, 4097])
    func encryptionMatchesOpenSSL(_ length: Int) throws {
        guard let openssl = tool("openssl") else { return }
        let dir = try tempDir()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let plain = (0..<length).map { UInt8(truncatingIfNeeded: $0 &* 7 &+ 3) }
        try write(plain, to: dir + "/in")
        let key = (0..<32).map { UInt8(truncatingIfNeeded: $0 &* 13 &+ 1) }
        let r = try run(openssl, ["enc", "-aes-256-cbc", "-K", Hex.encode(key),
                                  "-iv", Hex.encode(Array("IBM SEALIBM SEAL".utf8)),
                                  "-in", dir + "/in", "-out", dir + "/out"])
        try #require(r.status == 0, "openssl: \(r.stderr)")
        let expected = try [UInt8](Data(contentsOf: URL(fileURLWithPath: dir + "/out")))
        #expect(try TPM12Sealer.encrypt(plain, key: SecretBuffer(copying: key)) == expected)
    }

    /// Base64 lines as OpenSSL's base64 BIO writes them (`openssl base64` uses that BIO).
    @Test(.needsTool("openssl", package: "openssl"), arguments: [1, 2, 3, 47, 48, 49, 96, 559])
    func base64MatchesOpenSSL(_ length: Int) throws {
        guard let openssl = tool("openssl") else { return }
        let dir = try tempDir()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let bytes = (0..<length).map { UInt8(truncatingIfNeeded: $0 &* 31 &+ 5) }
        try write(bytes, to: dir + "/in")
        let r = try run(openssl, ["base64", "-in", dir + "/in"])
        try #require(r.status == 0)
        #expect(String(decoding: TPM12Sealer.base64Lines(bytes), as: UTF8.self) == r.stdout)
    }

    @Test func badPCRsAreRefusedBeforeAnyTPMAccess() {
        let v = [UInt8](repeating: 1, count: 20)
        #expect(throws: CodedError(.tpm12BadPCR, "no PCR to seal to: name at least one PCR and its value")) {
            _ = try TPM12Sealer.seal([1], toPCRs: [:])
        }
        #expect(throws: CodedError(.tpm12BadPCR, "PCR 24 does not exist on a TPM 1.2 (PCRs 0-23)")) {
            _ = try TPM12Sealer.seal([1], toPCRs: [17: v, 24: v])
        }
        #expect(throws: CodedError(.tpm12BadPCR, "PCR 18: a TPM 1.2 value is 20 bytes (SHA-1), not 32")) {
            _ = try TPM12Sealer.seal([1], toPCRs: [17: v, 18: v + [UInt8](repeating: 0, count: 12)])
        }
    }

    /// The constants and the TSS_UUID layout declared in Swift and in CTspi (so that the build
    /// needs no libtspi-dev) equal trousers' headers, compiled by cc.
    @Test(.needs("a C compiler and /usr/include/tss/tspi.h (Debian packages gcc, libtspi-dev)",
                 (["/usr/bin/cc", "/usr/bin/clang", "/opt/swift/usr/bin/clang"].contains { FileManager.default.isExecutableFile(atPath: $0) }
                  || findTool("cc") != nil) && FileManager.default.fileExists(atPath: "/usr/include/tss/tspi.h")))
    func declarationsMatchTrousersHeaders() throws {
        // A C compiler: the system's, or the clang that comes with the Swift toolchain.
        let compilers = ["/usr/bin/cc", "/usr/bin/clang", "/opt/swift/usr/bin/clang"]
        let found = compilers.first { FileManager.default.isExecutableFile(atPath: $0) }
        guard let cc = found ?? tool("cc"), FileManager.default.fileExists(atPath: "/usr/include/tss/tspi.h") else {
            Issue.record("/usr/include/tss/tspi.h or cc is missing; .ci/run installs libtspi-dev")  // the trait ran it
            return
        }
        let ours: [(String, UInt64)] = [
            ("TSS_OBJECT_TYPE_POLICY", UInt64(TSS.objectTypePolicy)),
            ("TSS_OBJECT_TYPE_RSAKEY", UInt64(TSS.objectTypeRSAKey)),
            ("TSS_OBJECT_TYPE_ENCDATA", UInt64(TSS.objectTypeEncData)),
            ("TSS_OBJECT_TYPE_PCRS", UInt64(TSS.objectTypePCRs)),
            ("TSS_KEY_AUTHORIZATION", UInt64(TSS.keyAuthorization)),
            ("TSS_KEY_VOLATILE", UInt64(TSS.keyVolatile)),
            ("TSS_KEY_NOT_MIGRATABLE", UInt64(TSS.keyNotMigratable)),
            ("TSS_KEY_TYPE_STORAGE", UInt64(TSS.keyTypeStorage)),
            ("TSS_KEY_SIZE_2048", UInt64(TSS.keySize2048)),
            ("TSS_ENCDATA_SEAL", UInt64(TSS.encDataSeal)),
            ("TSS_PCRS_STRUCT_INFO_LONG", UInt64(TSS.pcrsStructInfoLong)),
            ("TSS_POLICY_USAGE", UInt64(TSS.policyUsage)),
            ("TSS_SECRET_MODE_SHA1", UInt64(TSS.secretModeSHA1)),
            ("TSS_SECRET_MODE_PLAIN", UInt64(TSS.secretModePlain)),
            ("TSS_PS_TYPE_SYSTEM", UInt64(TSS.psTypeSystem)),
            ("TSS_TSPATTRIB_ENCDATA_BLOB", UInt64(TSS.attribEncDataBlob)),
            ("TSS_TSPATTRIB_ENCDATABLOB_BLOB", UInt64(TSS.attribEncDataBlobBlob)),
            ("TSS_TSPATTRIB_KEY_BLOB", UInt64(TSS.attribKeyBlob)),
            ("TSS_TSPATTRIB_KEYBLOB_BLOB", UInt64(TSS.attribKeyBlobBlob)),
            ("TPM_LOC_ZERO|TPM_LOC_ONE|TPM_LOC_TWO|TPM_LOC_THREE|TPM_LOC_FOUR", UInt64(TSS.allLocalities)),
            ("TPM_E_AUTHFAIL", UInt64(TSS.tpmAuthFail)),
            ("TPM_E_DEACTIVATED", UInt64(TSS.tpmDeactivated)),
            ("TPM_E_DISABLED", UInt64(TSS.tpmDisabled)),
            ("TPM_E_NOSRK", UInt64(TSS.tpmNoSRK)),
            ("TSS_E_COMM_FAILURE", UInt64(TSS.eCommFailure)),
            ("TSS_E_NO_CONNECTION", UInt64(TSS.eNoConnection)),
            ("TSS_E_CONNECTION_FAILED", UInt64(TSS.eConnectionFailed)),
            ("TSS_E_CONNECTION_BROKEN", UInt64(TSS.eConnectionBroken)),
            ("TSS_E_PS_KEY_NOTFOUND", UInt64(TSS.ePSKeyNotFound)),
            ("TSS_LAYER_TSP", 0x3000),
            ("ERROR_CODE(0x3011)", UInt64(TSS.code(0x3011))),
            ("ERROR_LAYER(0x3011)", UInt64(TSS.layer(0x3011))),
            ("sizeof(wellKnown)", UInt64(TSS.wellKnownSecret.count)),
            ("memcmp(wellKnown, zeros, 20) == 0", TSS.wellKnownSecret.allSatisfy { $0 == 0 } ? 1 : 0),
            ("sizeof(TSS_UUID)", UInt64(MemoryLayout<CTspiUUIDProbe>.size)),
            ("offsetof(TSS_UUID, bClockSeqHigh)", UInt64(MemoryLayout<CTspiUUIDProbe>.offset(of: \.bClockSeqHigh)!)),
            ("offsetof(TSS_UUID, rgbNode)", UInt64(MemoryLayout<CTspiUUIDProbe>.offset(of: \.rgbNode)!)),
            ("memcmp(&srk, &oursrk, 16) == 0", 1),
            ("sizeof(TSS_HCONTEXT)", UInt64(MemoryLayout<TSS.Handle>.size)),
            ("sizeof(TSS_RESULT)", UInt64(MemoryLayout<TSS.Result>.size)),
            ("sizeof(TSS_UNICODE)", UInt64(MemoryLayout<UInt16>.size)),
        ]
        let srk = TSS.srkUUID
        let srkBytes = withUnsafeBytes(of: srk) { Array($0) }
        var c = """
            #include <stdio.h>
            #include <stddef.h>
            #include <string.h>
            #include <tss/tspi.h>
            #include <tss/tpm.h>
            #include <tss/tss_error.h>
            #include <tss/tss_error_basics.h>
            int main(void) {
                BYTE wellKnown[] = TSS_WELL_KNOWN_SECRET; BYTE zeros[20] = {0};
                TSS_UUID srk = TSS_UUID_SRK;
                unsigned char oursrk[16] = {\(srkBytes.map(String.init).joined(separator: ", "))};

            """
        for (name, _) in ours { c += "    printf(\"%lu\\n\", (unsigned long)(\(name)));\n" }
        c += "    return 0;\n}\n"
        let dir = try tempDir()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try write(Array(c.utf8), to: dir + "/check.c")
        let built = try run(cc, ["-o", dir + "/check", dir + "/check.c"])
        try #require(built.status == 0, "cc: \(built.stderr)")
        let lines = try run(dir + "/check", []).stdout.split(separator: "\n").map { UInt64($0)! }
        try #require(lines.count == ours.count)
        for ((name, value), header) in zip(ours, lines) { #expect(value == header, "\(name)") }
    }

    /// Without trousers' library: one sentence naming the packages, not a crash at start-up.
    @Test func missingLibraryNamesThePackages() {
        do {
            _ = try TSPILibrary("libtspi-not-installed.so.1")
            Issue.record("a missing library loaded")
        } catch let e as CodedError {
            #expect(e.code == .tpm12LibtspiMissing)
            #expect(e.reason.contains("libtspi1") && e.reason.contains("trousers-lib"))
            #expect(!e.reason.contains("\n"))
        } catch { Issue.record("\(error)") }
    }

    /// aem-pcr does not link trousers: it starts and predicts where trousers is absent.
    @Test(.needsTool("readelf", package: "binutils")) func binaryDoesNotLinkTrousers() throws {
        guard let readelf = tool("readelf") else { return }
        let r = try run(readelf, ["-d", Repo.binary])
        try #require(r.status == 0, "readelf: \(r.stderr)")
        #expect(r.stdout.contains("(NEEDED)"))
        #expect(!r.stdout.contains("libtspi"))
    }

    /// A TPM_STORED_DATA12 as trousers writes it for PCRs 13, 17, 18, 19, annotated.
    static let storedData12: [UInt8] =
        [0x00, 0x16,  0x00, 0x00,  0x00, 0x00, 0x00, 0x36]  // tag STORED_DATA12, et, sealInfoSize 54
        + [0x00, 0x06,  0x01,  0x1F]                        // PCR_INFO_LONG, locality at creation, at release
        + [0x00, 0x03, 0x00, 0x00, 0x00]                    // creation selection: none
        + [0x00, 0x03, 0x00, 0x20, 0x0E]                    // release selection: 13, 17, 18, 19
        + [UInt8](repeating: 0xCC, count: 20)               // digestAtCreation
        + (1...20).map { UInt8($0) }                        // digestAtRelease
        + [0x00, 0x00, 0x01, 0x00] + [UInt8](repeating: 0xEE, count: 256)  // encData (not read)

    static func frame(_ sealed: [UInt8]) -> [UInt8] {
        Array("-----BEGIN TSS-----\n-----TSS KEY-----\n".utf8) + TPM12Sealer.base64Lines([1, 2, 3])
            + Array("-----ENC KEY-----\nSymmetric Key: AES-256-CBC\n".utf8) + TPM12Sealer.base64Lines(sealed)
            + Array("-----ENC DAT-----\n".utf8) + TPM12Sealer.base64Lines([4, 5, 6]) + Array("-----END TSS-----\n".utf8)
    }

    @Test func sealedFileReadsReleaseFields() throws {
        let info = try TPM12SealedFile(parsing: Self.frame(Self.storedData12))
        #expect(info.releasePCRs == [13, 17, 18, 19])
        #expect(info.localityAtRelease == 0x1F)
        #expect(info.digestAtRelease == (1...20).map { UInt8($0) })
    }

    /// Every truncated sealed key up to the end of its PCR info is refused with an offset.
    @Test func sealedFileTruncationsAreRefused() {
        for n in 0..<62 {
            #expect(throws: CodedError.self, "prefix \(n)") {
                _ = try TPM12SealedFile(parsing: Self.frame(Array(Self.storedData12.prefix(n))))
            }
        }
    }

    @Test(arguments: [
        (0, 0x17, "neither a TPM_STORED_DATA12"),   // unknown tag
        (7, 0x37, "sealInfoSize 55 disagrees"),     // sealInfoSize off by one
        (7, 0x00, "bound to no PCR"),               // no PCR info
        (9, 0x05, "not a TPM_PCR_INFO_LONG"),       // info tag
        (18, 0x04, "of 4 bytes"),                   // release selection too large
    ] as [(Int, UInt8, String)])
    func sealedFileGarbledFieldsAreNamed(_ offset: Int, _ byte: UInt8, _ message: String) {
        var blob = Self.storedData12
        blob[offset] = byte
        do {
            _ = try TPM12SealedFile(parsing: Self.frame(blob))
            Issue.record("accepted a garbled byte \(offset)")
        } catch let e as CodedError {
            #expect(e.code == .tpm12SealedFileInvalid)
            #expect(e.reason.contains(message), "\(e.reason)")
        } catch { Issue.record("\(error)") }
    }

    @Test func sealedFileFrameErrorsAreNamed() {
        let good = Self.frame(Self.storedData12)
        let text = String(decoding: good, as: UTF8.self)
        let cases: [(String, String)] = [
            (text.replacingOccurrences(of: "-----BEGIN TSS-----", with: "-----BEGIN XSS-----"), "line 1"),
            (text.replacingOccurrences(of: "AES-256-CBC", with: "AES-128-CBC"), "Symmetric Key"),
            (text.replacingOccurrences(of: "-----END TSS-----\n", with: ""), "END TSS"),
            (text.replacingOccurrences(of: "ABYAAAAA", with: "ABYA*AAA"), "base64"),
        ]
        for (input, message) in cases {
            #expect(throws: CodedError.self) { _ = try TPM12SealedFile(parsing: Array(input.utf8)) }
            do { _ = try TPM12SealedFile(parsing: Array(input.utf8)) } catch let e as CodedError {
                #expect(e.reason.contains(message), "\(e.reason)")
            } catch {}
        }
    }

    // MARK: on a TPM 1.2 swtpm with tcsd

    /// Seals AEM-like secrets to the PCRs a predicted boot B will produce while the TPM holds
    /// boot A's; before boot B tpm_unsealdata fails, after it recovers every byte, after a
    /// tampered boot it fails again. The file's frame and sealed fields equal tpm_sealdata's
    /// own on boot B, and its digestAtRelease is python3's composite of the predicted values.
    @Test(.needsTPM12) func sealedForPredictedBootOpensWithTpmUnsealdata() throws {
        guard let unseal = tool("tpm_unsealdata"), let sealdata = tool("tpm_sealdata"),
              tool("tcsd") != nil, tool("swtpm") != nil, tool("swtpm_ioctl") != nil,
              tool("tpm_takeownership") != nil else { return }
        guard let tpm = try TPM12Fixture.start() else { return }
        defer { tpm.stop() }
        let env = ["TSS_TCSD_PORT": tpm.tcsdPort]

        let luks = Self.sha1Hex("LUKS header"), a18 = Self.sha1Hex("tboot A"), a19 = Self.sha1Hex("xen A")
        let b18 = Self.sha1Hex("tboot B"), b19 = Self.sha1Hex("xen B"), c19 = Self.sha1Hex("xen tampered")
        try tpm.boot("mle-A", [(13, luks), (18, a18), (19, a19)])

        // Boot B's values, predicted independently.
        let spec = #"{"drtm": "mle-B", "extends": {"13": ["\#(luks)"], "18": ["\#(b18)"], "19": ["\#(b19)"]}}"#
        let predicted = try Self.json(Self.python(["pcrs", spec]))
        let values = try #require(predicted["pcrs"] as? [String: String])
        var toPCRs = [UInt32: [UInt8]]()
        for (k, v) in values { toPCRs[UInt32(k)!] = Hex.decode(v)! }
        #expect(toPCRs.keys.sorted() == [13, 17, 18, 19])

        let dir = try tempDir()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let secrets: [(String, [UInt8])] = [
            ("txt", Array("my AEM secret text\n".utf8)),
            ("fre", (0..<20).map { UInt8($0 * 11 + 1) }),
            ("key", (0..<1000).map { UInt8(truncatingIfNeeded: $0 &* 97 &+ 13) }),
            ("otp", Array("JBSWY3DPEHPK3PXP".utf8)),  // 16 bytes: one padding block follows
            ("empty", []),
        ]
        for (n, (name, plain)) in secrets.enumerated() {
            // One through a named tcsd host (trousers takes it as UTF-16), the others the default.
            let file = try TPM12Sealer.seal(plain, toPCRs: toPCRs, tcsHost: n == 1 ? "127.0.0.1" : nil)
            try write(file, to: "\(dir)/secret.\(name).sealed2")
        }

        func unsealed(_ name: String) throws -> [UInt8]? {
            let out = "\(dir)/out.\(name)"
            try? FileManager.default.removeItem(atPath: out)
            let r = try run(unseal, ["-z", "-i", "\(dir)/secret.\(name).sealed2", "-o", out], env: env)
            guard r.status == 0 else { return nil }
            return try [UInt8](Data(contentsOf: URL(fileURLWithPath: out)))
        }

        // Still boot A: the TPM refuses.
        for (name, _) in secrets { #expect(try unsealed(name) == nil, "opened on boot A: \(name)") }

        try tpm.boot("mle-B", [(13, luks), (18, b18), (19, b19)])
        for (name, plain) in secrets { #expect(try unsealed(name) == plain, "secret.\(name)") }

        // tpm_sealdata's own file on boot B, field by field against ours.
        try write(secrets[0].1, to: dir + "/plain")
        let ref = try run(sealdata, ["-z", "--pcr", "13", "--pcr", "17", "--pcr", "18", "--pcr", "19",
                                     "-i", dir + "/plain", "-o", dir + "/ref.sealed"], env: env)
        try #require(ref.status == 0, "tpm_sealdata: \(ref.stderr)")
        let theirs = try Self.json(Self.python(["file", dir + "/ref.sealed"]))
        let ours = try Self.json(Self.python(["file", dir + "/secret.txt.sealed2"]))
        for field in ["frame", "longest", "key_params", "stored_tag", "info_tag", "locality_release",
                      "release_selection", "digest_release", "data_length"] {
            #expect(String(describing: ours[field]!) == String(describing: theirs[field]!), "\(field)")
        }
        #expect(ours["digest_release"] as? String == predicted["composite"] as? String)
        // Read back without a TPM (what check-boot does), from both files.
        for path in [dir + "/ref.sealed", dir + "/secret.txt.sealed2"] {
            let info = try TPM12SealedFile(parsing: [UInt8](Data(contentsOf: URL(fileURLWithPath: path))))
            #expect(info.releasePCRs == [13, 17, 18, 19])
            #expect(info.localityAtRelease == 0x1F)
            #expect(Hex.encode(info.digestAtRelease) == predicted["composite"] as? String)
            #expect(info.isReleased(by: toPCRs) == true)
            var tampered = toPCRs
            tampered[19] = Hex.decode(c19)!
            #expect(info.isReleased(by: tampered) == false)
            #expect(info.isReleased(by: [13: toPCRs[13]!]) == nil)
        }
        #expect(ours["release_selection"] as? String == "000300200e")  // PCRs 13, 17, 18, 19

        // A tampered boot (another Xen): refused again.
        try tpm.boot("mle-B", [(13, luks), (18, b18), (19, c19)])
        for (name, _) in secrets { #expect(try unsealed(name) == nil, "opened after tampering: \(name)") }

        // The SRK of this TPM takes the well-known secret; a password is refused, by name.
        #expect(throws: CodedError.self) {
            _ = try TPM12Sealer.seal([1], toPCRs: toPCRs, srk: .password(SecretBuffer(copying: Array("wrong".utf8))))
        }
        do {
            _ = try TPM12Sealer.seal([1], toPCRs: toPCRs, srk: .password(SecretBuffer(copying: Array("wrong".utf8))))
        } catch let e as CodedError {
            #expect(e.code == .tpm12SRKAuthFailed)
            #expect(!e.reason.contains("wrong"))
        }

        // No tcsd: one sentence that says to start it.
        try tpm.command("tcsd-stop")
        do {
            _ = try TPM12Sealer.seal([1], toPCRs: toPCRs)
            Issue.record("sealed without tcsd")
        } catch let e as CodedError {
            #expect(e.code == .tpm12TcsdUnreachable)
            #expect(e.reason.contains("start tcsd (trousers)"))
            #expect(!e.reason.contains("\n"))
        }
    }

    /// Boot values predicted by python3 for a launch of `data` with these extends.
    static func predict(_ data: String, _ extends: [(Int, String)]) throws -> [UInt32: [UInt8]] {
        var byPCR = [Int: [String]]()
        for (i, d) in extends { byPCR[i, default: []].append(d) }
        let list = byPCR.map { "\"\($0.key)\": [" + $0.value.map { "\"\($0)\"" }.joined(separator: ", ") + "]" }
        let spec = "{\"drtm\": \"\(data)\", \"extends\": {" + list.joined(separator: ", ") + "}}"
        let values = try #require(json(python(["pcrs", spec]))["pcrs"] as? [String: String])
        var out = [UInt32: [UInt8]]()
        for (k, v) in values { out[UInt32(k)!] = Hex.decode(v)! }
        return out
    }

    /// AEM with an SRK password: sealed with that password, opened by `tpm_unsealdata` without
    /// -z reading the password from stdin with no terminal, as AEM's tpmunsealdata does
    /// (`< $SRK_PASSWORD_CACHE`); the well-known secret is then refused with a message.
    @Test(.needsTPM12, .needsTool("setsid", package: "util-linux")) func srkPasswordAsAEMGivesIt() throws {
        guard let unseal = tool("tpm_unsealdata"), let setsid = tool("setsid"), tool("tcsd") != nil,
              tool("swtpm") != nil, tool("tpm_takeownership") != nil else { return }
        let dir = try tempDir()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let password = "aem srk pw"
        try write(Array((password + "\n").utf8), to: dir + "/srk-password")
        guard let tpm = try TPM12Fixture.start(["--srk-password-file", dir + "/srk-password"]) else { return }
        defer { tpm.stop() }

        let luks = Self.sha1Hex("LUKS header"), x18 = Self.sha1Hex("tboot P"), x19 = Self.sha1Hex("xen P")
        let extends = [(13, luks), (18, x18), (19, x19)]
        let toPCRs = try Self.predict("mle-P", extends)
        let plain = Array("sealed under an SRK password\n".utf8)
        let file = try TPM12Sealer.seal(plain, toPCRs: toPCRs, srk: .password(SecretBuffer(copying: Array(password.utf8))))
        try write(file, to: dir + "/secret.txt.sealed2")
        try tpm.boot("mle-P", extends)

        let r = try run("/bin/sh", ["-c", "exec \"$1\" -w \"$2\" -i \"$3\" -o \"$4\" < \"$5\"", "sh",
                                    setsid, unseal, dir + "/secret.txt.sealed2", dir + "/out",
                                    dir + "/srk-password"], env: ["TSS_TCSD_PORT": tpm.tcsdPort])
        #expect(r.status == 0, "tpm_unsealdata: \(r.stderr)")
        #expect(try [UInt8](Data(contentsOf: URL(fileURLWithPath: dir + "/out"))) == plain)

        do {
            _ = try TPM12Sealer.seal(plain, toPCRs: toPCRs)
            Issue.record("sealed with the well-known secret on a TPM whose SRK has a password")
        } catch let e as CodedError {
            #expect(e.code == .tpm12SRKAuthFailed)
            #expect(e.reason.contains("SRK password"))
        }
    }

    /// A TPM nobody owns: one sentence that says what AEM expects.
    @Test(.needsTPM12) func unownedTPMIsNamed() throws {
        guard tool("tcsd") != nil, tool("swtpm") != nil, tool("tpm_takeownership") != nil else { return }
        guard let tpm = try TPM12Fixture.start(["--no-owner"]) else { return }
        defer { tpm.stop() }
        do {
            _ = try TPM12Sealer.seal([1], toPCRs: [17: [UInt8](repeating: 0, count: 20)])
            Issue.record("sealed on a TPM without owner")
        } catch let e as CodedError {
            #expect(e.code == .tpm12NoOwner, "\(e.reason)")
            #expect(e.reason.contains("anti-evil-maid-tpm-setup"))
        }
    }
}
