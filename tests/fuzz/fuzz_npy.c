/* fuzz_npy.c — the .npy reader (runtime/npy.c): any file gives an array
 * whose element count matches its shape and whose bytes are all there, or
 * a one-line error; never a crash, a leak or an allocation the file does
 * not back. The shaped reader (the one `agc run` uses) sees the same
 * bytes. Converting what was read exercises agc_array_convert. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "agc_rt.h"

static char path[64];

static void setup(void) {
  if (path[0])
    return;
  snprintf(path, sizeof path, "/tmp/agc-fuzz-npy-%ld.npy", (long)getpid());
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  setup();
  FILE *f = fopen(path, "wb");
  if (!f)
    abort();
  if (size && fwrite(data, 1, size, f) != size)
    abort();
  fclose(f);
  agc_array a;
  char err[512];
  if (agc_npy_read(path, &a, err, sizeof err) == 0) {
    int64_t n = 1;
    for (int i = 0; i < a.rank; i++)
      n *= a.dims[i];
    if (n != a.count || (a.count && !a.data))
      abort();
    /* every byte is there: touch the last one */
    if (a.count) {
      volatile unsigned char last =
          ((unsigned char *)a.data)[a.count * (int64_t)agc_dtype_size(a.dtype) - 1];
      (void)last;
    }
    if (a.dtype != AGC_I32)
      agc_array_convert(&a, a.dtype == AGC_F32 ? AGC_F64 : AGC_F32, err,
                        sizeof err);
    agc_array_free(&a);
  } else if (strncmp(err, path, strlen(path)) != 0 || strchr(err, '\n')) {
    abort(); /* one line, naming the file */
  }
  int64_t dims[2] = {3, 2};
  if (agc_npy_read_shaped(path, &a, 2, dims, err, sizeof err) == 0) {
    if (a.rank != 2 || a.dims[0] != 3 || a.dims[1] != 2 || a.count != 6)
      abort();
  }
  agc_array_free(&a);
  unlink(path);
  return 0;
}
