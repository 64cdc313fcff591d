// SPDX-License-Identifier: Apache-2.0
import Foundation
import Testing
@testable import AEMPCR

/// The one event model (`PredictedEvent`) as `seal` saves it, and the one per-PCR comparison of
/// two boots' events (`EventDiff`).
@Suite struct EventModelTests {
    static func digest(_ bank: HashAlgorithm, _ byte: UInt8) -> Digest {
        Digest(bank, bytes: Array(repeating: byte, count: bank == .sha1 ? 20 : 32))!
    }

    static func event(_ pcr: PCRIndex, _ byte: UInt8, type: UInt32 = 0x501, banks: [HashAlgorithm] = [.sha256],
                      _ what: String = "") -> PredictedEvent {
        PredictedEvent(pcr: pcr, type: EventType(rawValue: type), what: what,
                       digests: Dictionary(uniqueKeysWithValues: banks.map { ($0, digest($0, byte)) }))
    }

    /// A saved prediction holds what each event is (component, file, command line): read back the
    /// same, and by python3's json as written; a record of an older seal (no component) still reads.
    @Test func savedPredictionEncodesTheModel() throws {
        var values = PCRValues()
        values[.sha256, 17] = Self.digest(.sha256, 0x17)
        let selection = try PCRSelection(parsing: "sha256:17")
        let cmdline: [UInt8] = Array("placeholder root=/dev/x ".utf8) + [0xFF, 0x09]
        let events = [
            Self.event(17, 0x01, type: 0x402, "SINIT event kept from log"),
            PredictedEvent(pcr: 17, type: .tbootMeasurement, part: .measured(.policy), what: "policy: built-in",
                           digests: [.sha256: Self.digest(.sha256, 0x02)]),
            PredictedEvent(pcr: 17, type: .tbootMeasurement, part: .measured(.module(index: 12)), file: "/boot/\"initramfs\"",
                           cmdline: cmdline, what: "module 12: /boot/initramfs", digests: [.sha256: Self.digest(.sha256, 0x03)]),
        ]
        let record = SealedPrediction(label: "aem", sealedAt: "20261203T090000Z", selection: selection,
                                      policyDigest: try PolicyPCR.digest(selection, values: values), pcrs: values, events: events)
        let text = record.render()
        #expect(try SealedPrediction.parse(text, source: "t") == record)
        let dir = try tempDir()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try text.write(toFile: dir + "/p.json", atomically: true, encoding: .utf8)
        let py = try run("/usr/bin/env", ["python3", "-c", """
            import json, sys
            for e in json.load(open(sys.argv[1]))["events"]:
                print(e["pcr"], e["type"], e.get("component"), e.get("file"), e.get("cmdline_hex"))
            """, dir + "/p.json"])
        #expect(py.stdout == """
            17 0x402 None None None
            17 0x501 policy None None
            17 0x501 module 12 /boot/"initramfs" \(cmdline.map { String(format: "%02x", $0) }.joined())

            """, "\(py.stderr)")
        // As an older seal wrote it: no component, file or command line; labelled by its type.
        let old = """
            {"format": "aem-pcr-sealed-prediction/1", "label": "aem", "sealed_at": "20261130T042700Z",
             "selection": "sha256:17", "policy_digest": "\(record.policyDigest.hex)",
             "pcrs": {"sha256": {"17": "\(values[.sha256, 17]!.hex)"}},
             "events": [{"pcr": 17, "type": "0x501", "what": "module 2: /boot/initramfs", "digests": {"sha256": "\(Self.digest(.sha256, 3).hex)"}}]}
            """
        let read = try SealedPrediction.parse(old, source: "old")
        #expect(read.events == [Self.event(17, 3, "module 2: /boot/initramfs")])
        #expect(read.events.map(\.label) == ["tboot event"])
        // A component that is not one is refused, naming the event.
        #expect {
            try SealedPrediction.parse(text.replacingOccurrences(of: "\"module 12\"", with: "\"module x\""), source: "t")
        } throws: { ($0 as? CodedError)?.code == .pcrFileSyntax }
    }

    /// Per PCR, the k-th event against the k-th: a changed digest names its bank, an extra event
    /// is added or removed, a PCR's own order decides (not the order across PCRs), and events
    /// with no bank in common are told apart from equal ones.
    @Test func perPCRDiff() {
        let old = [Self.event(17, 1), Self.event(18, 2), Self.event(17, 3), Self.event(18, 4), Self.event(18, 5),
                   Self.event(19, 6, banks: [.sha1])]
        // Grouped per PCR, PCR17's second event changed, PCR18's last gone, one more in PCR20,
        // PCR19's event in another bank only.
        let new = [Self.event(17, 1), Self.event(17, 9), Self.event(18, 2), Self.event(18, 4), Self.event(20, 7),
                   Self.event(19, 6, banks: [.sha256])]
        let d = EventDiff(old: old, new: new)
        #expect(d.changes.map { "\($0.pcr)/\($0.position)" } == ["17/1", "20/0", "19/0", "18/2"])
        #expect(d.changes.map(\.reason) == [.digest(.sha256), .added, .noCommonBank, .removed])
        #expect(d.pcrs == [17, 18, 19, 20])
        #expect(d.byPCR.map { "\($0.pcr):\($0.changes.count)" } == ["17:1", "18:1", "19:1", "20:1"])
        #expect(EventDiff(old: old, new: old).changes.isEmpty)
        // Another type with the same digests.
        #expect(EventDiff(old: [Self.event(17, 1)], new: [Self.event(17, 1, type: 0x402)]).changes.map(\.reason) == [.type])
        // The removed event explains itself as absent from the next boot.
        let removed = EventDiff(old: [Self.event(17, 1, "a tboot event of the current log")], new: []).changes
        #expect(removed.map(\.what) == ["a tboot event of the current log that the next boot will not have"])
        #expect(removed.map(\.label) == ["tboot event"])
    }

    /// As notice compares the files of one entry before and after an update: a new kernel
    /// (module 1) changes its own event only, in the PCR tboot routes it to: PCR19 under TPM 1.2's
    /// legacy mapping (kernel and initramfs), PCR17 on TPM 2.0 (Details/Authorities).
    @Test func componentsAnUpdateChanges() throws {
        let config = try GrubConfig(path: Repo.path("Vectors/example/grub.cfg"))
        let boot = Repo.path("Vectors/example/boot")
        let spec = try BootSpec(entry: try config.entry("AEM Qubes, with Xen hypervisor", bootDir: boot), config: config, bootDir: boot)
        let kernel = Repo.path("Vectors/example/boot/vmlinuz-6.6.48-1.qubes.fc37.x86_64")
        let updated = try spec.replacing([BootReplacement(role: .module(index: 1), path: kernel)])
        for (tpm, pcr): (TPMFamily, PCRIndex) in [(.tpm12, 19), (.tpm20, 17)] {
            let predictor = Predictor(configuration: try LaunchConfiguration(tpm: tpm))
            let diff = EventDiff(old: try predictor.predict(spec).events, new: try predictor.predict(updated).events)
            #expect(diff.components.map { "\($0.label) \($0.file ?? "-") \($0.pcrs.map(\.rawValue))" } == ["module 1 \(kernel) [\(pcr)]"], "TPM \(tpm)")
            #expect(diff.changes.map(\.reason) == [.digest(tpm == .tpm12 ? .sha1 : .sha256)])
        }
    }
}
