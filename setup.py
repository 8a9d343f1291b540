"""Packaging for tinygen.

The package is pure Python; the only twist is the CUDA sources. They live in the
top-level ``kernels/`` folder of the repository (easy to find, and to compile on
their own) and are installed *inside* the package as ``tinygen/kernels``:
``package_dir`` maps the package name ``tinygen.kernels`` to that folder and
``package_data`` takes its ``*.cu``/``*.cuh`` files along.
``tinygen.resources.kernels_dir()`` finds them after ``pip install .``,
``pip install -e .`` and in a plain checkout.
"""
from pathlib import Path

from setuptools import find_packages, setup

HERE = Path(__file__).resolve().parent
README = HERE / "README.md"

setup(
    name="tinygen",
    version="0.1.0",
    description="Generative models from scratch on NumPy and CuPy, with their own autograd",
    long_description=README.read_text(encoding="utf-8") if README.exists() else "",
    long_description_content_type="text/markdown",
    python_requires=">=3.9",
    # find_packages also sees kernels/ (it has an __init__.py) as a top-level
    # package "kernels"; only the tinygen* names are wanted, and kernels/ joins
    # under its installed name below.
    packages=find_packages(include=["tinygen", "tinygen.*"]) + ["tinygen.kernels"],
    package_dir={"tinygen.kernels": "kernels"},
    package_data={"tinygen.kernels": ["*.cu", "*.cuh", "README.md"],
                  "tinygen.metrics": ["digits_classifier.npz"]},
    install_requires=["numpy", "scipy", "scikit-learn", "pillow", "tqdm"],
    extras_require={
        "cuda": ["cupy-cuda12x"],
        "test": ["pytest", "hypothesis"],
    },
    # `tinygen ...` is the same program as `python -m tinygen ...`
    entry_points={"console_scripts": ["tinygen = tinygen.__main__:main"]},
)
