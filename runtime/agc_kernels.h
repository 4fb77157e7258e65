/* agc_kernels.h — kernels compiled ahead of time for the TinyCC JIT.
 * Their source is runtime/kernels/ (see there for the meaning of the
 * arguments); generated .c files carry the same text. */
#ifndef AGC_KERNELS_H
#define AGC_KERNELS_H

void agc_gemm_f32(long M, long N, long K, const float *A, long sai, long sak,
                  const float *B, long sbk, long sbj, float *C, int acc,
                  float *pack);
void agc_gemm_f64(long M, long N, long K, const double *A, long sai, long sak,
                  const double *B, long sbk, long sbj, double *C, int acc,
                  double *pack);
/* the same on up to T threads, pack_each elements of scratch each
   (gemm_mt.c) */
void agc_gemm_mt_f32(long M, long N, long K, const float *A, long sai,
                     long sak, const float *B, long sbk, long sbj, float *C,
                     int acc, float *pack, long pack_each, int T);
void agc_gemm_mt_f64(long M, long N, long K, const double *A, long sai,
                     long sak, const double *B, long sbk, long sbj,
                     double *C, int acc, double *pack, long pack_each, int T);

float agc_tanhf(float x);
float agc_expf(float x);
void agc_row_f32(int op, long T, long n, const float *a, long ars, long sa,
                 const float *b, long brs, long sb, float *o, long ors);
double agc_row_sum_f32(long T, long n, const float *a, long ars, long sa);
void agc_row_accd_f32(long T, long n, const float *a, long ars, long sa,
                      double *o);
void agc_im2col_f32(const float *x, long C, long H, long W, long KH, long KW,
                    long st, long pad, long OH, long OW, float *col, int back);
void agc_pool_f32(int op, const float *x, const float *g, long NC, long H,
                  long W, long k, long st, long OH, long OW, float *d);
void agc_im2col_f64(const double *x, long C, long H, long W, long KH, long KW,
                    long st, long pad, long OH, long OW, double *col,
                    int back);
void agc_pool_f64(int op, const double *x, const double *g, long NC, long H,
                  long W, long k, long st, long OH, long OW, double *d);
void agc_matmul_f32(long M, long N, long K, const float *A, long sai,
                    long sak, const float *B, long sbk, long sbj, float *C);
void agc_matmul_f64(long M, long N, long K, const double *A, long sai,
                    long sak, const double *B, long sbk, long sbj, double *C);
/* fn(arg, lo, hi, k) over 0..n-1 cut into parts k on up to T threads
   (parts.c) */
void agc_parts(void (*fn)(const void *, long, long, int), const void *arg,
               long n, int T);

#endif
