/* fuzz_compile.c — the compiler library from .graph text to generated C:
 * agc_compile, then every artifact agc_emit makes (C, JIT C, header, IR,
 * dot). Any input must give either a compilation or an error message,
 * never a crash, a leak or undefined behaviour; errors must be located.
 * Inputs of odd length are compiled a second time in f64 at -O0 (the
 * reference path), so both pipelines see the corpus. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "agc.h"

static void one(const uint8_t *data, size_t size, int f64, int O0) {
  Options opt = {0};
  opt.f64 = f64;
  opt.O0 = O0;
  Ctx *c = agc_compile("f.graph", (const char *)data, size, &opt);
  const char *m = agc_messages(c);
  if (agc_failed(c)) {
    /* one error, named after the file */
    if (strncmp(m, "f.graph:", 8) != 0 || !strstr(m, "error: "))
      abort();
  } else {
    for (int kind = EMIT_C; kind <= EMIT_DOT; kind++) {
      StrBuf out = {0};
      int rc = agc_emit(c, kind, 0, &out);
      /* the back end may refuse with a message, never without */
      if (rc != 0 && !strstr(agc_messages(c), "error"))
        abort();
      sb_free(&out);
    }
    StrBuf jit = {0};
    agc_emit(c, EMIT_C, 1, &jit);
    sb_free(&jit);
  }
  agc_free(c);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  one(data, size, 0, 0);
  if (size % 2)
    one(data, size, 1, 1);
  return 0;
}
