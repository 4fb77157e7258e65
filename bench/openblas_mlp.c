/* openblas_mlp.c — the MLP step of baseline_mlp.c with its five matrix
 * products done by OpenBLAS's cblas_sgemm: a hand-written C step of the kind
 * a person would write with a tuned BLAS at hand.
 *
 *   h = tanh(x @ W1 + b1)       sgemm  x[B,IN]  @ W1[IN,H]
 *   y = h @ W2 + b2             sgemm  h[B,H]   @ W2[H,OUT]
 *   loss = mean((y - t) ** 2)
 *   grad_W2 = h^T @ dy          sgemm  h^T      @ dy[B,OUT]
 *   dz = (dy @ W2^T) * (1 - h^2) sgemm dy       @ W2^T
 *   grad_W1 = x^T @ dz          sgemm  x^T      @ dz[B,H]
 *   grad_b1, grad_b2: column sums
 *
 * No gradient for x (as agc and the baseline): 4·B·IN·H + 6·B·H·OUT flops
 * of matrix work. Biases are broadcast into the output first and the products
 * accumulate onto them (beta = 1).
 *
 * Build (bench.py does it; link OpenBLAS itself, not whatever libblas.so.3
 * the system selects):
 *   gcc -O3 -march=native -std=c11 -I/usr/include/x86_64-linux-gnu/openblas-pthread \
 *       openblas_mlp.c -o openblas_mlp -L/usr/lib/x86_64-linux-gnu/openblas-pthread \
 *       -Wl,-rpath,/usr/lib/x86_64-linux-gnu/openblas-pthread -lopenblas -lm
 * Usage: as baseline_mlp (see mlp_main.h); prints "corename=NAME threads=N
 * config=..." on stderr first. The thread count is OpenBLAS's default
 * (OPENBLAS_NUM_THREADS; bench.py sets 1), the kernel OpenBLAS's own
 * detection or OPENBLAS_CORETYPE.
 */
#define MLP_MAIN_DECLS
#include "mlp_main.h"

#include <cblas.h>

static const char *const PROG = "openblas_mlp";

static void mlp_info(void) {
  fprintf(stderr, "corename=%s threads=%d config=%s\n", openblas_get_corename(),
          openblas_get_num_threads(), openblas_get_config());
}

/* ---- the step --------------------------------------------------------- */

static float mlp_step(const Mlp *m, const float *restrict x,
                      const float *restrict t, const float *restrict W1,
                      const float *restrict b1, const float *restrict W2,
                      const float *restrict b2, float *restrict gW1,
                      float *restrict gb1, float *restrict gW2,
                      float *restrict gb2) {
  const int B = m->B, IN = m->IN, H = m->H, OUT = m->OUT;
  float *restrict h = m->h, *restrict y = m->y, *restrict dy = m->dy,
                  *restrict dz = m->dz;

  /* h = tanh(x @ W1 + b1) */
  for (int i = 0; i < B; i++) memcpy(h + (size_t)i * H, b1, sizeof *h * (size_t)H);
  cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, B, H, IN, 1.0f, x, IN,
              W1, H, 1.0f, h, H);
  for (size_t i = 0; i < (size_t)B * H; i++) h[i] = tanhf(h[i]);
  /* y = h @ W2 + b2 */
  for (int i = 0; i < B; i++) memcpy(y + (size_t)i * OUT, b2, sizeof *y * (size_t)OUT);
  cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, B, OUT, H, 1.0f, h, H,
              W2, OUT, 1.0f, y, OUT);
  /* loss = mean((y - t)^2); dy = 2 (y - t) / (B * OUT) */
  const float scale = 2.0f / (float)((size_t)B * OUT);
  float loss = 0.0f;
  for (size_t i = 0; i < (size_t)B * OUT; i++) {
    const float d = y[i] - t[i];
    loss += d * d;
    dy[i] = scale * d;
  }
  loss /= (float)((size_t)B * OUT);
  /* grad_W2 = h^T @ dy; grad_b2 = column sums of dy */
  cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, H, OUT, B, 1.0f, h, H,
              dy, OUT, 0.0f, gW2, OUT);
  memset(gb2, 0, sizeof *gb2 * (size_t)OUT);
  for (int i = 0; i < B; i++)
    for (int o = 0; o < OUT; o++) gb2[o] += dy[(size_t)i * OUT + o];
  /* dz = (dy @ W2^T) * (1 - h^2) */
  cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, B, H, OUT, 1.0f, dy, OUT,
              W2, OUT, 0.0f, dz, H);
  for (size_t i = 0; i < (size_t)B * H; i++) dz[i] *= 1.0f - h[i] * h[i];
  /* grad_W1 = x^T @ dz; grad_b1 = column sums of dz */
  cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, IN, H, B, 1.0f, x, IN,
              dz, H, 0.0f, gW1, H);
  memset(gb1, 0, sizeof *gb1 * (size_t)H);
  for (int i = 0; i < B; i++)
    for (int j = 0; j < H; j++) gb1[j] += dz[(size_t)i * H + j];
  return loss;
}

#include "mlp_main.h"
