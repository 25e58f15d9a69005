"""The differential checks of a compiled model: summary vs built module vs emitted source.

Each check returns None, or (what disagreed, site, detail) for the oracle's Finding.
"""

from __future__ import annotations

import torch

from spec_compiler import SpecError
from spec_compiler.backends.torch_source import emit_source, load_source
from spec_compiler.length_range import nearest_length

BATCH = 2
# The length given to a `?` or named dimension (or the nearest the model takes): over 2,
# so that a length-changing body cannot hide behind broadcasting, and odd, so that a
# halving that rounds down and one that rounds up give different lengths.
LENGTH = 23
LONGEST = 512  # the longest length the activation estimate allows for


def counted(module: torch.nn.Module) -> tuple[int, int]:
    """(parameters + BatchNorm running statistics, trainable parameters), as the summary counts."""
    total = sum(p.numel() for p in module.parameters())
    total += sum(b.numel() for name, b in module.named_buffers() if name.endswith(("running_mean", "running_var")))
    trainable = sum(p.numel() for p in module.parameters() if p.requires_grad)
    return total, trainable


def sample(model, seed: int = 0, length: int = LENGTH) -> tuple[torch.Tensor, ...]:
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


def length(model) -> int | None:
    """The length to give a `?` or named dimension: the one the shape rules take nearest to
    LENGTH (spec_compiler/length_range.py); None when they take none up to LONGEST."""
    if is_static(model):
        return LENGTH
    try:
        chosen = nearest_length(model.info, LENGTH)
    except SpecError:
        return None
    return chosen if chosen <= LONGEST else None


def forward(module: torch.nn.Module, model, seed: int = 0):
    """(inputs, outputs) of a forward pass, None when the model takes no length at all. A
    length the shape rules take must run: a refusal there is a rule that misses a case."""
    chosen = length(model)
    if chosen is None:
        return None
    x = sample(model, seed, chosen)
    with torch.no_grad():
        return x, outputs(module(*x))


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
