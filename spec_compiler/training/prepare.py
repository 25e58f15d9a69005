"""A run's data: read, checked, split, tokenized and normalized as the train section says;
and the records of the run: preprocess.json, which lets evaluation, export and apps prepare
inputs the same way, and run.json as it starts."""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np
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
from .data import adapt_inputs, adapt_labels, fit_tokenizer, load_raw
from .dataset import (
    Samples,
    TensorSamples,
    check_label_names,
    check_on_disk,
    check_targets,
    file_samples,
    label_probe,
    stream_chunks,
)
from .readers import DIGITS, Raw
from .target import Target
from .tasks import TaskRules, resolve_task

DIGITS_ADAPTATION = "bilinear resize of the 8x8 image to HxW, /16 to [0,1], repeated over C"


@dataclass(frozen=True)
class TrainingData:
    """What the fit loop trains on (dataset.py: samples in memory or on disk, with the rows of
    them it trains and validates on) and what it was made from."""

    samples: Samples  # the training data
    train_rows: torch.Tensor  # the rows of `samples` trained on (int64)
    val_samples: Samples  # `samples` (a validation split), or the validation file's
    val_rows: torch.Tensor  # the rows of `val_samples` validated on
    source: str  # where the training data came from
    labels: list[str] | None
    tokenizer: Tokenizer | None
    normalization: Normalization | None
    class_ids: bool  # the targets are class ids (int64), not values or probabilities
    task: TaskRules  # what the outputs mean (training/tasks.py)

    @property
    def n_train(self) -> int:
        return len(self.train_rows)

    @property
    def n_val(self) -> int:
        return len(self.val_rows)

    @property
    def has_validation(self) -> bool:
        return self.n_val > 0


def prepare_data(config: TrainConfig, target: Target) -> tuple[TrainConfig, TrainingData]:
    """The data of `config` (its defaults filled in) for `target`; returns the config with the
    loss and metrics the data decide, and the data. The validation part is the validation
    file, or run.validation_split of the data (rows of the same samples, never a copy); the
    vocabulary and the normalization come from the training part only, in one streaming pass
    when the data are on disk."""
    raw = load_raw(config.data, target)
    x_all = None
    if raw.lazy:
        check_on_disk(raw, target)
    elif raw.kind != "text":  # inputs are checked first: a wrong input is the first thing to fix
        x_all, _ = adapt_inputs(raw, target)
    task = resolve_task(config.task, target, raw, config.augment)
    raw = _with_task_targets(raw, task, x_all)
    config = config.with_task(task, task.default_loss(target, label_probe(raw)), task.default_metrics(target))
    loss = config.loss.kind
    names = list(config.labels) if config.labels else None
    view = task.label_view(target)  # the targets as the label checks see them: classes last
    y_all, labels = None, names or raw.labels
    if not raw.lazy and raw.y is not None:
        y_all, labels = adapt_labels(raw, view, loss, names)
        check_targets(y_all.is_floating_point(), loss, raw.source)
    check_label_names(names, view)
    train_index, val_index = validation_split(len(raw), config.validation_split, config.seed)
    tokenizer = fit_tokenizer(raw, target, train_index) if raw.kind == "text" else None
    if raw.lazy:
        samples, labels, class_ids = file_samples(raw, view, tokenizer, loss, names)
        check_targets(not class_ids and raw.y is not None, loss, raw.source)
    else:
        if x_all is None:
            x_all, _ = adapt_inputs(raw, target, tokenizer)
        samples, class_ids = TensorSamples(x_all, y_all), y_all is not None and not y_all.is_floating_point()
    val_samples, val_rows = samples, val_index
    if config.validation_data:
        val_samples = _validation_file(config.validation_data, target, task, tokenizer, loss, labels or names)
        val_rows = np.arange(len(val_samples))
    normalization = None
    if config.normalize is not None:
        if target.input_dtype == "int" and config.normalize.kind != "none":
            raise SpecError.at(None, "normalize= applies to float inputs; this spec's input is token ids")
        normalization = config.normalize.fit(stream_chunks(samples, train_index, _sample_bytes(samples)),
                                             target.input_kind)
    same = val_samples is samples
    samples = samples.normalized(normalization)
    val_samples = samples if same else val_samples.normalized(normalization)
    return config, TrainingData(samples, torch.from_numpy(train_index), val_samples, torch.from_numpy(val_rows),
                                raw.source, labels, tokenizer, normalization, class_ids, task)


def _sample_bytes(samples: Samples) -> int:
    x, _ = samples.read(torch.zeros(1, dtype=torch.int64))
    return x[0].numel() * x.element_size()


def _validation_file(path: str, target: Target, task: TaskRules, tokenizer: Tokenizer | None, loss: str | None,
                     names: list[str] | None) -> Samples:
    """The validation file's samples, prepared as the training data's."""
    raw = load_raw(path, target)
    if raw.kind == "corpus":  # numbered as the training text's characters
        raw = recode(raw, names)
    task.check(target, raw)
    view = task.label_view(target)
    if raw.lazy:
        check_on_disk(raw, target)
        return file_samples(_with_task_targets(raw, task, None), view, tokenizer, loss, names)[0]
    x, _ = adapt_inputs(raw, target, tokenizer)
    raw = task.prepare(raw, x)
    y, _ = adapt_labels(raw, view, loss, names) if raw.y is not None else (None, None)
    return TensorSamples(x, y)


def _with_task_targets(raw: Raw, task: TaskRules, inputs: torch.Tensor | None) -> Raw:
    """The data with the task's targets. On disk, a task that makes its targets from the
    inputs (reconstruction) gets them batch by batch: the data keep no y, and FileSamples
    gives each batch's adapted inputs, before normalization, as its targets."""
    if raw.lazy and task.rewrites_targets:
        return replace(raw, y=None, labels=None)
    return task.prepare(raw, inputs)


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
                      validation_split=config.validation_split, n_train=data.n_train, n_val=data.n_val),
        device=device.type, amp=options.amp, world_size=world_size, threads=threads,
        init_from=str(options.init_from) if options.init_from else None)
