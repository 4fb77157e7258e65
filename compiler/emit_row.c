/* emit_row.c — the JIT's row mode (see below). */
#include <ctype.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "emit.h"

/* ---- JIT row mode ---------------------------------------------------------
 * TinyCC compiles an element-wise loop body into scalar code that keeps
 * every value on the stack. For f32 the JIT instead runs a fused loop, and
 * an output's store of an expression, as calls of the ahead-of-time,
 * vectorized row kernels (kernels.c,
 * agc_row_f32): one call per operation per tile of at most ROW_CHUNK
 * elements, a chunk of one row of the last axis longer than 1, or several
 * whole short rows. Loops using an operation without a row kernel, or
 * reading an operand other than along the row axis, keep the scalar form.
 */

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
  return em_fmt(e, "rw[%d]", e->nrows++);
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
    const char *k = em_fmt(e, "k%d", e->nvals++);
    em_line(e, "const float %s = %s;", k, em_lit(e, n->val));
    r.ptr = em_fmt(e, "&%s", k);
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
    r.ptr = em_fmt(e, "&%s", em_load(e, id, idx));
    r.cs = e->flat || axc >= 0;
    r.rs = axt >= 0 ? em_fmt(e, "%lld", (long long)stride_of(&n->shape, axt))
                    : "0";
  } else if (n->op == OP_BCAST) {
    r = row_val(e, n->in[0],
                em_bcast_idx(e, ND(e, R(e, n->in[0])), n->shape.rank, idx), NULL);
  } else {
    int op = row_op(e, n);
    if (op < 0) {
      e->row_fail = 1;
      return r;
    }
    int R_ = n->shape.rank;
    RowV a = row_val(e, n->in[0], em_bcast_idx(e, ND(e, R(e, n->in[0])), R_, idx),
                     NULL);
    RowV b = {"0", "0", 0};
    if (n->op == OP_POW)
      b = a;
    else if (n->nin == 2)
      b = row_val(e, n->in[1],
                  em_bcast_idx(e, ND(e, R(e, n->in[1])), R_, idx), NULL);
    if (e->row_fail)
      return r;
    r.ptr = dst ? dst : row_scratch(e);
    r.rs = "rn", r.cs = 1;
    em_line(e, "agc_row_f32(%d, rtn, rn, %s, %s, %d, %s, %s, %d, %s, rn); /* %s */",
         op, a.ptr, a.rs, a.cs, b.ptr, b.rs, b.cs, r.ptr, row_op_names[op]);
    return r;
  }
  if (dst && !e->row_fail) { /* the result must land in dst */
    em_line(e, "agc_row_f32(%d, rtn, rn, %s, %s, %d, 0, 0, 0, %s, rn); /* COPY */",
         ROW_COPY, r.ptr, r.rs, r.cs, dst);
    r.ptr = dst, r.rs = "rn", r.cs = 1;
  }
  return r;
}

/* One member of a row-mode loop (statement st) over s, at row index idx:
 * a sum adds the rows into its accumulator; a value is computed into its
 * buffer's rows (an output's store: the output's), or into scratch rows if
 * it is a local. */
static void row_member(E *e, const LStmt *st, const LMember *mb,
                       const Shape *s, char **idx, RowTile tile) {
  int m = mb->node;
  Node *n = ND(e, m);
  const LAcc *a = ACC(e, mb);
  if (!a) {
    const char *dst;
    if (!mb->store) {
      dst = row_scratch(e);
    } else {
      dst = em_fmt(e, "r%d", m);
      em_line(e, "float *const %s = &%s[%s];", dst,
              st->kind == LS_STORE
                  ? em_fmt(e, "out_%s", e->c->g.outs[st->out].name)
                  : em_bufname(e, m),
              em_offset(e, s, idx));
    }
    row_val(e, m, idx, dst);
    e->rowof[m] = dst;
    return;
  }
  RowV v = row_val(e, n->in[0], idx, NULL);
  if (e->row_fail)
    return;
  if (a->kind == LA_SCRATCH) {
    em_line(e, "agc_row_accd_f32(rtn, rn, %s, %s, %d, acc%d + rc);", v.ptr,
         v.rs, v.cs, m);
  } else if (a->kind == LA_LOCAL) {
    em_line(e, "acc%d += agc_row_sum_f32(rtn, rn, %s, %s, %d);", m, v.ptr,
         v.rs, v.cs);
  } else if (n->shape.d[tile.ra] == tile.L) {
    /* the sum keeps the row axis: rows add into rows */
    int64_t ors = tile.ta >= 0 && n->shape.d[tile.ta] != 1
                      ? stride_of(&n->shape, tile.ta) : 0;
    em_line(e, "agc_row_f32(%d, rtn, rn, %s, %s, %d, 0, 0, 0, &%s[%s], "
         "%lld); /* ACC */", ROW_ACC, v.ptr, v.rs, v.cs, em_bufname(e, m),
         em_offset(e, &n->shape, idx), (long long)ors);
  } else if (tile.T == 1 || n->shape.d[tile.ta] == 1) {
    /* the sum adds the whole tile (its rows, along ta, too) */
    em_line(e, "%s[%s] += (float)agc_row_sum_f32(rtn, rn, %s, %s, %d);",
         em_bufname(e, m), em_offset(e, &n->shape, idx), v.ptr, v.rs, v.cs);
  } else {
    e->row_fail = 1; /* one sum per row of a tile: no kernel for it */
  }
}

/* The loops around the rows: the outer axes, the tiles of short rows
 * along axis ta (rt, rtn of them), the chunks of each row (rc, rn long);
 * its members inside. */
static void row_nest(E *e, const LStmt *st, const Shape *s, RowTile tile) {
  int ra = tile.ra, ta = tile.ta;
  int64_t L = tile.L, T = tile.T;
  Shape outer = *s;
  outer.d[ra] = 1;
  if (ta >= 0)
    outer.d[ta] = 1;
  char **idx = em_loop_open(e, &outer, "i");
  idx[ra] = "rc";
  if (ta >= 0) {
    idx[ta] = "rt";
    if (e->par == ta) /* a part: tiles lo to hi (emit.c, em_part_begin) */
      em_line(e, "for (long rt = lo * %lld, rte = hi * %lld < %lld ? hi * %lld "
              ": %lld; rt < rte; rt += %lld) {", (long long)T, (long long)T,
              (long long)s->d[ta], (long long)T, (long long)s->d[ta],
              (long long)T);
    else
      em_line(e, "for (long rt = 0; rt < %lld; rt += %lld) {",
              (long long)s->d[ta], (long long)T);
    e->ind++;
    em_line(e, "const long rtn = %lld - rt < %lld ? %lld - rt : %lld;",
         (long long)s->d[ta], (long long)T, (long long)s->d[ta], (long long)T);
  } else {
    em_line(e, "{");
    e->ind++;
    em_line(e, "const long rtn = 1;");
  }
  if (e->par == ra) /* a part: chunks lo to hi */
    em_line(e, "for (long rc = lo * %d, rce = hi * %d < %lld ? hi * %d : %lld; "
            "rc < rce; rc += %d) {", ROW_CHUNK, ROW_CHUNK, (long long)L,
            ROW_CHUNK, (long long)L, ROW_CHUNK);
  else
    em_line(e, "for (long rc = 0; rc < %lld; rc += %d) {", (long long)L,
            ROW_CHUNK);
  e->ind++;
  em_line(e, "const long rn = %lld - rc < %d ? %lld - rc : %d;", (long long)L,
       ROW_CHUNK, (long long)L, ROW_CHUNK);
  for (int k = 0; k < st->nmembers && !e->row_fail; k++)
    row_member(e, st, MEM(e, st, k), s, idx, tile);
  for (int k = 0; k < st->nmembers; k++)
    e->rowof[MEM(e, st, k)->node] = NULL;
  e->ind--;
  em_line(e, "}");
  e->ind--;
  em_line(e, "}");
  em_loop_close(e, &outer);
}

/* The loop of statement st (a stored node and the nodes fused into it, an
 * output's store of an expression, or a sum node) in row mode, which
 * lower.c (row_ok) has decided it can be; 0, with nothing written, if
 * writing it finds otherwise (then emit.c reports an internal error: the
 * two must agree). */
int em_row_loop(E *e, const LStmt *st) {
  int h = st->node;
  const Node *hn = ND(e, h);
  const int sum_node = st->kind == LS_NODE && op_kind(hn->op) == K_RED;
  if (!e->t->row_kernels || e->c->opt.api.f64 ||
      (sum_node ? hn->op != OP_SUM
                : op_kind(hn->op) != K_EW || hn->op == OP_CONST))
    return 0;
  /* written aside: a loop that cannot be done this way leaves no trace */
  StrBuf *saved = e->o, tmp = {0};
  int ind = e->ind, nvals = e->nvals, ncl = e->nclosers, maxrows = e->maxrows;
  e->o = &tmp;
  e->row_fail = 0;
  e->nrows = 0;
  Shape s = st->iter;
  if (st->kind == LS_STORE) /* an output's store: its value's rows */
    em_line(e, "/* store %s */", e->c->g.outs[st->out].name);
  else
    em_comments(e, st);
  if (st->flat && s.rank != 1) {
    Shape f = {1, {ND(e, h)->numel}};
    s = f;
  }
  if (s.rank == 0) {
    Shape f = {1, {1}};
    s = f;
  }
  e->flat = st->flat;
  em_sums_open(e, st);
  /* rows run along the last axis longer than 1 (ra); short rows are
     taken several at a time along the axis before it (ta) */
  RowTile tile = lower_row_tile(&s);
  if (tile.T * tile.L < 8)
    e->row_fail = 1; /* calls would cost more than TinyCC's loop */
  PartSave sv;
  const int parts = st->threads > 1; /* lower.c, loop_threads */
  if (parts)
    em_part_begin(e, st, &sv);
  row_nest(e, st, &s, tile);
  if (parts && e->row_fail) {
    em_part_abandon(e, &sv);
  } else if (parts) {
    if (e->nrows > e->part_maxrows)
      e->part_maxrows = e->nrows;
    e->maxrows = maxrows; /* the part function's rows are its own */
    em_part_end(e, st, &sv);
  }
  e->flat = 0;
  em_sums_close(e, st);
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
