// SPDX-License-Identifier: Apache-2.0
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
        case menuentry([Word], body: Block, line: Int)
        case submenu([Word], body: Block, line: Int)
        case function(String, body: [Node], line: Int)
    }

    /// A menu entry's or submenu's body as GRUB keeps it: its source text, parsed again when it
    /// runs. GRUB's parser checks the body when it reads the file, but the menu keeps only the
    /// text (`grub_normal_add_menu_entry`'s `sourcecode`); so does this one: a menu of 200,000
    /// entries costs their bytes, not a tree of nodes each.
    public struct Block: Sendable {
        let source: Source
        /// The bytes between `{` and `}`, and the line the body starts on.
        let start: Int, end: Int, line: Int

        /// The file the body is in.
        var path: String { source.path }

        /// The body's commands (the parse succeeded once already, when the file was read).
        func nodes() throws -> [Node] {
            var p = try Parser(source: source, from: start, to: end, line: line, sharesWords: false)
            return try p.parseList(until: [])
        }
    }

    /// A file's bytes, shared by the blocks read from it.
    final class Source: Sendable {
        let bytes: [UInt8]
        let path: String

        init(bytes: [UInt8], path: String) {
            self.bytes = bytes
            self.path = path
        }
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

    /// Splits a grub.cfg into tokens, one at a time as the parser asks (a list of all of them
    /// would cost ~50 bytes per token: 120 MB for 200,000 entries). GRUB reads bytes: each byte
    /// becomes one scalar U+0000–U+00FF (`String(grubBytes:)`), so a byte that is not UTF-8
    /// passes through unchanged.
    struct Lexer {
        /// Each byte read as a scalar where it is used: no copy of the file 4 bytes a byte.
        struct Scalars {
            let bytes: [UInt8]
            /// Where lexing stops (a block's body ends before its `}`).
            let count: Int
            subscript(i: Int) -> Unicode.Scalar { Unicode.Scalar(bytes[i]) }

            /// Bytes a..<b as GRUB text, in one piece (ASCII, the common case, copied as is).
            func text(_ a: Int, _ b: Int) -> String {
                let run = bytes[a..<b]
                return run.allSatisfy { $0 < 0x80 } ? String(decoding: run, as: UTF8.self) : String(grubBytes: run)
            }
        }

        /// Bytes that end a word: blanks, newline, `;`, `{`, `}`.
        static func endsWord(_ b: UInt8) -> Bool {
            switch b {
            case 0x20, 0x09, 0x0D, 0x0A, 0x3B, 0x7B, 0x7D: return true
            default: return false
            }
        }

        /// Bytes that end a run of plain word characters.
        static func isSpecial(_ b: UInt8) -> Bool {
            switch b {
            case 0x20, 0x09, 0x0D, 0x0A, 0x3B, 0x7B, 0x7D, 0x5C, 0x27, 0x22, 0x24: return true  // ␠ \t \r \n ; { } \\ ' " $
            default: return false
            }
        }
        let s: Scalars
        let path: String
        var i = 0
        var line = 1
        /// Words made of one plain literal (keywords, commands, most paths) recur: one copy each.
        var plainWords = [String: Word]()
        /// Up to how many words `plainWords` keeps: 0 where no word is kept long (a menu
        /// entry's body: checked when the file is read, parsed when it runs and dropped after).
        var sharedWordLimit: Int

        init(_ bytes: [UInt8], path: String, from start: Int = 0, to end: Int? = nil, line: Int = 1, sharesWords: Bool = true) {
            s = Scalars(bytes: bytes, count: end ?? bytes.count)
            self.path = path
            i = start
            self.line = line
            sharedWordLimit = sharesWords ? 4096 : 0
        }

        /// The next token; `.end` at the end of the bytes.
        mutating func next() throws -> Token {
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
                    throw CodedError(.grubSyntax, source: path, line: startLine, "unterminated ${…}")
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
                let t = Token.separator(line: line)
                if c == "\n" { line += 1 }
                i += 1
                return t
            }
            if c == "#" {
                while i < s.count, s[i] != "\n" { i += 1 }
                continue
            }
            if c == "{" { i += 1; return .openBrace(line: line) }
            if c == "}" { i += 1; return .closeBrace(line: line) }
            // A word. Most are one run of plain bytes (a keyword, a command, a path): read at
            // once, and shared when the same word came before.
            let wordLine = line
            do {
                var j = i
                while j < s.count, !Lexer.isSpecial(s.bytes[j]) { j += 1 }
                if j > i, j == s.count || Lexer.endsWord(s.bytes[j]) {
                    let text = s.text(i, j)
                    i = j
                    if sharedWordLimit > 0, let shared = plainWords[text] { return .word(shared, line: wordLine) }
                    let w = Word(parts: [.literal(text)])
                    if plainWords.count < sharedWordLimit { plainWords[text] = w }
                    return .word(w, line: wordLine)
                }
            }
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
                    i += 1
                    let startLine = line
                    let start = i
                    while i < s.count, s.bytes[i] != 0x27 {
                        if s.bytes[i] == 0x0A { line += 1 }
                        i += 1
                    }
                    guard i < s.count else { throw CodedError(.grubSyntax, source: path, line: startLine, "unterminated single quote") }
                    parts.append(.quoted(s.text(start, i)))
                    i += 1
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
                    guard i < s.count else { throw CodedError(.grubSyntax, source: path, line: startLine, "unterminated double quote") }
                    i += 1
                    if !q.isEmpty || !sawAny { parts.append(.quoted(q)) }
                case "$":
                    flushLiteral()
                    let v = try readVariable(quoted: false)
                    if case .literal(let t) = v { lit += t } else { parts.append(v) }
                default:
                    let start = i
                    while i < s.count, !Lexer.isSpecial(s.bytes[i]) { i += 1 }
                    lit += s.text(start, i)
                }
            }
            flushLiteral()
            if sharedWordLimit > 0, parts.count == 1, case .literal(let text) = parts[0] {
                if let shared = plainWords[text] { return .word(shared, line: wordLine) }
                if plainWords.count < sharedWordLimit { plainWords[text] = Word(parts: parts) }
            }
            return .word(Word(parts: parts), line: wordLine)
        }
        return .end
        }
    }

    // MARK: Parser

    /// Parses a whole grub.cfg.
    public static func parse(_ bytes: [UInt8], path: String) throws -> [Node] {
        var p = try Parser(source: Source(bytes: bytes, path: path))
        let nodes = try p.parseList(until: [])
        switch p.peek {
        case .word(let w, let line):
            throw CodedError(.grubSyntax, source: path, line: line, "unexpected '\(Escape.text(w.plainText ?? "…", limit: 40))'")
        case .openBrace(let line):
            throw CodedError(.grubSyntax, source: path, line: line, "unexpected '{'")
        case .closeBrace(let line):
            throw CodedError(.grubSyntax, source: path, line: line, "'}' without a matching '{'")
        default:
            return nodes
        }
    }

    /// Parses script text (UTF-8).
    public static func parse(_ text: String, path: String) throws -> [Node] {
        try parse(Array(text.utf8), path: path)
    }

    struct Parser {
        var lexer: Lexer
        /// The next token, read but not consumed.
        private(set) var peek: Token
        /// The line of the last token read that was not the end.
        var lastLine = 1
        let path: String
        /// Blocks open around the current position; capped so a hostile file cannot exhaust the stack.
        var depth = 0
        static let maxDepth = 100

        let source: Source
        /// Whether nodes are kept (false inside a menu entry's body: only its syntax is checked).
        var building = true
        static let closeBrace: Set<String> = ["}"]
        static let then: Set<String> = ["then"]
        static let afterThen: Set<String> = ["elif", "else", "fi"]
        static let fi: Set<String> = ["fi"]

        init(source: Source, from start: Int = 0, to end: Int? = nil, line: Int = 1, sharesWords: Bool = true) throws {
            self.source = source
            lexer = Lexer(source.bytes, path: source.path, from: start, to: end, line: line, sharesWords: sharesWords)
            path = source.path
            peek = .end
            try advance()
        }

        /// Consumes the next token and reads the one after it.
        mutating func advance() throws {
            peek = try lexer.next()
            switch peek {
            case .word(_, let l), .separator(let l), .openBrace(let l), .closeBrace(let l): lastLine = l
            case .end: break
            }
        }

        /// The line of the next token (at the end: of the last one).
        var currentLine: Int { lastLine }

        mutating func skipSeparators() throws {
            while case .separator = peek { try advance() }
        }

        /// Reads commands until a command word in `terminators` (not consumed) or the end.
        mutating func parseList(until terminators: Set<String>) throws -> [Node] {
            depth += 1
            defer { depth -= 1 }
            // Whatever comes next: a body that starts on a new line begins with a separator.
            try skipSeparators()
            if depth > Parser.maxDepth {
                throw CodedError(.grubUnsupported, source: path, line: currentLine, "blocks nested more than \(Parser.maxDepth) deep")
            }
            var nodes = [Node]()
            while true {
                try skipSeparators()
                if case .closeBrace(let line) = peek {
                    if terminators.contains("}") { return nodes }
                    throw CodedError(.grubSyntax, source: path, line: line, "'}' without a matching '{'")
                }
                if case .openBrace(let line) = peek {
                    throw CodedError(.grubSyntax, source: path, line: line, "'{' outside a menuentry, submenu or function")
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
                    throw CodedError(.grubSyntax, source: path, line: line, "'\(first.plainText!)' outside an if block")
                case "for", "while", "until":
                    throw CodedError(.grubUnsupported, source: path, line: line, "'\(first.plainText!)' loops are not supported in grub.cfg by this tool")
                default:
                    let words = try readCommandWords()
                    if building { nodes.append(.command(words, line: line)) }
                }
            }
        }

        /// Words up to the end of the command (separator or end).
        mutating func readCommandWords(keep: Bool = false) throws -> [Word] {
            var words = [Word]()
            while case .word(let w, _) = peek {
                if building || keep { words.append(w) }
                try advance()
            }
            return words
        }

        mutating func expectKeyword(_ k: String, context: String, line: Int) throws {
            try skipSeparators()
            guard case .word(let w, _) = peek, w.plainText == k else {
                throw CodedError(.grubSyntax, source: path, line: line, "'\(k)' expected in \(context) begun here")
            }
            try advance()
        }

        mutating func parseIf(line: Int) throws -> Node {
            try advance()  // "if"
            var branches = [(condition: [Node], body: [Node])]()
            var otherwise: [Node]? = nil
            var cond = try parseList(until: Parser.then)
            try expectKeyword("then", context: "the if", line: line)
            var body = try parseList(until: Parser.afterThen)
            branches.append((cond, body))
            while true {
                try skipSeparators()
                guard case .word(let w, _) = peek else {
                    throw CodedError(.grubSyntax, source: path, line: line, "'fi' missing for the if begun here")
                }
                try advance()
                switch w.plainText {
                case "elif":
                    cond = try parseList(until: Parser.then)
                    try expectKeyword("then", context: "the elif", line: line)
                    body = try parseList(until: Parser.afterThen)
                    branches.append((cond, body))
                case "else":
                    otherwise = try parseList(until: Parser.fi)
                case "fi":
                    return .ifChain(branches, otherwise: otherwise, line: line)
                default:
                    throw CodedError(.grubSyntax, source: path, line: line, "'fi' missing for the if begun here")
                }
            }
        }

        /// `{` BODY `}` after a block's header words. The `{` must be on the header's line (GRUB:
        /// "no menuentry definition" otherwise); it may be glued to the last word, and the body
        /// may share the line: `menuentry 'X' { echo x; halt; }` (all checked with grub-emu).
        mutating func parseBraced(kind: String, line: Int) throws -> (nodes: [Node], text: Block) {
            guard case .openBrace = peek else {
                throw CodedError(.grubSyntax, source: path, line: line, "\(kind) without '{' on its line")
            }
            // The lexer stands just after the `{`: the body's text starts there.
            let start = lexer.i, startLine = lexer.line
            try advance()
            // A menu entry's body is checked here and kept as text (`Block`): no nodes are
            // built for it, nor for anything inside it.
            let wasBuilding = building, wasSharing = lexer.sharedWordLimit
            if kind != "function" { building = false; lexer.sharedWordLimit = 0 }
            defer { building = wasBuilding; lexer.sharedWordLimit = wasSharing }
            let body = try parseList(until: Parser.closeBrace)
            guard case .closeBrace = peek else {
                throw CodedError(.grubSyntax, source: path, line: line, "'}' missing for the \(kind) begun here")
            }
            let text = Block(source: source, start: start, end: lexer.i - 1, line: startLine)
            try advance()
            return (body, text)
        }

        /// `menuentry ARGS… {` BODY `}`.
        mutating func parseBlock(kind: String, line: Int) throws -> Node {
            try advance()
            let args = try readCommandWords()
            let body = try parseBraced(kind: kind, line: line).text
            return kind == "menuentry" ? .menuentry(args, body: body, line: line) : .submenu(args, body: body, line: line)
        }

        mutating func parseFunction(line: Int) throws -> Node {
            try advance()
            let words = try readCommandWords(keep: true)
            guard words.count == 1, let name = words[0].plainText else {
                throw CodedError(.grubSyntax, source: path, line: line, "function NAME { expected")
            }
            let body = try parseBraced(kind: "function", line: line).nodes
            return .function(name, body: body, line: line)
        }
    }
}
