"""BatchNorm1d / BatchNorm2d: batch statistics, running statistics, modes, gradients."""
import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

import tinygen
import tinygen.nn as nn
from tinygen.autograd import gradcheck

SHAPES = [(nn.BatchNorm1d, (16, 3)), (nn.BatchNorm1d, (8, 3, 5)), (nn.BatchNorm2d, (4, 3, 5, 6))]


def _reduce_axes(ndim):
    return (0,) + tuple(range(2, ndim))


def _data(shape, seed=0, dtype=np.float32):
    rng = np.random.default_rng(seed)
    # channels with different means and scales, so normalisation has work to do
    c = shape[1]
    loc = np.arange(c).reshape((1, c) + (1,) * (len(shape) - 2)) * 3.0
    scale = (1 + np.arange(c)).reshape(loc.shape)
    return (loc + scale * rng.standard_normal(shape)).astype(dtype)


@pytest.mark.parametrize("cls,shape", SHAPES)
def test_training_output_is_normalised_per_channel(cls, shape):
    bn = cls(shape[1])
    y = bn(tinygen.tensor(_data(shape))).numpy()
    axes = _reduce_axes(len(shape))
    np.testing.assert_allclose(y.mean(axis=axes), 0, atol=1e-5)
    np.testing.assert_allclose(y.var(axis=axes), 1, atol=1e-3)  # var/(var + eps)


@pytest.mark.parametrize("cls,shape", SHAPES)
def test_affine_parameters_scale_and_shift(cls, shape):
    bn = cls(shape[1])
    bn.weight.data[...] = [2.0, 0.5, 1.0]
    bn.bias.data[...] = [1.0, -1.0, 0.0]
    y = bn(tinygen.tensor(_data(shape))).numpy()
    axes = _reduce_axes(len(shape))
    np.testing.assert_allclose(y.mean(axis=axes), [1, -1, 0], atol=1e-5)
    np.testing.assert_allclose(y.std(axis=axes), [2, 0.5, 1], atol=1e-3)


@pytest.mark.parametrize("cls,shape", SHAPES)
def test_running_stats_follow_the_momentum_formula_exactly(cls, shape):
    momentum = 0.3
    bn = cls(shape[1], momentum=momentum)
    axes = _reduce_axes(len(shape))
    m = int(np.prod(shape)) // shape[1]
    rm, rv = np.zeros(shape[1]), np.ones(shape[1])
    for step in range(3):
        x = _data(shape, seed=step).astype(np.float64)
        bn(tinygen.tensor(x.astype(np.float32)))
        x32 = x.astype(np.float32).astype(np.float64)
        rm = (1 - momentum) * rm + momentum * x32.mean(axis=axes)
        rv = (1 - momentum) * rv + momentum * x32.var(axis=axes) * m / (m - 1)  # unbiased
        np.testing.assert_allclose(bn.running_mean.numpy(), rm, rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(bn.running_var.numpy(), rv, rtol=1e-5, atol=1e-6)
    assert bn.running_mean.dtype == np.float32


@pytest.mark.parametrize("cls,shape", SHAPES)
def test_eval_uses_running_stats_and_leaves_them_alone(cls, shape):
    bn = cls(shape[1])
    bn.running_mean.data[...] = [1.0, 2.0, 3.0]
    bn.running_var.data[...] = [4.0, 0.25, 1.0]
    bn.weight.data[...] = [1.0, 2.0, 3.0]
    bn.bias.data[...] = [0.5, 0.0, -0.5]
    bn.eval()
    x = _data(shape)
    y = bn(tinygen.tensor(x)).numpy()
    view = (1, shape[1]) + (1,) * (len(shape) - 2)
    rm, rv = bn.running_mean.numpy().reshape(view), bn.running_var.numpy().reshape(view)
    w, b = bn.weight.numpy().reshape(view), bn.bias.numpy().reshape(view)
    np.testing.assert_allclose(y, (x - rm) / np.sqrt(rv + 1e-5) * w + b, rtol=1e-5, atol=1e-5)
    np.testing.assert_array_equal(bn.running_mean.numpy(), [1, 2, 3])
    # one sample alone gives the same answer as inside its batch
    np.testing.assert_allclose(bn(tinygen.tensor(x[:1])).numpy(), y[:1], rtol=1e-6)


def test_eval_mode_gradients_flow_to_input_and_affine():
    bn = nn.BatchNorm1d(3).double().eval()
    x = tinygen.tensor(_data((4, 3)).astype(np.float64), requires_grad=True)
    bn(x).sum().backward()
    expected = bn.weight.numpy() / np.sqrt(bn.running_var.numpy() + 1e-5)
    np.testing.assert_allclose(x.grad.numpy(), np.broadcast_to(expected, (4, 3)))
    assert bn.weight.grad is not None and bn.bias.grad is not None


@settings(max_examples=10, deadline=None)
@given(n=st.integers(2, 4), c=st.integers(1, 3), spatial=st.sampled_from([(), (3,), (2, 2)]),
       seed=st.integers(0, 1000))
def test_training_forward_gradcheck(n, c, spatial, seed):
    rng = np.random.default_rng(seed)
    shape = (n, c) + spatial
    x = rng.standard_normal(shape)
    w = rng.standard_normal(c) + 1.5
    b = rng.standard_normal(c)
    fn = lambda x, w, b: nn.batch_norm(x, None, None, w, b, training=True)  # noqa: E731
    assert gradcheck(fn, [x, w, b], atol=1e-5, rtol=1e-4)


@pytest.mark.parametrize("cls,shape", [(nn.BatchNorm1d, (4, 2)), (nn.BatchNorm1d, (3, 2, 3)),
                                       (nn.BatchNorm2d, (2, 2, 2, 3))])
def test_module_gradients_in_float64(cls, shape, param_check):
    bn = cls(shape[1]).double()
    bn.weight.data[...] = [1.5, -0.5]
    x = tinygen.tensor(_data(shape).astype(np.float64))
    param_check(bn, [x])
    assert bn.weight.grad is not None and bn.bias.grad is not None
    # y sums to bias * m per channel whatever x is, so d(sum y)/d bias = m and d(sum y)/d weight = 0
    bn.zero_grad()
    bn(x).sum().backward()
    m = int(np.prod(shape)) // shape[1]
    np.testing.assert_allclose(bn.bias.grad.numpy(), m)
    np.testing.assert_allclose(bn.weight.grad.numpy(), 0, atol=1e-10)


def test_without_affine():
    bn = nn.BatchNorm2d(3, affine=False)
    assert list(bn.parameters()) == [] and bn.weight is None
    assert list(bn.state_dict()) == ["running_mean", "running_var"]
    y = bn(tinygen.tensor(_data((2, 3, 4, 4)))).numpy()
    np.testing.assert_allclose(y.mean(axis=(0, 2, 3)), 0, atol=1e-5)


def test_errors():
    with pytest.raises(ValueError, match=r"more than 1 value per channel when training, got input shape \(1, 3\)"):
        nn.BatchNorm1d(3)(tinygen.randn(1, 3))
    with pytest.raises(ValueError, match=r"input has 4 channels \(axis 1 of shape \(2, 4\)\), expected 3"):
        nn.BatchNorm1d(3)(tinygen.randn(2, 4))
    with pytest.raises(ValueError, match=r"expected input \(N, C, H, W\), got shape \(2, 3\)"):
        nn.BatchNorm2d(3)(tinygen.randn(2, 3))
    with pytest.raises(ValueError, match=r"expected input \(N, C\) or \(N, C, L\)"):
        nn.BatchNorm1d(3)(tinygen.randn(2, 3, 4, 4))
    nn.BatchNorm2d(3)(tinygen.randn(1, 3, 2, 1))  # one sample but two values per channel is fine
    nn.BatchNorm1d(3).eval()(tinygen.randn(1, 3))  # and eval needs no batch at all


def test_float64_input_keeps_float32_running_stats():
    bn = nn.BatchNorm1d(3)
    y = bn(tinygen.tensor(_data((5, 3)).astype(np.float64)))
    assert y.dtype == np.float64 and bn.running_var.dtype == np.float32
    bn.eval()
    assert bn(tinygen.tensor(_data((5, 3)).astype(np.float64))).dtype == np.float64
