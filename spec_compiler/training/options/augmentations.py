"""Image augmentation on whole batches (N, C, H, W), on the fly, vectorized: each kind's
schema and, beside it, what it does to a batch.

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
from typing import Annotated, Literal

from pydantic import Field

from ...errors import SpecError
from ...options import choice
from . import Positive, by_kind

FLIP_DIMS = {"horizontal": (-1,), "vertical": (-2,), "both": (-1, -2)}


class Warp:
    """The rotation and shift drawn so far for each image, applied as one affine warp."""

    def __init__(self, n: int, device):
        import torch

        self.angle = torch.zeros(n, device=device)
        self.shift = torch.zeros(n, 2, device=device)
        self.pending = False

    def apply(self, x):
        """x warped by what was drawn (and nothing pending afterwards)."""
        if not self.pending:
            return x
        import torch
        import torch.nn.functional as F

        cos, sin = torch.cos(self.angle), torch.sin(self.angle)
        theta = torch.stack([torch.stack([cos, -sin, self.shift[:, 0]], dim=1),
                             torch.stack([sin, cos, self.shift[:, 1]], dim=1)], dim=1).to(x.dtype)
        grid = F.affine_grid(theta, list(x.shape), align_corners=False)
        self.angle, self.shift, self.pending = torch.zeros_like(self.angle), torch.zeros_like(self.shift), False
        return F.grid_sample(x, grid, mode="bilinear", padding_mode="zeros", align_corners=False)


def _uniform(shape, x, generator):
    """Uniform numbers in [-1, 1)."""
    import torch

    return torch.rand(shape, device=x.device, generator=generator) * 2 - 1


class Flip(choice("flip", ("mode",), mode=(Literal["horizontal", "vertical", "both"], "horizontal"))):
    def apply(self, x, warp: Warp, generator):
        import torch

        n = x.shape[0]
        for dim in FLIP_DIMS[self.mode]:
            mask = torch.rand(n, device=x.device, generator=generator) < 0.5
            x = torch.where(mask.view(n, 1, 1, 1), x.flip(dim), x)
        return x


class Rotate(choice("rotate", ("degrees",), degrees=(Annotated[float, Field(gt=0, le=180)], 15.0))):
    def apply(self, x, warp: Warp, generator):
        warp.angle = warp.angle + _uniform(x.shape[0], x, generator) * math.radians(self.degrees)
        warp.pending = True
        return x


class Translate(choice("translate", ("fraction",), fraction=(Annotated[float, Field(gt=0, lt=1)], 0.1))):
    def apply(self, x, warp: Warp, generator):
        # affine_grid coordinates span [-1, 1]: a shift of fraction f of the size is 2f.
        warp.shift = warp.shift + _uniform((x.shape[0], 2), x, generator) * 2 * self.fraction
        warp.pending = True
        return x


class Noise(choice("noise", ("std",), std=(Positive, 0.05))):
    def apply(self, x, warp: Warp, generator):
        import torch

        x = warp.apply(x)
        return x + torch.randn(x.shape, device=x.device, generator=generator, dtype=x.dtype) * self.std


AUGMENTATIONS = by_kind(Flip, Rotate, Translate, Noise)


class Augmenter:
    """The train section's `augment=[...]`, applied in order to each training batch."""

    def __init__(self, augmentations: list, input_kind: str, input_rank: int):
        self.augmentations = list(augmentations)
        if self.augmentations and (input_kind != "image" or input_rank != 3):
            raise SpecError.at(None, f"augmentation ({', '.join(a.kind for a in self.augmentations)}) works on image "
                                     f"inputs CxHxW; this spec's input is {input_kind}",
                               "remove `augment=` from the train section")

    def __bool__(self) -> bool:
        return bool(self.augmentations)

    def __call__(self, x, generator):
        warp = Warp(x.shape[0], x.device)
        for augmentation in self.augmentations:
            x = augmentation.apply(x, warp, generator)
        return warp.apply(x)
