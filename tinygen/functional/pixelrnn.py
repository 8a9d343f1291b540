"""The PixelRNN scans (van den Oord et al. 2016): Row LSTM and Diagonal LSTM, and skew/unskew.

Both layers are LSTMs (gate order i, f, g, o, as ``F.lstm``) that run over an image
one line at a time. Their input-to-state part is computed beforehand by the model for
the whole image at once (a masked convolution), so each op takes

    x_proj (N, 4h, R, W)     input-to-state pre-activations, channels [a_i | a_f | a_g | a_o]
    w_ss   (4h, h, K)        the state-to-state 1-D convolution
    b_ss   (4h,) or None

and returns the hidden states h (N, h, R, W). The state-to-state part is a
convolution along the line just computed; with h_{-1} = c_{-1} = 0:

Row LSTM (``row_lstm``, K = 3). The scan runs over the rows r = 0 .. R-1; row r sees
the whole previous row through a 1 x 3 kernel (padding 1, unmasked):

    pre_r[:, :, w] = x_proj[:, :, r, w] + b_ss
                     + sum_k w_ss[:, :, k] @ h_{r-1}[:, :, w + k - 1]      (0 outside 0 .. W-1)

Diagonal LSTM (``diagonal_lstm``, K = 2). x_proj is computed on the SKEWED image
(``skew``: row r shifted right by r, so each diagonal of the image is a column), and
the scan runs over its columns t = 0 .. Ws-1. Column t sees the previous column at
rows r - 1 and r, with zero padding at the TOP (padding at the bottom would let a
pixel see the row below it, i.e. the future):

    pre_t[:, :, r] = x_proj[:, :, r, t] + b_ss
                     + w_ss[:, :, 0] @ h_{t-1}[:, :, r - 1] + w_ss[:, :, 1] @ h_{t-1}[:, :, r]
                     (h_{t-1}[:, :, -1] = 0)

Both are one scan: steps t = 0 .. T-1 over lines of S positions, with a state-to-state
convolution of K taps and a left padding of 1:

    pre_t[s] = x_t[s] + b_ss + sum_k w_k h_{t-1}[s + k - 1]          w_k = w_ss[:, :, k]
    i, f, o = sigmoid(pre_t)   g = tanh(pre_t)   c_t = f c_{t-1} + i g   h_t = o tanh(c_t)

             scan axis t      line axis s      K
    row       the rows R       the width W      3
    diagonal  the columns Ws   the rows R       2

Internally the arrays are laid out (T, N, S, channels), so each step is a plain
(N S, 4h) LSTM cell (the ``F.lstm`` cell functions on the CPU, ``kernels/pixelrnn.cu``
on a GPU) and the convolution is ONE matmul per step plus K shifted additions:

    P = h_{t-1} (N S, h) @ [w_0^T | .. | w_{K-1}^T] (h, K 4h)   P[s', k] = w_k h_{t-1}[s']
    pre_t[s] += P[s + k - 1, k]                                   for each tap k

Backward (backpropagation through time, inside the op, on arrays). h_t reaches the
loss through the output (dy_t) and through pre_{t+1}: h_t[s'] enters pre_{t+1}[s' - k + 1]
through w_k. Going t = T-1 .. 0, with Q[s'', k] = w_k^T dpre_{t+1}[s''] (one matmul):

    dh_t[s]  = dy_t[s] + sum_k Q[s - k + 1, k]
    dpre_t, dc_{t-1} = the LSTM cell backward (see ``F.lstm``)

and after the scan, with every dpre_t stacked:

    dx_proj = dpre (back in the input layout)      db_ss = sum of dpre over t, n, s
    dw_k    = sum over t, n, s of dpre_t[s] h_{t-1}[s + k - 1]^T    (one matmul on an im2col of h)

Because backward works on arrays, its gradients carry no graph: a second derivative
through these ops raises an error (as for ``F.lstm``).

skew / unskew are ordinary differentiable ops, each the other's backward:

    skew(x)[..., r, r + j] = x[..., r, j]       (N, C, H, W) -> (N, C, H, W + H - 1), zeros elsewhere
    unskew(y, W)[..., r, j] = y[..., r, r + j]  (N, C, H, W + H - 1) -> (N, C, H, W)
"""
import numpy as np

from ..autograd.function import Function
from ..autograd.grad_mode import is_grad_enabled
from ..autograd.tensor import Tensor
from ..backend import get_array_module
from ._base import as_tensor
from .recurrent import _Workspace, _cell_backward, _cell_forward, _recycler


def _shape(t):
    return tuple(t.shape)


# --- skew / unskew ------------------------------------------------------------------

def _band(xp, H, W):
    """Index arrays (rows (H, 1), cols (H, W)) of the skewed positions: row r, columns r .. r + W - 1."""
    rows = xp.arange(H)[:, None]
    return rows, rows + xp.arange(W)[None, :]


class Skew(Function):
    def forward(self, x):
        xp = get_array_module(x)
        N, C, H, W = x.shape
        self.width = W
        y = xp.zeros((N, C, H, W + H - 1), dtype=x.dtype)
        rows, cols = _band(xp, H, W)
        y[:, :, rows, cols] = x          # one scatter; every target is distinct
        return y

    def backward(self, g):
        return unskew(g, self.width)


class Unskew(Function):
    def forward(self, y, width):
        xp = get_array_module(y)
        rows, cols = _band(xp, y.shape[2], width)
        return y[:, :, rows, cols]       # one gather (a copy)

    def backward(self, g):
        return skew(g)


def skew(x):
    """Shift row r of x (N, C, H, W) right by r: -> (N, C, H, W + H - 1), zeros elsewhere."""
    x = as_tensor(x)
    if x.ndim != 4:
        raise ValueError(f"skew: input must be 4-D (N, C, H, W), got shape {_shape(x)}")
    if x.shape[2] < 1 or x.shape[3] < 1:
        raise ValueError(f"skew: input needs at least one row and one column, got shape {_shape(x)}")
    return Skew.apply(x)


def unskew(y, width):
    """The inverse of ``skew``: y (N, C, H, width + H - 1) -> (N, C, H, width), row r read from column r on."""
    y = as_tensor(y)
    if y.ndim != 4:
        raise ValueError(f"unskew: input must be 4-D (N, C, H, W + H - 1), got shape {_shape(y)}")
    if not isinstance(width, (int, np.integer)) or width < 1:
        raise ValueError(f"unskew: width must be a positive integer, got {width!r}")
    H = y.shape[2]
    if H < 1 or y.shape[3] != width + H - 1:
        raise ValueError(f"unskew: an input of shape {_shape(y)} does not come from skewing width {width}: "
                         f"that needs H >= 1 rows and width + H - 1 = {width + H - 1} columns")
    return Unskew.apply(y, width=int(width))


# --- the scan, on arrays in the layout (T, N, S, channels) --------------------------

def _add_shifted(dst, src, d):
    """dst[..., s, :] += src[..., s + d, :] wherever 0 <= s + d < S (zero padding elsewhere)."""
    S = dst.shape[-2]
    if abs(d) >= S:
        return
    if d >= 0:
        dst[..., :S - d, :] += src[..., d:, :]
    else:
        dst[..., -d:, :] += src[..., :S + d, :]


def _scan_forward(G, w_ss, pad, step=None):
    """Run the scan over G (T, N, S, 4h), which holds x_t + b on entry and the gates on exit.

    Returns hs, cs (T + 1, N, S, h) with hs[0] = cs[0] = 0 and hs[t + 1] = h_t.
    ``step``: a GPU step function (``tinygen.cuda.row_lstm_step_forward`` or its like);
    None runs the NumPy cell.
    """
    xp = get_array_module(G)
    T, N, S, H4 = G.shape
    H, K = H4 // 4, w_ss.shape[2]
    hs = xp.empty((T + 1, N, S, H), G.dtype)
    cs = _recycler.empty(xp, (T + 1, N, S, H), G.dtype)
    hs[0], cs[0] = 0, 0
    # w_taps[c, k*4h + o] = w_ss[o, c, k]: every tap's product with h_{t-1} in one matmul
    w_taps = xp.ascontiguousarray(w_ss.transpose(1, 2, 0).reshape(H, K * H4), dtype=G.dtype)
    P = xp.empty((N, S, K, H4), G.dtype)
    ws = _Workspace(xp, N * S, H, G.dtype) if step is None else None
    for t in range(T):
        g = G[t]
        if t > 0:   # h_{-1} = 0: the first step has no state-to-state term
            xp.matmul(hs[t].reshape(N * S, H), w_taps, out=P.reshape(N * S, K * H4))
        if step is not None:
            step(g, P if t > 0 else None, cs[t], out=(hs[t + 1], cs[t + 1], g))
            continue
        if t > 0:
            for k in range(K):
                _add_shifted(g, P[:, :, k], k - pad)       # pre_t[s] += w_k h_{t-1}[s + k - pad]
        _cell_forward(g.reshape(N * S, H4), cs[t].reshape(N * S, H),
                      out=(hs[t + 1].reshape(N * S, H), cs[t + 1].reshape(N * S, H), g.reshape(N * S, H4)),
                      ws=ws)
    return hs, cs


def _scan_backward(G, cs, w_ss, gy, pad, step=None):
    """BPTT: gates G (T, N, S, 4h), cells cs, output gradient gy (T, N, S, h) -> dpre (T, N, S, 4h)."""
    xp = get_array_module(G)
    T, N, S, H4 = G.shape
    H, K = H4 // 4, w_ss.shape[2]
    D = _recycler.empty(xp, G.shape, G.dtype)
    dc = xp.zeros((N, S, H), G.dtype)           # dL/dc_t, carried back in place
    dh = xp.empty((N, S, H), G.dtype)
    Q = xp.empty((N, S, K, H), G.dtype)
    # w_back[o, k*h + c] = w_ss[o, c, k]: Q[s, k] = w_k^T dpre[s] for every tap in one matmul
    w_back = xp.ascontiguousarray(w_ss.transpose(0, 2, 1).reshape(H4, K * H), dtype=G.dtype)
    ws = _Workspace(xp, N * S, H, G.dtype) if step is None else None
    for t in range(T - 1, -1, -1):
        q = Q if t < T - 1 else None             # Q holds w_k^T dpre_{t+1}, from the step after this one
        if step is not None:
            step(G[t], cs[t], cs[t + 1], gy[t], q, dc, out=(D[t], dc))
        else:
            dh[...] = gy[t]
            if q is not None:
                for k in range(K):
                    _add_shifted(dh, Q[:, :, k], pad - k)  # h_t[s] fed pre_{t+1}[s - k + pad]
            _cell_backward(G[t].reshape(N * S, H4), cs[t].reshape(N * S, H), cs[t + 1].reshape(N * S, H),
                           dh.reshape(N * S, H), dc.reshape(N * S, H),
                           out=(D[t].reshape(N * S, H4), dc.reshape(N * S, H)), ws=ws)
        if t > 0:
            xp.matmul(D[t].reshape(N * S, H4), w_back, out=Q.reshape(N * S, K * H))
    return D


def _weight_grad(D, hs, K, pad):
    """dw_ss[o, c, k] = sum over t, n, s of dpre_t[s, o] h_{t-1}[s + k - pad, c]: one matmul on an im2col."""
    xp = get_array_module(D)
    T, N, S, H4 = D.shape
    H = H4 // 4
    cols = xp.zeros((T, N, S, K, H), D.dtype)   # cols[t, n, s, k] = h_{t-1}[n, s + k - pad] (0 outside)
    for k in range(K):
        _add_shifted(cols[:, :, :, k], hs[:-1], k - pad)
    dw = D.reshape(-1, H4).T @ cols.reshape(-1, K * H)      # (4h, K h)
    return dw.reshape(H4, K, H).transpose(0, 2, 1)


class _PixelRNNScan(Function):
    """(x_proj, w_ss, *b_ss) -> h, for a subclass that fixes the scan direction and the kernel."""
    name = None          # the public op, for messages
    to_scan = None       # permutation (N, 4h, R, W) -> (T, N, S, 4h)
    pad = 1              # zero padding before the line: tap k reads h_{t-1}[s + k - 1]

    @staticmethod
    def gpu_steps():
        """(step forward, step backward) of ``tinygen.cuda`` for this scan."""
        raise NotImplementedError

    def forward(self, x_proj, w_ss, *b_ss, kernels=None):
        """``kernels``: a (step forward, step backward) pair to use instead of the NumPy cell
        (the tests pass the CPU-emulated CUDA kernels); on CuPy arrays tinygen.cuda's."""
        xp = get_array_module(x_proj)
        if kernels is None and xp is not np:
            kernels = self.gpu_steps()
        dtype = np.result_type(*(a.dtype for a in (x_proj, w_ss, *b_ss)))
        from_scan = tuple(int(i) for i in np.argsort(self.to_scan))
        # the pre-activation buffer, in the scan's layout; the scan turns it into the gates
        xs = x_proj.transpose(self.to_scan)
        G = _recycler.empty(xp, xs.shape, dtype)
        G[...] = xs
        if b_ss:
            G += b_ss[0]
        hs, cs = _scan_forward(G, w_ss, self.pad, None if kernels is None else kernels[0])
        self.w_ss, self.gates, self.hs, self.cs = w_ss, G, hs, cs
        self.kernels, self.from_scan = kernels, from_scan
        return xp.ascontiguousarray(hs[1:].transpose(from_scan))

    def backward(self, gh):
        if is_grad_enabled():
            raise RuntimeError(
                f"{self.name}: the fused {self.name} scan does not support second derivatives "
                f"(create_graph=True): its backward (backpropagation through time) runs on arrays, not "
                f"Tensor ops, so its gradients have no graph; build the recurrence from F.conv2d/F.sigmoid/"
                f"F.tanh steps if you need to differentiate through the gradient")
        xp = get_array_module(self.gates)
        G, hs, w_ss = self.gates, self.hs, self.w_ss
        need = self.needs_input_grad
        gy = xp.ascontiguousarray(gh.data.transpose(self.to_scan), dtype=G.dtype)
        D = _scan_backward(G, self.cs, w_ss, gy, self.pad, None if self.kernels is None else self.kernels[1])
        grads = [
            D.transpose(self.from_scan).copy() if need[0] else None,   # a copy: D goes back to the recycler
            _weight_grad(D, hs, w_ss.shape[2], self.pad) if need[1] else None,
        ]
        if len(need) > 2:
            grads.append(D.reshape(-1, D.shape[3]).sum(axis=0) if need[2] else None)
        _recycler.give(D)
        return tuple(None if g is None else Tensor._make(g) for g in grads)

    def _release(self):
        # the graph walk is done with this op: the gates and cells are free for later scans
        _recycler.give(self.__dict__.get("gates"), self.__dict__.get("cs"))
        super()._release()


class RowLSTMScan(_PixelRNNScan):
    name = "row_lstm"
    to_scan = (2, 0, 3, 1)   # (N, 4h, R, W) -> (R, N, W, 4h): scan over rows, lines along the width

    @staticmethod
    def gpu_steps():
        from .. import cuda
        return cuda.row_lstm_step_forward, cuda.row_lstm_step_backward


class DiagonalLSTMScan(_PixelRNNScan):
    name = "diagonal_lstm"
    to_scan = (3, 0, 2, 1)   # (N, 4h, R, Ws) -> (Ws, N, R, 4h): scan over columns, lines down the height

    @staticmethod
    def gpu_steps():
        from .. import cuda
        return cuda.diagonal_lstm_step_forward, cuda.diagonal_lstm_step_backward


def _check(op, layout, x_proj, w_ss, b_ss, K, what):
    if x_proj.ndim != 4:
        raise ValueError(f"{op}: x_proj must be 4-D {layout}, got shape {_shape(x_proj)}")
    if w_ss.ndim != 3 or w_ss.shape[1] < 1 or w_ss.shape[0] != 4 * w_ss.shape[1]:
        raise ValueError(f"{op}: w_ss must have shape (4h, h, {K}), got {_shape(w_ss)}")
    if w_ss.shape[2] != K:
        raise ValueError(f"{op}: the state-to-state kernel must have size {K} ({what}), got w_ss {_shape(w_ss)}")
    H4 = w_ss.shape[0]
    if x_proj.shape[1] != H4:
        raise ValueError(f"{op}: x_proj has {x_proj.shape[1]} channels but w_ss {_shape(w_ss)} needs "
                         f"4h = {H4} (x_proj {_shape(x_proj)})")
    if b_ss is not None and _shape(b_ss) != (H4,):
        raise ValueError(f"{op}: b_ss has shape {_shape(b_ss)}, expected (4h,) = ({H4},) for w_ss {_shape(w_ss)}")


def row_lstm(x_proj, w_ss, b_ss=None):
    """Row LSTM: scan x_proj (N, 4h, R, W) over its rows -> h (N, h, R, W).

    x_proj holds the input-to-state pre-activations [i | f | g | o] of every pixel;
    w_ss (4h, h, 3) is the state-to-state 1 x 3 convolution (padding 1) over the
    previous row's h; b_ss (4h,) optional. One fused op; not differentiable twice.
    """
    x_proj, w_ss = as_tensor(x_proj), as_tensor(w_ss)
    b_ss = None if b_ss is None else as_tensor(b_ss)
    _check("row_lstm", "(N, 4h, R, W)", x_proj, w_ss, b_ss, 3, "a 1 x 3 convolution along the previous row")
    return RowLSTMScan.apply(x_proj, w_ss, *([] if b_ss is None else [b_ss]))


def diagonal_lstm(x_proj, w_ss, b_ss=None):
    """Diagonal LSTM: scan the skewed x_proj (N, 4h, R, Ws) over its columns -> h (N, h, R, Ws).

    w_ss (4h, h, 2) is the state-to-state 2 x 1 convolution down the previous column,
    zero-padded at the top: row r sees rows r - 1 and r of column t - 1. b_ss (4h,)
    optional. One fused op; not differentiable twice.
    """
    x_proj, w_ss = as_tensor(x_proj), as_tensor(w_ss)
    b_ss = None if b_ss is None else as_tensor(b_ss)
    _check("diagonal_lstm", "(N, 4h, R, Ws)", x_proj, w_ss, b_ss, 2,
           "a 2 x 1 convolution down the previous column")
    return DiagonalLSTMScan.apply(x_proj, w_ss, *([] if b_ss is None else [b_ss]))
