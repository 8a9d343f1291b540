"""tinygen's hand-written CUDA kernels: compiled at run time, launched on CuPy arrays.

The CUDA C sources live in ``kernels/*.cu`` (installed as ``tinygen/kernels``;
``tinygen.resources`` finds them in both places, names their entry points and
pastes their headers in). Each file is compiled the
first time one of its kernels is asked for, with ``cupy.RawModule`` (NVRTC, so
no ``nvcc`` is needed), and the module is kept per (file, device), so every
later call on that device only launches. What each kernel computes is written
at the top of its ``.cu`` file; this file is the host side: it checks shapes,
makes inputs contiguous (what the kernels index), allocates outputs and picks
the launch.

Every kernel is a C++ template over the element type, compiled for float and
double under the names ``<kernel>_f32`` and ``<kernel>_f64`` (``kernel_name``).
A launch takes arrays of one dtype, float32 or float64, and runs the
instantiation for it, so a float64 array is computed in double precision end to
end; any other dtype, or a mix, is a TypeError, never a silent cast. The
launchers:

    im2col(x, kh, kw, sh, sw, ph, pw)                   x (N, C, H, W) -> cols (N, C*kh*kw, Ho*Wo)
    col2im(cols, x_shape, kh, kw, sh, sw, ph, pw)       the adjoint: cols -> x (N, C, H, W)
    conv2d_grad_weight(dy, cols)                        dy (N, O, L), cols (N, R, L) -> dw (O, R)
    lstm_cell_forward(pre, c_prev)                      -> (h, c, gates)
    lstm_cell_backward(gates, c_prev, c, dh, dc)        -> (dpre, dc_prev)
    row_lstm_step_forward(pre, proj, c_prev)            one Row LSTM step (pixelrnn.cu) -> (h, c, gates)
    row_lstm_step_backward(gates, c_prev, c, dy, q, dc) -> (dpre, dc_prev)
    diagonal_lstm_step_forward / _backward              the same for the Diagonal LSTM (K = 2)

    with  Ho = (H + 2 ph - kh) // sh + 1,  Wo = (W + 2 pw - kw) // sw + 1.

The host code is the class ``Kernels``, written against an array module ``xp``
and a function that returns a callable kernel, so the very same code also runs
on NumPy arrays with the CPU emulator of the tests (``tests/cuda/emulator.py``):
``Kernels(numpy, emulator.load)``. The module-level functions are
``Kernels(cupy, <RawModule kernels>)``.

Importing this module never needs CuPy; asking for a kernel without it raises
an error that says how to install it.
"""
import math

import numpy as np

from . import backend
from .resources import kernel_name, kernel_source

BLOCK = 256          # threads per block of the 1-D (grid-stride) kernels
MAX_BLOCKS = 65535   # more blocks than this add nothing: each thread then loops over several items
TILE = 16            # conv2d.cu's TILE: conv2d_grad_weight runs blocks of TILE x TILE threads
GRAD_WEIGHT_BLOCKS = 256  # aim for about this many blocks, splitting the batch (see conv2d.cu)
NVRTC_OPTIONS = ("-std=c++17",)

def grid_1d(total, block=BLOCK):
    """(grid, block) for a grid-stride kernel over ``total`` items: enough blocks, but never too many."""
    return (max(1, min(math.ceil(total / block), MAX_BLOCKS)),), (block,)


def conv_output_size(size, k, s, p):
    """Positions of a window of size k, stride s, over size + 2p: (size + 2p - k) // s + 1."""
    return (size + 2 * p - k) // s + 1


class Kernels:
    """The host side of every kernel, on array module ``xp`` with kernels from ``get_function(file, name)``.

    ``get_function`` returns something called like a ``cupy.RawKernel``:
    ``kernel(grid, block, args)``, where args are arrays (passed as pointers)
    and NumPy scalars (``np.int32`` for the kernels' ``int`` parameters).
    ``name`` is an instantiation's entry point, ``kernel_name(kernel, dtype)``.
    """

    def __init__(self, xp, get_function):
        self.xp = xp
        self.get_function = get_function

    @staticmethod
    def _dtype(op, **arrays):
        """The one dtype of ``arrays`` (None entries skipped), which a kernel is compiled for."""
        given = {name: a for name, a in arrays.items() if a is not None}
        dtypes = {np.dtype(a.dtype) for a in given.values()}
        if len(dtypes) > 1:
            shown = ", ".join(f"{name} {a.dtype}" for name, a in given.items())
            raise TypeError(f"{op}: the arrays of one launch must share one dtype, got {shown}")
        (dtype,) = dtypes
        kernel_name(op, dtype)   # a dtype no kernel is compiled for fails here, before any work
        return dtype

    def _contiguous(self, *arrays):
        return tuple(self.xp.ascontiguousarray(a) for a in arrays)

    def _launch(self, file, kernel, dtype, grid, block, args):
        self.get_function(file, kernel_name(kernel, dtype))(grid, block, args)

    # --- convolution (conv2d.cu) ---------------------------------------------

    @staticmethod
    def _geometry(op, x_shape, kh, kw, sh, sw, ph, pw):
        if len(x_shape) != 4:
            raise ValueError(f"{op}: expected an input of shape (N, C, H, W), got {tuple(x_shape)}")
        if min(kh, kw, sh, sw) < 1 or min(ph, pw) < 0:
            raise ValueError(f"{op}: kernel and stride must be >= 1 and padding >= 0, got kernel ({kh}, {kw}), "
                             f"stride ({sh}, {sw}), padding ({ph}, {pw})")
        N, C, H, W = (int(d) for d in x_shape)
        Ho, Wo = conv_output_size(H, kh, sh, ph), conv_output_size(W, kw, sw, pw)
        if Ho < 1 or Wo < 1:
            raise ValueError(f"{op}: a ({kh}, {kw}) window with padding ({ph}, {pw}) does not fit the input "
                             f"{tuple(x_shape)}: output size would be ({Ho}, {Wo})")
        return N, C, H, W, Ho, Wo

    def im2col(self, x, kh, kw, sh, sw, ph, pw):
        """cols[n, c*kh*kw + i*kw + j, oh*Wo + ow] = x[n, c, oh*sh - ph + i, ow*sw - pw + j] (0 in the padding)."""
        op = "im2col"
        N, C, H, W, Ho, Wo = self._geometry(op, x.shape, kh, kw, sh, sw, ph, pw)
        dtype = self._dtype(op, x=x)
        (x,) = self._contiguous(x)
        cols = self.xp.empty((N, C * kh * kw, Ho * Wo), dtype=dtype)
        total = N * C * Ho * Wo   # one thread per (n, c, oh, ow)
        if total:
            grid, block = grid_1d(total)
            args = (x, cols) + tuple(np.int32(v) for v in (N, C, H, W, kh, kw, sh, sw, ph, pw))
            self._launch("conv2d.cu", op, dtype, grid, block, args)
        return cols

    def col2im(self, cols, x_shape, kh, kw, sh, sw, ph, pw):
        """x[n, c, h, w] = the sum of every cols entry that im2col copies x[n, c, h, w] to."""
        op = "col2im"
        N, C, H, W, Ho, Wo = self._geometry(op, x_shape, kh, kw, sh, sw, ph, pw)
        if tuple(cols.shape) != (N, C * kh * kw, Ho * Wo):
            raise ValueError(f"col2im: cols has shape {tuple(cols.shape)}, but x of shape {tuple(x_shape)} with "
                             f"kernel ({kh}, {kw}), stride ({sh}, {sw}), padding ({ph}, {pw}) needs "
                             f"{(N, C * kh * kw, Ho * Wo)}")
        dtype = self._dtype(op, cols=cols)
        (cols,) = self._contiguous(cols)
        x = self.xp.empty((N, C, H, W), dtype=dtype)
        total = N * C * H * W     # one thread per input pixel: a gather, no atomics
        if total:
            grid, block = grid_1d(total)
            args = (cols, x) + tuple(np.int32(v) for v in (N, C, H, W, kh, kw, sh, sw, ph, pw))
            self._launch("conv2d.cu", op, dtype, grid, block, args)
        return x

    def conv2d_grad_weight(self, dy, cols):
        """dw[o, r] = sum_n sum_l dy[n, o, l] * cols[n, r, l], for dy (N, O, L) and cols (N, R, L)."""
        xp, op = self.xp, "conv2d_grad_weight"
        if dy.ndim != 3 or cols.ndim != 3 or dy.shape[0] != cols.shape[0] or dy.shape[2] != cols.shape[2]:
            raise ValueError(f"conv2d_grad_weight: expected dy (N, O, L) and cols (N, R, L) with the same N and L, "
                             f"got dy {tuple(dy.shape)} and cols {tuple(cols.shape)}")
        dtype = self._dtype(op, dy=dy, cols=cols)
        N, O, L = (int(d) for d in dy.shape)
        R = int(cols.shape[1])
        if O == 0 or R == 0:
            return xp.zeros((O, R), dtype=dtype)
        dy, cols = self._contiguous(dy, cols)
        tiles_r, tiles_o = math.ceil(R / TILE), math.ceil(O / TILE)
        # Split the batch over blockIdx.z when dw alone has too few tiles to keep
        # the GPU busy. The split depends only on the shapes, so a given problem
        # is always summed in the same order.
        splits = max(1, min(N, math.ceil(GRAD_WEIGHT_BLOCKS / (tiles_r * tiles_o)), 65535))
        partial = xp.empty((splits, O, R), dtype=dtype)
        args = (dy, cols, partial) + tuple(np.int32(v) for v in (N, O, R, L))
        self._launch("conv2d.cu", op, dtype, (tiles_r, tiles_o, splits), (TILE, TILE, 1), args)
        return partial.sum(axis=0)

    # --- LSTM cell (lstm.cu) ------------------------------------------------------

    def lstm_cell_forward(self, pre, c_prev):
        """pre (N, 4H) = [i|f|g|o] pre-activations, c_prev (N, H) -> h, c (N, H) and gates (N, 4H)."""
        xp, op = self.xp, "lstm_cell_forward"
        if pre.ndim != 2 or pre.shape[1] % 4 or tuple(c_prev.shape) != (pre.shape[0], pre.shape[1] // 4):
            raise ValueError(f"lstm_cell_forward: expected pre (N, 4H) and c_prev (N, H), got pre "
                             f"{tuple(pre.shape)} and c_prev {tuple(c_prev.shape)}")
        dtype = self._dtype(op, pre=pre, c_prev=c_prev)
        N, H = int(pre.shape[0]), int(pre.shape[1]) // 4
        pre, c_prev = self._contiguous(pre, c_prev)
        h = xp.empty((N, H), dtype=dtype)
        c = xp.empty((N, H), dtype=dtype)
        gates = xp.empty((N, 4 * H), dtype=dtype)
        if N * H:
            grid, block = grid_1d(N * H)
            self._launch("lstm.cu", op, dtype, grid, block, (pre, c_prev, h, c, gates, np.int32(N), np.int32(H)))
        return h, c, gates

    def lstm_cell_backward(self, gates, c_prev, c, dh, dc):
        """Gradients of one cell step: -> dpre (N, 4H) = [di|df|dg|do], dc_prev (N, H).

        ``dh`` or ``dc`` may be None, meaning zero (no gradient reaches h or c).
        """
        xp, op = self.xp, "lstm_cell_backward"
        if gates.ndim != 2 or gates.shape[1] % 4:
            raise ValueError(f"lstm_cell_backward: expected gates (N, 4H), got {tuple(gates.shape)}")
        N, H = int(gates.shape[0]), int(gates.shape[1]) // 4
        for name, a in (("c_prev", c_prev), ("c", c), ("dh", dh), ("dc", dc)):
            if a is not None and tuple(a.shape) != (N, H):
                raise ValueError(f"lstm_cell_backward: {name} has shape {tuple(a.shape)}, but gates "
                                 f"{tuple(gates.shape)} needs ({N}, {H})")
        dtype = self._dtype(op, gates=gates, c_prev=c_prev, c=c, dh=dh, dc=dc)
        dh = xp.zeros((N, H), dtype) if dh is None else dh
        dc = xp.zeros((N, H), dtype) if dc is None else dc
        gates, c_prev, c, dh, dc = self._contiguous(gates, c_prev, c, dh, dc)
        dpre = xp.empty((N, 4 * H), dtype=dtype)
        dc_prev = xp.empty((N, H), dtype=dtype)
        if N * H:
            grid, block = grid_1d(N * H)
            self._launch("lstm.cu", op, dtype, grid, block,
                         (gates, c_prev, c, dh, dc, dpre, dc_prev, np.int32(N), np.int32(H)))
        return dpre, dc_prev

    # --- PixelRNN scan steps (pixelrnn.cu) -------------------------------------------

    def _output(self, out, k, shape, dtype):
        """(array the kernel writes, array the caller gets): out[k] itself when the kernel can write it."""
        given = None if out is None else out[k]
        if given is not None and tuple(given.shape) != shape:
            raise ValueError(f"out[{k}] has shape {tuple(given.shape)}, expected {shape}")
        if given is not None and given.dtype != dtype:
            raise TypeError(f"out[{k}] has dtype {given.dtype}, but the step computes in {dtype}")
        if given is not None and given.flags.c_contiguous:
            return given, given
        return self.xp.empty(shape, dtype=dtype), given

    @staticmethod
    def _deliver(pairs):
        """Copy each kernel result into the caller's array where they differ; return the caller's arrays."""
        results = []
        for written, given in pairs:
            if given is not None and given is not written:
                given[...] = written
            results.append(written if given is None else given)
        return tuple(results)

    @staticmethod
    def _taps(op, name, taps, N, S, K, C):
        """The (N, S, K, C) projection of one step, or None (no taps: the first step)."""
        if taps is None:
            return None
        if tuple(taps.shape) != (N, S, K, C):
            raise ValueError(f"{op}: {name} has shape {tuple(taps.shape)}, expected (N, S, K, {C}) = "
                             f"{(N, S, K, C)} for kernel size K = {K}")
        return taps

    def pixelrnn_step_forward(self, pre, proj, c_prev, kernel_size, pad, out=None):
        """One scan step: pre (N, S, 4H) = x_t, proj (N, S, K, 4H) or None, c_prev (N, S, H) -> (h, c, gates).

        pre_t[s] = x_t[s] + sum_k proj[s + k - pad, k] (zero outside the line), then the LSTM
        cell. ``proj=None`` means h_{t-1} = 0. ``out=(h, c, gates)`` writes into given arrays
        (of the inputs' dtype); ``gates`` may be ``pre`` itself (the kernel activates it in place).
        """
        xp, op = self.xp, "pixelrnn_step_forward"
        if pre.ndim != 3 or pre.shape[2] % 4 or tuple(c_prev.shape) != (*pre.shape[:2], pre.shape[2] // 4):
            raise ValueError(f"{op}: expected pre (N, S, 4H) and c_prev (N, S, H), got pre {tuple(pre.shape)} "
                             f"and c_prev {tuple(c_prev.shape)}")
        N, S, H4 = (int(d) for d in pre.shape)
        H, K = H4 // 4, int(kernel_size)
        proj = self._taps(op, "proj", proj, N, S, K, H4)
        dtype = self._dtype(op, pre=pre, proj=proj, c_prev=c_prev)
        h, h_out = self._output(out, 0, (N, S, H), dtype)
        c, c_out = self._output(out, 1, (N, S, H), dtype)
        gates, gates_out = self._output(out, 2, (N, S, H4), dtype)
        if gates is not pre:
            gates[...] = pre           # the kernel turns its pre-activations into gates in place
        taps = 0 if proj is None else K
        proj = xp.empty((0,), dtype) if proj is None else proj   # not read when taps = 0
        proj, c_prev = self._contiguous(proj, c_prev)
        if N * S * H:
            grid, block = grid_1d(N * S * H)
            self._launch("pixelrnn.cu", op, dtype, grid, block,
                         (gates, proj, c_prev, h, c) + tuple(np.int32(v) for v in (N, S, H, taps, pad)))
        return self._deliver([(h, h_out), (c, c_out), (gates, gates_out)])

    def pixelrnn_step_backward(self, gates, c_prev, c, dy, q, dc, kernel_size, pad, out=None):
        """Gradients of one scan step: -> dpre (N, S, 4H), dc_prev (N, S, H).

        dh_t[s] = dy[s] + sum_k q[s - k + pad, k], with q (N, S, K, H) = w_k^T dpre_{t+1} of the
        next step (None at the last step), then the LSTM cell backward. ``dc`` (None: zero) is
        dL/dc_t from later steps. ``out=(dpre, dc_prev)``; ``dc_prev`` may be ``dc`` itself.
        """
        xp, op = self.xp, "pixelrnn_step_backward"
        if gates.ndim != 3 or gates.shape[2] % 4:
            raise ValueError(f"{op}: expected gates (N, S, 4H), got {tuple(gates.shape)}")
        N, S, H4 = (int(d) for d in gates.shape)
        H, K = H4 // 4, int(kernel_size)
        for name, a in (("c_prev", c_prev), ("c", c), ("dy", dy)) + ((("dc", dc),) if dc is not None else ()):
            if tuple(a.shape) != (N, S, H):
                raise ValueError(f"{op}: {name} has shape {tuple(a.shape)}, but gates {tuple(gates.shape)} "
                                 f"needs {(N, S, H)}")
        q = self._taps(op, "q", q, N, S, K, H)
        dtype = self._dtype(op, gates=gates, c_prev=c_prev, c=c, dy=dy, q=q, dc=dc)
        dpre, dpre_out = self._output(out, 0, (N, S, H4), dtype)
        dc_prev, dc_prev_out = self._output(out, 1, (N, S, H), dtype)
        if dc is None:
            dc_prev[...] = 0
        elif dc_prev is not dc:
            dc_prev[...] = dc          # the kernel turns dL/dc_t into dL/dc_{t-1} in place
        taps = 0 if q is None else K
        q = xp.empty((0,), dtype) if q is None else q
        gates, c_prev, c, dy, q = self._contiguous(gates, c_prev, c, dy, q)
        if N * S * H:
            grid, block = grid_1d(N * S * H)
            self._launch("pixelrnn.cu", op, dtype, grid, block,
                         (gates, c_prev, c, dy, q, dc_prev, dpre) + tuple(np.int32(v) for v in (N, S, H, taps, pad)))
        return self._deliver([(dpre, dpre_out), (dc_prev, dc_prev_out)])


# The two scans' state-to-state convolutions: (kernel size K, left zero padding).
ROW_LSTM_KERNEL = (3, 1)        # h_{r-1}[w - 1], h_{r-1}[w], h_{r-1}[w + 1] along the previous row
DIAGONAL_LSTM_KERNEL = (2, 1)   # h_{t-1}[r - 1], h_{t-1}[r] down the previous column (zero at the top)


# --- the GPU: CuPy RawModules, compiled once per (file, device) ------------------------

_modules = {}   # (file, device id) -> cupy.RawModule
_gpu = None


def _cupy():
    try:
        import cupy
    except Exception as error:  # ImportError, or a CuPy whose CUDA libraries are missing
        raise RuntimeError(f"tinygen's CUDA kernels need CuPy, which could not be imported ({error}): "
                           f"{backend._INSTALL_HINT}") from None
    return cupy


def get_function(file, name):
    """Kernel ``name`` of ``kernels/<file>``, compiled for the current device (cached)."""
    cp = _cupy()
    key = (file, cp.cuda.Device().id)
    module = _modules.get(key)
    if module is None:
        module = cp.RawModule(code=kernel_source(file), options=NVRTC_OPTIONS)
        _modules[key] = module
    return module.get_function(name)


def _device_kernels():
    global _gpu
    if _gpu is None:
        _gpu = Kernels(_cupy(), get_function)
    return _gpu


def im2col(x, kh, kw, sh, sw, ph, pw):
    """x (N, C, H, W) on the GPU -> cols (N, C*kh*kw, Ho*Wo); see ``Kernels.im2col``."""
    return _device_kernels().im2col(x, kh, kw, sh, sw, ph, pw)


def col2im(cols, x_shape, kh, kw, sh, sw, ph, pw):
    """cols (N, C*kh*kw, Ho*Wo) on the GPU -> x of shape ``x_shape``; see ``Kernels.col2im``."""
    return _device_kernels().col2im(cols, x_shape, kh, kw, sh, sw, ph, pw)


def conv2d_grad_weight(dy, cols):
    """dy (N, O, L), cols (N, R, L) on the GPU -> dw (O, R); see ``Kernels.conv2d_grad_weight``."""
    return _device_kernels().conv2d_grad_weight(dy, cols)


def lstm_cell_forward(pre, c_prev):
    """pre (N, 4H), c_prev (N, H) on the GPU -> (h, c, gates); see ``Kernels.lstm_cell_forward``."""
    return _device_kernels().lstm_cell_forward(pre, c_prev)


def lstm_cell_backward(gates, c_prev, c, dh, dc):
    """-> (dpre, dc_prev) on the GPU; see ``Kernels.lstm_cell_backward``."""
    return _device_kernels().lstm_cell_backward(gates, c_prev, c, dh, dc)


def row_lstm_step_forward(pre, proj, c_prev, out=None):
    """One Row LSTM step on the GPU: pre (N, W, 4h), proj (N, W, 3, 4h) or None, c_prev (N, W, h)
    -> (h, c, gates); see ``Kernels.pixelrnn_step_forward``."""
    return _device_kernels().pixelrnn_step_forward(pre, proj, c_prev, *ROW_LSTM_KERNEL, out=out)


def row_lstm_step_backward(gates, c_prev, c, dy, q, dc, out=None):
    """-> (dpre, dc_prev) of one Row LSTM step on the GPU; see ``Kernels.pixelrnn_step_backward``."""
    return _device_kernels().pixelrnn_step_backward(gates, c_prev, c, dy, q, dc, *ROW_LSTM_KERNEL, out=out)


def diagonal_lstm_step_forward(pre, proj, c_prev, out=None):
    """One Diagonal LSTM step on the GPU: pre (N, R, 4h), proj (N, R, 2, 4h) or None, c_prev (N, R, h)
    -> (h, c, gates); see ``Kernels.pixelrnn_step_forward``."""
    return _device_kernels().pixelrnn_step_forward(pre, proj, c_prev, *DIAGONAL_LSTM_KERNEL, out=out)


def diagonal_lstm_step_backward(gates, c_prev, c, dy, q, dc, out=None):
    """-> (dpre, dc_prev) of one Diagonal LSTM step on the GPU; see ``Kernels.pixelrnn_step_backward``."""
    return _device_kernels().pixelrnn_step_backward(gates, c_prev, c, dy, q, dc, *DIAGONAL_LSTM_KERNEL, out=out)
