#!/usr/bin/python3
"""The Python binding (python/agc) against NumPy arithmetic.

Run by meson (suite 'python') with Debian's /usr/bin/python3, AGC_LIBRARY
pointing at the build tree's libagc.so. Skipped (exit 77) when NumPy is
missing.
"""
import os
import sys
import unittest

try:
    import numpy as np
except ImportError:
    print("SKIP: NumPy is not installed (apt-get install python3-numpy)")
    sys.exit(77)

SRC = os.environ.get("AGC_SOURCE_ROOT",
                     os.path.join(os.path.dirname(__file__), "..", ".."))
sys.path.insert(0, os.path.join(SRC, "python"))
import agc  # noqa: E402

MLP = os.path.join(SRC, "examples", "mlp.graph")
DATA = os.path.join(SRC, "examples", "data")
NAMES = ["x", "t", "W1", "b1", "W2", "b2"]


def mlp_inputs(dtype=np.float32):
    return {n: np.load(os.path.join(DATA, n + ".npy")).astype(dtype)
            for n in NAMES}


def mlp_numpy(x, t, W1, b1, W2, b2):
    """Forward and backward of examples/mlp.graph, by hand, in f64."""
    x, t, W1, b1, W2, b2 = (a.astype(np.float64)
                            for a in (x, t, W1, b1, W2, b2))
    h = np.tanh(x @ W1 + b1)
    y = h @ W2 + b2
    loss = np.mean((y - t) ** 2)
    dy = 2 * (y - t) / y.size
    dh = dy @ W2.T * (1 - h ** 2)
    return {"loss": loss, "grad_W1": x.T @ dh, "grad_b1": dh.sum(0),
            "grad_W2": h.T @ dy, "grad_b2": dy.sum(0)}


class TestMLP(unittest.TestCase):
    def test_tables(self):
        g = agc.load(MLP)
        self.assertEqual([(t.name, t.shape, t.dtype.name) for t in g.inputs],
                         [("x", (32, 4), "float32"), ("t", (32, 1), "float32"),
                          ("W1", (4, 16), "float32"), ("b1", (16,), "float32"),
                          ("W2", (16, 1), "float32"), ("b2", (1,), "float32")])
        self.assertEqual([(t.name, t.shape, t.is_grad) for t in g.outputs],
                         [("loss", (), False), ("grad_W1", (4, 16), True),
                          ("grad_b1", (16,), True), ("grad_W2", (16, 1), True),
                          ("grad_b2", (1,), True)])

    def test_values_f32(self):
        ins = mlp_inputs()
        out = agc.load(MLP)(**ins)
        want = mlp_numpy(**ins)
        self.assertEqual(set(out), set(want))
        for k, w in want.items():
            self.assertEqual(out[k].dtype, np.float32)
            np.testing.assert_allclose(out[k], w, rtol=2e-5, atol=1e-7,
                                       err_msg=k)
        # the value the README quotes (PyTorch: 0.8042950630187988)
        self.assertAlmostEqual(float(out["loss"]), 0.8042950630187988,
                               delta=1e-6)

    def test_pytorch_agreement(self):
        """README: the MLP's gradients agree with PyTorch's within 1.2e-7."""
        try:
            import torch
        except ImportError:
            self.skipTest("python3-torch is not installed")
        ins = mlp_inputs()
        t = {k: torch.from_numpy(v) for k, v in ins.items()}
        params = ["W1", "b1", "W2", "b2"]
        for k in params:
            t[k].requires_grad_(True)
        h = torch.tanh(t["x"] @ t["W1"] + t["b1"])
        loss = torch.mean((h @ t["W2"] + t["b2"] - t["t"]) ** 2)
        loss.backward()
        for backend in ("tcc", "cc"):
            out = agc.load(MLP, backend=backend)(**ins)
            self.assertAlmostEqual(float(out["loss"]), loss.item(), delta=1e-7)
            for k in params:
                diff = np.abs(out["grad_" + k] - t[k].grad.numpy()).max()
                self.assertLessEqual(diff, 1.2e-7, "%s %s" % (backend, k))

    def test_values_f64_and_cc_backend(self):
        ins = mlp_inputs(np.float64)
        want = mlp_numpy(**ins)
        for backend in ("tcc", "cc"):
            out = agc.load(MLP, dtype="float64", backend=backend)(ins)
            for k, w in want.items():
                np.testing.assert_allclose(out[k], w, rtol=1e-12, atol=1e-15,
                                           err_msg="%s %s" % (backend, k))

    def test_zero_copy(self):
        g = agc.load(MLP)
        ins = mlp_inputs()
        for n in NAMES:
            self.assertIs(g.as_input(n, ins[n]), ins[n])
        # a strided view or a list is converted, not refused
        xf = np.asfortranarray(ins["x"])
        conv = g.as_input("x", xf)
        self.assertIsNot(conv, xf)
        self.assertTrue(conv.flags.c_contiguous)
        np.testing.assert_array_equal(conv, ins["x"])
        self.assertEqual(g.as_input("b2", [0.5]).dtype, np.float32)
        # outputs written in place through out=
        out = {"grad_W1": np.zeros((4, 16), np.float32)}
        r = g(out=out, **ins)
        self.assertIs(r["grad_W1"], out["grad_W1"])

    def test_accumulate(self):
        ins = mlp_inputs()
        g = agc.load(MLP, accumulate=True)
        out = {"grad_b1": np.zeros(16, np.float32)}
        g(out=out, **ins)
        once = out["grad_b1"].copy()
        g(out=out, **ins)
        np.testing.assert_allclose(out["grad_b1"], 2 * once, rtol=1e-6)

    def test_wrong_inputs(self):
        g = agc.load(MLP)
        ins = mlp_inputs()
        with self.assertRaises(ValueError) as e:
            g(**dict(ins, x=ins["x"].astype(np.float64)))
        self.assertEqual(str(e.exception),
                         "input 'x': expected float32 (shape [32, 4]), got "
                         "float64; in NumPy: a.astype(np.float32), or load "
                         "the graph with dtype='float64'")
        with self.assertRaises(ValueError) as e:
            g(**dict(ins, W1=ins["W1"].T))
        self.assertEqual(str(e.exception),
                         "input 'W1': expected shape [4, 16], got [16, 4]")
        with self.assertRaises(TypeError) as e:
            g(**{k: v for k, v in ins.items() if k != "b2"})
        self.assertEqual(str(e.exception),
                         "missing input 'b2' (float32, shape [1])")
        with self.assertRaises(TypeError) as e:
            g(**dict(ins, W=1))
        self.assertEqual(str(e.exception), "'W' is not an input of the "
                         "graph (inputs: x, t, W1, b1, W2, b2)")
        with self.assertRaises(TypeError) as e:
            g(**dict(ins, w1=1))
        self.assertEqual(str(e.exception), "'w1' is not an input of the "
                         "graph; did you mean 'W1'? (inputs: x, t, W1, b1, "
                         "W2, b2)")


CE = """input logits[4, 3]
input labels: i32[4]
param s
loss = cross_entropy(logits * s, labels)
output loss
backward loss
"""


class TestCrossEntropy(unittest.TestCase):
    def setUp(self):
        self.g = agc.compile(CE, dtype="float64")
        rng = np.random.default_rng(3)
        self.z = rng.standard_normal((4, 3))
        self.lab = np.array([0, 2, 1, 2], np.int32)

    def test_value_and_gradient(self):
        out = self.g(logits=self.z, labels=self.lab, s=np.array(1.5))
        z = self.z * 1.5
        lsm = z - np.log(np.exp(z).sum(1, keepdims=True))
        p = np.exp(lsm)
        loss = -lsm[np.arange(4), self.lab].mean()
        onehot = np.eye(3)[self.lab]
        dz = (p - onehot) / 4
        self.assertAlmostEqual(float(out["loss"]), loss, places=12)
        self.assertAlmostEqual(float(out["grad_s"]), float((dz * self.z).sum()),
                               places=12)
        self.assertEqual(self.g.inputs[1].index_bound, 3)

    def test_int64_labels(self):
        with self.assertRaises(ValueError) as e:
            self.g(logits=self.z, labels=self.lab.astype(np.int64), s=1.0)
        self.assertEqual(str(e.exception),
                         "input 'labels': expected int32 (shape [4]), got "
                         "int64; in NumPy: a.astype(np.int32)")

    def test_label_out_of_range(self):
        bad = np.array([0, 2, 3, 2], np.int32)
        with self.assertRaises(agc.IndexRangeError) as e:
            self.g(logits=self.z, labels=bad, s=1.0)
        self.assertEqual(str(e.exception),
                         "input 'labels': labels[2] = 3 is out of range: "
                         "cross_entropy has 3 classes, so labels must be in "
                         "0..2")


class TestErrors(unittest.TestCase):
    def test_compile_error(self):
        with self.assertRaises(agc.CompileError) as e:
            agc.compile("input x[2, 3]\ny = sum(x, dim=1)\noutput y\n",
                        path="m.graph")
        err = e.exception
        self.assertEqual((err.path, err.line, err.col), ("m.graph", 2, 12))
        self.assertEqual(str(err).splitlines()[0],
                         "m.graph:2:12: error: sum() has no argument named "
                         "'dim'; did you mean 'axis'?")

    def test_missing_file(self):
        with self.assertRaises(agc.CompileError) as e:
            agc.load("/nonexistent/m.graph")
        self.assertEqual(str(e.exception), "/nonexistent/m.graph: cannot "
                         "open: No such file or directory")

    def test_bad_options(self):
        with self.assertRaises(ValueError):
            agc.load(MLP, dtype="int32")
        with self.assertRaises(ValueError):
            agc.load(MLP, backend="gcc")
        for t in (0, 65, 2.0, True):
            with self.assertRaises(ValueError):
                agc.load(MLP, threads=t)
        with self.assertRaises(agc.CompileError) as e:
            agc.load(MLP, threads=2, target="mcu")
        self.assertIn("threads (2) need the host target", str(e.exception))

    def test_threads_same_bytes(self):
        """A product big enough for threads: the same bytes on 1 and 3."""
        src = ("input x[512, 256]\nparam W[256, 256]\n"
               "loss = sum(tanh(x @ W) ** 2)\noutput loss\nbackward loss\n")
        r = np.random.default_rng(5)
        ins = {"x": r.standard_normal((512, 256)).astype(np.float32),
               "W": r.standard_normal((256, 256)).astype(np.float32)}
        for backend in ("tcc", "cc"):
            one = agc.compile(src, backend=backend)(ins)
            three = agc.compile(src, backend=backend, threads=3)(ins)
            for k in one:
                self.assertEqual(one[k].tobytes(), three[k].tobytes(),
                                 "%s %s" % (backend, k))

    def test_kernel_variant(self):
        """The JIT's kernel copy, and AGC_KERNELS naming another."""
        old = os.environ.pop("AGC_KERNELS", None)
        try:
            self.assertIn(agc.kernel_variant(), ("generic", "avx2", "avx512"))
            src = ("input x[64, 64]\nparam W[64, 64]\n"
                   "loss = sum(tanh(x @ W) ** 2)\noutput loss\nbackward loss\n")
            r = np.random.default_rng(6)
            ins = {"x": r.standard_normal((64, 64)).astype(np.float32),
                   "W": r.standard_normal((64, 64)).astype(np.float32)}
            best = agc.compile(src)(ins)
            os.environ["AGC_KERNELS"] = "generic"
            self.assertEqual(agc.kernel_variant(), "generic")
            plain = agc.compile(src)(ins)
            for k in best:
                np.testing.assert_allclose(plain[k], best[k], rtol=1e-4,
                                           atol=1e-5 * np.abs(best[k]).max())
            os.environ["AGC_KERNELS"] = "sse9"
            self.assertIsNone(agc.kernel_variant())
            with self.assertRaises(agc.CompileError) as e:
                agc.compile(src)
            self.assertIn("AGC_KERNELS=sse9: not a kernel copy", str(e.exception))
        finally:
            os.environ.pop("AGC_KERNELS", None)
            if old is not None:
                os.environ["AGC_KERNELS"] = old


class TestTrainingStep(unittest.TestCase):
    """step() of a graph with `optimizer` against NumPy's Adam on the
    hand-written gradients of mlp_numpy."""

    def adam_numpy(self, ins, steps, lr=0.01):
        p = {n: ins[n].astype(np.float64) for n in ("W1", "b1", "W2", "b2")}
        m = {k: np.zeros_like(v) for k, v in p.items()}
        v = {k: np.zeros_like(v) for k, v in p.items()}
        for t in range(1, steps + 1):
            g = mlp_numpy(ins["x"], ins["t"], p["W1"], p["b1"], p["W2"],
                          p["b2"])
            for k in p:
                gk = g["grad_" + k]
                m[k] = 0.9 * m[k] + 0.1 * gk
                v[k] = 0.999 * v[k] + 0.001 * gk * gk
                denom = np.sqrt(v[k]) / np.sqrt(1 - 0.999 ** t) + 1e-8
                p[k] = p[k] - lr / (1 - 0.9 ** t) * m[k] / denom
        return p

    def test_adam_steps(self):
        for target in ("host", "mcu"):
            g = agc.load(os.path.join(SRC, "examples", "mlp_adam.graph"),
                         dtype=np.float64, target=target)
            self.assertTrue(g.has_step)
            self.assertEqual(g.params, ["W1", "b1", "W2", "b2"])
            # the step count, then exp_avg and exp_avg_sq of 97 weights
            self.assertEqual(g.state_bytes, 8 + 2 * 8 * 97)
            ins = mlp_inputs(np.float64)
            for _ in range(5):
                out = g.step(**ins)
            self.assertEqual(set(out), {"loss"})
            want = self.adam_numpy(mlp_inputs(np.float64), 5)
            for k, w in want.items():
                np.testing.assert_allclose(ins[k], w, rtol=1e-9, atol=1e-12,
                                           err_msg=target + " " + k)
            g.reset_state()
            self.assertEqual(float(np.abs(g.state).sum()), 0.0)

    def test_step_errors(self):
        with self.assertRaises(TypeError):
            agc.load(MLP).step(**mlp_inputs())
        g = agc.load(os.path.join(SRC, "examples", "mlp_adam.graph"))
        ins = mlp_inputs()
        ins["W1"] = ins["W1"].tolist()  # a copy would not be updated
        with self.assertRaises(ValueError):
            g.step(**ins)
        with self.assertRaises(ValueError):
            agc.load(MLP, target="avr")


if __name__ == "__main__":
    unittest.main(verbosity=2)
