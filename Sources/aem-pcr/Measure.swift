// SPDX-License-Identifier: Apache-2.0
import AEMPCR
import ArgumentParser

struct Measure: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Print tboot's measurement of one module: H(H(cmdline) || H(image)).",
        discussion: """
            The image is the file as GRUB loads it: gunzipped when it starts with a gzip header, \
            unless --nounzip is given (as on the grub.cfg line). The command line is the string \
            GRUB passes, without the file name. Prints '<bank> <hex>' per bank.

            Example:
              aem-pcr measure --bank sha256 \\
                --cmdline 'placeholder dom0_mem=min:1024M' /boot/xen-4.17.5.gz
            """)

    @Option(name: .customLong("bank"), help: ArgumentHelp("Bank to compute. Repeatable (default sha1 and sha256).", valueName: "bank"))
    var banks: [HashAlgorithm] = []

    @Option(help: ArgumentHelp("The module's command line as GRUB passes it.", valueName: "string"))
    var cmdline = ""

    @Flag(help: "Hash the file as it is, as GRUB's --nounzip does.")
    var nounzip = false

    @OptionGroup var output: OutputOptions

    @Argument(help: ArgumentHelp("The module file.", valueName: "file"))
    var file: String

    func validate() throws { try validateBanks(banks) }

    func run() throws {
        Terminal.verbose = output.verbose
        let banks = requestedBanks(self.banks)
        let line = RawArgument.bytes(cmdline)
        let spec = BootSpec.Module(path: file, cmdline: line, noUnzip: nounzip, origin: "argument")
        let m = try ModuleMeasurement.measure(spec, banks: banks)
        printDigests(banks.map { ($0, m.measurements[$0]!) }, json: output.json, extra: [
            ("file", .string(file)), ("cmdline", .string(String(decoding: line, as: UTF8.self))),
            ("cmdline_hex", .string(Hex.encode(line))),
            ("gunzipped", .bool(m.encoding == .gzip)), ("image_size", .int(Int(m.imageSize))),
        ])
    }
}

/// `<bank> <hex>` lines, or a JSON object with a `digests` member.
func printDigests(_ digests: [(HashAlgorithm, Digest)], json: Bool, extra: [(String, JSON)]) {
    if json {
        Terminal.output(JSON.object(extra + [("digests", JSON.digests(digests.map(\.1)))]))
    } else {
        for (b, d) in digests { Terminal.outputLine("\(b) \(d.hex)") }
    }
}
