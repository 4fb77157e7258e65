/* agc.h — the one header of the agc compiler.
 *
 * Sections are named after the file that implements them. The pipeline:
 *   lex.c → parse.c (builds IR through ir.c, differentiates through
 *   autodiff.c as it meets grad() and backward) → passes.c (strip, fold,
 *   simplify, cse, dce) → plan.c (what to store, where: fusion and the
 *   workspace) → emit.c (C) / dump.c (IR, dot).
 * The compiler is a library: errors longjmp to agc_compile(), which returns
 * a compilation holding the message; nothing here exits or prints.
 */
#ifndef AGC_H
#define AGC_H

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include "../runtime/agc_api.h"

#define AGC_VERSION "0.1.0"
#define MAX_RANK 8
/* Elements of one tensor: indices are C `long`, which is 32 bits on many
 * microcontrollers, so a tensor must stay addressable by that. */
#define MAX_ELEMS 2147483647LL
/* IR nodes of one compilation (the program and its derivatives, before
 * optimization): about 200,000 statements with backward; a graph beyond is
 * a located error, so memory stays bounded (~300 bytes a node). */
#define MAX_NODES 2000000
/* Differentiation levels: grad() of grad() ... (and backward on top). Each
 * level multiplies the graph (~3x with sin inside), so this bounds it. */
#define MAX_GRAD_ORDER 8
/* IR nodes walked by all the differentiations of one compilation together
 * (each grad() or backward walks the graph built before it): bounds the
 * time of many grad() calls over one long graph (a few seconds). */
#define MAX_AD_WORK 100000000LL

/* ---- util.c ----------------------------------------------------------- */

typedef struct ArenaBlock ArenaBlock;
typedef struct {
  ArenaBlock *head;
} Arena;

void *arena_alloc(Arena *a, size_t n);      /* zeroed; NULL never returned */
void *arena_alloc_raw(Arena *a, size_t n);  /* the same, not zeroed */
/* A copy of old (oldn bytes, from arena_alloc or arena_grow of a) in n
 * zeroed bytes; old's memory goes back to the system when it was large,
 * so an array doubled this way costs its final size, not the sum. */
void *arena_grow(Arena *a, void *old, size_t oldn, size_t n);
/* Gives back a large allocation early (a no-op for a small one). */
void arena_release(Arena *a, void *old, size_t oldn);
char *arena_strndup(Arena *a, const char *s, size_t n);
void arena_free(Arena *a);
void arena_clear(Arena *a); /* empty, its newest block kept for reuse */

/* A growable string; lives in malloc, freed by sb_free. */
typedef struct {
  char *s;
  size_t len, cap;
} StrBuf;

void sb_putc(StrBuf *b, char c);
void sb_puts(StrBuf *b, const char *s);
void sb_printf(StrBuf *b, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
void sb_putn(StrBuf *b, const char *s, size_t n);
void sb_insert(StrBuf *b, size_t pos, const char *s, size_t n);
void sb_free(StrBuf *b);

/* Reads a whole (graph) file into b; -1 with a one-line message naming the
 * file on any error, including one larger than MAX_SOURCE_BYTES. */
#define MAX_SOURCE_BYTES (64u << 20)
int read_text_file(const char *path, StrBuf *b, char *err, size_t errlen);

/* "Did you mean": the candidate nearest to word by edit distance
 * (insertion, deletion, substitution, swap of neighbours; a change of case
 * alone costs nothing), if it is close enough to be a likely slip of the
 * keyboard (at most one edit per three letters); else NULL. */
const char *nearest_name(const char *word, const char *const *cands, int n);

/* ---- lex.c ------------------------------------------------------------ */

typedef enum {
  T_EOF,     /* end of input */
  T_NEWLINE, /* end of a statement */
  T_IDENT,   /* identifier or keyword */
  T_NUM,     /* number literal */
  T_PUNCT,   /* operator or punctuation; text in `text` */
} TokKind;

typedef struct {
  const char *text; /* points into the source */
  double num;       /* T_NUM */
  TokKind kind;
  int len;
  int line, col;    /* 1-based */
  int is_int;       /* T_NUM written without '.', 'e' */
} Token;

typedef struct Ctx Ctx;
/* The tokens live in c->arena; *bytes gets their allocation's size, for
 * arena_release once parsed. */
Token *lex(Ctx *c, int *ntok); /* c->toks, freed with c or after parsing */

/* ---- ir.c ------------------------------------------------------------- */

typedef enum {
#define X(name, text, arity, kind, fold, ctext, row, fn) OP_##name,
#include "ops.def"
#undef X
  OP_COUNT
} Op;

typedef enum { K_LEAF, K_EW, K_RED, K_MOVE, K_MM, K_SPECIAL } OpKind;

typedef enum {
  DT_F,   /* the graph's float type (f32 or f64, chosen by --dtype) */
  DT_I32, /* integer input */
} DType;

/* Dimensions are 32-bit: a tensor has at most MAX_ELEMS (2^31 - 1)
 * elements, so every dimension and every product of one tensor's
 * dimensions fits. A dimension computed from user input is checked with
 * shape_dim before it is stored. Products across tensors, or with a byte
 * size, are taken in int64_t. */
typedef struct {
  int rank;
  int32_t d[MAX_RANK];
} Shape;

typedef struct {
  int line, col;
} Loc;

enum { MM_TA = 1, MM_TB = 2 }; /* MATMUL flags: transpose a / b */
/* the flags of (op(a) @ op(b))^T = op(b)^T @ op(a)^T, operands swapped */
static inline int mm_twin_flags(int fl) {
  return (fl & MM_TB ? 0 : MM_TA) | (fl & MM_TA ? 0 : MM_TB);
}

typedef struct {
  /* the 4-byte fields first, together, so the struct has no padding holes
     (a graph holds up to MAX_NODES of these) */
  Op op;
  DType dt;
  int nin;
  int ext;        /* INPUT/PARAM: index into Graph.args */
  int order;      /* 0, or k for a node built by a k-th order derivative */
  Loc loc;        /* where the user wrote it */
  Shape shape;
  int64_t numel;
  int *in;        /* nin operand ids (arena) */
  double val;     /* CONST: the value; ONEHOT: class count */
  unsigned mask;  /* RED/PRODEXCL: axis bit mask; FIRSTMAX: axis bit */
  int flags;      /* MATMUL: MM_TA|MM_TB */
  const int *perm; /* MAX_RANK ints: TRANSPOSE: out dim d = in dim perm[d];
                      SLICE/PAD: start per dim; CONV/POOL: params. Kept
                      with the operands (Node.in), or ir_zero_perm when
                      the op has none */
  const char *name; /* user's name, if the node was named */
} Node;

/* What an argument of the generated function is (optim.c). */
enum {
  ROLE_IN,     /* read-only: `in_NAME` */
  ROLE_PARAM,  /* a training step's param, updated in place: `p_NAME` */
  ROLE_GRAD,   /* NAME_update's gradient of a param: `NAME` (grad_P) */
  ROLE_STATE,  /* optimizer state, at byte `state_off` of `state` */
  ROLE_NONE,   /* not an argument of this function (NAME_update) */
};

typedef struct {
  const char *name;
  int node;       /* INPUT or PARAM node */
  int is_param;
  int is_seed;    /* grad_y seed added by `backward y` */
  Loc loc;
  int role;       /* ROLE_* */
  int64_t state_off; /* ROLE_STATE: byte offset in the state */
} Arg;

typedef struct {
  const char *name;
  int node;
  int is_grad;    /* a gradient produced by `backward` */
  Loc loc;
  int home;       /* -1, or the argument whose memory this output is
                     written into (a training step's param or state) */
} Out;

typedef struct {
  Node *nodes;
  int n, cap;
  /* hash-consing table: per slot a node id (-1 empty) and the low 32 bits
     of its hash, so a probe rarely has to look at a node that differs */
  struct HashSlot { int id; uint32_t h; } *hash;
  int hcap;
  Arg *args;
  int nargs, argcap;
  Out *outs;
  int nouts, outcap;
  Arena ins;      /* the nodes' operand lists (Node.in) */
} Graph;

/* ---- ops.c: the columns of ops.def ------------------------------------- */
const char *op_name(Op op);
OpKind op_kind(Op op);
int op_arity(Op op);          /* -1: any */
const char *op_ctext(Op op);  /* element-wise C template, or NULL */
int op_row(Op op);            /* ROW_* row kernel, or ROW_NOROW */
int op_is_fn(Op op);          /* the language's one-argument function */
int op_folds(Op op);
double op_fold1(Op op, double x);           /* NAN if it does not fold */
double op_fold2(Op op, double a, double b);
int op_is_libm_name(const char *name); /* a math function generated C calls */
/* the next `NAME$f(...)` call of template t at or after from, or NULL */
const char *op_math_call(const char *t, const char *from, size_t *len,
                         int *nargs);

/* ---- ir.c -------------------------------------------------------------- */
int64_t shape_numel(const Shape *s);
void shape_str(const Shape *s, char *buf, size_t n);
/* v as a dimension; a located error beyond MAX_ELEMS */
int32_t shape_dim(Ctx *c, int64_t v, Loc loc);

int ir_leaf(Ctx *c, Op op, DType dt, Shape s, const char *name, Loc loc);
int ir_const(Ctx *c, double v, Shape s);
int ir_scalar(Ctx *c, double v);
int ir_unary(Ctx *c, Op op, int a, Loc loc);
int ir_binary(Ctx *c, Op op, int a, int b, Loc loc);
int ir_where(Ctx *c, int cond, int a, int b, Loc loc);
int ir_reduce(Ctx *c, Op op, int a, unsigned mask, Loc loc); /* keeps rank */
int ir_reshape(Ctx *c, int a, Shape s, Loc loc);
int ir_transpose(Ctx *c, int a, const int *perm, Loc loc);
int ir_broadcast(Ctx *c, int a, Shape s, Loc loc);
int ir_matmul(Ctx *c, int a, int b, int flags, Loc loc);
int ir_firstmax(Ctx *c, Op op, int a, int axis, Loc loc);
int ir_prodexcl(Ctx *c, int a, unsigned mask, Loc loc);
int ir_slice(Ctx *c, Op op, int a, const int64_t *start, Shape out, Loc loc);
int ir_onehot(Ctx *c, int idx, int64_t classes, Loc loc);
int ir_node(Ctx *c, const Node *tmpl, const int *in); /* generic, interned */
/* Sizes the hash-consing table for n nodes at once (no regrowth). */
void ir_hash_reserve(Ctx *c, int n);
void ir_graph_reserve(Ctx *c, int n);
void ir_graph_recycle(Ctx *c, Graph *old);
void ir_spare_free(Ctx *c);
void ir_rebuild_evict(Ctx *c);
extern const int ir_zero_perm[MAX_RANK];
/* conv2d, pooling, embedding and their gradients: attrs go to perm[]
 * (conv: stride, padding; pool: kernel, stride). */
int ir_special(Ctx *c, Op op, const int *in, int nin, Shape s,
               const int *attrs, int nattrs, Loc loc);
/* sum of a (shaped like a broadcast result) down to shape s */
int ir_sum_to(Ctx *c, int a, Shape s, Loc loc);
int ir_is_const(Ctx *c, int id, double *v);
/* A new argument (input or param) / output of the generated function; an
 * output name given twice is an error at loc. */
void ir_add_arg(Ctx *c, const char *name, int node, int is_param,
                int is_seed, Loc loc);
void ir_add_out(Ctx *c, const char *name, int node, int is_grad, Loc loc);
unsigned name_hash(const char *s); /* FNV-1a */
Shape broadcast_shapes(Ctx *c, Shape a, Shape b, Loc loc);

/* ---- autodiff.c ------------------------------------------------------- */

/* Reverse mode. roots[i] with seeds[i] (a node of the root's shape; -1 for
 * a scalar root, seed 1). Returns, in grads[j], the node holding d/d wrt[j]
 * (a zeros node if wrt[j] does not influence the roots; *unused counts
 * those). Gradients are new IR nodes: they can be differentiated again. */
void autodiff(Ctx *c, const int *roots, const int *seeds, int nroots,
              const int *wrt, int nwrt, int *grads, int *unused, Loc loc);
/* unused, if not NULL, gets one flag per wrt node. */

/* ---- plan.c ----------------------------------------------------------- */

typedef struct Plan {
  char *live;     /* node needed by some output */
  int *uses;      /* uses by live nodes and outputs */
  char *inl;      /* computed inside its single consumer's loop */
  int *store;     /* -1, or the output index whose buffer is its home */
  int64_t *off;   /* workspace byte offset of stored nodes, -1 if none */
  int *alias;     /* node whose memory this node reads as its own */
  int *host;      /* -1, or the node whose loop computes this stored node
                     too (loop fusion: an element-wise consumer or a sum
                     joins its producer's loop) */
  int *fnext;     /* a loop's nodes after its host, in order; -1 ends */
  char *local;    /* a fused loop's value read only there: a local of the
                     loop body, never stored */
  int64_t *size;  /* bytes of a workspace buffer (at off), aligned */
  int *last;      /* position of a stored value's last reader (n + 1: an
                     output, read by the caller) */
  int64_t work_bytes;
  int64_t naive_bytes; /* all intermediates without reuse */
  int64_t live_bytes;  /* the most bytes of buffers live at one time: no
                          layout of these buffers needs less workspace */
  int64_t pack_off;    /* matmul packing scratch, -1 if no kernel call */
  int64_t *acc_off;    /* a fused whole-tensor sum's row of double partial
                          sums (plan_acc_row): workspace byte offset */
  int64_t acc_base;    /* where the scratch of partial sums starts */
} Plan;

int64_t plan_acc_row(const Ctx *c, const Plan *p, int id);
/* Does this matmul run through the packed kernel (kernels.c)? */
int plan_uses_gemm(const Ctx *c, const Node *n);
/* Such a product's M, N, K and one thread's packing scratch (elements);
 * the threads it runs on (1, or up to --threads). */
void plan_gemm_dims(const Ctx *c, const Node *n, int64_t *M, int64_t *N,
                    int64_t *K, int64_t *pack_each);
int plan_gemm_threads(const Ctx *c, const Node *n);
/* A conv2d node (or one of its gradients): its x, w, y shapes, the matrix
 * product it runs per image (M x K times K x N) and its im2col size. */
typedef struct {
  const Shape *x, *w, *y;
  int64_t M, N, K, col;
} ConvGeom;
ConvGeom conv_geometry(const Node *n, const Shape *a, const Shape *b);

void plan_graph(Ctx *c, Plan *p);

/* ---- lower.c: the loop-nest IR ----------------------------------------- */

typedef enum { LB_WORK, LB_ARG, LB_OUT, LB_STATE } LBufKind;
typedef struct {
  LBufKind kind;
  int idx;       /* WORK: the node; ARG/STATE: the argument; OUT: output */
  int64_t off;   /* WORK: workspace offset; STATE: offset in the state */
  int64_t bytes; /* its declared size */
} LBuf;
typedef struct {
  int node, stmt; /* the node whose memory; the statement's node */
  LBuf buf;
  Shape shape;    /* the layout the access indexes */
  int64_t end;    /* one past the last byte the loop nest reaches */
  int esize, write;
  int bad_dim;    /* -1, or an axis whose coordinate leaves its dimension */
} LAccess;
typedef enum { LA_LOCAL, LA_SCRATCH, LA_OWN } LAccKind;
typedef struct {
  int node;
  LAccKind kind;  /* a local of the loop; partial sums at off; the
                     reduction's own buffer */
  int64_t off, bytes;
  int esize;
  int held;       /* LA_OWN: its element is held in a local over the loops
                     from LStmt.hold on (lower_hold) */
} LAcc;
/* what a statement computes at each index of its loop, in order */
typedef struct {
  int node;
  int acc;   /* a sum: its accumulator (an index into Loops.acc); else -1 */
  int store; /* a value: written to its buffer too (else a local only) */
} LMember;
typedef enum { LS_LOOP, LS_NODE, LS_STORE } LStmtKind;
/* how a kernel statement runs: its own loops in the function, the packed
   matrix product (a convolution through im2col and it), or a call of the
   runtime's ahead-of-time narrow matrix product, pooling or im2col */
typedef enum { LK_NONE, LK_LOOPS, LK_GEMM, LK_MATMUL, LK_CALL } LKernel;
typedef struct {
  LStmtKind kind;
  int node;       /* LOOP: its head; NODE: the node; STORE: the value */
  int out;        /* STORE: the output */
  Shape iter;     /* the iteration space */
  int flat;       /* every member and every buffer it reads has the shape
                     iter: the loop may run as one flat index */
  LKernel kernel; /* NODE: how a kernel runs (LK_NONE: not a kernel) */
  int threads;    /* LK_GEMM: the threads a matrix product runs on; a
                     LOOP or an element-wise NODE: its loop nest is cut
                     into parts along dimension par (of iter, or 0 when
                     the loop runs flat) that run on up to this many
                     threads (parts.c) */
  int par;
  int64_t par_unit; /* the parts' bounds lo..hi count units of this many
                       indices of dimension par: 1, or for the JIT's row
                       kernels the tile or chunk a call takes (the calls
                       stay those of one thread) */
  int nmembers;
  int row;        /* the JIT's row kernels run it (row_ok) */
  int hold;       /* LOOP: sums into their own buffers are held in locals
                     over the loops of dimensions hold.. (0: none) */
  int first_member, first_access, naccess, first_acc, nacc;
} LStmt;
typedef struct Loops {
  LStmt *s;
  int ns;
  LMember *m;
  int nm;
  LAccess *a;
  int na;
  LAcc *acc;
  int nacc;
} Loops;
struct Target;
Loops *lower_graph(Ctx *c, const Plan *p, const struct Target *t);
void lower_check(Ctx *c, const Plan *p, const Loops *L);
void lower_dump(Ctx *c, const Plan *p, const Loops *L, const struct Target *t,
                StrBuf *o);
void lower_free(Loops *L);
LBuf lower_buf(const Ctx *c, const Plan *p, int id);
int lower_scheduled(const Ctx *c, const Plan *p, int i);
int lower_store_first(const Ctx *c, const Plan *p, int o);
int lower_group_flat(const Ctx *c, const Plan *p, int h, const Shape *s);
/* the shape statement s's loop nest walks (iter, or flat: [numel]) */
Shape lower_space(const Ctx *c, const LStmt *s);
/* may node id's expression tree run flat over shape s (top: id itself is
   computed, not loaded)? */
int lower_flat_ok(const Ctx *c, const Plan *p, int id, const Shape *s,
                  int top);
/* a row-mode loop over s: rows along axis ra (the last longer than 1), of
   L elements, taken T at a time along axis ta (-1: none) */
typedef struct {
  int ra, ta;
  int64_t L, T;
} RowTile;
RowTile lower_row_tile(const Shape *s);
/* the JIT's row mode: tiles of at most ROW_CHUNK_ELEMS elements, at most
 * ROW_SCRATCH_ROWS rows of scratch on the stack (emit_row.c) */
#define ROW_CHUNK_ELEMS 256
#define ROW_SCRATCH_ROWS 32
/* The compilation's plan, computed on first use, then kept. */
const Plan *ctx_plan(Ctx *c);
/* The node whose value id is (skipping named values and detach). */
int plan_resolve(const Ctx *c, int id);

/* ---- target.c --------------------------------------------------------- */

/* A target description: how the emitter writes C for one kind of consumer.
 * The emitter reads only these fields, never a target's name. */
typedef struct Target {
  const char *name;     /* "host", "jit" */
  int loops_dowhile;    /* `do { } while (++i < n)` loops and a running
                           offset `ix` (TinyCC lays `for` out with three
                           jumps per iteration) */
  int nest_exprs;       /* single-use values nested into their consumer's
                           expression instead of named locals */
  int row_kernels;      /* f32 element-wise loops as calls of the
                           ahead-of-time row kernels (agc_row_f32) */
  int aot_kernels;      /* gemm, narrow matmuls, im2col, pooling, tanhf and
                           expf call the runtime's ahead-of-time copies
                           (agc_*) instead of carrying their text */
  int math_protos;      /* declare the math functions instead of including
                           <math.h> */
  const char *acc_type; /* C type of whole-tensor sum accumulators (NULL:
                           the element type, with compensated summation) */
  int gemm;             /* wide matrix products and convolutions through the
                           packed kernel (workspace for packing); else plain
                           loops over strided operands */
  int sum_rows;         /* a fused loop's whole-tensor sum keeps a row of
                           double partial sums in the workspace */
  int own_math;         /* f32 tanh and exp through the vectorizable kernels
                           of runtime/kernels (else <math.h>'s) */
  int readable;         /* a comment per node and indentation (the JIT's C
                           is never read: leaving them out saves TinyCC a
                           third of the text to tokenize) */
  int where_blend;      /* where(c, a, b) as NAME_where, which computes a
                           and b and picks the bits by a mask: no load
                           under a condition, which gcc 12.2 at -O3 with
                           AVX2 makes a masked load and then sums wrongly
                           in loop nests (else a C conditional) */
  int align;            /* workspace buffers start at multiples of this
                           (64: a cache line for vector loads; 8: a double) */
} Target;
enum { TARGET_HOST, TARGET_JIT, TARGET_MCU, TARGET_COUNT };
const Target *target_get(int id); /* NULL if id is not a target */
int target_find(const char *name); /* id, or -1 */

/* ---- emit.c ----------------------------------------------------------- */

enum { EMIT_C, EMIT_H, EMIT_IR, EMIT_DOT, EMIT_PLAN, EMIT_MEM, EMIT_LOOPS };
void emit_c(Ctx *c, const Plan *p, const Target *t, StrBuf *out);
void emit_h(Ctx *c, StrBuf *out);
void emit_plan(Ctx *c, StrBuf *out); /* dump_plan, of each function */
/* --emit mem: the bytes a call needs, for target t */
void emit_mem(Ctx *c, const Target *t, StrBuf *out);
void emit_loops(Ctx *c, const Target *t, StrBuf *out); /* lower_dump */
void dump_ir(Ctx *c, StrBuf *out);
void dump_dot(Ctx *c, StrBuf *out);
void dump_plan(Ctx *c, const Plan *p, StrBuf *out); /* dump.c */

/* ---- passes.c --------------------------------------------------------- */

/* Runs the optimizer pipeline (unless O0), the IR checker after each pass;
 * stops after the pass named stop_after, if any. */
void run_passes(Ctx *c, const char *stop_after);
/* Is name "parse" or a pass? (for --after) PASS_LIST names them all. */
int pass_known(const char *name);
#define PASS_LIST "parse, strip, fold, simplify, cse, dce"
/* Flags the nodes some output needs (arena memory): the rest is dead. */
char *ir_live_nodes(Ctx *c);

/* ---- kernels.c -------------------------------------------------------- */

/* The text of runtime/kernels/ for a generated .c file: the matrix-product
 * kernel named `name` for f32 or f64, im2col and pooling (static), and f32
 * tanh and exp as vectorizable functions. */
void emit_gemm(StrBuf *o, const char *name, int f64, int is_static);
void emit_gemm_mt(StrBuf *o, const char *gemm, const char *parts, int f64);
void emit_parts(StrBuf *o, const char *name);
void emit_im2col(StrBuf *o, const char *name, int f64);
void emit_pool(StrBuf *o, const char *name, int f64);
void emit_tanhf(StrBuf *o, const char *name, int is_static);
void emit_expf(StrBuf *o, const char *name, int is_static);
/* the rows of one panel of runtime/kernels/gemm.c (MR; gemm_mt.c cuts C
   into bands of whole panels) */
enum { KERNEL_MR = 6 };
int kernel_nr(int f64); /* the gemm's panel width */
int64_t kernel_pack_elems(int f64, int64_t M, int64_t N, int64_t K);
/* operations of agc_row_f32 (the JIT's row kernels, runtime/kernels/row.c),
 * numbered as listed in row_ops.def */
enum {
  ROW_NOROW = -1,
#define X(name, expr) ROW_##name,
#define Y(name) ROW_##name,
#include "../runtime/kernels/row_ops.def"
#undef X
#undef Y
  ROW_NOPS
};
extern const char *const row_op_names[ROW_NOPS];

/* ---- optim.c: the training step ----------------------------------------- */

/* One argument of `optimizer` or `clip_grad_norm`: a number, or the name
 * of a scalar input (arg >= 0 once resolved). */
typedef struct {
  const char *name;   /* argument name ("lr"), for messages */
  int set;            /* given in the program (else the default) */
  double num;
  const char *input;  /* a scalar input's name, or NULL */
  int node;           /* that input's node, once resolved */
  Loc loc;
} OptArg;

enum { OPT_NONE, OPT_SGD, OPT_ADAM, OPT_ADAMW };
enum { OA_LR, OA_MOMENTUM, OA_DAMPENING, OA_WD, OA_BETA1, OA_BETA2, OA_EPS,
       OA_NESTEROV, OA_COUNT };

typedef struct {
  int kind;           /* OPT_* */
  Loc loc;            /* the `optimizer` statement */
  OptArg a[OA_COUNT];
  int clip;           /* clip_grad_norm given */
  OptArg clip_norm;
  Loc clip_loc;
} OptSpec;

/* What one compilation of a graph with an optimizer builds. */
enum {
  MODE_GRAD,   /* the gradient function (outputs, grad_P): NAME_grad */
  MODE_STEP,   /* one training step, params updated in place: NAME */
  MODE_UPDATE, /* clip + optimizer from given gradients: NAME_update */
};

/* The parser's `optimizer NAME(k=v, ...)` and `clip_grad_norm M`
 * statements; args[i] named names[i]. Checks names and values. */
void optim_statement(Ctx *c, const char *kind, Loc loc, int nargs,
                     OptArg *args);
void optim_clip(Ctx *c, Loc loc, OptArg arg);
/* After backward: builds the step or the update (c->opt.mode) from the
 * gradients grads[j] of the params pidx[j]. */
void optim_build(Ctx *c, const int *pidx, const int *grads, int np);
/* Bytes of optimizer state of the step (0 without an optimizer). */
int64_t optim_state_bytes(const Ctx *c);
/* Is n one of the nodes of a training step's update (the schedule moves
 * them; the planner inlines nothing else into them)? */
int optim_is_update(const Ctx *c, const Node *n);

/* ---- compile.c: the library entry -------------------------------------- */

/* The compiler's options: the library's (agc_api.h: f64, accumulate,
 * no_grad, name, expose_roots, O0; backend and mcu choose `target`), one
 * struct for the API, the command and the compiler, and what only agc
 * itself sets. */
typedef struct {
  agc_graph_options api;
  const char *after; /* stop the pass pipeline after this pass (--after) */
  int mode;          /* MODE_*: which function of a training graph */
  int target;        /* TARGET_*: what the plan is for (the workspace) */
} Options;

/* the target a library user's options ask for: the JIT's (tcc), the
 * host's (cc) or the microcontroller's */
static inline int target_of(const agc_graph_options *o) {
  return o->mcu ? TARGET_MCU
                : o->backend == AGC_BACKEND_TCC ? TARGET_JIT : TARGET_HOST;
}

struct Ctx {
  Arena arena;
  Token *toks;          /* the lexer's tokens, until the parser is done */
  Arena tmp;            /* the C generator's strings for one statement
                           (emit*.c), emptied after each */
  Arena tmp_loop;       /* a fused loop's own strings (its indices) while
                           tmp holds one member's, emptied after each */
  Options opt;
  const char *path;     /* file name for messages */
  const char *src;      /* source text */
  size_t srclen;
  jmp_buf jmp;          /* error exit */
  StrBuf diag;          /* warnings and the error, formatted */
  const char **lines;   /* start of each source line, once a message needs it */
  int nlines;
  int failed;
  Graph g;
  Graph prev;           /* the graph a pass is rebuilding from (freed by
                           agc_free if an error ends the pass) */
  /* A rebuilt graph's node array and hash table, kept for the next pass
   * to build into (passes.c): fresh memory of that size costs more in
   * page faults than the pass itself. Freed after the passes. */
  Node *spare_nodes;
  int spare_cap;
  /* A rebuild in place (passes.c) writes the new graph over the node
   * array of the old one: a node it appends goes below rb_lim, the first
   * old node not read yet. When a rewrite needs more room than the old
   * nodes read so far left free, the unread ones (from rb_from on) move
   * to rb_rest first (ir.c: append). rb_lim 0: no rebuild in place. */
  int rb_lim, rb_from, rb_n;
  Node *rb_rest;
  struct HashSlot *spare_hash;
  int spare_hcap;
  const char *name;     /* function name */
  int nwarn;
  /* backward roots */
  int *broots, *bseeds;
  int nbroots;
  int64_t ad_work;      /* nodes walked by autodiff so far (MAX_AD_WORK) */
  int *outidx;          /* hash index of Graph.outs by name (parse.c) */
  int outicap;
  /* Which rewrites the IR constructors apply (R_*). The parser builds with
   * none of them, so the graph it hands over is what the program says;
   * the passes of passes.c turn them on one at a time. */
  unsigned rules;
  struct Plan *plan;    /* ctx_plan(): computed once, after the passes */
  struct Loops *loops;  /* the last lower_graph() (freed with the Ctx) */
  OptSpec optim;        /* `optimizer`, `clip_grad_norm` (kind OPT_NONE) */
  int64_t state_bytes;  /* MODE_STEP/UPDATE: optimizer state size; a
                           training graph's, once its C is written */
  int64_t step_work;    /* a training graph: its step's workspace, once its
                           C is written (emit_c) */
  int64_t stack_est;    /* the generated function's stack, estimated as its
                           C is written (emit.c) */
};
enum {
  R_FOLD = 1,     /* constant operands evaluated (scalars: always) */
  R_SIMPLIFY = 2, /* x*1, x+0, --x, double transposes, transposes into
                     matmul operand order, constants reassociated */
  R_CSE = 4,      /* equal pure nodes shared (hash-consing) */
  R_UNTWINNED = 8, /* after dce (passes.c, untwin): a transpose of a product
                      stays a transpose, so that a later rebuild (the
                      training step's schedule, perturb) does not write it
                      as the transposed product again */
};

/* Reports an error at loc and unwinds to agc_compile. */
_Noreturn void error_at(Ctx *c, Loc loc, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
void warn_at(Ctx *c, Loc loc, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* An error with no place (limits, internal). */
_Noreturn void error_plain(Ctx *c, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* Public API (also used by runtime/ and main.c). */
Ctx *agc_compile(const char *path, const char *src, size_t len,
                 const Options *opt);
int agc_failed(const Ctx *c);
const char *agc_messages(const Ctx *c); /* diagnostics text, maybe "" */
/* Generates one artifact into out for target TARGET_HOST or TARGET_JIT;
 * returns 0, or -1 after an error. */
int agc_emit(Ctx *c, int kind, int target, StrBuf *out);
void agc_free(Ctx *c);
/* Workspace bytes of the planned code (and without reuse, in *naive). */
int64_t agc_work_bytes(Ctx *c, int64_t *naive);

/* ---- parse.c ---------------------------------------------------------- */

void parse_program(Ctx *c, Token *toks, int ntok);

#endif
