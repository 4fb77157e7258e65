/* emit_api.c — what the caller of generated code sees: the header
 * comment, macros, signatures, the tables for tools, emit_h, and the math
 * prototypes of the JIT. */
#include <ctype.h>
#include <setjmp.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "emit.h"

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
void em_prototypes(E *e, StrBuf *o) {
  if (!e->t->math_protos) {
    sb_puts(o, "#include <math.h>\n");
    return;
  }
  StrBuf seen = {0};
  if (e->c->opt.api.f64) {
    math_proto(e, o, "exp", 3, 1, &seen);
    math_proto(e, o, "tanh", 4, 1, &seen);
  }
  for (int op = 0; op < OP_COUNT; op++) {
    const char *t = op_ctext((Op)op);
    size_t len;
    int args;
    for (const char *b = op_math_call(t, t, &len, &args); b;
         b = op_math_call(t, b + len + 3, &len, &args))
      math_proto(e, o, b, len, args, &seen);
  }
  sb_free(&seen);
}

static const char *dt_code(const Ctx *c, const Node *n) {
  if (n->dt == DT_I32)
    return "2";
  return c->opt.api.f64 ? "1" : "0";
}

/* Is argument i in the generic entry point and the tables (a caller's
 * input or param; not the optimizer's state)? Is output i the caller's
 * (not written in place)? */
static int listed(const Ctx *c, int out, int i) {
  if (out)
    return c->g.outs[i].home < 0;
  return c->g.args[i].role == ROLE_IN || c->g.args[i].role == ROLE_PARAM;
}

static int count_listed(const Ctx *c, int out) {
  int n = 0;
  for (int i = 0; i < (out ? c->g.nouts : c->g.nargs); i++)
    n += listed(c, out, i);
  return n;
}

void em_macros(Ctx *c, StrBuf *o, const Plan *p) {
  char G[256];
  upper(G, c->name, sizeof G);
  sb_printf(o, "#define %s_WORK_BYTES %lld /* workspace: bytes */\n", G,
            (long long)(p ? p->work_bytes : 0));
  sb_printf(o, "#define %s_NUM_INPUTS %d\n", G, count_listed(c, 0));
  sb_printf(o, "#define %s_NUM_OUTPUTS %d\n", G, count_listed(c, 1));
  for (int pass = 0; pass < 2; pass++) {
    int cnt = pass ? c->g.nouts : c->g.nargs;
    for (int i = 0; i < cnt; i++) {
      if (!listed(c, pass, i))
        continue;
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

/* The typed entry point. The gradient function: inputs, outputs, work.
 * A training step: inputs and params (updated in place) in declaration
 * order, outputs, state, work. An update: params, their gradients, the
 * inputs the optimizer reads, state. */
void em_signature(Ctx *c, StrBuf *o, const char *real) {
  sb_printf(o, "int %s(", c->name);
  int k = 0;
  static const int update_order[] = {ROLE_PARAM, ROLE_GRAD, ROLE_IN};
  int passes = c->opt.mode == MODE_UPDATE ? 3 : 1;
  for (int pass = 0; pass < passes; pass++)
    for (int i = 0; i < c->g.nargs; i++) {
      const Arg *a = &c->g.args[i];
      if (passes == 3 ? a->role != update_order[pass] : !listed(c, 0, i))
        continue;
      Node *n = &c->g.nodes[a->node];
      sb_printf(o, "%s%s%s *%s", k++ ? ", " : "",
                a->role == ROLE_PARAM ? "" : "const ",
                n->dt == DT_I32 ? "int32_t" : real, em_argname(c, i));
    }
  for (int i = 0; i < c->g.nouts; i++)
    if (listed(c, 1, i))
      sb_printf(o, "%s%s *out_%s", k++ ? ", " : "", real, c->g.outs[i].name);
  if (c->opt.mode != MODE_GRAD)
    sb_printf(o, "%svoid *state", k++ ? ", " : "");
  if (c->opt.mode != MODE_UPDATE)
    sb_printf(o, "%svoid *work", k ? ", " : "");
  sb_puts(o, ")");
}

/* The generic entry point, for tools: pointers in table order. */
void em_generic(Ctx *c, StrBuf *o, const char *real) {
  int step = c->opt.mode == MODE_STEP;
  sb_printf(o, "int %s_generic(%s *const *in, void *const *out, %svoid "
            "*work)\n{\n", c->name, step ? "void" : "const void",
            step ? "void *state, " : "");
  int nin = count_listed(c, 0), nout = count_listed(c, 1);
  if (!nin)
    sb_puts(o, "  (void)in;\n");
  if (!nout)
    sb_puts(o, "  (void)out;\n");
  sb_printf(o, "  return %s(", c->name);
  int k = 0, ki = 0;
  for (int i = 0; i < c->g.nargs; i++) {
    if (!listed(c, 0, i))
      continue;
    const Arg *a = &c->g.args[i];
    Node *n = &c->g.nodes[a->node];
    sb_printf(o, "%s(%s%s *)in[%d]", k++ ? ", " : "",
              a->role == ROLE_PARAM ? "" : "const ",
              n->dt == DT_I32 ? "int32_t" : real, ki++);
  }
  ki = 0;
  for (int i = 0; i < c->g.nouts; i++)
    if (listed(c, 1, i))
      sb_printf(o, "%s(%s *)out[%d]", k++ ? ", " : "", real, ki++);
  sb_printf(o, "%s%swork);\n}\n\n", k ? ", " : "", step ? "state, " : "");
}

/* The macros a training file adds to the step's: its state, and the
 * gradient function's workspace. */
void em_training_macros(Ctx *c, const Plan *p, const Ctx *step, StrBuf *o) {
  char G[256];
  upper(G, c->name, sizeof G);
  sb_printf(o, "#define %s_STATE_BYTES %lld /* optimizer state: bytes, "
            "zeroed = a fresh optimizer */\n", G,
            (long long)optim_state_bytes(step));
  sb_printf(o, "#define %s_GRAD_WORK_BYTES %lld /* workspace of %s_grad */\n",
            G, (long long)p->work_bytes, c->name);
}

void em_tables(Ctx *c, StrBuf *o, int decl) {
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
    sb_printf(o, "const char *const %s_%s_names[%d] = {", nm, kind,
              count_listed(c, pass) + 1);
    for (int i = 0; i < cnt; i++)
      if (listed(c, pass, i))
        sb_printf(o, "\"%s\", ", pass ? c->g.outs[i].name : c->g.args[i].name);
    sb_puts(o, "NULL};\n");
    sb_printf(o, "const int %s_%s_dtypes[%d] = {", nm, kind,
              count_listed(c, pass) + 1);
    for (int i = 0; i < cnt; i++) {
      if (!listed(c, pass, i))
        continue;
      int node = pass ? plan_resolve(c, c->g.outs[i].node) : c->g.args[i].node;
      sb_printf(o, "%s, ", pass ? (c->opt.api.f64 ? "1" : "0")
                                : dt_code(c, &c->g.nodes[node]));
    }
    sb_puts(o, "-1};\n");
    sb_printf(o, "const int %s_%s_ranks[%d] = {", nm, kind,
              count_listed(c, pass) + 1);
    for (int i = 0; i < cnt; i++) {
      if (!listed(c, pass, i))
        continue;
      int node = pass ? plan_resolve(c, c->g.outs[i].node) : c->g.args[i].node;
      sb_printf(o, "%d, ", c->g.nodes[node].shape.rank);
    }
    sb_puts(o, "-1};\n");
    sb_printf(o, "const int64_t %s_%s_dims[%d][8] = {", nm, kind,
              count_listed(c, pass) + 1);
    for (int i = 0; i < cnt; i++) {
      if (!listed(c, pass, i))
        continue;
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

void em_header_comment(Ctx *c, StrBuf *o) {
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
            safe, c->opt.api.f64 ? "f64" : "f32",
            c->opt.api.accumulate ? ", accumulate" : "",
            c->opt.api.no_grad ? ", no-grad" : "");
  char G[256];
  upper(G, c->name, sizeof G);
  if (c->opt.mode == MODE_STEP) {
    sb_printf(o, " *\n * int %s(inputs and params..., outputs..., void *state, "
              "void *work);\n", c->name);
    sb_puts(o, " *   one training step: the params are updated in place\n");
    sb_puts(o, " *   inputs and params, in order:");
  } else {
    sb_printf(o, " *\n * int %s(inputs..., outputs..., void *work);\n",
              c->name);
    sb_puts(o, " *   inputs, in order:");
  }
  for (int i = 0; i < c->g.nargs; i++)
    if (listed(c, 0, i))
      sb_printf(o, " %s", c->g.args[i].name);
  sb_puts(o, "\n *   outputs, in order:");
  for (int i = 0; i < c->g.nouts; i++)
    if (listed(c, 1, i))
      sb_printf(o, " %s", c->g.outs[i].name);
  if (c->opt.mode == MODE_STEP)
    sb_printf(o, "\n *   state: %s_STATE_BYTES bytes, aligned for double, "
              "zeroed before the first step\n *   %s_grad: the gradient "
              "function (%s_GRAD_WORK_BYTES of work); %s_update: one\n *   "
              "optimizer step from given gradients", G, c->name, G, c->name);
  sb_printf(o, "\n *   work: %s_WORK_BYTES bytes, aligned for double", G);
  sb_puts(o, "\n * Buffers are C-order arrays; outputs must not overlap inputs.\n"
             " * Returns 0, or 1 if an integer index input was out of range.\n */\n");
}

/* Prototypes of the functions of one part of the file. */
void em_protos(Ctx *c, StrBuf *o, const char *real) {
  em_signature(c, o, real);
  sb_puts(o, ";\n");
  if (c->opt.mode == MODE_STEP)
    sb_printf(o, "int %s_generic(void *const *in, void *const *out, "
              "void *state, void *work);\n", c->name);
  else if (c->opt.mode == MODE_GRAD)
    sb_printf(o, "int %s_generic(const void *const *in, void *const *out, "
              "void *work);\n", c->name);
}

void emit_h(Ctx *c, StrBuf *o) {
  const char *real = c->opt.api.f64 ? "double" : "float";
  char G[256];
  upper(G, c->name, sizeof G);
  Ctx *st = NULL, *up = NULL;
  if (em_training(c)) {
    em_siblings(c, &st, &up);
    if (setjmp(st->jmp))
      em_siblings_failed(c, st, up);
    if (setjmp(up->jmp))
      em_siblings_failed(c, up, st);
  }
  em_header_comment(st ? st : c, o);
  sb_printf(o, "#ifndef AGC_%s_H\n#define AGC_%s_H\n\n", G, G);
  sb_puts(o, "#include <stdint.h>\n\n");
  em_macros(st ? st : c, o, ctx_plan(st ? st : c));
  if (st)
    em_training_macros(c, ctx_plan(c), st, o);
  sb_puts(o, "\n");
  if (st) {
    em_protos(st, o, real);
    em_tables(st, o, 1);
    const char *name = c->name;
    char *gname = arena_alloc(&c->arena, strlen(name) + 8);
    sprintf(gname, "%s_grad", name);
    c->name = gname;
    em_protos(c, o, real);
    em_tables(c, o, 1);
    c->name = name;
    em_protos(up, o, real);
    agc_free(st);
    agc_free(up);
  } else {
    em_protos(c, o, real);
    em_tables(c, o, 1);
  }
  sb_printf(o, "\n#endif /* AGC_%s_H */\n", G);
}

/* ---- a training graph's three functions ------------------------------ */

/* The other functions of a graph with an optimizer: the same source
 * compiled as a training step or an update (optim.c). */
static Ctx *sibling(Ctx *c, int mode, const char *name, Ctx *other) {
  Options opt = c->opt;
  opt.mode = mode;
  opt.api.name = name;
  opt.after = NULL;
  Ctx *s = agc_compile(c->path, c->src, c->srclen, &opt);
  if (!s->failed && setjmp(s->jmp) == 0)
    ctx_plan(s);
  if (s->failed) {
    sb_puts(&c->diag, agc_messages(s));
    agc_free(s);
    agc_free(other); /* the sibling compiled before it (found by fuzzing:
                        a step that compiled and an update that did not) */
    c->failed = 1;
    longjmp(c->jmp, 1);
  }
  return s;
}

/* The step and the update of a training graph (em_training), compiled
 * and planned; an error in either becomes c's. */
void em_siblings(Ctx *c, Ctx **st, Ctx **up) {
  char *uname = arena_alloc(&c->arena, strlen(c->name) + 8);
  sprintf(uname, "%s_update", c->name);
  *st = sibling(c, MODE_STEP, c->name, NULL);
  *up = sibling(c, MODE_UPDATE, uname, *st);
}

_Noreturn void em_siblings_failed(Ctx *c, Ctx *bad, Ctx *other) {
  sb_puts(&c->diag, agc_messages(bad));
  agc_free(bad);
  agc_free(other);
  c->failed = 1;
  longjmp(c->jmp, 1);
}

int em_training(const Ctx *c) {
  return c->optim.kind && !c->opt.api.no_grad && c->opt.mode == MODE_GRAD;
}

static void plan_of(Ctx *c, const Target *t, StrBuf *o) {
  (void)t;
  dump_plan(c, ctx_plan(c), o);
}

static void loops_of(Ctx *c, const Target *t, StrBuf *o) {
  const Plan *p = ctx_plan(c);
  const Loops *L = lower_graph(c, p, t);
  lower_check(c, p, L);
  lower_dump(c, p, L, t, o);
}

/* show() of each function of c: of a training graph, the step (the
 * function a firmware build calls), then the gradient function. */
static void each_function(Ctx *c, const Target *t, StrBuf *o,
                          void (*show)(Ctx *, const Target *, StrBuf *)) {
  if (!em_training(c)) {
    show(c, t, o);
    return;
  }
  Ctx *st, *up;
  em_siblings(c, &st, &up);
  if (setjmp(st->jmp))
    em_siblings_failed(c, st, up);
  sb_printf(o, "# the training step %s:\n", st->name);
  show(st, t, o);
  const char *name = c->name;
  char *gname = arena_alloc(&c->arena, strlen(name) + 8);
  sprintf(gname, "%s_grad", name);
  c->name = gname;
  sb_printf(o, "\n# the gradient function %s:\n", gname);
  show(c, t, o);
  c->name = name;
  agc_free(st);
  agc_free(up);
}

/* --emit plan */
void emit_plan(Ctx *c, StrBuf *o) { each_function(c, NULL, o, plan_of); }

/* --emit loops: the loop-nest IR for target t */
void emit_loops(Ctx *c, const Target *t, StrBuf *o) {
  each_function(c, t, o, loops_of);
}
