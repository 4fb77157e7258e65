/* compile.c — the library entry points: one compilation, one arena. */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "agc.h"

/* Names the generated function must not take: C keywords and the names of
 * the C library functions the generated code or its callers use (with the
 * math functions of ops.def, op_is_libm_name). */
static const char *const reserved[] = {
    "auto", "break", "case", "char", "const", "continue", "default", "do",
    "double", "else", "enum", "extern", "float", "for", "goto", "if",
    "inline", "int", "long", "register", "restrict", "return", "short",
    "signed", "sizeof", "static", "struct", "switch", "typedef", "union",
    "unsigned", "void", "volatile", "while", "main", "malloc", "free",
    "memcpy", "memset", "abs", "exit", "abort", "printf", NULL};


static void check_fn_name(Ctx *c, const char *name) {
  if (!name[0] || !(isalpha((unsigned char)name[0]) || name[0] == '_'))
    error_plain(c, "'%s' is not a valid C function name", name);
  for (const char *p = name; *p; p++)
    if (!(isalnum((unsigned char)*p) || *p == '_'))
      error_plain(c, "'%s' is not a valid C function name", name);
  /* C reserves every file-scope name that starts with an underscore */
  if (name[0] == '_')
    error_plain(c, "'%s' is reserved in C (leading underscore)", name);
  /* agc_gemm_f32, agc_row_f32, ...: the JIT links generated code against
     the runtime's agc_* functions (runtime/jit.c), so the whole prefix is
     theirs */
  if (strncmp(name, "agc_", 4) == 0)
    error_plain(c, "'%s' cannot name the generated function: it is a "
                "function of the agc runtime, or a name kept for one (use "
                "'graph NAME' or --name)", name);
  int clash = op_is_libm_name(name); /* the math functions of ops.def */
  for (const char *const *r = reserved; *r && !clash; r++)
    clash = strcmp(*r, name) == 0;
  if (clash)
    error_plain(c, "'%s' cannot name the generated function: it is a C "
                "keyword or library name (use 'graph NAME' or --name)",
                name);
  if (strlen(name) > 100)
    error_plain(c, "function name '%s' is too long", name);
}

/* The file stem as an identifier: "my-model.graph" -> "my_model". */
static const char *stem_name(Ctx *c, const char *path) {
  const char *base = strrchr(path, '/');
  base = base ? base + 1 : path;
  size_t n = strcspn(base, ".");
  if (n == 0) /* ".graph": no stem */
    return "graph";
  char *s = arena_alloc(&c->arena, n + 3);
  size_t k = 0;
  /* a digit cannot start a C name; an underscore would be reserved */
  if (isdigit((unsigned char)base[0]) || !isalpha((unsigned char)base[0]))
    s[k++] = 'g', s[k++] = '_';
  for (size_t i = 0; i < n; i++)
    s[k++] = isalnum((unsigned char)base[i]) ? base[i] : '_';
  s[k] = 0;
  return s;
}

Ctx *agc_compile(const char *path, const char *src, size_t len,
                 const Options *opt) {
  Ctx *c = calloc(1, sizeof *c);
  if (!c)
    abort();
  c->opt = *opt;
  c->path = path;
  c->src = src;
  c->srclen = len;
  if (setjmp(c->jmp))
    return c; /* an error: c->failed and c->diag say which */
  if (opt->api.threads < 0 || opt->api.threads > AGC_MAX_THREADS)
    error_plain(c, "threads must be from 1 to %d, not %d", AGC_MAX_THREADS,
                opt->api.threads);
  if (opt->api.threads_min_macs < 0)
    error_plain(c, "threads_min_macs must be 0 (the default) or more");
  if (opt->api.threads_min_elems < 0)
    error_plain(c, "threads_min_elems must be 0 (the default) or more");
  if (opt->api.threads > 1 && opt->target == TARGET_MCU)
    error_plain(c, "threads (%d) need the host target: the mcu C runs on one "
                "core", opt->api.threads);
  if (opt->api.perturb_seed && !opt->api.f64)
    error_plain(c, "perturb_seed is for f64 runs (f32 cannot hold 1 + 2^-24)");
  if (opt->api.name)
    c->name = opt->api.name;
  int ntok;
  Token *toks = lex(c, &ntok);
  parse_program(c, toks, ntok);
  free(c->toks); /* nothing points into them */
  c->toks = NULL;
  if (!c->name)
    c->name = stem_name(c, path);
  check_fn_name(c, c->name);
  if (opt->after && !pass_known(opt->after))
    error_plain(c, "no pass named '%s' (passes: " PASS_LIST ")", opt->after);
  run_passes(c, opt->after);
  return c;
}

int agc_failed(const Ctx *c) { return c->failed; }
const char *agc_messages(const Ctx *c) { return c->diag.s ? c->diag.s : ""; }

int agc_emit(Ctx *c, int kind, int target, StrBuf *out) {
  const Target *t = target_get(target);
  if (c->failed || !t)
    return -1;
  if (setjmp(c->jmp))
    return -1;
  switch (kind) {
  case EMIT_C:
    emit_c(c, ctx_plan(c), t, out);
    break;
  case EMIT_PLAN:
    emit_plan(c, out);
    break;
  case EMIT_MEM:
    emit_mem(c, t, out);
    break;
  case EMIT_LOOPS:
    emit_loops(c, t, out);
    break;
  case EMIT_H:
    emit_h(c, out);
    break;
  case EMIT_IR:
    dump_ir(c, out);
    break;
  case EMIT_DOT:
    dump_dot(c, out);
    break;
  default:
    return -1;
  }
  return 0;
}

int64_t agc_work_bytes(Ctx *c, int64_t *naive) {
  if (c->failed || setjmp(c->jmp))
    return -1;
  const Plan *p = ctx_plan(c);
  if (naive)
    *naive = p->naive_bytes;
  return p->work_bytes;
}

void agc_free(Ctx *c) {
  if (!c)
    return;
  arena_free(&c->arena);
  arena_free(&c->tmp);
  free(c->toks);
  arena_free(&c->tmp_loop);
  lower_free(c->loops);
  free(c->g.nodes);
  free(c->g.hash);
  arena_free(&c->g.ins);
  free(c->prev.nodes);
  free(c->prev.hash);
  arena_free(&c->prev.ins);
  free(c->spare_nodes);
  free(c->spare_hash);
  free(c->rb_rest);
  sb_free(&c->diag);
  free(c);
}
