"""Every explicit model's train_step reports and descends the documented reduction, the mean
NLL over the batch, -1/N sum_n log p(x_n): pinned on a fixed batch, and through the gradient
its optimizer receives, which must not grow with the batch (a sum over the batch passes
every other test: Adam's first steps are scale-free)."""
import numpy as np
import pytest

import tinygen
from tinygen import models
from tinygen.autograd.tensor import Tensor

EXPLICIT = [("bernoulli", {}), ("fvsbn", {}), ("nade", {}), ("pixelcnn", {"dropout": 0.0}),
            ("pixelrnn", {"dropout": 0.0}), ("pixelrnn", {"dropout": 0.0, "variant": "diagonal_bilstm"})]
SHAPE = (1, 4, 5)   # rectangular, so that no axis is mistaken for the other


def _model(name, options):
    tinygen.manual_seed(0)
    m = models.build(name, image_shape=SHAPE, **options)
    for p in m.parameters():   # away from the initial symmetry, so every pixel's term differs
        p.data[...] += np.random.default_rng(1).normal(0, 0.3, p.shape).astype(p.dtype)
    return m


def _batch(n, seed=2):
    return (np.random.default_rng(seed).random((n,) + SHAPE) < 0.4).astype(np.float32)


def _gradients_of_a_step(model, x):
    """train_step on x; the gradients its optimizer saw, and what it reported."""
    opt = model.optimizers["main"]
    seen = {}
    step = opt.step

    def recording_step():
        seen.update({id(p): p.grad.numpy().copy() for p in model.parameters() if p.grad is not None})
        step()
    opt.step = recording_step
    reported = model.train_step(Tensor(x))
    return [seen[id(p)] for p in model.parameters() if id(p) in seen], reported


@pytest.mark.parametrize("name, options", EXPLICIT, ids=[f"{n}{'-' + o.get('variant', '') if o.get('variant') else ''}"
                                                         for n, o in EXPLICIT])
def test_train_step_reports_and_descends_the_mean_nll(name, options):
    x = _batch(6)
    before = _model(name, options)
    with tinygen.no_grad():
        per_example = -before.log_prob(Tensor(x)).numpy()              # (N,) nats
    grads, reported = _gradients_of_a_step(_model(name, options), x)
    (loss,) = reported.values()
    assert float(loss) == pytest.approx(per_example.mean(), rel=1e-5)   # the mean, not the sum
    doubled, reported2 = _gradients_of_a_step(_model(name, options), np.concatenate([x, x]))
    assert float(next(iter(reported2.values()))) == pytest.approx(per_example.mean(), rel=1e-5)
    for g, g2 in zip(grads, doubled):   # the same batch twice: the same mean, the same gradient
        # float32 sums over 6 and over 12 examples round apart, most where terms cancel (OpenBLAS's
        # Haswell kernels: 1.9e-6 on an entry of 1.6e-3), so atol scales with the gradient; a sum
        # over the batch would double every entry
        np.testing.assert_allclose(g2, g, rtol=1e-4, atol=1e-6 + 1e-4 * float(np.abs(g).max()))
    assert any(np.abs(g).max() > 1e-3 for g in grads)
