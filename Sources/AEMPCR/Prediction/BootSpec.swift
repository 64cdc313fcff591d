// SPDX-License-Identifier: Apache-2.0
/// The files and command lines of one tboot boot, in boot order: what a prediction reads.
public struct BootSpec: Sendable, Equatable {
    public struct Module: Sendable, Equatable {
        /// Path on this machine.
        public var path: String
        /// The command line GRUB passes, as bytes (already joined; `placeholder …` for Qubes).
        public var cmdline: [UInt8]
        /// `--nounzip` on the loader line.
        public var noUnzip: Bool
        /// Where it came from (`grub.cfg:42` or `--module`), for messages.
        public var origin: String

        public init(path: String, cmdline: [UInt8], noUnzip: Bool = false, origin: String = "--module") {
            self.path = path
            self.cmdline = cmdline
            self.noUnzip = noUnzip
            self.origin = origin
        }

        public init(path: String, cmdline: String, noUnzip: Bool = false, origin: String = "--module") {
            self.path = path
            self.cmdline = Array(cmdline.utf8)
            self.noUnzip = noUnzip
            self.origin = origin
        }
    }

    public var tbootPath: String
    /// tboot's command line as bytes.
    public var tbootCmdline: [UInt8]
    public var modules: [Module]
    /// A one-line description of the source (entry title or "command line").
    public var origin: String
    /// The grub.cfg entry this boot came from, if any: config path, line, title path.
    public var grubEntry: GrubEntryReference?
    /// Facts about how the files were found (a GRUB device read under the boot directory, a
    /// sourced file that is missing), for the user.
    public var notes: [String] = []

    public struct GrubEntryReference: Sendable, Equatable {
        public var config: String
        public var line: Int
        public var title: String
    }

    public init(tbootPath: String, tbootCmdline: [UInt8], modules: [Module], origin: String = "command line") {
        self.tbootPath = tbootPath
        self.tbootCmdline = tbootCmdline
        self.modules = modules
        self.origin = origin
    }

    public init(tbootPath: String, tbootCmdline: String, modules: [Module], origin: String = "command line") {
        self.init(tbootPath: tbootPath, tbootCmdline: Array(tbootCmdline.utf8), modules: modules, origin: origin)
    }

    /// The boot a GRUB entry performs: its `multiboot`/`multiboot2` kernel (tboot) and modules,
    /// GRUB paths resolved against `bootDir` (the partition GRUB reads, `/boot` on Qubes).
    public init(entry: GrubEntry, config: GrubConfig, bootDir: String, style: GrubCmdlineStyle = .fedora) throws {
        let title = entry.titlePath.joined(separator: ">")
        let cmds = entry.loaderCommands
        guard let kernelIndex = cmds.firstIndex(where: { $0.isMultibootKernel }) else {
            let what = cmds.first.map { "its first loader command is '\($0.command)'" } ?? "it loads nothing"
            throw CodedError(.grubEntryWithoutTboot, source: config.path, line: entry.line,
                            "entry '\(title)' does not boot tboot (no multiboot/multiboot2 line; \(what)); pick an AEM entry")
        }
        let kernel = cmds[kernelIndex]
        if let other = cmds.first(where: { !$0.isMultibootKernel && !$0.isModule }) {
            throw CodedError(.grubEntryWithoutTboot, source: config.path, line: other.line,
                            "entry '\(title)' mixes '\(other.command)' with multiboot; not a tboot entry")
        }
        var notes = entry.notes
        func file(_ c: LoaderCommand) throws -> String {
            let f = try GrubPath.resolve(c.fileBytes, bootDir: bootDir, config: c.config, line: c.line)
            if let d = c.device {
                notes.append("\(c.config):\(c.line): '\(c.file)' on GRUB device (\(d)) read as \(f) (--boot-dir)")
            }
            return f
        }
        let modules = try cmds[(kernelIndex + 1)...].filter(\.isModule).map { m in
            Module(path: try file(m), cmdline: style.join(m.arguments), noUnzip: m.noUnzip, origin: "\(m.config):\(m.line)")
        }
        self.init(tbootPath: try file(kernel), tbootCmdline: style.join(kernel.arguments), modules: modules,
                  origin: "\(config.path): entry '\(title)'")
        grubEntry = GrubEntryReference(config: config.path, line: kernel.line, title: title)
        self.notes = notes
    }

    /// `(hd0,msdos1)/xen.gz` or `/xen.gz` → `bootDir/xen.gz` (see `GrubPath.resolve`).
    public static func resolve(_ grubPath: String, bootDir: String) throws -> String {
        try GrubPath.resolve(Array(grubPath.utf8), bootDir: bootDir, config: "path", line: 0)
    }
}
