/* parse.c — the .graph parser. It builds IR directly (through ir.c) and
 * lowers every library function to the primitives of ops.def.
 *
 *   program   = ("graph" IDENT NL)? stmt*
 *   stmt      = decl | IDENT "=" expr | "output" names | "backward" names
 *   decl      = ("input" | "param") IDENT (":" IDENT)? ("[" dims "]")?
 *   expr      = arith (CMPOP arith)?
 *   arith     = term (("+" | "-") term)*
 *   term      = unary (("*" | "/" | "@") unary)*
 *   unary     = "-" unary | "+" unary | power
 *   power     = postfix ("**" unary)?
 *   postfix   = primary ("(" args ")" | "[" index "]" | "." "T")*
 *   primary   = NUM | IDENT | "true" | "false" | "(" expr ")" | "[" list "]"
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "agc.h"

/* A parsed value: a tensor (IR node), a bracketed list, or a boolean. */
typedef enum { V_NODE, V_LIST, V_BOOL } VKind;
typedef struct Val Val;
struct Val {
  VKind kind;
  int node;
  int b;
  Val *items;
  int nitems;
  Loc loc;
  const char *argname; /* name= of a call argument, or NULL */
};

typedef struct {
  const char *name;
  int node;
  Loc loc;
} Sym;

typedef struct {
  Ctx *c;
  Token *t;
  int pos, ntok;
  Sym *syms;
  int nsyms, symcap;
  int *index; /* open-addressing hash of symbol positions, -1 empty */
  int icap;
  int nstmts;
  int depth;  /* expression nesting, bounded so the C stack is too */
} P;

#define MAX_NESTING 500

static Token *peek(P *p) { return &p->t[p->pos]; }
static Loc tloc(const Token *t) { return (Loc){t->line, t->col}; }
static int is_punct(const Token *t, const char *s) {
  return t->kind == T_PUNCT && (size_t)t->len == strlen(s) &&
         memcmp(t->text, s, (size_t)t->len) == 0;
}
static int is_ident(const Token *t, const char *s) {
  return t->kind == T_IDENT && (size_t)t->len == strlen(s) &&
         memcmp(t->text, s, (size_t)t->len) == 0;
}
static int accept(P *p, const char *s) {
  if (is_punct(peek(p), s)) {
    p->pos++;
    return 1;
  }
  return 0;
}
static const char *tok_desc(P *p, const Token *t) {
  static const char *const names[] = {"end of file", "end of line"};
  if (t->kind == T_EOF || (t->kind == T_NEWLINE && t->len == 0))
    return names[0];
  if (t->kind == T_NEWLINE)
    return names[1];
  /* operators are described often (every binary operation): no copy */
  static const char *const ops[] = {"**", "<=", ">=", "==", "!=", "+", "-",
                                    "*",  "/",  "@",  "<",  ">",  NULL};
  for (const char *const *o = ops; *o; o++)
    if (is_punct(t, *o))
      return *o;
  return arena_strndup(&p->c->arena, t->text, (size_t)t->len);
}
static void expect(P *p, const char *s) {
  if (!accept(p, s))
    error_at(p->c, tloc(peek(p)), "expected '%s', found '%s'", s,
             tok_desc(p, peek(p)));
}

static const char *const keywords[] = {"graph", "input",    "param", "output",
                                       "backward", "true", "false", NULL};
static int is_keyword(const Token *t) {
  for (const char *const *k = keywords; *k; k++)
    if (is_ident(t, *k))
      return 1;
  return 0;
}

static const char *ident(P *p, const char *what) {
  Token *t = peek(p);
  if (t->kind != T_IDENT)
    error_at(p->c, tloc(t), "expected %s, found '%s'", what, tok_desc(p, t));
  if (is_keyword(t))
    error_at(p->c, tloc(t), "'%.*s' is a keyword and cannot name %s", t->len,
             t->text, what);
  p->pos++;
  return arena_strndup(&p->c->arena, t->text, (size_t)t->len);
}

/* ---- symbols ------------------------------------------------------------ */

static Sym *lookup(P *p, const char *name) {
  if (!p->icap)
    return NULL;
  unsigned i = name_hash(name) & (unsigned)(p->icap - 1);
  for (; p->index[i] >= 0; i = (i + 1) & (unsigned)(p->icap - 1))
    if (strcmp(p->syms[p->index[i]].name, name) == 0)
      return &p->syms[p->index[i]];
  return NULL;
}

static void index_put(P *p, int pos) {
  unsigned i = name_hash(p->syms[pos].name) & (unsigned)(p->icap - 1);
  while (p->index[i] >= 0)
    i = (i + 1) & (unsigned)(p->icap - 1);
  p->index[i] = pos;
}

static void define(P *p, const char *name, int node, Loc loc) {
  Sym *old = lookup(p, name);
  if (old)
    error_at(p->c, loc, "'%s' is already defined (at line %d)", name,
             old->loc.line);
  if (p->nsyms == p->symcap) {
    int ncap = p->symcap ? p->symcap * 2 : 64;
    p->syms = arena_grow(&p->c->arena, p->syms, sizeof *p->syms *
                         (size_t)p->symcap, sizeof *p->syms * (size_t)ncap);
    p->symcap = ncap;
  }
  p->syms[p->nsyms++] = (Sym){name, node, loc};
  if (p->nsyms * 2 > p->icap) { /* rebuild at twice the size */
    int ocap = p->icap;
    p->icap = p->icap ? p->icap * 2 : 128;
    p->index = arena_grow(&p->c->arena, p->index, sizeof(int) * (size_t)ocap,
                          sizeof(int) * (size_t)p->icap);
    for (int i = 0; i < p->icap; i++)
      p->index[i] = -1;
    for (int i = 0; i < p->nsyms; i++)
      index_put(p, i);
  } else {
    index_put(p, p->nsyms - 1);
  }
}

/* ---- helpers ---------------------------------------------------------------- */

static Node *NODE(P *p, int id) { return &p->c->g.nodes[id]; }
static Shape SHAPE(P *p, int id) { return p->c->g.nodes[id].shape; }

static int need_node(P *p, Val v, const char *fn) {
  if (v.kind != V_NODE)
    error_at(p->c, v.loc, "%s: expected a tensor here, found a %s", fn,
             v.kind == V_LIST ? "list" : "boolean");
  return v.node;
}

static int64_t need_int(P *p, Val v, const char *fn, const char *what) {
  double x;
  if (v.kind != V_NODE || !ir_is_const(p->c, v.node, &x) ||
      SHAPE(p, v.node).rank != 0 || x != floor(x) || fabs(x) > 9e15)
    error_at(p->c, v.loc, "%s: %s must be an integer constant", fn, what);
  return (int64_t)x;
}

static double need_number(P *p, Val v, const char *fn, const char *what) {
  double x;
  if (v.kind != V_NODE || !ir_is_const(p->c, v.node, &x) ||
      SHAPE(p, v.node).rank != 0)
    error_at(p->c, v.loc, "%s: %s must be a number", fn, what);
  return x;
}

static int norm_axis(P *p, int64_t ax, int rank, Loc loc) {
  if (ax < -rank || ax >= (rank ? rank : 1) || (rank == 0 && ax != 0 &&
                                               ax != -1))
    error_at(p->c, loc, "axis %lld is out of range for a tensor of rank %d",
             (long long)ax, rank);
  if (rank == 0)
    return 0;
  return (int)(ax < 0 ? ax + rank : ax);
}

static Shape need_shape(P *p, Val v, const char *fn, int64_t numel_for_neg1) {
  if (v.kind != V_LIST)
    error_at(p->c, v.loc, "%s: expected a shape like [2, 3]", fn);
  if (v.nitems > MAX_RANK)
    error_at(p->c, v.loc, "%s: more than %d dimensions", fn, MAX_RANK);
  Shape s = {v.nitems, {0}};
  int neg = -1;
  int64_t known = 1;
  for (int i = 0; i < v.nitems; i++) {
    int64_t d = need_int(p, v.items[i], fn, "a dimension");
    if (d == -1 && numel_for_neg1 >= 0) {
      if (neg >= 0)
        error_at(p->c, v.items[i].loc, "%s: only one dimension may be -1", fn);
      neg = i;
      continue;
    }
    if (d <= 0)
      error_at(p->c, v.items[i].loc,
               "%s: dimension %lld must be positive", fn, (long long)d);
    if (d > MAX_ELEMS || known > MAX_ELEMS / d)
      error_at(p->c, v.items[i].loc, "%s: tensor too large to address", fn);
    s.d[i] = d;
    known *= d;
  }
  if (neg >= 0) {
    if (numel_for_neg1 % known != 0)
      error_at(p->c, v.items[neg].loc,
               "%s: cannot infer -1: %lld elements are not divisible by %lld",
               fn, (long long)numel_for_neg1, (long long)known);
    s.d[neg] = numel_for_neg1 / known;
  }
  return s;
}

/* Call arguments: positional first, then name=value. */
typedef struct {
  const char *fn;
  Loc loc;
  Val *pos;
  int npos;
  Val *named;
  int nnamed;
  int *used;
  const char *asked[16]; /* the argument names the function looked up */
  int nasked;
} Call;

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
      int a = norm_axis(p, need_int(p, v->items[i], k->fn, "an axis"), rank,
                        v->items[i].loc);
      if (m & (1u << a))
        error_at(p->c, v->items[i].loc, "%s: axis %d listed twice", k->fn, a);
      m |= 1u << a;
    }
    return m;
  }
  int a = norm_axis(p, need_int(p, *v, k->fn, "axis"), rank, v->loc);
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
  Shape s = SHAPE(p, r), o = {0, {0}};
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
  if (single && r != x && NODE(p, r)->op == op) {
    /* Same values, but the gradient goes to the first extremum only. */
    Node t = *NODE(p, r);
    t.flags = 1;
    r = ir_node(p->c, &t, NODE(p, r)->in);
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

static int matmul_any(P *p, int a, int b, Loc loc) {
  Ctx *c = p->c;
  Shape sa = SHAPE(p, a), sb = SHAPE(p, b);
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
    Shape s = SHAPE(p, r), o = {0, {0}};
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

static int transpose2(P *p, int x, int a, int b, Loc loc) {
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
  int y = need_node(p, *argp(p, k, 0, "y", 1), "grad");
  Val *xv = argp(p, k, 1, "x", 1);
  int x = need_node(p, *xv, "grad");
  Val *vv = argp(p, k, 2, "v", 0);
  check_named(p, k);
  if (NODE(p, x)->dt == DT_I32)
    error_at(c, xv->loc, "grad: cannot differentiate with respect to an "
             "i32 value");
  if (NODE(p, y)->dt == DT_I32)
    error_at(c, k->pos[0].loc, "grad: cannot differentiate an i32 value");
  int seed = -1;
  if (vv) {
    seed = need_node(p, *vv, "grad");
    Shape sy = SHAPE(p, y), sv = SHAPE(p, seed);
    if (sy.rank != sv.rank || memcmp(sy.d, sv.d, sizeof(int64_t) *
                                                     (size_t)sy.rank)) {
      char a[128], b[128];
      shape_str(&sy, a, sizeof a);
      shape_str(&sv, b, sizeof b);
      error_at(c, vv->loc, "grad: seed v has shape %s but y has shape %s", b,
               a);
    }
  } else if (SHAPE(p, y).rank != 0 && NODE(p, y)->numel != 1) {
    char a[128];
    Shape sy = SHAPE(p, y);
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

static int call(P *p, Call *k);

static int64_t small_int_arg(P *p, Call *k, int idx, const char *name,
                             int64_t dflt, int64_t min) {
  Val *v = argp(p, k, idx, name, dflt < 0);
  if (!v)
    return dflt;
  int64_t x = need_int(p, *v, k->fn, name);
  if (x < min || x > 65536)
    error_at(p->c, v->loc, "%s: %s must be an integer from %lld to 65536, "
             "got %lld", k->fn, name, (long long)min, (long long)x);
  return x;
}

static int rank4(P *p, Val *v, const char *fn, const char *what) {
  int x = need_node(p, *v, fn);
  if (SHAPE(p, x).rank != 4)
    error_at(p->c, v->loc, "%s: %s must be 4-D [%s], got rank %d", fn, what,
             what[0] == 'x' ? "N, C, H, W" : "O, C, KH, KW",
             SHAPE(p, x).rank);
  if (NODE(p, x)->dt == DT_I32)
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
  Shape sx = SHAPE(p, x), sw = SHAPE(p, w);
  if (sx.d[1] != sw.d[1])
    error_at(p->c, wv->loc, "conv2d: x has %lld channels but w expects %lld",
             (long long)sx.d[1], (long long)sw.d[1]);
  int64_t hp = sx.d[2] + 2 * pad, wp = sx.d[3] + 2 * pad;
  if (sw.d[2] > hp || sw.d[3] > wp)
    error_at(p->c, k->loc, "conv2d: kernel %lldx%lld is larger than the "
             "padded input %lldx%lld", (long long)sw.d[2], (long long)sw.d[3],
             (long long)hp, (long long)wp);
  Shape s = {4, {sx.d[0], sw.d[0], (hp - sw.d[2]) / st + 1,
                 (wp - sw.d[3]) / st + 1}};
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
  Shape sx = SHAPE(p, x);
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
  int t = need_node(p, *tv, "embedding"), idx = need_node(p, *iv, "embedding");
  check_named(p, k);
  if (SHAPE(p, t).rank != 2 || NODE(p, t)->dt == DT_I32)
    error_at(p->c, tv->loc, "embedding: table must be a 2-D float tensor "
             "[V, D]");
  if (NODE(p, idx)->dt != DT_I32)
    error_at(p->c, iv->loc, "embedding: indices must be an i32 input");
  Shape s = SHAPE(p, idx);
  if (s.rank >= MAX_RANK)
    error_at(p->c, iv->loc, "embedding: result would have more than %d "
             "dimensions", MAX_RANK);
  s.d[s.rank++] = SHAPE(p, t).d[1];
  int in[2] = {t, idx};
  return ir_special(p->c, OP_EMBED, in, 2, s, NULL, 0, k->loc);
}

/* ---- names for "did you mean" ------------------------------------------------ */

/* Every function call() knows. */
static const char *const fn_names[] = {
    "exp", "log", "sin", "cos", "tan", "tanh", "sigmoid", "relu", "abs",
    "sqrt", "rsqrt", "square", "log1p", "expm1", "softplus", "sign", "erf",
    "gelu", "pow", "maximum", "minimum", "where", "clamp", "sum", "mean",
    "max", "min", "prod", "logsumexp", "softmax", "log_softmax", "mse_loss",
    "cross_entropy", "bce_with_logits", "reshape", "transpose", "broadcast_to",
    "concat", "unsqueeze", "squeeze", "conv2d", "max_pool2d", "avg_pool2d",
    "embedding", "zeros", "ones", "full", "detach", "grad"};
#define N_FN_NAMES ((int)(sizeof fn_names / sizeof fn_names[0]))

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

static int is_function(const char *name) {
  for (int i = 0; i < N_FN_NAMES; i++)
    if (strcmp(fn_names[i], name) == 0)
      return 1;
  return 0;
}

/* What to suggest for an unknown function name, or NULL. */
static const char *fn_suggestion(const char *name) {
  for (size_t i = 0; i < sizeof fn_aliases / sizeof fn_aliases[0]; i++)
    if (strcmp(name, fn_aliases[i].from) == 0)
      return fn_aliases[i].to;
  return nearest_name(name, fn_names, N_FN_NAMES);
}

_Noreturn static void unknown_function(P *p, const char *fn, Loc loc) {
  const char *hint = fn_suggestion(fn);
  if (hint && strchr(hint, ' '))
    error_at(p->c, loc, "unknown function '%s'; use %s", fn, hint);
  if (hint)
    error_at(p->c, loc, "unknown function '%s'; did you mean '%s'?", fn, hint);
  error_at(p->c, loc, "unknown function '%s' (docs/language.md lists the "
           "functions)", fn);
}

_Noreturn static void unknown_name(P *p, const char *name, Loc loc) {
  if (is_function(name))
    error_at(p->c, loc, "'%s' is a function, not a value: call it, as in "
             "%s(x)", name, name);
  if (strncmp(name, "grad_", 5) == 0 && lookup(p, name + 5))
    error_at(p->c, loc, "unknown name '%s': 'backward' outputs grad_%s by "
             "itself; inside expressions use grad(y, %s)", name, name + 5,
             name + 5);
  const char **names =
      arena_alloc(&p->c->arena, sizeof(char *) * (size_t)(p->nsyms + 1));
  for (int i = 0; i < p->nsyms; i++)
    names[i] = p->syms[i].name;
  const char *hint = nearest_name(name, names, p->nsyms);
  if (hint)
    error_at(p->c, loc, "unknown name '%s'; did you mean '%s'?", name, hint);
  error_at(p->c, loc, "unknown name '%s'", name);
}

/* ---- expressions ----------------------------------------------------------- */

static Val expr(P *p);

static Val mknode(int id, Loc loc) {
  Val v;
  memset(&v, 0, sizeof v);
  v.kind = V_NODE;
  v.node = id;
  v.loc = loc;
  return v;
}

static Val list_literal(P *p, Loc loc) {
  /* after '[' */
  Val v;
  memset(&v, 0, sizeof v);
  v.kind = V_LIST;
  v.loc = loc;
  int cap = 0;
  while (!is_punct(peek(p), "]")) {
    if (v.nitems == cap) {
      cap = cap ? cap * 2 : 8;
      Val *ni = arena_alloc(&p->c->arena, sizeof *ni * (size_t)cap);
      if (v.nitems)
        memcpy(ni, v.items, sizeof *ni * (size_t)v.nitems);
      v.items = ni;
    }
    v.items[v.nitems++] = expr(p);
    if (!accept(p, ","))
      break;
  }
  expect(p, "]");
  return v;
}

static Val args_and_call(P *p, const char *fn, Loc loc) {
  /* after '(' */
  Call k;
  memset(&k, 0, sizeof k);
  k.fn = fn;
  k.loc = loc;
  enum { cap = 16 };
  Val pos[cap], named[cap]; /* on the stack: a long program makes many calls */
  int used[cap];
  memset(used, 0, sizeof used);
  k.pos = pos;
  k.named = named;
  k.used = used;
  while (!is_punct(peek(p), ")")) {
    if (k.npos + k.nnamed >= cap)
      error_at(p->c, tloc(peek(p)), "%s(): too many arguments", fn);
    Token *t = peek(p);
    if (t->kind == T_IDENT && is_punct(&p->t[p->pos + 1], "=")) {
      const char *name = arena_strndup(&p->c->arena, t->text, (size_t)t->len);
      for (int j = 0; j < k.nnamed; j++)
        if (strcmp(k.named[j].argname, name) == 0)
          error_at(p->c, tloc(t), "%s(): argument '%s' given twice", fn, name);
      p->pos += 2;
      Val v = expr(p);
      v.argname = name;
      v.loc = tloc(t);
      k.named[k.nnamed++] = v;
    } else {
      if (k.nnamed)
        error_at(p->c, tloc(t), "%s(): positional argument after a named one",
                 fn);
      k.pos[k.npos++] = expr(p);
    }
    if (!accept(p, ","))
      break;
  }
  expect(p, ")");
  return mknode(call(p, &k), loc);
}

/* x[i], x[a:b, :, k] */
static int index_expr(P *p, int x, Loc loc) {
  Ctx *c = p->c;
  Shape s = SHAPE(p, x);
  int64_t start[MAX_RANK] = {0};
  Shape out = s, keep = {0, {0}};
  int dim = 0;
  while (!is_punct(peek(p), "]")) {
    if (dim >= s.rank)
      error_at(c, tloc(peek(p)), "too many indices for a tensor of rank %d",
               s.rank);
    Loc il = tloc(peek(p));
    int64_t n = s.d[dim], lo = 0, hi = n;
    int is_slice = 0;
    if (!is_punct(peek(p), ":")) {
      Val v = expr(p);
      lo = need_int(p, v, "index", "an index");
    } else {
      lo = 0;
    }
    if (accept(p, ":")) {
      is_slice = 1;
      if (!is_punct(peek(p), ",") && !is_punct(peek(p), "]")) {
        Val v = expr(p);
        hi = need_int(p, v, "slice", "a slice bound");
        if (hi < 0)
          hi += n;
        if (hi > n)
          hi = n;
      }
      if (lo < 0)
        lo += n;
      if (lo < 0)
        lo = 0;
      if (lo > n)
        lo = n;
      if (hi <= lo)
        error_at(c, il, "slice of axis %d is empty (size %lld)", dim,
                 (long long)n);
      if (is_punct(peek(p), ":"))
        error_at(c, tloc(peek(p)), "slices with a step are not supported");
    } else {
      if (lo < -n || lo >= n)
        error_at(c, il, "index %lld is out of range for axis %d of size %lld",
                 (long long)lo, dim, (long long)n);
      if (lo < 0)
        lo += n;
      hi = lo + 1;
    }
    start[dim] = lo;
    out.d[dim] = hi - lo;
    if (is_slice)
      keep.d[keep.rank++] = hi - lo;
    dim++;
    if (!accept(p, ","))
      break;
  }
  expect(p, "]");
  for (; dim < s.rank; dim++)
    keep.d[keep.rank++] = s.d[dim];
  int r = ir_slice(c, OP_SLICE, x, start, out, loc);
  return ir_reshape(c, r, keep, loc);
}

static Val primary(P *p) {
  Token *t = peek(p);
  Loc loc = tloc(t);
  if (t->kind == T_NUM) {
    p->pos++;
    return mknode(ir_scalar(p->c, t->num), loc);
  }
  if (accept(p, "(")) {
    Val v = expr(p);
    expect(p, ")");
    v.loc = loc;
    return v;
  }
  if (accept(p, "["))
    return list_literal(p, loc);
  if (is_ident(t, "true") || is_ident(t, "false")) {
    p->pos++;
    Val v;
    memset(&v, 0, sizeof v);
    v.kind = V_BOOL;
    v.b = is_ident(t, "true");
    v.loc = loc;
    return v;
  }
  if (t->kind == T_IDENT && !is_keyword(t)) {
    p->pos++;
    const char *name = arena_strndup(&p->c->arena, t->text, (size_t)t->len);
    if (is_punct(peek(p), "(")) {
      p->pos++;
      return args_and_call(p, name, loc);
    }
    Sym *s = lookup(p, name);
    if (!s)
      unknown_name(p, name, loc);
    return mknode(s->node, loc);
  }
  if (t->kind == T_EOF || t->kind == T_NEWLINE)
    error_at(p->c, loc, "expected an expression, found %s", tok_desc(p, t));
  error_at(p->c, loc, "expected an expression, found '%s'", tok_desc(p, t));
}

/* Source text of tokens [from, to), if on one line and short; else NULL. */
static const char *tokens_text(P *p, int from, int to) {
  if (from >= to || p->t[from].line != p->t[to - 1].line)
    return NULL;
  const char *a = p->t[from].text, *b = p->t[to - 1].text + p->t[to - 1].len;
  if (b - a > 60)
    return NULL;
  return arena_strndup(&p->c->arena, a, (size_t)(b - a));
}

/* x.name or x.name(...): the language has functions, not methods. The
 * receiver's tokens start at `start`; the '.' is at p->pos - 1. */
_Noreturn static void method_syntax(P *p, int start) {
  int dot = p->pos - 1;
  Token *f = peek(p);
  Loc floc = tloc(f);
  if (f->kind != T_IDENT)
    error_at(p->c, floc, "expected 'T' after '.' (the only attribute is "
             "x.T, the transpose)");
  const char *name = arena_strndup(&p->c->arena, f->text, (size_t)f->len);
  const char *recv = tokens_text(p, start, dot);
  if (!recv)
    recv = "x";
  const char *orig = recv; /* as written, for the quote */
  size_t rl = strlen(recv);
  if (recv[0] == '(' && recv[rl - 1] == ')') { /* (a + b).sum(): a + b */
    int depth = 0;
    size_t i = 0;
    for (; i < rl; i++) {
      depth += recv[i] == '(' ? 1 : recv[i] == ')' ? -1 : 0;
      if (depth == 0)
        break;
    }
    if (i == rl - 1)
      recv = arena_strndup(&p->c->arena, recv + 1, rl - 2);
  }
  if (!is_punct(&p->t[p->pos + 1], "(")) {
    if (strcmp(name, "grad") == 0)
      error_at(p->c, floc, "no attribute '.grad': 'backward' outputs grad_P "
               "for every param P; inside expressions use grad(y, %s)", recv);
    error_at(p->c, floc, "no attribute '.%s': the only attribute is x.T, "
             "the transpose", name);
  }
  /* the arguments' text, up to the matching ')' */
  int q = p->pos + 2, depth = 1;
  while (p->t[q].kind != T_EOF && depth > 0) {
    if (is_punct(&p->t[q], "(") || is_punct(&p->t[q], "["))
      depth++;
    else if (is_punct(&p->t[q], ")") || is_punct(&p->t[q], "]"))
      depth--;
    q++;
  }
  const char *args = depth == 0 ? (q - 1 > p->pos + 2
                                       ? tokens_text(p, p->pos + 2, q - 1)
                                       : "")
                                : NULL;
  if (!args)
    args = "...";
  if (strcmp(name, "t") == 0)
    error_at(p->c, floc, "'%s.t()' is method syntax; write %s.T", orig, orig);
  if (strcmp(name, "backward") == 0)
    error_at(p->c, floc, "'%s.backward()' is method syntax; write the "
             "statement 'backward %s' on a line of its own", orig, recv);
  const char *fn = is_function(name) ? name : fn_suggestion(name);
  const char *dots = *args ? "..." : "";
  if (fn && !strchr(fn, ' ')) {
    /* x.view(2, 3) -> reshape(x, [2, 3]) */
    int list = strcmp(fn, "reshape") == 0 && *args && args[0] != '[' &&
               strcmp(args, "...") != 0;
    error_at(p->c, floc, "'%s.%s(%s)' is method syntax, which the language "
             "does not have; write %s(%s%s%s%s%s)", orig, name, dots, fn,
             recv, *args ? ", " : "", list ? "[" : "", args, list ? "]" : "");
  }
  error_at(p->c, floc, "'%s.%s(%s)' is method syntax, which the language "
           "does not have; functions are called as f(x, ...)", orig, name,
           dots);
}

static Val postfix(P *p) {
  int start = p->pos;
  Val v = primary(p);
  for (;;) {
    Token *t = peek(p);
    if (is_punct(t, "[") && v.kind == V_NODE) {
      p->pos++;
      v = mknode(index_expr(p, v.node, tloc(t)), v.loc);
    } else if (is_punct(t, ".")) {
      p->pos++;
      Token *f = peek(p);
      if (!is_ident(f, "T"))
        method_syntax(p, start);
      p->pos++;
      int x = need_node(p, v, ".T");
      if (SHAPE(p, x).rank != 2)
        error_at(p->c, tloc(f), ".T needs a 2-D tensor, got rank %d",
                 SHAPE(p, x).rank);
      v = mknode(transpose2(p, x, 0, 1, tloc(t)), v.loc);
    } else if (is_punct(t, "(")) {
      error_at(p->c, tloc(t), "only a function name can be called");
    } else {
      return v;
    }
  }
}

static Val unary(P *p);

static Val binop(P *p, Op op, Val a, Val b, Loc loc, const char *sym) {
  int x = need_node(p, a, sym), y = need_node(p, b, sym);
  if (op == OP_MATMUL)
    return mknode(matmul_any(p, x, y, loc), a.loc);
  return mknode(ir_binary(p->c, op, x, y, loc), a.loc);
}

static Val power(P *p) {
  Val v = postfix(p);
  Token *t = peek(p);
  if (accept(p, "**")) {
    Val e = unary(p);
    v = binop(p, OP_POW, v, e, tloc(t), "**");
  }
  return v;
}

static Val unary(P *p) {
  Token *t = peek(p);
  if (++p->depth > MAX_NESTING)
    error_at(p->c, tloc(t), "expression nested too deeply (more than %d "
             "levels)", MAX_NESTING);
  Val v;
  if (accept(p, "-")) {
    v = unary(p);
    v = mknode(ir_unary(p->c, OP_NEG, need_node(p, v, "-"), tloc(t)), tloc(t));
  } else if (accept(p, "+")) {
    v = unary(p);
  } else {
    v = power(p);
  }
  p->depth--;
  return v;
}

static Val term(P *p) {
  Val v = unary(p);
  for (;;) {
    Token *t = peek(p);
    Op op;
    if (is_punct(t, "*"))
      op = OP_MUL;
    else if (is_punct(t, "/"))
      op = OP_DIV;
    else if (is_punct(t, "@"))
      op = OP_MATMUL;
    else
      return v;
    p->pos++;
    Val w = unary(p);
    v = binop(p, op, v, w, tloc(t), tok_desc(p, t));
  }
}

static Val arith(P *p) {
  Val v = term(p);
  for (;;) {
    Token *t = peek(p);
    Op op;
    if (is_punct(t, "+"))
      op = OP_ADD;
    else if (is_punct(t, "-"))
      op = OP_SUB;
    else
      return v;
    p->pos++;
    Val w = term(p);
    v = binop(p, op, v, w, tloc(t), tok_desc(p, t));
  }
}

static int cmp_op(const Token *t, Op *op) {
  static const struct {
    const char *s;
    Op op;
  } ops[] = {{"<", OP_LT},  {"<=", OP_LE}, {">", OP_GT},
             {">=", OP_GE}, {"==", OP_EQ}, {"!=", OP_NE}};
  for (size_t i = 0; i < sizeof ops / sizeof ops[0]; i++)
    if (is_punct(t, ops[i].s)) {
      *op = ops[i].op;
      return 1;
    }
  return 0;
}

static Val expr(P *p) {
  if (++p->depth > MAX_NESTING)
    error_at(p->c, tloc(peek(p)), "expression nested too deeply (more than "
             "%d levels)", MAX_NESTING);
  Val v = arith(p);
  Op op;
  Token *t = peek(p);
  if (cmp_op(t, &op)) {
    p->pos++;
    Val w = arith(p);
    v = binop(p, op, v, w, tloc(t), tok_desc(p, t));
    if (cmp_op(peek(p), &op))
      error_at(p->c, tloc(peek(p)),
               "comparisons cannot be chained; use parentheses");
  }
  p->depth--;
  return v;
}

/* ---- functions ------------------------------------------------------------- */

/* the one-argument functions: the rows of ops.def marked fn */
#define FN_0(text, name)
#define FN_1(text, name) {text, OP_##name},
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

static int call(P *p, Call *k) {
  Ctx *c = p->c;
  const char *fn = k->fn;
  Loc loc = k->loc;
  for (size_t i = 0; i < sizeof unary_fns / sizeof unary_fns[0]; i++)
    if (strcmp(fn, unary_fns[i].name) == 0) {
      check_arity(p, k, 1);
      int x = need_node(p, *argp(p, k, 0, "x", 1), fn);
      check_named(p, k);
      return ir_unary(c, unary_fns[i].op, x, loc);
    }
  if (strcmp(fn, "square") == 0) {
    check_arity(p, k, 1);
    int x = need_node(p, *argp(p, k, 0, "x", 1), fn);
    check_named(p, k);
    return ir_binary(c, OP_MUL, x, x, loc);
  }
  if (strcmp(fn, "gelu") == 0) { /* exact: x * Phi(x) */
    check_arity(p, k, 1);
    int x = need_node(p, *argp(p, k, 0, "x", 1), fn);
    check_named(p, k);
    int u = ir_binary(c, OP_MUL, x, ir_scalar(c, 0.70710678118654752440), loc);
    int phi = ir_binary(c, OP_MUL, ir_scalar(c, 0.5),
                        ir_binary(c, OP_ADD, ir_scalar(c, 1),
                                  ir_unary(c, OP_ERF, u, loc), loc), loc);
    return ir_binary(c, OP_MUL, x, phi, loc);
  }
  static const struct {
    const char *name;
    Op op;
  } bin[] = {{"pow", OP_POW}, {"maximum", OP_MAXIMUM},
             {"minimum", OP_MINIMUM}};
  for (size_t i = 0; i < sizeof bin / sizeof bin[0]; i++)
    if (strcmp(fn, bin[i].name) == 0) {
      check_arity(p, k, 2);
      int a = need_node(p, *argp(p, k, 0, "a", 1), fn);
      int b = need_node(p, *argp(p, k, 1, "b", 1), fn);
      check_named(p, k);
      return ir_binary(c, bin[i].op, a, b, loc);
    }
  if (strcmp(fn, "where") == 0) {
    check_arity(p, k, 3);
    int cond = need_node(p, *argp(p, k, 0, "cond", 1), fn);
    int a = need_node(p, *argp(p, k, 1, "a", 1), fn);
    int b = need_node(p, *argp(p, k, 2, "b", 1), fn);
    check_named(p, k);
    return ir_where(c, cond, a, b, loc);
  }
  if (strcmp(fn, "clamp") == 0) {
    /* PyTorch's clamp: the gradient passes where lo <= x <= hi. */
    check_arity(p, k, 3);
    int x = need_node(p, *argp(p, k, 0, "x", 1), fn);
    int lo = need_node(p, *argp(p, k, 1, "lo", 1), fn);
    int hi = need_node(p, *argp(p, k, 2, "hi", 1), fn);
    check_named(p, k);
    int up = ir_where(c, ir_binary(c, OP_GT, x, hi, loc), hi, x, loc);
    return ir_where(c, ir_binary(c, OP_LT, x, lo, loc), lo, up, loc);
  }
  static const struct {
    const char *name;
    Op op;
  } red[] = {{"sum", OP_SUM}, {"mean", OP_SUM}, {"max", OP_MAX},
             {"min", OP_MIN}, {"prod", OP_PROD}, {"logsumexp", OP_SUM}};
  for (size_t i = 0; i < sizeof red / sizeof red[0]; i++)
    if (strcmp(fn, red[i].name) == 0) {
      check_arity(p, k, 3);
      int x = need_node(p, *argp(p, k, 0, "x", 1), fn);
      int rank = SHAPE(p, x).rank, single;
      unsigned mask = axis_mask(p, k, 1, rank, &single);
      int keep = bool_arg(p, k, 2, "keepdim", 0);
      check_named(p, k);
      int r;
      if (strcmp(fn, "logsumexp") == 0) {
        r = lse_keep(p, x, mask, loc);
      } else if (strcmp(fn, "prod") == 0) {
        r = ir_reduce(c, OP_PROD, x, mask, loc);
      } else if (red[i].op == OP_SUM) {
        r = ir_reduce(c, OP_SUM, x, mask, loc);
        if (strcmp(fn, "mean") == 0)
          r = ir_binary(c, OP_DIV, r,
                        ir_scalar(c, (double)mask_count(SHAPE(p, x), mask)),
                        loc);
      } else {
        r = max_keep(p, red[i].op, x, mask, single, loc);
      }
      return keep ? r : drop_axes(p, r, mask, loc);
    }
  if (strcmp(fn, "softmax") == 0 || strcmp(fn, "log_softmax") == 0) {
    check_arity(p, k, 2);
    int x = need_node(p, *argp(p, k, 0, "x", 1), fn);
    Val *av = argp(p, k, 1, "axis", 0);
    check_named(p, k);
    int rank = SHAPE(p, x).rank;
    int ax = av ? norm_axis(p, need_int(p, *av, fn, "axis"), rank, av->loc)
                : norm_axis(p, -1, rank, loc);
    unsigned mask = rank ? 1u << ax : 0;
    if (fn[0] == 'l')
      return log_softmax_of(p, x, mask, loc);
    Lse l = lse_parts(p, x, mask, loc);
    return ir_binary(c, OP_DIV, l.e, l.s, loc);
  }
  if (strcmp(fn, "mse_loss") == 0) {
    check_arity(p, k, 2);
    int y = need_node(p, *argp(p, k, 0, "y", 1), fn);
    int t = need_node(p, *argp(p, k, 1, "t", 1), fn);
    check_named(p, k);
    int d = ir_binary(c, OP_SUB, y, t, loc);
    int sq = ir_binary(c, OP_MUL, d, d, loc);
    Shape s = SHAPE(p, sq);
    unsigned all = s.rank ? (1u << s.rank) - 1 : 0;
    int r = ir_reduce(c, OP_SUM, sq, all, loc);
    r = ir_binary(c, OP_DIV, r, ir_scalar(c, (double)NODE(p, sq)->numel), loc);
    return drop_axes(p, r, all, loc);
  }
  if (strcmp(fn, "bce_with_logits") == 0) {
    check_arity(p, k, 2);
    int z = need_node(p, *argp(p, k, 0, "z", 1), fn);
    int t = need_node(p, *argp(p, k, 1, "t", 1), fn);
    check_named(p, k);
    int l = ir_binary(c, OP_SUB, ir_unary(c, OP_SOFTPLUS, z, loc),
                      ir_binary(c, OP_MUL, z, t, loc), loc);
    Shape s = SHAPE(p, l);
    unsigned all = s.rank ? (1u << s.rank) - 1 : 0;
    int r = ir_reduce(c, OP_SUM, l, all, loc);
    r = ir_binary(c, OP_DIV, r, ir_scalar(c, (double)NODE(p, l)->numel), loc);
    return drop_axes(p, r, all, loc);
  }
  if (strcmp(fn, "cross_entropy") == 0) {
    check_arity(p, k, 2);
    Val *lv = argp(p, k, 0, "logits", 1);
    int z = need_node(p, *lv, fn);
    Val *yv = argp(p, k, 1, "labels", 1);
    int y = need_node(p, *yv, fn);
    check_named(p, k);
    Shape sz = SHAPE(p, z), sy = SHAPE(p, y);
    if (sz.rank != 2)
      error_at(c, lv->loc, "cross_entropy: logits must be [N, C], got rank %d",
               sz.rank);
    if (NODE(p, y)->dt != DT_I32)
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
  if (strcmp(fn, "reshape") == 0) {
    check_arity(p, k, 2);
    int x = need_node(p, *argp(p, k, 0, "x", 1), fn);
    Shape s = need_shape(p, *argp(p, k, 1, "shape", 1), fn, NODE(p, x)->numel);
    check_named(p, k);
    return ir_reshape(c, x, s, loc);
  }
  if (strcmp(fn, "broadcast_to") == 0) {
    check_arity(p, k, 2);
    int x = need_node(p, *argp(p, k, 0, "x", 1), fn);
    Shape s = need_shape(p, *argp(p, k, 1, "shape", 1), fn, -1);
    check_named(p, k);
    return ir_broadcast(c, x, s, loc);
  }
  if (strcmp(fn, "transpose") == 0) {
    check_arity(p, k, 3);
    int x = need_node(p, *argp(p, k, 0, "x", 1), fn);
    int r = SHAPE(p, x).rank;
    Val *av = argp(p, k, 1, "a", 1), *bv = argp(p, k, 2, "b", 1);
    int a = norm_axis(p, need_int(p, *av, fn, "axis"), r, av->loc);
    int b = norm_axis(p, need_int(p, *bv, fn, "axis"), r, bv->loc);
    check_named(p, k);
    if (r == 0)
      return x;
    return transpose2(p, x, a, b, loc);
  }
  if (strcmp(fn, "unsqueeze") == 0 || strcmp(fn, "squeeze") == 0) {
    check_arity(p, k, 2);
    int x = need_node(p, *argp(p, k, 0, "x", 1), fn);
    Val *av = argp(p, k, 1, "axis", 1);
    check_named(p, k);
    Shape s = SHAPE(p, x), o = {0, {0}};
    if (fn[0] == 'u') {
      if (s.rank >= MAX_RANK)
        error_at(c, loc, "unsqueeze: rank would exceed %d", MAX_RANK);
      int ax = norm_axis(p, need_int(p, *av, fn, "axis"), s.rank + 1, av->loc);
      for (int i = 0, j = 0; i <= s.rank; i++)
        o.d[o.rank++] = i == ax ? 1 : s.d[j++];
    } else {
      int ax = norm_axis(p, need_int(p, *av, fn, "axis"), s.rank, av->loc);
      if (s.rank == 0 || s.d[ax] != 1)
        return x; /* PyTorch: squeezing a non-1 axis is a no-op */
      for (int i = 0; i < s.rank; i++)
        if (i != ax)
          o.d[o.rank++] = s.d[i];
    }
    return ir_reshape(c, x, o, loc);
  }
  if (strcmp(fn, "concat") == 0) {
    check_arity(p, k, 2);
    Val *lv = argp(p, k, 0, "tensors", 1);
    if (lv->kind != V_LIST || lv->nitems == 0)
      error_at(c, lv->loc, "concat: expected a non-empty list [a, b, ...]");
    Val *av = argp(p, k, 1, "axis", 0);
    check_named(p, k);
    int first = need_node(p, lv->items[0], fn);
    Shape s0 = SHAPE(p, first);
    if (s0.rank == 0)
      error_at(c, lv->items[0].loc, "concat: cannot concatenate scalars");
    int ax = av ? norm_axis(p, need_int(p, *av, fn, "axis"), s0.rank, av->loc)
                : 0;
    int64_t total = 0;
    for (int i = 0; i < lv->nitems; i++) {
      int x = need_node(p, lv->items[i], fn);
      Shape s = SHAPE(p, x);
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
    out.d[ax] = total;
    int r = -1;
    int64_t at = 0;
    for (int i = 0; i < lv->nitems; i++) {
      int x = lv->items[i].node;
      int64_t start[MAX_RANK] = {0};
      start[ax] = at;
      at += SHAPE(p, x).d[ax];
      int padded = ir_slice(c, OP_PAD, x, start, out, loc);
      r = r < 0 ? padded : ir_binary(c, OP_ADD, r, padded, loc);
    }
    return r;
  }
  if (strcmp(fn, "zeros") == 0 || strcmp(fn, "ones") == 0 ||
      strcmp(fn, "full") == 0) {
    int isfull = fn[0] == 'f';
    check_arity(p, k, isfull ? 2 : 1);
    Shape s = need_shape(p, *argp(p, k, 0, "shape", 1), fn, -1);
    double v = fn[0] == 'o';
    if (isfull)
      v = need_number(p, *argp(p, k, 1, "value", 1), fn, "the value");
    check_named(p, k);
    return ir_const(c, v, s);
  }
  if (strcmp(fn, "conv2d") == 0)
    return conv2d_call(p, k);
  if (strcmp(fn, "max_pool2d") == 0 || strcmp(fn, "avg_pool2d") == 0)
    return pool_call(p, k);
  if (strcmp(fn, "embedding") == 0)
    return embedding_call(p, k);
  if (strcmp(fn, "grad") == 0)
    return grad_call(p, k);
  unknown_function(p, fn, loc);
}

/* ---- statements -------------------------------------------------------------- */

static void end_stmt(P *p) {
  Token *t = peek(p);
  if (t->kind != T_NEWLINE && t->kind != T_EOF)
    error_at(p->c, tloc(t), "expected end of line, found '%s'",
             tok_desc(p, t));
  if (t->kind == T_NEWLINE)
    p->pos++;
}

static void decl(P *p, int is_param) {
  Ctx *c = p->c;
  Loc loc = tloc(peek(p));
  const char *name = ident(p, is_param ? "a param" : "an input");
  DType dt = DT_F;
  if (accept(p, ":")) {
    Token *t = peek(p);
    if (is_ident(t, "i32"))
      dt = DT_I32;
    else if (!is_ident(t, "f32") && !is_ident(t, "f64"))
      error_at(c, tloc(t), "unknown element type '%s' (expected f32, f64 or "
               "i32)", tok_desc(p, t));
    p->pos++;
    if (dt == DT_I32 && is_param)
      error_at(c, tloc(t), "a param cannot be i32: integers have no "
               "gradient");
  }
  Shape s = {0, {0}};
  if (accept(p, "[")) {
    while (!is_punct(peek(p), "]")) {
      Token *t = peek(p);
      int neg = accept(p, "-");
      Token *d = peek(p);
      if (d->kind != T_NUM)
        error_at(c, tloc(d), "expected a dimension, found '%s'",
                 tok_desc(p, d));
      p->pos++;
      if (!d->is_int)
        error_at(c, tloc(d), "dimension must be an integer");
      if (neg || d->num <= 0)
        error_at(c, tloc(t), "dimension %s%.0f must be positive",
                 neg ? "-" : "", d->num);
      if (s.rank >= MAX_RANK)
        error_at(c, tloc(d), "more than %d dimensions", MAX_RANK);
      if (d->num > (double)MAX_ELEMS)
        error_at(c, tloc(d), "tensor too large to address (more than %lld "
                 "elements)", (long long)MAX_ELEMS);
      s.d[s.rank++] = (int64_t)d->num;
      if (!accept(p, ","))
        break;
    }
    expect(p, "]");
  }
  int id = ir_leaf(c, is_param ? OP_PARAM : OP_INPUT, dt, s, name, loc);
  c->g.nodes[id].ext = c->g.nargs;
  define(p, name, id, loc);
  ir_add_arg(c, name, id, is_param, 0, loc);
  end_stmt(p);
}

/* `k=v` of optimizer(...), or clip_grad_norm's M: a number, true/false,
 * or the name of a defined value (optim.c checks it is a scalar input). */
static OptArg opt_value(P *p, const char *name) {
  OptArg a = {name, 1, 0, NULL, -1, tloc(peek(p))};
  int neg = accept(p, "-");
  Token *t = peek(p);
  if (t->kind == T_NUM) {
    a.num = neg ? -t->num : t->num;
  } else if (!neg && (is_ident(t, "true") || is_ident(t, "false"))) {
    a.num = is_ident(t, "true");
  } else if (!neg && t->kind == T_IDENT) {
    a.input = arena_strndup(&p->c->arena, t->text, (size_t)t->len);
    Sym *s = lookup(p, a.input);
    if (!s)
      unknown_name(p, a.input, a.loc);
    a.node = s->node;
  } else {
    error_at(p->c, tloc(t), "expected a number or the name of a scalar "
             "input, found '%s'", tok_desc(p, t));
  }
  p->pos++;
  return a;
}

/* optimizer KIND(k=v, ...) | clip_grad_norm M */
static void opt_stmt(P *p, int clip, Loc loc) {
  if (clip) {
    OptArg a = opt_value(p, "clip_grad_norm");
    end_stmt(p);
    optim_clip(p->c, loc, a);
    return;
  }
  Loc kloc = tloc(peek(p));
  const char *kind = ident(p, "an optimizer");
  OptArg args[16];
  int n = 0;
  expect(p, "(");
  while (!is_punct(peek(p), ")")) {
    Token *t = peek(p);
    if (t->kind != T_IDENT || !is_punct(&p->t[p->pos + 1], "="))
      error_at(p->c, tloc(t), "optimizer arguments are named: write "
               "%s(lr=0.01, ...)", kind);
    if (n == 16)
      error_at(p->c, tloc(t), "too many optimizer arguments");
    const char *an = ident(p, "an argument");
    p->pos++; /* '=' */
    args[n] = opt_value(p, an);
    args[n++].loc = tloc(t);
    if (!accept(p, ","))
      break;
  }
  expect(p, ")");
  end_stmt(p);
  optim_statement(p->c, kind, kloc, n, args);
  (void)loc;
}

typedef struct {
  const char *name;
  int node;
  Loc loc;
} Root;

static void names_list(P *p, Root **out, int *n, int *cap) {
  do {
    Loc loc = tloc(peek(p));
    const char *name = ident(p, "a value");
    Sym *s = lookup(p, name);
    if (!s)
      unknown_name(p, name, loc);
    if (*n == *cap) {
      int ncap = *cap ? *cap * 2 : 8;
      Root *nr = arena_alloc(&p->c->arena, sizeof *nr * (size_t)ncap);
      if (*n)
        memcpy(nr, *out, sizeof *nr * (size_t)*n);
      *out = nr;
      *cap = ncap;
    }
    (*out)[(*n)++] = (Root){name, s->node, loc};
  } while (accept(p, ","));
  end_stmt(p);
}

static void do_backward(P *p, Root *roots, int nroots) {
  Ctx *c = p->c;
  int *rn = arena_alloc(&c->arena, sizeof(int) * (size_t)(nroots + 1));
  int *seeds = arena_alloc(&c->arena, sizeof(int) * (size_t)(nroots + 1));
  /* a name is one node, so a repeated root is a repeated node (marked,
     not compared pairwise: backward may list 100,000 names) */
  size_t seensz = (size_t)c->g.n + 1;
  char *seen = arena_alloc(&c->arena, seensz);
  for (int i = 0; i < nroots; i++) {
    if (seen[roots[i].node]++)
      error_at(c, roots[i].loc, "'%s' is already a backward root",
               roots[i].name);
    Node *n = &c->g.nodes[roots[i].node];
    if (n->dt == DT_I32)
      error_at(c, roots[i].loc, "backward of '%s': an i32 value has no "
               "gradient", roots[i].name);
    rn[i] = roots[i].node;
    seeds[i] = -1;
    if (n->shape.rank > 0 && n->numel > 1) {
      /* y.backward(gradient=grad_y): the caller provides the seed. */
      Shape s = n->shape;
      char *sname = arena_alloc(&c->arena, strlen(roots[i].name) + 6);
      sprintf(sname, "grad_%s", roots[i].name);
      if (lookup(p, sname))
        error_at(c, lookup(p, sname)->loc, "'%s' is reserved for the seed of "
                 "'backward %s'", sname, roots[i].name);
      int sid = ir_leaf(c, OP_INPUT, DT_F, s, sname, roots[i].loc);
      c->g.nodes[sid].ext = c->g.nargs;
      ir_add_arg(c, sname, sid, 0, 1, roots[i].loc);
      seeds[i] = sid;
    }
  }
  int np = 0;
  for (int i = 0; i < c->g.nargs; i++)
    np += c->g.args[i].is_param;
  if (np == 0)
    error_at(c, roots[0].loc, "backward: the graph has no param to "
             "differentiate (declare trainable tensors with 'param'; for an "
             "input use grad(y, x))");
  int *wrt = arena_alloc(&c->arena, sizeof(int) * (size_t)(np + 1));
  int *grads = arena_alloc(&c->arena, sizeof(int) * (size_t)(np + 1));
  int *pidx = arena_alloc(&c->arena, sizeof(int) * (size_t)(np + 1));
  np = 0;
  for (int i = 0; i < c->g.nargs; i++)
    if (c->g.args[i].is_param) {
      pidx[np] = i;
      wrt[np++] = c->g.args[i].node;
    }
  int *unused = arena_alloc(&c->arena, sizeof(int) * (size_t)(np + 1));
  autodiff(c, rn, seeds, nroots, wrt, np, grads, unused, roots[0].loc);
  c->broots = rn;
  c->bseeds = seeds;
  c->nbroots = nroots;
  if (c->opt.mode != MODE_GRAD) { /* a training step or update */
    optim_build(c, pidx, grads, np);
    return;
  }
  for (int j = 0; j < np; j++) {
    Arg *a = &c->g.args[pidx[j]];
    char *gname = arena_alloc(&c->arena, strlen(a->name) + 6);
    sprintf(gname, "grad_%s", a->name);
    Sym *clash = lookup(p, gname);
    if (clash)
      error_at(c, clash->loc, "'%s' is reserved for the gradient of param "
               "'%s'", gname, a->name);
    if (unused[j])
      warn_at(c, a->loc, "param '%s' does not influence any backward root; "
              "its gradient is zero", a->name);
    ir_add_out(c, gname, grads[j], 1, a->loc);
  }
  if (c->opt.expose_roots)
    for (int i = 0; i < nroots; i++) {
      char *rname = arena_alloc(&c->arena, strlen(roots[i].name) + 16);
      sprintf(rname, "agc_root_%s", roots[i].name);
      ir_add_out(c, rname, rn[i], 0, roots[i].loc);
    }
}

void parse_program(Ctx *c, Token *toks, int ntok) {
  P p;
  memset(&p, 0, sizeof p);
  p.c = c;
  p.t = toks;
  p.ntok = ntok;
  Root *outs = NULL, *roots = NULL;
  int nouts = 0, outcap = 0, nroots = 0, rootcap = 0;
  for (;;) {
    Token *t = peek(&p);
    if (t->kind == T_EOF)
      break;
    if (t->kind == T_NEWLINE) {
      p.pos++;
      continue;
    }
    Loc loc = tloc(t);
    if (is_ident(t, "graph")) {
      p.pos++;
      if (p.nstmts > 0)
        error_at(c, loc, "'graph' must be the first statement");
      const char *name = ident(&p, "the graph");
      if (!c->opt.name)
        c->name = name;
      end_stmt(&p);
    } else if (is_ident(t, "input") || is_ident(t, "param")) {
      p.pos++;
      decl(&p, is_ident(t, "param"));
    } else if (is_ident(t, "output")) {
      p.pos++;
      names_list(&p, &outs, &nouts, &outcap);
    } else if (is_ident(t, "backward")) {
      p.pos++;
      names_list(&p, &roots, &nroots, &rootcap);
    } else if ((is_ident(t, "optimizer") || is_ident(t, "clip_grad_norm")) &&
               !is_punct(&toks[p.pos + 1], "=")) {
      p.pos++;
      opt_stmt(&p, is_ident(t, "clip_grad_norm"), loc);
    } else if (t->kind == T_IDENT && is_punct(&toks[p.pos + 1], "=")) {
      const char *name = ident(&p, "a value");
      p.pos++; /* '=' */
      Sym *old = lookup(&p, name);
      if (old)
        error_at(c, loc, "'%s' is already defined (at line %d)", name,
                 old->loc.line);
      Val v = expr(&p);
      int x = need_node(&p, v, "=");
      /* A named value is its own node, so grad() with respect to it sees
         exactly this name's uses. */
      Node t2 = c->g.nodes[x];
      t2.op = OP_ID;
      t2.nin = 1;
      t2.loc = loc;
      t2.name = name;
      t2.flags = 0;
      t2.mask = 0;
      t2.val = 0;
      memset(t2.perm, 0, sizeof t2.perm);
      int id = ir_node(c, &t2, &x);
      define(&p, name, id, loc);
      end_stmt(&p);
    } else if (t->kind == T_IDENT) {
      Token *n = &toks[p.pos + 1];
      if (n->kind == T_NEWLINE || n->kind == T_EOF)
        error_at(c, loc, "expected a statement, found '%.*s'", t->len,
                 t->text);
      error_at(c, tloc(n), "expected '=' after '%.*s', found '%s'", t->len,
               t->text, tok_desc(&p, n));
    } else {
      error_at(c, loc, "expected a statement, found '%s'", tok_desc(&p, t));
    }
    p.nstmts++;
  }
  if (p.nstmts == 0)
    error_at(c, (Loc){1, 1}, "empty graph: no statements");
  for (int i = 0; i < nouts; i++)
    ir_add_out(c, outs[i].name, outs[i].node, 0, outs[i].loc);
  if (c->optim.kind && !nroots)
    error_at(c, c->optim.loc, "'optimizer' needs 'backward': write "
             "'backward LOSS' before it");
  if (c->optim.clip && !c->optim.kind)
    error_at(c, c->optim.clip_loc, "'clip_grad_norm' needs an 'optimizer' "
             "after it");
  if (c->opt.mode != MODE_GRAD && (!c->optim.kind || c->opt.no_grad))
    error_plain(c, "internal: a training step of a graph without an "
                "optimizer");
  if (nroots && !c->opt.no_grad)
    do_backward(&p, roots, nroots);
  if (c->g.nouts == 0)
    error_at(c, (Loc){toks[ntok - 1].line, 1},
             "the graph has no output and no backward: nothing to compute");
}
