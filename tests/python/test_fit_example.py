#!/usr/bin/python3
"""examples/python/fit_scipy.py: agc's loss and gradient for the fit equal
NumPy's, and L-BFGS-B driven by them fits sin(3x) down to the noise.
Skipped (exit 77) without NumPy or SciPy."""
import os
import sys
import unittest

try:
    import numpy as np
    import scipy.optimize  # noqa: F401
except ImportError as e:
    print("SKIP: %s (apt-get install python3-numpy python3-scipy)" % e)
    sys.exit(77)

SRC = os.environ.get("AGC_SOURCE_ROOT",
                     os.path.join(os.path.dirname(__file__), "..", ".."))
sys.path.insert(0, os.path.join(SRC, "examples", "python"))
import fit_scipy  # noqa: E402


def numpy_loss_grad(x, y, theta):
    p = fit_scipy.unpack(theta)
    a = x @ p["W1"] + p["b1"]
    h = np.tanh(a)
    r = h @ p["W2"] + p["b2"] - y
    dr = 2 * r / r.size
    da = dr @ p["W2"].T * (1 - h ** 2)
    g = np.concatenate([(x.T @ da).ravel(), da.sum(0), (h.T @ dr).ravel(),
                        dr.sum(0)])
    return float(np.mean(r ** 2)), g


class TestFit(unittest.TestCase):
    def test_gradient_matches_numpy(self):
        x, y = fit_scipy.data()
        theta = fit_scipy.start()
        f, g = fit_scipy.agc_fun(x, y)(theta)
        want_f, want_g = numpy_loss_grad(x, y, theta)
        self.assertAlmostEqual(f, want_f, places=12)
        np.testing.assert_allclose(g, want_g, rtol=1e-10, atol=1e-14)

    def test_fit_reaches_the_noise(self):
        x, y = fit_scipy.data()
        theta0 = fit_scipy.start()
        f0, _ = numpy_loss_grad(x, y, theta0)
        res, _ = fit_scipy.fit_agc(x, y, theta0, maxiter=2000)
        # noise of standard deviation 0.05: mean square 0.0025
        self.assertLess(res.fun, 0.003)
        self.assertLess(res.fun, f0 / 100)
        f, _ = numpy_loss_grad(x, y, res.x)
        self.assertAlmostEqual(res.fun, f, places=12)


if __name__ == "__main__":
    unittest.main(verbosity=2)
