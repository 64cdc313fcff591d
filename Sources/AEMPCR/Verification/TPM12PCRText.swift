// SPDX-License-Identifier: Apache-2.0
/// The Linux kernel's text of a TPM 1.2's PCRs (`/sys/class/tpm/tpm0/pcrs`, older kernels
/// `…/device/pcrs`): one line per PCR, `PCR-17: AA BB … ` — two upper-case hex digits and a
/// space for each of the 20 bytes (drivers/char/tpm/tpm-sysfs.c, `pcrs_show`). Parsed strictly:
/// a garbled line is an error naming it, never skipped. Values go into the SHA-1 bank.
public enum TPM12PCRText {
    public static func parse(_ bytes: [UInt8], source: String) throws -> PCRValues {
        var values = PCRValues()
        var lineNo = 0
        var seen = Set<UInt32>()
        for raw in bytes.split(separator: UInt8(ascii: "\n"), omittingEmptySubsequences: false) {
            lineNo += 1
            var line = Array(raw)
            if line.last == UInt8(ascii: "\r") { line.removeLast() }
            if line.isEmpty { continue }
            let text = String(decoding: line, as: UTF8.self)
            func bad(_ why: String) -> CodedError {
                CodedError(.pcrFileSyntax, source: source, line: lineNo, "\(why) in '\(printable(text))' (expected 'PCR-17: AA BB … ' with 20 bytes)")
            }
            // "PCR-" two decimal digits ": "
            guard line.count >= 8, Array(line[0..<4]) == Array("PCR-".utf8),
                  line[4].isDigit, line[5].isDigit, line[6] == UInt8(ascii: ":"), line[7] == UInt8(ascii: " ") else {
                throw bad("not a PCR line")
            }
            let index = UInt32(line[4] - 48) * 10 + UInt32(line[5] - 48)
            guard index < 24 else { throw bad("PCR\(index) does not exist on a TPM 1.2") }
            guard seen.insert(index).inserted else {
                throw CodedError(.pcrFileDuplicate, source: source, line: lineNo, "PCR-\(index) appears twice")
            }
            var rest = line[8...]
            if rest.last == UInt8(ascii: " ") { rest.removeLast() }
            let groups = rest.split(separator: UInt8(ascii: " "), omittingEmptySubsequences: false)
            guard groups.count == 20 else { throw bad("\(groups.count) bytes instead of 20") }
            var digest = [UInt8]()
            for g in groups {
                guard g.count == 2, let hi = g.first!.hexValue, let lo = g.last!.hexValue else {
                    throw bad("'\(printable(String(decoding: g, as: UTF8.self)))' is not a byte in hex")
                }
                digest.append(hi << 4 | lo)
            }
            values[.sha1, PCRIndex(rawValue: index)] = Digest(.sha1, bytes: digest)!
        }
        if values.banks.isEmpty { throw CodedError(.pcrFileEmpty, source: source, "no PCR lines found") }
        return values
    }
}

private extension UInt8 {
    var isDigit: Bool { self >= 48 && self <= 57 }
    /// The kernel prints upper case; lower case is accepted as the same byte.
    var hexValue: UInt8? {
        switch self {
        case 48...57: return self - 48
        case 65...70: return self - 55
        case 97...102: return self - 87
        default: return nil
        }
    }
}
