"""The two backward paths of the fused ops: array arithmetic when no graph is recorded, Tensor ops
under ``create_graph``. Both must give the same gradients (to 1e-12 in float64), and the graph path
must still be differentiable again.

Covered: the normalizations' ``Standardize`` op (batch, instance and layer norm, with and without
the affine map, and with gradients reaching its mu and var outputs too), relu, leaky_relu (slopes
below 0, 0, between 0 and 1 and above 1), tanh and sigmoid; inputs in the memory layouts the
convolutions hand them (channels last, channel major, a cropped view), since the fast path lays the
gradient out like its saved arrays.
"""
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import tinygen.functional as F
from tinygen.autograd import Tensor, grad, gradgradcheck
from tinygen.functional.normalization import _standardize
from tinygen.testing import arrays

from strategies import check, fast


def both_paths(fn, *arrays_):
    """(gradients without a graph, gradients under create_graph) of sum(fn(*leaves) * r) for a fixed r."""
    leaves = [Tensor(a, requires_grad=True) for a in arrays_]
    out = fn(*leaves)
    r = Tensor(np.random.default_rng(1).standard_normal(out.shape))
    plain = grad((out * r).sum(), leaves)
    leaves2 = [Tensor(a, requires_grad=True) for a in arrays_]
    graphed = grad((fn(*leaves2) * r).sum(), leaves2, create_graph=True)
    return [g.numpy() for g in plain], [g.numpy() for g in graphed]


def assert_paths_agree(fn, *arrays_):
    plain, graphed = both_paths(fn, *arrays_)
    for a, b in zip(plain, graphed):
        np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-12)


def relaid(x, layout):
    """x with the same values in another memory order (as the convolutions produce them)."""
    if layout == "nhwc":
        return np.ascontiguousarray(x.transpose(0, 2, 3, 1)).transpose(0, 3, 1, 2)
    if layout == "cnhw":
        return np.ascontiguousarray(x.transpose(1, 0, 2, 3)).transpose(1, 0, 2, 3)
    if layout == "cropped":
        n, c, h, w = x.shape
        big = np.zeros((n, h + 2, w + 3, c))
        big[:, 1:h + 1, 2:w + 2] = x.transpose(0, 2, 3, 1)
        return big[:, 1:h + 1, 2:w + 2].transpose(0, 3, 1, 2)
    return x


@st.composite
def images(draw):
    """(N, C, H, W) with H != W and at least 2 values per instance-norm slice."""
    n, c, h = draw(st.integers(1, 3)), draw(st.integers(1, 3)), draw(st.integers(1, 3))
    w = h + draw(st.integers(1, 2))
    return draw(arrays((n, c, h, w), domain="distinct"))


LAYOUTS = st.sampled_from(["nchw", "nhwc", "cnhw", "cropped"])


# --- the normalizations ------------------------------------------------------------

@fast(20)
@given(images(), LAYOUTS, st.sampled_from(["both", "weight", "bias", "none"]), st.integers(0, 100))
def test_batch_and_instance_norm_paths_agree(x, layout, affine, seed):
    rng = np.random.default_rng(seed)
    c = x.shape[1]
    w, b = rng.uniform(0.5, 2.0, c), rng.uniform(-1, 1, c)
    x = relaid(x, layout)
    use_w, use_b = affine in ("both", "weight"), affine in ("both", "bias")
    extra = [a for a, used in ((w, use_w), (b, use_b)) if used]

    def norm(op):
        def fn(t, *wb):
            it = iter(wb)
            wt, bt = (next(it) if use_w else None), (next(it) if use_b else None)
            if op == "batch":
                return F.batch_norm(t, None, None, wt, bt, training=True)
            return F.instance_norm(t, wt, bt)
        return fn
    if x.shape[0] * x.shape[2] * x.shape[3] > 1:
        assert_paths_agree(norm("batch"), x, *extra)
    assert_paths_agree(norm("instance"), x, *extra)


@fast(15)
@given(images(), st.integers(1, 3), st.integers(0, 100))
def test_layer_norm_paths_agree(x, k, seed):
    rng = np.random.default_rng(seed)
    shape = x.shape[4 - k:]
    w, b = rng.uniform(0.5, 2.0, shape), rng.uniform(-1, 1, shape)
    assert_paths_agree(lambda t, wt, bt: F.layer_norm(t, shape, wt, bt), x, w, b)
    assert_paths_agree(lambda t: F.layer_norm(t, shape), relaid(x, "nhwc"))


@fast(15)
@given(images(), st.sampled_from([(0, 2, 3), (2, 3), (1, 2, 3)]), st.integers(0, 100))
def test_gradients_through_mu_and_var_as_well(x, axes, seed):
    """Standardize's outputs are y, mu and var; a loss using all three takes both paths alike."""
    rng = np.random.default_rng(seed)
    c = x.shape[1]
    view = (1, c, 1, 1)
    w, b = rng.uniform(0.5, 2.0, c), rng.uniform(-1, 1, c)
    r_mu = Tensor(rng.standard_normal([1 if i in axes else n for i, n in enumerate(x.shape)]))
    r_var = Tensor(rng.standard_normal(r_mu.shape))
    per_channel = 1 not in axes

    def fn(t, wt, bt):
        if per_channel:
            y, mu, var = _standardize(t, axes, 1e-5, wt, bt, view)
        else:
            y, mu, var = _standardize(t, axes, 1e-5)
            y = y * wt.reshape(view) + bt.reshape(view)
        return y + ((mu * r_mu).sum() + (var * r_var).sum())
    assert_paths_agree(fn, x, w, b)
    check(fn, x, w, b, second=True)


@fast(10)
@given(images(), st.integers(0, 100))
def test_batch_norm_has_second_derivatives(x, seed):
    """gradgradcheck through the fused batch norm in training mode (a penalty through D's BN)."""
    if x.shape[0] * x.shape[2] * x.shape[3] < 2:
        x = np.concatenate([x, x[:, :, :, ::-1] + 0.5])
    rng = np.random.default_rng(seed)
    c = x.shape[1]
    w, b = rng.uniform(0.5, 2.0, c), rng.uniform(-1, 1, c)
    check(lambda t, wt, bt: F.batch_norm(t, None, None, wt, bt, training=True), x, w, b, second=True)
    check(lambda t: F.batch_norm(t, None, None, training=True) ** 2, x, second=True)


def test_running_statistics_are_unchanged_by_the_fusion():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((5, 3, 4, 2)) * 2 + 1
    rm, rv = Tensor(np.zeros(3)), Tensor(np.ones(3))
    F.batch_norm(Tensor(relaid(x, "nhwc")), rm, rv, training=True, momentum=0.3)
    m = 5 * 4 * 2
    np.testing.assert_allclose(rm.numpy(), 0.3 * x.mean(axis=(0, 2, 3)), rtol=1e-12)
    np.testing.assert_allclose(rv.numpy(), 0.7 + 0.3 * x.var(axis=(0, 2, 3)) * m / (m - 1), rtol=1e-12)


def test_float32_stays_float32_on_both_paths():
    x = np.random.default_rng(0).standard_normal((4, 3, 2, 5)).astype(np.float32)
    w, b = np.ones(3, np.float32), np.zeros(3, np.float32)
    fn = lambda t, wt, bt: F.batch_norm(t, None, None, wt, bt, training=True)  # noqa: E731
    plain, graphed = both_paths(fn, x, w, b)
    assert all(g.dtype == np.float32 for g in plain + graphed)
    for a, g in zip(plain, graphed):
        np.testing.assert_allclose(a, g, rtol=1e-4, atol=1e-5)


# --- the activations ----------------------------------------------------------------

ACTIVATIONS = {
    "relu": F.relu,
    "leaky_relu": lambda t: F.leaky_relu(t, 0.2),
    "leaky_relu_0": lambda t: F.leaky_relu(t, 0.0),
    "leaky_relu_negative": lambda t: F.leaky_relu(t, -0.5),
    "leaky_relu_steep": lambda t: F.leaky_relu(t, 1.5),
    "tanh": F.tanh,
    "sigmoid": F.sigmoid,
}


@pytest.mark.parametrize("name", list(ACTIVATIONS))
def test_activation_paths_agree(name):
    @fast(10)
    @given(images(), LAYOUTS)
    def run(x, layout):
        assert_paths_agree(ACTIVATIONS[name], relaid(x, layout))
    run()


@pytest.mark.parametrize("slope", [0.2, 0.0, -0.5, 1.0, 1.5])
def test_leaky_relu_values_including_infinities(slope):
    x = np.array([-2.0, -0.5, 0.0, 0.5, 3.0])
    t = Tensor(x, requires_grad=True)
    y = F.leaky_relu(t, slope)
    np.testing.assert_array_equal(y.numpy(), np.where(x > 0, x, slope * x))
    y.sum().backward()
    np.testing.assert_allclose(t.grad.numpy(), np.where(x > 0, 1.0, slope), rtol=1e-15)
    # +inf stays +inf for every slope (a x is nan at a = 0: the max ignores it); -inf scales
    ends = F.leaky_relu(Tensor(np.array([-np.inf, np.inf])), slope).numpy()
    assert ends[1] == np.inf
    if slope != 0:
        assert ends[0] == slope * -np.inf


def test_zero_dimensional_inputs_take_the_fast_path():
    for name, fn in ACTIVATIONS.items():
        t = Tensor(np.float64(0.7), requires_grad=True)
        fn(t).backward()
        assert isinstance(t.grad.data, np.ndarray) and t.grad.shape == (), name


def test_activation_second_derivatives_still_hold():
    x = np.random.default_rng(3).uniform(0.2, 2.0, (2, 3)) * np.array([1, -1, 1])
    for name, fn in ACTIVATIONS.items():
        assert gradgradcheck(fn, [Tensor(x, requires_grad=True)]), name
