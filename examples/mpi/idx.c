/* idx.c — see idx.h. */
#include "idx.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <zlib.h>

enum { IDX_UBYTE = 0x08, MAX_DIM = 1 << 24, MAX_BYTES = 1 << 30 };

/* DIR/NAME if it exists, else DIR/NAME.gz (if neither does, the .gz name:
 * it is the one Debian ships, so the message names what is missing). */
static void find_file(const char *dir, const char *name, char *path,
                      size_t len) {
  struct stat st;
  snprintf(path, len, "%s/%s", dir, name);
  if (stat(path, &st) == 0)
    return;
  snprintf(path, len, "%s/%s.gz", dir, name);
}

/* zlib's message for f, without the "PATH: " zlib puts before it */
static const char *gz_message(gzFile f, const char *path) {
  int code;
  const char *msg = gzerror(f, &code);
  size_t n = strlen(path);
  if (code == Z_ERRNO)
    return strerror(errno);
  if (!strncmp(msg, path, n) && !strncmp(msg + n, ": ", 2))
    msg += n + 2;
  return msg;
}

/* Reads exactly len bytes; 0, or -1 with the reason in err. */
static int read_exact(gzFile f, const char *path, void *buf, size_t len,
                      const char *what, char *err, size_t errlen) {
  size_t got = 0;
  while (got < len) {
    unsigned chunk = len - got > (1u << 30) ? 1u << 30 : (unsigned)(len - got);
    int r = gzread(f, (char *)buf + got, chunk);
    if (r < 0) {
      snprintf(err, errlen, "%s: cannot read %s: %s", path, what,
               gz_message(f, path));
      return -1;
    }
    if (r == 0) {
      snprintf(err, errlen,
               "%s: file is truncated: expected %zu bytes of %s, found %zu",
               path, len, what, got);
      return -1;
    }
    got += (size_t)r;
  }
  return 0;
}

static uint32_t be32(const unsigned char *b) {
  return (uint32_t)b[0] << 24 | (uint32_t)b[1] << 16 | (uint32_t)b[2] << 8 |
         (uint32_t)b[3];
}

/* Reads one IDX file of unsigned bytes with ndim dimensions into *data
 * (malloc'd) and its dimensions into dims. */
static int read_idx(const char *path, int ndim, long *dims, uint8_t **data,
                    char *err, size_t errlen) {
  *data = NULL;
  errno = 0;
  gzFile f = gzopen(path, "rb");
  if (!f) {
    snprintf(err, errlen, "%s: cannot open: %s", path,
             errno ? strerror(errno) : "out of memory");
    return -1;
  }
  unsigned char head[4 + 4 * 3];
  if (read_exact(f, path, head, 4, "the magic number", err, errlen))
    goto fail;
  uint32_t magic = be32(head);
  if (magic != (uint32_t)(IDX_UBYTE << 8 | ndim)) {
    snprintf(err, errlen,
             "%s: not an IDX file of unsigned bytes with %d dimension%s "
             "(magic number 0x%08x, expected 0x%08x)",
             path, ndim, ndim == 1 ? "" : "s", (unsigned)magic,
             (unsigned)(IDX_UBYTE << 8 | ndim));
    goto fail;
  }
  if (read_exact(f, path, head + 4, 4 * (size_t)ndim, "the dimensions", err,
                 errlen))
    goto fail;
  size_t total = 1;
  for (int k = 0; k < ndim; k++) {
    uint32_t d = be32(head + 4 + 4 * k);
    if (d == 0 || d > MAX_DIM) {
      snprintf(err, errlen, "%s: dimension %d is %u (expected 1..%d)", path,
               k, (unsigned)d, MAX_DIM);
      goto fail;
    }
    dims[k] = (long)d;
    total *= d;
    if (total > MAX_BYTES) {
      snprintf(err, errlen, "%s: the data would be over %d bytes", path,
               MAX_BYTES);
      goto fail;
    }
  }
  *data = malloc(total);
  if (!*data) {
    snprintf(err, errlen, "%s: out of memory for %zu bytes", path, total);
    goto fail;
  }
  if (read_exact(f, path, *data, total, "the data", err, errlen))
    goto fail;
  char extra;
  int r = gzread(f, &extra, 1);
  if (r != 0) {
    if (r > 0)
      snprintf(err, errlen,
               "%s: trailing bytes after the %zu data bytes the header "
               "declares",
               path, total);
    else
      snprintf(err, errlen, "%s: cannot read: %s", path,
               gz_message(f, path));
    goto fail;
  }
  gzclose(f);
  return 0;
fail:
  free(*data);
  *data = NULL;
  gzclose(f);
  return -1;
}

int idx_load(const char *dir, const char *prefix, int nclass, idx_set *set,
             char *err, size_t errlen) {
  memset(set, 0, sizeof *set);
  char name[256], ipath[4096], lpath[4096];
  long idims[3], ldims[1];
  snprintf(name, sizeof name, "%s-images-idx3-ubyte", prefix);
  find_file(dir, name, ipath, sizeof ipath);
  snprintf(name, sizeof name, "%s-labels-idx1-ubyte", prefix);
  find_file(dir, name, lpath, sizeof lpath);
  if (read_idx(ipath, 3, idims, &set->pixels, err, errlen))
    return -1;
  if (read_idx(lpath, 1, ldims, &set->labels, err, errlen)) {
    idx_free(set);
    return -1;
  }
  if (idims[0] != ldims[0]) {
    snprintf(err, errlen, "%s: %ld labels for the %ld images of %s", lpath,
             ldims[0], idims[0], ipath);
    idx_free(set);
    return -1;
  }
  for (long i = 0; i < ldims[0]; i++)
    if (set->labels[i] >= nclass) {
      snprintf(err, errlen, "%s: label %ld is %d (expected 0..%d)", lpath, i,
               set->labels[i], nclass - 1);
      idx_free(set);
      return -1;
    }
  set->n = idims[0];
  set->rows = (int)idims[1];
  set->cols = (int)idims[2];
  return 0;
}

void idx_free(idx_set *set) {
  free(set->pixels);
  free(set->labels);
  memset(set, 0, sizeof *set);
}
