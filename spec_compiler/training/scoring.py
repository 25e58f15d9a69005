"""Loss and metrics summed over an epoch or over a data set: the same sums for training
logs, validation and `specc evaluate`.

What a run minimizes and logs is its objective: a chain's one output (ChainObjective), or a
graph's several (multitask.GraphObjective). Both offer `fused` (the step runs the model's
forward_logits), `loss(z, y)`, `batch_sums(loss, z, y)` (one batch's share of the sums an
epoch logs: one float64 vector, the same for logs, DDP and checkpoints), `sums_size` and
`logs(sums)`. A graph's batches are tuples: (its inputs, its targets), and its model gives a
tuple of outputs."""

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
    """(loss, output, batch sums) of one batch, the rule training steps (compiling.StepModule)
    and scoring share: the model's forward_logits (fused losses) or forward under autocast, the
    output in float32 (a graph's: a tuple), the objective's loss plus the model's
    regularization, and the batch's share of the epoch's sums. Compiled as one piece, the
    sums' small reductions fuse with the loss instead of each running on its own."""
    if amp is None:  # no context: Dynamo splits a graph that breaks inside one less well
        z = module.forward_logits(*inputs) if objective.fused else module(*inputs)
    else:
        with autocast(device, amp):
            z = module.forward_logits(*inputs) if objective.fused else module(*inputs)
    z = each(z, lambda v: v.float())
    loss = objective.loss(z, targets)
    if module.has_regularization:
        loss = loss + module.regularization_loss()
    return loss, z, objective.batch_sums(loss.detach(), each(z, lambda v: v.detach()), targets)


def stacked(values: list) -> torch.Tensor:
    """Statistics (tensors and numbers) as one float64 vector, on the first tensor's device."""
    device = next(v.device for v in values if isinstance(v, torch.Tensor))
    return torch.stack([torch.as_tensor(v, dtype=torch.float64, device=device).reshape(()) for v in values])


class EpochSums:
    """An epoch's sums, as one float64 vector: the loss (times the batch size), the sample
    count, then what the objective adds (each measure's statistics; a graph's per-output
    losses). One addition per batch and no device synchronization."""

    def __init__(self, size: int, start: torch.Tensor | None = None):
        self.total = torch.zeros(size, dtype=torch.float64) if start is None else start.double().clone()

    def add(self, batch_sums: torch.Tensor) -> None:
        self.total = batch_sums + self.total.to(batch_sums.device)

    def tensor(self, device=None) -> torch.Tensor:
        return self.total.to(device)


class ChainObjective:
    """A chain's one output: its head (fused with the loss or not), loss function and measures."""

    def __init__(self, head: Head, loss_fn, measures: list[Measure]):
        self.head, self.loss_fn, self.measures = head, loss_fn, measures

    @property
    def fused(self) -> bool:
        return self.head.fused

    def loss(self, z: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return self.loss_fn(z, y)

    @property
    def sums_size(self) -> int:
        return 2 + sum(m.size for m in self.measures)

    def batch_sums(self, loss: torch.Tensor, z: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """The loss times the batch size, the batch size, and each measure's statistics."""
        values = [loss * y.shape[0], y.shape[0]]
        if self.measures:
            out = self.head.outputs(z) if any(m.needs_probabilities for m in self.measures) else z
            values += measure_stats(self.measures, out, y)
        return stacked(values)

    def logs(self, sums: torch.Tensor) -> dict:
        return logs_from(sums, self.measures)


def logs_from(sums: torch.Tensor, measures: list[Measure]) -> dict:
    """{"loss": mean loss, measure name: value} from an epoch's (reduced) sums (EpochSums)."""
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
    sums = EpochSums(objective.sums_size)
    for xb, yb in batches:
        xb = each(xb, lambda v: v.to(device, non_blocking=True))
        yb = xb if yb is None else each(yb, lambda v: v.to(device, non_blocking=True))
        sums.add(forward_loss(module, objective, as_tuple(xb), yb, device, amp)[2])
    module.train(was_training)
    return objective.logs(ddp.all_reduce(sums.tensor(device), dist).cpu())
