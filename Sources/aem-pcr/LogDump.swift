// SPDX-License-Identifier: Apache-2.0
import AEMPCR
import AEMPCRHardware
import AEMPCRSeal
import AEMPCRSystem
import ArgumentParser

struct LogDump: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "dump",
        abstract: "Save this boot's DRTM event log (TrenchBoot's, or the TXT heap holding it) to a file (as root).",
        discussion: """
            Finds the running boot's log where its launch left it, in this order: Linux Secure \
            Launch's /sys/kernel/security/slaunch/eventlog (TrenchBoot with Linux); the range the \
            "SLAUNCH: reserving event log" line of 'xl dmesg' names, read from /dev/mem (TrenchBoot's \
            Xen, dom0); else the TXT heap (tboot). A TrenchBoot log is saved as read; the file says \
            where it was found, and when none is found the error says each place looked at.

            For the TXT heap: reads the TXT heap registers (TXT.HEAP.BASE and TXT.HEAP.SIZE at physical 0xFED30300) \
            and the heap they point at from /dev/mem, checks that the heap leads to a DRTM event \
            log, and writes a heap dump: the two registers (u64, little-endian) then the heap. \
            Every command that reads a DRTM event log reads that file. It is written whole or not \
            at all.

            Reading /dev/mem needs root. A kernel in lockdown (Secure Boot) refuses it; one built \
            with CONFIG_IO_STRICT_DEVMEM may refuse the heap's range until booted with \
            iomem=relaxed. Registers that read all FF or all zero mean no TXT, so no measured launch.

            TrenchBoot (GRUB slaunch, Xen or Linux as the launched kernel, AMD SKINIT or Intel \
            TXT) keeps its log outside the TXT heap. --xen-dmesg takes Xen's console text saved to \
            a file instead of running 'xl dmesg' (the range as Xen prints it, (0xA - 0xB) or \
            [0xA, 0xB): 'sudo xl dmesg > console.txt', then 'sudo aem-pcr log dump --xen-dmesg \
            console.txt -o slaunch.log'); --slaunch-eventlog names Linux Secure Launch's file. The \
            format is told from the content either way.

            Example:
              sudo aem-pcr log dump -o heap.dump
            """)

    @Option(name: .shortAndLong, help: ArgumentHelp("Where to write the heap dump.", valueName: "file"))
    var output: String

    @Option(help: ArgumentHelp("Physical memory to read: /dev/mem, or a file laid out like it (byte N at physical address N), for tests and offline copies.", valueName: "path"))
    var mem = "/dev/mem"

    @Option(name: .customLong("xen-dmesg"), help: ArgumentHelp("TrenchBoot: Xen's console text ('xl dmesg' saved to a file); save the event log from the range its 'SLAUNCH: reserving event log' line gives, read from --mem.", valueName: "file"))
    var xenDmesg: String?

    @Option(name: .customLong("slaunch-eventlog"), help: ArgumentHelp("TrenchBoot with Linux: save Linux Secure Launch's event log file (\(SecureLaunchLog.securityfsPath)).", valueName: "file"))
    var slaunchEventlog: String?

    @Flag(name: .shortAndLong, help: "Print error codes with errors.")
    var verbose = false

    func validate() throws {
        if xenDmesg != nil && slaunchEventlog != nil {
            throw ValidationError("give --xen-dmesg or --slaunch-eventlog, not both")
        }
    }

    func run() throws {
        Terminal.verbose = verbose
        if xenDmesg != nil || slaunchEventlog != nil { return try dumpSecureLaunchLog() }
        // Create the output's temporary file first: an unwritable directory fails before /dev/mem is read.
        let file = try AtomicOutputFile(path: output)
        let found: CurrentBoot.FoundLog
        do {
            found = try CurrentBoot.findLog(securityfs: SecureLaunchLog.securityfsPath, xenConsole: XenConsole.defaultCommand, mem: mem)
            try file.write(found.bytes)
            try file.commit()
        } catch {
            file.discard()
            throw error
        }
        switch found.origin {
        case .securityfs(let path): return try describeSecureLaunchLog(found.bytes, from: path)
        case .xenConsole(let command, let range, let mem):
            return try describeSecureLaunchLog(found.bytes, from: "the \(range.size) bytes at 0x\(String(range.start, radix: 16)) of \(mem) that \(command) names (line \(range.line))")
        case .txtHeap: break
        }
        let dump = found.bytes
        // Describe what was written, read back the way every other command will read it.
        let log = try DRTMEventLog.parse(bytes: dump, source: output, checks: [])
        let base = dump[0..<8].reversed().reduce(UInt64(0)) { $0 << 8 | UInt64($1) }
        let size = dump.count - 16
        Terminal.outputLine(Terminal.wrap("Wrote \(output): TXT heap of \(size) bytes at 0x\(String(base, radix: 16)), "
            + "\(log.format.rawValue) log, \(log.events.count) event\(log.events.count == 1 ? "" : "s")."))
        Terminal.outputLine("List it with:\n" + Terminal.command([["aem-pcr", "log", "show"], [Terminal.absolute(output)]]))
        for p in log.problems(.all) {
            LogOutput.warn("\(p) (the dump is kept; read it with --lenient)")
        }
    }
}

extension LogDump {
    /// TrenchBoot: the raw log from Xen's reserved range or Linux's securityfs file, saved as read.
    func dumpSecureLaunchLog() throws {
        let file = try AtomicOutputFile(path: output)
        let bytes: [UInt8], from: String
        do {
            if let dmesg = xenDmesg {
                let (b, range) = try SecureLaunchMemory.xenLog(dmesgFile: dmesg, mem: mem)
                bytes = b
                from = "the \(range.size) bytes at 0x\(String(range.start, radix: 16)) of \(mem) that \(dmesg) line \(range.line) names"
            } else {
                let path = slaunchEventlog!
                bytes = try FileReader.readAll(path: path, limit: Int(SecureLaunchLog.maxSize))
                _ = try DRTMEventLog.parse(bytes: bytes, source: path, checks: [])
                from = path
            }
            try file.write(bytes)
            try file.commit()
        } catch {
            file.discard()
            throw error
        }
        try describeSecureLaunchLog(bytes, from: from)
    }

    /// What was written, read back the way every other command will read it.
    func describeSecureLaunchLog(_ bytes: [UInt8], from: String) throws {
        let log = try DRTMEventLog.parse(bytes: bytes, source: output, checks: [])
        let launch = DRTMLaunch.recognise(log)
        Terminal.outputLine(Terminal.wrap("Wrote \(output): \(from); \(log.format.rawValue) log, "
            + "\(log.events.count) event\(log.events.count == 1 ? "" : "s"), \(launch.description)."))
        Terminal.outputLine("List it with:\n" + Terminal.command([["aem-pcr", "log", "show"], [Terminal.absolute(output)]]))
        for p in log.problems(.all) {
            LogOutput.warn("\(p) (the dump is kept; read it with --lenient)")
        }
    }
}
