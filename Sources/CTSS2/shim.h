// SPDX-License-Identifier: Apache-2.0
#ifndef AEMPCR_CTSS2_SHIM_H
#define AEMPCR_CTSS2_SHIM_H
/* tpm2-tss (Debian: libtss2-dev): ESYS, the TCTI loader, marshaling and response-code decoding.
   Imported by the AEMPCRTPM target only. Each shim below exists because Swift cannot import the
   macro or expression it wraps. */
#include <tss2/tss2_common.h>
#include <tss2/tss2_tpm2_types.h>
#include <tss2/tss2_esys.h>
#include <tss2/tss2_tctildr.h>
#include <tss2/tss2_tcti.h>
#include <tss2/tss2_mu.h>
#include <tss2/tss2_rc.h>

/* Tss2_Tcti_SetLocality is a function-like macro calling through the TCTI's vtable. */
static inline TSS2_RC aempcr_tcti_set_locality(TSS2_TCTI_CONTEXT *tcti, uint8_t locality) {
    return Tss2_Tcti_SetLocality(tcti, locality);
}

/* ESYS_TR_NONE / ESYS_TR_PASSWORD / ESYS_TR_RH_NULL are macros of expressions of a typedef. */
static inline ESYS_TR aempcr_esys_tr_none(void) { return ESYS_TR_NONE; }
static inline ESYS_TR aempcr_esys_tr_password(void) { return ESYS_TR_PASSWORD; }
static inline ESYS_TR aempcr_esys_tr_rh_owner(void) { return ESYS_TR_RH_OWNER; }
static inline ESYS_TR aempcr_esys_tr_rh_null(void) { return ESYS_TR_RH_NULL; }

/* The layer and base code of a response code: TSS2_RC_LAYER_MASK and TPM2_RC_* are expression
   macros (shifts and ORs) Swift does not import. */
static inline uint32_t aempcr_rc_layer(TSS2_RC rc) { return (rc & TSS2_RC_LAYER_MASK) >> TSS2_RC_LAYER_SHIFT; }
static inline uint32_t aempcr_rc_tcti_layer(void) { return TSS2_TCTI_RC_LAYER >> TSS2_RC_LAYER_SHIFT; }
static inline uint32_t aempcr_rc_esapi_layer(void) { return TSS2_ESAPI_RC_LAYER >> TSS2_RC_LAYER_SHIFT; }
#endif
