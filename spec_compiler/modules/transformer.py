"""PyTorch modules for the transformer kinds (layers/transformer.py): positional
embeddings, the class token and the pooling that reads it. Sequences are (N, T, F);
T is read at run time, so an exported model keeps a dynamic length."""

from __future__ import annotations

import math

import torch
from torch import nn


class LearnedPositions(nn.Module):
    """x + weight[:T]: a learned vector per position, weight (max_length, F), initialized
    N(0, 0.02) as in BERT, GPT-2 and ViT."""

    def __init__(self, max_length: int, features: int):
        super().__init__()
        self.weight = nn.Parameter(torch.empty(max_length, features))
        nn.init.normal_(self.weight, std=0.02)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # A clear message for a too-long sequence, where PyTorch's would be a size mismatch
        # (not while an exporter traces: the graph keeps the length dynamic).
        if not (torch.jit.is_tracing() or torch.compiler.is_compiling()) and x.shape[1] > self.weight.shape[0]:
            raise ValueError(f"positional_embedding: the sequence has {x.shape[1]} steps, more than its "
                             f"max_length={self.weight.shape[0]}")
        return x + self.weight[: x.shape[1]]


class SinusoidalPositions(nn.Module):
    """x + the sinusoidal positions of Vaswani et al. 2017: feature 2i of position t is
    sin(t / 10000^(2i/F)) and feature 2i+1 is cos of the same angle. Computed in float32
    for the length at hand (no parameters, no length limit)."""

    def __init__(self, features: int):
        super().__init__()
        self.features = features

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        steps = torch.arange(x.shape[1], device=x.device, dtype=torch.float32).unsqueeze(1)
        even = torch.arange(0, self.features, 2, device=x.device, dtype=torch.float32)
        angles = steps * torch.exp(even * (-math.log(10000.0) / self.features))  # (T, ceil(F/2))
        table = torch.stack([angles.sin(), angles.cos()], dim=-1).flatten(1)[:, : self.features]
        return x + table.to(x.dtype)

    def extra_repr(self) -> str:
        return f"features={self.features}"


class ClassToken(nn.Module):
    """A learned token (F,) put before the first step: (N, T, F) to (N, T+1, F). Zeros at
    first, as torchvision's ViT."""

    def __init__(self, features: int):
        super().__init__()
        self.token = nn.Parameter(torch.zeros(features))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # expand_as: the batch is read from x in the exported graph too (expand(N, ...) fixes it)
        return torch.cat([self.token.expand_as(x[:, :1]), x], dim=1)


class FirstStep(nn.Module):
    """(N, T, F) to (N, F): the first step, where `ClassToken` put its token."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x[:, 0]
