/// The subset of GRUB's script language that grub.cfg files use (GRUB `grub-core/script/yylex.l`,
/// `parser.y`): words with quoting and variables, commands, `if/elif/else/fi`, `menuentry`,
/// `submenu` and `function` blocks. Parsing only: evaluation is `GrubEvaluator`.
public enum GrubScript {
    /// One piece of a word before expansion.
    public enum Part: Equatable, Sendable {
        /// Characters written unquoted (after backslash escapes).
        case literal(String)
        /// Characters inside single or double quotes: they always make an argument, even if empty.
        case quoted(String)
        /// `$name` / `${name}`; `quoted` when inside double quotes (no field splitting).
        case variable(String, quoted: Bool)
    }

    public struct Word: Equatable, Sendable {
        public var parts: [Part]
        /// The word is one unquoted literal, e.g. a keyword or `{`.
        public var plainText: String? {
            if parts.count == 1, case .literal(let s) = parts[0] { return s }
            return nil
        }
    }

    public indirect enum Node: Sendable {
        case command([Word], line: Int)
        case ifChain([(condition: [Node], body: [Node])], otherwise: [Node]?, line: Int)
        case menuentry([Word], body: [Node], line: Int)
        case submenu([Word], body: [Node], line: Int)
        case function(String, body: [Node], line: Int)
    }

    // MARK: Lexer

    enum Token: Equatable {
        case word(Word, line: Int)
        case separator(line: Int)   // newline or ';'
        /// An unquoted `{` or `}`: GRUB's lexer makes each a token of its own, even glued to a
        /// word (`menuentry 'T'{`).
        case openBrace(line: Int)
        case closeBrace(line: Int)
        case end
    }

    /// Splits a grub.cfg into tokens. GRUB reads bytes: each byte becomes one scalar U+0000–U+00FF
    /// (`String(grubBytes:)`), so a byte that is not UTF-8 passes through unchanged.
    static func tokenize(_ bytes: [UInt8], path: String) throws -> [Token] {
        let s = bytes.map { Unicode.Scalar($0) }
        var i = 0
        var line = 1
        var tokens = [Token]()
        func isBlank(_ c: Unicode.Scalar) -> Bool { c == " " || c == "\t" || c == "\r" }
        func isNameStart(_ c: Unicode.Scalar) -> Bool { c == "_" || ("a"..."z").contains(c) || ("A"..."Z").contains(c) }
        func isNameChar(_ c: Unicode.Scalar) -> Bool { isNameStart(c) || ("0"..."9").contains(c) }

        func readVariable(quoted: Bool) throws -> Part {
            // at s[i] == "$"
            let startLine = line
            i += 1
            guard i < s.count else { return quoted ? .quoted("$") : .literal("$") }
            if s[i] == "{" {
                i += 1
                var name = ""
                while i < s.count, s[i] != "}" {
                    if s[i] == "\n" { break }
                    name.unicodeScalars.append(s[i]); i += 1
                }
                guard i < s.count, s[i] == "}" else {
                    throw GrubError(.syntax, path: path, line: startLine, "unterminated ${…}")
                }
                i += 1
                return .variable(name, quoted: quoted)
            }
            if ("0"..."9").contains(s[i]) || s[i] == "?" || s[i] == "#" || s[i] == "@" || s[i] == "*" {
                let n = String(s[i]); i += 1
                return .variable(n, quoted: quoted)
            }
            if isNameStart(s[i]) {
                var name = ""
                while i < s.count, isNameChar(s[i]) { name.unicodeScalars.append(s[i]); i += 1 }
                return .variable(name, quoted: quoted)
            }
            return quoted ? .quoted("$") : .literal("$")
        }

        while i < s.count {
            let c = s[i]
            if isBlank(c) { i += 1; continue }
            if c == "\n" || c == ";" {
                tokens.append(.separator(line: line))
                if c == "\n" { line += 1 }
                i += 1
                continue
            }
            if c == "#" {
                while i < s.count, s[i] != "\n" { i += 1 }
                continue
            }
            if c == "{" { tokens.append(.openBrace(line: line)); i += 1; continue }
            if c == "}" { tokens.append(.closeBrace(line: line)); i += 1; continue }
            // A word.
            let wordLine = line
            var parts = [Part]()
            var lit = ""
            func flushLiteral() { if !lit.isEmpty { parts.append(.literal(lit)); lit = "" } }
            wordLoop: while i < s.count {
                let c = s[i]
                switch c {
                case " ", "\t", "\r", "\n", ";", "{", "}":
                    break wordLoop
                case "\\":
                    if i + 1 < s.count {
                        if s[i + 1] == "\n" { line += 1; i += 2; continue }
                        lit.unicodeScalars.append(s[i + 1]); i += 2
                    } else { i += 1 }
                case "'":
                    flushLiteral()
                    var q = ""
                    i += 1
                    let startLine = line
                    while i < s.count, s[i] != "'" {
                        if s[i] == "\n" { line += 1 }
                        q.unicodeScalars.append(s[i]); i += 1
                    }
                    guard i < s.count else { throw GrubError(.syntax, path: path, line: startLine, "unterminated single quote") }
                    i += 1
                    parts.append(.quoted(q))
                case "\"":
                    flushLiteral()
                    i += 1
                    let startLine = line
                    var q = ""
                    var sawAny = false
                    while i < s.count, s[i] != "\"" {
                        if s[i] == "\\", i + 1 < s.count {
                            let n = s[i + 1]
                            if n == "\n" { line += 1; i += 2; continue }
                            if n == "$" || n == "\"" || n == "\\" { q.unicodeScalars.append(n); i += 2; continue }
                            q.unicodeScalars.append("\\"); i += 1; continue
                        }
                        if s[i] == "$" {
                            let v = try readVariable(quoted: true)
                            if case .variable = v {
                                if !q.isEmpty || !sawAny { parts.append(.quoted(q)); q = "" }
                                parts.append(v); sawAny = true
                                continue
                            }
                            if case .quoted(let t) = v { q += t }
                            continue
                        }
                        if s[i] == "\n" { line += 1 }
                        q.unicodeScalars.append(s[i]); i += 1
                    }
                    guard i < s.count else { throw GrubError(.syntax, path: path, line: startLine, "unterminated double quote") }
                    i += 1
                    if !q.isEmpty || !sawAny { parts.append(.quoted(q)) }
                case "$":
                    flushLiteral()
                    let v = try readVariable(quoted: false)
                    if case .literal(let t) = v { lit += t } else { parts.append(v) }
                default:
                    lit.unicodeScalars.append(c); i += 1
                }
            }
            flushLiteral()
            tokens.append(.word(Word(parts: parts), line: wordLine))
        }
        tokens.append(.end)
        return tokens
    }

    // MARK: Parser

    /// Parses a whole grub.cfg.
    public static func parse(_ bytes: [UInt8], path: String) throws -> [Node] {
        var p = Parser(tokens: try tokenize(bytes, path: path), path: path)
        let nodes = try p.parseList(until: [])
        switch p.peek {
        case .word(let w, let line):
            throw GrubError(.syntax, path: path, line: line, "unexpected '\(Escape.text(w.plainText ?? "…", limit: 40))'")
        case .openBrace(let line):
            throw GrubError(.syntax, path: path, line: line, "unexpected '{'")
        case .closeBrace(let line):
            throw GrubError(.syntax, path: path, line: line, "'}' without a matching '{'")
        default:
            return nodes
        }
    }

    /// Parses script text (UTF-8).
    public static func parse(_ text: String, path: String) throws -> [Node] {
        try parse(Array(text.utf8), path: path)
    }

    struct Parser {
        var tokens: [Token]
        var pos = 0
        let path: String
        /// Blocks open around the current position; capped so a hostile file cannot exhaust the stack.
        var depth = 0
        static let maxDepth = 100

        var peek: Token { tokens[pos] }

        /// The line of the next token (at the end: of the last one).
        var currentLine: Int {
            for t in tokens[...pos].reversed() {
                switch t {
                case .word(_, let l), .separator(let l), .openBrace(let l), .closeBrace(let l): return l
                case .end: continue
                }
            }
            return 1
        }

        mutating func skipSeparators() {
            while case .separator = tokens[pos] { pos += 1 }
        }

        /// Reads commands until a command word in `terminators` (not consumed) or the end.
        mutating func parseList(until terminators: Set<String>) throws -> [Node] {
            depth += 1
            defer { depth -= 1 }
            // Whatever comes next: a body that starts on a new line begins with a separator.
            skipSeparators()
            if depth > Parser.maxDepth {
                throw GrubError(.unsupported, path: path, line: currentLine, "blocks nested more than \(Parser.maxDepth) deep")
            }
            var nodes = [Node]()
            while true {
                skipSeparators()
                if case .closeBrace(let line) = peek {
                    if terminators.contains("}") { return nodes }
                    throw GrubError(.syntax, path: path, line: line, "'}' without a matching '{'")
                }
                if case .openBrace(let line) = peek {
                    throw GrubError(.syntax, path: path, line: line, "'{' outside a menuentry, submenu or function")
                }
                guard case .word(let first, let line) = peek else { return nodes }
                if let t = first.plainText, terminators.contains(t) { return nodes }
                switch first.plainText {
                case "if":
                    nodes.append(try parseIf(line: line))
                case "menuentry", "submenu":
                    nodes.append(try parseBlock(kind: first.plainText!, line: line))
                case "function":
                    nodes.append(try parseFunction(line: line))
                case "then", "elif", "else", "fi":
                    throw GrubError(.syntax, path: path, line: line, "'\(first.plainText!)' outside an if block")
                case "for", "while", "until":
                    throw GrubError(.unsupported, path: path, line: line, "'\(first.plainText!)' loops are not supported in grub.cfg by this tool")
                default:
                    nodes.append(.command(readCommandWords(), line: line))
                }
            }
        }

        /// Words up to the end of the command (separator or end).
        mutating func readCommandWords() -> [Word] {
            var words = [Word]()
            while case .word(let w, _) = peek {
                words.append(w); pos += 1
            }
            return words
        }

        mutating func expectKeyword(_ k: String, context: String, line: Int) throws {
            skipSeparators()
            guard case .word(let w, _) = peek, w.plainText == k else {
                throw GrubError(.syntax, path: path, line: line, "'\(k)' expected in \(context) begun here")
            }
            pos += 1
        }

        mutating func parseIf(line: Int) throws -> Node {
            pos += 1  // "if"
            var branches = [(condition: [Node], body: [Node])]()
            var otherwise: [Node]? = nil
            var cond = try parseList(until: ["then"])
            try expectKeyword("then", context: "the if", line: line)
            var body = try parseList(until: ["elif", "else", "fi"])
            branches.append((cond, body))
            while true {
                skipSeparators()
                guard case .word(let w, _) = peek else {
                    throw GrubError(.syntax, path: path, line: line, "'fi' missing for the if begun here")
                }
                pos += 1
                switch w.plainText {
                case "elif":
                    cond = try parseList(until: ["then"])
                    try expectKeyword("then", context: "the elif", line: line)
                    body = try parseList(until: ["elif", "else", "fi"])
                    branches.append((cond, body))
                case "else":
                    otherwise = try parseList(until: ["fi"])
                case "fi":
                    return .ifChain(branches, otherwise: otherwise, line: line)
                default:
                    throw GrubError(.syntax, path: path, line: line, "'fi' missing for the if begun here")
                }
            }
        }

        /// `{` BODY `}` after a block's header words. The `{` must be on the header's line (GRUB:
        /// "no menuentry definition" otherwise); it may be glued to the last word, and the body
        /// may share the line: `menuentry 'X' { echo x; halt; }` (all checked with grub-emu).
        mutating func parseBraced(kind: String, line: Int) throws -> [Node] {
            guard case .openBrace = peek else {
                throw GrubError(.syntax, path: path, line: line, "\(kind) without '{' on its line")
            }
            pos += 1
            let body = try parseList(until: ["}"])
            guard case .closeBrace = peek else {
                throw GrubError(.syntax, path: path, line: line, "'}' missing for the \(kind) begun here")
            }
            pos += 1
            return body
        }

        /// `menuentry ARGS… {` BODY `}`.
        mutating func parseBlock(kind: String, line: Int) throws -> Node {
            pos += 1
            let args = readCommandWords()
            let body = try parseBraced(kind: kind, line: line)
            return kind == "menuentry" ? .menuentry(args, body: body, line: line) : .submenu(args, body: body, line: line)
        }

        mutating func parseFunction(line: Int) throws -> Node {
            pos += 1
            let words = readCommandWords()
            guard words.count == 1, let name = words[0].plainText else {
                throw GrubError(.syntax, path: path, line: line, "function NAME { expected")
            }
            let body = try parseBraced(kind: "function", line: line)
            return .function(name, body: body, line: line)
        }
    }
}
