"""Shared helpers for the nn tests."""
import numpy as np
import pytest

import tinygen


@pytest.fixture(autouse=True)
def _seed():
    tinygen.manual_seed(0)


def numerical_param_check(module, inputs, loss_fn=None, eps=1e-6, rtol=1e-5, atol=1e-7, seed=0):
    """Compare every parameter's analytic gradient with central differences, in float64.

    ``module`` must already be float64. For a random cotangent v, L = sum(v * module(*inputs));
    for a random direction u_p per parameter, <dL/dp, u_p> must equal
    (L(p + eps u_p) - L(p - eps u_p)) / (2 eps).
    """
    rng = np.random.default_rng(seed)
    out = module(*inputs)
    v = tinygen.tensor(rng.standard_normal(out.shape))

    def loss():
        return float((module(*inputs) * v).sum().item())

    module.zero_grad()
    (module(*inputs) * v).sum().backward()
    for name, p in module.named_parameters():
        assert p.dtype == np.float64, name
        u = rng.standard_normal(p.shape)
        analytic = float((p.grad.numpy() * u).sum())
        saved = p.data.copy()
        p.data[...] = saved + eps * u
        up = loss()
        p.data[...] = saved - eps * u
        down = loss()
        p.data[...] = saved
        numerical = (up - down) / (2 * eps)
        assert np.isclose(analytic, numerical, rtol=rtol, atol=atol), (name, analytic, numerical)


@pytest.fixture
def param_check():
    return numerical_param_check
