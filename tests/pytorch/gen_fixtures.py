#!/usr/bin/python3
"""Regenerate the PyTorch reference fixtures for agc.

Usage (Debian's python3-torch 1.13 and python3-numpy; use the system Python):

    /usr/bin/python3 tests/pytorch/gen_fixtures.py            # rewrite everything
    /usr/bin/python3 tests/pytorch/gen_fixtures.py --check    # also print FD errors
    /usr/bin/python3 tests/pytorch/gen_fixtures.py NAME ...   # only these cases
                                                              # (MANIFEST still lists all)
    /usr/bin/python3 tests/pytorch/gen_fixtures.py --optim    # only the optimizer cases

It writes, next to this script:

    MANIFEST                          one line per case: NAME TIER (core|full)
    cases/NAME/model.graph            the graph, in the .graph language
    cases/NAME/in/ARG.npy             every input, param and seed (<f8, or <i4 for i32)
    cases/NAME/expect_f64/OUT.npy     torch in float64: every output, and grad_P
                                      for every param P when the graph has `backward`
    cases/NAME/expect_f32/OUT.npy     the same computed by torch in float32 from the
                                      inputs rounded to f32 (<f4)

and, for the training-step graphs (`optimizer`, `clip_grad_norm`; the
OPT_CASES table, run by tests/optim.py):

    optim/NAME/model.graph            the graph
    optim/NAME/in/ARG.npy             every input and param (<f8, or <i4 for i32)
    optim/NAME/expect_f64_stepsK/X.npy  torch.optim in float64, K = 1 and 5: every
                                      param P after K steps (P.npy) and every output
                                      computed during step K (before its update)
    optim/NAME/expect_f32_stepsK/X.npy  the same in float32 from the f32-rounded inputs

Each graph is the single source of truth: the script parses it with a small
reader of the .graph language and evaluates it with PyTorch operations (see
FUNCS below and README.md for the exact PyTorch call behind every construct),
so the fixture can never disagree with the graph text.

Determinism: inputs come from numpy.random.default_rng(zlib.crc32(NAME)),
drawn in declaration order; torch runs single-threaded; running the script
twice gives byte-identical files.

Self-checks (assertions; the script fails if any does not hold):
  * the f64 gradient of every param matches a finite difference of the f64
    torch function (Richardson-extrapolated central difference, base step
    h = 1e-6 * max(1, |x|, |f(x0)|)); error relative to max(|grad|_inf, 1e-3)
    must be <= 1e-6.
    Cases with deliberate ties or kinks are marked `fd=False` (or list the
    params to skip) and skip it;
  * every grad(y, x[, v]) node whose x is a leaf (and v a leaf or absent) is
    checked the same way;
  * the values PyTorch 1.13 prints in /work/shared/autograd-concepts.md;
  * a few graphs are also computed by an independent hand-written torch
    function (`ref=`) to check the reader (precedence, semantics choices).
"""

import os
import re
import shutil
import sys
import zlib

import numpy as np
import torch
import torch.nn.functional as F

HERE = os.path.dirname(os.path.abspath(__file__))
CASES_DIR = os.path.join(HERE, "cases")

FD_RTOL = 1e-6
FD_FLOOR = 1e-3

torch.set_num_threads(1)
torch.use_deterministic_algorithms(True)


# ---------------------------------------------------------------- reader ---

class GraphError(Exception):
    pass


KEYWORDS = {"graph", "input", "param", "output", "backward", "optimizer",
            "clip_grad_norm", "true", "false"}

TOKEN_RE = re.compile(r"""
    (?P<ws>[ \t\r]+)
  | (?P<comment>\#[^\n]*)
  | (?P<nl>\n)
  | (?P<num>(?:\d+\.\d*|\.\d+|\d+)(?:[eE][+-]?\d+)?)
  | (?P<id>[A-Za-z_][A-Za-z0-9_]*)
  | (?P<op>\*\*|<=|>=|==|!=|[-+*/@<>()\[\],:=.])
""", re.VERBOSE)


def tokenize(src):
    """Tokens (kind, text, line, col); newlines only outside (...) and [...]."""
    toks, depth, pos, line, lstart = [], 0, 0, 1, 0
    while pos < len(src):
        m = TOKEN_RE.match(src, pos)
        if not m:
            raise GraphError("%d:%d: bad character %r" % (line, pos - lstart + 1, src[pos]))
        kind, text, col = m.lastgroup, m.group(), pos - lstart + 1
        pos = m.end()
        if kind == "nl":
            if depth == 0:
                toks.append(("nl", text, line, col))
            line, lstart = line + 1, pos
        elif kind in ("ws", "comment"):
            pass
        else:
            if text in "([":
                depth += 1
            elif text in ")]":
                depth -= 1
            if kind == "id" and text in KEYWORDS:
                kind = "kw"
            toks.append((kind, text, line, col))
    toks.append(("nl", "\n", line, 0))
    toks.append(("eof", "", line, 0))
    return toks


class Graph:
    def __init__(self):
        self.name = None
        self.decls = []        # (kind 'input'|'param', name, dtype 'f'|'i32', shape tuple)
        self.stmts = []        # (name, ast)
        self.outputs = []
        self.backward = []
        self.optimizer = None  # (kind, {arg: ast}) of an `optimizer` line
        self.clip = None       # the ast of `clip_grad_norm M`


class Parser:
    def __init__(self, src):
        self.t = tokenize(src)
        self.i = 0

    def peek(self, k=0):
        return self.t[self.i + k]

    def next(self):
        tok = self.t[self.i]
        self.i += 1
        return tok

    def accept(self, text):
        if self.peek()[1] == text and self.peek()[0] in ("op", "kw"):
            self.i += 1
            return True
        return False

    def expect(self, text):
        if not self.accept(text):
            tok = self.peek()
            raise GraphError("%d:%d: expected %r, got %r" % (tok[2], tok[3], text, tok[1]))

    def ident(self):
        tok = self.next()
        if tok[0] != "id":
            raise GraphError("%d:%d: expected a name, got %r" % (tok[2], tok[3], tok[1]))
        return tok[1]

    def end_stmt(self):
        tok = self.next()
        if tok[0] != "nl":
            raise GraphError("%d:%d: expected end of line, got %r" % (tok[2], tok[3], tok[1]))

    # graph = stmt*
    def graph(self):
        g = Graph()
        defined = set()
        first = True
        while self.peek()[0] != "eof":
            if self.peek()[0] == "nl":
                self.next()
                continue
            tok = self.peek()
            if tok[1] == "graph" and tok[0] == "kw":
                if not first:
                    raise GraphError("%d: `graph` must come first" % tok[2])
                self.next()
                g.name = self.ident()
            elif tok[0] == "kw" and tok[1] in ("input", "param"):
                self.next()
                name = self.ident()
                dtype = "f"
                if self.accept(":"):
                    dtype = self.ident()
                    if dtype not in ("i32", "f32", "f64"):
                        raise GraphError("%d: bad type %s" % (tok[2], dtype))
                    if dtype != "i32":
                        dtype = "f"
                shape = ()
                if self.accept("["):
                    dims = []
                    while True:
                        d = self.next()
                        if d[0] != "num" or not re.fullmatch(r"\d+", d[1]) or int(d[1]) <= 0:
                            raise GraphError("%d:%d: bad dimension %r" % (d[2], d[3], d[1]))
                        dims.append(int(d[1]))
                        if self.accept("]"):
                            break
                        self.expect(",")
                    shape = tuple(dims)
                if tok[1] == "param" and dtype == "i32":
                    raise GraphError("%d: i32 param" % tok[2])
                if name in defined:
                    raise GraphError("%d: %s defined twice" % (tok[2], name))
                defined.add(name)
                g.decls.append((tok[1], name, dtype, shape))
            elif tok[0] == "kw" and tok[1] in ("output", "backward"):
                self.next()
                names = [self.ident()]
                while self.accept(","):
                    names.append(self.ident())
                for n in names:
                    if n not in defined:
                        raise GraphError("%d: unknown name %s" % (tok[2], n))
                (g.outputs if tok[1] == "output" else g.backward).extend(names)
            elif tok[0] == "kw" and tok[1] == "optimizer":
                # optimizer KIND(arg=value, ...): only the optimizer fixtures use it
                self.next()
                if g.optimizer is not None or not g.backward:
                    raise GraphError("%d: a second optimizer, or one before `backward`" % tok[2])
                kind = self.ident()
                args = {}
                self.expect("(")
                if not self.accept(")"):
                    while True:
                        k = self.ident()
                        self.expect("=")
                        if k in args:
                            raise GraphError("%d: argument %s given twice" % (tok[2], k))
                        args[k] = self.expr()
                        self.check_names(args[k], defined, tok[2])
                        if self.accept(")"):
                            break
                        self.expect(",")
                g.optimizer = (kind, args)
            elif tok[0] == "kw" and tok[1] == "clip_grad_norm":
                self.next()
                if g.clip is not None or not g.backward:
                    raise GraphError("%d: a second clip_grad_norm, or one before `backward`" % tok[2])
                g.clip = self.expr()
                self.check_names(g.clip, defined, tok[2])
            elif tok[0] == "id" and self.peek(1)[1] == "=":
                name = self.ident()
                self.expect("=")
                e = self.expr()
                if name in defined:
                    raise GraphError("%d: %s defined twice" % (tok[2], name))
                self.check_names(e, defined, tok[2])
                defined.add(name)
                g.stmts.append((name, e))
            else:
                raise GraphError("%d:%d: unexpected %r" % (tok[2], tok[3], tok[1]))
            first = False
            self.end_stmt()
        return g

    def check_names(self, e, defined, line):
        if e[0] == "name" and e[1] not in defined:
            raise GraphError("%d: unknown name %s" % (line, e[1]))
        for sub in e[1:]:
            if isinstance(sub, tuple):
                self.check_names(sub, defined, line)
            elif isinstance(sub, list):
                for s in sub:
                    if isinstance(s, tuple):
                        self.check_names(s, defined, line)
            elif isinstance(sub, dict):
                for s in sub.values():
                    self.check_names(s, defined, line)

    # expr = add (("<" | "<=" | ">" | ">=" | "==" | "!=") add)?
    def expr(self):
        a = self.add()
        tok = self.peek()
        if tok[0] == "op" and tok[1] in ("<", "<=", ">", ">=", "==", "!="):
            self.next()
            a = ("bin", tok[1], a, self.add())
            if self.peek()[1] in ("<", "<=", ">", ">=", "==", "!="):
                raise GraphError("%d: chained comparison not used in fixtures" % tok[2])
        return a

    # add = mul (("+" | "-") mul)*
    def add(self):
        a = self.mul()
        while self.peek()[0] == "op" and self.peek()[1] in ("+", "-"):
            op = self.next()[1]
            a = ("bin", op, a, self.mul())
        return a

    # mul = unary (("*" | "/" | "@") unary)*
    def mul(self):
        a = self.unary()
        while self.peek()[0] == "op" and self.peek()[1] in ("*", "/", "@"):
            op = self.next()[1]
            a = ("bin", op, a, self.unary())
        return a

    # unary = "-" unary | power
    def unary(self):
        if self.accept("-"):
            return ("neg", self.unary())
        return self.power()

    # power = postfix ("**" unary)?        (right-associative, Python's rule)
    def power(self):
        a = self.postfix()
        if self.accept("**"):
            return ("bin", "**", a, self.unary())
        return a

    # postfix = primary ("[" index ("," index)* "]" | "." "T")*
    def postfix(self):
        a = self.primary()
        while True:
            if self.accept("["):
                items = [self.index_item()]
                while self.accept(","):
                    items.append(self.index_item())
                self.expect("]")
                a = ("index", a, items)
            elif self.accept("."):
                tok = self.next()
                if tok[1] != "T":
                    raise GraphError("%d:%d: expected T after ." % (tok[2], tok[3]))
                a = ("T", a)
            else:
                return a

    # index = expr | expr? ":" expr?
    def index_item(self):
        lo = hi = None
        if self.peek()[1] != ":":
            lo = self.expr()
            if not self.accept(":"):
                return ("i", lo)
        else:
            self.expect(":")
        if self.peek()[1] not in (",", "]"):
            hi = self.expr()
        return ("s", lo, hi)

    # primary = num | name | name "(" args ")" | "(" expr ")" | "[" expr, ... "]" | true | false
    def primary(self):
        tok = self.next()
        if tok[0] == "num":
            return ("num", float(tok[1]))
        if tok[0] == "kw" and tok[1] in ("true", "false"):
            return ("bool", tok[1] == "true")
        if tok[0] == "id":
            if self.accept("("):
                args, kwargs = [], {}
                if not self.accept(")"):
                    while True:
                        if self.peek()[0] == "id" and self.peek(1)[1] == "=":
                            k = self.ident()
                            self.expect("=")
                            kwargs[k] = self.expr()
                        else:
                            if kwargs:
                                raise GraphError("%d: positional after keyword" % tok[2])
                            args.append(self.expr())
                        if self.accept(")"):
                            break
                        self.expect(",")
                return ("call", tok[1], args, kwargs)
            return ("name", tok[1])
        if tok[1] == "(" and tok[0] == "op":
            e = self.expr()
            self.expect(")")
            return e
        if tok[1] == "[" and tok[0] == "op":
            items = []
            if not self.accept("]"):
                while True:
                    items.append(self.expr())
                    if self.accept("]"):
                        break
                    self.expect(",")
            return ("list", items)
        raise GraphError("%d:%d: unexpected %r" % (tok[2], tok[3], tok[1]))


def parse(src):
    return Parser(src).graph()


# ------------------------------------------------------------- evaluator ---

CORE_FUNCS = set("""exp log sin cos tan tanh sigmoid relu abs sqrt rsqrt square log1p
    expm1 softplus sign erf gelu pow maximum minimum where clamp sum mean max min
    reshape transpose broadcast_to zeros ones full detach grad""".split())


def as_int(v):
    if isinstance(v, torch.Tensor) or float(v) != int(v):
        raise GraphError("expected an integer constant, got %r" % (v,))
    return int(v)


def axes_arg(v):
    """axis=k -> int, axis=[k, ...] -> tuple, absent -> None."""
    if v is None:
        return None
    if isinstance(v, list):
        return tuple(as_int(a) for a in v)
    return as_int(v)


class Evaluator:
    """Evaluates one parsed graph with torch in one dtype."""

    def __init__(self, graph, dtype):
        self.g = graph
        self.D = dtype
        self.full_features = set()
        self.grad_records = []     # (y, x_name, v_ast, result)

    def T(self, v):
        if isinstance(v, torch.Tensor):
            return v
        if isinstance(v, bool):
            raise GraphError("boolean used as a value")
        return torch.tensor(float(v), dtype=self.D)

    def run(self, arrays, do_backward=True):
        env = {}
        self.grad_records = []
        for kind, name, dt, shape in self.g.decls:
            a = arrays[name]
            assert a.shape == shape, (name, a.shape, shape)
            if dt == "i32":
                env[name] = torch.from_numpy(np.array(a, dtype=np.int64))
                self.full_features.add("i32 input")
            else:
                # every float leaf requires grad so that grad(y, x) works for inputs too;
                # `backward` only reports gradients of params.
                env[name] = torch.tensor(a, dtype=self.D).requires_grad_(True)
        self.env = env
        for name, e in self.g.stmts:
            v = self.ev(e)
            if not isinstance(v, torch.Tensor):
                v = self.T(v)
            env[name] = v
        res = {"outputs": {n: env[n] for n in self.g.outputs}, "grads": {}, "env": env}
        if self.g.backward and do_backward:
            params = [(n, env[n]) for k, n, dt, s in self.g.decls if k == "param"]
            roots, seeds = [], []
            for r in self.g.backward:
                t = env[r]
                if not t.requires_grad:
                    continue
                roots.append(t)
                seeds.append(torch.ones_like(t) if t.dim() == 0
                             else torch.tensor(arrays["grad_" + r], dtype=self.D))
            gs = [None] * len(params)
            if roots:
                gs = torch.autograd.grad(roots, [p for _, p in params], seeds,
                                         allow_unused=True, retain_graph=True)
            for (n, p), gr in zip(params, gs):
                res["grads"]["grad_" + n] = torch.zeros_like(p) if gr is None else gr
        return res

    def ev(self, e):
        k = e[0]
        if k == "num":
            return e[1]
        if k == "bool":
            return e[1]
        if k == "name":
            return self.env[e[1]]
        if k == "list":
            return [self.ev(x) for x in e[1]]
        if k == "neg":
            return -self.ev(e[1])
        if k == "T":
            x = self.ev(e[1])
            if x.dim() != 2:
                raise GraphError(".T on a %d-D value" % x.dim())
            return x.T
        if k == "index":
            self.full_features.add("indexing")
            x = self.ev(e[1])
            idx = []
            for it in e[2]:
                if it[0] == "i":
                    idx.append(as_int(self.ev(it[1])))
                else:
                    lo = None if it[1] is None else as_int(self.ev(it[1]))
                    hi = None if it[2] is None else as_int(self.ev(it[2]))
                    idx.append(slice(lo, hi))
            if len(idx) > x.dim():
                raise GraphError("too many indices")
            return x[tuple(idx)]
        if k == "bin":
            return self.binop(e[1], self.ev(e[2]), self.ev(e[3]))
        if k == "call":
            return self.call(e[1], e[2], e[3])
        raise AssertionError(e)

    def binop(self, op, a, b):
        num = not isinstance(a, torch.Tensor) and not isinstance(b, torch.Tensor)
        if op in ("<", "<=", ">", ">=", "==", "!="):
            a, b = self.T(a), self.T(b)
            r = {"<": torch.lt, "<=": torch.le, ">": torch.gt, ">=": torch.ge,
                 "==": torch.eq, "!=": torch.ne}[op](a, b)
            return r.to(self.D)       # 0/1 of the float type, no gradient
        if op == "@":
            a, b = self.T(a), self.T(b)
            if a.dim() > 2 or b.dim() > 2:
                self.full_features.add("batched @")
            return torch.matmul(a, b)
        if op == "**":
            return self.pow(a, b)
        r = {"+": lambda: a + b, "-": lambda: a - b, "*": lambda: a * b,
             "/": lambda: a / b}[op]()
        return r if num or isinstance(r, torch.Tensor) else self.T(r)

    def pow(self, a, b):
        if not isinstance(a, torch.Tensor) and not isinstance(b, torch.Tensor):
            return float(a) ** float(b)
        if not isinstance(a, torch.Tensor):
            return torch.pow(float(a), b)             # pow(Scalar, Tensor)
        if not isinstance(b, torch.Tensor):
            return torch.pow(a, float(b))             # pow(Tensor, Scalar)
        return torch.pow(a, b)

    def call(self, f, args, kwargs):
        if f not in CORE_FUNCS:
            self.full_features.add(f)
        if f == "grad":
            return self.grad(args)
        a = [self.ev(x) for x in args]
        kw = {k: self.ev(v) for k, v in kwargs.items()}
        T, D = self.T, self.D
        unary = {
            "exp": torch.exp, "log": torch.log, "sin": torch.sin, "cos": torch.cos,
            "tan": torch.tan, "tanh": torch.tanh, "sigmoid": torch.sigmoid,
            "relu": torch.relu, "abs": torch.abs, "sqrt": torch.sqrt,
            "rsqrt": torch.rsqrt, "square": torch.square, "log1p": torch.log1p,
            "expm1": torch.expm1, "softplus": F.softplus, "sign": torch.sign,
            "erf": torch.erf, "gelu": F.gelu, "detach": lambda x: x.detach(),
        }
        if f in unary:
            assert len(a) == 1 and not kw, f
            return unary[f](T(a[0]))
        if f == "pow":
            return self.pow(a[0], a[1])
        if f == "maximum":
            return torch.maximum(T(a[0]), T(a[1]))
        if f == "minimum":
            return torch.minimum(T(a[0]), T(a[1]))
        if f == "where":
            return torch.where(T(a[0]) != 0, T(a[1]), T(a[2]))
        if f == "clamp":
            lo, hi = a[1], a[2]
            if isinstance(lo, torch.Tensor) or isinstance(hi, torch.Tensor):
                return torch.clamp(T(a[0]), T(lo), T(hi))
            return torch.clamp(T(a[0]), min=float(lo), max=float(hi))
        if f in ("sum", "mean", "max", "min", "prod", "logsumexp"):
            assert len(a) == 1 and set(kw) <= {"axis", "keepdim"}, f
            return self.reduce(f, T(a[0]), axes_arg(kw.get("axis")), bool(kw.get("keepdim", False)))
        if f in ("softmax", "log_softmax"):
            assert set(kw) <= {"axis"}
            ax = as_int(kw.get("axis", -1))
            return (torch.softmax if f == "softmax" else torch.log_softmax)(a[0], dim=ax)
        if f == "mse_loss":
            assert a[0].shape == a[1].shape
            return F.mse_loss(a[0], a[1])
        if f == "cross_entropy":
            assert a[0].dim() == 2 and a[1].dtype == torch.int64
            return F.cross_entropy(a[0], a[1])
        if f == "bce_with_logits":
            assert a[0].shape == a[1].shape
            return F.binary_cross_entropy_with_logits(a[0], a[1])
        if f == "reshape":
            return a[0].reshape([as_int(d) for d in a[1]])
        if f == "transpose":
            return a[0].transpose(as_int(a[1]), as_int(a[2]))
        if f == "broadcast_to":
            return a[0].broadcast_to([as_int(d) for d in a[1]])
        if f == "concat":
            return torch.cat([T(x) for x in a[0]], dim=as_int(kw.get("axis", 0)))
        if f == "unsqueeze":
            return torch.unsqueeze(a[0], as_int(a[1]))
        if f == "squeeze":
            k = as_int(a[1])
            if a[0].shape[k] != 1:
                raise GraphError("squeeze of a dimension that is not 1")
            return torch.squeeze(a[0], k)
        if f == "conv2d":
            assert set(kw) <= {"stride", "padding"}
            return F.conv2d(a[0], a[1], stride=as_int(kw.get("stride", 1)),
                            padding=as_int(kw.get("padding", 0)))
        if f in ("max_pool2d", "avg_pool2d"):
            kk = as_int(a[1])
            st = as_int(kw.get("stride", kk))
            return (F.max_pool2d if f == "max_pool2d" else F.avg_pool2d)(a[0], kk, stride=st)
        if f == "embedding":
            assert a[1].dtype == torch.int64
            return F.embedding(a[1], a[0])
        if f in ("zeros", "ones"):
            return (torch.zeros if f == "zeros" else torch.ones)([as_int(d) for d in a[0]], dtype=D)
        if f == "full":
            return torch.full([as_int(d) for d in a[0]], float(a[1]), dtype=D)
        raise GraphError("unknown function %s" % f)

    def reduce(self, f, x, axis, keepdim):
        nd = x.dim()
        if axis is None:
            if f == "sum":
                r = torch.sum(x)
            elif f == "mean":
                r = torch.mean(x)
            elif f == "max":
                r = torch.max(x)        # ties: gradient shared evenly
            elif f == "min":
                r = torch.min(x)
            elif f == "prod":
                r = torch.prod(x)
            else:
                r = torch.logsumexp(x, dim=tuple(range(nd)))
            return r.reshape([1] * nd) if keepdim else r
        if isinstance(axis, int):
            if f == "max":
                return torch.max(x, dim=axis, keepdim=keepdim).values   # first maximal element
            if f == "min":
                return torch.min(x, dim=axis, keepdim=keepdim).values
            if f == "prod":
                return torch.prod(x, dim=axis, keepdim=keepdim)
            axis = (axis,)
            if f in ("sum", "mean", "logsumexp"):
                return {"sum": torch.sum, "mean": torch.mean,
                        "logsumexp": torch.logsumexp}[f](x, dim=axis, keepdim=keepdim)
        # an axis list
        if f == "max":
            return torch.amax(x, dim=axis, keepdim=keepdim)      # ties: shared evenly
        if f == "min":
            return torch.amin(x, dim=axis, keepdim=keepdim)
        if f == "prod":
            norm = sorted({a % nd for a in axis}, reverse=True)
            r = x
            for a in norm:
                r = torch.prod(r, dim=a, keepdim=True)
            if not keepdim:
                for a in norm:
                    r = r.squeeze(a)
            return r
        return {"sum": torch.sum, "mean": torch.mean,
                "logsumexp": torch.logsumexp}[f](x, dim=axis, keepdim=keepdim)

    def grad(self, args):
        y = self.T(self.ev(args[0]))
        if args[1][0] != "name":
            raise GraphError("grad(y, x): x must be a name")
        x = self.env[args[1][1]]
        v = self.ev(args[2]) if len(args) > 2 else None
        if v is None and y.dim() != 0:
            raise GraphError("grad(y, x) with non-scalar y and no seed")
        if v is not None:
            v = self.T(v)
            assert v.shape == y.shape
        r = None
        if y.requires_grad and x.requires_grad:
            r = torch.autograd.grad([y], [x], None if v is None else [v],
                                    create_graph=True, allow_unused=True)[0]
        if r is None:
            r = torch.zeros_like(x)
        self.grad_records.append((y, args[1][1], args[2] if len(args) > 2 else None, r))
        return r


# -------------------------------------------------------------- the cases ---

def U(lo, hi):
    return lambda rng, shape: rng.uniform(lo, hi, shape)


def I(lo, hi):
    return lambda rng, shape: rng.integers(lo, hi, shape)


def V(values):
    return lambda rng, shape: np.asarray(values, dtype=np.float64).reshape(shape)


def VI(values):
    return lambda rng, shape: np.asarray(values, dtype=np.int32).reshape(shape)


ONES = lambda rng, shape: np.ones(shape)


def PERM(values):
    """The given values in a per-case random order."""
    return lambda rng, shape: rng.permutation(np.asarray(values, dtype=np.float64)).reshape(shape)


CASES = []


def case(name, src, init=None, fd=True, ref=None, known=None):
    """fd: True, False (ties/kinks: no finite-difference check) or a set of
    names to skip (params, or 'g:X' for grad(., X) nodes).
    ref: function(dict of f64 tensors) -> dict of expected outputs/grads
    computed by hand with torch, independently of the reader.
    known: dict of values printed in autograd-concepts.md."""
    assert re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", name)
    assert all(c[0] != name for c in CASES), name
    src = "graph %s\n%s" % (name, src)
    CASES.append((name, src, init or {}, fd, ref, known))


def g(text):
    """Dedent a graph body written inside the case table."""
    lines = text.strip("\n").split("\n")
    ind = min(len(l) - len(l.lstrip()) for l in lines if l.strip())
    return "\n".join(l[ind:] for l in lines) + "\n"


# 1. worked examples of autograd-concepts.md ------------------------------

case("concept_ex1", g("""
    param x[4]
    y = x * x
    loss = mean(y)
    output loss
    backward loss
"""), {"x": V([0, 1, 2, 3])}, known={"grad_x": [0, 0.5, 1, 1.5]})

case("concept_ex2", g("""
    # max over all elements: only the maximum receives gradient
    param x[4]
    a = max(x * x)
    # ties over all elements: shared evenly
    param t[4]
    b = max(t)
    # ties along one axis: the first maximal element
    param u[1, 4]
    c = sum(max(u, axis=1))
    output a, b, c
    backward a, b, c
"""), {"x": V([0, 1, 2, 3]), "t": V([1, 3, 3, 2]), "u": V([[1, 3, 3, 2]])},
    fd={"t", "u"},
    known={"grad_x": [0, 0, 0, 6], "grad_t": [0, 0.5, 0.5, 0], "grad_u": [[0, 1, 0, 0]]})

case("concept_ex3", g("""
    param x[2]
    z = sin(x ** 2)
    output z
    backward z          # seed grad_z = ones
"""), {"x": V([1, 2]), "grad_z": ONES}, known={"grad_x": [1.0806, -2.6146]})

case("concept_ex4", g("""
    param x[3]
    param y[3]
    z = x * y
    output z
    backward z
"""), {"x": V([0, 2, 8]), "y": V([5, 1, 7]), "grad_z": V([1, 1, 1])},
    known={"grad_x": [5, 1, 7], "grad_y": [0, 2, 8]})

case("concept_ex5", g("""
    param x
    param y
    z = x ** 2 + y
    output z
    backward z
"""), {"x": V(1), "y": V(2)}, known={"grad_x": 2, "grad_y": 1})

case("concept_ex6", g("""
    param a[3, 4]
    param b[3, 4]
    c = a * b
    d = sum(c)
    g = grad(d, c)      # torch.autograd.grad(d, c) = ones(3, 4)
    output d, g
    backward d
"""), {"a": ONES}, known={"g": np.ones((3, 4)), "grad_b": np.ones((3, 4))},
    ref=lambda t: {"grad_a": t["b"]})

case("concept_ex7", g("""
    param x[3]
    y = 2 * x
    output y
    param x2[3]
    m = mean(2 * x2)
    output m
    backward y, m       # seed grad_y = [0.1, 0.2, 0.3]
"""), {"x": V([1, 2, 3]), "x2": V([1, 2, 3]), "grad_y": V([0.1, 0.2, 0.3])},
    known={"grad_x": [0.2, 0.4, 0.6], "grad_x2": [2 / 3] * 3})

case("concept_ex8", g("""
    param x[2, 2]
    y = x ** 2
    output y
    backward y          # seed grad_y = ones
"""), {"x": ONES, "grad_y": ONES}, known={"grad_x": [[2, 2], [2, 2]]})

case("concept_ex11", g("""
    # gradient edge cases: relu'(0) = 0, abs'(0) = 0, sqrt'(0) = inf,
    # maximum(2, 2) sends half to each side, d/dx x**0 = 0 (even at x = 0), sign' = 0
    param r
    param a
    param s
    param m1
    param m2
    param p
    param q
    loss = relu(r) + abs(a) + sqrt(s) + maximum(m1, m2) + p ** 0 + sign(q)
    output loss
    backward loss
"""), {"r": V(0), "a": V(0), "s": V(0), "m1": V(2), "m2": V(2), "p": V(0), "q": V(0)},
    fd=False,
    known={"grad_r": 0, "grad_a": 0, "grad_s": np.inf, "grad_m1": 0.5, "grad_m2": 0.5,
           "grad_p": 0, "grad_q": 0})

# 2. element-wise functions ------------------------------------------------

EW_RANGE = {
    "exp": (-1, 1), "log": (0.2, 2), "sin": (-1, 1), "cos": (-1, 1), "tan": (-1, 1),
    "tanh": (-2, 2), "sigmoid": (-2, 2), "relu": (-1, 1), "abs": (-1, 1),
    "sqrt": (0.2, 2), "rsqrt": (0.2, 2), "square": (-1, 1), "log1p": (-0.5, 1),
    "expm1": (-1, 1), "softplus": (-2, 2), "sign": (-1, 1), "erf": (-1.5, 1.5),
    "gelu": (-2, 2),
}
for fn, (lo, hi) in EW_RANGE.items():
    case("ew_" + fn, g("""
        param x[3, 4]
        input w[3, 4]
        y = %s(x)
        loss = sum(y * w)
        output y, loss
        backward loss
    """ % fn), {"x": U(lo, hi)})

LARGE = [1e4, -1e4, 5e3, -5e3, 1e3, -1e3, 100, -100, 50, -50, 30, -30]
for fn in ("softplus", "sigmoid", "tanh"):
    case("ew_large_" + fn, g("""
        # magnitudes up to 1e4: must stay finite (numerically stable)
        param x[3, 4]
        input w[3, 4]
        y = %s(x)
        loss = sum(y * w)
        output y, loss
        backward loss
    """ % fn), {"x": PERM(LARGE)})

# 3. binary operators and broadcasting ---------------------------------------

BIN = {
    "add": ("{a} + {b}", (-1, 1), (-1, 1)),
    "sub": ("{a} - {b}", (-1, 1), (-1, 1)),
    "mul": ("{a} * {b}", (-1, 1), (-1, 1)),
    "div": ("{a} / {b}", (0.5, 2), (0.5, 2)),
    "powop": ("{a} ** {b}", (0.5, 2), (-1.5, 1.5)),
    "pow": ("pow({a}, {b})", (0.5, 2), (-1.5, 1.5)),
    "maximum": ("maximum({a}, {b})", (-1, 1), (-1, 1)),
    "minimum": ("minimum({a}, {b})", (-1, 1), (-1, 1)),
}
for op, (fmt, ra, rb) in BIN.items():
    const_a = "0.75" if op in ("powop", "pow") else "0.25"
    src = g("""
        # left[3, 4]  op right[4]
        param a1[3, 4]
        param b1[4]
        # left[3, 4]  op right[3, 1]
        param a2[3, 4]
        param b2[3, 1]
        # left[1, 4]  op right[3, 4]
        param a3[1, 4]
        param b3[3, 4]
        # left[3, 4]  op right[] (scalar)
        param a4[3, 4]
        param b4
        # left[]      op right[3, 4]
        param a5
        param b5[3, 4]
        # left[2, 1, 4] op right[3, 1] -> [2, 3, 4]
        param a6[2, 1, 4]
        param b6[3, 1]
        # numeric constants on either side
        param b7[3, 4]
        param a8[3, 4]
        input w[3, 4]
        input w3[2, 3, 4]
    """)
    exprs = [fmt.format(a="a%d" % i, b="b%d" % i) for i in range(1, 7)]
    exprs.append(fmt.format(a=const_a, b="b7"))
    exprs.append(fmt.format(a="a8", b="1.5"))
    for i, ex in enumerate(exprs, 1):
        src += "y%d = %s\n" % (i, ex)
    src += ("loss = sum(y1 * w) + sum(y2 * w) + sum(y3 * w) + sum(y4 * w) + sum(y5 * w)"
            " + sum(y6 * w3) + sum(y7 * w) + sum(y8 * w)\n")
    src += "output y1, y2, y3, y4, y5, y6, y7, y8, loss\nbackward loss\n"
    init = {}
    for i in range(1, 9):
        if i != 7:
            init["a%d" % i] = U(*ra)
        if i != 8:
            init["b%d" % i] = U(*rb)
    case("bin_" + op, src, init)

case("bin_pow_const", g("""
    param x[3, 4]
    param p[3, 4]
    input w[3, 4]
    y1 = x ** 2 + x ** 3 + x ** 1 + 2 ** x + 0.5 ** x
    y2 = p ** 0.5 + p ** -1.5 + pow(p, 2.5) + p ** -1 + pow(3, p)
    loss = sum(y1 * w) + sum(y2 * w)
    output y1, y2, loss
    backward loss
"""), {"x": U(-1, 1), "p": U(0.5, 2)})

case("syntax_precedence", g("""
    param x[3, 4]
    param p[3, 4]
    param v[4]
    input w[3, 4]
    y1 = -x ** 2                 # -(x ** 2)
    y2 = p ** 2 ** -1            # p ** (2 ** -1): right-associative
    y3 = 2 ** -x                 # unary minus in the exponent
    y4 = x - p - x * p / 2 + 1   # left-associative
    y5 = -x @ v * 2 + 1          # ((-x) @ v) * 2 + 1
    y6 = (x
          + p)                   # continues inside ( )
    y7 = x * 2e-1 + .5 - 1.0E+1 * p
    loss = sum((y1 + y2 + y3 + y4 + y6 + y7) * w) + sum(y5)
    output y1, y2, y3, y4, y5, y6, y7, loss
    backward loss
"""), {"p": U(0.5, 2)},
    ref=lambda t: {
        "y1": -(t["x"] ** 2), "y2": t["p"] ** 0.5, "y3": 2 ** (-t["x"]),
        "y4": ((t["x"] - t["p"]) - (t["x"] * t["p"]) / 2) + 1,
        "y5": torch.matmul(-t["x"], t["v"]) * 2 + 1, "y6": t["x"] + t["p"],
        "y7": t["x"] * 0.2 + 0.5 - 10 * t["p"]})

case("bin_ties", g("""
    # maximum/minimum on ties: half the gradient to each side
    param a[3, 4]
    param b[3, 4]
    param c[4]
    input w[3, 4]
    loss = sum(maximum(a, b) * w) + sum(minimum(a, b) * w) + sum(maximum(a, c) * w) + sum(minimum(c, 0) * w)
    output loss
    backward loss
"""), {
    "a": V([[1, 2, 0, -1], [0, 0, 3, 1], [2, -2, 0.5, 0]]),
    "b": V([[1, 1, 0, -1], [0, 1, 3, 2], [2, -2, 0.25, 0]]),
    "c": V([1, 0, 0.5, 0])}, fd=False)

case("where_cmp", g("""
    param x[3, 4]
    param y[3, 4]
    input w[3, 4]
    a = where(x > y, x * 2, y * y)
    b = where(x > 0, x, 0.1 * x)           # leaky relu
    c = where(x <= 0.2, sin(x), 1.5)
    loss = sum(a * w) + sum(b * w) + sum(c * w)
    output a, b, c, loss
    backward loss
"""))

case("clamp", g("""
    param x[3, 4]
    input w[3, 4]
    y = clamp(x, -0.5, 0.5)
    z = clamp(2 * x, -1, 0.25)
    loss = sum(y * w) + sum(z * w)
    output y, z, loss
    backward loss
"""))

case("clamp_edges", g("""
    # values exactly at the bounds: PyTorch passes the gradient (lo <= x <= hi)
    param x[3, 4]
    input w[3, 4]
    y = clamp(x, -0.5, 0.5)
    loss = sum(y * w)
    output y, loss
    backward loss
"""), {"x": V([[-0.5, 0.5, 0, 1], [-1, -0.5, 0.5, 0.25], [0.75, -0.75, 0.5, -0.5]])}, fd=False)

case("cmp_ops", g("""
    # comparisons are 0/1 of the float type and carry no gradient
    param x[3, 4]
    param y[3, 4]
    input w[3, 4]
    lt = x < y
    le = x <= y
    gt = x > 0.1
    ge = 0.2 >= y
    ne = x != y
    loss = sum((lt * x + le * y + gt * x * y + ge * y + ne * x) * w)
    output lt, le, gt, ge, ne, loss
    backward loss
"""))

case("cmp_ties", g("""
    param x[3, 4]
    param y[3, 4]
    input w[3, 4]
    eq = x == y
    ne = x != y
    le = x <= y
    ge = x >= y
    lt = x < y
    gt = x > y
    loss = sum((eq * x + ne * y + le * x * y + ge * x + lt * y + gt * 2 * x) * w)
    output eq, ne, le, ge, lt, gt, loss
    backward loss
"""), {"x": V([[1, 0, -1, 2], [0.5, 0.5, 3, -2], [1, 1, 0, 0]]),
       "y": V([[1, 1, -1, 1], [0.5, -0.5, 3, -1], [0, 1, 0, 2]])}, fd=False)

# 4. reductions --------------------------------------------------------------

RED_FORMS = [
    ("x0", "[3, 4]", ""),
    ("x1", "[3, 4]", ", axis=0"),
    ("x2", "[3, 4]", ", axis=1"),
    ("x3", "[3, 4]", ", axis=-1"),
    ("x4", "[3, 4]", ", axis=[0, 1]"),
    ("x5", "[3, 4]", ", axis=1, keepdim=true"),
    ("x6", "[3, 4]", ", axis=[0], keepdim=true"),
    ("z0", "[2, 3, 4]", ""),
    ("z1", "[2, 3, 4]", ", axis=[0, 2]"),
    ("z2", "[2, 3, 4]", ", axis=1, keepdim=true"),
    ("z3", "[2, 3, 4]", ", axis=-1"),
    ("z4", "[2, 3, 4]", ", axis=[-1, 1], keepdim=true"),
]
RED_OUT_SHAPE = {"x0": [], "x1": [4], "x2": [3], "x3": [3], "x4": [], "x5": [3, 1],
                 "x6": [1, 4], "z0": [], "z1": [3], "z2": [2, 1, 4], "z3": [2, 3],
                 "z4": [2, 1, 1]}


def red_graph(fn, forms=RED_FORMS, note=""):
    src = note
    terms = []
    for p, shape, args in forms:
        src += "param %s%s\n" % (p, shape)
        src += "r_%s = %s(%s%s)\n" % (p, fn, p, args)
        oshape = RED_OUT_SHAPE[p]
        if oshape:
            src += "input w_%s[%s]\n" % (p, ", ".join(map(str, oshape)))
            terms.append("sum(r_%s * w_%s)" % (p, p))
        else:
            terms.append("r_%s" % p)
    src += "loss = %s\n" % " + ".join(terms)
    src += "output %s, loss\nbackward loss\n" % ", ".join("r_" + p for p, _, _ in forms)
    return src


for fn in ("sum", "mean", "max", "min"):
    case("red_" + fn, red_graph(fn))

TIE_X = [[1, 3, 3, 2], [5, 5, 5, 0], [-1, 4, 2, 4]]
TIE_Z = [[[1, 2, 2, 0], [2, 1, 0, 2], [0, 0, 1, 1]], [[2, 2, 1, 0], [1, 1, 1, 1], [0, 2, 2, 0]]]
for fn in ("max", "min"):
    sgn = 1 if fn == "max" else -1
    init = {}
    for p, shape, _ in RED_FORMS:
        init[p] = V(np.array(TIE_X if p[0] == "x" else TIE_Z) * sgn)
    case("red_%s_ties" % fn, red_graph(fn, note=(
        "# deliberate ties. No axis or an axis list: PyTorch's torch.%s(x) / torch.a%s\n"
        "# share the gradient evenly among tied elements; a single integer axis:\n"
        "# torch.%s(x, dim=k) gives it to the first extremal element along the axis.\n")
        % (fn, fn, fn)), init, fd=False)

# 5. matmul ------------------------------------------------------------------

case("mm_2d_2d", g("""
    param a[3, 4]
    param b[4, 5]
    input w[3, 5]
    y = a @ b
    loss = sum(y * w)
    output y, loss
    backward loss
"""))

case("mm_1d_2d", g("""
    param a[4]
    param b[4, 5]
    input w[5]
    y = a @ b
    loss = sum(y * w)
    output y, loss
    backward loss
"""))

case("mm_2d_1d", g("""
    param a[3, 4]
    param b[4]
    input w[3]
    y = a @ b
    loss = sum(y * w)
    output y, loss
    backward loss
"""))

case("mm_1d_1d", g("""
    param a[4]
    param b[4]
    y = a @ b
    output y
    backward y
"""))

case("mm_linear", g("""
    # nn.Linear: y = x W^T + b
    input x[5, 4]
    param W[3, 4]
    param b[3]
    input w[5, 3]
    y = x @ W.T + b
    loss = sum(y * w)
    output y, loss
    backward loss
"""))

case("mm_transposes", g("""
    param a[4, 3]
    param b[5, 4]
    param c[3, 5]
    input w[3, 5]
    input w2[5, 3]
    input w3[5, 4]
    y1 = a.T @ b.T                         # [3, 4] @ [4, 5]
    y2 = transpose(b, 0, 1).T @ a          # [5, 4] @ [4, 3]
    y3 = (a @ c).T                         # [5, 4]
    y4 = transpose(c, 1, 0) @ c             # [5, 3] @ [3, 5]
    loss = sum(y1 * w) + sum(y2 * w2) + sum(y3 * w3) + sum(y4 * y4) / 10
    output y1, y2, y3, y4, loss
    backward loss
"""))

# 6. shapes ------------------------------------------------------------------

case("shape_reshape", g("""
    param x[3, 4]
    input w[2, 6]
    input w2[12]
    input w3[4, 3]
    a = reshape(x, [2, -1])
    b = reshape(x, [-1])
    c = reshape(a, [4, 3])
    d = reshape(x, [1, 3, 4, 1])
    loss = sum(a * w) + sum(b * w2) + sum(c * w3) + sum(reshape(d, [3, 4]) * x)
    output a, b, c, d, loss
    backward loss
"""))

case("shape_transpose2d", g("""
    param x[3, 4]
    input w[4, 3]
    y = transpose(x, 0, 1)
    z = transpose(x, 1, 0)
    loss = sum(y * w) + sum(sin(z) * w)
    output y, loss
    backward loss
"""))

case("shape_transpose3d", g("""
    param x[2, 3, 4]
    input w1[4, 3, 2]
    input w2[2, 4, 3]
    input w3[3, 2, 4]
    a = transpose(x, 0, 2)
    b = transpose(x, 1, 2)
    c = transpose(x, -3, -2)
    loss = sum(a * w1) + sum(b * w2) + sum(c * w3)
    output a, b, c, loss
    backward loss
"""))

case("shape_T", g("""
    param x[3, 4]
    param y[4, 3]
    input w[4, 3]
    a = x.T
    b = exp(x).T * y
    c = (x.T).T
    loss = sum(a * w) + sum(b * w) + sum(c * c)
    output a, b, c, loss
    backward loss
"""))

case("shape_broadcast_to", g("""
    param a[4]
    param b[3, 1]
    param s
    input w[3, 4]
    input w3[2, 3, 4]
    x = broadcast_to(a, [3, 4])
    y = broadcast_to(b, [2, 3, 4])
    z = broadcast_to(s, [3, 4])
    loss = sum(x * w) + sum(y * w3) + sum(z * w * w)
    output x, y, z, loss
    backward loss
"""))

case("shape_constants", g("""
    param x[3, 4]
    input w[3, 4]
    y = x * full([3, 4], 2.5) + ones([4]) - zeros([3, 1]) + full([1], -0.5) * x
    z = ones([2, 3, 4]) * x + zeros([3, 4])
    loss = sum(y * w) + sum(z * z)
    output y, z, loss
    backward loss
"""))

# 7. autograd features -------------------------------------------------------

case("ag_detach", g("""
    param x[3, 4]
    loss = sum(x * detach(x))      # grad_x = x
    output loss
    backward loss
"""), fd=False,      # detach: the gradient is not the derivative of the value
    ref=lambda t: {"grad_x": t["x"]})

case("ag_detach_path", g("""
    param x[3, 4]
    input w[3, 4]
    y = tanh(x)
    loss = sum(y * detach(y) * w) + sum(detach(x * x))
    output loss
    backward loss
"""), fd=False,      # detach: the gradient is not the derivative of the value
    ref=lambda t: {"grad_x": (1 - torch.tanh(t["x"]) ** 2) * torch.tanh(t["x"]) * t["w"]})

case("ag_grad_output", g("""
    input x[5, 4]
    param W[4, 3]
    loss = mean(tanh(x @ W))
    g = grad(loss, W)            # equals grad_W
    output loss, g
    backward loss
"""))

case("ag_grad_intermediate", g("""
    # the gradient with respect to an intermediate (a hook's view)
    input x[5, 4]
    param W[4, 3]
    input w[5, 3]
    h = x @ W
    loss = sum(tanh(h) * w)
    gh = grad(loss, h)
    output loss, gh
    backward loss
"""))

case("ag_grad_input", g("""
    # gradient with respect to an input; no param, no backward
    input x[3, 4]
    input w[3, 4]
    loss = sum(tanh(x) * w) + sum(x * x * x)
    g = grad(loss, x)
    output loss, g
"""))

case("ag_grad_seed", g("""
    # vector-Jacobian product of a non-scalar y with the seed v
    input W[3, 4]
    input v[3]
    param x[4]
    y = tanh(W @ x)
    g = grad(y, x, v)
    output y, g
"""))

case("ag_hvp", g("""
    # Hessian-vector product
    input A[3, 4]
    input v[4]
    param x[4]
    f = sum(exp(A @ x)) + sum(x * x * x) * sum(sin(x))
    g = grad(f, x)
    hv = grad(sum(g * v), x)
    output f, g, hv
"""))

case("ag_grad_penalty", g("""
    # gradient penalty on the input; backward through the gradient
    input x[5, 4]
    input t[5, 3]
    param W[4, 3]
    param b[3]
    y = tanh(x @ W + b)
    loss = mean((y - t) ** 2)
    loss2 = loss + sum(grad(loss, x) ** 2)
    output loss, loss2
    backward loss2
"""))

case("ag_grad_chain", g("""
    # higher order on a scalar: f, f', f'' and backward of f'' gives f'''
    param x
    f = sin(x) * x ** 3
    g1 = grad(f, x)
    g2 = grad(g1, x)
    output f, g1, g2
    backward g2
"""), {"x": V(0.7)})

case("ag_multi_root", g("""
    param x[3]
    param y[3]
    a = sum(x * y)
    b = sum(sin(x))
    output a, b
    backward a, b            # grad_x = y + cos(x), grad_y = x
"""), ref=lambda t: {"grad_x": t["y"] + torch.cos(t["x"]), "grad_y": t["x"]})

case("ag_multi_root_seed", g("""
    param x[3, 4]
    param y[4]
    a = sum(x * x)
    z = exp(x) * y
    output a, z
    backward a, z            # z is non-scalar: seed grad_z
"""))

case("ag_backward_seed", g("""
    param x[3, 4]
    y = exp(x) * x
    output y
    backward y
"""))

case("ag_unused_param", g("""
    param x[3]
    param u[2, 2]            # no root depends on it: zero gradient
    loss = sum(x * x)
    output loss
    backward loss
"""), ref=lambda t: {"grad_u": torch.zeros(2, 2, dtype=torch.float64), "grad_x": 2 * t["x"]})

case("ag_forward_only", g("""
    input x[5, 4]
    param W[4, 3]
    y = relu(x @ W)
    output y
"""))

case("ag_param_scalar_only", g("""
    param s
    input x[3, 4]
    loss = mean(x * s * s)
    output loss
    backward loss
"""))

# 8. models ------------------------------------------------------------------

case("model_mlp", g("""
    # the spec's example, smaller
    input x[8, 4]
    input t[8, 1]
    param W1[4, 16]
    param b1[16]
    param W2[16, 1]
    param b2[1]
    h    = tanh(x @ W1 + b1)
    y    = h @ W2 + b2
    loss = mean((y - t) ** 2)
    output loss
    backward loss
"""))

case("model_logreg", g("""
    # logistic regression, binary cross-entropy written by hand
    input x[10, 3]
    input t[10]
    param w[3]
    param b
    p = sigmoid(x @ w + b)
    loss = -mean(t * log(p) + (1 - t) * log(1 - p))
    output p, loss
    backward loss
"""), {"t": lambda rng, shape: rng.integers(0, 2, shape).astype(np.float64)})

case("model_tanh2", g("""
    # two hidden tanh layers, mean squared error
    input x[6, 3]
    input t[6, 2]
    param W1[3, 5]
    param b1[5]
    param W2[5, 4]
    param b2[4]
    param W3[4, 2]
    param b3[2]
    h1 = tanh(x @ W1 + b1)
    h2 = tanh(h1 @ W2 + b2)
    y = h2 @ W3 + b3
    loss = mean(square(y - t))
    output y, loss
    backward loss
"""))

case("model_linear_relu", g("""
    # nn.Linear layers (x @ W.T + b) with relu, sum-of-squares loss
    input x[6, 4]
    input t[6, 2]
    param W1[8, 4]
    param b1[8]
    param W2[2, 8]
    param b2[2]
    h = relu(x @ W1.T + b1)
    y = h @ W2.T + b2
    loss = sum((y - t) * (y - t)) / 6
    output y, loss
    backward loss
"""))

# 9. full tier ---------------------------------------------------------------

case("red_prod", red_graph("prod"), {p: U(0.5, 1.5) for p, _, _ in RED_FORMS})

case("red_prod_zero", g("""
    # one zero per row / in total: PyTorch's gradient is the product of the others
    param x[3, 4]
    param y[3, 4]
    input w[3]
    a = prod(x, axis=1)
    b = prod(y)
    loss = sum(a * w) + b
    output a, b, loss
    backward loss
"""), {"x": V([[1.5, 0, 2, -1], [0, 0.5, 3, 1], [2, 1, 1.5, 0.5]]),
       "y": V([[1.5, 0.5, 2, -1], [1, 0.5, 1.2, 1], [2, 1, 0, 0.5]])})

case("red_prod_two_zeros", g("""
    # two zeros: every gradient is zero
    param x[3, 4]
    param y[3, 4]
    input w[4]
    a = prod(x, axis=0)
    b = prod(y)
    loss = sum(a * w) + b
    output a, b, loss
    backward loss
"""), {"x": V([[0, 1.5, 2, 0], [0, 0.5, 0, 1], [2, 0, 1.5, 0]]),
       "y": V([[1.5, 0.5, 2, -1], [1, 0, 1.2, 1], [2, 1, 0, 0.5]])})

case("red_logsumexp", red_graph("logsumexp"))

case("red_logsumexp_large", g("""
    # magnitudes 1e4: numerically stable
    param x[3, 4]
    param y[3, 4]
    input w[3]
    input w2[1, 4]
    a = logsumexp(x, axis=1)
    b = logsumexp(y, axis=0, keepdim=true)
    c = logsumexp(x)
    loss = sum(a * w) + sum(b * w2) + c
    output a, b, c, loss
    backward loss
"""), {"x": lambda rng, shape: rng.uniform(-2, 2, shape) + np.array([[1e4], [-1e4], [5e3]]),
       "y": lambda rng, shape: rng.uniform(-2, 2, shape) + np.array([1e4, -1e4, 0, 2e3])})

for fn in ("softmax", "log_softmax"):
    case("norm_" + fn, g("""
        param x[3, 4]
        param z[2, 3, 4]
        input w[3, 4]
        input w3[2, 3, 4]
        a = %s(x)
        b = %s(x, axis=0)
        c = %s(z, axis=1)
        d = %s(z, axis=-1)
        loss = sum(a * w) + sum(b * w * w) + sum(c * w3) + sum(d * w3 * w3)
        output a, b, c, d, loss
        backward loss
    """ % (fn, fn, fn, fn)))
    case("norm_%s_large" % fn, g("""
        # magnitudes 1e4: numerically stable
        param x[3, 4]
        input w[3, 4]
        a = %s(x, axis=-1)
        b = %s(x, axis=0)
        loss = sum(a * w) + sum(b * w * w)
        output a, b, loss
        backward loss
    """ % (fn, fn)), {"x": lambda rng, shape: rng.uniform(-2, 2, shape) + np.array(
        [[1e4, 1e4, -1e4, 0], [5e3, 1e4, 5e3, -1e4], [-1e4, -1e4, 1e4, 1e4]])})

case("loss_mse", g("""
    param y[4, 3]
    input t[4, 3]
    param s[5]
    input u[5]
    loss = mse_loss(y, t)
    l2 = mse_loss(u, s * s)
    output loss, l2
    backward loss, l2
"""))

case("loss_cross_entropy", g("""
    param z[5, 4]
    input labels: i32[5]
    loss = cross_entropy(z, labels)
    output loss
    backward loss
"""), {"z": U(-2, 2), "labels": VI([0, 3, 1, 3, 2])})

case("loss_cross_entropy_large", g("""
    # logits of magnitude 1e4: numerically stable
    param z[4, 3]
    input labels: i32[4]
    loss = cross_entropy(z, labels)
    output loss
    backward loss
"""), {"z": V([[1e4, -1e4, 0], [1e4, 1e4 - 1, -5e3], [-1e4, 2, 1.5], [3e3, -3e3, 3e3]]),
       "labels": VI([0, 1, 0, 2])})

case("loss_bce_logits", g("""
    param z[4, 3]
    input t[4, 3]
    loss = bce_with_logits(z, t)
    output loss
    backward loss
"""), {"z": U(-3, 3), "t": U(0, 1)})

case("loss_bce_logits_large", g("""
    # logits of magnitude 1e4: numerically stable
    param z[3, 4]
    input t[3, 4]
    loss = bce_with_logits(z, t)
    output loss
    backward loss
"""), {"z": PERM(LARGE), "t": lambda rng, shape: rng.integers(0, 2, shape).astype(np.float64)})

case("bmm_3d_2d", g("""
    param a[2, 3, 4]
    param b[4, 5]
    input w[2, 3, 5]
    y = a @ b
    loss = sum(y * w)
    output y, loss
    backward loss
"""))

case("bmm_3d_3d", g("""
    param a[2, 3, 4]
    param b[2, 4, 5]
    input w[2, 3, 5]
    y = a @ b
    loss = sum(y * w)
    output y, loss
    backward loss
"""))

case("bmm_broadcast", g("""
    # batch dimensions broadcast: [2, 1] with [3] -> [2, 3]
    param a[2, 1, 3, 4]
    param b[3, 4, 2]
    input w[2, 3, 3, 2]
    y = a @ b
    loss = sum(y * w)
    output y, loss
    backward loss
"""))

case("bmm_vec", g("""
    # 1-D operand with a batched one
    param a[2, 3, 4]
    param v[4]
    param u[3]
    input w[2, 3]
    input w2[2, 4]
    y = a @ v
    z = u @ a
    loss = sum(y * w) + sum(z * w2)
    output y, z, loss
    backward loss
"""))

case("shape_concat", g("""
    param a[2, 3]
    param b[1, 3]
    param c[2, 2]
    input w0[3, 3]
    input w1[2, 5]
    x = concat([a, b], axis=0)
    y = concat([a, c, a], axis=1)
    z = concat([a, c], axis=-1)
    loss = sum(x * w0) + sum(y[:, 0:5] * w1) + sum(z * z)
    output x, y, z, loss
    backward loss
"""))

case("shape_unsqueeze_squeeze", g("""
    param x[3, 4]
    param y[3, 1, 4]
    input w[3, 4]
    a = unsqueeze(x, 0)
    b = unsqueeze(x, -1)
    c = squeeze(y, 1)
    d = squeeze(unsqueeze(x, 1), 1)
    loss = sum(a * w) + sum(b * unsqueeze(w, 2)) + sum(c * w * w) + sum(d * d)
    output a, b, c, d, loss
    backward loss
"""))

case("idx_int", g("""
    param x[3, 4]
    param z[2, 3, 4]
    input w[4]
    a = x[1]
    b = x[-1]
    c = x[2, 3]
    d = z[1, -2]
    loss = sum(a * w) + sum(b * w * w) + c + sum(d * w)
    output a, b, c, d, loss
    backward loss
"""))

case("idx_slice", g("""
    param x[4, 5]
    input w1[2, 5]
    input w2[4, 2]
    input w3[2]
    a = x[1:3, :]
    b = x[:, -2:]
    c = x[0:2, 1]
    d = x[:-1, 1:4]
    loss = sum(a * w1) + sum(b * w2) + sum(c * w3) + sum(d * d)
    output a, b, c, d, loss
    backward loss
"""))

case("idx_3d", g("""
    param z[2, 3, 4]
    input w[3, 2]
    a = z[1, :, 2:]
    b = z[:, 0]
    c = z[-1][1:]
    loss = sum(a * w) + sum(b * b) + sum(c)
    output a, b, c, loss
    backward loss
"""))

CONV = [
    ("conv_basic", "x[1, 1, 5, 5]", "w[1, 1, 3, 3]", "", "[1, 1, 3, 3]"),
    ("conv_pad1", "x[1, 2, 5, 5]", "w[3, 2, 3, 3]", ", padding=1", "[1, 3, 5, 5]"),
    ("conv_stride2", "x[2, 3, 6, 6]", "w[2, 3, 3, 3]", ", stride=2", "[2, 2, 2, 2]"),
    ("conv_stride2_pad1", "x[2, 2, 5, 5]", "w[2, 2, 3, 3]", ", stride=2, padding=1", "[2, 2, 3, 3]"),
    ("conv_rect", "x[1, 2, 4, 6]", "w[3, 2, 2, 3]", ", stride=1, padding=1", "[1, 3, 5, 6]"),
]
for name, xs, ws, args, ys in CONV:
    case(name, g("""
        param %s
        param %s
        input r%s
        y = conv2d(x, w%s)
        loss = sum(y * r)
        output y, loss
        backward loss
    """ % (xs, ws, ys, args)))

POOL = [
    ("pool_max", "max_pool2d", "[2, 2, 4, 4]", "2", "[2, 2, 2, 2]"),
    ("pool_max_stride1", "max_pool2d", "[1, 2, 4, 4]", "2, stride=1", "[1, 2, 3, 3]"),
    ("pool_max_odd", "max_pool2d", "[1, 3, 5, 5]", "2", "[1, 3, 2, 2]"),
    ("pool_max_k3s2", "max_pool2d", "[1, 2, 7, 7]", "3, stride=2", "[1, 2, 3, 3]"),
    ("pool_avg", "avg_pool2d", "[2, 2, 4, 4]", "2", "[2, 2, 2, 2]"),
    ("pool_avg_stride1", "avg_pool2d", "[1, 2, 4, 4]", "2, stride=1", "[1, 2, 3, 3]"),
    ("pool_avg_odd", "avg_pool2d", "[1, 3, 5, 5]", "2", "[1, 3, 2, 2]"),
]
for name, fn, xs, args, ys in POOL:
    case(name, g("""
        param x%s
        input r%s
        y = %s(x, %s)
        loss = sum(y * r)
        output y, loss
        backward loss
    """ % (xs, ys, fn, args)))

case("emb_basic", g("""
    param table[5, 3]
    input idx: i32[6]
    input w[6, 3]
    e = embedding(table, idx)        # repeated indices accumulate
    loss = sum(e * w)
    output e, loss
    backward loss
"""), {"idx": VI([1, 4, 1, 0, 4, 1])})

case("emb_2d", g("""
    param table[6, 2]
    input idx: i32[2, 3]
    input w[2, 3, 2]
    e = embedding(table, idx)
    loss = sum(tanh(e) * w)
    output e, loss
    backward loss
"""), {"idx": VI([[5, 0, 5], [2, 5, 0]])})

case("model_cnn", g("""
    # conv -> relu -> max pool -> flatten -> linear -> cross entropy
    input x[2, 1, 6, 6]
    input labels: i32[2]
    param k[3, 1, 3, 3]
    param kb[3]
    param W[27, 4]
    param b[4]
    h = relu(conv2d(x, k, padding=1) + reshape(kb, [1, 3, 1, 1]))
    p = max_pool2d(h, 2)
    f = reshape(p, [2, 27])
    z = f @ W + b
    loss = cross_entropy(z, labels)
    output z, loss
    backward loss
"""), {"labels": VI([2, 0])})

case("model_softmax_regression", g("""
    input x[6, 4]
    input labels: i32[6]
    param W[4, 3]
    param b[3]
    z = x @ W + b
    loss = cross_entropy(z, labels)
    p = softmax(z, axis=1)
    lp = log_softmax(z)
    output loss, p, lp
    backward loss
"""), {"labels": VI([0, 1, 2, 2, 1, 0])})

case("model_mlp_mse_loss", g("""
    input x[8, 3]
    input t[8, 2]
    param W1[3, 6]
    param b1[6]
    param W2[6, 2]
    param b2[2]
    y = sigmoid(x @ W1 + b1) @ W2 + b2
    loss = mse_loss(y, t)
    output loss
    backward loss
"""))

case("model_bce_classifier", g("""
    input x[8, 3]
    input t[8, 1]
    param W[3, 1]
    param b[1]
    z = x @ W + b
    loss = bce_with_logits(z, t)
    output loss
    backward loss
"""), {"t": lambda rng, shape: rng.integers(0, 2, shape).astype(np.float64)})

case("model_attention", g("""
    # a tiny single-head attention block (batched @, softmax, transpose)
    input x[2, 3, 4]
    param Wq[4, 4]
    param Wk[4, 4]
    param Wv[4, 4]
    input w[2, 3, 4]
    q = x @ Wq
    k = x @ Wk
    v = x @ Wv
    a = softmax(q @ transpose(k, 1, 2) * 0.5, axis=-1)
    y = a @ v
    loss = sum(y * w)
    output y, loss
    backward loss
"""))

case("ag_hvp_logsumexp", g("""
    # Hessian-vector product through logsumexp and indexing
    param x[5]
    input v[5]
    f = logsumexp(x) + x[0] * x[-1]
    g = grad(f, x)
    hv = grad(sum(g * v), x)
    output g, hv
    backward f
"""))

case("ag_grad_slice", g("""
    # gradient with respect to a param used through slices and concat
    param x[4, 3]
    input w[4, 3]
    y = concat([x[2:, :], x[:2, :]], axis=0)
    loss = sum(sin(y) * w) + prod(x[0])
    g = grad(loss, x)
    output loss, g
    backward loss
"""))

case("idx_i32_mixed", g("""
    # an i32 input used by embedding, and cross_entropy on the embedding
    param table[4, 3]
    input idx: i32[5]
    input labels: i32[5]
    z = embedding(table, idx) * 2
    loss = cross_entropy(z, labels) + mean(logsumexp(z, axis=1))
    output loss
    backward loss
"""), {"idx": VI([3, 3, 0, 1, 3]), "labels": VI([2, 2, 0, 1, 0])})


# ------------------------------------------------------------ generation ---

def rng_for(name):
    return np.random.default_rng(zlib.crc32(name.encode("utf-8")))


def make_inputs(name, graph, init):
    rng = rng_for(name)
    arrays = {}
    shapes = {}
    for kind, n, dt, shape in graph.decls:
        shapes[n] = shape
        gen = init.get(n)
        if dt == "i32":
            assert gen is not None, "%s: i32 input %s needs values" % (name, n)
            arrays[n] = np.array(np.asarray(gen(rng, shape)).reshape(shape), dtype="<i4", order="C")
        else:
            gen = gen or U(-1, 1)
            arrays[n] = np.array(np.asarray(gen(rng, shape)).reshape(shape), dtype="<f8", order="C")
    return arrays, rng


def add_seeds(name, graph, arrays, init, rng):
    """Seeds for non-scalar backward roots (their shapes known after a run)."""
    ev = Evaluator(graph, torch.float64)
    res = ev.run(arrays, do_backward=False)
    for r in graph.backward:
        shape = tuple(res["env"][r].shape)
        if shape:
            gen = init.get("grad_" + r) or U(-1, 1)
            arrays["grad_" + r] = np.array(
                np.asarray(gen(rng, shape)).reshape(shape), dtype="<f8", order="C")
    extra = set(init) - set(arrays)
    assert not extra, "%s: init for unknown names %s" % (name, extra)


def to_np(t, dtype):
    return np.array(t.detach().numpy(), dtype=dtype, order="C")


def evaluate(graph, arrays, dtype):
    ev = Evaluator(graph, dtype)
    res = ev.run(arrays)
    out = {}
    npdt = "<f8" if dtype == torch.float64 else "<f4"
    for n, t in res["outputs"].items():
        out[n] = to_np(t, npdt)
    for n, t in res["grads"].items():
        out[n] = to_np(t, npdt)
    return out, ev


def objective(graph, arrays):
    """sum over backward roots of <seed, root>, in f64."""
    ev = Evaluator(graph, torch.float64)
    res = ev.run(arrays, do_backward=False)
    total = 0.0
    for r in graph.backward:
        t = res["env"][r].detach()
        if t.dim() == 0:
            total += float(t)
        else:
            total += float((t * torch.tensor(arrays["grad_" + r])).sum())
    return total, ev


def fd_grad(fun, arrays, leaf):
    """Richardson-extrapolated central difference of fun w.r.t. arrays[leaf]."""
    base = arrays[leaf]
    out = np.zeros(base.shape)
    scale = abs(fun(arrays))     # rounding error of fun is about eps * scale
    for j in np.ndindex(base.shape):
        h = 1e-6 * max(1.0, abs(base[j]), scale)

        def d(step):
            ap = dict(arrays)
            x = base.copy()
            x[j] = base[j] + step
            ap[leaf] = x
            fp = fun(ap)
            x = base.copy()
            x[j] = base[j] - step
            ap[leaf] = x
            fm = fun(ap)
            return (fp - fm) / (2 * step)

        out[j] = (4 * d(h / 2) - d(h)) / 3
    return out


def fd_err(fd, an):
    scale = max(float(np.max(np.abs(an))) if an.size else 0.0, FD_FLOOR)
    return float(np.max(np.abs(fd - an))) / scale if an.size else 0.0


def fd_checks(name, graph, arrays, exp64, ev64, fd):
    """Returns [(what, err)]; asserts err <= FD_RTOL."""
    if fd is False:
        return []
    skip = fd if isinstance(fd, set) else set()
    report = []
    kinds = {n: (k, dt) for k, n, dt, s in graph.decls}
    if graph.backward:
        for k, n, dt, s in graph.decls:
            if k != "param" or n in skip:
                continue
            fdv = fd_grad(lambda a: objective(graph, a)[0], arrays, n)
            report.append(("grad_" + n, fd_err(fdv, exp64["grad_" + n])))
    # grad(y, x[, v]) nodes with a leaf x and a leaf (or no) seed
    for idx, (y, xname, vast, r) in enumerate(ev64.grad_records):
        if xname not in kinds or kinds[xname][1] != "f" or "g:" + xname in skip:
            continue
        if vast is not None and (vast[0] != "name" or vast[1] not in kinds or vast[1] == xname):
            continue

        def fun(a, idx=idx, vast=vast):
            e = Evaluator(graph, torch.float64)
            e.run(a, do_backward=False)
            yy = e.grad_records[idx][0].detach()
            if vast is None:
                return float(yy)
            return float((yy * torch.tensor(a[vast[1]])).sum())

        fdv = fd_grad(fun, arrays, xname)
        report.append(("grad#%d(.,%s)" % (idx, xname), fd_err(fdv, to_np(r, "<f8"))))
    for what, err in report:
        assert err <= FD_RTOL, "%s: finite difference of %s: relative error %.3g" % (name, what, err)
    return report


def save(path, arr):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "wb") as f:
        np.save(f, arr, allow_pickle=False)


def write_case_dir(base, name, src, arrays):
    """base/name afresh, with model.graph and in/ARG.npy; returns its path."""
    d = os.path.join(base, name)
    if os.path.isdir(d):
        shutil.rmtree(d)
    os.makedirs(d)
    with open(os.path.join(d, "model.graph"), "w", encoding="utf-8", newline="\n") as f:
        f.write(src)
    for n, a in arrays.items():
        save(os.path.join(d, "in", n + ".npy"), a)
    return d


def case_tier(src, ev):
    tier = "full" if ev.full_features else "core"
    # the network group (convolution, pooling, embedding) is its own tier
    if re.search(r"\b(conv2d|max_pool2d|avg_pool2d|embedding)\(", src):
        tier = "net"
    return tier


def generate(name, src, init, fd, ref, known, verbose):
    graph = parse(src)
    assert graph.name == name
    arrays, rng = make_inputs(name, graph, init)
    add_seeds(name, graph, arrays, init, rng)
    # Every float input is exactly representable in f32, so the f64
    # expectation is also the exact answer for the f32 run's inputs.
    arrays = {n: (a.astype("<f4").astype("<f8") if a.dtype.kind == "f" else a) for n, a in arrays.items()}

    exp64, ev64 = evaluate(graph, arrays, torch.float64)
    a32 = arrays
    exp32, _ = evaluate(graph, a32, torch.float32)
    tier = case_tier(src, ev64)

    if graph.backward:
        for k, n, dt, s in graph.decls:
            if k == "param":
                assert "grad_" + n in exp64
    for n, v in (known or {}).items():
        assert np.allclose(exp64[n], np.asarray(v, dtype=np.float64), rtol=1e-4, atol=1e-4), \
            "%s: %s = %s, autograd-concepts.md says %s" % (name, n, exp64[n], v)
    if ref is not None:
        tens = {n: torch.tensor(a, dtype=torch.float64 if a.dtype.kind == "f" else torch.int64)
                for n, a in arrays.items()}
        for n, v in ref(tens).items():
            assert np.allclose(exp64[n], v.numpy(), rtol=1e-12, atol=1e-12), \
                "%s: %s differs from the hand-written torch reference" % (name, n)
    for n, v in exp64.items():
        assert np.all(np.isfinite(v)) or name == "concept_ex11", "%s: %s not finite" % (name, n)
        assert v.shape == exp32[n].shape

    report = fd_checks(name, graph, arrays, exp64, ev64, fd)
    if verbose:
        worst = max([e for _, e in report], default=None)
        print("%-28s %-4s fd=%s" % (name, tier, "skipped" if worst is None else "%.2e" % worst))

    d = write_case_dir(CASES_DIR, name, src, arrays)
    for n, a in exp64.items():
        save(os.path.join(d, "expect_f64", n + ".npy"), a)
    for n, a in exp32.items():
        save(os.path.join(d, "expect_f32", n + ".npy"), a)
    return tier


# ------------------------------------------------------ optimizer cases ---
#
# Graphs that end with `optimizer` (and maybe `clip_grad_norm`): one training
# step.  They live in optim/NAME/ and are generated by `--optim` (or with
# everything).  For each dtype and k in OPT_STEPS the fixture holds every
# param after k steps of the real torch.optim optimizer from a zeroed state and
# every `output` as computed during step k (with the params before the k-th
# update), all steps on the same inputs:
#
#   optim/NAME/model.graph
#   optim/NAME/in/ARG.npy                      <f8 (f32-representable), <i4 for i32
#   optim/NAME/expect_f64_steps{1,5}/X.npy      torch in float64
#   optim/NAME/expect_f32_steps{1,5}/X.npy      torch in float32 (<f4)
#
# A param the loss does not reach gets `p.grad = zeros` (agc's gradient of it
# is zeros), not `p.grad = None`: torch then still applies weight decay and
# momentum to it, where with None it would skip the param.  Self-checks: an
# independent NumPy transcription of the update rules (f64) must give torch's
# numbers to 1e-12; every param must move by more than OPT_MOVE relative to its
# size after the last step count; f32 must stay within OPT_F32_SANITY of f64;
# a case marked clips=True clips at every step (and clipping changes the
# result), clips=False never clips.

OPT_DIR = os.path.join(HERE, "optim")
OPT_STEPS = (1, 5)
OPT_MOVE = 1e-3
OPT_F32_SANITY = 1e-3
OPT_DEFAULTS = {
    "sgd": {"momentum": 0.0, "dampening": 0.0, "weight_decay": 0.0, "nesterov": False},
    "adam": {"beta1": 0.9, "beta2": 0.999, "eps": 1e-8, "weight_decay": 0.0},
    "adamw": {"beta1": 0.9, "beta2": 0.999, "eps": 1e-8, "weight_decay": 0.01},
}

OPT_CASES = []


def optcase(name, src, init=None, clips=None):
    """clips: None (no clip_grad_norm), True (the norm exceeds M at every step),
    False (it never does)."""
    assert re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", name)
    assert all(c[0] != name for c in OPT_CASES + CASES), name
    src = "graph %s\n%s" % (name, src)
    OPT_CASES.append((name, src, init or {}, clips))


# Linear regression: two params of different shapes, loss and prediction out.
LIN = g("""
    input x[8, 3]
    input t[8, 2]
    param W[3, 2]
    param b[2]
    y = x @ W + b
    loss = mean((y - t) ** 2)
    output loss, y
    backward loss
""")

# A small MLP: tanh hidden layer, cross entropy over 3 classes.
MLP_CE = g("""
    input x[6, 4]
    input labels: i32[6]
    param W1[4, 5]
    param b1[5]
    param W2[5, 3]
    param b2[3]
    h = tanh(x @ W1 + b1)
    z = h @ W2 + b2
    loss = cross_entropy(z, labels)
    output loss, z
    backward loss
""")
MLP_LABELS = {"labels": VI([0, 2, 1, 1, 0, 2])}

# A small MLP with mean squared error and a scalar param (output scale).
MLP_MSE = g("""
    input x[8, 3]
    input t[8, 2]
    param W1[3, 4]
    param b1[4]
    param W2[4, 2]
    param s
    h = tanh(x @ W1 + b1)
    y = s * (h @ W2)
    loss = mse_loss(y, t)
    output loss
    backward loss
""")

# Param u is not reached by the loss: its gradient is zeros.
UNUSED = g("""
    input x[8, 3]
    input t[8]
    param w[3]
    param u[2, 2]
    y = x @ w
    loss = mean((y - t) ** 2)
    output loss
    backward loss
""")

optcase("sgd_plain", LIN + "optimizer sgd(lr=0.1)\n")
optcase("sgd_momentum", LIN + "optimizer sgd(lr=0.1, momentum=0.9)\n")
optcase("sgd_dampening", LIN + "optimizer sgd(lr=0.1, momentum=0.9, dampening=0.5)\n")
optcase("sgd_nesterov", LIN + "optimizer sgd(lr=0.1, momentum=0.9, nesterov=true)\n")
optcase("sgd_weight_decay", LIN + "optimizer sgd(lr=0.1, weight_decay=0.2)\n")
optcase("sgd_all", MLP_MSE +
        "optimizer sgd(lr=0.2, momentum=0.8, dampening=0, weight_decay=0.05, nesterov=true)\n")
optcase("adam_default", LIN + "optimizer adam(lr=0.05)\n")
optcase("adam_weight_decay", LIN + "optimizer adam(lr=0.05, weight_decay=0.2)\n")
optcase("adam_betas", LIN +
        "optimizer adam(lr=0.05, beta1=0.8, beta2=0.95, eps=1e-3, weight_decay=0)\n")
optcase("adamw_default", LIN + "optimizer adamw(lr=0.05)\n")
optcase("adamw_args", MLP_MSE +
        "optimizer adamw(lr=0.05, beta1=0.85, beta2=0.99, eps=1e-6, weight_decay=0.1)\n")
optcase("mlp_adam", MLP_CE + "optimizer adam(lr=0.05)\n", MLP_LABELS)
optcase("mlp_sgd_clip", MLP_CE + "clip_grad_norm 0.1\noptimizer sgd(lr=0.5, momentum=0.9)\n",
        MLP_LABELS, clips=True)
optcase("clip_sgd", LIN + "clip_grad_norm 0.2\noptimizer sgd(lr=0.3)\n", clips=True)
# eps comparable to the clipped gradients, so that the clip factor shows in
# Adam's update (with eps -> 0 the update hardly depends on the scale).
optcase("clip_adam", LIN + "clip_grad_norm 0.2\noptimizer adam(lr=0.05, eps=0.05)\n", clips=True)
optcase("clip_noclip", LIN + "clip_grad_norm 50\noptimizer sgd(lr=0.1, momentum=0.5)\n",
        clips=False)
optcase("lr_input_sgd", "input lr\ninput mom\n" + LIN +
        "optimizer sgd(lr=lr, momentum=mom, weight_decay=0.01)\n",
        {"lr": V(0.15), "mom": V(0.7)})
optcase("lr_input_adam", "input lr\n" + LIN + "optimizer adam(lr=lr, weight_decay=0.01)\n",
        {"lr": V(0.04)})
optcase("unused_sgd", UNUSED + "optimizer sgd(lr=0.1, momentum=0.9, weight_decay=0.1)\n")
optcase("unused_adam", UNUSED + "optimizer adam(lr=0.05, weight_decay=0.1)\n")
optcase("unused_adamw", UNUSED + "clip_grad_norm 0.3\noptimizer adamw(lr=0.05, weight_decay=0.1)\n",
        clips=True)

# An output that reads only a param (wn): it must be computed before the
# param's update in the same step.
optcase("output_of_param", g("""
    input x[8, 3]
    input t[8, 2]
    param W[3, 2]
    param b[2]
    y = x @ W + b
    loss = mean((y - t) ** 2)
    wn = sum(W * W)
    bt = b * 2
    output loss, wn, bt
    backward loss
    optimizer adam(lr=0.05)
"""))
# Every argument from a scalar input (beta1, beta2 and eps too).
optcase("hparams_input_adamw", "input lr\ninput b1\ninput b2\ninput ep\ninput wd\n" + LIN +
        "optimizer adamw(lr=lr, beta1=b1, beta2=b2, eps=ep, weight_decay=wd)\n",
        {"lr": V(0.05), "b1": V(0.8), "b2": V(0.95), "ep": V(1e-3), "wd": V(0.2)})
optcase("hparams_input_sgd", "input lr\ninput mom\ninput damp\ninput wd\n" + LIN +
        "optimizer sgd(lr=lr, momentum=mom, dampening=damp, weight_decay=wd)\n",
        {"lr": V(0.1), "mom": V(0.85), "damp": V(0.3), "wd": V(0.05)})
# agc wants nesterov's momentum constant (torch.optim.SGD checks it when built).
optcase("hparams_input_nesterov", "input lr\ninput wd\n" + LIN +
        "optimizer sgd(lr=lr, momentum=0.85, weight_decay=wd, nesterov=true)\n",
        {"lr": V(0.1), "wd": V(0.05)})
# A small convolutional network (convolution, pooling, flatten, cross entropy).
optcase("conv_adam", g("""
    input x[2, 1, 6, 6]
    input labels: i32[2]
    param k[3, 1, 3, 3]
    param W[27, 4]
    param c[4]
    h = relu(conv2d(x, k, padding=1))
    p = max_pool2d(h, 2)
    z = reshape(p, [2, 27]) @ W + c
    loss = cross_entropy(z, labels)
    output loss, z
    backward loss
    optimizer adam(lr=0.05, weight_decay=0.01)
"""), {"labels": VI([1, 3])})
# An embedding table with repeated indices; rows never looked up only decay.
optcase("embed_sgd", g("""
    input idx: i32[5]
    input t[5]
    param E[6, 3]
    param w[3]
    e = embedding(E, idx)
    y = e @ w
    loss = mean((y - t) ** 2)
    output loss
    backward loss
    optimizer sgd(lr=0.3, momentum=0.9, weight_decay=0.05)
"""), {"idx": VI([4, 1, 4, 0, 1])})


def opt_value(e, arrays):
    """A number, true/false, or the name of a scalar input."""
    if e[0] == "num":
        return e[1]
    if e[0] == "bool":
        return e[1]
    if e[0] == "name":
        a = arrays[e[1]]
        assert a.shape == (), "optimizer argument %s is not a scalar" % e[1]
        return float(a)
    raise GraphError("optimizer argument: a number, true/false or a scalar input name")


def opt_hparams(graph, arrays):
    kind, args = graph.optimizer
    if kind not in OPT_DEFAULTS:
        raise GraphError("unknown optimizer %s" % kind)
    h = dict(OPT_DEFAULTS[kind])
    assert "lr" in args, "lr= is required"
    for k, v in args.items():
        assert k == "lr" or k in h, "%s has no argument %s" % (kind, k)
        h[k] = opt_value(v, arrays)
    return kind, h


def make_optimizer(kind, h, plist):
    if kind == "sgd":
        return torch.optim.SGD(plist, lr=h["lr"], momentum=h["momentum"],
                               dampening=h["dampening"], weight_decay=h["weight_decay"],
                               nesterov=bool(h["nesterov"]), foreach=False)
    cls = torch.optim.Adam if kind == "adam" else torch.optim.AdamW
    return cls(plist, lr=h["lr"], betas=(h["beta1"], h["beta2"]), eps=h["eps"],
               weight_decay=h["weight_decay"], amsgrad=False, foreach=False)


def train(graph, arrays, dtype, steps, clip=True):
    """[(outputs of step k, params after step k, total grad norm or None)]."""
    npdt = "<f8" if dtype == torch.float64 else "<f4"
    pnames = [n for k, n, dt, s in graph.decls if k == "param"]
    params = {n: torch.tensor(arrays[n], dtype=dtype).requires_grad_(True) for n in pnames}
    plist = [params[n] for n in pnames]
    kind, h = opt_hparams(graph, arrays)
    opt = make_optimizer(kind, h, plist)
    M = opt_value(graph.clip, arrays) if graph.clip is not None and clip else None
    hist = []
    for _ in range(steps):
        feed = dict(arrays)
        for n in pnames:
            feed[n] = params[n].detach().numpy().copy()
        res = Evaluator(graph, dtype).run(feed)
        outs = {n: to_np(t, npdt) for n, t in res["outputs"].items()}
        opt.zero_grad(set_to_none=True)
        for n in pnames:
            # zeros, never None, for a param the loss does not reach (see above)
            params[n].grad = res["grads"]["grad_" + n].detach().clone()
        norm = None
        if M is not None:
            norm = float(torch.nn.utils.clip_grad_norm_(plist, M))
        opt.step()
        hist.append((outs, {n: to_np(params[n], npdt) for n in pnames}, norm))
    return hist


def train_reference(graph, arrays, steps):
    """The update rules of torch 1.13 written out in NumPy, f64: checks how the
    graph's arguments were handed to torch.optim."""
    pnames = [n for k, n, dt, s in graph.decls if k == "param"]
    p = {n: arrays[n].copy() for n in pnames}
    kind, h = opt_hparams(graph, arrays)
    M = opt_value(graph.clip, arrays) if graph.clip is not None else None
    st = {n: [np.zeros_like(p[n]), np.zeros_like(p[n])] for n in pnames}
    hist = []
    for t in range(1, steps + 1):
        feed = dict(arrays)
        feed.update(p)
        res = Evaluator(graph, torch.float64).run(feed)
        gr = {n: res["grads"]["grad_" + n].detach().numpy().copy() for n in pnames}
        if M is not None:
            total = np.sqrt(sum(float(np.sum(gr[n] ** 2)) for n in pnames))
            coef = min(M / (total + 1e-6), 1.0)
            gr = {n: gr[n] * coef for n in pnames}
        for n in pnames:
            x, d = p[n], gr[n]
            if kind == "sgd":
                if h["weight_decay"]:
                    d = d + h["weight_decay"] * x
                if h["momentum"]:
                    buf = d.copy() if t == 1 else h["momentum"] * st[n][0] + (1 - h["dampening"]) * d
                    st[n][0] = buf
                    d = d + h["momentum"] * buf if h["nesterov"] else buf
                p[n] = x - h["lr"] * d
            else:
                if kind == "adamw":
                    x = x * (1 - h["lr"] * h["weight_decay"])
                elif h["weight_decay"]:
                    d = d + h["weight_decay"] * x
                m = st[n][0] = h["beta1"] * st[n][0] + (1 - h["beta1"]) * d
                v = st[n][1] = h["beta2"] * st[n][1] + (1 - h["beta2"]) * d * d
                mhat = m / (1 - h["beta1"] ** t)
                vhat = v / (1 - h["beta2"] ** t)
                p[n] = x - h["lr"] * mhat / (np.sqrt(vhat) + h["eps"])
        hist.append({n: p[n].copy() for n in pnames})
    return hist


def rel_err(a, e):
    """max |a - e| relative to the largest |e| (floor 1e-3)."""
    a, e = np.asarray(a, dtype=np.float64), np.asarray(e, dtype=np.float64)
    if e.size == 0:
        return 0.0
    return float(np.max(np.abs(a - e))) / max(float(np.max(np.abs(e))), 1e-3)


def generate_optim(name, src, init, clips, verbose):
    graph = parse(src)
    assert graph.name == name and graph.optimizer is not None and graph.backward
    assert (graph.clip is not None) == (clips is not None), name
    arrays, rng = make_inputs(name, graph, init)
    extra = set(init) - set(arrays)
    assert not extra, "%s: init for unknown names %s" % (name, extra)
    arrays = {n: (a.astype("<f4").astype("<f8") if a.dtype.kind == "f" else a) for n, a in arrays.items()}
    pnames = [n for k, n, dt, s in graph.decls if k == "param"]
    assert not set(pnames) & set(graph.outputs), "%s: a param is also an output" % name
    nmax = max(OPT_STEPS)
    h64 = train(graph, arrays, torch.float64, nmax)
    h32 = train(graph, arrays, torch.float32, nmax)

    ref = train_reference(graph, arrays, nmax)
    for k in range(nmax):
        for n in pnames:
            e = rel_err(h64[k][1][n], ref[k][n])
            assert e <= 1e-12, "%s: step %d: %s differs from the NumPy rules by %.3g" % (name, k + 1, n, e)
    moved = min(rel_err(h64[-1][1][n], arrays[n]) for n in pnames)
    assert moved > OPT_MOVE, "%s: a param moves only %.3g in %d steps" % (name, moved, nmax)
    f32_vs_f64 = 0.0
    for k in range(nmax):
        for d32, d64 in ((h32[k][0], h64[k][0]), (h32[k][1], h64[k][1])):
            for n in d64:
                assert np.all(np.isfinite(d64[n])), "%s: %s not finite" % (name, n)
                f32_vs_f64 = max(f32_vs_f64, rel_err(d32[n], d64[n]))
    assert f32_vs_f64 <= OPT_F32_SANITY, "%s: f32 and f64 differ by %.3g" % (name, f32_vs_f64)
    clipnote = ""
    if clips is not None:
        M = opt_value(graph.clip, arrays)
        norms = [hh[2] for hh in h64]
        if clips:
            assert min(norms) > M * 1.05, "%s: norms %s do not all exceed %g" % (name, norms, M)
            free = train(graph, arrays, torch.float64, nmax, clip=False)
            diff = max(rel_err(free[-1][1][n], h64[-1][1][n]) for n in pnames)
            assert diff > 1e-3, "%s: clipping changes the params only by %.3g" % (name, diff)
            clipnote = " clip: norms %.3g..%.3g > %g" % (min(norms), max(norms), M)
        else:
            assert max(norms) < M * 0.95, "%s: norms %s reach %g" % (name, norms, M)
            clipnote = " clip: norms %.3g..%.3g < %g" % (min(norms), max(norms), M)
    if verbose:
        print("%-20s moved>=%.2e f32-vs-f64<=%.2e%s" % (name, moved, f32_vs_f64, clipnote))

    d = write_case_dir(OPT_DIR, name, src, arrays)
    for tag, hist in (("f64", h64), ("f32", h32)):
        for k in OPT_STEPS:
            outs, ps, _ = hist[k - 1]
            for n, a in list(ps.items()) + list(outs.items()):
                save(os.path.join(d, "expect_%s_steps%d" % (tag, k), n + ".npy"), a)


def main(argv):
    verbose = "--check" in argv
    optim_only = "--optim" in argv
    only = [a for a in argv if not a.startswith("--")]
    names = [c[0] for c in CASES]
    opt_names = [c[0] for c in OPT_CASES]
    for o in only:
        assert o in names or o in opt_names, "unknown case %s" % o
    reg_only = [o for o in only if o in names]
    opt_only = [o for o in only if o in opt_names]
    if not optim_only and (reg_only or not only):
        main_cases(reg_only, verbose)
    if optim_only or opt_only or not only:
        main_optim(opt_only, verbose)


def main_optim(only, verbose):
    os.makedirs(OPT_DIR, exist_ok=True)
    names = [c[0] for c in OPT_CASES]
    if not only:
        for d in sorted(os.listdir(OPT_DIR)):
            if d not in names and os.path.isdir(os.path.join(OPT_DIR, d)):
                shutil.rmtree(os.path.join(OPT_DIR, d))
    n = 0
    for name, src, init, clips in OPT_CASES:
        if only and name not in only:
            continue
        generate_optim(name, src, init, clips, verbose)
        n += 1
    print("%d optimizer cases written to %s" % (n, os.path.relpath(OPT_DIR)))


def main_cases(only, verbose):
    names = [c[0] for c in CASES]
    os.makedirs(CASES_DIR, exist_ok=True)
    if not only:
        for d in sorted(os.listdir(CASES_DIR)):
            if d not in names and os.path.isdir(os.path.join(CASES_DIR, d)):
                shutil.rmtree(os.path.join(CASES_DIR, d))
    tiers = {}
    for name, src, init, fd, ref, known in CASES:
        if only and name not in only:
            # tier of an untouched case: parse + evaluate only
            graph = parse(src)
            arrays, rng = make_inputs(name, graph, init)
            add_seeds(name, graph, arrays, init, rng)
            ev = Evaluator(graph, torch.float64)
            ev.run(arrays)
            tiers[name] = case_tier(src, ev)
            continue
        tiers[name] = generate(name, src, init, fd, ref, known, verbose)
    with open(os.path.join(HERE, "MANIFEST"), "w", encoding="utf-8", newline="\n") as f:
        for name in names:
            f.write("%s %s\n" % (name, tiers[name]))
    ncore = sum(1 for t in tiers.values() if t == "core")
    print("%d cases: %d core, %d full" % (len(names), ncore, len(names) - ncore))


if __name__ == "__main__":
    main(sys.argv[1:])
