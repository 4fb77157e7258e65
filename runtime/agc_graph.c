/* agc_graph.c — the tool API: compile a graph, JIT it, call it. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "agc.h"
#include "agc_api.h"

typedef int (*entry_fn)(const void *const *, void *const *, void *);
typedef int (*step_fn)(void *const *, void *const *, void *, void *);

struct agc_graph {
  agc_module *mod;
  entry_fn fn;
  int nin, nout;
  const char *const *names[2];
  const int *dtypes[2];
  const int *ranks[2];
  const int64_t (*dims[2])[8];
  int *is_grad;
  int64_t *bound;     /* per input: valid index values 0..bound-1, or 0 */
  const char **bound_fn; /* per input: the function that indexes with it */
  size_t work;
  char *warnings;
  step_fn step;       /* a graph with an optimizer: its training step */
  size_t state_bytes, step_work;
  int *is_param;
};

static void put(char *err, size_t n, const char *s) {
  if (n) {
    snprintf(err, n, "%s", s);
    size_t k = strlen(err);
    while (k > 0 && err[k - 1] == '\n') /* no trailing newline */
      err[--k] = 0;
  }
}

/* The i32 inputs that index (one-hot classes, embedding rows), through
 * views to the input: the fewest classes or table rows each meets
 * (abound, by argument) and the function that reads it (afn). */
static void index_bounds(const Ctx *c, int64_t *abound, const char **afn) {
  int nargs = c->g.nargs;
  for (int id = 0; id < c->g.n; id++) {
    const Node *n = &c->g.nodes[id];
    int ix;
    int64_t count;
    if (n->op == OP_ONEHOT)
      ix = n->in[0], count = (int64_t)n->val;
    else if (n->op == OP_EMBED)
      ix = n->in[1], count = c->g.nodes[n->in[0]].shape.d[0];
    else if (n->op == OP_EMBED_DT)
      ix = n->in[1], count = n->shape.d[0];
    else
      continue;
    for (;;) { /* through views of the indices to the input */
      Op op = c->g.nodes[ix].op;
      if (op != OP_ID && op != OP_RESHAPE && op != OP_SLICE &&
          op != OP_TRANSPOSE && op != OP_BCAST && op != OP_DETACH)
        break;
      ix = c->g.nodes[ix].in[0];
    }
    const Node *leaf = &c->g.nodes[ix];
    if (leaf->op != OP_INPUT || leaf->ext < 0 || leaf->ext >= nargs)
      continue;
    if (!abound[leaf->ext] || count < abound[leaf->ext]) {
      abound[leaf->ext] = count;
      afn[leaf->ext] = n->op == OP_ONEHOT ? "cross_entropy" : "embedding";
    }
  }
}

/* The generated module's entry points and tables (name: the function's
 * name; stepname: a training graph's generic step): 0 if one is missing. */
static int find_symbols(agc_graph *g, const char *name, const char *stepname,
                        int training) {
  char sym[300];
  snprintf(sym, sizeof sym, "%s_generic", name);
  g->fn = (entry_fn)(uintptr_t)agc_module_symbol(g->mod, sym);
  static const char *const kinds[2] = {"input", "output"};
  int ok = g->fn != NULL;
  if (training) {
    g->step = (step_fn)(uintptr_t)agc_module_symbol(g->mod, stepname);
    ok = ok && g->step;
  }
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
  return ok;
}

agc_graph *agc_graph_load_source(const char *path, const char *src,
                                 size_t len, const agc_graph_options *opt,
                                 char *err, size_t errlen) {
  agc_graph_options dflt = {0};
  if (!opt)
    opt = &dflt;
  Options o = {*opt, NULL, MODE_GRAD, target_of(opt)};
  int target = o.target;
  Ctx *c = agc_compile(path, src, len, &o);
  StrBuf code = {0};
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
  g->is_param = calloc((size_t)c->g.nargs + 1, sizeof(int));
  for (int i = 0; i < c->g.nargs; i++)
    g->is_param[i] = c->g.args[i].is_param;
  int training = c->optim.kind && !c->opt.api.no_grad;
  g->state_bytes = (size_t)c->state_bytes;
  g->step_work = (size_t)c->step_work;
  /* i32 inputs that index: the fewest classes / table rows they meet */
  int nargs = c->g.nargs;
  int64_t *abound = calloc((size_t)nargs + 1, sizeof *abound);
  const char **afn = calloc((size_t)nargs + 1, sizeof *afn);
  char **aname = calloc((size_t)nargs + 1, sizeof *aname);
  for (int i = 0; i < nargs; i++)
    aname[i] = strdup(c->g.args[i].name);
  index_bounds(c, abound, afn);
  char name[256], stepname[256];
  snprintf(name, sizeof name, "%s%s", c->name, training ? "_grad" : "");
  snprintf(stepname, sizeof stepname, "%s_generic", c->name);
  agc_free(c);
  char merr[1024];
  g->mod = agc_module_compile(code.s, opt->backend, merr, sizeof merr);
  sb_free(&code);
  if (!g->mod) {
    for (int a = 0; a < nargs; a++)
      free(aname[a]);
    free(aname);
    free(abound);
    free(afn);
    char msg[1200];
    /* the environment's AGC_KERNELS, not the code, can be what failed */
    snprintf(msg, sizeof msg, "%s: %s%s", path,
             strncmp(merr, "AGC_KERNELS=", 12) ? "generated C failed to compile: " : "",
             merr);
    put(err, errlen, msg);
    agc_graph_free(g);
    return NULL;
  }
  int ok = find_symbols(g, name, stepname, training);
  if (!ok) {
    for (int a = 0; a < nargs; a++)
      free(aname[a]);
    free(aname);
    free(abound);
    free(afn);
    put(err, errlen, "internal: generated module lacks its symbols");
    agc_graph_free(g);
    return NULL;
  }
  while (g->names[0][g->nin])
    g->nin++;
  while (g->names[1][g->nout])
    g->nout++;
  g->bound = calloc((size_t)g->nin + 1, sizeof *g->bound);
  g->bound_fn = calloc((size_t)g->nin + 1, sizeof *g->bound_fn);
  for (int i = 0; i < g->nin; i++)
    for (int a = 0; a < nargs; a++)
      if (strcmp(g->names[0][i], aname[a]) == 0) {
        g->bound[i] = abound[a];
        g->bound_fn[i] = afn[a];
      }
  for (int a = 0; a < nargs; a++)
    free(aname[a]);
  free(aname);
  free(abound);
  free(afn);
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

int64_t agc_graph_index_bound(const agc_graph *g, int i) {
  return g->bound[i];
}

int agc_graph_index_error(const agc_graph *g, const void *const *in,
                          char *err, size_t errlen) {
  for (int i = 0; i < g->nin; i++) {
    if (!g->bound[i] || !in[i])
      continue;
    const int32_t *v = in[i];
    int64_t n = agc_graph_count(g, 0, i), b = g->bound[i];
    for (int64_t k = 0; k < n; k++) {
      if (v[k] >= 0 && v[k] < b)
        continue;
      /* the element's index, per dimension */
      char at[200] = "";
      size_t len = 0;
      int rank = g->ranks[0][i];
      int64_t rest = k, idx[8] = {0};
      for (int d = rank - 1; d >= 0; d--) {
        idx[d] = rest % g->dims[0][i][d];
        rest /= g->dims[0][i][d];
      }
      for (int d = 0; d < rank && len < sizeof at - 24; d++)
        len += (size_t)snprintf(at + len, sizeof at - len, "%s%lld",
                                d ? ", " : "", (long long)idx[d]);
      const char *nm = g->names[0][i];
      int embed = strcmp(g->bound_fn[i], "embedding") == 0;
      char msg[512];
      snprintf(msg, sizeof msg, "input '%s': %s[%s] = %ld is out of range: "
               "%s %lld %s, so %s must be in 0..%lld", nm, nm, at, (long)v[k],
               embed ? "the embedding table has" : "cross_entropy has",
               (long long)b, embed ? "rows" : "classes", nm,
               (long long)(b - 1));
      put(err, errlen, msg);
      return 1;
    }
  }
  put(err, errlen, "an integer index input is out of range (a label or "
      "index >= its number of classes, or < 0)");
  return 0;
}

int agc_graph_has_step(const agc_graph *g) { return g->step != NULL; }
int agc_graph_is_param(const agc_graph *g, int i) { return g->is_param[i]; }
size_t agc_graph_state_bytes(const agc_graph *g) { return g->state_bytes; }
size_t agc_graph_step_work_bytes(const agc_graph *g) { return g->step_work; }

int agc_graph_step(const agc_graph *g, void *const *in, void *const *out,
                   void *state, void *work) {
  if (!g->step)
    return -1;
  return g->step(in, out, state, work);
}

void agc_graph_free(agc_graph *g) {
  if (!g)
    return;
  free(g->is_param);
  if (g->mod)
    agc_module_free(g->mod);
  free(g->is_grad);
  free(g->bound);
  free(g->bound_fn);
  free(g->warnings);
  free(g);
}
