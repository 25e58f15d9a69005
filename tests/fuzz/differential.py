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


def sample(model, seed: int = 0, length: int = LENGTH) -> torch.Tensor:
    t = model.info.ir.input.type
    dims = [d if isinstance(d, int) else length for d in t.dims]
    generator = torch.Generator().manual_seed(seed)
    if t.dtype == "int":
        return torch.randint(0, t.vocab, (BATCH, *dims), generator=generator)
    return torch.randn(BATCH, *dims, generator=generator)


def length(model) -> int | None:
    """The length to give a `?` or named dimension: the one the shape rules take nearest to
    LENGTH (spec_compiler/length_range.py); None when they take none up to LONGEST."""
    if model.info.ir.input.type.is_static:
        return LENGTH
    try:
        chosen = nearest_length(model.info, LENGTH)
    except SpecError:
        return None
    return chosen if chosen <= LONGEST else None


def forward(module: torch.nn.Module, model, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor] | None:
    """(input, output) of a forward pass, None when the model takes no length at all. A
    length the shape rules take must run: a refusal there is a rule that misses a case."""
    chosen = length(model)
    if chosen is None:
        return None
    x = sample(model, seed, chosen)
    with torch.no_grad():
        return x, module(x)


def _shape_problem(y: torch.Tensor, model) -> str | None:
    want = model.info.output
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
    classes = [v for v in namespace.values() if isinstance(v, type) and "final_activation" in vars(v)]
    emitted = classes[-1]().eval()
    if counted(emitted) != counted(built):
        return ("CountDiffers", "spec_compiler/backends/torch_source.py",
                f"emitted module holds {counted(emitted)}, built {counted(built)}")
    emitted.load_state_dict(built.state_dict())
    ran = forward(built, model, seed=1)
    if ran is None:
        return None
    x, want = ran
    with torch.no_grad():
        got = emitted(x)
    if want.shape != got.shape or not torch.allclose(want, got, rtol=1e-4, atol=1e-5, equal_nan=True):
        return "OutputDiffers", "spec_compiler/backends/torch_source.py", "emitted and built modules disagree"
    return None
