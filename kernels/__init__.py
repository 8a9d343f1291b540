"""The CUDA C sources of tinygen's GPU kernels (data files, no Python code).

Installed as ``tinygen.kernels``; see README.md in this folder, and
``tinygen.resources.kernels_dir()`` for the path to the ``.cu`` files.
"""
