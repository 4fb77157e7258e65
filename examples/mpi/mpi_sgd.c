/* mpi_sgd.c — data-parallel training with MPI and the C agc generates.
 *
 * Every process holds the same params, computes the loss and the gradients
 * on its own shard of the batch with shard() (generated from shard.graph),
 * MPI_Allreduce sums the gradients, and every process divides by the number
 * of processes and applies the same SGD step. The mean of the shards' mean
 * losses is the full batch's mean loss, so the params follow the
 * one-process run on the whole batch (full_sgd.c) to float rounding.
 *
 *   mpirun -np 2 ./mpi_sgd
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
  static double work[SHARD_WORK_BYTES / sizeof(double) + 1];
  init_params(p);
  for (int step = 0; step < STEPS; step++) {
    shard(x, t, p + OFF_W1, p + OFF_b1, p + OFF_W2, p + OFF_b2, &loss,
          g + OFF_W1, g + OFF_b1, g + OFF_W2, g + OFF_b2, work);
    /* average the gradients (and, for the report, the losses) */
    MPI_Allreduce(MPI_IN_PLACE, g, NPARAM, MPI_FLOAT, MPI_SUM, MPI_COMM_WORLD);
    MPI_Allreduce(MPI_IN_PLACE, &loss, 1, MPI_FLOAT, MPI_SUM, MPI_COMM_WORLD);
    for (int k = 0; k < NPARAM; k++)
      g[k] /= (float)size;
    sgd_step(p, g);
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
