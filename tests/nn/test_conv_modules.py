"""Conv2d and ConvTranspose2d layers: shapes, parameters, initialisation, gradients, errors."""
import math

import numpy as np
import pytest

import tinygen
import tinygen.functional as F
from tinygen.autograd import Tensor
from tinygen.nn import Sequential
from tinygen.nn.conv import Conv2d, ConvTranspose2d


def images(*shape, dtype=np.float32, seed=0):
    return tinygen.tensor(np.random.default_rng(seed).standard_normal(shape).astype(dtype))


# --- shapes and parameters -----------------------------------------------------------

@pytest.mark.parametrize("kernel, stride, padding, size, expected", [
    (3, 1, 1, (8, 8), (8, 8)),
    (4, 2, 1, (28, 28), (14, 14)),
    ((3, 5), (2, 1), (0, 2), (9, 7), (4, 7)),
    (7, 1, 3, (28, 28), (28, 28)),
])
def test_conv2d_shapes_and_parameters(kernel, stride, padding, size, expected):
    layer = Conv2d(3, 16, kernel, stride=stride, padding=padding)
    kh, kw = (kernel, kernel) if isinstance(kernel, int) else kernel
    assert layer.weight.shape == (16, 3, kh, kw) and layer.bias.shape == (16,)
    assert [name for name, _ in layer.named_parameters()] == ["weight", "bias"]
    assert layer.weight.dtype == layer.bias.dtype == np.float32
    y = layer(images(2, 3, *size))
    assert y.shape == (2, 16, *expected) and y.dtype == np.float32


@pytest.mark.parametrize("kernel, stride, padding, output_padding, size, expected", [
    (4, 2, 1, 0, (7, 7), (14, 14)),
    (4, 2, 1, 0, (14, 14), (28, 28)),
    (3, 2, 1, 1, (4, 4), (8, 8)),
    ((3, 2), (3, 1), (1, 0), (2, 0), (5, 5), (15, 6)),
])
def test_conv_transpose2d_shapes_and_parameters(kernel, stride, padding, output_padding, size, expected):
    layer = ConvTranspose2d(8, 4, kernel, stride=stride, padding=padding, output_padding=output_padding)
    kh, kw = (kernel, kernel) if isinstance(kernel, int) else kernel
    assert layer.weight.shape == (8, 4, kh, kw) and layer.bias.shape == (4,)
    y = layer(images(3, 8, *size))
    assert y.shape == (3, 4, *expected)


def test_conv_transpose2d_inverts_conv2d_shapes():
    """The DCGAN pair: Conv2d(k4, s2, p1) halves 28 -> 14 -> 7 and ConvTranspose2d doubles it back."""
    down = Sequential(Conv2d(1, 8, 4, 2, 1), Conv2d(8, 16, 4, 2, 1))
    up = Sequential(ConvTranspose2d(16, 8, 4, 2, 1), ConvTranspose2d(8, 1, 4, 2, 1))
    h = down(images(5, 1, 28, 28))
    assert h.shape == (5, 16, 7, 7)
    assert up(h).shape == (5, 1, 28, 28)


def test_no_bias():
    for layer in (Conv2d(2, 3, 3, bias=False), ConvTranspose2d(2, 3, 3, bias=False)):
        assert layer.bias is None
        assert [name for name, _ in layer.named_parameters()] == ["weight"]
        assert layer(images(1, 2, 5, 5)).shape[1] == 3


def test_forward_is_the_functional_op():
    layer = Conv2d(3, 5, (3, 2), stride=2, padding=1)
    x = images(2, 3, 7, 6)
    expected = F.conv2d(x, layer.weight, layer.bias, stride=2, padding=1)
    np.testing.assert_array_equal(layer(x).numpy(), expected.numpy())
    t = ConvTranspose2d(3, 5, 3, stride=2, padding=1, output_padding=1)
    expected = F.conv_transpose2d(x, t.weight, t.bias, stride=2, padding=1, output_padding=1)
    np.testing.assert_array_equal(t(x).numpy(), expected.numpy())


def test_repr():
    assert repr(Conv2d(1, 32, 3, padding=1)) == \
        "Conv2d(1, 32, kernel_size=(3, 3), stride=(1, 1), padding=(1, 1))"
    assert repr(ConvTranspose2d(64, 1, 4, 2, 1, output_padding=1, bias=False)) == \
        "ConvTranspose2d(64, 1, kernel_size=(4, 4), stride=(2, 2), padding=(1, 1), output_padding=(1, 1), bias=False)"


# --- initialisation -------------------------------------------------------------------

@pytest.mark.parametrize("layer, fan_in", [
    (lambda: Conv2d(16, 32, 3), 16 * 9),
    (lambda: Conv2d(4, 8, (5, 3)), 4 * 15),
    (lambda: ConvTranspose2d(32, 16, 4), 16 * 16),   # PyTorch's fan_in: weight.shape[1] * kh * kw
])
def test_init_is_pytorch_default(layer, fan_in):
    """W, b ~ U(-1/sqrt(fan_in), 1/sqrt(fan_in)): inside the bound, and spread over it."""
    m = layer()
    bound = 1 / math.sqrt(fan_in)
    for p in (m.weight.numpy(), m.bias.numpy()):
        assert np.abs(p).max() <= bound
    w = m.weight.numpy().ravel()
    assert np.abs(w).max() > 0.9 * bound
    # a uniform on [-c, c] has variance c^2 / 3
    np.testing.assert_allclose(w.var(), bound ** 2 / 3, rtol=0.15)


def test_init_is_reproducible_with_manual_seed():
    tinygen.manual_seed(7)
    a = Conv2d(3, 4, 3)
    tinygen.manual_seed(7)
    b = Conv2d(3, 4, 3)
    np.testing.assert_array_equal(a.weight.numpy(), b.weight.numpy())
    np.testing.assert_array_equal(a.bias.numpy(), b.bias.numpy())
    assert not np.array_equal(a.weight.numpy(), Conv2d(3, 4, 3).weight.numpy())


# --- gradients ---------------------------------------------------------------------------

@pytest.mark.parametrize("make", [
    lambda: Conv2d(3, 4, (3, 2), stride=2, padding=1),
    lambda: Conv2d(12, 9, 3, padding=1),                     # channels-last path of the NumPy backend
    lambda: ConvTranspose2d(3, 4, 3, stride=2, padding=1, output_padding=1),
    lambda: ConvTranspose2d(4, 10, 4, stride=2, padding=1),
])
def test_parameter_gradients_in_float64(make, param_check):
    layer = make().double()
    x = Tensor(np.random.default_rng(1).standard_normal((2, layer.in_channels, 5, 6)))
    param_check(layer, [x])


def test_training_step_reduces_a_loss():
    """A few SGD steps of a conv autoencoder on fixed data lower its reconstruction error."""
    tinygen.manual_seed(0)
    model = Sequential(Conv2d(1, 8, 4, 2, 1), ConvTranspose2d(8, 1, 4, 2, 1))
    x = images(8, 1, 8, 8, seed=3)

    def loss():
        return ((model(x) - x) ** 2).mean()

    first = float(loss().item())
    for _ in range(30):
        model.zero_grad()
        value = loss()
        value.backward()
        for p in model.parameters():
            p.data -= 0.05 * p.grad.data
    assert float(loss().item()) < 0.7 * first


# --- errors -------------------------------------------------------------------------------

@pytest.mark.parametrize("make, error, message", [
    (lambda: Conv2d(0, 4, 3), ValueError, r"Conv2d: in_channels must be a positive integer, got 0"),
    (lambda: Conv2d(3, 4.0, 3), ValueError, r"Conv2d: out_channels must be a positive integer, got 4.0"),
    (lambda: Conv2d(3, 4, 0), ValueError, r"Conv2d: kernel_size must be positive, got 0"),
    (lambda: Conv2d(3, 4, (3, 3, 3)), TypeError, r"Conv2d: kernel_size must be an int or a pair of ints"),
    (lambda: Conv2d(3, 4, 3, stride=0), ValueError, r"Conv2d: stride must be positive, got 0"),
    (lambda: Conv2d(3, 4, 3, padding=-1), ValueError, r"Conv2d: padding must be non-negative, got -1"),
    (lambda: ConvTranspose2d(3, 4, 3, stride=2, output_padding=2), ValueError,
     r"ConvTranspose2d: output_padding \(2, 2\) must be smaller than stride \(2, 2\) in each direction"),
    (lambda: ConvTranspose2d(3, 4, 3, output_padding=-1), ValueError,
     r"ConvTranspose2d: output_padding must be non-negative, got -1"),
])
def test_constructor_errors(make, error, message):
    with pytest.raises(error, match=message):
        make()


def test_input_errors_name_the_layer_and_shapes():
    with pytest.raises(ValueError, match=r"Conv2d\(1, 32, kernel_size=\(3, 3\), stride=\(1, 1\), "
                                         r"padding=\(0, 0\)\): input has shape \(64, 3, 8, 8\), "
                                         r"expected \(N, 1, H, W\)"):
        Conv2d(1, 32, 3)(images(64, 3, 8, 8))
    with pytest.raises(ValueError, match=r"ConvTranspose2d\(.*\): input has shape \(2, 8, 8\), "
                                         r"expected \(N, 8, H, W\)"):
        ConvTranspose2d(8, 4, 3)(images(2, 8, 8))
    with pytest.raises(ValueError, match=r"conv2d: kernel \(5, 5\) is larger than the padded input \(3, 3\)"):
        Conv2d(1, 2, 5)(images(1, 1, 3, 3))
