/* run_graph.c — calls any .graph through the tool API (runtime/agc_api.h).
 *
 *   run_graph FILE.graph
 *
 * Compiles the graph with TinyCC in-process, fills every input with the
 * values 0.1, 0.2, ... (integer inputs with 0), calls it once and prints
 * every output. Nothing here knows the graph: names, shapes and dtypes come
 * from the tables of the generated code.
 */
#include <stdio.h>
#include <stdlib.h>

#include "agc_api.h"

int main(int argc, char **argv) {
  if (argc != 2) {
    fprintf(stderr, "usage: run_graph FILE.graph\n");
    return 2;
  }
  char err[4096];
  agc_graph *g = agc_graph_load(argv[1], NULL, err, sizeof err);
  if (!g) {
    fprintf(stderr, "%s\n", err);
    return 1;
  }
  int nin = agc_graph_num_inputs(g), nout = agc_graph_num_outputs(g);
  const void **in = calloc((size_t)nin + 1, sizeof *in);
  void **out = calloc((size_t)nout + 1, sizeof *out);
  for (int i = 0; i < nin; i++) {
    int64_t n = agc_graph_count(g, 0, i);
    void *p = calloc((size_t)n, 4);
    if (agc_graph_dtype(g, 0, i) == AGC_F32)
      for (int64_t k = 0; k < n; k++)
        ((float *)p)[k] = 0.1f * (float)(k % 10 + 1);
    in[i] = p;
  }
  for (int i = 0; i < nout; i++)
    out[i] = calloc((size_t)agc_graph_count(g, 1, i), 4);
  void *work = malloc(agc_graph_work_bytes(g) + 1);
  int rc = agc_graph_call(g, in, out, work);
  for (int i = 0; i < nout && rc == 0; i++) {
    int64_t n = agc_graph_count(g, 1, i);
    printf("%s =", agc_graph_name(g, 1, i));
    for (int64_t k = 0; k < n && k < 8; k++)
      printf(" %.6g", ((float *)out[i])[k]);
    printf("%s\n", n > 8 ? " ..." : "");
  }
  for (int i = 0; i < nin; i++)
    free((void *)in[i]);
  for (int i = 0; i < nout; i++)
    free(out[i]);
  free(in);
  free(out);
  free(work);
  agc_graph_free(g);
  return rc;
}
