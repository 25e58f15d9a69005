"""ConvNeXt (Liu et al. 2022) in plain PyTorch, as torchvision.models.convnext writes it
(same module names, so its state_dict keys are torchvision's), with the stage settings as
arguments: `convnext_tiny()` is torchvision's convnext_tiny. torchvision itself cannot be
installed here, so the tests compare specs/convnext_tiny.spec with this."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class LayerNorm2d(nn.LayerNorm):
    """Layer norm over the channels of (N, C, H, W) at every position."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x.permute(0, 2, 3, 1)
        x = F.layer_norm(x, self.normalized_shape, self.weight, self.bias, self.eps)
        return x.permute(0, 3, 1, 2)


class Permute(nn.Module):
    def __init__(self, dims: list[int]):
        super().__init__()
        self.dims = dims

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.permute(x, self.dims)


class StochasticDepth(nn.Module):
    """torchvision.ops.StochasticDepth, mode "row"."""

    def __init__(self, p: float):
        super().__init__()
        self.p = p

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training or self.p == 0.0:
            return x
        survival = 1.0 - self.p
        noise = torch.empty([x.shape[0]] + [1] * (x.ndim - 1), dtype=x.dtype, device=x.device).bernoulli_(survival)
        return x * noise.div_(survival)


class CNBlock(nn.Module):
    def __init__(self, dim: int, layer_scale: float, stochastic_depth_prob: float):
        super().__init__()
        self.block = nn.Sequential(
            nn.Conv2d(dim, dim, kernel_size=7, padding=3, groups=dim, bias=True),
            Permute([0, 2, 3, 1]),
            nn.LayerNorm(dim, eps=1e-6),
            nn.Linear(dim, 4 * dim, bias=True),
            nn.GELU(),
            nn.Linear(4 * dim, dim, bias=True),
            Permute([0, 3, 1, 2]),
        )
        self.layer_scale = nn.Parameter(torch.ones(dim, 1, 1) * layer_scale)
        self.stochastic_depth = StochasticDepth(stochastic_depth_prob)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        result = self.layer_scale * self.block(x)
        return self.stochastic_depth(result) + x


class ConvNeXt(nn.Module):
    """`stages`: (input channels, output channels or None, blocks) per stage."""

    def __init__(self, stages: list[tuple[int, int | None, int]], stochastic_depth_prob: float = 0.1,
                 layer_scale: float = 1e-6, num_classes: int = 1000):
        super().__init__()
        self.stages = stages
        first = stages[0][0]
        layers: list[nn.Module] = [nn.Sequential(nn.Conv2d(3, first, kernel_size=4, stride=4, padding=0, bias=True),
                                                 LayerNorm2d(first, eps=1e-6))]
        total = sum(blocks for _, _, blocks in stages)
        block_id = 0
        for channels, out_channels, blocks in stages:
            stage = []
            for _ in range(blocks):
                stage.append(CNBlock(channels, layer_scale, stochastic_depth_prob * block_id / (total - 1.0)))
                block_id += 1
            layers.append(nn.Sequential(*stage))
            if out_channels is not None:
                layers.append(nn.Sequential(LayerNorm2d(channels, eps=1e-6),
                                            nn.Conv2d(channels, out_channels, kernel_size=2, stride=2)))
        self.features = nn.Sequential(*layers)
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        last = stages[-1][1] or stages[-1][0]
        self.classifier = nn.Sequential(LayerNorm2d(last, eps=1e-6), nn.Flatten(1), nn.Linear(last, num_classes))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.avgpool(self.features(x)))

    def specc_order(self) -> list[str]:
        """The state_dict keys in the order of the spec's parameters (stem, then each block:
        its convs and norm, then its layer scale, which torchvision lists first)."""
        keys = ["features.0.0.weight", "features.0.0.bias", "features.0.1.weight", "features.0.1.bias"]
        index = 1
        for _, out_channels, blocks in self.stages:
            for block in range(blocks):
                prefix = f"features.{index}.{block}"
                keys += [f"{prefix}.block.{i}.{p}" for i in (0, 2, 3, 5) for p in ("weight", "bias")]
                keys.append(f"{prefix}.layer_scale")
            index += 1
            if out_channels is not None:
                keys += [f"features.{index}.{i}.{p}" for i in (0, 1) for p in ("weight", "bias")]
                index += 1
        return keys + ["classifier.0.weight", "classifier.0.bias", "classifier.2.weight", "classifier.2.bias"]


def convnext_tiny() -> ConvNeXt:
    return ConvNeXt([(96, 192, 3), (192, 384, 3), (384, 768, 9), (768, None, 3)], stochastic_depth_prob=0.1)
