// SPDX-License-Identifier: Apache-2.0
#ifndef AEMPCR_CLIBCRYPTO_SHIM_H
#define AEMPCR_CLIBCRYPTO_SHIM_H
/* The system's OpenSSL libcrypto (Debian: libssl-dev), the same library tpm2-tss's ESYS links:
   SHA-1/256/384/512 for the banks, and (outside the library) AES-CTR and PBKDF2 for AEM's files. */
#include <openssl/evp.h>
#include <openssl/crypto.h>
#include <openssl/rand.h>
#endif
