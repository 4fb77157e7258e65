/* lex.c — the .graph tokenizer.
 *
 * Statements end at a newline, except inside (...) or [...]. Comments run
 * from '#' to the end of the line. The source must be UTF-8; anything but
 * ASCII is only allowed inside comments.
 */
#include <ctype.h>
#include <errno.h>
#include <float.h>
#include <limits.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "agc.h"

/* The number literal at p (line loc.line starts at bol): its token in
 * *out; returns the end of the literal. */
static const char *number(Ctx *c, const char *p, const char *end,
                          const char *bol, Loc loc, Token *out) {
  const char *s = p;
  int is_int = 1;
  while (p < end && isdigit((unsigned char)*p))
    p++;
  if (p < end && *p == '.') {
    is_int = 0;
    p++;
    while (p < end && isdigit((unsigned char)*p))
      p++;
  }
  if (p < end && (*p == 'e' || *p == 'E')) {
    const char *q = p + 1;
    if (q < end && (*q == '+' || *q == '-'))
      q++;
    if (q < end && isdigit((unsigned char)*q)) {
      is_int = 0;
      p = q;
      while (p < end && isdigit((unsigned char)*p))
        p++;
    } else {
      error_at(c, (Loc){loc.line, (int)(p - bol) + 1},
               "malformed number: exponent has no digits");
    }
  }
  if (p < end && (isalpha((unsigned char)*p) || *p == '_'))
    error_at(c, (Loc){loc.line, (int)(p - bol) + 1},
             "malformed number: unexpected '%c' after digits", *p);
  char buf[128];
  size_t len = (size_t)(p - s);
  if (len >= sizeof buf)
    error_at(c, loc, "number literal too long");
  memcpy(buf, s, len);
  buf[len] = 0;
  errno = 0;
  double v = strtod(buf, NULL);
  /* one rule for both ends: a literal is 0 or a normal number of the
     graph's float type (f64: 2.2e-308 to 1.8e308; f32: 1.2e-38 to
     3.4e38); subnormal and underflowing literals are errors, like
     overflowing ones, never silently 0 */
  int nonzero = strcspn(buf, "123456789") < strcspn(buf, "eE");
  double lo = c->opt.api.f64 ? DBL_MIN : FLT_MIN;
  double hi = c->opt.api.f64 ? DBL_MAX : FLT_MAX;
  if (!isfinite(v) || v > hi)
    error_at(c, loc, "number '%s' is out of range for %s (largest %g)",
             buf, c->opt.api.f64 ? "f64" : "f32", hi);
  if (nonzero && v < lo)
    error_at(c, loc, "number '%s' is too small for %s (smallest %g; "
             "write 0 for zero)", buf, c->opt.api.f64 ? "f64" : "f32", lo);
  *out = (Token){.kind = T_NUM, .text = s, .len = (int)len, .line = loc.line,
                 .col = loc.col, .num = v, .is_int = is_int};
  return p;
}

/* Length of the valid UTF-8 sequence at p, or 0. */
static int utf8_len(const unsigned char *p, const unsigned char *end) {
  unsigned c = p[0];
  int n;
  unsigned min;
  if (c < 0x80)
    return 1;
  if ((c & 0xE0) == 0xC0)
    n = 2, min = 0x80, c &= 0x1F;
  else if ((c & 0xF0) == 0xE0)
    n = 3, min = 0x800, c &= 0x0F;
  else if ((c & 0xF8) == 0xF0)
    n = 4, min = 0x10000, c &= 0x07;
  else
    return 0;
  if (end - p < n)
    return 0;
  for (int i = 1; i < n; i++) {
    if ((p[i] & 0xC0) != 0x80)
      return 0;
    c = (c << 6) | (p[i] & 0x3F);
  }
  if (c < min || c > 0x10FFFF || (c >= 0xD800 && c <= 0xDFFF))
    return 0;
  return n;
}

static void check_utf8(Ctx *c) {
  const unsigned char *p = (const unsigned char *)c->src;
  const unsigned char *end = p + c->srclen;
  int line = 1, col = 1;
  while (p < end) {
    int n = utf8_len(p, end);
    if (n == 0)
      error_at(c, (Loc){line, col}, "invalid UTF-8 byte 0x%02x", *p);
    if (*p == 0)
      error_at(c, (Loc){line, col}, "NUL byte in source");
    if (*p == '\n')
      line++, col = 1;
    else
      col++;
    p += n;
  }
}

static const char *puncts[] = {"**", "<=", ">=", "==", "!=", "(", ")", "[",
                               "]",  ",",  "=",  "+",  "-",  "*", "/", "@",
                               "<",  ">",  ".",  ":",  NULL};

Token *lex(Ctx *c, int *ntok) {
  check_utf8(c);
  int cap = 256, n = 0, depth = 0;
  /* Tokens are c->toks, so that an error (a longjmp) leaks nothing
     (agc_free); grown by realloc, which moves a large array's pages
     instead of copying them and leaving the old ones behind */
  Token *t = malloc(sizeof *t * (size_t)cap);
  if (!t)
    abort();
  c->toks = t;
  const char *p = c->src, *end = c->src + c->srclen, *bol = p;
  int line = 1;
  if (end - p >= 3 && memcmp(p, "\xEF\xBB\xBF", 3) == 0)
    p = bol = p + 3; /* a UTF-8 byte-order mark is not content */
#define PUSH(tok)                                                              \
  do {                                                                         \
    if (n == cap) {                                                            \
      if (cap > INT_MAX / 2)                                                   \
        error_at(c, loc, "more than %d tokens", INT_MAX / 2);                  \
      t = realloc(t, sizeof *t * (size_t)cap * 2);                             \
      if (!t)                                                                  \
        abort();                                                               \
      c->toks = t;                                                             \
      cap *= 2;                                                                \
    }                                                                          \
    t[n++] = (tok);                                                            \
  } while (0)
  while (p < end) {
    Loc loc = {line, (int)(p - bol) + 1};
    char ch = *p;
    if (ch == '\n') {
      if (depth == 0)
        PUSH(((Token){.kind = T_NEWLINE, .text = p, .len = 1,
                      .line = loc.line, .col = loc.col}));
      p++;
      line++;
      bol = p;
      continue;
    }
    if (ch == ' ' || ch == '\t' || ch == '\r' || ch == '\f' || ch == '\v') {
      p++;
      continue;
    }
    if (ch == '#') {
      while (p < end && *p != '\n')
        p++;
      continue;
    }
    if (isalpha((unsigned char)ch) || ch == '_') {
      const char *s = p;
      while (p < end && (isalnum((unsigned char)*p) || *p == '_'))
        p++;
      if (p - s > 200)
        error_at(c, loc, "identifier longer than 200 characters");
      PUSH(((Token){.kind = T_IDENT, .text = s, .len = (int)(p - s),
                    .line = loc.line, .col = loc.col}));
      continue;
    }
    if (isdigit((unsigned char)ch) ||
        (ch == '.' && p + 1 < end && isdigit((unsigned char)p[1]))) {
      Token tok;
      p = number(c, p, end, bol, loc, &tok);
      PUSH(tok);
      continue;
    }
    int matched = 0;
    for (const char **q = puncts; *q; q++) {
      if (**q != ch)
        continue;
      size_t len = strlen(*q);
      if ((size_t)(end - p) >= len && memcmp(p, *q, len) == 0) {
        if (**q == '(' || **q == '[')
          depth++;
        if ((**q == ')' || **q == ']') && depth > 0)
          depth--;
        PUSH(((Token){.kind = T_PUNCT, .text = p, .len = (int)len,
                      .line = loc.line, .col = loc.col}));
        p += len;
        matched = 1;
        break;
      }
    }
    if (!matched) {
      if ((unsigned char)ch >= 0x80)
        error_at(c, loc, "non-ASCII character outside a comment");
      if (isprint((unsigned char)ch))
        error_at(c, loc, "unexpected character '%c'", ch);
      error_at(c, loc, "unexpected character 0x%02x", (unsigned char)ch);
    }
  }
  Loc loc = {line, (int)(p - bol) + 1};
  PUSH(((Token){.kind = T_NEWLINE, .text = p, .len = 0, .line = loc.line,
                .col = loc.col}));
  PUSH(((Token){.kind = T_EOF, .text = p, .len = 0, .line = loc.line,
                .col = loc.col}));
#undef PUSH
  *ntok = n;
  return t;
}
