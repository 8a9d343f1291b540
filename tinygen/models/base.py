"""The common surface of every generative model.

A model is an ``nn.Module`` that also owns its optimiser(s), so one call does one
optimisation step and the command line never needs to know what is inside:

    train_step(batch) -> {"loss": float, ...}    one step on a batch (what ``data_kind`` says)
    sample(n)         -> Tensor (n, C, H, W)      in the data's range [0, 1]
    evaluate(batch)   -> {"nll_nats": ...}        explicit models: mean -log p(x) per image
    log_prob(x)       -> Tensor (N,)              explicit models only: exact log p(x) in nats
    state_dict()                                  parameters and buffers (Module)
    training_state() / load_training_state()      optimiser state too, for exact resume

Explicit models (a density) get ``evaluate`` for free from ``log_prob``:
nll_nats = -mean_n log p(x_n) and bits_per_dim = nll_nats / (D ln 2), D = C*H*W.

What the command line reads from a model class (``tinygen train``/``zoo``; class
attributes, so a model file sets them once and the CLI needs no change):

    default_steps       steps of ``tinygen train`` without --steps/--minutes; pick a
                        number that takes about a minute on 2 CPU cores
    default_batch_size  batch size without --batch-size
    default_lr          learning rate passed as ``lr=`` without --lr; None leaves the
                        constructor's own default
    binary = True       the model needs {0, 1} pixels: the CLI binarizes the images
                        with ``tinygen.data.binarize`` (fixed threshold 0.5)
    data_kind           what a batch is, for ``train_step`` and ``evaluate`` alike
                        (``tinygen.data.kinds``; DESIGN.md lists the kinds to come):
        "image"         a Tensor of images (N, C, H, W) in [0, 1]; built with
                        ``image_shape=`` from the data (the default)
        "labelled"      a tuple (images, labels): images as above, labels an int64
                        Tensor (N,) of class indices, row n the label of image n
                        (conditional models)
        "toy"           a Tensor of 2-D points (N, 2) from ``--data toy:NAME``;
                        built without ``image_shape``
    data_kinds          (optional) several kinds a model trains on, the first the data
                        gives wins (the GAN: images, or 2-D points)
    eval_data_kind      (optional) what ``evaluate`` gets instead, where the data has it
                        (InfoGAN trains on images alone and is scored with the labels)
    translates = True   the model maps images to images and draws nothing from noise
                        (CycleGAN, StarGAN): its samples.png, ``tinygen sample`` and the
                        zoo show translations of test images instead of ``sample(n)``
    pictures_take_eval_batch = True
                        ``pictures`` gets the whole evaluation batch (a tuple of the
                        ``eval_data_kind``'s fields), not only its first field

``train_step`` returns every loss it computed on that step; a loss computed only
on some steps (a generator updated every n-th critic step) is simply absent from
the other steps' dicts, and the log averages it over the steps that reported it.
``evaluate`` should return means over the batch (the CLI evaluates a large test
set in chunks and averages them, weighted by chunk size), and leave the model in
the training mode it found, also when it raises.

Arguments every model checks the same way
-----------------------------------------
``GenerativeModel`` guards the surface of every subclass (``__init_subclass__``
wraps the methods a model class defines), so no model file repeats the checks:
``sample(n)`` needs a whole number n >= 1 (``check_count``; not 2.5, not True),
and ``train_step``, ``evaluate`` and ``log_prob`` need at least one example (a
mean over none is undefined, and the message says so instead of a reshape error
from deep inside).
"""
import contextlib
import functools
import math
import numbers

import numpy as np

from .. import functional as F
from ..autograd.grad_mode import no_grad
from ..autograd.tensor import Tensor
from ..distributions import Bernoulli
from ..nn import Module


def descend(optimizer, loss):
    """One step of ``optimizer`` down ``loss``: zero its gradients, backpropagate, step; the loss as a float."""
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()
    return loss.item()


@contextlib.contextmanager
def frozen(module):
    """Inside the block ``module``'s parameters take no gradient (a player held fixed while the
    other steps); each parameter's own setting is put back afterwards, also after an error."""
    params = list(module.parameters())
    flags = [p.requires_grad for p in params]
    module.requires_grad_(False)
    try:
        yield module
    finally:
        for p, flag in zip(params, flags):
            p.requires_grad = flag


def bernoulli_log_prob(x, l):
    """log prod_i Bern(x_i; sigmoid(l_i)) of each example, shape (N,): the binary models' density.

        log p(x) = sum_i [ x_i l_i - softplus(l_i) ]      (log sigmoid(l) if x = 1, log sigmoid(-l) if 0)

    ``x`` (N, ...) binary, already checked by the model; ``l`` the logits, of x's shape or
    broadcastable to it. Each term is ``tinygen.distributions.Bernoulli``'s log_prob."""
    per_pixel = Bernoulli(logits=l, validate_args=False).log_prob(x)    # (N, ...)
    return F.sum(F.reshape(per_pixel, (x.shape[0], -1)), axis=1)


def check_count(n, who="sample"):
    """``n`` as a number of samples: a whole number >= 1 (a bool or 2.5 is a TypeError)."""
    if isinstance(n, (bool, np.bool_)) or not isinstance(n, numbers.Integral):
        raise TypeError(f"{who}: n must be a whole number of samples, got {n!r} ({type(n).__name__})")
    if n < 1:
        raise ValueError(f"{who}: n must be at least 1, got {n}")
    return int(n)


def _first(batch):
    """The array that says how many examples a batch holds: itself, or a tuple's first item."""
    return batch[0] if isinstance(batch, (tuple, list)) and batch else batch


def _guard_sample(method):
    @functools.wraps(method)
    def sample(self, n, *args, **kwargs):
        return method(self, check_count(n, f"{self.name or type(self).__name__}.sample"), *args, **kwargs)
    return sample


def _guard_batch(method):
    @functools.wraps(method)
    def guarded(self, batch, *args, **kwargs):
        shape = getattr(_first(batch), "shape", None)
        if shape and shape[0] == 0:
            raise ValueError(f"{self.name or type(self).__name__}.{method.__name__}: got 0 examples "
                             f"(shape {tuple(shape)}); it needs at least one")
        return method(self, batch, *args, **kwargs)
    return guarded


_GUARDS = {"sample": _guard_sample, "train_step": _guard_batch, "evaluate": _guard_batch,
           "log_prob": _guard_batch}


class GenerativeModel(Module):
    name = None       # set by @register
    kind = None       # 'explicit' or 'implicit'

    # read by the command line (see the module docstring); override in a model class
    default_steps = 2000
    default_batch_size = 64
    default_lr = None
    binary = False
    translates = False
    pictures_take_eval_batch = False
    data_kind = "image"

    def __init_subclass__(cls, **kwargs):
        """Every subclass's own sample/train_step/evaluate/log_prob get the shared checks."""
        super().__init_subclass__(**kwargs)
        for name, guard in _GUARDS.items():
            if name in cls.__dict__:
                setattr(cls, name, guard(cls.__dict__[name]))

    def __init__(self, image_shape=(1, 8, 8)):
        super().__init__()
        image_shape = tuple(int(s) for s in image_shape)
        if len(image_shape) != 3 or min(image_shape) < 1:
            raise ValueError(f"{type(self).__name__}: image_shape must be (C, H, W) with positive sizes, "
                             f"got {image_shape}")
        self.image_shape = image_shape
        self.optimizers = {}

    # --- checking what users pass ------------------------------------------
    def check_images(self, x, binary=False):
        """``x`` as a Tensor of shape (N, *image_shape); with ``binary`` its values must be 0 or 1."""
        if not isinstance(x, Tensor):
            # plain arrays take the model's own dtype (a float64 model for exact checks) and device
            first = next(iter(self.parameters()), None)
            x = Tensor(x, dtype=np.float32 if first is None else first.dtype,
                       device="cpu" if first is None else first.device)
        if x.ndim != 4 or tuple(x.shape[1:]) != self.image_shape:
            raise ValueError(f"{self.name}: expected images of shape (N, {', '.join(map(str, self.image_shape))}), "
                             f"got {tuple(x.shape)}")
        if binary:
            d = x.data
            if not ((d == 0) | (d == 1)).all():
                raise ValueError(f"{self.name}: a binary model needs pixels that are 0 or 1; got values in "
                                 f"[{float(d.min()):.3g}, {float(d.max()):.3g}] "
                                 f"(binarize first: tinygen.data.binarize(x))")
        return x

    # --- the surface -------------------------------------------------------
    def train_step(self, batch):
        """Explicit models train by maximum likelihood unless they say otherwise: one step of
        ``optimizers["main"]`` on the mean NLL, -1/N sum_n log p(x_n)."""
        if self.kind != "explicit" or "main" not in self.optimizers:
            raise NotImplementedError(f"{self.name}: train_step() must be written by the model")
        return {"nll": descend(self.optimizers["main"], -F.mean(self.log_prob(batch)))}

    def sample(self, n):
        raise NotImplementedError

    def log_prob(self, x):
        raise NotImplementedError(f"{self.name} is an implicit model: it can sample but has no density")

    def evaluate(self, batch):
        """Explicit models: test NLL in nats per image and in bits per dimension."""
        if self.kind != "explicit":
            raise NotImplementedError(f"{self.name}: evaluate() must be written by the model")
        was = self.training
        self.eval()
        try:
            with no_grad():
                lp = self.log_prob(batch)
        finally:
            self.train(was)   # also when log_prob raises: a caught error must not leave eval mode on
        nll = -float(lp.data.mean())
        d = int(np.prod(self.image_shape))
        return {"nll_nats": nll, "bits_per_dim": nll / (d * math.log(2))}

    def training_state(self):
        """Everything a resumed run needs: parameters, buffers and optimiser state."""
        return {"model": self.state_dict(),
                "optimizers": {k: opt.state_dict() for k, opt in self.optimizers.items()}}

    def load_training_state(self, state):
        self.load_state_dict(state["model"])
        for k, opt in self.optimizers.items():
            opt.load_state_dict(state["optimizers"][k])


for _name, _guard in _GUARDS.items():   # the base class's own methods too
    setattr(GenerativeModel, _name, _guard(GenerativeModel.__dict__[_name]))
