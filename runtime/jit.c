/* jit.c — turning generated C source into callable code.
 *
 * Two backends:
 *  - AGC_BACKEND_TCC compiles in process with libtcc. It runs with
 *    -nostdlib so nothing is resolved from the host behind our back: the
 *    math library, the few libc routines tcc's code generator calls
 *    (memset/memcpy/memmove) and tcc's own runtime (libtcc1.a, for
 *    float <-> unsigned 64-bit conversions) are handed over explicitly.
 *  - AGC_BACKEND_CC runs the system compiler on a temporary file, loads the
 *    resulting shared object and deletes the files again.
 * All libtcc calls live in this file.
 */
#define _GNU_SOURCE /* execvpe */
#include "agc_rt.h"
#include "agc_kernels.h"

#include <dirent.h>
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <libtcc.h>
#include <math.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#ifndef AGC_TCC_LIBDIR
#define AGC_TCC_LIBDIR "/usr/lib/x86_64-linux-gnu/tcc"
#endif

/* Room for the compiler's own words in a message. */
#define DIAG_MAX 300

typedef struct {
  char msg[DIAG_MAX];
  bool have, is_error;
} tcc_diag;

struct agc_module {
  agc_backend backend;
  TCCState *tcc;  /* AGC_BACKEND_TCC: owns the relocated code */
  tcc_diag diag;  /* tcc's error callback writes here, for tcc's lifetime */
  void *dl;       /* AGC_BACKEND_CC: dlopen handle */
};

/* Formats a message into err and flattens it to one line: compiler output
 * and paths may contain newlines or control bytes. */
static void set_err(char *err, size_t errlen, const char *fmt, ...) {
  if (!err || errlen == 0)
    return;
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(err, errlen, fmt, ap);
  va_end(ap);
  for (char *p = err; *p; p++)
    if ((unsigned char)*p < 0x20 || *p == 0x7f)
      *p = ' ';
}

/* ---- libtcc ----------------------------------------------------------- */

/* Host functions generated code may call. Taking their addresses here also
 * makes the linker pull them from libm into the host binary. */
typedef struct {
  const char *name;
  const void *addr;
} host_sym;

#define D(fn) {#fn, (const void *)fn}, {#fn "f", (const void *)fn##f}
static const host_sym host_math[] = {
  D(exp), D(exp2), D(expm1), D(log), D(log2), D(log10), D(log1p),
  D(sin), D(cos), D(tan), D(asin), D(acos), D(atan), D(atan2),
  D(sinh), D(cosh), D(tanh), D(asinh), D(acosh), D(atanh),
  D(sqrt), D(cbrt), D(hypot), D(pow), D(fabs), D(fmod), D(remainder),
  D(erf), D(erfc), D(lgamma), D(tgamma),
  D(fmax), D(fmin), D(fdim), D(fma), D(copysign),
  D(floor), D(ceil), D(round), D(trunc), D(rint), D(nearbyint),
  D(ldexp), D(frexp), D(modf),
};

#ifdef __GLIBC__
/* glibc's <math.h> implements isnan() & co. with these when the compiler
 * (tcc) lacks the builtins, so generated code including it needs them. */
static const host_sym host_glibc[] = {
  D(__isnan), D(__isinf), D(__finite), D(__signbit), D(__fpclassify),
};
#endif
#undef D

/* The kernels generated code calls in JIT mode, compiled ahead of time
 * with the optimizing compiler (agc_kernels.h). On x86-64 the build makes
 * three copies (kernels/variant.h): plain x86-64, AVX2 + FMA and AVX-512;
 * the JIT links the one this CPU runs best (agc_kernel_variant). */
#define KERNELS(X)                                                            \
  X(agc_gemm_f32) X(agc_gemm_mt_f32) X(agc_gemm_mt_f64) X(agc_gemm_f64)       \
  X(agc_tanhf) X(agc_expf) X(agc_matmul_f32) X(agc_row_f32)                   \
  X(agc_im2col_f32) X(agc_pool_f32) X(agc_im2col_f64) X(agc_pool_f64)        \
  X(agc_row_sum_f32) X(agc_row_accd_f32) X(agc_matmul_f64) X(agc_parts)
#ifdef AGC_KERNEL_VARIANTS
#define DECLARE(n) extern __typeof__(n) n##_avx2, n##_avx512;
KERNELS(DECLARE)
#undef DECLARE
#define ROW(n) {#n, {(const void *)n, (const void *)n##_avx2, (const void *)n##_avx512}},
#else
#define ROW(n) {#n, {(const void *)n, NULL, NULL}},
#endif
static const struct {
  const char *name;
  const void *addr[3]; /* generic, avx2, avx512 (NULL: not built) */
} host_kernels[] = {KERNELS(ROW)};
#undef ROW

static const char *const variant_names[3] = {"generic", "avx2", "avx512"};

/* The best copy this CPU runs: 2 (AVX-512), 1 (AVX2 and FMA) or 0. */
static int cpu_level(void) {
#ifdef AGC_KERNEL_VARIANTS
  __builtin_cpu_init();
  if (__builtin_cpu_supports("avx512f"))
    return 2;
  if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma"))
    return 1;
#endif
  return 0;
}

/* The copy of the kernels the JIT links: the best this CPU runs, or the
 * one $AGC_KERNELS names (generic, avx2, avx512), which must be among
 * them; -1 with a message in err otherwise. */
static int kernel_level(char *err, size_t errlen) {
  int best = cpu_level();
  const char *want = getenv("AGC_KERNELS");
  if (!want || !*want)
    return best;
  for (int v = 0; v < 3; v++)
    if (strcmp(want, variant_names[v]) == 0) {
      if (v <= best)
        return v;
      set_err(err, errlen, "AGC_KERNELS=%s: this %s runs only %s%s%s", want,
              host_kernels[0].addr[v] ? "CPU" : "build of agc",
              variant_names[0], best ? ", " : "", best ? variant_names[best] : "");
      return -1;
    }
  set_err(err, errlen, "AGC_KERNELS=%s: not a kernel copy (generic, avx2 or avx512)",
          want);
  return -1;
}

const char *agc_kernel_variant(void) {
  char err[256];
  int v = kernel_level(err, sizeof err);
  return v < 0 ? NULL : variant_names[v];
}

/* tcc emits calls to these for struct copies and aggregate initialisers;
 * abort is referenced by libtcc1's va_arg helper. */
static const host_sym host_libc[] = {
  {"memset", (const void *)memset},
  {"memcpy", (const void *)memcpy},
  {"memmove", (const void *)memmove},
  {"abort", (const void *)abort},
};

/* Keeps the first error; a warning is kept only until an error comes. */
static void tcc_on_error(void *opaque, const char *msg) {
  tcc_diag *d = opaque;
  bool is_error = strstr(msg, "warning:") == NULL;
  if (d->have && (d->is_error || !is_error))
    return;
  /* Errors inside headers come after "In file included from ..." lines;
   * the last line is the one that says what is wrong. */
  const char *nl = strrchr(msg, '\n');
  if (nl && nl[1])
    msg = nl + 1;
  /* Link errors come as "tcc: error: ..."; we add our own prefix. */
  if (strncmp(msg, "tcc: ", 5) == 0)
    msg += 5;
  snprintf(d->msg, sizeof d->msg, "%s", msg);
  d->have = true;
  d->is_error = is_error;
}

static void add_host_syms(TCCState *s, const host_sym *t, size_t n) {
  for (size_t i = 0; i < n; i++)
    tcc_add_symbol(s, t[i].name, t[i].addr);
}

/* The directory holding libtcc1.a and tcc's include/: $AGC_TCC_LIBDIR if
 * set (relocated installs), else the build-time default. */
static const char *tcc_libdir(void) {
  const char *env = getenv("AGC_TCC_LIBDIR");
  return env && *env ? env : AGC_TCC_LIBDIR;
}

static int tcc_build(TCCState *s, const char *source, tcc_diag *d,
                     char *err, size_t errlen) {
  const char *dir = tcc_libdir();
  char libtcc1[4096];
  snprintf(libtcc1, sizeof libtcc1, "%s/libtcc1.a", dir);
  tcc_set_lib_path(s, dir);
  tcc_set_error_func(s, d, tcc_on_error);
  /* a warning in generated code is a bug in agc: never run it */
  tcc_set_options(s, "-nostdlib -Werror");
  if (tcc_set_output_type(s, TCC_OUTPUT_MEMORY) < 0) {
    set_err(err, errlen, "tcc: cannot set up in-memory output");
    return -1;
  }
  if (tcc_compile_string(s, source) < 0) {
    set_err(err, errlen, "tcc: %s", d->have ? d->msg : "compilation failed");
    return -1;
  }
  add_host_syms(s, host_math, sizeof host_math / sizeof host_math[0]);
  add_host_syms(s, host_libc, sizeof host_libc / sizeof host_libc[0]);
  int level = kernel_level(err, errlen);
  if (level < 0)
    return -1;
  for (size_t i = 0; i < sizeof host_kernels / sizeof host_kernels[0]; i++)
    tcc_add_symbol(s, host_kernels[i].name, host_kernels[i].addr[level]);
#ifdef __GLIBC__
  add_host_syms(s, host_glibc, sizeof host_glibc / sizeof host_glibc[0]);
#endif
  /* An archive only contributes members for symbols undefined so far, so
   * libtcc1.a must come after the source. */
  if (access(libtcc1, R_OK) != 0) {
    set_err(err, errlen, "tcc: runtime library %s not found (install the tcc "
            "package or set AGC_TCC_LIBDIR)", libtcc1);
    return -1;
  }
  if (tcc_add_file(s, libtcc1) < 0 || tcc_relocate(s, TCC_RELOCATE_AUTO) < 0) {
    set_err(err, errlen, "tcc: %s", d->have ? d->msg : "linking failed");
    return -1;
  }
  return 0;
}

static agc_module *compile_tcc(const char *source, char *err, size_t errlen) {
  agc_module *m = calloc(1, sizeof *m);
  TCCState *s = m ? tcc_new() : NULL;
  if (!s) {
    set_err(err, errlen, "tcc: out of memory");
    free(m);
    return NULL;
  }
  /* The module outlives every callback tcc can make, so the diagnostics
   * live in it. */
  if (tcc_build(s, source, &m->diag, err, errlen) < 0) {
    tcc_delete(s);
    free(m);
    return NULL;
  }
  m->backend = AGC_BACKEND_TCC;
  m->tcc = s;
  return m;
}

/* ---- system compiler -------------------------------------------------- */

/* Splits $CC (default "cc") on spaces into argv[0..]; returns the count or
 * -1. The words live in *store, which the caller frees. */
static int split_cc(char **store, char **argv, int max) {
  const char *cc = getenv("CC");
  *store = strdup(cc && *cc ? cc : "cc");
  if (!*store)
    return -1;
  int n = 0;
  char *save = NULL;
  for (char *tok = strtok_r(*store, " \t", &save); tok;
       tok = strtok_r(NULL, " \t", &save)) {
    if (n == max)
      return -1;
    argv[n++] = tok;
  }
  return n > 0 ? n : -1;
}

/* The signals that end a program (^C, kill, a closed terminal). While the
 * system compiler runs they are held (blocked), so that the compiler's
 * process group can be killed and the temporary directory removed first;
 * then they are delivered as usual. */
static void stop_signals(sigset_t *set) {
  sigemptyset(set);
  sigaddset(set, SIGINT);
  sigaddset(set, SIGTERM);
  sigaddset(set, SIGHUP);
}

static bool stop_pending(void) {
  sigset_t pend;
  if (sigpending(&pend) != 0)
    return false;
  return sigismember(&pend, SIGINT) == 1 || sigismember(&pend, SIGTERM) == 1 ||
         sigismember(&pend, SIGHUP) == 1;
}

/* Reads everything from fd into out (truncated to cap-1 bytes). If a held
 * stop signal arrives meanwhile, kills process group pgid (the compiler
 * and the cc1, as, ld it started) and returns true. */
static bool drain(int fd, char *out, size_t cap, pid_t pgid) {
  size_t n = 0;
  char buf[4096];
  bool stopped = false;
  for (;;) {
    if (!stopped && stop_pending()) {
      kill(-pgid, SIGKILL);
      stopped = true;
    }
    struct pollfd p = {fd, POLLIN, 0};
    int pr = poll(&p, 1, 100);
    if (pr == 0 || (pr < 0 && errno == EINTR))
      continue;
    ssize_t r = read(fd, buf, sizeof buf);
    if (r < 0 && errno == EINTR)
      continue;
    if (r <= 0)
      break;
    size_t k = (size_t)r < cap - 1 - n ? (size_t)r : cap - 1 - n;
    memcpy(out + n, buf, k);
    n += k;
  }
  out[n] = '\0';
  return stopped;
}

static void write_str(int fd, const char *s) {
  ssize_t r = write(fd, s, strlen(s));
  (void)r;
}

/* Runs argv (no shell), collecting stdout+stderr into out. Returns the exit
 * status, or -1 if the process could not be started or died of a signal.
 * The child runs in a process group of its own with the signal mask the
 * caller had (child_mask). */
static int run_capture(char *const argv[], char *const envp[], char *out,
                       size_t cap, const sigset_t *child_mask) {
  int pfd[2];
  out[0] = '\0';
  if (pipe(pfd) != 0)
    return -1;
  pid_t pid = fork();
  if (pid < 0) {
    close(pfd[0]);
    close(pfd[1]);
    return -1;
  }
  if (pid == 0) {
    setpgid(0, 0);
    sigprocmask(SIG_SETMASK, child_mask, NULL);
    int devnull = open("/dev/null", O_RDONLY);
    if (devnull >= 0)
      dup2(devnull, 0);
    dup2(pfd[1], 1);
    dup2(pfd[1], 2);
    execvpe(argv[0], argv, envp);
    /* Only write() between fork and _exit: the parent may have threads. */
    const char *why = strerror(errno);
    write_str(2, "cannot run '");
    write_str(2, argv[0]);
    write_str(2, "': ");
    write_str(2, why);
    write_str(2, "\n");
    _exit(127);
  }
  setpgid(pid, pid); /* also here: whichever runs first */
  close(pfd[1]);
  bool stopped = drain(pfd[0], out, cap, pid);
  close(pfd[0]);
  if (stopped)
    kill(-pid, SIGKILL); /* what the group started after the first kill */
  int status;
  while (waitpid(pid, &status, 0) < 0)
    if (errno != EINTR)
      return -1;
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

/* Whether line [p, end) contains s. */
static bool line_has(const char *p, const char *end, const char *s) {
  size_t k = strlen(s);
  for (; p + k <= end; p++)
    if (memcmp(p, s, k) == 0)
      return true;
  return false;
}

/* Picks the compiler line worth showing: the first mentioning "error" or
 * "undefined" (but not collect2's "ld returned 1", whose cause is the line
 * before), else the first non-empty one. The temp dir prefix is cut from paths. */
static void summarize(const char *out, const char *dir, char *dst, size_t cap) {
  const char *pick = NULL, *first = NULL;
  for (const char *p = out; *p && !pick;) {
    const char *end = strchr(p, '\n');
    if (!end)
      end = p + strlen(p);
    if (end > p && !first)
      first = p;
    if ((line_has(p, end, "error") || line_has(p, end, "undefined")) &&
        strncmp(p, "collect2", 8) != 0)
      pick = p;
    p = *end ? end + 1 : end;
  }
  const char *line = pick ? pick : first ? first : "";
  size_t dl = strlen(dir), n = 0;
  while (*line && *line != '\n' && n + 1 < cap) {
    if (strncmp(line, dir, dl) == 0 && line[dl] == '/')
      line += dl + 1;
    else
      dst[n++] = *line++;
  }
  dst[n] = '\0';
}

static bool write_file(const char *path, const char *text) {
  FILE *f = fopen(path, "w");
  if (!f)
    return false;
  size_t n = strlen(text);
  bool ok = fwrite(text, 1, n, f) == n;
  return (fclose(f) == 0) && ok;
}

/* Optimization level by source size. The emitter puts a whole graph into
 * one function, and gcc has passes that are superlinear in function size.
 * gcc 12.2 -ftime-report on a chain of N element-wise statements on [16]
 * tensors (bench/jit_latency.c), emitter with one loop per statement
 * (N=1000 is 231 KB of C):
 *  - -O3: N=100 2.9 s, N=300 13 s, N=1000 80-124 s. At N=1000 RTL PRE
 *    (-fgcse) takes 57% and "load CSE after reload" (-fgcse-after-reload)
 *    18%; both grow ~n^2.5. With those off, -O3 still needs 30 s: complete
 *    peeling of the 16-trip loops makes the function 4x bigger and tree PRE
 *    (-ftree-partial-pre) and alias walking take over.
 *  - -O1: N=1000 3.2 s, N=3000 8 s, N=10000 50-70 s, of which "df reaching
 *    defs" (RTL loop-invariant motion) is 11 s and ~n^2.5; without it
 *    -fno-move-loop-invariants gives 6.3 s at N=3000 and 34 s at N=10000.
 * With the fused-loop emitter (one loop body of N statements) -O3 is 3.2 s
 * at N=1000 (174 KB) and 10.6 s at N=3000; -O1 -fno-move-loop-invariants is
 * 0.9 s and 5.6 s, but 94 s at N=10000 (1.8 MB), now in register allocation
 * (IRA + LRA hard reg assignment); -O0 stays linear: 1.0 s / 4.3 s.
 * So sources up to CC_O3_MAX_BYTES (the MLP is 10 KB) keep -O3 -march=native
 * as before, sources up to CC_O1_MAX_BYTES get -O1 -fno-move-loop-invariants
 * and bigger ones -O0: graph text -> callable stays at seconds, not minutes. */
#define CC_O3_MAX_BYTES ((size_t)100 * 1024)
#define CC_O1_MAX_BYTES ((size_t)512 * 1024)

/* Flags a compiler may not know: dropped (and the compile retried) when a
 * failed compile's output mentions them. big_only flags are passed only for
 * sources over CC_O3_MAX_BYTES (a no-op at -O0). */
static const struct {
  const char *flag, *needle;
  bool big_only;
} optional_flags[] = {
  {"-march=native", "march", false},
  /* fused multiply-add where the target has it: the kernels need it */
  {"-ffp-contract=fast", "fp-contract", false},
  /* lets gcc if-convert (and so vectorize) the clamps in NAME_tanhf and
     NAME_expf: the comparisons may raise FP exception flags, which nothing
     reads. (gcc 12.2 at -O3 with AVX2 sums a load made conditional by
     if-conversion, a masked load, wrongly in loop nests: the generated C
     has none, as where() picks bits by a mask; target.c, where_blend) */
  {"-fno-trapping-math", "trapping-math", false},
  /* quadratic in function size in gcc; clang rejects it */
  {"-fno-move-loop-invariants", "move-loop-invariants", true},
};
#define N_OPTIONAL (sizeof optional_flags / sizeof optional_flags[0])

/* Fills argv after the $CC words; returns the argument count. */
static int cc_args(char **argv, int n, const bool *use, size_t bytes,
                   const char *src, const char *so) {
  argv[n++] = "-std=c99";
  /* a call without a prototype returns int: never run such code */
  argv[n++] = "-Werror=implicit-function-declaration";
  argv[n++] = bytes <= CC_O3_MAX_BYTES   ? "-O3"
              : bytes <= CC_O1_MAX_BYTES ? "-O1"
                                         : "-O0";
  for (size_t k = 0; k < N_OPTIONAL; k++)
    if (use[k])
      argv[n++] = (char *)optional_flags[k].flag;
  argv[n++] = "-fPIC";
  argv[n++] = "-pthread"; /* --threads: the product's threads (gemm_mt.c) */
  argv[n++] = "-shared";
  argv[n++] = "-o";
  argv[n++] = (char *)so;
  argv[n++] = (char *)src;
  argv[n++] = "-lm";
  argv[n] = NULL;
  return n;
}

/* Runs the compiler, retrying without optional flags it rejected. Returns
 * the exit status (0 = success); the compiler's output is left in out. */
static int cc_compile(const char *src, const char *so, size_t bytes,
                      char *out, size_t cap, const sigset_t *child_mask,
                      char *const envp[]) {
  bool big = bytes > CC_O3_MAX_BYTES;
  char *store;
  char *argv[64];
  int base = split_cc(&store, argv, 40);
  if (base < 0) {
    free(store);
    snprintf(out, cap, "cannot parse $CC (at most 40 words)");
    return -1;
  }
  bool use[N_OPTIONAL]; /* big_only flags only for big sources */
  for (size_t k = 0; k < N_OPTIONAL; k++)
    use[k] = big || !optional_flags[k].big_only;
  int rc;
  for (;;) {
    cc_args(argv, base, use, bytes, src, so);
    rc = run_capture(argv, envp, out, cap, child_mask);
    if (stop_pending())
      break; /* no retry: the program is being stopped */
    bool retry = false;
    for (size_t k = 0; rc != 0 && k < N_OPTIONAL; k++)
      if (use[k] && strstr(out, optional_flags[k].needle)) {
        use[k] = false;
        retry = true;
      }
    if (!retry)
      break;
  }
  free(store);
  return rc;
}

/* Removes the temp dir and whatever the compiler left in it. */
static void remove_tree(const char *dir) {
  DIR *d = opendir(dir);
  if (d) {
    struct dirent *e;
    char path[4096];
    while ((e = readdir(d)) != NULL) {
      if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
        continue;
      int n = snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
      if (n > 0 && (size_t)n < sizeof path)
        unlink(path);
    }
    closedir(d);
  }
  rmdir(dir);
}

static agc_module *load_so(const char *dir, const char *so, char *err,
                           size_t errlen) {
  void *h = dlopen(so, RTLD_NOW | RTLD_LOCAL);
  if (!h) {
    /* Typically an undefined symbol; the temp path is noise. */
    const char *why = dlerror();
    char line[DIAG_MAX];
    summarize(why ? why : "unknown error", dir, line, sizeof line);
    set_err(err, errlen, "cc: cannot load the compiled module: %s", line);
    return NULL;
  }
  agc_module *m = calloc(1, sizeof *m);
  if (!m) {
    dlclose(h);
    set_err(err, errlen, "cc: out of memory");
    return NULL;
  }
  m->backend = AGC_BACKEND_CC;
  m->dl = h;
  return m;
}

static agc_module *compile_cc(const char *source, char *err, size_t errlen) {
  const char *tmpdir = getenv("TMPDIR");
  char dir[4096], src[4200], so[4200];
  snprintf(dir, sizeof dir, "%s/agc-XXXXXX", tmpdir && *tmpdir ? tmpdir : "/tmp");
  sigset_t stop, old;
  stop_signals(&stop);
  sigprocmask(SIG_BLOCK, &stop, &old); /* held until the directory is gone */
  if (!mkdtemp(dir)) {
    sigprocmask(SIG_SETMASK, &old, NULL);
    set_err(err, errlen, "cc: cannot create a temporary directory in %s: %s",
            tmpdir && *tmpdir ? tmpdir : "/tmp", strerror(errno));
    return NULL;
  }
  snprintf(src, sizeof src, "%s/mod.c", dir);
  snprintf(so, sizeof so, "%s/mod.so", dir);
  agc_module *m = NULL;
  char *out = malloc(8192);
  if (!out) {
    set_err(err, errlen, "cc: out of memory");
  } else if (!write_file(src, source)) {
    set_err(err, errlen, "cc: cannot write %s: %s", src, strerror(errno));
  } else {
    /* the compiler's own temporaries (cc1's .s, as's .o) go into our
       directory too, so that nothing outlives it, even a killed compile */
    extern char **environ;
    size_t nenv = 0;
    while (environ[nenv])
      nenv++;
    char **envp = calloc(nenv + 2, sizeof *envp);
    char *tmpvar = malloc(strlen(dir) + 8);
    int rc = -1;
    if (envp && tmpvar) {
      size_t k = 0;
      for (size_t i = 0; i < nenv; i++)
        if (strncmp(environ[i], "TMPDIR=", 7) != 0)
          envp[k++] = environ[i];
      sprintf(tmpvar, "TMPDIR=%s", dir);
      envp[k++] = tmpvar;
      envp[k] = NULL;
      rc = cc_compile(src, so, strlen(source), out, 8192, &old, envp);
    } else {
      snprintf(out, 8192, "out of memory");
    }
    free(envp);
    free(tmpvar);
    char line[DIAG_MAX];
    summarize(out, dir, line, sizeof line);
    if (rc != 0) {
      set_err(err, errlen, "cc: %s", *line ? line : "compiler failed");
    } else {
      m = load_so(dir, so, err, errlen);
    }
  }
  free(out);
  /* The mapping stays valid after the files are gone. */
  remove_tree(dir);
  if (m && stop_pending()) {
    agc_module_free(m);
    m = NULL;
    set_err(err, errlen, "cc: interrupted");
  }
  sigprocmask(SIG_SETMASK, &old, NULL); /* a held signal is delivered now */
  return m;
}

/* ---- public ----------------------------------------------------------- */

agc_module *agc_module_compile(const char *source, agc_backend backend,
                               char *err, size_t errlen) {
  if (!source) {
    set_err(err, errlen, "no source given");
    return NULL;
  }
  switch (backend) {
  case AGC_BACKEND_TCC: return compile_tcc(source, err, errlen);
  case AGC_BACKEND_CC: return compile_cc(source, err, errlen);
  }
  set_err(err, errlen, "unknown backend %d", (int)backend);
  return NULL;
}

void *agc_module_symbol(agc_module *m, const char *name) {
  if (!m || !name)
    return NULL;
  if (m->backend == AGC_BACKEND_TCC)
    return tcc_get_symbol(m->tcc, name);
  return dlsym(m->dl, name);
}

void agc_module_free(agc_module *m) {
  if (!m)
    return;
  if (m->tcc)
    tcc_delete(m->tcc);
  if (m->dl)
    dlclose(m->dl);
  free(m);
}
