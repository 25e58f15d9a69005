"""A run's data: read, checked, split, tokenized and normalized as the train section says;
and the records of the run: preprocess.json, which lets evaluation, export and apps prepare
inputs the same way, and run.json as it starts."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from ..errors import SpecError
from ..run import (
    DataInfo,
    ImageFormat,
    InputInfo,
    Normalization,
    OutputInfo,
    Preprocess,
    RunRecord,
    TextFormat,
    validation_split,
)
from ..text import Tokenizer
from ..train_config import TrainConfig
from ..version import __version__
from .corpus_reader import recode
from .data import adapt_inputs, adapt_labels, apply_normalization, load_raw
from .readers import DIGITS, data_error
from .target import Target
from .tasks import TaskRules, resolve_task

DIGITS_ADAPTATION = "bilinear resize of the 8x8 image to HxW, /16 to [0,1], repeated over C"


@dataclass(frozen=True)
class TrainingData:
    """What the fit loop trains on (tensors on the CPU) and what it was made from."""

    x_train: torch.Tensor
    y_train: torch.Tensor
    x_val: torch.Tensor
    y_val: torch.Tensor
    source: str  # where the training data came from
    labels: list[str] | None
    tokenizer: Tokenizer | None
    normalization: Normalization | None
    task: TaskRules  # what the outputs mean (training/tasks.py)

    @property
    def has_validation(self) -> bool:
        return len(self.x_val) > 0


def prepare_data(config: TrainConfig, target: Target) -> tuple[TrainConfig, TrainingData]:
    """The data of `config` (its defaults filled in) for `target`; returns the config with the
    loss and metrics the data decide, and the data. The validation part is the validation
    file, or run.validation_split of the data; the vocabulary and the normalization come
    from the training part only."""
    raw = load_raw(config.data, target)
    x_all = None
    if raw.kind != "text":  # inputs are checked first: a wrong input is the first thing to fix
        x_all, _ = adapt_inputs(raw, target)
    task = resolve_task(config.task, target, raw, config.augment)
    raw = task.prepare(raw, x_all)
    config = config.with_task(task, task.default_loss(target, raw.y), task.default_metrics(target))
    loss = config.loss.kind
    names = list(config.labels) if config.labels else None
    view = task.label_view(target)
    y_all, labels = adapt_labels(raw, view, loss, names)
    if loss in ("sparse_categorical_crossentropy", "dice") and y_all.is_floating_point():
        raise data_error(raw.source, f"{loss} takes class ids as labels; these are one-hot "
                                     "or probabilities", "use loss=categorical_crossentropy")
    if names and view.units and view.final_activation == "softmax" and len(names) != view.units:
        raise SpecError.at(None, f"labels= names {len(names)} classes but the output has {view.units} units")
    train_index, val_index = validation_split(len(raw), config.validation_split, config.seed)
    tokenizer = None
    if raw.kind == "text":
        _, tokenizer = adapt_inputs(raw.take(train_index), target)
        x_all, _ = adapt_inputs(raw, target, tokenizer)
    train_rows = torch.from_numpy(train_index)
    x_train, y_train = x_all[train_rows], y_all[train_rows]
    if config.validation_data:
        val_raw = load_raw(config.validation_data, target)
        if val_raw.kind == "corpus":  # numbered as the training text's characters
            val_raw = recode(val_raw, labels)
        task.check(target, val_raw)
        x_val, _ = adapt_inputs(val_raw, target, tokenizer)
        y_val, _ = adapt_labels(task.prepare(val_raw, x_val), view, loss, labels or names)
    else:
        val_rows = torch.from_numpy(val_index)
        x_val, y_val = x_all[val_rows], y_all[val_rows]
    normalization = None
    if config.normalize is not None:
        if target.input_dtype == "int" and config.normalize.kind != "none":
            raise SpecError.at(None, "normalize= applies to float inputs; this spec's input is token ids")
        normalization = config.normalize.fit(x_train, target.input_kind)
    x_train, x_val = apply_normalization(x_train, normalization), apply_normalization(x_val, normalization)
    return config, TrainingData(x_train, y_train, x_val, y_val, raw.source, labels, tokenizer, normalization, task)


def preprocess_record(data: TrainingData, target: Target, run_id: str) -> Preprocess:
    """preprocess.json: how raw inputs become the model's input, and what its outputs mean."""
    dims = target.input_dims
    image = None
    if target.input_kind == "image" and len(dims) == 3:
        image = ImageFormat(channels=dims[0], height=dims[1], width=dims[2])
    digits = data.source == DIGITS
    return Preprocess(run_id=run_id, input_kind=target.input_kind, input_shape=list(dims),
                      input_dtype=target.input_dtype, labels=data.labels, normalize=data.normalization, image=image,
                      text=TextFormat(**data.tokenizer.to_json()) if data.tokenizer else None,
                      source="digits" if digits else "file", digits_adaptation=DIGITS_ADAPTATION if digits else None)


def run_record(model, config: TrainConfig, data: TrainingData, target: Target, options, device: torch.device,
               world_size: int, threads: int | None, run_id: str | None) -> RunRecord:
    """run.json of a run about to start: what it trains, from what, how and where."""
    return RunRecord(
        run_id=run_id or "", specc_version=__version__, model=model.name, spec_file=model.ir.path,
        plugins=list(model.plugins), status="running",
        input=InputInfo(kind=target.input_kind, shape=list(target.input_dims), dtype=target.input_dtype,
                        vocab=target.vocab),
        output=OutputInfo(shape=list(target.output_dims), final_activation=target.final_activation),
        config=config.model_dump(mode="json"),
        data=DataInfo(train=config.data, source=data.source, validation=config.validation_data,
                      validation_split=config.validation_split, n_train=len(data.x_train), n_val=len(data.x_val)),
        device=device.type, amp=options.amp, world_size=world_size, threads=threads,
        init_from=str(options.init_from) if options.init_from else None)
