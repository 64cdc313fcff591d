// SPDX-License-Identifier: Apache-2.0
import Foundation
import Testing

/// `aem-pcr policy` over a PCR AEM refuses to seal to (issue 21, item 5): PCR13 or PCR17-19 all
/// 00 (never extended) or all FF (no measured launch) is computed into the digest, as asked,
/// but one warning line says so, naming the PCR and its file.
@Suite struct PolicyWarningTests {
    static func yaml(_ values: [Int: String]) -> String {
        "sha256:\n" + values.keys.sorted().map { "  \($0): 0x\(values[$0]!)\n" }.joined()
    }

    @Test func allZeroOrAllFFIsSaid() throws {
        let dir = try tempDir()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let good = String(repeating: "AB", count: 32), zero = String(repeating: "00", count: 32), ff = String(repeating: "FF", count: 32)
        let cases: [([Int: String], String?)] = [
            ([13: good, 17: good, 18: good, 19: good], nil),
            ([13: good, 17: good, 18: good, 19: zero], "PCR19 sha256 from \(dir)/v.yaml is all 00 (nothing extended it): AEM refuses to seal to such a PCR (listbadpcrs)"),
            ([13: good, 17: ff, 18: ff, 19: ff], "PCR17 sha256 from \(dir)/v.yaml is all FF (no measured launch)"),
            ([0: zero, 13: good, 17: good, 18: good, 19: good], nil),
        ]
        for (values, warning) in cases {
            try Self.yaml(values).write(toFile: dir + "/v.yaml", atomically: true, encoding: .utf8)
            let pcrs = values.keys.sorted().map(String.init).joined(separator: ",")
            let r = try aemPCR(["policy", "--pcr", pcrs, "--values", dir + "/v.yaml"])
            #expect(r.status == 0, "\(r.stderr)")
            #expect(r.stdout.count == 65, "the digest, as before: \(r.stdout)")
            if let warning {
                #expect(r.stderr.hasPrefix("aem-pcr: warning: " + warning) && r.stderr.split(separator: "\n").count >= 1, "\(r.stderr)")
            } else {
                #expect(r.stderr.isEmpty, "\(r.stderr)")
            }
        }
    }
}
