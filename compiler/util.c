/* util.c — arena, string buffer and diagnostics. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "agc.h"

struct ArenaBlock {
  ArenaBlock *next;
  size_t used, cap;
  max_align_t data[];
};

/* Allocation failure is the one thing we cannot report as a user error
 * without memory; abort is the honest answer. */
static void *xmalloc(size_t n) {
  void *p = malloc(n ? n : 1);
  if (!p) {
    fputs("agc: out of memory\n", stderr);
    abort();
  }
  return p;
}

void *arena_alloc(Arena *a, size_t n) {
  n = (n + 15) & ~(size_t)15;
  ArenaBlock *b = a->head;
  if (!b || b->cap - b->used < n) {
    size_t cap = n > (1 << 20) ? n : (1 << 20);
    b = xmalloc(sizeof *b + cap);
    b->next = a->head;
    b->used = 0;
    b->cap = cap;
    a->head = b;
  }
  void *p = (char *)b->data + b->used;
  b->used += n;
  memset(p, 0, n);
  return p;
}

char *arena_strndup(Arena *a, const char *s, size_t n) {
  char *p = arena_alloc(a, n + 1);
  memcpy(p, s, n);
  p[n] = 0;
  return p;
}

void arena_free(Arena *a) {
  ArenaBlock *b = a->head;
  while (b) {
    ArenaBlock *next = b->next;
    free(b);
    b = next;
  }
  a->head = NULL;
}

static void sb_reserve(StrBuf *b, size_t extra) {
  if (b->len + extra + 1 <= b->cap)
    return;
  size_t cap = b->cap ? b->cap : 256;
  while (cap < b->len + extra + 1)
    cap *= 2;
  char *s = realloc(b->s, cap);
  if (!s) {
    fputs("agc: out of memory\n", stderr);
    abort();
  }
  b->s = s;
  b->cap = cap;
}

void sb_putc(StrBuf *b, char ch) {
  sb_reserve(b, 1);
  b->s[b->len++] = ch;
  b->s[b->len] = 0;
}

void sb_puts(StrBuf *b, const char *s) {
  size_t n = strlen(s);
  sb_reserve(b, n);
  memcpy(b->s + b->len, s, n + 1);
  b->len += n;
}

static void sb_vprintf(StrBuf *b, const char *fmt, va_list ap) {
  va_list ap2;
  va_copy(ap2, ap);
  int n = vsnprintf(NULL, 0, fmt, ap2);
  va_end(ap2);
  if (n < 0)
    return;
  sb_reserve(b, (size_t)n);
  vsnprintf(b->s + b->len, (size_t)n + 1, fmt, ap);
  b->len += (size_t)n;
}

void sb_printf(StrBuf *b, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  sb_vprintf(b, fmt, ap);
  va_end(ap);
}

void sb_putn(StrBuf *b, const char *s, size_t n) {
  sb_reserve(b, n);
  memcpy(b->s + b->len, s, n);
  b->len += n;
  b->s[b->len] = 0;
}

int read_text_file(const char *path, StrBuf *b, char *err, size_t errlen) {
  FILE *f = fopen(path, "rb");
  if (!f) {
    snprintf(err, errlen, "%s: cannot open: %s", path, strerror(errno));
    return -1;
  }
  char chunk[65536];
  size_t n;
  while ((n = fread(chunk, 1, sizeof chunk, f)) > 0) {
    sb_putn(b, chunk, n);
    if (b->len > MAX_SOURCE_BYTES) {
      snprintf(err, errlen, "%s: file larger than 64 MiB", path);
      fclose(f);
      return -1;
    }
  }
  int bad = ferror(f), e = errno;
  fclose(f);
  if (bad) {
    snprintf(err, errlen, "%s: cannot read: %s", path, strerror(e));
    return -1;
  }
  return 0;
}

/* Optimal string alignment distance, case-insensitive; names are short. */
static int edit_distance(const char *a, const char *b) {
  size_t n = strlen(a), m = strlen(b);
  if (n > 63 || m > 63)
    return 1 << 20;
  int d[64][64];
  for (size_t i = 0; i <= n; i++)
    d[i][0] = (int)i;
  for (size_t j = 0; j <= m; j++)
    d[0][j] = (int)j;
  for (size_t i = 1; i <= n; i++)
    for (size_t j = 1; j <= m; j++) {
      int ca = a[i - 1] | 0x20, cb = b[j - 1] | 0x20; /* letters: fold case */
      int sub = d[i - 1][j - 1] + (ca != cb);
      int del = d[i - 1][j] + 1, ins = d[i][j - 1] + 1;
      int v = sub < del ? sub : del;
      v = v < ins ? v : ins;
      if (i > 1 && j > 1 && ca == (b[j - 2] | 0x20) &&
          (a[i - 2] | 0x20) == cb && d[i - 2][j - 2] + 1 < v)
        v = d[i - 2][j - 2] + 1;
      d[i][j] = v;
    }
  return d[n][m];
}

const char *nearest_name(const char *word, const char *const *cands, int n) {
  const char *best = NULL;
  int bestd = (int)strlen(word) / 3 + 1; /* must beat this */
  for (int i = 0; i < n; i++) {
    if (!cands[i] || strcmp(cands[i], word) == 0)
      continue;
    int dist = edit_distance(word, cands[i]);
    if (dist < bestd) {
      best = cands[i];
      bestd = dist;
    }
  }
  return best;
}

void sb_free(StrBuf *b) {
  free(b->s);
  b->s = NULL;
  b->len = b->cap = 0;
}

/* FILE:LINE:COL: KIND: MESSAGE, then the line and a caret under COL. */
static void diag(Ctx *c, Loc loc, const char *kind, const char *fmt,
                 va_list ap) {
  sb_printf(&c->diag, "%s:%d:%d: %s: ", c->path, loc.line, loc.col, kind);
  sb_vprintf(&c->diag, fmt, ap);
  sb_putc(&c->diag, '\n');
  if (loc.line <= 0 || !c->src)
    return;
  const char *p = c->src, *end = c->src + c->srclen;
  for (int l = 1; l < loc.line && p < end; p++)
    if (*p == '\n')
      l++;
  const char *e = p;
  while (e < end && *e != '\n' && *e != '\r')
    e++;
  sb_puts(&c->diag, "  ");
  for (const char *q = p; q < e; q++)
    sb_putc(&c->diag, (*q == '\t' || (unsigned char)*q >= 32) ? *q : ' ');
  sb_puts(&c->diag, "\n  ");
  for (int i = 1; i < loc.col && p + i - 1 < e; i++)
    sb_putc(&c->diag, p[i - 1] == '\t' ? '\t' : ' ');
  sb_puts(&c->diag, "^\n");
}

void error_at(Ctx *c, Loc loc, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  diag(c, loc, "error", fmt, ap);
  va_end(ap);
  c->failed = 1;
  longjmp(c->jmp, 1);
}

void warn_at(Ctx *c, Loc loc, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  diag(c, loc, "warning", fmt, ap);
  va_end(ap);
  c->nwarn++;
}

void error_plain(Ctx *c, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  sb_printf(&c->diag, "%s: error: ", c->path);
  sb_vprintf(&c->diag, fmt, ap);
  sb_putc(&c->diag, '\n');
  va_end(ap);
  c->failed = 1;
  longjmp(c->jmp, 1);
}
