/* emit.c — the C generator.
 *
 * One function computes every output and gradient. Each stored node is one
 * loop nest; the element-wise nodes fused into it (plan.c) become local
 * variables of the loop body, so the C reads like the graph. Everything the
 * caller needs to size buffers is a macro; everything a tool needs to call
 * the function without knowing the graph is a const table.
 * The driver, buffers, expressions, loops and loop fusion; see emit.h for
 * the other emit*.c files.
 */
#include <ctype.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "emit.h"
void em_line(E *e, const char *fmt, ...) {
  static const char spaces[] = "                                        ";
  int ind = e->t->readable ? 2 * e->ind : 0;
  for (; ind > 0; ind -= 40)
    sb_putn(e->o, spaces, (size_t)(ind < 40 ? ind : 40));
  va_list ap;
  if (fmt[0] == '%' && fmt[1] == 's' && !fmt[2]) { /* a line made already */
    va_start(ap, fmt);
    sb_puts(e->o, va_arg(ap, const char *));
    va_end(ap);
    sb_putc(e->o, '\n');
    return;
  }
  va_start(ap, fmt);
  char buf[4096];
  int n = vsnprintf(buf, sizeof buf, fmt, ap);
  va_end(ap);
  if (n >= (int)sizeof buf) { /* long line: format again on the heap */
    char *big = malloc((size_t)n + 1);
    if (!big)
      abort();
    va_start(ap, fmt);
    vsnprintf(big, (size_t)n + 1, fmt, ap);
    va_end(ap);
    sb_putn(e->o, big, (size_t)n);
    free(big);
  } else if (n > 0) {
    sb_putn(e->o, buf, (size_t)n);
  }
  sb_putc(e->o, '\n');
}

char *em_fmt(E *e, const char *f, ...) {
  va_list ap;
  char buf[256];
  if (!f) /* never: for gcc 12, whose -fsanitize=undefined build warns of a
             null format here otherwise */
    f = "";
  va_start(ap, f);
  int n = vsnprintf(buf, sizeof buf, f, ap);
  va_end(ap);
  if (n < 0)
    n = 0;
  char *s = arena_alloc_raw(&e->c->tmp, (size_t)n + 1);
  if ((size_t)n < sizeof buf) { /* the usual short string: formatted once */
    memcpy(s, buf, (size_t)n + 1);
    return s;
  }
  va_start(ap, f);
  vsnprintf(s, (size_t)n + 1, f, ap);
  va_end(ap);
  return s;
}

/* The strings up to NULL, concatenated (the generator's most frequent
 * strings, without printf's parsing of a format each time). */
char *em_cat(E *e, const char *a, ...) {
  va_list ap;
  size_t n = 0, len[16];
  int k = 0;
  va_start(ap, a);
  for (const char *x = a; x; x = va_arg(ap, const char *), k++)
    n += k < 16 ? (len[k] = strlen(x)) : strlen(x);
  va_end(ap);
  char *s = arena_alloc_raw(&e->c->tmp, n + 1), *w = s;
  k = 0;
  va_start(ap, a);
  for (const char *x = a; x; x = va_arg(ap, const char *), k++) {
    size_t m = k < 16 ? len[k] : strlen(x);
    memcpy(w, x, m);
    w += m;
  }
  va_end(ap);
  *w = 0;
  return s;
}

/* prefix followed by the decimal k ("v12") */
char *em_name(E *e, const char *prefix, long long k) {
  char d[24];
  int i = (int)sizeof d - 1;
  unsigned long long u = k < 0 ? 0ULL - (unsigned long long)k : (unsigned long long)k;
  d[i] = 0;
  do
    d[--i] = (char)('0' + u % 10);
  while (u /= 10);
  if (k < 0)
    d[--i] = '-';
  return em_cat(e, prefix, d + i, (const char *)NULL);
}

/* A float literal that reads back exactly in the target type. */
char *em_lit(E *e, double v) {
  char buf[64];
  /* the front end keeps constants finite in the element type (literals,
     folding); C has no portable literal for an infinity or a NaN */
  if (!isfinite(e->c->opt.api.f64 ? v : (double)(float)v))
    error_plain(e->c, "a constant of the program (%g) is beyond the range "
                "of %s", v, e->real);
  double fv = e->c->opt.api.f64 ? v : (double)(float)v;
  if (fv == floor(fv) && fabs(fv) < 1e9 && !(fv == 0 && signbit(fv))) {
    /* an integer: its digits are what %.9g / %.17g print */
    long long k = (long long)fv;
    unsigned long long u = k < 0 ? 0ULL - (unsigned long long)k : (unsigned long long)k;
    int i = (int)sizeof buf - 1;
    buf[i] = 0;
    do
      buf[--i] = (char)('0' + u % 10);
    while (u /= 10);
    if (k < 0)
      buf[--i] = '-';
    memmove(buf, buf + i, sizeof buf - (size_t)i);
  } else if (e->c->opt.api.f64) {
    snprintf(buf, sizeof buf, "%.17g", v);
  } else {
    snprintf(buf, sizeof buf, "%.9g", (double)(float)v);
  }
  if (!strpbrk(buf, ".en"))
    strcat(buf, ".0");
  if (!e->c->opt.api.f64)
    strcat(buf, "f");
  if (v < 0)
    return em_cat(e, "(", buf, ")", (const char *)NULL);
  return em_cat(e, buf, (const char *)NULL);
}

static const char *ctype(E *e, const Node *n) {
  return n->dt == DT_I32 ? "int32_t" : e->real;
}

/* ---- buffers -------------------------------------------------------------- */

/* The C name of argument i of the function (by its role, optim.c). */
static const char *const arg_prefix[] = {"in_", "p_", "", "s_", "in_"};

const char *em_argname(Ctx *c, int i) {
  const Arg *a = &c->g.args[i];
  char *s = arena_alloc(&c->arena, strlen(a->name) + 4);
  sprintf(s, "%s%s", arg_prefix[a->role], a->name);
  return s;
}

/* the same, for one statement's code */
static const char *em_tmp_argname(E *e, int i) {
  const Arg *a = &e->c->g.args[i];
  return em_fmt(e, "%s%s", arg_prefix[a->role], a->name);
}

/* Argument i is named: by the function's body, or for a part function
 * (in_part), which gets an optimizer state's slot from st itself and
 * every other argument from the function. */
static void arg_named(E *e, int i, int in_part) {
  if (!in_part || e->c->g.args[i].role != ROLE_STATE)
    e->arg_used[i] = 1;
}

const char *em_bufname(E *e, int id) {
  int b = e->p->alias[id];
  Node *n = ND(e, b);
  int in_part = e->capmark || e->naming;
  if (e->capmark && !e->capmark[b]) { /* a part function's buffer */
    e->capmark[b] = 1;
    e->cap[e->ncap++] = b;
  }
  if (!in_part)
    e->used[b] = 1;
  if (n->op == OP_INPUT || n->op == OP_PARAM) {
    arg_named(e, n->ext, in_part);
    return em_tmp_argname(e, n->ext);
  }
  if (e->p->store[b] >= 0) {
    const Out *o = &e->c->g.outs[e->p->store[b]];
    if (o->home >= 0) {
      arg_named(e, o->home, in_part);
      return em_tmp_argname(e, o->home);
    }
    return em_fmt(e, "out_%s", o->name);
  }
  return em_fmt(e, "t%d", b);
}

/* Row-major offset of idx[] in shape s; size-1 axes read index 0. */
char *em_offset(E *e, const Shape *s, char **idx) {
  if (e->flat)
    return idx[0];
  StrBuf b = {0};
  int64_t stride = 1;
  const char *terms[MAX_RANK];
  int64_t strides[MAX_RANK];
  int nt = 0;
  for (int d = s->rank - 1; d >= 0; d--) {
    if (s->d[d] != 1 && strcmp(idx[d], "0") != 0) {
      terms[nt] = idx[d];
      strides[nt++] = stride;
    }
    stride *= s->d[d];
  }
  if (nt == 0)
    return "0";
  for (int k = nt - 1; k >= 0; k--) {
    if (k != nt - 1)
      sb_puts(&b, " + ");
    if (strides[k] == 1)
      sb_puts(&b, terms[k]);
    else
      sb_printf(&b, "%s * %lld", terms[k], (long long)strides[k]);
  }
  char *r = em_cat(e, b.s, (const char *)NULL);
  sb_free(&b);
  if (e->loop_off && strcmp(r, e->loop_off) == 0)
    return "ix";
  return r;
}

/* For the JIT, the offset every same-shaped access of a loop body uses is
 * a running counter `ix` (the loops walk the shape in row-major order):
 * TinyCC would evaluate each `i0 * 16 + i1` anew. Called before loop_open;
 * returns whether it opened the block that holds ix. */
static int ix_begin(E *e, const Shape *s) {
  if (!e->t->loops_dowhile || e->flat || e->par >= 0)
    return 0;
  char *names[MAX_RANK];
  for (int d = 0; d < s->rank; d++)
    names[d] = s->d[d] == 1 ? "0" : em_fmt(e, "i%d", d);
  char *full = em_offset(e, s, names);
  if (!strchr(full, '+'))
    return 0;
  em_line(e, "{");
  e->ind++;
  em_line(e, "long ix = 0;");
  e->loop_off = full;
  return 1;
}

/* after the loop body (inside the loops), and after the loops */
static void ix_step(E *e, int on) {
  if (on)
    em_line(e, "ix++;");
  e->loop_off = NULL;
}
static void ix_end(E *e, int on) {
  if (on) {
    e->ind--;
    em_line(e, "}");
  }
}

/* Index names for operand x (rank r) of a node of rank R: broadcasting
 * aligns trailing axes; an axis of size 1 reads index 0. */
char **em_bcast_idx(E *e, const Node *x, int R_, char **idx) {
  int same = e->flat || x->shape.rank == R_;
  for (int j = 0; j < x->shape.rank && !e->flat; j++)
    same &= x->shape.d[j] != 1;
  if (same) /* the node's own indices (read-only, as every caller uses them) */
    return idx;
  char **ci = arena_alloc(&e->c->tmp, sizeof(char *) * MAX_RANK);
  for (int j = 0; j < x->shape.rank; j++)
    ci[j] = x->shape.d[j] == 1 ? "0" : idx[j + R_ - x->shape.rank];
  return ci;
}

/* ---- expressions ------------------------------------------------------- */


static const char *val_at(E *e, int id, char **idx, int top);
const char *em_val(E *e, int id, char **idx) { return val_at(e, id, idx, 0); }

const char *em_load(E *e, int id, char **idx) {
  Node *n = ND(e, id);
  return em_cat(e, em_bufname(e, id), "[", em_offset(e, &n->shape, idx), "]",
                (const char *)NULL);
}

/* exp: f32 uses the branch-free NAME_expf of kernels.c, which compilers
 * vectorize (the JIT calls its ahead-of-time copy). */
static const char *exp_fn(E *e) {
  if (e->c->opt.api.f64)
    return "exp";
  if (!e->t->own_math)
    return "expf";
  e->uses_exp = 1;
  return e->t->aot_kernels ? "agc_expf" : em_fmt(e, "%s_expf", e->c->name);
}

/* tanh: f32 uses the rational form of kernels.c, which gcc and clang
 * vectorize (the JIT calls its ahead-of-time copy: tcc's scalar code is
 * slow). */
static const char *tanh_fn(E *e) {
  if (e->c->opt.api.f64)
    return "tanh";
  if (!e->t->own_math)
    return "tanhf";
  e->uses_tanh = 1;
  return e->t->aot_kernels ? "agc_tanhf" : em_fmt(e, "%s_tanhf", e->c->name);
}

/* where(c, a, b): NAME_where (the target's where_blend) or the macro
 * AGC_WHERE, a C conditional. */
static const char *where_fn(E *e) {
  e->uses_where = 1;
  return e->t->where_blend ? em_fmt(e, "%s_where", e->c->name) : "AGC_WHERE";
}

/* Small constant powers, as products (x ** 2 is x * x); NULL otherwise. */
static const char *pow_c(E *e, const char *a, int bid) {
  double k;
  if (!ir_is_const(e->c, bid, &k))
    return NULL;
  if (k == 2)
    return em_fmt(e, "%s * %s", a, a);
  if (k == 3)
    return em_fmt(e, "%s * %s * %s", a, a, a);
  if (k == 0.5)
    return em_fmt(e, "sqrt%s(%s)", e->mf, a);
  if (k == -1)
    return em_fmt(e, "%s / %s", em_lit(e, 1), a);
  return NULL;
}

/* The C of an element-wise op: its template from ops.def, with operands
 * ops[0..2] and the target's names filled in. */
static const char *ew_c(E *e, Op op, const char *const *opnd) {
  const char *t = op_ctext(op);
  if (!t)
    return NULL;
  StrBuf b = {0};
  for (; *t; t++) {
    if (*t != '$') {
      sb_putc(&b, *t);
      continue;
    }
    switch (*++t) {
    case 'a': case 'b': case 'c': sb_puts(&b, opnd[*t - 'a']); break;
    case 'T': sb_puts(&b, e->real); break;
    case 'f': sb_puts(&b, e->mf); break;
    case '0': sb_puts(&b, em_lit(e, 0)); break;
    case '1': sb_puts(&b, em_lit(e, 1)); break;
    case 'E': sb_puts(&b, exp_fn(e)); break;
    case 'H': sb_puts(&b, tanh_fn(e)); break;
    case 'W': sb_puts(&b, where_fn(e)); break;
    default: error_plain(e->c, "internal: bad template of op %s", op_name(op));
    }
  }
  char *r = arena_strndup(&e->c->tmp, b.s, b.len);
  sb_free(&b);
  return r;
}

/* Does the op's C name each operand once? (Then the JIT may nest it into
 * its consumer's expression without computing anything twice.) */
static int reads_operands_once(const Node *n, Ctx *c) {
  double k;
  if (n->op == OP_POW && ir_is_const(c, plan_resolve(c, n->in[1]), &k) &&
      (k == 2 || k == 3 || k == 0.5 || k == -1))
    return 0;
  const char *t = op_ctext(n->op);
  int seen[3] = {0, 0, 0};
  for (; t && *t; t++)
    if (t[0] == '$' && t[1] >= 'a' && t[1] <= 'c' && ++seen[t[1] - 'a'] > 1)
      return 0;
  return 1;
}

/* The value of node id at index idx, as a C expression; fused nodes are
 * computed into local variables first. */
static const char *val_at(E *e, int id, char **idx, int top) {
  id = R(e, id);
  Node *n = ND(e, id);
  if (n->op == OP_CONST)
    return em_lit(e, n->val);
  if (!top && (e->p->local[id] || e->inloop[id]))
    return em_name(e, "l", id);
  if (!top && !e->p->inl[id])
    return em_load(e, id, idx);
  int R_ = n->shape.rank;
  const char *x = NULL;
  switch (n->op) {
  case OP_BCAST:
    return em_val(e, n->in[0], em_bcast_idx(e, ND(e, R(e, n->in[0])), R_, idx));
  case OP_TRANSPOSE: {
    char **ci = arena_alloc(&e->c->tmp, sizeof(char *) * MAX_RANK);
    for (int d = 0; d < R_; d++)
      ci[n->perm[d]] = idx[d];
    return em_val(e, n->in[0], ci);
  }
  case OP_SLICE: {
    char **ci = arena_alloc(&e->c->tmp, sizeof(char *) * MAX_RANK);
    for (int d = 0; d < R_; d++)
      ci[d] = n->perm[d] ? em_fmt(e, "(%s + %d)", idx[d], n->perm[d]) : idx[d];
    return em_val(e, n->in[0], ci);
  }
  default:
    break;
  }
  const char *opnd[3] = {"", "", ""};
  for (int k = 0; k < n->nin && k < 3; k++)
    opnd[k] = em_val(e, n->in[k], em_bcast_idx(e, ND(e, R(e, n->in[k])), R_, idx));
  if (n->op == OP_POW)
    x = pow_c(e, opnd[0], R(e, n->in[1]));
  if (!x)
    x = ew_c(e, n->op, opnd);
  if (!x)
    error_plain(e->c, "internal: no C for op %s", op_name(n->op));
  /* For the JIT, an operation that names each operand once is nested into
   * its consumer's expression: TinyCC keeps an expression in registers but
   * spills every local. (Each fused node has one use, so nothing is
   * computed twice; the .c output keeps one named local per node.) */
  if (e->t->nest_exprs && strlen(x) < 200 && reads_operands_once(n, e->c))
    return em_cat(e, "(", x, ")", (const char *)NULL);
  const char *v = em_name(e, "v", e->nvals++);
  em_line(e, "%s", em_cat(e, "const ", e->real, " ", v, " = ", x, ";",
                          (const char *)NULL));
  return v;
}

/* ---- loops --------------------------------------------------------------- */

/* The JIT gets `do { } while (++i < n)` loops (dimensions are at least 2
 * here): TinyCC lays a `for` out with three jumps per iteration. */
/* Opens the loops of dimensions from..to-1 of s, naming their indices in
 * idx (the others are left as they are). */
static void loop_open_dims(E *e, const Shape *s, const char *prefix,
                           char **idx, int from, int to) {
  for (int d = from; d < to; d++) {
    if (s->d[d] == 1) {
      idx[d] = "0";
      continue;
    }
    idx[d] = em_fmt(e, "%s%d", prefix, d);
    const int part = d == e->par && prefix[0] == 'i'; /* from lo to hi */
    const char *lo = part ? "lo" : "0";
    const char *hi = part ? "hi" : em_fmt(e, "%lld", (long long)s->d[d]);
    if (e->t->loops_dowhile) {
      if (e->nclosers == 64)
        error_plain(e->c, "internal: loops nested too deeply");
      em_line(e, "{ long %s = %s; do {", idx[d], lo);
      e->closers[e->nclosers++] = em_fmt(e, "} while (++%s < %s); }", idx[d], hi);
    } else {
      em_line(e, "for (long %s = %s; %s < %s; %s++) {", idx[d], lo, idx[d], hi,
              idx[d]);
    }
    e->ind++;
  }
}

static void loop_close_dims(E *e, const Shape *s, int from, int to) {
  for (int d = from; d < to; d++)
    if (s->d[d] != 1) {
      e->ind--;
      em_line(e, "%s", e->t->loops_dowhile ? e->closers[--e->nclosers] : "}");
    }
}

char **em_loop_open(E *e, const Shape *s, const char *prefix) {
  char **idx = arena_alloc(&e->c->tmp, sizeof(char *) * MAX_RANK);
  loop_open_dims(e, s, prefix, idx, 0, s->rank);
  return idx;
}

void em_loop_close(E *e, const Shape *s) {
  loop_close_dims(e, s, 0, s->rank);
}

void em_comment(E *e, int id) {
  if (!e->t->readable)
    return;
  Node *n = ND(e, id);
  char sh[160];
  shape_str(&n->shape, sh, sizeof sh);
  /* a pad that pads nothing is a copy (a training step's copy of a param
     that another update reads: passes.c, step_copies) */
  int copy = n->op == OP_PAD && ND(e, R(e, n->in[0]))->numel == n->numel;
  em_line(e, "/* %s %s%s%s, line %d */", copy ? "copy" : op_name(n->op), sh,
       n->name ? " " : "", n->name ? n->name : "", n->loc.line);
}

/* dst[i] = (or +=) value of src, elementwise over src's shape. */
void em_ew_loop(E *e, const char *dst, int src, const char *op, int root,
                int flat) {
  Node *n = ND(e, R(e, src));
  Shape s = n->shape;
  e->flat = s.rank > 1 && flat;
  if (e->flat) {
    Shape f = {1, {n->numel}};
    s = f;
  }
  int ix = ix_begin(e, &s);
  char **idx = em_loop_open(e, &s, "i");
  int block = n->numel == 1;
  if (block) {
    em_line(e, "{");
    e->ind++;
  }
  /* the root is computed here even when stored; an output's store loop
     reads a stored node */
  const char *v = val_at(e, src, idx, strcmp(op, "=") == 0 && root);
  em_line(e, "%s[%s] %s %s;", dst, em_offset(e, &s, idx), op, v);
  ix_step(e, ix);
  if (block) {
    e->ind--;
    em_line(e, "}");
  }
  em_loop_close(e, &s);
  ix_end(e, ix);
  e->flat = 0;
}

/* ---- loops cut into parts (--threads) ---------------------------------- */

/* A statement that lowering cut into parts (LStmt.threads > 1): its loop
 * nest is written as a function of its own, NAME_loopK(arg, lo, hi), in
 * which dimension par runs from lo to hi; the buffers it names come in a
 * struct NAME_loopK_arg, and the statement calls the runner NAME_parts
 * (agc_parts for the JIT; runtime/kernels/parts.c) with them. Between
 * part_begin and part_end the loop nest is written aside. */
void em_part_begin(E *e, const LStmt *st, PartSave *sv) {
  sv->o = e->o;
  sv->ind = e->ind;
  memset(&sv->body, 0, sizeof sv->body);
  e->o = &sv->body;
  e->ind = 1;
  e->par = st->par;
  if (!e->capmark) {
    e->capmark = arena_alloc(&e->c->arena, (size_t)e->c->g.n + 1);
    e->cap = arena_alloc(&e->c->arena, sizeof(int) * ((size_t)e->c->g.n + 1));
  }
  e->ncap = 0;
}

/* The argument buffer b lives in (its index), or -1: the workspace, or an
 * output of its own (out_NAME) when *out. */
static int part_arg(E *e, int b, int *out) {
  Node *n = ND(e, b);
  *out = 0;
  if (n->op == OP_INPUT || n->op == OP_PARAM)
    return n->ext;
  if (e->p->store[b] >= 0) {
    int home = e->c->g.outs[e->p->store[b]].home;
    *out = home < 0;
    return home;
  }
  return -1;
}

/* How a part function gets buffer b, as the function does: a workspace
 * buffer or an optimizer state's slot at its offset from w or st (so that
 * the C compiler sees, as in the function, that they do not overlap, and
 * vectorizes; from pointers in the struct it did not: the bench's
 * element-wise step took 1.5 to 2.1 ms on two threads instead of 0.27),
 * an argument from the struct. Appends to the struct's members (mem), the
 * part function's declarations (decl) and the caller's initializer
 * (init); returns what the declaration reads: PART_W, PART_ST or 0 (the
 * struct). */
enum { PART_W = 1, PART_ST = 2 };
static int part_buf(E *e, int b, int arg, int out, StrBuf *mem, StrBuf *decl,
                    StrBuf *init) {
  Ctx *c = e->c;
  const char *name = em_bufname(e, b);
  if (arg < 0 && !out) {
    const char *T = ctype(e, ND(e, b));
    sb_printf(decl, "  %s *const %s = (%s *)(void *)(w + %lld);\n", T, name, T,
              (long long)e->p->off[b]);
    return PART_W;
  }
  const char *T = out ? e->real : ctype(e, &c->g.nodes[c->g.args[arg].node]);
  int role = out ? ROLE_PARAM : c->g.args[arg].role;
  if (role == ROLE_STATE) {
    sb_printf(decl, "  %s *const %s = (%s *)(void *)(st + %lld);\n", T, name,
              T, (long long)c->g.args[arg].state_off);
    return PART_ST;
  }
  const char *q = role == ROLE_PARAM ? "" : "const ";
  sb_printf(mem, "  %s%s *%s;\n", q, T, name);
  sb_printf(decl, "  %s%s *const %s = a->%s;\n", q, T, name, name);
  sb_printf(init, ", %s", name);
  return 0;
}

void em_part_abandon(E *e, PartSave *sv) {
  e->par = -1;
  for (int k = 0; k < e->ncap; k++)
    e->capmark[e->cap[k]] = 0;
  e->ncap = 0;
  e->capmark = NULL; /* em_bufname stops collecting */
  sb_free(&sv->body);
  e->o = sv->o;
  e->ind = sv->ind;
}

void em_part_end(E *e, const LStmt *st, PartSave *sv) {
  Ctx *c = e->c;
  e->par = -1;
  char *mark = e->capmark;
  e->capmark = NULL; /* em_bufname stops collecting */
  e->naming = 1;
  const char *fn = em_fmt(e, "%s_loop%d", c->name, ++e->nloops);
  const Shape ls = lower_space(c, st);
  const int64_t unit = st->par_unit, units = (ls.d[st->par] + unit - 1) / unit;
  StrBuf mem = {0}, decl = {0}, init = {0};
  int bases = 0; /* PART_W, PART_ST */
  /* an argument once, though two nodes live in it (a param and its
     update, both p_NAME) */
  char *argseen = arena_alloc(&c->tmp, (size_t)c->g.nargs + 1);
  for (int k = 0; k < e->ncap; k++) {
    int b = e->cap[k], out;
    mark[b] = 0;
    int arg = part_arg(e, b, &out);
    if (arg >= 0 && argseen[arg])
      continue;
    if (arg >= 0)
      argseen[arg] = 1;
    bases |= part_buf(e, b, arg, out, &mem, &decl, &init);
  }
  if (st->kind == LS_STORE) { /* the output it writes, named as such */
    const char *o = c->g.outs[st->out].name;
    sb_printf(&mem, "  %s *out_%s;\n", e->real, o);
    sb_printf(&decl, "  %s *const out_%s = a->out_%s;\n", e->real, o, o);
    sb_printf(&init, ", out_%s", o);
  }
  for (int k = 0; k < st->nmembers; k++) {
    const LAcc *a = ACC(e, MEM(e, st, k));
    int m = MEM(e, st, k)->node;
    if (a && a->kind == LA_SCRATCH) {
      sb_printf(&decl, "  double *const acc%d = (double *)(void *)(w + %lld);\n",
                m, (long long)a->off);
      bases |= PART_W;
    }
  }
  const int uses_w = bases & PART_W, uses_st = bases & PART_ST;
  e->naming = 0;
  e->parts_w |= uses_w;
  e->parts_st |= uses_st;
  if (st->row) /* the row kernels' scratch rows: each part has its own */
    sb_printf(&decl, "  float rw[%d][%d]; /* rows for agc_row_f32 */\n",
              e->nrows, ROW_CHUNK);
  StrBuf *f = &e->parts;
  const char *units_of =
      unit > 1 ? em_fmt(e, " in units of %lld", (long long)unit) : "";
  sb_printf(f, "/* the loop of t%d (line %d) with dimension %d from lo to hi%s, "
            "a part for %s_parts */\ntypedef struct {\n%s%s%s} %s_arg;\n\n",
            st->node, ND(e, st->node)->loc.line, st->par, units_of, c->name,
            uses_w ? "  char *w;\n" : "", uses_st ? "  char *st;\n" : "",
            mem.s ? mem.s : "", fn);
  sb_printf(f, "static void %s(const void *arg, long lo, long hi, int k)\n{\n"
            "  const %s_arg *a = (const %s_arg *)arg;\n%s%s%s  (void)k;\n%s}\n\n",
            fn, fn, fn, uses_w ? "  char *const w = a->w;\n" : "",
            uses_st ? "  char *const st = a->st;\n" : "", decl.s ? decl.s : "",
            sv->body.s ? sv->body.s : "");
  sb_free(&sv->body);
  e->o = sv->o;
  e->ind = sv->ind;
  em_line(e, "{");
  e->ind++;
  StrBuf list = {0}; /* ", w, st, in_x, ..." */
  sb_printf(&list, "%s%s%s", uses_w ? ", w" : "", uses_st ? ", st" : "",
            init.s ? init.s : "");
  if (list.len < 3)
    error_plain(c, "internal: the loop of t%d names no buffer", st->node);
  em_line(e, "const %s_arg a = {%s};", fn, list.s + 2);
  sb_free(&list);
  em_line(e, "%s(%s, &a, %lld, %d);", em_parts_name(e), fn, (long long)units,
          st->threads);
  e->ind--;
  em_line(e, "}");
  sb_free(&mem);
  sb_free(&decl);
  sb_free(&init);
}

const char *em_parts_name(E *e) {
  e->uses_parts = 1;
  return e->t->aot_kernels ? "agc_parts" : em_fmt(e, "%s_parts", e->c->name);
}

void em_comments(E *e, const LStmt *s) {
  for (int k = 0; k < s->nmembers; k++)
    em_comment(e, MEM(e, s, k)->node);
}

/* One member of a fused loop at index idx of the loop's space ls: a sum
 * adds into its accumulator; a value goes in a local (later members read
 * it), and in its buffer if it is read outside the loop. */
static void fused_member(E *e, const LMember *mb, const Shape *ls,
                         char **idx) {
  int m = mb->node;
  Node *n = ND(e, m);
  const LAcc *a = ACC(e, mb);
  if (a) {
    const char *v = em_val(e, n->in[0], idx);
    if (a->kind == LA_SCRATCH)
      em_line(e, "acc%d[%s] += %s;", m, idx[ls->rank - 1], v);
    else if (a->kind == LA_LOCAL)
      em_acc_add(e, em_fmt(e, "acc%d", m), v);
    else if (a->held)
      em_line(e, "s%d += %s;", m, v);
    else
      em_line(e, "%s[%s] += %s;", em_bufname(e, m),
              em_offset(e, &n->shape, idx), v);
    return;
  }
  const char *v = val_at(e, m, idx, 1);
  em_line(e, "const %s l%d = %s;", e->real, m, v);
  if (mb->store)
    em_line(e, "%s[%s] = l%d;", em_bufname(e, m), em_offset(e, ls, idx), m);
  e->inloop[m] = 1;
}

/* The sums a fused loop holds in locals (lower_hold): each loaded into
 * s<node> before the inner loops (load) or stored back after them. */
static void held_sums(E *e, const LStmt *st, char **idx, int load) {
  for (int k = 0; k < st->nmembers; k++) {
    const LAcc *a = ACC(e, MEM(e, st, k));
    int m = MEM(e, st, k)->node;
    if (!a || !a->held)
      continue;
    const char *at = em_offset(e, &ND(e, m)->shape, idx);
    if (load)
      em_line(e, "%s s%d = %s[%s];", e->real, m, em_bufname(e, m), at);
    else
      em_line(e, "%s[%s] = s%d;", em_bufname(e, m), at, m);
  }
}

/* A loop that computes several stored nodes (plan.c, loop fusion): the
 * host, then element-wise nodes and sums that read it at the same index. */
static void fused_loop(E *e, const LStmt *st) {
  em_comments(e, st);
  int flat = st->flat && st->iter.rank > 1;
  em_sums_open(e, st);
  Shape ls = lower_space(e->c, st);
  e->flat = flat;
  PartSave sv;
  if (st->threads > 1)
    em_part_begin(e, st, &sv);
  int ix = ix_begin(e, &ls);
  const int split = st->hold; /* lower_hold */
  char **idx = arena_alloc(&e->c->tmp, sizeof(char *) * MAX_RANK);
  loop_open_dims(e, &ls, "i", idx, 0, split);
  if (split) {
    em_line(e, "{");
    e->ind++;
    held_sums(e, st, idx, 1);
  }
  loop_open_dims(e, &ls, "i", idx, split, ls.rank);
  int block = ND(e, st->node)->numel == 1;
  if (block) {
    em_line(e, "{");
    e->ind++;
  }
  /* each member's strings are written out before the next member: they
     go in an arena of their own, emptied after each (a loop of 100,000
     members kept all of them otherwise); the loop's indices stay */
  Ctx *c = e->c;
  arena_free(&c->tmp_loop); /* empty, unless an error ended the last one */
  c->tmp_loop = c->tmp;
  memset(&c->tmp, 0, sizeof c->tmp);
  for (int k = 0; k < st->nmembers; k++) {
    arena_clear(&c->tmp);
    fused_member(e, MEM(e, st, k), &ls, idx);
  }
  arena_free(&c->tmp);
  c->tmp = c->tmp_loop;
  memset(&c->tmp_loop, 0, sizeof c->tmp_loop);
  for (int k = 0; k < st->nmembers; k++)
    e->inloop[MEM(e, st, k)->node] = 0;
  ix_step(e, ix);
  if (block) {
    e->ind--;
    em_line(e, "}");
  }
  loop_close_dims(e, &ls, split, ls.rank);
  if (split) {
    held_sums(e, st, idx, 0);
    e->ind--;
    em_line(e, "}");
  }
  loop_close_dims(e, &ls, 0, split);
  ix_end(e, ix);
  if (st->threads > 1)
    em_part_end(e, st, &sv);
  e->flat = 0;
  em_sums_close(e, st);
}

/* The kernels the code calls: the runtime's ahead-of-time copies declared
 * (JIT), or their text from runtime/kernels/ (a self-contained file). */
static void kernels(E *e, StrBuf *o) {
  Ctx *c = e->c;
  const Target *t = e->t;
  if (e->uses_gemm && t->aot_kernels) {
    sb_printf(o, "void %s(long M, long N, long K, const %s *A, long sai, "
              "long sak, const %s *B, long sbk, long sbj, %s *C, int acc, "
              "%s *pack);\n\n",
              em_gemm_name(e), e->real, e->real, e->real, e->real);
  } else if (e->uses_gemm) {
    emit_gemm(o, em_gemm_name(e), c->opt.api.f64, 1);
    sb_puts(o, "\n");
  }
  /* the runner of parts (parts.c), which the threaded product uses too */
  if ((e->uses_parts || e->uses_gemm_mt) && t->aot_kernels)
    sb_puts(o, "void agc_parts(void (*fn)(const void *, long, long, int), "
               "const void *arg, long n, int T);\n\n");
  else if (e->uses_parts || e->uses_gemm_mt)
    emit_parts(o, em_parts_name(e));
  if (e->uses_gemm_mt && t->aot_kernels) {
    sb_printf(o, "void %s(long M, long N, long K, const %s *A, long sai, "
              "long sak, const %s *B, long sbk, long sbj, %s *C, int acc, "
              "%s *pack, long pack_each, int T);\n\n", em_gemm_mt_name(e),
              e->real, e->real, e->real, e->real);
  } else if (e->uses_gemm_mt) {
    emit_gemm_mt(o, em_gemm_name(e), em_parts_name(e), c->opt.api.f64);
    sb_puts(o, "\n");
  }
  if (e->uses_tanh && t->aot_kernels)
    sb_puts(o, "float agc_tanhf(float x);\n\n");
  else if (e->uses_tanh)
    emit_tanhf(o, em_fmt(e, "%s_tanhf", c->name), 1);
  if (e->uses_where && t->where_blend) {
    const char *u = c->opt.api.f64 ? "uint64_t" : "uint32_t"; /* e->real's bits */
    sb_printf(o, "/* where(c, a, b) without a conditional load: gcc 12.2 at -O3 with\n"
              "   AVX2 sums a masked load wrongly in loop nests */\n"
              "static inline %s %s_where(%s c, %s a, %s b)\n{\n"
              "  union { %s f; %s u; } x, y;\n"
              "  x.f = a;\n  y.f = b;\n"
              "  const %s m = (%s)0 - (%s)(c != 0);\n"
              "  x.u = (x.u & m) | (y.u & ~m);\n  return x.f;\n}\n\n",
              e->real, c->name, e->real, e->real, e->real, e->real, u, u, u, u);
  } else if (e->uses_where) {
    sb_puts(o, "#define AGC_WHERE(c, a, b) ((c) != 0 ? (a) : (b))\n\n");
  }
  if (e->uses_exp && t->aot_kernels)
    sb_puts(o, "float agc_expf(float x);\n\n");
  else if (e->uses_exp)
    emit_expf(o, em_fmt(e, "%s_expf", c->name), 1);
  if (e->uses_row)
    sb_puts(o, "void agc_row_f32(int op, long T, long n, const float *a, "
               "long ars, long sa, const float *b, long brs, long sb, "
               "float *o, long ors);\n"
               "double agc_row_sum_f32(long T, long n, const float *a, "
               "long ars, long sa);\n"
               "void agc_row_accd_f32(long T, long n, const float *a, "
               "long ars, long sa, double *o);\n\n");
  const char *T = e->real, *sfx = c->opt.api.f64 ? "f64" : "f32";
  if (e->uses_im2col && t->aot_kernels)
    sb_printf(o, "void agc_im2col_%s(const %s *x, long C, long H, long W, "
              "long KH, long KW, long st, long pad, long OH, long OW, "
              "%s *col, int back);\n\n", sfx, T, T);
  else if (e->uses_im2col)
    emit_im2col(o, em_fmt(e, "%s_im2col", c->name), c->opt.api.f64);
  if (e->uses_pool && t->aot_kernels)
    sb_printf(o, "void agc_pool_%s(int op, const %s *x, const %s *g, "
              "long NC, long H, long W, long k, long st, long OH, long OW, "
              "%s *d);\n\n", sfx, T, T, T);
  else if (e->uses_pool)
    emit_pool(o, em_fmt(e, "%s_pool", c->name), c->opt.api.f64);
  if (e->uses_mm)
    sb_printf(o, "void agc_matmul_%s(long M, long N, long K, const %s *A, "
              "long sai, long sak, const %s *B, long sbk, long sbj, %s *C);"
              "\n\n", c->opt.api.f64 ? "f64" : "f32", e->real, e->real, e->real);
}

/* The statements of the loop-nest IR (lower.c), checked, in order. */
static void statements(E *e) {
  Ctx *c = e->c;
  const Loops *L = lower_graph(c, e->p, e->t);
  lower_check(c, e->p, L);
  e->L = L;
  for (int k = 0; k < L->ns; k++) {
    const LStmt *s = &L->s[k];
    if (s->kind == LS_STORE && !s->row)
      em_store_code(e, s);
    else if (s->row && !em_row_loop(e, s))
      /* lowering decided row mode (row_ok); the writer must agree */
      error_plain(c, "internal error (please report): the row kernels "
                  "cannot run the loop of t%d", s->node);
    else if (s->row)
      ;
    else if (s->kind == LS_LOOP)
      fused_loop(e, s);
    else
      em_node_code(e, s);
    arena_clear(&c->tmp); /* its strings are written out */
  }
}

/* The function's locals: the workspace and state pointers, arguments it
 * does not read, the status, the row scratch; and the stack the function
 * needs, estimated (c->stack_est). */
static void locals(E *e, StrBuf *o, StrBuf *decls) {
  Ctx *c = e->c;
  const Plan *p = e->p;
  int update = c->opt.mode == MODE_UPDATE;
  int has_w = decls->len || e->parts_w; /* the body or a part uses w */
  if (has_w && update) {
    /* NAME_update has no workspace argument: its few scalars live here */
    int64_t es = c->opt.api.f64 ? 8 : 4;
    sb_printf(o, "  %s work[%lld];\n", e->real,
              (long long)((p->work_bytes + es - 1) / es));
    sb_puts(o, "  char *const w = (char *)work;\n");
    sb_puts(o, decls->s ? decls->s : "");
  } else if (has_w) {
    sb_puts(o, "  char *const w = (char *)work;\n");
    sb_puts(o, decls->s ? decls->s : "");
  } else if (!update) {
    sb_puts(o, "  (void)work;\n");
  }
  /* the optimizer state's slots */
  int uses_state = 0;
  for (int i = 0; i < c->g.nargs; i++)
    if (c->g.args[i].role == ROLE_STATE && e->arg_used[i]) {
      if (!uses_state)
        sb_puts(o, "  char *const st = (char *)state;\n");
      uses_state = 1;
      sb_printf(o, "  %s *const %s = (%s *)(void *)(st + %lld);\n", e->real,
                em_argname(c, i), e->real, (long long)c->g.args[i].state_off);
    }
  if (!uses_state && e->parts_st) /* only part functions read the slots */
    sb_puts(o, "  char *const st = (char *)state;\n");
  else if (!uses_state && c->opt.mode != MODE_GRAD)
    sb_puts(o, "  (void)state;\n");
  for (int i = 0; i < c->g.nargs; i++)
    if (!e->arg_used[i] && c->g.args[i].role != ROLE_STATE &&
        c->g.args[i].role != ROLE_NONE)
      sb_printf(o, "  (void)%s; /* not needed by any output */\n",
                em_argname(c, i));
  if (e->uses_status)
    sb_puts(o, "  int status = 0;\n");
  if (e->maxrows)
    sb_printf(o, "  float rw[%d][%d]; /* rows for agc_row_f32 */\n",
              e->maxrows, ROW_CHUNK);
  /* the stack, estimated from above: saved registers and a 4-byte slot for
     every buffer pointer the body may spill (measured with gcc
     -fstack-usage at -Os on a Cortex-M4F: 104 bytes for
     examples/mlp_adam.graph, 144 for examples/firmware/digits.graph;
     this gives 212 and 256), the row scratch, NAME_update's scalars */
  int npointers = 0;
  for (size_t k = 0; k < decls->len; k++)
    npointers += decls->s[k] == '\n';
  for (int i = 0; i < c->g.nargs; i++)
    npointers += c->g.args[i].role != ROLE_NONE;
  c->stack_est = 96 + 4 * (int64_t)npointers +
                 (int64_t)(e->maxrows > e->part_maxrows ? e->maxrows
                                                          : e->part_maxrows) *
                     ROW_CHUNK * 4 +
                 /* the max-pooling kernel's 16 windows: maxima, indices
                    (a long each, 8 bytes at most), NaN flags, and its
                    registers */
                 (e->uses_pool ? 16 * ((c->opt.api.f64 ? 8 : 4) + 8 + 4) + 64
                               : 0) +
                 (update && decls->len ? (p->work_bytes + 7) / 8 * 8 : 0);
}

/* One function of the file: its kernels, the function, its generic entry
 * point and tables (body); the file's comment, includes and macros
 * (prologue). */
enum { PART_PROLOGUE = 1, PART_BODY = 2 };

static void emit_part(Ctx *c, const Plan *p, const Target *t, StrBuf *o,
                      int parts, const char *extra_macros) {
  E e;
  memset(&e, 0, sizeof e);
  e.c = c;
  e.p = p;
  e.t = t;
  e.real = c->opt.api.f64 ? "double" : "float";
  e.mf = c->opt.api.f64 ? "" : "f";
  e.par = -1;
  e.arg_used = arena_alloc(&c->arena, sizeof(int) * (size_t)(c->g.nargs + 1));
  e.used = arena_alloc(&c->arena, (size_t)c->g.n + 1);
  e.inloop = arena_alloc(&c->arena, (size_t)c->g.n + 1);
  if (t->row_kernels) /* the JIT's row mode (emit_row.c) */
    e.rowof = arena_alloc(&c->arena, sizeof(char *) * ((size_t)c->g.n + 1));
  /* the body is written in place at the end of o; what precedes it in the
     file (which depends on what the body uses) is inserted before it after
     (one copy of the text, not two: it is most of a large graph's C) */
  size_t body_at = o->len;
  e.o = o;
  e.ind = 1;
  statements(&e);
  /* workspace pointers: those the body names (a buffer that only part
     functions name is theirs alone) */
  StrBuf decls = {0};
  for (int i = 0; i < c->g.n; i++)
    if (p->off[i] >= 0 && e.used[i]) {
      Node *n = &c->g.nodes[i];
      sb_printf(&decls, "  %s *const t%d = (%s *)(void *)(w + %lld);\n",
                ctype(&e, n), i, ctype(&e, n), (long long)p->off[i]);
    }

  StrBuf head = {0};
  StrBuf *const body = o;
  o = &head;
  if (parts & PART_PROLOGUE) {
    em_header_comment(c, o);
    const int threaded = c->opt.api.threads > 1 && !t->aot_kernels; /* parts.c */
    if (threaded)
      sb_puts(o, "#if defined(__linux__) && !defined(_GNU_SOURCE)\n"
                 "#define _GNU_SOURCE /* sched_getcpu, "
                 "pthread_attr_setaffinity_np */\n#endif\n");
    em_prototypes(&e, o);
    sb_puts(o, "#include <stddef.h>\n#include <stdint.h>\n");
    if (threaded)
      sb_puts(o, "#include <pthread.h>\n#include <sched.h>\n"
                 "#include <stdlib.h>\n");
    sb_puts(o, "\n");
    em_macros(c, o, p);
    if (extra_macros)
      sb_puts(o, extra_macros);
    sb_puts(o, "\n");
  }
  if (!(parts & PART_BODY)) {
    body->len = body_at;
    body->s[body_at] = 0;
    sb_insert(body, body_at, head.s ? head.s : "", head.len);
    sb_free(&head);
    sb_free(&decls);
    sb_free(&e.parts); /* the body's part functions: written with it */
    return;
  }
  kernels(&e, o);
  if (e.parts.len) /* the part functions (em_part_end) */
    sb_puts(o, e.parts.s);
  sb_free(&e.parts);
  em_protos(c, o, e.real);
  sb_puts(o, "\n");
  em_signature(c, o, e.real);
  sb_puts(o, "\n{\n");
  if (e.uses_gemm)
    sb_printf(&decls, "  %s *const pack = (%s *)(void *)(w + %lld); /* matmul "
              "packing */\n", e.real, e.real, (long long)p->pack_off);
  locals(&e, o, &decls);
  sb_insert(body, body_at, head.s ? head.s : "", head.len);
  sb_free(&head);
  o = body;
  sb_printf(o, "  return %s;\n}\n\n", e.uses_status ? "status" : "0");
  sb_free(&decls);
  if (c->opt.mode != MODE_UPDATE) {
    em_generic(c, o, e.real);
    em_tables(c, o, 0);
  }
}

void emit_c(Ctx *c, const Plan *p, const Target *t, StrBuf *o) {
  if (!em_training(c)) {
    emit_part(c, p, t, o, PART_PROLOGUE | PART_BODY, NULL);
    return;
  }
  /* a training graph: one file with NAME (the step), NAME_grad and
     NAME_update; the step's comment and macros lead */
  const char *name = c->name;
  char *gname = arena_alloc(&c->arena, strlen(name) + 8);
  sprintf(gname, "%s_grad", name);
  Ctx *st, *up;
  em_siblings(c, &st, &up);
  if (setjmp(st->jmp))
    em_siblings_failed(c, st, up);
  if (setjmp(up->jmp))
    em_siblings_failed(c, up, st);
  StrBuf extra = {0};
  em_training_macros(c, p, st, &extra);
  char *macros = arena_strndup(&c->arena, extra.s, extra.len);
  sb_free(&extra);
  c->state_bytes = st->state_bytes;
  c->step_work = ctx_plan(st)->work_bytes;
  emit_part(st, ctx_plan(st), t, o, PART_PROLOGUE, macros);
  c->name = gname;
  emit_part(c, p, t, o, PART_BODY, NULL);
  c->name = name;
  emit_part(up, ctx_plan(up), t, o, PART_BODY, NULL);
  emit_part(st, ctx_plan(st), t, o, PART_BODY, NULL);
  agc_free(st);
  agc_free(up);
}

static void mem_line(StrBuf *o, const char *what, int64_t bytes,
                     const char *note) {
  sb_printf(o, "%-14s %10lld%s%s\n", what, (long long)bytes, note ? "  " : "",
            note ? note : "");
}

/* --emit mem: what one call needs, in bytes, for target t: the caller's
 * buffers (params, inputs, outputs), the optimizer state, the workspace
 * beside its lower bound, and the generated function's stack (estimated;
 * docs/firmware.md measures it). A training graph: its step. */
void emit_mem(Ctx *c, const Target *t, StrBuf *o) {
  Ctx *st = NULL, *up = NULL;
  if (em_training(c)) {
    em_siblings(c, &st, &up);
    if (setjmp(st->jmp))
      em_siblings_failed(c, st, up);
  }
  Ctx *f = st ? st : c;
  const Plan *p = ctx_plan(f);
  StrBuf scratch = {0};
  emit_part(f, p, t, &scratch, PART_BODY, NULL); /* for the stack */
  sb_free(&scratch);
  int64_t es = c->opt.api.f64 ? 8 : 4, par = 0, in = 0, out = 0;
  for (int i = 0; i < f->g.nargs; i++) {
    const Arg *a = &f->g.args[i];
    const Node *n = &f->g.nodes[a->node];
    int64_t b = n->numel * (n->dt == DT_I32 ? 4 : es);
    if (a->role == ROLE_STATE)
      continue;
    if (a->is_param)
      par += b;
    else
      in += b;
  }
  for (int i = 0; i < f->g.nouts; i++)
    if (f->g.outs[i].home < 0)
      out += f->g.nodes[plan_resolve(f, f->g.outs[i].node)].numel * es;
  sb_printf(o, "# memory of %s%s (target %s, %s), bytes\n", f->name,
            st ? ", one training step" : "", t->name,
            c->opt.api.f64 ? "f64" : "f32");
  mem_line(o, "params", par, st ? "(updated in place)" : NULL);
  mem_line(o, "inputs", in, NULL);
  int grads = 0;
  for (int i = 0; i < f->g.nouts; i++)
    grads += f->g.outs[i].is_grad;
  mem_line(o, "outputs", out, st ? "(no gradient buffers)"
                                 : grads ? "(with the gradients)" : NULL);
  mem_line(o, "state", f->state_bytes, st ? "(optimizer)" : NULL);
  char note[160];
  snprintf(note, sizeof note, "(lower bound %lld: %.2fx)",
           (long long)p->live_bytes,
           p->live_bytes ? (double)p->work_bytes / (double)p->live_bytes : 1.0);
  mem_line(o, "workspace", p->work_bytes, note);
  mem_line(o, "stack", f->stack_est, "(estimate)");
  mem_line(o, "total", par + f->state_bytes + p->work_bytes + f->stack_est,
           "(params + state + workspace + stack)");
  if (st) {
    agc_free(st);
    agc_free(up);
  }
}

