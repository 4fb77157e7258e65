"""bench.py - the driver behind bench/run.sh (run that, not this).

Writes the benchmark graphs and random .npy inputs into a work directory,
checks agc against the hand-written C baseline (and PyTorch), times every
(case, implementation) pair, measures JIT latency and workspace sizes, and
prints the tables as Markdown on standard output. Progress goes to stderr.

Options (run.sh passes the first four):
  --repo DIR  --work DIR  --bin DIR  --python EXE
  --min-time S      target seconds of timed calls per case (default 0.5)
  --rounds R        time every contender of a case R times, in turn, and
                    keep each one's best median (default 3; on a shared VM
                    one run's cells move by 10-25%)
  --jit-timeout S   limit per JIT-latency measurement (default 60)
  --jit-sizes LIST  comma-separated chain lengths (default
                    1000,10000,100000,300000)
  --jit-cc-sizes L  sizes also measured with --backend cc (default 1000,10000;
                    "" for none)
  --only LIST       comma-separated case names (default: all)
  --cc CC           compiler for the baseline (default $CC_BENCH or gcc)
  --peak-n N        size of the square sgemm that measures the ceiling
                    (default 2048)
  --peak-reps N     best of N calls of it (default 5)
  --fmnist-epochs N epochs of the Fashion-MNIST case (default 5; 0 skips it)
  --fmnist-threads L PyTorch thread counts for it, "1" or "1,all"
                    (default 1,all)
  --fmnist-timeout S  stop a trainer after S seconds (default 1200); its row
                    then says so
  --quick           short runs to check the bench works: --min-time 0.1,
                    JIT sizes 1000 (tcc only), --peak-n 1024 --peak-reps 3,
                    --fmnist-epochs 1 --fmnist-threads 1 (options given
                    after --quick still apply)

Environment: OPENBLAS_LIB_DIR, OPENBLAS_INC_DIR (default: Debian's
/usr/lib/<multiarch>/openblas-pthread and /usr/include/<multiarch>/openblas-pthread,
else -openmp, -serial); OPENBLAS_CORETYPE if set is used as it is;
FMNIST_DIR (default /usr/share/datasets/fashion-mnist).
"""
import datetime
import math
import os
import platform
import re
import signal
import shutil
import subprocess
import sys
import tempfile
import time

import numpy as np

# --------------------------------------------------------------------------
# options


# Elementwise limit for the small MLP's cross-check (see the report text).
SMALL_ELEM_LIMIT = 3e-4


def parse_args(argv):
    o = {"repo": None, "work": None, "bin": None, "python": sys.executable,
         "min-time": 0.5, "rounds": 3, "jit-timeout": 60.0,
         "jit-sizes": "1000,10000,100000,300000", "jit-cc-sizes": "1000,10000",
         "only": "", "cc": os.environ.get("CC_BENCH", "gcc"),
         "peak-n": 2048, "peak-reps": 5, "fmnist-epochs": 5,
         "fmnist-threads": "1,all", "fmnist-timeout": 1200.0}
    i = 0
    while i < len(argv):
        k = argv[i].lstrip("-")
        if k == "quick":
            o.update({"min-time": 0.1, "rounds": 1, "jit-sizes": "1000",
                      "jit-cc-sizes": "",
                      "peak-n": 1024, "peak-reps": 3, "fmnist-epochs": 1,
                      "fmnist-threads": "1"})
            o["quick"] = True
            i += 1
            continue
        if k not in o or i + 1 >= len(argv):
            raise SystemExit(f"bench.py: bad option {argv[i]}\n{__doc__}")
        o[k] = argv[i + 1]
        i += 2
    for k in ("repo", "work", "bin"):
        if not o[k]:
            raise SystemExit(f"bench.py: --{k} is required")
    o["min-time"] = float(o["min-time"])
    o["jit-timeout"] = float(o["jit-timeout"])
    o["fmnist-timeout"] = float(o["fmnist-timeout"])
    for k in ("peak-n", "peak-reps", "fmnist-epochs", "rounds"):
        o[k] = int(o[k])
    o.setdefault("quick", False)
    if o["rounds"] < 1:
        raise SystemExit("bench.py: --rounds must be 1 or more")
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
EW_L = dict(B=2048, D=1024)  # 2^21 elements: its loop runs in parts on threads


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


def ew_graph(e=EW):
    return f"""graph ew
# element-wise heavy: {e['B']}x{e['D']} elements, 3 transcendental functions each
input x[{e['B']}, {e['D']}]
param w1[{e['D']}]
param w2[{e['D']}]
param b[{e['D']}]
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
                          # x@W1, h@W2 forward; grad_W2 = h^T dy,
                          # dh = dy W2^T, grad_W1 = x^T dz; no grad for x
                          flops=4 * B * IN * H + 6 * B * H * OUT))
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
    for name, e in (("ew", EW), ("ew_l", EW_L)):
        d = os.path.join(work, "cases", name)
        os.makedirs(d, exist_ok=True)
        save(d, "x", randn(e["B"], e["D"]))
        save(d, "w1", randn(e["D"]))
        save(d, "w2", randn(e["D"]))
        save(d, "b", randn(e["D"], scale=0.1))
        cases.append(dict(name=name, kind="ew", dir=d, graph=ew_graph(e),
                          label=f"elementwise {e['B']}x{e['D']}"))
    for cs in cases:
        cs["graph_path"] = os.path.join(cs["dir"], "model.graph")
        with open(cs["graph_path"], "w") as f:
            f.write(cs["graph"])
    return cases


# --------------------------------------------------------------------------
# Fashion-MNIST: one real-data case, whole epochs of SGD

FM = dict(B=64, IN=784, H=256, OUT=10, lr=0.1, seed=20241130)
FM_FILES = ("train-images-idx3-ubyte", "train-labels-idx1-ubyte",
            "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")


def fmnist_graph():
    return f"""graph fmnist
# Fashion-MNIST: 784 -> 256 relu -> 10, cross entropy (mean over the batch)
input x[{FM['B']}, {FM['IN']}]
input labels: i32[{FM['B']}]
param W1[{FM['IN']}, {FM['H']}]
param b1[{FM['H']}]
param W2[{FM['H']}, {FM['OUT']}]
param b2[{FM['OUT']}]
h = relu(x @ W1 + b1)
z = h @ W2 + b2
loss = cross_entropy(z, labels)
output loss
backward loss
"""


def idx_read(path):
    """An IDX file of unsigned bytes (gzipped or not) as a NumPy array."""
    import gzip
    opener = gzip.open if path.endswith(".gz") else open
    with opener(path, "rb") as f:
        raw = f.read()
    if raw[:3] != b"\0\0\x08":
        raise ValueError(f"{path}: not an IDX ubyte file")
    rank = raw[3]
    dims = [int.from_bytes(raw[4 + 4 * d:8 + 4 * d], "big") for d in range(rank)]
    return np.frombuffer(raw, np.uint8, offset=4 + 4 * rank).reshape(dims)


def fmnist_prepare(work, epochs):
    """Writes the data both trainers read into work/fmnist/data: the IDX
    files, unzipped; initial params as PyTorch's nn.Linear draws them
    (uniform in ±1/sqrt(fan_in)), raw float32; the order of the examples in
    every epoch (perm.i32). Returns (data dir, test images, test labels) or
    an error text."""
    src = os.environ.get("FMNIST_DIR", "/usr/share/datasets/fashion-mnist")
    d = os.path.join(work, "fmnist", "data")
    os.makedirs(d, exist_ok=True)
    arrays = {}
    for name in FM_FILES:
        path = next((p for p in (os.path.join(src, name + ".gz"),
                                 os.path.join(src, name)) if os.path.exists(p)), None)
        if path is None:
            return (f"no {name}[.gz] in {src} (Debian: apt-get install "
                    f"dataset-fashion-mnist, or set FMNIST_DIR)")
        arrays[name] = a = idx_read(path)
        with open(os.path.join(d, name), "wb") as f:   # the IDX file, unzipped
            f.write(bytes([0, 0, 8, a.ndim]))
            for n in a.shape:
                f.write(int(n).to_bytes(4, "big"))
            f.write(a.tobytes())
    rng = np.random.default_rng(FM["seed"])
    for name, shape, fan_in in (("W1", (FM["IN"], FM["H"]), FM["IN"]),
                                ("b1", (FM["H"],), FM["IN"]),
                                ("W2", (FM["H"], FM["OUT"]), FM["H"]),
                                ("b2", (FM["OUT"],), FM["H"])):
        k = 1 / math.sqrt(fan_in)
        rng.uniform(-k, k, shape).astype("<f4").tofile(os.path.join(d, name + ".f32"))
    n = arrays["train-labels-idx1-ubyte"].shape[0]
    np.concatenate([rng.permutation(n) for _ in range(max(epochs, 1))]).astype(
        "<i4").tofile(os.path.join(d, "perm.i32"))
    tx = arrays["t10k-images-idx3-ubyte"].reshape(-1, FM["IN"]).astype(np.float32) / 255
    return d, tx, arrays["t10k-labels-idx1-ubyte"].astype(np.int64)


def fmnist_accuracy(pdir, tx, ty):
    """Test accuracy of the params in pdir (the same NumPy forward for both
    trainers)."""
    p = {}
    for name, shape in (("W1", (FM["IN"], FM["H"])), ("b1", (FM["H"],)),
                        ("W2", (FM["H"], FM["OUT"])), ("b2", (FM["OUT"],))):
        p[name] = np.fromfile(os.path.join(pdir, name + ".f32"), "<f4").reshape(shape)
    h = np.maximum(tx @ p["W1"] + p["b1"], 0)
    z = h @ p["W2"] + p["b2"]
    return float(np.mean(np.argmax(z, axis=1) == ty))


EPOCH_RE = re.compile(r"epoch=(\d+) seconds=([0-9.eE+-]+) mean_loss=([0-9.eE+-]+|nan|inf)")


def fmnist_run(o, work, have_torch, ncpu):
    """Trains with the agc-built step and with PyTorch; returns rows of dicts
    (who, epochs [(seconds, mean_loss)], accuracy or error) and a note."""
    epochs = o["fmnist-epochs"]
    prep = fmnist_prepare(work, epochs)
    if isinstance(prep, str):
        return [], prep
    d, tx, ty = prep
    rows = []
    # agc: the graph compiled to C, built with gcc -O3 -march=native
    gdir = os.path.join(work, "fmnist", "agc")
    os.makedirs(gdir, exist_ok=True)
    gpath = os.path.join(gdir, "fmnist.graph")
    with open(gpath, "w") as f:
        f.write(fmnist_graph())
    agc = os.path.join(o["repo"], "build", "agc")
    # one thread, and every core (--threads) when PyTorch runs on them too
    agc_threads = [1] + ([ncpu] if ncpu > 1 and "all" in o["fmnist-threads"]
                         else [])
    for th in agc_threads:
        exe = os.path.join(o["bin"], f"fmnist_train{th}")
        cfile = os.path.join(gdir, f"fmnist{th}.c")
        hdir = os.path.join(gdir, f"t{th}")
        os.makedirs(hdir, exist_ok=True)
        rc, _, err = run([agc, gpath, "-o", cfile, "--name", "fmnist",
                          "--threads", str(th),
                          "--header", os.path.join(hdir, "fmnist.h")])
        if rc == 0:
            rc, _, err = run([o["cc"], "-O3", "-march=native", "-std=c11",
                              "-Wall", "-Wextra", "-pthread", "-I", hdir,
                              os.path.join(o["repo"], "bench", "fmnist_train.c"),
                              cfile, "-o", exe, "-lm"])
        who = (f"agc-generated C (gcc -O3 -march=native), {th} thread"
               + ("s" if th > 1 else ""))
        if rc != 0:
            rows.append(dict(who=who, error=first_line(err)))
            continue
        out_dir = os.path.join(work, "fmnist", f"out_agc{th}")
        os.makedirs(out_dir, exist_ok=True)
        log(f"[bench] fmnist: agc, {th} thread(s), {epochs} epoch(s)")
        rows.append(fmnist_one(who, [exe, d, str(epochs), str(FM["lr"]), out_dir],
                               None, out_dir, tx, ty, o["fmnist-timeout"]))
    if have_torch:
        torch_py = os.path.join(o["repo"], "bench", "torch_fmnist.py")
        for t in o["fmnist-threads"].split(","):
            th = ncpu if t.strip() == "all" else int(t)
            out_dir = os.path.join(work, "fmnist", f"out_torch{th}")
            log(f"[bench] fmnist: PyTorch, {th} thread(s), {epochs} epoch(s)")
            rows.append(fmnist_one(
                f"PyTorch eager, {th} thread{'s' if th > 1 else ''}",
                [o["python"], torch_py, d, str(epochs), str(FM["lr"]), out_dir,
                 "--threads", str(th)], blas_env(th), out_dir, tx, ty,
                o["fmnist-timeout"]))
    else:
        rows.append(dict(who="PyTorch eager", error="skipped (torch not importable)"))
    return rows, None


def fmnist_one(who, cmd, env, out_dir, tx, ty, timeout):
    rc, out, err = run(cmd, env=env, timeout=timeout)
    eps = [(float(s), float(l)) for _, s, l in EPOCH_RE.findall(out or "")]
    if rc is None:
        done = ", ".join(f"{s:.1f}" for s, _ in eps)
        return dict(who=who, error=f"stopped after {timeout:.0f} s"
                    + (f" (epochs done: {done} s)" if eps else
                       " before the first epoch ended"))
    if rc != 0 or not eps:
        return dict(who=who, error=first_line(err) or f"exit status {rc}")
    return dict(who=who, epochs=eps, accuracy=fmnist_accuracy(out_dir, tx, ty))


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


def agc_run(o, jl, n):
    """The JIT-latency chain of n statements through `agc run --threads 1`
    (a process of its own: graph text to results on disk), under
    /usr/bin/time: {run_s, run_mb} (MiB of maximum resident set), or
    {run_status} when it could not be measured."""
    if not os.path.exists("/usr/bin/time"):
        return dict(run_status="no /usr/bin/time")
    d = tempfile.mkdtemp(prefix="agc-chain-")
    try:
        g = os.path.join(d, "chain.graph")
        rc, out, err = run([jl, str(n), "tcc", "graph"])
        if rc != 0:
            return dict(run_status="error: " + first_line(err))
        with open(g, "w") as f:
            f.write(out)
        x, w = os.path.join(d, "x.npy"), os.path.join(d, "w.npy")
        np.save(x, (0.1 * (np.arange(16) - 8)).astype("<f4"))
        np.save(w, (0.9 + 0.01 * np.arange(16)).astype("<f4"))
        agc = os.path.join(o["repo"], "build", "agc")
        rc, out, err = run(["/usr/bin/time", "-f", "run_s=%e run_kb=%M", agc,
                            "run", g, "x=" + x, "w=" + w, "--threads", "1", "--out",
                            os.path.join(d, "out")], timeout=o["jit-timeout"])
        if rc is None:
            return dict(run_status=f"> {o['jit-timeout']:.0f} s")
        kv = dict(re.findall(r"(run_\w+)=(\S+)", err))
        if rc != 0 or "run_kb" not in kv:
            return dict(run_status="error: " + first_line(err))
        return dict(run_s=float(kv["run_s"]), run_mb=int(kv["run_kb"]) / 1024)
    finally:
        shutil.rmtree(d, ignore_errors=True)


def parse_median(err):
    m = MED_RE.search(err)
    return (float(m.group(1)), int(m.group(2))) if m else None


def first_line(s):
    for line in s.splitlines():
        if line.strip():
            return line.strip()
    return ""


class RoundResults(dict):
    """A case's results seen through one round of timing: a contender's
    (us, calls) replaces what an earlier round left only if it is faster;
    a failure or a skip (a string) stays once it happened."""

    def __init__(self, base):
        super().__init__(base)
        self.base = base

    def __setitem__(self, key, new):
        old = self.base.get(key)
        if key in self.base and not isinstance(old, tuple):
            return
        if not isinstance(new, tuple) or old is None or new[0] < old[0]:
            self.base[key] = new
            super().__setitem__(key, new)


def time_agc(o, cs, backend, out, threads=1):
    """Times `agc run --backend B --threads T --repeat N`: N grows until N
    calls take at least min-time seconds (N >= 3). Returns (us, calls) or an
    error text."""
    agc = os.path.join(o["repo"], "build", "agc")
    n = 1
    for _ in range(4):
        rc, _, err = run([agc, "run", cs["graph_path"], "--inputs", cs["dir"],
                          "--out", out, "--backend", backend,
                          "--threads", str(threads), "--repeat", str(n)])
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


# OpenBLAS: where it is, which kernel it picks, which one the CPU supports.
# Set by setup_openblas(); used by blas_env() for OpenBLAS and PyTorch runs.
OPENBLAS = {"lib": None, "inc": None, "coretype": None}
# glibc: no mmap below 32 MiB (its largest threshold on 64-bit), never trim
MALLOC_KEEP = {"MALLOC_MMAP_THRESHOLD_": "33554432",
               "MALLOC_TRIM_THRESHOLD_": "1000000000000"}


def blas_env(threads=1):
    """Environment of a run of OpenBLAS or PyTorch on `threads` threads: the
    thread counts, OPENBLAS_CORETYPE when forced, and OpenBLAS's directory
    first on LD_LIBRARY_PATH, so that PyTorch's libblas.so.3 is OpenBLAS's
    whatever BLAS the system selects (Debian's reference BLAS otherwise).

    glibc's malloc is told to keep freed memory (unless the caller set these):
    PyTorch allocates its tensors with malloc every step, and once they pass
    the mmap threshold each step maps and unmaps them and faults every page in
    again; on a virtual machine that made its CNN step swing between 1.5 and
    9 ms from run to run. With both settings it stays at its best."""
    env = dict(os.environ)
    n = str(threads)
    env.update(OMP_NUM_THREADS=n, MKL_NUM_THREADS=n, OPENBLAS_NUM_THREADS=n)
    for k, v in MALLOC_KEEP.items():
        env.setdefault(k, v)
    if OPENBLAS["coretype"]:
        env["OPENBLAS_CORETYPE"] = OPENBLAS["coretype"]
    if OPENBLAS["lib"]:
        env["LD_LIBRARY_PATH"] = OPENBLAS["lib"] + (
            ":" + env["LD_LIBRARY_PATH"] if env.get("LD_LIBRARY_PATH") else "")
    return env


def torch_env():
    return blas_env(1)


# OpenBLAS kernel names by the widest vector ISA they use: 4 AVX-512,
# 3 AVX2+FMA, 2 AVX, anything else (Prescott, Core2, Nehalem, Barcelona...) 1.
CORE_LEVEL = {"skylakex": 4, "cooperlake": 4, "sapphirerapids": 4,
              "haswell": 3, "zen": 3, "excavator": 3,
              "sandybridge": 2, "bulldozer": 2, "piledriver": 2,
              "steamroller": 2}
LEVEL_CORE = {4: "SkylakeX", 3: "Haswell", 2: "Sandybridge"}


def cpu_flags():
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("flags"):
                    return set(line.split(":", 1)[1].split())
    except OSError:
        pass
    return set()


def flags_level(flags):
    if "avx512f" in flags:
        return 4
    if "avx2" in flags and "fma" in flags:
        return 3
    if "avx" in flags:
        return 2
    return 1


def openblas_dirs(cc):
    lib, inc = os.environ.get("OPENBLAS_LIB_DIR"), os.environ.get("OPENBLAS_INC_DIR")
    if lib and inc:
        return lib, inc
    rc, out, _ = run([cc, "-print-multiarch"])
    multi = first_line(out) or "x86_64-linux-gnu"
    for v in ("openblas-pthread", "openblas-openmp", "openblas-serial"):
        lib, inc = f"/usr/lib/{multi}/{v}", f"/usr/include/{multi}/{v}"
        if (os.path.exists(os.path.join(lib, "libopenblas.so"))
                and os.path.exists(os.path.join(inc, "cblas.h"))):
            return lib, inc
    return None, None


def setup_openblas(o, info, notes):
    """Builds openblas_mlp and sgemm_peak against OpenBLAS itself (explicit
    -L/-rpath/-lopenblas, checked with ldd), asks OpenBLAS which kernel it
    detects, and forces OPENBLAS_CORETYPE when that is weaker than the CPU's
    flags say. Fills info["openblas"]; returns the two programs or Nones."""
    ob = info["openblas"] = {"flags_level": flags_level(cpu_flags())}
    lib, inc = openblas_dirs(o["cc"])
    if not lib:
        notes.append("OpenBLAS not found (Debian: apt-get install libopenblas-dev): "
                     "OpenBLAS rows skipped, no measured ceiling, PyTorch uses "
                     "the system BLAS.")
        return None, None
    OPENBLAS["lib"], OPENBLAS["inc"] = lib, inc
    ob["lib"] = lib
    link = [f"-I{inc}", "-L" + lib, f"-Wl,-rpath,{lib}", "-lopenblas", "-lm"]
    progs = {}
    for name, opt in (("openblas_mlp", "-O3"), ("sgemm_peak", "-O2")):
        exe = os.path.join(o["bin"], name)
        rc, _, err = run([o["cc"], opt, "-march=native", "-std=c11", "-Wall",
                          "-Wextra", os.path.join(o["repo"], "bench", name + ".c"),
                          "-o", exe, *link])
        progs[name] = exe if rc == 0 else None
        if rc != 0:
            notes.append(f"{name}.c did not build: {first_line(err)}")
    if progs["sgemm_peak"]:
        rc, out, _ = run(["ldd", progs["sgemm_peak"]])
        ob["ldd"] = " ".join(l.split("=>")[-1].split("(")[0].strip()
                             for l in (out or "").splitlines() if "blas" in l)
        env = dict(os.environ)
        user = env.pop("OPENBLAS_CORETYPE", None)
        rc, out, _ = run([progs["sgemm_peak"], "--corename"], env=env)
        ob["detected"] = first_line(out) if rc == 0 else "?"
        level = CORE_LEVEL.get(ob["detected"].lower(), 1)
        if user:
            OPENBLAS["coretype"] = user
            ob["forced"] = f"{user} (OPENBLAS_CORETYPE set by the caller)"
            if CORE_LEVEL.get(user.lower(), 1) < ob["flags_level"]:
                ob["forced"] += (
                    f"; WEAKER than this CPU's {LEVEL_CORE[ob['flags_level']]}"
                    " level, so the OpenBLAS and PyTorch figures are not their"
                    " best: unset OPENBLAS_CORETYPE")
        elif level < ob["flags_level"]:
            OPENBLAS["coretype"] = LEVEL_CORE[ob["flags_level"]]
            ob["forced"] = (f"{OPENBLAS['coretype']} (OPENBLAS_CORETYPE: "
                            f"{ob['detected']} is weaker than the CPU flags)")
        else:
            ob["forced"] = None
        if OPENBLAS["coretype"]:
            rc, out, _ = run([progs["sgemm_peak"], "--corename"], env=blas_env(1))
            ob["running"] = first_line(out)
        else:
            ob["running"] = ob["detected"]
    return progs["openblas_mlp"], progs["sgemm_peak"]


def measure_peak(o, sgemm_peak):
    """The single-thread sgemm ceiling: best of peak-reps square sgemms."""
    if not sgemm_peak:
        return None
    rc, out, err = run([sgemm_peak, str(o["peak-n"]), str(o["peak-reps"])],
                       env=blas_env(1), timeout=600)
    kv = dict(re.findall(r"(\w+)=(\S+)", out or ""))
    if rc != 0 or "gflops" not in kv:
        return None
    return float(kv["gflops"])


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
    fl = cpu_flags()
    info["flags"] = " ".join(f for f in ("sse3", "ssse3", "sse4_2", "avx", "avx2",
                                         "fma", "avx512f", "avx512bw", "avx512vl",
                                         "avx512_vnni", "avx512_bf16")
                             if f in fl) or "?"
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


TORCH_BLAS_PROBE = """
import ctypes, torch
x = torch.ones(64, 64); x @ x
libs = sorted({l.split()[-1] for l in open('/proc/self/maps')
               if 'blas' in l.lower() or 'mkl' in l.lower()})
core = '-'
for l in libs:
    if 'openblas' in l.lower() and 'libopenblas' in l.lower():
        f = ctypes.CDLL(l).openblas_get_corename
        f.restype = ctypes.c_char_p
        core = f().decode()
print(core, ' '.join(libs) or 'none')
"""


def torch_blas(o, info):
    """Which BLAS PyTorch loads under blas_env() and, if it is OpenBLAS, the
    kernel it runs."""
    rc, out, _ = run([o["python"], "-c", TORCH_BLAS_PROBE], env=torch_env())
    if rc == 0 and out.split():
        core, _, libs = first_line(out).partition(" ")
        info["blas"] = libs
        info["torch_core"] = None if core == "-" else core
    else:
        info["blas"] = info["torch_core"] = None


# --------------------------------------------------------------------------
# main


def main():
    o = parse_args(sys.argv[1:])
    t_start = time.time()
    work, bindir = o["work"], o["bin"]
    agc = os.path.join(o["repo"], "build", "agc")
    info = machine_info(o)
    notes = []
    blas_mlp, sgemm_peak = setup_openblas(o, info, notes)
    torch_blas(o, info)
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
    ncpu = os.cpu_count() or 1
    mt = str(o["min-time"])

    # 1. which graphs does agc compile?
    for cs in cases:
        # (to standard output: agc refuses to replace a device such as
        # /dev/null, so -o os.devnull made every agc row n/a)
        rc, _, err = run([agc, cs["graph_path"], "--emit", "c", "-o", "-"])
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
        if blas_mlp:
            d = os.path.join(work, "check", "openblas")
            os.makedirs(d, exist_ok=True)
            run([blas_mlp, small["dir"], *map(str, small["shape"]),
                 "--min-time", "0", "--min-reps", "1", "--out", d], env=blas_env(1))
            others.append(("OpenBLAS C", d))
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

    # 3. timing: every contender of a case in turn, o["rounds"] times;
    # each keeps its best median (keep_best)
    results = {}
    for cs, rnd in ((cs, rnd) for cs in cases for rnd in range(o["rounds"])):
        r = results.setdefault(cs["name"], {})
        outs = {k: os.path.join(work, "out", cs["name"], k)
                for k in ("base", "blas", "cc", "tcc", "ccN", "tccN", "torch",
                          "torchN")}
        for d in outs.values():
            os.makedirs(d, exist_ok=True)
        r = RoundResults(r)
        log(f"[bench] {cs['name']}: round {rnd + 1} of {o['rounds']}")
        if cs["kind"] == "mlp" and cs["baseline"]:
            log(f"[bench] {cs['name']}: baseline C")
            r["base"] = time_tool([cs["baseline"], cs["dir"], *map(str, cs["shape"]),
                                   "--min-time", mt, "--out", outs["base"]])
        if cs["kind"] == "mlp" and blas_mlp:
            log(f"[bench] {cs['name']}: OpenBLAS C")
            r["blas"] = time_tool([blas_mlp, cs["dir"], *map(str, cs["shape"]),
                                   "--min-time", mt, "--out", outs["blas"]],
                                  env=blas_env(1))
        for bk in ("cc", "tcc"):
            if not cs["supported"]:
                r[bk] = "n/a (not supported)"
                continue
            log(f"[bench] {cs['name']}: agc --backend {bk}")
            r[bk] = time_agc(o, cs, bk, outs[bk])
        for bk in ("cc", "tcc"):
            key = bk + "N"
            if cs["supported"] and ncpu > 1:
                log(f"[bench] {cs['name']}: agc --backend {bk} --threads {ncpu}")
                r[key] = time_agc(o, cs, bk, outs[key], ncpu)
            else:
                r[key] = ("n/a (one CPU)" if cs["supported"]
                          else "n/a (not supported)")
        if have_torch:
            for key, th in (("torch", 1), ("torchN", ncpu)):
                log(f"[bench] {cs['name']}: PyTorch, {th} thread(s)")
                r[key] = time_tool([o["python"], torch_py, cs["kind"], cs["dir"],
                                    "--min-time", mt, "--out", outs[key],
                                    "--threads", str(th)], env=blas_env(th))
        else:
            r["torch"] = r["torchN"] = "skipped (torch not importable)"
        if rnd < o["rounds"] - 1:
            continue  # the checks: on the last round's outputs
        # every pair that ran: cross-check against agc cc (else baseline)
        ref = ("agc cc", outs["cc"]) if isinstance(r.get("cc"), tuple) else (
            ("baseline C", outs["base"]) if isinstance(r.get("base"), tuple) else None)
        if ref and cs["name"] != "mlp_s":
            for who, key in (("baseline C", "base"), ("OpenBLAS C", "blas"),
                             ("agc tcc", "tcc"), (f"agc cc {ncpu} threads", "ccN"),
                             ("PyTorch 1 thread", "torch"),
                             (f"PyTorch {ncpu} threads", "torchN")):
                if isinstance(r.get(key), tuple) and outs[key] != ref[1]:
                    for n, norm, elem in compare(outs[key], ref[1],
                                                 OUT_NAMES[cs["kind"]]):
                        checks.append((cs["label"], f"{who} vs {ref[0]}", n,
                                       norm, elem))
        # the JIT on threads against the JIT on one (bit-identical: 0)
        if isinstance(r.get("tccN"), tuple) and isinstance(r.get("tcc"), tuple):
            for n, norm, elem in compare(outs["tccN"], outs["tcc"],
                                         OUT_NAMES[cs["kind"]]):
                checks.append((cs["label"], f"agc tcc {ncpu} threads vs agc tcc",
                               n, norm, elem))
        # the BLAS users against the plain C step: a forced OPENBLAS_CORETYPE
        # can compute wrong results on some processors
        if cs["kind"] == "mlp" and isinstance(r.get("base"), tuple):
            for who, key in (("OpenBLAS C", "blas"), ("PyTorch 1 thread", "torch"),
                             (f"PyTorch {ncpu} threads", "torchN")):
                if isinstance(r.get(key), tuple):
                    for n, norm, elem in compare(outs[key], outs["base"],
                                                 OUT_NAMES["mlp"]):
                        checks.append((cs["label"], f"{who} vs baseline C", n,
                                       norm, elem))
        for k, v in r.items():
            if isinstance(v, str) and not v.startswith(("n/a", "skipped")):
                notes.append(f"{cs['label']}, {k}: {v}")

    # the ceiling: a large square sgemm, one thread, best of several
    peak = None
    if sgemm_peak and any(c["kind"] == "mlp" for c in cases):
        log(f"[bench] sgemm ceiling: {o['peak-n']}^3, best of {o['peak-reps']}")
        peak = measure_peak(o, sgemm_peak)
        if peak is None:
            notes.append("the sgemm ceiling could not be measured")

    # Fashion-MNIST
    fm_rows, fm_note = [], None
    if o["fmnist-epochs"] > 0 and (not o["only"] or "fmnist" in o["only"].split(",")):
        fm_rows, fm_note = fmnist_run(o, work, have_torch, ncpu)
        if fm_note:
            notes.append(f"Fashion-MNIST skipped: {fm_note}")

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
                if bk == "tcc":
                    kv.update(agc_run(o, jl, n))
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
    P(f"- machine: {info['cpu']}, {info['cpus']} CPUs, Linux {info['kernel']}; "
      f"vector flags: {info['flags']}")
    P(f"- compilers: {info['gcc']}; {info['tcc']}")
    P(f"- agc: {info['agc']}, commit {info['commit']}"
      f"{' + uncommitted changes in compiler/ or runtime/' if info['dirty'] else ''}")
    ob = info.get("openblas", {})
    if ob.get("lib"):
        P(f"- OpenBLAS: {ob['lib']} (linked with -lopenblas; ldd: "
          f"{ob.get('ldd') or '?'}); kernel detected by OpenBLAS: "
          f"{ob.get('detected', '?')}; "
          + (f"forced: {ob['forced']}, running {ob.get('running', '?')}"
             if ob.get("forced") else
             "not forced (as strong as the CPU flags: "
             f"{LEVEL_CORE.get(ob['flags_level'], 'SSE only')} level)"))
    P(f"- PyTorch: {info['torch'] or 'not importable (rows skipped)'}, "
      f"NumPy {info['numpy']}"
      + (f"; BLAS loaded by torch: {info['blas']}" if info.get("blas") else "")
      + (f", OpenBLAS kernel {info['torch_core']}" if info.get("torch_core") else "")
      + (" (a reference BLAS, not OpenBLAS/MKL/BLIS: PyTorch's matmuls are "
         "unoptimised on this machine)" if info.get("blas") and not re.search(
             r"openblas|mkl|blis", info["blas"], re.I) else "")
      + "; PyTorch and OpenBLAS run with glibc malloc keeping freed memory ("
      + " ".join(f"{k}={os.environ.get(k, v)}" for k, v in MALLOC_KEEP.items())
      + ")")
    P(f"- load average (1/5/15 min) at start: {info['load_start']}, "
      f"at end: {loadavg()}")
    P(f"- timing: median wall time of one training step (forward + every "
      f"gradient), single thread (PyTorch also on all {ncpu} CPUs), each case "
      f"timed for >= {o['min-time']} s and >= 3 calls after warm-up; "
      f"every contender of a case in turn, {o['rounds']} round(s), each "
      f"cell the best of its rounds' medians"
      + (" (--quick: short runs, to check the bench, not to quote)"
         if o["quick"] else ""))
    P()
    P("### Training step, median time per call\n")
    P("| case | baseline C (gcc -O3) | OpenBLAS C (1 thread) | agc --backend cc "
      f"| agc --backend tcc | PyTorch eager, 1 thread | agc --backend cc, {ncpu} threads "
      f"| agc --backend tcc, {ncpu} threads | PyTorch eager, {ncpu} threads "
      "| agc-cc / baseline | agc-cc / OpenBLAS | agc-tcc / agc-cc | torch-1 / agc-cc "
      f"| torch-{ncpu} / agc-cc-{ncpu} | torch-{ncpu} / agc-tcc-{ncpu} |")
    P("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for cs in cases:
        r = results[cs["name"]]
        base = cell(r["base"]) if "base" in r else "—"
        blas = cell(r["blas"]) if "blas" in r else "—"
        P(f"| {cs['label']} | {base} | {blas} | {cell(r['cc'])} | {cell(r['tcc'])} | "
          f"{cell(r['torch'])} | {cell(r['ccN'])} | {cell(r['tccN'])} | "
          f"{cell(r['torchN'])} | "
          f"{ratio(r['cc'], r.get('base'))} | {ratio(r['cc'], r.get('blas'))} | "
          f"{ratio(r['tcc'], r['cc'])} | {ratio(r['torch'], r['cc'])} | "
          f"{ratio(r['torchN'], r['ccN'])} | {ratio(r['torchN'], r['tccN'])} |")
    P()
    keys = ("base", "blas", "cc", "tcc", "torch", "ccN", "tccN", "torchN")
    P(f"Calls timed per cell ({' / '.join(keys)}): " + "; ".join(
        f"{cs['name']} " + "/".join(
            str(results[cs['name']][k][1]) if isinstance(results[cs['name']].get(k), tuple)
            else "-" for k in keys) for cs in cases))
    P()
    mlps = [c for c in cases if c["kind"] == "mlp" and c["name"] != "mlp_s"]
    if mlps:
        P("### Matmul throughput\n")
        P("Matrix work the step does: 4·B·IN·H + 6·B·H·OUT flops (x·W1 and "
          "h·W2 forward; grad_W2 = hᵀ·dy, dh = dy·W2ᵀ, grad_W1 = xᵀ·dz; no "
          "gradient for x), per median step time; bias, tanh and loss work "
          "not counted. Ceiling: " + (
              f"**{peak:.1f} GFLOP/s**, OpenBLAS cblas_sgemm "
              f"{o['peak-n']}×{o['peak-n']}×{o['peak-n']}, 1 thread, best of "
              f"{o['peak-reps']}, measured in this run (kernel "
              f"{ob.get('running', '?')})." if peak else
              "not measured (no OpenBLAS): no percentages.") + "\n")
        P("| case | GFLOP per step | implementation | GFLOP/s | % of ceiling |")
        P("|---|---:|---|---:|---:|")
        for cs in mlps:
            r = results[cs["name"]]
            for k, who in (("base", "baseline C"), ("blas", "OpenBLAS C, 1 thread"),
                           ("cc", "agc --backend cc"), ("tcc", "agc --backend tcc"),
                           ("torch", "PyTorch eager, 1 thread"),
                           ("ccN", f"agc --backend cc, {ncpu} threads"),
                           ("tccN", f"agc --backend tcc, {ncpu} threads"),
                           ("torchN", f"PyTorch eager, {ncpu} threads")):
                v = r.get(k)
                if isinstance(v, tuple):
                    g = cs["flops"] / (v[0] * 1e3)
                    pc = f"{100 * g / peak:.0f}%" if peak else "—"
                    P(f"| {cs['label']} | {cs['flops'] / 1e9:.4f} | {who} | "
                      f"{g:.2f} | {pc} |")
                else:
                    P(f"| {cs['label']} | {cs['flops'] / 1e9:.4f} | {who} | "
                      f"{short(v)} | — |")
        P()
    if fm_rows:
        P(f"### Fashion-MNIST, {o['fmnist-epochs']} epoch(s) of SGD\n")
        P(f"784→{FM['H']}→10 MLP (relu, cross entropy), batch {FM['B']}, plain SGD "
          f"lr={FM['lr']}, 60,000 training images in {60000 // FM['B']} steps "
          "per epoch (the last partial batch dropped), the same initial params "
          "(nn.Linear's uniform ±1/√fan_in, fixed seed) and the same example "
          "order for every trainer. agc: the graph compiled with `agc GRAPH -o "
          "fmnist.c`, built with the driver bench/fmnist_train.c (batch copy, "
          "the generated step, P -= lr·grad_P); PyTorch: bench/torch_fmnist.py "
          "(indexing, zero_grad, forward, backward, torch.optim.SGD). Time per "
          "epoch: wall time, data copies included, no evaluation. Test "
          "accuracy: the 10,000 test images, one NumPy forward of the final "
          "params for every trainer.\n")
        P("| trainer | epoch times | median epoch | mean loss, last epoch | test accuracy |")
        P("|---|---|---:|---:|---:|")
        for row in fm_rows:
            if "error" in row:
                P(f"| {row['who']} | {short(row['error'])}: {row['error']} | | | |")
                continue
            secs = [e[0] for e in row["epochs"]]
            med = sorted(secs)[len(secs) // 2] if len(secs) % 2 else \
                sum(sorted(secs)[len(secs) // 2 - 1:len(secs) // 2 + 1]) / 2
            P(f"| {row['who']} | {', '.join(f'{x:.2f}' for x in secs)} s | "
              f"{med:.2f} s | {row['epochs'][-1][1]:.4f} | "
              f"{100 * row['accuracy']:.2f}% |")
        P()
    if jit_rows:
        P("### JIT latency: graph text -> callable function\n")
        P("Measured in-process by bench/jit_latency.c through the tool API: "
          "`front` is agc_compile + agc_emit (parse, autodiff, plan, emit C); "
          "`load` is agc_graph_load_source() end to end (front end again + "
          "compiling the C + symbol lookup); `first call` is one call of the "
          "loaded function. Graph: a chain of N one-op element-wise statements "
          "on a [16] tensor (tanh, *w, +x, sin in turn), sum, backward. "
          "`agc run`: the same graph through `agc run --threads 1` in a "
          "process of its own (text to results on disk), wall time and "
          "maximum resident set from /usr/bin/time. "
          f"Each measurement is one run, stopped after {o['jit-timeout']:.0f} s.\n")
        P("| statements | backend | IR nodes | generated C | front | load (text -> callable) | first call | agc run |")
        P("|---:|---|---:|---:|---:|---:|---:|---:|")
        for j in jit_rows:
            if j["status"] != "ok":
                P(f"| {j['n']} | {j['backend']} | | | | {j['status']} | | |")
                continue
            runc = (f"{j['run_s']:.2f} s, {j['run_mb']:.0f} MiB" if "run_s" in j
                    else j.get("run_status", ""))
            P(f"| {j['n']} | {j['backend']} | {j['ir_nodes']} | "
              f"{fmt_bytes(int(j['c_bytes']))} | {float(j['front_ms']):.1f} ms | "
              f"{float(j['load_ms']):.1f} ms | {float(j['call_us']):.0f} µs | {runc} |")
        P()
        mem = [j for j in jit_rows if j["status"] == "ok" and j["backend"] == "tcc"
               and float(j.get("mem_peak", -1)) >= 0]
        if mem:
            P("Where the memory goes (bench/jit_latency.c, in the same process: "
              "each stage's peak resident set less the resident set before it, "
              "the peak reset before each stage and freed memory given back "
              "with malloc_trim; MiB):\n")
            P("| statements | agc_compile: parse, autodiff, passes (peak) | the graph after it (resident) | agc_emit: plan, loops, C text (peak) | C text | TinyCC on that text (peak) | process peak over the load (front end and TinyCC again) |")
            P("|---:|---:|---:|---:|---:|---:|---:|")
            for j in mem:
                P(f"| {j['n']} | {float(j['mem_compile']):.1f} ({float(j['compile_ms']):.0f} ms) | "
                  f"{float(j['mem_ir']):.1f} | {float(j['mem_emit']):.1f} "
                  f"({float(j['front_ms']) - float(j['compile_ms']):.0f} ms) | "
                  f"{int(j['c_bytes']) / 1048576:.1f} | {float(j['mem_cc']):.1f} "
                  f"({float(j['cc_ms']):.0f} ms) | {float(j['mem_peak']):.1f} |")
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
