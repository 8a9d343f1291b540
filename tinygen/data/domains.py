"""Image domains made by known transforms: unpaired pairs for CycleGAN, attribute sets for StarGAN.

A translation model is judged by how close its output is to the right answer,
and real unpaired data sets have none. Here every domain is made from the digits
by a transform ``T`` written below, so the right answer for any image is known
exactly, yet the model is never shown it: the two domains come from disjoint
halves of the images, so no image appears in both.

Transforms (on ``(N, C, H, W)``; rows ``i`` down, columns ``j`` right)
----------------------------------------------------------------------
Grayscale dilation and erosion by a non-flat cross ``b`` (0 at the centre,
``-h`` at the four neighbours ``q``; "outside the image" contributes nothing):

    dilate(x)_ij = max( x_ij,  max_q x_{(i,j)+q} - h )        thick: strokes spread
    erode(x)_ij  = min( x_ij,  min_q x_{(i,j)+q} + h )        thin:  strokes shrink

with ``h = DEPTH = 1/3``. A neighbour lends its ink less h, so a stroke grows a
ring of at most 2/3 intensity. Why not a flat element (h = 0): on 8x8 digits a
flat 3x3 cross doubles the ink mass and lifts 61% of the pixels above 1/2 (the
digits become blobs), and its erosion keeps 13% of the ink (they vanish). With
h = 1/3 the ink mass of the bundled digits goes from 19.5 +- 2.2 to 27.1 +- 2.5
dilated (48% of the pixels above 1/2) and 12.7 +- 1.9 eroded: the domains differ
clearly *by ink mass* (by about three standard deviations), and the digits stay
readable. The same element serves 28x28
images, whose strokes are a few pixels wide. Erosion is dilation's dual,
``erode(x) = 1 - dilate(1 - x)``, and a cross is unchanged by a quarter turn, so
both commute with ``rotate``.

    rotate(x) = np.rot90(x, 1, axes=(2, 3))     a quarter turn counter-clockwise:
                                               (H, W) becomes (W, H)
    invert(x) = 1 - x                            white ink on black becomes black on white

Unpaired domains (``unpaired_domains(name)``)
---------------------------------------------
The images are shuffled by the seed and cut into two halves of equal size (one
image left out when N is odd): A is the first half as it is, B is ``T`` of the
second. ``truth_ab = T(images_a)`` and ``truth_ba`` (the untransformed sources of
B) are for evaluation only. A quarter turn of a non-square image changes its
shape, so "upright2rotated" refuses one.

Attribute domains (``attribute_domains()``)
-------------------------------------------
Binary attributes ``ATTRIBUTES = (thick, thin, rotated, inverted)``. Thick and
thin are mutually exclusive (a stroke is not both; StarGAN's hair colours are
exclusive in the same way): 3 stroke states x 2 x 2 = 12 valid combinations. The
image of source ``x`` with attributes ``c`` is

    apply_attributes(x, c) = invert^{c_inverted}( rotate^{c_rotated}( stroke_c(x) ) ),
    stroke_c = dilate if c_thick, erode if c_thin, else the identity,

inversion last, since dilating an inverted image would thin its strokes. So the
true translation of an example to any target ``c'`` is ``apply_attributes(source, c')``.
"""
import itertools
from typing import NamedTuple

import numpy as np

from ._checks import image_array, label_array

DEPTH = 1.0 / 3.0
"""How much ink a neighbour loses when it spreads under dilation (see the module docstring)."""

_CROSS = ((-1, 0), (1, 0), (0, -1), (0, 1))   # the four neighbours q of the structuring element


# --- transforms -------------------------------------------------------------------

def _span(shift, size):
    """Target and source slices of a shift by ``shift`` pixels along an axis of ``size``."""
    return slice(max(0, -shift), size - max(0, shift)), slice(max(0, shift), size - max(0, -shift))


def _morph(images, op, depth, combine, sign):
    x = image_array(images, op)
    out = np.array(x, dtype=np.float32 if x.dtype != np.float64 else np.float64)   # a copy
    h, w = x.shape[2:]
    for di, dj in _CROSS:   # four shifted extrema over the whole batch, no loop over images
        (ti, si), (tj, sj) = _span(di, h), _span(dj, w)
        combine(out[:, :, ti, tj], x[:, :, si, sj] + sign * depth, out=out[:, :, ti, tj])
    return out


def dilate(images, depth=DEPTH):
    """``max(x_ij, x_neighbour - depth)`` over the 4-neighbour cross: thicker strokes, same shape."""
    return _morph(images, "dilate", depth, np.maximum, -1.0)


def erode(images, depth=DEPTH):
    """``min(x_ij, x_neighbour + depth)`` over the 4-neighbour cross: thinner strokes, same shape."""
    return _morph(images, "erode", depth, np.minimum, 1.0)


def rotate(images):
    """A quarter turn counter-clockwise of each image: ``(N, C, H, W)`` becomes ``(N, C, W, H)``."""
    return np.array(np.rot90(image_array(images, "rotate"), 1, axes=(2, 3)), order="C")   # a copy


def invert(images):
    """``1 - x``: ink becomes background and background ink."""
    return 1 - image_array(images, "invert")


def _square(x, op):
    if x.shape[2] != x.shape[3]:
        raise ValueError(f"{op}: a quarter turn of an image of {x.shape[2]}x{x.shape[3]} pixels is "
                         f"{x.shape[3]}x{x.shape[2]}, so rotation needs square images; got {x.shape}")


# --- unpaired domains -------------------------------------------------------------

UNPAIRED_DOMAINS = {
    "thin2thick": "A: the digits as they are; B: dilated by the cross of depth 1/3 (more ink)",
    "upright2rotated": "A: the digits as they are; B: turned a quarter counter-clockwise (square images)",
}
"""The names ``unpaired_domains`` knows, each with what its two domains are."""

_DOMAIN_TRANSFORMS = {"thin2thick": dilate, "upright2rotated": rotate}


def domain_transform(name):
    """The map ``T: A -> B`` of the domains ``name``; an unknown name is a ValueError listing the known ones."""
    if not isinstance(name, str) or name not in _DOMAIN_TRANSFORMS:
        raise ValueError(f"unknown domains {name!r}; known: {', '.join(UNPAIRED_DOMAINS)}")
    return _DOMAIN_TRANSFORMS[name]


class UnpairedDomains(NamedTuple):
    """Two domains from disjoint halves of one image set, and the true map between them.

    images_a, images_b   float32 (M, C, H, W): A as it is, B = T(its own half)
    labels_a, labels_b   int64 (M,) digits of the sources (None when no labels were given)
    truth_ab             T(images_a): what A -> B should give, for evaluation only
    truth_ba             the sources of images_b: what B -> A should give, for evaluation only
    transform            T, a function of (N, C, H, W) arrays
    name                 the name in ``UNPAIRED_DOMAINS``
    index_a, index_b     int64 (M,) rows of the given images behind each half (disjoint)
    """

    images_a: np.ndarray
    images_b: np.ndarray
    labels_a: np.ndarray
    labels_b: np.ndarray
    truth_ab: np.ndarray
    truth_ba: np.ndarray
    transform: object
    name: str
    index_a: np.ndarray
    index_b: np.ndarray

    def __repr__(self):
        return f"UnpairedDomains({self.name!r}, images_a={self.images_a.shape}, images_b={self.images_b.shape})"


def _source(images, labels, op):
    """The images and labels to work on: the bundled digits' training split when images is None."""
    if images is None:
        if labels is not None:
            raise ValueError(f"{op}: labels given without images")
        from .digits import digits
        ds = digits()
        images, labels = ds.train_images, ds.train_labels
    x = image_array(images, op)
    return x, None if labels is None else label_array(labels, len(x), op)


def unpaired_domains(name, images=None, labels=None, seed=0):
    """Domains A and B of ``name`` from disjoint halves of ``images`` (None: the bundled digits'
    training split), shuffled by ``seed``; see the module docstring."""
    transform = domain_transform(name)
    x, y = _source(images, labels, f"unpaired_domains({name!r})")
    if transform is rotate:
        _square(x, f"unpaired_domains({name!r})")
    from .toy import _rng
    order = _rng(seed).permutation(len(x))
    half = len(x) // 2
    index_a, index_b = order[:half], order[half:2 * half]
    images_a, truth_ba = np.array(x[index_a], np.float32), np.array(x[index_b], np.float32)
    labels_a, labels_b = (None, None) if y is None else (y[index_a], y[index_b])
    return UnpairedDomains(images_a, transform(truth_ba), labels_a, labels_b, transform(images_a),
                           truth_ba, transform, name, index_a, index_b)


# --- attribute domains ------------------------------------------------------------

ATTRIBUTES = ("thick", "thin", "rotated", "inverted")
"""The binary attributes of ``attribute_domains``, in the order of an attribute vector."""

EXCLUSIVE = (("thick", "thin"),)
"""Pairs of attributes no image has both of."""

_ATTRIBUTE_TRANSFORMS = {"thick": dilate, "thin": erode, "rotated": rotate, "inverted": invert}
_ORDER = ("thick", "thin", "rotated", "inverted")   # stroke first, inversion last (module docstring)


def _check_names(names):
    names = tuple(names)
    unknown = [n for n in names if n not in _ATTRIBUTE_TRANSFORMS]
    if unknown or len(set(names)) != len(names) or not names:
        raise ValueError(f"attribute names must be distinct ones of {', '.join(ATTRIBUTES)}; got {names}")
    return names


def attribute_combinations(names=ATTRIBUTES):
    """Every valid attribute vector over ``names``, float32 ``(K_valid, K)``, in binary counting order
    (for ``ATTRIBUTES``: the 12 of 16 without thick and thin together)."""
    names = _check_names(names)
    every = np.array(list(itertools.product((0.0, 1.0), repeat=len(names))), dtype=np.float32)
    return every[_valid(every, names)]


def _valid(vectors, names):
    ok = np.ones(len(vectors), dtype=bool)
    for a, b in EXCLUSIVE:
        if a in names and b in names:
            ok &= ~((vectors[:, names.index(a)] == 1) & (vectors[:, names.index(b)] == 1))
    return ok


def check_attributes(attributes, names=ATTRIBUTES):
    """``attributes`` (K,) or (N, K) as a float32 array of 0s and 1s over ``names``; a wrong length,
    another value or an invalid combination (thick and thin together) is a ValueError saying which."""
    names = _check_names(names)
    if hasattr(attributes, "numpy") and not isinstance(attributes, np.ndarray):
        attributes = attributes.numpy()   # a tinygen Tensor
    try:
        c = np.asarray(attributes, dtype=np.float64)
    except (TypeError, ValueError):
        raise ValueError(f"attribute vectors must be numbers 0 or 1, got {attributes!r}") from None
    if c.ndim not in (1, 2) or c.shape[-1] != len(names):
        raise ValueError(f"attribute vectors must have {len(names)} entries ({', '.join(names)}), "
                         f"as (K,) or (N, K); got shape {c.shape}")
    bad = np.unique(c[(c != 0) & (c != 1)])   # NaN compares unequal to both, so it is caught too
    if bad.size:
        raise ValueError(f"attribute values must be 0 or 1, got {bad[:5].tolist()}")
    rows = np.flatnonzero(~_valid(c.reshape(-1, len(names)), names))
    if rows.size:
        pairs = " or ".join(f"{a} and {b}" for a, b in EXCLUSIVE if a in names and b in names)
        raise ValueError(f"{pairs} are mutually exclusive, but attribute vector(s) {rows[:5].tolist()} "
                         "have both")
    return c.astype(np.float32)


def apply_attributes(sources, attributes, names=ATTRIBUTES):
    """The images of ``sources`` (N, C, H, W) with ``attributes`` ((N, K), or (K,) for all), float32:
    stroke, then quarter turn, then inversion (module docstring). All zeros: a copy of the sources."""
    x = np.array(image_array(sources, "apply_attributes"), dtype=np.float32)   # a copy
    names = _check_names(names)
    c = check_attributes(attributes, names)
    c = np.broadcast_to(c, (len(x), len(names))) if c.ndim == 1 else c
    if len(c) != len(x):
        raise ValueError(f"apply_attributes: {len(c)} attribute vectors for {len(x)} images")
    for name in _ORDER:   # one transform per attribute over all the rows that have it
        if name in names:
            rows = c[:, names.index(name)] == 1
            if rows.any():
                if name == "rotated":
                    _square(x, "apply_attributes")
                x[rows] = _ATTRIBUTE_TRANSFORMS[name](x[rows])
    return x


class AttributeDomains(NamedTuple):
    """Images with binary attributes, each made from its source by the known transforms.

    images      float32 (N, C, H, W) = apply_attributes(sources, attributes)
    attributes  float32 (N, K) of 0/1 over ``names``
    sources     float32 (N, C, H, W), the untransformed images
    labels      int64 (N,) digits of the sources (None when no labels were given)
    names       the attribute names, ``ATTRIBUTES`` unless chosen
    """

    images: np.ndarray
    attributes: np.ndarray
    sources: np.ndarray
    labels: np.ndarray
    names: tuple

    def __repr__(self):
        return f"AttributeDomains(images={self.images.shape}, names={self.names})"


def attribute_domains(images=None, labels=None, seed=0, names=ATTRIBUTES):
    """Each image of ``images`` (None: the bundled digits' training split) with an attribute vector
    drawn by ``seed`` uniformly over the valid combinations of ``names``, and its transformed image.
    Without "rotated" in ``names``, non-square images work too."""
    x, y = _source(images, labels, "attribute_domains")
    combinations = attribute_combinations(names)
    if "rotated" in names:
        _square(x, "attribute_domains")
    from .toy import _rng
    attributes = combinations[_rng(seed).integers(len(combinations), size=len(x))]
    sources = np.array(x, dtype=np.float32)
    return AttributeDomains(apply_attributes(sources, attributes, names), attributes, sources,
                            None if y is None else y.copy(), tuple(names))
