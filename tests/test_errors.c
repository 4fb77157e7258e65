/* test_errors.c — every error of the language contract (graph-language.md,
 * "Errors") is an error, at the right FILE:LINE:COL, with the source line and
 * a caret under the column; and no input, however damaged, crashes the
 * compiler (every prefix of a valid graph, random byte mutations).
 *
 * Each case compiles a small source string named "t.graph" with
 * agc_compile() and checks that agc_messages() starts with exactly
 * "t.graph:LINE:COL: error: ", contains the key phrase(s), and is followed by
 * the source line and a caret line whose caret sits under COL.
 */
#include <check.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common.h"

typedef struct {
  const char *what;    /* what the case is about (shown on failure) */
  const char *src;
  size_t len;          /* 0: strlen(src) */
  int line, col;
  const char *phrase;  /* must occur in the message */
  const char *phrase2; /* also, or NULL */
} ErrCase;

/* The diagnostic for src must be an error at line:col containing the
 * phrases, then "  <source line>\n  <caret line>\n". */
static void expect_error(const ErrCase *e) {
  size_t len = e->len ? e->len : strlen(e->src);
  Options opt = {0};
  Ctx *c = agc_compile("t.graph", e->src, len, &opt);
  const char *msg = agc_messages(c);
  ck_assert_msg(agc_failed(c), "[%s] compiled without error; messages:\n%s",
                e->what, msg);
  char prefix[64];
  snprintf(prefix, sizeof prefix, "t.graph:%d:%d: error: ", e->line, e->col);
  ck_assert_msg(strncmp(msg, prefix, strlen(prefix)) == 0,
                "[%s] expected a message starting with '%s', got:\n%s",
                e->what, prefix, msg);
  const char *nl = strchr(msg, '\n');
  ck_assert_msg(nl != NULL, "[%s] message has no newline: %s", e->what, msg);
  size_t first = (size_t)(nl - msg);
  char *head = strndup(msg, first);
  ck_assert_msg(strstr(head, e->phrase) != NULL,
                "[%s] first line lacks '%s':\n%s", e->what, e->phrase, msg);
  ck_assert_msg(!e->phrase2 || strstr(head, e->phrase2) != NULL,
                "[%s] first line lacks '%s':\n%s", e->what, e->phrase2, msg);
  free(head);

  /* the source line (control characters but tab shown as spaces) */
  const char *p = e->src, *end = e->src + len;
  for (int l = 1; l < e->line && p < end; p++)
    if (*p == '\n')
      l++;
  const char *eol = p;
  while (eol < end && *eol != '\n' && *eol != '\r')
    eol++;
  const char *s = nl + 1;
  ck_assert_msg(s[0] == ' ' && s[1] == ' ', "[%s] no source line:\n%s",
                e->what, msg);
  s += 2;
  for (const char *q = p; q < eol; q++, s++) {
    char want = (*q == '\t' || (unsigned char)*q >= 32) ? *q : ' ';
    ck_assert_msg(*s == want, "[%s] source line not echoed:\n%s", e->what,
                  msg);
  }
  ck_assert_msg(*s == '\n', "[%s] source line too long:\n%s", e->what, msg);
  s++;
  /* the caret line: blanks (tabs where the source has them) then '^' */
  ck_assert_msg(s[0] == ' ' && s[1] == ' ', "[%s] no caret line:\n%s",
                e->what, msg);
  s += 2;
  for (int i = 1; i < e->col && p + i - 1 < eol; i++, s++)
    ck_assert_msg(*s == (p[i - 1] == '\t' ? '\t' : ' '),
                  "[%s] caret line: wrong blank before the caret:\n%s",
                  e->what, msg);
  ck_assert_msg(s[0] == '^' && s[1] == '\n',
                "[%s] caret not under column %d:\n%s", e->what, e->col, msg);
  agc_free(c);
}

#define E(what, src, line, col, phrase) {what, src, 0, line, col, phrase, NULL}
#define E2(what, src, line, col, p1, p2) {what, src, 0, line, col, p1, p2}
#define EN(what, src, line, col, phrase)                                       \
  {what, src, sizeof(src) - 1, line, col, phrase, NULL}

static const ErrCase cases[] = {
    /* ---- names ---- */
    E("unknown name", "input x[4]\ny = z + x\noutput y\n", 2, 5,
      "unknown name 'z'"),
    E("unknown name in output", "input x[4]\noutput z\n", 2, 8,
      "unknown name 'z'"),
    E("unknown name in backward", "param x[4]\nbackward z\n", 2, 10,
      "unknown name 'z'"),
    E("unknown name inside a call", "input x[2, 3]\ny = sum(exp(q), axis=0)\n",
      2, 13, "unknown name 'q'"),
    E("defined twice", "input x[4]\ny = x\ny = x\noutput y\n", 3, 1,
      "already defined"),
    E("input redefined by =", "input x[4]\nx = exp(x)\noutput x\n", 2, 1,
      "already defined"),
    E("declared twice", "input x[4]\nparam x[4]\n", 2, 7, "already defined"),
    E("grad_P name taken", "param x[3]\ngrad_x = x * 2\nl = sum(grad_x)\n"
      "backward l\n", 2, 1, "grad_x"),
    E("keyword as a value name", "input x\ntrue = x\n", 2, 1, "keyword"),
    E("keyword as an input name", "input graph[3]\n", 1, 7, "keyword"),
    E("keyword as a param name", "param true\n", 1, 7, "keyword"),
    E("keyword in an expression", "input x\ny = x + graph\noutput y\n", 2, 9,
      "graph"),
    /* ---- shapes ---- */
    E2("broadcast (autograd example 10)",
       "input y[4]\nY = ones([2, 2])\nl = mean(Y - y)\noutput l\n", 3, 12,
       "[2, 2]", "[4]"),
    E2("broadcast across a continued line",
       "input a[2, 3]\ninput b[3]\ny = sum(exp(a) +\n      b[0:2])\n"
       "output y\n", 3, 16, "[2, 3]", "[2]"),
    E2("broadcast_to incompatible", "input x[2, 3]\n"
       "y = broadcast_to(x, [3, 3])\noutput y\n", 2, 5, "[2, 3]", "[3, 3]"),
    E2("matmul inner dimension", "input a[2, 3]\ninput b[4, 5]\nc = a @ b\n"
       "output c\n", 3, 7, "inner dimension", "3 vs 4"),
    E("matmul inner dimension, square", "input a[2, 3]\ny = a @ a\n", 2, 7,
      "inner dimension"),
    E("matmul 1-D inner dimension", "input a[3]\ninput b[4]\ny = a @ b\n", 3,
      7, "inner dimension"),
    E("matmul of a scalar", "input a\ninput b[4]\ny = a @ b\n", 3, 7,
      "at least 1 dimension"),
    E("axis out of range", "input a[2, 3]\nc = sum(a, axis=2)\noutput c\n", 2,
      12, "out of range"),
    E("negative axis out of range", "input a[2, 3]\nc = sum(a, axis=-3)\n", 2,
      12, "out of range"),
    E("axis on a continued line", "input a[2, 3]\ny = sum(a,\n  axis=5)\n"
      "output y\n", 3, 3, "axis 5"),
    E("transpose axis out of range", "input x[3]\ny = transpose(x, 0, 1)\n",
      2, 21, "out of range"),
    E("unsqueeze axis out of range", "input x[2, 3]\ny = unsqueeze(x, 4)\n",
      2, 18, "out of range"),
    E("axis listed twice", "input a[2]\ny = sum(a, axis=[0, 0])\n", 2, 21,
      "twice"),
    E("axis not an integer", "input a[2]\ny = sum(a, axis=1.5)\n", 2, 12,
      "integer"),
    E("reshape element count", "input x[6]\ny = reshape(x, [4, 2])\n"
      "output y\n", 2, 5, "reshape"),
    E("reshape -1 not divisible", "input x[2, 3]\ny = reshape(x, [-1, 4])\n",
      2, 17, "-1"),
    E("reshape two -1", "input x[2, 3]\ny = reshape(x, [-1, -1])\n", 2, 21,
      "-1"),
    E("index out of range", "input x[3]\ny = x[5]\n", 2, 7, "out of range"),
    E("negative index out of range", "input x[3]\ny = x[-4]\n", 2, 7,
      "out of range"),
    E("empty slice", "input x[3]\ny = x[2:1]\n", 2, 7, "empty"),
    E("too many indices", "input x[3]\ny = x[0, 1]\n", 2, 10,
      "too many indices"),
    E(".T of a vector", "input x[3]\ny = x.T\n", 2, 7, ".T"),
    E("concat mismatch", "input x[3, 2]\ninput z[4, 3]\n"
      "y = concat([x, z], axis=0)\n", 3, 16, "concat"),
    E("more than 8 dimensions", "input x[1,1,1,1,1,1,1,1,1]\noutput x\n", 1,
      25, "8 dimensions"),
    /* ---- network ---- */
    E("conv2d channel mismatch", "input x[1, 3, 5, 5]\ninput w[2, 2, 3, 3]\n"
      "y = conv2d(x, w)\noutput y\n", 3, 15, "3 channels but w expects 2"),
    E("conv2d kernel larger than input", "input x[1, 1, 2, 2]\n"
      "input w[1, 1, 3, 3]\ny = conv2d(x, w)\noutput y\n", 3, 5,
      "larger than the padded input"),
    E("conv2d needs 4-D", "input x[3, 5, 5]\ninput w[2, 3, 3, 3]\n"
      "y = conv2d(x, w)\noutput y\n", 3, 12, "4-D"),
    E("conv2d stride 0", "input x[1, 1, 5, 5]\ninput w[1, 1, 3, 3]\n"
      "y = conv2d(x, w, stride=0)\noutput y\n", 3, 18, "stride"),
    E("max_pool2d window too large", "input x[1, 1, 2, 2]\n"
      "y = max_pool2d(x, 3)\noutput y\n", 2, 5, "larger than the input"),
    E("avg_pool2d without k", "input x[1, 1, 4, 4]\n"
      "y = avg_pool2d(x)\noutput y\n", 2, 5, "needs argument 'k'"),
    E("embedding with float indices", "input t[4, 3]\ninput i[2]\n"
      "y = embedding(t, i)\noutput y\n", 3, 18, "i32"),
    E("embedding of a 3-D table", "input t[4, 3, 2]\ninput i: i32[2]\n"
      "y = embedding(t, i)\noutput y\n", 3, 15, "2-D"),
    E("second derivative of max_pool2d",
      "param x[1, 1, 4, 4]\ninput c[1, 1, 2, 2]\n"
      "g = grad(sum(max_pool2d(x, 2) * c), x)\nloss = sum(g * g)\n"
      "output loss\nbackward loss\n", 3, 14, "second derivative"),
    /* ---- autograd ---- */
    E("grad of a non-scalar without seed",
      "param x[3]\ny = x * 2\ng = grad(y, x)\noutput g\n", 3, 10, "scalar"),
    E("grad seed of the wrong shape",
      "param x[3]\ninput v[4]\ny = x * 2\ng = grad(y, x, v)\noutput g\n", 4,
      16, "[4]"),
    E("grad with respect to an i32",
      "input l: i32[3]\nparam x[3]\ny = sum(x * 2)\ng = grad(y, l)\n"
      "output g\n", 4, 13, "i32"),
    E("backward of an i32 value", "input l: i32[3]\nbackward l\n", 2, 10,
      "i32"),
    E("an i32 param", "param l: i32[3]\n", 1, 10, "i32"),
    E("unknown element type", "input l: i64[3]\n", 1, 10, "i64"),
    E("backward root twice", "param x[3]\nl = sum(x)\nbackward l, l\n", 3, 13,
      "already"),
    E("output twice", "input x[3]\noutput x, x\n", 2, 11, "already"),
    E("cross_entropy float labels", "param z[4, 3]\ninput t[4]\n"
      "l = cross_entropy(z, t)\nbackward l\n", 3, 22, "i32"),
    E("cross_entropy label count", "param z[4, 3]\ninput t: i32[5]\n"
      "l = cross_entropy(z, t)\nbackward l\n", 3, 22, "[4]"),
    /* ---- syntax ---- */
    E("syntax error", "input x[3]\ny = x + * 2\n", 2, 9,
      "expected an expression"),
    E("unclosed parenthesis", "input x[3]\ny = (x + 1", 2, 11,
      "expected ')'"),
    E("unexpected character", "input a[2]\ny = a $ a\n", 2, 7, "'$'"),
    E("statement starting with =", "input a[2]\ny = a\n= 3\n", 3, 1,
      "expected a statement"),
    E("number then junk", "input a[2]\ny = 1.2.3\n", 2, 8, "expected"),
    E("exponent without digits", "input a[2]\ny = 2e\n", 2, 6, "exponent"),
    E("identifier starting with a digit", "input 3a[2]\n", 1, 8, "'a'"),
    E("number out of range", "input x[3]\ny = 1e999 * x\noutput y\n", 2, 5,
      "out of range"),
    E("'graph' not first", "param x[3]\ny = sum(x)\noutput y\ngraph foo\n",
      4, 1, "first"),
    E("empty output list", "input x[2]\ny = x\noutput\n", 3, 7, "expected"),
    E("slice with a step", "input x[2, 3]\ny = x[:, 1:2:1]\n", 2, 13,
      "step"),
    E("'.' not followed by T", "input x[2, 3]\ny = x.U\n", 2, 7,
      "only attribute is x.T"),
    /* ---- empty files ---- */
    EN("empty file", "", 1, 1, "empty"),
    E("only comments", "# only a comment\n\n   \n# another\n", 1, 1, "empty"),
    E("only blank lines", "\n\n \t \n", 1, 1, "empty"),
    EN("only a comment, no newline", "# c", 1, 1, "empty"),
    E("nothing to compute", "graph foo\n", 2, 1, "nothing to compute"),
    /* ---- bytes ---- */
    E("non-UTF-8 byte", "input x[3]\ny = x\xff + 1\n", 2, 6, "UTF-8"),
    E("non-UTF-8 byte in a comment", "input x[2] # \xc3\xc3\noutput x\n", 1,
      14, "UTF-8"),
    E("truncated UTF-8 at the end", "input x[2]\noutput x # \xe2\x82", 2, 12,
      "UTF-8"),
    E("UTF-16 surrogate", "input x[2] # \xed\xa0\x80\noutput x\n", 1, 14,
      "UTF-8"),
    E("overlong UTF-8", "input x[2] # \xc0\xaf\noutput x\n", 1, 14,
      "UTF-8"),
    E("beyond U+10FFFF", "input x[2] # \xf4\x90\x80\x80\noutput x\n", 1, 14,
      "UTF-8"),
    EN("NUL byte", "input x[3]\ny = x\0 + 1\noutput y\n", 2, 6, "NUL"),
    E("non-ASCII outside a comment", "input x[2]\ny = x + \xc3\xa9\n", 2, 9,
      "non-ASCII"),
    /* ---- dimensions ---- */
    E("dimension 0", "input x[0]\n", 1, 9, "positive"),
    E("dimension 0 later", "param x[3, 0]\n", 1, 12, "positive"),
    E("negative dimension", "input x[-2]\n", 1, 9, "positive"),
    E("fractional dimension", "input x[3.5]\n", 1, 9, "integer"),
    E("tensor too large", "input x[100000, 100000, 100000]\n", 1, 7,
      "too large"),
    E("tensor too large, just", "input a[65536, 32768]\noutput a\n", 1, 7,
      "too large"),
    E("dimension literal too large", "input x[99999999999999999999999]\n", 1,
      9, "too large"),
    E("matmul result too large",
      "input a[100000, 1]\ninput b[1, 100000]\ny = a @ b\noutput y\n", 3, 7,
      "too large"),
    E("constant too large", "y = zeros([100000, 100000])\noutput y\n", 1, 20,
      "too large"),
    E("broadcast result too large",
      "input a[100000, 1]\ninput b[1, 100000]\ny = a * b\noutput y\n", 3, 7,
      "too large"),
    E("broadcast with a constant too large",
      "input a[100000, 1]\ny = a + zeros([1, 100000])\noutput y\n", 2, 7,
      "too large"),
    E("broadcast too large at rank 8",
      "input a[65536, 1, 1, 1, 1, 1, 1, 1]\ninput b[65536, 1, 1, 1, 1, 1, 1]\n"
      "y = a * b\noutput y\n", 3, 7, "too large"),
    /* dimensions are 32-bit (agc.h: Shape): a computed one beyond
       MAX_ELEMS is an error before it is stored */
    E("concat result too large",
      "input a[2000000000]\ninput b[2000000000]\ny = concat([a, b])\n"
      "output y\n", 3, 5, "too large"),
    E("conv2d padded output too large",
      "input x[1, 1, 2147483647, 1]\nparam w[1, 1, 1, 1]\n"
      "y = conv2d(x, w, padding=1)\noutput y\n", 3, 5, "too large"),
    E("broadcast_to too large",
      "input x[2]\ny = broadcast_to(x, [100000, 100000])\noutput y\n", 2, 30,
      "too large"),
    /* ---- calls ---- */
    E("unknown function", "input x[3]\ny = foo(x)\n", 2, 5,
      "unknown function 'foo'"),
    E("too many arguments", "input x[3]\ny = exp(x, x)\n", 2, 12,
      "at most 1"),
    E("missing argument", "input a[2]\ny = where(a, a)\n", 2, 5,
      "needs argument 'b'"),
    E("no argument at all", "input a[2]\ny = sum()\n", 2, 5,
      "needs argument"),
    E("unknown named argument", "input x[3]\ny = sum(x, axes=0)\n", 2, 12,
      "no argument named 'axes'"),
    E("argument given twice", "input a[2]\ny = exp(x=a, x=a)\n", 2, 14,
      "twice"),
    E("positional after named", "input a[2]\ny = exp(x=a, a)\n", 2, 14,
      "positional"),
    E("keepdim not a boolean", "input a[2]\ny = sum(a, keepdim=2)\n", 2, 12,
      "keepdim"),
    /* ---- columns ---- */
    E("caret after a tab", "input x[3]\ny = x\t+ q\n", 2, 9,
      "unknown name 'q'"),
    E("CRLF line endings", "input x[3]\r\ny = x + q\r\n", 2, 9,
      "unknown name 'q'"),
    E("indented statement", "input x[3]\n    y = x + q\n", 2, 13,
      "unknown name 'q'"),
    E("error on a long line",
      "input x[3]\ny = x + x + x + x + x + x + x + x + x + x + x + x + x + x"
      " + x + x + x + x + x + x + x + x + x + x + x + x + x + q\noutput y\n",
      2, 113, "unknown name 'q'"),
    /* ---- number literals: 0 or a normal number of the float type ---- */
    E("f32 literal beyond FLT_MAX", "input x[2]\ny = x * 1e39\noutput y\n", 2,
      9, "out of range for f32"),
    E("subnormal literal", "input x[2]\ny = x * 1e-310\noutput y\n", 2, 9,
      "too small"),
    E("literal underflowing to 0", "input x[2]\ny = x * 1e-400\noutput y\n",
      2, 9, "too small"),
    E("f32 subnormal literal", "param p[2]\nl = sum(p / 1e-45)\nbackward l\n",
      2, 13, "too small for f32"),
    E("backward root twice", "param x[2]\na = x * 2\nbackward a, a\n", 3, 13,
      "'a' is already a backward root"),
    /* ---- limits ---- */
    E("grad() nested beyond the limit",
      "param x[2]\nl = sum(grad(sum(grad(sum(grad(sum(grad(sum(grad(sum(grad("
      "sum(grad(sum(grad(sum(grad(sum(sin(x)), x) * x), x) * x), x) * x), x) "
      "* x), x) * x), x) * x), x) * x), x) * x), x) * x)\noutput l\n",
      2, 9, "at most 8 nested grad()"),
};
#define NCASES ((int)(sizeof cases / sizeof cases[0]))

/* ---- errors that teach: the whole first line of the message ------------ */

typedef struct {
  const char *src;
  const char *first_line; /* exactly, without the newline */
} Teach;

static const Teach teach[] = {
    /* unknown keyword argument: PyTorch's dim= is the language's axis= */
    {"input x[2, 3]\ny = sum(x, dim=1)\noutput y\n",
     "t.graph:2:12: error: sum() has no argument named 'dim'; did you mean "
     "'axis'?"},
    {"input x[2, 3]\ny = max(x, keepdims=true)\noutput y\n",
     "t.graph:2:12: error: max() has no argument named 'keepdims'; did you "
     "mean 'keepdim'?"},
    {"input x[2, 3]\ny = softmax(x, axsi=0)\noutput y\n",
     "t.graph:2:16: error: softmax() has no argument named 'axsi'; did you "
     "mean 'axis'?"},
    {"input x[2, 3]\ny = reshape(x, size=[6])\noutput y\n",
     "t.graph:2:16: error: reshape() has no argument named 'size'; did you "
     "mean 'shape'?"},
    {"input x[2, 3]\ny = sum(x, foo=1)\noutput y\n",
     "t.graph:2:12: error: sum() has no argument named 'foo' (its arguments: "
     "x, axis, keepdim)"},
    /* unknown functions */
    {"input x[2, 3]\ny = reluu(x)\noutput y\n",
     "t.graph:2:5: error: unknown function 'reluu'; did you mean 'relu'?"},
    {"input x[2, 3]\ny = sigmiod(x)\noutput y\n",
     "t.graph:2:5: error: unknown function 'sigmiod'; did you mean "
     "'sigmoid'?"},
    {"input x[2, 3]\ny = cat([x, x], axis=0)\noutput y\n",
     "t.graph:2:5: error: unknown function 'cat'; did you mean 'concat'?"},
    {"input x[2, 3]\ny = matmul(x, x)\noutput y\n",
     "t.graph:2:5: error: unknown function 'matmul'; use the @ operator: "
     "a @ b"},
    {"input x[3]\ny = foo(x)\noutput y\n",
     "t.graph:2:5: error: unknown function 'foo' (docs/language.md lists the "
     "functions)"},
    /* unknown names: the nearest defined one */
    {"input x[3]\nhidden = relu(x)\ny = hiden * 2\noutput y\n",
     "t.graph:3:5: error: unknown name 'hiden'; did you mean 'hidden'?"},
    {"input x[3]\nlogits = x * 2\noutput logit\n",
     "t.graph:3:8: error: unknown name 'logit'; did you mean 'logits'?"},
    {"input x[3]\ny = relu\noutput y\n",
     "t.graph:2:5: error: 'relu' is a function, not a value: call it, as in "
     "relu(x)"},
    {"param w[3]\nl = sum(w * w)\nbackward l\noutput grad_w\n",
     "t.graph:4:8: error: unknown name 'grad_w': 'backward' outputs grad_w by "
     "itself; inside expressions use grad(y, w)"},
    /* method syntax: the function form */
    {"input x[2, 3]\nprobs = softmax(x)\ns = probs.sum()\noutput s\n",
     "t.graph:3:11: error: 'probs.sum()' is method syntax, which the language "
     "does not have; write sum(probs)"},
    {"input x[2, 3]\ns = (x * 2).mean(axis=1)\noutput s\n",
     "t.graph:2:13: error: '(x * 2).mean(...)' is method syntax, which the "
     "language does not have; write mean(x * 2, axis=1)"},
    {"input x[2, 3]\ny = x.view(3, 2)\noutput y\n",
     "t.graph:2:7: error: 'x.view(...)' is method syntax, which the language "
     "does not have; write reshape(x, [3, 2])"},
    {"input x[2, 3]\ny = x.t()\noutput y\n",
     "t.graph:2:7: error: 'x.t()' is method syntax; write x.T"},
    {"input x[2, 3]\ny = x.shape\noutput y\n",
     "t.graph:2:7: error: no attribute '.shape': the only attribute is x.T, "
     "the transpose"},
};
#define NTEACH ((int)(sizeof teach / sizeof teach[0]))

START_TEST(test_teaching_message) {
  const Teach *t = &teach[_i];
  Options opt = {0};
  Ctx *c = agc_compile("t.graph", t->src, strlen(t->src), &opt);
  ck_assert_msg(agc_failed(c), "compiled: %s", t->src);
  const char *m = agc_messages(c);
  size_t n = strcspn(m, "\n");
  ck_assert_msg(strlen(t->first_line) == n &&
                    strncmp(m, t->first_line, n) == 0,
                "expected:\n%s\ngot:\n%s", t->first_line, m);
  agc_free(c);
}
END_TEST

START_TEST(test_error_case) { expect_error(&cases[_i]); }
END_TEST

/* The whole diagnostic, byte for byte, for one case. */
START_TEST(test_exact_diagnostic) {
  static const char src[] = "input x[4]\ny = z + x\noutput y\n";
  Options opt = {0};
  Ctx *c = agc_compile("t.graph", src, strlen(src), &opt);
  ck_assert(agc_failed(c));
  ck_assert_str_eq(agc_messages(c), "t.graph:2:5: error: unknown name 'z'\n"
                                    "  y = z + x\n"
                                    "      ^\n");
  StrBuf out = {0};
  ck_assert_int_eq(agc_emit(c, EMIT_C, 0, &out), -1); /* nothing to emit */
  sb_free(&out);
  agc_free(c);
}
END_TEST

/* The path given is the path printed. */
START_TEST(test_path_in_message) {
  static const char src[] = "input x[0]\n";
  Options opt = {0};
  Ctx *c = agc_compile("dir/model.graph", src, strlen(src), &opt);
  ck_assert(agc_failed(c));
  ck_assert_msg(strncmp(agc_messages(c), "dir/model.graph:1:9: error: ",
                        28) == 0, "%s", agc_messages(c));
  agc_free(c);
}
END_TEST

/* Warnings are not errors, and use the same format. */
START_TEST(test_warning_unused_param) {
  static const char src[] =
      "param x[3]\nparam w[3]\nl = sum(x)\nbackward l\n";
  Options opt = {0};
  Ctx *c = agc_compile("t.graph", src, strlen(src), &opt);
  ck_assert_msg(!agc_failed(c), "%s", agc_messages(c));
  const char *m = agc_messages(c);
  ck_assert_msg(strncmp(m, "t.graph:2:7: warning: ", 22) == 0, "%s", m);
  ck_assert_ptr_nonnull(strstr(m, "'w'"));
  agc_free(c);
}
END_TEST

/* The tool API reports the same message (without the final newline). */
START_TEST(test_api_error) {
  static const char src[] = "input y[4]\nY = ones([2, 2])\n"
                            "l = mean(Y - y)\noutput l\n";
  char err[512];
  agc_graph_options opt = {0};
  agc_graph *g =
      agc_graph_load_source("t.graph", src, strlen(src), &opt, err, sizeof err);
  ck_assert_ptr_null(g);
  ck_assert_msg(strncmp(err, "t.graph:3:12: error: ", 21) == 0, "%s", err);
  ck_assert_ptr_nonnull(strstr(err, "[2, 2]"));
  ck_assert_ptr_nonnull(strstr(err, "[4]"));
}
END_TEST

/* The library's thread options: a count out of 0..64, a negative
 * threshold and threads for the mcu are errors, each with its message. */
START_TEST(test_thread_options) {
  static const char src[] = "param w[4]\nl = sum(w * w)\noutput l\n"
                            "backward l\n";
  static const struct {
    int threads, mcu;
    int64_t min, min_elems;
    const char *msg;
  } bad[] = {
      {-1, 0, 0, 0, "error: threads must be from 1 to 64, not -1"},
      {65, 0, 0, 0, "error: threads must be from 1 to 64, not 65"},
      {2, 0, -1, 0, "error: threads_min_macs must be 0 (the default) or more"},
      {2, 0, 0, -1,
       "error: threads_min_elems must be 0 (the default) or more"},
      {2, 1, 0, 0, "error: threads (2) need the host target: the mcu C runs "
                   "on one core"},
  };
  for (size_t k = 0; k < sizeof bad / sizeof bad[0]; k++) {
    char err[512];
    agc_graph_options opt = {0};
    opt.threads = bad[k].threads;
    opt.mcu = bad[k].mcu;
    opt.threads_min_macs = bad[k].min;
    opt.threads_min_elems = bad[k].min_elems;
    agc_graph *g =
        agc_graph_load_source("t.graph", src, strlen(src), &opt, err, sizeof err);
    ck_assert_ptr_null(g);
    ck_assert_msg(strstr(err, bad[k].msg) != NULL, "case %zu: %s", k, err);
  }
  /* 1 and 64 are fine */
  for (int t = 1; t <= 64; t += 63) {
    char err[512];
    agc_graph_options opt = {0};
    opt.threads = t;
    agc_graph *g =
        agc_graph_load_source("t.graph", src, strlen(src), &opt, err, sizeof err);
    ck_assert_msg(g != NULL, "threads %d: %s", t, err);
    agc_graph_free(g);
  }
}
END_TEST

/* perturb_seed (testing): f64 only; each value f32 would round moves by
 * exactly 2^-24 of itself, one way or the other per element. y = p * 0.1
 * has two such nodes (the constant 0.1, which f32 cannot hold, and the
 * product): each element's ratio to the unperturbed y is a product of two
 * factors 1 +- 2^-24, and the elements of one run do not all draw the
 * same. */
START_TEST(test_perturb_seed) {
  static const char src[] = "param p[8]\ny = p * 0.1\noutput y\n";
  char err[512];
  agc_graph_options opt = {.perturb_seed = 1};
  agc_graph *g = agc_graph_load_source("t.graph", src, strlen(src), &opt, err, sizeof err);
  ck_assert_ptr_null(g);
  ck_assert_msg(strstr(err, "error: perturb_seed is for f64 runs") != NULL, "%s", err);
  const double p[8] = {1.5, -2.25, 3.125, 0.5, 0.75, -1.375, 2.5, 7.0};
  double y0[8], y[8];
  int differ = 0;
  for (int O0 = 0; O0 < 2; O0++)
    for (uint64_t seed = 0; seed <= 4; seed++) {
      agc_graph_options o = {.f64 = 1, .O0 = O0, .perturb_seed = seed};
      Run r = run_load_opt(src, &o);
      run_set(&r, "p", p, 8);
      run_call(&r);
      memcpy(seed ? y : y0, run_out(&r, "y"), sizeof y);
      run_free(&r);
      for (int k = 0; k < 8; k++) {
        if (seed == 0) {
          ck_assert(fabs(y0[k] - p[k] * 0.1) < 1e-16);
          continue;
        }
        double r = y[k] / y0[k], best = INFINITY;
        for (int up = 0; up <= 2; up++) /* (1 + d)^up (1 - d)^(2 - up) */
          best = fmin(best, fabs(r - pow(1 + 0x1p-24, up) * pow(1 - 0x1p-24, 2 - up)));
        ck_assert_msg(best < 1e-15, "O0 %d seed %d y[%d]: ratio 1 %+.3g", O0, (int)seed,
                      k, r - 1);
        differ |= y[k] / y0[k] != y[0] / y0[0];
      }
    }
  ck_assert_msg(differ, "every element drew the same sign");
  /* the seed's lowest bit: two values one f64 ulp apart move alike under
     even seeds, and apart under some odd ones */
  static const char src2[] = "param p[2]\ny = p * 0.5\noutput y\n";
  const double q[2] = {1.0, 1.0 + 0x1p-52};
  int apart[2] = {0, 0};
  for (uint64_t seed = 1; seed <= 16; seed++) {
    agc_graph_options o = {.f64 = 1, .perturb_seed = seed};
    Run r = run_load_opt(src2, &o);
    run_set(&r, "p", q, 2);
    run_call(&r);
    memcpy(y, run_out(&r, "y"), 2 * sizeof *y);
    run_free(&r);
    apart[seed & 1] += (y[0] > q[0] * 0.5) != (y[1] > q[1] * 0.5);
  }
  ck_assert_int_eq(apart[0], 0);
  ck_assert_msg(apart[1] > 0, "odd seeds moved values one ulp apart alike");
}
END_TEST

/* Run time: an i32 label out of range makes the call return 1 (the
 * tool API's contract), in range 0. */
START_TEST(test_label_out_of_range) {
  Run r = run_load("param z[2, 3]\ninput lab: i32[2]\n"
                   "loss = cross_entropy(z, lab)\noutput loss\nbackward loss\n");
  int32_t *lab = r.in[run_find(&r, 0, "lab")];
  const int32_t bad[] = {3, -1, 1000000};
  for (int k = 0; k < 3; k++) {
    lab[0] = 0, lab[1] = bad[k];
    ck_assert_int_eq(agc_graph_call(r.g, (const void *const *)r.in,
                                    (void *const *)r.out, r.work), 1);
  }
  /* the message names the input, the element and the allowed range */
  char err[512];
  lab[0] = 0, lab[1] = 3;
  ck_assert_int_eq(agc_graph_index_bound(r.g, run_find(&r, 0, "lab")), 3);
  ck_assert_int_eq(agc_graph_index_bound(r.g, run_find(&r, 0, "z")), 0);
  ck_assert_int_eq(agc_graph_index_error(r.g, (const void *const *)r.in, err,
                                         sizeof err), 1);
  ck_assert_str_eq(err, "input 'lab': lab[1] = 3 is out of range: "
                   "cross_entropy has 3 classes, so lab must be in 0..2");
  lab[0] = 0, lab[1] = 2;
  run_call(&r);
  ck_assert_double_eq_tol(run_out(&r, "loss")[0], log(3.0), 1e-12);
  run_free(&r);
}
END_TEST

/* embedding: a 2-D index names its element by row and column */
START_TEST(test_embedding_index_out_of_range) {
  Run r = run_load("param t[5, 2]\ninput idx: i32[2, 3]\n"
                   "y = sum(embedding(t, idx))\noutput y\nbackward y\n");
  int32_t *idx = r.in[run_find(&r, 0, "idx")];
  for (int k = 0; k < 6; k++)
    idx[k] = k % 5;
  run_call(&r);
  idx[4] = -1;
  ck_assert_int_eq(agc_graph_call(r.g, (const void *const *)r.in,
                                  (void *const *)r.out, r.work), 1);
  char err[512];
  ck_assert_int_eq(agc_graph_index_error(r.g, (const void *const *)r.in, err,
                                         sizeof err), 1);
  ck_assert_str_eq(err, "input 'idx': idx[1, 1] = -1 is out of range: the "
                   "embedding table has 5 rows, so idx must be in 0..4");
  run_free(&r);
}
END_TEST

/* A carriage return inside a line is a blank to the lexer; the excerpt
 * must not end there, or the caret lands after it (under nothing). */
START_TEST(test_caret_after_lone_cr) {
  Options opt = {0};
  const char *src = "input x\ny = x +\r q\noutput y\n";
  Ctx *c = agc_compile("t.graph", src, strlen(src), &opt);
  ck_assert_str_eq(agc_messages(c), "t.graph:2:10: error: unknown name 'q'\n"
                                    "  y = x +  q\n"
                                    "           ^\n");
  agc_free(c);
}
END_TEST

/* A long line is shown as a window around the column: the caret is under
 * the shown text, at the column's character. */
START_TEST(test_caret_in_long_line_window) {
  enum { DEPTH = 10000 };
  char *src = malloc(64 + 2 * DEPTH);
  char *p = src;
  p += sprintf(p, "input x\ny = ");
  for (int i = 0; i < DEPTH; i++)
    *p++ = '(';
  *p++ = 'q';
  for (int i = 0; i < DEPTH; i++)
    *p++ = ')';
  p += sprintf(p, "\noutput y\n");
  Options opt = {0};
  Ctx *c = agc_compile("t.graph", src, (size_t)(p - src), &opt);
  const char *m = agc_messages(c);
  ck_assert_msg(strstr(m, "t.graph:2:") == m && strstr(m, "nested too deeply"),
                "%s", m);
  const char *l2 = strchr(m, '\n') + 1, *l3 = strchr(l2, '\n') + 1;
  size_t shown = (size_t)(l3 - l2 - 1), caret = strcspn(l3, "^");
  ck_assert_msg(shown < 200, "excerpt of %zu characters", shown);
  ck_assert_msg(caret < shown && l2[caret] == '(' && l3[caret + 1] == '\n',
                "caret at %zu of %zu:\n%s", caret, shown, m);
  agc_free(c);
  free(src);
}
END_TEST

/* Moderate nesting compiles. */
START_TEST(test_nesting_moderate) {
  enum { DEPTH = 200 };
  char *src = malloc(64 + 2 * DEPTH + 4 * DEPTH);
  char *p = src;
  p += sprintf(p, "input x\ny = ");
  for (int i = 0; i < DEPTH; i++)
    *p++ = '(';
  *p++ = 'x';
  for (int i = 0; i < DEPTH; i++)
    *p++ = ')';
  for (int i = 0; i < DEPTH; i++)
    p += sprintf(p, "+-x");
  p += sprintf(p, "\noutput y\n");
  Options opt = {0};
  Ctx *c = agc_compile("t.graph", src, (size_t)(p - src), &opt);
  ck_assert_msg(!agc_failed(c), "%s", agc_messages(c));
  StrBuf out = {0};
  ck_assert_int_eq(agc_emit(c, EMIT_C, 0, &out), 0);
  sb_free(&out);
  agc_free(c);
  free(src);
}
END_TEST

/* ---- robustness: damaged inputs never crash ----------------------------- */

/* Uses most of the language; 669 bytes. */
static const char rich_src[] =
    "# a graph that uses most of the language\n"
    "graph rich\n"
    "input x[4, 3]\n"
    "input lab: i32[4]\n"
    "param W[3, 5]\n"
    "param b[5]\n"
    "param s\n"
    "h = tanh(x @ W + b) * s\n"
    "p = softmax(h, axis=-1)\n"
    "q = log_softmax(h[1:3, :], axis=1)\n"
    "r = sum(relu(h) ** 2, axis=0, keepdim=true) / mean(exp(-abs(h)))\n"
    "u = reshape(h, [-1, 4]).T @ ones([5, 2])\n"
    "v = concat([h, sigmoid(h)], axis=1)\n"
    "c = cross_entropy(h, lab) + mse_loss(p, full([4, 5], 0.2))\n"
    "m = max(v, axis=1) + min(h) - logsumexp(q) + prod(clamp(h, -0.5, 0.5) + "
    "1)\n"
    "w = where(h > 0, sqrt(square(h) + 1), -h) + maximum(h, 0.1) * "
    "minimum(s, 2)\n"
    "g = grad(c, h)\n"
    "loss = c + sum(m) + sum(w * g) + sum(u) + sum(r) + bce_with_logits(h, "
    "p)\n"
    "output loss, g\n"
    "backward loss\n";

static const char mlp_src[] =
    "# mlp.graph — two-layer perceptron, mean squared error\n"
    "graph mlp\n"
    "input x[32, 4]\n"
    "input t[32, 1]\n"
    "param W1[4, 16]\n"
    "param b1[16]\n"
    "param W2[16, 1]\n"
    "param b2[1]\n"
    "h    = tanh(x @ W1 + b1)\n"
    "y    = h @ W2 + b2\n"
    "loss = mean((y - t) ** 2)\n"
    "output loss\n"
    "backward loss\n";

/* Compiles src; if it is accepted, emits every artifact; if not, the
 * message must be a well-formed error. Returns 1 if accepted. */
static int compile_any(const char *src, size_t len) {
  Options opt = {0};
  Ctx *c = agc_compile("t.graph", src, len, &opt);
  int ok = !agc_failed(c);
  if (ok) {
    for (int k = EMIT_C; k <= EMIT_DOT; k++) {
      StrBuf out = {0};
      ck_assert_int_eq(agc_emit(c, k, k == EMIT_C, &out), 0);
      sb_free(&out);
    }
  } else {
    const char *m = agc_messages(c);
    ck_assert_msg(strncmp(m, "t.graph:", 8) == 0 && strstr(m, "error: "),
                  "malformed diagnostic:\n%.3000s", m);
  }
  agc_free(c);
  return ok;
}

/* Both seed graphs compile, and so does the f64 / no-grad / accumulate
 * variant of each. */
START_TEST(test_seed_graphs_compile) {
  const char *srcs[] = {rich_src, mlp_src};
  for (int i = 0; i < 2; i++) {
    ck_assert(compile_any(srcs[i], strlen(srcs[i])));
    for (int v = 0; v < 3; v++) {
      Options opt = {0};
      opt.api.f64 = v == 0, opt.api.no_grad = v == 1, opt.api.accumulate = v == 2;
      Ctx *c = agc_compile("t.graph", srcs[i], strlen(srcs[i]), &opt);
      ck_assert_msg(!agc_failed(c), "%s", agc_messages(c));
      StrBuf out = {0};
      ck_assert_int_eq(agc_emit(c, EMIT_C, 0, &out), 0);
      sb_free(&out);
      agc_free(c);
    }
  }
}
END_TEST

/* Every prefix (a file cut off anywhere) compiles or is an error. */
START_TEST(test_truncation) {
  const char *srcs[] = {rich_src, mlp_src};
  for (int i = 0; i < 2; i++) {
    size_t n = strlen(srcs[i]);
    int accepted = 0;
    for (size_t k = 0; k <= n; k++) {
      char *buf = malloc(k + 1); /* exactly k bytes: ASan sees overreads */
      memcpy(buf, srcs[i], k);
      accepted += compile_any(buf, k);
      free(buf);
    }
    ck_assert_int_gt(accepted, 0); /* the whole file, at least */
  }
}
END_TEST

/* Bytes the mutator draws from: the language's own characters, plus some
 * it must reject. */
static const char mut_alphabet[] =
    "abcxyzWbhsT_0123456789.eE+-*/@()[],=:<>!#\n\t \r\"$%";

static size_t mutate(Rng *r, const char *src, size_t n, char *buf) {
  memcpy(buf, src, n);
  int edits = 1 + (int)rng_below(r, 4);
  for (int e = 0; e < edits; e++) {
    size_t at = n ? rng_below(r, (unsigned)n) : 0;
    unsigned kind = rng_below(r, 6);
    char ch = rng_below(r, 16) == 0
                  ? (char)rng_below(r, 256)
                  : mut_alphabet[rng_below(r, sizeof mut_alphabet - 1)];
    if (kind == 0 && n) { /* replace */
      buf[at] = ch;
    } else if (kind == 1) { /* insert */
      memmove(buf + at + 1, buf + at, n - at);
      buf[at] = ch;
      n++;
    } else if (kind == 2 && n) { /* delete */
      memmove(buf + at, buf + at + 1, n - at - 1);
      n--;
    } else if (kind == 3 && n > 8) { /* duplicate a run */
      size_t len = 1 + rng_below(r, 8);
      if (at + len > n)
        len = n - at;
      memmove(buf + at + len, buf + at, n - at);
      n += len;
    } else if (kind == 4 && n) { /* swap two bytes */
      size_t b = rng_below(r, (unsigned)n);
      char t = buf[at];
      buf[at] = buf[b];
      buf[b] = t;
    } else if (n) { /* a digit becomes another number */
      for (size_t k = at; k < n; k++)
        if (buf[k] >= '0' && buf[k] <= '9') {
          static const char digs[] = "0123456789";
          buf[k] = digs[rng_below(r, 10)];
          break;
        }
    }
  }
  return n;
}

START_TEST(test_mutations) {
  Rng r = {0x5eed0000u + (uint64_t)_i};
  const char *srcs[] = {rich_src, mlp_src};
  int accepted = 0, total = 0;
  for (int it = 0; it < 3000; it++) {
    const char *s = srcs[it % 2];
    size_t n = strlen(s);
    char *buf = malloc(n + 64);
    size_t m = mutate(&r, s, n, buf);
    char *exact = malloc(m ? m : 1);
    memcpy(exact, buf, m);
    accepted += compile_any(exact, m);
    total++;
    free(exact);
    free(buf);
  }
  /* Sanity: the mutator is not so violent that nothing compiles. */
  ck_assert_int_gt(accepted, total / 50);
}
END_TEST

/* Accepted mutants also produce C that tcc compiles, and that runs on
 * zeroed inputs (i32 labels 0 are in range). */
START_TEST(test_mutations_jit) {
  Rng r = {0xabcdef00u};
  int jitted = 0;
  for (int it = 0; it < 2000 && jitted < 120; it++) {
    size_t n = strlen(rich_src);
    char *buf = malloc(n + 64);
    size_t m = mutate(&r, rich_src, n, buf);
    buf[m] = 0;
    Options opt = {0};
    Ctx *c = agc_compile("t.graph", buf, m, &opt);
    int ok = !agc_failed(c);
    agc_free(c);
    if (ok) {
      char err[2048];
      agc_graph_options gopt = {0};
      agc_graph *g = agc_graph_load_source("t.graph", buf, m, &gopt, err,
                                           sizeof err);
      ck_assert_msg(g != NULL, "accepted graph failed to load:\n%.1500s\n---\n%.1500s",
                    err, buf);
      agc_graph_free(g);
      jitted++;
    }
    free(buf);
  }
  ck_assert_int_gt(jitted, 10);
}
END_TEST

/* ===== regression tests for bugs found by this suite ===================== */

/* 1. Misleading messages.
 *  a. `backward y` in a graph without any param: the error says there is
 *     no backward ("t.graph:4:1: error: the graph has no output and no
 *     backward: nothing to compute", on the empty line after the end).
 *     Expected: an error on the backward line (3) saying there is no
 *     param to differentiate.
 *  b. matmul of two 1-D tensors reports the internally promoted shapes:
 *     "matmul inner dimensions differ: [1, 3] @ [4, 1] (3 vs 4)".
 *     Expected: the user's shapes, [3] @ [4]. */
static void expect_error_on_line(const char *src, int line,
                                 const char *phrase) {
  Options opt = {0};
  Ctx *c = agc_compile("t.graph", src, strlen(src), &opt);
  const char *m = agc_messages(c);
  char prefix[32];
  snprintf(prefix, sizeof prefix, "t.graph:%d:", line);
  ck_assert_msg(agc_failed(c), "no error:\n%s", m);
  ck_assert_msg(strncmp(m, prefix, strlen(prefix)) == 0, "%s", m);
  ck_assert_msg(strstr(m, phrase) != NULL, "lacks '%s':\n%s", phrase, m);
  agc_free(c);
}
START_TEST(test_known_bad_messages) {
  expect_error_on_line("input x[3]\ny = x * 2\nbackward y\n", 3, "param");
  expect_error_on_line("input a[3]\ninput b[4]\ny = a @ b\noutput y\n", 3,
                       "[3] @ [4]");
}
END_TEST

/* 2. Deep nesting overflows the C stack (recursive descent without a depth
 *    limit): 10000 nested parentheses, or 30000 unary minuses, or a chain
 *    of 30000 right-associative `**`, crash agc with SIGSEGV. Expected: a
 *    compile, or an error such as "expression nested too deeply". */
static void deep(const char *open, const char *mid, const char *close,
                 int depth) {
  size_t lo = strlen(open), lc = strlen(close);
  char *src = malloc(64 + (lo + lc) * (size_t)depth + strlen(mid));
  char *p = src;
  p += sprintf(p, "input x\ny = ");
  for (int i = 0; i < depth; i++)
    memcpy(p, open, lo), p += lo;
  p += sprintf(p, "%s", mid);
  for (int i = 0; i < depth; i++)
    memcpy(p, close, lc), p += lc;
  p += sprintf(p, "\noutput y\n");
  Options opt = {0};
  Ctx *c = agc_compile("t.graph", src, (size_t)(p - src), &opt);
  if (!agc_failed(c)) {
    StrBuf out = {0};
    agc_emit(c, EMIT_C, 0, &out);
    sb_free(&out);
  }
  agc_free(c);
  free(src);
}
START_TEST(test_known_bad_deep_nesting) {
  deep("(", "x", ")", 100000);
  deep("-", "x", "", 100000);
  deep("x**", "x", "", 100000);
  deep("exp(", "x", ")", 100000);
}
END_TEST

/* The loop checker (lower.c) verifies the loop-nest IR independently of
 * the plan that made it: a plan with a buffer too small for the loop that
 * writes it, or partial sums outside the scratch the plan owns, is an
 * internal error, never C that touches memory it does not own. The plans
 * are spoiled by hand after planning. */
static Ctx *planned(const char *src) {
  Options opt = {0};
  Ctx *c = agc_compile("t.graph", src, strlen(src), &opt);
  ck_assert_msg(!agc_failed(c), "%s", agc_messages(c));
  StrBuf b = {0};
  ck_assert_int_eq(agc_emit(c, EMIT_C, TARGET_HOST, &b), 0); /* plans */
  sb_free(&b);
  return c;
}

static void expect_loop_check(Ctx *c, const char *phrase) {
  StrBuf b = {0};
  int rc = agc_emit(c, EMIT_LOOPS, TARGET_HOST, &b);
  sb_free(&b);
  ck_assert_int_eq(rc, -1);
  ck_assert_msg(strstr(agc_messages(c), "internal error (please report): "
                       "loop check: ") && strstr(agc_messages(c), phrase),
                "%s", agc_messages(c));
  agc_free(c);
}

START_TEST(test_loop_check) {
  /* a matmul's result: its slice shrunk by 64 bytes */
  const char *mlp = "param W[4, 3]\ninput x[8, 4]\ny = tanh(x @ W)\n"
                    "loss = sum(y * y)\noutput loss\nbackward loss\n";
  Ctx *c = planned(mlp);
  Plan *p = (Plan *)ctx_plan(c);
  int shrunk = -1;
  for (int i = 0; i < c->g.n && shrunk < 0; i++)
    if (c->g.nodes[i].op == OP_MATMUL && p->off[i] >= 0 && p->size[i] > 64)
      shrunk = i, p->size[i] -= 64;
  ck_assert_int_ge(shrunk, 0);
  expect_loop_check(c, "bytes");
  /* a fused sum's partial sums moved into another buffer's slice */
  const char *rows = "param p[6, 5]\nloss = sum(sin(p) * p)\noutput loss\n"
                     "backward loss\n";
  c = planned(rows);
  p = (Plan *)ctx_plan(c);
  int moved = -1;
  for (int i = 0; i < c->g.n && moved < 0; i++)
    if (plan_acc_row(c, p, i) && p->acc_off[i] > 0)
      moved = i, p->acc_off[i] = 0;
  ck_assert_int_ge(moved, 0);
  expect_loop_check(c, "not in scratch the plan owns");
  /* unspoiled, both pass */
  c = planned(rows);
  StrBuf b = {0};
  ck_assert_int_eq(agc_emit(c, EMIT_LOOPS, TARGET_HOST, &b), 0);
  ck_assert_msg(b.s && strstr(b.s, "partial sums at work+"), "%s", b.s);
  sb_free(&b);
  agc_free(c);
}
END_TEST

static Suite *errors_suite(void) {
  Suite *s = suite_create("errors");
  TCase *tc = tcase_create("contract");
  tcase_add_loop_test(tc, test_error_case, 0, NCASES);
  tcase_add_test(tc, test_exact_diagnostic);
  tcase_add_test(tc, test_path_in_message);
  tcase_add_test(tc, test_warning_unused_param);
  tcase_add_test(tc, test_thread_options);
  tcase_add_test(tc, test_perturb_seed);
  tcase_add_test(tc, test_api_error);
  tcase_add_test(tc, test_nesting_moderate);
  tcase_add_test(tc, test_caret_after_lone_cr);
  tcase_add_test(tc, test_caret_in_long_line_window);
  tcase_add_test(tc, test_label_out_of_range);
  tcase_add_test(tc, test_embedding_index_out_of_range);
  tcase_add_loop_test(tc, test_teaching_message, 0, NTEACH);
  suite_add_tcase(s, tc);

  TCase *rb = tcase_create("robustness");
  tcase_set_timeout(rb, 60);
  tcase_add_test(rb, test_seed_graphs_compile);
  tcase_add_test(rb, test_truncation);
  tcase_add_loop_test(rb, test_mutations, 0, 2);
  tcase_add_test(rb, test_mutations_jit);
  suite_add_tcase(s, rb);

  TCase *kb = tcase_create("regressions");
  tcase_add_test(kb, test_known_bad_deep_nesting);
  tcase_add_test(kb, test_known_bad_messages);
  tcase_add_test(kb, test_loop_check);
  suite_add_tcase(s, kb);
  return s;
}

int main(void) {
  SRunner *sr = srunner_create(errors_suite());
  srunner_run_all(sr, CK_NORMAL);
  int failed = srunner_ntests_failed(sr);
  srunner_free(sr);
  return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
