"""InstanceNorm2d, LayerNorm, AvgPool2d, MaxPool2d, Upsample, ReflectionPad2d, ReplicationPad2d.

What the layers add to their functions: parameters and buffers by name and
shape, running statistics only when asked, train/eval behaviour, state_dict
round trips, parameter gradients in float64, and argument checks at
construction.
"""
import numpy as np
import pytest

import tinygen
import tinygen.functional as F
import tinygen.nn as nn


def _images(shape=(3, 2, 4, 5), seed=0, dtype=np.float32):
    rng = np.random.default_rng(seed)
    loc = np.arange(shape[1]).reshape(1, -1, 1, 1) * 2.0
    return (loc + rng.standard_normal(shape) * (1 + np.arange(shape[1]).reshape(1, -1, 1, 1))).astype(dtype)


def _names_and_shapes(tensors):
    return [(name, tuple(t.shape)) for name, t in tensors]


# --- InstanceNorm2d ------------------------------------------------------------------

def test_instance_norm_by_default_has_no_parameters_and_no_state():
    m = nn.InstanceNorm2d(2)
    assert list(m.parameters()) == [] and m.weight is None and m.running_mean is None
    assert list(m.state_dict()) == []
    y = m(tinygen.tensor(_images())).numpy()
    np.testing.assert_allclose(y.mean(axis=(2, 3)), 0, atol=1e-5)
    np.testing.assert_allclose(y.var(axis=(2, 3)), 1, atol=1e-3)
    # evaluation normalizes by each image's own statistics too
    np.testing.assert_allclose(m.eval()(tinygen.tensor(_images())).numpy(), y, atol=1e-6)


def test_instance_norm_affine_parameters():
    m = nn.InstanceNorm2d(2, affine=True)
    assert _names_and_shapes(m.named_parameters()) == [("weight", (2,)), ("bias", (2,))]
    m.weight.data[...] = [2.0, 0.5]
    m.bias.data[...] = [1.0, -1.0]
    y = m(tinygen.tensor(_images())).numpy()
    np.testing.assert_allclose(y.mean(axis=(2, 3)), np.broadcast_to([1.0, -1.0], (3, 2)), atol=1e-5)
    np.testing.assert_allclose(y.std(axis=(2, 3)), np.broadcast_to([2.0, 0.5], (3, 2)), atol=1e-3)


def test_instance_norm_running_statistics_only_when_asked():
    m = nn.InstanceNorm2d(2, momentum=0.5, track_running_stats=True)
    assert _names_and_shapes(m.named_buffers()) == [("running_mean", (2,)), ("running_var", (2,))]
    x = _images().astype(np.float64)
    m(tinygen.tensor(x.astype(np.float32)))
    x = x.astype(np.float32).astype(np.float64)
    hw = 4 * 5
    np.testing.assert_allclose(m.running_mean.numpy(), 0.5 * x.mean(axis=(2, 3)).mean(axis=0), rtol=1e-5)
    np.testing.assert_allclose(m.running_var.numpy(),
                               0.5 + 0.5 * (x.var(axis=(2, 3)) * hw / (hw - 1)).mean(axis=0), rtol=1e-5)
    m.eval()
    rm = m.running_mean.numpy().reshape(1, 2, 1, 1)
    rv = m.running_var.numpy().reshape(1, 2, 1, 1)
    y = m(tinygen.tensor(_images(seed=1))).numpy()
    np.testing.assert_allclose(y, (_images(seed=1) - rm) / np.sqrt(rv + 1e-5), rtol=1e-5, atol=1e-5)


def test_instance_norm_state_dict_round_trip():
    a = nn.InstanceNorm2d(3, affine=True, track_running_stats=True)
    a(tinygen.tensor(_images((2, 3, 4, 5))))
    a.weight.data[...] = [1.0, 2.0, 3.0]
    state = a.state_dict()
    assert list(state) == ["weight", "bias", "running_mean", "running_var"]
    b = nn.InstanceNorm2d(3, affine=True, track_running_stats=True)
    b.load_state_dict(state)
    for name, value in b.state_dict().items():
        np.testing.assert_array_equal(value, state[name])
    x = tinygen.tensor(_images((2, 3, 4, 5), seed=3))
    np.testing.assert_array_equal(a.eval()(x).numpy(), b.eval()(x).numpy())


def test_instance_norm_parameter_gradients(param_check):
    m = nn.InstanceNorm2d(2, affine=True).double()
    m.weight.data[...] = [1.5, -0.5]
    param_check(m, [tinygen.tensor(_images(dtype=np.float64))])


def test_instance_norm_errors():
    with pytest.raises(ValueError, match=r"InstanceNorm2d\(2\): expected input \(N, C, "
                                         r"H, W\), got shape \(3, 2, 5\)"):
        nn.InstanceNorm2d(2)(tinygen.randn(3, 2, 5))
    with pytest.raises(ValueError, match=r"input has 3 channels \(axis 1 of shape "
                                         r"\(1, 3, 2, 2\)\), expected 2"):
        nn.InstanceNorm2d(2)(tinygen.randn(1, 3, 2, 2))
    with pytest.raises(ValueError, match="num_features must be a positive integer, got 0"):
        nn.InstanceNorm2d(0)
    with pytest.raises(ValueError, match="eps must be positive, got -1"):
        nn.InstanceNorm2d(2, eps=-1)


# --- LayerNorm -------------------------------------------------------------------------

def test_layer_norm_parameters_and_values():
    m = nn.LayerNorm((4, 5))
    assert _names_and_shapes(m.named_parameters()) == [("weight", (4, 5)), ("bias", (4, 5))]
    assert list(m.buffers()) == []
    x = _images()
    y = m(tinygen.tensor(x)).numpy()
    np.testing.assert_allclose(y.mean(axis=(2, 3)), 0, atol=1e-5)
    np.testing.assert_allclose(y.var(axis=(2, 3)), 1, atol=1e-3)
    assert y.dtype == np.float32
    m.weight.data[...] = 2.0
    m.bias.data[...] = 0.5
    np.testing.assert_allclose(m(tinygen.tensor(x)).numpy(), 2 * y + 0.5, rtol=1e-5, atol=1e-5)


def test_layer_norm_without_affine_and_with_an_int_shape():
    m = nn.LayerNorm(5, elementwise_affine=False)
    assert list(m.parameters()) == [] and m.weight is None and list(m.state_dict()) == []
    x = tinygen.tensor(_images())
    np.testing.assert_allclose(m(x).numpy(), F.layer_norm(x, (5,)).numpy())


def test_layer_norm_state_dict_round_trip_and_gradients(param_check):
    a = nn.LayerNorm((2, 3))
    a.weight.data[...] = np.arange(6).reshape(2, 3)
    b = nn.LayerNorm((2, 3))
    b.load_state_dict(a.state_dict())
    np.testing.assert_array_equal(b.weight.numpy(), a.weight.numpy())
    with pytest.raises(nn.LoadStateDictError):
        nn.LayerNorm((3, 2)).load_state_dict(a.state_dict())
    m = nn.LayerNorm(5).double()
    m.weight.data[...] = np.linspace(0.5, 2, 5)
    param_check(m, [tinygen.tensor(_images(dtype=np.float64))])


def test_layer_norm_errors():
    with pytest.raises(ValueError, match=r"input of shape \(3, 2, 4, 5\) does not end "
                                         r"in normalized_shape \(4,\)"):
        nn.LayerNorm(4)(tinygen.tensor(_images()))
    with pytest.raises(ValueError, match="normalized_shape must be a positive integer, got 0"):
        nn.LayerNorm((3, 0))
    with pytest.raises(ValueError, match="at least one axis"):
        nn.LayerNorm(())


# --- pooling, upsampling and padding layers ------------------------------------------------

@pytest.mark.parametrize("layer,fn", [
    (nn.AvgPool2d(2), lambda x: F.avg_pool2d(x, 2)),
    (nn.AvgPool2d(3, stride=1, padding=1), lambda x: F.avg_pool2d(x, 3, 1, 1)),
    (nn.MaxPool2d((2, 1)), lambda x: F.max_pool2d(x, (2, 1))),
    (nn.MaxPool2d(3, 2, 1), lambda x: F.max_pool2d(x, 3, 2, 1)),
    (nn.Upsample(scale_factor=2), lambda x: F.upsample_nearest(x, 2)),
    (nn.Upsample(size=(5, 3), mode="bilinear"), lambda x: F.interpolate(x, size=(5, 3), mode="bilinear")),
    (nn.Upsample(scale_factor=1.5, mode="bilinear", align_corners=True),
     lambda x: F.interpolate(x, scale_factor=1.5, mode="bilinear", align_corners=True)),
    (nn.ReflectionPad2d(1), lambda x: F.pad(x, ((0, 0), (0, 0), (1, 1), (1, 1)), mode="reflect")),
    (nn.ReplicationPad2d((0, 2, 1, 3)),
     lambda x: F.pad(x, ((0, 0), (0, 0), (1, 3), (0, 2)), mode="replicate")),
])
def test_layers_compute_their_function_and_hold_nothing(layer, fn):
    x = tinygen.tensor(_images((2, 2, 4, 6)))
    np.testing.assert_array_equal(layer(x).numpy(), fn(x).numpy())
    assert list(layer.parameters()) == [] and layer.state_dict() == {}


def test_padding_side_order_is_left_right_top_bottom():
    x = tinygen.tensor(np.arange(6.0).reshape(1, 1, 2, 3))
    y = nn.ReplicationPad2d((1, 0, 0, 2))(x).numpy()[0, 0]
    np.testing.assert_array_equal(y, [[0, 0, 1, 2], [3, 3, 4, 5], [3, 3, 4, 5], [3, 3, 4, 5]])
    # an unbatched (C, H, W) image is padded the same way
    unbatched = tinygen.tensor(np.arange(6.0).reshape(1, 2, 3))
    np.testing.assert_array_equal(nn.ReflectionPad2d(1)(unbatched).numpy(), nn.ReflectionPad2d(1)(x).numpy()[0])


def test_a_cyclegan_residual_block_keeps_its_shape():
    block = nn.Sequential(nn.ReflectionPad2d(1), nn.Conv2d(3, 3, 3), nn.InstanceNorm2d(3), nn.ReLU())
    x = tinygen.tensor(_images((2, 3, 5, 7)), requires_grad=True)
    y = block(x)
    assert y.shape == x.shape and y.dtype == np.float32
    y.sum().backward()
    assert x.grad.shape == x.shape


def test_layer_argument_errors():
    with pytest.raises(ValueError, match=r"MaxPool2d: padding \(2, 2\) must be at most "
                                         r"half of kernel_size \(3, 3\)"):
        nn.MaxPool2d(3, padding=2)
    with pytest.raises(ValueError, match="AvgPool2d: kernel_size must be positive"):
        nn.AvgPool2d(0)
    with pytest.raises(TypeError, match="MaxPool2d: stride must be an int or a pair of ints"):
        nn.MaxPool2d(2, stride=1.5)
    with pytest.raises(ValueError, match="Upsample: give exactly one of scale_factor and size"):
        nn.Upsample()
    with pytest.raises(ValueError, match="Upsample: mode must be one of nearest, bilinear, got 'area'"):
        nn.Upsample(scale_factor=2, mode="area")
    with pytest.raises(TypeError):
        nn.Upsample(2)   # keyword only: PyTorch's first positional argument is the size
    with pytest.raises(TypeError, match=r"ReflectionPad2d: padding must be an int or \(left, "
                                        r"right, top, bottom\), got \(1, 2\)"):
        nn.ReflectionPad2d((1, 2))
    with pytest.raises(ValueError, match="ReplicationPad2d: padding must be non-negative, got -1"):
        nn.ReplicationPad2d(-1)
    with pytest.raises(ValueError, match=r"ReflectionPad2d: expected input \(N, C, H, W\) or "
                                         r"\(C, H, W\), got shape \(2, 3\)"):
        nn.ReflectionPad2d(1)(tinygen.randn(2, 3))
    with pytest.raises(ValueError, match="reflect padding .* must be smaller than its size 2"):
        nn.ReflectionPad2d(2)(tinygen.randn(1, 1, 2, 5))


def test_reprs():
    assert repr(nn.InstanceNorm2d(3)) == ("InstanceNorm2d(3, eps=1e-05, momentum=0.1, affine=False, "
                                          "track_running_stats=False)")
    assert repr(nn.LayerNorm(4)) == "LayerNorm((4,), eps=1e-05, elementwise_affine=True)"
    assert repr(nn.MaxPool2d(2)) == "MaxPool2d(kernel_size=(2, 2), stride=(2, 2), padding=(0, 0))"
    assert repr(nn.Upsample(scale_factor=2)) == "Upsample(scale_factor=2, mode='nearest')"
    assert repr(nn.ReflectionPad2d(1)) == "ReflectionPad2d((1, 1, 1, 1))"
