/* agc_random.c — the random differential tester.
 *
 * For every random graph (gen.c) or given .graph file:
 *  1. ref: f64, -O0, tcc — the reference values; its inputs perturbed by a
 *     relative 1e-5 twice give each output's sensitivity (how much rounding
 *     of the inputs and intermediates can move it);
 *  2. tcc f64, tcc f32, -O0 f32 (in-process, JIT), compared with ref;
 *  3. every gradient of the ref against central finite differences of the
 *     backward roots (a sample of elements for big params);
 *  4. cc f32/f64: the generated C of many graphs concatenated, compiled by
 *     the runtime's cc backend (agc_module_compile) in chunks of under
 *     96 KB (so -O3 -march=native applies, as for one graph) and compared;
 *  5. ASan: the same C with a driver, built with gcc -fsanitize=address,
 *     undefined; every input, output and the workspace malloc'ed to its
 *     exact size (NAME_WORK_BYTES); a sanitizer report names the graph;
 *     the outputs are compared with ref too.
 * Failures are written as .graph files that reproduce them (shrunk).
 * See README.md.
 */
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <ctype.h>
#include <dirent.h>
#include <setjmp.h>
#include <signal.h>
#include <fcntl.h>
#include <time.h>
#include <unistd.h>

#include "agc.h"
#include "agc_api.h"
#include "rgraph.h"

/* ---- options and counters ---------------------------------------------- */

static struct {
  long n;
  uint64_t seed;
  const char *repro;
  int asan, cc, shrink, fd, shrink_max;
  int asan_every, cc_every;
  int batch;
  double time_limit;
  int verbose;
  int compile_only;
  long first;
  RGenOpts gen;
  const char *check_dir;
  const char *tmp;
} opt = {2000, 1, "random-failures", 1, 1, 1, 1, 3, 1, 1, 40, 0, 0,
         0, 0, {64, 4096, 12, 0.15}, NULL, NULL};

static struct {
  long graphs, failed_graphs, mismatches, sanitizer, rejected, fd_fail;
  long skip_nonfinite, skip_unstable, skip_fd_graph, fd_checked, fd_skipped;
  long cc_graphs, asan_graphs, xfailed, xpass;
  long train_graphs, skip_step, steps_checked, step_noise, threads_graphs, f32_ties;
  long step_f32_inf; /* training graphs whose f32 reference overflows */
  long parts_units; /* host C (3 threads) with loops cut into parts */
  long row_parts;   /* JIT f32 (3 threads) with row-kernel loops in parts */
  long f32_jumps, f32_margins, f64_margins, f32_rounding, contraction, zero_noise, f32_flush, kernel_graphs;
  double t_inproc, t_cc, t_asan;
} st;

static double now(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

#define xfmt rg_fmt /* gen.c */

/* ---- a case: one graph, its data and reference ---------------------------- */

/* Configurations: back end (tcc in-process, cc, ASan) x target (host,
 * mcu) x dtype, and -O0 f32 (the f32 reference). */
enum { CFG_TCC64, CFG_TCC32, CFG_O0_32, CFG_CC64, CFG_CC32, CFG_ASAN64,
       CFG_ASAN32, CFG_MCU64, CFG_MCU32, CFG_CCMCU64, CFG_CCMCU32,
       CFG_ASANMCU64, CFG_ASANMCU32, CFG_GEN64, CFG_GEN32, NCFG };
static const char *const cfg_name[NCFG] = {
    "tcc-f64", "tcc-f32", "O0-f32", "cc-f64", "cc-f32", "asan-f64", "asan-f32",
    "mcu-f64", "mcu-f32", "cc-mcu-f64", "cc-mcu-f32", "asan-mcu-f64", "asan-mcu-f32",
    "generic-f64", "generic-f32"};
static const int cfg_f32[NCFG] = {0, 1, 1, 0, 1, 0, 1, 0, 1, 0, 1, 0, 1, 0, 1};
/* the cc / ASan configuration of a unit's dtype and target */
static int cc_cfg(int f64, int mcu) {
  return mcu ? (f64 ? CFG_CCMCU64 : CFG_CCMCU32) : (f64 ? CFG_CC64 : CFG_CC32);
}
static int asan_cfg(int f64, int mcu) {
  return mcu ? (f64 ? CFG_ASANMCU64 : CFG_ASANMCU32) : (f64 ? CFG_ASAN64 : CFG_ASAN32);
}

typedef struct {
  char name[64];
  int is_int;
  int rank;
  int64_t dims[8];
  int64_t n;
  double *v;     /* float values (f64) */
  float *v32;
  int32_t *vi;
} Arr;

typedef struct {
  RGraph g;
  char *src;
  uint64_t dseed;
  long id;          /* graph number in the run */
  char label[64];   /* "seed S graph G" or the file name */
  int nin, nout;
  Arr *in;          /* inputs with data */
  Arr *ref;         /* reference outputs (f64) */
  double *sens;     /* per output: change under a relative 1e-5
                       perturbation (0.5 to 1.5 of it per element) */
  int *unstable;    /* per output: jumps under a 1e-9 one: not compared */
  int *still;       /* per output: moves under no perturbation at all (a
                       step function here: comparisons, where, max) */
  double **ref32;   /* outputs of -O0 f32 (tcc): the f32 reference */
  double **jump32;  /* per output element: how far the f32 reference moves
                       when the inputs move by one f32 ulp (f32_jumps) */
  int margins[2];   /* per precision (f32 0 or 1): 0: not computed; 1: in
                       mv; -1: none (margins_explain) */
  double **mv[2][2]; /* per precision, f64 outputs with every comparison,
                       tie and kink moved by its margin one way and the
                       other (margin_text) */
  int rounding;     /* 0: not computed; 1: in rdev; -1: none */
  double **rdev;    /* per output element: the largest move of the f64
                       reference under f32-sized roundings (rounding_explain) */
  int contraction[2]; /* per precision (f32 0 or 1): 0: not computed; 1:
                       in cref; -1: none (contraction_explain) */
  double **cref[2]; /* the reference of that precision built with the
                       JIT's plain kernels (AGC_KERNELS=generic: no FMA) */
  double **tcc64;   /* outputs of tcc f64 (-O1, one thread): what the
                       threaded build must give bit for bit */
  double **tcc32;   /* the same of tcc f32 (its row kernels in parts) */
  int skip;         /* non-finite reference: no comparisons */
  int rejected;
  char *fail[8];    /* messages of failed checks (category: message) */
  int nfail;
  int sanitizer;
  /* a training graph (optimizer): K steps, checked on every configuration */
  int train, K, step_skip;
  int adam;       /* the optimizer divides by the gradient's size */
  int step_noise; /* Adam from a gradient that f32 gets no closer than its
                     own size: f32 step outputs are not compared
                     (step_noise) */
  int step_f32_inf; /* the f32 reference's steps (O0-f32) give a value that
                     is not finite where f64's are: f32 steps are not
                     compared (step_check) */
  int *isparam;     /* per input */
  int *pgrad;       /* per input: its gradient's output, or -1 */
  int nsout, *sout; /* the step's outputs: the non-gradient outputs */
  double **sp_ref, **so_ref;       /* params after K steps, last outputs */
  double **sp_env[2], **so_env[2]; /* their envelopes, f64 and f32 */
  double **so_post; /* the outputs at the params after K steps (diagnosis) */
  int plain_traj;   /* 0: not run; 1: in plain_p, plain_o; -1: none */
  double **plain_p, **plain_o; /* the trajectory of plain_reference (f64):
                       params after K steps, last outputs */
} Case;

static void case_fail(Case *c, const char *f, ...) __attribute__((format(printf, 2, 3)));
static void case_fail(Case *c, const char *f, ...) {
  if (c->nfail >= 8)
    return;
  va_list ap;
  va_start(ap, f);
  char buf[1024];
  vsnprintf(buf, sizeof buf, f, ap);
  va_end(ap);
  for (char *p = buf; *p; p++)
    if (*p == '\n')
      *p = ' ';
  c->fail[c->nfail++] = strdup(buf);
}

static uint64_t hash_str(const char *s, uint64_t h) {
  for (; *s; s++)
    h = (h ^ (unsigned char)*s) * 0x100000001b3ULL;
  return h;
}

/* deterministic value k of a leaf */
static double fill_value(uint64_t dseed, const char *name, int64_t k,
                         const RLine *l, int *ival) {
  Rng r = {hash_str(name, 0xcbf29ce484222325ULL ^ dseed) + (uint64_t)k * 0x9e3779b97f4a7c15ULL};
  rng_next(&r);
  double u = rng_unit(&r);
  if (l && l->kind == RL_INT) {
    *ival = (int)(u * l->imax);
    if (*ival >= l->imax)
      *ival = l->imax - 1;
    return 0;
  }
  double lo = l ? l->lo : -1, hi = l ? l->hi : 1;
  double v = lo + (hi - lo) * u;
  if (l && l->quant)
    v = round(v * 4) / 4;
  return v;
}

static void arr_free(Arr *a) {
  free(a->v);
  free(a->v32);
  free(a->vi);
}

static double **alloc_outs(const Case *c) {
  double **o = calloc((size_t)c->nout + 1, sizeof *o);
  for (int i = 0; i < c->nout; i++)
    o[i] = calloc((size_t)c->ref[i].n + 1, sizeof **o);
  return o;
}
/* a copy of outputs o (the outputs of one configuration, kept) */
static double **copy_outs(const Case *c, double *const *o) {
  double **k = alloc_outs(c);
  for (int i = 0; i < c->nout; i++)
    memcpy(k[i], o[i], (size_t)c->ref[i].n * sizeof(double));
  return k;
}
static void free_outs(const Case *c, double **o) {
  for (int i = 0; o && i < c->nout; i++)
    free(o[i]);
  free(o);
}

static void free_params(const Case *c, double **p) {
  for (int i = 0; p && i < c->nin; i++)
    free(p[i]);
  free(p);
}
static void free_souts(const Case *c, double **o) {
  for (int j = 0; o && j < c->nsout; j++)
    free(o[j]);
  free(o);
}

/* the case's graph compiled with options o (named rg) */
static agc_graph *load_with(Case *c, agc_graph_options *o, char *err, size_t n) {
  o->name = "rg";
  return agc_graph_load_source(c->label, c->src, strlen(c->src), o, err, n);
}

/* Has the JIT a copy of its kernels other than the plain one (the one
 * AGC_KERNELS=generic picks: no FMA)? */
static int plain_kernels_differ(void) {
  const char *v = agc_kernel_variant();
  return v && strcmp(v, "generic") != 0;
}

/* load_with, linking the JIT's plain kernels */
static agc_graph *load_plain(Case *c, agc_graph_options *o, char *err, size_t n) {
  setenv("AGC_KERNELS", "generic", 1);
  agc_graph *g = load_with(c, o, err, n);
  unsetenv("AGC_KERNELS");
  return g;
}

static void case_free(Case *c) {
  for (int i = 0; c->in && i < c->nin; i++)
    arr_free(&c->in[i]);
  for (int i = 0; c->ref && i < c->nout; i++)
    arr_free(&c->ref[i]);
  free(c->in);
  free(c->ref);
  free(c->sens);
  free(c->unstable);
  free(c->still);
  free_outs(c, c->ref32);
  free_outs(c, c->jump32);
  for (int f = 0; f < 2; f++) {
    free_outs(c, c->mv[f][0]);
    free_outs(c, c->mv[f][1]);
    free_outs(c, c->cref[f]);
  }
  free_outs(c, c->rdev);
  free_outs(c, c->tcc64);
  free_outs(c, c->tcc32);
  free(c->src);
  for (int i = 0; i < c->nfail; i++)
    free(c->fail[i]);
  for (int f = 0; f < 2; f++) {
    free_params(c, c->sp_env[f]);
    free_souts(c, c->so_env[f]);
  }
  free_params(c, c->sp_ref);
  free_souts(c, c->so_ref);
  free_souts(c, c->so_post);
  free_params(c, c->plain_p);
  free_souts(c, c->plain_o);
  free(c->isparam);
  free(c->pgrad);
  free(c->sout);
  rg_free(&c->g);
  memset(c, 0, sizeof *c);
}

/* The compiler's messages from the error on (the warnings before it
 * would fill the message). */
static const char *errpart(const char *err) {
  const char *e = strstr(err, " error: ");
  if (!e)
    return err;
  while (e > err && e[-1] != ' ' && e[-1] != '\n')
    e--;
  return e;
}

/* ---- running a loaded graph -------------------------------------------- */

static void arr_shape(Arr *a, const agc_graph *g, int out, int i) {
  snprintf(a->name, sizeof a->name, "%s", agc_graph_name(g, out, i));
  a->is_int = agc_graph_dtype(g, out, i) == AGC_I32;
  a->rank = agc_graph_rank(g, out, i);
  memcpy(a->dims, agc_graph_dims(g, out, i), sizeof a->dims);
  a->n = agc_graph_count(g, out, i);
}

/* Buffers with guard zones: PAD bytes of a pattern on each side, checked
 * after the call, so an overrun by JIT-compiled code is reported (and does
 * not corrupt the tester's heap); a crash in it is caught by a signal
 * handler and reported too. */
#define PAD 4096
static void *pad_alloc(size_t n) {
  unsigned char *p = malloc(n + 2 * PAD);
  if (!p)
    abort();
  memset(p, 0xa5, PAD);
  memset(p + PAD + n, 0xa5, PAD);
  return p + PAD;
}
static int pad_bad(void *q, size_t n) {
  unsigned char *p = (unsigned char *)q - PAD;
  int bad = 0;
  for (size_t i = 0; i < PAD; i++)
    bad |= p[i] != 0xa5 || p[PAD + n + i] != 0xa5;
  return bad;
}
static void pad_free(void *q) {
  if (q)
    free((unsigned char *)q - PAD);
}

static sigjmp_buf crash_jmp;
static volatile sig_atomic_t in_call;
static void on_crash(int sig) {
  if (in_call)
    siglongjmp(crash_jmp, sig);
  signal(sig, SIG_DFL);
  raise(sig);
}

/* Runs g (f64 or f32) on the case's inputs (or on `in64` if given, f64
 * values of the float inputs); outputs converted to f64 into outs[i].
 * Returns 0, or -1 with a message in why (overrun, crash, changed input). */
typedef int (*entry_fn)(const void *const *, void *const *, void *);
static double **init_outs; /* if set: initial output values (accumulate) */
static int run_fn(entry_fn fn, size_t wb, int f64, const Case *c, double **in64,
                  double **outs, char *why, size_t whylen) {
  const void *in[256];
  void *out[256];
  size_t insz[256];
  volatile int rc = 0;
  if (c->nin > 256 || c->nout > 256)
    return -1;
  for (int i = 0; i < c->nin; i++) {
    const Arr *a = &c->in[i];
    size_t el = a->is_int || !f64 ? 4 : 8;
    insz[i] = (size_t)a->n * el;
    void *p = pad_alloc(insz[i]);
    for (int64_t k = 0; k < a->n; k++) {
      double v = a->is_int ? 0 : in64 ? in64[i][k] : a->v[k];
      if (a->is_int)
        ((int32_t *)p)[k] = a->vi[k];
      else if (f64)
        ((double *)p)[k] = v;
      else
        ((float *)p)[k] = (float)v;
    }
    in[i] = p;
  }
  for (int i = 0; i < c->nout; i++) {
    size_t sz = (size_t)c->ref[i].n * (f64 ? 8 : 4);
    out[i] = pad_alloc(sz);
    memset(out[i], 0, sz);
    for (int64_t k = 0; init_outs && k < c->ref[i].n; k++) {
      if (f64)
        ((double *)out[i])[k] = init_outs[i][k];
      else
        ((float *)out[i])[k] = (float)init_outs[i][k];
    }
  }
  void *work = pad_alloc(wb);
  memset(work, 0xff, wb);
  in_call = 1;
  int sig = sigsetjmp(crash_jmp, 1);
  if (sig == 0) {
    fn(in, out, work);
  } else {
    snprintf(why, whylen, "crashed with signal %d", sig);
    rc = -1;
  }
  in_call = 0;
  if (pad_bad(work, wb) && !rc) {
    snprintf(why, whylen, "wrote outside the workspace of %zu bytes", wb);
    rc = -1;
  }
  pad_free(work);
  for (int i = 0; i < c->nout; i++) {
    size_t sz = (size_t)c->ref[i].n * (f64 ? 8 : 4);
    for (int64_t k = 0; k < c->ref[i].n; k++)
      outs[i][k] = f64 ? ((double *)out[i])[k] : (double)((float *)out[i])[k];
    if (pad_bad(out[i], sz) && !rc) {
      snprintf(why, whylen, "wrote outside output %s (%zu bytes)", c->ref[i].name, sz);
      rc = -1;
    }
    pad_free(out[i]);
  }
  for (int i = 0; i < c->nin; i++) {
    if (pad_bad((void *)in[i], insz[i]) && !rc) {
      snprintf(why, whylen, "wrote outside input %s (%zu bytes)", c->in[i].name, insz[i]);
      rc = -1;
    }
    pad_free((void *)in[i]);
  }
  return rc;
}

static const agc_graph *cur_graph;
static int call_cur(const void *const *in, void *const *out, void *work) {
  return agc_graph_call(cur_graph, in, out, work);
}
static int run_graph(const agc_graph *g, int f64, const Case *c, double **in64,
                     double **outs, char *why, size_t whylen) {
  cur_graph = g;
  return run_fn(call_cur, agc_graph_work_bytes(g), f64, c, in64, outs, why, whylen);
}

/* ---- comparison ---------------------------------------------------------
 * Per output tensor, in norms: err = max |got - ref|, and the tolerance
 *   tol = rtol * max|ref| + s * sens + atol * (1 + G)
 * with G the largest |value| of any reference output of the graph.
 * The max-norm scale keeps elements that cancel to near zero from raising
 * false alarms; sens (the largest change of the f64 output when every input
 * moves by a relative 1e-5) covers outputs that are themselves the result
 * of cancellation or sit near a discontinuity; G covers a tensor that is
 * all cancellation (a gradient that is 0 in exact arithmetic).
 *   f64 configurations against the f64 reference (-O0, tcc):
 *        rtol 1e-9, s = 1e-6 (a relative 1e-11), atol 1e-12;
 *   f32 configurations (tcc, cc, ASan) against the f32 reference (-O0 f32,
 *        tcc): the same precision, other order of operations and fusion:
 *        rtol 1e-3 (~8000 ulp), s = 2, atol 1e-5;
 *   the f32 reference against the f64 one, for faults every f32 path has:
 *        rtol 1e-2, s = 10, atol 1e-4 (f32 loses digits in ill-conditioned
 *        graphs; this only catches gross errors). */
/* The largest error of got against want (n values; NaN counts as
 * infinite) and where it is, the largest |want| (scale) and the largest
 * reference value of any output (G), for the tolerances of the checks. */
static int64_t max_err(const Case *c, int64_t n, const double *got,
                       const double *want, double *scale, double *err,
                       double *G) {
  int64_t worst = 0;
  *scale = *err = *G = 0;
  for (int i = 0; i < c->nout; i++)
    for (int64_t k = 0; k < c->ref[i].n; k++)
      *G = fmax(*G, fabs(c->ref[i].v[k]));
  for (int64_t k = 0; k < n; k++)
    *scale = fmax(*scale, fabs(want[k]));
  for (int64_t k = 0; k < n; k++) {
    double e = fabs(got[k] - want[k]);
    if (isnan(e))
      e = INFINITY;
    if (e > *err)
      *err = e, worst = k;
  }
  return worst;
}

/* Does the f32 reference jump, under one-ulp moves of the inputs, at
 * every element where got is off rv by more than tol, by at least half
 * that gap? Then the gap is an f32 tie: a comparison (or where, or max)
 * that f32 rounding settles one way and f64, or another f32 order of
 * operations, the other (s932-g4155: p1 / (erf(x) + 2) == p2, with erf(x)
 * exactly -1 in f32 only, flips a term of 1.1). */
static int jumps_explain(const Case *c, int oi, const double *got,
                         const double *rv, double tol) {
  if (!c->jump32 || !c->jump32[oi])
    return 0;
  for (int64_t k = 0; k < c->ref[oi].n; k++) {
    double e = fabs(got[k] - rv[k]);
    if (isnan(e) || (e > tol && !(c->jump32[oi][k] >= 0.5 * e)))
      return 0;
  }
  return 1;
}

/* The graph's text as a precision could see it, for an f64 run, with
 * eps its relative margin and abs_m its absolute one (f32: 1e-5 and 1e-6,
 * f64: 1e-12 and 1e-12), D(Z) = `(abs(Z) * eps + abs_m)`, and sign > 0
 * or < 0 the direction; the absolute part moves ties with an exact 0,
 * which a sum that cancels reaches in one order of operations and misses
 * by a rounding residue in another:
 * - the right side Y of every order comparison `X < Y` (<, <=, >, >=,
 *   spaced as the generator writes them) becomes `((Y) + D(Y))` (sign > 0)
 *   or `((Y) - D(Y))`, a tie within the precision;
 * - an equality `(X == Y)`, in its parentheses as the generator writes
 *   it, becomes `(abs((X) - (Y)) <= D(Y))` for sign > 0 and stays exact
 *   for sign < 0 (`!=` the same, negated): whether a computed value
 *   equals another can depend on the order of summation, in f64 too
 *   (s981-g7300: mean(v) == v, where v holds copies of one value, in
 *   mcu-f64 and not in the f64 reference);
 * - `maximum(X, Y)` and `minimum(X, Y)` take `(Y) +- D(Y)` for Y, and
 *   `clamp(X, L, H)` takes `(L) -+ D(L)` and `(H) +- D(H)`; `abs(X)` and
 *   `relu(X)` take `(X) +- D(X)`: a tie or a kink at which the gradient
 *   goes one way, the other or half each (s1011-g24193: minimum(g, p5)
 *   where g is a log_softmax gradient that cancels to exactly 0 on mcu,
 *   to a residue on the host, and p5 is 0);
 * - `sign(Y)` becomes `sign(where(abs(Y) < eps / 100, 0, Y))`, as the
 *   precision computes a value that small from values near 1 as 0
 *   (s961-g270: sign(gelu(x)) for x near -6, where erf rounds to -1 in
 *   f32 only).
 * Y runs to the first `,` or `)` outside parentheses, or to the end of
 * the line; every operand is itself rewritten. Comment lines stay.
 * Appends the n bytes at s to b so. */
typedef struct {
  int sign;
  double eps, abs_m;
} Margin;

static void margin_text(StrBuf *b, const char *s, size_t n, const Margin *M);

/* The end of the operand that starts at q: the first `,` or `)` outside
 * parentheses, the end of the line, or end. */
static const char *operand_end(const char *q, const char *end) {
  for (int depth = 0; q < end && *q != '\n'; q++) {
    if ((*q == ',' || *q == ')') && depth == 0)
      break;
    depth += *q == '(' ? 1 : *q == ')' ? -1 : 0;
  }
  return q;
}

/* the n bytes at s rewritten, then moved by sign (+1, -1) times D */
static void margin_moved(StrBuf *b, const char *s, size_t n, const Margin *M, int sign) {
  StrBuf z = {0};
  margin_text(&z, s, n, M);
  const char *zs = z.s ? z.s : "";
  sb_printf(b, "((%s) %c (abs(%s) * %g + %g))", zs, sign > 0 ? '+' : '-', zs, M->eps,
            M->abs_m);
  sb_free(&z);
}

/* A call of maximum, minimum, clamp, abs or relu at p (its name not part
 * of a longer one): its rewrite into b and the end of the call, or NULL. */
static const char *margin_call(StrBuf *b, const char *s, const char *p, const char *end,
                               const Margin *M) {
  static const char *const fns[] = {"maximum(", "minimum(", "clamp(", "abs(", "relu("};
  size_t k = 0, m = 0;
  for (; k < 5; k++)
    if ((size_t)(end - p) >= (m = strlen(fns[k])) && !strncmp(p, fns[k], m))
      break;
  if (k == 5 || (p > s && (isalnum((unsigned char)p[-1]) || p[-1] == '_')))
    return NULL;
  const char *arg[5], *q = p + m;
  int na = 0;
  for (;; q++) { /* each argument runs to the byte before the next */
    if (na < 4)
      arg[na++] = q;
    q = operand_end(q, end);
    if (q >= end || *q != ',')
      break;
  }
  if (q >= end || *q != ')' || na != (k == 2 ? 3 : k < 2 ? 2 : 1))
    return NULL;
  arg[na] = q + 1;
  sb_putn(b, p, m);
  for (int i = 0; i < na; i++) {
    const char *a = arg[i];
    size_t len = (size_t)(arg[i + 1] - 1 - a);
    if (i)
      sb_putc(b, ',');
    int move = k < 2 ? (i == 1 ? 1 : 0) : k == 2 ? (i == 1 ? -1 : i == 2 ? 1 : 0) : 1;
    if (!move) {
      margin_text(b, a, len, M);
      continue;
    }
    while (len && *a == ' ') /* keep the ", " spacing */
      sb_putc(b, *a++), len--;
    margin_moved(b, a, len, M, move * M->sign);
  }
  sb_putc(b, ')');
  return q + 1;
}

static void margin_text(StrBuf *b, const char *s, size_t n, const Margin *M) {
  static const char *const ops[] = {" <= ", " >= ", " < ", " > "};
  const char *end = s + n;
  int comment = 0, bol = 1;
  for (const char *p = s; p < end;) {
    if (bol)
      comment = *p == '#';
    bol = *p == '\n';
    if (!comment && *p == '(') { /* (X == Y), (X != Y) */
      const char *q = p + 1, *eq = NULL;
      for (int depth = 0; q < end && *q != '\n' && !(*q == ')' && depth == 0); q++) {
        if (depth == 0 && !eq && end - q >= 4 &&
            (!strncmp(q, " == ", 4) || !strncmp(q, " != ", 4)))
          eq = q;
        depth += *q == '(' ? 1 : *q == ')' ? -1 : 0;
      }
      if (eq && q < end && *q == ')') {
        StrBuf xb = {0}, yb = {0};
        margin_text(&xb, p + 1, (size_t)(eq - p - 1), M);
        margin_text(&yb, eq + 4, (size_t)(q - eq - 4), M);
        const char *xs = xb.s ? xb.s : "", *ys = yb.s ? yb.s : "";
        if (M->sign > 0)
          sb_printf(b, "(abs((%s) - (%s)) %s (abs(%s) * %g + %g))", xs, ys,
                    eq[1] == '=' ? "<=" : ">", ys, M->eps, M->abs_m);
        else
          sb_printf(b, "(%s%.4s%s)", xs, eq, ys);
        sb_free(&xb);
        sb_free(&yb);
        p = q + 1;
        continue;
      }
    }
    const char *after = comment ? NULL : margin_call(b, s, p, end, M);
    if (after) {
      p = after;
      continue;
    }
    size_t k = 0, m = 0;
    for (; !comment && k < 4; k++)
      if ((size_t)(end - p) >= (m = strlen(ops[k])) && !strncmp(p, ops[k], m))
        break;
    int is_sign = !comment && k == 4 && end - p >= 5 && !strncmp(p, "sign(", 5) &&
                  (p == s || !(isalnum((unsigned char)p[-1]) || p[-1] == '_'));
    if (comment || (k == 4 && !is_sign)) {
      sb_putc(b, *p++);
      continue;
    }
    const char *y = p + (is_sign ? 5 : m), *q = operand_end(y, end);
    if (is_sign) { /* the source's `)` closes sign( */
      StrBuf yb = {0};
      margin_text(&yb, y, (size_t)(q - y), M);
      const char *ys = yb.s ? yb.s : "";
      sb_printf(b, "sign(where(abs(%s) < %g, 0, %s)", ys, M->eps / 100, ys);
      sb_free(&yb);
    } else {
      sb_puts(b, ops[k]);
      margin_moved(b, y, (size_t)(q - y), M, M->sign);
    }
    p = q;
  }
}

static char *margin_src(const char *src, int sign, int f32) {
  StrBuf b = {0};
  Margin M = {sign, f32 ? 1e-5 : 1e-12, f32 ? 1e-6 : 1e-12};
  margin_text(&b, src, strlen(src), &M);
  return b.s ? b.s : strdup("");
}

/* the case's graph as margin_src writes it for precision f32, compiled as
 * the f64 reference is; NULL if it has no comparison or sign(), grows
 * past 1 MB (nested comparisons double their text at each level) or does
 * not compile */
static agc_graph *margin_graph(const Case *c, int sign, int f32) {
  char *src = margin_src(c->src, sign, f32), err[512];
  agc_graph *g = NULL;
  if (strcmp(src, c->src) && strlen(src) < ((size_t)1 << 20)) {
    agc_graph_options o = {0};
    o.f64 = 1;
    o.O0 = 1;
    o.name = "rg";
    g = agc_graph_load_source(c->label, src, strlen(src), &o, err, sizeof err);
  }
  free(src);
  if (g && (agc_graph_num_outputs(g) != c->nout || agc_graph_num_inputs(g) != c->nin)) {
    agc_graph_free(g);
    g = NULL;
  }
  return g;
}

/* c->mv[f32]: the f64 reference's outputs for both margin_src variants of
 * precision f32 (once per case; c->margins[f32] -1 when a variant does not
 * compile or run, or the graph has no comparison or sign()) */
static void margins(Case *c, int f32) {
  if (c->margins[f32])
    return;
  c->margins[f32] = -1;
  for (int m = 0; m < 2; m++) {
    char why[256];
    agc_graph *g = margin_graph(c, m ? 1 : -1, f32);
    if (!g)
      return;
    c->mv[f32][m] = alloc_outs(c);
    int bad = run_graph(g, 1, c, NULL, c->mv[f32][m], why, sizeof why);
    agc_graph_free(g);
    if (bad)
      return;
  }
  c->margins[f32] = 1;
}

/* Is every element where got is off rv by more than tol within tol of the
 * range the f64 reference spans when its comparisons move by the margin
 * of precision f32 either way? Then the gap is a tie that holds over a
 * range of inputs, which one-ulp moves do not show: s922-g10726,
 * where(sin(v0) <= v0, ...) with sin(x) == x in f32 for |x| < 4e-4, and
 * sin(x) > x in f64 for x < 0; or a tie the order of summation decides
 * (s981-g7300, in f64). */
static int margins_explain(Case *c, int oi, const double *got, const double *rv,
                           double tol, int f32) {
  margins(c, f32);
  if (c->margins[f32] != 1)
    return 0;
  double **mv0 = c->mv[f32][0], **mv1 = c->mv[f32][1];
  for (int64_t k = 0; k < c->ref[oi].n; k++) {
    double e = fabs(got[k] - rv[k]);
    if (e <= tol)
      continue;
    double a = c->ref[oi].v[k], lo = fmin(a, fmin(mv0[oi][k], mv1[oi][k])),
           hi = fmax(a, fmax(mv0[oi][k], mv1[oi][k]));
    if (!(got[k] >= lo - tol && got[k] <= hi + tol))
      return 0;
  }
  return 1;
}

/* c->rdev: per output element, the largest distance of the f64 reference
 * from itself rebuilt with ROUNDING_RUNS perturb_seeds (every value that
 * f32 would round moved by 2^-24 of itself, one way or the other per
 * element; half the runs with signs that nearby values share, half with
 * signs that values one f64 ulp apart draw apart). A tie that f32 makes
 * and f64 does not shows only in a run that moves its two elements apart
 * the right way, 1 run in 4 of the second kind (s1052-g33542: erf of 5.4
 * and 5.8 is 1 in f32 and 1 - 1.4e-14 against 1 - 1.1e-16 in f64, so a
 * max over them picks the other element): 8 such runs miss it 10% of the
 * time. They run only for an output that fails every rule before this one
 * (3 in 72,000 graphs of one campaign). */
#define ROUNDING_RUNS 16
static void rounding(Case *c) {
  if (c->rounding)
    return;
  c->rounding = -1;
  double **o = alloc_outs(c);
  c->rdev = alloc_outs(c);
  for (uint64_t seed = 1; seed <= ROUNDING_RUNS; seed++) {
    char err[512], why[256];
    /* the lowest bit alternates the two scales of the signs (passes.c,
       perturbed); bit 1 keeps the seed from being 0 (off) */
    agc_graph_options opt = {.f64 = 1, .O0 = 1,
                             .perturb_seed = (seed ^ c->dseed) << 2 | 2 | (seed & 1)};
    agc_graph *g = load_with(c, &opt, err, sizeof err);
    int bad = !g || run_graph(g, 1, c, NULL, o, why, sizeof why);
    agc_graph_free(g);
    if (bad)
      goto out;
    for (int i = 0; i < c->nout; i++)
      for (int64_t k = 0; k < c->ref[i].n; k++)
        c->rdev[i][k] = fmax(c->rdev[i][k], fabs(o[i][k] - c->ref[i].v[k]));
  }
  c->rounding = 1;
out:
  free_outs(c, o);
}

/* The case's graph built as the reference of precision f32 is (-O0,
 * tcc), with the JIT's plain kernels (no FMA), or NULL. */
static agc_graph *plain_reference(Case *c, int f32) {
  if (!plain_kernels_differ())
    return NULL; /* the references are that build already */
  char err[512];
  agc_graph_options o = {.f64 = !f32, .O0 = 1};
  return load_plain(c, &o, err, sizeof err);
}

/* c->cref[f32]: the outputs of plain_reference (once per case) */
static void contraction(Case *c, int f32) {
  if (c->contraction[f32])
    return;
  c->contraction[f32] = -1;
  agc_graph *g = plain_reference(c, f32);
  char why[256];
  if (!g)
    return;
  c->cref[f32] = alloc_outs(c);
  if (!run_graph(g, !f32, c, NULL, c->cref[f32], why, sizeof why))
    c->contraction[f32] = 1;
  agc_graph_free(g);
}

/* Is got within tol of the reference built with the plain kernels at
 * every element where it is off rv (the reference of its own precision)
 * by more than tol? Then the gap is a tie that a contraction decides: a
 * sum that cancels exactly, 0 without FMA and a rounding residue (1e-17)
 * with it, under abs() or a comparison; moves of the inputs never reach
 * the exact 0 (s1001-g9563: 0.75 tanh(a) - 0.75 tanh(b) with a == b;
 * s1001-g17078: v0 @ p3.T of equal v0 elements, then a clamp). Only
 * where the two references differ can got be within tol of one and not
 * the other: elsewhere this lets nothing go. The kernel copies themselves
 * are checked against each other by value in tests/rt/test_jit.c. */
static int contraction_explain(Case *c, int oi, const double *got, const double *rv,
                               double tol, int f32) {
  contraction(c, f32);
  if (c->contraction[f32] != 1)
    return 0;
  for (int64_t k = 0; k < c->ref[oi].n; k++)
    if (fabs(got[k] - rv[k]) > tol && !(fabs(got[k] - c->cref[f32][oi][k]) <= tol))
      return 0;
  return 1;
}

/* Is got within tol + 4 rdev of the f64 reference at every element where
 * it is off rv by more than tol? Then the gap is f32's rounding of
 * intermediates in an ill-conditioned output, which no move of the inputs
 * shows (s951-g47132: a second derivative through tanh(v) with v near 8,
 * so that 1 - tanh(v)^2, about 4.5e-7, comes out in f32 steps of 1.2e-7:
 * the f32 configurations are 13% to 29% off f64). 4: an f32 math function
 * may be off by more than its half ulp. */
static int rounding_explain(Case *c, int oi, const double *got, const double *rv,
                            double tol) {
  rounding(c);
  if (c->rounding != 1)
    return 0;
  for (int64_t k = 0; k < c->ref[oi].n; k++)
    if (fabs(got[k] - rv[k]) > tol &&
        !(fabs(got[k] - c->ref[oi].v[k]) <= tol + 4 * c->rdev[oi][k]))
      return 0;
  return 1;
}

/* The f32 reference against f64: is it exactly 0 at every element that is
 * off by more than tol, where f64 is within 1e-2 (1 + G)? Then f32 has
 * flushed a small value to 0: 1 - tanh(v)^2 is 0 in f32 for |v| > 9 (tanh
 * rounds to 1), but 2e-8 and more in f64, and a third derivative
 * multiplies it by 1e4 or more (s952-g22086: 1.9e-5 to 1e-3 in f64, 0 in
 * every f32 configuration). A fault that zeroes an output in f32 alone
 * would sit in an f32-only kernel, which tests/rt/test_jit.c checks by
 * value, or differ between the JIT and cc, which the f32 configurations'
 * comparison with this reference shows. */
static int flushed(const Case *c, int oi, const double *got, double tol, double G) {
  for (int64_t k = 0; k < c->ref[oi].n; k++) {
    double want = c->ref[oi].v[k];
    if (fabs(got[k] - want) > tol && (got[k] != 0 || !(fabs(want) <= 1e-2 * (1 + G))))
      return 0;
  }
  return 1;
}

/* an output 0 at every element of both references that no perturbation
 * of the inputs moves */
static int zero_function(const Case *c, int oi) {
  if (!c->still[oi] || !c->ref32)
    return 0;
  for (int64_t k = 0; k < c->ref[oi].n; k++)
    if (c->ref[oi].v[k] != 0 || c->ref32[oi][k] != 0)
      return 0;
  return 1;
}

static int compare(Case *c, int cfg, int oi, const double *got) {
  const Arr *r = &c->ref[oi];
  int f32 = cfg_f32[cfg];
  const double *rv = r->v;
  const char *rname = "f64 -O0 tcc";
  double rtol = 1e-9, s = 1e-6, atol = 1e-12;
  if (f32 && cfg != CFG_O0_32 && c->ref32) {
    rv = c->ref32[oi];
    rname = "f32 -O0 tcc";
    rtol = 1e-3, s = 2, atol = 1e-5;
  } else if (f32) {
    /* the f32 reference against f64: for a fault every f32 path shares,
       which is gross (garbage, a wrong op); an ill-conditioned output
       loses a few % in f32 (a saturated tanh in a second derivative:
       s911-g50777, 1.7%; an f32-only tie of sin(x) != x beside a smooth
       term: s912-g53351, 1.8%), and a kernel's ulps are the kernel tests'
       (tests/rt/test_jit.c) */
    rtol = 5e-2, s = 10, atol = 1e-4;
  }
  double scale, err, G;
  int64_t worst = max_err(c, r->n, got, rv, &scale, &err, &G);
  double tol = rtol * scale + s * c->sens[oi] + atol * (1 + G);
  if (err <= tol || c->unstable[oi])
    return 0;
  if (f32 && rv == r->v && c->still[oi]) {
    /* An output that no perturbation moves is a step function here
     * (comparisons, where): its f32 value can differ from f64's where f32
     * rounding makes a tie that f64 does not (s912-g35214: tan(tanh(x))
     * == x for a small x holds in f32 only). Every f32 configuration is
     * still held to the f32 reference; only the f32 reference's distance
     * from f64 is let go (counted). */
    st.f32_ties++;
    return 0;
  }
  if (rv != r->v) {
    /* Two f32 results that differ by more than rounding can both be
     * rounded results: in an ill-conditioned step (1 - tanh(x)^2 for a
     * saturated tanh) one ulp of difference in an intermediate is a large
     * relative change, which the inputs' sensitivity does not see. Then
     * the judge is the f64 reference: got is no mismatch when it is as
     * close to it as the f32 reference is (twice, plus the f32-vs-f64
     * tolerance's atol), and within that tolerance. And when the f32
     * reference itself is off f64 by a quarter of the f32 tolerance or
     * more, the output is that ill-conditioned at f32: two rounded results
     * can stand at any ratio of distances from f64 (s902-g4656: 1.1e-4
     * and 2.4e-4, on either side, from 1 ulp of a saturated tanh), so
     * within the f32-vs-f64 tolerance is enough. A well-conditioned
     * output, which the f32 reference gets close, keeps the tight rule. */
    double s64, e_got, e_ref, G64;
    max_err(c, r->n, got, r->v, &s64, &e_got, &G64);
    max_err(c, r->n, rv, r->v, &s64, &e_ref, &G64);
    double tol64 = 1e-2 * s64 + 10 * c->sens[oi] + 1e-4 * (1 + G64);
    int ill = e_ref >= 0.25 * tol;
    if ((ill || e_got <= 2 * e_ref + 1e-6 * (1 + G64)) && e_got <= tol64)
      return 0;
  }
  if (f32 && jumps_explain(c, oi, got, rv, tol)) {
    st.f32_jumps++;
    return 0;
  }
  if (margins_explain(c, oi, got, rv, tol, f32)) {
    if (f32)
      st.f32_margins++;
    else
      st.f64_margins++;
    return 0;
  }
  if ((!f32 || rv != r->v) && contraction_explain(c, oi, got, rv, tol, f32)) {
    st.contraction++;
    return 0;
  }
  if (f32 && rounding_explain(c, oi, got, rv, tol)) {
    st.f32_rounding++;
    return 0;
  }
  if (f32 && zero_function(c, oi) && err <= 1e-3 * (1 + G)) {
    /* 0 in both references at every element, and no perturbation moves
     * it: the output is 0 as a function (a log_softmax over an axis of
     * size 1, differentiated: s931-g8014). The -O0 reference cancels
     * exactly; a fused order or cc's contraction (fma(a, b, -a*b) is the
     * rounding error of a*b) leaves the rounding of intermediates, whose
     * size the outputs do not show: held to 1e-3 (1 + G), not 1e-5. */
    st.zero_noise++;
    return 0;
  }
  if (f32 && rv == r->v && flushed(c, oi, got, tol, G)) {
    st.f32_flush++;
    return 0;
  }
  case_fail(c, "%s: output %s[%lld] = %.9g, ref (%s) %.9g; max err %.3g > tol %.3g "
            "(scale %.3g, sens %.3g)", cfg_name[cfg], r->name, (long long)worst,
            got[worst], rname, rv[worst], err, tol, scale, c->sens[oi]);
  return 1;
}

/* ---- stage 1: in-process checks ------------------------------------------ */

/* The float input a with every element moved by one f32 ulp, up or down
 * as r draws, into out (allocated when NULL); returns out. */
static double *ulp_moved(const Arr *a, Rng *r, double *out) {
  if (!out)
    out = malloc((size_t)a->n * sizeof(double) + 8);
  for (int64_t k = 0; k < a->n; k++)
    out[k] = nextafterf(a->v32[k], rng_unit(r) < 0.5 ? -INFINITY : INFINITY);
  return out;
}

/* c->jump32: how far each element of the f32 reference (graph g, outputs
 * base) moves when every float input moves by one f32 ulp, up or down at
 * random; the largest of two such runs (a non-finite move counts as
 * infinite). */
static void f32_jumps(Case *c, const agc_graph *g, double **base) {
  double **p = calloc((size_t)c->nin + 1, sizeof *p), **o = alloc_outs(c);
  Rng r = {c->dseed ^ 0x0f32};
  char why[256];
  c->jump32 = calloc((size_t)c->nout + 1, sizeof *c->jump32);
  for (int i = 0; i < c->nout; i++)
    c->jump32[i] = calloc((size_t)c->ref[i].n + 1, sizeof **c->jump32);
  for (int t = 0; t < 2; t++) {
    for (int i = 0; i < c->nin; i++)
      if (!c->in[i].is_int)
        p[i] = ulp_moved(&c->in[i], &r, p[i]);
    if (run_graph(g, 0, c, p, o, why, sizeof why))
      continue; /* the unperturbed run reports it */
    for (int i = 0; i < c->nout; i++)
      for (int64_t k = 0; k < c->ref[i].n; k++) {
        double d = fabs(o[i][k] - base[i][k]);
        c->jump32[i][k] = fmax(c->jump32[i][k], isnan(d) ? INFINITY : d);
      }
  }
  for (int i = 0; i < c->nin; i++)
    free(p[i]);
  free(p);
  free_outs(c, o);
}

static agc_graph *load(Case *c, int f64, int O0, int mcu, agc_backend be, char *err,
                       size_t n) {
  agc_graph_options o = {0};
  o.f64 = f64;
  o.O0 = O0;
  o.mcu = mcu;
  o.backend = be;
  return load_with(c, &o, err, n);
}

/* the same for an option check named cfg: a compile error fails the case */
static agc_graph *load_check(Case *c, agc_graph_options *o, const char *cfg) {
  char err[4096];
  agc_graph *g = load_with(c, o, err, sizeof err);
  if (!g)
    case_fail(c, "%s: compile failed: %s", cfg, errpart(err));
  return g;
}

static void fd_check(Case *c, agc_graph *ref);

/* f64 values got against want, with the f64 tolerance of compare() */
static int cmp_f64(Case *c, const char *cfg, int oi, const double *got, const double *want) {
  const Arr *r = &c->ref[oi];
  double scale, err, G;
  int64_t worst = max_err(c, r->n, got, want, &scale, &err, &G);
  double tol = 1e-9 * scale + 1e-6 * c->sens[oi] + 1e-12 * (1 + G);
  if (err <= tol || c->unstable[oi])
    return 0;
  case_fail(c, "%s: output %s[%lld] = %.12g, expected %.12g; max err %.3g > tol %.3g", cfg,
            r->name, (long long)worst, got[worst], want[worst], err, tol);
  st.mismatches++;
  return 1;
}

/* --accumulate (gradients add to what the buffers hold) and --no-grad
 * (the outputs alone), f64 tcc, against the reference. */
/* --threads: the graph built for 3 threads (tcc, f64, and f32, whose
 * loops run as the row kernels' calls) with every product of 12 rows or
 * more and every element-wise loop that can be cut into parts threaded
 * (threads_min_macs and threads_min_elems 1: the generator's graphs are
 * below the defaults) gives the one-thread build's outputs bit for bit,
 * with all 3 and with AGC_NUM_THREADS=2. */
static void threads_check_of(Case *c, int f64, double **want) {
  if (!want)
    return;
  char why[256];
  agc_graph_options o = {0};
  o.f64 = f64;
  o.threads = 3;
  o.threads_min_macs = 1;
  o.threads_min_elems = 1;
  agc_graph *g = load_check(c, &o, f64 ? "threads-f64" : "threads-f32");
  if (!g)
    return;
  double **outs = alloc_outs(c);
  for (int env = 0; env < 2; env++) {
    if (env)
      setenv("AGC_NUM_THREADS", "2", 1);
    const char *cfg = env ? (f64 ? "threads-f64 (3, AGC_NUM_THREADS=2)"
                                 : "threads-f32 (3, AGC_NUM_THREADS=2)")
                          : (f64 ? "threads-f64 (3)" : "threads-f32 (3)");
    if (run_graph(g, f64, c, NULL, outs, why, sizeof why)) {
      case_fail(c, "%s: %s", cfg, why);
      st.sanitizer++;
    } else {
      for (int i = 0; i < c->nout; i++)
        if (memcmp(outs[i], want[i], (size_t)c->ref[i].n * sizeof(double))) {
          int64_t k = 0;
          while (outs[i][k] == want[i][k] ||
                 (isnan(outs[i][k]) && isnan(want[i][k])))
            if (++k == c->ref[i].n)
              break;
          if (k == c->ref[i].n)
            continue; /* NaNs of other bits only */
          case_fail(c, "%s: output %s[%lld] = %.17g, one thread %.17g", cfg,
                    c->ref[i].name, (long long)k, outs[i][k], want[i][k]);
          st.mismatches++;
          break;
        }
    }
    unsetenv("AGC_NUM_THREADS");
  }
  st.threads_graphs += f64;
  free_outs(c, outs);
  agc_graph_free(g);
}

/* Does the JIT's f32 C of case c on 3 threads run a row-kernel loop in
 * parts (lower.c, loop_threads)? For the count in the summary. */
static int row_parts_of(const Case *c) {
  Options o = {0};
  o.api.threads = 3;
  o.api.threads_min_macs = 1;
  o.api.threads_min_elems = 1;
  o.target = TARGET_JIT;
  Ctx *ctx = agc_compile(c->label, c->src, strlen(c->src), &o);
  StrBuf sb = {0};
  int r = !agc_failed(ctx) && agc_emit(ctx, EMIT_LOOPS, TARGET_JIT, &sb) == 0 &&
          sb.s && strstr(sb.s, "(row kernels, ");
  sb_free(&sb);
  agc_free(ctx);
  return r;
}

static void threads_check(Case *c) {
  threads_check_of(c, 1, c->tcc64);
  threads_check_of(c, 0, c->tcc32);
  if (c->tcc32 && row_parts_of(c))
    st.row_parts++;
}

/* tcc with the plain copy of the kernels (AGC_KERNELS=generic), f64 and
 * f32, against the references, where the JIT would link another copy */
static void kernels_check(Case *c) {
  if (!plain_kernels_differ())
    return;
  char err[4096], why[256];
  double **outs = alloc_outs(c);
  for (int f64 = 1; f64 >= 0; f64--) {
    int cfg = f64 ? CFG_GEN64 : CFG_GEN32;
    agc_graph_options o = {.f64 = f64, .backend = AGC_BACKEND_TCC};
    agc_graph *g = load_plain(c, &o, err, sizeof err);
    if (!g) {
      case_fail(c, "%s: compile failed: %s", cfg_name[cfg], errpart(err));
      continue;
    }
    if (run_graph(g, f64, c, NULL, outs, why, sizeof why)) {
      case_fail(c, "%s: %s", cfg_name[cfg], why);
      st.sanitizer++;
    } else {
      for (int i = 0; i < c->nout; i++)
        if (compare(c, cfg, i, outs[i]))
          st.mismatches++;
    }
    agc_graph_free(g);
  }
  st.kernel_graphs++;
  free_outs(c, outs);
}

static void option_checks(Case *c) {
  char why[256];
  agc_graph_options o = {0};
  o.f64 = 1;
  o.accumulate = 1;
  agc_graph *g = load_check(c, &o, "accumulate-f64");
  if (!g)
    return;
  double **outs = alloc_outs(c), **init = alloc_outs(c), **want = alloc_outs(c);
  for (int i = 0; i < c->nout; i++)
    for (int64_t k = 0; k < c->ref[i].n; k++) {
      init[i][k] = agc_graph_is_grad(g, i) ? 0.25 * (double)(k % 7) - 0.75 : 0;
      want[i][k] = c->ref[i].v[k] + init[i][k];
    }
  init_outs = init;
  if (agc_graph_num_outputs(g) != c->nout) {
    case_fail(c, "accumulate-f64: %d outputs, the reference has %d", agc_graph_num_outputs(g),
              c->nout);
  } else if (run_graph(g, 1, c, NULL, outs, why, sizeof why)) {
    case_fail(c, "accumulate-f64: %s", why);
    st.sanitizer++;
  } else {
    for (int i = 0; i < c->nout; i++)
      cmp_f64(c, "accumulate-f64", i, outs[i], want[i]);
  }
  init_outs = NULL;
  agc_graph_free(g);
  free_outs(c, init);
  free_outs(c, want);
  /* --no-grad: inputs without the seeds, outputs without the gradients */
  o.accumulate = 0;
  o.no_grad = 1;
  g = load_check(c, &o, "no-grad-f64");
  if (!g) {
    free_outs(c, outs);
    return;
  }
  int ni = agc_graph_num_inputs(g), no = agc_graph_num_outputs(g);
  const void *in[256];
  void *out[256];
  int map[256], ok = ni <= 256 && no <= 256, nin_ok = 0, nout_ok = 0;
  size_t insz[256];
  for (int i = 0; ok && i < ni; i++) {
    int j = 0;
    while (j < c->nin && strcmp(c->in[j].name, agc_graph_name(g, 0, i)))
      j++;
    if (j == c->nin || agc_graph_count(g, 0, i) != c->in[j].n) {
      case_fail(c, "no-grad-f64: input %s is not an input of the graph with gradients",
                agc_graph_name(g, 0, i));
      ok = 0;
      break;
    }
    size_t sz = (size_t)c->in[j].n * (c->in[j].is_int ? 4 : 8);
    void *b = pad_alloc(sz);
    memcpy(b, c->in[j].is_int ? (void *)c->in[j].vi : (void *)c->in[j].v, sz);
    in[i] = b;
    insz[i] = sz;
    nin_ok = i + 1;
  }
  for (int i = 0; ok && i < no; i++) {
    int j = 0;
    while (j < c->nout && strcmp(c->ref[j].name, agc_graph_name(g, 1, i)))
      j++;
    if (j == c->nout || agc_graph_count(g, 1, i) != c->ref[j].n) {
      case_fail(c, "no-grad-f64: output %s is not an output of the graph with gradients",
                agc_graph_name(g, 1, i));
      ok = 0;
      break;
    }
    map[i] = j;
    out[i] = pad_alloc((size_t)c->ref[j].n * 8);
    memset(out[i], 0, (size_t)c->ref[j].n * 8);
    nout_ok = i + 1;
  }
  if (ok) {
    size_t wb = agc_graph_work_bytes(g);
    void *work = pad_alloc(wb);
    memset(work, 0xff, wb);
    volatile int bad = 0;
    in_call = 1;
    int sig = sigsetjmp(crash_jmp, 1);
    if (sig == 0)
      agc_graph_call(g, in, out, work);
    else
      bad = 1, case_fail(c, "no-grad-f64: crashed with signal %d", sig);
    in_call = 0;
    if (pad_bad(work, wb) && !bad)
      bad = 1, case_fail(c, "no-grad-f64: wrote outside the workspace of %zu bytes", wb);
    pad_free(work);
    for (int i = 0; i < no; i++)
      if (pad_bad(out[i], (size_t)c->ref[map[i]].n * 8) && !bad)
        bad = 1, case_fail(c, "no-grad-f64: wrote outside output %s", c->ref[map[i]].name);
    if (bad)
      st.sanitizer++;
    for (int i = 0; i < no && !bad; i++)
      cmp_f64(c, "no-grad-f64", map[i], out[i], c->ref[map[i]].v);
  }
  for (int i = 0; i < nout_ok; i++)
    pad_free(out[i]);
  for (int i = 0; i < nin_ok; i++)
    pad_free((void *)in[i]);
  (void)insz;
  agc_graph_free(g);
  free_outs(c, outs);
}

/* ---- training steps ------------------------------------------------------
 * A graph with `optimizer` has a step (agc_graph_step, NAME_generic): K
 * (1-3) steps from the input params and a zeroed state on every
 * configuration, compared with a reference computed here: the gradient
 * function (the f64 -O0 tcc reference, agc_graph_call) at the current
 * params, then clip_grad_norm and the optimizer as PyTorch 1.13 writes
 * them, in double, K times. The outputs of a step are the graph's
 * non-gradient outputs, at the params before the step.
 * Tolerance: a config's gradients differ from the reference's by up to
 * the tolerance d of the gradient comparison (per tensor); where the
 * update is sensitive to that (Adam on a gradient that is rounding noise,
 * whose update is +-lr whatever its size) the reference is run twice more
 * with every gradient element moved by +d*s and -d*s (s random signs), and
 * the largest change of each element (the envelope) is allowed twice. */
typedef struct {
  int kind; /* 0 none, 1 sgd, 2 adam, 3 adamw */
  double lr, mom, damp, wd, b1, b2, eps;
  int nest, clip;
  double clip_m;
} Optim;

/* a number or the value of a scalar input of the case */
static int optim_value(const Case *c, const char *s, double *v) {
  while (*s == ' ')
    s++;
  if (!strncmp(s, "true", 4) || !strncmp(s, "false", 5)) {
    *v = s[0] == 't';
    return 0;
  }
  char *e;
  *v = strtod(s, &e);
  if (e != s)
    return 0;
  size_t n = strcspn(s, " ,)");
  for (int i = 0; i < c->nin; i++)
    if (strlen(c->in[i].name) == n && !strncmp(c->in[i].name, s, n) && !c->in[i].is_int) {
      *v = c->in[i].v[0];
      return 0;
    }
  return -1;
}

static int parse_optim(const Case *c, Optim *o) {
  memset(o, 0, sizeof *o);
  o->b1 = 0.9, o->b2 = 0.999, o->eps = 1e-8;
  for (int i = 0; i < c->g.n; i++) {
    const RLine *l = &c->g.l[i];
    if (l->dead || l->kind != RL_OPTIM)
      continue;
    const char *t = l->text;
    if (!strncmp(t, "clip_grad_norm ", 15)) {
      o->clip = 1;
      if (optim_value(c, t + 15, &o->clip_m))
        return -1;
      continue;
    }
    t += 10;
    while (*t == ' ')
      t++;
    o->kind = !strncmp(t, "sgd", 3) ? 1 : !strncmp(t, "adamw", 5) ? 3 : !strncmp(t, "adam", 4) ? 2 : -1;
    if (o->kind < 0)
      return -1;
    if (o->kind == 3)
      o->wd = 0.01;
    const char *p = strchr(t, '(');
    while (p && *p && *p != ')') {
      p++;
      while (*p == ' ')
        p++;
      const char *eq = strchr(p, '=');
      if (!eq)
        break;
      size_t n = (size_t)(eq - p);
      double v;
      if (optim_value(c, eq + 1, &v))
        return -1;
#define K(s) (n == strlen(s) && !strncmp(p, s, n))
      if (K("lr"))
        o->lr = v;
      else if (K("momentum"))
        o->mom = v;
      else if (K("dampening"))
        o->damp = v;
      else if (K("weight_decay"))
        o->wd = v;
      else if (K("beta1"))
        o->b1 = v;
      else if (K("beta2"))
        o->b2 = v;
      else if (K("eps"))
        o->eps = v;
      else if (K("nesterov"))
        o->nest = v != 0;
      else
        return -1;
#undef K
      p = eq + 1 + strcspn(eq + 1, ",)");
    }
  }
  return o->kind > 0 ? 0 : -1;
}

/* The reference trajectory: K steps from the case's params (pert: per
 * grad output, the amount to move each gradient element by, times a
 * random sign from rng seed `sgn`, the same at every step, or with `vary`
 * drawn anew at each step; NULL for none). Final params into
 * p_out[i] (inputs that are params), the last step's outputs into
 * o_out[j]. Returns -1 if anything is not finite, a param beyond 1e6 or
 * an output beyond 1e15 (the params left the ranges the generator bounded
 * the values for: f32 overflows where f64 does not). */
static int step_traj(Case *c, agc_graph *ref, const Optim *O, const double *pert,
                     uint64_t sgn, int vary, double *const *start, double **p_out,
                     double **o_out) {
  double **p64 = calloc((size_t)c->nin + 1, sizeof *p64);
  double **m1 = calloc((size_t)c->nin + 1, sizeof *m1), **m2 = calloc((size_t)c->nin + 1, sizeof *m2);
  double **outs = alloc_outs(c);
  int rc = 0;
  for (int i = 0; i < c->nin; i++) {
    if (c->in[i].is_int)
      continue;
    p64[i] = malloc((size_t)c->in[i].n * sizeof(double) + 8);
    memcpy(p64[i], start && start[i] ? start[i] : c->in[i].v,
           (size_t)c->in[i].n * sizeof(double));
    if (c->isparam[i]) {
      m1[i] = calloc((size_t)c->in[i].n + 1, sizeof(double));
      m2[i] = calloc((size_t)c->in[i].n + 1, sizeof(double));
    }
  }
  for (int t = 1; t <= c->K && !rc; t++) {
    char why[256];
    if (run_graph(ref, 1, c, p64, outs, why, sizeof why)) {
      rc = -1;
      break;
    }
    if (t == c->K)
      for (int j = 0; j < c->nsout; j++)
        memcpy(o_out[j], outs[c->sout[j]], (size_t)c->ref[c->sout[j]].n * sizeof(double));
    Rng r = {vary ? sgn ^ (0x9e3779b97f4a7c15ULL * (uint64_t)t) : sgn};
    for (int i = 0; i < c->nin; i++) /* perturbed gradients */
      if (c->isparam[i] && c->pgrad[i] >= 0 && pert)
        for (int64_t k = 0; k < c->in[i].n; k++)
          outs[c->pgrad[i]][k] += (rng_unit(&r) < 0.5 ? -1 : 1) * pert[c->pgrad[i]];
    double scale = 1;
    if (O->clip) { /* torch.nn.utils.clip_grad_norm_ */
      double ss = 0;
      for (int i = 0; i < c->nin; i++)
        if (c->isparam[i] && c->pgrad[i] >= 0)
          for (int64_t k = 0; k < c->in[i].n; k++)
            ss += outs[c->pgrad[i]][k] * outs[c->pgrad[i]][k];
      double coef = O->clip_m / (sqrt(ss) + 1e-6);
      scale = coef < 1 ? coef : 1;
    }
    double bc1 = 1 - pow(O->b1, t), bc2 = 1 - pow(O->b2, t);
    for (int i = 0; i < c->nin; i++) {
      if (!c->isparam[i])
        continue;
      double *p = p64[i];
      for (int64_t k = 0; k < c->in[i].n; k++) {
        double g = c->pgrad[i] >= 0 ? outs[c->pgrad[i]][k] * scale : 0;
        if (O->kind == 1) { /* torch.optim.SGD */
          if (O->wd != 0)
            g += O->wd * p[k];
          if (O->mom != 0) {
            m1[i][k] = t == 1 ? g : O->mom * m1[i][k] + (1 - O->damp) * g;
            g = O->nest ? g + O->mom * m1[i][k] : m1[i][k];
          }
          p[k] -= O->lr * g;
        } else { /* torch.optim.Adam, AdamW */
          if (O->kind == 3)
            p[k] *= 1 - O->lr * O->wd;
          else if (O->wd != 0)
            g += O->wd * p[k];
          m1[i][k] = O->b1 * m1[i][k] + (1 - O->b1) * g;
          m2[i][k] = O->b2 * m2[i][k] + (1 - O->b2) * g * g;
          double denom = sqrt(m2[i][k]) / sqrt(bc2) + O->eps;
          p[k] -= O->lr / bc1 * m1[i][k] / denom;
        }
        /* far from where the values were bounded: f32 overflows */
        if (!isfinite(p[k]) || fabs(p[k]) > 1e6)
          rc = -1;
      }
    }
  }
  for (int i = 0; i < c->nin; i++) {
    if (c->isparam[i] && !rc)
      memcpy(p_out[i], p64[i], (size_t)c->in[i].n * sizeof(double));
    free(p64[i]);
    free(m1[i]);
    free(m2[i]);
  }
  for (int j = 0; j < c->nsout && !rc; j++)
    for (int64_t k = 0; k < c->ref[c->sout[j]].n; k++)
      if (!isfinite(o_out[j][k]) || fabs(o_out[j][k]) > 1e15)
        rc = -1;
  free(p64);
  free(m1);
  free(m2);
  free_outs(c, outs);
  return rc;
}

static double **alloc_params(const Case *c) {
  double **p = calloc((size_t)c->nin + 1, sizeof *p);
  for (int i = 0; i < c->nin; i++)
    if (c->isparam[i])
      p[i] = calloc((size_t)c->in[i].n + 1, sizeof **p);
  return p;
}
static double **alloc_souts(const Case *c) {
  double **o = calloc((size_t)c->nsout + 1, sizeof *o);
  for (int j = 0; j < c->nsout; j++)
    o[j] = calloc((size_t)c->ref[c->sout[j]].n + 1, sizeof **o);
  return o;
}

/* The case's step tables and reference (c->train set when the reference
 * has a step). */
/* Widens precision f32's envelope to hold a trajectory's params pp and
 * outputs oo. */
static void env_widen(Case *c, int f32, double **pp, double **oo) {
  for (int i = 0; i < c->nin; i++)
    for (int64_t k = 0; c->isparam[i] && k < c->in[i].n; k++)
      c->sp_env[f32][i][k] = fmax(c->sp_env[f32][i][k], fabs(pp[i][k] - c->sp_ref[i][k]));
  for (int j = 0; j < c->nsout; j++)
    for (int64_t k = 0; k < c->ref[c->sout[j]].n; k++)
      c->so_env[f32][j][k] = fmax(c->so_env[f32][j][k], fabs(oo[j][k] - c->so_ref[j][k]));
}

/* c->plain_p, c->plain_o: the trajectory of the f64 reference built
 * without FMA (plain_reference), run once for both envelopes; 0 if there
 * is none (no other kernel copy, or it leaves the domain). */
static int plain_trajectory(Case *c, const Optim *O) {
  if (!c->plain_traj) {
    c->plain_traj = -1;
    agc_graph *g = plain_reference(c, 0);
    c->plain_p = alloc_params(c);
    c->plain_o = alloc_souts(c);
    if (g && !step_traj(c, g, O, NULL, 0, 0, NULL, c->plain_p, c->plain_o))
      c->plain_traj = 1;
    agc_graph_free(g);
  }
  return c->plain_traj == 1;
}

/* A step configuration's envelope, per precision (f32 0 or 1): the
 * reference trajectory with the gradients moved by the gradient tolerance
 * of compare() (four sign patterns), and for f32 the trajectories of the
 * margin graphs. */
static void step_envelope(Case *c, agc_graph *ref, const Optim *O, int f32) {
  double *pert = calloc((size_t)c->nout + 1, sizeof *pert);
  double G = 0;
  for (int j = 0; j < c->nout; j++)
    for (int64_t k = 0; k < c->ref[j].n; k++)
      G = fmax(G, fabs(c->ref[j].v[k]));
  for (int j = 0; j < c->nout; j++) {
    double scale = 0;
    for (int64_t k = 0; k < c->ref[j].n; k++)
      scale = fmax(scale, fabs(c->ref[j].v[k]));
    pert[j] = f32 ? 1e-2 * scale + 10 * c->sens[j] + 1e-4 * (1 + G)
                  : 1e-9 * scale + 1e-6 * c->sens[j] + 1e-12 * (1 + G);
    /* f32: or as far as the f32 reference's gradients are from f64, when
       a rule let that go (s952-g22086: a gradient f32 flushes to 0) */
    for (int64_t k = 0; f32 && c->ref32 && k < c->ref[j].n; k++)
      pert[j] = fmax(pert[j], fabs(c->ref32[j][k] - c->ref[j].v[k]));
  }
  c->sp_env[f32] = alloc_params(c);
  c->so_env[f32] = alloc_souts(c);
  double **pp = alloc_params(c), **oo = alloc_souts(c);
  /* four sign patterns: one random pattern and its negation, the same
     at every step, and two drawn anew at each step (an error that
     changes sign between steps moves Adam's second and third steps
     further than a steady one: s902-g2310) */
  for (int sg = 0; sg < 4; sg++) {
    for (int j = 0; j < c->nout; j++)
      pert[j] = -pert[j];
    if (step_traj(c, ref, O, pert, c->dseed ^ 0x57e9, sg >= 2, NULL, pp, oo)) {
      /* the perturbed trajectory leaves the domain: anything goes */
      for (int i = 0; i < c->nin; i++)
        for (int64_t k = 0; c->isparam[i] && k < c->in[i].n; k++)
          c->sp_env[f32][i][k] = INFINITY;
      for (int j = 0; j < c->nsout; j++)
        for (int64_t k = 0; k < c->ref[c->sout[j]].n; k++)
          c->so_env[f32][j][k] = INFINITY;
      continue;
    }
    env_widen(c, f32, pp, oo);
  }
  /* and the trajectories of the graph with its comparisons moved by the
     precision's margin either way (margins_explain), for a tie that the
     steps reach (s921-g5399: where(exp(log(x)) <= x, ...) in f32;
     s981-g7300: mean(v) == v in f64) */
  for (int m = 0; m < 2; m++) {
    agc_graph *g = margin_graph(c, m ? 1 : -1, f32);
    if (g && !step_traj(c, g, O, NULL, 0, 0, NULL, pp, oo)) {
      env_widen(c, f32, pp, oo);
    }
    agc_graph_free(g);
  }
  /* and the trajectory of the reference built without FMA (plain kernels):
     a tie that a contraction decides (contraction_explain) */
  if (plain_trajectory(c, O))
    env_widen(c, f32, c->plain_p, c->plain_o);
  /* f32: and the trajectories from the params moved by one f32 ulp, up or
     down at random (twice): a step that lands a value on a kink or a tie
     exactly (s952-g33753: Adam made p8 @ p9 cancel to 0 under abs(), so
     its sign was rounding's) parts there from the f32 runs */
  Rng r = {c->dseed ^ 0x57e9f32};
  double **start = calloc((size_t)c->nin + 1, sizeof *start);
  for (int t = 0; f32 && t < 2; t++) {
    for (int i = 0; i < c->nin; i++)
      if (c->isparam[i] && !c->in[i].is_int)
        start[i] = ulp_moved(&c->in[i], &r, start[i]);
    if (!step_traj(c, ref, O, NULL, 0, 0, start, pp, oo))
      env_widen(c, 1, pp, oo);
  }
  for (int i = 0; i < c->nin; i++)
    free(start[i]);
  free(start);
  free_params(c, pp);
  free_souts(c, oo);
  free(pert);
}

static void step_reference(Case *c, agc_graph *ref) {
  c->isparam = calloc((size_t)c->nin + 1, sizeof *c->isparam);
  c->pgrad = calloc((size_t)c->nin + 1, sizeof *c->pgrad);
  c->sout = calloc((size_t)c->nout + 1, sizeof *c->sout);
  for (int j = 0; j < c->nout; j++)
    if (!agc_graph_is_grad(ref, j))
      c->sout[c->nsout++] = j;
  for (int i = 0; i < c->nin; i++) {
    c->isparam[i] = agc_graph_is_param(ref, i);
    c->pgrad[i] = -1;
    char gn[80];
    snprintf(gn, sizeof gn, "grad_%s", c->in[i].name);
    for (int j = 0; j < c->nout; j++)
      if (agc_graph_is_grad(ref, j) && !strcmp(c->ref[j].name, gn))
        c->pgrad[i] = j;
  }
  c->K = 1 + (int)(c->dseed % 3);
  Optim O;
  if (parse_optim(c, &O)) {
    case_fail(c, "step: cannot read the optimizer of the graph");
    c->step_skip = 1;
    return;
  }
  c->adam = O.kind != 1;
  int unstable = 0;
  for (int j = 0; j < c->nout; j++)
    unstable |= c->unstable[j] && agc_graph_is_grad(ref, j);
  if (c->skip || unstable) {
    st.skip_step++;
    c->step_skip = 1;
    return;
  }
  c->sp_ref = alloc_params(c);
  c->so_ref = alloc_souts(c);
  if (step_traj(c, ref, &O, NULL, 0, 0, NULL, c->sp_ref, c->so_ref)) {
    st.skip_step++;
    c->step_skip = 1;
    return;
  }
  { /* the outputs at the final params: an output that equals them was
       stored after the update */
    double **in64 = calloc((size_t)c->nin + 1, sizeof *in64), **outs = alloc_outs(c);
    for (int i = 0; i < c->nin; i++)
      in64[i] = c->isparam[i] ? c->sp_ref[i] : c->in[i].v;
    char why[256];
    c->so_post = alloc_souts(c);
    if (run_graph(ref, 1, c, in64, outs, why, sizeof why) == 0)
      for (int j = 0; j < c->nsout; j++)
        memcpy(c->so_post[j], outs[c->sout[j]], (size_t)c->ref[c->sout[j]].n * sizeof(double));
    free(in64);
    free_outs(c, outs);
  }
  step_envelope(c, ref, &O, 0); /* f32's comes with the f32 reference */
}

/* A configuration's params after K steps and outputs of the last step
 * against the reference: per tensor, max over the elements of
 * |got - ref| - 2 env <= rtol max|ref| (+ s sens for outputs) + atol (1 + G);
 * f64: rtol 1e-9, atol 1e-12 (outputs: s 1e-6); f32: params rtol 1e-4, atol
 * 1e-5, outputs as the f32 reference against f64 (rtol 1e-2, s 10, atol
 * 1e-4). */
static void step_compare(Case *c, const char *cfg, int f32, double **p, double **o) {
  for (int pass = 0; pass < 2; pass++) {
    int n = pass ? c->nsout : c->nin;
    for (int i = 0; i < n; i++) {
      if (!pass && !c->isparam[i])
        continue;
      int oi = pass ? c->sout[i] : -1;
      if (pass && (c->unstable[oi] || (f32 && c->step_noise)))
        continue;
      const double *got = pass ? o[i] : p[i], *want = pass ? c->so_ref[i] : c->sp_ref[i];
      const double *env = pass ? c->so_env[f32][i] : c->sp_env[f32][i];
      int64_t m = pass ? c->ref[oi].n : c->in[i].n;
      double scale = 0, G = 0, err = 0, sens = pass ? c->sens[oi] : 0;
      int64_t worst = 0;
      for (int64_t k = 0; k < m; k++)
        scale = fmax(scale, fabs(want[k]));
      if (pass)
        for (int j = 0; j < c->nsout; j++)
          for (int64_t k = 0; k < c->ref[c->sout[j]].n; k++)
            G = fmax(G, fabs(c->so_ref[j][k]));
      else
        G = scale;
      for (int64_t k = 0; k < m; k++) {
        double e = fabs(got[k] - want[k]);
        e = isnan(e) ? INFINITY : e - 2 * env[k];
        if (e > err)
          err = e, worst = k;
      }
      double tol = !f32 ? 1e-9 * scale + 1e-6 * sens + 1e-12 * (1 + G)
                   : pass ? 1e-2 * scale + 10 * sens + 1e-4 * (1 + G)
                          : 1e-4 * scale + 1e-5 * (1 + G);
      if (err <= tol)
        continue;
      /* an output that is the value at the updated params */
      double post = INFINITY;
      for (int64_t k = 0; pass && c->so_post && k < m; k++) {
        double e = fabs(got[k] - c->so_post[i][k]);
        e = isnan(e) ? INFINITY : e - 2 * env[k];
        post = k ? fmax(post, e) : e;
      }
      case_fail(c, "%s: %s %s[%lld] after %d step%s = %.12g, ref %.12g (envelope %.3g); "
                "max err %.3g > tol %.3g%s", cfg, pass ? "output" : "param",
                pass ? c->ref[oi].name : c->in[i].name, (long long)worst, c->K,
                c->K > 1 ? "s" : "", got[worst], want[worst], env[worst], err, tol,
                post <= tol ? "; it is the value at the params after the update" : "");
      st.mismatches++;
      return;
    }
  }
}

/* K steps of fn (a generic step entry) with guarded buffers: params
 * updated in place, a zeroed state of state_bytes, a workspace of wb
 * filled with 0xff before each step. Params after the last step into
 * p[i], its outputs into o[j]. Returns 0 or -1 with a message in why. */
typedef int (*step_fn_t)(void *const *, void *const *, void *, void *);
static int run_step(step_fn_t fn, size_t state_bytes, size_t wb, int f64, const Case *c,
                    double **p, double **o, char *why, size_t whylen) {
  void *in[256], *out[256];
  size_t insz[256];
  volatile int rc = 0;
  if (c->nin > 256 || c->nsout > 256)
    return -1;
  for (int i = 0; i < c->nin; i++) {
    const Arr *a = &c->in[i];
    insz[i] = (size_t)a->n * (a->is_int || !f64 ? 4 : 8);
    void *b = pad_alloc(insz[i]);
    for (int64_t k = 0; k < a->n; k++) {
      if (a->is_int)
        ((int32_t *)b)[k] = a->vi[k];
      else if (f64)
        ((double *)b)[k] = a->v[k];
      else
        ((float *)b)[k] = a->v32[k];
    }
    in[i] = b;
  }
  for (int j = 0; j < c->nsout; j++) {
    size_t sz = (size_t)c->ref[c->sout[j]].n * (f64 ? 8 : 4);
    out[j] = pad_alloc(sz);
    memset(out[j], 0, sz);
  }
  void *state = pad_alloc(state_bytes), *work = pad_alloc(wb);
  memset(state, 0, state_bytes);
  in_call = 1;
  int sig = sigsetjmp(crash_jmp, 1);
  if (sig == 0) {
    for (int t = 0; t < c->K; t++) {
      memset(work, 0xff, wb);
      fn(in, out, state, work);
    }
  } else {
    snprintf(why, whylen, "crashed with signal %d", sig);
    rc = -1;
  }
  in_call = 0;
  if (pad_bad(work, wb) && !rc)
    snprintf(why, whylen, "wrote outside the workspace of %zu bytes", wb), rc = -1;
  if (pad_bad(state, state_bytes) && !rc)
    snprintf(why, whylen, "wrote outside the state of %zu bytes", state_bytes), rc = -1;
  pad_free(work);
  pad_free(state);
  for (int j = 0; j < c->nsout; j++) {
    const Arr *r = &c->ref[c->sout[j]];
    size_t sz = (size_t)r->n * (f64 ? 8 : 4);
    for (int64_t k = 0; k < r->n; k++)
      o[j][k] = f64 ? ((double *)out[j])[k] : (double)((float *)out[j])[k];
    if (pad_bad(out[j], sz) && !rc)
      snprintf(why, whylen, "wrote outside output %s (%zu bytes)", r->name, sz), rc = -1;
    pad_free(out[j]);
  }
  for (int i = 0; i < c->nin; i++) {
    const Arr *a = &c->in[i];
    if (pad_bad(in[i], insz[i]) && !rc)
      snprintf(why, whylen, "wrote outside %s %s (%zu bytes)",
               c->isparam[i] ? "param" : "input", a->name, insz[i]), rc = -1;
    for (int64_t k = 0; k < a->n; k++) {
      double v = a->is_int ? (double)((int32_t *)in[i])[k]
                 : f64 ? ((double *)in[i])[k] : (double)((float *)in[i])[k];
      double v0 = a->is_int ? (double)a->vi[k] : f64 ? a->v[k] : (double)a->v32[k];
      if (c->isparam[i])
        p[i][k] = v;
      else if (v != v0 && !rc)
        snprintf(why, whylen, "changed input %s[%lld]", a->name, (long long)k), rc = -1;
    }
    pad_free(in[i]);
  }
  return rc;
}

static int step_cur(void *const *in, void *const *out, void *state, void *work) {
  return agc_graph_step(cur_graph, in, out, state, work);
}

/* Is any param or step output of p, o not finite? (The f64 reference's
 * are all finite: step_traj.) */
static int step_nonfinite(const Case *c, double *const *p, double *const *o) {
  for (int i = 0; i < c->nin; i++)
    for (int64_t k = 0; c->isparam[i] && k < c->in[i].n; k++)
      if (!isfinite(p[i][k]))
        return 1;
  for (int j = 0; j < c->nsout; j++)
    for (int64_t k = 0; k < c->ref[c->sout[j]].n; k++)
      if (!isfinite(o[j][k]))
        return 1;
  return 0;
}

/* runs and compares fn's steps as configuration `cfg` ("step-tcc-f32").
 * Where the f32 reference's steps (step-O0-f32, the first f32 ones run)
 * are not finite, f32 itself overflows on the way (s85-g2672: SGD with
 * momentum 0.99 takes p2 to 106, and exp(p2 p3), 1e46 in f64, is inf in
 * f32; tanh'(inf) * inf is NaN, where f64 has 0 * 1e46): f32 steps are
 * then not compared, and counted. */
static void step_check(Case *c, const char *cfg, step_fn_t fn, size_t state_bytes, size_t wb,
                       int f64) {
  if (!c->train || c->step_skip)
    return;
  double **p = alloc_params(c), **o = alloc_souts(c);
  char why[256];
  char ref32[64];
  snprintf(ref32, sizeof ref32, "step-%s", cfg_name[CFG_O0_32]);
  if (run_step(fn, state_bytes, wb, f64, c, p, o, why, sizeof why)) {
    case_fail(c, "%s: %s", cfg, why);
    st.sanitizer++;
  } else if (!f64 && !strcmp(cfg, ref32) && step_nonfinite(c, p, o)) {
    c->step_f32_inf = 1;
    st.step_f32_inf++;
  } else if (f64 || !c->step_f32_inf) {
    step_compare(c, cfg, !f64, p, o);
  }
  st.steps_checked++;
  free_params(c, p);
  free_souts(c, o);
}

static void step_inproc(Case *c, agc_graph *g, const char *cfg, int f64) {
  char name[64];
  snprintf(name, sizeof name, "step-%s", cfg);
  if (!agc_graph_has_step(g)) {
    case_fail(c, "%s: the graph has an optimizer but no step", name);
    st.mismatches++;
    return;
  }
  cur_graph = g;
  step_check(c, name, step_cur, agc_graph_state_bytes(g), agc_graph_step_work_bytes(g), f64);
}

/* Adam divides a gradient by its own size, so where f32 cannot resolve a
 * param's gradient (the f32 reference's error is at least the gradient's
 * size, everywhere in the param: a loss constant in exact arithmetic, such
 * as -sum(softmax(x)), has gradients of pure rounding noise), its steps
 * are lr in directions rounding chose. Each param still stays inside its
 * envelope (each element moves at most lr per step); an output of several
 * such params can land where the two sampled sign patterns do not reach,
 * so f32 step outputs are not compared then. */
static void step_noise(Case *c) {
  if (!c->train || c->step_skip || !c->adam || !c->ref32)
    return;
  for (int i = 0; i < c->nin && !c->step_noise; i++) {
    if (!c->isparam[i] || c->pgrad[i] < 0)
      continue;
    const Arr *g = &c->ref[c->pgrad[i]];
    const double *g32 = c->ref32[c->pgrad[i]];
    double gmax = 0, err = 0;
    for (int64_t k = 0; k < g->n; k++) {
      gmax = fmax(gmax, fabs(g->v[k]));
      err = fmax(err, fabs(g32[k] - g->v[k]));
    }
    c->step_noise = err > 0 && err >= gmax;
    if (c->step_noise && opt.verbose > 0)
      fprintf(stderr, "%s: f32 step outputs not compared: grad_%s is at most %.3g, "
              "f32 is %.3g off it\n", c->label, c->in[i].name, gmax, err);
  }
  st.step_noise += c->step_noise;
}

/* Compiles the reference, makes the data, runs ref and the in-process
 * configurations. Returns 0 if the case can go on to cc/ASan. */
static int stage1(Case *c) {
  char err[4096];
  agc_graph *ref = load(c, 1, 1, 0, AGC_BACKEND_TCC, err, sizeof err);
  if (!ref) {
    c->rejected = 1;
    case_fail(c, "reject: %s", err);
    return -1;
  }
  c->nin = agc_graph_num_inputs(ref);
  c->nout = agc_graph_num_outputs(ref);
  c->in = calloc((size_t)c->nin + 1, sizeof *c->in);
  c->ref = calloc((size_t)c->nout + 1, sizeof *c->ref);
  c->sens = calloc((size_t)c->nout + 1, sizeof *c->sens);
  for (int i = 0; i < c->nin; i++) {
    Arr *a = &c->in[i];
    arr_shape(a, ref, 0, i);
    const RLine *l = rg_leaf(&c->g, a->name);
    if (a->is_int) {
      a->vi = calloc((size_t)a->n + 1, sizeof *a->vi);
      RLine dflt = {0};
      dflt.kind = RL_INT;
      dflt.imax = 1;
      for (int64_t k = 0; k < a->n; k++)
        fill_value(c->dseed, a->name, k, l ? l : &dflt, &a->vi[k]);
    } else {
      a->v = calloc((size_t)a->n + 1, sizeof *a->v);
      a->v32 = calloc((size_t)a->n + 1, sizeof *a->v32);
      /* values a float holds, so that the f32 and the f64 runs compute
         from the same inputs (two values one float apart in f64 but equal
         in f32 made min() pick different elements: s601-g5925) */
      for (int64_t k = 0; k < a->n; k++) {
        a->v32[k] = (float)fill_value(c->dseed, a->name, k, l, NULL);
        a->v[k] = a->v32[k];
      }
    }
  }
  for (int i = 0; i < c->nout; i++) {
    arr_shape(&c->ref[i], ref, 1, i);
    c->ref[i].v = calloc((size_t)c->ref[i].n + 1, sizeof(double));
  }
  double **outs = alloc_outs(c);
  char why[256];
  if (run_graph(ref, 1, c, NULL, outs, why, sizeof why)) {
    case_fail(c, "ref: %s", why);
    st.mismatches++;
  }
  for (int i = 0; i < c->nout; i++) {
    memcpy(c->ref[i].v, outs[i], (size_t)c->ref[i].n * sizeof(double));
    for (int64_t k = 0; k < c->ref[i].n; k++)
      if (!isfinite(outs[i][k]))
        c->skip = 1;
  }
  /* sensitivity: every float input times (1 +- 1e-5), twice; then by
     1e-7 and 1e-9, so that an output that is the sign (or a comparison)
     of a value that cancels to rounding noise shows it flips. The two
     runs of each size move the inputs by opposite signs (a pattern and
     its negation), so that a value at a tie moves both ways and a sign of
     it flips in one of them (with two patterns drawn apart, a tie could
     keep its side in both: s961-g9865, sign(v4) with v4 = 0 up to
     rounding). Each element moves by its own size, rel times 0.5 to 1.5:
     two equal elements moved by the same relative step stay equal, so a
     value that cancels them exactly stays at its tie (s1001-g9563:
     0.75 tanh(a) - 0.75 tanh(b) with a == b, 0 without FMA and 1.4e-17
     with it, under abs(): the 1e-9 pair moved a and b alike and saw no
     jump) */
  double **p64 = calloc((size_t)c->nin + 1, sizeof *p64);
  Rng r = {c->dseed ^ 0x5eed}, pair = r;
  static const double rel[] = {1e-5, 1e-5, 1e-7, 1e-7, 1e-9, 1e-9};
  double *tiny = calloc((size_t)c->nout + 1, sizeof *tiny);
  c->unstable = calloc((size_t)c->nout + 1, sizeof *c->unstable);
  c->still = calloc((size_t)c->nout + 1, sizeof *c->still);
  for (int t = 0; t < 6 && !c->skip; t++) {
    if (t % 2)
      r = pair; /* the same draws as run t - 1, negated */
    else
      pair = r;
    const double neg = t % 2 ? -1 : 1;
    for (int i = 0; i < c->nin; i++) {
      if (c->in[i].is_int)
        continue;
      free(p64[i]);
      p64[i] = malloc((size_t)c->in[i].n * sizeof(double) + 1);
      for (int64_t k = 0; k < c->in[i].n; k++) {
        double sg = rng_unit(&r) < 0.5 ? -1 : 1, size = 0.5 + rng_unit(&r);
        p64[i][k] = c->in[i].v[k] * (1 + neg * sg * size * rel[t]);
      }
    }
    run_graph(ref, 1, c, p64, outs, why, sizeof why);
    for (int i = 0; i < c->nout; i++)
      for (int64_t k = 0; k < c->ref[i].n; k++) {
        double d = fabs(outs[i][k] - c->ref[i].v[k]);
        d = isnan(d) ? INFINITY : d;
        if (t < 4)
          c->sens[i] = fmax(c->sens[i], d);
        else
          tiny[i] = fmax(tiny[i], d);
      }
  }
  /* A smooth output moves by ~1e-4 of sens under a 1e-9 change; one that
     moves more jumps (sign, comparisons, where, ties) at rounding level:
     no configuration can be expected to agree on it, so it is skipped. */
  for (int i = 0; i < c->nout && !c->skip; i++) {
    double scale = 0;
    for (int64_t k = 0; k < c->ref[i].n; k++)
      scale = fmax(scale, fabs(c->ref[i].v[k]));
    c->still[i] = c->sens[i] == 0 && tiny[i] == 0;
    if (tiny[i] > 1e-2 * c->sens[i] + 1e-7 * scale + 1e-12) {
      c->unstable[i] = 1;
      st.skip_unstable++;
      if (opt.verbose > 0)
        fprintf(stderr, "%s: output %s unstable (moves %.3g under 1e-9, %.3g under 1e-5)\n",
                c->label, c->ref[i].name, tiny[i], c->sens[i]);
    }
  }
  free(tiny);
  for (int i = 0; i < c->nin; i++)
    free(p64[i]);
  free(p64);
  if (c->skip)
    st.skip_nonfinite++;
  /* a training step: its reference */
  int has_optim = 0;
  for (int i = 0; i < c->g.n; i++)
    has_optim |= !c->g.l[i].dead && c->g.l[i].kind == RL_OPTIM && !strncmp(c->g.l[i].text, "optimizer", 9);
  c->train = agc_graph_has_step(ref);
  if (has_optim && !c->train) {
    case_fail(c, "step: the reference has an optimizer but no step");
    st.mismatches++;
  }
  if (c->train) {
    st.train_graphs++;
    step_reference(c, ref);
    step_inproc(c, ref, "O0-f64", 1);
  }
  /* the other in-process configurations */
  static const struct {
    int cfg, f64, O0, mcu;
  } cf[] = {{CFG_O0_32, 0, 1, 0}, {CFG_TCC64, 1, 0, 0}, {CFG_TCC32, 0, 0, 0},
            {CFG_MCU64, 1, 0, 1}, {CFG_MCU32, 0, 0, 1}};
  agc_graph *keep[sizeof cf / sizeof cf[0]] = {NULL};
  for (size_t k = 0; k < sizeof cf / sizeof cf[0]; k++) {
    agc_graph *g = load(c, cf[k].f64, cf[k].O0, cf[k].mcu, AGC_BACKEND_TCC, err, sizeof err);
    if (!g) {
      case_fail(c, "%s: compile failed: %s", cfg_name[cf[k].cfg], errpart(err));
      continue;
    }
    int ok = agc_graph_num_outputs(g) == c->nout && agc_graph_num_inputs(g) == c->nin;
    for (int i = 0; ok && i < c->nout; i++)
      ok = agc_graph_count(g, 1, i) == c->ref[i].n;
    if (!ok) {
      case_fail(c, "%s: input/output tables differ from the reference", cfg_name[cf[k].cfg]);
    } else {
      if (run_graph(g, cf[k].f64, c, NULL, outs, why, sizeof why)) {
        case_fail(c, "%s: %s", cfg_name[cf[k].cfg], why);
        st.sanitizer++;
      } else if (cf[k].cfg == CFG_O0_32 && !c->skip) {
        f32_jumps(c, g, outs);
      }
      for (int i = 0; i < c->nout && !c->skip; i++)
        if (compare(c, cf[k].cfg, i, outs[i]))
          st.mismatches++;
      if (c->train) { /* its steps after the f32 reference (step_noise) */
        keep[k] = g;
        g = NULL;
      }
      if (cf[k].cfg == CFG_TCC64 && !c->tcc64) /* for threads_check */
        c->tcc64 = copy_outs(c, outs);
      if (cf[k].cfg == CFG_TCC32 && !c->tcc32)
        c->tcc32 = copy_outs(c, outs);
      if (cf[k].cfg == CFG_O0_32) /* the f32 reference */
        c->ref32 = copy_outs(c, outs);
    }
    agc_graph_free(g);
  }
  step_noise(c);
  if (c->train && !c->step_skip) {
    Optim O;
    if (!parse_optim(c, &O))
      step_envelope(c, ref, &O, 1);
  }
  for (size_t k = 0; k < sizeof cf / sizeof cf[0]; k++)
    if (keep[k]) {
      step_inproc(c, keep[k], cfg_name[cf[k].cfg], cf[k].f64);
      agc_graph_free(keep[k]);
    }
  free_outs(c, outs);
  if (!c->skip) {
    option_checks(c);
    threads_check(c);
    kernels_check(c);
  }
  if (opt.fd && !c->skip)
    fd_check(c, ref);
  agc_graph_free(ref);
  return 0;
}

/* ---- finite differences -------------------------------------------------
 * T = sum of the scalar backward roots (+ sum(seed * root) for a root with
 * a seed input grad_ROOT). For up to 8 sampled elements of each param P,
 * h = 1e-5 * max(1, |p|):
 *   c = (T(p+h) - T(p-h)) / 2h, d+ = (T(p+h) - T(p)) / h, d- = (T(p) - T(p-h)) / h.
 * |d+ - d-| ~ h |T''| for smooth T; larger means a kink or jump (relu, abs,
 * max, where, comparisons) within h: that element is skipped (counted).
 * Else |grad - c| <= 1e-5 max(|grad|, |c|) + 1e-7 max|grad_P| + 2 |d+ - d-|
 *   + 1e-9 (1 + |T|) / h  (f64 rounding of T over the step). */
static double fd_target(const Case *c, int *roots, int nroots, int *seeds,
                        double **outs) {
  double t = 0;
  for (int r = 0; r < nroots; r++) {
    const Arr *o = &c->ref[roots[r]];
    if (seeds[r] < 0) {
      t += outs[roots[r]][0];
    } else {
      for (int64_t k = 0; k < o->n; k++)
        t += c->in[seeds[r]].v[k] * outs[roots[r]][k];
    }
  }
  return t;
}

static void fd_check(Case *c, agc_graph *ref) {
  if (c->g.nofd || c->g.nroots == 0) {
    st.skip_fd_graph++;
    return;
  }
  int roots[4], seeds[4], nr = 0;
  for (int r = 0; r < c->g.nroots; r++) {
    int oi = -1, si = -1;
    for (int i = 0; i < c->nout; i++)
      if (!strcmp(c->ref[i].name, c->g.roots[r]))
        oi = i;
    char sn[80];
    snprintf(sn, sizeof sn, "grad_%s", c->g.roots[r]);
    for (int i = 0; i < c->nin; i++)
      if (!strcmp(c->in[i].name, sn))
        si = i;
    if (oi < 0 || (c->ref[oi].n != 1 && si < 0)) {
      st.skip_fd_graph++;
      return;
    }
    roots[nr] = oi, seeds[nr++] = c->ref[oi].n == 1 && si < 0 ? -1 : si;
  }
  double **outs = alloc_outs(c);
  double **p64 = calloc((size_t)c->nin + 1, sizeof *p64);
  for (int i = 0; i < c->nin; i++)
    p64[i] = c->in[i].v;
  /* T at the unperturbed point from the reference outputs */
  double T0, **refv = calloc((size_t)c->nout + 1, sizeof *refv);
  for (int i = 0; i < c->nout; i++)
    refv[i] = c->ref[i].v;
  T0 = fd_target(c, roots, nr, seeds, refv);
  free(refv);
  Rng r = {c->dseed ^ 0xfdfd};
  for (int oi = 0; oi < c->nout; oi++) {
    if (strncmp(c->ref[oi].name, "grad_", 5) || !agc_graph_is_grad(ref, oi))
      continue;
    int pi = -1;
    for (int i = 0; i < c->nin; i++)
      if (!strcmp(c->in[i].name, c->ref[oi].name + 5))
        pi = i;
    if (pi < 0 || c->in[pi].is_int)
      continue;
    Arr *p = &c->in[pi];
    const double *g = c->ref[oi].v;
    double gmax = 0;
    for (int64_t k = 0; k < p->n; k++)
      gmax = fmax(gmax, fabs(g[k]));
    int ns = p->n <= 8 ? (int)p->n : 8;
    for (int s = 0; s < ns; s++) {
      int64_t k = p->n <= 8 ? s : (int64_t)(rng_next(&r) % (uint64_t)p->n);
      double x = p->v[k], h = 1e-5 * fmax(1, fabs(x));
      double *w = malloc((size_t)p->n * sizeof *w + 1);
      memcpy(w, p->v, (size_t)p->n * sizeof *w);
      p64[pi] = w;
      w[k] = x + h;
      char why[256];
      run_graph(ref, 1, c, p64, outs, why, sizeof why);
      double Tp = fd_target(c, roots, nr, seeds, outs);
      w[k] = x - h;
      run_graph(ref, 1, c, p64, outs, why, sizeof why);
      double Tm = fd_target(c, roots, nr, seeds, outs);
      p64[pi] = p->v;
      free(w);
      double cd = (Tp - Tm) / (2 * h), dp = (Tp - T0) / h, dm = (T0 - Tm) / h;
      double kink = fabs(dp - dm);
      if (!isfinite(cd) || kink > 1e-3 * (1 + fabs(cd))) {
        st.fd_skipped++;
        continue;
      }
      st.fd_checked++;
      double tol = 1e-5 * fmax(fabs(g[k]), fabs(cd)) + 1e-7 * gmax + 2 * kink +
                   1e-9 * (1 + fabs(T0)) / h;
      if (!(fabs(g[k] - cd) <= tol)) {
        st.fd_fail++;
        case_fail(c, "fd: %s[%lld] = %.10g (f64 -O0 tcc), central difference %.10g "
                  "(h %.2g, one-sided %.10g / %.10g), tol %.3g", c->ref[oi].name,
                  (long long)k, g[k], cd, h, dp, dm, tol);
        break;
      }
    }
  }
  free(p64);
  free_outs(c, outs);
}

/* ---- the generated C of a batch -------------------------------------- */

typedef struct {
  char *s;
  size_t len, cap;
} Buf;

static void bput(Buf *b, const char *s, size_t n) {
  while (b->len + n + 1 > b->cap) {
    b->cap = b->cap ? 2 * b->cap : 65536;
    b->s = realloc(b->s, b->cap);
    if (!b->s)
      abort();
  }
  memcpy(b->s + b->len, s, n);
  b->len += n;
  b->s[b->len] = 0;
}
static void bputs(Buf *b, const char *s) { bput(b, s, strlen(s)); }

/* printf into a static buffer (for bputs) */
static const char *xfmt_tmp(const char *f, ...) __attribute__((format(printf, 1, 2)));
static const char *xfmt_tmp(const char *f, ...) {
  static char buf[2048];
  va_list ap;
  va_start(ap, f);
  vsnprintf(buf, sizeof buf, f, ap);
  va_end(ap);
  return buf;
}

/* The C of case c for dtype f64 and the host or mcu target, named NAME,
 * as the cc backend gets it (agc_graph_load_source with backend cc). */
static char *emit_case_c(const Case *c, int f64, int mcu, const char *name, char *err,
                         size_t errlen) {
  Options o = {0};
  o.api.f64 = f64;
  o.api.name = name;
  o.target = mcu ? TARGET_MCU : TARGET_HOST;
  if (!mcu && (c->id & 1)) { /* every other graph's host C on 3 threads,
                                everything that can be threaded */
    o.api.threads = 3;
    o.api.threads_min_macs = 1;
    o.api.threads_min_elems = 1;
  }
  Ctx *ctx = agc_compile(c->label, c->src, strlen(c->src), &o);
  StrBuf sb = {0};
  char *r = NULL;
  if (!agc_failed(ctx) && agc_emit(ctx, EMIT_C, o.target, &sb) == 0)
    r = strdup(sb.s ? sb.s : "");
  else
    snprintf(err, errlen, "%s", errpart(agc_messages(ctx)));
  sb_free(&sb);
  agc_free(ctx);
  return r;
}

static void run_outs_from(Case *c, int cfg, double **outs) {
  for (int i = 0; i < c->nout && !c->skip; i++)
    if (compare(c, cfg, i, outs[i]))
      st.mismatches++;
}

/* cc: the runtime's cc backend on chunks of concatenated graphs */
typedef struct {
  Case *c;
  int f64, mcu;
  char name[32];
  char *code;
} Unit;

static void upper(char *d, const char *s) {
  for (; *s; s++)
    *d++ = (char)(*s >= 'a' && *s <= 'z' ? *s - 32 : *s);
  *d = 0;
}

/* The value of `#define NAME_WHAT N` in a unit's C (-1 if absent): the
 * sizes the generated code itself declares (the caller allocates them). */
static long long unit_macro(const Unit *u, const char *what) {
  char up[64], pat[128];
  upper(up, u->name);
  snprintf(pat, sizeof pat, "#define %s_%s ", up, what);
  const char *p = strstr(u->code, pat);
  return p ? strtoll(p + strlen(pat), NULL, 10) : -1;
}

/* the step of a training graph compiled by cc: NAME_generic */
static void cc_step(Case *c, const Unit *u, agc_module *m, int cfg) {
  char sym[64], name[64];
  snprintf(sym, sizeof sym, "%s_generic", u->name);
  snprintf(name, sizeof name, "step-%s", cfg_name[cfg]);
  step_fn_t fn = (step_fn_t)(uintptr_t)agc_module_symbol(m, sym);
  long long sb = unit_macro(u, "STATE_BYTES"), wb = unit_macro(u, "WORK_BYTES");
  if (!fn || sb < 0 || wb < 0) {
    case_fail(c, "%s: no symbol %s or no STATE_BYTES/WORK_BYTES macro", name, sym);
    st.mismatches++;
    return;
  }
  step_check(c, name, fn, (size_t)sb, (size_t)wb, u->f64);
}

static void cc_chunk(Unit *u, int n) {
  if (n == 0)
    return;
  Buf b = {0};
  for (int i = 0; i < n; i++)
    bputs(&b, u[i].code);
  char err[2048];
  agc_module *m = agc_module_compile(b.s, AGC_BACKEND_CC, err, sizeof err);
  free(b.s);
  if (!m) {
    if (n > 1) { /* find the culprit */
      cc_chunk(u, n / 2);
      cc_chunk(u + n / 2, n - n / 2);
      return;
    }
    case_fail(u->c, "%s: the generated C failed to compile: %s",
              cfg_name[cc_cfg(u->f64, u->mcu)], err);
    st.mismatches++;
    return;
  }
  for (int i = 0; i < n; i++) {
    Case *c = u[i].c;
    int cfg = cc_cfg(u[i].f64, u[i].mcu);
    char sym[64];
    /* a training graph's gradient function is NAME_grad */
    snprintf(sym, sizeof sym, "%s%s_generic", u[i].name, c->train ? "_grad" : "");
    int (*fn)(const void *const *, void *const *, void *) =
        (int (*)(const void *const *, void *const *, void *))(uintptr_t)agc_module_symbol(m, sym);
    if (!fn) {
      case_fail(c, "%s: no symbol %s", cfg_name[cfg], sym);
      st.mismatches++;
      continue;
    }
    /* the workspace size: the macro in the C */
    long long wb = unit_macro(&u[i], c->train ? "GRAD_WORK_BYTES" : "WORK_BYTES");
    if (wb < 0) {
      case_fail(c, "%s: no WORK_BYTES macro in the C", cfg_name[cfg]);
      st.mismatches++;
      continue;
    }
    double **outs = alloc_outs(c);
    char why[256];
    if (run_fn(fn, (size_t)wb, u[i].f64, c, NULL, outs, why, sizeof why)) {
      case_fail(c, "%s: %s", cfg_name[cfg], why);
      st.sanitizer++;
    }
    run_outs_from(c, cfg, outs);
    free_outs(c, outs);
    if (c->train)
      cc_step(c, &u[i], m, cfg);
  }
  agc_module_free(m);
}

static void stage_cc(Unit *u, int n) {
  double t0 = now();
  int start = 0;
  size_t bytes = 0;
  for (int i = 0; i <= n; i++) {
    size_t sz = i < n ? strlen(u[i].code) : 0;
    if (i == n || (i > start && bytes + sz > 96 * 1024)) {
      cc_chunk(u + start, i - start);
      start = i;
      bytes = 0;
    }
    bytes += sz;
  }
  st.t_cc += now() - t0;
}

/* ---- ASan ----------------------------------------------------------------- */

/* The driver's entry table (written with the units' C) and main. Each
 * entry: the gradient function (NAME_generic, or NAME_grad_generic of a
 * training graph) with its tables and workspace size; for a training graph
 * also its step (NAME_generic), which params it updates, its output tables,
 * NAME_STATE_BYTES, NAME_WORK_BYTES and K. Every buffer is malloc'ed to
 * its exact size. Per entry the output file gets the entry's number, its
 * outputs and, for a step, the params after K steps and the last step's
 * outputs. */
static const char asan_ent[] =
    "typedef int (*fn_t)(const void *const *, void *const *, void *);\n"
    "typedef int (*sfn_t)(void *const *, void *const *, void *, void *);\n"
    "struct ent { fn_t fn; const int *ind, *inr; const int64_t (*indm)[8];\n"
    "  const int *outr; const int64_t (*outdm)[8]; size_t work; int f64;\n"
    "  sfn_t step; const int *isp, *soutr; const int64_t (*soutdm)[8];\n"
    "  size_t state, swork; int K; };\n";
static const char asan_driver[] =
    "#include <stdio.h>\n#include <stdlib.h>\n#include <string.h>\n"
    "static int64_t cnt(int r, const int64_t *d) { int64_t n = 1;\n"
    "  for (int i = 0; i < r; i++) n *= d[i]; return n; }\n"
    "int main(int argc, char **argv) {\n"
    "  FILE *in = fopen(argv[1], \"rb\"), *out = fopen(argv[2], \"ab\");\n"
    "  int start = atoi(argv[3]);\n"
    "  if (!in || !out) return 2;\n"
    "  int n = (int)(sizeof ents / sizeof ents[0]);\n"
    "  for (int e = 0; e < n; e++) {\n"
    "    const struct ent *t = &ents[e];\n"
    "    int ni = 0, no = 0;\n"
    "    while (t->inr[ni] >= 0) ni++;\n"
    "    while (t->outr[no] >= 0) no++;\n"
    "    void **ib = calloc((size_t)ni + 1, sizeof *ib), **ob = calloc((size_t)no + 1, sizeof *ob);\n"
    "    size_t *isz = calloc((size_t)ni + 1, sizeof *isz);\n"
    "    for (int i = 0; i < ni; i++) {\n"
    "      size_t sz = (size_t)cnt(t->inr[i], t->indm[i]) * (t->ind[i] == 2 ? 4 : t->f64 ? 8 : 4);\n"
    "      ib[i] = malloc(sz);\n"
    "      isz[i] = sz;\n"
    "      if (fread(ib[i], 1, sz, in) != sz) return 3;\n"
    "    }\n"
    "    if (e >= start) {\n"
    "      size_t el = t->f64 ? 8 : 4;\n"
    "      for (int i = 0; i < no; i++)\n"
    "        ob[i] = calloc((size_t)cnt(t->outr[i], t->outdm[i]), el);\n"
    "      void *work = malloc(t->work);\n"
    "      if (t->work) memset(work, 0xff, t->work);\n"
    "      fprintf(stderr, \"AGC-CASE %d\\n\", e);\n"
    "      t->fn((const void *const *)ib, ob, work);\n"
    "      free(work);\n"
    "      fwrite(&e, sizeof e, 1, out);\n"
    "      for (int i = 0; i < no; i++) {\n"
    "        fwrite(ob[i], el, (size_t)cnt(t->outr[i], t->outdm[i]), out);\n"
    "        free(ob[i]);\n"
    "      }\n"
    "      if (t->step) {\n"
    "        int ns = 0;\n"
    "        while (t->soutr[ns] >= 0) ns++;\n"
    "        void **sb = calloc((size_t)ns + 1, sizeof *sb);\n"
    "        for (int i = 0; i < ns; i++)\n"
    "          sb[i] = calloc((size_t)cnt(t->soutr[i], t->soutdm[i]), el);\n"
    "        void *state = malloc(t->state), *sw = malloc(t->swork);\n"
    "        if (t->state) memset(state, 0, t->state);\n"
    "        fprintf(stderr, \"AGC-STEP %d\\n\", e);\n"
    "        for (int k = 0; k < t->K; k++) {\n"
    "          if (t->swork) memset(sw, 0xff, t->swork);\n"
    "          t->step(ib, sb, state, sw);\n"
    "        }\n"
    "        for (int i = 0; i < ni; i++)\n"
    "          if (t->isp[i]) fwrite(ib[i], 1, isz[i], out);\n"
    "        for (int i = 0; i < ns; i++) {\n"
    "          fwrite(sb[i], el, (size_t)cnt(t->soutr[i], t->soutdm[i]), out);\n"
    "          free(sb[i]);\n"
    "        }\n"
    "        free(sb); free(state); free(sw);\n"
    "      }\n"
    "      fflush(out);\n"
    "    }\n"
    "    for (int i = 0; i < ni; i++) free(ib[i]);\n"
    "    free(ib); free(ob); free(isz);\n"
    "  }\n"
    "  fclose(in); fclose(out);\n"
    "  return 0;\n"
    "}\n";

static int run_cmd(char *const argv[], const char *errfile) {
  pid_t pid = fork();
  if (pid < 0)
    return -1;
  if (pid == 0) {
    int fd = errfile ? open(errfile, O_WRONLY | O_CREAT | O_TRUNC, 0644) : -1;
    if (fd >= 0) {
      dup2(fd, 2);
      dup2(fd, 1);
      close(fd);
    }
    execvp(argv[0], argv);
    _exit(127);
  }
  int status;
  while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
    ;
  return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

static char *slurp(const char *path, size_t *len) {
  FILE *f = fopen(path, "rb");
  if (!f)
    return NULL;
  Buf b = {0};
  char tmp[65536];
  size_t n;
  while ((n = fread(tmp, 1, sizeof tmp, f)) > 0)
    bput(&b, tmp, n);
  fclose(f);
  if (len)
    *len = b.len;
  if (!b.s)
    b.s = calloc(1, 1);
  return b.s;
}

/* The units' C alone, compiled as a user would (gcc -std=c99 -Wall
 * -Wextra -pedantic -Werror): the generated C must be warning-free; a
 * chunk that warns is halved until the unit is found. */
static void stage_strict(Unit *u, int n) {
  if (n == 0)
    return;
  char src[512], errf[512];
  snprintf(src, sizeof src, "%s/strict.c", opt.tmp);
  snprintf(errf, sizeof errf, "%s/strict.err", opt.tmp);
  FILE *f = fopen(src, "w");
  if (!f)
    return;
  for (int i = 0; i < n; i++)
    fputs(u[i].code, f);
  fclose(f);
  char *argv[] = {"gcc", "-std=c99", "-Wall", "-Wextra", "-pedantic", "-Werror",
                  "-fsyntax-only", "-pthread", src, NULL};
  if (run_cmd(argv, errf) == 0)
    return;
  if (n > 1) {
    stage_strict(u, n / 2);
    stage_strict(u + n / 2, n - n / 2);
    return;
  }
  char *e = slurp(errf, NULL);
  char *w = e ? strstr(e, "error:") : NULL;
  case_fail(u->c, "strict-%s: the generated C does not compile warning-free: %.300s",
            cfg_name[cc_cfg(u->f64, u->mcu)] + 3, w ? w : e ? e : "?");
  st.mismatches++;
  free(e);
}

static void stage_asan(Unit *u, int n) {
  if (n == 0)
    return;
  double t0 = now();
  char src[512], bin[512], data[512], outf[512], errf[512];
  snprintf(src, sizeof src, "%s/asan.c", opt.tmp);
  snprintf(bin, sizeof bin, "%s/asan", opt.tmp);
  snprintf(data, sizeof data, "%s/asan.in", opt.tmp);
  snprintf(outf, sizeof outf, "%s/asan.out", opt.tmp);
  snprintf(errf, sizeof errf, "%s/asan.err", opt.tmp);
  Buf b = {0};
  bputs(&b, "#include <stdint.h>\n#include <stddef.h>\n");
  for (int i = 0; i < n; i++)
    bputs(&b, u[i].code);
  bputs(&b, asan_ent);
  for (int i = 0; i < n; i++) { /* which inputs a step updates */
    Case *c = u[i].c;
    if (!c->train)
      continue;
    bputs(&b, xfmt_tmp("static const int %s_isp[] = {", u[i].name));
    for (int k = 0; k < c->nin; k++)
      bputs(&b, c->isparam[k] ? "1, " : "0, ");
    bputs(&b, "0};\n");
  }
  bputs(&b, "static const struct ent ents[] = {\n");
  for (int i = 0; i < n; i++) {
    char up[64];
    upper(up, u[i].name);
    const char *nm = u[i].name, *gs = u[i].c->train ? "_grad" : "";
    const char *GS = u[i].c->train ? "_GRAD" : "";
    bputs(&b, xfmt_tmp("  {%s%s_generic, %s%s_input_dtypes, %s%s_input_ranks, %s%s_input_dims, "
                       "%s%s_output_ranks, %s%s_output_dims, %s%s_WORK_BYTES, %d, ",
                       nm, gs, nm, gs, nm, gs, nm, gs, nm, gs, nm, gs, up, GS, u[i].f64));
    if (u[i].c->train)
      bputs(&b, xfmt_tmp("%s_generic, %s_isp, %s_output_ranks, %s_output_dims, %s_STATE_BYTES, "
                         "%s_WORK_BYTES, %d},\n", nm, nm, nm, nm, up, up, u[i].c->K));
    else
      bputs(&b, "0, 0, 0, 0, 0, 0, 0},\n");
  }
  bputs(&b, "};\n");
  bputs(&b, asan_driver);
  FILE *f = fopen(src, "w");
  fwrite(b.s, 1, b.len, f);
  fclose(f);
  free(b.s);
  /* data: every input of every unit, in its dtype */
  f = fopen(data, "wb");
  for (int i = 0; i < n; i++) {
    Case *c = u[i].c;
    for (int k = 0; k < c->nin; k++) {
      Arr *a = &c->in[k];
      if (a->is_int)
        fwrite(a->vi, 4, (size_t)a->n, f);
      else if (u[i].f64)
        fwrite(a->v, 8, (size_t)a->n, f);
      else
        fwrite(a->v32, 4, (size_t)a->n, f);
    }
  }
  fclose(f);
  char *cargv[] = {"gcc", "-std=c99", "-O0", "-g", "-fsanitize=address,undefined",
                   "-fno-sanitize-recover=all", "-fno-omit-frame-pointer", "-w",
                   "-pthread", "-o", bin, src, "-lm", NULL};
  if (run_cmd(cargv, errf) != 0) {
    char *e = slurp(errf, NULL);
    char *nl = e ? strstr(e, "error") : NULL;
    if (n > 1) {
      free(e);
      stage_asan(u, n / 2);
      stage_asan(u + n / 2, n - n / 2);
      return;
    }
    case_fail(u->c, "asan: the generated C failed to build with gcc: %.300s", nl ? nl : e ? e : "?");
    st.mismatches++;
    free(e);
    return;
  }
  remove(outf);
  int start = 0;
  while (start < n) {
    char sbuf[16];
    snprintf(sbuf, sizeof sbuf, "%d", start);
    char *rargv[] = {bin, data, outf, sbuf, NULL};
    setenv("ASAN_OPTIONS", "detect_leaks=0:abort_on_error=0:exitcode=99", 1);
    setenv("UBSAN_OPTIONS", "halt_on_error=1:print_stacktrace=1:exitcode=98", 1);
    int rc = run_cmd(rargv, errf);
    if (rc == 0)
      break;
    /* which case: the last AGC-CASE line */
    char *e = slurp(errf, NULL);
    int last = -1, in_step = 0;
    for (char *p = e; p && (p = strstr(p, "AGC-")); p++)
      if (!strncmp(p, "AGC-CASE ", 9) || !strncmp(p, "AGC-STEP ", 9))
        last = atoi(p + 9), in_step = p[4] == 'S';
    if (last < start || last >= n) {
      fprintf(stderr, "agc_random: ASan driver failed (rc %d) outside a case\n", rc);
      free(e);
      break;
    }
    char *rep = e ? strstr(e, "ERROR: ") : NULL;
    if (!rep && e)
      rep = strstr(e, "runtime error");
    char line[400] = "";
    if (rep) {
      size_t k = strcspn(rep, "\n");
      snprintf(line, sizeof line, "%.*s", (int)(k < 300 ? k : 300), rep);
    }
    /* the first frame in the generated code */
    char *fr = e ? strstr(e, "    #0 ") : NULL;
    char frame[200] = "";
    if (fr) {
      size_t k = strcspn(fr, "\n");
      snprintf(frame, sizeof frame, " at%.*s", (int)(k < 150 ? k : 150), fr + 6);
    }
    case_fail(u[last].c, "%s%s: sanitizer report (rc %d): %s%s", in_step ? "step-" : "",
              cfg_name[asan_cfg(u[last].f64, u[last].mcu)], rc, line, frame);
    u[last].c->sanitizer = 1;
    st.sanitizer++;
    free(e);
    start = last + 1;
  }
  /* outputs */
  size_t len = 0;
  char *o = slurp(outf, &len);
  size_t at = 0;
  while (o && at + 4 <= len) {
    int e;
    memcpy(&e, o + at, 4);
    at += 4;
    if (e < 0 || e >= n)
      break;
    Case *c = u[e].c;
    double **outs = alloc_outs(c);
    int ok = 1;
    for (int k = 0; k < c->nout; k++) {
      size_t el = u[e].f64 ? 8 : 4;
      if (at + el * (size_t)c->ref[k].n > len) {
        ok = 0;
        break;
      }
      for (int64_t j = 0; j < c->ref[k].n; j++) {
        if (el == 8)
          memcpy(&outs[k][j], o + at + 8 * (size_t)j, 8);
        else {
          float v;
          memcpy(&v, o + at + 4 * (size_t)j, 4);
          outs[k][j] = v;
        }
      }
      at += el * (size_t)c->ref[k].n;
    }
    if (ok)
      run_outs_from(c, asan_cfg(u[e].f64, u[e].mcu), outs);
    free_outs(c, outs);
    if (!ok)
      break;
    if (c->train) { /* the params after K steps, the last step's outputs */
      size_t el = u[e].f64 ? 8 : 4;
      double **p = alloc_params(c), **so = alloc_souts(c);
      for (int k = 0; k < c->nin + c->nsout && ok; k++) {
        int isp = k < c->nin;
        if (isp && !c->isparam[k])
          continue;
        int64_t m = isp ? c->in[k].n : c->ref[c->sout[k - c->nin]].n;
        double *dst = isp ? p[k] : so[k - c->nin];
        if (at + el * (size_t)m > len) {
          ok = 0;
          break;
        }
        for (int64_t j = 0; j < m; j++) {
          if (el == 8) {
            memcpy(&dst[j], o + at + 8 * (size_t)j, 8);
          } else {
            float v;
            memcpy(&v, o + at + 4 * (size_t)j, 4);
            dst[j] = v;
          }
        }
        at += el * (size_t)m;
      }
      if (ok && !c->step_skip && (u[e].f64 || !c->step_f32_inf)) {
        char name[64];
        snprintf(name, sizeof name, "step-%s", cfg_name[asan_cfg(u[e].f64, u[e].mcu)]);
        step_compare(c, name, !u[e].f64, p, so);
        st.steps_checked++;
      }
      free_params(c, p);
      free_souts(c, so);
      if (!ok)
        break;
    }
  }
  free(o);
  st.t_asan += now() - t0;
}

/* ---- a batch of cases ----------------------------------------------------- */

static void stage2(Case *cs, int n, int do_cc, int do_asan, long first_id) {
  Unit *u = calloc((size_t)n * 4 + 1, sizeof *u);
  int nu = 0, na = 0;
  for (int i = 0; i < n; i++) {
    Case *c = &cs[i];
    if (c->rejected || !c->ref)
      continue;
    for (int k = 0; k < 4; k++) { /* f32, f64 x host, mcu */
      int f64 = k & 1, mcu = k >> 1;
      Unit *x = &u[nu];
      x->c = c;
      x->f64 = f64;
      x->mcu = mcu;
      snprintf(x->name, sizeof x->name, "r%ld_%s%s", first_id + i, mcu ? "m" : "", f64 ? "d" : "s");
      char err[1024];
      x->code = emit_case_c(c, f64, mcu, x->name, err, sizeof err);
      if (!x->code) {
        /* the C of the cc and ASan stages: "emit-f32", "emit-mcu-f64" */
        case_fail(c, "emit-%s: compile failed (agc_compile, agc_emit): %s",
                  cfg_name[cc_cfg(f64, mcu)] + 3, err);
        continue;
      }
      if (strstr(x->code, "_parts(")) /* a loop on threads (parts.c) */
        st.parts_units++;
      nu++;
    }
  }
  if (do_cc) {
    stage_cc(u, nu);
    st.cc_graphs += nu / 4;
  }
  if (do_asan) {
    stage_strict(u, nu);
    /* ASan in slices of at most ~400 KB of C: one gcc run each */
    int start = 0;
    size_t bytes = 0;
    for (int i = 0; i <= nu; i++) {
      size_t sz = i < nu ? strlen(u[i].code) : 0;
      if (i == nu || (i > start && bytes + sz > 400 * 1024)) {
        stage_asan(u + start, i - start);
        start = i;
        bytes = 0;
      }
      bytes += sz;
    }
    st.asan_graphs += nu / 4;
  }
  (void)na;
  for (int i = 0; i < nu; i++)
    free(u[i].code);
  free(u);
}

/* All checks of one case alone (for files and the shrinker). */
static void check_alone(Case *c, int do_cc, int do_asan) {
  if (stage1(c) == 0)
    stage2(c, 1, do_cc, do_asan, c->id);
}

/* ---- repro files and shrinking ------------------------------------------ */

static int category(const char *msg, char *cat, size_t n) {
  size_t k = strcspn(msg, ":");
  snprintf(cat, n, "%.*s", (int)k, msg);
  return 0;
}

/* Does g still fail with the same category? */
static int still_fails(const Case *orig, const RGraph *g, const char *cat) {
  Case c;
  memset(&c, 0, sizeof c);
  rg_copy(&c.g, g);
  c.src = rg_render(&c.g, NULL);
  c.dseed = orig->dseed;
  c.id = 999999;
  snprintf(c.label, sizeof c.label, "%s", orig->label);
  int need_cc = strncmp(cat, "cc", 2) == 0 || strncmp(cat, "step-cc", 7) == 0;
  int need_asan = strstr(cat, "asan") != NULL;
  __typeof__(st) saved = st; /* the shrinker's runs do not count */
  check_alone(&c, need_cc, need_asan);
  double tc = st.t_cc, ta = st.t_asan;
  st = saved;
  st.t_cc = tc, st.t_asan = ta;
  int hit = 0;
  for (int i = 0; i < c.nfail; i++) {
    char cc2[64];
    category(c.fail[i], cc2, sizeof cc2);
    if (!strcmp(cc2, cat))
      hit = 1;
  }
  case_free(&c);
  return hit;
}

static int refers(const char *text, const char *name) {
  size_t n = strlen(name);
  for (const char *p = text; (p = strstr(p, name)); p += n) {
    int before = p == text || !(p[-1] == '_' || (p[-1] >= 'a' && p[-1] <= 'z') ||
                                (p[-1] >= 'A' && p[-1] <= 'Z') || (p[-1] >= '0' && p[-1] <= '9'));
    char a = p[n];
    int after = !(a == '_' || (a >= 'a' && a <= 'z') || (a >= 'A' && a <= 'Z') || (a >= '0' && a <= '9'));
    if (before && after)
      return 1;
  }
  return 0;
}

/* Drops statements no output or root needs, and unused declarations. */
static void prune(RGraph *g) {
  for (int changed = 1; changed;) {
    changed = 0;
    for (int i = 0; i < g->n; i++) {
      RLine *l = &g->l[i];
      if (l->dead || l->kind > RL_ASSIGN)
        continue;
      int used = 0;
      for (int j = 0; j < g->n && !used; j++)
        if (j != i && !g->l[j].dead && g->l[j].text && refers(g->l[j].text, l->name))
          used = 1;
      if (!used) {
        l->dead = 1;
        changed = 1;
      }
    }
  }
}

static void shrink(const Case *c, RGraph *g, const char *cat) {
  int budget = strstr(cat, "asan") || strncmp(cat, "cc", 2) == 0 || strncmp(cat, "step-cc", 7) == 0
                   ? 25 : 150;
  /* 1. drop extra outputs */
  for (int i = 0; i < g->n && budget > 0; i++) {
    RLine *l = &g->l[i];
    if (l->kind != RL_OUTPUT || l->dead)
      continue;
    for (;;) {
      char *comma = strrchr(l->text, ',');
      if (!comma || budget-- <= 0)
        break;
      RGraph t;
      rg_copy(&t, g);
      char *tc = strrchr(t.l[i].text, ',');
      char removed[64];
      snprintf(removed, sizeof removed, "%s", tc + 2);
      int isroot = 0;
      for (int r = 0; r < g->nroots; r++)
        isroot |= !strcmp(g->roots[r], removed);
      *tc = 0;
      prune(&t);
      if (!isroot && still_fails(c, &t, cat)) {
        rg_free(g);
        *g = t;
        l = &g->l[i];
      } else {
        rg_free(&t);
        break;
      }
    }
  }
  /* 1b. a second backward root */
  for (int i = 0; i < g->n && budget > 0 && g->nroots > 1; i++) {
    RLine *l = &g->l[i];
    if (l->kind != RL_BACKWARD || l->dead || !strchr(l->text, ','))
      continue;
    budget--;
    RGraph t;
    rg_copy(&t, g);
    *strchr(t.l[i].text, ',') = 0;
    t.nroots = 1;
    prune(&t);
    if (still_fails(c, &t, cat)) {
      rg_free(g);
      *g = t;
    } else {
      rg_free(&t);
    }
  }
  /* 2. statements into params of their shape (from the last) */
  for (int i = g->n - 1; i >= 0 && budget > 0; i--) {
    RLine *l = &g->l[i];
    if (l->dead || l->kind != RL_ASSIGN || l->rank < 0 || !strcmp(l->name, "loss"))
      continue;
    budget--;
    RGraph t;
    rg_copy(&t, g);
    RLine *tl = &t.l[i];
    free(tl->text);
    tl->text = NULL;
    /* a param of a training graph is updated: an input keeps the value */
    int train = 0;
    for (int k = 0; k < t.n; k++)
      train |= !t.l[k].dead && t.l[k].kind == RL_OPTIM;
    tl->kind = train ? RL_INPUT : RL_PARAM;
    tl->lo = fmax(-1, fmin(tl->lo, 1)), tl->hi = fmin(1, fmax(tl->hi, -1));
    if (tl->hi - tl->lo < 1e-3)
      tl->lo = -1, tl->hi = 1;
    tl->quant = 0;
    prune(&t);
    if (still_fails(c, &t, cat)) {
      rg_free(g);
      *g = t;
    } else {
      rg_free(&t);
    }
  }
  /* 3. terms of the loss */
  for (int i = 0; i < g->n && budget > 0; i++) {
    RLine *l = &g->l[i];
    if (l->dead || l->kind != RL_ASSIGN || strcmp(l->name, "loss"))
      continue;
    for (;;) {
      char *plus = strstr(l->text, " + ");
      if (!plus || budget-- <= 0)
        break;
      /* drop the last top-level " + term" */
      char *last = NULL;
      int depth = 0;
      for (char *p = l->text; *p; p++) {
        depth += *p == '(' || *p == '[';
        depth -= *p == ')' || *p == ']';
        if (!depth && !strncmp(p, " + ", 3))
          last = p;
      }
      if (!last)
        break;
      RGraph t;
      rg_copy(&t, g);
      t.l[i].text[last - l->text] = 0;
      prune(&t);
      if (still_fails(c, &t, cat)) {
        rg_free(g);
        *g = t;
        l = &g->l[i];
      } else {
        rg_free(&t);
        break;
      }
    }
  }
}

/* A failure's signature: the configurations that failed and how
 * ("tcc-f32 mismatch, O0-f32 mismatch"), for the summary of distinct
 * failures and to shrink only the first few of each. */
static void signature(const Case *c, char *sig, size_t n) {
  char parts[8][96];
  int np = 0;
  for (int i = 0; i < c->nfail; i++) {
    char cat[64], p[96];
    category(c->fail[i], cat, sizeof cat);
    const char *m = c->fail[i];
    const char *kind = strstr(m, "wrote outside") ? "overrun"
                       : strstr(m, "crashed") ? "crash"
                       : strstr(m, "heap-buffer-overflow") ? "heap-buffer-overflow"
                       : strstr(m, "stack-buffer-overflow") ? "stack-buffer-overflow"
                       : strstr(m, "runtime error") ? "ubsan"
                       : strstr(m, "sanitizer") ? "sanitizer"
                       : strstr(m, "after the update") ? "output after update"
                       : strstr(m, "internal error") ? "internal error"
                       : strstr(m, "max err") ? "mismatch"
                       : strstr(m, "failed to compile") ? "C does not compile"
                       : strstr(m, "central difference") ? "wrong gradient" : "error";
    if (!strcmp(cat, "reject")) { /* the compiler's message, without places */
      const char *e = strstr(m, "error: ");
      snprintf(p, sizeof p, "reject: %.60s", e ? e + 7 : m);
      for (char *q = p; *q; q++)
        if ((*q >= '0' && *q <= '9') || *q == '\'')
          *q = '#';
    } else {
      snprintf(p, sizeof p, "%s %s", cat, kind);
    }
    int dup = 0;
    for (int k = 0; k < np; k++)
      dup |= !strcmp(parts[k], p);
    if (!dup && np < 8)
      snprintf(parts[np++], sizeof parts[0], "%s", p);
  }
  size_t k = 0;
  sig[0] = 0;
  for (int i = 0; i < np && k < n; i++)
    k += (size_t)snprintf(sig + k, n - k, "%s%s", i ? ", " : "", parts[i]);
}

static struct {
  char sig[400];
  long count;
  char first[3][64];
  char path[1100];
} sigs[256];
static int nsigs;

static int note_sig(const Case *c, const char *sig) {
  for (int i = 0; i < nsigs; i++)
    if (!strcmp(sigs[i].sig, sig)) {
      if (sigs[i].count < 3)
        snprintf(sigs[i].first[sigs[i].count], 64, "%s", c->label);
      return (int)++sigs[i].count;
    }
  if (nsigs == 256)
    return 1000;
  snprintf(sigs[nsigs].sig, sizeof sigs[0].sig, "%s", sig);
  snprintf(sigs[nsigs].first[0], 64, "%s", c->label);
  sigs[nsigs].count = 1;
  nsigs++;
  return 1;
}

static void write_repro(Case *c) {
  mkdir(opt.repro, 0755);
  char cat[64], sig[400];
  category(c->fail[0], cat, sizeof cat);
  signature(c, sig, sizeof sig);
  int nth = note_sig(c, sig);
  RGraph g;
  rg_copy(&g, &c->g);
  int shrunk = 0;
  if (opt.shrink && nth <= opt.shrink_max && !c->rejected && c->g.n && c->g.l[0].rank >= 0) {
    int before = 0, after = 0;
    for (int i = 0; i < g.n; i++)
      before += !g.l[i].dead;
    shrink(c, &g, cat);
    for (int i = 0; i < g.n; i++)
      after += !g.l[i].dead;
    shrunk = after < before;
  }
  char path[1024];
  snprintf(path, sizeof path, "%s/%s-%s.graph", opt.repro, cat, c->label);
  for (char *p = path + strlen(opt.repro) + 1; *p; p++)
    if (*p == ' ' || *p == '/')
      *p = '_';
  Buf h = {0};
  char *l = xfmt("agc_random: %s\nfrom %s, data-seed %llu%s\n", c->fail[0], c->label,
                 (unsigned long long)c->dseed, shrunk ? " (shrunk)" : "");
  bputs(&h, l);
  free(l);
  for (int i = 1; i < c->nfail; i++) {
    l = xfmt("also %s\n", c->fail[i]);
    bputs(&h, l);
    free(l);
  }
  l = xfmt("data-seed %llu\n", (unsigned long long)c->dseed);
  bputs(&h, l);
  free(l);
  char *text = rg_render(&g, h.s);
  free(h.s);
  FILE *f = fopen(path, "w");
  if (f) {
    fputs(text, f);
    fclose(f);
  }
  free(text);
  rg_free(&g);
  for (int i = 0; i < nsigs; i++)
    if (!strcmp(sigs[i].sig, sig) && !sigs[i].path[0])
      snprintf(sigs[i].path, sizeof sigs[i].path, "%s", path);
  fprintf(stderr, "FAIL %s: %s\n  repro: %s\n", c->label, c->fail[0], path);
  for (int i = 1; i < c->nfail; i++)
    fprintf(stderr, "  also: %s\n", c->fail[i]);
}

/* ---- the campaign ---------------------------------------------------------- */

static void progress(long done, double t0, int final) {
  if (!isatty(2) || opt.verbose < 0)
    return;
  double dt = now() - t0;
  fprintf(stderr, "\r%ld/%ld graphs  %.0f/min  mismatches %ld  sanitizer %ld%s", done, opt.n,
          dt > 0 ? done * 60 / dt : 0, st.mismatches, st.sanitizer, final ? "\n" : "   ");
}

/* --xfail FILE: labels of graphs that fail because of known compiler bugs
 * (one per line, then a comment). They are still checked and reported,
 * but do not fail the run; one of them passing is reported too. */
static char **xfail;
static int nxfail;

static void read_xfail(const char *path) {
  char *t = slurp(path, NULL);
  if (!t) {
    fprintf(stderr, "agc_random: cannot read %s\n", path);
    exit(2);
  }
  for (char *line = strtok(t, "\n"); line; line = strtok(NULL, "\n")) {
    char lab[64];
    if (line[0] == '#' || sscanf(line, "%63s", lab) != 1)
      continue;
    xfail = realloc(xfail, (size_t)(nxfail + 1) * sizeof *xfail);
    xfail[nxfail++] = strdup(lab);
  }
  free(t);
}

static int is_xfail(const char *label) {
  for (int i = 0; i < nxfail; i++)
    if (!strcmp(xfail[i], label))
      return 1;
  return 0;
}

static void finish_case(Case *c) {
  st.graphs++;
  int xf = is_xfail(c->label);
  if (xf && !c->nfail) {
    st.xpass++;
    fprintf(stderr, "XPASS %s: listed as failing by a known bug, now passes "
            "(remove it from the --xfail list)\n", c->label);
  }
  if (xf && c->nfail) {
    st.xfailed++;
    fprintf(stderr, "XFAIL %s (known bug): %s\n", c->label, c->fail[0]);
    return;
  }
  if (c->nfail) {
    st.failed_graphs++;
    if (c->rejected)
      st.rejected++;
    if (isatty(2))
      fprintf(stderr, "\n");
    write_repro(c);
  }
}

/* --compile-only: generate and compile (f64 -O0, then -O1) N graphs, no
 * checks: does the generator write only programs the compiler takes? */
static int run_compile_only(void) {
  long bad = 0, train = 0;
  for (long id = opt.first; id < opt.n; id++) {
    RGraph g;
    uint64_t gs = opt.seed * 1000003ULL + (uint64_t)id;
    rg_generate(&g, gs, &opt.gen);
    char *src = rg_render(&g, NULL);
    if (opt.verbose > 1) /* --print: every program */
      printf("# s%llu-g%ld\n%s", (unsigned long long)opt.seed, id, src);
    for (int i = 0; i < g.n; i++)
      train += g.l[i].kind == RL_OPTIM && !strncmp(g.l[i].text, "optimizer", 9);
    for (int O0 = 1; O0 >= 0; O0--) {
      Options o = {0};
      o.api.f64 = 1;
      o.api.O0 = O0;
      o.api.name = "rg";
      char label[64];
      snprintf(label, sizeof label, "s%llu-g%ld", (unsigned long long)opt.seed, id);
      Ctx *ctx = agc_compile(label, src, strlen(src), &o);
      if (agc_failed(ctx)) {
        printf("%s (%s): %.300s\n", label, O0 ? "-O0" : "-O1", errpart(agc_messages(ctx)));
        if (opt.verbose > 0) /* -v: the program */
          printf("%s\n", src);
        bad++;
        agc_free(ctx);
        break;
      }
      agc_free(ctx);
    }
    free(src);
    rg_free(&g);
  }
  printf("agc_random: seed %llu, %ld graphs (%ld with an optimizer) compiled, %ld rejected\n",
         (unsigned long long)opt.seed, opt.n, train, bad);
  return bad ? 1 : 0;
}

static int run_campaign(void) {
  double t0 = now();
  long done = 0;
  int B = opt.batch;
  Case *cs = calloc((size_t)B, sizeof *cs);
  while (done < opt.n) {
    if (opt.time_limit > 0 && now() - t0 > opt.time_limit)
      break;
    int n = (int)(opt.n - done < B ? opt.n - done : B);
    double t1 = now();
    for (int i = 0; i < n; i++) {
      Case *c = &cs[i];
      memset(c, 0, sizeof *c);
      c->id = done + i;
      uint64_t gs = opt.seed * 1000003ULL + (uint64_t)c->id;
      rg_generate(&c->g, gs, &opt.gen);
      c->dseed = gs ^ 0xda7a;
      c->src = rg_render(&c->g, NULL);
      snprintf(c->label, sizeof c->label, "s%llu-g%ld", (unsigned long long)opt.seed, c->id);
      if (opt.verbose > 1)
        fprintf(stderr, "--- %s\n%s", c->label, c->src);
      stage1(c);
    }
    st.t_inproc += now() - t1;
    /* cc and ASan on every k-th batch's graphs (all by default) */
    long bno = done / B;
    stage2(cs, n, opt.cc && bno % opt.cc_every == 0, opt.asan && bno % opt.asan_every == 0, done);
    for (int i = 0; i < n; i++) {
      finish_case(&cs[i]);
      case_free(&cs[i]);
    }
    done += n;
    progress(done, t0, 0);
  }
  progress(done, t0, 1);
  free(cs);
  double dt = now() - t0;
  printf("agc_random: seed %llu, %ld graphs in %.1f s (%.0f graphs/min; in-process %.0f/min, "
         "cc %ld graphs %.0f/min, asan %ld graphs %.0f/min)\n",
         (unsigned long long)opt.seed, st.graphs, dt, st.graphs * 60 / (dt > 0 ? dt : 1),
         st.graphs * 60 / (st.t_inproc > 0 ? st.t_inproc : 1), st.cc_graphs,
         st.cc_graphs * 60 / (st.t_cc > 0 ? st.t_cc : 1), st.asan_graphs,
         st.asan_graphs * 60 / (st.t_asan > 0 ? st.t_asan : 1));
  printf("agc_random: mismatches %ld, sanitizer reports %ld, rejected %ld, fd failures %ld; "
         "skipped: %ld non-finite graphs, %ld outputs unstable at rounding level, "
         "%ld graphs without FD, %ld of %ld FD elements (kinks)\n", st.mismatches,
         st.sanitizer, st.rejected, st.fd_fail, st.skip_nonfinite, st.skip_unstable,
         st.skip_fd_graph, st.fd_skipped, st.fd_skipped + st.fd_checked);
  printf("agc_random: %ld training graphs, %ld step runs checked, %ld without step checks "
         "(trajectory non-finite or beyond 1e6, or unstable gradients), %ld without f32 "
         "step outputs (Adam from a gradient within f32 tolerance of 0), %ld without f32 "
         "steps (the f32 reference's are not finite: f32 overflows)\n", st.train_graphs,
         st.steps_checked, st.skip_step, st.step_noise, st.step_f32_inf);
  printf("agc_random: %ld graphs rebuilt with the plain copy of the JIT's kernels "
         "(AGC_KERNELS=generic, f64 and f32); %ld graphs rebuilt for 3 threads (f64 and f32) and "
         "compared bit for bit with one thread, %ld of them with f32 row-kernel loops in "
         "parts, and %ld host C units on 3 threads with loops cut into parts; %ld step-function outputs whose f32 "
         "reference differs from f64 (an f32 tie); f32 outputs let go: %ld where the "
         "f32 reference jumps under one-ulp input moves, %ld within the reach of f64 "
         "with its comparisons moved by 1e-5, %ld within 4 times the reach of f64 with "
         "f32-sized roundings, %ld that are 0 as a function, off 0 by rounding, %ld "
         "where f32 flushed to 0 a value under 1e-2 (1 + G); f64 outputs let go: %ld "
         "within the reach of f64 with its comparisons moved by 1e-12; outputs of "
         "either precision let go: %ld on the reference built without FMA (a tie a "
         "contraction decides)\n",
         st.kernel_graphs, st.threads_graphs, st.row_parts, st.parts_units, st.f32_ties, st.f32_jumps, st.f32_margins,
         st.f32_rounding, st.zero_noise, st.f32_flush, st.f64_margins, st.contraction);
  for (int i = 0; i < nsigs; i++)
    printf("agc_random: failure %d: %ld graph%s: %s (%s%s%s%s%s; first repro %s)\n", i + 1,
           sigs[i].count, sigs[i].count == 1 ? "" : "s", sigs[i].sig, sigs[i].first[0],
           sigs[i].count > 1 ? ", " : "", sigs[i].first[1], sigs[i].count > 2 ? ", " : "",
           sigs[i].first[2], sigs[i].path);
  if (nxfail)
    printf("agc_random: %ld expected failures (known bugs, --xfail), %ld of the listed "
           "graphs pass now\n", st.xfailed, st.xpass);
  printf("%ld passed, %ld failed\n", st.graphs - st.failed_graphs - st.xfailed,
         st.failed_graphs);
  return st.failed_graphs ? 1 : 0;
}

/* Every .graph file in a directory, all checks, one at a time. */
static int run_dir(const char *dir) {
  DIR *d = opendir(dir);
  if (!d) {
    fprintf(stderr, "agc_random: cannot open %s: %s\n", dir, strerror(errno));
    return 2;
  }
  char *names[1024];
  int n = 0;
  struct dirent *e;
  while ((e = readdir(d)) && n < 1024) {
    size_t k = strlen(e->d_name);
    if (k > 6 && !strcmp(e->d_name + k - 6, ".graph"))
      names[n++] = strdup(e->d_name);
  }
  closedir(d);
  for (int i = 0; i < n; i++)
    for (int j = i + 1; j < n; j++)
      if (strcmp(names[i], names[j]) > 0) {
        char *t = names[i];
        names[i] = names[j];
        names[j] = t;
      }
  int saved_shrink = opt.shrink;
  opt.shrink = 0;
  for (int i = 0; i < n; i++) {
    char path[2048];
    snprintf(path, sizeof path, "%s/%s", dir, names[i]);
    Case c;
    memset(&c, 0, sizeof c);
    c.src = slurp(path, NULL);
    c.id = i;
    snprintf(c.label, sizeof c.label, "%.60s", names[i]);
    c.label[strlen(c.label) > 6 ? strlen(c.label) - 6 : 0] = 0;
    c.dseed = 1;
    const char *ds = c.src ? strstr(c.src, "data-seed ") : NULL;
    if (ds)
      c.dseed = strtoull(ds + 10, NULL, 10);
    if (!c.src || rg_parse(&c.g, c.src) != 0) {
      fprintf(stderr, "agc_random: %s: cannot read\n", path);
      st.graphs++;
      st.failed_graphs++;
      case_free(&c);
      continue;
    }
    check_alone(&c, opt.cc, opt.asan);
    st.graphs++;
    if (c.nfail) {
      st.failed_graphs++;
      printf("FAIL %s\n", path);
      for (int k = 0; k < c.nfail; k++)
        printf("  %s\n", c.fail[k]);
    } else {
      printf("ok   %s\n", path);
    }
    case_free(&c);
    free(names[i]);
  }
  opt.shrink = saved_shrink;
  printf("%ld passed, %ld failed\n", st.graphs - st.failed_graphs, st.failed_graphs);
  return st.failed_graphs ? 1 : 0;
}

static void cleanup(void) {
  static const char *const files[] = {"asan.c", "asan", "asan.in", "asan.out", "asan.err"};
  char path[1200];
  for (size_t k = 0; k < sizeof files / sizeof files[0]; k++) {
    snprintf(path, sizeof path, "%s/%s", opt.tmp, files[k]);
    remove(path);
  }
  rmdir(opt.tmp);
}

static void on_term(int sig) {
  cleanup();
  signal(sig, SIG_DFL);
  raise(sig);
}

static void usage(FILE *f) {
  fprintf(f,
          "usage: agc_random [--n N] [--seed S] [--repro DIR] [--no-asan] [--no-cc]\n"
          "                  [--max-dim D] [--max-stmts K] [--batch B] [--asan-every K]\n"
          "                  [--cc-every K] [--time-limit SEC] [--no-shrink] [--no-fd]\n"
          "                  [--print] [--check-dir DIR] [--xfail FILE] [--shrink-max K]\n"
          "                  [--train-frac F] [--compile-only]\n"
          "Generates N random graphs from seed S and checks each: tcc/cc/-O0, host\n"
          "and mcu targets, f32 and f64 against an f64 -O0 reference, gradients\n"
          "against finite differences, K training steps (graphs with an optimizer,\n"
          "--train-frac, default 0.15) against PyTorch's formulas, the generated C\n"
          "under ASan/UBSan with exact-size buffers. --compile-only: only compile.\n"
          "--check-dir runs every .graph file of DIR through all checks instead.\n"
          "Failures go to DIR (default ./random-failures) as .graph repro files.\n"
          "Exit status 1 if any graph failed.\n");
}

int main(int argc, char **argv) {
  for (int i = 1; i < argc; i++) {
    const char *a = argv[i];
    const char *v = i + 1 < argc ? argv[i + 1] : NULL;
#define ARG(s) (!strcmp(a, s) && v && (i++, 1))
    if (ARG("--n"))
      opt.n = atol(v);
    else if (ARG("--seed"))
      opt.seed = strtoull(v, NULL, 10);
    else if (ARG("--repro"))
      opt.repro = v;
    else if (ARG("--max-dim"))
      opt.gen.max_dim = atoi(v);
    else if (ARG("--max-stmts"))
      opt.gen.max_stmts = atoi(v);
    else if (ARG("--first")) /* --compile-only: start at graph G */
      opt.first = atol(v);
    else if (ARG("--train-frac"))
      opt.gen.train_frac = atof(v);
    else if (ARG("--shrink-max"))
      opt.shrink_max = atoi(v);
    else if (ARG("--batch"))
      opt.batch = atoi(v);
    else if (ARG("--asan-every"))
      opt.asan_every = atoi(v);
    else if (ARG("--cc-every"))
      opt.cc_every = atoi(v);
    else if (ARG("--time-limit"))
      opt.time_limit = atof(v);
    else if (ARG("--check-dir"))
      opt.check_dir = v;
    else if (ARG("--xfail"))
      read_xfail(v);
    else if (!strcmp(a, "--no-asan"))
      opt.asan = 0;
    else if (!strcmp(a, "--no-cc"))
      opt.cc = 0;
    else if (!strcmp(a, "--no-shrink"))
      opt.shrink = 0;
    else if (!strcmp(a, "--compile-only"))
      opt.compile_only = 1;
    else if (!strcmp(a, "--no-fd"))
      opt.fd = 0;
    else if (!strcmp(a, "--print"))
      opt.verbose = 2;
    else if (!strcmp(a, "-v"))
      opt.verbose = 1;
    else if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
      usage(stdout);
      return 0;
    } else {
      usage(stderr);
      return 2;
    }
#undef ARG
  }
  if (opt.n < 0 || opt.batch < 1 || opt.gen.max_dim < 1 || opt.gen.max_stmts < 2 ||
      opt.asan_every < 1 || opt.cc_every < 1) {
    usage(stderr);
    return 2;
  }
  opt.gen.max_elems = (int64_t)opt.gen.max_dim * opt.gen.max_dim;
  if (opt.gen.max_elems < 4096)
    opt.gen.max_elems = 4096;
  char tmpl[] = "/tmp/agc_random.XXXXXX";
  const char *td = getenv("TMPDIR");
  char tbuf[1024];
  snprintf(tbuf, sizeof tbuf, "%s/agc_random.XXXXXX", td && *td ? td : "/tmp");
  signal(SIGSEGV, on_crash);
  signal(SIGBUS, on_crash);
  signal(SIGFPE, on_crash);
  signal(SIGILL, on_crash);
  opt.tmp = mkdtemp(tbuf);
  if (!opt.tmp)
    opt.tmp = mkdtemp(tmpl);
  if (!opt.tmp) {
    perror("agc_random: mkdtemp");
    return 2;
  }
  signal(SIGTERM, on_term);
  signal(SIGINT, on_term);
  int rc = opt.check_dir ? run_dir(opt.check_dir)
           : opt.compile_only ? run_compile_only() : run_campaign();
  cleanup();
  return rc;
}
