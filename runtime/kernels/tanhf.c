/* tanhf.c — tanh for f32 as a ratio of odd and even polynomials on
 * [-7.9, 7.9] (the approximation Eigen uses): pure arithmetic, so the
 * compiler vectorizes the loops that call it, where libm's tanhf is a
 * scalar call. Largest error against tanh in f64: 3.4e-7 relative (6 ulp),
 * measured over [-12, 12] and down to 1e-8 (tests/rt/test_jit.c).
 * Embedded into generated .c files as static inline NAME_tanhf; compiled
 * ahead of time as agc_tanhf for the JIT.
 */
#include "agc_kernels.h"

#ifndef AGC_TANHF
#define AGC_TANHF agc_tanhf
#define AGC_LINKAGE
#endif

/* AGC-EMBED-BEGIN */
AGC_LINKAGE float AGC_TANHF(float x)
{
  const float c = 7.90531110763549805f;
  const float y = x < -c ? -c : (x > c ? c : x), y2 = y * y;
  float p = -2.76076847742355e-16f;
  p = p * y2 + 2.00018790482477e-13f;
  p = p * y2 - 8.60467152213735e-11f;
  p = p * y2 + 5.12229709037114e-08f;
  p = p * y2 + 1.48572235717979e-05f;
  p = p * y2 + 6.37261928875436e-04f;
  p = p * y2 + 4.89352455891786e-03f;
  float q = 1.19825839466702e-06f;
  q = q * y2 + 1.18534705686654e-04f;
  q = q * y2 + 2.26843463243900e-03f;
  q = q * y2 + 4.89352518554385e-03f;
  return y * p / q;
}
/* AGC-EMBED-END */
