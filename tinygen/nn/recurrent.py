"""LSTM layer: the fused scan ``F.lstm`` with its weights.

For an input sequence x (T, N, I) (or (N, T, I) with ``batch_first=True``) and a state
(h_0, c_0), each of shape (N, H), step t = 1 .. T computes (gate order i, f, g, o):

    [a_i | a_f | a_g | a_o] = x_t W_ih^T + b_ih + h_{t-1} W_hh^T + b_hh
    i, f, o = sigmoid(a_i), sigmoid(a_f), sigmoid(a_o)      g = tanh(a_g)
    c_t = f * c_{t-1} + i * g          h_t = o * tanh(c_t)

and the layer returns (y, (h_T, c_T)) with y = [h_1 .. h_T] in the input's layout.
W_ih (4H, I), W_hh (4H, H), b_ih, b_hh (4H,) are stored as in PyTorch's LSTMCell, so
rows k H .. (k+1) H - 1 belong to gate k. The state is (N, H) (one layer, one direction),
zeros when not given.

Initial values, as in PyTorch: every weight and bias ~ U(-1/sqrt(H), 1/sqrt(H)).
(Some models add 1 to the forget gate's bias, f = sigmoid(a_f + 1), so that the cell
remembers by default early in training: ``lstm.bias_hh.data[H:2 * H] += 1``.)
"""
import math

import numpy as np

from .. import functional as F
from ..autograd.tensor import Tensor
from . import init
from .linear import _positive_int
from .module import Module, Parameter


class LSTM(Module):
    def __init__(self, input_size, hidden_size, batch_first=False, bias=True):
        super().__init__()
        self.input_size = _positive_int(input_size, "input_size", "LSTM")
        self.hidden_size = _positive_int(hidden_size, "hidden_size", "LSTM")
        self.batch_first = bool(batch_first)
        H, I = self.hidden_size, self.input_size
        self.weight_ih = Parameter(np.empty((4 * H, I), dtype=np.float32))
        self.weight_hh = Parameter(np.empty((4 * H, H), dtype=np.float32))
        if bias:
            self.bias_ih = Parameter(np.empty(4 * H, dtype=np.float32))
            self.bias_hh = Parameter(np.empty(4 * H, dtype=np.float32))
        else:
            self.register_parameter("bias_ih", None)
            self.register_parameter("bias_hh", None)
        self.reset_parameters()

    def reset_parameters(self):
        bound = 1.0 / math.sqrt(self.hidden_size)
        for p in self.parameters():
            init.uniform_(p, -bound, bound)  # draws from tinygen.backend.generator(p.device)

    def forward(self, x, state=None):
        """x (T, N, I), or (N, T, I) if batch_first; state = (h_0, c_0), each (N, H), or None."""
        name = f"LSTM({self.input_size}, {self.hidden_size})"
        layout = "(N, T, I)" if self.batch_first else "(T, N, I)"
        if x.ndim != 3 or x.shape[-1] != self.input_size:
            raise ValueError(f"{name}: input has shape {tuple(x.shape)}, expected {layout} with "
                             f"I = {self.input_size}")
        if self.batch_first:
            x = F.swapaxes(x, 0, 1)
        h0 = c0 = None
        if state is not None:
            if not (isinstance(state, (tuple, list)) and len(state) == 2
                    and all(isinstance(s, Tensor) for s in state)):
                raise TypeError(f"{name}: state must be a pair (h_0, c_0) of Tensors, "
                                f"got {type(state).__name__}")
            h0, c0 = state
        y, (h, c) = F.lstm(x, h0, c0, self.weight_ih, self.weight_hh, self.bias_ih, self.bias_hh)
        if self.batch_first:
            y = F.swapaxes(y, 0, 1)
        return y, (h, c)

    def extra_repr(self):
        return (f"{self.input_size}, {self.hidden_size}, batch_first={self.batch_first}, "
                f"bias={self.bias_ih is not None}")
