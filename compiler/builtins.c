/* builtins.c — the functions of the .graph language: each call is checked
 * (arity, names of arguments, shapes) and lowered to the primitives of
 * ops.def; parse.c calls ps_call for every `name(args)`. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "parse.h"

/* the one-argument functions: the rows of ops.def marked fn */
#define FN_0(text, name)
#define FN_1(text, name) {text, OP_##name},

/* PyTorch's and NumPy's names for arguments the language names otherwise. */
static const struct {
  const char *from, *to;
} arg_aliases[] = {
    {"dim", "axis"},      {"dims", "axis"},        {"axes", "axis"},
    {"keepdims", "keepdim"}, {"dim0", "a"},        {"dim1", "b"},
    {"min", "lo"},        {"max", "hi"},           {"kernel_size", "k"},
    {"weight", "w"},      {"input", "x"},          {"target", "t"},
    {"size", "shape"},    {"fill_value", "value"}, {"indices", "idx"},
    {"condition", "cond"}, {"other", "b"},         {"exponent", "b"},
};

/* The argument name k's function takes that `given` most likely means. */
static const char *arg_suggestion(const Call *k, const char *given) {
  for (size_t i = 0; i < sizeof arg_aliases / sizeof arg_aliases[0]; i++)
    if (strcmp(given, arg_aliases[i].from) == 0)
      for (int j = 0; j < k->nasked; j++)
        if (strcmp(k->asked[j], arg_aliases[i].to) == 0)
          return k->asked[j];
  return nearest_name(given, k->asked, k->nasked);
}

_Noreturn static void no_such_arg(P *p, Call *k, int j) {
  const char *hint = arg_suggestion(k, k->named[j].argname);
  if (hint)
    error_at(p->c, k->named[j].loc, "%s() has no argument named '%s'; did "
             "you mean '%s'?", k->fn, k->named[j].argname, hint);
  StrBuf b = {0};
  for (int i = 0; i < k->nasked; i++)
    sb_printf(&b, "%s%s", i ? ", " : "", k->asked[i]);
  char *list = arena_strndup(&p->c->arena, b.s ? b.s : "", b.len);
  sb_free(&b);
  error_at(p->c, k->named[j].loc, "%s() has no argument named '%s' (its "
           "arguments: %s)", k->fn, k->named[j].argname, list);
}

static Val *argp(P *p, Call *k, int i, const char *name, int required) {
  int seen = 0;
  for (int j = 0; j < k->nasked; j++)
    seen |= strcmp(k->asked[j], name) == 0;
  if (!seen && k->nasked < 16)
    k->asked[k->nasked++] = name;
  if (i < k->npos)
    return &k->pos[i];
  for (int j = 0; j < k->nnamed; j++)
    if (strcmp(k->named[j].argname, name) == 0) {
      k->used[j] = 1;
      return &k->named[j];
    }
  if (required) {
    /* sum(x=..) misspelt: say so rather than that x is missing */
    for (int j = 0; j < k->nnamed; j++)
      if (!k->used[j]) {
        const char *h = arg_suggestion(k, k->named[j].argname);
        if (h && strcmp(h, name) == 0)
          no_such_arg(p, k, j);
      }
    error_at(p->c, k->loc, "%s() needs argument '%s'", k->fn, name);
  }
  return NULL;
}

static void check_arity(P *p, Call *k, int maxpos) {
  if (k->npos > maxpos)
    error_at(p->c, k->pos[maxpos].loc, "%s() takes at most %d positional "
             "argument%s, got %d", k->fn, maxpos, maxpos == 1 ? "" : "s",
             k->npos);
}

static void check_named(P *p, Call *k) {
  for (int j = 0; j < k->nnamed; j++)
    if (!k->used[j])
      no_such_arg(p, k, j);
}

/* axis=k or axis=[..] into a mask; none → all axes. *single is set when
 * the user named exactly one integer axis (first-max semantics). */
static unsigned axis_mask(P *p, Call *k, int idx, int rank, int *single) {
  Val *v = argp(p, k, idx, "axis", 0);
  *single = 0;
  if (!v)
    return rank ? (1u << rank) - 1 : 0;
  if (v->kind == V_LIST) {
    unsigned m = 0;
    for (int i = 0; i < v->nitems; i++) {
      int a = ps_norm_axis(p, ps_need_int(p, v->items[i], k->fn, "an axis"), rank,
                        v->items[i].loc);
      if (m & (1u << a))
        error_at(p->c, v->items[i].loc, "%s: axis %d listed twice", k->fn, a);
      m |= 1u << a;
    }
    return m;
  }
  int a = ps_norm_axis(p, ps_need_int(p, *v, k->fn, "axis"), rank, v->loc);
  *single = 1;
  return rank ? 1u << a : 0;
}

static int bool_arg(P *p, Call *k, int idx, const char *name, int dflt) {
  Val *v = argp(p, k, idx, name, 0);
  if (!v)
    return dflt;
  if (v->kind != V_BOOL)
    error_at(p->c, v->loc, "%s: %s must be true or false", k->fn, name);
  return v->b;
}

/* Drops the reduced (size-1) axes of a keepdim result. */
static int drop_axes(P *p, int r, unsigned mask, Loc loc) {
  Shape s = ps_shape(p, r), o = {0, {0}};
  for (int i = 0; i < s.rank; i++)
    if (!(mask & (1u << i)))
      o.d[o.rank++] = s.d[i];
  return ir_reshape(p->c, r, o, loc);
}

static int64_t mask_count(Shape s, unsigned mask) {
  int64_t n = 1;
  for (int i = 0; i < s.rank; i++)
    if (mask & (1u << i))
      n *= s.d[i];
  return n;
}

static int max_keep(P *p, Op op, int x, unsigned mask, int single, Loc loc) {
  int r = ir_reduce(p->c, op, x, mask, loc);
  if (single && r != x && ps_node(p, r)->op == op) {
    /* Same values, but the gradient goes to the first extremum only. */
    Node t = *ps_node(p, r);
    t.flags = 1;
    r = ir_node(p->c, &t, ps_node(p, r)->in);
  }
  return r;
}

/* The pieces of a stable softmax over mask (keepdim): m is the detached
 * max, so exp never overflows, and the result is exact for any m. Each
 * user-visible function is built from the pieces that keep f32 accurate:
 * logsumexp = log(s) + m, softmax = e / s, log_softmax = (x - m) - log(s). */
typedef struct {
  int m, shifted, e, s, logs;
} Lse;

static Lse lse_parts(P *p, int x, unsigned mask, Loc loc) {
  Ctx *c = p->c;
  Lse l;
  l.m = ir_unary(c, OP_DETACH, ir_reduce(c, OP_MAX, x, mask, loc), loc);
  l.shifted = ir_binary(c, OP_SUB, x, l.m, loc);
  l.e = ir_unary(c, OP_EXP, l.shifted, loc);
  l.s = ir_reduce(c, OP_SUM, l.e, mask, loc);
  l.logs = ir_unary(c, OP_LOG, l.s, loc);
  return l;
}

static int lse_keep(P *p, int x, unsigned mask, Loc loc) {
  Lse l = lse_parts(p, x, mask, loc);
  return ir_binary(p->c, OP_ADD, l.logs, l.m, loc);
}

static int log_softmax_of(P *p, int x, unsigned mask, Loc loc) {
  Lse l = lse_parts(p, x, mask, loc);
  return ir_binary(p->c, OP_SUB, l.shifted, l.logs, loc);
}

int ps_matmul_any(P *p, int a, int b, Loc loc) {
  Ctx *c = p->c;
  Shape sa = ps_shape(p, a), sb = ps_shape(p, b);
  if (sa.rank == 0 || sb.rank == 0)
    error_at(c, loc, "matmul operands must have at least 1 dimension (got "
             "rank %d and %d)", sa.rank, sb.rank);
  int va = sa.rank == 1, vb = sb.rank == 1;
  int64_t ka = sa.d[sa.rank - 1], kb = sb.d[sb.rank > 1 ? sb.rank - 2 : 0];
  if (ka != kb) {
    char s1[128], s2[128];
    shape_str(&sa, s1, sizeof s1);
    shape_str(&sb, s2, sizeof s2);
    error_at(c, loc, "matmul inner dimensions differ: %s @ %s (%lld vs %lld)",
             s1, s2, (long long)ka, (long long)kb);
  }
  if (va) { /* [K] -> [1, K] */
    Shape s = {2, {1, sa.d[0]}};
    a = ir_reshape(c, a, s, loc);
  }
  if (vb) { /* [K] -> [K, 1] */
    Shape s = {2, {sb.d[0], 1}};
    b = ir_reshape(c, b, s, loc);
  }
  int r = ir_matmul(c, a, b, 0, loc);
  if (va || vb) {
    Shape s = ps_shape(p, r), o = {0, {0}};
    for (int i = 0; i < s.rank; i++) {
      if (va && i == s.rank - 2)
        continue;
      if (vb && i == s.rank - 1)
        continue;
      o.d[o.rank++] = s.d[i];
    }
    r = ir_reshape(c, r, o, loc);
  }
  return r;
}

int ps_transpose2(P *p, int x, int a, int b, Loc loc) {
  int perm[MAX_RANK];
  for (int i = 0; i < MAX_RANK; i++)
    perm[i] = i;
  perm[a] = b;
  perm[b] = a;
  (void)p;
  return ir_transpose(p->c, x, perm, loc);
}

static int grad_call(P *p, Call *k) {
  Ctx *c = p->c;
  check_arity(p, k, 3);
  int y = ps_need_node(p, *argp(p, k, 0, "y", 1), "grad");
  Val *xv = argp(p, k, 1, "x", 1);
  int x = ps_need_node(p, *xv, "grad");
  Val *vv = argp(p, k, 2, "v", 0);
  check_named(p, k);
  if (ps_node(p, x)->dt == DT_I32)
    error_at(c, xv->loc, "grad: cannot differentiate with respect to an "
             "i32 value");
  if (ps_node(p, y)->dt == DT_I32)
    error_at(c, k->pos[0].loc, "grad: cannot differentiate an i32 value");
  int seed = -1;
  if (vv) {
    seed = ps_need_node(p, *vv, "grad");
    Shape sy = ps_shape(p, y), sv = ps_shape(p, seed);
    if (sy.rank != sv.rank || memcmp(sy.d, sv.d, sizeof sy.d[0] *
                                                     (size_t)sy.rank)) {
      char a[128], b[128];
      shape_str(&sy, a, sizeof a);
      shape_str(&sv, b, sizeof b);
      error_at(c, vv->loc, "grad: seed v has shape %s but y has shape %s", b,
               a);
    }
  } else if (ps_shape(p, y).rank != 0 && ps_node(p, y)->numel != 1) {
    char a[128];
    Shape sy = ps_shape(p, y);
    shape_str(&sy, a, sizeof a);
    error_at(c, k->pos[0].loc, "grad: y has shape %s; grad can be implicitly "
             "created only for a scalar y (pass a seed: grad(y, x, v))", a);
  }
  int g, unused = 0;
  autodiff(c, &y, &seed, 1, &x, 1, &g, &unused, k->loc);
  if (unused)
    warn_at(c, xv->loc, "grad: y does not depend on this value; its "
            "gradient is zero");
  return g;
}


static int64_t small_int_arg(P *p, Call *k, int idx, const char *name,
                             int64_t dflt, int64_t min) {
  Val *v = argp(p, k, idx, name, dflt < 0);
  if (!v)
    return dflt;
  int64_t x = ps_need_int(p, *v, k->fn, name);
  if (x < min || x > 65536)
    error_at(p->c, v->loc, "%s: %s must be an integer from %lld to 65536, "
             "got %lld", k->fn, name, (long long)min, (long long)x);
  return x;
}

static int rank4(P *p, Val *v, const char *fn, const char *what) {
  int x = ps_need_node(p, *v, fn);
  if (ps_shape(p, x).rank != 4)
    error_at(p->c, v->loc, "%s: %s must be 4-D [%s], got rank %d", fn, what,
             what[0] == 'x' ? "N, C, H, W" : "O, C, KH, KW",
             ps_shape(p, x).rank);
  if (ps_node(p, x)->dt == DT_I32)
    error_at(p->c, v->loc, "%s: %s must be a float tensor", fn, what);
  return x;
}

/* conv2d(x[N,C,H,W], w[O,C,KH,KW], stride=1, padding=0) */
static int conv2d_call(P *p, Call *k) {
  check_arity(p, k, 4);
  Val *xv = argp(p, k, 0, "x", 1), *wv = argp(p, k, 1, "w", 1);
  int x = rank4(p, xv, "conv2d", "x"), w = rank4(p, wv, "conv2d", "w");
  int64_t st = small_int_arg(p, k, 2, "stride", 1, 1);
  int64_t pad = small_int_arg(p, k, 3, "padding", 0, 0);
  check_named(p, k);
  Shape sx = ps_shape(p, x), sw = ps_shape(p, w);
  if (sx.d[1] != sw.d[1])
    error_at(p->c, wv->loc, "conv2d: x has %lld channels but w expects %lld",
             (long long)sx.d[1], (long long)sw.d[1]);
  int64_t hp = sx.d[2] + 2 * pad, wp = sx.d[3] + 2 * pad;
  if (sw.d[2] > hp || sw.d[3] > wp)
    error_at(p->c, k->loc, "conv2d: kernel %lldx%lld is larger than the "
             "padded input %lldx%lld", (long long)sw.d[2], (long long)sw.d[3],
             (long long)hp, (long long)wp);
  Shape s = {4, {sx.d[0], sw.d[0],
                 shape_dim(p->c, (hp - sw.d[2]) / st + 1, k->loc),
                 shape_dim(p->c, (wp - sw.d[3]) / st + 1, k->loc)}};
  int in[2] = {x, w}, at[2] = {(int)st, (int)pad};
  return ir_special(p->c, OP_CONV2D, in, 2, s, at, 2, k->loc);
}

/* max_pool2d(x, k, stride=k), avg_pool2d(x, k, stride=k): no padding,
 * floor mode (PyTorch's defaults). */
static int pool_call(P *p, Call *k) {
  check_arity(p, k, 3);
  Val *xv = argp(p, k, 0, "x", 1);
  int x = rank4(p, xv, k->fn, "x");
  int64_t ks = small_int_arg(p, k, 1, "k", -1, 1);
  int64_t st = small_int_arg(p, k, 2, "stride", ks, 1);
  check_named(p, k);
  Shape sx = ps_shape(p, x);
  if (ks > sx.d[2] || ks > sx.d[3])
    error_at(p->c, k->loc, "%s: window %lld is larger than the input %lldx%lld",
             k->fn, (long long)ks, (long long)sx.d[2], (long long)sx.d[3]);
  Shape s = {4, {sx.d[0], sx.d[1], (sx.d[2] - ks) / st + 1,
                 (sx.d[3] - ks) / st + 1}};
  int at[2] = {(int)ks, (int)st};
  return ir_special(p->c, k->fn[0] == 'm' ? OP_MAXPOOL : OP_AVGPOOL, &x, 1, s,
                    at, 2, k->loc);
}

/* embedding(table[V, D], idx: i32[...]) -> [..., D] */
static int embedding_call(P *p, Call *k) {
  check_arity(p, k, 2);
  Val *tv = argp(p, k, 0, "table", 1), *iv = argp(p, k, 1, "idx", 1);
  int t = ps_need_node(p, *tv, "embedding"), idx = ps_need_node(p, *iv, "embedding");
  check_named(p, k);
  if (ps_shape(p, t).rank != 2 || ps_node(p, t)->dt == DT_I32)
    error_at(p->c, tv->loc, "embedding: table must be a 2-D float tensor "
             "[V, D]");
  if (ps_node(p, idx)->dt != DT_I32)
    error_at(p->c, iv->loc, "embedding: indices must be an i32 input");
  Shape s = ps_shape(p, idx);
  if (s.rank >= MAX_RANK)
    error_at(p->c, iv->loc, "embedding: result would have more than %d "
             "dimensions", MAX_RANK);
  s.d[s.rank++] = ps_shape(p, t).d[1];
  int in[2] = {t, idx};
  return ir_special(p->c, OP_EMBED, in, 2, s, NULL, 0, k->loc);
}

/* ---- names for "did you mean" ------------------------------------------------ */

/* PyTorch's and NumPy's names for what the language writes otherwise. */
static const struct {
  const char *from, *to;
} fn_aliases[] = {
    {"matmul", "the @ operator: a @ b"}, {"mm", "the @ operator: a @ b"},
    {"bmm", "the @ operator: a @ b"},    {"dot", "the @ operator: a @ b"},
    {"add", "the + operator"},           {"sub", "the - operator"},
    {"mul", "the * operator"},           {"div", "the / operator"},
    {"cat", "concat"},                   {"concatenate", "concat"},
    {"stack", "concat of unsqueeze()d tensors"},
    {"view", "reshape"},                 {"expand", "broadcast_to"},
    {"permute", "transpose (two axes at a time)"},
    {"clip", "clamp"},                   {"amax", "max"},
    {"amin", "min"},                     {"power", "pow"},
    {"mse", "mse_loss"},                 {"nll_loss", "cross_entropy"},
    {"binary_cross_entropy_with_logits", "bce_with_logits"},
    {"logsoftmax", "log_softmax"},       {"exponential", "exp"},
    {"t", "x.T"},                        {"full_like", "full"},
    {"zeros_like", "zeros"},             {"ones_like", "ones"},
};

static const struct {
  const char *name;
  Op op;
} unary_fns[] = {
#define X(name, text, arity, kind, fold, ctext, row, fn) FN_##fn(text, name)
#include "ops.def"
#undef X
};
#undef FN_0
#undef FN_1

/* Each function of the language is a handler: it checks its arguments and
 * lowers the call to primitives. HEAD declares what every handler uses. */
#define HEAD                                                                   \
  Ctx *c = p->c;                                                               \
  const char *fn = k->fn;                                                      \
  Loc loc = k->loc;                                                            \
  (void)c, (void)fn, (void)loc

static int fn_unary(P *p, Call *k) {
  HEAD;
  for (size_t i = 0; i < sizeof unary_fns / sizeof unary_fns[0]; i++)
    if (strcmp(fn, unary_fns[i].name) == 0) {
      check_arity(p, k, 1);
      int x = ps_need_node(p, *argp(p, k, 0, "x", 1), fn);
      check_named(p, k);
      return ir_unary(c, unary_fns[i].op, x, loc);
    }
  return -1;
}
static int fn_square(P *p, Call *k) {
  HEAD;
  check_arity(p, k, 1);
  int x = ps_need_node(p, *argp(p, k, 0, "x", 1), fn);
  check_named(p, k);
  return ir_binary(c, OP_MUL, x, x, loc);
}

static int fn_gelu(P *p, Call *k) { /* exact: x * Phi(x) */
  HEAD;
  check_arity(p, k, 1);
  int x = ps_need_node(p, *argp(p, k, 0, "x", 1), fn);
  check_named(p, k);
  int u = ir_binary(c, OP_MUL, x, ir_scalar(c, 0.70710678118654752440), loc);
  int phi = ir_binary(c, OP_MUL, ir_scalar(c, 0.5),
                      ir_binary(c, OP_ADD, ir_scalar(c, 1),
                                ir_unary(c, OP_ERF, u, loc), loc), loc);
  return ir_binary(c, OP_MUL, x, phi, loc);
}

static int fn_binary(P *p, Call *k) {
  HEAD;
  Op op = fn[1] == 'o' ? OP_POW : fn[1] == 'a' ? OP_MAXIMUM : OP_MINIMUM;
  check_arity(p, k, 2);
  int a = ps_need_node(p, *argp(p, k, 0, "a", 1), fn);
  int b = ps_need_node(p, *argp(p, k, 1, "b", 1), fn);
  check_named(p, k);
  return ir_binary(c, op, a, b, loc);
}

static int fn_where(P *p, Call *k) {
  HEAD;
  check_arity(p, k, 3);
  int cond = ps_need_node(p, *argp(p, k, 0, "cond", 1), fn);
  int a = ps_need_node(p, *argp(p, k, 1, "a", 1), fn);
  int b = ps_need_node(p, *argp(p, k, 2, "b", 1), fn);
  check_named(p, k);
  return ir_where(c, cond, a, b, loc);
}

static int fn_clamp(P *p, Call *k) {
  HEAD;
  /* PyTorch's clamp: the gradient passes where lo <= x <= hi. */
  check_arity(p, k, 3);
  int x = ps_need_node(p, *argp(p, k, 0, "x", 1), fn);
  int lo = ps_need_node(p, *argp(p, k, 1, "lo", 1), fn);
  int hi = ps_need_node(p, *argp(p, k, 2, "hi", 1), fn);
  check_named(p, k);
  int up = ir_where(c, ir_binary(c, OP_GT, x, hi, loc), hi, x, loc);
  return ir_where(c, ir_binary(c, OP_LT, x, lo, loc), lo, up, loc);
}

/* sum mean max min prod logsumexp (x, axis=None, keepdim=false) */
static int fn_reduce(P *p, Call *k) {
  HEAD;
  check_arity(p, k, 3);
  int x = ps_need_node(p, *argp(p, k, 0, "x", 1), fn);
  int rank = ps_shape(p, x).rank, single;
  unsigned mask = axis_mask(p, k, 1, rank, &single);
  int keep = bool_arg(p, k, 2, "keepdim", 0);
  check_named(p, k);
  int r;
  if (strcmp(fn, "logsumexp") == 0) {
    r = lse_keep(p, x, mask, loc);
  } else if (strcmp(fn, "prod") == 0) {
    r = ir_reduce(c, OP_PROD, x, mask, loc);
  } else if (strcmp(fn, "sum") == 0 || strcmp(fn, "mean") == 0) {
    r = ir_reduce(c, OP_SUM, x, mask, loc);
    if (strcmp(fn, "mean") == 0)
      r = ir_binary(c, OP_DIV, r,
                    ir_scalar(c, (double)mask_count(ps_shape(p, x), mask)), loc);
  } else {
    r = max_keep(p, strcmp(fn, "max") == 0 ? OP_MAX : OP_MIN, x, mask,
                 single, loc);
  }
  return keep ? r : drop_axes(p, r, mask, loc);
}

static int fn_softmax(P *p, Call *k) {
  HEAD;
  check_arity(p, k, 2);
  int x = ps_need_node(p, *argp(p, k, 0, "x", 1), fn);
  Val *av = argp(p, k, 1, "axis", 0);
  check_named(p, k);
  int rank = ps_shape(p, x).rank;
  int ax = av ? ps_norm_axis(p, ps_need_int(p, *av, fn, "axis"), rank, av->loc)
              : ps_norm_axis(p, -1, rank, loc);
  unsigned mask = rank ? 1u << ax : 0;
  if (fn[0] == 'l')
    return log_softmax_of(p, x, mask, loc);
  Lse l = lse_parts(p, x, mask, loc);
  return ir_binary(c, OP_DIV, l.e, l.s, loc);
}

static int fn_mse_loss(P *p, Call *k) {
  HEAD;
  check_arity(p, k, 2);
  int y = ps_need_node(p, *argp(p, k, 0, "y", 1), fn);
  int t = ps_need_node(p, *argp(p, k, 1, "t", 1), fn);
  check_named(p, k);
  int d = ir_binary(c, OP_SUB, y, t, loc);
  int sq = ir_binary(c, OP_MUL, d, d, loc);
  Shape s = ps_shape(p, sq);
  unsigned all = s.rank ? (1u << s.rank) - 1 : 0;
  int r = ir_reduce(c, OP_SUM, sq, all, loc);
  r = ir_binary(c, OP_DIV, r, ir_scalar(c, (double)ps_node(p, sq)->numel), loc);
  return drop_axes(p, r, all, loc);
}

static int fn_bce_with_logits(P *p, Call *k) {
  HEAD;
  check_arity(p, k, 2);
  int z = ps_need_node(p, *argp(p, k, 0, "z", 1), fn);
  int t = ps_need_node(p, *argp(p, k, 1, "t", 1), fn);
  check_named(p, k);
  int l = ir_binary(c, OP_SUB, ir_unary(c, OP_SOFTPLUS, z, loc),
                    ir_binary(c, OP_MUL, z, t, loc), loc);
  Shape s = ps_shape(p, l);
  unsigned all = s.rank ? (1u << s.rank) - 1 : 0;
  int r = ir_reduce(c, OP_SUM, l, all, loc);
  r = ir_binary(c, OP_DIV, r, ir_scalar(c, (double)ps_node(p, l)->numel), loc);
  return drop_axes(p, r, all, loc);
}

static int fn_cross_entropy(P *p, Call *k) {
  HEAD;
  check_arity(p, k, 2);
  Val *lv = argp(p, k, 0, "logits", 1);
  int z = ps_need_node(p, *lv, fn);
  Val *yv = argp(p, k, 1, "labels", 1);
  int y = ps_need_node(p, *yv, fn);
  check_named(p, k);
  Shape sz = ps_shape(p, z), sy = ps_shape(p, y);
  if (sz.rank != 2)
    error_at(c, lv->loc, "cross_entropy: logits must be [N, C], got rank %d",
             sz.rank);
  if (ps_node(p, y)->dt != DT_I32)
    error_at(c, yv->loc, "cross_entropy: labels must be an i32 input");
  if (sy.rank != 1 || sy.d[0] != sz.d[0])
    error_at(c, yv->loc, "cross_entropy: labels must have shape [%lld]",
             (long long)sz.d[0]);
  int lsm = log_softmax_of(p, z, 2u, loc);
  int oh = ir_onehot(c, y, sz.d[1], loc);
  int picked = ir_reduce(c, OP_SUM, ir_binary(c, OP_MUL, lsm, oh, loc), 3u,
                         loc);
  int r = ir_binary(c, OP_DIV, picked, ir_scalar(c, -(double)sz.d[0]), loc);
  return drop_axes(p, r, 3u, loc);
}

static int fn_reshape(P *p, Call *k) {
  HEAD;
  check_arity(p, k, 2);
  int x = ps_need_node(p, *argp(p, k, 0, "x", 1), fn);
  Shape s = ps_need_shape(p, *argp(p, k, 1, "shape", 1), fn, ps_node(p, x)->numel);
  check_named(p, k);
  return ir_reshape(c, x, s, loc);
}

static int fn_broadcast_to(P *p, Call *k) {
  HEAD;
  check_arity(p, k, 2);
  int x = ps_need_node(p, *argp(p, k, 0, "x", 1), fn);
  Shape s = ps_need_shape(p, *argp(p, k, 1, "shape", 1), fn, -1);
  check_named(p, k);
  return ir_broadcast(c, x, s, loc);
}

static int fn_transpose(P *p, Call *k) {
  HEAD;
  check_arity(p, k, 3);
  int x = ps_need_node(p, *argp(p, k, 0, "x", 1), fn);
  int r = ps_shape(p, x).rank;
  Val *av = argp(p, k, 1, "a", 1), *bv = argp(p, k, 2, "b", 1);
  int a = ps_norm_axis(p, ps_need_int(p, *av, fn, "axis"), r, av->loc);
  int b = ps_norm_axis(p, ps_need_int(p, *bv, fn, "axis"), r, bv->loc);
  check_named(p, k);
  if (r == 0)
    return x;
  return ps_transpose2(p, x, a, b, loc);
}

static int fn_unsqueeze(P *p, Call *k) {
  HEAD;
  check_arity(p, k, 2);
  int x = ps_need_node(p, *argp(p, k, 0, "x", 1), fn);
  Val *av = argp(p, k, 1, "axis", 1);
  check_named(p, k);
  Shape s = ps_shape(p, x), o = {0, {0}};
  if (fn[0] == 'u') {
    if (s.rank >= MAX_RANK)
      error_at(c, loc, "unsqueeze: rank would exceed %d", MAX_RANK);
    int ax = ps_norm_axis(p, ps_need_int(p, *av, fn, "axis"), s.rank + 1, av->loc);
    for (int i = 0, j = 0; i <= s.rank; i++)
      o.d[o.rank++] = i == ax ? 1 : s.d[j++];
  } else {
    int ax = ps_norm_axis(p, ps_need_int(p, *av, fn, "axis"), s.rank, av->loc);
    if (s.rank == 0 || s.d[ax] != 1)
      return x; /* PyTorch: squeezing a non-1 axis is a no-op */
    for (int i = 0; i < s.rank; i++)
      if (i != ax)
        o.d[o.rank++] = s.d[i];
  }
  return ir_reshape(c, x, o, loc);
}

static int fn_concat(P *p, Call *k) {
  HEAD;
  check_arity(p, k, 2);
  Val *lv = argp(p, k, 0, "tensors", 1);
  if (lv->kind != V_LIST || lv->nitems == 0)
    error_at(c, lv->loc, "concat: expected a non-empty list [a, b, ...]");
  Val *av = argp(p, k, 1, "axis", 0);
  check_named(p, k);
  int first = ps_need_node(p, lv->items[0], fn);
  Shape s0 = ps_shape(p, first);
  if (s0.rank == 0)
    error_at(c, lv->items[0].loc, "concat: cannot concatenate scalars");
  int ax = av ? ps_norm_axis(p, ps_need_int(p, *av, fn, "axis"), s0.rank, av->loc)
              : 0;
  int64_t total = 0;
  for (int i = 0; i < lv->nitems; i++) {
    int x = ps_need_node(p, lv->items[i], fn);
    Shape s = ps_shape(p, x);
    int ok = s.rank == s0.rank;
    for (int d = 0; ok && d < s.rank; d++)
      if (d != ax && s.d[d] != s0.d[d])
        ok = 0;
    if (!ok) {
      char a[128], b[128];
      shape_str(&s0, a, sizeof a);
      shape_str(&s, b, sizeof b);
      error_at(c, lv->items[i].loc, "concat: shape %s does not match %s "
               "outside axis %d", b, a, ax);
    }
    total += s.d[ax];
  }
  /* concat = sum of zero-padded parts: PAD and its adjoint SLICE are
     the only primitives needed. */
  Shape out = s0;
  out.d[ax] = shape_dim(c, total, k->loc);
  int r = -1;
  int64_t at = 0;
  for (int i = 0; i < lv->nitems; i++) {
    int x = lv->items[i].node;
    int64_t start[MAX_RANK] = {0};
    start[ax] = at;
    at += ps_shape(p, x).d[ax];
    int padded = ir_slice(c, OP_PAD, x, start, out, loc);
    r = r < 0 ? padded : ir_binary(c, OP_ADD, r, padded, loc);
  }
  return r;
}

static int fn_zeros(P *p, Call *k) {
  HEAD;
  int isfull = fn[0] == 'f';
  check_arity(p, k, isfull ? 2 : 1);
  Shape s = ps_need_shape(p, *argp(p, k, 0, "shape", 1), fn, -1);
  double v = fn[0] == 'o';
  if (isfull)
    v = ps_need_number(p, *argp(p, k, 1, "value", 1), fn, "the value");
  check_named(p, k);
  return ir_const(c, v, s);
}

/* The functions of the language, by name (docs/language.md). */
static const struct {
  const char *name;
  int (*lower)(P *p, Call *k);
} builtins[] = {
    {"square", fn_square},         {"gelu", fn_gelu},
    {"pow", fn_binary},            {"maximum", fn_binary},
    {"minimum", fn_binary},        {"where", fn_where},
    {"clamp", fn_clamp},           {"sum", fn_reduce},
    {"mean", fn_reduce},           {"max", fn_reduce},
    {"min", fn_reduce},            {"prod", fn_reduce},
    {"logsumexp", fn_reduce},      {"softmax", fn_softmax},
    {"log_softmax", fn_softmax},   {"mse_loss", fn_mse_loss},
    {"bce_with_logits", fn_bce_with_logits},
    {"cross_entropy", fn_cross_entropy},
    {"reshape", fn_reshape},       {"broadcast_to", fn_broadcast_to},
    {"transpose", fn_transpose},   {"unsqueeze", fn_unsqueeze},
    {"squeeze", fn_unsqueeze},     {"concat", fn_concat},
    {"zeros", fn_zeros},           {"ones", fn_zeros},
    {"full", fn_zeros},            {"conv2d", conv2d_call},
    {"max_pool2d", pool_call},     {"avg_pool2d", pool_call},
    {"embedding", embedding_call}, {"grad", grad_call},
};
#define N_BUILTINS ((int)(sizeof builtins / sizeof builtins[0]))

int ps_is_function(const char *name) {
  for (size_t i = 0; i < sizeof unary_fns / sizeof unary_fns[0]; i++)
    if (strcmp(name, unary_fns[i].name) == 0)
      return 1;
  for (int i = 0; i < N_BUILTINS; i++)
    if (strcmp(name, builtins[i].name) == 0)
      return 1;
  return 0;
}

/* What to suggest for an unknown function name, or NULL. */
const char *ps_fn_suggestion(const char *name) {
  for (size_t i = 0; i < sizeof fn_aliases / sizeof fn_aliases[0]; i++)
    if (strcmp(name, fn_aliases[i].from) == 0)
      return fn_aliases[i].to;
  enum { NU = sizeof unary_fns / sizeof unary_fns[0] };
  const char *names[NU + N_BUILTINS];
  int n = 0;
  for (size_t i = 0; i < NU; i++)
    names[n++] = unary_fns[i].name;
  for (int i = 0; i < N_BUILTINS; i++)
    names[n++] = builtins[i].name;
  return nearest_name(name, names, n);
}

_Noreturn static void unknown_function(P *p, const char *fn, Loc loc) {
  const char *hint = ps_fn_suggestion(fn);
  if (hint && strchr(hint, ' '))
    error_at(p->c, loc, "unknown function '%s'; use %s", fn, hint);
  if (hint)
    error_at(p->c, loc, "unknown function '%s'; did you mean '%s'?", fn, hint);
  error_at(p->c, loc, "unknown function '%s' (docs/language.md lists the "
           "functions)", fn);
}

int ps_call(P *p, Call *k) {
  for (size_t i = 0; i < sizeof unary_fns / sizeof unary_fns[0]; i++)
    if (strcmp(k->fn, unary_fns[i].name) == 0)
      return fn_unary(p, k);
  for (int i = 0; i < N_BUILTINS; i++)
    if (strcmp(k->fn, builtins[i].name) == 0)
      return builtins[i].lower(p, k);
  unknown_function(p, k->fn, k->loc);
}

