"""``tinygen.data.kinds``: a model's ``data_kind`` picks the arrays of its batches.

The batches a ``DataLoader`` cuts from ``batch_arrays(kind, split)`` are what the
kind promises: a Tensor for "image" and "toy", a pair (images, labels) for
"labelled" with row n of both from example n; a kind without an entry, or data
without a field the kind needs, is a ValueError naming what is known or missing.
"""
import numpy as np
import pytest

from tinygen import data


def split(n=10):
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 10, n)
    images = np.broadcast_to(labels[:, None, None, None], (n, 1, 3, 5)).astype(np.float32) / 10
    return {"images": images, "labels": labels.astype(np.int64)}


def test_labelled_batches_are_pairs_of_matching_rows():
    arrays = data.batch_arrays("labelled", split())
    loader = data.DataLoader(arrays, batch_size=4, shuffle=True, seed=1, drop_last=True)
    for images, labels in loader:
        assert images.shape == (4, 1, 3, 5) and labels.shape == (4,) and labels.dtype == np.int64
        # each image was made from its own label, so a shuffle that split the pairs would show
        np.testing.assert_array_equal(images.numpy()[:, 0, 0, 0], labels.numpy().astype(np.float32) / 10)


def test_one_field_kinds_give_the_array_itself():
    s = split()
    assert data.batch_arrays("image", s) is s["images"]
    points = np.zeros((7, 2), np.float32)
    assert data.batch_arrays("toy", {"points": points}) is points
    assert data.num_rows(points) == 7 and data.num_rows(data.batch_arrays("labelled", s)) == 10
    first = data.head(data.batch_arrays("labelled", s), 3)
    assert [a.shape[0] for a in first] == [3, 3]


def test_every_kind_lists_its_fields_in_order():
    assert data.data_kind("labelled").fields == ("images", "labels")
    assert set(data.DATA_KINDS) >= {"image", "labelled", "toy"}


def test_unknown_kinds_and_missing_fields_are_named():
    with pytest.raises(ValueError, match=r"unknown data_kind 'spoken'.*'image', 'labelled', 'toy'"):
        data.batch_arrays("spoken", split())
    with pytest.raises(ValueError, match=r"'labelled' needs images, labels.*only points.*missing images, labels"):
        data.batch_arrays("labelled", {"points": np.zeros((3, 2))})
