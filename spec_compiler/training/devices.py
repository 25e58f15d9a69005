"""Where training runs: the device, and how many CPU threads a step uses."""

from __future__ import annotations

import os

import torch

from ..errors import UsageError
from . import ddp

SMALL_STEP_MACS = 3e8


def pick_device(name: str | None) -> torch.device:
    if name in (None, "auto"):
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise UsageError("--device cuda: no CUDA device is available (use --device cpu or auto)")
    if name != "cpu" and not name.startswith("cuda"):
        raise UsageError(f"--device: unknown device `{name}` (auto, cpu, cuda)")
    return torch.device(name)


def cpu_threads(flops_per_sample: int, batch: int, dist: ddp.Dist) -> int:
    """Intra-op threads on the CPU: 1 when a training step is small (below ~3e8
    multiply-adds, forward and backward), where threads cost more in synchronization
    than they give (and collapse on a busy machine); else torch's default (the
    physical cores), shared among the DDP processes of this machine. It depends only on
    the model and the batch, so the same run always uses the same count (and gives
    the same weights)."""
    if flops_per_sample * batch * 3 < SMALL_STEP_MACS:
        return 1
    local = int(os.environ.get("LOCAL_WORLD_SIZE", dist.world)) if dist.enabled else 1
    return max(1, torch.get_num_threads() // local)


def amp_dtype(amp: str | None) -> torch.dtype | None:
    """--amp bf16|fp16 as a torch dtype (None: full precision)."""
    if amp not in (None, "none", "bf16", "fp16"):
        raise UsageError(f"--amp: unknown precision `{amp}` (bf16, fp16)")
    return {"bf16": torch.bfloat16, "fp16": torch.float16}.get(amp or "none")
