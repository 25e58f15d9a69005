"""torch.distributed data parallelism, when launched by torchrun.

``torchrun --nproc_per_node=N -m spec_compiler.cli train FILE --out DIR`` (or the
``specc`` script: ``torchrun --nproc_per_node=N $(which specc) train FILE``) sets
RANK, WORLD_SIZE, LOCAL_RANK, MASTER_ADDR and MASTER_PORT; the trainer then joins the
process group (nccl on CUDA, gloo on the CPU), wraps the model in
DistributedDataParallel, and gives each process every WORLD_SIZE-th sample of each
epoch's shuffled order (padded by repeating the order's first samples so every process
takes the same number of steps, as DistributedSampler does). ``--batch`` is per
process. Validation is sharded and its sums are reduced. Only rank 0 writes files and
prints.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch


@dataclass(frozen=True)
class Dist:
    rank: int = 0
    world: int = 1
    local_rank: int = 0
    owns_group: bool = False

    @property
    def enabled(self) -> bool:
        return self.world > 1

    @property
    def main(self) -> bool:
        return self.rank == 0


SINGLE = Dist()  # one process, no torch.distributed


def launched() -> bool:
    return "RANK" in os.environ and int(os.environ.get("WORLD_SIZE", "1")) > 1


def setup(device_type: str) -> Dist:
    if not launched():
        return SINGLE
    import torch.distributed as dist

    rank, world = int(os.environ["RANK"]), int(os.environ["WORLD_SIZE"])
    local_rank = int(os.environ.get("LOCAL_RANK", rank))
    owns = False
    if not dist.is_initialized():
        backend = "nccl" if device_type == "cuda" else "gloo"
        if device_type == "cuda":
            torch.cuda.set_device(local_rank)
        dist.init_process_group(backend=backend, rank=rank, world_size=world)
        owns = True
    return Dist(rank, world, local_rank, owns)


def teardown(d: Dist) -> None:
    if d.owns_group:
        import torch.distributed as dist

        if dist.is_initialized():
            dist.destroy_process_group()


def all_reduce(tensor: torch.Tensor, d: Dist, op: str = "sum") -> torch.Tensor:
    if not d.enabled:
        return tensor
    import torch.distributed as dist

    dist.all_reduce(tensor, op=dist.ReduceOp.SUM if op == "sum" else dist.ReduceOp.MAX)
    return tensor


def shard(order: torch.Tensor, d: Dist, pad: bool = True) -> torch.Tensor:
    """This process's part of a sample order: DistributedSampler's (unshuffled: the order is
    already shuffled) with `pad`, else every WORLD_SIZE-th sample."""
    if not d.enabled:
        return order
    if not pad:
        return order[d.rank::d.world]
    from torch.utils.data import DistributedSampler

    sampler = DistributedSampler(order, num_replicas=d.world, rank=d.rank, shuffle=False)
    return order[torch.tensor(list(sampler), dtype=torch.int64, device=order.device)]
