/* optim.c — the training step: `optimizer` and `clip_grad_norm`.
 *
 * A graph with an optimizer compiles three ways (Options.mode):
 *   MODE_GRAD    the gradient function, as without an optimizer (NAME_grad)
 *   MODE_STEP    one training step: forward, backward, clip, update (NAME)
 *   MODE_UPDATE  clip and update from gradients the caller gives
 *                (NAME_update)
 * The update is more IR, built here after autodiff: element-wise nodes
 * whose results are outputs written into the memory they replace (Out.home:
 * a param, updated in place, or a slot of the optimizer state). The
 * schedule pass (passes.c) moves each param's update to just after its
 * gradient is complete and its last reader has run, so no gradient buffer
 * outlives its use; the planner checks that no node reads a param after
 * its update wrote it (plan.c, plan_check).
 * The arithmetic is PyTorch 1.13's torch.optim.SGD, Adam and AdamW
 * (single-tensor, amsgrad off) and clip_grad_norm_, in the same order.
 */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "parse.h"

static const char *const kind_names[] = {"sgd", "adam", "adamw"};
static const char *const arg_names[OA_COUNT] = {
    "lr", "momentum", "dampening", "weight_decay", "beta1", "beta2", "eps",
    "nesterov"};

/* which arguments each optimizer takes, and their defaults (NAN: none) */
static int takes(int kind, int a) {
  if (a == OA_LR || a == OA_WD)
    return 1;
  if (kind == OPT_SGD)
    return a == OA_MOMENTUM || a == OA_DAMPENING || a == OA_NESTEROV;
  return a == OA_BETA1 || a == OA_BETA2 || a == OA_EPS;
}

static double default_of(int kind, int a) {
  switch (a) {
  case OA_BETA1: return 0.9;
  case OA_BETA2: return 0.999;
  case OA_EPS: return 1e-8;
  case OA_WD: return kind == OPT_ADAMW ? 0.01 : 0;
  case OA_LR: return NAN;
  default: return 0;
  }
}

/* A value given by name must be a scalar float `input`: data, not a
 * parameter or a computed value. */
static void check_value(Ctx *c, const OptArg *a, int is_bool) {
  if (a->input) {
    const Node *n = &c->g.nodes[a->node];
    if (is_bool)
      error_at(c, a->loc, "'%s' must be true or false", a->name);
    if (n->op != OP_INPUT || n->dt != DT_F || n->numel != 1)
      error_at(c, a->loc, "'%s=%s': a hyperparameter given by name must be "
               "a scalar float input (such as 'input %s'), not %s", a->name,
               a->input, a->name,
               n->op == OP_PARAM ? "a param" :
               n->op != OP_INPUT ? "a computed value" :
               n->dt != DT_F ? "an i32 input" : "a tensor");
    return;
  }
  if (is_bool && a->num != 0 && a->num != 1)
    error_at(c, a->loc, "'%s' must be true or false", a->name);
  if (!isfinite(a->num) || fabs(a->num) > 3.4e38)
    error_at(c, a->loc, "'%s' must be a finite number", a->name);
  if (a->num < 0)
    error_at(c, a->loc, "'%s' must not be negative (it is %g)", a->name,
             a->num);
}

void optim_statement(Ctx *c, const char *kind, Loc loc, int nargs,
                     OptArg *args) {
  OptSpec *o = &c->optim;
  if (o->kind)
    error_at(c, loc, "a second 'optimizer': the graph has one already (at "
             "line %d)", o->loc.line);
  int k = 0;
  for (int i = 0; i < 3; i++)
    if (strcmp(kind, kind_names[i]) == 0)
      k = OPT_SGD + i;
  if (!k) {
    const char *near = nearest_name(kind, kind_names, 3);
    if (near)
      error_at(c, loc, "unknown optimizer '%s'; did you mean '%s'?", kind,
               near);
    error_at(c, loc, "unknown optimizer '%s' (optimizers: sgd, adam, adamw)",
             kind);
  }
  o->kind = k;
  o->loc = loc;
  for (int a = 0; a < OA_COUNT; a++)
    o->a[a] = (OptArg){arg_names[a], 0, default_of(k, a), NULL, -1, loc};
  for (int i = 0; i < nargs; i++) {
    int a = -1;
    for (int j = 0; j < OA_COUNT; j++)
      if (takes(k, j) && strcmp(args[i].name, arg_names[j]) == 0)
        a = j;
    if (a < 0) {
      const char *cands[OA_COUNT];
      int nc = 0;
      for (int j = 0; j < OA_COUNT; j++)
        if (takes(k, j))
          cands[nc++] = arg_names[j];
      const char *near = nearest_name(args[i].name, cands, nc);
      if (near)
        error_at(c, args[i].loc, "%s() has no argument '%s'; did you mean "
                 "'%s'?", kind, args[i].name, near);
      error_at(c, args[i].loc, "%s() has no argument '%s' (it takes %s)",
               kind, args[i].name,
               k == OPT_SGD ? "lr, momentum, dampening, weight_decay, nesterov"
                            : "lr, beta1, beta2, eps, weight_decay");
    }
    if (o->a[a].set)
      error_at(c, args[i].loc, "'%s' is given twice", args[i].name);
    args[i].name = arg_names[a];
    check_value(c, &args[i], a == OA_NESTEROV);
    o->a[a] = args[i];
  }
  if (!o->a[OA_LR].set)
    error_at(c, loc, "%s() needs a learning rate: write %s(lr=0.01)", kind,
             kind);
  for (int b = OA_BETA1; b <= OA_BETA2; b++)
    if (takes(k, b) && !o->a[b].input && o->a[b].num >= 1)
      error_at(c, o->a[b].loc, "'%s' must be below 1 (it is %g)",
               arg_names[b], o->a[b].num);
  if (k == OPT_SGD && o->a[OA_NESTEROV].num) {
    const OptArg *m = &o->a[OA_MOMENTUM], *d = &o->a[OA_DAMPENING];
    /* torch.optim.SGD refuses it when built; a value from an input is the
       caller's to keep in range */
    if ((!m->input && m->num <= 0) || (!d->input && d->num != 0))
      error_at(c, o->a[OA_NESTEROV].loc, "nesterov needs a momentum above 0 "
               "and no dampening (as in torch.optim.SGD)");
  }
}

void optim_clip(Ctx *c, Loc loc, OptArg arg) {
  if (c->optim.clip)
    error_at(c, loc, "a second 'clip_grad_norm' (the first is at line %d)",
             c->optim.clip_loc.line);
  check_value(c, &arg, 0);
  c->optim.clip = 1;
  c->optim.clip_norm = arg;
  c->optim.clip_loc = loc;
}

/* ---- the statements, as parse.c meets them ------------------------------ */

/* `k=v` of optimizer(...), or clip_grad_norm's M: a number, true/false,
 * or the name of a defined value (optim.c checks it is a scalar input). */
static OptArg opt_value(P *p, const char *name) {
  OptArg a = {name, 1, 0, NULL, -1, ps_tloc(ps_peek(p))};
  int neg = ps_accept(p, "-");
  Token *t = ps_peek(p);
  if (t->kind == T_NUM) {
    a.num = neg ? -t->num : t->num;
  } else if (!neg && (ps_is_ident(t, "true") || ps_is_ident(t, "false"))) {
    a.num = ps_is_ident(t, "true");
  } else if (!neg && t->kind == T_IDENT) {
    a.input = arena_strndup(&p->c->arena, t->text, (size_t)t->len);
    Sym *s = ps_lookup(p, a.input);
    if (!s)
      ps_unknown_name(p, a.input, a.loc);
    a.node = s->node;
  } else {
    error_at(p->c, ps_tloc(t), "expected a number or the name of a scalar "
             "input, found '%s'", ps_tok_desc(p, t));
  }
  p->pos++;
  return a;
}

/* optimizer KIND(k=v, ...) | clip_grad_norm M */
void ps_opt_stmt(P *p, int clip, Loc loc) {
  if (clip) {
    OptArg a = opt_value(p, "clip_grad_norm");
    ps_end_stmt(p);
    optim_clip(p->c, loc, a);
    return;
  }
  Loc kloc = ps_tloc(ps_peek(p));
  const char *kind = ps_ident(p, "an optimizer");
  OptArg args[16];
  int n = 0;
  ps_expect(p, "(");
  while (!ps_is_punct(ps_peek(p), ")")) {
    Token *t = ps_peek(p);
    if (t->kind != T_IDENT || !ps_is_punct(&p->t[p->pos + 1], "="))
      error_at(p->c, ps_tloc(t), "optimizer arguments are named: write "
               "%s(lr=0.01, ...)", kind);
    if (n == 16)
      error_at(p->c, ps_tloc(t), "too many optimizer arguments");
    const char *an = ps_ident(p, "an argument");
    p->pos++; /* '=' */
    args[n] = opt_value(p, an);
    args[n++].loc = ps_tloc(t);
    if (!ps_accept(p, ","))
      break;
  }
  ps_expect(p, ")");
  ps_end_stmt(p);
  optim_statement(p->c, kind, kloc, n, args);
  (void)loc;
}

/* ---- building the update ----------------------------------------------- */

typedef struct {
  Ctx *c;
  Loc loc;
  int64_t off; /* state bytes so far */
} B;

static int val(B *b, const OptArg *a) {
  return a->input ? a->node : ir_scalar(b->c, a->num);
}

static int given(const OptArg *a) { return a->input || a->num != 0; }

static int add(B *b, int x, int y) { return ir_binary(b->c, OP_ADD, x, y, b->loc); }
static int sub(B *b, int x, int y) { return ir_binary(b->c, OP_SUB, x, y, b->loc); }
static int mul(B *b, int x, int y) { return ir_binary(b->c, OP_MUL, x, y, b->loc); }
static int dv(B *b, int x, int y) { return ir_binary(b->c, OP_DIV, x, y, b->loc); }
static int num(B *b, double v) { return ir_scalar(b->c, v); }

/* A new argument of the function being built (a leaf of shape s). */
static int new_arg(B *b, const char *name, Shape s, int role) {
  Ctx *c = b->c;
  int id = ir_leaf(c, OP_INPUT, DT_F, s, name, b->loc);
  c->g.nodes[id].ext = c->g.nargs;
  ir_add_arg(c, name, id, 0, 0, b->loc);
  c->g.args[c->g.nargs - 1].role = role;
  return id;
}

/* A slot of optimizer state shaped like s: its leaf (the value before the
 * step); the step's new value is written back over it (put_home). */
static int state_slot(B *b, const char *what, const char *of, Shape s) {
  Ctx *c = b->c;
  char *name = arena_alloc(&c->arena, strlen(what) + strlen(of) + 2);
  sprintf(name, "%s%s%s", what, *of ? "_" : "", of);
  int id = new_arg(b, name, s, ROLE_STATE);
  c->g.args[c->g.nargs - 1].state_off = b->off;
  int64_t bytes = shape_numel(&s) * (c->opt.api.f64 ? 8 : 4);
  b->off += (bytes + 7) / 8 * 8; /* every slot aligned for double */
  return id;
}

/* node is the new value of argument arg's memory */
static void put_home(B *b, int node, int arg) {
  Ctx *c = b->c;
  const char *an = c->g.args[arg].name;
  char *name = arena_alloc(&c->arena, strlen(an) + 8);
  sprintf(name, "%s.new", an); /* not an identifier: never a user's name */
  ir_add_out(c, name, node, 0, b->loc);
  c->g.outs[c->g.nouts - 1].home = arg;
}

/* 1 - beta^t, accurate for beta near 1: -expm1(t * log(beta)) */
static int bias_correction(B *b, const OptArg *beta, int t) {
  int lb = ir_unary(b->c, OP_LOG, val(b, beta), b->loc);
  return ir_unary(b->c, OP_NEG,
                  ir_unary(b->c, OP_EXPM1, mul(b, t, lb), b->loc), b->loc);
}

void optim_build(Ctx *c, const int *pidx, const int *grads, int np) {
  const OptSpec *o = &c->optim;
  B b = {c, o->loc, 0};
  int *g = arena_alloc(&c->arena, sizeof(int) * (size_t)(np + 1));
  memcpy(g, grads, sizeof(int) * (size_t)np);
  if (c->opt.mode == MODE_UPDATE) {
    /* NAME_update(params, grad_params, [hyperparameter inputs], state):
       the graph's other arguments and outputs are not this function's */
    for (int i = 0; i < c->g.nargs; i++)
      c->g.args[i].role = c->g.args[i].is_param ? ROLE_PARAM : ROLE_NONE;
    for (int a = 0; a < OA_COUNT; a++)
      if (o->a[a].input)
        c->g.args[c->g.nodes[o->a[a].node].ext].role = ROLE_IN;
    if (o->clip && o->clip_norm.input)
      c->g.args[c->g.nodes[o->clip_norm.node].ext].role = ROLE_IN;
    c->g.nouts = 0;
    c->outicap = 0;
    c->outidx = NULL;
    for (int j = 0; j < np; j++) {
      const Arg *a = &c->g.args[pidx[j]];
      char *gname = arena_alloc(&c->arena, strlen(a->name) + 6);
      sprintf(gname, "grad_%s", a->name);
      g[j] = new_arg(&b, gname, c->g.nodes[a->node].shape, ROLE_GRAD);
    }
  } else {
    for (int i = 0; i < c->g.nargs; i++)
      c->g.args[i].role = c->g.args[i].is_param ? ROLE_PARAM : ROLE_IN;
  }
  /* the step count: state[0], counted in the element type (exact up to
     2^24 steps in f32, as PyTorch's float step tensor) */
  Shape scalar = {0, {0}};
  int t0 = state_slot(&b, "step", "", scalar);
  int t = add(&b, t0, num(&b, 1));
  put_home(&b, t, c->g.nodes[t0].ext);
  if (o->clip) {
    /* clip_grad_norm_: total 2-norm over every gradient, then
       g * min(max_norm / (norm + 1e-6), 1) */
    b.loc = o->clip_loc;
    int sq = -1;
    for (int j = 0; j < np; j++) {
      const Node *n = &c->g.nodes[g[j]];
      unsigned all = n->shape.rank ? (1u << n->shape.rank) - 1 : 0;
      int s = ir_reduce(c, OP_SUM, mul(&b, g[j], g[j]), all, b.loc);
      s = ir_reshape(c, s, scalar, b.loc);
      sq = sq < 0 ? s : add(&b, sq, s);
    }
    int norm = ir_unary(c, OP_SQRT, sq, b.loc);
    int coef = dv(&b, val(&b, &o->clip_norm), add(&b, norm, num(&b, 1e-6)));
    coef = ir_binary(c, OP_MINIMUM, coef, num(&b, 1), b.loc);
    for (int j = 0; j < np; j++)
      g[j] = mul(&b, g[j], coef);
    b.loc = o->loc;
  }
  const OptArg *A = o->a;
  int lr = val(&b, &A[OA_LR]);
  for (int j = 0; j < np; j++) {
    int pa = pidx[j];
    int p = c->g.args[pa].node;
    const char *pn = c->g.args[pa].name;
    Shape s = c->g.nodes[p].shape;
    int d = g[j], np2;
    if (o->kind == OPT_SGD) {
      if (given(&A[OA_WD]))
        d = add(&b, d, mul(&b, p, val(&b, &A[OA_WD])));
      if (given(&A[OA_MOMENTUM])) {
        /* the first step takes the gradient as the buffer */
        int m0 = state_slot(&b, "momentum", pn, s);
        int mom = val(&b, &A[OA_MOMENTUM]);
        int later = add(&b, mul(&b, m0, mom),
                        mul(&b, d, sub(&b, num(&b, 1),
                                       val(&b, &A[OA_DAMPENING]))));
        int first = ir_binary(c, OP_LE, t, num(&b, 1), b.loc);
        int buf = ir_where(c, first, d, later, b.loc);
        put_home(&b, buf, c->g.nodes[m0].ext);
        int dm = A[OA_NESTEROV].num ? add(&b, d, mul(&b, buf, mom)) : buf;
        /* a momentum from an input may be 0 at run time: PyTorch then
           takes the plain step (no buffer) */
        d = A[OA_MOMENTUM].input
                ? ir_where(c, ir_binary(c, OP_NE, mom, num(&b, 0), b.loc), dm,
                           d, b.loc)
                : dm;
      }
      np2 = sub(&b, p, mul(&b, d, lr));
    } else {
      int pd = p;
      if (o->kind == OPT_ADAMW && given(&A[OA_WD]))
        pd = mul(&b, p, sub(&b, num(&b, 1), mul(&b, lr, val(&b, &A[OA_WD]))));
      else if (given(&A[OA_WD]))
        d = add(&b, d, mul(&b, p, val(&b, &A[OA_WD])));
      int m0 = state_slot(&b, "exp_avg", pn, s);
      int v0 = state_slot(&b, "exp_avg_sq", pn, s);
      int b1 = val(&b, &A[OA_BETA1]), b2 = val(&b, &A[OA_BETA2]);
      int m = add(&b, mul(&b, m0, b1), mul(&b, d, sub(&b, num(&b, 1), b1)));
      int v = add(&b, mul(&b, v0, b2),
                  mul(&b, mul(&b, d, d), sub(&b, num(&b, 1), b2)));
      put_home(&b, m, c->g.nodes[m0].ext);
      put_home(&b, v, c->g.nodes[v0].ext);
      int step = dv(&b, lr, bias_correction(&b, &A[OA_BETA1], t));
      int bc2 = ir_unary(c, OP_SQRT, bias_correction(&b, &A[OA_BETA2], t),
                         b.loc);
      int denom = add(&b, dv(&b, ir_unary(c, OP_SQRT, v, b.loc), bc2),
                      val(&b, &A[OA_EPS]));
      np2 = sub(&b, pd, mul(&b, step, dv(&b, m, denom)));
    }
    put_home(&b, np2, pa);
  }
  c->state_bytes = b.off;
}

int64_t optim_state_bytes(const Ctx *c) { return c->state_bytes; }

/* The nodes optim_build made carry the optimizer's (or the clip's) place. */
int optim_is_update(const Ctx *c, const Node *n) {
  const OptSpec *o = &c->optim;
  if (op_kind(n->op) == K_LEAF || c->opt.mode != MODE_STEP)
    return 0;
  return (n->loc.line == o->loc.line && n->loc.col == o->loc.col) ||
         (o->clip && n->loc.line == o->clip_loc.line &&
          n->loc.col == o->clip_loc.col);
}
