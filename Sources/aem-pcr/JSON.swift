// SPDX-License-Identifier: Apache-2.0
import AEMPCR

/// A small JSON writer with keys in the order given: output stays stable across runs.
indirect enum JSON {
    case string(String)
    case int(Int)
    case bool(Bool)
    case null
    case array([JSON])
    case object([(String, JSON)])

    func render(indent: Int = 0, pretty: Bool = true) -> String {
        let nl = pretty ? "\n" : ""
        let pad = pretty ? String(repeating: "  ", count: indent + 1) : ""
        let end = pretty ? String(repeating: "  ", count: indent) : ""
        switch self {
        case .string(let s): return JSON.quote(s)
        case .int(let i): return String(i)
        case .bool(let b): return b ? "true" : "false"
        case .null: return "null"
        case .array(let a):
            if a.isEmpty { return "[]" }
            return "[" + nl + a.map { pad + $0.render(indent: indent + 1, pretty: pretty) }.joined(separator: "," + nl) + nl + end + "]"
        case .object(let o):
            if o.isEmpty { return "{}" }
            return "{" + nl + o.map { pad + JSON.quote($0.0) + ": " + $0.1.render(indent: indent + 1, pretty: pretty) }
                .joined(separator: "," + nl) + nl + end + "}"
        }
    }

    /// `{"<bank>": {"<pcr>": "<hex>"}}` for the given banks, PCRs in order: the one shape every
    /// command prints PCR values in (and `--pcrs` reads back).
    static func pcrs(_ values: PCRValues, banks: [HashAlgorithm]) -> JSON {
        .object(banks.map { bank in
            (bank.description, .object(values.pcrs(in: bank).map { (String($0.rawValue), .string(values[bank, $0]!.hex)) }))
        })
    }

    /// `{"<bank>": "<hex>"}`, banks in TCG order.
    static func digests<S: Sequence>(_ digests: S) -> JSON where S.Element == Digest {
        .object(digests.sorted { $0.algorithm < $1.algorithm }.map { ($0.algorithm.description, .string($0.hex)) })
    }

    static func quote(_ s: String) -> String {
        var out = "\""
        for u in s.unicodeScalars {
            switch u {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            case "\r": out += "\\r"
            case "\t": out += "\\t"
            default:
                if u.value < 0x20 || (u.value >= 0x7F && u.value < 0xA0) {
                    let h = String(u.value, radix: 16)
                    out += "\\u" + String(repeating: "0", count: 4 - h.count) + h
                } else {
                    out.unicodeScalars.append(u)
                }
            }
        }
        return out + "\""
    }
}
