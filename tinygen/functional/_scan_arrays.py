"""The recurrent scans on plain arrays: the LSTM cell's forward and backward, their scratch
buffers, and the PixelRNN scan loops. ``recurrent.py`` and ``pixel_scans.py`` hold the ops
and their equations (the same symbols); this file is what makes them run without a Python
loop per pixel.
"""
import threading

import numpy as np

from ..backend import get_array_module
from ._numpy_blas import add_product


# --- one step of the cell, on arrays ----------------------------------------

class _Workspace:
    """Constants and scratch arrays of the NumPy cell for one (N, H, dtype), made once per scan.

    The per-column constants are stored as full arrays of the gates' shape: NumPy runs a
    same-shape ufunc in one contiguous loop, but a (4H,) row broadcast over N rows as N
    short loops. ``gate_rows``: the PixelRNN scans' layout, gates (4H, N) with each gate a
    block of H whole rows, so that i, f, g and o are contiguous (as columns of (N, 4H), a
    product of two gates runs N loops of H numbers: 13x slower at (1792, 16), measured).
    """

    def __init__(self, xp, N, H, dtype, gate_rows=False):
        s = xp.full(4 * H, 0.5, dtype=dtype)   # s: 1/2 on the sigmoid gates i, f, o; 1 on g
        s[2 * H:3 * H] = 1
        shape = (4 * H, N) if gate_rows else (N, 4 * H)
        self.s = xp.ascontiguousarray(xp.broadcast_to(s[:, None] if gate_rows else s, shape))
        self.shift = 1 - self.s                # gates = s tanh(s pre) + (1 - s)
        self.lo = 1 - 2 * self.s               # each activation's lower bound: 0, or -1 for tanh
        self.tmp = xp.empty(shape, dtype)
        self.tmp_h = xp.empty((H, N) if gate_rows else (N, H), dtype)
        self.gate_rows = gate_rows


def _split_gates(a, H, gate_rows):
    """The blocks [i, f, g, o] of a: H columns each of (N, 4H), or H rows each of (4H, N)."""
    if gate_rows:
        return a[:H], a[H:2 * H], a[2 * H:3 * H], a[3 * H:]
    return a[:, :H], a[:, H:2 * H], a[:, 2 * H:3 * H], a[:, 3 * H:]


def _cell_forward(pre, c_prev, out=None, ws=None):
    """pre (N, 4H), c_{t-1} (N, H) -> (h_t, c_t, gates) with gates = activated [i, f, g, o].

    ``out=(h, c, gates)`` writes into given arrays; on the CPU ``gates`` may be ``pre``
    itself (the scan activates its buffer in place). ``ws``: a ``_Workspace`` to reuse; one
    made with ``gate_rows`` takes every array transposed (pre (4H, N), c_{t-1} (H, N)).
    """
    xp = get_array_module(pre)
    if xp is not np:  # the GPU: one fused kernel per step
        from .. import cuda
        return _into(out, cuda.lstm_cell_forward(pre, c_prev))
    rows = ws is not None and ws.gate_rows
    H = c_prev.shape[0] if rows else c_prev.shape[1]
    if ws is None:
        ws = _Workspace(xp, c_prev.shape[0], H, pre.dtype)
    if out is None:
        out = (xp.empty_like(c_prev), xp.empty_like(c_prev), xp.empty_like(pre))
    h, c, gates = out
    # gates = s tanh(s pre) + (1 - s): three sigmoids and a tanh in one pass of tanh
    xp.multiply(pre, ws.s, out=gates)
    xp.tanh(gates, out=gates)
    gates *= ws.s
    gates += ws.shift
    i, f, g, o = _split_gates(gates, H, rows)
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
    ``dc`` itself (the scan carries one buffer backwards). ``ws``: a ``_Workspace`` to reuse
    (with ``gate_rows``: every array transposed, as for ``_cell_forward``).
    """
    xp = get_array_module(gates)
    if xp is not np:
        from .. import cuda
        return _into(out, cuda.lstm_cell_backward(gates, c_prev, c, dh, dc))
    rows = ws is not None and ws.gate_rows
    H = c.shape[0] if rows else c.shape[1]
    if ws is None:
        ws = _Workspace(xp, c.shape[0], H, gates.dtype)
    if out is None:
        out = (xp.empty_like(gates), xp.empty_like(c))
    dpre, dc_prev = out
    i, f, g, o = _split_gates(gates, H, rows)
    di, df, dg, do = _split_gates(dpre, H, rows)
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


# --- the PixelRNN scans ------------------------------------------------------------------
#
# Two layouts of the same arrays, t the scan's step, s the position along the line:
#   gate rows (T, C, N, S)   the NumPy cell: a step's gates are (4h, N S), each gate a block of
#                            whole rows (``_Workspace``), and each matmul is w (4h, K h) @ an
#                            im2col of the line (K h, N S)
#   lines     (T, N, S, C)   the GPU step kernels (``kernels/pixelrnn.cu``): a step is a plain
#                            (N S, 4h) cell

def _overlap(S, d):
    """(positions s, positions s + d) along a line of S where both lie on it, or None."""
    if abs(d) >= S:
        return None
    return (slice(0, S - d), slice(d, S)) if d >= 0 else (slice(-d, S), slice(0, S + d))


def _along(ndim, axis, where):
    """The index that takes ``where`` along ``axis`` and everything along the other axes."""
    index = [slice(None)] * ndim
    index[axis] = where
    return tuple(index)


def _add_shifted(dst, src, d, axis=-1):
    """dst[.., s, ..] += src[.., s + d, ..] along ``axis`` wherever 0 <= s + d < S (zero padding elsewhere)."""
    both = _overlap(dst.shape[axis], d)
    if both is not None:
        dst[_along(dst.ndim, axis, both[0])] += src[_along(src.ndim, axis, both[1])]


def _copy_shifted(dst, src, d, axis=-1):
    """dst[.., s, ..] = src[.., s + d, ..] along ``axis`` wherever 0 <= s + d < S; the rest of dst is left as it is."""
    both = _overlap(dst.shape[axis], d)
    if both is not None:
        dst[_along(dst.ndim, axis, both[0])] = src[_along(src.ndim, axis, both[1])]


def _scan_forward(G, w_ss, pad, step=None):
    """Run the scan over G, which holds x_t + b on entry and the gates on exit: (T, 4h, N, S) in
    gate rows for the NumPy cell, or (T, N, S, 4h) in lines for ``step``, a GPU step function
    (``tinygen.cuda.row_lstm_step_forward`` or its like).

    Returns hs, cs (T + 1, h, N, S) (lines: (T + 1, N, S, h)) with hs[0] = cs[0] = 0 and hs[t + 1] = h_t.
    """
    if step is not None:
        return _scan_forward_kernels(G, w_ss, step)
    xp = get_array_module(G)
    T, H4, N, S = G.shape
    H, K, M = H4 // 4, w_ss.shape[2], N * S
    hs = xp.empty((T + 1, H, N, S), G.dtype)
    cs = _recycler.empty(xp, (T + 1, H, N, S), G.dtype)
    hs[0], cs[0] = 0, 0
    # hcol[k, c, n, s] = h_{t-1}[c, n, s + k - pad], zero off the line (those entries are never written):
    # an im2col of the line, so that one GEMM adds sum_k w_k h_{t-1}[s + k - pad] to pre_t
    hcol = xp.zeros((K, H, N, S), G.dtype)
    w_col = xp.ascontiguousarray(w_ss.transpose(0, 2, 1).reshape(H4, K * H), dtype=G.dtype)  # [o, (k, c)]
    ws = _Workspace(xp, M, H, G.dtype, gate_rows=True)
    for t in range(T):
        g = G[t].reshape(H4, M)
        if t > 0:   # h_{-1} = 0: the first step has no state-to-state term
            for k in range(K):
                _copy_shifted(hcol[k], hs[t], k - pad)
            add_product(g, w_col, hcol.reshape(K * H, M))
        _cell_forward(g, cs[t].reshape(H, M), out=(hs[t + 1].reshape(H, M), cs[t + 1].reshape(H, M), g), ws=ws)
    return hs, cs


def _scan_forward_kernels(G, w_ss, step):
    """The forward scan on a GPU, in lines: P = h_{t-1} @ [w_0^T | .. | w_{K-1}^T] per step, whose
    shifted sums the step kernel adds into pre_t as it activates the cell."""
    xp = get_array_module(G)
    T, N, S, H4 = G.shape
    H, K = H4 // 4, w_ss.shape[2]
    hs = xp.empty((T + 1, N, S, H), G.dtype)
    cs = _recycler.empty(xp, (T + 1, N, S, H), G.dtype)
    hs[0], cs[0] = 0, 0
    # w_taps[c, k*4h + o] = w_ss[o, c, k]: every tap's product with h_{t-1} in one matmul
    w_taps = xp.ascontiguousarray(w_ss.transpose(1, 2, 0).reshape(H, K * H4), dtype=G.dtype)
    P = xp.empty((N, S, K, H4), G.dtype)
    for t in range(T):
        if t > 0:
            xp.matmul(hs[t].reshape(N * S, H), w_taps, out=P.reshape(N * S, K * H4))
        step(G[t], P if t > 0 else None, cs[t], out=(hs[t + 1], cs[t + 1], G[t]))
    return hs, cs


def _scan_backward(G, cs, w_ss, gy, pad, step=None):
    """BPTT: gates G, cells cs, output gradient gy -> dpre, in gate rows ((T, 4h, N, S), gy (T, h, N, S))
    for the NumPy cell, in lines for ``step``, a GPU step function."""
    if step is not None:
        return _scan_backward_kernels(G, cs, w_ss, gy, step)
    xp = get_array_module(G)
    T, H4, N, S = G.shape
    H, K, M = H4 // 4, w_ss.shape[2], N * S
    D = _recycler.empty(xp, G.shape, G.dtype)
    dc = xp.zeros((H, M), G.dtype)              # dL/dc_t, carried back in place
    dh = xp.empty((H, N, S), G.dtype)
    Q = xp.empty((K, H, N, S), G.dtype)         # Q[k] = w_k^T dpre_{t+1}, from the step after this one
    # w_back[(k, c), o] = w_ss[o, c, k]: every tap's Q in one matmul
    w_back = xp.ascontiguousarray(w_ss.transpose(2, 1, 0).reshape(K * H, H4), dtype=G.dtype)
    ws = _Workspace(xp, M, H, G.dtype, gate_rows=True)
    for t in range(T - 1, -1, -1):
        dh[...] = gy[t]
        if t < T - 1:
            for k in range(K):
                _add_shifted(dh, Q[k], pad - k)  # h_t[s] fed pre_{t+1}[s - k + pad]
        _cell_backward(G[t].reshape(H4, M), cs[t].reshape(H, M), cs[t + 1].reshape(H, M), dh.reshape(H, M), dc,
                       out=(D[t].reshape(H4, M), dc), ws=ws)
        if t > 0:
            xp.matmul(w_back, D[t].reshape(H4, M), out=Q.reshape(K * H, M))
    return D


def _scan_backward_kernels(G, cs, w_ss, gy, step):
    """BPTT on a GPU, in lines: G (T, N, S, 4h), gy (T, N, S, h) -> dpre (T, N, S, 4h)."""
    xp = get_array_module(G)
    T, N, S, H4 = G.shape
    H, K = H4 // 4, w_ss.shape[2]
    D = _recycler.empty(xp, G.shape, G.dtype)
    dc = xp.zeros((N, S, H), G.dtype)
    Q = xp.empty((N, S, K, H), G.dtype)
    # w_back[o, k*h + c] = w_ss[o, c, k]: Q[s, k] = w_k^T dpre[s] for every tap in one matmul
    w_back = xp.ascontiguousarray(w_ss.transpose(0, 2, 1).reshape(H4, K * H), dtype=G.dtype)
    for t in range(T - 1, -1, -1):
        step(G[t], cs[t], cs[t + 1], gy[t], Q if t < T - 1 else None, dc, out=(D[t], dc))
        if t > 0:
            xp.matmul(D[t].reshape(N * S, H4), w_back, out=Q.reshape(N * S, K * H))
    return D


def _weight_grad(D, hs, K, pad, gate_rows=True):
    """dw_ss[o, c, k] = sum over t, n, s of dpre_t[o, n, s] h_{t-1}[c, n, s + k - pad]: matmuls on an
    im2col of h, for D and hs in gate rows (or, ``gate_rows=False``, in lines)."""
    xp = get_array_module(D)
    H4 = D.shape[1] if gate_rows else D.shape[3]
    H, T = H4 // 4, D.shape[0]
    if gate_rows:
        cols = xp.zeros((T, K) + hs.shape[1:], D.dtype)   # cols[t, k, c, n, s] = h_{t-1}[c, n, s + k - pad]
        for k in range(K):
            _copy_shifted(cols[:, k], hs[:-1], k - pad)
        # one product per step, summed: D[t] (4h, N S) @ cols[t]^T (N S, K h)
        dw = xp.matmul(D.reshape(T, H4, -1), cols.reshape(T, K * H, -1).transpose(0, 2, 1)).sum(axis=0)
    else:
        cols = xp.zeros(D.shape[:3] + (K, H), D.dtype)     # cols[t, n, s, k] = h_{t-1}[n, s + k - pad]
        for k in range(K):
            _copy_shifted(cols[:, :, :, k], hs[:-1], k - pad, axis=-2)
        dw = D.reshape(-1, H4).T @ cols.reshape(-1, K * H)
    return dw.reshape(H4, K, H).transpose(0, 2, 1)
