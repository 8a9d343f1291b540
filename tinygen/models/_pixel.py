"""What PixelCNN and PixelRNN share: the raster-order chain rule, its loss and its sampler.

Not a model itself (nothing is registered here); ``pixelcnn.py`` and ``pixelrnn.py``
subclass ``RasterAutoregressive`` and write only the network ``logits(x)``.

For a binary image x (1, H, W), pixels in raster order i = r W + c,

    p(x) = prod_i p(x_i | x_<i),        p(x_i = 1 | x_<i) = sigmoid(l_i),

where the network maps the whole image to all H W logits l (N, 1, H, W) in ONE pass;
its masks make l_i a function of x_<i only (mask A in the first layer, so no pixel
sees itself). The exact log-likelihood in nats is then

    log p(x) = sum_i [ x_i l_i - softplus(l_i) ]          (log sigmoid(l) if x = 1, log sigmoid(-l) if 0)

Training is parallel (one pass gives every conditional, "teacher forcing"); sampling is
not: pixel i needs the drawn values of pixels < i, so the sampler draws the H W pixels
one at a time, re-running the network on the partly drawn images each time (vectorised
over the batch). Only l_i of each pass is used; the rest is recomputed next step.
"""
import numpy as np

from .. import backend
from .. import functional as F
from ..autograd.grad_mode import no_grad
from ..autograd.tensor import Tensor
from ..functional.elementwise import sigmoid_array
from ..nn import Conv2d
from ..nn.masked import MaskedConv2d
from ..optim import Adam
from .base import GenerativeModel, bernoulli_log_prob


def positive_int(value, name, model):
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise ValueError(f"{model}: {name} must be a positive integer, got {value!r}")
    return int(value)


class RasterAutoregressive(GenerativeModel):
    """Binary one-channel images. Builds what both networks share: the mask-A first layer
    ``first`` (1 -> 2h channels, k0 x k0) and the 1x1 output head (2h -> head -> 1 logit).
    A subclass adds its mask-B middle layers, defines ``logits(x)`` (N, 1, H, W) with
    ``self.first`` and ``self._head``, and calls ``self._make_optimizer()`` at the end of
    its ``__init__``."""
    binary = True                # the command line binarizes the data for these models
    default_lr = 3e-3
    default_batch_size = 64

    def __init__(self, image_shape=(1, 8, 8), hidden=16, first_kernel=7, head=32, lr=None,
                 dropout=0.0, weight_decay=0.0):
        super().__init__(image_shape)
        if self.image_shape[0] != 1:
            # several channels would need colour-group masks (R < G < B) inside each pixel
            raise ValueError(f"{self.name}: only one-channel binary images are supported, got image_shape "
                             f"{self.image_shape} (C = {self.image_shape[0]})")
        self.lr = self.default_lr if lr is None else float(lr)
        if not 0 <= dropout < 1:
            raise ValueError(f"{self.name}: dropout must lie in [0, 1), got {dropout!r}")
        self.dropout, self.weight_decay = float(dropout), float(weight_decay)
        self.hidden = h = positive_int(hidden, "hidden", self.name)
        head = positive_int(head, "head", self.name)
        first_kernel = positive_int(first_kernel, "first_kernel", self.name)
        if first_kernel % 2 == 0:
            raise ValueError(f"{self.name}: first_kernel must be odd (a mask needs a centre pixel), "
                             f"got {first_kernel}")
        self.first_kernel = first_kernel
        self.first = MaskedConv2d(1, 2 * h, first_kernel, "A")          # the only mask A
        self.head1 = Conv2d(2 * h, head, 1)                              # 1x1: mask B needs no mask
        self.head2 = Conv2d(head, 1, 1)

    def _head(self, z):
        """The logits from the last 2h-channel map: relu -> 1x1 -> relu -> 1x1."""
        return self.head2(F.relu(self.head1(F.relu(z))))

    def _make_optimizer(self):
        self.optimizers["main"] = Adam(self.parameters(), lr=self.lr, weight_decay=self.weight_decay)

    def _drop(self, t):
        """Dropout on a residual branch while training (digits: 1438 images overfit in minutes).
        It acts on each value alone, so it cannot carry information between pixels."""
        return F.dropout(t, self.dropout, training=self.training) if self.dropout else t

    def _dtype(self):
        return next(iter(self.parameters())).dtype

    def _images(self, x):
        """Checked binary images as a Tensor in the parameters' dtype (float64 after ``double()``)."""
        x = self.check_images(x, binary=True)
        dtype = self._dtype()
        return x if x.dtype == dtype else F.cast(x, dtype)

    def logits(self, x):
        raise NotImplementedError

    # --- the loss -----------------------------------------------------------------
    def log_prob(self, x):
        """Exact log p(x) in nats, shape (N,)."""
        x = self._images(x)
        return bernoulli_log_prob(x, self.logits(x))            # sum_i x_i l_i - softplus(l_i)

    # --- sampling -------------------------------------------------------------------
    def sample(self, n):
        n = positive_int(n, "n", f"{self.name}.sample")
        _, H, W = self.image_shape
        was = self.training
        self.eval()
        try:
            with no_grad():
                p0 = next(iter(self.parameters()))
                xp = backend.get_array_module(p0.data)
                x = xp.zeros((n,) + self.image_shape, dtype=p0.dtype)
                u = backend.generator(p0.device).random((n, H, W)).astype(p0.dtype)
                for r in range(H):
                    for c in range(W):
                        l = self.logits(Tensor._make(x)).data[:, 0, r, c]   # only l_i is new
                        x[:, 0, r, c] = u[:, r, c] < sigmoid_array(l)        # x_i ~ Bern(sigmoid(l_i))
        finally:
            self.train(was)
        return Tensor._make(x.astype(np.float32))
