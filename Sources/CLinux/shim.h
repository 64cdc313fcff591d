// SPDX-License-Identifier: Apache-2.0
#ifndef AEMPCR_CLINUX_SHIM_H
#define AEMPCR_CLINUX_SHIM_H
/* Linux process controls the Glibc module does not give Swift. Imported by the AEMPCRSeal
   target only. Each shim below exists because Swift cannot import the call it wraps. */
#include <sys/prctl.h>
#include <sys/mman.h>

/* prctl is variadic: Swift imports no C variadic function. */
static inline int aempcr_set_dumpable(int on) { return prctl(PR_SET_DUMPABLE, (unsigned long)on, 0UL, 0UL, 0UL); }

/* prctl is variadic (as above). */
static inline int aempcr_get_dumpable(void) { return prctl(PR_GET_DUMPABLE, 0UL, 0UL, 0UL, 0UL); }

/* MADV_DONTDUMP is Linux's own value, which the Glibc module's <sys/mman.h> may not expose. */
static inline int aempcr_madvise_dontdump(void *p, size_t n) { return madvise(p, n, MADV_DONTDUMP); }

/* unshare(2) is declared only under _GNU_SOURCE, which the Glibc module is not built with. */
extern int unshare(int flags);
static inline int aempcr_unshare_mount_namespace(void) { return unshare(0x00020000 /* CLONE_NEWNS */); }
#endif
