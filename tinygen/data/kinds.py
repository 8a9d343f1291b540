"""What a model trains on: its ``data_kind`` names the arrays every batch holds.

A data set is loaded as named arrays per split (``images``, ``labels``, ``points``, ...).
A model class says what it needs with one class attribute, ``data_kind``, and the
command line and the zoo hand ``train_step`` and ``evaluate`` exactly the fields of
that kind, in this order:

    data_kind    fields               a batch
    "image"      images               a Tensor (N, C, H, W) in [0, 1]
    "labelled"   images, labels       (images, labels): labels int64 (N,), class indices
    "toy"        points               a Tensor (N, 2)

The kinds of the translation and text-to-image GANs are made from images and
their labels (``captions.py``, ``domains.py``):

    "captioned"         images, tokens, lengths    tokens int64 (N, L) zero-padded, lengths int64 (N,)
    "captioned_truth"   ... , labels, thickness, slant: what a caption says, measured (evaluation)
    "unpaired"          images_a, images_b          row n of A and row n of B are *not* related:
                                                    two halves of equal size, cut apart
    "unpaired_truth"    images_a, truth_ab, images_b, truth_ba: each half beside its true
                                                    translation (evaluation)
    "attributes"        images, attributes          attributes float32 (N, K) of 0/1
    "attributes_truth"  images, attributes, sources, labels: the untransformed source of
                                                    each image, so any target's truth is known

The ``*_truth`` kinds are what such models name as ``eval_data_kind``: evaluate
gets the answers that training must never see. What else such a model needs is
fixed by its kind or by its own options, so a model rebuilt from a checkpoint
(which knows only the image shape and the options) has it too:

- captioned: the vocabulary is ``CAPTION_VOCABULARY``, the same for every data
  set (it is made from the phrasings, not the data). The thresholds that measure
  thickness and slant are the training split's: for 8x8 digits exactly
  ``digits_caption_attributes()``; for other data ``CaptionAttributes.fit`` on
  the evaluation batch's images and labels approximates them. (The command line
  also puts the fitted ones in ``Data.info["caption_attributes"]``.)
- unpaired: the model's constructor option ``domains`` (default "thin2thick")
  names the domains; the command line reads it (``--set domains=...``, else the
  default) to make the data, so model and data agree; ``domain_transform(domains)``
  is T.
- attributes: the names are ``ATTRIBUTES``, ``check_attributes`` checks a
  vector, and the true image of a source with target attributes c' is
  ``apply_attributes(source, c')``.

A kind of one field gets a Tensor, a kind of several a tuple of Tensors in the
order of its fields: what ``DataLoader`` yields for one array or for a tuple of
arrays. So ``batch_arrays(kind, split)`` is the whole hook: the loader it feeds
cuts batches of exactly what the model asked for, row ``n`` of every field
belonging to example ``n`` (the unpaired halves are trimmed to one length for
this reason).
"""
from typing import NamedTuple


class DataKind(NamedTuple):
    fields: tuple    # the arrays of a batch, in the order train_step gets them
    noun: str        # what they are, for messages ("1438 labelled images")


DATA_KINDS = {
    "image": DataKind(("images",), "images"),
    "labelled": DataKind(("images", "labels"), "labelled images"),
    "toy": DataKind(("points",), "2-D points"),
    "captioned": DataKind(("images", "tokens", "lengths"), "captioned images"),
    "captioned_truth": DataKind(("images", "tokens", "lengths", "labels", "thickness", "slant"),
                                "captioned images with their measured attributes"),
    "unpaired": DataKind(("images_a", "images_b"), "images in each of two unpaired domains"),
    "unpaired_truth": DataKind(("images_a", "truth_ab", "images_b", "truth_ba"),
                               "images in each of two unpaired domains, with their true translations"),
    "attributes": DataKind(("images", "attributes"), "images with attribute vectors"),
    "attributes_truth": DataKind(("images", "attributes", "sources", "labels"),
                                 "images with attribute vectors and their sources"),
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


# --- kinds made from labelled images ------------------------------------------------

DEFAULT_DOMAINS = "thin2thick"
"""The unpaired domains a model gets when it names none (its ``domains`` option)."""

_MADE = {   # kind -> the fields ``derive_splits`` makes for it from a split's images and labels
    "captioned": ("images", "tokens", "lengths", "labels", "thickness", "slant"),
    "unpaired": ("images_a", "images_b", "truth_ab", "truth_ba", "labels"),
    "attributes": ("images", "attributes", "sources", "labels"),
}
_MADE.update({f"{kind}_truth": fields for kind, fields in list(_MADE.items())})


def derived_fields(kind):
    """The fields ``derive_splits(kind, ...)`` makes from images and labels; () for a kind it does not make."""
    return _MADE.get(kind, ())


def derive_splits(kind, train, test, domains=DEFAULT_DOMAINS, attribute_names=None):
    """The training and test splits (dicts with "images" and "labels") of ``kind``, made as
    ``captioned_digits``, ``unpaired_domains(domains)`` or ``attribute_domains(names=attribute_names)``
    (None: ``ATTRIBUTES``) make them, and
    what a model of them needs to know: ``(train, test, info)``.

    info: {"vocabulary", "caption_attributes"} (the thresholds fitted on the training split
    and applied to both), {"domains", "transform"}, or {"attribute_names"}. The training
    split is drawn with seed 0 and the test split with seed 1: fixed data, like the digits
    split. An unpaired split's "labels" are those of its A half (row n of images_a).
    """
    from .captions import CAPTION_VOCABULARY, CaptionAttributes, captioned_digits
    from .domains import ATTRIBUTES, attribute_domains, domain_transform, unpaired_domains
    family = kind[:-len("_truth")] if kind.endswith("_truth") else kind
    if family == "captioned":
        fitted = CaptionAttributes.fit(train["images"], train["labels"])
        made = [captioned_digits(s["images"], s["labels"], seed=seed, attributes=fitted)._asdict()
                for s, seed in ((train, 0), (test, 1))]
        info = {"vocabulary": CAPTION_VOCABULARY, "caption_attributes": fitted}
    elif family == "unpaired":
        made = [unpaired_domains(domains, s["images"], s["labels"], seed=seed)._asdict()
                for s, seed in ((train, 0), (test, 1))]
        for m in made:
            m["labels"] = m["labels_a"]
        info = {"domains": domains, "transform": domain_transform(domains)}
    elif family == "attributes":
        names = ATTRIBUTES if attribute_names is None else tuple(attribute_names)
        made = [attribute_domains(s["images"], s["labels"], seed=seed, names=names)._asdict()
                for s, seed in ((train, 0), (test, 1))]
        info = {"attribute_names": names}
    else:
        raise ValueError(f"derive_splits: kind {kind!r} is not made from labelled images; those that are: "
                         + ", ".join(repr(k) for k in _MADE))
    fields = _MADE[kind]
    return {f: made[0][f] for f in fields}, {f: made[1][f] for f in fields}, info
