"""tinygen.nn.init: fans, gains, and the statistics of every initialiser."""
import math

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

import tinygen
from tinygen.nn import Parameter, init


def empty(*shape):
    return Parameter(np.zeros(shape, dtype=np.float32))


@settings(max_examples=30, deadline=None)
@given(shape=st.lists(st.integers(1, 6), min_size=2, max_size=5))
def test_fans(shape):
    t = empty(*shape)
    receptive = int(np.prod(shape[2:]))
    assert init.calculate_fan_in_and_fan_out(t) == (shape[1] * receptive, shape[0] * receptive)
    assert init.calculate_fan_in_and_fan_out(t, transposed=True) == (shape[0] * receptive,
                                                                     shape[1] * receptive)


def test_fans_of_layer_weights():
    assert init.calculate_fan_in_and_fan_out(empty(40, 30)) == (30, 40)               # Linear (out, in)
    assert init.calculate_fan_in_and_fan_out(empty(64, 32, 3, 3)) == (32 * 9, 64 * 9)  # Conv2d
    # ConvTranspose2d stores (C_in, C_out, kh, kw): fan_in counts C_in
    assert init.calculate_fan_in_and_fan_out(empty(64, 32, 4, 4), transposed=True) == (64 * 16, 32 * 16)
    with pytest.raises(ValueError, match=r"at least 2 dimensions, got shape \(5,\)"):
        init.calculate_fan_in_and_fan_out(empty(5))


def test_calculate_gain():
    assert init.calculate_gain("linear") == 1 and init.calculate_gain("sigmoid") == 1
    assert init.calculate_gain("conv2d") == 1
    assert init.calculate_gain("relu") == pytest.approx(math.sqrt(2))
    assert init.calculate_gain("tanh") == pytest.approx(5 / 3)
    assert init.calculate_gain("leaky_relu", 0.2) == pytest.approx(math.sqrt(2 / 1.04))
    assert init.calculate_gain("leaky_relu") == pytest.approx(math.sqrt(2 / (1 + 0.01 ** 2)))
    with pytest.raises(ValueError, match="unknown nonlinearity 'swish'"):
        init.calculate_gain("swish")


def _std_close(t, std, tol=0.04):
    v = t.numpy()
    assert abs(v.mean()) < 4 * std / math.sqrt(v.size)
    assert abs(v.std() / std - 1) < tol, (v.std(), std)


def test_normal_and_uniform():
    t = empty(200, 100)
    init.normal_(t, mean=2.0, std=0.5)
    assert abs(t.numpy().mean() - 2.0) < 0.01 and abs(t.numpy().std() - 0.5) < 0.01
    init.uniform_(t, -3.0, 1.0)
    v = t.numpy()
    assert v.min() >= -3 and v.max() <= 1 and v.min() < -2.99 and v.max() > 0.99
    assert abs(v.mean() + 1) < 0.02 and abs(v.var() - 16 / 12) < 0.03


def test_constants():
    t = empty(3, 4)
    assert init.ones_(t) is t and (t.numpy() == 1).all()
    init.zeros_(t)
    assert (t.numpy() == 0).all()
    init.constant_(t, 0.25)
    assert (t.numpy() == 0.25).all() and t.dtype == np.float32


@pytest.mark.parametrize("shape,transposed", [((300, 200), False), ((64, 32, 3, 3), False),
                                              ((32, 64, 4, 4), True)])
def test_xavier(shape, transposed):
    t = empty(*shape)
    fan_in, fan_out = init.calculate_fan_in_and_fan_out(t, transposed)
    init.xavier_normal_(t, gain=2.0, transposed=transposed)
    _std_close(t, 2.0 * math.sqrt(2 / (fan_in + fan_out)))
    init.xavier_uniform_(t, transposed=transposed)
    bound = math.sqrt(6 / (fan_in + fan_out))
    assert np.abs(t.numpy()).max() <= bound and np.abs(t.numpy()).max() > 0.99 * bound
    _std_close(t, bound / math.sqrt(3))


@pytest.mark.parametrize("shape,transposed", [((300, 200), False), ((64, 32, 3, 3), False),
                                              ((32, 64, 4, 4), True)])
@pytest.mark.parametrize("mode", ["fan_in", "fan_out"])
def test_kaiming(shape, transposed, mode):
    t = empty(*shape)
    fan_in, fan_out = init.calculate_fan_in_and_fan_out(t, transposed)
    fan = fan_in if mode == "fan_in" else fan_out
    init.kaiming_normal_(t, mode=mode, nonlinearity="relu", transposed=transposed)
    _std_close(t, math.sqrt(2 / fan))
    init.kaiming_normal_(t, a=0.2, mode=mode, transposed=transposed)  # leaky ReLU, slope 0.2
    _std_close(t, math.sqrt(2 / (1 + 0.04)) / math.sqrt(fan))
    init.kaiming_uniform_(t, mode=mode, transposed=transposed)  # a=0: ReLU gain
    bound = math.sqrt(2) * math.sqrt(3 / fan)
    assert np.abs(t.numpy()).max() <= bound and np.abs(t.numpy()).max() > 0.99 * bound
    _std_close(t, bound / math.sqrt(3))


def test_kaiming_uniform_with_a_sqrt5_is_pytorch_linear_default():
    t = empty(50, 80)
    init.kaiming_uniform_(t, a=math.sqrt(5))
    bound = 1 / math.sqrt(80)
    assert np.abs(t.numpy()).max() <= bound and np.abs(t.numpy()).max() > 0.98 * bound


def test_draws_follow_manual_seed():
    tinygen.manual_seed(11)
    a = init.kaiming_normal_(empty(5, 5)).numpy()
    tinygen.manual_seed(11)
    b = init.kaiming_normal_(empty(5, 5)).numpy()
    c = init.kaiming_normal_(empty(5, 5)).numpy()
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(b, c)


def test_float64_tensors_stay_float64_and_identity_is_kept():
    t = Parameter(np.zeros((4, 4)))
    arr = t.data
    assert init.normal_(t) is t and t.data is arr and t.dtype == np.float64


def test_errors():
    with pytest.raises(ValueError, match="mode must be 'fan_in' or 'fan_out', got 'fan_avg'"):
        init.kaiming_normal_(empty(2, 2), mode="fan_avg")
    with pytest.raises(TypeError, match="expected a Tensor"):
        init.normal_(np.zeros(3))
    with pytest.raises(ValueError, match="needs a <= b"):
        init.uniform_(empty(2), 1.0, 0.0)
    with pytest.raises(ValueError, match="std must be non-negative"):
        init.normal_(empty(2), std=-1)
