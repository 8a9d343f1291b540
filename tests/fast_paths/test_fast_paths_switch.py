"""Switching the fast paths: between forward and backward, in Adam, in a whole DCGAN step, with
freed memory kept, and the one setting that turns them all off, each against its reference path:
the same numbers with ``tinygen.fast_paths`` on and off, bit for bit where only the route
differs, to rounding where the order of summation does."""
import json
import os
import subprocess
import sys

import numpy as np
import pytest

import tinygen
from tinygen import fast_paths, functional as F
from tinygen.autograd.tensor import Tensor
from tinygen.optim import Adam

from fast_path_checks import ROOT, both, value_and_grads


def test_switching_between_forward_and_backward_keeps_the_gradient_right():
    """Patches laid out by a fast forward are not reused by a reference backward."""
    rng = np.random.default_rng(5)
    x, w = rng.standard_normal((2, 8, 6, 5)), rng.standard_normal((3, 8, 3, 2))
    expected = value_and_grads(lambda a, b: F.conv2d(a, b, padding=(1, 0)), x, w)
    xt, wt = Tensor(x.copy(), requires_grad=True), Tensor(w.copy(), requires_grad=True)
    y = F.conv2d(xt, wt, padding=(1, 0))
    cotangent = np.random.default_rng(1).standard_normal(y.shape)
    with fast_paths.reference_paths():
        (y * Tensor(cotangent)).sum().backward()
    np.testing.assert_allclose(wt.grad.numpy(), expected[2], rtol=1e-12)
    np.testing.assert_allclose(xt.grad.numpy(), expected[1], rtol=1e-12)


@pytest.mark.parametrize("decay", [0.0, 0.1])
def test_adam_in_place_equals_its_formulas(decay):
    rng = np.random.default_rng(6)
    start, grads = rng.standard_normal((4, 3)), rng.standard_normal((5, 4, 3))

    def steps():
        p = tinygen.nn.Parameter(start.copy())
        opt = Adam([p], lr=0.01, weight_decay=decay)
        for g in grads:
            p.grad = Tensor(g.copy())
            opt.step()
        state = opt.state_dict()["state"][0]
        return p.numpy(), state["exp_avg"], state["exp_avg_sq"]
    fast, reference = both(steps)
    for a, b in zip(fast, reference):
        np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=1e-13)


def test_a_dcgan_step_runs_the_same_with_the_reference_paths():
    from tinygen import models

    def run():
        tinygen.manual_seed(0)
        model = models.build("dcgan", image_shape=(1, 8, 8))
        x = Tensor(np.random.default_rng(7).random((16, 1, 8, 8)).astype(np.float32))
        losses = [model.train_step(x) for _ in range(4)]
        return [l[k] for l in losses for k in sorted(l)] + [p.numpy() for p in model.parameters()]
    fast, reference = both(run)
    for a, b in zip(fast, reference):
        np.testing.assert_allclose(a, b, rtol=2e-4, atol=1e-5)


_STEPS = """
import json, numpy as np, resource, tinygen
from tinygen import backend, fast_paths, models
from tinygen.autograd.tensor import Tensor
tinygen.manual_seed(0)
model = models.build("pixelcnn", image_shape=(1, 8, 8))
x = Tensor((np.random.default_rng(0).random((32, 1, 8, 8)) > 0.5).astype(np.float32))
model.train_step(x)
before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
losses = [float(v) for _ in range(3) for v in model.train_step(x).values()]
faults = (resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before) / 3
print(json.dumps({"losses": losses, "params": float(sum(np.abs(p.numpy()).sum() for p in model.parameters())),
                  "reuse": backend.REUSING_FREED_MEMORY, "fast": fast_paths.enabled(), "faults": faults}))
"""


def _run_steps(**env):
    full = {k: v for k, v in os.environ.items() if not k.startswith(("MALLOC_", "TINYGEN_"))}
    full.update(env, OMP_NUM_THREADS="1")
    out = subprocess.run([sys.executable, "-c", _STEPS], env=full, cwd=ROOT, capture_output=True, text=True,
                         check=True, timeout=300).stdout
    return json.loads(out.strip().splitlines()[-1])


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's malloc settings")
def test_keeping_freed_memory_changes_no_number_and_can_be_turned_off():
    kept, returned = _run_steps(), _run_steps(TINYGEN_REUSE_MEMORY="0")
    assert kept["reuse"] and not returned["reuse"]
    assert kept["losses"] == returned["losses"] and kept["params"] == returned["params"]   # bit for bit


def test_one_setting_turns_every_fast_path_off():
    off = _run_steps(TINYGEN_FAST_PATHS="0")
    on = _run_steps()
    assert on["fast"] and not off["fast"]
    np.testing.assert_allclose(on["losses"], off["losses"], rtol=1e-5)
