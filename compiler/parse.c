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

#include "parse.h"

#define MAX_NESTING 500

Token *ps_peek(P *p) { return &p->t[p->pos]; }
Loc ps_tloc(const Token *t) { return (Loc){t->line, t->col}; }
int ps_is_punct(const Token *t, const char *s) {
  return t->kind == T_PUNCT && t->text[0] == s[0] &&
         (size_t)t->len == strlen(s) &&
         memcmp(t->text, s, (size_t)t->len) == 0;
}
int ps_is_ident(const Token *t, const char *s) {
  return t->kind == T_IDENT && (size_t)t->len == strlen(s) &&
         memcmp(t->text, s, (size_t)t->len) == 0;
}
int ps_accept(P *p, const char *s) {
  if (ps_is_punct(ps_peek(p), s)) {
    p->pos++;
    return 1;
  }
  return 0;
}
const char *ps_tok_desc(P *p, const Token *t) {
  static const char *const names[] = {"end of file", "end of line"};
  if (t->kind == T_EOF || (t->kind == T_NEWLINE && t->len == 0))
    return names[0];
  if (t->kind == T_NEWLINE)
    return names[1];
  /* operators are described often (every binary operation): no copy */
  static const char *const ops[] = {"**", "<=", ">=", "==", "!=", "+", "-",
                                    "*",  "/",  "@",  "<",  ">",  NULL};
  for (const char *const *o = ops; *o; o++)
    if (ps_is_punct(t, *o))
      return *o;
  return arena_strndup(&p->c->arena, t->text, (size_t)t->len);
}
void ps_expect(P *p, const char *s) {
  if (!ps_accept(p, s))
    error_at(p->c, ps_tloc(ps_peek(p)), "expected '%s', found '%s'", s,
             ps_tok_desc(p, ps_peek(p)));
}

static const char *const keywords[] = {"graph", "input",    "param", "output",
                                       "backward", "true", "false", NULL};
static int is_keyword(const Token *t) {
  for (const char *const *k = keywords; *k; k++)
    if (ps_is_ident(t, *k))
      return 1;
  return 0;
}

const char *ps_ident(P *p, const char *what) {
  Token *t = ps_peek(p);
  if (t->kind != T_IDENT)
    error_at(p->c, ps_tloc(t), "expected %s, found '%s'", what, ps_tok_desc(p, t));
  if (is_keyword(t))
    error_at(p->c, ps_tloc(t), "'%.*s' is a keyword and cannot name %s", t->len,
             t->text, what);
  p->pos++;
  return arena_strndup(&p->c->arena, t->text, (size_t)t->len);
}

/* ---- symbols ------------------------------------------------------------ */

Sym *ps_lookup(P *p, const char *name) {
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
  Sym *old = ps_lookup(p, name);
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

Node *ps_node(P *p, int id) { return &p->c->g.nodes[id]; }
Shape ps_shape(P *p, int id) { return p->c->g.nodes[id].shape; }

int ps_need_node(P *p, Val v, const char *fn) {
  if (v.kind != V_NODE)
    error_at(p->c, v.loc, "%s: expected a tensor here, found a %s", fn,
             v.kind == V_LIST ? "list" : "boolean");
  return v.node;
}

int64_t ps_need_int(P *p, Val v, const char *fn, const char *what) {
  double x;
  if (v.kind != V_NODE || !ir_is_const(p->c, v.node, &x) ||
      ps_shape(p, v.node).rank != 0 || x != floor(x) || fabs(x) > 9e15)
    error_at(p->c, v.loc, "%s: %s must be an integer constant", fn, what);
  return (int64_t)x;
}

double ps_need_number(P *p, Val v, const char *fn, const char *what) {
  double x;
  if (v.kind != V_NODE || !ir_is_const(p->c, v.node, &x) ||
      ps_shape(p, v.node).rank != 0)
    error_at(p->c, v.loc, "%s: %s must be a number", fn, what);
  return x;
}

int ps_norm_axis(P *p, int64_t ax, int rank, Loc loc) {
  if (ax < -rank || ax >= (rank ? rank : 1) || (rank == 0 && ax != 0 &&
                                               ax != -1))
    error_at(p->c, loc, "axis %lld is out of range for a tensor of rank %d",
             (long long)ax, rank);
  if (rank == 0)
    return 0;
  return (int)(ax < 0 ? ax + rank : ax);
}

Shape ps_need_shape(P *p, Val v, const char *fn, int64_t numel_for_neg1) {
  if (v.kind != V_LIST)
    error_at(p->c, v.loc, "%s: expected a shape like [2, 3]", fn);
  if (v.nitems > MAX_RANK)
    error_at(p->c, v.loc, "%s: more than %d dimensions", fn, MAX_RANK);
  Shape s = {v.nitems, {0}};
  int neg = -1;
  int64_t known = 1;
  for (int i = 0; i < v.nitems; i++) {
    int64_t d = ps_need_int(p, v.items[i], fn, "a dimension");
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

_Noreturn void ps_unknown_name(P *p, const char *name, Loc loc) {
  if (ps_is_function(name))
    error_at(p->c, loc, "'%s' is a function, not a value: call it, as in "
             "%s(x)", name, name);
  if (strncmp(name, "grad_", 5) == 0 && ps_lookup(p, name + 5))
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
  while (!ps_is_punct(ps_peek(p), "]")) {
    if (v.nitems == cap) {
      cap = cap ? cap * 2 : 8;
      Val *ni = arena_alloc(&p->c->arena, sizeof *ni * (size_t)cap);
      if (v.nitems)
        memcpy(ni, v.items, sizeof *ni * (size_t)v.nitems);
      v.items = ni;
    }
    v.items[v.nitems++] = expr(p);
    if (!ps_accept(p, ","))
      break;
  }
  ps_expect(p, "]");
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
  while (!ps_is_punct(ps_peek(p), ")")) {
    if (k.npos + k.nnamed >= cap)
      error_at(p->c, ps_tloc(ps_peek(p)), "%s(): too many arguments", fn);
    Token *t = ps_peek(p);
    if (t->kind == T_IDENT && ps_is_punct(&p->t[p->pos + 1], "=")) {
      const char *name = arena_strndup(&p->c->arena, t->text, (size_t)t->len);
      for (int j = 0; j < k.nnamed; j++)
        if (strcmp(k.named[j].argname, name) == 0)
          error_at(p->c, ps_tloc(t), "%s(): argument '%s' given twice", fn, name);
      p->pos += 2;
      Val v = expr(p);
      v.argname = name;
      v.loc = ps_tloc(t);
      k.named[k.nnamed++] = v;
    } else {
      if (k.nnamed)
        error_at(p->c, ps_tloc(t), "%s(): positional argument after a named one",
                 fn);
      k.pos[k.npos++] = expr(p);
    }
    if (!ps_accept(p, ","))
      break;
  }
  ps_expect(p, ")");
  return mknode(ps_call(p, &k), loc);
}

/* x[i], x[a:b, :, k] */
static int index_expr(P *p, int x, Loc loc) {
  Ctx *c = p->c;
  Shape s = ps_shape(p, x);
  int64_t start[MAX_RANK] = {0};
  Shape out = s, keep = {0, {0}};
  int dim = 0;
  while (!ps_is_punct(ps_peek(p), "]")) {
    if (dim >= s.rank)
      error_at(c, ps_tloc(ps_peek(p)), "too many indices for a tensor of rank %d",
               s.rank);
    Loc il = ps_tloc(ps_peek(p));
    int64_t n = s.d[dim], lo = 0, hi = n;
    int is_slice = 0;
    if (!ps_is_punct(ps_peek(p), ":")) {
      Val v = expr(p);
      lo = ps_need_int(p, v, "index", "an index");
    } else {
      lo = 0;
    }
    if (ps_accept(p, ":")) {
      is_slice = 1;
      if (!ps_is_punct(ps_peek(p), ",") && !ps_is_punct(ps_peek(p), "]")) {
        Val v = expr(p);
        hi = ps_need_int(p, v, "slice", "a slice bound");
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
      if (ps_is_punct(ps_peek(p), ":"))
        error_at(c, ps_tloc(ps_peek(p)), "slices with a step are not supported");
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
    if (!ps_accept(p, ","))
      break;
  }
  ps_expect(p, "]");
  for (; dim < s.rank; dim++)
    keep.d[keep.rank++] = s.d[dim];
  int r = ir_slice(c, OP_SLICE, x, start, out, loc);
  return ir_reshape(c, r, keep, loc);
}

static Val primary(P *p) {
  Token *t = ps_peek(p);
  Loc loc = ps_tloc(t);
  if (t->kind == T_NUM) {
    p->pos++;
    return mknode(ir_scalar(p->c, t->num), loc);
  }
  if (ps_accept(p, "(")) {
    Val v = expr(p);
    ps_expect(p, ")");
    v.loc = loc;
    return v;
  }
  if (ps_accept(p, "["))
    return list_literal(p, loc);
  if (ps_is_ident(t, "true") || ps_is_ident(t, "false")) {
    p->pos++;
    Val v;
    memset(&v, 0, sizeof v);
    v.kind = V_BOOL;
    v.b = ps_is_ident(t, "true");
    v.loc = loc;
    return v;
  }
  if (t->kind == T_IDENT && !is_keyword(t)) {
    p->pos++;
    const char *name = arena_strndup(&p->c->arena, t->text, (size_t)t->len);
    if (ps_is_punct(ps_peek(p), "(")) {
      p->pos++;
      return args_and_call(p, name, loc);
    }
    Sym *s = ps_lookup(p, name);
    if (!s)
      ps_unknown_name(p, name, loc);
    return mknode(s->node, loc);
  }
  if (t->kind == T_EOF || t->kind == T_NEWLINE)
    error_at(p->c, loc, "expected an expression, found %s", ps_tok_desc(p, t));
  error_at(p->c, loc, "expected an expression, found '%s'", ps_tok_desc(p, t));
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
  Token *f = ps_peek(p);
  Loc floc = ps_tloc(f);
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
  if (!ps_is_punct(&p->t[p->pos + 1], "(")) {
    if (strcmp(name, "grad") == 0)
      error_at(p->c, floc, "no attribute '.grad': 'backward' outputs grad_P "
               "for every param P; inside expressions use grad(y, %s)", recv);
    error_at(p->c, floc, "no attribute '.%s': the only attribute is x.T, "
             "the transpose", name);
  }
  /* the arguments' text, up to the matching ')' */
  int q = p->pos + 2, depth = 1;
  while (p->t[q].kind != T_EOF && depth > 0) {
    if (ps_is_punct(&p->t[q], "(") || ps_is_punct(&p->t[q], "["))
      depth++;
    else if (ps_is_punct(&p->t[q], ")") || ps_is_punct(&p->t[q], "]"))
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
  const char *fn = ps_is_function(name) ? name : ps_fn_suggestion(name);
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
    Token *t = ps_peek(p);
    if (ps_is_punct(t, "[") && v.kind == V_NODE) {
      p->pos++;
      v = mknode(index_expr(p, v.node, ps_tloc(t)), v.loc);
    } else if (ps_is_punct(t, ".")) {
      p->pos++;
      Token *f = ps_peek(p);
      if (!ps_is_ident(f, "T"))
        method_syntax(p, start);
      p->pos++;
      int x = ps_need_node(p, v, ".T");
      if (ps_shape(p, x).rank != 2)
        error_at(p->c, ps_tloc(f), ".T needs a 2-D tensor, got rank %d",
                 ps_shape(p, x).rank);
      v = mknode(ps_transpose2(p, x, 0, 1, ps_tloc(t)), v.loc);
    } else if (ps_is_punct(t, "(")) {
      error_at(p->c, ps_tloc(t), "only a function name can be called");
    } else {
      return v;
    }
  }
}

static Val unary(P *p);

static Val binop(P *p, Op op, Val a, Val b, Loc loc, const char *sym) {
  int x = ps_need_node(p, a, sym), y = ps_need_node(p, b, sym);
  if (op == OP_MATMUL)
    return mknode(ps_matmul_any(p, x, y, loc), a.loc);
  return mknode(ir_binary(p->c, op, x, y, loc), a.loc);
}

static Val power(P *p) {
  Val v = postfix(p);
  Token *t = ps_peek(p);
  if (ps_accept(p, "**")) {
    Val e = unary(p);
    v = binop(p, OP_POW, v, e, ps_tloc(t), "**");
  }
  return v;
}

static Val unary(P *p) {
  Token *t = ps_peek(p);
  if (++p->depth > MAX_NESTING)
    error_at(p->c, ps_tloc(t), "expression nested too deeply (more than %d "
             "levels)", MAX_NESTING);
  Val v;
  if (ps_accept(p, "-")) {
    v = unary(p);
    v = mknode(ir_unary(p->c, OP_NEG, ps_need_node(p, v, "-"), ps_tloc(t)), ps_tloc(t));
  } else if (ps_accept(p, "+")) {
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
    Token *t = ps_peek(p);
    Op op;
    if (ps_is_punct(t, "*"))
      op = OP_MUL;
    else if (ps_is_punct(t, "/"))
      op = OP_DIV;
    else if (ps_is_punct(t, "@"))
      op = OP_MATMUL;
    else
      return v;
    p->pos++;
    Val w = unary(p);
    v = binop(p, op, v, w, ps_tloc(t), ps_tok_desc(p, t));
  }
}

static Val arith(P *p) {
  Val v = term(p);
  for (;;) {
    Token *t = ps_peek(p);
    Op op;
    if (ps_is_punct(t, "+"))
      op = OP_ADD;
    else if (ps_is_punct(t, "-"))
      op = OP_SUB;
    else
      return v;
    p->pos++;
    Val w = term(p);
    v = binop(p, op, v, w, ps_tloc(t), ps_tok_desc(p, t));
  }
}

static int cmp_op(const Token *t, Op *op) {
  static const struct {
    const char *s;
    Op op;
  } ops[] = {{"<", OP_LT},  {"<=", OP_LE}, {">", OP_GT},
             {">=", OP_GE}, {"==", OP_EQ}, {"!=", OP_NE}};
  for (size_t i = 0; i < sizeof ops / sizeof ops[0]; i++)
    if (ps_is_punct(t, ops[i].s)) {
      *op = ops[i].op;
      return 1;
    }
  return 0;
}

static Val expr(P *p) {
  if (++p->depth > MAX_NESTING)
    error_at(p->c, ps_tloc(ps_peek(p)), "expression nested too deeply (more than "
             "%d levels)", MAX_NESTING);
  Val v = arith(p);
  Op op;
  Token *t = ps_peek(p);
  if (cmp_op(t, &op)) {
    p->pos++;
    Val w = arith(p);
    v = binop(p, op, v, w, ps_tloc(t), ps_tok_desc(p, t));
    if (cmp_op(ps_peek(p), &op))
      error_at(p->c, ps_tloc(ps_peek(p)),
               "comparisons cannot be chained; use parentheses");
  }
  p->depth--;
  return v;
}

/* ---- statements -------------------------------------------------------------- */

void ps_end_stmt(P *p) {
  Token *t = ps_peek(p);
  if (t->kind != T_NEWLINE && t->kind != T_EOF)
    error_at(p->c, ps_tloc(t), "expected end of line, found '%s'",
             ps_tok_desc(p, t));
  if (t->kind == T_NEWLINE)
    p->pos++;
}

static void decl(P *p, int is_param) {
  Ctx *c = p->c;
  Loc loc = ps_tloc(ps_peek(p));
  const char *name = ps_ident(p, is_param ? "a param" : "an input");
  DType dt = DT_F;
  if (ps_accept(p, ":")) {
    Token *t = ps_peek(p);
    if (ps_is_ident(t, "i32"))
      dt = DT_I32;
    else if (!ps_is_ident(t, "f32") && !ps_is_ident(t, "f64"))
      error_at(c, ps_tloc(t), "unknown element type '%s' (expected f32, f64 or "
               "i32)", ps_tok_desc(p, t));
    p->pos++;
    if (dt == DT_I32 && is_param)
      error_at(c, ps_tloc(t), "a param cannot be i32: integers have no "
               "gradient");
  }
  Shape s = {0, {0}};
  if (ps_accept(p, "[")) {
    while (!ps_is_punct(ps_peek(p), "]")) {
      Token *t = ps_peek(p);
      int neg = ps_accept(p, "-");
      Token *d = ps_peek(p);
      if (d->kind != T_NUM)
        error_at(c, ps_tloc(d), "expected a dimension, found '%s'",
                 ps_tok_desc(p, d));
      p->pos++;
      if (!d->is_int)
        error_at(c, ps_tloc(d), "dimension must be an integer");
      if (neg || d->num <= 0)
        error_at(c, ps_tloc(t), "dimension %s%.0f must be positive",
                 neg ? "-" : "", d->num);
      if (s.rank >= MAX_RANK)
        error_at(c, ps_tloc(d), "more than %d dimensions", MAX_RANK);
      if (d->num > (double)MAX_ELEMS)
        error_at(c, ps_tloc(d), "tensor too large to address (more than %lld "
                 "elements)", (long long)MAX_ELEMS);
      s.d[s.rank++] = (int64_t)d->num;
      if (!ps_accept(p, ","))
        break;
    }
    ps_expect(p, "]");
  }
  int id = ir_leaf(c, is_param ? OP_PARAM : OP_INPUT, dt, s, name, loc);
  c->g.nodes[id].ext = c->g.nargs;
  define(p, name, id, loc);
  ir_add_arg(c, name, id, is_param, 0, loc);
  ps_end_stmt(p);
}

typedef struct {
  const char *name;
  int node;
  Loc loc;
} Root;

static void names_list(P *p, Root **out, int *n, int *cap) {
  do {
    Loc loc = ps_tloc(ps_peek(p));
    const char *name = ps_ident(p, "a value");
    Sym *s = ps_lookup(p, name);
    if (!s)
      ps_unknown_name(p, name, loc);
    if (*n == *cap) {
      int ncap = *cap ? *cap * 2 : 8;
      Root *nr = arena_alloc(&p->c->arena, sizeof *nr * (size_t)ncap);
      if (*n)
        memcpy(nr, *out, sizeof *nr * (size_t)*n);
      *out = nr;
      *cap = ncap;
    }
    (*out)[(*n)++] = (Root){name, s->node, loc};
  } while (ps_accept(p, ","));
  ps_end_stmt(p);
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
      if (ps_lookup(p, sname))
        error_at(c, ps_lookup(p, sname)->loc, "'%s' is reserved for the seed of "
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
    Sym *clash = ps_lookup(p, gname);
    if (clash)
      error_at(c, clash->loc, "'%s' is reserved for the gradient of param "
               "'%s'", gname, a->name);
    if (unused[j])
      warn_at(c, a->loc, "param '%s' does not influence any backward root; "
              "its gradient is zero", a->name);
    ir_add_out(c, gname, grads[j], 1, a->loc);
  }
  if (c->opt.api.expose_roots)
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
    Token *t = ps_peek(&p);
    if (t->kind == T_EOF)
      break;
    if (t->kind == T_NEWLINE) {
      p.pos++;
      continue;
    }
    Loc loc = ps_tloc(t);
    if (ps_is_ident(t, "graph")) {
      p.pos++;
      if (p.nstmts > 0)
        error_at(c, loc, "'graph' must be the first statement");
      const char *name = ps_ident(&p, "the graph");
      if (!c->opt.api.name)
        c->name = name;
      ps_end_stmt(&p);
    } else if (ps_is_ident(t, "input") || ps_is_ident(t, "param")) {
      p.pos++;
      decl(&p, ps_is_ident(t, "param"));
    } else if (ps_is_ident(t, "output")) {
      p.pos++;
      names_list(&p, &outs, &nouts, &outcap);
    } else if (ps_is_ident(t, "backward")) {
      p.pos++;
      names_list(&p, &roots, &nroots, &rootcap);
    } else if ((ps_is_ident(t, "optimizer") || ps_is_ident(t, "clip_grad_norm")) &&
               !ps_is_punct(&toks[p.pos + 1], "=")) {
      p.pos++;
      ps_opt_stmt(&p, ps_is_ident(t, "clip_grad_norm"), loc);
    } else if (t->kind == T_IDENT && ps_is_punct(&toks[p.pos + 1], "=")) {
      const char *name = ps_ident(&p, "a value");
      p.pos++; /* '=' */
      Sym *old = ps_lookup(&p, name);
      if (old)
        error_at(c, loc, "'%s' is already defined (at line %d)", name,
                 old->loc.line);
      Val v = expr(&p);
      int x = ps_need_node(&p, v, "=");
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
      t2.perm = ir_zero_perm;
      int id = ir_node(c, &t2, &x);
      define(&p, name, id, loc);
      ps_end_stmt(&p);
    } else if (t->kind == T_IDENT) {
      Token *n = &toks[p.pos + 1];
      if (n->kind == T_NEWLINE || n->kind == T_EOF)
        error_at(c, loc, "expected a statement, found '%.*s'", t->len,
                 t->text);
      error_at(c, ps_tloc(n), "expected '=' after '%.*s', found '%s'", t->len,
               t->text, ps_tok_desc(&p, n));
    } else {
      error_at(c, loc, "expected a statement, found '%s'", ps_tok_desc(&p, t));
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
  if (c->opt.mode != MODE_GRAD && (!c->optim.kind || c->opt.api.no_grad))
    error_plain(c, "internal: a training step of a graph without an "
                "optimizer");
  if (nroots && !c->opt.api.no_grad)
    do_backward(&p, roots, nroots);
  if (c->g.nouts == 0)
    error_at(c, (Loc){toks[ntok - 1].line, 1},
             "the graph has no output and no backward: nothing to compute");
}
