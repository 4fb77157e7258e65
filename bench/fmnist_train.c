/* fmnist_train.c — SGD training on Fashion-MNIST with an agc-generated step.
 *
 * The step is bench.py's fmnist graph (784 -> 256 relu -> 10, cross_entropy,
 * batch 64) compiled by `agc fmnist.graph -o fmnist.c --header fmnist.h`;
 * this file supplies the data, the SGD update and the clock:
 *   gcc -O3 -march=native -std=c11 -I DIR fmnist_train.c DIR/fmnist.c -o fmnist_train -lm
 *
 * Usage: fmnist_train DATA EPOCHS LR OUT
 *   DATA/train-images-idx3-ubyte, DATA/train-labels-idx1-ubyte: the training
 *       set as IDX files (not gzipped); pixels are scaled to [0, 1].
 *   DATA/{W1,b1,W2,b2}.f32: initial params, raw little-endian float32.
 *   DATA/perm.i32: EPOCHS x N int32, the order of the examples in each epoch
 *       (bench.py writes it; PyTorch reads the same files).
 * Each epoch runs N / 64 steps (the last partial batch is dropped): copy the
 * batch's rows, call the generated step (loss and gradients), then
 * P -= LR * grad_P. Prints "epoch=E seconds=S mean_loss=L" per epoch on
 * standard output (S: the epoch's wall time, data copies included) and writes
 * OUT/{W1,b1,W2,b2}.f32 at the end.
 */
#define _POSIX_C_SOURCE 200809L
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "fmnist.h"

#define BATCH FMNIST_x_DIM0
#define NIN FMNIST_x_DIM1

static void die(const char *msg, const char *arg) {
  fprintf(stderr, "fmnist_train: %s%s%s\n", msg, arg ? ": " : "", arg ? arg : "");
  exit(1);
}

static unsigned char *read_all(const char *path, size_t *len) {
  FILE *f = fopen(path, "rb");
  if (!f) die("cannot open", path);
  fseek(f, 0, SEEK_END);
  long n = ftell(f);
  fseek(f, 0, SEEK_SET);
  unsigned char *p = malloc(n > 0 ? (size_t)n : 1);
  if (!p || fread(p, 1, (size_t)n, f) != (size_t)n) die("cannot read", path);
  fclose(f);
  *len = (size_t)n;
  return p;
}

static uint32_t be32(const unsigned char *p) {
  return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

/* an IDX file of unsigned bytes: returns the data, *count = dim 0, *each =
   product of the other dims */
static unsigned char *idx_read(const char *path, size_t *count, size_t *each) {
  size_t len;
  unsigned char *p = read_all(path, &len);
  if (len < 8 || p[0] || p[1] || p[2] != 0x08) die("not an IDX ubyte file", path);
  int rank = p[3];
  if (len < 4 + 4 * (size_t)rank) die("truncated IDX header", path);
  *count = be32(p + 4);
  *each = 1;
  for (int d = 1; d < rank; d++) *each *= be32(p + 4 + 4 * d);
  size_t off = 4 + 4 * (size_t)rank;
  if (len - off != *count * *each) die("IDX size mismatch", path);
  return p + off; /* leaked with the header: read once */
}

static float *read_f32(const char *dir, const char *name, size_t n) {
  char path[4096];
  snprintf(path, sizeof path, "%s/%s.f32", dir, name);
  size_t len;
  unsigned char *p = read_all(path, &len);
  if (len != n * sizeof(float)) die("unexpected size", path);
  return (float *)p;
}

static void write_f32(const char *dir, const char *name, const float *a, size_t n) {
  char path[4096];
  snprintf(path, sizeof path, "%s/%s.f32", dir, name);
  FILE *f = fopen(path, "wb");
  if (!f || fwrite(a, sizeof *a, n, f) != n || fclose(f) != 0) die("cannot write", path);
}

static double now_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static void sgd(float *p, const float *g, size_t n, float lr) {
  for (size_t i = 0; i < n; i++) p[i] -= lr * g[i];
}

int main(int argc, char **argv) {
  if (argc != 5) {
    fprintf(stderr, "usage: fmnist_train DATA EPOCHS LR OUT\n");
    return 2;
  }
  const char *dir = argv[1], *outdir = argv[4];
  const int epochs = atoi(argv[2]);
  const float lr = (float)atof(argv[3]);
  char path[4096];
  size_t n, each, nl, one;
  snprintf(path, sizeof path, "%s/train-images-idx3-ubyte", dir);
  const unsigned char *img = idx_read(path, &n, &each);
  snprintf(path, sizeof path, "%s/train-labels-idx1-ubyte", dir);
  const unsigned char *lab = idx_read(path, &nl, &one);
  if (each != NIN || nl != n || one != 1) die("unexpected data shape", dir);
  float *xs = malloc(sizeof *xs * n * NIN);
  if (!xs) die("out of memory", NULL);
  for (size_t i = 0; i < n * NIN; i++) xs[i] = (float)img[i] / 255.0f;

  float *W1 = read_f32(dir, "W1", FMNIST_W1_SIZE), *b1 = read_f32(dir, "b1", FMNIST_b1_SIZE);
  float *W2 = read_f32(dir, "W2", FMNIST_W2_SIZE), *b2 = read_f32(dir, "b2", FMNIST_b2_SIZE);
  size_t plen;
  snprintf(path, sizeof path, "%s/perm.i32", dir);
  const int32_t *perm = (const int32_t *)read_all(path, &plen);
  if (plen < (size_t)epochs * n * sizeof(int32_t)) die("perm.i32 too short", path);

  static float x[BATCH * NIN], gW1[FMNIST_W1_SIZE], gb1[FMNIST_b1_SIZE],
      gW2[FMNIST_W2_SIZE], gb2[FMNIST_b2_SIZE];
  static int32_t labels[BATCH];
  void *work = aligned_alloc(64, (FMNIST_WORK_BYTES + 63) / 64 * 64 + 64);
  if (!work) die("out of memory", NULL);
  const size_t steps = n / BATCH;
  for (int e = 0; e < epochs; e++) {
    const int32_t *order = perm + (size_t)e * n;
    double sum = 0.0, t0 = now_s();
    for (size_t s = 0; s < steps; s++) {
      for (int i = 0; i < BATCH; i++) {
        size_t k = (size_t)order[s * BATCH + (size_t)i];
        memcpy(x + (size_t)i * NIN, xs + k * NIN, sizeof *x * NIN);
        labels[i] = lab[k];
      }
      float loss;
      if (fmnist(x, labels, W1, b1, W2, b2, &loss, gW1, gb1, gW2, gb2, work) != 0)
        die("the generated step failed", NULL);
      sgd(W1, gW1, FMNIST_W1_SIZE, lr);
      sgd(b1, gb1, FMNIST_b1_SIZE, lr);
      sgd(W2, gW2, FMNIST_W2_SIZE, lr);
      sgd(b2, gb2, FMNIST_b2_SIZE, lr);
      sum += loss;
    }
    printf("epoch=%d seconds=%.4f mean_loss=%.6f\n", e + 1, now_s() - t0,
           sum / (double)steps);
    fflush(stdout);
  }
  write_f32(outdir, "W1", W1, FMNIST_W1_SIZE);
  write_f32(outdir, "b1", b1, FMNIST_b1_SIZE);
  write_f32(outdir, "W2", W2, FMNIST_W2_SIZE);
  write_f32(outdir, "b2", b2, FMNIST_b2_SIZE);
  return 0;
}
