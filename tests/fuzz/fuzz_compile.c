/* fuzz_compile.c — the compiler library from .graph text to generated C:
 * agc_compile, then every artifact agc_emit makes (C, JIT C, header, IR,
 * dot). Any input must give either a compilation or an error message,
 * never a crash, a leak or undefined behaviour; errors must be located.
 * Inputs of odd length are compiled a second time in f64 at -O0 (the
 * reference path), and inputs whose length is a multiple of 3 for
 * --target mcu, so every pipeline sees the corpus; inputs whose length
 * is a multiple of 4 are compiled again for 3 threads with everything
 * that can be threaded threaded (the parts of loops, row-kernel loops and
 * stores, and the products), for the host and the JIT. A graph with an
 * optimizer also compiles its training step and update (emit_c). */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "agc.h"

static void one(const uint8_t *data, size_t size, int f64, int O0,
                int target, int threads) {
  Options opt = {0};
  opt.api.f64 = f64;
  opt.api.O0 = O0;
  opt.target = target;
  if (threads) {
    opt.api.threads = 3;
    opt.api.threads_min_elems = 1;
    opt.api.threads_min_macs = 1;
  }
  Ctx *c = agc_compile("f.graph", (const char *)data, size, &opt);
  const char *m = agc_messages(c);
  if (agc_failed(c)) {
    /* one error, named after the file */
    if (strncmp(m, "f.graph:", 8) != 0 || !strstr(m, "error: "))
      abort();
  } else {
    for (int kind = EMIT_C; kind <= EMIT_LOOPS; kind++) {
      StrBuf out = {0};
      int rc = agc_emit(c, kind, target, &out);
      /* the back end may refuse with a message, never without */
      if (rc != 0 && !strstr(agc_messages(c), "error"))
        abort();
      sb_free(&out);
    }
    if (target == TARGET_HOST) {
      StrBuf jit = {0};
      agc_emit(c, EMIT_C, TARGET_JIT, &jit);
      sb_free(&jit);
    }
  }
  agc_free(c);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  one(data, size, 0, 0, TARGET_HOST, 0);
  if (size % 2)
    one(data, size, 1, 1, TARGET_HOST, 0);
  if (size % 3 == 0)
    one(data, size, 0, 0, TARGET_MCU, 0);
  if (size % 4 == 0)
    one(data, size, 0, 0, TARGET_HOST, 1);
  return 0;
}
