// SPDX-License-Identifier: Apache-2.0
import Glibc

/// Runs the GRUB script subset: variables, `set`/`export`/`unset`, `if` with `[ … ]`/`test`/
/// `true`/`false`, functions, `source`, and menu definitions. File tests on the boot device are
/// taken as true; commands that load nothing are ignored and succeed.
///
/// Strings here are GRUB bytes, one scalar U+0000–U+00FF per byte (`String(grubBytes:)`).
/// Work is bounded whatever the input: steps, bytes produced by expansion, call depth.
struct GrubEvaluator {
    /// The file being run (a sourced file while it runs), for messages.
    private(set) var path: String
    let platform: GrubPlatform
    /// The directory GRUB's paths resolve in, for `source`; nil: `source` is refused.
    let bootDir: String?
    /// Loader commands seen while running an entry; nil outside entries.
    private var loaders: [LoaderCommand]? = nil
    private var functions: [String: [GrubScript.Node]] = [:]
    private var depth = 0
    /// Device names made by `loopback NAME FILE`: files inside an image, not on the boot device.
    private var loopDevices: Set<String> = []
    /// Facts met while evaluating that a user should see (a sourced file that is missing).
    private(set) var notes: [String] = []
    private var parsedSources: [String: [GrubScript.Node]] = [:]

    /// Commands and blocks run, and bytes made by expansion, over the whole evaluation.
    private var steps = 0
    var stepsTaken: Int { steps }
    private var expandedBytes = 0
    static let maxSteps = 500_000
    /// Steps each menu item defined adds to the bound: a walk that runs every entry's body (the
    /// tboot entry after 200,000 others) takes steps in proportion to the menu, ~10–30 per real
    /// entry. The bound stays linear in the file's size; loops of functions still stop.
    static let stepsPerMenuItem = 32
    /// `maxSteps`, plus `stepsPerMenuItem` for each menu item defined so far.
    private var stepLimit = maxSteps
    static let maxExpandedBytes = 32 << 20
    static let maxValueBytes = 1 << 20
    static let maxCallDepth = 32
    static let maxArguments = 1 << 17

    init(path: String, platform: GrubPlatform, bootDir: String? = nil) {
        self.path = path
        self.platform = platform
        self.bootDir = bootDir
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

    /// grub.cfg's directory as GRUB names it on the boot device (`/grub2` for
    /// /boot/grub2/grub.cfg under /boot), when the file lies under the boot directory.
    var configDirectory: String? {
        guard let b = bootDir, let root = GrubPath.realPath(b), let cfg = GrubPath.realPath(path),
              cfg.hasPrefix(root == "/" ? "/" : root + "/") else { return nil }
        let rel = cfg.dropFirst(root == "/" ? 0 : root.count)
        guard let slash = rel.lastIndex(of: "/") else { return nil }
        let dir = String(rel[..<slash])
        return String(grubBytes: (dir.isEmpty ? "/" : dir).utf8)
    }

    /// The variables GRUB's normal mode has set before grub.cfg runs (`normal/main.c`), exported.
    func initialEnvironment() -> Environment {
        var v: [String: String] = [
            "grub_platform": platform.rawValue,
            "grub_cpu": platform == .pc ? "i386" : "x86_64",
        ]
        if let dir = configDirectory { v["prefix"] = dir; v["config_directory"] = dir }
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
        /// Its body's text, in the file that defines it (a sourced file's entries run with
        /// that file's name).
        var body: GrubScript.Block
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
        // As many items as the level defines directly (more may come from `source`): one
        // allocation of the right size for a menu of 200,000 entries, not a doubling past it.
        menuItems = []
        menuItems!.reserveCapacity(nodes.reduce(0) { n, node in
            switch node {
            case .menuentry, .submenu: return n + 1
            default: return n
            }
        })
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
        let savedPath = path
        path = item.body.path
        defer { path = savedPath }
        _ = try run(item.body.nodes(), e)
        return loaders!
    }

    // MARK: execution

    @discardableResult
    private mutating func run(_ nodes: [GrubScript.Node], _ env: Environment) throws -> Int {
        for n in nodes { env.status = try run(n, env) }
        return env.status
    }

    private mutating func step(line: Int) throws {
        steps += 1
        if steps > stepLimit {
            throw CodedError(.grubUnsupported, source: path, line: line,
                            "evaluation stopped after \(stepLimit) steps (a loop of functions?); no real grub.cfg needs that many")
        }
    }

    private static func line(of node: GrubScript.Node) -> Int {
        switch node {
        case .command(_, let l), .ifChain(_, _, let l), .menuentry(_, _, let l), .submenu(_, _, let l),
             .function(_, _, let l):
            return l
        }
    }

    private mutating func run(_ node: GrubScript.Node, _ env: Environment) throws -> Int {
        try step(line: GrubEvaluator.line(of: node))
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
            let argv = try expand(words, env, line: line)
            var title: String? = nil
            var id: String? = nil
            var rest = [String]()
            var i = 0
            let withArg = GrubEvaluator.menuOptionsWithArgument
            while i < argv.count {
                let a = argv[i]
                if withArg.contains(a) {
                    // GRUB: "missing mandatory option for `class'": no entry is defined.
                    guard i + 1 < argv.count else { return 1 }
                    if a == "--id" { id = argv[i + 1] }
                    i += 2
                    continue
                }
                if a.hasPrefix("--id=") { id = String(a.dropFirst(5)); i += 1; continue }
                if a == "--unrestricted" || (a.hasPrefix("--") && a.contains("=")) { i += 1; continue }
                if title == nil { title = a } else { rest.append(a) }
                i += 1
            }
            guard let t = title else {
                throw CodedError(.grubSyntax, source: path, line: line, "\(isSub ? "submenu" : "menuentry") without a title")
            }
            menuItems?.append(MenuItemDef(title: t, id: id, line: line, isSubmenu: isSub, body: body, args: rest))
            stepLimit += GrubEvaluator.stepsPerMenuItem
            return 0
        case .function(let name, let body, _):
            functions[name] = body
            return 0
        }
    }

    private static let menuOptionsWithArgument: Set<String> = ["--class", "--users", "--hotkey", "--source", "--id"]
    private static let loaderOptions: Set<String> = ["--nounzip", "--quirk-bad-kludge", "--quirk-modules-after-kernel"]

    private static func isName(_ s: Substring) -> Bool {
        guard let f = s.first, f == "_" || f.isLetter && f.isASCII else { return false }
        return s.allSatisfy { $0 == "_" || ($0.isASCII && ($0.isLetter || $0.isNumber)) }
    }

    private mutating func runCommand(_ words: [GrubScript.Word], line: Int, _ env: Environment) throws -> Int {
        // `name=value` as a whole command: an assignment, no field splitting of the value.
        if words.count == 1, case .literal(let first)? = words[0].parts.first,
           let eq = first.utf8.firstIndex(of: UInt8(ascii: "=")), GrubEvaluator.isName(first[..<eq]) {
            let name = String(first[..<eq])
            var w = words[0]
            w.parts[0] = .quoted(String(first[first.index(after: eq)...]))
            env.vars[name] = try expandJoined(w, env, line: line)
            return 0
        }
        let argv = try expand(words, env, line: line)
        guard let cmd = argv.first else { return 0 }
        let args = argv.dropFirst()  // a slice: no copy for the commands that ignore it
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
        case "[", "test":
            // GRUB commands/test.c: a last "]" is dropped, whatever the command's name.
            return GrubEvaluator.test(Array(args.last == "]" ? args.dropLast() : args)) ? 0 : 1
        case "multiboot", "multiboot2", "module", "module2", "linux", "linux16", "linuxefi",
             "initrd", "initrd16", "initrdefi", "chainloader":
            if loaders != nil { loaders!.append(try loaderCommand(cmd, Array(args), line: line)) }
            return 0
        case "loopback":
            // `loopback [-d] NAME FILE`: later paths on (NAME) are inside FILE.
            let names = args.filter { !$0.hasPrefix("-") }
            if args.contains("-d") { if let n = names.first { loopDevices.remove(n) } }
            else if let n = names.first { loopDevices.insert(n) }
            return 0
        case "source", ".":
            return try source(Array(args), line: line, env)
        case "configfile", "normal", "extract_entries_source", "extract_entries_configfile",
             "extract_legacy_entries_source", "extract_legacy_entries_configfile", "legacy_configfile",
             "legacy_source", "syslinux_source", "syslinux_configfile":
            let file = args.first.map { " \($0.grubDisplay)" } ?? ""
            throw CodedError(.grubUnsupported, source: path, line: line,
                            "'\(cmd)\(file)' shows another file's menu; predict from that file (--grub-cfg\(file))")
        default:
            if let body = functions[cmd] {
                depth += 1
                defer { depth -= 1 }
                guard depth < GrubEvaluator.maxCallDepth else {
                    throw CodedError(.grubUnsupported, source: path, line: line, "function '\(cmd.grubDisplay)' recurses too deep")
                }
                let saved = env.positional
                env.positional = Array(args)
                defer { env.positional = saved }
                return try run(body, env)
            }
            // insmod, search, echo, load_env, terminal_*, … load nothing measured.
            return 0
        }
    }

    private func loaderCommand(_ cmd: String, _ args: [String], line: Int) throws -> LoaderCommand {
        var options = [String]()
        var rest = args[...]
        // The loaders read their options before the file name only (GRUB multiboot.c, multiboot2.c).
        let known = GrubEvaluator.loaderOptions
        while let a = rest.first, known.contains(a) { options.append(a); rest = rest.dropFirst() }
        guard let file = rest.first else {
            throw CodedError(.grubBadLoaderLine, source: path, line: line, "'\(cmd)' without a file name")
        }
        let device = try GrubPath.checkDevice(file.grubBytes, loopDevices: loopDevices, path: path, line: line)
        return LoaderCommand(command: cmd, options: options, fileBytes: file.grubBytes, device: device,
                             arguments: rest.dropFirst().map(\.grubBytes), line: line, config: path)
    }

    /// `source FILE`: GRUB runs FILE's commands here, in this environment and menu. The file is
    /// read from the boot directory; one GRUB cannot open is skipped as GRUB skips it (a note).
    private mutating func source(_ args: [String], line: Int, _ env: Environment) throws -> Int {
        guard let name = args.first else {
            throw CodedError(.grubSyntax, source: path, line: line, "'source' without a file name")
        }
        guard let bootDir else {
            throw CodedError(.grubUnsupported, source: path, line: line,
                            "'source \(name.grubDisplay)' reads a file from the boot device; give the boot directory")
        }
        _ = try GrubPath.checkDevice(name.grubBytes, loopDevices: loopDevices, path: path, line: line)
        let file = try GrubPath.resolve(name.grubBytes, bootDir: bootDir, config: path, line: line)
        var st = stat()
        guard stat(file, &st) == 0 else {
            notes.append("\(path):\(line): 'source \(name.grubDisplay)' skipped: no \(file) (GRUB skips a file it cannot open)")
            return 1
        }
        depth += 1
        defer { depth -= 1 }
        guard depth < GrubEvaluator.maxCallDepth else {
            throw CodedError(.grubUnsupported, source: path, line: line, "'source \(name.grubDisplay)' nests too deep")
        }
        let nodes: [GrubScript.Node]
        if let n = parsedSources[file] {
            nodes = n
        } else {
            nodes = try GrubScript.parse(try FileReader.readAll(path: file, limit: 16 << 20), path: file)
            parsedSources[file] = nodes
        }
        let saved = path
        path = file
        defer { path = saved }
        return try run(nodes, env)
    }

    // MARK: `test` (GRUB `commands/test.c`)

    /// GRUB's `test_parse`, step for step: arguments are read left to right, three-argument
    /// tests first, then two-argument ones, then `(`, `)`, `!`, `-a`, `-o`, and any other word
    /// is true when not empty. So `[ = 0 ]` (an unset variable) is true, as in GRUB. `!` only
    /// flips a flag and `(` uses an explicit stack: no input can exhaust the call stack.
    static func test(_ a: [String]) -> Bool {
        struct Ctx { var invert = false, or = false, and = true }
        var stack = [Ctx()]
        func update(_ v: Bool) {
            let c = stack[stack.count - 1]
            stack[stack.count - 1].and = c.and && (c.invert ? !v : v)
            stack[stack.count - 1].invert = false
        }
        var i = 0
        while i < a.count {
            if i + 2 < a.count {
                let l = a[i], op = a[i + 1], r = a[i + 2]
                var v: Bool? = nil
                switch op {
                case "=", "==": v = l == r
                case "!=": v = l != r
                case "<": v = compare(l, r) < 0
                case "<=": v = compare(l, r) <= 0
                case ">": v = compare(l, r) > 0
                case ">=": v = compare(l, r) >= 0
                case "-eq": v = number(l) == number(r)
                case "-ge": v = number(l) >= number(r)
                case "-gt": v = number(l) > number(r)
                case "-le": v = number(l) <= number(r)
                case "-lt": v = number(l) < number(r)
                case "-ne": v = number(l) != number(r)
                case "-pgt", "-plt": v = prefixedNumbers(l, r, greater: op == "-pgt")
                default:
                    // -nt/-ot compare file times on the boot device: taken as false.
                    if op.hasPrefix("-nt") || op.hasPrefix("-ot") { v = false }
                }
                if let v { update(v); i += 3; continue }
            }
            if i + 1 < a.count {
                var v: Bool? = nil
                switch a[i] {
                // A file on the boot device: taken as present (the AEM section tests /aem/).
                case "-d", "-e", "-f", "-s": v = true
                case "-n": v = !a[i + 1].isEmpty
                case "-z": v = a[i + 1].isEmpty
                default: break
                }
                if let v { update(v); i += 2; continue }
            }
            switch a[i] {
            case ")":
                i += 1
                if stack.count > 1 {
                    let c = stack.removeLast()
                    update(c.or || c.and)
                } else {
                    // GRUB returns from test_parse here: the rest is not read.
                    let c = stack[0]
                    return c.or || c.and
                }
                continue
            case "(":
                stack.append(Ctx())
            case "!":
                stack[stack.count - 1].invert.toggle()
            case "-a":
                break
            case "-o":
                let c = stack[stack.count - 1]
                stack[stack.count - 1].or = c.or || c.and
                stack[stack.count - 1].and = true
            default:
                update(!a[i].isEmpty)
            }
            i += 1
        }
        // Unclosed "(": each level ends at the end of the arguments, as GRUB's recursion does.
        while stack.count > 1 {
            let c = stack.removeLast()
            update(c.or || c.and)
        }
        return stack[0].or || stack[0].and
    }

    /// `grub_strcmp`: bytes compared as unsigned values.
    private static func compare(_ l: String, _ r: String) -> Int {
        let a = l.grubBytes, b = r.grubBytes
        for (x, y) in zip(a, b) where x != y { return x < y ? -1 : 1 }
        return a.count == b.count ? 0 : (a.count < b.count ? -1 : 1)
    }

    /// `grub_strtosl(arg, 0, 0)`: an optional `-`, then digits in base 16 (`0x`), 8 (`0`) or
    /// 10, up to the first other character; wraps like GRUB's unsigned long.
    static func number(_ s: String) -> Int64 {
        var b = s.grubBytes[...]
        var negative = false
        if b.first == UInt8(ascii: "-") { negative = true; b = b.dropFirst() }
        let v = unsignedNumber(b)
        return negative ? 0 &- Int64(bitPattern: v) : Int64(bitPattern: v)
    }

    private static func unsignedNumber(_ b: ArraySlice<UInt8>) -> UInt64 {
        var b = b
        var base: UInt64 = 10
        if b.first == UInt8(ascii: "0") {
            let x = b.dropFirst().first
            if x == UInt8(ascii: "x") || x == UInt8(ascii: "X") { base = 16; b = b.dropFirst(2) } else { base = 8 }
        }
        var v: UInt64 = 0
        for c in b {
            let d: UInt64
            switch c {
            case UInt8(ascii: "0")...UInt8(ascii: "9"): d = UInt64(c - UInt8(ascii: "0"))
            case UInt8(ascii: "a")...UInt8(ascii: "f"): d = UInt64(c - UInt8(ascii: "a") + 10)
            case UInt8(ascii: "A")...UInt8(ascii: "F"): d = UInt64(c - UInt8(ascii: "A") + 10)
            default: return v
            }
            if d >= base { return v }
            v = v &* base &+ d
        }
        return v
    }

    /// `-pgt`/`-plt`: numbers compared after the common prefix (`vmlinuz-2 -plt vmlinuz-11`).
    private static func prefixedNumbers(_ l: String, _ r: String, greater: Bool) -> Bool {
        let a = l.grubBytes, b = r.grubBytes
        var i = 0
        while i < a.count, i < b.count, a[i] == b[i] { i += 1 }
        i -= 1
        func isDigit(_ c: UInt8) -> Bool { c >= UInt8(ascii: "0") && c <= UInt8(ascii: "9") }
        while i > 0, i < a.count, isDigit(a[i]) { i -= 1 }
        i += 1
        let x = unsignedNumber(i < a.count ? a[i...] : []), y = unsignedNumber(i < b.count ? b[i...] : [])
        return greater ? x > y : x < y
    }

    // MARK: expansion

    private mutating func count(_ n: Int, line: Int) throws {
        expandedBytes += n
        if expandedBytes > GrubEvaluator.maxExpandedBytes {
            throw CodedError(.grubUnsupported, source: path, line: line,
                            "expansion stopped after \(GrubEvaluator.maxExpandedBytes >> 20) MiB of text (a variable doubled again and again?)")
        }
    }

    /// GRUB's argument building: unquoted variables split at blanks; an unquoted empty variable
    /// alone makes no argument; quotes always make one.
    mutating func expand(_ words: [GrubScript.Word], _ env: Environment, line: Int) throws -> [String] {
        var out = [String]()
        out.reserveCapacity(words.count)
        func isBlank(_ c: Unicode.Scalar) -> Bool { c == " " || c == "\t" || c == "\n" }
        for w in words {
            // A word of one literal or quoted part (most words): itself, nothing to expand.
            if w.parts.count == 1, out.count < GrubEvaluator.maxArguments {
                switch w.parts[0] {
                case .literal(let s):
                    if !s.isEmpty { out.append(s) }
                    continue
                case .quoted(let s):
                    out.append(s)
                    continue
                case .variable: break
                }
            }
            var cur = String.UnicodeScalarView()
            var has = false
            var added = 0
            for p in w.parts {
                switch p {
                case .literal(let s):
                    cur.append(contentsOf: s.unicodeScalars)
                    if !s.isEmpty { has = true }
                case .quoted(let s):
                    cur.append(contentsOf: s.unicodeScalars)
                    has = true
                case .variable("@", quoted: true):
                    // "$@": one argument per positional parameter (GRUB script/execute.c).
                    // Each costs its bytes and one more, so passing "$@" on twice per call
                    // level cannot double words, empty ones included, past the caps.
                    for (k, a) in env.positional.enumerated() {
                        if k > 0 { out.append(String(cur)); cur = .init(); added = 0 }
                        let v = a.unicodeScalars
                        try count(v.count + 1, line: line)
                        added += v.count
                        cur.append(contentsOf: v)
                        has = true
                    }
                case .variable(let name, let quoted):
                    let v = env.value(name).unicodeScalars
                    let n = v.count
                    try count(n, line: line)
                    added += n
                    if quoted { cur.append(contentsOf: v); has = true; continue }
                    let pieces = v.split(whereSeparator: isBlank)
                    if pieces.isEmpty {
                        if !v.isEmpty && has { out.append(String(cur)); cur = .init(); has = false }
                        continue
                    }
                    if let f = v.first, isBlank(f), has { out.append(String(cur)); cur = .init(); has = false }
                    for (k, piece) in pieces.enumerated() {
                        if k > 0 { out.append(String(cur)); cur = .init() }
                        cur.append(contentsOf: piece)
                        has = true
                    }
                    if let l = v.last, isBlank(l) { out.append(String(cur)); cur = .init(); has = false }
                }
                if added > GrubEvaluator.maxValueBytes { try tooLong(line) }
                if out.count > GrubEvaluator.maxArguments {
                    throw CodedError(.grubUnsupported, source: path, line: line,
                                    "a command with more than \(GrubEvaluator.maxArguments) arguments; no real grub.cfg makes one")
                }
            }
            if has { out.append(String(cur)) }
        }
        return out
    }

    private func tooLong(_ line: Int) throws -> Never {
        throw CodedError(.grubUnsupported, source: path, line: line,
                        "a word longer than \(GrubEvaluator.maxValueBytes >> 20) MiB; no real grub.cfg makes one")
    }

    /// Expansion without field splitting (assignment values).
    mutating func expandJoined(_ w: GrubScript.Word, _ env: Environment, line: Int) throws -> String {
        var s = String.UnicodeScalarView()
        var added = 0
        for p in w.parts {
            switch p {
            case .literal(let t), .quoted(let t): s.append(contentsOf: t.unicodeScalars)
            case .variable(let name, _):
                let v = env.value(name).unicodeScalars
                let n = v.count
                try count(n, line: line)
                added += n
                s.append(contentsOf: v)
            }
            if added > GrubEvaluator.maxValueBytes { try tooLong(line) }
        }
        return String(s)
    }
}
