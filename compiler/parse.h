/* parse.h — what parse.c (statements, expressions) and builtins.c (the
 * functions of the language) share. Internal to the compiler: every
 * function here is prefixed ps_. */
#ifndef AGC_PARSE_H
#define AGC_PARSE_H

#include "agc.h"

/* A parsed value: a tensor (IR node), a bracketed list, or a boolean. */
typedef enum { V_NODE, V_LIST, V_BOOL } VKind;
typedef struct Val Val;
struct Val {
  VKind kind;
  int node;
  int b;
  Val *items;
  int nitems;
  Loc loc;
  const char *argname; /* name= of a call argument, or NULL */
};

typedef struct {
  const char *name;
  int node;
  Loc loc;
} Sym;

typedef struct {
  Ctx *c;
  Token *t;
  int pos, ntok;
  Sym *syms;
  int nsyms, symcap;
  int *index; /* open-addressing hash of symbol positions, -1 empty */
  int icap;
  int nstmts;
  int depth;  /* expression nesting, bounded so the C stack is too */
} P;


/* Call arguments: positional first, then name=value. */
typedef struct {
  const char *fn;
  Loc loc;
  Val *pos;
  int npos;
  Val *named;
  int nnamed;
  int *used;
  const char *asked[16]; /* the argument names the function looked up */
  int nasked;
} Call;

/* parse.c: tokens, symbols, checked operands */
Token *ps_peek(P *p);
int ps_is_punct(const Token *t, const char *s);
int ps_is_ident(const Token *t, const char *s);
int ps_accept(P *p, const char *s);   /* the punctuation s, if next */
void ps_expect(P *p, const char *s);  /* the punctuation s, or an error */
const char *ps_ident(P *p, const char *what);
void ps_end_stmt(P *p);
_Noreturn void ps_unknown_name(P *p, const char *name, Loc loc);
Loc ps_tloc(const Token *t);
const char *ps_tok_desc(P *p, const Token *t);
Sym *ps_lookup(P *p, const char *name);
Node *ps_node(P *p, int id);
Shape ps_shape(P *p, int id);
int ps_need_node(P *p, Val v, const char *fn);
int64_t ps_need_int(P *p, Val v, const char *fn, const char *what);
double ps_need_number(P *p, Val v, const char *fn, const char *what);
int ps_norm_axis(P *p, int64_t ax, int rank, Loc loc);
Shape ps_need_shape(P *p, Val v, const char *fn, int64_t numel_for_neg1);

/* builtins.c */
int ps_call(P *p, Call *k);          /* lower the call name(args) */
int ps_is_function(const char *name);
const char *ps_fn_suggestion(const char *name); /* for an unknown name */
int ps_matmul_any(P *p, int a, int b, Loc loc);  /* the @ operator */
int ps_transpose2(P *p, int x, int a, int b, Loc loc); /* swap two axes */

/* optim.c: `optimizer KIND(k=v, ...)` (clip 0) or `clip_grad_norm M` */
void ps_opt_stmt(P *p, int clip, Loc loc);

#endif
