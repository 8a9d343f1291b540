"""DCGAN (Radford, Metz & Chintala 2016): the GAN with convolutional players, at small size.

Section 7 of the notes. The loss and the loop are the GAN's (``_adversarial.py``:
one D step on L_D, then one G step on the non-saturating L_G); what DCGAN adds
is a set of architecture guidelines that made convolutional GANs train:

- no pooling: D downsamples with strided convolutions, G upsamples with
  transposed (fractionally strided) ones, so each learns its own resampling;
- batch norm in both players, except at G's output (the samples' own scale and
  mean) and at D's input (D would see real and fake batches' statistics
  normalized away);
- ReLU in G with tanh at its output (the data in [-1, 1]); LeakyReLU(0.2) in D;
- weights drawn from N(0, 0.02) (batch norm's gamma from N(1, 0.02), biases 0);
- Adam with lr 2e-4 and beta1 = 0.5 (0.9 made training oscillate).

One addition to the paper: the rates halve every ``lr_half_life`` = 1000 steps
(``_adversarial.py``), which lets the players settle within the short default
run (FD 19.5 instead of 22.8 after 2500 steps on the digits, seed 0; 0 restores
the paper's constant rate).

For an image of H x W (each divisible by 4), with w = ``width`` channels and
(h0, w0) = (H/4, W/4); a transposed convolution of kernel 4, stride 2, padding 1
doubles a side, (S - 1) 2 - 2 + 4 = 2 S, and the convolution of the same kernel halves it:

    G   z (latent_dim) -> Linear -> (2w, h0, w0)  BN ReLU         the projection of z
        -> ConvT 4s2p1 -> (w, 2h0, 2w0)           BN ReLU
        -> ConvT 4s2p1 -> (C, H, W)               tanh
    D   x (C, H, W) -> Conv 4s2p1 -> (w, H/2, W/2)     LeakyReLU   (no BN at the input)
        -> Conv 4s2p1 -> (2w, h0, w0)             BN LeakyReLU
        -> Linear -> 1 logit

so 8x8 digits go 2 -> 4 -> 8 and 28x28 MNIST 7 -> 14 -> 28. The Linear layers are
G's projection of z and D's read-out; there is no hidden fully connected layer.

Batch norm couples a batch: in training mode G(z)[i] depends on every other z_j of
its batch (the batch's mean and variance). ``sample(n)`` and ``evaluate`` run G in
evaluation mode, with the running statistics, so each sample depends on its own z
only. D sees the real and the fake batch in separate calls, so each is normalized
by its own statistics (as in the reference code). Training needs a batch of 2 or
more: one example has no variance to normalize by.
"""
from ..nn import (BatchNorm2d, Conv2d, ConvTranspose2d, Flatten, LeakyReLU, Linear, ReLU, Reshape,
                  Sequential, Tanh, init)
from . import register
from ._adversarial import AdversarialModel, _positive

INIT_STD = 0.02


def dcgan_init(module):
    """The paper's initialization: conv and linear weights ~ N(0, 0.02), BN gamma ~ N(1, 0.02), biases 0."""
    for m in module.modules():
        if isinstance(m, (Conv2d, ConvTranspose2d, Linear)):
            init.normal_(m.weight, 0.0, INIT_STD)
            if m.bias is not None:
                init.zeros_(m.bias)
        elif isinstance(m, BatchNorm2d):
            init.normal_(m.weight, 1.0, INIT_STD)
            init.zeros_(m.bias)


@register("dcgan", kind="implicit", section="7. GAN",
          summary="convolutional GAN: strided convs in D, transposed convs in G, batch norm, N(0, 0.02) init",
          tested="batch norm couples the batch in training only; N(0, 0.02) initial weights; FD falls during "
                 "training")
class DCGAN(AdversarialModel):
    default_steps = 2500
    default_batch_size = 64
    uses_batch_norm = True

    def __init__(self, image_shape=(1, 8, 8), latent_dim=32, width=32, loss="nonsaturating", gp_weight=0.0,
                 gp_target=1.0, n_critic=1, lr=2e-4, d_lr=None, betas=(0.5, 0.999), lr_half_life=1000):
        super().__init__(image_shape=image_shape, latent_dim=latent_dim, loss=loss, gp_weight=gp_weight,
                         gp_target=gp_target, n_critic=n_critic, lr=lr, d_lr=d_lr, betas=betas,
                         lr_half_life=lr_half_life)
        c, h, w = self.image_shape
        if h % 4 or w % 4:
            raise ValueError(f"dcgan: image height and width must be divisible by 4 (two stride-2 stages), "
                             f"got image_shape {self.image_shape}")
        self.width = _positive(width, "width", "dcgan")
        self.generator = self.build_generator()
        self.discriminator = self.build_discriminator()
        dcgan_init(self)
        self.make_optimizers()

    def build_generator(self):
        """G of the module docstring (InfoGAN feeds its code to every stage)."""
        return dcgan_generator(self.latent_dim, self.image_shape, self.width)

    def build_discriminator(self):
        """D: the convolutional body, then Linear -> 1 logit (InfoGAN gives the body a second head)."""
        body, features = dcgan_discriminator_body(self.image_shape, self.width)
        return Sequential(*body, Linear(features, 1))


def dcgan_generator(latent_dim, image_shape, width):
    """G of the module docstring: z (latent_dim) -> (C, H, W) in [-1, 1]."""
    return Sequential(*(layer for stage in dcgan_generator_stages(latent_dim, image_shape, width) for layer in stage))


def dcgan_generator_stages(latent_dim, image_shape, width, extra_channels=0):
    """G's three stages as lists of layers: the projection of z, then each transposed convolution
    with what follows it; each convolution takes ``extra_channels`` more inputs (InfoGAN's code)."""
    (c, h, w), k, e = image_shape, width, extra_channels
    h0, w0 = h // 4, w // 4
    return ([Linear(latent_dim, 2 * k * h0 * w0, bias=False), Reshape(2 * k, h0, w0), BatchNorm2d(2 * k), ReLU()],
            [ConvTranspose2d(2 * k + e, k, 4, stride=2, padding=1, bias=False), BatchNorm2d(k), ReLU()],
            [ConvTranspose2d(k + e, c, 4, stride=2, padding=1), Tanh()])


def dcgan_discriminator_body(image_shape, width):
    """D's body of the module docstring, up to its flattened features: (Sequential, number of features)."""
    (c, h, w), k = image_shape, width
    body = Sequential(
        Conv2d(c, k, 4, stride=2, padding=1), LeakyReLU(0.2),
        Conv2d(k, 2 * k, 4, stride=2, padding=1, bias=False), BatchNorm2d(2 * k), LeakyReLU(0.2),
        Flatten())
    return body, 2 * k * (h // 4) * (w // 4)
