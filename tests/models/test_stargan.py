"""StarGAN (section 7 of the notes): the label really reaches G, and each term sees what it should.

- dG/dc is not zero with zero padding; the same generator with reflection padding gives
  dG/dc = 0 to rounding and the same output for any label (the InstanceNorm trap)
- the targets are a permutation of the batch's rows: the attribute marginal is kept
- D's classification term reads real images only (no gradient reaches the fakes);
  the gradient penalty reaches D's body and source head, double backward through convs
- each phase touches only its own network; the G step comes after every n_critic-th D step
- the single-attribute targets change one attribute (and its exclusive partner)
- after short training on digits the translation error is below the identity map's
- bad attributes (wrong length, not 0/1, thick and thin) and images are one clear line
"""
import numpy as np
import pytest

import tinygen
from tinygen import data, models, nn
from tinygen import functional as F
from tinygen.autograd.engine import grad
from tinygen.autograd.tensor import Tensor
from tinygen.models._translation import resnet_generator

from gan_checks import moved, snapshot, unchanged

TINY = dict(width=4, blocks=1, d_width=4)
K = len(data.ATTRIBUTES)


def tiny(**options):
    tinygen.manual_seed(0)
    return models.build("stargan", **{**TINY, **options})


def attribute_batch(n, seed=0):
    """n digits with their attributes, as (images, attributes) Tensors."""
    ds = data.attribute_domains(data.digits().test_images[:n], seed=seed)
    return Tensor(ds.images), Tensor(ds.attributes)


def label_gradient(m, x, c):
    """dG/dc summed over the output: (N, K) NumPy, and G's outputs for c and for 1 - c."""
    c = Tensor(c).requires_grad_(True)
    g, = grad(F.sum(m.generate(x, c)), c)
    with tinygen.no_grad():
        flipped = m.generate(x, Tensor(1 - c.numpy()))
        same = m.generate(x, Tensor(c.numpy()))
    return g.numpy(), np.abs(flipped.numpy() - same.numpy()).max()


def test_the_label_reaches_g_with_zero_padding_and_is_cancelled_with_reflection():
    # rectangular, and the ResNet generator (instance norm), which StarGAN uses at every size
    m = tiny(image_shape=(1, 16, 20), attribute_names=("thick", "thin", "inverted"))
    assert any(isinstance(layer, nn.InstanceNorm2d) for layer in m.generator.modules())
    m.astype(np.float64)
    rng = np.random.default_rng(0)
    x = Tensor(rng.uniform(-1, 1, (3, 1, 16, 20)))
    c = rng.integers(0, 2, (3, 3)).astype(np.float64)
    g_zero, change_zero = label_gradient(m, x, c)
    assert np.abs(g_zero).min() > 1e-4 and change_zero > 1e-3
    tinygen.manual_seed(0)
    m.generator = resnet_generator(1 + 3, 1, 4, 1, pad="reflect", affine=True).astype(np.float64)
    g_reflect, change_reflect = label_gradient(m, x, c)
    assert np.abs(g_reflect).max() < 1e-10 and change_reflect < 1e-12, (g_reflect, change_reflect)


def test_the_targets_are_a_permutation_of_the_batch_rows():
    m = tiny()
    _, c = attribute_batch(64)
    target = m.target_attributes(c).numpy()
    rows = lambda a: sorted(map(tuple, a))  # noqa: E731
    assert rows(target) == rows(c.numpy())
    assert np.array_equal(target.sum(axis=0), c.numpy().sum(axis=0))     # the marginal of every attribute
    assert not np.array_equal(target, c.numpy())
    data.check_attributes(target)         # valid vectors only: never thick and thin together


def test_the_classification_term_of_d_reads_real_images_only():
    m = tiny()
    x, c = attribute_batch(8)
    x = m.to_model_range(x)
    fake = Tensor(np.random.default_rng(1).uniform(-1, 1, x.shape).astype(np.float32)).requires_grad_(True)
    terms = m.discriminator_terms(x, c, fake)
    g, = grad(terms["classification_real"], fake, allow_unused=True)
    assert g is None
    g, = grad(terms["discriminator"], fake)
    assert np.abs(g.numpy()).sum() > 0


def test_the_gradient_penalty_reaches_the_critic_weights():
    m = tiny()
    x, c = attribute_batch(8)
    x = m.to_model_range(x)
    with tinygen.no_grad():
        fake = m.generate(x, m.target_attributes(c))
    terms = m.discriminator_terms(x, c, fake)
    d = m.discriminator
    weights = [layer.weight for layer in d.body if hasattr(layer, "weight")] + [d.src.weight]
    gs = grad(terms["gradient_penalty"], weights + [d.cls.weight], allow_unused=True)
    assert all(np.abs(g.numpy()).sum() > 0 for g in gs[:-1])
    assert gs[-1] is None                   # the attribute head is not part of the critic


def test_each_phase_touches_only_its_own_network_and_g_steps_every_n_critic_th():
    m = tiny()
    x, c = attribute_batch(8)
    x_model, target = m.to_model_range(x), m.target_attributes(c)
    g0, d0 = snapshot(m.generator), snapshot(m.discriminator)
    assert set(m.discriminator_step(x_model, c, target)) == {"discriminator", "classification_real",
                                                              "gradient_penalty"}
    assert unchanged(m.generator, g0) and moved(m.discriminator, d0)
    d0 = snapshot(m.discriminator)
    assert set(m.generator_step(x_model, c, target)) == {"generator", "classification_fake", "reconstruction",
                                                          "identity"}
    assert unchanged(m.discriminator, d0) and moved(m.generator, g0)
    for n_critic in (3, 5):
        m = tiny(n_critic=n_critic)
        reported = ["generator" in m.train_step((x, c)) for _ in range(2 * n_critic)]
        assert reported == ([False] * (n_critic - 1) + [True]) * 2


def test_the_single_changes_flip_one_attribute_and_its_exclusive_partner():
    m = tiny()
    c = data.attribute_combinations()
    for k, (name, target) in enumerate(m.single_changes(c).items()):
        data.check_attributes(target)
        assert np.all(target[:, k] != c[:, k])
        others = [j for j in range(K) if j != k and {name, data.ATTRIBUTES[j]} != {"thick", "thin"}]
        assert np.array_equal(target[:, others], c[:, others])


def test_short_training_on_digits_beats_the_identity_map():
    """A small StarGAN (600 steps of batch 16, 200 of them G steps, about 10 s)
    moves from worse than the identity map to better than it on average and when inverting."""
    tinygen.manual_seed(0)
    m = models.build("stargan", width=16, blocks=1, d_width=16, total_steps=600)
    train = data.attribute_domains()
    test = data.attribute_domains(data.digits().test_images[:150], data.digits().test_labels[:150], seed=1)
    batch = tuple(Tensor(a) for a in (test.images, test.attributes, test.sources, test.labels))
    before = m.evaluate(batch)
    rng = np.random.default_rng(0)
    for _ in range(600):
        rows = rng.choice(len(train.images), 16, replace=False)
        m.train_step((Tensor(train.images[rows]), Tensor(train.attributes[rows])))
    after = m.evaluate(batch)
    assert before["translation_error"] > before["identity_error"], before
    assert after["translation_error"] < 0.9 * after["identity_error"], after
    assert after["translation_error_inverted"] < 0.8 * after["identity_error_inverted"], after
    assert after["attribute_accuracy_real"] > 0.75, after


def test_the_identity_term_is_g_asked_for_what_the_image_has():
    m = tiny()
    m.generator = KeepImage()
    x, c = attribute_batch(6)
    terms = m.generator_terms(m.to_model_range(x), c, m.target_attributes(c))
    assert float(terms["identity"].numpy()) == 0.0          # G(x, c) = x
    m.generator = Shift(0.25)
    terms = m.generator_terms(m.to_model_range(x), c, m.target_attributes(c))
    assert np.isclose(float(terms["identity"].numpy()), 5 * 0.25)
    assert "identity" not in tiny(identity_weight=0).generator_terms(m.to_model_range(x), c, c)


class Shift(nn.Module):
    """G(x, c) = x + by."""

    def __init__(self, by):
        super().__init__()
        self.by = by

    def forward(self, z):
        return z[:, :1] + self.by


class KeepImage(nn.Module):
    """G(x, c) = x: the first C of G's input channels are the image."""

    def forward(self, z):
        return z[:, :1]


def test_a_generator_that_changes_nothing_scores_the_identity_map():
    m = tiny()
    m.generator = KeepImage()
    test = data.attribute_domains(data.digits().test_images[:50], seed=1)
    out = m.evaluate(tuple(Tensor(a) for a in (test.images, test.attributes, test.sources,
                                                np.zeros(50, np.int64))))
    for name, target in m.single_changes(test.attributes).items():
        truth = data.apply_attributes(test.sources, target)
        assert np.isclose(out[f"identity_error_{name}"], np.abs(test.images - truth).mean())
        assert np.isclose(out[f"translation_error_{name}"], out[f"identity_error_{name}"], atol=1e-6)
    assert np.isclose(out["translation_error"], out["identity_error"], atol=1e-6)
    assert out["reconstruction_error"] < 1e-6
    assert 0 <= out["attribute_accuracy"] <= 1


def test_pictures_show_every_target_of_each_image():
    m = tiny()
    x, _ = attribute_batch(8)
    grid = m.pictures(x)["translations"]
    assert grid.dtype == np.uint8 and grid.shape == (8 * 33 + 1, 13 * 33 + 1)     # the image, then 12 targets
    assert np.array_equal(grid[1:33:4, 1:33:4], (x.numpy()[0, 0] * 255 + 0.5).astype(np.uint8))


def test_pictures_of_the_evaluation_tuple_show_each_single_change_over_its_truth():
    m = tiny()
    test = data.attribute_domains(data.digits().test_images[:8], seed=1)
    batch = (test.images, test.attributes, test.sources, np.zeros(8, np.int64))
    grid = m.pictures(batch)["translations"]
    assert grid.shape == (2 * 8 * 33 + 1, (1 + K) * 33 + 1)          # two rows per image: made, true
    cell = lambda row, col: grid[row * 33 + 1:(row + 1) * 33:4, col * 33 + 1:(col + 1) * 33:4]
    as_pixels = lambda a: (np.clip(a, 0, 1) * 255 + 0.5).astype(np.uint8)
    targets = list(m.single_changes(test.attributes).values())
    for col, target in enumerate(targets, start=1):
        made = m.translate(test.images[:1], target[:1]).numpy()[0, 0]
        assert np.array_equal(cell(0, col), as_pixels(made))
        assert np.array_equal(cell(1, col), as_pixels(data.apply_attributes(test.sources[:1], target[:1])[0, 0]))
    assert np.array_equal(cell(1, 0), as_pixels(test.sources[0, 0]))


def test_the_attribute_names_reach_the_data_of_a_run(tmp_path, monkeypatch, capsys):
    from tinygen.__main__ import main
    from tinygen.run_config import model_info
    from tinygen.run_data import load_data
    names = ("thick", "inverted")
    ds = load_data("digits", model_info("stargan"), {"attribute_names": names})
    assert ds.train[1].shape[1] == 2 and ds.info["attribute_names"] == names
    assert np.array_equal(ds.test[0], data.apply_attributes(ds.test[2], ds.test[1], names))
    monkeypatch.chdir(tmp_path)
    tiny_set = ["width=4", "blocks=1", "d_width=4"]
    assert main(["train", "stargan", "--steps", "2", "--out", "ok", "-q", "--set", "attribute_names=thick,inverted",
                 *tiny_set]) == 0
    assert (tmp_path / "ok" / "translations.png").exists() or (tmp_path / "ok" / "samples.png").exists()
    capsys.readouterr()
    assert main(["train", "stargan", "--steps", "2", "--out", "bad", "-q", "--set", "attribute_names=thick,bold",
                 *tiny_set]) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and "bold" in err and "thick, thin" in err, err


def test_bad_attributes_and_images_are_one_clear_line():
    m = tiny()
    x = np.zeros((2, 1, 8, 8), np.float32)
    for bad, message in (([1, 0, 0], r"4 entries \(thick, thin, rotated, inverted\).*got shape \(3,\)"),
                         ([1, 0, 0.5, 0], r"values must be 0 or 1, got \[0.5\]"),
                         ([1, 1, 0, 0], "thick and thin are mutually exclusive"),
                         (np.zeros((3, 4)), "3 attribute vectors for 2 images")):
        with pytest.raises(ValueError, match=message) as info:
            m.translate(x, bad)
        assert "\n" not in str(info.value) and str(info.value).startswith("stargan.translate:")
    with pytest.raises(ValueError, match=r"expected images of shape \(N, 1, 8, 8\), got \(2, 1, 8, 9\)"):
        m.translate(np.zeros((2, 1, 8, 9)), [0, 0, 0, 0])
    assert m.translate(x, [0, 1, 1, 0]).shape == (2, 1, 8, 8)
    with pytest.raises(ValueError, match="attribute names must be distinct ones of"):
        models.build("stargan", attribute_names=("thick", "bold"))
    with pytest.raises(ValueError, match="generator must be one of resnet, small, got 'unet'"):
        models.build("stargan", generator="unet")
    assert not any(isinstance(layer, nn.InstanceNorm2d) for layer in tiny(generator="small").generator.modules())
    with pytest.raises(ValueError, match="divisible by 4"):
        models.build("stargan", image_shape=(1, 6, 6))
