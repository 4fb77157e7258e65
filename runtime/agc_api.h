/* agc_api.h — compile a .graph file and call it, from any C program.
 *
 *   agc_graph *g = agc_graph_load("model.graph", NULL, err, sizeof err);
 *   void *work = malloc(agc_graph_work_bytes(g));
 *   agc_graph_call(g, inputs, outputs, work);   // pointers in table order
 *   agc_graph_free(g);
 *
 * Inputs are every `input`/`param` in declaration order, then the seeds
 * (`grad_y`) of non-scalar backward roots; outputs are every `output`, then
 * `grad_P` for every param. The names, shapes and dtypes are read from the
 * generated code's own tables, so a tool needs no knowledge of the graph.
 */
#ifndef AGC_API_H
#define AGC_API_H

#include <stddef.h>
#include <stdint.h>

#include "agc_rt.h"

typedef struct {
  int f64;              /* element type f64 instead of f32 */
  int accumulate;       /* gradients add into the output buffers */
  int no_grad;          /* forward only */
  agc_backend backend;  /* AGC_BACKEND_TCC (default) or AGC_BACKEND_CC */
  const char *name;     /* function name, or NULL */
  int expose_roots;     /* also output each backward root (agc check) */
  int O0;               /* no optimizer passes, no loop fusion */
  int mcu;              /* compile the --target mcu C (plain loops, no
                           double in f32) instead of the host's */
  int threads;          /* large matrix products and element-wise loops
                           on up to this many threads (0 or 1: one; not
                           with mcu); the
                           environment's AGC_NUM_THREADS may lower it at
                           run time; results are the same for any count */
  int64_t threads_min_macs; /* a product runs threaded from this many
                           multiply-adds (0: 2^25, about 1 ms on a core) */
  uint64_t perturb_seed; /* testing, f64 only (0: off): every computed
                           value that f32 would round is multiplied by
                           1 + u or 1 - u (u: 2^-24; 8 times that for
                           tanh, 3 times for exp, sigmoid and softplus,
                           whose f32 kernels are off by more), drawn
                           per element from
                           its value and this seed (its lowest bit: 1,
                           values one f64 ulp apart draw apart; 0, values
                           1e-12 apart move alike): runs with a few seeds
                           show how far f32's rounding of intermediates can
                           move the outputs */
  int64_t threads_min_elems; /* an element-wise loop runs threaded from
                           this many elements (0: 2^20) */
} agc_graph_options;
#define AGC_MAX_THREADS 64 /* the most agc_graph_options.threads may ask */

typedef struct agc_graph agc_graph;

/* Compiles and loads a graph. On an error returns NULL and puts the
 * diagnostics (FILE:LINE:COL: error: ... with the source line) in err. */
agc_graph *agc_graph_load(const char *path, const agc_graph_options *opt,
                          char *err, size_t errlen);
/* The same from source text; path names it in messages. */
agc_graph *agc_graph_load_source(const char *path, const char *src,
                                 size_t len, const agc_graph_options *opt,
                                 char *err, size_t errlen);
/* Warnings the compiler printed (may be ""). */
const char *agc_graph_warnings(const agc_graph *g);

int agc_graph_num_inputs(const agc_graph *g);
int agc_graph_num_outputs(const agc_graph *g);
/* i-th input (out = 0) or output (out = 1): name, dtype, rank, dims */
const char *agc_graph_name(const agc_graph *g, int out, int i);
agc_dtype agc_graph_dtype(const agc_graph *g, int out, int i);
int agc_graph_rank(const agc_graph *g, int out, int i);
const int64_t *agc_graph_dims(const agc_graph *g, int out, int i);
int64_t agc_graph_count(const agc_graph *g, int out, int i);
/* 1 if output i is a gradient produced by backward */
int agc_graph_is_grad(const agc_graph *g, int i);
size_t agc_graph_work_bytes(const agc_graph *g);
/* Runs the function: 0, or 1 if an integer index input was out of range. */
int agc_graph_call(const agc_graph *g, const void *const *in,
                   void *const *out, void *work);
/* For an i32 input that holds class labels (cross_entropy) or embedding
 * rows: its values must lie in 0..bound-1; returns bound, else 0. */
int64_t agc_graph_index_bound(const agc_graph *g, int i);
/* After agc_graph_call returned 1: a one-line message naming the input,
 * the first element out of range and the allowed range, e.g.
 *   input 'labels': labels[3] = 7 is out of range: cross_entropy has 5
 *   classes, so labels must be in 0..4
 * Returns 1 if it found that element, else 0 (with a generic message). */
int agc_graph_index_error(const agc_graph *g, const void *const *in,
                          char *err, size_t errlen);
/* A graph with `optimizer` also has a training step (agc_graph_step): 1
 * if so. Input i is a param (updated in place by the step): 1 if so. */
int agc_graph_has_step(const agc_graph *g);
int agc_graph_is_param(const agc_graph *g, int i);
/* Bytes of the optimizer state (zeroed = a fresh optimizer) and of the
 * step's workspace; both aligned for double by the caller. */
size_t agc_graph_state_bytes(const agc_graph *g);
size_t agc_graph_step_work_bytes(const agc_graph *g);
/* One training step: in as for agc_graph_call, but the params' buffers are
 * updated in place; out: the graph's `output` values (not the gradients),
 * in table order. Returns as agc_graph_call, or -1 if the graph has no
 * optimizer. */
int agc_graph_step(const agc_graph *g, void *const *in, void *const *out,
                   void *state, void *work);
void agc_graph_free(agc_graph *g);

#endif
