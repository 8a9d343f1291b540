"""The suite's markers: ``gpu`` marks every test that needs CuPy and a CUDA GPU (each also skips
itself without one), so that ``python -m pytest -q tests -m gpu`` runs exactly those."""


def pytest_configure(config):
    config.addinivalue_line("markers", "gpu: needs CuPy and a CUDA GPU (skipped without one)")
