"""What every op promises beyond its formula: it never mutates its inputs (or the gradient
it is given), and a shape mismatch raises an error that names both shapes."""
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import tinygen.functional as F
from tinygen.autograd import Tensor, grad
from tinygen.functional._pixel_norm import pixel_norm
from tinygen.metrics._kernel_sums import kernel_sum
from tinygen.testing import arrays, broadcastable_shapes, shapes

from strategies import fast, leaves

# op name -> (function of Tensors, strategy of input arrays)
PAIRS = broadcastable_shapes(max_dims=3, max_side=3).flatmap(
    lambda s: st.tuples(arrays(s[0], domain="positive"), arrays(s[1], domain="positive")))
ONE = arrays(shapes(min_dims=1, max_dims=3, max_side=3), domain="positive")
IMAGE = arrays(st.tuples(st.integers(1, 2), st.integers(1, 2), st.just(2), st.just(4)))

OPS = {
    "add": (F.add, PAIRS), "sub": (F.sub, PAIRS), "mul": (F.mul, PAIRS), "div": (F.div, PAIRS),
    "pow": (F.pow, PAIRS), "maximum": (F.maximum, PAIRS), "minimum": (F.minimum, PAIRS),
    "where": (lambda a, b: F.where(a.data > 1, a, b), PAIRS),
    "neg": (F.neg, ONE.map(lambda x: (x,))), "exp": (F.exp, ONE.map(lambda x: (x,))),
    "log": (F.log, ONE.map(lambda x: (x,))), "sqrt": (F.sqrt, ONE.map(lambda x: (x,))),
    "abs": (F.abs, ONE.map(lambda x: (x,))), "clip": (lambda x: F.clip(x, 0.5, 2.0), ONE.map(lambda x: (x,))),
    "pow_scalar": (lambda x: x ** 3, ONE.map(lambda x: (x,))),
    "sum": (lambda x: F.sum(x, 0), ONE.map(lambda x: (x,))),
    "mean": (lambda x: F.mean(x, -1, True), ONE.map(lambda x: (x,))),
    "var": (lambda x: F.var(x), ONE.map(lambda x: (x,))),
    "max": (lambda x: F.max(x, 0), ONE.map(lambda x: (x,))),
    "min": (lambda x: F.min(x), ONE.map(lambda x: (x,))),
    "logsumexp": (lambda x: F.logsumexp(x, 0), ONE.map(lambda x: (x,))),
    "matmul": (lambda x: x @ (F.swapaxes(x, -1, -2) if x.ndim > 1 else x), ONE.map(lambda x: (x,))),
    "linear": (lambda x: F.linear(x, F.reshape(x, (-1, x.shape[-1]))), ONE.map(lambda x: (x,))),
    "reshape": (lambda x: F.reshape(x, (-1,)), ONE.map(lambda x: (x,))),
    "transpose": (lambda x: F.transpose(x), ONE.map(lambda x: (x,))),
    "getitem": (lambda x: x[np.array([0, 0, -1])], ONE.map(lambda x: (x,))),
    "getitem_mask": (lambda x: x[x.data > 1], ONE.map(lambda x: (x,))),
    "getitem_slice": (lambda x: x[::-1], ONE.map(lambda x: (x,))),
    "concat": (lambda a: F.concat([a, a * 2.0], 0), ONE.map(lambda x: (x,))),
    "stack": (lambda a: F.stack([a, a], -1), ONE.map(lambda x: (x,))),
    "split": (lambda a: F.split(a, 1, 0)[0], ONE.map(lambda x: (x,))),
    "pad": (lambda a: F.pad(a, 1, 3.0), ONE.map(lambda x: (x,))),
    "repeat": (lambda a: F.repeat(a, 2, 0), ONE.map(lambda x: (x,))),
    "tile": (lambda a: F.tile(a, (2,)), ONE.map(lambda x: (x,))),
    "expand": (lambda a: F.expand(a, (2,) + a.shape), ONE.map(lambda x: (x,))),
    "sigmoid": (F.sigmoid, ONE.map(lambda x: (x,))), "tanh": (F.tanh, ONE.map(lambda x: (x,))),
    "relu": (F.relu, ONE.map(lambda x: (x - 1,))), "leaky_relu": (F.leaky_relu, ONE.map(lambda x: (x - 1,))),
    "elu": (F.elu, ONE.map(lambda x: (x - 1,))), "softplus": (F.softplus, ONE.map(lambda x: (x,))),
    "softmax": (F.softmax, ONE.map(lambda x: (x,))), "log_softmax": (F.log_softmax, ONE.map(lambda x: (x,))),
    "dropout": (lambda x: F.dropout(x, 0.5, generator=np.random.default_rng(0)), ONE.map(lambda x: (x,))),
    "upsample": (F.upsample_nearest, IMAGE.map(lambda x: (x,))),
    "pixel_norm": (lambda x: pixel_norm(x, 1e-8), IMAGE.map(lambda x: (x,))),
    "mmd_kernel": (lambda x: kernel_sum(x, "imq", (0.5, 2.0)), ONE.map(lambda x: (x,))),
    "avg_pool": (F.avg_pool2d, IMAGE.map(lambda x: (x,))),
    "bce": (lambda a, b: F.binary_cross_entropy_with_logits(a, b * 0.0 + 0.5), ONE.map(lambda x: (x, x))),
    "mse": (F.mse_loss, ONE.map(lambda x: (x, x[::-1].copy()))),
    "l1": (F.l1_loss, ONE.map(lambda x: (x, x + 0.5))),
    "gaussian_nll": (F.gaussian_nll, ONE.map(lambda x: (x, x * 0.5, x - 1))),
    "cross_entropy": (lambda a: F.cross_entropy(F.reshape(a, (a.shape[0], -1)), np.zeros(a.shape[0], int)),
                      ONE.map(lambda x: (x,))),
    "cast": (lambda x: F.cast(x, np.float32), ONE.map(lambda x: (x,))),
    "cumsum": (lambda x: F.cumsum(x, 0), ONE.map(lambda x: (x,))),
    "pad_reflect": (lambda x: F.pad(x, ((0, 0), (0, 0), (1, 1), (1, 2)), mode="reflect"), IMAGE.map(lambda x: (x,))),
    "pad_replicate": (lambda x: F.pad(x, ((0, 0), (0, 0), (2, 0), (0, 1)), mode="replicate"),
                      IMAGE.map(lambda x: (x,))),
    "max_pool": (lambda x: F.max_pool2d(x, 2), IMAGE.map(lambda x: (x,))),
    "bilinear": (lambda x: F.interpolate(x, scale_factor=2, mode="bilinear"), IMAGE.map(lambda x: (x,))),
    "instance_norm": (lambda x: F.instance_norm(x), IMAGE.map(lambda x: (x,))),
    "layer_norm": (lambda x: F.layer_norm(x, x.shape[-2:]), IMAGE.map(lambda x: (x,))),
}


@pytest.mark.parametrize("name", list(OPS))
def test_ops_never_mutate_their_inputs(name):
    op, inputs = OPS[name]

    @fast(8)
    @given(inputs, st.booleans())
    def run(arrays_, create_graph):
        copies = [a.copy() for a in arrays_]
        ts = leaves(*arrays_)
        y = op(*ts)
        y_before = y.numpy().copy()
        seed = Tensor(np.full(y.shape, 0.5, dtype=y.dtype))
        seed_before = seed.numpy().copy()
        gs = grad(y, ts, grad_outputs=seed, create_graph=create_graph, allow_unused=True)
        if create_graph:                   # and once more through the gradients' own graph
            total = sum((g * g).sum() for g in gs if g is not None and g.requires_grad)
            if isinstance(total, Tensor):
                grad(total, ts, allow_unused=True)
        for t, a, c in zip(ts, arrays_, copies):
            np.testing.assert_array_equal(t.numpy(), c)
            np.testing.assert_array_equal(a, c)
        np.testing.assert_array_equal(seed.numpy(), seed_before)
        np.testing.assert_array_equal(y.numpy(), y_before)
    run()


# --- errors name both shapes -------------------------------------------------

@pytest.mark.parametrize("op", [F.add, F.sub, F.mul, F.div, F.pow, F.maximum, F.minimum,
                                lambda a, b: a + b, lambda a, b: a * b, lambda a, b: a / b])
def test_binary_shape_mismatch_names_both_shapes(op):
    a, b = Tensor(np.ones((2, 3))), Tensor(np.ones((4, 1, 5)))
    with pytest.raises(ValueError) as info:
        op(a, b)
    assert "(2, 3)" in str(info.value) and "(4, 1, 5)" in str(info.value)


def test_where_shape_mismatch_names_shapes():
    with pytest.raises(ValueError, match=r"\(3,\).*\(2,\).*\(4,\)"):
        F.where(np.ones(3, bool), Tensor(np.ones(2)), Tensor(np.ones(4)))


def test_concat_mismatch_names_all_shapes():
    with pytest.raises(ValueError, match=r"\(2, 3\), \(2, 4\)"):
        F.concat([Tensor(np.ones((2, 3))), Tensor(np.ones((2, 4)))], axis=0)
    with pytest.raises(ValueError, match=r"\(2, 3\), \(3,\)"):
        F.concat([Tensor(np.ones((2, 3))), Tensor(np.ones(3))])
    with pytest.raises(ValueError, match=r"\(2,\), \(3,\)"):
        F.stack([Tensor(np.ones(2)), Tensor(np.ones(3))])


def test_reshape_mismatch_names_both_shapes():
    with pytest.raises(ValueError, match=r"\(2, 3\).*\(4, 2\)"):
        F.reshape(Tensor(np.ones((2, 3))), (4, 2))


def test_swapaxes_bad_axis():
    with pytest.raises(ValueError, match="axis -2 is out of range"):
        F.swapaxes(Tensor(np.ones(3)), -1, -2)


def test_transpose_bad_axes_names_shape():
    with pytest.raises(ValueError, match=r"\(2, 3\)"):
        F.transpose(Tensor(np.ones((2, 3))), (0, 0))
