// SPDX-License-Identifier: Apache-2.0
import AEMPCR
import AEMPCRSeal
import ArgumentParser

/// Where the copy of the sealed set on AEM's boot device is (seal and check-boot).
struct AEMDeviceOptions: ParsableArguments {
    @Option(name: .customLong("aem-device"), help: ArgumentHelp("The AEM boot device, a block device or its file system UUID (default: aem.uuid= on the kernel command line, else /dev/disk/by-label/LABEL, as AEM finds it).", valueName: "device|uuid"))
    var device: String?

    @Option(name: .customLong("aem-mount"), help: ArgumentHelp("The AEM boot device's mount point (default: from /proc/self/mountinfo, else mounted privately for the run).", valueName: "dir"))
    var mount: String?

    @Flag(name: .customLong("no-aem-device"), help: "Write (or check) the set in --tpm-dir only, not its copy on the AEM boot device.")
    var none = false

    func validate() throws {
        if [device != nil, mount != nil, none].filter({ $0 }).count > 1 {
            throw ValidationError("--aem-device, --aem-mount and --no-aem-device each say where the AEM device is: give one")
        }
    }

    var choice: AEMDeviceCopy.Choice {
        if none { return .none }
        if let device { return .device(device) }
        if let mount { return .mount(mount) }
        return .automatic
    }

    /// The TPM directory as AEM has it and the device copy, ready (mounted when needed). A dry
    /// run (`readOnly`) gets a device seal would refuse as that refusal, for its plan.
    func prepare(label: String, tpmDir: String, readOnly: Bool) throws -> (AEMTPMDirectory, AEMDeviceCopy?, refusal: String?) {
        let tpm = try AEMTPMDirectory.resolve(tpmDir)
        do {
            return (tpm, try AEMDeviceCopy.prepare(label: label, tpm: tpm, choice: choice, readOnly: readOnly), nil)
        } catch let e as CodedError where readOnly && e.code == .sealRefused {
            let tail = "; nothing was changed"
            return (tpm, nil, e.reason.hasSuffix(tail) ? String(e.reason.dropLast(tail.count)) : e.reason)
        }
    }

    /// check-boot: as `prepare`, but a device that cannot be found is a note (an AEM device
    /// may be unplugged once the boot has read it), not an error.
    func prepareForCheck(label: String, tpmDir: String) throws -> (AEMTPMDirectory, AEMDeviceCopy?, String?) {
        let tpm = try AEMTPMDirectory.resolve(tpmDir)
        do {
            return (tpm, try AEMDeviceCopy.prepare(label: label, tpm: tpm, choice: choice, readOnly: false), nil)
        } catch let e as CodedError where [.sealIO, .sealRefused, .sealLayout].contains(e.code) {
            return (tpm, nil, "the copy on the AEM device is not checked, nor its previous set removed: \(e.reason.hasSuffix("; nothing was changed") ? String(e.reason.dropLast("; nothing was changed".count)) : e.reason)")
        }
    }

    /// check-boot's lines on the device copy: JSON and text.
    static func checkJSON(_ copy: AEMDeviceCopy?, differences: [String], note: String?) -> JSON {
        JSON.object([
            ("sealed_dir", copy.map { .string(Report.show($0, $0.setDir)) } ?? .null),
            ("differences", .array(differences.map { .string($0) })),
            ("note", note.map { .string($0) } ?? .null),
        ])
    }

    /// The set's copy written on the device, after the set in the TPM directory: an error here
    /// leaves the device with the old set, which AEM's unseal reads at the next boot.
    func write(_ copy: AEMDeviceCopy?, from primary: String) throws -> Report? {
        guard let copy else { return nil }
        do {
            let (plan, outcome) = try copy.copy(from: primary)
            return Report(copy: copy, plan: plan, previous: outcome.previous, kept: outcome.kept, errors: outcome.afterSwapErrors)
        } catch let e as AEMPCRError {
            throw CodedError(.sealIO, "the new set is sealed in \(primary), but its copy on the AEM device, \(Report.show(copy, copy.setDir)), failed: \(e); AEM's unseal reads the device's (old) set: fix that and seal again, or copy \(primary) to \(Report.show(copy, copy.setDir)) yourself")
        }
    }

    /// The report's last words: where AEM unseals from, and that the next step follows (the
    /// command to paste, printed after the folded text so that fold never breaks it).
    func afterword(_ device: Report?, tpmDir: String, deviceRefused: Bool = false) -> TerminalText {
        let head: TerminalText
        if deviceRefused {
            head = "No copy can be made on the AEM device (refused above), where AEM's unseal reads the set at boot."
        } else if device != nil {
            head = "AEM's unseal reads the copy on the AEM device."
        } else if none {
            head = "Not written on the AEM device (--no-aem-device), where AEM's unseal reads the set at boot: copy it there before rebooting."
        } else {
            head = "\(tpmDir) is not AEM's link to tpms/ID, so no copy was made on the AEM device, where AEM's unseal reads the set at boot."
        }
        return Terminal.wrap(head + " After the reboot, check it (as root):")
    }

    /// These options as given, for a command printed to run later (a path made absolute).
    var commandWords: [String] {
        if none { return ["--no-aem-device"] }
        if let device { return ["--aem-device", device.contains("/") ? Terminal.absolute(device) : device] }
        if let mount { return ["--aem-mount", Terminal.absolute(mount)] }
        return []
    }

    /// What seal did (or would do) on the device: JSON, and lines for the text report.
    struct Report {
        var copy: AEMDeviceCopy
        var plan: [(String, SealedSetWriter.Change)]
        var previous: String? = nil
        var kept: [SealedSetWriter.Kept] = []
        var errors: [String] = []

        /// A path on a device mounted for this run only as `DEVICE:aem/…` (the mount point is gone).
        static func show(_ copy: AEMDeviceCopy, _ path: String) -> String {
            guard copy.mountedHere, path.hasPrefix(copy.mountPoint + "/") else { return path }
            return (copy.device ?? "") + ":" + path.dropFirst(copy.mountPoint.count + 1)
        }

        var place: String { Report.show(copy, copy.setDir) }

        var json: JSON {
            JSON.object([
                ("sealed_dir", .string(place)), ("device", copy.device.map { .string($0) } ?? .null),
                ("found_by", .string(copy.found)),
                ("mount_point", copy.mountedHere ? .null : .string(copy.mountPoint)),
                ("files", .array(plan.map { JSON.object([("name", .string($0.0)), ("change", .string($0.1.rawValue))]) })),
                ("previous", previous.map { .string(Report.show(copy, $0)) } ?? .null),
                ("kept", .array(kept.map { JSON.object([("path", .string(Report.show(copy, $0.path))), ("reason", .string($0.reason))]) })),
            ])
        }

        func text(dryRun: Bool) -> TerminalText {
            let mounted = copy.mountedHere ? "mounted privately for this run" : "found by \(copy.found)"
            var out: TerminalText = Terminal.wrap("Files on the AEM device in \(place) (\(mounted))\(dryRun ? " (nothing written):" : ":")") + "\n"
            for (name, change) in plan { out += "  " + Terminal.pad("\(name)", 28) + " \(change.rawValue)\n" }
            for k in kept { out += Terminal.wrap("Kept \(Report.show(copy, k.path)): \(k.reason)") + "\n" }
            if let previous { out += Terminal.wrap("The device's previous set is kept in \(Report.show(copy, previous)) until check-boot confirms the next boot.") + "\n" }
            return out
        }
    }
}
