/* dims_text.h — "[2, 3]" for a list of dimensions (int64_t, as a .npy
 * file gives them). Internal: shared by npy.c and the command's messages,
 * not installed. */
#ifndef AGC_DIMS_TEXT_H
#define AGC_DIMS_TEXT_H
#include <stdint.h>
#include <stdio.h>

static inline void dims_text(int rank, const int64_t *dims, char *buf,
                             size_t n) {
  size_t k = (size_t)snprintf(buf, n, "[");
  for (int i = 0; i < rank && k < n; i++)
    k += (size_t)snprintf(buf + k, n - k, "%s%lld", i ? ", " : "",
                          (long long)dims[i]);
  if (k < n)
    snprintf(buf + k, n - k, "]");
}
#endif
