"""The Fréchet distance between two sets of feature vectors (FID's formula).

Fit a Gaussian to each set, a with mean mu_a and covariance S_a, b with mu_b and
S_b (rows are samples, columns features). The Fréchet (2-Wasserstein) distance
between N(mu_a, S_a) and N(mu_b, S_b), squared, is

    FD = ||mu_a - mu_b||^2 + Tr(S_a + S_b - 2 (S_a S_b)^(1/2))

FID is this number on Inception features of real and generated images;
``sample_frechet_distance`` in ``tinygen.metrics.classifier`` uses the
penultimate layer of a small digits classifier instead, so the numbers compare
only with each other, never with published FIDs.

The square-root term
--------------------
S_a S_b is not symmetric, and when a covariance is singular (fewer rows than
features, a constant or duplicated feature) a general matrix square root such
as ``scipy.linalg.sqrtm`` may fail or come back with a spurious imaginary part,
which is why FID code adds eps I to the covariances and retries. The trace
itself needs no such patch. With R_a = S_a^(1/2) and R_b = S_b^(1/2) (the
symmetric square roots, from eigendecompositions):

    S_a S_b = R_a (R_a S_b)  and  (R_a S_b) R_a = R_a S_b R_a = (R_a R_b)(R_a R_b)^T

and AB, BA have the same non-zero eigenvalues, so the eigenvalues of S_a S_b
are the squared singular values s_i^2 of R_a R_b: real and >= 0. The principal
square root has eigenvalues s_i, hence

    Tr (S_a S_b)^(1/2) = sum_i s_i = ||R_a R_b||_*        (the nuclear norm)

which is also the exact form of the Gaussian 2-Wasserstein distance for
singular covariances. Two symmetric eigendecompositions and one SVD are
backward stable: nothing complex appears, nothing is offset. Rounding can make
a tiny eigenvalue of S_a or S_b negative; it is clipped to 0 before the square
root, and the final FD is clipped at 0 (it is a squared distance; rounding
alone can push FD(X, X) a hair below zero).

Everything is float64. The covariances are the unbiased ones (divide by
N - 1), as ``numpy.cov`` and every FID implementation compute them, so each
set needs at least 2 rows.
"""
import numpy as np

from ._checks import float_matrix, same_width


def _sqrt_psd(s):
    """The symmetric square root of a symmetric positive semi-definite matrix."""
    w, v = np.linalg.eigh(s)
    return (v * np.sqrt(np.clip(w, 0.0, None))) @ v.T


def _mean_and_covariance(x):
    mu = x.mean(axis=0)
    d = x - mu
    return mu, d.T @ d / (x.shape[0] - 1)


def frechet_distance(feats_a, feats_b):
    """FD between the Gaussians fitted to ``feats_a`` (N_a, D) and ``feats_b`` (N_b, D): a float >= 0.

    Takes NumPy arrays or Tensors of any real dtype, computes in float64.
    Raises ValueError for sets that are not 2-D, have different widths D,
    fewer than 2 rows, or non-finite values.
    """
    op = "frechet_distance"
    a = float_matrix(feats_a, op, "feats_a", min_rows=2)
    b = float_matrix(feats_b, op, "feats_b", min_rows=2)
    same_width(a, b, op, ("feats_a", "feats_b"))
    mu_a, s_a = _mean_and_covariance(a)
    mu_b, s_b = _mean_and_covariance(b)
    trace_sqrt = np.linalg.svd(_sqrt_psd(s_a) @ _sqrt_psd(s_b), compute_uv=False).sum()
    dmu = mu_a - mu_b
    fd = dmu @ dmu + np.trace(s_a) + np.trace(s_b) - 2.0 * trace_sqrt
    return max(float(fd), 0.0)
