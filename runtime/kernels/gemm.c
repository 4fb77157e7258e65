/* gemm.c — the matrix-product kernel.
 *
 * One source serves both uses: the build compiles it ahead of time, for f32
 * and f64, into the runtime that the TinyCC JIT calls (tcc does not
 * vectorize, gcc -O3 does), and embeds the text between the AGC-EMBED
 * markers into agc, which copies it into every generated .c file that has a
 * matrix product (the file stays self-contained), with AGC_T,
 * AGC_GEMM and AGC_LINKAGE replaced (compiler/kernels.c).
 *
 * C[M,N] (+)= op(A) @ op(B) (adding when acc), with element (i,k) of op(A)
 * at A[i*sai + k*sak] and (k,j) of op(B) at B[k*sbk + j*sbj]: every
 * transpose variant is a choice of strides, nothing is transposed in
 * memory. As in BLIS, A is packed in blocks of MC rows by KC columns (L2),
 * B in blocks of KC rows by NC columns, as panels of NR columns (L1), both
 * into `pack` (workspace sized for the product by kernel_pack_elems); a
 * block of MR x NR accumulators runs down each panel: with GNU C (gcc,
 * clang) as vector registers, elsewhere (tcc) as plain loops.
 *
 * The vector width comes from the compiler's target macros where the file
 * is compiled: 64 bytes with AVX-512 (__AVX512F__), else 32 (AVX2, and
 * what GNU C makes of 32-byte vectors on NEON or SSE); a panel is two
 * vectors wide (NR = 32 or 16 floats, 16 or 8 doubles). Each element of C
 * is summed in the same order whatever NR is, so the result does not
 * depend on the width. agc sizes the packing scratch for the widest.
 */
#include "agc_kernels.h"

#include <stdint.h>

#ifndef AGC_T /* the f32 kernel; the build sets these for f64 */
#define AGC_T float
#define AGC_GEMM agc_gemm_f32
#endif
#define AGC_LINKAGE

/* AGC-EMBED-BEGIN */
#ifndef AGC_VEC_BYTES
#if defined(__AVX512F__)
#define AGC_VEC_BYTES 64
#else
#define AGC_VEC_BYTES 32
#endif
#endif
#define MR 6
#define NR (2 * AGC_VEC_BYTES / (long)sizeof(AGC_T))
#define KC 256
#define MC 120
#define NC 1024
AGC_LINKAGE void AGC_GEMM(long M, long N, long K, const AGC_T *A, long sai,
    long sak, const AGC_T *B, long sbk, long sbj, AGC_T *C, int acc,
    AGC_T *pack)
{
#if defined(__GNUC__) && !defined(__TINYC__)
  /* GNU C vectors: two registers of NR/2 lanes per row of the block */
  typedef AGC_T vec __attribute__((vector_size(AGC_VEC_BYTES),
                                 aligned(sizeof(AGC_T)), may_alias));
#endif
  if (sak == 1 && sbk == 1 && N < 16 && K >= 32) {
    /* Both operands run along k in memory and C is narrow (the gradient
       of a convolution's kernel: 8 x 9 outputs, each a sum of 784
       products): packing would pad each row of B to NR columns, so each
       element is a dot product instead. Its 16 partial sums (lane k % 16,
       in order of k), then added in a fixed tree, whatever the vector
       width: the same order for every copy of this kernel. The choice
       depends on N, K and the strides, never on M, so a product split
       into bands of rows (gemm_mt.c) sums every element alike. */
    for (long i = 0; i < M; i++)
      for (long j = 0; j < N; j++) {
        const AGC_T *const a = A + i * sai, *const b = B + j * sbj;
        AGC_T part[16];
        long k = 0;
#if defined(__GNUC__) && !defined(__TINYC__)
        enum { VL = AGC_VEC_BYTES / (long)sizeof(AGC_T), NV = 16 / VL };
        vec v[NV];
        for (int q = 0; q < NV; q++)
          v[q] = (vec){0};
        for (; k + 16 <= K; k += 16)
          for (int q = 0; q < NV; q++)
            v[q] += *(const vec *)(a + k + q * VL) * *(const vec *)(b + k + q * VL);
        for (int q = 0; q < NV; q++)
          for (int l = 0; l < VL; l++)
            part[q * VL + l] = v[q][l];
#else
        for (int l = 0; l < 16; l++)
          part[l] = 0;
        for (; k + 16 <= K; k += 16)
          for (int l = 0; l < 16; l++)
            part[l] += a[k + l] * b[k + l];
#endif
        for (; k < K; k++)
          part[k & 15] += a[k] * b[k];
        for (int h = 8; h >= 1; h /= 2)
          for (int l = 0; l < h; l++)
            part[l] += part[l + h];
        C[i * N + j] = acc ? C[i * N + j] + part[0] : part[0];
      }
    return;
  }
  /* The micro-kernel reads the packed panels a whole vector at a time:
     they start on a 64-byte line (kernel_pack_elems leaves room), or with
     the workspace 16 bytes past a line (as large heap blocks are) every
     load spans two lines: the large MLP step took 10-25% longer. */
  pack = (AGC_T *)(void *)(((uintptr_t)(void *)pack + 63) & ~(uintptr_t)63);
  /* C at most half a panel wide (10 columns): each row of A is used by
     one panel only, so whole MR-row panels of A are read where they are
     instead of packed first (the same products in the same order) */
#if defined(__GNUC__) && !defined(__TINYC__)
  const int direct = N <= NR / 2;
#else
  const int direct = 0; /* the plain loops read packed A only */
#endif
  /* scratch, sized for this product: a KC x NC block of B in NR-column
     panels, an MC x KC block of A in MR-row panels, an MR x NR tile */
  const long kcap = K < KC ? K : KC;
  const long ncap = ((N < NC ? N : NC) + NR - 1) / NR * NR;
  const long mcap = ((M < MC ? M : MC) + MR - 1) / MR * MR;
  AGC_T *const pb = pack, *const pa = pack + kcap * ncap;
  AGC_T *const tile = pa + mcap * kcap;
  for (long n0 = 0; n0 < N; n0 += NC) {
    const long nc = N - n0 < NC ? N - n0 : NC;
    for (long k0 = 0; k0 < K; k0 += KC) {
      const long kc = K - k0 < KC ? K - k0 : KC;
      /* panel p of B holds columns p*NR..: element (k, jj) at k*NR + jj.
         Packing is a copy, but on a 256x1024x1024 product it took 15% of
         the time as one generic loop; each common layout reads its
         operand along its rows, in runs of constant length the compiler
         vectorizes */
      const long nfull = nc / NR; /* whole panels */
      long jdone = 0; /* panels a layout's own loop packed */
      if (sbj == 1) { /* B row-major: NR floats of a row to each panel */
        for (long k = 0; k < kc; k++) {
          const AGC_T *const bs = B + (k0 + k) * sbk + n0;
          for (long jp = 0; jp < nfull; jp++)
            for (long jj = 0; jj < NR; jj++)
              pb[(jp * kc + k) * NR + jj] = bs[jp * NR + jj];
        }
        jdone = nfull;
      } else if (sbk == 1) { /* B transposed: a panel's columns are rows */
        for (long jp = 0; jp < nfull; jp++)
          for (long jj = 0; jj < NR; jj++)
            for (long k = 0; k < kc; k++)
              pb[(jp * kc + k) * NR + jj] = B[k0 + k + (n0 + jp * NR + jj) * sbj];
        jdone = nfull;
      }
      for (long jp = jdone; jp * NR < nc; jp++)
        for (long k = 0; k < kc; k++) /* any strides; the last panel */
          for (long jj = 0; jj < NR; jj++)
            pb[(jp * kc + k) * NR + jj] =
                jp * NR + jj < nc
                    ? B[(k0 + k) * sbk + (n0 + jp * NR + jj) * sbj]
                    : 0;
      for (long m0 = 0; m0 < M; m0 += MC) {
        const long mc = M - m0 < MC ? M - m0 : MC;
        /* panel ib of A holds rows ib*MR..: element (ii, k) at k*MR + ii */
        for (long ib = 0; ib * MR < mc; ib++) {
          const long mr = mc - ib * MR < MR ? mc - ib * MR : MR;
          const AGC_T *const as = A + (m0 + ib * MR) * sai + k0 * sak;
          AGC_T *const pd = pa + ib * kc * MR;
          if (direct && mr == MR)
            continue;
          if (mr == MR && sai == 1) /* A transposed: MR floats in a row */
            for (long k = 0; k < kc; k++)
              for (long ii = 0; ii < MR; ii++)
                pd[k * MR + ii] = as[ii + k * sak];
          else if (mr == MR && sak == 1) /* A row-major: along its rows */
            for (long ii = 0; ii < MR; ii++)
              for (long k = 0; k < kc; k++)
                pd[k * MR + ii] = as[ii * sai + k];
          else
            for (long k = 0; k < kc; k++)
              for (long ii = 0; ii < MR; ii++)
                pd[k * MR + ii] = ii < mr ? as[ii * sai + k * sak] : 0;
        }
        for (long j0 = 0; j0 < nc; j0 += NR) {
          const long nr = nc - j0 < NR ? nc - j0 : NR;
          const AGC_T *const bp = pb + j0 * kc;
          for (long ib = 0; ib * MR < mc; ib++) {
            const AGC_T *const ap = pa + ib * kc * MR;
            const long i0 = m0 + ib * MR;
#if defined(__GNUC__) && !defined(__TINYC__)
            vec c[MR][2];
            for (int ii = 0; ii < MR; ii++)
              c[ii][0] = c[ii][1] = (vec){0};
            if (direct && i0 + MR <= M) { /* A where it is (above) */
              const AGC_T *const as = A + i0 * sai + k0 * sak;
              for (long k = 0; k < kc; k++) {
                const vec b0 = *(const vec *)(bp + k * NR);
                for (int ii = 0; ii < MR; ii++)
                  c[ii][0] += as[ii * sai + k * sak] * b0;
              }
            } else if (nr <= NR / 2) /* a narrow panel (C of 10 columns):
                                        its left half, the same sums at half
                                        the work */
              for (long k = 0; k < kc; k++) {
                const vec b0 = *(const vec *)(bp + k * NR);
                for (int ii = 0; ii < MR; ii++)
                  c[ii][0] += ap[k * MR + ii] * b0;
              }
            else
              for (long k = 0; k < kc; k++) {
                const vec b0 = *(const vec *)(bp + k * NR);
                const vec b1 = *(const vec *)(bp + k * NR + NR / 2);
                for (int ii = 0; ii < MR; ii++) {
                  const AGC_T x = ap[k * MR + ii];
                  c[ii][0] += x * b0;
                  c[ii][1] += x * b1;
                }
              }
            if (i0 + MR <= M && j0 + NR <= nc) {
              /* a whole tile: straight from the registers into C */
              for (int ii = 0; ii < MR; ii++) {
                vec *const d0 = (vec *)(C + (i0 + ii) * N + n0 + j0);
                vec *const d1 = (vec *)(C + (i0 + ii) * N + n0 + j0 + NR / 2);
                if (k0 || acc) {
                  *d0 += c[ii][0];
                  *d1 += c[ii][1];
                } else {
                  *d0 = c[ii][0];
                  *d1 = c[ii][1];
                }
              }
              continue;
            }
            for (int ii = 0; ii < MR; ii++) {
              *(vec *)(tile + ii * NR) = c[ii][0];
              *(vec *)(tile + ii * NR + NR / 2) = c[ii][1];
            }
#else
            for (long t = 0; t < MR * NR; t++)
              tile[t] = 0;
            for (long k = 0; k < kc; k++)
              for (long ii = 0; ii < MR; ii++) {
                const AGC_T x = ap[k * MR + ii];
                for (long jj = 0; jj < NR; jj++)
                  tile[ii * NR + jj] += x * bp[k * NR + jj];
              }
#endif
            /* the first K block writes C (unless acc), the others add */
            const long mr = M - i0 < MR ? M - i0 : MR;
            for (long ii = 0; ii < mr; ii++) {
              AGC_T *const d = C + (i0 + ii) * N + n0 + j0;
              if (k0 || acc)
                for (long jj = 0; jj < nr; jj++)
                  d[jj] += tile[ii * NR + jj];
              else
                for (long jj = 0; jj < nr; jj++)
                  d[jj] = tile[ii * NR + jj];
            }
          }
        }
      }
    }
  }
}
#undef MR
#undef NR
#undef KC
#undef MC
#undef NC
/* AGC-EMBED-END */
