"""MNIST from the four standard IDX files in a folder you already have.

tinygen never downloads anything: ``mnist(root)`` reads the files that Yann LeCun's
MNIST page (and its many mirrors) distribute, plain or gzipped:

    train-images-idx3-ubyte   train-labels-idx1-ubyte
    t10k-images-idx3-ubyte    t10k-labels-idx1-ubyte

The IDX format is tiny: a 4-byte magic number (two zero bytes, a type code where
0x08 means unsigned bytes, and the number of dimensions), then one big-endian
uint32 per dimension, then the values in C order. Every way the file can
disagree with its header is reported with the file's name, because a half-copied
download is the usual cause.

The header is read first, and it bounds the rest: the body must hold exactly
``prod(shape)`` bytes, so a plain file's size is checked before its body is read,
and a gzipped file is inflated only up to that many bytes (plus one, to tell a
file longer than its header). A header claiming more than the compressed file
could hold (deflate expands at most about 1032:1) is refused before anything is
inflated, so a small damaged or hostile file cannot make the reader allocate
gigabytes. An empty split (0 images) is an error: nothing could be learned or
measured on it.

The same reader works for the files of Fashion-MNIST and KMNIST, which use the
same names and format.
"""
import gzip
import math
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
MAX_DEFLATE_RATIO = 1032  # deflate's largest expansion: one 258-byte match per 2 bits, about 1032:1


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
    if os.path.exists(root) and not os.path.isdir(root):
        raise FileNotFoundError(f"mnist: {root!r} is a file, not a folder; give the folder that holds "
                                f"the four MNIST IDX files. {_WHERE}")
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
        if len(images) == 0:
            raise IDXFormatError(f"mnist: {paths[f'{split}_images']!r} holds 0 images: the {split} split "
                                 "is empty")
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
    The result is a read-only view of the body's bytes; ``mnist()`` converts it to
    float32 anyway.
    """
    path = os.fspath(path)
    try:
        f = open(path, "rb")
        size = os.fstat(f.fileno()).st_size
    except OSError as exc:
        raise FileNotFoundError(f"cannot read IDX file {path!r}: {exc.strerror or exc}") from None
    gz = path.endswith(".gz")
    with f:
        try:
            stream = gzip.GzipFile(fileobj=f, mode="rb") if gz else f
            shape, header_end = _read_header(stream, path, ndim)
            body = _read_body(stream, path, shape, header_end, size, gz)
        except (OSError, EOFError, zlib.error) as exc:
            if not gz:
                raise
            # BadGzipFile (an OSError) for a foreign file, EOFError for a cut-short one.
            raise IDXFormatError(f"IDX file {path!r} is not a valid gzip file "
                                 f"({type(exc).__name__}: {exc}); download it again") from None
    return np.frombuffer(body, dtype=np.uint8).reshape(shape)


def _read_header(f, path, ndim):
    """The shape an IDX header declares, and the header's size in bytes."""
    magic = f.read(4)
    if len(magic) < 4:
        raise IDXFormatError(f"IDX file {path!r} is truncated: {len(magic)} bytes, "
                             "shorter than the 4-byte magic number")
    zero0, zero1, type_code, n_dims = magic
    if zero0 != 0 or zero1 != 0:
        raise IDXFormatError(f"IDX file {path!r} has a bad magic number 0x{magic.hex()}: an IDX "
                             "file starts with two zero bytes (is it still gzipped without a .gz name, "
                             "or not an IDX file at all?)")
    if type_code != _UBYTE:
        raise IDXFormatError(f"IDX file {path!r} has type code 0x{type_code:02x} in its magic number "
                             f"0x{magic.hex()}; MNIST files hold unsigned bytes (0x08)")
    if ndim is not None and n_dims != ndim:
        kind = {1: "a label file", 3: "an image file"}.get(ndim, f"a {ndim}-d file")
        raise IDXFormatError(f"IDX file {path!r} has {n_dims} dimensions (magic number 0x{magic.hex()}) "
                             f"but {kind} has {ndim}; are the file names swapped?")
    header_end = 4 + 4 * n_dims
    dims = f.read(4 * n_dims)
    if len(dims) < 4 * n_dims:
        raise IDXFormatError(f"IDX file {path!r} is truncated: {4 + len(dims)} bytes, shorter than its "
                             f"{header_end}-byte header")
    # '>u4': the dimension sizes are big-endian unsigned 32-bit integers.
    return tuple(int(d) for d in np.frombuffer(dims, dtype=">u4")), header_end


def _read_body(f, path, shape, header_end, size, gz):
    """The ``prod(shape)`` bytes after the header, read only when the file can hold them."""
    expected = math.prod(shape)   # Python ints: four 32-bit sizes cannot overflow
    if gz and expected > MAX_DEFLATE_RATIO * size:
        raise IDXFormatError(f"IDX file {path!r} has a header saying shape {shape}, that is {expected} "
                             f"values, more than a {size}-byte gzip file can hold; the header is damaged")
    if not gz and size - header_end != expected:
        body_size = size - header_end
        what = "truncated" if body_size < expected else "longer than its header says"
        raise IDXFormatError(f"IDX file {path!r} is {what}: its header says shape {shape}, that is "
                             f"{expected} values, but it holds {body_size} bytes after the header")
    body = f.read(expected + 1)   # one byte more than declared tells a file that is too long
    if len(body) != expected:
        what = "truncated" if len(body) < expected else "longer than its header says"
        held = f"{len(body)} bytes" if len(body) <= expected else "more bytes"
        raise IDXFormatError(f"IDX file {path!r} is {what}: its header says shape {shape}, that is "
                             f"{expected} values, but it holds {held} after the header")
    return body


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
