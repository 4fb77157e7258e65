/* main.c — the agc command: compile, run, check. The only file that exits. */
#include <errno.h>
#include <signal.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "agc.h"
#include "agc_api.h"

static const char usage[] =
"usage:\n"
"  agc GRAPH -o OUT.c [--header OUT.h] [options]   write the C function\n"
"  agc GRAPH --emit c|h|ir|plan|mem|dot [-o FILE] [options] one artifact (default: stdout)\n"
"  agc run GRAPH [--inputs DIR] [NAME=FILE.npy ...] [--out DIR]\n"
"              [--backend tcc|cc] [--target host|mcu] [--dtype f32|f64]\n"
"              [--accumulate] [--repeat N] [--steps N]\n"
"  agc check GRAPH [--inputs DIR] [NAME=FILE.npy ...] [--dtype f64] [--tol T]\n"
"  agc --help | --version\n"
"\n"
"compile options:\n"
"  -o FILE           output file (written atomically; '-' is standard output)\n"
"  --header FILE     also write the header (macros, prototypes, tables)\n"
"  --emit KIND       c (default), h, ir (the IR after differentiation),\n"
"                    plan (each stored value's buffer, offset, size and\n"
"                    lifetime), mem (bytes of params, optimizer state,\n"
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

static int die2(const char *fmt, const char *arg) {
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
static void print_diagnostics(const char *text) {
  while (*text) {
    size_t n = strcspn(text, "\n");
    int indented = text[0] == ' ' || text[0] == '\t';
    fprintf(stderr, "%s%.*s\n", indented || located(text, n) ? "" : "agc: ",
            (int)n, text);
    text += n + (text[n] == '\n');
  }
}

/* --repeat keeps one timing per call (8 bytes each) for the median */
#define MAX_REPEAT 1000000

typedef struct {
  const char *graph, *out, *header, *emit, *name, *inputs, *outdir;
  const char *backend;
  int f64, accumulate, no_grad, repeat, O0, target, steps;
  const char *after;
  double tol;
  const char **pairs; /* NAME=FILE */
  int npairs;
} Cli;

/* ---- output files: staged, then committed together ----------------------
 *
 * Every output (the .c and .h of a compile, the .npy files of a run) is
 * first written in full to a temporary "<target>.agc-tmp-XXXXXX" next to
 * its target; only when all are written are they renamed over their
 * targets, each existing target kept as a hard link until all renames
 * succeed, so that a failure puts the old files back: all or nothing.
 * A target must be a regular file or not exist; a symbolic link is
 * followed to the file it names; a directory, device, FIFO or socket is
 * refused. The new file keeps the old file's permission bits, or gets
 * 0666 & ~umask when new. SIGINT, SIGTERM and SIGHUP remove the
 * temporaries before agc dies (SIGKILL cannot be caught: the names say
 * whose they are). */

/* the names the signal handler unlinks; changed with signals blocked */
static char **staged_tmp;
static int staged_cap;
static volatile sig_atomic_t nstaged_tmp;

static void on_fatal_signal(int sig) {
  for (int i = 0; i < nstaged_tmp; i++)
    if (staged_tmp[i])
      unlink(staged_tmp[i]);
  signal(sig, SIG_DFL);
  raise(sig);
}

static void catch_signals(void) {
  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_handler = on_fatal_signal;
  sigemptyset(&sa.sa_mask);
  sigaction(SIGINT, &sa, NULL);
  sigaction(SIGTERM, &sa, NULL);
  sigaction(SIGHUP, &sa, NULL);
}

static void track_tmp(char *path) {
  sigset_t all, old;
  sigfillset(&all);
  sigprocmask(SIG_BLOCK, &all, &old);
  int n = nstaged_tmp;
  while (n > 0 && !staged_tmp[n - 1]) /* slots of removed names are reused */
    n--;
  if (n == staged_cap) {
    int ncap = staged_cap ? 2 * staged_cap : 16;
    char **nt = realloc(staged_tmp, sizeof *nt * (size_t)ncap);
    if (!nt)
      abort();
    staged_tmp = nt;
    staged_cap = ncap;
  }
  staged_tmp[n] = path;
  nstaged_tmp = n + 1;
  sigprocmask(SIG_SETMASK, &old, NULL);
}

static void untrack_tmp(const char *path) {
  sigset_t all, old;
  sigfillset(&all);
  sigprocmask(SIG_BLOCK, &all, &old);
  for (int i = 0; i < nstaged_tmp; i++)
    if (staged_tmp[i] == path)
      staged_tmp[i] = NULL;
  sigprocmask(SIG_SETMASK, &old, NULL);
}

typedef struct {
  const char *path;  /* as the user wrote it */
  char *target;      /* symbolic links followed */
  char *tmp;         /* the staged file */
  char *backup;      /* a hard link to the old target while committing */
  int existed;
  mode_t mode;
  dev_t dev;
  ino_t ino;
} Staged;

static const char *kind_of(mode_t m) {
  return S_ISDIR(m) ? "a directory" : S_ISCHR(m) ? "a character device"
       : S_ISBLK(m) ? "a block device" : S_ISFIFO(m) ? "a FIFO"
       : S_ISSOCK(m) ? "a socket" : "not a regular file";
}

/* Follows symbolic links from s->path to the file they name. */
static int resolve_target(Staged *s) {
  char cur[4096], link[4096];
  if (strlen(s->path) >= sizeof cur) {
    fprintf(stderr, "agc: cannot write '%s': name too long\n", s->path);
    return -1;
  }
  strcpy(cur, s->path);
  struct stat st;
  for (int hops = 0;; hops++) {
    if (lstat(cur, &st) != 0) {
      if (errno != ENOENT) {
        fprintf(stderr, "agc: cannot write '%s': %s\n", s->path,
                strerror(errno));
        return -1;
      }
      s->existed = 0;
      mode_t um = umask(0);
      umask(um);
      s->mode = 0666 & ~um;
      break;
    }
    if (!S_ISLNK(st.st_mode)) {
      if (!S_ISREG(st.st_mode)) {
        fprintf(stderr, "agc: cannot write '%s': it is %s, not a regular "
                "file\n", s->path, kind_of(st.st_mode));
        return -1;
      }
      s->existed = 1;
      s->mode = st.st_mode & 07777;
      s->dev = st.st_dev;
      s->ino = st.st_ino;
      break;
    }
    ssize_t n = hops < 40 ? readlink(cur, link, sizeof link - 1) : -1;
    if (n < 0) {
      fprintf(stderr, "agc: cannot write '%s': %s\n", s->path,
              hops < 40 ? strerror(errno) : "too many levels of symbolic links");
      return -1;
    }
    link[n] = 0;
    if (link[0] != '/') { /* relative to the link's directory */
      char *slash = strrchr(cur, '/');
      size_t dl = slash ? (size_t)(slash - cur) + 1 : 0;
      if (dl + (size_t)n >= sizeof cur) {
        fprintf(stderr, "agc: cannot write '%s': name too long\n", s->path);
        return -1;
      }
      memmove(cur + dl, link, (size_t)n + 1);
    } else {
      memcpy(cur, link, (size_t)n + 1);
    }
  }
  s->target = strdup(cur);
  if (!s->target)
    abort();
  return 0;
}

/* Resolves every target (the same file twice is an error) and opens a
 * temporary for each. Returns 0, or -1 after a message (nothing created). */
static int stage_begin(int n, Staged *st, int *fds);
static void stage_abort(int n, Staged *st);

static int stage_begin(int n, Staged *st, int *fds) {
  for (int i = 0; i < n; i++)
    fds[i] = -1;
  for (int i = 0; i < n; i++)
    if (resolve_target(&st[i]) != 0) {
      stage_abort(n, st);
      return -1;
    }
  for (int i = 0; i < n; i++)
    for (int j = 0; j < i; j++)
      if (strcmp(st[i].target, st[j].target) == 0 ||
          (st[i].existed && st[j].existed && st[i].dev == st[j].dev &&
           st[i].ino == st[j].ino)) {
        fprintf(stderr, "agc: '%s' and '%s' are the same file: each output "
                "needs its own\n", st[j].path, st[i].path);
        stage_abort(n, st);
        return -1;
      }
  for (int i = 0; i < n; i++) {
    size_t len = strlen(st[i].target) + 24;
    st[i].tmp = malloc(len);
    if (!st[i].tmp)
      abort();
    snprintf(st[i].tmp, len, "%s.agc-tmp-XXXXXX", st[i].target);
    sigset_t all, old;
    sigfillset(&all);
    sigprocmask(SIG_BLOCK, &all, &old); /* created and tracked together */
    fds[i] = mkstemp(st[i].tmp);
    int e = errno;
    if (fds[i] >= 0)
      track_tmp(st[i].tmp);
    sigprocmask(SIG_SETMASK, &old, NULL);
    if (fds[i] < 0 || fchmod(fds[i], st[i].mode) != 0) {
      if (fds[i] >= 0)
        e = errno;
      fprintf(stderr, "agc: cannot write '%s': %s\n", st[i].path, strerror(e));
      if (fds[i] < 0) {
        free(st[i].tmp);
        st[i].tmp = NULL;
      }
      for (int j = 0; j <= i; j++)
        if (fds[j] >= 0)
          close(fds[j]);
      stage_abort(n, st);
      return -1;
    }
  }
  return 0;
}

/* Removes the temporaries, frees everything. */
static void stage_abort(int n, Staged *st) {
  for (int i = 0; i < n; i++) {
    if (st[i].tmp) {
      unlink(st[i].tmp);
      untrack_tmp(st[i].tmp);
      free(st[i].tmp);
    }
    free(st[i].target);
    st[i].tmp = st[i].target = NULL;
  }
}

/* Renames every staged file over its target, or none. */
static int stage_commit(int n, Staged *st) {
  sigset_t all, old;
  sigfillset(&all);
  sigprocmask(SIG_BLOCK, &all, &old); /* no signal between two renames */
  int done = 0, rc = 0;
  for (int i = 0; i < n && rc == 0; i++) {
    if (!st[i].existed)
      continue;
    /* a hard link to the old file, to put it back should a later rename
       fail; where links are impossible the old file is simply replaced */
    size_t len = strlen(st[i].target) + 24;
    st[i].backup = malloc(len);
    if (!st[i].backup)
      abort();
    for (int k = 0; k < 100; k++) {
      snprintf(st[i].backup, len, "%s.agc-old-%ld-%d", st[i].target,
               (long)getpid(), k);
      if (link(st[i].target, st[i].backup) == 0) {
        track_tmp(st[i].backup);
        break;
      }
      if (errno != EEXIST) {
        free(st[i].backup);
        st[i].backup = NULL;
        break;
      }
    }
  }
  for (; done < n; done++)
    if (rename(st[done].tmp, st[done].target) != 0) {
      fprintf(stderr, "agc: cannot write '%s': %s\n", st[done].path,
              strerror(errno));
      rc = -1;
      break;
    }
  for (int i = 0; i < n; i++) {
    if (rc != 0 && i < done) { /* undo: the old file back, or none */
      if (st[i].backup)
        rename(st[i].backup, st[i].target);
      else if (!st[i].existed)
        unlink(st[i].target);
    }
    if (st[i].backup) {
      unlink(st[i].backup);
      untrack_tmp(st[i].backup);
      free(st[i].backup);
      st[i].backup = NULL;
    }
    if (i < done && rc == 0) {
      untrack_tmp(st[i].tmp);
      free(st[i].tmp);
      st[i].tmp = NULL;
    }
  }
  stage_abort(n, st); /* frees the names (and removes what is left) */
  sigprocmask(SIG_SETMASK, &old, NULL);
  return rc;
}

static int write_fd_all(int fd, const char *p, size_t n) {
  while (n > 0) {
    ssize_t w = write(fd, p, n);
    if (w < 0 && errno == EINTR)
      continue;
    if (w <= 0)
      return -1;
    p += w;
    n -= (size_t)w;
  }
  return 0;
}

/* Writes all files or none; "-" is standard output, written last. */
static int write_files(int n, const char **paths, StrBuf **data) {
  Staged st[8];
  int fds[8], idx[8], k = 0;
  memset(st, 0, sizeof st);
  for (int i = 0; i < n; i++)
    if (strcmp(paths[i], "-") != 0) {
      st[k].path = paths[i];
      idx[k++] = i;
    }
  if (stage_begin(k, st, fds) != 0)
    return -1;
  for (int j = 0; j < k; j++) {
    StrBuf *d = data[idx[j]];
    int bad = write_fd_all(fds[j], d->s ? d->s : "", d->len) != 0 ||
              fsync(fds[j]) != 0;
    int e = errno;
    if (close(fds[j]) != 0 && !bad)
      bad = 1, e = errno;
    fds[j] = -1;
    if (bad) {
      fprintf(stderr, "agc: cannot write '%s': %s\n", st[j].path, strerror(e));
      for (int m = j + 1; m < k; m++)
        close(fds[m]);
      stage_abort(k, st);
      return -1;
    }
  }
  if (stage_commit(k, st) != 0)
    return -1;
  for (int i = 0; i < n; i++)
    if (strcmp(paths[i], "-") == 0)
      fwrite(data[i]->s ? data[i]->s : "", 1, data[i]->len, stdout);
  return 0;
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
      if (!(o->name = NEXT())) return 2;
    } else if (strcmp(a, "--dtype") == 0) {
      const char *v = NEXT();
      if (!v) return 2;
      if (strcmp(v, "f32") == 0) o->f64 = 0;
      else if (strcmp(v, "f64") == 0) o->f64 = 1;
      else return die2("--dtype takes f32 or f64, not '%s'", v);
    } else if (strcmp(a, "--accumulate") == 0 && mode != 2) {
      o->accumulate = 1;
    } else if (strcmp(a, "--no-grad") == 0 && mode == 0) {
      o->no_grad = 1;
    } else if (strcmp(a, "-O0") == 0) {
      o->O0 = 1;
    } else if (strcmp(a, "-O1") == 0) {
      o->O0 = 0;
    } else if (strcmp(a, "--after") == 0 && mode == 0) {
      if (!(o->after = NEXT())) return 2;
    } else if (strcmp(a, "--inputs") == 0 && mode) {
      if (!(o->inputs = NEXT())) return 2;
    } else if (strcmp(a, "--out") == 0 && mode == 1) {
      if (!(o->outdir = NEXT())) return 2;
    } else if (strcmp(a, "--backend") == 0 && mode == 1) {
      if (!(o->backend = NEXT())) return 2;
      if (strcmp(o->backend, "tcc") && strcmp(o->backend, "cc"))
        return die2("--backend takes tcc or cc, not '%s'", o->backend);
    } else if (strcmp(a, "--repeat") == 0 && mode == 1) {
      const char *v = NEXT();
      if (!v) return 2;
      char *end;
      long r = strtol(v, &end, 10);
      if (*end || r < 1 || r > MAX_REPEAT)
        return die2("--repeat takes a count from 1 to 1000000 (MAX_REPEAT), "
                    "not '%s'", v);
      o->repeat = (int)r;
    } else if (strcmp(a, "--target") == 0 && mode != 2) {
      const char *v = NEXT();
      if (!v) return 2;
      if (strcmp(v, "host") == 0) o->target = TARGET_HOST;
      else if (strcmp(v, "mcu") == 0) o->target = TARGET_MCU;
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
    else return die2("--emit takes c, h, ir, plan, mem or dot, not '%s'", o->emit);
    if (!o->out)
      o->out = "-";
  } else if (!o->out) {
    return die2("%s", "no output: give -o OUT.c (or --emit KIND)");
  }
  if (o->header && kind != EMIT_C)
    return die2("%s", "--header goes with C output");
  if (o->after && kind != EMIT_IR && kind != EMIT_DOT)
    return die2("%s", "--after goes with --emit ir or --emit dot");
  if (o->after && !pass_known(o->after))
    return die2("--after: no pass named '%s' (passes: " PASS_LIST ")",
                o->after);
  StrBuf src = {0};
  char err[4200];
  if (read_text_file(o->graph, &src, err, sizeof err) != 0) {
    fprintf(stderr, "agc: %s\n", err);
    sb_free(&src);
    return 1;
  }
  Options opt = {o->f64, o->accumulate, o->no_grad, o->name, 0, o->O0,
                 o->after, MODE_GRAD, o->target};
  Ctx *c = agc_compile(o->graph, src.s ? src.s : "", src.len, &opt);
  StrBuf code = {0}, hdr = {0};
  int rc = 0;
  if (agc_failed(c) || agc_emit(c, kind, o->target, &code) != 0 ||
      (o->header && agc_emit(c, EMIT_H, o->target, &hdr) != 0)) {
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

/* ---- inputs --------------------------------------------------------------- */

static const char *pair_for(Cli *o, const char *name) {
  size_t n = strlen(name);
  for (int i = 0; i < o->npairs; i++)
    if (strncmp(o->pairs[i], name, n) == 0 && o->pairs[i][n] == '=')
      return o->pairs[i] + n + 1;
  return NULL;
}

static void dims_str(int rank, const int64_t *d, char *buf, size_t n) {
  Shape s = {rank, {0}};
  for (int i = 0; i < rank; i++)
    s.d[i] = d[i];
  shape_str(&s, buf, n);
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
    dims_str(rank, d, want_s, sizeof want_s);
    dims_str(a->rank, a->dims, got_s, sizeof got_s);
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

static int cmd_run(Cli *o) {
  if (o->out)
    return die2("%s", "run writes its results with --out DIR, not -o");
  if (o->steps && (o->repeat || o->accumulate))
    return die2("%s", "--steps cannot be combined with --repeat or "
                "--accumulate");
  agc_graph_options opt = {o->f64, o->accumulate, 0, 0, o->name, 0, o->O0, o->target == TARGET_MCU};
  if (o->backend && strcmp(o->backend, "cc") == 0)
    opt.backend = AGC_BACKEND_CC;
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
    if (o->accumulate && agc_graph_is_grad(g, i) && access(path, F_OK) == 0) {
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

static int cmd_check(Cli *o) {
  if (o->out)
    return die2("%s", "check writes no files: -o does not apply");
  agc_graph_options opt = {1, 0, 0, 0, o->name, 1, o->O0, 0};
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

int main(int argc, char **argv) {
  if (argc < 2)
    return die2("%s", "no arguments");
  if (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0) {
    fputs(usage, stdout);
    return 0;
  }
  if (strcmp(argv[1], "--version") == 0) {
    printf("agc %s\n", AGC_VERSION);
    return 0;
  }
  catch_signals();
  Cli o;
  memset(&o, 0, sizeof o);
  o.pairs = calloc((size_t)argc, sizeof *o.pairs);
  int mode = 0, start = 1;
  if (strcmp(argv[1], "run") == 0)
    mode = 1, start = 2;
  else if (strcmp(argv[1], "check") == 0)
    mode = 2, start = 2, o.f64 = 1;
  int rc = parse_cli(argc, argv, start, &o, mode);
  if (rc == 0) {
    if (mode == 2 && !o.f64)
      rc = die2("%s", "check always runs in f64 (--dtype f64)");
    else
      rc = mode == 0 ? cmd_compile(&o) : mode == 1 ? cmd_run(&o) : cmd_check(&o);
  }
  free(o.pairs);
  return rc;
}
