/* gen.c — random well-shaped .graph programs.
 *
 * The generator keeps a pool of named values, each with its shape, an
 * interval that bounds its elements, whether it depends on a param, and the
 * named values it depends on (for grad()). Every operation is applied only
 * where it is defined and well-conditioned: operands are first squashed
 * (tanh or a constant scale) when their bound is too large for the op, and
 * made positive (x*x + c, abs(x) + c, sigmoid(x) + c, ...) before log,
 * sqrt, rsqrt, division and non-integer powers. So every value stays finite
 * for the leaves' fill ranges and finite differences mean something.
 */
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rgraph.h"

/* ---- random numbers ----------------------------------------------------- */

uint64_t rng_next(Rng *r) { /* splitmix64 */
  uint64_t z = (r->s += 0x9e3779b97f4a7c15ULL);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}
double rng_unit(Rng *r) { return (double)(rng_next(r) >> 11) * 0x1p-53; }
int rng_int(Rng *r, int n) { return n <= 1 ? 0 : (int)(rng_next(r) % (uint64_t)n); }

/* ---- text helpers ------------------------------------------------------- */

char *rg_fmt(const char *f, ...) {
  va_list ap;
  va_start(ap, f);
  int n = vsnprintf(NULL, 0, f, ap);
  va_end(ap);
  char *s = malloc((size_t)n + 1);
  if (!s)
    abort();
  va_start(ap, f);
  vsnprintf(s, (size_t)n + 1, f, ap);
  va_end(ap);
  return s;
}

static void dims_str(char *buf, size_t n, int rank, const int64_t *d) {
  size_t k = (size_t)snprintf(buf, n, "[");
  for (int i = 0; i < rank && k < n; i++)
    k += (size_t)snprintf(buf + k, n - k, "%s%lld", i ? ", " : "", (long long)d[i]);
  if (k < n)
    snprintf(buf + k, n - k, "]");
}

/* ---- the graph ---------------------------------------------------------- */

static RLine *add_line(RGraph *g, RLineKind k, const char *name) {
  if (g->n == g->cap) {
    g->cap = g->cap ? 2 * g->cap : 32;
    g->l = realloc(g->l, (size_t)g->cap * sizeof *g->l);
    if (!g->l)
      abort();
  }
  RLine *l = &g->l[g->n++];
  memset(l, 0, sizeof *l);
  l->kind = k;
  snprintf(l->name, sizeof l->name, "%s", name ? name : "");
  return l;
}

void rg_free(RGraph *g) {
  for (int i = 0; i < g->n; i++)
    free(g->l[i].text);
  free(g->l);
  memset(g, 0, sizeof *g);
}

void rg_copy(RGraph *dst, const RGraph *src) {
  *dst = *src;
  dst->l = malloc((size_t)(src->cap ? src->cap : 1) * sizeof *dst->l);
  if (!dst->l)
    abort();
  memcpy(dst->l, src->l, (size_t)src->n * sizeof *dst->l);
  for (int i = 0; i < src->n; i++)
    dst->l[i].text = src->l[i].text ? strdup(src->l[i].text) : NULL;
}

const RLine *rg_leaf(const RGraph *g, const char *name) {
  for (int i = 0; i < g->n; i++)
    if (!g->l[i].dead && g->l[i].kind <= RL_INT && strcmp(g->l[i].name, name) == 0)
      return &g->l[i];
  return NULL;
}

char *rg_render(const RGraph *g, const char *header) {
  size_t cap = 4096, len = 0;
  char *s = malloc(cap);
  if (!s)
    abort();
  s[0] = 0;
#define PUT(...)                                                              \
  do {                                                                        \
    int n_ = snprintf(NULL, 0, __VA_ARGS__);                                  \
    while (len + (size_t)n_ + 1 > cap)                                        \
      s = realloc(s, cap *= 2);                                               \
    if (!s)                                                                   \
      abort();                                                                \
    len += (size_t)sprintf(s + len, __VA_ARGS__);                             \
  } while (0)
  if (header && *header) {
    const char *p = header;
    while (*p) {
      const char *e = strchr(p, '\n');
      size_t n = e ? (size_t)(e - p) : strlen(p);
      PUT("# %.*s\n", (int)n, p);
      p += n + (e != NULL);
    }
  }
  if (g->nofd)
    PUT("# nofd\n");
  for (int i = 0; i < g->n; i++) {
    const RLine *l = &g->l[i];
    if (l->dead)
      continue;
    char dims[128];
    dims_str(dims, sizeof dims, l->rank, l->d);
    switch (l->kind) {
    case RL_PARAM:
    case RL_INPUT:
      if (l->lo != -1 || l->hi != 1 || l->quant)
        PUT("# fill %s %.17g %.17g%s\n", l->name, l->lo, l->hi,
            l->quant ? " quant" : "");
      PUT("%s %s%s\n", l->kind == RL_PARAM ? "param" : "input", l->name,
          l->rank ? dims : "");
      break;
    case RL_INT:
      PUT("# imax %s %d\n", l->name, l->imax);
      PUT("input %s: i32%s\n", l->name, dims);
      break;
    case RL_ASSIGN:
      PUT("%s = %s\n", l->name, l->text);
      break;
    case RL_OUTPUT:
      PUT("output %s\n", l->text);
      break;
    case RL_BACKWARD:
      PUT("backward %s\n", l->text);
      break;
    case RL_OPTIM:
      PUT("%s\n", l->text);
      break;
    }
  }
#undef PUT
  return s;
}

/* ---- reading a program back --------------------------------------------- */

static int parse_dims(const char *p, int64_t *d) {
  int r = 0;
  p = strchr(p, '[');
  if (!p)
    return 0;
  p++;
  while (*p && *p != ']' && r < RG_MAX_RANK) {
    char *e;
    long long v = strtoll(p, &e, 10);
    if (e == p)
      break;
    d[r++] = v;
    p = e;
    while (*p == ' ' || *p == ',')
      p++;
  }
  return r;
}

int rg_parse(RGraph *g, const char *src) {
  memset(g, 0, sizeof *g);
  struct {
    char name[RG_NAME];
    double lo, hi;
    int quant, imax;
  } fills[256];
  int nf = 0;
  const char *p = src;
  while (*p) {
    const char *e = strchr(p, '\n');
    size_t n = e ? (size_t)(e - p) : strlen(p);
    char line[4096];
    snprintf(line, sizeof line, "%.*s", (int)(n < 4095 ? n : 4095), p);
    p += n + (e != NULL);
    char *s = line;
    while (*s == ' ' || *s == '\t')
      s++;
    char nm[RG_NAME];
    double lo, hi;
    int im;
    if (strncmp(s, "# nofd", 6) == 0) {
      g->nofd = 1;
      continue;
    }
    if (sscanf(s, "# fill %23s %lf %lf", nm, &lo, &hi) == 3 && nf < 256) {
      snprintf(fills[nf].name, RG_NAME, "%s", nm);
      fills[nf].lo = lo, fills[nf].hi = hi;
      fills[nf].quant = strstr(s, "quant") != NULL;
      fills[nf++].imax = 0;
      continue;
    }
    if (sscanf(s, "# imax %23s %d", nm, &im) == 2 && nf < 256) {
      snprintf(fills[nf].name, RG_NAME, "%s", nm);
      fills[nf].lo = -1, fills[nf].hi = 1, fills[nf].quant = 0;
      fills[nf++].imax = im;
      continue;
    }
    char *hash = strchr(s, '#');
    if (hash)
      *hash = 0;
    size_t k = strlen(s);
    while (k && (s[k - 1] == ' ' || s[k - 1] == '\r'))
      s[--k] = 0;
    if (!*s || strncmp(s, "graph ", 6) == 0)
      continue;
    int is_param = strncmp(s, "param ", 6) == 0;
    if (is_param || strncmp(s, "input ", 6) == 0) {
      char *q = s + 6;
      while (*q == ' ')
        q++;
      size_t m = strcspn(q, " :[");
      snprintf(nm, sizeof nm, "%.*s", (int)m, q);
      int is_int = strstr(q, "i32") != NULL;
      RLine *l = add_line(g, is_param ? RL_PARAM : is_int ? RL_INT : RL_INPUT, nm);
      l->rank = parse_dims(q, l->d);
      l->lo = -1, l->hi = 1;
      l->imax = 1;
      for (int i = 0; i < nf; i++)
        if (strcmp(fills[i].name, nm) == 0) {
          l->lo = fills[i].lo, l->hi = fills[i].hi, l->quant = fills[i].quant;
          if (fills[i].imax)
            l->imax = fills[i].imax;
        }
      continue;
    }
    if (strncmp(s, "output ", 7) == 0 || strncmp(s, "backward ", 9) == 0) {
      int isb = s[0] == 'b';
      RLine *l = add_line(g, isb ? RL_BACKWARD : RL_OUTPUT, "");
      l->text = strdup(s + (isb ? 9 : 7));
      if (isb) {
        char *t = strdup(l->text), *save = NULL;
        for (char *w = strtok_r(t, ", ", &save); w && g->nroots < 4;
             w = strtok_r(NULL, ", ", &save))
          snprintf(g->roots[g->nroots++], RG_NAME, "%s", w);
        free(t);
      }
      continue;
    }
    if (strncmp(s, "optimizer ", 10) == 0 || strncmp(s, "clip_grad_norm ", 15) == 0) {
      add_line(g, RL_OPTIM, "")->text = strdup(s);
      continue;
    }
    char *eq = strchr(s, '=');
    if (eq && eq[1] != '=') {
      char *a = s;
      size_t m = strcspn(a, " =");
      snprintf(nm, sizeof nm, "%.*s", (int)m, a);
      RLine *l = add_line(g, RL_ASSIGN, nm);
      char *rhs = eq + 1;
      while (*rhs == ' ')
        rhs++;
      l->text = strdup(rhs);
      l->rank = -1; /* unknown */
      continue;
    }
    rg_free(g);
    return -1;
  }
  return 0;
}

/* ---- the generator ------------------------------------------------------- */

#define MAXV 256
#define BIG 1e30

typedef struct {
  char *e;           /* expression: a name, a call, or a parenthesized form */
  int rank;
  int64_t d[RG_MAX_RANK];
  double lo, hi;
  int pdep;          /* depends on a param */
  int nuse;
  int grad_ok;       /* named float value: may be grad()'s x */
  int lim;           /* derivatives it still allows (max_pool2d 1, prod 2) */
  int hasgrad;       /* a grad() result is behind it: may be 0 up to rounding */
  uint8_t anc[MAXV / 8];
} Val;

typedef struct {
  RGraph *g;
  Rng r;
  const RGenOpts *o;
  Val pool[MAXV];
  int n;
  int nparam, ninput, nint, nval;
  double fill_lo, fill_hi;
  int quant;
  /* The highest derivative order of any value so far (a grad() is one more
     than it). The compiler counts the order of grad(y, x) over every node
     between x and y that depends on x, not only y's ancestors, and
     `backward` adds one over all params: bounding the whole graph's
     largest order is what keeps it within MAX_GRAD_ORDER. */
  int maxord;
  int ngrad; /* grad() calls in the program text so far */
} Gen;

/* compiler/agc.h MAX_GRAD_ORDER: grad() may reach one less, the final
   `backward` is the last differentiation */
#define RG_MAX_ORDER 8

static double mag(const Val *v) { return fmax(fabs(v->lo), fabs(v->hi)); }
static double clampb(double x) { return x > BIG ? BIG : x < -BIG ? -BIG : x; }
static int64_t numel(int rank, const int64_t *d) {
  int64_t n = 1;
  for (int i = 0; i < rank; i++)
    n *= d[i];
  return n;
}

static Val tmp(char *e, int rank, const int64_t *d, double lo, double hi,
               const Val *a, const Val *b, const Val *c) {
  Val v;
  memset(&v, 0, sizeof v);
  v.e = e;
  v.rank = rank;
  if (rank)
    memcpy(v.d, d, (size_t)rank * sizeof *d);
  if (lo > hi) {
    double t = lo;
    lo = hi;
    hi = t;
  }
  v.lo = clampb(lo);
  v.hi = clampb(hi);
  v.lim = 9;
  if (isnan(v.lo) || isnan(v.hi))
    v.lo = -BIG, v.hi = BIG;
  const Val *ops[3] = {a, b, c};
  for (int k = 0; k < 3; k++)
    if (ops[k]) {
      v.pdep |= ops[k]->pdep;
      if (ops[k]->lim < v.lim)
        v.lim = ops[k]->lim;
      v.hasgrad |= ops[k]->hasgrad;
      for (int i = 0; i < MAXV / 8; i++)
        v.anc[i] |= ops[k]->anc[i];
    }
  return v;
}

/* a value of the same shape with a new expression */
static Val same(const Val *a, char *e, double lo, double hi) {
  return tmp(e, a->rank, a->d, lo, hi, a, NULL, NULL);
}

static int rand_dim(Gen *G) {
  double u = rng_unit(&G->r);
  int m = G->o->max_dim;
  int d = u < 0.2 ? 1 : u < 0.7 ? 2 + rng_int(&G->r, 4)
        : u < 0.92 ? 6 + rng_int(&G->r, 11) : 17 + rng_int(&G->r, m > 17 ? m - 16 : 1);
  return d > m ? m : d;
}

static void fit(Gen *G, int rank, int64_t *d) {
  while (numel(rank, d) > G->o->max_elems) {
    int k = 0;
    for (int i = 1; i < rank; i++)
      if (d[i] > d[k])
        k = i;
    d[k] = (d[k] + 1) / 2;
  }
}

static void rand_shape(Gen *G, int rank, int64_t *d) {
  for (int i = 0; i < rank; i++)
    d[i] = rand_dim(G);
  fit(G, rank, d);
}

static int rand_rank(Gen *G) {
  double u = rng_unit(&G->r);
  return u < 0.08 ? 0 : u < 0.35 ? 1 : u < 0.75 ? 2 : u < 0.92 ? 3 : 4;
}

/* Adds a named value (a statement, or a declaration already added). */
static Val *name_val(Gen *G, Val v, const char *name) {
  if (G->n == MAXV)
    return NULL;
  Val *p = &G->pool[G->n];
  *p = v;
  p->e = strdup(name);
  p->grad_ok = 1;
  p->anc[G->n / 8] |= (uint8_t)(1u << (G->n % 8));
  G->n++;
  return p;
}

static Val *leaf(Gen *G, int rank, const int64_t *d, int is_param) {
  char nm[RG_NAME];
  snprintf(nm, sizeof nm, is_param ? "p%d" : "x%d",
           is_param ? G->nparam++ : G->ninput++);
  RLine *l = add_line(G->g, is_param ? RL_PARAM : RL_INPUT, nm);
  l->rank = rank;
  if (rank)
    memcpy(l->d, d, (size_t)rank * sizeof *d);
  l->lo = G->fill_lo, l->hi = G->fill_hi, l->quant = G->quant;
  if (rng_chance(&G->r, 0.1))
    l->lo = 0.5, l->hi = 2; /* positive data, log/sqrt directly */
  Val v = tmp(NULL, rank, d, l->lo, l->hi, NULL, NULL, NULL);
  v.pdep = is_param;
  return name_val(G, v, nm);
}

static Val *rand_leaf(Gen *G, int rank, const int64_t *d) {
  return leaf(G, rank, d, rng_chance(&G->r, 0.7));
}

static Val int_leaf(Gen *G, int rank, const int64_t *d, int imax) {
  char nm[RG_NAME];
  snprintf(nm, sizeof nm, "i%d", G->nint++);
  RLine *l = add_line(G->g, RL_INT, nm);
  l->rank = rank;
  memcpy(l->d, d, (size_t)rank * sizeof *d);
  l->imax = imax;
  l->lo = 0, l->hi = imax;
  return tmp(strdup(nm), rank, d, 0, imax, NULL, NULL, NULL);
}

static Val *leaf(Gen *G, int rank, const int64_t *d, int is_param);

/* grad( in an expression */
static int count_grads(const char *e) {
  int n = 0;
  for (const char *p = e; (p = strstr(p, "grad(")); p += 5)
    n += p == e || !(p[-1] == '_' || (p[-1] >= 'a' && p[-1] <= 'z') || (p[-1] >= '0' && p[-1] <= '9'));
  return n;
}

/* Names a value: a statement `vK = expr`. */
static Val *stmt(Gen *G, Val v) {
  if (G->n == MAXV)
    return NULL;
  /* Every grad() in the text is a differentiation, and the compiler gives
     it an order one above every node between its x and y that depends on
     x, whether y uses them or not: an expression the generator wrote
     twice (bounded(), positive()) or an unrelated grad() in between counts
     too. So the program holds at most RG_MAX_ORDER - 1 grad() calls, and
     `backward` is the last differentiation: no derivative can be of an
     order above MAX_GRAD_ORDER. A statement that would exceed it becomes
     a new input of its shape. */
  int ng = count_grads(v.e);
  if (ng && G->ngrad + ng > RG_MAX_ORDER - 1) {
    free(v.e);
    Val *x = leaf(G, v.rank, v.d, 0);
    if (!x)
      return NULL;
    x->nuse++;
    Val w = *x;
    w.e = strdup(x->e);
    v = w;
    ng = 0;
  }
  G->ngrad += ng;
  char nm[RG_NAME];
  snprintf(nm, sizeof nm, "v%d", G->nval++);
  RLine *l = add_line(G->g, RL_ASSIGN, nm);
  l->text = v.e;
  l->rank = v.rank;
  memcpy(l->d, v.d, sizeof l->d);
  l->lo = v.lo, l->hi = v.hi;
  return name_val(G, v, nm);
}

/* A pool value: recent and unused ones are likelier. */
static Val *pick(Gen *G) {
  if (G->n == 0 || rng_chance(&G->r, 0.08)) {
    int64_t d[RG_MAX_RANK];
    int r = rand_rank(G);
    rand_shape(G, r, d);
    return rand_leaf(G, r, d);
  }
  Val *best = NULL;
  double bw = -1;
  for (int i = 0; i < G->n; i++) {
    double w = rng_unit(&G->r) * (1.0 + i * 3.0 / G->n) *
               (G->pool[i].nuse ? 0.5 : 1.5);
    if (w > bw)
      bw = w, best = &G->pool[i];
  }
  return best;
}

static Val use(Val *p) {
  p->nuse++;
  Val v = *p;
  v.e = strdup(p->e);
  return v;
}

static Val pick_use(Gen *G) { return use(pick(G)); }

/* A number in a short decimal form. */
static const char *num(double x, char *buf) {
  if (x < 0)
    snprintf(buf, 48, "(%.3g)", x);
  else
    snprintf(buf, 48, "%.3g", x);
  return buf;
}

/* v with |elements| <= B (tanh, or a constant scale). */
static Val bounded(Gen *G, Val v, double B) {
  double m = mag(&v);
  if (m <= B)
    return v;
  char b[48];
  char *e;
  double s;
  if (m < 1e4 && rng_chance(&G->r, 0.5)) {
    s = B / m;
    s = floor(s * 1000 / pow(10, floor(log10(s)))) / 1000 * pow(10, floor(log10(s)));
    e = rg_fmt("(%s * %s)", v.e, num(s, b));
    Val r = same(&v, e, v.lo * s, v.hi * s);
    free(v.e);
    return r;
  }
  s = B >= 1 ? 1 : B;
  e = s == 1 ? rg_fmt("tanh(%s)", v.e) : rg_fmt("(tanh(%s) * %s)", v.e, num(s, b));
  Val r = same(&v, e, tanh(fmax(v.lo, -20)) * s, tanh(fmin(v.hi, 20)) * s);
  free(v.e);
  return r;
}

/* v with elements >= about m > 0 */
static Val positive(Gen *G, Val v) {
  if (v.lo >= 0.1 && v.hi < 1e4)
    return v;
  char *e;
  Val r;
  switch (rng_int(&G->r, 5)) {
  case 0:
    v = bounded(G, v, 30);
    e = rg_fmt("(%s * %s + 0.5)", v.e, v.e);
    {
      double m = mag(&v);
      double lo = (v.lo <= 0 && v.hi >= 0) ? 0 : fmin(v.lo * v.lo, v.hi * v.hi);
      r = same(&v, e, lo + 0.5, m * m + 0.5);
    }
    break;
  case 1:
    v = bounded(G, v, 1000);
    e = rg_fmt("(abs(%s) + 0.25)", v.e);
    r = same(&v, e, 0.25, mag(&v) + 0.25);
    break;
  case 2:
    e = rg_fmt("(sigmoid(%s) + 0.2)", v.e);
    r = same(&v, e, 0.2, 1.2);
    break;
  case 3:
    v = bounded(G, v, 1000);
    e = rg_fmt("(softplus(%s) + 0.1)", v.e);
    r = same(&v, e, 0.1, log1p(exp(fmin(v.hi, 700))) + 0.1);
    break;
  default:
    e = rg_fmt("exp(tanh(%s))", v.e);
    r = same(&v, e, exp(-1), exp(1));
    break;
  }
  free(v.e);
  return r;
}

static int bcast(int ra, const int64_t *a, int rb, const int64_t *b, int *rr,
                 int64_t *r) {
  int n = ra > rb ? ra : rb;
  for (int i = 0; i < n; i++) {
    int64_t x = i < n - ra ? 1 : a[i - (n - ra)];
    int64_t y = i < n - rb ? 1 : b[i - (n - rb)];
    if (x != y && x != 1 && y != 1)
      return 0;
    r[i] = x > y ? x : y;
  }
  *rr = n;
  return n <= RG_MAX_RANK;
}

/* A value that broadcasts with shape (rank, d). */
static Val partner(Gen *G, int rank, const int64_t *d) {
  double u = rng_unit(&G->r);
  char b[48];
  if (u < 0.12) {
    static const double cs[] = {0.5, 2, -1, 1.5, 0.25, 3, -0.75, 1};
    double c = cs[rng_int(&G->r, 8)];
    return tmp(strdup(num(c, b)), 0, NULL, c, c, NULL, NULL, NULL);
  }
  int64_t s[RG_MAX_RANK];
  int r = rank;
  memcpy(s, d, sizeof s);
  if (u < 0.2) { /* a constant tensor */
    for (int i = 0; i < r; i++)
      if (rng_chance(&G->r, 0.3))
        s[i] = 1;
    char ds[128];
    dims_str(ds, sizeof ds, r, s);
    double c = 0.5 + rng_int(&G->r, 4) * 0.25;
    int k = rng_int(&G->r, 3);
    char *e = k == 0 ? rg_fmt("ones(%s)", ds)
            : k == 1 ? rg_fmt("zeros(%s)", ds) : rg_fmt("full(%s, %s)", ds, num(c, b));
    double v = k == 0 ? 1 : k == 1 ? 0 : c;
    return tmp(e, r, s, v, v, NULL, NULL, NULL);
  }
  if (u < 0.55) { /* an existing value */
    int cand[MAXV], nc = 0;
    for (int i = 0; i < G->n; i++) {
      int rr;
      int64_t o[RG_MAX_RANK + 8];
      if (bcast(rank, d, G->pool[i].rank, G->pool[i].d, &rr, o) &&
          numel(rr, o) <= G->o->max_elems)
        cand[nc++] = i;
    }
    if (nc)
      return use(&G->pool[cand[rng_int(&G->r, nc)]]);
  }
  /* a new leaf of a derived shape: leading dims dropped or added, dims 1 */
  if (r && rng_chance(&G->r, 0.3)) {
    int drop = 1 + rng_int(&G->r, r);
    memmove(s, s + drop, (size_t)(r - drop) * sizeof *s);
    r -= drop;
  }
  for (int i = 0; i < r; i++)
    if (rng_chance(&G->r, 0.25))
      s[i] = 1;
  if (r < RG_MAX_RANK && rng_chance(&G->r, 0.12)) {
    memmove(s + 1, s, (size_t)r * sizeof *s);
    s[0] = 1 + rng_int(&G->r, 4);
    r++;
    int rr;
    int64_t o[RG_MAX_RANK + 8];
    if (!bcast(rank, d, r, s, &rr, o) || numel(rr, o) > G->o->max_elems)
      s[0] = 1;
  }
  return use(rand_leaf(G, r, s));
}

static Val binop(Gen *G, Val a, Val b, const char *op, double lo, double hi) {
  (void)G;
  int rr;
  int64_t o[RG_MAX_RANK + 8];
  if (!bcast(a.rank, a.d, b.rank, b.d, &rr, o))
    abort(); /* partner() guarantees it */
  int infix = !(op[0] >= 'a' && op[0] <= 'z');
  char *e = infix ? rg_fmt("(%s %s %s)", a.e, op, b.e)
                            : rg_fmt("%s(%s, %s)", op, a.e, b.e);
  Val r = tmp(e, rr, o, lo, hi, &a, &b, NULL);
  free(a.e);
  free(b.e);
  return r;
}

static Val unary(Gen *G, Val a) {
  static const char *const fns[] = {
      "exp", "log", "sin", "cos", "tan", "tanh", "sigmoid", "relu", "abs",
      "sqrt", "rsqrt", "square", "log1p", "expm1", "softplus", "sign", "erf",
      "gelu", "neg", "detach"};
  int k = rng_int(&G->r, (int)(sizeof fns / sizeof fns[0]));
  const char *f = fns[k];
  /* A gradient is often exactly 0 in exact arithmetic (by symmetry) and
     +-1e-17 in f64: its sign is rounding noise. */
  if (!strcmp(f, "sign") && a.hasgrad)
    f = "tanh";
  double lo, hi;
  if (!strcmp(f, "exp") || !strcmp(f, "expm1")) {
    a = bounded(G, a, 4);
    lo = exp(a.lo) - (f[3] == 'm'), hi = exp(a.hi) - (f[3] == 'm');
  } else if (!strcmp(f, "log") || !strcmp(f, "sqrt") || !strcmp(f, "rsqrt") ||
             !strcmp(f, "log1p")) {
    a = positive(G, a);
    if (f[0] == 'l' && f[3] == 0)
      lo = log(a.lo), hi = log(a.hi);
    else if (f[0] == 'l')
      lo = log1p(a.lo), hi = log1p(a.hi);
    else if (f[0] == 's')
      lo = sqrt(a.lo), hi = sqrt(a.hi);
    else
      lo = 1 / sqrt(a.hi), hi = 1 / sqrt(a.lo);
  } else if (!strcmp(f, "sin") || !strcmp(f, "cos")) {
    a = bounded(G, a, 20);
    lo = -1, hi = 1;
  } else if (!strcmp(f, "tan")) {
    a = bounded(G, a, 1.2);
    lo = tan(a.lo), hi = tan(a.hi);
  } else if (!strcmp(f, "tanh") || !strcmp(f, "erf") || !strcmp(f, "sigmoid")) {
    lo = f[0] == 's' ? 1 / (1 + exp(-fmax(a.lo, -700))) : f[0] == 't' ? tanh(a.lo) : erf(a.lo);
    hi = f[0] == 's' ? 1 / (1 + exp(-fmax(a.hi, -700))) : f[0] == 't' ? tanh(a.hi) : erf(a.hi);
  } else if (!strcmp(f, "relu")) {
    lo = fmax(a.lo, 0), hi = fmax(a.hi, 0);
  } else if (!strcmp(f, "abs")) {
    lo = (a.lo <= 0 && a.hi >= 0) ? 0 : fmin(fabs(a.lo), fabs(a.hi)), hi = mag(&a);
  } else if (!strcmp(f, "square")) {
    a = bounded(G, a, 100);
    lo = (a.lo <= 0 && a.hi >= 0) ? 0 : fmin(a.lo * a.lo, a.hi * a.hi);
    hi = mag(&a) * mag(&a);
  } else if (!strcmp(f, "softplus")) {
    lo = log1p(exp(fmin(a.lo, 700))), hi = fmax(a.hi, 0) + log(2);
  } else if (!strcmp(f, "sign")) {
    lo = -1, hi = 1;
  } else if (!strcmp(f, "gelu")) {
    lo = -0.2, hi = fmax(a.hi, 0);
  } else if (!strcmp(f, "neg")) {
    char *e = rg_fmt("(-%s)", a.e);
    Val r = same(&a, e, -a.hi, -a.lo);
    free(a.e);
    return r;
  } else { /* detach: no gradient through it, so no FD check if a param is behind */
    if (a.pdep) {
      if (!rng_chance(&G->r, 0.15)) {
        char *e = rg_fmt("tanh(%s)", a.e);
        Val r = same(&a, e, tanh(fmax(a.lo, -20)), tanh(fmin(a.hi, 20)));
        free(a.e);
        return r;
      }
      G->g->nofd = 1;
    }
    lo = a.lo, hi = a.hi;
  }
  char *e = rg_fmt("%s(%s)", f, a.e);
  Val r = same(&a, e, lo, hi);
  if (!strcmp(f, "detach"))
    r.pdep = 0, memset(r.anc, 0, sizeof r.anc);
  free(a.e);
  return r;
}

static void iv_mul(double al, double ah, double bl, double bh, double *lo, double *hi) {
  double c[4] = {al * bl, al * bh, ah * bl, ah * bh};
  *lo = *hi = c[0];
  for (int i = 1; i < 4; i++)
    *lo = fmin(*lo, c[i]), *hi = fmax(*hi, c[i]);
}

static Val arith(Gen *G, Val a) {
  int k = rng_int(&G->r, 4);
  Val b = partner(G, a.rank, a.d);
  if (rng_chance(&G->r, 0.3)) { /* operands swapped: the partner broadcasts */
    Val t = a;
    a = b;
    b = t;
  }
  double lo, hi;
  switch (k) {
  case 0:
    return binop(G, a, b, "+", a.lo + b.lo, a.hi + b.hi);
  case 1:
    return binop(G, a, b, "-", a.lo - b.hi, a.hi - b.lo);
  case 2:
    a = bounded(G, a, 100);
    b = bounded(G, b, 100);
    iv_mul(a.lo, a.hi, b.lo, b.hi, &lo, &hi);
    return binop(G, a, b, "*", lo, hi);
  default:
    a = bounded(G, a, 100);
    b = positive(G, b);
    if (rng_chance(&G->r, 0.3)) {
      char *e = rg_fmt("(-%s)", b.e);
      double l = -b.hi, h = -b.lo;
      free(b.e);
      b.e = e, b.lo = l, b.hi = h;
    }
    iv_mul(a.lo, a.hi, fmin(1 / b.lo, 1 / b.hi), fmax(1 / b.lo, 1 / b.hi), &lo, &hi);
    return binop(G, a, b, "/", lo, hi);
  }
}

static Val power(Gen *G, Val a) {
  char b[48];
  double lo, hi;
  if (rng_chance(&G->r, 0.35)) { /* integer power of any sign */
    int n = 2 + rng_int(&G->r, 2);
    a = bounded(G, a, 10);
    double m = pow(mag(&a), n);
    char *e = rg_fmt("(%s ** %d)", a.e, n);
    Val r = same(&a, e, n == 2 ? 0 : -m, m);
    free(a.e);
    return r;
  }
  a = bounded(G, a, 5);
  a = positive(G, a);
  if (rng_chance(&G->r, 0.6)) {
    static const double ex[] = {0.5, 1.5, -1, -0.5, 2, 2.5, 0};
    double c = ex[rng_int(&G->r, 7)];
    char *e = rng_chance(&G->r, 0.5) ? rg_fmt("(%s ** %s)", a.e, num(c, b))
                                     : rg_fmt("pow(%s, %s)", a.e, num(c, b));
    double x = pow(a.lo, c), y = pow(a.hi, c);
    Val r = same(&a, e, fmin(x, y), fmax(x, y));
    free(a.e);
    return r;
  }
  Val ex = partner(G, a.rank, a.d);
  ex = bounded(G, ex, 2);
  double c[4] = {pow(a.lo, ex.lo), pow(a.lo, ex.hi), pow(a.hi, ex.lo), pow(a.hi, ex.hi)};
  lo = hi = c[0];
  for (int i = 1; i < 4; i++)
    lo = fmin(lo, c[i]), hi = fmax(hi, c[i]);
  return binop(G, a, ex, rng_chance(&G->r, 0.5) ? "pow" : "**", lo, hi);
}

static const char *const cmps[] = {"<", "<=", ">", ">=", "==", "!="};

static Val select_op(Gen *G, Val a) {
  int k = rng_int(&G->r, 5);
  if ((k == 2 || k == 3) && a.hasgrad) /* no comparisons of rounding noise */
    k = rng_int(&G->r, 2);
  if (k == 0 || k == 1) { /* maximum, minimum */
    Val b = partner(G, a.rank, a.d);
    if (rng_chance(&G->r, 0.4)) {
      Val t = a;
      a = b;
      b = t;
    }
    return k == 0 ? binop(G, a, b, "maximum", fmax(a.lo, b.lo), fmax(a.hi, b.hi))
                  : binop(G, a, b, "minimum", fmin(a.lo, b.lo), fmin(a.hi, b.hi));
  }
  if (k == 2) { /* a comparison: 0/1, no gradient */
    Val b = partner(G, a.rank, a.d);
    return binop(G, a, b, cmps[rng_int(&G->r, 6)], 0, 1);
  }
  if (k == 3) { /* where(a OP c, a, b) */
    Val c = partner(G, a.rank, a.d);
    Val a2 = a;
    a2.e = strdup(a.e);
    Val cond = binop(G, a2, c, cmps[rng_int(&G->r, 4)], 0, 1);
    int rr;
    int64_t o[RG_MAX_RANK + 8];
    Val b = partner(G, cond.rank, cond.d);
    if (!bcast(cond.rank, cond.d, b.rank, b.d, &rr, o) ||
        !bcast(rr, o, a.rank, a.d, &rr, o))
      abort();
    char *e = rng_chance(&G->r, 0.5) ? rg_fmt("where(%s, %s, %s)", cond.e, a.e, b.e)
                                     : rg_fmt("where(%s, %s, %s)", cond.e, b.e, a.e);
    Val r = tmp(e, rr, o, fmin(a.lo, b.lo), fmax(a.hi, b.hi), &cond, &a, &b);
    free(a.e), free(b.e), free(cond.e);
    return r;
  }
  /* clamp(x, lo, hi): constants, or a tensor lower bound */
  char b1[48], b2[48];
  double l = -0.5 - rng_int(&G->r, 3) * 0.25, h = 0.25 + rng_int(&G->r, 4) * 0.25;
  if (rng_chance(&G->r, 0.3)) {
    Val lo = partner(G, a.rank, a.d);
    lo = bounded(G, lo, 0.5);
    lo.lo -= 0.5, lo.hi -= 0.5;
    char *le = rg_fmt("(%s - 0.5)", lo.e);
    free(lo.e);
    lo.e = le;
    int rr;
    int64_t o[RG_MAX_RANK + 8];
    bcast(a.rank, a.d, lo.rank, lo.d, &rr, o);
    char *e = rg_fmt("clamp(%s, %s, %s)", a.e, lo.e, num(h, b2));
    Val r = tmp(e, rr, o, fmax(fmin(a.lo, h), lo.lo), fmin(fmax(a.hi, lo.hi), h), &a, &lo, NULL);
    if (r.lo > r.hi)
      r.lo = lo.lo, r.hi = h;
    free(a.e), free(lo.e);
    return r;
  }
  char *e = rg_fmt("clamp(%s, %s, %s)", a.e, num(l, b1), num(h, b2));
  Val r = same(&a, e, fmin(fmax(a.lo, l), h), fmax(fmin(a.hi, h), l));
  free(a.e);
  return r;
}

static Val reduce(Gen *G, Val a) {
  static const char *const fns[] = {"sum", "mean", "max", "min", "prod", "logsumexp"};
  const char *f = fns[rng_int(&G->r, 6)];
  unsigned mask = 0;
  char ax[64] = "";
  int keep = rng_chance(&G->r, 0.4);
  if (a.rank == 0 || rng_chance(&G->r, 0.3)) {
    mask = a.rank ? (1u << a.rank) - 1 : 0;
    keep = keep && a.rank;
    if (keep)
      snprintf(ax, sizeof ax, ", keepdim=true");
  } else if (a.rank >= 2 && rng_chance(&G->r, 0.3)) {
    int x = rng_int(&G->r, a.rank), y = (x + 1 + rng_int(&G->r, a.rank - 1)) % a.rank;
    mask = (1u << x) | (1u << y);
    snprintf(ax, sizeof ax, ", axis=[%d, %d]%s", x, y - (rng_chance(&G->r, 0.3) ? a.rank : 0),
             keep ? ", keepdim=true" : "");
  } else {
    int x = rng_int(&G->r, a.rank);
    mask = 1u << x;
    snprintf(ax, sizeof ax, ", axis=%d%s", rng_chance(&G->r, 0.3) ? x - a.rank : x,
             keep ? ", keepdim=true" : "");
  }
  int64_t cnt = 1, d[RG_MAX_RANK];
  int r = 0;
  for (int i = 0; i < a.rank; i++) {
    if (mask & (1u << i)) {
      cnt *= a.d[i];
      if (keep)
        d[r++] = 1;
    } else {
      d[r++] = a.d[i];
    }
  }
  double lo = a.lo, hi = a.hi;
  if (!strcmp(f, "prod")) {
    if (cnt > 8) {
      f = "mean";
    } else {
      char *e = rg_fmt("(sigmoid(%s) + 0.5)", a.e);
      free(a.e);
      a.e = e;
      lo = pow(0.5, (double)cnt), hi = pow(1.5, (double)cnt);
    }
  }
  int lim = !strcmp(f, "prod") ? 2 : 9;
  if (!strcmp(f, "sum"))
    lo = a.lo * (double)cnt, hi = a.hi * (double)cnt;
  if (!strcmp(f, "logsumexp"))
    hi = a.hi + log((double)cnt);
  char *e = ax[0] ? rg_fmt("%s(%s%s)", f, a.e, ax) : rg_fmt("%s(%s)", f, a.e);
  Val v = tmp(e, r, d, lo, hi, &a, NULL, NULL);
  if (lim < v.lim)
    v.lim = lim;
  free(a.e);
  return v;
}

static Val normalize(Gen *G, Val a) {
  if (a.rank == 0)
    return reduce(G, a);
  int lsm = rng_chance(&G->r, 0.5);
  int x = rng_int(&G->r, a.rank);
  a = bounded(G, a, 1000);
  double width = a.hi - a.lo;
  char *e = rng_chance(&G->r, 0.3)
                ? rg_fmt("%s(%s)", lsm ? "log_softmax" : "softmax", a.e)
                : rg_fmt("%s(%s, axis=%d)", lsm ? "log_softmax" : "softmax", a.e,
                      rng_chance(&G->r, 0.5) ? x : x - a.rank);
  Val v = same(&a, e, lsm ? -width - log(64.0) - 1 : 0, lsm ? 0 : 1);
  free(a.e);
  return v;
}

/* a leaf of the given shape, or an existing value of exactly that shape */
static Val of_shape(Gen *G, int rank, const int64_t *d) {
  int cand[MAXV], nc = 0;
  for (int i = 0; i < G->n; i++)
    if (G->pool[i].rank == rank && !memcmp(G->pool[i].d, d, (size_t)rank * sizeof *d))
      cand[nc++] = i;
  if (nc && rng_chance(&G->r, 0.4))
    return use(&G->pool[cand[rng_int(&G->r, nc)]]);
  return use(rand_leaf(G, rank, d));
}

static Val matmul(Gen *G, Val a) {
  int64_t M, K, N, B = 1, d[RG_MAX_RANK];
  int form = rng_int(&G->r, 6);
  char *e;
  Val b;
  if (a.rank == 1)
    form = rng_chance(&G->r, 0.5) ? 1 : 2;
  else if (a.rank == 3)
    form = 5;
  else if (a.rank == 2)
    form = form >= 4 ? 5 : 0; /* 5: a new [B, M, K] leaf */
  else
    form = 0;
  if (a.rank == 0 || a.rank > 3 || (form == 0 && a.rank != 2)) {
    free(a.e);
    int64_t s[2] = {rand_dim(G), rand_dim(G)};
    fit(G, 2, s);
    a = use(rand_leaf(G, 2, s));
  }
  a = bounded(G, a, 3);
  double m = mag(&a);
  int trans = 0;
  switch (form) {
  case 0: /* [M,K] @ [K,N], maybe as b.T */
  case 3:
    M = a.d[0], K = a.d[1], N = rand_dim(G);
    while (M * N * K > 300000 || M * N > G->o->max_elems)
      N = (N + 1) / 2;
    trans = rng_chance(&G->r, 0.25);
    d[0] = trans ? N : K, d[1] = trans ? K : N;
    b = of_shape(G, 2, d);
    if (trans)
      d[0] = K, d[1] = N; /* b.T's shape, for the bound */
    b = bounded(G, b, 3);
    e = rg_fmt("(%s @ %s%s)", a.e, b.e, trans ? ".T" : "");
    d[0] = M, d[1] = N;
    {
      Val r = tmp(e, 2, d, -(double)K * m * mag(&b), (double)K * m * mag(&b), &a, &b, NULL);
      free(a.e), free(b.e);
      return r;
    }
  case 1: /* [K] @ [K,N], or [K] @ [K] */
  case 2: /* [M,K] @ [K] */
    K = a.d[0];
    if (rng_chance(&G->r, 0.25)) {
      b = of_shape(G, 1, &K);
      b = bounded(G, b, 3);
      e = rg_fmt("(%s @ %s)", a.e, b.e);
      Val r = tmp(e, 0, d, -(double)K * m * mag(&b), (double)K * m * mag(&b), &a, &b, NULL);
      free(a.e), free(b.e);
      return r;
    }
    N = rand_dim(G);
    if (form == 1)
      d[0] = K, d[1] = N;
    else
      d[0] = N, d[1] = K;
    b = of_shape(G, 2, d);
    b = bounded(G, b, 3);
    e = form == 1 ? rg_fmt("(%s @ %s)", a.e, b.e) : rg_fmt("(%s @ %s)", b.e, a.e);
    {
      Val r = tmp(e, 1, &N, -(double)K * m * mag(&b), (double)K * m * mag(&b), &a, &b, NULL);
      free(a.e), free(b.e);
      return r;
    }
  default: { /* batched: [B,M,K] @ [K,N] | [B,K,N] | [1,K,N]; 4-D broadcast */
    if (a.rank != 3) {
      free(a.e);
      int64_t s[3] = {1 + rng_int(&G->r, 4), rand_dim(G), rand_dim(G)};
      fit(G, 3, s);
      a = use(rand_leaf(G, 3, s));
      a = bounded(G, a, 3);
      m = mag(&a);
    }
    B = a.d[0], M = a.d[1], K = a.d[2], N = rand_dim(G);
    while (B * M * N * K > 300000 || B * M * N > G->o->max_elems)
      N = (N + 1) / 2;
    int k = rng_int(&G->r, 4);
    int rb = k == 0 ? 2 : k == 3 ? 4 : 3;
    int64_t bd[4];
    if (k == 0)
      bd[0] = K, bd[1] = N;
    else if (k == 3)
      bd[0] = 1 + rng_int(&G->r, 3), bd[1] = 1, bd[2] = K, bd[3] = N;
    else
      bd[0] = k == 1 ? B : 1, bd[1] = K, bd[2] = N;
    b = of_shape(G, rb, bd);
    b = bounded(G, b, 3);
    e = rg_fmt("(%s @ %s)", a.e, b.e);
    int ro = k == 3 ? 4 : 3;
    if (k == 3)
      d[0] = bd[0], d[1] = B, d[2] = M, d[3] = N;
    else
      d[0] = B, d[1] = M, d[2] = N;
    if (k == 3 && bd[0] * B * M * N > G->o->max_elems) { /* too big: plain */
      free(e);
      free(b.e);
      bd[0] = K, bd[1] = N;
      b = of_shape(G, 2, bd);
      b = bounded(G, b, 3);
      e = rg_fmt("(%s @ %s)", a.e, b.e);
      ro = 3, d[0] = B, d[1] = M, d[2] = N;
    }
    Val r = tmp(e, ro, d, -(double)K * m * mag(&b), (double)K * m * mag(&b), &a, &b, NULL);
    free(a.e), free(b.e);
    return r;
  }
  }
}

static void factor_shape(Gen *G, int64_t n, int *rank, int64_t *d) {
  int r = 1 + rng_int(&G->r, 4);
  for (int i = 0; i < r; i++)
    d[i] = 1;
  int64_t m = n;
  for (int64_t p = 2; m > 1;) {
    if (m % p == 0) {
      d[rng_int(&G->r, r)] *= p;
      m /= p;
    } else {
      p++;
      if (p * p > m)
        p = m;
    }
  }
  *rank = r;
}

static Val shape_op(Gen *G, Val a) {
  int k = rng_int(&G->r, 8);
  char ds[128];
  int64_t d[RG_MAX_RANK + 1];
  char *e;
  if (a.rank == 0 && k != 0 && k != 5 && k != 7)
    k = 5;
  if (a.rank < 2 && (k == 1 || k == 2))
    k = 3;
  switch (k) {
  case 0: { /* reshape, maybe with -1 */
    int r;
    factor_shape(G, numel(a.rank, a.d), &r, d);
    char txt[128];
    int neg = rng_chance(&G->r, 0.3) ? rng_int(&G->r, r) : -1;
    size_t o = (size_t)snprintf(txt, sizeof txt, "[");
    for (int i = 0; i < r; i++)
      o += (size_t)snprintf(txt + o, sizeof txt - o, "%s%lld", i ? ", " : "",
                            i == neg ? -1LL : (long long)d[i]);
    snprintf(txt + o, sizeof txt - o, "]");
    e = rg_fmt("reshape(%s, %s)", a.e, txt);
    Val v = tmp(e, r, d, a.lo, a.hi, &a, NULL, NULL);
    free(a.e);
    return v;
  }
  case 1: { /* transpose(x, i, j) */
    int i = rng_int(&G->r, a.rank), j = (i + 1 + rng_int(&G->r, a.rank - 1)) % a.rank;
    memcpy(d, a.d, sizeof a.d);
    d[i] = a.d[j], d[j] = a.d[i];
    e = rg_fmt("transpose(%s, %d, %d)", a.e, i, rng_chance(&G->r, 0.3) ? j - a.rank : j);
    Val v = tmp(e, a.rank, d, a.lo, a.hi, &a, NULL, NULL);
    free(a.e);
    return v;
  }
  case 2: /* .T */
    if (a.rank == 2) {
      d[0] = a.d[1], d[1] = a.d[0];
      e = rg_fmt("%s.T", a.e);
      Val v = tmp(e, 2, d, a.lo, a.hi, &a, NULL, NULL);
      free(a.e);
      return v;
    }
    /* fall through */
  case 3: { /* slice / index */
    char txt[256];
    size_t o = 0;
    int r = 0;
    txt[0] = 0;
    int nd = 1 + rng_int(&G->r, a.rank);
    for (int i = 0; i < nd; i++) {
      int64_t n = a.d[i];
      double u = rng_unit(&G->r);
      if (u < 0.3) {
        o += (size_t)snprintf(txt + o, sizeof txt - o, "%s:", i ? ", " : "");
        d[r++] = n;
      } else if (u < 0.8 || n == 1) {
        int64_t lo = rng_int(&G->r, (int)n), hi = lo + 1 + rng_int(&G->r, (int)(n - lo));
        int nlo = rng_chance(&G->r, 0.2), nhi = rng_chance(&G->r, 0.2) && hi < n;
        char a1[32] = "", a2[32] = "";
        if (lo || nlo)
          snprintf(a1, sizeof a1, "%lld", (long long)(nlo ? lo - n : lo));
        if (hi < n || rng_chance(&G->r, 0.2))
          snprintf(a2, sizeof a2, "%lld", (long long)(nhi ? hi - n : hi));
        o += (size_t)snprintf(txt + o, sizeof txt - o, "%s%s:%s", i ? ", " : "", a1, a2);
        d[r++] = hi - lo;
      } else {
        int64_t ix = rng_int(&G->r, (int)n);
        o += (size_t)snprintf(txt + o, sizeof txt - o, "%s%lld", i ? ", " : "",
                              (long long)(rng_chance(&G->r, 0.3) ? ix - n : ix));
      }
    }
    for (int i = nd; i < a.rank; i++)
      d[r++] = a.d[i];
    e = rg_fmt("%s[%s]", a.e, txt);
    Val v = tmp(e, r, d, a.lo, a.hi, &a, NULL, NULL);
    free(a.e);
    return v;
  }
  case 4: { /* concat along an axis */
    int ax = rng_int(&G->r, a.rank);
    int np = 1 + rng_int(&G->r, 2);
    char *txt = strdup(a.e);
    memcpy(d, a.d, sizeof a.d);
    Val parts[3];
    double lo = a.lo, hi = a.hi;
    for (int i = 0; i < np; i++) {
      int64_t s[RG_MAX_RANK];
      memcpy(s, a.d, sizeof s);
      if (rng_chance(&G->r, 0.3)) {
        parts[i] = a; /* the same value twice */
        parts[i].e = strdup(a.e);
      } else {
        s[ax] = 1 + rng_int(&G->r, 4);
        parts[i] = of_shape(G, a.rank, s);
      }
      if (numel(a.rank, d) + numel(a.rank, parts[i].d) > G->o->max_elems) {
        free(parts[i].e);
        np = i;
        break;
      }
      d[ax] += parts[i].d[ax];
      char *t = rg_fmt("%s, %s", txt, parts[i].e);
      free(txt);
      txt = t;
      lo = fmin(lo, parts[i].lo), hi = fmax(hi, parts[i].hi);
    }
    if (np == 0) {
      free(txt);
      return a;
    }
    e = ax == 0 && rng_chance(&G->r, 0.3)
            ? rg_fmt("concat([%s])", txt)
            : rg_fmt("concat([%s], axis=%d)", txt, rng_chance(&G->r, 0.3) ? ax - a.rank : ax);
    free(txt);
    Val v = tmp(e, a.rank, d, lo, hi, &a, np > 0 ? &parts[0] : NULL, np > 1 ? &parts[1] : NULL);
    free(a.e);
    for (int i = 0; i < np; i++)
      free(parts[i].e);
    return v;
  }
  case 5: { /* unsqueeze */
    if (a.rank >= RG_MAX_RANK)
      return a;
    int ax = rng_int(&G->r, a.rank + 1);
    for (int i = 0, j = 0; i <= a.rank; i++)
      d[i] = i == ax ? 1 : a.d[j++];
    e = rg_fmt("unsqueeze(%s, %d)", a.e, rng_chance(&G->r, 0.3) ? ax - a.rank - 1 : ax);
    Val v = tmp(e, a.rank + 1, d, a.lo, a.hi, &a, NULL, NULL);
    free(a.e);
    return v;
  }
  case 6: { /* squeeze a size-1 axis */
    int ax = -1;
    for (int i = 0; i < a.rank; i++)
      if (a.d[i] == 1 && (ax < 0 || rng_chance(&G->r, 0.5)))
        ax = i;
    if (ax < 0)
      return a;
    int r = 0;
    for (int i = 0; i < a.rank; i++)
      if (i != ax)
        d[r++] = a.d[i];
    e = rg_fmt("squeeze(%s, %d)", a.e, ax);
    Val v = tmp(e, r, d, a.lo, a.hi, &a, NULL, NULL);
    free(a.e);
    return v;
  }
  default: { /* broadcast_to: size-1 dims expanded, maybe a new leading dim */
    int r = a.rank;
    memcpy(d, a.d, sizeof a.d);
    for (int i = 0; i < r; i++)
      if (d[i] == 1 && rng_chance(&G->r, 0.7))
        d[i] = 1 + rng_int(&G->r, 6);
    if (r < RG_MAX_RANK && rng_chance(&G->r, 0.5)) {
      memmove(d + 1, d, (size_t)r * sizeof *d);
      d[0] = 1 + rng_int(&G->r, 4);
      r++;
    }
    if (numel(r, d) > G->o->max_elems)
      return a;
    dims_str(ds, sizeof ds, r, d);
    e = rg_fmt("broadcast_to(%s, %s)", a.e, ds);
    Val v = tmp(e, r, d, a.lo, a.hi, &a, NULL, NULL);
    free(a.e);
    return v;
  }
  }
}

static Val network(Gen *G, Val a) {
  int64_t d[4];
  if (a.rank != 4 || a.d[2] * a.d[3] < 1) {
    free(a.e);
    d[0] = 1 + rng_int(&G->r, 3), d[1] = 1 + rng_int(&G->r, 4);
    d[2] = 1 + rng_int(&G->r, rng_chance(&G->r, 0.15) ? 32 : 10);
    d[3] = 1 + rng_int(&G->r, rng_chance(&G->r, 0.15) ? 32 : 10);
    fit(G, 4, d);
    a = use(rand_leaf(G, 4, d));
  }
  int64_t N = a.d[0], C = a.d[1], H = a.d[2], W = a.d[3];
  char *e;
  if (rng_chance(&G->r, 0.6)) { /* conv2d */
    int pad = rng_chance(&G->r, 0.6) ? 0 : 1 + rng_int(&G->r, 2);
    int st = rng_chance(&G->r, 0.6) ? 1 : 2 + rng_int(&G->r, 2);
    int64_t O = 1 + rng_int(&G->r, 4);
    int64_t KH = 1 + rng_int(&G->r, (int)(H + 2 * pad < 5 ? H + 2 * pad : 5));
    int64_t KW = 1 + rng_int(&G->r, (int)(W + 2 * pad < 5 ? W + 2 * pad : 5));
    int64_t OH = (H + 2 * pad - KH) / st + 1, OW = (W + 2 * pad - KW) / st + 1;
    if (N * O * OH * OW > G->o->max_elems)
      O = 1;
    a = bounded(G, a, 3);
    int64_t wd[4] = {O, C, KH, KW};
    Val w = of_shape(G, 4, wd);
    w = bounded(G, w, 3);
    if (st == 1 && pad == 0 && rng_chance(&G->r, 0.3))
      e = rg_fmt("conv2d(%s, %s)", a.e, w.e);
    else if (pad == 0 && rng_chance(&G->r, 0.3))
      e = rg_fmt("conv2d(%s, %s, stride=%d)", a.e, w.e, st);
    else
      e = rg_fmt("conv2d(%s, %s, stride=%d, padding=%d)", a.e, w.e, st, pad);
    d[0] = N, d[1] = O, d[2] = OH, d[3] = OW;
    double K = (double)(C * KH * KW);
    Val r = tmp(e, 4, d, -K * mag(&a) * mag(&w), K * mag(&a) * mag(&w), &a, &w, NULL);
    free(a.e), free(w.e);
    return r;
  }
  int64_t m = H < W ? H : W;
  int k = 1 + rng_int(&G->r, (int)(m < 3 ? m : 3));
  int st = rng_chance(&G->r, 0.5) ? k : 1 + rng_int(&G->r, 2);
  int mx = rng_chance(&G->r, 0.5);
  e = st == k && rng_chance(&G->r, 0.5)
          ? rg_fmt("%s(%s, %d)", mx ? "max_pool2d" : "avg_pool2d", a.e, k)
          : rg_fmt("%s(%s, %d, stride=%d)", mx ? "max_pool2d" : "avg_pool2d", a.e, k, st);
  d[0] = N, d[1] = C, d[2] = (H - k) / st + 1, d[3] = (W - k) / st + 1;
  Val r = tmp(e, 4, d, a.lo, a.hi, &a, NULL, NULL);
  if (mx && r.lim > 1)
    r.lim = 1; /* no second derivative of max_pool2d */
  free(a.e);
  return r;
}

static Val loss_fn(Gen *G, Val a) {
  int k = rng_int(&G->r, 4);
  char *e;
  if (k == 0) { /* cross_entropy(logits[N, C], labels) */
    if (a.rank != 2) {
      free(a.e);
      int64_t s[2] = {rand_dim(G), 1 + rand_dim(G)};
      fit(G, 2, s);
      a = use(rand_leaf(G, 2, s));
    }
    a = bounded(G, a, 1000);
    Val y = int_leaf(G, 1, a.d, (int)a.d[1]);
    e = rg_fmt("cross_entropy(%s, %s)", a.e, y.e);
    Val r = tmp(e, 0, NULL, 0, a.hi - a.lo + log((double)a.d[1]) + 1, &a, NULL, NULL);
    free(a.e), free(y.e);
    return r;
  }
  if (k == 1 && a.rank >= 1) { /* embedding(table, idx) */
    int64_t V = 1 + rng_int(&G->r, 20), D = 1 + rng_int(&G->r, 16);
    int64_t td[2] = {V, D};
    Val t = of_shape(G, 2, td);
    int64_t id[3] = {1 + rng_int(&G->r, 8), 1 + rng_int(&G->r, 4), 0};
    int ir = 1 + rng_chance(&G->r, 0.4);
    Val ix = int_leaf(G, ir, id, (int)V);
    e = rg_fmt("embedding(%s, %s)", t.e, ix.e);
    id[ir] = D;
    Val r = tmp(e, ir + 1, id, t.lo, t.hi, &t, NULL, NULL);
    free(ix.e), free(t.e), free(a.e);
    return r;
  }
  a = bounded(G, a, 100);
  Val t = rng_chance(&G->r, 0.8) ? of_shape(G, a.rank, a.d) : partner(G, a.rank, a.d);
  if (k == 2) {
    t = bounded(G, t, 100);
    double m = mag(&a) + mag(&t);
    Val r = binop(G, a, t, "mse_loss", 0, m * m);
    r.rank = 0;
    return r;
  }
  t = bounded(G, t, 1);
  if (t.lo < 0) {
    char *s = rg_fmt("sigmoid(%s)", t.e);
    free(t.e);
    t.e = s, t.lo = 0, t.hi = 1;
  }
  double m = mag(&a);
  Val r = binop(G, a, t, "bce_with_logits", 0, m * 2 + 1);
  r.rank = 0;
  return r;
}

/* grad(y, x) of a named scalar y with respect to a named value y depends
 * on; or grad(y, x, v) with a seed. Sometimes a second one on top. */
static Val gradient(Gen *G, Val a) {
  free(a.e);
  if (G->maxord + 1 > RG_MAX_ORDER - 1)
    return pick_use(G);
  for (int tries = 0; tries < 8; tries++) {
    Val *y = pick(G);
    if (!y || (y->rank > 0 && rng_chance(&G->r, 0.6)) || y->lim < 1)
      continue;
    int cand[MAXV], nc = 0;
    for (int i = 0; i < G->n; i++)
      if ((y->anc[i / 8] >> (i % 8) & 1) && G->pool[i].grad_ok && &G->pool[i] != y)
        cand[nc++] = i;
    if (!nc)
      continue;
    Val *x = &G->pool[cand[rng_int(&G->r, nc)]];
    Val yy = use(y), xx = use(x);
    char *e;
    Val seed = {0};
    int has_seed = 0;
    if (y->rank > 0 || (y->rank == 0 && rng_chance(&G->r, 0.1))) {
      seed = of_shape(G, y->rank, y->d);
      seed = bounded(G, seed, 10);
      has_seed = 1;
      e = rg_fmt("grad(%s, %s, %s)", yy.e, xx.e, seed.e);
    } else {
      e = rg_fmt("grad(%s, %s)", yy.e, xx.e);
    }
    Val g = tmp(e, x->rank, x->d, -1e3, 1e3, &yy, &xx, has_seed ? &seed : NULL);
    g.hasgrad = 1;
    if (y->lim - 1 < g.lim)
      g.lim = y->lim - 1;
    G->maxord++;
    free(yy.e), free(xx.e);
    if (has_seed)
      free(seed.e);
    if (!rng_chance(&G->r, 0.5))
      return g;
    if (G->maxord + 1 > RG_MAX_ORDER - 1)
      return g;
    /* grad of grad: a Hessian-vector product or the gradient of a penalty */
    Val *gn = stmt(G, g);
    if (!gn)
      return pick_use(G);
    if (gn->lim < 1)
      return pick_use(G);
    Val gg = use(gn);
    gg = bounded(G, gg, 100);
    Val w = rng_chance(&G->r, 0.5) ? of_shape(G, gn->rank, gn->d) : use(gn);
    w = bounded(G, w, 100);
    if (w.lim < 1) { /* y = sum(gg * w) is differentiated through w too */
      free(w.e);
      w = bounded(G, use(gn), 100);
    }
    int nc2 = 0;
    for (int i = 0; i < G->n; i++)
      if ((gn->anc[i / 8] >> (i % 8) & 1) && G->pool[i].grad_ok && i != gn - G->pool)
        cand[nc2++] = i;
    Val *x2 = nc2 ? &G->pool[cand[rng_int(&G->r, nc2)]] : x;
    Val xx2 = use(x2);
    e = rg_fmt("grad(sum(%s * %s), %s)", gg.e, w.e, xx2.e);
    Val h = tmp(e, x2->rank, x2->d, -1e3, 1e3, &gg, &w, &xx2);
    h.hasgrad = 1;
    h.lim--; /* y = sum(gg * w): w is differentiated too (w = a value with
                a max_pool2d or prod behind it) */
    if (gn->lim - 1 < h.lim)
      h.lim = gn->lim - 1;
    G->maxord++;
    free(gg.e), free(w.e), free(xx2.e);
    return h;
  }
  return pick_use(G);
}

/* One operation on a (or a picked value). */
static Val op(Gen *G, Val a) {
  double u = rng_unit(&G->r);
  if (u < 0.22)
    return unary(G, a);
  if (u < 0.40)
    return arith(G, a);
  if (u < 0.45)
    return power(G, a);
  if (u < 0.53)
    return select_op(G, a);
  if (u < 0.62)
    return reduce(G, a);
  if (u < 0.66)
    return normalize(G, a);
  if (u < 0.74)
    return matmul(G, a);
  if (u < 0.84)
    return shape_op(G, a);
  if (u < 0.88)
    return network(G, a);
  if (u < 0.92)
    return loss_fn(G, a);
  return gradient(G, a);
}

/* a scalar term of the loss from value v */
static char *term(Gen *G, Val *v) {
  Val a = use(v);
  a = bounded(G, a, 100);
  char *e;
  static const double cs[] = {1, 0.5, 0.1, 2, -1, 0.25};
  char b[48];
  switch (rng_int(&G->r, 5)) {
  case 0:
    e = rg_fmt("sum(%s)", a.e);
    break;
  case 1:
    e = rg_fmt("mean(%s)", a.e);
    break;
  case 2:
    e = rg_fmt("sum(%s * %s)", a.e, a.e);
    break;
  case 3:
    e = rg_fmt("%s * mean(%s ** 2)", num(cs[rng_int(&G->r, 6)], b), a.e);
    break;
  default:
    e = rg_fmt("%s * sum(%s)", num(cs[rng_int(&G->r, 6)], b), a.e);
    break;
  }
  free(a.e);
  return e;
}

/* is name in the list "a, b, c"? */
static int listed(const char *list, const char *name) {
  char pat[RG_NAME + 4], chk[1100];
  snprintf(pat, sizeof pat, " %s,", name);
  snprintf(chk, sizeof chk, " %s,", list);
  return strstr(chk, pat) != NULL;
}

/* ---- training steps --------------------------------------------------- */

/* A scalar input holding a hyperparameter (filled with exactly v),
   declared first. */
static void hyper_input(RGraph *g, const char *name, double v) {
  add_line(g, RL_INPUT, name);
  RLine l = g->l[g->n - 1];
  memmove(g->l + 1, g->l, (size_t)(g->n - 1) * sizeof *g->l);
  l.rank = 0;
  l.lo = l.hi = v;
  g->l[0] = l;
}

/* an argument: the number, or (probability p) a new scalar input h_NAME */
static void opt_arg(RGraph *g, Rng *r, char *buf, size_t n, const char *name,
                    double v, double p) {
  size_t k = strlen(buf);
  if (rng_chance(r, p)) {
    char in[RG_NAME];
    snprintf(in, sizeof in, "h_%s", name);
    hyper_input(g, in, v);
    snprintf(buf + k, n - k, "%s%s=%s", buf[k - 1] == '(' ? "" : ", ", name, in);
  } else {
    snprintf(buf + k, n - k, "%s%s=%.17g", buf[k - 1] == '(' ? "" : ", ", name, v);
  }
}

#define PICK(r, ...)                                                          \
  ({                                                                          \
    static const double v_[] = {__VA_ARGS__};                                 \
    v_[rng_int(r, (int)(sizeof v_ / sizeof v_[0]))];                          \
  })

/* `clip_grad_norm M` (30%) and `optimizer sgd|adam|adamw(...)` with random
   arguments, a quarter of the learning rates and a few others from a
   scalar input. Learning rates stay small, so that the params move little
   from the ranges the generator bounded the values for. */
static void add_optimizer(RGraph *g, Rng *r) {
  int has_param = 0;
  for (int i = 0; i < g->n; i++)
    has_param |= g->l[i].kind == RL_PARAM;
  for (int j = 0; j < g->nroots; j++) /* a param as a backward root */
    if (rg_leaf(g, g->roots[j]))
      return;
  if (!has_param)
    return;
  /* No param as an `output` of a training graph: the step writes the
     updated param there, NAME_grad the one the step started from
     (tests/random/repro/found-step-param-output.graph) */
  for (int i = 0; i < g->n; i++) {
    RLine *l = &g->l[i];
    if (l->kind != RL_OUTPUT)
      continue;
    char *t = strdup(l->text), *save = NULL, out[1100] = "";
    for (char *w = strtok_r(t, ", ", &save); w; w = strtok_r(NULL, ", ", &save)) {
      int drop = 0;
      for (int j = 0; j < g->n; j++)
        drop |= g->l[j].kind == RL_PARAM && !strcmp(g->l[j].name, w);
      if (!drop)
        snprintf(out + strlen(out), sizeof out - strlen(out), "%s%s", out[0] ? ", " : "", w);
    }
    free(t);
    free(l->text);
    l->text = strdup(out);
  }
  if (rng_chance(r, 0.3)) {
    double m = PICK(r, 0.1, 1, 10, 1000);
    char t[96];
    if (rng_chance(r, 0.15)) {
      hyper_input(g, "h_clip", m);
      snprintf(t, sizeof t, "clip_grad_norm h_clip");
    } else {
      snprintf(t, sizeof t, "clip_grad_norm %g", m);
    }
    add_line(g, RL_OPTIM, "")->text = strdup(t);
  }
  char buf[512];
  int kind = rng_int(r, 20);
  kind = kind < 9 ? 0 : kind < 15 ? 1 : 2;
  snprintf(buf, sizeof buf, "optimizer %s(", kind == 0 ? "sgd" : kind == 1 ? "adam" : "adamw");
  if (kind == 0) {
    opt_arg(g, r, buf, sizeof buf, "lr", PICK(r, 0.001, 0.01, 0.05, 0.1), 0.25);
    double mom = rng_chance(r, 0.5) ? 0 : PICK(r, 0.5, 0.9, 0.99);
    int nest = mom > 0 && rng_chance(r, 0.35);
    if (mom > 0 || rng_chance(r, 0.2))
      /* not 0 from an input: agc applies momentum and dampening from an
         input whatever its value, PyTorch skips both when momentum == 0
         (repro/found-step-sgd-momentum-input-zero.graph) */
      opt_arg(g, r, buf, sizeof buf, "momentum", mom, nest || mom == 0 ? 0 : 0.1);
    if (!nest && rng_chance(r, 0.3))
      opt_arg(g, r, buf, sizeof buf, "dampening", PICK(r, 0, 0.1, 0.5, 1), 0.1);
    if (rng_chance(r, 0.4))
      opt_arg(g, r, buf, sizeof buf, "weight_decay", PICK(r, 0, 1e-4, 0.01, 0.1), 0.1);
    if (nest || rng_chance(r, 0.1)) {
      size_t k = strlen(buf);
      snprintf(buf + k, sizeof buf - k, ", nesterov=%s", nest ? "true" : "false");
    }
  } else {
    opt_arg(g, r, buf, sizeof buf, "lr", PICK(r, 0.001, 0.01, 0.05), 0.25);
    if (rng_chance(r, 0.5))
      opt_arg(g, r, buf, sizeof buf, "beta1", PICK(r, 0, 0.5, 0.8, 0.9), 0.1);
    if (rng_chance(r, 0.5))
      opt_arg(g, r, buf, sizeof buf, "beta2", PICK(r, 0.5, 0.9, 0.99, 0.999), 0.1);
    if (rng_chance(r, 0.5))
      opt_arg(g, r, buf, sizeof buf, "eps", PICK(r, 1e-8, 1e-6, 1e-3, 0.1), 0.1);
    if (rng_chance(r, 0.4))
      opt_arg(g, r, buf, sizeof buf, "weight_decay", PICK(r, 0, 1e-4, 0.01, 0.1), 0.1);
  }
  size_t k = strlen(buf);
  snprintf(buf + k, sizeof buf - k, ")");
  add_line(g, RL_OPTIM, "")->text = strdup(buf);
}

void rg_generate(RGraph *g, uint64_t seed, const RGenOpts *o) {
  memset(g, 0, sizeof *g);
  Gen G;
  memset(&G, 0, sizeof G);
  G.g = g;
  G.o = o;
  G.r.s = seed * 0x2545f4914f6cdd1dULL + 1;
  G.fill_lo = -1, G.fill_hi = 1;
  if (rng_chance(&G.r, 0.15))
    G.fill_lo = -2, G.fill_hi = 2;
  G.quant = rng_chance(&G.r, 0.1);
  /* Quantized data has exact ties and zeros, where the derivative
     conventions (half to each side of a tie, relu'(0) = abs'(0) = 0) are
     not the derivative of the whole even when that exists: no FD check. */
  g->nofd = G.quant;
  int nstart = 1 + rng_int(&G.r, 3);
  for (int i = 0; i < nstart; i++) {
    int64_t d[RG_MAX_RANK];
    int r = rand_rank(&G);
    rand_shape(&G, r, d);
    leaf(&G, r, d, i == 0 || rng_chance(&G.r, 0.6));
  }
  int nops = 2 + rng_int(&G.r, o->max_stmts - 1);
  for (int i = 0; i < nops && G.n < MAXV - 16; i++) {
    Val v = op(&G, pick_use(&G));
    while (rng_chance(&G.r, 0.3)) /* a nested expression */
      v = op(&G, v);
    if (!stmt(&G, v))
      break;
  }
  /* loss: a few scalar terms, preferring values nothing uses yet */
  char *loss = NULL;
  /* every statement nothing uses yet (up to 8), so that the loss depends
     on the whole program; else a random value */
  int haveparam = 0, nt = 0;
  Val *sinks[MAXV];
  int ns = 0;
  for (int i = 0; i < G.n; i++)
    if (G.pool[i].e[0] == 'v' && !G.pool[i].nuse && G.pool[i].lim >= 1)
      sinks[ns++] = &G.pool[i];
  for (int i = 0; i < ns; i++) { /* shuffle */
    int j = i + rng_int(&G.r, ns - i);
    Val *t = sinks[i];
    sinks[i] = sinks[j], sinks[j] = t;
  }
  if (ns > 8)
    ns = 8;
  if (ns == 0 || rng_chance(&G.r, 0.2)) {
    Val *best = NULL;
    double bw = -1;
    for (int i = 0; i < G.n; i++) {
      double w = rng_unit(&G.r) * (1 + i);
      if (G.pool[i].lim >= 1 && w > bw)
        bw = w, best = &G.pool[i];
    }
    if (best)
      sinks[ns++] = best;
  }
  for (int t = 0; t < ns; t++) {
    Val *best = sinks[t];
    nt++;
    haveparam |= best->pdep;
    char *e = term(&G, best), *l;
    l = loss ? rg_fmt("%s + %s", loss, e) : e;
    if (loss)
      free(loss), free(e);
    loss = l;
  }
  (void)nt;
  if (!haveparam) { /* the loss depends on a param */
    for (int i = 0; i < g->n; i++)
      if (g->l[i].kind == RL_PARAM) {
        char *l = rg_fmt("%s + 0.1 * sum(%s * %s)", loss, g->l[i].name, g->l[i].name);
        free(loss);
        loss = l;
        break;
      }
  }
  RLine *ll = add_line(g, RL_ASSIGN, "loss");
  ll->text = loss;
  ll->lo = -BIG, ll->hi = BIG;
  /* outputs: the loss, the other roots, a few values */
  char outs[512];
  snprintf(outs, sizeof outs, "loss");
  snprintf(g->roots[0], RG_NAME, "loss");
  g->nroots = 1;
  if (G.n > 1 && rng_chance(&G.r, 0.2)) { /* a second root */
    Val *r = &G.pool[G.n - 1 - rng_int(&G.r, G.n < 4 ? G.n : 4)];
    if (r->pdep && r->lim >= 1) {
      snprintf(g->roots[g->nroots++], RG_NAME, "%s", r->e);
      size_t k = strlen(outs);
      snprintf(outs + k, sizeof outs - k, ", %s", r->e);
    }
  }
  int nout = rng_int(&G.r, 4);
  for (int i = 0; i < nout; i++) {
    Val *v = &G.pool[rng_int(&G.r, G.n)];
    if (listed(outs, v->e))
      continue;
    size_t k = strlen(outs);
    snprintf(outs + k, sizeof outs - k, ", %s", v->e);
  }
  for (int i = 0, k = 0; i < G.n && k < 3; i++) /* values the loss cannot use */
    if (G.pool[i].e[0] == 'v' && !G.pool[i].nuse && G.pool[i].lim < 1 &&
        !listed(outs, G.pool[i].e) &&
        strlen(outs) + strlen(G.pool[i].e) + 3 < sizeof outs) {
      size_t n = strlen(outs);
      snprintf(outs + n, sizeof outs - n, ", %s", G.pool[i].e);
      k++;
    }
  add_line(g, RL_OUTPUT, "")->text = strdup(outs);
  char bw[64];
  snprintf(bw, sizeof bw, "%s%s%s", g->roots[0], g->nroots > 1 ? ", " : "",
           g->nroots > 1 ? g->roots[1] : "");
  add_line(g, RL_BACKWARD, "")->text = strdup(bw);
  /* a training step: its own random stream, so that the graph itself is
     the same as without it */
  Rng tr = {seed * 0x9e3779b97f4a7c15ULL + 0x7a1117ULL};
  rng_next(&tr);
  if (rng_chance(&tr, o->train_frac))
    add_optimizer(g, &tr);
  for (int i = 0; i < G.n; i++)
    free(G.pool[i].e);
}
