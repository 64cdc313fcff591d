// SPDX-License-Identifier: Apache-2.0
import Foundation
import Testing
@testable import AEMPCR

/// Errors stay one clear line (issue 13): bytes from inputs escaped, long lists cut; CRLF text
/// inputs read as text.
@Suite struct MessageTests {
    static func oneLine(_ r: ProcessResult, maxLength: Int = 2100) -> Bool {
        let lines = r.stderr.split(separator: "\n", omittingEmptySubsequences: false)
        return r.status == 2 && lines.count == 2 && lines[1].isEmpty && lines[0].hasPrefix("aem-pcr: error: ")
            && lines[0].utf8.count <= maxLength && !lines[0].unicodeScalars.contains { $0.value < 0x20 || $0.value == 0x7F }
    }

    /// A wrong --entry on a 20,000-entry file: ten entries listed, then how many more.
    @Test func longListsAreCut() throws {
        let dir = try tempDir()
        var text = ""
        for k in 0..<20_000 { text += "menuentry 'Entry number \(k) with a long title' {\n multiboot /t\n}\n" }
        try text.write(toFile: dir + "/big.cfg", atomically: true, encoding: .utf8)
        let r = try aemPCR(["predict", "--grub-cfg", dir + "/big.cfg", "--entry", "nope", "--boot-dir", dir])
        #expect(Self.oneLine(r, maxLength: 1000), "\(r.stderr.prefix(300))")
        #expect(r.stderr.contains("9: Entry number 9 with a long title; … and 19990 more"))
    }

    /// Titles, file names and JSON keys holding control bytes print escaped.
    @Test func controlBytesAreEscaped() throws {
        let dir = try tempDir()
        try write(Array("menuentry 'a\u{1B}[31mb\nc' {\n multiboot /t\n}\n".utf8) + [0xFF], to: dir + "/t.cfg")
        let r = try aemPCR(["predict", "--grub-cfg", dir + "/t.cfg", "--entry", "x\ty", "--boot-dir", dir])
        #expect(Self.oneLine(r), "\(r.stderr)")
        #expect(r.stderr.contains("no menu entry 'x\\ty'; entries: 0: a\\x1b[31mb\\nc"), "\(r.stderr)")
        let missing = try aemPCR(["predict", "--grub-cfg", dir + "/no\nsuch\u{7}", "--entry", "0"])
        #expect(Self.oneLine(missing) && missing.stderr.contains("no\\nsuch\\x07"), "\(missing.stderr)")
        try #"{"sha1\u0001\n": {"17": "00"}}"#.write(toFile: dir + "/p.json", atomically: true, encoding: .utf8)
        #expect { try PCRValuesFile.read(path: dir + "/p.json") } throws: { e in
            (e as? CodedError)?.description == "\(dir)/p.json: unknown bank 'sha1\\x01\\x0a'"
        }
    }

    /// tpm2_pcrread YAML and txt-stat text with CRLF line ends read as with LF.
    @Test func crlfTextInputs() throws {
        let yaml = "sha1:\n  17: 0x" + String(repeating: "11", count: 20) + "\nsha256:\n  17: 0x" + String(repeating: "22", count: 32) + "\n"
        let lf = try PCRValuesFile.parse(yaml, source: "lf")
        let crlf = try PCRValuesFile.parse(yaml.replacingOccurrences(of: "\n", with: "\r\n"), source: "crlf")
        #expect(lf == crlf)
        #expect(lf[.sha256, PCRIndex(rawValue: 17)]?.hex == String(repeating: "22", count: 32))
        // txt-stat text of the real TPM 2.0 log, in TCG and in legacy layout.
        let dir = try tempDir()
        let events = try DRTMEventLog.parse(bytes: try LogVectors.bytes("isecl_tagent_txt-logs.bin")).events
        let texts = [("tcg", TextWriter.tcgLog(events, banks: [.sha1, .sha256])),
                     ("legacy", TextWriter.legacyLog(events, banks: [.sha1, .sha256]))]
        for (name, text) in texts {
            try text.write(toFile: dir + "/\(name).txt", atomically: true, encoding: .utf8)
            try text.replacingOccurrences(of: "\n", with: "\r\n").write(toFile: dir + "/\(name)-crlf.txt", atomically: true, encoding: .utf8)
            let a = try aemPCR(["log", "replay", "--json", dir + "/\(name).txt"])
            let b = try aemPCR(["log", "replay", "--json", dir + "/\(name)-crlf.txt"])
            #expect(a.status == 0 && b.status == 0, "\(name): \(a.stderr) \(b.stderr)")
            #expect(a.stdout.replacingOccurrences(of: "\(name).txt", with: "\(name)-crlf.txt") == b.stdout, "\(name)")
        }
    }
}
