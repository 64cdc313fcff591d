// SPDX-License-Identifier: Apache-2.0
#ifndef AEMPCR_CTSPI_H
#define AEMPCR_CTSPI_H
/* The one trousers (TSS 1.2) type Swift cannot declare itself: Tspi_Context_LoadKeyByUUID takes
   a TSS_UUID by value, and only a C struct gets the C calling convention for that. Declared here
   (layout of TSS_UUID in <tss/tss_structs.h>) so that the build needs neither libtspi-dev nor
   libtspi: the library is loaded at run time (AEMPCRSeal's TSPILibrary). Nothing is linked. */
#include <stdint.h>

typedef struct {
    uint32_t ulTimeLow;
    uint16_t usTimeMid;
    uint16_t usTimeHigh;
    uint8_t bClockSeqHigh;
    uint8_t bClockSeqLow;
    uint8_t rgbNode[6];
} CTspi_UUID;

_Static_assert(sizeof(CTspi_UUID) == 16, "TSS_UUID is 16 bytes");

#endif
