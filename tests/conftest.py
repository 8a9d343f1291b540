"""The suite's markers and options.

``gpu`` marks every test that needs CuPy and a CUDA GPU (each also skips itself without
one), so that ``python -m pytest -q tests -m gpu`` runs exactly those.

``--fake-cuda`` installs the CuPy stand-in (tests/fake_cuda/fake_cupy.py) as ``cupy``
before any test module imports tinygen, so ``device="cuda"`` runs tinygen's whole
device path on NumPy, its kernels on the SIMT emulator (tests/cuda/emulator.py):
``python -m pytest -q tests/fake_cuda --fake-cuda``. The tests in tests/fake_cuda are
skipped without it. (Only that folder is meant to run with it: elsewhere, tests that
expect "no GPU here" would find one.)

Hypothesis runs derandomized by default (the ``derandomized`` profile): every run draws
the same examples, so a commit is green or red for everyone, CI included. To explore new
examples, ``HYPOTHESIS_PROFILE=explore python -m pytest -q tests`` (what it finds is then
a bug to fix, or a tolerance to justify).
"""
import os
import sys

import pytest
from hypothesis import settings

settings.register_profile("derandomized", derandomize=True)
settings.register_profile("explore", derandomize=False)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "derandomized"))

_TESTS = os.path.dirname(os.path.abspath(__file__))
FAKE_CUDA_DIR = os.path.join(_TESTS, "fake_cuda")


def pytest_addoption(parser):
    parser.addoption("--fake-cuda", action="store_true", default=False,
                     help="run device='cuda' on the CuPy stand-in of tests/fake_cuda (kernels on the "
                          "SIMT emulator); the tests in tests/fake_cuda run only with it")


def pytest_configure(config):
    config.addinivalue_line("markers", "gpu: needs CuPy and a CUDA GPU (skipped without one)")
    if config.getoption("--fake-cuda"):
        install_fake_cupy()


def install_fake_cupy():
    """Make ``import cupy`` give the stand-in, and tinygen (imported now or later) use it."""
    for folder in (FAKE_CUDA_DIR, os.path.join(_TESTS, "cuda")):   # fake_cupy.py; emulator.py
        if folder not in sys.path:
            sys.path.insert(0, folder)
    import fake_cupy
    sys.modules["cupy"] = fake_cupy
    from tinygen import backend
    backend._cupy = fake_cupy    # backend imports cupy at its own import: here, in case it came first


def pytest_collection_modifyitems(config, items):
    if config.getoption("--fake-cuda"):
        return
    skip = pytest.mark.skip(reason="needs --fake-cuda (the CuPy stand-in)")
    for item in items:
        if str(item.fspath).startswith(FAKE_CUDA_DIR + os.sep):
            item.add_marker(skip)
