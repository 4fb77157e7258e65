"""agc from Python: compile a .graph file, call it on NumPy arrays.

    import numpy as np, agc
    g = agc.load("examples/mlp.graph")          # or agc.compile(text)
    out = g(x=x, t=t, W1=W1, b1=b1, W2=W2, b2=b2)
    out["loss"], out["grad_W1"]                 # NumPy arrays

This is a ctypes binding of the tool API (agc_api.h) in libagc.so: the graph
is compiled and JIT-loaded once, then every call runs the generated C
function on the arrays' memory. Inputs that are C-contiguous NumPy arrays of
the graph's dtype are passed without a copy; anything else of the right
shape is converted (a list, a scalar, a strided view); an ndarray of another
dtype or shape raises ValueError saying what was expected.

The library is found through $AGC_LIBRARY (a path to libagc.so), else the
directory `meson install` put it in, else the system's library path.
"""

import ctypes
import ctypes.util
import os
import re

import numpy as np

__all__ = ["load", "compile", "kernel_variant", "Graph", "CompileError",
           "IndexRangeError"]
__version__ = "0.1.0"

_AGC_F32, _AGC_F64, _AGC_I32 = 0, 1, 2
_NP = {_AGC_F32: np.dtype(np.float32), _AGC_F64: np.dtype(np.float64),
       _AGC_I32: np.dtype(np.int32)}
_BACKENDS = {"tcc": 0, "cc": 1}


class CompileError(Exception):
    """The graph did not compile. str() is the compiler's message
    (FILE:LINE:COL: error: ... with the source line and a caret); path,
    line and col are set when the message has a location."""

    def __init__(self, message):
        super().__init__(message)
        self.message = message
        m = re.match(r"(.*?):(\d+):(\d+): error: ", message)
        self.path = m.group(1) if m else None
        self.line = int(m.group(2)) if m else None
        self.col = int(m.group(3)) if m else None


class IndexRangeError(IndexError):
    """A class label or embedding index was outside its range."""


class _Options(ctypes.Structure):
    _fields_ = [("f64", ctypes.c_int), ("accumulate", ctypes.c_int),
                ("no_grad", ctypes.c_int), ("backend", ctypes.c_int),
                ("name", ctypes.c_char_p), ("expose_roots", ctypes.c_int),
                ("O0", ctypes.c_int), ("mcu", ctypes.c_int),
                ("threads", ctypes.c_int),
                ("threads_min_macs", ctypes.c_int64),
                ("perturb_seed", ctypes.c_uint64),
                ("threads_min_elems", ctypes.c_int64)]


def _distance(a, b):
    """Edit distance (insert, delete, substitute, swap neighbours),
    ignoring case: the compiler's rule for "did you mean"."""
    a, b = a.lower(), b.lower()
    d = [[i + j if i * j == 0 else 0 for j in range(len(b) + 1)]
         for i in range(len(a) + 1)]
    for i in range(1, len(a) + 1):
        for j in range(1, len(b) + 1):
            d[i][j] = min(d[i - 1][j] + 1, d[i][j - 1] + 1,
                          d[i - 1][j - 1] + (a[i - 1] != b[j - 1]))
            if i > 1 and j > 1 and a[i - 1] == b[j - 2] and \
                    a[i - 2] == b[j - 1]:
                d[i][j] = min(d[i][j], d[i - 2][j - 2] + 1)
    return d[len(a)][len(b)]


def _nearest(word, names):
    """The name a likely typo of word (at most one edit per three
    letters), else None."""
    best, bestd = None, len(word) // 3 + 1
    for n in names:
        dist = _distance(word, n)
        if n != word and dist < bestd:
            best, bestd = n, dist
    return best


def _library_candidates():
    env = os.environ.get("AGC_LIBRARY")
    if env:
        return [env]
    out = []
    try:
        from . import _config  # written by meson install
        out.append(os.path.join(_config.LIBDIR, "libagc.so.0"))
    except ImportError:
        pass
    found = ctypes.util.find_library("agc")
    if found:
        out.append(found)
    out.append("libagc.so.0")
    return out


_lib = None


def _load_library():
    global _lib
    if _lib is not None:
        return _lib
    errors = []
    for cand in _library_candidates():
        try:
            lib = ctypes.CDLL(cand)
            break
        except OSError as e:
            errors.append(str(e))
    else:
        raise OSError("agc: cannot load libagc (set AGC_LIBRARY to the path "
                      "of libagc.so): " + "; ".join(errors))
    P, I, S = ctypes.c_void_p, ctypes.c_int, ctypes.c_size_t
    sig = {
        "agc_graph_load": (P, [ctypes.c_char_p, ctypes.POINTER(_Options),
                               ctypes.c_char_p, S]),
        "agc_graph_load_source": (P, [ctypes.c_char_p, ctypes.c_char_p, S,
                                      ctypes.POINTER(_Options),
                                      ctypes.c_char_p, S]),
        "agc_graph_warnings": (ctypes.c_char_p, [P]),
        "agc_graph_num_inputs": (I, [P]),
        "agc_graph_num_outputs": (I, [P]),
        "agc_graph_name": (ctypes.c_char_p, [P, I, I]),
        "agc_graph_dtype": (I, [P, I, I]),
        "agc_graph_rank": (I, [P, I, I]),
        "agc_graph_dims": (ctypes.POINTER(ctypes.c_int64), [P, I, I]),
        "agc_graph_is_grad": (I, [P, I]),
        "agc_graph_work_bytes": (S, [P]),
        "agc_graph_call": (I, [P, P, P, P]),
        "agc_graph_index_bound": (ctypes.c_int64, [P, I]),
        "agc_graph_index_error": (I, [P, P, ctypes.c_char_p, S]),
        "agc_graph_free": (None, [P]),
        "agc_graph_has_step": (I, [P]),
        "agc_graph_is_param": (I, [P, I]),
        "agc_graph_state_bytes": (S, [P]),
        "agc_graph_step_work_bytes": (S, [P]),
        "agc_graph_step": (I, [P, P, P, P, P]),
        "agc_kernel_variant": (ctypes.c_char_p, []),
    }
    for name, (res, args) in sig.items():
        f = getattr(lib, name)
        f.restype, f.argtypes = res, args
    _lib = lib
    return lib


def _options(dtype, backend, accumulate, no_grad, name, target="host",
             threads=1):
    dt = np.dtype(dtype) if not isinstance(dtype, str) or dtype not in (
        "f32", "f64") else np.dtype({"f32": np.float32,
                                     "f64": np.float64}[dtype])
    if dt not in (np.dtype(np.float32), np.dtype(np.float64)):
        raise ValueError("dtype must be float32 or float64 (or 'f32', "
                         "'f64'), not %r" % (dtype,))
    if backend not in _BACKENDS:
        raise ValueError("backend must be 'tcc' or 'cc', not %r" % (backend,))
    if target not in ("host", "mcu"):
        raise ValueError("target must be 'host' or 'mcu', not %r" % (target,))
    if isinstance(threads, bool) or not isinstance(threads, int) or \
            not 1 <= threads <= 64:
        raise ValueError("threads must be an int from 1 to 64, not %r"
                         % (threads,))
    return _Options(int(dt == np.float64), int(bool(accumulate)),
                    int(bool(no_grad)), _BACKENDS[backend],
                    name.encode() if name else None, 0, 0,
                    int(target == "mcu"), threads)


class Tensor:
    """One input or output of a graph: name, shape, dtype."""

    def __init__(self, name, shape, dtype, is_grad=False, bound=0):
        self.name, self.shape, self.dtype = name, shape, dtype
        self.is_grad = is_grad
        self.index_bound = bound  # i32 indices: values in 0..bound-1

    def __repr__(self):
        return "%s: %s%s" % (self.name, self.dtype.name, list(self.shape))


class Graph:
    """A compiled graph. Call it with every input and param by name; it
    returns a dict of the outputs and the gradients (grad_P)."""

    def __init__(self, handle, lib):
        self._h = handle
        self._lib = lib
        n_in = lib.agc_graph_num_inputs(handle)
        n_out = lib.agc_graph_num_outputs(handle)

        def table(out, i):
            rank = lib.agc_graph_rank(handle, out, i)
            dims = lib.agc_graph_dims(handle, out, i)
            return (lib.agc_graph_name(handle, out, i).decode(),
                    tuple(int(dims[d]) for d in range(rank)),
                    _NP[lib.agc_graph_dtype(handle, out, i)])

        self.inputs = [Tensor(*table(0, i),
                              bound=lib.agc_graph_index_bound(handle, i))
                       for i in range(n_in)]
        self.outputs = [Tensor(*table(1, i),
                               is_grad=bool(lib.agc_graph_is_grad(handle, i)))
                        for i in range(n_out)]
        self.warnings = lib.agc_graph_warnings(handle).decode()
        self.work_bytes = lib.agc_graph_work_bytes(handle)
        self._work = np.empty(max(self.work_bytes, 1), np.uint8)
        self._index = {t.name: i for i, t in enumerate(self.inputs)}
        self._in_ptrs = (ctypes.c_void_p * max(n_in, 1))()
        self._out_ptrs = (ctypes.c_void_p * max(n_out, 1))()
        # a graph with `optimizer`: step() runs one training step
        self.has_step = bool(lib.agc_graph_has_step(handle))
        self.params = [t.name for i, t in enumerate(self.inputs)
                       if lib.agc_graph_is_param(handle, i)]
        self.state_bytes = lib.agc_graph_state_bytes(handle)
        # float64 elements: aligned for double, as the C requires
        self.state = np.zeros(self.state_bytes // 8 + 1, np.float64)
        self._step_work = np.empty(
            lib.agc_graph_step_work_bytes(handle) // 8 + 1, np.float64)

    def __del__(self):
        h, self._h = getattr(self, "_h", None), None
        if h:
            self._lib.agc_graph_free(h)

    def __repr__(self):
        return "<agc.Graph inputs=%s outputs=%s>" % (self.inputs, self.outputs)

    def as_input(self, name, value):
        """The array agc reads for input `name`: `value` itself when it is a
        C-contiguous ndarray of the right dtype and shape, else a converted
        copy (lists, scalars, strided views). An ndarray of another dtype or
        shape raises ValueError."""
        if name not in self._index:
            raise TypeError(self._unknown(name))
        t = self.inputs[self._index[name]]
        if isinstance(value, np.ndarray):
            if value.dtype != t.dtype:
                fix = "a.astype(np.%s)" % t.dtype.name
                if t.dtype.kind == "f":
                    fix += ", or load the graph with dtype=%r" % (
                        value.dtype.name) if value.dtype.kind == "f" else ""
                raise ValueError(
                    "input '%s': expected %s (shape %s), got %s; in NumPy: %s"
                    % (name, t.dtype.name, list(t.shape), value.dtype.name,
                       fix))
            a = value
        else:
            a = np.asarray(value, dtype=t.dtype)
        if a.shape != t.shape:
            raise ValueError("input '%s': expected shape %s, got %s"
                             % (name, list(t.shape), list(a.shape)))
        return a if a.flags.c_contiguous else np.ascontiguousarray(a)

    def _unknown(self, name):
        near = _nearest(name, list(self._index))
        return "'%s' is not an input of the graph%s (inputs: %s)" % (
            name, "; did you mean '%s'?" % near if near else "",
            ", ".join(self._index))

    def _gather(self, given, in_place):
        """The arrays of every input, in table order, their pointers in
        self._in_ptrs (in_place: the params must be the caller's arrays,
        which step() updates)."""
        for name in given:
            if name not in self._index:
                raise TypeError(self._unknown(name))
        arrays = []
        for i, t in enumerate(self.inputs):
            if t.name not in given:
                raise TypeError("missing input '%s' (%s, shape %s)"
                                % (t.name, t.dtype.name, list(t.shape)))
            a = self.as_input(t.name, given[t.name])
            if in_place and t.name in self.params and (
                    a is not given[t.name] or not a.flags.writeable):
                raise ValueError("param '%s': step() updates it in place, so "
                                 "it must be a writeable C-contiguous %s "
                                 "ndarray of shape %s" % (
                                     t.name, t.dtype.name, list(t.shape)))
            arrays.append(a)
            self._in_ptrs[i] = a.ctypes.data
        return arrays

    def __call__(self, _inputs=None, out=None, **kwargs):
        """g(x=..., W=...) or g({"x": ...}); out= may give a dict of output
        arrays to write into (C-contiguous, the output's dtype and shape;
        with accumulate=True the gradients add into them)."""
        arrays = self._gather(dict(_inputs or {}, **kwargs), False)
        result = {}
        for i, t in enumerate(self.outputs):
            o = None if out is None else out.get(t.name)
            if o is None:
                o = (np.zeros if t.is_grad else np.empty)(t.shape, t.dtype)
            elif (not isinstance(o, np.ndarray) or o.dtype != t.dtype or
                  o.shape != t.shape or not o.flags.c_contiguous or
                  not o.flags.writeable):
                raise ValueError("out['%s']: expected a writeable C-contiguous"
                                 " %s array of shape %s" % (
                                     t.name, t.dtype.name, list(t.shape)))
            result[t.name] = o
            self._out_ptrs[i] = o.ctypes.data
        status = self._lib.agc_graph_call(self._h, self._in_ptrs,
                                          self._out_ptrs,
                                          self._work.ctypes.data)
        if status:
            buf = ctypes.create_string_buffer(512)
            self._lib.agc_graph_index_error(self._h, self._in_ptrs, buf, 512)
            raise IndexRangeError(buf.value.decode())
        del arrays  # kept alive until the call returned
        return result

    def reset_state(self):
        """A fresh optimizer: zeroes the state step() keeps."""
        self.state[:] = 0

    def step(self, _inputs=None, **kwargs):
        """One training step (a graph with `optimizer`): every param, given
        as a writeable C-contiguous ndarray of the graph's dtype, is updated
        in place; the optimizer's state is kept in self.state between calls
        (reset_state() starts afresh). Returns a dict of the `output` values
        of this step."""
        if not self.has_step:
            raise TypeError("step() needs a graph with 'optimizer' (and "
                            "'backward')")
        arrays = self._gather(dict(_inputs or {}, **kwargs), True)
        result = {}
        k = 0
        for t in self.outputs:
            if t.is_grad:
                continue
            o = np.empty(t.shape, t.dtype)
            result[t.name] = o
            self._out_ptrs[k] = o.ctypes.data
            k += 1
        status = self._lib.agc_graph_step(self._h, self._in_ptrs,
                                          self._out_ptrs,
                                          self.state.ctypes.data,
                                          self._step_work.ctypes.data)
        if status:
            buf = ctypes.create_string_buffer(512)
            self._lib.agc_graph_index_error(self._h, self._in_ptrs, buf, 512)
            raise IndexRangeError(buf.value.decode())
        del arrays
        return result


def _finish(handle, err):
    if not handle:
        raise CompileError(err.value.decode(errors="replace"))
    return Graph(handle, _load_library())


def kernel_variant():
    """The copy of the JIT's ahead-of-time kernels that backend='tcc'
    links: 'avx512', 'avx2' or 'generic', the best this CPU runs (the
    environment's AGC_KERNELS may name a lower one); None when AGC_KERNELS
    names one that is unknown or that this CPU cannot run."""
    v = _load_library().agc_kernel_variant()
    return None if v is None else v.decode()


def load(path, dtype="float32", backend="tcc", accumulate=False,
         no_grad=False, name=None, target="host", threads=1):
    """Compiles the .graph file at path. dtype: float32 or float64 (every
    float tensor); backend: 'tcc' (in-process) or 'cc' (system compiler);
    target: 'host' or 'mcu' (the microcontroller C, run here); threads:
    large matrix products on up to this many threads (AGC_NUM_THREADS in
    the environment may lower it; the results do not depend on it)."""
    lib = _load_library()
    opt = _options(dtype, backend, accumulate, no_grad, name, target,
                   threads)
    err = ctypes.create_string_buffer(16384)
    h = lib.agc_graph_load(os.fsencode(path), ctypes.byref(opt), err,
                           len(err))
    return _finish(h, err)


def compile(source, dtype="float32", backend="tcc", accumulate=False,
            no_grad=False, name=None, path="<string>", target="host",
            threads=1):
    """Compiles .graph source text; messages name it `path`."""
    lib = _load_library()
    opt = _options(dtype, backend, accumulate, no_grad, name, target,
                   threads)
    src = source.encode() if isinstance(source, str) else bytes(source)
    err = ctypes.create_string_buffer(16384)
    h = lib.agc_graph_load_source(os.fsencode(path), src, len(src),
                                  ctypes.byref(opt), err, len(err))
    return _finish(h, err)
