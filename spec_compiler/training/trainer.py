"""The training loop behind `specc train` and `Model.train()`.

Defaults when the spec's train section says nothing (docs: README, "Training"):
loss from the final activation (softmax: sparse categorical cross-entropy for class
ids, categorical for one-hot labels; sigmoid: binary cross-entropy; otherwise mse);
adam with lr 1e-3 (sgd: 1e-2); batch 32; 10 epochs; seed 0; validation_split 0.2 when
there is no validation file; metrics [accuracy] for classifiers.

Keeps: the last epoch's weights, or with early_stopping(restore_best=true) the best
epoch's (at the end of training, whether it stopped early or not). CPU threads: 1 for
small steps, else torch's default (see cpu_threads), chosen from the model and batch
only, so a seed always gives the same weights.

Speed: the data are tensors in memory (on the training device); a batch is
``x.index_select(0, permutation[i:i+batch])``: no per-sample Python, no DataLoader.
The loss is checked for NaN/inf before every optimizer step on the CPU (free there);
on CUDA every 50 steps and at each epoch's end (a check is a device sync), and a
diverged run falls back to the last good checkpoint either way. Reproducibility: the model is built from the seed, each epoch's order comes
from a generator seeded with (seed, epoch), augmentation from its own generator; the
checkpoint holds every RNG state, so a resumed run ends with the same weights as an
uninterrupted one.
"""

from __future__ import annotations

import contextlib
import math
import os
import random
import signal
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from ..errors import SpecError, UsageError
from ..train_config import TrainConfig
from . import data as data_mod
from . import ddp, runs
from .augment import Augmenter
from .losses import Accumulator, Head, fused_for, make_loss, make_metrics
from .progress import Progress
from .tokenizer import Tokenizer

DEFAULT_EPOCHS = 10
DEFAULT_BATCH = 32
DEFAULT_SEED = 0
DEFAULT_VALIDATION_SPLIT = 0.2
DEFAULT_LR = {"sgd": 1e-2, "adam": 1e-3, "adamw": 1e-3, "rmsprop": 1e-3}
RUN_OPTIONS = ("device", "amp", "out", "resume", "init_from", "progress", "stream", "callbacks", "live", "threads")
CONFIG_ALIASES = {"val_data": "validation_data", "batch_size": "batch", "learning_rate": "lr"}


class TrainingInterrupted(KeyboardInterrupt):
    """Ctrl-C (or a callback's request_stop()): a checkpoint was saved in run_dir."""

    def __init__(self, run_dir: Path | None, epoch: int, step: int, saved: bool):
        self.run_dir, self.epoch, self.step, self.saved = run_dir, epoch, step, saved
        super().__init__(f"interrupted at epoch {epoch}, step {step}")


@dataclass
class TrainResult:
    run_dir: Path | None
    epochs_run: int
    history: list[dict]
    metrics: dict  # of the kept weights: loss, metrics, val_loss, val_metrics
    best_epoch: int | None  # the epoch whose weights were kept (the best one with restore_best, else the last)
    stopped_early: bool
    status: str
    module: Any = field(repr=False, default=None)
    time_s: float = 0.0
    samples_per_s: float = 0.0
    is_main: bool = True  # False in DDP processes other than rank 0 (they write and print nothing)

    def to_json(self) -> dict:
        out = {"run_dir": str(self.run_dir) if self.run_dir else None, "epochs_run": self.epochs_run,
               "best_epoch": self.best_epoch, "stopped_early": self.stopped_early, "status": self.status,
               "val_loss": self.metrics.get("val_loss")}
        out.update(self.metrics)
        if "accuracy" in self.metrics:
            out.setdefault("val_accuracy", None)  # no validation data
        out["time_s"] = round(self.time_s, 3)
        out["samples_per_s"] = round(self.samples_per_s, 1)
        return runs._json_safe(out)


@dataclass
class RunOptions:
    device: str = "auto"
    amp: str | None = None
    out: str | Path | None = None
    resume: bool = False
    init_from: str | Path | None = None
    progress: bool = True
    stream: Any = None
    callbacks: tuple = ()
    live: bool | None = None
    threads: int | None = None


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
    from ..model import compile_source

    lines = "\n".join(f"  {k}={t}" for k, t in texts.items())
    try:
        parsed = compile_source(f"input vector 1\ndense 1\ntrain {{\n{lines}\n}}\n", "<train options>").ir.train
    except SpecError as error:
        raise UsageError("bad training option: " + "; ".join(d.message for d in error.diagnostics)) from None
    return {**overrides, **{k: getattr(parsed, k) for k in texts}}


def resolve_config(spec_config: TrainConfig, config_overrides: dict) -> TrainConfig:
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


def pick_device(name: str) -> torch.device:
    if name in (None, "auto"):
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise UsageError("--device cuda: no CUDA device is available (use --device cpu or auto)")
    if name not in ("cpu",) and not name.startswith("cuda"):
        raise UsageError(f"--device: unknown device `{name}` (auto, cpu, cuda)")
    return torch.device(name)


SMALL_STEP_MACS = 3e8


def cpu_threads(flops_per_sample: int, batch: int, d: ddp.Dist) -> int:
    """Intra-op threads on the CPU: 1 when a training step is small (below ~3e8
    multiply-adds, forward and backward), where threads cost more in synchronization
    than they give (and collapse on a busy machine); else torch's default (the
    physical cores), shared among the DDP processes of this machine. It depends only on
    the model and the batch, so the same run always uses the same count (and gives
    the same weights)."""
    if flops_per_sample * batch * 3 < SMALL_STEP_MACS:
        return 1
    local = int(os.environ.get("LOCAL_WORLD_SIZE", d.world)) if d.enabled else 1
    return max(1, torch.get_num_threads() // local)


def _derive(*parts: int) -> int:
    """A seed from several integers (stable across runs and platforms)."""
    value = 0x9E3779B97F4A7C15
    for part in parts:
        value = (value ^ (part + 0x9E3779B97F4A7C15 + (value << 6) + (value >> 2))) & 0xFFFFFFFFFFFF
    return value


def epoch_order(n: int, seed: int, epoch: int) -> torch.Tensor:
    return torch.randperm(n, generator=torch.Generator().manual_seed(_derive(seed, epoch, 1)))


class _Net(nn.Module):
    """What DDP wraps: forward_logits (fused losses) or forward."""

    def __init__(self, module: nn.Module, logits: bool):
        super().__init__()
        self.module = module
        self.logits = logits

    def forward(self, x):
        return self.module.forward_logits(x) if self.logits else self.module(x)


class LRSchedule:
    """Every schedule as a learning-rate factor per step; plateau changes it per epoch."""

    def __init__(self, spec, base_lr: float, steps_per_epoch: int, epochs: int):
        self.spec, self.base_lr = spec, base_lr
        self.steps_per_epoch, self.epochs = steps_per_epoch, epochs
        self.kind = spec.kind if spec is not None else "constant"
        self.plateau_lr = base_lr
        self.best = None
        self.wait = 0

    def lr_at(self, epoch: int, step: int) -> float:
        if self.kind == "step":
            return self.base_lr * self.spec.gamma ** (epoch // self.spec.every)
        if self.kind == "cosine":
            warmup = self.spec.warmup * self.steps_per_epoch
            t = epoch * self.steps_per_epoch + step
            if t < warmup:
                return self.base_lr * (t + 1) / warmup
            total = max(1, self.epochs * self.steps_per_epoch - warmup)
            progress = min(1.0, (t - warmup) / total)
            return self.spec.min_lr + (self.base_lr - self.spec.min_lr) * 0.5 * (1 + math.cos(math.pi * progress))
        if self.kind == "plateau":
            return self.plateau_lr
        return self.base_lr

    def end_epoch(self, logs: dict, mode: str) -> None:
        if self.kind != "plateau":
            return
        value = logs.get(self.spec.monitor)
        if value is None or not math.isfinite(value):
            return
        better = self.best is None or (value < self.best - self.spec.min_delta if mode == "min"
                                       else value > self.best + self.spec.min_delta)
        if better:
            self.best, self.wait = value, 0
        else:
            self.wait += 1
            if self.wait > self.spec.patience:
                self.plateau_lr = max(self.spec.min_lr, self.plateau_lr * self.spec.factor)
                self.wait = 0

    def state_dict(self) -> dict:
        return {"plateau_lr": self.plateau_lr, "best": self.best, "wait": self.wait}

    def load_state_dict(self, state: dict) -> None:
        self.plateau_lr, self.best, self.wait = state["plateau_lr"], state["best"], state["wait"]


def monitor_mode(name: str, mode: str = "auto") -> str:
    if mode != "auto":
        return mode
    lowered = name.lower()
    return "max" if any(w in lowered for w in ("acc", "precision", "recall")) else "min"


def make_optimizer(config: TrainConfig, params, lr: float) -> torch.optim.Optimizer:
    spec = config.optimizer
    kind = spec.kind if spec is not None else "adam"
    wd = config.weight_decay
    if kind == "sgd":
        momentum = spec.momentum if spec else 0.0
        nesterov = spec.nesterov if spec else False
        if nesterov and momentum <= 0:
            raise SpecError.at(None, "sgd with nesterov=true needs momentum > 0", "write optimizer=sgd(momentum=0.9, "
                                                                                  "nesterov=true)")
        return torch.optim.SGD(params, lr=lr, momentum=momentum, nesterov=nesterov, weight_decay=wd)
    if kind in ("adam", "adamw"):
        betas = tuple(spec.betas) if spec else (0.9, 0.999)
        eps = spec.eps if spec else 1e-7
        amsgrad = spec.amsgrad if spec else False
        cls = torch.optim.AdamW if kind == "adamw" else torch.optim.Adam
        return cls(params, lr=lr, betas=betas, eps=eps, amsgrad=amsgrad, weight_decay=wd)
    return torch.optim.RMSprop(params, lr=lr, alpha=spec.rho, eps=spec.eps, momentum=spec.momentum,
                               centered=spec.centered, weight_decay=wd)


def default_loss(target: data_mod.Target, raw_y: np.ndarray) -> str:
    if target.final_activation == "softmax":
        y = np.asarray(raw_y)
        one_hot = y.ndim == 2 and target.units is not None and y.shape[1] == target.units and len(
            target.output_dims) == 1 and y.dtype != object
        return "categorical_crossentropy" if one_hot else "sparse_categorical_crossentropy"
    if target.final_activation == "sigmoid":
        return "binary_crossentropy"
    return "mse"


def _rng_state() -> dict:
    kind, keys, pos, has_gauss, cached = np.random.get_state()
    state = {"torch": torch.get_rng_state(), "numpy": {"kind": kind, "keys": torch.from_numpy(keys.astype(np.int64)),
                                                       "pos": int(pos), "has_gauss": int(has_gauss),
                                                       "cached": float(cached)},
             "python": random.getstate()}
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def _set_rng_state(state: dict) -> None:
    torch.set_rng_state(state["torch"])
    n = state["numpy"]
    np.random.set_state((n["kind"], n["keys"].numpy().astype(np.uint32), n["pos"], n["has_gauss"], n["cached"]))
    py = state["python"]
    random.setstate((py[0], tuple(py[1]), py[2]))
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


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
    def __init__(self, model, config: TrainConfig, options: RunOptions):
        self.model, self.config, self.options = model, config, options
        self.stop = _StopFlag()
        self.callbacks = list(options.callbacks)

    # --- public hooks for callbacks ---------------------------------------------------
    def request_stop(self) -> None:
        """Stop after the current step, saving a checkpoint (as Ctrl-C does)."""
        self.stop.requested = True

    # --- setup ----------------------------------------------------------------------
    def _say(self, text: str) -> None:
        if self.dist.main:
            self.progress.message(text)

    def prepare_data(self) -> None:
        cfg, target = self.config, self.target
        raw = data_mod.load_raw(cfg.data, target)
        tokenizer = None
        if raw.kind != "text":  # inputs are checked first: a wrong input is the first thing to fix
            x_all, _ = data_mod.adapt_inputs(raw, target)
        self.loss_kind = cfg.loss.kind if cfg.loss is not None else default_loss(target, raw.y)
        names = list(cfg.labels) if cfg.labels else None
        y_all, labels = data_mod.adapt_labels(raw, target, self.loss_kind, names)
        if self.loss_kind == "sparse_categorical_crossentropy" and y_all.dtype != torch.int64:
            raise data_mod.data_error(raw.source, "sparse_categorical_crossentropy takes class ids as labels; "
                                                  "these are one-hot or probabilities",
                                      "use loss=categorical_crossentropy")
        if cfg.labels and target.units and target.final_activation == "softmax" and len(cfg.labels) != target.units:
            raise SpecError.at(None, f"labels= names {len(cfg.labels)} classes but the output has {target.units} units")
        split = 0.0 if cfg.validation_data else (
            cfg.validation_split if cfg.validation_split is not None else DEFAULT_VALIDATION_SPLIT)
        self.validation_split = split
        train_idx, val_idx = data_mod.split_indices(len(raw), split, self.seed)
        if raw.kind == "text":  # the vocabulary comes from the training part only
            _, tokenizer = data_mod.adapt_inputs(raw.take(train_idx), target)
            x_all, _ = data_mod.adapt_inputs(raw, target, tokenizer)
        tr = torch.from_numpy(train_idx)
        x_train, y_train = x_all[tr], y_all[tr]
        if cfg.validation_data:
            val_raw = data_mod.load_raw(cfg.validation_data, target)
            y_val, _ = data_mod.adapt_labels(val_raw, target, self.loss_kind, labels if labels else names)
            x_val, _ = data_mod.adapt_inputs(val_raw, target, tokenizer)
            self.val_source = val_raw.source
        else:
            va = torch.from_numpy(val_idx)
            x_val, y_val = x_all[va], y_all[va]
            self.val_source = f"{raw.source} ({split:g} split)" if len(va) else None
        # normalization (statistics of the training part)
        self.norm = None
        if cfg.normalize is not None and cfg.normalize.kind != "none":
            if target.input_dtype == "int":
                raise SpecError.at(None, "normalize= applies to float inputs; this spec's input is token ids")
            self.norm = data_mod.normalization_stats(x_train, cfg.normalize.kind,
                                                     getattr(cfg.normalize, "factor", None), target.input_kind)
            x_train = data_mod.apply_normalization(x_train, self.norm)
            x_val = data_mod.apply_normalization(x_val, self.norm)
        self.source = raw.source
        self.labels = labels
        self.tokenizer: Tokenizer | None = tokenizer
        self.x_train, self.y_train, self.x_val, self.y_val = x_train, y_train, x_val, y_val

    def preprocess_json(self) -> dict:
        t = self.target
        image = None
        if t.input_kind == "image" and len(t.input_dims) == 3:
            image = {"channels": t.input_dims[0], "height": t.input_dims[1], "width": t.input_dims[2]}
        norm = None
        if self.norm:
            norm = {k: self.norm[k] for k in ("kind", "mean", "std")}
            norm["axis"] = self.norm.get("axis")
        return {"input_kind": t.input_kind, "labels": self.labels, "normalize": norm, "image": image,
                "text": self.tokenizer.to_json() if self.tokenizer else None,
                "input_shape": list(t.input_dims), "input_dtype": t.input_dtype,
                "source": "digits" if self.source == data_mod.DIGITS else "file",
                "digits_adaptation": "bilinear resize of the 8x8 image to HxW, /16 to [0,1], repeated over C"
                if self.source == data_mod.DIGITS else None}

    def build(self) -> None:
        module = self.built
        if self.options.init_from:
            self.init_report = init_from(module, self.options.init_from)
            self._say(self.init_report)
        self.module = module.to(self.device)
        self.head = Head(module.final_activation, fused_for(self.loss_kind, module.final_activation))
        net = _Net(self.module, self.head.fused)
        if self.dist.enabled:
            from torch.nn.parallel import DistributedDataParallel as DDP

            if not any(p.requires_grad for p in module.parameters()):
                raise SpecError.at(None, "every layer is frozen: nothing to train")
            net = DDP(net, device_ids=[self.device.index] if self.device.type == "cuda" else None)
        self.net = net
        params = [p for p in self.module.parameters() if p.requires_grad]
        if not params:
            raise SpecError.at(None, "every layer is frozen: nothing to train", "remove `frozen` from some layer")
        cfg = self.config
        opt_lr = getattr(cfg.optimizer, "lr", None) if cfg.optimizer is not None else None
        kind = cfg.optimizer.kind if cfg.optimizer is not None else "adam"
        self.lr = cfg.lr or opt_lr or DEFAULT_LR[kind]
        self.optimizer = make_optimizer(cfg, params, self.lr)
        self.loss_fn = make_loss(cfg.loss or _loss_spec(self.loss_kind), self.head)
        self.metrics = make_metrics(cfg.metrics, self.loss_kind, self.y_train, self.target.units,
                                    self.target.is_classifier)
        self.probabilities = any(m.needs_probabilities for m in self.metrics)
        self.augment = Augmenter(cfg.augment, self.target.input_kind, len(self.target.input_dims))
        amp = self.options.amp
        if amp not in (None, "none", "bf16", "fp16"):
            raise UsageError(f"--amp: unknown precision `{amp}` (bf16, fp16)")
        self.amp_dtype = {"bf16": torch.bfloat16, "fp16": torch.float16}.get(amp or "none")
        self.scaler = torch.amp.GradScaler(self.device.type) if self.amp_dtype == torch.float16 else None

    def autocast(self):
        if self.amp_dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(self.device.type, dtype=self.amp_dtype)

    # --- the loop -------------------------------------------------------------------
    def run(self) -> TrainResult:
        cfg, opts = self.config, self.options
        self.seed = cfg.seed if cfg.seed is not None else DEFAULT_SEED
        self.epochs = cfg.epochs or DEFAULT_EPOCHS
        self.batch = cfg.batch or DEFAULT_BATCH
        self.device = pick_device(opts.device)
        self.dist = ddp.setup(self.device.type)
        threads = torch.get_num_threads()
        try:
            return self._run()
        finally:
            torch.set_num_threads(threads)  # the caller's setting, as it was
            ddp.teardown(self.dist)

    def _run(self) -> TrainResult:
        cfg, opts, d = self.config, self.options, self.dist
        if d.enabled and self.device.type == "cuda":
            self.device = torch.device("cuda", d.local_rank)
        self.threads = None
        if self.device.type == "cpu":
            self.threads = opts.threads or cpu_threads(self.model.info.flops, self.batch, d)
            torch.set_num_threads(self.threads)
        self.progress = Progress(self.epochs, 0, opts.stream, enabled=opts.progress and d.main, live=opts.live)
        self.built = self.model.build(seed=self.seed)
        self.target = data_mod.Target.of(self.model, self.built)
        self.prepare_data()
        self.build()
        n = len(self.x_train)
        per_rank = -(-n // d.world)
        self.steps = max(1, -(-per_rank // self.batch))
        self.progress.steps = self.steps
        self.schedule = LRSchedule(cfg.schedule, self.lr, self.steps, self.epochs)
        self.has_val = len(self.x_val) > 0
        early = cfg.early_stopping
        if early is not None and early.monitor.startswith("val_") and not self.has_val:
            raise SpecError.at(None, f"early stopping monitors `{early.monitor}` but there is no validation data",
                               "set validation_split=0.2 or validation_data=FILE in the train section")
        if cfg.schedule is not None and cfg.schedule.kind == "plateau" and cfg.schedule.monitor.startswith("val_") \
                and not self.has_val:
            raise SpecError.at(None, f"the plateau schedule monitors `{cfg.schedule.monitor}` but there is no "
                                     "validation data", "set validation_split=0.2")
        self.run_dir = self._run_dir()
        x_train, y_train = self.x_train.to(self.device), self.y_train.to(self.device)
        x_val, y_val = self.x_val.to(self.device), self.y_val.to(self.device)
        self.aug_gen = torch.Generator(device=self.device)

        # state
        self.history: list[dict] = []
        self.best = {"value": None, "epoch": None, "wait": 0, "state": None, "logs": None}
        start_epoch, start_step, partial = 0, 0, None
        if opts.resume:
            start_epoch, start_step, partial = self._restore()
        else:
            torch.manual_seed(_derive(self.seed, d.rank, 2))
            np.random.seed(_derive(self.seed, d.rank, 3) % 2**32)
            random.seed(_derive(self.seed, d.rank, 4))
        if d.main:
            self._write_start()
            if not opts.resume:
                self._save_checkpoint(0, 0, None)  # the first "last good" checkpoint: the initial weights
        self._say(f"training {self.model.name} on {self.source}: {n} samples"
                  + (f", validation {len(self.x_val)}" if self.has_val else "")
                  + f"; {self.device.type}" + (f" x{d.world} (DDP)" if d.enabled else "")
                  + f"; run folder {self.run_dir}")
        mode = monitor_mode(early.monitor, early.mode) if early else "min"
        sched_mode = monitor_mode(cfg.schedule.monitor) if cfg.schedule is not None and \
            cfg.schedule.kind == "plateau" else "min"
        started = time.perf_counter()
        trained_samples = 0
        stopped_early = False
        status = "completed"
        epoch = start_epoch
        cpu = self.device.type == "cpu"
        with self.stop:
            try:
                for epoch in range(start_epoch, self.epochs):
                    t0 = time.perf_counter()
                    order = ddp.shard(epoch_order(n, self.seed, epoch), d).to(self.device)
                    first = start_step if epoch == start_epoch else 0
                    sums = Accumulator(self.metrics)
                    if first == 0:
                        self.aug_gen.manual_seed(_derive(self.seed, epoch, d.rank, 5))
                    elif partial is not None:
                        sums = Accumulator(self.metrics, partial)
                    self.progress.start_epoch(epoch + 1, first)
                    self.module.train()
                    for step in range(first, self.steps):
                        if self._stop_requested():
                            raise TrainingInterrupted(self.run_dir, epoch + 1, step, self._interrupt_save(epoch, step,
                                                                                                         sums))
                        lr = self.schedule.lr_at(epoch, step)
                        for group in self.optimizer.param_groups:
                            group["lr"] = lr
                        index = order[step * self.batch:(step + 1) * self.batch]
                        xb = x_train.index_select(0, index)
                        yb = y_train.index_select(0, index)
                        if self.augment:
                            xb = self.augment(xb, self.aug_gen)
                        with self.autocast():
                            z = self.net(xb)
                        z = z.float()
                        loss = self.loss_fn(z, yb)
                        if self.module.has_regularization:
                            loss = loss + self.module.regularization_loss()
                        check = cpu or d.enabled or step % 50 == 49 or step == self.steps - 1
                        if check and not self._finite(loss):
                            self._diverged(epoch, step, loss)
                        self.optimizer.zero_grad(set_to_none=True)
                        if self.scaler is not None:
                            self.scaler.scale(loss).backward()
                            if cfg.clip_norm or cfg.clip_value:
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
                        with torch.no_grad():
                            self._accumulate(sums, loss.detach(), z.detach(), yb)
                        trained_samples += len(index)
                        if self.progress.live and self.progress.wants_update():
                            self.progress.update(step + 1, self._logs(sums.tensor()))
                        for callback in self.callbacks:
                            hook = getattr(callback, "on_batch_end", None)
                            if hook:
                                hook(self, epoch + 1, step + 1)
                    logs = self._logs(ddp.all_reduce(sums.tensor(self.device), d).cpu())
                    if self.has_val:
                        logs.update({f"val_{k}": v for k, v in self.evaluate_tensors(x_val, y_val).items()})
                    logs["lr"] = lr
                    logs = {"epoch": epoch + 1, **logs, "time_s": round(time.perf_counter() - t0, 4)}
                    self.history.append(logs)
                    self.progress.end_epoch(epoch + 1, logs)
                    self.schedule.end_epoch(logs, sched_mode)
                    stop_now = False
                    if early is not None:
                        stop_now = self._early_stopping(early, logs, mode, epoch + 1)
                    if d.main:
                        self._save_checkpoint(epoch + 1, 0, None)
                        runs.write_metrics_csv(self.run_dir / "metrics.csv", self.history)
                    for callback in self.callbacks:
                        hook = getattr(callback, "on_epoch_end", None)
                        if hook:
                            hook(self, epoch + 1, logs)
                    if stop_now:
                        stopped_early = True
                        self._say(f"early stopping: `{early.monitor}` has not improved for {early.patience} "
                                  f"epoch(s); best epoch {self.best['epoch']}")
                        break
            except TrainingInterrupted:
                self.progress.close()
                # weights.safetensors gets the weights as they are (resuming replaces them)
                self._finish(len(self.history), "interrupted", False, started, trained_samples)
                raise
            except KeyboardInterrupt:
                self.progress.close()
                raise TrainingInterrupted(self.run_dir, epoch + 1, 0, False) from None
            finally:
                self.progress.close()
        return self._finish(len(self.history), status, stopped_early, started, trained_samples)

    # --- pieces of the loop -----------------------------------------------------------
    def _stop_requested(self) -> bool:
        if not self.dist.enabled:
            return self.stop.requested
        flag = torch.tensor([1.0 if self.stop.requested else 0.0], device=self.device)
        return bool(ddp.all_reduce(flag, self.dist, "max").item() > 0)

    def _finite(self, loss: torch.Tensor) -> bool:
        if not self.dist.enabled:
            return math.isfinite(loss.item())
        ok = torch.isfinite(loss.detach()).float().reshape(1)
        if self.dist.enabled:
            ok = 1.0 - ddp.all_reduce(1.0 - ok, self.dist, "max")
        return bool(ok.item() > 0)

    def _clip(self) -> None:
        cfg = self.config
        if cfg.clip_value:
            nn.utils.clip_grad_value_(self.optimizer.param_groups[0]["params"], cfg.clip_value)
        if cfg.clip_norm:
            nn.utils.clip_grad_norm_(self.optimizer.param_groups[0]["params"], cfg.clip_norm)

    def _accumulate(self, sums: Accumulator, loss: torch.Tensor, z: torch.Tensor, y: torch.Tensor) -> None:
        out = (self.head.outputs(z) if self.probabilities else z) if self.metrics else None
        sums.add(loss, y.shape[0], out, y)

    def _logs(self, sums: torch.Tensor) -> dict:
        logs = {"loss": float(sums[0] / sums[1]) if float(sums[1]) else float("nan")}
        offset = 2
        for metric in self.metrics:
            logs[metric.name] = metric.value(sums[offset:offset + metric.size])
            offset += metric.size
        return logs

    @torch.no_grad()
    def evaluate_tensors(self, x: torch.Tensor, y: torch.Tensor) -> dict:
        """Loss and metrics over (x, y), in eval mode, sharded across DDP processes."""
        module = self.module
        was_training = module.training
        module.eval()
        index = ddp.shard(torch.arange(len(x), device=x.device), self.dist, pad=False)
        sums = Accumulator(self.metrics)
        step = max(self.batch, 256)
        reg = module.regularization_loss() if module.has_regularization else None
        for start in range(0, len(index), step):
            part = index[start:start + step]
            xb, yb = x.index_select(0, part), y.index_select(0, part)
            with self.autocast():
                z = module.forward_logits(xb) if self.head.fused else module(xb)
            z = z.float()
            loss = self.loss_fn(z, yb)
            if reg is not None:
                loss = loss + reg
            self._accumulate(sums, loss, z, yb)
        module.train(was_training)
        return self._logs(ddp.all_reduce(sums.tensor(self.device), self.dist).cpu())

    def _early_stopping(self, early, logs: dict, mode: str, epoch: int) -> bool:
        value = logs.get(early.monitor)
        if value is None:
            raise SpecError.at(None, f"early stopping monitors `{early.monitor}`, which is not logged",
                               f"choose one of: {', '.join(k for k in logs if k not in ('epoch', 'time_s', 'lr'))}")
        best = self.best["value"]
        improved = math.isfinite(value) and (best is None or (
            value < best - early.min_delta if mode == "min" else value > best + early.min_delta))
        if improved:
            self.best.update(value=value, epoch=epoch, wait=0, logs=logs)
            if early.restore_best:
                self.best["state"] = {k: v.detach().clone() for k, v in self.module.state_dict().items()}
            return False
        self.best["wait"] += 1
        return self.best["wait"] >= early.patience

    def _diverged(self, epoch: int, step: int, loss: torch.Tensor) -> None:
        value = float(loss.detach().float().reshape(-1)[0].item()) if loss.numel() else float("nan")
        self.progress.close()
        where = self.run_dir / runs.CHECKPOINT
        good = len(self.history)
        if self.dist.main:
            checkpoint = runs.load_checkpoint(where)
            runs.save_weights(self.run_dir / runs.WEIGHTS, checkpoint["model"])
            runs.write_metrics_csv(self.run_dir / "metrics.csv", self.history) if self.history else None
            self._write_run_json("diverged", good, None)
        hint = f"lower the learning rate (it is {self.lr:g})"
        if not self.config.clip_norm:
            hint += ", or add clip_norm=1.0 to the train section"
        raise SpecError.at(None, f"the loss became {value} at epoch {epoch + 1}, step {step + 1}; training stopped. "
                                 f"The last good checkpoint (end of epoch {good}) is kept in {where}, and its "
                                 f"weights in {self.run_dir / runs.WEIGHTS}", hint)

    # --- run folder -----------------------------------------------------------------
    def _run_dir(self) -> Path:
        out = self.options.out
        if out is not None:
            path = Path(out)
            if self.options.resume:
                return path
            if (path / runs.CHECKPOINT).exists() and self.dist.main:
                self._say(f"note: starting a new run in {path} (its previous run is replaced; "
                          "use --resume to continue it)")
            return path
        if self.options.resume:
            raise UsageError("--resume needs --out DIR: the folder of the run to continue")
        return runs.new_run_dir(self.model.name)

    def _write_start(self) -> None:
        self.run_dir.mkdir(parents=True, exist_ok=True)
        from ..files import write_text_atomic

        write_text_atomic(self.run_dir / "model.spec", self.model.ir.source)
        runs.write_json(self.run_dir / "preprocess.json", self.preprocess_json())
        self._write_run_json("running", len(self.history), None)

    def resolved_config(self) -> dict:
        cfg = self.config.model_dump(mode="json")
        cfg.update(loss=cfg["loss"] or {"kind": self.loss_kind}, lr=self.lr, batch=self.batch, epochs=self.epochs,
                   seed=self.seed, validation_split=self.validation_split,
                   optimizer=cfg["optimizer"] or {"kind": "adam", "lr": None, "betas": [0.9, 0.999], "eps": 1e-7,
                                                  "amsgrad": False},
                   metrics=cfg["metrics"] if cfg["metrics"] is not None else [{"kind": m.name} for m in self.metrics
                                                                              if m.name == "accuracy"],
                   schedule=cfg["schedule"] or {"kind": "constant"})
        return cfg

    def _write_run_json(self, status: str, epochs_run: int, result: TrainResult | None) -> None:
        from .. import __version__

        t = self.target
        data = {
            "specc_version": __version__, "model": self.model.name, "spec_file": self.model.ir.path,
            "plugins": list(self.model.plugins), "status": status,
            "input": {"kind": t.input_kind, "shape": list(t.input_dims), "dtype": t.input_dtype, "vocab": t.vocab},
            "output": {"shape": list(t.output_dims), "final_activation": t.final_activation},
            "config": self.resolved_config(),
            "data": {"train": self.config.data, "source": self.source, "validation": self.config.validation_data,
                     "validation_split": self.validation_split, "n_train": len(self.x_train),
                     "n_val": len(self.x_val)},
            "device": self.device.type, "amp": self.options.amp, "world_size": self.dist.world,
            "threads": self.threads,
            "epochs_run": epochs_run, "init_from": str(self.options.init_from) if self.options.init_from else None,
        }
        if result is not None:
            data.update(best_epoch=result.best_epoch, stopped_early=result.stopped_early,
                        final_metrics=result.metrics, time_s=round(result.time_s, 3),
                        samples_per_s=round(result.samples_per_s, 1))
        runs.write_json(self.run_dir / "run.json", data)

    def _checkpoint_state(self, epoch: int, step: int, partial: torch.Tensor | None) -> dict:
        best = dict(self.best)
        return {
            "format": 1, "epoch": epoch, "step": step, "seed": self.seed,
            "model": {k: v.detach().cpu() for k, v in self.module.state_dict().items()},  # saved at once: no copy
            "optimizer": self.optimizer.state_dict(), "schedule": self.schedule.state_dict(),
            "scaler": self.scaler.state_dict() if self.scaler is not None else None,
            "rng": _rng_state(), "aug": self.aug_gen.get_state(),
            "partial": partial.tensor() if partial is not None else None,
            "history": self.history, "best": {k: best[k] for k in ("value", "epoch", "wait", "logs")},
            "best_state": best["state"] and {k: v.cpu() for k, v in best["state"].items()},
            "n_train": len(self.x_train),
        }

    def _save_checkpoint(self, epoch: int, step: int, partial) -> None:
        runs.save_checkpoint(self.run_dir / runs.CHECKPOINT, self._checkpoint_state(epoch, step, partial))

    def _interrupt_save(self, epoch: int, step: int, sums: torch.Tensor) -> bool:
        if self.dist.main:
            self._save_checkpoint(epoch, step, sums)
        return True

    def _restore(self) -> tuple[int, int, torch.Tensor | None]:
        state = runs.load_checkpoint(self.run_dir / runs.CHECKPOINT)
        if state.get("n_train") != len(self.x_train):
            raise SpecError.at(None, f"{self.run_dir}: the checkpoint was trained on {state.get('n_train')} samples, "
                                     f"this data has {len(self.x_train)}", "resume with the same data and options")
        try:
            self.module.load_state_dict(state["model"])
        except RuntimeError as error:
            raise SpecError.at(None, f"{self.run_dir}: the checkpoint does not fit this spec: "
                                     f"{str(error).splitlines()[0]}") from None
        self.optimizer.load_state_dict(state["optimizer"])
        self.schedule.load_state_dict(state["schedule"])
        if self.scaler is not None and state.get("scaler"):
            self.scaler.load_state_dict(state["scaler"])
        _set_rng_state(state["rng"])
        self.aug_gen.set_state(state["aug"])
        self.history = list(state["history"])
        self.best.update(state["best"])
        self.best["state"] = state.get("best_state")
        epoch, step = int(state["epoch"]), int(state["step"])
        if epoch >= self.epochs and step == 0:
            self._say(f"the checkpoint already holds {epoch} epoch(s); raise --epochs to train further")
        else:
            self._say(f"resuming {self.run_dir} at epoch {epoch + 1}" + (f", step {step + 1}" if step else ""))
        return epoch, step, state.get("partial")

    def _finish(self, epochs_run: int, status: str, stopped_early: bool, started: float, samples: int,
                write_weights: bool = True) -> TrainResult:
        elapsed = time.perf_counter() - started
        early = self.config.early_stopping
        if early is not None and early.restore_best and self.best["state"] is not None and status == "completed":
            self.module.load_state_dict(self.best["state"])  # the kept weights: the best epoch's
            logs, kept_epoch = self.best["logs"], self.best["epoch"]
        else:  # the kept weights: the last epoch's
            logs, kept_epoch = (self.history[-1], len(self.history)) if self.history else ({}, None)
        kept = {k: v for k, v in logs.items() if k not in ("epoch", "time_s", "lr")}
        result = TrainResult(self.run_dir, epochs_run, self.history, kept, kept_epoch, stopped_early, status,
                             self.module, elapsed, samples * self.dist.world / elapsed if elapsed > 0 else 0.0,
                             self.dist.main)
        if self.dist.main:
            if write_weights:
                runs.save_weights(self.run_dir / runs.WEIGHTS, self.module.state_dict())
            if self.history:
                runs.write_metrics_csv(self.run_dir / "metrics.csv", self.history)
                runs.write_curves(self.run_dir / "curves.png", self.history, self.model.name)
            self._write_run_json(status, epochs_run, result)
        return result


def _loss_spec(kind: str):
    from ..train_config import LOSSES

    return LOSSES[kind]()


def init_from(module: nn.Module, run: str | Path) -> str:
    """Load the tensors of another run's weights that match by name and shape."""
    weights = runs.load_weights(run)
    own = module.state_dict()
    matched = {k: v for k, v in weights.items() if k in own and tuple(own[k].shape) == tuple(v.shape)}
    shape_differs = [k for k, v in weights.items() if k in own and tuple(own[k].shape) != tuple(v.shape)]
    if not matched:
        raise SpecError.at(None, f"--init-from {run}: none of its {len(weights)} tensors matches this model "
                                 "(by name and shape)", "fine-tune from a run of a spec with the same layer names")
    module.load_state_dict(matched, strict=False)
    missing = [k for k in own if k not in matched]
    report = f"init-from {run}: loaded {len(matched)} of {len(own)} tensors"
    if shape_differs:
        report += f"; shape differs: {', '.join(shape_differs[:5])}" + ("..." if len(shape_differs) > 5 else "")
    if missing:
        report += f"; kept fresh: {', '.join(missing[:5])}" + ("..." if len(missing) > 5 else "")
    return report


def _spec_relative_paths(model) -> TrainConfig:
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


def train(model, **overrides) -> TrainResult:
    """`Model.train(**overrides)`: TrainConfig keys (epochs, batch, lr, loss, ...) and run
    options (device, amp, out, resume, init_from, progress, stream, callbacks)."""
    config_overrides, options = split_overrides(overrides)
    config = resolve_config(_spec_relative_paths(model), config_overrides)
    return Trainer(model, config, options).run()
