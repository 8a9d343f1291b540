"""tinygen.functional (imported as F): every differentiable op.

Grouped by kind, one file each; every op is a ``Function`` with forward and
backward side by side and a lowercase public function after it.
"""
from .elementwise import (add, sub, mul, div, neg, pow, exp, log, sqrt, abs, clip, where,
                          maximum, minimum, sum_to, expand)
from .conversion import cast, to_device, less, less_equal, greater, greater_equal, equal, not_equal
from .reduction import sum, mean, var, max, min, logsumexp, argmax, cumsum
from .shape import (reshape, transpose, permute, swapaxes, flatten, squeeze, unsqueeze, getitem,
                    concat, stack, split, repeat, tile)
from .padding import pad
from .linalg import matmul, linear
from .activation import (sigmoid, tanh, relu, leaky_relu, elu, softplus, softmax, log_softmax,
                         one_hot, dropout)
from .loss import (binary_cross_entropy_with_logits, cross_entropy, mse_loss, l1_loss,
                   gaussian_nll)
from .recurrent import lstm
from .pixel_scans import skew, unskew, row_lstm, diagonal_lstm
from .conv import conv2d, conv_transpose2d, conv2d_grad_weight
from .normalization import batch_norm, instance_norm, layer_norm
from .pooling import avg_pool2d, max_pool2d, upsample_nearest, interpolate
from .adversarial import discriminator_loss, generator_loss, gradient_penalty
