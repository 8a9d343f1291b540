"""Fully visible sigmoid belief network (FVSBN): the chain rule with logistic conditionals.

Section 1 of the notes. Flatten an image to D = C*H*W binary pixels x_1..x_D in raster
order (channel, row, column). The chain rule is exact for any distribution,

    p(x) = prod_i p(x_i | x_<i),

and the FVSBN makes each conditional a logistic regression on the pixels before it:

    l_i = a_i + sum_{j<i} W_ij x_j,        p(x_i = 1 | x_<i) = sigmoid(l_i).

All D logits at once are one masked linear layer,

    l = a + (W * M) x,        M_ij = 1 if j < i else 0   (strictly lower-triangular),

and the exact log-likelihood in nats is the sum of D Bernoulli log-probabilities,

    log p(x) = sum_i [ x_i l_i - softplus(l_i) ].

The mask is applied inside the graph (W * M), so dL/dW_ij = dL/d(W*M)_ij * M_ij is
exactly 0 on and above the diagonal: those entries are stored but never trained.
The free parameters are the D(D-1)/2 strictly-lower entries of W plus the D biases a,
D(D+1)/2 in all: 2,080 for 8x8 digits, 307,720 for 28x28, against 2^D - 1 for the
full joint table (``tinygen.models.counting``).

Each conditional is a logistic regression, so the NLL is convex in (a, W): training
from zero (every pixel a fair coin, log p = -D ln 2) reaches the maximum likelihood
without any tuning of the initialisation. With 2,080 parameters and 1,438 training
digits the maximum likelihood overfits a little; ``weight_decay`` lambda (Adam's L2
term, i.e. minimising mean NLL + lambda/2 ||theta||^2) holds the test NLL at its best.

Sampling is ancestral: x_1 first, then x_2 given x_1, ... . A loop over the D pixels is
inherent; it is vectorised over the batch and keeps the running logits l, adding
W[:, i] x_i to every later logit as soon as x_i is drawn (O(D) per pixel).
"""
import numpy as np

from .. import backend
from .. import functional as F
from ..autograd.grad_mode import no_grad
from ..autograd.tensor import Tensor
from ..functional.elementwise import sigmoid_array
from ..nn import Parameter
from ..optim import Adam
from . import register
from .base import GenerativeModel, bernoulli_log_prob


@register("fvsbn", kind="explicit", section="1. conditional independence",
          summary="fully visible sigmoid belief network: logistic conditionals, D(D+1)/2 parameters",
          tested="parameter count D(D+1)/2 as in the notes; exact normalisation; logit i sees exactly pixels <"
                 " i; fits any 2-bit distribution, not 3-bit XOR")
class FVSBN(GenerativeModel):
    binary = True                # the command line binarizes the data for this model
    default_lr = 0.02
    default_steps = 3000         # converged on 8x8 digits at batch 64 in ~1 s; more steps change nothing
    default_batch_size = 64

    def __init__(self, image_shape=(1, 8, 8), lr=None, weight_decay=1e-3):
        super().__init__(image_shape)
        d = int(np.prod(self.image_shape))
        self.d = d
        self.lr = self.default_lr if lr is None else float(lr)
        self.a = Parameter(np.zeros(d, dtype=np.float32))            # a_i
        self.W = Parameter(np.zeros((d, d), dtype=np.float32))       # W_ij (only j < i is used)
        # M: a constant (a buffer, not trained; rebuilt, not saved)
        self.register_buffer("mask", np.tril(np.ones((d, d), dtype=np.float32), k=-1), persistent=False)
        self.optimizers["main"] = Adam(self.parameters(), lr=self.lr, weight_decay=weight_decay)

    def free_parameter_count(self):
        """Entries that can change the density: the strictly-lower part of W and a."""
        return int(self.mask.data.sum()) + self.a.size

    # --- the network ------------------------------------------------------------
    def logits(self, x):
        """l (N, D): l_i = a_i + sum_{j<i} W_ij x_j, the logit of p(x_i = 1 | x_<i)."""
        x = self.check_images(x, binary=True)
        flat = F.reshape(x, (x.shape[0], self.d))
        return F.linear(flat, self.W * self.mask, self.a)      # x (W*M)^T + a

    # --- the loss -----------------------------------------------------------------
    def log_prob(self, x):
        """Exact log p(x) in nats, shape (N,)."""
        x = self.check_images(x, binary=True)
        l = self.logits(x)
        return bernoulli_log_prob(F.reshape(x, (x.shape[0], self.d)), l)   # sum_i x_i l_i - softplus(l_i)

    # --- sampling -------------------------------------------------------------------
    def sample(self, n):
        with no_grad():
            Wm = (self.W * self.mask).data                      # (D, D), column i feeds pixels > i
            xp = backend.get_array_module(Wm)
            gen = backend.generator(self.W.device)
            x = xp.zeros((n, self.d), dtype=Wm.dtype)
            l = xp.broadcast_to(self.a.data, (n, self.d)).copy()   # running logits: a + W x_<i
            u = gen.random((n, self.d)).astype(Wm.dtype)
            for i in range(self.d):
                x[:, i] = u[:, i] < sigmoid_array(l[:, i])            # x_i ~ Bern(sigmoid(l_i))
                l += x[:, i:i + 1] * Wm[:, i]                   # x_i reaches every later logit
            return Tensor._make(x.astype(np.float32).reshape((n,) + self.image_shape))
