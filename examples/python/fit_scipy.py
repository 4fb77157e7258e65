#!/usr/bin/python3
"""Fit fit.graph to y = sin(3x) + noise with SciPy's L-BFGS-B, agc computing
the loss and its gradient; then the same fit with PyTorch computing them
(when python3-torch is installed), from the same start.

    /usr/bin/python3 examples/python/fit_scipy.py [--maxiter N]

Prints, for each: iterations, function evaluations, final loss, wall time.
"""
import argparse
import os
import sys
import time

import numpy as np
import scipy.optimize

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "..",
                                "python"))
import agc  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
SHAPES = [("W1", (1, 32)), ("b1", (32,)), ("W2", (32, 1)), ("b2", (1,))]


def data(n=256, seed=0):
    rng = np.random.default_rng(seed)
    x = np.linspace(-2, 2, n).reshape(n, 1)
    y = np.sin(3 * x) + 0.05 * rng.standard_normal((n, 1))
    return x, y


def start(seed=1):
    rng = np.random.default_rng(seed)
    return np.concatenate([rng.standard_normal(np.prod(s)) * 0.5
                           for _, s in SHAPES])


def unpack(theta):
    """Views of theta (no copies): each param is a slice of the vector."""
    out, k = {}, 0
    for name, shape in SHAPES:
        n = int(np.prod(shape))
        out[name] = theta[k:k + n].reshape(shape)
        k += n
    return out


def agc_fun(x, y):
    """fun(theta) -> (loss, gradient) for scipy.optimize, computed by the
    graph in one call."""
    g = agc.load(os.path.join(HERE, "fit.graph"), dtype="float64")
    grad = np.empty(sum(int(np.prod(s)) for _, s in SHAPES))
    # the gradients are written straight into views of one flat vector
    out = {"grad_" + k: v for k, v in unpack(grad).items()}
    out["loss"] = np.empty((), np.float64)

    def fun(theta):
        r = g(x=x, y=y, out=out, **unpack(theta))
        return float(r["loss"]), grad.copy()
    return fun


def fit_agc(x, y, theta0, maxiter):
    fun = agc_fun(x, y)
    t0 = time.perf_counter()
    res = scipy.optimize.minimize(fun, theta0, jac=True, method="L-BFGS-B",
                                  options={"maxiter": maxiter})
    return res, time.perf_counter() - t0


def torch_fun(x, y):
    """fun(theta) -> (loss, gradient), computed by PyTorch's autograd."""
    import torch
    xt, yt = torch.from_numpy(x), torch.from_numpy(y)

    def fun(theta):
        th = torch.from_numpy(theta).requires_grad_(True)
        p = {k: v for k, v in zip([n for n, _ in SHAPES],
                                  torch.split(th, [int(np.prod(s))
                                                   for _, s in SHAPES]))}
        h = torch.tanh(xt @ p["W1"].reshape(1, 32) + p["b1"])
        loss = torch.mean((h @ p["W2"].reshape(32, 1) + p["b2"] - yt) ** 2)
        loss.backward()
        return float(loss), th.grad.numpy().copy()
    return fun


def fit_torch(x, y, theta0, maxiter):
    fun = torch_fun(x, y)
    t0 = time.perf_counter()
    res = scipy.optimize.minimize(fun, theta0, jac=True, method="L-BFGS-B",
                                  options={"maxiter": maxiter})
    return res, time.perf_counter() - t0


def per_call_us(fun, theta, n=300):
    """Median wall time of one fun(theta), in microseconds."""
    fun(theta)
    t = []
    for _ in range(n):
        t0 = time.perf_counter()
        fun(theta)
        t.append(time.perf_counter() - t0)
    return 1e6 * sorted(t)[n // 2]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--maxiter", type=int, default=2000)
    args = ap.parse_args()
    x, y = data()
    theta0 = start()
    rows = [("agc", *fit_agc(x, y, theta0, args.maxiter),
             per_call_us(agc_fun(x, y), theta0))]
    try:
        import torch
        torch.set_num_threads(1)
        rows.append(("pytorch", *fit_torch(x, y, theta0, args.maxiter),
                     per_call_us(torch_fun(x, y), theta0)))
    except ImportError:
        print("(python3-torch is not installed: no PyTorch comparison)")
    print("%-8s %6s %6s %14s %8s %12s" % ("grad by", "iters", "evals",
                                          "final loss", "wall s",
                                          "us per eval"))
    for name, res, wall, us in rows:
        print("%-8s %6d %6d %14.8g %8.3f %12.1f" % (name, res.nit, res.nfev,
                                                    res.fun, wall, us))
    return 0


if __name__ == "__main__":
    sys.exit(main())
