// SPDX-License-Identifier: Apache-2.0
/// The firmware GRUB runs on: AEM's tboot entries boot legacy BIOS (`pc`); the variable
/// `grub_platform` decides branches such as Qubes' `xen_rm_opts`.
public enum GrubPlatform: String, Sendable, CaseIterable {
    case pc, efi
}

/// How GRUB joins a loader line's arguments into the command line it passes (GRUB 2.06 `grub-core/lib/cmdline.c`, `grub_create_loader_cmdline`).
public enum GrubCmdlineStyle: String, Sendable, CaseIterable {
    /// GRUB ≥ 2.04 as Fedora and Qubes build it: `\`, `'`, `"` escaped, an argument with a space
    /// double-quoted, a `\xHH` sequence copied unchanged.
    case fedora
    /// Upstream GRUB ≥ 2.04 (`grub-core/lib/cmdline.c`): as `fedora` without the `\xHH` exception.
    case upstream
    /// GRUB ≤ 2.02: arguments joined with single spaces, nothing escaped.
    case plain

    /// Joins arguments as GRUB's `grub_create_loader_cmdline` does, byte for byte.
    public func join(_ args: [[UInt8]]) -> [UInt8] {
        let backslash = UInt8(ascii: "\\"), quote = UInt8(ascii: "\""), apostrophe = UInt8(ascii: "'")
        if self == .plain { return Array(args.joined(separator: [UInt8(ascii: " ")])) }
        func isHex(_ c: UInt8) -> Bool {
            (c >= 0x30 && c <= 0x39) || (c >= 0x41 && c <= 0x46) || (c >= 0x61 && c <= 0x66)
        }
        var out = [UInt8]()
        for (k, a) in args.enumerated() {
            if k > 0 { out.append(UInt8(ascii: " ")) }
            let spaced = a.contains(UInt8(ascii: " "))
            if spaced { out.append(quote) }
            var i = 0
            while i < a.count {
                let c = a[i]
                if self == .fedora, c == backslash, i + 3 < a.count, a[i + 1] == UInt8(ascii: "x"),
                   isHex(a[i + 2]), isHex(a[i + 3]) {
                    out.append(contentsOf: a[i...(i + 3)])
                    i += 4
                    continue
                }
                if c == backslash || c == apostrophe || c == quote { out.append(backslash) }
                out.append(c)
                i += 1
            }
            if spaced { out.append(quote) }
        }
        return out
    }

    /// The same for UTF-8 text.
    public func join(_ args: [String]) -> String {
        String(decoding: join(args.map { Array($0.utf8) }), as: UTF8.self)
    }
}

/// One loader command of an entry, after GRUB's expansion.
public struct LoaderCommand: Sendable, Equatable {
    /// `multiboot`, `multiboot2`, `module`, `module2`, `linux`, `initrd`, …
    public var command: String
    /// Leading options the loader itself consumes (`--nounzip`, `--quirk-…`).
    public var options: [String]
    /// The file name's bytes as GRUB passed them (a GRUB path, possibly with a `(device)` prefix).
    public var fileBytes: [UInt8]
    /// The local disk or partition named before the path (`hd0,msdos1`), if any.
    public var device: String?
    /// The arguments after the file, one per GRUB argument, as bytes.
    public var arguments: [[UInt8]]
    /// Line of the grub.cfg.
    public var line: Int
    /// The file the line is in (grub.cfg, or a file it sources).
    public var config: String

    /// The file name for display (escaped).
    public var file: String { Escape.bytes(fileBytes) }
    /// The arguments decoded as UTF-8 (for display and tests; hash `arguments`).
    public var argumentStrings: [String] { arguments.map { String(decoding: $0, as: UTF8.self) } }

    public var noUnzip: Bool { options.contains("--nounzip") }
    public var isMultibootKernel: Bool { command == "multiboot" || command == "multiboot2" }
    public var isModule: Bool { command == "module" || command == "module2" }
}

/// A menu entry selected and evaluated: its title path and loader commands in order.
public struct GrubEntry: Sendable {
    /// Titles for display: bytes decoded as UTF-8, control characters escaped.
    public var titlePath: [String]
    public var id: String?
    public var line: Int
    public var loaderCommands: [LoaderCommand]
    /// Facts met while evaluating (a sourced file GRUB would not find).
    public var notes: [String] = []
}

/// A menu item as the menu lists it, found without running its body.
public struct GrubMenuItem: Sendable, Equatable {
    /// Its position: `[2]` for the third top-level item, `[2, 0]` for the first inside it.
    public var indexPath: [Int]
    /// Titles from the top level down, for display (control characters escaped).
    public var titlePath: [String]
    public var id: String?
    public var line: Int
    public var isSubmenu: Bool

    /// The selector `entry(_:)` takes for it: indices joined with `>` (`"2>0"`).
    public var selector: String { indexPath.map(String.init).joined(separator: ">") }
}

/// A grub.cfg, parsed; entries are evaluated on demand for a platform.
public struct GrubConfig: Sendable {
    public let path: String
    let nodes: [GrubScript.Node]

    public init(path: String) throws {
        try self.init(bytes: try FileReader.readAll(path: path, limit: 16 << 20), path: path)
    }

    /// A grub.cfg's bytes: GRUB reads bytes, not text; none is changed on the way to a command line.
    public init(bytes: [UInt8], path: String) throws {
        self.path = path
        self.nodes = try GrubScript.parse(bytes, path: path)
    }

    public init(text: String, path: String) throws {
        try self.init(bytes: Array(text.utf8), path: path)
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

    /// Every menu item, in menu order, from ONE evaluation of the file (and, with `submenus`,
    /// one of each submenu's script): entry bodies are not run. A grub.cfg with 200,000 entries
    /// is listed in one pass, as GRUB builds its menu.
    public func entries(platform: GrubPlatform = .pc, bootDir: String? = nil, submenus: Bool = true) throws -> [GrubMenuItem] {
        var out = [GrubMenuItem]()
        try forEachEntry(platform: platform, bootDir: bootDir, submenus: submenus) { out.append($0); return true }
        return out
    }

    /// The menu items in order, as `entries` lists them, passed one by one to `body` until it
    /// returns false (nothing is kept: the first AEM entry among 200,000 costs no list).
    public func forEachEntry(platform: GrubPlatform = .pc, bootDir: String? = nil, submenus: Bool = true,
                             _ body: (GrubMenuItem) throws -> Bool) throws {
        _ = try walk(platform: platform, bootDir: bootDir, submenus: submenus, evaluate: false) { item, _ in try body(item) }
    }

    /// `entries` and the evaluator's steps it took (for tests: the work is one pass).
    func entriesCountingSteps(platform: GrubPlatform = .pc, bootDir: String? = nil,
                              submenus: Bool = true) throws -> (items: [GrubMenuItem], steps: Int) {
        var out = [GrubMenuItem]()
        let steps = try walk(platform: platform, bootDir: bootDir, submenus: submenus, evaluate: false) { item, _ in
            out.append(item)
            return true
        }
        return (out, steps)
    }

    /// The one walk over the menu that `entries`, `forEachEntry` and `forEachEvaluatedEntry`
    /// share: each level's script runs once (a submenu's where the walk reaches it, with
    /// `submenus`), and every item goes to `visit` in menu order, with `evaluate` each entry that
    /// is not a submenu run in its menu's environment (its body once). Stops when `visit`
    /// returns false. Returns the evaluator's steps.
    func walk(platform: GrubPlatform, bootDir: String?, submenus: Bool, evaluate: Bool,
              _ visit: (GrubMenuItem, GrubEntry?) throws -> Bool) throws -> Int {
        var ev = GrubEvaluator(path: path, platform: platform, bootDir: bootDir)
        /// false: `visit` asked to stop.
        func list(_ menu: GrubEvaluator.Menu, index: [Int], titles: [String]) throws -> Bool {
            for (k, item) in menu.items.enumerated() {
                let titlePath = titles + [item.title.grubDisplay]
                let listed = GrubMenuItem(indexPath: index + [k], titlePath: titlePath, id: item.id.map(\.grubDisplay),
                                          line: item.line, isSubmenu: item.isSubmenu)
                var entry: GrubEntry?
                if evaluate && !item.isSubmenu {
                    let commands = try ev.runEntry(item, env: menu.env)
                    entry = GrubEntry(titlePath: titlePath, id: listed.id, line: item.line,
                                      loaderCommands: commands, notes: ev.notes)
                }
                guard try visit(listed, entry) else { return false }
                if item.isSubmenu && submenus {
                    let inner = try ev.runMenu(item.body.nodes(), env: menu.env.forSubmenu())
                    guard try list(inner, index: index + [k], titles: titlePath) else { return false }
                }
            }
            return true
        }
        _ = try list(try ev.runMenu(nodes, env: ev.initialEnvironment()), index: [], titles: [])
        return ev.stepsTaken
    }

    /// The first top-level entry (not a submenu) whose display title satisfies `matches`,
    /// evaluated; nil when there is none. One evaluation of the file, whatever the entry's
    /// position (notice's "first entry whose title starts with AEM").
    public func firstEntry(platform: GrubPlatform = .pc, bootDir: String? = nil,
                           where matches: (String) -> Bool) throws -> GrubEntry? {
        var ev = GrubEvaluator(path: path, platform: platform, bootDir: bootDir)
        let level = try ev.runMenu(nodes, env: ev.initialEnvironment())
        guard let item = level.items.first(where: { !$0.isSubmenu && matches($0.title.grubDisplay) }) else { return nil }
        let commands = try ev.runEntry(item, env: level.env)
        return GrubEntry(titlePath: [item.title.grubDisplay], id: item.id.map(\.grubDisplay), line: item.line,
                         loaderCommands: commands, notes: ev.notes)
    }

    /// Selects an entry as `GRUB_DEFAULT` names it: titles, ids or indices, `>` between levels
    /// (`"2>0"`, `"Advanced options…>AEM Qubes boot, …"`), and evaluates it. `bootDir`: where
    /// GRUB's files are, for `source`; without it a `source` that runs is refused.
    public func entry(_ selector: String, platform: GrubPlatform = .pc, bootDir: String? = nil) throws -> GrubEntry {
        var ev = GrubEvaluator(path: path, platform: platform, bootDir: bootDir)
        var level = try ev.runMenu(nodes, env: ev.initialEnvironment())
        let components = GrubConfig.splitEntryPath(selector.asGrubText)
        var titlePath = [String]()
        var shown: [String] { titlePath.map(\.grubDisplay) }
        for (k, comp) in components.enumerated() {
            let last = k == components.count - 1
            let item: GrubEvaluator.MenuItemDef
            if let exact = level.items.first(where: { $0.title == comp }) ?? level.items.first(where: { $0.id == comp && $0.id != nil }) {
                item = exact
            } else if let n = Int(comp), n >= 0, n < level.items.count {
                item = level.items[n]
            } else {
                let known = level.items.prefix(10).enumerated().map {
                    "\($0.offset): \(Escape.bytes($0.element.title.grubBytes, limit: 100))\($0.element.isSubmenu ? " >" : "")"
                }
                let inWhat = titlePath.isEmpty ? "" : " in submenu '\(shown.joined(separator: ">"))'"
                throw CodedError(.grubEntryNotFound, source: path,
                                "no menu entry '\(Escape.bytes(comp.grubBytes, limit: 100))'\(inWhat); entries: \(known.isEmpty ? "none" : known.joined(separator: "; "))\(level.items.count > 10 ? "; … and \(level.items.count - 10) more" : "")")
            }
            titlePath.append(item.title)
            if item.isSubmenu {
                if last {
                    throw CodedError(.grubEntryNotFound, source: path, line: item.line,
                                    "'\(shown.joined(separator: ">"))' is a submenu; name an entry inside it with '>'")
                }
                level = try ev.runMenu(item.body.nodes(), env: level.env.forSubmenu())
            } else {
                if !last {
                    throw CodedError(.grubEntryNotFound, source: path, line: item.line,
                                    "'\(shown.joined(separator: ">"))' is an entry, not a submenu")
                }
                let commands = try ev.runEntry(item, env: level.env)
                return GrubEntry(titlePath: shown, id: item.id.map(\.grubDisplay), line: item.line,
                                 loaderCommands: commands, notes: ev.notes)
            }
        }
        throw CodedError(.grubEntryNotFound, source: path, "empty entry name")
    }
}
