/* common.h — small helpers shared by test_errors.c and test_rules.c.
 *
 * A deterministic random generator, and a "runner": a graph compiled and
 * JIT-loaded through the tool API (runtime/agc_api.h) together with one
 * malloc'd buffer per input and output and the workspace, all freed by
 * run_free(). Everything is static: each test program includes this once.
 */
#ifndef AGC_TEST_COMMON_H
#define AGC_TEST_COMMON_H

#include <check.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "agc.h"
#include "agc_api.h"

/* ---- random numbers (splitmix64: the same sequence everywhere) ---------- */

typedef struct {
  uint64_t s;
} Rng;

static inline uint64_t rng_next(Rng *r) {
  uint64_t z = (r->s += 0x9E3779B97F4A7C15ull);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}
/* uniform in [0, 1) */
static inline double rng_unit(Rng *r) {
  return (double)(rng_next(r) >> 11) * (1.0 / 9007199254740992.0);
}
/* uniform in [lo, hi) */
static inline double rng_range(Rng *r, double lo, double hi) {
  return lo + (hi - lo) * rng_unit(r);
}
/* uniform in [0, n) */
static inline unsigned rng_below(Rng *r, unsigned n) {
  return (unsigned)(rng_next(r) % n);
}

/* ---- a loaded graph with its buffers ------------------------------------ */

typedef struct {
  agc_graph *g;
  int nin, nout;
  void **in;    /* nin buffers, zeroed, of the input's dtype and count */
  void **out;   /* nout buffers */
  void *work;
} Run;

static inline size_t run_elem_size(agc_dtype t) {
  return t == AGC_F32 ? 4 : t == AGC_F64 ? 8 : 4;
}

/* Compiles src (named t.graph in messages) and allocates every buffer.
 * Fails the test, with the compiler's message, if the graph is rejected. */
static inline Run run_load_opt(const char *src, const agc_graph_options *opt) {
  char err[4096];
  Run r = {0};
  r.g = agc_graph_load_source("t.graph", src, strlen(src), opt, err,
                              sizeof err);
  /* (Check limits a message to a few KiB: keep both parts short.) */
  ck_assert_msg(r.g != NULL, "graph rejected:\n%.1200s\n--- source:\n%.1500s",
                err, src);
  r.nin = agc_graph_num_inputs(r.g);
  r.nout = agc_graph_num_outputs(r.g);
  r.in = calloc((size_t)r.nin + 1, sizeof *r.in);
  r.out = calloc((size_t)r.nout + 1, sizeof *r.out);
  for (int i = 0; i < r.nin; i++)
    r.in[i] = calloc((size_t)agc_graph_count(r.g, 0, i) + 1,
                     run_elem_size(agc_graph_dtype(r.g, 0, i)));
  for (int i = 0; i < r.nout; i++)
    r.out[i] = calloc((size_t)agc_graph_count(r.g, 1, i) + 1,
                      run_elem_size(agc_graph_dtype(r.g, 1, i)));
  r.work = calloc(agc_graph_work_bytes(r.g) + 16, 1);
  return r;
}

/* f64, tcc backend, overwrite gradients */
static inline Run run_load(const char *src) {
  agc_graph_options opt = {0};
  opt.f64 = 1;
  opt.backend = AGC_BACKEND_TCC;
  return run_load_opt(src, &opt);
}

static inline void run_free(Run *r) {
  for (int i = 0; i < r->nin; i++)
    free(r->in[i]);
  for (int i = 0; i < r->nout; i++)
    free(r->out[i]);
  free(r->in);
  free(r->out);
  free(r->work);
  agc_graph_free(r->g);
  memset(r, 0, sizeof *r);
}

static inline void run_call(Run *r) {
  int rc = agc_graph_call(r->g, (const void *const *)r->in,
                          (void *const *)r->out, r->work);
  ck_assert_int_eq(rc, 0);
}

/* Index of the input (out = 0) or output (out = 1) named name; fails the
 * test if there is none. */
static inline int run_find(const Run *r, int out, const char *name) {
  int n = out ? r->nout : r->nin;
  for (int i = 0; i < n; i++)
    if (strcmp(agc_graph_name(r->g, out, i), name) == 0)
      return i;
  ck_abort_msg("no %s named '%s'", out ? "output" : "input", name);
  return -1;
}

static inline double *run_in(const Run *r, const char *name) {
  return (double *)r->in[run_find(r, 0, name)];
}
static inline double *run_out(const Run *r, const char *name) {
  return (double *)r->out[run_find(r, 1, name)];
}
static inline int64_t run_count(const Run *r, int out, const char *name) {
  return agc_graph_count(r->g, out, run_find(r, out, name));
}
/* copies n doubles into input name (whose count must be n) */
static inline void run_set(Run *r, const char *name, const double *v,
                           int64_t n) {
  ck_assert_int_eq(run_count(r, 0, name), n);
  memcpy(run_in(r, name), v, sizeof(double) * (size_t)n);
}

#endif
