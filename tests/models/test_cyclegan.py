"""CycleGAN (section 7 of the notes): the losses, the buffer and the schedule, measured.

- the cycle loss is 0 for identity generators and for an invertible pair (a quarter turn
  and its inverse, on rectangular images), and not for a pair that is not inverse; the
  identity loss is 0 for identity maps, and each equals its L1 by hand otherwise
- the fake buffer: its first 50 images pass through, then each image comes back itself
  or (with probability 1/2) as a stored one that it replaces; never more than 50;
  stored copies, no graph
- the learning rate is constant for the first half and then falls linearly to 0, and a
  run resumed from a checkpoint continues it (and the whole run) bit for bit
- the G step touches only G and F, the D step only D_A and D_B
- after short training on digits the translation error is below the identity map's
- bad input (image shape, direction, domain name) is one clear line, also on the command line
"""
import numpy as np
import pytest

import tinygen
from tinygen import backend, data, models, nn
from tinygen import functional as F
from tinygen.autograd.tensor import Tensor
from tinygen.models.cyclegan import ImagePool

from gan_checks import moved, snapshot, unchanged

TINY = dict(width=4, blocks=1, d_width=4)


def tiny(**options):
    tinygen.manual_seed(0)
    return models.build("cyclegan", **{**TINY, **options})


def images(n, shape=(1, 8, 8), seed=0):
    return Tensor(np.random.default_rng(seed).random((n,) + shape, dtype=np.float32))


def pair_batch(n, rng, split):
    """n images of A and n of B, drawn apart."""
    a, b = split.images_a, split.images_b
    return Tensor(a[rng.choice(len(a), n, replace=False)]), Tensor(b[rng.choice(len(b), n, replace=False)])


class QuarterTurn(nn.Module):
    """rot90 over (H, W), counter-clockwise k times (k = 1 or 3), written with tinygen's ops."""

    def __init__(self, k):
        super().__init__()
        self.k = k

    def forward(self, x):
        t = F.transpose(x, (0, 1, 3, 2))
        return t[:, :, ::-1, :] if self.k == 1 else t[:, :, :, ::-1]


class Shift(nn.Module):
    def __init__(self, by):
        super().__init__()
        self.by = by

    def forward(self, x):
        return x + self.by


# --- the losses --------------------------------------------------------------------

def test_the_cycle_loss_is_zero_for_identities_and_for_an_invertible_pair():
    m = tiny()
    a, b = images(4, (1, 6, 9), seed=1), images(4, (1, 9, 6), seed=2)     # rectangular: axes are caught
    turn = QuarterTurn(1)
    assert np.array_equal(turn(a).numpy(), np.rot90(a.numpy(), 1, axes=(2, 3)))
    m.g_ab, m.g_ba = nn.Identity(), nn.Identity()
    assert m.cycle_loss(a, a).item() == 0.0
    m.g_ab, m.g_ba = QuarterTurn(1), QuarterTurn(3)                        # G: A -> B and G^-1
    assert m.cycle_loss(a, b).item() == 0.0
    m.g_ab, m.g_ba = QuarterTurn(1), QuarterTurn(1)                        # not inverse: two turns are a half turn
    half = np.rot90(a.numpy(), 2, axes=(2, 3))
    expected = np.abs(half - a.numpy()).mean() + np.abs(np.rot90(b.numpy(), 2, axes=(2, 3)) - b.numpy()).mean()
    assert np.isclose(m.cycle_loss(a, b).item(), expected) and expected > 0.1


def test_the_identity_loss_is_zero_for_identity_maps_and_their_l1_otherwise():
    m = tiny()
    a, b = images(4, seed=1), images(4, seed=2)
    m.g_ab, m.g_ba = nn.Identity(), nn.Identity()
    assert m.identity_loss(a, b).item() == 0.0
    m.g_ab, m.g_ba = Shift(0.25), nn.Identity()       # G(b) - b = 0.25 everywhere, F(a) = a
    assert np.isclose(m.identity_loss(a, b).item(), 0.25)
    assert np.isclose(m.cycle_loss(a, b).item(), 0.5)    # F(G(a)) - a = G(F(b)) - b = 0.25


# --- the fake buffer -----------------------------------------------------------------

def test_the_buffer_passes_its_first_50_through_and_then_swaps_with_probability_one_half():
    tinygen.manual_seed(0)
    pool = ImagePool(50, (1, 2, 3))
    first = [Tensor(np.full((n, 1, 2, 3), v, np.float32) + np.arange(n)[:, None, None, None])
             for v, n in ((0, 30), (100, 20))]
    for x in first:
        assert np.array_equal(pool.query(x).numpy(), x.numpy())
    assert int(pool.count.data) == 50
    stored = set(pool.images.data[:, 0, 0, 0].tolist())
    assert stored == set(range(30)) | set(range(100, 120))
    swaps, total = 0, 0
    for k in range(60):
        values = 1000 + 16 * k + np.arange(16)
        out = pool.query(Tensor(np.repeat(values.astype(np.float32), 6).reshape(16, 1, 2, 3))).numpy()
        got = out[:, 0, 0, 0]
        assert np.all(out == got[:, None, None, None])             # whole images, never mixed
        returned_stored = got != values
        assert set(got[returned_stored].tolist()) <= stored         # a swapped image was in the buffer
        stored = set(pool.images.data[:, 0, 0, 0].tolist())
        assert len(pool.images.data) == 50 and int(pool.count.data) == 50
        swaps, total = swaps + int(returned_stored.sum()), total + 16
    share = swaps / total       # 960 coins: 1/2 +- 3 standard deviations (0.048)
    assert abs(share - 0.5) < 0.05, share


def test_the_buffer_stores_detached_copies():
    tinygen.manual_seed(0)
    pool = ImagePool(4, (1, 2, 2))
    x = Tensor(np.ones((4, 1, 2, 2), np.float32)).requires_grad_(True)
    y = x * 3                                            # a fake with a graph behind it
    out = pool.query(y)
    assert not out.requires_grad and out.creator is None
    y.data[...] = -1                                     # the caller's array changes later
    assert np.all(pool.images.data == 3) and np.all(out.numpy() == 3)
    assert not pool.images.requires_grad
    assert np.array_equal(ImagePool(0, (1, 2, 2)).query(y).numpy(), y.numpy())    # size 0: no buffer


# --- the schedule and exact resume ------------------------------------------------------

def _run(m, batches):
    lrs = []
    for batch in batches:
        lrs.append((m.optimizers["generator"].param_groups[0]["lr"],
                    m.optimizers["discriminator"].param_groups[0]["lr"]))
        m.train_step(batch)
    return lrs


def test_the_rate_is_constant_then_linear_to_zero_and_a_resumed_run_continues_it(tmp_path):
    rng = np.random.default_rng(0)
    split = data.unpaired_domains("thin2thick")
    batches = [pair_batch(4, rng, split) for _ in range(8)]
    options = dict(total_steps=8, decay_start=4, pool_size=5)       # the buffer fills and starts swapping
    whole = tiny(**options)
    lrs = _run(whole, batches)
    expected = [5e-4 * (1.0 if t <= 4 else (8 - t) / 4) for t in range(8)]
    assert np.allclose(lrs, np.repeat(np.array(expected)[:, None], 2, axis=1), rtol=1e-12)
    first = tiny(**options)
    _run(first, batches[:5])
    tinygen.save({"state": first.training_state(), "rng": backend.get_rng_state()}, tmp_path / "ckpt.npz")
    saved = tinygen.load(tmp_path / "ckpt.npz")
    resumed = tiny(**options)
    resumed.load_training_state(saved["state"])
    backend.set_rng_state(saved["rng"])
    assert int(resumed.pool_a.count.data) == 5
    assert _run(resumed, batches[5:]) == lrs[5:]
    for (name, p), q in zip(whole.state_dict().items(), resumed.state_dict().values()):
        assert np.array_equal(p, q), name


# --- the phases ---------------------------------------------------------------------

def test_each_phase_touches_only_its_own_networks():
    m = tiny()
    a, b = (m.to_model_range(x) for x in (images(6, seed=1), images(6, seed=2)))
    ds = [snapshot(m.d_a), snapshot(m.d_b)]
    gs = [snapshot(m.g_ab), snapshot(m.g_ba)]
    losses, fake_a, fake_b = m.generator_step(a, b)
    assert {"generator_ab", "generator_ba", "cycle", "identity"} == set(losses)
    assert unchanged(m.d_a, ds[0]) and unchanged(m.d_b, ds[1])
    assert moved(m.g_ab, gs[0]) and moved(m.g_ba, gs[1])
    gs = [snapshot(m.g_ab), snapshot(m.g_ba)]
    losses = m.discriminator_step(a, b, fake_a, fake_b)
    assert {"discriminator_a", "discriminator_b"} == set(losses)
    assert unchanged(m.g_ab, gs[0]) and unchanged(m.g_ba, gs[1])
    assert moved(m.d_a, ds[0]) and moved(m.d_b, ds[1])


def test_the_discriminators_give_a_grid_of_logits():
    for shape, grid in (((1, 8, 8), (4, 4)), ((1, 28, 28), (7, 7)), ((1, 8, 12), (4, 6))):
        m = tiny(image_shape=shape)
        assert tuple(m.d_a(images(2, shape)).shape) == (2, 1) + grid


# --- measured improvement -------------------------------------------------------------

def test_short_training_on_digits_beats_the_identity_map():
    """A small CycleGAN (lr 1e-3 to be quick: 300 steps of batch 8, about 8 s) moves from far
    worse than the identity map to better than it, and keeps the digits readable."""
    tinygen.manual_seed(0)
    m = models.build("cyclegan", width=16, blocks=1, d_width=8, lr=1e-3, total_steps=300)
    split = data.unpaired_domains("thin2thick")
    test = data.unpaired_domains("thin2thick", data.digits().test_images, seed=1)
    batch = tuple(Tensor(x[:120]) for x in (test.images_a, test.truth_ab, test.images_b, test.truth_ba))
    before = m.evaluate(batch)
    rng = np.random.default_rng(0)
    for _ in range(300):
        m.train_step(pair_batch(8, rng, split))
    after = m.evaluate(batch)
    assert before["translation_error"] > 2 * before["identity_error"], before
    assert after["translation_error"] < 0.95 * after["identity_error"], after
    assert after["label_preservation"] > 0.7, after


def test_evaluate_counts_labels_only_where_the_classifier_reads_the_output():
    m = tiny(domains="upright2rotated")
    test = data.unpaired_domains("upright2rotated", data.digits().test_images[:40], seed=1)
    out = m.evaluate(tuple(Tensor(x) for x in (test.images_a, test.truth_ab, test.images_b, test.truth_ba)))
    assert "label_preservation_ba" in out and "label_preservation_ab" not in out
    assert out["label_preservation_truth"] == 1.0     # T^-1(b) read as itself
    assert np.isclose(out["identity_error_ab"], np.abs(test.images_a - test.truth_ab).mean())


def test_generators_that_change_nothing_score_the_identity_map():
    m = tiny()
    m.g_ab, m.g_ba = nn.Identity(), nn.Identity()
    test = data.unpaired_domains("thin2thick", data.digits().test_images[:40], seed=1)
    out = m.evaluate(tuple(Tensor(x) for x in (test.images_a, test.truth_ab, test.images_b, test.truth_ba)))
    for key in ("translation_error_ab", "translation_error_ba", "translation_error"):
        assert np.isclose(out[key], out[key.replace("translation", "identity")], atol=1e-6)
    assert out["cycle_error"] < 1e-6
    assert out["label_preservation"] == 1.0      # each image read as itself


def test_pictures_show_a_translation_and_its_reconstruction():
    m = tiny()
    x = images(16)
    grid = m.pictures(x)["translations"]
    assert grid.dtype == np.uint8 and grid.shape == (6 * 33 + 1, 8 * 33 + 1)
    cell = grid[1:33:4, 1:33:4]                          # the first image, scaled 4x
    assert np.array_equal(cell, (np.clip(x.numpy()[0, 0], 0, 1) * 255 + 0.5).astype(np.uint8))


# --- bad input ------------------------------------------------------------------------

def test_bad_input_is_one_clear_line(tmp_path, monkeypatch, capsys):
    m = tiny()
    with pytest.raises(ValueError, match=r"expected images of shape \(N, 1, 8, 8\), got \(2, 1, 7, 8\)"):
        m.translate(np.zeros((2, 1, 7, 8)))
    with pytest.raises(ValueError, match="direction must be 'AB' or 'BA', got 'AC'"):
        m.translate(np.zeros((2, 1, 8, 8)), direction="AC")
    with pytest.raises(ValueError, match="pair"):
        m.train_step(images(2))
    with pytest.raises(ValueError, match="unknown domains 'day2night'; known: thin2thick, upright2rotated"):
        models.build("cyclegan", domains="day2night")
    with pytest.raises(ValueError, match="square"):
        models.build("cyclegan", image_shape=(1, 8, 12), domains="upright2rotated")
    from tinygen.__main__ import main
    monkeypatch.chdir(tmp_path)
    capsys.readouterr()
    assert main(["train", "cyclegan", "--set", "domains=day2night", "--steps", "2", "--out", "bad", "-q"]) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and "thin2thick, upright2rotated" in err, err


# --- the run folder -------------------------------------------------------------------

def _options_of(folder):
    from tinygen.run_checkpoint import read_checkpoint
    from tinygen.run_files import CHECKPOINT
    return read_checkpoint(folder / CHECKPOINT)["config"]["options"]


def test_train_tells_the_schedule_the_runs_length_and_a_resumed_run_keeps_it(tmp_path, monkeypatch):
    from tinygen.__main__ import main
    from tinygen.run_config import check_arguments, model_info, new_config
    monkeypatch.chdir(tmp_path)
    tiny_set = ["--set", "width=4", "blocks=1", "d_width=4"]
    assert main(["train", "cyclegan", "--steps", "3", "--out", "run", "-q", *tiny_set]) == 0
    assert _options_of(tmp_path / "run")["total_steps"] == 3
    assert main(["train", "cyclegan", "--steps", "5", "--out", "run", "--resume", "-q"]) == 0
    assert _options_of(tmp_path / "run")["total_steps"] == 3           # the schedule the run began with
    info = model_info("cyclegan")
    config, _ = new_config(info, check_arguments(steps=40), "digits", {"total_steps": 90})
    assert config["options"]["total_steps"] == 90                     # --set total_steps wins
    config, _ = new_config(info, check_arguments(), "digits", {})
    assert config["options"]["total_steps"] == models.info("cyclegan").cls.default_steps
    config, _ = new_config(info, check_arguments(minutes=1.0), "digits", {})
    assert "total_steps" not in config["options"]                     # no step count: the model's default
    config, _ = new_config(model_info("vae"), check_arguments(steps=40), "digits", {})
    assert "total_steps" not in config["options"]                     # a model without the option


def test_the_run_folder_shows_real_images_of_b():
    from types import SimpleNamespace
    from tinygen.run_files import picture_input
    m = tiny()
    test = data.unpaired_domains("thin2thick", data.digits().test_images[:40], seed=1)
    fields = (test.images_a, test.truth_ab, test.images_b, test.truth_ba)
    shown = picture_input(m, SimpleNamespace(test=fields), 16)
    assert len(shown) == 4 and all(np.array_equal(s, f[:16]) for s, f in zip(shown, fields))
    grid = m.pictures(shown)["translations"]
    b_row = grid[3 * 33 + 1:4 * 33:4, 1:33:4]                          # row 4, first cell: b itself
    assert np.array_equal(b_row, (test.images_b[0, 0] * 255 + 0.5).astype(np.uint8))
    other = picture_input(models.build("vae"), SimpleNamespace(test=fields), 16)
    assert isinstance(other, Tensor) and np.array_equal(other.numpy(), test.images_a[:16])
