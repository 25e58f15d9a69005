"""Optimizers: each kind's schema, its default learning rate, and the torch.optim optimizer
it builds. `weight_decay` is the train section's: decoupled for adamw, an L2 term in the
gradient otherwise (as torch.optim has it).

sgd, adam and adamw use torch's fused implementation (one kernel per parameter for the whole
update) where this torch has it for the parameters' device: on the CPU torch's default is a
Python loop over the parameters, and fused Adam made LeNet-5's training steps about 1.09x
faster there (bench/train_speed.py). Where it is missing, the default implementation."""

from __future__ import annotations

from typing import ClassVar

from ...errors import SpecError
from ...options import choice
from . import NonNegative, Positive, Probability, by_kind

Betas = tuple[Probability, Probability]


class Sgd(choice("sgd", ("lr",), lr=(Positive | None, None), momentum=(NonNegative, 0.0), nesterov=(bool, False))):
    default_lr: ClassVar[float] = 1e-2

    def build(self, params, lr: float, weight_decay: float):
        import torch

        if self.nesterov and self.momentum <= 0:
            raise SpecError.at(None, "sgd with nesterov=true needs momentum > 0",
                               "write optimizer=sgd(momentum=0.9, nesterov=true)")
        return fused_if_available(torch.optim.SGD, params, lr=lr, momentum=self.momentum, nesterov=self.nesterov,
                                  weight_decay=weight_decay)


ADAM_FIELDS = {"lr": (Positive | None, None), "betas": (Betas, (0.9, 0.999)), "eps": (Positive, 1e-7),
               "amsgrad": (bool, False)}


def fused_if_available(optimizer_class, params, **options):
    """`optimizer_class` with fused=True, or without it where this torch has no fused kernel
    for the parameters' device (it refuses with a RuntimeError before any update)."""
    params = list(params)
    try:
        return optimizer_class(params, fused=True, **options)
    except RuntimeError:
        return optimizer_class(params, **options)


def _adam(optimizer_class, spec, params, lr: float, weight_decay: float):
    return fused_if_available(optimizer_class, params, lr=lr, betas=tuple(spec.betas), eps=spec.eps,
                              amsgrad=spec.amsgrad, weight_decay=weight_decay)


class Adam(choice("adam", ("lr",), **ADAM_FIELDS)):
    default_lr: ClassVar[float] = 1e-3

    def build(self, params, lr: float, weight_decay: float):
        import torch

        return _adam(torch.optim.Adam, self, params, lr, weight_decay)


class AdamW(choice("adamw", ("lr",), **ADAM_FIELDS)):
    default_lr: ClassVar[float] = 1e-3

    def build(self, params, lr: float, weight_decay: float):
        import torch

        return _adam(torch.optim.AdamW, self, params, lr, weight_decay)


class RmsProp(choice("rmsprop", ("lr",), lr=(Positive | None, None), rho=(Probability, 0.9),
                     momentum=(NonNegative, 0.0), eps=(Positive, 1e-7), centered=(bool, False))):
    default_lr: ClassVar[float] = 1e-3

    def build(self, params, lr: float, weight_decay: float):
        import torch

        return torch.optim.RMSprop(params, lr=lr, alpha=self.rho, eps=self.eps, momentum=self.momentum,
                                   centered=self.centered, weight_decay=weight_decay)


OPTIMIZERS = by_kind(Sgd, Adam, AdamW, RmsProp)
DEFAULT_OPTIMIZER = Adam
