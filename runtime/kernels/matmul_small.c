/* matmul_small.c — C = op(A) op(B) for products too narrow for the packed
 * kernel (N < 4), for the TinyCC JIT only (its own loops are several times
 * slower), summed in the order generated .c loops use. Compiled for f32
 * and f64. */
#include "agc_kernels.h"

#ifndef AGC_T
#define AGC_T float
#define AGC_MATMUL agc_matmul_f32
#endif

void AGC_MATMUL(long M, long N, long K, const AGC_T *A, long sai, long sak,
                const AGC_T *B, long sbk, long sbj, AGC_T *C) {
  for (long i = 0; i < M; i++)
    for (long j = 0; j < N; j++) {
      AGC_T s = 0;
      for (long k = 0; k < K; k++)
        s += A[i * sai + k * sak] * B[k * sbk + j * sbj];
      C[i * N + j] = s;
    }
}
