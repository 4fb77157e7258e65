/* row.c — the JIT's row kernels (never copied into a generated .c file).
 *
 * TinyCC compiles an element-wise loop body into scalar code that keeps
 * every value on the stack; for f32 the JIT instead runs a fused loop as
 * calls of these, compiled ahead of time and vectorized: one call per
 * operation per tile of rows (compiler/emit.c, row mode). An operand is a
 * pointer with a stride of 1 (a row) or 0 (one value). The operations the
 * C library computes (log, sin, erf, ...) call it element by element, as
 * the JIT's scalar loops would, without their loads and stores of every
 * value.
 */
#include <math.h>

#include "agc_kernels.h"

/* static copies: an exported agc_tanhf may be interposed (-fPIC), so the
   compiler would not inline, and so not vectorize, a call to it */
#define AGC_LINKAGE static inline
#define AGC_TANHF tanhf_inline
#define AGC_EXPF expf_inline
#include "expf.c"
#include "tanhf.c"

enum {
#define X(name, expr) AGC_ROW_##name,
#define Y(name) AGC_ROW_##name,
#include "row_ops.def"
#undef X
#undef Y
};

#define AGC_ROW_LOOP(EXPR)                                                    \
  if (sa && sb)                                                               \
    for (long i = 0; i < n; i++) {                                            \
      const float x = a[i], y = b[i];                                         \
      (void)y;                                                                \
      o[i] = EXPR;                                                            \
    }                                                                         \
  else if (sa) {                                                              \
    const float y = b[0];                                                     \
    (void)y;                                                                  \
    for (long i = 0; i < n; i++) {                                            \
      const float x = a[i];                                                   \
      o[i] = EXPR;                                                            \
    }                                                                         \
  } else if (sb) {                                                            \
    const float x = a[0];                                                     \
    for (long i = 0; i < n; i++) {                                            \
      const float y = b[i];                                                   \
      (void)y;                                                                \
      o[i] = EXPR;                                                            \
    }                                                                         \
  } else {                                                                    \
    const float x = a[0], y = b[0];                                           \
    (void)y;                                                                  \
    for (long i = 0; i < n; i++)                                              \
      o[i] = EXPR;                                                            \
  }

static void row1(int op, long n, const float *a, long sa, const float *b,
                 long sb, float *o) {
  switch (op) {
  case AGC_ROW_ACC: /* o += a */
    if (sa)
      for (long i = 0; i < n; i++)
        o[i] += a[i];
    else
      for (long i = 0; i < n; i++)
        o[i] += a[0];
    break;
#define X(name, expr)                                                         \
  case AGC_ROW_##name:                                                        \
    AGC_ROW_LOOP(expr) break;
#define Y(name)
#include "row_ops.def"
#undef X
#undef Y
  default:
    break;
  }
}

/* T rows of n: row t of an operand starts rs elements after row t - 1, of
   the result ors elements after (0: every row adds into the same one, for
   AGC_ROW_ACC) */
void agc_row_f32(int op, long T, long n, const float *a, long ars, long sa,
                 const float *b, long brs, long sb, float *o, long ors) {
  if (!b)
    b = a, brs = ars, sb = sa; /* unary: b unused */
  for (long t = 0; t < T; t++, a += ars, b += brs, o += ors)
    row1(op, n, a, sa, b, sb, o);
}

double agc_row_sum_f32(long T, long n, const float *a, long ars, long sa) {
  double s = 0.0;
  for (long t = 0; t < T; t++)
    for (long i = 0; i < n; i++)
      s += a[t * ars + i * sa];
  return s;
}

void agc_row_accd_f32(long T, long n, const float *a, long ars, long sa,
                      double *o) {
  for (long t = 0; t < T; t++)
    for (long i = 0; i < n; i++)
      o[i] += a[t * ars + i * sa];
}
