"""Loss and metrics summed over an epoch or over a data set: the same sums for training
logs, validation and `specc evaluate`.

What a run minimizes and logs is its objective: a chain's one output (ChainObjective), or a
graph's several (multitask.GraphObjective). Both offer `fused` (the step runs the model's
forward_logits), `loss(z, y)`, `accumulator(start)` (an epoch's sums, as one float64 vector
for logs, DDP and checkpoints) and `logs(sums)`. A graph's batches are tuples: (its inputs,
its targets), and its model gives a tuple of outputs."""

from __future__ import annotations

from collections.abc import Callable, Iterable

import torch

from . import ddp
from .options.losses import Head
from .options.metrics import Measure


def each(value, function: Callable):
    """`function` of a tensor, or of each of a graph's tensors (a tuple); None stays None."""
    if value is None:
        return None
    return tuple(function(v) for v in value) if isinstance(value, tuple) else function(value)


def as_tuple(value) -> tuple:
    """A graph's tuple (of inputs, of outputs) as it is; one tensor as a tuple of one."""
    return value if isinstance(value, tuple) else (value,)


def autocast(device: torch.device, dtype: torch.dtype | None):
    """Mixed precision on `device` with `dtype`, or full precision for None."""
    return torch.autocast(device.type, dtype=dtype, enabled=dtype is not None)


def forward_loss(module, objective, inputs: tuple, targets, device: torch.device,
                 amp: torch.dtype | None) -> tuple:
    """(loss, output) of one batch, the rule training steps (compiling.StepModule) and scoring
    share: the model's forward_logits (fused losses) or forward under autocast, the output in
    float32 (a graph's: a tuple), the objective's loss plus the model's regularization."""
    if amp is None:  # no context: Dynamo splits a graph that breaks inside one less well
        z = module.forward_logits(*inputs) if objective.fused else module(*inputs)
    else:
        with autocast(device, amp):
            z = module.forward_logits(*inputs) if objective.fused else module(*inputs)
    z = each(z, lambda v: v.float())
    loss = objective.loss(z, targets)
    if module.has_regularization:
        loss = loss + module.regularization_loss()
    return loss, z


class Accumulator:
    """An epoch's sums: the loss (times the batch size), the sample count, and each measure's
    statistics. A few small tensor ops per batch and no device synchronization; `tensor()`
    gathers them (one float64 vector, for logs, DDP reduction and checkpoints)."""

    def __init__(self, measures: list[Measure], head: Head, start: torch.Tensor | None = None):
        self.measures, self.head = measures, head
        self.probabilities = any(m.needs_probabilities for m in measures)
        self.slots: list = [0.0] * (2 + sum(m.size for m in measures))
        if start is not None:
            self.slots = [float(v) for v in start]

    def add(self, loss: torch.Tensor, z: torch.Tensor, y: torch.Tensor) -> None:
        """One batch: its mean loss, what the step computed (z) and the labels."""
        n, s = y.shape[0], self.slots
        s[0] = torch.add(s[0], loss, alpha=n) if isinstance(s[0], torch.Tensor) else loss.double() * n + s[0]
        s[1] += n
        if not self.measures:
            return
        out = self.head.outputs(z) if self.probabilities else z
        for i, value in enumerate(measure_stats(self.measures, out, y), start=2):
            s[i] = s[i] + value

    def tensor(self, device=None) -> torch.Tensor:
        return torch.tensor([float(v) for v in self.slots], dtype=torch.float64, device=device)


class ChainObjective:
    """A chain's one output: its head (fused with the loss or not), loss function and measures."""

    def __init__(self, head: Head, loss_fn, measures: list[Measure]):
        self.head, self.loss_fn, self.measures = head, loss_fn, measures

    @property
    def fused(self) -> bool:
        return self.head.fused

    def loss(self, z: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return self.loss_fn(z, y)

    def accumulator(self, start: torch.Tensor | None = None) -> Accumulator:
        return Accumulator(self.measures, self.head, start)

    def logs(self, sums: torch.Tensor) -> dict:
        return logs_from(sums, self.measures)


def logs_from(sums: torch.Tensor, measures: list[Measure]) -> dict:
    """{"loss": mean loss, measure name: value} from an Accumulator's (reduced) sums."""
    return {"loss": float(sums[0] / sums[1]) if float(sums[1]) else float("nan"), **measure_values(measures, sums[2:])}


def measure_stats(measures: list[Measure], outputs: torch.Tensor, y: torch.Tensor) -> list:
    """Every measure's statistics of one batch, in order: what an epoch's sums add up."""
    return [value for measure in measures for value in measure.stats(outputs, y)]


def measure_values(measures, sums: torch.Tensor, prefix: str = "") -> dict:
    """Each measure's value (named `prefix` + its name) from the sums of its statistics, which
    start `sums`."""
    values, offset = {}, 0
    for measure in measures:
        values[prefix + measure.name] = measure.value(sums[offset:offset + measure.size])
        offset += measure.size
    return values


@torch.no_grad()
def score(module, objective, x, y, batch: int, device: torch.device, amp: torch.dtype | None,
          dist: ddp.Dist = ddp.SINGLE) -> dict:
    """Loss and metrics of `module` over (x, y), in eval mode, sharded across DDP processes."""
    first = as_tuple(x)[0]
    index = ddp.shard(torch.arange(len(first), device=first.device), dist, pad=False)
    batches = ((each(x, lambda v: v.index_select(0, part)), each(y, lambda v: v.index_select(0, part)))
               for part in index.split(max(batch, 256)))
    return score_batches(module, objective, batches, device, amp, dist)


@torch.no_grad()
def score_batches(module, objective, batches: Iterable, device: torch.device, amp: torch.dtype | None,
                  dist: ddp.Dist = ddp.SINGLE) -> dict:
    """Loss and metrics of `module` over this process's (x, y) batches (y None: the target is
    x), in eval mode; the sums are reduced across DDP processes."""
    was_training = module.training
    module.eval()
    sums = objective.accumulator()
    for xb, yb in batches:
        xb = each(xb, lambda v: v.to(device, non_blocking=True))
        yb = xb if yb is None else each(yb, lambda v: v.to(device, non_blocking=True))
        sums.add(*forward_loss(module, objective, as_tuple(xb), yb, device, amp), yb)
    module.train(was_training)
    return objective.logs(ddp.all_reduce(sums.tensor(device), dist).cpu())
