import AEMPCR
import ArgumentParser
#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

@main
struct AEMPCRCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "aem-pcr",
        abstract: "Predict the TPM PCRs of an Intel TXT launch (tboot + Xen, Qubes Anti Evil Maid).",
        discussion: """
            aem-pcr computes what SINIT and tboot will extend into PCR17, PCR18 and PCR19 when the \
            machine next boots the given tboot, Xen, kernel and initramfs, so the Anti Evil Maid \
            secret can be checked and resealed without a blind boot. See aem-pcr(8).
            """,
        version: "0.1.0",
        subcommands: [Predict.self, Diff.self, Verify.self, Read.self, Measure.self, MLEHash.self, LogCommand.self, Notice.self])

    static func main() {
        // `notice` runs from package hooks: it never fails the transaction, even on bad usage.
        let failure = CommandLine.arguments.dropFirst().first == "notice" ? ExitStatus.ok : ExitStatus.badInput
        do {
            var command = try parseAsRoot()
            try command.run()
        } catch let error as AEMPCRError {
            Terminal.error("\(error)", code: error.errorCode)
            Glibc.exit(failure)
        } catch let code as ExitCode {
            Glibc.exit(code.rawValue)
        } catch {
            let status = exitCode(for: error)
            let message = fullMessage(for: error)
            if status == .success {
                if !message.isEmpty { print(message) }
                Glibc.exit(0)
            }
            Terminal.writeError(message + "\n")
            Glibc.exit(failure)
        }
    }
}

/// Exit statuses, as aem-pcr(8) documents them.
enum ExitStatus {
    static let ok: Int32 = 0
    /// A verification found a difference.
    static let mismatch: Int32 = 1
    /// Bad input or usage.
    static let badInput: Int32 = 2
}
