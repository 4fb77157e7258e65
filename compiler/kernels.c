/* kernels.c — the matrix-product kernel, as C text.
 *
 * One source serves both uses: emit.c copies it into every generated .c
 * file that has a matrix product (the file stays self-contained), and the
 * build compiles the same text ahead of time with the optimizing compiler
 * into the runtime (gen_kernels.c), which hands it to the TinyCC JIT: tcc
 * does not vectorize, gcc -O3 does.
 *
 * C[M,N] (+)= op(A) @ op(B) (adding when acc), with element (i,k) of op(A) at A[i*sai + k*sak]
 * and (k,j) of op(B) at B[k*sbk + j*sbj]: every transpose variant is a
 * choice of strides, nothing is transposed in memory. As in BLIS, A is
 * packed in blocks of MC rows by KC columns (L2), B in blocks of KC rows by
 * NC columns, as panels of NR columns (L1), both into `pack` (workspace
 * sized for the product by kernel_pack_elems); a block of MR x NR
 * accumulators runs down each panel:
 * with GNU C (gcc, clang) as vector registers, elsewhere (tcc) as plain
 * loops.
 */
#include <stdio.h>
#include <string.h>

#include "agc.h"

static const char gemm_template[] =
    "#define MR 6\n"
    "#define NR @NR@\n"
    "#define KC 256\n"
    "#define MC 120\n"
    "#define NC 1024\n"
    "@LINKAGE@void @NAME@(long M, long N, long K, const @T@ *A, long sai,\n"
    "    long sak, const @T@ *B, long sbk, long sbj, @T@ *C, int acc,\n"
    "    @T@ *pack)\n"
    "{\n"
    "#if defined(__GNUC__) && !defined(__TINYC__)\n"
    "  /* GNU C vectors: two registers of NR/2 lanes per row of the block */\n"
    "  typedef @T@ vec __attribute__((vector_size(32), aligned(sizeof(@T@)),\n"
    "                                 may_alias));\n"
    "#endif\n"
    "  /* scratch, sized for this product: a KC x NC block of B in NR-column\n"
    "     panels, an MC x KC block of A in MR-row panels, an MR x NR tile */\n"
    "  const long kcap = K < KC ? K : KC;\n"
    "  const long ncap = ((N < NC ? N : NC) + NR - 1) / NR * NR;\n"
    "  const long mcap = ((M < MC ? M : MC) + MR - 1) / MR * MR;\n"
    "  @T@ *const pb = pack, *const pa = pack + kcap * ncap;\n"
    "  @T@ *const tile = pa + mcap * kcap;\n"
    "  for (long n0 = 0; n0 < N; n0 += NC) {\n"
    "    const long nc = N - n0 < NC ? N - n0 : NC;\n"
    "    for (long k0 = 0; k0 < K; k0 += KC) {\n"
    "      const long kc = K - k0 < KC ? K - k0 : KC;\n"
    "      /* B rows are read in order; panel p holds columns p*NR.. */\n"
    "      for (long k = 0; k < kc; k++)\n"
    "        for (long j = 0; j < (nc + NR - 1) / NR * NR; j++)\n"
    "          pb[(j / NR * kc + k) * NR + j % NR] =\n"
    "              j < nc ? B[(k0 + k) * sbk + (n0 + j) * sbj] : 0;\n"
    "      for (long m0 = 0; m0 < M; m0 += MC) {\n"
    "        const long mc = M - m0 < MC ? M - m0 : MC;\n"
    "        for (long ib = 0; ib * MR < mc; ib++)\n"
    "          for (long k = 0; k < kc; k++)\n"
    "            for (long ii = 0; ii < MR; ii++) {\n"
    "              const long i = ib * MR + ii;\n"
    "              pa[(ib * kc + k) * MR + ii] =\n"
    "                  i < mc ? A[(m0 + i) * sai + (k0 + k) * sak] : 0;\n"
    "            }\n"
    "        for (long j0 = 0; j0 < nc; j0 += NR) {\n"
    "          const long nr = nc - j0 < NR ? nc - j0 : NR;\n"
    "          const @T@ *const bp = pb + j0 * kc;\n"
    "          for (long ib = 0; ib * MR < mc; ib++) {\n"
    "            const @T@ *const ap = pa + ib * kc * MR;\n"
    "#if defined(__GNUC__) && !defined(__TINYC__)\n"
    "            vec c[MR][2];\n"
    "            for (int ii = 0; ii < MR; ii++)\n"
    "              c[ii][0] = c[ii][1] = (vec){0};\n"
    "            for (long k = 0; k < kc; k++) {\n"
    "              const vec b0 = *(const vec *)(bp + k * NR);\n"
    "              const vec b1 = *(const vec *)(bp + k * NR + NR / 2);\n"
    "              for (int ii = 0; ii < MR; ii++) {\n"
    "                const @T@ x = ap[k * MR + ii];\n"
    "                c[ii][0] += x * b0;\n"
    "                c[ii][1] += x * b1;\n"
    "              }\n"
    "            }\n"
    "            for (int ii = 0; ii < MR; ii++) {\n"
    "              *(vec *)(tile + ii * NR) = c[ii][0];\n"
    "              *(vec *)(tile + ii * NR + NR / 2) = c[ii][1];\n"
    "            }\n"
    "#else\n"
    "            for (long t = 0; t < MR * NR; t++)\n"
    "              tile[t] = 0;\n"
    "            for (long k = 0; k < kc; k++)\n"
    "              for (long ii = 0; ii < MR; ii++) {\n"
    "                const @T@ x = ap[k * MR + ii];\n"
    "                for (long jj = 0; jj < NR; jj++)\n"
    "                  tile[ii * NR + jj] += x * bp[k * NR + jj];\n"
    "              }\n"
    "#endif\n"
    "            /* the first K block writes C (unless acc), the others add */\n"
    "            const long i0 = m0 + ib * MR;\n"
    "            const long mr = M - i0 < MR ? M - i0 : MR;\n"
    "            for (long ii = 0; ii < mr; ii++) {\n"
    "              @T@ *const d = C + (i0 + ii) * N + n0 + j0;\n"
    "              if (k0 || acc)\n"
    "                for (long jj = 0; jj < nr; jj++)\n"
    "                  d[jj] += tile[ii * NR + jj];\n"
    "              else\n"
    "                for (long jj = 0; jj < nr; jj++)\n"
    "                  d[jj] = tile[ii * NR + jj];\n"
    "            }\n"
    "          }\n"
    "        }\n"
    "      }\n"
    "    }\n"
    "  }\n"
    "}\n"
    "#undef MR\n"
    "#undef NR\n"
    "#undef KC\n"
    "#undef MC\n"
    "#undef NC\n";

/* Column panel width: 16 floats or 8 doubles, two AVX registers. */
int kernel_nr(int f64) { return f64 ? 8 : 16; }

/* Elements of packing scratch a product with inner dimension K needs. */
int64_t kernel_pack_elems(int f64, int64_t M, int64_t N, int64_t K) {
  /* as the kernel lays it out: KC=256, MC=120, NC=1024, MR=6 */
  int64_t nr = kernel_nr(f64), kcap = K < 256 ? K : 256;
  int64_t ncap = ((N < 1024 ? N : 1024) + nr - 1) / nr * nr;
  int64_t mcap = ((M < 120 ? M : 120) + 5) / 6 * 6;
  return kcap * ncap + mcap * kcap + 6 * nr;
}

void emit_gemm(StrBuf *o, const char *name, int f64, int is_static) {
  char nr[8];
  snprintf(nr, sizeof nr, "%d", kernel_nr(f64));
  for (const char *p = gemm_template; *p;) {
    if (*p == '@') {
      const char *end = strchr(p + 1, '@');
      size_t n = (size_t)(end - p - 1);
      if (n == 1 && p[1] == 'T')
        sb_puts(o, f64 ? "double" : "float");
      else if (n == 2 && memcmp(p + 1, "NR", 2) == 0)
        sb_puts(o, nr);
      else if (n == 4 && memcmp(p + 1, "NAME", 4) == 0)
        sb_puts(o, name);
      else if (n == 7 && memcmp(p + 1, "LINKAGE", 7) == 0)
        sb_puts(o, is_static ? "static " : "");
      p = end + 1;
    } else {
      sb_putc(o, *p++);
    }
  }
}

/* tanh for f32 as a ratio of odd and even polynomials on [-7.9, 7.9]
 * (the approximation Eigen uses): pure arithmetic, so the compiler
 * vectorizes the loops that call it, where libm's tanhf is a scalar call.
 * Largest error against tanh in f64: 3.4e-7 relative (6 ulp), measured
 * over [-12, 12] and down to 1e-8. */
void emit_tanhf(StrBuf *o, const char *name, int is_static) {
  sb_printf(o,
            "%sfloat %s(float x)\n{\n"
            "  const float c = 7.90531110763549805f;\n"
            "  const float y = x < -c ? -c : (x > c ? c : x), y2 = y * y;\n"
            "  float p = -2.76076847742355e-16f;\n"
            "  p = p * y2 + 2.00018790482477e-13f;\n"
            "  p = p * y2 - 8.60467152213735e-11f;\n"
            "  p = p * y2 + 5.12229709037114e-08f;\n"
            "  p = p * y2 + 1.48572235717979e-05f;\n"
            "  p = p * y2 + 6.37261928875436e-04f;\n"
            "  p = p * y2 + 4.89352455891786e-03f;\n"
            "  float q = 1.19825839466702e-06f;\n"
            "  q = q * y2 + 1.18534705686654e-04f;\n"
            "  q = q * y2 + 2.26843463243900e-03f;\n"
            "  q = q * y2 + 4.89352518554385e-03f;\n"
            "  return y * p / q;\n}\n\n",
            is_static ? "static inline " : "", name);
}

/* exp for f32 (Cephes' expf): x = n ln2 + r with |r| <= ln2/2, e^r by a
 * degree-6 polynomial, 2^n put straight into the exponent bits; branch-free,
 * so the compiler vectorizes loops that call it, where libm's expf is a
 * scalar call. Below -86 it gives 0 (the true value is under 4.4e-38), above
 * ln(FLT_MAX) +infinity; NaN stays NaN. Largest error against exp in f64:
 * see tests/test_rules.c (under 2 ulp on [-86, 88.7]). */
void emit_expf(StrBuf *o, const char *name, int is_static) {
  sb_printf(o,
            "%sfloat %s(float x)\n{\n"
            "  union { uint32_t i; float f; } t, inf;\n"
            "  const float hi = 88.72283935546875f, lo = -86.0f;\n"
            "  const float xc = x < lo ? lo : (x > hi ? hi : x);\n"
            "  /* n = round(xc / ln 2) by adding 1.5 * 2^23: no float-to-int\n"
            "     conversion, which would keep the loop from vectorizing */\n"
            "  float n, p, r;\n"
            "  t.f = xc * 1.44269504088896341f + 12582912.0f;\n"
            "  n = t.f - 12582912.0f;\n"
            "  r = (xc - n * 0.693359375f) - n * -2.12194440e-4f;\n"
            "  p = 1.9875691500e-4f;\n"
            "  p = p * r + 1.3981999507e-3f;\n"
            "  p = p * r + 8.3334519073e-3f;\n"
            "  p = p * r + 4.1665795894e-2f;\n"
            "  p = p * r + 1.6666665459e-1f;\n"
            "  p = p * r + 5.0000001201e-1f;\n"
            "  p = p * r * r + r + 1.0f;\n"
            "  /* 2^(n-1) from its exponent bits (n-1 in [-125, 127]) */\n"
            "  t.i = ((t.i - 0x4B400000u + 126u) & 0xffu) << 23;\n"
            "  inf.i = 0x7f800000u;\n"
            "  return x > hi ? inf.f : (x < lo ? 0.0f : p * t.f * 2.0f);\n}\n\n",
            is_static ? "static inline " : "", name);
}

/* For the TinyCC JIT only (the runtime compiles them ahead of time; a
 * generated .c file never calls them): work TinyCC would do in scalar
 * loops with every value on the stack.
 *   NAME_tanh_f32: x[i] = tanh(x[i]) over n elements, vectorized;
 *   NAME_matmul_T: C = op(A) op(B) for products too narrow for the packed
 *   kernel (N < 4), summed in the order the generated loops use. */
const char *const row_op_names[ROW_NOPS] = {
    "ADD", "SUB", "MUL", "DIV", "NEG", "TANH", "EXP", "SIGMOID", "COPY", "ACC",
    "RELU", "MAXIMUM", "MINIMUM", "LT", "LE", "GT", "GE", "EQ", "NE"};

void emit_jit_helpers(StrBuf *o) {
  /* static copies: an exported agc_tanhf may be interposed (-fPIC), so
     the compiler would not inline, and so not vectorize, a call to it */
  emit_tanhf(o, "tanhf_inline", 1);
  /* Row kernels: the JIT runs an element-wise loop body as a sequence of
     these over rows (chunks of at most 256 elements), see emit.c. An
     operand is a pointer with a stride of 1 (a row) or 0 (one value). */
  emit_expf(o, "expf_inline", 1);
  sb_puts(o,
          "#define AGC_ROW_LOOP(EXPR) \\\n"
          "  if (sa && sb) for (long i = 0; i < n; i++) { const float x = a[i], y = b[i]; (void)y; o[i] = EXPR; } \\\n"
          "  else if (sa) { const float y = b[0]; (void)y; for (long i = 0; i < n; i++) { const float x = a[i]; o[i] = EXPR; } } \\\n"
          "  else if (sb) { const float x = a[0]; for (long i = 0; i < n; i++) { const float y = b[i]; (void)y; o[i] = EXPR; } } \\\n"
          "  else { const float x = a[0], y = b[0]; (void)y; for (long i = 0; i < n; i++) o[i] = EXPR; }\n\n"
          "static void row1(int op, long n, const float *a, long sa,\n"
          "                 const float *b, long sb, float *o)\n{\n"
          "  switch (op) {\n"
          "  case AGC_ROW_ADD: AGC_ROW_LOOP(x + y) break;\n"
          "  case AGC_ROW_SUB: AGC_ROW_LOOP(x - y) break;\n"
          "  case AGC_ROW_MUL: AGC_ROW_LOOP(x * y) break;\n"
          "  case AGC_ROW_DIV: AGC_ROW_LOOP(x / y) break;\n"
          "  case AGC_ROW_NEG: AGC_ROW_LOOP(-x) break;\n"
          "  case AGC_ROW_TANH: AGC_ROW_LOOP(tanhf_inline(x)) break;\n"
          "  case AGC_ROW_EXP: AGC_ROW_LOOP(expf_inline(x)) break;\n"
          "  case AGC_ROW_SIGMOID: AGC_ROW_LOOP(1.0f / (1.0f + expf_inline(-x))) break;\n"
          "  case AGC_ROW_COPY: AGC_ROW_LOOP(x) break;\n"
          "  case AGC_ROW_RELU: AGC_ROW_LOOP(x > 0.0f ? x : 0.0f) break;\n"
          "  case AGC_ROW_MAXIMUM: AGC_ROW_LOOP(x > y ? x : y) break;\n"
          "  case AGC_ROW_MINIMUM: AGC_ROW_LOOP(x < y ? x : y) break;\n"
          "  case AGC_ROW_LT: AGC_ROW_LOOP((float)(x < y)) break;\n"
          "  case AGC_ROW_LE: AGC_ROW_LOOP((float)(x <= y)) break;\n"
          "  case AGC_ROW_GT: AGC_ROW_LOOP((float)(x > y)) break;\n"
          "  case AGC_ROW_GE: AGC_ROW_LOOP((float)(x >= y)) break;\n"
          "  case AGC_ROW_EQ: AGC_ROW_LOOP((float)(x == y)) break;\n"
          "  case AGC_ROW_NE: AGC_ROW_LOOP((float)(x != y)) break;\n"
          "  case AGC_ROW_ACC: /* o += a */\n"
          "    if (sa) for (long i = 0; i < n; i++) o[i] += a[i];\n"
          "    else for (long i = 0; i < n; i++) o[i] += a[0];\n"
          "    break;\n"
          "  default: break;\n  }\n}\n\n"
          "/* T rows of n: row t of an operand starts rs elements after row\n"
          "   t - 1, of the result ors elements after (0: every row adds into\n"
          "   the same one, for AGC_ROW_ACC) */\n"
          "void agc_row_f32(int op, long T, long n, const float *a, long ars,\n"
          "                 long sa, const float *b, long brs, long sb, float *o,\n"
          "                 long ors)\n{\n"
          "  if (!b)\n    b = a, brs = ars, sb = sa; /* unary: b unused */\n"
          "  for (long t = 0; t < T; t++, a += ars, b += brs, o += ors)\n"
          "    row1(op, n, a, sa, b, sb, o);\n}\n\n"
          "double agc_row_sum_f32(long T, long n, const float *a, long ars, long sa)\n{\n"
          "  double s = 0.0;\n"
          "  for (long t = 0; t < T; t++)\n"
          "    for (long i = 0; i < n; i++)\n      s += a[t * ars + i * sa];\n"
          "  return s;\n}\n\n"
          "void agc_row_accd_f32(long T, long n, const float *a, long ars, long sa,\n"
          "                      double *o)\n{\n"
          "  for (long t = 0; t < T; t++)\n"
          "    for (long i = 0; i < n; i++)\n      o[i] += a[t * ars + i * sa];\n}\n\n");
  /* im2col / col2im for one image, and max/avg pooling with their
     gradients over NC planes: the loops emit.c writes for the .c file,
     with the sizes as arguments */
  sb_puts(o,
          "void agc_im2col_f32(const float *x, long C, long H, long W, long KH,\n"
          "                    long KW, long st, long pad, long OH, long OW,\n"
          "                    float *col, int back)\n{\n"
          "  for (long c = 0; c < C; c++)\n"
          "    for (long kh = 0; kh < KH; kh++)\n"
          "      for (long kw = 0; kw < KW; kw++)\n"
          "        for (long oh = 0; oh < OH; oh++) {\n"
          "          float *const r = col + ((c * KH + kh) * KW + kw) * (OH * OW) + oh * OW;\n"
          "          const long ih = oh * st + kh - pad;\n"
          "          for (long ow = 0; ow < OW; ow++) {\n"
          "            const long iw = ow * st + kw - pad;\n"
          "            const int in = ih >= 0 && ih < H && iw >= 0 && iw < W;\n"
          "            if (back) { /* col2im: x is the gradient, written */\n"
          "              if (in) ((float *)x)[(c * H + ih) * W + iw] += r[ow];\n"
          "            } else {\n"
          "              r[ow] = in ? x[(c * H + ih) * W + iw] : 0.0f;\n"
          "            }\n"
          "          }\n"
          "        }\n}\n\n"
          "void agc_pool_f32(int op, const float *x, const float *g, long NC,\n"
          "                  long H, long W, long k, long st, long OH, long OW,\n"
          "                  float *d)\n{\n"
          "  /* op: 0 max, 1 max gradient, 2 avg, 3 avg gradient */\n"
          "  if (op == 1 || op == 3)\n"
          "    for (long i = 0; i < NC * H * W; i++) d[i] = 0.0f;\n"
          "  for (long p = 0; p < NC; p++)\n"
          "    for (long oh = 0; oh < OH; oh++)\n"
          "      for (long ow = 0; ow < OW; ow++) {\n"
          "        const long yi = (p * OH + oh) * OW + ow;\n"
          "        if (op >= 2) {\n"
          "          float s = 0.0f, gv = op == 3 ? g[yi] / (float)(k * k) : 0.0f;\n"
          "          for (long kh = 0; kh < k; kh++)\n"
          "            for (long kw = 0; kw < k; kw++) {\n"
          "              const long xi = (p * H + oh * st + kh) * W + ow * st + kw;\n"
          "              if (op == 2) s += x[xi]; else d[xi] += gv;\n"
          "            }\n"
          "          if (op == 2) d[yi] = s / (float)(k * k);\n"
          "          continue;\n"
          "        }\n"
          "        /* the first maximum in scan order, as PyTorch's CPU kernel */\n"
          "        long best = (p * H + oh * st) * W + ow * st;\n"
          "        for (long kh = 0; kh < k; kh++)\n"
          "          for (long kw = 0; kw < k; kw++) {\n"
          "            const long xi = (p * H + oh * st + kh) * W + ow * st + kw;\n"
          "            if (x[xi] > x[best]) best = xi;\n"
          "          }\n"
          "        if (op == 0) d[yi] = x[best]; else d[best] += g[yi];\n"
          "      }\n}\n\n");
  for (int f64 = 0; f64 <= 1; f64++) {
    const char *t = f64 ? "double" : "float";
    sb_printf(o,
              "void agc_matmul_%s(long M, long N, long K, const %s *A, "
              "long sai, long sak,\n    const %s *B, long sbk, long sbj, "
              "%s *C)\n{\n"
              "  for (long i = 0; i < M; i++)\n"
              "    for (long j = 0; j < N; j++) {\n"
              "      %s s = 0;\n"
              "      for (long k = 0; k < K; k++)\n"
              "        s += A[i * sai + k * sak] * B[k * sbk + j * sbj];\n"
              "      C[i * N + j] = s;\n"
              "    }\n}\n\n",
              f64 ? "f64" : "f32", t, t, t, t);
  }
}
