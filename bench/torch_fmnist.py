"""torch_fmnist.py - the PyTorch side of bench.py's Fashion-MNIST case.

Usage: python3 torch_fmnist.py DATA EPOCHS LR OUT [--threads N]

The same model, data, initial params and example order as fmnist_train.c
(see there for DATA's files): 784 -> 256 relu -> 10, cross_entropy (mean),
batch 64, torch.optim.SGD(lr=LR), eager mode, N threads (default 1).
Prints "epoch=E seconds=S mean_loss=L" per epoch (S: wall time of the
epoch, batch indexing included) and writes OUT/{W1,b1,W2,b2}.f32.
Exit status 3 means torch cannot be imported.
"""
import os
import sys
import time

try:
    import numpy as np
    import torch
    import torch.nn.functional as F
except Exception as e:  # noqa: BLE001 - any import failure means "skip"
    print(f"torch not importable: {e}", file=sys.stderr)
    sys.exit(3)

BATCH, NIN, NH, NOUT = 64, 784, 256, 10


def idx(path):
    with open(path, "rb") as f:
        raw = f.read()
    rank = raw[3]
    dims = [int.from_bytes(raw[4 + 4 * d:8 + 4 * d], "big") for d in range(rank)]
    return np.frombuffer(raw, dtype=np.uint8, offset=4 + 4 * rank).reshape(dims)


def main():
    a = sys.argv[1:]
    if len(a) < 4:
        raise SystemExit(__doc__)
    data, epochs, lr, out = a[0], int(a[1]), float(a[2]), a[3]
    threads = int(a[a.index("--threads") + 1]) if "--threads" in a else 1
    torch.set_num_threads(threads)
    x_all = torch.from_numpy(
        idx(os.path.join(data, "train-images-idx3-ubyte")).reshape(-1, NIN)
        .astype(np.float32) / np.float32(255))
    y_all = torch.from_numpy(
        idx(os.path.join(data, "train-labels-idx1-ubyte")).astype(np.int64))
    n = x_all.shape[0]
    shapes = {"W1": (NIN, NH), "b1": (NH,), "W2": (NH, NOUT), "b2": (NOUT,)}
    p = {k: torch.from_numpy(np.fromfile(os.path.join(data, k + ".f32"),
                                         dtype="<f4").reshape(s).copy())
         .requires_grad_(True) for k, s in shapes.items()}
    perm = torch.from_numpy(np.fromfile(os.path.join(data, "perm.i32"),
                                        dtype="<i4").astype(np.int64))
    opt = torch.optim.SGD(list(p.values()), lr=lr)
    steps = n // BATCH
    for e in range(epochs):
        order = perm[e * n:(e + 1) * n]
        total = 0.0
        t0 = time.perf_counter()
        for s in range(steps):
            idxs = order[s * BATCH:(s + 1) * BATCH]
            x, y = x_all[idxs], y_all[idxs]
            opt.zero_grad()
            h = F.relu(x @ p["W1"] + p["b1"])
            loss = F.cross_entropy(h @ p["W2"] + p["b2"], y)
            loss.backward()
            opt.step()
            total += loss.item()
        print(f"epoch={e + 1} seconds={time.perf_counter() - t0:.4f} "
              f"mean_loss={total / steps:.6f}", flush=True)
    os.makedirs(out, exist_ok=True)
    for k, v in p.items():
        v.detach().numpy().astype("<f4").tofile(os.path.join(out, k + ".f32"))


if __name__ == "__main__":
    main()
