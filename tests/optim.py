#!/usr/bin/env python3
"""Training steps against torch.optim: the fixtures in tests/pytorch/optim/.

    python3 tests/optim.py AGC [--fixtures DIR] [--backend tcc,cc] [--target host,mcu]
                               [--dtype f32,f64] [--steps 1,5] [-j N] [-v]
                               [--skip-unsupported] [CASE ...]

For every case x backend x target x dtype x steps it runs

    AGC run optim/CASE/model.graph --inputs IN --out OUT --steps K
        --backend B --target T --dtype D

(IN is the case's in/ for f64, a copy converted to <f4 for f32) and compares
every file of optim/CASE/expect_D_stepsK/ (every param after K steps, every
output of step K) with OUT/: same name, shape and dtype, and

    err = max|agc - torch| / max(max|torch|, 1e-3)   <=   TOL[D, K]

It prints one line per configuration with the worst err (and where), and
exits 1 on any mismatch, missing or malformed file, or agc failure (nonzero
exit, signal, timeout).

Unsupported combinations are recognised by agc's exact messages (UNSUPPORTED
below): an option `agc run` does not know (`--steps`, `--target`), a target
value it refuses, or a graph line it cannot parse (`optimizer`,
`clip_grad_norm`).  Such runs are listed as UNSUPPORTED with the message;
they make the exit status 1 too, unless --skip-unsupported is given: then it
is 77 (a skip for meson) when nothing else failed.  Any other error is a
failure.

`optim.py --self-test` checks the runner itself without agc: a fake agc (this
script with --fake-agc) copies the expected files, or spoils one (an element
off by 0.5x, 2x or -3x the tolerance, a missing file, NaN, a wrong dtype or
shape, another error, a crash, a missing option), and every scenario must give
exactly the expected verdicts and exit status.

Needs only the Python standard library (the .npy files are read here).
"""

import argparse
import ast
import contextlib
import io
import os
import re
import shutil
import signal
import struct
import subprocess
import sys
import tempfile
from array import array
from concurrent.futures import ThreadPoolExecutor

HERE = os.path.dirname(os.path.abspath(__file__))

# Accepted err (see above) per (dtype, steps), a few times the worst that agc
# (every backend and target) showed: f64 3.5e-16 after 1 step and
# 3.3e-15 after 5; f32 2.3e-7 after 1 and 1.2e-6 after 5 (conv_adam's loss, a
# small cross entropy, on cc mcu at 366531a; its params are within 1.2e-7).  For comparison in
# f32: torch's own f32 differs from its f64 by up to 3e-7 after 5 steps, and a
# NumPy transcription of the update rules done wholly in f32 (1 - beta2 and the
# bias corrections rounded to f32, as an f32-only target may compute them)
# differs from torch's f32 by up to 2.3e-7 after 1 step and 1.2e-6 after 5.
# A wrong rule moves a param by lr x gradient, 1e-2 or more.
TOL = {
    ("f64", 1): 1e-14,
    ("f64", 5): 3e-14,
    ("f32", 1): 1e-6,
    ("f32", 5): 4e-6,
}

# (exit status, regex on stderr, what is missing)
UNSUPPORTED = [
    (2, r"^agc: unknown option '--steps'", "agc run --steps"),
    (2, r"^agc: unknown option '--target'", "agc run --target"),
    (2, r"^agc: .*--target.*'(host|mcu)'", "this --target value for agc run"),
    (1, r"^[^\n]*model\.graph:\d+:\d+: error: [^\n]*'(optimizer|clip_grad_norm)'",
     "the optimizer / clip_grad_norm statements"),
]


# ------------------------------------------------------------------ .npy ---

NPY_CODES = {"<f4": ("f", 4), "<f8": ("d", 8), "<i4": ("i", 4)}


class NpyError(Exception):
    pass


def npy_read(path):
    """(descr, shape, list of values) of a C-order little-endian .npy file."""
    with open(path, "rb") as f:
        raw = f.read()
    if raw[:6] != b"\x93NUMPY":
        raise NpyError("%s: not a .npy file" % path)
    major = raw[6]
    if major == 1:
        hlen, off = struct.unpack("<H", raw[8:10])[0], 10
    elif major in (2, 3):
        hlen, off = struct.unpack("<I", raw[8:12])[0], 12
    else:
        raise NpyError("%s: .npy version %d" % (path, major))
    try:
        hdr = ast.literal_eval(raw[off:off + hlen].decode("latin-1"))
    except (ValueError, SyntaxError) as e:
        raise NpyError("%s: bad header (%s)" % (path, e))
    descr, shape = hdr.get("descr"), tuple(hdr.get("shape", ()))
    if descr not in NPY_CODES or hdr.get("fortran_order"):
        raise NpyError("%s: dtype %r fortran_order %r" % (path, descr, hdr.get("fortran_order")))
    code, size = NPY_CODES[descr]
    n = 1
    for d in shape:
        n *= d
    data = raw[off + hlen:]
    if len(data) != n * size:
        raise NpyError("%s: %d data bytes for shape %s %s" % (path, len(data), shape, descr))
    a = array(code)
    a.frombytes(data)
    if sys.byteorder != "little":
        a.byteswap()
    return descr, shape, a


def npy_write(path, descr, shape, values):
    code, _ = NPY_CODES[descr]
    a = array(code, values)
    if sys.byteorder != "little":
        a.byteswap()
    sh = "(%d,)" % shape[0] if len(shape) == 1 else "(%s)" % ", ".join(str(d) for d in shape)
    hdr = "{'descr': '%s', 'fortran_order': False, 'shape': %s, }" % (descr, sh)
    pad = 64 - (10 + len(hdr) + 1) % 64
    hdr = hdr + " " * (pad % 64) + "\n"
    with open(path, "wb") as f:
        f.write(b"\x93NUMPY\x01\x00" + struct.pack("<H", len(hdr)) + hdr.encode("latin-1"))
        f.write(a.tobytes())


def f32_inputs(src, dst):
    """in/ with every <f8 converted to <f4 (the values are exact in f32)."""
    os.makedirs(dst, exist_ok=True)
    for fn in sorted(os.listdir(src)):
        if not fn.endswith(".npy"):
            continue
        descr, shape, a = npy_read(os.path.join(src, fn))
        if descr == "<f8":
            descr = "<f4"
        npy_write(os.path.join(dst, fn), descr, shape, a)


# ------------------------------------------------------------- compare ---

def compare(got_path, exp_path):
    """(err, problem or None)."""
    edescr, eshape, e = npy_read(exp_path)
    if not os.path.exists(got_path):
        return None, "agc wrote no %s" % os.path.basename(got_path)
    try:
        gdescr, gshape, g = npy_read(got_path)
    except NpyError as ex:
        return None, str(ex)
    if gdescr != edescr or gshape != eshape:
        return None, "%s: %s %s, expected %s %s" % (os.path.basename(got_path), gdescr,
                                                      list(gshape), edescr, list(eshape))
    scale = max(max((abs(v) for v in e), default=0.0), 1e-3)
    err = 0.0
    for a, b in zip(g, e):
        d = abs(a - b)
        if not d <= err:          # also catches NaN
            if d != d or d == float("inf"):
                return float("inf"), "%s: non-finite value %r (expected %r)" % (
                    os.path.basename(got_path), a, b)
            err = d
    return err / scale, None


def run_one(args, case, be, tgt, dt, k, inputs, tmp):
    """A dict: status ok|fail|unsupported, err, where, msg."""
    cdir = os.path.join(args.fixtures, case)
    out = os.path.join(tmp, "%s-%s-%s-%s-%d" % (case, be, tgt, dt, k))
    os.makedirs(out)
    cmd = list(args.agc) + ["run", os.path.join(cdir, "model.graph"), "--inputs", inputs,
           "--out", out, "--steps", str(k), "--backend", be, "--target", tgt, "--dtype", dt]
    r = {"case": case, "status": "ok", "err": 0.0, "where": "", "msg": "",
         "cmd": " ".join(cmd)}
    try:
        p = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                           timeout=args.timeout)
    except subprocess.TimeoutExpired:
        r.update(status="fail", msg="timed out after %d s" % args.timeout)
        return r
    stderr = p.stderr.decode("utf-8", "replace")
    if p.returncode != 0:
        for code, pat, what in UNSUPPORTED:
            if p.returncode == code and re.search(pat, stderr, re.M):
                r.update(status="unsupported", msg=what,
                         where=stderr.strip().split("\n")[0])
                return r
        r.update(status="fail", msg="agc exit status %d: %s" % (p.returncode, stderr.strip()))
        return r
    edir = os.path.join(cdir, "expect_%s_steps%d" % (dt, k))
    problems = []
    for fn in sorted(os.listdir(edir)):
        err, prob = compare(os.path.join(out, fn), os.path.join(edir, fn))
        if prob:
            problems.append(prob)
            continue
        if not r["where"] or err > r["err"]:
            r["err"], r["where"] = err, "%s/%s" % (case, fn[:-4])
        if err > TOL[(dt, k)]:
            problems.append("%s: err %.3g > tol %.3g" % (fn[:-4], err, TOL[(dt, k)]))
    if problems:
        r.update(status="fail", msg="; ".join(problems))
    shutil.rmtree(out, ignore_errors=True)
    return r


def csv(s, allowed):
    items = [x for x in s.split(",") if x]
    for x in items:
        if x not in allowed:
            raise argparse.ArgumentTypeError("%r: expected one of %s" % (x, ",".join(allowed)))
    return items


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("agc", help="the agc binary (or --self-test)")
    ap.add_argument("cases", nargs="*")
    ap.add_argument("--fixtures", default=os.path.join(HERE, "pytorch", "optim"))
    ap.add_argument("--backend", default="tcc,cc", type=lambda s: csv(s, ["tcc", "cc"]))
    ap.add_argument("--target", default="host,mcu", type=lambda s: csv(s, ["host", "mcu"]))
    ap.add_argument("--dtype", default="f32,f64", type=lambda s: csv(s, ["f32", "f64"]))
    ap.add_argument("--steps", default="1,5", type=lambda s: [int(x) for x in csv(s, ["1", "5"])])
    ap.add_argument("-j", type=int, default=1, help="parallel agc runs (default 1)")
    ap.add_argument("--timeout", type=int, default=300)
    ap.add_argument("--skip-unsupported", action="store_true")
    ap.add_argument("-v", action="store_true", help="one line per run")
    if sys.argv[1:2] == ["--fake-agc"]:
        return fake_agc(sys.argv[2:])
    if sys.argv[1:2] == ["--self-test"]:
        return self_test(ap)
    args = ap.parse_intermixed_args()
    args.agc = [args.agc]

    allc = all_cases(args.fixtures)
    for c in args.cases:
        if c not in allc:
            ap.error("no case %s in %s" % (c, args.fixtures))
    args.cases = args.cases or allc
    if not args.cases:
        ap.error("no cases in %s" % args.fixtures)
    return suite(args)[0]


def all_cases(fixtures):
    return sorted(d for d in os.listdir(fixtures)
                  if os.path.isfile(os.path.join(fixtures, d, "model.graph")))


def suite(args):
    """(exit status, [(config, result)])."""
    cases = args.cases
    tmp = tempfile.mkdtemp(prefix="agc-optim-")
    try:
        inputs = {}
        for c in cases:
            inputs[c, "f64"] = os.path.join(args.fixtures, c, "in")
            inputs[c, "f32"] = os.path.join(tmp, "in32", c)
            f32_inputs(inputs[c, "f64"], inputs[c, "f32"])
        configs = [(be, tgt, dt, k) for be in args.backend for tgt in args.target
                   for dt in args.dtype for k in args.steps]
        jobs = [(cfg, c) for cfg in configs for c in cases]
        with ThreadPoolExecutor(max_workers=max(1, args.j)) as ex:
            results = list(ex.map(
                lambda j: (j[0], run_one(args, j[1], *j[0], inputs[j[1], j[0][2]], tmp)), jobs))
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise

    nfail = nunsup = nok = 0
    worst_dt = {}
    for cfg in configs:
        rs = [r for c2, r in results if c2 == cfg]
        be, tgt, dt, k = cfg
        ok = [r for r in rs if r["status"] == "ok"]
        fail = [r for r in rs if r["status"] == "fail"]
        uns = [r for r in rs if r["status"] == "unsupported"]
        nok, nfail, nunsup = nok + len(ok), nfail + len(fail), nunsup + len(uns)
        cmp_rs = [r for r in rs if r["where"] and r["status"] != "unsupported"]
        w = max(cmp_rs, key=lambda r: r["err"], default=None)
        if w:
            key = (dt, k)
            if key not in worst_dt or w["err"] > worst_dt[key][0]:
                worst_dt[key] = (w["err"], "%s %s %s" % (be, tgt, w["where"]))
        tag = "%-3s %-4s %s steps=%d" % (be, tgt, dt, k)
        line = "%s: %d ok, %d failed, %d unsupported" % (tag, len(ok), len(fail), len(uns))
        if w:
            line += "; worst err %.3g (%s, tol %.0e)" % (w["err"], w["where"], TOL[dt, k])
        print(line)
        for r in rs:
            if args.v and r["status"] == "ok":
                print("  ok   %-20s err %.3g" % (r["case"], r["err"]))
            if r["status"] == "fail":
                print("  FAIL %-20s %s\n       %s" % (r["case"], r["msg"], r["cmd"]))
        whats = {}
        for r in uns:
            whats.setdefault((r["msg"], r["where"]), []).append(r["case"])
        for (what, msg), cs in sorted(whats.items()):
            print("  UNSUPPORTED (%s) in %d case(s): %s" % (what, len(cs), msg))
    for (dt, k), (e, where) in sorted(worst_dt.items()):
        print("worst %s steps=%d: %.3g (%s)" % (dt, k, e, where))
    print("%d runs: %d ok, %d failed, %d unsupported" % (len(results), nok, nfail, nunsup))
    if nfail:
        # the failed runs' outputs (and the f32 inputs) stay for a look
        print("failed runs' files kept in %s" % tmp)
        return 1, results
    shutil.rmtree(tmp, ignore_errors=True)
    if nunsup and args.skip_unsupported:
        print("SKIP: agc does not support %s" % (
            "training steps" if nok == 0 else "every combination"))
        return 77, results
    return (1 if nunsup else 0), results


# ----------------------------------------------------------- self-test ---
#
# `optim.py --self-test` checks this runner without agc: a fake agc (this
# script with --fake-agc) copies the expected files, optionally spoiled as
# AGC_OPTIM_FAKE says (MODE[:CASE:NAME[:SCALE]]), and the runner must flag
# exactly the spoiled runs.

def fake_agc(argv):
    graph, opt = argv[1], dict(zip(argv[2::2], argv[3::2]))
    case = os.path.basename(os.path.dirname(graph))
    mode = os.environ.get("AGC_OPTIM_FAKE", "exact").split(":")
    dt, k, tgt = opt["--dtype"], int(opt["--steps"]), opt["--target"]
    for fn in os.listdir(opt["--inputs"]):       # the runner converts inputs for f32
        descr = npy_read(os.path.join(opt["--inputs"], fn))[0]
        assert descr in ("<i4", "<f4" if dt == "f32" else "<f8"), (fn, descr)
    if mode[0] == "nosteps":
        sys.stderr.write("agc: unknown option '--steps' (agc --help shows the usage)\n")
        return 2
    if mode[0] == "nomcu" and tgt == "mcu":
        sys.stderr.write("agc: unknown option '--target' (agc --help shows the usage)\n")
        return 2
    spoil = len(mode) > 1 and case == mode[1] and dt == "f32" and k == 5
    if mode[0] == "error" and spoil:
        sys.stderr.write("agc: some other error\n")
        return 1
    if mode[0] == "segv" and spoil:
        os.kill(os.getpid(), signal.SIGSEGV)
    edir = os.path.join(os.path.dirname(graph), "expect_%s_steps%d" % (dt, k))
    for fn in os.listdir(edir):
        descr, shape, a = npy_read(os.path.join(edir, fn))
        a = list(a)
        if spoil and fn == mode[2] + ".npy":
            if mode[0] == "missing":
                continue
            if mode[0] == "scale":       # the first element off by SCALE x the tolerance
                big = max(abs(v) for v in a)
                a[0] += float(mode[3]) * TOL["f32", 5] * max(big, 1e-3)
            if mode[0] == "nan":
                a[-1] = float("nan")
            if mode[0] == "dtype":
                descr = "<f8"
            if mode[0] == "shape":
                shape = shape + (1,)
        npy_write(os.path.join(opt["--out"], fn), descr, shape, a)
    return 0


def self_test(ap):
    args = ap.parse_args(["agc"])
    args.agc = [sys.executable, os.path.abspath(__file__), "--fake-agc"]
    args.backend, args.j = ["tcc"], 2
    allc = all_cases(args.fixtures)
    args.cases = [c for c in ("mlp_adam", "unused_adamw") if c in allc]
    assert len(args.cases) == 2, "the self-test uses mlp_adam and unused_adamw"
    nruns = 2 * 2 * 2 * 2
    # mode, exit status, runs failed, runs unsupported, text the report must have
    scenarios = [
        ("exact", 0, 0, 0, "worst f32 steps=5: 0 "),
        ("scale:mlp_adam:W2:0.5", 0, 0, 0, "(mlp_adam/W2, tol"),
        ("scale:mlp_adam:W2:2", 1, 2, 0, "W2: err "),
        ("scale:unused_adamw:u:-3", 1, 2, 0, "u: err "),
        ("missing:unused_adamw:loss", 1, 2, 0, "agc wrote no loss.npy"),
        ("nan:mlp_adam:loss", 1, 2, 0, "loss.npy: non-finite value nan"),
        ("dtype:unused_adamw:w", 1, 2, 0, "w.npy: <f8 [3], expected <f4 [3]"),
        ("shape:mlp_adam:z", 1, 2, 0, "z.npy: <f4 [6, 3, 1], expected <f4 [6, 3]"),
        ("error:mlp_adam", 1, 2, 0, "agc exit status 1: agc: some other error"),
        ("segv:mlp_adam", 1, 2, 0, "agc exit status -11"),
        ("nomcu", 1, 0, nruns // 2, "UNSUPPORTED (agc run --target) in 2 case(s)"),
        ("nosteps", 1, 0, nruns, "UNSUPPORTED (agc run --steps) in 2 case(s)"),
    ]
    bad = 0
    for mode, code, nfail, nuns, text in scenarios:
        os.environ["AGC_OPTIM_FAKE"] = mode
        buf = io.StringIO()
        with contextlib.redirect_stdout(buf):
            got, results = suite(args)
        out = buf.getvalue()
        for line in out.split("\n"):
            if line.startswith("failed runs' files kept in "):
                shutil.rmtree(line[len("failed runs' files kept in "):], ignore_errors=True)
        st = [r["status"] for _, r in results]
        ok = (got == code and st.count("fail") == nfail and st.count("unsupported") == nuns
              and len(st) == nruns and text in out)
        bad += not ok
        print("%-4s %-26s exit %d, %d failed, %d unsupported" % (
            "ok" if ok else "BAD", mode, got, st.count("fail"), st.count("unsupported")))
        if not ok:
            print("  expected exit %d, %d failed, %d unsupported and %r in:\n%s" % (
                code, nfail, nuns, text, out))
    os.environ.pop("AGC_OPTIM_FAKE", None)
    args.skip_unsupported = True
    for mode in ("nomcu", "nosteps", "error:mlp_adam"):
        os.environ["AGC_OPTIM_FAKE"] = mode
        with contextlib.redirect_stdout(io.StringIO()):
            got, _ = suite(args)
        want = 1 if mode.startswith("error") else 77
        print("%-4s %-26s exit %d" % ("ok" if got == want else "BAD",
                                       mode + " --skip-unsupported", got))
        bad += got != want
    os.environ.pop("AGC_OPTIM_FAKE")
    print("self-test: %s" % ("all scenarios as expected" if not bad else "%d scenario(s) wrong" % bad))
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
