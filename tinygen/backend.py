"""Array backends: NumPy on the CPU, CuPy on a CUDA GPU.

Every op gets its array module with ``xp = get_array_module(x)`` and writes the
same code for both: ``xp.exp``, ``xp.matmul`` ... exist in both libraries. The
only place that names CuPy is this file (and ``tinygen/cuda.py`` for kernels),
so ``import tinygen`` works on a machine without CuPy.

Randomness comes from one explicit ``Generator`` per device, reset by
``manual_seed(seed)``: on the CPU the same seed gives the same numbers, run
after run.

Host memory: every NumPy op allocates its result afresh, megabytes at a time. With
glibc's default malloc settings such blocks go back to the OS when freed and come
back as fresh pages, zeroed by the kernel one page fault at a time (measured: 2,000
to 35,000 faults and 5 to 90 ms of system time per DCGAN training step of about
70 ms). So on import tinygen asks glibc to keep freed blocks below 32 MiB for reuse,
and up to 1 GiB of freed memory at the top of its heap (glibc's default returns all
but 128 KiB, and tinygen's first setting, 64 MiB, still cost a 28x28 PixelCNN step
72,000 faults and a quarter of its time) (``_reuse_freed_memory``); the cost is that a
process keeps its peak heap, up to that bound. It changes
no number, only where the memory comes from. A process that sets MALLOC_MMAP_THRESHOLD_
or MALLOC_TRIM_THRESHOLD_ itself, or TINYGEN_REUSE_MEMORY=0, is left alone.
"""
import ctypes
import os
import sys

import numpy as np

try:  # CuPy is optional: tinygen runs on NumPy alone.
    import cupy as _cupy
except Exception:  # ImportError, or a CuPy whose CUDA libraries are missing
    _cupy = None


def _reuse_freed_memory():
    """mallopt(M_MMAP_THRESHOLD, 32 MiB) and mallopt(M_TRIM_THRESHOLD, 1 GiB) on glibc; else nothing.
    True when it asked."""
    if not sys.platform.startswith("linux") or {"MALLOC_MMAP_THRESHOLD_", "MALLOC_TRIM_THRESHOLD_"} & set(os.environ):
        return False
    if os.environ.get("TINYGEN_REUSE_MEMORY", "1").strip().lower() in ("0", "false", "no", "off"):
        return False
    try:
        libc = ctypes.CDLL(None)
        libc.gnu_get_libc_version    # glibc's own symbol: the meaning of mallopt's numbers is glibc's
    except (OSError, AttributeError):
        return False
    m_trim_threshold, m_mmap_threshold = -1, -3
    libc.mallopt(m_mmap_threshold, 32 << 20)   # both set: glibc then stops tuning them itself
    libc.mallopt(m_trim_threshold, 1 << 30)
    return True


REUSING_FREED_MEMORY = _reuse_freed_memory()   # True where glibc was asked to keep its memory

_INSTALL_HINT = "install CuPy for your CUDA version, e.g. `pip install 'tinygen[cuda]'` (cupy-cuda12x)"


def cupy_available():
    return _cupy is not None


def cuda_available():
    """True when CuPy is importable and sees at least one GPU."""
    if _cupy is None:
        return False
    try:
        return _cupy.cuda.runtime.getDeviceCount() > 0
    except Exception:
        return False


def _require_cuda():
    if _cupy is None:
        raise RuntimeError(f"device 'cuda' needs CuPy, which is not installed: {_INSTALL_HINT}")
    if not cuda_available():
        raise RuntimeError("device 'cuda' was asked for, but CuPy sees no CUDA GPU on this machine; "
                           "use device='cpu'")
    return _cupy


def normalize_device(device):
    """'cpu', 'cuda' or 'cuda:N' -> canonical string; anything else is an error."""
    if device is None:
        return "cpu"
    device = str(device)
    if device == "cpu":
        return "cpu"
    if device == "cuda" or (device.startswith("cuda:") and device[5:].isdigit()):
        _require_cuda()
        return "cuda" if device == "cuda" else device
    raise ValueError(f"unknown device {device!r}: expected 'cpu', 'cuda' or 'cuda:N'")


def get_array_module(*arrays):
    """numpy, or cupy when any of ``arrays`` lives on the GPU."""
    if _cupy is not None:
        for a in arrays:
            if isinstance(a, _cupy.ndarray):
                return _cupy
    return np


def device_of(array):
    if _cupy is not None and isinstance(array, _cupy.ndarray):
        return "cuda" if array.device.id == 0 else f"cuda:{array.device.id}"
    return "cpu"


def to_device(array, device):
    """Copy ``array`` to ``device`` ('cpu' or 'cuda[:N]'); no copy when it is there already."""
    device = normalize_device(device)
    if device == "cpu":
        if _cupy is not None and isinstance(array, _cupy.ndarray):
            return _cupy.asnumpy(array)
        return np.asarray(array)
    cp = _require_cuda()
    index = 0 if device == "cuda" else int(device[5:])
    with cp.cuda.Device(index):
        return cp.asarray(array)


# --- randomness ------------------------------------------------------------

_seed = None
_generators = {}


def manual_seed(seed):
    """Seed every device's generator; the same seed gives the same run on the CPU."""
    global _seed
    if not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ValueError(f"manual_seed: seed must be a non-negative integer, got {seed!r}")
    _seed = int(seed)
    _generators.clear()


def generator(device="cpu"):
    """The ``Generator`` of ``device`` (numpy's, or cupy's on a GPU)."""
    device = "cpu" if device is None else device
    gen = _generators.get(device)
    if gen is None:
        if device == "cpu":
            gen = np.random.default_rng(_seed)
        else:
            cp = _require_cuda()
            gen = cp.random.default_rng(None if _seed is None else _seed)
        _generators[device] = gen
    return gen


def get_rng_state():
    """The CPU generator's state as a dict of plain values (for checkpoints)."""
    return generator("cpu").bit_generator.state


def set_rng_state(state):
    generator("cpu").bit_generator.state = state
