"""Recurrent scans: a whole LSTM sequence as one op.

The LSTM (Hochreiter & Schmidhuber; PyTorch's gate order i, f, g, o). With x (T, N, I),
w_ih (4H, I), w_hh (4H, H), b = b_ih + b_hh (4H,), for t = 1 .. T:

    pre_t = x_t w_ih^T + b + h_{t-1} w_hh^T          (N, 4H) = [a_i | a_f | a_g | a_o]
    i_t = sigmoid(a_i)   f_t = sigmoid(a_f)   g_t = tanh(a_g)   o_t = sigmoid(a_o)
    c_t = f_t * c_{t-1} + i_t * g_t                  the cell: a gated running sum
    h_t = o_t * tanh(c_t)                            y = [h_1, ..., h_T]   (T, N, H)

The op returns (y, h_T, c_T). Written as ordinary Tensor ops this would be ~15 graph
nodes per step; here it is ONE ``Function`` whose forward is a loop over t on plain
arrays and whose backward is backpropagation through time (BPTT) on plain arrays.

Forward. x_t w_ih^T does not depend on the recurrence, so it is one matmul over all
T N rows before the loop; inside the loop only h_{t-1} w_hh^T remains. The three
sigmoids and the tanh are one tanh over all 4H columns, using
sigmoid(a) = (1 + tanh(a/2)) / 2 (which never overflows):

    gates = s * tanh(s * pre) + (1 - s),      s = 1/2 on the i, f, o columns, 1 on g.

Backward (BPTT). With dh_t = dL/dh_t and dc_t = dL/dc_t collected from later steps,
going t = T .. 1 (dh_T also gets dL/dh_T, dc_T gets dL/dc_T):

    dh_t  = dy_t + dpre_{t+1} w_hh                   (through h_t's use in pre_{t+1})
    dc_t += dh_t * o_t * (1 - tanh(c_t)^2)           (through h_t = o_t tanh(c_t))
    do = dh_t tanh(c_t)   di = dc_t g_t   df = dc_t c_{t-1}   dg = dc_t i_t
    dpre_t = [di, df, dg, do] * (gate - lo) * (1 - gate)
             (lo = 0 for a sigmoid, -1 for tanh: s (1 - s) and (1 + g)(1 - g) = 1 - g^2)
    dc_{t-1} = dc_t f_t

and, with the dpre_t of all steps stacked into D (T N, 4H):

    dx = D w_ih    dw_ih = D^T X    dw_hh = D^T [h_0 .. h_{T-1}]    db_ih = db_hh = sum of D's rows
    dh_0 = dpre_1 w_hh    dc_0 = dc_1 f_1

so only dpre_t w_hh (needed by the next step) is a matmul inside the loop. The per-step
cell math is ``_cell_forward`` / ``_cell_backward``; on a GPU they call tinygen's CUDA
kernels (``tinygen.cuda``), on the CPU they are a handful of in-place NumPy ufuncs.

Because backward works on arrays, its gradients carry no graph: a second derivative
through this op raises an error (WGAN-GP never differentiates through an LSTM).
"""
import threading

import numpy as np

from ..autograd.function import Function
from ..autograd.grad_mode import is_grad_enabled
from ..autograd.tensor import Tensor
from ..backend import get_array_module
from ._base import as_tensor


# --- one step of the cell, on arrays ----------------------------------------

class _Workspace:
    """Constants and scratch arrays of the NumPy cell for one (N, H, dtype), made once per scan.

    The per-column constants are stored as full (N, 4H) arrays: NumPy runs a same-shape
    ufunc in one contiguous loop, but a (4H,) row broadcast over N rows as N short loops.
    """

    def __init__(self, xp, N, H, dtype):
        s = xp.full(4 * H, 0.5, dtype=dtype)   # s: 1/2 on the sigmoid gates i, f, o; 1 on g
        s[2 * H:3 * H] = 1
        self.s = xp.ascontiguousarray(xp.broadcast_to(s, (N, 4 * H)))
        self.shift = 1 - self.s                # gates = s tanh(s pre) + (1 - s)
        self.lo = 1 - 2 * self.s               # each activation's lower bound: 0, or -1 for tanh
        self.tmp = xp.empty((N, 4 * H), dtype)
        self.tmp_h = xp.empty((N, H), dtype)


def _cell_forward(pre, c_prev, out=None, ws=None):
    """pre (N, 4H), c_{t-1} (N, H) -> (h_t, c_t, gates) with gates = activated [i, f, g, o].

    ``out=(h, c, gates)`` writes into given arrays; on the CPU ``gates`` may be ``pre``
    itself (the scan activates its buffer in place). ``ws``: a ``_Workspace`` to reuse.
    """
    xp = get_array_module(pre)
    if xp is not np:  # the GPU: one fused kernel per step
        from .. import cuda
        return _into(out, cuda.lstm_cell_forward(pre, c_prev))
    N, H = c_prev.shape
    if ws is None:
        ws = _Workspace(xp, N, H, pre.dtype)
    if out is None:
        out = (xp.empty((N, H), pre.dtype), xp.empty((N, H), pre.dtype), xp.empty_like(pre))
    h, c, gates = out
    # gates = s tanh(s pre) + (1 - s): three sigmoids and a tanh in one pass of tanh
    xp.multiply(pre, ws.s, out=gates)
    xp.tanh(gates, out=gates)
    gates *= ws.s
    gates += ws.shift
    i, f, g, o = gates[:, :H], gates[:, H:2 * H], gates[:, 2 * H:3 * H], gates[:, 3 * H:]
    xp.multiply(f, c_prev, out=c)     # c = f c_prev + i g  (h is scratch for i g)
    xp.multiply(i, g, out=h)
    c += h
    xp.tanh(c, out=h)                 # h = o tanh(c)
    h *= o
    return h, c, gates


def _cell_backward(gates, c_prev, c, dh, dc, out=None, ws=None):
    """(dL/dh_t, dL/dc_t from later steps) -> (dL/dpre_t (N, 4H), dL/dc_{t-1} (N, H)).

    ``gates`` are the activated [i, f, g, o] of step t; ``c_prev``, ``c`` the cells
    c_{t-1}, c_t. ``out=(dpre, dc_prev)`` writes into given arrays; ``dc_prev`` may be
    ``dc`` itself (the scan carries one buffer backwards). ``ws``: a ``_Workspace`` to reuse.
    """
    xp = get_array_module(gates)
    if xp is not np:
        from .. import cuda
        return _into(out, cuda.lstm_cell_backward(gates, c_prev, c, dh, dc))
    N, H = c.shape
    if ws is None:
        ws = _Workspace(xp, N, H, gates.dtype)
    if out is None:
        out = (xp.empty_like(gates), xp.empty_like(c))
    dpre, dc_prev = out
    i, f, g, o = gates[:, :H], gates[:, H:2 * H], gates[:, 2 * H:3 * H], gates[:, 3 * H:]
    di, df, dg, do = dpre[:, :H], dpre[:, H:2 * H], dpre[:, 2 * H:3 * H], dpre[:, 3 * H:]
    tc = xp.tanh(c, out=ws.tmp_h)
    xp.multiply(dh, tc, out=do)       # h = o tanh(c):  dL/do = dh tanh(c)
    tc *= tc                          # dL/dc = dc + dh o (1 - tanh(c)^2)
    xp.subtract(1, tc, out=tc)
    tc *= o
    tc *= dh
    dct = xp.add(tc, dc, out=tc)
    xp.multiply(dct, g, out=di)       # c = f c_prev + i g
    xp.multiply(dct, c_prev, out=df)
    xp.multiply(dct, i, out=dg)
    xp.multiply(dct, f, out=dc_prev)
    # through the activations, all four at once: (gate - lo) (1 - gate), which is
    # s (1 - s) for a sigmoid s and (1 + g)(1 - g) = 1 - g^2 for g = tanh
    dpre *= xp.subtract(gates, ws.lo, out=ws.tmp)
    dpre *= xp.subtract(1, gates, out=ws.tmp)
    return dpre, dc_prev


def _into(out, results):
    """Copy a kernel's results into the arrays of ``out`` (when given)."""
    if out is None:
        return results
    for dst, src in zip(out, results):
        if dst is not src:
            dst[...] = src
    return out


# --- the scan ------------------------------------------------------------------

class _Recycler:
    """A few big NumPy arrays kept for reuse by later scans.

    A fresh array of some megabytes costs a page fault per 4 KiB page when it is first
    written (the C allocator gives big blocks back to the OS when they are freed): for a
    small scan that is about a fifth of its time. The scan hands back only arrays that
    nothing else can see: the gates and cells once the graph walk has released the op, the
    dpre stack at the end of backward; never ``hs``, whose view is the output y. (CuPy keeps
    a memory pool of its own, so GPU arrays are not kept here.)
    """

    def __init__(self, capacity=6):
        self.capacity = capacity
        self.free = []
        self.lock = threading.Lock()  # two threads must never get the same array

    def empty(self, xp, shape, dtype):
        if xp is np:
            with self.lock:
                for k, a in enumerate(self.free):
                    if a.shape == shape and a.dtype == dtype:
                        return self.free.pop(k)
        return xp.empty(shape, dtype)

    def give(self, *arrays):
        with self.lock:
            self.free += [a for a in arrays if isinstance(a, np.ndarray)]
            del self.free[:-self.capacity]


_recycler = _Recycler()


class LSTMScan(Function):
    """(x, h0, c0, w_ih, w_hh, *biases) -> (y, h_T, c_T); ``biases``: none, one or both of b_ih, b_hh."""

    def forward(self, x, h0, c0, w_ih, w_hh, *biases):
        xp = get_array_module(x)
        T, N, I = x.shape
        H = w_hh.shape[1]
        dtype = np.result_type(x, h0, c0, w_ih, w_hh, *biases)
        ws = _Workspace(xp, N, H, dtype) if xp is np else None
        # the input projection of every step in one matmul; the buffer becomes the gates
        G = _recycler.empty(xp, (T, N, 4 * H), dtype)
        xp.matmul(x.reshape(T * N, I), w_ih.T, out=G.reshape(T * N, 4 * H))
        if biases:
            G += sum(biases)
        hs = xp.empty((T + 1, N, H), dtype)  # hs[t] = h_t, hs[0] = h_0: y and backward's h_{t-1}
        cs = _recycler.empty(xp, (T + 1, N, H), dtype)
        hs[0], cs[0] = h0, c0
        w_hh_t = xp.ascontiguousarray(w_hh.T, dtype=dtype)  # a copy: BLAS is a bit faster on it
        rec = xp.empty((N, 4 * H), dtype)
        for t in range(T):
            xp.matmul(hs[t], w_hh_t, out=rec)
            G[t] += rec
            _cell_forward(G[t], cs[t], out=(hs[t + 1], cs[t + 1], G[t]), ws=ws)
        self.x, self.w_ih, self.w_hh = x, w_ih, w_hh
        self.gates, self.hs, self.cs, self.ws = G, hs, cs, ws
        # y is a view of the saved h buffer (no copy); h_T and c_T are copies, so that the
        # three outputs never share memory
        return hs[1:], hs[T].copy(), cs[T].copy()

    def backward(self, gy, gh, gc):
        if is_grad_enabled():
            raise RuntimeError(
                "lstm: the fused LSTM scan does not support second derivatives (create_graph=True): "
                "its backward (backpropagation through time) runs on arrays, not Tensor ops, so its "
                "gradients have no graph; build the recurrence from F.matmul/F.sigmoid/F.tanh steps "
                "if you need to differentiate through the gradient")
        xp = get_array_module(self.gates)
        G, hs, cs, w_hh = self.gates, self.hs, self.cs, self.w_hh
        T, N, H4 = G.shape
        H = H4 // 4
        need = self.needs_input_grad
        gy = gy.data
        D = _recycler.empty(xp, G.shape, G.dtype)    # dpre_t of every step
        dh = xp.empty((N, H), G.dtype)
        dh_rec = xp.array(gh.data, dtype=G.dtype)     # dL/dh_t from later steps (dL/dh_T to start)
        dc = xp.array(gc.data, dtype=G.dtype)         # dL/dc_t, carried back in place
        for t in range(T - 1, -1, -1):
            xp.add(gy[t], dh_rec, out=dh)
            _cell_backward(G[t], cs[t], cs[t + 1], dh, dc, out=(D[t], dc), ws=self.ws)
            if t > 0 or need[1]:
                xp.matmul(D[t], w_hh, out=dh_rec)
        # the weights' gradients: one matmul each over all T N rows
        D2 = D.reshape(T * N, H4)
        grads = [
            (D2 @ self.w_ih).reshape(self.x.shape) if need[0] else None,
            dh_rec if need[1] else None,
            dc if need[2] else None,
            D2.T @ self.x.reshape(T * N, self.x.shape[2]) if need[3] else None,
            D2.T @ hs[:-1].reshape(T * N, H) if need[4] else None,
        ]
        if any(need[5:]):  # both biases enter pre_t the same way: the same gradient
            db = D2.sum(axis=0)
            grads += [db if n else None for n in need[5:]]
        else:
            grads += [None] * len(need[5:])
        _recycler.give(D)
        return tuple(None if g is None else Tensor._make(g) for g in grads)

    def _release(self):
        # the graph walk is done with this op (and keeps no graph): G and cs are free again
        _recycler.give(self.__dict__.get("gates"), self.__dict__.get("cs"))
        super()._release()


def _shape(t):
    return tuple(t.shape)


def lstm(x, h0, c0, w_ih, w_hh, b_ih=None, b_hh=None):
    """Run an LSTM over a sequence: x (T, N, I) -> (y (T, N, H), (h_T, c_T)).

    h0, c0 (N, H) are the initial state (None: zeros); w_ih (4H, I), w_hh (4H, H) and the
    optional biases (4H,) hold the gates in PyTorch's order i, f, g, o. One fused op;
    its gradients are exact, but it cannot be differentiated twice.
    """
    x, h0, c0, w_ih, w_hh, b_ih, b_hh = (None if v is None else as_tensor(v)
                                        for v in (x, h0, c0, w_ih, w_hh, b_ih, b_hh))
    if x.ndim != 3:
        raise ValueError(f"lstm: input must be 3-D (T, N, I), got shape {_shape(x)}")
    if w_hh.ndim != 2 or w_hh.shape[0] != 4 * w_hh.shape[1]:
        raise ValueError(f"lstm: w_hh must have shape (4H, H), got {_shape(w_hh)}")
    T, N, I = x.shape
    H = w_hh.shape[1]
    if w_ih.ndim != 2 or w_ih.shape[0] != 4 * H:
        raise ValueError(f"lstm: w_ih must have shape (4H, I) = ({4 * H}, I) for hidden size H = {H} "
                         f"(w_hh {_shape(w_hh)}), got {_shape(w_ih)}")
    if w_ih.shape[1] != I:
        raise ValueError(f"lstm: input has {I} features but w_ih expects {w_ih.shape[1]} "
                         f"(input {_shape(x)}, w_ih {_shape(w_ih)})")
    xp = get_array_module(x.data)
    state = []
    for name, s in (("h0", h0), ("c0", c0)):
        if s is None:
            s = Tensor._make(xp.zeros((N, H), dtype=x.dtype))
        elif _shape(s) != (N, H):
            raise ValueError(f"lstm: {name} has shape {_shape(s)}, expected (N, H) = {(N, H)} "
                             f"for input {_shape(x)} and w_hh {_shape(w_hh)}")
        state.append(s)
    biases = []
    for name, b in (("b_ih", b_ih), ("b_hh", b_hh)):
        if b is not None:
            if _shape(b) != (4 * H,):
                raise ValueError(f"lstm: {name} has shape {_shape(b)}, expected (4H,) = ({4 * H},) "
                                 f"for hidden size H = {H}")
            biases.append(b)
    y, h, c = LSTMScan.apply(x, *state, w_ih, w_hh, *biases)
    return y, (h, c)
