/* sgemm_peak.c — the sgemm ceiling of this machine, for the bench's GFLOP/s.
 *
 * Usage: sgemm_peak [N] [REPS]   (default 2048 5)
 * Times REPS calls of a square row-major C = A @ B (N x N x N, float32,
 * beta = 0) with OpenBLAS's cblas_sgemm after one warm-up call and prints
 *   corename=NAME threads=T n=N reps=R best_s=S gflops=G
 * on standard output: G = 2 N^3 / best time. Threads: OpenBLAS's default
 * (OPENBLAS_NUM_THREADS; bench.py sets 1). With --corename it only prints
 * the name of the kernel OpenBLAS selected (its own detection, or
 * OPENBLAS_CORETYPE) and exits. Build: as openblas_mlp.c.
 */
#define _POSIX_C_SOURCE 200809L
#include <cblas.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static double now_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

int main(int argc, char **argv) {
  if (argc > 1 && !strcmp(argv[1], "--corename")) {
    printf("%s\n", openblas_get_corename());
    return 0;
  }
  const int n = argc > 1 ? atoi(argv[1]) : 2048;
  const int reps = argc > 2 ? atoi(argv[2]) : 5;
  if (n <= 0 || reps <= 0) {
    fprintf(stderr, "usage: sgemm_peak [N] [REPS] | --corename\n");
    return 2;
  }
  const size_t nn = (size_t)n * n;
  float *a = malloc(sizeof *a * nn), *b = malloc(sizeof *b * nn),
        *c = malloc(sizeof *c * nn);
  if (!a || !b || !c) {
    fprintf(stderr, "sgemm_peak: out of memory\n");
    return 1;
  }
  unsigned s = 12345;
  for (size_t i = 0; i < nn; i++) {
    s = s * 1103515245u + 12345u;
    a[i] = (float)(s >> 8) / 16777216.0f - 0.5f;
    s = s * 1103515245u + 12345u;
    b[i] = (float)(s >> 8) / 16777216.0f - 0.5f;
  }
  cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, n, n, n, 1.0f, a, n, b,
              n, 0.0f, c, n);
  double best = 1e30;
  for (int r = 0; r < reps; r++) {
    double t0 = now_s();
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, n, n, n, 1.0f, a, n,
                b, n, 0.0f, c, n);
    double dt = now_s() - t0;
    if (dt < best) best = dt;
  }
  printf("corename=%s threads=%d n=%d reps=%d best_s=%.6f gflops=%.2f\n",
         openblas_get_corename(), openblas_get_num_threads(), n, reps, best,
         2.0 * n * (double)n * n / best / 1e9);
  free(a), free(b), free(c);
  return 0;
}
