"""Toy 2-D data sets for GAN experiments: a ring and a grid of Gaussians, and a swiss roll.

A GAN's best-known failure, mode collapse, is hard to see on images and easy to
see in the plane: the data is a mixture of small Gaussians around known centres,
and one can count which centres the generator's samples land near. That is why
``ring_centers()`` and ``grid_centers()`` are public: the mode-coverage metric in
``tinygen.metrics`` needs the true centres.

- ``ring``: ``n_modes`` Gaussians evenly spaced on a circle of ``radius``
  (the 8-Gaussian ring of the unrolled-GAN and VEEGAN papers).
- ``grid``: ``size x size`` Gaussians on a square lattice centred on the origin
  (the 25-Gaussian grid of the same papers).
- ``swiss_roll``: the 2-D spiral ``t (cos t, sin t)`` for t in [1.5 pi, 4.5 pi],
  scaled by 1/5 so it fits in about [-2.8, 2.8]; one connected manifold, no modes.

Every sampler returns float32 ``(n, 2)``. Each point's mode is drawn uniformly,
so mode counts differ from ``n / n_modes`` by sampling noise.

``seed`` is an int (the same int gives the same points, run after run), a
``numpy.random.Generator`` to draw from, or ``None`` for tinygen's own CPU
generator (the one ``tinygen.manual_seed`` resets).
"""
import inspect
import numbers

import numpy as np


def _rng(seed):
    if isinstance(seed, np.random.Generator):
        return seed
    if seed is None:
        from tinygen import backend
        return backend.generator("cpu")
    if isinstance(seed, numbers.Integral) and not isinstance(seed, bool) and seed >= 0:
        return np.random.default_rng(int(seed))
    raise ValueError(f"seed must be a non-negative int, a numpy.random.Generator or None; got {seed!r}")


def _check_count(name, value, minimum):
    if not isinstance(value, numbers.Integral) or isinstance(value, bool) or value < minimum:
        raise ValueError(f"{name} must be an int >= {minimum}; got {value!r}")
    return int(value)


def _check_scale(name, value):
    if not isinstance(value, numbers.Real) or not np.isfinite(value) or value < 0:
        raise ValueError(f"{name} must be a finite number >= 0; got {value!r}")
    return float(value)


def ring_centers(n_modes=8, radius=2.0):
    """The ``(n_modes, 2)`` float32 centres of ``ring``: angle ``2 pi k / n_modes``, k = 0, 1, ..."""
    n_modes = _check_count("ring: n_modes", n_modes, 1)
    radius = _check_scale("ring: radius", radius)
    angles = 2.0 * np.pi * np.arange(n_modes) / n_modes
    return (radius * np.stack([np.cos(angles), np.sin(angles)], axis=1)).astype(np.float32)


def grid_centers(size=5, spacing=2.0):
    """The ``(size**2, 2)`` float32 centres of ``grid``, row by row, centred on the origin.

    With the defaults: every pair of {-4, -2, 0, 2, 4}.
    """
    size = _check_count("grid: size", size, 1)
    spacing = _check_scale("grid: spacing", spacing)
    axis = spacing * (np.arange(size) - (size - 1) / 2.0)
    xs, ys = np.meshgrid(axis, axis, indexing="ij")
    return np.stack([xs.ravel(), ys.ravel()], axis=1).astype(np.float32)


def _mixture(n, centers, std, rng):
    # One uniform draw of the mode per point, then isotropic Gaussian noise around it.
    modes = rng.integers(len(centers), size=n)
    points = centers[modes].astype(np.float64) + std * rng.standard_normal((n, 2))
    return points.astype(np.float32)


def ring(n, seed=0, n_modes=8, radius=2.0, std=0.02):
    """``n`` points from ``n_modes`` Gaussians (std ``std``) on a circle of ``radius``: float32 ``(n, 2)``."""
    n = _check_count("ring: n", n, 0)
    std = _check_scale("ring: std", std)
    return _mixture(n, ring_centers(n_modes, radius), std, _rng(seed))


def grid(n, seed=0, size=5, std=0.05, spacing=2.0):
    """``n`` points from a ``size x size`` grid of Gaussians (std ``std``, ``spacing`` apart): float32 ``(n, 2)``."""
    n = _check_count("grid: n", n, 0)
    std = _check_scale("grid: std", std)
    return _mixture(n, grid_centers(size, spacing), std, _rng(seed))


def swiss_roll(n, seed=0, noise=0.05):
    """``n`` points on the 2-D swiss roll, plus Gaussian noise of std ``noise``: float32 ``(n, 2)``.

    ``t`` is uniform on [1.5 pi, 4.5 pi] (as in scikit-learn's ``make_swiss_roll``);
    the point is ``t (cos t, sin t) / 5``, and ``noise`` is in those scaled units.
    """
    n = _check_count("swiss_roll: n", n, 0)
    noise = _check_scale("swiss_roll: noise", noise)
    rng = _rng(seed)
    t = 1.5 * np.pi * (1.0 + 2.0 * rng.random(n))
    points = np.stack([t * np.cos(t), t * np.sin(t)], axis=1) / 5.0
    points += noise * rng.standard_normal((n, 2))
    return points.astype(np.float32)


TOY_SETS = {"ring": ring, "grid": grid, "swiss_roll": swiss_roll}
"""The names ``toy()`` knows, each mapped to its sampler."""


def toy(name, n, seed=0, **options):
    """Sample the toy set called ``name`` ("ring", "grid" or "swiss_roll"); ``options`` go to its sampler.

    The command line uses this to turn ``--data ring`` into points.
    """
    try:
        sampler = TOY_SETS[name]
    except (KeyError, TypeError):
        raise ValueError(f"unknown toy data set {name!r}; known: {', '.join(sorted(TOY_SETS))}") from None
    return sampler(n, seed=seed, **options)


_CENTERS = {"ring": ring_centers, "grid": grid_centers}


def toy_modes(name):
    """``(centers, std)`` of the mixture ``toy(name, n)`` draws from (the samplers' defaults), or
    None for a set without modes (``swiss_roll``): what ``tinygen.metrics.mode_coverage`` needs."""
    if name not in TOY_SETS:
        raise ValueError(f"unknown toy data set {name!r}; known: {', '.join(sorted(TOY_SETS))}")
    if name not in _CENTERS:
        return None
    std = inspect.signature(TOY_SETS[name]).parameters["std"].default
    return _CENTERS[name](), std
