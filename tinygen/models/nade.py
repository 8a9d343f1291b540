"""NADE: the neural autoregressive distribution estimator (Larochelle & Murray 2011).

Section 2 of the notes. Like the FVSBN (section 1), NADE writes p(x) = prod_d p(x_d | x_<d)
over the D = C*H*W pixels in raster order, but each conditional is a one-hidden-layer
network with H hidden units instead of a logistic regression:

    h_d = sigmoid(a_d),       p(x_d = 1 | x_<d) = sigmoid(b_d + V_d . h_d),

and the D networks share one input matrix W (H, D): the pre-activation of network d is
a_d = c + sum_{j<d} W[:, j] x_j. Sharing W gives the O(HD) recurrence

    a_1 = c,        a_{d+1} = a_d + W[:, d] x_d,

one column of W per pixel, instead of O(H D^2) for D separate networks.

Parameters: W (H, D), c (H), V (D, H), b (D); 2HD + H + D stored. Column W[:, D] (the
last pixel's) would only feed a_{D+1}, which no conditional uses, so it is never
trained: 2HD + D free parameters (``free_parameter_count``).

The loss. With l_d = b_d + V_d . h_d the exact log-likelihood in nats is

    log p(x) = sum_d [ x_d l_d - softplus(l_d) ].

Training computes every a_d in one pass, as an exclusive cumulative sum over the pixels:

    T_j = x_j W[:, j]  (stacked (D, N, H)),      a_d = c + sum_{j<d} T_j,

the recurrence for the whole batch at once, O(N D H) work and memory (``logits_sequential``
is the loop above, kept as the reference). The sum is made exclusive by shifting x and
W's columns down one pixel before the products (``lag`` = 1), so that row d of T is
already T_{d-1}; and c enters the first row through a second input column that is 1 at the
first pixel only (the matmuls' inner size is 2: T_d = x_{d-1} W[:, d-1] + [d = 1] c), so that
a plain cumsum gives a_d, with no pass over (D, N, H) to add c and none to sum its gradient
(measured: the step 0.90 of its time with c added after the sum). (Stacking the prefixes
x_<d as an (N, D, D) array times W^T is O(N D^2): 157 MB per step for a batch of 64 at
28x28.) The sum must be exclusive: if a_d already contained W[:, d] x_d, the conditional
of x_d would see x_d, and the "probabilities" would no longer sum to 1 (the tests build
that leaky copy, lag = 0, and watch both the normalisation and the causality check fail).

On 8x8 digits (1,438 training images) NADE overfits quickly: without regularisation the
test NLL of H = 64 is best (17.2 nats) after ~4,000 steps and then climbs while the
training NLL keeps falling. ``weight_decay`` lambda = 1e-3 (Adam's L2 term: minimise
mean NLL + lambda/2 ||theta||^2) holds it down: 16.7 nats after 12,000 steps with
H = 64, against 17.3 with H = 32 (measured on the fixed digits split).

Sampling is ancestral, in the same raster order: draw x_d from p(x_d = 1 | x_<d), then
update a with the drawn value x_d (not with its probability).
"""
import math

import numpy as np

from .. import backend
from .. import functional as F
from ..autograd.grad_mode import no_grad
from ..autograd.tensor import Tensor
from ..functional.elementwise import sigmoid_array
from ..nn import Parameter, init
from ..optim import Adam
from . import register
from .base import GenerativeModel, bernoulli_log_prob


@register("nade", kind="explicit", section="2. NADE",
          summary="neural autoregressive density estimator: tied weights, O(HD) per image",
          tested="parameter count O(HD); exact normalisation; logit i sees exactly pixels < i; the O(NDH) pass"
                 " equals the loop; fits 3-bit XOR")
class NADE(GenerativeModel):
    binary = True                # the command line binarizes the data for this model
    default_lr = 0.01
    default_steps = 12000        # about 40 s on a free CPU core at batch 64; the test NLL is flat after it
    default_batch_size = 64
    default_hidden_size = 64

    def __init__(self, image_shape=(1, 8, 8), hidden_size=None, lr=None, weight_decay=1e-3):
        super().__init__(image_shape)
        d = int(np.prod(self.image_shape))
        h = self.default_hidden_size if hidden_size is None else hidden_size
        if isinstance(h, bool) or not isinstance(h, (int, np.integer)) or h < 1:
            raise ValueError(f"nade: hidden_size must be a positive integer, got {hidden_size!r}")
        self.d, self.hidden_size = d, int(h)
        self.lr = self.default_lr if lr is None else float(lr)
        # W, V ~ U(-1/sqrt(fan_in), 1/sqrt(fan_in)) as nn.Linear; c, b = 0
        self.W = Parameter(np.empty((self.hidden_size, d), dtype=np.float32))
        self.c = Parameter(np.zeros(self.hidden_size, dtype=np.float32))
        self.V = Parameter(np.empty((d, self.hidden_size), dtype=np.float32))
        self.b = Parameter(np.zeros(d, dtype=np.float32))
        init.uniform_(self.W, -1 / math.sqrt(d), 1 / math.sqrt(d))
        init.uniform_(self.V, -1 / math.sqrt(self.hidden_size), 1 / math.sqrt(self.hidden_size))
        self.lag = 1   # a_d sums the pixels j <= d - lag: 1 is NADE's exclusive sum
        self.optimizers["main"] = Adam(self.parameters(), lr=self.lr, weight_decay=weight_decay)

    def free_parameter_count(self):
        """Entries that can change the density: all but W's last column (it feeds no conditional)."""
        return self.W.size - self.hidden_size + self.c.size + self.V.size + self.b.size

    # --- the network ------------------------------------------------------------
    def logits(self, x):
        """l (N, D): l_d = b_d + V_d . sigmoid(a_d), all d in one pass."""
        x = self.check_images(x, binary=True)
        n, d, h = x.shape[0], self.d, self.hidden_size
        lag = self.lag
        x_before = F.pad(F.transpose(F.reshape(x, (n, d)))[:d - lag], ((lag, 0), (0, 0)))   # (D, N): x_{d-1}
        w_before = F.pad(F.transpose(self.W)[:d - lag], ((lag, 0), (0, 0)))               # (D, H): W[:, d-1]
        # c enters the first row of T through a second input column, 1 at the first pixel only
        first = backend.get_array_module(x.data).zeros((d, n, 1), dtype=x.dtype)
        first[0] = 1
        inputs = F.concat([F.reshape(x_before, (d, n, 1)), Tensor._make(first)], axis=-1)     # (D, N, 2)
        c_rows = F.expand(F.reshape(self.c, (1, 1, h)), (d, 1, h))
        weights = F.concat([F.reshape(w_before, (d, 1, h)), c_rows], axis=1)                  # (D, 2, H)
        # the products as matmuls, so that their gradients are (batched) GEMMs, not reductions
        T = F.matmul(inputs, weights)                            # (D, N, H): x_{d-1} W[:, d-1] + [d = 1] c
        A = F.cumsum(T, axis=0)                                           # a_d = c + sum_{j<d} x_j W[:, j]
        l = F.matmul(F.sigmoid(A), F.reshape(self.V, (d, h, 1)))          # (D, N, 1): V_d . h_d
        return F.transpose(F.reshape(l, (d, n))) + self.b                 # (N, D): + b_d

    def logits_sequential(self, x):
        """The same l (N, D) by the recurrence a_{d+1} = a_d + W[:, d] x_d: the reference form."""
        x = self.check_images(x, binary=True)
        flat = F.reshape(x, (x.shape[0], self.d))
        a = F.expand(self.c, (x.shape[0], self.hidden_size))   # a_1 = c (added once, not per step)
        out = []
        for i in range(self.d):
            h = F.sigmoid(a)
            out.append(F.matmul(h, self.V[i]) + self.b[i])     # l_d, read before x_d enters a
            a = a + flat[:, i:i + 1] * self.W[:, i]             # a_{d+1} = a_d + W[:, d] x_d
        return F.stack(out, axis=1)

    # --- the loss -----------------------------------------------------------------
    def log_prob(self, x):
        """Exact log p(x) in nats, shape (N,)."""
        x = self.check_images(x, binary=True)
        l = self.logits(x)
        return bernoulli_log_prob(F.reshape(x, (x.shape[0], self.d)), l)   # sum_d x_d l_d - softplus(l_d)

    # --- sampling -------------------------------------------------------------------
    def sample(self, n):
        with no_grad():
            W, c, V, b = self.W.data, self.c.data, self.V.data, self.b.data
            xp = backend.get_array_module(W)
            gen = backend.generator(self.W.device)
            x = xp.zeros((n, self.d), dtype=W.dtype)
            a = xp.broadcast_to(c, (n, self.hidden_size)).copy()    # a_1 = c
            u = gen.random((n, self.d)).astype(W.dtype)
            for i in range(self.d):
                p = sigmoid_array(sigmoid_array(a) @ V[i] + b[i])   # p(x_d = 1 | x_<d)
                x[:, i] = u[:, i] < p
                a += x[:, i:i + 1] * W[:, i]                    # the drawn x_d, not p
            return Tensor._make(x.astype(np.float32).reshape((n,) + self.image_shape))
