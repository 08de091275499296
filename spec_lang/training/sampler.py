"""The batch sampler: which rows of each group of inputs (a source's, a target's: see `spec_lang.training.roles`)
each training step takes.

The groups are given by their row counts, the first one's passes making the epochs (the longest source: see
`spec_lang.training.dataset`). An epoch is one pass over the first group's rows in a shuffled order; each of its
batches is paired with as many rows of every other group, drawn from shuffled passes over that group's rows: a
shorter group is cycled (a new shuffled pass each time it runs out), a longer one gives a different part of a shuffled
pass each epoch. The first group's order and the second's come from `numpy.random.Generator(PCG64(seed))`; each
further group's from its own `PCG64([seed, epoch, group])`, so the same seed gives the same batches. `state` and
`restore` carry the sampler across a checkpoint (the first two orders and the generator; the further ones are drawn
again), so a resumed run takes exactly the batches an uninterrupted one would.

>>> sampler = Sampler([5, 3], batch_size=2, seed=0)
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
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np


class Sampler:
    """Shuffled, paired batch indices: `batch()` gives the rows of every group for the current step."""

    def __init__(self, rows: Sequence[int], batch_size: int, seed: int):
        self.rows, self.batch_size, self.seed = [int(r) for r in rows], batch_size, seed
        self.per_epoch = math.ceil(self.rows[0] / batch_size)
        self.generator = np.random.Generator(np.random.PCG64(seed))
        self.epoch, self.position = 0, self.per_epoch  # the first `batch` starts epoch 1
        self.orders = [np.zeros(0, dtype=np.int64) for _ in self.rows]

    @property
    def source_rows(self) -> int:
        """The rows of the first group, whose passes are the epochs."""
        return self.rows[0]

    @property
    def target_rows(self) -> int:
        """The rows of the second group (0 without one)."""
        return self.rows[1] if len(self.rows) > 1 else 0

    @property
    def epoch_done(self) -> bool:
        """Whether the last batch taken ended an epoch."""
        return self.position == self.per_epoch

    def batch(self) -> list[np.ndarray]:
        """The rows of every group in the current batch, starting an epoch when the last one is done; `advance`
        moves past it once its step is taken."""
        if self.position >= self.per_epoch:
            self._shuffle()
        start = self.position * self.batch_size
        rows = self.orders[0][start : start + self.batch_size]
        return [rows, *(order[start : start + len(rows)] for order in self.orders[1:])]

    def advance(self) -> None:
        """Move past the current batch."""
        self.position += 1

    def _shuffle(self) -> None:
        """Start an epoch: a new order of the first group's rows, and as many rows of every other group."""
        self.orders[0] = self.generator.permutation(self.source_rows)
        if self.target_rows:
            self.orders[1] = self._passes(self.generator, self.target_rows)
        self.epoch, self.position = self.epoch + 1, 0
        self._further()

    def _further(self) -> None:
        """The orders of the third group on, for the current epoch: each from its own generator."""
        for group in range(2, len(self.rows)):
            generator = np.random.Generator(np.random.PCG64([self.seed, self.epoch, group]))
            self.orders[group] = self._passes(generator, self.rows[group])

    def _passes(self, generator: np.random.Generator, rows: int) -> np.ndarray:
        """As many row numbers as the first group has rows, from shuffled passes over `rows` rows."""
        passes = math.ceil(self.source_rows / rows)
        return np.concatenate([generator.permutation(rows) for _ in range(passes)])[: self.source_rows]

    def state(self) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
        """What a checkpoint keeps: JSON-able counters and the generator's state, and the epoch's first two orders."""
        meta = {"epoch": self.epoch, "position": self.position, "sampler": self.generator.bit_generator.state}
        target = self.orders[1] if len(self.rows) > 1 else np.zeros(0, dtype=np.int64)
        return meta, {"source_order": self.orders[0], "target_order": target}

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
        """Put back what `state` took, and draw the further groups' orders of the epoch again."""
        self.epoch, self.position = meta["epoch"], meta["position"]
        self.generator.bit_generator.state = meta["sampler"]
        self.orders[0] = arrays["source_order"]
        if len(self.rows) > 1:
            self.orders[1] = arrays["target_order"]
        if self.epoch > 0:
            self._further()
