/* full_sgd.c — the one-process reference for mpi_sgd.c: the same model,
 * data, start and SGD step, with the gradient of the whole batch (two
 * shards) from full() (generated from full.graph). */
#include "common.h"
#include "full.h"

int main(void) {
  float x[FULL_x_SIZE], t[FULL_t_SIZE];
  batch(0, FULL_x_DIM0, x, t);
  float p[NPARAM], g[NPARAM], loss;
  static double work[FULL_WORK_BYTES / sizeof(double) + 1];
  init_params(p);
  for (int step = 0; step < STEPS; step++) {
    full(x, t, p + OFF_W1, p + OFF_b1, p + OFF_W2, p + OFF_b2, &loss,
         g + OFF_W1, g + OFF_b1, g + OFF_W2, g + OFF_b2, work);
    sgd_step(p, g);
    printf("step %d loss %.6f\n", step, loss);
  }
  printf("params after %d steps on 1 process:\n", STEPS);
  print_params(p);
  return 0;
}
