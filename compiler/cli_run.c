/* cli_run.c — `agc run` (inputs from .npy files, the graph through the
 * JIT or cc, outputs to .npy, training steps) and `agc check` (gradients
 * against central finite differences in f64). */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"
#include "dims_text.h"

/* ---- inputs --------------------------------------------------------------- */

static const char *pair_for(Cli *o, const char *name) {
  size_t n = strlen(name);
  for (int i = 0; i < o->npairs; i++)
    if (strncmp(o->pairs[i], name, n) == 0 && o->pairs[i][n] == '=')
      return o->pairs[i] + n + 1;
  return NULL;
}


/* NumPy's name for a dtype descr such as '<i8' (int64), or the descr. */
static const char *numpy_name(const char *descr, char *buf, size_t n) {
  const char *kinds[][2] = {{"i", "int"}, {"u", "uint"}, {"f", "float"},
                            {"c", "complex"}, {"b", "bool"}};
  if (strlen(descr) >= 3 && strchr("<>|=", descr[0]))
    for (size_t k = 0; k < sizeof kinds / sizeof kinds[0]; k++)
      if (descr[1] == kinds[k][0][0]) {
        int bytes = atoi(descr + 2);
        if (descr[1] == 'b')
          snprintf(buf, n, "bool");
        else
          snprintf(buf, n, "%s%d", kinds[k][1], bytes * 8);
        return buf;
      }
  return descr;
}

/* Says which dtype input `name` must have and how to get it. */
static void dtype_error(const char *name, const char *path,
                        const char *got_descr, agc_dtype want) {
  static const char *const descr[] = {"<f4", "<f8", "<i4"};
  static const char *const np[] = {"float32", "float64", "int32"};
  char buf[32];
  fprintf(stderr, "agc: input '%s' (%s): dtype %s ('%s'); '%s' must be %s "
          "('%s')%s; in NumPy: a.astype(np.%s)\n", name, path,
          numpy_name(got_descr, buf, sizeof buf), got_descr, name, np[want],
          descr[want], want == AGC_I32 ? ""
                       : want == AGC_F32 ? " (or run with --dtype f64)"
                                         : " (or run with --dtype f32)",
          np[want]);
}

/* Loads input i into a (converting f32 files for check). Returns 0, 1 if
 * absent (and allow_missing), -1 on an error (printed). */
static int load_input(Cli *o, agc_graph *g, int i, agc_array *a,
                      int allow_missing, int convert) {
  const char *name = agc_graph_name(g, 0, i);
  const char *path = pair_for(o, name);
  char buf[4096];
  if (!path && o->inputs) {
    snprintf(buf, sizeof buf, "%s/%s.npy", o->inputs, name);
    if (access(buf, F_OK) == 0 || !allow_missing)
      path = buf;
  }
  if (!path) {
    if (allow_missing)
      return 1;
    fprintf(stderr, "agc: missing input '%s': give --inputs DIR with "
            "%s.npy, or %s=FILE.npy\n", name, name, name);
    return -1;
  }
  char err[1024];
  agc_dtype want = agc_graph_dtype(g, 0, i);
  /* the graph's shape is checked against the header before the data is
     read: it bounds what a file can make us allocate */
  if (agc_npy_read_shaped(path, a, agc_graph_rank(g, 0, i),
                          agc_graph_dims(g, 0, i), err, sizeof err) != 0) {
    /* npy.c: "PATH: dtype '<i8' not supported (expected ...)" */
    const char *d = strstr(err, ": dtype '");
    const char *e = d ? strstr(d + 9, "' not supported") : NULL;
    if (e && e - (d + 9) < 32) {
      char got[32];
      snprintf(got, sizeof got, "%.*s", (int)(e - (d + 9)), d + 9);
      dtype_error(name, path, got, want);
    } else {
      fprintf(stderr, "agc: input '%s': %s\n", name, err);
    }
    return -1;
  }
  if (a->dtype != want && convert && want != AGC_I32 && a->dtype != AGC_I32)
    agc_array_convert(a, want, err, sizeof err);
  if (a->dtype != want) {
    static const char *const descr[] = {"<f4", "<f8", "<i4"};
    dtype_error(name, path, descr[a->dtype], want);
    agc_array_free(a);
    return -1;
  }
  int rank = agc_graph_rank(g, 0, i);
  const int64_t *d = agc_graph_dims(g, 0, i);
  int same = a->rank == rank;
  for (int k = 0; same && k < rank; k++)
    same = a->dims[k] == d[k];
  if (!same) {
    char want_s[200], got_s[200];
    dims_text(rank, d, want_s, sizeof want_s);
    dims_text(a->rank, a->dims, got_s, sizeof got_s);
    fprintf(stderr, "agc: input '%s' (%s): shape %s, expected %s\n", name,
            path, got_s, want_s);
    agc_array_free(a);
    return -1;
  }
  return 0;
}

static int check_pairs(Cli *o, agc_graph *g) {
  for (int p = 0; p < o->npairs; p++) {
    const char *eq = strchr(o->pairs[p], '=');
    int found = 0;
    for (int i = 0; i < agc_graph_num_inputs(g); i++) {
      const char *n = agc_graph_name(g, 0, i);
      if (strlen(n) == (size_t)(eq - o->pairs[p]) &&
          strncmp(n, o->pairs[p], (size_t)(eq - o->pairs[p])) == 0)
        found = 1;
    }
    if (!found) {
      int n = agc_graph_num_inputs(g);
      const char **names = calloc((size_t)n + 1, sizeof *names);
      for (int i = 0; i < n; i++)
        names[i] = agc_graph_name(g, 0, i);
      char given[256];
      snprintf(given, sizeof given, "%.*s", (int)(eq - o->pairs[p]),
               o->pairs[p]);
      const char *near = nearest_name(given, names, n);
      fprintf(stderr, "agc: '%s' is not an input of the graph", given);
      if (near)
        fprintf(stderr, "; did you mean '%s'?", near);
      fprintf(stderr, " (inputs:");
      for (int i = 0; i < n; i++)
        fprintf(stderr, " %s", names[i]);
      fprintf(stderr, ")\n");
      free(names);
      return -1;
    }
  }
  return 0;
}

static double now_us(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (double)t.tv_sec * 1e6 + (double)t.tv_nsec / 1e3;
}

/* Progress of a long loop on standard error, only when that is a terminal
 * (never in a pipe, a file or a log): one line, redrawn at most every
 * 0.1 s, erased when the loop ends. */
static void progress(const char *what, long long done, long long total) {
  static int tty = -1;
  static double last = -1e18;
  if (tty < 0)
    tty = isatty(STDERR_FILENO);
  if (!tty)
    return;
  if (done >= total) {
    fputs("\r\033[K", stderr);
    last = -1e18;
    return;
  }
  double t = now_us();
  if (t - last < 1e5)
    return;
  last = t;
  fprintf(stderr, "\ragc: %s %lld/%lld\033[K", what, done, total);
}

static int cmp_double(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return (x > y) - (x < y);
}

/* Memory for a run: NULL after a message when there is none. */
static void *try_alloc(size_t count, size_t size, const char *what) {
  void *w = count && size <= SIZE_MAX / count ? calloc(count, size)
                                              : calloc(1, 1);
  if (!w || (count && size > SIZE_MAX / count)) {
    free(w);
    fprintf(stderr, "agc: out of memory (%.0f bytes for %s)\n",
            (double)count * (double)size, what);
    return NULL;
  }
  return w;
}

/* Writes OUT/NAME.npy for every output: all of them or none. */
static int write_named(const char *outdir, const char *const *names,
                       agc_array *outs, int nout);

static int write_results(const char *outdir, agc_graph *g, agc_array *outs,
                         int nout) {
  const char **names = calloc((size_t)nout + 1, sizeof *names);
  if (!names)
    abort();
  for (int i = 0; i < nout; i++)
    names[i] = agc_graph_name(g, 1, i);
  int rc = write_named(outdir, names, outs, nout);
  free(names);
  return rc;
}

/* --steps: N training steps, then every param and the last step's outputs
 * (the graph's own outputs come first in the output table) */
static int run_steps(Cli *o, agc_graph *g, agc_array *ins, void **inp,
                     agc_array *outs, void **outp, const char *outdir) {
  int nin = agc_graph_num_inputs(g), nout = agc_graph_num_outputs(g);
  void *state = try_alloc(agc_graph_state_bytes(g) + 8, 1, "the optimizer state");
  void *work = try_alloc(agc_graph_step_work_bytes(g) + 8, 1, "the workspace");
  int rc = !state || !work;
  if (!rc)
    memset(state, 0, agc_graph_state_bytes(g));
  char err[1024];
  for (int s = 0; s < o->steps && !rc; s++) {
    if (o->steps > 1)
      progress("steps", s, o->steps);
    int status = agc_graph_step(g, inp, outp, state, work);
    if (status) {
      agc_graph_index_error(g, (const void *const *)inp, err, sizeof err);
      fprintf(stderr, "agc: %s: %s\n", o->graph, err);
      rc = 1;
    }
  }
  if (o->steps > 1 && !rc)
    progress("steps", o->steps, o->steps);
  free(state);
  free(work);
  if (rc)
    return 1;
  const char **names = calloc((size_t)(nin + nout) + 1, sizeof *names);
  agc_array *arrs = calloc((size_t)(nin + nout) + 1, sizeof *arrs);
  if (!names || !arrs)
    abort();
  int n = 0;
  for (int i = 0; i < nout; i++) {
    if (agc_graph_is_grad(g, i))
      continue;
    int param = 0; /* `output P` of a param P: OUT/P.npy is the param's */
    for (int j = 0; j < nin && !param; j++)
      param = agc_graph_is_param(g, j) &&
              strcmp(agc_graph_name(g, 0, j), agc_graph_name(g, 1, i)) == 0;
    if (param) {
      fprintf(stderr, "agc: note: output '%s' is a param: %s/%s.npy holds "
              "it after the last step\n", agc_graph_name(g, 1, i), outdir,
              agc_graph_name(g, 1, i));
      continue;
    }
    names[n] = agc_graph_name(g, 1, i);
    arrs[n++] = outs[i];
  }
  for (int i = 0; i < nin; i++)
    if (agc_graph_is_param(g, i)) {
      names[n] = agc_graph_name(g, 0, i);
      arrs[n++] = ins[i];
    }
  rc = write_named(outdir, names, arrs, n) != 0;
  free(names);
  free(arrs);
  return rc;
}

static int write_named(const char *outdir, const char *const *names,
                       agc_array *outs, int nout) {
  Staged *st = calloc((size_t)nout + 1, sizeof *st);
  int *fds = calloc((size_t)nout + 1, sizeof *fds);
  char **paths = calloc((size_t)nout + 1, sizeof *paths);
  if (!st || !fds || !paths)
    abort();
  int rc = 0;
  for (int i = 0; i < nout && !rc; i++) {
    size_t len = strlen(outdir) + strlen(names[i]) + 8;
    paths[i] = malloc(len);
    if (!paths[i])
      abort();
    snprintf(paths[i], len, "%s/%s.npy", outdir, names[i]);
    st[i].path = paths[i];
  }
  if (!rc && stage_begin(nout, st, fds) != 0)
    rc = -1;
  char err[1024];
  for (int i = 0; i < nout && !rc; i++) {
    if (agc_npy_write_fd(fds[i], paths[i], &outs[i], err, sizeof err) != 0) {
      fprintf(stderr, "agc: %s\n", err);
      rc = -1;
    }
    if (close(fds[i]) != 0 && !rc) {
      fprintf(stderr, "agc: cannot write '%s': %s\n", paths[i],
              strerror(errno));
      rc = -1;
    }
    fds[i] = -1;
    if (rc) {
      for (int m = i + 1; m < nout; m++)
        close(fds[m]);
      stage_abort(nout, st);
    }
  }
  if (!rc && stage_commit(nout, st) != 0)
    rc = -1;
  for (int i = 0; i < nout; i++)
    free(paths[i]);
  free(paths);
  free(fds);
  free(st);
  return rc;
}

/* ---- agc run ------------------------------------------------------------------ */

/* Compiles and loads the graph, printing its diagnostics; NULL after an
 * error. */
static agc_graph *load_graph(Cli *o, const agc_graph_options *opt) {
  char err[8192];
  agc_graph *g = agc_graph_load(o->graph, opt, err, sizeof err);
  print_diagnostics(g ? agc_graph_warnings(g) : err);
  return g;
}

int cmd_run(Cli *o) {
  if (o->out)
    return die2("%s", "run writes its results with --out DIR, not -o");
  if (o->steps && (o->repeat || o->opt.api.accumulate))
    return die2("%s", "--steps cannot be combined with --repeat or "
                "--accumulate");
  agc_graph_options opt = o->opt.api; /* --dtype ... --backend */
  opt.mcu = o->opt.target == TARGET_MCU;
  char err[8192];
  agc_graph *g = load_graph(o, &opt);
  if (!g)
    return 1;
  if (o->steps && !agc_graph_has_step(g)) {
    fprintf(stderr, "agc: %s: --steps needs a graph with 'optimizer' (and "
            "'backward')\n", o->graph);
    agc_graph_free(g);
    return 1;
  }
  int nin = agc_graph_num_inputs(g), nout = agc_graph_num_outputs(g);
  agc_array *ins = calloc((size_t)nin + 1, sizeof *ins);
  agc_array *outs = calloc((size_t)nout + 1, sizeof *outs);
  const void **inp = calloc((size_t)nin + 1, sizeof *inp);
  void **outp = calloc((size_t)nout + 1, sizeof *outp);
  void *work = try_alloc(agc_graph_work_bytes(g), 1, "the workspace");
  const char *outdir = o->outdir ? o->outdir : ".";
  int rc = check_pairs(o, g) || !work ? 1 : 0;
  for (int i = 0; i < nin && !rc; i++) {
    if (load_input(o, g, i, &ins[i], 0, 0) != 0)
      rc = 1;
    inp[i] = ins[i].data;
  }
  if (!rc && mkdir(outdir, 0755) != 0 && errno != EEXIST) {
    fprintf(stderr, "agc: cannot create '%s': %s\n", outdir, strerror(errno));
    rc = 1;
  }
  char path[4096];
  for (int i = 0; i < nout && !rc; i++) {
    agc_array *a = &outs[i];
    a->dtype = agc_graph_dtype(g, 1, i);
    a->rank = agc_graph_rank(g, 1, i);
    for (int d = 0; d < a->rank; d++)
      a->dims[d] = agc_graph_dims(g, 1, i)[d];
    a->count = agc_graph_count(g, 1, i);
    a->data = try_alloc((size_t)a->count, agc_dtype_size(a->dtype),
                        agc_graph_name(g, 1, i));
    if (!a->data) {
      rc = 1;
      break;
    }
    outp[i] = a->data;
    snprintf(path, sizeof path, "%s/%s.npy", outdir, agc_graph_name(g, 1, i));
    if (o->opt.api.accumulate && agc_graph_is_grad(g, i) && access(path, F_OK) == 0) {
      agc_array prev;
      if (agc_npy_read(path, &prev, err, sizeof err) != 0) {
        fprintf(stderr, "agc: %s\n", err);
        rc = 1;
        break;
      }
      int same = prev.dtype == a->dtype && prev.rank == a->rank;
      for (int d = 0; same && d < a->rank; d++)
        same = prev.dims[d] == a->dims[d];
      if (!same) {
        fprintf(stderr, "agc: %s: shape or dtype does not match gradient "
                "'%s' (--accumulate)\n", path, agc_graph_name(g, 1, i));
        agc_array_free(&prev);
        rc = 1;
        break;
      }
      memcpy(a->data, prev.data, (size_t)a->count * agc_dtype_size(a->dtype));
      agc_array_free(&prev);
    }
  }
  if (!rc && o->steps) {
    rc = run_steps(o, g, ins, (void **)inp, outs, outp, outdir);
    goto done;
  }
  if (!rc) {
    int reps = o->repeat > 0 ? o->repeat : 1;
    double *t = try_alloc((size_t)reps, sizeof *t, "--repeat timings");
    int status = t ? 0 : -1;
    for (int r = 0; r < reps && !status; r++) {
      if (reps > 1)
        progress("calls", r, reps);
      double t0 = now_us();
      status = agc_graph_call(g, inp, outp, work);
      t[r] = now_us() - t0;
    }
    if (reps > 1)
      progress("calls", reps, reps);
    if (status < 0) {
      rc = 1;
    } else if (status) {
      agc_graph_index_error(g, inp, err, sizeof err);
      fprintf(stderr, "agc: %s: %s\n", o->graph, err);
      rc = 1;
    } else if (o->repeat > 0) {
      qsort(t, (size_t)reps, sizeof *t, cmp_double);
      double med = reps % 2 ? t[reps / 2] : (t[reps / 2 - 1] + t[reps / 2]) / 2;
      fprintf(stderr, "median_us=%.3f calls=%d\n", med, reps);
    }
    free(t);
  }
  if (!rc && write_results(outdir, g, outs, nout) != 0)
    rc = 1;
done:
  for (int i = 0; i < nin; i++)
    agc_array_free(&ins[i]);
  for (int i = 0; i < nout; i++)
    agc_array_free(&outs[i]);
  free(ins);
  free(outs);
  free(inp);
  free(outp);
  free(work);
  agc_graph_free(g);
  return rc;
}

/* ---- agc check --------------------------------------------------------------- */

static uint64_t rng_state = 0x9E3779B97F4A7C15ULL;
static double uniform(void) { /* splitmix64 → [-1, 1) */
  uint64_t z = (rng_state += 0x9E3779B97F4A7C15ULL);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
  z ^= z >> 31;
  return (double)(z >> 11) / 9007199254740992.0 * 2 - 1;
}

/* check's inputs: the files given, else random values in [-1, 1] (an
 * integer input must be given); -1 after an error */
static int check_inputs(Cli *o, agc_graph *g, agc_array *ins,
                        const void **inp) {
  for (int i = 0; i < agc_graph_num_inputs(g); i++) {
    int r = load_input(o, g, i, &ins[i], 1, 1);
    if (r < 0)
      return -1;
    if (r == 1) {
      if (agc_graph_dtype(g, 0, i) == AGC_I32) {
        fprintf(stderr, "agc: missing integer input '%s': give its values "
                "(--inputs DIR or %s=FILE.npy)\n", agc_graph_name(g, 0, i),
                agc_graph_name(g, 0, i));
        return -1;
      }
      agc_array *a = &ins[i];
      a->dtype = AGC_F64;
      a->rank = agc_graph_rank(g, 0, i);
      for (int d = 0; d < a->rank; d++)
        a->dims[d] = agc_graph_dims(g, 0, i)[d];
      a->count = agc_graph_count(g, 0, i);
      a->data = try_alloc((size_t)a->count, sizeof(double),
                          agc_graph_name(g, 0, i));
      if (!a->data)
        return -1;
      for (int64_t k = 0; k < a->count; k++)
        ((double *)a->data)[k] = uniform();
      fprintf(stderr, "agc: note: input '%s' not given; using random values "
              "in [-1, 1]\n", agc_graph_name(g, 0, i));
    }
    inp[i] = ins[i].data;
  }
  return 0;
}

/* The objective finite differences see: the sum over the backward roots
 * of <seed, root>. The roots are the outputs the compiler exposed after
 * the gradients (a user's own output may be called agc_root_* too). */
typedef struct {
  agc_graph *g;
  const void **inp;
  void **outp;
  void *work;
  int n, *out, *seed; /* root r: output out[r], seed input seed[r] or -1 */
} Objective;

static void objective_roots(Objective *J) {
  agc_graph *g = J->g;
  int nin = agc_graph_num_inputs(g), nout = agc_graph_num_outputs(g);
  int after_grads = 0;
  for (int i = 0; i < nout; i++)
    if (agc_graph_is_grad(g, i))
      after_grads = i + 1;
  for (int i = after_grads; i < nout; i++)
    if (strncmp(agc_graph_name(g, 1, i), "agc_root_", 9) == 0) {
      const char *rn = agc_graph_name(g, 1, i) + 9;
      J->seed[J->n] = -1;
      for (int k = 0; k < nin; k++)
        if (strncmp(agc_graph_name(g, 0, k), "grad_", 5) == 0 &&
            strcmp(agc_graph_name(g, 0, k) + 5, rn) == 0)
          J->seed[J->n] = k;
      J->out[J->n++] = i;
    }
}

static double objective(const Objective *J) {
  agc_graph_call(J->g, J->inp, J->outp, J->work);
  double v = 0;
  for (int r = 0; r < J->n; r++) {
    const double *y = J->outp[J->out[r]];
    const double *s = J->seed[r] >= 0 ? J->inp[J->seed[r]] : NULL;
    int64_t m = agc_graph_count(J->g, 1, J->out[r]);
    for (int64_t k = 0; k < m; k++)
      v += y[k] * (s ? s[k] : 1);
  }
  return v;
}

/* The worst relative error of gradient output gi (values ad) against
 * central differences in its param's elements x[0..n). */
static double fd_error(const Objective *J, int gi, double *x, int64_t n,
                       const double *ad) {
  double maxdiff = 0, scale = 0;
  char what[300];
  snprintf(what, sizeof what, "checking %s, element",
           agc_graph_name(J->g, 1, gi));
  for (int64_t j = 0; j < n; j++) {
    progress(what, j, n);
    double x0 = x[j], h = 1e-6 * (fabs(x0) > 1 ? fabs(x0) : 1);
    x[j] = x0 + h;
    double fp = objective(J);
    x[j] = x0 - h;
    double fm = objective(J);
    x[j] = x0;
    double fd = (fp - fm) / (2 * h);
    double diff = fabs(fd - ad[j]);
    if (!(diff <= maxdiff))
      maxdiff = diff; /* NaN sticks */
    if (fabs(fd) > scale)
      scale = fabs(fd);
    if (fabs(ad[j]) > scale)
      scale = fabs(ad[j]);
  }
  progress(what, n, n);
  return maxdiff / (scale > 1e-6 ? scale : 1e-6);
}

int cmd_check(Cli *o) {
  if (o->out)
    return die2("%s", "check writes no files: -o does not apply");
  /* f64 and the backward roots as outputs, on the JIT */
  agc_graph_options opt = {0};
  opt.f64 = 1;
  opt.name = o->opt.api.name;
  opt.expose_roots = 1;
  opt.O0 = o->opt.api.O0;
  char err[8192];
  agc_graph *g = load_graph(o, &opt);
  if (!g)
    return 1;
  int nin = agc_graph_num_inputs(g), nout = agc_graph_num_outputs(g);
  agc_array *ins = calloc((size_t)nin + 1, sizeof *ins);
  const void **inp = calloc((size_t)nin + 1, sizeof *inp);
  void **outp = calloc((size_t)nout + 1, sizeof *outp);
  void *work = try_alloc(agc_graph_work_bytes(g), 1, "the workspace");
  int rc = check_pairs(o, g) || !work ? 1 : 0;
  int ngrad = 0;
  for (int i = 0; i < nout && !rc; i++) {
    outp[i] = try_alloc((size_t)agc_graph_count(g, 1, i), sizeof(double),
                        agc_graph_name(g, 1, i));
    if (!outp[i])
      rc = 1;
    ngrad += agc_graph_is_grad(g, i);
  }
  if (!ngrad && !rc) {
    fprintf(stderr, "agc: %s: nothing to check: the graph has no backward "
            "statement\n", o->graph);
    rc = 1;
  }
  if (!rc && check_inputs(o, g, ins, inp) != 0)
    rc = 1;
  Objective J = {g, inp, outp, work, 0, calloc((size_t)nout + 1, sizeof(int)),
                 calloc((size_t)nout + 1, sizeof(int))};
  objective_roots(&J);
  if (!rc && agc_graph_call(g, inp, outp, work) != 0) {
    agc_graph_index_error(g, inp, err, sizeof err);
    fprintf(stderr, "agc: %s: %s\n", o->graph, err);
    rc = 1;
  }
  double **ad = calloc((size_t)nout + 1, sizeof *ad);
  for (int i = 0; i < nout && !rc; i++) {
    size_t n = (size_t)agc_graph_count(g, 1, i);
    ad[i] = try_alloc(n, sizeof(double), agc_graph_name(g, 1, i));
    if (!ad[i])
      rc = 1;
    else
      memcpy(ad[i], outp[i], n * sizeof(double));
  }
  double tol = o->tol > 0 ? o->tol : 1e-4, worst_all = 0;
  int failed = 0;
  for (int gi = 0; gi < nout && !rc; gi++) {
    if (!agc_graph_is_grad(g, gi))
      continue;
    int pi = -1;
    for (int k = 0; k < nin; k++)
      if (strcmp(agc_graph_name(g, 0, k), agc_graph_name(g, 1, gi) + 5) == 0)
        pi = k;
    if (pi < 0)
      continue;
    double rel = fd_error(&J, gi, ins[pi].data, ins[pi].count, ad[gi]);
    int ok = rel <= tol;
    failed |= !ok;
    if (!(rel <= worst_all))
      worst_all = rel;
    printf("%-24s max_rel_err=%.3g  (%lld elements)  %s\n",
           agc_graph_name(g, 1, gi), rel, (long long)ins[pi].count,
           ok ? "ok" : "FAILED");
  }
  if (!rc && failed) {
    fprintf(stderr, "agc: %s: gradient check failed: relative error above "
            "tolerance %g\n", o->graph, tol);
    rc = 1;
  } else if (!rc) {
    printf("all gradients match finite differences (worst %.3g, tol %g)\n",
           worst_all, tol);
  }
  for (int i = 0; i < nin; i++)
    agc_array_free(&ins[i]);
  for (int i = 0; i < nout; i++) {
    free(outp[i]);
    free(ad[i]);
  }
  free(ad);
  free(J.out);
  free(J.seed);
  free(ins);
  free(inp);
  free(outp);
  free(work);
  agc_graph_free(g);
  return rc;
}

