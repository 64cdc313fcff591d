// SPDX-License-Identifier: Apache-2.0
/// Which measured launch wrote a DRTM log (TrenchBoot Secure Launch on AMD SKINIT or Intel TXT,
/// or tboot), with the events that decided it, the PCRs it extended and the known defects of the
/// loaders' logs, reported as notes rather than errors (issue 24; sources below).
///
/// Sources (TrenchBoot forks): secure-kernel-loader `event_log.c` (its Spec ID header always
/// declares SHA-1 and SHA-256 and every record carries both, `ev_log_hash_t`) and `main.c`
/// (`SKINIT`, `DLME entry offset`, `DLME` into PCR17); Xen `arch/x86/slaunch.c`
/// (`slaunch_measure_slrt`: the platform entry, no data, PCR18; `slaunch_process_drtm_policy`: on
/// EFI `Xen's command line` and per module `MB module string` into PCR18, `MB module` into PCR17;
/// on Multiboot2 the policy's `Measured MB2 module` entries into PCR17) and `tpm.c`
/// (`create_log_event20`: one digest per header bank, TXT's OneDigest `01 00 … 00` where Xen
/// cannot hash the bank; the early code measures the Multiboot2 information block into PCR18
/// with no data); GRUB `multiboot_mbi2.c`, `slaunch.c`, `txt.c` (the policy entries' strings).
public struct DRTMLaunch: Sendable, Equatable {
    public enum Kind: String, Sendable, CaseIterable {
        /// TrenchBoot: GRUB `slaunch`, AMD SKINIT, the secure-kernel-loader (SKL) as DCE.
        case trenchBootAMD = "trenchboot-amd-skinit"
        /// TrenchBoot: GRUB `slaunch`, Intel TXT with SINIT, Xen or Linux as the MLE.
        case trenchBootIntel = "trenchboot-intel-txt"
        /// Intel TXT with tboot as the MLE.
        case tboot = "tboot"
        /// Intel TXT with SINIT's events alone: no tboot and no Secure Launch record.
        case intelTXT = "intel-txt"
        /// None of the above: no event tells.
        case unknown = "unknown"
    }

    /// What the loader launched, told from the descriptions of the Secure Launch events.
    public enum Target: String, Sendable {
        /// Xen booted through EFI: Xen measures its command line and each module itself.
        case xenEFI = "xen-efi"
        /// Xen booted through Multiboot2: the MB2 information block goes to PCR18.
        case xenMultiboot2 = "xen-multiboot2"
        /// Linux Secure Launch (its `Measured …` events and EV_NO_ACTION tags).
        case linux = "linux"
    }

    /// One event and why it counted.
    public struct Evidence: Sendable, Equatable {
        public let eventIndex: Int
        public let reason: String
    }

    /// A known oddity of the log or of the PCRs, said as a note: the log is still read and replayed.
    public struct Note: Sendable, Equatable {
        public let code: String
        public let message: String
        public let eventIndices: [Int]
    }

    public let kind: Kind
    public let target: Target?
    /// The PCRs the log extends (EV_NO_ACTION records and PCRs outside 0–23 left out).
    public let pcrs: [PCRIndex]
    public let evidence: [Evidence]
    /// Notes on the log alone (see `notes(against:)` for the ones that need PCR values).
    public let notes: [Note]

    /// `TrenchBoot on AMD SKINIT (Xen through EFI)`.
    public var description: String {
        var s: String
        switch kind {
        case .trenchBootAMD: s = "TrenchBoot on AMD SKINIT"
        case .trenchBootIntel: s = "TrenchBoot on Intel TXT"
        case .tboot: s = "tboot on Intel TXT"
        case .intelTXT: s = "Intel TXT (SINIT's events only: no tboot or Secure Launch record)"
        case .unknown: s = "not recognised (no SKINIT, SINIT, tboot or Secure Launch event)"
        }
        switch target {
        case .xenEFI?: s += " (Xen through EFI)"
        case .xenMultiboot2?: s += " (Xen through Multiboot2)"
        case .linux?: s += " (Linux Secure Launch)"
        case nil: break
        }
        return s
    }

    public var isTrenchBoot: Bool { kind == .trenchBootAMD || kind == .trenchBootIntel }

    /// Recognises the launch from the log's events.
    public static func recognise(_ log: DRTMEventLog) -> DRTMLaunch {
        let events = log.events
        var evidence = [Evidence]()
        let extended = events.enumerated().filter { $0.element.type != .noAction && $0.element.pcr.rawValue <= 23 }
        let pcrs = Set(extended.map(\.element.pcr)).sorted()
        let firstSL = events.firstIndex { $0.type == .secureLaunch }
        let firstSINIT = events.firstIndex(where: \.isSINITEvent)
        let firstTboot = events.firstIndex { $0.type == .tbootMeasurement }

        let kind: Kind
        if let first = extended.first, first.element.type == .secureLaunch, first.element.pcr == 17,
           first.element.data == Array("SKINIT".utf8) {
            kind = .trenchBootAMD
            evidence.append(.init(eventIndex: first.offset,
                reason: "the first measurement is the secure-kernel-loader's \"SKINIT\" record in PCR17 (AMD's SKINIT measured the SLB)"))
        } else if let s = firstSINIT, let t = firstTboot {
            kind = .tboot
            evidence.append(.init(eventIndex: s, reason: "SINIT's records (types 0x400–0x4FF): an Intel TXT launch"))
            evidence.append(.init(eventIndex: t, reason: "tboot's records (type 0x501)"))
        } else if let s = firstSINIT, let l = firstSL {
            kind = .trenchBootIntel
            evidence.append(.init(eventIndex: s, reason: "SINIT's records (types 0x400–0x4FF): an Intel TXT launch"))
            evidence.append(.init(eventIndex: l, reason: "Secure Launch records (type 0x502) from the launched kernel, not tboot's 0x501"))
        } else if let s = firstSINIT {
            kind = .intelTXT
            evidence.append(.init(eventIndex: s, reason: "SINIT's records (types 0x400–0x4FF), and no tboot or Secure Launch record"))
        } else if let l = firstSL {
            kind = .unknown
            evidence.append(.init(eventIndex: l, reason: "Secure Launch records, but no SKINIT record first and no SINIT record"))
        } else {
            kind = .unknown
        }

        var target: Target? = nil
        if kind == .trenchBootAMD || kind == .trenchBootIntel || (kind == .unknown && firstSL != nil) {
            let texts = events.enumerated().map { ($0.offset, $0.element.type == .secureLaunch ? $0.element.dataText : nil) }
            if let (i, t) = texts.first(where: { $0.1 == "Xen's command line" || $0.1 == "MB module string" }) {
                target = .xenEFI
                evidence.append(.init(eventIndex: i, reason: "\"\(t!)\": Xen booted through EFI measures its command line and modules itself"))
            } else if let (i, t) = texts.first(where: { $0.1 == "Measured MB2 module" || $0.1 == "Measured MB2 information" }) {
                target = .xenMultiboot2
                evidence.append(.init(eventIndex: i, reason: "\"\(t!)\": GRUB's Multiboot2 policy entry, measured by Xen"))
            } else if let (i, t) = texts.first(where: { $0.1?.hasPrefix("Measured ") == true }) {
                target = .linux
                evidence.append(.init(eventIndex: i, reason: "\"\(t!)\": Linux Secure Launch's description of what it measured"))
            } else if let i = events.firstIndex(where: { $0.type == .noAction && $0.pcr == 17 }) {
                target = .linux
                evidence.append(.init(eventIndex: i, reason: "an EV_NO_ACTION tag on PCR17, as Linux Secure Launch writes"))
            } else {
                // Xen's Multiboot2 path: the information block and the SLRT entry, both without data.
                let bare = events.indices.filter { events[$0].type == .secureLaunch && events[$0].pcr == 18 && events[$0].data.isEmpty }
                if bare.count >= 2 {
                    target = .xenMultiboot2
                    evidence.append(.init(eventIndex: bare[0],
                        reason: "two PCR18 records without data: Xen's Multiboot2 information block, then the SLRT entry"))
                }
            }
        }
        return DRTMLaunch(kind: kind, target: target, pcrs: pcrs, evidence: evidence, notes: logNotes(log))
    }

    /// `01 00 … 00`: TXT's OneDigest, which Xen logs (and extends) for a bank it cannot hash.
    static func isOneDigest(_ d: Digest) -> Bool {
        d.bytes.first == 1 && d.bytes.dropFirst().allSatisfy { $0 == 0 }
    }

    static func logNotes(_ log: DRTMEventLog) -> [Note] {
        var notes = [Note]()
        let events = log.events
        // Digests of banks the header does not declare (the SKL's fixed SHA-1 + SHA-256 records).
        var undeclared = [HashAlgorithm: [Int]]()
        for (i, e) in events.enumerated() {
            for b in e.digests.keys where !log.banks.contains(b) { undeclared[b, default: []].append(i) }
        }
        if log.format == .tpm20TCG {
            for (b, list) in undeclared.sorted(by: { $0.key < $1.key }) {
                notes.append(Note(code: "bank-not-declared",
                    message: "\(eventList(list)) carry a \(b) digest the log header does not declare "
                        + "(it declares \(log.banks.map(\.description).joined(separator: ", "))): the secure-kernel-loader "
                        + "writes SHA-1 and SHA-256 into its records whatever the TPM has; the \(b) bank is "
                        + "replayed for reference only and never verified",
                    eventIndices: list))
            }
        }
        // Header banks some Secure Launch records lack.
        for b in log.banks {
            let list = events.indices.filter { events[$0].type == .secureLaunch && events[$0].digests[b] == nil }
            if !list.isEmpty {
                notes.append(Note(code: "bank-missing-from-records",
                    message: "\(eventList(list)) carry no \(b) digest although the header declares \(b): "
                        + "the TPM's \(b) bank was extended with something this log does not show",
                    eventIndices: list))
            }
        }
        // Placeholders where a loader could not hash a bank.
        var placeholder = [HashAlgorithm: [Int]]()
        for (i, e) in events.enumerated() where e.type == .secureLaunch {
            for d in e.sortedDigests where isOneDigest(d) { placeholder[d.algorithm, default: []].append(i) }
        }
        for (b, list) in placeholder.sorted(by: { $0.key < $1.key }) {
            notes.append(Note(code: "placeholder-digest",
                message: "\(eventList(list)) carry TXT's OneDigest placeholder (01 00 … 00) as their \(b) digest: "
                    + "Xen hashes SHA-1 and SHA-256 only and extends the placeholder into other banks, so "
                    + "bank \(b) of \(Set(list.map { "PCR\(events[$0].pcr)" }).sorted().joined(separator: ", ")) "
                    + "records no measurement there",
                eventIndices: list))
        }
        // Linux Secure Launch's tags.
        let tags = events.indices.filter { events[$0].type == .noAction && events[$0].pcr.rawValue != 0 }
        if !tags.isEmpty {
            let pcrs = Set(tags.map { "PCR\(events[$0].pcr)" }).sorted().joined(separator: ", ")
            notes.append(Note(code: "no-action-tags",
                message: "\(eventList(tags)) are EV_NO_ACTION records on \(pcrs) (Linux Secure Launch's "
                    + "tags around its own measurements): logged, never extended",
                eventIndices: tags))
        }
        return notes
    }

    /// `SHA-256(zeros ‖ FF…)`: the value a PCR reads after the AMD PSP's DRTM service caps it
    /// with one all-FF extend from the launch's zeros.
    public static func pspCapValue(_ bank: HashAlgorithm) -> Digest? {
        guard let size = bank.digestSize, bank.isComputable,
              let ff = Digest(bank, bytes: [UInt8](repeating: 0xFF, count: size)) else { return nil }
        return Digest.zeros(bank).extended(with: ff)
    }

    /// Why a PCR value differs from the log's replay, where the launch explains it: the PSP's cap.
    public func explanation(pcr: PCRIndex, bank: HashAlgorithm, observed: Digest) -> String? {
        guard kind == .trenchBootAMD, (18...20).contains(pcr.rawValue), observed == Self.pspCapValue(bank) else { return nil }
        return "PCR\(pcr) reads the cap the AMD PSP's DRTM service leaves (one all-FF extend from zeros, "
            + "PCR18–20): the launch failed after SKINIT, so nothing sealed to this PCR will unseal in this boot"
    }

    /// Notes that need the TPM's values: banks the TPM keeps that the log does not record, PCRs
    /// the PSP capped.
    public func notes(against values: PCRValues, log: DRTMEventLog) -> [Note] {
        var out = [Note]()
        let missing = values.banks.filter { !log.banks.contains($0) }
        if isTrenchBoot, !missing.isEmpty {
            out.append(Note(code: "tpm-bank-not-in-log",
                message: "the TPM keeps bank \(missing.map(\.description).joined(separator: ", ")), which the log does not "
                    + "record: the secure-kernel-loader declares SHA-1 and SHA-256 only and Xen's early code copies "
                    + "only the digests the header declares, so that bank cannot be checked against this log",
                eventIndices: []))
        }
        for bank in values.banks {
            for pcr in values.pcrs(in: bank) where (18...20).contains(pcr.rawValue) {
                if let v = values[bank, pcr], let text = explanation(pcr: pcr, bank: bank, observed: v) {
                    out.append(Note(code: "psp-capped", message: "\(bank): " + text, eventIndices: []))
                }
            }
        }
        return out
    }

    static func eventList(_ list: [Int]) -> String {
        (list.count == 1 ? "event " : "events ") + list.map(String.init).joined(separator: ", ")
    }
}

extension DRTMEvent {
    /// The data as text where it is the ASCII description a Secure Launch record (0x502–0x504)
    /// carries: printable ASCII only, no NUL; nil otherwise (and for empty data).
    public var dataText: String? {
        guard (0x502...0x504).contains(type.rawValue), !data.isEmpty,
              data.allSatisfy({ (0x20...0x7E).contains($0) }) else { return nil }
        return String(decoding: data, as: UTF8.self)
    }
}
