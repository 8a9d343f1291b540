"""The data a run trains on: ``--data digits|mnist:DIR|toy:NAME`` as the model's kind of batches.

A source is loaded as named arrays per split (``images``, ``labels``, ``points``),
and the model's ``data_kind`` picks the ones it trains on (``tinygen.data.kinds``):
an image model gets images, a conditional one images and labels, a 2-D model
points. Captions, unpaired domains and attribute domains are made from the
images and labels, only for a model whose kind needs them
(``tinygen.data.derive_splits``; the domains from the model's ``domains`` option).
Every mistake is a ``UsageError`` naming the sources or values that would fit.
"""
import inspect
import os

from . import data as datasets
from .run_config import UsageError

TOY_TRAIN, TOY_TEST = 10000, 2000

# Every --data source: the named arrays each of its splits holds, and how it is written.
SOURCES = {
    "digits": (("images", "labels"), "digits"),
    "mnist": (("images", "labels"), "mnist:DIR"),
    "toy": (("points",), "toy:NAME"),
}


class Data:
    """A data set's training and test arrays as the model will see them (binarized if it asks).

    ``train`` and ``test`` are what the model's ``data_kind`` trains on: one array,
    or a tuple of arrays with one row per example (``tinygen.data.batch_arrays``).
    """

    def __init__(self, spec, kind, train, test, note="", test_labels=None, info=None):
        self.spec, self.kind, self.train, self.test, self.note = spec, kind, train, test, note
        self.test_labels = test_labels   # digit labels, when the source has them: for pictures only
        self.info = info or {}           # what made data tells its model (derive_splits): vocabulary, ...
        first = train[0] if isinstance(train, tuple) else train
        self.shape = tuple(first.shape[1:])
        self.n_train, self.n_test = datasets.num_rows(train), datasets.num_rows(test)

    def describe(self):
        kind = datasets.data_kind(self.kind)
        shape = "x".join(map(str, self.shape)) + " " if kind.fields[0].startswith("images") else ""
        return f"{self.spec} ({self.n_train} {self.note}{shape}{kind.noun})"


def load_data(spec, info, options=None):
    """``digits``, ``mnist:DIR`` or ``toy:NAME`` as a ``Data`` for the model ``info`` built with
    ``options`` (the run's ``--set`` options; only ``domains`` is read, None: the model's default)."""
    spec = spec or "digits"
    source, _, arg = spec.partition(":")
    toy_names = ", ".join(sorted(datasets.TOY_SETS))
    if source not in SOURCES or (source == "digits" and arg):
        raise UsageError(f"unknown --data {spec!r}: expected digits, mnist:DIR or toy:NAME "
                         f"(NAME one of {toy_names})")
    if source == "toy" and arg not in datasets.TOY_SETS:
        raise UsageError(f"--data {spec}: unknown toy set {arg!r}; known: toy:"
                         + ", toy:".join(sorted(datasets.TOY_SETS)))
    kind_name = data_kind_for(info, source)
    kind = _data_kind_of(info, kind_name)
    made = _made_kind(info, kind_name)
    _check_source_fits(info, kind, spec, source, made)
    eval_name = _eval_kind(info, kind_name, _source_fields(source, made))
    train, test = _load_source(source, arg, spec)
    note = ""
    if info.cls.binary and "images" in train:
        # binary models need {0, 1} pixels; a fixed threshold gives the same data every run
        train["images"], test["images"] = datasets.binarize(train["images"]), datasets.binarize(test["images"])
        note = "binarized "
    made_info = {}
    if made is not None:
        train, test, made_info = _derive(info, made, train, test, options, spec)
    ds = Data(spec, kind_name, datasets.batch_arrays(kind_name, train),
              datasets.batch_arrays(eval_name, test), note=note,
              test_labels=test.get("labels"), info=made_info)
    for split, count in (("training", ds.n_train), ("test", ds.n_test)):
        if count == 0:   # no test examples would mean no test metrics, without a word
            raise UsageError(f"--data {spec}: its {split} split has no examples")
    return ds


def _eval_kind(info, kind_name, fields):
    """What ``evaluate`` gets: the training kind, or the class's ``eval_data_kind`` where the
    source has its ``fields`` (InfoGAN trains on images alone but is scored against the labels)."""
    wanted = getattr(info.cls, "eval_data_kind", None)
    if wanted and set(datasets.data_kind(wanted).fields) <= set(fields):
        return wanted
    return kind_name


def _made_kind(info, kind_name):
    """The kind whose fields are made from the images and labels (captions, domains): the
    training kind, else the ``eval_data_kind``, when either is such a kind; else None."""
    for name in (kind_name, getattr(info.cls, "eval_data_kind", None)):
        if name and datasets.derived_fields(name):
            return name
    return None


def _source_fields(source, made=None):
    """The fields a source gives: its own, and those ``made`` makes from its images and labels."""
    given = SOURCES[source][0]
    if made is not None and {"images", "labels"} <= set(given):
        return tuple(dict.fromkeys(given + datasets.derived_fields(made)))
    return given


def _derive(info, made, train, test, options, spec):
    """The splits of the made kind ``made``; a bad ``domains`` or ``attribute_names`` option or
    image shape is a UsageError."""
    domains, names = _domains_option(info, options), _option(info, options, "attribute_names", None)
    if made.startswith("unpaired") and domains not in datasets.UNPAIRED_DOMAINS:
        raise UsageError(f"--set domains: unknown domains {domains!r}; known: {', '.join(datasets.UNPAIRED_DOMAINS)}")
    if made.startswith("attributes") and names is not None:
        try:
            datasets.attribute_combinations(names)
        except (TypeError, ValueError) as exc:
            raise UsageError(f"--set attribute_names={names!r}: {exc}") from None
    try:
        return datasets.derive_splits(made, train, test, domains=domains, attribute_names=names)
    except ValueError as exc:   # images the transforms cannot take (a quarter turn of a non-square image)
        raise UsageError(f"--data {spec}: {exc}") from None


def _domains_option(info, options):
    """The unpaired domains a model asked for: ``--set domains=``, else its constructor's default."""
    if options and "domains" in options:
        return options["domains"]
    domains = _option(info, options, "domains", None)
    return domains if isinstance(domains, str) else datasets.DEFAULT_DOMAINS


def _option(info, options, key, otherwise):
    """``--set key=``, else the model constructor's default for ``key``, else ``otherwise``."""
    if options and key in options:
        return options[key]
    param = inspect.signature(info.cls.__init__).parameters.get(key)
    return otherwise if param is None or param.default is param.empty else param.default


def data_kind_for(info, source):
    """The data kind a model trains on from ``source``: its ``data_kind``, or for a model class
    that takes several (``data_kinds``, e.g. the GAN's images or 2-D points) the first one the
    source gives."""
    for name in getattr(info.cls, "data_kinds", ()):
        if set(datasets.data_kind(name).fields) <= set(SOURCES[source][0]):
            return name
    return info.cls.data_kind


def _data_kind_of(info, name=None):
    try:
        return datasets.data_kind(info.cls.data_kind if name is None else name)
    except ValueError as exc:
        raise UsageError(f"model {info.name!r}: {exc}") from None


def _check_source_fits(info, kind, spec, source, made=None):
    """A source that lacks a field the model's kind needs is refused, naming the sources that fit."""
    if set(kind.fields) <= set(_source_fields(source, made)):
        return
    fitting = [usage for name, (_, usage) in SOURCES.items()
               if set(kind.fields) <= set(_source_fields(name, made))]
    hint = (" or ".join(f"--data {u}" for u in fitting) if fitting else "no --data source gives that yet")
    if "toy:NAME" in fitting:
        hint += f" (NAME one of {', '.join(sorted(datasets.TOY_SETS))})"
    given = SOURCES[source][0]
    has = "2-D points" if given == ("points",) else " and ".join(given)
    raise UsageError(f"{info.name!r} trains on {kind.noun} (data_kind {info.cls.data_kind!r}), but "
                     f"--data {spec} gives {has}; use {hint}")


def _load_source(source, arg, spec):
    """The training and test splits of a source, each a dict of named arrays."""
    if source == "toy":
        # a fixed data set, like the digits split: the run's seed changes the run, not the data
        return ({"points": datasets.toy(arg, TOY_TRAIN, seed=0)},
                {"points": datasets.toy(arg, TOY_TEST, seed=1)})
    if source == "digits":
        ds = datasets.digits()
    else:
        if not arg:
            raise UsageError("--data mnist:DIR needs the folder that holds the four MNIST IDX files")
        try:
            ds = datasets.mnist(os.path.expanduser(arg))   # mnist:~/data/mnist: no shell expands that ~
        except (FileNotFoundError, ValueError) as exc:   # missing files / IDXFormatError
            raise UsageError(str(exc)) from None
    return ({"images": ds.train_images, "labels": ds.train_labels},
            {"images": ds.test_images, "labels": ds.test_labels})
