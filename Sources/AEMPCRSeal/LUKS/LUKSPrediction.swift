import AEMPCR

/// PCR13 of the next boot: the UUIDs on the dom0 kernel's command line, each header read by
/// libcryptsetup (from `--luks-header UUID=PATH`, else `/dev/disk/by-uuid/UUID`), folded.
public struct LUKSPrediction: Sendable {
    public var bank: HashAlgorithm
    /// Where the UUIDs came from: "module 1 (grub.cfg:140)".
    public var commandLine: String
    /// The UUIDs AEM measures, in its order.
    public var uuids: [String]
    public var extends: [LUKSMeasurement.Extend]
    /// PCR13 after AEM's initramfs; nil when not predicted (see `notPredicted`).
    public var value: Digest?
    /// Why PCR13 is not predicted (no header given and the device not readable here).
    public var notPredicted: String?
    /// Facts for the user.
    public var notes: [String]

    /// The prediction for `cmdline` (the dom0 kernel's, `origin` naming it). `headers` are the
    /// `--luks-header` arguments; when there are none, a UUID whose device cannot be read leaves
    /// PCR13 not predicted (the boot files may be another machine's); when there are some, every
    /// UUID must resolve, else the error names it.
    public static func predict(cmdline: [UInt8], origin: String, family: TPMFamily,
                               headers: [(uuid: String, path: String)],
                               soname: String? = nil) throws -> LUKSPrediction {
        let bank = LUKSMeasurement.bank(family)
        let uuids = LUKSMeasurement.uuids(cmdline: cmdline)
        for h in headers where !uuids.contains(h.uuid) {
            let on = uuids.isEmpty ? "it has no rd.luks.uuid" : "it has \(uuids.joined(separator: ", "))"
            throw LUKSError(.notOnCommandLine, "--luks-header \(Escape.text(h.uuid))=…: \(Escape.text(h.uuid)) is not an rd.luks.uuid on the next boot's kernel command line (\(origin)); \(on)")
        }
        var p = LUKSPrediction(bank: bank, commandLine: origin, uuids: uuids, extends: [], value: nil,
                               notPredicted: nil, notes: [])
        for uuid in uuids {
            if let given = headers.last(where: { $0.uuid == uuid }) {
                p.extends.append(try LUKSHeaderReader.measure(uuid: uuid, path: given.path, bank: bank, soname: soname))
                continue
            }
            do {
                p.extends.append(try LUKSHeaderReader.measure(uuid: uuid, path: LUKSHeaderReader.devicePath(uuid), bank: bank, soname: soname))
            } catch let e as LUKSError where headers.isEmpty {
                p.notPredicted = e.reason
                p.extends = []
                return p
            }
        }
        p.value = LUKSMeasurement.fold(p.extends, bank: bank)
        if uuids.isEmpty {
            p.notes.append("no rd.luks.uuid on the next boot's kernel command line (\(origin)): AEM's initramfs extends nothing into PCR13, which stays all zeros from reset (and AEM refuses to seal to it)")
        }
        if uuids.count > 1 {
            p.notes.append("\(uuids.count) LUKS UUIDs: AEM's unseal backs every header up to the same /tmp/luks-header-dump, and cryptsetup luksHeaderBackup refuses an existing file; compare with the current boot's PCR13 before relying on this")
        }
        return p
    }
}
