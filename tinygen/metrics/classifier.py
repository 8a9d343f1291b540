"""A small convolutional digit classifier, trained with tinygen, that the image metrics look through.

FID judges samples by the statistics of a classifier's features: a generator
whose images a good classifier cannot tell from real ones in feature space is
a good generator. Inception is far too big for 8x8 digits, so tinygen trains
its own classifier, with its own layers and optimizer:

    h1 = relu(conv3x3(x;  1 -> c1, stride s1, pad 1))      s1 = 1 for 8x8 images, 2 for larger
    h2 = relu(conv3x3(h1; c1 -> c2, stride 2, pad 1))       side: ceil(ceil(H / s1) / 2)
    f  = relu(W_f flatten(h2) + b_f)                        (N, F): the *features*
    l  = W_o f + b_o                                        (N, K): class logits

trained by Adam on the cross-entropy  -mean_n log softmax(l_n)[y_n]. ``f``, the
penultimate layer, is what ``sample_frechet_distance`` compares.

Determinism: ``train_classifier`` takes a ``seed``. The initial weights are
drawn from a generator seeded with it (tinygen's own CPU generator is set for
the construction of the network and then put back, so training a classifier in
the middle of a run does not change the run's random stream), and the
mini-batches come from a ``DataLoader`` seeded with it. Same data, same seed,
same machine: the same weights.

Two classifiers come ready (see ``tinygen.metrics.samples``):

- ``digits_classifier()``: 8x8 digits, weights shipped in the package as
  ``digits_classifier.npz``, made by ``python -m tinygen.metrics.make_digits_classifier``;
- ``mnist_classifier(mnist_dir, cache_dir)``: 28x28 images, trained on the MNIST
  training files in ``mnist_dir`` on first use and cached in ``cache_dir``.

A classifier file is a tinygen checkpoint (``tinygen.save``, loaded without
pickle): ``{"format", "config", "model", "info"}``, where ``config`` rebuilds
the network and ``info`` holds what was measured when it was made.
"""
import contextlib
import functools
import hashlib
import math
from pathlib import Path

import numpy as np

from .. import backend
from .. import functional as F
from .. import nn
from ..autograd.grad_mode import no_grad
from ..autograd.tensor import tensor
from ..data.loader import DataLoader
from ..data.mnist import mnist
from ..optim import Adam
from ..serialization import load, save
from ._checks import to_numpy
from .frechet import frechet_distance

FORMAT = "tinygen-classifier"
PIXEL_TOLERANCE = 1e-5
"""How far outside [0, 1] a pixel may stray (rounding in a model's output) before it is an error."""
EVAL_BATCH = 1024
"""Rows per forward pass when computing features: bounds the im2col memory for large sample sets."""


class ConvClassifierNet(nn.Module):
    """The network of the module docstring: ``features(x)`` is f, ``forward(x)`` the logits l."""

    def __init__(self, image_size, channels=(16, 32), features=64, num_classes=10):
        super().__init__()
        c1, c2 = channels
        stride1 = 1 if image_size <= 8 else 2
        side = math.ceil(math.ceil(image_size / stride1) / 2)
        self.body = nn.Sequential(
            nn.Conv2d(1, c1, 3, stride=stride1, padding=1), nn.ReLU(),
            nn.Conv2d(c1, c2, 3, stride=2, padding=1), nn.ReLU(),
            nn.Flatten(), nn.Linear(c2 * side * side, features), nn.ReLU())
        self.head = nn.Linear(features, num_classes)

    def features(self, x):
        return self.body(x)

    def forward(self, x):
        return self.head(self.body(x))


class Classifier:
    """A trained ``ConvClassifierNet`` with array-in, array-out methods for the metrics.

    ``config``: the network's constructor arguments (``image_size``, ``channels``,
    ``features``, ``num_classes``); ``info``: a dict of what was measured when it
    was trained (test accuracy, recipe, ...). Images go in as ``(N, 1, S, S)``
    in [0, 1], NumPy arrays or Tensors on any device; results come out as NumPy.
    """

    def __init__(self, net, config, info=None):
        self.net = net.eval()
        self.config = dict(config)
        self.info = dict(info or {})

    @property
    def image_shape(self):
        return (1, self.config["image_size"], self.config["image_size"])

    @property
    def num_classes(self):
        return self.config["num_classes"]

    def features(self, images):
        """The penultimate layer f, float64 ``(N, F)``."""
        return self._run(images, self.net.features, "features")

    def logits(self, images):
        """The class logits l, float64 ``(N, K)``."""
        return self._run(images, self.net, "logits")

    def classify(self, images):
        """The predicted labels argmax_k l_k, int64 ``(N,)``."""
        return self.logits(images).argmax(axis=1)

    def accuracy(self, images, labels):
        """Fraction of ``images`` whose predicted label equals ``labels``."""
        labels = to_numpy(labels)
        predicted = self.classify(images)
        if labels.shape != predicted.shape:
            raise ValueError(f"Classifier.accuracy: {len(predicted)} images but labels of shape "
                             f"{labels.shape}")
        return float(np.mean(predicted == labels))

    def _run(self, images, layer, op):
        x = check_images(images, self.image_shape, f"Classifier.{op}")
        outputs = []
        with no_grad():
            for start in range(0, len(x), EVAL_BATCH):
                outputs.append(layer(tensor(x[start:start + EVAL_BATCH])).numpy())
        return np.concatenate(outputs).astype(np.float64)

    def save(self, path):
        """Write the classifier to ``path`` (an ``.npz`` checkpoint, atomically)."""
        save({"format": FORMAT, "config": self.config, "model": dict(self.net.state_dict()),
              "info": self.info}, path, compress=True)

    @classmethod
    def load(cls, path):
        """Read a classifier written by ``save`` (no pickle: a file can only hold arrays and numbers)."""
        state = load(path)
        if state.get("format") != FORMAT:
            raise ValueError(f"Classifier.load: {str(path)!r} is a tinygen checkpoint but not a "
                             f"classifier (format {state.get('format')!r}, expected {FORMAT!r})")
        config = state["config"]
        config["channels"] = tuple(config["channels"])
        net = ConvClassifierNet(**config)
        net.load_state_dict(state["model"])
        return cls(net, config, state.get("info"))

    def __repr__(self):
        acc = self.info.get("test_accuracy")
        return (f"Classifier(image_shape={self.image_shape}, features={self.config['features']}, "
                f"classes={self.num_classes}" + (f", test_accuracy={acc:.4f})" if acc is not None else ")"))


def check_images(images, image_shape, op):
    """``images`` as a float32 NumPy ``(N,) + image_shape`` array in [0, 1], or a clear error."""
    x = to_numpy(images)
    if x.dtype.kind not in "biuf":
        raise TypeError(f"{op}: images must hold real numbers, got dtype {x.dtype}")
    expected = "(N, " + ", ".join(str(s) for s in image_shape) + ")"
    if x.ndim != 4 or tuple(x.shape[1:]) != tuple(image_shape):
        hint = " (add the channel axis: images[:, None])" if x.shape[1:] == tuple(image_shape[1:]) else ""
        raise ValueError(f"{op}: images must have shape {expected}, got {x.shape}{hint}")
    if len(x) == 0:
        raise ValueError(f"{op}: got no images (shape {x.shape})")
    if not np.isfinite(x).all():
        raise ValueError(f"{op}: images (shape {x.shape}) have {int((~np.isfinite(x)).sum())} "
                         "non-finite value(s)")
    lo, hi = float(x.min()), float(x.max())
    if lo < -PIXEL_TOLERANCE or hi > 1 + PIXEL_TOLERANCE:
        raise ValueError(f"{op}: images must lie in [0, 1] (tinygen's image convention), got values "
                         f"from {lo:.4g} to {hi:.4g}; a generator's tanh output in [-1, 1] maps "
                         "back with (x + 1) / 2")
    return x.astype(np.float32)


@contextlib.contextmanager
def _seeded_cpu_generator(seed):
    """Draw from a generator seeded with ``seed`` inside the block; the caller's stream is kept."""
    saved = backend.get_rng_state()
    backend.set_rng_state(np.random.default_rng(seed).bit_generator.state)
    try:
        yield
    finally:
        backend.set_rng_state(saved)


def train_classifier(images, labels, *, seed, epochs, batch_size, lr, channels=(16, 32),
                     features=64, num_classes=10):
    """Train a ``ConvClassifierNet`` on ``images`` (N, 1, S, S) in [0, 1] and int ``labels`` (N,).

    Adam with learning rate ``lr`` on the mean cross-entropy, ``epochs`` passes of
    shuffled mini-batches of ``batch_size``; deterministic given ``seed`` (see the
    module docstring). Returns a ``Classifier`` whose ``info`` records the recipe.
    """
    op = "train_classifier"
    x = to_numpy(images)
    if x.ndim != 4 or x.shape[1] != 1 or x.shape[2] != x.shape[3]:
        raise ValueError(f"{op}: images must have shape (N, 1, S, S), got {x.shape}")
    x = check_images(x, x.shape[1:], op)
    y = to_numpy(labels)
    if y.dtype.kind not in "iu" or y.shape != (len(x),) or y.min() < 0 or y.max() >= num_classes:
        raise ValueError(f"{op}: labels must be {len(x)} integers in [0, {num_classes}), got shape "
                         f"{y.shape}, dtype {y.dtype}" + (f", values {y.min()}..{y.max()}"
                                                    if y.size and y.dtype.kind in "iu" else ""))
    y = y.astype(np.int64)
    config = {"image_size": int(x.shape[2]), "channels": tuple(int(c) for c in channels),
              "features": int(features), "num_classes": int(num_classes)}
    with _seeded_cpu_generator(seed):
        net = ConvClassifierNet(**config)
    optimizer = Adam(net.parameters(), lr=lr)
    loader = DataLoader((x, y), batch_size=batch_size, shuffle=True, seed=seed)
    net.train()
    for _ in range(epochs):
        for xb, yb in loader:
            loss = F.cross_entropy(net(xb), yb)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
    recipe = {"seed": seed, "epochs": epochs, "batch_size": batch_size, "lr": lr,
              "training_images": len(x)}
    return Classifier(net, config, {"recipe": recipe})


# --- the two ready-made classifiers -------------------------------------------------

DIGITS_WEIGHTS = Path(__file__).with_name("digits_classifier.npz")
"""The shipped weights of ``digits_classifier()`` (``setup.py`` installs them with the package)."""


@functools.lru_cache(maxsize=1)
def digits_classifier():
    """The classifier of 8x8 digits shipped with tinygen (>= 97% on the digits test split).

    Loaded once per process from ``DIGITS_WEIGHTS``; every call returns the same
    object. ``.info`` holds its test accuracy, its training recipe and
    ``fd_train_test``, the Fréchet distance between the digits training and test
    images in its feature space: the floor a generator's FD is compared with.
    Remake the file with ``python -m tinygen.metrics.make_digits_classifier``.
    """
    if not DIGITS_WEIGHTS.is_file():
        raise FileNotFoundError(f"digits_classifier: the weights file {str(DIGITS_WEIGHTS)!r} is missing; "
                                "make it with `python -m tinygen.metrics.make_digits_classifier` "
                                "or reinstall tinygen")
    return Classifier.load(DIGITS_WEIGHTS)


MNIST_RECIPE = {"seed": 0, "epochs": 2, "batch_size": 128, "lr": 2e-3}
"""How ``mnist_classifier`` trains: two passes over the 60000 training images (about 20 s on one CPU core)."""


def mnist_classifier(mnist_dir, cache_dir):
    """A classifier of 28x28 images trained on the MNIST training files in ``mnist_dir``, cached.

    The first call trains it (``MNIST_RECIPE``) and writes it to
    ``cache_dir/mnist_classifier-<fingerprint>.npz``; later calls load that file.
    The fingerprint hashes the training images, labels and recipe, so another
    folder of IDX files (Fashion-MNIST, a subset) gets its own classifier and a
    stale cache is never reused. Nothing is downloaded: ``mnist_dir`` must hold
    the four IDX files (see ``tinygen.data.mnist``). ``.info`` records the test
    accuracy and ``fd_train_test`` (the FD floor, as for ``digits_classifier``).
    """
    data = mnist(mnist_dir)
    digest = hashlib.sha256()
    for part in (data.train_images, data.train_labels, repr(sorted(MNIST_RECIPE.items())).encode()):
        digest.update(np.ascontiguousarray(part).tobytes() if isinstance(part, np.ndarray) else part)
    path = Path(cache_dir) / f"mnist_classifier-{digest.hexdigest()[:16]}.npz"
    if path.is_file():
        return Classifier.load(path)
    classifier = train_classifier(data.train_images, data.train_labels, **MNIST_RECIPE)
    measure(classifier, data)
    classifier.info["source"] = str(Path(mnist_dir).resolve())
    classifier.save(path)
    return classifier


def measure(classifier, data):
    """Record ``test_accuracy`` and ``fd_train_test`` of ``classifier`` on the ``Dataset`` ``data``."""
    classifier.info["test_accuracy"] = classifier.accuracy(data.test_images, data.test_labels)
    classifier.info["fd_train_test"] = frechet_distance(classifier.features(data.train_images),
                                                        classifier.features(data.test_images))
    return classifier
