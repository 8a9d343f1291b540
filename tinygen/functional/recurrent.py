"""The LSTM scan: a whole LSTM sequence as one op.

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

The PixelRNN scans (Row LSTM, Diagonal LSTM) and skew / unskew are in ``pixel_scans.py``.
"""
import numpy as np

from ..autograd.function import Function
from ..autograd.grad_mode import is_grad_enabled
from ..autograd.tensor import Tensor
from ..backend import get_array_module
from ._base import as_tensor, check_same_dtype
from .activation import sigmoid, tanh
from .linalg import matmul
from .shape import stack, transpose
from ._scan_arrays import _Workspace, _cell_backward, _cell_forward, _recycler


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
