"""`specc evaluate FILE --weights RUN [--data PATH]` and `Model.evaluate(weights, data=...)`.

The run folder supplies what training used: the loss and metrics (run.json), the
normalization, labels and vocabulary (preprocess.json). Without ``--data`` the run's
own validation data are evaluated: its validation file, or the same validation split
of its training data (same seed); with ``--data`` the whole file.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch

from ..errors import SpecError
from ..train_config import TrainConfig
from . import data as data_mod
from . import runs
from .losses import Accumulator, Head, fused_for, make_loss, make_metrics
from .tokenizer import Tokenizer
from .trainer import DEFAULT_BATCH, DEFAULT_SEED, DEFAULT_VALIDATION_SPLIT, _loss_spec, default_loss, pick_device


def _read_json(path: Path) -> dict | None:
    if not path.exists():
        return None
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as error:
        raise SpecError.at(None, f"{path}: cannot read it: {error}") from None


def _config_from(run_json: dict | None, spec_config: TrainConfig) -> TrainConfig:
    if not run_json or "config" not in run_json:
        return spec_config
    config = {k: v for k, v in run_json["config"].items() if k in TrainConfig.model_fields}
    try:
        return TrainConfig.model_validate(config)
    except ValueError:
        return spec_config


def evaluate(model, weights, data: str | None = None, batch: int | None = None, device: str = "auto",
             amp: str | None = None) -> dict:
    weights_file = runs.weights_path(weights)
    run_dir = weights_file.parent
    run_json = _read_json(run_dir / "run.json")
    pre = _read_json(run_dir / "preprocess.json") or {}
    config = _config_from(run_json, model.ir.train)
    module = model.build()
    target = data_mod.Target.of(model, module)
    run_data = (run_json or {}).get("data", {})
    if data is not None:
        raw = data_mod.load_raw(data, target)
        source = raw.source
    elif run_data.get("validation"):
        raw = data_mod.load_raw(run_data["validation"], target)
        source = raw.source
    else:
        raw = data_mod.load_raw(run_data.get("train", config.data), target)
        split = run_data.get("validation_split", DEFAULT_VALIDATION_SPLIT)
        seed = config.seed if config.seed is not None else DEFAULT_SEED
        _, val_idx = data_mod.split_indices(len(raw), split, seed)
        if len(val_idx):
            raw = raw.take(val_idx)
            source = f"{raw.source} (the run's {split:g} validation split)"
        else:
            source = raw.source
    tokenizer = Tokenizer.from_json(pre["text"]) if pre.get("text") else None
    if raw.kind == "text" and tokenizer is None:
        raise SpecError.at(None, f"{run_dir}: preprocess.json holds no vocabulary for this text data")
    x, _ = data_mod.adapt_inputs(raw, target, tokenizer)
    loss_kind = config.loss.kind if config.loss is not None else default_loss(target, raw.y)
    names = pre.get("labels") or (list(config.labels) if config.labels else None)
    named = raw.y.dtype == object or raw.y.dtype.kind in "US"  # label names map through the run's labels
    y, _ = data_mod.adapt_labels(raw, target, loss_kind, names if named else None)
    norm = pre.get("normalize")
    if norm:
        x = data_mod.apply_normalization(x, norm)

    state = runs.load_weights(weights_file)
    try:
        module.load_state_dict(state)
    except RuntimeError as error:
        raise SpecError.at(None, f"{weights_file}: these weights do not fit {model.ir.path}: "
                                 f"{str(error).splitlines()[0]}") from None
    dev = pick_device(device)
    module.to(dev).eval()
    head = Head(module.final_activation, fused_for(loss_kind, module.final_activation))
    loss_fn = make_loss(config.loss or _loss_spec(loss_kind), head)
    metrics = make_metrics(config.metrics, loss_kind, y, target.units, target.is_classifier)
    amp_dtype = {"bf16": torch.bfloat16, "fp16": torch.float16}.get(amp or "")
    size = max(batch or config.batch or DEFAULT_BATCH, 256)
    acc = Accumulator(metrics)
    reg = module.regularization_loss() if module.has_regularization else None
    with torch.no_grad():
        for start in range(0, len(x), size):
            xb, yb = x[start:start + size].to(dev), y[start:start + size].to(dev)
            with torch.autocast(dev.type, dtype=amp_dtype) if amp_dtype else torch.autocast(dev.type, enabled=False):
                z = module.forward_logits(xb) if head.fused else module(xb)
            z = z.float()
            loss = loss_fn(z, yb)
            if reg is not None:
                loss = loss + reg
            acc.add(loss, len(yb), head.outputs(z), yb)
    sums = acc.tensor()
    result = {"weights": str(weights_file), "data": source, "samples": len(x),
              "loss": float(sums[0] / sums[1])}
    offset = 2
    for metric in metrics:
        result[metric.name] = metric.value(sums[offset:offset + metric.size])
        offset += metric.size
    return runs._json_safe(result)
