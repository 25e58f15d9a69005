"""`specc evaluate FILE --weights RUN [--data PATH]` and `Model.evaluate(weights, data=...)`.

The run folder supplies what training used, through its records (spec_compiler/run/):
the resolved loss, metrics, seed and split (run.json), the normalization, labels and
vocabulary (preprocess.json). Without ``--data`` the run's own validation data are
evaluated: its validation file, or the same validation split of its training data; with
``--data`` the whole file.
"""

from __future__ import annotations

from pydantic import ValidationError

from ..errors import SpecError, UsageError
from ..run import DataInfo, RunFolder, RunRecord, validation_split
from ..run.records import json_safe
from ..text import Tokenizer
from ..train_config import TrainConfig
from .checkpoint import load_weights
from .corpus_reader import recode
from .data import adapt_inputs, adapt_labels, apply_normalization, load_raw
from .devices import amp_dtype, pick_device
from .options.metrics import measures
from .readers import Raw
from .scoring import score
from .target import Target
from .tasks import resolve_task


def _config(record: RunRecord | None, model) -> TrainConfig:
    """The run's resolved train section (the spec's, for weights without a run)."""
    if record is None:
        return model.ir.train.with_defaults()
    try:
        return TrainConfig.model_validate(record.config).with_defaults()
    except ValidationError:
        raise SpecError.at(None, "run.json: its `config` is not a train section this specc reads",
                           "train the run again with this version of specc") from None


def _evaluation_data(data: str | None, record: RunRecord | None, config: TrainConfig,
                     target: Target) -> tuple[Raw, str]:
    """The data to evaluate and how to name it."""
    if data is not None:
        raw = load_raw(data, target)
        return raw, raw.source
    info = record.data if record is not None else DataInfo(train=config.data, validation=config.validation_data,
                                                             validation_split=config.validation_split)
    if info.validation:
        raw = load_raw(info.validation, target)
        return raw, raw.source
    raw = load_raw(info.train, target)
    _, validation = validation_split(len(raw), info.validation_split, config.seed)
    if len(validation):
        return raw.take(validation), f"{raw.source} (the run's {info.validation_split:g} validation split)"
    return raw, raw.source


def evaluate(model, weights, data: str | None = None, batch: int | None = None, device: str = "auto",
             amp: str | None = None) -> dict:
    if not model.ir.is_chain:
        raise UsageError(f"evaluate: not yet for a model with several inputs or outputs ({model.name}); its run's "
                         "run.json holds the validation metrics of each output")
    folder, weights_file = RunFolder.of_weights(weights)
    record = preprocess = None
    if folder is not None:
        folder.check_one_run(weights_file)
        record, preprocess = folder.read_record(), folder.read_preprocess()
    config = _config(record, model)
    module = model.build()
    target = Target.of(model, module)
    raw, source = _evaluation_data(data, record, config, target)
    text = preprocess.text if preprocess is not None else None
    if raw.kind == "text" and text is None:
        raise SpecError.at(None, f"{weights_file.parent}: preprocess.json holds no vocabulary for this text data")
    names = (preprocess.labels if preprocess is not None else None) or (list(config.labels) if config.labels else None)
    if raw.kind == "corpus" and names:  # numbered as the run's training text
        raw = recode(raw, names)
    x, _ = adapt_inputs(raw, target, Tokenizer.from_json(text.model_dump()) if text else None)
    task = resolve_task(config.task, target, raw, [])
    raw = task.prepare(raw, x)
    config = config.with_task(task, task.default_loss(target, raw.y), task.default_metrics(target))
    named = raw.y.dtype == object or raw.y.dtype.kind in "US"  # label names map through the run's labels
    y, _ = adapt_labels(raw, task.label_view(target), config.loss.kind, names if named else None)
    x = apply_normalization(x, preprocess.normalize if preprocess is not None else None)
    try:
        module.load_state_dict(load_weights(weights_file))
    except RuntimeError as error:
        raise SpecError.at(None, f"{weights_file}: these weights do not fit {model.ir.path}: "
                                 f"{str(error).splitlines()[0]}") from None
    on = pick_device(device)
    module.to(on).eval()
    head = task.head(config.loss, module.final_activation, target)
    metric_task = task.metric_task(config.loss.kind, not y.is_floating_point(), target)
    logs = score(module, head, config.loss.function(head), measures(config.metrics, metric_task), x, y,
                 batch or config.batch, on, amp_dtype(amp))
    return json_safe({"weights": str(weights_file), "data": source, "samples": len(x), **logs})
