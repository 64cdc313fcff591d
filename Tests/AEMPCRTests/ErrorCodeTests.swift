// SPDX-License-Identifier: Apache-2.0
import Foundation
import Testing
@testable import AEMPCR

/// The error codes `--verbose` prints: declared once each (as `CodedError.Code` static members,
/// in the layer that throws them), unique, never renamed silently, and listed in aem-pcr(8).
@Suite struct ErrorCodeTests {
    /// Every code string, as users see it. A rename or removal fails here: change this list only
    /// together with the manual and a note in the release, since scripts match on these.
    static let pinned: [String] = [
        // Input files
        "file-not-found", "file-not-readable", "file-is-directory", "file-read-failed",
        "gzip-truncated", "gzip-corrupt", "gzip-trailing-data", "compression-unsupported", "image-too-large",
        // tboot
        "tboot-not-elf32", "tboot-bad-elf", "tboot-no-mle-header", "tboot-bad-mle-header", "tboot-cmdline-too-long",
        "policy-malformed", "bank-unsupported", "policy-no-entry-for-module",
        // Event logs and TXT heap dumps
        "log-truncated", "log-size-past-end", "log-undeclared-algorithm", "log-count-too-large",
        "log-bad-digest-list", "log-unknown-algorithm", "log-bad-header", "log-unknown-format",
        "log-legacy-mismatch", "log-duplicate-event", "log-pcr-invalid", "log-text-malformed",
        "heap-truncated", "heap-loop", "heap-overrun", "heap-no-log", "heap-bad-section",
        "slaunch-no-log-range", "slaunch-log-range-bad",
        // Physical memory
        "mem-not-found", "mem-permission-denied", "mem-blocked", "mem-read-failed", "txt-absent",
        "txt-heap-registers-bad",
        // GRUB
        "grub-syntax", "grub-unsupported", "grub-entry-not-found", "grub-entry-without-tboot", "grub-bad-loader-line",
        // PCR values
        "pcr-file-syntax", "pcr-file-bad-digest", "pcr-file-duplicate", "pcr-file-empty",
        // Policies and sealed objects
        "policy-selection", "policy-missing-value", "sealed-object-invalid",
        // Predictions
        "log-incomplete", "options-contradict-log", "log-not-verified", "pcr-not-launched", "pcrs-incomplete",
        "policy-differs-from-log", "replacement-invalid", "secure-launch-not-predicted",
        // The TPM
        "tpm-no-device", "tpm-permission", "tpm-unreachable", "tpm-bank-not-active", "tpm-lockout",
        "tpm-not-started", "tpm-busy", "tpm-pcrs-changing", "tpm-error", "tpm12-pcrs", "tpm-family",
        "tpm-tcti-refused",
        // Sealing, TPM 1.2 through trousers
        "seal-io", "seal-crypto", "seal-layout", "seal-refused",
        "luks-libcryptsetup-missing", "luks-header-not-found", "luks-permission", "luks-not-luks", "luks-backup-failed", "luks-uuid-not-on-cmdline",
        "tpm12-libtspi-missing", "tpm12-tcsd-unreachable", "tpm12-no-owner", "tpm12-srk-auth-failed",
        "tpm12-disabled", "tpm12-bad-pcr", "tpm12-tss-failed", "tpm12-crypto-failed", "tpm12-sealed-file-invalid",
        // The command line
        "usage", "no-arguments", "output-write-failed",
    ]

    /// Every `.swift` file under Sources, with its text.
    static func sources() throws -> [(path: String, text: String)] {
        let root = Repo.path("Sources")
        let files = FileManager.default.enumerator(atPath: root)!.compactMap { $0 as? String }.filter { $0.hasSuffix(".swift") }
        return try files.sorted().map { ($0, try String(contentsOfFile: root + "/" + $0, encoding: .utf8)) }
    }

    /// The codes the sources declare: `static let name = Self("code")` in an extension of
    /// `CodedError.Code`, in source order.
    static func declared() throws -> [(name: String, code: String, file: String)] {
        let re = try NSRegularExpression(pattern: #"static let (\w+) = Self\("([^"]*)"\)"#)
        var out = [(name: String, code: String, file: String)]()
        for (path, text) in try sources() {
            for m in re.matches(in: text, range: NSRange(text.startIndex..., in: text)) {
                out.append((String(text[Range(m.range(at: 1), in: text)!]), String(text[Range(m.range(at: 2), in: text)!]), path))
            }
        }
        return out
    }

    /// The codes aem-pcr(8) lists: `.It Li code` in its DIAGNOSTICS section.
    static func manual() throws -> [String] {
        let page = try readText("man/aem-pcr.8")
        guard let start = page.range(of: "\n.Sh DIAGNOSTICS\n") else { return [] }
        let rest = page[start.upperBound...]
        let section = rest.range(of: "\n.Sh ").map { rest[..<$0.lowerBound] } ?? rest
        return section.split(separator: "\n").filter { $0.hasPrefix(".It Li ") }.map { String($0.dropFirst(7)) }
    }

    @Test func sourcesDeclareExactlyThePinnedCodes() throws {
        let codes = try Self.declared().map(\.code)
        #expect(codes.count == Self.pinned.count, "\(codes.count) declared, \(Self.pinned.count) pinned")
        #expect(Set(codes).subtracting(Self.pinned).sorted() == [], "declared, not pinned")
        #expect(Set(Self.pinned).subtracting(codes).sorted() == [], "pinned, not declared")
    }

    @Test func everyCodeIsUniqueAndNamedAfterItsString() throws {
        let declared = try Self.declared()
        let repeated = Dictionary(grouping: declared, by: \.code).filter { $0.value.count > 1 }
        #expect(repeated.isEmpty, "declared twice: \(repeated.mapValues { $0.map(\.file) })")
        #expect(Set(Self.pinned).count == Self.pinned.count, "the pinned list repeats a code")
        for d in declared {
            #expect(d.code.allSatisfy { $0.isLowercase || $0.isNumber || $0 == "-" } && !d.code.isEmpty, "\(d.code)")
            // `gzipTruncated` is `gzip-truncated`: either finds the other.
            #expect(d.name.lowercased() == d.code.replacingOccurrences(of: "-", with: ""), "\(d.file): \(d.name) for '\(d.code)'")
        }
    }

    @Test func manualListsExactlyTheDeclaredCodes() throws {
        let listed = try Self.manual()
        let declared = try Self.declared().map(\.code)
        #expect(!listed.isEmpty, "aem-pcr(8) has no DIAGNOSTICS section listing the codes")
        #expect(listed.count == Set(listed).count, "the manual lists a code twice")
        #expect(Set(declared).subtracting(listed).sorted() == [], "declared, not in aem-pcr(8)")
        #expect(Set(listed).subtracting(declared).sorted() == [], "in aem-pcr(8), not declared")
    }

    /// A code nothing throws is one the manual would promise for nothing.
    @Test func everyCodeIsThrownSomewhere() throws {
        let sources = try Self.sources()
        for d in try Self.declared() {
            let used = sources.contains { s in
                s.text.contains(".\(d.name)") || (s.text.contains("\"\(d.code)\"") && !s.text.contains("Self(\"\(d.code)\")"))
            }
            #expect(used, "\(d.file): \(d.code) is declared and never used")
        }
    }

    /// The value type behind the codes: equality on the code alone (as swift-asn1's `ASN1Error`),
    /// and the one-line forms the old per-domain types printed.
    @Test func equalityIsOnTheCodeAndTheMessageNamesWhere() {
        #expect(CodedError(.grubSyntax, source: "a.cfg", line: 1, "x") == CodedError(.grubSyntax, "y"))
        #expect(CodedError(.grubSyntax, "x") != CodedError(.grubUnsupported, "x"))
        #expect(CodedError(.grubSyntax, source: "a.cfg", line: 3, "bad").description == "a.cfg:3: bad")
        #expect(CodedError(.logTextMalformed, source: "log.txt", offset: 40, line: 3, "bad").description == "log.txt line 3 (byte 40): bad")
        #expect(CodedError(.logTruncated, source: "log.bin", offset: 40, "bad").description == "log.bin at byte 40: bad")
        #expect(CodedError(.policyMalformed, offset: 2, "bad").description == "at byte 2: bad")
        #expect(CodedError(.memBlocked, source: "/dev/mem", address: 0xFED3_0300, "bad").description == "/dev/mem at physical 0xfed30300: bad")
        #expect(CodedError(.pcrsIncomplete, "bad").description == "bad")
        #expect(CodedError(.gzipTruncated, "x").errorCode == "gzip-truncated")
    }
}
