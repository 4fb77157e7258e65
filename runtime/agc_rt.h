/* agc_rt.h — the agc runtime: .npy files and loading generated C as code.
 *
 * Everything here is independent of the compiler: it deals in C source text,
 * symbol names and flat arrays. Errors are returned as one-line messages in a
 * caller buffer; nothing here exits or prints.
 */
#ifndef AGC_RT_H
#define AGC_RT_H

#include <stddef.h>
#include <stdint.h>

#define AGC_MAX_RANK 8

/* ---- npy.c ------------------------------------------------------------ */

typedef enum {
  AGC_F32, /* <f4 */
  AGC_F64, /* <f8 */
  AGC_I32, /* <i4 */
} agc_dtype;

typedef struct {
  agc_dtype dtype;
  int rank;                    /* 0 for a scalar */
  int64_t dims[AGC_MAX_RANK];
  int64_t count;               /* product of dims (1 for a scalar) */
  void *data;                  /* count elements, malloc'd, C order */
} agc_array;

size_t agc_dtype_size(agc_dtype t);
const char *agc_dtype_name(agc_dtype t); /* "f32", "f64", "i32" */

/* Reads a NumPy .npy file (format 1.0/2.0/3.0, little-endian, C order,
 * dtype <f4, <f8 or <i4). Returns 0, or -1 with a one-line message in err.
 * Never trusts the header: sizes are checked against the file length.
 * Messages start with "<path>: ". *out is zeroed first, so it is safe to
 * agc_array_free() after a failure. A dimension may be 0: count is then 0
 * and data is a valid (non-NULL) empty block. */
int agc_npy_read(const char *path, agc_array *out, char *err, size_t errlen);
/* The same, for a file that must have this shape: a header with another
 * shape is an error ("<path>: shape [..], expected [..]") before any data
 * is read or allocated, so the shape bounds the memory a file can take. */
int agc_npy_read_shaped(const char *path, agc_array *out, int rank,
                        const int64_t *dims, char *err, size_t errlen);

/* Writes a .npy file (format 1.0) atomically: a temporary file in the same
 * directory, then rename. Returns 0, or -1 with a message in err.
 * The bytes are exactly numpy.save's (header padded to 64 bytes). The file
 * gets mode 0666 & ~umask; on failure an existing file is left untouched.
 * a->count must equal the product of a->dims. */
int agc_npy_write(const char *path, const agc_array *a, char *err, size_t errlen);
/* Writes the same bytes to an open file descriptor (then fsync), for a
 * caller that stages several files and renames them together; path only
 * names the file in messages. Returns 0, or -1 with a message in err. */
int agc_npy_write_fd(int fd, const char *path, const agc_array *a, char *err,
                     size_t errlen);

/* Converts a's data to dtype t in place (f32 <-> f64; i32 -> float).
 * Converting to the same dtype is a no-op; converting to i32 fails.
 * Returns 0, or -1 with a message (a is then unchanged). */
int agc_array_convert(agc_array *a, agc_dtype t, char *err, size_t errlen);

void agc_array_free(agc_array *a);

/* ---- jit.c: loading generated C --------------------------------------- */

typedef enum {
  AGC_BACKEND_TCC, /* libtcc, in-process */
  AGC_BACKEND_CC,  /* system compiler ($CC or cc) -> shared object -> dlopen */
} agc_backend;

typedef struct agc_module agc_module;

/* Compiles C source text and returns a handle, or NULL with a message.
 * AGC_BACKEND_TCC: runs with -nostdlib; generated code may call the C99
 * math functions (double and float versions), memset/memcpy/memmove, and
 * may include <stddef.h>, <stdint.h> (and <math.h>). tcc's files are taken
 * from $AGC_TCC_LIBDIR if set, else the build's tcc_libdir.
 * AGC_BACKEND_CC: runs $CC (default "cc", split on spaces) with
 * -std=c99 -O3 -march=native -ffp-contract=fast -fPIC -shared ... -lm in a
 * temporary directory under $TMPDIR (default /tmp), which is removed again;
 * flags the compiler rejects among -march=native/-ffp-contract=fast are
 * dropped and the compile retried.
 * Error messages are one line: "tcc: <compiler message>" or
 * "cc: <first error line of the compiler>". */
agc_module *agc_module_compile(const char *source, agc_backend backend,
                               char *err, size_t errlen);
/* The copy of the kernels (matrix products, convolutions, pooling, f32
 * element-wise rows, tanhf, expf) that AGC_BACKEND_TCC links: "avx512",
 * "avx2" or "generic" (plain x86-64, or the only copy on other machines),
 * the best this CPU runs; the environment's AGC_KERNELS may name a lower
 * one. NULL when AGC_KERNELS names one that is unknown or that this CPU
 * cannot run (agc_module_compile then fails with that message). */
const char *agc_kernel_variant(void);
/* Address of a symbol of the module, or NULL. Valid until
 * agc_module_free(m), which releases the code and all its memory. */
void *agc_module_symbol(agc_module *m, const char *name);
void agc_module_free(agc_module *m);

#endif
