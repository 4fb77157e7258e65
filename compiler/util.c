/* util.c — arena, string buffer and diagnostics. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "agc.h"

struct ArenaBlock {
  ArenaBlock *next;
  size_t used, cap;
  int own; /* a large allocation's block of its own */
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

/* A large allocation gets a block of its own, behind the current one, so
 * that arena_grow can give it back when it is replaced. */
#define ARENA_OWN_BLOCK (64u << 10)

void *arena_alloc(Arena *a, size_t n) {
  void *p = arena_alloc_raw(a, n);
  memset(p, 0, n);
  return p;
}

void *arena_alloc_raw(Arena *a, size_t n) {
  n = (n + 15) & ~(size_t)15;
  ArenaBlock *b = a->head;
  if (n >= ARENA_OWN_BLOCK) {
    ArenaBlock *own = xmalloc(sizeof *own + n);
    own->used = own->cap = n; /* full: later small allocations go elsewhere */
    own->own = 1;
    if (b) {
      own->next = b->next;
      b->next = own;
    } else {
      own->next = NULL;
      a->head = own;
    }
    return own->data;
  }
  if (!b || b->cap - b->used < n) {
    /* small graphs (most compilations) stay in one small first block */
    size_t blk = b ? (size_t)1 << 20 : (size_t)32 << 10;
    size_t cap = n > blk ? n : blk;
    b = xmalloc(sizeof *b + cap);
    b->next = a->head;
    b->used = 0;
    b->cap = cap;
    b->own = 0;
    a->head = b;
  }
  void *p = (char *)b->data + b->used;
  b->used += n;
  return p;
}

void arena_release(Arena *a, void *old, size_t oldn) {
  if (old && oldn >= ARENA_OWN_BLOCK)
    for (ArenaBlock **bp = &a->head; *bp; bp = &(*bp)->next)
      if ((void *)(*bp)->data == old) {
        ArenaBlock *dead = *bp;
        *bp = dead->next;
        free(dead);
        return;
      }
}

void *arena_grow(Arena *a, void *old, size_t oldn, size_t n) {
  void *p = arena_alloc(a, n);
  if (old && oldn)
    memcpy(p, old, oldn < n ? oldn : n);
  arena_release(a, old, oldn);
  return p;
}

char *arena_strndup(Arena *a, const char *s, size_t n) {
  char *p = arena_alloc_raw(a, n + 1);
  memcpy(p, s, n);
  p[n] = 0;
  return p;
}

/* Empties the arena, keeping its newest ordinary block for reuse. */
void arena_clear(Arena *a) {
  ArenaBlock *keep = a->head;
  if (keep && keep->own)
    keep = NULL;
  for (ArenaBlock *b = a->head; b;) {
    ArenaBlock *next = b->next;
    if (b != keep)
      free(b);
    b = next;
  }
  if (keep) {
    keep->next = NULL;
    keep->used = 0;
  }
  a->head = keep;
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

/* Inserts n bytes at byte pos (<= b->len). */
void sb_insert(StrBuf *b, size_t pos, const char *s, size_t n) {
  sb_reserve(b, n);
  memmove(b->s + pos + n, b->s + pos, b->len - pos + 1);
  memcpy(b->s + pos, s, n);
  b->len += n;
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
  if (!c->lines) { /* where each line starts, found once: a graph with
                      50,000 warnings must not rescan the source for each */
    int n = 1;
    for (const char *q = p; q < end; q++)
      n += *q == '\n';
    c->lines = arena_alloc(&c->arena, sizeof *c->lines * (size_t)(n + 1));
    c->nlines = 0;
    c->lines[c->nlines++] = p;
    for (const char *q = p; q < end; q++)
      if (*q == '\n')
        c->lines[c->nlines++] = q + 1;
  }
  p = loc.line <= c->nlines ? c->lines[loc.line - 1] : end;
  /* the line ends at a newline; a carriage return is only part of that
     newline (CRLF) or of the end: elsewhere the lexer saw a blank */
  const char *e = p;
  while (e < end && *e != '\n' &&
         !(*e == '\r' && (e + 1 == end || e[1] == '\n')))
    e++;
  /* a long line is shown as a window around the column, so the caret
     always sits under the excerpt it belongs to */
  const char *from = p, *to = e;
  const char *at = p + (loc.col > 0 ? loc.col - 1 : 0);
  if (at > e)
    at = e;
  enum { WIDE = 200, SIDE = 90 };
  if (e - p > WIDE) {
    if (at - p > SIDE)
      from = at - SIDE;
    if (e - at > SIDE)
      to = at + SIDE;
  }
  sb_puts(&c->diag, from > p ? "  ..." : "  ");
  for (const char *q = from; q < to; q++)
    sb_putc(&c->diag, (*q == '\t' || (unsigned char)*q >= 32) ? *q : ' ');
  sb_puts(&c->diag, to < e ? "...\n  " : "\n  ");
  if (from > p)
    sb_puts(&c->diag, "   ");
  for (const char *q = from; q < at; q++)
    sb_putc(&c->diag, *q == '\t' ? '\t' : ' ');
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
