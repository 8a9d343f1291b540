"""PixelCNN (van den Oord et al. 2016): the chain rule in raster order, by masked convolutions.

Section 3 of the notes. The image x (1, H, W) of binary pixels, in raster order
i = r W + c, has the exact factorisation

    p(x) = prod_i p(x_i | x_<i),        p(x_i = 1 | x_<i) = sigmoid(l_i),

and the network computes all H W logits l in one pass, each from the pixels before it.
Causality comes from the masks (``tinygen.nn.MaskedConv2d``): a convolution whose kernel
is zeroed at and after its centre (mask A) or after its centre (mask B).

The network (2h feature channels, h inside the blocks; defaults for 8x8: k0 = 7, h = 16,
B = 8 blocks, head = 32):

    z_0 = MaskedConv2d_A(x)                   k0 x k0, 1 -> 2h: z_0 at (r, c) sees x_<(r,c) only
    z_b = z_{b-1} + C1(drop(relu(M3(relu(C1(relu(z_{b-1})))))))     residual block b = 1..B:
                                              1x1 2h -> h, 3x3 mask B h -> h, 1x1 h -> 2h
    l   = C1(relu(C1(relu(z_B))))             head: two ReLU + 1x1 (2h -> head -> 1)

drop is dropout while training (p = 0.3; the identity in ``eval()``, in ``evaluate`` and
when sampling): the 1438 training digits are learnt by heart within minutes otherwise.

Mask B in the blocks is enough: z_{b-1} at (r, c) already holds only x_<(r,c), so a
layer may look at its own input at (r, c). A 1x1 convolution only mixes channels at one
position; with one colour channel its mask B would be all ones, so it is a plain Conv2d.

The stacked 3x3 mask-B kernels grow a receptive field that misses a wedge up and to the
right of each pixel (the "blind spot" of the Gated PixelCNN paper): a loss of modelling
power, not a causality violation; the tests check that no gradient flows from x_j to l_i
for j >= i.

The loss (exact, nats):  log p(x) = sum_i [ x_i l_i - softplus(l_i) ],  minimised as
-mean log p by Adam with an L2 penalty (``weight_decay`` 1e-3 added to the gradient).
Sampling: ancestral in raster order, one network pass per pixel (``_pixel.py``).
"""
from .. import functional as F
from ..nn import Conv2d, Module, ModuleList
from ..nn.masked import MaskedConv2d
from . import register
from ._pixel import RasterAutoregressive, positive_int


class ResidualBlock(Module):
    """z + C1(relu(M3(relu(C1(relu(z)))))): 1x1 2h -> h, 3x3 mask B, 1x1 h -> 2h."""

    def __init__(self, hidden, dropout=0.0):
        super().__init__()
        self.dropout = dropout                    # on the branch while training (see _pixel.py)
        self.reduce = Conv2d(2 * hidden, hidden, 1)
        self.masked = MaskedConv2d(hidden, hidden, 3, "B")
        self.expand = Conv2d(hidden, 2 * hidden, 1)

    def forward(self, z):
        y = self.reduce(F.relu(z))
        y = self.masked(F.relu(y))
        y = F.dropout(F.relu(y), self.dropout, training=self.training)
        return z + self.expand(y)


@register("pixelcnn", kind="explicit", section="3. PixelRNN / PixelCNN",
          summary="masked convolutions (mask A, then residual mask-B blocks): exact log p, raster sampling",
          tested="each logit sees exactly its receptive field, blind spot included, on rectangular sizes; the "
                 "stack recomputed from raw weights and documented masks; exact normalisation; mean-NLL "
                 "reduction pinned")
class PixelCNN(RasterAutoregressive):
    # about a minute of CPU training on 8x8 digits at batch 64; on 1438 training images the
    # held-out NLL is lowest near here and rises after (overfitting), dropout or not
    default_steps = 1500
    default_batch_size = 64

    # 8 blocks: depth widens the receptive field (blocks 4 -> 8 gained ~0.6 nats on 8x8 digits)
    def __init__(self, image_shape=(1, 8, 8), hidden=16, blocks=8, first_kernel=7, head=32, lr=None,
                 dropout=0.3, weight_decay=1e-3):
        super().__init__(image_shape, hidden=hidden, first_kernel=first_kernel, head=head, lr=lr,
                         dropout=dropout, weight_decay=weight_decay)
        self.blocks_count = positive_int(blocks, "blocks", self.name)
        self.blocks = ModuleList([ResidualBlock(self.hidden, self.dropout)
                                  for _ in range(self.blocks_count)])
        self._make_optimizer()

    # --- the network --------------------------------------------------------------
    def logits(self, x):
        """l (N, 1, H, W): l at (r, c) is the logit of p(x_rc = 1 | pixels before (r, c))."""
        z = self.first(x)
        for block in self.blocks:
            z = block(z)
        return self._head(z)

    def extra_repr(self):
        return (f"hidden={self.hidden}, blocks={self.blocks_count}, first_kernel={self.first_kernel}, "
                f"dropout={self.dropout}")
