// SPDX-License-Identifier: Apache-2.0
import AEMPCR
import AEMPCRSeal
import AEMPCRTPM
import ArgumentParser
import Glibc

/// Where the running machine is read: the TPM's transport and physical memory.
struct LiveOptions: ParsableArguments {
    @Option(help: ArgumentHelp("The TPM 2.0 to read, in tpm2-tss's TCTI syntax: device:/dev/tpmrm0, swtpm:path=SOCKET, swtpm:host=H,port=P, mssim:…, tabrmd:… (no other TCTI is opened; default: TPM2TOOLS_TCTI or TCTI from the environment, else device:/dev/tpmrm0).", valueName: "tcti"))
    var tcti: String?

    @Option(help: ArgumentHelp("Physical memory to read the current DRTM log from: /dev/mem, or a file laid out like it (tests, offline copies).", valueName: "path"))
    var mem = "/dev/mem"

    /// The current boot these options, the log file and the PCR file (given or not) name: read
    /// once, through one TPM session (`CurrentBoot`).
    func currentBoot(eventLog: String?, pcrs: String?, verbose: Bool, stated: TPMFamily? = nil,
                     familyFromLog: Bool = false, tpm12: CurrentBoot.TPM12Access = .sysfs(path: nil),
                     xenDmesg: String? = nil) -> CurrentBoot {
        CurrentBoot(CurrentBoot.Inputs(eventLog: eventLog, pcrs: pcrs, mem: mem, tcti: tcti, stated: stated,
                                       familyFromLog: familyFromLog, tpm12: tpm12, verbose: verbose,
                                       environment: Environment.variables, note: { Terminal.note($0) },
                                       xenDmesg: xenDmesg))
    }

    /// A TCTI for a command printed to run later: the file a `device:` or `swtpm:path=` TCTI
    /// names made absolute; any other TCTI as given.
    static func absoluteTCTI(_ tcti: String) -> String {
        for prefix in ["device:", "swtpm:path="] where tcti.hasPrefix(prefix) && !tcti.dropFirst(prefix.count).contains(",") {
            return prefix + Terminal.absolute(String(tcti.dropFirst(prefix.count)))
        }
        return tcti
    }
}

/// The process environment, without Foundation.
enum Environment {
    static var variables: [String: String] {
        var out = [String: String]()
        var p = environ
        while let entry = p.pointee {
            let s = String(cString: entry)
            if let eq = s.firstIndex(of: "=") { out[String(s[..<eq])] = String(s[s.index(after: eq)...]) }
            p += 1
        }
        return out
    }
}
