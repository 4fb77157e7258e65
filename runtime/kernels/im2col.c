/* im2col.c — im2col / col2im of one image: the data movement of conv2d
 * and its gradients as matrix products (compiler/emit.c).
 *
 * Like gemm.c, one text serves both uses: embedded between the AGC-EMBED
 * markers into generated .c files (static, with AGC_T and AGC_IM2COL
 * replaced), and compiled ahead of time for f32 and f64 for the TinyCC JIT.
 */
#include "agc_kernels.h"

#ifndef AGC_T /* the f32 kernel; the build sets these for f64 */
#define AGC_T float
#define AGC_IM2COL agc_im2col_f32
#define AGC_IM2COL_ROWS agc_im2col_rows_f32
#endif
#define AGC_LINKAGE

/* AGC-EMBED-BEGIN */
/* im2col of image x[C, H, W] into col[(c*KH + kh)*KW + kw][oh*OW + ow],
   or (back) col2im, adding col into the gradient x; called with st as a
   constant for stride 1, where each row is a plain copy the compiler
   vectorizes */
static inline void AGC_IM2COL_ROWS(const AGC_T *x, long C, long H, long W,
    long KH, long KW, long st, long pad, long OH, long OW, AGC_T *col,
    int back)
{
  for (long c = 0; c < C; c++)
    for (long kh = 0; kh < KH; kh++)
      for (long kw = 0; kw < KW; kw++)
        for (long oh = 0; oh < OH; oh++) {
          AGC_T *const r = col + ((c * KH + kh) * KW + kw) * (OH * OW) + oh * OW;
          const long ih = oh * st + kh - pad;
          /* outputs ow in [lo, hi) read inside the image, at x[at + ow*st];
             the others read the zero padding */
          long lo = 0, hi = ih >= 0 && ih < H ? OW : 0;
          while (lo < hi && lo * st + kw - pad < 0)
            lo++;
          while (hi > lo && (hi - 1) * st + kw - pad >= W)
            hi--;
          const long at = (c * H + ih) * W + kw - pad;
          if (back) { /* col2im: x is the gradient, added to */
            for (long ow = lo; ow < hi; ow++)
              ((AGC_T *)x)[at + ow * st] += r[ow];
            continue;
          }
          for (long ow = 0; ow < lo; ow++)
            r[ow] = 0;
          for (long ow = lo; ow < hi; ow++)
            r[ow] = x[at + ow * st];
          for (long ow = hi; ow < OW; ow++)
            r[ow] = 0;
        }
}

AGC_LINKAGE void AGC_IM2COL(const AGC_T *x, long C, long H, long W,
    long KH, long KW, long st, long pad, long OH, long OW, AGC_T *col,
    int back)
{
  if (st == 1)
    AGC_IM2COL_ROWS(x, C, H, W, KH, KW, 1, pad, OH, OW, col, back);
  else
    AGC_IM2COL_ROWS(x, C, H, W, KH, KW, st, pad, OH, OW, col, back);
}

/* AGC-EMBED-END */
