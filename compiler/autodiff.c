/* autodiff.c — reverse-mode differentiation as a graph-to-graph transform.
 *
 * The adjoint of every node is an IR node. Nodes are visited in reverse
 * creation (topological) order; each op's rule (one case of `rule`, or of
 * pow_rule or kernel_rule) adds a contribution to the adjoint of each
 * differentiable operand, and contributions to a node used more than once
 * are summed. Since adjoints are
 * ordinary nodes, the result can be differentiated again.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "agc.h"

typedef struct {
  Ctx *c;
  int *adj;  /* adjoint node of each original node, or -1 */
  char *dep; /* node depends on some wrt node */
  Loc loc;
} AD;

static Shape SH(Ctx *c, int id) { return c->g.nodes[id].shape; }

static int K(AD *d, double v) { return ir_scalar(d->c, v); }
static int add(AD *d, int a, int b) { return ir_binary(d->c, OP_ADD, a, b, d->loc); }
static int sub(AD *d, int a, int b) { return ir_binary(d->c, OP_SUB, a, b, d->loc); }
static int mul(AD *d, int a, int b) { return ir_binary(d->c, OP_MUL, a, b, d->loc); }
static int dv(AD *d, int a, int b) { return ir_binary(d->c, OP_DIV, a, b, d->loc); }
static int un(AD *d, Op op, int a) { return ir_unary(d->c, op, a, d->loc); }
static int bin(AD *d, Op op, int a, int b) { return ir_binary(d->c, op, a, b, d->loc); }

/* Adds contribution g (shaped like a broadcast result) to operand x. */
static void contribute(AD *d, int x, int g) {
  if (!d->dep[x])
    return;
  g = ir_sum_to(d->c, g, SH(d->c, x), d->loc);
  d->adj[x] = d->adj[x] < 0 ? g : add(d, d->adj[x], g);
}

static int inverse_perm_transpose(AD *d, int g, const int *perm, int rank) {
  int inv[MAX_RANK];
  for (int i = 0; i < rank; i++)
    inv[perm[i]] = i;
  return ir_transpose(d->c, g, inv, d->loc);
}

/* d(op(A) @ op(B)) for C = op_a(A) op_b(B), G = dC. */
static void matmul_rule(AD *d, const Node *n, int g) {
  int a = n->in[0], b = n->in[1];
  int ta = n->flags & MM_TA, tb = n->flags & MM_TB;
  Ctx *c = d->c;
  if (d->dep[a]) {
    int ga = ta ? ir_matmul(c, b, g, (tb ? MM_TA : 0) | MM_TB, d->loc)
                : ir_matmul(c, g, b, tb ? 0 : MM_TB, d->loc);
    contribute(d, a, ga);
  }
  if (d->dep[b]) {
    int gb = tb ? ir_matmul(c, g, a, MM_TA | (ta ? MM_TB : 0), d->loc)
                : ir_matmul(c, a, g, ta ? 0 : MM_TA, d->loc);
    contribute(d, b, gb);
  }
}

/* y = a ** b */
static void pow_rule(AD *d, const Node *n, int y, int g) {
  Ctx *c = d->c;
  int a = n->in[0], b = n->in[1];
  if (d->dep[a]) {
    double e;
    int ga;
    if (ir_is_const(c, b, &e)) {
      /* d(x**0)/dx = 0, even at x = 0 (PyTorch). */
      ga = e == 0 ? K(d, 0)
                  : mul(d, g, mul(d, b, bin(d, OP_POW, a, K(d, e - 1))));
    } else {
      int t = mul(d, b, bin(d, OP_POW, a, sub(d, b, K(d, 1))));
      t = ir_where(c, bin(d, OP_EQ, b, K(d, 0)), K(d, 0), t, d->loc);
      ga = mul(d, g, t);
    }
    if (!(ir_is_const(c, ga, &e) && e == 0))
      contribute(d, a, ga);
  }
  if (d->dep[b]) {
    /* y * log(a), zero where a == 0 and b >= 0 (PyTorch). */
    int t = mul(d, y, un(d, OP_LOG, a));
    int zero = mul(d, bin(d, OP_EQ, a, K(d, 0)), bin(d, OP_GE, b, K(d, 0)));
    contribute(d, b, mul(d, g, ir_where(c, zero, K(d, 0), t, d->loc)));
  }
}

/* The kernel ops: convolution, pooling and embedding, and their own
 * adjoints. */
static void kernel_rule(AD *d, const Node *n, int g) {
  Ctx *c = d->c;
  int a = n->in[0], b = n->nin > 1 ? n->in[1] : -1;
  switch (n->op) {
  /* conv2d and its two gradients are linear in each operand: each one's
     adjoint is one of the three (so higher orders need nothing more). */
  case OP_CONV2D: /* y = conv(x, w) */
    if (d->dep[a])
      contribute(d, a, ir_special(c, OP_CONV2D_DX, (int[]){g, b}, 2, SH(c, a),
                                  n->perm, 2, d->loc));
    if (d->dep[b])
      contribute(d, b, ir_special(c, OP_CONV2D_DW, (int[]){a, g}, 2, SH(c, b),
                                  n->perm, 2, d->loc));
    return;
  case OP_CONV2D_DX: /* dx = DX(gy, w) */
    if (d->dep[a])
      contribute(d, a, ir_special(c, OP_CONV2D, (int[]){g, b}, 2, SH(c, a),
                                  n->perm, 2, d->loc));
    if (d->dep[b])
      contribute(d, b, ir_special(c, OP_CONV2D_DW, (int[]){g, a}, 2, SH(c, b),
                                  n->perm, 2, d->loc));
    return;
  case OP_CONV2D_DW: /* dw = DW(x, gy) */
    if (d->dep[a])
      contribute(d, a, ir_special(c, OP_CONV2D_DX, (int[]){b, g}, 2, SH(c, a),
                                  n->perm, 2, d->loc));
    if (d->dep[b])
      contribute(d, b, ir_special(c, OP_CONV2D, (int[]){a, g}, 2, SH(c, b),
                                  n->perm, 2, d->loc));
    return;
  case OP_AVGPOOL:
    contribute(d, a, ir_special(c, OP_AVGPOOL_DX, &g, 1, SH(c, a), n->perm, 2,
                                d->loc));
    return;
  case OP_AVGPOOL_DX:
    contribute(d, a, ir_special(c, OP_AVGPOOL, &g, 1, SH(c, a), n->perm, 2,
                                d->loc));
    return;
  case OP_MAXPOOL: /* the first maximum of each window takes it */
    /* located at the pooling call: a second derivative is refused there */
    contribute(d, a, ir_special(c, OP_MAXPOOL_DX, (int[]){a, g}, 2, SH(c, a),
                                n->perm, 2, n->loc));
    return;
  case OP_MAXPOOL_DX:
    error_at(c, n->loc, "the second derivative of max_pool2d() is not "
             "supported");
  case OP_EMBED: /* rows gathered by index; repeated indices add up */
    contribute(d, a, ir_special(c, OP_EMBED_DT, (int[]){g, b}, 2, SH(c, a),
                                NULL, 0, d->loc));
    return;
  case OP_EMBED_DT:
    contribute(d, a, ir_special(c, OP_EMBED, (int[]){g, b}, 2, SH(c, a), NULL,
                                0, d->loc));
    return;
  default:
    break;
  }
}

static void rule(AD *d, int id, int g) {
  Ctx *c = d->c;
  Node n = c->g.nodes[id]; /* a copy: building nodes may move the array */
  int a = n.nin > 0 ? n.in[0] : -1, b = n.nin > 1 ? n.in[1] : -1;
  int y = id;
  switch (n.op) {
  case OP_INPUT: case OP_PARAM: case OP_CONST: case OP_DETACH:
  case OP_SIGN: case OP_LT: case OP_LE: case OP_GT: case OP_GE:
  case OP_EQ: case OP_NE: case OP_ONEHOT: case OP_FIRSTMAX:
  case OP_FIRSTMIN:
    return; /* no gradient flows through these */
  case OP_ID: contribute(d, a, g); return;
  case OP_NEG: contribute(d, a, un(d, OP_NEG, g)); return;
  case OP_EXP: contribute(d, a, mul(d, g, y)); return;
  case OP_LOG: contribute(d, a, dv(d, g, a)); return;
  case OP_SIN: contribute(d, a, mul(d, g, un(d, OP_COS, a))); return;
  case OP_COS:
    contribute(d, a, un(d, OP_NEG, mul(d, g, un(d, OP_SIN, a))));
    return;
  case OP_TAN: contribute(d, a, mul(d, g, add(d, K(d, 1), mul(d, y, y)))); return;
  case OP_ATAN: contribute(d, a, dv(d, g, add(d, K(d, 1), mul(d, a, a)))); return;
  case OP_TANH: contribute(d, a, mul(d, g, sub(d, K(d, 1), mul(d, y, y)))); return;
  case OP_SIGMOID:
    contribute(d, a, mul(d, g, mul(d, y, sub(d, K(d, 1), y))));
    return;
  case OP_RELU: contribute(d, a, mul(d, g, bin(d, OP_GT, a, K(d, 0)))); return;
  case OP_ABS: contribute(d, a, mul(d, g, un(d, OP_SIGN, a))); return;
  case OP_SQRT: contribute(d, a, dv(d, g, mul(d, y, K(d, 2)))); return;
  case OP_RSQRT:
    contribute(d, a, mul(d, g, mul(d, K(d, -0.5), mul(d, y, mul(d, y, y)))));
    return;
  case OP_LOG1P: contribute(d, a, dv(d, g, add(d, a, K(d, 1)))); return;
  case OP_EXPM1: contribute(d, a, mul(d, g, add(d, y, K(d, 1)))); return;
  case OP_SOFTPLUS: contribute(d, a, mul(d, g, un(d, OP_SIGMOID, a))); return;
  case OP_ERF:
    contribute(d, a, mul(d, g, mul(d, K(d, 1.12837916709551257390),
                                   un(d, OP_EXP, un(d, OP_NEG, mul(d, a, a))))));
    return;
  case OP_ADD: contribute(d, a, g); contribute(d, b, g); return;
  case OP_SUB: contribute(d, a, g); contribute(d, b, un(d, OP_NEG, g)); return;
  case OP_MUL: contribute(d, a, mul(d, g, b)); contribute(d, b, mul(d, g, a)); return;
  case OP_DIV:
    contribute(d, a, dv(d, g, b));
    if (d->dep[b])
      contribute(d, b, un(d, OP_NEG, mul(d, g, dv(d, y, b))));
    return;
  case OP_POW: pow_rule(d, &n, y, g); return;
  case OP_MAXIMUM: case OP_MINIMUM: {
    /* Ties send half of the gradient to each side (PyTorch). */
    Op win = n.op == OP_MAXIMUM ? OP_GT : OP_LT;
    int half = mul(d, bin(d, OP_EQ, a, b), K(d, 0.5));
    contribute(d, a, mul(d, g, add(d, bin(d, win, a, b), half)));
    contribute(d, b, mul(d, g, add(d, bin(d, win, b, a), half)));
    return;
  }
  case OP_WHERE:
    contribute(d, b, ir_where(c, a, g, K(d, 0), d->loc));
    contribute(d, n.in[2], ir_where(c, a, K(d, 0), g, d->loc));
    return;
  case OP_BCAST: contribute(d, a, g); return;
  case OP_SUM: contribute(d, a, ir_broadcast(c, g, SH(c, a), d->loc)); return;
  case OP_MAX: case OP_MIN: {
    if (n.flags) { /* one axis: the first extremum takes it all */
      int axis = 0;
      while (!(n.mask & (1u << axis)))
        axis++;
      int hot = ir_firstmax(c, n.op == OP_MAX ? OP_FIRSTMAX : OP_FIRSTMIN, a,
                            axis, d->loc);
      contribute(d, a, mul(d, hot, g));
    } else { /* all or several axes: ties share evenly */
      int hit = bin(d, OP_EQ, a, y);
      int cnt = ir_reduce(c, OP_SUM, hit, n.mask, d->loc);
      contribute(d, a, mul(d, hit, dv(d, g, cnt)));
    }
    return;
  }
  case OP_PROD:
    contribute(d, a, mul(d, g, ir_prodexcl(c, a, n.mask, d->loc)));
    return;
  case OP_PRODEXCL: { /* d/dx_j of prod_{k != i} x_k, summed against g_i */
    Node t = c->g.nodes[id];
    t.op = OP_PRODEXCL2;
    t.nin = 2;
    contribute(d, a, ir_node(c, &t, (int[]){a, g}));
    return;
  }
  case OP_PRODEXCL2:
    error_at(c, n.loc, "the third derivative of prod() is not supported");
  case OP_RESHAPE: contribute(d, a, ir_reshape(c, g, SH(c, a), d->loc)); return;
  case OP_TRANSPOSE:
    contribute(d, a, inverse_perm_transpose(d, g, n.perm, n.shape.rank));
    return;
  case OP_SLICE: case OP_PAD: {
    int64_t start[MAX_RANK];
    for (int i = 0; i < n.shape.rank; i++)
      start[i] = n.perm[i];
    contribute(d, a, ir_slice(c, n.op == OP_SLICE ? OP_PAD : OP_SLICE, g,
                              start, SH(c, a), d->loc));
    return;
  }
  case OP_MATMUL: matmul_rule(d, &n, g); return;
  case OP_CONV2D: case OP_CONV2D_DX: case OP_CONV2D_DW:
  case OP_AVGPOOL: case OP_AVGPOOL_DX: case OP_MAXPOOL: case OP_MAXPOOL_DX:
  case OP_EMBED: case OP_EMBED_DT:
    kernel_rule(d, &n, g);
    return;
  default:
    error_at(c, n.loc, "cannot differentiate %s() yet", op_name(n.op));
  }
}

static void sweep(AD *d, const int *roots, const int *seeds, int nroots,
                  const int *wrt, int nwrt, int *grads, int *unused, int lo,
                  int hi) {
  Ctx *c = d->c;
  for (int i = 0; i < nroots; i++) {
    int r = roots[i];
    int s = seeds[i] >= 0 ? seeds[i] : ir_const(c, 1, SH(c, r));
    if (d->dep[r])
      d->adj[r] = d->adj[r] < 0 ? s : add(d, d->adj[r], s);
  }
  for (int i = hi; i >= lo; i--)
    if (d->adj[i] >= 0 && d->dep[i])
      rule(d, i, d->adj[i]);
  for (int j = 0; j < nwrt; j++) {
    int x = wrt[j];
    if (unused)
      unused[j] = d->adj[x] < 0;
    grads[j] = d->adj[x] >= 0 ? d->adj[x] : ir_const(c, 0, SH(c, x));
  }
}

/* The adjoint arrays belong to autodiff(); an error unwinding through here
 * frees them first. */
static void guarded(AD *d, const int *roots, const int *seeds, int nroots,
                    const int *wrt, int nwrt, int *grads, int *unused, int lo,
                    int hi) {
  Ctx *c = d->c;
  jmp_buf saved;
  memcpy(saved, c->jmp, sizeof saved);
  if (setjmp(c->jmp)) {
    free(d->adj);
    free(d->dep);
    memcpy(c->jmp, saved, sizeof saved);
    longjmp(c->jmp, 1);
  }
  sweep(d, roots, seeds, nroots, wrt, nwrt, grads, unused, lo, hi);
  memcpy(c->jmp, saved, sizeof saved);
}

void autodiff(Ctx *c, const int *roots, const int *seeds, int nroots,
              const int *wrt, int nwrt, int *grads, int *unused, Loc loc) {
  int n = c->g.n;
  AD d = {c, NULL, NULL, loc};
  d.adj = malloc(sizeof(int) * (size_t)n);
  d.dep = calloc((size_t)n, 1);
  if (!d.adj || !d.dep)
    abort();
  int lo = n, hi = -1;
  for (int i = 0; i < n; i++)
    d.adj[i] = -1;
  for (int j = 0; j < nwrt; j++) {
    d.dep[wrt[j]] = 1;
    if (wrt[j] < lo)
      lo = wrt[j];
  }
  for (int i = 0; i < nroots; i++)
    if (roots[i] > hi)
      hi = roots[i];
  /* Which nodes depend on a wrt node: only those need adjoints. */
  for (int i = lo; i <= hi; i++) {
    Node *nd = &c->g.nodes[i];
    if (nd->op == OP_DETACH || nd->dt == DT_I32)
      continue;
    for (int k = 0; k < nd->nin && !d.dep[i]; k++)
      d.dep[i] = d.dep[nd->in[k]];
  }
  /* Each differentiation walks the graph between its lowest wrt and its
     highest root: many grad() calls over one long graph add up to a
     quadratic amount of work, so the total is bounded. */
  c->ad_work += (int64_t)n + (hi >= lo ? hi - lo + 1 : 0);
  if (c->ad_work > MAX_AD_WORK) {
    free(d.adj);
    free(d.dep);
    error_at(c, loc, "too much differentiation: the grad() and backward "
             "statements so far walk more than %lld IR nodes in total "
             "(each walks the graph built before it)",
             (long long)MAX_AD_WORK);
  }
  int order = 0; /* how many differentiations the roots already hold */
  for (int i = lo; i <= hi; i++)
    if (d.dep[i] && c->g.nodes[i].order > order)
      order = c->g.nodes[i].order;
  for (int i = 0; i < nroots; i++)
    if (c->g.nodes[roots[i]].order > order)
      order = c->g.nodes[roots[i]].order;
  if (order + 1 > MAX_GRAD_ORDER) {
    free(d.adj);
    free(d.dep);
    error_at(c, loc, "derivative of order %d: at most %d nested grad() (and "
             "backward) are supported, as each level multiplies the size of "
             "the graph", order + 1, MAX_GRAD_ORDER);
  }
  guarded(&d, roots, seeds, nroots, wrt, nwrt, grads, unused, lo, hi);
  for (int i = n; i < c->g.n; i++)
    c->g.nodes[i].order = order + 1;
  free(d.adj);
  free(d.dep);
}
