/* test_rules.c — every derivative rule against central finite differences,
 * in f64, through the tool API (compile + tcc JIT + call).
 *
 * A case is a graph with one or more `param`s, weights `input w` and a
 * scalar `loss = sum(f(...) * w)`, with `output loss` and `backward loss`.
 * The params get smooth random values (positive where the function needs
 * it, away from kinks), the other float inputs random values in [-1, 1].
 * One call gives grad_P; then each element of each param is moved by ±h,
 * h = 1e-6·max(1, |x|), and the central difference of `loss` must match:
 *     max |ad - fd| / max(1e-6, max |fd|) < 1e-6
 * (less the rounding noise of the difference, ~1e-8·|loss|). Random
 * graphs get a second opinion from a five-point stencil (see fd_compare).
 *
 * Then: Hessian–vector products (grad of grad) against exact ones, the
 * worked examples of autograd-concepts.md with PyTorch's numbers, the
 * derivative conventions at kinks and ties, and numerical stability.
 */
#include <check.h>
#include <float.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common.h"

/* ---- finite differences ------------------------------------------------- */

typedef enum {
  D_ANY, /* ±[0.2, 1.5]: both signs, away from 0 */
  D_POS, /* [0.3, 2] */
} Domain;

typedef struct {
  const char *name;
  const char *src;
  Domain dom;
} RuleCase;

#define FD_TOL 1e-6
#ifndef NRANDOM
#define NRANDOM 40 /* random graphs checked */
#endif

static double fill_param(Rng *r, Domain d) {
  double m = d == D_POS ? rng_range(r, 0.3, 2.0) : rng_range(r, 0.2, 1.5);
  return d == D_ANY && rng_below(r, 2) ? -m : m;
}

static int is_param(const Run *r, int i, int *grad_out) {
  char gname[256];
  snprintf(gname, sizeof gname, "grad_%s", agc_graph_name(r->g, 0, i));
  for (int o = 0; o < r->nout; o++)
    if (agc_graph_is_grad(r->g, o) &&
        strcmp(agc_graph_name(r->g, 1, o), gname) == 0) {
      *grad_out = o;
      return 1;
    }
  return 0;
}

/* Fills every input of r; i32 inputs get labels in [0, ncls). */
static void fill_inputs(Run *r, Rng *rng, Domain dom, int ncls) {
  for (int i = 0; i < r->nin; i++) {
    int64_t n = agc_graph_count(r->g, 0, i);
    int go;
    if (agc_graph_dtype(r->g, 0, i) == AGC_I32) {
      int32_t *v = r->in[i];
      for (int64_t j = 0; j < n; j++)
        v[j] = (int32_t)rng_below(rng, (unsigned)ncls);
      continue;
    }
    ck_assert_int_eq(agc_graph_dtype(r->g, 0, i), AGC_F64);
    double *v = r->in[i];
    int p = is_param(r, i, &go);
    for (int64_t j = 0; j < n; j++)
      v[j] = p ? fill_param(rng, dom) : rng_range(rng, -1, 1);
  }
}

static double loss_of(Run *r, int lo) {
  run_call(r);
  return ((double *)r->out[lo])[0];
}

/* Central differences of output lo w.r.t. the n elements of x, into fd:
 * two-point with h = hrel·max(1, |x|), or the five-point stencil. */
static void fd_grad(Run *r, int lo, double *x, int64_t n, double hrel,
                    int five, double *fd) {
  for (int64_t j = 0; j < n; j++) {
    double x0 = x[j], h = hrel * fmax(1.0, fabs(x0));
    x[j] = x0 + h;
    double lp = loss_of(r, lo);
    x[j] = x0 - h;
    double lm = loss_of(r, lo);
    if (five) {
      x[j] = x0 + 2 * h;
      double lp2 = loss_of(r, lo);
      x[j] = x0 - 2 * h;
      double lm2 = loss_of(r, lo);
      fd[j] = (8 * (lp - lm) - (lp2 - lm2)) / (12 * h);
    } else {
      fd[j] = (lp - lm) / (2 * h);
    }
    x[j] = x0;
  }
}

/* max |ad - fd| (less the rounding noise of the differences, about
 * eps·|loss| / h, which matters only where the true gradient is ~0, e.g.
 * a shift of a softmax's input) over max(1e-6, max |fd|). */
static double fd_rel(const double *ad, const double *fd, int64_t n,
                     double l0, double hrel, int64_t *at) {
  double maxfd = 0, maxerr = 0;
  *at = 0;
  for (int64_t j = 0; j < n; j++) {
    maxfd = fmax(maxfd, fabs(fd[j]));
    double e = fabs(ad[j] - fd[j]);
    if (!(e <= maxerr)) /* also catches NaN */
      maxerr = e, *at = j;
  }
  double noise = 64 * DBL_EPSILON * fmax(1.0, fabs(l0)) / hrel;
  double rel = fmax(0, maxerr - noise) / fmax(1e-6, maxfd);
  return rel == rel ? rel : INFINITY;
}

/* Compares every gradient of r with central differences of output lo and
 * fails the test if the relative error reaches tol. With second_opinion, a
 * failure is checked again with the five-point stencil at h = 1e-5 (for
 * random graphs, whose third derivatives can be large). */
static void fd_compare(Run *r, int lo, double tol, const char *what,
                       int second_opinion) {
  for (int i = 0; i < r->nin; i++) {
    int go;
    if (!is_param(r, i, &go))
      continue;
    int64_t n = agc_graph_count(r->g, 0, i), at;
    ck_assert_int_eq(agc_graph_count(r->g, 1, go), n);
    run_call(r);
    double *ad = malloc(sizeof(double) * (size_t)n);
    double *fd = malloc(sizeof(double) * (size_t)n);
    memcpy(ad, r->out[go], sizeof(double) * (size_t)n);
    double l0 = ((double *)r->out[lo])[0];
    double *x = r->in[i];
    fd_grad(r, lo, x, n, 1e-6, 0, fd);
    double rel = fd_rel(ad, fd, n, l0, 1e-6, &at);
    if (rel >= tol && second_opinion) {
      fd_grad(r, lo, x, n, 1e-5, 1, fd);
      rel = fd_rel(ad, fd, n, l0, 1e-5, &at);
    }
    ck_assert_msg(rel < tol,
                  "%s: grad_%s: relative error %.3g (element %lld: ad %.12g "
                  "fd %.12g)",
                  what, agc_graph_name(r->g, 0, i), rel, (long long)at,
                  ad[at], fd[at]);
    free(ad);
    free(fd);
  }
}

static void fd_check2(const RuleCase *rc, uint64_t seed, int second_opinion) {
  Run r = run_load(rc->src);
  int lo = run_find(&r, 1, "loss");
  ck_assert_int_eq(agc_graph_count(r.g, 1, lo), 1);
  int nparams = 0, go;
  for (int i = 0; i < r.nin; i++)
    nparams += is_param(&r, i, &go);
  ck_assert_msg(nparams > 0, "%s: no param", rc->name);
  Rng rng = {seed};
  fill_inputs(&r, &rng, rc->dom, 3);
  fd_compare(&r, lo, FD_TOL, rc->name, second_opinion);
  run_free(&r);
}

static void fd_check(const RuleCase *rc, uint64_t seed) {
  fd_check2(rc, seed, 0);
}

/* Most cases: one param x, weights w, loss = sum(F * w). */
#define L1(name, decl, expr, wshape, dom)                                      \
  {name,                                                                       \
   "param x" decl "\ninput w" wshape "\nloss = sum((" expr ") * w)\n"          \
   "output loss\nbackward loss\n",                                             \
   dom}
/* Free-form: the source is given whole. */
#define LS(name, src, dom) {name, src, dom}
#define TAIL "output loss\nbackward loss\n"

static const RuleCase rule_cases[] = {
    /* ---- element-wise ---- */
    L1("neg", "[3, 4]", "-x", "[3, 4]", D_ANY),
    L1("plus", "[3, 4]", "+x", "[3, 4]", D_ANY),
    L1("exp", "[3, 4]", "exp(x)", "[3, 4]", D_ANY),
    L1("log", "[3, 4]", "log(x)", "[3, 4]", D_POS),
    L1("sin", "[3, 4]", "sin(x)", "[3, 4]", D_ANY),
    L1("cos", "[3, 4]", "cos(x)", "[3, 4]", D_ANY),
    L1("tan", "[3, 4]", "tan(x)", "[3, 4]", D_ANY),
    L1("tanh", "[3, 4]", "tanh(x)", "[3, 4]", D_ANY),
    L1("sigmoid", "[3, 4]", "sigmoid(x)", "[3, 4]", D_ANY),
    L1("relu", "[3, 4]", "relu(x)", "[3, 4]", D_ANY),
    L1("abs", "[3, 4]", "abs(x)", "[3, 4]", D_ANY),
    L1("sqrt", "[3, 4]", "sqrt(x)", "[3, 4]", D_POS),
    L1("rsqrt", "[3, 4]", "rsqrt(x)", "[3, 4]", D_POS),
    L1("square", "[3, 4]", "square(x)", "[3, 4]", D_ANY),
    L1("log1p", "[3, 4]", "log1p(x)", "[3, 4]", D_POS),
    L1("log1p near -1", "[3, 4]", "log1p(x - 1.2)", "[3, 4]", D_POS),
    L1("expm1", "[3, 4]", "expm1(x)", "[3, 4]", D_ANY),
    L1("softplus", "[3, 4]", "softplus(x)", "[3, 4]", D_ANY),
    L1("softplus large", "[3, 4]", "softplus(30 * x)", "[3, 4]", D_ANY),
    L1("sign", "[3, 4]", "sign(x) + x", "[3, 4]", D_ANY),
    L1("erf", "[3, 4]", "erf(x)", "[3, 4]", D_ANY),
    L1("gelu", "[3, 4]", "gelu(x)", "[3, 4]", D_ANY),
    L1("comparisons", "[3, 4]",
       "(x > 0) * x + (x < 0.1) * x ** 2 + (x >= 0) + (x <= 0) * sin(x) + "
       "(x == x) * x + (x != 0) * x",
       "[3, 4]", D_ANY),
    L1("composite", "[3, 4]", "exp(sin(x) * tanh(x)) / (1 + x ** 2)",
       "[3, 4]", D_ANY),
    /* ---- binary, with broadcasting ---- */
    LS("add broadcast", "param a[3, 4]\nparam b[4]\ninput w[3, 4]\n"
       "loss = sum((a + b) * w)\n" TAIL, D_ANY),
    LS("sub broadcast", "param a[3, 1]\nparam b[4]\ninput w[3, 4]\n"
       "loss = sum((a - b) * w)\n" TAIL, D_ANY),
    LS("mul broadcast", "param a[2, 3, 4]\nparam b[3, 1]\ninput w[2, 3, 4]\n"
       "loss = sum((a * b) * w)\n" TAIL, D_ANY),
    LS("div broadcast", "param a[3, 4]\nparam b[3, 1]\ninput w[3, 4]\n"
       "loss = sum((a / b) * w)\n" TAIL, D_ANY),
    LS("div by scalar param", "param a[3, 4]\nparam s\ninput w[3, 4]\n"
       "loss = sum((a / s + s / a) * w)\n" TAIL, D_POS),
    LS("pow tensor tensor", "param a[3, 4]\nparam b[4]\ninput w[3, 4]\n"
       "loss = sum((a ** b) * w)\n" TAIL, D_POS),
    LS("pow() function", "param a[3, 4]\nparam b[3, 4]\ninput w[3, 4]\n"
       "loss = sum(pow(a, b) * w)\n" TAIL, D_POS),
    L1("pow constant exponent", "[3, 4]", "x ** 3 + x ** 2 + x ** -1",
       "[3, 4]", D_ANY),
    L1("pow fractional exponent", "[3, 4]", "x ** 0.5 + x ** 1.5 + x ** -2.5",
       "[3, 4]", D_POS),
    L1("pow constant base", "[3, 4]", "2 ** x + 0.5 ** x", "[3, 4]", D_ANY),
    L1("scalar constants", "[3, 4]", "3 * x - 2 + 1 / x - x / 4", "[3, 4]",
       D_ANY),
    LS("maximum", "param a[3, 4]\nparam b[4]\ninput w[3, 4]\n"
       "loss = sum(maximum(a, b) * w)\n" TAIL, D_ANY),
    LS("minimum", "param a[3, 4]\nparam b[3, 1]\ninput w[3, 4]\n"
       "loss = sum(minimum(a, b) * w)\n" TAIL, D_ANY),
    L1("maximum with constant", "[3, 4]", "maximum(x, 0.05) + minimum(x, 0)",
       "[3, 4]", D_ANY),
    LS("where", "param a[3, 4]\nparam b[4]\ninput c[3, 4]\ninput w[3, 4]\n"
       "loss = sum(where(c > 0, a * b, sin(a) - b) * w)\n" TAIL, D_ANY),
    LS("where broadcast cond", "param a[3, 4]\nparam b\ninput c[4]\n"
       "input w[3, 4]\nloss = sum(where(c, a, b) * w)\n" TAIL, D_ANY),
    L1("clamp constants", "[3, 4]", "clamp(x, -0.5, 0.5)", "[3, 4]", D_ANY),
    LS("clamp tensor bounds", "param x[3, 4]\nparam lo[4]\nparam hi[3, 1]\n"
       "input w[3, 4]\nloss = sum(clamp(x, lo - 1, hi + 1) * w)\n" TAIL,
       D_ANY),
    /* ---- reductions ---- */
    L1("sum all", "[3, 4, 2]", "sum(x * x)", "", D_ANY),
    L1("sum axis", "[3, 4, 2]", "sum(x * x, axis=1)", "[3, 2]", D_ANY),
    L1("sum axes", "[3, 4, 2]", "sum(x * x, axis=[0, 2])", "[4]", D_ANY),
    L1("sum keepdim", "[3, 4, 2]", "sum(x * x, axis=-1, keepdim=true)",
       "[3, 4, 1]", D_ANY),
    L1("mean all", "[3, 4, 2]", "mean(x * x)", "", D_ANY),
    L1("mean axis", "[3, 4, 2]", "mean(sin(x), axis=0)", "[4, 2]", D_ANY),
    L1("mean keepdim", "[3, 4, 2]", "mean(sin(x), axis=[1, 2], keepdim=true)",
       "[3, 1, 1]", D_ANY),
    L1("max all", "[3, 4, 2]", "max(sin(x))", "", D_ANY),
    L1("max axis", "[3, 4, 2]", "max(x, axis=1)", "[3, 2]", D_ANY),
    L1("max axis keepdim", "[3, 4, 2]", "max(x, axis=0, keepdim=true)",
       "[1, 4, 2]", D_ANY),
    L1("max axes", "[3, 4, 2]", "max(x, axis=[0, 2])", "[4]", D_ANY),
    L1("min all", "[3, 4, 2]", "min(x ** 2)", "", D_ANY),
    L1("min axis", "[3, 4, 2]", "min(x, axis=-1)", "[3, 4]", D_ANY),
    L1("prod all", "[2, 3]", "prod(x)", "", D_ANY),
    L1("prod axis", "[3, 4, 2]", "prod(x, axis=1)", "[3, 2]", D_ANY),
    L1("prod keepdim", "[3, 4]", "prod(x, axis=0, keepdim=true)", "[1, 4]",
       D_ANY),
    L1("logsumexp all", "[3, 4, 2]", "logsumexp(x)", "", D_ANY),
    L1("logsumexp axis", "[3, 4, 2]", "logsumexp(3 * x, axis=1)", "[3, 2]",
       D_ANY),
    L1("logsumexp keepdim", "[3, 4]", "logsumexp(x, axis=0, keepdim=true)",
       "[1, 4]", D_ANY),
    /* ---- normalizers and losses ---- */
    L1("softmax", "[3, 4]", "softmax(x)", "[3, 4]", D_ANY),
    L1("softmax axis 0", "[3, 4]", "softmax(2 * x, axis=0)", "[3, 4]", D_ANY),
    L1("softmax 3-D", "[2, 3, 4]", "softmax(x, axis=1)", "[2, 3, 4]", D_ANY),
    L1("log_softmax", "[3, 4]", "log_softmax(x, axis=-1)", "[3, 4]", D_ANY),
    L1("log_softmax axis 0", "[3, 4]", "log_softmax(x, axis=0)", "[3, 4]",
       D_ANY),
    LS("mse_loss", "param y[3, 4]\ninput t[3, 4]\n"
       "loss = mse_loss(y, t) * 3\n" TAIL, D_ANY),
    LS("mse_loss both params", "param y[5]\nparam t[5]\n"
       "loss = mse_loss(sin(y), t)\n" TAIL, D_ANY),
    LS("bce_with_logits", "param z[3, 4]\ninput t[3, 4]\n"
       "loss = bce_with_logits(z, (t + 1) / 2)\n" TAIL, D_ANY),
    LS("bce_with_logits target param", "param z[6]\nparam t[6]\n"
       "loss = bce_with_logits(z, t)\n" TAIL, D_ANY),
    LS("cross_entropy", "param z[5, 3]\ninput lab: i32[5]\n"
       "loss = cross_entropy(z, lab)\n" TAIL, D_ANY),
    LS("cross_entropy of a product", "param W[4, 3]\ninput x[5, 4]\n"
       "input lab: i32[5]\nloss = cross_entropy(x @ W, lab)\n" TAIL, D_ANY),
    /* ---- matmul ---- */
    LS("matmul 2-D", "param A[3, 4]\nparam B[4, 2]\ninput w[3, 2]\n"
       "loss = sum((A @ B) * w)\n" TAIL, D_ANY),
    LS("matmul vector-matrix", "param v[4]\nparam B[4, 2]\ninput w[2]\n"
       "loss = sum((v @ B) * w)\n" TAIL, D_ANY),
    LS("matmul matrix-vector", "param A[3, 4]\nparam v[4]\ninput w[3]\n"
       "loss = sum((A @ v) * w)\n" TAIL, D_ANY),
    LS("matmul dot", "param u[4]\nparam v[4]\ninput w\n"
       "loss = sum((u @ v) * w)\n" TAIL, D_ANY),
    LS("matmul of a transpose", "param A[4, 3]\nparam B[2, 4]\n"
       "input w[3, 2]\nloss = sum((A.T @ B.T) * w)\n" TAIL, D_ANY),
    LS("matmul square chain", "param A[3, 3]\ninput w[3, 3]\n"
       "loss = sum((A @ A @ A) * w)\n" TAIL, D_ANY),
    LS("matmul batched x 2-D", "param A[2, 3, 4]\nparam B[4, 5]\n"
       "input w[2, 3, 5]\nloss = sum((A @ B) * w)\n" TAIL, D_ANY),
    LS("matmul batched x batched", "param A[2, 3, 4]\nparam B[2, 4, 5]\n"
       "input w[2, 3, 5]\nloss = sum((A @ B) * w)\n" TAIL, D_ANY),
    LS("matmul broadcast batch", "param A[2, 1, 3, 4]\nparam B[3, 4, 2]\n"
       "input w[2, 3, 3, 2]\nloss = sum((A @ B) * w)\n" TAIL, D_ANY),
    LS("matmul batched x vector", "param A[2, 3, 4]\nparam v[4]\n"
       "input w[2, 3]\nloss = sum((A @ v) * w)\n" TAIL, D_ANY),
    LS("matmul vector x batched", "param v[3]\nparam B[2, 3, 4]\n"
       "input w[2, 4]\nloss = sum((v @ B) * w)\n" TAIL, D_ANY),
    /* ---- shape ---- */
    L1("reshape", "[3, 4]", "reshape(sin(x), [2, 6])", "[2, 6]", D_ANY),
    L1("reshape -1", "[3, 4]", "reshape(x * x, [4, -1, 1])", "[4, 3, 1]",
       D_ANY),
    L1("transpose", "[2, 3, 4]", "transpose(x * x, 0, 2)", "[4, 3, 2]",
       D_ANY),
    L1(".T", "[3, 4]", "sin(x).T", "[4, 3]", D_ANY),
    LS("broadcast_to", "param b[4]\nparam c[3, 1]\ninput w[2, 3, 4]\n"
       "loss = sum((broadcast_to(b, [2, 3, 4]) * broadcast_to(c, [3, 4])) "
       "* w)\n" TAIL, D_ANY),
    LS("concat axis 0", "param a[2, 3]\nparam b[4, 3]\ninput w[6, 3]\n"
       "loss = sum(concat([a, sin(b)], axis=0) * w)\n" TAIL, D_ANY),
    LS("concat axis 1", "param a[2, 3]\nparam b[2, 1]\ninput w[2, 7]\n"
       "loss = sum(concat([a, b, a * a], axis=1) * w)\n" TAIL, D_ANY),
    L1("unsqueeze", "[3, 4]", "unsqueeze(x * x, 1)", "[3, 1, 4]", D_ANY),
    L1("unsqueeze front", "[3, 4]", "unsqueeze(x * x, 0) + x", "[1, 3, 4]",
       D_ANY),
    L1("squeeze", "[3, 1, 4]", "squeeze(x * x, 1)", "[3, 4]", D_ANY),
    L1("index", "[3, 4]", "x[1] * x[2]", "[4]", D_ANY),
    L1("negative index", "[3, 4]", "x[-1, -2] * x[0]", "[4]", D_ANY),
    L1("slice", "[3, 4]", "x[1:3, 1:] * x[0:2, :-1] + x[:, 0:3][1:]", "[2, 3]", D_ANY),
    L1("slice negative", "[3, 4]", "x[-2:, :-1]", "[2, 3]", D_ANY),
    L1("index then slice", "[3, 4, 2]", "x[:, 1][0:2] * x[2, 1:3, 0]",
       "[2, 2]", D_ANY),
    L1("constants", "[3, 4]", "x * ones([3, 4]) + full([4], 2.5) * x + "
       "zeros([3, 1])", "[3, 4]", D_ANY),
    /* ---- graphs ---- */
    L1("grad as a node", "[3, 4]", "grad(sum(x ** 3 * sin(x)), x)", "[3, 4]",
       D_ANY),
    LS("grad with seed", "param x[3]\ninput v[3]\ninput w[3]\n"
       "g = grad(sin(x) * x, x, v)\nloss = sum(g * w)\n" TAIL, D_ANY),
    LS("grad w.r.t. an intermediate", "param x[3]\ninput w[3]\n"
       "h = exp(x)\ng = grad(sum(h * h), h)\nloss = sum(g * w * x)\n" TAIL,
       D_ANY),
    LS("mlp", "input x[5, 4]\ninput t[5, 1]\nparam W1[4, 6]\nparam b1[6]\n"
       "param W2[6, 1]\nparam b2[1]\nh = tanh(x @ W1 + b1)\n"
       "y = h @ W2 + b2\nloss = mean((y - t) ** 2)\n" TAIL, D_ANY),
    LS("two uses", "param x[4]\ninput w[4]\ny = sin(x)\n"
       "loss = sum(y * y * w) + sum(y)\n" TAIL, D_ANY),
    LS("named chain", "param x[2, 2]\na = x * 2\nb = a @ a\nc = exp(-b)\n"
       "loss = sum(c)\n" TAIL, D_ANY),
    LS("deep mlp", "input x[8, 5]\ninput t[8, 3]\nparam W1[5, 7]\n"
       "param b1[7]\nparam W2[7, 7]\nparam W3[7, 3]\n"
       "h1 = tanh(x @ W1 + b1)\nh2 = sigmoid(h1 @ W2) * h1 + h1\n"
       "h3 = relu(h2 @ W2.T) + gelu(h2)\ny = softmax(h3 @ W3, axis=1)\n"
       "loss = mse_loss(y, t) + mean(log_softmax(h3, axis=0))\n" TAIL, D_ANY),
    L1("reshape of a transpose", "[3, 4]", "reshape(sin(x).T, [2, 6])",
       "[2, 6]", D_ANY),
    L1("slice of a transpose", "[3, 4]", "transpose(x * x, 0, 1)[1:3, 0:2]",
       "[2, 2]", D_ANY),
    L1("concat of transposes", "[3, 4]", "concat([x.T, exp(x).T], axis=1)",
       "[4, 6]", D_ANY),
    LS("batched matmul of a transpose", "param A[2, 4, 3]\nparam B[2, 4, 5]\n"
       "input w[2, 3, 5]\nloss = sum((transpose(A, 1, 2) @ B) * w)\n" TAIL,
       D_ANY),
    /* (a @ b)^T becomes b^T @ a^T (simplify), in every flag combination,
       and the weight gradient of x @ W.T lands in W's layout */
    LS("transpose of a matmul", "param A[3, 4]\nparam B[4, 2]\n"
       "input w[2, 3]\nloss = sum((A @ B).T * w)\n" TAIL, D_ANY),
    LS("transpose of a matmul of transposes", "param A[4, 3]\nparam B[2, 4]\n"
       "input w[2, 3]\nloss = sum((A.T @ B.T).T * w)\n" TAIL, D_ANY),
    LS("batched transpose of a matmul", "param A[2, 3, 4]\nparam B[4, 5]\n"
       "input w[2, 5, 3]\nloss = sum(transpose(A @ B, 1, 2) * w)\n" TAIL,
       D_ANY),
    LS("linear layer x @ W.T", "input x[5, 4]\nparam W[3, 4]\nparam b[3]\n"
       "input w[5, 3]\nloss = sum(tanh(x @ W.T + b) * w)\n" TAIL, D_ANY),
    LS("scalar param broadcast twice", "param s\ninput w[3, 4]\n"
       "loss = sum((s * ones([3, 4]) + broadcast_to(s, [3, 4]) ** 2) * w)\n"
       TAIL, D_ANY),
    LS("softmax axis of size 1", "param x[3, 1]\ninput w[3, 1]\n"
       "loss = sum((softmax(x, axis=1) + x) * w)\n" TAIL, D_ANY),
    /* ---- network ---- */
    LS("conv2d", "param x[2, 2, 5, 5]\nparam k[3, 2, 3, 3]\n"
       "input w[2, 3, 3, 3]\nloss = sum(conv2d(x, k) * w)\n" TAIL, D_ANY),
    LS("conv2d stride 2 padding 1", "param x[1, 2, 5, 6]\n"
       "param k[2, 2, 3, 2]\ninput w[1, 2, 3, 4]\n"
       "loss = sum(conv2d(x, k, stride=2, padding=1) * w)\n" TAIL, D_ANY),
    LS("max_pool2d", "param x[1, 2, 4, 4]\ninput w[1, 2, 2, 2]\n"
       "loss = sum(max_pool2d(x, 2) * w)\n" TAIL, D_ANY),
    LS("max_pool2d k3 stride 2", "param x[1, 1, 7, 7]\ninput w[1, 1, 3, 3]\n"
       "loss = sum(max_pool2d(x, 3, stride=2) * w)\n" TAIL, D_ANY),
    LS("avg_pool2d", "param x[1, 2, 5, 5]\ninput w[1, 2, 2, 2]\n"
       "loss = sum(avg_pool2d(x, 2) * w)\n" TAIL, D_ANY),
    LS("embedding", "param t[4, 3]\ninput idx: i32[5]\ninput w[5, 3]\n"
       "loss = sum(tanh(embedding(t, idx)) * w)\n" TAIL, D_ANY),
    LS("2nd conv2d", "param x[1, 2, 4, 4]\ninput c[1, 1, 3, 3]\n"
       "input w[1, 2, 4, 4]\n"
       "g = grad(sum(conv2d(x * x, x[0:1, :, 0:2, 0:2]) * c), x)\n"
       "loss = sum(g * w)\n" TAIL, D_ANY),
    LS("2nd avg_pool2d", "param x[1, 2, 4, 4]\ninput c[1, 2, 2, 2]\n"
       "input w[1, 2, 4, 4]\ng = grad(sum(avg_pool2d(x * x, 2) * c), x)\n"
       "loss = sum(g * w)\n" TAIL, D_ANY),
    LS("2nd embedding", "param t[4, 3]\ninput idx: i32[5]\ninput c[5, 3]\n"
       "input w[4, 3]\ng = grad(sum(embedding(t, idx) ** 3 * c), t)\n"
       "loss = sum(g * w)\n" TAIL, D_ANY),
    /* ---- second derivatives: d/dx sum(grad(sum(F * c), x) * w) ---- */
#define L2(name, decl, expr, cshape, dom)                                      \
  {name,                                                                       \
   "param x" decl "\ninput c" cshape "\ninput w" decl "\n"                    \
   "g = grad(sum((" expr ") * c), x)\nloss = sum(g * w)\n"                     \
   "output loss\nbackward loss\n",                                             \
   dom}
    L2("2nd exp", "[3, 4]", "exp(x)", "[3, 4]", D_ANY),
    L2("2nd log", "[3, 4]", "log(x)", "[3, 4]", D_POS),
    L2("2nd sin", "[3, 4]", "sin(x)", "[3, 4]", D_ANY),
    L2("2nd cos", "[3, 4]", "cos(x)", "[3, 4]", D_ANY),
    L2("2nd tan", "[3, 4]", "tan(x)", "[3, 4]", D_ANY),
    L2("2nd tanh", "[3, 4]", "tanh(x)", "[3, 4]", D_ANY),
    L2("2nd sigmoid", "[3, 4]", "sigmoid(x)", "[3, 4]", D_ANY),
    L2("2nd relu", "[3, 4]", "relu(x) * x", "[3, 4]", D_ANY),
    L2("2nd abs", "[3, 4]", "abs(x) * x", "[3, 4]", D_ANY),
    L2("2nd sqrt", "[3, 4]", "sqrt(x)", "[3, 4]", D_POS),
    L2("2nd rsqrt", "[3, 4]", "rsqrt(x)", "[3, 4]", D_POS),
    L2("2nd square", "[3, 4]", "square(x) * x", "[3, 4]", D_ANY),
    L2("2nd log1p", "[3, 4]", "log1p(x)", "[3, 4]", D_POS),
    L2("2nd expm1", "[3, 4]", "expm1(x)", "[3, 4]", D_ANY),
    L2("2nd softplus", "[3, 4]", "softplus(x)", "[3, 4]", D_ANY),
    L2("2nd sign", "[3, 4]", "sign(x) * x ** 3", "[3, 4]", D_ANY),
    L2("2nd erf", "[3, 4]", "erf(x)", "[3, 4]", D_ANY),
    L2("2nd gelu", "[3, 4]", "gelu(x)", "[3, 4]", D_ANY),
    L2("2nd div", "[3, 4]", "1 / x + x / (1 + x * x)", "[3, 4]", D_ANY),
    L2("2nd pow", "[3, 4]", "x ** x + 1.5 ** x + x ** 2.5", "[3, 4]", D_POS),
    L2("2nd maximum", "[3, 4]", "maximum(x, x * x) * x", "[3, 4]", D_ANY),
    L2("2nd minimum", "[3, 4]", "minimum(x, 0.3) * x", "[3, 4]", D_ANY),
    L2("2nd where", "[3, 4]", "where(x > 0, x ** 3, sin(x))", "[3, 4]",
       D_ANY),
    L2("2nd clamp", "[3, 4]", "clamp(x, -0.7, 0.7) * x", "[3, 4]", D_ANY),
    L2("2nd sum", "[3, 4]", "sum(x * x, axis=1) ** 2", "[3]", D_ANY),
    L2("2nd mean", "[3, 4]", "mean(x * x, axis=0, keepdim=true) ** 2",
       "[1, 4]", D_ANY),
    L2("2nd max", "[3, 4]", "max(x ** 3) + max(x * x, axis=1) ** 2", "[3]",
       D_ANY),
    L2("2nd min", "[3, 4]", "min(x ** 3, axis=0) * min(x)", "[4]", D_ANY),
    L2("2nd logsumexp", "[3, 4]", "logsumexp(x, axis=1)", "[3]", D_ANY),
    L2("2nd softmax", "[3, 4]", "softmax(x)", "[3, 4]", D_ANY),
    L2("2nd log_softmax", "[3, 4]", "log_softmax(x, axis=0)", "[3, 4]",
       D_ANY),
    L2("2nd matmul", "[3, 3]", "x @ x @ x", "[3, 3]", D_ANY),
    L2("2nd matmul batched", "[2, 3, 3]", "x @ sin(x)", "[2, 3, 3]", D_ANY),
    L2("2nd mse_loss", "[3, 4]", "mse_loss(x * x, sin(x))", "", D_ANY),
    L2("2nd bce_with_logits", "[3, 4]", "bce_with_logits(x, sigmoid(x))", "",
       D_ANY),
    L2("2nd shape ops", "[3, 4]",
       "reshape(x.T, [2, 6])[1] * concat([x[0], x[1, 0:2]], axis=0)", "[6]",
       D_ANY),
    LS("2nd cross_entropy", "param x[5, 3]\ninput lab: i32[5]\n"
       "input w[5, 3]\ng = grad(cross_entropy(x, lab), x)\n"
       "loss = sum(g * w)\n" TAIL, D_ANY),
};
#define NRULES ((int)(sizeof rule_cases / sizeof rule_cases[0]))

START_TEST(test_rule_fd) { fd_check(&rule_cases[_i], 1000 + (uint64_t)_i); }
END_TEST

/* detach stops the gradient: d/dx sum(detach(x) * x * w) = x * w, which
 * finite differences (2 x w) cannot see. */
START_TEST(test_detach) {
  Run r = run_load("param x[3, 4]\ninput w[3, 4]\n"
                   "loss = sum(detach(x) * x * w + detach(sin(x)))\n" TAIL);
  Rng rng = {7};
  fill_inputs(&r, &rng, D_ANY, 3);
  run_call(&r);
  double *x = run_in(&r, "x"), *w = run_in(&r, "w");
  double *g = run_out(&r, "grad_x");
  for (int j = 0; j < 12; j++)
    ck_assert_double_eq_tol(g[j], x[j] * w[j], 1e-14);
  run_free(&r);
}
END_TEST

/* Several backward roots add up. */
START_TEST(test_two_roots) {
  Run r = run_load("param x[3]\nl1 = sum(x * x)\nl2 = sum(sin(x))\n"
                   "output l1, l2\nbackward l1, l2\n");
  double *x = run_in(&r, "x");
  x[0] = 0.5, x[1] = -1, x[2] = 2;
  run_call(&r);
  double *g = run_out(&r, "grad_x");
  for (int j = 0; j < 3; j++)
    ck_assert_double_eq_tol(g[j], 2 * x[j] + cos(x[j]), 1e-14);
  run_free(&r);
}
END_TEST

/* A long chain of fused element-wise nodes, deeper than the planner's
 * inlining limit, and a wide fan-in; built as text here. */
START_TEST(test_long_chain_fd) {
  enum { DEPTH = 70 };
  static char src[DEPTH * 64 + 256];
  char *p = src;
  p += sprintf(p, "param x[2, 3]\ninput w[2, 3]\ny0 = x\n");
  for (int i = 1; i <= DEPTH; i++)
    p += sprintf(p, "y%d = %s(y%d) * 0.9 + x * 0.1\n", i,
                 i % 3 == 0 ? "sin" : i % 3 == 1 ? "tanh" : "cos", i - 1);
  p += sprintf(p, "s = y1");
  for (int i = 2; i <= DEPTH; i += 7)
    p += sprintf(p, " + y%d", i);
  p += sprintf(p, "\nloss = sum((y%d + s) * w)\n" TAIL, DEPTH);
  RuleCase rc = {"long chain", src, D_ANY};
  fd_check(&rc, 77);
}
END_TEST

/* The default f32 code computes what the f64 code computes, to f32
 * precision (forward and gradients of an MLP-like graph). */
START_TEST(test_f32_matches_f64) {
  static const char src[] =
      "input x[6, 4]\ninput lab: i32[6]\nparam W[4, 3]\nparam b[3]\n"
      "h = tanh(x @ W + b)\nloss = cross_entropy(h * 2, lab) + "
      "mean(softplus(h)) + sum(max(h, axis=1)) / 10\n" TAIL;
  agc_graph_options o32 = {0}, o64 = {0};
  o64.f64 = 1;
  Run a = run_load_opt(src, &o32), b = run_load_opt(src, &o64);
  ck_assert_int_eq(a.nin, b.nin);
  ck_assert_int_eq(a.nout, b.nout);
  Rng rng = {32};
  for (int i = 0; i < a.nin; i++) {
    int64_t n = agc_graph_count(a.g, 0, i);
    agc_dtype t = agc_graph_dtype(a.g, 0, i);
    if (t == AGC_I32) {
      ck_assert_int_eq(agc_graph_dtype(b.g, 0, i), AGC_I32);
      for (int64_t j = 0; j < n; j++)
        ((int32_t *)a.in[i])[j] = ((int32_t *)b.in[i])[j] = (int32_t)(j % 3);
      continue;
    }
    ck_assert_int_eq(t, AGC_F32);
    ck_assert_int_eq(agc_graph_dtype(b.g, 0, i), AGC_F64);
    for (int64_t j = 0; j < n; j++) {
      float v = (float)rng_range(&rng, -1, 1);
      ((float *)a.in[i])[j] = v;
      ((double *)b.in[i])[j] = v;
    }
  }
  run_call(&a);
  run_call(&b);
  for (int o = 0; o < a.nout; o++) {
    ck_assert_str_eq(agc_graph_name(a.g, 1, o), agc_graph_name(b.g, 1, o));
    ck_assert_int_eq(agc_graph_dtype(a.g, 1, o), AGC_F32);
    for (int64_t j = 0; j < agc_graph_count(a.g, 1, o); j++) {
      double va = ((float *)a.out[o])[j], vb = ((double *)b.out[o])[j];
      ck_assert_msg(fabs(va - vb) <= 1e-5 * fmax(1, fabs(vb)),
                    "%s[%lld]: f32 %.9g, f64 %.9g", agc_graph_name(a.g, 1, o),
                    (long long)j, va, vb);
    }
  }
  run_free(&a);
  run_free(&b);
}
END_TEST

/* --no-grad: forward only, no gradient outputs, same forward values. */
START_TEST(test_no_grad) {
  static const char src[] = "param x[3]\nloss = sum(exp(x))\n" TAIL;
  agc_graph_options opt = {0};
  opt.f64 = 1, opt.no_grad = 1;
  Run r = run_load_opt(src, &opt);
  ck_assert_int_eq(r.nout, 1);
  ck_assert_str_eq(agc_graph_name(r.g, 1, 0), "loss");
  run_set(&r, "x", (double[]){0, 1, 2}, 3);
  run_call(&r);
  ck_assert_double_eq_tol(run_out(&r, "loss")[0], 1 + exp(1) + exp(2), 1e-12);
  run_free(&r);
}
END_TEST

/* ---- random graphs --------------------------------------------------------
 *
 * Random smooth expressions, every node shaped [3, 4], over params x[3, 4],
 * b[4], c[3, 1], W[4, 4], V[3, 3]; loss = sum(e * w). No domain limits
 * (log, sqrt of 1 + e*e); the kinks (max, maximum, where, clamp, abs, relu)
 * are met within h only with probability ~1e-6. */

static void gen_expr(Rng *r, StrBuf *b, int depth) {
  if (depth == 0 || rng_below(r, 8) == 0) {
    static const char *const leaves[] = {"x", "x", "(x * b)", "(x + c)",
                                         "(b * c)", "sin(x)"};
    sb_puts(b, leaves[rng_below(r, 6)]);
    return;
  }
  static const char *const un[] = {"sin",  "cos", "tanh",     "sigmoid",
                                   "erf",  "gelu", "softplus", "expm1"};
  unsigned k = rng_below(r, 32);
  if (k < 6) {
    const char *f = un[rng_below(r, 8)];
    sb_printf(b, "%s(%s", f, strcmp(f, "expm1") ? "" : "0.3 * ");
    gen_expr(r, b, depth - 1);
    sb_puts(b, ")");
    return;
  }
  const char *fmt;
  switch (k) {
  case 6: fmt = "(A + B)"; break;
  case 7: fmt = "(A - B * 0.5)"; break;
  case 8: fmt = "(A * B)"; break;
  case 9: fmt = "(A / (1 + B * B))"; break;
  case 10: fmt = "log(1 + A * A)"; break;
  case 11: fmt = "sqrt(1 + A * A)"; break;
  case 12: fmt = "(A - mean(A, axis=1, keepdim=true))"; break;
  case 13: fmt = "softmax(A, axis=0)"; break;
  case 14: fmt = "log_softmax(A, axis=1)"; break;
  case 15: fmt = "(logsumexp(A, axis=0, keepdim=true) - B)"; break;
  case 16: fmt = "((A @ W) * 0.5)"; break;
  case 17: fmt = "(V @ A * 0.5)"; break;
  case 18: fmt = "reshape(reshape(A, [6, 2]).T, [3, 4])"; break;
  case 19: fmt = "reshape(A.T, [3, 4])"; break;
  case 20: fmt = "concat([A[0:1], B[1:]], axis=0)"; break;
  case 21: fmt = "grad(sum(sin(A)), x)"; break;
  case 22: fmt = "(max(A, axis=1, keepdim=true) * B)"; break;
  case 23: fmt = "(min(A) + B)"; break;
  case 24: fmt = "(mean(A, axis=[0, 1], keepdim=true) * B)"; break;
  case 25: fmt = "maximum(A, B)"; break;
  case 26: fmt = "minimum(A, B * 0.5)"; break;
  case 27: fmt = "where(A > B, A, B * B)"; break;
  case 28: fmt = "clamp(A, -0.5, 0.5)"; break;
  case 29: fmt = "((1.5 + sigmoid(A)) ** B)"; break;
  case 30: fmt = "(abs(A) + relu(B))"; break;
  default: fmt = "grad(A * A * x, x, B)"; break;
  }
  /* A (and B) stand for one subexpression each, however often used */
  StrBuf sa = {0}, sb = {0};
  gen_expr(r, &sa, depth - 1);
  gen_expr(r, &sb, depth - 1);
  for (const char *f = fmt; *f; f++) {
    if (*f == 'A' || *f == 'B')
      sb_puts(b, *f == 'A' ? sa.s : sb.s);
    else
      sb_putc(b, *f);
  }
  sb_free(&sa);
  sb_free(&sb);
}

START_TEST(test_random_graphs_fd) {
  Rng r = {0xfeed0000u + (uint64_t)_i};
  StrBuf b = {0};
  sb_puts(&b, "param x[3, 4]\nparam b[4]\nparam c[3, 1]\nparam W[4, 4]\n"
              "param V[3, 3]\ninput w[3, 4]\ne = ");
  gen_expr(&r, &b, 5);
  sb_puts(&b, "\nloss = sum(e * w) + sum(W * W) * 0.1 + sum(V) * 0.1\n" TAIL);
  RuleCase rc = {"random graph", b.s, D_ANY};
  fd_check2(&rc, 3000 + (uint64_t)_i, 1);
  sb_free(&b);
}
END_TEST

/* ---- Hessian-vector products --------------------------------------------- */

/* f = sum(x**3 * a) + sum(sin(x)): H = diag(6 a x - sin x). */
START_TEST(test_hvp_diagonal) {
  enum { N = 7 };
  Run r = run_load("input x[7]\ninput a[7]\ninput v[7]\n"
                   "f = sum(x ** 3 * a) + sum(sin(x))\n"
                   "g = grad(f, x)\nhv = grad(sum(g * v), x)\n"
                   "output f, g, hv\n");
  ck_assert_int_eq(r.nin, 3);
  Rng rng = {42};
  double *x = run_in(&r, "x"), *a = run_in(&r, "a"), *v = run_in(&r, "v");
  for (int i = 0; i < N; i++) {
    x[i] = rng_range(&rng, -2, 2);
    a[i] = rng_range(&rng, -1, 1);
    v[i] = rng_range(&rng, -1, 1);
  }
  run_call(&r);
  double *g = run_out(&r, "g"), *hv = run_out(&r, "hv");
  for (int i = 0; i < N; i++) {
    ck_assert_double_eq_tol(g[i], 3 * a[i] * x[i] * x[i] + cos(x[i]), 1e-12);
    double want = (6 * a[i] * x[i] - sin(x[i])) * v[i];
    ck_assert_msg(fabs(hv[i] - want) < 1e-12, "hv[%d] = %.15g, want %.15g", i,
                  hv[i], want);
  }
  run_free(&r);
}
END_TEST

/* f = sum((A @ x) ** 2): H = 2 A^T A, not diagonal. */
START_TEST(test_hvp_matmul) {
  enum { M = 4, N = 3 };
  Run r = run_load("input A[4, 3]\nparam x[3]\ninput v[3]\n"
                   "f = sum((A @ x) ** 2)\ng = grad(f, x)\n"
                   "hv = grad(sum(g * v), x)\noutput hv, g\n");
  Rng rng = {43};
  double *A = run_in(&r, "A"), *x = run_in(&r, "x"), *v = run_in(&r, "v");
  for (int i = 0; i < M * N; i++)
    A[i] = rng_range(&rng, -1, 1);
  for (int i = 0; i < N; i++)
    x[i] = rng_range(&rng, -1, 1), v[i] = rng_range(&rng, -1, 1);
  run_call(&r);
  double *hv = run_out(&r, "hv"), *g = run_out(&r, "g");
  for (int j = 0; j < N; j++) {
    double want = 0, wg = 0;
    for (int k = 0; k < N; k++) {
      double h = 0;
      for (int i = 0; i < M; i++)
        h += 2 * A[i * N + j] * A[i * N + k];
      want += h * v[k];
      wg += h * x[k]; /* gradient = 2 A^T A x = H x */
    }
    ck_assert_msg(fabs(hv[j] - want) < 1e-12, "hv[%d] = %.15g, want %.15g",
                  j, hv[j], want);
    ck_assert_double_eq_tol(g[j], wg, 1e-12);
  }
  run_free(&r);
}
END_TEST

/* Third order through backward: d/dx of sum(grad(grad(...)) * w). */
START_TEST(test_third_order_fd) {
  static const RuleCase rc = {
      "third order",
      "param x[4]\ninput w[4]\ng = grad(sum(sin(x) * x ** 2), x)\n"
      "h = grad(sum(g * g), x)\nloss = sum(h * w)\n" TAIL,
      D_ANY};
  fd_check(&rc, 99);
}
END_TEST

/* ---- the worked examples of autograd-concepts.md ------------------------- */

static void expect_vec(const double *got, const double *want, int n,
                       double tol, const char *what) {
  for (int i = 0; i < n; i++)
    ck_assert_msg(fabs(got[i] - want[i]) <= tol,
                  "%s[%d] = %.10g, want %.10g", what, i, got[i], want[i]);
}

/* 1. y = x * x, mean(y).backward() -> [0, 0.5, 1, 1.5] */
START_TEST(test_example1) {
  Run r = run_load("param x[4]\ny = x * x\nloss = mean(y)\n" TAIL);
  run_set(&r, "x", (double[]){0, 1, 2, 3}, 4);
  run_call(&r);
  expect_vec(run_out(&r, "grad_x"), (double[]){0, 0.5, 1, 1.5}, 4, 1e-12,
             "grad_x");
  ck_assert_double_eq_tol(run_out(&r, "loss")[0], 3.5, 1e-12);
  run_free(&r);
}
END_TEST

/* 2. max(x * x) -> [0, 0, 0, 6]; ties share: max([1, 3, 3, 2]) ->
 *    [0, .5, .5, 0]; along an axis the first maximum takes it all. */
START_TEST(test_example2) {
  Run r = run_load("param x[4]\nloss = max(x * x)\n" TAIL);
  run_set(&r, "x", (double[]){0, 1, 2, 3}, 4);
  run_call(&r);
  expect_vec(run_out(&r, "grad_x"), (double[]){0, 0, 0, 6}, 4, 1e-12,
             "grad_x");
  run_set(&r, "x", (double[]){1, 3, -3, 2}, 4); /* x*x ties: 9, 9 */
  run_call(&r);
  expect_vec(run_out(&r, "grad_x"), (double[]){0, 3, -3, 0}, 4, 1e-12,
             "grad_x (tie)");
  run_free(&r);

  r = run_load("param x[4]\nloss = max(x)\n" TAIL);
  run_set(&r, "x", (double[]){1, 3, 3, 2}, 4);
  run_call(&r);
  expect_vec(run_out(&r, "grad_x"), (double[]){0, 0.5, 0.5, 0}, 4, 1e-12,
             "max tie");
  run_free(&r);

  r = run_load("param x[1, 4]\nm = max(x, axis=1)\nloss = sum(m)\n" TAIL);
  run_set(&r, "x", (double[]){1, 3, 3, 2}, 4);
  run_call(&r);
  expect_vec(run_out(&r, "grad_x"), (double[]){0, 1, 0, 0}, 4, 1e-12,
             "max axis tie");
  run_free(&r);

  /* min mirrors max */
  r = run_load("param x[4]\nparam y[1, 4]\n"
               "loss = min(x) + sum(min(y, axis=1) * 2)\n" TAIL);
  run_set(&r, "x", (double[]){2, 1, 1, 3}, 4);
  run_set(&r, "y", (double[]){2, 1, 1, 3}, 4);
  run_call(&r);
  expect_vec(run_out(&r, "grad_x"), (double[]){0, 0.5, 0.5, 0}, 4, 1e-12,
             "min tie");
  expect_vec(run_out(&r, "grad_y"), (double[]){0, 2, 0, 0}, 4, 1e-12,
             "min axis tie");
  run_free(&r);
}
END_TEST

/* 3. z = sin(x ** 2), z.backward(ones) -> [1.0806, -2.6146]; a second
 *    backward without zeroing adds: [2.1612, -5.2291] (--accumulate). */
START_TEST(test_example3) {
  static const char src[] = "param x[2]\nz = sin(x ** 2)\noutput z\n"
                            "backward z\n";
  Run r = run_load(src);
  ck_assert_int_eq(r.nin, 2);
  ck_assert_str_eq(agc_graph_name(r.g, 0, 1), "grad_z");
  run_set(&r, "x", (double[]){1, 2}, 2);
  run_set(&r, "grad_z", (double[]){1, 1}, 2);
  run_call(&r);
  expect_vec(run_out(&r, "grad_x"), (double[]){1.0806, -2.6146}, 2, 1e-4,
             "grad_x");
  run_call(&r); /* overwrite by default: the same again */
  expect_vec(run_out(&r, "grad_x"), (double[]){1.0806, -2.6146}, 2, 1e-4,
             "grad_x (second call)");
  run_free(&r);

  agc_graph_options opt = {0};
  opt.f64 = 1, opt.accumulate = 1;
  r = run_load_opt(src, &opt);
  run_set(&r, "x", (double[]){1, 2}, 2);
  run_set(&r, "grad_z", (double[]){1, 1}, 2);
  run_call(&r); /* buffers start zeroed (calloc) */
  expect_vec(run_out(&r, "grad_x"), (double[]){1.0806, -2.6146}, 2, 1e-4,
             "accumulated once");
  run_call(&r);
  expect_vec(run_out(&r, "grad_x"), (double[]){2.1612, -5.2291}, 2, 1e-4,
             "accumulated twice");
  run_free(&r);
}
END_TEST

/* 4. z = x * y, z.backward([1, 1, 1]) -> x.grad = y, y.grad = x */
START_TEST(test_example4) {
  Run r = run_load("param x[3]\nparam y[3]\nz = x * y\nbackward z\n");
  run_set(&r, "x", (double[]){0, 2, 8}, 3);
  run_set(&r, "y", (double[]){5, 1, 7}, 3);
  run_set(&r, "grad_z", (double[]){1, 1, 1}, 3);
  run_call(&r);
  expect_vec(run_out(&r, "grad_x"), (double[]){5, 1, 7}, 3, 1e-12, "grad_x");
  expect_vec(run_out(&r, "grad_y"), (double[]){0, 2, 8}, 3, 1e-12, "grad_y");
  run_free(&r);
}
END_TEST

/* 5. z = x ** 2 + y on scalars 1, 2 -> x.grad = 2, y.grad = 1 */
START_TEST(test_example5) {
  Run r = run_load("param x\nparam y\nz = x ** 2 + y\noutput z\n"
                   "backward z\n");
  ck_assert_int_eq(r.nin, 2); /* a scalar root needs no seed */
  run_in(&r, "x")[0] = 1;
  run_in(&r, "y")[0] = 2;
  run_call(&r);
  ck_assert_double_eq_tol(run_out(&r, "z")[0], 3, 1e-12);
  ck_assert_double_eq_tol(run_out(&r, "grad_x")[0], 2, 1e-12);
  ck_assert_double_eq_tol(run_out(&r, "grad_y")[0], 1, 1e-12);
  run_free(&r);
}
END_TEST

/* 6. c = a * b, d = c.sum(): a.grad = b, b.grad = a = ones;
 *    torch.autograd.grad(d, c) = ones(3, 4). */
START_TEST(test_example6) {
  Run r = run_load("param a[3, 4]\nparam b[3, 4]\nc = a * b\nd = sum(c)\n"
                   "gc = grad(d, c)\noutput d, gc\nbackward d\n");
  double *a = run_in(&r, "a"), *b = run_in(&r, "b");
  Rng rng = {6};
  for (int i = 0; i < 12; i++)
    a[i] = 1, b[i] = rng_range(&rng, -1, 1);
  run_call(&r);
  double ones[12];
  for (int i = 0; i < 12; i++)
    ones[i] = 1;
  expect_vec(run_out(&r, "grad_a"), b, 12, 1e-12, "grad_a");
  expect_vec(run_out(&r, "grad_b"), ones, 12, 1e-12, "grad_b");
  expect_vec(run_out(&r, "gc"), ones, 12, 1e-12, "grad(d, c)");
  run_free(&r);
}
END_TEST

/* 7. y = 2x, y.backward([0.1, 0.2, 0.3]) -> [0.2, 0.4, 0.6];
 *    mean(2x).backward() -> [2/3, 2/3, 2/3] */
START_TEST(test_example7) {
  Run r = run_load("param x[3]\ny = 2 * x\nbackward y\n");
  run_set(&r, "x", (double[]){1, 2, 3}, 3);
  run_set(&r, "grad_y", (double[]){0.1, 0.2, 0.3}, 3);
  run_call(&r);
  expect_vec(run_out(&r, "grad_x"), (double[]){0.2, 0.4, 0.6}, 3, 1e-12,
             "grad_x");
  run_free(&r);
  r = run_load("param x[3]\nloss = mean(2 * x)\n" TAIL);
  run_set(&r, "x", (double[]){1, 2, 3}, 3);
  run_call(&r);
  expect_vec(run_out(&r, "grad_x"), (double[]){2. / 3, 2. / 3, 2. / 3}, 3,
             1e-12, "grad_x (mean)");
  run_free(&r);
}
END_TEST

/* 8. y = x ** 2 on ones(2, 2), y.backward(ones) -> 2 everywhere */
START_TEST(test_example8) {
  Run r = run_load("param x[2, 2]\ny = x ** 2\nbackward y\n");
  run_set(&r, "x", (double[]){1, 1, 1, 1}, 4);
  run_set(&r, "grad_y", (double[]){1, 1, 1, 1}, 4);
  run_call(&r);
  expect_vec(run_out(&r, "grad_x"), (double[]){2, 2, 2, 2}, 4, 1e-12,
             "grad_x");
  run_free(&r);
}
END_TEST

/* 9. (PyTorch: an error.) In agc, backward of a non-scalar y adds a seed
 *    input grad_y of y's shape, after the inputs and params. */
START_TEST(test_example9_seed) {
  Run r = run_load("input t[2, 3]\nparam x[2, 3]\ny = x * t\noutput y\n"
                   "backward y\n");
  ck_assert_int_eq(r.nin, 3);
  ck_assert_str_eq(agc_graph_name(r.g, 0, 0), "t");
  ck_assert_str_eq(agc_graph_name(r.g, 0, 1), "x");
  ck_assert_str_eq(agc_graph_name(r.g, 0, 2), "grad_y");
  ck_assert_int_eq(agc_graph_rank(r.g, 0, 2), 2);
  ck_assert_int_eq(agc_graph_dims(r.g, 0, 2)[0], 2);
  ck_assert_int_eq(agc_graph_dims(r.g, 0, 2)[1], 3);
  ck_assert_int_eq(agc_graph_dtype(r.g, 0, 2), AGC_F64);
  ck_assert_int_eq(r.nout, 2);
  ck_assert_str_eq(agc_graph_name(r.g, 1, 0), "y");
  ck_assert_str_eq(agc_graph_name(r.g, 1, 1), "grad_x");
  ck_assert(!agc_graph_is_grad(r.g, 0));
  ck_assert(agc_graph_is_grad(r.g, 1));
  double *t = run_in(&r, "t"), *s = run_in(&r, "grad_y");
  for (int i = 0; i < 6; i++)
    t[i] = i + 1, s[i] = 0.5 * i;
  run_call(&r);
  double *g = run_out(&r, "grad_x");
  for (int i = 0; i < 6; i++)
    ck_assert_double_eq_tol(g[i], t[i] * s[i], 1e-12);
  run_free(&r);
}
END_TEST

/* 11. relu'(0) = 0, abs'(0) = 0, sign' = 0, sqrt'(0) = +inf,
 *     maximum(2, 2) / minimum(2, 2): half to each side, d/dx x**0 = 0. */
START_TEST(test_example11_edges) {
  Run r = run_load("param x[3]\n"
                   "loss = sum(relu(x) + abs(x) + sign(x) + x ** 0)\n" TAIL);
  run_set(&r, "x", (double[]){0, 0, 0}, 3);
  run_call(&r);
  expect_vec(run_out(&r, "grad_x"), (double[]){0, 0, 0}, 3, 0, "grad_x");
  ck_assert_double_eq(run_out(&r, "loss")[0], 3); /* 0**0 = 1 */
  run_free(&r);

  r = run_load("param x[2]\nloss = sum(sqrt(x))\n" TAIL);
  run_set(&r, "x", (double[]){0, 4}, 2);
  run_call(&r);
  double *g = run_out(&r, "grad_x");
  ck_assert_msg(isinf(g[0]) && g[0] > 0, "sqrt'(0) = %g, want +inf", g[0]);
  ck_assert_double_eq_tol(g[1], 0.25, 1e-12);
  run_free(&r);

  r = run_load("param a\nparam b\nparam c\nparam d\n"
               "loss = maximum(a, b) + 3 * minimum(c, d)\n" TAIL);
  run_in(&r, "a")[0] = 2, run_in(&r, "b")[0] = 2;
  run_in(&r, "c")[0] = 2, run_in(&r, "d")[0] = 2;
  run_call(&r);
  ck_assert_double_eq_tol(run_out(&r, "grad_a")[0], 0.5, 1e-15);
  ck_assert_double_eq_tol(run_out(&r, "grad_b")[0], 0.5, 1e-15);
  ck_assert_double_eq_tol(run_out(&r, "grad_c")[0], 1.5, 1e-15);
  ck_assert_double_eq_tol(run_out(&r, "grad_d")[0], 1.5, 1e-15);
  run_free(&r);

  /* x ** 0 at 0 with the other arrangements of the exponent */
  r = run_load("param x[2]\ninput e\nloss = sum(x ** 0.0 + pow(x, 0) + "
               "x ** e)\n" TAIL);
  run_set(&r, "x", (double[]){0, 2}, 2);
  run_in(&r, "e")[0] = 0;
  run_call(&r);
  expect_vec(run_out(&r, "grad_x"), (double[]){0, 0}, 2, 0, "d x**0");
  run_free(&r);
}
END_TEST

/* prod with zeros (PyTorch): d prod / d x_i = product of the others, also
 * when some x_j is 0. */
START_TEST(test_prod_zeros) {
  Run r = run_load("param x[3]\nparam y[2, 3]\n"
                   "loss = prod(x) + sum(prod(y, axis=1) * 2)\n" TAIL);
  run_set(&r, "x", (double[]){2, 0, 3}, 3);
  run_set(&r, "y", (double[]){0, 0, 5, 4, -1, 0}, 6);
  run_call(&r);
  ck_assert_double_eq(run_out(&r, "loss")[0], 0);
  expect_vec(run_out(&r, "grad_x"), (double[]){0, 6, 0}, 3, 1e-15, "grad_x");
  expect_vec(run_out(&r, "grad_y"), (double[]){0, 0, 0, 0, 0, -8}, 6, 1e-15,
             "grad_y");
  run_free(&r);
}
END_TEST

/* grad(y, h) w.r.t. a named value follows PyTorch's tensors: a second,
 * identical expression is another tensor, not h. */
START_TEST(test_grad_named_value) {
  Run r = run_load("param x[2]\ng = exp(x)\nh = exp(x)\n"
                   "k = grad(sum(g * h), h)\nk2 = grad(sum(h * exp(x)), h)\n"
                   "output k, k2\n");
  run_set(&r, "x", (double[]){0, 1}, 2);
  run_call(&r);
  expect_vec(run_out(&r, "k"), (double[]){1, exp(1.0)}, 2, 1e-12, "k");
  expect_vec(run_out(&r, "k2"), (double[]){1, exp(1.0)}, 2, 1e-12, "k2");
  run_free(&r);
}
END_TEST

/* --accumulate adds into backward's gradients only; grad() outputs and
 * forward outputs are written. */
START_TEST(test_accumulate_only_gradients) {
  agc_graph_options opt = {0};
  opt.f64 = 1, opt.accumulate = 1;
  Run r = run_load_opt("param x[2]\ng = grad(sum(x * x), x)\n"
                       "l = sum(x * x * x)\noutput l, g\nbackward l\n", &opt);
  run_set(&r, "x", (double[]){1, 2}, 2);
  run_call(&r);
  run_call(&r);
  ck_assert_double_eq_tol(run_out(&r, "l")[0], 9, 1e-12);
  expect_vec(run_out(&r, "g"), (double[]){2, 4}, 2, 1e-12, "g");
  expect_vec(run_out(&r, "grad_x"), (double[]){6, 24}, 2, 1e-12, "grad_x");
  run_free(&r);
}
END_TEST

/* A scalar root and a seeded non-scalar root add up. */
START_TEST(test_mixed_roots) {
  Run r = run_load("param x[2]\ny = x * 3\nl = sum(y * x)\noutput y\n"
                   "backward l, y\n");
  run_set(&r, "x", (double[]){1, 2}, 2);
  run_set(&r, "grad_y", (double[]){1, 10}, 2);
  run_call(&r);
  expect_vec(run_out(&r, "grad_x"), (double[]){6 + 3, 12 + 30}, 2, 1e-12,
             "grad_x");
  run_free(&r);
}
END_TEST

/* maximum/minimum on ties with broadcasting: each side gets half, summed
 * over the broadcast. */
START_TEST(test_maximum_tie_broadcast) {
  Run r = run_load("param a[2, 3]\nparam b[3]\n"
                   "loss = sum(maximum(a, b))\n" TAIL);
  run_set(&r, "a", (double[]){1, 5, 0, 1, -1, 0}, 6);
  run_set(&r, "b", (double[]){1, 2, 0}, 3);
  run_call(&r);
  expect_vec(run_out(&r, "grad_a"), (double[]){0.5, 1, 0.5, 0.5, 0, 0.5}, 6,
             1e-15, "grad_a");
  expect_vec(run_out(&r, "grad_b"), (double[]){1, 1, 1}, 3, 1e-15, "grad_b");
  run_free(&r);
}
END_TEST

/* max_pool2d as PyTorch's CPU kernel (torch 1.13 gives these numbers): a
 * tie sends the gradient to the first maximum in scan order; a window
 * holding NaN gives NaN and sends it to its last NaN. Both backends (the
 * JIT's kernel is compiled ahead of time, the host's is in the generated
 * C), 2x2 windows (the kernel's constant case) and 3x3 ones. */
START_TEST(test_max_pool_tie_nan) {
  const double nan = NAN;
  for (int be = 0; be < 2; be++) {
    agc_graph_options opt = {0};
    opt.f64 = 1;
    opt.backend = be ? AGC_BACKEND_CC : AGC_BACKEND_TCC;
    Run r = run_load_opt("param x[1, 1, 2, 6]\ninput w[1, 1, 1, 3]\n"
                         "y = max_pool2d(x, 2)\noutput y\n"
                         "loss = sum(y * w)\n" TAIL, &opt);
    run_set(&r, "x", (double[]){1, 3, nan, 5, nan, 7, /* row 0 */
                                3, 2, nan, 2, 1, 2},  /* row 1 */
            12);
    run_set(&r, "w", (double[]){1, 2, 3}, 3);
    run_call(&r);
    double *y = run_out(&r, "y");
    ck_assert_msg(y[0] == 3 && isnan(y[1]) && isnan(y[2]),
                  "%s: y = %g %g %g, want 3 nan nan", be ? "cc" : "tcc", y[0],
                  y[1], y[2]);
    expect_vec(run_out(&r, "grad_x"),
               (double[]){0, 1, 0, 0, 3, 0, 0, 0, 2, 0, 0, 0}, 12, 0,
               be ? "grad_x (cc)" : "grad_x (tcc)");
    run_free(&r);
    /* 3x3 windows with stride 1 (the kernel's general path), overlapping:
       both windows' last NaN; then a tie of 5s, where both windows send
       their gradient to the first (1 + 2) */
    r = run_load_opt("param x[1, 1, 3, 4]\ninput w[1, 1, 1, 2]\n"
                     "y = max_pool2d(x, 3, stride=1)\noutput y\n"
                     "loss = sum(y * w)\n" TAIL, &opt);
    run_set(&r, "x", (double[]){1, nan, 3, 0, 4, 2, 4, 1, 0, 5, 1, nan}, 12);
    run_set(&r, "w", (double[]){1, 2}, 2);
    run_call(&r);
    y = run_out(&r, "y");
    ck_assert_msg(isnan(y[0]) && isnan(y[1]), "3x3: y = %g %g, want nan nan",
                  y[0], y[1]);
    expect_vec(run_out(&r, "grad_x"),
               (double[]){0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2}, 12, 0,
               "grad_x (3x3, NaN)");
    run_set(&r, "x", (double[]){1, 2, 3, 0, 4, 2, 4, 1, 0, 5, 1, 5}, 12);
    run_call(&r);
    y = run_out(&r, "y");
    ck_assert_msg(y[0] == 5 && y[1] == 5, "3x3: y = %g %g, want 5 5", y[0],
                  y[1]);
    expect_vec(run_out(&r, "grad_x"),
               (double[]){0, 0, 0, 0, 0, 0, 0, 0, 0, 3, 0, 0}, 12, 0,
               "grad_x (3x3, tie)");
    run_free(&r);
  }
}
END_TEST

/* A param no root depends on gets a zero gradient (overwritten, not left
 * as it was) and a warning. */
START_TEST(test_unused_param_zero) {
  Run r = run_load("param x[3]\nparam w[3]\nloss = sum(x * x)\n" TAIL);
  ck_assert_ptr_nonnull(strstr(agc_graph_warnings(r.g), "'w'"));
  run_set(&r, "x", (double[]){1, 2, 3}, 3);
  double *gw = run_out(&r, "grad_w");
  gw[0] = gw[1] = gw[2] = 123;
  run_call(&r);
  expect_vec(gw, (double[]){0, 0, 0}, 3, 0, "grad_w");
  expect_vec(run_out(&r, "grad_x"), (double[]){2, 4, 6}, 3, 0, "grad_x");
  run_free(&r);
}
END_TEST

/* ---- numerical stability: finite at magnitude 1e4 ----------------------- */

static void expect_finite(Run *r, const char *what) {
  for (int o = 0; o < r->nout; o++) {
    int64_t n = agc_graph_count(r->g, 1, o);
    int f64 = agc_graph_dtype(r->g, 1, o) == AGC_F64;
    for (int64_t j = 0; j < n; j++) {
      double v = f64 ? ((double *)r->out[o])[j] : ((float *)r->out[o])[j];
      ck_assert_msg(isfinite(v), "%s (%s): %s[%lld] = %g", what,
                    f64 ? "f64" : "f32", agc_graph_name(r->g, 1, o),
                    (long long)j, v);
    }
  }
}

static const char *const stable_srcs[] = {
    "param x[4]\nloss = logsumexp(x)\n" TAIL,
    "param x[2, 2]\nloss = sum(logsumexp(x, axis=1))\n" TAIL,
    "param x[2, 2]\ninput w[2, 2]\nloss = sum(softmax(x) * w)\n" TAIL,
    "param x[2, 2]\ninput w[2, 2]\nloss = sum(log_softmax(x, axis=0) * w)\n"
    TAIL,
    "param x[2, 2]\ninput lab: i32[2]\nloss = cross_entropy(x, lab)\n" TAIL,
    "param x[4]\ninput t[4]\nloss = bce_with_logits(x, t)\n" TAIL,
    "param x[4]\nloss = sum(softplus(x))\n" TAIL,
};
#define NSTABLE ((int)(sizeof stable_srcs / sizeof stable_srcs[0]))

START_TEST(test_stable) {
  static const double xs[4] = {1e4, -1e4, 3e3, -2e4};
  for (int f64 = 0; f64 < 2; f64++) {
    agc_graph_options opt = {0};
    opt.f64 = f64;
    Run r = run_load_opt(stable_srcs[_i], &opt);
    for (int i = 0; i < r.nin; i++) {
      int64_t n = agc_graph_count(r.g, 0, i);
      agc_dtype t = agc_graph_dtype(r.g, 0, i);
      const char *name = agc_graph_name(r.g, 0, i);
      for (int64_t j = 0; j < n; j++) {
        double v = strcmp(name, "x") == 0 ? xs[j % 4] : (j % 2) * 0.75;
        if (t == AGC_I32)
          ((int32_t *)r.in[i])[j] = (int32_t)(j % 2);
        else if (t == AGC_F64)
          ((double *)r.in[i])[j] = v;
        else
          ((float *)r.in[i])[j] = (float)v;
      }
    }
    run_call(&r);
    expect_finite(&r, stable_srcs[_i]);
    run_free(&r);
  }
}
END_TEST

/* Known-good values at large magnitude (f64): logsumexp([1e4, 1e4]) =
 * 1e4 + log 2, softmax gradient shares; softplus(-1e4) = 0, '(1e4) = 1. */
START_TEST(test_stable_values) {
  Run r = run_load("param x[2]\nparam z[2]\n"
                   "loss = logsumexp(x) + sum(softplus(z))\n" TAIL);
  run_set(&r, "x", (double[]){1e4, 1e4}, 2);
  run_set(&r, "z", (double[]){1e4, -1e4}, 2);
  run_call(&r);
  ck_assert_double_eq_tol(run_out(&r, "loss")[0], 2e4 + log(2.0), 1e-9);
  expect_vec(run_out(&r, "grad_x"), (double[]){0.5, 0.5}, 2, 1e-15,
             "grad_x");
  expect_vec(run_out(&r, "grad_z"), (double[]){1, 0}, 2, 1e-15, "grad_z");
  run_free(&r);
}
END_TEST

/* ===== regression: the gradient of prod() differentiated again ========== */
static const RuleCase known_bad_cases[] = {
    L2("2nd prod", "[3, 4]", "prod(x, axis=1)", "[3]", D_ANY),
    L2("2nd prod all", "[2, 3]", "prod(x)", "", D_ANY),
};
START_TEST(test_known_bad_fd) {
  fd_check(&known_bad_cases[_i], 5000 + (uint64_t)_i);
}
END_TEST

/* f32 tanh is a rational approximation (compiler/kernels.c), in the
 * generated C and, ahead of time, in the JIT: both within 5e-7 relative of
 * tanh in double over [-12, 12] and at tiny magnitudes. */
static void tanh_f32_accuracy(agc_backend be) {
  enum { N = 4096 };
  const char *src = "input x[4096]\ny = tanh(x)\noutput y\n";
  agc_graph_options opt = {.backend = be};
  char err[2048];
  agc_graph *g = agc_graph_load_source("t.graph", src, strlen(src), &opt, err,
                                       sizeof err);
  ck_assert_msg(g != NULL, "%s", err);
  static float x[N], y[N];
  for (int i = 0; i < N; i++)
    x[i] = i < 3000 ? -12.0f + 24.0f * (float)i / 2999.0f
                    : (i % 2 ? 1 : -1) * powf(10.0f, -8.0f + (float)(i - 3000) / 137.0f);
  const void *in[1] = {x};
  void *out[1] = {y};
  void *work = malloc(agc_graph_work_bytes(g) + 1);
  ck_assert_int_eq(agc_graph_call(g, in, out, work), 0);
  double worst = 0;
  for (int i = 0; i < N; i++) {
    double ref = tanh((double)x[i]);
    double rel = fabs((double)y[i] - ref) / fabs(ref);
    if (rel > worst)
      worst = rel;
  }
  ck_assert_msg(worst <= 5e-7, "tanh f32 relative error %g", worst);
  free(work);
  agc_graph_free(g);
}

START_TEST(test_tanh_f32_tcc) { tanh_f32_accuracy(AGC_BACKEND_TCC); }
END_TEST
START_TEST(test_tanh_f32_cc) { tanh_f32_accuracy(AGC_BACKEND_CC); }
END_TEST

static Suite *rules_suite(void) {
  Suite *s = suite_create("rules");
  TCase *fd = tcase_create("finite-differences");
  tcase_set_timeout(fd, 60);
  tcase_add_loop_test(fd, test_rule_fd, 0, NRULES);
  tcase_add_test(fd, test_detach);
  tcase_add_test(fd, test_two_roots);
  tcase_add_test(fd, test_long_chain_fd);
  tcase_add_test(fd, test_f32_matches_f64);
  tcase_add_test(fd, test_tanh_f32_tcc);
  tcase_add_test(fd, test_tanh_f32_cc);
  tcase_add_test(fd, test_no_grad);
  tcase_add_loop_test(fd, test_random_graphs_fd, 0, NRANDOM);
  suite_add_tcase(s, fd);

  TCase *hv = tcase_create("higher-order");
  tcase_add_test(hv, test_hvp_diagonal);
  tcase_add_test(hv, test_hvp_matmul);
  tcase_add_test(hv, test_third_order_fd);
  suite_add_tcase(s, hv);

  TCase *ex = tcase_create("pytorch-examples");
  tcase_add_test(ex, test_example1);
  tcase_add_test(ex, test_example2);
  tcase_add_test(ex, test_example3);
  tcase_add_test(ex, test_example4);
  tcase_add_test(ex, test_example5);
  tcase_add_test(ex, test_example6);
  tcase_add_test(ex, test_example7);
  tcase_add_test(ex, test_example8);
  tcase_add_test(ex, test_example9_seed);
  tcase_add_test(ex, test_example11_edges);
  tcase_add_test(ex, test_maximum_tie_broadcast);
  tcase_add_test(ex, test_max_pool_tie_nan);
  tcase_add_test(ex, test_prod_zeros);
  tcase_add_test(ex, test_grad_named_value);
  tcase_add_test(ex, test_accumulate_only_gradients);
  tcase_add_test(ex, test_mixed_roots);
  tcase_add_test(ex, test_unused_param_zero);
  suite_add_tcase(s, ex);

  TCase *st = tcase_create("stability");
  tcase_add_loop_test(st, test_stable, 0, NSTABLE);
  tcase_add_test(st, test_stable_values);
  suite_add_tcase(s, st);

  TCase *kb = tcase_create("regressions");
  tcase_add_loop_test(kb, test_known_bad_fd, 0,
                      (int)(sizeof known_bad_cases / sizeof known_bad_cases[0]));
  suite_add_tcase(s, kb);
  return s;
}

int main(void) {
  SRunner *sr = srunner_create(rules_suite());
  srunner_run_all(sr, CK_NORMAL);
  int failed = srunner_ntests_failed(sr);
  srunner_free(sr);
  return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
