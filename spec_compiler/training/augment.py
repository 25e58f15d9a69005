"""Image augmentation on whole batches (N, C, H, W), on the fly, vectorized.

- ``flip(mode)``: each image flipped with probability 1/2 (horizontal, vertical, or
  each independently for ``both``);
- ``rotate(degrees)``: a uniform angle in [-degrees, degrees];
- ``translate(fraction)``: a uniform shift in [-fraction, fraction] of the height and
  width; rotate and translate are one affine warp (``affine_grid`` + ``grid_sample``,
  bilinear, zeros outside the image);
- ``noise(std)``: Gaussian noise of that standard deviation added.

All random numbers come from one ``torch.Generator`` the trainer owns (its state is in
the checkpoint), so a resumed run draws the same augmentations.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from ..errors import SpecError


class Augmenter:
    def __init__(self, specs, input_kind: str, input_rank: int):
        self.specs = list(specs)
        if self.specs and (input_kind != "image" or input_rank != 3):
            raise SpecError.at(None, f"augmentation ({', '.join(s.kind for s in self.specs)}) works on image "
                                     f"inputs CxHxW; this spec's input is {input_kind}",
                               "remove `augment=` from the train section")

    def __bool__(self) -> bool:
        return bool(self.specs)

    def __call__(self, x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        n = x.shape[0]
        angle = torch.zeros(n, device=x.device)
        shift = torch.zeros(n, 2, device=x.device)
        warp = False
        for spec in self.specs:
            if spec.kind == "flip":
                modes = {"horizontal": (-1,), "vertical": (-2,), "both": (-1, -2)}[spec.mode]
                for dim in modes:
                    mask = torch.rand(n, device=x.device, generator=generator) < 0.5
                    x = torch.where(mask.view(n, 1, 1, 1), x.flip(dim), x)
            elif spec.kind == "rotate":
                limit = math.radians(spec.degrees)
                angle = angle + (torch.rand(n, device=x.device, generator=generator) * 2 - 1) * limit
                warp = True
            elif spec.kind == "translate":
                # affine_grid coordinates span [-1, 1]: a shift of fraction f of the size is 2f.
                shift = shift + (torch.rand(n, 2, device=x.device, generator=generator) * 2 - 1) * 2 * spec.fraction
                warp = True
            elif spec.kind == "noise":
                if warp:
                    x, warp = self._warp(x, angle, shift), False
                    angle, shift = torch.zeros_like(angle), torch.zeros_like(shift)
                x = x + torch.randn(x.shape, device=x.device, generator=generator, dtype=x.dtype) * spec.std
        if warp:
            x = self._warp(x, angle, shift)
        return x

    @staticmethod
    def _warp(x: torch.Tensor, angle: torch.Tensor, shift: torch.Tensor) -> torch.Tensor:
        cos, sin = torch.cos(angle), torch.sin(angle)
        theta = torch.stack([torch.stack([cos, -sin, shift[:, 0]], dim=1),
                             torch.stack([sin, cos, shift[:, 1]], dim=1)], dim=1).to(x.dtype)
        grid = F.affine_grid(theta, list(x.shape), align_corners=False)
        return F.grid_sample(x, grid, mode="bilinear", padding_mode="zeros", align_corners=False)
