/* npy.c — NumPy .npy files: a strict reader and a numpy.save-exact writer.
 *
 * The reader treats every file as hostile: the header is parsed by a small
 * recursive-descent parser for the subset of Python literals numpy writes
 * (a dict of strings, booleans and int tuples), every size is computed with
 * overflow checks and matched against the real file length before any data
 * buffer is allocated.
 */
#include "agc_rt.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "dims_text.h"

#if !defined(__BYTE_ORDER__) || __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
/* Data is copied straight between the file and memory, so the host must
 * share the files' byte order. */
#error "agc runtime: .npy I/O assumes a little-endian host"
#endif

#define NPY_MAGIC "\x93NUMPY"
#define NPY_MAGIC_LEN 6
#define NPY_ALIGN 64
/* numpy itself refuses headers over 10000 bytes unless told otherwise; a
 * rank-8 header needs a few hundred, so this only stops absurd files. */
#define NPY_MAX_HEADER (1 << 20)
/* numpy.save leaves room for the first axis to grow to this many digits. */
#define NPY_GROWTH_DIGITS 21

/* ---- small helpers ---------------------------------------------------- */

/* Formats a message into err and flattens it to one line: a path or a
 * header excerpt may contain newlines or control bytes. */
static void set_err(char *err, size_t errlen, const char *fmt, ...) {
  if (!err || errlen == 0)
    return;
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(err, errlen, fmt, ap);
  va_end(ap);
  for (char *p = err; *p; p++)
    if ((unsigned char)*p < 0x20 || *p == 0x7f)
      *p = ' ';
}

size_t agc_dtype_size(agc_dtype t) {
  switch (t) {
  case AGC_F32: return 4;
  case AGC_F64: return 8;
  case AGC_I32: return 4;
  }
  return 0;
}

const char *agc_dtype_name(agc_dtype t) {
  switch (t) {
  case AGC_F32: return "f32";
  case AGC_F64: return "f64";
  case AGC_I32: return "i32";
  }
  return "?";
}

static const char *dtype_descr(agc_dtype t) {
  switch (t) {
  case AGC_F32: return "<f4";
  case AGC_F64: return "<f8";
  case AGC_I32: return "<i4";
  }
  return NULL;
}

static bool dtype_valid(agc_dtype t) {
  return t == AGC_F32 || t == AGC_F64 || t == AGC_I32;
}

/* Product of dims into *count; false on a negative dim or int64 overflow. */
static bool checked_count(int rank, const int64_t *dims, int64_t *count) {
  int64_t n = 1;
  for (int i = 0; i < rank; i++) {
    if (dims[i] < 0)
      return false;
    if (dims[i] != 0 && n > INT64_MAX / dims[i])
      return false;
    n *= dims[i];
  }
  *count = n;
  return true;
}

void agc_array_free(agc_array *a) {
  if (!a)
    return;
  free(a->data);
  memset(a, 0, sizeof *a);
}

/* ---- header parser ---------------------------------------------------- */

typedef struct {
  const char *s;   /* header text (not NUL-terminated) */
  size_t n, i;
  char msg[160];   /* what went wrong, without the path */
} hparser;

static bool hp_fail(hparser *p, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(p->msg, sizeof p->msg, fmt, ap);
  va_end(ap);
  return false;
}

static void hp_ws(hparser *p) {
  while (p->i < p->n && (p->s[p->i] == ' ' || p->s[p->i] == '\t' ||
                         p->s[p->i] == '\n' || p->s[p->i] == '\r'))
    p->i++;
}

static bool hp_peek(hparser *p, char c) {
  hp_ws(p);
  return p->i < p->n && p->s[p->i] == c;
}

static bool hp_expect(hparser *p, char c, const char *what) {
  if (!hp_peek(p, c))
    return hp_fail(p, "malformed header (expected '%c' %s)", c, what);
  p->i++;
  return true;
}

/* A quoted string without escapes (numpy never writes any); the result
 * points into the header. */
static bool hp_string(hparser *p, const char **str, size_t *len) {
  hp_ws(p);
  if (p->i >= p->n || (p->s[p->i] != '\'' && p->s[p->i] != '"'))
    return hp_fail(p, "malformed header (expected a quoted string)");
  char q = p->s[p->i++];
  size_t start = p->i;
  while (p->i < p->n && p->s[p->i] != q)
    p->i++;
  if (p->i >= p->n)
    return hp_fail(p, "malformed header (unterminated string)");
  *str = p->s + start;
  *len = p->i - start;
  p->i++;
  return true;
}

static bool hp_word(hparser *p, const char *w) {
  size_t k = strlen(w);
  if (p->n - p->i < k || memcmp(p->s + p->i, w, k) != 0)
    return false;
  p->i += k;
  return true;
}

static bool hp_bool(hparser *p, bool *v) {
  hp_ws(p);
  if (hp_word(p, "True"))
    *v = true;
  else if (hp_word(p, "False"))
    *v = false;
  else
    return hp_fail(p, "malformed header ('fortran_order' must be True or False)");
  return true;
}

/* A non-negative decimal int; Python 2 era files may carry an 'L' suffix. */
static bool hp_dim(hparser *p, int64_t *v) {
  hp_ws(p);
  if (p->i < p->n && p->s[p->i] == '-')
    return hp_fail(p, "negative dimension in shape");
  if (p->i >= p->n || p->s[p->i] < '0' || p->s[p->i] > '9')
    return hp_fail(p, "malformed shape (expected an integer)");
  int64_t x = 0;
  while (p->i < p->n && p->s[p->i] >= '0' && p->s[p->i] <= '9') {
    int d = p->s[p->i++] - '0';
    if (x > (INT64_MAX - d) / 10)
      return hp_fail(p, "dimension too large in shape");
    x = x * 10 + d;
  }
  if (p->i < p->n && (p->s[p->i] == 'L' || p->s[p->i] == 'l'))
    p->i++;
  *v = x;
  return true;
}

/* A Python tuple of ints: (), (3,), (2, 3) or (2, 3,). "(3)" is an int in
 * Python, not a tuple, so it is rejected like numpy would. */
static bool hp_shape(hparser *p, int *rank, int64_t *dims) {
  if (!hp_expect(p, '(', "to open 'shape'"))
    return false;
  int r = 0;
  bool comma = false;
  while (!hp_peek(p, ')')) {
    if (r == AGC_MAX_RANK)
      return hp_fail(p, "rank exceeds the maximum of %d", AGC_MAX_RANK);
    if (!hp_dim(p, &dims[r++]))
      return false;
    comma = hp_peek(p, ',');
    if (comma)
      p->i++;
    else if (!hp_peek(p, ')'))
      return hp_fail(p, "malformed shape (expected ',' or ')')");
  }
  p->i++;
  if (r == 1 && !comma)
    return hp_fail(p, "malformed shape (a 1-d shape is written '(n,)')");
  *rank = r;
  return true;
}

typedef struct {
  bool has_descr, has_fortran, has_shape;
  const char *descr;
  size_t descr_len;
  bool fortran;
  int rank;
  int64_t dims[AGC_MAX_RANK];
} header_info;

static bool hp_entry(hparser *p, header_info *h) {
  const char *key;
  size_t klen;
  if (!hp_string(p, &key, &klen) || !hp_expect(p, ':', "after a key"))
    return false;
  bool *seen;
  bool ok;
  if (klen == 5 && memcmp(key, "descr", 5) == 0) {
    seen = &h->has_descr;
    if (!hp_peek(p, '\'') && !hp_peek(p, '"'))
      return hp_fail(p, "structured dtypes are not supported "
                        "(expected '<f4', '<f8' or '<i4')");
    ok = hp_string(p, &h->descr, &h->descr_len);
  } else if (klen == 13 && memcmp(key, "fortran_order", 13) == 0) {
    seen = &h->has_fortran;
    ok = hp_bool(p, &h->fortran);
  } else if (klen == 5 && memcmp(key, "shape", 5) == 0) {
    seen = &h->has_shape;
    ok = hp_shape(p, &h->rank, h->dims);
  } else {
    return hp_fail(p, "unexpected key '%.*s' in header", (int)(klen > 32 ? 32 : klen),
                   key);
  }
  if (*seen)
    return hp_fail(p, "duplicate key '%.*s' in header", (int)klen, key);
  *seen = true;
  return ok;
}

static bool hp_dict(hparser *p, header_info *h) {
  if (!hp_expect(p, '{', "at the start of the header"))
    return false;
  while (!hp_peek(p, '}')) {
    if (!hp_entry(p, h))
      return false;
    if (hp_peek(p, ','))
      p->i++;
    else if (!hp_peek(p, '}'))
      return hp_fail(p, "malformed header (expected ',' or '}')");
  }
  p->i++;
  hp_ws(p);
  if (p->i != p->n)
    return hp_fail(p, "malformed header (unexpected text after the dict)");
  if (!h->has_descr || !h->has_fortran || !h->has_shape)
    return hp_fail(p, "header lacks '%s'", !h->has_descr ? "descr"
                   : !h->has_fortran ? "fortran_order" : "shape");
  return true;
}

/* Checks the parsed header's meaning: dtype, order and element count. */
static bool hp_semantics(hparser *p, const header_info *h, agc_dtype *t,
                         int64_t *count) {
  static const struct { const char *d; agc_dtype t; } known[] = {
    {"<f4", AGC_F32}, {"<f8", AGC_F64}, {"<i4", AGC_I32}};
  bool found = false;
  for (size_t k = 0; k < sizeof known / sizeof known[0]; k++)
    if (h->descr_len == 3 && memcmp(h->descr, known[k].d, 3) == 0) {
      *t = known[k].t;
      found = true;
    }
  if (!found)
    return hp_fail(p, "dtype '%.*s' not supported (expected '<f4', '<f8' or '<i4')",
                   (int)(h->descr_len > 32 ? 32 : h->descr_len), h->descr);
  if (h->fortran)
    return hp_fail(p, "fortran_order arrays are not supported (save a C-ordered array)");
  if (!checked_count(h->rank, h->dims, count))
    return hp_fail(p, "shape too large (element count overflows)");
  return true;
}

/* ---- reading ---------------------------------------------------------- */

/* Reads exactly n bytes; false on a short read or an I/O error. */
static bool read_exact(FILE *f, void *buf, size_t n) {
  return fread(buf, 1, n, f) == n;
}

/* Reads the preamble (magic, version, header length). */
static int read_preamble(FILE *f, const char *path, uint32_t *hlen,
                         size_t *prefix, char *err, size_t errlen) {
  unsigned char pre[12];
  size_t got = fread(pre, 1, 8, f);
  if (got < NPY_MAGIC_LEN || memcmp(pre, NPY_MAGIC, NPY_MAGIC_LEN) != 0) {
    set_err(err, errlen, "%s: not a .npy file (bad magic)", path);
    return -1;
  }
  if (got < 8) {
    set_err(err, errlen, "%s: truncated .npy header", path);
    return -1;
  }
  int major = pre[6], minor = pre[7];
  if ((major < 1 || major > 3) || minor != 0) {
    set_err(err, errlen, "%s: unsupported .npy format version %d.%d "
            "(expected 1.0, 2.0 or 3.0)", path, major, minor);
    return -1;
  }
  size_t lenbytes = major == 1 ? 2 : 4;
  if (!read_exact(f, pre + 8, lenbytes)) {
    set_err(err, errlen, "%s: truncated .npy header", path);
    return -1;
  }
  *hlen = (uint32_t)pre[8] | (uint32_t)pre[9] << 8;
  if (lenbytes == 4)
    *hlen |= (uint32_t)pre[10] << 16 | (uint32_t)pre[11] << 24;
  *prefix = 8 + lenbytes;
  return 0;
}

/* Header bytes must be printable ASCII or whitespace; numpy writes nothing
 * else, and anything else is corruption. */
static bool header_is_text(const char *s, size_t n) {
  for (size_t i = 0; i < n; i++) {
    unsigned char c = (unsigned char)s[i];
    if (c >= 0x7f || (c < 0x20 && c != '\n' && c != '\r' && c != '\t'))
      return false;
  }
  return true;
}

static int read_header(FILE *f, const char *path, uint32_t hlen,
                       header_info *h, agc_dtype *t, int64_t *count,
                       char *err, size_t errlen) {
  if (hlen > NPY_MAX_HEADER) {
    set_err(err, errlen, "%s: .npy header too large (%u bytes)", path, hlen);
    return -1;
  }
  char *buf = malloc(hlen ? hlen : 1);
  if (!buf) {
    set_err(err, errlen, "%s: out of memory", path);
    return -1;
  }
  int rc = -1;
  hparser p = {.s = buf, .n = hlen};
  if (!read_exact(f, buf, hlen))
    set_err(err, errlen, "%s: truncated .npy header", path);
  else if (!header_is_text(buf, hlen))
    set_err(err, errlen, "%s: .npy header is not ASCII text", path);
  else if (!hp_dict(&p, h) || !hp_semantics(&p, h, t, count))
    set_err(err, errlen, "%s: %s", path, p.msg);
  else
    rc = 0;
  free(buf);
  return rc;
}

/* Reads up to n bytes into a buffer of initial size `first` that grows as
 * data actually arrives, so a header on a pipe cannot make us allocate what
 * the stream lacks. Returns the buffer (NULL when out of memory) and the
 * byte count in *got. */
static void *read_growing(FILE *f, uint64_t n, size_t first, uint64_t *got) {
  size_t cap = first ? first : 1;
  unsigned char *buf = malloc(cap);
  uint64_t have = 0;
  while (buf && have < n) {
    if (have == cap) {
      size_t ncap = n - have < cap ? (size_t)n + 1 : cap * 2;
      unsigned char *nb = realloc(buf, ncap);
      if (!nb) {
        free(buf);
        return NULL;
      }
      buf = nb;
      cap = ncap;
    }
    size_t want = cap - have < n - have ? cap - (size_t)have : (size_t)(n - have);
    size_t r = fread(buf + have, 1, want, f);
    have += r;
    if (r < want)
      break;
  }
  *got = have;
  return buf;
}

/* Reads the data block: exactly `bytes` bytes and then end of file. For a
 * regular file the length is checked first, so a lying header cannot make
 * us allocate more than the file holds. */
static int read_data(FILE *f, const char *path, uint64_t offset, uint64_t bytes,
                     void **data, char *err, size_t errlen) {
  struct stat st;
  bool regular = fstat(fileno(f), &st) == 0 && S_ISREG(st.st_mode);
  if (regular) {
    uint64_t have = (uint64_t)st.st_size;
    if (have < offset + bytes) {
      set_err(err, errlen, "%s: file too short (header promises %llu data bytes, "
              "file holds %llu)", path, (unsigned long long)bytes,
              (unsigned long long)(have > offset ? have - offset : 0));
      return -1;
    }
    if (have > offset + bytes) {
      set_err(err, errlen, "%s: %llu unexpected trailing bytes after the data",
              path, (unsigned long long)(have - offset - bytes));
      return -1;
    }
  }
  if (bytes >= SIZE_MAX) {
    set_err(err, errlen, "%s: array too large for memory", path);
    return -1;
  }
  uint64_t got = 0;
  size_t first = regular || bytes < (1u << 20) ? (size_t)bytes : (1u << 20);
  void *buf = read_growing(f, bytes, first, &got);
  char extra;
  if (!buf) {
    set_err(err, errlen, "%s: out of memory (%llu bytes)", path,
            (unsigned long long)bytes);
    return -1;
  }
  if (got < bytes) {
    set_err(err, errlen, "%s: %s", path, ferror(f) ? "read error"
            : "file too short for the shape in its header");
  } else if (fread(&extra, 1, 1, f) != 0) {
    set_err(err, errlen, "%s: unexpected trailing bytes after the data", path);
  } else if (ferror(f)) {
    set_err(err, errlen, "%s: read error", path);
  } else {
    *data = buf;
    return 0;
  }
  free(buf);
  return -1;
}

static int read_stream(FILE *f, const char *path, agc_array *out, int want_rank,
                       const int64_t *want_dims, char *err, size_t errlen) {
  uint32_t hlen;
  size_t prefix;
  header_info h = {0};
  agc_dtype t = AGC_F32;
  int64_t count = 0;
  if (read_preamble(f, path, &hlen, &prefix, err, errlen) < 0 ||
      read_header(f, path, hlen, &h, &t, &count, err, errlen) < 0)
    return -1;
  /* the expected shape is checked before any data is read: a header (on a
     pipe, say) promising 2^34 elements costs nothing */
  int same = want_rank < 0 || h.rank == want_rank;
  for (int i = 0; same && want_rank > 0 && i < want_rank; i++)
    same = h.dims[i] == want_dims[i];
  if (!same) {
    char got[256], want[256];
    dims_text(h.rank, h.dims, got, sizeof got);
    dims_text(want_rank, want_dims, want, sizeof want);
    set_err(err, errlen, "%s: shape %s, expected %s", path, got, want);
    return -1;
  }
  /* The whole file must stay addressable by off_t. */
  uint64_t esize = agc_dtype_size(t), offset = prefix + hlen;
  if ((uint64_t)count > ((uint64_t)INT64_MAX - offset) / esize) {
    set_err(err, errlen, "%s: shape too large (data size overflows)", path);
    return -1;
  }
  void *data = NULL;
  if (read_data(f, path, offset, (uint64_t)count * esize, &data, err, errlen) < 0)
    return -1;
  out->dtype = t;
  out->rank = h.rank;
  memcpy(out->dims, h.dims, sizeof out->dims);
  out->count = count;
  out->data = data;
  return 0;
}

static int npy_read(const char *path, agc_array *out, int want_rank,
                    const int64_t *want_dims, char *err, size_t errlen) {
  if (!out) {
    set_err(err, errlen, "%s: no output array given", path ? path : "(null)");
    return -1;
  }
  memset(out, 0, sizeof *out);
  if (!path) {
    set_err(err, errlen, "(null): no path given");
    return -1;
  }
  FILE *f = fopen(path, "rb");
  if (!f) {
    set_err(err, errlen, "%s: cannot open: %s", path, strerror(errno));
    return -1;
  }
  struct stat st;
  if (fstat(fileno(f), &st) == 0 && S_ISDIR(st.st_mode)) {
    set_err(err, errlen, "%s: is a directory", path);
    fclose(f);
    return -1;
  }
  int rc = read_stream(f, path, out, want_rank, want_dims, err, errlen);
  fclose(f);
  return rc;
}

int agc_npy_read(const char *path, agc_array *out, char *err, size_t errlen) {
  return npy_read(path, out, -1, NULL, err, errlen);
}

int agc_npy_read_shaped(const char *path, agc_array *out, int rank,
                        const int64_t *dims, char *err, size_t errlen) {
  if (rank < 0 || rank > AGC_MAX_RANK || (rank > 0 && !dims)) {
    if (out)
      memset(out, 0, sizeof *out);
    set_err(err, errlen, "%s: invalid expected shape", path ? path : "(null)");
    return -1;
  }
  return npy_read(path, out, rank, dims, err, errlen);
}

/* ---- writing ---------------------------------------------------------- */

/* Builds the exact header numpy.save writes (format 1.0): preamble, the
 * sorted-key dict repr, growth-axis spaces, padding to a multiple of 64
 * bytes, '\n'. Returns the total length or 0 if buf is too small. */
static size_t build_header(const agc_array *a, char *buf, size_t cap) {
  char dict[512];
  size_t n = (size_t)snprintf(dict, sizeof dict,
                              "{'descr': '%s', 'fortran_order': False, 'shape': (",
                              dtype_descr(a->dtype));
  for (int i = 0; i < a->rank; i++)
    n += (size_t)snprintf(dict + n, sizeof dict - n, i ? ", %lld" : "%lld",
                          (long long)a->dims[i]);
  n += (size_t)snprintf(dict + n, sizeof dict - n, "%s), }",
                        a->rank == 1 ? "," : "");
  if (a->rank > 0) {
    char first[24];
    int digits = snprintf(first, sizeof first, "%lld", (long long)a->dims[0]);
    for (int k = digits; k < NPY_GROWTH_DIGITS; k++)
      dict[n++] = ' ';
  }
  size_t hlen = n + 1; /* + '\n' */
  size_t pad = NPY_ALIGN - (10 + hlen) % NPY_ALIGN; /* numpy pads 64 if aligned */
  size_t total = 10 + hlen + pad;
  if (total > cap || hlen + pad > 0xffff)
    return 0;
  memcpy(buf, NPY_MAGIC "\x01\x00", 8);
  buf[8] = (char)((hlen + pad) & 0xff);
  buf[9] = (char)((hlen + pad) >> 8);
  memcpy(buf + 10, dict, n);
  memset(buf + 10 + n, ' ', pad);
  buf[total - 1] = '\n';
  return total;
}

static bool write_all(int fd, const void *buf, size_t n) {
  const char *p = buf;
  while (n > 0) {
    ssize_t w = write(fd, p, n);
    if (w < 0 && errno == EINTR)
      continue;
    if (w <= 0)
      return false;
    p += w;
    n -= (size_t)w;
  }
  return true;
}

/* Creates "<path>.agc-tmp-<pid>-<k>" exclusively (a name that says whose
 * it is, should a SIGKILL leave it behind). open() with mode 0666 lets
 * the umask decide the final permissions, as for a plain fopen(). */
static int open_temp(const char *path, char **tmp) {
  size_t cap = strlen(path) + 48;
  char *name = malloc(cap);
  if (!name)
    return -1;
  for (unsigned k = 0; k < 1000; k++) {
    snprintf(name, cap, "%s.agc-tmp-%ld-%u", path, (long)getpid(), k);
    int fd = open(name, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0666);
    if (fd >= 0) {
      *tmp = name;
      return fd;
    }
    if (errno != EEXIST)
      break;
  }
  int e = errno;
  free(name);
  errno = e;
  return -1;
}

static const char *validate_for_write(const agc_array *a) {
  if (!a)
    return "no array given";
  if (!dtype_valid(a->dtype))
    return "invalid dtype";
  if (a->rank < 0 || a->rank > AGC_MAX_RANK)
    return "invalid rank";
  int64_t count;
  if (!checked_count(a->rank, a->dims, &count))
    return "invalid shape (negative or overflowing dimensions)";
  if (count != a->count)
    return "element count does not match the shape";
  if (count > 0 && !a->data)
    return "array has no data";
  if ((uint64_t)count > SIZE_MAX / agc_dtype_size(a->dtype))
    return "array too large";
  return NULL;
}

/* The header and data of a to fd, then fsync; errno says why on false. */
static bool write_npy_fd(int fd, const agc_array *a, const char *header,
                         size_t hsize) {
  size_t bytes = (size_t)a->count * agc_dtype_size(a->dtype);
  /* fsync before rename: otherwise a crash can leave the new name pointing
   * at an empty file on some filesystems. */
  return write_all(fd, header, hsize) && write_all(fd, a->data, bytes) &&
         fsync(fd) == 0;
}

/* a's header for writing it to path, or 0 after an error in err */
static size_t write_header(const agc_array *a, const char *path, char *header,
                           size_t n, char *err, size_t errlen) {
  const char *bad = validate_for_write(a);
  size_t hsize = bad ? 0 : build_header(a, header, n);
  if (bad || hsize == 0)
    set_err(err, errlen, "%s: cannot write: %s", path,
            bad ? bad : "header too large");
  return bad ? 0 : hsize;
}

int agc_npy_write_fd(int fd, const char *path, const agc_array *a, char *err,
                     size_t errlen) {
  if (!path)
    path = "(unnamed)";
  char header[1024];
  size_t hsize = write_header(a, path, header, sizeof header, err, errlen);
  if (hsize == 0)
    return -1;
  if (!write_npy_fd(fd, a, header, hsize)) {
    set_err(err, errlen, "%s: cannot write: %s", path, strerror(errno ? errno : EIO));
    return -1;
  }
  return 0;
}

int agc_npy_write(const char *path, const agc_array *a, char *err, size_t errlen) {
  if (!path) {
    set_err(err, errlen, "(null): no path given");
    return -1;
  }
  char header[1024];
  size_t hsize = write_header(a, path, header, sizeof header, err, errlen);
  if (hsize == 0)
    return -1;
  char *tmp = NULL;
  int fd = open_temp(path, &tmp);
  if (fd < 0) {
    set_err(err, errlen, "%s: cannot create a temporary file: %s", path,
            strerror(errno));
    return -1;
  }
  bool ok = write_npy_fd(fd, a, header, hsize);
  int e = ok ? 0 : errno;
  if (close(fd) != 0 && ok) {
    ok = false;
    e = errno;
  }
  if (ok && rename(tmp, path) != 0) {
    ok = false;
    e = errno;
  }
  if (!ok) {
    unlink(tmp);
    set_err(err, errlen, "%s: cannot write: %s", path, strerror(e ? e : EIO));
  }
  free(tmp);
  return ok ? 0 : -1;
}

/* ---- conversion ------------------------------------------------------- */

/* Element access goes through memcpy: the buffer is reinterpreted between
 * element types in place, which plain pointer casts would make an aliasing
 * violation. */
static double load_elem(const unsigned char *p, agc_dtype t, int64_t i) {
  if (t == AGC_F32) {
    float v;
    memcpy(&v, p + 4 * i, 4);
    return v;
  }
  if (t == AGC_I32) {
    int32_t v;
    memcpy(&v, p + 4 * i, 4);
    return v;
  }
  double v;
  memcpy(&v, p + 8 * i, 8);
  return v;
}

static void store_elem(unsigned char *p, agc_dtype t, int64_t i, double v) {
  if (t == AGC_F32) {
    float f = (float)v;
    memcpy(p + 4 * i, &f, 4);
  } else {
    memcpy(p + 8 * i, &v, 8);
  }
}

int agc_array_convert(agc_array *a, agc_dtype t, char *err, size_t errlen) {
  if (!a || !dtype_valid(a->dtype) || !dtype_valid(t)) {
    set_err(err, errlen, "cannot convert: invalid array or dtype");
    return -1;
  }
  if (a->dtype == t)
    return 0;
  if (t == AGC_I32) {
    set_err(err, errlen, "cannot convert %s to i32 (only f32<->f64 and i32->float)",
            agc_dtype_name(a->dtype));
    return -1;
  }
  size_t from = agc_dtype_size(a->dtype), to = agc_dtype_size(t);
  size_t n = (size_t)(a->count > 0 ? a->count : 0);
  if (n > 0 && !a->data) {
    set_err(err, errlen, "cannot convert: array has no data");
    return -1;
  }
  if (to > from) {
    /* Grow first, then convert from the end so that no element is
     * overwritten before it has been read. */
    if (n > SIZE_MAX / to) {
      set_err(err, errlen, "cannot convert: array too large");
      return -1;
    }
    unsigned char *p = realloc(a->data, n ? n * to : 1);
    if (!p) {
      set_err(err, errlen, "cannot convert %s to %s: out of memory",
              agc_dtype_name(a->dtype), agc_dtype_name(t));
      return -1;
    }
    for (size_t i = n; i-- > 0;)
      store_elem(p, t, (int64_t)i, load_elem(p, a->dtype, (int64_t)i));
    a->data = p;
  } else {
    unsigned char *p = a->data;
    for (size_t i = 0; i < n; i++)
      store_elem(p, t, (int64_t)i, load_elem(p, a->dtype, (int64_t)i));
    if (to < from && n > 0) {
      /* Shrinking cannot lose data; if realloc fails keep the old block. */
      void *q = realloc(p, n * to);
      if (q)
        a->data = q;
    }
  }
  a->dtype = t;
  return 0;
}
