#!/usr/bin/python3
"""compare.py GOT REF [--rtol R] [--atol A] [--name TEXT] -- compare two runs.

Both files hold lines 'KEY INDEX VALUE' (mlp_main.c's output or
torch_mlp_adam.txt); VALUE is 0xBITS (a float32 bit pattern) or a decimal.
REF may also be the --out directory of 'agc run GRAPH --steps N' given as
DIR:N: its P.npy files are the params, loss.npy the loss of step N.
Every loss and parameter of REF must be in GOT with
|got - ref| <= atol + rtol * |ref|. Prints the largest differences, in
absolute terms and in float32 units in the last place; exit status 1 if any
value is missing or off. Lines with other keys are ignored."""
import argparse
import os
import struct
import sys

import numpy as np

KEYS = ("loss", "W1", "b1", "W2", "b2")


def parse(path):
    if ":" in path and os.path.isdir(path.rsplit(":", 1)[0]):
        return parse_run(*path.rsplit(":", 1))
    vals = {}
    with open(path) as f:
        for line in f:
            parts = line.strip().split()
            if len(parts) != 3 or parts[0] not in KEYS:
                continue
            v = parts[2]
            if v.startswith("0x"):
                v = struct.unpack("<f", struct.pack("<I", int(v, 16)))[0]
            vals[(parts[0], int(parts[1]))] = np.float32(float(v))
    return vals


def parse_run(directory, steps):
    vals = {}
    for key in KEYS:
        f = os.path.join(directory, key + ".npy")
        if not os.path.exists(f):
            continue
        for i, v in enumerate(np.load(f).reshape(-1)):
            vals[(key, int(steps) if key == "loss" else i)] = np.float32(v)
    return vals


def ulps(a, b):
    ia = np.array([a], np.float32).view(np.int32)[0].astype(np.int64)
    ib = np.array([b], np.float32).view(np.int32)[0].astype(np.int64)
    ia = ia if ia >= 0 else -(ia & 0x7FFFFFFF)
    ib = ib if ib >= 0 else -(ib & 0x7FFFFFFF)
    return abs(int(ia - ib))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("got")
    ap.add_argument("ref")
    ap.add_argument("--rtol", type=float, default=1e-5)
    ap.add_argument("--atol", type=float, default=1e-6)
    ap.add_argument("--name", default="")
    a = ap.parse_args()
    got, ref = parse(a.got), parse(a.ref)
    if not ref:
        sys.exit("compare.py: no values in " + a.ref)
    bad, worst, worst_ulp, same = [], (0.0, None), (0, None), 0
    for key, r in sorted(ref.items()):
        if key not in got:
            bad.append("%s %d missing" % key)
            continue
        g = got[key]
        d = abs(float(g) - float(r))
        u = ulps(g, r)
        same += u == 0
        if not np.isfinite(g) or d > a.atol + a.rtol * abs(float(r)):
            bad.append("%s %d: %r, expected %r" % (key[0], key[1], float(g), float(r)))
        if d > worst[0]:
            worst = (d, key)
        if u > worst_ulp[0]:
            worst_ulp = (u, key)
    print("%s: %d values, %d bit-identical, max |diff| %.3g (%s), max %d ulp (%s)%s"
          % (a.name or a.got, len(ref), same, worst[0],
             "%s %d" % worst[1] if worst[1] else "-", worst_ulp[0],
             "%s %d" % worst_ulp[1] if worst_ulp[1] else "-",
             "" if not bad else ", %d OFF (rtol %g, atol %g)" % (len(bad), a.rtol, a.atol)))
    for line in bad[:10]:
        print("  " + line)
    sys.exit(1 if bad else 0)


if __name__ == "__main__":
    main()
