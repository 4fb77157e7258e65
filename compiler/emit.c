/* emit.c — the C generator.
 *
 * One function computes every output and gradient. Each stored node is one
 * loop nest; the element-wise nodes fused into it (plan.c) become local
 * variables of the loop body, so the C reads like the graph. Everything the
 * caller needs to size buffers is a macro; everything a tool needs to call
 * the function without knowing the graph is a const table.
 */
#include <ctype.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "agc.h"

typedef struct {
  Ctx *c;
  const Plan *p;
  StrBuf *o;       /* the function body */
  const Target *t; /* what the code is for (target.c) */
  const char *real; /* "float" or "double" */
  const char *mf;   /* math suffix: "f" or "" */
  int ind;          /* indentation */
  int *arg_used;
  int uses_status;
  int flat;         /* current loop is one flat index over equal shapes */
  int uses_gemm;    /* a matmul calls the kernel */
  int uses_tanh;    /* f32 tanh goes through NAME_tanhf */
  int uses_exp;     /* f32 exp goes through NAME_expf */
  int uses_mm;      /* JIT: a narrow matmul through agc_matmul_T */
  int uses_im2col;  /* conv2d: im2col.c's kernel */
  int uses_pool;    /* pooling: pool.c's kernel */
  int nvals;        /* locals v0, v1, ... named so far */
  const char *loop_off; /* JIT: the loop's own offset, held in `ix` */
  char *inloop;     /* nodes of the fused loop being written: read as lN */
  const char *closers[64]; /* JIT: how each open loop_open loop ends */
  int nclosers;
  /* JIT row mode (row_loop): */
  const char **rowof; /* per node: its row in the loop being written */
  int nrows, maxrows; /* scratch rows used by this loop / by any loop */
  int uses_row;     /* some loop calls the row kernels */
  int row_fail;
} E;


static Node *ND(E *e, int id) { return &e->c->g.nodes[id]; }
static int R(E *e, int id) { return plan_resolve(e->c, id); }

static void line(E *e, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static void line(E *e, const char *fmt, ...) {
  for (int i = 0; i < e->ind; i++)
    sb_puts(e->o, "  ");
  va_list ap;
  va_start(ap, fmt);
  char buf[4096];
  int n = vsnprintf(buf, sizeof buf, fmt, ap);
  va_end(ap);
  if (n >= (int)sizeof buf) { /* long line: format again on the heap */
    char *big = malloc((size_t)n + 1);
    va_start(ap, fmt);
    vsnprintf(big, (size_t)n + 1, fmt, ap);
    va_end(ap);
    sb_puts(e->o, big);
    free(big);
  } else {
    sb_puts(e->o, buf);
  }
  sb_putc(e->o, '\n');
}

static char *fmt(E *e, const char *f, ...) __attribute__((format(printf, 2, 3)));
static char *fmt(E *e, const char *f, ...) {
  va_list ap;
  va_start(ap, f);
  int n = vsnprintf(NULL, 0, f, ap);
  va_end(ap);
  char *s = arena_alloc(&e->c->arena, (size_t)n + 1);
  va_start(ap, f);
  vsnprintf(s, (size_t)n + 1, f, ap);
  va_end(ap);
  return s;
}

/* A float literal that reads back exactly in the target type. */
static char *lit(E *e, double v) {
  char buf[64];
  if (e->c->opt.f64)
    snprintf(buf, sizeof buf, "%.17g", v);
  else
    snprintf(buf, sizeof buf, "%.9g", (double)(float)v);
  if (!strpbrk(buf, ".en"))
    strcat(buf, ".0");
  if (!e->c->opt.f64)
    strcat(buf, "f");
  if (v < 0)
    return fmt(e, "(%s)", buf);
  return fmt(e, "%s", buf);
}

static const char *ctype(E *e, const Node *n) {
  return n->dt == DT_I32 ? "int32_t" : e->real;
}

/* ---- buffers -------------------------------------------------------------- */

static const char *bufname(E *e, int id) {
  int b = e->p->alias[id];
  Node *n = ND(e, b);
  if (n->op == OP_INPUT || n->op == OP_PARAM) {
    e->arg_used[n->ext] = 1;
    return fmt(e, "in_%s", e->c->g.args[n->ext].name);
  }
  if (e->p->store[b] >= 0)
    return fmt(e, "out_%s", e->c->g.outs[e->p->store[b]].name);
  return fmt(e, "t%d", b);
}

/* Row-major offset of idx[] in shape s; size-1 axes read index 0. */
static char *offset(E *e, const Shape *s, char **idx) {
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
  char *r = fmt(e, "%s", b.s);
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
  if (!e->t->loops_dowhile || e->flat)
    return 0;
  char *names[MAX_RANK];
  for (int d = 0; d < s->rank; d++)
    names[d] = s->d[d] == 1 ? "0" : fmt(e, "i%d", d);
  char *full = offset(e, s, names);
  if (!strchr(full, '+'))
    return 0;
  line(e, "{");
  e->ind++;
  line(e, "long ix = 0;");
  e->loop_off = full;
  return 1;
}

/* after the loop body (inside the loops), and after the loops */
static void ix_step(E *e, int on) {
  if (on)
    line(e, "ix++;");
  e->loop_off = NULL;
}
static void ix_end(E *e, int on) {
  if (on) {
    e->ind--;
    line(e, "}");
  }
}

/* Index names for operand x (rank r) of a node of rank R: broadcasting
 * aligns trailing axes; an axis of size 1 reads index 0. */
static char **bcast_idx(E *e, const Node *x, int R_, char **idx) {
  char **ci = arena_alloc(&e->c->arena, sizeof(char *) * MAX_RANK);
  if (e->flat) {
    ci[0] = idx[0];
    return ci;
  }
  for (int j = 0; j < x->shape.rank; j++)
    ci[j] = x->shape.d[j] == 1 ? "0" : idx[j + R_ - x->shape.rank];
  return ci;
}

/* ---- expressions ------------------------------------------------------- */


static const char *val_at(E *e, int id, char **idx, int top);
static const char *val(E *e, int id, char **idx) { return val_at(e, id, idx, 0); }

static const char *load(E *e, int id, char **idx) {
  Node *n = ND(e, id);
  return fmt(e, "%s[%s]", bufname(e, id), offset(e, &n->shape, idx));
}

/* exp: f32 uses the branch-free NAME_expf of kernels.c, which compilers
 * vectorize (the JIT calls its ahead-of-time copy). */
static const char *exp_fn(E *e) {
  if (e->c->opt.f64)
    return "exp";
  e->uses_exp = 1;
  return e->t->aot_kernels ? "agc_expf" : fmt(e, "%s_expf", e->c->name);
}

/* tanh: f32 uses the rational form of kernels.c, which gcc and clang
 * vectorize (the JIT calls its ahead-of-time copy: tcc's scalar code is
 * slow). */
static const char *tanh_fn(E *e) {
  if (e->c->opt.f64)
    return "tanh";
  e->uses_tanh = 1;
  return e->t->aot_kernels ? "agc_tanhf" : fmt(e, "%s_tanhf", e->c->name);
}

/* Small constant powers, as products (x ** 2 is x * x); NULL otherwise. */
static const char *pow_c(E *e, const char *a, int bid) {
  double k;
  if (!ir_is_const(e->c, bid, &k))
    return NULL;
  if (k == 2)
    return fmt(e, "%s * %s", a, a);
  if (k == 3)
    return fmt(e, "%s * %s * %s", a, a, a);
  if (k == 0.5)
    return fmt(e, "sqrt%s(%s)", e->mf, a);
  if (k == -1)
    return fmt(e, "%s / %s", lit(e, 1), a);
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
    case '0': sb_puts(&b, lit(e, 0)); break;
    case '1': sb_puts(&b, lit(e, 1)); break;
    case 'E': sb_puts(&b, exp_fn(e)); break;
    case 'H': sb_puts(&b, tanh_fn(e)); break;
    default: error_plain(e->c, "internal: bad template of op %s", op_name(op));
    }
  }
  char *r = arena_strndup(&e->c->arena, b.s, b.len);
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
    return lit(e, n->val);
  if (!top && (e->p->local[id] || e->inloop[id]))
    return fmt(e, "l%d", id);
  if (!top && !e->p->inl[id])
    return load(e, id, idx);
  int R_ = n->shape.rank;
  const char *x = NULL;
  switch (n->op) {
  case OP_BCAST:
    return val(e, n->in[0], bcast_idx(e, ND(e, R(e, n->in[0])), R_, idx));
  case OP_TRANSPOSE: {
    char **ci = arena_alloc(&e->c->arena, sizeof(char *) * MAX_RANK);
    for (int d = 0; d < R_; d++)
      ci[n->perm[d]] = idx[d];
    return val(e, n->in[0], ci);
  }
  case OP_SLICE: {
    char **ci = arena_alloc(&e->c->arena, sizeof(char *) * MAX_RANK);
    for (int d = 0; d < R_; d++)
      ci[d] = n->perm[d] ? fmt(e, "(%s + %d)", idx[d], n->perm[d]) : idx[d];
    return val(e, n->in[0], ci);
  }
  default:
    break;
  }
  const char *opnd[3] = {"", "", ""};
  for (int k = 0; k < n->nin && k < 3; k++)
    opnd[k] = val(e, n->in[k], bcast_idx(e, ND(e, R(e, n->in[k])), R_, idx));
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
    return fmt(e, "(%s)", x);
  const char *v = fmt(e, "v%d", e->nvals++);
  line(e, "const %s %s = %s;", e->real, v, x);
  return v;
}

/* ---- loops --------------------------------------------------------------- */

/* The JIT gets `do { } while (++i < n)` loops (dimensions are at least 2
 * here): TinyCC lays a `for` out with three jumps per iteration. */
static char **loop_open(E *e, const Shape *s, const char *prefix) {
  char **idx = arena_alloc(&e->c->arena, sizeof(char *) * MAX_RANK);
  for (int d = 0; d < s->rank; d++) {
    if (s->d[d] == 1) {
      idx[d] = "0";
      continue;
    }
    idx[d] = fmt(e, "%s%d", prefix, d);
    if (e->t->loops_dowhile) {
      if (e->nclosers == 64)
        error_plain(e->c, "internal: loops nested too deeply");
      line(e, "{ long %s = 0; do {", idx[d]);
      e->closers[e->nclosers++] =
          fmt(e, "} while (++%s < %lld); }", idx[d], (long long)s->d[d]);
    } else {
      line(e, "for (long %s = 0; %s < %lld; %s++) {", idx[d], idx[d],
           (long long)s->d[d], idx[d]);
    }
    e->ind++;
  }
  return idx;
}

static void loop_close(E *e, const Shape *s) {
  for (int d = 0; d < s->rank; d++)
    if (s->d[d] != 1) {
      e->ind--;
      line(e, "%s", e->t->loops_dowhile ? e->closers[--e->nclosers] : "}");
    }
}

/* Can node id's fused tree be run as one flat loop over its elements?
 * Yes when every node in it, and every buffer it reads, has its shape. */
static int flat_ok(E *e, int id, const Shape *s, int top) {
  id = R(e, id);
  Node *n = ND(e, id);
  if (n->op == OP_CONST)
    return 1;
  if (n->shape.rank != s->rank ||
      memcmp(n->shape.d, s->d, sizeof(int64_t) * (size_t)s->rank))
    return 0;
  if (!top && !e->p->inl[id])
    return 1;
  if (n->op == OP_BCAST || n->op == OP_TRANSPOSE || n->op == OP_SLICE)
    return 0;
  for (int k = 0; k < n->nin; k++)
    if (!flat_ok(e, n->in[k], s, 0))
      return 0;
  return 1;
}

static void comment(E *e, int id) {
  Node *n = ND(e, id);
  char sh[160];
  shape_str(&n->shape, sh, sizeof sh);
  line(e, "/* %s %s%s%s, line %d */", op_name(n->op), sh,
       n->name ? " " : "", n->name ? n->name : "", n->loc.line);
}

/* dst[i] = (or +=) value of src, elementwise over src's shape. */
static void ew_loop(E *e, const char *dst, int src, const char *op,
                    int root) {
  Node *n = ND(e, R(e, src));
  Shape s = n->shape;
  e->flat = s.rank > 1 && flat_ok(e, src, &s, 1);
  if (e->flat) {
    Shape f = {1, {n->numel}};
    s = f;
  }
  int ix = ix_begin(e, &s);
  char **idx = loop_open(e, &s, "i");
  int block = n->numel == 1;
  if (block) {
    line(e, "{");
    e->ind++;
  }
  /* the root is computed here even when stored; an output's store loop
     reads a stored node */
  const char *v = val_at(e, src, idx, strcmp(op, "=") == 0 && root);
  line(e, "%s[%s] %s %s;", dst, offset(e, &s, idx), op, v);
  ix_step(e, ix);
  if (block) {
    e->ind--;
    line(e, "}");
  }
  loop_close(e, &s);
  ix_end(e, ix);
  e->flat = 0;
}

static void reduce_loop(E *e, int id) {
  Node *n = ND(e, id);
  int a = R(e, n->in[0]);
  Node *x = ND(e, a);
  const char *dst = bufname(e, id);
  Shape in = x->shape;
  int minmax = n->op == OP_MAX || n->op == OP_MIN;
  /* a whole-tensor sum or product runs in a double accumulator */
  int acc = !minmax && n->numel == 1;
  line(e, "{");
  e->ind++;
  if (minmax) {
    /* start from the first element of each group: no infinities needed */
    Shape first = in;
    for (int d = 0; d < in.rank; d++)
      if (n->mask & (1u << d))
        first.d[d] = 1;
    char **idx = loop_open(e, &first, "i");
    line(e, "{");
    e->ind++;
    const char *v = val(e, a, idx);
    line(e, "%s[%s] = %s;", dst, offset(e, &n->shape, idx), v);
    e->ind--;
    line(e, "}");
    loop_close(e, &first);
  } else if (acc) {
    line(e, "%s acc = %s;", e->t->acc_type, n->op == OP_PROD ? "1.0" : "0.0");
  } else {
    Shape o = n->shape;
    char **oi = loop_open(e, &o, "j");
    line(e, "%s[%s] = %s;", dst, offset(e, &o, oi),
         lit(e, n->op == OP_PROD ? 1 : 0));
    loop_close(e, &o);
  }
  char **idx = loop_open(e, &in, "i");
  line(e, "{");
  e->ind++;
  const char *v = val(e, a, idx);
  const char *slot =
      acc ? "acc" : fmt(e, "%s[%s]", dst, offset(e, &n->shape, idx));
  switch (n->op) {
  case OP_SUM: line(e, "%s += %s;", slot, v); break;
  case OP_PROD: line(e, "%s *= %s;", slot, v); break;
  case OP_MAX: line(e, "if (%s > %s) %s = %s;", v, slot, slot, v); break;
  case OP_MIN: line(e, "if (%s < %s) %s = %s;", v, slot, slot, v); break;
  default: break;
  }
  e->ind--;
  line(e, "}");
  loop_close(e, &in);
  if (acc)
    line(e, "%s[0] = (%s)acc;", dst, e->real);
  e->ind--;
  line(e, "}");
}

/* A fused loop's block: its sums start before the loop (a double
 * accumulator, a row of double partial sums, or zeros) and whole-tensor
 * sums are stored after it. */
static void sums_open(E *e, int h) {
  const Plan *p = e->p;
  line(e, "{");
  e->ind++;
  for (int m = p->fnext[h]; m >= 0; m = p->fnext[m]) {
    Node *n = ND(e, m);
    int64_t row = plan_acc_row(e->c, p, m);
    if (n->op != OP_SUM)
      continue;
    if (row) {
      line(e, "double *const acc%d = (double *)(void *)(w + %lld); "
           "/* partial sums */", m, (long long)p->acc_off[m]);
      line(e, "for (long j = 0; j < %lld; j++) acc%d[j] = 0.0;",
           (long long)row, m);
    } else if (n->numel == 1) {
      line(e, "%s acc%d = 0;", e->t->acc_type, m);
    } else {
      Shape o = n->shape;
      char **oi = loop_open(e, &o, "j");
      line(e, "%s[%s] = %s;", bufname(e, m), offset(e, &o, oi), lit(e, 0));
      loop_close(e, &o);
    }
  }
}

static void sums_close(E *e, int h) {
  const Plan *p = e->p;
  for (int m = p->fnext[h]; m >= 0; m = p->fnext[m]) {
    int64_t row = plan_acc_row(e->c, p, m);
    if (row) {
      line(e, "{");
      e->ind++;
      line(e, "%s sum = 0;", e->t->acc_type);
      line(e, "for (long j = 0; j < %lld; j++) sum += acc%d[j];",
           (long long)row, m);
      line(e, "%s[0] = (%s)sum;", bufname(e, m), e->real);
      e->ind--;
      line(e, "}");
    } else if (ND(e, m)->op == OP_SUM && ND(e, m)->numel == 1) {
      line(e, "%s[0] = (%s)acc%d;", bufname(e, m), e->real, m);
    }
  }
  e->ind--;
  line(e, "}");
}

/* Comments the nodes of host h's loop; may the loop be one flat index over
 * shape s (every node has it, no partial sums)? */
static int group_flat(E *e, int h, const Shape *s) {
  const Plan *p = e->p;
  int flat = 1;
  for (int m = h; m >= 0; m = p->fnext[m]) {
    Node *n = ND(e, m);
    comment(e, m);
    if (n->op == OP_SUM)
      flat = flat && n->numel == 1 && !plan_acc_row(e->c, p, m) &&
             flat_ok(e, n->in[0], s, 0);
    else
      flat = flat && flat_ok(e, m, s, 1);
  }
  return flat;
}

/* A loop that computes several stored nodes (plan.c, loop fusion): the
 * host, then element-wise nodes and sums that read it at the same index. */
static void fused_loop(E *e, int h) {
  const Plan *p = e->p;
  Shape s = ND(e, h)->shape;
  int flat = group_flat(e, h, &s) && s.rank > 1;
  sums_open(e, h);
  Shape ls = s;
  if (flat) {
    Shape f = {1, {ND(e, h)->numel}};
    ls = f;
  }
  e->flat = flat;
  int ix = ix_begin(e, &ls);
  char **idx = loop_open(e, &ls, "i");
  int block = ND(e, h)->numel == 1;
  if (block) {
    line(e, "{");
    e->ind++;
  }
  for (int m = h; m >= 0; m = p->fnext[m]) {
    Node *n = ND(e, m);
    if (n->op == OP_SUM) {
      const char *v = val(e, n->in[0], idx);
      if (plan_acc_row(e->c, p, m))
        line(e, "acc%d[%s] += %s;", m, idx[ls.rank - 1], v);
      else if (n->numel == 1)
        line(e, "acc%d += %s;", m, v);
      else
        line(e, "%s[%s] += %s;", bufname(e, m), offset(e, &n->shape, idx), v);
    } else {
      /* a local, stored if read outside the loop; later nodes of the loop
         read the local (at the same index, by construction) */
      const char *v = val_at(e, m, idx, 1);
      line(e, "const %s l%d = %s;", e->real, m, v);
      if (!p->local[m])
        line(e, "%s[%s] = l%d;", bufname(e, m), offset(e, &ls, idx), m);
      e->inloop[m] = 1;
    }
  }
  for (int m = h; m >= 0; m = p->fnext[m])
    e->inloop[m] = 0;
  ix_step(e, ix);
  if (block) {
    e->ind--;
    line(e, "}");
  }
  loop_close(e, &ls);
  ix_end(e, ix);
  e->flat = 0;
  sums_close(e, h);
}

/* ---- JIT row mode ---------------------------------------------------------
 * TinyCC compiles an element-wise loop body into scalar code that keeps
 * every value on the stack. For f32 the JIT instead runs a fused loop as
 * calls of the ahead-of-time, vectorized row kernels (kernels.c,
 * agc_row_f32): one call per operation per tile of at most ROW_CHUNK
 * elements, a chunk of one row of the last axis longer than 1, or several
 * whole short rows. Loops using an operation without a row kernel, or
 * reading an operand other than along the row axis, keep the scalar form.
 */
#define ROW_CHUNK 256
#define ROW_SCRATCH 32 /* rows of ROW_CHUNK floats on the stack, at most */

/* A value in row mode: T rows ("rtn") of n ("rn") elements; element
 * (t, j) is at ptr[t * rs + j * cs] (cs is 1 or 0). */
typedef struct {
  const char *ptr, *rs;
  int cs;
} RowV;

static int row_op(E *e, const Node *n) {
  double k;
  if (n->op == OP_POW) /* x ** 2 is x * x */
    return ir_is_const(e->c, R(e, n->in[1]), &k) && k == 2 ? ROW_MUL : -1;
  return op_row(n->op);
}

static const char *row_scratch(E *e) {
  if (e->nrows == ROW_SCRATCH) {
    e->row_fail = 1;
    return "rw[0]";
  }
  if (e->nrows + 1 > e->maxrows)
    e->maxrows = e->nrows + 1;
  return fmt(e, "rw[%d]", e->nrows++);
}

static int64_t stride_of(const Shape *s, int ax) {
  int64_t st = 1;
  for (int d = ax + 1; d < s->rank; d++)
    st *= s->d[d];
  return st;
}

static RowV row_val(E *e, int id, char **idx, const char *dst) {
  id = R(e, id);
  Node *n = ND(e, id);
  RowV r = {"0", "0", 0};
  if (e->row_fail)
    return r;
  if (n->op == OP_CONST) {
    const char *k = fmt(e, "k%d", e->nvals++);
    line(e, "const float %s = %s;", k, lit(e, n->val));
    r.ptr = fmt(e, "&%s", k);
  } else if (!dst && e->rowof[id]) {
    r.ptr = e->rowof[id], r.rs = "rn", r.cs = 1;
  } else if (!dst && !e->p->inl[id]) {
    /* a stored value: the row index rc must run along an axis of stride
       1 in its layout (or not at all: one value per row); the tile index
       rt may run along any axis */
    int axc = -1, axt = -1;
    for (int d = 0; d < n->shape.rank && !e->flat; d++)
      if (n->shape.d[d] != 1) {
        if (strcmp(idx[d], "rc") == 0)
          axc = d;
        else if (strcmp(idx[d], "rt") == 0)
          axt = d;
      }
    if (n->dt != DT_F ||
        (!e->flat && axc >= 0 && stride_of(&n->shape, axc) != 1)) {
      e->row_fail = 1;
      return r;
    }
    r.ptr = fmt(e, "&%s", load(e, id, idx));
    r.cs = e->flat || axc >= 0;
    r.rs = axt >= 0 ? fmt(e, "%lld", (long long)stride_of(&n->shape, axt))
                    : "0";
  } else if (n->op == OP_BCAST) {
    r = row_val(e, n->in[0],
                bcast_idx(e, ND(e, R(e, n->in[0])), n->shape.rank, idx), NULL);
  } else {
    int op = row_op(e, n);
    if (op < 0) {
      e->row_fail = 1;
      return r;
    }
    int R_ = n->shape.rank;
    RowV a = row_val(e, n->in[0], bcast_idx(e, ND(e, R(e, n->in[0])), R_, idx),
                     NULL);
    RowV b = {"0", "0", 0};
    if (n->op == OP_POW)
      b = a;
    else if (n->nin == 2)
      b = row_val(e, n->in[1],
                  bcast_idx(e, ND(e, R(e, n->in[1])), R_, idx), NULL);
    if (e->row_fail)
      return r;
    r.ptr = dst ? dst : row_scratch(e);
    r.rs = "rn", r.cs = 1;
    line(e, "agc_row_f32(%d, rtn, rn, %s, %s, %d, %s, %s, %d, %s, rn); /* %s */",
         op, a.ptr, a.rs, a.cs, b.ptr, b.rs, b.cs, r.ptr, row_op_names[op]);
    return r;
  }
  if (dst && !e->row_fail) { /* the result must land in dst */
    line(e, "agc_row_f32(%d, rtn, rn, %s, %s, %d, 0, 0, 0, %s, rn); /* COPY */",
         ROW_COPY, r.ptr, r.rs, r.cs, dst);
    r.ptr = dst, r.rs = "rn", r.cs = 1;
  }
  return r;
}

/* The loop of stored node h (and of the nodes fused into it) in row mode;
 * 0, with nothing written, if it cannot be. */
static int row_loop(E *e, int h) {
  const Plan *p = e->p;
  if (!e->t->row_kernels || e->c->opt.f64 || op_kind(ND(e, h)->op) != K_EW ||
      ND(e, h)->op == OP_CONST)
    return 0;
  /* written aside: a loop that cannot be done this way leaves no trace */
  StrBuf *saved = e->o, tmp = {0};
  int ind = e->ind, nvals = e->nvals, ncl = e->nclosers, maxrows = e->maxrows;
  e->o = &tmp;
  e->row_fail = 0;
  e->nrows = 0;
  Shape s = ND(e, h)->shape;
  int flat = group_flat(e, h, &s);
  if (flat && s.rank != 1) {
    Shape f = {1, {ND(e, h)->numel}};
    s = f;
  }
  if (s.rank == 0) {
    Shape f = {1, {1}};
    s = f;
  }
  e->flat = flat;
  sums_open(e, h);
  /* rows run along the last axis longer than 1 (rc); short rows are
     taken several at a time along the axis before it (rt) */
  int ra = s.rank - 1;
  while (ra > 0 && s.d[ra] == 1)
    ra--;
  int64_t L = s.d[ra];
  int ta = ra - 1;
  while (ta >= 0 && s.d[ta] == 1)
    ta--;
  int64_t T = ta >= 0 && L <= ROW_CHUNK / 2 ? ROW_CHUNK / L : 1;
  if (ta >= 0 && T > s.d[ta])
    T = s.d[ta];
  if (T * L < 8)
    e->row_fail = 1; /* calls would cost more than TinyCC's loop */
  Shape outer = s;
  outer.d[ra] = 1;
  if (ta >= 0)
    outer.d[ta] = 1;
  char **idx = loop_open(e, &outer, "i");
  idx[ra] = "rc";
  if (ta >= 0) {
    idx[ta] = "rt";
    line(e, "for (long rt = 0; rt < %lld; rt += %lld) {", (long long)s.d[ta],
         (long long)T);
    e->ind++;
    line(e, "const long rtn = %lld - rt < %lld ? %lld - rt : %lld;",
         (long long)s.d[ta], (long long)T, (long long)s.d[ta], (long long)T);
  } else {
    line(e, "{");
    e->ind++;
    line(e, "const long rtn = 1;");
  }
  line(e, "for (long rc = 0; rc < %lld; rc += %d) {", (long long)L, ROW_CHUNK);
  e->ind++;
  line(e, "const long rn = %lld - rc < %d ? %lld - rc : %d;", (long long)L,
       ROW_CHUNK, (long long)L, ROW_CHUNK);
  for (int m = h; m >= 0 && !e->row_fail; m = p->fnext[m]) {
    Node *n = ND(e, m);
    if (n->op == OP_SUM) {
      RowV v = row_val(e, n->in[0], idx, NULL);
      if (e->row_fail)
        break;
      if (plan_acc_row(e->c, p, m)) {
        line(e, "agc_row_accd_f32(rtn, rn, %s, %s, %d, acc%d + rc);", v.ptr,
             v.rs, v.cs, m);
      } else if (n->numel == 1) {
        line(e, "acc%d += agc_row_sum_f32(rtn, rn, %s, %s, %d);", m, v.ptr,
             v.rs, v.cs);
      } else if (n->shape.d[ra] == L) {
        /* the sum keeps the row axis: rows add into rows */
        int64_t ors = ta >= 0 && n->shape.d[ta] != 1
                          ? stride_of(&n->shape, ta) : 0;
        line(e, "agc_row_f32(%d, rtn, rn, %s, %s, %d, 0, 0, 0, &%s[%s], "
             "%lld); /* ACC */", ROW_ACC, v.ptr, v.rs, v.cs, bufname(e, m),
             offset(e, &n->shape, idx), (long long)ors);
      } else if (T == 1) {
        line(e, "%s[%s] += (float)agc_row_sum_f32(rtn, rn, %s, %s, %d);",
             bufname(e, m), offset(e, &n->shape, idx), v.ptr, v.rs, v.cs);
      } else {
        e->row_fail = 1; /* one sum per row of a tile: no kernel for it */
      }
    } else {
      const char *dst;
      if (p->local[m]) {
        dst = row_scratch(e);
      } else {
        dst = fmt(e, "r%d", m);
        line(e, "float *const %s = &%s[%s];", dst, bufname(e, m),
             offset(e, &s, idx));
      }
      row_val(e, m, idx, dst);
      e->rowof[m] = dst;
    }
  }
  for (int m = h; m >= 0; m = p->fnext[m])
    e->rowof[m] = NULL;
  e->ind--;
  line(e, "}");
  e->ind--;
  line(e, "}");
  loop_close(e, &outer);
  e->flat = 0;
  sums_close(e, h);
  e->o = saved;
  if (e->row_fail) {
    e->ind = ind;
    e->nvals = nvals;
    e->nclosers = ncl;
    e->maxrows = maxrows;
    sb_free(&tmp);
    return 0;
  }
  if (tmp.s)
    sb_puts(e->o, tmp.s);
  sb_free(&tmp);
  e->uses_row = 1;
  return 1;
}

static const char *gemm_name(E *e) {
  if (e->t->aot_kernels) /* the runtime's optimized copy */
    return e->c->opt.f64 ? "agc_gemm_f64" : "agc_gemm_f32";
  return fmt(e, "%s_gemm", e->c->name);
}

static void matmul_loop(E *e, int id) {
  Node *n = ND(e, id);
  int a = R(e, n->in[0]), b = R(e, n->in[1]);
  Shape sa = ND(e, a)->shape, sb = ND(e, b)->shape, sc = n->shape;
  int ta = n->flags & MM_TA, tb = n->flags & MM_TB;
  int64_t M = sc.d[sc.rank - 2], N = sc.d[sc.rank - 1];
  int64_t K = ta ? sa.d[sa.rank - 2] : sa.d[sa.rank - 1];
  const char *A = bufname(e, a), *B = bufname(e, b), *C = bufname(e, id);
  /* batch loops over the broadcast leading axes */
  Shape batch = {sc.rank - 2, {0}};
  for (int d = 0; d < batch.rank; d++)
    batch.d[d] = sc.d[d];
  char **bi = loop_open(e, &batch, "b");
  const char *ao = "0", *bo = "0", *co = "0";
  if (batch.rank) {
    Shape ba = {sa.rank - 2, {0}}, bb = {sb.rank - 2, {0}};
    for (int d = 0; d < ba.rank; d++)
      ba.d[d] = sa.d[d];
    for (int d = 0; d < bb.rank; d++)
      bb.d[d] = sb.d[d];
    Node ta_ = *ND(e, a), tb_ = *ND(e, b);
    ta_.shape = ba;
    tb_.shape = bb;
    ao = fmt(e, "(%s) * %lld", offset(e, &ba, bcast_idx(e, &ta_, batch.rank, bi)),
             (long long)(M * K));
    bo = fmt(e, "(%s) * %lld", offset(e, &bb, bcast_idx(e, &tb_, batch.rank, bi)),
             (long long)(K * N));
    co = fmt(e, "(%s) * %lld", offset(e, &batch, bi), (long long)(M * N));
    line(e, "{");
    e->ind++;
    line(e, "const %s *A = %s + %s;", e->real, A, ao);
    line(e, "const %s *B = %s + %s;", e->real, B, bo);
    line(e, "%s *C = %s + %s;", e->real, C, co);
    A = "A", B = "B", C = "C";
  }
  /* For the JIT, a product too narrow for the packed kernel still runs
     ahead-of-time code: TinyCC's own loops are several times slower. */
  int gemm = plan_uses_gemm(e->c, n);
  if (gemm || e->t->aot_kernels) {
    if (gemm)
      line(e, "%s(%lld, %lld, %lld, %s, %lld, %lld, %s, %lld, %lld, %s, 0, "
           "pack);", gemm_name(e), (long long)M, (long long)N, (long long)K,
           A, (long long)(ta ? 1 : K), (long long)(ta ? M : 1), B,
           (long long)(tb ? 1 : N), (long long)(tb ? K : 1), C);
    else
      line(e, "agc_matmul_%s(%lld, %lld, %lld, %s, %lld, %lld, %s, %lld, "
           "%lld, %s);", e->c->opt.f64 ? "f64" : "f32", (long long)M,
           (long long)N, (long long)K, A, (long long)(ta ? 1 : K),
           (long long)(ta ? M : 1), B, (long long)(tb ? 1 : N),
           (long long)(tb ? K : 1), C);
    e->uses_gemm |= gemm;
    e->uses_mm |= !gemm;
    if (batch.rank) {
      e->ind--;
      line(e, "}");
    }
    loop_close(e, &batch);
    return;
  }
  line(e, "for (long i = 0; i < %lld; i++) {", (long long)M);
  e->ind++;
  line(e, "for (long j = 0; j < %lld; j++) %s[i * %lld + j] = %s;",
       (long long)N, C, (long long)N, lit(e, 0));
  line(e, "for (long k = 0; k < %lld; k++) {", (long long)K);
  e->ind++;
  line(e, "const %s a = %s[%s];", e->real, A,
       ta ? fmt(e, "k * %lld + i", (long long)M)
          : fmt(e, "i * %lld + k", (long long)K));
  line(e, "for (long j = 0; j < %lld; j++) %s[i * %lld + j] += a * %s[%s];",
       (long long)N, C, (long long)N, B,
       tb ? fmt(e, "j * %lld + k", (long long)K)
          : fmt(e, "k * %lld + j", (long long)N));
  e->ind--;
  line(e, "}");
  e->ind--;
  line(e, "}");
  if (batch.rank) {
    e->ind--;
    line(e, "}");
  }
  loop_close(e, &batch);
}

/* one-hot of the first max/min along one axis */
static void firstmax_loop(E *e, int id) {
  Node *n = ND(e, id);
  int a = R(e, n->in[0]);
  int axis = 0;
  while (!(n->mask & (1u << axis)))
    axis++;
  Shape outer = n->shape;
  outer.d[axis] = 1;
  const char *dst = bufname(e, id);
  line(e, "for (long i = 0; i < %lld; i++) %s[i] = %s;", (long long)n->numel,
       dst, lit(e, 0));
  char **idx = loop_open(e, &outer, "i");
  if (n->numel == n->shape.d[axis]) {
    line(e, "{");
    e->ind++;
  }
  char **ik = arena_alloc(&e->c->arena, sizeof(char *) * MAX_RANK);
  memcpy(ik, idx, sizeof(char *) * MAX_RANK);
  ik[axis] = "k";
  line(e, "long best = 0;");
  line(e, "for (long k = 1; k < %lld; k++)", (long long)n->shape.d[axis]);
  ik[axis] = "k";
  const char *cur = load(e, a, ik);
  ik[axis] = "best";
  const char *bv = load(e, a, ik);
  line(e, "  if (%s %s %s) best = k;", cur, n->op == OP_FIRSTMAX ? ">" : "<", bv);
  line(e, "%s[%s] = %s;", dst, offset(e, &n->shape, ik), lit(e, 1));
  if (n->numel == n->shape.d[axis]) {
    e->ind--;
    line(e, "}");
  }
  loop_close(e, &outer);
}

/* product of the other elements of each reduced group */
static void prodexcl_loop(E *e, int id) {
  Node *n = ND(e, id);
  int a = R(e, n->in[0]);
  Shape s = n->shape, grp = n->shape;
  for (int d = 0; d < s.rank; d++)
    if (!(n->mask & (1u << d)))
      grp.d[d] = 1;
  const char *dst = bufname(e, id);
  char **idx = loop_open(e, &s, "i");
  line(e, "{");
  e->ind++;
  line(e, "%s prod = %s;", e->real, lit(e, 1));
  char **gi = loop_open(e, &grp, "g");
  char **ri = arena_alloc(&e->c->arena, sizeof(char *) * MAX_RANK);
  StrBuf same = {0};
  int nsame = 0;
  for (int d = 0; d < s.rank; d++) {
    if (n->mask & (1u << d) && s.d[d] != 1) {
      ri[d] = gi[d];
      sb_printf(&same, "%s%s == %s", nsame++ ? " && " : "", gi[d], idx[d]);
    } else {
      ri[d] = idx[d];
    }
  }
  line(e, "if (!(%s)) prod *= %s;", nsame ? same.s : "1", load(e, a, ri));
  sb_free(&same);
  loop_close(e, &grp);
  line(e, "%s[%s] = prod;", dst, offset(e, &s, idx));
  e->ind--;
  line(e, "}");
  loop_close(e, &s);
}

/* out_j = sum over i != j of g_i * prod over k != i, j of x_k, within each
 * reduced group: the adjoint of prodexcl, for second derivatives of prod */
static void prodexcl2_loop(E *e, int id) {
  Node *n = ND(e, id);
  int a = R(e, n->in[0]), g = R(e, n->in[1]);
  Shape s = n->shape, grp = n->shape;
  for (int d = 0; d < s.rank; d++)
    if (!(n->mask & (1u << d)))
      grp.d[d] = 1;
  const char *dst = bufname(e, id);
  char **idx = loop_open(e, &s, "i");
  line(e, "{");
  e->ind++;
  line(e, "%s acc = %s;", e->real, lit(e, 0));
  char **gi = loop_open(e, &grp, "g");
  line(e, "{");
  e->ind++;
  char **ri = arena_alloc(&e->c->arena, sizeof(char *) * MAX_RANK);
  StrBuf gj = {0};
  int ngj = 0;
  for (int d = 0; d < s.rank; d++) {
    int red = n->mask & (1u << d) && s.d[d] != 1;
    ri[d] = red ? gi[d] : idx[d];
    if (red)
      sb_printf(&gj, "%s%s == %s", ngj++ ? " && " : "", gi[d], idx[d]);
  }
  line(e, "if (%s) continue;", ngj ? gj.s : "1");
  line(e, "%s prod = %s;", e->real, load(e, g, ri));
  char **hi = loop_open(e, &grp, "h");
  char **ki = arena_alloc(&e->c->arena, sizeof(char *) * MAX_RANK);
  for (int d = 0; d < s.rank; d++) {
    int red = n->mask & (1u << d) && s.d[d] != 1;
    ki[d] = red ? hi[d] : idx[d];
  }
  StrBuf hj = {0}, hg = {0};
  int nh = 0;
  for (int d = 0; d < s.rank; d++)
    if (n->mask & (1u << d) && s.d[d] != 1) {
      sb_printf(&hj, "%s%s == %s", nh ? " && " : "", hi[d], idx[d]);
      sb_printf(&hg, "%s%s == %s", nh ? " && " : "", hi[d], gi[d]);
      nh++;
    }
  line(e, "if (!(%s) && !(%s)) prod *= %s;", nh ? hj.s : "1", nh ? hg.s : "1",
       load(e, a, ki));
  loop_close(e, &grp);
  line(e, "acc += prod;");
  e->ind--;
  line(e, "}");
  loop_close(e, &grp);
  line(e, "%s[%s] = acc;", dst, offset(e, &s, idx));
  e->ind--;
  line(e, "}");
  loop_close(e, &s);
  sb_free(&gj);
  sb_free(&hj);
  sb_free(&hg);
}

static void onehot_loop(E *e, int id) {
  Node *n = ND(e, id);
  int a = R(e, n->in[0]);
  int64_t C = (int64_t)n->val;
  const char *dst = bufname(e, id);
  Shape in = ND(e, a)->shape;
  line(e, "for (long i = 0; i < %lld; i++) %s[i] = %s;", (long long)n->numel,
       dst, lit(e, 0));
  char **idx = loop_open(e, &in, "i");
  line(e, "{");
  e->ind++;
  line(e, "const long k = (long)%s;", load(e, a, idx));
  line(e, "if (k < 0 || k >= %lld) status = 1; /* index out of range */",
       (long long)C);
  line(e, "else %s[(%s) * %lld + k] = %s;", dst, offset(e, &in, idx),
       (long long)C, lit(e, 1));
  e->ind--;
  line(e, "}");
  loop_close(e, &in);
  e->uses_status = 1;
}

static void pad_loop(E *e, int id) {
  Node *n = ND(e, id);
  int a = R(e, n->in[0]);
  const char *dst = bufname(e, id);
  line(e, "for (long i = 0; i < %lld; i++) %s[i] = %s;", (long long)n->numel,
       dst, lit(e, 0));
  Shape in = ND(e, a)->shape;
  char **idx = loop_open(e, &in, "i");
  char **oi = arena_alloc(&e->c->arena, sizeof(char *) * MAX_RANK);
  for (int d = 0; d < in.rank; d++)
    oi[d] = n->perm[d] ? fmt(e, "(%s + %d)", idx[d], n->perm[d]) : idx[d];
  if (in.rank == 0 || ND(e, a)->numel == 1) {
    line(e, "{");
    e->ind++;
  }
  const char *v = val(e, a, idx);
  /* the output may have size-1 axes where the input has them too */
  line(e, "%s[%s] = %s;", dst, offset(e, &n->shape, oi), v);
  if (in.rank == 0 || ND(e, a)->numel == 1) {
    e->ind--;
    line(e, "}");
  }
  loop_close(e, &in);
}

/* ---- convolution, pooling, embedding ------------------------------------- */

static void zero(E *e, const char *dst, int64_t n) {
  line(e, "for (long i = 0; i < %lld; i++) %s[i] = %s;", (long long)n, dst,
       lit(e, 0));
}

/* im2col of image n of x into col[(c*KH + kh)*KW + kw][oh*OW + ow], or
 * (back) col2im, adding col into dx. */
/* im2col of image n of X (or, back, col2im into it): the kernel of
 * runtime/kernels/im2col.c, the runtime's copy for the JIT, else its text
 * in the file */
static void im2col(E *e, const Shape *x, const Shape *w, const Shape *y,
                   int stride, int pad, const char *X, int back) {
  int64_t C = x->d[1], H = x->d[2], W = x->d[3], KH = w->d[2], KW = w->d[3];
  int64_t OH = y->d[2], OW = y->d[3];
  const char *f = e->t->aot_kernels
                      ? (e->c->opt.f64 ? "agc_im2col_f64" : "agc_im2col_f32")
                      : fmt(e, "%s_im2col", e->c->name);
  line(e, "%s(%s + n * %lld, %lld, %lld, %lld, %lld, %lld, %d, %d, %lld, "
       "%lld, col, %d);", f, X, (long long)(C * H * W), (long long)C,
       (long long)H, (long long)W, (long long)KH, (long long)KW, stride, pad,
       (long long)OH, (long long)OW, back);
  e->uses_im2col = 1;
}

/* conv2d and its gradients as matrix products per image, through im2col:
 *   y[n]  = w[O, CKK] @ col(x[n])[CKK, P]
 *   dx[n] = col2im(w^T @ gy[n])
 *   dw   += gy[n] @ col(x[n])^T                                  */
static void conv_code(E *e, int id) {
  Node *n = ND(e, id);
  int a = R(e, n->in[0]), b = R(e, n->in[1]);
  const char *A = bufname(e, a), *B = bufname(e, b), *D = bufname(e, id);
  Shape sa = ND(e, a)->shape, sb = ND(e, b)->shape;
  ConvGeom cg = conv_geometry(n, &sa, &sb);
  const Shape *x = cg.x, *w = cg.w, *y = cg.y;
  int64_t Nb = x->d[0], O = w->d[0], CKK = w->d[1] * w->d[2] * w->d[3];
  int64_t P = y->d[2] * y->d[3];
  int64_t colat = kernel_pack_elems(e->c->opt.f64, cg.M, cg.N, cg.K);
  const char *g = gemm_name(e);
  e->uses_gemm = 1;
  line(e, "{");
  e->ind++;
  line(e, "%s *const col = pack + %lld; /* [%lld, %lld] */", e->real,
       (long long)colat, (long long)CKK, (long long)P);
  if (n->op == OP_CONV2D_DX)
    zero(e, D, n->numel);
  line(e, "for (long n = 0; n < %lld; n++) {", (long long)Nb);
  e->ind++;
  switch (n->op) {
  case OP_CONV2D: /* y = conv(x=a, w=b) */
    im2col(e, x, w, y, n->perm[0], n->perm[1], A, 0);
    line(e, "%s(%lld, %lld, %lld, %s, %lld, 1, col, %lld, 1, %s + n * %lld, 0, pack);",
         g, (long long)O, (long long)P, (long long)CKK, B, (long long)CKK,
         (long long)P, D, (long long)(O * P));
    break;
  case OP_CONV2D_DX: /* dx = DX(gy=a, w=b) */
    line(e, "%s(%lld, %lld, %lld, %s, 1, %lld, %s + n * %lld, %lld, 1, col, 0, pack);",
         g, (long long)CKK, (long long)P, (long long)O, B, (long long)CKK, A,
         (long long)(O * P), (long long)P);
    im2col(e, x, w, y, n->perm[0], n->perm[1], D, 1);
    break;
  default: /* dw = DW(x=a, gy=b) */
    im2col(e, x, w, y, n->perm[0], n->perm[1], A, 0);
    line(e, "%s(%lld, %lld, %lld, %s + n * %lld, %lld, 1, col, 1, %lld, %s, n > 0, pack);",
         g, (long long)O, (long long)CKK, (long long)P, B, (long long)(O * P),
         (long long)P, (long long)P, D);
    break;
  }
  e->ind--;
  line(e, "}");
  e->ind--;
  line(e, "}");
}

/* max_pool2d / avg_pool2d and their gradients; x is the unpooled shape */
static void pool_code(E *e, int id) {
  Node *n = ND(e, id);
  int k = n->perm[0], st = n->perm[1];
  int a = R(e, n->in[0]);
  const char *D = bufname(e, id), *A = bufname(e, a);
  int fwd = n->op == OP_MAXPOOL || n->op == OP_AVGPOOL;
  Shape x = fwd ? ND(e, a)->shape : n->shape;
  Shape y = fwd ? n->shape : ND(e, R(e, n->in[n->nin - 1]))->shape;
  int64_t NC = x.d[0] * x.d[1], H = x.d[2], W = x.d[3], OH = y.d[2],
          OW = y.d[3];
  int op = n->op == OP_MAXPOOL ? 0 : n->op == OP_MAXPOOL_DX ? 1
         : n->op == OP_AVGPOOL ? 2 : 3;
  const char *X = n->op == OP_MAXPOOL_DX || fwd ? A : "0";
  const char *G = fwd ? "0" : bufname(e, R(e, n->in[n->nin - 1]));
  const char *f = e->t->aot_kernels
                      ? (e->c->opt.f64 ? "agc_pool_f64" : "agc_pool_f32")
                      : fmt(e, "%s_pool", e->c->name);
  line(e, "%s(%d, %s, %s, %lld, %lld, %lld, %d, %d, %lld, %lld, %s);", f, op,
       X, G, (long long)NC, (long long)H, (long long)W, k, st, (long long)OH,
       (long long)OW, D);
  e->uses_pool = 1;
}

/* embedding: rows of a [V, D] table by index; EMBED_DT adds them back */
static void embed_code(E *e, int id) {
  Node *n = ND(e, id);
  int a = R(e, n->in[0]), ix = R(e, n->in[1]);
  const char *D = bufname(e, id), *A = bufname(e, a), *I = bufname(e, ix);
  int64_t cnt = ND(e, ix)->numel;
  Shape tab = n->op == OP_EMBED ? ND(e, a)->shape : n->shape;
  int64_t V = tab.d[0], Dm = tab.d[1];
  if (n->op == OP_EMBED_DT)
    zero(e, D, n->numel);
  line(e, "for (long i = 0; i < %lld; i++) {", (long long)cnt);
  e->ind++;
  line(e, "const long r = (long)%s[i];", I);
  line(e, "if (r < 0 || r >= %lld) { status = 1; continue; } /* index out of range */",
       (long long)V);
  if (n->op == OP_EMBED)
    line(e, "for (long j = 0; j < %lld; j++) %s[i * %lld + j] = %s[r * %lld + j];",
         (long long)Dm, D, (long long)Dm, A, (long long)Dm);
  else
    line(e, "for (long j = 0; j < %lld; j++) %s[r * %lld + j] += %s[i * %lld + j];",
         (long long)Dm, D, (long long)Dm, A, (long long)Dm);
  e->ind--;
  line(e, "}");
  e->uses_status = 1;
}

static void node_code(E *e, int id) {
  Node *n = ND(e, id);
  comment(e, id);
  switch (op_kind(n->op)) {
  case K_EW:
    ew_loop(e, bufname(e, id), id, "=", 1);
    return;
  case K_RED:
    reduce_loop(e, id);
    return;
  case K_MM:
    matmul_loop(e, id);
    return;
  default:
    break;
  }
  switch (n->op) {
  case OP_CONST: case OP_TRANSPOSE: case OP_SLICE:
    ew_loop(e, bufname(e, id), id, "=", 1);
    return;
  case OP_PAD: pad_loop(e, id); return;
  case OP_FIRSTMAX: case OP_FIRSTMIN: firstmax_loop(e, id); return;
  case OP_PRODEXCL: prodexcl_loop(e, id); return;
  case OP_PRODEXCL2: prodexcl2_loop(e, id); return;
  case OP_ONEHOT: onehot_loop(e, id); return;
  case OP_CONV2D: case OP_CONV2D_DX: case OP_CONV2D_DW: conv_code(e, id); return;
  case OP_MAXPOOL: case OP_MAXPOOL_DX: case OP_AVGPOOL: case OP_AVGPOOL_DX:
    pool_code(e, id);
    return;
  case OP_EMBED: case OP_EMBED_DT: embed_code(e, id); return;
  default:
    error_plain(e->c, "internal: no code generator for %s", op_name(n->op));
  }
}

/* The fused node is computed inside the store loop: mark it so ew_loop
 * treats it as the loop's root. */
static void store_code(E *e, int o) {
  Out *out = &e->c->g.outs[o];
  int v = R(e, out->node);
  if (e->p->store[v] == o)
    return; /* computed in place */
  const char *op = out->is_grad && e->c->opt.accumulate ? "+=" : "=";
  line(e, "/* %s %s */", op[0] == '+' ? "accumulate" : "store", out->name);
  ew_loop(e, fmt(e, "out_%s", out->name), v, op, 0);
}

/* ---- names ------------------------------------------------------------------ */

static void upper(char *dst, const char *s, size_t n) {
  size_t i = 0;
  for (; s[i] && i + 1 < n; i++)
    dst[i] = (char)((s[i] >= 'a' && s[i] <= 'z') ? s[i] - 32 : s[i]);
  dst[i] = 0;
}

/* Declares one math function of the element type with n arguments, once. */
static void math_proto(E *e, StrBuf *o, const char *name, size_t len, int n,
                       StrBuf *seen) {
  char key[64];
  snprintf(key, sizeof key, " %.*s/", (int)len, name);
  if (seen->s && strstr(seen->s, key))
    return;
  sb_puts(seen, key);
  sb_printf(o, "%s %.*s%s(%s%s%s);\n", e->real, (int)len, name, e->mf,
            e->real, n > 1 ? ", " : "", n > 1 ? e->real : "");
}

/* The JIT declares the math functions it calls instead of including
 * <math.h>: every `name$f(...)` of the ops' templates (ops.def), plus exp
 * and tanh, which $E and $H name in f64. */
static void prototypes(E *e, StrBuf *o) {
  if (!e->t->math_protos) {
    sb_puts(o, "#include <math.h>\n");
    return;
  }
  StrBuf seen = {0};
  if (e->c->opt.f64) {
    math_proto(e, o, "exp", 3, 1, &seen);
    math_proto(e, o, "tanh", 4, 1, &seen);
  }
  for (int op = 0; op < OP_COUNT; op++) {
    const char *t = op_ctext((Op)op);
    for (const char *q = t ? strstr(t, "$f(") : NULL; q; q = strstr(q + 3, "$f(")) {
      const char *b = q;
      while (b > t && isalnum((unsigned char)b[-1]))
        b--;
      int depth = 0, args = 1;
      for (const char *r = q + 3; *r && depth >= 0; r++) {
        if (*r == '(') depth++;
        else if (*r == ')') depth--;
        else if (*r == ',' && depth == 0) args++;
      }
      math_proto(e, o, b, (size_t)(q - b), args, &seen);
    }
  }
  sb_free(&seen);
}

static const char *dt_code(const Ctx *c, const Node *n) {
  if (n->dt == DT_I32)
    return "2";
  return c->opt.f64 ? "1" : "0";
}

static void macros(Ctx *c, StrBuf *o, const Plan *p) {
  char G[256];
  upper(G, c->name, sizeof G);
  sb_printf(o, "#define %s_WORK_BYTES %lld /* workspace: bytes */\n", G,
            (long long)(p ? p->work_bytes : 0));
  sb_printf(o, "#define %s_NUM_INPUTS %d\n", G, c->g.nargs);
  sb_printf(o, "#define %s_NUM_OUTPUTS %d\n", G, c->g.nouts);
  for (int pass = 0; pass < 2; pass++) {
    int cnt = pass ? c->g.nouts : c->g.nargs;
    for (int i = 0; i < cnt; i++) {
      const char *nm = pass ? c->g.outs[i].name : c->g.args[i].name;
      int node = pass ? plan_resolve(c, c->g.outs[i].node) : c->g.args[i].node;
      Node *n = &c->g.nodes[node];
      sb_printf(o, "#define %s_%s_RANK %d\n", G, nm, n->shape.rank);
      for (int d = 0; d < n->shape.rank; d++)
        sb_printf(o, "#define %s_%s_DIM%d %lld\n", G, nm, d,
                  (long long)n->shape.d[d]);
      sb_printf(o, "#define %s_%s_SIZE %lld\n", G, nm, (long long)n->numel);
    }
  }
}

static void signature(Ctx *c, StrBuf *o, const char *real) {
  sb_printf(o, "int %s(", c->name);
  for (int i = 0; i < c->g.nargs; i++) {
    Node *n = &c->g.nodes[c->g.args[i].node];
    sb_printf(o, "%sconst %s *in_%s", i ? ", " : "",
              n->dt == DT_I32 ? "int32_t" : real, c->g.args[i].name);
  }
  for (int i = 0; i < c->g.nouts; i++)
    sb_printf(o, "%s%s *out_%s", c->g.nargs + i ? ", " : "", real,
              c->g.outs[i].name);
  sb_printf(o, "%svoid *work)", c->g.nargs + c->g.nouts ? ", " : "");
}

static void tables(Ctx *c, StrBuf *o, int decl) {
  const char *nm = c->name;
  char G[256];
  upper(G, c->name, sizeof G);
  for (int pass = 0; pass < 2; pass++) {
    const char *kind = pass ? "output" : "input";
    int cnt = pass ? c->g.nouts : c->g.nargs;
    if (decl) {
      sb_printf(o, "extern const char *const %s_%s_names[];\n", nm, kind);
      sb_printf(o, "extern const int %s_%s_dtypes[];\n", nm, kind);
      sb_printf(o, "extern const int %s_%s_ranks[];\n", nm, kind);
      sb_printf(o, "extern const int64_t %s_%s_dims[][8];\n", nm, kind);
      continue;
    }
    /* one extra row so that a graph without inputs still has tables */
    sb_printf(o, "const char *const %s_%s_names[%d] = {", nm, kind, cnt + 1);
    for (int i = 0; i < cnt; i++)
      sb_printf(o, "\"%s\", ", pass ? c->g.outs[i].name : c->g.args[i].name);
    sb_puts(o, "NULL};\n");
    sb_printf(o, "const int %s_%s_dtypes[%d] = {", nm, kind, cnt + 1);
    for (int i = 0; i < cnt; i++) {
      int node = pass ? plan_resolve(c, c->g.outs[i].node) : c->g.args[i].node;
      sb_printf(o, "%s, ", pass ? (c->opt.f64 ? "1" : "0")
                                : dt_code(c, &c->g.nodes[node]));
    }
    sb_puts(o, "-1};\n");
    sb_printf(o, "const int %s_%s_ranks[%d] = {", nm, kind, cnt + 1);
    for (int i = 0; i < cnt; i++) {
      int node = pass ? plan_resolve(c, c->g.outs[i].node) : c->g.args[i].node;
      sb_printf(o, "%d, ", c->g.nodes[node].shape.rank);
    }
    sb_puts(o, "-1};\n");
    sb_printf(o, "const int64_t %s_%s_dims[%d][8] = {", nm, kind, cnt + 1);
    for (int i = 0; i < cnt; i++) {
      int node = pass ? plan_resolve(c, c->g.outs[i].node) : c->g.args[i].node;
      Shape *s = &c->g.nodes[node].shape;
      sb_puts(o, "{");
      for (int d = 0; d < s->rank; d++)
        sb_printf(o, "%s%lld", d ? ", " : "", (long long)s->d[d]);
      if (!s->rank)
        sb_puts(o, "0");
      sb_puts(o, "}, ");
    }
    sb_puts(o, "{0}};\n");
  }
}

static void header_comment(Ctx *c, StrBuf *o) {
  /* the file's base name, with only characters that cannot end a comment:
     the same graph gives the same C from any directory */
  const char *base = strrchr(c->path, '/');
  base = base ? base + 1 : c->path;
  char safe[128];
  size_t k = 0;
  for (; base[k] && k + 1 < sizeof safe; k++)
    safe[k] = (isalnum((unsigned char)base[k]) || strchr("._-+", base[k]))
                  ? base[k] : '_';
  safe[k] = 0;
  sb_printf(o, "/* Generated by agc %s from %s (%s%s%s). Do not edit.\n", AGC_VERSION,
            safe, c->opt.f64 ? "f64" : "f32",
            c->opt.accumulate ? ", accumulate" : "",
            c->opt.no_grad ? ", no-grad" : "");
  sb_printf(o, " *\n * int %s(inputs..., outputs..., void *work);\n", c->name);
  sb_puts(o, " *   inputs, in order:");
  for (int i = 0; i < c->g.nargs; i++)
    sb_printf(o, " %s", c->g.args[i].name);
  sb_puts(o, "\n *   outputs, in order:");
  for (int i = 0; i < c->g.nouts; i++)
    sb_printf(o, " %s", c->g.outs[i].name);
  char G[256];
  upper(G, c->name, sizeof G);
  sb_printf(o, "\n *   work: %s_WORK_BYTES bytes, aligned for double", G);
  sb_puts(o, "\n * Buffers are C-order arrays; outputs must not overlap inputs.\n"
             " * Returns 0, or 1 if an integer index input was out of range.\n */\n");
}

void emit_h(Ctx *c, StrBuf *o) {
  const char *real = c->opt.f64 ? "double" : "float";
  char G[256];
  upper(G, c->name, sizeof G);
  header_comment(c, o);
  sb_printf(o, "#ifndef AGC_%s_H\n#define AGC_%s_H\n\n", G, G);
  sb_puts(o, "#include <stdint.h>\n\n");
  macros(c, o, ctx_plan(c));
  sb_puts(o, "\n");
  signature(c, o, real);
  sb_puts(o, ";\n");
  sb_printf(o, "int %s_generic(const void *const *in, void *const *out, void *work);\n",
            c->name);
  tables(c, o, 1);
  sb_printf(o, "\n#endif /* AGC_%s_H */\n", G);
}

void emit_c(Ctx *c, const Plan *p, const Target *t, StrBuf *o) {
  E e;
  memset(&e, 0, sizeof e);
  e.c = c;
  e.p = p;
  e.t = t;
  e.real = c->opt.f64 ? "double" : "float";
  e.mf = c->opt.f64 ? "" : "f";
  e.arg_used = arena_alloc(&c->arena, sizeof(int) * (size_t)(c->g.nargs + 1));
  e.inloop = arena_alloc(&c->arena, (size_t)c->g.n + 1);
  e.rowof = arena_alloc(&c->arena, sizeof(char *) * ((size_t)c->g.n + 1));
  StrBuf body = {0};
  e.o = &body;
  e.ind = 1;
  /* workspace pointers */
  StrBuf decls = {0};
  for (int i = 0; i < c->g.n; i++)
    if (p->off[i] >= 0) {
      Node *n = &c->g.nodes[i];
      sb_printf(&decls, "  %s *const t%d = (%s *)(w + %lld);\n",
                ctype(&e, n), i, ctype(&e, n), (long long)p->off[i]);
    }
  /* the schedule: stored nodes in topological order, then the stores */
  for (int i = 0; i < c->g.n; i++) {
    Node *n = &c->g.nodes[i];
    if (!p->live[i] || p->inl[i] || n->op == OP_INPUT ||
        n->op == OP_PARAM || n->op == OP_RESHAPE || n->op == OP_ID ||
        n->op == OP_DETACH || p->host[i] >= 0)
      continue;
    if (row_loop(&e, i))
      continue;
    if (p->fnext[i] >= 0)
      fused_loop(&e, i);
    else
      node_code(&e, i);
  }
  for (int o2 = 0; o2 < c->g.nouts; o2++)
    store_code(&e, o2);

  header_comment(c, o);
  prototypes(&e, o);
  sb_puts(o, "#include <stddef.h>\n#include <stdint.h>\n\n");
  macros(c, o, p);
  sb_puts(o, "\n");
  if (e.uses_gemm && t->aot_kernels) {
    sb_printf(o, "void %s(long M, long N, long K, const %s *A, long sai, "
              "long sak, const %s *B, long sbk, long sbj, %s *C, int acc, "
              "%s *pack);\n\n",
              gemm_name(&e), e.real, e.real, e.real, e.real);
  } else if (e.uses_gemm) {
    emit_gemm(o, gemm_name(&e), c->opt.f64, 1);
    sb_puts(o, "\n");
  }
  if (e.uses_tanh && t->aot_kernels)
    sb_puts(o, "float agc_tanhf(float x);\n\n");
  else if (e.uses_tanh)
    emit_tanhf(o, fmt(&e, "%s_tanhf", c->name), 1);
  if (e.uses_exp && t->aot_kernels)
    sb_puts(o, "float agc_expf(float x);\n\n");
  else if (e.uses_exp)
    emit_expf(o, fmt(&e, "%s_expf", c->name), 1);
  if (e.uses_row)
    sb_puts(o, "void agc_row_f32(int op, long T, long n, const float *a, "
               "long ars, long sa, const float *b, long brs, long sb, "
               "float *o, long ors);\n"
               "double agc_row_sum_f32(long T, long n, const float *a, "
               "long ars, long sa);\n"
               "void agc_row_accd_f32(long T, long n, const float *a, "
               "long ars, long sa, double *o);\n\n");
  const char *T = e.real, *sfx = c->opt.f64 ? "f64" : "f32";
  if (e.uses_im2col && t->aot_kernels)
    sb_printf(o, "void agc_im2col_%s(const %s *x, long C, long H, long W, "
              "long KH, long KW, long st, long pad, long OH, long OW, "
              "%s *col, int back);\n\n", sfx, T, T);
  else if (e.uses_im2col)
    emit_im2col(o, fmt(&e, "%s_im2col", c->name), c->opt.f64);
  if (e.uses_pool && t->aot_kernels)
    sb_printf(o, "void agc_pool_%s(int op, const %s *x, const %s *g, "
              "long NC, long H, long W, long k, long st, long OH, long OW, "
              "%s *d);\n\n", sfx, T, T, T);
  else if (e.uses_pool)
    emit_pool(o, fmt(&e, "%s_pool", c->name), c->opt.f64);
  if (e.uses_mm)
    sb_printf(o, "void agc_matmul_%s(long M, long N, long K, const %s *A, "
              "long sai, long sak, const %s *B, long sbk, long sbj, %s *C);"
              "\n\n", c->opt.f64 ? "f64" : "f32", e.real, e.real, e.real);
  signature(c, o, e.real);
  sb_puts(o, "\n{\n");
  if (e.uses_gemm)
    sb_printf(&decls, "  %s *const pack = (%s *)(w + %lld); /* matmul "
              "packing */\n", e.real, e.real, (long long)p->pack_off);
  if (decls.len) {
    sb_puts(o, "  char *const w = (char *)work;\n");
    sb_puts(o, decls.s);
  } else {
    sb_puts(o, "  (void)work;\n");
  }
  for (int i = 0; i < c->g.nargs; i++)
    if (!e.arg_used[i])
      sb_printf(o, "  (void)in_%s; /* not needed by any output */\n",
                c->g.args[i].name);
  if (e.uses_status)
    sb_puts(o, "  int status = 0;\n");
  if (e.maxrows)
    sb_printf(o, "  float rw[%d][%d]; /* rows for agc_row_f32 */\n",
              e.maxrows, ROW_CHUNK);
  if (body.s)
    sb_puts(o, body.s);
  sb_printf(o, "  return %s;\n}\n\n", e.uses_status ? "status" : "0");
  sb_free(&body);
  sb_free(&decls);
  /* the generic entry point */
  sb_printf(o, "int %s_generic(const void *const *in, void *const *out, void *work)\n{\n",
            c->name);
  if (!c->g.nargs)
    sb_puts(o, "  (void)in;\n");
  if (!c->g.nouts)
    sb_puts(o, "  (void)out;\n");
  sb_printf(o, "  return %s(", c->name);
  for (int i = 0; i < c->g.nargs; i++) {
    Node *n = &c->g.nodes[c->g.args[i].node];
    sb_printf(o, "%s(const %s *)in[%d]", i ? ", " : "",
              n->dt == DT_I32 ? "int32_t" : e.real, i);
  }
  for (int i = 0; i < c->g.nouts; i++)
    sb_printf(o, "%s(%s *)out[%d]", c->g.nargs + i ? ", " : "", e.real, i);
  sb_printf(o, "%swork);\n}\n\n", c->g.nargs + c->g.nouts ? ", " : "");
  tables(c, o, 0);
}
