"""`Model.train(**overrides)` and `specc train` options over the spec's train section.

Keys of TrainConfig override the section (`epochs=3`, `loss="mse"`, `optimizer="sgd(0.1,
momentum=0.9)"`: spec syntax is read by the spec's own parser); the rest are run options
(RunOptions): where and how this run happens, not what is trained."""

from __future__ import annotations

from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

from ..errors import SpecError, UsageError
from ..train_config import TrainConfig

CONFIG_ALIASES = {"val_data": "validation_data", "batch_size": "batch", "learning_rate": "lr"}


@dataclass(frozen=True)
class RunOptions:
    device: str = "auto"
    amp: str | None = None
    out: str | Path | None = None
    resume: bool = False
    overwrite: bool = False
    init_from: str | Path | None = None
    progress: bool = True
    stream: Any = None
    callbacks: tuple = ()
    live: bool | None = None
    threads: int | None = None
    workers: int | None = None  # DataLoader worker processes (None: dataset_loader.default_workers)
    compile: bool | str = False  # torch.compile the model (True: inductor; or a backend's name)


RUN_OPTIONS = tuple(f.name for f in fields(RunOptions))


def split_overrides(overrides: dict) -> tuple[dict, RunOptions]:
    config, options = {}, {}
    for key, value in overrides.items():
        key = CONFIG_ALIASES.get(key, key)
        if key in RUN_OPTIONS:
            options[key] = value
        elif key in TrainConfig.model_fields:
            if value is not None:
                config[key] = value
        else:
            raise UsageError(f"unknown training option `{key}` (train options: "
                             f"{', '.join([*TrainConfig.model_fields, *RUN_OPTIONS])})")
    if "callbacks" in options:
        options["callbacks"] = tuple(options["callbacks"] or ())
    return config, RunOptions(**options)


def _spec_text(value) -> str | None:
    """A Python override written as spec text (`"cosine(warmup=1)"`, `["accuracy", "top_k_accuracy(2)"]`)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, str):
        return value
    if isinstance(value, (list, tuple)):
        parts = [_spec_text(v) for v in value]
        return None if any(p is None for p in parts) else "[" + ", ".join(parts) + "]"
    return None


def _parse_overrides(overrides: dict) -> dict:
    """Overrides holding spec syntax (a call such as "sgd(0.1, momentum=0.9)") are read by the
    spec's own parser, so the Python API accepts exactly what a train section accepts."""
    texts = {k: _spec_text(v) for k, v in overrides.items() if k not in ("data", "validation_data")}
    texts = {k: t for k, t in texts.items() if t is not None and any(c in t for c in "([")}
    if not texts:
        return overrides
    from ..elaborate import elaborate
    from ..parser import parse

    lines = "\n".join(f"  {k}={t}" for k, t in texts.items())
    try:
        parsed = elaborate(parse(f"input vector 1\ndense 1\ntrain {{\n{lines}\n}}\n", "<train options>")).train
    except SpecError as error:
        raise UsageError("bad training option: " + "; ".join(d.message for d in error.diagnostics)) from None
    return {**overrides, **{k: getattr(parsed, k) for k in texts}}


def resolve_config(spec_config: TrainConfig, config_overrides: dict) -> TrainConfig:
    """The spec's section with the overrides applied (not yet with defaults)."""
    if not config_overrides:
        return spec_config
    from pydantic import ValidationError

    config_overrides = _parse_overrides(config_overrides)
    merged = {**spec_config.model_dump(exclude_none=True), **config_overrides}
    if "lr" in config_overrides and spec_config.optimizer is not None:
        # an explicit learning rate beats the one written inside optimizer=...(lr=)
        merged["optimizer"] = {**spec_config.optimizer.model_dump(), "lr": None}
    try:
        return TrainConfig.model_validate(merged)
    except ValidationError as error:
        problems = "; ".join(f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in error.errors())
        raise UsageError(f"bad training option: {problems}") from None


def spec_relative_paths(model) -> TrainConfig:
    """`data=` and `validation_data=` written in a spec are found relative to the current
    folder, else relative to the spec file's folder."""
    config = model.ir.train
    updates = {}
    for key in ("data", "validation_data"):
        value = getattr(config, key)
        if value and not Path(value).is_absolute() and not Path(value).exists():
            beside = Path(model.ir.path).parent / value
            if beside.exists():
                updates[key] = str(beside)
    return config.model_copy(update=updates) if updates else config
