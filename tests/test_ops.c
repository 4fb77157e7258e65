/* test_ops.c — every op of ops.def parses, differentiates, folds and
 * emits.
 *
 * Each op has one row below: a graph whose IR holds the op, and (for an
 * element-wise op) its expression in the language. An op without a row
 * fails the test, so a new op comes with its tests:
 *   parses:         the op is in the IR of the graph, as parsed;
 *   differentiates: f64 gradients of the graph against central differences;
 *   folds:          the compiler's constant folding (op_fold1/2) equals
 *                   what the generated code computes, on tcc and cc;
 *   emits:          the graph runs on both targets in f32 and f64.
 */
#include <check.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "agc.h"
#include "agc_api.h"

typedef struct {
  Op op;
  const char *graph; /* params p[3], q[2, 3]; `loss` is backward'ed */
  const char *expr;  /* element-wise ops: the op on a, b, c */
} OpCase;

#define P3 "param p[3]\n"
#define Q23 "param q[2, 3]\n"
#define IMG "param x[1, 2, 5, 5]\n"

static const OpCase cases[] = {
    {OP_INPUT, "input x[3]\n" P3 "loss = sum(x * p)\n", NULL},
    {OP_PARAM, P3 "loss = sum(p * p)\n", NULL},
    {OP_CONST, P3 "loss = sum(p * 2.5)\n", NULL},
    {OP_NEG, P3 "loss = sum(-p * p)\n", "-a"},
    {OP_EXP, P3 "loss = sum(exp(p))\n", "exp(a)"},
    {OP_LOG, P3 "loss = sum(log(p))\n", "log(a)"},
    {OP_SIN, P3 "loss = sum(sin(p))\n", "sin(a)"},
    {OP_COS, P3 "loss = sum(cos(p))\n", "cos(a)"},
    {OP_TAN, P3 "loss = sum(tan(p))\n", "tan(a)"},
    {OP_ATAN, P3 "loss = sum(atan(p * 3))\n", "atan(a)"},
    {OP_TANH, P3 "loss = sum(tanh(p))\n", "tanh(a)"},
    {OP_SIGMOID, P3 "loss = sum(sigmoid(p))\n", "sigmoid(a)"},
    {OP_RELU, P3 "loss = sum(relu(p - 0.5))\n", "relu(a - 0.5)"},
    {OP_ABS, P3 "loss = sum(abs(p - 0.5))\n", "abs(a - 0.5)"},
    {OP_SQRT, P3 "loss = sum(sqrt(p))\n", "sqrt(a)"},
    {OP_RSQRT, P3 "loss = sum(rsqrt(p))\n", "rsqrt(a)"},
    {OP_LOG1P, P3 "loss = sum(log1p(p))\n", "log1p(a)"},
    {OP_EXPM1, P3 "loss = sum(expm1(p))\n", "expm1(a)"},
    {OP_SOFTPLUS, P3 "loss = sum(softplus(p))\n", "softplus(a)"},
    {OP_SIGN, P3 "loss = sum(sign(p - 0.5) * p)\n", "sign(a - 0.5)"},
    {OP_ERF, P3 "loss = sum(erf(p))\n", "erf(a)"},
    {OP_ADD, P3 "loss = sum(p + p * p)\n", "a + b"},
    {OP_SUB, P3 "loss = sum(p - p * p)\n", "a - b"},
    {OP_MUL, P3 "loss = sum(p * p)\n", "a * b"},
    {OP_DIV, P3 "loss = sum(p / (p + 1))\n", "a / b"},
    {OP_POW, P3 "loss = sum(p ** p)\n", "a ** b"},
    {OP_MAXIMUM, P3 "loss = sum(maximum(p, p * p * 2))\n", "maximum(a, b)"},
    {OP_MINIMUM, P3 "loss = sum(minimum(p, p * p * 2))\n", "minimum(a, b)"},
    {OP_LT, P3 "loss = sum(p * (p < 0.5))\n", "a < b"},
    {OP_LE, P3 "loss = sum(p * (p <= 0.5))\n", "a <= b"},
    {OP_GT, P3 "loss = sum(p * (p > 0.5))\n", "a > b"},
    {OP_GE, P3 "loss = sum(p * (p >= 0.5))\n", "a >= b"},
    {OP_EQ, P3 "loss = sum(p * (p == 0.5))\n", "a == b"},
    {OP_NE, P3 "loss = sum(p * (p != 0.5))\n", "a != b"},
    {OP_WHERE, P3 "loss = sum(where(p > 0.5, p, p * p))\n", NULL},
    {OP_DETACH, P3 "loss = sum(detach(p) * p)\n", "detach(a)"},
    {OP_ID, P3 "y = p * 2\nloss = sum(y * p)\n", NULL},
    {OP_BCAST, P3 Q23 "loss = sum(q * p)\n", NULL},
    {OP_SUM, Q23 "loss = sum(sum(q, axis=1) ** 2)\n", NULL},
    {OP_MAX, Q23 "loss = max(q)\n", NULL},
    {OP_MIN, Q23 "loss = min(q)\n", NULL},
    {OP_PROD, Q23 "loss = prod(q)\n", NULL},
    {OP_FIRSTMAX, Q23 "loss = sum(max(q, axis=1) ** 2)\n", NULL},
    {OP_FIRSTMIN, Q23 "loss = sum(min(q, axis=1) ** 2)\n", NULL},
    {OP_PRODEXCL, Q23 "loss = sum(prod(q, axis=1) ** 2)\n", NULL},
    {OP_PRODEXCL2, Q23 "g = grad(sum(prod(q, axis=1)), q)\nloss = sum(g * g)\n",
     NULL},
    {OP_ONEHOT, "input l: i32[2]\n" Q23 "loss = cross_entropy(q, l)\n", NULL},
    {OP_RESHAPE, Q23 "loss = sum(reshape(q, [3, 2]) @ q)\n", NULL},
    {OP_TRANSPOSE, Q23 "loss = sum(transpose(q, 0, 1) ** 3)\n", NULL},
    {OP_SLICE, Q23 "loss = sum(q[:, 1:3] ** 2)\n", NULL},
    {OP_PAD, Q23 "loss = sum(q[:, 1:3] ** 2)\n", NULL},
    {OP_MATMUL, P3 Q23 "loss = sum((q @ p) ** 2)\n", NULL},
    {OP_CONV2D, IMG "param w[3, 2, 3, 3]\nloss = sum(conv2d(x, w) ** 2)\n",
     NULL},
    {OP_CONV2D_DX, IMG "param w[3, 2, 3, 3]\nloss = sum(conv2d(x, w) ** 2)\n",
     NULL},
    {OP_CONV2D_DW, IMG "param w[3, 2, 3, 3]\nloss = sum(conv2d(x, w) ** 2)\n",
     NULL},
    {OP_MAXPOOL, IMG "loss = sum(max_pool2d(x, 2) ** 2)\n", NULL},
    {OP_MAXPOOL_DX, IMG "loss = sum(max_pool2d(x, 2) ** 2)\n", NULL},
    {OP_AVGPOOL, IMG "loss = sum(avg_pool2d(x, 2) ** 2)\n", NULL},
    {OP_AVGPOOL_DX, IMG "loss = sum(avg_pool2d(x, 2) ** 2)\n", NULL},
    {OP_EMBED, "input i: i32[3]\nparam t[4, 2]\nloss = sum(embedding(t, i) ** 2)\n",
     NULL},
    {OP_EMBED_DT,
     "input i: i32[3]\nparam t[4, 2]\nloss = sum(embedding(t, i) ** 2)\n", NULL},
};
#define NCASES (int)(sizeof cases / sizeof cases[0])

static const OpCase *case_of(Op op) {
  for (int i = 0; i < NCASES; i++)
    if (cases[i].op == op)
      return &cases[i];
  return NULL;
}

/* the graph with its output and backward statements */
static char *program(const OpCase *t) {
  static char buf[1024]; /* one test at a time (CK_FORK or not) */
  snprintf(buf, sizeof buf, "%soutput loss\nbackward loss\n", t->graph);
  return buf;
}

START_TEST(test_every_op_has_a_case) {
  for (int op = 0; op < OP_COUNT; op++)
    ck_assert_msg(case_of((Op)op) != NULL,
                  "op %s has no row in tests/test_ops.c", op_name((Op)op));
}
END_TEST

/* parses: the op is in the IR as parsed (and differentiated) */
START_TEST(test_parses) {
  const OpCase *t = &cases[_i];
  Options o = {0};
  o.api.f64 = 1;
  o.api.O0 = 1;
  o.after = "parse";
  const char *src = program(t);
  Ctx *c = agc_compile("t.graph", src, strlen(src), &o);
  ck_assert_msg(!agc_failed(c), "%s: %s", op_name(t->op), agc_messages(c));
  StrBuf ir = {0};
  ck_assert_int_eq(agc_emit(c, EMIT_IR, TARGET_HOST, &ir), 0);
  char want[64];
  snprintf(want, sizeof want, " = %s ", op_name(t->op));
  ck_assert_msg(ir.s && strstr(ir.s, want), "no '%s' in the IR of:\n%s\n%s",
                op_name(t->op), src, ir.s ? ir.s : "");
  sb_free(&ir);
  agc_free(c);
}
END_TEST

/* Loads src with options, fills inputs deterministically: floats in
 * [0.2, 0.9], integers 0, 1, 0, ... */
static agc_graph *load(const char *src, int f64, agc_backend be, void **in,
                       void **out, void **work) {
  agc_graph_options opt = {0};
  opt.f64 = f64;
  opt.backend = be;
  char err[2048];
  agc_graph *g = agc_graph_load_source("t.graph", src, strlen(src), &opt, err,
                                       sizeof err);
  ck_assert_msg(g != NULL, "%s\n%s", err, src);
  for (int i = 0; i < agc_graph_num_inputs(g); i++) {
    int64_t n = agc_graph_count(g, 0, i);
    agc_dtype dt = agc_graph_dtype(g, 0, i);
    in[i] = malloc((size_t)n * 8);
    for (int64_t j = 0; j < n; j++) {
      double v = 0.2 + 0.7 * (double)((j * 7 + i * 3) % 11) / 10.0;
      if (dt == AGC_I32)
        ((int32_t *)in[i])[j] = (int32_t)(j % 2);
      else if (dt == AGC_F64)
        ((double *)in[i])[j] = v;
      else
        ((float *)in[i])[j] = (float)v;
    }
  }
  for (int i = 0; i < agc_graph_num_outputs(g); i++)
    out[i] = malloc((size_t)agc_graph_count(g, 1, i) * 8);
  *work = malloc(agc_graph_work_bytes(g) + 1);
  return g;
}

static void unload(agc_graph *g, void **in, void **out, void *work) {
  for (int i = 0; i < agc_graph_num_inputs(g); i++)
    free(in[i]);
  for (int i = 0; i < agc_graph_num_outputs(g); i++)
    free(out[i]);
  free(work);
  agc_graph_free(g);
}

static double loss_of(agc_graph *g, void **in, void **out, void *work) {
  ck_assert_int_eq(
      agc_graph_call(g, (const void *const *)in, (void *const *)out, work), 0);
  return ((double *)out[0])[0];
}

/* differentiates: every gradient against central differences (f64) */
START_TEST(test_differentiates) {
  const OpCase *t = &cases[_i];
  void *in[8], *out[8], *work;
  agc_graph *g = load(program(t), 1, AGC_BACKEND_TCC, in, out, &work);
  loss_of(g, in, out, work);
  for (int o = 1; o < agc_graph_num_outputs(g); o++) {
    const char *gn = agc_graph_name(g, 1, o); /* grad_P */
    int pi = -1;
    for (int i = 0; i < agc_graph_num_inputs(g); i++)
      if (strcmp(agc_graph_name(g, 0, i), gn + 5) == 0)
        pi = i;
    ck_assert_int_ge(pi, 0);
    int64_t n = agc_graph_count(g, 0, pi);
    double *grad = malloc((size_t)n * 8);
    memcpy(grad, out[o], (size_t)n * 8);
    for (int64_t j = 0; j < n; j++) {
      double *x = (double *)in[pi], x0 = x[j], h = 1e-6;
      x[j] = x0 + h;
      double lp = loss_of(g, in, out, work);
      x[j] = x0 - h;
      double lm = loss_of(g, in, out, work);
      x[j] = x0;
      double fd = (lp - lm) / (2 * h);
      if (t->op == OP_DETACH) /* d/dp sum(detach(p) * p) is detach(p) */
        fd = x0;
      ck_assert_msg(fabs(fd - grad[j]) <= 1e-5 * (1 + fabs(fd)),
                    "%s: %s[%lld] = %.10g, finite differences %.10g\n%s",
                    op_name(t->op), gn, (long long)j, grad[j], fd, t->graph);
    }
    free(grad);
  }
  unload(g, in, out, work);
}
END_TEST

/* folds: op_fold1/op_fold2 against the generated code, both targets */
START_TEST(test_folds) {
  const OpCase *t = &cases[_i];
  if (!t->expr)
    return;
  ck_assert_msg(op_folds(t->op), "%s has no fold function", op_name(t->op));
  char src[512];
  snprintf(src, sizeof src,
           "input a[5]\ninput b[5]\ny = (%s) + 0 * (a + b)\noutput y\n",
           t->expr);
  for (int be = 0; be < 2; be++) {
    void *in[8], *out[8], *work;
    agc_graph *g = load(src, 1, be ? AGC_BACKEND_CC : AGC_BACKEND_TCC, in, out,
                        &work);
    double *a = in[0], *b = in[1];
    b[0] = a[0]; /* equal operands, for == and != */
    b[1] = 0.5;
    loss_of(g, in, out, work);
    for (int j = 0; j < 5; j++) {
      double x = a[j];
      /* the graphs of relu, abs and sign shift a by 0.5 */
      if (strstr(t->expr, "- 0.5"))
        x -= 0.5;
      double want = op_arity(t->op) == 1 ? op_fold1(t->op, x)
                                         : op_fold2(t->op, a[j], b[j]);
      double got = ((double *)out[0])[j];
      ck_assert_msg(fabs(got - want) <= 1e-15 * (1 + fabs(want)),
                    "%s (%s) at %g: folds to %.17g, runs as %.17g",
                    op_name(t->op), be ? "cc" : "tcc", x, want, got);
    }
    unload(g, in, out, work);
  }
}
END_TEST

/* emits: runs on both targets in f32, matching f64 */
START_TEST(test_emits) {
  const OpCase *t = &cases[_i];
  void *in64[8], *out64[8], *w64;
  agc_graph *g64 = load(program(t), 1, AGC_BACKEND_TCC, in64, out64, &w64);
  double want = loss_of(g64, in64, out64, w64);
  for (int be = 0; be < 2; be++) {
    void *in[8], *out[8], *work;
    agc_graph *g = load(program(t), 0, be ? AGC_BACKEND_CC : AGC_BACKEND_TCC,
                        in, out, &work);
    ck_assert_int_eq(agc_graph_call(g, (const void *const *)in,
                                    (void *const *)out, work), 0);
    double got = ((float *)out[0])[0];
    ck_assert_msg(fabs(got - want) <= 1e-4 * (1 + fabs(want)),
                  "%s (f32 %s): loss %.9g, f64 %.9g", op_name(t->op),
                  be ? "cc" : "tcc", got, want);
    unload(g, in, out, work);
  }
  unload(g64, in64, out64, w64);
}
END_TEST

int main(void) {
  Suite *s = suite_create("ops");
  TCase *tc = tcase_create("ops");
  tcase_set_timeout(tc, 300);
  tcase_add_test(tc, test_every_op_has_a_case);
  tcase_add_loop_test(tc, test_parses, 0, NCASES);
  tcase_add_loop_test(tc, test_differentiates, 0, NCASES);
  tcase_add_loop_test(tc, test_folds, 0, NCASES);
  tcase_add_loop_test(tc, test_emits, 0, NCASES);
  suite_add_tcase(s, tc);
  SRunner *sr = srunner_create(s);
  srunner_run_all(sr, CK_NORMAL);
  int failed = srunner_ntests_failed(sr);
  srunner_free(sr);
  return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
