"""Captioned digits: each image with a short English sentence that says what it shows.

A text-to-image GAN needs pictures with sentences. None ship with the digits, so
tinygen writes them: each caption is built from the image's label and two
attributes measured on the image itself, so what a caption claims is known to be
true and a generated image can be checked against its caption by measuring it
the same way.

The attributes (``measurements.py``: ink mass, slant, and the per-digit
thresholds ``CaptionAttributes`` fitted on the training split) say whether an
image is thick or thin and leans left, stands upright or leans right *for its
digit*; the same thresholds judge test images and a model's own samples.

Captions
--------
A caption's *meaning* is (digit, thickness, slant); every caption states all
three. Its *phrasing* is drawn per image by the seed from 4 templates x 2 ways
to write the digit x 3 words per thickness x 3 phrases per slant (72 phrasings
per meaning), e.g. "a thick seven leaning right", "the digit 7, bold and slanted
right", "an eight in slim strokes, standing straight", "tilted left: a heavy 2".
Words move about and synonyms alternate, so a text encoder has to read the
sentence rather than look it up. The vocabulary is every word of every phrasing
(``CAPTION_VOCABULARY``, the same for every data set); ``caption_meaning`` reads
a caption's meaning back from its words or token ids.
"""
import functools
import re
from typing import NamedTuple

import numpy as np

from ._checks import image_array, label_array
from .measurements import (NUM_DIGITS, SLANTS, THICKNESS, CaptionAttributes, digits_caption_attributes,
                           ink_mass, slant, slant_category, thickness)

__all__ = ["CAPTION_VOCABULARY", "MAX_CAPTION_WORDS", "CaptionAttributes", "CaptionMeaning",
           "CaptionedDigits", "SLANTS", "THICKNESS", "Vocabulary", "caption_meaning", "caption_vocabulary",
           "captioned_digits", "digits_caption_attributes", "ink_mass", "phrase", "slant", "slant_category",
           "thickness", "words_of"]


# --- vocabulary -------------------------------------------------------------------

_WORD = re.compile(r"[a-z0-9]+")


def words_of(caption):
    """The words of a caption: lowercased, split at spaces and punctuation."""
    if not isinstance(caption, str):
        raise TypeError(f"a caption must be a string, got {type(caption).__name__} {caption!r}")
    return _WORD.findall(caption.lower())


class Vocabulary:
    """Words and their token ids; id 0 is padding (no word), ``words[0] == "<pad>"``."""

    PAD = "<pad>"

    def __init__(self, words):
        words = tuple(words)
        if len(set(words)) != len(words) or self.PAD in words:
            raise ValueError("Vocabulary: words must be distinct and must not include the padding token")
        self.words = (self.PAD,) + words
        self.index = {w: k for k, w in enumerate(self.words) if k}

    def __len__(self):
        return len(self.words)

    def __eq__(self, other):
        return isinstance(other, Vocabulary) and other.words == self.words

    def __hash__(self):
        return hash(self.words)

    def __repr__(self):
        return f"Vocabulary({len(self.words) - 1} words: {' '.join(self.words[1:])})"

    def encode(self, caption):
        """The token ids of ``caption``, int64 ``(L,)``; an unknown word or no word is a ValueError."""
        words = words_of(caption)
        if not words:
            raise ValueError(f"empty caption {caption!r}: a caption needs at least one word")
        unknown = [w for w in dict.fromkeys(words) if w not in self.index]
        if unknown:
            raise ValueError(f"unknown word{'s' if len(unknown) > 1 else ''} "
                             f"{', '.join(map(repr, unknown))} in caption {caption!r}; "
                             f"the vocabulary knows: {', '.join(self.words[1:])}")
        return np.array([self.index[w] for w in words], dtype=np.int64)

    def encode_batch(self, captions):
        """``(tokens (N, L) int64 zero-padded, lengths (N,) int64)`` of a list of captions."""
        if isinstance(captions, str):
            raise TypeError("encode_batch takes a list of captions; for one caption use encode")
        encoded = [self.encode(c) for c in captions]
        lengths = np.array([len(e) for e in encoded], dtype=np.int64)
        tokens = np.zeros((len(encoded), int(lengths.max(initial=0))), dtype=np.int64)
        tokens[np.arange(tokens.shape[1]) < lengths[:, None]] = np.concatenate(encoded or [[]])
        return tokens, lengths

    def decode(self, ids):
        """The words of token ids ``(L,)`` joined by spaces, padding (0) left out."""
        ids = np.asarray(ids)
        if ids.ndim != 1 or not (np.issubdtype(ids.dtype, np.integer) or ids.size == 0):
            raise ValueError(f"decode takes a 1-D array of token ids, got shape {ids.shape} {ids.dtype}")
        bad = ids[(ids < 0) | (ids >= len(self.words))]
        if bad.size:
            raise ValueError(f"token ids {bad[:5].tolist()} are outside this vocabulary (0..{len(self.words) - 1})")
        return " ".join(self.words[k] for k in ids if k)


# --- phrasings --------------------------------------------------------------------

DIGIT_WORDS = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine")
THICK_WORDS = (("thin", "light", "slim"), ("thick", "bold", "heavy"))          # [thickness][synonym]
SLANT_PHRASES = (("leaning left", "slanted left", "tilted left"),
                 ("upright", "standing straight", "straight up"),
                 ("leaning right", "slanted right", "tilted right"))              # [slant][synonym]
TEMPLATES = ("{a} {thick} {digit} {slant}",
             "the digit {digit}, {thick} and {slant}",
             "{a} {digit} in {thick} strokes, {slant}",
             "{slant}: {a} {thick} {digit}")
PHRASINGS = (len(TEMPLATES), 2, 3, 3)   # template, digit as word or numeral, thickness word, slant phrase
NUM_PHRASINGS = int(np.prod(PHRASINGS))
NUM_MEANINGS = NUM_DIGITS * len(THICKNESS) * len(SLANTS)


def phrase(digit, thick, slant_class, phrasing):
    """The caption of meaning (digit, thick, slant_class) in phrasing ``0..NUM_PHRASINGS-1``."""
    rest, slant_word = divmod(int(phrasing), PHRASINGS[3])   # phrasing = ((t * 2 + n) * 3 + w) * 3 + s
    rest, thick_word = divmod(rest, PHRASINGS[2])
    template, numeral = divmod(rest, PHRASINGS[1])
    text = TEMPLATES[template].format(
        a="{a}", digit=str(digit) if numeral else DIGIT_WORDS[digit],
        thick=THICK_WORDS[thick][thick_word], slant=SLANT_PHRASES[slant_class][slant_word])
    # "an" before a vowel sound: of the words that can follow the article, only eight / 8
    return re.sub(r"\{a\} (\w+)", lambda w: ("an " if w[1] in ("eight", "8") else "a ") + w[1], text)


def meaning_index(digit, thick, slant_class):
    """Row of the caption table of a meaning: ``(digit * 2 + thick) * 3 + slant``."""
    return (np.asarray(digit) * len(THICKNESS) + thick) * len(SLANTS) + slant_class


def _parts():
    """What fills each placeholder of a template: the alternatives, each a string."""
    return {"a": ("a", "an"), "digit": DIGIT_WORDS + tuple(map(str, range(NUM_DIGITS))),
            "thick": sum(THICK_WORDS, ()), "slant": sum(SLANT_PHRASES, ())}


def _vocabulary():
    """Every word of every phrasing, sorted: the templates' own words and every filling."""
    fixed = [w for t in TEMPLATES for w in words_of(re.sub(r"\{\w+\}", " ", t))]
    filled = [w for fillings in _parts().values() for f in fillings for w in words_of(f)]
    return Vocabulary(sorted(set(fixed + filled)))


def _longest_caption():
    """Words in the longest caption: a template's own words plus the longest filling of each slot."""
    longest = {k: max(len(words_of(f)) for f in v) for k, v in _parts().items()}
    return max(len(words_of(re.sub(r"\{\w+\}", " ", t))) + sum(longest[k] for k in re.findall(r"\{(\w+)\}", t))
               for t in TEMPLATES)


CAPTION_VOCABULARY = _vocabulary()
"""The vocabulary of every captioned data set (it depends on the phrasings only)."""

MAX_CAPTION_WORDS = _longest_caption()
"""The longest caption in words: the width of ``CaptionedDigits.tokens``."""


def caption_vocabulary():
    """``CAPTION_VOCABULARY``: every word the captions use, sorted; id 0 is padding."""
    return CAPTION_VOCABULARY


class _CaptionTable(NamedTuple):
    captions: np.ndarray   # (NUM_MEANINGS * NUM_PHRASINGS,) object: every caption there is
    tokens: np.ndarray     # (same, MAX_CAPTION_WORDS) int64, zero-padded
    lengths: np.ndarray    # (same,) int64


@functools.lru_cache(maxsize=1)
def _caption_table():
    """Every caption of every meaning and phrasing, encoded once (on first use): captioned_digits
    indexes it, so captioning N images costs no Python work per image."""
    texts = [phrase(d, t, s, p) for d in range(NUM_DIGITS) for t in range(len(THICKNESS))
             for s in range(len(SLANTS)) for p in range(NUM_PHRASINGS)]
    tokens, lengths = CAPTION_VOCABULARY.encode_batch(texts)
    tokens = np.pad(tokens, ((0, 0), (0, MAX_CAPTION_WORDS - tokens.shape[1])))
    for a in (tokens, lengths):
        a.setflags(write=False)
    return _CaptionTable(np.array(texts, dtype=object), tokens, lengths)


# --- the data set -----------------------------------------------------------------

class CaptionedDigits(NamedTuple):
    """Images with captions; row n of every array belongs to image n.

    images      float32 (N, C, H, W), a copy of the images given
    tokens      int64 (N, MAX_CAPTION_WORDS), token ids of the captions, zero-padded
    lengths     int64 (N,), words in each caption
    captions    list of N str
    labels      int64 (N,), the digit
    thickness   int64 (N,), 0 thin / 1 thick (``THICKNESS``)
    slant       int64 (N,), 0 left / 1 upright / 2 right (``SLANTS``)
    vocabulary  ``CAPTION_VOCABULARY``
    attributes  the ``CaptionAttributes`` the attributes were measured with
    """

    images: np.ndarray
    tokens: np.ndarray
    lengths: np.ndarray
    captions: list
    labels: np.ndarray
    thickness: np.ndarray
    slant: np.ndarray
    vocabulary: Vocabulary
    attributes: CaptionAttributes

    def __repr__(self):
        return (f"CaptionedDigits(images={self.images.shape}, tokens={self.tokens.shape}, "
                f"captions[0]={self.captions[0] if self.captions else None!r})")


def captioned_digits(images=None, labels=None, seed=0, attributes=None):
    """Each image with a caption of its digit, thickness and slant (see the module docstring).

    images, labels  (N, C, H, W) and (N,) digits 0..9; None: the bundled digits' training split
    seed            picks each caption's phrasing (the same seed, the same captions)
    attributes      the ``CaptionAttributes`` to measure with; None: fitted on these images
                    (pass the training split's to caption a test split)
    """
    if images is None:
        if labels is not None:
            raise ValueError("captioned_digits: labels given without images")
        from .digits import digits
        ds = digits()
        images, labels = ds.train_images, ds.train_labels
    elif labels is None:
        raise ValueError("captioned_digits: images need their digit labels (the captions name the digit)")
    x = np.array(image_array(images, "captioned_digits"), dtype=np.float32)   # a copy: never the caller's
    y = label_array(labels, len(x), "captioned_digits", NUM_DIGITS).copy()
    attributes = CaptionAttributes.fit(x, y) if attributes is None else attributes
    thick, slant_class = attributes.measure(x, y)
    from .toy import _rng
    phrasing = _rng(seed).integers(NUM_PHRASINGS, size=len(x))
    table = _caption_table()
    row = meaning_index(y, thick, slant_class) * NUM_PHRASINGS + phrasing
    return CaptionedDigits(x, table.tokens[row], table.lengths[row], table.captions[row].tolist(), y,
                           thick, slant_class, CAPTION_VOCABULARY, attributes)


# --- reading a caption's meaning back ---------------------------------------------

class CaptionMeaning(NamedTuple):
    """What a caption says: digit 0..9, thickness 0/1, slant 0/1/2; -1 where it says nothing
    (or contradicts itself). Ints for one caption, int64 (N,) arrays for several."""

    digit: object
    thickness: object
    slant: object


def _word_table(vocabulary):
    """(3, V) int64: the digit, thickness and slant each word states, -1 for none."""
    table = np.full((3, len(vocabulary)), -1, dtype=np.int64)
    entries = [(0, w, d) for d, w in enumerate(DIGIT_WORDS)] + [(0, str(d), d) for d in range(NUM_DIGITS)]
    entries += [(1, w, t) for t, ws in enumerate(THICK_WORDS) for w in ws]
    entries += [(2, "left", 0), (2, "upright", 1), (2, "straight", 1), (2, "right", 2)]
    for row, word, value in entries:
        if word in vocabulary.index:
            table[row, vocabulary.index[word]] = value
    return table


def caption_meaning(captions, vocabulary=CAPTION_VOCABULARY):
    """The meaning of a caption (str or token ids (L,)) or of several (list of str or tokens (N, L)).

    Token ids are read against ``vocabulary`` (padding 0 says nothing). A quality
    stated once, or by several words that agree, is read; none or a contradiction is -1.
    """
    if isinstance(captions, str) or (isinstance(captions, (list, tuple)) and captions
                                     and all(isinstance(c, str) for c in captions)):
        single = isinstance(captions, str)
        tokens, _ = vocabulary.encode_batch([captions] if single else list(captions))
    else:
        tokens = np.asarray(captions if len(captions) else np.zeros((0, 0), np.int64))
        single = tokens.ndim == 1
        if tokens.ndim not in (1, 2) or not np.issubdtype(tokens.dtype, np.integer):
            raise ValueError(f"caption_meaning: give captions (str or a list of str) or token ids "
                             f"(L,) or (N, L) integers, got shape {tokens.shape} {tokens.dtype}")
        tokens = np.atleast_2d(tokens)
        if tokens.size and (tokens.min() < 0 or tokens.max() >= len(vocabulary)):
            raise ValueError(f"caption_meaning: token ids must be in 0..{len(vocabulary) - 1}")
    stated = _word_table(vocabulary)[:, tokens]                           # (3, N, L)
    values = np.arange(NUM_DIGITS)
    present = (stated[..., None] == values).any(axis=2)                   # (3, N, 10): said somewhere
    meaning = np.where(present.sum(axis=2) == 1, present.argmax(axis=2), -1)
    if single:
        return CaptionMeaning(*(int(v[0]) for v in meaning))
    return CaptionMeaning(*meaning)
