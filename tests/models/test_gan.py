"""GAN and DCGAN (section 7 of the notes): the training loop's contract, measured, not smoke.

- each phase touches only its own player: the D step leaves G's parameters and gradients
  bitwise unchanged, the G step leaves D's; n_critic D steps per G step, the G loss absent
  from the other steps' dicts
- a discriminator output computed before D's optimizer step cannot be backpropagated after
  it (the engine's version check), so the loop must recompute every loss
- DCGAN: batch norm couples G's outputs across the batch in training mode, not in
  evaluation mode; weights start at N(0, 0.02)
- evaluation is reproducible and leaves the training random stream where it was; the
  rates halve every lr_half_life D steps, and a resumed run (the command line's --resume)
  continues the n_critic beat and the schedule to the bit
- pictures: the toy scatter marks every mode centre
- measured improvement: a few hundred steps on the ring capture more modes than the initial
  generator; DCGAN's FD on digits falls well below its starting value
- bad input (points for an image model and the reverse, an unknown loss kind, a batch of
  one with batch norm) is one clear error, also on the command line
"""
import json

import numpy as np
import pytest

import tinygen
from tinygen import backend, data, models
from tinygen import functional as F
from tinygen.autograd.tensor import Tensor

from gan_checks import digits_batch, moved, snapshot, unchanged

SMALL_DC = dict(width=8, latent_dim=8)


def ring_batch(n=64, seed=0):
    return Tensor(data.toy("ring", n, seed=seed))


BUILDS = {"gan-toy": (lambda: models.build("gan", toy="ring", hidden_size=16), ring_batch),
          "gan-image": (lambda: models.build("gan", image_shape=(1, 8, 8), hidden_size=16), digits_batch),
          "dcgan": (lambda: models.build("dcgan", image_shape=(1, 8, 8), **SMALL_DC), digits_batch)}


@pytest.mark.parametrize("which", sorted(BUILDS))
def test_each_phase_touches_only_its_own_player(which):
    tinygen.manual_seed(0)
    build, batch = BUILDS[which]
    m = build()
    x = batch()
    m.train_step(x)                              # both players now hold gradients
    g, d = snapshot(m.generator), snapshot(m.discriminator)
    m.discriminator_step(m.to_model_range(x))
    assert unchanged(m.generator, g) and moved(m.discriminator, d)
    g, d = snapshot(m.generator), snapshot(m.discriminator)
    m.generator_step(x.shape[0])
    assert unchanged(m.discriminator, d) and moved(m.generator, g)
    assert all(p.requires_grad for p in m.discriminator.parameters())   # unfrozen after the G step


def test_n_critic_discriminator_steps_per_generator_step():
    tinygen.manual_seed(0)
    m = models.build("gan", toy="ring", hidden_size=16, n_critic=3, gp_weight=0.1)
    keys = [sorted(m.train_step(ring_batch())) for _ in range(6)]
    d_only, both = ["discriminator", "gradient_penalty"], ["discriminator", "generator", "gradient_penalty"]
    assert keys == [d_only, d_only, both, d_only, d_only, both]
    assert int(m.critic_steps.data) == 6 and "critic_steps" in m.state_dict()   # resumes on the beat


def test_learning_rates_halve_every_half_life_from_the_step_count():
    tinygen.manual_seed(0)
    m = models.build("gan", toy="ring", hidden_size=16, lr=1e-3, d_lr=4e-3, lr_half_life=10)
    for _ in range(20):
        m.train_step(ring_batch())
    factor = 0.5 ** (19 / 10)                    # the rates of the 20th step, set after 19 D steps
    assert m.optimizers["generator"].param_groups[0]["lr"] == pytest.approx(1e-3 * factor, rel=1e-12)
    assert m.optimizers["discriminator"].param_groups[0]["lr"] == pytest.approx(4e-3 * factor, rel=1e-12)
    fresh = models.build("gan", toy="ring", hidden_size=16, lr=1e-3, d_lr=4e-3, lr_half_life=10)
    fresh.load_training_state(m.training_state())    # a resumed model continues the same schedule
    fresh.set_learning_rates(int(fresh.critic_steps.data))
    assert fresh.optimizers["generator"].param_groups[0]["lr"] == pytest.approx(1e-3 * 0.5 ** 2, rel=1e-12)


def test_a_discriminator_output_from_before_the_step_cannot_be_reused():
    tinygen.manual_seed(0)
    m = models.build("dcgan", image_shape=(1, 8, 8), **SMALL_DC)
    real = m.to_model_range(digits_batch())
    stale = F.generator_loss(m.discriminate(real))
    m.discriminator_step(real)                   # D's weights change in place
    with pytest.raises(RuntimeError, match="changed in place"):
        stale.backward()


def test_dcgan_batch_norm_couples_the_batch_in_training_only():
    tinygen.manual_seed(0)
    m = models.build("dcgan", image_shape=(1, 8, 12), **SMALL_DC)    # rectangular: H != W
    z = m.latent(8)
    other = F.concat([z[:4], m.latent(4)], axis=0)          # the same first 4, new companions
    a, b = m.generate(z).numpy()[:4], m.generate(other).numpy()[:4]
    assert a.shape == (4, 1, 8, 12) and np.abs(a - b).max() > 1e-3
    m.eval()
    a, b = m.generate(z).numpy()[:4], m.generate(other).numpy()[:4]
    np.testing.assert_allclose(a, b, rtol=0, atol=1e-6)
    single = m.generate(z[:1]).numpy()
    np.testing.assert_allclose(single, a[:1], rtol=0, atol=1e-6)


def test_dcgan_initial_weights_are_normal_with_std_0_02():
    tinygen.manual_seed(0)
    m = models.build("dcgan", image_shape=(1, 28, 28), width=32)
    fake = m.generate(m.latent(3))                 # 7 -> 14 -> 28
    assert fake.shape == (3, 1, 28, 28) and m.discriminate(fake).shape == (3,)
    for name, p in m.named_parameters():
        w = p.data.ravel().astype(np.float64)
        if name.endswith("bias"):
            assert not w.any(), name
        elif p.ndim == 1:                        # batch norm's gamma ~ N(1, 0.02)
            assert abs(w.mean() - 1) < 4 * 0.02 / np.sqrt(len(w)), name
        else:                                    # conv, transposed conv and linear weights
            n = len(w)
            assert abs(w.mean()) < 4 * 0.02 / np.sqrt(n), name
            assert abs(w.std() - 0.02) < 4 * 0.02 / np.sqrt(2 * n), (name, w.std())


def test_sample_is_in_the_data_range_and_evaluate_is_reproducible_and_aside():
    tinygen.manual_seed(0)
    m = models.build("dcgan", image_shape=(1, 8, 8), **SMALL_DC)
    s = m.sample(5).numpy()
    assert s.shape == (5, 1, 8, 8) and s.min() >= 0 and s.max() <= 1
    test = Tensor(data.digits().test_images[:200])
    state = backend.get_rng_state()
    first, second = m.evaluate(test), m.evaluate(test)
    assert backend.get_rng_state() == state and first == second and m.training
    assert set(first) == {"frechet_distance", "frechet_floor", "class_kl", "confident"}
    assert 0 <= first["confident"] <= 1
    assert first["frechet_floor"] > 0 and 0 <= first["class_kl"] <= np.log(10) + 1e-9


def test_pictures_mark_the_toy_modes():
    from tinygen.imaging import scatter_array
    tinygen.manual_seed(0)
    m = models.build("gan", toy="grid", hidden_size=16)
    test = Tensor(data.toy("grid", 500, seed=1))
    img = m.pictures(test)["scatter"]
    assert img.dtype == np.uint8 and img.ndim == 3 and img.shape[2] == 3
    title = "gan: samples over the data (grey), centres +"
    unmarked = scatter_array(m.eval_sample(m.toy_eval_samples), reference=test, title=title)
    differ = (img != unmarked).any(axis=2)
    assert differ.sum() >= 25 * 30 and (img[differ] == 0).all()    # 25 black crosses, nothing else
    assert models.build("gan", image_shape=(1, 8, 8), hidden_size=16).pictures(digits_batch()) == {}


def train(m, batches, steps):
    for i in range(steps):
        m.train_step(batches[i % len(batches)])


def test_training_on_the_ring_captures_more_modes_than_the_initial_generator():
    tinygen.manual_seed(0)
    m = models.build("gan", toy="ring")
    test = Tensor(data.toy("ring", 1000, seed=1))
    before = m.evaluate(test)
    points = data.toy("ring", 256 * 20, seed=0)
    train(m, [Tensor(points[i:i + 256]) for i in range(0, len(points), 256)], 400)
    after = m.evaluate(test)
    assert after["modes"] >= before["modes"] + 4 and after["modes"] >= 6, (before, after)
    assert after["high_quality"] > before["high_quality"] + 0.02, (before, after)
    assert after["frechet_distance"] < 0.2 * before["frechet_distance"], (before, after)


def test_dcgan_frechet_distance_falls_during_training():
    tinygen.manual_seed(0)
    m = models.build("dcgan", image_shape=(1, 8, 8), width=16, latent_dim=16)
    images = data.digits().train_images
    test = Tensor(data.digits().test_images[:300])
    before = m.evaluate(test)["frechet_distance"]
    order = np.random.default_rng(0).permutation(len(images))
    train(m, [Tensor(images[order[i:i + 32]]) for i in range(0, 32 * 40, 32)], 200)
    after = m.evaluate(test)["frechet_distance"]
    assert after < 0.5 * before, (before, after)


# --- bad input ------------------------------------------------------------------------------

def test_points_for_an_image_model_and_images_for_a_points_model_are_refused():
    tinygen.manual_seed(0)
    for m in (models.build("gan", hidden_size=16), models.build("dcgan", **SMALL_DC)):
        with pytest.raises(ValueError, match=r"2-D points of shape \(64, 2\)"):
            m.train_step(ring_batch())
    with pytest.raises(ValueError, match=r"2-D points.*\(N, 2\), got \(32, 1, 8, 8\)"):
        models.build("gan", toy="ring", hidden_size=16).train_step(digits_batch())
    with pytest.raises(ValueError, match="not both"):
        models.build("gan", toy="ring", image_shape=(1, 8, 8))
    with pytest.raises(ValueError, match="unknown toy set 'moon'.*grid, ring, swiss_roll"):
        models.build("gan", toy="moon")


def test_unknown_loss_kind_lists_the_kinds():
    for name in ("gan", "dcgan"):
        with pytest.raises(ValueError, match="unknown loss kind 'hinge'.*'minimax', 'nonsaturating', 'lsgan', 'wgan'"):
            models.build(name, loss="hinge")


def test_batch_norm_needs_a_batch_of_two():
    tinygen.manual_seed(0)
    m = models.build("dcgan", **SMALL_DC)
    with pytest.raises(ValueError, match="batch norm needs a batch of at least 2.*got a batch of 1"):
        m.train_step(digits_batch(1))
    models.build("gan", hidden_size=16).train_step(digits_batch(1))     # no batch norm: fine


def test_the_command_line_trains_gan_on_points_and_refuses_misfits(tmp_path, monkeypatch, capsys):
    from tinygen.__main__ import main
    monkeypatch.chdir(tmp_path)
    assert main(["train", "gan", "--data", "toy:ring", "--steps", "30", "--out", "ring", "-q"]) == 0
    metrics = json.loads((tmp_path / "ring" / "metrics.json").read_text())
    assert metrics["options"]["toy"] == "ring" and {"modes", "high_quality", "frechet_distance"} <= set(metrics)
    assert (tmp_path / "ring" / "scatter.png").is_file() and (tmp_path / "ring" / "samples.png").is_file()
    capsys.readouterr()
    for args, words in [(("dcgan", "--data", "toy:ring"), "2-D points"),
                        (("dcgan", "--batch-size", "1"), "batch norm"),
                        (("gan", "--set", "loss=hinge"), "unknown loss kind"),
                        (("gan", "--data", "toy:ring", "--set", "toy=grid"), "disagrees")]:
        assert main(["train", *args, "--steps", "2", "--out", "bad", "-q"]) == 2
        err = capsys.readouterr().err
        assert len(err.strip().splitlines()) == 1 and words in err, err


def test_a_resumed_run_keeps_the_critic_beat_and_the_learning_rate_schedule(tmp_path, monkeypatch):
    """40 steps in one go == 25 steps, then --resume to 40, with a G step every 3rd D step."""
    from tinygen.__main__ import main
    monkeypatch.chdir(tmp_path)
    common = ["--data", "toy:ring", "--log-every", "10", "-q"]
    options = ["--set", "n_critic=3", "--set", "lr_half_life=10", "--set", "hidden_size=16"]
    assert main(["train", "gan", "--steps", "40", "--out", "whole", *common, *options]) == 0
    assert main(["train", "gan", "--steps", "25", "--out", "split", *common, *options]) == 0
    assert main(["train", "gan", "--steps", "40", "--out", "split", "--resume", *common]) == 0
    whole, split = np.load(tmp_path / "whole" / "checkpoint.npz"), np.load(tmp_path / "split" / "checkpoint.npz")
    arrays = [k for k in whole.files if k.startswith("state/")]
    assert "state/model/critic_steps" in arrays and int(whole["state/model/critic_steps"]) == 40
    assert all(np.array_equal(whole[k], split[k]) for k in arrays)
