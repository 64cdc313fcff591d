// SPDX-License-Identifier: Apache-2.0
import Glibc

/// A GRUB file name, `[(DEVICE)]/PATH`, turned into a file under the boot directory the way GRUB
/// opens it (`kern/file.c`, `grub_file_get_device_name`): the device in parentheses, then a path
/// that starts with `/`, looked up on that device's filesystem, where `/..` is `/`.
public enum GrubPath {
    /// The device named by a file name, nil when there is none (`$root`, the boot device).
    /// A disk or partition of this machine (`hd0,msdos1`, `ahci0,gpt2`, `md/0`, `lvm/vg-boot`) is
    /// returned; a loop device (a file inside an image), a network source (`http,host`, `tftp`,
    /// `pxe`), a memory disk or any other name cannot be read from the boot directory: refused.
    static func checkDevice(_ name: [UInt8], loopDevices: Set<String>, path: String, line: Int) throws -> String? {
        guard name.first == UInt8(ascii: "(") else { return nil }
        let display = Escape.bytes(name, limit: 200)
        guard let close = name.firstIndex(of: UInt8(ascii: ")")) else {
            throw CodedError(.grubBadLoaderLine, source: path, line: line, "'\(display)': '(' without ')'")
        }
        let device = String(decoding: name[1..<close], as: UTF8.self)
        let disk = device.split(separator: ",", maxSplits: 1, omittingEmptySubsequences: false).first.map(String.init) ?? ""
        func refuse(_ why: String) throws -> Never {
            throw CodedError(.grubUnsupported, source: path, line: line,
                            "'\(display)' is \(why); it cannot be predicted from the boot directory")
        }
        if device.isEmpty { try refuse("on an empty device '()' (an unset $root?)") }
        if loopDevices.contains(String(grubBytes: name[1..<close])) || loopDevices.contains(String(grubBytes: disk.utf8))
            || disk.hasPrefix("loop") {
            try refuse("on a loop device (a file inside an image)")
        }
        let network = ["http", "https", "tftp", "pxe", "efinet", "nfs"]
        if network.contains(where: { disk == $0 || disk.hasPrefix($0 + ":") || disk.hasPrefix("pxe") }) {
            try refuse("fetched over the network by GRUB")
        }
        let volumePrefixes = ["md/", "mduuid/", "lvm/", "lvmid/", "cryptouuid/", "ldm/"]
        if volumePrefixes.contains(where: { device.hasPrefix($0) }) { return device }
        let diskKinds = ["hd", "ahci", "ata", "usb", "cd", "fd", "nvme", "scsi", "md", "crypto"]
        for k in diskKinds where disk.hasPrefix(k) {
            let rest = disk.dropFirst(k.count)
            if !rest.isEmpty && rest.allSatisfy({ $0.isASCII && $0.isNumber }) { return device }
        }
        try refuse("on device '(\(Escape.text(device, limit: 80)))', not a disk or partition of this machine")
    }

    /// The file under `bootDir` that GRUB's name stands for: the device dropped (the boot
    /// directory is the partition GRUB reads), `.` and `..` resolved without leaving it. A file
    /// that exists must lie inside the boot directory once symbolic links are followed.
    public static func resolve(_ name: [UInt8], bootDir: String, config: String, line: Int) throws -> String {
        var rest = name[...]
        if rest.first == UInt8(ascii: "("), let close = rest.firstIndex(of: UInt8(ascii: ")")) {
            rest = rest[(close + 1)...]
        }
        // For messages only: escaping every name costs more than resolving it.
        var display: String { Escape.bytes(name, limit: 200) }
        guard rest.first == UInt8(ascii: "/") else {
            throw CodedError(.grubBadLoaderLine, source: config, line: line,
                            "GRUB cannot open '\(display)': the path after the device must start with '/'")
        }
        guard !rest.contains(0), rest.allSatisfy({ $0 < 0x80 }) || Escape.isUTF8(Array(rest)) else {
            throw CodedError(.grubUnsupported, source: config, line: line, "file name '\(display)' is not UTF-8 text")
        }
        // The components between slashes, `.` dropped and `..` going up, as bytes.
        var parts = [ArraySlice<UInt8>]()
        for c in rest.split(separator: UInt8(ascii: "/")) {
            if c.count == 1 && c.first == UInt8(ascii: ".") { continue }
            if c.count == 2 && c.allSatisfy({ $0 == UInt8(ascii: ".") }) { _ = parts.popLast(); continue }
            parts.append(c)
        }
        var bytes = Array((bootDir.hasSuffix("/") ? String(bootDir.dropLast()) : bootDir).utf8)
        bytes.append(UInt8(ascii: "/"))
        for (k, c) in parts.enumerated() {
            if k > 0 { bytes.append(UInt8(ascii: "/")) }
            bytes.append(contentsOf: c)
        }
        let file = String(decoding: bytes, as: UTF8.self)
        if let real = realPath(file), let root = realPath(bootDir),
           !(real == root || real.hasPrefix(root == "/" ? "/" : root + "/")) {
            throw CodedError(.grubUnsupported, source: config, line: line,
                            "'\(display)' is \(file), a link to \(real) outside the boot directory \(bootDir)")
        }
        return file
    }

    /// `realpath(3)`, nil when the file does not exist.
    static func realPath(_ p: String) -> String? {
        guard let r = realpath(p, nil) else { return nil }
        defer { free(r) }
        return String(cString: r)
    }
}
