// SPDX-License-Identifier: Apache-2.0
import Foundation
import Testing
@testable import AEMPCR
import AEMPCRSeal
import AEMPCRTPM

/// A TPM for the orchestration's tests (STYLE 16): the values it is given, counting sessions
/// and reads; no swtpm. Its values come from python3 replays, never from the code under test.
final class FakeTPM: PCRSource {
    var values: PCRValues
    var banks: [HashAlgorithm]
    var failure: (any Error)?
    private(set) var reads = 0
    let family: TPMFamily?

    init(_ family: TPMFamily, values: PCRValues, banks: [HashAlgorithm]? = nil) {
        self.family = family
        self.values = values
        self.banks = banks ?? values.banks
    }

    var name: String { "the fake TPM" }
    var isTPM: Bool { true }
    func activeBanks() throws -> [HashAlgorithm] { banks }
    func readPCRs(_ pcrs: [PCRIndex], banks: [HashAlgorithm]) throws -> PCRValues {
        reads += 1
        if let failure { throw failure }
        var out = PCRValues()
        for b in banks { for p in pcrs { if let v = values[b, p] { out[b, p] = v } } }
        return out
    }
}

/// `CurrentBoot`, the family resolver and AEM's seal rules against `FakeTPM`: one session per
/// command, the order in which the family is found, a log that does not verify, seal's refusals.
@Suite struct CurrentBootTests {
    struct NoSysfs: Error {}

    /// The synthetic TPM 2.0 boot of LogPredictionTests (SINIT's real events, tboot's from
    /// expected.json) with python3's replay of it, and PCR13 as AEM's initramfs leaves it
    /// (python3: sha256 of zeros || sha256("LUKS header")).
    static func boot(_ dir: String) throws -> (log: String, values: PCRValues) {
        let (log, events) = try LogPredictionTests.syntheticBoot(dir)
        try LogPredictionTests.pythonReplay(events, to: dir + "/pcrs.yaml")
        var values = try PCRValuesFile.read(path: dir + "/pcrs.yaml")
        let r = try run("/usr/bin/env", ["python3", "-c",
            "import hashlib; print(hashlib.sha256(bytes(32) + hashlib.sha256(b'LUKS header').digest()).hexdigest())"])
        values[.sha256, 13] = Digest(.sha256, hex: r.stdout.trimmingCharacters(in: .whitespacesAndNewlines))
        return (log, values)
    }

    /// The families the TPM was opened for, in order.
    final class Opened { var families = [TPMFamily]() }

    static func currentBoot(log: String, tpm: FakeTPM, kernel: TPMFamily? = .tpm20, opened: Opened? = nil) -> CurrentBoot {
        CurrentBoot(CurrentBoot.Inputs(), resolver: TPMFamilyResolver(stated: nil, kernel: {
            guard let kernel else { throw NoSysfs() }
            return kernel
        }), log: { try DRTMEventLog.parse(path: log) }, openTPM: { family in
            opened?.families.append(family)
            return tpm
        })
    }

    // MARK: The family

    /// --tpm, then the log's format, then sysfs, then (this machine's TPM only) a TCTI named.
    @Test func theFamilyIsFoundInOneOrder() throws {
        let dir = try tempDir()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        // SINIT's events and tboot's, in sha1 and sha256: as a TCG log (TPM 2.0), a TPM 1.2
        // container, and SHA-1 per-algorithm records (which do not tell).
        let real = try DRTMEventLog.parse(path: LogPredictionTests.syntheticBoot(dir).log)
        #expect(real.format == .tpm20TCG)
        let tpm12 = try DRTMEventLog.parse(bytes: LogWriter.container(real.events.filter { $0.digests[.sha1] != nil }), source: "container")
        let sha1Only = try DRTMEventLog.parse(bytes: LogWriter.legacyLog(real.events, algorithm: .sha1), source: "sha1.log")
        #expect(try LogPredictor.facts(of: sha1Only).tpm == nil, "the SHA-1 per-algorithm log must not tell")
        func resolver(_ stated: TPMFamily?, kernel: TPMFamily?, tcti: Bool = false) -> TPMFamilyResolver {
            TPMFamilyResolver(stated: stated, tctiNamed: tcti) {
                guard let kernel else { throw CodedError(.tpmNoDevice, "no TPM here") }
                return kernel
            }
        }
        // stated beats the log and the kernel
        var f = try resolver(.tpm12, kernel: .tpm20).family(log: real, for: .machine)
        #expect(f.family == .tpm12 && f.origin == .stated)
        // the log beats the kernel (a log saved on another machine is that machine's)
        f = try resolver(nil, kernel: .tpm20).family(log: tpm12, for: .nextBoot)
        #expect(f.family == .tpm12 && f.origin == .log)
        f = try resolver(nil, kernel: .tpm12).family(log: real, for: .machine)
        #expect(f.family == .tpm20 && f.origin == .log)
        // the kernel where the log cannot tell, and before a TCTI
        f = try resolver(nil, kernel: .tpm12, tcti: true).family(log: sha1Only, for: .machine)
        #expect(f.family == .tpm12 && f.origin == .kernel)
        // a TCTI named: TPM 2.0, for this machine only
        f = try resolver(nil, kernel: nil, tcti: true).family(for: .machine)
        #expect(f.family == .tpm20 && f.origin == .tcti)
        #expect { try resolver(nil, kernel: nil, tcti: true).family(for: .nextBoot) } throws: { e in
            "\(e)".hasPrefix("the next boot's TPM family is not known: give --tpm 1.2 or --tpm 2.0")
        }
        #expect { try resolver(nil, kernel: nil).family(log: sha1Only, for: .nextBoot) } throws: { e in
            "\(e)".hasPrefix("sha1.log does not tell the TPM family (SHA-1 records only)")
        }
        // nothing tells this machine's: the kernel's own reason
        #expect { try resolver(nil, kernel: nil).family(for: .machine) } throws: { e in
            (e as? CodedError)?.code == .tpmNoDevice && "\(e)" == "no TPM here"
        }
        // a log that is not a complete launch's is refused as the predictor refuses it
        let partial = DRTMEventLog(format: .tpm20TCG, banks: [.sha1], events: [], source: "empty.log")
        #expect { try resolver(nil, kernel: .tpm20).family(log: partial, for: .machine) } throws: { e in
            (e as? CodedError)?.code == .logIncomplete
        }
    }

    /// A TCTI contradicts a TPM 1.2: refused on the command line, a note from the environment.
    @Test func aTCTIOnATPM12() throws {
        #expect { try TPMFamilyResolver.checkTCTI(for: .tpm12, origin: .stated, tcti: "swtpm:path=/x", environment: [:]) } throws: { e in
            (e as? CodedError)?.code == .tpmTCTIRefused && "\(e)".contains("--tpm 1.2 names a TPM 1.2")
        }
        let note = try TPMFamilyResolver.checkTCTI(for: .tpm12, origin: .kernel, tcti: nil, environment: ["TCTI": "swtpm:path=/x"])
        #expect(note == "TCTI=swtpm:path=/x is ignored: this machine's TPM is a TPM 1.2 (/sys/class/tpm/tpm0/tpm_version_major), which tpm2-tss cannot reach")
        #expect(try TPMFamilyResolver.checkTCTI(for: .tpm20, origin: .kernel, tcti: "swtpm:path=/x", environment: [:]) == nil)
    }

    // MARK: One session, verification

    /// The log verifies against the fake's (python3's) values; the TPM is opened once however
    /// often the command asks, and only the PCRs the log extends are read.
    @Test func oneSessionAndAVerifiedLog() throws {
        let dir = try tempDir()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let (log, values) = try Self.boot(dir)
        let tpm = FakeTPM(.tpm20, values: values)
        let opened = Opened()
        let boot = Self.currentBoot(log: log, tpm: tpm, opened: opened)
        let verified = try boot.verifiedLog()
        #expect(verified.report.verified && verified.pcrSource == "the fake TPM")
        #expect(verified.pcrs.pcrs(in: .sha256) == [17, 18], "read only what the log extends: \(verified.pcrs.pcrs(in: .sha256))")
        guard case .verified = try boot.predictionLog(force: false) else { Issue.record("not verified"); return }
        _ = try boot.values(for: verified.log, also: [13])
        #expect(opened.families == [.tpm20] && boot.sessionsOpened == 1 && tpm.reads == 3)
    }

    /// A PCR that differs (python3's hash of other bytes): refused naming it, unless --force,
    /// which keeps the report; a TPM that cannot be read names --pcrs and keeps its code.
    @Test func aLogThatDoesNotVerify() throws {
        let dir = try tempDir()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let (log, values) = try Self.boot(dir)
        var other = values
        other[.sha256, 17] = Digest(.sha256, hex: try pyHash("sha256", "another launch"))
        let tpm = FakeTPM(.tpm20, values: other)
        #expect { try Self.currentBoot(log: log, tpm: tpm).verifiedLog() } throws: { e in
            (e as? CodedError)?.code == .logNotVerified
                && "\(e)" == "\(log) does not verify against the fake TPM (PCR17 sha256); run 'aem-pcr verify' for details, or --force"
        }
        let forced = try Self.currentBoot(log: log, tpm: tpm).predictionLog(force: true)
        guard case .unverified(_, because: .forced(let report?)) = forced else { Issue.record("\(forced)"); return }
        #expect(!report.verified && report.rows.filter { $0.status == .mismatch }.map { "\($0.pcr) \($0.bank)" } == ["17 sha256"])

        tpm.failure = CodedError(.tpmBusy, "the TPM is busy")
        #expect { try Self.currentBoot(log: log, tpm: tpm).verifiedLog() } throws: { e in
            (e as? CodedError)?.errorCode == "tpm-busy"
                && "\(e)" == "the TPM is busy; or give the PCR values with --pcrs FILE (tpm2_pcrread's output, saved with 'aem-pcr read --save')"
        }
        guard case .unverified(_, because: .forced(nil)) = try Self.currentBoot(log: log, tpm: tpm).predictionLog(force: true) else {
            Issue.record("--force with no values"); return
        }
    }

    /// Banks: the log's that the TPM keeps; none kept is refused, naming what is active.
    @Test func banksTheTPMDoesNotKeep() throws {
        let dir = try tempDir()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let (log, values) = try Self.boot(dir)
        let sha1Only = FakeTPM(.tpm20, values: values, banks: [.sha1])
        let (read, _) = try Self.currentBoot(log: log, tpm: sha1Only).currentPCRs(for: DRTMEventLog.parse(path: log))
        #expect(read.banks == [.sha1])
        let none = FakeTPM(.tpm20, values: values, banks: [.sha384])
        #expect { try Self.currentBoot(log: log, tpm: none).currentPCRs(for: DRTMEventLog.parse(path: log)) } throws: { e in
            (e as? CodedError)?.errorCode == "tpm-bank-not-active" && "\(e)".hasPrefix("the TPM keeps none of the banks sha1, sha256 (active: sha384)")
        }
    }

    // MARK: AEM's rules

    /// The prediction of the same files, through the fake: what seal would seal to.
    static func plan(_ dir: String, now: (PCRValues) -> PCRValues, fromTPM: Bool = true) throws -> (AEMSealPlan, LogPrediction, PCRValues) {
        let (log, values) = try boot(dir)
        let tpm = FakeTPM(.tpm20, values: now(values))
        let boot = currentBoot(log: log, tpm: tpm)
        let (family, verified) = try boot.forSeal()
        #expect(family == .tpm20 && tpm.reads == 1, "PCR13 is read with the log's PCRs")
        let cfg = try GrubConfig(path: Repo.path("Vectors/example/grub.cfg"))
        let bootDir = Repo.path("Vectors/example/boot")
        let entry = try cfg.entry("AEM Qubes, with Xen hypervisor", platform: .pc, bootDir: bootDir)
        let spec = try BootSpec(entry: entry, config: cfg, bootDir: bootDir, style: .fedora)
        let configuration = try LogPredictor.configuration(for: verified.log, tpm: nil, mapping: nil, extendPolicy: .embedded,
                                                           nextBoot: TbootCommandLine(String(decoding: spec.tbootCmdline, as: UTF8.self)),
                                                           tbootVersion: .debian12, banks: nil)
        let p = try LogPredictor.predict(.verified(verified), boot: spec, predictor: Predictor(configuration: configuration))
        #expect(boot.sessionsOpened == 1)
        return (try AEMSealPlan(prediction: p, family: .tpm20, sealPCRs: [13, 17, 18, 19], now: verified.pcrs, source: verified.pcrSource, fromTPM: fromTPM), p, values)
    }

    /// Same files: PCR17 and 18 as python3 replays the log, PCR13 as the TPM has it; PCR19,
    /// which the default policy never extends (python3: all 00), is refused as listbadpcrs does.
    @Test func sealsToPCR13NowAndThePrediction() throws {
        let dir = try tempDir()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let (plan, _, python) = try Self.plan(dir, now: { $0 })
        #expect(plan.bank == .sha256 && plan.selection.description == "sha256:13,17,18,19" && plan.unsupported.isEmpty)
        for pcr: PCRIndex in [13, 17, 18] { #expect(plan.values[.sha256, pcr] == python[.sha256, pcr], "PCR\(pcr)") }
        #expect(python[.sha256, 19]?.isAllZero == true)
        #expect(plan.refusals.count == 1 && plan.refusals[0].hasPrefix("PCR19 sha256 would be all 00 after the next launch, which extends nothing into it (tboot's default DA policy measures every module into PCR17); AEM refuses such a PCR (listbadpcrs); "), "\(plan.refusals)")
        // The two ways out AEM supports (issue 21): SEAL without PCR19, or a policy that uses it.
        #expect(plan.refusals.first?.contains("SEAL=\"--pcr 13 --pcr 17 --pcr 18\"") == true, "\(plan.refusals)")
    }

    /// PCR13 all FF (AEM's initramfs did not extend it) is refused; a TPM, or a file, without
    /// PCR13 is an error naming it.
    @Test func pcr13AllFFOrMissing() throws {
        let dir = try tempDir()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let ff = try #require(Digest(.sha256, hex: String(repeating: "ff", count: 32)))
        let (plan, _, _) = try Self.plan(dir, now: { var v = $0; v[.sha256, 13] = ff; return v })
        #expect(plan.refusals.first == "PCR13 sha256 would be all FF now (the fake TPM): AEM's initramfs has not extended the LUKS header(s) into it; AEM refuses such a PCR (listbadpcrs)")
        let dir2 = try tempDir()
        defer { try? FileManager.default.removeItem(atPath: dir2) }
        #expect { try Self.plan(dir2, now: { var v = $0; v[.sha256, 13] = nil; return v }) } throws: { e in
            (e as? CodedError)?.code == .sealRefused && "\(e)" == "the fake TPM gave no PCR13 sha256, which the seal keeps as it is now (is the sha256 bank active?); nothing is sealed"
        }
        let dir3 = try tempDir()
        defer { try? FileManager.default.removeItem(atPath: dir3) }
        #expect { try Self.plan(dir3, now: { var v = $0; v[.sha256, 13] = nil; return v }, fromTPM: false) } throws: { e in
            "\(e)" == "the fake TPM has no PCR13 sha256, which the seal keeps as it is now: add it (tpm2_pcrread sha256:13,17,18,19)"
        }
    }

    /// "No secret to seal" is said by one function, which both families' file makers use.
    @Test func noSecretToSealIsCheckedOnce() throws {
        let dir = try tempDir()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let layout = AEMLayout(secretsDir: dir + "/aem", sealedDir: dir + "/tpm/aem")
        try FileManager.default.createDirectory(atPath: layout.secretsDir, withIntermediateDirectories: true)
        let message = "no secret to seal in \(dir)/aem (secret.txt, secret.key, secret.otp or secret.fre): set up AEM first"
        #expect { try AEMSealer.secretsToSeal(layout) } throws: { "\($0)" == message }
        let record = SealedPrediction(label: "aem", sealedAt: "", selection: try PCRSelection(parsing: "sha1:13"),
                                      policyDigest: .zeros(.sha256), pcrs: PCRValues(), events: [])
        #expect { try AEMSealer.tpm12Files(values: PCRValues(), layout: layout, prediction: record) { _, _ in [] } } throws: { "\($0)" == message }
    }
}
