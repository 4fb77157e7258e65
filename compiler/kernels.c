/* kernels.c — the matrix-product kernel, as C text.
 *
 * One source serves both uses: emit.c copies it into every generated .c
 * file that has a matrix product (the file stays self-contained), and the
 * build compiles the same text ahead of time with the optimizing compiler
 * into the runtime (gen_kernels.c), which hands it to the TinyCC JIT: tcc
 * does not vectorize, gcc -O3 does.
 *
 * C[M,N] = op(A) @ op(B), with element (i,k) of op(A) at A[i*sai + k*sak]
 * and (k,j) of op(B) at B[k*sbk + j*sbj]: every transpose variant is a
 * choice of strides, nothing is transposed in memory. B is packed, in
 * panels of NR columns and up to KC rows (so a panel stays in L1), into
 * `pack` (from the workspace), followed by an MR x NR result tile. A block
 * of MR x NR accumulators runs down each panel: with GNU C (gcc, clang) as
 * vector registers, elsewhere (tcc) as plain loops.
 */
#include <stdio.h>
#include <string.h>

#include "agc.h"

static const char gemm_template[] =
    "#define MR 6\n"
    "#define NR @NR@\n"
    "#define KC 512\n"
    "@LINKAGE@void @NAME@(long M, long N, long K, const @T@ *A, long sai,\n"
    "    long sak, const @T@ *B, long sbk, long sbj, @T@ *C, @T@ *pack)\n"
    "{\n"
    "#if defined(__GNUC__) && !defined(__TINYC__)\n"
    "  /* GNU C vectors: two registers of NR/2 lanes per row of the block */\n"
    "  typedef @T@ vec __attribute__((vector_size(32), aligned(sizeof(@T@)),\n"
    "                                 may_alias));\n"
    "#endif\n"
    "  for (long j0 = 0; j0 < N; j0 += NR) {\n"
    "    const long nr = N - j0 < NR ? N - j0 : NR;\n"
    "    for (long k0 = 0; k0 < K; k0 += KC) {\n"
    "      const long kc = K - k0 < KC ? K - k0 : KC;\n"
    "      /* the B panel, zero padded to NR columns */\n"
    "      for (long k = 0; k < kc; k++)\n"
    "        for (long jj = 0; jj < NR; jj++)\n"
    "          pack[k * NR + jj] =\n"
    "              jj < nr ? B[(k0 + k) * sbk + (j0 + jj) * sbj] : 0;\n"
    "      @T@ *const tile = pack + KC * NR; /* MR x NR results */\n"
    "      for (long i0 = 0; i0 < M; i0 += MR) {\n"
    "        const long mr = M - i0 < MR ? M - i0 : MR;\n"
    "        const @T@ *a = A + i0 * sai + k0 * sak;\n"
    "#if defined(__GNUC__) && !defined(__TINYC__)\n"
    "        if (mr == MR) {\n"
    "          vec c[MR][2];\n"
    "          for (int ii = 0; ii < MR; ii++)\n"
    "            c[ii][0] = c[ii][1] = (vec){0};\n"
    "          for (long k = 0; k < kc; k++) {\n"
    "            const vec b0 = *(const vec *)(pack + k * NR);\n"
    "            const vec b1 = *(const vec *)(pack + k * NR + NR / 2);\n"
    "            for (int ii = 0; ii < MR; ii++) {\n"
    "              const @T@ x = a[ii * sai + k * sak];\n"
    "              c[ii][0] += x * b0;\n"
    "              c[ii][1] += x * b1;\n"
    "            }\n"
    "          }\n"
    "          for (int ii = 0; ii < MR; ii++) {\n"
    "            *(vec *)(tile + ii * NR) = c[ii][0];\n"
    "            *(vec *)(tile + ii * NR + NR / 2) = c[ii][1];\n"
    "          }\n"
    "        } else\n"
    "#endif\n"
    "        {\n"
    "          for (long t = 0; t < MR * NR; t++)\n"
    "            tile[t] = 0;\n"
    "          for (long k = 0; k < kc; k++)\n"
    "            for (long ii = 0; ii < mr; ii++) {\n"
    "              const @T@ x = a[ii * sai + k * sak];\n"
    "              for (long jj = 0; jj < NR; jj++)\n"
    "                tile[ii * NR + jj] += x * pack[k * NR + jj];\n"
    "            }\n"
    "        }\n"
    "        /* the first K block writes C, the others add to it */\n"
    "        for (long ii = 0; ii < mr; ii++)\n"
    "          for (long jj = 0; jj < nr; jj++) {\n"
    "            @T@ *const dst = C + (i0 + ii) * N + j0 + jj;\n"
    "            *dst = k0 ? *dst + tile[ii * NR + jj] : tile[ii * NR + jj];\n"
    "          }\n"
    "      }\n"
    "    }\n"
    "  }\n"
    "}\n"
    "#undef MR\n"
    "#undef NR\n"
    "#undef KC\n";

/* Column panel width: 16 floats or 8 doubles, two AVX registers. */
int kernel_nr(int f64) { return f64 ? 8 : 16; }

/* Elements of packing scratch a product with inner dimension K needs. */
int64_t kernel_pack_elems(int f64, int64_t K) {
  (void)K; /* a K block of 512 rows, then the 6-row result tile */
  return (512 + 6) * kernel_nr(f64);
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
