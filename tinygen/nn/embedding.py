"""Embedding: a lookup table of learned vectors, one row per token or class.

    y[..., :] = W[idx[...], :]        W (num_embeddings, embedding_dim), idx integers

It is a Linear layer applied to one-hot vectors (y = onehot(idx) W) without
building the one-hot matrix: the forward is ``F.getitem(W, idx)``, whose backward
scatter-adds, so a row used k times in a batch receives the sum of its k
gradients:

    dL/dW[r] = sum over positions p with idx[p] = r of dL/dy[p]

Rows start as N(0, 1) draws (PyTorch's default).
"""
import numpy as np

from .. import backend
from ..autograd.tensor import Tensor
from . import init
from .linear import _positive_int
from .module import Module, Parameter


class Embedding(Module):
    def __init__(self, num_embeddings, embedding_dim):
        super().__init__()
        self.num_embeddings = _positive_int(num_embeddings, "num_embeddings", "Embedding")
        self.embedding_dim = _positive_int(embedding_dim, "embedding_dim", "Embedding")
        self.weight = Parameter(np.empty((self.num_embeddings, self.embedding_dim), dtype=np.float32))
        self.reset_parameters()

    def reset_parameters(self):
        init.normal_(self.weight, 0.0, 1.0)

    def forward(self, indices):
        """indices: integers of any shape (Tensor, array or list) -> (*indices.shape, embedding_dim)."""
        idx = indices.data if isinstance(indices, Tensor) else indices
        xp = backend.get_array_module(idx)
        idx = xp.asarray(idx)
        if idx.dtype.kind not in "iu":
            raise TypeError(f"Embedding: indices must be integers, got {idx.dtype} values of shape "
                            f"{tuple(idx.shape)} (labels are usually int64)")
        if idx.size:
            lo, hi = int(idx.min()), int(idx.max())
            # checked here: NumPy would silently read row -1 as the last row
            if lo < 0 or hi >= self.num_embeddings:
                raise IndexError(f"Embedding({self.num_embeddings}, {self.embedding_dim}): indices must "
                                 f"lie in [0, {self.num_embeddings}), got values from {lo} to {hi}")
        idx = backend.to_device(idx, self.weight.device)
        return self.weight[idx]

    def extra_repr(self):
        return f"{self.num_embeddings}, {self.embedding_dim}"
