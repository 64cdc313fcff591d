// SPDX-License-Identifier: Apache-2.0
import Glibc

/// The boot `aem-pcr notice` checks when the package hook runs it without options: the entry
/// and the directory GRUB reads its files from.
///
/// Without `--entry`: the first top-level entry whose title starts with "AEM" (Qubes' Anti
/// Evil Maid entries); else the entry GRUB boots by default (`default`, from `GRUB_DEFAULT` or
/// grubenv's `saved_entry`) when it boots tboot; else the first entry, submenus included, that
/// boots tboot (Debian's `20_linux_tboot` and `20_linux_xen_tboot` put theirs in submenus).
/// An entry boots tboot when its `multiboot`/`multiboot2` file is a tboot image (it holds an
/// MLE header).
///
/// Without `--boot-dir`: from the path GRUB reads the kernel from. `/boot/tboot.gz` is read
/// from the root filesystem (`/boot` on it: resolved under `/`), `/tboot.gz` from a separate
/// `/boot` partition (resolved under `/boot`); the other reading is taken only when the file
/// is there and not in the first. Where neither holds the file, the error names the option.
public struct NoticeTarget: Sendable {
    public var entry: GrubEntry
    public var bootDir: String
    /// How the entry was chosen, for the output ("the first entry that boots tboot").
    public var chosen: String

    /// Chooses the entry and boot directory. `entry`, `bootDir`: the options, nil when not
    /// given. `environmentBlock`: grubenv's variables. Throws a `CodedError` naming the option
    /// to give when it cannot tell.
    public static func choose(config: GrubConfig, entry selector: String?, bootDir: String?,
                              environmentBlock: [String: String] = [:]) throws -> NoticeTarget {
        let evalDir = bootDir ?? "/boot"
        if let selector {
            let e = try config.entry(selector, bootDir: evalDir)
            return NoticeTarget(entry: e, bootDir: try bootDir ?? directory(of: e, config: config), chosen: "--entry")
        }
        if let aem = try config.firstEntry(bootDir: evalDir, where: { $0.hasPrefix("AEM") }) {
            return NoticeTarget(entry: aem, bootDir: try bootDir ?? directory(of: aem, config: config),
                                chosen: "the first entry whose title starts with 'AEM'")
        }
        var unresolved: CodedError?
        /// Whether each kernel file read so far is a tboot image: a menu names the same Xen in
        /// many entries, read once.
        var tbootImage = [String: Bool]()
        /// The boot directory when `e` boots tboot; nil otherwise.
        func bootsTboot(_ e: GrubEntry) -> String? {
            guard let kernel = e.loaderCommands.first(where: \.isMultibootKernel) else { return nil }
            let dirs = bootDir.map { [$0] } ?? candidates(kernel)
            guard let d = dirs.first(where: { missing(e, in: $0) == nil }) else {
                if unresolved == nil && baseName(kernel.fileBytes).hasPrefix("tboot") {
                    unresolved = notFound(e, config: config, dirs: dirs)
                }
                return nil
            }
            guard let file = try? GrubPath.resolve(kernel.fileBytes, bootDir: d, config: kernel.config, line: kernel.line)
            else { return nil }
            if tbootImage[file] == nil { tbootImage[file] = (try? MLEImage(path: file)) != nil }
            return tbootImage[file]! ? d : nil
        }
        if let selected = try config.defaultSelector(bootDir: evalDir, environmentBlock: environmentBlock),
           let e = try? config.entry(selected, bootDir: evalDir), let d = bootsTboot(e) {
            return NoticeTarget(entry: e, bootDir: d, chosen: "GRUB's default entry ('\(selected)')")
        }
        var found: NoticeTarget?
        try config.forEachEvaluatedEntry(bootDir: evalDir) { _, e in
            guard let d = bootsTboot(e) else { return true }
            found = NoticeTarget(entry: e, bootDir: d, chosen: "the first entry that boots tboot")
            return false
        }
        if let found { return found }
        if let unresolved { throw unresolved }
        throw CodedError(.grubEntryNotFound, source: config.path,
                        "no entry starts with 'AEM' or boots tboot (multiboot or multiboot2 of a tboot image); give --entry (and --boot-dir)")
    }

    /// The boot directory the entry's files are read from, derived from its kernel's path:
    /// the first candidate that holds every file the entry loads.
    static func directory(of e: GrubEntry, config: GrubConfig) throws -> String {
        guard let kernel = e.loaderCommands.first(where: \.isMultibootKernel) else { return "/boot" }
        let dirs = candidates(kernel)
        if let d = dirs.first(where: { missing(e, in: $0) == nil }) { return d }
        throw notFound(e, config: config, dirs: dirs)
    }

    /// The first file of the entry that is not a regular file under `dir`, as GRUB names it.
    static func missing(_ e: GrubEntry, in dir: String) -> LoaderCommand? {
        e.loaderCommands.first { c in
            guard let f = try? GrubPath.resolve(c.fileBytes, bootDir: dir, config: c.config, line: c.line) else { return true }
            return !exists(f)
        }
    }

    /// "Cannot tell where the files are": the option to give, and where they were looked for.
    static func notFound(_ e: GrubEntry, config: GrubConfig, dirs: [String]) -> CodedError {
        let c = missing(e, in: dirs[0]) ?? e.loaderCommands[0]
        let tried = dirs.map { d in (try? GrubPath.resolve(c.fileBytes, bootDir: d, config: c.config, line: c.line)) ?? d }
        return CodedError(.grubEntryNotFound, source: config.path, line: c.line,
                         "entry '\(e.titlePath.joined(separator: ">"))' loads '\(c.file)', \(tried.count == 1 ? "not found at" : "found neither as") \(tried.joined(separator: " nor ")); give --boot-dir (the directory GRUB reads it from)")
    }

    /// `/boot/…` first read from the root filesystem, anything else from a separate /boot.
    static func candidates(_ kernel: LoaderCommand) -> [String] {
        var path = kernel.fileBytes[...]
        if path.first == UInt8(ascii: "("), let close = path.firstIndex(of: UInt8(ascii: ")")) {
            path = path[(close + 1)...]
        }
        let onRoot = path.starts(with: Array("/boot/".utf8))
        return onRoot ? ["/", "/boot"] : ["/boot", "/"]
    }

    static func baseName(_ bytes: [UInt8]) -> String {
        let s = String(decoding: bytes, as: UTF8.self)
        return s.split(separator: "/").last.map(String.init) ?? s
    }

    /// A regular file there (links followed), as GRUB would open it.
    static func exists(_ path: String) -> Bool {
        var st = stat()
        return stat(path, &st) == 0 && (st.st_mode & S_IFMT) == S_IFREG
    }
}
