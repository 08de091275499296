"""The batch sampler: which source and target rows each training step takes.

An epoch is one pass over the source rows in a shuffled order; each source batch is paired with as many target
rows, drawn from shuffled passes over the target data (recycled when the target is smaller). The order comes from
`numpy.random.Generator(PCG64(seed))`, so the same seed gives the same batches; `state` and `restore` carry the
sampler across a checkpoint, so a resumed run takes exactly the batches an uninterrupted one would.

>>> sampler = Sampler(source_rows=5, target_rows=3, batch_size=2, seed=0)
>>> sizes = []
>>> for _ in range(3):
...     source, target = sampler.batch()
...     sizes.append((len(source), len(target)))
...     sampler.advance()
>>> sizes, sampler.epoch, sampler.epoch_done
([(2, 2), (2, 2), (1, 1)], 1, True)
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import numpy as np


class Sampler:
    """Shuffled, paired batch indices: `batch()` gives the source and target rows of the current step."""

    def __init__(self, source_rows: int, target_rows: int, batch_size: int, seed: int):
        self.source_rows, self.target_rows, self.batch_size = source_rows, target_rows, batch_size
        self.per_epoch = math.ceil(source_rows / batch_size)
        self.generator = np.random.Generator(np.random.PCG64(seed))
        self.epoch, self.position = 0, self.per_epoch  # the first `batch` starts epoch 1
        self.source_order = self.target_order = np.zeros(0, dtype=np.int64)

    @property
    def epoch_done(self) -> bool:
        """Whether the last batch taken ended an epoch."""
        return self.position == self.per_epoch

    def batch(self) -> tuple[np.ndarray, np.ndarray]:
        """The source rows and the paired target rows of the current batch, starting an epoch when the last one
        is done; `advance` moves past it once its step is taken."""
        if self.position >= self.per_epoch:
            self._shuffle()
        start = self.position * self.batch_size
        rows = self.source_order[start : start + self.batch_size]
        return rows, self.target_order[start : start + len(rows)]  # no target rows without target data

    def advance(self) -> None:
        """Move past the current batch."""
        self.position += 1

    def _shuffle(self) -> None:
        """Start an epoch: a new order of the source rows, and as many target rows from shuffled passes."""
        self.source_order = self.generator.permutation(self.source_rows)
        if self.target_rows:
            passes = math.ceil(self.source_rows / self.target_rows)
            target_order = np.concatenate([self.generator.permutation(self.target_rows) for _ in range(passes)])
            self.target_order = target_order[: self.source_rows]
        self.epoch, self.position = self.epoch + 1, 0

    def state(self) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
        """What a checkpoint keeps: JSON-able counters and the generator's state, and the epoch's orders."""
        meta = {"epoch": self.epoch, "position": self.position, "sampler": self.generator.bit_generator.state}
        return meta, {"source_order": self.source_order, "target_order": self.target_order}

    def problem(self, step: int, meta: Mapping[str, Any], arrays: Mapping[str, np.ndarray]) -> str | None:
        """What in a saved state (typed and shaped as `state` gives it, at `step`) does not fit this sampler's
        data and batches, or None: the orders must be of this data's rows, and the counters agree with the step."""
        epoch, position = meta["epoch"], meta["position"]
        source, target = arrays["source_order"], arrays["target_order"]
        started = epoch > 0
        if len(source) != (self.source_rows if started else 0):
            return f"its source order has {len(source)} rows, the data {self.source_rows}"
        if len(target) != (self.source_rows if started and self.target_rows else 0) or (
            len(target) and target.max() >= self.target_rows
        ):
            return f"its target order is not {self.source_rows} rows of the {self.target_rows} target rows"
        if position > self.per_epoch or (epoch - 1) * self.per_epoch + position != step:
            return f"its epoch {epoch} and batch {position} are not step {step} at {self.per_epoch} batches an epoch"
        return None

    def restore(self, meta: Mapping[str, Any], arrays: Mapping[str, np.ndarray]) -> None:
        """Put back what `state` took."""
        self.epoch, self.position = meta["epoch"], meta["position"]
        self.generator.bit_generator.state = meta["sampler"]
        self.source_order, self.target_order = arrays["source_order"], arrays["target_order"]
