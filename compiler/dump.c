/* dump.c — the IR as text (--emit ir) and as Graphviz (--emit dot). */
#include <stdio.h>
#include <string.h>

#include "agc.h"

static void node_attrs(Ctx *c, const Node *n, StrBuf *o) {
  if (n->op == OP_CONST)
    sb_printf(o, " value=%.17g", n->val);
  if (op_kind(n->op) == K_RED || n->op == OP_FIRSTMAX ||
      n->op == OP_FIRSTMIN || n->op == OP_PRODEXCL) {
    sb_puts(o, " axes=[");
    int first = 1;
    for (int d = 0; d < n->shape.rank; d++)
      if (n->mask & (1u << d)) {
        sb_printf(o, "%s%d", first ? "" : ",", d);
        first = 0;
      }
    sb_puts(o, "]");
    if ((n->op == OP_MAX || n->op == OP_MIN) && n->flags)
      sb_puts(o, " first");
  }
  if (n->op == OP_TRANSPOSE || n->op == OP_SLICE || n->op == OP_PAD) {
    sb_puts(o, n->op == OP_TRANSPOSE ? " perm=[" : " start=[");
    for (int d = 0; d < n->shape.rank; d++)
      sb_printf(o, "%s%d", d ? "," : "", n->perm[d]);
    sb_puts(o, "]");
  }
  if (n->op == OP_MATMUL && n->flags)
    sb_printf(o, "%s%s", n->flags & MM_TA ? " ta" : "",
              n->flags & MM_TB ? " tb" : "");
  if (n->op == OP_INPUT || n->op == OP_PARAM)
    sb_printf(o, " arg=%d", n->ext);
  (void)c;
}

void dump_ir(Ctx *c, StrBuf *o) {
  char *live = ir_live_nodes(c);
  int nlive = 0;
  for (int i = 0; i < c->g.n; i++)
    nlive += live[i] != 0;
  const char *at = c->opt.api.O0 ? "parse (-O0)" : c->opt.after ? c->opt.after : "dce";
  sb_printf(o, "graph %s  # %s; after %s: %d nodes, %d live (dead ones not "
            "shown)\n", c->name, c->opt.api.f64 ? "f64" : "f32", at, c->g.n,
            nlive);
  for (int i = 0; i < c->g.n; i++) {
    if (!live[i])
      continue;
    Node *n = &c->g.nodes[i];
    char sh[160];
    shape_str(&n->shape, sh, sizeof sh);
    sb_printf(o, "%%%d = %s", i, op_name(n->op));
    for (int k = 0; k < n->nin; k++)
      sb_printf(o, "%s%%%d", k ? ", " : " ", n->in[k]);
    node_attrs(c, n, o);
    sb_printf(o, " : %s%s", n->dt == DT_I32 ? "i32" : "f", sh);
    if (n->name)
      sb_printf(o, "  # %s", n->name);
    if (n->loc.line)
      sb_printf(o, "%s line %d", n->name ? "," : "  #", n->loc.line);
    sb_puts(o, "\n");
  }
  for (int i = 0; i < c->g.nouts; i++)
    sb_printf(o, "%s %s = %%%d\n", c->g.outs[i].is_grad ? "grad" : "output",
              c->g.outs[i].name, c->g.outs[i].node);
}

/* The forward nodes are those built before the first gradient: every node
 * that a gradient output needs but no plain output does is drawn in the
 * "backward" colour. */
void dump_dot(Ctx *c, StrBuf *o) {
  char *live = ir_live_nodes(c);
  char *fwd = arena_alloc(&c->arena, (size_t)c->g.n + 1);
  for (int oi = 0; oi < c->g.nouts; oi++)
    if (!c->g.outs[oi].is_grad)
      fwd[c->g.outs[oi].node] = 1;
  for (int i = c->g.n - 1; i >= 0; i--)
    if (fwd[i])
      for (int k = 0; k < c->g.nodes[i].nin; k++)
        fwd[c->g.nodes[i].in[k]] = 1;
  sb_printf(o, "digraph \"%s\" {\n  rankdir=TB;\n  node [shape=box, "
            "fontname=\"monospace\", fontsize=10];\n", c->name);
  for (int i = 0; i < c->g.n; i++) {
    if (!live[i])
      continue;
    Node *n = &c->g.nodes[i];
    char sh[160];
    shape_str(&n->shape, sh, sizeof sh);
    StrBuf attrs = {0};
    node_attrs(c, n, &attrs);
    const char *color = n->op == OP_PARAM   ? "#ffd27f"
                        : n->op == OP_INPUT ? "#b7d7ff"
                        : fwd[i]            ? "#ffffff"
                                            : "#e3f4d8";
    sb_printf(o, "  n%d [label=\"%%%d %s%s%s\\n%s%s\", style=filled, "
              "fillcolor=\"%s\"];\n", i, i, op_name(n->op),
              n->name ? " " : "", n->name ? n->name : "", sh,
              attrs.s ? attrs.s : "", color);
    sb_free(&attrs);
    for (int k = 0; k < n->nin; k++)
      sb_printf(o, "  n%d -> n%d;\n", n->in[k], i);
  }
  for (int i = 0; i < c->g.nouts; i++) {
    sb_printf(o, "  out%d [label=\"%s\", shape=ellipse];\n  n%d -> out%d;\n", i,
              c->g.outs[i].name, c->g.outs[i].node, i);
  }
  sb_puts(o, "}\n");
}

/* --emit plan: where every value the code computes lives, and for how
 * long. Positions are node ids in schedule order; a buffer is free again
 * after its last reader. */
void dump_plan(Ctx *c, const Plan *p, StrBuf *o) {
  const Graph *g = &c->g;
  sb_printf(o, "# plan of %s: workspace %lld bytes (all intermediates "
            "without reuse: %lld)\n", c->name, (long long)p->work_bytes,
            (long long)p->naive_bytes);
  sb_printf(o, "# values live at once: at most %lld bytes (the bound for "
            "any layout of these buffers)\n", (long long)p->live_bytes);
  if (p->pack_off >= 0)
    sb_printf(o, "# matmul packing scratch at %lld\n",
              (long long)p->pack_off);
  sb_puts(o, "# node  op  shape  home  [lifetime]\n");
  for (int i = 0; i < g->n; i++) {
    const Node *n = &g->nodes[i];
    if (!p->live[i] || p->inl[i] || op_kind(n->op) == K_LEAF ||
        n->op == OP_ID || n->op == OP_DETACH)
      continue;
    char sh[128];
    shape_str(&n->shape, sh, sizeof sh);
    sb_printf(o, "t%-5d %-10s %-16s ", i, op_name(n->op), sh);
    if (n->op == OP_RESHAPE)
      sb_printf(o, "view of t%d", p->alias[i]);
    else if (p->store[i] >= 0)
      sb_printf(o, "output %s", g->outs[p->store[i]].name);
    else if (p->local[i])
      sb_printf(o, "local of loop t%d", p->host[i] >= 0 ? p->host[i] : i);
    else if (p->off[i] >= 0)
      sb_printf(o, "work+%lld (%lld bytes)", (long long)p->off[i],
                (long long)p->size[i]);
    if (p->host[i] >= 0)
      sb_printf(o, ", in loop t%d", p->host[i]);
    if (plan_acc_row(c, p, i))
      sb_printf(o, ", partial sums at work+%lld", (long long)p->acc_off[i]);
    if (p->off[i] >= 0 && n->op != OP_RESHAPE) {
      if (p->last[i] > g->n)
        sb_printf(o, " [t%d..end]", i);
      else if (p->last[i] >= 0)
        sb_printf(o, " [t%d..t%lld]", i, (long long)p->last[i]);
    }
    sb_putc(o, '\n');
  }
}
