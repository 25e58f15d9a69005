"""The fit loop behind `specc train` and `Model.train()`: epochs of steps over the run's
samples (dataset.py), with callbacks (callbacks.py) at named hooks. Graph specs train here
too: their objective and batches of tuples, multitask.py.

Defaults where the train section says nothing: spec_compiler/train_config.py. Keeps the
last epoch's weights, or with early_stopping(restore_best=true) the best epoch's (when
training completes, early or not).

Data: which rows each step takes, and where batches are read (in this process, or by
DataLoader workers): dataset_loader.py. Data held in memory sit on the training device and
a batch is an index_select there: no per-sample Python. `max_steps` ends the run at that
step: an epoch it falls inside ends there (logged and validated like any epoch), and the
checkpoint holds the state at that step, so --resume with a larger max_steps continues the
same order. Speed options (--compile, channels_last for convnets): compiling.py.

The loss is checked for NaN/inf before every optimizer step on the CPU (free there); on CUDA
every 50 steps and at each epoch's end (a check is a device sync); a diverged run falls
back to the last good checkpoint.

Reproducibility: the model is built from the seed, each pass's order comes from a generator
seeded with (seed, pass), augmentation from its own generator; the checkpoint holds every
RNG state, so a resumed run ends with the same weights as an uninterrupted one (whatever
the number of workers: they only read).
"""

from __future__ import annotations

import contextlib
import math
import random
import signal
import threading
import time
from dataclasses import replace

import numpy as np
import torch
from torch import nn

from ..errors import SpecError, UsageError
from ..run import Preprocess, RunRecord
from ..train_config import TrainConfig
from . import checkpoint, compiling, ddp
from .callbacks import Callback, Checkpoint, MetricsLogger
from .dataset import TensorSamples
from .dataset_loader import Batches, StepPlan, batch_bounds, default_workers, derive, trains_batch_norm, validation_rows
from .devices import amp_dtype, cpu_threads, pick_device
from .multitask import check_per_output_keys, graph_data, graph_records, refuse_graph_options
from .options.augmentations import Augmenter
from .output import RunOutput, open_output
from .overrides import RunOptions, resolve_config, spec_relative_paths, split_overrides
from .prepare import TrainingData, chain_objective, prepare_data, preprocess_record, run_record
from .progress import Progress
from .result import TrainingInterrupted, TrainResult
from .scoring import EpochSums, as_tuple, each, score_batches
from .target import Target
from .tracking import TensorBoardLogger, tensorboard_available

__all__ = ["Diverged", "Trainer", "batch_bounds", "train"]


class Diverged(Exception):
    """The loss became NaN or infinite at this step."""

    def __init__(self, epoch: int, step: int, value: float):
        super().__init__(f"the loss became {value} at epoch {epoch + 1}, step {step + 1}")
        self.epoch, self.step, self.value = epoch, step, value


class _StopFlag:
    """Ctrl-C sets a flag checked between steps (a second Ctrl-C interrupts at once)."""

    def __init__(self):
        self.requested = False
        self._previous = None

    def __enter__(self):
        if threading.current_thread() is threading.main_thread():
            try:
                self._previous = signal.signal(signal.SIGINT, self._handle)
            except ValueError:
                self._previous = None
        return self

    def _handle(self, signum, frame):
        if self.requested:
            raise KeyboardInterrupt
        self.requested = True

    def __exit__(self, *exc):
        if self._previous is not None:
            signal.signal(signal.SIGINT, self._previous)
        return False


class Trainer:
    """One training run: the model, its optimizer and data on the device, and the loop.
    Callbacks see it as `trainer` (see callbacks.Callback for what they may use)."""

    def __init__(self, model, config: TrainConfig, options: RunOptions, data: TrainingData, target: Target | None,
                 objective, module: nn.Module, device: torch.device, dist: ddp.Dist, output: RunOutput,
                 first_record: RunRecord, preprocess: Preprocess, plan: StepPlan):
        """`target` None: a graph's several inputs (no augmentation, the default memory layout);
        `objective`: what the run minimizes and logs (scoring.py)."""
        self.model, self.config, self.options, self.data, self.target = model, config, options, data, target
        self.objective, self.preprocess = objective, preprocess
        self.device, self.dist, self.output, self.first_record, self.plan = device, dist, output, first_record, plan
        self.progress = Progress(config.epochs, 0, options.stream, enabled=options.progress and dist.main,
                                 live=options.live)
        if options.init_from:
            self.say(checkpoint.init_from(module, options.init_from))
        self.backend = compiling.backend_of(options.compile)
        self.memory_format = (compiling.memory_format(module, device, self.backend)
                              if target and len(target.input_dims) == 3 else None)
        self.module = module.to(device)
        if self.memory_format is not None:
            self.module.to(memory_format=self.memory_format)
        self.optimizer = config.optimizer.build(self._trainable(), config.lr, config.weight_decay)
        self.amp = amp_dtype(options.amp)
        self.eager_layers = compiling.keep_recurrent_layers_eager(self.module) if self.backend else []
        self.net = compiling.step_module(self.module, objective, self.amp, dist, device, self.backend)
        self.augment = Augmenter(config.augment, target.input_kind, len(target.input_dims)) if target is not None else None
        self.scaler = torch.amp.GradScaler(device.type) if self.amp == torch.float16 else None
        self.steps = self.progress.steps = plan.epoch_steps
        self.epochs = config.epochs
        self.has_validation = data.has_validation
        self.batches, self.val_batches = self._readers(first_record.workers)
        self.callbacks = self._callbacks()
        self.steady_steps = compiling.trusts_steps(self.backend, dist, options.callbacks)
        self.aug_generator = torch.Generator(device=device)
        self.history: list[dict] = []
        self.stop_training = False
        self.first_step = 0
        self.sums = None  # the epoch's sums (scoring.EpochSums)
        self.kept: tuple[int | None, dict] | None = None
        self.samples = 0
        self.lr = config.lr
        self.ended_at_max_steps = False
        self._stop = _StopFlag()

    # --- what callbacks use -----------------------------------------------------------------
    def request_stop(self) -> None:
        """Stop after the current step, saving a checkpoint (as Ctrl-C does)."""
        self._stop.requested = True

    def say(self, text: str) -> None:
        self.progress.message(text)

    def running_logs(self) -> dict:
        """The current epoch's loss and metrics so far (this process's share)."""
        return self.objective.logs(self.sums.tensor())

    def keep(self, epoch: int | None, logs: dict, state: dict) -> None:
        """Make `state` the run's weights, those of `epoch` (logged as `logs`)."""
        self.module.load_state_dict(state)
        self.kept = (epoch, logs)

    def save_checkpoint(self, epoch: int, step: int, partial: torch.Tensor | None = None) -> None:
        if self.output.writes and not self.ended_at_max_steps:  # that checkpoint is the step's, kept
            self.output.save_checkpoint(self.checkpoint_state(epoch, step, partial))

    def checkpoint_state(self, epoch: int, step: int, partial: torch.Tensor | None = None) -> dict:
        return {
            "format": checkpoint.FORMAT, "run_id": self.output.run_id, "epoch": epoch, "step": step,
            "seed": self.config.seed, "n_train": self.data.n_train, "epoch_steps": self.plan.epoch_steps,
            "model": {k: v.detach().cpu() for k, v in self.module.state_dict().items()},
            "optimizer": self.optimizer.state_dict(),
            "scaler": self.scaler.state_dict() if self.scaler is not None else None,
            "rng": checkpoint.rng_state(), "aug": self.aug_generator.get_state(), "partial": partial,
            "history": self.history, "callbacks": {key: c.state_dict() for key, c in self._keyed_callbacks()},
        }

    # --- setup --------------------------------------------------------------------------------
    def _trainable(self) -> list:
        params = [p for p in self.module.parameters() if p.requires_grad]
        if not params:
            raise SpecError.at(None, "every layer is frozen: nothing to train", "remove `frozen` from some layer")
        return params

    def _readers(self, workers: int) -> tuple[Batches, Batches]:
        """Where training and validation batches are read; data held in memory and read in this
        process move to the device."""
        def placed(samples):
            return samples.to(self.device) if workers == 0 and isinstance(samples, TensorSamples) else samples

        data, pin = self.data, self.device.type == "cuda" and workers > 0
        train = placed(data.samples)
        self.data = replace(data, samples=train,
                            val_samples=train if data.val_samples is data.samples else placed(data.val_samples))
        batches = Batches(train, workers, pin)
        if self.data.val_samples is train:
            return batches, batches
        return batches, Batches(self.data.val_samples, workers, pin)

    def _callbacks(self) -> list[Callback]:
        config, user = self.config, list(self.options.callbacks)
        wrong = [c for c in user if not isinstance(c, Callback)]
        if wrong:
            raise TypeError(f"callbacks must subclass spec_compiler.training.Callback; got {type(wrong[0]).__name__}")
        early = config.early_stopping
        best = early.monitor_for("restore_best") if early is not None and early.restore_best else None
        callbacks: list[Callback] = [self.progress,
                                     *config.schedule.callbacks(self.optimizer, self.steps, config.epochs)]
        if early is not None:
            callbacks.append(early.callback())
        callbacks += [*user, Checkpoint(best)]
        if self.output.writes:
            callbacks.append(MetricsLogger(self.output, self.model.name))
            if tensorboard_available():
                callbacks.append(TensorBoardLogger())
        return callbacks

    def _keyed_callbacks(self):
        return ((f"{i}.{type(c).__name__}", c) for i, c in enumerate(self.callbacks))

    # --- the loop -----------------------------------------------------------------------------
    def fit(self) -> TrainResult:
        start_epoch, start_step, partial = self._restore() if self.options.resume else self._seed()
        for callback in self.callbacks:  # may still refuse: nothing is written yet
            callback.on_train_begin(self)
        if self.backend is not None:
            self._compile()
        self._write_start()
        started = time.perf_counter()
        epoch = start_epoch
        with self._stop:
            try:
                for epoch in range(start_epoch, self.epochs):
                    first = start_step if epoch == start_epoch else 0
                    self._epoch(epoch, first, partial if first else None)
                    if self.stop_training or self.ended_at_max_steps:
                        break
            except TrainingInterrupted:
                self._end("interrupted", started)
                raise
            except Diverged as diverged:
                self._diverged(diverged)
            except KeyboardInterrupt:  # a second Ctrl-C: no checkpoint of this step
                self.progress.close()
                self.output.keep_unfinished()
                raise TrainingInterrupted(self.output.run_dir, epoch + 1, 0, False) from None
            finally:
                self.batches.close()
                self.val_batches.close()
        return self._end("completed", started)

    def _compile(self) -> None:
        """Compile before the first step, on a batch of each size the steps take (timed apart)."""
        batches = [self._on_device(*self.data.samples.read(rows)) for rows in self.plan.warm_up_rows(self.data.samples.device)]
        seconds = compiling.warm_up(self.module, batches, lambda x, y: self.net(as_tuple(x), y)[0])
        self.first_record = self.first_record.model_copy(update={"compile_s": round(seconds, 3)})
        self.say(f"compiled the model in {seconds:.1f}s (torch.compile, {self.backend}; not counted in samples/s)")
        eager = sorted({type(layer).__name__.lower() for layer in self.eager_layers})
        if eager:
            self.say(f"note: torch.compile runs {', '.join(eager)} uncompiled (Dynamo does not trace recurrent "
                     "layers): expect no gain from --compile; `--amp bf16` speeds them up on CPUs with bf16")

    def _seed(self) -> tuple[int, int, None]:
        """A new run: every RNG from the seed (and this process's rank); it starts at epoch 0."""
        seed, rank = self.config.seed, self.dist.rank
        torch.manual_seed(derive(seed, rank, 2))
        np.random.seed(derive(seed, rank, 3) % 2**32)
        random.seed(derive(seed, rank, 4))
        return 0, 0, None

    def _write_start(self) -> None:
        """The run's first files (run.json "running"; a new run's spec, preprocessing and first
        checkpoint, the "last good" one of the initial weights)."""
        if self.options.resume:
            self.output.write_record(self.record("running"))
        elif self.output.writes:
            self.output.start(self.model.ir.source, self.preprocess, self.record("running"),
                              self.checkpoint_state(0, 0))
        if self.output.note:
            self.say(self.output.note)
        data, d, workers = self.data, self.dist, self.first_record.workers
        where = "in memory" if isinstance(data.samples, TensorSamples) else "read from disk"
        self.say(f"training {self.model.name} on {data.source}: {data.n_train} samples"
                 + (f", validation {data.n_val}" if self.has_validation else "")
                 + f" ({where}" + (f", {workers} worker{'s' if workers > 1 else ''}" if workers else "") + ")"
                 + f"; {self.device.type}" + (f" x{d.world} (DDP)" if d.enabled else "")
                 + f"; run folder {self.output.run_dir}")

    def _restore(self) -> tuple[int, int, torch.Tensor | None]:
        state = self.output.load_checkpoint()
        where = self.output.run_dir
        if self.output.run_id is not None and state["run_id"] != self.output.run_id:
            raise SpecError.at(None, f"{where}: checkpoint.pt is not from the run in run.json",
                               "train again into this folder with --overwrite")
        if state["n_train"] != self.data.n_train:
            raise SpecError.at(None, f"{where}: the checkpoint was trained on {state['n_train']} samples, "
                                     f"this data has {self.data.n_train}", "resume with the same data and options")
        if state.get("epoch_steps", self.plan.epoch_steps) != self.plan.epoch_steps:
            raise SpecError.at(None, f"{where}: the checkpoint's epochs have {state['epoch_steps']} steps, this run's "
                                     f"{self.plan.epoch_steps}", "resume with the same --batch and --steps-per-epoch")
        try:
            self.module.load_state_dict(state["model"])
        except RuntimeError as error:
            raise SpecError.at(None, f"{where}: the checkpoint does not fit this spec: "
                                     f"{str(error).splitlines()[0]}") from None
        self.optimizer.load_state_dict(state["optimizer"])
        if self.scaler is not None and state["scaler"]:
            self.scaler.load_state_dict(state["scaler"])
        checkpoint.set_rng_state(state["rng"])
        self.aug_generator.set_state(state["aug"])
        self.history = list(state["history"])
        for key, callback in self._keyed_callbacks():
            if key in state["callbacks"]:
                callback.load_state_dict(state["callbacks"][key])
        epoch, step = int(state["epoch"]), int(state["step"])
        max_steps = self.plan.max_steps
        if max_steps is not None and self.plan.steps_before(epoch, step) >= max_steps:
            self.say(f"the checkpoint already holds {self.plan.steps_before(epoch, step)} step(s); raise --max-steps "
                     "to train further")
        elif epoch >= self.epochs and step == 0:
            self.say(f"the checkpoint already holds {epoch} epoch(s); raise --epochs to train further")
        else:
            self.say(f"resuming {where} at epoch {epoch + 1}" + (f", step {step + 1}" if step else ""))
        return epoch, step, state["partial"]

    def _epoch(self, epoch: int, first: int, partial: torch.Tensor | None) -> None:
        started = time.perf_counter()
        steps = self.plan.steps_in(epoch)
        self.first_step = first
        self.progress.steps = steps
        self.sums = EpochSums(self.objective.sums_size, partial)
        if first == 0:
            self.aug_generator.manual_seed(derive(self.config.seed, epoch, self.dist.rank, 5))
        for callback in self.callbacks:
            callback.on_epoch_begin(self, epoch + 1)
        self.module.train()
        rows = self.plan.epoch_rows(epoch, first, self.data.samples.device)
        with contextlib.ExitStack() as stance:
            for step, (xb, yb) in enumerate(self.batches(rows), start=first):
                if self._stop_requested():
                    self.save_checkpoint(epoch, step, self.sums.tensor())
                    raise TrainingInterrupted(self.output.run_dir, epoch + 1, step, True)
                self._step(*self._on_device(xb, yb), epoch, step)
                if step == first and self.steady_steps:  # the epoch's first step took the full check
                    stance.enter_context(compiling.steady())
                self.samples += len(as_tuple(xb)[0])
                for callback in self.callbacks:
                    callback.on_batch_end(self, epoch + 1, step + 1)
        if steps < self.plan.epoch_steps:  # max_steps ends the run inside this epoch
            self.save_checkpoint(epoch, steps, self.sums.tensor())
            self.ended_at_max_steps = True
        logs = self.objective.logs(ddp.all_reduce(self.sums.tensor(self.device), self.dist).cpu())
        if self.has_validation:
            rows = validation_rows(self.data.val_rows, self.config.batch, self.dist)
            validation = score_batches(self.module, self.objective,
                                       (self._on_device(x, y) for x, y in self.val_batches(rows)), self.device,
                                       self.amp, self.dist)
            logs.update({f"val_{k}": v for k, v in validation.items()})
        logs = {"epoch": epoch + 1, **logs, "lr": self.lr, "time_s": round(time.perf_counter() - started, 4)}
        self.history.append(logs)
        for callback in self.callbacks:
            callback.on_epoch_end(self, epoch + 1, logs)

    def _on_device(self, x, y) -> tuple:
        """A batch on the training device, in the model's memory format; y None: the target is x
        (a graph's x and y: tuples)."""
        if isinstance(x, tuple):
            return (each(x, lambda v: v.to(self.device, non_blocking=True)),
                    each(y, lambda v: v.to(self.device, non_blocking=True)))
        x = x.to(self.device, non_blocking=True)
        if self.memory_format is not None and x.ndim == 4:
            x = x.contiguous(memory_format=self.memory_format)
        return x, (x if y is None else y.to(self.device, non_blocking=True))

    def _step(self, xb, yb, epoch: int, step: int) -> None:
        if self.augment:
            xb = self.augment(xb, self.aug_generator)
        loss, _, batch_sums = self.net(as_tuple(xb), yb)  # scoring.forward_loss
        last = self.plan.steps_in(epoch) - 1
        check = self.device.type == "cpu" or self.dist.enabled or step % 50 == 49 or step == last
        if check and not self._finite(loss):
            raise Diverged(epoch, step, float(loss.detach().float().reshape(-1)[0].item()))
        self.lr = self.optimizer.param_groups[0]["lr"]
        self.optimizer.zero_grad(set_to_none=True)
        if self.scaler is not None:
            self.scaler.scale(loss).backward()
            if self.config.clip_norm or self.config.clip_value:
                self.scaler.unscale_(self.optimizer)
            self._clip()
            self.scaler.step(self.optimizer)
            self.scaler.update()
        else:
            loss.backward()
            self._clip()
            self.optimizer.step()
        if self.module.has_constraints:
            self.module.apply_constraints()
        self.sums.add(batch_sums)

    def _clip(self) -> None:
        params = self.optimizer.param_groups[0]["params"]
        if self.config.clip_value:
            nn.utils.clip_grad_value_(params, self.config.clip_value)
        if self.config.clip_norm:
            nn.utils.clip_grad_norm_(params, self.config.clip_norm)

    def _stop_requested(self) -> bool:
        if not self.dist.enabled:
            return self._stop.requested
        flag = torch.tensor([1.0 if self._stop.requested else 0.0], device=self.device)
        return bool(ddp.all_reduce(flag, self.dist, "max").item() > 0)

    def _finite(self, loss: torch.Tensor) -> bool:
        if not self.dist.enabled:
            return math.isfinite(loss.item())
        bad = 1.0 - torch.isfinite(loss.detach()).float().reshape(1)
        return bool(ddp.all_reduce(bad, self.dist, "max").item() == 0)

    # --- how it ends --------------------------------------------------------------------------
    def _end(self, status: str, started: float) -> TrainResult:
        for callback in self.callbacks:
            callback.on_train_end(self, status)
        compiling.restore_forwards(self.eager_layers)
        if self.memory_format is not None:
            self.module.to(memory_format=torch.contiguous_format)
        elapsed = time.perf_counter() - started
        if self.kept is None:
            self.kept = (len(self.history), self.history[-1]) if self.history else (None, {})
        epoch, logs = self.kept
        result = TrainResult(self.output.run_dir, len(self.history), self.history,
                             {k: v for k, v in logs.items() if k not in ("epoch", "time_s", "lr")}, epoch,
                             self.stop_training, status, self.module, elapsed,
                             self.samples * self.dist.world / elapsed if elapsed > 0 else 0.0, self.dist.main)
        self.output.finish(self.module.state_dict(), self.record(status, result))
        return result

    def _diverged(self, diverged: Diverged) -> None:
        for callback in self.callbacks:
            callback.on_train_end(self, "diverged")
        where = self.output.diverged(self.record("diverged"))
        hint = f"lower the learning rate (it is {self.config.lr:g})"
        if not self.config.clip_norm:
            hint += ", or add clip_norm=1.0 to the train section"
        raise SpecError.at(None, f"{diverged}; training stopped. {where}", hint)

    def record(self, status: str, result: TrainResult | None = None) -> RunRecord:
        """run.json as it stands now."""
        fields = {"status": status, "epochs_run": len(self.history)}
        if result is not None:
            fields.update(best_epoch=result.best_epoch, stopped_early=result.stopped_early,
                          final_metrics=result.metrics, time_s=round(result.time_s, 3),
                          samples_per_s=round(result.samples_per_s, 1))
        return self.first_record.model_copy(update=fields)


def train(model, **overrides) -> TrainResult:
    """`Model.train(**overrides)`: TrainConfig keys (epochs, batch, lr, loss, max_steps, ...) and
    run options (device, amp, out, resume, overwrite, init_from, progress, stream, callbacks,
    threads, workers, compile)."""
    config_overrides, options = split_overrides(overrides)
    if options.workers is not None and options.workers < 0:
        raise UsageError(f"workers: {options.workers} is not a number of processes (0 reads in this process)")
    resolved = resolve_config(spec_relative_paths(model), config_overrides)
    config = resolved.with_defaults()
    check_per_output_keys(model, config)
    graph = not model.ir.is_chain  # several inputs or outputs: one loss per output (multitask.py)
    if graph:
        refuse_graph_options(options, config)
    device = pick_device(options.device)
    dist = ddp.setup(device.type)
    if dist.enabled and device.type == "cuda":
        device = torch.device("cuda", dist.local_rank)
    caller_threads = torch.get_num_threads()
    try:
        threads = None
        if device.type == "cpu":
            threads = options.threads or cpu_threads(model.info.flops, config.batch, dist)
            torch.set_num_threads(threads)
        with open_output(options.out, model.name, options.resume, options.overwrite, dist.main) as output:
            module = model.build(seed=config.seed)
            target = None if graph else Target.of(model, module)
            if graph:
                data, objective = graph_data(model, module, config)
            else:
                config, data = prepare_data(config, target)
                objective = chain_objective(config, data, target, module.final_activation)
            plan = StepPlan(data.train_rows, config.batch, config.seed, dist, trains_batch_norm(module),
                            config.steps_per_epoch, config.max_steps)
            config = config.model_copy(update={"epochs": plan.epochs_for(resolved.epochs, config.epochs)})
            workers = options.workers if options.workers is not None else default_workers(data.samples, dist)
            if graph:
                record, preprocess = graph_records(model, config, data, module, options, device, dist.world, threads,
                                                   output.run_id)
            else:
                record = run_record(model, config, data, target, options, device, dist.world, threads, output.run_id)
                preprocess = preprocess_record(data, target, output.run_id)
            record = record.model_copy(update={"workers": workers})
            return Trainer(model, config, options, data, target, objective, module, device, dist, output, record,
                           preprocess, plan).fit()
    finally:
        torch.set_num_threads(caller_threads)
        ddp.teardown(dist)

