/* emit.h — the C generator's shared state, for emit*.c only.
 *
 *   emit.c      the driver (emit_c), buffers, expressions, loops, fusion
 *   emit_row.c  the JIT's row mode (f32 loops as row-kernel calls)
 *   emit_ops.c  every other node: matmul, conv, pooling, ..., stores and
 *               reductions
 *   emit_api.c  what callers see: header, macros, signatures, tables; a
 *               training graph's step and update (siblings)
 */
#ifndef AGC_EMIT_H
#define AGC_EMIT_H

#include "agc.h"

typedef struct {
  Ctx *c;
  const Plan *p;
  const Loops *L;  /* the statements (lower.c) being rendered */
  StrBuf *o;       /* the function body */
  const Target *t; /* what the code is for (target.c) */
  const char *real; /* "float" or "double" */
  const char *mf;   /* math suffix: "f" or "" */
  int ind;          /* indentation */
  int *arg_used;
  int uses_status;
  int flat;         /* current loop is one flat index over equal shapes */
  int uses_gemm;    /* a matmul calls the kernel */
  int uses_gemm_mt; /* ... on several threads (gemm_mt.c) */
  int uses_tanh;    /* f32 tanh goes through NAME_tanhf */
  int uses_exp;     /* f32 exp goes through NAME_expf */
  int uses_where;   /* where() goes through NAME_where (or AGC_WHERE) */
  int uses_mm;      /* JIT: a narrow matmul through agc_matmul_T */
  int uses_im2col;  /* conv2d: im2col.c's kernel */
  int uses_pool;    /* pooling: pool.c's kernel */
  int nvals;        /* locals v0, v1, ... named so far */
  const char *loop_off; /* JIT: the loop's own offset, held in `ix` */
  char *inloop;     /* nodes of the fused loop being written: read as lN */
  const char *closers[64]; /* JIT: how each open loop_open loop ends */
  int nclosers;
  /* JIT row mode (row_loop): */
  const char **rowof; /* per node: its row in the loop being written */
  int nrows, maxrows; /* scratch rows used by this loop / by any loop of
                         the function itself */
  int part_maxrows; /* ... by any part function (its own rw) */
  int uses_row;     /* some loop calls the row kernels */
  int row_fail;
  /* loops cut into parts (--threads, part_begin in emit.c): */
  int par;          /* the dimension of the loop being written that runs
                       from lo to hi, or -1 */
  int *cap;         /* the buffers (nodes) its part function names */
  int ncap;
  char *capmark;    /* per node: in cap; NULL: not collecting */
  int nloops;       /* part functions NAME_loopK written so far */
  StrBuf parts;     /* their text, placed before the function */
  int uses_parts;   /* ... which call NAME_parts (parts.c) */
  int naming;       /* em_part_end is naming the part's buffers */
  int parts_w, parts_st; /* some part function needs w, st */
  char *used;       /* per node: named by the function's own body (its
                       workspace pointer is declared only then) */
} E;

/* a loop nest written as a part function (emit.c, em_part_begin) */
typedef struct {
  StrBuf *o, body;
  int ind;
} PartSave;

static inline Node *ND(E *e, int id) { return &e->c->g.nodes[id]; }
static inline int R(E *e, int id) { return plan_resolve(e->c, id); }
/* member k of statement s, and a member's accumulator (NULL: none) */
static inline const LMember *MEM(E *e, const LStmt *s, int k) {
  return &e->L->m[s->first_member + k];
}
static inline const LAcc *ACC(E *e, const LMember *m) {
  return m->acc >= 0 ? &e->L->acc[m->acc] : NULL;
}

/* JIT row mode (emit_row.c): tiles of at most ROW_CHUNK elements, at most
 * ROW_SCRATCH rows of scratch on the stack */
#define ROW_CHUNK ROW_CHUNK_ELEMS
#define ROW_SCRATCH ROW_SCRATCH_ROWS

/* ---- emit.c ---------------------------------------------------------- */
void em_line(E *e, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
char *em_fmt(E *e, const char *f, ...) __attribute__((format(printf, 2, 3)));
char *em_lit(E *e, double v);        /* a constant of the element type */
char *em_cat(E *e, const char *a, ...); /* strings up to NULL, joined */
char *em_name(E *e, const char *prefix, long long k); /* "v12" */
const char *em_bufname(E *e, int id); /* the buffer node id is stored in */
const char *em_argname(Ctx *c, int i); /* argument i's C name */
/* the offset of element idx (index expressions) in a C-order shape s */
char *em_offset(E *e, const Shape *s, char **idx);
/* index names for operand x (rank r) of a node of rank R_ (broadcast) */
char **em_bcast_idx(E *e, const Node *x, int R_, char **idx);
const char *em_val(E *e, int id, char **idx);  /* value at idx, as C */
const char *em_load(E *e, int id, char **idx); /* its stored element */
char **em_loop_open(E *e, const Shape *s, const char *prefix);
void em_loop_close(E *e, const Shape *s);
void em_comment(E *e, int id);
/* a statement's loop nest cut into parts (LStmt.threads > 1): what is
   written between the two goes into its part function, and the statement
   calls the runner (em_parts_name) */
void em_part_begin(E *e, const LStmt *st, PartSave *sv);
void em_part_end(E *e, const LStmt *st, PartSave *sv);
/* ... or nothing of it written: the text since em_part_begin dropped */
void em_part_abandon(E *e, PartSave *sv);
const char *em_parts_name(E *e);
/* dst[i] op value of src, over src's shape (one flat index if flat, as
   lowering decided, and the rank is above 1) */
void em_ew_loop(E *e, const char *dst, int src, const char *op, int root,
                int flat);
void em_reduce_loop(E *e, const LStmt *s);
void em_acc_add(E *e, const char *name, const char *v); /* acc += v */
void em_sums_open(E *e, const LStmt *s);
void em_sums_close(E *e, const LStmt *s);
void em_comments(E *e, const LStmt *s); /* one per member */

/* ---- emit_row.c ------------------------------------------------------ */
int em_row_loop(E *e, const LStmt *s); /* 0, with nothing written, if it
                                          cannot */

/* ---- emit_ops.c ------------------------------------------------------ */
const char *em_gemm_name(E *e);
const char *em_gemm_mt_name(E *e);
void em_node_code(E *e, const LStmt *s);
void em_store_code(E *e, const LStmt *s);

/* ---- emit_api.c ------------------------------------------------------ */
void em_prototypes(E *e, StrBuf *o);
void em_macros(Ctx *c, StrBuf *o, const Plan *p);
void em_signature(Ctx *c, StrBuf *o, const char *real);
void em_tables(Ctx *c, StrBuf *o, int decl);
void em_header_comment(Ctx *c, StrBuf *o);
void em_generic(Ctx *c, StrBuf *o, const char *real);
void em_protos(Ctx *c, StrBuf *o, const char *real);
void em_training_macros(Ctx *c, const Plan *p, const Ctx *step, StrBuf *o);
/* a graph with an optimizer, compiled as its gradient function: its file
 * holds the step and the update too (emit.c) */
int em_training(const Ctx *c);
void em_siblings(Ctx *c, Ctx **st, Ctx **up);
_Noreturn void em_siblings_failed(Ctx *c, Ctx *bad, Ctx *other);

#endif
