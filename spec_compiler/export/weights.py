"""Loading a run's safetensors weights into the built module, refusing any that do not fit."""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from ..errors import SpecError
from .messages import dims_text, first_line, listing


def load_weights(module: nn.Module, file: Path, spec_source: str, run_spec: str | None) -> None:
    """Load a safetensors state_dict into `module`; every key and shape must fit, every value be finite.

    `run_spec` is the spec the run was trained from (its model.spec), named in the hint when
    it differs from the one being exported."""
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    try:
        state = load_file(str(file))
    except (SafetensorError, OSError, ValueError, RuntimeError) as error:
        raise SpecError.at(None, f"{file}: not a readable safetensors file ({first_line(error)})",
                           "pass the weights.safetensors of a run written by `specc train`") from None
    expected = module.state_dict()
    optional = {k for k in expected if k.endswith("num_batches_tracked")}
    missing = sorted(set(expected) - set(state) - optional)
    unexpected = sorted(set(state) - set(expected))
    wrong = [(k, tuple(state[k].shape), tuple(expected[k].shape)) for k in sorted(set(state) & set(expected))
             if tuple(state[k].shape) != tuple(expected[k].shape)]
    if missing or unexpected or wrong:
        parts = []
        if missing:
            parts.append(f"missing keys: {listing(missing)}")
        if unexpected:
            parts.append(f"unexpected keys: {listing(unexpected)}")
        if wrong:
            parts.append("wrong shapes: " + listing([f"{k} is {dims_text(a)} in the file, {dims_text(b)} in the model"
                                                     for k, a, b in wrong]))
        hint = "were these weights trained from this spec?"
        if run_spec is not None and run_spec.strip() != spec_source.strip():
            hint += f" The run was trained from a different spec ({file.parent / 'model.spec'})."
        raise SpecError.at(None, f"the weights in {file} do not fit the model: " + "; ".join(parts), hint)
    for key, tensor in state.items():
        if tensor.is_floating_point() and not bool(torch.isfinite(tensor).all()):
            raise SpecError.at(None, f"{file}: `{key}` holds NaN or infinite values",
                               "the training diverged; lower the learning rate or clip gradients")
    module.load_state_dict(state, strict=False)
