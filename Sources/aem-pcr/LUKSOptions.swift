// SPDX-License-Identifier: Apache-2.0
import AEMPCR
import AEMPCRSeal
import ArgumentParser

/// `--luks-header UUID=PATH`: where PCR13's LUKS headers are read.
struct LUKSOptions: ParsableArguments {
    @Option(name: .customLong("luks-header"), help: ArgumentHelp("PCR13: read the LUKS header of UUID (an rd.luks.uuid on the next boot's dom0 command line) from PATH, a device, image or header backup file, instead of /dev/disk/by-uuid/UUID. Repeatable.", valueName: "UUID=PATH"))
    var headers: [String] = []

    var parsed: [(uuid: String, path: String)] {
        headers.compactMap(LUKSMeasurement.parseHeaderArgument)
    }

    func validate() throws {
        for h in headers where LUKSMeasurement.parseHeaderArgument(h) == nil {
            throw ValidationError("--luks-header \(Escape.text(h)): not UUID=PATH")
        }
    }

    /// PCR13 for the prediction: the dom0 kernel is module 1 (tboot hands Xen its modules; Xen
    /// boots the first as dom0). No such module: nothing to say about PCR13.
    func predict(_ p: Prediction) throws -> LUKSPrediction? {
        guard let dom0 = p.modules.first(where: { $0.index == 1 }) else {
            if !headers.isEmpty {
                throw CodedError(.usage, "--luks-header: the boot has no dom0 kernel (module 1) whose command line names rd.luks.uuid")
            }
            return nil
        }
        return try LUKSPrediction.predict(cmdline: dom0.spec.cmdline, origin: "module 1, \(dom0.spec.origin)",
                                          family: p.configuration.tpm, headers: parsed)
    }
}

extension PredictionView {
    /// Adds PCR13 (AEM's LUKS extends) to the view.
    mutating func add(_ luks: LUKSPrediction?) {
        guard let luks else { return }
        self.luks = luks
        if let v = luks.value {
            pcrs[luks.bank, LUKSMeasurement.pcr] = v
        } else if let why = luks.notPredicted {
            incomplete.append(.luks(bank: luks.bank, reason: why))
        }
        notes += luks.notes
    }
}

enum LUKSOutput {
    static func json(_ l: LUKSPrediction) -> JSON {
        .object([
            ("pcr", .int(Int(LUKSMeasurement.pcr.rawValue))), ("bank", .string(l.bank.description)),
            ("cmdline", .string(l.commandLine)),
            ("uuids", .array(l.uuids.map { .string($0) })),
            ("extends", .array(l.extends.map { e in
                .object([("uuid", .string(e.uuid)), ("source", .string(e.source)),
                         ("backup_size", .int(Int(e.backupSize))), ("digest", .string(e.digest.hex))])
            })),
            ("value", l.value.map { .string($0.hex) } ?? .null),
        ])
    }

    static func text(_ l: LUKSPrediction) -> TerminalText {
        var out: TerminalText = ""
        out += Terminal.bold("PCR13: LUKS headers (AEM's initramfs)") + "\n"
        out += Terminal.wrap("  rd.luks.uuid from \(l.commandLine): \(l.uuids.isEmpty ? "none" : l.uuids.joined(separator: ", "))", indent: 0, hang: 4) + "\n"
        for (n, e) in l.extends.enumerated() {
            out += "\(Terminal.pad("\(n + 1).", 3)) PCR13  \(e.uuid)\n"
            out += Terminal.wrap("\(e.source): cryptsetup luksHeaderBackup, \(e.backupSize) bytes", indent: 6) + "\n"
            out += Terminal.digestLine(indent: 6, label: "\(l.bank)", labelWidth: 7, hex: e.digest.hex) + "\n"
        }
        return out
    }
}

/// seal's PCR13 options: the headers, and the current boot's command line for the model check.
struct LUKSSealOptions: ParsableArguments {
    @OptionGroup var luks: LUKSOptions

    @Option(name: .customLong("current-cmdline"), help: ArgumentHelp("The current boot's dom0 kernel command line, whose rd.luks.uuid headers folded must give the TPM's PCR13 before the predicted PCR13 is sealed.", valueName: "file"))
    var currentCmdline = "/proc/cmdline"

    /// PCR13 for `plan`: checked, then predicted, kept or refused; the sentence is printed.
    func apply(to plan: inout AEMSealPlan, files: Prediction) throws {
        guard let now = plan.values[plan.bank, LUKSMeasurement.pcr] else { return }
        let next = try luks.predict(files)
        var current: LUKSPrediction?
        if let bytes = try? FileReader.readAll(path: currentCmdline, limit: 1 << 16) {
            current = try? LUKSPrediction.predict(cmdline: bytes, origin: currentCmdline, family: files.configuration.tpm,
                                                  headers: luks.parsed.filter { h in LUKSMeasurement.uuids(cmdline: bytes).contains(h.uuid) })
        }
        // Quiet when nothing is predicted (seal's rule before PCR13 was predicted) unless -v.
        if let why = plan.apply(AEMSealPlan.pcr13(now: now, current: current, next: next)), next?.value != nil || Terminal.verbose {
            Terminal.note(why)
        }
    }
}
