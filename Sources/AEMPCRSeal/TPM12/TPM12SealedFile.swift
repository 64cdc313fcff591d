// SPDX-License-Identifier: Apache-2.0
import AEMPCR

/// What a `tpm_sealdata` file was sealed to, read without a TPM: the release PCR selection,
/// localities and TPM_COMPOSITE_HASH from its sealed key (TPM_STORED_DATA12 with a
/// TPM_PCR_INFO_LONG, or TPM 1.1's TPM_STORED_DATA with a TPM_PCR_INFO; TPM Main Part 2, 9.1,
/// 9.3, 8.3, 8.4). With live or predicted PCR values, `check-boot` can say whether a boot
/// opens the file, and which PCRs it was sealed to. Nothing here needs a secret: the blob's
/// encrypted part is not read.
public struct TPM12SealedFile: Sendable, Equatable {
    /// PCRs whose values are checked at release, ascending.
    public let releasePCRs: [UInt32]
    /// Localities allowed at release (bit n: locality n); `nil` for a TPM_PCR_INFO (any).
    public let localityAtRelease: UInt8?
    /// TPM_COMPOSITE_HASH of the release PCRs' values the TPM compares at TPM_Unseal.
    public let digestAtRelease: [UInt8]

    /// Reads a file in tpm_sealdata's format. Errors name the line or byte offset.
    public init(parsing file: [UInt8]) throws {
        let sealed = try Self.sealedKeyBlob(file)
        var r = Reader(bytes: sealed)
        let tag = try r.u16("tag")
        if tag == 0x0016 {  // TPM_TAG_STORED_DATA12: tag, et, sealInfoSize, TPM_PCR_INFO_LONG
            _ = try r.u16("et")
            let size = try r.u32("sealInfoSize")
            guard size > 0 else { throw Self.bad("the sealed key is bound to no PCR (sealInfoSize 0)") }
            let infoStart = r.offset
            guard try r.u16("TPM_PCR_INFO_LONG tag") == 0x0006 else {
                throw Self.bad("byte \(infoStart) of the sealed key: not a TPM_PCR_INFO_LONG")
            }
            _ = try r.bytes(1, "localityAtCreation")
            localityAtRelease = try r.bytes(1, "localityAtRelease")[0]
            _ = try r.selection("creationPCRSelection")
            releasePCRs = try r.selection("releasePCRSelection")
            _ = try r.bytes(20, "digestAtCreation")
            digestAtRelease = try r.bytes(20, "digestAtRelease")
            guard r.offset - infoStart == Int(size) else {
                throw Self.bad("sealInfoSize \(size) disagrees with the TPM_PCR_INFO_LONG read "
                    + "(\(r.offset - infoStart) bytes)")
            }
        } else if tag == 0x0101 {  // TPM_STORED_DATA: version 1.1.0.0, sealInfoSize, TPM_PCR_INFO
            guard try r.u16("version") == 0 else { throw Self.bad("the sealed key's version is not 1.1.0.0") }
            let size = try r.u32("sealInfoSize")
            guard size > 0 else { throw Self.bad("the sealed key is bound to no PCR (sealInfoSize 0)") }
            let infoStart = r.offset
            releasePCRs = try r.selection("pcrSelection")
            digestAtRelease = try r.bytes(20, "digestAtRelease")
            _ = try r.bytes(20, "digestAtCreation")
            localityAtRelease = nil
            guard r.offset - infoStart == Int(size) else {
                throw Self.bad("sealInfoSize \(size) disagrees with the TPM_PCR_INFO read "
                    + "(\(r.offset - infoStart) bytes)")
            }
        } else {
            throw Self.bad("the sealed key is neither a TPM_STORED_DATA12 nor a TPM_STORED_DATA "
                + "(tag 0x\(String(tag, radix: 16)))")
        }
    }

    /// Whether these PCR values (index → 20-byte value; extra PCRs ignored) open the file;
    /// `nil` when a release PCR has no value. A file bound to no PCR is released by any.
    public func isReleased(by values: [UInt32: [UInt8]]) -> Bool? {
        if releasePCRs.isEmpty { return true }
        var selected = [UInt32: [UInt8]]()
        for i in releasePCRs {
            guard let v = values[i] else { return nil }
            selected[i] = v
        }
        return TPM12Composite.digest(selected) == digestAtRelease
    }

    static func bad(_ reason: String) -> CodedError { CodedError(.tpm12SealedFileInvalid, reason) }

    /// The ENC KEY section's bytes, after checking the frame line by line.
    static func sealedKeyBlob(_ file: [UInt8]) throws -> [UInt8] {
        let lines = file.split(separator: UInt8(ascii: "\n"), omittingEmptySubsequences: false)
        func line(_ n: Int) -> String { n < lines.count ? String(decoding: lines[n], as: UTF8.self) : "" }
        let frame = ["-----BEGIN TSS-----", "-----TSS KEY-----"]
        for (n, expected) in frame.enumerated() where line(n) != expected {
            throw bad("line \(n + 1): not a tpm_sealdata file (\(expected) expected)")
        }
        var n = 2
        while n < lines.count && line(n) != "-----ENC KEY-----" { n += 1 }
        guard n < lines.count else { throw bad("no -----ENC KEY----- line") }
        n += 1
        guard line(n) == "Symmetric Key: AES-256-CBC" else {
            throw bad("line \(n + 1): Symmetric Key: AES-256-CBC expected")
        }
        n += 1
        var text = [UInt8]()
        while n < lines.count && line(n) != "-----ENC DAT-----" {
            guard lines[n].count <= 76 else { throw bad("line \(n + 1): a base64 line longer than 76") }
            text += lines[n]
            n += 1
        }
        guard n < lines.count else { throw bad("no -----ENC DAT----- line") }
        guard lines.contains(where: { String(decoding: $0, as: UTF8.self) == "-----END TSS-----" }) else {
            throw bad("no -----END TSS----- line")
        }
        guard let blob = base64Decode(text) else { throw bad("the sealed key (ENC KEY) is not valid base64") }
        return blob
    }

    /// Strict base64: the standard alphabet, `=` padding only at the end, length a multiple of 4.
    static func base64Decode(_ text: [UInt8]) -> [UInt8]? {
        guard text.count % 4 == 0 else { return nil }
        func value(_ c: UInt8) -> UInt32? {
            switch c {
            case UInt8(ascii: "A")...UInt8(ascii: "Z"): return UInt32(c - UInt8(ascii: "A"))
            case UInt8(ascii: "a")...UInt8(ascii: "z"): return UInt32(c - UInt8(ascii: "a") + 26)
            case UInt8(ascii: "0")...UInt8(ascii: "9"): return UInt32(c - UInt8(ascii: "0") + 52)
            case UInt8(ascii: "+"): return 62
            case UInt8(ascii: "/"): return 63
            default: return nil
            }
        }
        var out = [UInt8]()
        out.reserveCapacity(text.count / 4 * 3)
        var i = 0
        while i < text.count {
            let last = i + 4 == text.count
            let pad = last ? text[i..<i + 4].reversed().prefix { $0 == UInt8(ascii: "=") }.count : 0
            guard pad <= 2 else { return nil }
            var v: UInt32 = 0
            for j in 0..<4 {
                if j >= 4 - pad { v <<= 6; continue }
                guard let d = value(text[i + j]) else { return nil }
                v = v << 6 | d
            }
            out.append(UInt8(v >> 16 & 0xFF))
            if pad < 2 { out.append(UInt8(v >> 8 & 0xFF)) }
            if pad < 1 { out.append(UInt8(v & 0xFF)) }
            i += 4
        }
        return out
    }

    /// Big-endian reads that check what remains first.
    struct Reader {
        let bytes: [UInt8]
        var offset = 0

        mutating func bytes(_ n: Int, _ what: String) throws -> [UInt8] {
            guard n <= bytes.count - offset else {
                throw TPM12SealedFile.bad("byte \(offset) of the sealed key: \(what) needs \(n) bytes, "
                    + "\(bytes.count - offset) remain")
            }
            defer { offset += n }
            return Array(bytes[offset..<offset + n])
        }

        mutating func u16(_ what: String) throws -> UInt16 {
            let b = try bytes(2, what)
            return UInt16(b[0]) << 8 | UInt16(b[1])
        }

        mutating func u32(_ what: String) throws -> UInt32 {
            let b = try bytes(4, what)
            return b.reduce(0) { $0 << 8 | UInt32($1) }
        }

        /// TPM_PCR_SELECTION: `u16 sizeOfSelect`, bitmap; the PCRs selected, ascending.
        mutating func selection(_ what: String) throws -> [UInt32] {
            let start = offset
            let size = try u16("\(what) size")
            guard size <= 3 else {
                throw TPM12SealedFile.bad("byte \(start) of the sealed key: \(what) of \(size) bytes "
                    + "(a TPM 1.2 has 24 PCRs: 3)")
            }
            let map = try bytes(Int(size), what)
            var pcrs = [UInt32]()
            for (n, byte) in map.enumerated() {
                for bit in 0..<8 where byte & (1 << bit) != 0 { pcrs.append(UInt32(n * 8 + bit)) }
            }
            return pcrs
        }
    }
}
