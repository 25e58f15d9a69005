"""Everything about an export that comes before ONNX: the run (read through the run
package), the module with its weights, the input normalization put in front of it, and
the names and shapes of the graph's input and output."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch import nn

from ..errors import SpecError
from ..run import Normalization, Preprocess, RunFolder, RunRecord
from .weights import load_weights

PROBABILITY_OUTPUTS = ("softmax", "sigmoid")


class Exported(nn.Module):
    """The graph that goes into the ONNX file: the run's normalization, then the model."""

    def __init__(self, model: nn.Module, mean: np.ndarray | None = None, std: np.ndarray | None = None):
        super().__init__()
        self.model = model
        self.normalize = mean is not None
        if mean is not None:
            self.register_buffer("mean", torch.from_numpy(np.ascontiguousarray(mean)))
            self.register_buffer("std", torch.from_numpy(np.ascontiguousarray(std)))

    def normalized(self, x: torch.Tensor) -> torch.Tensor:
        return (x - self.mean) / self.std if self.normalize else x

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(self.normalized(x))

    def forward_logits(self, x: torch.Tensor) -> torch.Tensor:
        """The output before a final softmax/sigmoid (the output itself without one)."""
        return self.model.forward_logits(self.normalized(x))


class LogitsGraph(nn.Module):
    """`Exported.forward_logits` as a module's forward, for torch.onnx."""

    def __init__(self, exported: Exported):
        super().__init__()
        self.exported = exported

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.exported.forward_logits(x)


@dataclass
class Prepared:
    """The module ready to export, and what the run folder said about it."""

    wrapper: Exported
    module: nn.Module
    folder: RunFolder | None
    weights: Path | None
    preprocess: Preprocess | None
    record: RunRecord | None
    input_name: str
    input_kind: str  # image, vector, sequence, tokens
    output_name: str
    dims: tuple
    dtype: str  # "float" | "int"
    vocab: int | None
    output_dims: tuple
    final: str | None  # the final softmax/sigmoid, kept in the graph
    normalization: Normalization | None
    normalization_note: str | None
    labels: list[str] | None
    notes: list[str] = field(default_factory=list)

    @property
    def is_classifier(self) -> bool:
        return self.final in PROBABILITY_OUTPUTS


def prepare(model, weights: str | Path | None = None, seed: int = 0) -> Prepared:
    """Build the module, load the run's weights, wrap it with the run's normalization."""
    ir = model.ir
    folder, weights_file, preprocess, record = None, None, None, None
    if weights is not None:
        folder, weights_file = RunFolder.of_weights(weights)
        if folder is not None:
            folder.check_one_run(weights_file)
            preprocess, record = folder.read_preprocess(), folder.read_record()
    module = model.build(seed=seed)
    if weights_file is not None:
        load_weights(module, weights_file, ir.source, folder.spec_source() if folder is not None else None)
    module.eval()
    dims = tuple(ir.input.type.dims)
    normalization, note = _normalization(model, preprocess, trained=weights_file is not None)
    arrays = normalization_arrays(normalization, dims) if normalization is not None else (None, None)
    final = getattr(module, "final_activation", None)
    labels = (preprocess.labels if preprocess is not None else None) or (list(ir.train.labels) if ir.train.labels
                                                                          else None)
    return Prepared(
        wrapper=Exported(module, *arrays).eval(), module=module, folder=folder, weights=weights_file,
        preprocess=preprocess, record=record, input_name=ir.input.name, input_kind=ir.input.kind,
        output_name="probabilities" if final in PROBABILITY_OUTPUTS else "output", dims=dims,
        dtype=ir.input.type.dtype, vocab=ir.input.type.vocab, output_dims=tuple(model.info.output.dims),
        final=final, normalization=normalization, normalization_note=note, labels=labels)


def _normalization(model, preprocess: Preprocess | None, trained: bool) -> tuple[Normalization | None, str | None]:
    """The run's normalization; without a run, the spec's `scale(f)` (other kinds need a run's statistics)."""
    if model.ir.input.kind == "tokens":
        return None, None
    if trained:
        return (preprocess.normalize if preprocess is not None else None), None
    spec_norm = model.ir.train.normalize
    kind = getattr(spec_norm, "kind", None)
    if kind == "scale":
        return Normalization(kind="scale", mean=[0.0], std=[1.0 / float(spec_norm.factor)]), None
    if kind not in (None, "none"):
        return None, (f"the spec normalizes inputs with `{kind}`, whose statistics come from training data: "
                      "export with --weights RUN to put it in the graph (this file takes already normalized inputs)")
    return None, None


def normalization_arrays(norm: Normalization, dims: tuple) -> tuple[np.ndarray, np.ndarray]:
    """(mean, std) shaped to broadcast over one sample: one value for all (no axis), or one
    per position along sample axis `axis` (channels of an image, features of a sequence)."""
    mean, std = np.asarray(norm.mean, np.float32), np.asarray(norm.std, np.float32)
    problem, shape = None, ()
    if mean.size != std.size or mean.size == 0:
        problem = f"{mean.size} mean value(s) but {std.size} std value(s)"
    elif not np.all(np.isfinite(mean)):
        problem = "the mean holds a non-finite value"
    elif norm.axis is None:
        problem = None if mean.size == 1 else f"{mean.size} values but no axis to lay them along"
    elif not 0 <= norm.axis < len(dims):
        problem = f"axis {norm.axis} is not an axis of the input"
    elif mean.size != 1 and dims[norm.axis] != mean.size:
        problem = f"{mean.size} values along axis {norm.axis}, whose size is {dims[norm.axis]}"
    else:
        shape = (mean.size,) + (1,) * (len(dims) - norm.axis - 1)
    if problem is not None:
        raise SpecError.at(None, f"preprocess.json: the normalization does not fit the input "
                                 f"{'x'.join(map(str, dims))}: {problem}", "was the run trained from this spec?")
    return mean.reshape(shape), std.reshape(shape)


def axis_names(dims: tuple) -> dict[int, str]:
    """Dynamic axes of a tensor with these sample dims: the batch, and every named or `?` length."""
    axes = {0: "batch"}
    for i, d in enumerate(dims):
        if isinstance(d, str):
            axes[i + 1] = "sequence" if d == "?" else d
    return axes


def sample_input(p: Prepared, batch: int, length: int | None, rng: np.random.Generator) -> np.ndarray:
    """Random raw inputs: token ids in [0, vocab), or floats whose normalized values are about N(0, 1)."""
    shape = (batch,) + tuple(d if isinstance(d, int) else length for d in p.dims)
    if p.dtype == "int":
        return rng.integers(0, max(p.vocab or 2, 1), size=shape, dtype=np.int64)
    x = rng.standard_normal(shape).astype(np.float32)
    if p.wrapper.normalize:
        x = x * p.wrapper.std.numpy() + p.wrapper.mean.numpy()
    return x.astype(np.float32)
