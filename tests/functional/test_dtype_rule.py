"""One dtype rule, PyTorch's, across every op family.

- A constant (Python number, list, NumPy array) beside a Tensor takes the Tensor's
  dtype when it is of the Tensor's kind or lower (bool < integer < float), and the
  default dtype of its own kind when higher (float32, int64).
- Two Tensors: same kind promotes as NumPy does; different kinds take the higher
  kind's dtype. True division, exp, log, sqrt, mean and var of integers give float32.
- Products (matmul, linear, conv2d, conv_transpose2d, the LSTM scans) need equal
  dtypes and say so, naming both.
"""
import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

import tinygen
import tinygen.functional as F
import tinygen.nn as nn
from tinygen.autograd import Tensor

FLOATS = [np.float32, np.float64]
INTS = [np.int32, np.int64]
ALL = [np.bool_] + INTS + FLOATS
RANK = {"b": 0, "i": 1, "u": 1, "f": 2}


def expected_pair(a, b):
    """The rule for two Tensors, written out independently of the library."""
    a, b = np.dtype(a), np.dtype(b)
    ra, rb = RANK[a.kind], RANK[b.kind]
    if ra == rb:
        return np.promote_types(a, b)
    return a if ra > rb else b


def expected_constant(const, like):
    const, like = np.dtype(const), np.dtype(like)
    if RANK[const.kind] <= RANK[like.kind]:
        return like
    return np.dtype(np.float32) if const.kind == "f" else np.dtype(np.int64)


def make(dtype, shape=(2, 3), seed=0):
    rng = np.random.default_rng(seed)
    return Tensor((rng.uniform(1, 3, size=shape)).astype(dtype))


BINARY = [F.add, F.sub, F.mul, F.maximum, F.minimum]


@settings(max_examples=60, deadline=None)
@given(st.sampled_from(ALL), st.sampled_from(ALL), st.sampled_from(BINARY))
def test_two_tensors_promote_like_pytorch(da, db, op):
    if op is F.sub and np.dtype(da) == np.bool_ and np.dtype(db) == np.bool_:
        return  # NumPy (and PyTorch) refuse boolean subtraction
    out = op(make(da), make(db, seed=1))
    assert out.dtype == expected_pair(da, db)


@settings(max_examples=60, deadline=None)
@given(st.sampled_from(ALL[1:]), st.sampled_from([2, 2.5, True, np.float64(2.0), np.int64(3),
                                                  "f64array", "i64array", "list"]),
       st.sampled_from(BINARY + [F.div]), st.booleans())
def test_constants_take_the_tensor_dtype_category(dt, const, op, left):
    if isinstance(const, str):
        const = {"f64array": np.full((3,), 2.0), "i64array": np.full((3,), 2, dtype=np.int64),
                 "list": [2.0, 3.0, 4.0]}[const]
    x = make(dt)
    out = op(x, const) if left else op(const, x)
    cdtype = np.asarray(const).dtype
    want = expected_constant(cdtype, dt)
    if op is F.div and want.kind != "f":
        want = np.dtype(np.float32)            # true division of integers
    assert out.dtype == want, (dt, const, op.__name__)


def test_the_examples_of_the_rule():
    t = tinygen.tensor([1, 2, 3])
    out = t * 0.5
    assert out.dtype == np.float32
    np.testing.assert_array_equal(out.numpy(), [0.5, 1.0, 1.5])
    x = tinygen.tensor([1.0, 2.0])
    assert (x * np.array(2.0)).dtype == np.float32
    assert F.mse_loss(x, np.array([0.0, 1.0])).dtype == np.float32
    assert F.l1_loss(x, np.array([0.0, 1.0])).dtype == np.float32
    assert F.binary_cross_entropy_with_logits(x, np.array([0.0, 1.0])).dtype == np.float32
    assert F.gaussian_nll(np.array([0.0, 1.0]), x, np.array(0.0)).dtype == np.float32
    pred, y = tinygen.tensor([1, 2, 3, 4]), tinygen.tensor([1, 0, 3, 4])
    acc = F.mean(pred == y)
    assert acc.dtype == np.float32 and acc.item() == 0.75
    assert F.var(tinygen.tensor([1, 2, 3, 4])).dtype == np.float32
    assert (tinygen.tensor([1, 2]) / tinygen.tensor([2, 4])).dtype == np.float32
    assert (tinygen.tensor([1, 4]) ** 0.5).dtype == np.float32
    assert F.exp(tinygen.tensor([0, 1])).dtype == np.float32
    assert (tinygen.tensor([1, 2]) + 1).dtype == np.int64


@pytest.mark.parametrize("dtype", FLOATS)
def test_a_float_graph_keeps_its_dtype_through_every_family(dtype):
    x = Tensor(np.linspace(0.1, 1.0, 24).reshape(1, 2, 3, 4).astype(dtype), requires_grad=True)
    c = np.float64(0.5) if dtype == np.float32 else np.float32(0.5)
    w = Tensor(np.full((3, 2, 2, 2), 0.1, dtype=dtype))
    steps = [
        lambda t: t * c + np.ones(4),
        lambda t: F.sigmoid(t) - np.array(0.25),
        lambda t: F.where(t > 0.5, t, 0.0),
        lambda t: F.maximum(t, np.float64(0.3)),
        lambda t: F.conv2d(t, w),
        lambda t: F.sum(t, axis=1) / 3,
        lambda t: F.mean(t) + F.var(t),
    ]
    t = x
    for step in steps:
        t = step(t)
        assert t.dtype == dtype
    t.backward()
    assert x.grad.dtype == dtype


FLOAT_MATHS = [F.exp, F.log, F.sqrt, F.sigmoid, F.tanh, F.softplus, F.elu, F.leaky_relu, F.softmax,
               F.log_softmax, F.mean, F.var]


@settings(max_examples=40, deadline=None)
@given(st.sampled_from(ALL), st.sampled_from(FLOAT_MATHS))
def test_float_maths_of_integers_and_booleans_is_float32(dtype, op):
    out = op(make(dtype))
    want = np.dtype(dtype) if np.dtype(dtype).kind == "f" else np.dtype(np.float32)
    assert out.dtype == want


@pytest.mark.parametrize("dtype", ALL[1:])
def test_comparisons_give_booleans(dtype):
    assert (make(dtype) > 1.5).dtype == np.bool_
    assert (make(dtype) == np.array(2)).dtype == np.bool_


def _mixed(op_name):
    f32 = lambda *s: Tensor(np.ones(s, dtype=np.float32))   # noqa: E731
    f64 = lambda *s: Tensor(np.ones(s, dtype=np.float64))   # noqa: E731
    return {
        "matmul": lambda: F.matmul(f32(2, 3), f64(3, 4)),
        "linear": lambda: F.linear(f64(2, 3), f32(4, 3)),
        "nn.Linear": lambda: nn.Linear(3, 4)(f64(2, 3)),
        "conv2d": lambda: F.conv2d(f32(1, 2, 4, 5), f64(3, 2, 3, 3)),
        "conv_transpose2d": lambda: F.conv_transpose2d(f64(1, 2, 4, 5), f32(2, 3, 3, 3)),
        "lstm": lambda: F.lstm(f32(2, 1, 3), None, None, f64(8, 3), f32(8, 2)),
        "row_lstm": lambda: F.row_lstm(f32(1, 8, 3, 4), f64(8, 2, 3)),
        "diagonal_lstm": lambda: F.diagonal_lstm(f64(1, 8, 3, 4), f32(8, 2, 2)),
    }[op_name]


@pytest.mark.parametrize("op_name", ["matmul", "linear", "nn.Linear", "conv2d", "conv_transpose2d",
                                     "lstm", "row_lstm", "diagonal_lstm"])
def test_products_refuse_mixed_dtypes_naming_both(op_name):
    with pytest.raises(TypeError, match=r"must share one dtype.*float(32|64).*float(32|64)"):
        _mixed(op_name)()


def test_a_string_constant_is_refused():
    with pytest.raises(TypeError, match="cannot use a str"):
        tinygen.tensor([1.0]) + "a"


@pytest.mark.parametrize("dtype", [np.float16, np.float32, np.float64])
def test_a_python_number_beside_a_float_tensor_is_that_number_in_its_dtype(dtype):
    """The shortcut for Python floats and ints beside a float Tensor gives what the rule gives:
    the number rounded once to the Tensor's dtype (-0.0 and inf kept), on either side, and an
    int too large for int64 still goes the general way."""
    x = Tensor(np.array([1.5, -2.0, 3.0], dtype))
    for c in (0.1, -0.0, float("inf"), 3, -7, 2 ** 40, 1e-300):
        with np.errstate(over="ignore"):          # 2 ** 40 is inf in float16, as a cast makes it
            pairs = ((x * c, x.numpy() * np.asarray(c, dtype)), (c - x, np.asarray(c, dtype) - x.numpy()))
        for y, expected in pairs:
            assert y.dtype == dtype
            np.testing.assert_array_equal(y.numpy(), expected)
    assert np.signbit((Tensor(np.ones(2, dtype)) * -0.0).numpy()).all()
    with pytest.raises(TypeError, match="cannot use a int"):
        x * 2 ** 70
