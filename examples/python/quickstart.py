#!/usr/bin/python3
"""The Python binding in a few lines: load examples/mlp.graph, call it on the
arrays of examples/data, look at the results, and see an error.

    python3 examples/python/quickstart.py    (from the source directory)
"""
import os
import sys

import numpy as np

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..")
sys.path.insert(0, os.path.join(ROOT, "python"))  # not needed once installed
import agc  # noqa: E402

g = agc.load(os.path.join(ROOT, "examples", "mlp.graph"))
print("inputs: ", g.inputs)
print("outputs:", g.outputs)

data = {t.name: np.load(os.path.join(ROOT, "examples", "data", t.name + ".npy"))
        for t in g.inputs}
out = g(**data)
print("loss =", out["loss"])
print("grad_b2 =", out["grad_b2"])

try:
    g(**dict(data, x=data["x"].astype(np.float64)))
except ValueError as e:
    print("ValueError:", e)
try:
    agc.compile("input x[4]\ny = reluu(x)\noutput y\n", path="bad.graph")
except agc.CompileError as e:
    print("CompileError:", e)
