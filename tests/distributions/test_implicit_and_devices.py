"""Implicit models (tinygen/distributions/implicit.py) and where every distribution's
samples live."""
import numpy as np
import pytest

import tinygen
from tinygen import backend
from tinygen.distributions import Bernoulli, Categorical, Implicit, Normal, NormalMixture, kl_divergence


# --- implicit models and the base class ----------------------------------

def test_implicit_samples_but_has_no_density():
    w = tinygen.tensor([2.0], requires_grad=True)
    model = Implicit(lambda n: w * tinygen.ones((n, 2)), name="Generator")
    assert model.sample((3, 4)).shape == (3, 4, 2) and model.event_shape == (2,)
    assert not model.sample(3).requires_grad
    model.rsample(3).sum().backward()
    np.testing.assert_allclose(w.grad.numpy(), [6.0])  # the sampler's graph is kept
    with pytest.raises(NotImplementedError, match="Generator.log_prob: an implicit model has no density"):
        model.log_prob(np.zeros(2))
    with pytest.raises(NotImplementedError, match="entropy"):
        model.entropy()
    with pytest.raises(NotImplementedError, match="no closed form"):
        NormalMixture.grid(2).entropy()
    with pytest.raises(ValueError, match=r"sampler\(5\) must return 5 draws"):
        Implicit(lambda n: np.zeros((3, 2))).sample(5)
    with pytest.raises(TypeError, match="callable"):
        Implicit(3)


def test_samples_live_on_the_parameters_device():
    for d in (Bernoulli(probs=[0.5]), Categorical(logits=[0.0, 1.0]), Normal(0.0, 1.0),
              NormalMixture.grid(2)):
        assert d.device == "cpu" and d.sample(2).device == "cpu"


@pytest.mark.gpu
@pytest.mark.skipif(not backend.cuda_available(), reason="needs CuPy and a CUDA GPU")
def test_samples_on_cuda():
    import cupy
    tinygen.manual_seed(0)
    loc = tinygen.tensor([0.0, 1.0], device="cuda")
    for d in (Normal(loc, 2.0), Bernoulli(logits=loc), Categorical(logits=loc),
              NormalMixture(loc[None], 1.0)):
        x = d.sample(1000)
        assert d.device == "cuda" and x.device == "cuda" and isinstance(x.data, cupy.ndarray)
    n = Normal(loc, 2.0)
    assert n.log_prob(n.sample(3)).device == "cuda"
    assert kl_divergence(n, Normal(0.0, 1.0)).device == "cuda"
