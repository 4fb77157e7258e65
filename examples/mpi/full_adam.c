/* full_adam.c — the one-process reference for mpi_adam.c: the same model,
 * data, start and Adam, on the whole batch (two shards) with the fused
 * training step full() (generated from full.graph): forward, backward and
 * the in-place update in one call. */
#include "common.h"
#include "full.h"

int main(void) {
  float x[FULL_x_SIZE], t[FULL_t_SIZE];
  batch(0, FULL_x_DIM0, x, t);
  float p[NPARAM], loss;
  static double work[FULL_WORK_BYTES / sizeof(double) + 1];
  static double state[FULL_STATE_BYTES / sizeof(double) + 1]; /* zeroed */
  init_params(p);
  for (int step = 0; step < STEPS; step++) {
    full(x, t, p + OFF_W1, p + OFF_b1, p + OFF_W2, p + OFF_b2, &loss, state,
         work);
    printf("step %d loss %.6f\n", step, loss);
  }
  printf("params after %d steps on 1 process:\n", STEPS);
  print_params(p);
  return 0;
}
