// SPDX-License-Identifier: Apache-2.0
import AEMPCR
import AEMPCRTPM

/// The TPM 1.2 behind tcsd, through trousers: one connection (`TPM12Sealer.Context`) for a
/// command's PCR read and every secret it seals, so the values read and the values sealed to
/// come from the same session with the TPM that AEM's tpm_unsealdata asks.
public final class TPM12TcsdSource: PCRSource {
    let context: TPM12Sealer.Context

    /// Connects to tcsd (`tcsHost` as for `TPM12Sealer.seal`).
    public init(tcsHost: String? = nil) throws {
        context = try TPM12Sealer.Context(TPM12Sealer.library(), host: tcsHost)
    }

    public var name: String { "the TPM 1.2 (through tcsd)" }
    public var family: TPMFamily? { .tpm12 }
    public var isTPM: Bool { true }
    public func activeBanks() throws -> [HashAlgorithm] { [.sha1] }

    public func readPCRs(_ pcrs: [PCRIndex], banks: [HashAlgorithm]) throws -> PCRValues {
        try TPM12Banks.check(banks)
        var values = PCRValues()
        for (i, v) in try TPM12Sealer.readPCRs(pcrs.map(\.rawValue), context: context) {
            values[.sha1, PCRIndex(rawValue: i)] = Digest(.sha1, bytes: v)
        }
        return values
    }

    /// `TPM12Sealer.seal` through this connection.
    public func seal(_ plaintext: SecretBuffer, toPCRs: [UInt32: [UInt8]], srk: TPM12Sealer.SRKSecret) throws -> [UInt8] {
        try TPM12Sealer.seal(plaintext, toPCRs: toPCRs, context: context, srk: srk)
    }
}
