"""The text side of the text-to-image GAN: caption token ids -> an embedding phi(t).

A caption t is a sequence of word ids w_1 .. w_T (``tinygen.data.CAPTION_VOCABULARY``,
id 0 padding), a batch of them zero-padded to (N, L) with ``lengths`` (N,) giving
each caption's T_n <= L. Each word id looks up a learned vector e_t = E[w_t]
(``nn.Embedding``, E (V, embed_dim)), and two readers are written here:

    "lstm"   h_t = LSTM(e_t, h_{t-1}),   phi(t) = h_{T_n}          (N, text_dim)
             (the fused scan ``F.lstm``; the state after the caption's last word,
             so the padding after it is never read)
    "bag"    phi(t) = 1/T_n sum_{t <= T_n} e_t                      (N, embed_dim)
             (the mean of the caption's word vectors, padding masked out)

Which to use. Reed et al. embed a sentence with a char-CNN-RNN, a reader of the
whole sequence; the LSTM here is that reader at word level. But does the order of
the words matter for *these* captions? No caption's meaning depends on where a word
stands: each quality is stated by words that mean the same wherever they occur
("left" and "right" only ever name a slant, "straight" and "upright" always mean
upright, "bold" / "heavy" / "thick" always thick), and there is no negation. So the
set of words determines the meaning, and the bag of embeddings is a sufficient
reader: it still has to learn that "bold", "heavy" and "thick" (or "7" and "seven")
mean the same, only not where they stand. It is the default: it learns the captions
faster than the LSTM in the GAN (``text2image.py``'s docstring gives both runs'
figures), costs less, and, being plain Tensor ops, can be differentiated twice, which
the LSTM scan refuses (no gradient penalty through it; GAN-CLS uses none). The LSTM
(``encoder="lstm"``) is kept for captions whose order would matter ("not thick", "a
seven left of a one"), which these never are.

Everything about the words runs on the host (token ids are a few small integers per
caption); the Embedding moves the looked-up ids to the weights' device.
"""
import numpy as np

from .. import backend
from .. import functional as F
from ..autograd.tensor import Tensor
from ..data import CAPTION_VOCABULARY, SLANTS, THICKNESS
from ..data.captions import DIGIT_WORDS, NUM_PHRASINGS, phrase
from ..nn import LSTM, Embedding, Module

ENCODERS = ("lstm", "bag")


class TextEncoder(Module):
    """phi(t) of the module docstring: ``forward(tokens (N, L), lengths (N,)) -> (N, dim)``."""

    def __init__(self, vocab_size, embed_dim, text_dim, kind="lstm"):
        super().__init__()
        if kind not in ENCODERS:
            raise ValueError(f"text2image: unknown text encoder {kind!r}; the encoders are "
                             f"{', '.join(map(repr, ENCODERS))}")
        self.kind = kind
        self.embedding = Embedding(vocab_size, embed_dim)
        if kind == "lstm":
            self.lstm = LSTM(embed_dim, text_dim)
        self.dim = text_dim if kind == "lstm" else embed_dim

    def forward(self, tokens, lengths):
        """tokens int (N, L) and lengths int (N,), host arrays checked by ``check_tokens``."""
        e = self.embedding(tokens)                                   # (N, L, E)
        n, width = tokens.shape
        if self.kind == "bag":
            keep = np.arange(width)[None, :] < lengths[:, None]      # (N, L): the caption's own words
            weights = (keep / lengths[:, None]).astype(e.dtype)[:, :, None]
            return F.sum(e * Tensor._make(backend.to_device(weights, e.device)), axis=1)
        y, _ = self.lstm(F.swapaxes(e, 0, 1))                        # (L, N, H)
        last = tuple(backend.to_device(i, e.device) for i in (lengths - 1, np.arange(n)))
        return y[last]                                               # h at each caption's last word


# --- caption bookkeeping (host side) -----------------------------------------------

def _host(a):
    return backend.to_device(a.data if isinstance(a, Tensor) else a, "cpu")


def check_tokens(tokens, lengths, n, who):
    """(tokens int64 (n, L), lengths int64 (n,)) as host arrays, checked against the vocabulary."""
    t, k = np.asarray(_host(tokens)), np.asarray(_host(lengths))
    if t.ndim != 2 or t.shape[0] != n or t.dtype.kind not in "iu":
        raise ValueError(f"{who}: tokens must be integer token ids of shape (N, L) with N = {n} "
                         f"(one caption per image), got shape {t.shape} {t.dtype}")
    if k.shape != (n,) or k.dtype.kind not in "iu":
        raise ValueError(f"{who}: lengths must be {n} integers (words per caption), got shape {k.shape} {k.dtype}")
    if n and (k.min() < 1 or k.max() > t.shape[1]):
        raise ValueError(f"{who}: lengths must lie in 1..{t.shape[1]} (tokens {t.shape}); got values from "
                         f"{k.min()} to {k.max()} (an empty caption has no words to read)")
    if t.size and (t.min() < 0 or t.max() >= len(CAPTION_VOCABULARY)):
        raise ValueError(f"{who}: token ids must lie in 0..{len(CAPTION_VOCABULARY) - 1} "
                         f"(CAPTION_VOCABULARY), got values from {t.min()} to {t.max()}")
    return t.astype(np.int64), k.astype(np.int64)


def encode_captions(captions, who):
    """(tokens, lengths) of a list of caption strings; an unknown word or an empty caption
    is the Vocabulary's ValueError, which names it."""
    if isinstance(captions, str) or not isinstance(captions, (list, tuple)):
        raise TypeError(f"{who}: captions must be a list of strings (for one caption: [caption]), "
                        f"got {type(captions).__name__} {captions!r}")
    if not captions:
        raise ValueError(f"{who}: captions is an empty list; give at least one caption")
    return CAPTION_VOCABULARY.encode_batch(list(captions))


def join_tokens(*pairs):
    """Several (tokens, lengths) batches as one, zero-padded to the widest."""
    width = max(t.shape[1] for t, _ in pairs)
    tokens = np.concatenate([np.pad(t, ((0, 0), (0, width - t.shape[1]))) for t, _ in pairs])
    return tokens, np.concatenate([k for _, k in pairs])


def random_captions(digits, rng):
    """A caption of each digit in ``digits`` (int array), with thickness, slant and phrasing
    drawn from ``rng``: a list of str."""
    thick = rng.integers(len(THICKNESS), size=len(digits))
    slant = rng.integers(len(SLANTS), size=len(digits))
    phrasing = rng.integers(NUM_PHRASINGS, size=len(digits))
    return [phrase(int(d), int(t), int(s), int(p)) for d, t, s, p in zip(digits, thick, slant, phrasing)]


NUM_DIGITS = len(DIGIT_WORDS)
