/* emit_ops.c — the C of every node that is not an element-wise loop or a
 * reduction (emit.c): matrix products, conv2d, pooling, embedding, the
 * one-hot and first-max masks, products, padding; and the output stores. */
#include <ctype.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "emit.h"

const char *em_gemm_name(E *e) {
  if (e->t->aot_kernels) /* the runtime's optimized copy */
    return e->c->opt.api.f64 ? "agc_gemm_f64" : "agc_gemm_f32";
  return em_fmt(e, "%s_gemm", e->c->name);
}

const char *em_gemm_mt_name(E *e) {
  if (e->t->aot_kernels)
    return e->c->opt.api.f64 ? "agc_gemm_mt_f64" : "agc_gemm_mt_f32";
  return em_fmt(e, "%s_mt", em_gemm_name(e)); /* as emit_gemm_mt names it */
}

static void matmul_loop(E *e, const LStmt *st) {
  int id = st->node;
  Node *n = ND(e, id);
  int a = R(e, n->in[0]), b = R(e, n->in[1]);
  Shape sa = ND(e, a)->shape, sb = ND(e, b)->shape, sc = n->shape;
  int ta = n->flags & MM_TA, tb = n->flags & MM_TB;
  int64_t M, N, K, each; /* each: one thread's packing scratch */
  plan_gemm_dims(e->c, n, &M, &N, &K, &each);
  const char *A = em_bufname(e, a), *B = em_bufname(e, b), *C = em_bufname(e, id);
  /* batch loops over the broadcast leading axes */
  Shape batch = {sc.rank - 2, {0}};
  for (int d = 0; d < batch.rank; d++)
    batch.d[d] = sc.d[d];
  char **bi = em_loop_open(e, &batch, "b");
  const char *ao = "0", *bo = "0", *co = "0";
  if (batch.rank) {
    Shape ba = {sa.rank - 2, {0}}, bb = {sb.rank - 2, {0}};
    for (int d = 0; d < ba.rank; d++)
      ba.d[d] = sa.d[d];
    for (int d = 0; d < bb.rank; d++)
      bb.d[d] = sb.d[d];
    Node ta_ = *ND(e, a), tb_ = *ND(e, b);
    ta_.shape = ba;
    tb_.shape = bb;
    ao = em_fmt(e, "(%s) * %lld", em_offset(e, &ba, em_bcast_idx(e, &ta_, batch.rank, bi)),
             (long long)(M * K));
    bo = em_fmt(e, "(%s) * %lld", em_offset(e, &bb, em_bcast_idx(e, &tb_, batch.rank, bi)),
             (long long)(K * N));
    co = em_fmt(e, "(%s) * %lld", em_offset(e, &batch, bi), (long long)(M * N));
    em_line(e, "{");
    e->ind++;
    em_line(e, "const %s *A = %s + %s;", e->real, A, ao);
    em_line(e, "const %s *B = %s + %s;", e->real, B, bo);
    em_line(e, "%s *C = %s + %s;", e->real, C, co);
    A = "A", B = "B", C = "C";
  }
  /* the packed kernel, the runtime's narrow product (the JIT: TinyCC's
     own loops are several times slower), or loops here (lowering chose) */
  int gemm = st->kernel == LK_GEMM;
  if (st->kernel != LK_LOOPS) {
    if (gemm && st->threads > 1) { /* pack: one thread's scratch each */
      em_line(e, "%s(%lld, %lld, %lld, %s, %lld, %lld, %s, %lld, %lld, %s, 0, "
           "pack, %lld, %d);", em_gemm_mt_name(e), (long long)M, (long long)N,
           (long long)K, A, (long long)(ta ? 1 : K), (long long)(ta ? M : 1), B,
           (long long)(tb ? 1 : N), (long long)(tb ? K : 1), C,
           (long long)each, st->threads);
      e->uses_gemm_mt = 1;
    } else if (gemm)
      em_line(e, "%s(%lld, %lld, %lld, %s, %lld, %lld, %s, %lld, %lld, %s, 0, "
           "pack);", em_gemm_name(e), (long long)M, (long long)N, (long long)K,
           A, (long long)(ta ? 1 : K), (long long)(ta ? M : 1), B,
           (long long)(tb ? 1 : N), (long long)(tb ? K : 1), C);
    else
      em_line(e, "agc_matmul_%s(%lld, %lld, %lld, %s, %lld, %lld, %s, %lld, "
           "%lld, %s);", e->c->opt.api.f64 ? "f64" : "f32", (long long)M,
           (long long)N, (long long)K, A, (long long)(ta ? 1 : K),
           (long long)(ta ? M : 1), B, (long long)(tb ? 1 : N),
           (long long)(tb ? K : 1), C);
    e->uses_gemm |= gemm;
    e->uses_mm |= !gemm;
    if (batch.rank) {
      e->ind--;
      em_line(e, "}");
    }
    em_loop_close(e, &batch);
    return;
  }
  em_line(e, "for (long i = 0; i < %lld; i++) {", (long long)M);
  e->ind++;
  em_line(e, "for (long j = 0; j < %lld; j++) %s[i * %lld + j] = %s;",
       (long long)N, C, (long long)N, em_lit(e, 0));
  em_line(e, "for (long k = 0; k < %lld; k++) {", (long long)K);
  e->ind++;
  em_line(e, "const %s a = %s[%s];", e->real, A,
       ta ? em_fmt(e, "k * %lld + i", (long long)M)
          : em_fmt(e, "i * %lld + k", (long long)K));
  em_line(e, "for (long j = 0; j < %lld; j++) %s[i * %lld + j] += a * %s[%s];",
       (long long)N, C, (long long)N, B,
       tb ? em_fmt(e, "j * %lld + k", (long long)K)
          : em_fmt(e, "k * %lld + j", (long long)N));
  e->ind--;
  em_line(e, "}");
  e->ind--;
  em_line(e, "}");
  if (batch.rank) {
    e->ind--;
    em_line(e, "}");
  }
  em_loop_close(e, &batch);
}

/* one-hot of the first max/min along one axis */
static void firstmax_loop(E *e, int id) {
  Node *n = ND(e, id);
  int a = R(e, n->in[0]);
  int axis = 0;
  while (!(n->mask & (1u << axis)))
    axis++;
  Shape outer = n->shape;
  outer.d[axis] = 1;
  const char *dst = em_bufname(e, id);
  em_line(e, "for (long i = 0; i < %lld; i++) %s[i] = %s;", (long long)n->numel,
       dst, em_lit(e, 0));
  char **idx = em_loop_open(e, &outer, "i");
  if (n->numel == n->shape.d[axis]) {
    em_line(e, "{");
    e->ind++;
  }
  char **ik = arena_alloc(&e->c->tmp, sizeof(char *) * MAX_RANK);
  memcpy(ik, idx, sizeof(char *) * MAX_RANK);
  ik[axis] = "k";
  em_line(e, "long best = 0;");
  em_line(e, "for (long k = 1; k < %lld; k++)", (long long)n->shape.d[axis]);
  ik[axis] = "k";
  const char *cur = em_load(e, a, ik);
  ik[axis] = "best";
  const char *bv = em_load(e, a, ik);
  em_line(e, "  if (%s %s %s) best = k;", cur, n->op == OP_FIRSTMAX ? ">" : "<", bv);
  em_line(e, "%s[%s] = %s;", dst, em_offset(e, &n->shape, ik), em_lit(e, 1));
  if (n->numel == n->shape.d[axis]) {
    e->ind--;
    em_line(e, "}");
  }
  em_loop_close(e, &outer);
}

/* product of the other elements of each reduced group */
static void prodexcl_loop(E *e, int id) {
  Node *n = ND(e, id);
  int a = R(e, n->in[0]);
  Shape s = n->shape, grp = n->shape;
  for (int d = 0; d < s.rank; d++)
    if (!(n->mask & (1u << d)))
      grp.d[d] = 1;
  const char *dst = em_bufname(e, id);
  char **idx = em_loop_open(e, &s, "i");
  em_line(e, "{");
  e->ind++;
  em_line(e, "%s prod = %s;", e->real, em_lit(e, 1));
  char **gi = em_loop_open(e, &grp, "g");
  char **ri = arena_alloc(&e->c->tmp, sizeof(char *) * MAX_RANK);
  StrBuf same = {0};
  int nsame = 0;
  for (int d = 0; d < s.rank; d++) {
    if (n->mask & (1u << d) && s.d[d] != 1) {
      ri[d] = gi[d];
      sb_printf(&same, "%s%s == %s", nsame++ ? " && " : "", gi[d], idx[d]);
    } else {
      ri[d] = idx[d];
    }
  }
  em_line(e, "if (!(%s)) prod *= %s;", nsame ? same.s : "1", em_load(e, a, ri));
  sb_free(&same);
  em_loop_close(e, &grp);
  em_line(e, "%s[%s] = prod;", dst, em_offset(e, &s, idx));
  e->ind--;
  em_line(e, "}");
  em_loop_close(e, &s);
}

/* out_j = sum over i != j of g_i * prod over k != i, j of x_k, within each
 * reduced group: the adjoint of prodexcl, for second derivatives of prod */
static void prodexcl2_loop(E *e, int id) {
  Node *n = ND(e, id);
  int a = R(e, n->in[0]), g = R(e, n->in[1]);
  Shape s = n->shape, grp = n->shape;
  for (int d = 0; d < s.rank; d++)
    if (!(n->mask & (1u << d)))
      grp.d[d] = 1;
  const char *dst = em_bufname(e, id);
  char **idx = em_loop_open(e, &s, "i");
  em_line(e, "{");
  e->ind++;
  em_line(e, "%s acc = %s;", e->real, em_lit(e, 0));
  char **gi = em_loop_open(e, &grp, "g");
  em_line(e, "{");
  e->ind++;
  char **ri = arena_alloc(&e->c->tmp, sizeof(char *) * MAX_RANK);
  StrBuf gj = {0};
  int ngj = 0;
  for (int d = 0; d < s.rank; d++) {
    int red = n->mask & (1u << d) && s.d[d] != 1;
    ri[d] = red ? gi[d] : idx[d];
    if (red)
      sb_printf(&gj, "%s%s == %s", ngj++ ? " && " : "", gi[d], idx[d]);
  }
  em_line(e, "if (%s) continue;", ngj ? gj.s : "1");
  em_line(e, "%s prod = %s;", e->real, em_load(e, g, ri));
  char **hi = em_loop_open(e, &grp, "h");
  char **ki = arena_alloc(&e->c->tmp, sizeof(char *) * MAX_RANK);
  for (int d = 0; d < s.rank; d++) {
    int red = n->mask & (1u << d) && s.d[d] != 1;
    ki[d] = red ? hi[d] : idx[d];
  }
  StrBuf hj = {0}, hg = {0};
  int nh = 0;
  for (int d = 0; d < s.rank; d++)
    if (n->mask & (1u << d) && s.d[d] != 1) {
      sb_printf(&hj, "%s%s == %s", nh ? " && " : "", hi[d], idx[d]);
      sb_printf(&hg, "%s%s == %s", nh ? " && " : "", hi[d], gi[d]);
      nh++;
    }
  em_line(e, "if (!(%s) && !(%s)) prod *= %s;", nh ? hj.s : "1", nh ? hg.s : "1",
       em_load(e, a, ki));
  em_loop_close(e, &grp);
  em_line(e, "acc += prod;");
  e->ind--;
  em_line(e, "}");
  em_loop_close(e, &grp);
  em_line(e, "%s[%s] = acc;", dst, em_offset(e, &s, idx));
  e->ind--;
  em_line(e, "}");
  em_loop_close(e, &s);
  sb_free(&gj);
  sb_free(&hj);
  sb_free(&hg);
}

static void onehot_loop(E *e, int id) {
  Node *n = ND(e, id);
  int a = R(e, n->in[0]);
  int64_t C = (int64_t)n->val;
  const char *dst = em_bufname(e, id);
  Shape in = ND(e, a)->shape;
  em_line(e, "for (long i = 0; i < %lld; i++) %s[i] = %s;", (long long)n->numel,
       dst, em_lit(e, 0));
  char **idx = em_loop_open(e, &in, "i");
  em_line(e, "{");
  e->ind++;
  em_line(e, "const long k = (long)%s;", em_load(e, a, idx));
  em_line(e, "if (k < 0 || k >= %lld) status = 1; /* index out of range */",
       (long long)C);
  em_line(e, "else %s[(%s) * %lld + k] = %s;", dst, em_offset(e, &in, idx),
       (long long)C, em_lit(e, 1));
  e->ind--;
  em_line(e, "}");
  em_loop_close(e, &in);
  e->uses_status = 1;
}

static void pad_loop(E *e, int id) {
  Node *n = ND(e, id);
  int a = R(e, n->in[0]);
  const char *dst = em_bufname(e, id);
  em_line(e, "for (long i = 0; i < %lld; i++) %s[i] = %s;", (long long)n->numel,
       dst, em_lit(e, 0));
  Shape in = ND(e, a)->shape;
  char **idx = em_loop_open(e, &in, "i");
  char **oi = arena_alloc(&e->c->tmp, sizeof(char *) * MAX_RANK);
  for (int d = 0; d < in.rank; d++)
    oi[d] = n->perm[d] ? em_fmt(e, "(%s + %d)", idx[d], n->perm[d]) : idx[d];
  if (in.rank == 0 || ND(e, a)->numel == 1) {
    em_line(e, "{");
    e->ind++;
  }
  const char *v = em_val(e, a, idx);
  /* the output may have size-1 axes where the input has them too */
  em_line(e, "%s[%s] = %s;", dst, em_offset(e, &n->shape, oi), v);
  if (in.rank == 0 || ND(e, a)->numel == 1) {
    e->ind--;
    em_line(e, "}");
  }
  em_loop_close(e, &in);
}

/* ---- convolution, pooling, embedding ------------------------------------- */

static void zero(E *e, const char *dst, int64_t n) {
  em_line(e, "for (long i = 0; i < %lld; i++) %s[i] = %s;", (long long)n, dst,
       em_lit(e, 0));
}

/* im2col of image n of x into col[(c*KH + kh)*KW + kw][oh*OW + ow], or
 * (back) col2im, adding col into dx. */
/* im2col of image n of X (or, back, col2im into it): the kernel of
 * runtime/kernels/im2col.c, the runtime's copy for the JIT, else its text
 * in the file */
static void im2col(E *e, const Shape *x, const Shape *w, const Shape *y,
                   int stride, int pad, const char *X, int back) {
  int64_t C = x->d[1], H = x->d[2], W = x->d[3], KH = w->d[2], KW = w->d[3];
  int64_t OH = y->d[2], OW = y->d[3];
  const char *f = e->t->aot_kernels
                      ? (e->c->opt.api.f64 ? "agc_im2col_f64" : "agc_im2col_f32")
                      : em_fmt(e, "%s_im2col", e->c->name);
  em_line(e, "%s(%s + n * %lld, %lld, %lld, %lld, %lld, %lld, %d, %d, %lld, "
       "%lld, col, %d);", f, X, (long long)(C * H * W), (long long)C,
       (long long)H, (long long)W, (long long)KH, (long long)KW, stride, pad,
       (long long)OH, (long long)OW, back);
  e->uses_im2col = 1;
}

/* conv2d and its gradients as direct loops (a target without the packed
 * kernel: no im2col matrix, no packing; the gradients scatter-add):
 *   y[n,o,i,j]  = sum over c,u,v of x[n,c,i*s-p+u,j*s-p+v] w[o,c,u,v]
 *   dx[n,c,..] += gy[n,o,i,j] w[o,c,u,v]
 *   dw[o,c,u,v] += gy[n,o,i,j] x[n,c,..]                            */
/* A conv node's operands' buffers (A, B), its own (D) and its geometry. */
typedef struct {
  const char *A, *B, *D;
  Shape sa, sb;
  ConvGeom g;
} ConvArgs;

static void conv_args(E *e, int id, ConvArgs *k) {
  Node *n = ND(e, id);
  int a = R(e, n->in[0]), b = R(e, n->in[1]);
  k->A = em_bufname(e, a);
  k->B = em_bufname(e, b);
  k->D = em_bufname(e, id);
  k->sa = ND(e, a)->shape;
  k->sb = ND(e, b)->shape;
  k->g = conv_geometry(n, &k->sa, &k->sb);
}

static void conv_direct(E *e, int id) {
  Node *n = ND(e, id);
  ConvArgs k;
  conv_args(e, id, &k);
  const char *A = k.A, *B = k.B, *D = k.D;
  const Shape *x = k.g.x, *w = k.g.w, *y = k.g.y;
  long long Nb = x->d[0], C = x->d[1], H = x->d[2], W = x->d[3];
  long long O = w->d[0], KH = w->d[2], KW = w->d[3], OH = y->d[2], OW = y->d[3];
  int st = n->perm[0], pad = n->perm[1];
  const char *X = n->op == OP_CONV2D_DX ? D : A;
  const char *Wt = n->op == OP_CONV2D_DW ? D : B;
  const char *Y = n->op == OP_CONV2D ? D : n->op == OP_CONV2D_DX ? A : B;
  if (n->op != OP_CONV2D)
    zero(e, D, n->numel);
  em_line(e, "for (long n = 0; n < %lld; n++)", Nb);
  em_line(e, "for (long o = 0; o < %lld; o++)", O);
  em_line(e, "for (long i = 0; i < %lld; i++)", OH);
  em_line(e, "for (long j = 0; j < %lld; j++) {", OW);
  e->ind++;
  const char *yat = em_fmt(e, "%s[((n * %lld + o) * %lld + i) * %lld + j]", Y,
                           O, OH, OW);
  if (n->op == OP_CONV2D)
    em_line(e, "%s acc = %s;", e->real, em_lit(e, 0));
  else
    em_line(e, "const %s g = %s;", e->real, yat);
  em_line(e, "for (long c = 0; c < %lld; c++)", C);
  em_line(e, "for (long u = 0; u < %lld; u++) {", KH);
  e->ind++;
  em_line(e, "const long h = i * %d - %d + u;", st, pad);
  em_line(e, "if (h < 0 || h >= %lld) continue;", H);
  em_line(e, "for (long v = 0; v < %lld; v++) {", KW);
  e->ind++;
  em_line(e, "const long q = j * %d - %d + v;", st, pad);
  em_line(e, "if (q < 0 || q >= %lld) continue;", W);
  const char *xat = em_fmt(e, "%s[((n * %lld + c) * %lld + h) * %lld + q]", X,
                           C, H, W);
  const char *wat = em_fmt(e, "%s[((o * %lld + c) * %lld + u) * %lld + v]", Wt,
                           C, KH, KW);
  if (n->op == OP_CONV2D)
    em_line(e, "acc += %s * %s;", xat, wat);
  else if (n->op == OP_CONV2D_DX)
    em_line(e, "%s += g * %s;", xat, wat);
  else
    em_line(e, "%s += g * %s;", wat, xat);
  e->ind--;
  em_line(e, "}");
  e->ind--;
  em_line(e, "}");
  if (n->op == OP_CONV2D)
    em_line(e, "%s = acc;", yat);
  e->ind--;
  em_line(e, "}");
}

/* conv2d and its gradients as matrix products per image, through im2col:
 *   y[n]  = w[O, CKK] @ col(x[n])[CKK, P]
 *   dx[n] = col2im(w^T @ gy[n])
 *   dw   += gy[n] @ col(x[n])^T                                  */
static void conv_code(E *e, int id) {
  Node *n = ND(e, id);
  ConvArgs k;
  conv_args(e, id, &k);
  const char *A = k.A, *B = k.B, *D = k.D;
  ConvGeom cg = k.g;
  const Shape *x = cg.x, *w = cg.w, *y = cg.y;
  int64_t Nb = x->d[0], O = w->d[0], CKK = w->d[1] * w->d[2] * w->d[3];
  int64_t P = y->d[2] * y->d[3];
  int64_t colat = kernel_pack_elems(e->c->opt.api.f64, cg.M, cg.N, cg.K);
  const char *g = em_gemm_name(e);
  e->uses_gemm = 1;
  em_line(e, "{");
  e->ind++;
  em_line(e, "%s *const col = pack + %lld; /* [%lld, %lld] */", e->real,
       (long long)colat, (long long)CKK, (long long)P);
  if (n->op == OP_CONV2D_DX)
    zero(e, D, n->numel);
  em_line(e, "for (long n = 0; n < %lld; n++) {", (long long)Nb);
  e->ind++;
  switch (n->op) {
  case OP_CONV2D: /* y = conv(x=a, w=b) */
    im2col(e, x, w, y, n->perm[0], n->perm[1], A, 0);
    em_line(e, "%s(%lld, %lld, %lld, %s, %lld, 1, col, %lld, 1, %s + n * %lld, 0, pack);",
         g, (long long)O, (long long)P, (long long)CKK, B, (long long)CKK,
         (long long)P, D, (long long)(O * P));
    break;
  case OP_CONV2D_DX: /* dx = DX(gy=a, w=b) */
    em_line(e, "%s(%lld, %lld, %lld, %s, 1, %lld, %s + n * %lld, %lld, 1, col, 0, pack);",
         g, (long long)CKK, (long long)P, (long long)O, B, (long long)CKK, A,
         (long long)(O * P), (long long)P);
    im2col(e, x, w, y, n->perm[0], n->perm[1], D, 1);
    break;
  default: /* dw = DW(x=a, gy=b) */
    im2col(e, x, w, y, n->perm[0], n->perm[1], A, 0);
    em_line(e, "%s(%lld, %lld, %lld, %s + n * %lld, %lld, 1, col, 1, %lld, %s, n > 0, pack);",
         g, (long long)O, (long long)CKK, (long long)P, B, (long long)(O * P),
         (long long)P, (long long)P, D);
    break;
  }
  e->ind--;
  em_line(e, "}");
  e->ind--;
  em_line(e, "}");
}

/* max_pool2d / avg_pool2d and their gradients; x is the unpooled shape */
static void pool_code(E *e, int id) {
  Node *n = ND(e, id);
  int k = n->perm[0], st = n->perm[1];
  int a = R(e, n->in[0]);
  const char *D = em_bufname(e, id), *A = em_bufname(e, a);
  int fwd = n->op == OP_MAXPOOL || n->op == OP_AVGPOOL;
  Shape x = fwd ? ND(e, a)->shape : n->shape;
  Shape y = fwd ? n->shape : ND(e, R(e, n->in[n->nin - 1]))->shape;
  int64_t NC = x.d[0] * x.d[1], H = x.d[2], W = x.d[3], OH = y.d[2],
          OW = y.d[3];
  int op = n->op == OP_MAXPOOL ? 0 : n->op == OP_MAXPOOL_DX ? 1
         : n->op == OP_AVGPOOL ? 2 : 3;
  const char *X = n->op == OP_MAXPOOL_DX || fwd ? A : "0";
  const char *G = fwd ? "0" : em_bufname(e, R(e, n->in[n->nin - 1]));
  const char *f = e->t->aot_kernels
                      ? (e->c->opt.api.f64 ? "agc_pool_f64" : "agc_pool_f32")
                      : em_fmt(e, "%s_pool", e->c->name);
  em_line(e, "%s(%d, %s, %s, %lld, %lld, %lld, %d, %d, %lld, %lld, %s);", f, op,
       X, G, (long long)NC, (long long)H, (long long)W, k, st, (long long)OH,
       (long long)OW, D);
  e->uses_pool = 1;
}

/* embedding: rows of a [V, D] table by index; EMBED_DT adds them back */
static void embed_code(E *e, int id) {
  Node *n = ND(e, id);
  int a = R(e, n->in[0]), ix = R(e, n->in[1]);
  const char *D = em_bufname(e, id), *A = em_bufname(e, a), *I = em_bufname(e, ix);
  int64_t cnt = ND(e, ix)->numel;
  Shape tab = n->op == OP_EMBED ? ND(e, a)->shape : n->shape;
  int64_t V = tab.d[0], Dm = tab.d[1];
  if (n->op == OP_EMBED_DT)
    zero(e, D, n->numel);
  em_line(e, "for (long i = 0; i < %lld; i++) {", (long long)cnt);
  e->ind++;
  em_line(e, "const long r = (long)%s[i];", I);
  em_line(e, "if (r < 0 || r >= %lld) { status = 1; continue; } /* index out of range */",
       (long long)V);
  if (n->op == OP_EMBED)
    em_line(e, "for (long j = 0; j < %lld; j++) %s[i * %lld + j] = %s[r * %lld + j];",
         (long long)Dm, D, (long long)Dm, A, (long long)Dm);
  else
    em_line(e, "for (long j = 0; j < %lld; j++) %s[r * %lld + j] += %s[i * %lld + j];",
         (long long)Dm, D, (long long)Dm, A, (long long)Dm);
  e->ind--;
  em_line(e, "}");
  e->uses_status = 1;
}

void em_node_code(E *e, const LStmt *s) {
  int id = s->node;
  Node *n = ND(e, id);
  em_comment(e, id);
  switch (op_kind(n->op)) {
  case K_EW: {
    PartSave sv;
    if (s->threads > 1) /* in parts on threads (lower.c, loop_threads) */
      em_part_begin(e, s, &sv);
    em_ew_loop(e, em_bufname(e, id), id, "=", 1, s->flat);
    if (s->threads > 1)
      em_part_end(e, s, &sv);
    return;
  }
  case K_RED:
    em_reduce_loop(e, s);
    return;
  case K_MM:
    matmul_loop(e, s);
    return;
  default:
    break;
  }
  switch (n->op) {
  case OP_CONST: case OP_TRANSPOSE: case OP_SLICE:
    em_ew_loop(e, em_bufname(e, id), id, "=", 1, s->flat);
    return;
  case OP_PAD: pad_loop(e, id); return;
  case OP_FIRSTMAX: case OP_FIRSTMIN: firstmax_loop(e, id); return;
  case OP_PRODEXCL: prodexcl_loop(e, id); return;
  case OP_PRODEXCL2: prodexcl2_loop(e, id); return;
  case OP_ONEHOT: onehot_loop(e, id); return;
  case OP_CONV2D: case OP_CONV2D_DX: case OP_CONV2D_DW:
    if (s->kernel == LK_GEMM)
      conv_code(e, id);
    else
      conv_direct(e, id);
    return;
  case OP_MAXPOOL: case OP_MAXPOOL_DX: case OP_AVGPOOL: case OP_AVGPOOL_DX:
    pool_code(e, id);
    return;
  case OP_EMBED: case OP_EMBED_DT: embed_code(e, id); return;
  default:
    error_plain(e->c, "internal: no code generator for %s", op_name(n->op));
  }
}

/* An output copied (or added) into the caller's buffer from its value
 * (lowering leaves out outputs computed in place and updates that change
 * nothing). */
void em_store_code(E *e, const LStmt *s) {
  Out *out = &e->c->g.outs[s->out];
  const char *op = out->is_grad && e->c->opt.api.accumulate ? "+=" : "=";
  em_line(e, "/* %s %s */", op[0] == '+' ? "accumulate" : "store", out->name);
  PartSave sv;
  if (s->threads > 1) /* in parts on threads (lower.c, loop_threads) */
    em_part_begin(e, s, &sv);
  em_ew_loop(e, em_fmt(e, "out_%s", out->name), s->node, op, 0, s->flat);
  if (s->threads > 1)
    em_part_end(e, s, &sv);
}

/* ---- reductions ------------------------------------------------------- */

/* A whole-tensor sum's accumulator: the target's wider type, or the
 * element type with Kahan compensation (no double on a single-precision
 * FPU; the error stays a few ulps whatever the length). */
static void acc_decl(E *e, const char *name, int prod) {
  if (e->t->acc_type)
    em_line(e, "%s %s = %s;", e->t->acc_type, name, prod ? "1.0" : "0.0");
  else if (prod)
    em_line(e, "%s %s = %s;", e->real, name, em_lit(e, 1));
  else
    em_line(e, "%s %s = %s, %s_c = %s;", e->real, name, em_lit(e, 0), name,
            em_lit(e, 0));
}

void em_acc_add(E *e, const char *name, const char *v) {
  if (e->t->acc_type) {
    em_line(e, "%s += %s;", name, v);
    return;
  }
  em_line(e, "{");
  e->ind++;
  em_line(e, "const %s y = %s - %s_c;", e->real, v, name);
  em_line(e, "const %s s = %s + y;", e->real, name);
  em_line(e, "%s_c = (s - %s) - y;", name, name);
  em_line(e, "%s = s;", name);
  e->ind--;
  em_line(e, "}");
}

void em_reduce_loop(E *e, const LStmt *s) {
  int id = s->node;
  Node *n = ND(e, id);
  int a = R(e, n->in[0]);
  const char *dst = em_bufname(e, id);
  Shape in = s->iter;
  int minmax = n->op == OP_MAX || n->op == OP_MIN;
  /* a whole-tensor sum or product runs in a local accumulator (lowering
     decides); otherwise into the result's own buffer */
  int acc = ACC(e, MEM(e, s, 0))->kind == LA_LOCAL;
  em_line(e, "{");
  e->ind++;
  if (minmax) {
    /* start from the first element of each group: no infinities needed */
    Shape first = in;
    for (int d = 0; d < in.rank; d++)
      if (n->mask & (1u << d))
        first.d[d] = 1;
    char **idx = em_loop_open(e, &first, "i");
    em_line(e, "{");
    e->ind++;
    const char *v = em_val(e, a, idx);
    em_line(e, "%s[%s] = %s;", dst, em_offset(e, &n->shape, idx), v);
    e->ind--;
    em_line(e, "}");
    em_loop_close(e, &first);
  } else if (acc) {
    acc_decl(e, "acc", n->op == OP_PROD);
  } else {
    Shape o = n->shape;
    char **oi = em_loop_open(e, &o, "j");
    em_line(e, "%s[%s] = %s;", dst, em_offset(e, &o, oi),
         em_lit(e, n->op == OP_PROD ? 1 : 0));
    em_loop_close(e, &o);
  }
  char **idx = em_loop_open(e, &in, "i");
  em_line(e, "{");
  e->ind++;
  const char *v = em_val(e, a, idx);
  const char *slot =
      acc ? "acc" : em_fmt(e, "%s[%s]", dst, em_offset(e, &n->shape, idx));
  switch (n->op) {
  case OP_SUM:
    if (acc)
      em_acc_add(e, slot, v);
    else
      em_line(e, "%s += %s;", slot, v);
    break;
  case OP_PROD: em_line(e, "%s *= %s;", slot, v); break;
  case OP_MAX: em_line(e, "if (%s > %s) %s = %s;", v, slot, slot, v); break;
  case OP_MIN: em_line(e, "if (%s < %s) %s = %s;", v, slot, slot, v); break;
  default: break;
  }
  e->ind--;
  em_line(e, "}");
  em_loop_close(e, &in);
  if (acc)
    em_line(e, "%s[0] = (%s)acc;", dst, e->real);
  e->ind--;
  em_line(e, "}");
}

/* A fused loop's block: its sums start before the loop (a local
 * accumulator, a row of double partial sums, or zeros) and the totals of
 * whole-tensor sums are stored after it. */
void em_sums_open(E *e, const LStmt *s) {
  em_line(e, "{");
  e->ind++;
  for (int k = 0; k < s->nmembers; k++) {
    const LAcc *a = ACC(e, MEM(e, s, k));
    int m = MEM(e, s, k)->node;
    if (!a)
      continue;
    if (a->kind == LA_SCRATCH) {
      em_line(e, "double *const acc%d = (double *)(void *)(w + %lld); "
           "/* partial sums */", m, (long long)a->off);
      em_line(e, "for (long j = 0; j < %lld; j++) acc%d[j] = 0.0;",
           (long long)(a->bytes / 8), m);
    } else if (a->kind == LA_LOCAL) {
      acc_decl(e, em_fmt(e, "acc%d", m), 0);
    } else {
      Shape o = ND(e, m)->shape;
      char **oi = em_loop_open(e, &o, "j");
      em_line(e, "%s[%s] = %s;", em_bufname(e, m), em_offset(e, &o, oi), em_lit(e, 0));
      em_loop_close(e, &o);
    }
  }
}

void em_sums_close(E *e, const LStmt *s) {
  for (int k = 0; k < s->nmembers; k++) {
    const LAcc *a = ACC(e, MEM(e, s, k));
    int m = MEM(e, s, k)->node;
    if (a && a->kind == LA_SCRATCH) {
      em_line(e, "{");
      e->ind++;
      em_line(e, "%s sum = 0;", e->t->acc_type);
      em_line(e, "for (long j = 0; j < %lld; j++) sum += acc%d[j];",
           (long long)(a->bytes / 8), m);
      em_line(e, "%s[0] = (%s)sum;", em_bufname(e, m), e->real);
      e->ind--;
      em_line(e, "}");
    } else if (a && a->kind == LA_LOCAL) {
      em_line(e, "%s[0] = (%s)acc%d;", em_bufname(e, m), e->real, m);
    }
  }
  e->ind--;
  em_line(e, "}");
}
