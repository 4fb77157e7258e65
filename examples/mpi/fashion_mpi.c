/* fashion_mpi.c — data-parallel SGD on Fashion-MNIST with MPI and the C that
 * agc generates: a 784 -> 256 (relu) -> 10 MLP with cross entropy
 * (fashion.graph.in).
 *
 * Every step takes one global batch of 64 training images (a fresh shuffle
 * each epoch, the same on every process). With P processes (P = 1, 2 or 4),
 * process r computes the loss and the gradients of images [r*64/P,
 * (r+1)*64/P) of that batch with the generated fashion<64/P>(),
 * MPI_Allreduce sums the gradients, each process divides them by P, and
 * every process applies the same SGD step. The loss is a mean, so the mean of
 * the shards' gradients is the gradient of the whole batch: 1, 2 or 4
 * processes take the same steps (to float rounding) on the same samples, and
 * the total arithmetic is the same; only who does it changes. That makes the
 * time per epoch at 1 and 2 processes a fair speedup figure.
 *
 *   mpirun -np 2 ./fashion_mpi --epochs 5
 *   fashion_mpi [--epochs N] [--data DIR] [--limit N] [--test-limit N]
 *               [--lr F] [--seed S] [--step-loss] [--dump FILE]
 *
 * --data DIR defaults to /usr/share/datasets/fashion-mnist (Debian's
 * dataset-fashion-mnist); the IDX files may be gzipped (idx.c). --limit N
 * trains on the first N training images only, --test-limit N tests on the
 * first N test images. --step-loss prints every step's loss, --dump FILE
 * writes the final params as raw float32 (W1, b1, W2, b2): the test compares
 * them between 1 and 2 processes.
 */
#include <mpi.h>

#include <errno.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "fashion16.h"
#include "fashion32.h"
#include "fashion64.h"
#include "fashion_eval.h"
#include "idx.h"

#define PROG "fashion_mpi"
#define DEFAULT_DATA "/usr/share/datasets/fashion-mnist"

enum {
  GLOBAL_BATCH = 64,
  NIN = 784,
  NHID = 256,
  NCLASS = 10,
  /* the params (and gradients) in one flat array, so that one allreduce
   * averages them all; one more float carries the loss */
  OFF_W1 = 0,
  OFF_b1 = OFF_W1 + NIN * NHID,
  OFF_W2 = OFF_b1 + NHID,
  OFF_b2 = OFF_W2 + NHID * NCLASS,
  NPARAM = OFF_b2 + NCLASS,
  EVAL_BATCH = FASHION_EVAL_x_DIM0
};

typedef int (*grad_fn)(const float *, const int32_t *, const float *,
                       const float *, const float *, const float *, float *,
                       float *, float *, float *, float *, float *, void *);

/* the generated gradient function for each per-process batch */
static const struct {
  int batch;
  grad_fn fn;
  size_t work;
} kernels[] = {
    {64, fashion64, FASHION64_WORK_BYTES},
    {32, fashion32, FASHION32_WORK_BYTES},
    {16, fashion16, FASHION16_WORK_BYTES},
};

/* splitmix64: the same numbers on every process and every machine */
static uint64_t rng_next(uint64_t *s) {
  uint64_t z = (*s += 0x9e3779b97f4a7c15ull);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}

/* uniform in [-a, a), computed in double then rounded: deterministic */
static float rng_uniform(uint64_t *s, double a) {
  return (float)(a * (2.0 * (double)(rng_next(s) >> 11) * 0x1.0p-53 - 1.0));
}

/* Glorot-uniform weights, zero biases */
static void init_params(float *p, uint64_t seed) {
  uint64_t s = seed;
  double a1 = sqrt(6.0 / (NIN + NHID)), a2 = sqrt(6.0 / (NHID + NCLASS));
  for (long k = 0; k < NIN * NHID; k++)
    p[OFF_W1 + k] = rng_uniform(&s, a1);
  for (long k = 0; k < NHID * NCLASS; k++)
    p[OFF_W2 + k] = rng_uniform(&s, a2);
  memset(p + OFF_b1, 0, NHID * sizeof(float));
  memset(p + OFF_b2, 0, NCLASS * sizeof(float));
}

/* Fisher-Yates with a per-epoch stream: every process gets the same order */
static void shuffle(long *perm, long n, uint64_t seed, int epoch) {
  uint64_t s = seed ^ (0x51ed2701ull * (uint64_t)(epoch + 1));
  for (long i = 0; i < n; i++)
    perm[i] = i;
  for (long i = n - 1; i > 0; i--) {
    long j = (long)(rng_next(&s) % (uint64_t)(i + 1));
    long t = perm[i];
    perm[i] = perm[j];
    perm[j] = t;
  }
}

/* images idx[0..n) of set as floats in [0, 1] and int32 labels */
static void gather(const idx_set *set, const long *idx, int n, float *x,
                   int32_t *y) {
  for (int k = 0; k < n; k++) {
    const uint8_t *px = set->pixels + idx[k] * NIN;
    for (int j = 0; j < NIN; j++)
      x[(long)k * NIN + j] = (float)px[j] * (1.0f / 255.0f);
    y[k] = set->labels[idx[k]];
  }
}

typedef struct {
  int epochs;
  const char *data;
  long limit, test_limit;
  float lr;
  uint64_t seed;
  int step_loss;
  const char *dump;
} options;

static int parse_long(const char *s, long lo, long *out) {
  char *end;
  errno = 0;
  long v = strtol(s, &end, 10);
  if (errno || end == s || *end || v < lo)
    return -1;
  *out = v;
  return 0;
}

/* 0, or -1 with a one-line message in err */
static int parse_args(int argc, char **argv, options *o, char *err,
                      size_t errlen) {
  *o = (options){1, DEFAULT_DATA, 0, 0, 0.1f, 1, 0, NULL};
  for (int i = 1; i < argc; i++) {
    const char *a = argv[i];
    int has = i + 1 < argc;
    const char *v = has ? argv[i + 1] : NULL;
    long n;
    if (!strcmp(a, "--step-loss")) {
      o->step_loss = 1;
      continue;
    }
    if (!strcmp(a, "--epochs") || !strcmp(a, "--data") ||
        !strcmp(a, "--limit") || !strcmp(a, "--test-limit") ||
        !strcmp(a, "--lr") || !strcmp(a, "--seed") || !strcmp(a, "--dump")) {
      if (!has) {
        snprintf(err, errlen, "%s needs a value", a);
        return -1;
      }
      i++;
    } else {
      snprintf(err, errlen,
               "unknown option '%s' (options: --epochs N, --data DIR, "
               "--limit N, --test-limit N, --lr F, --seed S, --step-loss, "
               "--dump FILE)",
               a);
      return -1;
    }
    if (!strcmp(a, "--data")) {
      o->data = v;
    } else if (!strcmp(a, "--dump")) {
      o->dump = v;
    } else if (!strcmp(a, "--lr")) {
      char *end;
      errno = 0;
      double lr = strtod(v, &end);
      if (errno || end == v || *end || !(lr > 0 && lr < 100)) {
        snprintf(err, errlen, "--lr '%s': expected a number in (0, 100)", v);
        return -1;
      }
      o->lr = (float)lr;
    } else if (parse_long(v, !strcmp(a, "--seed") ? 0 : 1, &n) ||
               (!strcmp(a, "--epochs") && n > 1000)) {
      snprintf(err, errlen, "%s '%s': expected %s", a, v,
               !strcmp(a, "--seed")     ? "an integer >= 0"
               : !strcmp(a, "--epochs") ? "an integer in 1..1000"
                                        : "an integer >= 1");
      return -1;
    } else if (!strcmp(a, "--epochs")) {
      o->epochs = (int)n;
    } else if (!strcmp(a, "--limit")) {
      o->limit = n;
    } else if (!strcmp(a, "--test-limit")) {
      o->test_limit = n;
    } else {
      o->seed = (uint64_t)n;
    }
  }
  return 0;
}

/* Test accuracy and mean loss over the first n images of set: the eval
 * batches are dealt round-robin to the processes; the last one is padded
 * with copies of the last image, whose results are not counted. */
static void evaluate(const idx_set *set, long n, const float *p, int rank,
                     int size, long *correct, double *loss_sum) {
  static float x[FASHION_EVAL_x_SIZE], logits[FASHION_EVAL_logits_SIZE];
  static int32_t y[EVAL_BATCH];
  static double work[FASHION_EVAL_WORK_BYTES / sizeof(double) + 1];
  long idx[EVAL_BATCH];
  double local[2] = {0, 0}; /* correct, loss sum */
  long nbatch = (n + EVAL_BATCH - 1) / EVAL_BATCH;
  for (long b = rank; b < nbatch; b += size) {
    int real = (int)(n - b * EVAL_BATCH < EVAL_BATCH ? n - b * EVAL_BATCH
                                                     : EVAL_BATCH);
    for (int k = 0; k < EVAL_BATCH; k++)
      idx[k] = b * EVAL_BATCH + (k < real ? k : real - 1);
    gather(set, idx, EVAL_BATCH, x, y);
    float loss;
    fashion_eval(x, y, p + OFF_W1, p + OFF_b1, p + OFF_W2, p + OFF_b2, &loss,
                 logits, work);
    for (int k = 0; k < real; k++) {
      const float *z = logits + k * NCLASS;
      int best = 0;
      double m = z[0], s = 0;
      for (int c = 1; c < NCLASS; c++)
        if (z[c] > z[best])
          best = c;
      m = z[best];
      for (int c = 0; c < NCLASS; c++)
        s += exp((double)z[c] - m);
      local[0] += best == y[k];
      local[1] += m + log(s) - z[y[k]]; /* this image's cross entropy */
    }
  }
  MPI_Allreduce(MPI_IN_PLACE, local, 2, MPI_DOUBLE, MPI_SUM, MPI_COMM_WORLD);
  *correct = (long)local[0];
  *loss_sum = local[1];
}

/* this process's CPU time in seconds: unlike the wall time, it does not
 * grow when other work on the machine takes the cores */
static double cpu_seconds(void) {
  struct timespec ts;
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
  return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* 1 on every process if any process has ok == 0 */
static int any_failed(int ok) {
  int all_ok = ok;
  MPI_Allreduce(MPI_IN_PLACE, &all_ok, 1, MPI_INT, MPI_MIN, MPI_COMM_WORLD);
  return !all_ok;
}

int main(int argc, char **argv) {
  MPI_Init(&argc, &argv);
  int rank, size;
  MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  MPI_Comm_size(MPI_COMM_WORLD, &size);
  char err[8192] = "";

  options o;
  if (parse_args(argc, argv, &o, err, sizeof err)) {
    if (rank == 0)
      fprintf(stderr, PROG ": %s\n", err);
    MPI_Finalize();
    return 2;
  }
  int kernel = -1;
  for (size_t k = 0; k < sizeof kernels / sizeof kernels[0]; k++)
    if (kernels[k].batch * size == GLOBAL_BATCH)
      kernel = (int)k;
  if (kernel < 0) {
    if (rank == 0)
      fprintf(stderr,
              PROG ": %d processes: the global batch of %d splits over 1, 2 "
                   "or 4 processes\n",
              size, GLOBAL_BATCH);
    MPI_Finalize();
    return 2;
  }
  const int B = kernels[kernel].batch; /* images per process per step */

  /* every process reads the data (the same files: the same result) */
  idx_set train, test;
  int ok = idx_load(o.data, "train", NCLASS, &train, err, sizeof err) == 0;
  if (ok && (train.rows * train.cols != NIN)) {
    snprintf(err, sizeof err, "%s: training images are %dx%d, expected 28x28",
             o.data, train.rows, train.cols);
    ok = 0;
  }
  if (ok && idx_load(o.data, "t10k", NCLASS, &test, err, sizeof err)) {
    idx_free(&train);
    ok = 0;
  }
  if (ok && (test.rows * test.cols != NIN)) {
    snprintf(err, sizeof err, "%s: test images are %dx%d, expected 28x28",
             o.data, test.rows, test.cols);
    idx_free(&train);
    idx_free(&test);
    ok = 0;
  }
  if (any_failed(ok)) {
    const char *hint = !ok && !strcmp(o.data, DEFAULT_DATA) &&
                               strstr(err, "cannot open: No such file")
                           ? " (apt-get install dataset-fashion-mnist)"
                           : "";
    if (rank == 0)
      fprintf(stderr, PROG ": %s%s\n",
              ok ? "another process could not read the data" : err, hint);
    MPI_Finalize();
    return 1;
  }
  long ntrain = o.limit && o.limit < train.n ? o.limit : train.n;
  long ntest = o.test_limit && o.test_limit < test.n ? o.test_limit : test.n;
  long steps_per_epoch = ntrain / GLOBAL_BATCH;
  if (steps_per_epoch == 0) {
    if (rank == 0)
      fprintf(stderr,
              PROG ": %ld training images: fewer than one batch of %d\n",
              ntrain, GLOBAL_BATCH);
    MPI_Finalize();
    return 2;
  }

  float *p = malloc(NPARAM * sizeof(float));
  float *g = malloc((NPARAM + 1) * sizeof(float)); /* gradients, then loss */
  float *x = malloc((size_t)B * NIN * sizeof(float));
  int32_t *y = malloc((size_t)B * sizeof(int32_t));
  long *perm = malloc((size_t)ntrain * sizeof(long));
  double *work = malloc(kernels[kernel].work + sizeof(double));
  static float logits[GLOBAL_BATCH * NCLASS]; /* unused here */
  if (any_failed(p && g && x && y && perm && work)) {
    if (rank == 0)
      fprintf(stderr, PROG ": out of memory\n");
    MPI_Finalize();
    return 1;
  }
  init_params(p, o.seed);
  if (rank == 0)
    printf("%d process%s, global batch %d (%d per process), %ld training "
           "images (%ld steps per epoch), %ld test images, lr %g\n",
           size, size == 1 ? "" : "es", GLOBAL_BATCH, B, ntrain,
           steps_per_epoch, ntest, (double)o.lr);

  /* progress on a terminal only: step, loss, elapsed, redrawn at most
     every 0.2 s and erased before the epoch's line; never into a file */
  const int tty = rank == 0 && isatty(STDERR_FILENO);
  double drawn = 0;
  double total_time = 0;
  for (int epoch = 0; epoch < o.epochs; epoch++) {
    shuffle(perm, ntrain, o.seed, epoch);
    double loss_sum = 0, reduce_time = 0, reduce_cpu = 0;
    MPI_Barrier(MPI_COMM_WORLD);
    double t0 = MPI_Wtime(), c0 = cpu_seconds();
    for (long step = 0; step < steps_per_epoch; step++) {
      /* this process's shard of the global batch */
      gather(&train, perm + step * GLOBAL_BATCH + (long)rank * B, B, x, y);
      kernels[kernel].fn(x, y, p + OFF_W1, p + OFF_b1, p + OFF_W2,
                         p + OFF_b2, g + NPARAM, logits,
                         g + OFF_W1, g + OFF_b1, g + OFF_W2, g + OFF_b2,
                         work);
      double r0 = MPI_Wtime(), rc0 = cpu_seconds();
      MPI_Allreduce(MPI_IN_PLACE, g, NPARAM + 1, MPI_FLOAT, MPI_SUM,
                    MPI_COMM_WORLD);
      reduce_time += MPI_Wtime() - r0;
      reduce_cpu += cpu_seconds() - rc0; /* Open MPI spins while it waits */
      float inv = 1.0f / (float)size;
      for (long k = 0; k < NPARAM; k++)
        p[k] -= o.lr * (g[k] * inv); /* SGD, the same on every process */
      loss_sum += g[NPARAM] * inv;
      if (o.step_loss && rank == 0)
        printf("step %ld loss %.9g\n", epoch * steps_per_epoch + step,
               (double)(g[NPARAM] * inv));
      if (tty && MPI_Wtime() - drawn > 0.2) {
        drawn = MPI_Wtime();
        fprintf(stderr, "\r" PROG ": epoch %d step %ld/%ld loss %.4f "
                "%.1f s ", epoch + 1, step + 1, steps_per_epoch,
                loss_sum / (double)(step + 1), total_time + drawn - t0);
      }
    }
    if (tty)
      fprintf(stderr, "\r\033[K");
    MPI_Barrier(MPI_COMM_WORLD);
    double dt = MPI_Wtime() - t0;
    /* CPU time outside the allreduce: the largest, the sum */
    double cpu[2] = {cpu_seconds() - c0 - reduce_cpu, 0};
    cpu[1] = cpu[0];
    MPI_Allreduce(MPI_IN_PLACE, cpu, 1, MPI_DOUBLE, MPI_MAX, MPI_COMM_WORLD);
    MPI_Allreduce(MPI_IN_PLACE, cpu + 1, 1, MPI_DOUBLE, MPI_SUM,
                  MPI_COMM_WORLD);
    total_time += dt;
    if (rank == 0) {
      printf("epoch %d time %.3f s (%.2f ms/step, allreduce and wait %.3f "
             "s; compute cpu %.3f s per process at most, %.3f s in all) train "
             "loss %.6f\n",
             epoch + 1, dt, 1e3 * dt / (double)steps_per_epoch, reduce_time,
             cpu[0], cpu[1], loss_sum / (double)steps_per_epoch);
      fflush(stdout);
    }
  }
  long correct;
  double test_loss;
  evaluate(&test, ntest, p, rank, size, &correct, &test_loss);
  if (rank == 0) {
    printf("test accuracy %.4f (%ld/%ld) loss %.6f after %d epoch%s, "
           "%.3f s training\n",
           (double)correct / (double)ntest, correct, ntest,
           test_loss / (double)ntest, o.epochs, o.epochs == 1 ? "" : "s",
           total_time);
  }
  int status = 0;
  if (rank == 0 && o.dump) {
    FILE *f = fopen(o.dump, "wb");
    int bad = !f;
    if (f) {
      bad = fwrite(p, sizeof(float), NPARAM, f) != NPARAM;
      bad |= fclose(f) != 0;
    }
    if (bad) {
      fprintf(stderr, PROG ": %s: cannot write the params: %s\n", o.dump,
              strerror(errno));
      status = 1;
    }
  }
  idx_free(&train);
  idx_free(&test);
  free(p);
  free(g);
  free(x);
  free(y);
  free(perm);
  free(work);
  MPI_Finalize();
  return status;
}
