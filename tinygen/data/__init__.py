"""Data for tinygen's models: image sets, toy 2-D sets and a batch loader.

- ``digits()``: scikit-learn's bundled 8x8 digits, ``(N, 1, 8, 8)`` in [0, 1], fixed split.
- ``mnist(root)``: MNIST from the four IDX files in a folder (never downloaded).
- ``binarize(x, threshold=0.5)``: {0, 1} float32 images for binary models.
- ``ring``, ``grid``, ``swiss_roll`` (and ``toy(name, n)``): 2-D sets for GANs,
  with ``ring_centers()`` / ``grid_centers()`` for mode-coverage metrics.
- ``DataLoader(arrays, batch_size, ...)``: seeded mini-batches as Tensors.
- ``DATA_KINDS`` and ``batch_arrays(kind, split)``: which arrays a model's
  ``data_kind`` trains on ("image", "labelled", "toy"; see ``kinds.py``).

Images follow DESIGN.md: NCHW float32 in [0, 1]; labels are int64. Image sets
come as a ``Dataset`` named tuple ``(train_images, train_labels, test_images,
test_labels)`` of NumPy arrays; the loader turns rows into Tensors.
"""
from .digits import Dataset, binarize, digits
from .kinds import DATA_KINDS, DataKind, batch_arrays, data_kind, head, num_rows
from .loader import DataLoader
from .mnist import MNIST_FILES, IDXFormatError, mnist, read_idx, write_idx
from .toy import TOY_SETS, grid, grid_centers, ring, ring_centers, swiss_roll, toy, toy_modes

__all__ = [
    "Dataset", "digits", "binarize",
    "mnist", "MNIST_FILES", "IDXFormatError", "read_idx", "write_idx",
    "ring", "grid", "swiss_roll", "ring_centers", "grid_centers", "toy", "toy_modes", "TOY_SETS",
    "DataLoader",
    "DATA_KINDS", "DataKind", "data_kind", "batch_arrays", "num_rows", "head",
]
