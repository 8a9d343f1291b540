"""Where tinygen's data files are: the CUDA sources in ``kernels/``.

The repository keeps the CUDA C files in a top-level ``kernels/`` folder, and
``setup.py`` installs that folder as ``tinygen/kernels``. So the folder is in
one of two places, and ``kernels_dir()`` looks in both:

- a normal install (``pip install .``): ``<site-packages>/tinygen/kernels``;
- a source checkout or an editable install (``pip install -e .``): ``kernels/``
  next to the ``tinygen/`` package folder. Running ``python -m pytest`` in the
  repository imports ``tinygen`` from the checkout even when a normal install
  exists, and this case covers it too.
"""
from pathlib import Path

_PACKAGE = Path(__file__).resolve().parent


def kernels_dir():
    """The folder holding the ``*.cu`` kernel sources, as a ``pathlib.Path``."""
    for candidate in (_PACKAGE / "kernels", _PACKAGE.parent / "kernels"):
        if candidate.is_dir():
            return candidate
    raise FileNotFoundError(f"tinygen's CUDA kernel sources are missing: looked for a 'kernels' folder in "
                            f"{_PACKAGE} and in {_PACKAGE.parent}; reinstall tinygen (pip install .)")


def kernel_source(name):
    """The text of the kernel file ``name`` (e.g. ``"conv2d.cu"``) from ``kernels_dir()``."""
    path = kernels_dir() / name
    if not path.is_file():
        known = sorted(p.name for p in kernels_dir().glob("*.cu*"))
        raise FileNotFoundError(f"no kernel source {name!r} in {path.parent}; found: "
                                f"{', '.join(known) or 'none'}")
    return path.read_text(encoding="utf-8")
