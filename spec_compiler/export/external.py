"""Where the exported file's bytes go: one .onnx with the weights inside, or, for a model
over protobuf's 2 GB limit (or any model, with --external-data), OUT.onnx plus its weights
in OUT.onnx.data beside it.

A model is serialized once to be verified and once more to be written, so the two
destinations share one interface: `stage` serializes a graph the way the file will hold
it (for ONNX Runtime), `commit` writes the final one. The external-data pair is written
to temporary files beside the final paths (spec_compiler/files.py), ONNX Runtime checks
the model from there, and both files are renamed into place only when the export
succeeds: the data file first, then the .onnx that names it. When anything fails, both
temporary files are removed and what was at the paths stays as it was.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from pathlib import Path

import onnx_ir as ir

from ..errors import SpecError, UsageError
from ..files import atomic_path, resolved_target, write_bytes_atomic, writes_in_place
from .messages import first_line

# Weights above this many bytes go to a side file: protobuf cannot hold a message over
# 2 GiB, and the graph, metadata and shape information need room beside the weights.
EXTERNAL_DATA_THRESHOLD = 1 << 30
PROTOBUF_LIMIT = (1 << 31) - 1
INLINE_TENSOR_BYTES = 1024  # smaller tensors (shapes, scalars) stay readable inside the .onnx


@dataclass
class Serialized:
    """A serialized model as ONNX Runtime takes it: the ModelProto's bytes, and the folder
    of its data file when its weights lie outside it."""

    model: bytes
    folder: Path | None = None
    data_bytes: int = 0  # the size of its data file


def inline_bytes(serialized: Serialized) -> bytes:
    """The model with its weights inside, for the tools that take one message (onnxslim, the
    int8 quantizer); ValueError when that message would pass protobuf's 2 GiB limit."""
    if serialized.folder is None:
        return serialized.model
    if len(serialized.model) + serialized.data_bytes > PROTOBUF_LIMIT:
        raise ValueError(f"the model's weights ({serialized.data_bytes / 1e9:.2f} GB) do not fit in one ONNX "
                         "message (protobuf's 2 GB limit), which onnxslim and the int8 quantizer need")
    import onnx
    from onnx.external_data_helper import load_external_data_for_model

    proto = onnx.load_model_from_string(serialized.model)
    load_external_data_for_model(proto, str(serialized.folder))
    return proto.SerializeToString()


def weight_bytes(graph: ir.Model) -> int:
    """Bytes of every initializer, subgraphs included."""
    return sum(value.const_value.nbytes for g in graph.graphs() for value in g.initializers.values()
               if value.const_value is not None)


def data_file(output: Path) -> Path:
    """The side file of OUT.onnx: OUT.onnx.data, beside the file the .onnx's bytes go to (a
    symlink's target)."""
    target = resolved_target(output)
    return target.with_name(target.name + ".data")


def destination(output: Path, graph: ir.Model, forced: bool) -> InlineFile | ExternalDataFile:
    """External data when forced or when the weights pass EXTERNAL_DATA_THRESHOLD."""
    if not forced and weight_bytes(graph) <= EXTERNAL_DATA_THRESHOLD:
        return InlineFile(output)
    if writes_in_place(output):
        raise UsageError(f"-o {output}: a model with external data is two files (the .onnx and its .data); "
                         "give a file path")
    return ExternalDataFile(output)


def checked(proto_or_path) -> None:
    """onnx.checker's full check; a path lets it find the external data."""
    import onnx

    try:
        onnx.checker.check_model(proto_or_path, full_check=True)
    except (onnx.checker.ValidationError, onnx.shape_inference.InferenceError) as error:
        raise SpecError.at(None, f"the exported ONNX graph is invalid: {first_line(error)}") from None


class InlineFile(contextlib.AbstractContextManager):
    """One .onnx holding its weights, written atomically at commit."""

    external = False

    def __init__(self, output: Path):
        self.output = output

    def __exit__(self, *exc_info) -> None:
        return None

    def stage(self, graph: ir.Model) -> Serialized:
        proto = ir.to_proto(graph)
        checked(proto)
        return Serialized(proto.SerializeToString())

    def commit(self, final: Serialized) -> tuple[int, int]:
        """Write the file; (bytes of the .onnx, bytes of external data)."""
        try:
            write_bytes_atomic(self.output, final.model)
        except OSError as error:
            raise SpecError.at(None, f"cannot write {self.output}: {error.strerror or error}") from None
        return len(final.model), 0


class ExternalDataFile(contextlib.AbstractContextManager):
    """OUT.onnx and OUT.onnx.data, staged beside their final paths, renamed into place
    together when the `with` block ends without an error."""

    external = True

    def __init__(self, output: Path):
        self.output, self.data = output, data_file(output)
        self._files = contextlib.ExitStack()
        self._graph: ir.Model | None = None
        self._data_bytes = 0

    def __enter__(self) -> ExternalDataFile:
        try:
            # Left in this order, the data file is renamed into place first, then the .onnx.
            self.model_temporary = self._files.enter_context(atomic_path(self.output))
            self.data_temporary = self._files.enter_context(atomic_path(self.data))
        except OSError as error:
            self._files.close()
            raise SpecError.at(None, f"cannot write {self.output}: {error.strerror or error}") from None
        return self

    def __exit__(self, kind, error, traceback) -> bool:
        if kind is not None:  # the export failed: both temporary files go
            return self._files.__exit__(kind, error, traceback)
        try:
            return self._files.__exit__(None, None, None)
        except OSError as rename_error:
            raise SpecError.at(None, f"cannot write {self.output}: {rename_error.strerror or rename_error}") from None

    def stage(self, graph: ir.Model) -> Serialized:
        """Write the graph's weights to the temporary data file and point the graph at it."""
        folder = self.data_temporary.parent
        try:
            ir.external_data.unload_from_model(graph, folder, self.data_temporary.name,
                                               size_threshold_bytes=INLINE_TENSOR_BYTES)
        except OSError as error:
            raise SpecError.at(None, f"cannot write {self.data}: {error.strerror or error}") from None
        self._graph = graph
        self._data_bytes = self.data_temporary.stat().st_size
        model = ir.to_proto(graph).SerializeToString()
        self.model_temporary.write_bytes(model)  # the checker finds the data file from the model's path
        checked(str(self.model_temporary))
        return Serialized(model, folder, self._data_bytes)

    def commit(self, final: Serialized) -> tuple[int, int]:
        """Write the .onnx that names OUT.onnx.data (staging `final` first when it is a model
        of its own, such as the int8 one); (bytes of the .onnx, bytes of the data file)."""
        import onnx

        if final.folder is None:
            self.stage(ir.from_proto(onnx.load_model_from_string(final.model)))
        for graph in self._graph.graphs():
            for value in graph.initializers.values():
                tensor = value.const_value
                if isinstance(tensor, ir.ExternalTensor):
                    value.const_value = ir.ExternalTensor(
                        self.data.name, tensor.offset, tensor.length, tensor.dtype, shape=tensor.shape,
                        name=tensor.name, base_dir=tensor.base_dir)
        model = ir.to_proto(self._graph).SerializeToString()
        self.model_temporary.write_bytes(model)
        return len(model), self._data_bytes
