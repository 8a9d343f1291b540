"""Text-to-image GAN (GAN-CLS / GAN-INT, section 7 of the notes): properties, measured.

- the wrong caption is never of the same digit, also for a batch of one digit
- a text-blind D (its text projection zero) gives s_r = s_w exactly; a reading D does not
- interpolated embeddings reach D in G's step only: D's step sees only captions' embeddings
- each phase touches only its own player; the text encoder is D's
- L_D's reduction against a hand computation of -(log s_r + 1/2 [log(1 - s_w) + log(1 - s_f)])
- the LSTM reader depends on word order, the bag does not; padding changes neither
- unknown words, empty captions and bad batches are clear errors
- sample's shape and range, with and without captions, on rectangular images too
- after short training on digits the caption's digit is read in the image above chance
"""
import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

import tinygen
from tinygen import data, models
from tinygen.__main__ import main
from tinygen.autograd.tensor import Tensor
from tinygen.models import text2image
from tinygen.models._text_encoder import TextEncoder

from gan_checks import moved, snapshot, unchanged
from training import train_for

SMALL = dict(width=16, noise_dim=8, embed_dim=16, text_proj=16)
VOCAB = data.CAPTION_VOCABULARY


@pytest.fixture(scope="module")
def splits():
    ds = data.digits()
    train, test, _ = data.derive_splits("captioned_truth", {"images": ds.train_images, "labels": ds.train_labels},
                                        {"images": ds.test_images, "labels": ds.test_labels})
    return train, test


def batch_of(split, rows, kind="captioned"):
    return tuple(Tensor(a[rows]) for a in data.batch_arrays(kind, split))


def digit_of(tokens):
    return data.caption_meaning(tokens).digit


def small(**options):
    tinygen.manual_seed(0)
    return models.build("text2image", **{**SMALL, **options})


# --- the wrong pair ------------------------------------------------------------------

@settings(max_examples=30, deadline=None)
@given(st.lists(st.integers(0, 3), min_size=1, max_size=12), st.integers(0, 2 ** 32 - 1))
def test_mismatched_partners_are_of_another_digit_or_none(digits, seed):
    digits = np.array(digits)
    partner = text2image.mismatched_partners(digits, np.random.default_rng(seed))
    has = partner >= 0
    assert (digits[partner[has]] != digits[has]).all()
    # none exactly where every row of the batch is of the row's digit
    assert ((~has) == (digits[None, :] == digits[:, None]).all(axis=1)).all()


def test_the_partner_is_uniform_over_the_other_digits():
    digits = np.array([0, 1, 1, 2])
    picks = np.array([text2image.mismatched_partners(digits, np.random.default_rng(s))[0] for s in range(3000)])
    counts = np.bincount(picks, minlength=4) / len(picks)
    assert counts[0] == 0 and np.allclose(counts[1:], 1 / 3, atol=0.03), counts


def test_the_wrong_caption_never_names_the_same_digit(splits):
    m = small()
    train, _ = splits
    rng = np.random.default_rng(0)
    for rows in (np.arange(64), np.flatnonzero(train["labels"] == 7)[:5], np.arange(1)):
        tokens, lengths = train["tokens"][rows], train["lengths"][rows]
        wrong, wrong_lengths = m.wrong_captions(tokens, lengths, rng)
        assert wrong.shape[0] == len(rows) and (wrong_lengths >= 1).all()
        assert (digit_of(wrong) != digit_of(tokens)).all()
        assert (digit_of(wrong) >= 0).all()


# --- what D sees ---------------------------------------------------------------------

def scores(m, batch):
    """(a_r, a_w) of D on the batch's images with the right and a wrong caption."""
    x, tokens, lengths = m.check_batch(batch)
    wrong = m.wrong_captions(tokens, lengths, np.random.default_rng(0))
    real = m.to_model_range(x)
    d = m.discriminator
    return d(real, d.encode(tokens, lengths)).numpy(), d(real, d.encode(*wrong)).numpy()


def test_a_text_blind_discriminator_scores_right_and_wrong_text_alike(splits):
    m = small()
    batch = batch_of(splits[0], np.arange(32))
    for _ in range(20):          # a D that has learned a little
        m.train_step(batch)
    a_r, a_w = scores(m, batch)
    assert np.abs(a_r - a_w).max() > 1e-3        # it reads the text
    linear = m.discriminator.project[0]
    linear.weight.data[...] = 0
    linear.bias.data[...] = 0
    a_r, a_w = scores(m, batch)
    assert np.array_equal(a_r, a_w)


def record_embeddings(m, monkeypatch):
    """Every phi D reads and every phi the encoder writes, by phase ("d" / "g")."""
    seen = {"read": [], "written": []}
    d = m.discriminator
    forward, encode = d.forward, d.encode
    phase = {"now": None}

    def reading(x, phi):
        seen["read"].append((phase["now"], phi.numpy().copy()))
        return forward(x, phi)

    def writing(tokens, lengths):
        phi = encode(tokens, lengths)
        seen["written"].append((phase["now"], phi.numpy().copy()))
        return phi

    monkeypatch.setattr(d, "forward", reading)
    monkeypatch.setattr(d, "encode", writing)
    for name in ("discriminator_step", "generator_step"):
        monkeypatch.setattr(m, name, in_phase(getattr(m, name), name[0], phase))
    return seen


def in_phase(step, name, phase):
    def run(*args):
        phase["now"] = name
        return step(*args)
    return run


def rows_of(arrays):
    return {tuple(r) for a in arrays for r in a}


def test_interpolated_embeddings_reach_d_in_the_generator_step_only(splits, monkeypatch):
    m = small()
    seen = record_embeddings(m, monkeypatch)
    m.train_step(batch_of(splits[0], np.arange(16)))
    for phase in "dg":
        written = rows_of(phi for p, phi in seen["written"] if p == phase)
        read = [phi for p, phi in seen["read"] if p == phase]
        outside = [r for phi in read for r in phi if tuple(r) not in written]
        if phase == "d":
            assert len(read) == 3 and not outside          # real-right, real-wrong, fake-right: captions only
        else:
            assert len(read) == 2 and len(outside) == 8    # the half-batch of interpolations
            (captions,) = [phi for p, phi in seen["written"] if p == "g"]
            mids = (captions[:, None] + captions[None, :]) / 2
            assert all(np.isclose(mids, r, atol=1e-6).all(axis=2).any() for r in outside)


def test_each_phase_touches_only_its_own_player_and_the_encoder_is_ds(splits):
    m = small()
    x, tokens, lengths = m.check_batch(batch_of(splits[0], np.arange(16)))
    encoder = m.discriminator.encoder
    d_params = {id(p) for g in m.optimizers["discriminator"].param_groups for p in g["params"]}
    g_params = {id(p) for g in m.optimizers["generator"].param_groups for p in g["params"]}
    assert {id(p) for p in encoder.parameters()} <= d_params - g_params
    g0, d0, e0 = snapshot(m.generator), snapshot(m.discriminator), snapshot(encoder)
    m.discriminator_step(m.to_model_range(x), tokens, lengths)
    assert unchanged(m.generator, g0)                       # G's weights and its (empty) gradients
    assert moved(m.discriminator, d0) and moved(encoder, e0)
    g0, p0, d0 = snapshot(m.generator), snapshot(m.generator.project), snapshot(m.discriminator)
    m.generator_step(tokens, lengths)
    assert moved(m.generator, g0) and moved(m.generator.project, p0)
    assert all(np.array_equal(w0, p.data) for (w0, _), p in zip(d0, m.discriminator.parameters()))
    assert all(p.requires_grad for p in m.discriminator.parameters())      # unfrozen again


def test_the_discriminator_loss_is_the_gan_cls_objective():
    rng = np.random.default_rng(0)
    a_r, a_w, a_f = (rng.normal(0, 5, 13) for _ in range(3))
    a_r[0], a_w[1], a_f[2] = 60.0, -80.0, 90.0                # far into saturation
    loss = text2image.gan_cls_discriminator_loss(*(Tensor(a) for a in (a_r, a_w, a_f))).item()
    s = lambda a: 1 / (1 + np.exp(-a))                        # noqa: E731
    log_s = lambda a: -np.logaddexp(0, -a)                    # noqa: E731  log sigmoid, stable
    expected = -(np.mean(log_s(a_r)) + 0.5 * (np.mean(log_s(-a_w)) + np.mean(log_s(-a_f))))
    assert np.isfinite(loss) and loss == pytest.approx(expected, rel=1e-12)
    mid = -(np.log(s(1.0)) + 0.5 * (np.log(1 - s(-2.0)) + np.log(1 - s(0.5))))
    assert text2image.gan_cls_discriminator_loss(*(Tensor(np.array([v])) for v in (1.0, -2.0, 0.5))).item() == \
        pytest.approx(mid, rel=1e-12)


# --- the text encoder ------------------------------------------------------------------

def test_the_lstm_reads_word_order_the_bag_does_not_and_padding_is_never_read():
    tokens, lengths = VOCAB.encode_batch(["a thick seven leaning left", "left leaning seven thick a"])
    for kind, order_matters in (("lstm", True), ("bag", False)):
        tinygen.manual_seed(0)
        enc = TextEncoder(len(VOCAB), 8, 12, kind=kind)
        phi = enc(tokens, lengths).numpy()
        assert (not np.allclose(phi[0], phi[1], atol=1e-6)) == order_matters
        wider = np.pad(tokens, ((0, 0), (0, 5)))
        assert np.allclose(enc(wider, lengths).numpy(), phi, atol=1e-6)


def test_an_unknown_encoder_is_a_clear_error():
    with pytest.raises(ValueError, match="unknown text encoder 'cnn'.*'lstm', 'bag'"):
        models.build("text2image", encoder="cnn")


# --- sampling and bad input ---------------------------------------------------------------

def test_sample_shapes_and_range_per_caption_and_random():
    m = small(image_shape=(1, 8, 12))            # rectangular: H != W
    x = m.sample(3, captions=["a thick seven leaning left", "the digit 2, thin and upright"])
    assert x.shape == (6, 1, 8, 12)
    assert 0 <= x.numpy().min() and x.numpy().max() <= 1
    assert m.sample(5).shape == (5, 1, 8, 12)
    # n per caption, caption-major: one noise stream, so rows of one caption differ by z only
    tinygen.manual_seed(3)
    a = m.sample(2, captions=["a thick seven leaning left"]).numpy()
    assert not np.allclose(a[0], a[1])


def test_unknown_words_and_empty_captions_are_clear_errors():
    m = small()
    with pytest.raises(ValueError, match="unknown words 'purple', 'sevens'"):
        m.sample(1, captions=["a thin one", "two purple sevens"])
    with pytest.raises(ValueError, match="empty caption"):
        m.sample(1, captions=["a thin one", "  "])
    with pytest.raises(ValueError, match="empty list"):
        m.sample(1, captions=[])
    with pytest.raises(TypeError, match="list of strings"):
        m.sample(1, captions="a thin one")


def test_bad_batches_are_clear_errors(splits):
    m = small()
    images, tokens, lengths = batch_of(splits[0], np.arange(4))
    with pytest.raises(ValueError, match="tokens must be integer token ids of shape"):
        m.train_step((images, Tensor(tokens.numpy()[:3]), lengths))
    with pytest.raises(ValueError, match="lengths must lie in 1..7"):
        m.train_step((images, tokens, Tensor(np.zeros(4, np.int64))))
    with pytest.raises(ValueError, match="token ids must lie in 0..42"):
        m.train_step((images, Tensor(tokens.numpy() + 100), lengths))
    with pytest.raises(ValueError, match="a batch is \\(images, tokens, lengths\\)"):
        m.train_step(images)
    with pytest.raises(ValueError, match="'captioned_truth'"):
        m.evaluate((images, tokens, lengths))


# --- measured improvement -------------------------------------------------------------------

@pytest.fixture(scope="module")
def trained(splits):
    """A small text2image after 600 steps on the captioned digits (D at G's rate, which reads the
    captions sooner at this size), with its metrics before."""
    train, test = splits
    m = small(d_lr=1e-3)
    evaluation = batch_of(test, np.arange(len(test["labels"])), "captioned_truth")
    before = m.evaluate(evaluation)
    train_for(m, data.DataLoader(data.batch_arrays("captioned", train), batch_size=32, shuffle=True, seed=0), 600)
    return m, before, m.evaluate(evaluation), evaluation


def test_after_short_training_the_captions_digit_is_read_above_chance(trained):
    m, before, after, _ = trained
    assert before["caption_accuracy"] < 0.2
    assert after["caption_accuracy"] > 0.25, after       # chance: 0.1
    assert after["frechet_distance"] < before["frechet_distance"]
    assert set(after) == {"caption_accuracy", "attribute_accuracy", "slant_accuracy", "frechet_distance",
                          "frechet_floor"}


def test_evaluate_is_repeatable_and_leaves_the_random_stream_alone(trained):
    m, _, after, evaluation = trained
    state = tinygen.backend.get_rng_state()
    assert m.evaluate(evaluation) == after
    assert tinygen.backend.get_rng_state() == state


def test_the_pictures_label_each_caption_row(trained):
    m, *_ = trained
    pictures = m.pictures(Tensor(np.zeros((2, 1, 8, 8), np.float32)))
    assert set(pictures) == {"captions", "interpolation"}
    rows = len(text2image.PICTURE_CAPTIONS)
    captions = pictures["captions"]
    assert captions.dtype == np.uint8 and captions.ndim == 3 and captions.shape[2] == 3
    assert captions.shape[0] == rows * 33 + 1                   # 8x8 digits drawn 32 px tall, padding 1
    text = captions[:rows * 33, :captions.shape[1] - (8 * 33 + 1)]    # the column left of the grid
    assert (text.reshape(rows, 33, -1, 3) < 128).any(axis=(1, 2, 3)).all()     # ink beside every row
    assert pictures["interpolation"].shape[0] == len(text2image.INTERPOLATIONS) * 33 + 1


def test_evaluate_on_other_shapes_reports_the_attributes_only():
    m = small(image_shape=(1, 8, 12))
    rng = np.random.default_rng(0)
    images = rng.random((20, 1, 8, 12)).astype(np.float32)
    labels = np.arange(20) % 10
    captioned = data.captioned_digits(images, labels)
    batch = tuple(Tensor(a) for a in (captioned.images, captioned.tokens, captioned.lengths, labels,
                                      captioned.thickness, captioned.slant))
    assert set(m.evaluate(batch)) == {"attribute_accuracy", "slant_accuracy"}


# --- the command line ---------------------------------------------------------------------------

def test_train_sample_and_eval_on_the_command_line(tmp_path, capsys):
    out = tmp_path / "run"
    assert main(["train", "text2image", "--steps", "4", "--batch-size", "8", "--log-every", "4",
                 "--set", "width=8", "--out", str(out), "--quiet"]) == 0
    assert (out / "captions.png").exists() and (out / "interpolation.png").exists()
    assert main(["sample", "text2image", "--checkpoint", str(out / "checkpoint.npz"), "--n", "4",
                 "--out", str(tmp_path / "s.png")]) == 0
    assert (tmp_path / "s.png").exists()
    ckpt = ["--checkpoint", str(out / "checkpoint.npz")]
    assert main(["sample", "text2image", *ckpt, "--n", "3", "--caption", "a thick seven leaning right",
                 "--caption", "a thin 2 leaning left", "--out", str(tmp_path / "c.png")]) == 0
    from PIL import Image
    assert Image.open(tmp_path / "c.png").size[1] < Image.open(tmp_path / "c.png").size[0]   # 2 rows of 3
    capsys.readouterr()
    assert main(["sample", "text2image", *ckpt, "--caption", "a thick sevn"]) == 2
    assert "sevn" in capsys.readouterr().err
    assert main(["sample", "text2image", *ckpt, "--caption", ""]) == 2
    assert main(["eval", "text2image", *ckpt]) == 0
    assert "caption_accuracy" in capsys.readouterr().out
