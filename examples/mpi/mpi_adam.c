/* mpi_adam.c — data-parallel training with MPI and the C agc generates.
 *
 * shard.graph ends with `optimizer adam(...)`, so its C has three functions:
 * shard (one fused step), shard_grad (loss and gradients) and shard_update
 * (one Adam step from given gradients). Every process holds the same params
 * and optimizer state, computes the gradients of its own shard of the batch
 * with shard_grad, MPI_Allreduce sums them, every process divides by the
 * number of processes and applies the same shard_update. The mean of the
 * shards' mean losses is the full batch's mean loss, so the params follow
 * the one-process run of the fused step on the whole batch (full_adam.c)
 * to float rounding.
 *
 *   mpirun -np 2 ./mpi_adam
 */
#include <mpi.h>

#include "common.h"
#include "shard.h"

int main(int argc, char **argv) {
  MPI_Init(&argc, &argv);
  int rank, size;
  MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  MPI_Comm_size(MPI_COMM_WORLD, &size);

  enum { B = SHARD_x_DIM0 }; /* samples per process */
  float x[SHARD_x_SIZE], t[SHARD_t_SIZE];
  batch((long)rank * B, B, x, t); /* this process's shard */

  float p[NPARAM], g[NPARAM], loss;
  static double work[SHARD_GRAD_WORK_BYTES / sizeof(double) + 1];
  static double state[SHARD_STATE_BYTES / sizeof(double) + 1]; /* zeroed */
  init_params(p);
  for (int step = 0; step < STEPS; step++) {
    shard_grad(x, t, p + OFF_W1, p + OFF_b1, p + OFF_W2, p + OFF_b2, &loss,
               g + OFF_W1, g + OFF_b1, g + OFF_W2, g + OFF_b2, work);
    /* average the gradients (and, for the report, the losses) */
    MPI_Allreduce(MPI_IN_PLACE, g, NPARAM, MPI_FLOAT, MPI_SUM, MPI_COMM_WORLD);
    MPI_Allreduce(MPI_IN_PLACE, &loss, 1, MPI_FLOAT, MPI_SUM, MPI_COMM_WORLD);
    for (int k = 0; k < NPARAM; k++)
      g[k] /= (float)size;
    /* the same Adam step on every process */
    shard_update(p + OFF_W1, p + OFF_b1, p + OFF_W2, p + OFF_b2, g + OFF_W1,
                 g + OFF_b1, g + OFF_W2, g + OFF_b2, state);
    if (rank == 0)
      printf("step %d loss %.6f\n", step, loss / (float)size);
  }
  if (rank == 0) {
    printf("params after %d steps on %d processes:\n", STEPS, size);
    print_params(p);
  }
  MPI_Finalize();
  return 0;
}
