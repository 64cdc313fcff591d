// SPDX-License-Identifier: Apache-2.0
import Foundation
import Testing
@testable import AEMPCR

/// Real Debian binaries end to end: Debian's tboot.gz and Xen 4.17 (downloaded, not installed)
/// through `aem-pcr predict`, checked against lcp2_mlehash and a python3 reference.
@Suite struct DebianIntegrationTests {
    /// Whether Debian's Xen can be had (fetched once, then cached).
    static var haveDebianXen: Bool {
        (try? run("/bin/bash", [Repo.path("Tests/Scripts/fetch-debian-xen.sh")]).status) == 0
    }

    static func debianXen() throws -> String? {
        let r = try run("/bin/bash", [Repo.path("Tests/Scripts/fetch-debian-xen.sh")])
        if r.status != 0 {
            Issue.record("could not fetch Debian's Xen: \(r.stderr)")  // the test's trait ran it: the reference must be there
            return nil
        }
        return r.stdout.trimmingCharacters(in: .whitespacesAndNewlines)
    }

    @Test(.needsTool("lcp2_mlehash", package: "tboot"), .needsDebianTboot,
          .needs("Debian's xen-hypervisor-4.17-amd64 (apt-get download failed)", haveDebianXen))
    func predictDebianXenTPM12Legacy() throws {
        guard let mlehash = tool("lcp2_mlehash"), let xen = try Self.debianXen() else { return }
        let dir = try tempDir()
        let kernel = dir + "/vmlinuz"
        try write((0..<1_500_000).map { UInt8(truncatingIfNeeded: $0 &* 7 &+ $0 >> 9) }, to: kernel)
        let initrd = dir + "/initrd.img"
        try write((0..<900_000).map { UInt8(truncatingIfNeeded: $0 >> 4) }, to: dir + "/initrd.img")
        try run("/bin/gzip", ["-n", initrd])
        let tbootLine = "placeholder logging=memory,serial"
        let xenLine = "placeholder console=none dom0_mem=min:1024M dom0_mem=max:4096M ucode=scan smt=off"
        let kLine = "placeholder root=/dev/mapper/qubes_dom0-root ro rd.luks.key=/tmp/aem-keyfile rd.luks.crypttab=no"
        let r = try aemPCR(["predict", "--json", "--tpm", "1.2", "--tboot", "/boot/tboot.gz", "--tboot-cmdline", tbootLine,
                            "--module", "\(xen) \(xenLine)", "--module", "\(kernel) \(kLine)",
                            "--module", "\(initrd).gz"])
        #expect(r.status == 0, "\(r.stderr)")
        let json = try JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as! [String: Any]
        let pcrs = (json["pcrs"] as! [String: [String: String]])["sha1"]!

        let mle = try run(mlehash, ["--create", "--alg", "sha1", "--cmdline", tbootLine, "/boot/tboot.gz"])
            .stdout.filter { !$0.isWhitespace }
        let ref = try run("/usr/bin/env", ["python3", Repo.path("Vectors/reference_legacy.py"), mle,
                                           "\(xen)::\(xenLine)", "\(kernel)::\(kLine)", "\(initrd).gz::"])
        #expect(ref.status == 0, "\(ref.stderr)")
        let expected = Dictionary(uniqueKeysWithValues: tsvRows(ref.stdout.replacingOccurrences(of: " ", with: "\t")).map { ($0[0], $0[1]) })
        #expect(pcrs["18"] == expected["18"])
        #expect(pcrs["19"] == expected["19"])
        #expect(pcrs["17"] == nil)
        let incomplete = json["incomplete"] as! [[String: Any]]
        #expect(incomplete.count == 1 && incomplete[0]["pcr"] as? Int == 17)
    }
}
