"""Containers for a spec's sequences and the structural kinds (layers/structure.py).

`Sequence` runs a body's layers in order, each child registered under its node name
(so state_dict keys read `conv2d_1.weight`, `basic_1.conv2d_1.weight`), and applies a
node's trailing activation (`dense 120 relu`) after it. Trailing activations hold no
parameters and are deliberately not registered as submodules: they add nothing to
the state_dict and never collide with a layer name.

A structural module names its bodies by its kind's layout labels (`body`, `shortcut`,
`branch_1`, ...), so module paths match the paths inference gives the layers.
"""

from __future__ import annotations

import torch
from torch import nn


class Sequence(nn.Module):
    """Child modules in order; `steps` is a list of (name, module) or (name, module, activation).

    `final` names the softmax/sigmoid that ends the sequence, if any ("step": a whole
    activation step, "trailing": the last child's trailing activation, "nested": the last
    child is a Sequence that itself ends in one); `forward_logits` leaves it out.
    """

    def __init__(self, steps: list, final: str | None = None):
        super().__init__()
        # Plain attributes first, children after: a layer may be named like one.
        self.final = final
        self._names = [step[0] for step in steps]
        self._activations = [step[2] if len(step) > 2 else None for step in steps]
        for name, module, *_ in steps:
            # Written straight into _modules so that any identifier can name a layer,
            # even one that is also an nn.Module attribute (`train`, `eval`).
            self._modules[name] = module

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        modules = self._modules
        for name, activation in zip(self._names, self._activations):
            x = modules[name](x)
            if activation is not None:
                x = activation.forward(x)  # unregistered and hook-free: skip nn.Module.__call__
        return x

    def forward_logits(self, x: torch.Tensor) -> torch.Tensor:
        """The output before a final softmax/sigmoid (the same as forward without one)."""
        if self.final is None:
            return self.forward(x)
        modules = self._modules
        last = len(self._names) - 1
        for index, (name, activation) in enumerate(zip(self._names, self._activations)):
            if index == last:
                if self.final == "step":
                    break
                if self.final == "nested":
                    return modules[name].forward_logits(x)
                return modules[name](x)  # "trailing": skip the activation
            x = modules[name](x)
            if activation is not None:
                x = activation.forward(x)
        return x

    def extra_repr(self) -> str:
        trailing = [f"{n}->{type(a).__name__}" for n, a in zip(self._names, self._activations) if a is not None]
        return ("activations: " + ", ".join(trailing)) if trailing else ""


class Residual(nn.Module):
    """body(x) + shortcut(x); an empty shortcut is the identity (He et al. 2016)."""

    def __init__(self, body: nn.Module, shortcut: nn.Module):
        super().__init__()
        self.body = body
        self.shortcut = shortcut

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x) + self.shortcut(x)


class Concat(nn.Module):
    """Runs every branch on the same input and concatenates along `dim` (batch-first)."""

    def __init__(self, branches: list, dim: int):
        super().__init__()
        for index, branch in enumerate(branches, start=1):
            self._modules[f"branch_{index}"] = branch
        self.dim = dim

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.combine([branch(x) for branch in self._modules.values()])

    def combine(self, outputs: list) -> torch.Tensor:
        """Concatenate tensors (the branches' outputs, or a graph's named tensors)."""
        return torch.cat(outputs, dim=self.dim)


class Add(nn.Module):
    """Runs every branch on the same input and adds the outputs elementwise (broadcasting size-1 axes)."""

    def __init__(self, branches: list):
        super().__init__()
        for index, branch in enumerate(branches, start=1):
            self._modules[f"branch_{index}"] = branch

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.combine([branch(x) for branch in self._modules.values()])

    def combine(self, outputs: list) -> torch.Tensor:
        """Add tensors (the branches' outputs, or a graph's named tensors)."""
        total = outputs[0]
        for other in outputs[1:]:
            total = total + other
        return total


class Merge(nn.Module):
    """Runs every branch on the same input and combines the outputs elementwise
    (multiply, maximum, minimum or average), broadcasting size-1 axes."""

    def __init__(self, branches: list, op: str):
        super().__init__()
        if op not in ("multiply", "maximum", "minimum", "average"):
            raise ValueError(f"unknown merge {op!r}")
        self.op = op
        for index, branch in enumerate(branches, start=1):
            self._modules[f"branch_{index}"] = branch

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.combine([branch(x) for branch in self._modules.values()])

    def combine(self, outputs: list) -> torch.Tensor:
        """Combine tensors (the branches' outputs, or a graph's named tensors)."""
        merged = outputs[0]
        for other in outputs[1:]:
            if self.op == "multiply":
                merged = merged * other
            elif self.op == "maximum":
                merged = torch.maximum(merged, other)
            elif self.op == "minimum":
                merged = torch.minimum(merged, other)
            else:
                merged = merged + other
        return merged / len(outputs) if self.op == "average" else merged

    def extra_repr(self) -> str:
        return self.op
