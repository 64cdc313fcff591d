// SPDX-License-Identifier: Apache-2.0
#ifndef AEMPCR_CARGUMENTS_H
#define AEMPCR_CARGUMENTS_H

/* The command line as the C library handed it to the program, captured before main: the
 * Swift runtime on Linux reads its arguments from /proc/self/cmdline, which a rescue chroot
 * without /proc lacks (every command then ran as a bare `aem-pcr`).
 * aempcr_argc() is -1 when nothing was captured (a C library that does not pass argc and argv
 * to .init_array functions: only glibc is relied on). */
int aempcr_argc(void);
char *const *aempcr_argv(void);

#endif
