"""Training tasks: what the model's output means, and so its targets, its loss and its metrics.

The task is inferred from the spec's output and the data, or set with `train { task=... }`:

| task | the data | the output | default loss | default metrics |
| --- | --- | --- | --- | --- |
| classification | a class id (or one-hot row) per sample | softmax or sigmoid | cross-entropy | accuracy |
| regression | any values per sample | anything else | mse | none |
| segmentation | x (N,C,H,W), y (N,H,W) class ids | KxHxW, `softmax 0` | cross-entropy per pixel | pixel_accuracy, mean_iou |
| reconstruction | x only | shaped like the input | mse | mse |
| sequence_labelling | y (N,T) class ids, `pad` ignored | TxK softmax | cross-entropy per step | accuracy |
| language_model | a .txt corpus | TxV softmax | cross-entropy per step | perplexity, accuracy |
| multilabel | y (N,K) of 0/1 | K sigmoid | binary cross-entropy | precision, recall, f1, macro_f1 |

Inference, in this order: a text corpus is a language model; inputs without labels a
reconstruction; a KxHxW softmax output with HxW masks a segmentation; a TxK softmax
output with (N,T) labels a sequence labelling; a sigmoid output of several units with
(N,K) labels a multi-label task; else a softmax or sigmoid output is a classification,
anything else a regression. Multi-task training (one loss per output of a graph spec) is
multitask.py's.

Each task's schema (checked by `specc compile`) has its rules beside it, as methods:
`check` refuses a spec and data that do not fit the task, with a hint; `prepare` makes
the targets (a reconstruction's are its inputs); `label_view` is the output as the label
checks see it, classes last; `head` and `metric_task` say where the classes are and which
label id is padding.
"""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING, Annotated, ClassVar

from pydantic import BeforeValidator, Field

from ..errors import SpecError
from ..options import choice
from ..shapes import format_dims
from .options import by_kind
from .options.losses import BinaryCrossentropy, Head, Mse, SparseCategoricalCrossentropy, default_loss
from .options.metrics import (
    F1,
    Accuracy,
    MacroF1,
    MeanIou,
    MeanSquaredError,
    PerplexityMetric,
    PixelAccuracy,
    Precision,
    Recall,
)
from .options.metrics import Task as MetricTask
from .target import Target

if TYPE_CHECKING:  # readers imports NumPy, which `specc compile` (train_config) must not load
    from .readers import Raw

GEOMETRIC_AUGMENTATIONS = ("flip", "rotate", "translate")


def _dims(dims) -> str:
    return format_dims(tuple(dims))


def _spec_error(message: str, hint: str | None = None) -> SpecError:
    return SpecError.at(None, message, hint)


class TaskRules:
    """What every task answers; the defaults serve classification and regression."""

    spatial_targets: ClassVar[bool] = False  # targets aligned with the input's pixels: no geometric augmentation
    class_dim: ClassVar[int] = -1  # the dim of the outputs holding the classes, counted from the end
    rewrites_targets: ClassVar[bool] = False  # prepare() makes the targets from the inputs

    def check(self, target: Target, raw: Raw) -> None:
        """Refuse a spec or data this task cannot train (SpecError with a hint)."""
        if raw.y is None:
            raise _no_labels(raw, target)

    def prepare(self, raw: Raw, inputs) -> Raw:
        """The data with this task's targets; `inputs` are x as the spec takes it (a tensor, or
        None for text not yet tokenized)."""
        return raw

    def label_view(self, target: Target) -> Target:
        """The output as the label checks (data.adapt_labels) see it: classes on the last axis."""
        return target

    def default_loss(self, target: Target, labels):
        return default_loss(target, labels)

    def default_metrics(self, target: Target) -> list:
        return [Accuracy()] if target.is_classifier else []

    @property
    def ignore(self) -> int | None:
        return None

    def head(self, loss, final_activation: str | None, target: Target) -> Head:
        return Head.of(loss, final_activation, self.class_dim, self.ignore)

    def metric_task(self, loss_kind: str, class_ids: bool, target: Target) -> MetricTask:
        return MetricTask(loss_kind, class_ids, self.label_view(target).units, self.class_dim, self.ignore)


def _no_labels(raw: Raw, target: Target) -> SpecError:
    from .readers import data_error

    return data_error(raw.source, "holds inputs only (no labels)",
                      "save the labels beside them (y in the .npz, or y.npy beside x.npy); inputs alone train a "
                      f"reconstruction, whose output has the input's shape {_dims(target.input_dims)} "
                      f"(this one's is {_dims(target.output_dims)})")


def _labels_per_sample(raw: Raw) -> tuple:
    return tuple(raw.y.shape[1:]) if hasattr(raw.y, "shape") else ()


class Classification(choice("classification"), TaskRules):
    """A class per sample: a softmax (or sigmoid) output."""

    def check(self, target: Target, raw: Raw) -> None:
        super().check(target, raw)
        if not target.is_classifier:
            raise _spec_error(f"task=classification needs a softmax or sigmoid output; this one ends in "
                              f"{target.final_activation or 'no activation'}",
                              "end the model with `dense K softmax` (or `sigmoid` for two classes)")


class Regression(choice("regression"), TaskRules):
    """Any values per sample, learnt with mse by default."""


class Segmentation(choice("segmentation"), TaskRules):
    """A class per pixel: x (N,C,H,W), y (N,H,W) class ids; the output KxHxW with a softmax over K."""

    spatial_targets: ClassVar[bool] = True
    class_dim: ClassVar[int] = -3

    def check(self, target: Target, raw: Raw) -> None:
        from .readers import data_error

        super().check(target, raw)
        out = target.output_dims
        if len(out) != 3 or target.final_activation != "softmax":
            raise _spec_error(f"segmentation needs a KxHxW output with a softmax over the K classes; this one is "
                              f"{_dims(out)}" + (f" {target.final_activation}" if target.final_activation else ""),
                              "end the model with `conv K 1x1 -> softmax 0`")
        if target.softmax_axis != -3:
            raise _spec_error(f"segmentation takes the softmax over the classes (axis 0 of {_dims(out)}); this "
                              f"one runs along axis {target.softmax_axis + 3}",
                              "end the model with `conv K 1x1 -> softmax 0`")
        masks = _labels_per_sample(raw)
        if masks != tuple(out[1:]):
            raise data_error(raw.source, f"the masks are {_dims(masks) if masks else 'one value'} per sample, but the "
                                         f"output {_dims(out)} needs {_dims(out[1:])} masks of class ids",
                             "segmentation labels are y (N,H,W) class ids, the output's height and width")

    def label_view(self, target: Target) -> Target:
        k, height, width = target.output_dims
        return replace(target, output_dims=(height, width, k), softmax_axis=-1)

    def default_loss(self, target: Target, labels):
        return SparseCategoricalCrossentropy()

    def default_metrics(self, target: Target) -> list:
        return [PixelAccuracy(), MeanIou()]


class Reconstruction(choice("reconstruction"), TaskRules):
    """The input is the target: an autoencoder's output has the input's shape."""

    spatial_targets: ClassVar[bool] = True
    rewrites_targets: ClassVar[bool] = True

    def check(self, target: Target, raw: Raw) -> None:
        if target.input_dtype != "float":
            raise _spec_error(f"reconstruction learns float inputs; this spec's input is {target.input_text}")
        if tuple(target.output_dims) != tuple(target.input_dims):
            raise _spec_error(f"reconstruction needs an output shaped like the input ({_dims(target.input_dims)}); "
                              f"this one is {_dims(target.output_dims)}",
                              f"end the model with layers that give {_dims(target.input_dims)} "
                              f"(`dense` to the element count, then `reshape {_dims(target.input_dims)}`)")

    def prepare(self, raw: Raw, inputs) -> Raw:
        """The targets are the inputs as the spec takes them (resized digits, say), sharing their
        memory; labels, if the data have any, are left out."""
        return replace(raw, y=inputs.numpy(), labels=None)

    def default_loss(self, target: Target, labels):
        return Mse()

    def default_metrics(self, target: Target) -> list:
        return [MeanSquaredError()]


PadId = Annotated[Annotated[int, Field(ge=0)] | None, BeforeValidator(lambda v: None if v == "none" else v)]


class SequenceLabelling(choice("sequence_labelling", ("pad",), pad=(PadId, 0)), TaskRules):
    """A class per step: y (N,T) class ids, a TxK softmax output; the label `pad` (default 0,
    as the tokenizer's padding id; `pad=none`: no padding) counts in neither loss nor metrics."""

    def check(self, target: Target, raw: Raw) -> None:
        from .readers import data_error

        if raw.y is None:
            raise _no_labels(raw, target)
        _per_step_softmax(target, "sequence_labelling")
        labels = _labels_per_sample(raw)
        steps = target.output_dims[0]
        if len(labels) != 1 or (isinstance(steps, int) and labels[0] != steps):
            raise data_error(raw.source, f"the labels are {_dims(labels) if labels else 'one value'} per sample, but "
                                         f"the output {_dims(target.output_dims)} needs {steps} class ids",
                             "sequence labels are y (N,T): one class id per step")
        if self.pad is not None and target.units is not None and self.pad >= target.units:
            raise _spec_error(f"pad={self.pad} is not one of the output's {target.units} classes")

    def default_loss(self, target: Target, labels):
        return SparseCategoricalCrossentropy()

    def default_metrics(self, target: Target) -> list:
        return [Accuracy()]

    @property
    def ignore(self) -> int | None:
        return self.pad


class LanguageModel(choice("language_model"), TaskRules):
    """The next token at each step: a causal model over `--data corpus.txt` (or (N,T) ids x with
    their next tokens y), its output TxV softmax over the vocabulary."""

    def check(self, target: Target, raw: Raw) -> None:
        if target.input_dtype != "int":
            raise _spec_error(f"a language model reads token ids; this spec's input is {target.input_text}",
                              "use `input tokens T vocab=V`, then `embedding`")
        _per_step_softmax(target, "language_model")
        steps, units = target.output_dims
        if steps != target.input_dims[0]:
            raise _spec_error(f"a language model gives a next-token distribution per input step: the output has "
                              f"{steps} steps, the input {target.input_dims[0]}",
                              "keep every step: return_sequences=true on the recurrent layers, no pooling")
        if target.vocab is not None and isinstance(units, int) and units > target.vocab:
            raise _spec_error(f"the output's {units} tokens are more than the input's vocab={target.vocab}: "
                              "generated tokens are fed back as inputs", f"make the last layer `dense {target.vocab}`")
        if raw.y is None:
            raise _no_labels(raw, target)

    def default_loss(self, target: Target, labels):
        return SparseCategoricalCrossentropy()

    def default_metrics(self, target: Target) -> list:
        return [PerplexityMetric(), Accuracy()]


class Multilabel(choice("multilabel"), TaskRules):
    """Any number of K classes per sample: y (N,K) of 0/1, a K sigmoid output."""

    def check(self, target: Target, raw: Raw) -> None:
        from .readers import data_error

        if raw.y is None:
            raise _no_labels(raw, target)
        out = target.output_dims
        if len(out) != 1 or target.final_activation != "sigmoid":
            raise _spec_error(f"multilabel needs a sigmoid output of K units; this one is {_dims(out)}"
                              + (f" {target.final_activation}" if target.final_activation else ""),
                              "end the model with `dense K sigmoid`")
        if _labels_per_sample(raw) != tuple(out):
            raise data_error(raw.source, f"the labels are {_dims(_labels_per_sample(raw)) or 'one value'} per sample, "
                                         f"but the output needs {out[0]} values of 0 or 1",
                             "multi-label targets are y (N,K) of 0/1")

    def default_loss(self, target: Target, labels):
        return BinaryCrossentropy()

    def default_metrics(self, target: Target) -> list:
        return [Precision(), Recall(), F1(), MacroF1()]


def _per_step_softmax(target: Target, task: str) -> None:
    out = target.output_dims
    if len(out) != 2 or target.final_activation != "softmax" or target.softmax_axis != -1:
        raise _spec_error(f"{task} needs a TxK output with a softmax over K at every step; this one is {_dims(out)}"
                          + (f" {target.final_activation}" if target.final_activation else ""),
                          "keep the steps (return_sequences=true) and end with `dense K softmax`")


TASKS = by_kind(Classification, Regression, Segmentation, Reconstruction, SequenceLabelling, LanguageModel,
                Multilabel)
TASK_ALIASES = {"autoencoder": "reconstruction", "tagging": "sequence_labelling", "lm": "language_model",
                "multi_label": "multilabel"}


def infer_task(target: Target, raw: Raw) -> TaskRules:
    """The task the spec's output and the data imply (the order of the module's docstring)."""
    if raw.kind == "corpus":
        return LanguageModel()
    if raw.y is None:
        if tuple(target.output_dims) != tuple(target.input_dims):
            raise _no_labels(raw, target)
        return Reconstruction()
    labels, out, final = _labels_per_sample(raw), tuple(target.output_dims), target.final_activation
    if final == "softmax" and len(out) == 3 and len(labels) == 2:
        return Segmentation()
    if final == "softmax" and len(out) == 2 and len(labels) == 1:
        return SequenceLabelling()
    if final == "sigmoid" and len(out) == 1 and isinstance(out[0], int) and out[0] > 1 and len(labels) == 1:
        return Multilabel()
    return Classification() if target.is_classifier else Regression()


def resolve_task(chosen: TaskRules | None, target: Target, raw: Raw, augment: list) -> TaskRules:
    """The train section's task, else the inferred one, checked against the spec and the data."""
    task = chosen if chosen is not None else infer_task(target, raw)
    task.check(target, raw)
    geometric = [a.kind for a in augment if a.kind in GEOMETRIC_AUGMENTATIONS]
    if task.spatial_targets and geometric:
        raise _spec_error(f"augment={geometric[0]} moves the input's pixels but not the {task.kind} targets",
                          "augment a task with pixel targets only with noise(std)")
    return task
