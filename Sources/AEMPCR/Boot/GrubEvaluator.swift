/// Runs the GRUB script subset: variables, `set`/`export`/`unset`, `if` with `[ … ]`/`test`/
/// `true`/`false`, functions, and menu definitions. File tests on the boot device are taken as
/// true; commands that load nothing are ignored and succeed.
struct GrubEvaluator {
    let path: String
    let platform: GrubPlatform
    /// Loader commands seen while running an entry; nil outside entries.
    private var loaders: [LoaderCommand]? = nil
    private var functions: [String: [GrubScript.Node]] = [:]
    private var depth = 0

    init(path: String, platform: GrubPlatform) {
        self.path = path
        self.platform = platform
    }

    final class Environment {
        var vars: [String: String]
        var exported: Set<String>
        var positional: [String] = []
        var status = 0

        init(vars: [String: String], exported: Set<String>) {
            self.vars = vars
            self.exported = exported
        }

        /// GRUB `grub_env_context_open`: a submenu sees only the exported variables.
        func forSubmenu() -> Environment {
            Environment(vars: vars.filter { exported.contains($0.key) }, exported: exported)
        }

        func copy() -> Environment {
            let e = Environment(vars: vars, exported: exported)
            e.positional = positional
            return e
        }

        func value(_ name: String) -> String {
            if name == "?" { return String(status) }
            if name == "#" { return String(positional.count) }
            if name == "@" || name == "*" { return positional.joined(separator: " ") }
            if let n = Int(name) {
                return n >= 1 && n <= positional.count ? positional[n - 1] : ""
            }
            return vars[name] ?? ""
        }
    }

    /// The variables GRUB's normal mode has set before grub.cfg runs (`normal/main.c`), exported.
    func initialEnvironment() -> Environment {
        var v: [String: String] = [
            "grub_platform": platform.rawValue,
            "grub_cpu": platform == .pc ? "i386" : "x86_64",
        ]
        for f in ["feature_chainloader_bpb", "feature_ntldr", "feature_platform_search_hint",
                  "feature_default_font_path", "feature_all_video_module", "feature_menuentry_id",
                  "feature_menuentry_options", "feature_200_final", "feature_nativedisk_cmd",
                  "feature_timeout_style"] {
            v[f] = "y"
        }
        return Environment(vars: v, exported: Set(v.keys))
    }

    struct MenuItemDef {
        var title: String
        var id: String?
        var line: Int
        var isSubmenu: Bool
        var body: [GrubScript.Node]
        var args: [String]
    }

    struct Menu {
        var items: [MenuItemDef]
        var env: Environment
    }

    private var menuItems: [MenuItemDef]? = nil

    /// Runs a menu level's script; returns its items and the environment they run in.
    mutating func runMenu(_ nodes: [GrubScript.Node], env: Environment) throws -> Menu {
        let saved = menuItems
        menuItems = []
        defer { menuItems = saved }
        _ = try run(nodes, env)
        return Menu(items: menuItems!, env: env)
    }

    /// Runs an entry's body in a copy of its menu's environment and returns its loader commands.
    mutating func runEntry(_ item: MenuItemDef, env: Environment) throws -> [LoaderCommand] {
        let e = env.copy()
        e.positional = item.args
        loaders = []
        defer { loaders = nil }
        let savedItems = menuItems
        menuItems = []
        defer { menuItems = savedItems }
        _ = try run(item.body, e)
        return loaders!
    }

    // MARK: execution

    @discardableResult
    private mutating func run(_ nodes: [GrubScript.Node], _ env: Environment) throws -> Int {
        for n in nodes { env.status = try run(n, env) }
        return env.status
    }

    private mutating func run(_ node: GrubScript.Node, _ env: Environment) throws -> Int {
        switch node {
        case .command(let words, let line):
            return try runCommand(words, line: line, env)
        case .ifChain(let branches, let otherwise, _):
            for b in branches {
                if try run(b.condition, env) == 0 { return try run(b.body, env) }
            }
            if let o = otherwise { return try run(o, env) }
            return 0
        case .menuentry(let words, let body, let line), .submenu(let words, let body, let line):
            var isSub = false
            if case .submenu = node { isSub = true }
            let argv = try expand(words, env)
            var title: String? = nil
            var id: String? = nil
            var rest = [String]()
            var i = 0
            let withArg: Set<String> = ["--class", "--users", "--hotkey", "--source", "--id"]
            while i < argv.count {
                let a = argv[i]
                if withArg.contains(a) {
                    if a == "--id", i + 1 < argv.count { id = argv[i + 1] }
                    i += 2
                    continue
                }
                if a.hasPrefix("--id=") { id = String(a.dropFirst(5)); i += 1; continue }
                if a == "--unrestricted" || (a.hasPrefix("--") && a.contains("=")) { i += 1; continue }
                if title == nil { title = a } else { rest.append(a) }
                i += 1
            }
            guard let t = title else {
                throw GrubError(.syntax, path: path, line: line, "\(isSub ? "submenu" : "menuentry") without a title")
            }
            menuItems?.append(MenuItemDef(title: t, id: id, line: line, isSubmenu: isSub, body: body, args: rest))
            return 0
        case .function(let name, let body, _):
            functions[name] = body
            return 0
        }
    }

    private static func isName(_ s: Substring) -> Bool {
        guard let f = s.first, f == "_" || f.isLetter && f.isASCII else { return false }
        return s.allSatisfy { $0 == "_" || ($0.isASCII && ($0.isLetter || $0.isNumber)) }
    }

    private mutating func runCommand(_ words: [GrubScript.Word], line: Int, _ env: Environment) throws -> Int {
        // `name=value` as a whole command: an assignment, no field splitting of the value.
        if words.count == 1, case .literal(let first)? = words[0].parts.first,
           let eq = first.firstIndex(of: "="), GrubEvaluator.isName(first[..<eq]) {
            let name = String(first[..<eq])
            var w = words[0]
            w.parts[0] = .quoted(String(first[first.index(after: eq)...]))
            env.vars[name] = expandJoined(w, env)
            return 0
        }
        let argv = try expand(words, env)
        guard let cmd = argv.first else { return 0 }
        let args = Array(argv.dropFirst())
        switch cmd {
        case "set":
            for a in args {
                if let eq = a.firstIndex(of: "=") {
                    env.vars[String(a[..<eq])] = String(a[a.index(after: eq)...])
                }
            }
            return 0
        case "export":
            for a in args { env.exported.insert(a) }
            return 0
        case "unset":
            for a in args { env.vars[a] = nil }
            return 0
        case "true":
            return 0
        case "false":
            return 1
        case "[":
            guard args.last == "]" else {
                throw GrubError(.syntax, path: path, line: line, "'[' without a closing ']'")
            }
            return try test(Array(args.dropLast()), line: line) ? 0 : 1
        case "test":
            return try test(args, line: line) ? 0 : 1
        case "multiboot", "multiboot2", "module", "module2", "linux", "linux16", "linuxefi",
             "initrd", "initrd16", "initrdefi", "chainloader":
            if loaders != nil { loaders!.append(try loaderCommand(cmd, args, line: line)) }
            return 0
        default:
            if let body = functions[cmd] {
                depth += 1
                defer { depth -= 1 }
                guard depth < 32 else {
                    throw GrubError(.unsupported, path: path, line: line, "function '\(cmd)' recurses too deep")
                }
                let saved = env.positional
                env.positional = args
                defer { env.positional = saved }
                return try run(body, env)
            }
            // insmod, search, echo, load_env, source, terminal_*, … load nothing measured.
            return 0
        }
    }

    private func loaderCommand(_ cmd: String, _ args: [String], line: Int) throws -> LoaderCommand {
        var options = [String]()
        var rest = args[...]
        // The loaders read their options before the file name only (GRUB multiboot.c, multiboot2.c).
        let known: Set<String> = ["--nounzip", "--quirk-bad-kludge", "--quirk-modules-after-kernel"]
        while let a = rest.first, known.contains(a) { options.append(a); rest = rest.dropFirst() }
        guard let file = rest.first else {
            throw GrubError(.badLoaderLine, path: path, line: line, "'\(cmd)' without a file name")
        }
        return LoaderCommand(command: cmd, options: options, file: file, arguments: Array(rest.dropFirst()), line: line)
    }

    // MARK: `test` (GRUB `commands/test.c`)

    private func test(_ a: [String], line: Int) throws -> Bool {
        var i = 0
        func primary() throws -> Bool {
            guard i < a.count else { return false }
            if a[i] == "!" { i += 1; return try !primary() }
            if a[i] == "(" {
                i += 1
                let v = try orExpr()
                if i < a.count, a[i] == ")" { i += 1 }
                return v
            }
            if i + 2 < a.count || (i + 2 == a.count - 0 && false) {}
            if i + 2 <= a.count - 1 {
                let l = a[i], op = a[i + 1], r = a[i + 2]
                switch op {
                case "=", "==": i += 3; return l == r
                case "!=": i += 3; return l != r
                case "<": i += 3; return l < r
                case ">": i += 3; return l > r
                case "<=": i += 3; return l <= r
                case ">=": i += 3; return l >= r
                case "-eq", "-ne", "-lt", "-le", "-gt", "-ge":
                    i += 3
                    let x = Int(l) ?? 0, y = Int(r) ?? 0
                    switch op {
                    case "-eq": return x == y
                    case "-ne": return x != y
                    case "-lt": return x < y
                    case "-le": return x <= y
                    case "-gt": return x > y
                    default: return x >= y
                    }
                default: break
                }
            }
            if i + 1 < a.count {
                switch a[i] {
                case "-d", "-e", "-f", "-s":
                    // A file on the boot device: taken as present (the AEM section tests /aem/).
                    i += 2
                    return true
                case "-n": i += 2; return !a[i - 1].isEmpty
                case "-z": i += 2; return a[i - 1].isEmpty
                default: break
                }
            }
            let s = a[i]
            i += 1
            return !s.isEmpty
        }
        func andExpr() throws -> Bool {
            var v = try primary()
            while i < a.count, a[i] == "-a" { i += 1; let r = try primary(); v = v && r }
            return v
        }
        func orExpr() throws -> Bool {
            var v = try andExpr()
            while i < a.count, a[i] == "-o" { i += 1; let r = try andExpr(); v = v || r }
            return v
        }
        let v = try orExpr()
        if i < a.count {
            throw GrubError(.syntax, path: path, line: line, "cannot evaluate test expression '\(a.joined(separator: " "))'")
        }
        return v
    }

    // MARK: expansion

    /// GRUB's argument building: unquoted variables split at blanks; an unquoted empty variable
    /// alone makes no argument; quotes always make one.
    func expand(_ words: [GrubScript.Word], _ env: Environment) throws -> [String] {
        var out = [String]()
        for w in words {
            var cur = ""
            var has = false
            for p in w.parts {
                switch p {
                case .literal(let s):
                    cur += s
                    if !s.isEmpty { has = true }
                case .quoted(let s):
                    cur += s
                    has = true
                case .variable(let name, let quoted):
                    let v = env.value(name)
                    if quoted { cur += v; has = true; continue }
                    let blanks: Set<Character> = [" ", "\t", "\n"]
                    let pieces = v.split(whereSeparator: { blanks.contains($0) })
                    if pieces.isEmpty {
                        if !v.isEmpty && has { out.append(cur); cur = ""; has = false }
                        continue
                    }
                    if let f = v.first, blanks.contains(f), has { out.append(cur); cur = ""; has = false }
                    for (k, piece) in pieces.enumerated() {
                        if k > 0 { out.append(cur); cur = "" }
                        cur += piece
                        has = true
                    }
                    if let l = v.last, blanks.contains(l) { out.append(cur); cur = ""; has = false }
                }
            }
            if has { out.append(cur) }
        }
        return out
    }

    /// Expansion without field splitting (assignment values).
    func expandJoined(_ w: GrubScript.Word, _ env: Environment) -> String {
        var s = ""
        for p in w.parts {
            switch p {
            case .literal(let t), .quoted(let t): s += t
            case .variable(let name, _): s += env.value(name)
            }
        }
        return s
    }
}
