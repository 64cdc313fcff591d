// SPDX-License-Identifier: Apache-2.0
/// The entry GRUB boots when nobody chooses, and a walk over every entry evaluated: what
/// `notice` needs to find the tboot boot of a machine whose titles it does not know.
extension GrubConfig {
    /// The value of `default` once the top level of the file has run, the variables of the
    /// environment block (`grubenv`) set as `load_env` sets them: Debian's and Fedora's
    /// `00_header` write `set default="${saved_entry}"` (GRUB_DEFAULT=saved) or
    /// `set default="N"`, and `next_entry` first when it is set. Nil when `default` is unset
    /// or empty (GRUB then boots entry 0).
    public func defaultSelector(platform: GrubPlatform = .pc, bootDir: String? = nil,
                                environmentBlock: [String: String] = [:]) throws -> String? {
        var ev = GrubEvaluator(path: path, platform: platform, bootDir: bootDir)
        let env = ev.initialEnvironment()
        for (k, v) in environmentBlock where env.vars[k] == nil { env.vars[k] = v }
        let level = try ev.runMenu(nodes, env: env)
        guard let d = level.env.vars["default"], !d.isEmpty else { return nil }
        return d.grubDisplay
    }

    /// Every entry that is not a submenu, evaluated, in menu order (a submenu's entries where
    /// the submenu stands), passed to `body` until it returns false: `entries`' walk, each
    /// level's script once, each entry's body once.
    public func forEachEvaluatedEntry(platform: GrubPlatform = .pc, bootDir: String? = nil,
                                      _ body: (GrubMenuItem, GrubEntry) throws -> Bool) throws {
        _ = try walk(platform: platform, bootDir: bootDir, submenus: true, evaluate: true) { item, entry in
            guard let entry else { return true }
            return try body(item, entry)
        }
    }

    /// GRUB's environment block (`grubenv`: `# GRUB Environment Block`, `name=value` lines,
    /// `#` padding to 1024 bytes; a `\` escapes the next byte, `\` or newline, as GRUB's
    /// `envblk.c` writes them). Lines without `=` are skipped.
    public static func parseEnvironmentBlock(_ bytes: [UInt8]) -> [String: String] {
        var out = [String: String]()
        var line = [UInt8]()
        var i = 0
        func finish() {
            defer { line = [] }
            guard line.first != UInt8(ascii: "#"), let eq = line.firstIndex(of: UInt8(ascii: "=")), eq > 0 else { return }
            out[String(decoding: line[..<eq], as: UTF8.self)] = String(decoding: line[(eq + 1)...], as: UTF8.self)
        }
        while i < bytes.count {
            let c = bytes[i]
            if c == UInt8(ascii: "\\"), i + 1 < bytes.count {
                line.append(bytes[i + 1])
                i += 2
                continue
            }
            if c == UInt8(ascii: "\n") { finish() } else { line.append(c) }
            i += 1
        }
        finish()
        return out
    }
}
