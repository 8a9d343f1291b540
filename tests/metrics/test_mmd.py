"""mmd: the unbiased MMD^2 U-statistic, its kernels, its gradient, and its errors."""
import math

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

import tinygen
from tinygen.autograd import Tensor, gradcheck, gradgradcheck
from tinygen.metrics import WAE_SCALES, mmd
from tinygen.metrics._kernel_sums import kernel_sum

FAST = settings(max_examples=15, deadline=None, derandomize=True)


def _kernel_matrix(a, b, kernel, scales):
    """k(a_i, b_j) straight from the formulas, by broadcasting."""
    r2 = ((a[:, None, :] - b[None, :, :]) ** 2).sum(axis=2)
    d = a.shape[1]
    if kernel == "imq":
        return sum(2 * d * s * s / (2 * d * s * s + r2) for s in scales)
    return sum(np.exp(-r2 / (2 * s * s)) for s in scales)


def _reference(x, y, kernel, scales, unbiased=True):
    kxx, kyy, kxy = (_kernel_matrix(a, b, kernel, scales) for a, b in ((x, x), (y, y), (x, y)))
    n, m = len(x), len(y)
    if unbiased:
        return ((kxx.sum() - np.trace(kxx)) / (n * (n - 1)) + (kyy.sum() - np.trace(kyy)) / (m * (m - 1))
                - 2 * kxy.mean())
    return kxx.mean() + kyy.mean() - 2 * kxy.mean()  # the biased V-statistic


@FAST
@given(st.integers(2, 12), st.integers(2, 12), st.integers(1, 4), st.sampled_from(["imq", "rbf"]),
       st.sampled_from([(1.0,), (0.5, 2.0), WAE_SCALES]), st.integers(0, 2**31))
def test_matches_the_formula(n, m, d, kernel, scales, seed):
    rng = np.random.default_rng(seed)
    x, y = rng.standard_normal((n, d)), rng.standard_normal((m, d)) + 0.5
    value = mmd(x, y, kernel=kernel, scales=scales)
    assert isinstance(value, float)
    assert value == pytest.approx(_reference(x, y, kernel, scales), rel=1e-9, abs=1e-12)
    assert value == pytest.approx(mmd(y, x, kernel=kernel, scales=scales), rel=1e-9, abs=1e-12)


@pytest.mark.parametrize("kernel", ["imq", "rbf"])
def test_unbiased_mean_is_zero_for_one_distribution(kernel):
    rng = np.random.default_rng(0)
    draws = np.array([mmd(rng.standard_normal((30, 2)), rng.standard_normal((30, 2)), kernel=kernel)
                      for _ in range(300)])
    standard_error = draws.std(ddof=1) / math.sqrt(len(draws))
    assert abs(draws.mean()) < 3 * standard_error
    assert (draws < 0).any()  # an unbiased estimate of 0 must sometimes be negative
    # The biased V-statistic on the same kind of draws is clearly positive: the test can tell.
    biased = np.array([_reference(rng.standard_normal((30, 2)), rng.standard_normal((30, 2)), kernel,
                                  (1.0,), unbiased=False) for _ in range(300)])
    assert biased.mean() > 10 * biased.std(ddof=1) / math.sqrt(len(biased))


@pytest.mark.parametrize("kernel", ["imq", "rbf"])
def test_shifted_distributions_give_a_large_positive_value(kernel):
    rng = np.random.default_rng(1)
    same = [mmd(rng.standard_normal((50, 3)), rng.standard_normal((50, 3)), kernel=kernel) for _ in range(50)]
    shifted = mmd(rng.standard_normal((50, 3)), rng.standard_normal((50, 3)) + 1.5, kernel=kernel)
    assert shifted > 0
    assert shifted > 10 * np.std(same)


def test_tensors_give_a_differentiable_tensor():
    rng = np.random.default_rng(2)
    x = tinygen.tensor(rng.standard_normal((6, 3)), requires_grad=True)
    y = tinygen.tensor(rng.standard_normal((5, 3)) + 1.0, requires_grad=True)
    for kernel in ("imq", "rbf"):
        value = mmd(x, y, kernel=kernel, scales=(0.7, 1.5))
        assert isinstance(value, tinygen.Tensor) and value.shape == () and value.dtype == np.float64
        assert value.item() == pytest.approx(mmd(x.numpy(), y.numpy(), kernel=kernel, scales=(0.7, 1.5)))
        assert gradcheck(lambda a, b: mmd(a, b, kernel=kernel, scales=(0.7, 1.5)), (x, y))


def test_float32_tensor_with_array_stays_float32():
    rng = np.random.default_rng(3)
    x = tinygen.tensor(rng.standard_normal((8, 2)).astype(np.float32), requires_grad=True)
    value = mmd(x, rng.standard_normal((7, 2)))
    assert value.dtype == np.float32
    value.backward()
    assert x.grad.shape == (8, 2) and np.isfinite(x.grad.numpy()).all()


@pytest.mark.parametrize("x, y, kwargs, error, message", [
    (np.zeros((1, 2)), np.zeros((5, 2)), {}, ValueError, r"x needs at least 2 row"),
    (np.zeros((5, 2)), np.zeros((5, 3)), {}, ValueError, r"same number of columns.*\(5, 2\) and \(5, 3\)"),
    (np.zeros((5, 2)), np.zeros((5, 2)), {"kernel": "laplace"}, ValueError,
     r"unknown kernel 'laplace'.*imq, rbf"),
    (np.zeros((5, 2)), np.zeros((5, 2)), {"scales": ()}, ValueError, r"scales is empty"),
    (np.zeros((5, 2)), np.zeros((5, 2)), {"scales": (1.0, -2.0)}, ValueError, r"every scale must be.*-2.0"),
    (np.zeros(5), np.zeros((5, 1)), {}, ValueError, r"x must be 2-D"),
    (tinygen.tensor(np.zeros((1, 2))), np.zeros((5, 2)), {}, ValueError,
     r"x must be 2-D with at least 2 rows"),
    (np.zeros((5, 2)), np.full((5, 2), np.inf), {}, ValueError, r"y .* non-finite"),
])
def test_bad_input(x, y, kwargs, error, message):
    with pytest.raises(error, match=message):
        mmd(x, y, **kwargs)


@settings(max_examples=15, deadline=None)
@given(st.integers(1, 4), st.integers(1, 4), st.sampled_from(["imq", "rbf"]),
       st.lists(st.floats(0.2, 5.0), min_size=1, max_size=3), st.integers(0, 99))
def test_the_kernel_summed_over_scales_is_twice_differentiable(n, m, kernel, scales, seed):
    """The one-op kernel sum (``metrics/_kernel_sums.py``) on drawn (n, m) squared distances."""
    params = [2.0 * s * s if kernel == "imq" else -1.0 / (2.0 * s * s) for s in scales]
    r2 = Tensor(np.random.default_rng(seed).uniform(0.0, 3.0, (n, m)), requires_grad=True)
    assert gradcheck(lambda t: kernel_sum(t, kernel, params), (r2,))
    assert gradgradcheck(lambda t: kernel_sum(t, kernel, params), (r2,))
