/* matmul_small.c — C = op(A) op(B) for products too narrow for the packed
 * kernel (N < 4), for the TinyCC JIT only (its own loops are several times
 * slower). Compiled for f32 and f64.
 *
 * Each element is a dot product over k. One running sum waits for the
 * previous addition at every k (4 cycles on current x86), so the sum
 * keeps 8 partial sums, k = q, q + 8, q + 16, ... in partial q, added
 * pairwise at the end, then the last K % 8 terms in order: 512
 * multiply-adds took 0.84 us with one sum. The order differs from the
 * generated .c loops' (k in order) by rounding only, as the packed
 * kernel's blocks do.
 */
#include "agc_kernels.h"

#ifndef AGC_T
#define AGC_T float
#define AGC_MATMUL agc_matmul_f32
#endif

void AGC_MATMUL(long M, long N, long K, const AGC_T *A, long sai, long sak,
                const AGC_T *B, long sbk, long sbj, AGC_T *C) {
  const long K8 = K / 8 * 8;
  for (long i = 0; i < M; i++)
    for (long j = 0; j < N; j++) {
      const AGC_T *const a = A + i * sai, *const b = B + j * sbj;
      AGC_T p[8] = {0, 0, 0, 0, 0, 0, 0, 0};
      for (long k = 0; k < K8; k += 8)
        for (int q = 0; q < 8; q++)
          p[q] += a[(k + q) * sak] * b[(k + q) * sbk];
      AGC_T s = ((p[0] + p[1]) + (p[2] + p[3])) + ((p[4] + p[5]) + (p[6] + p[7]));
      for (long k = K8; k < K; k++)
        s += a[k * sak] * b[k * sbk];
      C[i * N + j] = s;
    }
}
