"""The differential checks of a compiled model: summary vs built module vs emitted source.

Each check returns None, or (what disagreed, site, detail) for the oracle's Finding.
"""

from __future__ import annotations

import re

import torch

from spec_compiler.backends.torch_source import emit_source, load_source

BATCH = 2
# Lengths given to a `?` or named dimension, in turn while the model refuses them (too
# short for its poolings): a `?` length may be any, so a refusal alone is no finding. Odd
# and over 2, so that a length-changing body cannot hide behind broadcasting.
LENGTHS = (24, 512, 5)


def counted(module: torch.nn.Module) -> tuple[int, int]:
    """(parameters + BatchNorm running statistics, trainable parameters), as the summary counts."""
    total = sum(p.numel() for p in module.parameters())
    total += sum(b.numel() for name, b in module.named_buffers() if name.endswith(("running_mean", "running_var")))
    trainable = sum(p.numel() for p in module.parameters() if p.requires_grad)
    return total, trainable


def sample(model, seed: int = 0, length: int = LENGTHS[0]) -> tuple[torch.Tensor, ...]:
    """A random batch for each of the model's inputs, in spec order."""
    generator = torch.Generator().manual_seed(seed)
    batches = []
    for t in model.info.inputs.values():
        dims = [d if isinstance(d, int) else length for d in t.dims]
        if t.dtype == "int":
            batches.append(torch.randint(0, t.vocab, (BATCH, *dims), generator=generator))
        else:
            batches.append(torch.randn(BATCH, *dims, generator=generator))
    return tuple(batches)


def is_static(model) -> bool:
    return all(t.is_static for t in model.info.inputs.values())


def outputs(y) -> tuple[torch.Tensor, ...]:
    """A forward pass's outputs: one tensor, or a graph's tuple of them."""
    return y if isinstance(y, tuple) else (y,)


def _nodes(nodes):
    for node in nodes:
        yield node
        for body in node.bodies:
            yield from _nodes(body)


def lengths(model) -> tuple[int, ...]:
    """The lengths to try: LENGTHS, below any `max_length` the model declares (with room
    for a class token)."""
    if is_static(model):
        return (LENGTHS[0],)
    nodes = [node for step in model.ir.steps for node in step.nodes]
    caps = [n.params.max_length for n in _nodes(nodes) if getattr(n.params, "max_length", None)]
    cap = min(caps, default=None)
    return tuple(n for n in LENGTHS if cap is None or n < cap) or (max(1, cap - 1),)


# PyTorch refusing a run-time length as too short for a window, a padding or a norm: with a
# `?` length that is the user's choice of input, not something `specc compile` could check.
TOO_SHORT = re.compile(r"Padding size should be less than|Invalid computed output size|Kernel size can't be greater"
                       r"|Output size is too small|more than 1 spatial element|more than 1 value per channel"
                       r"|narrow\(\): length must be non-negative")


def forward(module: torch.nn.Module, model, seed: int = 0):
    """(inputs, outputs) of a forward pass; with a `?` length, at the first length the model
    takes, or None when it refuses every length tried as too short."""
    tries = lengths(model)
    refusals = []
    with torch.no_grad():
        for length in tries:
            x = sample(model, seed, length)
            try:
                return x, outputs(module(*x))
            except (RuntimeError, ValueError) as error:
                if is_static(model):
                    raise
                refusals.append(error)
    mistaken = [error for error in refusals if not TOO_SHORT.search(str(error))]
    if mistaken:
        raise mistaken[0]
    return None


def _shape_problem(ys: tuple[torch.Tensor, ...], model) -> str | None:
    wanted = list(model.info.outputs.values())
    if len(ys) != len(wanted):
        return f"{len(ys)} outputs, summary says {len(wanted)}"
    for y, want in zip(ys, wanted):
        if y.dim() != 1 + want.rank or y.shape[0] != BATCH:
            return f"output {tuple(y.shape)}, summary says batch x {want}"
        for got, expected in zip(y.shape[1:], want.dims):
            if isinstance(expected, int) and got != expected:
                return f"output {tuple(y.shape)}, summary says batch x {want}"
    return None


def check_build(model):
    summary = model.summary()
    module = model.build(seed=0).eval()
    counts = counted(module)
    if counts != (summary["total_params"], summary["trainable_params"]):
        return ("CountDiffers", "spec_compiler/backends/torch_build.py",
                f"module holds {counts}, summary says {(summary['total_params'], summary['trainable_params'])}")
    ran = forward(module, model)
    if ran is None:
        return None
    problem = _shape_problem(ran[1], model)
    if problem:
        return "ShapeDiffers", "spec_compiler/backends/torch_build.py", problem
    return None


def check_emitted(model):
    built = model.build(seed=1).eval()
    namespace = load_source(emit_source(model))
    classes = [v for v in namespace.values() if isinstance(v, type)
               and ("final_activation" in vars(v) or "final_activations" in vars(v))]
    emitted = classes[-1]().eval()
    if counted(emitted) != counted(built):
        return ("CountDiffers", "spec_compiler/backends/torch_source.py",
                f"emitted module holds {counted(emitted)}, built {counted(built)}")
    emitted.load_state_dict(built.state_dict())
    ran = forward(built, model, seed=1)
    if ran is None:
        return None
    x, wanted = ran
    with torch.no_grad():
        got = outputs(emitted(*x))
    if len(got) != len(wanted) or any(want.shape != one.shape or not torch.allclose(
            want, one, rtol=1e-4, atol=1e-5, equal_nan=True) for want, one in zip(wanted, got)):
        return "OutputDiffers", "spec_compiler/backends/torch_source.py", "emitted and built modules disagree"
    return None
