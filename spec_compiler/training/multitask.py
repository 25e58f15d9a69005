"""Training a graph spec (several inputs or outputs), each output with its own loss.

Data: `--data FILE.npz` with the inputs (`x` for a model of one input, else one array per
input name) and a target per output, `y_<name>` (`y` also serves a model of one output;
class ids, one-hot rows or values, as for a chain's output). Each output's loss is the section's `loss.NAME=`, else the one a
single output with its final activation and targets would take (training/options/losses.py:
softmax and class ids, sparse categorical cross-entropy; one-hot rows, categorical; a
sigmoid, binary cross-entropy; anything else, mse); a softmax/sigmoid output trained with
its cross-entropy learns from its logits (fused, as a chain's does). The step minimizes
the sum of each output's loss times `loss_weight.NAME=` (default 1), plus the spec's
regularization. Each output has a metric: accuracy for a classifier (a softmax over a
vector, or a single sigmoid), else mae.

The logs, run.json's final_metrics and `--json` hold `loss` (the weighted sum), and per
output `<name>_loss` and `<name>_accuracy` (or `<name>_mae`), with their `val_` forms on the
validation split (`validation_split`, default 0.2). The run folder holds the spec,
preprocess.json, run.json and weights.safetensors of the last epoch, as a chain's run does.

Not yet for several outputs: --resume and checkpoints, --init-from, callbacks (early
stopping, logs), DDP, --amp, --compile, workers, --steps-per-epoch, augmentation,
normalization, a validation file, `metrics=`, `task=`, schedules, gradient clipping and
`specc evaluate`. The options among them are refused where they are asked for.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..errors import SpecError, UsageError
from ..run import Preprocess, RunRecord
from ..run.records import DataInfo, InputInfo, OutputInfo
from ..version import __version__
from . import ddp
from .devices import cpu_threads, pick_device
from .options.losses import BinaryCrossentropy, CategoricalCrossentropy, Head, Mse, SparseCategoricalCrossentropy
from .output import open_output
from .overrides import RunOptions
from .result import TrainResult

CROSS_ENTROPIES = ("sparse_categorical_crossentropy", "categorical_crossentropy", "binary_crossentropy")


@dataclass(frozen=True)
class OutputTask:
    """One output: its loss (and the function it trains with), weight and metric."""

    name: str
    loss: Any
    weight: float
    head: Head
    function: Any
    metric: str  # "accuracy" or "mae"


def check_per_output_keys(model, config) -> None:
    """`loss.NAME` and `loss_weight.NAME` name outputs of a model that has several."""
    named = {**(config.output_losses or {}), **(config.loss_weights or {})}
    if not named:
        return
    outputs = [spec.name for spec in model.ir.outputs]
    if len(outputs) < 2:
        raise SpecError.at(None, f"`loss.{next(iter(named))}=` sets the loss of one output of several, and "
                                 f"{model.name} has one output", "write `loss=` for a model with one output")
    unknown = [name for name in named if name not in outputs]
    if unknown:
        raise SpecError.at(None, f"`loss.{unknown[0]}=` / `loss_weight.{unknown[0]}=`: {model.name} has no output "
                                 f"`{unknown[0]}`", f"its outputs: {', '.join(outputs)}")


def _refuse_options(options: RunOptions, config) -> None:
    asked = [flag for flag, given in (("--resume", options.resume), ("--init-from", options.init_from),
                                      ("--amp", options.amp), ("--compile", options.compile),
                                      ("--workers", options.workers), ("--steps-per-epoch", config.steps_per_epoch),
                                      ("validation_data", config.validation_data), ("augment", config.augment),
                                      ("normalize", config.normalize), ("early_stopping", config.early_stopping),
                                      ("metrics", config.metrics), ("task", config.task),
                                      ("clip_norm", config.clip_norm), ("clip_value", config.clip_value),
                                      ("schedule", config.schedule.kind != "constant"))
             if given]
    if asked:
        raise UsageError(f"{asked[0]}: not yet for a model with several outputs (see docs/training.md, Multi-task)")


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
    for name, output_type in model.info.outputs.items():
        final = module.final_activations.get(name)
        y = targets[name]
        loss = (config.output_losses or {}).get(name) or _default_loss(final, y, output_type.dims)
        head = Head.of(loss, final)
        classifier = loss.kind in CROSS_ENTROPIES and final in ("softmax", "sigmoid") and len(output_type.dims) == 1
        tasks.append(OutputTask(name, loss, float((config.loss_weights or {}).get(name, 1.0)), head,
                                loss.function(head), "accuracy" if classifier else "mae"))
    return tasks


def _default_loss(final: str | None, y: np.ndarray, dims: tuple):
    if final == "softmax":
        one_hot = y.ndim == 2 and len(dims) == 1 and y.shape[1] == dims[0]
        return CategoricalCrossentropy() if one_hot else SparseCategoricalCrossentropy()
    if final == "sigmoid":
        return BinaryCrossentropy()
    return Mse()


def _metric(task: OutputTask, probabilities: torch.Tensor, y: torch.Tensor) -> float:
    """Accuracy (argmax, or 0.5 on a single sigmoid) or mean absolute error over a batch."""
    if task.metric == "mae":
        return float((probabilities - y.to(probabilities.dtype).reshape(probabilities.shape)).abs().mean())
    if probabilities.shape[-1] == 1:
        predicted = (probabilities.reshape(-1) > 0.5).long()
        truth = y.reshape(-1).long()
    else:
        predicted = probabilities.argmax(dim=-1)
        truth = y.argmax(dim=-1) if y.is_floating_point() and y.ndim == probabilities.ndim else y.long()
    return float((predicted == truth).double().mean())


class _Run:
    """The loop: batches of every input and target, one optimizer over the summed loss."""

    def __init__(self, module, tasks: list[OutputTask], config, device: torch.device):
        self.module, self.tasks, self.config, self.device = module, tasks, config, device
        trainable = [p for p in module.parameters() if p.requires_grad]
        self.optimizer = config.optimizer.build(trainable, config.lr, config.weight_decay)

    def losses(self, xs: list[torch.Tensor], ys: list[torch.Tensor]) -> tuple[torch.Tensor, list, list]:
        """(the weighted total, each output's loss, each output's probabilities)."""
        logits = self.module.forward_logits(*xs)
        logits = logits if isinstance(logits, tuple) else (logits,)
        total, each, probabilities = None, [], []
        for task, z, y in zip(self.tasks, logits, ys):
            outputs = Head(task.head.final_activation, fused=True).outputs(z)  # softmax/sigmoid applied, if any
            loss = task.function(z if task.head.fused else outputs, y)
            total = loss * task.weight if total is None else total + loss * task.weight
            each.append(loss)
            probabilities.append(outputs)
        if self.module.has_regularization:
            total = total + self.module.regularization_loss()
        return total, each, probabilities

    def epoch(self, xs: list[np.ndarray], ys: list[np.ndarray], rows: np.ndarray, training: bool,
              rng: np.random.Generator | None = None, steps_left: int | None = None) -> tuple[dict, int]:
        """One pass over `rows` (shuffled when training): the mean logs, and the steps taken."""
        self.module.train(training)
        order = rng.permutation(rows) if rng is not None else rows
        sums: dict[str, float] = {}
        seen, steps = 0, 0
        for start in range(0, len(order), self.config.batch):
            if steps_left is not None and steps >= steps_left:
                break
            batch = np.sort(order[start:start + self.config.batch])
            bx = [torch.from_numpy(np.ascontiguousarray(x[batch])).to(self.device) for x in xs]
            by = [torch.from_numpy(np.ascontiguousarray(y[batch])).to(self.device) for y in ys]
            with torch.set_grad_enabled(training):
                total, each, probabilities = self.losses(bx, by)
            if training:
                if not torch.isfinite(total):
                    raise SpecError.at(None, f"the loss became {float(total)} in training",
                                       "lower the learning rate, or check the targets")
                self.optimizer.zero_grad(set_to_none=True)
                total.backward()
                self.optimizer.step()
                self.module.apply_constraints()
                steps += 1
            n = len(batch)
            logs = {"loss": float(total.detach())}
            for task, loss, outputs, y in zip(self.tasks, each, probabilities, by):
                logs[f"{task.name}_loss"] = float(loss.detach())
                logs[f"{task.name}_{task.metric}"] = _metric(task, outputs.detach(), y)
            for key, value in logs.items():
                sums[key] = sums.get(key, 0.0) + value * n
            seen += n
        return {key: value / max(seen, 1) for key, value in sums.items()}, steps


def split_rows(n: int, fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """(training rows, validation rows): a seeded permutation, the validation share last."""
    order = np.random.default_rng(seed).permutation(n)
    n_val = int(round(n * fraction))
    return np.sort(order[:n - n_val]), np.sort(order[n - n_val:])


def train_multitask(model, config, options: RunOptions) -> TrainResult:
    """Train a model with several outputs (see the module docstring); `config` has its defaults."""
    _refuse_options(options, config)
    check_per_output_keys(model, config)
    xs, targets = load_task_data(config.data, model)
    device = pick_device(options.device)
    caller_threads = torch.get_num_threads()
    if device.type == "cpu":  # as a chain's run: one thread for a small step
        torch.set_num_threads(options.threads or cpu_threads(model.info.flops, config.batch, ddp.SINGLE))
    try:
        return _train(model, config, options, xs, targets, device)
    finally:
        torch.set_num_threads(caller_threads)


def _train(model, config, options: RunOptions, xs: list[np.ndarray], targets: dict[str, np.ndarray],
           device: torch.device) -> TrainResult:
    say = (lambda text: print(text, file=options.stream, flush=True)) if options.progress else (lambda text: None)
    started = time.perf_counter()
    with open_output(options.out, model.name, False, options.overwrite) as output:
        module = model.build(seed=config.seed).to(device)
        tasks = output_tasks(model, module, config, targets)
        ys = [targets[task.name] for task in tasks]
        ys = [y.astype(np.int64) if y.dtype.kind in "iub" else y.astype(np.float32) for y in ys]
        train_rows, val_rows = split_rows(len(xs[0]), config.validation_split, config.seed)
        if len(train_rows) == 0:
            raise SpecError.at(None, f"{config.data}: no samples left to train on after the validation split")
        record = _record(model, config, module, output.run_id, len(train_rows), len(val_rows), device)
        output.start(model.ir.source, _preprocess(model, config, output.run_id), record,
                     {"model": {k: v.detach().cpu() for k, v in module.state_dict().items()}, "epoch": 0})
        run = _Run(module, tasks, config, device)
        rng = np.random.default_rng(config.seed)
        torch.manual_seed(config.seed)
        history, steps, logs = [], 0, {}
        for epoch in range(1, config.epochs + 1):
            left = None if config.max_steps is None else config.max_steps - steps
            logs, taken = run.epoch(xs, ys, train_rows, True, rng, left)
            steps += taken
            if len(val_rows):
                with torch.no_grad():
                    val_logs, _ = run.epoch(xs, ys, val_rows, False)
                logs.update({f"val_{key}": value for key, value in val_logs.items()})
            history.append({"epoch": epoch, **logs})
            say(f"epoch {epoch}/{config.epochs}: " + ", ".join(f"{k} {v:.4f}" for k, v in logs.items()))
            if config.max_steps is not None and steps >= config.max_steps:
                break
        seconds = time.perf_counter() - started
        result = TrainResult(output.run_dir, len(history), history, logs, len(history), False, "completed",
                             module.cpu().eval(), seconds, len(train_rows) * len(history) / max(seconds, 1e-9))
        output.finish(module.state_dict(), record.model_copy(update={
            "status": "completed", "epochs_run": len(history), "best_epoch": len(history), "final_metrics": logs,
            "time_s": round(seconds, 3), "samples_per_s": round(result.samples_per_s, 1)}))
    return result


def _record(model, config, module, run_id: str | None, n_train: int, n_val: int, device: torch.device) -> RunRecord:
    first, (name, output_type) = model.ir.inputs[0], next(iter(model.info.outputs.items()))
    return RunRecord(
        run_id=run_id or "", specc_version=__version__, model=model.name, spec_file=model.ir.path,
        plugins=list(model.plugins), status="running",
        input=InputInfo(kind=first.kind, shape=list(first.type.dims), dtype=first.type.dtype, vocab=first.type.vocab),
        output=OutputInfo(shape=list(output_type.dims), final_activation=module.final_activations.get(name)),
        config=config.model_dump(mode="json"),
        data=DataInfo(train=config.data, source=str(config.data), validation_split=config.validation_split,
                      n_train=n_train, n_val=n_val), device=device.type)


def _preprocess(model, config, run_id: str | None) -> Preprocess:
    first = model.ir.inputs[0]
    return Preprocess(run_id=run_id, input_kind=first.kind, input_shape=list(first.type.dims),
                      input_dtype=first.type.dtype, labels=list(config.labels) if config.labels else None)


__all__ = ["check_per_output_keys", "load_task_data", "output_tasks", "split_rows", "train_multitask"]
