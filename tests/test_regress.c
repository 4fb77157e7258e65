/* test_regress.c — every bug found in generated code, as a test.
 *
 * Each case is a graph with hand-derived outputs. It runs on every target
 * (tcc, cc) x dtype (f32, f64) x optimization (-O1, -O0) with every buffer
 * malloc'ed to its exact size, so that the ASan build in CI catches any
 * byte written outside them.
 */
#include <check.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "agc_api.h"

typedef struct {
  const char *name;
  const char *src;
  /* fills the inputs (in f64, by name) and the expected outputs */
  void (*inputs)(const char *name, double *v, int64_t n);
  void (*expect)(const double *const *in, double **out);
} Case;

/* ---- sum(exp(p)): garbage loss on tcc f32 (row kernels called without
 * their prototypes, so TinyCC took the double result as an int) --------- */

static void in_ramp(const char *name, double *v, int64_t n) {
  (void)name;
  for (int64_t i = 0; i < n; i++)
    v[i] = -0.75 + 0.25 * (double)i;
}

static void exp_expect(const double *const *in, double **out) {
  double s = 0;
  for (int i = 0; i < 8; i++) {
    s += exp(in[0][i]);
    out[1][i] = exp(in[0][i]);
  }
  out[0][0] = s;
}

static void tanh_expect(const double *const *in, double **out) {
  double s = 0;
  for (int i = 0; i < 8; i++) {
    s += tanh(in[0][i]);
    out[1][i] = 1 - tanh(in[0][i]) * tanh(in[0][i]);
  }
  out[0][0] = s;
}

static void exptanh_expect(const double *const *in, double **out) {
  double s = 0;
  for (int i = 0; i < 8; i++) {
    double t = tanh(in[0][i]);
    s += exp(t);
    out[1][i] = exp(t) * (1 - t * t);
  }
  out[0][0] = s;
}

/* ---- minimum + mean: double partial sums written into the caller's
 * 4-byte grad_p0 (a heap overflow on both backends) ----------------------- */

static void minmean_inputs(const char *name, double *v, int64_t n) {
  if (strcmp(name, "p0") == 0) {
    v[0] = 0.1;
    return;
  }
  for (int64_t i = 0; i < n; i++) /* distinct from 0.1: no ties */
    v[i] = -0.55 + 0.1 * (double)i;
}

static void minmean_expect(const double *const *in, double **out) {
  const double p0 = in[0][0], *p1 = in[1];
  double loss = 0, g0 = 0;
  for (int r = 0; r < 3; r++) {
    double m = 0;
    for (int j = 0; j < 4; j++)
      m += p1[r * 4 + j] / 4;
    loss += m * m;
    for (int j = 0; j < 4; j++) {
      double x = p1[r * 4 + j];
      loss += x < p0 ? x : p0;
      g0 += p0 < x;
      out[2][r * 4 + j] = 2 * m / 4 + (x < p0);
    }
  }
  out[0][0] = loss;
  out[1][0] = g0;
}

/* ---- conv2d with padding on the host target: gcc 12 -O3 -mavx2
 * vectorized im2col's `in ? x[i] : 0` wrongly (y[5] 0.279 for 0.205) ---- */

static void conv_inputs(const char *name, double *v, int64_t n) {
  for (int64_t i = 0; i < n; i++)
    v[i] = name[0] == 'x' ? (double)((i * 7) % 11) / 10
                          : (double)((i * 5) % 13) / 10 - 0.5;
}

static void conv_expect(const double *const *in, double **out) {
  const double *x = in[0], *w = in[1]; /* x[1,2,5,5], w[3,2,3,3], pad 1 */
  double loss = 0;
  for (int i = 0; i < 50; i++)
    out[2][i] = 0;
  for (int i = 0; i < 54; i++)
    out[3][i] = 0;
  for (int o = 0; o < 3; o++)
    for (int h = 0; h < 5; h++)
      for (int v = 0; v < 5; v++) {
        double y = 0;
        for (int c = 0; c < 2; c++)
          for (int kh = 0; kh < 3; kh++)
            for (int kw = 0; kw < 3; kw++) {
              int ih = h + kh - 1, iw = v + kw - 1;
              if (ih >= 0 && ih < 5 && iw >= 0 && iw < 5)
                y += w[((o * 2 + c) * 3 + kh) * 3 + kw] * x[(c * 5 + ih) * 5 + iw];
            }
        out[0][(o * 5 + h) * 5 + v] = y;
        loss += y * y;
        for (int c = 0; c < 2; c++) /* d loss / d y = 2y */
          for (int kh = 0; kh < 3; kh++)
            for (int kw = 0; kw < 3; kw++) {
              int ih = h + kh - 1, iw = v + kw - 1;
              if (ih >= 0 && ih < 5 && iw >= 0 && iw < 5) {
                out[3][((o * 2 + c) * 3 + kh) * 3 + kw] +=
                    2 * y * x[(c * 5 + ih) * 5 + iw];
                out[2][(c * 5 + ih) * 5 + iw] +=
                    2 * y * w[((o * 2 + c) * 3 + kh) * 3 + kw];
              }
            }
      }
  out[1][0] = loss;
}

/* ---- 2 * (x * 3) -> x * 6: a rewrite that adds a node (the constant 6)
 * where its old node was one, so the in-place rebuild (passes.c) runs out
 * of room at the 5th node of 20 and moves the unread old nodes aside
 * (ir_rebuild_evict) ----------------------------------------------------- */
static void reassoc_expect(const double *const *in, double **out) {
  const double *x = in[0];
  out[0][0] = 0;
  for (int i = 0; i < 3; i++) {
    out[0][0] += 36 * x[i] * x[i];
    out[1][i] = 72 * x[i];
  }
}

static const Case cases[] = {
    {"sum(exp(p)) [8]",
     "param p[8]\nloss = sum(exp(p))\noutput loss\nbackward loss\n", in_ramp,
     exp_expect},
    {"sum(exp(p)) [8, 1]",
     "param p[8, 1]\nloss = sum(exp(p))\noutput loss\nbackward loss\n",
     in_ramp, exp_expect},
    {"sum(exp(p)) [4, 2, 1]",
     "param p[4, 2, 1]\nloss = sum(exp(p))\noutput loss\nbackward loss\n",
     in_ramp, exp_expect},
    {"sum(tanh(p)) [8, 1]",
     "param p[8, 1]\nloss = sum(tanh(p))\noutput loss\nbackward loss\n",
     in_ramp, tanh_expect},
    {"sum(exp(tanh(p))) [4, 2, 1]",
     "param p[4, 2, 1]\nloss = sum(exp(tanh(p)))\noutput loss\n"
     "backward loss\n",
     in_ramp, exptanh_expect},
    {"minimum + mean partial sums",
     "param p0[1, 1, 1]\nparam p1[3, 4]\nv0 = minimum(p1, p0)\n"
     "v2 = mean(p1, axis=1)\nloss = sum(v2 * v2) + sum(v0)\noutput loss\n"
     "backward loss\n",
     minmean_inputs, minmean_expect},
    {"conv2d padding=1",
     "param x[1, 2, 5, 5]\nparam w[3, 2, 3, 3]\n"
     "y = conv2d(x, w, padding=1)\nloss = sum(y * y)\noutput y, loss\n"
     "backward loss\n",
     conv_inputs, conv_expect},
    {"rebuild in place, out of room",
     "param x[3]\ny = 2 * (x * 3)\nloss = sum(y * y)\noutput loss\n"
     "backward loss\n",
     in_ramp, reassoc_expect},
};
#define NCASES (int)(sizeof cases / sizeof cases[0])

/* configuration k: bit 0 f64, bit 1 cc, bit 2 -O0, bit 3 --target mcu */
static void run_case(const Case *t, int k) {
  agc_graph_options opt = {0};
  opt.f64 = k & 1;
  opt.backend = k & 2 ? AGC_BACKEND_CC : AGC_BACKEND_TCC;
  opt.O0 = (k >> 2) & 1;
  opt.mcu = (k >> 3) & 1;
  char err[4096];
  agc_graph *g = agc_graph_load_source("t.graph", t->src, strlen(t->src),
                                       &opt, err, sizeof err);
  ck_assert_msg(g != NULL, "%s: %s", t->name, err);
  int nin = agc_graph_num_inputs(g), nout = agc_graph_num_outputs(g);
  size_t es = opt.f64 ? 8 : 4;
  void *in[8], *out[8];
  double *in64[8], *want[8];
  ck_assert_int_le(nin, 8);
  ck_assert_int_le(nout, 8);
  for (int i = 0; i < nin; i++) {
    int64_t n = agc_graph_count(g, 0, i);
    in64[i] = calloc((size_t)n, 8);
    t->inputs(agc_graph_name(g, 0, i), in64[i], n);
    in[i] = malloc((size_t)n * es); /* exact sizes: ASan sees overruns */
    for (int64_t j = 0; j < n; j++) {
      if (opt.f64)
        ((double *)in[i])[j] = in64[i][j];
      else
        ((float *)in[i])[j] = (float)in64[i][j];
    }
    if (!opt.f64) /* expect what the f32 inputs really are */
      for (int64_t j = 0; j < n; j++)
        in64[i][j] = ((float *)in[i])[j];
  }
  for (int i = 0; i < nout; i++) {
    int64_t n = agc_graph_count(g, 1, i);
    out[i] = malloc((size_t)n * es);
    want[i] = calloc((size_t)n, 8);
  }
  size_t wb = agc_graph_work_bytes(g);
  void *work = malloc(wb ? wb : 1);
  t->expect((const double *const *)in64, want);
  ck_assert_int_eq(agc_graph_call(g, (const void *const *)in, out, work), 0);
  double tol = opt.f64 ? 1e-12 : 1e-5;
  for (int i = 0; i < nout; i++) {
    int64_t n = agc_graph_count(g, 1, i);
    for (int64_t j = 0; j < n; j++) {
      double got = opt.f64 ? ((double *)out[i])[j] : ((float *)out[i])[j];
      double w = want[i][j];
      ck_assert_msg(fabs(got - w) <= tol * (1 + fabs(w)),
                    "%s [%s %s %s%s]: %s[%lld] = %.9g, expected %.9g", t->name,
                    opt.f64 ? "f64" : "f32", k & 2 ? "cc" : "tcc",
                    opt.O0 ? "-O0" : "-O1", opt.mcu ? " mcu" : "",
                    agc_graph_name(g, 1, i),
                    (long long)j, got, w);
    }
  }
  for (int i = 0; i < nin; i++) {
    free(in[i]);
    free(in64[i]);
  }
  for (int i = 0; i < nout; i++) {
    free(out[i]);
    free(want[i]);
  }
  free(work);
  agc_graph_free(g);
}

START_TEST(test_case_all_configs) {
  for (int k = 0; k < 16; k++)
    run_case(&cases[_i], k);
}
END_TEST

/* f32 constants beyond FLT_MAX were written as `inff`: C that does not
 * compile. Such a graph is now refused with a message, or runs. */
START_TEST(test_no_infinite_literal) {
  static const char *const srcs[] = {
      "input x[2]\ny = x * 1e39\noutput y\n",
      "param p[2]\nloss = sum(p / 1e-45)\noutput loss\nbackward loss\n"};
  for (int i = 0; i < 2; i++)
    for (int k = 0; k < 2; k++) {
      agc_graph_options opt = {0};
      opt.backend = k ? AGC_BACKEND_CC : AGC_BACKEND_TCC;
      char err[4096] = "";
      agc_graph *g = agc_graph_load_source("t.graph", srcs[i],
                                           strlen(srcs[i]), &opt, err,
                                           sizeof err);
      ck_assert_msg(!strstr(err, "failed to compile"), "%s", err);
      ck_assert_msg(g || strstr(err, "range") || strstr(err, "too small") ||
                        strstr(err, "too large"),
                    "no reason given: %s", err);
      if (g)
        agc_graph_free(g);
    }
}
END_TEST

int main(void) {
  Suite *s = suite_create("regress");
  TCase *tc = tcase_create("cases");
  tcase_set_timeout(tc, 120);
  tcase_add_loop_test(tc, test_case_all_configs, 0, NCASES);
  tcase_add_test(tc, test_no_infinite_literal);
  suite_add_tcase(s, tc);
  SRunner *sr = srunner_create(s);
  srunner_run_all(sr, CK_NORMAL);
  int failed = srunner_ntests_failed(sr);
  srunner_free(sr);
  return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
