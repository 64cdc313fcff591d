// SPDX-License-Identifier: Apache-2.0
import AEMPCR
import AEMPCRHardware
import AEMPCRSystem
import ArgumentParser

struct LogDump: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "dump",
        abstract: "Save the TXT heap, with this boot's DRTM event log, to a file (as root).",
        discussion: """
            Reads the TXT heap registers (TXT.HEAP.BASE and TXT.HEAP.SIZE at physical 0xFED30300) \
            and the heap they point at from /dev/mem, checks that the heap leads to a DRTM event \
            log, and writes a heap dump: the two registers (u64, little-endian) then the heap. \
            Every command that reads a DRTM event log reads that file. It is written whole or not \
            at all.

            Reading /dev/mem needs root. A kernel in lockdown (Secure Boot) refuses it; one built \
            with CONFIG_IO_STRICT_DEVMEM may refuse the heap's range until booted with \
            iomem=relaxed. Registers that read all FF or all zero mean no TXT, so no measured launch.

            TrenchBoot (GRUB slaunch, Xen or Linux as the launched kernel, AMD SKINIT or Intel \
            TXT) keeps its log outside the TXT heap. Under Xen, save 'xl dmesg' to a file and give \
            it with --xen-dmesg: the log is read from the range Xen's "SLAUNCH: reserving event \
            log" line names, (0xA - 0xB) or [0xA, 0xB), and saved as read ('sudo xl dmesg > \
            console.txt', then 'sudo aem-pcr log dump --xen-dmesg console.txt -o slaunch.log'). \
            Under Linux, \
            --slaunch-eventlog saves Linux Secure Launch's file. The format is told from the \
            content either way.

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
        let dump: [UInt8]
        do {
            let memory = try PhysicalMemoryFile(path: mem)
            dump = try TXTHeapDump.capture(from: memory)
            try file.write(dump)
            try file.commit()
        } catch {
            file.discard()
            throw error
        }
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
