/* passes.c — the optimizer: a flat pipeline of IR-to-IR passes, with the
 * IR checker run after each one.
 *
 * The parser builds the graph with no rewrites on (c->rules == 0): what
 * `--emit ir --after parse` shows is the program and its derivatives as
 * written. Each pass then rebuilds the graph in topological order through
 * the constructors of ir.c with one more rule turned on, so the rules fire
 * on the combined forward+backward graph:
 *   strip     named values (ID) and detach() go: their work is done once
 *             the gradients exist
 *   fold      constant operands are evaluated
 *   simplify  algebraic identities (x*1, x+0, --x, double transposes,
 *             transposes folded into matmul operand order, broadcasts of
 *             constants, constants reassociated)
 *   cse       equal pure nodes become one (hash-consing)
 *   dce       nodes no output needs are dropped (forward values the
 *             backward does not read are never computed or stored), in
 *             place: nothing is rebuilt; then a product whose transposed
 *             twin is also live becomes a transpose of the twin (untwin)
 * -O0 stops after parse. `--emit ir --after PASS` shows any point.
 * Without --after (or with --after cse or dce), strip, fold, simplify and
 * cse are one rebuild with all their rules on: a rule fires as a node is
 * rebuilt, on operands the earlier rules have already rewritten, so this
 * is the four passes at once (the same C for every test graph and 3,000
 * random ones) in one rebuild of the graph instead of four; dce then
 * compacts it in place.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "agc.h"

/* Marks the nodes some output needs (arena memory). */
char *ir_live_nodes(Ctx *c) {
  char *live = arena_alloc(&c->arena, (size_t)c->g.n + 1);
  for (int o = 0; o < c->g.nouts; o++)
    live[c->g.outs[o].node] = 1;
  for (int i = c->g.n - 1; i >= 0; i--)
    if (live[i])
      for (int k = 0; k < c->g.nodes[i].nin; k++)
        live[c->g.nodes[i].in[k]] = 1;
  return live;
}

/* Rebuilds node n of the old graph, with operands in, through the
 * simplifying constructors of ir.c. */
static int rebuild(Ctx *c, const Node *n, const int *in) {
  switch (op_kind(n->op)) {
  case K_EW:
    if (n->op == OP_BCAST)
      return ir_broadcast(c, in[0], n->shape, n->loc);
    if (n->op == OP_WHERE)
      return ir_where(c, in[0], in[1], in[2], n->loc);
    if (n->nin == 1)
      return ir_unary(c, n->op, in[0], n->loc);
    return ir_binary(c, n->op, in[0], in[1], n->loc);
  case K_MOVE:
    if (n->op == OP_RESHAPE)
      return ir_reshape(c, in[0], n->shape, n->loc);
    if (n->op == OP_TRANSPOSE)
      return ir_transpose(c, in[0], n->perm, n->loc);
    break;
  case K_MM:
    return ir_matmul(c, in[0], in[1], n->flags, n->loc);
  default:
    break;
  }
  return ir_node(c, n, in); /* as it was, with the new operands */
}

/* Testing (agc_graph_options.perturb_seed): does node n's value carry a
 * rounding in f32? Not moves, selections, comparisons or sign-like ops,
 * whose results are exact; a constant if f32 cannot hold it. */
static int rounds(const Node *n) {
  if (n->dt != DT_F)
    return 0;
  switch (n->op) {
  case OP_CONST:
    return (double)(float)n->val != n->val;
  case OP_NEG: case OP_RELU: case OP_ABS: case OP_SIGN: case OP_MAXIMUM:
  case OP_MINIMUM: case OP_LT: case OP_LE: case OP_GT: case OP_GE:
  case OP_EQ: case OP_NE: case OP_WHERE: case OP_DETACH: case OP_ID:
  case OP_BCAST: case OP_MAX: case OP_MIN: case OP_FIRSTMAX:
  case OP_FIRSTMIN: case OP_ONEHOT: case OP_MAXPOOL: case OP_MAXPOOL_DX:
  case OP_EMBED:
    return 0;
  default:
    return op_kind(n->op) != K_MOVE && op_kind(n->op) != K_LEAF;
  }
}

/* How far f32 may move node n's value, in units of 2^-24 of it: one
 * rounding; for an op whose f32 C calls the tanh kernel, 8 (tanhf.c: up
 * to 6 ulp, and every |x| above 7.9 gives tanh(7.9), 1 - 2.7e-7, where
 * f64 tells 1 - 1e-10 from 1 - 1e-8: s1601-g8197, a max-pool window of
 * saturated tanh that ties in f32 alone); the exp kernel's, 3 (expf.c:
 * under 2 ulp, then the op's own rounding). */
static double rounding_ulps(const Node *n) {
  const char *t = op_ctext(n->op);
  if (t && strstr(t, "$H"))
    return 8;
  if (t && strstr(t, "$E"))
    return 3;
  return 1;
}

/* Node id (old node i) with each element y times 1 + u or 1 - u, u =
 * 2^-24 (f32's largest relative rounding, in an f64 run) times
 * rounding_ulps of the node, the sign drawn per
 * element as sign(sin(log(|y| + 1e-300) S + phase)), a function of the
 * element's value, with the phase a hash of seed and i, so that two
 * elements of one node near a tie move apart, as f32's roundings of them
 * do. The seed's lowest bit picks the scale S. 0: 2^40, the sign changes
 * between values one part in 1e12 apart, and values closer than that move
 * alike, so the moves of a smooth function's nearby values add up
 * (s1021-g10010: the max of 3,920 elements of a second derivative, two of
 * them 2 f32 ulps apart). 1: 2^60, values one f64 ulp apart already draw
 * apart, their logs 2^-53 apart are 128 radians (s1052-g33542: erf of 5.4
 * and 5.8, 1 - 1.4e-14 and 1 - 1.1e-16, both 1 in f32). */
static int perturbed(Ctx *c, int id, uint64_t seed, int i, double ulps,
                     Loc loc) {
  uint64_t h = seed ^ ((uint64_t)i + 1) * 0x9e3779b97f4a7c15u;
  h ^= h >> 31;
  h *= 0xbf58476d1ce4e5b9u;
  h ^= h >> 29;
  double phase = (double)(h >> 11) * 0x1p-53 * 6.283185307179586;
  /* the scale varies with the seed too: log(1.5) 2^60 is 4.7e17, whose
     f64 ulp is 64, so the phase alone leaves every seed of that kind the
     same signs for values away from 1 (s1601-g8197: 64 runs, one sign
     pattern per value) */
  h *= 0x94d049bb133111ebu;
  h ^= h >> 32;
  double scale = (seed & 1 ? 0x1p60 : 0x1p40) * (1 + (double)(h >> 11) * 0x1p-53);
  int mag = ir_binary(c, OP_ADD, ir_unary(c, OP_ABS, id, loc), ir_scalar(c, 1e-300), loc);
  int arg = ir_binary(c, OP_MUL, ir_unary(c, OP_LOG, mag, loc), ir_scalar(c, scale), loc);
  int s = ir_unary(c, OP_SIGN,
                   ir_unary(c, OP_SIN, ir_binary(c, OP_ADD, arg, ir_scalar(c, phase), loc), loc),
                   loc);
  int f = ir_binary(c, OP_ADD, ir_scalar(c, 1),
                    ir_binary(c, OP_MUL, s, ir_scalar(c, ulps * 0x1p-24), loc),
                    loc);
  return ir_binary(c, OP_MUL, id, f, loc);
}

/* Rebuilds the graph under c->rules. strip: IDs and detach become their
 * operand; order: the old nodes in this order (NULL: as they are).
 * Without an order, the rebuild is in place: node i of the new graph is
 * written where old nodes already read were (a rewrite seldom adds nodes,
 * and stripped, folded and shared ones leave room), so the largest graph
 * is never in memory twice; ir_rebuild_evict moves the unread old nodes
 * out when that room runs out. perturb: when nonzero, the readers of
 * every node whose value rounds in f32 read its perturbed copy instead
 * (perturb_pass). */
static void rebuild_graph(Ctx *c, int strip, const int *order, uint64_t perturb) {
  Graph old = c->g;
  int inplace = !order && old.n > 0;
  c->prev = old;
  if (inplace)
    c->prev.nodes = NULL; /* c->g owns the array (agc_free) */
  /* in the arena, so an error during the pass leaks nothing; given back
     at the end (a large allocation is a block of its own) */
  size_t mapsz = sizeof(int) * (size_t)(old.n + 1);
  int *map = arena_alloc(&c->arena, mapsz);
  memset(&c->g, 0, sizeof c->g);
  c->g.args = old.args;
  c->g.nargs = old.nargs;
  c->g.argcap = old.argcap;
  c->g.outs = old.outs;
  c->g.nouts = old.nouts;
  c->g.outcap = old.outcap;
  if (inplace) {
    c->g.nodes = old.nodes;
    c->g.cap = old.cap;
    c->rb_n = old.n;
  } else {
    ir_graph_reserve(c, old.n + 16);
  }
  if (c->rules & R_CSE)
    ir_hash_reserve(c, old.n); /* a rebuild has at most about old.n nodes */
  int tcap = 8;
  int *tmp = arena_alloc(&c->arena, sizeof(int) * (size_t)tcap);
  for (int i = 0; i < old.n; i++)
    map[i] = -1;
  for (int i0 = 0; i0 < old.n; i0++) {
    int i = order ? order[i0] : i0;
    Node cur;
    if (inplace) { /* a copy: slot i is free for the new graph now */
      cur = c->rb_rest && i >= c->rb_from ? c->rb_rest[i - c->rb_from]
                                          : old.nodes[i];
      if (!c->rb_rest)
        c->rb_lim = i + 1;
    } else {
      cur = old.nodes[i];
    }
    const Node *n = &cur;
    if (n->op == OP_INPUT || n->op == OP_PARAM) {
      map[i] = ir_leaf(c, n->op, n->dt, n->shape, n->name, n->loc);
      c->g.nodes[map[i]].ext = n->ext;
      continue;
    }
    if (strip && (n->op == OP_ID || n->op == OP_DETACH)) {
      map[i] = map[n->in[0]];
    } else {
      if (n->nin > tcap) {
        tmp = arena_grow(&c->arena, tmp, sizeof(int) * (size_t)tcap,
                         sizeof(int) * (size_t)n->nin);
        tcap = n->nin;
      }
      for (int k = 0; k < n->nin; k++)
        tmp[k] = map[n->in[k]];
      map[i] = rebuild(c, n, tmp);
      if (perturb && rounds(n))
        map[i] = perturbed(c, map[i], perturb, i, rounding_ulps(n), n->loc);
    }
    /* keeps the user's name in comments, also where the node became its
       operand (a stripped ID, or a rewrite that handed one back) */
    Node *t = &c->g.nodes[map[i]];
    if (n->name && !t->name && t->op != OP_INPUT && t->op != OP_PARAM)
      t->name = n->name;
  }
  for (int a = 0; a < c->g.nargs; a++)
    c->g.args[a].node = map[c->g.args[a].node];
  for (int o = 0; o < c->g.nouts; o++)
    c->g.outs[o].node = map[c->g.outs[o].node];
  for (int r = 0; r < c->nbroots; r++) {
    c->broots[r] = map[c->broots[r]];
    if (c->bseeds[r] >= 0)
      c->bseeds[r] = map[c->bseeds[r]];
  }
  c->rb_lim = 0;
  free(c->rb_rest);
  c->rb_rest = NULL;
  arena_release(&c->arena, tmp, sizeof(int) * (size_t)tcap);
  arena_release(&c->arena, map, mapsz);
  if (inplace) { /* the node array is the new graph's */
    old.nodes = NULL;
    old.cap = 0;
  }
  ir_graph_recycle(c, &old);
  arena_free(&old.ins);
  memset(&c->prev, 0, sizeof c->prev);
}

/* untwin's table slot of the product op(a) @ op(b) with flags fl */
static unsigned mm_slot(int a, int b, int fl, int cap) {
  return (((unsigned)a * 2654435761u) ^ ((unsigned)b * 40503u) ^ (unsigned)fl) &
         (unsigned)(cap - 1);
}

/* Part of dce: a product whose transposed twin (b^T @ a^T beside a @ b:
 * simplify writes (a @ b).T so, to land a gradient in its param's layout)
 * is also live becomes a transpose of the earlier of the two. The two sum
 * in different orders, so their roundings differ, and a program that
 * compares or mixes a product with its transpose must see exactly one
 * value, as -O0 does (s2201-g2209: (p6 @ p7).T != p6 @ p7 held on the
 * diagonal). Only live twins: one about to die (x @ W.T's gradient of W,
 * built as a product and then transposed) is left to dce. In place, after
 * the compaction, with a table of the products keyed by their operands. */
static void untwin(Ctx *c) {
  Graph *g = &c->g;
  c->rules |= R_UNTWINNED; /* and no rebuild after this makes them again */
  int nmm = 0;
  for (int i = 0; i < g->n; i++)
    nmm += g->nodes[i].op == OP_MATMUL;
  if (nmm < 2)
    return;
  int cap = 4;
  while (cap < nmm * 2)
    cap *= 2;
  size_t tsz = sizeof(int) * (size_t)cap;
  int *tab = arena_alloc(&c->arena, tsz);
  for (int k = 0; k < cap; k++)
    tab[k] = -1;
  for (int j = 0; j < g->n; j++) {
    Node *n = &g->nodes[j];
    if (n->op != OP_MATMUL)
      continue;
    int r = n->shape.rank;
    /* look for the twin among the earlier products */
    const int tf = mm_twin_flags(n->flags);
    int twin = -1;
    for (unsigned k = mm_slot(n->in[1], n->in[0], tf, cap); tab[k] >= 0;
         k = (k + 1) & (unsigned)(cap - 1)) {
      const Node *m = &g->nodes[tab[k]];
      int same = m->in[0] == n->in[1] && m->in[1] == n->in[0] &&
                 m->flags == tf && m->shape.rank == r;
      for (int d = 0; same && d < r; d++)
        same = m->shape.d[d] ==
               n->shape.d[d == r - 2 ? r - 1 : d == r - 1 ? r - 2 : d];
      if (same) {
        twin = tab[k];
        break;
      }
    }
    if (twin >= 0) { /* n = twin^T: a copy, or a reshape if only a size-1
                        axis moves */
      int keep = n->shape.d[r - 1] == 1 || n->shape.d[r - 2] == 1;
      int *in = arena_alloc_raw(&g->ins, sizeof(int) * (size_t)(2 + MAX_RANK));
      in[0] = twin;
      in[1] = 0;
      int *p = in + 2;
      for (int d = 0; d < MAX_RANK; d++)
        p[d] = d >= r ? 0 : d == r - 2 ? r - 1 : d == r - 1 ? r - 2 : d;
      n->op = keep ? OP_RESHAPE : OP_TRANSPOSE;
      n->nin = 1;
      n->in = in;
      n->flags = 0;
      n->perm = keep ? ir_zero_perm : p;
      continue;
    }
    unsigned k = mm_slot(n->in[0], n->in[1], n->flags, cap);
    while (tab[k] >= 0)
      k = (k + 1) & (unsigned)(cap - 1);
    tab[k] = j;
  }
  arena_release(&c->arena, tab, tsz);
}

/* dce: drops the nodes no output needs, in place. Nodes are in
 * topological order, so a kept node only moves down and its operands have
 * moved before it; leaves stay (arguments name them). No node changes, so
 * nothing is rebuilt through the constructors; the hash-consing table is
 * made again, for all nodes, by the next ir_node that needs it. */
static void compact_live(Ctx *c) {
  Graph *g = &c->g;
  char *live = ir_live_nodes(c);
  size_t mapsz = sizeof(int) * (size_t)(g->n + 1);
  int *map = arena_alloc(&c->arena, mapsz);
  int m = 0;
  for (int i = 0; i < g->n; i++) {
    const Node *n = &g->nodes[i];
    if (!live[i] && n->op != OP_INPUT && n->op != OP_PARAM) {
      map[i] = -1;
      continue;
    }
    map[i] = m;
    if (m != i)
      g->nodes[m] = *n;
    Node *t = &g->nodes[m++];
    for (int k = 0; k < t->nin; k++)
      t->in[k] = map[t->in[k]];
  }
  g->n = m;
  for (int a = 0; a < g->nargs; a++)
    g->args[a].node = map[g->args[a].node];
  for (int o = 0; o < g->nouts; o++)
    g->outs[o].node = map[g->outs[o].node];
  for (int r = 0; r < c->nbroots; r++) {
    c->broots[r] = map[c->broots[r]];
    if (c->bseeds[r] >= 0)
      c->bseeds[r] = map[c->bseeds[r]];
  }
  free(g->hash);
  g->hash = NULL;
  g->hcap = 0;
  arena_release(&c->arena, map, mapsz);
  arena_release(&c->arena, live, (size_t)mapsz / sizeof(int));
  untwin(c);
}

/* ---- schedule: each param's update as early as it may run ------------- */


/* A CSR list of edges from -> to. */
typedef struct {
  int *start, *to;
} Edges;

/* Which nodes are a training step's update arithmetic (optim.c). */
static char *update_nodes(Ctx *c) {
  char *upd = arena_alloc(&c->arena, (size_t)c->g.n + 1);
  for (int i = 0; i < c->g.n; i++)
    upd[i] = (char)optim_is_update(c, &c->g.nodes[i]);
  return upd;
}

/* Output o's node, if it is an update that writes a param in place (the
 * param's leaf in *leaf); else -1. */
static int param_writer(const Ctx *c, const char *upd, int o, int *leaf) {
  const Graph *g = &c->g;
  int h = g->outs[o].home;
  if (h < 0 || g->args[h].role != ROLE_PARAM)
    return -1;
  int w = g->outs[o].node;
  *leaf = g->args[h].node;
  return w == *leaf || !upd[w] ? -1 : w;
}

/* The users of each node (CSR); fill: n + 1 zeroed ints of scratch. */
static Edges users_of(Ctx *c, int *fill) {
  Graph *g = &c->g;
  int n = g->n;
  Edges us = {arena_alloc(&c->arena, sizeof(int) * (size_t)(n + 2)), NULL};
  int64_t ne = 0;
  for (int i = 0; i < n; i++)
    for (int k = 0; k < g->nodes[i].nin; k++)
      us.start[g->nodes[i].in[k] + 1]++, ne++;
  for (int i = 0; i < n; i++)
    us.start[i + 1] += us.start[i];
  us.to = arena_alloc(&c->arena, sizeof(int) * (size_t)(ne + 1));
  for (int i = 0; i < n; i++)
    for (int k = 0; k < g->nodes[i].nin; k++) {
      int a = g->nodes[i].in[k];
      us.to[us.start[a] + fill[a]++] = i;
    }
  return us;
}

/* The nodes of a training step (optim.c) in an order that runs each
 * update node as soon as its operands exist and, for the node that writes
 * a param in place, once every node that may read the param's memory has
 * run: the readers of the param, and, through element-wise and shape ops
 * (which the planner may compute inside their consumer's loop), theirs.
 * The other nodes keep their order. NULL (keep the order) if the graph is
 * not a step, or the readers' closures would cost more than linear time. */
static int *update_order(Ctx *c) {
  if (c->opt.mode != MODE_STEP)
    return NULL;
  Graph *g = &c->g;
  int n = g->n;
  char *upd = update_nodes(c);
  int *need = arena_alloc(&c->arena, sizeof(int) * (size_t)(n + 1));
  int *order = arena_alloc(&c->arena, sizeof(int) * (size_t)(n + 1));
  int *fill = arena_alloc(&c->arena, sizeof(int) * (size_t)(n + 1));
  Edges us = users_of(c, fill);
  for (int i = 0; i < n; i++)
    if (upd[i])
      need[i] = g->nodes[i].nin;
  /* readers of each in-place param: an anti-dependency reader -> writer */
  int *rd = NULL, nrd = 0, rdcap = 0; /* pairs reader, writer */
  int *stamp = arena_alloc(&c->arena, sizeof(int) * (size_t)(n + 1));
  int *stack = arena_alloc(&c->arena, sizeof(int) * (size_t)(n + 1));
  int64_t budget = 4 * (int64_t)n + 100000;
  for (int o = 0; o < g->nouts; o++) {
    int leaf, w = param_writer(c, upd, o, &leaf);
    if (w < 0)
      continue;
    int sp = 0;
    stack[sp++] = leaf;
    stamp[leaf] = o + 1;
    while (sp) {
      int x = stack[--sp];
      for (int e = us.start[x]; e < us.start[x + 1]; e++) {
        int r = us.to[e];
        if (stamp[r] == o + 1 || upd[r])
          continue;
        stamp[r] = o + 1;
        if (--budget < 0)
          return NULL;
        if (nrd == rdcap) {
          int ncap = rdcap ? 2 * rdcap : 64;
          rd = arena_grow(&c->arena, rd, sizeof(int) * 2 * (size_t)rdcap,
                          sizeof(int) * 2 * (size_t)ncap);
          rdcap = ncap;
        }
        rd[2 * nrd] = r;
        rd[2 * nrd + 1] = w;
        nrd++;
        need[w]++;
        OpKind k = op_kind(g->nodes[r].op);
        if (k == K_EW || k == K_MOVE)
          stack[sp++] = r;
      }
    }
  }
  /* readers -> writers (CSR) */
  Edges an = {arena_alloc(&c->arena, sizeof(int) * (size_t)(n + 2)), NULL};
  for (int e = 0; e < nrd; e++)
    an.start[rd[2 * e] + 1]++;
  for (int i = 0; i < n; i++)
    an.start[i + 1] += an.start[i];
  an.to = arena_alloc(&c->arena, sizeof(int) * (size_t)(nrd + 1));
  memset(fill, 0, sizeof(int) * (size_t)(n + 1));
  for (int e = 0; e < nrd; e++) {
    int r = rd[2 * e];
    an.to[an.start[r] + fill[r]++] = rd[2 * e + 1];
  }
  /* list scheduling: the leaves (the state's come last in the program),
     then the other nodes in order, each followed by the update nodes it
     made ready (FIFO) */
  char *done = arena_alloc(&c->arena, (size_t)n + 1);
  int *queue = stack, qh = 0, qt = 0, no = 0;
  for (int i = 0; i < n; i++)
    if (upd[i] && need[i] == 0)
      queue[qt++] = i;
  for (int i = 0; i < n; i++)
    if (op_kind(g->nodes[i].op) == K_LEAF)
      order[no++] = i;
  for (int i = -1; i <= n; i++) {
    int first = i < 0 ? 0 : no;
    if (i >= 0 && i < n && !upd[i] && op_kind(g->nodes[i].op) != K_LEAF) {
      for (int k = 0; k < g->nodes[i].nin; k++)
        if (!done[g->nodes[i].in[k]])
          return NULL; /* reads an update node: keep the order */
      order[no++] = i;
    }
    for (int k = first; k < no; k++)
      done[order[k]] = 1;
    while (first < no || qh < qt) {
      if (first == no) {
        int u = queue[qh++];
        order[no++] = u;
        done[u] = 1;
      }
      int x = order[first++];
      for (int e = us.start[x]; e < us.start[x + 1]; e++)
        if (upd[us.to[e]] && --need[us.to[e]] == 0)
          queue[qt++] = us.to[e];
      for (int e = an.start[x]; e < an.start[x + 1]; e++)
        if (--need[an.to[e]] == 0)
          queue[qt++] = an.to[e];
    }
  }
  return no == n ? order : NULL;
}

/* An update node that reads another param's memory directly (sum(a * b):
 * a's gradient is b itself) must read it before that param's update
 * writes it; when the two updates read each other's params (a's update
 * reads b, b's reads a) no order of them does. Such a read goes through a
 * copy: a pad by zero (a copy the planner always stores, never computes
 * inside its consumer), which, like any other reader of the param, the
 * schedule runs before the param's update. An update node that the
 * param's own update depends on needs none (it runs first, or in the same
 * loop at the same element). The copies are appended; returns their
 * count (none when the walks would cost more than linear time). */
static int step_copies(Ctx *c) {
  if (c->opt.mode != MODE_STEP)
    return 0;
  Graph *g = &c->g;
  int n = g->n;
  char *upd = update_nodes(c);
  Edges us = users_of(c, arena_alloc(&c->arena, sizeof(int) * (size_t)(n + 1)));
  int *anc = arena_alloc(&c->arena, sizeof(int) * (size_t)(n + 1));
  int *seen = arena_alloc(&c->arena, sizeof(int) * (size_t)(n + 1));
  int *stack = arena_alloc(&c->arena, sizeof(int) * (size_t)(n + 1));
  int *pairs = NULL, npairs = 0, pcap = 0; /* (update node, operand slot) */
  int64_t budget = 4 * (int64_t)n + 100000;
  for (int o = 0; o < g->nouts; o++) {
    int leaf, w = param_writer(c, upd, o, &leaf);
    if (w < 0)
      continue;
    /* the update nodes this param's update depends on */
    int sp = 0;
    stack[sp++] = w;
    anc[w] = o + 1;
    while (sp) {
      int x = stack[--sp];
      for (int k = 0; k < g->nodes[x].nin; k++) {
        int a = g->nodes[x].in[k];
        if (upd[a] && anc[a] != o + 1) {
          if (--budget < 0)
            return 0;
          anc[a] = o + 1;
          stack[sp++] = a;
        }
      }
    }
    /* the param's memory (the param, or a reshape viewing it): an update
       node reading it, and not among the above, reads it through a copy.
       (A value computed from the param is stored before the param's
       update: the schedule's anti-dependencies, and the planner, which
       computes no other param's reader inside an update's loop.) */
    sp = 0;
    stack[sp++] = leaf;
    seen[leaf] = o + 1;
    while (sp) {
      int y = stack[--sp];
      for (int e = us.start[y]; e < us.start[y + 1]; e++) {
        int r = us.to[e];
        if (--budget < 0)
          return 0;
        if (upd[r]) {
          if (anc[r] == o + 1)
            continue;
          for (int k = 0; k < g->nodes[r].nin; k++)
            if (g->nodes[r].in[k] == y) {
              if (npairs == pcap) {
                int ncap = pcap ? 2 * pcap : 16;
                pairs = arena_grow(&c->arena, pairs, sizeof(int) * 2 * (size_t)pcap,
                                   sizeof(int) * 2 * (size_t)ncap);
                pcap = ncap;
              }
              pairs[2 * npairs] = r;
              pairs[2 * npairs + 1] = k;
              npairs++;
            }
          continue;
        }
        if (seen[r] != o + 1 && g->nodes[r].op == OP_RESHAPE) {
          seen[r] = o + 1;
          stack[sp++] = r;
        }
      }
    }
  }
  for (int e = 0; e < npairs; e++) {
    int r = pairs[2 * e], k = pairs[2 * e + 1];
    int y = g->nodes[r].in[k];
    const Node *ny = &g->nodes[y];
    int64_t zero[MAX_RANK] = {0};
    int cp = ir_slice(c, OP_PAD, y, zero, ny->shape, ny->loc);
    g->nodes[r].in[k] = cp; /* after y: the schedule puts it in order */
  }
  return g->n - n;
}

/* Each copy of step_copies (nodes n0 on) right after what it copies, the
 * rest in order: a topological order when the schedule has none. */
static int *copies_in_place(Ctx *c, int n0) {
  Graph *g = &c->g;
  int *order = arena_alloc(&c->arena, sizeof(int) * (size_t)(g->n + 1));
  /* the copies of each node, as lists: head[i], then next[j - n0] */
  int *head = arena_alloc(&c->arena, sizeof(int) * (size_t)(n0 + 1));
  int *next = arena_alloc(&c->arena, sizeof(int) * (size_t)(g->n - n0 + 1));
  for (int i = 0; i < n0; i++)
    head[i] = -1;
  for (int j = g->n - 1; j >= n0; j--) {
    next[j - n0] = head[g->nodes[j].in[0]];
    head[g->nodes[j].in[0]] = j;
  }
  int no = 0;
  for (int i = 0; i < n0; i++) {
    order[no++] = i;
    for (int j = head[i]; j >= 0; j = next[j - n0])
      order[no++] = j;
  }
  return order;
}

/* The IR checker: operands come first, arities and shapes agree. A
 * failure is a compiler bug, reported as such. */
static void check_ir(Ctx *c, const char *after) {
  for (int i = 0; i < c->g.n; i++) {
    const Node *n = &c->g.nodes[i];
    for (int k = 0; k < n->nin; k++)
      if (n->in[k] < 0 || n->in[k] >= i)
        error_plain(c, "internal: IR check after %s: node %%%d reads %%%d",
                    after, i, n->in[k]);
    if (n->numel != shape_numel(&n->shape))
      error_plain(c, "internal: IR check after %s: node %%%d size", after, i);
    if (op_kind(n->op) == K_EW && n->op != OP_BCAST)
      for (int k = 0; k < n->nin; k++) {
        const Shape *s = &c->g.nodes[n->in[k]].shape;
        if (s->rank > n->shape.rank)
          error_plain(c, "internal: IR check after %s: node %%%d rank", after,
                      i);
        for (int d = 0; d < s->rank; d++) {
          int64_t x = s->d[d], y = n->shape.d[d + n->shape.rank - s->rank];
          if (x != y && x != 1)
            error_plain(c, "internal: IR check after %s: node %%%d shape",
                        after, i);
        }
      }
    if (n->op == OP_RESHAPE && c->g.nodes[n->in[0]].numel != n->numel)
      error_plain(c, "internal: IR check after %s: reshape %%%d", after, i);
  }
  for (int o = 0; o < c->g.nouts; o++)
    if (c->g.outs[o].node < 0 || c->g.outs[o].node >= c->g.n)
      error_plain(c, "internal: IR check after %s: output %d", after, o);
}

/* The pipeline: each pass turns on its rules and rebuilds the graph. */
static const struct {
  const char *name;
  unsigned rules; /* R_* added to c->rules */
  int strip, live_only;
} passes[] = {
    {"strip", 0, 1, 0},         {"fold", R_FOLD, 0, 0},
    {"simplify", R_SIMPLIFY, 0, 0}, {"cse", R_CSE, 0, 0},
    {"dce", 0, 0, 1},
};

int pass_known(const char *name) {
  if (strcmp(name, "parse") == 0)
    return 1;
  for (size_t i = 0; i < sizeof passes / sizeof passes[0]; i++)
    if (strcmp(name, passes[i].name) == 0)
      return 1;
  return 0;
}

/* The node array trimmed to its nodes (it grew by doubling): the planner
 * and the emitter allocate next, on top of it. */
static void trim_nodes(Ctx *c) {
  if (c->g.n == 0 || c->g.cap <= c->g.n)
    return;
  Node *nn = realloc(c->g.nodes, sizeof *nn * (size_t)c->g.n);
  if (nn) {
    c->g.nodes = nn;
    c->g.cap = c->g.n;
  }
}

/* Testing: every value that rounds in f32 moved by f32's rounding
 * (agc_graph_options.perturb_seed), after the optimizer, so that no rule
 * takes the moves out again. */
static void perturb_pass(Ctx *c) {
  if (!c->opt.api.perturb_seed)
    return;
  int *order = arena_alloc(&c->arena, sizeof(int) * (size_t)(c->g.n + 1));
  for (int i = 0; i < c->g.n; i++)
    order[i] = i; /* not in place: the graph grows */
  rebuild_graph(c, 0, order, c->opt.api.perturb_seed);
  check_ir(c, "perturb");
}

static void passes_from(Ctx *c, const char *stop_after) {
  check_ir(c, "parse");
  if (stop_after && strcmp(stop_after, "parse") == 0)
    return;
  if (c->opt.api.O0) {
    perturb_pass(c);
    return;
  }
  size_t i0 = 0;
  if (!stop_after || strcmp(stop_after, "cse") == 0 ||
      strcmp(stop_after, "dce") == 0) {
    /* strip, fold, simplify and cse in one rebuild with all their rules */
    c->rules |= R_FOLD | R_SIMPLIFY | R_CSE;
    rebuild_graph(c, 1, NULL, 0);
    check_ir(c, "cse");
    if (stop_after && strcmp(stop_after, "cse") == 0)
      return;
    i0 = 4;
  }
  for (size_t i = i0; i < sizeof passes / sizeof passes[0]; i++) {
    c->rules |= passes[i].rules;
    if (passes[i].live_only)
      compact_live(c);
    else
      rebuild_graph(c, passes[i].strip, NULL, 0);
    check_ir(c, passes[i].name);
    if (stop_after && strcmp(stop_after, passes[i].name) == 0)
      return;
  }
  perturb_pass(c);
  int n0 = c->g.n;
  int copies = step_copies(c);
  int *order = update_order(c);
  if (!order && copies)
    order = copies_in_place(c, n0);
  if (order) {
    rebuild_graph(c, 0, order, 0);
    check_ir(c, "schedule");
  }
}

void run_passes(Ctx *c, const char *stop_after) {
  passes_from(c, stop_after);
  ir_spare_free(c);
  trim_nodes(c);
  /* the hash-consing table (16 bytes a node) goes too: a node built after
     the passes, if any, makes it again (ir.c: hash_grow) */
  free(c->g.hash);
  c->g.hash = NULL;
  c->g.hcap = 0;
}
