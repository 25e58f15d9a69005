"""Pass 1: the file's declarations. The model name, the inputs (each checked into an
`InputSpec`; several need distinct `name=`s), the block definitions, the `train { }`
section (checked into a `TrainConfig`), and the top-level lines (chains, named
chains, `output`), in the order written."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel

from .. import ast
from ..errors import Span, did_you_mean
from ..ir import InputSpec
from ..layers import REGISTRY
from ..shapes import TensorType
from .bodies import marker_owners
from .context import Context, substitute_all, substitute_or_report
from .pydantic_errors import validate
from .report import Report

if TYPE_CHECKING:  # pragma: no cover - imported where a spec has a train section
    from ..train_config import TrainConfig

INPUT_KINDS = ("image", "vector", "sequence", "tokens")
NAME_PATTERN = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
RESERVED_FOR_EVERY_LAYER = ("name", "frozen")
TOP_LEVEL = Context()  # outside every block: an expression computes with numbers only


class InputParams(BaseModel):
    model_config = {"extra": "forbid"}
    vocab: int | None = None
    name: str = "input"


@dataclass(frozen=True)
class Declarations:
    """A spec's top level sorted out: its name, inputs, blocks, train section and other lines."""

    model_name: str | None
    inputs: tuple[InputSpec, ...]  # those accepted
    input_span: Span | None  # where the first `input` is written, even when it was rejected
    blocks: dict[str, ast.BlockDef]
    train: TrainConfig | None  # None: no train section
    lines: tuple[ast.Chain | ast.Assignment | ast.OutputDecl, ...]  # the top level's, in order


def declare(spec: ast.SpecFile, report: Report) -> Declarations:
    model_name: str | None = None
    inputs: list[tuple[ast.InputDecl, InputSpec | None]] = []
    train = None
    blocks: dict[str, ast.BlockDef] = {}
    lines: list[ast.Chain | ast.Assignment | ast.OutputDecl] = []
    seen_model = seen_train = None
    for statement in spec.statements:
        if isinstance(statement, ast.ModelDecl):
            if seen_model:
                report.error(statement.span, "a second `model` line", f"the model is already named at line {seen_model.line}")
            seen_model, model_name = statement.span, statement.name
        elif isinstance(statement, ast.InputDecl):
            inputs.append((statement, _input(statement, report)))
        elif isinstance(statement, ast.BlockDef):
            _define_block(statement, blocks, report)
        elif isinstance(statement, ast.TrainSection):
            if seen_train:
                report.error(statement.span, "a second `train` section", "merge them into one")
            seen_train = statement.span
            train = _train(statement, report) or train
        else:
            lines.append(statement)
    if not inputs:
        report.error(Span(spec.path, 1, 1, 2), "the spec has no `input` line",
                     "declare the input first, e.g. `input image 1x28x28` or `input tokens 100 vocab=5000`")
    accepted = _named_inputs(inputs, report) if len(inputs) > 1 else tuple(spec for _, spec in inputs if spec)
    return Declarations(model_name, accepted, inputs[0][0].span if inputs else None, blocks, train, tuple(lines))


def _named_inputs(inputs: list[tuple[ast.InputDecl, InputSpec | None]], report: Report) -> tuple[InputSpec, ...]:
    """Several inputs are told apart by name: each needs its own `name=`. Those that have one."""
    first: dict[str, Span] = {}
    for decl, spec in inputs:
        if not any(option.key == "name" for option in decl.options):
            report.error(decl.span, "with several inputs, each needs a name",
                         f"add name=..., e.g. `input {decl.kind} ... name=left`")
        elif spec is not None and spec.name in first:
            report.error(decl.span, f"input name `{spec.name}` is used twice",
                         f"the first is at line {first[spec.name].line}; give each input its own name=")
        elif spec is not None:
            first[spec.name] = decl.span
    return tuple(spec for _, spec in inputs if spec is not None and first.get(spec.name) == spec.span)


def _input(decl: ast.InputDecl, report: Report) -> InputSpec | None:
    if decl.kind not in INPUT_KINDS:
        report.error(decl.span, f"unknown input kind `{decl.kind}`",
                     did_you_mean(decl.kind, INPUT_KINDS) or f"use one of: {', '.join(INPUT_KINDS)}")
        return None
    args = substitute_all(decl.args, TOP_LEVEL, report)
    options = substitute_all([o.value for o in decl.options], TOP_LEVEL, report)
    if args is None or options is None:
        return None
    dims: list[int | str] = []
    for arg in args:
        if isinstance(arg, ast.Dims):
            dims.extend(arg.items)
        elif isinstance(arg, ast.Number) and isinstance(arg.value, int) and arg.value > 0:
            dims.append(arg.value)
        elif isinstance(arg, ast.Unknown):
            dims.append("?")
        elif isinstance(arg, ast.Name):
            dims.append(arg.name)
        else:
            report.error(arg.span, "an input size must be a positive whole number, `?` or a name")
            return None
    if any(d == 0 for d in dims):
        report.error(decl.args[0].span, "an input size of 0", "every size must be at least 1")
        return None
    params = validate(InputParams, {o.key: ast.plain(v) for o, v in zip(decl.options, options)},
                      {o.key: o.span for o in decl.options}, decl.span, "input", report)
    if params is None:
        return None
    expected = {"image": "3 sizes, CxHxW (1x28x28 for grayscale)", "vector": "1 size",
                "sequence": "a length and feature sizes, TxF (?x16 for any length)", "tokens": "1 length (150 or ?)"}
    rank_ok = {"image": len(dims) == 3, "vector": len(dims) == 1, "sequence": len(dims) >= 2,
               "tokens": len(dims) == 1}[decl.kind]
    where = decl.args[0].span if decl.args else decl.span
    if not rank_ok:
        report.error(where, f"`input {decl.kind}` needs {expected[decl.kind]}, got {len(dims)}")
        return None
    if any(isinstance(d, str) for d in dims[1:]) or (isinstance(dims[0], str) and decl.kind not in ("sequence", "tokens")):
        report.error(where, "only the length of a sequence or tokens input may be unknown",
                     "write the sizes as numbers; `?` or a name is allowed for the first size of a sequence")
        return None
    if decl.kind == "tokens":
        if params.vocab is None:
            report.error(decl.span, "a tokens input needs its vocabulary size",
                         "add vocab=N, e.g. `input tokens 150 vocab=1000`")
            return None
        if params.vocab < 2:
            report.error(decl.span, f"vocab must be at least 2, got {params.vocab}")
            return None
        tensor = TensorType(tuple(dims), "int", params.vocab)
    else:
        if params.vocab is not None:
            report.error(decl.span, "vocab= applies only to a tokens input")
        tensor = TensorType(tuple(dims))
        if decl.kind == "image":
            _warn_channels_last(dims, where, report)
    if not NAME_PATTERN.match(params.name):
        report.error(decl.span, f"input name `{params.name}` is not a valid name", "use letters, digits and _")
    return InputSpec(decl.kind, tensor, decl.span, params.name)


CHANNELS_LAST_SIZES = (1, 3, 4)  # grayscale, RGB, RGBA


def _warn_channels_last(dims: list, where: Span, report: Report) -> None:
    """`input image 224x224x3` is valid (224 channels of 224x3 pixels) but is almost surely a
    channels-last image (Keras' and NumPy's habit): warn, since the shape errors it leads
    to further down are hard to trace back here."""
    c, h, w = dims
    if w in CHANNELS_LAST_SIZES and c >= 8 and h >= 8:
        report.warn(where, f"`input image {c}x{h}x{w}` reads as {c} channels of {h}x{w} pixels: images are "
                           "channels-first, CxHxW",
                    f"for a {c}x{h} image with {w} channel{'s' if w > 1 else ''} write `input image {w}x{c}x{h}`")


def _define_block(block: ast.BlockDef, blocks: dict[str, ast.BlockDef], report: Report) -> None:
    if block.name in blocks:
        first = blocks[block.name].span
        report.error(block.span, f"block `{block.name}` is defined twice", f"the first definition is at line {first.line}")
        return
    if REGISTRY.lookup(block.name) or block.name == "repeat" or block.name in marker_owners():
        report.error(block.span, f"block name `{block.name}` is already a layer word", "choose another name")
        return
    names = [p.name for p in block.params]
    for param in block.params:
        if names.count(param.name) > 1:
            report.error(param.span, f"parameter `{param.name}` appears twice in block `{block.name}`")
        if param.name in RESERVED_FOR_EVERY_LAYER:
            report.error(param.span, f"`{param.name}` is reserved for every layer and cannot be a block parameter")
    blocks[block.name] = block


def _train(section: ast.TrainSection, report: Report) -> TrainConfig | None:
    from ..train_config import PER_OUTPUT_KEYS, TrainConfig

    values: dict[str, Any] = {}
    spans: dict[str, Span] = {}
    for option in section.options:
        if option.key in values:
            report.error(option.span, f"`{option.key}` is set twice in the train section")
        value = substitute_or_report(option.value, TOP_LEVEL, report)
        if value is None:
            continue
        values[option.key] = ast.plain(value)
        spans[option.key] = option.value.span
    for key in list(spans):
        if key not in TrainConfig.model_fields and key.partition(".")[0] not in PER_OUTPUT_KEYS:
            report.error(next(o.span for o in section.options if o.key == key), f"unknown train option `{key}`",
                         did_you_mean(key, TrainConfig.model_fields) or
                         f"train options: {', '.join(TrainConfig.model_fields)}")
            values.pop(key)
    for key in [k for k in spans if k.partition(".")[0] in PER_OUTPUT_KEYS]:
        prefix, _, output = key.partition(".")  # validated as the field it gathers into: output_losses.digit
        spans[f"{PER_OUTPUT_KEYS[prefix]}.{output}"] = spans[key]
    return validate(TrainConfig, values, spans, section.span, "train", report)
