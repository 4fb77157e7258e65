/* gemm_mt.c — the matrix product (gemm.c) on several threads.
 *
 * The rows of C are cut into at most T bands of whole MR-row panels by
 * the runner of parts.c, and each band runs the one-thread kernel on a
 * thread of its own (the first on the calling thread) with its own packing
 * scratch, pack + k * pack_each for band k, where pack_each elements
 * suffice for the whole product (kernel_pack_elems of M, N, K). Every
 * element of C is computed by one thread, by the same operations in the
 * same order as on one thread: the result is bit-identical for every
 * thread count. AGC_NUM_THREADS, a number from 1, lowers the count at run
 * time (never raises it: the scratch is for T). Compiled ahead of time for
 * the JIT; embedded into generated .c files built with --threads N > 1
 * (compiler/kernels.c), after parts.c's runner.
 */
#include <stdlib.h>

#include "agc_kernels.h"

#ifndef AGC_T /* the f32 kernel; f64.c sets these for f64 */
#define AGC_T float
#define AGC_GEMM agc_gemm_f32
#define AGC_GEMM_MT agc_gemm_mt_f32
#define AGC_GEMM_JOB agc_gemm_job_f32
#define AGC_GEMM_BAND agc_gemm_band_f32
#endif
#define AGC_PARTS agc_parts
#define AGC_LINKAGE

/* AGC-EMBED-BEGIN */
typedef struct {
  long M, N, K, sai, sak, sbk, sbj, pack_each;
  const AGC_T *A, *B;
  AGC_T *C, *pack;
  int acc;
} AGC_GEMM_JOB;

/* panels lo to hi of C, with scratch k */
static void AGC_GEMM_BAND(const void *arg, long lo, long hi, int k)
{
  enum { MR_ = 6 }; /* gemm.c's MR (the compiler's KERNEL_MR) */
  const AGC_GEMM_JOB *j = (const AGC_GEMM_JOB *)arg;
  const long r0 = lo * MR_, r1 = hi * MR_ < j->M ? hi * MR_ : j->M;
  AGC_GEMM(r1 - r0, j->N, j->K, j->A + r0 * j->sai, j->sai, j->sak, j->B,
           j->sbk, j->sbj, j->C + r0 * j->N, j->acc,
           j->pack + k * j->pack_each);
}

AGC_LINKAGE void AGC_GEMM_MT(long M, long N, long K, const AGC_T *A,
    long sai, long sak, const AGC_T *B, long sbk, long sbj, AGC_T *C,
    int acc, AGC_T *pack, long pack_each, int T)
{
  AGC_GEMM_JOB j;
  j.M = M, j.N = N, j.K = K;
  j.sai = sai, j.sak = sak, j.sbk = sbk, j.sbj = sbj;
  j.pack_each = pack_each;
  j.A = A, j.B = B, j.C = C, j.pack = pack;
  j.acc = acc;
  AGC_PARTS(AGC_GEMM_BAND, &j, (M + 5) / 6, T); /* panels of MR_ rows */
}
/* AGC-EMBED-END */
