/* target.c — what the generated C is for, as data.
 *
 * The emitter never asks which machine it writes for: it reads these
 * fields. A new target is a new row (see docs/internals.md).
 */
#include <string.h>

#include "agc.h"

static const Target targets[TARGET_COUNT] = {
    [TARGET_HOST] =
        {
            .name = "host",
            /* a self-contained .c file for gcc/clang/tcc at -O2 and up:
               plain for loops, a named local per value (readable), the
               kernels' text written into the file */
            .loops_dowhile = 0,
            .nest_exprs = 0,
            .row_kernels = 0,
            .aot_kernels = 0,
            .math_protos = 0,
            .acc_type = "double",
            .gemm = 1,
            .sum_rows = 1,
            .own_math = 1,
            .readable = 1,
            .where_blend = 1,
            .align = 64,
        },
    [TARGET_JIT] =
        {
            .name = "jit",
            /* TinyCC in-process: it does not optimize, so loops are
               do/while with a running offset, single-use values are nested
               into expressions (TinyCC spills every local), f32 element-wise
               loops call the vectorized row kernels, and gemm, im2col,
               pooling, tanhf and expf are the runtime's ahead-of-time copies
               (runtime/agc_kernels.h), declared by prototype like <math.h> */
            .loops_dowhile = 1,
            .nest_exprs = 1,
            .row_kernels = 1,
            .aot_kernels = 1,
            .math_protos = 1,
            .acc_type = "double",
            .gemm = 1,
            .sum_rows = 1,
            .own_math = 1,
            .align = 64,
        },
    [TARGET_MCU] =
        {
            .name = "mcu",
            /* a microcontroller (Cortex-M4F the reference): plain loops, no
               double arithmetic in f32 (whole-tensor sums in float with
               Kahan compensation), matrix products straight from strided
               operands into their buffers (no packing, no transposed
               copies), tanh and exp as the kernels' pure float arithmetic
               (cheaper than libm's on a single-precision FPU) */
            .loops_dowhile = 0,
            .nest_exprs = 0,
            .row_kernels = 0,
            .aot_kernels = 0,
            .math_protos = 0,
            .acc_type = NULL,
            .gemm = 0,
            .sum_rows = 0,
            .own_math = 1,
            .readable = 1,
            .where_blend = 1, /* its C is also built for hosts (tests) */
            .align = 8,
        },
};

const Target *target_get(int id) {
  return id >= 0 && id < TARGET_COUNT ? &targets[id] : NULL;
}

int target_find(const char *name) {
  for (int i = 0; i < TARGET_COUNT; i++)
    if (strcmp(targets[i].name, name) == 0)
      return i;
  return -1;
}
