/* lower.c — the loop-nest IR: the optimized IR and its memory plan turned
 * into the statements the generated function runs, before any C exists.
 *
 * A statement (LStmt) is one of
 *   loop    a fused loop: its head's iteration space, its members (the
 *           plan's fnext chain: each a value, stored or a local, or a sum
 *           with its accumulator) computed at the loop's index, and
 *           whether it may run as one flat index;
 *   node    one node's own code: an element-wise loop, a reduction, or a
 *           kernel (matmul, conv, pooling, ...), and how it runs;
 *   store   an output copied (or accumulated) into the caller's buffer.
 * with, for each, every buffer it touches (LAccess: which buffer, the
 * largest element index the loop nest reaches, read or written) and every
 * accumulator (LAcc: a local of the loop, a row of partial sums in the
 * plan's scratch, or the reduction's own buffer).
 *
 * The C generator (emit.c) renders the statements in this order; the
 * checker (lower_check) verifies them independently of how they were
 * made: every access inside its buffer (each coordinate inside its
 * dimension, the last byte inside the buffer's declared size, a workspace
 * buffer inside the workspace), every accumulator in memory the plan owns
 * (never a caller's buffer) with room for its type. A violation is an
 * internal error, never code that touches memory it does not own.
 * `--emit loops` prints the statements. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "agc.h"

typedef struct {
  Ctx *c;
  const Plan *p;
  const Target *t;
  Loops *L;
  int cap_s, cap_a, cap_acc, cap_m;
  char *inloop; /* members of the fused loop being lowered, read as locals */
  char *rowof;  /* row mode: members already in a row (row_ok) */
  int64_t es;   /* bytes of the element type */
} Low;

static void *grow(void *p, int *cap, int n, size_t el) {
  if (n < *cap)
    return p;
  int nc = *cap ? *cap * 2 : 64;
  void *q = realloc(p, el * (size_t)nc);
  if (!q)
    abort();
  *cap = nc;
  return q;
}

/* The memory node id lives in: a caller's argument, a caller's output
 * buffer, or a workspace slice (as emit.c's em_bufname names it). */
LBuf lower_buf(const Ctx *c, const Plan *p, int id) {
  LBuf b = {LB_WORK, -1, 0, 0};
  int v = p->alias[id];
  const Node *n = &c->g.nodes[v];
  int64_t es = c->opt.api.f64 ? 8 : 4;
  if (n->op == OP_INPUT || n->op == OP_PARAM) {
    const Arg *a = &c->g.args[n->ext];
    b.kind = a->role == ROLE_STATE ? LB_STATE : LB_ARG;
    b.idx = n->ext;
    b.off = a->role == ROLE_STATE ? a->state_off : 0;
    b.bytes = n->numel * (n->dt == DT_I32 ? 4 : es);
    return b;
  }
  if (p->store[v] >= 0) {
    const Out *o = &c->g.outs[p->store[v]];
    if (o->home >= 0) {
      const Arg *a = &c->g.args[o->home];
      const Node *h = &c->g.nodes[a->node];
      b.kind = a->role == ROLE_STATE ? LB_STATE : LB_ARG;
      b.idx = o->home;
      b.off = a->role == ROLE_STATE ? a->state_off : 0;
      b.bytes = h->numel * es;
      return b;
    }
    b.kind = LB_OUT;
    b.idx = p->store[v];
    b.bytes = c->g.nodes[plan_resolve(c, o->node)].numel * es;
    return b;
  }
  b.idx = v;
  b.off = p->off[v];
  b.bytes = p->off[v] >= 0 ? p->size[v] : 0;
  return b;
}

/* records an access of node id's memory (shape s) at coordinates up to mc */
static void access(Low *w, int stmt_node, int id, const Shape *s,
                   const int64_t *mc, int write) {
  Loops *L = w->L;
  L->a = grow(L->a, &w->cap_a, L->na, sizeof *L->a);
  LAccess *a = &L->a[L->na];
  memset(a, 0, sizeof *a);
  a->node = id;
  a->stmt = stmt_node;
  a->write = write;
  a->buf = lower_buf(w->c, w->p, id);
  a->shape = *s;
  int64_t off = 0, stride = 1;
  a->bad_dim = -1;
  for (int d = s->rank - 1; d >= 0; d--) {
    int64_t x = s->d[d] == 1 ? 0 : mc[d]; /* a size-1 axis reads index 0 */
    if ((x < 0 || x >= s->d[d]) && a->bad_dim < 0)
      a->bad_dim = d;
    off += x * stride;
    stride *= s->d[d];
  }
  const Node *n = &w->c->g.nodes[id];
  a->esize = n->dt == DT_I32 ? 4 : w->es;
  a->end = (off + 1) * a->esize;
  /* the same access as the one before it (a value read twice) is kept once */
  const LAccess *b = L->na > 0 ? &L->a[L->na - 1] : NULL;
  if (b && L->ns > 0 && L->na - 1 >= L->s[L->ns - 1].first_access &&
      b->node == a->node && b->write == a->write && b->end == a->end &&
      b->bad_dim == a->bad_dim)
    return;
  L->na++;
}

/* the whole of node id's memory (a kernel's operand or result) */
static void access_all(Low *w, int stmt_node, int id, int write) {
  const Node *n = &w->c->g.nodes[id];
  int64_t mc[MAX_RANK];
  for (int d = 0; d < n->shape.rank; d++)
    mc[d] = n->shape.d[d] - 1;
  access(w, stmt_node, id, &n->shape, mc, write);
}

/* coordinates of operand x (rank r) of a node of rank R at mc: trailing
 * axes aligned, a size-1 axis at 0 (broadcasting) */
static void bcast_mc(const Shape *x, int R_, const int64_t *mc, int64_t *out) {
  for (int j = 0; j < x->rank; j++)
    out[j] = x->d[j] == 1 ? 0 : mc[j + R_ - x->rank];
}

/* The reads of node id's value at coordinates mc, as emit.c's val_at
 * computes it: a constant or a local reads no memory, a stored value is
 * loaded, an inlined node reads its operands (broadcast, transposed or
 * sliced as the node says). */
static void reads(Low *w, int stmt_node, int id, const int64_t *mc, int top,
                  int depth) {
  const Plan *p = w->p;
  id = plan_resolve(w->c, id);
  const Node *n = &w->c->g.nodes[id];
  if (n->op == OP_CONST || depth > 1000) /* inlining is at most 40 deep */
    return;
  if (!top && (p->local[id] || w->inloop[id]))
    return;
  if (!top && !p->inl[id]) {
    access(w, stmt_node, id, &n->shape, mc, 0);
    return;
  }
  int64_t ci[MAX_RANK];
  switch (n->op) {
  case OP_TRANSPOSE:
    for (int d = 0; d < n->shape.rank; d++)
      ci[n->perm[d]] = mc[d];
    reads(w, stmt_node, n->in[0], ci, 0, depth + 1);
    return;
  case OP_SLICE:
    for (int d = 0; d < n->shape.rank; d++)
      ci[d] = mc[d] + n->perm[d];
    reads(w, stmt_node, n->in[0], ci, 0, depth + 1);
    return;
  default:
    break;
  }
  if (op_kind(n->op) != K_EW)
    return; /* a kernel's node is stored: never inlined */
  for (int k = 0; k < n->nin; k++) {
    const Node *x = &w->c->g.nodes[plan_resolve(w->c, n->in[k])];
    bcast_mc(&x->shape, n->shape.rank, mc, ci);
    reads(w, stmt_node, n->in[k], ci, 0, depth + 1);
  }
}

static LStmt *stmt(Low *w, LStmtKind kind, int node, const Shape *iter) {
  Loops *L = w->L;
  L->s = grow(L->s, &w->cap_s, L->ns, sizeof *L->s);
  LStmt *s = &L->s[L->ns++];
  memset(s, 0, sizeof *s);
  s->kind = kind;
  s->node = node;
  s->iter = *iter;
  s->first_member = L->nm;
  s->first_access = L->na;
  s->first_acc = L->nacc;
  s->par_unit = 1;
  return s;
}

/* the statement's next member: node, its accumulator (the one acc() made
   last, if acc), written to its buffer or not */
static void member(Low *w, LStmt *s, int node, int has_acc, int store) {
  Loops *L = w->L;
  L->m = grow(L->m, &w->cap_m, L->nm, sizeof *L->m);
  LMember *m = &L->m[L->nm++];
  m->node = node;
  m->acc = has_acc ? L->nacc - 1 : -1;
  m->store = store;
  s->nmembers++;
}

static void acc(Low *w, int node, LAccKind kind, int64_t off, int64_t bytes,
                int esize) {
  Loops *L = w->L;
  L->acc = grow(L->acc, &w->cap_acc, L->nacc, sizeof *L->acc);
  LAcc *a = &L->acc[L->nacc++];
  a->node = node;
  a->kind = kind;
  a->off = off;
  a->bytes = bytes;
  a->esize = esize;
  a->held = 0;
}

static void max_of(const Shape *s, int64_t *mc) {
  for (int d = 0; d < s->rank; d++)
    mc[d] = s->d[d] - 1;
}

/* the accumulator of a whole-tensor sum: the target's wider type (or the
   element type with Kahan compensation) in a local */
static int acc_esize(const Low *w) { return w->t->acc_type ? 8 : (int)w->es; }

/* ---- decisions made here, before any text: flat loops, row mode ------- */

/* Can node id's fused tree run as one flat loop over its elements? Yes
 * when every node in it, and every buffer it reads, has shape s. */
int lower_flat_ok(const Ctx *c, const Plan *p, int id, const Shape *s,
                  int top) {
  id = plan_resolve(c, id);
  const Node *n = &c->g.nodes[id];
  if (n->op == OP_CONST)
    return 1;
  if (n->shape.rank != s->rank ||
      memcmp(n->shape.d, s->d, sizeof s->d[0] * (size_t)s->rank))
    return 0;
  if (!top && !p->inl[id])
    return 1;
  if (n->op == OP_BCAST || n->op == OP_TRANSPOSE || n->op == OP_SLICE)
    return 0;
  for (int k = 0; k < n->nin; k++)
    if (!lower_flat_ok(c, p, n->in[k], s, 0))
      return 0;
  return 1;
}

/* May the loop of h (and its members) be one flat loop over shape s? */
int lower_group_flat(const Ctx *c, const Plan *p, int h, const Shape *s) {
  int flat = 1;
  for (int m = h; m >= 0; m = p->fnext[m]) {
    const Node *n = &c->g.nodes[m];
    if (n->op == OP_SUM)
      flat = flat && n->numel == 1 && !plan_acc_row(c, p, m) &&
             lower_flat_ok(c, p, n->in[0], s, 0);
    else
      flat = flat && lower_flat_ok(c, p, m, s, 1);
  }
  return flat;
}

/* JIT row mode (emit_row.c): may the loop of h run as calls of the row
 * kernels? The conditions emit_row.c's row_val meets while writing, made
 * here first: every operation has a row kernel, every stored operand is
 * f32 and read along a row of stride 1 (or once per row), at most
 * ROW_SCRATCH rows of scratch, tiles worth a call, sums of a kind a
 * kernel adds. */
typedef struct {
  const Ctx *c;
  const Plan *p;
  char *rowof; /* members already in a row of this loop */
  int nrows, flat, ra, ta;
  const Shape *s;
} RowQ;

static int row_op_of(const Ctx *c, const Node *n) {
  double k;
  if (n->op == OP_POW)
    return ir_is_const((Ctx *)c, plan_resolve(c, n->in[1]), &k) && k == 2
               ? ROW_MUL : -1;
  return op_row(n->op);
}

static int row_scratch_ok(RowQ *q) {
  if (q->nrows == ROW_SCRATCH_ROWS)
    return 0;
  q->nrows++;
  return 1;
}

/* axes[d]: the loop axis coordinate d of node id runs along, or -1 */
static int row_val_ok(RowQ *q, int id, const int *axes, int dst) {
  const Ctx *c = q->c;
  id = plan_resolve(c, id);
  const Node *n = &c->g.nodes[id];
  int ax[MAX_RANK];
  if (n->op == OP_CONST)
    return 1;
  if (!dst && q->rowof[id])
    return 1;
  if (!dst && !q->p->inl[id]) {
    int axc = -1;
    for (int d = 0; d < n->shape.rank && !q->flat; d++)
      if (n->shape.d[d] != 1 && axes[d] == q->ra)
        axc = d;
    if (n->dt != DT_F)
      return 0;
    if (!q->flat && axc >= 0) {
      int64_t st = 1;
      for (int d = axc + 1; d < n->shape.rank; d++)
        st *= n->shape.d[d];
      if (st != 1)
        return 0;
    }
    return 1;
  }
  if (n->op == OP_BCAST) {
    const Node *x = &c->g.nodes[plan_resolve(c, n->in[0])];
    for (int j = 0; j < x->shape.rank; j++)
      ax[j] = q->flat ? axes[j] : x->shape.d[j] == 1
                                      ? -1 : axes[j + n->shape.rank - x->shape.rank];
    return row_val_ok(q, n->in[0], ax, 0);
  }
  if (row_op_of(c, n) < 0)
    return 0;
  for (int k = 0; k < n->nin && k < 2; k++) {
    if (k == 1 && n->op == OP_POW)
      break;
    const Node *x = &c->g.nodes[plan_resolve(c, n->in[k])];
    for (int j = 0; j < x->shape.rank; j++)
      ax[j] = q->flat ? axes[j] : x->shape.d[j] == 1
                                      ? -1 : axes[j + n->shape.rank - x->shape.rank];
    if (!row_val_ok(q, n->in[k], ax, 0))
      return 0;
  }
  return dst || row_scratch_ok(q);
}

RowTile lower_row_tile(const Shape *s) {
  RowTile r;
  r.ra = s->rank - 1;
  while (r.ra > 0 && s->d[r.ra] == 1)
    r.ra--;
  r.L = s->d[r.ra];
  r.ta = r.ra - 1;
  while (r.ta >= 0 && s->d[r.ta] == 1)
    r.ta--;
  r.T = r.ta >= 0 && r.L <= ROW_CHUNK_ELEMS / 2 ? ROW_CHUNK_ELEMS / r.L : 1;
  if (r.ta >= 0 && r.T > s->d[r.ta])
    r.T = s->d[r.ta];
  return r;
}

/* What row_ok asks about: the loop of h (a stored node and what is fused
 * into it), the value of an output's store computed into the output (an
 * expression; a stored value is copied by the plain loop), or a sum node
 * of its own, over its operand's shape. */
enum { ROWQ_LOOP, ROWQ_STORE, ROWQ_SUM };

/* May sum n (its partial sums per column scratch_row long, or 0: none) run
 * in a row loop of rows of L taken T at a time? Into partial sums per
 * column, into a local, rows into rows, or each tile (one row, or rows the
 * sum adds too) into one element. */
static int row_sum_ok(RowQ *q, const Node *n, int64_t scratch_row,
                      const int *axes, int64_t L, int64_t T) {
  return row_val_ok(q, n->in[0], axes, 0) &&
         (scratch_row || n->numel == 1 || n->shape.d[q->ra] == L || T == 1 ||
          n->shape.d[q->ta] == 1);
}

/* rowof: n + 1 bytes of zeros, given back as zeros */
static int row_ok(const Ctx *c, const Plan *p, const Target *t, int h,
                  int what, char *rowof) {
  const Node *hn = &c->g.nodes[h];
  if (!t->row_kernels || c->opt.api.f64)
    return 0;
  if (what == ROWQ_SUM ? hn->op != OP_SUM
                       : op_kind(hn->op) != K_EW || hn->op == OP_CONST ||
                             (what == ROWQ_STORE && !p->inl[h]))
    return 0;
  Shape s = what == ROWQ_SUM ? c->g.nodes[plan_resolve(c, hn->in[0])].shape
                             : hn->shape;
  int flat = what == ROWQ_SUM     ? 0
             : what == ROWQ_STORE ? lower_flat_ok(c, p, h, &s, 1)
                                  : lower_group_flat(c, p, h, &s);
  if (flat && s.rank != 1) {
    Shape f = {1, {hn->numel}};
    s = f;
  }
  if (s.rank == 0) {
    Shape f = {1, {1}};
    s = f;
  }
  RowTile rt = lower_row_tile(&s);
  int ra = rt.ra, ta = rt.ta;
  int64_t L = rt.L, T = rt.T;
  if (T * L < 8)
    return 0; /* calls would cost more than TinyCC's loop */
  RowQ q = {c, p, rowof, 0, flat, ra, ta, &s};
  int axes[MAX_RANK];
  for (int d = 0; d < s.rank; d++)
    axes[d] = d == ra || d == ta ? d : -2; /* -2: an outer loop's index */
  if (what == ROWQ_STORE)
    return row_val_ok(&q, h, axes, 1);
  if (what == ROWQ_SUM) /* as a sum member of a loop, without partial sums */
    return row_sum_ok(&q, hn, 0, axes, L, T);
  int ok = 1;
  for (int m = h; m >= 0 && ok; m = p->fnext[m]) {
    const Node *n = &c->g.nodes[m];
    if (n->op == OP_SUM) {
      ok = row_sum_ok(&q, n, plan_acc_row(c, p, m), axes, L, T);
    } else {
      ok = (!p->local[m] || row_scratch_ok(&q)) &&
           row_val_ok(&q, m, axes, 1);
      q.rowof[m] = 1;
    }
  }
  for (int m = h; m >= 0; m = p->fnext[m])
    q.rowof[m] = 0;
  return ok;
}

/* Does a sum into its own buffer o, in a loop over ls, add into one
 * element for every index of ls's dimensions d..? (o has size 1 in each,
 * or the loop does.) */
static int own_fixed_from(const Shape *o, const Shape *ls, int d) {
  if (o->rank != ls->rank)
    return 0;
  for (int j = d; j < ls->rank; j++)
    if (o->d[j] != 1 && ls->d[j] != 1)
      return 0;
  return 1;
}

/* A sum like [32, 8, 28, 28] -> [1, 8, 1, 1] adds into t[i1] on every
 * element, and as another member's store might alias it, a C compiler
 * cannot keep it in a register: a chain of store-to-load forwarding, 30
 * times slower than the same loop without the sum. So the loop is split
 * at the outermost depth below which every such sum's index is fixed and
 * some loop runs: each of these sums is held in a local there, loaded
 * before the inner loops and stored after them (the same additions in the
 * same order). Not for a flat loop, nor the JIT's do-while loops (TinyCC
 * keeps no local in a register anyway). */
static void lower_hold(Low *w, LStmt *s) {
  if (w->t->loops_dowhile || (s->flat && s->iter.rank > 1))
    return;
  const Loops *L = w->L;
  int best = 0;
  for (int k = s->first_acc; k < L->nacc; k++) {
    if (L->acc[k].kind != LA_OWN)
      continue;
    const Shape *o = &w->c->g.nodes[L->acc[k].node].shape;
    int d = s->iter.rank, runs = 0;
    while (d > 0 && own_fixed_from(o, &s->iter, d - 1))
      d--;
    for (int j = d; j < s->iter.rank; j++)
      runs |= s->iter.d[j] != 1;
    if (d > 0 && runs && d > best)
      best = d;
  }
  s->hold = best;
  for (int k = s->first_acc; best && k < L->nacc; k++)
    L->acc[k].held = L->acc[k].kind == LA_OWN &&
                     own_fixed_from(&w->c->g.nodes[L->acc[k].node].shape,
                                    &s->iter, best);
}

/* The shape a statement's loop nest walks: its iteration space, or one
 * flat dimension of its head's elements when it runs flat. */
Shape lower_space(const Ctx *c, const LStmt *s) {
  Shape ls = s->iter;
  if (s->flat && ls.rank > 1) {
    Shape f = {1, {c->g.nodes[s->node].numel}};
    ls = f;
  }
  return ls;
}

/* Whether a loop nest (an element-wise loop, with what is fused into it,
 * or an output's store) runs in parts on several threads (--threads), and
 * along which dimension (parts.c): its outermost dimension, longer than 1,
 * along which no sum of the statement adds, so that each element of every
 * result, and each partial sum, is computed by one thread in the order one
 * thread would: the result is the same for any thread count. A
 * whole-tensor sum into a local forbids it; partial sums (LA_SCRATCH, one
 * per index of the last dimension) allow only the last dimension; a sum
 * into its own buffer allows the dimensions it keeps. Only from
 * threads_min_elems elements (default 2^20, about 1 ms of work: on a
 * 2-vCPU VM a second thread started 40 to 600 us late, and the bench's
 * element-wise step of 2^18 elements took 370 us on two threads against
 * 266 on one, 2^20 elements 0.8 to 1.4 ms against 1.1, 2^21 1.4 against
 * 2.2). For the JIT's row kernels the parts are whole tiles and chunks
 * (LStmt.par_unit): each call of a kernel is the one thread's call, so the
 * kernels' vector bodies and tails see the same elements. */

static void loop_threads(Low *w, LStmt *s) {
  const Ctx *c = w->c;
  int T = c->opt.api.threads;
  s->threads = 1;
  s->par = 0;
  s->par_unit = 1;
  if (T <= 1)
    return;
  const Shape ls = lower_space(c, s);
  const int flat = s->flat && s->iter.rank > 1;
  int64_t numel = 1, min = c->opt.api.threads_min_elems;
  for (int d = 0; d < ls.rank; d++)
    numel *= ls.d[d];
  if (numel < (min > 0 ? min : (int64_t)1 << 20))
    return;
  /* row kernels (emit_row.c): a part is whole tiles of rows along ta and
     whole chunks of a row along ra, so that every call is the one a
     single thread makes, on the same elements */
  RowTile rt = {-1, -1, 1, 1};
  if (s->row)
    rt = lower_row_tile(&ls);
  const Loops *L = w->L;
  for (int d = 0; d < ls.rank; d++) {
    int64_t unit = d == rt.ra ? ROW_CHUNK_ELEMS : d == rt.ta ? rt.T : 1;
    int64_t units = (ls.d[d] + unit - 1) / unit;
    int ok = units > 1;
    for (int k = s->first_acc; ok && k < L->nacc; k++) {
      const LAcc *a = &L->acc[k];
      const Shape *o = &c->g.nodes[a->node].shape;
      if (a->kind == LA_LOCAL)
        ok = 0;
      else if (a->kind == LA_SCRATCH) /* partial sums along the rows */
        ok = s->row ? d == rt.ra : d == ls.rank - 1;
      else
        ok = !flat && o->rank == ls.rank && o->d[d] == ls.d[d];
    }
    if (ok) {
      s->par = d;
      s->par_unit = unit;
      s->threads = units < T ? (int)units : T;
      return;
    }
  }
}

static void lower_loop(Low *w, int h) {
  const Plan *p = w->p;
  const Node *hn = &w->c->g.nodes[h];
  LStmt *s = stmt(w, LS_LOOP, h, &hn->shape);
  s->row = row_ok(w->c, p, w->t, h, ROWQ_LOOP, w->rowof);
  s->flat = lower_group_flat(w->c, p, h, &hn->shape);
  int64_t mc[MAX_RANK];
  max_of(&hn->shape, mc);
  for (int m = h; m >= 0; m = p->fnext[m]) {
    const Node *n = &w->c->g.nodes[m];
    if (n->op == OP_SUM) {
      reads(w, m, n->in[0], mc, 0, 0);
      int64_t row = plan_acc_row(w->c, p, m);
      if (row)
        acc(w, m, LA_SCRATCH, p->acc_off[m], row * 8, 8);
      else if (n->numel == 1)
        acc(w, m, LA_LOCAL, 0, 0, acc_esize(w));
      else {
        acc(w, m, LA_OWN, 0, 0, (int)w->es); /* into its own buffer */
        access(w, m, m, &n->shape, mc, 1);
      }
      if (row || n->numel == 1) /* the total stored after the loop */
        access_all(w, m, m, 1);
      member(w, s, m, 1, 0);
    } else {
      reads(w, m, m, mc, 1, 0);
      if (!p->local[m])
        access(w, m, m, &hn->shape, mc, 1);
      w->inloop[m] = 1;
      member(w, s, m, 0, !p->local[m]);
    }
  }
  for (int m = h; m >= 0; m = p->fnext[m])
    w->inloop[m] = 0;
  lower_hold(w, s);
  loop_threads(w, s);
}

/* how kernel node n runs on this target */
static LKernel kernel_of(const Low *w, const Node *n) {
  switch (n->op) {
  case OP_MATMUL:
    return plan_uses_gemm(w->c, n) ? LK_GEMM
           : w->t->aot_kernels     ? LK_MATMUL /* TinyCC's loops are slow */
                                   : LK_LOOPS;
  case OP_CONV2D: case OP_CONV2D_DX: case OP_CONV2D_DW:
    return w->t->gemm ? LK_GEMM : LK_LOOPS; /* through im2col, or direct */
  case OP_MAXPOOL: case OP_MAXPOOL_DX: case OP_AVGPOOL: case OP_AVGPOOL_DX:
    return LK_CALL;
  default:
    return LK_LOOPS;
  }
}

static void lower_node(Low *w, int id) {
  const Node *n = &w->c->g.nodes[id];
  LStmt *s = stmt(w, LS_NODE, id, &n->shape);
  s->row = row_ok(w->c, w->p, w->t, id,
                  op_kind(n->op) == K_RED ? ROWQ_SUM : ROWQ_LOOP, w->rowof);
  int64_t mc[MAX_RANK];
  int kind = op_kind(n->op);
  if (kind == K_EW || n->op == OP_CONST || n->op == OP_TRANSPOSE ||
      n->op == OP_SLICE) {
    s->flat = lower_flat_ok(w->c, w->p, id, &n->shape, 1);
    max_of(&n->shape, mc);
    reads(w, id, id, mc, 1, 0);
    access(w, id, id, &n->shape, mc, 1);
    member(w, s, id, 0, 1);
    if (kind == K_EW)
      loop_threads(w, s);
    return;
  }
  if (kind == K_RED) {
    const Node *x = &w->c->g.nodes[plan_resolve(w->c, n->in[0])];
    s->iter = x->shape;
    max_of(&x->shape, mc);
    reads(w, id, n->in[0], mc, 0, 0);
    if ((n->op == OP_SUM || n->op == OP_PROD) && n->numel == 1) {
      acc(w, id, LA_LOCAL, 0, 0, acc_esize(w));
      access_all(w, id, id, 1);
    } else {
      /* into the output, at the operand's coordinates with the reduced
         axes (size 1 in the result) at 0 */
      acc(w, id, LA_OWN, 0, 0, (int)w->es);
      access(w, id, id, &n->shape, mc, 1);
    }
    member(w, s, id, 1, 0);
    return;
  }
  /* a kernel: every operand read whole (from memory, or computed where
     it is read when the plan inlines it: pad, one-hot, ...), its result
     written whole; the matmul packing buffer is the plan's scratch */
  s->kernel = kernel_of(w, n);
  s->threads = s->kernel == LK_GEMM ? plan_gemm_threads(w->c, n) : 1;
  for (int k = 0; k < n->nin; k++) {
    const Node *x = &w->c->g.nodes[plan_resolve(w->c, n->in[k])];
    max_of(&x->shape, mc);
    reads(w, id, n->in[k], mc, 0, 0);
  }
  access_all(w, id, id, 1);
  member(w, s, id, 0, 1);
}

static void lower_store(Low *w, int o) {
  const Out *out = &w->c->g.outs[o];
  int v = plan_resolve(w->c, out->node);
  if (w->p->store[v] == o || out->home >= 0)
    return; /* computed in place, or an update that changes nothing */
  const Node *n = &w->c->g.nodes[v];
  LStmt *s = stmt(w, LS_STORE, v, &n->shape);
  s->out = o;
  s->flat = lower_flat_ok(w->c, w->p, v, &n->shape, 1);
  /* the JIT computes an expression's rows into the output; gradients that
     add into the caller's (--accumulate) keep the plain loop */
  s->row = !(out->is_grad && w->c->opt.api.accumulate) &&
           row_ok(w->c, w->p, w->t, v, ROWQ_STORE, w->rowof);
  member(w, s, v, 0, 1);
  int64_t mc[MAX_RANK];
  max_of(&n->shape, mc);
  reads(w, v, v, mc, 0, 0);
  loop_threads(w, s); /* no sums: along its outermost dimension */
  Loops *L = w->L;
  L->a = grow(L->a, &w->cap_a, L->na, sizeof *L->a);
  LAccess *a = &L->a[L->na++];
  memset(a, 0, sizeof *a);
  a->node = v;
  a->stmt = v;
  a->write = 1;
  a->buf.kind = LB_OUT;
  a->buf.idx = o;
  a->buf.bytes = n->numel * w->es;
  a->shape = n->shape;
  a->bad_dim = -1;
  a->esize = (int)w->es;
  a->end = n->numel * w->es;
}

static void finish(Loops *L) {
  for (int i = 0; i < L->ns; i++) {
    LStmt *s = &L->s[i];
    s->naccess = (i + 1 < L->ns ? L->s[i + 1].first_access : L->na) -
                 s->first_access;
    s->nacc = (i + 1 < L->ns ? L->s[i + 1].first_acc : L->nacc) - s->first_acc;
  }
}

/* Is stored node i a statement of its own (emit.c runs the schedule in
 * this order)? */
int lower_scheduled(const Ctx *c, const Plan *p, int i) {
  const Node *n = &c->g.nodes[i];
  return p->live[i] && !p->inl[i] && n->op != OP_INPUT &&
         n->op != OP_PARAM && n->op != OP_RESHAPE && n->op != OP_ID &&
         n->op != OP_DETACH && p->host[i] < 0;
}

/* A training step's output that is a param (or a view of one) holds the
 * value before the update: it is stored first. */
int lower_store_first(const Ctx *c, const Plan *p, int o) {
  return c->opt.mode == MODE_STEP && c->g.outs[o].home < 0 &&
         c->g.nodes[p->alias[plan_resolve(c, c->g.outs[o].node)]].op ==
             OP_PARAM;
}

Loops *lower_graph(Ctx *c, const Plan *p, const Target *t) {
  Loops *L = calloc(1, sizeof *L);
  if (!L)
    abort();
  lower_free(c->loops); /* kept by the Ctx, so an error frees it too */
  c->loops = L;
  Low w = {c, p, t, L, 0, 0, 0, 0, NULL, NULL, c->opt.api.f64 ? 8 : 4};
  w.inloop = calloc((size_t)c->g.n + 1, 1);
  w.rowof = calloc((size_t)c->g.n + 1, 1);
  if (!w.inloop || !w.rowof)
    abort();
  for (int o = 0; o < c->g.nouts; o++)
    if (lower_store_first(c, p, o))
      lower_store(&w, o);
  for (int i = 0; i < c->g.n; i++) {
    if (!lower_scheduled(c, p, i))
      continue;
    if (p->fnext[i] >= 0)
      lower_loop(&w, i);
    else
      lower_node(&w, i);
  }
  for (int o = 0; o < c->g.nouts; o++)
    if (!lower_store_first(c, p, o))
      lower_store(&w, o);
  free(w.inloop);
  free(w.rowof);
  finish(L);
  return L;
}

void lower_free(Loops *L) {
  if (!L)
    return;
  free(L->s);
  free(L->a);
  free(L->acc);
  free(L->m);
  free(L);
}

/* ---- the checker ------------------------------------------------------- */

static const char *buf_kind[] = {"work", "arg", "out", "state"};

/* NULL, or what is wrong with the statements (a static message in buf). */
static const char *check(const Ctx *c, const Plan *p, const Loops *L,
                         char *buf, size_t n) {
  for (int i = 0; i < L->na; i++) {
    const LAccess *a = &L->a[i];
    const char *rw = a->write ? "writes" : "reads";
    if (a->bad_dim >= 0) {
      snprintf(buf, n, "the loop of t%d %s t%d outside its axis %d", a->stmt,
               rw, a->node, a->bad_dim);
      return buf;
    }
    if (a->buf.kind == LB_WORK && a->buf.off < 0) {
      snprintf(buf, n, "the loop of t%d %s t%d, which has no memory", a->stmt,
               rw, a->node);
      return buf;
    }
    if (a->end > a->buf.bytes) {
      snprintf(buf, n, "the loop of t%d %s byte %lld of t%d's %s buffer of "
               "%lld bytes", a->stmt, rw, (long long)a->end - 1, a->node,
               buf_kind[a->buf.kind], (long long)a->buf.bytes);
      return buf;
    }
    if (a->buf.kind == LB_WORK && a->buf.off + a->buf.bytes > p->work_bytes) {
      snprintf(buf, n, "t%d's buffer ends at byte %lld of a %lld-byte "
               "workspace", a->node, (long long)(a->buf.off + a->buf.bytes),
               (long long)p->work_bytes);
      return buf;
    }
  }
  for (int i = 0; i < L->nacc; i++) {
    const LAcc *a = &L->acc[i];
    if (a->kind == LA_SCRATCH) {
      /* partial sums: 8-byte aligned in the workspace, in the scratch
         after the buffers or in the sum's own slice, never in a caller's
         buffer */
      LBuf own = lower_buf(c, p, a->node);
      int in_own = own.kind == LB_WORK && a->off == own.off &&
                   a->bytes <= own.bytes;
      if (a->off < 0 || a->off % 8 || a->off + a->bytes > p->work_bytes ||
          (!in_own && a->off < p->acc_base)) {
        snprintf(buf, n, "the partial sums of t%d (%lld bytes at %lld) are "
                 "not in scratch the plan owns", a->node,
                 (long long)a->bytes, (long long)a->off);
        return buf;
      }
    } else if (a->kind == LA_OWN) {
      const Node *x = &c->g.nodes[a->node];
      if (a->esize != (x->dt == DT_I32 ? 4 : (c->opt.api.f64 ? 8 : 4))) {
        snprintf(buf, n, "the accumulator of t%d is not of its buffer's type",
                 a->node);
        return buf;
      }
    }
  }
  return NULL;
}

void lower_check(Ctx *c, const Plan *p, const Loops *L) {
  char buf[256];
  const char *why = check(c, p, L, buf, sizeof buf);
  if (why)
    error_plain(c, "internal error (please report): loop check: %s", why);
}

/* ---- --emit loops ------------------------------------------------------ */

static void put_buf(StrBuf *o, const Ctx *c, const LBuf *b) {
  switch (b->kind) {
  case LB_WORK:
    sb_printf(o, "work+%lld (%lld bytes)", (long long)b->off,
              (long long)b->bytes);
    break;
  case LB_ARG:
    sb_printf(o, "arg %s (%lld bytes)", c->g.args[b->idx].name,
              (long long)b->bytes);
    break;
  case LB_STATE:
    sb_printf(o, "state+%lld (%lld bytes)", (long long)b->off,
              (long long)b->bytes);
    break;
  case LB_OUT:
    sb_printf(o, "out %s (%lld bytes)", c->g.outs[b->idx].name,
              (long long)b->bytes);
    break;
  }
}

void lower_dump(Ctx *c, const Plan *p, const Loops *L, const Target *t,
                StrBuf *o) {
  sb_printf(o, "# loops of %s (target %s, %s): %d statements, workspace %lld "
            "bytes\n", c->name, t->name, c->opt.api.f64 ? "f64" : "f32", L->ns,
            (long long)p->work_bytes);
  sb_puts(o, "# each access: the buffer, and the last byte the loop nest "
          "reaches in it\n");
  for (int i = 0; i < L->ns; i++) {
    const LStmt *s = &L->s[i];
    const Node *n = &c->g.nodes[s->node];
    char sh[160];
    shape_str(&s->iter, sh, sizeof sh);
    static const char *const kern[] = {"", "", " (gemm)", " (matmul call)",
                                        " (call)"};
    char thr[128] = "";
    if (s->threads > 1 && s->kernel == LK_GEMM)
      snprintf(thr, sizeof thr, " (gemm, %d threads)", s->threads);
    else if (s->threads > 1 && s->row)
      snprintf(thr, sizeof thr, " (row kernels, %s%d threads, parts along "
               "dimension %d in units of %lld)",
               s->flat && s->iter.rank > 1 ? "flat, " : "", s->threads,
               s->par, (long long)s->par_unit);
    else if (s->threads > 1)
      snprintf(thr, sizeof thr, " (%s%d threads, parts along dimension %d)",
               s->flat && s->iter.rank > 1 ? "flat, " : "", s->threads,
               s->par);
    const char *how = s->threads > 1                 ? thr
                      : s->row                       ? " (row kernels)"
                      : s->flat && s->iter.rank > 1 ? " (flat)"
                                                     : kern[s->kernel];
    if (s->kind == LS_LOOP) {
      sb_printf(o, "loop %s over %s%s:", op_name(n->op), sh, how);
      for (int k = 0; k < s->nmembers; k++) {
        const LMember *m = &L->m[s->first_member + k];
        sb_printf(o, " t%d%s", m->node,
                  m->acc < 0 && !m->store ? "(local)" : "");
      }
      sb_puts(o, "\n");
    } else if (s->kind == LS_STORE) {
      sb_printf(o, "store %s over %s%s: t%d\n", c->g.outs[s->out].name, sh,
                how, s->node);
    } else {
      sb_printf(o, "%s t%d %s over %s%s\n", s->kernel ? "kernel" : "node",
                s->node, op_name(n->op), sh, how);
    }
    for (int k = 0; k < s->nacc; k++) {
      const LAcc *a = &L->acc[s->first_acc + k];
      if (a->kind == LA_LOCAL)
        sb_printf(o, "  acc   t%d: a local (%d-byte)\n", a->node, a->esize);
      else if (a->kind == LA_SCRATCH)
        sb_printf(o, "  acc   t%d: partial sums at work+%lld (%lld bytes)\n",
                  a->node, (long long)a->off, (long long)a->bytes);
      else if (a->held)
        sb_printf(o, "  acc   t%d: its own buffer, held in a local over "
                  "dimensions %d-%d\n", a->node, s->hold, s->iter.rank - 1);
      else
        sb_printf(o, "  acc   t%d: its own buffer\n", a->node);
    }
    for (int k = 0; k < s->naccess; k++) {
      const LAccess *a = &L->a[s->first_access + k];
      sb_printf(o, "  %s t%d ", a->write ? "write" : "read ", a->node);
      put_buf(o, c, &a->buf);
      sb_printf(o, " to byte %lld\n", (long long)a->end - 1);
    }
    if (s->kernel == LK_GEMM) /* the packed kernel's scratch */
      sb_printf(o, "  pack  work+%lld\n", (long long)p->pack_off);
  }
}
