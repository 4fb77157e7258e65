/* f64.c — the f64 copies of the typed kernels, for the TinyCC JIT. */
#undef AGC_T
#define AGC_T double
#define AGC_GEMM agc_gemm_f64
#define AGC_IM2COL agc_im2col_f64
#define AGC_IM2COL_ROWS agc_im2col_rows_f64
#define AGC_POOL agc_pool_f64
#define AGC_POOL_MAX agc_pool_max_f64
#define AGC_MATMUL agc_matmul_f64
#define AGC_GEMM_MT agc_gemm_mt_f64
#define AGC_GEMM_JOB agc_gemm_job_f64
#define AGC_GEMM_BAND agc_gemm_band_f64
#include "gemm.c"
#include "im2col.c"
#include "pool.c"
#include "matmul_small.c"
#include "gemm_mt.c"
