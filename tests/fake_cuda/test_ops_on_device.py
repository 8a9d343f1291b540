"""Every op of tinygen.functional on "cuda" (the stand-in) against the same op on the CPU:
forward, backward, and backward through the gradients' own graph where the op allows it.

The ops and input strategies of tests/functional/test_op_contract.py (``OPS``) are reused as
they are; ``EXTRA`` adds the ops that table leaves out (convolutions, which run tinygen's CUDA
kernels on the emulator, the LSTM scans, normalisation, the adversarial losses, ...).
``test_every_public_op_is_covered`` keeps the two tables complete as ops are added.
"""
import numpy as np
import pytest
from hypothesis import given

import fake_cupy
import tinygen
import tinygen.functional as F
from tinygen.autograd import Tensor, grad

from device_checks import assert_close
from strategies import fast
from test_op_contract import OPS

RNG = np.random.default_rng(7)


def _a(*shape, low=-1.0, high=1.0):
    return RNG.uniform(low, high, shape)


def _critic_penalty(real, fake, w):
    return F.gradient_penalty(lambda x: F.sum(F.reshape(x, (x.shape[0], -1)) * w, 1), real, fake,
                              alpha=np.array([0.3, 0.7]))


# name -> (function of Tensors, input arrays, differentiable twice)
EXTRA = {
    "conv2d": (lambda x, w, b: F.conv2d(x, w, b, stride=(2, 1), padding=1),
               (_a(2, 3, 5, 4), _a(4, 3, 3, 2), _a(4)), True),
    "conv_transpose2d": (lambda x, w: F.conv_transpose2d(x, w, stride=2, padding=1, output_padding=1),
                         (_a(2, 3, 3, 3), _a(3, 2, 3, 3)), True),
    "conv2d_grad_weight": (lambda x, g: F.conv2d_grad_weight(x, g, 3, stride=1, padding=1),
                           (_a(2, 2, 4, 4), _a(2, 3, 4, 4)), True),
    "lstm": (lambda x, h, c, wi, wh, bi, bh: F.lstm(x, h, c, wi, wh, bi, bh)[0],
             (_a(3, 2, 4), _a(2, 3), _a(2, 3), _a(12, 4), _a(12, 3), _a(12), _a(12)), True),
    "row_lstm": (lambda x, w, b: F.row_lstm(x, w, b), (_a(2, 8, 3, 4), _a(8, 2, 3), _a(8)), True),
    "diagonal_lstm": (lambda x, w, b: F.diagonal_lstm(x, w, b), (_a(2, 8, 3, 5), _a(8, 2, 2), _a(8)), True),
    "skew": (F.skew, (_a(2, 3, 3, 4),), True),
    "unskew": (lambda y: F.unskew(y, 4), (_a(2, 3, 3, 6),), True),
    "batch_norm": (lambda x, w, b: F.batch_norm(x, None, None, w, b), (_a(4, 3, 2, 2), _a(3), _a(3)), True),
    "instance_norm_affine": (lambda x, w, b: F.instance_norm(x, w, b), (_a(2, 3, 3, 3), _a(3), _a(3)), True),
    "layer_norm_affine": (lambda x, w, b: F.layer_norm(x, (3,), w, b), (_a(2, 4, 3), _a(3), _a(3)), True),
    "max_pool2d_stride": (lambda x: F.max_pool2d(x, 3, stride=2, padding=1), (_a(2, 2, 5, 5),), True),
    "avg_pool2d_padding": (lambda x: F.avg_pool2d(x, 3, stride=2, padding=1), (_a(2, 2, 5, 5),), True),
    "interpolate_size": (lambda x: F.interpolate(x, size=(5, 3), mode="bilinear", align_corners=True),
                         (_a(1, 2, 3, 2),), True),
    "discriminator_loss": (lambda r, f: F.discriminator_loss(r, f), (_a(4, 1), _a(4, 1)), True),
    "discriminator_loss_wasserstein": (lambda r, f: F.discriminator_loss(r, f, "wgan"),
                                       (_a(4, 1), _a(4, 1)), True),
    "generator_loss": (lambda f: F.generator_loss(f), (_a(4, 1),), True),
    "gradient_penalty": (_critic_penalty, (_a(2, 1, 2, 2), _a(2, 1, 2, 2), _a(1, 4)), True),
    "permute": (lambda x: F.permute(x, (2, 0, 1)), (_a(2, 3, 4),), True),
    "flatten": (lambda x: F.flatten(x, 1), (_a(2, 3, 4),), True),
    "squeeze_unsqueeze": (lambda x: F.unsqueeze(F.squeeze(x, 1), 0), (_a(2, 1, 3),), True),
    "getitem_device_index": (lambda x: x[x.data.argmax(axis=0)], (_a(3, 2),), True),
    "cross_entropy_device_labels": (lambda a: F.cross_entropy(a, tinygen.tensor(np.array([2, 0, 1]),
                                                                                 device=a.device)),
                                    (_a(3, 4),), True),
    "one_hot_product": (lambda a: F.one_hot(tinygen.tensor(np.array([1, 0, 2]), device=a.device), 3,
                                            dtype=np.float64) * a, (_a(3, 3),), True),
    "compare_and_select": (lambda a, b: F.where(F.less(a, b), a, b * 2.0) + sum(
        F.cast(compare(a, b), np.float64) for compare in (F.less_equal, F.greater, F.greater_equal, F.equal,
                                                          F.not_equal)), (_a(3, 4), _a(3, 4)), True),
    "argmax_gather": (lambda a: F.sum(a * F.one_hot(F.argmax(a, 1), 4, dtype=np.float64)), (_a(3, 4),), True),
    "to_device_round_trip": (lambda a: F.to_device(F.to_device(a, "cpu") * 2.0, "cuda"), (_a(2, 3),), True),
}

# Public names of tinygen.functional that neither table names, and the case that runs each.
NOT_OPS = {"sum_to": "every broadcasting op", "argmax": "argmax_gather", "one_hot": "one_hot_product",
           "to_device": "to_device_round_trip", "squeeze": "squeeze_unsqueeze", "unsqueeze": "squeeze_unsqueeze",
           "swapaxes": "matmul", "upsample_nearest": "upsample", "interpolate": "bilinear",
           "avg_pool2d": "avg_pool", "max_pool2d": "max_pool", "binary_cross_entropy_with_logits": "bce",
           "mse_loss": "mse", "l1_loss": "l1", **{name: "compare_and_select" for name in (
               "less", "less_equal", "greater", "greater_equal", "equal", "not_equal")}}


def _leaves(arrays_, device):
    return [Tensor(np.asarray(a, dtype=np.float64), requires_grad=True, device=device) for a in arrays_]


def _run(op, arrays_, device, create_graph):
    """(output, input gradients, gradients of sum(g * g)) of ``op`` on ``device``."""
    ts = _leaves(arrays_, device)
    y = op(*ts)
    seed = Tensor(np.linspace(0.5, 1.5, y.size).reshape(y.shape), device=device)
    gs = grad(y, ts, grad_outputs=seed, create_graph=create_graph, allow_unused=True)
    second = []
    if create_graph:
        total = sum(F.sum(g * g) for g in gs if g is not None and g.requires_grad)
        if isinstance(total, Tensor):
            second = grad(total, ts, allow_unused=True)
    return y, gs, second


def compare(name, op, arrays_, create_graph):
    y_gpu, g_gpu, s_gpu = _run(op, arrays_, "cuda", create_graph)
    y_cpu, g_cpu, s_cpu = _run(op, arrays_, "cpu", create_graph)
    assert_close(y_gpu, y_cpu, what=f"{name} forward")
    for kind, gpu, cpu in (("gradient", g_gpu, g_cpu), ("second-order gradient", s_gpu, s_cpu)):
        assert len(gpu) == len(cpu)
        for k, (a, b) in enumerate(zip(gpu, cpu)):
            assert (a is None) == (b is None), f"{name}: {kind} {k} is None on one device only"
            if a is not None:
                assert_close(a, b, what=f"{name} {kind} of input {k}")


@pytest.mark.parametrize("name", list(OPS))
def test_contract_ops_match_the_cpu(name):
    op, inputs = OPS[name]

    @fast(3)
    @given(inputs)
    def run(arrays_):
        compare(name, op, arrays_, create_graph=True)
    run()


@pytest.mark.parametrize("name", list(EXTRA))
def test_the_other_ops_match_the_cpu(name):
    op, arrays_, twice = EXTRA[name]
    compare(name, op, arrays_, create_graph=twice)


def test_convolutions_and_scans_run_tinygen_kernels_on_the_device():
    for name in ("conv2d", "lstm", "row_lstm", "diagonal_lstm"):
        op, arrays_, _ = EXTRA[name]
        _run(op, arrays_, "cuda", create_graph=False)
    launched = {name.rsplit("_", 1)[0] for name, *_ in fake_cupy.LAUNCHES}
    assert {"im2col", "col2im", "lstm_cell_forward", "lstm_cell_backward", "pixelrnn_step_forward",
            "pixelrnn_step_backward"} <= launched, launched


def test_every_public_op_is_covered():
    public = {n for n in dir(F) if not n.startswith("_") and callable(getattr(F, n))}
    public -= {n for n in public if isinstance(getattr(F, n), type(F))}
    covered = set(OPS) | set(EXTRA) | set(NOT_OPS)
    assert public - covered == set(), f"ops with no device test: {sorted(public - covered)}"
