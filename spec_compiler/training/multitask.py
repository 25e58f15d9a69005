"""What is per output when a graph spec (several inputs or outputs) trains: its data, loss,
weight and metric. The fit loop is the chains' (fit.py: Trainer, with its callbacks,
checkpoints, --resume, schedules and clipping); a graph's batches are (inputs, targets)
tuples and GraphObjective is what it minimizes and logs.

Data: `--data FILE.npz` with the inputs (`x` for a model of one input, else one array per
input name) and a target per output, `y_<name>` (`y` also serves a model of one output;
class ids, one-hot rows or values, as for a chain's output). Each output's loss is the
section's `loss.NAME=`, else the one a single output with its final activation and targets
would take (training/options/losses.py:
softmax and class ids, sparse categorical cross-entropy; one-hot rows, categorical; a
sigmoid, binary cross-entropy; anything else, mse); a softmax/sigmoid output trained with
its cross-entropy learns from its logits (fused, as a chain's does). The step minimizes
the sum of each output's loss times `loss_weight.NAME=` (default 1), plus the spec's
regularization. `loss=` is the loss of a graph of one output. Each output is measured by
`metrics.NAME=[...]` (the metrics a chain's `metrics=` takes; `metrics=` for a graph of one
output), else by one metric: accuracy for a classifier (a softmax, along its axis: a
`KxHxW` output ending in `softmax 0` is scored per pixel; or a single sigmoid), else mae.

The logs, run.json's final_metrics and `--json` hold `loss` (the weighted sum), and per
output `<name>_loss` and `<name>_<metric>` (`digit_accuracy`, `mask_mean_iou`), with their
`val_` forms on the validation split (`validation_split`, default 0.2); early stopping and
the best checkpoint may monitor any of them.

Not yet for a graph: DDP, --workers, a validation file, augmentation, normalization and
`task=`; they are refused where they are asked for.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..errors import SpecError, UsageError
from ..run import Preprocess, RunRecord, validation_split
from ..run.records import DataInfo, InputInfo, OutputInfo
from ..train_config import PER_OUTPUT_KEYS
from ..version import __version__
from . import ddp
from .dataset import TensorSamples
from .options.losses import Head, loss_for_output
from .options.metrics import Measure, measures
from .options.metrics import Task as MetricTask
from .overrides import RunOptions
from .prepare import TrainingData
from .scoring import as_tuple, measure_stats, measure_values, stacked
from .target import final_softmax_axis

# the losses of class scores: their outputs are scored by accuracy
CLASS_LOSSES = ("sparse_categorical_crossentropy", "categorical_crossentropy", "binary_crossentropy", "dice")


@dataclass(frozen=True)
class OutputTask:
    """One output: its loss (and the function it trains with), weight and measures."""

    name: str
    loss: Any
    weight: float
    head: Head
    function: Any
    measures: tuple[Measure, ...]  # those of `metrics.NAME=`, else its DefaultMeasure

    @property
    def slots(self) -> int:
        """The output's sums in an epoch's: its loss, then each measure's statistics."""
        return 1 + sum(m.size for m in self.measures)

    def outputs(self, logits: torch.Tensor) -> torch.Tensor:
        """The output as the model gives it (its softmax/sigmoid applied, if any, along its axis)."""
        return Head(self.head.final_activation, True, self.head.class_dim).outputs(logits)

    def loss_of(self, logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return self.function(logits if self.head.fused else self.outputs(logits), y)


def check_per_output_keys(model, config) -> None:
    """`loss.NAME`, `loss_weight.NAME` and `metrics.NAME` name outputs of a model that has
    several; `loss=` and `metrics=` are those of a model of one output."""
    outputs = [spec.name for spec in model.ir.outputs]
    for key, given, what in (("loss", config.loss, "one loss"),
                             ("metrics", config.metrics if not model.ir.is_chain else None, "one output's metrics")):
        if given is not None and len(outputs) > 1:
            raise SpecError.at(None, f"`{key}=` sets {what}, and {model.name} has {len(outputs)} outputs",
                               "give each output its own: " + " ".join(f"`{key}.{name}=`" for name in outputs))
    named = [(key, name) for key, field in PER_OUTPUT_KEYS.items() for name in (getattr(config, field) or {})]
    if not named:
        return
    key, name = named[0]
    if len(outputs) < 2:
        raise SpecError.at(None, f"`{key}.{name}=` sets the {key.replace('_', ' ')} of one output of several, and "
                                 f"{model.name} has one output", f"write `{key}=` for a model with one output")
    unknown = [(key, name) for key, name in named if name not in outputs]
    if unknown:
        key, name = unknown[0]
        raise SpecError.at(None, f"`{key}.{name}=`: {model.name} has no output `{name}`",
                           f"its outputs: {', '.join(outputs)}")


def load_task_data(path: str | None, model) -> tuple[list[np.ndarray], dict[str, np.ndarray]]:
    """(the input arrays in spec order, the target of each output) from an .npz file."""
    inputs, outputs = model.ir.inputs, [spec.name for spec in model.ir.outputs]
    wanted = ("x" if len(inputs) == 1 else ", ".join(spec.name for spec in inputs)) + ", " + ", ".join(
        f"y_{name}" for name in outputs)
    if path is None or Path(path).suffix.lower() != ".npz":
        raise UsageError(f"a model with several outputs trains on --data FILE.npz holding {wanted}")
    try:
        with np.load(path, allow_pickle=False) as archive:
            files = set(archive.files)
            names = ["x" if len(inputs) == 1 and "x" in files else spec.name for spec in inputs]
            # one output may also be `y`, as a chain's target
            targets = ["y" if len(outputs) == 1 and "y" in files else f"y_{o}" for o in outputs]
            missing = [name for name in [*names, *targets] if name not in files]
            if missing:
                raise SpecError.at(None, f"{path} has no array {', '.join(missing)} (it holds "
                                         f"{', '.join(sorted(files)) or 'nothing'})", f"give it {wanted}")
            xs = [archive[name] for name in names]
            ys = {name: archive[target] for name, target in zip(outputs, targets)}
    except (OSError, ValueError) as error:
        raise SpecError.at(None, f"cannot read {path}: {error}") from None
    counts = {len(array) for array in [*xs, *ys.values()]}
    if len(counts) > 1:
        raise SpecError.at(None, f"{path}: every array needs one row per sample, got "
                                 + ", ".join(f"{len(a)}" for a in [*xs, *ys.values()]))
    for spec, array, name in zip(inputs, xs, names):
        dims = spec.type.dims
        if array.ndim != 1 + len(dims) or any(isinstance(d, int) and d != got for d, got in zip(dims, array.shape[1:])):
            raise SpecError.at(None, f"{path}: `{name}` holds samples of {tuple(array.shape[1:])}, the input "
                                     f"`{spec.name}` takes {'x'.join(map(str, dims))}")
    xs = [array.astype(np.int64 if spec.type.dtype == "int" else np.float32) for spec, array in zip(inputs, xs)]
    return xs, ys


def output_tasks(model, module, config, targets: dict[str, np.ndarray]) -> list[OutputTask]:
    tasks = []
    steps = {step.step.name: step for step in model.info.steps}
    for name, output_type in model.info.outputs.items():
        final = module.final_activations.get(name)
        y = targets[name]
        only = config.loss if len(model.info.outputs) == 1 else None  # `loss=` of a graph of one output
        loss = (config.output_losses or {}).get(name) or only or loss_for_output(final, y, output_type.dims)
        # a softmax over the channels (`softmax 0`, a class per pixel) holds its classes at that axis
        class_dim = final_softmax_axis(steps[name].layers) if final == "softmax" and name in steps else -1
        head = Head.of(loss, final, class_dim)
        if loss.kind in ("sparse_categorical_crossentropy", "dice"):
            _check_class_ids(name, output_type.dims, class_dim, y)
        classifier = loss.kind in CLASS_LOSSES and (final == "softmax" or (final == "sigmoid"
                                                                           and len(output_type.dims) == 1))
        sized = all(isinstance(d, int) for d in output_type.dims)  # a run-time length is not checked here
        if not classifier and sized and y[:1].size != math.prod(output_type.dims):
            key = "loss" if len(model.info.outputs) == 1 else f"loss.{name}"
            raise SpecError.at(None, f"the targets of `{name}` hold {'x'.join(map(str, y.shape[1:])) or 'one value'} "
                                     f"per sample; output `{name}` gives {'x'.join(map(str, output_type.dims))} values",
                               f"give them the output's shape per sample; for class ids, a loss that takes them "
                               f"(`{key}=sparse_categorical_crossentropy` under a softmax)")
        chosen = (config.output_metrics or {}).get(name) or (config.metrics if len(model.info.outputs) == 1 else None)
        units = output_type.dims[class_dim] if output_type.dims else 1
        task = MetricTask(loss.kind, y.dtype.kind in "iub", units if isinstance(units, int) else None, class_dim)
        tasks.append(OutputTask(name, loss, float((config.loss_weights or {}).get(name, 1.0)), head,
                                loss.function(head), tuple(measures(chosen, task)) if chosen else
                                (DefaultMeasure("accuracy" if classifier else "mae", class_dim),)))
    return tasks


def _check_class_ids(name: str, dims: tuple, class_dim: int, y: np.ndarray) -> None:
    """Class ids fit an output whose softmax runs along `class_dim`: one id per position of the
    other axes (one per sample for a vector, one per pixel for `KxHxW` with `softmax 0`); a
    run-time length takes any size."""
    wanted = tuple(d for i, d in enumerate(dims) if i != len(dims) + class_dim)
    if y.ndim - 1 != len(wanted) or any(isinstance(d, int) and d != got for d, got in zip(wanted, y.shape[1:])):
        per_sample = "x".join(map(str, y.shape[1:])) or "one id"
        raise SpecError.at(None, f"the targets of `{name}` hold {per_sample} class ids per sample; it gives "
                                 f"{'x'.join(map(str, dims))} with its softmax along axis {len(dims) + class_dim}, "
                                 f"so it takes {'x'.join(map(str, wanted)) or 'one id'} per sample",
                           "a class per pixel: end the output with `softmax 0` (over the channels); one class per "
                           "sample: pool or flatten to a vector first")


class DefaultMeasure(Measure):
    """An output's metric when `metrics.NAME=` names none: accuracy for a classifier (argmax
    along the softmax's axis, or 0.5 on a single sigmoid), else the mean absolute error;
    each batch's mean, weighted by its samples."""

    def __init__(self, name: str, class_dim: int):
        super().__init__(name)
        self.class_dim = class_dim

    def stats(self, out, y):
        return [self._batch_mean(out, y) * y.shape[0], y.shape[0]]

    def _batch_mean(self, probabilities: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        if self.name == "mae":
            return (probabilities - y.to(probabilities.dtype).reshape(probabilities.shape)).abs().double().mean()
        if probabilities.shape[-1] == 1:
            predicted = (probabilities.reshape(-1) > 0.5).long()
            truth = y.reshape(-1).long()
        else:
            predicted = probabilities.argmax(dim=self.class_dim)
            truth = y.argmax(dim=self.class_dim) if y.is_floating_point() and y.ndim == probabilities.ndim \
                else y.long()
        return (predicted == truth).double().mean()


class GraphObjective:
    """A graph's outputs: the weighted sum of each output's loss, and the logs per output. The
    step runs forward_logits; each output's loss takes its logits or its activated outputs."""

    fused = True

    def __init__(self, tasks: list[OutputTask]):
        self.tasks = tasks

    def loss(self, z, y: tuple) -> torch.Tensor:
        total = None
        for task, logits, target in zip(self.tasks, as_tuple(z), y):
            loss = task.loss_of(logits, target)
            total = loss * task.weight if total is None else total + loss * task.weight
        return total

    @property
    def sums_size(self) -> int:
        return 2 + sum(task.slots for task in self.tasks)

    def batch_sums(self, loss: torch.Tensor, z, y: tuple) -> torch.Tensor:
        """The total loss and the batch size, then per output its loss and its measures'
        statistics (each loss times the batch size)."""
        n = y[0].shape[0]
        values = [loss * n, n]
        for task, logits, target in zip(self.tasks, as_tuple(z), y):
            out = task.outputs(logits) if any(m.needs_probabilities for m in task.measures) else logits
            values += [task.loss_of(logits, target) * n, *measure_stats(task.measures, out, target)]
        return stacked(values)

    def logs(self, sums: torch.Tensor) -> dict:
        n = float(sums[1])
        mean = (lambda value: float(value) / n) if n else (lambda value: float("nan"))
        logs, i = {"loss": mean(sums[0])}, 2
        for task in self.tasks:
            logs[f"{task.name}_loss"] = mean(sums[i])
            logs.update(measure_values(task.measures, sums[i + 1:], f"{task.name}_"))
            i += task.slots
        return logs


def refuse_graph_options(options: RunOptions, config) -> None:
    """What a graph cannot train with yet: a UsageError naming the first one asked for."""
    asked = [flag for flag, given in (("torchrun (DDP)", ddp.launched()), ("--workers", options.workers),
                                      ("validation_data", config.validation_data), ("augment", config.augment),
                                      ("normalize", config.normalize), ("task", config.task))
             if given]
    if asked:
        raise UsageError(f"{asked[0]}: not yet for a graph spec (named tensors, several inputs or outputs; "
                         "see docs/training.md, Multi-task)")


def graph_targets(tasks: list[OutputTask], targets: dict[str, np.ndarray]) -> tuple[torch.Tensor, ...]:
    """Each output's targets as the loss takes them: int64 class ids or float32 values."""
    arrays = [targets[task.name] for task in tasks]
    return tuple(torch.from_numpy(y.astype(np.int64) if y.dtype.kind in "iub" else y.astype(np.float32))
                 for y in arrays)


def graph_data(model, module, config) -> tuple[TrainingData, GraphObjective]:
    """A graph's data (held in memory, the validation split as rows of it) and objective."""
    xs, targets = load_task_data(config.data, model)
    tasks = output_tasks(model, module, config, targets)
    ys = graph_targets(tasks, targets)
    train_rows, val_rows = validation_split(len(xs[0]), config.validation_split, config.seed)
    samples = TensorSamples(tuple(torch.from_numpy(x) for x in xs), ys)
    data = TrainingData(samples, torch.from_numpy(train_rows), samples, torch.from_numpy(val_rows), str(config.data),
                        list(config.labels) if config.labels else None, None, None,
                        all(not y.is_floating_point() for y in ys), None)
    return data, GraphObjective(tasks)


def graph_records(model, config, data: TrainingData, module, options: RunOptions, device: torch.device,
                  world_size: int, threads: int | None, run_id: str | None) -> tuple[RunRecord, Preprocess]:
    """run.json as the run starts, and preprocess.json: the first input and output stand for
    the model's in their fields; run.json's config holds every output's loss and weight."""
    first, (name, output_type) = model.ir.inputs[0], next(iter(model.info.outputs.items()))
    record = RunRecord(
        run_id=run_id or "", specc_version=__version__, model=model.name, spec_file=model.ir.path,
        plugins=list(model.plugins), status="running",
        input=InputInfo(kind=first.kind, shape=list(first.type.dims), dtype=first.type.dtype, vocab=first.type.vocab),
        output=OutputInfo(shape=list(output_type.dims), final_activation=module.final_activations.get(name)),
        config=config.model_dump(mode="json"),
        data=DataInfo(train=config.data, source=data.source, validation_split=config.validation_split,
                      n_train=data.n_train, n_val=data.n_val),
        device=device.type, amp=options.amp, world_size=world_size, threads=threads,
        init_from=str(options.init_from) if options.init_from else None)
    preprocess = Preprocess(run_id=run_id, input_kind=first.kind, input_shape=list(first.type.dims),
                            input_dtype=first.type.dtype, labels=data.labels)
    return record, preprocess


__all__ = ["GraphObjective", "OutputTask", "check_per_output_keys", "graph_data", "graph_records", "graph_targets",
           "load_task_data", "output_tasks", "refuse_graph_options"]
