/* plan_mem.c — the planner's memory steps: in-place writes, workspace
 * offsets (a coalescing free list, then greedy-by-size packing, the smaller
 * kept), the plan-owned scratch (matmul packing, rows of partial sums),
 * and the check that verifies the plan independently of how it was made. */
#include <stdlib.h>
#include <string.h>

#include "plan.h"

/* The released slices of the workspace: a sorted array of free intervals,
 * neighbours merged as they are released, so that a large buffer fits
 * where several small ones were. A buffer takes the smallest interval that
 * holds it (best fit), or extends the last interval when it ends at the
 * top. At most FREE_MAX intervals are kept (a slice released beyond that
 * is not reused), so every step costs O(FREE_MAX) at worst and planning
 * stays linear in the graph. */
#define FREE_MAX 1024
typedef struct {
  int64_t off[FREE_MAX], size[FREE_MAX];
  int n;
} FreeList;

static void free_put(FreeList *f, int64_t off, int64_t size) {
  int lo = 0, hi = f->n; /* first interval after off */
  while (lo < hi) {
    int mid = (lo + hi) / 2;
    if (f->off[mid] < off)
      lo = mid + 1;
    else
      hi = mid;
  }
  int prev = lo > 0 && f->off[lo - 1] + f->size[lo - 1] == off;
  int next = lo < f->n && off + size == f->off[lo];
  if (prev && next) {
    f->size[lo - 1] += size + f->size[lo];
    memmove(f->off + lo, f->off + lo + 1, sizeof(int64_t) * (size_t)(f->n - lo - 1));
    memmove(f->size + lo, f->size + lo + 1, sizeof(int64_t) * (size_t)(f->n - lo - 1));
    f->n--;
  } else if (prev) {
    f->size[lo - 1] += size;
  } else if (next) {
    f->off[lo] = off;
    f->size[lo] += size;
  } else if (f->n < FREE_MAX) {
    memmove(f->off + lo + 1, f->off + lo, sizeof(int64_t) * (size_t)(f->n - lo));
    memmove(f->size + lo + 1, f->size + lo, sizeof(int64_t) * (size_t)(f->n - lo));
    f->off[lo] = off;
    f->size[lo] = size;
    f->n++;
  }
}

/* An offset for size bytes; *top grows when nothing released holds it. */
static int64_t free_take(FreeList *f, int64_t size, int64_t *top) {
  int best = -1;
  for (int i = 0; i < f->n; i++)
    if (f->size[i] >= size && (best < 0 || f->size[i] < f->size[best]))
      best = i;
  if (best < 0 && f->n && f->off[f->n - 1] + f->size[f->n - 1] == *top)
    best = f->n - 1; /* the last interval, extended past the top */
  if (best < 0) {
    int64_t at = *top;
    *top += size;
    return at;
  }
  int64_t at = f->off[best];
  if (f->size[best] < size) /* at the top: grow the workspace */
    *top = at + size, f->size[best] = size;
  f->off[best] += size;
  f->size[best] -= size;
  if (f->size[best] == 0) {
    memmove(f->off + best, f->off + best + 1, sizeof(int64_t) * (size_t)(f->n - best - 1));
    memmove(f->size + best, f->size + best + 1, sizeof(int64_t) * (size_t)(f->n - best - 1));
    f->n--;
  }
  return at;
}

/* In place: may element-wise node i's buffer be b's, which i reads for
 * the last time? Yes if every read of b in i's loop (i and the nodes
 * inlined into it) is at i's own index, so each element is read before
 * the same element is written. ident: the path from i is element-wise
 * over shape s without broadcasts. */
static int inplace_walk(const Ctx *c, const Plan *p, int id, int b,
                        const Shape *s, int ident, int depth) {
  id = plan_resolve(c, id);
  const Node *n = &c->g.nodes[id];
  if (p->alias[id] == b)
    return ident && same_shape(&n->shape, s);
  if (op_kind(n->op) == K_LEAF || !p->inl[id])
    return 1;
  if (depth > 64)
    return 0;
  int ew = op_kind(n->op) == K_EW && n->op != OP_BCAST;
  for (int k = 0; k < n->nin; k++) {
    int a = plan_resolve(c, n->in[k]);
    if (!inplace_walk(c, p, a, b, s, ident && ew &&
                      same_shape(&c->g.nodes[a].shape, s), depth + 1))
      return 0;
  }
  return 1;
}

/* Does node id's loop body (id and what is inlined into it) not read b? */
static int reads_not(const Ctx *c, const Plan *p, int id, int b, int depth) {
  const Node *n = &c->g.nodes[id];
  if (depth > 64)
    return 0;
  for (int k = 0; k < n->nin; k++) {
    int a = plan_resolve(c, n->in[k]);
    if (p->alias[a] == b)
      return 0;
    if (p->inl[a] && op_kind(c->g.nodes[a].op) != K_LEAF &&
        !reads_not(c, p, a, b, depth + 1))
      return 0;
  }
  return 1;
}

/* The buffer i may take over (plan_allocate), or -1: a workspace buffer
 * of i's size, last read by i's own loop, at i's index only. Candidates
 * are the stored values i's expression reads. */
static int inplace_victim(PS *s, int i, int64_t bytes, const char *handed) {
  const Ctx *c = s->c;
  const Plan *p = s->p;
  const Node *x = &s->g->nodes[i];
  if (op_kind(x->op) != K_EW || x->op == OP_BCAST || p->host[i] >= 0)
    return -1;
  int stack[64], sp = 0;
  stack[sp++] = i;
  while (sp) {
    int id = stack[--sp];
    const Node *n = &s->g->nodes[id];
    for (int k = 0; k < n->nin; k++) {
      int a = plan_resolve(c, n->in[k]);
      int b = p->alias[a];
      if (p->inl[a] && op_kind(s->g->nodes[a].op) != K_LEAF) {
        if (sp < 64)
          stack[sp++] = a;
        continue;
      }
      if (p->off[b] < 0 || handed[b] || s->last[b] != i ||
          p->size[b] != bytes || plan_acc_row(c, p, b))
        continue;
      /* every read of b through i's operands at i's own index (i itself
         is stored, so the walk starts at its operands) */
      int ok = 1;
      for (int k2 = 0; k2 < x->nin && ok; k2++) {
        int a2 = plan_resolve(c, x->in[k2]);
        ok = inplace_walk(c, p, a2, b, &x->shape,
                          same_shape(&s->g->nodes[a2].shape, &x->shape), 0);
      }
      /* the loop's other members run after i's store: they must not read
         b at all */
      for (int m = p->fnext[i]; m >= 0 && ok; m = p->fnext[m])
        ok = reads_not(c, p, m, b, 0);
      if (ok)
        return b;
    }
  }
  return -1;
}

/* Allocation in schedule order. A buffer is released after its last
 * reader, into the free list (above); a new buffer takes over an operand
 * it overwrites in place (inplace_victim), else the free list's best fit,
 * else fresh space at the top. Every step is O(FREE_MAX) at most, so
 * planning stays linear. */
void plan_allocate(PS *s) {
  Ctx *c = s->c;
  Graph *g = s->g;
  Plan *p = s->p;
  int *last = s->last;
  int n = s->n;
  /* outputs are read by the caller, after the last node */
  for (int o = 0; o < g->nouts; o++) {
    int v = plan_resolve(c, g->outs[o].node);
    if (!p->inl[v])
      last[p->alias[v]] = s->END;
  }
  int *relhead = malloc(sizeof(int) * (size_t)(n + 2));
  int *relnext = malloc(sizeof(int) * (size_t)(n + 1));
  int64_t *size = p->size;
  FreeList *pool = calloc(1, sizeof *pool);
  if (!pool)
    abort();
  for (int i = 0; i <= n + 1; i++)
    relhead[i] = -1;
  int64_t top = 0;
  int released = 0; /* positions whose buffers are back in the pool */
  char *handed = calloc((size_t)n + 1, 1); /* taken over in place */
  for (int i0 = 0; i0 < n; i0++) {
    if (p->host[i0] >= 0)
      continue; /* placed with its host, whose loop computes it */
    for (; released < i0; released++)
      for (int b2 = relhead[released]; b2 >= 0; b2 = relnext[b2])
        if (!handed[b2])
          free_put(pool, p->off[b2], size[b2]);
    /* the node, then the nodes its loop computes too */
    for (int i = i0; i >= 0; i = p->fnext[i]) {
      Node *x = &g->nodes[i];
      if (!p->live[i] || p->inl[i] || x->op == OP_INPUT ||
          x->op == OP_PARAM || x->op == OP_RESHAPE || x->op == OP_ID ||
          x->op == OP_DETACH || p->store[i] >= 0 || p->local[i])
        continue;
      int64_t bytes = x->numel * elem_size(c, x);
      int64_t rows = plan_acc_row(c, p, i);
      if (rows * 8 > bytes)
        bytes = rows * 8; /* its row of double partial sums (emit.c) */
      size[i] = (bytes + ALIGN - 1) / ALIGN * ALIGN;
      p->naive_bytes += size[i];
      int64_t at = -1;
      int victim = inplace_victim(s, i, size[i], handed);
      if (victim >= 0) { /* its last reader writes over it */
        handed[victim] = 1;
        at = p->off[victim];
        last[victim] = i0 - 1;
        s->inplace_of[i] = victim;
      }
      if (at < 0)
        at = free_take(pool, size[i], &top);
      p->off[i] = at;
      /* released once read for the last time; outputs' last use is END */
      int64_t l = last[i] < i0 ? i0 : last[i];
      if (l < n) {
        relnext[i] = relhead[l];
        relhead[l] = i;
      }
    }
  }
  free(pool);
  free(relhead);
  free(relnext);
  free(handed);
  s->top = top;
}

/* Packing, when the graph is small enough for it: the buffers again, by
 * size, largest first, each at the lowest offset where it overlaps no
 * placed buffer live at the same time (TensorFlow Lite's "greedy by size"
 * arena planner). Allocation in schedule order (above) cannot foresee a
 * large buffer that comes late, and leaves it a gap of small holes; this
 * plan is kept when it needs less. A buffer and the one whose loop writes
 * over it (in place) are one group: one offset, their lifetimes joined. */
#define PACK_MAX 3000
typedef struct {
  int64_t size, start, end, off;
  int lead;
} PackItem;

static int by_size(const void *a, const void *b) {
  const PackItem *x = a, *y = b;
  if (x->size != y->size)
    return x->size > y->size ? -1 : 1;
  return x->start < y->start ? -1 : x->start > y->start;
}

static int by_off(const void *a, const void *b) {
  const PackItem *x = *(PackItem *const *)a, *y = *(PackItem *const *)b;
  return x->off < y->off ? -1 : x->off > y->off;
}

void plan_pack(PS *s) {
  Plan *p = s->p;
  int n = s->n, ng = 0;
  int *group = malloc(sizeof(int) * ((size_t)n + 1));
  for (int i = 0; i < n; i++)
    group[i] = -1;
  for (int i = 0; i < n; i++)
    if (p->off[i] >= 0 && s->inplace_of[i] < 0)
      group[i] = ng++;
  if (ng > PACK_MAX || ng < 2) {
    free(group);
    return;
  }
  PackItem *it = calloc((size_t)ng, sizeof *it);
  for (int g = 0; g < ng; g++)
    it[g].start = INT64_MAX, it[g].end = -1;
  for (int i = 0; i < n; i++) { /* victims come before their takers */
    if (p->off[i] < 0)
      continue;
    if (group[i] < 0)
      group[i] = group[s->inplace_of[i]];
    PackItem *q = &it[group[i]];
    int64_t a = p->host[i] >= 0 ? p->host[i] : i;
    int64_t e = s->last[i] < a ? a : s->last[i];
    if (a < q->start)
      q->start = a;
    if (e > q->end)
      q->end = e;
    if (p->size[i] > q->size)
      q->size = p->size[i];
    q->lead = group[i];
  }
  for (int g = 0; g < ng; g++)
    it[g].lead = g;
  qsort(it, (size_t)ng, sizeof *it, by_size);
  PackItem **live = malloc(sizeof *live * (size_t)ng);
  int64_t top = 0;
  for (int k = 0; k < ng; k++) {
    int nl = 0;
    for (int j = 0; j < k; j++)
      if (it[j].start <= it[k].end && it[k].start <= it[j].end)
        live[nl++] = &it[j];
    qsort(live, (size_t)nl, sizeof *live, by_off);
    int64_t at = 0;
    for (int j = 0; j < nl; j++) {
      if (live[j]->off >= at + it[k].size)
        break; /* the gap before it holds the buffer */
      if (live[j]->off + live[j]->size > at)
        at = live[j]->off + live[j]->size;
    }
    it[k].off = at;
    if (at + it[k].size > top)
      top = at + it[k].size;
  }
  if (top < s->top) {
    int64_t *goff = malloc(sizeof(int64_t) * (size_t)ng);
    for (int k = 0; k < ng; k++)
      goff[it[k].lead] = it[k].off;
    for (int i = 0; i < n; i++)
      if (p->off[i] >= 0)
        p->off[i] = goff[group[i]];
    s->top = top;
    free(goff);
  }
  free(live);
  free(it);
  free(group);
}

/* Scratch the plan owns beside the values: one packing buffer for
 * whichever matmul or conv runs (they run one by one; a conv also keeps its
 * im2col matrix there), then the rows of double partial sums of the
 * whole-tensor sums in fused loops: in the sum's own workspace buffer
 * (sized for them by plan_allocate), else, for a sum stored straight into
 * an output, in scratch of their own (never in the caller's buffer), laid
 * out per loop: loops run one at a time, so they all share it. */
void plan_scratch(PS *s) {
  Ctx *c = s->c;
  Graph *g = s->g;
  Plan *p = s->p;
  int n = s->n;
  int64_t top = s->top;
  int64_t pack = 0;
  int64_t es = c->opt.api.f64 ? 8 : 4;
  for (int i = 0; i < n; i++) {
    Node *x = &g->nodes[i];
    if (p->live[i] && target_get(c->opt.target)->gemm &&
        (x->op == OP_CONV2D || x->op == OP_CONV2D_DX ||
         x->op == OP_CONV2D_DW)) {
      Shape sa = g->nodes[plan_resolve(c, x->in[0])].shape;
      Shape sb = g->nodes[plan_resolve(c, x->in[1])].shape;
      ConvGeom cg = conv_geometry(x, &sa, &sb);
      int64_t b = (kernel_pack_elems(c->opt.api.f64, cg.M, cg.N, cg.K) + cg.col) * es;
      if (b > pack)
        pack = b;
    }
    if (p->live[i] && x->op == OP_MATMUL && plan_uses_gemm(c, x)) {
      int64_t M, N, K, each; /* each thread its own scratch */
      plan_gemm_dims(c, x, &M, &N, &K, &each);
      int64_t b = each * plan_gemm_threads(c, x) * es;
      if (b > pack)
        pack = b;
    }
  }
  p->pack_off = pack ? top : -1;
  top += (pack + ALIGN - 1) / ALIGN * ALIGN;
  s->acc_base = top;
  p->acc_base = top;
  int64_t accmax = 0;
  for (int h = 0; h < n; h++) {
    if (p->host[h] >= 0 || p->fnext[h] < 0)
      continue;
    int64_t at = 0;
    for (int m = p->fnext[h]; m >= 0; m = p->fnext[m]) {
      int64_t rows = plan_acc_row(c, p, m);
      if (rows && p->off[m] >= 0) {
        p->acc_off[m] = p->off[m];
      } else if (rows) {
        p->acc_off[m] = top + at;
        at += rows * 8;
      }
    }
    if (at > accmax)
      accmax = at;
  }
  p->work_bytes = top + (accmax + ALIGN - 1) / ALIGN * ALIGN;
}

/* The plan checked against the facts it must respect, independently of
 * how the steps above computed it, as the IR checker checks the passes: an
 * error here is a bug of agc, reported instead of generating code that
 * would touch memory it does not own.
 *   - every workspace buffer holds its value (and its partial sums), lies
 *     below the packing scratch, and is free while it is live: no two
 *     buffers live at the same time share a byte;
 *   - the partial sums of a fused sum lie in the sum's own buffer or in
 *     the scratch after the packing buffer, inside the workspace: never in
 *     a caller's buffer. */
void plan_check(PS *s) {
  Ctx *c = s->c;
  Graph *g = s->g;
  Plan *p = s->p;
  int n = s->n;
  int64_t below = p->pack_off >= 0 ? p->pack_off : s->top;
  /* one owner per ALIGN block of the workspace, at most 4M blocks */
  int64_t gran = ALIGN;
  while (below / gran > (4 << 20))
    gran *= 2;
  int64_t nblk = below / gran + 1;
  int *owner = malloc(sizeof(int) * (size_t)nblk);
  int *at = malloc(sizeof(int) * (size_t)(n + 2));   /* allocated at pos */
  int *end = malloc(sizeof(int) * (size_t)(n + 2));  /* released after pos */
  int *nexta = malloc(sizeof(int) * (size_t)(n + 1));
  int *nexte = malloc(sizeof(int) * (size_t)(n + 1));
  const char *bad = NULL;
  int who = -1;
  for (int64_t k = 0; k < nblk; k++)
    owner[k] = -1;
  for (int i = 0; i <= n + 1; i++)
    at[i] = end[i] = -1;
  for (int i = 0; i < n && !bad; i++) {
    if (p->off[i] < 0)
      continue;
    const Node *x = &g->nodes[i];
    int64_t need = x->numel * elem_size(c, x), rows = plan_acc_row(c, p, i);
    if (p->acc_off[i] == p->off[i] && rows * 8 > need)
      need = rows * 8;
    if (p->size[i] < need || p->off[i] % ALIGN || p->off[i] + p->size[i] > below)
      bad = "a buffer too small, misaligned or over the scratch", who = i;
    int a = p->host[i] >= 0 ? p->host[i] : i;
    int64_t l = p->last[i] < a ? a : p->last[i];
    nexta[i] = at[a], at[a] = i;
    if (l < n)
      nexte[i] = end[l], end[l] = i;
  }
  int64_t live = 0; /* bytes of the buffers live at t */
  for (int t = 0; t < n && !bad; t++) {
    if (t > 0) /* buffers last read at t - 1 are free again */
      for (int i = end[t - 1]; i >= 0; i = nexte[i]) {
        live -= p->size[i];
        for (int64_t k = p->off[i] / gran;
             k * gran < p->off[i] + p->size[i]; k++)
          owner[k] = -1;
      }
    for (int i = at[t]; i >= 0; i = nexta[i])
      live += p->size[i];
    if (live > p->live_bytes)
      p->live_bytes = live;
    for (int i = at[t]; i >= 0 && !bad; i = nexta[i])
      for (int64_t k = p->off[i] / gran;
           k * gran < p->off[i] + p->size[i] && !bad; k++) {
        if (owner[k] >= 0 && owner[k] != i)
          bad = "two live buffers share memory", who = i;
        owner[k] = i;
      }
  }
  for (int m = 0; m < n && !bad; m++) {
    int64_t rows = plan_acc_row(c, p, m);
    if (!rows || p->host[m] < 0 || !p->live[m] || p->inl[m])
      continue;
    int64_t a = p->acc_off[m];
    if (a < 0 || a + rows * 8 > p->work_bytes ||
        (a != p->off[m] && a < s->acc_base))
      bad = "partial sums outside the scratch the plan owns", who = m;
  }
  /* an argument's memory written in place (a training step) is read
     before, or by the writing loop at the same index, never after */
  int64_t *wpos = calloc((size_t)g->n + 1, sizeof *wpos);
  for (int i = 0; i < n; i++)
    wpos[i] = -1;
  for (int o = 0; o < g->nouts; o++) {
    int v = plan_resolve(c, g->outs[o].node), h = g->outs[o].home;
    if (h >= 0 && p->store[v] == o)
      wpos[g->args[h].node] = p->host[v] >= 0 ? p->host[v] : v;
  }
  for (int i = 0; i < n && !bad; i++) {
    const Node *x = &g->nodes[i];
    if (!p->live[i] || x->op == OP_ID || x->op == OP_DETACH ||
        x->op == OP_RESHAPE)
      continue;
    for (int k = 0; k < x->nin && !bad; k++) {
      int b = p->alias[plan_resolve(c, x->in[k])];
      int64_t w = wpos[b], r = s->rootpos[i];
      if (w < 0)
        continue;
      if (r > w || (r == w && !(op_kind(x->op) == K_EW &&
                                same_shape(&x->shape, &g->nodes[b].shape))))
        bad = "a value read after its update wrote it", who = i;
    }
  }
  free(wpos);
  free(owner);
  free(at);
  free(end);
  free(nexta);
  free(nexte);
  if (bad)
    error_plain(c, "internal error (please report): plan check: %s (node "
                "%d, %s)", bad, who, op_name(g->nodes[who].op));
}

/* The planner: named steps in order, each reading what the ones before it
 * decided. */
