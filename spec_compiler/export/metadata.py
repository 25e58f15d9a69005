"""The `specc.*` metadata an exported file carries (the run package's OnnxMetadata), and
the finishing touches: producer, doc string."""

from __future__ import annotations

import onnx_ir as ir
from pydantic import ValidationError

from ..run import ImageFormat, OnnxInput, OnnxMetadata, OnnxOutput
from ..version import __version__
from .prepare import InputSpec, Prepared

LAYOUTS = {"sequence": "NTF", "vector": "NF", "tokens": "NT"}


def onnx_metadata(p: Prepared, model) -> OnnxMetadata:
    """What an app needs to feed the file and read its outputs, from the spec and the run: a
    chain's `input` and `output`, a graph's `inputs` and `outputs` lists."""
    ir_model = model.ir
    preprocess = p.preprocess
    run_id = (p.record.run_id if p.record is not None else None) or (preprocess.run_id if preprocess else None)
    shared = dict(
        version=__version__, model=ir_model.name, spec=ir_model.source, spec_path=str(ir_model.path),
        labels=p.labels, normalization=p.normalization, normalization_in_graph=True,
        text=preprocess.text if preprocess is not None and any(i.kind == "tokens" for i in p.inputs) else None,
        weights=str(p.weights) if p.weights is not None else "initialized", run_id=run_id,
        preprocess=preprocess.model_dump(mode="json", exclude={"text", "normalize"}) if preprocess else {})
    inputs = [_input(spec) for spec in p.inputs]
    outputs = [OnnxOutput(name=o.name, shape=list(o.dims), activation=o.final) for o in p.outputs]
    if p.is_graph:
        return OnnxMetadata(inputs=inputs, outputs=outputs, **shared)
    return OnnxMetadata(input=inputs[0], output=outputs[0], image=_image_format(p, p.input_kind), **shared)


def _input(spec: InputSpec) -> OnnxInput:
    layout = ("NCHW" if len(spec.dims) == 3 else "NCL") if spec.kind == "image" else LAYOUTS.get(spec.kind, "N...")
    return OnnxInput(name=spec.name, kind=spec.kind, layout=layout, shape=list(spec.dims),
                     dtype="int64" if spec.dtype == "int" else "float32", vocab=spec.vocab)


def _image_format(p: Prepared, kind: str) -> ImageFormat | None:
    """How image files become this input: the run's, else the spec's size; None when image
    files cannot feed it (not an image, or more channels than a picture has)."""
    if kind != "image":
        return None
    if p.preprocess is not None and p.preprocess.image is not None:
        return p.preprocess.image
    if len(p.dims) != 3 or not all(isinstance(d, int) for d in p.dims):
        return None
    try:
        return ImageFormat(channels=p.dims[0], height=p.dims[1], width=p.dims[2])
    except ValidationError:
        return None


def finish(graph: ir.Model, metadata: OnnxMetadata) -> None:
    """Set the metadata_props, producer and doc string of the exported model."""
    graph.metadata_props.clear()
    graph.metadata_props.update(metadata.to_props())
    graph.producer_name, graph.producer_version = "specc", metadata.version
    graph.doc_string = f"{metadata.model}: exported by specc {metadata.version} from {metadata.spec_path}"
    graph.model_version = 1

