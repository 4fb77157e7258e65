/* ops.c — the tables of ops.def: names, kinds, arity, constant folding,
 * the C of element-wise ops and their JIT row kernels. Nothing else in the
 * compiler lists the ops. */
#include <math.h>
#include <stddef.h>
#include <string.h>

#include "agc.h"

/* Folding: the arithmetic of each op's "C" column, in double. */
static double fold_neg(double x) { return -x; }
static double fold_sigmoid(double x) { return 1 / (1 + exp(-x)); }
static double fold_relu(double x) { return x > 0 ? x : 0; }
static double fold_rsqrt(double x) { return 1 / sqrt(x); }
static double fold_softplus(double x) {
  return x > 0 ? x + log1p(exp(-x)) : log1p(exp(x));
}
static double fold_sign(double x) { return (x > 0) - (x < 0); }
static double fold_id(double x) { return x; }
static double fold_add(double a, double b) { return a + b; }
static double fold_sub(double a, double b) { return a - b; }
static double fold_mul(double a, double b) { return a * b; }
static double fold_div(double a, double b) { return a / b; }
static double fold_maximum(double a, double b) { return a > b ? a : b; }
static double fold_minimum(double a, double b) { return a < b ? a : b; }
static double fold_lt(double a, double b) { return a < b; }
static double fold_le(double a, double b) { return a <= b; }
static double fold_gt(double a, double b) { return a > b; }
static double fold_ge(double a, double b) { return a >= b; }
static double fold_eq(double a, double b) { return a == b; }
static double fold_ne(double a, double b) { return a != b; }

typedef void (*AnyFn)(void); /* cast back to its arity's type to call */

static const struct {
  const char *name;
  int arity;
  OpKind kind;
  AnyFn fold;
  const char *ctext;
  int row;
  int fn;
} ops[OP_COUNT] = {
#define X(name, text, arity, kind, fold, ctext, row, fn) \
  {text, arity, K_##kind, (AnyFn)(fold), ctext, ROW_##row, fn},
#include "ops.def"
#undef X
};

const char *op_name(Op op) { return ops[op].name; }
OpKind op_kind(Op op) { return ops[op].kind; }
int op_arity(Op op) { return ops[op].arity; }
const char *op_ctext(Op op) { return ops[op].ctext; }
int op_row(Op op) { return ops[op].row; }
int op_is_fn(Op op) { return ops[op].fn; }
int op_folds(Op op) { return ops[op].fold != NULL; }

double op_fold1(Op op, double x) {
  if (ops[op].arity != 1 || !ops[op].fold)
    return NAN;
  return ((double (*)(double))ops[op].fold)(x);
}

double op_fold2(Op op, double a, double b) {
  if (ops[op].arity != 2 || !ops[op].fold)
    return NAN;
  return ((double (*)(double, double))ops[op].fold)(a, b);
}

/* The next math call `NAME$f(...)` of template t at or after from: the
 * start of NAME (its length and argument count in *len, *nargs), or NULL. */
const char *op_math_call(const char *t, const char *from, size_t *len,
                         int *nargs) {
  const char *q = from ? strstr(from, "$f(") : NULL;
  if (!q)
    return NULL;
  const char *b = q;
  while (b > t && ((b[-1] >= 'a' && b[-1] <= 'z') ||
                   (b[-1] >= '0' && b[-1] <= '9')))
    b--;
  int depth = 0;
  *nargs = 1;
  for (const char *r = q + 3; *r && depth >= 0; r++) {
    if (*r == '(')
      depth++;
    else if (*r == ')')
      depth--;
    else if (*r == ',' && depth == 0)
      ++*nargs;
  }
  *len = (size_t)(q - b);
  return b;
}

/* Is name a C math function the generated code may call: a math call of an
 * op's template, exp or tanh ($E, $H), with or without the f suffix? */
int op_is_libm_name(const char *name) {
  size_t n = strlen(name), len;
  int nargs;
  if (n && name[n - 1] == 'f')
    n--; /* expf as exp */
  if ((n == 3 && strncmp(name, "exp", 3) == 0) ||
      (n == 4 && strncmp(name, "tanh", 4) == 0))
    return 1;
  for (int op = 0; op < OP_COUNT; op++) {
    const char *t = ops[op].ctext;
    for (const char *b = op_math_call(t, t, &len, &nargs); b;
         b = op_math_call(t, b + len + 3, &len, &nargs))
      if (len == n && strncmp(b, name, n) == 0)
        return 1;
  }
  return 0;
}
