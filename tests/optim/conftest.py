"""Shared helpers for the optim tests."""
import pytest

import tinygen


@pytest.fixture(autouse=True)
def _seed():
    tinygen.manual_seed(0)
