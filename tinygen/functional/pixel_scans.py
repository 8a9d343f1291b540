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

Internally each step is one LSTM cell over all N S positions of its line (the ``F.lstm``
cell functions on the CPU, ``kernels/pixelrnn.cu`` on a GPU) and the convolution is ONE
matmul per step. On the CPU the arrays are laid out (T, channels, N, S), so that each
gate of a step is a block of whole rows, and the matmul reads the K shifted copies of
h_{t-1} stacked (an im2col of the line, zero off its ends):

    hcol[k, :, s] = h_{t-1}[:, s + k - 1]   pre_t += [w_0 | .. | w_{K-1}] (4h, K h) @ hcol (K h, N S)

and on a GPU, laid out (T, N, S, channels), the products of every tap, whose shifted sums
the step kernel adds:

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

Backward works on arrays; under create_graph (second derivatives) the scan is replayed a
step at a time in Tensor ops (``_pixel_scan_steps``) and differentiated, as for ``F.lstm``.

skew / unskew are ordinary differentiable ops, each the other's backward:

    skew(x)[..., r, r + j] = x[..., r, j]       (N, C, H, W) -> (N, C, H, W + H - 1), zeros elsewhere
    unskew(y, W)[..., r, j] = y[..., r, r + j]  (N, C, H, W + H - 1) -> (N, C, H, W)
"""
import numpy as np

from ..autograd.function import Function
from ..autograd.grad_mode import is_grad_enabled
from ..autograd.tensor import Tensor
from ..backend import get_array_module
from ._base import as_tensor, check_same_dtype
from ._scan_arrays import _recycler, _scan_backward, _scan_forward, _weight_grad
from .activation import sigmoid, tanh
from .linalg import matmul
from .recurrent import _Scan, _replayed_grads, _shape
from .padding import pad as pad_op
from .shape import permute, stack, transpose

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


class _PixelRNNScan(_Scan):
    """(x_proj, w_ss, *b_ss) -> h, for a subclass that fixes the scan direction and the kernel."""
    name = None          # the public op, for messages
    to_scan = None       # permutation (N, 4h, R, W) -> (T, N, S, 4h)
    pad = 1              # zero padding before the line: tap k reads h_{t-1}[s + k - 1]

    def gpu_steps(self):
        """(step forward, step backward) of ``tinygen.cuda`` for this scan: ``{name}_step_forward``
        and ``{name}_step_backward``, the launchers of ``kernels/pixelrnn.cu``."""
        from .. import cuda
        return getattr(cuda, f"{self.name}_step_forward"), getattr(cuda, f"{self.name}_step_backward")

    def forward(self, x_proj, w_ss, *b_ss, kernels=None):
        """``kernels``: a (step forward, step backward) pair to use instead of the NumPy cell
        (the tests pass the CPU-emulated CUDA kernels); on CuPy arrays tinygen.cuda's."""
        xp = get_array_module(x_proj)
        if kernels is None and xp is not np:
            kernels = self.gpu_steps()
        dtype = np.result_type(*(a.dtype for a in (x_proj, w_ss, *b_ss)))
        order = self.to_scan if kernels is not None else self.gate_rows()
        # the pre-activation buffer, in the scan's layout; the scan turns it into the gates
        xs = x_proj.transpose(order)
        G = _recycler.empty(xp, xs.shape, dtype)
        G[...] = xs
        if b_ss:
            G += b_ss[0] if kernels is not None else b_ss[0][:, None, None]
        hs, cs = _scan_forward(G, w_ss, self.pad, None if kernels is None else kernels[0])
        self.w_ss, self.gates, self.hs, self.cs = w_ss, G, hs, cs
        self.kernels, self.order = kernels, order
        return xp.ascontiguousarray(hs[1:].transpose(_inverse(order)))

    def gate_rows(self):
        """The NumPy cell's layout (``_scan_arrays``): (N, 4h, R, W) -> (T, 4h, N, S), each gate whole rows."""
        t, n, s, c = self.to_scan
        return t, c, n, s

    def backward(self, gh):
        if is_grad_enabled():   # second derivatives: replay the scan in Tensor ops
            x_proj, w_ss, *b_ss = self.inputs
            return _replayed_grads(self, (_pixel_scan_steps(x_proj, w_ss, b_ss, self.to_scan, self.pad),), (gh,))
        xp = get_array_module(self.gates)
        G, hs, w_ss, rows = self.gates, self.hs, self.w_ss, self.kernels is None
        need = self.needs_input_grad
        gy = xp.ascontiguousarray(gh.data.transpose(self.order), dtype=G.dtype)
        D = _scan_backward(G, self.cs, w_ss, gy, self.pad, None if rows else self.kernels[1])
        grads = [
            D.transpose(_inverse(self.order)).copy() if need[0] else None,   # a copy: D goes back to the recycler
            _weight_grad(D, hs, w_ss.shape[2], self.pad, rows) if need[1] else None,
        ]
        if len(need) > 2:
            grads.append((D.sum(axis=(0, 2, 3)) if rows else D.reshape(-1, D.shape[3]).sum(axis=0))
                         if need[2] else None)
        _recycler.give(D)
        return tuple(None if g is None else Tensor._make(g) for g in grads)


def _inverse(order):
    return tuple(int(i) for i in np.argsort(order))


def _pixel_scan_steps(x_proj, w_ss, b_ss, to_scan, pad):
    """h (N, h, R, W) of a PixelRNN scan by the docstring's one-scan equations, a step at a time
    in Tensor ops: pre_t[s] = x_t[s] + b_ss + sum_k w_k h_{t-1}[s + k - 1], then the LSTM cell."""
    xs = permute(x_proj, to_scan)                                  # (T, N, S, 4h)
    for b in b_ss:
        xs = xs + b
    T, N, S, H4 = xs.shape
    H, K = H4 // 4, w_ss.shape[2]
    zero = Tensor._make(get_array_module(xs.data).zeros((N, S, H), dtype=xs.dtype))
    h, c, ys = zero, zero, []
    for t in range(T):
        pre = xs[t]
        padded = pad_op(h, ((0, 0), (pad, K - 1 - pad), (0, 0)))   # tap k reads h_{t-1}[s + k - 1]
        for k in range(K):
            pre = pre + matmul(padded[:, k:k + S], transpose(w_ss[:, :, k]))
        i, f = sigmoid(pre[..., :H]), sigmoid(pre[..., H:2 * H])
        g, o = tanh(pre[..., 2 * H:3 * H]), sigmoid(pre[..., 3 * H:])
        c = f * c + i * g
        h = o * tanh(c)
        ys.append(h)
    return permute(stack(ys), _inverse(to_scan))


class RowLSTMScan(_PixelRNNScan):
    name = "row_lstm"
    to_scan = (2, 0, 3, 1)   # (N, 4h, R, W) -> (R, N, W, 4h): scan over rows, lines along the width


class DiagonalLSTMScan(_PixelRNNScan):
    name = "diagonal_lstm"
    to_scan = (3, 0, 2, 1)   # (N, 4h, R, Ws) -> (Ws, N, R, 4h): scan over columns, lines down the height


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
    previous row's h; b_ss (4h,) optional. One fused op (differentiable twice: create_graph
    replays the steps).
    """
    x_proj, w_ss = as_tensor(x_proj), as_tensor(w_ss)
    b_ss = None if b_ss is None else as_tensor(b_ss)
    _check("row_lstm", "(N, 4h, R, W)", x_proj, w_ss, b_ss, 3, "a 1 x 3 convolution along the previous row")
    check_same_dtype("row_lstm", x_proj=x_proj, w_ss=w_ss, b_ss=b_ss)
    return RowLSTMScan.apply(x_proj, w_ss, *([] if b_ss is None else [b_ss]))


def diagonal_lstm(x_proj, w_ss, b_ss=None):
    """Diagonal LSTM: scan the skewed x_proj (N, 4h, R, Ws) over its columns -> h (N, h, R, Ws).

    w_ss (4h, h, 2) is the state-to-state 2 x 1 convolution down the previous column,
    zero-padded at the top: row r sees rows r - 1 and r of column t - 1. b_ss (4h,)
    optional. One fused op (differentiable twice: create_graph replays the steps).
    """
    x_proj, w_ss = as_tensor(x_proj), as_tensor(w_ss)
    b_ss = None if b_ss is None else as_tensor(b_ss)
    _check("diagonal_lstm", "(N, 4h, R, Ws)", x_proj, w_ss, b_ss, 2,
           "a 2 x 1 convolution down the previous column")
    check_same_dtype("diagonal_lstm", x_proj=x_proj, w_ss=w_ss, b_ss=b_ss)
    return DiagonalLSTMScan.apply(x_proj, w_ss, *([] if b_ss is None else [b_ss]))
