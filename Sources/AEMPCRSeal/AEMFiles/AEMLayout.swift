// SPDX-License-Identifier: Apache-2.0
import AEMPCR
import Glibc

/// Where Anti Evil Maid keeps one boot device's secrets and sealed files (qubes-antievilmaid
/// 4.2.0, `sbin/anti-evil-maid-lib`: `AEM_DIR=/var/lib/anti-evil-maid`, `TPM_DIR=/var/lib/tpm`;
/// `anti-evil-maid-seal` seals `$AEM_DIR/$LABEL/secret.$ext` into
/// `$TPM_DIR/$LABEL/secret.$ext.sealed2` for ext in txt key otp fre).
public struct AEMLayout: Sendable {
    /// The secrets in clear: `secret.{txt,key,otp,fre}` (absent ones are skipped, as AEM does).
    public let secretsDir: String
    /// The sealed set: `key.pub`, `key.priv`, `key.pcrs`, `secret.X.sealed2`.
    public let sealedDir: String

    public static let secretExtensions = ["txt", "key", "otp", "fre"]
    public static let defaultSecretsRoot = "/var/lib/anti-evil-maid"
    public static let defaultSealedRoot = "/var/lib/tpm"
    /// The PCRs AEM seals to (`SEAL="--pcr 13 --pcr 17 --pcr 18 --pcr 19"`,
    /// etc/anti-evil-maid.conf) in the bank `tpmsealprepare` uses on TPM 2.0.
    public static let tpm2PCRs = "sha256:13,17,18,19"
    /// Written by this tool beside AEM's files: what was predicted, for `check-boot`.
    public static let predictionFile = "aem-pcr-prediction.json"
    /// A secret is a few bytes (a text, a key file, a TOTP seed, a 20-byte token).
    public static let secretSizeLimit = 1 << 20

    public init(secretsDir: String, sealedDir: String) {
        self.secretsDir = secretsDir
        self.sealedDir = sealedDir
    }

    /// AEM's own paths for `label` (such as `aem` or `aem1`).
    public init(label: String, secretsRoot: String? = nil, sealedRoot: String? = nil) throws {
        guard AEMLayout.isValidLabel(label) else {
            throw CodedError(.sealLayout, "label '\(label.unicodeScalars.map { $0.isASCII && $0.value >= 0x20 && $0.value < 0x7F ? String($0) : "?" }.joined())' must be letters, digits, '.', '_' or '-' (AEM's labels are aem plus a suffix)")
        }
        self.init(secretsDir: (secretsRoot ?? AEMLayout.defaultSecretsRoot) + "/" + label,
                  sealedDir: (sealedRoot ?? AEMLayout.defaultSealedRoot) + "/" + label)
    }

    public static func isValidLabel(_ label: String) -> Bool {
        !label.isEmpty && label != "." && label != ".." && !label.hasPrefix(".") &&
            label.utf8.allSatisfy { b in
                (b >= 0x30 && b <= 0x39) || (b >= 0x41 && b <= 0x5A) || (b >= 0x61 && b <= 0x7A) || b == 0x2E || b == 0x5F || b == 0x2D
            }
    }

    public func secretPath(_ ext: String) -> String { secretsDir + "/secret." + ext }
    public static func sealedName(_ ext: String) -> String { "secret." + ext + ".sealed2" }
}
