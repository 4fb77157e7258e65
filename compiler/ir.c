/* ir.c — building IR nodes: shape rules, folding and hash-consing.
 *
 * Every constructor checks its operands' shapes and reports a located error
 * when they do not fit. What else a constructor does depends on c->rules,
 * which the passes (passes.c) turn on one at a time:
 *   R_FOLD      constant operands are evaluated (a scalar constant
 *               expression always is: the language needs `axis=-1`);
 *   R_SIMPLIFY  x*1, x+0, double negation and transposition, transposes
 *               folded into matmul operand order, constants reassociated;
 *   R_CSE       pure nodes are interned (hash-consed), so building the
 *               same expression twice yields the same node.
 * A rewrite that only drops a no-op (a reshape to the same shape, a
 * reduction over size-1 axes) is always applied.
 */
#include <float.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "agc.h"
#include <sys/mman.h>


int64_t shape_numel(const Shape *s) {
  int64_t n = 1;
  for (int i = 0; i < s->rank; i++)
    n *= s->d[i];
  return n;
}


static int shape_eq(const Shape *a, const Shape *b) {
  if (a->rank != b->rank)
    return 0;
  for (int i = 0; i < a->rank; i++)
    if (a->d[i] != b->d[i])
      return 0;
  return 1;
}

void shape_str(const Shape *s, char *buf, size_t n) {
  size_t k = 0;
  k += (size_t)snprintf(buf + k, n - k, "[");
  for (int i = 0; i < s->rank && k < n; i++)
    k += (size_t)snprintf(buf + k, n - k, "%s%lld", i ? ", " : "",
                          (long long)s->d[i]);
  if (k < n)
    snprintf(buf + k, n - k, "]");
}

static Node *N(Ctx *c, int id) { return &c->g.nodes[id]; }

/* Can v be a constant of the graph's float type? The generated C has no
 * literal for an infinity or a NaN, and an f32 constant beyond FLT_MAX
 * would be one: such a fold is not done (the operation runs at run time,
 * where it gives the same infinity). */
static int fits(const Ctx *c, double v) {
  return isfinite(v) && (c->opt.api.f64 || fabs(v) <= FLT_MAX);
}

/* ---- interning ---------------------------------------------------------- */

static uint64_t mix(uint64_t h, uint64_t v) {
  h ^= v + 0x9e3779b97f4a7c15ULL + (h << 6) + (h >> 2);
  return h;
}

static uint64_t node_hash(const Node *n) {
  uint64_t h = (uint64_t)n->op * 31 + (uint64_t)n->dt;
  h = mix(h, (uint64_t)n->shape.rank);
  for (int i = 0; i < n->shape.rank; i++)
    h = mix(h, (uint64_t)n->shape.d[i]);
  for (int i = 0; i < n->nin; i++)
    h = mix(h, (uint64_t)n->in[i]);
  uint64_t vb;
  memcpy(&vb, &n->val, sizeof vb);
  h = mix(h, vb);
  h = mix(h, n->mask);
  h = mix(h, (uint64_t)n->flags);
  if (n->perm != ir_zero_perm) /* zeros leave the hash as ir_zero_perm's */
    for (int i = 0; i < MAX_RANK; i++)
      if (n->perm[i])
        h = mix(h, ((uint64_t)i << 32) ^ (uint32_t)n->perm[i]);
  /* the table index takes the low bits, which mix() leaves nearly a sum of
   * the operand ids: without this finalizer (MurmurHash3's) the nodes of a
   * long chain land in one cluster and every probe walks it (quadratic) */
  h ^= h >> 33;
  h *= 0xff51afd7ed558ccdULL;
  h ^= h >> 33;
  h *= 0xc4ceb9fe1a85ec53ULL;
  h ^= h >> 33;
  return h;
}

static int node_same(const Node *a, const Node *b) {
  if (a->op != b->op || a->dt != b->dt || a->nin != b->nin ||
      !shape_eq(&a->shape, &b->shape) || a->mask != b->mask ||
      a->flags != b->flags || memcmp(&a->val, &b->val, sizeof a->val) ||
      (a->perm != b->perm &&
       memcmp(a->perm, b->perm, sizeof(int) * MAX_RANK)))
    return 0;
  for (int i = 0; i < a->nin; i++)
    if (a->in[i] != b->in[i])
      return 0;
  return 1;
}

/* Leaves are distinct by identity; so is each named value (ID), so that
 * grad() with respect to one name never sees another name's uses. */
static int interned(Op op) {
  return op != OP_INPUT && op != OP_PARAM && op != OP_ID;
}

static void hash_insert(Graph *g, int id, uint64_t h) {
  int i = (int)(h & (uint64_t)(g->hcap - 1));
  while (g->hash[i].id >= 0)
    i = (i + 1) & (g->hcap - 1);
  g->hash[i].id = id;
  g->hash[i].h = (uint32_t)h;
}

/* A table of ncap slots. Each probe of a large table is a cache miss at
 * a random place; on 4 KB pages it is a TLB miss as well, so a table of
 * 2 MB or more asks for huge pages where the system has them (Linux,
 * transparent huge pages "madvise" or "always"): 11% of the compile time
 * of 200,000 terms. The table is filled at once, so this costs no memory. */
static struct HashSlot *hash_alloc(int ncap) {
  size_t n = sizeof(struct HashSlot) * (size_t)ncap, huge = (size_t)2 << 20;
  struct HashSlot *h;
#ifdef MADV_HUGEPAGE
  if (n >= huge) { /* n is a power of two: a multiple of 2 MB */
    h = aligned_alloc(huge, n);
    if (h)
      madvise(h, n, MADV_HUGEPAGE); /* advice: failure is harmless */
  } else
#endif
    h = malloc(n);
  if (!h)
    abort();
  return h;
}

static void hash_resize(Graph *g, int ncap) {
  struct HashSlot *old = g->hash;
  int ocap = g->hcap;
  g->hash = hash_alloc(ncap);
  for (int i = 0; i < ncap; i++)
    g->hash[i].id = -1;
  g->hcap = ncap;
  for (int i = 0; i < ocap; i++) /* the stored hashes' low bits suffice */
    if (old[i].id >= 0) {
      int j = (int)(old[i].h & (uint32_t)(ncap - 1));
      while (g->hash[j].id >= 0)
        j = (j + 1) & (ncap - 1);
      g->hash[j] = old[i];
    }
  free(old);
  /* nodes appended while interning was off are not in the table yet */
  if (!ocap)
    for (int id = 0; id < g->n; id++)
      if (interned(g->nodes[id].op))
        hash_insert(g, id, node_hash(&g->nodes[id]));
}

static void hash_grow(Graph *g) {
  int cap = g->hcap ? g->hcap * 2 : 1024;
  while (cap < 2 * (g->n + 1)) /* an empty table for a graph (dce) */
    cap *= 2;
  hash_resize(g, cap);
}

void ir_hash_reserve(Ctx *c, int n) {
  int cap = 1024;
  while (cap < 2 * (n + 1) && cap < (1 << 30))
    cap *= 2;
  if (cap <= c->g.hcap)
    return;
  if (c->g.hcap == 0 && c->spare_hash && c->spare_hcap >= cap) {
    /* the table of the graph the last pass rebuilt from, emptied */
    c->g.hash = c->spare_hash;
    c->g.hcap = c->spare_hcap;
    c->spare_hash = NULL;
    c->spare_hcap = 0;
    memset(c->g.hash, 0xff, sizeof *c->g.hash * (size_t)c->g.hcap);
    for (int id = 0; id < c->g.n; id++)
      if (interned(c->g.nodes[id].op))
        hash_insert(&c->g, id, node_hash(&c->g.nodes[id]));
    return;
  }
  hash_resize(&c->g, cap);
}

/* An empty c->g with room for n nodes: the node array of an earlier graph
 * when it is large enough (its pages are already mapped). */
void ir_graph_reserve(Ctx *c, int n) {
  if (c->spare_nodes && c->spare_cap >= n) {
    c->g.nodes = c->spare_nodes;
    c->g.cap = c->spare_cap;
    c->spare_nodes = NULL;
    c->spare_cap = 0;
    return;
  }
  Node *nn = malloc(sizeof *nn * (size_t)(n > 0 ? n : 1));
  if (!nn)
    abort();
  c->g.nodes = nn;
  c->g.cap = n > 0 ? n : 1;
}

/* Keeps the arrays of a graph that is no longer needed for the next
 * rebuild (the larger of it and what is kept already). */
void ir_graph_recycle(Ctx *c, Graph *old) {
  if (old->cap > c->spare_cap) {
    free(c->spare_nodes);
    c->spare_nodes = old->nodes;
    c->spare_cap = old->cap;
  } else {
    free(old->nodes);
  }
  if (old->hcap > c->spare_hcap) {
    free(c->spare_hash);
    c->spare_hash = old->hash;
    c->spare_hcap = old->hcap;
  } else {
    free(old->hash);
  }
  old->nodes = NULL;
  old->hash = NULL;
  old->cap = old->hcap = 0;
}

/* During a rebuild in place: the old nodes not read yet (rb_lim on) move
 * out of the node array, which is then the new graph's alone. */
void ir_rebuild_evict(Ctx *c) {
  int from = c->rb_lim, n = c->rb_n - from;
  c->rb_rest = malloc(sizeof *c->rb_rest * (size_t)(n > 0 ? n : 1));
  if (!c->rb_rest)
    abort();
  if (n > 0)
    memcpy(c->rb_rest, c->g.nodes + from, sizeof *c->rb_rest * (size_t)n);
  c->rb_from = from;
  c->rb_lim = 0;
}

void ir_spare_free(Ctx *c) {
  free(c->spare_nodes);
  free(c->spare_hash);
  c->spare_nodes = NULL;
  c->spare_hash = NULL;
  c->spare_cap = c->spare_hcap = 0;
}

static int append(Ctx *c, const Node *tmpl, const int *in) {
  Graph *g = &c->g;
  if (c->rb_lim && g->n >= c->rb_lim)
    ir_rebuild_evict(c); /* the next slot still holds an unread old node */
  if (g->n >= MAX_NODES) {
    if (tmpl->loc.line > 0)
      error_at(c, tmpl->loc, "graph too large: more than %d IR nodes (with "
               "its derivatives)", MAX_NODES);
    error_plain(c, "graph too large: more than %d IR nodes (with its "
                "derivatives)", MAX_NODES);
  }
  if (g->n == g->cap) {
    int ncap = g->cap ? g->cap + g->cap / 2 + 16 : 256;
    Node *nn = realloc(g->nodes, sizeof *nn * (size_t)ncap);
    if (!nn)
      abort();
    g->nodes = nn;
    g->cap = ncap;
  }
  int id = g->n++;
  Node *n = &g->nodes[id];
  *n = *tmpl;
  /* operand lists live with this graph: a pass that rebuilds the graph
     frees the old one's (passes.c) */
  /* canonical: all-zero attributes are ir_zero_perm itself, so that
     node_same and node_hash agree whichever way a template gave them */
  int has_perm = 0;
  for (int i = 0; i < MAX_RANK && tmpl->perm != ir_zero_perm; i++)
    has_perm |= tmpl->perm[i] != 0;
  n->in = arena_alloc_raw(&g->ins, sizeof(int) * (size_t)(tmpl->nin + 1 +
                                                         (has_perm ? MAX_RANK : 0)));
  for (int i = 0; i < tmpl->nin; i++)
    n->in[i] = in[i];
  n->in[tmpl->nin] = 0;
  if (has_perm) { /* the op's attributes, beside its operands */
    int *p = n->in + tmpl->nin + 1;
    memcpy(p, tmpl->perm, sizeof(int) * MAX_RANK);
    n->perm = p;
  } else {
    n->perm = ir_zero_perm;
  }
  n->numel = shape_numel(&n->shape);
  return id;
}

int ir_node(Ctx *c, const Node *tmpl, const int *in) {
  Graph *g = &c->g;
  Node key = *tmpl;
  key.in = (int *)in;
  if (!interned(key.op) || !(c->rules & R_CSE))
    return append(c, &key, in);
  if ((g->n + 1) * 2 > g->hcap)
    hash_grow(g);
  uint64_t h = node_hash(&key);
  int i = (int)(h & (uint64_t)(g->hcap - 1));
  while (g->hash[i].id >= 0) {
    if (g->hash[i].h == (uint32_t)h &&
        node_same(&g->nodes[g->hash[i].id], &key))
      return g->hash[i].id;
    i = (i + 1) & (g->hcap - 1);
  }
  int id = append(c, &key, in);
  g->hash[i].id = id;
  g->hash[i].h = (uint32_t)h;
  return id;
}

const int ir_zero_perm[MAX_RANK];

static Node tmpl_of(Op op, DType dt, Shape s, Loc loc) {
  Node t;
  memset(&t, 0, sizeof t);
  t.perm = ir_zero_perm;
  t.op = op;
  t.dt = dt;
  t.shape = s;
  t.loc = loc;
  t.ext = -1;
  return t;
}

/* ---- leaves and constants ----------------------------------------------- */

static void check_size(Ctx *c, Shape s, Loc loc) {
  int64_t n = 1;
  for (int i = 0; i < s.rank; i++) {
    if (s.d[i] <= 0)
      error_at(c, loc, "dimension %d is %lld: dimensions must be positive", i,
               (long long)s.d[i]);
    if (n > MAX_ELEMS / s.d[i])
      error_at(c, loc,
               "tensor too large to address (more than %lld elements)",
               (long long)MAX_ELEMS);
    n *= s.d[i];
  }
}

int32_t shape_dim(Ctx *c, int64_t v, Loc loc) {
  if (v > MAX_ELEMS)
    error_at(c, loc, "tensor too large to address (more than %lld elements)",
             (long long)MAX_ELEMS);
  return (int32_t)v;
}

int ir_leaf(Ctx *c, Op op, DType dt, Shape s, const char *name, Loc loc) {
  check_size(c, s, loc);
  Node t = tmpl_of(op, dt, s, loc);
  t.name = name;
  return ir_node(c, &t, NULL);
}

int ir_const(Ctx *c, double v, Shape s) {
  if (v == 0)
    v = 0; /* -0.0 and 0.0 are one constant */
  Node t = tmpl_of(OP_CONST, DT_F, s, (Loc){0, 0});
  t.val = v;
  return ir_node(c, &t, NULL);
}

int ir_scalar(Ctx *c, double v) { return ir_const(c, v, (Shape){0, {0}}); }

int ir_is_const(Ctx *c, int id, double *v) {
  if (N(c, id)->op != OP_CONST)
    return 0;
  if (v)
    *v = N(c, id)->val;
  return 1;
}

/* ---- element-wise ---------------------------------------------------------- */

Shape broadcast_shapes(Ctx *c, Shape a, Shape b, Loc loc) {
  Shape r;
  r.rank = a.rank > b.rank ? a.rank : b.rank;
  for (int i = 0; i < r.rank; i++) {
    int ia = i - (r.rank - a.rank), ib = i - (r.rank - b.rank);
    int64_t da = ia >= 0 ? a.d[ia] : 1, db = ib >= 0 ? b.d[ib] : 1;
    if (da != db && da != 1 && db != 1) {
      char sa[128], sb[128];
      shape_str(&a, sa, sizeof sa);
      shape_str(&b, sb, sizeof sb);
      error_at(c, loc, "shapes %s and %s cannot be broadcast together", sa,
               sb);
    }
    r.d[i] = da == 1 ? db : da;
  }
  return r;
}

int ir_unary(Ctx *c, Op op, int a, Loc loc) {
  Node *na = N(c, a);
  if (na->op == OP_CONST && (c->rules & R_FOLD || na->shape.rank == 0)) {
    /* Constants fold only to finite values, so the generated C never
       needs an infinity literal. */
    double v = op_fold1(op, na->val);
    if (fits(c, v))
      return ir_const(c, v, na->shape);
  }
  if (c->rules & R_SIMPLIFY) {
    if (op == OP_NEG && na->op == OP_NEG)
      return na->in[0];
    if (op == OP_DETACH && na->op == OP_DETACH)
      return a;
  }
  Node t = tmpl_of(op, DT_F, na->shape, loc);
  t.nin = 1;
  return ir_node(c, &t, &a);
}


int ir_binary(Ctx *c, Op op, int a, int b, Loc loc) {
  Shape s = broadcast_shapes(c, N(c, a)->shape, N(c, b)->shape, loc);
  check_size(c, s, loc);
  double va, vb;
  int ca = ir_is_const(c, a, &va), cb = ir_is_const(c, b, &vb);
  if (ca && cb && (c->rules & R_FOLD || s.rank == 0)) {
    double v = op_fold2(op, va, vb);
    if (fits(c, v))
      return ir_const(c, v, s);
  }
  int same_a = shape_eq(&N(c, a)->shape, &s);
  int same_b = shape_eq(&N(c, b)->shape, &s);
  switch (c->rules & R_SIMPLIFY ? op : OP_COUNT) {
  case OP_ADD:
    if (cb && vb == 0 && same_a)
      return a;
    if (ca && va == 0 && same_b)
      return b;
    break;
  case OP_SUB:
    if (cb && vb == 0 && same_a)
      return a;
    if (ca && va == 0 && same_b)
      return ir_unary(c, OP_NEG, b, loc);
    break;
  case OP_MUL:
    /* c1 * (x * c2) = x * (c1 c2): one multiply, and CSE sees more */
    if ((ca || cb) && N(c, ca ? b : a)->op == OP_MUL) {
      int m = ca ? b : a, k1 = ca ? a : b;
      double k = ca ? va : vb, v2;
      int x = -1, k2 = -1;
      if (ir_is_const(c, N(c, m)->in[1], &v2))
        x = N(c, m)->in[0], k2 = N(c, m)->in[1];
      else if (ir_is_const(c, N(c, m)->in[0], &v2))
        x = N(c, m)->in[1], k2 = N(c, m)->in[0];
      if (x >= 0 && fits(c, k * v2)) {
        Shape ks = broadcast_shapes(c, N(c, k1)->shape, N(c, k2)->shape, loc);
        return ir_binary(c, OP_MUL, x, ir_const(c, k * v2, ks), loc);
      }
    }
    if (cb && vb == 1 && same_a)
      return a;
    if (ca && va == 1 && same_b)
      return b;
    if (cb && vb == -1 && same_a)
      return ir_unary(c, OP_NEG, a, loc);
    if (ca && va == -1 && same_b)
      return ir_unary(c, OP_NEG, b, loc);
    break;
  case OP_DIV:
    if (cb && vb == 1 && same_a)
      return a;
    break;
  case OP_POW:
    if (cb && vb == 1 && same_a)
      return a;
    break;
  default:
    break;
  }
  /* Canonical operand order for commutative ops helps interning. */
  if ((op == OP_ADD || op == OP_MUL || op == OP_MAXIMUM ||
       op == OP_MINIMUM || op == OP_EQ || op == OP_NE) &&
      a > b && c->rules & R_CSE) {
    int t = a;
    a = b;
    b = t;
  }
  Node t = tmpl_of(op, DT_F, s, loc);
  t.nin = 2;
  int in[2] = {a, b};
  return ir_node(c, &t, in);
}

int ir_where(Ctx *c, int cond, int a, int b, Loc loc) {
  Shape s = broadcast_shapes(c, N(c, cond)->shape, N(c, a)->shape, loc);
  s = broadcast_shapes(c, s, N(c, b)->shape, loc);
  check_size(c, s, loc);
  double v;
  if (c->rules & R_FOLD && ir_is_const(c, cond, &v)) {
    int pick = v != 0 ? a : b;
    if (shape_eq(&N(c, pick)->shape, &s))
      return pick;
    return ir_broadcast(c, pick, s, loc);
  }
  if (c->rules & R_SIMPLIFY && a == b && shape_eq(&N(c, a)->shape, &s))
    return a;
  Node t = tmpl_of(OP_WHERE, DT_F, s, loc);
  t.nin = 3;
  int in[3] = {cond, a, b};
  return ir_node(c, &t, in);
}

int ir_broadcast(Ctx *c, int a, Shape s, Loc loc) {
  Shape as = N(c, a)->shape;
  Shape r = broadcast_shapes(c, as, s, loc);
  if (!shape_eq(&r, &s)) {
    char sa[128], sb[128];
    shape_str(&as, sa, sizeof sa);
    shape_str(&s, sb, sizeof sb);
    error_at(c, loc, "cannot broadcast shape %s to %s", sa, sb);
  }
  if (shape_eq(&as, &s))
    return a;
  double v;
  if (c->rules & R_FOLD && ir_is_const(c, a, &v))
    return ir_const(c, v, s);
  if (c->rules & R_SIMPLIFY && N(c, a)->op == OP_BCAST)
    a = N(c, a)->in[0];
  Node t = tmpl_of(OP_BCAST, DT_F, s, loc);
  t.dt = N(c, a)->dt;
  t.nin = 1;
  return ir_node(c, &t, &a);
}

/* ---- reductions --------------------------------------------------------- */

int ir_reduce(Ctx *c, Op op, int a, unsigned mask, Loc loc) {
  Node *na = N(c, a);
  Shape s = na->shape;
  unsigned real = 0; /* reduced axes of size > 1 */
  for (int i = 0; i < s.rank; i++)
    if (mask & (1u << i)) {
      if (s.d[i] > 1)
        real |= 1u << i;
      s.d[i] = 1;
    }
  if (!real && op != OP_PROD)
    return a; /* reducing size-1 axes changes nothing */
  if (!real)
    return a;
  double v;
  if (!(c->rules & R_FOLD))
    ;
  else if (ir_is_const(c, a, &v) && (op == OP_MAX || op == OP_MIN))
    return ir_const(c, v, s);
  else if (ir_is_const(c, a, &v) && op == OP_SUM &&
           fits(c, v * (double)(na->numel / shape_numel(&s))))
    return ir_const(c, v * (double)(na->numel / shape_numel(&s)), s);
  Node t = tmpl_of(op, DT_F, s, loc);
  t.mask = real;
  t.nin = 1;
  return ir_node(c, &t, &a);
}

int ir_sum_to(Ctx *c, int a, Shape s, Loc loc) {
  Shape as = N(c, a)->shape;
  if (shape_eq(&as, &s))
    return a;
  unsigned mask = 0;
  int lead = as.rank - s.rank;
  for (int i = 0; i < as.rank; i++) {
    int j = i - lead;
    if (j < 0 || (s.d[j] == 1 && as.d[i] != 1))
      mask |= 1u << i;
  }
  int r = ir_reduce(c, OP_SUM, a, mask, loc);
  return ir_reshape(c, r, s, loc);
}

int ir_firstmax(Ctx *c, Op op, int a, int axis, Loc loc) {
  Node t = tmpl_of(op, DT_F, N(c, a)->shape, loc);
  t.mask = 1u << axis;
  t.nin = 1;
  return ir_node(c, &t, &a);
}

int ir_prodexcl(Ctx *c, int a, unsigned mask, Loc loc) {
  Node t = tmpl_of(OP_PRODEXCL, DT_F, N(c, a)->shape, loc);
  t.mask = mask;
  t.nin = 1;
  return ir_node(c, &t, &a);
}

int ir_onehot(Ctx *c, int idx, int64_t classes, Loc loc) {
  Shape s = N(c, idx)->shape;
  if (s.rank >= MAX_RANK)
    error_at(c, loc, "one-hot result would have more than %d dimensions",
             MAX_RANK);
  s.d[s.rank++] = shape_dim(c, classes, loc);
  check_size(c, s, loc);
  Node t = tmpl_of(OP_ONEHOT, DT_F, s, loc);
  t.val = (double)classes;
  t.nin = 1;
  return ir_node(c, &t, &idx);
}

/* ---- movement ------------------------------------------------------------ */

int ir_reshape(Ctx *c, int a, Shape s, Loc loc) {
  Node *na = N(c, a);
  if (shape_numel(&s) != na->numel) {
    char sa[128], sb[128];
    shape_str(&na->shape, sa, sizeof sa);
    shape_str(&s, sb, sizeof sb);
    error_at(c, loc, "cannot reshape %s (%lld elements) to %s", sa,
             (long long)na->numel, sb);
  }
  if (shape_eq(&na->shape, &s))
    return a;
  if (c->rules & R_FOLD && na->op == OP_CONST)
    return ir_const(c, na->val, s);
  if (c->rules & R_SIMPLIFY && na->op == OP_RESHAPE)
    a = na->in[0];
  if (shape_eq(&N(c, a)->shape, &s))
    return a;
  Node t = tmpl_of(OP_RESHAPE, N(c, a)->dt, s, loc);
  t.nin = 1;
  return ir_node(c, &t, &a);
}

int ir_transpose(Ctx *c, int a, const int *perm, Loc loc) {
  Node *na = N(c, a);
  int r = na->shape.rank, p[MAX_RANK], ident = 1;
  for (int i = 0; i < r; i++) {
    p[i] = perm[i];
    if (p[i] != i)
      ident = 0;
  }
  if (ident)
    return a;
  if (c->rules & R_SIMPLIFY && na->op == OP_TRANSPOSE) { /* compose: out d = mid p[d] = in q[p[d]] */
    int q[MAX_RANK];
    for (int i = 0; i < r; i++)
      q[i] = na->perm[p[i]];
    return ir_transpose(c, na->in[0], q, loc);
  }
  /* (op(a) @ op(b))^T = op(b)^T @ op(a)^T: the product written in the
     transposed layout directly (a weight's gradient for x @ W.T lands in
     W's layout, with no transposed copy) */
  int swap_last = r >= 2 && na->op == OP_MATMUL && (c->rules & R_SIMPLIFY) &&
                  !(c->rules & R_UNTWINNED);
  for (int i = 0; swap_last && i < r; i++)
    swap_last = p[i] == (i == r - 2 ? r - 1 : i == r - 1 ? r - 2 : i);
  if (swap_last) {
    return ir_matmul(c, na->in[1], na->in[0], mm_twin_flags(na->flags), loc);
  }
  Shape s = {r, {0}};
  for (int i = 0; i < r; i++)
    s.d[i] = na->shape.d[p[i]];
  if (c->rules & R_FOLD && na->op == OP_CONST)
    return ir_const(c, na->val, s);
  /* Moving only size-1 axes keeps the element order: a reshape. */
  int order_kept = (c->rules & R_SIMPLIFY) != 0, last = -1;
  for (int i = 0; i < r; i++)
    if (na->shape.d[p[i]] != 1) {
      if (p[i] < last)
        order_kept = 0;
      last = p[i];
    }
  if (order_kept)
    return ir_reshape(c, a, s, loc);
  Node t = tmpl_of(OP_TRANSPOSE, na->dt, s, loc);
  for (int i = r; i < MAX_RANK; i++)
    p[i] = 0;
  t.perm = p;
  t.nin = 1;
  return ir_node(c, &t, &a);
}

int ir_slice(Ctx *c, Op op, int a, const int64_t *start, Shape out,
             Loc loc) {
  Node t = tmpl_of(op, N(c, a)->dt, out, loc);
  int st[MAX_RANK] = {0};
  for (int i = 0; i < out.rank; i++)
    st[i] = (int)start[i];
  t.perm = st;
  t.nin = 1;
  if (op == OP_SLICE && shape_eq(&out, &N(c, a)->shape))
    return a;
  return ir_node(c, &t, &a);
}


/* ---- matrix product --------------------------------------------------- */

/* op(a) @ op(b) for operands of rank >= 2; leading (batch) dimensions
 * broadcast. */
/* Is x a transpose of only its last two axes? Then a matmul reads it
 * through strides instead (the MM_TA/MM_TB flags). */
static int swaps_last_two(Ctx *c, int x) {
  Node *n = N(c, x);
  int r = n->shape.rank;
  if (n->op != OP_TRANSPOSE || r < 2 || n->perm[r - 1] != r - 2 ||
      n->perm[r - 2] != r - 1)
    return 0;
  for (int i = 0; i < r - 2; i++)
    if (n->perm[i] != i)
      return 0;
  return 1;
}

int ir_matmul(Ctx *c, int a, int b, int flags, Loc loc) {
  if (c->rules & R_SIMPLIFY && swaps_last_two(c, a)) {
    a = N(c, a)->in[0];
    flags ^= MM_TA;
  }
  if (c->rules & R_SIMPLIFY && swaps_last_two(c, b)) {
    b = N(c, b)->in[0];
    flags ^= MM_TB;
  }
  Shape sa = N(c, a)->shape, sb = N(c, b)->shape;
  int ra = sa.rank, rb = sb.rank;
  int64_t m = flags & MM_TA ? sa.d[ra - 1] : sa.d[ra - 2];
  int64_t ka = flags & MM_TA ? sa.d[ra - 2] : sa.d[ra - 1];
  int64_t kb = flags & MM_TB ? sb.d[rb - 1] : sb.d[rb - 2];
  int64_t n = flags & MM_TB ? sb.d[rb - 2] : sb.d[rb - 1];
  if (ka != kb) {
    char s1[128], s2[128];
    shape_str(&sa, s1, sizeof s1);
    shape_str(&sb, s2, sizeof s2);
    error_at(c, loc,
             "matmul inner dimensions differ: %s @ %s (%lld vs %lld)", s1, s2,
             (long long)ka, (long long)kb);
  }
  Shape ba = {ra - 2, {0}}, bb = {rb - 2, {0}};
  for (int i = 0; i < ra - 2; i++)
    ba.d[i] = sa.d[i];
  for (int i = 0; i < rb - 2; i++)
    bb.d[i] = sb.d[i];
  Shape s = broadcast_shapes(c, ba, bb, loc);
  s.d[s.rank++] = m;
  s.d[s.rank++] = n;
  check_size(c, s, loc);
  double va, vb;
  if (c->rules & R_FOLD && ((ir_is_const(c, a, &va) && va == 0) ||
      (ir_is_const(c, b, &vb) && vb == 0)))
    return ir_const(c, 0, s);
  Node t = tmpl_of(OP_MATMUL, DT_F, s, loc);
  t.flags = flags;
  t.nin = 2;
  int in[2] = {a, b};
  return ir_node(c, &t, in);
}

/* ---- network ops: attributes travel in perm[] --------------------------- */

int ir_special(Ctx *c, Op op, const int *in, int nin, Shape s,
               const int *attrs, int nattrs, Loc loc) {
  check_size(c, s, loc);
  Node t = tmpl_of(op, DT_F, s, loc);
  int at[MAX_RANK] = {0};
  for (int i = 0; i < nattrs; i++)
    at[i] = attrs[i];
  t.perm = at;
  t.nin = nin;
  return ir_node(c, &t, in);
}

/* ---- arguments and outputs of the generated function ------------------ */

unsigned name_hash(const char *s) {
  unsigned h = 2166136261u;
  for (; *s; s++)
    h = (h ^ (unsigned char)*s) * 16777619u;
  return h;
}

void ir_add_arg(Ctx *c, const char *name, int node, int is_param,
                    int is_seed, Loc loc) {
  Graph *g = &c->g;
  if (g->nargs == g->argcap) {
    int ncap = g->argcap ? g->argcap * 2 : 16;
    Arg *na = arena_alloc(&c->arena, sizeof *na * (size_t)ncap);
    if (g->nargs)
      memcpy(na, g->args, sizeof *na * (size_t)g->nargs);
    g->args = na;
    g->argcap = ncap;
  }
  g->args[g->nargs++] = (Arg){name, node, is_param, is_seed, loc, ROLE_IN, 0};
}

void ir_add_out(Ctx *c, const char *name, int node, int is_grad, Loc loc) {
  Graph *g = &c->g;
  /* duplicates through a hash index of the names (a list of 100,000
     outputs must not cost 100,000^2 comparisons) */
  if ((g->nouts + 1) * 2 > c->outicap) {
    int ocap = c->outicap, ncap = ocap ? ocap * 2 : 64;
    arena_release(&c->arena, c->outidx, sizeof(int) * (size_t)ocap);
    c->outidx = arena_alloc(&c->arena, sizeof(int) * (size_t)ncap);
    c->outicap = ncap;
    for (int i = 0; i < ncap; i++)
      c->outidx[i] = -1;
    for (int o = 0; o < g->nouts; o++) {
      unsigned k = name_hash(g->outs[o].name) & (unsigned)(ncap - 1);
      while (c->outidx[k] >= 0)
        k = (k + 1) & (unsigned)(ncap - 1);
      c->outidx[k] = o;
    }
  }
  unsigned k = name_hash(name) & (unsigned)(c->outicap - 1);
  for (; c->outidx[k] >= 0; k = (k + 1) & (unsigned)(c->outicap - 1))
    if (strcmp(g->outs[c->outidx[k]].name, name) == 0)
      error_at(c, loc, "'%s' is already an output", name);
  c->outidx[k] = g->nouts;
  if (g->nouts == g->outcap) {
    int ncap = g->outcap ? g->outcap * 2 : 16;
    g->outs = arena_grow(&c->arena, g->outs, sizeof *g->outs *
                         (size_t)g->outcap, sizeof *g->outs * (size_t)ncap);
    g->outcap = ncap;
  }
  g->outs[g->nouts++] = (Out){name, node, is_grad, loc, -1};
}

