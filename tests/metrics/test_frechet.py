"""frechet_distance: FD(X, X) = 0, symmetry, equal covariances, scipy agreement, singular covariances."""
import numpy as np
import pytest
import scipy.linalg
from hypothesis import given, settings, strategies as st

import tinygen
from tinygen.metrics import frechet_distance

FAST = settings(max_examples=25, deadline=None, derandomize=True)


def _data(seed, n, d, mean=0.0):
    rng = np.random.default_rng(seed)
    return rng.standard_normal((n, d)) @ rng.standard_normal((d, d)) + mean


def _scipy_fd(a, b):
    """The textbook computation, with scipy's general matrix square root."""
    s_a, s_b = np.cov(a, rowvar=False), np.cov(b, rowvar=False)
    dmu = a.mean(axis=0) - b.mean(axis=0)
    return dmu @ dmu + np.trace(s_a + s_b - 2 * scipy.linalg.sqrtm(s_a @ s_b).real)


sizes = st.tuples(st.integers(2, 40), st.integers(1, 12), st.integers(0, 2**31))


@FAST
@given(sizes)
def test_fd_of_a_set_with_itself_is_zero(size):
    n, d, seed = size  # n < d included: singular covariance
    x = _data(seed, n, d)
    scale = np.trace(np.atleast_2d(np.cov(x, rowvar=False))) + 1.0
    assert 0.0 <= frechet_distance(x, x) <= 1e-6 * scale


@FAST
@given(sizes, st.integers(2, 40))
def test_fd_is_symmetric(size, n_b):
    n, d, seed = size
    a, b = _data(seed, n, d), _data(seed + 1, n_b, d, mean=0.3)
    assert frechet_distance(a, b) == pytest.approx(frechet_distance(b, a), rel=1e-9, abs=1e-9)


@FAST
@given(sizes)
def test_equal_covariances_give_squared_mean_difference(size):
    n, d, seed = size
    a = _data(seed, n, d)
    shift = np.random.default_rng(seed + 7).standard_normal(d)
    assert frechet_distance(a, a + shift) == pytest.approx(shift @ shift, rel=1e-6, abs=1e-8)


def test_one_dimensional_case_is_mean_and_std_differences():
    # d = 1: FD = (mu_a - mu_b)^2 + (sigma_a - sigma_b)^2
    a, b = _data(0, 30, 1), 3.0 * _data(1, 50, 1) + 2.0
    expected = (a.mean() - b.mean()) ** 2 + (a.std(ddof=1) - b.std(ddof=1)) ** 2
    assert frechet_distance(a, b) == pytest.approx(expected, rel=1e-12)


@pytest.mark.parametrize("n_a, n_b, d", [(50, 60, 3), (200, 150, 16), (500, 400, 40)])
def test_agrees_with_direct_scipy_computation(n_a, n_b, d):
    a, b = _data(n_a, n_a, d), _data(n_b + 1, n_b, d, mean=0.5)
    assert frechet_distance(a, b) == pytest.approx(_scipy_fd(a, b), rel=1e-8)


def test_isometric_embedding_keeps_fd_even_with_fewer_rows_than_features():
    # E has orthonormal rows, so x -> x E preserves means' distances and the covariances' spectra;
    # in 30 dimensions both covariances have rank <= 5 (5 features, 6 and 4 rows).
    a, b = _data(0, 6, 5), _data(1, 4, 5, mean=1.0)
    q, _ = np.linalg.qr(np.random.default_rng(2).standard_normal((30, 30)))
    e = q[:5]
    fd_embedded = frechet_distance(a @ e, b @ e)
    assert np.isfinite(fd_embedded)
    assert fd_embedded == pytest.approx(frechet_distance(a, b), rel=1e-7)
    zeros = np.zeros((6, 3)), np.zeros((4, 3))  # constant columns: zero variance
    assert frechet_distance(np.hstack([a, zeros[0]]), np.hstack([b, zeros[1]])) == \
        pytest.approx(frechet_distance(a, b), rel=1e-9)


def test_duplicated_columns():
    # [x, x_j] = x' (1, 1)-spread: the same as scaling column j by sqrt(2), then an isometry
    a, b = _data(3, 40, 4), _data(4, 30, 4, mean=0.5)
    dup_a, dup_b = np.hstack([a, a[:, 1:2]]), np.hstack([b, b[:, 1:2]])
    scaled_a, scaled_b = a.copy(), b.copy()
    scaled_a[:, 1] *= np.sqrt(2.0)
    scaled_b[:, 1] *= np.sqrt(2.0)
    assert frechet_distance(dup_a, dup_b) == pytest.approx(frechet_distance(scaled_a, scaled_b), rel=1e-8)
    assert frechet_distance(dup_a, dup_a) < 1e-8


def test_accepts_tensors_and_float32_and_computes_in_float64():
    a, b = _data(0, 20, 3), _data(1, 25, 3, mean=1.0)
    ta, tb = tinygen.tensor(a.astype(np.float32)), tinygen.tensor(b.astype(np.float32))
    a32, b32 = a.astype(np.float32), b.astype(np.float32)
    expected = frechet_distance(a32.astype(np.float64), b32.astype(np.float64))
    assert isinstance(frechet_distance(ta, tb), float)
    assert frechet_distance(ta, tb) == expected


@pytest.mark.parametrize("a, b, message", [
    (np.zeros((5, 3)), np.zeros((5, 4)), r"same number of columns.*\(5, 3\) and \(5, 4\)"),
    (np.zeros((1, 3)), np.zeros((5, 3)), r"feats_a needs at least 2 row.*\(1, 3\)"),
    (np.zeros((5, 3)), np.zeros((1, 3)), r"feats_b needs at least 2 row"),
    (np.zeros(5), np.zeros((5, 1)), r"feats_a must be 2-D.*\(5,\)"),
    (np.zeros((5, 3)), np.zeros((5, 3, 1)), r"feats_b must be 2-D.*\(5, 3, 1\)"),
    (np.zeros((5, 0)), np.zeros((5, 0)), r"at least 2 row\(s\) and 1 column"),
])
def test_bad_shapes(a, b, message):
    with pytest.raises(ValueError, match=message):
        frechet_distance(a, b)


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_non_finite_values(bad):
    a = np.ones((4, 2))
    a[2, 1] = bad
    with pytest.raises(ValueError, match=r"feats_a .* non-finite.*row 2, column 1"):
        frechet_distance(a, np.ones((4, 2)))


def test_non_numeric_dtype():
    with pytest.raises(TypeError, match="real numbers"):
        frechet_distance(np.array([["a", "b"], ["c", "d"]]), np.ones((2, 2)))
