// SPDX-License-Identifier: Apache-2.0
#include "CArguments.h"

#include <stdlib.h> /* defines __GLIBC__ on glibc (features.h) */

static int saved_argc = -1;
static char *const *saved_argv;

#if defined(__GLIBC__)
/* glibc calls each .init_array function of the executable with (argc, argv, envp), in the
 * dynamic loader (elf/dl-init.c, call_init) and in static programs (csu/libc-start.c): the
 * kernel's argument vector, before any code of the program runs. Other C libraries (musl)
 * call them without arguments, so nothing is registered there. */
static void aempcr_save_arguments(int argc, char **argv, char **envp) {
    (void)envp;
    if (argc >= 0 && argv != 0) {
        saved_argc = argc;
        saved_argv = argv;
    }
}

__attribute__((section(".init_array"), used))
static void (*const aempcr_save_arguments_entry)(int, char **, char **) = aempcr_save_arguments;
#endif

int aempcr_argc(void) { return saved_argc; }
char *const *aempcr_argv(void) { return saved_argv; }
