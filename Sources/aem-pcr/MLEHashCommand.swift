// SPDX-License-Identifier: Apache-2.0
import AEMPCR
import ArgumentParser

struct MLEHash: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "mle-hash",
        abstract: "Print SINIT's measurement of tboot (the MLE hash) with a command line.",
        discussion: """
            tboot's command line lives inside the measured range, so it changes the MLE hash. \
            Give it exactly as GRUB passes it (Qubes AEM: 'placeholder logging=memory,serial'). \
            Equals 'lcp2_mlehash --create --alg BANK --cmdline STRING FILE' for tboot images with \
            one loadable segment, and for longer lines follows tboot's own 511-byte truncation.

            Example:
              aem-pcr mle-hash --bank sha1 \\
                --cmdline 'placeholder logging=memory,serial' /boot/tboot.gz
            """)

    @Option(name: .customLong("bank"), help: ArgumentHelp("Bank to compute. Repeatable (default sha1 and sha256).", valueName: "bank"))
    var banks: [HashAlgorithm] = []

    @Option(help: ArgumentHelp("tboot's command line as GRUB passes it.", valueName: "string"))
    var cmdline = ""

    @OptionGroup var output: OutputOptions

    @Argument(help: ArgumentHelp("The tboot image (tboot.gz).", valueName: "file"))
    var file: String

    func validate() throws { try validateBanks(banks) }

    func run() throws {
        Terminal.verbose = output.verbose
        let banks = requestedBanks(self.banks)
        let image = try MLEImage(path: file)
        let given = RawArgument.bytes(cmdline)
        let (line, cut) = image.effectiveCmdline(given)
        if cut {
            // As predict's note: the digest is of what tboot keeps, which SINIT measures.
            Terminal.writeError("aem-pcr: note: tboot keeps only the first \(line.count) bytes of this \(given.count)-byte command line; the hash is of those, as SINIT measures them\n")
        }
        let digests = try image.hash(cmdline: line, banks: banks)
        printDigests(banks.map { ($0, digests[$0]!) }, json: output.json, extra: [
            ("file", .string(file)), ("cmdline", .string(String(decoding: line, as: UTF8.self))),
            ("cmdline_hex", .string(Hex.encode(line))), ("cmdline_truncated", .bool(cut)),
        ])
    }
}
