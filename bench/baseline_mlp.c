/* baseline_mlp.c — hand-written plain C baseline for the agc benchmark.
 *
 * One training step (forward + backward) of a two-layer tanh MLP with a
 * mean-squared-error loss, the same computation as bench/run.sh's MLP graphs:
 *
 *   h = tanh(x @ W1 + b1)      x[B, IN], W1[IN, H], b1[H]
 *   y = h @ W2 + b2            W2[H, OUT], b2[OUT]
 *   loss = mean((y - t) ** 2)  t[B, OUT]
 *   -> loss, grad_W1, grad_b1, grad_W2, grad_b2
 *
 * Straightforward loops (i-k-j order so the inner loop is contiguous), no
 * blocking, no intrinsics, no threads: what a person would write by hand.
 * Build: gcc -O3 -march=native -std=c11 baseline_mlp.c -o baseline_mlp -lm
 * Add -DMLP_B=32 -DMLP_IN=4 -DMLP_H=16 -DMLP_OUT=1 to fix the sizes at compile
 * time (as code written for one model, and agc's generated code, have them);
 * bench/run.sh builds one such binary per shape. The command line must then
 * give the same sizes.
 *
 * Usage: baseline_mlp DIR B IN H OUT [--min-time SEC] [--min-reps N]
 *                     [--max-reps N] [--out OUTDIR]
 *   reads DIR/{x,t,W1,b1,W2,b2}.npy ('<f4', C order), runs one warm-up
 *   step, then steps until at least SEC seconds (default 0.5) and N calls
 *   (default 3) have passed, timing every call, and prints
 *   "median_us=FLOAT calls=N" on standard error (the format of agc run).
 *   --out writes loss.npy and grad_*.npy of the last call to OUTDIR.
 */
#define MLP_MAIN_DECLS
#include "mlp_main.h"

static const char *const PROG = "baseline_mlp";
static void mlp_info(void) {}

/* ---- the step --------------------------------------------------------- */

static float mlp_step(const Mlp *m, const float *restrict x,
                      const float *restrict t, const float *restrict W1,
                      const float *restrict b1, const float *restrict W2,
                      const float *restrict b2, float *restrict gW1,
                      float *restrict gb1, float *restrict gW2,
                      float *restrict gb2) {
#ifdef MLP_B
  /* sizes fixed at compile time, as in code written for one model */
  const int B = MLP_B, IN = MLP_IN, H = MLP_H, OUT = MLP_OUT;
  (void)m->B;
#else
  const int B = m->B, IN = m->IN, H = m->H, OUT = m->OUT;
#endif
  float *restrict h = m->h, *restrict y = m->y, *restrict dy = m->dy,
                  *restrict dz = m->dz;

  /* forward: h = tanh(x @ W1 + b1) */
  for (int i = 0; i < B; i++) {
    float *restrict hi = h + (size_t)i * H;
    for (int j = 0; j < H; j++) hi[j] = b1[j];
    for (int k = 0; k < IN; k++) {
      const float a = x[(size_t)i * IN + k];
      const float *restrict w = W1 + (size_t)k * H;
      for (int j = 0; j < H; j++) hi[j] += a * w[j];
    }
    for (int j = 0; j < H; j++) hi[j] = tanhf(hi[j]);
  }
  /* y = h @ W2 + b2 */
  for (int i = 0; i < B; i++) {
    float *restrict yi = y + (size_t)i * OUT;
    for (int o = 0; o < OUT; o++) yi[o] = b2[o];
    for (int j = 0; j < H; j++) {
      const float a = h[(size_t)i * H + j];
      const float *restrict w = W2 + (size_t)j * OUT;
      for (int o = 0; o < OUT; o++) yi[o] += a * w[o];
    }
  }
  /* loss = mean((y - t)^2); dy = 2 (y - t) / (B * OUT) */
  const float scale = 2.0f / (float)((size_t)B * OUT);
  float loss = 0.0f;
  for (size_t i = 0; i < (size_t)B * OUT; i++) {
    const float d = y[i] - t[i];
    loss += d * d;
    dy[i] = scale * d;
  }
  loss /= (float)((size_t)B * OUT);

  /* grad_W2 = h^T @ dy, grad_b2 = column sums of dy */
  memset(gW2, 0, sizeof *gW2 * (size_t)H * OUT);
  memset(gb2, 0, sizeof *gb2 * (size_t)OUT);
  for (int i = 0; i < B; i++) {
    const float *restrict dyi = dy + (size_t)i * OUT;
    for (int j = 0; j < H; j++) {
      const float a = h[(size_t)i * H + j];
      float *restrict g = gW2 + (size_t)j * OUT;
      for (int o = 0; o < OUT; o++) g[o] += a * dyi[o];
    }
    for (int o = 0; o < OUT; o++) gb2[o] += dyi[o];
  }
  /* dz = (dy @ W2^T) * (1 - h^2) */
  for (int i = 0; i < B; i++) {
    const float *restrict dyi = dy + (size_t)i * OUT;
    for (int j = 0; j < H; j++) {
      const float *restrict w = W2 + (size_t)j * OUT;
      float s = 0.0f;
      for (int o = 0; o < OUT; o++) s += dyi[o] * w[o];
      const float hv = h[(size_t)i * H + j];
      dz[(size_t)i * H + j] = s * (1.0f - hv * hv);
    }
  }
  /* grad_W1 = x^T @ dz: row k of grad_W1 is sum_i x[i, k] * dz[i, :] */
  for (int k = 0; k < IN; k++) {
    float *restrict g = gW1 + (size_t)k * H;
    for (int j = 0; j < H; j++) g[j] = 0.0f;
    for (int i = 0; i < B; i++) {
      const float a = x[(size_t)i * IN + k];
      const float *restrict dzi = dz + (size_t)i * H;
      for (int j = 0; j < H; j++) g[j] += a * dzi[j];
    }
  }
  /* grad_b1 = column sums of dz */
  for (int j = 0; j < H; j++) gb1[j] = 0.0f;
  for (int i = 0; i < B; i++)
    for (int j = 0; j < H; j++) gb1[j] += dz[(size_t)i * H + j];
  return loss;
}

#include "mlp_main.h"
