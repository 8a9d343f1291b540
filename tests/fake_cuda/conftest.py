"""The device tests' imports (tests/ for strategies.py, tests/cuda for emulator.py,
tests/functional for test_op_contract.py, this folder for fake_cupy.py and device_checks.py)
and a fresh launch log for every test."""
import os
import sys

import pytest

_HERE = os.path.dirname(os.path.abspath(__file__))
_TESTS = os.path.dirname(_HERE)
for _folder in (_TESTS, os.path.join(_TESTS, "cuda"), os.path.join(_TESTS, "functional"), _HERE):
    if _folder not in sys.path:
        sys.path.insert(0, _folder)


@pytest.fixture(autouse=True)
def _fresh_launch_log():
    import fake_cupy
    fake_cupy.LAUNCHES.clear()
    yield
