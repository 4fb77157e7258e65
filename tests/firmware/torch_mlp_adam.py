#!/usr/bin/python3
"""torch_mlp_adam.py [STEPS] -- the PyTorch reference for mlp_adam.sh.

Five (or STEPS) steps of torch.optim.Adam(lr=0.01) on the MLP of
examples/mlp.graph from examples/data/*.npy, in float32, printed in the
format of mlp_main.c with decimal values (repr of the float32 value):
    loss K VALUE       the loss of step K (before its update)
    W1 I VALUE ...     every parameter after the last step
The committed output is torch_mlp_adam.txt:
    /usr/bin/python3 tests/firmware/torch_mlp_adam.py > tests/firmware/torch_mlp_adam.txt
"""
import os
import sys

import numpy as np
import torch

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..")


def main():
    steps = int(sys.argv[1]) if len(sys.argv) > 1 else 5
    data = os.path.join(ROOT, "examples", "data")
    load = lambda n: torch.from_numpy(np.load(os.path.join(data, n + ".npy")))
    x, t = load("x"), load("t")
    params = {n: load(n).clone().requires_grad_(True) for n in ("W1", "b1", "W2", "b2")}
    opt = torch.optim.Adam(params.values(), lr=0.01)
    print("# torch %s, torch.optim.Adam(lr=0.01), %d steps" % (torch.__version__, steps))
    for k in range(1, steps + 1):
        opt.zero_grad()
        h = torch.tanh(x @ params["W1"] + params["b1"])
        y = h @ params["W2"] + params["b2"]
        loss = torch.mean((y - t) ** 2)
        loss.backward()
        opt.step()
        print("loss %d %r" % (k, float(np.float32(loss.item()))))
    for n, p in params.items():
        for i, v in enumerate(p.detach().numpy().reshape(-1)):
            print("%s %d %r" % (n, i, float(v)))


if __name__ == "__main__":
    main()
