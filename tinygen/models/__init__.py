"""The model registry: every generative model registers itself by name.

    model = tinygen.models.build("bernoulli", image_shape=(1, 8, 8))
    tinygen.models.available()        # ['bernoulli', ...]

Every model has the same small surface (``base.GenerativeModel``), so the command
line, the zoo and the tests treat them alike:

    losses  = model.train_step(batch)   # one optimisation step -> {"loss": float, ...}
    images  = model.sample(n)           # Tensor in the data's range
    metrics = model.evaluate(batch)     # {"nll_nats": ...} for explicit models
    model.state_dict() / model.load_state_dict(state)

A model file registers its class with ``@register("name", kind=..., section=...,
summary=...)``; adding a model needs no change anywhere else.
"""
import difflib
import importlib

from .base import GenerativeModel

_REGISTRY = {}
# model files imported on first use of the registry (each registers itself)
_MODEL_MODULES = ["bernoulli", "fvsbn", "nade", "pixelrnn", "pixelcnn", "vae", "aae", "wae",
                  "gan", "dcgan", "infogan", "text2image", "cyclegan", "stargan", "progan"]


class ModelInfo:
    __slots__ = ("name", "cls", "kind", "section", "summary", "tested")

    def __init__(self, name, cls, kind, section, summary, tested=""):
        self.name, self.cls, self.kind, self.section, self.summary = name, cls, kind, section, summary
        self.tested = tested

    def __repr__(self):
        return f"ModelInfo({self.name!r}, kind={self.kind!r}, section={self.section!r})"


def register(name, kind, section, summary, tested=""):
    """Class decorator: make ``cls`` buildable as ``build(name, ...)``.

    kind: 'explicit' (gives log p(x)) or 'implicit' (a sampler only). tested: the
    properties the model's tests prove, one line (README's model table shows it).
    """
    if kind not in ("explicit", "implicit"):
        raise ValueError(f"register: kind must be 'explicit' or 'implicit', got {kind!r}")

    def wrap(cls):
        if name in _REGISTRY and _REGISTRY[name].cls is not cls:
            raise ValueError(f"register: a model named {name!r} is already registered "
                             f"({_REGISTRY[name].cls.__module__}.{_REGISTRY[name].cls.__name__})")
        if not issubclass(cls, GenerativeModel):
            raise TypeError(f"register: {cls.__name__} must subclass tinygen.models.GenerativeModel")
        cls.name, cls.kind = name, kind
        _REGISTRY[name] = ModelInfo(name, cls, kind, section, summary, tested)
        return cls
    return wrap


def _load_all():
    for m in _MODEL_MODULES:
        importlib.import_module(f".{m}", __name__)


def available():
    """Names of every registered model, sorted."""
    _load_all()
    return sorted(_REGISTRY)


def registered():
    """Names of every registered model in the order of ``_MODEL_MODULES`` (the notes' order; models
    registered from elsewhere after them, in the order they registered)."""
    _load_all()
    position = {module: i for i, module in enumerate(_MODEL_MODULES)}
    return sorted(_REGISTRY, key=lambda n: position.get(_REGISTRY[n].cls.__module__.rpartition(".")[2],
                                                         len(position)))


def info(name):
    """The registry entry of ``name`` (class, kind, section of the notes, summary)."""
    _load_all()
    if name not in _REGISTRY:
        close = difflib.get_close_matches(name, list(_REGISTRY), n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        raise KeyError(f"unknown model {name!r}{hint}; known models: {', '.join(sorted(_REGISTRY))}")
    return _REGISTRY[name]


def build(name, **options):
    """Construct the model registered as ``name`` with its options (image_shape, lr, ...)."""
    return info(name).cls(**options)


__all__ = ["GenerativeModel", "register", "available", "info", "build"]
