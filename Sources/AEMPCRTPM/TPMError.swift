// SPDX-License-Identifier: Apache-2.0
import AEMPCR

/// The live TPM's codes: why it could not be reached or read, one sentence a user can act on,
/// never a bare number.
extension CodedError.Code {
    /// No TPM device or TPM 1.2 PCR file, or a device path that is not a character device.
    public static let tpmNoDevice = Self("tpm-no-device")
    /// Not allowed to open the TPM device or its sysfs files.
    public static let tpmPermission = Self("tpm-permission")
    /// The TCTI cannot be opened, or the TPM was lost during a command.
    public static let tpmUnreachable = Self("tpm-unreachable")
    /// A PCR bank asked for is not active in the TPM (a TPM 1.2 has only sha1).
    public static let tpmBankNotActive = Self("tpm-bank-not-active")
    /// The TPM is in dictionary-attack lockout.
    public static let tpmLockout = Self("tpm-lockout")
    /// The TPM has not been started (TPM2_Startup).
    public static let tpmNotStarted = Self("tpm-not-started")
    /// The TPM answered that it is busy (retry).
    public static let tpmBusy = Self("tpm-busy")
    /// The PCRs kept changing while they were read.
    public static let tpmPCRsChanging = Self("tpm-pcrs-changing")
    /// The TPM refused a command (no SRK, a wrong SRK password …) or answered something unusable.
    public static let tpmError = Self("tpm-error")
    /// A TPM 1.2 PCR file (sysfs, or `--tpm12-pcrs`) has no line for a PCR.
    public static let tpm12PCRs = Self("tpm12-pcrs")
    /// Which TPM family (1.2 or 2.0) this is cannot be told.
    public static let tpmFamily = Self("tpm-family")
    /// A TCTI other than the device, swtpm, mssim or tabrmd.
    public static let tpmTCTIRefused = Self("tpm-tcti-refused")
}
