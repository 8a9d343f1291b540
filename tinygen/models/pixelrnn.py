"""PixelRNN (van den Oord et al. 2016): the chain rule in raster order, by 2-D LSTMs.

Section 3 of the notes. As in PixelCNN, a binary image x (1, H, W) in raster order
i = r W + c factorises exactly,

    p(x) = prod_i p(x_i | x_<i),        p(x_i = 1 | x_<i) = sigmoid(l_i),

and one pass of the network gives all H W logits l, each from the pixels before it.
Convolutions see a bounded neighbourhood; an LSTM scanned over the image carries a
state across it, so l_i can depend on pixels far away. Two ways to scan
(``tinygen.nn.masked`` has the equations of both layers):

    variant="row_lstm"         RowLSTM: one row at a time; input-to-state a 1x3 mask-B
                               conv along the row, state-to-state a 1x3 conv over the
                               previous row's h (a triangular receptive field)
    variant="diagonal_bilstm"  DiagonalBiLSTM: skew so diagonals become columns; 1x1
                               input-to-state, 2x1 state-to-state down the column (top
                               padding); a right-to-left direction on the width-mirrored
                               map, shifted down one row, added (the whole past is in reach)

The network (h hidden channels per LSTM, 2h channels between layers; defaults for 8x8:
k0 = 7, h = 16, K = 2 Row LSTM layers or K = 1 Diagonal BiLSTM layer, head = 32):

    z_0 = MaskedConv2d_A(x)                  k0 x k0, 1 -> 2h (the only mask A: no pixel sees itself)
    z_k = z_{k-1} + C1(drop(LSTM_k(z_{k-1})))   residual: LSTM 2h -> h, 1x1 h -> 2h, k = 1..K
    l   = C1(relu(C1(relu(z_K))))            head: two ReLU + 1x1 (2h -> head -> 1)

drop is dropout while training (p = 0.3; the identity in ``eval()``, in ``evaluate`` and
when sampling): the 1438 training digits are learnt by heart within minutes otherwise.

The LSTM layers and 1x1 convolutions act as mask B: their output at (r, c) may use their
input at (r, c), which z_{k-1} already restricts to x_<(r,c). (A 1x1 mask B for one
colour channel is all ones, so the 1x1 convolutions carry no mask.)

The loss (exact, nats):  log p(x) = sum_i [ x_i l_i - softplus(l_i) ],  minimised as
-mean log p by Adam with an L2 penalty (``weight_decay`` 1e-3 added to the gradient).
Sampling: ancestral in raster order, one network pass per pixel (``_pixel.py``).
"""
from ..nn import Conv2d, ModuleList
from ..nn.masked import DiagonalBiLSTM, RowLSTM
from . import register
from ._pixel import RasterAutoregressive, positive_int

VARIANTS = {"row_lstm": RowLSTM, "diagonal_bilstm": DiagonalBiLSTM}
# layers when not given: the Row LSTM's triangular receptive field grows with depth, and two
# Row LSTM layers cost about what one Diagonal BiLSTM layer (two directions) costs
DEFAULT_LAYERS = {"row_lstm": 2, "diagonal_bilstm": 1}


@register("pixelrnn", kind="explicit", section="3. PixelRNN / PixelCNN",
          summary="Row LSTM or Diagonal BiLSTM layers with residuals after a mask-A conv: exact log p",
          tested="each logit sees exactly the pixels its scans define (Row LSTM triangle, Diagonal BiLSTM "
                 "past), rectangular sizes; the residual stack recomputed from raw weights; all binary images "
                 "sum to one")
class PixelRNN(RasterAutoregressive):
    # about a minute of CPU training on 8x8 digits at batch 64; on 1438 training images the
    # held-out NLL is lowest near here and rises after (overfitting), dropout or not
    default_steps = 2000
    default_batch_size = 64

    def __init__(self, image_shape=(1, 8, 8), variant="diagonal_bilstm", hidden=16, layers=None,
                 first_kernel=7, head=32, lr=None, dropout=0.3, weight_decay=1e-3):
        if variant not in VARIANTS:
            raise ValueError(f"pixelrnn: unknown variant {variant!r}; expected one of "
                             f"{', '.join(repr(v) for v in VARIANTS)}")
        super().__init__(image_shape, hidden=hidden, first_kernel=first_kernel, head=head, lr=lr,
                         dropout=dropout, weight_decay=weight_decay)
        self.variant = variant
        layers = DEFAULT_LAYERS[variant] if layers is None else layers
        self.layers_count = positive_int(layers, "layers", self.name)
        h, layer = self.hidden, VARIANTS[variant]
        self.lstms = ModuleList([layer(2 * h, h) for _ in range(self.layers_count)])
        self.residual = ModuleList([Conv2d(h, 2 * h, 1) for _ in range(self.layers_count)])
        self._make_optimizer()

    # --- the network --------------------------------------------------------------
    def logits(self, x):
        """l (N, 1, H, W): l at (r, c) is the logit of p(x_rc = 1 | pixels before (r, c))."""
        z = self.first(x)
        for lstm, back_to_2h in zip(self.lstms, self.residual):
            z = z + back_to_2h(self._drop(lstm(z)))                      # residual connection
        return self._head(z)

    def extra_repr(self):
        return (f"variant={self.variant!r}, hidden={self.hidden}, layers={self.layers_count}, "
                f"first_kernel={self.first_kernel}, dropout={self.dropout}")
