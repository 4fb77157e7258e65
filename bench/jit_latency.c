/* jit_latency.c — how long agc takes from graph text to a callable function.
 *
 * Usage: jit_latency N [tcc|cc]
 *
 * Generates a graph of N element-wise statements chained on a small tensor
 * (x, w: [16]; each statement is one op: tanh, *w, +x, sin in turn), with
 * loss = sum(last) and `backward loss`, then measures, in this process:
 *
 *   front_ms  agc_compile + agc_emit(C): parse, autodiff, plan, emit C text
 *   load_ms   agc_graph_load_source(): the whole path, graph text -> callable
 *             function (front end again + TinyCC or cc -O3 + symbol lookup)
 *   call_us   the first call of the loaded function
 *
 * and prints one line of key=value pairs. Links against the tool API
 * (runtime/agc_api.h) and the compiler library (compiler/agc.h).
 */
#define _POSIX_C_SOURCE 200809L
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "agc.h"
#include "agc_api.h"

static double now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec * 1e3 + 1e-6 * (double)ts.tv_nsec;
}

static char *chain_graph(long n, size_t *len) {
  StrBuf b = {0};
  sb_printf(&b, "graph chain%ld\ninput x[16]\nparam w[16]\na0 = x * w\n", n);
  for (long i = 1; i <= n; i++) {
    switch (i % 4) {
    case 0: sb_printf(&b, "a%ld = tanh(a%ld)\n", i, i - 1); break;
    case 1: sb_printf(&b, "a%ld = a%ld * w\n", i, i - 1); break;
    case 2: sb_printf(&b, "a%ld = a%ld + x\n", i, i - 1); break;
    default: sb_printf(&b, "a%ld = sin(a%ld)\n", i, i - 1); break;
    }
  }
  sb_printf(&b, "loss = sum(a%ld)\noutput loss\nbackward loss\n", n);
  *len = b.len;
  return b.s;
}

int main(int argc, char **argv) {
  if (argc < 2) {
    fprintf(stderr, "usage: jit_latency N [tcc|cc]\n");
    return 2;
  }
  long n = atol(argv[1]);
  agc_graph_options opt = {0};
  const char *bk = argc > 2 ? argv[2] : "tcc";
  opt.backend = strcmp(bk, "cc") == 0 ? AGC_BACKEND_CC : AGC_BACKEND_TCC;
  size_t len;
  char *src = chain_graph(n, &len);

  /* front end alone */
  double t0 = now_ms();
  Options o = {0};
  Ctx *c = agc_compile("chain.graph", src, len, &o);
  StrBuf code = {0};
  if (agc_failed(c) || agc_emit(c, EMIT_C, opt.backend == AGC_BACKEND_TCC ? TARGET_JIT : TARGET_HOST, &code)) {
    fprintf(stderr, "jit_latency: %s\n", agc_messages(c));
    return 1;
  }
  double front = now_ms() - t0;
  int nodes = c->g.n;
  size_t csize = code.len;
  sb_free(&code);
  agc_free(c);

  /* text -> callable */
  char err[4096];
  t0 = now_ms();
  agc_graph *g = agc_graph_load_source("chain.graph", src, len, &opt, err, sizeof err);
  double load = now_ms() - t0;
  if (!g) {
    fprintf(stderr, "jit_latency: %s\n", err);
    return 1;
  }
  float x[16], w[16], loss = 0, gw[16];
  for (int i = 0; i < 16; i++) {
    x[i] = 0.1f * (float)(i - 8);
    w[i] = 0.9f + 0.01f * (float)i;
  }
  void *work = calloc(1, agc_graph_work_bytes(g) + 16);
  const void *in[2] = {x, w};
  void *out[2] = {&loss, gw};
  t0 = now_ms();
  int rc = agc_graph_call(g, in, out, work);
  double call = (now_ms() - t0) * 1e3;
  int ok = rc == 0 && isfinite(loss);
  for (int i = 0; i < 16; i++)
    ok = ok && isfinite(gw[i]);
  printf("chain=%ld src_bytes=%zu ir_nodes=%d c_bytes=%zu front_ms=%.2f "
         "load_ms=%.2f call_us=%.1f backend=%s ok=%d\n",
         n, len, nodes, csize, front, load, call, bk, ok);
  agc_graph_free(g);
  free(work);
  free(src);
  return ok ? 0 : 1;
}
