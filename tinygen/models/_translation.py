"""What CycleGAN and StarGAN share: a ResNet generator, a PatchGAN body, and a learning rate that decays.

Section 7 of the notes. Both models translate an image x of one domain into
another, so their generators map images to images (not noise to images), and
both judge realism patch by patch. The pieces below are the same in the two
papers' code, up to a few switches; everything else (the losses, the loops) is
each model's own file.

ResNet generator (``resnet_generator``), for an image (C, H, W), H and W even,
w = ``width`` channels, ``pad`` the padding of every stride-1 convolution:

    pad 3, conv 7x7 (C_in -> w)          IN ReLU          (H, W)
    conv 3x3 stride 2 pad 1 (w -> 2w)    IN ReLU          (H/2, W/2)   the one downsampling
    ``blocks`` x residual block (2w):    x + IN(conv3(pad 1, ReLU(IN(conv3(pad 1, x)))))
    conv-transpose 3x3 s2 p1 op1 (2w -> w)  IN ReLU       (H, W)       (H/2 - 1) 2 - 2 + 3 + 1 = H
    pad 3, conv 7x7 (w -> C_out)         tanh             the image in [-1, 1]

The reference code downsamples twice on 256x256 images; 28x28 MNIST has room for
one (28 -> 14), and the residual blocks then see the whole digit.

Small images (a side below ``SMALL`` = 16 pixels, the 8x8 digits) get the same
parts without the resampling and without instance norm (``small_generator``):

    conv 7x7 (C_in -> w) ReLU,  ``blocks`` x residual block (w): x + conv3(ReLU(conv3(x))),
    conv 7x7 (w -> C_out) tanh                                 all at (H, W), with biases

Measured on the digits (the generator alone trained on the true pairs (a, dilate(a))
with L1, 1000 steps of 8, lr 1e-3; the identity map's error is 0.117): the network
above reaches 0.057 and the small one 0.025 (zero padding; 0.021 with reflection
and x + Delta, below). Two reasons. (i) IN on an 8x8 map normalizes each channel
over 64 values, so each image's ink mass and contrast, the very thing that tells
thick from thin, is divided out at every layer (full resolution with only the first
IN removed: 0.040). (ii) 8 -> 4 -> 8 keeps 16 positions, and a ring of one pixel
must be drawn back by the transposed convolution; at full resolution a few 3x3
convolutions hold a 3x3 dilation exactly. The receptive field, 7 + 4 ``blocks`` + 6
= 25 pixels with 3 blocks, still covers an 8x8 image from any pixel (a quarter turn
moves a pixel up to 14 rows or columns away). (Adding the input, y = x + Delta(x)
without tanh, reaches 0.014 on the pairs (zero padding) but, starting at the map that changes
nothing, which the cycle and identity terms reward, stays near it in CycleGAN's
training: 0.095 against 0.068 with tanh.)

That is the rule for CycleGAN (one change, A to B). StarGAN overrides it
(``small=False``): its G must also tell which attributes the input already has,
and there the 8 -> 4 -> 8 network with IN does better in the GAN (its docstring).

``pad`` is reflection (CycleGAN: the border is made of image, so the
output has no dark frame) or zeros (StarGAN: its module docstring says why it
must be). IN is instance norm, each image's channel by its own mean and variance;
CycleGAN's has no affine step, StarGAN's has one (``affine``). No convolution
followed by IN has a bias: IN subtracts each channel's mean, which removes a
constant added to the channel exactly (the bias would get a zero gradient
forever), the same cancellation that StarGAN's docstring is about.

PatchGAN body (``patch_body``): ``strided`` convolutions 4x4 stride 2 pad 1, the
channels doubling from w, each followed by LeakyReLU(slope), with IN after all
but the first when ``instance_norm``. A 1-channel 3x3 convolution on top
(``patch_head``) gives one logit per position of the last map: D judges every
patch of the input (its receptive field) as real or fake, and the loss averages
over the grid, so D cannot tell a fake by one global statistic alone and G is
pushed on every patch.

Learning rate (``TranslationModel``). Both reference codes keep the rate
constant for the first half of the run and then lower it linearly to zero
(``tinygen.optim.LinearDecayLR`` with T = ``total_steps``, D = ``decay_start``,
default T / 2): lr_t = lr for t <= D, lr (T - t) / (T - D) after. One scheduler
per optimizer steps once per ``train_step``; its epoch is the model's step count
t. Its state travels in ``training_state()`` beside the optimizers', so a resumed
run continues on the same line. ``total_steps`` should be the run's length:
``tinygen train`` passes its ``--steps`` (or the class's ``default_steps``) unless
``--set total_steps`` is given; a run budgeted by ``--minutes`` has no step count
and keeps the default, the class's ``default_steps``.
"""
import contextlib

import numpy as np

from ..autograd.grad_mode import no_grad
from ..nn import (ConvTranspose2d, Conv2d, InstanceNorm2d, LeakyReLU, Module, ReflectionPad2d, ReLU,
                  Sequential, Tanh)
from ..optim import Adam, LinearDecayLR
from ._adversarial import _positive
from .base import GenerativeModel

PADDINGS = ("reflect", "zeros")
SMALL = 16
"""Images with a side below this many pixels get ``small_generator`` (module docstring)."""


# --- the networks -----------------------------------------------------------------

def _conv(in_channels, out_channels, kernel, pad, bias=False):
    """A stride-1 convolution that keeps H and W, with the padding of ``pad`` (reflection or zeros)."""
    half = kernel // 2
    if pad == "reflect":
        return [ReflectionPad2d(half), Conv2d(in_channels, out_channels, kernel, bias=bias)]
    return [Conv2d(in_channels, out_channels, kernel, padding=half, bias=bias)]


def _norm(channels, affine, norm):
    """IN after a convolution (which then has no bias), or nothing (and the convolution has one)."""
    return [InstanceNorm2d(channels, affine=affine)] if norm else []


class ResidualBlock(Module):
    """x + IN(conv3(ReLU(IN(conv3(x))))), or without the IN when not ``norm``: the block may only add
    to x, so a block that learned nothing passes the image through."""

    def __init__(self, channels, pad, affine, norm=True):
        super().__init__()
        self.body = Sequential(*_conv(channels, channels, 3, pad, bias=not norm), *_norm(channels, affine, norm),
                               ReLU(), *_conv(channels, channels, 3, pad, bias=not norm),
                               *_norm(channels, affine, norm))

    def forward(self, x):
        return x + self.body(x)


def resnet_generator(in_channels, out_channels, width, blocks, pad, affine):
    """The generator of the module docstring: (N, in_channels, H, W) -> (N, out_channels, H, W) in [-1, 1]."""
    w = width
    return Sequential(
        *_conv(in_channels, w, 7, pad), InstanceNorm2d(w, affine=affine), ReLU(),
        Conv2d(w, 2 * w, 3, stride=2, padding=1, bias=False), InstanceNorm2d(2 * w, affine=affine), ReLU(),
        *(ResidualBlock(2 * w, pad, affine) for _ in range(blocks)),
        ConvTranspose2d(2 * w, w, 3, stride=2, padding=1, output_padding=1, bias=False),
        InstanceNorm2d(w, affine=affine), ReLU(),
        *_conv(w, out_channels, 7, pad, bias=True), Tanh())


def small_generator(in_channels, out_channels, width, blocks, pad):
    """The full-resolution generator for small images (module docstring), no IN: in [-1, 1]."""
    w = width
    return Sequential(
        *_conv(in_channels, w, 7, pad, bias=True), ReLU(),
        *(ResidualBlock(w, pad, affine=False, norm=False) for _ in range(blocks)),
        *_conv(w, out_channels, 7, pad, bias=True), Tanh())


def translation_generator(image_shape, in_channels, out_channels, width, blocks, pad, affine, small=None):
    """``small_generator`` for images with a side below ``SMALL``, ``resnet_generator`` otherwise;
    ``small`` True or False chooses regardless of the size."""
    if small is None:
        small = min(image_shape[1:]) < SMALL
    if small:
        return small_generator(in_channels, out_channels, width, blocks, pad)
    return resnet_generator(in_channels, out_channels, width, blocks, pad, affine)


def patch_body(in_channels, width, strided, slope, instance_norm):
    """``strided`` convolutions 4s2p1 (w, 2w, 4w, ...), LeakyReLU(slope), IN after all but the first
    when ``instance_norm``: (Sequential, channels of the last map)."""
    layers, channels = [], in_channels
    for i in range(strided):
        out = width * 2 ** i
        norm = instance_norm and i > 0
        layers += [Conv2d(channels, out, 4, stride=2, padding=1, bias=not norm)]
        layers += [InstanceNorm2d(out)] if norm else []
        layers += [LeakyReLU(slope)]
        channels = out
    return Sequential(*layers), channels


def patch_head(channels):
    """One logit per position of the body's last map (a 3x3 convolution that keeps its size)."""
    return Conv2d(channels, 1, 3, padding=1)


def whole_number(value, name, who, zero_means):
    """``value`` as a whole number >= 0 (0: ``zero_means``), or a ValueError naming it."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 0:
        raise ValueError(f"{who}: {name} must be a whole number >= 0 (0: {zero_means}), got {value!r}")
    return int(value)


def check_even_sides(image_shape, times, who):
    """H and W divisible by 2^times (the stride-2 layers halve them that often)."""
    step = 2 ** times
    if image_shape[1] % step or image_shape[2] % step:
        raise ValueError(f"{who}: image height and width must be divisible by {step} ({times} stride-2 "
                         f"stage{'s' if times > 1 else ''}), got image_shape {image_shape}")


# --- the model surface both share ------------------------------------------------------

class TranslationModel(GenerativeModel):
    """Images in [0, 1] outside, [-1, 1] inside; Adam optimizers with LinearDecayLR, saved with the run."""
    translates = True      # no sample(n): the run folder shows translations of test images instead

    def __init__(self, image_shape, lr, betas, total_steps, decay_start):
        super().__init__(image_shape)
        who = type(self).name
        self.lr = _positive(lr, "lr", who, float)
        if not (isinstance(betas, tuple) and len(betas) == 2 and all(0 <= b < 1 for b in betas)):
            raise ValueError(f"{who}: betas must be two numbers in [0, 1), got {betas!r}")
        self.betas = tuple(float(b) for b in betas)
        self.total_steps = _positive(type(self).default_steps if total_steps is None else total_steps,
                                     "total_steps", who)
        start = self.total_steps // 2 if decay_start is None else decay_start
        if isinstance(start, bool) or not isinstance(start, (int, np.integer)) or not 0 <= start < self.total_steps:
            raise ValueError(f"{who}: decay_start must be a whole number in [0, total_steps = "
                             f"{self.total_steps}), got {decay_start!r}")
        self.decay_start = int(start)
        self.schedulers = {}

    def make_optimizers(self, players):
        """``{name: [modules]}`` -> an Adam optimizer over each player's parameters, and its schedule."""
        for name, modules in players.items():
            params = [p for m in modules for p in m.parameters()]
            self.optimizers[name] = Adam(params, lr=self.lr, betas=self.betas)
            self.schedulers[name] = LinearDecayLR(self.optimizers[name], self.total_steps, self.decay_start)

    @property
    def steps_taken(self):
        """t: the training steps taken so far (the schedulers' epoch)."""
        return next(iter(self.schedulers.values())).last_epoch

    def end_step(self):
        """After a training step: every schedule one step on."""
        for scheduler in self.schedulers.values():
            scheduler.step()

    def training_state(self):
        state = super().training_state()
        state["schedulers"] = {k: s.state_dict() for k, s in self.schedulers.items()}
        return state

    def load_training_state(self, state):
        super().load_training_state(state)
        for k, scheduler in self.schedulers.items():
            scheduler.load_state_dict(state["schedulers"][k])

    # --- images in and out of the model's range --------------------------------------
    def _dtype(self):
        return next(iter(self.parameters())).dtype

    def _device(self):
        return next(iter(self.parameters())).device

    @staticmethod
    def to_model_range(x):
        return 2 * x - 1

    @staticmethod
    def to_data_range(x):
        return (x + 1) * 0.5

    @contextlib.contextmanager
    def evaluating(self):
        """Evaluation mode and no graph inside the block; the mode found is put back, also after an error."""
        was = self.training
        self.eval()
        try:
            with no_grad():
                yield
        finally:
            self.train(was)

    def sample(self, n):
        raise NotImplementedError(f"{self.name} translates images and draws none from noise: use "
                                  f"{self.name}.translate(x, ...)")

