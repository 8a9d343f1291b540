"""Progressive GAN: the schedule, the fade-in of both players and of the reals, growth that keeps
the old layers and their Adam moments, the EMA generator, resume to the bit mid-fade, the
MNIST-format path (28x28 padded to 32, grown 4 -> 32) and the bad inputs."""
import json

import numpy as np
import pytest

import tinygen
from tinygen import backend, models
from tinygen import functional as F
from tinygen.autograd import Tensor
from tinygen.models.progan import schedule

from gan_checks import digits_batch


def tiny(image_shape=(1, 8, 8), **options):
    settings = dict(latent_dim=8, width=8, fade_images=16, stable_images=16)
    settings.update(options)
    tinygen.manual_seed(0)
    return models.build("progan", image_shape=image_shape, **settings)


def batches(count, n=8, seed=0):
    return [digits_batch(n, seed=seed + k) for k in range(count)]


def at_images(model, images):
    """Put the model's schedule at ``images`` seen, and its stage with it."""
    model.images_seen.data[...] = images
    model.follow_schedule()
    return model


# --- the schedule -----------------------------------------------------------------------

def test_the_schedule_is_stable_at_4x4_then_fades_each_stage_in_linearly():
    f, t = 100, 60
    assert [schedule(n, 3, f, t) for n in (0, 59)] == [(0, 1.0), (0, 1.0)]
    assert [schedule(n, 3, f, t) for n in (60, 85, 110, 159)] == [(1, 0.0), (1, 0.25), (1, 0.5), (1, 0.99)]
    assert [schedule(n, 3, f, t) for n in (160, 219)] == [(1, 1.0), (1, 1.0)]
    assert [schedule(n, 3, f, t) for n in (220, 270, 380, 10 ** 9)] == [(2, 0.0), (2, 0.5), (2, 1.0), (2, 1.0)]
    assert schedule(10 ** 9, 1, f, t) == (0, 1.0)      # one stage: never grows


def test_the_model_follows_the_schedule_of_the_images_it_has_seen():
    m = tiny(fade_images=16, stable_images=8)
    seen = []
    for b in batches(6, n=4):
        m.train_step(b)
        seen.append((int(m.images_seen.data), m.resolution, m.alpha))
    assert seen == [(4, 4, 1.0), (8, 8, 0.0), (12, 8, 0.25), (16, 8, 0.5), (20, 8, 0.75), (24, 8, 1.0)]


# --- fade-in: at alpha = 0 the players are the old ones -------------------------------------

def _grads_of(modules):
    return [p.grad for m in modules for p in m.parameters()]


def test_at_alpha_0_the_generator_is_exactly_the_upsampled_old_output_and_its_new_block_gets_no_gradient():
    g = tiny().generator
    z = Tensor(np.random.default_rng(0).standard_normal((5, 8)).astype(np.float32))
    y = g(z, 1, 0.0)
    old = F.upsample_nearest(g.to_rgb[0](g.features(z, 0)), 2)
    np.testing.assert_array_equal(y.numpy(), old.numpy())
    (y * Tensor(np.random.default_rng(1).standard_normal(y.shape).astype(np.float32))).sum().backward()
    new = _grads_of(g.stage_modules(1))
    assert all(grad is not None and (grad.numpy() == 0).all() for grad in new)
    assert all(grad is not None and np.abs(grad.numpy()).max() > 0 for grad in _grads_of(g.stage_modules(0)))
    # halfway, the blend of the two
    mid = g(z, 1, 0.5).numpy()
    new_out = g.to_rgb[1](g.blocks[0](g.features(z, 0))).numpy()
    np.testing.assert_allclose(mid, 0.5 * new_out + 0.5 * old.numpy(), rtol=1e-6, atol=1e-6)


def test_at_alpha_0_the_discriminator_is_the_old_one_on_the_avgpooled_image():
    d = tiny().discriminator
    x = Tensor(digits_batch(8).numpy() * 2 - 1, requires_grad=True)
    score = d(x, 1, 0.0)     # the same numbers, up to the BLAS's rounding on a fresh array's layout
    np.testing.assert_allclose(score.numpy(), d.last(d.from_rgb[0](F.avg_pool2d(x, 2))).numpy(), rtol=1e-6)
    score.sum().backward()
    assert all((grad.numpy() == 0).all() for grad in _grads_of(d.stage_modules(1)))


def test_the_reals_are_faded_like_the_fakes():
    m = at_images(tiny(fade_images=16, stable_images=8), 8)         # stage 1 begins: alpha = 0
    assert (m.resolution, m.alpha) == (8, 0.0)
    x = digits_batch(4).numpy() * 2 - 1
    blurred = x.reshape(4, 1, 4, 2, 4, 2).mean(axis=(3, 5)).repeat(2, axis=2).repeat(2, axis=3)
    np.testing.assert_allclose(m.reals(Tensor(x)).numpy(), blurred, rtol=1e-6, atol=1e-7)
    at_images(m, 12)                                                  # alpha = 0.25
    np.testing.assert_allclose(m.reals(Tensor(x)).numpy(), 0.25 * x + 0.75 * blurred, rtol=1e-6, atol=1e-6)
    at_images(m, 24)                                                  # stable: the images as they are
    np.testing.assert_array_equal(m.reals(Tensor(x)).numpy(), x)


def test_28x28_images_are_padded_black_to_32_and_pooled_to_the_stage():
    m = tiny(image_shape=(1, 28, 28))
    assert (m.padded_size, m.stages, m.resolution) == (32, 4, 4)
    x = np.random.default_rng(0).random((4, 1, 28, 28)).astype(np.float32) * 2 - 1
    padded = np.pad(x, ((0, 0), (0, 0), (2, 2), (2, 2)), constant_values=-1.0)
    expected = padded.reshape(4, 1, 4, 8, 4, 8).mean(axis=(3, 5))
    np.testing.assert_allclose(m.reals(Tensor(x)).numpy(), expected, rtol=1e-5, atol=1e-6)
    s = m.sample(3)
    assert s.shape == (3, 1, 28, 28) and 0 <= s.numpy().min() and s.numpy().max() <= 1


# --- growing keeps the old layers and their moments -----------------------------------------

def test_growing_keeps_every_old_parameter_and_its_adam_moments():
    m = tiny(fade_images=16, stable_images=8)
    b = batches(3, n=4)
    m.train_step(b[0])                                 # 4 images: still 4x4
    old = {name: [p for mod in getattr(m, name).stage_modules(0) for p in mod.parameters()]
           for name in ("generator", "discriminator")}
    values = {name: [p.data.copy() for p in ps] for name, ps in old.items()}
    moments = {name: [(s["step"], s["exp_avg"].copy(), s["exp_avg_sq"].copy())
                      for s in m.optimizers[name].state[:len(old[name])]] for name in old}
    m.train_step(b[1])                                 # 8 images: grows to 8x8 at the end of this step
    assert m.resolution == 8
    for name, opt in m.optimizers.items():
        held = opt.param_groups[0]["params"]
        assert len(held) == len(old[name]) and all(p is q for p, q in zip(held, old[name]))
        assert len(opt.param_groups) == m.stages
        new = opt.param_groups[1]["params"]
        assert all(not s for s in opt.state[len(held):len(held) + len(new)])    # not yet used
        for p, v, (step, m1, m2), s in zip(held, values[name], moments[name], opt.state):
            assert s["step"] == step + 1                       # one more step, not reset
            assert not np.array_equal(s["exp_avg_sq"], m2) or not np.array_equal(p.data, v)
    m.train_step(b[2])                                 # the first step at 8x8 (alpha 0)
    for name, opt in m.optimizers.items():
        n_old = len(old[name])
        assert all(s["step"] == 3 for s in opt.state[:n_old])
        assert all(s["step"] == 1 for s in opt.state[n_old:n_old + len(opt.param_groups[1]["params"])])


# --- the loss and the EMA generator ---------------------------------------------------------

def test_the_critic_loss_is_wgan_gp_with_the_drift_term():
    m = tiny()
    real, fake = m.reals(digits_batch(8) * 2 - 1), m.generate(m.latent(8))
    terms = m.discriminator_terms(real, fake, None)
    a_r, a_f = m.discriminate(real).numpy(), m.discriminate(fake).numpy()
    assert set(terms) == {"discriminator", "gradient_penalty", "drift"}
    assert terms["discriminator"].item() == pytest.approx(a_f.mean() - a_r.mean(), rel=1e-5)
    assert terms["drift"].item() == pytest.approx(0.001 * (a_r ** 2).mean(), rel=1e-5)
    assert terms["gradient_penalty"].item() > 0
    opt = m.optimizers["generator"]
    assert opt.param_groups[0]["betas"] == (0.0, 0.99) and opt.param_groups[0]["lr"] == 6e-3


def test_samples_come_from_the_moving_average_of_the_generator():
    m = tiny()
    first = {k: v.copy() for k, v in m.generator.state_dict().items()}
    m.train_step(digits_batch(8))
    name = "first.1.weight"
    theta = m.generator.state_dict()[name]
    decay = min(0.999, 1 / 10)                          # the warm-up's first decay
    np.testing.assert_allclose(m.generator_ema.state_dict()[name], decay * first[name] + (1 - decay) * theta,
                               rtol=1e-6)
    z = m.latent(6, rng=np.random.default_rng(1))
    expected = np.clip((m.generator_ema(z, 0).numpy() + 1) / 2, 0, 1).repeat(2, axis=2).repeat(2, axis=3)
    np.testing.assert_array_equal(m._sample(z).numpy(), expected)
    assert not np.allclose(m.generator_ema(z, 0).numpy(), m.generator(z, 0).numpy())
    assert all(not p.requires_grad for p in m.generator_ema.parameters())


# --- resume: to the bit, mid-fade --------------------------------------------------------------

def _train(model, batches_):
    return [model.train_step(b) for b in batches_]


def test_resume_mid_fade_continues_to_the_bit(tmp_path):
    b = batches(9, n=4)
    whole = tiny(fade_images=16, stable_images=8)
    whole_losses = _train(whole, b)
    first = tiny(fade_images=16, stable_images=8)
    _train(first, b[:4])                                     # 16 images: stage 1, alpha 0.5
    assert (first.resolution, first.alpha) == (8, 0.5)
    tinygen.save({"state": first.training_state(), "rng": backend.get_rng_state()}, tmp_path / "ckpt.npz")
    saved = tinygen.load(tmp_path / "ckpt.npz")
    resumed = tiny(fade_images=16, stable_images=8)
    resumed.load_training_state(saved["state"])
    backend.set_rng_state(saved["rng"])
    assert (resumed.resolution, resumed.alpha) == (8, 0.5)
    assert _train(resumed, b[4:]) == whole_losses[4:]
    for (name, p), q in zip(whole.state_dict().items(), resumed.state_dict().values()):
        assert np.array_equal(p, q), name
    a, r = whole.training_state(), resumed.training_state()
    assert all(np.array_equal(a["ema"]["params"][k], r["ema"]["params"][k]) for k in a["ema"]["params"])
    for key in a["optimizers"]:
        for sa, sr in zip(a["optimizers"][key]["state"], r["optimizers"][key]["state"]):
            assert sa.keys() == sr.keys() and all(np.array_equal(sa[k], sr[k]) for k in sa)


def test_a_resumed_command_line_run_mid_fade_ends_with_the_same_checkpoint(tmp_path, monkeypatch):
    from tinygen.__main__ import main
    monkeypatch.chdir(tmp_path)
    common = ["--batch-size", "8", "--log-every", "4", "-q", "--set", "width=8", "--set", "latent_dim=8",
              "--set", "fade_images=48", "--set", "stable_images=24"]
    assert main(["train", "progan", "--steps", "9", "--out", "whole", *common]) == 0
    assert main(["train", "progan", "--steps", "5", "--out", "split", *common]) == 0     # 40 images: mid-fade
    assert main(["train", "progan", "--steps", "9", "--out", "split", "--resume", "-q"]) == 0
    whole, split = (np.load(tmp_path / d / "checkpoint.npz") for d in ("whole", "split"))
    arrays = [k for k in whole.files if k.startswith("state/")]
    assert int(whole["state/model/stage"]) == 1 and int(whole["state/model/images_seen"]) == 72
    assert all(np.array_equal(whole[k], split[k]) for k in arrays)
    assert (tmp_path / "whole" / "growth.png").read_bytes() == (tmp_path / "split" / "growth.png").read_bytes()
    assert (tmp_path / "whole" / "samples.png").read_bytes() == (tmp_path / "split" / "samples.png").read_bytes()


# --- pictures and the MNIST-format path -------------------------------------------------------

def _tiny_mnist(folder, side=28, n_train=48, n_test=12):
    from tinygen.data import write_idx
    folder.mkdir()
    rng = np.random.default_rng(0)
    for prefix, n in (("train", n_train), ("t10k", n_test)):
        images = np.zeros((n, side, side), np.uint8)
        images[:, 6:22, 10:18] = rng.integers(128, 256, (n, 16, 8))       # a bright bar: a crude "1"
        write_idx(folder / f"{prefix}-images-idx3-ubyte", images)
        write_idx(folder / f"{prefix}-labels-idx1-ubyte", rng.integers(0, 10, n).astype(np.uint8))


def test_mnist_format_data_grows_from_4_to_32_and_samples_at_28(tmp_path, monkeypatch):
    from tinygen.__main__ import main
    from PIL import Image
    _tiny_mnist(tmp_path / "mnist")
    monkeypatch.chdir(tmp_path)
    assert main(["train", "progan", "--data", "mnist:mnist", "--steps", "12", "--batch-size", "8", "--out", "run",
                 "--log-every", "12", "-q", "--set", "width=8", "--set", "latent_dim=8",
                 "--set", "fade_images=8", "--set", "stable_images=8"]) == 0
    ckpt = tinygen.load(tmp_path / "run" / "checkpoint.npz")
    assert int(ckpt["state"]["model"]["stage"]) == 3                  # 4 -> 8 -> 16 -> 32
    columns = ckpt["state"]["model"]["growth_samples"]
    assert columns.shape == (4, 8, 1, 28, 28) and np.abs(columns[:3]).sum(axis=(1, 2, 3, 4)).min() > 0
    growth = np.asarray(Image.open(tmp_path / "run" / "growth.png"))
    assert growth.shape[1] == 4 * (28 + 1) + 1                        # one column per resolution
    assert json.loads((tmp_path / "run" / "metrics.json").read_text())["pictures"] == ["growth.png"]


def test_a_growth_column_is_the_stage_at_its_end_not_blended_with_the_next():
    m = tiny(image_shape=(1, 28, 28), fade_images=8, stable_images=8)
    at_images(m, 20)                                  # stage 1, stable: alpha 1
    assert (m.resolution, m.alpha) == (8, 1.0)
    end_of_stage_1 = m.eval_sample(8).numpy()
    m.images_seen.data[...] = 25                      # stage 2 by the schedule (alpha 1/8), not yet grown
    assert m.alpha == 1.0
    m.follow_schedule()
    assert (m.resolution, m.alpha) == (16, 0.125)
    np.testing.assert_array_equal(m.growth_samples.numpy()[1], end_of_stage_1)


def test_growth_picture_has_a_column_per_resolution_reached():
    m = tiny(fade_images=8, stable_images=8)
    x = digits_batch(8)
    assert m.pictures(x)["growth"].shape == (8 * 33 + 1, 33 + 1)      # 4x4 only: one column (x4 scale)
    _train(m, batches(3))
    assert m.resolution == 8 and m.pictures(x)["growth"].shape == (8 * 33 + 1, 2 * 33 + 1)


# --- bad input -----------------------------------------------------------------------------------

@pytest.mark.parametrize("options, words", [
    (dict(max_resolution=16), "past the data's resolution"),
    (dict(max_resolution=6), "power of two"),
    (dict(fade_images=0), "fade_images must be a positive whole number"),
    (dict(stable_images=0), "stable_images must be a positive whole number"),
    (dict(group_size=1), "group_size must be a whole number >= 2"),
])
def test_bad_options_are_refused_by_name(options, words):
    with pytest.raises(ValueError, match=words):
        tiny(**options)


def test_a_batch_that_does_not_split_into_groups_is_refused_before_any_step():
    m = tiny()
    before = m.state_dict()
    with pytest.raises(ValueError, match="groups of 4, got a batch of 6"):
        m.train_step(digits_batch(6))
    with pytest.raises(ValueError, match="batch of 2 is smaller than the group size 4"):
        m.train_step(digits_batch(2))
    assert all(np.array_equal(v, m.state_dict()[k]) for k, v in before.items())


def test_bad_input_on_the_command_line_is_one_line_and_exit_status_2(tmp_path, monkeypatch, capsys):
    from tinygen.__main__ import main
    monkeypatch.chdir(tmp_path)
    capsys.readouterr()
    for args, words in [(("--set", "max_resolution=16"), "past the data's resolution"),
                        (("--set", "fade_images=0"), "fade_images"),
                        (("--batch-size", "2"), "smaller than the group size 4"),
                        (("--batch-size", "6"), "groups of 4")]:
        assert main(["train", "progan", *args, "--steps", "1", "--out", "bad", "-q"]) == 2
        err = capsys.readouterr().err
        assert len(err.strip().splitlines()) == 1 and words in err, err
    assert not (tmp_path / "bad" / "checkpoint.npz").exists()
