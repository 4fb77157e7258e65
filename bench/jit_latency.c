/* jit_latency.c — how long agc takes from graph text to a callable function.
 *
 * Usage: jit_latency N [tcc|cc] [graph]
 *
 * (with `graph`, only prints the graph's text: the bench runs it through
 * `agc run` too)
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
 * and where the memory goes, in MiB of resident set (Linux: the peak is
 * reset before each stage through /proc/self/clear_refs and read from
 * VmHWM, after glibc's malloc_trim gave freed memory back; a stage's
 * figure is its peak less the resident set before it, -1 where the peak
 * cannot be reset):
 *
 *   mem_compile  agc_compile: parse, autodiff, the passes (the IR)
 *   mem_ir       what of it stays resident after (the graph)
 *   mem_emit     agc_emit: the plan, the loop-nest IR and the C text
 *   mem_cc       compiling that C text (agc_module_compile: TinyCC, or
 *                the cc back end's process-side part)
 *   mem_peak     the process's peak from that stage on, through the load
 *                (which runs the front end and the back end again)
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
#include "agc_rt.h"
#ifdef __GLIBC__
#include <malloc.h> /* malloc_trim */
#endif

/* the resident set (VmRSS) or its peak (VmHWM), MiB; -1 if unknown */
static double rss_mb(const char *key) {
  FILE *f = fopen("/proc/self/status", "r");
  char line[256];
  double v = -1;
  size_t kl = strlen(key);
  while (f && fgets(line, sizeof line, f))
    if (strncmp(line, key, kl) == 0 && line[kl] == ':')
      v = atof(line + kl + 1) / 1024.0;
  if (f)
    fclose(f);
  return v;
}

/* resets VmHWM to the current resident set: 1 if it could. With glibc,
 * memory freed by the last stage is given back first, so that the next
 * stage's use of it shows in its figure. */
static int reset_peak(void) {
#ifdef __GLIBC__
  malloc_trim(0);
#endif
  FILE *f = fopen("/proc/self/clear_refs", "w");
  if (!f)
    return 0;
  int ok = fputs("5", f) >= 0;
  return fclose(f) == 0 && ok;
}

/* a stage's peak less the resident set before it */
static double stage_mb(int ok, double before) {
  double hwm = rss_mb("VmHWM");
  return ok && hwm >= 0 && before >= 0 ? hwm - before : -1;
}

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
    fprintf(stderr, "usage: jit_latency N [tcc|cc] [graph]\n");
    return 2;
  }
  long n = atol(argv[1]);
  agc_graph_options opt = {0};
  const char *bk = argc > 2 ? argv[2] : "tcc";
  opt.backend = strcmp(bk, "cc") == 0 ? AGC_BACKEND_CC : AGC_BACKEND_TCC;
  size_t len;
  char *src = chain_graph(n, &len);
  if (argc > 3 && strcmp(argv[3], "graph") == 0) {
    fwrite(src, 1, len, stdout);
    free(src);
    return 0;
  }

  /* front end alone */
  int ok_peak = reset_peak();
  double before = rss_mb("VmRSS");
  double t0 = now_ms();
  Options o = {0};
  Ctx *c = agc_compile("chain.graph", src, len, &o);
  double t_compile = now_ms() - t0;
  double mem_compile = stage_mb(ok_peak, before);
  double mem_ir = rss_mb("VmRSS") - before;
  StrBuf code = {0};
  ok_peak = reset_peak();
  before = rss_mb("VmRSS");
  double t1 = now_ms();
  if (agc_failed(c) || agc_emit(c, EMIT_C, opt.backend == AGC_BACKEND_TCC ? TARGET_JIT : TARGET_HOST, &code)) {
    fprintf(stderr, "jit_latency: %s\n", agc_messages(c));
    return 1;
  }
  double front = now_ms() - t0;
  double mem_emit = stage_mb(ok_peak, before);
  int nodes = c->g.n;
  size_t csize = code.len;
  agc_free(c);

  /* the C text alone through the back end */
  char err[4096];
  ok_peak = reset_peak();
  before = rss_mb("VmRSS");
  t1 = now_ms();
  agc_module *m = agc_module_compile(code.s, opt.backend, err, sizeof err);
  double t_cc = now_ms() - t1;
  double mem_cc = stage_mb(ok_peak, before);
  if (!m) {
    fprintf(stderr, "jit_latency: %s\n", err);
    return 1;
  }
  agc_module_free(m);
  sb_free(&code);

  /* text -> callable */
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
         "compile_ms=%.2f cc_ms=%.2f load_ms=%.2f call_us=%.1f "
         "mem_compile=%.1f mem_ir=%.1f mem_emit=%.1f mem_cc=%.1f "
         "mem_peak=%.1f backend=%s ok=%d\n",
         n, len, nodes, csize, front, t_compile, t_cc, load, call,
         mem_compile, mem_ir, mem_emit, mem_cc, rss_mb("VmHWM"), bk, ok);
  agc_graph_free(g);
  free(work);
  free(src);
  return ok ? 0 : 1;
}
