/* variant.h — the kernels once more for one instruction set.
 *
 * On x86-64 the build compiles runtime/kernels/ three times: plainly (any
 * x86-64), with -mavx2 -mfma and with -mavx512f (runtime/meson.build); the
 * JIT links the one the CPU runs best (jit.c, agc_kernel_variant). The two
 * extra copies are compiled with this file included first (-include) and
 * AGC_VARIANT set to their suffix, so that every exported name gets it:
 * agc_gemm_f32 becomes agc_gemm_f32_avx2. The vector width follows the
 * instruction set (gemm.c reads __AVX512F__).
 */
#ifndef AGC_VARIANT_H
#define AGC_VARIANT_H

#define AGC_V_CAT_(n, s) n##s
#define AGC_V_CAT(n, s) AGC_V_CAT_(n, s)
#define AGC_V(n) AGC_V_CAT(n, AGC_VARIANT)

#define agc_gemm_f32 AGC_V(agc_gemm_f32)
#define agc_gemm_f64 AGC_V(agc_gemm_f64)
#define agc_gemm_mt_f32 AGC_V(agc_gemm_mt_f32)
#define agc_gemm_mt_f64 AGC_V(agc_gemm_mt_f64)
#define agc_tanhf AGC_V(agc_tanhf)
#define agc_expf AGC_V(agc_expf)
#define agc_row_f32 AGC_V(agc_row_f32)
#define agc_row_sum_f32 AGC_V(agc_row_sum_f32)
#define agc_row_accd_f32 AGC_V(agc_row_accd_f32)
#define agc_im2col_f32 AGC_V(agc_im2col_f32)
#define agc_im2col_f64 AGC_V(agc_im2col_f64)
#define agc_pool_f32 AGC_V(agc_pool_f32)
#define agc_pool_f64 AGC_V(agc_pool_f64)
#define agc_matmul_f32 AGC_V(agc_matmul_f32)
#define agc_matmul_f64 AGC_V(agc_matmul_f64)
#define agc_parts AGC_V(agc_parts)

#endif
