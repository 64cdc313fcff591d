/// The firmware GRUB runs on: AEM's tboot entries boot legacy BIOS (`pc`); the variable
/// `grub_platform` decides branches such as Qubes' `xen_rm_opts`.
public enum GrubPlatform: String, Sendable, CaseIterable {
    case pc, efi
}

/// How GRUB joins a loader line's arguments into the command line it passes (SPEC §7).
public enum GrubCmdlineStyle: String, Sendable, CaseIterable {
    /// GRUB ≥ 2.04 as Fedora and Qubes build it: `\`, `'`, `"` escaped, an argument with a space
    /// double-quoted, a `\xHH` sequence copied unchanged.
    case fedora
    /// Upstream GRUB ≥ 2.04 (`grub-core/lib/cmdline.c`): as `fedora` without the `\xHH` exception.
    case upstream
    /// GRUB ≤ 2.02: arguments joined with single spaces, nothing escaped.
    case plain

    /// Joins arguments as GRUB's `grub_create_loader_cmdline` does.
    public func join(_ args: [String]) -> String {
        if self == .plain { return args.joined(separator: " ") }
        return args.map { arg -> String in
            let a = Array(arg.unicodeScalars)
            var out = String.UnicodeScalarView()
            var i = 0
            while i < a.count {
                let c = a[i]
                if self == .fedora, c == "\\", i + 3 < a.count, a[i + 1] == "x",
                   a[i + 2].properties.isASCIIHexDigit, a[i + 3].properties.isASCIIHexDigit {
                    out.append(contentsOf: a[i...(i + 3)])
                    i += 4
                    continue
                }
                if c == "\\" || c == "'" || c == "\"" { out.append("\\") }
                out.append(c)
                i += 1
            }
            let s = String(out)
            return arg.contains(" ") ? "\"" + s + "\"" : s
        }.joined(separator: " ")
    }
}

/// One loader command of an entry, after GRUB's expansion.
public struct LoaderCommand: Sendable, Equatable {
    /// `multiboot`, `multiboot2`, `module`, `module2`, `linux`, `initrd`, …
    public var command: String
    /// Leading options the loader itself consumes (`--nounzip`, `--quirk-…`).
    public var options: [String]
    /// The file as written (GRUB path, possibly with a `(device)` prefix).
    public var file: String
    /// The arguments after the file, one per GRUB argument.
    public var arguments: [String]
    /// Line of the grub.cfg.
    public var line: Int

    public var noUnzip: Bool { options.contains("--nounzip") }
    public var isMultibootKernel: Bool { command == "multiboot" || command == "multiboot2" }
    public var isModule: Bool { command == "module" || command == "module2" }
}

/// A menu entry selected and evaluated: its title path and loader commands in order.
public struct GrubEntry: Sendable {
    public var titlePath: [String]
    public var id: String?
    public var line: Int
    public var loaderCommands: [LoaderCommand]
}

/// A grub.cfg, parsed; entries are evaluated on demand for a platform.
public struct GrubConfig: Sendable {
    public let path: String
    let nodes: [GrubScript.Node]

    public init(path: String) throws {
        let bytes = try FileReader.readAll(path: path, limit: 16 << 20)
        try self.init(text: String(decoding: bytes, as: UTF8.self), path: path)
    }

    public init(text: String, path: String) throws {
        self.path = path
        self.nodes = try GrubScript.parse(text, path: path)
    }

    /// Splits a `GRUB_DEFAULT`-style path at `>`; `>>` stands for a `>` inside a title.
    public static func splitEntryPath(_ s: String) -> [String] {
        var parts = [String]()
        var cur = ""
        var chars = Array(s)[...]
        while let c = chars.first {
            chars = chars.dropFirst()
            if c == ">" {
                if chars.first == ">" { cur.append(">"); chars = chars.dropFirst(); continue }
                parts.append(cur)
                cur = ""
            } else {
                cur.append(c)
            }
        }
        parts.append(cur)
        return parts
    }

    /// Selects an entry as `GRUB_DEFAULT` names it: titles, ids or indices, `>` between levels
    /// (`"2>0"`, `"Advanced options…>AEM Qubes boot, …"`), and evaluates it.
    public func entry(_ selector: String, platform: GrubPlatform = .pc) throws -> GrubEntry {
        var ev = GrubEvaluator(path: path, platform: platform)
        var level = try ev.runMenu(nodes, env: ev.initialEnvironment())
        let components = GrubConfig.splitEntryPath(selector)
        var titlePath = [String]()
        for (k, comp) in components.enumerated() {
            let last = k == components.count - 1
            let item: GrubEvaluator.MenuItemDef
            if let exact = level.items.first(where: { $0.title == comp }) ?? level.items.first(where: { $0.id == comp && $0.id != nil }) {
                item = exact
            } else if let n = Int(comp), n >= 0, n < level.items.count {
                item = level.items[n]
            } else {
                let known = level.items.enumerated().map { "\($0.offset): \($0.element.title)\($0.element.isSubmenu ? " >" : "")" }
                let inWhat = titlePath.isEmpty ? "" : " in submenu '\(titlePath.joined(separator: ">"))'"
                throw GrubError(.entryNotFound, path: path,
                                "no menu entry '\(comp)'\(inWhat); entries: \(known.isEmpty ? "none" : known.joined(separator: "; "))")
            }
            titlePath.append(item.title)
            if item.isSubmenu {
                if last {
                    throw GrubError(.entryNotFound, path: path, line: item.line,
                                    "'\(titlePath.joined(separator: ">"))' is a submenu; name an entry inside it with '>'")
                }
                level = try ev.runMenu(item.body, env: level.env.forSubmenu())
            } else {
                if !last {
                    throw GrubError(.entryNotFound, path: path, line: item.line,
                                    "'\(titlePath.joined(separator: ">"))' is an entry, not a submenu")
                }
                let commands = try ev.runEntry(item, env: level.env)
                return GrubEntry(titlePath: titlePath, id: item.id, line: item.line, loaderCommands: commands)
            }
        }
        throw GrubError(.entryNotFound, path: path, "empty entry name")
    }
}
