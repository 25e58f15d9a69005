"""Learning-rate schedules: each kind's schema and the callbacks that drive it. The step and
cosine schedules are torch.optim.lr_scheduler schedulers (their state_dict goes into the
checkpoint); the plateau schedule is the ReduceLROnPlateau callback, which decides
"improved" by the same rule as early stopping (callbacks.Monitor)."""

from __future__ import annotations

from typing import Annotated

from pydantic import Field

from ...options import choice
from . import NonNegative, NonNegativeInt, Positive, PositiveInt, by_kind


class Constant(choice("constant")):
    """The learning rate stays as it is."""

    def callbacks(self, optimizer, steps_per_epoch: int, epochs: int) -> list:
        return []


class Step(choice("step", ("every", "gamma"), every=(PositiveInt, 10), gamma=(Positive, 0.1))):
    """The learning rate times `gamma` every `every` epochs (StepLR)."""

    def callbacks(self, optimizer, steps_per_epoch: int, epochs: int) -> list:
        from torch.optim.lr_scheduler import StepLR

        from ..callbacks import LRScheduler

        return [LRScheduler(StepLR(optimizer, step_size=self.every, gamma=self.gamma), per_step=False)]


class Cosine(choice("cosine", ("min_lr",), min_lr=(NonNegative, 0.0), warmup=(NonNegativeInt, 0))):
    """A linear warmup over `warmup` epochs (LinearLR), then a cosine decay to `min_lr` at the
    end of training (CosineAnnealingLR), step by step."""

    def callbacks(self, optimizer, steps_per_epoch: int, epochs: int) -> list:
        from torch.optim.lr_scheduler import CosineAnnealingLR, LinearLR, SequentialLR

        from ..callbacks import LRScheduler

        warmup = self.warmup * steps_per_epoch
        decay = CosineAnnealingLR(optimizer, T_max=max(1, epochs * steps_per_epoch - warmup), eta_min=self.min_lr)
        scheduler = decay
        if warmup:
            ramp = LinearLR(optimizer, start_factor=1 / warmup, total_iters=max(1, warmup - 1))
            scheduler = SequentialLR(optimizer, [ramp, decay], milestones=[warmup])
        return [LRScheduler(scheduler, per_step=True)]


class Plateau(choice("plateau", ("factor", "patience"), factor=(Annotated[float, Field(gt=0, lt=1)], 0.1),
                     patience=(NonNegativeInt, 5), min_lr=(NonNegative, 0.0), monitor=(str, "val_loss"),
                     min_delta=(NonNegative, 1e-4))):
    """The learning rate times `factor` when `monitor` stops improving (ReduceLROnPlateau)."""

    def callbacks(self, optimizer, steps_per_epoch: int, epochs: int) -> list:
        from ..callbacks import Monitor, ReduceLROnPlateau

        monitor = Monitor(self.monitor, "auto", self.min_delta, "the plateau schedule")
        return [ReduceLROnPlateau(monitor, self.factor, self.patience, self.min_lr)]


SCHEDULES = by_kind(Constant, Step, Cosine, Plateau)
SCHEDULE_ALIASES = {"reduce_on_plateau": "plateau", "cosine_decay": "cosine", "step_decay": "step"}
