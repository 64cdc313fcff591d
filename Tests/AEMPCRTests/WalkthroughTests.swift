// SPDX-License-Identifier: Apache-2.0
import Foundation
import Testing

/// examples/simulated-update.sh, the README's "Try it on a software TPM" (issue 21, item 4): the
/// whole update story on swtpm, run as a newcomer runs it; its key lines checked, and nothing
/// left behind. The example logs in Vectors/example are those of its launches.
@Suite(.serialized) struct WalkthroughTests {
    static func run(_ family: String) throws -> ProcessResult {
        let before = try FileManager.default.contentsOfDirectory(atPath: NSTemporaryDirectory()).filter { $0.hasPrefix("aem-pcr-walkthrough.") }
        let r = try AEMPCRTests.run("/bin/bash", [Repo.path("examples/simulated-update.sh"), family], cwd: "/", env: ["AEM_PCR": Repo.binary])
        // everything it made is gone, nothing it started still runs
        let after = try FileManager.default.contentsOfDirectory(atPath: NSTemporaryDirectory()).filter { $0.hasPrefix("aem-pcr-walkthrough.") }
        #expect(after == before, "left behind: \(Set(after).subtracting(before))")
        let ps = try AEMPCRTests.run("/bin/ps", ["-eo", "args"])
        #expect(!ps.stdout.contains("aem-pcr-walkthrough."), "\(ps.stdout)")
        return r
    }

    /// The lines a reader follows, in order, for one family.
    static func expectStory(_ out: String, _ family: String, sourceLocation: SourceLocation = #_sourceLocation) {
        let f = flat(out)
        let steps = [
            "== TPM \(family): boot A", "AEM's unseal shows the secret: Hello from AEM: the pictures of my cat",
            "== TPM \(family): the update", "$ aem-pcr diff",
            // Xen: PCR18 on a TPM 1.2 (legacy mapping), PCR17 on a TPM 2.0 (DA)
            family == "1.2" ? "PCR18 sha1 CHANGES" : "PCR17 sha256 CHANGES", "$ aem-pcr seal",
            "Files on the AEM device in", "AEM's unseal refuses",
            "== TPM \(family): reboot into the new files", "AEM's unseal shows the secret: Hello from AEM: the pictures of my cat",
            "The boot is the one sealed for: aem", "Removed the previous set:",
            "== TPM \(family): an evil maid changes the initramfs", "AEM's unseal refuses",
            "The boot is NOT the one sealed for: aem", "PCR19: module 2:",
        ]
        var rest = f[...]
        let start = f.range(of: "== TPM \(family): ")
        if let start { rest = f[start.lowerBound...] }
        for step in steps {
            guard let r = rest.range(of: step) else {
                Issue.record("no '\(step)' after the steps before it in:\n\(out)", sourceLocation: sourceLocation)
                return
            }
            rest = rest[r.upperBound...]
        }
    }

    @Test(.needsSoftwareTPM, .needsTool("openssl", package: "openssl"), .needsTool("xxd", package: "xxd"))
    func tpm20StoryRunsOnASoftwareTPM() throws {
        let r = try Self.run("2.0")
        #expect(r.status == 0, "\(r.stdout)\(r.stderr)")
        Self.expectStory(r.stdout, "2.0")
        #expect(r.stdout.contains("== Done:"))
    }

    @Test(.needsTPM12) func tpm12StoryRunsOnASoftwareTPM() throws {
        let r = try Self.run("1.2")
        #expect(r.status == 0, "\(r.stdout)\(r.stderr)")
        Self.expectStory(r.stdout, "1.2")
        #expect(flat(r.stdout).contains("Verdict: the digestAtRelease of secret.txt.sealed2 equals"), "\(r.stdout)")
    }

    /// The shipped example logs are what the walkthrough's launches write (its boot A): the TPM 1.2
    /// container byte for byte, and the TPM 2.0 log of the default simulated launch.
    @Test func exampleLogsAreTheSimulatedLaunches() throws {
        let dir = try tempDir()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let r12 = try AEMPCRTests.run("/usr/bin/env", ["python3", Repo.path("Tests/Scripts/simulate-drtm-boot-tpm12.py"), "--log", dir + "/12.log"])
        #expect(r12.status == 0, "\(r12.stderr)")
        #expect(try Data(contentsOf: URL(fileURLWithPath: dir + "/12.log")) == Data(contentsOf: URL(fileURLWithPath: Repo.path("Vectors/example/drtm-tpm12.log"))))
        let r20 = try AEMPCRTests.run("/usr/bin/env", ["python3", Repo.path("Tests/Scripts/simulate-drtm-boot.py"), "--no-tpm", "--log", dir + "/20.log"])
        #expect(r20.status == 0, "\(r20.stderr)")
        #expect(try Data(contentsOf: URL(fileURLWithPath: dir + "/20.log")) == Data(contentsOf: URL(fileURLWithPath: Repo.path("Vectors/example/drtm-tpm20.log"))))
        let readme = try readText("README.md")
        #expect(readme.contains("## Try it on a software TPM") && readme.contains("examples/simulated-update.sh")
                && readme.contains("Vectors/example/drtm-tpm20.log") && readme.contains("drtm-tpm12.log"))
        // aem-pcr reads them as the formats they are
        let show12 = try aemPCR(["log", "show", "Vectors/example/drtm-tpm12.log"])
        #expect(show12.status == 0 && show12.stdout.contains("format tpm12-container"), "\(show12.stdout)\(show12.stderr)")
        let show20 = try aemPCR(["log", "show", "Vectors/example/drtm-tpm20.log"])
        #expect(show20.status == 0 && show20.stdout.contains("format tpm20-tcg"), "\(show20.stdout)\(show20.stderr)")
    }
}
