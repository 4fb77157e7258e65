/* main.c — the agc command: its options, compile, and the dispatch to run
 * and check (cli_run.c); outputs are written by cli_files.c. The command
 * is the only part of agc that exits. */
#include <errno.h>
#ifdef __GLIBC__
#include <malloc.h>
#endif
#include <signal.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"

static const char usage[] =
"usage:\n"
"  agc GRAPH -o OUT.c [--header OUT.h] [options]   write the C function\n"
"  agc GRAPH --emit c|h|ir|plan|loops|mem|dot [-o FILE] [options]\n"
"                                   one artifact (default: stdout)\n"
"  agc run GRAPH [--inputs DIR] [NAME=FILE.npy ...] [--out DIR]\n"
"              [--backend tcc|cc] [--target host|mcu] [--threads N]\n"
"              [--dtype f32|f64] [--accumulate] [--repeat N] [--steps N]\n"
"  agc check GRAPH [--inputs DIR] [NAME=FILE.npy ...] [--dtype f64] [--tol T]\n"
"  agc --help | --version\n"
"\n"
"compile options:\n"
"  -o FILE           output file (written atomically; '-' is standard output)\n"
"  --header FILE     also write the header (macros, prototypes, tables)\n"
"  --emit KIND       c (default), h, ir (the IR after differentiation),\n"
"                    plan (each stored value's buffer, offset, size and\n"
"                    lifetime), loops (the loop-nest IR: each statement, its\n"
"                    accumulators and the last byte it reaches in every\n"
"                    buffer), mem (bytes of params, optimizer state,\n"
"                    workspace with its lower bound, estimated stack) or dot\n"
"                    (forward and backward graph for Graphviz)\n"
"  --dtype f32|f64   element type of every float tensor (default f32)\n"
"  --accumulate      gradients add into the caller's buffers (PyTorch .grad)\n"
"  --no-grad         forward only: ignore backward (torch.no_grad())\n"
"  --name NAME       name of the generated function (default: 'graph NAME',\n"
"                    else the file name)\n"
"  -O1               optimize (default): the pass pipeline, loop fusion\n"
"  -O0               no passes, no fusion: the graph as parsed, every value\n"
"                    stored (the reference path)\n"
"  --target host|mcu host (default): the fastest C for this machine; mcu:\n"
"                    plain C99 for microcontrollers (no double in f32, no\n"
"                    packing or transposed copies, only <math.h> float\n"
"                    functions, memset and memcpy; see docs/firmware.md)\n"
"  --target jit      with --emit: what agc run and libagc compile with\n"
"                    TinyCC (the C calls libagc's kernels)\n"
"  --threads N       large matrix products and element-wise loops on up to\n"
"                    N threads (1 to 64, default 1; run: every core),\n"
"                    bit-identical results; AGC_NUM_THREADS lowers it at\n"
"                    run time; host only\n"
"  --after PASS      with --emit ir/dot: the IR after PASS, one of parse,\n"
"                    strip, fold, simplify, cse, dce (the pipeline, in order)\n"
"\n"
"run: JIT-compile the graph, evaluate it once, write the results\n"
"  --inputs DIR      read each input/param/seed NAME from DIR/NAME.npy\n"
"  NAME=FILE.npy     read input NAME from FILE.npy (wins over --inputs)\n"
"  --out DIR         write OUT/NAME.npy for every output and gradient\n"
"                    (default: the current directory; created if missing)\n"
"  --backend tcc|cc  tcc: libtcc in-process (default); cc: the system C\n"
"                    compiler ($CC, default cc; -O3 -march=native, lower -O\n"
"                    for very large graphs) and dlopen\n"
"  --repeat N        call N times; print 'median_us=FLOAT calls=N' on stderr\n"
"  --accumulate      gradients start from OUT/grad_P.npy when present\n"
"  --steps N         a graph with 'optimizer': N training steps from the\n"
"                    params given and a zeroed optimizer state; writes\n"
"                    OUT/P.npy for every param and the outputs of the last step\n"
"  --target host|mcu compile the host (default) or microcontroller C\n"
"\n"
"check: compare every gradient with central finite differences in f64\n"
"  --tol T           largest accepted relative error (default 1e-4)\n"
"  Inputs not given are filled with fixed pseudo-random values in [-1, 1].\n"
"\n"
"exit status: 0 success, 1 error in the graph or data, 2 bad command line\n";

int die2(const char *fmt, const char *arg) {
  fprintf(stderr, "agc: ");
  fprintf(stderr, fmt, arg);
  fprintf(stderr, " (agc --help shows the usage)\n");
  return 2;
}

static const char *const all_options[] = {
    "-o", "--header", "--emit", "--name", "--dtype", "--accumulate",
    "--no-grad", "-O0", "-O1", "--after", "--inputs", "--out", "--backend",
    "--repeat", "--tol", "--help", "--version", "--target", "--steps"};

/* An unknown option, with the nearest known one if it is a likely typo. */
static int unknown_option(const char *a) {
  const char *near = nearest_name(a, all_options,
                                  (int)(sizeof all_options / sizeof *all_options));
  if (!near) {
    const char *eq = strchr(a, '='); /* --dtype=f64 */
    for (size_t i = 0; eq && i < sizeof all_options / sizeof *all_options; i++)
      if (strlen(all_options[i]) == (size_t)(eq - a) &&
          strncmp(all_options[i], a, (size_t)(eq - a)) == 0) {
        fprintf(stderr, "agc: unknown option '%s'; write '%s %s' (agc --help "
                "shows the usage)\n", a, all_options[i], eq + 1);
        return 2;
      }
    return die2("unknown option '%s'", a);
  }
  fprintf(stderr, "agc: unknown option '%s'; did you mean '%s'? (agc --help "
          "shows the usage)\n", a, near);
  return 2;
}

/* Does this message line start with FILE:LINE:COL: ? */
static int located(const char *line, size_t len) {
  for (size_t i = 0; i + 1 < len; i++) {
    if (line[i] != ':' || line[i + 1] < '0' || line[i + 1] > '9')
      continue;
    size_t j = i + 1;
    while (j < len && line[j] >= '0' && line[j] <= '9')
      j++;
    if (j + 1 < len && line[j] == ':' && line[j + 1] >= '0' &&
        line[j + 1] <= '9')
      return 1;
  }
  return 0;
}

/* Prints compiler diagnostics: lines with a place (FILE:LINE:COL: ...) and
 * the source and caret lines under them as they are; a message without a
 * place (a bad --name, an unreadable file) gets "agc: " in front. */
void print_diagnostics(const char *text) {
  while (*text) {
    size_t n = strcspn(text, "\n");
    int indented = text[0] == ' ' || text[0] == '\t';
    fprintf(stderr, "%s%.*s\n", indented || located(text, n) ? "" : "agc: ",
            (int)n, text);
    text += n + (text[n] == '\n');
  }
}


static int parse_cli(int argc, char **argv, int start, Cli *o, int mode) {
  for (int i = start; i < argc; i++) {
    const char *a = argv[i];
#define NEXT()                                                                 \
  (i + 1 < argc ? argv[++i] : (die2("option '%s' needs a value", a), NULL))
    if (strcmp(a, "-o") == 0) {
      if (!(o->out = NEXT())) return 2;
    } else if (strcmp(a, "--header") == 0 && mode == 0) {
      if (!(o->header = NEXT())) return 2;
    } else if (strcmp(a, "--emit") == 0 && mode == 0) {
      if (!(o->emit = NEXT())) return 2;
    } else if (strcmp(a, "--name") == 0) {
      if (!(o->opt.api.name = NEXT())) return 2;
    } else if (strcmp(a, "--dtype") == 0) {
      const char *v = NEXT();
      if (!v) return 2;
      if (strcmp(v, "f32") == 0) o->opt.api.f64 = 0;
      else if (strcmp(v, "f64") == 0) o->opt.api.f64 = 1;
      else return die2("--dtype takes f32 or f64, not '%s'", v);
    } else if (strcmp(a, "--accumulate") == 0 && mode != 2) {
      o->opt.api.accumulate = 1;
    } else if (strcmp(a, "--no-grad") == 0 && mode == 0) {
      o->opt.api.no_grad = 1;
    } else if (strcmp(a, "-O0") == 0) {
      o->opt.api.O0 = 1;
    } else if (strcmp(a, "-O1") == 0) {
      o->opt.api.O0 = 0;
    } else if (strcmp(a, "--after") == 0 && mode == 0) {
      if (!(o->opt.after = NEXT())) return 2;
    } else if (strcmp(a, "--inputs") == 0 && mode) {
      if (!(o->inputs = NEXT())) return 2;
    } else if (strcmp(a, "--out") == 0 && mode == 1) {
      if (!(o->outdir = NEXT())) return 2;
    } else if (strcmp(a, "--backend") == 0 && mode == 1) {
      if (!(o->backend = NEXT())) return 2;
      if (strcmp(o->backend, "tcc") && strcmp(o->backend, "cc"))
        return die2("--backend takes tcc or cc, not '%s'", o->backend);
      o->opt.api.backend = strcmp(o->backend, "cc") == 0 ? AGC_BACKEND_CC
                                                         : AGC_BACKEND_TCC;
    } else if (strcmp(a, "--repeat") == 0 && mode == 1) {
      const char *v = NEXT();
      if (!v) return 2;
      char *end;
      long r = strtol(v, &end, 10);
      if (*end || r < 1 || r > MAX_REPEAT)
        return die2("--repeat takes a count from 1 to 1000000 (MAX_REPEAT), "
                    "not '%s'", v);
      o->repeat = (int)r;
    } else if (strcmp(a, "--threads") == 0 && mode != 2) {
      const char *v = NEXT();
      if (!v) return 2;
      char *end;
      long r = strtol(v, &end, 10);
      if (*end || !*v || r < 1 || r > AGC_MAX_THREADS)
        return die2("--threads takes a count from 1 to 64, not '%s'", v);
      o->opt.api.threads = (int)r;
    } else if (strcmp(a, "--target") == 0 && mode != 2) {
      const char *v = NEXT();
      if (!v) return 2;
      if (strcmp(v, "host") == 0) o->opt.target = TARGET_HOST;
      else if (strcmp(v, "mcu") == 0) o->opt.target = TARGET_MCU;
      else if (strcmp(v, "jit") == 0 && mode == 0) o->opt.target = TARGET_JIT;
      else if (mode == 0)
        return die2("--target takes host, mcu or jit (with --emit), not '%s'", v);
      else return die2("--target takes host or mcu, not '%s'", v);
    } else if (strcmp(a, "--steps") == 0 && mode == 1) {
      const char *v = NEXT();
      if (!v) return 2;
      char *end;
      long r = strtol(v, &end, 10);
      if (*end || r < 1 || r > MAX_REPEAT)
        return die2("--steps takes a count from 1 to 1000000, not '%s'", v);
      o->steps = (int)r;
    } else if (strcmp(a, "--tol") == 0 && mode == 2) {
      const char *v = NEXT();
      if (!v) return 2;
      char *end;
      o->tol = strtod(v, &end);
      if (*end || !(o->tol > 0) || !isfinite(o->tol))
        return die2("--tol takes a positive number, not '%s'", v);
    } else if (a[0] == '-' && a[1]) {
      return unknown_option(a);
    } else if (mode && strchr(a, '=')) {
      size_t k = (size_t)(strchr(a, '=') - a);
      for (int j = 0; j < o->npairs; j++)
        if (strncmp(o->pairs[j], a, k + 1) == 0)
          return die2("input given twice: '%s' (each NAME=FILE once)", a);
      o->pairs[o->npairs++] = a;
    } else if (!o->graph) {
      o->graph = a;
    } else {
      return die2("unexpected argument '%s'", a);
    }
#undef NEXT
  }
  if (!o->graph)
    return die2("%s", "no GRAPH file given");
  if (o->opt.api.threads > 1 && o->opt.target == TARGET_MCU)
    return die2("%s", "--threads needs the host target: the mcu C runs on "
                "one core");
  if (mode == 1 && !o->opt.api.threads && o->opt.target != TARGET_MCU) {
    /* agc run: every core unless told */
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    o->opt.api.threads = n < 1 ? 1 : n > AGC_MAX_THREADS ? AGC_MAX_THREADS
                                                         : (int)n;
  }
  return 0;
}

/* ---- agc GRAPH -o OUT.c ----------------------------------------------- */

static int cmd_compile(Cli *o) {
  int kind = EMIT_C;
  if (o->emit) {
    if (strcmp(o->emit, "c") == 0) kind = EMIT_C;
    else if (strcmp(o->emit, "h") == 0) kind = EMIT_H;
    else if (strcmp(o->emit, "ir") == 0) kind = EMIT_IR;
    else if (strcmp(o->emit, "dot") == 0) kind = EMIT_DOT;
    else if (strcmp(o->emit, "plan") == 0) kind = EMIT_PLAN;
    else if (strcmp(o->emit, "mem") == 0) kind = EMIT_MEM;
    else if (strcmp(o->emit, "loops") == 0) kind = EMIT_LOOPS;
    else return die2("--emit takes c, h, ir, plan, loops, mem or dot, not '%s'", o->emit);
    if (!o->out)
      o->out = "-";
  } else if (!o->out) {
    return die2("%s", "no output: give -o OUT.c (or --emit KIND)");
  }
  if (o->opt.target == TARGET_JIT && !o->emit)
    return die2("%s", "--target jit goes with --emit: it shows what the JIT "
                "compiles (its C calls libagc's kernels)");
  if (o->header && kind != EMIT_C)
    return die2("%s", "--header goes with C output");
  if (o->opt.after && kind != EMIT_IR && kind != EMIT_DOT)
    return die2("%s", "--after goes with --emit ir or --emit dot");
  if (o->opt.after && !pass_known(o->opt.after))
    return die2("--after: no pass named '%s' (passes: " PASS_LIST ")",
                o->opt.after);
  StrBuf src = {0};
  char err[4200];
  if (read_text_file(o->graph, &src, err, sizeof err) != 0) {
    fprintf(stderr, "agc: %s\n", err);
    sb_free(&src);
    return 1;
  }
  Ctx *c = agc_compile(o->graph, src.s ? src.s : "", src.len, &o->opt);
  StrBuf code = {0}, hdr = {0};
  int rc = 0;
  if (agc_failed(c) || agc_emit(c, kind, o->opt.target, &code) != 0 ||
      (o->header && agc_emit(c, EMIT_H, o->opt.target, &hdr) != 0)) {
    rc = 1;
  } else {
    const char *paths[2] = {o->out, o->header};
    StrBuf *data[2] = {&code, &hdr};
    if (write_files(o->header ? 2 : 1, paths, data) != 0)
      rc = 1;
  }
  print_diagnostics(agc_messages(c));
  agc_free(c);
  sb_free(&code);
  sb_free(&hdr);
  sb_free(&src);
  return rc;
}

int main(int argc, char **argv) {
  if (argc < 2)
    return die2("%s", "no arguments");
  if (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0) {
    fputs(usage, stdout);
    return 0;
  }
  if (strcmp(argv[1], "--version") == 0) {
    const char *k = agc_kernel_variant();
    printf("agc %s\nJIT kernels: %s\n", AGC_VERSION,
           k ? k : "none (AGC_KERNELS names a copy this machine cannot run)");
    return 0;
  }
  catch_signals();
#ifdef __GLIBC__
  /* Every array of 1 MB or more is mapped on its own and handed back when
   * freed: a compilation allocates large per-node arrays phase by phase
   * (tokens, the parse graph's operand lists, the planner's working
   * arrays), and glibc's default, a threshold that rises to the size of
   * the largest block freed, keeps them in the heap afterwards, where they
   * count in the process's memory until it exits (100,000 statements:
   * 232 MB instead of 198 MB). A large array that grows (realloc) then
   * moves its pages instead of copying them. */
  mallopt(M_MMAP_THRESHOLD, 1 << 20);
#endif
  Cli o;
  memset(&o, 0, sizeof o);
  o.pairs = calloc((size_t)argc, sizeof *o.pairs);
  int mode = 0, start = 1;
  if (strcmp(argv[1], "run") == 0)
    mode = 1, start = 2;
  else if (strcmp(argv[1], "check") == 0)
    mode = 2, start = 2, o.opt.api.f64 = 1;
  int rc = parse_cli(argc, argv, start, &o, mode);
  if (rc == 0) {
    if (mode == 2 && !o.opt.api.f64)
      rc = die2("%s", "check always runs in f64 (--dtype f64)");
    else
      rc = mode == 0 ? cmd_compile(&o) : mode == 1 ? cmd_run(&o) : cmd_check(&o);
  }
  free(o.pairs);
  return rc;
}
