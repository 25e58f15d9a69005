"""`--compile` and channels_last: the two speed options of the training step, kept thin so
the CPU path that the tests cover is the GPU path too.

- torch.compile wraps the module the step runs (inductor, or another backend by name from
  Python: "aot_eager" and "eager" compile in seconds, for checks). Compilation is lazy in
  torch, so the loop compiles before its first step, on one batch of each size the steps
  take, and reports that time apart (progress output and run.json's `compile_s`): the
  run's samples/s are those of the compiled steps alone. The warm-up leaves no trace: the
  weights, batch-norm statistics, gradients and random state are as they were.
- channels_last (NHWC) for a model with 2-D convolutions, on the CPU and on CUDA: the
  model's weights and each input batch. cuDNN's kernels prefer it on CUDA; on the CPU
  (oneDNN) it was measured faster for LeNet-5 (1.04-1.10x), small 3x32x32 convnets with and
  without batch norm (1.1-1.6x) and one with depthwise convolutions (1.39x), and 0.96x for
  LeNet-5 with batch norm (process CPU time per step, batch 32, one thread; the channels_last
  figure of bench/train_speed.py). The run's weights are saved in the default layout.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable

import numpy as np
import torch
from torch import nn

from ..errors import UsageError
from . import ddp
from .callbacks import Callback
from .scoring import forward_loss

BACKENDS = ("inductor", "aot_eager", "eager")

# Inductor's checks of its own work, on every call of the compiled code: that the kernels it
# calls returned tensors of the sizes, strides and alignment it planned for. They guard
# inductor's code generation, not the user's model, and cost LeNet-5 2-3% of a step
# (38 size checks per step; bench/train_speed.py).
INDUCTOR_OPTIONS = {"size_asserts": False, "alignment_asserts": False, "scalar_asserts": False}


def backend_of(option: bool | str | None) -> str | None:
    """`compile=True` is inductor; a backend name picks that backend; False/None: eager."""
    if option in (None, False):
        return None
    if option is True:
        return "inductor"
    if option not in BACKENDS:
        raise UsageError(f"compile: unknown backend `{option}` ({', '.join(BACKENDS)})")
    return option


def memory_format(module: nn.Module, device: torch.device, backend: str | None) -> torch.memory_format | None:
    """channels_last for a model with 2-D convolutions, except compiled on the CPU (there the
    default layout measured faster: LeNet-5 compiled 1.27x the eager hand loop against 1.24x
    in channels_last); None (as it is) otherwise."""
    if backend is not None and device.type == "cpu":
        return None
    return torch.channels_last if any(isinstance(m, nn.Conv2d) for m in module.modules()) else None


class StepModule(nn.Module):
    """What a training step runs, as one piece (the piece --compile compiles): the batch's
    loss, output and sums (scoring.forward_loss). Compiling the loss with the forward lets
    inductor fuse it with the last layers (LeNet-5: 1.32x the eager hand loop against 1.27x
    for the forward alone, bench/train_speed.py)."""

    def __init__(self, module: nn.Module, objective, device: torch.device, amp: torch.dtype | None):
        super().__init__()
        self.module, self.objective = module, objective
        self.device, self.amp = device, amp

    def forward(self, inputs: tuple, targets) -> tuple:
        return forward_loss(self.module, self.objective, inputs, targets, self.device, self.amp)


def step_module(module: nn.Module, objective, amp: torch.dtype | None, dist: ddp.Dist, device: torch.device,
                backend: str | None) -> nn.Module:
    """The step's module: wrapped in DistributedDataParallel under torchrun, then compiled
    with `backend` (None: eager)."""
    net: nn.Module = StepModule(module, objective, device, amp)
    if dist.enabled:
        from torch.nn.parallel import DistributedDataParallel

        net = DistributedDataParallel(net, device_ids=[device.index] if device.type == "cuda" else None)
    return net if backend is None else compile_module(net, backend)


def compile_module(net: nn.Module, backend: str) -> nn.Module:
    return torch.compile(net, backend=backend, options=INDUCTOR_OPTIONS if backend == "inductor" else None)


def steady():
    """Compiled steps in which Dynamo checks only the guards that tell its compiled graphs
    apart (the batch size), not all of them (the model's structure, each parameter's state,
    the loss): LeNet-5 trains 6-7% faster. The fit loop enters it after an epoch's first step
    (which takes the full check, so a change made between epochs, e.g. a callback freezing a
    layer, still recompiles) and leaves it when the epoch ends: once per epoch, since
    entering costs as much as a fortieth of a LeNet-5 step. Only where `trusts_steps`, and
    after the warm-up has compiled every batch size."""
    return torch.compiler.set_stance("default", skip_guard_eval_unsafe=True)


def trusts_steps(backend: str | None, dist: ddp.Dist, user_callbacks) -> bool:
    """Whether compiled steps after an epoch's first may run `steady`: compiled, not under DDP,
    and no user callback runs code after each step (one may change the model between steps)."""
    return backend is not None and not dist.enabled and not any(
        type(c).on_batch_end is not Callback.on_batch_end for c in user_callbacks)


def keep_recurrent_layers_eager(module: nn.Module) -> list[nn.Module]:
    """Dynamo does not trace recurrent layers (nn.RNNBase). Left as they are in a compiled
    model, Dynamo tries to and fails on every forward (spam_lstm: 0.80-0.85x the eager hand
    loop); marked torch.compiler.disable for the run, it stops at them at once (0.89-0.97x).
    In torch 2.13 either stop still ends the compiled graph for the whole step, so such a
    step runs eagerly. Returns the layers so marked (restore_forwards undoes it)."""
    layers = [m for m in module.modules() if isinstance(m, nn.RNNBase)]
    for layer in layers:
        layer.forward = torch.compiler.disable(type(layer).forward.__get__(layer))
    return layers


def restore_forwards(layers: list[nn.Module]) -> None:
    """The layers' own forward again (the module goes back to the user with the run's result)."""
    for layer in layers:
        del layer.forward


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
