"""Counting what a generator covers: modes of a toy mixture, and clusters against labels.

Mode coverage (the VEEGAN protocol, Srivastava et al., 2017)
-------------------------------------------------------------
The toy sets of ``tinygen.data`` are mixtures of isotropic Gaussians of standard
deviation sigma around known centres c_1 .. c_K. For each sample x_n:

    k(n) = argmin_k ||x_n - c_k||                  its nearest centre
    HQ(n) = ||x_n - c_k(n)|| <= 3 sigma            a *high-quality* sample

    modes captured = #{ k : k = k(n) for some high-quality n }
    high quality   = (1/N) #{ n : HQ(n) }

A collapsed GAN scores few modes with high quality near 1; a blurry one many
modes with low quality. For exact samples of the mixture (well-separated
centres), every mode is captured and the high-quality fraction is the mass of
a 2-D Gaussian within 3 sigma: ||x - c||^2 / sigma^2 is chi-squared with 2
degrees of freedom, whose tail is exp(-r^2 / 2), so

    P(||x - c|| <= 3 sigma) = 1 - exp(-9 / 2) = 0.98889

Cluster accuracy
----------------
An unsupervised model (InfoGAN's categorical code, a mixture prior) puts
examples into clusters whose numbering is arbitrary. Its accuracy is the best
over one-to-one matchings m of cluster ids to labels:

    acc = max_m (1/N) #{ n : m(pred_n) = label_n }

With the contingency table C[i, j] = #{ n : pred_n = i, label_n = j } this is
the assignment problem max_m sum_i C[i, m(i)] / N, solved exactly by the
Hungarian method (``scipy.optimize.linear_sum_assignment``) instead of trying
all K! matchings. With more clusters than labels, the extra clusters match
nothing and count as errors (and the other way round).
"""
from typing import NamedTuple

import numpy as np

from ._checks import float_matrix, positive_number, same_width, to_numpy


class Coverage(NamedTuple):
    """What ``mode_coverage`` returns: ``modes, high_quality = mode_coverage(...)`` also works."""

    modes: int            # number of centres that are the nearest centre of a high-quality sample
    high_quality: float   # fraction of samples within n_std standard deviations of their nearest centre


def mode_coverage(samples, centers, std, n_std=3.0):
    """(modes captured, fraction of high-quality samples) of ``samples`` (N, D) around ``centers`` (K, D).

    ``std`` is the mixture's standard deviation; a sample is high quality within
    ``n_std * std`` of its nearest centre (3, as in VEEGAN).
    """
    op = "mode_coverage"
    x = float_matrix(samples, op, "samples")
    c = float_matrix(centers, op, "centers")
    same_width(x, c, op, ("samples", "centers"))
    radius = positive_number(std, op, "std") * positive_number(n_std, op, "n_std")
    distance = np.linalg.norm(x[:, None, :] - c[None, :, :], axis=2)  # (N, K)
    nearest = distance.argmin(axis=1)
    high_quality = distance[np.arange(len(x)), nearest] <= radius
    return Coverage(int(np.unique(nearest[high_quality]).size), float(high_quality.mean()))


def _labels(a, op, name):
    a = to_numpy(a)
    if a.ndim != 1:
        raise ValueError(f"{op}: {name} must be 1-D (one id per example), got shape {a.shape}")
    if a.dtype.kind not in "iub":
        raise TypeError(f"{op}: {name} must hold integer ids, got dtype {a.dtype}")
    return a


def cluster_accuracy(pred, labels):
    """Accuracy of cluster ids ``pred`` (N,) against ``labels`` (N,) under the best one-to-one matching."""
    op = "cluster_accuracy"
    pred, labels = _labels(pred, op, "pred"), _labels(labels, op, "labels")
    if pred.shape != labels.shape or len(pred) == 0:
        raise ValueError(f"{op}: pred and labels must be non-empty and of one length, got shapes "
                         f"{pred.shape} and {labels.shape}")
    # Any integer ids: renumber each side 0..K-1 before building the table.
    pred_ids, i = np.unique(pred, return_inverse=True)
    label_ids, j = np.unique(labels, return_inverse=True)
    table = np.bincount(i * len(label_ids) + j, minlength=len(pred_ids) * len(label_ids))
    table = table.reshape(len(pred_ids), len(label_ids))
    from scipy.optimize import linear_sum_assignment   # imported here: it takes 0.7 s
    rows, cols = linear_sum_assignment(table, maximize=True)
    return float(table[rows, cols].sum() / len(pred))
