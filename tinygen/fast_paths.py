"""One switch for every fast path, so that a reader can watch the reference code run.

Each op's file states its formula and computes it; where that was slow, a fast path
computes the same numbers by another route. Every fast path is listed here, with what
it replaces:

    array backwards       relu, leaky_relu, sigmoid, tanh and the normalizations
                          (``Standardize``) compute their gradient in one pass over
                          plain arrays, and mul, div, sub, neg, matmul, linear and sum
                          their formula's steps on arrays (``functional/_array_grads.py``),
                          instead of the Tensor ops of the formula
                          (only without create_graph: a graph needs the Tensor ops)
    outer products        matmul with an inner size of 1 (and a 1x1 convolution of one
                          channel, or into one) as a broadcast product, not GEMM
    running sums          cumsum by blocks of small triangular GEMMs, not NumPy's one
                          element at a time (``functional/_cumsum_arrays.py``)
    sums by blocks        a sum over the outer axes of memory (a channels-last bias
                          gradient) by blocks of rows, added by one matrix-vector
                          product, not NumPy's one row at a time
                          (``functional/_sum_arrays.py``)
    blocks of pixels      avg_pool2d with stride = kernel as one op and its adjoint,
                          not a reshape and a mean, and nearest upsampling by whole
                          factors as a copy into blocks, not two GEMMs with 0/1
                          matrices (``functional/_block_pool.py``)
    pixel norm            nn.PixelNorm as one op with a three-pass gradient, not five ops
                          (``functional/_pixel_norm.py``)
    MMD kernels           the kernel summed over its length scales as one op, not two or
                          three ops per scale (``metrics/_kernel_sums.py``)
    conv layouts          NumPy convolutions from ``CHANNELS_LAST_MIN`` channels on in
                          channels-last memory (and small outputs whose patch rows,
                          kw C numbers, are that long; with fewer input channels, an image,
                          the output still stored channels-last), and the input
                          gradient by stride phases without col2im, and 1x1
                          convolutions with no im2col at all, large channels-first
                          images made channels-last by OpenBLAS's blocked transpose
                          (``functional/_conv_arrays.py``), and stride-1 convolutions as
                          one GEMM per kernel row over the zero-framed image, skipping
                          all-zero kernel rows, the rows' products summed inside the
                          GEMM (``functional/_conv_frames.py``, ``_numpy_blas.py``), and
                          large channels-last patch matrices made by cache-sized blocks
                          of rows as each product reads them, never whole
                          (``functional/_conv_blocks.py``), and dense 3x3 convolutions at
                          stride 1 by Winograd's F(4x4, 3x3) or F(2x2, 3x3), 36 or 16
                          GEMMs over transformed tiles, and 4x4 kernels at stride 2 as 2x2
                          ones over 2x2 blocks of pixels by F(4x4, 2x2) or F(5x5, 2x2),
                          the transforms' wide products by cache-sized runs of columns
                          (``functional/_conv_winograd.py``, ``_conv_strided.py``; to
                          rounding: about 2e-6 of the largest output in float32); off, every
                          convolution takes the channels-first im2col / col2im of the
                          equations in ``functional/conv.py``
    Adam in place         the moments and the step updated in place through scratch
                          arrays, instead of the formulas of ``optim/adam.py`` as written

Off, each op runs its reference: the same arithmetic where only the route differs
(bit-identical: the outer products, the array backwards of relu and leaky_relu),
otherwise the same formula summed or rounded in another order (equal to about 1e-6
relative in float32), and for Winograd's convolutions the same sums by other
arithmetic (about 2e-6 of the largest output in float32, 1e-14 in float64);
``tests/fast_paths/`` checks every one.

Switch them all off with ``TINYGEN_FAST_PATHS=0`` in the environment, with
``set_enabled(False)``, or for a block with ``with reference_paths(): ...``.

Host memory is a separate, process-wide setting: on glibc tinygen asks malloc to keep
freed blocks for reuse (``backend._reuse_freed_memory``), which changes no number, only
the page faults; ``TINYGEN_REUSE_MEMORY=0`` before import leaves malloc as it is.
"""
import contextlib
import os

from .autograd.grad_mode import is_grad_enabled

_enabled = os.environ.get("TINYGEN_FAST_PATHS", "1").strip().lower() not in ("0", "false", "no", "off")


def enabled():
    """True when the fast paths run (the default)."""
    return _enabled


def set_enabled(flag):
    """Turn every fast path on (True) or off (False); returns the previous setting."""
    global _enabled
    previous, _enabled = _enabled, bool(flag)
    return previous


@contextlib.contextmanager
def reference_paths():
    """Run the block with every fast path off; the previous setting comes back after it."""
    previous = set_enabled(False)
    try:
        yield
    finally:
        set_enabled(previous)


def array_backward():
    """True when a backward may take its one-pass array route: fast paths on and no graph
    recorded (under create_graph the gradient must be Tensor ops, to be differentiated again)."""
    return _enabled and not is_grad_enabled()
