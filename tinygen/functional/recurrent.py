"""Recurrent scans: a whole LSTM sequence as one op, and the PixelRNN scans over images.

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

Second derivatives (create_graph): the same gradients must then be Tensor ops, so the
backward replays the recurrence above step by step in Tensor ops on the saved inputs
(``_lstm_steps``) and differentiates that with create_graph: slower, but a gradient
penalty through an LSTM (a text encoder in a WGAN-GP critic) can be trained.


The PixelRNN scans (van den Oord et al. 2016): Row LSTM and Diagonal LSTM, and skew/unskew
------------------------------------------------------------------------------------------

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
from .activation import sigmoid, tanh
from .linalg import matmul
from .shape import pad as pad_op, permute, stack, transpose
from ._scan_arrays import (_Workspace, _cell_backward, _cell_forward, _recycler, _scan_backward,
                           _scan_forward, _weight_grad)


# --- the scan ------------------------------------------------------------------
# (the cell's arithmetic on arrays, its scratch buffers and the PixelRNN scan loops
#  are in _scan_arrays.py)

class _Scan(Function):
    """A scan op that keeps its gates and cells (``self.gates``, ``self.cs``) in recycled buffers."""

    def _release(self):
        # the graph walk is done with this op (and keeps no graph): its buffers serve later scans
        _recycler.give(self.__dict__.get("gates"), self.__dict__.get("cs"))
        super()._release()


class LSTMScan(_Scan):
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
            return self._backward_graph(gy, gh, gc)
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

    def _backward_graph(self, gy, gh, gc):
        """The gradients as Tensors with a graph (the module docstring's "Second derivatives")."""
        x, h0, c0, w_ih, w_hh, *biases = self.inputs
        return _replayed_grads(self, _lstm_steps(x, h0, c0, w_ih, w_hh, biases), (gy, gh, gc))


def _replayed_grads(fn, outputs, grad_outputs):
    """fn's input gradients from a replay of its forward in Tensor ops (``outputs``), by
    differentiating the replay with create_graph: gradients that can be differentiated again."""
    from ..autograd.engine import grad
    wanted = [i for i, needed in enumerate(fn.needs_input_grad) if needed]
    got = grad(list(outputs), [fn.inputs[i] for i in wanted], list(grad_outputs), create_graph=True,
               allow_unused=True)
    out = [None] * len(fn.inputs)
    for i, g in zip(wanted, got):
        t = fn.inputs[i]   # an input no output depends on: a zero gradient
        out[i] = g if g is not None else Tensor._make(get_array_module(t.data).zeros_like(t.data))
    return tuple(out)


def _lstm_steps(x, h0, c0, w_ih, w_hh, biases):
    """(y, h_T, c_T) by the module docstring's equations, one step at a time in Tensor ops."""
    H = w_hh.shape[1]
    pre_x = matmul(x, transpose(w_ih))                       # (T, N, 4H): x_t w_ih^T, all t
    for b in biases:
        pre_x = pre_x + b
    h, c, ys = h0, c0, []
    for t in range(x.shape[0]):
        pre = pre_x[t] + matmul(h, transpose(w_hh))
        i, f = sigmoid(pre[:, :H]), sigmoid(pre[:, H:2 * H])
        g, o = tanh(pre[:, 2 * H:3 * H]), sigmoid(pre[:, 3 * H:])
        c = f * c + i * g
        h = o * tanh(c)
        ys.append(h)
    return stack(ys), h, c


def _shape(t):
    return tuple(t.shape)


def lstm(x, h0, c0, w_ih, w_hh, b_ih=None, b_hh=None):
    """Run an LSTM over a sequence: x (T, N, I) -> (y (T, N, H), (h_T, c_T)).

    h0, c0 (N, H) are the initial state (None: zeros); w_ih (4H, I), w_hh (4H, H) and the
    optional biases (4H,) hold the gates in PyTorch's order i, f, g, o. One fused op;
    its gradients are exact, and differentiable again (create_graph replays the steps).
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
    check_same_dtype("lstm", input=x, h0=state[0], c0=state[1], w_ih=w_ih, w_hh=w_hh, b_ih=b_ih, b_hh=b_hh)
    y, h, c = LSTMScan.apply(x, *state, w_ih, w_hh, *biases)
    return y, (h, c)


# === the PixelRNN scans: Row LSTM, Diagonal LSTM, skew / unskew (see the docstring) ===


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
        if is_grad_enabled():   # second derivatives: replay the scan in Tensor ops
            x_proj, w_ss, *b_ss = self.inputs
            return _replayed_grads(self, (_pixel_scan_steps(x_proj, w_ss, b_ss, self.to_scan, self.pad),), (gh,))
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
    return permute(stack(ys), tuple(int(i) for i in np.argsort(to_scan)))


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
