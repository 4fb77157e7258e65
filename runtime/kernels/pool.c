/* pool.c — max and average pooling with their gradients.
 *
 * Like gemm.c, one text serves both uses: embedded between the AGC-EMBED
 * markers into generated .c files (static, with AGC_T and AGC_POOL
 * replaced), and compiled ahead of time for f32 and f64 for the TinyCC JIT.
 */
#include "agc_kernels.h"

#ifndef AGC_T /* the f32 kernel; the build sets these for f64 */
#define AGC_T float
#define AGC_POOL agc_pool_f32
#define AGC_POOL_MAX agc_pool_max_f32
#endif
#define AGC_LINKAGE

/* AGC-EMBED-BEGIN */
/* The windows of max pooling (op 0) or of its gradient (op 1): the first
   maximum of each window in scan order, as PyTorch's CPU kernel, which
   also takes every NaN it meets (a window holding NaN gives NaN and sends
   its gradient to its last NaN). Without a branch on the data, CH windows
   of a row at a time, their maxima and where they are kept apart from the
   gradient's scatter: random data mispredicts half of the comparisons as
   branches. Called with k and st as constants for 2x2 windows (the
   compiler unrolls and vectorizes): 32x8x28x28 on AVX-512 took 784 us
   for the pool and 892 for its gradient, 50 and 115 now. */
static inline void AGC_POOL_MAX(int op, const AGC_T *x, const AGC_T *g,
    long NC, long H, long W, long k, long st, long OH, long OW, AGC_T *d)
{
  enum { CH = 16 };
  for (long p = 0; p < NC; p++)
    for (long oh = 0; oh < OH; oh++)
      for (long o0 = 0; o0 < OW; o0 += CH) {
        const long n = OW - o0 < CH ? OW - o0 : CH;
        const long r0 = (p * H + oh * st) * W + o0 * st;
        const long y0 = (p * OH + oh) * OW + o0;
        AGC_T bv[CH];
        long bi[CH];
        int nan[CH];
        for (long j = 0; j < n; j++) {
          long best = r0 + j * st;
          AGC_T m = x[best];
          int f = 0;
          for (long kh = 0; kh < k; kh++)
            for (long kw = 0; kw < k; kw++) {
              const long xi = r0 + j * st + kh * W + kw;
              const AGC_T v = x[xi];
              f |= v != v;
              best = v > m ? xi : best;
              m = v > m ? v : m;
            }
          bv[j] = m, bi[j] = best, nan[j] = f;
        }
        for (long j = 0; j < n; j++) {
          if (nan[j]) /* the last NaN (rare) */
            for (long kh = 0; kh < k; kh++)
              for (long kw = 0; kw < k; kw++) {
                const long xi = r0 + j * st + kh * W + kw;
                if (x[xi] != x[xi])
                  bi[j] = xi, bv[j] = x[xi];
              }
          if (op == 0)
            d[y0 + j] = bv[j];
          else
            d[bi[j]] += g[y0 + j];
        }
      }
}

/* pooling of NC planes of H x W by k x k windows with stride st into
   OH x OW; op: 0 max, 1 max gradient, 2 avg, 3 avg gradient (g the output
   gradient, d the input gradient, zeroed here) */
AGC_LINKAGE void AGC_POOL(int op, const AGC_T *x, const AGC_T *g,
    long NC, long H, long W, long k, long st, long OH, long OW, AGC_T *d)
{
  if (op == 1 || op == 3)
    for (long i = 0; i < NC * H * W; i++)
      d[i] = 0;
  if (op <= 1) {
    if (k == 2 && st == 2 && op == 0)
      AGC_POOL_MAX(0, x, g, NC, H, W, 2, 2, OH, OW, d);
    else if (k == 2 && st == 2)
      AGC_POOL_MAX(1, x, g, NC, H, W, 2, 2, OH, OW, d);
    else
      AGC_POOL_MAX(op, x, g, NC, H, W, k, st, OH, OW, d);
    return;
  }
  for (long p = 0; p < NC; p++)
    for (long oh = 0; oh < OH; oh++)
      for (long ow = 0; ow < OW; ow++) {
        const long yi = (p * OH + oh) * OW + ow;
        AGC_T s = 0;
        const AGC_T gv = op == 3 ? g[yi] / (AGC_T)(k * k) : (AGC_T)0;
        for (long kh = 0; kh < k; kh++)
          for (long kw = 0; kw < k; kw++) {
            const long xi = (p * H + oh * st + kh) * W + ow * st + kw;
            if (op == 2)
              s += x[xi];
            else
              d[xi] += gv;
          }
        if (op == 2)
          d[yi] = s / (AGC_T)(k * k);
      }
}
/* AGC-EMBED-END */
