/* kernels.c — the kernels' text, copied into generated C.
 *
 * The kernels are ordinary C in runtime/kernels/ (gemm.c, conv.c, tanhf.c,
 * expf.c): the build compiles them ahead of time into the runtime that the
 * TinyCC JIT calls, and embeds their text (compiler/embed.c) here, so a
 * generated .c file carries the very same code and stays self-contained.
 * Copying replaces the kernel's placeholder identifiers (AGC_T, AGC_GEMM,
 * ...) by the element type and the generated file's own names.
 */
#include <stdio.h>
#include <string.h>

#include "agc.h"

extern const char agc_text_gemm[], agc_text_im2col[], agc_text_pool[],
    agc_text_tanhf[], agc_text_expf[], agc_text_gemm_mt[], agc_text_parts[];

/* Copies text, replacing each whole identifier subst[2k] by subst[2k+1]
 * (an empty replacement also takes the space after it). */
static void copy_text(StrBuf *o, const char *text, const char *const *subst) {
  const char *p = text;
  while (*p) {
    if (p[0] == 'A' && strncmp(p, "AGC_", 4) == 0 &&
        (p == text || !(p[-1] == '_' || (p[-1] >= 'A' && p[-1] <= 'Z') ||
                        (p[-1] >= 'a' && p[-1] <= 'z') ||
                        (p[-1] >= '0' && p[-1] <= '9')))) {
      size_t n = 4;
      while (p[n] == '_' || (p[n] >= 'A' && p[n] <= 'Z') ||
             (p[n] >= '0' && p[n] <= '9') || (p[n] >= 'a' && p[n] <= 'z'))
        n++;
      int done = 0;
      for (int k = 0; subst[k] && !done; k += 2)
        if (strlen(subst[k]) == n && strncmp(p, subst[k], n) == 0) {
          sb_puts(o, subst[k + 1]);
          p += n;
          if (!subst[k + 1][0] && *p == ' ')
            p++;
          done = 1;
        }
      if (!done) {
        sb_putn(o, p, n);
        p += n;
      }
      continue;
    }
    sb_putc(o, *p++);
  }
}

/* The widest column panel of runtime/kernels/gemm.c: two AVX-512
 * registers, 32 floats or 16 doubles (the packing scratch is sized for it;
 * an AVX2 build of the file uses half). */
int kernel_nr(int f64) { return f64 ? 16 : 32; }

/* Elements of packing scratch a product with inner dimension K needs
 * (gemm.c moves its start to a 64-byte line: 64 bytes more). */
int64_t kernel_pack_elems(int f64, int64_t M, int64_t N, int64_t K) {
  /* as gemm.c lays it out: KC=256, MC=120, NC=1024, MR */
  int64_t nr = kernel_nr(f64), kcap = K < 256 ? K : 256;
  int64_t ncap = ((N < 1024 ? N : 1024) + nr - 1) / nr * nr;
  int64_t mcap = ((M < 120 ? M : 120) + KERNEL_MR - 1) / KERNEL_MR * KERNEL_MR;
  return kcap * ncap + mcap * kcap + KERNEL_MR * nr + (f64 ? 8 : 16);
}

void emit_gemm(StrBuf *o, const char *name, int f64, int is_static) {
  const char *subst[] = {"AGC_T", f64 ? "double" : "float",
                         "AGC_GEMM", name, "AGC_LINKAGE",
                         is_static ? "static" : "", NULL};
  copy_text(o, agc_text_gemm, subst);
}

/* the threaded product that runs the file's product `gemm` (emit_gemm)
   through the runner `parts` (emit_parts): GEMM_mt, with its GEMM_job and
   GEMM_band */
void emit_gemm_mt(StrBuf *o, const char *gemm, const char *parts, int f64) {
  char mt[300], job[300], band[300];
  snprintf(mt, sizeof mt, "%s_mt", gemm);
  snprintf(job, sizeof job, "%s_job", gemm);
  snprintf(band, sizeof band, "%s_band", gemm);
  const char *subst[] = {"AGC_T", f64 ? "double" : "float", "AGC_GEMM", gemm,
                         "AGC_GEMM_MT", mt, "AGC_GEMM_JOB", job,
                         "AGC_GEMM_BAND", band, "AGC_PARTS", parts,
                         "AGC_LINKAGE", "static", NULL};
  copy_text(o, agc_text_gemm_mt, subst);
}

/* the runner of loop nests cut into parts (parts.c): NAME, with its
   NAME_part, NAME_run and NAME_start */
void emit_parts(StrBuf *o, const char *name) {
  char part[300], run[300], start[300];
  snprintf(part, sizeof part, "%s_part", name);
  snprintf(run, sizeof run, "%s_run", name);
  snprintf(start, sizeof start, "%s_start", name);
  const char *subst[] = {"AGC_PARTS", name, "AGC_PART", part, "AGC_PART_RUN",
                         run, "AGC_PART_START", start, "AGC_LINKAGE",
                         "static", NULL};
  copy_text(o, agc_text_parts, subst);
  sb_puts(o, "\n");
}

void emit_im2col(StrBuf *o, const char *name, int f64) {
  char rows[300]; /* its helper: NAME_rows */
  snprintf(rows, sizeof rows, "%s_rows", name);
  const char *subst[] = {"AGC_T", f64 ? "double" : "float", "AGC_IM2COL",
                         name, "AGC_IM2COL_ROWS", rows, "AGC_LINKAGE",
                         "static", NULL};
  copy_text(o, agc_text_im2col, subst);
  sb_puts(o, "\n");
}

void emit_pool(StrBuf *o, const char *name, int f64) {
  char max[300]; /* the window scan's helper: NAME_max */
  snprintf(max, sizeof max, "%s_max", name);
  const char *subst[] = {"AGC_T", f64 ? "double" : "float", "AGC_POOL",
                         name, "AGC_POOL_MAX", max, "AGC_LINKAGE", "static",
                         NULL};
  copy_text(o, agc_text_pool, subst);
  sb_puts(o, "\n");
}

void emit_tanhf(StrBuf *o, const char *name, int is_static) {
  const char *subst[] = {"AGC_TANHF", name, "AGC_LINKAGE",
                         is_static ? "static inline" : "", NULL};
  copy_text(o, agc_text_tanhf, subst);
  sb_puts(o, "\n");
}

void emit_expf(StrBuf *o, const char *name, int is_static) {
  const char *subst[] = {"AGC_EXPF", name, "AGC_LINKAGE",
                         is_static ? "static inline" : "", NULL};
  copy_text(o, agc_text_expf, subst);
  sb_puts(o, "\n");
}

const char *const row_op_names[ROW_NOPS] = {
#define X(name, expr) #name,
#define Y(name) #name,
#include "../runtime/kernels/row_ops.def"
#undef X
#undef Y
};
