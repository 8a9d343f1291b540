"""avg_pool2d, max_pool2d, interpolate (nearest, bilinear) and upsample_nearest.

References are written per output pixel (loops, for clarity): a window's mean or
max over the padded input, and, for interpolation, the source coordinate and the
weights of its two (four) neighbours. Then gradients and second derivatives by
central differences over hypothesis-drawn rectangular geometry, properties
(constants stay constant, bilinear with align_corners keeps a linear ramp exact,
ties send the gradient to the first maximum), float32 and every bad input.
"""
import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import tinygen.functional as F
from tinygen.autograd import Tensor, grad
from tinygen.testing import arrays

from strategies import check, fast, leaves


# --- references -----------------------------------------------------------------------

def reference_pool(x, kernel, stride, padding, how):
    (kh, kw), (sh, sw), (ph, pw) = kernel, stride, padding
    n_, c_, h, w = x.shape
    fill = 0.0 if how == "avg" else -np.inf
    xp = np.full((n_, c_, h + 2 * ph, w + 2 * pw), fill)
    xp[:, :, ph:ph + h, pw:pw + w] = x
    ho, wo = (h + 2 * ph - kh) // sh + 1, (w + 2 * pw - kw) // sw + 1
    y = np.zeros((n_, c_, ho, wo))
    for i in range(ho):
        for j in range(wo):
            window = xp[:, :, i * sh:i * sh + kh, j * sw:j * sw + kw]
            y[:, :, i, j] = window.mean(axis=(2, 3)) if how == "avg" else window.max(axis=(2, 3))
    return y


def reference_max_pool_grad(x, kernel, stride, padding, g):
    """g[n, c, i, j] added onto the input pixel holding its window's first maximum."""
    (kh, kw), (sh, sw), (ph, pw) = kernel, stride, padding
    gx = np.zeros_like(x)
    for n in range(x.shape[0]):
        for c in range(x.shape[1]):
            for i in range(g.shape[2]):
                for j in range(g.shape[3]):
                    best, where = -np.inf, None
                    for a in range(kh):
                        for b in range(kw):
                            r, s = i * sh + a - ph, j * sw + b - pw
                            if 0 <= r < x.shape[2] and 0 <= s < x.shape[3] and x[n, c, r, s] > best:
                                best, where = x[n, c, r, s], (r, s)
                    gx[n, c, where[0], where[1]] += g[n, c, i, j]
    return gx


def source_coordinate(o, n_in, n_out, align_corners, factor):
    """PyTorch's bilinear source coordinate of output pixel o along one axis."""
    if align_corners:
        return o * (n_in - 1) / (n_out - 1) if n_out > 1 else 0.0
    scale = 1.0 / factor if factor is not None else n_in / n_out
    return max((o + 0.5) * scale - 0.5, 0.0)


def reference_bilinear(x, out, align_corners, factors=(None, None)):
    h, w = x.shape[2:]
    y = np.zeros(x.shape[:2] + tuple(out))
    for oy in range(out[0]):
        cy = source_coordinate(oy, h, out[0], align_corners, factors[0])
        y0 = min(int(math.floor(cy)), h - 1)
        y1, ty = min(y0 + 1, h - 1), cy - y0
        for ox in range(out[1]):
            cx = source_coordinate(ox, w, out[1], align_corners, factors[1])
            x0 = min(int(math.floor(cx)), w - 1)
            x1, tx = min(x0 + 1, w - 1), cx - x0
            y[:, :, oy, ox] = ((1 - ty) * (1 - tx) * x[:, :, y0, x0] + (1 - ty) * tx * x[:, :, y0, x1]
                               + ty * (1 - tx) * x[:, :, y1, x0] + ty * tx * x[:, :, y1, x1])
    return y


def reference_nearest(x, out, factors=(None, None)):
    """PyTorch's CPU rule: floor(o * scale) in float32, except out = in (copy) and out = 2 in (o // 2)."""
    h, w = x.shape[2:]

    def src(o, n_in, n_out, f):
        if n_out == n_in:
            return o
        if n_out == 2 * n_in:
            return o >> 1
        scale = np.float32(1.0 / f) if f is not None else np.float32(n_in) / np.float32(n_out)
        return min(int(np.floor(np.float32(o) * scale)), n_in - 1)
    rows = [src(o, h, out[0], factors[0]) for o in range(out[0])]
    cols = [src(o, w, out[1], factors[1]) for o in range(out[1])]
    return x[:, :, rows][:, :, :, cols]


# --- geometry drawn so that every window is legal and no pixel is left out --------------

@st.composite
def pool_cases(draw, domain="real"):
    """(x, kernel, stride, padding): rectangular kernels and outputs; padding <= kernel / 2."""
    kernel, stride, padding, size = [], [], [], []
    out_h = draw(st.integers(1, 3))
    for out in (out_h, out_h + draw(st.integers(1, 2))):      # Ho != Wo
        k = draw(st.integers(1, 3))
        s = draw(st.integers(1, 3))
        p = draw(st.integers(0, k // 2))
        # (out - 1) s + k - 2p <= n <= (out - 1) s + k - p: exactly `out` windows, the last reaching the edge
        lo, hi = max(1, (out - 1) * s + k - 2 * p), (out - 1) * s + k - p
        kernel.append(k), stride.append(s), padding.append(p), size.append(draw(st.integers(lo, hi)))
    n, c = draw(st.integers(1, 2)), draw(st.integers(1, 2))
    x = draw(arrays((n, c) + tuple(size), domain=domain))
    return x, tuple(kernel), tuple(stride), tuple(padding)


@fast(25)
@given(pool_cases())
def test_avg_pool2d_values_and_gradients(case):
    x, k, s, p = case
    y = F.avg_pool2d(Tensor(x), k, s, p)
    np.testing.assert_allclose(y.numpy(), reference_pool(x, k, s, p, "avg"), rtol=1e-12, atol=1e-12)
    check(lambda t: F.avg_pool2d(t, k, s, p), x, second=True)


@fast(25)
@given(pool_cases(domain="distinct"))
def test_max_pool2d_values_and_gradients(case):
    x, k, s, p = case
    y = F.max_pool2d(Tensor(x), k, s, p)
    np.testing.assert_array_equal(y.numpy(), reference_pool(x, k, s, p, "max"))
    g = np.random.default_rng(0).standard_normal(y.shape)
    t = leaves(x)[0]
    (F.max_pool2d(t, k, s, p) * Tensor(g)).sum().backward()
    np.testing.assert_allclose(t.grad.numpy(), reference_max_pool_grad(x, k, s, p, g), rtol=1e-12)
    check(lambda u: F.max_pool2d(u, k, s, p), x, second=True)


def test_max_pool2d_gradient_is_linear_in_g_and_constant_in_x():
    """The double backward a gradient penalty runs: d/dx of <dL/dx, u> is 0, d/dg is the route."""
    x = leaves(np.random.default_rng(1).permutation(24).reshape(1, 2, 3, 4).astype(float))[0]
    g = Tensor(np.random.default_rng(2).standard_normal((1, 2, 2, 3)), requires_grad=True)
    gx, = grad(F.max_pool2d(x, 2, 1), [x], g, create_graph=True)
    u = Tensor(np.random.default_rng(3).standard_normal(x.shape))
    ddx, ddg = grad((gx * u).sum(), [x, g], allow_unused=True)
    assert ddx is None or not ddx.numpy().any()
    np.testing.assert_allclose(ddg.numpy(), _gather(u.numpy(), x.numpy()))


def _gather(u, x):
    """u at each 2x2 stride-1 window's argmax of x."""
    out = np.zeros((1, 2, 2, 3))
    for c in range(2):
        for i in range(2):
            for j in range(3):
                win = x[0, c, i:i + 2, j:j + 2]
                a, b = np.unravel_index(win.argmax(), win.shape)
                out[0, c, i, j] = u[0, c, i + a, j + b]
    return out


def test_max_pool2d_ties_send_the_gradient_to_the_first_maximum():
    t = leaves(np.ones((1, 1, 2, 4)))[0]
    F.max_pool2d(t, 2).sum().backward()
    np.testing.assert_array_equal(t.grad.numpy()[0, 0], [[1, 0, 1, 0], [0, 0, 0, 0]])


def test_overlapping_windows_accumulate_onto_a_shared_winner():
    x = np.zeros((1, 1, 3, 3))
    x[0, 0, 1, 1] = 5.0                       # the centre wins all four 2x2 windows
    t = leaves(x)[0]
    F.max_pool2d(t, 2, stride=1).sum().backward()
    assert t.grad.numpy()[0, 0, 1, 1] == 4 and t.grad.numpy().sum() == 4


def test_avg_pool2d_default_stride_is_the_kernel():
    x = np.arange(2 * 3 * 4 * 6, dtype=float).reshape(2, 3, 4, 6)
    np.testing.assert_allclose(F.avg_pool2d(Tensor(x), 2).numpy(),
                               reference_pool(x, (2, 2), (2, 2), (0, 0), "avg"))
    np.testing.assert_allclose(F.avg_pool2d(Tensor(x), (2, 3)).numpy(),
                               reference_pool(x, (2, 3), (2, 3), (0, 0), "avg"))


# --- interpolate ---------------------------------------------------------------------------

def test_bilinear_matches_pytorchs_known_outputs():
    x = Tensor(np.array([[[[1.0, 2.0], [3.0, 4.0]]]]))
    np.testing.assert_allclose(F.interpolate(x, scale_factor=2, mode="bilinear").numpy()[0, 0],
                               [[1.0, 1.25, 1.75, 2.0], [1.5, 1.75, 2.25, 2.5],
                                [2.5, 2.75, 3.25, 3.5], [3.0, 3.25, 3.75, 4.0]])
    np.testing.assert_allclose(F.interpolate(x, size=3, mode="bilinear", align_corners=True).numpy()[0, 0],
                               [[1.0, 1.5, 2.0], [2.0, 2.5, 3.0], [3.0, 3.5, 4.0]])


@st.composite
def resize_cases(draw):
    """x (N, C, H, W), H != W, and either an output size (Ho, Wo) or a pair of scale factors."""
    h = draw(st.integers(1, 4))
    w = h + draw(st.integers(1, 2))
    x = draw(arrays((draw(st.integers(1, 2)), draw(st.integers(1, 2)), h, w)))
    if draw(st.booleans()):
        return x, {"size": (draw(st.integers(1, 6)), draw(st.integers(1, 6)))}
    factors = tuple(draw(st.sampled_from([0.5, 1.0, 1.5, 2.0, 2.5, 3.0])) for _ in range(2))
    if min(math.floor(h * factors[0]), math.floor(w * factors[1])) < 1:
        factors = (2.0, 1.5)
    return x, {"scale_factor": factors}


def _output(x, kw):
    if "size" in kw:
        return kw["size"], (None, None)
    f = kw["scale_factor"]
    return (math.floor(x.shape[2] * f[0]), math.floor(x.shape[3] * f[1])), f


@fast(25)
@given(resize_cases(), st.booleans())
def test_bilinear_values_and_gradients(case, align_corners):
    x, kw = case
    out, factors = _output(x, kw)
    y = F.interpolate(Tensor(x), mode="bilinear", align_corners=align_corners, **kw)
    np.testing.assert_allclose(y.numpy(), reference_bilinear(x, out, align_corners, factors),
                               rtol=1e-12, atol=1e-12)
    check(lambda t: F.interpolate(t, mode="bilinear", align_corners=align_corners, **kw), x, second=True)


@fast(25)
@given(resize_cases())
def test_nearest_values_and_gradients(case):
    x, kw = case
    out, factors = _output(x, kw)
    y = F.interpolate(Tensor(x), **kw)
    np.testing.assert_array_equal(y.numpy(), reference_nearest(x, out, factors))
    check(lambda t: F.interpolate(t, **kw), x, second=True)


def test_nearest_follows_pytorchs_scale_factor_rule():
    x = np.arange(4.0).reshape(1, 1, 4, 1)
    # 4 rows x 1.4 -> 5 rows from floor(o / 1.4) = 0 0 1 2 2, not from floor(o 4 / 5) = 0 0 1 2 3
    np.testing.assert_array_equal(F.interpolate(Tensor(x), scale_factor=1.4).numpy()[0, 0, :, 0],
                                  [0, 0, 1, 2, 2])
    np.testing.assert_array_equal(F.interpolate(Tensor(x), size=(5, 1)).numpy()[0, 0, :, 0], [0, 0, 1, 2, 3])
    # out = in copies and out = 2 in doubles, whatever the factor that led there
    np.testing.assert_array_equal(F.interpolate(Tensor(x), scale_factor=(1.2, 1)).numpy(), x)
    np.testing.assert_array_equal(F.interpolate(Tensor(x), scale_factor=(2.2, 2)).numpy(),
                                  F.upsample_nearest(Tensor(x), 2).numpy())


@pytest.mark.parametrize("mode,align", [("nearest", False), ("bilinear", False), ("bilinear", True)])
def test_constant_images_stay_constant(mode, align):
    x = Tensor(np.full((2, 3, 3, 5), 0.7))
    for kw in ({"size": (7, 2)}, {"scale_factor": 1.7}, {"scale_factor": (0.5, 3)}):
        np.testing.assert_allclose(F.interpolate(x, mode=mode, align_corners=align, **kw).numpy(), 0.7)


def test_bilinear_with_align_corners_reproduces_a_linear_ramp():
    h, w, ho, wo = 3, 5, 7, 4
    rows, cols = np.meshgrid(np.arange(h), np.arange(w), indexing="ij")
    x = (2.0 * rows - 0.5 * cols + 1.0)[None, None]
    y = F.interpolate(Tensor(x), size=(ho, wo), mode="bilinear", align_corners=True).numpy()[0, 0]
    r = np.arange(ho)[:, None] * (h - 1) / (ho - 1)
    c = np.arange(wo)[None, :] * (w - 1) / (wo - 1)
    np.testing.assert_allclose(y, 2.0 * r - 0.5 * c + 1.0, atol=1e-12)


# --- dtype and bad input ------------------------------------------------------------------------

@pytest.mark.parametrize("op", [
    lambda t: F.avg_pool2d(t, 2), lambda t: F.avg_pool2d(t, 3, 1, 1), lambda t: F.max_pool2d(t, 2),
    lambda t: F.max_pool2d(t, 3, 2, 1), lambda t: F.upsample_nearest(t, 2),
    lambda t: F.interpolate(t, scale_factor=1.5), lambda t: F.interpolate(t, size=(3, 7), mode="bilinear"),
    lambda t: F.interpolate(t, scale_factor=2, mode="bilinear", align_corners=True)])
def test_float32_stays_float32(op):
    x = Tensor(np.random.default_rng(0).standard_normal((2, 3, 4, 6)).astype(np.float32), requires_grad=True)
    y = op(x)
    assert y.dtype == np.float32
    y.sum().backward()
    assert x.grad.dtype == np.float32


def test_pooling_errors():
    x = Tensor(np.ones((1, 2, 3, 5)))
    with pytest.raises(ValueError, match=r"4-D \(N, C, H, W\) input, got shape \(3, 5\)"):
        F.max_pool2d(Tensor(np.ones((3, 5))), 2)
    with pytest.raises(ValueError, match=r"kernel_size \(4, 4\) is larger than the input's "
                                         r"height 3 plus padding \(0, 0\)"):
        F.max_pool2d(x, 4)
    with pytest.raises(ValueError, match=r"padding \(2, 2\) must be at most half of kernel_size \(3, 3\)"):
        F.avg_pool2d(x, 3, 1, 2)
    with pytest.raises(ValueError, match="kernel_size must be positive, got 0"):
        F.max_pool2d(x, 0)
    with pytest.raises(ValueError, match="stride must be positive, got -1"):
        F.avg_pool2d(x, 2, -1)
    with pytest.raises(ValueError, match="padding must be non-negative"):
        F.max_pool2d(x, 2, 1, -1)
    with pytest.raises(ValueError, match=r"height 3 and width 5 must be multiples of kernel_size 2"):
        F.max_pool2d(x, 2)
    with pytest.raises(ValueError, match=r"leave the last 1 pixel\(s\) of the input's width 6 in no window"):
        F.avg_pool2d(Tensor(np.ones((1, 2, 3, 6))), (1, 3), (1, 2))
    with pytest.raises(ValueError, match=r"no pixels, shape \(1, 2, 0, 5\)"):
        F.avg_pool2d(Tensor(np.ones((1, 2, 0, 5))), 1)


def test_interpolate_errors():
    x = Tensor(np.ones((1, 2, 3, 5)))
    with pytest.raises(ValueError, match="exactly one of scale_factor and size"):
        F.interpolate(x)
    with pytest.raises(ValueError, match="exactly one of scale_factor and size"):
        F.interpolate(x, scale_factor=2, size=(6, 10))
    with pytest.raises(ValueError, match="mode must be one of nearest, bilinear, got 'bicubic'"):
        F.interpolate(x, scale_factor=2, mode="bicubic")
    with pytest.raises(ValueError, match="align_corners applies to mode='bilinear' only"):
        F.interpolate(x, scale_factor=2, align_corners=True)
    with pytest.raises(ValueError, match=r"scale_factor 0.2 makes an empty output \(0, 1\) "
                                         r"from input shape \(1, 2, 3, 5\)"):
        F.interpolate(x, scale_factor=0.2)
    with pytest.raises(ValueError, match="scale_factor must be a positive number or a pair of them, got -2"):
        F.interpolate(x, scale_factor=-2)
    with pytest.raises(ValueError, match="size must be positive, got"):
        F.interpolate(x, size=(0, 4))
    with pytest.raises(ValueError, match=r"got shape \(3, 5\)"):
        F.interpolate(Tensor(np.ones((3, 5))), scale_factor=2)
    with pytest.raises(TypeError, match="bilinear needs a floating tensor, got int64"):
        F.interpolate(Tensor(np.ones((1, 1, 2, 2), np.int64)), scale_factor=2, mode="bilinear")
    with pytest.raises(ValueError, match="scale must be a positive integer, got 0"):
        F.upsample_nearest(x, 0)
