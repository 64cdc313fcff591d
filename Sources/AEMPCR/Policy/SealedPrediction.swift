// SPDX-License-Identifier: Apache-2.0
/// What `aem-pcr seal` sealed to, saved beside AEM's sealed files so that `check-boot` can say,
/// after the reboot, whether the boot matched and which event did not. Not secret.
///
///     {"format": "aem-pcr-sealed-prediction/1", "label": "aem", "sealed_at": "20261130T042700Z",
///      "selection": "sha256:13,17,18,19", "policy_digest": "…", "key_pub_sha256": "…",
///      "set_files_sha256": {"key.pub": "…", "key.priv": "…", "key.pcrs": "…", "secret.txt.sealed2": "…"},
///      "pcrs": {"sha256": {"13": "…", "17": "…"}, "sha1": {…}},
///      "events": [{"pcr": 17, "type": "0x501", "component": "module 2", "file": "/boot/initramfs-…",
///                  "cmdline_hex": "", "what": "…", "digests": {"sha256": "…"}}]}
///
/// `pcrs` holds the sealed values and the other banks' predicted PCR17-19; `events` the
/// predicted DRTM log in order, the events of `LogPrediction` (`PredictedEvent`): `component`,
/// `file` and `cmdline_hex` for an event measured from the files (absent for one kept from the
/// log, and in records written before they were saved), its explanation, its digests.
public struct SealedPrediction: Sendable, Equatable {
    public static let format = "aem-pcr-sealed-prediction/1"
    public var label: String
    public var sealedAt: String
    public var selection: PCRSelection
    public var policyDigest: Digest
    public var pcrs: PCRValues
    public var events: [PredictedEvent]
    /// SHA-256 of the key.pub written with this prediction: a set AEM has resealed since has
    /// another key.
    public var keyPublicSHA256: Digest?

    /// One file `seal` wrote into the set, and its SHA-256.
    public struct SetFile: Sendable, Equatable {
        public var name: String
        public var sha256: Digest
        public init(name: String, sha256: Digest) {
            self.name = name
            self.sha256 = sha256
        }
    }
    /// Every file `seal` wrote into the set (this record excluded), in the order written: AEM's
    /// unseal needs them as they were. nil in a record written before they were recorded.
    public var setFiles: [SetFile]?

    public init(label: String, sealedAt: String, selection: PCRSelection, policyDigest: Digest, pcrs: PCRValues, events: [PredictedEvent],
                keyPublicSHA256: Digest? = nil, setFiles: [SetFile]? = nil) {
        self.keyPublicSHA256 = keyPublicSHA256
        self.setFiles = setFiles
        self.label = label
        self.sealedAt = sealedAt
        self.selection = selection
        self.policyDigest = policyDigest
        self.pcrs = pcrs
        self.events = events
    }

    /// The predicted log of a `LogPrediction`, with what each event measures.
    public static func events(of p: LogPrediction) -> [PredictedEvent] { p.events }

    public func render() -> String {
        func q(_ s: String) -> String {
            var out = "\""
            for u in s.unicodeScalars {
                switch u {
                case "\"": out += "\\\""
                case "\\": out += "\\\\"
                default:
                    if u.value < 0x20 || u.value == 0x7F {
                        let h = String(u.value, radix: 16)
                        out += "\\u" + String(repeating: "0", count: 4 - h.count) + h
                    } else {
                        out.unicodeScalars.append(u)
                    }
                }
            }
            return out + "\""
        }
        func digests(_ d: [HashAlgorithm: Digest]) -> String {
            "{" + d.keys.sorted().map { "\(q($0.description)): \(q(d[$0]!.hex))" }.joined(separator: ", ") + "}"
        }
        var out = "{\n"
        out += "  \"format\": \(q(SealedPrediction.format)),\n"
        out += "  \"label\": \(q(label)),\n  \"sealed_at\": \(q(sealedAt)),\n"
        out += "  \"selection\": \(q(selection.description)),\n  \"policy_digest\": \(q(policyDigest.hex)),\n"
        if let k = keyPublicSHA256 { out += "  \"key_pub_sha256\": \(q(k.hex)),\n" }
        if let f = setFiles {
            out += "  \"set_files_sha256\": {" + f.map { "\(q($0.name)): \(q($0.sha256.hex))" }.joined(separator: ", ") + "},\n"
        }
        out += "  \"pcrs\": {" + pcrs.banks.map { b in
            "\n    \(q(b.description)): {" + pcrs.pcrs(in: b).map { "\(q(String($0.rawValue))): \(q(pcrs[b, $0]!.hex))" }.joined(separator: ", ") + "}"
        }.joined(separator: ",") + "\n  },\n"
        out += "  \"events\": [" + events.map { e in
            var part = ""
            if case .measured(let c) = e.part { part += "\"component\": \(q(c.label)), " }
            if let f = e.file { part += "\"file\": \(q(f)), " }
            if let c = e.cmdline { part += "\"cmdline_hex\": \(q(Hex.encode(c))), " }
            return "\n    {\"pcr\": \(e.pcr.rawValue), \"type\": \(q(e.type.hex)), \(part)\"what\": \(q(e.what)), \"digests\": \(digests(e.digests))}"
        }.joined(separator: ",") + "\n  ]\n}\n"
        return out
    }

    public static func parse(_ text: String, source: String) throws -> SealedPrediction {
        func bad(_ why: String) -> CodedError { CodedError(.pcrFileSyntax, source: source, why) }
        var p = MiniJSON(text: Array(text.utf8), source: source)
        guard case .object(let top) = try p.parseDocument() else { throw bad("expected a JSON object") }
        func member(_ name: String) -> MiniJSON.Value? { top.first { $0.0 == name }?.1 }
        func string(_ name: String) throws -> String {
            guard case .string(let s) = member(name) else { throw bad("'\(name)' missing or not a string") }
            return s
        }
        guard try string("format") == format else { throw bad("not an \(format) file") }
        let selection = try PCRSelection(parsing: try string("selection"))
        guard let policy = Digest(.sha256, hex: try string("policy_digest")) else { throw bad("'policy_digest' is not a SHA-256 hex digest") }
        let pcrs = try PCRValuesFile.parseJSON(text, source: source)
        guard case .array(let list) = member("events") else { throw bad("'events' missing") }
        var events = [PredictedEvent]()
        for (n, v) in list.enumerated() {
            guard case .object(let o) = v,
                  case .other(let pcrText)? = o.first(where: { $0.0 == "pcr" })?.1, let pcr = UInt32(pcrText), pcr <= 23,
                  case .string(let typeText)? = o.first(where: { $0.0 == "type" })?.1,
                  let type = UInt32(typeText.hasPrefix("0x") ? String(typeText.dropFirst(2)) : typeText, radix: 16),
                  case .string(let what)? = o.first(where: { $0.0 == "what" })?.1,
                  case .object(let ds)? = o.first(where: { $0.0 == "digests" })?.1 else {
                throw bad("event \(n) is not {pcr, type, what, digests}")
            }
            var digests = [HashAlgorithm: Digest]()
            for (bankName, dv) in ds {
                guard let bank = HashAlgorithm(name: bankName), case .string(let hex) = dv, let d = Digest(bank, hex: hex) else {
                    throw bad("event \(n): bad digest for '\(bankName)'")
                }
                digests[bank] = d
            }
            var part = PredictedEvent.Part.logged
            if let v = o.first(where: { $0.0 == "component" })?.1 {
                guard case .string(let label) = v, let c = Component(label: label) else {
                    throw bad("event \(n): 'component' is not MLE hash, policy or module N")
                }
                part = .measured(c)
            }
            var file: String? = nil, cmdline: [UInt8]? = nil
            if let v = o.first(where: { $0.0 == "file" })?.1 {
                guard case .string(let f) = v else { throw bad("event \(n): 'file' is not a string") }
                file = f
            }
            if let v = o.first(where: { $0.0 == "cmdline_hex" })?.1 {
                guard case .string(let h) = v, let bytes = Hex.decode(h) else { throw bad("event \(n): 'cmdline_hex' is not hex") }
                cmdline = bytes
            }
            events.append(PredictedEvent(pcr: PCRIndex(rawValue: pcr), type: EventType(rawValue: type), part: part,
                                         file: file, cmdline: cmdline, what: what, digests: digests))
        }
        var key: Digest? = nil
        if member("key_pub_sha256") != nil {
            guard let k = Digest(.sha256, hex: try string("key_pub_sha256")) else { throw bad("'key_pub_sha256' is not a SHA-256 hex digest") }
            key = k
        }
        var setFiles: [SetFile]? = nil
        if let v = member("set_files_sha256") {
            guard case .object(let o) = v else { throw bad("'set_files_sha256' is not an object") }
            // Names of files in the set's own directory: no path, no dot file.
            let allowed = Set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-".unicodeScalars)
            setFiles = try o.map { name, dv in
                guard !name.isEmpty, !name.hasPrefix("."), name.unicodeScalars.allSatisfy({ allowed.contains($0) }) else {
                    throw bad("'set_files_sha256' names '\(name)', not a file name of the set")
                }
                guard case .string(let hex) = dv, let d = Digest(.sha256, hex: hex) else {
                    throw bad("'set_files_sha256': '\(name)' is not a SHA-256 hex digest")
                }
                return SetFile(name: name, sha256: d)
            }
        }
        return SealedPrediction(label: try string("label"), sealedAt: try string("sealed_at"), selection: selection,
                                policyDigest: policy, pcrs: pcrs, events: events, keyPublicSHA256: key, setFiles: setFiles)
    }
}
