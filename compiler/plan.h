/* plan.h — what the planner's two files share (plan.c: the steps up to
 * the lifetimes; plan_mem.c: workspace offsets, packing, scratch and the
 * independent check). The rest of agc sees the plan through agc.h. */
#ifndef AGC_PLAN_H
#define AGC_PLAN_H

#include "agc.h"

/* workspace buffers start at multiples of the target's alignment */
#define ALIGN ((int64_t)target_get(c->opt.target)->align)

/* the planner's working state, shared by its steps */
typedef struct {
  Ctx *c;
  Graph *g;
  Plan *p;
  int n;
  int END;          /* position after the last node: read by the caller */
  int *consumer;    /* the single reader of a node; -2 an output */
  int *depth;       /* nesting depth of an expression-fused node */
  int *outcount;    /* outputs a node is */
  char *needbuf;    /* read from memory by a matmul or special op */
  char *viewed;     /* another node (reshape) views its memory */
  int *first, *last; /* positions of its first and last readers */
  int *rootpos;     /* where a node is read: its loop's position */
  char *homeout;    /* the value of an output written in place (Out.home) */
  int *inplace_of;  /* the buffer this node's loop writes over, or -1 */
  int64_t top;      /* workspace bytes placed so far */
  int64_t acc_base; /* where the scratch of partial sums starts */
} PS;

int64_t elem_size(const Ctx *c, const Node *n);
int same_shape(const Shape *a, const Shape *b);

/* plan_mem.c */
void plan_allocate(PS *s);
void plan_pack(PS *s);
void plan_scratch(PS *s);
void plan_check(PS *s);

#endif
