"""Everything about an export that comes before ONNX: the run (read through the run
package), the module with its weights, the input normalization put in front of it, and
the names and shapes of the graph's inputs and outputs.

A chain has one input and one output; a graph spec has N named inputs and M named outputs.
Every later step works on the lists (`Prepared.inputs`, `Prepared.outputs`); the chain's
single-input fields (`input_name`, `dims`, ...) are its first input's and output's.
Inputs travel as `Inputs`: one array for a model of one input, else a tuple of arrays in
the spec's input order."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch import nn

from ..errors import SpecError
from ..run import Normalization, Preprocess, RunFolder, RunRecord
from .messages import dims_text
from .weights import load_weights

PROBABILITY_OUTPUTS = ("softmax", "sigmoid")

Inputs = np.ndarray | tuple  # one array per input: the array itself for a model of one input


class Exported(nn.Module):
    """The graph that goes into the ONNX file: the run's normalization in front of input
    `normalized` (the first, for a chain), then the model."""

    def __init__(self, model: nn.Module, mean: np.ndarray | None = None, std: np.ndarray | None = None,
                 normalized: int = 0):
        super().__init__()
        self.model, self.normalized_input = model, normalized
        self.normalize = mean is not None
        if mean is not None:
            self.register_buffer("mean", torch.from_numpy(np.ascontiguousarray(mean)))
            self.register_buffer("std", torch.from_numpy(np.ascontiguousarray(std)))

    def normalized(self, inputs: tuple) -> tuple:
        if not self.normalize:
            return inputs
        i = self.normalized_input
        return inputs[:i] + ((inputs[i] - self.mean) / self.std,) + inputs[i + 1:]

    # `x, *more`, not `*inputs`: the dynamo exporter needs a named first argument
    def forward(self, x: torch.Tensor, *more: torch.Tensor):
        return self.model(*self.normalized((x, *more)))

    def forward_logits(self, x: torch.Tensor, *more: torch.Tensor):
        """Each output before its final softmax/sigmoid (the output itself without one)."""
        return self.model.forward_logits(*self.normalized((x, *more)))


class LogitsGraph(nn.Module):
    """`Exported.forward_logits` as a module's forward, for torch.onnx."""

    def __init__(self, exported: Exported):
        super().__init__()
        self.exported = exported

    def forward(self, x: torch.Tensor, *more: torch.Tensor):
        return self.exported.forward_logits(x, *more)


@dataclass(frozen=True)
class InputSpec:
    """One input of the exported graph, named as in the spec."""

    name: str
    kind: str  # image, vector, sequence, tokens
    dims: tuple
    dtype: str  # "float" | "int"
    vocab: int | None


@dataclass(frozen=True)
class OutputSpec:
    """One output of the exported graph: `probabilities`/`output` for a chain, the spec's name for a graph."""

    name: str
    dims: tuple
    final: str | None  # softmax or sigmoid ending it, kept in the graph

    @property
    def is_classifier(self) -> bool:
        return self.final in PROBABILITY_OUTPUTS


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
    inputs: list[InputSpec] = field(default_factory=list)
    outputs: list[OutputSpec] = field(default_factory=list)
    is_graph: bool = False  # a graph spec: metadata and report list the inputs and outputs
    notes: list[str] = field(default_factory=list)

    @property
    def is_classifier(self) -> bool:
        """Some output ends in softmax/sigmoid (a chain's only output)."""
        return any(o.is_classifier for o in self.outputs)

    @property
    def input_names(self) -> list[str]:
        return [i.name for i in self.inputs]

    @property
    def output_names(self) -> list[str]:
        return [o.name for o in self.outputs]

    @property
    def has_int_input(self) -> bool:
        return any(i.dtype == "int" for i in self.inputs)


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
    labels = (preprocess.labels if preprocess is not None else None) or (list(ir.train.labels) if ir.train.labels
                                                                          else None)
    inputs = [InputSpec(spec.name, spec.kind, tuple(spec.type.dims), spec.type.dtype, spec.type.vocab)
              for spec in ir.inputs]
    if ir.is_chain:
        final = getattr(module, "final_activation", None)
        outputs = [OutputSpec("probabilities" if final in PROBABILITY_OUTPUTS else "output",
                              tuple(model.info.output.dims), final)]
    else:
        outputs = [OutputSpec(name, tuple(t.dims), module.final_activations.get(name))
                   for name, t in model.info.outputs.items()]
    # The run's normalization goes in front of the first float input (a graph's training
    # records one normalization, for a model of one input).
    floats = [i for i, spec in enumerate(inputs) if spec.dtype == "float"]
    normalized = floats[0] if floats and (ir.is_chain or len(inputs) == 1) else None
    normalization, note = (_normalization(model, inputs[normalized].kind, preprocess, trained=weights_file is not None)
                           if normalized is not None else (None, None))
    arrays = (normalization_arrays(normalization, inputs[normalized].dims) if normalization is not None
              else (None, None))
    first, out = inputs[0], outputs[0]
    return Prepared(
        wrapper=Exported(module, *arrays, normalized=normalized or 0).eval(), module=module, folder=folder,
        weights=weights_file, preprocess=preprocess, record=record, input_name=first.name, input_kind=first.kind,
        output_name=out.name, dims=first.dims, dtype=first.dtype, vocab=first.vocab, output_dims=out.dims,
        final=out.final, normalization=normalization, normalization_note=note, labels=labels, inputs=inputs,
        outputs=outputs, is_graph=not ir.is_chain)


def _normalization(model, kind: str, preprocess: Preprocess | None,
                   trained: bool) -> tuple[Normalization | None, str | None]:
    """The run's normalization; without a run, the spec's `scale(f)` (other kinds need a run's statistics)."""
    if kind == "tokens":
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


def sample_input(p: Prepared, batch: int, length: int | None, rng: np.random.Generator) -> Inputs:
    """Random raw inputs, one array per input: token ids in [0, vocab), or floats whose
    normalized values are about N(0, 1)."""
    arrays = []
    for i, spec in enumerate(p.inputs):
        shape = (batch,) + tuple(d if isinstance(d, int) else length for d in spec.dims)
        if spec.dtype == "int":
            arrays.append(rng.integers(0, max(spec.vocab or 2, 1), size=shape, dtype=np.int64))
            continue
        x = rng.standard_normal(shape).astype(np.float32)
        if p.wrapper.normalize and i == p.wrapper.normalized_input:
            x = x * p.wrapper.std.numpy() + p.wrapper.mean.numpy()
        arrays.append(x.astype(np.float32))
    return arrays[0] if len(arrays) == 1 else tuple(arrays)


def input_list(x: Inputs) -> list[np.ndarray]:
    """The arrays of `x`, one per input."""
    return list(x) if isinstance(x, tuple) else [x]


def rows(x: Inputs, start: int, stop: int | None = None) -> Inputs:
    """Samples start:stop of every input."""
    return tuple(a[start:stop] for a in x) if isinstance(x, tuple) else x[start:stop]


def n_samples(x: Inputs) -> int:
    return len(input_list(x)[0])


def dims_of(x: Inputs) -> str:
    """The shapes of `x`, for messages: `3x8`, or `3x8 and 3x4` for two inputs."""
    return " and ".join(dims_text(a.shape) for a in input_list(x))
