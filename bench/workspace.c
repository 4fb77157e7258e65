/* workspace.c — agc's workspace size against the size of all intermediates.
 *
 * Usage: workspace GRAPH...
 *
 * For each graph prints one line:
 *   work=BYTES naive=BYTES all=BYTES nodes=N GRAPH
 * work  : agc's workspace after buffer reuse (= NAME_WORK_BYTES)
 * naive : agc_work_bytes()'s second result: the tensors agc materialises,
 *         without reuse (each 64-byte aligned)
 * all   : every live intermediate tensor of the differentiated graph, fused
 *         into a consumer's loop or not (leaves, reshapes/ids and nodes
 *         written straight into an output buffer excluded): what an
 *         op-by-op framework would allocate over one step
 * Links against the compiler library (compiler/agc.h).
 */
#include <stdio.h>
#include <stdlib.h>

#include "agc.h"

static char *slurp(const char *path, size_t *len) {
  FILE *f = fopen(path, "rb");
  if (!f)
    return NULL;
  size_t cap = 1 << 16, n = 0;
  char *s = malloc(cap);
  size_t k;
  while (s && (k = fread(s + n, 1, cap - n, f)) > 0) {
    n += k;
    if (n == cap)
      s = realloc(s, cap *= 2);
  }
  fclose(f);
  *len = n;
  return s;
}

/* Bytes of every live intermediate, or -1 after a compiler error. */
static int64_t all_bytes(Ctx *c) {
  volatile int64_t all = 0;
  Plan p;
  if (setjmp(c->jmp))
    return -1;
  plan_graph(c, &p);
  for (int i = 0; i < c->g.n; i++) {
    const Node *x = &c->g.nodes[i];
    if (!p.live[i] || x->op == OP_INPUT || x->op == OP_PARAM ||
        x->op == OP_CONST || x->op == OP_ID || x->op == OP_DETACH ||
        x->op == OP_RESHAPE || p.store[i] >= 0)
      continue;
    all += x->numel * (x->dt == DT_I32 ? 4 : (c->opt.api.f64 ? 8 : 4));
  }
  return all;
}

int main(int argc, char **argv) {
  int rc = 0;
  for (int a = 1; a < argc; a++) {
    size_t len;
    char *src = slurp(argv[a], &len);
    if (!src) {
      fprintf(stderr, "workspace: cannot read %s\n", argv[a]);
      rc = 1;
      continue;
    }
    Options o = {0};
    Ctx *c = agc_compile(argv[a], src, len, &o);
    int64_t naive = -1, work = agc_failed(c) ? -1 : agc_work_bytes(c, &naive);
    if (work < 0) {
      printf("error %s\n", argv[a]);
      agc_free(c);
      free(src);
      continue;
    }
    int64_t all = all_bytes(c);
    printf("work=%lld naive=%lld all=%lld nodes=%d %s\n", (long long)work,
           (long long)naive, (long long)all, c->g.n, argv[a]);
    agc_free(c);
    free(src);
  }
  return rc;
}
