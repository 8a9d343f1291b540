"""What the captions say about an image, measured on the image: ink mass, slant, and their
per-digit thresholds.

On the intensity ``p_ij`` of an image (the mean over its channels), with rows
``i = 0..H-1`` counted downward and columns ``j = 0..W-1`` to the right:

    m     = sum_ij p_ij                                   ink mass
    ybar  = sum_ij i p_ij / m,   xbar = sum_ij j p_ij / m  centre of the ink
    mu02  = sum_ij (i - ybar)^2 p_ij / m                  vertical spread
    mu11  = sum_ij (i - ybar) (j - xbar) p_ij / m         how column varies with row
    slant = -mu11 / mu02

``mu11 / mu02`` is the least-squares slope ``s`` of the line ``j = xbar + s (i - ybar)``
through the ink, in columns per row. A digit leaning right has its top (small i)
to the right (large j), so ``s < 0``: ``slant = -s`` is **positive for a digit
leaning right**, negative leaning left, 0 upright (and 0 for a blank image,
whose ``m`` or ``mu02`` is 0). It is a ratio of lengths, the same at 8x8 and 28x28.

Attributes, relative to the digit. The shapes of the digits have a thickness
and a slant of their own: an 8 holds more ink than a 7, and by this measure
every bundled six leans left (its stem) and 99% of the sevens lean right (their
diagonal). A caption should say how *this* image differs from a typical image of
its digit, so both attributes are judged against the
images of the same digit in a reference set (the training split):

    thickness = 1 ("thick")  if m > median of m over the reference images of the digit, else 0 ("thin")
    slant category = 0 ("left")     if slant < the digit's 1/3-quantile of slant,
                     2 ("right")    if slant > its 2/3-quantile,
                     1 ("upright")  otherwise

so on the reference each digit is about half thick, and a third of each slant.
The thresholds are a ``CaptionAttributes`` (``CaptionAttributes.fit(images,
labels)`` on the training split), applied unchanged to test images and to the
images a model generates, which is how a model measures its own samples.
"""
import functools
from typing import NamedTuple

import numpy as np

from ._checks import image_array, label_array

NUM_DIGITS = 10
THICKNESS = ("thin", "thick")              # thickness 0, 1
SLANTS = ("left", "upright", "right")      # slant category 0, 1, 2


def _intensity(images, op):
    x = image_array(images, op)
    return x[:, 0] if x.shape[1] == 1 else x.mean(axis=1)


def _moments(p):
    """(m, ybar, xbar, mu02, mu11) of intensities p (N, H, W), each (N,) float64.

    Computed from the row sums and one weighted column sum, so a batch of MNIST
    needs (N, H) temporaries, not (N, H, W). Coordinates are taken from the image
    centre, which keeps the float32 sums small before they are subtracted.
    """
    h, w = p.shape[1:]
    i = np.arange(h, dtype=np.float64) - (h - 1) / 2
    j = np.arange(w, dtype=np.float64) - (w - 1) / 2
    rows = p.sum(axis=2, dtype=np.float64)                   # (N, H): sum_j p_ij
    cols = p.sum(axis=1, dtype=np.float64)                   # (N, W): sum_i p_ij
    row_j = (p @ j.astype(p.dtype)).astype(np.float64)       # (N, H): sum_j j p_ij
    m = rows.sum(axis=1)
    safe = np.where(m > 0, m, 1.0)
    ybar, xbar = rows @ i / safe, cols @ j / safe
    mu02 = rows @ (i ** 2) / safe - ybar ** 2
    mu11 = row_j @ i / safe - ybar * xbar
    return m, ybar, xbar, mu02, mu11


def ink_mass(images):
    """``m = sum_ij p_ij``: the ink of each image (channels averaged), float64 ``(N,)``."""
    return _intensity(images, "ink_mass").sum(axis=(1, 2), dtype=np.float64)


def slant(images):
    """``-mu11 / mu02`` per image, float64 ``(N,)``: > 0 leaning right, < 0 left, 0 blank or flat."""
    m, _, _, mu02, mu11 = _moments(_intensity(images, "slant"))
    ok = (m > 0) & (mu02 > 1e-12)
    return np.where(ok, -mu11 / np.where(ok, mu02, 1.0), 0.0)


class CaptionAttributes(NamedTuple):
    """The per-digit thresholds of thickness and slant, fitted on a reference set.

    ink_median  (10,) median ink mass of the reference images of each digit
    slant_low   (10,) the 1/3-quantile of their slant: below it, "leaning left"
    slant_high  (10,) the 2/3-quantile: above it, "leaning right"

    A digit without reference images has NaN thresholds; measuring an image of it
    is a ValueError. The arrays are read-only, so a shared object cannot drift.
    """

    ink_median: np.ndarray
    slant_low: np.ndarray
    slant_high: np.ndarray

    @classmethod
    def fit(cls, images, labels):
        """The thresholds of ``images`` (N, C, H, W) with digit ``labels`` (N,) as the reference."""
        m, s = ink_mass(images), slant(images)
        labels = label_array(labels, len(m), "CaptionAttributes.fit", NUM_DIGITS)
        stats = np.full((3, NUM_DIGITS), np.nan)
        for digit in np.unique(labels):   # ten classes, not one pass per image
            mine = labels == digit
            stats[0, digit] = np.median(m[mine])
            stats[1:, digit] = np.quantile(s[mine], [1 / 3, 2 / 3])
        return cls.from_array(stats.ravel())

    def to_array(self):
        """The thresholds as one float64 ``(30,)`` array (for a model's state)."""
        return np.concatenate([self.ink_median, self.slant_low, self.slant_high])

    @classmethod
    def from_array(cls, array):
        """The inverse of ``to_array``."""
        array = np.array(array, dtype=np.float64).reshape(3, NUM_DIGITS)
        array.setflags(write=False)
        return cls(array[0], array[1], array[2])

    def _for(self, labels, count, op):
        labels = label_array(labels, count, op, NUM_DIGITS)
        missing = np.unique(labels[np.isnan(self.ink_median[labels])])
        if missing.size:
            raise ValueError(f"{op}: the reference set had no images of digit(s) {missing.tolist()}, "
                             "so their thresholds are unknown")
        return labels

    def thickness(self, images, labels):
        """1 (thick) where the ink mass is above the median of the image's digit, else 0: int64 (N,)."""
        m = ink_mass(images)
        labels = self._for(labels, len(m), "thickness")
        return (m > self.ink_median[labels]).astype(np.int64)

    def slant_category(self, images, labels):
        """0 (left), 1 (upright) or 2 (right) against the digit's slant tertiles: int64 (N,)."""
        s = slant(images)
        labels = self._for(labels, len(s), "slant_category")
        return (1 + (s > self.slant_high[labels]) - (s < self.slant_low[labels])).astype(np.int64)

    def measure(self, images, labels):
        """``(thickness, slant_category)`` of each image, read as an image of digit ``labels``."""
        return self.thickness(images, labels), self.slant_category(images, labels)


def thickness(images, labels, attributes=None):
    """``CaptionAttributes.thickness``; with ``attributes`` None the images are their own reference."""
    attributes = CaptionAttributes.fit(images, labels) if attributes is None else attributes
    return attributes.thickness(images, labels)


def slant_category(images, labels, attributes=None):
    """``CaptionAttributes.slant_category``; with ``attributes`` None the images are their own reference."""
    attributes = CaptionAttributes.fit(images, labels) if attributes is None else attributes
    return attributes.slant_category(images, labels)


@functools.lru_cache(maxsize=1)
def digits_caption_attributes():
    """The thresholds of the bundled digits' training split: what ``captioned_digits()`` and
    ``--data digits`` use, so a model of 8x8 digits can measure its samples with them."""
    from .digits import digits
    ds = digits()
    return CaptionAttributes.fit(ds.train_images, ds.train_labels)
