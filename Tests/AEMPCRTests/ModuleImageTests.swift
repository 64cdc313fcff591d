// SPDX-License-Identifier: Apache-2.0
import Foundation
import Testing
@testable import AEMPCR

/// GRUB's loading rule and gzip errors.
@Suite struct ModuleImageTests {
    static func sample(_ n: Int) -> [UInt8] { (0..<n).map { UInt8(truncatingIfNeeded: ($0 &* 2654435761) >> 13) } }

    func python(_ script: String, _ args: [String]) throws -> String {
        try run("/usr/bin/env", ["python3", "-c", script] + args).stdout.trimmingCharacters(in: .whitespacesAndNewlines)
    }

    /// Gzip is loaded gunzipped, unless --nounzip; a raw file as it is. Expected digests by python3.
    @Test func gunzipRuleAgainstPython() throws {
        let dir = try tempDir()
        try write(Self.sample(3_000_000), to: dir + "/img")
        try run("/bin/gzip", ["-n", "-k", dir + "/img"])
        let py = "import hashlib,sys; print(hashlib.sha256(open(sys.argv[1],'rb').read()).hexdigest())"
        let raw = try python(py, [dir + "/img"])
        let gz = try python(py, [dir + "/img.gz"])
        let unzipped = try ModuleImage.hash(path: dir + "/img.gz", unzip: true, banks: [.sha256])
        #expect(unzipped.encoding == .gzip && unzipped.digests[.sha256]!.hex == raw && unzipped.imageSize == 3_000_000)
        let kept = try ModuleImage.hash(path: dir + "/img.gz", unzip: false, banks: [.sha256])
        #expect(kept.encoding == .raw && kept.digests[.sha256]!.hex == gz)
        let plain = try ModuleImage.hash(path: dir + "/img", unzip: true, banks: [.sha256])
        #expect(plain.encoding == .raw && plain.digests[.sha256]!.hex == raw)
    }

    /// Module measurement M = H(H(cmdline) || H(image)) in all four banks, against python3.
    @Test func moduleMeasurementAllBanks() throws {
        let dir = try tempDir()
        try write(Self.sample(200_000), to: dir + "/x")
        try run("/bin/gzip", ["-n", dir + "/x"])
        let line = "placeholder console=none dom0_mem=min:1024M \"q\""
        let py = """
            import hashlib,gzip,sys
            img=gzip.open(sys.argv[1]).read()
            for a in ['sha1','sha256','sha384','sha512']:
                h=lambda b: hashlib.new(a,b).digest()
                print(a, hashlib.new(a, h(sys.argv[2].encode())+h(img)).hexdigest())
            """
        let expected = try python(py, [dir + "/x.gz", line])
        let m = try ModuleMeasurement.measure(BootSpec.Module(path: dir + "/x.gz", cmdline: line), banks: HashAlgorithm.computable)
        let got = HashAlgorithm.computable.map { "\($0) \(m.measurements[$0]!.hex)" }.joined(separator: "\n")
        #expect(got == expected)
    }

    @Test func gzipErrorsNameFileAndOffset() throws {
        let dir = try tempDir()
        try write(Self.sample(500_000), to: dir + "/x")
        try run("/bin/gzip", ["-n", dir + "/x"])
        let gz = [UInt8](try Data(contentsOf: URL(fileURLWithPath: dir + "/x.gz")))
        try write(Array(gz.prefix(gz.count / 2)), to: dir + "/trunc.gz")
        #expect { try ModuleImage.hash(path: dir + "/trunc.gz", unzip: true, banks: [.sha1]) } throws: { e in
            guard let f = e as? CodedError else { return false }
            return f.code == .gzipTruncated && f.source?.hasSuffix("trunc.gz") == true && f.offset != nil
        }
        var corrupt = gz
        for i in 200..<260 { corrupt[i] ^= 0x5A }
        try write(corrupt, to: dir + "/bad.gz")
        #expect { try ModuleImage.hash(path: dir + "/bad.gz", unzip: true, banks: [.sha1]) } throws: { e in
            (e as? CodedError)?.code == .gzipCorrupt
        }
        try write(gz + gz, to: dir + "/two.gz")
        #expect { try ModuleImage.hash(path: dir + "/two.gz", unzip: true, banks: [.sha1]) } throws: { e in
            (e as? CodedError)?.code == .gzipTrailingData
        }
        #expect { try ModuleImage.hash(path: dir + "/missing", unzip: true, banks: [.sha1]) } throws: { e in
            (e as? CodedError)?.code == .fileNotFound
        }
        #expect { try ModuleImage.hash(path: dir, unzip: true, banks: [.sha1]) } throws: { e in
            (e as? CodedError)?.code == .fileIsDirectory
        }
        // With --nounzip the same truncated file is just bytes.
        #expect(try ModuleImage.hash(path: dir + "/trunc.gz", unzip: false, banks: [.sha1]).encoding == .raw)
    }

    /// A gzip magic with a header GRUB's gzio refuses (method ≠ 8) is loaded raw, as GRUB does.
    @Test func headerGrubRefusesIsRaw() throws {
        let dir = try tempDir()
        try write([0x1F, 0x8B, 0x07, 0, 0, 0, 0, 0, 0, 3] + Self.sample(100), to: dir + "/odd")
        #expect(try ModuleImage.hash(path: dir + "/odd", unzip: true, banks: [.sha1]).encoding == .raw)
        try write([0xFD, 0x37, 0x7A, 0x58, 0x5A, 0x00] + Self.sample(100), to: dir + "/x.xz")
        #expect { try ModuleImage.hash(path: dir + "/x.xz", unzip: true, banks: [.sha1]) } throws: { e in
            (e as? CodedError)?.code == .compressionUnsupported
        }
    }

    /// SINIT ACMs are recognised by content (tboot acmod.c), not by name.
    @Test func sinitRecognisedByContent() {
        var acm = [UInt8](repeating: 0, count: 8192)
        func put32(_ o: Int, _ v: UInt32) { for k in 0..<4 { acm[o + k] = UInt8(truncatingIfNeeded: v >> (8 * k)) } }
        acm[0] = 2
        put32(16, 0x8086)
        put32(24, 8192 / 4)
        put32(4, 0xA1)
        put32(124, 0x8F)
        let info = (0xA1 + 0x8F) * 4
        acm[info..<(info + 16)] = TXTModule.acmUUID[...]
        acm[info + 16] = 1
        acm[info + 17] = 3
        #expect(TXTModule.classify(prefix: acm, size: 8192) == .sinitACM)
        var biosACM = acm
        biosACM[info + 16] = 0  // BIOS ACM, not SINIT
        #expect(TXTModule.classify(prefix: biosACM, size: 8192) == nil)
        #expect(TXTModule.classify(prefix: acm, size: 4096) == nil)  // declared size larger than file
        #expect(TXTModule.classify(prefix: Array("Intel(R) TXT LCP_POLICY_DATA\0\0\0\0".utf8), size: 64) == .lcpPolicyData)
    }
}
