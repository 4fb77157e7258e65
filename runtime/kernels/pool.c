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
#endif
#define AGC_LINKAGE

/* AGC-EMBED-BEGIN */
/* pooling of NC planes of H x W by k x k windows with stride st into
   OH x OW; op: 0 max, 1 max gradient, 2 avg, 3 avg gradient (g the output
   gradient, d the input gradient, zeroed here) */
AGC_LINKAGE void AGC_POOL(int op, const AGC_T *x, const AGC_T *g,
    long NC, long H, long W, long k, long st, long OH, long OW, AGC_T *d)
{
  if (op == 1 || op == 3)
    for (long i = 0; i < NC * H * W; i++)
      d[i] = 0;
  for (long p = 0; p < NC; p++)
    for (long oh = 0; oh < OH; oh++)
      for (long ow = 0; ow < OW; ow++) {
        const long yi = (p * OH + oh) * OW + ow;
        if (op >= 2) {
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
          continue;
        }
        /* the first maximum in scan order, as PyTorch's CPU kernel, which
           also takes every NaN it meets: a window holding NaN gives NaN and
           sends its gradient to the last NaN. The maximum so far is kept
           in bv and both are chosen without a branch (a mask, not a ?:
           that gcc makes a jump): the comparisons of random data
           mispredict half the time, which made the gradient of a
           32x8x28x28 pool 30 times slower than the pool */
        long best = (p * H + oh * st) * W + ow * st;
        AGC_T bv = x[best];
        for (long kh = 0; kh < k; kh++)
          for (long kw = 0; kw < k; kw++) {
            const long xi = (p * H + oh * st + kh) * W + ow * st + kw;
            const AGC_T v = x[xi];
            const long more = -(long)(v > bv || v != v); /* ones or 0 */
            best ^= (best ^ xi) & more;
            bv = more ? v : bv;
          }
        if (op == 0)
          d[yi] = bv;
        else
          d[best] += g[yi];
      }
}
/* AGC-EMBED-END */
