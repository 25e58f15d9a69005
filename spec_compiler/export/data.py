"""The run's data, found as `specc evaluate` finds it, for verification and int8 calibration.

First arrays saved in the run folder (`validation.npz`, `calibration.npz`: x and
optionally y); else the data run.json names, reloaded with training's loaders: its
validation file, or the same validation split (the recorded seed and fraction) of its
training data. Inputs come before normalization, which is inside the exported graph.

A graph spec's inputs are one array each (`Inputs`): saved arrays are named after the
inputs (`x` serves a model of one input), and its training data are reloaded from the
--data .npz run.json names, with the validation rows its training split off.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from ..errors import SpecError
from ..run import validation_split
from ..text import Tokenizer
from ..training import data as loaders
from ..training.multitask import load_task_data
from .messages import dims_text, first_line
from .prepare import Inputs, Prepared

VALIDATION_ARRAYS = "validation.npz"
CALIBRATION_ARRAYS = "calibration.npz"


@dataclass
class RunData:
    """The run's inputs as the exported graph takes them, and the validation labels."""

    x_train: Inputs | None
    x_val: Inputs | None
    y_val: np.ndarray | None  # class ids (or one-hot, or 0/1 for a single sigmoid); None when not a classifier
    source: str  # where the validation data come from
    train_source: str = ""


def run_data(p: Prepared, model) -> RunData | None:
    """None without a run folder, or when the run's data cannot be found any more (a note says why)."""
    if p.folder is None:
        return None
    saved = _saved_arrays(p)
    if saved is not None:
        return saved
    try:
        return _reload_graph(p, model) if p.is_graph else _reload(p, model)
    except SpecError as error:
        reason = error.first.message
    except Exception as error:  # noqa: BLE001 - a moved or changed data file must not stop the export
        reason = first_line(error)
    p.notes.append(f"the run's data could not be reloaded ({reason}); checked on random inputs only")
    return None


def _saved_arrays(p: Prepared) -> RunData | None:
    validation = _load_arrays(p, VALIDATION_ARRAYS)
    training = _load_arrays(p, CALIBRATION_ARRAYS)
    if validation is None and training is None:
        return None
    where = f"arrays saved in {p.folder.path}"
    return RunData(training[0] if training is not None else None, validation[0] if validation is not None else None,
                   validation[1] if validation is not None else None, where, where)


def _load_arrays(p: Prepared, name: str) -> tuple[Inputs, np.ndarray | None] | None:
    path = p.folder.path / name
    if not path.is_file():
        return None
    try:
        with np.load(path, allow_pickle=False) as archive:
            if p.is_graph:
                names = ["x" if len(p.inputs) == 1 and "x" in archive.files else i.name for i in p.inputs]
                missing = [n for n in names if n not in archive.files]
                if missing:
                    raise SpecError.at(None, f"{path} has no array {', '.join(missing)}",
                                       "save one array per input, named after it")
                xs = [np.asarray(archive[n]) for n in names]
            else:
                xs = [np.asarray(archive["x"] if "x" in archive.files else archive[archive.files[0]])]
            y = np.asarray(archive["y"]) if "y" in archive.files else None
    except (OSError, ValueError, KeyError, IndexError, EOFError) as error:
        raise SpecError.at(None, f"cannot read {path}: {first_line(error)}") from None
    for spec, x in zip(p.inputs, xs):
        want = tuple(spec.dims)
        if x.ndim != len(want) + 1 or any(isinstance(d, int) and d != s for d, s in zip(want, x.shape[1:])):
            named = f" (`{spec.name}`)" if p.is_graph else ""
            raise SpecError.at(None, f"{path} holds inputs{named} of shape {dims_text(x.shape[1:])} per sample; "
                                     f"the model takes {dims_text(want)}")
    xs = [x.astype(np.int64 if spec.dtype == "int" else np.float32) for spec, x in zip(p.inputs, xs)]
    return (xs[0] if len(xs) == 1 else tuple(xs)), y


def _reload_graph(p: Prepared, model) -> RunData | None:
    """A graph's training data (--data FILE.npz), split as its training split them."""
    record = p.record
    if record is None:
        return None
    info = record.data
    seed = record.config.get("seed")
    if info.validation_split > 0 and not isinstance(seed, int):
        raise SpecError.at(None, "run.json records no seed, so its validation split cannot be rebuilt")
    xs, targets = load_task_data(info.train, model)
    train_idx, val_idx = validation_split(len(xs[0]), info.validation_split, seed)

    def take(idx: np.ndarray) -> Inputs:
        return xs[0][idx] if len(xs) == 1 else tuple(x[idx] for x in xs)

    where = f"{info.train} (the run's {info.validation_split:g} validation split)"
    if not len(val_idx):
        return RunData(take(train_idx), None, None, info.train, info.train)
    first = p.outputs[0]
    y_val = targets[first.name][val_idx] if first.is_classifier and len(first.dims) == 1 else None
    return RunData(take(train_idx), take(val_idx), y_val, where, info.train)


def _reload(p: Prepared, model) -> RunData | None:
    record = p.record
    if record is None:
        return None
    info = record.data
    target = loaders.Target.of(model, p.module)
    tokenizer = Tokenizer.from_json(p.preprocess.text.model_dump()) if p.preprocess and p.preprocess.text else None
    raw = loaders.load_raw(info.train, target)
    if info.validation:
        train_raw, val_raw = raw, loaders.load_raw(info.validation, target)
        where = val_raw.source
    else:
        seed = record.config.get("seed")
        if info.validation_split > 0 and not isinstance(seed, int):
            raise SpecError.at(None, "run.json records no seed, so its validation split cannot be rebuilt")
        split = validation_split if record.run_id is not None else legacy_validation_split
        train_idx, val_idx = split(len(raw), info.validation_split, seed)
        train_raw, val_raw = raw.take(train_idx), (raw.take(val_idx) if len(val_idx) else None)
        where = f"{raw.source} (the run's {info.validation_split:g} validation split)"
    x_train, _ = loaders.adapt_inputs(train_raw, target, tokenizer)
    if val_raw is None:
        return RunData(x_train.numpy(), None, None, raw.source, raw.source)
    x_val, _ = loaders.adapt_inputs(val_raw, target, tokenizer)
    y_val = None
    if p.is_classifier and len(p.output_dims) == 1:  # one class per sample (not per pixel or step)
        loss = (record.config.get("loss") or {}).get("kind")
        named = val_raw.y.dtype == object or val_raw.y.dtype.kind in "US"
        names = p.preprocess.labels if p.preprocess is not None and named else None
        y_val = loaders.adapt_labels(val_raw, target, loss, names)[0].numpy()
    return RunData(x_train.numpy(), x_val.numpy(), y_val, where, train_raw.source)


def legacy_validation_split(n: int, fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """The split of runs written before run ids (specc 0.1.0 drew it with torch.randperm), so
    that their validation data are still the samples they were validated on."""
    if fraction <= 0:
        return np.arange(n), np.arange(0)
    order = torch.randperm(n, generator=torch.Generator().manual_seed(seed)).numpy()
    n_val = max(1, round(n * fraction))
    if n_val >= n:
        raise SpecError.at(None, f"validation_split={fraction:g} leaves no training samples out of {n}")
    return np.sort(order[n_val:]), np.sort(order[:n_val])


def digits_images(channels: int, height: int, width: int, limit: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """The bundled digits adapted to a CxHxW image input exactly as `specc train` adapts them
    (training's own loader): (images, labels)."""
    target = loaders.Target(input_kind="image", input_dims=(channels, height, width), input_dtype="float",
                            vocab=None, output_dims=(10,), final_activation="softmax")
    raw = loaders.load_raw(None, target)
    if limit is not None:
        raw = raw.take(np.arange(min(limit, len(raw))))
    x, _ = loaders.adapt_inputs(raw, target)
    return x.numpy(), np.asarray(raw.y, dtype=np.int64)
