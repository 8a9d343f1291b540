"""The convolutions' NumPy plumbing beyond the im2col contract: the phase form of the input
gradient, and inputs in any memory order.

- ``_input_grad_by_phases`` (used when the stride divides the kernel) equals col2im of the
  im2col contract, over hypothesis-drawn settings with output_padding, padding as large as
  the kernel and rectangular everything;
- conv2d / conv_transpose2d give the same values and gradients (bias included, with and
  without create_graph) whatever the memory order of their input and of the incoming
  gradient (channels last, channel major, a cropped view), on both sides of CHANNELS_LAST_MIN;
- the channels-last copy moves every value to its place from any source order.
"""
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import tinygen.functional as F
import tinygen.functional._conv_arrays as arrays_module
import tinygen.functional._conv_im2col as im2col_module
from tinygen import fast_paths
from tinygen.autograd import Tensor, grad

from strategies import fast
from test_conv import reference_conv2d, reference_conv_transpose2d


@st.composite
def phase_settings(draw):
    """conv_transpose2d settings with the stride dividing the kernel: g (N, O, h, w), w (O, C, kh, kw)."""
    sh, sw = draw(st.integers(1, 3)), draw(st.integers(1, 3))
    kh, kw = sh * draw(st.integers(1, 2)), sw * draw(st.integers(1, 3))
    ph, pw = draw(st.integers(0, kh)), draw(st.integers(0, kw))
    h, w = draw(st.integers(1, 4)), draw(st.integers(1, 4))
    oph, opw = draw(st.integers(0, sh - 1)), draw(st.integers(0, sw - 1))
    ho, wo = (h - 1) * sh - 2 * ph + kh + oph, (w - 1) * sw - 2 * pw + kw + opw
    if ho < 1 or wo < 1:   # padding too large for this input: use none
        ph = pw = 0
        ho, wo = (h - 1) * sh + kh + oph, (w - 1) * sw + kw + opw
    n, o, c = draw(st.integers(1, 2)), draw(st.integers(1, 3)), draw(st.integers(1, 3))
    return (n, o, h, w), (o, c, kh, kw), (n, c, ho, wo), (sh, sw), (ph, pw)


@fast(60)
@given(phase_settings(), st.integers(0, 2 ** 32 - 1))
def test_input_gradient_by_phases_is_col2im(setting, seed):
    g_shape, w_shape, x_shape, stride, padding = setting
    rng = np.random.default_rng(seed)
    g, w = rng.standard_normal(g_shape), rng.standard_normal(w_shape)
    ours = arrays_module._input_grad_by_phases(g, w, x_shape, stride, padding)
    o = w_shape[0]
    cols = (w.reshape(o, -1).T @ g.transpose(1, 0, 2, 3).reshape(o, -1)).reshape(-1, g_shape[0], g_shape[2] * g_shape[3])
    expected = im2col_module._col2im(cols.transpose(1, 0, 2), x_shape, *w_shape[2:], *stride, *padding)
    assert ours.shape == x_shape
    np.testing.assert_allclose(ours, expected, rtol=1e-12, atol=1e-12)


def relaid(a, layout):
    if layout == "nhwc":
        return np.ascontiguousarray(a.transpose(0, 2, 3, 1)).transpose(0, 3, 1, 2)
    if layout == "cnhw":
        return np.ascontiguousarray(a.transpose(1, 0, 2, 3)).transpose(1, 0, 2, 3)
    if layout == "cropped":
        n, c, h, w = a.shape
        big = np.zeros((n, h + 3, w + 2, c))
        big[:, 2:h + 2, 1:w + 1] = a.transpose(0, 2, 3, 1)
        return big[:, 2:h + 2, 1:w + 1].transpose(0, 3, 1, 2)
    return a


LAYOUTS = ["nchw", "nhwc", "cnhw", "cropped"]


@pytest.mark.parametrize("transposed", [False, True])
@pytest.mark.parametrize("channels", [(2, 9), (9, 2), (9, 10), (5, 9), (9, 5)])
def test_results_do_not_depend_on_memory_order(transposed, channels):
    """Around CHANNELS_LAST_MIN (8), where the layouts meet: every input order, same numbers;
    and the bias gradient (one array pass without a graph, a Sum op under create_graph) alike.
    5 channels with the 2-wide kernels below take the small outputs' channels-last layout."""
    rng = np.random.default_rng(sum(channels))
    c_in, c_out = channels
    x, b = rng.standard_normal((2, c_in, 6, 5)), rng.standard_normal(c_out)
    if transposed:   # conv_transpose2d's weight is (C_in, C_out, kh, kw): 6x5 -> 12x10
        w, op, kw = rng.standard_normal((c_in, c_out, 4, 2)) * 0.3, F.conv_transpose2d, dict(stride=2, padding=1)
        expected = reference_conv_transpose2d(x, w, b, (2, 2), (1, 1))
    else:
        w, op, kw = rng.standard_normal((c_out, c_in, 3, 2)) * 0.3, F.conv2d, dict(stride=(2, 1), padding=1)
        expected = reference_conv2d(x, w, b, (2, 1), (1, 1))
    gy = rng.standard_normal(expected.shape)
    first = None
    for layout_x in LAYOUTS:
        for layout_g in LAYOUTS:
            tx, tw, tb = (Tensor(a, requires_grad=True) for a in (relaid(x, layout_x), w, b))
            y = op(tx, tw, tb, **kw)
            np.testing.assert_allclose(y.numpy(), expected, rtol=1e-10, atol=1e-10)
            grads = [t.numpy() for t in grad(y, [tx, tw, tb], Tensor(relaid(gy, layout_g)),
                                               create_graph=layout_g == "cropped")]
            np.testing.assert_allclose(grads[2], gy.sum(axis=(0, 2, 3)), rtol=1e-12)
            if first is None:
                first = grads
            for a, f in zip(grads, first):
                np.testing.assert_allclose(a, f, rtol=1e-12, atol=1e-12)


def test_the_layout_rule_by_channels_and_by_patch_rows_of_small_outputs():
    """Channels last from CHANNELS_LAST_MIN channels; below, where the output has at most
    SMALL_OUTPUT pixels an image and a patch row (kw C numbers) is at least CHANNELS_LAST_MIN long."""
    a = np.zeros(1, dtype=np.float32)
    rule = arrays_module._channels_last
    assert rule(a, 8) and rule(a, 8, 1, 10 ** 6) and not rule(a, 7)
    assert rule(a, 5, 7, 64) and rule(a, 2, 4, 16) and rule(a, 4, 2, 64)     # StarGAN's 7x7 at 8x8: 35
    assert not rule(a, 5, 7, 65) and not rule(a, 5, 7, 196) and not rule(a, 1, 7, 64) and not rule(a, 2, 3, 64)
    assert not rule(a, 5, 7, None)
    with fast_paths.reference_paths():
        assert not rule(a, 5, 7, 64) and not rule(a, 64)


@pytest.mark.parametrize("layout", LAYOUTS)
def test_channels_last_copy_from_any_order(layout):
    a = np.random.default_rng(0).standard_normal((3, 11, 4, 5))
    dst = np.full((3, 4, 5, 11), np.nan)
    im2col_module._copy_channels_last(dst, relaid(a, layout))
    np.testing.assert_array_equal(dst, a.transpose(0, 2, 3, 1))


def test_input_gradient_by_phases_only_where_they_compute_little_beyond_the_output(monkeypatch):
    """The phases compute whole rows of every phase: 6 x 6 pixels for a 4 x 4 output at stride 2
    (padding 1, 2.25 times), 10 x 10 for 8 x 8 (1.56), exactly the output at stride 1. Above
    PHASES_MAX_WASTE (2) the input gradient goes by one product per kernel offset and col2im:
    the same values either way (against the im2col contract's col2im)."""
    assert arrays_module._phases_waste((1, 1, 4, 4), (2, 2), (1, 1)) == 2.25
    assert arrays_module._phases_waste((1, 1, 8, 8), (2, 2), (1, 1)) == 1.5625
    assert arrays_module._phases_waste((1, 1, 5, 7), (1, 1), (2, 1)) == 1.0
    calls = []
    by_phases = arrays_module._input_grad_by_phases
    monkeypatch.setattr(arrays_module, "_input_grad_by_phases", lambda *a: calls.append(a[2]) or by_phases(*a))
    rng = np.random.default_rng(3)
    w = rng.standard_normal((16, 12, 4, 4))
    for h, phases in ((2, False), (4, True)):
        g = relaid(rng.standard_normal((3, 16, h, h)), "nhwc")             # channels last: 16 >= 8
        x_shape = (3, 12, 2 * h, 2 * h)
        calls.clear()
        ours = arrays_module._conv_input_grad(g, w, x_shape, (2, 2), (1, 1))
        assert [tuple(c) for c in calls] == ([x_shape] if phases else [])
        cols = (w.reshape(16, -1).T @ g.transpose(1, 0, 2, 3).reshape(16, -1)).reshape(-1, 3, h * h)
        expected = im2col_module._col2im(cols.transpose(1, 0, 2), x_shape, 4, 4, 2, 2, 1, 1)
        np.testing.assert_allclose(ours, expected, rtol=1e-12, atol=1e-12)
