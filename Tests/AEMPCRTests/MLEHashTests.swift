// SPDX-License-Identifier: Apache-2.0
import Foundation
import Testing
@testable import AEMPCR

@Suite struct MLEHashTests {
    static let debianTboot = "/boot/tboot.gz"

    /// Debian's tboot.gz is there (CI installs the tboot package; elsewhere the test is skipped).
    static func haveDebianTboot() -> Bool {
        if FileManager.default.fileExists(atPath: debianTboot) { return true }
        Issue.record("\(debianTboot) missing: .ci/run installs Debian's tboot")  // the test's trait ran it: the reference must be there
        return false
    }

    /// The values lcp2_mlehash printed for Debian 12's tboot.gz (Vectors/lcp2_mlehash-debian12-tboot.tsv).
    @Test(.needsDebianTboot) func recordedLcp2MlehashValues() throws {
        let text = try readText("Vectors/lcp2_mlehash-debian12-tboot.tsv")
        let recordedSHA = text.split(separator: "\n").first!.split(separator: " ").last.map(String.init)!
        guard Self.haveDebianTboot() else { return }
        // Only meaningful for the same tboot.gz the values were recorded from.
        let actual = try ModuleImage.hash(path: Self.debianTboot, unzip: false, banks: [.sha256]).digests[.sha256]!.hex
        guard actual == recordedSHA else {
            Issue.record("installed \(Self.debianTboot) differs from the recorded one (\(recordedSHA)); see lcp2MlehashLive")
            return
        }
        let image = try MLEImage(path: Self.debianTboot)
        let rows = tsvRows(text)
        #expect(rows.count == 12)
        for r in rows {
            let bank = HashAlgorithm(name: r[0])!
            #expect(try image.hash(cmdline: r[1], banks: [bank])[bank]!.hex == r[2], "\(r[0]) '\(r[1])'")
        }
    }

    /// Runs the real lcp2_mlehash on Debian's tboot.gz for every bank and several command lines.
    @Test(.needsTool("lcp2_mlehash", package: "tboot"), .needsDebianTboot) func lcp2MlehashLive() throws {
        guard let mlehash = tool("lcp2_mlehash"), Self.haveDebianTboot() else { return }
        let image = try MLEImage(path: Self.debianTboot)
        for line in ["", "logging=serial,memory", "placeholder logging=memory,serial",
                     "placeholder logging=vga,serial,memory loglvl=all serial=115200,8n1,0x3f8 min_ram=0x2000000 \"q\""] {
            for bank in HashAlgorithm.computable {
                let r = try run(mlehash, ["--create", "--alg", bank.description, "--cmdline", line, Self.debianTboot])
                #expect(r.status == 0)
                let expected = r.stdout.filter { !$0.isWhitespace }
                #expect(try image.hash(cmdline: line, banks: [bank])[bank]!.hex == expected, "\(bank) '\(line)'")
            }
        }
    }

    /// tboot keeps 511 bytes of its command line (tboot.c); a longer line is cut, not refused.
    @Test(.needsDebianTboot) func longCommandLineIsCutLikeTboot() throws {
        guard Self.haveDebianTboot() else { return }
        let image = try MLEImage(path: Self.debianTboot)
        let long = String(repeating: "a", count: 600)
        let (kept, cut) = image.effectiveCmdline(long)
        #expect(cut && kept.count == 511)
        #expect(try image.hash(cmdline: kept, banks: [.sha1]) != image.hash(cmdline: Array(kept.dropLast()), banks: [.sha1]))
        // A cut through a UTF-8 character keeps the bytes, as tboot's copy does.
        let (multi, cut2) = image.effectiveCmdline(String(repeating: "a", count: 510) + "é")
        #expect(cut2 && multi.count == 511 && multi.last == 0xC3)
        #expect(throws: Never.self) { try image.hash(cmdline: multi, banks: [.sha1]) }
        #expect(throws: CodedError.self) { try image.hash(cmdline: long, banks: [.sha1]) }
    }

    @Test func notATbootImage() throws {
        let dir = try tempDir()
        try write(Array("just text, no ELF".utf8), to: dir + "/t")
        #expect { try MLEImage(path: dir + "/t") } throws: { ($0 as? CodedError)?.code == .tbootNotELF32 }
        // A valid ELF32 with a PT_LOAD but no MLE header.
        var elf = [UInt8](repeating: 0, count: 4096)
        elf[0...3] = [0x7F, 0x45, 0x4C, 0x46]; elf[4] = 1; elf[5] = 1; elf[6] = 1
        elf[16] = 2; elf[18] = 3; elf[28] = 52; elf[42] = 32; elf[44] = 1
        let ph = 52
        elf[ph] = 1                                   // PT_LOAD
        elf[ph + 4] = 0; elf[ph + 5] = 0x01           // offset 0x100
        elf[ph + 14] = 0x80                           // paddr 0x800000
        elf[ph + 17] = 0x0E                           // filesz 0xE00
        elf[ph + 21] = 0x0E                           // memsz 0xE00
        try write(elf, to: dir + "/elf")
        #expect { try MLEImage(path: dir + "/elf") } throws: { e in
            guard let t = e as? CodedError else { return false }
            return t.code == .tbootNoMLEHeader && t.description.contains("/elf")
        }
    }

    /// Issue 13: where lcp2_mlehash and tboot part. Debian's tboot has a 511-byte command-line
    /// slot; tboot keeps the first 511 bytes. lcp2_mlehash agrees up to 510 bytes; from 511 on its
    /// strcpy_s into the slot fails and leaves a NUL followed by bytes 2–511 of the line (python3
    /// models both layouts; lcp2_mlehash's output equals the second). mle-hash says when it cuts.
    @Test func whereLcp2MlehashAndTbootPart() throws {
        guard let mlehash = tool("lcp2_mlehash"), Self.haveDebianTboot() else { return }
        let py = """
            import gzip, struct, hashlib, sys
            img = gzip.open(sys.argv[1]).read()
            phoff, = struct.unpack_from('<I', img, 28); phentsize, phnum = struct.unpack_from('<HH', img, 42)
            out = bytearray()
            for i in range(phnum):
                t, off, va, pa, fsz, msz = struct.unpack_from('<IIIIII', img, phoff + i * phentsize)
                if t == 1: out += img[off:off + fsz] + bytes(msz - fsz)
            uuid = bytes.fromhex('5aac82906f47a7740f5c55a2cb51b642')
            h = next(k for k in range(0, len(out) - 16, 16) if out[k:k + 16] == uuid)
            f = struct.unpack_from('<9I', out, h + 16)
            start, end, cs, ce = f[4], f[5], f[7], f[8]
            def mle(slot):
                b = bytearray(out); b[cs:ce] = slot.ljust(ce - cs, b'\\0')[:ce - cs]
                return hashlib.sha256(bytes(b[start:end])).hexdigest()
            line = sys.argv[2].encode()
            print(ce - cs, mle(line[:511]), mle(b'\\0' + line[1:511]))
            """
        let alphabet = Array("abcdefghijklmnopqrstuvwxyz")
        for n in [510, 511, 512, 600] {
            let line = String((0..<n).map { alphabet[$0 % 26] })
            let model = try run("/usr/bin/env", ["python3", "-c", py, Self.debianTboot, line]).stdout.split(separator: " ").map(String.init)
            #expect(model[0] == "511")
            let tboot = model[1], failedCopy = model[2].trimmingCharacters(in: .whitespacesAndNewlines)
            let lcp = try run(mlehash, ["--create", "--alg", "sha256", "--cmdline", line, Self.debianTboot]).stdout.filter { !$0.isWhitespace }
            let ours = try aemPCR(["mle-hash", "--bank", "sha256", "--cmdline", line, Self.debianTboot])
            #expect(ours.stdout == "sha256 \(tboot)\n", "\(n)")
            if n <= 510 {
                #expect(lcp == tboot, "\(n)")
            } else {
                #expect(lcp != tboot && lcp == failedCopy, "\(n)")
            }
            // Cut (and said so) only when longer than the 511 bytes tboot keeps.
            #expect(ours.stderr == (n > 511 ? "aem-pcr: note: tboot keeps only the first 511 bytes of this \(n)-byte command line; the hash is of those, as SINIT measures them\n" : ""), "\(n)")
            let json = try aemPCR(["mle-hash", "--json", "--bank", "sha256", "--cmdline", line, Self.debianTboot])
            #expect(json.stdout.contains("\"cmdline_truncated\": \(n > 511)"), "\(n)")
        }
    }
}

/// An MLE header that straddles the first 1 MiB of the image once crashed the reader (it read
/// header bytes not yet in memory); now it equals lcp2_mlehash.
@Test(.needsTool("lcp2_mlehash", package: "tboot")) func mleHeaderAcrossTheFirstMiB() throws {
    let dir = try tempDir()
    let r = try run("/usr/bin/env", ["python3", Repo.path("Tests/Scripts/make-tboot-like-elf.py"), dir + "/edge.gz"])
    #expect(r.status == 0, "\(r.stderr)")
    let image = try MLEImage(path: dir + "/edge.gz")
    #expect(image.header.offset == (1 << 20) - 0x1000 - 32)
    guard let mlehash = tool("lcp2_mlehash") else { return }
    for bank in [HashAlgorithm.sha1, .sha256] {
        let ref = try run(mlehash, ["--create", "--alg", bank.description, "--cmdline", "x", dir + "/edge.gz"]).stdout.filter { !$0.isWhitespace }
        #expect(try image.hash(cmdline: "x", banks: [bank])[bank]?.hex == ref)
    }
}
