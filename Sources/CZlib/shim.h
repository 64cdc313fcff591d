// SPDX-License-Identifier: Apache-2.0
#ifndef AEMPCR_CZLIB_SHIM_H
#define AEMPCR_CZLIB_SHIM_H
#include <zlib.h>

/* inflateInit2 is a macro in zlib.h; Swift cannot import it. */
static inline int aempcr_inflateInit2(z_streamp strm, int windowBits) {
    return inflateInit2(strm, windowBits);
}
#endif
