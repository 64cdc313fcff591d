// SPDX-License-Identifier: Apache-2.0
#ifndef AEMPCR_CISAL_SHIM_H
#define AEMPCR_CISAL_SHIM_H
/* ISA-L's igzip header (Debian: libisal-dev; Fedora: isa-l-devel), for `struct inflate_state`
 * and its constants only. Nothing here is linked: ISALLibrary loads libisal.so.2 with dlopen and
 * resolves isal_inflate_init and isal_inflate itself. */
#include <isa-l/igzip_lib.h>
#endif
