"""torch_bench.py - the PyTorch rows of bench/run.sh.

Usage: python3 torch_bench.py KIND DIR [--min-time S] [--min-reps N] [--out OUTDIR]
                              [--threads T]

KIND is mlp, cnn or ew (the graphs bench.py writes); DIR holds the case's
.npy inputs (the same files agc reads). One training step is, in eager mode
on T threads (default 1; torch.set_num_threads): zero the gradients (as optimizer.zero_grad() does in 1.13),
forward, loss.backward(). After warm-up steps the script times every step
until at least S seconds and N steps have passed and prints
"median_us=FLOAT calls=N" on stderr (the format of `agc run --repeat`).
--out writes the loss and grad_P.npy of every parameter (float32).
Exit status 3 means torch cannot be imported.
"""
import os
import statistics
import sys
import time

try:
    import numpy as np
    import torch
    import torch.nn.functional as F
except Exception as e:  # noqa: BLE001 - any import failure means "skip"
    print(f"torch not importable: {e}", file=sys.stderr)
    sys.exit(3)


def load(d, name, dtype=torch.float32, grad=False):
    a = np.load(os.path.join(d, name + ".npy"))
    t = torch.from_numpy(np.ascontiguousarray(a)).to(dtype)
    return t.requires_grad_(grad)


def build(kind, d):
    """Returns (params dict, step-closure returning the loss)."""
    if kind == "mlp":
        x, t = load(d, "x"), load(d, "t")
        p = {n: load(d, n, grad=True) for n in ("W1", "b1", "W2", "b2")}

        def fwd():
            h = torch.tanh(x @ p["W1"] + p["b1"])
            y = h @ p["W2"] + p["b2"]
            return torch.mean((y - t) ** 2)
    elif kind == "cnn":
        x = load(d, "x")
        labels = load(d, "labels", dtype=torch.long)
        p = {n: load(d, n, grad=True) for n in ("k", "kb", "W", "b")}

        def fwd():
            h = F.relu(F.conv2d(x, p["k"], p["kb"], padding=1))
            q = F.max_pool2d(h, 2)
            z = q.reshape(q.shape[0], -1) @ p["W"] + p["b"]
            return F.cross_entropy(z, labels)
    elif kind == "ew":
        x = load(d, "x")
        p = {n: load(d, n, grad=True) for n in ("w1", "w2", "b")}

        def fwd():
            return torch.sum(torch.sigmoid(x * p["w1"] + p["b"]) * torch.tanh(x)
                             + torch.exp(-x * x) * p["w2"])
    else:
        raise SystemExit(f"unknown kind {kind}")
    return p, fwd


def main():
    args = sys.argv[1:]
    if len(args) < 2:
        raise SystemExit(__doc__)
    kind, d = args[0], args[1]
    min_time, min_reps, out, threads = 0.5, 3, None, 1
    i = 2
    while i < len(args):
        if args[i] == "--min-time":
            min_time = float(args[i + 1])
        elif args[i] == "--min-reps":
            min_reps = int(args[i + 1])
        elif args[i] == "--out":
            out = args[i + 1]
        elif args[i] == "--threads":
            threads = int(args[i + 1])
        else:
            raise SystemExit(f"unknown option {args[i]}")
        i += 2
    torch.set_num_threads(threads)
    torch.set_num_interop_threads(1)
    params, fwd = build(kind, d)

    def step():
        for q in params.values():
            if q.grad is not None:
                q.grad.zero_()
        loss = fwd()
        loss.backward()
        return loss

    # warm-up: at least 3 steps and 0.1 s
    t0 = time.perf_counter()
    n = 0
    while n < 3 or time.perf_counter() - t0 < 0.1:
        loss = step()
        n += 1
    times = []
    start = time.perf_counter()
    while len(times) < min_reps or time.perf_counter() - start < min_time:
        t1 = time.perf_counter()
        loss = step()
        times.append((time.perf_counter() - t1) * 1e6)
    print(f"median_us={statistics.median(times):.3f} calls={len(times)}",
          file=sys.stderr)
    if out:
        os.makedirs(out, exist_ok=True)
        np.save(os.path.join(out, "loss.npy"),
                np.float32(loss.detach().numpy()))
        for name, q in params.items():
            np.save(os.path.join(out, f"grad_{name}.npy"),
                    q.grad.numpy().astype("<f4"))


if __name__ == "__main__":
    main()
