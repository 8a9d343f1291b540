"""The model registry and the common model surface, on the independent-Bernoulli baseline."""
import itertools

import numpy as np
import pytest

import tinygen
from tinygen import models
from tinygen.models import GenerativeModel, register


def all_binary_images(shape):
    d = int(np.prod(shape))
    bits = np.array(list(itertools.product([0, 1], repeat=d)), dtype=np.float32)
    return bits.reshape((-1,) + tuple(shape))


def test_available_and_build():
    assert "bernoulli" in models.available()
    m = models.build("bernoulli", image_shape=(1, 2, 2))
    assert isinstance(m, GenerativeModel) and m.kind == "explicit" and m.name == "bernoulli"
    assert models.info("bernoulli").section.startswith("1.")


def test_unknown_model_lists_known_ones():
    with pytest.raises(KeyError, match="bernoulli") as e:
        models.build("bernouli")
    assert "did you mean 'bernoulli'" in str(e.value)


def test_register_rejects_bad_kind_and_duplicates():
    with pytest.raises(ValueError, match="explicit"):
        register("x", kind="fuzzy", section="", summary="")
    with pytest.raises(ValueError, match="already registered"):
        @register("bernoulli", kind="explicit", section="", summary="")
        class Other(GenerativeModel):
            pass


@pytest.mark.parametrize("shape", [(1, 2, 2), (1, 3, 3), (1, 2, 4)])
def test_bernoulli_normalises_exactly(shape):
    tinygen.manual_seed(0)
    m = models.build("bernoulli", image_shape=shape)
    m.logits.data[...] = np.random.default_rng(1).standard_normal(shape).astype(np.float32)
    total = np.exp(m.log_prob(all_binary_images(shape)).numpy().astype(np.float64)).sum()
    assert abs(total - 1) < 1e-5


def test_bernoulli_training_reaches_the_pixel_means():
    """The MLE of independent pixels is the mean of each pixel over the data."""
    tinygen.manual_seed(0)
    rng = np.random.default_rng(0)
    p = rng.uniform(0.1, 0.9, (1, 2, 2))
    x = (rng.random((512, 1, 2, 2)) < p).astype(np.float32)
    m = models.build("bernoulli", image_shape=(1, 2, 2), lr=0.1)
    before = m.evaluate(x)["nll_nats"]
    for _ in range(400):
        m.train_step(x)
    after = m.evaluate(x)["nll_nats"]
    assert after < before - 0.1
    fitted = 1 / (1 + np.exp(-m.logits.numpy()))
    np.testing.assert_allclose(fitted, x.mean(axis=0), atol=0.02)


def test_bernoulli_sample_frequencies_match_the_model():
    tinygen.manual_seed(3)
    m = models.build("bernoulli", image_shape=(1, 2, 2))
    m.logits.data[...] = np.array([[[-1.0, 0.0], [1.0, 2.0]]], np.float32)
    s = m.sample(20000).numpy()
    assert set(np.unique(s)) <= {0.0, 1.0} and s.shape == (20000, 1, 2, 2)
    p = 1 / (1 + np.exp(-m.logits.numpy()))
    se = np.sqrt(p * (1 - p) / 20000)
    assert np.all(np.abs(s.mean(axis=0) - p) < 5 * se)


def test_bad_images_are_refused_with_clear_messages():
    m = models.build("bernoulli", image_shape=(1, 2, 2))
    with pytest.raises(ValueError, match=r"\(N, 1, 2, 2\).*\(3, 1, 3, 3\)"):
        m.log_prob(np.zeros((3, 1, 3, 3), np.float32))
    with pytest.raises(ValueError, match="binarize"):
        m.log_prob(np.full((3, 1, 2, 2), 0.5, np.float32))
    with pytest.raises(ValueError, match="image_shape"):
        models.build("bernoulli", image_shape=(8, 8))


def test_training_state_round_trips_through_a_checkpoint(tmp_path):
    tinygen.manual_seed(0)
    x = (np.random.default_rng(0).random((64, 1, 2, 2)) < 0.3).astype(np.float32)
    a = models.build("bernoulli", image_shape=(1, 2, 2))
    for _ in range(5):
        a.train_step(x)
    tinygen.save(a.training_state(), tmp_path / "ckpt.npz")
    b = models.build("bernoulli", image_shape=(1, 2, 2))
    b.load_training_state(tinygen.load(tmp_path / "ckpt.npz"))
    for _ in range(5):
        a.train_step(x)
        b.train_step(x)
    np.testing.assert_array_equal(a.logits.numpy(), b.logits.numpy())
