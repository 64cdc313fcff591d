// SPDX-License-Identifier: Apache-2.0
import AEMPCR

/// The current TrenchBoot boot's DRTM log, read where Xen left it: the range Xen printed on its
/// console (`xl dmesg`, saved to a file or run by `CurrentBoot.findLog`), read from physical memory.
public enum SecureLaunchMemory {
    /// The console text read: `xl dmesg` prints Xen's whole ring, 16 KiB to a few MiB.
    static let maxConsoleText = 16 << 20

    /// The log bytes of the range the `SLAUNCH: reserving event log` line of `dmesgFile` gives,
    /// read from `mem` (/dev/mem, or a file laid out like it), and the range.
    public static func xenLog(dmesgFile: String, mem: String) throws -> (bytes: [UInt8], range: SecureLaunchLog.Range) {
        let text = String(decoding: try FileReader.readAll(path: dmesgFile, limit: maxConsoleText), as: UTF8.self)
        return try xenLog(consoleText: text, source: dmesgFile, mem: mem)
    }

    /// The same from the console text itself (`source` names it in messages).
    public static func xenLog(consoleText text: String, source: String, mem: String) throws -> (bytes: [UInt8], range: SecureLaunchLog.Range) {
        let range = try SecureLaunchLog.xenRange(in: text, source: source)
        let memory = try PhysicalMemoryFile(path: mem)
        return (try SecureLaunchLog.capture(range, from: memory), range)
    }
}
