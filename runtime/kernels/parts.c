/* parts.c — a loop nest cut into parts that run on several threads.
 *
 * fn(arg, lo, hi, k) runs part k of a loop nest: one of its dimensions, of
 * size n, from lo to hi. agc_parts cuts that dimension into at most T
 * parts of ceil(n / T) indices (the last one shorter); the first runs on
 * the calling thread, each other one on a thread of its own, and all are
 * joined before it returns. Its callers: the loop nests of generated code
 * (emit.c writes each as a function NAME_loopK; lowering, lower.c
 * loop_threads, cuts only along a dimension that no sum of the loop adds
 * along) and the threaded matrix product (gemm_mt.c, whose parts are
 * bands of rows). Every element is computed by one thread, by the same
 * operations in the same order as on one thread: the result is
 * bit-identical for every thread count. AGC_NUM_THREADS, a number from 1,
 * lowers the count at run time. A thread that cannot be started leaves its
 * part to the calling thread.
 *
 * On Linux each thread is started on a core of its own: part k on the
 * k-th core after the caller's among those the calling thread may run on
 * (a new thread otherwise starts on its creator's core and may wait there
 * until the scheduler moves it: on a 2-vCPU VM, half a millisecond on
 * average, which took away most of the gain of a second thread).
 *
 * Compiled ahead of time for the JIT; embedded into generated .c files
 * built with --threads N > 1 (compiler/kernels.c), which define
 * _GNU_SOURCE on Linux for sched_getcpu and pthread_attr_setaffinity_np.
 */
#if defined(__linux__) && !defined(_GNU_SOURCE)
#define _GNU_SOURCE
#endif
#include <pthread.h>
#include <sched.h>
#include <stdlib.h>

#include "agc_kernels.h"

#ifndef AGC_PARTS
#define AGC_PARTS agc_parts
#define AGC_PART agc_part
#define AGC_PART_RUN agc_part_run
#define AGC_PART_START agc_part_start
#endif
#define AGC_LINKAGE

/* AGC-EMBED-BEGIN */
typedef struct {
  void (*fn)(const void *, long, long, int);
  const void *arg;
  long lo, hi;
  int k;
} AGC_PART;

static void *AGC_PART_RUN(void *p)
{
  const AGC_PART *j = (const AGC_PART *)p;
  j->fn(j->arg, j->lo, j->hi, j->k);
  return NULL;
}

/* starts part p (its number k from 1) on a thread; 0 if it cannot */
static int AGC_PART_START(pthread_t *th, AGC_PART *p, int k)
{
  pthread_attr_t at;
  (void)k; /* without CPU_SET: no core to choose */
  if (pthread_attr_init(&at) != 0)
    return 0;
#ifdef CPU_SET
  {
    cpu_set_t all, one;
    int c = sched_getcpu();
    if (c >= 0 && c < CPU_SETSIZE &&
        sched_getaffinity(0, sizeof all, &all) == 0 && CPU_COUNT(&all) > 1) {
      for (int step = 0; step < k;) {
        c = (c + 1) % CPU_SETSIZE;
        step += CPU_ISSET(c, &all) ? 1 : 0;
      }
      CPU_ZERO(&one);
      CPU_SET(c, &one);
      (void)pthread_attr_setaffinity_np(&at, sizeof one, &one);
    }
  }
#endif
  const int ok = pthread_create(th, &at, AGC_PART_RUN, p) == 0;
  pthread_attr_destroy(&at);
  return ok;
}

AGC_LINKAGE void AGC_PARTS(void (*fn)(const void *, long, long, int),
    const void *arg, long n, int T)
{
  enum { TMAX = 64 };
  AGC_PART part[TMAX];
  pthread_t th[TMAX];
  int started[TMAX];
  const char *env = getenv("AGC_NUM_THREADS");
  const long want = env ? strtol(env, NULL, 10) : 0;
  if (want >= 1 && want < T)
    T = (int)want;
  if (T > TMAX)
    T = TMAX;
  if (T > n)
    T = (int)n;
  if (T < 1)
    T = 1;
  const long each = (n + T - 1) / T;
  int k = 0;
  for (long lo = 0; lo < n; lo += each, k++) {
    part[k].fn = fn;
    part[k].arg = arg;
    part[k].lo = lo;
    part[k].hi = n - lo < each ? n : lo + each;
    part[k].k = k;
  }
  for (int t = 1; t < k; t++)
    started[t] = AGC_PART_START(&th[t], &part[t], t);
  if (k > 0)
    AGC_PART_RUN(&part[0]);
  for (int t = 1; t < k; t++) {
    if (started[t])
      pthread_join(th[t], NULL);
    else
      AGC_PART_RUN(&part[t]);
  }
}
/* AGC-EMBED-END */
