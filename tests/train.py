#!/usr/bin/python3
"""The training step and --target mcu, through the command line.

    train.py AGC SOURCE_DIR

- `agc run --steps N` on every backend x target x dtype against values
  derived by hand (SGD, momentum, nesterov, Adam's first steps, clipping);
- the errors of `optimizer` and `clip_grad_norm`, exactly;
- the generated file: NAME, NAME_grad, NAME_update, NAME_STATE_BYTES; the
  mcu C compiles warning-free under the contract's flags (gcc on the host,
  and arm-none-eabi-gcc when installed, with no double routines linked);
- the step's own outputs and NAME_update agree with NAME_grad followed by
  the optimizer (the same file, compiled, called through ctypes);
- --emit mem: the workspace is within 1.05x of its lower bound on the mcu
  target, and the step keeps no gradient buffers.
"""
import ctypes
import os
import re
import shutil
import subprocess
import sys
import tempfile

import numpy as np

AGC, SRC = sys.argv[1], sys.argv[2]
T = tempfile.mkdtemp()
npass = nfail = 0


def ok(cond, what):
    global npass, nfail
    if cond:
        npass += 1
    else:
        nfail += 1
        print("FAIL:", what)


def agc(*args):
    r = subprocess.run([AGC] + [str(a) for a in args], capture_output=True,
                       text=True)
    return r.returncode, r.stdout, r.stderr


def write(name, text):
    p = os.path.join(T, name)
    with open(p, "w") as f:
        f.write(text)
    return p


def run_steps(graph, inputs, steps, backend, target, dtype, extra=()):
    d = tempfile.mkdtemp(dir=T)
    ind = os.path.join(d, "in")
    os.mkdir(ind)
    for k, v in inputs.items():
        np.save(os.path.join(ind, k + ".npy"),
                np.asarray(v, np.float32 if dtype == "f32" else np.float64))
    out = os.path.join(d, "out")
    rc, _, err = agc("run", graph, "--inputs", ind, "--out", out, "--steps",
                     steps, "--backend", backend, "--target", target,
                     "--dtype", dtype, *extra)
    if rc != 0:
        return None, err
    res = {}
    for f in os.listdir(out):
        res[f[:-4]] = np.load(os.path.join(out, f)).astype(np.float64)
    return res, ""


CONFIGS = [(b, t, d) for b in ("tcc", "cc") for t in ("host", "mcu")
           for d in ("f32", "f64")]

# ---- hand-derived steps ------------------------------------------------------
# loss = sum(w * x): the gradient of w is x whatever w is.
x = np.array([0.5, -2.0, 4.0])
w0 = np.array([1.0, 2.0, -3.0])
lin = "input x[3]\nparam w[3]\nloss = sum(w * x)\noutput loss\nbackward loss\n"


def sgd_momentum(steps, lr, m, damp, nest, wd=0.0):
    w, buf = w0.copy(), None
    for _ in range(steps):
        d = x + wd * w
        buf = d.copy() if buf is None else m * buf + (1 - damp) * d
        w = w - lr * (d + m * buf if nest else buf)
    return w


cases = [
    ("sgd", "optimizer sgd(lr=0.5)\n", 3, w0 - 1.5 * x),
    ("sgd-momentum", "optimizer sgd(lr=0.25, momentum=0.5)\n", 3,
     sgd_momentum(3, 0.25, 0.5, 0, False)),
    ("sgd-dampening", "optimizer sgd(lr=0.25, momentum=0.5, dampening=0.5)\n",
     3, sgd_momentum(3, 0.25, 0.5, 0.5, False)),
    ("sgd-nesterov", "optimizer sgd(lr=0.25, momentum=0.5, nesterov=true)\n",
     3, sgd_momentum(3, 0.25, 0.5, 0, True)),
    ("sgd-wd", "optimizer sgd(lr=0.25, momentum=0.5, weight_decay=0.1)\n", 3,
     sgd_momentum(3, 0.25, 0.5, 0, False, 0.1)),
    # Adam with a constant gradient: m_hat = g, v_hat = g^2 at every step,
    # so each step moves lr * g / (|g| + eps) = lr * sign(g) (to 1e-8)
    ("adam", "optimizer adam(lr=0.1)\n", 4, w0 - 0.4 * np.sign(x)),
    # AdamW: the decay first, p * (1 - lr * wd), then the same move
    ("adamw", "optimizer adamw(lr=0.1, weight_decay=0.5)\n", 1,
     w0 * (1 - 0.05) - 0.1 * np.sign(x)),
    # clipping: |x| = sqrt(0.25 + 4 + 16) = 4.5, max 0.9: g * 0.9 / 4.5
    ("clip", "clip_grad_norm 0.9\noptimizer sgd(lr=1)\n", 2,
     w0 - 2 * x * 0.9 / (4.5 + 1e-6)),
    ("clip-off", "clip_grad_norm 100\noptimizer sgd(lr=1)\n", 2, w0 - 2 * x),
    ("lr-input", "optimizer sgd(lr=rate)\n", 2, w0 - 2 * 0.125 * x),
    # a momentum from an input that is 0 at run time: PyTorch's plain step
    # (its `if momentum != 0`), even with dampening
    ("momentum-input-0", "optimizer sgd(lr=0.25, momentum=rate, "
     "dampening=1)\n", 3, w0 - 0.75 * x),
]
for name, tail, steps, want in cases:
    text = lin + tail
    ins = {"x": x, "w": w0}
    if "rate" in tail:
        text = "input rate\n" + text
        ins["rate"] = np.array(0.0 if "momentum=rate" in tail else 0.125)
    g = write(name + ".graph", text)
    for be, tg, dt in CONFIGS:
        got, err = run_steps(g, ins, steps, be, tg, dt)
        what = "%s %s/%s/%s" % (name, be, tg, dt)
        if got is None:
            ok(False, what + ": " + err.strip())
            continue
        tol = 2e-6 if dt == "f32" else 1e-12
        if name.startswith("adam"):
            tol = max(tol, 1e-7)
        e = np.max(np.abs(got["w"] - want))
        ok(e <= tol, "%s: w = %s, wanted %s (error %g)" % (what, got["w"],
                                                           want, e))
        # the loss written is the last step's, before its update
        ok("loss" in got and set(got) == {"w", "loss"},
           what + ": outputs " + str(sorted(got)))

# ---- a step's outputs are the values before its update ---------------------
# (an output element-wise in a param, a transposed view of one, the param
# itself: all read the param before it is written; was an internal error)
ob = write("outputs.graph", "param b[2]\nparam W[2, 2]\n"
           "loss = sum(b * b) + sum(W @ b)\nbt = b * 2\nWt = W.T\n"
           "output bt, b, Wt, loss\nbackward loss\noptimizer sgd(lr=0.1)\n")
for be, tg, dt in CONFIGS:
    got, err = run_steps(ob, {"b": [1.0, 2.0], "W": [[1.0, 2.0], [3.0, 4.0]]},
                         1, be, tg, dt)
    what = "step outputs %s/%s/%s" % (be, tg, dt)
    if got is None:
        ok(False, what + ": " + err.strip())
        continue
    # grad_b = 2 b + W^T 1 = [6, 10]; b.npy is the param after the step
    ok(np.allclose(got["bt"], [2, 4]) and np.allclose(got["loss"], 21) and
       np.allclose(got["Wt"], [[1, 3], [2, 4]]) and
       np.allclose(got["b"], [0.4, 1.0], atol=1e-6), "%s: %s" % (what, got))

# ---- a param's gradient is another param ------------------------------------
# loss = sum(a * b): grad_a = b, grad_b = a, so each update reads the other
# param's memory (an internal error before the step copied such reads,
# tests/random/repro/found-step-gradient-is-other-param.graph); SGD, and
# momentum, whose buffer is the gradient on the first step, over 2 steps
a0, b0 = np.array([1.0, -2.0, 0.5]), np.array([3.0, 0.25, -1.0])


def cross_steps(steps, lr, m):
    a, b, ba, bb = a0.copy(), b0.copy(), None, None
    for _ in range(steps):
        ga, gb = b.copy(), a.copy()
        ba = ga if ba is None or not m else m * ba + ga
        bb = gb if bb is None or not m else m * bb + gb
        a, b = a - lr * ba, b - lr * bb
    return a, b


def check_cross(name, g, ins, configs, m):
    """2 steps of graph g on each configuration: a and b as cross_steps."""
    wa, wb = cross_steps(2, 0.25, m)
    for be, tg, dt in configs:
        got, err = run_steps(g, ins, 2, be, tg, dt)
        what = "%s %s/%s/%s" % (name, be, tg, dt)
        if got is None:
            ok(False, what + ": " + err.strip())
            continue
        tol = 2e-6 if dt == "f32" else 1e-12
        ok(np.max(np.abs(got["a"] - wa)) <= tol and
           np.max(np.abs(got["b"] - wb)) <= tol,
           "%s: a = %s b = %s, wanted %s %s" % (what, got["a"], got["b"], wa,
                                                wb))


for name, tail, m in (("cross-sgd", "optimizer sgd(lr=0.25)\n", 0),
                      ("cross-momentum",
                       "optimizer sgd(lr=0.25, momentum=0.5)\n", 0.5)):
    g = write(name + ".graph", "param a[3]\nparam b[3]\nloss = sum(a * b)\n"
              "output loss\nbackward loss\n" + tail)
    check_cross(name, g, {"a": a0, "b": b0}, CONFIGS, m)

# ... and when the schedule gives up (its walks over the readers of 40
# params through a 3,000-statement chain cost more than linear time), the
# copies are put right after what they copy (passes.c: copies_in_place)
fb = ["param a[3]", "param b[3]"] + ["param p%d[4]" % i for i in range(1, 41)]
fb.append("v0 = " + " * ".join("p%d" % i for i in range(1, 41)))
fb += ["v%d = sin(v%d) * 0.5" % (i, i - 1) for i in range(1, 3001)]
fb += ["loss = sum(v3000) + sum(a * b)", "output loss", "backward loss",
       "optimizer sgd(lr=0.25)"]
g = write("cross-fallback.graph", "\n".join(fb) + "\n")
ins = dict({"a": a0, "b": b0}, **{"p%d" % i: np.full(4, 0.5) for i in range(1, 41)})
check_cross("cross-fallback", g, ins,
            (("tcc", "host", "f64"), ("tcc", "mcu", "f32"), ("cc", "host", "f32")), 0)

# ---- a step against NAME_grad plus the optimizer in NumPy ------------------
# tests/train/adam-clip.graph: clipping that clips, Adam with weight decay, a
# param read by two matrix products (its update waits for both), a param the
# loss does not use (zero gradient; weight decay still moves it)


def grads_of(graph, params, fixed):
    d = tempfile.mkdtemp(dir=T)
    for k, v in list(params.items()) + list(fixed.items()):
        np.save(os.path.join(d, k + ".npy"), v)
    rc, _, err = agc("run", graph, "--inputs", d, "--out", d, "--dtype", "f64")
    assert rc == 0, err
    return {k: np.load(os.path.join(d, "grad_" + k + ".npy")) for k in params}


def adam_reference(graph, params, fixed, steps, lr, wd, clip):
    p = {k: v.copy() for k, v in params.items()}
    m = {k: np.zeros_like(v) for k, v in p.items()}
    v2 = {k: np.zeros_like(v) for k, v in p.items()}
    for t in range(1, steps + 1):
        g = grads_of(graph, p, fixed)
        norm = np.sqrt(sum(np.sum(x * x) for x in g.values()))
        coef = min(clip / (norm + 1e-6), 1.0)
        for k in p:
            d = g[k] * coef + wd * p[k]
            m[k] = 0.9 * m[k] + 0.1 * d
            v2[k] = 0.999 * v2[k] + 0.001 * d * d
            denom = np.sqrt(v2[k]) / np.sqrt(1 - 0.999 ** t) + 1e-8
            p[k] = p[k] - lr / (1 - 0.9 ** t) * m[k] / denom
    return p


ac = os.path.join(SRC, "tests/train/adam-clip.graph")
rng = np.random.default_rng(3)
fixed = {"x": rng.standard_normal((5, 3)), "t": rng.standard_normal((5, 2))}
params = {"W": rng.standard_normal((3, 4)), "V": rng.standard_normal((4, 2)),
          "u": rng.standard_normal(2)}
want = adam_reference(ac, params, fixed, 3, 0.05, 0.1, 0.5)
for be, tg, dt in CONFIGS:
    got, err = run_steps(ac, dict(params, **fixed), 3, be, tg, dt)
    what = "adam-clip %s/%s/%s" % (be, tg, dt)
    if got is None:
        ok(False, what + ": " + err.strip())
        continue
    for k in params:
        e = np.max(np.abs(got[k] - want[k])) / np.max(np.abs(want[k]))
        ok(e <= (2e-5 if dt == "f32" else 1e-10),
           "%s: %s off by %g relative" % (what, k, e))
        ok(np.max(np.abs(want[k] - params[k])) > 0.05, what + ": %s still" % k)

# -O0 (no passes: the updates at the end, every value stored) agrees
for be, tg in (("tcc", "host"), ("cc", "mcu")):
    got, err = run_steps(ac, dict(params, **fixed), 3, be, tg, "f64", ["-O0"])
    ok(got is not None and all(
        np.max(np.abs(got[k] - want[k])) <= 1e-10 * np.max(np.abs(want[k]))
        for k in params), "adam-clip -O0 %s/%s: %s" % (be, tg, err.strip()))

# ---- errors --------------------------------------------------------------------
head = "input x[4]\ninput s\nparam w[4]\nloss = sum(w * x)\noutput loss\n"
errors = [
    ("optimizer adam(lr=0.01)\n",
     "e.graph:6:11: error: 'optimizer' needs 'backward': write 'backward "
     "LOSS' before it"),
    ("backward loss\noptimizer adm(lr=0.1)\n",
     "e.graph:7:11: error: unknown optimizer 'adm'; did you mean 'adam'?"),
    ("backward loss\noptimizer adam(lr=-1)\n",
     "e.graph:7:16: error: 'lr' must not be negative (it is -1)"),
    ("backward loss\noptimizer adam(beta1=0.9)\n",
     "e.graph:7:11: error: adam() needs a learning rate: write "
     "adam(lr=0.01)"),
    ("backward loss\noptimizer sgd(lr=0.1, beta1=0.9)\n",
     "e.graph:7:23: error: sgd() has no argument 'beta1' (it takes lr, "
     "momentum, dampening, weight_decay, nesterov)"),
    ("backward loss\noptimizer sgd(lr=0.1, momentun=0.9)\n",
     "e.graph:7:23: error: sgd() has no argument 'momentun'; did you mean "
     "'momentum'?"),
    ("backward loss\noptimizer sgd(lr=0.1)\noptimizer sgd(lr=0.1)\n",
     "e.graph:8:11: error: a second 'optimizer': the graph has one already "
     "(at line 7)"),
    ("backward loss\noptimizer sgd(lr=x)\n",
     "e.graph:7:15: error: 'lr=x': a hyperparameter given by name must be a "
     "scalar float input (such as 'input lr'), not a tensor"),
    ("backward loss\noptimizer sgd(lr=w)\n",
     "e.graph:7:15: error: 'lr=w': a hyperparameter given by name must be a "
     "scalar float input (such as 'input lr'), not a param"),
    ("backward loss\noptimizer sgd(lr=nope)\n",
     "e.graph:7:18: error: unknown name 'nope'"),
    ("backward loss\nclip_grad_norm 1.0\n",
     "e.graph:7:1: error: 'clip_grad_norm' needs an 'optimizer' after it"),
    ("backward loss\nclip_grad_norm -1\noptimizer sgd(lr=1)\n",
     "e.graph:7:16: error: 'clip_grad_norm' must not be negative (it is -1)"),
    ("backward loss\noptimizer sgd(lr=0.1, nesterov=true)\n",
     "e.graph:7:23: error: nesterov needs a momentum above 0 and no "
     "dampening (as in torch.optim.SGD)"),
    ("backward loss\noptimizer sgd(lr=0.1, nesterov=2)\n",
     "e.graph:7:23: error: 'nesterov' must be true or false"),
    ("backward loss\noptimizer sgd(0.1)\n",
     "e.graph:7:15: error: optimizer arguments are named: write "
     "sgd(lr=0.01, ...)"),
    ("backward loss\noptimizer adam(lr=0.1, beta2=1.0)\n",
     "e.graph:7:24: error: 'beta2' must be below 1 (it is 1)"),
    ("backward loss\noptimizer adam(lr=0.1, lr=0.2)\n",
     "e.graph:7:24: error: 'lr' is given twice"),
    ("backward loss\noptimizer adam(lr=1e999)\n",
     "e.graph:7:19: error: number '1e999' is out of range for f32 (largest "
     "3.40282e+38)"),
]
for tail, want in errors:
    g = os.path.join(T, "e.graph")
    with open(g, "w") as f:
        f.write(head + tail)
    rc, _, err = agc(g, "-o", os.path.join(T, "e.c"))
    first = err.splitlines()[0] if err else ""
    first = first.replace(T + "/", "")
    ok(rc == 1 and first == want, "error for %r: rc %d, got '%s', wanted '%s'"
       % (tail, rc, first, want))
rc, _, err = agc("run", os.path.join(SRC, "examples/mlp.graph"), "--steps",
                 "2", "--inputs", os.path.join(SRC, "examples/data"),
                 "--out", os.path.join(T, "o"))
ok(rc == 1 and "--steps needs a graph with 'optimizer'" in err,
   "--steps without optimizer: rc %d %s" % (rc, err))
rc, _, err = agc("run", os.path.join(SRC, "examples/mlp.graph"), "--steps",
                 "2", "--repeat", "3")
ok(rc == 2 and "cannot be combined" in err, "--steps --repeat: %d %s" %
   (rc, err))
for bad in (["--steps", "0"], ["--target", "avr"]):
    rc, _, err = agc("run", os.path.join(SRC, "examples/mlp.graph"), *bad)
    ok(rc == 2 and err.startswith("agc: "), "%s: rc %d %s" % (bad, rc, err))

# ---- the generated file ----------------------------------------------------------
mlp = open(os.path.join(SRC, "examples/mlp.graph")).read()
mlp_adam = write("mlp_adam.graph", mlp + "optimizer adam(lr=0.01)\n")
FLAGS = ["-std=c99", "-Wall", "-Wextra", "-pedantic", "-Wdouble-promotion",
         "-Wcast-align", "-Wmissing-prototypes", "-Werror"]
for tg in ("host", "mcu"):
    c, h = os.path.join(T, tg + ".c"), os.path.join(T, tg + ".h")
    rc, _, err = agc(mlp_adam, "-o", c, "--header", h, "--target", tg)
    ok(rc == 0, "compile mlp_adam --target " + tg + ": " + err)
    hdr = open(h).read()
    for m in ("MLP_WORK_BYTES", "MLP_STATE_BYTES", "MLP_GRAD_WORK_BYTES"):
        ok(re.search(r"#define %s \d+" % m, hdr), tg + ": header lacks " + m)
    for proto in (r"int mlp\(const float \*in_x, const float \*in_t, float "
                  r"\*p_W1, float \*p_b1, float \*p_W2, float \*p_b2, float "
                  r"\*out_loss, void \*state, void \*work\);",
                  r"int mlp_grad\(const float \*in_x, .*, float "
                  r"\*out_grad_b2, void \*work\);",
                  r"int mlp_update\(float \*p_W1, float \*p_b1, float \*p_W2, "
                  r"float \*p_b2, const float \*grad_W1, const float "
                  r"\*grad_b1, const float \*grad_W2, const float \*grad_b2, "
                  r"void \*state\);"):
        ok(re.search(proto, hdr), tg + ": header lacks " + proto)
    cc = shutil.which(os.environ.get("CC", "cc")) or "cc"
    for comp in [cc] + [x for x in ("clang", "tcc") if shutil.which(x)]:
        flags = FLAGS if tg == "mcu" else FLAGS[:4]
        if comp == "tcc":
            flags = ["-std=c99", "-Wall", "-Werror"]
        r = subprocess.run([comp] + flags + ["-c", c, "-o",
                           os.path.join(T, "o.o")], capture_output=True,
                           text=True)
        ok(r.returncode == 0, "%s %s: %s" % (comp, tg, r.stderr[:400]))
    if tg == "mcu":
        src = open(c).read()
        ok("double" not in re.sub(r"/\*.*?\*/", "", src, flags=re.S),
           "mcu f32 C mentions double")
        ok("pack" not in src, "mcu C has a packing buffer")
        arm = shutil.which("arm-none-eabi-gcc")
        if arm:
            o = os.path.join(T, "arm.o")
            r = subprocess.run([arm, "-mcpu=cortex-m4", "-mthumb",
                                "-mfloat-abi=hard", "-mfpu=fpv4-sp-d16", "-Os"]
                               + FLAGS + ["-c", c, "-o", o],
                               capture_output=True, text=True)
            ok(r.returncode == 0, "arm-none-eabi-gcc: " + r.stderr[:400])
            nm = subprocess.run(["arm-none-eabi-nm", o], capture_output=True,
                                text=True).stdout
            ok("__aeabi_d" not in nm and "__aeabi_f2d" not in nm,
               "mcu object calls double routines:\n" + nm)
            und = sorted(l.split()[-1] for l in nm.splitlines()
                         if l.split()[0] == "U")
            ok(set(und) <= {"memset", "memcpy", "tanhf", "expm1f", "sqrtf",
                            "expf", "logf"}, "mcu object calls " + str(und))
        else:
            print("note: arm-none-eabi-gcc not installed, mcu cross build "
                  "not checked")

# the step agrees with NAME_grad followed by NAME_update, and a step's
# loss with NAME_grad's (the same file, built as a shared object)
for tg in ("host", "mcu"):
    c = os.path.join(T, tg + ".c")
    so = os.path.join(T, tg + ".so")
    subprocess.run(["cc", "-O1", "-shared", "-fPIC", c, "-o", so, "-lm"],
                   check=True)
    lib = ctypes.CDLL(so)
    D = os.path.join(SRC, "examples/data")
    xs = np.load(os.path.join(D, "x.npy")).astype(np.float32)
    ts = np.load(os.path.join(D, "t.npy")).astype(np.float32)
    names = ("W1", "b1", "W2", "b2")
    P0 = {n: np.load(os.path.join(D, n + ".npy")).astype(np.float32)
          for n in names}
    hdr = open(os.path.join(T, tg + ".h")).read()
    size = {m: int(re.search(r"#define MLP_%s (\d+)" % m, hdr).group(1))
            for m in ("WORK_BYTES", "STATE_BYTES", "GRAD_WORK_BYTES")}

    def ptr(a):
        return a.ctypes.data_as(ctypes.c_void_p)

    A = {n: P0[n].copy() for n in names}
    B = {n: P0[n].copy() for n in names}
    sa = np.zeros(size["STATE_BYTES"] // 8 + 1)
    sb = np.zeros(size["STATE_BYTES"] // 8 + 1)
    work = np.zeros(max(size["WORK_BYTES"], size["GRAD_WORK_BYTES"]) // 8 + 1)
    la, lb = np.zeros(1, np.float32), np.zeros(1, np.float32)
    G = {n: np.zeros_like(P0[n]) for n in names}
    for step in range(3):
        lib.mlp(ptr(xs), ptr(ts), *[ptr(A[n]) for n in names], ptr(la),
                ptr(sa), ptr(work))
        lib.mlp_grad(ptr(xs), ptr(ts), *[ptr(B[n]) for n in names], ptr(lb),
                     *[ptr(G[n]) for n in names], ptr(work))
        lib.mlp_update(*[ptr(B[n]) for n in names], *[ptr(G[n]) for n in names],
                       ptr(sb))
        ok(abs(la[0] - lb[0]) <= 1e-6 * abs(lb[0]),
           "%s step %d: loss %g, grad+update %g" % (tg, step, la[0], lb[0]))
    for n in names:
        e = np.max(np.abs(A[n] - B[n]))
        ok(e <= 1e-6, "%s: step and grad+update differ on %s by %g" % (tg, n, e))
        ok(np.max(np.abs(A[n] - P0[n])) > 1e-3, "%s: %s did not move" % (tg, n))
    ok(np.array_equal(sa, sb), tg + ": step and update leave different state")

# ---- no transposed copies: x @ W.T's weight gradient is W's layout ----------
wt = write("wt.graph", "input x[8, 4]\ninput t[8, 3]\nparam W[3, 4]\n"
           "param b[3]\ny = x @ W.T + b\nloss = mean((y - t) ** 2)\n"
           "output loss\nbackward loss\noptimizer sgd(lr=0.1)\n")
rc, src, err = agc(wt, "--emit", "c", "--target", "mcu")
ok(rc == 0 and "store grad_W" not in src and "transpose" not in src,
   "x @ W.T: the gradient of W is copied or transposed:\n" +
   "\n".join(l for l in src.splitlines() if "grad_W" in l or "transpose" in l))

# ---- accuracy of the mcu target's float sums (Kahan) -------------------------------
# 10^6 values in [0, 1): a plain float sum is off by ~1e-4 relative; the
# compensated sum must stay within a few float roundings of the exact one
n = 1000000
big = write("bigsum.graph", "input x[%d]\ns = sum(x)\noutput s\n" % n)
d = tempfile.mkdtemp(dir=T)
xs = np.random.default_rng(7).random(n).astype(np.float32)
np.save(os.path.join(d, "x.npy"), xs)
exact = float(np.sum(xs.astype(np.float64)))
naive = float(np.cumsum(xs, dtype=np.float32)[-1])
for be in ("tcc", "cc"):
    rc, _, err = agc("run", big, "--inputs", d, "--out", d, "--backend", be,
                     "--target", "mcu")
    got = float(np.load(os.path.join(d, "s.npy"))) if rc == 0 else float("nan")
    rel = abs(got - exact) / exact
    print("sum of 10^6 floats, mcu target (%s): relative error %.2e "
          "(a plain float sum: %.2e)" % (be, rel, abs(naive - exact) / exact))
    ok(rel <= 2.4e-7, "mcu Kahan sum (%s): relative error %g" % (be, rel))

# ---- stack of the mcu step (gcc -fstack-usage) ---------------------------------------
arm = shutil.which("arm-none-eabi-gcc")
if arm:
    for graph in (mlp_adam,):
        c = os.path.join(T, "su.c")
        agc(graph, "-o", c, "--target", "mcu")
        subprocess.run([arm, "-mcpu=cortex-m4", "-mthumb", "-mfloat-abi=hard",
                        "-mfpu=fpv4-sp-d16", "-Os", "-fstack-usage", "-c", c,
                        "-o", os.path.join(T, "su.o")], cwd=T, check=True)
        su = open(os.path.join(T, "su.su")).read()
        frames = {l.split("\t")[0].split(":")[-1]: int(l.split("\t")[1])
                  for l in su.splitlines()}
        print("stack (arm-none-eabi-gcc -Os -fstack-usage):", frames)
        ok(all(v < 1024 for v in frames.values()), "mcu stack: %s" % frames)

# ---- --emit mem ----------------------------------------------------------------------
rc, out, err = agc(mlp_adam, "--emit", "mem", "--target", "mcu")
ok(rc == 0, "--emit mem: " + err)
vals = {l.split()[0]: int(l.split()[1]) for l in out.splitlines()
        if l and not l.startswith("#")}
m = re.search(r"lower bound (\d+)", out)
ok(m and vals["workspace"] <= 1.05 * int(m.group(1)),
   "mcu workspace not within 1.05x of its bound:\n" + out)
ok(vals.get("params") == 388 and vals.get("state") == 792 and
   vals.get("outputs") == 4, "--emit mem figures:\n" + out)
ok(vals["total"] == vals["params"] + vals["state"] + vals["workspace"] +
   vals["stack"], "--emit mem total:\n" + out)
rc, out, err = agc(mlp_adam, "--emit", "mem", "--target", "mcu", "--no-grad")
ok(rc == 0 and "state" in out, "--emit mem --no-grad: " + err)

shutil.rmtree(T)
print("train: %d passed, %d failed" % (npass, nfail))
sys.exit(1 if nfail else 0)
