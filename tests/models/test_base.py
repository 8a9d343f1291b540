"""``GenerativeModel.evaluate`` leaves the training mode as it found it, also when log_prob raises."""
import numpy as np
import pytest

from tinygen import models, nn


class Failing(models.GenerativeModel):
    kind = "explicit"

    def __init__(self):
        super().__init__(image_shape=(1, 2, 3))
        self.body = nn.Linear(6, 6)
        self.modes = []

    def log_prob(self, x):
        self.modes.append((self.training, self.body.training))
        raise RuntimeError("log_prob failed")


class Working(Failing):
    def log_prob(self, x):
        self.modes.append((self.training, self.body.training))
        x = self.check_images(x)
        return self.body(x.reshape(x.shape[0], 6)).sum(axis=1) * 0 - 1.0   # log p = -1 nat per image


@pytest.mark.parametrize("training", [True, False])
def test_evaluate_restores_the_mode_when_log_prob_raises(training):
    model = Failing().train(training)
    with pytest.raises(RuntimeError, match="log_prob failed"):
        model.evaluate(np.zeros((2, 1, 2, 3), np.float32))
    assert model.modes == [(False, False)]             # it did evaluate in eval mode
    assert model.training is training and model.body.training is training


@pytest.mark.parametrize("training", [True, False])
def test_evaluate_restores_the_mode_after_it_succeeds(training):
    model = Working().train(training)
    metrics = model.evaluate(np.zeros((2, 1, 2, 3), np.float32))
    assert metrics["nll_nats"] == pytest.approx(1.0)
    assert metrics["bits_per_dim"] == pytest.approx(1.0 / (6 * np.log(2)))
    assert model.modes == [(False, False)]
    assert model.training is training and model.body.training is training


def test_frozen_holds_a_player_fixed_and_puts_each_flag_back():
    import pytest
    from tinygen import nn
    from tinygen.models.base import frozen
    net = nn.Sequential(nn.Linear(2, 3), nn.Linear(3, 1))
    net[0].bias.requires_grad_(False)                  # a user's own choice, kept
    with pytest.raises(RuntimeError):
        with frozen(net):
            assert not any(p.requires_grad for p in net.parameters())
            raise RuntimeError("a step that fails")
    assert [p.requires_grad for p in net.parameters()] == [True, False, True, True]
