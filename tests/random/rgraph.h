/* rgraph.h — random well-shaped .graph programs for the differential tester.
 *
 * gen.c writes a program as a list of lines, each with what the tester
 * needs to fill its leaves and to shrink it: a leaf's shape and value
 * range; an assignment's shape and range (so shrinking can turn it into a
 * param of that shape); the output and backward lines.
 */
#ifndef RGRAPH_H
#define RGRAPH_H

#include <stdint.h>

#define RG_MAX_RANK 4
#define RG_NAME 24

typedef enum {
  RL_PARAM,    /* param NAME[dims] */
  RL_INPUT,    /* input NAME[dims] (float) */
  RL_INT,      /* input NAME: i32[dims], values in [0, imax) */
  RL_ASSIGN,   /* NAME = EXPR */
  RL_OUTPUT,   /* output NAME, ... (text holds the names) */
  RL_BACKWARD, /* backward NAME, ... */
  RL_OPTIM,    /* optimizer KIND(k=v, ...) or clip_grad_norm M (text: the
                  whole line) */
} RLineKind;

typedef struct {
  RLineKind kind;
  char name[RG_NAME];
  int rank;
  int64_t d[RG_MAX_RANK];
  double lo, hi;    /* value range: fill range of a leaf, bound of a value */
  int quant;        /* leaf filled with multiples of 0.25 (ties) */
  int imax;         /* RL_INT */
  char *text;       /* RL_ASSIGN: the expression; OUTPUT/BACKWARD: names */
  int dead;         /* removed by the shrinker */
} RLine;

typedef struct {
  RLine *l;
  int n, cap;
  int nofd;         /* detach() of a param-dependent value: no FD check */
  char roots[4][RG_NAME]; /* backward roots (outputs too) */
  int nroots;
} RGraph;

typedef struct {
  int max_dim;      /* largest dimension (default 64) */
  int64_t max_elems;/* largest tensor */
  int max_stmts;
  double train_frac; /* graphs with a training step (optimizer) */
} RGenOpts;

void rg_generate(RGraph *g, uint64_t seed, const RGenOpts *o);
/* The program text (malloc'd); header, if not NULL, goes first as comments. */
char *rg_render(const RGraph *g, const char *header);
void rg_free(RGraph *g);
void rg_copy(RGraph *dst, const RGraph *src);
/* Leaf info by name (NULL if none: e.g. a grad_y seed). */
const RLine *rg_leaf(const RGraph *g, const char *name);
/* Reads a program written by rg_render back (for tests/random/repro/NAME.graph
 * and hand-written files): declarations, assignments (shape unknown: rank
 * -1), output/backward lines; fill ranges from `# fill NAME LO HI` comments,
 * else [-1, 1]; i32 ranges from `# imax NAME N`. Returns 0 or -1. */
int rg_parse(RGraph *g, const char *src);

/* xorshift-style generator shared by generator and tester */
typedef struct {
  uint64_t s;
} Rng;
uint64_t rng_next(Rng *r);
/* printf into a new malloc'ed string (aborts when out of memory) */
char *rg_fmt(const char *f, ...) __attribute__((format(printf, 1, 2)));
double rng_unit(Rng *r);            /* [0, 1) */
int rng_int(Rng *r, int n);         /* [0, n) */
static inline int rng_chance(Rng *r, double p) { return rng_unit(r) < p; }

#endif
