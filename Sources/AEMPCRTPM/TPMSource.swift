// The live TPM: tpm2-tss (TPM 2.0) and the kernel's sysfs text (TPM 1.2). Kept out of the AEMPCR
// library, which only computes. The C layer (CTSS2) is imported by this target alone.
internal import CTSS2
import AEMPCR
