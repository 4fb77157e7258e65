/* agc_graph.c — the tool API: compile a graph, JIT it, call it. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "agc.h"
#include "agc_api.h"

typedef int (*entry_fn)(const void *const *, void *const *, void *);

struct agc_graph {
  agc_module *mod;
  entry_fn fn;
  int nin, nout;
  const char *const *names[2];
  const int *dtypes[2];
  const int *ranks[2];
  const int64_t (*dims[2])[8];
  int *is_grad;
  size_t work;
  char *warnings;
};

static void put(char *err, size_t n, const char *s) {
  if (n) {
    snprintf(err, n, "%s", s);
    size_t k = strlen(err);
    while (k > 0 && err[k - 1] == '\n') /* no trailing newline */
      err[--k] = 0;
  }
}

agc_graph *agc_graph_load_source(const char *path, const char *src,
                                 size_t len, const agc_graph_options *opt,
                                 char *err, size_t errlen) {
  agc_graph_options dflt = {0};
  if (!opt)
    opt = &dflt;
  Options o = {opt->f64, opt->accumulate, opt->no_grad, opt->name,
               opt->expose_roots, opt->O0, NULL};
  Ctx *c = agc_compile(path, src, len, &o);
  StrBuf code = {0};
  int target = opt->backend == AGC_BACKEND_TCC ? TARGET_JIT : TARGET_HOST;
  if (agc_failed(c) || agc_emit(c, EMIT_C, target, &code) != 0) {
    put(err, errlen, agc_messages(c));
    agc_free(c);
    sb_free(&code);
    return NULL;
  }
  agc_graph *g = calloc(1, sizeof *g);
  if (!g)
    abort();
  g->work = (size_t)agc_work_bytes(c, NULL);
  g->warnings = strdup(agc_messages(c));
  g->is_grad = calloc((size_t)c->g.nouts + 1, sizeof(int));
  for (int i = 0; i < c->g.nouts; i++)
    g->is_grad[i] = c->g.outs[i].is_grad;
  char name[256];
  snprintf(name, sizeof name, "%s", c->name);
  agc_free(c);
  char merr[1024];
  g->mod = agc_module_compile(code.s, opt->backend, merr, sizeof merr);
  sb_free(&code);
  if (!g->mod) {
    char msg[1200];
    snprintf(msg, sizeof msg, "%s: generated C failed to compile: %s", path,
             merr);
    put(err, errlen, msg);
    agc_graph_free(g);
    return NULL;
  }
  char sym[300];
  snprintf(sym, sizeof sym, "%s_generic", name);
  g->fn = (entry_fn)(uintptr_t)agc_module_symbol(g->mod, sym);
  static const char *const kinds[2] = {"input", "output"};
  int ok = g->fn != NULL;
  for (int k = 0; k < 2 && ok; k++) {
    snprintf(sym, sizeof sym, "%s_%s_names", name, kinds[k]);
    g->names[k] = agc_module_symbol(g->mod, sym);
    snprintf(sym, sizeof sym, "%s_%s_dtypes", name, kinds[k]);
    g->dtypes[k] = agc_module_symbol(g->mod, sym);
    snprintf(sym, sizeof sym, "%s_%s_ranks", name, kinds[k]);
    g->ranks[k] = agc_module_symbol(g->mod, sym);
    snprintf(sym, sizeof sym, "%s_%s_dims", name, kinds[k]);
    g->dims[k] = agc_module_symbol(g->mod, sym);
    ok = g->names[k] && g->dtypes[k] && g->ranks[k] && g->dims[k];
  }
  if (!ok) {
    put(err, errlen, "internal: generated module lacks its symbols");
    agc_graph_free(g);
    return NULL;
  }
  while (g->names[0][g->nin])
    g->nin++;
  while (g->names[1][g->nout])
    g->nout++;
  return g;
}

agc_graph *agc_graph_load(const char *path, const agc_graph_options *opt,
                          char *err, size_t errlen) {
  StrBuf b = {0};
  char msg[4200];
  if (read_text_file(path, &b, msg, sizeof msg) != 0) {
    sb_free(&b);
    put(err, errlen, msg);
    return NULL;
  }
  agc_graph *g = agc_graph_load_source(path, b.s ? b.s : "", b.len, opt, err,
                                       errlen);
  sb_free(&b);
  return g;
}

const char *agc_graph_warnings(const agc_graph *g) { return g->warnings; }
int agc_graph_num_inputs(const agc_graph *g) { return g->nin; }
int agc_graph_num_outputs(const agc_graph *g) { return g->nout; }
const char *agc_graph_name(const agc_graph *g, int out, int i) {
  return g->names[out != 0][i];
}
agc_dtype agc_graph_dtype(const agc_graph *g, int out, int i) {
  return (agc_dtype)g->dtypes[out != 0][i];
}
int agc_graph_rank(const agc_graph *g, int out, int i) {
  return g->ranks[out != 0][i];
}
const int64_t *agc_graph_dims(const agc_graph *g, int out, int i) {
  return g->dims[out != 0][i];
}
int64_t agc_graph_count(const agc_graph *g, int out, int i) {
  int64_t n = 1;
  for (int d = 0; d < agc_graph_rank(g, out, i); d++)
    n *= agc_graph_dims(g, out, i)[d];
  return n;
}
int agc_graph_is_grad(const agc_graph *g, int i) { return g->is_grad[i]; }
size_t agc_graph_work_bytes(const agc_graph *g) { return g->work; }

int agc_graph_call(const agc_graph *g, const void *const *in,
                   void *const *out, void *work) {
  return g->fn(in, out, work);
}

void agc_graph_free(agc_graph *g) {
  if (!g)
    return;
  if (g->mod)
    agc_module_free(g->mod);
  free(g->is_grad);
  free(g->warnings);
  free(g);
}
