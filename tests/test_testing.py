"""The hypothesis strategies of tinygen.testing draw what they promise."""
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tinygen.testing import DOMAINS, Domain, arrays, broadcastable_shapes, conv_params, shapes


@given(shapes(min_dims=1, max_dims=3, min_side=2, max_side=4))
def test_shapes_respect_bounds(shape):
    assert 1 <= len(shape) <= 3
    assert all(2 <= side <= 4 for side in shape)


@given(broadcastable_shapes())
def test_broadcastable_pairs_broadcast(pair):
    a, b = pair
    out = np.broadcast_shapes(a, b)
    # Both inputs really broadcast to the result: np.broadcast_to raises otherwise.
    np.broadcast_to(np.zeros(a), out)
    np.broadcast_to(np.zeros(b), out)


@given(broadcastable_shapes(num_shapes=3, max_dims=3))
def test_broadcastable_triples(shapes3):
    assert len(shapes3) == 3
    np.broadcast_shapes(*shapes3)


@pytest.mark.parametrize("name", sorted(DOMAINS))
@settings(max_examples=40)
@given(data=st.data())
def test_values_lie_in_their_domain(name, data):
    x = data.draw(arrays(shapes(max_dims=3, max_side=6), domain=name))
    assert x.dtype == np.float64
    assert DOMAINS[name].contains(x), (name, x)


@given(arrays((4, 5), dtype=np.float32, domain="unit"))
def test_float32_and_fixed_shape(x):
    assert x.shape == (4, 5) and x.dtype == np.float32
    assert np.all((x > 0) & (x < 1))


@given(arrays(shapes(min_dims=1, max_side=6), domain="distinct"))
def test_distinct_has_no_ties_and_a_real_gap(x):
    flat = np.sort(x.ravel())
    if flat.size > 1:
        # far wider than any finite-difference step, so max/min gradients are well defined
        assert np.min(np.diff(flat)) > 1e-3


@given(arrays((50,), domain="away_from_zero_kinks"))
def test_kink_domain_keeps_a_margin(x):
    assert np.all(np.abs(x) >= 0.1)


def test_domain_mapping_hits_both_ends_and_the_simplest_point():
    v = np.array([-1.0, 0.0, 1.0])
    np.testing.assert_allclose(DOMAINS["real"].from_base(v), [-3, 0, 3])
    np.testing.assert_allclose(DOMAINS["positive"].from_base(v), [0.1, 1.55, 3.0])
    np.testing.assert_allclose(DOMAINS["nonzero"].from_base(v), [-3.0, 0.1, 3.0])


def test_custom_domain_and_bad_names():
    dom = Domain("probability", 0.0, 1.0)
    assert dom.contains(dom.from_base(np.linspace(-1, 1, 11)))
    with pytest.raises(ValueError, match="unknown value domain 'reals'.*real"):
        arrays((2,), domain="reals")
    with pytest.raises(ValueError, match="floating dtype"):
        arrays((2,), dtype=np.int64)
    with pytest.raises(ValueError, match="symmetric"):
        Domain("bad", 0.0, 1.0, gap=0.1)


@given(conv_params())
def test_conv_params_are_valid(p):
    assert p.kh <= p.H + 2 * p.padding[0] and p.kw <= p.W + 2 * p.padding[1]
    n, c_out, h_out, w_out = p.output_shape
    assert (n, c_out) == (p.N, p.C_out) and h_out >= 1 and w_out >= 1
    assert p.weight_shape[1] == p.input_shape[1] == p.C_in


def _conv2d_reference(x, w, stride, padding):
    """A direct (slow) convolution: checks that output_shape is the real output shape."""
    (sh, sw), (ph, pw) = stride, padding
    xp = np.pad(x, ((0, 0), (0, 0), (ph, ph), (pw, pw)))
    n, _, hp, wp = xp.shape
    c_out, _, kh, kw = w.shape
    h_out, w_out = (hp - kh) // sh + 1, (wp - kw) // sw + 1
    out = np.zeros((n, c_out, h_out, w_out))
    for i in range(h_out):
        for j in range(w_out):
            patch = xp[:, :, i * sh:i * sh + kh, j * sw:j * sw + kw]
            out[:, :, i, j] = np.einsum("nchw,ochw->no", patch, w)
    return out


@settings(max_examples=30)
@given(conv_params())
def test_conv_params_output_shape_matches_a_reference_conv(p):
    out = _conv2d_reference(np.ones(p.input_shape), np.ones(p.weight_shape), p.stride, p.padding)
    assert out.shape == p.output_shape
