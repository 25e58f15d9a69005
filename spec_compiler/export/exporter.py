"""torch.onnx, tamed: the TorchScript exporter first, the dynamo exporter as the fallback,
their noise silenced, and a failure traced to the spec layer the exporter cannot handle.

Which exporter writes which opset (measured with torch 2.13, onnxruntime 1.32): the
TorchScript exporter writes opsets up to 20 itself; above that specc exports at 20 and
raises the graph to the asked opset with the version converter the dynamo exporter uses
(onnxscript's, with onnx's as its fallback). The dynamo exporter writes opset 18 and
converts from there, so it serves opsets 18 and up; it is much slower on recurrent
layers (about 30 s for specs/spam_lstm.spec, against under a second). Both return an
onnx_ir model whose weights may lie in files of the export's scratch folder (a model
over protobuf's 2 GB cannot be one message)."""

from __future__ import annotations

import contextlib
import io
import logging
import os
import sys
import tempfile
import time
import warnings
from collections.abc import Iterator
from functools import cache
from pathlib import Path

import numpy as np
import onnx_ir as ir
import torch
from torch import nn

from ..errors import Diagnostic, SpecError
from ..length_range import sample_lengths
from .locate import layer_index
from .messages import first_line
from .prepare import Prepared, axis_names, input_list, sample_input

DEFAULT_OPSET = 17
MIN_OPSET = 13
TORCHSCRIPT_MAX_OPSET = 20  # torch.onnx's TorchScript exporter
DYNAMO_MIN_OPSET = 18  # torch.onnx's dynamo exporter
EXPORT_BATCH = 2
EXAMPLE_LENGTH = 7  # of a run-time length, when the model takes it (length_range.py)


@cache
def max_opset() -> int:
    """The newest opset that both onnx (its version converter) and the installed ONNX Runtime
    know: ONNX Runtime refuses to load a model stamped with a newer one."""
    import onnx
    import onnxruntime as ort
    from onnx import TensorProto, helper

    graph = helper.make_graph([helper.make_node("Relu", ["x"], ["y"])], "probe",
                              [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1])])
    options = ort.SessionOptions()
    options.log_severity_level = 4
    for opset in range(onnx.defs.onnx_opset_version(), TORCHSCRIPT_MAX_OPSET, -1):
        imports = [helper.make_opsetid("", opset)]
        probe = helper.make_model(graph, opset_imports=imports, ir_version=helper.find_min_ir_version_for(imports))
        try:
            ort.InferenceSession(probe.SerializeToString(), options, providers=["CPUExecutionProvider"])
            return opset
        except Exception:  # noqa: BLE001 - onnxruntime refuses an opset it does not know with its own kinds
            continue
    return TORCHSCRIPT_MAX_OPSET


@contextlib.contextmanager
def quiet() -> Iterator[None]:
    """Silence the exporters' and quantizer's warnings, log lines and C++ prints
    ("Torch IR graph at exception"): the user sees specc's own message instead."""
    loggers = [logging.getLogger(name) for name in ("torch.onnx", "torch._dynamo", "torch.export", "onnxscript",
                                                    "root")]
    levels = [logger.level for logger in loggers]
    with warnings.catch_warnings(), tempfile.TemporaryFile() as sink:
        warnings.simplefilter("ignore")
        for logger in loggers:
            logger.setLevel(logging.ERROR)
        saved = []
        try:
            for stream in (sys.stdout, sys.stderr):
                with contextlib.suppress(AttributeError, OSError, ValueError):
                    stream.flush()
            for fd in (1, 2):
                with contextlib.suppress(OSError):
                    saved.append((fd, os.dup(fd)))
                    os.dup2(sink.fileno(), fd)
            with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
                yield
        finally:
            for fd, copy in saved:
                os.dup2(copy, fd)
                os.close(copy)
            for logger, level in zip(loggers, levels):
                logger.setLevel(level)


def exporters(opset: int, explicit: bool) -> tuple[str, ...]:
    """Which exporters to try, in order: SPECC_ONNX_EXPORTER=torchscript|dynamo|auto (default auto:
    TorchScript, the fast one, then the dynamo exporter when TorchScript fails). Both write
    every opset from 18 on, and only TorchScript the ones below; an opset the user asked for
    is never changed (without --opset, the dynamo fallback writes opset 18)."""
    choice = os.environ.get("SPECC_ONNX_EXPORTER", "auto").strip().lower()
    wanted = {"torchscript": ("torchscript",), "dynamo": ("dynamo",)}.get(choice, ("torchscript", "dynamo"))
    usable = {"torchscript": True, "dynamo": opset >= DYNAMO_MIN_OPSET or not explicit}
    return tuple(name for name in wanted if usable[name])


def torchscript_export(module: nn.Module, examples: tuple[torch.Tensor, ...], input_names: list[str],
                       output_names: list[str], dynamic_axes: dict | None, opset: int,
                       scratch: Path | None = None) -> ir.Model:
    """TorchScript's export at min(opset, 20), converted up to `opset` above that. The file
    goes to `scratch` (a temporary folder when None), where torch puts the weights of a
    model over 2 GB as files of their own; onnx_ir reads them from there when needed."""
    with contextlib.ExitStack() as stack:
        folder = scratch or Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="specc-onnx-")))
        path = Path(tempfile.mkdtemp(prefix="torchscript-", dir=folder)) / "model.onnx"
        with quiet(), torch.no_grad():
            torch.onnx.export(module, examples, str(path), input_names=input_names, output_names=output_names,
                              dynamic_axes=dynamic_axes, opset_version=min(opset, TORCHSCRIPT_MAX_OPSET),
                              do_constant_folding=True, dynamo=False)
        graph = ir.load(path)
        if scratch is None:  # the folder goes away: read the weights now
            ir.external_data.load_to_model(graph)
    if opset > TORCHSCRIPT_MAX_OPSET:
        convert_opset(graph, opset)
    return graph


def convert_opset(graph: ir.Model, opset: int) -> None:
    """Raise the graph to `opset` with the dynamo exporter's version converter (onnxscript's,
    falling back to onnx's); the IR version rises with it where the opset needs a newer one."""
    from onnx import helper
    from onnxscript import version_converter

    with quiet():
        version_converter.convert_version(graph, opset, fallback=True)
    reached = graph.opset_imports.get("", graph.opset_imports.get("ai.onnx"))
    if reached != opset:
        raise RuntimeError(f"onnx's version converter cannot raise this graph from opset {reached} to {opset}")
    graph.ir_version = max(graph.ir_version, helper.find_min_ir_version_for([helper.make_opsetid("", opset)]))


def dynamo_export(module: nn.Module, examples: tuple[torch.Tensor, ...], input_names: list[str],
                  output_names: list[str], dynamic_axes: dict | None, opset: int) -> ir.Model:
    """The dynamo exporter's model; its weights stay the module's tensors until written. The
    exported module's forward is `(x, *more)`: the dynamic axes of a second and later input
    are given as torch.export's shapes of that structure, which torch.onnx cannot derive
    from `dynamic_axes` for varargs."""
    axes: dict = {"dynamic_axes": dynamic_axes}
    if len(examples) > 1 and dynamic_axes is not None:
        named = {d: torch.export.Dim(d) for name in input_names for d in dynamic_axes.get(name, {}).values()}
        shapes = [{axis: named[d] for axis, d in dynamic_axes.get(name, {}).items()} for name in input_names]
        axes = {"dynamic_shapes": (shapes[0], tuple(shapes[1:]))}
    with quiet(), torch.no_grad():
        program = torch.onnx.export(module, examples, None, input_names=input_names, output_names=output_names,
                                    opset_version=max(opset, DYNAMO_MIN_OPSET), dynamo=True, verbose=False,
                                    report=False, **axes)
    return program.model


def to_onnx(p: Prepared, model, opset: int, explicit: bool, scratch: Path | None = None,
            graph: nn.Module | None = None, output_names: list[str] | None = None) -> tuple[ir.Model, str, float]:
    """The ONNX model of `graph` (default: the model with its normalization), exported with
    a batch of EXPORT_BATCH, its inputs and outputs named; the exporter used; and the seconds it took."""
    graph = p.wrapper if graph is None else graph
    output_names = output_names or p.output_names
    dynamic_axes = ({i.name: axis_names(i.dims) for i in p.inputs}
                    | {name: axis_names(o.dims) for name, o in zip(output_names, p.outputs)})
    dynamic = any(isinstance(d, str) for i in p.inputs for d in i.dims)
    length = sample_lengths(model.info, (EXAMPLE_LENGTH,))[0] if dynamic else None
    examples = tuple(torch.from_numpy(a) for a in input_list(sample_input(p, EXPORT_BATCH, length,
                                                                          np.random.default_rng(0))))
    try:
        return export_with_fallback(graph, examples, p.input_names, output_names, dynamic_axes, opset, explicit,
                                    scratch)
    except ExportFailed as failed:
        raise name_failing_layer(p, model, examples, opset, failed.first_error) from None


class ExportFailed(Exception):
    """Every exporter failed; `first_error` is the first one's error."""

    def __init__(self, first_error: BaseException | None):
        super().__init__(str(first_error))
        self.first_error = first_error


def export_with_fallback(module: nn.Module, examples: tuple[torch.Tensor, ...], input_names: list[str],
                         output_names: list[str], dynamic_axes: dict | None, opset: int, explicit: bool,
                         scratch: Path | None) -> tuple[ir.Model, str, float]:
    """The exporters in order (see `exporters`): the model, the exporter used and the seconds it took."""
    start = time.perf_counter()
    first_error: BaseException | None = None
    for name in exporters(opset, explicit):
        try:
            if name == "torchscript":
                exported = torchscript_export(module, examples, input_names, output_names, dynamic_axes, opset,
                                              scratch)
            else:
                exported = dynamo_export(module, examples, input_names, output_names, dynamic_axes, opset)
            return exported, name, time.perf_counter() - start
        except Exception as error:  # noqa: BLE001 - any exporter failure: the next one, then named
            first_error = first_error or error
    raise ExportFailed(first_error)


def name_failing_layer(p: Prepared, model, examples: tuple[torch.Tensor, ...], opset: int,
                       error: BaseException | None) -> SpecError:
    """Export each layer alone (deepest first) to find the one the exporter cannot handle."""
    layers = layer_index(model.info.layers)
    modules = dict(p.module.named_modules())
    inputs: dict[str, tuple] = {}

    def recorder(path: str):
        def hook(module, args, output) -> None:  # returns None: the output stays as it is
            if path not in inputs:
                inputs[path] = tuple(a.detach() for a in args if isinstance(a, torch.Tensor))
        return hook

    hooks = [modules[path].register_forward_hook(recorder(path)) for path in layers if path in modules]
    try:
        with torch.no_grad(), contextlib.suppress(Exception):  # a failing forward: the hooks saw what ran
            p.wrapper(*examples)
    finally:
        for hook in hooks:
            hook.remove()
    reason = first_line(error) if error is not None else "no exporter can write this opset"
    failing, probed = [], 0
    for path in sorted(inputs, key=lambda k: -k.count(".")):  # deepest first
        args = inputs[path]
        if len(args) != 1:
            continue
        probed += 1
        try:
            torchscript_export(modules[path], (args[0],), ["x"], ["y"], None, min(opset, TORCHSCRIPT_MAX_OPSET))
        except Exception as layer_error:  # noqa: BLE001
            failing.append((layers[path], first_line(layer_error)))
    # When every layer fails alone, the problem is not a layer (an opset, the exporter itself).
    if not failing or len(failing) == probed:
        return SpecError.at(None, f"the ONNX exporter failed on {model.name}: {reason}",
                            "run with --debug for the exporter's traceback")
    culprit, reason = failing[0]
    return SpecError(Diagnostic(
        f"layer `{culprit.node.kind}` ({culprit.path}) cannot be exported to ONNX (opset {opset}): {reason}",
        culprit.node.span, "replace this layer, or try another --opset"), model.ir.source)
