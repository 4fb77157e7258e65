/* expf.c — exp for f32 (Cephes' expf): x = n ln2 + r with |r| <= ln2/2,
 * e^r by a degree-6 polynomial, 2^n put straight into the exponent bits;
 * branch-free, so the compiler vectorizes loops that call it, where libm's
 * expf is a scalar call. Below -86 it gives 0 (the true value is under
 * 4.4e-38), above ln(FLT_MAX) +infinity; NaN stays NaN. Largest error
 * against exp in f64: under 2 ulp on [-86, 88.7] (tests/rt/test_jit.c).
 * Embedded into generated .c files as static inline NAME_expf; compiled
 * ahead of time as agc_expf for the JIT.
 */
#include <stdint.h>

#include "agc_kernels.h"

#ifndef AGC_EXPF
#define AGC_EXPF agc_expf
#define AGC_LINKAGE
#endif

/* AGC-EMBED-BEGIN */
AGC_LINKAGE float AGC_EXPF(float x)
{
  union { uint32_t i; float f; } t, inf;
  const float hi = 88.72283935546875f, lo = -86.0f;
  const float xc = x < lo ? lo : (x > hi ? hi : x);
  /* n = round(xc / ln 2) by adding 1.5 * 2^23: no float-to-int
     conversion, which would keep the loop from vectorizing */
  float n, p, r;
  t.f = xc * 1.44269504088896341f + 12582912.0f;
  n = t.f - 12582912.0f;
  r = (xc - n * 0.693359375f) - n * -2.12194440e-4f;
  p = 1.9875691500e-4f;
  p = p * r + 1.3981999507e-3f;
  p = p * r + 8.3334519073e-3f;
  p = p * r + 4.1665795894e-2f;
  p = p * r + 1.6666665459e-1f;
  p = p * r + 5.0000001201e-1f;
  p = p * r * r + r + 1.0f;
  /* 2^(n-1) from its exponent bits (n-1 in [-125, 127]) */
  t.i = ((t.i - 0x4B400000u + 126u) & 0xffu) << 23;
  inf.i = 0x7f800000u;
  return x > hi ? inf.f : (x < lo ? 0.0f : p * t.f * 2.0f);
}
/* AGC-EMBED-END */
