// Sealing the Anti Evil Maid secrets to predicted PCR values: AEM's file layout, written
// atomically; TPM 2.0 through AEMPCRTPM, TPM 1.2 through trousers loaded at run time.
import AEMPCR
