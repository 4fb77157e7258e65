/* mlp_main.h — what the MLP step programs (baseline_mlp.c, openblas_mlp.c)
 * share besides the step itself: the Mlp sizes and scratch, .npy I/O, timing
 * and main(). Included twice:
 *
 *   #define MLP_MAIN_DECLS
 *   #include "mlp_main.h"      includes and the Mlp type
 *   static const char *const PROG = "name";   for messages
 *   static void mlp_info(void) { ... }        extra lines on stderr, or none
 *   static float mlp_step(const Mlp *m, ...) { ... }
 *   #include "mlp_main.h"      I/O, timing, main()
 */
#ifdef MLP_MAIN_DECLS
#undef MLP_MAIN_DECLS
#define _POSIX_C_SOURCE 200809L
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* the sizes, and the step's intermediates (allocated once by main()) */
typedef struct {
  int B, IN, H, OUT;
  /* intermediates, allocated once */
  float *h;  /* [B, H]: tanh activations */
  float *y;  /* [B, OUT] */
  float *dy; /* [B, OUT]: dloss/dy */
  float *dz; /* [B, H]: dloss/d(pre-activation) */
} Mlp;

#else

static void die(const char *msg, const char *arg) {
  fprintf(stderr, "%s: %s%s%s\n", PROG, msg, arg ? ": " : "", arg ? arg : "");
  exit(1);
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
    fprintf(stderr, "usage: %s DIR B IN H OUT [--min-time SEC] "
                    "[--min-reps N] [--max-reps N] [--out OUTDIR]\n", PROG);
    return 2;
  }
  mlp_info();
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
#endif
