/* gemm_mt.c — the matrix product (gemm.c) on several threads.
 *
 * The rows of C are cut into at most T bands of whole MR-row panels, and
 * each band runs the one-thread kernel on a thread of its own (the first
 * on the calling thread) with its own packing scratch, pack + t *
 * pack_each, where pack_each elements suffice for the whole product
 * (kernel_pack_elems of M, N, K). Every element of C is computed by one
 * thread, by the same operations in the same order as on one thread: the
 * result is bit-identical for every thread count. AGC_NUM_THREADS, a
 * number from 1, lowers the count at run time (never raises it: the
 * scratch is for T). A thread that cannot be started leaves its band to
 * the calling thread. Compiled ahead of time for the JIT; embedded into
 * generated .c files built with --threads N > 1 (compiler/kernels.c).
 */
#include <pthread.h>
#include <stdlib.h>

#include "agc_kernels.h"

#ifndef AGC_T /* the f32 kernel; f64.c sets these for f64 */
#define AGC_T float
#define AGC_GEMM agc_gemm_f32
#define AGC_GEMM_MT agc_gemm_mt_f32
#define AGC_GEMM_JOB agc_gemm_job_f32
#define AGC_GEMM_BAND agc_gemm_band_f32
#endif
#define AGC_LINKAGE

/* AGC-EMBED-BEGIN */
typedef struct {
  long M, N, K, sai, sak, sbk, sbj;
  const AGC_T *A, *B;
  AGC_T *C, *pack;
  int acc;
} AGC_GEMM_JOB;

static void *AGC_GEMM_BAND(void *arg)
{
  const AGC_GEMM_JOB *j = (const AGC_GEMM_JOB *)arg;
  AGC_GEMM(j->M, j->N, j->K, j->A, j->sai, j->sak, j->B, j->sbk, j->sbj,
           j->C, j->acc, j->pack);
  return NULL;
}

AGC_LINKAGE void AGC_GEMM_MT(long M, long N, long K, const AGC_T *A,
    long sai, long sak, const AGC_T *B, long sbk, long sbj, AGC_T *C,
    int acc, AGC_T *pack, long pack_each, int T)
{
  enum { MR_ = 6, TMAX = 64 }; /* MR_: gemm.c's MR (the compiler's KERNEL_MR) */
  AGC_GEMM_JOB job[TMAX];
  pthread_t th[TMAX];
  int started[TMAX];
  const char *env = getenv("AGC_NUM_THREADS");
  const long want = env ? strtol(env, NULL, 10) : 0;
  const long panels = (M + MR_ - 1) / MR_;
  if (want >= 1 && want < T)
    T = (int)want;
  if (T > TMAX)
    T = TMAX;
  if (T > panels)
    T = (int)panels;
  if (T < 1)
    T = 1;
  const long band = (panels + T - 1) / T * MR_;
  int n = 0;
  for (long r0 = 0; r0 < M; r0 += band, n++) {
    job[n].M = M - r0 < band ? M - r0 : band;
    job[n].N = N, job[n].K = K;
    job[n].sai = sai, job[n].sak = sak, job[n].sbk = sbk, job[n].sbj = sbj;
    job[n].A = A + r0 * sai;
    job[n].B = B;
    job[n].C = C + r0 * N;
    job[n].pack = pack + n * pack_each;
    job[n].acc = acc;
  }
  for (int t = 1; t < n; t++)
    started[t] = pthread_create(&th[t], NULL, AGC_GEMM_BAND, &job[t]) == 0;
  if (n > 0)
    AGC_GEMM_BAND(&job[0]);
  for (int t = 1; t < n; t++) {
    if (started[t])
      pthread_join(th[t], NULL);
    else
      AGC_GEMM_BAND(&job[t]);
  }
}
/* AGC-EMBED-END */
