"""MNIST from the four standard IDX files in a folder you already have.

tinygen never downloads anything: ``mnist(root)`` reads the files that Yann LeCun's
MNIST page (and its many mirrors) distribute, plain or gzipped:

    train-images-idx3-ubyte   train-labels-idx1-ubyte
    t10k-images-idx3-ubyte    t10k-labels-idx1-ubyte

The IDX format is tiny: a 4-byte magic number (two zero bytes, a type code where
0x08 means unsigned bytes, and the number of dimensions), then one big-endian
uint32 per dimension, then the values in C order. Reading it is one
``numpy.frombuffer`` for the header and one for the body; every way the file can
disagree with its header is reported with the file's name, because a half-copied
download is the usual cause.

The same reader works for the files of Fashion-MNIST and KMNIST, which use the
same names and format.
"""
import gzip
import os
import zlib

import numpy as np

from .digits import Dataset

MNIST_FILES = {
    "train_images": "train-images-idx3-ubyte",
    "train_labels": "train-labels-idx1-ubyte",
    "test_images": "t10k-images-idx3-ubyte",
    "test_labels": "t10k-labels-idx1-ubyte",
}
"""Which IDX file feeds which ``Dataset`` field (each may also end in ``.gz``)."""

_WHERE = ("Download them from Yann LeCun's MNIST page (yann.lecun.com/exdb/mnist) or any "
          "mirror of it, plain or .gz, into that folder; tinygen itself never downloads: "
          + ", ".join(MNIST_FILES.values()))

_UBYTE = 0x08  # the IDX type code of unsigned bytes, the only one MNIST uses


class IDXFormatError(ValueError):
    """An IDX file whose bytes do not form a valid file of the expected kind."""


def mnist(root):
    """Read MNIST from the folder ``root`` into a ``Dataset``.

    Images come back as float32 ``(N, 1, 28, 28)`` in [0, 1] (``byte / 255``),
    labels as int64 ``(N,)``: 60000 training and 10000 test images for real MNIST.
    For each file the plain name is used if present, else ``name + ".gz"``.

    Raises ``FileNotFoundError`` naming every missing file and the folder, and
    ``IDXFormatError`` (a ``ValueError``) naming the file when one is corrupt.
    """
    root = os.fspath(root)
    if not os.path.isdir(root):
        raise FileNotFoundError(f"mnist: folder {root!r} does not exist; it should hold the four "
                                f"MNIST IDX files. {_WHERE}")
    paths, missing = {}, []
    for field, name in MNIST_FILES.items():
        for candidate in (name, name + ".gz"):
            if os.path.isfile(os.path.join(root, candidate)):
                paths[field] = os.path.join(root, candidate)
                break
        else:
            missing.append(name)
    if missing:
        raise FileNotFoundError(f"mnist: {len(missing)} of the 4 MNIST files missing from folder "
                                f"{root!r}: {', '.join(missing)} (looked for each plain and as .gz). "
                                f"{_WHERE}")

    arrays = {}
    for split in ("train", "test"):
        images = read_idx(paths[f"{split}_images"], ndim=3)
        labels = read_idx(paths[f"{split}_labels"], ndim=1)
        if len(images) != len(labels):
            raise IDXFormatError(f"mnist: {paths[f'{split}_images']!r} holds {len(images)} images but "
                                 f"{paths[f'{split}_labels']!r} holds {len(labels)} labels; "
                                 "one of the two files is from another set or was cut short")
        # /255 in float32: the [0, 1] convention of every tinygen image set.
        arrays[f"{split}_images"] = (images.astype(np.float32) / np.float32(255.0))[:, None, :, :]
        arrays[f"{split}_labels"] = labels.astype(np.int64)
    if arrays["train_images"].shape[2:] != arrays["test_images"].shape[2:]:
        raise IDXFormatError(f"mnist: training images are {arrays['train_images'].shape[2:]} pixels but "
                             f"test images {arrays['test_images'].shape[2:]}, in folder {root!r}")
    return Dataset(**arrays)


def read_idx(path, ndim=None):
    """Read one IDX file of unsigned bytes (plain or ``.gz``) into a uint8 array.

    ``ndim``, when given, is the number of dimensions the caller expects (3 for
    images, 1 for labels); a file with another number is reported as the wrong kind.
    The result is a read-only view of the file's bytes (no copy); ``mnist()``
    converts it to float32 anyway.
    """
    path = os.fspath(path)
    try:
        with open(path, "rb") as f:
            raw = f.read()
    except OSError as exc:
        raise FileNotFoundError(f"cannot read IDX file {path!r}: {exc.strerror or exc}") from None
    if path.endswith(".gz"):
        try:
            raw = gzip.decompress(raw)
        except (OSError, EOFError, zlib.error) as exc:
            # BadGzipFile (an OSError) for a foreign file, EOFError for a cut-short one.
            raise IDXFormatError(f"IDX file {path!r} is not a valid gzip file "
                                 f"({type(exc).__name__}: {exc}); download it again") from None

    if len(raw) < 4:
        raise IDXFormatError(f"IDX file {path!r} is truncated: {len(raw)} bytes, "
                             "shorter than the 4-byte magic number")
    zero0, zero1, type_code, n_dims = raw[0], raw[1], raw[2], raw[3]
    if zero0 != 0 or zero1 != 0:
        raise IDXFormatError(f"IDX file {path!r} has a bad magic number 0x{raw[:4].hex()}: an IDX "
                             "file starts with two zero bytes (is it still gzipped without a .gz name, "
                             "or not an IDX file at all?)")
    if type_code != _UBYTE:
        raise IDXFormatError(f"IDX file {path!r} has type code 0x{type_code:02x} in its magic number "
                             f"0x{raw[:4].hex()}; MNIST files hold unsigned bytes (0x08)")
    if ndim is not None and n_dims != ndim:
        kind = {1: "a label file", 3: "an image file"}.get(ndim, f"a {ndim}-d file")
        raise IDXFormatError(f"IDX file {path!r} has {n_dims} dimensions (magic number 0x{raw[:4].hex()}) "
                             f"but {kind} has {ndim}; are the file names swapped?")

    header_end = 4 + 4 * n_dims
    if len(raw) < header_end:
        raise IDXFormatError(f"IDX file {path!r} is truncated: {len(raw)} bytes, shorter than its "
                             f"{header_end}-byte header")
    # '>u4': the dimension sizes are big-endian unsigned 32-bit integers.
    shape = tuple(int(d) for d in np.frombuffer(raw, dtype=">u4", count=n_dims, offset=4))
    expected = int(np.prod(shape, dtype=np.int64))
    body = len(raw) - header_end
    if body != expected:
        what = "truncated" if body < expected else "longer than its header says"
        raise IDXFormatError(f"IDX file {path!r} is {what}: its header says shape {shape}, that is "
                             f"{expected} values, but it holds {body} bytes after the header")
    return np.frombuffer(raw, dtype=np.uint8, offset=header_end).reshape(shape)


def write_idx(path, array):
    """Write a uint8 array as an IDX file (gzipped when ``path`` ends in ``.gz``).

    The inverse of ``read_idx``; tests use it to make tiny MNIST-shaped folders,
    and it is handy for exporting a subset.
    """
    array = np.asarray(array)
    if array.dtype != np.uint8:
        raise ValueError(f"write_idx: IDX files here hold unsigned bytes; got dtype {array.dtype}")
    header = bytes([0, 0, _UBYTE, array.ndim]) + np.asarray(array.shape, dtype=">u4").tobytes()
    raw = header + np.ascontiguousarray(array).tobytes()
    opener = gzip.open if os.fspath(path).endswith(".gz") else open
    with opener(path, "wb") as f:
        f.write(raw)
