"""The samples a run trains on: a sample is (x, y), x as the spec's input and y its target
(a class id, a vector, a mask, a sequence of ids: whatever one sample's labels hold), or
y None when the data hold inputs only and x is the target (the loop then takes x). Data on
disk with inputs only (reconstruction) give x before normalization as y when there is a
normalization, as in memory the task's targets are the inputs before it.

Two kinds, one interface, `read(rows) -> (x, y)` for a batch of sample numbers:

- TensorSamples: data small enough for memory (data.IN_MEMORY_BYTES), adapted once and held
  as tensors, on the training device when it is a GPU; a batch is `index_select`: no
  per-sample Python, no copies of the data set (the validation split is rows of the same
  tensors);
- FileSamples: data on disk (dataset_files.py, dataset_csv.py), each batch read by rows and
  adapted as it is read, with the checks of data.py on that batch (a NaN in sample 51,234 is
  reported when that sample is read). Its labels are held in memory when they fit there.

`stream_chunks` walks samples in bounded chunks: the streaming pass that finds normalization
statistics without holding the data (data.fit_tokenizer does the same for a vocabulary).
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import torch

from ..errors import SpecError
from ..run.records import Normalization
from ..text import Tokenizer
from .data import adapt_inputs, adapt_labels, apply_normalization
from .dataset_files import Column
from .readers import Raw, data_error
from .target import Target

CHUNK_BYTES = 8 * 2**20  # what one chunk of a streaming pass holds at most (as float32)


class TensorSamples:
    """Samples held as tensors (x adapted and normalized; y None: inputs only)."""

    def __init__(self, x: torch.Tensor, y: torch.Tensor | None):
        self.x, self.y = x, y

    def __len__(self) -> int:
        return len(self.x)

    @property
    def device(self) -> torch.device:
        return self.x.device

    def to(self, device: torch.device) -> TensorSamples:
        return TensorSamples(self.x.to(device), self.y.to(device) if self.y is not None else None)

    def read(self, rows: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        rows = torch.as_tensor(rows, device=self.x.device)
        return self.x.index_select(0, rows), (self.y.index_select(0, rows) if self.y is not None else None)

    def normalized(self, normalization: Normalization | None) -> TensorSamples:
        return TensorSamples(apply_normalization(self.x, normalization), self.y)


class FileSamples:
    """Samples read from disk by rows, adapted to the spec batch by batch. `labels`: y adapted
    whole (a tensor), or None to adapt each batch's (or when the data hold inputs only)."""

    device = torch.device("cpu")

    def __init__(self, raw: Raw, target: Target, tokenizer: Tokenizer | None, labels: torch.Tensor | None,
                 loss_kind: str | None, names: list[str] | None, normalization: Normalization | None = None):
        self.raw, self.target, self.tokenizer, self.labels = raw, target, tokenizer, labels
        self.loss_kind, self.names, self.normalization = loss_kind, names, normalization

    def __len__(self) -> int:
        return len(self.raw)

    def normalized(self, normalization: Normalization | None) -> FileSamples:
        return FileSamples(self.raw, self.target, self.tokenizer, self.labels, self.loss_kind, self.names,
                           normalization)

    def read(self, rows) -> tuple[torch.Tensor, torch.Tensor | None]:
        index = np.asarray(rows.cpu() if isinstance(rows, torch.Tensor) else rows, dtype=np.int64).reshape(-1)
        raw = self.raw
        x, _ = adapt_inputs(Raw(rows_of(raw.x, index), None, raw.source, raw.kind), self.target, self.tokenizer,
                            rows=index)
        if raw.y is None and self.labels is None:  # inputs only: the target is the input as adapted
            return apply_normalization(x, self.normalization), (x if self.normalization is not None else None)
        x = apply_normalization(x, self.normalization)
        if self.labels is not None:
            return x, self.labels.index_select(0, torch.from_numpy(index))
        y, _ = adapt_labels(Raw(None, rows_of(raw.y, index), raw.source, raw.kind, raw.labels), self.target,
                            self.loss_kind, self.names)
        return x, y


Samples = TensorSamples | FileSamples


def rows_of(values, index: np.ndarray):
    """Those rows of an array, a Column or a list of texts."""
    if isinstance(values, Column):
        return values.read(index)
    if isinstance(values, list):
        return [values[i] for i in index]
    return values[index]


def stream_chunks(samples: Samples, rows: np.ndarray, sample_bytes: int) -> Iterator[torch.Tensor]:
    """The inputs of `rows` (in file order), a chunk of at most CHUNK_BYTES at a time."""
    step = max(1, CHUNK_BYTES // max(1, sample_bytes))
    ordered = np.sort(np.asarray(rows, dtype=np.int64))
    for start in range(0, len(ordered), step):
        yield samples.read(torch.from_numpy(ordered[start:start + step]))[0]


def check_on_disk(raw: Raw, target: Target) -> None:
    """What can be checked before reading data on disk: the count of labels, and the first
    sample against the spec's input (the rest is checked batch by batch as it is read)."""
    if len(raw) == 0:
        raise data_error(raw.source, "no samples")
    if raw.y is not None and len(raw.y) != len(raw):
        raise data_error(raw.source, f"{len(raw)} inputs but {len(raw.y)} labels")
    if raw.kind != "text":
        adapt_inputs(Raw(rows_of(raw.x, np.arange(1)), None, raw.source, raw.kind), target, rows=np.arange(1))


def label_probe(raw: Raw, limit: int = 1024):
    """Labels that decide the loss: all of them in memory, else the first `limit` of them."""
    if raw.y is None or not isinstance(raw.y, Column):
        return raw.y
    return raw.y.read(np.arange(min(limit, len(raw.y))))


def file_samples(raw: Raw, target: Target, tokenizer: Tokenizer | None, loss_kind: str | None,
                 names: list[str] | None) -> tuple[FileSamples, list[str] | None, bool]:
    """Samples on disk, their class names, and whether their targets are class ids."""
    labels, class_names = None, names or raw.labels
    if raw.y is not None and not isinstance(raw.y, Column):
        labels, class_names = adapt_labels(raw, target, loss_kind, names)
    samples = FileSamples(raw, target, tokenizer, labels, loss_kind, names)
    _, y = samples.read(np.arange(1))
    return samples, class_names, y is not None and not y.is_floating_point()


def check_targets(y_is_float: bool, loss_kind: str | None, source: str) -> None:
    if loss_kind in ("sparse_categorical_crossentropy", "dice") and y_is_float:
        raise data_error(source, f"{loss_kind} takes class ids as labels; these are one-hot "
                                 "or probabilities", "use loss=categorical_crossentropy")


def check_label_names(names: list[str] | None, target: Target) -> None:
    if names and target.units and target.final_activation == "softmax" and len(names) != target.units:
        raise SpecError.at(None, f"labels= names {len(names)} classes but the output has {target.units} units")
