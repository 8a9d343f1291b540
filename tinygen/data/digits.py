"""The bundled 8x8 digits, the ``Dataset`` record every image set returns, and ``binarize``.

scikit-learn ships a small handwritten-digit set inside its wheel (1797 images of
8x8 pixels, grey levels 0..16, labels 0..9), so it is on every machine that has
tinygen installed and needs no download. That makes it the default data set for
examples and tests: a model can be trained on it in seconds on a laptop CPU.

``digits()`` returns it in tinygen's image convention (see DESIGN.md): NCHW
float32 in [0, 1], here ``(N, 1, 8, 8)`` with ``pixel / 16``, and int64 labels.

The train/test split is fixed, so numbers reported on "the digits test set" mean
the same images everywhere: the 1797 images are shuffled once by
``numpy.random.default_rng(0).permutation(1797)``; the first 1438 (80%) of that
order are the training set and the last 359 (``1797 // 5``) the test set.
"""
import functools
from typing import NamedTuple

import numpy as np


class Dataset(NamedTuple):
    """An image data set with a fixed train/test split (all NumPy arrays).

    train_images  float32 ``(N_train, C, H, W)`` in [0, 1]
    train_labels  int64 ``(N_train,)``
    test_images   float32 ``(N_test, C, H, W)`` in [0, 1]
    test_labels   int64 ``(N_test,)``

    It is a named tuple, so ``x, y, x_test, y_test = tinygen.data.digits()`` also works.
    """

    train_images: np.ndarray
    train_labels: np.ndarray
    test_images: np.ndarray
    test_labels: np.ndarray

    @property
    def image_shape(self):
        """``(C, H, W)`` of one image, e.g. ``(1, 8, 8)``: what ``models.build`` asks for."""
        return tuple(self.train_images.shape[1:])

    @property
    def num_classes(self):
        """Number of label values, taken as ``max label + 1`` over both splits."""
        return int(max(self.train_labels.max(initial=-1), self.test_labels.max(initial=-1))) + 1

    def __repr__(self):
        # The default named-tuple repr would print every pixel; shapes are what one wants to see.
        return (f"Dataset(train_images={self.train_images.shape} {self.train_images.dtype}, "
                f"train_labels={self.train_labels.shape}, test_images={self.test_images.shape}, "
                f"test_labels={self.test_labels.shape})")


DIGITS_SPLIT_SEED = 0
"""Seed of the one permutation that fixes the digits train/test split."""


@functools.lru_cache(maxsize=1)
def _load_digits_arrays():
    # Imported here, not at the top: scikit-learn takes ~1 s to import, and most
    # uses of tinygen.data (toy sets, the loader) never need it.
    try:
        from sklearn.datasets import load_digits
    except ImportError as exc:  # pragma: no cover - scikit-learn is an install requirement
        raise ImportError("tinygen.data.digits() needs scikit-learn (it ships the digits images): "
                          "pip install scikit-learn") from exc
    bunch = load_digits()
    images = (bunch.images.astype(np.float32) / np.float32(16.0))[:, None, :, :]
    labels = bunch.target.astype(np.int64)
    order = np.random.default_rng(DIGITS_SPLIT_SEED).permutation(len(labels))
    n_test = len(labels) // 5
    train, test = order[:-n_test], order[-n_test:]
    return images[train], labels[train], images[test], labels[test]


def digits():
    """scikit-learn's 8x8 digits as a ``Dataset``: images ``(N, 1, 8, 8)`` float32 in [0, 1].

    1438 training and 359 test images with the fixed split described in the module
    docstring. The load is cached; every call returns fresh copies, so changing
    the arrays in place cannot change what the next caller gets.
    """
    return Dataset(*(a.copy() for a in _load_digits_arrays()))


def binarize(x, threshold=0.5):
    """``1.0`` where ``x > threshold``, else ``0.0``, as float32 of the same shape.

    Binary models (FVSBN, NADE, PixelCNN on binary images) need {0, 1} pixels; a
    fixed threshold gives the same data set every run. Takes a NumPy (or CuPy)
    array or a tinygen ``Tensor`` and returns the same kind: a Tensor comes back
    as a new Tensor on the same device, with no gradient (thresholding has none).
    """
    tensor_class = _tensor_class()
    if tensor_class is not None and isinstance(x, tensor_class):
        import tinygen
        return tinygen.tensor((x.data > threshold).astype("float32"), device=x.device)
    if hasattr(x, "__array__") or hasattr(x, "__cuda_array_interface__"):
        # A NumPy or CuPy array: compare with its own module, so a GPU array stays on the GPU.
        return (x > threshold).astype("float32")
    return (np.asarray(x) > threshold).astype(np.float32)


def _tensor_class():
    """tinygen.Tensor, or None while the package is imported without its core."""
    import tinygen
    return getattr(tinygen, "Tensor", None)
