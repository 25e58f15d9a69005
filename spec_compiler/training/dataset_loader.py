"""How the fit loop walks its data: which rows each step takes (StepPlan), and where the
batches are read (Batches: in this process, or by DataLoader worker processes).

Order: pass p over the training rows is shuffled by a generator seeded with (seed, p); under
torchrun a DistributedSampler gives each process its share of that order (ddp.shard). An
epoch is one pass, or with `steps_per_epoch` that many steps of the stream of passes (an
epoch may end inside a pass, and the next one continues it); `max_steps` ends the run at
that step, inside an epoch if need be. A trailing batch of one sample joins the batch
before it when the model has batch norm (which cannot train on one sample).

Workers (`--workers N`): N DataLoader processes read and adapt batches ahead of the step
(each batch is one dataset item: rows in, tensors out; no per-sample collation). With 0,
batches are read in the training process: for data held in memory that is the fastest
path (an index_select, on the GPU when training there). A worker's SpecError (a bad sample)
reaches the training process as the same SpecError.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass

import torch
from torch import nn

from ..errors import Diagnostic, SpecError
from . import ddp
from .dataset import FileSamples, Samples

BATCH_NORMS = (nn.BatchNorm1d, nn.BatchNorm2d, nn.BatchNorm3d)
MAX_DEFAULT_WORKERS = 4


def derive(*parts: int) -> int:
    """A seed from several integers (stable across runs and platforms)."""
    value = 0x9E3779B97F4A7C15
    for part in parts:
        value = (value ^ (part + 0x9E3779B97F4A7C15 + (value << 6) + (value >> 2))) & 0xFFFFFFFFFFFF
    return value


def epoch_order(n: int, seed: int, epoch: int) -> torch.Tensor:
    """The shuffled order of pass `epoch` over n samples."""
    return torch.randperm(n, generator=torch.Generator().manual_seed(derive(seed, epoch, 1)))


def batch_bounds(n: int, batch: int, merge_single: bool) -> list[tuple[int, int]]:
    """(start, end) of each step's batch over n samples; with `merge_single` a trailing batch
    of one sample joins the one before it."""
    bounds = [(start, min(start + batch, n)) for start in range(0, n, batch)]
    if merge_single and len(bounds) > 1 and bounds[-1][1] - bounds[-1][0] == 1:
        bounds[-2:] = [(bounds[-2][0], n)]
    return bounds


def trains_batch_norm(module: nn.Module) -> bool:
    """The module has a batch norm that trains (a frozen one stays in eval mode)."""
    return any(isinstance(m, BATCH_NORMS) and m.training for m in module.train().modules())


class StepPlan:
    """The rows of every step of a run, for this process."""

    def __init__(self, rows: torch.Tensor, batch: int, seed: int, dist: ddp.Dist, merge_single: bool,
                 steps_per_epoch: int | None = None, max_steps: int | None = None):
        per_process = -(-len(rows) // dist.world)
        if merge_single and per_process == 1:
            raise SpecError.at(None, "batch norm cannot train on a single sample per step, and there is one "
                                     "training sample" + (" per process" if dist.enabled else ""),
                               "give more training data")
        self.rows, self.seed, self.dist = rows, seed, dist
        self.bounds = batch_bounds(per_process, batch, merge_single)
        self.steps_per_pass = len(self.bounds)
        self.epoch_steps = steps_per_epoch or self.steps_per_pass
        self.max_steps = max_steps
        self._pass: tuple[int, torch.device, torch.Tensor] | None = None

    def epochs_for(self, epochs: int | None, default: int) -> int:
        """How many epochs the run takes: `epochs` (else `default`), or fewer when max_steps
        ends it sooner; with max_steps and no `epochs`, as many as max_steps needs."""
        if self.max_steps is None:
            return epochs or default
        needed = -(-self.max_steps // self.epoch_steps)
        return needed if epochs is None else min(epochs, needed)

    def steps_in(self, epoch: int) -> int:
        """Steps of `epoch` (counted from 0): fewer than epoch_steps when max_steps falls in it."""
        if self.max_steps is None:
            return self.epoch_steps
        return max(0, min(self.epoch_steps, self.max_steps - epoch * self.epoch_steps))

    def steps_before(self, epoch: int, step: int) -> int:
        return epoch * self.epoch_steps + step

    def epoch_rows(self, epoch: int, first: int, device: torch.device) -> list[torch.Tensor]:
        """The rows of each step of `epoch` from step `first` on (views of one tensor per pass, on
        `device`: where the samples are, for data held on a GPU)."""
        batches = []
        for step in range(first, self.steps_in(epoch)):
            index, within = divmod(self.steps_before(epoch, step), self.steps_per_pass)
            start, end = self.bounds[within]
            batches.append(self._pass_rows(index, device)[start:end])
        return batches

    def warm_up_rows(self, device: torch.device) -> list[torch.Tensor]:
        """A batch of rows of each size the run's steps take (the full batch, and the last one of
        a pass when it is shorter): what --compile compiles before the first step."""
        sizes = sorted({end - start for start, end in self.bounds}, reverse=True)
        return [self._pass_rows(0, device)[:size] for size in sizes]

    def _pass_rows(self, index: int, device: torch.device) -> torch.Tensor:
        if self._pass is None or self._pass[:2] != (index, device):
            order = ddp.shard(epoch_order(len(self.rows), self.seed, index), self.dist)
            self._pass = (index, device, self.rows[order].to(device))
        return self._pass[2]


def validation_rows(rows: torch.Tensor, batch: int, dist: ddp.Dist) -> list[torch.Tensor]:
    """This process's validation rows (no padding: each sample counts once), in batches."""
    mine = ddp.shard(rows, dist, pad=False)
    return list(mine.split(max(batch, 256)))


def default_workers(samples: Samples, dist: ddp.Dist) -> int:
    """0 for data held in memory; for data on disk half this machine's cores (shared among its
    DDP processes), at least 1 and at most MAX_DEFAULT_WORKERS."""
    if not isinstance(samples, FileSamples):
        return 0
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    local = int(os.environ.get("LOCAL_WORLD_SIZE", dist.world)) if dist.enabled else 1
    return max(1, min(MAX_DEFAULT_WORKERS, cores // (2 * local)))


@dataclass(frozen=True)
class ReadFailure:
    """A worker's SpecError, carried back whole (an exception pickles only its message)."""

    diagnostics: list[Diagnostic]

    def error(self) -> SpecError:
        return SpecError(self.diagnostics)


class _BatchReader(torch.utils.data.Dataset):
    """A dataset whose items are batches: rows in, (x, y) arrays out. Arrays, not tensors,
    cross from the worker: pickled through its pipe they cost the training process about half
    the time that a tensor's shared memory (a file descriptor per tensor) does."""

    def __init__(self, samples: Samples):
        self.samples = samples

    def __getitem__(self, rows):
        try:
            x, y = self.samples.read(rows)
        except SpecError as error:
            return ReadFailure(error.diagnostics)
        return x.numpy(), (y.numpy() if y is not None else None)


def _whole(batch):
    """The collate function: each item is a batch already."""
    return batch


class _Rows(torch.utils.data.Sampler):
    """The row batches the loop asks for next (read when the DataLoader starts iterating)."""

    def __init__(self):
        self.batches: list[torch.Tensor] = []

    def __iter__(self):
        return iter(self.batches)

    def __len__(self) -> int:
        return len(self.batches)


class Batches:
    """Reads batches of samples by rows: in this process, or by `workers` DataLoader processes
    that stay up for the whole run and read ahead (`pin_memory`: for a CUDA device, batches
    are copied into pinned memory, from which the copy to the device runs asynchronously)."""

    def __init__(self, samples: Samples, workers: int, pin_memory: bool):
        self.samples, self.workers, self.pin_memory = samples, workers, pin_memory
        self._rows = _Rows()
        self._loader = None
        if workers:
            self._loader = torch.utils.data.DataLoader(
                _BatchReader(samples), sampler=self._rows, batch_size=None, collate_fn=_whole, num_workers=workers,
                persistent_workers=True, prefetch_factor=2,
                generator=torch.Generator())  # its seed draw must not advance the training RNG

    def __call__(self, batches: list[torch.Tensor]) -> Iterator[tuple[torch.Tensor, torch.Tensor | None]]:
        if self._loader is None:
            for rows in batches:
                yield self.samples.read(rows)
            return
        self._rows.batches = [rows.cpu() for rows in batches]
        for item in self._loader:
            if isinstance(item, ReadFailure):
                raise item.error()
            yield tuple(None if a is None else self._tensor(a) for a in item)

    def _tensor(self, array) -> torch.Tensor:
        tensor = torch.from_numpy(array)
        return tensor.pin_memory() if self.pin_memory else tensor

    def close(self) -> None:
        """Stop the worker processes."""
        self._loader = None
