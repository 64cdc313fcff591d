// SPDX-License-Identifier: Apache-2.0
import Foundation
import Testing
@testable import AEMPCR

/// Every value in Vectors/expected.json (computed by Vectors/expected.py with python3 hashlib and
/// gzip, from command lines real GRUB produced) against the Swift code.
@Suite struct VectorTests {
    nonisolated(unsafe) static let expected: [String: Any] = {
        guard let data = FileManager.default.contents(atPath: Repo.path("Vectors/expected.json")),
              let obj = try? JSONSerialization.jsonObject(with: data) as? [String: Any] else { return [:] }
        return obj
    }()
    static func list(_ key: String) -> [[String: Any]] { expected[key] as? [[String: Any]] ?? [] }

    @Test func vectorsArePresent() {
        #expect(Self.list("modules").count >= 10)
        #expect(Self.list("mle").count == 3)
        #expect(Self.list("policy_events").count >= 8)
        #expect(Self.list("predictions").count >= 4)
    }

    /// The python generator still reproduces the committed JSON (it is the reference).
    @Test func pythonReferenceIsCurrent() throws {
        let r = try run("/usr/bin/env", ["python3", Repo.path("Vectors/expected.py"), "--check"], cwd: Repo.root)
        #expect(r.status == 0, "\(r.stdout)\(r.stderr)")
    }

    @Test func moduleMeasurements() throws {
        for m in Self.list("modules") {
            let spec = BootSpec.Module(path: Repo.path(m["file"] as! String), cmdline: m["cmdline"] as! String,
                                       noUnzip: m["nounzip"] as! Bool)
            let got = try ModuleMeasurement.measure(spec, banks: HashAlgorithm.computable)
            for (bank, hex) in m["measurement"] as! [String: String] {
                #expect(got.measurements[HashAlgorithm(name: bank)!]?.hex == hex, "\(spec.path) '\(Escape.bytes(spec.cmdline))' \(bank)")
            }
            for (bank, hex) in m["image"] as! [String: String] {
                #expect(got.imageDigests[HashAlgorithm(name: bank)!]?.hex == hex, "\(spec.path) image \(bank)")
            }
        }
    }

    @Test func mleHashes() throws {
        for m in Self.list("mle") {
            let image = try MLEImage(path: Repo.path(m["file"] as! String))
            for (bank, hex) in m["digests"] as! [String: String] {
                let b = HashAlgorithm(name: bank)!
                #expect(try image.hash(cmdline: m["cmdline"] as! String, banks: [b])[b]?.hex == hex)
            }
        }
    }

    @Test func policyEvents() throws {
        for e in Self.list("policy_events") {
            let p = try TbootPolicy(bytes: Hex.decode(e["policy_hex"] as! String)!, source: e["source"] as! String)
            let d = p.policyEvent(bank: HashAlgorithm(name: e["bank"] as! String)!,
                                  current: HashAlgorithm(name: e["current"] as! String)!, fromNV: true)
            #expect(d.hex == e["digest"] as! String, "\(e["source"]!) \(e["bank"]!)")
        }
    }

    /// `aem-pcr predict --json` on each prediction case: PCRs and tboot's extends in order.
    @Test func predictions() throws {
        for p in Self.list("predictions") {
            var args = ["predict", "--json", "--grub-cfg", p["grub_cfg"] as! String, "--entry", p["entry"] as! String,
                        "--boot-dir", p["boot_dir"] as! String, "--grub-platform", p["platform"] as! String,
                        "--tpm", p["tpm"] as! String, "--tboot-version", p["tboot_version"] as! String]
            if let e = p["extpol"] as? String { args += ["--extpol", e] }
            if let pol = p["policy_file"] as? String { args += ["--policy", pol] }
            if let m = p["pcr_map"] as? String, p["tpm"] as? String == "1.2" { args += ["--pcr-map", m] }
            let pcrs = p["pcrs"] as! [String: [String: String]]
            for bank in pcrs.keys.sorted() { args += ["--bank", bank] }
            let r = try aemPCR(args)
            #expect(r.status == 0, "\(p["name"]!): \(r.stderr)")
            guard r.status == 0 else { continue }
            let got = try JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as! [String: Any]
            let gotPCRs = got["pcrs"] as! [String: [String: String]]
            for (bank, values) in pcrs {
                for (pcr, hex) in values { #expect(gotPCRs[bank]?[pcr] == hex, "\(p["name"]!) PCR\(pcr) \(bank)") }
            }
            let launch = got["launch"] as! [String: Any]
            #expect(launch["tboot_cmdline"] as? String == p["tboot_cmdline"] as? String)
            let measured = (got["modules"] as! [[String: Any]]).filter { $0["index"] is Int }
            #expect(measured.map { $0["cmdline"] as! String } == p["module_cmdlines"] as! [String])
            if let events = p["events"] as? [[String: Any]] {
                let tbootEvents = (got["events"] as! [[String: Any]]).filter { $0["type"] as? String == "0x501" }
                #expect(tbootEvents.count == events.count, "\(p["name"]!)")
                for (g, e) in zip(tbootEvents, events) {
                    #expect(g["pcr"] as? Int == e["pcr"] as? Int && g["bank"] as? String == e["bank"] as? String
                            && g["digest"] as? String == e["digest"] as? String, "\(p["name"]!): \(g) vs \(e)")
                }
            }
            if let mle = p["mle"] as? [String: String] {
                let mleEvents = (got["events"] as! [[String: Any]]).filter { $0["type"] as? String == "0x404" }
                for (bank, hex) in mle {
                    #expect(mleEvents.contains { $0["bank"] as? String == bank && $0["digest"] as? String == hex })
                }
            }
        }
    }
}
