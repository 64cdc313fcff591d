// SPDX-License-Identifier: Apache-2.0
import AEMPCR
import AEMPCRHardware
import AEMPCRSeal
import AEMPCRSystem
import AEMPCRTPM
import ArgumentParser

struct Read: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Read the PCRs of this machine's TPM (TPM 2.0 through tpm2-tss, TPM 1.2 from sysfs).",
        discussion: """
            Prints PCR13, 17, 18 and 19 (or the --pcr given) in every bank the TPM keeps active \
            (TPM2_GetCapability), or the --bank given. A TPM 2.0 is reached through tpm2-tss: the \
            TCTI named by --tcti, else TPM2TOOLS_TCTI or TCTI from the environment, else \
            device:/dev/tpmrm0 (the kernel's resource manager; root or the tss group). A TPM 1.2 \
            (which tpm2-tss cannot reach) is read from the kernel's /sys/class/tpm/tpm0/pcrs. \
            The family is what the kernel says (tpm_version_major), never guessed.

            More than eight values are read in several TPM2_PCR_Read calls; the PCR update \
            counter must not move between them. PCR17–19 reading all FF mean no measured launch \
            in this boot. --json prints the values in the shape of predict's "pcrs" object, so \
            either can be given to --pcrs or compared with the other.

            --save DIR writes the values (pcrs.yaml as tpm2_pcrread prints it, pcrs.json) and a \
            heap dump of the current DRTM log (heap.dump, as 'log dump' writes it), all 0600, \
            all three or none (written into a new directory that takes DIR's name in one step; an \
            existing DIR may hold nothing but an earlier set): what 'verify', 'diff' and \
            'predict --event-log' read on another machine.

            Example:
              sudo aem-pcr read --pcr 17 --pcr 18 --bank sha256
            """)

    @Option(name: .customLong("pcr"), help: ArgumentHelp("A PCR to read (0–23). Repeatable (default: 13, 17, 18, 19).", valueName: "n"))
    var pcrs: [UInt32] = []

    @Option(name: .customLong("bank"), help: ArgumentHelp("A bank to read. Repeatable (default: every active bank).", valueName: "bank"))
    var banks: [HashAlgorithm] = []

    @OptionGroup var live: LiveOptions

    @Option(name: .customLong("tpm12-pcrs"), help: ArgumentHelp("Read a TPM 1.2's PCRs from this file in the kernel's format instead of /sys/class/tpm/tpm0/pcrs.", valueName: "file"))
    var tpm12Pcrs: String?

    @Option(help: ArgumentHelp("Also save the values and the current DRTM log (from --mem) into this directory.", valueName: "dir"))
    var save: String?

    @OptionGroup var output: OutputOptions

    func validate() throws {
        try validateBanks(banks)
        for p in pcrs where p > 23 { throw ValidationError("--pcr \(p): a PC Client TPM has PCR0–23") }
        if tpm12Pcrs != nil && live.tcti != nil {
            throw ValidationError("--tpm12-pcrs reads a TPM 1.2 file and --tcti a TPM 2.0: give one of them")
        }
    }

    func run() throws {
        Terminal.verbose = output.verbose
        var wanted = (pcrs.isEmpty ? [13, 17, 18, 19] : pcrs).map(PCRIndex.init(rawValue:))
        // With --save, the current log first: its PCRs are read too, so the saved set verifies it.
        var dump: [UInt8]? = nil
        if let dir = save {
            let memory = try PhysicalMemoryFile(path: live.mem)
            let bytes = try TXTHeapDump.capture(from: memory)
            let log = try DRTMEventLog.parse(bytes: bytes, source: dir + "/heap.dump", checks: [])
            wanted += log.events.map(\.pcr).filter(\.isDynamic)
            dump = bytes
        }
        wanted = Array(Set(wanted)).sorted()
        let tpm: any PCRSource
        let values: PCRValues
        do {
            tpm = try live.currentBoot(eventLog: nil, pcrs: nil, verbose: output.verbose, tpm12: .sysfs(path: tpm12Pcrs))
                .source(family: tpm12Pcrs != nil ? .tpm12 : nil)
            values = try tpm.read(wanted, banks: banks.isEmpty ? nil : Array(Set(banks)).sorted(), onlyActive: false)
        } catch let e as CodedError where tpm12Pcrs == nil && [.tpmNoDevice, .tpmUnreachable, .tpmFamily].contains(e.code) {
            throw CodedError(e.code, "\(e)\(e.reason.hasSuffix("?") ? " Or" : ";") \(Self.wayOut(tcti: live.tcti))")
        }
        let source = tpm.name
        let notes = ReadNotes.notes(values)
        if let dir = save, let dump {
            // The missing parents are made (0700: the set holds a copy of root-only memory), as
            // mkdir -p would; the directory itself appears with the whole set in it.
            try Directory.create(Directory.split(dir).directory, mode: 0o700)
            let leftovers = try SavedSet.write(dir: dir, files: [
                ("pcrs.yaml", Array(PCRText.yaml(values).utf8)),
                ("pcrs.json", Array((ReadOutput.json(values, source: source, notes: notes).render() + "\n").utf8)),
                ("heap.dump", dump),
            ])
            for l in leftovers { Terminal.warning(l) }
        }
        if output.json {
            Terminal.output(ReadOutput.json(values, source: source, notes: notes))
            return
        }
        var out: TerminalText = Terminal.wrap(Terminal.bold("PCRs") + " read from \(source)") + "\n"
        out += Terminal.bold("PCR  bank    value") + "\n"
        for bank in values.banks {
            for pcr in values.pcrs(in: bank) {
                let label = Terminal.pad("\(pcr.rawValue)", 4) + " \(bank)"
                out += Terminal.digestLine(indent: 0, label: label, labelWidth: 12, hex: values[bank, pcr]!.hex) + "\n"
            }
        }
        for n in notes { out += Terminal.wrap("- \(n)", indent: 0) + "\n" }
        if let dir = save { out += Terminal.wrap("Saved \(dir)/pcrs.yaml, \(dir)/pcrs.json and \(dir)/heap.dump.") + "\n" }
        Terminal.output(out)
    }
}

extension Read {
    /// Where else the PCRs can come from when the TPM cannot be reached.
    static func wayOut(tcti: String?) -> String {
        (tcti == nil ? "give --tcti TCTI for a TPM 2.0 reached otherwise (swtpm:path=SOCKET, device:/dev/tpmrm0 …)"
            : "check --tcti (swtpm:path=SOCKET names swtpm's server socket, device:/dev/tpmrm0 the kernel's resource manager)")
            + ", or give --tpm12-pcrs FILE for a TPM 1.2's PCR text (the kernel's pcrs file, saved); verify, diff, predict --event-log and seal --dry-run take saved values with --pcrs FILE"
    }
}

enum ReadOutput {
    static func json(_ values: PCRValues, source: String, notes: [String]) -> JSON {
        .object([
            ("source", .string(source)),
            ("pcrs", JSON.pcrs(values, banks: values.banks)),
            ("notes", .array(notes.map { .string($0) })),
        ])
    }
}

/// What the values say about this boot.
enum ReadNotes {
    static func notes(_ values: PCRValues) -> [String] {
        var notes = [String]()
        for bank in values.banks {
            let dynamic = values.pcrs(in: bank).filter(\.isDynamic)
            let ones = dynamic.filter { values[bank, $0]!.isAllOnes }
            let zeros = dynamic.filter { values[bank, $0]!.isAllZero }
            if !ones.isEmpty {
                notes.append("\(names(ones)) \(bank): no measured launch in this boot (PCR17–22 still at their reset value)")
            }
            if !zeros.isEmpty {
                notes.append("\(names(zeros)) \(bank) all 00: nothing was extended there since the launch\(zeros.contains { $0.rawValue == 17 || $0.rawValue == 18 } ? " (SINIT always extends PCR17 and PCR18: not a complete measured launch)" : "")")
            }
        }
        return notes
    }

    private static func names(_ pcrs: [PCRIndex]) -> String {
        pcrs.map { "PCR\($0)" }.joined(separator: ", ")
    }
}

/// PCR values as `tpm2_pcrread` prints them, which PCRValuesFile reads back.
enum PCRText {
    static func yaml(_ values: PCRValues) -> String {
        var out = ""
        for bank in values.banks {
            out += "  \(bank):\n"
            for pcr in values.pcrs(in: bank) {
                out += "    \(pcr.rawValue < 10 ? " " : "")\(pcr.rawValue): 0x\(values[bank, pcr]!.hex.uppercased())\n"
            }
        }
        return out
    }
}
