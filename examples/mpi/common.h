/* common.h — what mpi_adam.c and full_adam.c share: the data and the
 * starting params, so that the two differ only in who computes the gradient
 * of which samples (the Adam step is agc's, from the graphs). */
#ifndef MPI_EXAMPLE_COMMON_H
#define MPI_EXAMPLE_COMMON_H

#include <math.h>
#include <stdio.h>

/* The params, in one flat array (so that one MPI_Allreduce averages every
 * gradient): W1[4, 16], b1[16], W2[16, 1], b2[1]. */
enum { OFF_W1 = 0, OFF_b1 = 64, OFF_W2 = 80, OFF_b2 = 96, NPARAM = 97 };
#define STEPS 10

/* Sample i of the global data set: 4 features and a target. */
static void sample(long i, float *x, float *t) {
  float s = 0;
  for (int j = 0; j < 4; j++) {
    x[j] = sinf(0.7f * (float)i + 1.3f * (float)j);
    s += x[j] * (float)(j + 1);
  }
  *t = tanhf(0.5f * s);
}

/* Rows [first, first + n) of the data set. */
static void batch(long first, int n, float *x, float *t) {
  for (int k = 0; k < n; k++)
    sample(first + k, x + 4 * k, t + k);
}

static void init_params(float *p) {
  for (int k = 0; k < NPARAM; k++)
    p[k] = 0.5f * sinf(1.7f * (float)k + 0.3f);
}

static void print_params(const float *p) {
  for (int k = 0; k < NPARAM; k++)
    printf("%.9g%c", p[k], k % 8 == 7 || k == NPARAM - 1 ? '\n' : ' ');
}

#endif
