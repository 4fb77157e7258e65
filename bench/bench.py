"""bench.py - the driver behind bench/run.sh (run that, not this).

Writes the benchmark graphs and random .npy inputs into a work directory,
checks agc against the hand-written C baseline (and PyTorch), times every
(case, implementation) pair, measures JIT latency and workspace sizes, and
prints the tables as Markdown on standard output. Progress goes to stderr.

Options (run.sh passes the first four):
  --repo DIR  --work DIR  --bin DIR  --python EXE
  --min-time S      target seconds of timed calls per case (default 0.5)
  --jit-timeout S   limit per JIT-latency measurement (default 60)
  --jit-sizes LIST  comma-separated chain lengths (default 1000,10000,100000)
  --jit-cc-sizes L  sizes also measured with --backend cc (default 1000,10000;
                    "" for none)
  --only LIST       comma-separated case names (default: all)
  --cc CC           compiler for the baseline (default $CC_BENCH or gcc)
"""
import datetime
import math
import os
import platform
import re
import signal
import subprocess
import sys
import time

import numpy as np

# --------------------------------------------------------------------------
# options


# Elementwise limit for the small MLP's cross-check (see the report text).
SMALL_ELEM_LIMIT = 3e-4


def parse_args(argv):
    o = {"repo": None, "work": None, "bin": None, "python": sys.executable,
         "min-time": 0.5, "jit-timeout": 60.0,
         "jit-sizes": "1000,10000,100000", "jit-cc-sizes": "1000,10000",
         "only": "", "cc": os.environ.get("CC_BENCH", "gcc")}
    i = 0
    while i < len(argv):
        k = argv[i].lstrip("-")
        if k not in o or i + 1 >= len(argv):
            raise SystemExit(f"bench.py: bad option {argv[i]}\n{__doc__}")
        o[k] = argv[i + 1]
        i += 2
    for k in ("repo", "work", "bin"):
        if not o[k]:
            raise SystemExit(f"bench.py: --{k} is required")
    o["min-time"] = float(o["min-time"])
    o["jit-timeout"] = float(o["jit-timeout"])
    return o


def log(*a):
    print(*a, file=sys.stderr, flush=True)


# --------------------------------------------------------------------------
# cases

MLP_SHAPES = [("mlp 32x4-16-1", "mlp_s", 32, 4, 16, 1),
              ("mlp 64x256-256-10", "mlp_m", 64, 256, 256, 10),
              ("mlp 256x1024-1024-10", "mlp_l", 256, 1024, 1024, 10)]

CNN = dict(N=32, C=1, HW=28, O=8, K=3, CLS=10)
EW = dict(B=256, D=1024)


def mlp_graph(name, B, IN, H, OUT):
    return f"""graph {name}
input x[{B}, {IN}]
input t[{B}, {OUT}]
param W1[{IN}, {H}]
param b1[{H}]
param W2[{H}, {OUT}]
param b2[{OUT}]
h = tanh(x @ W1 + b1)
y = h @ W2 + b2
loss = mean((y - t) ** 2)
output loss
backward loss
"""


def cnn_graph():
    c = CNN
    hp = c["HW"] // 2
    f = c["O"] * hp * hp
    return f"""graph cnn
# conv 3x3 (padding 1) -> relu -> 2x2 max pool -> flatten -> linear -> cross entropy
input x[{c['N']}, {c['C']}, {c['HW']}, {c['HW']}]
input labels: i32[{c['N']}]
param k[{c['O']}, {c['C']}, {c['K']}, {c['K']}]
param kb[{c['O']}]
param W[{f}, {c['CLS']}]
param b[{c['CLS']}]
h = relu(conv2d(x, k, padding=1) + reshape(kb, [1, {c['O']}, 1, 1]))
p = max_pool2d(h, 2)
f = reshape(p, [{c['N']}, {f}])
z = f @ W + b
loss = cross_entropy(z, labels)
output loss
backward loss
"""


def ew_graph():
    return f"""graph ew
# element-wise heavy: 256x1024 elements, 3 transcendental functions each
input x[{EW['B']}, {EW['D']}]
param w1[{EW['D']}]
param w2[{EW['D']}]
param b[{EW['D']}]
loss = sum(sigmoid(x * w1 + b) * tanh(x) + exp(-x * x) * w2)
output loss
backward loss
"""


def save(d, name, a):
    np.save(os.path.join(d, name + ".npy"), a)


def make_cases(work):
    """Returns a list of case dicts: name, label, kind, dir, graph, ..."""
    rng = np.random.default_rng(20240601)

    def randn(*shape, scale=1.0):
        return (rng.standard_normal(shape) * scale).astype("<f4")

    cases = []
    for label, name, B, IN, H, OUT in MLP_SHAPES:
        d = os.path.join(work, "cases", name)
        os.makedirs(d, exist_ok=True)
        save(d, "x", randn(B, IN))
        save(d, "t", randn(B, OUT))
        save(d, "W1", randn(IN, H, scale=1 / math.sqrt(IN)))
        save(d, "b1", randn(H, scale=0.1))
        save(d, "W2", randn(H, OUT, scale=1 / math.sqrt(H)))
        save(d, "b2", randn(OUT, scale=0.1))
        cases.append(dict(name=name, label=label, kind="mlp", dir=d,
                          graph=mlp_graph(name, B, IN, H, OUT),
                          shape=(B, IN, H, OUT),
                          flops=6 * B * (IN * H + H * OUT)))
    c = CNN
    d = os.path.join(work, "cases", "cnn")
    os.makedirs(d, exist_ok=True)
    hp = c["HW"] // 2
    save(d, "x", randn(c["N"], c["C"], c["HW"], c["HW"]))
    save(d, "labels", rng.integers(0, c["CLS"], c["N"]).astype("<i4"))
    save(d, "k", randn(c["O"], c["C"], c["K"], c["K"], scale=1 / 3))
    save(d, "kb", randn(c["O"], scale=0.1))
    save(d, "W", randn(c["O"] * hp * hp, c["CLS"],
                       scale=1 / math.sqrt(c["O"] * hp * hp)))
    save(d, "b", randn(c["CLS"], scale=0.1))
    cases.append(dict(name="cnn", kind="cnn", dir=d, graph=cnn_graph(),
                      label=f"cnn {c['N']}x{c['C']}x{c['HW']}x{c['HW']} "
                            f"conv{c['O']}@{c['K']}x{c['K']}+pool+fc{c['CLS']}"))
    d = os.path.join(work, "cases", "ew")
    os.makedirs(d, exist_ok=True)
    save(d, "x", randn(EW["B"], EW["D"]))
    save(d, "w1", randn(EW["D"]))
    save(d, "w2", randn(EW["D"]))
    save(d, "b", randn(EW["D"], scale=0.1))
    cases.append(dict(name="ew", kind="ew", dir=d, graph=ew_graph(),
                      label=f"elementwise {EW['B']}x{EW['D']}"))
    for cs in cases:
        cs["graph_path"] = os.path.join(cs["dir"], "model.graph")
        with open(cs["graph_path"], "w") as f:
            f.write(cs["graph"])
    return cases


# --------------------------------------------------------------------------
# running things

MED_RE = re.compile(r"median_us=([0-9.eE+-]+) calls=(\d+)")


def run(cmd, timeout=300, env=None):
    """(returncode, stdout, stderr); returncode None on timeout. The command
    runs in its own process group, all of which is killed on a timeout (agc's
    cc backend starts cc, which starts cc1: killing only the child would
    leave the compiler running and loading the machine)."""
    p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                         text=True, env=env, start_new_session=True)
    try:
        out, err = p.communicate(timeout=timeout)
        return p.returncode, out, err
    except BaseException as e:  # timeout, or ^C: take the group down too
        try:
            os.killpg(p.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        out, err = p.communicate()
        if not isinstance(e, subprocess.TimeoutExpired):
            raise
        return None, out or "", err or ""


def parse_median(err):
    m = MED_RE.search(err)
    return (float(m.group(1)), int(m.group(2))) if m else None


def first_line(s):
    for line in s.splitlines():
        if line.strip():
            return line.strip()
    return ""


def time_agc(o, cs, backend, out):
    """Times `agc run --backend B --repeat N`: N grows until N calls take at
    least min-time seconds (N >= 3). Returns (us, calls) or an error text."""
    agc = os.path.join(o["repo"], "build", "agc")
    n = 1
    for _ in range(4):
        rc, _, err = run([agc, "run", cs["graph_path"], "--inputs", cs["dir"],
                          "--out", out, "--backend", backend,
                          "--repeat", str(n)])
        r = parse_median(err) if rc == 0 else None
        if r is None:
            return first_line(err) or f"exit status {rc}"
        us, calls = r
        if calls >= 3 and us * calls >= o["min-time"] * 1e6:
            return r
        n = max(3, math.ceil(o["min-time"] * 1e6 * 1.1 / max(us, 1e-3)))
        n = min(n, 10_000_000)
    return r


def time_tool(cmd, env=None):
    rc, _, err = run(cmd, env=env)
    if rc == 3:
        return "skipped (torch not importable)"
    r = parse_median(err) if rc == 0 else None
    if r is None:
        return first_line(err) or f"exit status {rc}"
    return r


def torch_env():
    env = dict(os.environ)
    env.update(OMP_NUM_THREADS="1", MKL_NUM_THREADS="1",
               OPENBLAS_NUM_THREADS="1")
    return env


# --------------------------------------------------------------------------
# comparing results


def compare(a_dir, b_dir, names):
    """Per tensor: (name, normwise rel err, elementwise rel err) of a vs b.
    normwise: max|a-b| / max|b|; elementwise: max |a-b| / max(|b|, 1e-3 max|b|)."""
    res = []
    for n in names:
        pa, pb = os.path.join(a_dir, n + ".npy"), os.path.join(b_dir, n + ".npy")
        if not (os.path.exists(pa) and os.path.exists(pb)):
            res.append((n, None, None))
            continue
        a = np.load(pa).astype(np.float64)
        b = np.load(pb).astype(np.float64)
        if a.shape != b.shape:
            res.append((n, float("inf"), float("inf")))
            continue
        scale = float(np.max(np.abs(b))) if b.size else 0.0
        diff = np.abs(a - b)
        norm = float(diff.max() / scale) if scale > 0 else float(diff.max())
        den = np.maximum(np.abs(b), 1e-3 * scale) if scale > 0 else 1.0
        elem = float(np.max(diff / den)) if b.size else 0.0
        res.append((n, norm, elem))
    return res


OUT_NAMES = {"mlp": ["loss", "grad_W1", "grad_b1", "grad_W2", "grad_b2"],
             "cnn": ["loss", "grad_k", "grad_kb", "grad_W", "grad_b"],
             "ew": ["loss", "grad_w1", "grad_w2", "grad_b"]}


# --------------------------------------------------------------------------
# formatting


def fmt_us(r):
    if isinstance(r, tuple):
        us = r[0]
        if us >= 1e5:
            return f"{us / 1e3:.0f} ms"
        if us >= 1e4:
            return f"{us / 1e3:.1f} ms"
        if us >= 100:
            return f"{us:.0f} µs"
        return f"{us:.2f} µs" if us < 10 else f"{us:.1f} µs"
    return r if r else "—"


def ratio(a, b):
    if isinstance(a, tuple) and isinstance(b, tuple) and b[0] > 0:
        x = a[0] / b[0]
        return f"{x:.2f}×" if x < 10 else f"{x:.1f}×" if x < 100 else f"{x:.0f}×"
    return "—"


def short(r):
    """Table cell of a failed or skipped run."""
    if r is None:
        return "—"
    if isinstance(r, str) and r.startswith("n/a"):
        return r
    if isinstance(r, str) and r.startswith("skipped"):
        return "skipped"
    return "error"


def cell(r):
    return fmt_us(r) if isinstance(r, tuple) else short(r)


def fmt_bytes(n):
    if n is None or n < 0:
        return "—"
    if n >= 1 << 20:
        return f"{n / (1 << 20):.2f} MiB"
    if n >= 1 << 10:
        return f"{n / (1 << 10):.1f} KiB"
    return f"{n} B"


# --------------------------------------------------------------------------
# machine


def loadavg():
    try:
        with open("/proc/loadavg") as f:
            return " ".join(f.read().split()[:3])
    except OSError:
        return "?"


def machine_info(o):
    info = {"load_start": loadavg()}
    rc, out, _ = run(["lscpu"])
    m = re.search(r"Model name:\s*(.+)", out or "")
    info["cpu"] = m.group(1).strip() if m else platform.processor()
    info["cpus"] = os.cpu_count()
    rc, out, _ = run(["gcc", "--version"])
    info["gcc"] = first_line(out)
    rc, out, err = run(["tcc", "-v"])
    info["tcc"] = first_line(out or err) or "tcc not on PATH (libtcc is linked)"
    rc, out, err = run([o["python"], "-c",
                        "import torch, numpy; print(torch.__version__, numpy.__version__)"],
                       env=torch_env())
    info["torch"] = out.split()[0] if rc == 0 and out.split() else None
    info["numpy"] = np.__version__
    rc, out, err = run([o["python"], "-c",
                        "import torch\n"
                        "x = torch.ones(8, 8); x @ x\n"
                        "libs = sorted({l.split()[-1] for l in open('/proc/self/maps')\n"
                        "  if 'blas' in l.lower() or 'mkl' in l.lower()})\n"
                        "print(' '.join(libs) or 'none')"], env=torch_env())
    info["blas"] = first_line(out) if rc == 0 else None
    rc, out, _ = run([os.path.join(o["repo"], "build", "agc"), "--version"])
    info["agc"] = first_line(out) or "?"
    rc, out, _ = run(["git", "-C", o["repo"], "rev-parse", "--short", "HEAD"])
    info["commit"] = first_line(out) or "?"
    rc, out, _ = run(["git", "-C", o["repo"], "status", "--porcelain",
                      "compiler", "runtime"])
    info["dirty"] = bool(out.strip())
    info["date"] = datetime.datetime.now(datetime.timezone.utc).strftime(
        "%Y-%m-%d %H:%M UTC")
    info["kernel"] = platform.release()
    return info


# --------------------------------------------------------------------------
# main


def main():
    o = parse_args(sys.argv[1:])
    t_start = time.time()
    work, bindir = o["work"], o["bin"]
    agc = os.path.join(o["repo"], "build", "agc")
    info = machine_info(o)
    notes = []
    have_torch = info["torch"] is not None
    cases = make_cases(work)
    if o["only"]:
        keep = set(o["only"].split(","))
        cases = [c for c in cases if c["name"] in keep]
    for cs in cases:
        if cs["kind"] != "mlp":
            continue
        B, IN, H, OUT = cs["shape"]
        exe = os.path.join(bindir, f"baseline_mlp_{B}x{IN}x{H}x{OUT}")
        cmd = [o["cc"], "-O3", "-march=native", "-std=c11", "-Wall", "-Wextra",
               f"-DMLP_B={B}", f"-DMLP_IN={IN}", f"-DMLP_H={H}", f"-DMLP_OUT={OUT}",
               os.path.join(o["repo"], "bench", "baseline_mlp.c"), "-o", exe, "-lm"]
        rc, _, err = run(cmd)
        cs["baseline"] = exe if rc == 0 else None
        if rc != 0:
            notes.append(f"{cs['label']}: baseline did not build: {first_line(err)}")
    torch_py = os.path.join(o["repo"], "bench", "torch_bench.py")
    mt = str(o["min-time"])

    # 1. which graphs does agc compile?
    for cs in cases:
        rc, _, err = run([agc, cs["graph_path"], "--emit", "c", "-o", os.devnull])
        cs["supported"] = rc == 0
        if rc != 0:
            msg = first_line(err)
            cs["agc_error"] = msg
            notes.append(f"{cs['label']}: agc does not compile the graph "
                         f"(`{msg}`): agc rows n/a.")
            log(f"[bench] {cs['name']}: agc cannot compile it: {msg}")

    # 2. correctness before timing, on the small MLP: agc (tcc and cc) vs
    #    the baseline, and PyTorch vs agc
    checks = []
    small = next((c for c in cases if c["name"] == "mlp_s"), None)
    if small and small["supported"]:
        log("[bench] checking agc against the baseline on mlp_s")
        ref = os.path.join(work, "check", "agc_tcc")
        os.makedirs(ref, exist_ok=True)
        run([agc, "run", small["graph_path"], "--inputs", small["dir"],
             "--out", ref])
        others = []
        d = os.path.join(work, "check", "agc_cc")
        os.makedirs(d, exist_ok=True)
        run([agc, "run", small["graph_path"], "--inputs", small["dir"],
             "--out", d, "--backend", "cc"])
        others.append(("agc cc", d))
        d = os.path.join(work, "check", "baseline")
        os.makedirs(d, exist_ok=True)
        run([small["baseline"], small["dir"], *map(str, small["shape"]),
             "--min-time", "0", "--min-reps", "1", "--out", d])
        others.append(("baseline C", d))
        if have_torch:
            d = os.path.join(work, "check", "torch")
            run([o["python"], torch_py, "mlp", small["dir"], "--min-time", "0",
                 "--min-reps", "1", "--out", d], env=torch_env())
            others.append(("PyTorch", d))
        for who, d in others:
            for n, norm, elem in compare(d, ref, OUT_NAMES["mlp"]):
                checks.append((small["label"], f"{who} vs agc tcc", n, norm, elem))
                if norm is None or elem > SMALL_ELEM_LIMIT:
                    log(f"[bench] WARNING: {who} differs from agc on mlp_s, "
                        f"{n}: {elem if norm is not None else 'missing'}")

    # 3. timing
    results = {}
    for cs in cases:
        r = results.setdefault(cs["name"], {})
        outs = {k: os.path.join(work, "out", cs["name"], k)
                for k in ("base", "cc", "tcc", "torch")}
        for d in outs.values():
            os.makedirs(d, exist_ok=True)
        if cs["kind"] == "mlp" and cs["baseline"]:
            log(f"[bench] {cs['name']}: baseline C")
            r["base"] = time_tool([cs["baseline"], cs["dir"], *map(str, cs["shape"]),
                                   "--min-time", mt, "--out", outs["base"]])
        for bk in ("cc", "tcc"):
            if not cs["supported"]:
                r[bk] = "n/a (not supported)"
                continue
            log(f"[bench] {cs['name']}: agc --backend {bk}")
            r[bk] = time_agc(o, cs, bk, outs[bk])
        if have_torch:
            log(f"[bench] {cs['name']}: PyTorch")
            r["torch"] = time_tool([o["python"], torch_py, cs["kind"], cs["dir"],
                                    "--min-time", mt, "--out", outs["torch"]],
                                   env=torch_env())
        else:
            r["torch"] = "skipped (torch not importable)"
        # every pair that ran: cross-check against agc cc (else baseline)
        ref = ("agc cc", outs["cc"]) if isinstance(r.get("cc"), tuple) else (
            ("baseline C", outs["base"]) if isinstance(r.get("base"), tuple) else None)
        if ref and cs["name"] != "mlp_s":
            for who, key in (("baseline C", "base"), ("agc tcc", "tcc"),
                             ("PyTorch", "torch")):
                if isinstance(r.get(key), tuple) and outs[key] != ref[1]:
                    for n, norm, elem in compare(outs[key], ref[1],
                                                 OUT_NAMES[cs["kind"]]):
                        checks.append((cs["label"], f"{who} vs {ref[0]}", n,
                                       norm, elem))
        for k, v in r.items():
            if isinstance(v, str) and not v.startswith(("n/a", "skipped")):
                notes.append(f"{cs['label']}, {k}: {v}")

    # 4. JIT latency
    jit_rows = []
    jl = os.path.join(bindir, "jit_latency")
    sizes = [int(s) for s in o["jit-sizes"].split(",") if s.strip()]
    cc_sizes = {int(s) for s in o["jit-cc-sizes"].split(",") if s.strip()}
    if os.path.exists(jl) and not o["only"]:
        for bk in ("tcc", "cc"):
            exceeded = None
            for n in sizes:
                if bk == "cc" and n not in cc_sizes:
                    continue
                if exceeded is not None:
                    jit_rows.append(dict(n=n, backend=bk,
                                         status=f"> {o['jit-timeout']:.0f} s "
                                                f"(not run: {exceeded} already was)"))
                    continue
                log(f"[bench] JIT latency: {n} statements, {bk}")
                t0 = time.time()
                rc, out, err = run([jl, str(n), bk], timeout=o["jit-timeout"])
                wall = time.time() - t0
                if rc is None:
                    exceeded = n
                    jit_rows.append(dict(n=n, backend=bk,
                                         status=f"> {o['jit-timeout']:.0f} s"))
                    continue
                kv = dict(re.findall(r"(\w+)=(\S+)", out))
                if rc != 0 or not kv:
                    jit_rows.append(dict(n=n, backend=bk,
                                         status="error: " + first_line(err)))
                    continue
                kv.update(n=n, backend=bk, status="ok", wall=wall)
                jit_rows.append(kv)

    # 5. workspace
    ws_rows = []
    wsb = os.path.join(bindir, "workspace")
    for cs in cases:
        if not cs["supported"]:
            ws_rows.append((cs["label"], None, None, None))
            continue
        rc, out, _ = run([agc, cs["graph_path"], "--emit", "h"])
        m = re.search(r"#define \w+_WORK_BYTES (\d+)", out or "")
        hdr = int(m.group(1)) if m else None
        naive = allb = None
        if os.path.exists(wsb):
            rc, out, _ = run([wsb, cs["graph_path"]])
            kv = dict(re.findall(r"(\w+)=(-?\d+)", out or ""))
            if kv:
                naive, allb = int(kv["naive"]), int(kv["all"])
                if hdr is not None and int(kv["work"]) != hdr:
                    notes.append(f"{cs['label']}: agc_work_bytes() = {kv['work']} "
                                 f"but the header says {hdr}")
        ws_rows.append((cs["label"], hdr, naive, allb))

    # ----------------------------------------------------------------------
    # report
    P = print
    P("## agc benchmark\n")
    P(f"- date: {info['date']}")
    P(f"- machine: {info['cpu']}, {info['cpus']} CPUs, Linux {info['kernel']}")
    P(f"- compilers: {info['gcc']}; {info['tcc']}")
    P(f"- agc: {info['agc']}, commit {info['commit']}"
      f"{' + uncommitted changes in compiler/ or runtime/' if info['dirty'] else ''}")
    P(f"- PyTorch: {info['torch'] or 'not importable (rows skipped)'}, "
      f"NumPy {info['numpy']}"
      + (f"; BLAS loaded by torch: {info['blas']}" if info.get("blas") else "")
      + (" (a reference BLAS, not OpenBLAS/MKL/BLIS: PyTorch's matmuls are "
         "unoptimised on this machine)" if info.get("blas") and not re.search(
             r"openblas|mkl|blis", info["blas"], re.I) else ""))
    P(f"- load average (1/5/15 min) at start: {info['load_start']}, "
      f"at end: {loadavg()}")
    P(f"- timing: median wall time of one training step (forward + every "
      f"gradient), single thread, each case timed for >= {o['min-time']} s "
      f"and >= 3 calls after warm-up")
    P()
    P("### Training step, median time per call\n")
    P("| case | baseline C (gcc -O3) | agc --backend cc | agc --backend tcc "
      "| PyTorch eager | agc-cc / baseline | agc-tcc / agc-cc | torch / agc-cc |")
    P("|---|---:|---:|---:|---:|---:|---:|---:|")
    for cs in cases:
        r = results[cs["name"]]
        base = cell(r["base"]) if "base" in r else "—"
        P(f"| {cs['label']} | {base} | {cell(r['cc'])} | {cell(r['tcc'])} | "
          f"{cell(r['torch'])} | {ratio(r['cc'], r.get('base'))} | "
          f"{ratio(r['tcc'], r['cc'])} | {ratio(r['torch'], r['cc'])} |")
    P()
    P("Calls timed per cell (baseline / cc / tcc / torch): " + "; ".join(
        f"{cs['name']} " + "/".join(
            str(results[cs['name']][k][1]) if isinstance(results[cs['name']].get(k), tuple)
            else "-" for k in ("base", "cc", "tcc", "torch")) for cs in cases))
    P()
    big = next((c for c in cases if c["name"] == "mlp_l"), None)
    if big:
        r = results["mlp_l"]
        P(f"### Matmul throughput, {big['label']}\n")
        P(f"{big['flops'] / 1e9:.3f} GFLOP of matmul work per step "
          f"(6·B·(IN·H + H·OUT)); reference ceiling from the issue: "
          f"~105 GFLOP/s single-thread sgemm.\n")
        P("| implementation | GFLOP/s | % of 105 |")
        P("|---|---:|---:|")
        for k, who in (("base", "baseline C"), ("cc", "agc --backend cc"),
                       ("tcc", "agc --backend tcc"), ("torch", "PyTorch eager")):
            v = r.get(k)
            if isinstance(v, tuple):
                g = big["flops"] / (v[0] * 1e3)
                P(f"| {who} | {g:.2f} | {100 * g / 105:.1f}% |")
            else:
                P(f"| {who} | {short(v)} | — |")
        P()
    if jit_rows:
        P("### JIT latency: graph text -> callable function\n")
        P("Measured in-process by bench/jit_latency.c through the tool API: "
          "`front` is agc_compile + agc_emit (parse, autodiff, plan, emit C); "
          "`load` is agc_graph_load_source() end to end (front end again + "
          "compiling the C + symbol lookup); `first call` is one call of the "
          "loaded function. Graph: a chain of N one-op element-wise statements "
          "on a [16] tensor (tanh, *w, +x, sin in turn), sum, backward. "
          f"Each measurement is one run, stopped after {o['jit-timeout']:.0f} s.\n")
        P("| statements | backend | IR nodes | generated C | front | load (text -> callable) | first call |")
        P("|---:|---|---:|---:|---:|---:|---:|")
        for j in jit_rows:
            if j["status"] != "ok":
                P(f"| {j['n']} | {j['backend']} | | | | {j['status']} | |")
                continue
            P(f"| {j['n']} | {j['backend']} | {j['ir_nodes']} | "
              f"{fmt_bytes(int(j['c_bytes']))} | {float(j['front_ms']):.1f} ms | "
              f"{float(j['load_ms']):.1f} ms | {float(j['call_us']):.0f} µs |")
        P()
    P("### Workspace\n")
    P("`NAME_WORK_BYTES` from the generated header against the tensors agc "
      "materialises without reuse (agc_work_bytes()'s `naive`) and every live "
      "intermediate of the differentiated graph, fused or not (bench/workspace.c; "
      "inputs, params and outputs excluded). NAME_WORK_BYTES also holds any "
      "scratch agc's kernels use (e.g. matmul packing), which the other two "
      "columns do not count.\n")
    P("| case | NAME_WORK_BYTES | materialised, no reuse | all intermediates | work / all |")
    P("|---|---:|---:|---:|---:|")
    for label, hdr, naive, allb in ws_rows:
        if hdr is None:
            P(f"| {label} | n/a (not supported) | | | |")
            continue
        frac = f"{hdr / allb:.2f}" if allb else "—"
        P(f"| {label} | {fmt_bytes(hdr)} ({hdr}) | {fmt_bytes(naive)} | "
          f"{fmt_bytes(allb)} | {frac} |")
    P()
    if checks:
        P("### Correctness\n")
        P("Worst over the tensors compared (loss and every gradient): "
          "normwise = max|a-b| / max|ref|, elementwise = max |a-b| / "
          "max(|ref|, 1e-3·max|ref|). The small MLP is checked before timing "
          "(limit 3e-4 elementwise: two float32 results of a 32-term sum that "
          "cancels to 1e-3 of the largest element differ there by about 1e-4 "
          "once one of them uses agc's tanh, within 3.4e-7 of tanh); the other cases compare the outputs of "
          "the timed runs (limit 1e-3 normwise: float32 sums of up to 1024 "
          "terms in different orders).\n")
        P("| case | pair | tensors | worst normwise | worst elementwise | ok |")
        P("|---|---|---:|---:|---:|---|")
        groups = {}
        for label, pair, n, norm, elem in checks:
            groups.setdefault((label, pair), []).append((n, norm, elem))
        bad = []
        for (label, pair), rows in groups.items():
            missing = [n for n, norm, _ in rows if norm is None]
            have = [r for r in rows if r[1] is not None]
            wn = max(have, key=lambda r: r[1]) if have else None
            we = max(have, key=lambda r: r[2]) if have else None
            strict = label == MLP_SHAPES[0][0]
            ok = not missing and have and (
                we[2] <= SMALL_ELEM_LIMIT if strict else wn[1] <= 1e-3)
            if not ok:
                bad.append(f"{label}: {pair}")
            P(f"| {label} | {pair} | {len(have)}"
              f"{' (missing: ' + ', '.join(missing) + ')' if missing else ''} | "
              + (f"{wn[1]:.1e} ({wn[0]}) | {we[2]:.1e} ({we[0]}) | "
                 if have else "— | — | ")
              + ("yes" if ok else "**NO**") + " |")
        P()
        if bad:
            P("**Mismatches:** " + "; ".join(bad))
            P()
    if notes:
        P("### Notes\n")
        for n in notes:
            P(f"- {n}")
        P()
    P(f"Total bench time: {time.time() - t_start:.0f} s.")


if __name__ == "__main__":
    main()
