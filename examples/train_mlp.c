/* train_mlp.c — trains examples/mlp.graph with plain SGD.
 *
 * The build runs `agc examples/mlp.graph -o mlp.c --header mlp.h` and
 * compiles the generated C into this program: no JIT, no agc library, no
 * malloc — the same code could run on a microcontroller.
 *
 * Task: fit t = sin(2 x0) + 0.5 x1 x2 on 32 fixed points.
 */
#include <math.h>
#include <stdio.h>

#include "mlp.h"

static float x[MLP_x_SIZE], t[MLP_t_SIZE];
static float W1[MLP_W1_SIZE], b1[MLP_b1_SIZE], W2[MLP_W2_SIZE], b2[MLP_b2_SIZE];
static float gW1[MLP_W1_SIZE], gb1[MLP_b1_SIZE], gW2[MLP_W2_SIZE], gb2[MLP_b2_SIZE];
static double work[(MLP_WORK_BYTES + sizeof(double) - 1) / sizeof(double) + 1];

static unsigned rng = 12345u;
static float uniform(void) { /* [-1, 1) */
  rng = rng * 1664525u + 1013904223u;
  return (float)(rng >> 8) / 8388608.0f - 1.0f;
}

static void sgd(float *p, const float *g, int n, float lr) {
  for (int i = 0; i < n; i++)
    p[i] -= lr * g[i];
}

int main(void) {
  for (int i = 0; i < MLP_x_DIM0; i++) {
    float *r = &x[i * MLP_x_DIM1];
    for (int j = 0; j < MLP_x_DIM1; j++)
      r[j] = uniform();
    t[i] = sinf(2 * r[0]) + 0.5f * r[1] * r[2];
  }
  for (int i = 0; i < MLP_W1_SIZE; i++)
    W1[i] = 0.5f * uniform();
  for (int i = 0; i < MLP_W2_SIZE; i++)
    W2[i] = 0.25f * uniform();
  float loss = 0, first = 0;
  for (int step = 0; step <= 2000; step++) {
    if (mlp(x, t, W1, b1, W2, b2, &loss, gW1, gb1, gW2, gb2, work) != 0)
      return 1;
    if (step == 0)
      first = loss;
    if (step % 250 == 0)
      printf("step %4d  loss %.6f\n", step, loss);
    sgd(W1, gW1, MLP_W1_SIZE, 0.1f);
    sgd(b1, gb1, MLP_b1_SIZE, 0.1f);
    sgd(W2, gW2, MLP_W2_SIZE, 0.1f);
    sgd(b2, gb2, MLP_b2_SIZE, 0.1f);
  }
  printf("loss fell from %.6f to %.6f\n", first, loss);
  return loss < first / 4 ? 0 : 1;
}
