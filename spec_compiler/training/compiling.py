"""`--compile` and channels_last: the two speed options of the training step, kept thin so
the CPU path that the tests cover is the GPU path too.

- torch.compile wraps the module the step runs (inductor, or another backend by name from
  Python: "aot_eager" and "eager" compile in seconds, for checks). Compilation is lazy in
  torch, so the loop compiles before its first step, on one batch of each size the steps
  take, and reports that time apart (progress output and run.json's `compile_s`): the
  run's samples/s are those of the compiled steps alone. The warm-up leaves no trace: the
  weights, batch-norm statistics, gradients and random state are as they were.
- channels_last (NHWC) for a model with 2-D convolutions on CUDA, where cuDNN's kernels
  prefer it. On the CPU it made LeNet-5's steps slower (bench/train_speed.py), so the CPU
  keeps the contiguous (NCHW) layout.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable

import numpy as np
import torch
from torch import nn

from ..errors import UsageError

BACKENDS = ("inductor", "aot_eager", "eager")


def backend_of(option: bool | str | None) -> str | None:
    """`compile=True` is inductor; a backend name picks that backend; False/None: eager."""
    if option in (None, False):
        return None
    if option is True:
        return "inductor"
    if option not in BACKENDS:
        raise UsageError(f"compile: unknown backend `{option}` ({', '.join(BACKENDS)})")
    return option


def memory_format(module: nn.Module, device: torch.device) -> torch.memory_format | None:
    """channels_last for a model with 2-D convolutions on CUDA; None (as it is) otherwise."""
    if device.type == "cuda" and any(isinstance(m, nn.Conv2d) for m in module.modules()):
        return torch.channels_last
    return None


def compile_module(net: nn.Module, backend: str) -> nn.Module:
    return torch.compile(net, backend=backend)


def warm_up(module: nn.Module, batches: list[tuple[torch.Tensor, torch.Tensor]],
            step: Callable[[torch.Tensor, torch.Tensor], torch.Tensor]) -> float:
    """Seconds spent compiling: `step(x, y)` (forward, loss) and its backward run once per
    batch, then the module's state, its gradients and every random generator are restored."""
    state = {k: v.detach().clone() for k, v in module.state_dict().items()}
    rng = (torch.get_rng_state(), np.random.get_state(), random.getstate(),
           torch.cuda.get_rng_state_all() if torch.cuda.is_available() and torch.cuda.is_initialized() else None)
    started = time.perf_counter()
    for x, y in batches:
        step(x, y).backward()
    if any(p.is_cuda for p in module.parameters()):
        torch.cuda.synchronize()
    seconds = time.perf_counter() - started
    module.load_state_dict(state)
    module.zero_grad(set_to_none=True)
    torch.set_rng_state(rng[0])
    np.random.set_state(rng[1])
    random.setstate(rng[2])
    if rng[3] is not None:
        torch.cuda.set_rng_state_all(rng[3])
    return seconds
