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
#define _POSIX_C_SOURCE 200809L
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static void die(const char *msg, const char *arg) {
  fprintf(stderr, "baseline_mlp: %s%s%s\n", msg, arg ? ": " : "", arg ? arg : "");
  exit(1);
}

/* ---- the step --------------------------------------------------------- */

typedef struct {
  int B, IN, H, OUT;
  /* intermediates, allocated once */
  float *h;  /* [B, H]: tanh activations */
  float *y;  /* [B, OUT] */
  float *dy; /* [B, OUT]: dloss/dy */
  float *dz; /* [B, H]: dloss/d(pre-activation) */
} Mlp;

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

/* ---- minimal .npy I/O ('<f4', C order) -------------------------------- */

static float *npy_read(const char *path, size_t want) {
  FILE *f = fopen(path, "rb");
  if (!f) die("cannot open", path);
  unsigned char pre[10];
  if (fread(pre, 1, 10, f) != 10 || memcmp(pre, "\x93NUMPY", 6) != 0)
    die("not a .npy file", path);
  size_t hlen;
  if (pre[6] == 1) {
    hlen = pre[8] | (size_t)pre[9] << 8;
  } else {
    unsigned char more[2];
    if (fread(more, 1, 2, f) != 2) die("truncated header", path);
    hlen = pre[8] | (size_t)pre[9] << 8 | (size_t)more[0] << 16 |
           (size_t)more[1] << 24;
  }
  char *hdr = malloc(hlen + 1);
  if (!hdr || fread(hdr, 1, hlen, f) != hlen) die("truncated header", path);
  hdr[hlen] = 0;
  if (!strstr(hdr, "'<f4'") || strstr(hdr, "'fortran_order': True"))
    die("expected a C-order '<f4' array", path);
  /* element count from the shape tuple */
  const char *s = strstr(hdr, "'shape':");
  if (!s || !(s = strchr(s, '('))) die("no shape", path);
  size_t n = 1;
  for (s++; *s && *s != ')';) {
    if (*s >= '0' && *s <= '9') {
      n *= strtoull(s, (char **)&s, 10);
    } else {
      s++;
    }
  }
  free(hdr);
  if (n != want) die("unexpected element count", path);
  float *data = malloc(sizeof *data * (n ? n : 1));
  if (!data || fread(data, sizeof *data, n, f) != n) die("truncated data", path);
  fclose(f);
  return data;
}

static void npy_write(const char *path, const float *a, int rank,
                      const long *dims) {
  char shape[128] = "(";
  size_t n = 1;
  for (int d = 0; d < rank; d++) {
    char buf[32];
    snprintf(buf, sizeof buf, "%ld%s", dims[d], rank == 1 ? "," : (d + 1 < rank ? ", " : ""));
    strcat(shape, buf);
    n *= (size_t)dims[d];
  }
  strcat(shape, ")");
  char hdr[256];
  int len = snprintf(hdr, sizeof hdr,
                     "{'descr': '<f4', 'fortran_order': False, 'shape': %s, }",
                     shape);
  int total = 10 + len + 1;
  int pad = (64 - total % 64) % 64;
  FILE *f = fopen(path, "wb");
  if (!f) die("cannot write", path);
  unsigned short hl = (unsigned short)(len + pad + 1);
  fwrite("\x93NUMPY\x01\x00", 1, 8, f);
  fputc(hl & 0xff, f);
  fputc(hl >> 8, f);
  fwrite(hdr, 1, (size_t)len, f);
  for (int i = 0; i < pad; i++) fputc(' ', f);
  fputc('\n', f);
  fwrite(a, sizeof *a, n, f);
  if (fclose(f) != 0) die("cannot write", path);
}

/* ---- timing ------------------------------------------------------------ */

static double now_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static int cmp_double(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return (x > y) - (x < y);
}

int main(int argc, char **argv) {
  if (argc < 6) {
    fprintf(stderr, "usage: baseline_mlp DIR B IN H OUT [--min-time SEC] "
                    "[--min-reps N] [--max-reps N] [--out OUTDIR]\n");
    return 2;
  }
  const char *dir = argv[1];
  Mlp m = {atoi(argv[2]), atoi(argv[3]), atoi(argv[4]), atoi(argv[5]),
           NULL, NULL, NULL, NULL};
  if (m.B <= 0 || m.IN <= 0 || m.H <= 0 || m.OUT <= 0) die("bad shape", NULL);
#ifdef MLP_B
  if (m.B != MLP_B || m.IN != MLP_IN || m.H != MLP_H || m.OUT != MLP_OUT)
    die("shape differs from the one compiled in (-DMLP_B...)", NULL);
#endif
  double min_time = 0.5;
  long min_reps = 3, max_reps = 10000000;
  const char *outdir = NULL;
  for (int i = 6; i < argc; i++) {
    if (!strcmp(argv[i], "--min-time") && i + 1 < argc) min_time = atof(argv[++i]);
    else if (!strcmp(argv[i], "--min-reps") && i + 1 < argc) min_reps = atol(argv[++i]);
    else if (!strcmp(argv[i], "--max-reps") && i + 1 < argc) max_reps = atol(argv[++i]);
    else if (!strcmp(argv[i], "--out") && i + 1 < argc) outdir = argv[++i];
    else die("unknown option", argv[i]);
  }
  const size_t B = (size_t)m.B, IN = (size_t)m.IN, H = (size_t)m.H,
               OUT = (size_t)m.OUT;
  char path[4096];
#define LOAD(name, n) (snprintf(path, sizeof path, "%s/%s.npy", dir, name), npy_read(path, n))
  float *x = LOAD("x", B * IN), *t = LOAD("t", B * OUT);
  float *W1 = LOAD("W1", IN * H), *b1 = LOAD("b1", H);
  float *W2 = LOAD("W2", H * OUT), *b2 = LOAD("b2", OUT);
  float *gW1 = malloc(sizeof(float) * IN * H), *gb1 = malloc(sizeof(float) * H);
  float *gW2 = malloc(sizeof(float) * H * OUT), *gb2 = malloc(sizeof(float) * OUT);
  m.h = malloc(sizeof(float) * B * H);
  m.y = malloc(sizeof(float) * B * OUT);
  m.dy = malloc(sizeof(float) * B * OUT);
  m.dz = malloc(sizeof(float) * B * H);
  if (!gW1 || !gb1 || !gW2 || !gb2 || !m.h || !m.y || !m.dy || !m.dz)
    die("out of memory", NULL);

  float loss = mlp_step(&m, x, t, W1, b1, W2, b2, gW1, gb1, gW2, gb2); /* warm-up */
  size_t cap = 1024, n = 0;
  double *times = malloc(sizeof *times * cap), start = now_s();
  while (n < (size_t)max_reps &&
         (n < (size_t)min_reps || now_s() - start < min_time)) {
    double t0 = now_s();
    loss = mlp_step(&m, x, t, W1, b1, W2, b2, gW1, gb1, gW2, gb2);
    double dt = now_s() - t0;
    if (n == cap) times = realloc(times, sizeof *times * (cap *= 2));
    times[n++] = dt * 1e6;
  }
  qsort(times, n, sizeof *times, cmp_double);
  double med = n % 2 ? times[n / 2] : (times[n / 2 - 1] + times[n / 2]) / 2;
  fprintf(stderr, "median_us=%.3f calls=%zu\n", med, n);

  if (outdir) {
    long d0[1] = {0}, d2[2];
    snprintf(path, sizeof path, "%s/loss.npy", outdir);
    npy_write(path, &loss, 0, d0);
    d2[0] = (long)IN, d2[1] = (long)H;
    snprintf(path, sizeof path, "%s/grad_W1.npy", outdir);
    npy_write(path, gW1, 2, d2);
    d0[0] = (long)H;
    snprintf(path, sizeof path, "%s/grad_b1.npy", outdir);
    npy_write(path, gb1, 1, d0);
    d2[0] = (long)H, d2[1] = (long)OUT;
    snprintf(path, sizeof path, "%s/grad_W2.npy", outdir);
    npy_write(path, gW2, 2, d2);
    d0[0] = (long)OUT;
    snprintf(path, sizeof path, "%s/grad_b2.npy", outdir);
    npy_write(path, gb2, 1, d0);
  }
  return 0;
}
