"""``tinygen.data.domains``: domains made by known transforms, with the true translations.

- Dilation and erosion equal their definition (a padded maximum / minimum over the
  cross, in a direct reference) on rectangular, many-channel images; they are dual,
  ordered (erode <= x <= dilate) and commute with the quarter turn.
- Unpaired domains: A and B come from disjoint halves, T applied to A is distributed
  like B (ink mass) and unlike A; the truths are T of A and B's sources.
- Attribute domains: all zeros is the identity, each attribute is its transform,
  thick holds more ink than thin for every image, bad attribute vectors are named.
- Fixed by the seed; inputs are never changed or shared; ``load_data`` hands each
  kind its fields, with the domains the model's option names.
"""
import types

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from tinygen import data
from tinygen.data import domains
from tinygen.run_config import UsageError
from tinygen.run_data import load_data


def reference_morph(x, depth, dilation):
    """max (or min) over the centre and the 4 neighbours less (plus) depth; outside: nothing."""
    fill = -np.inf if dilation else np.inf
    p = np.pad(x.astype(np.float64), ((0, 0), (0, 0), (1, 1), (1, 1)), constant_values=fill)
    h, w = x.shape[2:]
    shifted = [p[:, :, 1 + di:1 + di + h, 1 + dj:1 + dj + w] + (-depth if dilation else depth)
               for di, dj in ((-1, 0), (1, 0), (0, -1), (0, 1))]
    pick = np.max if dilation else np.min
    return pick(np.stack([x.astype(np.float64)] + shifted), axis=0)


@settings(max_examples=25, deadline=None)
@given(st.integers(1, 4), st.integers(1, 3), st.integers(1, 7), st.integers(1, 7), st.integers(0, 2**16))
def test_dilation_and_erosion_are_their_definitions(n, c, h, w, seed):
    x = np.random.default_rng(seed).random((n, c, h, w), dtype=np.float32)
    thick, thin = data.dilate(x), data.erode(x)
    assert thick.shape == thin.shape == x.shape and thick.dtype == np.float32
    np.testing.assert_allclose(thick, reference_morph(x, domains.DEPTH, True), rtol=1e-6)
    np.testing.assert_allclose(thin, reference_morph(x, domains.DEPTH, False), rtol=1e-6)
    assert (thin <= x).all() and (x <= thick).all() and thick.max() <= 1 and thin.min() >= 0
    np.testing.assert_allclose(thin, 1 - data.dilate(1 - x), atol=1e-6)        # duality
    np.testing.assert_array_equal(data.rotate(x), np.rot90(x, 1, axes=(2, 3)))
    assert data.rotate(x).shape == (n, c, w, h)
    np.testing.assert_allclose(data.dilate(data.rotate(x)), data.rotate(thick))   # the cross turns into itself
    np.testing.assert_array_equal(data.rotate(data.rotate(data.rotate(data.rotate(x)))), x)
    np.testing.assert_allclose(data.invert(x), 1 - x)


def test_transforms_never_change_or_share_their_input():
    x = np.random.default_rng(0).random((3, 1, 1, 1), dtype=np.float32)   # rot90 of 1x1 is a view
    x0 = x.copy()
    for transform in (data.dilate, data.erode, data.rotate, data.invert):
        out = transform(x)
        assert not np.shares_memory(out, x), transform.__name__
        out[:] = 7
    assert np.array_equal(x, x0)


# --- unpaired domains -------------------------------------------------------------

def ink_statistics(images):
    m = data.ink_mass(images)
    return m.mean(), m.std(), len(m)


def test_thin2thick_halves_are_disjoint_and_b_is_t_of_a_in_distribution():
    d = data.digits()
    u = data.unpaired_domains("thin2thick")
    n = len(d.train_images)
    assert len(u.images_a) == len(u.images_b) == n // 2 and u.images_a.dtype == np.float32
    assert not set(u.index_a.tolist()) & set(u.index_b.tolist())            # no image in both
    np.testing.assert_array_equal(u.images_a, d.train_images[u.index_a])
    np.testing.assert_array_equal(u.truth_ba, d.train_images[u.index_b])
    np.testing.assert_array_equal(u.images_b, data.dilate(u.truth_ba))
    np.testing.assert_array_equal(u.truth_ab, data.dilate(u.images_a))
    assert u.labels_a.tolist() == d.train_labels[u.index_a].tolist() and u.transform is data.dilate
    # T(A) and B: two samples of one distribution (means within 4 standard errors, spreads close);
    # A and B: far apart (more than 20 standard errors)
    (ma, sa, na), (mb, sb, nb), (mt, st_, nt) = map(ink_statistics, (u.images_a, u.images_b, u.truth_ab))
    assert abs(mt - mb) < 4 * np.sqrt(st_ ** 2 / nt + sb ** 2 / nb) and 0.8 < st_ / sb < 1.25
    assert mb - ma > 20 * np.sqrt(sa ** 2 / na + sb ** 2 / nb)


def test_upright2rotated_and_odd_counts():
    d = data.digits()
    x, y = d.test_images[:101], d.test_labels[:101]
    x0 = x.copy()
    u = data.unpaired_domains("upright2rotated", x, y, seed=5)
    assert len(u.images_a) == len(u.images_b) == 50                        # one image left out
    assert len(set(u.index_a.tolist()) | set(u.index_b.tolist())) == 100
    np.testing.assert_array_equal(u.images_b, np.rot90(x[u.index_b], 1, axes=(2, 3)))
    np.testing.assert_array_equal(u.truth_ab, np.rot90(x[u.index_a], 1, axes=(2, 3)))
    again = data.unpaired_domains("upright2rotated", x, y, seed=5)
    assert np.array_equal(again.index_a, u.index_a) and np.array_equal(again.images_b, u.images_b)
    assert not np.array_equal(data.unpaired_domains("upright2rotated", x, y, seed=6).index_a, u.index_a)
    assert np.array_equal(x, x0) and not any(np.shares_memory(a, x) for a in u[:6] if a is not None)
    none = data.unpaired_domains("thin2thick", x)
    assert none.labels_a is None and none.labels_b is None


def test_bad_domains_and_shapes_are_named():
    with pytest.raises(ValueError, match=r"unknown domains 'day2night'; known: thin2thick, upright2rotated"):
        data.unpaired_domains("day2night")
    rect = np.random.default_rng(0).random((10, 1, 8, 10), dtype=np.float32)
    with pytest.raises(ValueError, match=r"8x10 pixels is 10x8, so rotation needs square images"):
        data.unpaired_domains("upright2rotated", rect)
    assert data.unpaired_domains("thin2thick", rect).images_b.shape == (5, 1, 8, 10)
    with pytest.raises(ValueError, match=r"\(N, C, H, W\), got shape \(10, 8, 10\)"):
        data.unpaired_domains("thin2thick", rect[:, 0])


# --- attribute domains ------------------------------------------------------------

def test_each_attribute_is_its_transform():
    x = data.digits().test_images[:50]
    x0 = x.copy()
    assert data.ATTRIBUTES == ("thick", "thin", "rotated", "inverted")
    np.testing.assert_array_equal(data.apply_attributes(x, [0, 0, 0, 0]), x)     # the identity
    assert not np.shares_memory(data.apply_attributes(x, [0, 0, 0, 0]), x)
    single = {"thick": data.dilate(x), "thin": data.erode(x), "rotated": np.rot90(x, 1, axes=(2, 3)),
              "inverted": 1 - x}
    for k, name in enumerate(data.ATTRIBUTES):
        np.testing.assert_allclose(data.apply_attributes(x, np.eye(4)[k]), single[name], err_msg=name)
    np.testing.assert_allclose(data.apply_attributes(x, [1, 0, 1, 1]), 1 - np.rot90(data.dilate(x), 1, axes=(2, 3)))
    thick, thin = data.ink_mass(single["thick"]), data.ink_mass(single["thin"])
    assert (thick > data.ink_mass(x)).all() and (data.ink_mass(x) > thin).all()   # every image
    # one vector per row: rows with different attributes each get their own transform
    rows = np.array([[1, 0, 0, 0], [0, 0, 0, 1]] * 25, np.float32)
    out = data.apply_attributes(x, rows)
    np.testing.assert_allclose(out[0::2], single["thick"][0::2])
    np.testing.assert_allclose(out[1::2], single["inverted"][1::2])
    assert np.array_equal(x, x0)


def test_bad_attribute_vectors_are_named():
    with pytest.raises(ValueError, match=r"must have 4 entries \(thick, thin, rotated, inverted\).*shape \(2, 3\)"):
        data.check_attributes(np.zeros((2, 3)))
    with pytest.raises(ValueError, match=r"must be 0 or 1, got \[0.5, 2.0\]"):
        data.check_attributes([[0, 0.5, 0, 0], [2, 0, 0, 0]])
    with pytest.raises(ValueError, match=r"must be 0 or 1, got \[nan\]"):
        data.check_attributes([0, np.nan, 0, 0])
    with pytest.raises(ValueError, match=r"thick and thin are mutually exclusive.*vector\(s\) \[1\] have both"):
        data.check_attributes([[1, 0, 0, 0], [1, 1, 0, 1]])
    with pytest.raises(ValueError, match=r"must be numbers 0 or 1"):
        data.check_attributes(["thick", "x", "y", "z"])
    with pytest.raises(ValueError, match=r"3 attribute vectors for 2 images"):
        data.apply_attributes(np.zeros((2, 1, 4, 4)), np.zeros((3, 4)))
    with pytest.raises(ValueError, match=r"so rotation needs square images"):
        data.apply_attributes(np.zeros((2, 1, 4, 5)), [0, 0, 1, 0])
    ok = data.check_attributes(np.array([[1, 0, 1, 1]]))
    assert ok.dtype == np.float32 and ok.tolist() == [[1, 0, 1, 1]]
    import tinygen
    assert data.check_attributes(tinygen.tensor(np.eye(4, dtype=np.float32)[:1])).shape == (1, 4)


def test_attribute_domains_draw_every_valid_combination_from_their_sources():
    d = data.digits()
    a = data.attribute_domains()
    combos = data.attribute_combinations()
    assert combos.shape == (12, 4) and not ((combos[:, 0] == 1) & (combos[:, 1] == 1)).any()
    assert len(np.unique(a.attributes, axis=0)) == 12 and a.attributes.dtype == np.float32
    np.testing.assert_array_equal(a.sources, d.train_images)
    np.testing.assert_array_equal(a.images, data.apply_attributes(a.sources, a.attributes))
    assert a.labels.tolist() == d.train_labels.tolist() and a.names == data.ATTRIBUTES
    again = data.attribute_domains(seed=0)
    assert np.array_equal(again.attributes, a.attributes)
    assert not np.array_equal(data.attribute_domains(seed=1).attributes, a.attributes)
    # without rotation, non-square images work
    rect = np.random.default_rng(0).random((40, 1, 8, 10), dtype=np.float32)
    r = data.attribute_domains(rect, seed=2, names=("thick", "thin", "inverted"))
    assert r.images.shape == rect.shape and r.attributes.shape == (40, 3) and r.labels is None
    np.testing.assert_array_equal(r.images, data.apply_attributes(rect, r.attributes, r.names))
    with pytest.raises(ValueError, match="rotation needs square images"):
        data.attribute_domains(rect)


# --- what the command line hands a model ------------------------------------------

def model_info(kind, eval_kind=None, domains=None):
    namespace = {"data_kind": kind, "eval_data_kind": eval_kind, "binary": False}
    if domains is not None:   # a constructor option with a default, as a CycleGAN model has
        namespace["__init__"] = lambda self, image_shape=(1, 8, 8), domains=domains: None
    return types.SimpleNamespace(name="dummy", cls=type("Dummy", (), namespace))


def test_load_data_gives_an_unpaired_model_its_domains():
    ds = load_data("digits", model_info("unpaired", "unpaired_truth"))
    a, b = ds.train
    assert a.shape == b.shape == (719, 1, 8, 8) and ds.n_train == 719 and ds.info["domains"] == "thin2thick"
    images_a, truth_ab, images_b, truth_ba = ds.test
    np.testing.assert_array_equal(truth_ab, data.dilate(images_a))
    np.testing.assert_array_equal(images_b, data.dilate(truth_ba))
    assert len(ds.test_labels) == len(images_a) and "719 1x8x8 images in each" in ds.describe()
    # the domains come from the model's option, or its constructor's default
    rotated = load_data("digits", model_info("unpaired", "unpaired_truth"), {"domains": "upright2rotated"})
    np.testing.assert_array_equal(rotated.test[1], np.rot90(rotated.test[0], 1, axes=(2, 3)))
    by_default = load_data("digits", model_info("unpaired", "unpaired_truth", domains="upright2rotated"))
    assert by_default.info["domains"] == "upright2rotated"
    with pytest.raises(UsageError, match=r"--set domains: unknown domains 'x'; known: thin2thick, upright2rotated"):
        load_data("digits", model_info("unpaired"), {"domains": "x"})
    with pytest.raises(UsageError, match=r"--data toy:ring gives 2-D points; use --data digits or --data mnist:DIR"):
        load_data("toy:ring", model_info("unpaired"))


def test_load_data_gives_an_attributes_model_its_fields():
    ds = load_data("digits", model_info("attributes", "attributes_truth"))
    images, attributes = ds.train
    assert images.shape == (1438, 1, 8, 8) and attributes.shape == (1438, 4)
    t_images, t_attributes, t_sources, t_labels = ds.test
    np.testing.assert_array_equal(t_images, data.apply_attributes(t_sources, t_attributes))
    np.testing.assert_array_equal(t_sources, data.digits().test_images)
    assert ds.info["attribute_names"] == data.ATTRIBUTES and t_labels.tolist() == ds.test_labels.tolist()
    plain = load_data("digits", model_info("labelled"))
    assert plain.info == {} and len(plain.train) == 2   # nothing made for a kind that needs nothing


def test_a_run_hands_an_unpaired_model_the_domains_its_option_names(tmp_path, monkeypatch):
    """Through ``train``: ``options={"domains": ...}`` picks the data, train_step gets (A, B) and
    evaluate the truths, on which the true map scores 0 and the identity does not."""
    from tinygen import models
    from tinygen.models import GenerativeModel, register
    from tinygen.nn import Parameter
    from tinygen.train import train

    class Translator(GenerativeModel):
        data_kind, eval_data_kind, default_steps = "unpaired", "unpaired_truth", 2

        def __init__(self, image_shape=(1, 8, 8), domains="thin2thick"):
            super().__init__(image_shape)
            self.w = Parameter(np.zeros(1, np.float32))
            self.transform = data.domain_transform(domains)

        def train_step(self, batch):
            a, b = batch
            assert a.shape == b.shape
            return {"loss": 0.0}

        def sample(self, n):
            return self.check_images(np.zeros((n,) + self.image_shape, np.float32))

        def evaluate(self, batch):
            a, truth_ab, b, truth_ba = (t.numpy() for t in batch)
            return {"true_map_error": float(np.abs(self.transform(a) - truth_ab).mean()),
                    "identity_error": float(np.abs(a - truth_ab).mean())}

    models.available()
    monkeypatch.setattr(models, "_REGISTRY", dict(models._REGISTRY))
    register("translator_test", kind="implicit", section="test", summary="a model of the tests")(Translator)
    result = train("translator_test", steps=2, batch_size=16, out=tmp_path / "run", quiet=True,
                   options={"domains": "upright2rotated"})
    assert result["true_map_error"] == 0 and result["identity_error"] > 0.1
    with pytest.raises(UsageError, match="unknown domains 'sideways'"):
        train("translator_test", steps=1, out=tmp_path / "bad", quiet=True, options={"domains": "sideways"})
