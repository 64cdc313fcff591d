// SPDX-License-Identifier: Apache-2.0
import AEMPCR

/// The exact bytes of an argument. `CommandLine.arguments` decodes each argument as UTF-8 and
/// replaces a byte that is not UTF-8 with U+FFFD; a command line is hashed as bytes, so a value
/// holding U+FFFD is looked up again in the raw `argv` (as the whole argument or after `=`).
enum RawArgument {
    static func bytes(_ value: String) -> [UInt8] {
        guard value.unicodeScalars.contains("\u{FFFD}") else { return Array(value.utf8) }
        for k in 1..<Int(CommandLine.argc) {
            guard let p = CommandLine.unsafeArgv[k] else { continue }
            var raw = [UInt8]()
            var q = p
            while q.pointee != 0 { raw.append(UInt8(bitPattern: q.pointee)); q += 1 }
            if String(decoding: raw, as: UTF8.self) == value { return raw }
            if raw.starts(with: Array("--".utf8)), let eq = raw.firstIndex(of: UInt8(ascii: "=")),
               String(decoding: raw[(eq + 1)...], as: UTF8.self) == value {
                return Array(raw[(eq + 1)...])
            }
        }
        return Array(value.utf8)
    }
}
