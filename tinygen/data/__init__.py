"""Data for tinygen's models: image sets, toy 2-D sets and a batch loader.

- ``digits()``: scikit-learn's bundled 8x8 digits, ``(N, 1, 8, 8)`` in [0, 1], fixed split.
- ``mnist(root)``: MNIST from the four IDX files in a folder (never downloaded).
- ``binarize(x, threshold=0.5)``: {0, 1} float32 images for binary models.
- ``ring``, ``grid``, ``swiss_roll`` (and ``toy(name, n)``): 2-D sets for GANs,
  with ``ring_centers()`` / ``grid_centers()`` for mode-coverage metrics.
- ``DataLoader(arrays, batch_size, ...)``: seeded mini-batches as Tensors.
- ``captioned_digits()``: each image with an English caption of its digit, stroke
  thickness and slant, measured on the image (``captions.py``, ``measurements.py``);
  ``CAPTION_VOCABULARY``, ``caption_meaning``, ``CaptionAttributes``.
- ``unpaired_domains(name)``, ``attribute_domains()``: domains made by known
  transforms (dilation, erosion, a quarter turn, inversion) for CycleGAN and
  StarGAN, with the true translations kept for evaluation (``domains.py``).
- ``DATA_KINDS`` and ``batch_arrays(kind, split)``: which arrays a model's
  ``data_kind`` trains on ("image", "labelled", "toy", "captioned", "unpaired",
  "attributes"; see ``kinds.py``).

Images follow DESIGN.md: NCHW float32 in [0, 1]; labels are int64. Image sets
come as a ``Dataset`` named tuple ``(train_images, train_labels, test_images,
test_labels)`` of NumPy arrays; the loader turns rows into Tensors.
"""
from .captions import (CAPTION_VOCABULARY, MAX_CAPTION_WORDS, CaptionedDigits, CaptionMeaning, Vocabulary,
                       caption_meaning, caption_vocabulary, captioned_digits)
from .digits import Dataset, binarize, digits
from .domains import (ATTRIBUTES, UNPAIRED_DOMAINS, AttributeDomains, UnpairedDomains, apply_attributes,
                      attribute_combinations, attribute_domains, check_attributes, dilate, domain_transform,
                      erode, invert, rotate, unpaired_domains)
from .kinds import (DATA_KINDS, DEFAULT_DOMAINS, DataKind, batch_arrays, data_kind, derive_splits, derived_fields,
                    head, num_rows)
from .loader import DataLoader
from .measurements import (SLANTS, THICKNESS, CaptionAttributes, digits_caption_attributes, ink_mass, slant,
                           slant_category, thickness)
from .mnist import MNIST_FILES, IDXFormatError, mnist, read_idx, write_idx
from .toy import TOY_SETS, grid, grid_centers, ring, ring_centers, swiss_roll, toy, toy_modes

__all__ = [
    "Dataset", "digits", "binarize",
    "mnist", "MNIST_FILES", "IDXFormatError", "read_idx", "write_idx",
    "ring", "grid", "swiss_roll", "ring_centers", "grid_centers", "toy", "toy_modes", "TOY_SETS",
    "DataLoader",
    "captioned_digits", "CaptionedDigits", "Vocabulary", "CAPTION_VOCABULARY", "caption_vocabulary",
    "MAX_CAPTION_WORDS", "caption_meaning", "CaptionMeaning",
    "ink_mass", "slant", "thickness", "slant_category", "CaptionAttributes", "digits_caption_attributes",
    "THICKNESS", "SLANTS",
    "unpaired_domains", "UnpairedDomains", "UNPAIRED_DOMAINS", "domain_transform",
    "attribute_domains", "AttributeDomains", "ATTRIBUTES", "attribute_combinations", "apply_attributes",
    "check_attributes", "dilate", "erode", "rotate", "invert",
    "DATA_KINDS", "DataKind", "data_kind", "batch_arrays", "num_rows", "head",
    "derived_fields", "derive_splits", "DEFAULT_DOMAINS",
]
