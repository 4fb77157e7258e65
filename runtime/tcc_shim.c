/* tcc_shim.c — lets the non-PIC libtcc.a of Debian live in libagc.so.
 *
 * Debian ships libtcc as a static archive built without -fPIC. Its code is
 * position-independent except for direct (PC-relative) references to three
 * data symbols of the C library, which a shared object cannot make. The
 * build copies the archive with those references renamed (objcopy
 * --redefine-sym stdout=agc_tcc_stdout ..., see meson.build) to the hidden
 * variables below, which the library fills in when it is loaded. Only
 * libagc.so links this file; the agc command and libagc.a use libtcc.a as
 * it is. */
#include <stdio.h>

extern char **environ;

#define HIDDEN __attribute__((visibility("hidden")))
HIDDEN FILE *agc_tcc_stdout;
HIDDEN FILE *agc_tcc_stderr;
HIDDEN char **agc_tcc_environ; /* read by tcc_run() only, which agc never calls */

__attribute__((constructor)) static void agc_tcc_shim_init(void) {
  agc_tcc_stdout = stdout;
  agc_tcc_stderr = stderr;
  agc_tcc_environ = environ;
}
