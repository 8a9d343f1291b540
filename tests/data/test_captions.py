"""``tinygen.data.captions`` / ``measurements``: captions that say what the image shows.

- The measurements equal their formulas computed directly (float64, every pixel), on
  rectangular images with several channels; slant changes sign under a mirror.
- Thresholds fitted on a reference split it about in half (thickness) and thirds
  (slant) per digit, and are applied unchanged to other images.
- Every caption's meaning, read back from its words or its token ids, is the
  image's (label, thickness, slant); a meaning has many phrasings; the seed fixes them.
- The vocabulary round-trips, and names the words it does not know.
- ``load_data("digits")`` hands a "captioned" model its fields.
"""
import types

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from tinygen import data
from tinygen.data import captions
from tinygen.run_data import load_data

V = data.CAPTION_VOCABULARY


def direct_moments(x):
    """m, slant by the module docstring's formulas over every pixel, in float64."""
    p = x.astype(np.float64).mean(axis=1)
    n, h, w = p.shape
    i, j = np.meshgrid(np.arange(h), np.arange(w), indexing="ij")
    m = p.sum(axis=(1, 2))
    ybar = (p * i).sum(axis=(1, 2)) / m
    xbar = (p * j).sum(axis=(1, 2)) / m
    di, dj = i - ybar[:, None, None], j - xbar[:, None, None]
    mu02 = (p * di ** 2).sum(axis=(1, 2)) / m
    mu11 = (p * di * dj).sum(axis=(1, 2)) / m
    return m, -mu11 / mu02


@settings(max_examples=25, deadline=None)
@given(st.integers(1, 5), st.integers(1, 3), st.integers(2, 9), st.integers(2, 9), st.integers(0, 2**16))
def test_measurements_are_their_formulas_on_rectangular_images(n, c, h, w, seed):
    x = np.random.default_rng(seed).random((n, c, h, w), dtype=np.float32) + 0.01
    m, s = direct_moments(x)
    np.testing.assert_allclose(data.ink_mass(x), m, rtol=1e-5)
    np.testing.assert_allclose(data.slant(x), s, rtol=1e-4, atol=1e-5)
    # a mirror (left-right or up-down) turns a lean to the right into one to the left
    np.testing.assert_allclose(data.slant(x[..., ::-1]), -data.slant(x), rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(data.slant(x[..., ::-1, :]), -data.slant(x), rtol=1e-4, atol=1e-5)


def test_slant_sign_convention_positive_leans_right():
    x = np.zeros((4, 1, 6, 6), np.float32)
    x[0, 0, np.arange(6), 5 - np.arange(6)] = 1      # "/": top to the right, slope 1 column per row
    x[1, 0, np.arange(6), np.arange(6)] = 1          # "\"
    x[2, 0, :, 2] = 1                                # "|"
    np.testing.assert_allclose(data.slant(x), [1.0, -1.0, 0.0, 0.0], atol=1e-6)   # x[3] blank: 0


def test_thresholds_split_each_digit_and_apply_unchanged_elsewhere():
    d = data.digits()
    fitted = data.CaptionAttributes.fit(d.train_images, d.train_labels)
    thick, slant = fitted.measure(d.train_images, d.train_labels)
    for digit in range(10):
        mine = d.train_labels == digit
        assert 0.4 <= thick[mine].mean() <= 0.5                          # m > median: about half
        np.testing.assert_allclose(np.bincount(slant[mine], minlength=3) / mine.sum(), 1 / 3, atol=0.03)
    # applied to the test split: the training split's thresholds, not the test split's own
    m, s, y = data.ink_mass(d.test_images), data.slant(d.test_images), d.test_labels
    np.testing.assert_array_equal(fitted.thickness(d.test_images, y), m > fitted.ink_median[y])
    expected = np.where(s < fitted.slant_low[y], 0, np.where(s > fitted.slant_high[y], 2, 1))
    np.testing.assert_array_equal(fitted.slant_category(d.test_images, y), expected)
    assert data.thickness(d.train_images, d.train_labels).tolist() == thick.tolist()   # own reference
    assert data.digits_caption_attributes().to_array().tolist() == fitted.to_array().tolist()
    again = data.CaptionAttributes.from_array(fitted.to_array())
    assert all(np.array_equal(a, b) for a, b in zip(again, fitted))
    with pytest.raises(ValueError):
        fitted.ink_median[0] = 1.0   # read-only: a shared object cannot drift


def test_a_digit_without_reference_images_is_named():
    d = data.digits()
    keep = d.train_labels != 3
    fitted = data.CaptionAttributes.fit(d.train_images[keep], d.train_labels[keep])
    with pytest.raises(ValueError, match=r"no images of digit\(s\) \[3\]"):
        fitted.thickness(d.test_images, d.test_labels)
    with pytest.raises(ValueError, match=r"labels must be in 0..9, got \[10\]"):
        data.CaptionAttributes.fit(d.test_images[:2], np.array([1, 10]))


# --- captions ---------------------------------------------------------------------

@pytest.fixture(scope="module")
def captioned():
    return data.captioned_digits()


def test_every_caption_says_its_images_digit_thickness_and_slant(captioned):
    c = captioned
    assert c.images.shape == (1438, 1, 8, 8) and c.tokens.shape == (1438, data.MAX_CAPTION_WORDS)
    truth = (c.labels.tolist(), c.thickness.tolist(), c.slant.tolist())
    from_tokens = data.caption_meaning(c.tokens, c.vocabulary)
    from_words = data.caption_meaning(c.captions)
    assert tuple(a.tolist() for a in from_tokens) == truth and tuple(a.tolist() for a in from_words) == truth
    m_thick, m_slant = c.attributes.measure(c.images, c.labels)
    assert m_thick.tolist() == truth[1] and m_slant.tolist() == truth[2]
    assert data.caption_meaning(c.captions[5]) == (c.labels[5], c.thickness[5], c.slant[5])
    # tokens are the encoded captions, zero-padded after each length
    for n in range(0, len(c.captions), 97):
        ids = c.tokens[n, :c.lengths[n]]
        assert ids.tolist() == V.encode(c.captions[n]).tolist() and not c.tokens[n, c.lengths[n]:].any()


def test_a_meaning_has_many_phrasings_and_synonyms_alternate(captioned):
    c = captioned
    meaning = captions.meaning_index(c.labels, c.thickness, c.slant)
    for k in np.unique(meaning):
        phrasings = {c.captions[n] for n in np.flatnonzero(meaning == k)}
        assert len(phrasings) >= min(3, (meaning == k).sum())
    words = {w for text in c.captions for w in captions.words_of(text)}
    assert {"bold", "heavy", "thick", "light", "slim", "thin", "tilted", "slanted", "leaning", "7", "seven"} <= words
    starts = {text.split()[0] for text in c.captions}
    assert {"a", "an", "the"} <= starts and starts & {"leaning", "tilted", "upright", "standing"}
    assert not any(" a eight" in f" {t}" or " a 8" in f" {t}" for t in c.captions)   # "an eight"


def test_captions_are_fixed_by_the_seed_and_never_alias_the_input():
    d = data.digits()
    x, y = d.test_images[:200], d.test_labels[:200]
    x0, y0 = x.copy(), y.copy()
    fitted = data.digits_caption_attributes()
    a = data.captioned_digits(x, y, seed=3, attributes=fitted)
    b = data.captioned_digits(x, y, seed=3, attributes=fitted)
    other = data.captioned_digits(x, y, seed=4, attributes=fitted)
    assert a.captions == b.captions and np.array_equal(a.tokens, b.tokens)
    assert a.captions != other.captions and np.array_equal(a.thickness, other.thickness)
    assert np.array_equal(x, x0) and np.array_equal(y, y0)
    assert not np.shares_memory(a.images, x) and not np.shares_memory(a.labels, y)
    a.images[:] = 0
    assert np.array_equal(x, x0)


def test_rectangular_and_many_channel_images_are_captioned():
    rng = np.random.default_rng(0)
    x = rng.random((60, 3, 8, 10), dtype=np.float32)
    y = np.arange(60) % 10
    c = data.captioned_digits(x, y, seed=1)
    assert c.images.shape == (60, 3, 8, 10) and c.tokens.shape == (60, data.MAX_CAPTION_WORDS)
    assert data.caption_meaning(c.tokens).digit.tolist() == y.tolist()


def test_captioned_digits_refuses_what_it_cannot_caption():
    d = data.digits()
    with pytest.raises(ValueError, match="need their digit labels"):
        data.captioned_digits(d.test_images)
    with pytest.raises(ValueError, match=r"labels must be in 0..9"):
        data.captioned_digits(d.test_images[:2], np.array([0, 12]))
    with pytest.raises(ValueError, match=r"one entry per image, got shape \(3,\) for 2 images"):
        data.captioned_digits(d.test_images[:2], np.array([0, 1, 2]))
    with pytest.raises(ValueError, match=r"\(N, C, H, W\), got shape \(8, 8\)"):
        data.captioned_digits(d.test_images[0, 0], np.array([0]))
    bad = d.test_images[:2].copy()
    bad[0, 0, 0, 0] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        data.captioned_digits(bad, d.test_labels[:2])


# --- the vocabulary ---------------------------------------------------------------

def test_vocabulary_round_trips_and_pads():
    assert V.words[0] == "<pad>" and len(V) == len(set(V.words))
    texts = [captions.phrase(8, 1, 2, p) for p in range(captions.NUM_PHRASINGS)] + ["A Bold, SEVEN!"]
    for t in texts:
        assert V.decode(V.encode(t)) == " ".join(captions.words_of(t))
    tokens, lengths = V.encode_batch(texts)
    assert tokens.dtype == np.int64 and lengths.dtype == np.int64 and tokens.shape == (len(texts), lengths.max())
    for row, n, t in zip(tokens, lengths, texts):
        assert V.decode(row) == " ".join(captions.words_of(t)) and not row[n:].any() and row[:n].all()
    assert V.encode("A bold, seven!").tolist() == V.encode("a bold seven").tolist()
    assert data.caption_meaning("A bold, seven!") == (7, 1, -1)   # slant not said
    assert data.caption_meaning("a thick thin seven").thickness == -1   # said both ways: unknown


def test_unknown_words_and_empty_captions_are_named():
    with pytest.raises(ValueError, match=r"unknown words 'purple', 'dragon' in caption 'a purple dragon "
                                         r"seven dragon'; the vocabulary knows: 0, 1, .*zero"):
        V.encode("a purple dragon seven dragon")
    with pytest.raises(ValueError, match=r"unknown word 'x'"):
        V.encode_batch(["a seven", "x"])
    for empty in ("", "  ,;! "):
        with pytest.raises(ValueError, match=r"empty caption"):
            V.encode(empty)
    with pytest.raises(TypeError, match="must be a string"):
        V.encode(7)
    with pytest.raises(TypeError, match="list of captions"):
        V.encode_batch("a seven")
    with pytest.raises(ValueError, match=r"token ids \[99\] are outside"):
        V.decode([1, 99])
    with pytest.raises(ValueError, match=r"token ids must be in 0..42"):
        data.caption_meaning(np.array([[1, 43]]))


# --- what the command line hands a model ------------------------------------------

def model_info(kind, eval_kind=None):
    cls = type("Dummy", (), {"data_kind": kind, "eval_data_kind": eval_kind, "binary": False})
    return types.SimpleNamespace(name="dummy", cls=cls)


def test_load_data_gives_a_captioned_model_its_fields():
    ds = load_data("digits", model_info("captioned", "captioned_truth"))
    images, tokens, lengths = ds.train
    d = data.digits()
    assert np.array_equal(images, d.train_images) and tokens.dtype == np.int64 and lengths.shape == (1438,)
    assert len(ds.test) == 6 and np.array_equal(ds.test[0], d.test_images)
    _, t_tokens, _, t_labels, t_thick, t_slant = ds.test
    meaning = data.caption_meaning(t_tokens, ds.info["vocabulary"])
    assert (meaning.digit.tolist(), meaning.thickness.tolist(), meaning.slant.tolist()) == \
        (t_labels.tolist(), t_thick.tolist(), t_slant.tolist())
    # the test split is judged by the training split's thresholds, which the model is told
    fitted = ds.info["caption_attributes"]
    assert fitted.to_array().tolist() == data.digits_caption_attributes().to_array().tolist()
    assert fitted.thickness(d.test_images, d.test_labels).tolist() == t_thick.tolist()
    assert "1438 1x8x8 captioned images" in ds.describe()
    # without an eval kind, evaluate gets what training gets
    assert len(load_data("digits", model_info("captioned")).test) == 3
