// SPDX-License-Identifier: Apache-2.0
import Foundation
import Testing
@testable import AEMPCR
@testable import AEMPCRTPM

/// What crosses to the TPM, and how long aem-pcr waits for it (issue 19, items 1 and 8).
/// The reference is outside the code under test: tpm2-tss's pcap TCTI records every byte sent
/// and received, tpm2-tools unseals what was created, swtpm is stopped with SIGSTOP, and
/// Tests/Scripts/tpm-proxy.py stands in front of swtpm and never answers a chosen command.
@Suite(.serialized) struct TPMChannelTests {
    static let srkPassword = "srk pass"

    /// swtpm with AEM's SRK at 0x81000001 (Tests/Scripts/aem-tpm2.sh setup, tpm2-tools).
    static func aemTPM() throws -> (tpm: SwTPM2, srkFile: String)? {
        for t in ["tpm2_createprimary", "tpm2_evictcontrol", "tpm2_changeauth", "tpm2_create", "tpm2_load",
                  "tpm2_unseal", "xxd"] where tool(t) == nil { return nil }
        guard let tpm = try SwTPM2.start() else { return nil }
        let srkFile = tpm.dir + "/srk-password"
        try write(Array((srkPassword + "\n").utf8), to: srkFile)
        let r = try run("/bin/bash", [Repo.path("Tests/Scripts/aem-tpm2.sh"), "setup", "owner pass", srkFile], env: tpm.env)
        try #require(r.status == 0, "aem-tpm2.sh setup: \(r.stderr)")
        return (tpm, srkFile)
    }

    /// AEM's policy for the TPM's current sha256:13,17,18,19, as tpm2-tools computes it.
    static func policy(_ tpm: SwTPM2) throws -> Digest {
        let path = tpm.dir + "/policy"
        try tpm.tpm2("tpm2_createpolicy", ["--policy-pcr", "-l", "sha256:13,17,18,19", "-L", path])
        try tpm.flush()  // tpm2_createpolicy leaves its trial session loaded
        return try #require(Digest(.sha256, bytes: Array(try Data(contentsOf: URL(fileURLWithPath: path)))))
    }

    static func contains(_ haystack: [UInt8], _ needle: [UInt8]) -> Bool {
        guard !needle.isEmpty, haystack.count >= needle.count else { return false }
        return (0...(haystack.count - needle.count)).contains { i in haystack[i..<(i + needle.count)].elementsEqual(needle) }
    }

    static func randomBytes(_ n: Int) -> [UInt8] {
        var g = SystemRandomNumberGenerator()
        return (0..<n).map { _ in UInt8.random(in: 0...255, using: &g) }
    }

    /// Unseals key.pub/key.priv with tpm2-tools as AEM does (tpm2_load under the SRK with its
    /// password, tpm2_unseal through a PolicyPCR session).
    static func unsealWithTPM2Tools(_ tpm: SwTPM2, pub: String, priv: String) throws -> [UInt8] {
        let ctx = tpm.dir + "/key.ctx", out = tpm.dir + "/unsealed"
        try tpm.tpm2("tpm2_load", ["-Q", "-C", "0x81000001", "-P", "str:" + srkPassword, "-u", pub, "-r", priv, "-c", ctx])
        try tpm.tpm2("tpm2_unseal", ["-c", ctx, "-p", "pcr:sha256:13,17,18,19", "-o", out])
        try tpm.flush()
        return Array(try Data(contentsOf: URL(fileURLWithPath: out)))
    }

    /// The sealing object is created through tpm2-tss's pcap TCTI, which records every byte
    /// that crosses to the TPM and back: neither the SRK password nor the sealed data are in
    /// the capture, while TPM2_Create's answer is (the capture saw the exchange), and
    /// tpm2-tools unseals the data from the object made.
    @Test(.needsSoftwareTPM) func neitherThePasswordNorTheDataCrossInClear() throws {
        guard let (tpm, _) = try Self.aemTPM() else { return }
        let capture = tpm.dir + "/seal.pcap"
        let config = "pcap:" + tpm.tcti
        let choice = TCTIChoice(configuration: config, origin: "test")
        // the public door refuses pcap
        #expect { _ = try TPM2Device(tcti: choice) } throws: { ($0 as? CodedError)?.code == .tpmTCTIRefused }
        #expect(!FileManager.default.fileExists(atPath: capture))

        let password = Array(Self.srkPassword.utf8)
        let data = Self.randomBytes(16)
        let policy = try Self.policy(tpm)
        setenv("TCTI_PCAP_FILE", capture, 1)
        defer { unsetenv("TCTI_PCAP_FILE") }
        let object: TPM2SealedObject = try {
            let device = try TPM2Device(tcti: choice, verbose: false, loaderConfiguration: config)
            return try password.withUnsafeBytes { p in
                try data.withUnsafeBytes { d in try device.createSealedObject(parentAuth: p, data: d, authPolicy: policy) }
            }
        }()
        // the session was flushed: tpm2-tools sees none loaded (swtpm has no resource manager)
        #expect(try Self.sessions(tpm).isEmpty)
        let bytes = Array(try Data(contentsOf: URL(fileURLWithPath: capture)))
        #expect(Self.contains(bytes, Array(object.publicBytes.dropFirst(2))), "the capture holds TPM2_Create's answer")
        #expect(!Self.contains(bytes, password), "the SRK password crossed in clear")
        #expect(!Self.contains(bytes, data), "the sealed data crossed in clear")

        let pub = tpm.dir + "/key.pub", priv = tpm.dir + "/key.priv"
        try write(object.publicBytes, to: pub)
        try write(object.privateBytes, to: priv)
        #expect(try Self.unsealWithTPM2Tools(tpm, pub: pub, priv: priv) == data)
    }

    /// The handles of the sessions loaded or saved in the TPM (tpm2_getcap).
    static func sessions(_ tpm: SwTPM2) throws -> String {
        let loaded = try tpm.tpm2("tpm2_getcap", ["handles-loaded-session"]).stdout
        let saved = try tpm.tpm2("tpm2_getcap", ["handles-saved-session"]).stdout
        return (loaded + saved).trimmingCharacters(in: .whitespacesAndNewlines)
    }

    /// A wrong SRK password: the TPM refuses the HMAC, the error says so, and the session is
    /// flushed on that path too.
    @Test(.needsSoftwareTPM) func aWrongPasswordLeavesNoSession() throws {
        guard let (tpm, _) = try Self.aemTPM() else { return }
        let device = try TPM2Device(tcti: TCTIChoice(configuration: tpm.tcti, origin: "test"))
        let policy = try Self.policy(tpm)
        let wrong = Array("not it".utf8), data = Self.randomBytes(16)
        #expect(performing: {
            try wrong.withUnsafeBytes { p in
                try data.withUnsafeBytes { d in _ = try device.createSealedObject(parentAuth: p, data: d, authPolicy: policy) }
            }
        }, throws: { "\($0)".contains("SRK password is wrong") })
        #expect(try Self.sessions(tpm).isEmpty)
    }

    /// The same capture of AEM's own `tpm2_create -P str:… -i -` holds the sealed data (the
    /// search above finds it when it is there). tpm2-tools 5.4 authorises with an unsalted
    /// HMAC session, so its capture holds no password, but HMACs keyed with it (open to an
    /// offline guess); with the old password session (before this change) the capture of
    /// aem-pcr's own seal held both.
    @Test(.needsSoftwareTPM) func aemsOwnCreateSendsTheDataInClear() throws {
        guard let (tpm, _) = try Self.aemTPM() else { return }
        let capture = tpm.dir + "/aem.pcap"
        let data = Self.randomBytes(16)
        let dataFile = tpm.dir + "/data", policyFile = tpm.dir + "/policy"
        try write(data, to: dataFile)
        _ = try Self.policy(tpm)
        let r = try run(tool("tpm2_create")!, ["-Q", "-C", "0x81000001", "-P", "str:" + Self.srkPassword, "-L", policyFile,
                                               "-i", dataFile, "-u", tpm.dir + "/key.pub", "-r", tpm.dir + "/key.priv"],
                        env: ["TPM2TOOLS_TCTI": "pcap:" + tpm.tcti, "TCTI_PCAP_FILE": capture])
        try #require(r.status == 0, "tpm2_create: \(r.stderr)")
        let bytes = Array(try Data(contentsOf: URL(fileURLWithPath: capture)))
        #expect(Self.contains(bytes, data))
    }

    /// seal refuses a TCTI that logs or runs commands, from --tcti, TPM2TOOLS_TCTI or TCTI,
    /// with one line, before a password is asked (no --srk-password-file and no terminal: the
    /// prompt would fail otherwise) and before anything is opened or written.
    @Test func sealRefusesALoggingOrCommandTCTI() throws {
        let dir = try tempDir()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let cases: [([String: String], [String])] = [
            (["TPM2TOOLS_TCTI": "pcap:swtpm:path=\(dir)/sock"], []),
            (["TCTI": "pcap:device:/dev/tpmrm0"], []),
            ([:], ["--tcti", "cmd:sleep 30"]),
            ([:], ["--tcti", "libtss2-tcti-pcap.so.0:swtpm"]),
            ([:], ["--tcti", ":swtpm"]),
        ]
        try write([], to: dir + "/log")
        for (env, args) in cases {
            let started = Date()
            let r = try run("/usr/bin/env", ["-u", "TPM2TOOLS_TCTI", "-u", "TCTI"] + env.map { "\($0)=\($1)" } + [Repo.binary, "seal", "--label", "aem",
                                             "--aem-dir", dir, "--tpm-dir", dir + "/tpm", "--event-log", dir + "/log",
                                             "--grub-cfg", Repo.path("Vectors/example/grub.cfg"), "--entry", "0"] + args,
                            cwd: dir, env: ["TCTI_PCAP_FILE": dir + "/x.pcap"])
            let what = "\(env) \(args)"
            #expect(r.status == 2, "\(what): \(r.stderr)")
            #expect(r.stderr.hasPrefix("aem-pcr: error: refusing TCTI '") && r.stderr.split(separator: "\n").count == 1, "\(what): \(r.stderr)")
            #expect(r.stderr.contains("device, swtpm, mssim or tabrmd"), "\(what): \(r.stderr)")
            #expect(Date().timeIntervalSince(started) < 5, "\(what)")
            #expect(try FileManager.default.contentsOfDirectory(atPath: dir) == ["log"], "\(what): left files")
        }
        // read refuses them too
        let c = try aemPCR(["read", "--pcr", "17", "--tcti", "cmd:sleep 30"])
        #expect(c.status == 2 && c.stderr.contains("refusing TCTI 'cmd:sleep 30' (from --tcti)"), "\(c.stderr)")
    }

    /// A device TCTI on something that is not a character device (a file it would write the
    /// commands into) is refused.
    @Test func deviceTCTIOnAFileIsRefused() throws {
        let dir = try tempDir()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try write([], to: dir + "/tpm")
        let r = try aemPCR(["read", "--pcr", "17", "--tcti", "device:\(dir)/tpm"])
        #expect(r.status == 2 && r.stderr.contains("is not a character device"), "\(r.stderr)")
        #expect(try Data(contentsOf: URL(fileURLWithPath: dir + "/tpm")).isEmpty)
    }

    // MARK: Bounded waits

    /// Tests/Scripts/tpm-proxy.py in front of `tpm`'s socket (or in front of nothing, `silent`),
    /// listening on `listen`; stopped when the returned process's standard input closes.
    final class Proxy {
        let process = Process()
        let input = Pipe()
        let socket: String
        var tcti: String { "swtpm:path=\(socket)" }

        init(_ socket: String, upstream: String, _ mode: [String]) throws {
            self.socket = socket
            let out = Pipe()
            process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
            process.arguments = ["python3", Repo.path("Tests/Scripts/tpm-proxy.py"), socket, upstream] + mode
            process.standardInput = input
            process.standardOutput = out
            try process.run()
            let ready = out.fileHandleForReading.availableData
            try #require(String(decoding: ready, as: UTF8.self).hasPrefix("ready"), "tpm-proxy.py did not start")
        }

        deinit {
            try? input.fileHandleForWriting.close()
            if process.isRunning { kill(process.processIdentifier, SIGKILL) }
            process.waitUntilExit()
            for p in [socket, socket + ".ctrl"] { try? FileManager.default.removeItem(atPath: p) }
        }
    }

    /// Runs aem-pcr with the bound shortened to `seconds` (debug builds) and checks the one
    /// line naming `transport` and exit status 2, within the bound plus a margin.
    static func expectTimeout(_ args: [String], seconds: String?, transport: String, env: [String: String] = [:],
                              sourceLocation: SourceLocation = #_sourceLocation) throws {
        let started = Date()
        var e = env
        if let seconds { e["AEM_PCR_TEST_TPM_TIMEOUT"] = seconds }
        let r = try aemPCR(args, env: e)
        let took = Date().timeIntervalSince(started)
        let bound = Double(seconds ?? "10")!
        #expect(r.status == 2, "\(args): \(r.stderr)", sourceLocation: sourceLocation)
        #expect(r.stderr == "aem-pcr: error: the TPM did not answer within \(seconds ?? "10") s through \(transport)\n",
                "\(args): \(r.stderr)", sourceLocation: sourceLocation)
        #expect(took >= bound - 0.1 && took < bound + 4, "\(args): took \(took) s", sourceLocation: sourceLocation)
    }

    /// A stopped swtpm (SIGSTOP): read ends after the default 10 s with one line.
    @Test(.needsSoftwareTPM) func aStoppedTPMEndsAReadAfterTenSeconds() throws {
        guard let tpm = try SwTPM2.start(), let pid = tpm.pid else { return }
        kill(pid, SIGSTOP)
        defer { kill(pid, SIGCONT) }
        try Self.expectTimeout(["read", "--pcr", "17", "--tcti", tpm.tcti], seconds: nil,
                               transport: "TCTI '\(tpm.tcti)' (from --tcti)")
        try Self.expectTimeout(["read", "--pcr", "17"], seconds: "2", transport: "TCTI '\(tpm.tcti)' (from TPM2TOOLS_TCTI)",
                               env: ["TPM2TOOLS_TCTI": tpm.tcti])
    }

    /// A TPM that accepts the connection and never answers (opening it hangs), and one whose
    /// answer to TPM2_PCR_Read stops after 5 bytes.
    @Test(.needsSoftwareTPM) func aSilentOrTruncatingTPMEndsARead() throws {
        guard let tpm = try SwTPM2.start() else { return }
        let silent = try Proxy(tpm.dir + "/silent", upstream: "-", ["silent"])
        try Self.expectTimeout(["read", "--pcr", "17", "--tcti", silent.tcti], seconds: "1.5",
                               transport: "TCTI '\(silent.tcti)' (from --tcti)")
        let cut = try Proxy(tpm.dir + "/cut", upstream: tpm.socket, ["truncate", "17e"])
        try Self.expectTimeout(["read", "--pcr", "17", "--tcti", cut.tcti], seconds: "1.5",
                               transport: "TCTI '\(cut.tcti)' (from --tcti)")
        // through the proxy, without the fault, the read works
        let pass = try Proxy(tpm.dir + "/pass", upstream: tpm.socket, ["hang", "1"])
        let ok = try aemPCR(["read", "--pcr", "17", "--tcti", pass.tcti])
        #expect(ok.status == 0, "\(ok.stderr)")
    }

    /// seal on a TPM that stops answering at TPM2_StartAuthSession, at TPM2_Create, or from
    /// the start: one line, exit 2, the sealed set untouched, nothing left beside it.
    @Test(.needsSoftwareTPM) func sealEndsWhenTheTPMStopsAnswering() throws {
        guard let m = try SealTests.Machine() else { return }
        try m.aem(["seal", m.srkFile, m.secrets, m.sealed])
        let old = try m.snapshot(m.sealed)
        _ = try m.installNewInitramfs()
        func seal(_ tcti: String?) -> [String] {
            ["seal", "--label", "aem", "--aem-dir", m.aemDir, "--tpm-dir", m.tpmDir]
                + (tcti == nil ? [] : ["--srk-password-file", m.srkFile, "--tcti", tcti!])
                + ["--event-log", m.logA, "--grub-cfg", Repo.path("Vectors/example/grub.cfg"),
                   "--entry", SealTests.entry, "--boot-dir", m.bootDir, "--policy", m.policy, "--extpol", "embedded"]
        }
        // TPM2TOOLS_TCTI naming the pcap TCTI in front of this TPM: refused before the password
        // is asked (no --srk-password-file, no terminal), no capture written in the directory
        let pcap = try run("/usr/bin/env", ["-u", "TCTI_PCAP_FILE", "TPM2TOOLS_TCTI=pcap:" + m.tpm.tcti, Repo.binary] + seal(nil),
                           cwd: m.dir)
        #expect(pcap.status == 2 && pcap.stderr.hasPrefix("aem-pcr: error: refusing TCTI 'pcap:swtpm:path=") &&
                pcap.stderr.split(separator: "\n").count == 1, "\(pcap.stderr)")
        #expect(!FileManager.default.fileExists(atPath: m.dir + "/tpm2_log.pcap"))
        #expect(try m.snapshot(m.sealed) == old)
        for code in ["176", "153"] {  // TPM2_StartAuthSession, TPM2_Create
            let proxy = try Proxy(m.dir + "/p" + code, upstream: m.tpm.socket, ["hang", code])
            try Self.expectTimeout(seal(proxy.tcti), seconds: "2", transport: "TCTI '\(proxy.tcti)' (from --tcti)")
            #expect(try m.snapshot(m.sealed) == old)
            #expect(try FileManager.default.contentsOfDirectory(atPath: m.tpmDir) == ["aem"])
            // the hung command holds nothing in swtpm that the next run would trip on
            try m.tpm.flush()
        }
        guard let pid = m.tpm.pid else { return }
        kill(pid, SIGSTOP)
        try Self.expectTimeout(seal(m.tpm.tcti), seconds: "2", transport: "TCTI '\(m.tpm.tcti)' (from --tcti)")
        kill(pid, SIGCONT)
        #expect(try m.snapshot(m.sealed) == old)
        // and with the TPM answering again, seal works
        let r = try aemPCR(seal(m.tpm.tcti))
        #expect(r.status == 0, "\(r.stderr)")
    }

    /// TPM 1.2: tcsd that accepts the connection and never answers (a python3 listener on the
    /// port TSS_TCSD_PORT names): seal ends with one line naming tcsd's address.
    @Test(.needsTool("tcsd", package: "trousers")) func sealEndsWhenTcsdNeverAnswers() throws {
        let dir = try tempDir()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        // a TPM 1.2 log and its PCR values for the example's files (Vectors/expected.py)
        let initramfs = "Vectors/example/boot/initramfs-6.6.63-1.qubes.fc37.x86_64.img"
        let b = try run("/usr/bin/env", ["python3", "-c", TPM12SealTests.boot12, initramfs, "SINIT-ACM",
                                         TPM12SealTests.sha1Hex("LUKS header")], cwd: Repo.root)
        try #require(b.status == 0, "\(b.stderr)")
        let out = try TPM12SealTests.json(b.stdout)
        var log = [DRTMEvent]()
        for e in out["events"] as! [[Any]] {
            log.append(DRTMEvent(pcr: PCRIndex(rawValue: UInt32(e[0] as! Int)), type: EventType(rawValue: UInt32(e[1] as! Int)),
                                 digests: [Digest(.sha1, hex: e[2] as! String)!]))
        }
        try write(LogWriter.container(log), to: dir + "/A.log")
        // seal reads the PCRs of the TPM it seals on: through tcsd, which never answers.
        try FileManager.default.createDirectory(atPath: dir + "/aem/aem", withIntermediateDirectories: true)
        try write(Array("TPM 1.2 secret\n".utf8), to: dir + "/aem/aem/secret.txt")

        // a listener that reads and never answers
        let listener = Process()
        listener.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        listener.arguments = ["python3", "-c", """
            import socket, sys, time
            s = socket.socket(); s.bind(("127.0.0.1", 0)); s.listen(4)
            print(s.getsockname()[1], flush=True)
            conns = []
            while True:
                c, _ = s.accept(); conns.append(c)
            """]
        let out2 = Pipe()
        listener.standardOutput = out2
        try listener.run()
        defer { kill(listener.processIdentifier, SIGKILL); listener.waitUntilExit() }
        let port = String(decoding: out2.fileHandleForReading.availableData, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
        try #require(Int(port) != nil, "no port: \(port)")
        try Self.expectTimeout(["seal", "--label", "aem", "--aem-dir", dir + "/aem", "--tpm-dir", dir + "/tpm", "--srk-well-known",
                                "--event-log", dir + "/A.log", "--boot-dir", "Vectors/example/boot",
                                "--tpm", "1.2"] + LogPredictionTests.entryArgs,
                               seconds: "2", transport: "tcsd at localhost:\(port)", env: ["TSS_TCSD_PORT": port])
        #expect(!FileManager.default.fileExists(atPath: dir + "/tpm/aem"))
    }
}
