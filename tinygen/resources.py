"""Where tinygen's data files are, and what they hold: the CUDA sources in ``kernels/``.

The repository keeps the CUDA C files in a top-level ``kernels/`` folder, and
``setup.py`` installs that folder as ``tinygen/kernels``. So the folder is in
one of two places, and ``kernels_dir()`` looks in both:

- a normal install (``pip install .``): ``<site-packages>/tinygen/kernels``;
- a source checkout or an editable install (``pip install -e .``): ``kernels/``
  next to the ``tinygen/`` package folder. Running ``python -m pytest`` in the
  repository imports ``tinygen`` from the checkout even when a normal install
  exists, and this case covers it too.
"""
import re
from pathlib import Path

import numpy as np

_PACKAGE = Path(__file__).resolve().parent


def kernels_dir():
    """The folder holding the ``*.cu`` kernel sources, as a ``pathlib.Path``."""
    for candidate in (_PACKAGE / "kernels", _PACKAGE.parent / "kernels"):
        if candidate.is_dir():
            return candidate
    raise FileNotFoundError(f"tinygen's CUDA kernel sources are missing: looked for a 'kernels' folder in "
                            f"{_PACKAGE} and in {_PACKAGE.parent}; reinstall tinygen (pip install .)")


def _read_kernel_source(name):
    """The text of the kernel file ``name`` (e.g. ``"conv2d.cu"``) from ``kernels_dir()``."""
    path = kernels_dir() / name
    if not path.is_file():
        known = sorted(p.name for p in kernels_dir().glob("*.cu*"))
        raise FileNotFoundError(f"no kernel source {name!r} in {path.parent}; found: "
                                f"{', '.join(known) or 'none'}")
    return path.read_text(encoding="utf-8")


# The kernels of each source file, by their template names in the C source.
KERNELS = {
    "conv2d.cu": ("im2col", "col2im", "conv2d_grad_weight"),
    "lstm.cu": ("lstm_cell_forward", "lstm_cell_backward"),
    "pixelrnn.cu": ("pixelrnn_step_forward", "pixelrnn_step_backward"),
}
# The element types they are compiled for, and the suffix of each instantiation's entry point.
DTYPE_SUFFIXES = {"float32": "f32", "float64": "f64"}


def kernel_name(kernel, dtype):
    """The entry point of ``kernel`` compiled for arrays of ``dtype``: ("im2col", float64) -> "im2col_f64"."""
    dtype = np.dtype(dtype).name
    if dtype not in DTYPE_SUFFIXES:
        raise TypeError(f"{kernel}: tinygen's CUDA kernels are compiled for float32 and float64 arrays, "
                        f"got {dtype}")
    return f"{kernel}_{DTYPE_SUFFIXES[dtype]}"


def kernel_path(name):
    """The path of kernel source ``name`` (e.g. ``"conv2d.cu"``) in tinygen's kernels folder."""
    return kernels_dir() / name


_LOCAL_INCLUDE = re.compile(r'^[ \t]*#[ \t]*include[ \t]*"([^"]+)"[^\n]*$', re.M)


def kernel_source(name):
    """The CUDA C text of kernel source ``name``, each ``#include "header.cuh"`` replaced by the header.

    NVRTC compiles a string and cannot look for the headers next to the file; pasted in,
    the text stands alone, and CuPy's compile cache (keyed on the text) sees a header change.
    A header already pasted is pasted once only (as its include guard would have it).
    """
    text, pasted = _read_kernel_source(name), set()
    while (match := _LOCAL_INCLUDE.search(text)) is not None:
        header = match.group(1)
        body = "" if header in pasted else _read_kernel_source(header)
        pasted.add(header)
        text = text[:match.start()] + body + text[match.end():]
    return text
