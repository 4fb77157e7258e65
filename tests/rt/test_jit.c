/* Tests for runtime/jit.c: both backends compile, run and report errors;
 * the tcc backend resolves the math library and its own runtime helpers. */
#include "agc.h" /* ROW_* */
#include "agc_kernels.h"
#include "agc_rt.h"

#include <check.h>
#include <dirent.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <pthread.h>
#include <stdint.h>

static char err[512];

/* The matrix kernel at both widths, built here with the same flags whatever
 * the machine (the compiler splits the vectors if it must): 64-byte GNU
 * vectors (AVX-512: panels of 32 floats or 16 doubles) must give the bytes
 * of 32-byte ones (AVX2) (test_gemm_widths). */
#define AGC_VEC_BYTES 32
#define AGC_T float
#define AGC_GEMM gemm_narrow_f32
#include "kernels/gemm.c"
#undef AGC_T
#undef AGC_GEMM
#define AGC_T double
#define AGC_GEMM gemm_narrow_f64
#include "kernels/gemm.c"
#undef AGC_T
#undef AGC_GEMM
#undef AGC_VEC_BYTES
#define AGC_VEC_BYTES 64
#define AGC_T float
#define AGC_GEMM gemm_wide_f32
#include "kernels/gemm.c"
#undef AGC_T
#undef AGC_GEMM
#define AGC_T double
#define AGC_GEMM gemm_wide_f64
#include "kernels/gemm.c"
#undef AGC_T
#undef AGC_GEMM
#undef AGC_VEC_BYTES
void gemm_narrow_f32(long M, long N, long K, const float *A, long sai,
                     long sak, const float *B, long sbk, long sbj, float *C,
                     int acc, float *pack);
void gemm_narrow_f64(long M, long N, long K, const double *A, long sai,
                     long sak, const double *B, long sbk, long sbj, double *C,
                     int acc, double *pack);
void gemm_wide_f32(long M, long N, long K, const float *A, long sai, long sak,
                   const float *B, long sbk, long sbj, float *C, int acc,
                   float *pack);
void gemm_wide_f64(long M, long N, long K, const double *A, long sai,
                   long sak, const double *B, long sbk, long sbj, double *C,
                   int acc, double *pack);

typedef double (*fn_dd)(double);
typedef float (*fn_ff)(float);
typedef double (*fn_ddd)(double, double);
typedef float (*fn_fff)(float, float);

static const char add_src[] =
  "double add(double a, double b) { return a + b; }\n"
  "int counter(void) { static int n; return ++n; }\n";

static void check_add(agc_backend b) {
  agc_module *m = agc_module_compile(add_src, b, err, sizeof err);
  ck_assert_msg(m != NULL, "%s", err);
  fn_ddd add = (fn_ddd)agc_module_symbol(m, "add");
  int (*counter)(void) = (int (*)(void))agc_module_symbol(m, "counter");
  ck_assert_ptr_nonnull(add);
  ck_assert_ptr_nonnull(counter);
  ck_assert_double_eq(add(2.5, 0.25), 2.75);
  ck_assert_int_eq(counter(), 1);
  ck_assert_int_eq(counter(), 2); /* module data is writable and persists */
  ck_assert_ptr_null(agc_module_symbol(m, "no_such_symbol"));
  ck_assert_ptr_null(agc_module_symbol(m, NULL));
  agc_module_free(m);
}

/* Headers the generated code may include, plus tcc's runtime helpers for
 * float <-> unsigned 64-bit conversions and the memset/memmove calls it
 * emits for aggregate initialisation and copies. */
static const char runtime_src[] =
  "#include <stddef.h>\n"
  "#include <stdint.h>\n"
  "uint64_t d2u(double x) { return (uint64_t)x; }\n"
  "double u2d(uint64_t u) { return (double)u; }\n"
  "uint64_t f2u(float x) { return (uint64_t)x; }\n"
  "float u2f(uint64_t u) { return (float)u; }\n"
  "int64_t d2i(double x) { return (int64_t)x; }\n"
  "size_t szof(void) { return sizeof(int32_t) + offsetof(struct { char c; double d; }, d); }\n"
  "struct big { double v[32]; };\n"
  "double agg(double x) {\n"
  "  double zero[64] = {0};\n"
  "  struct big a = {{x, 2 * x}}, b;\n"
  "  b = a;\n"
  "  return zero[63] + b.v[0] + b.v[1] + b.v[31];\n"
  "}\n";

static void check_runtime(agc_backend b) {
  agc_module *m = agc_module_compile(runtime_src, b, err, sizeof err);
  ck_assert_msg(m != NULL, "%s", err);
  uint64_t (*d2u)(double) = (uint64_t (*)(double))agc_module_symbol(m, "d2u");
  double (*u2d)(uint64_t) = (double (*)(uint64_t))agc_module_symbol(m, "u2d");
  uint64_t (*f2u)(float) = (uint64_t (*)(float))agc_module_symbol(m, "f2u");
  float (*u2f)(uint64_t) = (float (*)(uint64_t))agc_module_symbol(m, "u2f");
  int64_t (*d2i)(double) = (int64_t (*)(double))agc_module_symbol(m, "d2i");
  size_t (*szof)(void) = (size_t (*)(void))agc_module_symbol(m, "szof");
  fn_dd agg = (fn_dd)agc_module_symbol(m, "agg");
  ck_assert(d2u && u2d && f2u && u2f && d2i && szof && agg);
  /* Values above INT64_MAX take the unsigned-only path. */
  ck_assert_uint_eq(d2u(1.8e19), 18000000000000000000ull);
  ck_assert_uint_eq(d2u(3.0), 3);
  ck_assert_double_eq(u2d(18000000000000000000ull), 1.8e19);
  ck_assert_double_eq(u2d(UINT64_MAX), 18446744073709551616.0);
  ck_assert_uint_eq(f2u(1.5e19f), (uint64_t)1.5e19f);
  ck_assert_float_eq(u2f(18000000000000000000ull), (float)18000000000000000000ull);
  ck_assert_int_eq(d2i(-7.9), -7);
  ck_assert_uint_eq(szof(), 4 + 8);
  ck_assert_double_eq(agg(1.5), 4.5);
  agc_module_free(m);
}

/* Every host math function, double and float, called through generated
 * code must give exactly what the host's libm gives. */
#define UNARY(X) X(exp) X(exp2) X(expm1) X(log) X(log2) X(log10) X(log1p) \
  X(sin) X(cos) X(tan) X(asin) X(acos) X(atan) X(sinh) X(cosh) X(tanh) \
  X(asinh) X(acosh) X(atanh) X(sqrt) X(cbrt) X(fabs) X(erf) X(erfc) \
  X(lgamma) X(tgamma) X(floor) X(ceil) X(round) X(trunc) X(rint) X(nearbyint)
#define BINARY(X) X(pow) X(atan2) X(fmax) X(fmin) X(fmod) X(hypot) \
  X(copysign) X(fdim) X(remainder)

#define SRC_U(f) "double t_" #f "(double x) { return " #f "(x); }\n" \
  "float tf_" #f "(float x) { return " #f "f(x); }\n"
#define SRC_B(f) "double t_" #f "(double x, double y) { return " #f "(x, y); }\n" \
  "float tf_" #f "(float x, float y) { return " #f "f(x, y); }\n"
#define DECL_U(f) "double " #f "(double); float " #f "f(float);\n"
#define DECL_B(f) "double " #f "(double, double); float " #f "f(float, float);\n"

/* Like the compiler's output: its own prototypes, no <math.h>. */
static const char math_src[] =
  UNARY(DECL_U) BINARY(DECL_B)
  "double fma(double, double, double); float fmaf(float, float, float);\n"
  UNARY(SRC_U) BINARY(SRC_B)
  "double t_fma(double a, double b, double c) { return fma(a, b, c); }\n"
  "float tf_fma(float a, float b, float c) { return fmaf(a, b, c); }\n"
  /* A small "generated" kernel mixing float math. */
  "float gelu(float x) { return 0.5f * x * (1.0f + erff(x * 0.70710678f)); }\n"
  "float mix(float x) { return expf(x) + tanhf(x) + log1pf(x) + powf(x, 2.5f); }\n";

static void check_math(agc_backend b) {
  agc_module *m = agc_module_compile(math_src, b, err, sizeof err);
  ck_assert_msg(m != NULL, "%s", err);
  /* Inside every function's domain (acosh gets x + 1). Volatile, so the
   * host compiler cannot constant-fold its own side of the comparison with
   * a libm of its own (clang does, and differs in the last ulp). */
  volatile double xs[] = {0.3, 0.75, 0.9}, ys[] = {1.7, -0.6, 0.6};
  char name[64];
#define CHECK_U(fn)                                                   \
  {                                                                   \
    snprintf(name, sizeof name, "t_%s", #fn);                         \
    fn_dd g = (fn_dd)agc_module_symbol(m, name);                      \
    snprintf(name, sizeof name, "tf_%s", #fn);                        \
    fn_ff gf = (fn_ff)agc_module_symbol(m, name);                     \
    ck_assert_msg(g && gf, "%s missing", #fn);                        \
    for (int i = 0; i < 3; i++) {                                     \
      double x = strcmp(#fn, "acosh") == 0 ? xs[i] + 1 : xs[i];       \
      ck_assert_msg(g(x) == fn(x), "%s(%g): %.17g vs %.17g", #fn, x,  \
                    g(x), fn(x));                                     \
      ck_assert_msg(gf((float)x) == fn##f((float)x), "%sf(%g)", #fn, \
                    x);                                               \
    }                                                                 \
  }
#define CHECK_B(fn)                                                   \
  {                                                                   \
    snprintf(name, sizeof name, "t_%s", #fn);                         \
    fn_ddd g = (fn_ddd)agc_module_symbol(m, name);                    \
    snprintf(name, sizeof name, "tf_%s", #fn);                        \
    fn_fff gf = (fn_fff)agc_module_symbol(m, name);                   \
    ck_assert_msg(g && gf, "%s missing", #fn);                        \
    ck_assert_msg(g(ys[0], ys[1]) == fn(ys[0], ys[1]), "%s", #fn);    \
    ck_assert_msg(gf((float)ys[0], (float)ys[2]) ==                   \
                  fn##f((float)ys[0], (float)ys[2]), "%sf", #fn);     \
  }
  UNARY(CHECK_U)
  BINARY(CHECK_B)
  double (*tfma)(double, double, double) =
    (double (*)(double, double, double))agc_module_symbol(m, "t_fma");
  ck_assert_double_eq(tfma(xs[0], 10.0, -1.0), fma(xs[0], 10.0, -1.0));
  fn_ff gelu = (fn_ff)agc_module_symbol(m, "gelu");
  fn_ff mix = (fn_ff)agc_module_symbol(m, "mix");
  ck_assert_float_eq_tol(gelu(1.0f), 0.841344746f, 1e-6f);
  ck_assert_float_eq_tol(mix(0.5f), expf(0.5f) + tanhf(0.5f) + log1pf(0.5f) +
                         powf(0.5f, 2.5f), 1e-6f);
  agc_module_free(m);
#undef CHECK_U
#undef CHECK_B
}

/* ---- tcc --------------------------------------------------------------- */

START_TEST(test_tcc_basic) { check_add(AGC_BACKEND_TCC); }
END_TEST

START_TEST(test_tcc_runtime_helpers) { check_runtime(AGC_BACKEND_TCC); }
END_TEST

START_TEST(test_tcc_math) { check_math(AGC_BACKEND_TCC); }
END_TEST

START_TEST(test_tcc_errors) {
  err[0] = '\0';
  agc_module *m = agc_module_compile("double f(double x) {\n  return x +;\n}\n",
                                     AGC_BACKEND_TCC, err, sizeof err);
  ck_assert_ptr_null(m);
  /* tcc's own words, with its location of the error. */
  ck_assert_msg(strncmp(err, "tcc: <string>:", 14) == 0 && strstr(err, ": error: "),
                "%s", err);
  ck_assert_ptr_null(strchr(err, '\n'));

  m = agc_module_compile("double nosuch(double);\n"
                         "double f(double x) { return nosuch(x); }\n",
                         AGC_BACKEND_TCC, err, sizeof err);
  ck_assert_ptr_null(m);
  ck_assert_msg(strcmp(err, "tcc: error: undefined symbol 'nosuch'") == 0, "%s", err);

  /* Generated code is warning-free, so a warning is an error: a call
   * without a prototype would otherwise run with an int result (a garbage
   * sum(exp(p)) on f32 once came from that). */
  m = agc_module_compile("#warning careful\nint f(void) { return 1; }\n",
                         AGC_BACKEND_TCC, err, sizeof err);
  ck_assert_ptr_null(m);
  m = agc_module_compile("double f(double x) { return g(x); }\n",
                         AGC_BACKEND_TCC, err, sizeof err);
  ck_assert_ptr_null(m);
  ck_assert_msg(strstr(err, "implicit declaration of function 'g'") != NULL,
                "%s", err);
  m = agc_module_compile("double f(double x) { return g(x); }\n",
                         AGC_BACKEND_CC, err, sizeof err);
  ck_assert_ptr_null(m);
  /* the first error is the one reported */
  m = agc_module_compile("#warning careful\nint f(void) { return }\n",
                         AGC_BACKEND_TCC, err, sizeof err);
  ck_assert_ptr_null(m);
  ck_assert_msg(strstr(err, "error: #warning careful") != NULL, "%s", err);

  ck_assert_ptr_null(agc_module_compile(NULL, AGC_BACKEND_TCC, err, sizeof err));
  ck_assert_ptr_null(agc_module_compile("int x;", (agc_backend)9, err, sizeof err));
  ck_assert_ptr_nonnull(strstr(err, "backend"));
  agc_module_free(NULL);
  ck_assert_ptr_null(agc_module_symbol(NULL, "f"));
}
END_TEST

/* Generated code should declare its own prototypes, but <math.h> works
 * too: glibc's isnan() & co. become calls to __isnan etc. under tcc. */
START_TEST(test_tcc_math_h) {
  agc_module *m = agc_module_compile(
    "#include <math.h>\n"
    "int cls(double x) { return (isnan(x) ? 1 : 0) + (isinf(x) ? 2 : 0) +\n"
    "  (isfinite(x) ? 4 : 0) + (signbit(x) ? 8 : 0); }\n"
    "float e(float x) { return expf(x) + sqrtf(x); }\n",
    AGC_BACKEND_TCC, err, sizeof err);
  ck_assert_msg(m != NULL, "%s", err);
  int (*cls)(double) = (int (*)(double))agc_module_symbol(m, "cls");
  fn_ff e = (fn_ff)agc_module_symbol(m, "e");
  ck_assert_int_eq(cls(NAN), 1);
  ck_assert_int_eq(cls(-INFINITY), 2 + 8);
  ck_assert_int_eq(cls(-1.0), 4 + 8);
  ck_assert_int_eq(cls(0.5), 4);
  ck_assert_float_eq(e(4.0f), expf(4.0f) + 2.0f);
  agc_module_free(m);

  /* An error inside a header is reported by its own line. */
  m = agc_module_compile("#include <no_such_header_agc.h>\n", AGC_BACKEND_TCC, err,
                         sizeof err);
  ck_assert_ptr_null(m);
  ck_assert_msg(strstr(err, "no_such_header_agc.h") && strstr(err, "error"), "%s", err);
}
END_TEST

/* Many modules in one process, several alive at once, freed out of order. */
START_TEST(test_tcc_many_modules) {
  enum { N = 8 };
  agc_module *mods[N];
  for (int round = 0; round < 5; round++) {
    for (int i = 0; i < N; i++) {
      char src[128];
      snprintf(src, sizeof src, "float expf(float);\n"
               "double k(double x) { return x * %d.0 + expf(0.0f); }\n", i + round);
      mods[i] = agc_module_compile(src, AGC_BACKEND_TCC, err, sizeof err);
      ck_assert_msg(mods[i] != NULL, "%s", err);
    }
    for (int i = N - 1; i >= 0; i -= 2) {
      fn_dd k = (fn_dd)agc_module_symbol(mods[i], "k");
      ck_assert_double_eq(k(2.0), 2.0 * (i + round) + 1.0);
      agc_module_free(mods[i]);
    }
    for (int i = 0; i < N; i += 2) {
      fn_dd k = (fn_dd)agc_module_symbol(mods[i], "k");
      ck_assert_double_eq(k(2.0), 2.0 * (i + round) + 1.0);
      agc_module_free(mods[i]);
    }
  }
}
END_TEST

START_TEST(test_tcc_missing_libdir) {
  setenv("AGC_TCC_LIBDIR", "/nonexistent/tcc", 1);
  agc_module *m = agc_module_compile(add_src, AGC_BACKEND_TCC, err, sizeof err);
  unsetenv("AGC_TCC_LIBDIR");
  ck_assert_ptr_null(m);
  ck_assert_msg(strstr(err, "/nonexistent/tcc/libtcc1.a") != NULL, "%s", err);
}
END_TEST

/* ---- system compiler --------------------------------------------------- */

static char cc_tmp[256];
static char *saved_tmpdir, *saved_cc;

static char *dup_env(const char *name) {
  const char *v = getenv(name);
  return v ? strdup(v) : NULL;
}

static void restore_env(const char *name, char *v) {
  if (v)
    setenv(name, v, 1);
  else
    unsetenv(name);
  free(v);
}

/* Each cc test gets its own $TMPDIR so leftovers can be counted. */
static void cc_setup(void) {
  saved_tmpdir = dup_env("TMPDIR");
  saved_cc = dup_env("CC");
  const char *t = saved_tmpdir && *saved_tmpdir ? saved_tmpdir : "/tmp";
  snprintf(cc_tmp, sizeof cc_tmp, "%s/agc-jit-test-XXXXXX", t);
  ck_assert_ptr_nonnull(mkdtemp(cc_tmp));
  setenv("TMPDIR", cc_tmp, 1);
}

static int count_entries(const char *dir) {
  DIR *d = opendir(dir);
  ck_assert_ptr_nonnull(d);
  int n = 0;
  struct dirent *e;
  while ((e = readdir(d)) != NULL)
    n += strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0;
  closedir(d);
  return n;
}

static void cc_teardown(void) {
  char p[512];
  snprintf(p, sizeof p, "%s/fakecc", cc_tmp);
  unlink(p);
  rmdir(cc_tmp);
  restore_env("TMPDIR", saved_tmpdir);
  restore_env("CC", saved_cc);
}

START_TEST(test_cc_basic) {
  check_add(AGC_BACKEND_CC);
  ck_assert_int_eq(count_entries(cc_tmp), 0);
}
END_TEST

START_TEST(test_cc_runtime_and_math) {
  check_runtime(AGC_BACKEND_CC);
  check_math(AGC_BACKEND_CC);
  ck_assert_int_eq(count_entries(cc_tmp), 0);
}
END_TEST

START_TEST(test_cc_errors) {
  agc_module *m = agc_module_compile("double f(double x) {\n  return x +;\n}\n",
                                     AGC_BACKEND_CC, err, sizeof err);
  ck_assert_ptr_null(m);
  /* The compiler's own line, with the temp dir cut from the file name. */
  ck_assert_msg(strncmp(err, "cc: mod.c:", 10) == 0 && strstr(err, "error") != NULL,
                "%s", err);
  ck_assert_ptr_null(strchr(err, '\n'));
  ck_assert_ptr_null(strstr(err, cc_tmp));
  ck_assert_int_eq(count_entries(cc_tmp), 0);

  /* A shared object may link with undefined symbols; loading it fails. */
  m = agc_module_compile("double nosuch(double);\n"
                         "double f(double x) { return nosuch(x); }\n",
                         AGC_BACKEND_CC, err, sizeof err);
  ck_assert_ptr_null(m);
  ck_assert_msg(strstr(err, "undefined symbol: nosuch") != NULL, "%s", err);
  ck_assert_ptr_null(strstr(err, cc_tmp));
  ck_assert_int_eq(count_entries(cc_tmp), 0);

  setenv("CC", "/nonexistent/bin/cc", 1);
  m = agc_module_compile(add_src, AGC_BACKEND_CC, err, sizeof err);
  ck_assert_ptr_null(m);
  ck_assert_msg(strstr(err, "cannot run '/nonexistent/bin/cc'") != NULL, "%s", err);
  ck_assert_int_eq(count_entries(cc_tmp), 0);
}
END_TEST

/* $CC may carry arguments; it is split on spaces, no shell involved. */
START_TEST(test_cc_with_arguments) {
  setenv("CC", "cc  -DSCALE=3 -DOFFSET=(1)", 1);
  agc_module *m = agc_module_compile("double f(double x) { return x * SCALE + OFFSET; }\n",
                                     AGC_BACKEND_CC, err, sizeof err);
  ck_assert_msg(m != NULL, "%s", err);
  fn_dd f = (fn_dd)agc_module_symbol(m, "f");
  ck_assert_double_eq(f(2.0), 7.0);
  agc_module_free(m);
}
END_TEST

/* A compiler that rejects -march=native still works: the flag is dropped. */
START_TEST(test_cc_without_march_native) {
  char fake[512];
  snprintf(fake, sizeof fake, "%s/fakecc", cc_tmp);
  FILE *f = fopen(fake, "w");
  ck_assert_ptr_nonnull(f);
  fputs("#!/bin/sh\n"
        "for a in \"$@\"; do\n"
        "  if [ \"$a\" = -march=native ]; then\n"
        "    echo \"fakecc: error: unsupported option '-march=native'\" >&2; exit 1\n"
        "  fi\n"
        "done\n"
        "exec cc \"$@\"\n", f);
  fclose(f);
  chmod(fake, 0755);
  setenv("CC", fake, 1);
  agc_module *m = agc_module_compile(add_src, AGC_BACKEND_CC, err, sizeof err);
  ck_assert_msg(m != NULL, "%s", err);
  fn_ddd add = (fn_ddd)agc_module_symbol(m, "add");
  ck_assert_double_eq(add(1.0, 2.0), 3.0);
  agc_module_free(m);
  ck_assert_int_eq(count_entries(cc_tmp), 1); /* only fakecc itself */
}
END_TEST

/* ---- the ahead-of-time kernels the JIT hands to generated code ---------- */

static double ulp_of(double v) {
  int e;
  frexp(v, &e);
  return ldexp(1.0, e - 24); /* one unit in the last place of a float */
}

START_TEST(test_expf_accuracy) {
  /* every 211th float from -86 to ln(FLT_MAX), against exp in double */
  double worst = 0;
  long n = 0;
  for (float x = -86.0f; x <= 88.72f; n++) {
    double ref = exp((double)x), u = fabs(agc_expf(x) - ref) / ulp_of(ref);
    if (u > worst)
      worst = u;
    for (int k = 0; k < 211; k++)
      x = nextafterf(x, 100.0f);
  }
  ck_assert_int_gt(n, 1500000);
  ck_assert_msg(worst <= 1.5, "agc_expf: %.3f ulp", worst);
  ck_assert(agc_expf(0.0f) == 1.0f);
  ck_assert(agc_expf(1.0f) == 2.71828175f);
  ck_assert(isinf(agc_expf(100.0f)) && agc_expf(100.0f) > 0);
  ck_assert(isinf(agc_expf(INFINITY)));
  ck_assert(agc_expf(-100.0f) == 0.0f);
  ck_assert(agc_expf(-INFINITY) == 0.0f);
  ck_assert(isnan(agc_expf(NAN)));
  ck_assert(isfinite(agc_expf(88.72f)) && agc_expf(88.72f) > 3.3e38f);
}
END_TEST

/* tanh over rows, as the JIT's row mode runs it: 7 rows of 143 */
START_TEST(test_tanh_rows) {
  enum { N = 1001 };
  float x[N];
  for (int i = 0; i < N; i++)
    x[i] = -12.0f + 0.024f * (float)i;
  float y[N];
  agc_row_f32(ROW_TANH, 7, 143, x, 143, 1, NULL, 0, 0, y, 143);
  for (int i = 0; i < N; i++) {
    ck_assert(y[i] == agc_tanhf(x[i])); /* same text, same result */
    double ref = tanh((double)x[i]);
    ck_assert_msg(fabs(y[i] - ref) <= 3.5e-7 * fabs(ref) + 1e-30,
                  "tanh(%g) = %.9g, want %.9g", x[i], y[i], ref);
  }
  ck_assert(agc_tanhf(20.0f) == 1.0f && agc_tanhf(-20.0f) == -1.0f);
}
END_TEST

/* The row kernels of correctly rounded operations, and of those the C
 * library computes, give the C library's bits (the JIT's scalar loops
 * call it): sqrt, 1 / sqrt, abs, sign, log, log1p, expm1, sin, cos, tan,
 * atan, erf, over negatives (NaN for some), zeros, denormals and large
 * values, in each copy this CPU runs. */
static float row_libm(int op, float x) {
  switch (op) {
  case ROW_SQRT: return sqrtf(x);
  case ROW_RSQRT: return 1.0f / sqrtf(x);
  case ROW_ABS: return fabsf(x);
  case ROW_SIGN: return (float)((x > 0.0f) - (x < 0.0f));
  case ROW_LOG: return logf(x);
  case ROW_LOG1P: return log1pf(x);
  case ROW_EXPM1: return expm1f(x);
  case ROW_SIN: return sinf(x);
  case ROW_COS: return cosf(x);
  case ROW_TAN: return tanf(x);
  case ROW_ATAN: return atanf(x);
  default: return erff(x);
  }
}

static void check_row_exact(const char *name,
                            void (*row)(int, long, long, const float *, long,
                                        long, const float *, long, long,
                                        float *, long)) {
  enum { N = 1000 };
  static float x[N], r[N];
  for (int i = 0; i < N; i++)
    x[i] = i < 10 ? -(float)i : i < 20 ? 1e-40f * (float)i
           : i < 500 ? 0.0137f * (float)(i - 300)
                     : 1.37f * (float)(i - 500) * (float)(i - 20);
  static const int ops[] = {ROW_SQRT, ROW_RSQRT, ROW_ABS, ROW_SIGN,
                            ROW_LOG, ROW_LOG1P, ROW_EXPM1, ROW_SIN,
                            ROW_COS, ROW_TAN, ROW_ATAN, ROW_ERF};
  for (size_t o = 0; o < sizeof ops / sizeof ops[0]; o++) {
    row(ops[o], 4, 250, x, 250, 1, NULL, 0, 0, r, 250);
    for (int i = 0; i < N; i++) {
      float want = row_libm(ops[o], x[i]);
      ck_assert_msg(memcmp(&want, &r[i], sizeof want) == 0 ||
                        (isnan(want) && isnan(r[i])),
                    "%s row op %d at %g: %.9g, libm %.9g", name, ops[o],
                    (double)x[i], (double)r[i], (double)want);
    }
  }
}

START_TEST(test_row_exact) { check_row_exact("agc_row_f32", agc_row_f32); }
END_TEST

START_TEST(test_matmul_narrow) {
  /* [2x3] @ [3x1], and the same with A stored transposed (sai=1, sak=2) */
  const float a[6] = {1, 2, 3, 4, 5, 6}, at[6] = {1, 4, 2, 5, 3, 6};
  const float b[3] = {0.5f, -1, 2};
  float c[2] = {-7, -7};
  agc_matmul_f32(2, 1, 3, a, 3, 1, b, 1, 1, c);
  ck_assert(c[0] == 4.5f && c[1] == 9.0f); /* 0.5-2+6, 2-5+12 */
  c[0] = c[1] = -7;
  agc_matmul_f32(2, 1, 3, at, 1, 2, b, 1, 1, c);
  ck_assert(c[0] == 4.5f && c[1] == 9.0f);
  /* [1x2] @ [2x3] with B transposed (sbk=1, sbj=2), in f64 */
  const double a2[2] = {2, -3}, bt[6] = {1, 10, 2, 20, 3, 30};
  double c2[3];
  agc_matmul_f64(1, 3, 2, a2, 2, 1, bt, 1, 2, c2);
  ck_assert(c2[0] == -28 && c2[1] == -56 && c2[2] == -84);
}
END_TEST

/* The narrow product's 8 partial sums and its tail: every K from 1 to 40,
 * A plain and transposed, B a column or a row of a matrix, against a sum
 * in long double; exact for small integers (every partial sum is). */
START_TEST(test_matmul_narrow_sums) {
  enum { M = 3, N = 2, KMAX = 40 };
  float a[M * KMAX], b[KMAX * N], c[M * N];
  double a64[M * KMAX], b64[KMAX * N], c64[M * N];
  for (int t = 0; t < M * KMAX; t++)
    a64[t] = a[t] = (float)((t * 7) % 11 - 5);
  for (int t = 0; t < KMAX * N; t++)
    b64[t] = b[t] = (float)((t * 5) % 9 - 4) * 0.5f;
  for (long K = 1; K <= KMAX; K++)
    for (int tr = 0; tr < 4; tr++) {
      long sai = tr & 1 ? 1 : K, sak = tr & 1 ? M : 1;
      long sbk = tr & 2 ? 1 : N, sbj = tr & 2 ? K : 1;
      agc_matmul_f32(M, N, K, a, sai, sak, b, sbk, sbj, c);
      agc_matmul_f64(M, N, K, a64, sai, sak, b64, sbk, sbj, c64);
      for (long i = 0; i < M; i++)
        for (long j = 0; j < N; j++) {
          long double want = 0;
          for (long k = 0; k < K; k++)
            want += (long double)a64[i * sai + k * sak] * b64[k * sbk + j * sbj];
          ck_assert_msg(c[i * N + j] == (float)want && c64[i * N + j] == (double)want,
                        "K %ld tr %d C[%ld,%ld]: %g %g, want %Lg", K, tr, i, j,
                        c[i * N + j], c64[i * N + j], want);
        }
    }
}
END_TEST

/* One product's operands and results for the kernel tests, f32 and f64:
 * A [M, K] and B [K, N] filled alike in both types (either may be read
 * transposed), results C1, C2 (f32) and D1, D2 (f64), and npacks packing
 * buffers of PACK_MAX elements each: enough for any build of gemm.c (KC
 * 256 rows of NC 1024 columns rounded up to a panel of 32, MC 120 rows, a
 * 6 x 32 tile, 64 bytes to align it). */
enum { PACK_MAX = 256 * 1056 + 120 * 256 + 6 * 32 + 16 };
typedef struct {
  long M, N, K;
  float *A, *B, *C1, *C2, *pack;
  double *A64, *B64, *D1, *D2, *pack64;
} GemmCase;

static void gemm_case_init(GemmCase *g, long M, long N, long K, int npacks) {
  size_t mk = (size_t)(M * K), kn = (size_t)(K * N), mn = (size_t)(M * N);
  size_t np = (size_t)npacks * PACK_MAX;
  g->M = M, g->N = N, g->K = K;
  g->A = malloc(sizeof *g->A * mk), g->B = malloc(sizeof *g->B * kn);
  g->C1 = malloc(sizeof *g->C1 * mn), g->C2 = malloc(sizeof *g->C2 * mn);
  g->pack = malloc(sizeof *g->pack * np);
  g->A64 = malloc(sizeof *g->A64 * mk), g->B64 = malloc(sizeof *g->B64 * kn);
  g->D1 = malloc(sizeof *g->D1 * mn), g->D2 = malloc(sizeof *g->D2 * mn);
  g->pack64 = malloc(sizeof *g->pack64 * np);
  for (size_t i = 0; i < mk; i++)
    g->A64[i] = g->A[i] = (float)sin(0.37 * (double)i);
  for (size_t i = 0; i < kn; i++)
    g->B64[i] = g->B[i] = (float)cos(0.91 * (double)i);
}

/* the results' starting values (an accumulating product adds to them) */
static void gemm_case_reset(GemmCase *g) {
  for (size_t i = 0; i < (size_t)(g->M * g->N); i++)
    g->D1[i] = g->D2[i] = g->C1[i] = g->C2[i] = (float)i;
}

/* both results of each type the same bytes? */
static int gemm_case_same(const GemmCase *g, int f64) {
  size_t mn = (size_t)(g->M * g->N);
  return f64 ? memcmp(g->D1, g->D2, sizeof *g->D1 * mn) == 0
             : memcmp(g->C1, g->C2, sizeof *g->C1 * mn) == 0;
}

static void gemm_case_free(GemmCase *g) {
  free(g->A), free(g->B), free(g->C1), free(g->C2), free(g->pack);
  free(g->A64), free(g->B64), free(g->D1), free(g->D2), free(g->pack64);
}

/* transpose variant tr (bit 0: A, bit 1: B) as strides */
#define GEMM_STRIDES(g, tr)                                                    \
  long sai = (tr) & 1 ? 1 : (g).K, sak = (tr) & 1 ? (g).M : 1;                 \
  long sbk = (tr) & 2 ? 1 : (g).N, sbj = (tr) & 2 ? (g).K : 1

START_TEST(test_gemm_widths) {
  /* odd sizes across the K, M and N blocks (KC 256, MC 120, NC 1024),
     every transpose, accumulating: the same bytes at both widths; 5 x 9 x
     300 with B transposed is a product of dot products (N < 16, K >= 32,
     both operands along k), whose 16 partial sums are vectors of 8 or 16
     floats, 4 or 8 doubles; with C at most half a panel wide (10 columns
     at 64 bytes, 7 at both) A is read in place instead of packed */
  static const long dims[][3] = {{1, 1, 1}, {7, 33, 5}, {125, 17, 300},
                                 {13, 1100, 9}, {64, 64, 64}, {5, 9, 300},
                                 {125, 10, 300}, {13, 7, 50}};
  for (size_t d = 0; d < sizeof dims / sizeof dims[0]; d++) {
    GemmCase g;
    gemm_case_init(&g, dims[d][0], dims[d][1], dims[d][2], 1);
    long M = g.M, N = g.N, K = g.K;
    for (int tr = 0; tr < 4; tr++)
      for (int acc = 0; acc < 2; acc++) {
        GEMM_STRIDES(g, tr);
        gemm_case_reset(&g);
        gemm_narrow_f32(M, N, K, g.A, sai, sak, g.B, sbk, sbj, g.C1, acc, g.pack);
        gemm_wide_f32(M, N, K, g.A, sai, sak, g.B, sbk, sbj, g.C2, acc, g.pack);
        ck_assert_msg(gemm_case_same(&g, 0), "f32 %ldx%ldx%ld tr %d acc %d", M,
                      N, K, tr, acc);
        gemm_narrow_f64(M, N, K, g.A64, sai, sak, g.B64, sbk, sbj, g.D1, acc,
                        g.pack64);
        gemm_wide_f64(M, N, K, g.A64, sai, sak, g.B64, sbk, sbj, g.D2, acc,
                      g.pack64);
        ck_assert_msg(gemm_case_same(&g, 1), "f64 %ldx%ldx%ld tr %d acc %d", M,
                      N, K, tr, acc);
      }
    gemm_case_free(&g);
  }
}
END_TEST

typedef void (*gemm32_fn)(long, long, long, const float *, long, long,
                          const float *, long, long, float *, int, float *);
typedef void (*gemm64_fn)(long, long, long, const double *, long, long,
                          const double *, long, long, double *, int, double *);

/* The kernel's text as agc copies it into generated C (between its
 * AGC-EMBED markers), compiled by TinyCC: the plain loops that a
 * compiler without GNU C vectors builds. Defines gemm_tcc_f32 and
 * gemm_tcc_f64. */
static agc_module *gemm_tcc(void) {
  FILE *f = fopen(AGC_KERNELS_DIR "/gemm.c", "rb");
  ck_assert_ptr_nonnull(f);
  static char text[32768];
  size_t n = fread(text, 1, sizeof text - 1, f);
  fclose(f);
  ck_assert(n < sizeof text - 1);
  text[n] = 0;
  const char *b = strstr(text, "/* AGC-EMBED-BEGIN */"),
             *e = strstr(text, "/* AGC-EMBED-END */");
  ck_assert(b && e && b < e);
  static char src[2 * sizeof text + 512];
  int len = (int)(e - b);
  snprintf(src, sizeof src,
           "#include <stdint.h>\n" /* as a generated file has it */
           "#define AGC_LINKAGE\n#define AGC_T float\n"
           "#define AGC_GEMM gemm_tcc_f32\n%.*s\n#undef AGC_T\n#undef AGC_GEMM\n"
           "#define AGC_T double\n#define AGC_GEMM gemm_tcc_f64\n%.*s\n",
           len, b, len, b);
  agc_module *m = agc_module_compile(src, AGC_BACKEND_TCC, err, sizeof err);
  ck_assert_msg(m != NULL, "%s", err);
  return m;
}

/* A product of dot products (B transposed, N < 16, K >= 32: a convolution's
 * kernel gradient) at both widths and as tcc builds it, f32 and f64,
 * against a sum in long double: exact on small integers, as every partial
 * sum is; K from 32 to 48 (the 16 lanes and every tail), 300; N 1, 9, 15;
 * adding to C or not. */
START_TEST(test_gemm_dot) {
  enum { M = 3, NMAX = 15, KMAX = 300 };
  static float a[M * KMAX], b[KMAX * NMAX], c[3][M * NMAX], pack[PACK_MAX];
  static double a64[M * KMAX], b64[KMAX * NMAX], c64[3][M * NMAX],
      pack64[PACK_MAX];
  static const char *const names[3] = {"narrow", "wide", "tcc"};
  agc_module *m = gemm_tcc();
  const gemm32_fn f32[3] = {gemm_narrow_f32, gemm_wide_f32,
                            (gemm32_fn)agc_module_symbol(m, "gemm_tcc_f32")};
  const gemm64_fn f64[3] = {gemm_narrow_f64, gemm_wide_f64,
                            (gemm64_fn)agc_module_symbol(m, "gemm_tcc_f64")};
  ck_assert(f32[2] && f64[2]);
  for (int t = 0; t < M * KMAX; t++)
    a64[t] = a[t] = (float)((t * 7) % 11 - 5);
  for (int t = 0; t < KMAX * NMAX; t++)
    b64[t] = b[t] = (float)((t * 5) % 9 - 4) * 0.5f;
  static const long ns[] = {1, 9, 15};
  for (long K = 32; K <= KMAX; K = K == 48 ? KMAX : K + 1)
    for (int ni = 0; ni < 3; ni++)
      for (int acc = 0; acc < 2; acc++) {
        const long N = ns[ni];
        for (int w = 0; w < 3; w++) {
          for (int t = 0; t < M * NMAX; t++)
            c64[w][t] = c[w][t] = (float)t;
          f32[w](M, N, K, a, K, 1, b, 1, K, c[w], acc, pack);
          f64[w](M, N, K, a64, K, 1, b64, 1, K, c64[w], acc, pack64);
        }
        for (long i = 0; i < M; i++)
          for (long j = 0; j < N; j++) {
            long double want = acc ? (long double)(i * N + j) : 0;
            for (long k = 0; k < K; k++)
              want += (long double)a64[i * K + k] * b64[j * K + k];
            for (int w = 0; w < 3; w++)
              ck_assert_msg(c[w][i * N + j] == (float)want &&
                                c64[w][i * N + j] == (double)want,
                            "%s K %ld N %ld acc %d C[%ld,%ld]: %g %g, want %Lg",
                            names[w], K, N, acc, i, j, c[w][i * N + j],
                            c64[w][i * N + j], want);
          }
      }
  agc_module_free(m);
}
END_TEST

START_TEST(test_gemm_threads) {
  /* the threaded product against the one-thread kernel, bit for bit: odd
     sizes (bands of whole 6-row panels and a short last one), every
     transpose, accumulating, 1 to 5 threads, AGC_NUM_THREADS lowering the
     count; f32 and f64 */
  static const long dims[][3] = {{1, 7, 5}, {13, 17, 300}, {61, 33, 9},
                                 {128, 130, 70}, {61, 9, 100}, {61, 5, 100}};
  for (size_t d = 0; d < sizeof dims / sizeof dims[0]; d++) {
    GemmCase g;
    gemm_case_init(&g, dims[d][0], dims[d][1], dims[d][2], 5);
    long M = g.M, N = g.N, K = g.K;
    for (int tr = 0; tr < 4; tr++) {
      GEMM_STRIDES(g, tr);
      for (int acc = 0; acc < 2; acc++)
        for (int T = 1; T <= 5; T++)
          for (int env = 0; env < 2; env++) {
            if (env)
              setenv("AGC_NUM_THREADS", "2", 1);
            else
              unsetenv("AGC_NUM_THREADS");
            gemm_case_reset(&g);
            agc_gemm_f32(M, N, K, g.A, sai, sak, g.B, sbk, sbj, g.C1, acc, g.pack);
            agc_gemm_mt_f32(M, N, K, g.A, sai, sak, g.B, sbk, sbj, g.C2, acc,
                            g.pack, PACK_MAX, T);
            ck_assert_msg(gemm_case_same(&g, 0),
                          "f32 %ldx%ldx%ld tr %d acc %d T %d env %d", M, N, K,
                          tr, acc, T, env);
            agc_gemm_f64(M, N, K, g.A64, sai, sak, g.B64, sbk, sbj, g.D1, acc,
                         g.pack64);
            agc_gemm_mt_f64(M, N, K, g.A64, sai, sak, g.B64, sbk, sbj, g.D2,
                            acc, g.pack64, PACK_MAX, T);
            ck_assert_msg(gemm_case_same(&g, 1),
                          "f64 %ldx%ldx%ld tr %d acc %d T %d env %d", M, N, K,
                          tr, acc, T, env);
          }
    }
    unsetenv("AGC_NUM_THREADS");
    gemm_case_free(&g);
  }
}
END_TEST

/* The runner of parts (parts.c): every index of 0..n-1 run exactly once,
 * in T parts (or n, or AGC_NUM_THREADS's count, if fewer) of
 * ceil(n / T) indices, part k from k * ceil(n / T), each on its own
 * thread but the first. */
typedef struct {
  long n;
  int hits[1000];
  long lo[64], hi[64];
  pthread_t who[64];
} PartsProbe;

static void parts_probe(const void *arg, long lo, long hi, int k) {
  PartsProbe *p = (PartsProbe *)(uintptr_t)arg; /* written by one part each */
  for (long i = lo; i < hi; i++)
    p->hits[i]++;
  p->lo[k] = lo;
  p->hi[k] = hi;
  p->who[k] = pthread_self();
}

START_TEST(test_parts) {
  static const long ns[] = {1, 2, 3, 7, 16, 100, 999};
  static PartsProbe p;
  for (size_t a = 0; a < sizeof ns / sizeof ns[0]; a++)
    for (int T = 1; T <= 9; T += 2)
      for (int env = 0; env < 2; env++) {
        if (env)
          setenv("AGC_NUM_THREADS", "2", 1);
        else
          unsetenv("AGC_NUM_THREADS");
        memset(&p, 0, sizeof p);
        long n = ns[a];
        agc_parts(parts_probe, &p, n, T);
        int t = env && T > 2 ? 2 : T;
        if (t > n)
          t = (int)n;
        long each = (n + t - 1) / t;
        for (long i = 0; i < n; i++)
          ck_assert_msg(p.hits[i] == 1, "n %ld T %d env %d: index %ld run %d "
                        "times", n, T, env, i, p.hits[i]);
        int parts = (int)((n + each - 1) / each);
        for (int k = 0; k < parts; k++) {
          ck_assert_int_eq(p.lo[k], k * each);
          ck_assert_int_eq(p.hi[k], k * each + each < n ? k * each + each : n);
          ck_assert_msg(k == 0 ? pthread_equal(p.who[k], pthread_self())
                               : !pthread_equal(p.who[k], pthread_self()),
                        "n %ld T %d: part %d on the wrong thread", n, T, k);
        }
        for (int k = parts; k < 64; k++)
          ck_assert_int_eq(p.hi[k], 0); /* no part beyond */
      }
  unsetenv("AGC_NUM_THREADS");
}
END_TEST

/* The kernels' copies per instruction set (runtime/kernels/variant.h):
 * each copy this CPU runs against the plain one (FMA changes the last
 * bits), AVX2 against AVX-512 bit for bit (the product sums each element
 * in the same order at any width); a copy the CPU cannot run is skipped
 * with a message. And the JIT's choice: agc_kernel_variant, AGC_KERNELS. */
#ifdef AGC_KERNEL_VARIANTS
#define DECLARE(n) extern __typeof__(n) n##_avx2, n##_avx512;
DECLARE(agc_gemm_f32) DECLARE(agc_gemm_f64) DECLARE(agc_row_f32)
DECLARE(agc_tanhf) DECLARE(agc_expf)
#undef DECLARE
typedef struct {
  const char *name;
  int runs;
  __typeof__(agc_gemm_f32) *gemm32;
  __typeof__(agc_gemm_f64) *gemm64;
  __typeof__(agc_row_f32) *row;
  __typeof__(agc_tanhf) *tanhf;
  __typeof__(agc_expf) *expf;
} Variant;

static int near(double got, double want, double rel) {
  return fabs(got - want) <= rel * (1 + fabs(want));
}

START_TEST(test_kernel_variants) {
  __builtin_cpu_init();
  Variant v[3] = {
    {"generic", 1, agc_gemm_f32, agc_gemm_f64, agc_row_f32, agc_tanhf, agc_expf},
    {"avx2", __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma"),
     agc_gemm_f32_avx2, agc_gemm_f64_avx2, agc_row_f32_avx2, agc_tanhf_avx2,
     agc_expf_avx2},
    {"avx512", __builtin_cpu_supports("avx512f"), agc_gemm_f32_avx512,
     agc_gemm_f64_avx512, agc_row_f32_avx512, agc_tanhf_avx512, agc_expf_avx512}};
  static const long dims[][3] = {{1, 1, 1}, {7, 33, 5}, {125, 17, 300}, {64, 64, 64},
                                 {5, 9, 300}};
  enum { N = 1001 };
  static const int rows[] = {ROW_TANH, ROW_EXP, ROW_SIGMOID, ROW_MUL, ROW_RELU,
                             ROW_SOFTPLUS};
  float x[N], y[N], r0[N], r1[N];
  for (int i = 0; i < N; i++)
    x[i] = -12.0f + 0.024f * (float)i, y[i] = 0.5f - 0.001f * (float)i;
  int ran = 0;
  for (int k = 1; k < 3; k++) {
    if (!v[k].runs) {
      printf("test_kernel_variants: %s skipped: this CPU cannot run it\n", v[k].name);
      continue;
    }
    ran++;
    for (size_t d = 0; d < sizeof dims / sizeof dims[0]; d++) {
      GemmCase g;
      gemm_case_init(&g, dims[d][0], dims[d][1], dims[d][2], 1);
      for (int tr = 0; tr < 4; tr++) {
        GEMM_STRIDES(g, tr);
        gemm_case_reset(&g);
        v[0].gemm32(g.M, g.N, g.K, g.A, sai, sak, g.B, sbk, sbj, g.C1, 1, g.pack);
        v[k].gemm32(g.M, g.N, g.K, g.A, sai, sak, g.B, sbk, sbj, g.C2, 1, g.pack);
        v[0].gemm64(g.M, g.N, g.K, g.A64, sai, sak, g.B64, sbk, sbj, g.D1, 1, g.pack64);
        v[k].gemm64(g.M, g.N, g.K, g.A64, sai, sak, g.B64, sbk, sbj, g.D2, 1, g.pack64);
        for (long i = 0; i < g.M * g.N; i++) {
          ck_assert_msg(near(g.C2[i], g.C1[i], 1e-4), "%s gemm f32 %ldx%ldx%ld [%ld]: %g, plain %g",
                        v[k].name, g.M, g.N, g.K, i, g.C2[i], g.C1[i]);
          ck_assert_msg(near(g.D2[i], g.D1[i], 1e-12), "%s gemm f64 [%ld]", v[k].name, i);
        }
        if (k == 2 && v[1].runs) { /* AVX-512 against AVX2: the same bytes */
          v[1].gemm32(g.M, g.N, g.K, g.A, sai, sak, g.B, sbk, sbj, g.C1, 0, g.pack);
          v[2].gemm32(g.M, g.N, g.K, g.A, sai, sak, g.B, sbk, sbj, g.C2, 0, g.pack);
          ck_assert_msg(gemm_case_same(&g, 0), "avx512 and avx2 gemm differ");
        }
      }
      gemm_case_free(&g);
    }
    for (size_t o = 0; o < sizeof rows / sizeof rows[0]; o++) {
      v[0].row(rows[o], 7, 143, x, 143, 1, y, 143, 1, r0, 143);
      v[k].row(rows[o], 7, 143, x, 143, 1, y, 143, 1, r1, 143);
      for (int i = 0; i < N; i++)
        ck_assert_msg(near(r1[i], r0[i], 5e-7), "%s row op %d at %g: %.9g, plain %.9g",
                      v[k].name, rows[o], x[i], r1[i], r0[i]);
    }
    check_row_exact(v[k].name, v[k].row);
    for (int i = 0; i < N; i++) {
      ck_assert(near(v[k].tanhf(x[i]), v[0].tanhf(x[i]), 5e-7));
      ck_assert(near(v[k].expf(x[i]), v[0].expf(x[i]), 5e-7 * v[0].expf(x[i]) + 5e-7));
    }
  }
  /* the JIT's choice: the best copy, or the one AGC_KERNELS names */
  int bk = v[2].runs ? 2 : v[1].runs ? 1 : 0;
  static const char src[] = "void agc_gemm_f32(void);\n"
                            "void *linked(void) { return (void *)agc_gemm_f32; }\n";
  for (int forced = 0; forced < 2; forced++) {
    if (forced)
      setenv("AGC_KERNELS", "generic", 1);
    else
      unsetenv("AGC_KERNELS");
    int want = forced ? 0 : bk;
    ck_assert_str_eq(agc_kernel_variant(), v[want].name);
    agc_module *m = agc_module_compile(src, AGC_BACKEND_TCC, err, sizeof err);
    ck_assert_msg(m != NULL, "%s", err);
    void *(*linked)(void) = (void *(*)(void))agc_module_symbol(m, "linked");
    ck_assert_msg(linked() == (void *)v[want].gemm32, "the JIT linked another copy than %s",
                  v[want].name);
    agc_module_free(m);
  }
  setenv("AGC_KERNELS", "sse9", 1);
  ck_assert(agc_kernel_variant() == NULL);
  ck_assert(agc_module_compile(src, AGC_BACKEND_TCC, err, sizeof err) == NULL);
  ck_assert_str_eq(err, "AGC_KERNELS=sse9: not a kernel copy (generic, avx2 or avx512)");
  if (!v[2].runs) {
    setenv("AGC_KERNELS", "avx512", 1);
    ck_assert(agc_module_compile(src, AGC_BACKEND_TCC, err, sizeof err) == NULL);
    ck_assert_msg(strstr(err, "AGC_KERNELS=avx512: this CPU runs only generic") == err, "%s", err);
  }
  unsetenv("AGC_KERNELS");
  printf("test_kernel_variants: %d copies besides the plain one run here; the JIT links %s\n",
         ran, v[bk].name);
}
END_TEST
#endif

static Suite *jit_suite(void) {
  Suite *s = suite_create("jit");
  TCase *tcc = tcase_create("tcc");
  tcase_set_timeout(tcc, 60);
  tcase_add_test(tcc, test_tcc_basic);
  tcase_add_test(tcc, test_tcc_runtime_helpers);
  tcase_add_test(tcc, test_tcc_math);
  tcase_add_test(tcc, test_tcc_errors);
  tcase_add_test(tcc, test_tcc_math_h);
  tcase_add_test(tcc, test_tcc_many_modules);
  tcase_add_test(tcc, test_tcc_missing_libdir);
  suite_add_tcase(s, tcc);
  TCase *cc = tcase_create("cc");
  tcase_set_timeout(cc, 120);
  tcase_add_checked_fixture(cc, cc_setup, cc_teardown);
  tcase_add_test(cc, test_cc_basic);
  tcase_add_test(cc, test_cc_runtime_and_math);
  tcase_add_test(cc, test_cc_errors);
  tcase_add_test(cc, test_cc_with_arguments);
  tcase_add_test(cc, test_cc_without_march_native);
  suite_add_tcase(s, cc);
  TCase *kern = tcase_create("kernels");
  tcase_set_timeout(kern, 60);
  tcase_add_test(kern, test_expf_accuracy);
  tcase_add_test(kern, test_tanh_rows);
  tcase_add_test(kern, test_matmul_narrow);
  tcase_add_test(kern, test_gemm_dot);
  tcase_add_test(kern, test_matmul_narrow_sums);
  tcase_add_test(kern, test_gemm_threads);
  tcase_add_test(kern, test_parts);
  tcase_add_test(kern, test_row_exact);
  tcase_add_test(kern, test_gemm_widths);
#ifdef AGC_KERNEL_VARIANTS
  tcase_add_test(kern, test_kernel_variants);
#endif
  suite_add_tcase(s, kern);
  return s;
}

int main(void) {
  SRunner *sr = srunner_create(jit_suite());
  srunner_run_all(sr, CK_NORMAL);
  int failed = srunner_ntests_failed(sr);
  srunner_free(sr);
  return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
