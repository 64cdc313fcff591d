// SPDX-License-Identifier: Apache-2.0
import AEMPCR
import Glibc

/// What the TPM will enforce before it releases a sealed set's secrets, read from the sealed
/// objects themselves (never from the saved prediction beside them):
///
/// - TPM 2.0 (`key.pub` present): the sealing object's `authPolicy`, which TPM2_Unseal compares
///   with the policy session `tpm2_unseal -p pcr:$(cat key.pcrs)` builds: the PolicyPCR of the
///   PCRs of `key.pcrs` as they are then;
/// - TPM 1.2: each `secret.X.sealed2` (tpm_sealdata's file) carries a TPM_STORED_DATA12 whose
///   `digestAtRelease` TPM_Unseal compares with the TPM_COMPOSITE_HASH of the PCRs of its
///   `releasePCRSelection`, at a locality of `localityAtRelease` (AEM unseals at locality 0).
///
/// The secrets are released on a boot iff `unseals(with:)` says so for that boot's PCRs.
public enum SealedEnforcement: Sendable {
    case tpm2(object: SealedObjectPublic, selection: PCRSelection)
    case tpm12(files: [(name: String, info: TPM12SealedFile)])

    /// Reads the sealed objects of the set in `dir`. Errors are one sentence naming the file
    /// (and the byte offset for a malformed key.pub).
    public static func read(dir: String) throws -> SealedEnforcement {
        let pubPath = dir + "/key.pub"
        if access(pubPath, F_OK) == 0 {
            let object = try SealedObjectPublic(parsing: FileReader.readAll(path: pubPath, limit: 1 << 12, noFollow: true), source: pubPath)
            let pcrsPath = dir + "/key.pcrs"
            let selection: PCRSelection
            do {
                selection = try PCRSelection(keyPCRsFile: FileReader.readAll(path: pcrsPath, limit: 1 << 12, noFollow: true), source: pcrsPath)
            } catch let e as CodedError where e.code == .fileNotFound {
                throw CodedError(.sealLayout, "\(pcrsPath) is missing: AEM's unseal needs it beside key.pub")
            }
            if object.authPolicy.isEmpty {
                throw CodedError(.sealLayout, "\(pubPath) has no authPolicy: not AEM's sealing object")
            }
            return .tpm2(object: object, selection: selection)
        }
        var files = [(name: String, info: TPM12SealedFile)]()
        for ext in AEMLayout.secretExtensions {
            let name = AEMLayout.sealedName(ext)
            let path = dir + "/" + name
            guard access(path, F_OK) == 0 else { continue }
            let bytes = try FileReader.readAll(path: path, limit: 1 << 20, noFollow: true)
            do {
                files.append((name, try TPM12SealedFile(parsing: bytes)))
            } catch let e as CodedError {
                throw CodedError(e.code, "\(path): \(e.reason) (no key.pub: a TPM 1.2 set is tpm_sealdata's files)")
            }
        }
        if files.isEmpty {
            throw CodedError(.sealLayout, "\(dir) has neither key.pub (TPM 2.0) nor secret.X.sealed2 (TPM 1.2): no sealed set to check")
        }
        return .tpm12(files: files)
    }

    /// The PCRs the TPM compares, per bank; nil for TPM 1.2 files whose release selection is
    /// empty (the TPM then checks no PCR).
    public var selection: PCRSelection? {
        switch self {
        case .tpm2(_, let selection):
            return selection
        case .tpm12(let files):
            let pcrs = Set(files.flatMap(\.info.releasePCRs)).sorted().map { PCRIndex(rawValue: $0) }
            return try? PCRSelection(banks: [.sha1], pcrs: pcrs)
        }
    }

    /// `selection` for messages.
    public var selectionDescription: String { selection?.description ?? "no PCR" }

    /// The files the verdict is read from, for messages.
    public var objectNames: [String] {
        switch self {
        case .tpm2: return ["key.pub", "key.pcrs"]
        case .tpm12(let files): return files.map(\.name)
        }
    }

    /// What the TPM compares: the authPolicy, or each file's digestAtRelease.
    public var sealedDigests: [(name: String, hex: String)] {
        switch self {
        case .tpm2(let o, _): return [("key.pub", Hex.encode(o.authPolicy))]
        case .tpm12(let files): return files.map { ($0.name, Hex.encode($0.info.digestAtRelease)) }
        }
    }

    /// The digest these values give where the TPM compares: the PolicyPCR over key.pcrs's
    /// selection (hashed with key.pub's nameAlg), or per file the TPM_COMPOSITE_HASH over its
    /// release selection. Throws a CodedError naming the first value missing.
    public func currentDigests(_ values: PCRValues) throws -> [(name: String, hex: String)] {
        switch self {
        case .tpm2(let o, let selection):
            return [("key.pub", try PolicyPCR.digest(selection, values: values, policyHash: o.nameAlg).hex)]
        case .tpm12(let files):
            return try files.map { f in
                // An empty release selection: TPM_Unseal checks no PCR.
                if f.info.releasePCRs.isEmpty { return (f.name, Hex.encode(f.info.digestAtRelease)) }
                var selected = [UInt32: [UInt8]]()
                for i in f.info.releasePCRs {
                    guard let v = values[.sha1, PCRIndex(rawValue: i)] else {
                        throw CodedError(.policyMissingValue, "no value for PCR\(i) in bank sha1, which \(f.name) is sealed to")
                    }
                    selected[i] = v.bytes
                }
                guard let d = TPM12Composite.digest(selected) else {
                    throw CodedError(.policyMissingValue, "the PCR values for \(f.name) are not 20-byte SHA-1 values")
                }
                return (f.name, Hex.encode(d))
            }
        }
    }

    /// Whether the TPM releases the secrets to these PCR values (at locality 0, where AEM's
    /// tpm_unsealdata runs): every sealed object must agree. The names of those that do not.
    public func refusing(_ values: PCRValues) throws -> [String] {
        let now = try currentDigests(values)
        var out = [String]()
        for (sealed, current) in zip(sealedDigests, now) where sealed.hex != current.hex {
            out.append(sealed.name)
        }
        // tpm2_unseal -p pcr:… runs its policy session with SHA-256; the TPM accepts a session
        // only with the object's nameAlg, so another nameAlg never unseals for AEM.
        if case .tpm2(let o, _) = self, o.nameAlg != .sha256, !out.contains("key.pub") {
            out.append("key.pub")
        }
        if case .tpm12(let files) = self {
            for f in files where f.info.localityAtRelease.map({ $0 & 1 == 0 }) == true && !out.contains(f.name) {
                out.append(f.name)
            }
        }
        return out
    }

    /// How a saved prediction's values stand against the sealed objects: nil when they give
    /// the sealed digests; else why not (a selected PCR it has no value for, or a digest that
    /// differs).
    public func disagreement(of predicted: PCRValues) -> String? {
        let now: [(name: String, hex: String)]
        do {
            now = try currentDigests(predicted)
        } catch let e as CodedError {
            return "it does not cover the sealed selection \(selectionDescription) (\(e.reason))"
        } catch {
            return "\(error)"
        }
        for (sealed, predicted) in zip(sealedDigests, now) where sealed.hex != predicted.hex {
            switch self {
            case .tpm2:
                return "the PolicyPCR of its values over key.pcrs's \(selectionDescription) is not the authPolicy of key.pub"
            case .tpm12:
                return "the TPM_COMPOSITE_HASH of its values is not the digestAtRelease of \(sealed.name)"
            }
        }
        return nil
    }
}
