"""Every option of the `train { }` section, each declared once: its schema (a pydantic model
that `specc compile` checks without torch) with its implementation beside it, as methods that
import torch only when training calls them.

losses.py, optimizers.py, schedules.py, metrics.py, augmentations.py, normalizations.py;
spec_compiler/train_config.py assembles them into the section's schema, TrainConfig.
"""

from __future__ import annotations

from typing import Annotated

from pydantic import Field

Positive = Annotated[float, Field(gt=0)]
NonNegative = Annotated[float, Field(ge=0)]
Fraction = Annotated[float, Field(ge=0, lt=1)]
Probability = Annotated[float, Field(ge=0, le=1)]
PositiveInt = Annotated[int, Field(gt=0)]
NonNegativeInt = Annotated[int, Field(ge=0)]


def by_kind(*schemas: type) -> dict[str, type]:
    """A table of option schemas keyed by the word a spec writes for each."""
    return {schema.model_fields["kind"].default: schema for schema in schemas}
