/* plan.c — decides what the generated code stores, and where.
 *
 * 1. resolve: named values (ID) and detach() are the identity here.
 * 2. live: nodes some output needs.
 * 3. fusion: an element-wise node with a single consumer is computed inside
 *    that consumer's loop instead of being stored ("inlined"). A stored
 *    element-wise node or sum whose operands are ready joins the loop of
 *    the stored node it reads at the same index ("loop fusion"): a sum
 *    runs in its producer's loop, and the backward of tanh reads tanh's
 *    result in the loop that computed it, where the seed allows.
 * 4. homes: a stored node that is an output is computed straight into the
 *    caller's output buffer.
 * 5. memory: every other stored node gets a workspace slice; slices are
 *    reused once their node is dead (liveness, first fit).
 */
#include <stdlib.h>
#include <string.h>

#include "plan.h"

#define MAX_INLINE_DEPTH 40

int plan_resolve(const Ctx *c, int id) {
  while (c->g.nodes[id].op == OP_ID || c->g.nodes[id].op == OP_DETACH)
    id = c->g.nodes[id].in[0];
  return id;
}

int64_t elem_size(const Ctx *c, const Node *n) {
  return n->dt == DT_I32 ? 4 : (c->opt.api.f64 ? 8 : 4);
}

/* May node x be computed inside the loop of its consumer k? */
static int inlinable_into(const Ctx *c, const Node *x, const Node *k) {
  (void)c;
  OpKind xk = op_kind(x->op);
  if (xk != K_EW && x->op != OP_TRANSPOSE && x->op != OP_SLICE)
    return 0;
  switch (op_kind(k->op)) {
  case K_EW:
    if (k->op == OP_BCAST)
      return 0; /* would compute x once per copy */
    return x->numel == k->numel;
  case K_RED:
    return 1;
  case K_MOVE:
    return k->op == OP_TRANSPOSE || k->op == OP_SLICE || k->op == OP_PAD;
  default:
    return 0;
  }
}

int same_shape(const Shape *a, const Shape *b) {
  return a->rank == b->rank &&
         !memcmp(a->d, b->d, sizeof a->d[0] * (size_t)a->rank);
}

/* Loop fusion: walks the stored values that node id's fused (inlined)
 * tree reads; ident says the path to id is element-wise over the loop
 * shape s, without broadcasts (so id is read at the loop's own index).
 * learn: *h becomes the loop of the first value read that way from a loop
 * that takes members. Else: may the tree run in loop *h? Every value it
 * reads must be ready before that loop (a leaf or a stored node before
 * *h), or be computed in the loop itself and read at the same index. */
static int fuse_walk(Ctx *c, const Plan *p, int id, const Shape *s,
                     int ident, int *h, int learn) {
  id = plan_resolve(c, id);
  Node *n = &c->g.nodes[id];
  if (n->op == OP_CONST || op_kind(n->op) == K_LEAF)
    return 1;
  if (!p->inl[id]) { /* a stored value */
    int g = p->host[id] >= 0 ? p->host[id] : id;
    int same = ident && same_shape(&n->shape, s);
    if (!learn)
      return g == *h ? same : id < *h;
    if (same && *h < 0 && p->fnext[g] != -2 &&
        same_shape(&c->g.nodes[g].shape, s))
      *h = g;
    return 1;
  }
  int ew = op_kind(n->op) == K_EW && n->op != OP_BCAST;
  for (int k = 0; k < n->nin; k++) {
    int a = plan_resolve(c, n->in[k]);
    if (!fuse_walk(c, p, a, s, ident && ew &&
                   same_shape(&c->g.nodes[a].shape, s), h, learn))
      return 0;
  }
  return 1;
}

/* fuse_walk over the operands of stored node x (an element-wise node, or
 * a sum, whose loop runs over its operand's shape) */
static int fuse_operands(Ctx *c, const Plan *p, const Node *x,
                         const Shape *s, int *h, int learn) {
  int ew = x->op != OP_SUM && x->op != OP_BCAST;
  for (int k = 0; k < x->nin; k++) {
    int a = plan_resolve(c, x->in[k]);
    int ident = (x->op == OP_SUM || ew) &&
                same_shape(&c->g.nodes[a].shape, s);
    if (!fuse_walk(c, p, a, s, ident, h, learn))
      return 0;
  }
  return 1;
}

static void fuse_loops(Ctx *c, Plan *p) {
  Graph *g = &c->g;
  int *tail = arena_alloc(&c->arena, sizeof(int) * (size_t)(g->n + 1));
  int recent = -1; /* the loop emitted last, if it takes members */
  /* a training step's update of a param runs where the schedule put it,
     after the param's last reader (passes.c): it joins no earlier loop */
  char *pwrite = arena_alloc(&c->arena, (size_t)g->n + 1);
  for (int o = 0; o < g->nouts; o++)
    if (g->outs[o].home >= 0 && g->args[g->outs[o].home].role == ROLE_PARAM)
      pwrite[plan_resolve(c, g->outs[o].node)] = 1;
  for (int i = 0; i < g->n; i++) {
    Node *x = &g->nodes[i];
    p->host[i] = -1;
    /* -1: a host that may take members; -2: a loop of another kind */
    p->fnext[i] = (op_kind(x->op) == K_EW && x->op != OP_CONST) ? -1 : -2;
    tail[i] = i;
    if (!p->live[i] || p->inl[i] || op_kind(x->op) == K_LEAF ||
        x->op == OP_ID || x->op == OP_DETACH || x->op == OP_RESHAPE)
      continue;
    int red = x->op == OP_SUM;
    int can_host = p->fnext[i] == -1;
    if (c->opt.api.O0 || (!can_host && !red) || pwrite[i]) {
      recent = -1;
      continue;
    }
    Shape ls = red ? g->nodes[plan_resolve(c, x->in[0])].shape : x->shape;
    int h = -1;
    fuse_operands(c, p, x, &ls, &h, 1);
    /* reading nothing the loops compute: it may join the loop just
       before it, if that runs over the same shape (horizontal fusion) */
    if (h < 0 && recent >= 0 && same_shape(&g->nodes[recent].shape, &ls))
      h = recent;
    /* every operand ready, or the host's loop's own at the same index */
    int ready = h >= 0 && fuse_operands(c, p, x, &ls, &h, 0);
    if (!ready) {
      recent = can_host ? i : -1;
      continue;
    }
    p->host[i] = h;
    p->fnext[tail[h]] = i;
    p->fnext[i] = -1;
    tail[h] = i;
  }
  /* a host without members is an ordinary loop */
  for (int i = 0; i < g->n; i++)
    if (p->fnext[i] == -2)
      p->fnext[i] = -1;
}

const Plan *ctx_plan(Ctx *c) {
  if (!c->plan) {
    Plan *p = arena_alloc(&c->arena, sizeof *p);
    plan_graph(c, p);
    c->plan = p;
  }
  return c->plan;
}

/* The working state of one planning run, beside the Plan it fills. */

/* live and uses, walking down from the outputs (ids are topological) */
static void plan_liveness(PS *s) {
  Ctx *c = s->c;
  Graph *g = s->g;
  Plan *p = s->p;
  int *consumer = s->consumer;
  int n = s->n;
  for (int o = 0; o < g->nouts; o++) {
    int v = plan_resolve(c, g->outs[o].node);
    p->live[v] = 1;
    p->uses[v]++;
    consumer[v] = -2; /* an output */
    if (g->outs[o].home >= 0)
      s->homeout[v] = 1;
  }
  for (int i = n - 1; i >= 0; i--) {
    if (!p->live[i])
      continue;
    Node *x = &g->nodes[i];
    if (x->op == OP_ID || x->op == OP_DETACH)
      continue;
    for (int k = 0; k < x->nin; k++) {
      int a = plan_resolve(c, x->in[k]);
      p->live[a] = 1;
      p->uses[a]++;
      consumer[a] = i;
    }
  }
}

/* which nodes are computed inside their consumer's expression */
static void plan_inline(PS *s) {
  Ctx *c = s->c;
  Graph *g = s->g;
  Plan *p = s->p;
  int *consumer = s->consumer, *depth = s->depth;
  char *needbuf = s->needbuf;
  int n = s->n;
  /* operands that matrix products and the special ops read from memory */
  for (int i = 0; i < n; i++) {
    Node *x = &g->nodes[i];
    OpKind k = op_kind(x->op);
    if (!p->live[i] || k == K_EW || k == K_RED || x->op == OP_TRANSPOSE ||
        x->op == OP_SLICE || x->op == OP_PAD)
      continue;
    for (int j = 0; j < x->nin; j++)
      needbuf[plan_resolve(c, x->in[j])] = 1;
  }
  /* fusion decisions, in topological order so depths are known */
  for (int i = 0; i < n; i++) {
    if (!p->live[i])
      continue;
    Node *x = &g->nodes[i];
    int d = 0;
    for (int k = 0; k < x->nin; k++) {
      int a = plan_resolve(c, x->in[k]);
      if (p->inl[a] && depth[a] > d)
        d = depth[a];
    }
    if (x->op == OP_CONST) {
      p->inl[i] = !needbuf[i]; /* a literal wherever it is read */
      continue;
    }
    if (needbuf[i] || c->opt.api.O0 || s->homeout[i]) /* O0: every value is
                                                     stored; a home output
                                                     is written in place */
      continue;
    if (p->uses[i] == 1 && consumer[i] >= 0 &&
        inlinable_into(c, x, &g->nodes[consumer[i]]) &&
        /* a training step's update runs where the schedule put it, maybe
           after another param's update: a value of the forward or backward
           pass (which may read that param) is not computed inside it */
        (optim_is_update(c, x) ||
         !optim_is_update(c, &g->nodes[consumer[i]])) &&
        d < MAX_INLINE_DEPTH) {
      p->inl[i] = 1;
      depth[i] = d + 1;
    } else if (p->uses[i] == 1 && consumer[i] == -2 &&
               c->opt.mode != MODE_STEP && /* a step's output is computed
                                              before the updates, not at
                                              the end */
               (op_kind(x->op) == K_EW || x->op == OP_TRANSPOSE ||
                x->op == OP_SLICE) &&
               d < MAX_INLINE_DEPTH) {
      p->inl[i] = 1; /* fused into the output's store loop */
      depth[i] = d + 1;
    }
  }
}

/* aliases: a reshape reads its operand's memory */
static void plan_views(PS *s) {
  Ctx *c = s->c;
  Graph *g = s->g;
  Plan *p = s->p;
  for (int i = 0; i < s->n; i++)
    if (p->live[i] && g->nodes[i].op == OP_RESHAPE) {
      int a = plan_resolve(c, g->nodes[i].in[0]);
      if (p->inl[a])
        p->inl[a] = 0; /* must exist in memory to be viewed */
      p->alias[i] = p->alias[a];
    }
}

/* loop fusion (fuse_loops, above) */
static void plan_fuse(PS *s) { fuse_loops(s->c, s->p); }

/* homes: outputs computed in place in the caller's buffer */
static void plan_homes(PS *s) {
  Ctx *c = s->c;
  Graph *g = s->g;
  Plan *p = s->p;
  int *outcount = s->outcount;
  char *viewed = s->viewed;
  int n = s->n;
  for (int o = 0; o < g->nouts; o++)
    outcount[plan_resolve(c, g->outs[o].node)]++;
  /* a node another node views as its memory stays in the workspace */
  for (int i = 0; i < n; i++)
    if (p->live[i] && p->alias[i] != i)
      viewed[p->alias[i]] = 1;
  for (int o = 0; o < g->nouts; o++) {
    int v = plan_resolve(c, g->outs[o].node);
    Node *x = &g->nodes[v];
    if (outcount[v] != 1 || p->inl[v] || op_kind(x->op) == K_LEAF ||
        x->op == OP_RESHAPE || (g->outs[o].is_grad && c->opt.api.accumulate))
      continue;
    if (!viewed[v])
      p->store[v] = o;
  }
  /* an output with a home (a training step's param or state) is written
     there by its own loop, after every reader of the old value (checked in
     plan_check); the value of another output, or a view, cannot be */
  for (int o = 0; o < g->nouts; o++) {
    int v = plan_resolve(c, g->outs[o].node);
    int h = g->outs[o].home;
    if (h >= 0 && p->store[v] != o && v != g->args[h].node)
      error_plain(c, "internal error (please report): the update of '%s' "
                  "cannot be written in place", g->args[h].name);
  }
}

/* where each node is read: the position of the loop it is fused into; the
 * first and last reader of every stored value */
static void plan_lifetimes(PS *s) {
  Ctx *c = s->c;
  Graph *g = s->g;
  Plan *p = s->p;
  int *consumer = s->consumer;
  int *rootpos = s->rootpos, *first = s->first, *last = s->last;
  const int END = s->END;
  int n = s->n;
  for (int i = n - 1; i >= 0; i--) {
    if (!p->live[i])
      continue;
    if (p->inl[i])
      rootpos[i] = consumer[i] >= 0 ? rootpos[consumer[i]] : END;
    else
      rootpos[i] = p->host[i] >= 0 ? p->host[i] : i;
  }
  for (int i = 0; i < n; i++) {
    Node *x = &g->nodes[i];
    if (!p->live[i] || x->op == OP_ID || x->op == OP_DETACH ||
        x->op == OP_RESHAPE)
      continue;
    for (int k = 0; k < x->nin; k++) {
      int a = plan_resolve(c, x->in[k]);
      if (p->inl[a])
        continue;
      int b = p->alias[a];
      if (rootpos[i] > last[b])
        last[b] = rootpos[i];
      if (first[b] < 0 || rootpos[i] < first[b])
        first[b] = rootpos[i];
    }
  }
}

/* A value of a fused loop read only in that loop (and not an output) is a
 * local variable of the loop body: it takes no memory. */
static void plan_locals(PS *s) {
  Graph *g = s->g;
  Plan *p = s->p;
  int *first = s->first, *last = s->last;
  int *outcount = s->outcount;
  char *viewed = s->viewed;
  int n = s->n;
  for (int i = 0; i < n; i++) {
    Node *x = &g->nodes[i];
    int h = p->host[i] >= 0 ? p->host[i] : i;
    if (p->live[i] && !p->inl[i] && (p->host[i] >= 0 || p->fnext[i] >= 0) &&
        x->op != OP_SUM && !outcount[i] && !viewed[i] && p->store[i] < 0 &&
        first[i] == h && last[i] == h)
      p->local[i] = 1;
  }
}

static const struct {
  const char *name;
  void (*run)(PS *);
} plan_steps[] = {
    {"liveness", plan_liveness}, {"inline", plan_inline},
    {"views", plan_views},       {"fuse", plan_fuse},
    {"homes", plan_homes},       {"lifetimes", plan_lifetimes},
    {"locals", plan_locals},     {"allocate", plan_allocate},
    {"pack", plan_pack},         {"scratch", plan_scratch},
    {"check", plan_check},
};

void plan_graph(Ctx *c, Plan *p) {
  Graph *g = &c->g;
  int n = g->n;
  memset(p, 0, sizeof *p);
  p->live = arena_alloc(&c->arena, (size_t)n + 1);
  p->uses = arena_alloc(&c->arena, sizeof(int) * (size_t)n);
  p->inl = arena_alloc(&c->arena, (size_t)n + 1);
  p->store = arena_alloc(&c->arena, sizeof(int) * (size_t)n);
  p->off = arena_alloc(&c->arena, sizeof(int64_t) * (size_t)n);
  p->alias = arena_alloc(&c->arena, sizeof(int) * (size_t)n);
  p->host = arena_alloc(&c->arena, sizeof(int) * (size_t)n);
  p->fnext = arena_alloc(&c->arena, sizeof(int) * (size_t)n);
  p->local = arena_alloc(&c->arena, (size_t)n + 1);
  p->acc_off = arena_alloc(&c->arena, sizeof(int64_t) * (size_t)n);
  p->size = arena_alloc(&c->arena, sizeof(int64_t) * ((size_t)n + 1));
  PS s = {c, g, p, n, n + 1, NULL, NULL, NULL, NULL, NULL,
          NULL, NULL, NULL, NULL, NULL, 0, 0};
  s.consumer = arena_alloc(&c->arena, sizeof(int) * (size_t)n);
  s.depth = arena_alloc(&c->arena, sizeof(int) * (size_t)n);
  s.outcount = arena_alloc(&c->arena, sizeof(int) * (size_t)n);
  s.needbuf = arena_alloc(&c->arena, (size_t)n + 1);
  s.viewed = arena_alloc(&c->arena, (size_t)n + 1);
  s.first = arena_alloc(&c->arena, sizeof(int) * (size_t)n);
  s.last = arena_alloc(&c->arena, sizeof(int) * (size_t)n);
  s.rootpos = arena_alloc(&c->arena, sizeof(int) * (size_t)n);
  s.homeout = arena_alloc(&c->arena, (size_t)n + 1);
  s.inplace_of = arena_alloc(&c->arena, sizeof(int) * ((size_t)n + 1));
  p->last = s.last;
  for (int i = 0; i < n; i++) {
    p->store[i] = -1;
    p->off[i] = -1;
    p->alias[i] = i;
    s.consumer[i] = -1;
    s.last[i] = -1;
    s.first[i] = -1;
    s.inplace_of[i] = -1;
  }
  for (size_t k = 0; k < sizeof plan_steps / sizeof plan_steps[0]; k++)
    plan_steps[k].run(&s);
  /* the planner's own arrays go back (large ones are blocks of their own:
     20 MB for a graph of 700,000 nodes); s.last is the plan's */
  arena_release(&c->arena, s.inplace_of, sizeof(int) * ((size_t)n + 1));
  arena_release(&c->arena, s.homeout, (size_t)n + 1);
  arena_release(&c->arena, s.rootpos, sizeof(int) * (size_t)n);
  arena_release(&c->arena, s.first, sizeof(int) * (size_t)n);
  arena_release(&c->arena, s.viewed, (size_t)n + 1);
  arena_release(&c->arena, s.needbuf, (size_t)n + 1);
  arena_release(&c->arena, s.outcount, sizeof(int) * (size_t)n);
  arena_release(&c->arena, s.depth, sizeof(int) * (size_t)n);
  arena_release(&c->arena, s.consumer, sizeof(int) * (size_t)n);
}

/* The shapes and the per-image matrix product of a conv node (see
 * emit.c); a and b are its operands' shapes. */
ConvGeom conv_geometry(const Node *n, const Shape *a, const Shape *b) {
  ConvGeom g;
  g.x = n->op == OP_CONV2D_DX ? &n->shape : a;
  g.w = n->op == OP_CONV2D_DW ? &n->shape : b;
  g.y = n->op == OP_CONV2D ? &n->shape : n->op == OP_CONV2D_DX ? a : b;
  int64_t O = g.w->d[0], CKK = g.w->d[1] * g.w->d[2] * g.w->d[3];
  int64_t P = g.y->d[2] * g.y->d[3];
  g.col = CKK * P;
  if (n->op == OP_CONV2D)
    g.M = O, g.N = P, g.K = CKK;
  else if (n->op == OP_CONV2D_DX)
    g.M = CKK, g.N = P, g.K = O;
  else
    g.M = O, g.N = CKK, g.K = P;
  return g;
}

/* A whole-tensor sum computed in a fused loop of rank >= 2 keeps one
 * double partial sum per position of the loop's last axis, in its own
 * workspace slot, and adds them up after the loop: a scalar double
 * accumulator would keep gcc from vectorizing the whole loop. Returns the
 * row length, or 0. */
int64_t plan_acc_row(const Ctx *c, const Plan *p, int id) {
  const Node *n = &c->g.nodes[id];
  if (n->op != OP_SUM || n->numel != 1 || p->host[id] < 0 ||
      !target_get(c->opt.target)->sum_rows)
    return 0;
  const Shape *s = &c->g.nodes[p->host[id]].shape;
  if (s->rank < 2 || s->d[s->rank - 1] < 2)
    return 0;
  return s->d[s->rank - 1];
}

int plan_uses_gemm(const Ctx *c, const Node *n) {
  if (!target_get(c->opt.target)->gemm)
    return 0;
  return n->shape.d[n->shape.rank - 1] >= 4; /* a narrow C wastes the panel */
}

/* A product through the packed kernel: its M, N, K and the elements of
 * packing scratch one thread of it needs. */
void plan_gemm_dims(const Ctx *c, const Node *n, int64_t *M, int64_t *N,
                    int64_t *K, int64_t *pack_each) {
  Shape sa = c->g.nodes[plan_resolve(c, n->in[0])].shape;
  *M = n->shape.d[n->shape.rank - 2];
  *N = n->shape.d[n->shape.rank - 1];
  *K = n->flags & MM_TA ? sa.d[sa.rank - 2] : sa.d[sa.rank - 1];
  *pack_each = kernel_pack_elems(c->opt.api.f64, *M, *N, *K);
}

/* How many threads run a matrix product (--threads): 1, or up to the
 * option's count for a product through the packed kernel with at least
 * 2^25 multiply-adds (about 1 ms on one core: a thread costs tens of
 * microseconds to start and join, and on a 2-vCPU machine products of
 * 4M and 13M multiply-adds ran slower on two threads than on one;
 * threads_min_macs changes that), at most one thread per MR-row panel of
 * the result. */
int plan_gemm_threads(const Ctx *c, const Node *n) {
  int T = c->opt.api.threads;
  if (T <= 1 || n->op != OP_MATMUL || !plan_uses_gemm(c, n))
    return 1;
  int64_t M, N, K, each;
  plan_gemm_dims(c, n, &M, &N, &K, &each);
  int64_t min = c->opt.api.threads_min_macs;
  if (M * N * K < (min > 0 ? min : (int64_t)1 << 25))
    return 1;
  int64_t panels = (M + KERNEL_MR - 1) / KERNEL_MR;
  if (panels < T)
    T = (int)panels;
  return T > 1 ? T : 1;
}
