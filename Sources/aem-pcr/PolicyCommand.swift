// SPDX-License-Identifier: Apache-2.0
import AEMPCR
import AEMPCRSystem
import ArgumentParser
import Glibc

struct PolicyCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "policy",
        abstract: "Compute a TPM 2.0 PolicyPCR digest offline from PCR values in files.",
        discussion: """
            Computes the digest a TPM2_PolicyPCR leaves in a fresh policy session (the \
            authPolicy of an object sealed to those PCRs) from values in files, without a TPM: \
            the same digest 'tpm2_createpolicy --policy-pcr' or a trial 'tpm2_policypcr' \
            computes on a TPM that holds those values. Each --values file is predict --json \
            output, this tool's other PCR JSON, or tpm2_pcrread's YAML; a later file overrides \
            an earlier one PCR by PCR, so predicted PCR17-19 can be laid over the current \
            PCR13. Prints the digest in hex, or writes it raw (--format binary) as \
            'tpm2_policypcr -L' does. The policy hash is SHA-256, as Anti Evil Maid's. A \
            PCR13 or PCR17-19 all 00 or all FF, which AEM never seals to, is warned about \
            (below: a TPM 2.0 under tboot's default policy, where PCR19 stays 00 and AEM \
            seals to 13, 17 and 18).

            Example:
              tpm2_pcrread sha256:13,17,18 > now.yaml
              sudo aem-pcr predict --live --json \\
                --grub-cfg /boot/grub2/grub.cfg --entry 0 > next.json
              aem-pcr policy --pcr 13,17,18 --bank sha256 \\
                --values now.yaml --values next.json
            """)

    @Option(help: ArgumentHelp("The PCRs to select, as a list (13,17,18,19).", valueName: "list"))
    var pcr: String

    @Option(name: .customLong("bank"), help: ArgumentHelp("A bank to select the PCRs in; repeatable, selected in the order given (default sha256).", valueName: "bank"))
    var banks: [HashAlgorithm] = []

    @Option(name: .customLong("values"), help: ArgumentHelp("PCR values: predict --json, this tool's PCR JSON or tpm2_pcrread YAML. Repeatable; later files override earlier ones per PCR.", valueName: "file"))
    var values: [String] = []

    @Option(help: ArgumentHelp("hex (a line) or binary (the raw digest, as tpm2_policypcr -L writes it).", valueName: "hex|binary"))
    var format: DigestFormat = .hex

    @Option(name: .shortAndLong, help: ArgumentHelp("Write the digest to this file instead of standard output.", valueName: "file"))
    var output: String?

    @Flag(help: "Print one JSON object instead of text (see aem-pcr(8) for its schema).")
    var json = false

    @Flag(name: .shortAndLong, help: "Print more detail, and error codes with errors.")
    var verbose = false

    enum DigestFormat: String, ExpressibleByArgument { case hex, binary }

    func validate() throws {
        try validateBanks(banks)
        if values.isEmpty { throw ValidationError("give the PCR values: --values FILE (repeatable)") }
        do { _ = try PCRSelection.indices(pcr) } catch let e as CodedError {
            throw ValidationError("--pcr: \(e.reason)")
        }
        if json && format == .binary && output == nil {
            throw ValidationError("--json and --format binary both want standard output: add -o FILE")
        }
    }

    func run() throws {
        Terminal.verbose = verbose
        let selection = try PCRSelection(banks: banks.isEmpty ? [.sha256] : banks, pcrs: PCRSelection.indices(pcr))
        var merged = PCRValues()
        var origin = [String: String]()
        for path in values {
            let v = try PCRValuesFile.read(path: path)
            merged = merged.overridden(by: v)
            for bank in v.banks { for p in v.pcrs(in: bank) { origin["\(bank):\(p)"] = path } }
        }
        let digest: Digest
        do {
            digest = try PolicyPCR.digest(selection, values: merged)
        } catch let e as CodedError where e.code == .policyMissingValue {
            throw CodedError(.policyMissingValue, "\(e.reason) in \(values.joined(separator: ", "))")
        }
        // AEM's listbadpcrs refuses PCR13 and PCR17-19 all 00 (never extended) or all FF (no
        // measured launch), and so does seal: a digest over such a value is said to be one.
        for b in selection.banks {
            for p in b.pcrs where [13, 17, 18, 19].contains(p.rawValue) {
                guard let v = merged[b.algorithm, p], v.isAllZero || v.isAllOnes else { continue }
                Terminal.warning("PCR\(p) \(b.algorithm) from \(origin["\(b.algorithm):\(p)"] ?? "the values") is all \(v.isAllZero ? "00 (nothing extended it)" : "FF (no measured launch)"): AEM refuses to seal to such a PCR (listbadpcrs), and so does aem-pcr seal; the digest is computed all the same")
            }
        }
        if let path = output {
            let bytes = format == .binary ? digest.bytes : Array((digest.hex + "\n").utf8)
            try writeOutputFile(path, bytes)
        } else if format == .binary {
            try Terminal.outputBinary(digest.bytes, refusing: "--format binary writes the digest's 32 bytes; redirect standard output to a file, or give -o FILE")
        }
        if json {
            let rows = selection.banks.flatMap { b in
                b.pcrs.map { p in
                    JSON.object([
                        ("pcr", .int(Int(p.rawValue))), ("bank", .string(b.algorithm.description)),
                        ("value", .string(merged[b.algorithm, p]!.hex)),
                        ("from", .string(origin["\(b.algorithm):\(p)"] ?? "")),
                    ])
                }
            }
            Terminal.output(JSON.object([
                ("selection", .string(selection.description)), ("policy_hash", .string("sha256")),
                ("policy_digest", .string(digest.hex)), ("values", .array(rows)),
            ]))
        } else if output == nil && format == .hex {
            Terminal.outputLine("\(digest.hex)")
        } else if verbose {
            Terminal.writeError("PolicyPCR(\(selection)) = \(digest.hex) written to \(output ?? "standard output")\n")
        }
    }
}

/// Writes a small output file whole (created 0644 by the umask, replaced if it exists). A
/// symbolic link at `path` is refused, not written through: run as root, a link planted at
/// the name would overwrite the file it names.
func writeOutputFile(_ path: String, _ bytes: [UInt8]) throws {
    // A FIFO, socket or device is refused before it is opened (opening a FIFO for writing
    // waits for a reader forever).
    let fd: Int32
    do {
        fd = try RegularFile.open(path, flags: O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW, mode: 0o644) { e in
            e == ELOOP
                ? CodedError(.usage, "-o \(path) is a symbolic link: refused, it would write through to the file it names (nothing was written); remove it or give another name")
                : CodedError(.usage, "-o \(path): \(Errno(e))")
        }
    } catch let e as CodedError where e.code.isFile {
        throw CodedError(.usage, "-o \(e.description)")
    }
    defer { close(fd) }
    try writeAll(fd, bytes, what: "-o \(path)")
}

/// Writes all of `bytes` to `fd`; `what` names it in the error.
func writeAll(_ fd: Int32, _ bytes: [UInt8], what: String) throws {
    var done = 0
    while done < bytes.count {
        let n = bytes[done...].withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
        if n < 0 {
            if errno == EINTR { continue }
            throw CodedError(.usage, "\(what): \(Errno.current)")
        }
        if n == 0 { throw CodedError(.usage, "\(what): nothing could be written") }
        done += n
    }
}
