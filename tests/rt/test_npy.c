/* Tests for runtime/npy.c: round trips, numpy.save-exact headers, every
 * malformed-file class, and truncation / byte-flip fuzzing. */
#include "agc_rt.h"

#include <check.h>
#include <dirent.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static char tmpdir[256];
static char err[512];

static void setup(void) {
  const char *t = getenv("TMPDIR");
  snprintf(tmpdir, sizeof tmpdir, "%s/agc-npy-test-XXXXXX", t && *t ? t : "/tmp");
  ck_assert_ptr_nonnull(mkdtemp(tmpdir));
}

static void remove_tree(const char *dir) {
  DIR *d = opendir(dir);
  if (!d)
    return;
  struct dirent *e;
  char p[1024];
  while ((e = readdir(d)) != NULL) {
    if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
      continue;
    snprintf(p, sizeof p, "%s/%s", dir, e->d_name);
    struct stat st;
    if (lstat(p, &st) == 0 && S_ISDIR(st.st_mode))
      remove_tree(p);
    else
      unlink(p);
  }
  closedir(d);
  rmdir(dir);
}

static void teardown(void) { remove_tree(tmpdir); }

static const char *tpath(const char *name) {
  static char p[2][512];
  static int k;
  k ^= 1;
  snprintf(p[k], sizeof p[k], "%s/%s", tmpdir, name);
  return p[k];
}

static void put_file(const char *path, const void *data, size_t n) {
  FILE *f = fopen(path, "wb");
  ck_assert_ptr_nonnull(f);
  ck_assert_uint_eq(fwrite(data, 1, n, f), n);
  ck_assert_int_eq(fclose(f), 0);
}

/* Returns a malloc'd copy of the file and its size. */
static unsigned char *get_file(const char *path, size_t *n) {
  FILE *f = fopen(path, "rb");
  ck_assert_ptr_nonnull(f);
  fseek(f, 0, SEEK_END);
  long len = ftell(f);
  fseek(f, 0, SEEK_SET);
  unsigned char *buf = malloc((size_t)len + 1);
  ck_assert_uint_eq(fread(buf, 1, (size_t)len, f), (size_t)len);
  fclose(f);
  *n = (size_t)len;
  return buf;
}

static int count_entries(const char *dir) {
  DIR *d = opendir(dir);
  ck_assert_ptr_nonnull(d);
  int n = 0;
  struct dirent *e;
  while ((e = readdir(d)) != NULL)
    n += strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0;
  closedir(d);
  return n;
}

/* Builds a version 1.0 file from a header dict (padded like numpy) and
 * data bytes; returns its length. */
static size_t make_npy(unsigned char *buf, int major, const char *dict,
                       const void *data, size_t n) {
  size_t pre = major == 1 ? 10 : 12, dl = strlen(dict);
  size_t hlen = dl + 1, pad = (64 - (pre + hlen) % 64) % 64;
  memcpy(buf, "\x93NUMPY", 6);
  buf[6] = (unsigned char)major;
  buf[7] = 0;
  uint32_t h = (uint32_t)(hlen + pad);
  buf[8] = h & 0xff;
  buf[9] = (h >> 8) & 0xff;
  if (major != 1) {
    buf[10] = (h >> 16) & 0xff;
    buf[11] = (h >> 24) & 0xff;
  }
  memcpy(buf + pre, dict, dl);
  memset(buf + pre + dl, ' ', pad);
  buf[pre + dl + pad] = '\n';
  memcpy(buf + pre + hlen + pad, data, n);
  return pre + hlen + pad + n;
}

/* Asserts that reading `bytes` fails with a one-line message naming the
 * path and containing `want`. */
static void expect_bad(const void *bytes, size_t n, const char *want) {
  const char *p = tpath("bad.npy");
  put_file(p, bytes, n);
  agc_array a;
  memset(&a, 0x5a, sizeof a);
  err[0] = '\0';
  int rc = agc_npy_read(p, &a, err, sizeof err);
  ck_assert_msg(rc == -1, "expected failure (%s), got success", want);
  ck_assert_ptr_null(a.data);
  ck_assert_msg(strncmp(err, p, strlen(p)) == 0 && err[strlen(p)] == ':',
                "message does not start with the path: %s", err);
  ck_assert_msg(strstr(err, want) != NULL, "message '%s' lacks '%s'", err, want);
  ck_assert_ptr_null(strchr(err, '\n'));
}

/* For string literals: their length without the terminating NUL. */
#define EXPECT_BAD(lit, want) expect_bad(lit, sizeof lit - 1, want)

static void expect_bad_dict(const char *dict, size_t datalen, const char *want) {
  static unsigned char buf[4096];
  static const unsigned char zeros[256];
  ck_assert_uint_le(datalen, sizeof zeros);
  size_t n = make_npy(buf, 1, dict, zeros, datalen);
  expect_bad(buf, n, want);
}

/* ---- basics ------------------------------------------------------------ */

START_TEST(test_dtype_info) {
  ck_assert_uint_eq(agc_dtype_size(AGC_F32), 4);
  ck_assert_uint_eq(agc_dtype_size(AGC_F64), 8);
  ck_assert_uint_eq(agc_dtype_size(AGC_I32), 4);
  ck_assert_str_eq(agc_dtype_name(AGC_F32), "f32");
  ck_assert_str_eq(agc_dtype_name(AGC_F64), "f64");
  ck_assert_str_eq(agc_dtype_name(AGC_I32), "i32");
  agc_array a = {0};
  agc_array_free(&a); /* a zeroed array frees cleanly */
  agc_array_free(NULL);
}
END_TEST

/* ---- round trips ------------------------------------------------------- */

static void round_trip(agc_dtype t, int rank, const int64_t *dims) {
  agc_array a = {.dtype = t, .rank = rank, .count = 1};
  for (int i = 0; i < rank; i++) {
    a.dims[i] = dims[i];
    a.count *= dims[i];
  }
  size_t es = agc_dtype_size(t), bytes = (size_t)a.count * es;
  unsigned char *data = malloc(bytes + 1);
  /* Distinct bit patterns including NaNs, -0.0 and INT32_MIN. */
  for (size_t i = 0; i < bytes; i++)
    data[i] = (unsigned char)(i * 37 + 11 + rank);
  if (bytes >= 4 && t == AGC_I32)
    memcpy(data, &(int32_t){INT32_MIN}, 4);
  if (bytes >= 8 && t == AGC_F64)
    memcpy(data, &(double){-0.0}, 8);
  a.data = data;
  const char *p = tpath("rt.npy");
  ck_assert_msg(agc_npy_write(p, &a, err, sizeof err) == 0, "%s", err);

  /* The file itself: aligned header ending in '\n', then the raw bytes. */
  size_t n;
  unsigned char *file = get_file(p, &n);
  size_t hsize = 10 + (size_t)(file[8] | file[9] << 8);
  ck_assert_uint_eq(hsize % 64, 0);
  ck_assert_int_eq(file[hsize - 1], '\n');
  ck_assert_uint_eq(n, hsize + bytes);
  ck_assert_int_eq(memcmp(file + hsize, data, bytes), 0);
  free(file);

  agc_array b;
  ck_assert_msg(agc_npy_read(p, &b, err, sizeof err) == 0, "%s", err);
  ck_assert_int_eq(b.dtype, t);
  ck_assert_int_eq(b.rank, rank);
  for (int i = 0; i < rank; i++)
    ck_assert_int_eq(b.dims[i], dims[i]);
  ck_assert_int_eq(b.count, a.count);
  ck_assert_ptr_nonnull(b.data);
  ck_assert_int_eq(memcmp(b.data, data, bytes), 0);
  agc_array_free(&b);
  ck_assert_ptr_null(b.data);
  free(data);
}

START_TEST(test_round_trip_shapes) {
  static const int64_t d1[] = {3}, d2[] = {2, 3}, d3[] = {2, 3, 4},
                       d8[] = {1, 2, 1, 3, 1, 2, 1, 2}, big[] = {1000, 17};
  agc_dtype ts[] = {AGC_F32, AGC_F64, AGC_I32};
  for (int k = 0; k < 3; k++) {
    round_trip(ts[k], 0, NULL); /* scalar: shape () */
    round_trip(ts[k], 1, d1);
    round_trip(ts[k], 2, d2);
    round_trip(ts[k], 3, d3);
    round_trip(ts[k], 8, d8);
    round_trip(ts[k], 2, big);
  }
}
END_TEST

/* A zero-length dimension is legal in .npy: count 0, a non-NULL (empty)
 * data block, and no data bytes in the file. */
START_TEST(test_round_trip_empty) {
  static const int64_t z1[] = {0}, z3[] = {2, 0, 3};
  round_trip(AGC_F32, 1, z1);
  round_trip(AGC_F64, 3, z3);
  agc_array a = {.dtype = AGC_I32, .rank = 1, .dims = {0}, .count = 0};
  ck_assert_int_eq(agc_npy_write(tpath("e.npy"), &a, err, sizeof err), 0);
  agc_array b;
  ck_assert_int_eq(agc_npy_read(tpath("e.npy"), &b, err, sizeof err), 0);
  ck_assert_int_eq(b.count, 0);
  ck_assert_int_eq(b.rank, 1);
  ck_assert_ptr_nonnull(b.data);
  agc_array_free(&b);
}
END_TEST

START_TEST(test_values_f32_f64_i32) {
  float f[] = {1.5f, -2.25f, 0.0f, 3.4028235e38f, 1e-45f, -7.0f};
  agc_array a = {.dtype = AGC_F32, .rank = 2, .dims = {3, 2}, .count = 6, .data = f};
  ck_assert_int_eq(agc_npy_write(tpath("f.npy"), &a, err, sizeof err), 0);
  agc_array b;
  ck_assert_int_eq(agc_npy_read(tpath("f.npy"), &b, err, sizeof err), 0);
  for (int i = 0; i < 6; i++)
    ck_assert_float_eq(((float *)b.data)[i], f[i]);
  agc_array_free(&b);

  double d = -1.0 / 3.0;
  agc_array s = {.dtype = AGC_F64, .rank = 0, .count = 1, .data = &d};
  ck_assert_int_eq(agc_npy_write(tpath("d.npy"), &s, err, sizeof err), 0);
  ck_assert_int_eq(agc_npy_read(tpath("d.npy"), &b, err, sizeof err), 0);
  ck_assert_int_eq(b.rank, 0);
  ck_assert_int_eq(b.count, 1);
  ck_assert_double_eq(*(double *)b.data, d);
  agc_array_free(&b);

  int32_t iv[] = {INT32_MIN, -1, 0, 1, INT32_MAX};
  agc_array c = {.dtype = AGC_I32, .rank = 1, .dims = {5}, .count = 5, .data = iv};
  ck_assert_int_eq(agc_npy_write(tpath("i.npy"), &c, err, sizeof err), 0);
  ck_assert_int_eq(agc_npy_read(tpath("i.npy"), &b, err, sizeof err), 0);
  ck_assert_int_eq(b.dtype, AGC_I32);
  ck_assert_int_eq(memcmp(b.data, iv, sizeof iv), 0);
  agc_array_free(&b);
}
END_TEST

/* ---- exact numpy.save bytes -------------------------------------------- */

static void expect_header(agc_dtype t, int rank, const int64_t *dims,
                          const char *dict, size_t total) {
  agc_array a = {.dtype = t, .rank = rank, .count = 1};
  for (int i = 0; i < rank; i++)
    a.count *= (a.dims[i] = dims[i]);
  a.data = calloc((size_t)a.count + 1, agc_dtype_size(t));
  ck_assert_msg(agc_npy_write(tpath("h.npy"), &a, err, sizeof err) == 0, "%s", err);
  size_t n;
  unsigned char *got = get_file(tpath("h.npy"), &n);
  unsigned char want[512];
  size_t hl = total - 10;
  memcpy(want, "\x93NUMPY\x01\x00", 8);
  want[8] = hl & 0xff;
  want[9] = hl >> 8;
  memset(want + 10, ' ', hl);
  memcpy(want + 10, dict, strlen(dict));
  want[total - 1] = '\n';
  ck_assert_uint_eq(n, total + (size_t)a.count * agc_dtype_size(t));
  ck_assert_int_eq(memcmp(got, want, total), 0);
  free(got);
  free(a.data);
}

START_TEST(test_header_bytes_like_numpy) {
  /* np.save('x.npy', np.zeros((2, 3), np.float32)) writes exactly these
   * 128 header bytes: 10 bytes of preamble, the dict (59 chars), 20 spare
   * spaces for the first axis to grow to 21 digits, 38 padding spaces and
   * '\n' -- header length field 118 = 0x76. */
  static const unsigned char numpy_2x3_f4[128] =
    "\x93NUMPY\x01\x00\x76\x00"
    "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }"
    "                                                          \n";
  float data[6] = {0, 1, 2, 3, 4, 5};
  agc_array a = {.dtype = AGC_F32, .rank = 2, .dims = {2, 3}, .count = 6, .data = data};
  ck_assert_int_eq(agc_npy_write(tpath("np.npy"), &a, err, sizeof err), 0);
  size_t n;
  unsigned char *got = get_file(tpath("np.npy"), &n);
  ck_assert_uint_eq(n, 128 + 24);
  ck_assert_int_eq(memcmp(got, numpy_2x3_f4, 128), 0);
  ck_assert_int_eq(memcmp(got + 128, data, 24), 0);
  free(got);

  /* More shapes, expected lengths computed with numpy's algorithm. */
  static const int64_t s1[] = {3}, s8[] = {1, 2, 3, 4, 5, 6, 7, 8},
                       al[] = {0, 1000, 1000, 1000, 1000, 1000, 1000, 100};
  expect_header(AGC_F64, 0, NULL,
                "{'descr': '<f8', 'fortran_order': False, 'shape': (), }", 128);
  expect_header(AGC_I32, 1, s1,
                "{'descr': '<i4', 'fortran_order': False, 'shape': (3,), }", 128);
  expect_header(AGC_F64, 8, s8,
                "{'descr': '<f8', 'fortran_order': False, "
                "'shape': (1, 2, 3, 4, 5, 6, 7, 8), }", 128);
  /* Dict + growth spaces + '\n' already end on a 64-byte boundary here;
   * numpy then still adds a full 64 bytes of padding (192, not 128). */
  expect_header(AGC_F32, 8, al,
                "{'descr': '<f4', 'fortran_order': False, "
                "'shape': (0, 1000, 1000, 1000, 1000, 1000, 1000, 100), }", 192);
}
END_TEST

/* ---- headers numpy or other writers may produce ------------------------ */

START_TEST(test_read_variants) {
  static unsigned char buf[4096];
  float v[6] = {1, 2, 3, 4, 5, 6};
  struct { int major; const char *dict; int rank; int64_t d0, d1; } cases[] = {
    {2, "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }", 2, 2, 3},
    {3, "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }", 2, 2, 3},
    {1, "{\"shape\": (6,), \"descr\": \"<f4\", \"fortran_order\": False}", 1, 6, 0},
    {1, "{'descr':'<f4','fortran_order':False,'shape':(3,2)}", 2, 3, 2},
    {1, "{'descr': '<f4', 'fortran_order': False, 'shape': (2L, 3L), }", 2, 2, 3},
    {1, "{'descr': '<f4', 'fortran_order': False, 'shape': (1, 6,), }", 2, 1, 6},
    {1, "{ 'descr' : '<f4' ,\n 'fortran_order' : False ,\t'shape' : ( 6 , ) , }", 1, 6, 0},
  };
  for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
    size_t n = make_npy(buf, cases[k].major, cases[k].dict, v, sizeof v);
    put_file(tpath("v.npy"), buf, n);
    agc_array a;
    ck_assert_msg(agc_npy_read(tpath("v.npy"), &a, err, sizeof err) == 0,
                  "case %zu: %s", k, err);
    ck_assert_int_eq(a.rank, cases[k].rank);
    ck_assert_int_eq(a.dims[0], cases[k].d0);
    if (a.rank > 1)
      ck_assert_int_eq(a.dims[1], cases[k].d1);
    ck_assert_int_eq(a.count, 6);
    ck_assert_int_eq(memcmp(a.data, v, sizeof v), 0);
    agc_array_free(&a);
  }
  /* Old numpy aligned to 16 bytes, not 64; such files must still load. */
  static const char old[] = "\x93NUMPY\x01\x00\x46\x00"
    "{'descr': '<i4', 'fortran_order': False, 'shape': (1,), }            \n"
    "\x07\x00\x00\x00";
  put_file(tpath("old.npy"), old, sizeof old - 1);
  agc_array a;
  ck_assert_msg(agc_npy_read(tpath("old.npy"), &a, err, sizeof err) == 0, "%s", err);
  ck_assert_int_eq(((int32_t *)a.data)[0], 7);
  agc_array_free(&a);
}
END_TEST

/* ---- malformed files --------------------------------------------------- */

START_TEST(test_bad_preamble) {
  EXPECT_BAD("", "bad magic");
  EXPECT_BAD("\x93NUMP", "bad magic");
  EXPECT_BAD("\x93NUMPY\x01", "truncated");
  EXPECT_BAD("\x93NUMPZ\x01\x00\x10\x00", "bad magic");
  EXPECT_BAD("PK\x03\x04 this is a zip", "bad magic");
  EXPECT_BAD("\x93NUMPY\x04\x00\x10\x00", "version 4.0");
  EXPECT_BAD("\x93NUMPY\x01\x01\x10\x00", "version 1.1");
  EXPECT_BAD("\x93NUMPY\x01\x00", "truncated");
  EXPECT_BAD("\x93NUMPY\x02\x00\x10\x00", "truncated");
  EXPECT_BAD("\x93NUMPY\x01\x00\x76\x00{'descr'", "truncated");
  EXPECT_BAD("\x93NUMPY\x02\x00\xff\xff\xff\xff{}", "too large");
}
END_TEST

START_TEST(test_bad_dtype_messages) {
  const char *p = tpath("bad.npy");
  expect_bad_dict("{'descr': '>f4', 'fortran_order': False, 'shape': (1,), }", 4, "dtype");
  char want[600];
  snprintf(want, sizeof want,
           "%s: dtype '>f4' not supported (expected '<f4', '<f8' or '<i4')", p);
  ck_assert_str_eq(err, want);
  const char *bad[] = {"|i4", "<i8", "<f2", "|u1", "|b1", "<c8", "f4", "<f4 ", ""};
  for (size_t k = 0; k < sizeof bad / sizeof bad[0]; k++) {
    char dict[200];
    snprintf(dict, sizeof dict,
             "{'descr': '%s', 'fortran_order': False, 'shape': (1,), }", bad[k]);
    expect_bad_dict(dict, 4, "not supported (expected '<f4', '<f8' or '<i4')");
  }
  expect_bad_dict("{'descr': [('a', '<f4')], 'fortran_order': False, 'shape': (1,), }",
                  4, "structured");
}
END_TEST

START_TEST(test_bad_header_text) {
  expect_bad_dict("{'descr': '<f4', 'fortran_order': True, 'shape': (2, 2), }", 16,
                  "fortran_order");
  expect_bad_dict("{'descr': '<f4', 'fortran_order': 0, 'shape': (1,), }", 4,
                  "True or False");
  expect_bad_dict("{'descr': '<f4', 'fortran_order': False, }", 4, "lacks 'shape'");
  expect_bad_dict("{'fortran_order': False, 'shape': (1,), }", 4, "lacks 'descr'");
  expect_bad_dict("{'descr': '<f4', 'shape': (1,), }", 4, "lacks 'fortran_order'");
  expect_bad_dict("{'descr': '<f4', 'descr': '<f4', 'fortran_order': False, "
                  "'shape': (1,), }", 4, "duplicate");
  expect_bad_dict("{'descr': '<f4', 'fortran_order': False, 'shape': (1,), "
                  "'extra': 1, }", 4, "unexpected key 'extra'");
  expect_bad_dict("{'descr': '<f4', 'fortran_order': False, 'shape': (1,), ",
                  4, "malformed");
  expect_bad_dict("{'descr': '<f4', 'fortran_order': False, 'shape': (1,", 4,
                  "malformed");
  expect_bad_dict("{'descr': '<f4, 'fortran_order': False, 'shape': (1,), }", 4,
                  "malformed");
  expect_bad_dict("{'descr': '<f4', 'fortran_order': False, 'shape': (4), }", 16,
                  "malformed shape");
  expect_bad_dict("{'descr': '<f4', 'fortran_order': False, 'shape': [4], }", 16,
                  "malformed");
  expect_bad_dict("{'descr': '<f4', 'fortran_order': False, 'shape': (1,), } x", 4,
                  "after the dict");
  expect_bad_dict("'descr': '<f4', 'fortran_order': False, 'shape': (1,)", 4,
                  "malformed");
  expect_bad_dict("", 4, "malformed");
  expect_bad_dict("{'descr': '<f4', 'fortran_order': False, 'shape': (1,), }\x01",
                  4, "not ASCII");
  expect_bad_dict("{'descr': '<f\xe9" "4', 'fortran_order': False, 'shape': (1,), }",
                  4, "not ASCII");
  /* A NUL inside the header. */
  static unsigned char buf[256];
  size_t n = make_npy(buf, 1, "{'descr': '<f4', 'fortran_order': False, "
                      "'shape': (1,), }", "\0\0\0\0", 4);
  buf[20] = '\0';
  expect_bad(buf, n, "not ASCII");
}
END_TEST

START_TEST(test_bad_shapes) {
  expect_bad_dict("{'descr': '<f4', 'fortran_order': False, "
                  "'shape': (1, 1, 1, 1, 1, 1, 1, 1, 1), }", 4, "rank exceeds");
  expect_bad_dict("{'descr': '<f4', 'fortran_order': False, 'shape': (-1,), }", 4,
                  "negative");
  expect_bad_dict("{'descr': '<f4', 'fortran_order': False, 'shape': (2, -3), }", 4,
                  "negative");
  expect_bad_dict("{'descr': '<f4', 'fortran_order': False, "
                  "'shape': (99999999999999999999,), }", 4, "too large");
  /* 2^32 * 2^32 overflows int64: checked multiplication. */
  expect_bad_dict("{'descr': '<f4', 'fortran_order': False, "
                  "'shape': (4294967296, 4294967296), }", 4, "overflow");
  /* 2^61 elements fit int64, but 2^61 * 8 bytes do not. */
  expect_bad_dict("{'descr': '<f8', 'fortran_order': False, "
                  "'shape': (2305843009213693952,), }", 4, "too large");
  /* Plausible header, but the file cannot hold the data it promises. */
  expect_bad_dict("{'descr': '<f8', 'fortran_order': False, "
                  "'shape': (1000000000, 1000000), }", 8, "too short");
}
END_TEST

START_TEST(test_bad_sizes) {
  expect_bad_dict("{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }", 20,
                  "too short");
  expect_bad_dict("{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }", 28,
                  "trailing");
  expect_bad_dict("{'descr': '<f4', 'fortran_order': False, 'shape': (), }", 0,
                  "too short");
  expect_bad_dict("{'descr': '<f4', 'fortran_order': False, 'shape': (0,), }", 1,
                  "trailing");
}
END_TEST

START_TEST(test_unreadable) {
  agc_array a;
  const char *p = tpath("missing.npy");
  ck_assert_int_eq(agc_npy_read(p, &a, err, sizeof err), -1);
  ck_assert_ptr_nonnull(strstr(err, p));
  ck_assert_ptr_nonnull(strstr(err, "cannot open"));
  ck_assert_int_eq(agc_npy_read(tmpdir, &a, err, sizeof err), -1);
  ck_assert_ptr_nonnull(strstr(err, "directory"));
  /* A path with a newline still yields a one-line message. */
  ck_assert_int_eq(agc_npy_read("/nonexistent/a\nb.npy", &a, err, sizeof err), -1);
  ck_assert_ptr_null(strchr(err, '\n'));
  /* A tiny buffer is filled safely and NUL-terminated. */
  char small[8];
  ck_assert_int_eq(agc_npy_read(p, &a, small, sizeof small), -1);
  ck_assert_uint_eq(strlen(small), 7);
  ck_assert_int_eq(agc_npy_read(p, &a, NULL, 0), -1);
}
END_TEST

/* ---- fuzzing ------------------------------------------------------------ */

static uint64_t rng_state = 0x9e3779b97f4a7c15ull;
static uint32_t rnd(void) {
  rng_state ^= rng_state << 13;
  rng_state ^= rng_state >> 7;
  rng_state ^= rng_state << 17;
  return (uint32_t)(rng_state >> 16);
}

/* A failed read must say so properly; a successful one must be coherent. */
static void read_any(const unsigned char *buf, size_t n) {
  const char *p = tpath("fuzz.npy");
  put_file(p, buf, n);
  agc_array a;
  err[0] = '\0';
  if (agc_npy_read(p, &a, err, sizeof err) == 0) {
    int64_t c = 1;
    for (int i = 0; i < a.rank; i++)
      c *= a.dims[i];
    ck_assert_int_eq(c, a.count);
    ck_assert_ptr_nonnull(a.data);
    agc_array_free(&a);
  } else {
    ck_assert_ptr_null(a.data);
    ck_assert_ptr_nonnull(strstr(err, p));
    ck_assert_ptr_null(strchr(err, '\n'));
  }
}

START_TEST(test_truncations) {
  double v[6] = {1, 2, 3, 4, 5, 6};
  for (int major = 1; major <= 2; major++) {
    static unsigned char buf[512];
    size_t n = make_npy(buf, major, "{'descr': '<f8', 'fortran_order': False, "
                        "'shape': (2, 3), }", v, sizeof v);
    for (size_t len = 0; len < n; len++) {
      const char *p = tpath("trunc.npy");
      put_file(p, buf, len);
      agc_array a;
      ck_assert_msg(agc_npy_read(p, &a, err, sizeof err) == -1,
                    "truncated to %zu bytes but read succeeded", len);
      ck_assert_ptr_nonnull(strstr(err, p));
    }
    read_any(buf, n);
  }
}
END_TEST

START_TEST(test_header_byte_flips) {
  static const char alphabet[] = "'\"(),:{}[] \n0123456789-LTrueFalse<>|fi48";
  float v[6] = {1, 2, 3, 4, 5, 6};
  static unsigned char base[512], buf[512];
  size_t n = make_npy(base, 1, "{'descr': '<f4', 'fortran_order': False, "
                      "'shape': (2, 3), }", v, sizeof v);
  for (int iter = 0; iter < 3000; iter++) {
    memcpy(buf, base, n);
    int flips = 1 + (int)(rnd() % 3);
    for (int k = 0; k < flips; k++) {
      size_t at = rnd() % 128; /* preamble and header */
      /* Mix arbitrary bytes with header-alphabet bytes, which get deeper
       * into the parser than random noise. */
      buf[at] = rnd() % 2 ? (unsigned char)rnd()
                          : (unsigned char)alphabet[rnd() % (sizeof alphabet - 1)];
    }
    read_any(buf, n - (rnd() % 4 == 0 ? rnd() % 24 : 0));
  }
}
END_TEST

/* ---- writing ------------------------------------------------------------ */

START_TEST(test_write_atomic) {
  const char *p = tpath("w.npy");
  float one[1] = {1}, two[2] = {2, 3};
  agc_array a = {.dtype = AGC_F32, .rank = 1, .dims = {1}, .count = 1, .data = one};
  ck_assert_int_eq(agc_npy_write(p, &a, err, sizeof err), 0);
  agc_array b = {.dtype = AGC_F32, .rank = 1, .dims = {2}, .count = 2, .data = two};
  ck_assert_int_eq(agc_npy_write(p, &b, err, sizeof err), 0);
  ck_assert_int_eq(count_entries(tmpdir), 1); /* no temp file left over */
  agc_array r;
  ck_assert_int_eq(agc_npy_read(p, &r, err, sizeof err), 0);
  ck_assert_int_eq(r.count, 2);
  ck_assert_float_eq(((float *)r.data)[1], 3.0f);
  agc_array_free(&r);

  /* Invalid arrays are refused before anything is touched. */
  size_t before_n;
  unsigned char *before = get_file(p, &before_n);
  agc_array bad = b;
  bad.count = 3;
  ck_assert_int_eq(agc_npy_write(p, &bad, err, sizeof err), -1);
  ck_assert_ptr_nonnull(strstr(err, p));
  ck_assert_ptr_nonnull(strstr(err, "count"));
  bad = b;
  bad.dims[0] = -2;
  ck_assert_int_eq(agc_npy_write(p, &bad, err, sizeof err), -1);
  bad = b;
  bad.rank = 9;
  ck_assert_int_eq(agc_npy_write(p, &bad, err, sizeof err), -1);
  bad = b;
  bad.data = NULL;
  ck_assert_int_eq(agc_npy_write(p, &bad, err, sizeof err), -1);
  bad = b;
  bad.dtype = (agc_dtype)7;
  ck_assert_int_eq(agc_npy_write(p, &bad, err, sizeof err), -1);
  ck_assert_int_eq(agc_npy_write(p, NULL, err, sizeof err), -1);
  size_t after_n;
  unsigned char *after = get_file(p, &after_n);
  ck_assert_uint_eq(before_n, after_n);
  ck_assert_int_eq(memcmp(before, after, before_n), 0);
  free(before);
  free(after);
  ck_assert_int_eq(count_entries(tmpdir), 1);
}
END_TEST

START_TEST(test_write_failures) {
  float v[1] = {1};
  agc_array a = {.dtype = AGC_F32, .rank = 1, .dims = {1}, .count = 1, .data = v};
  /* Missing directory: the temp file cannot even be created. */
  const char *p = tpath("no/such/dir/x.npy");
  ck_assert_int_eq(agc_npy_write(p, &a, err, sizeof err), -1);
  ck_assert_ptr_nonnull(strstr(err, p));
  ck_assert_ptr_null(strchr(err, '\n'));
  /* The target is a non-empty directory: rename fails after the data was
   * written; the temp file must be gone and the directory untouched. */
  const char *d = tpath("target.npy");
  ck_assert_int_eq(mkdir(d, 0755), 0);
  char inner[600];
  snprintf(inner, sizeof inner, "%s/keep", d);
  put_file(inner, "k", 1);
  ck_assert_int_eq(agc_npy_write(d, &a, err, sizeof err), -1);
  ck_assert_ptr_nonnull(strstr(err, d));
  ck_assert_int_eq(count_entries(tmpdir), 1);
  ck_assert_int_eq(count_entries(d), 1);
}
END_TEST

START_TEST(test_write_mode_follows_umask) {
  mode_t old = umask(022);
  float v[1] = {1};
  agc_array a = {.dtype = AGC_F32, .rank = 0, .count = 1, .data = v};
  ck_assert_int_eq(agc_npy_write(tpath("m.npy"), &a, err, sizeof err), 0);
  struct stat st;
  ck_assert_int_eq(stat(tpath("m.npy"), &st), 0);
  ck_assert_int_eq(st.st_mode & 0777, 0644);
  umask(old);
}
END_TEST

/* ---- conversion --------------------------------------------------------- */

static agc_array make_1d(agc_dtype t, const void *v, int n) {
  agc_array a = {.dtype = t, .rank = 1, .dims = {n}, .count = n};
  size_t bytes = (size_t)n * agc_dtype_size(t);
  a.data = malloc(bytes ? bytes : 1);
  memcpy(a.data, v, bytes);
  return a;
}

START_TEST(test_convert) {
  float f[5] = {1.5f, -2.0f, 0.1f, 3e38f, -0.0f};
  agc_array a = make_1d(AGC_F32, f, 5);
  ck_assert_int_eq(agc_array_convert(&a, AGC_F64, err, sizeof err), 0);
  ck_assert_int_eq(a.dtype, AGC_F64);
  ck_assert_int_eq(a.count, 5);
  for (int i = 0; i < 5; i++)
    ck_assert_double_eq(((double *)a.data)[i], (double)f[i]);
  ck_assert(signbit(((double *)a.data)[4]));
  ck_assert_int_eq(agc_array_convert(&a, AGC_F32, err, sizeof err), 0);
  ck_assert_int_eq(memcmp(a.data, f, sizeof f), 0);
  ck_assert_int_eq(agc_array_convert(&a, AGC_F32, err, sizeof err), 0); /* no-op */
  ck_assert_int_eq(memcmp(a.data, f, sizeof f), 0);
  ck_assert_int_eq(agc_array_convert(&a, AGC_I32, err, sizeof err), -1);
  ck_assert_ptr_nonnull(strstr(err, "i32"));
  ck_assert_int_eq(a.dtype, AGC_F32);
  agc_array_free(&a);

  double d[3] = {1.0 / 3.0, 1e300, -5.0};
  a = make_1d(AGC_F64, d, 3);
  ck_assert_int_eq(agc_array_convert(&a, AGC_F32, err, sizeof err), 0);
  ck_assert_float_eq(((float *)a.data)[0], (float)(1.0 / 3.0));
  ck_assert(isinf(((float *)a.data)[1]));
  ck_assert_float_eq(((float *)a.data)[2], -5.0f);
  agc_array_free(&a);

  int32_t iv[4] = {INT32_MIN, -1, 16777217, 7};
  a = make_1d(AGC_I32, iv, 4);
  ck_assert_int_eq(agc_array_convert(&a, AGC_F64, err, sizeof err), 0);
  for (int i = 0; i < 4; i++)
    ck_assert_double_eq(((double *)a.data)[i], (double)iv[i]);
  agc_array_free(&a);
  a = make_1d(AGC_I32, iv, 4);
  ck_assert_int_eq(agc_array_convert(&a, AGC_F32, err, sizeof err), 0);
  for (int i = 0; i < 4; i++)
    ck_assert_float_eq(((float *)a.data)[i], (float)iv[i]);
  agc_array_free(&a);

  a = make_1d(AGC_F32, f, 0);
  ck_assert_int_eq(agc_array_convert(&a, AGC_F64, err, sizeof err), 0);
  ck_assert_int_eq(a.dtype, AGC_F64);
  agc_array_free(&a);

  /* A larger array exercises the in-place grow/shrink paths thoroughly. */
  enum { N = 100000 };
  float *big = malloc(N * sizeof *big);
  for (int i = 0; i < N; i++)
    big[i] = (float)i * 0.25f - 7.0f;
  a = make_1d(AGC_F32, big, N);
  ck_assert_int_eq(agc_array_convert(&a, AGC_F64, err, sizeof err), 0);
  for (int i = 0; i < N; i++)
    ck_assert_double_eq(((double *)a.data)[i], (double)big[i]);
  ck_assert_int_eq(agc_array_convert(&a, AGC_F32, err, sizeof err), 0);
  ck_assert_int_eq(memcmp(a.data, big, N * sizeof *big), 0);
  agc_array_free(&a);
  free(big);
}
END_TEST

/* agc_npy_read_shaped: the expected shape is checked against the header
 * before any data is read (a pipe promising 2^34 elements costs nothing);
 * a file of the right shape reads as with agc_npy_read. */
START_TEST(test_read_shaped) {
  static unsigned char buf[4096];
  const char *p = tpath("s.npy");
  int64_t want[2] = {3, 2};
  float six[6] = {1, 2, 3, 4, 5, 6};
  put_file(p, buf, make_npy(buf, 1, "{'descr': '<f4', 'fortran_order': False, "
                            "'shape': (3, 2), }", six, sizeof six));
  agc_array a;
  ck_assert_int_eq(agc_npy_read_shaped(p, &a, 2, want, err, sizeof err), 0);
  ck_assert_int_eq(a.count, 6);
  ck_assert(((float *)a.data)[5] == 6.0f);
  agc_array_free(&a);
  int64_t other[1] = {6};
  ck_assert_int_eq(agc_npy_read_shaped(p, &a, 1, other, err, sizeof err), -1);
  ck_assert_ptr_null(a.data);
  ck_assert_msg(strstr(err, "shape [3, 2], expected [6]") != NULL, "%s", err);
  /* a header claiming 2^34 elements, then a few bytes: refused by shape */
  put_file(p, buf, make_npy(buf, 1, "{'descr': '<f8', 'fortran_order': False, "
                            "'shape': (17179869184,), }", six, sizeof six));
  int64_t two[1] = {2};
  ck_assert_int_eq(agc_npy_read_shaped(p, &a, 1, two, err, sizeof err), -1);
  ck_assert_msg(strstr(err, "shape [17179869184], expected [2]") != NULL, "%s",
                err);
  ck_assert_int_eq(agc_npy_read_shaped(p, &a, -1, NULL, err, sizeof err), -1);
}
END_TEST

static Suite *npy_suite(void) {
  Suite *s = suite_create("npy");
  TCase *tc = tcase_create("npy");
  tcase_add_checked_fixture(tc, setup, teardown);
  tcase_set_timeout(tc, 60);
  tcase_add_test(tc, test_dtype_info);
  tcase_add_test(tc, test_round_trip_shapes);
  tcase_add_test(tc, test_round_trip_empty);
  tcase_add_test(tc, test_values_f32_f64_i32);
  tcase_add_test(tc, test_header_bytes_like_numpy);
  tcase_add_test(tc, test_read_variants);
  tcase_add_test(tc, test_bad_preamble);
  tcase_add_test(tc, test_bad_dtype_messages);
  tcase_add_test(tc, test_bad_header_text);
  tcase_add_test(tc, test_bad_shapes);
  tcase_add_test(tc, test_bad_sizes);
  tcase_add_test(tc, test_read_shaped);
  tcase_add_test(tc, test_unreadable);
  tcase_add_test(tc, test_truncations);
  tcase_add_test(tc, test_header_byte_flips);
  tcase_add_test(tc, test_write_atomic);
  tcase_add_test(tc, test_write_failures);
  tcase_add_test(tc, test_write_mode_follows_umask);
  tcase_add_test(tc, test_convert);
  suite_add_tcase(s, tc);
  return s;
}

int main(void) {
  SRunner *sr = srunner_create(npy_suite());
  srunner_run_all(sr, CK_NORMAL);
  int failed = srunner_ntests_failed(sr);
  srunner_free(sr);
  return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
