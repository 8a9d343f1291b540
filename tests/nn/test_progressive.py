"""PixelNorm, MinibatchStd and the equalized-learning-rate layers against their reference cases.

Each layer is checked for the property that defines it (unit mean square and scale
invariance; the notes' minibatch-std reference input; the stored weight's gradient
being c times the effective weight's), against a direct NumPy computation, and by
float64 gradient checks over drawn shapes (H != W).
"""
import math

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

import tinygen
import tinygen.functional as F
import tinygen.nn as nn
from tinygen.autograd import Tensor, gradcheck, gradgradcheck


def _x(shape, seed=0, dtype=np.float64):
    return np.random.default_rng(seed).standard_normal(shape).astype(dtype)


# --- PixelNorm ----------------------------------------------------------------------

def test_pixel_norm_gives_unit_mean_square_over_channels_and_matches_numpy():
    x = _x((3, 5, 2, 4)) * 7.0
    y = nn.PixelNorm()(Tensor(x)).numpy()
    np.testing.assert_allclose((y * y).mean(axis=1), 1.0, rtol=1e-6)
    np.testing.assert_allclose(y, x / np.sqrt((x * x).mean(axis=1, keepdims=True) + 1e-8), rtol=1e-12)


@pytest.mark.parametrize("c", [0.1, 0.5, 3.0, 250.0])
def test_pixel_norm_is_scale_invariant(c):
    x = _x((2, 4, 3, 5), seed=1) + 3.0        # mean squares of c x far above the 1e-8
    pn = nn.PixelNorm()
    np.testing.assert_allclose(pn(Tensor(c * x)).numpy(), pn(Tensor(x)).numpy(), rtol=1e-6)


def test_pixel_norm_keeps_float32_and_works_on_vectors():
    y = nn.PixelNorm()(Tensor(_x((4, 6), dtype=np.float32)))     # z of the generator: (N, latent)
    assert y.dtype == np.float32
    np.testing.assert_allclose((y.numpy() ** 2).mean(axis=1), 1.0, rtol=1e-5)
    with pytest.raises(ValueError, match=r"channel axis.*\(5,\)"):
        nn.PixelNorm()(Tensor(_x((5,))))


@settings(max_examples=12, deadline=None)
@given(n=st.integers(1, 3), c=st.integers(1, 4), h=st.integers(1, 3), dw=st.integers(1, 2), seed=st.integers(0, 99))
def test_pixel_norm_gradcheck(n, c, h, dw, seed):
    x = Tensor(_x((n, c, h, h + dw), seed) + 0.5, requires_grad=True)      # H != W
    assert gradcheck(nn.PixelNorm(), [x])


def test_pixel_norm_second_derivatives():
    x = Tensor(_x((2, 3, 2, 3)), requires_grad=True)
    assert gradgradcheck(nn.PixelNorm(), [x])


# --- MinibatchStd -------------------------------------------------------------------

def _minibatch_std_reference(x, g):
    """The notes' convention in plain NumPy: group m holds samples m, m + M, m + 2M, ..."""
    n = x.shape[0]
    m = n // g
    out = np.empty(n)
    for k in range(m):
        members = x[k::m]                                  # sample n goes to group n mod M
        out[k::m] = np.sqrt(members.var(axis=0) + 1e-8).mean()   # population variance
    return out


def test_minibatch_std_reference_case_of_the_notes():
    x = np.array([0, 0, 0, 0, 1, 2, 3, 4, 100, 200, 300, 400], dtype=np.float64).reshape(12, 1, 1, 1)
    y = nn.MinibatchStd(4)(Tensor(x)).numpy()
    assert y.shape == (12, 2, 1, 1)
    np.testing.assert_array_equal(y[:, 0], x[:, 0])
    np.testing.assert_allclose(y[:, 1].ravel(), np.tile([86.18, 129.19, 163.56], 4), atol=5e-3)
    # not torch.std's unbiased estimate (x sqrt(4/3)), not contiguous groups ([1e-4, 1.118, 111.8])
    assert not np.allclose(y[:3, 1].ravel(), [1e-4, 1.118, 111.8], rtol=1e-2)


def test_minibatch_std_matches_numpy_on_rectangular_images():
    x = _x((8, 3, 2, 5), seed=3)
    y = nn.MinibatchStd(4)(Tensor(x)).numpy()
    assert y.shape == (8, 4, 2, 5)
    np.testing.assert_array_equal(y[:, :3], x)
    expected = _minibatch_std_reference(x, 4)
    np.testing.assert_allclose(y[:, 3], np.broadcast_to(expected[:, None, None], (8, 2, 5)), rtol=1e-12)


def test_minibatch_std_of_identical_samples_is_finite_with_a_finite_gradient():
    x = Tensor(np.ones((4, 2, 3, 2)), requires_grad=True)
    y = nn.MinibatchStd(4)(x)
    np.testing.assert_allclose(y.numpy()[:, 2], 1e-4)          # sqrt(0 + 1e-8)
    y.sum().backward()
    assert np.isfinite(x.grad.numpy()).all()


@pytest.mark.parametrize("n, words", [(6, "a batch of 6"), (1, "a batch of 1"), (2, "a batch of 2"),
                                      (10, "a batch of 10")])
def test_minibatch_std_refuses_a_batch_that_does_not_split_into_groups(n, words):
    with pytest.raises(ValueError, match=rf"groups of 4.*{words}"):
        nn.MinibatchStd(4)(Tensor(_x((n, 2, 2, 3))))


@pytest.mark.parametrize("g", [1, 0, 2.5, True, "4"])
def test_minibatch_std_refuses_a_group_without_spread(g):
    with pytest.raises(ValueError, match="group_size must be a whole number >= 2"):
        nn.MinibatchStd(g)


@settings(max_examples=10, deadline=None)
@given(g=st.sampled_from([2, 4]), m=st.integers(1, 2), c=st.integers(1, 2), h=st.integers(1, 2),
       dw=st.integers(1, 2), seed=st.integers(0, 99))
def test_minibatch_std_gradcheck(g, m, c, h, dw, seed):
    x = Tensor(_x((g * m, c, h, h + dw), seed), requires_grad=True)      # H != W
    assert gradcheck(nn.MinibatchStd(g), [x])


def test_minibatch_std_second_derivatives():
    x = Tensor(_x((4, 2, 2, 3), seed=5), requires_grad=True)
    assert gradgradcheck(nn.MinibatchStd(2), [x])


# --- equalized learning rate ----------------------------------------------------------

def test_equalized_layers_store_unit_normal_weights_and_zero_biases():
    tinygen.manual_seed(0)
    for layer in (nn.EqualizedLinear(400, 300), nn.EqualizedConv2d(40, 30, (3, 5))):
        w = layer.weight.numpy()
        assert abs(w.mean()) < 0.01 and abs(w.std() - 1) < 0.01
        assert (layer.bias.numpy() == 0).all() and layer.weight.dtype == np.float32


@pytest.mark.parametrize("gain", [math.sqrt(2), 1.0, math.sqrt(2) / 4])
def test_equalized_scale_is_gain_over_root_fan_in(gain):
    assert nn.EqualizedLinear(50, 3, gain=gain).scale == pytest.approx(gain / math.sqrt(50))
    assert nn.EqualizedConv2d(6, 2, (3, 2), gain=gain).scale == pytest.approx(gain / math.sqrt(6 * 3 * 2))


def test_equalized_layers_compute_with_the_scaled_weight():
    lin = nn.EqualizedLinear(5, 3).double()
    x = _x((4, 5))
    w_hat = lin.weight.numpy() * math.sqrt(2 / 5)
    np.testing.assert_allclose(lin(Tensor(x)).numpy(), x @ w_hat.T + lin.bias.numpy(), rtol=1e-12)
    conv = nn.EqualizedConv2d(2, 3, (3, 2), padding=1).double()
    x = _x((2, 2, 4, 5))
    expected = F.conv2d(Tensor(x), Tensor(conv.weight.numpy() * math.sqrt(2 / 12)), conv.bias, padding=1)
    np.testing.assert_allclose(conv(Tensor(x)).numpy(), expected.numpy(), rtol=1e-12)


def _stored_and_effective_grads(layer, x, op):
    """dL/dW of the layer's stored weight, and dL/dW_hat of the same loss through op(x, W_hat, b)."""
    v = Tensor(_x(layer(Tensor(x)).shape, seed=9))
    (layer(Tensor(x)) * v).sum().backward()
    w_hat = Tensor(layer.weight.numpy() * layer.scale, requires_grad=True)
    (op(Tensor(x), w_hat, layer.bias) * v).sum().backward()
    return layer.weight.grad.numpy(), w_hat.grad.numpy()


def test_the_stored_weights_gradient_is_the_scale_times_the_effective_weights():
    lin = nn.EqualizedLinear(6, 4, gain=1.0).double()
    stored, effective = _stored_and_effective_grads(lin, _x((3, 6)), F.linear)
    np.testing.assert_allclose(stored, lin.scale * effective, rtol=1e-12)
    conv = nn.EqualizedConv2d(3, 2, (3, 2), padding=(1, 0)).double()
    stored, effective = _stored_and_effective_grads(
        conv, _x((2, 3, 4, 5)), lambda x, w, b: F.conv2d(x, w, b, padding=(1, 0)))
    np.testing.assert_allclose(stored, conv.scale * effective, rtol=1e-12)


def test_equalized_layers_parameter_gradients(param_check):
    param_check(nn.EqualizedLinear(4, 3).double(), [Tensor(_x((5, 4)))])
    param_check(nn.EqualizedConv2d(2, 3, (2, 3), padding=1).double(), [Tensor(_x((2, 2, 3, 4)))])


def test_equalized_layers_check_their_arguments():
    with pytest.raises(ValueError, match="gain must be a positive number"):
        nn.EqualizedLinear(3, 2, gain=0)
    with pytest.raises(ValueError, match=r"input has shape \(2, 5\), expected \(\.\.\., 3\)"):
        nn.EqualizedLinear(3, 2)(Tensor(_x((2, 5))))
    with pytest.raises(ValueError, match=r"expected \(N, 3, H, W\)"):
        nn.EqualizedConv2d(3, 2, 3)(Tensor(_x((1, 2, 4, 4))))
    assert "gain=1" in repr(nn.EqualizedConv2d(3, 2, 1, gain=1.0))
