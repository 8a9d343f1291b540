"""``DataLoader``: mini-batches of tinygen Tensors from in-memory arrays.

Every data set tinygen trains on fits in memory (digits is 0.5 MB, MNIST 200 MB
as float32), so a loader needs no worker processes: it holds the arrays, draws a
permutation of the rows once per epoch and cuts it into batches. A batch is
gathered with one fancy-indexing call per array (``array[indices]``), never a
Python loop over examples.

Reproducibility: epoch ``k`` is shuffled by ``numpy.random.default_rng((seed, k))``,
a generator derived from the pair, so

- the same ``seed`` gives the same batches, epoch by epoch, run after run;
- each epoch has its own order (epoch 1 is not a replay of epoch 0);
- a resumed run can jump to epoch ``k`` with ``set_epoch(k)`` and get exactly
  the order it would have had, without replaying the earlier epochs.
"""
import math
import numbers

import numpy as np

import tinygen
from tinygen import backend


class DataLoader:
    """Iterate over ``arrays`` in mini-batches.

    arrays      one array, or a tuple/list of arrays with the same first dimension
                (e.g. ``(images, labels)``); NumPy arrays, CuPy arrays or tinygen Tensors.
    batch_size  rows per batch, a positive int; the last batch may be smaller
                unless ``drop_last``.
    shuffle     draw a new order every epoch (True) or go in row order (False).
    seed        int seed of the shuffles; ``None`` draws one from tinygen's CPU
                generator, so ``tinygen.manual_seed`` then fixes the order.
    drop_last   skip the last batch when it has fewer than ``batch_size`` rows.
    device      where the batch Tensors live ('cpu', 'cuda', 'cuda:N').

    Iterating yields a tuple of Tensors per batch, in the order of ``arrays``, or
    a single Tensor when ``arrays`` was one array. Each ``iter()`` is one epoch.
    """

    def __init__(self, arrays, batch_size, shuffle=True, seed=0, drop_last=False, device="cpu"):
        self.single = not isinstance(arrays, (tuple, list))
        arrays = [arrays] if self.single else list(arrays)
        if not arrays:
            raise ValueError("DataLoader: got an empty tuple of arrays; pass at least one array")
        self.arrays = [_as_array(a, i) for i, a in enumerate(arrays)]
        lengths = {a.shape[0] for a in self.arrays}
        if len(lengths) > 1:
            shapes = ", ".join(str(tuple(a.shape)) for a in self.arrays)
            raise ValueError(f"DataLoader: arrays must have the same first dimension (one row per "
                             f"example), got shapes {shapes}")
        self.num_rows = lengths.pop()
        if self.num_rows == 0:
            raise ValueError(f"DataLoader: the arrays have no rows (shapes "
                             f"{', '.join(str(tuple(a.shape)) for a in self.arrays)})")

        if not isinstance(batch_size, numbers.Integral) or isinstance(batch_size, bool) or batch_size < 1:
            raise ValueError(f"DataLoader: batch_size must be a positive int, got {batch_size!r}")
        self.batch_size = int(batch_size)
        self.drop_last = bool(drop_last)
        if self.drop_last and self.batch_size > self.num_rows:
            raise ValueError(f"DataLoader: drop_last=True with batch_size {self.batch_size} larger than "
                             f"the {self.num_rows} rows would give no batch at all")
        self.shuffle = bool(shuffle)
        if seed is None:
            seed = int(backend.generator("cpu").integers(2**63))
        elif not isinstance(seed, numbers.Integral) or isinstance(seed, bool) or seed < 0:
            raise ValueError(f"DataLoader: seed must be a non-negative int or None, got {seed!r}")
        self.seed = int(seed)
        self.device = backend.normalize_device(device)
        self.epoch = 0  # the epoch the next iter() runs; advanced by each iter()

    def __len__(self):
        """Batches per epoch."""
        if self.drop_last:
            return self.num_rows // self.batch_size
        return math.ceil(self.num_rows / self.batch_size)

    def set_epoch(self, epoch):
        """Make the next ``iter()`` run epoch ``epoch`` (e.g. when resuming from a checkpoint)."""
        if not isinstance(epoch, numbers.Integral) or epoch < 0:
            raise ValueError(f"DataLoader.set_epoch: epoch must be a non-negative int, got {epoch!r}")
        self.epoch = int(epoch)

    def order(self, epoch):
        """The row order of epoch ``epoch``: an int64 permutation (``arange`` without shuffle)."""
        if not self.shuffle:
            return np.arange(self.num_rows)
        # SeedSequence mixes (seed, epoch) into independent streams: epoch k's order
        # depends on nothing but the pair, so it can be recomputed at any time.
        return np.random.default_rng((self.seed, int(epoch))).permutation(self.num_rows)

    def __iter__(self):
        order = self.order(self.epoch)
        self.epoch += 1
        return self._batches(order)

    def _batches(self, order):
        # Index arrays go to the arrays' own device once per epoch, not per batch.
        index_on = {}
        for a in self.arrays:
            xp = backend.get_array_module(a)
            index_on.setdefault(id(xp), xp.asarray(order))
        for b in range(len(self)):
            start = b * self.batch_size
            batch = []
            for a in self.arrays:
                idx = index_on[id(backend.get_array_module(a))][start:start + self.batch_size]
                batch.append(tinygen.tensor(a[idx], device=self.device))
            yield batch[0] if self.single else tuple(batch)

    def __repr__(self):
        shapes = ", ".join(str(tuple(a.shape)) for a in self.arrays)
        return (f"DataLoader({shapes}, batch_size={self.batch_size}, shuffle={self.shuffle}, "
                f"seed={self.seed}, drop_last={self.drop_last}, device={self.device!r}, "
                f"{len(self)} batches per epoch)")


def _as_array(a, position):
    """A NumPy/CuPy array for ``a``; a Tensor gives its ``.data``."""
    tensor_class = getattr(tinygen, "Tensor", None)
    if tensor_class is not None and isinstance(a, tensor_class):
        a = a.data
    elif isinstance(a, (list, tuple)):   # rows in a list would be taken for a list of arrays
        raise TypeError(f"DataLoader: array {position} is a {type(a).__name__}, not an array; pass NumPy "
                        "arrays, CuPy arrays or Tensors (for rows in a list: numpy.asarray(rows))")
    elif backend.get_array_module(a) is np:
        a = np.asarray(a)
    if a.ndim == 0:
        raise ValueError(f"DataLoader: array {position} is a scalar (shape ()); each array needs a "
                         "first dimension with one row per example")
    return a
