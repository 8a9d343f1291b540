"""What a model trains on: its ``data_kind`` names the arrays every batch holds.

A data set is loaded as named arrays per split (``images``, ``labels``, ``points``, ...).
A model class says what it needs with one class attribute, ``data_kind``, and the
command line and the zoo hand ``train_step`` and ``evaluate`` exactly the fields of
that kind, in this order:

    data_kind    fields               a batch
    "image"      images               a Tensor (N, C, H, W) in [0, 1]
    "labelled"   images, labels       (images, labels): labels int64 (N,), class indices
    "toy"        points               a Tensor (N, 2)

A kind of one field gets a Tensor, a kind of several a tuple of Tensors in the
order of its fields: what ``DataLoader`` yields for one array or for a tuple of
arrays. So ``batch_arrays(kind, split)`` is the whole hook: the loader it feeds
cuts batches of exactly what the model asked for, row ``n`` of every field
belonging to example ``n``. DESIGN.md's other kinds ("captioned": images, token
ids, lengths; "unpaired": images of A, images of B; "attributes": images,
attribute vectors) are one entry of ``DATA_KINDS`` each, once a data set gives
their fields.
"""
from typing import NamedTuple


class DataKind(NamedTuple):
    fields: tuple    # the arrays of a batch, in the order train_step gets them
    noun: str        # what they are, for messages ("1438 labelled images")


DATA_KINDS = {
    "image": DataKind(("images",), "images"),
    "labelled": DataKind(("images", "labels"), "labelled images"),
    "toy": DataKind(("points",), "2-D points"),
}


def data_kind(name):
    """The entry of ``name`` in ``DATA_KINDS``; an unknown kind is a ValueError naming the known ones."""
    if name not in DATA_KINDS:
        raise ValueError(f"unknown data_kind {name!r}: tinygen.data provides "
                         + ", ".join(repr(k) for k in DATA_KINDS))
    return DATA_KINDS[name]


def batch_arrays(kind, split):
    """The arrays of ``split`` (a dict of named arrays) that a model of ``kind`` trains on.

    One array for a kind of one field, else a tuple in the kind's order: what a
    ``DataLoader`` needs to yield the model's batches.
    """
    fields = data_kind(kind).fields
    missing = [f for f in fields if f not in split]
    if missing:
        raise ValueError(f"data_kind {kind!r} needs {', '.join(fields)}, but the data has only "
                         f"{', '.join(split) or 'nothing'} (missing {', '.join(missing)})")
    arrays = tuple(split[f] for f in fields)
    return arrays[0] if len(arrays) == 1 else arrays


def num_rows(arrays):
    """Examples in an array, or in a tuple of arrays with one row per example."""
    return len(arrays[0] if isinstance(arrays, tuple) else arrays)


def head(arrays, n):
    """The first ``n`` examples of an array or of each array of a tuple."""
    return tuple(a[:n] for a in arrays) if isinstance(arrays, tuple) else arrays[:n]
