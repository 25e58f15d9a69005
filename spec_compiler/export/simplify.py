"""`--simplify`: onnxslim's graph simplification (constant folding, Identity and dead
nodes removed, operator fusions), kept only when the simplified graph passes the same
verification against PyTorch as the exported one. Otherwise the exported graph is written
and the report says why. Either way the report gives node count, size and batch-1
latency before and after (the report's `simplified` entry).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import onnx_ir as ir

from ..errors import SpecError
from .data import RunData
from .exporter import quiet
from .external import Serialized, checked, inline_bytes
from .messages import first_line
from .passes import shape_info
from .prepare import Prepared, sample_input
from .quantize import interleaved_latency
from .verify import OrtGraph, ort_session, verify

RuntimeOf = Callable[[ir.Model, Serialized], OrtGraph]


def simplified(p: Prepared, model, exported: ir.Model, staged: Serialized, runtime: OrtGraph, data: RunData | None,
               output: str, runtime_of: RuntimeOf) -> tuple[Serialized, OrtGraph, dict[str, Any]]:
    """The graph to write (the simplified one when it verifies), its ONNX Runtime graph, and
    the report's `simplified` entry. `runtime_of` makes the ONNX Runtime graph of a model
    as the pipeline verifies it (with the logits as a second output)."""
    info: dict[str, Any] = {"kept": False, "reason": None, "nodes_before": _nodes(exported), "nodes_after": None,
                            "bytes_before": None, "bytes_after": None, "latency_before_ms": None,
                            "latency_after_ms": None, "latency_ratio": None, "checks": []}
    try:
        before = inline_bytes(staged)
    except ValueError as error:  # over protobuf's limit
        info["reason"] = str(error)
        return staged, runtime, info
    info["bytes_before"] = len(before)
    try:
        graph = _slimmed(before)
    except SpecError:
        raise
    except Exception as error:  # noqa: BLE001 - onnxslim raises many kinds
        info["reason"] = f"onnxslim failed: {first_line(error)}"
        return staged, runtime, info
    proto = ir.to_proto(graph)
    after = proto.SerializeToString()
    info.update(nodes_after=_nodes(graph), bytes_after=len(after))
    try:
        checked(proto)
        candidate = Serialized(after)
        candidate_runtime = runtime_of(graph, candidate)
        checks, _ = verify(p, model, candidate_runtime, data, output)
    except SpecError as error:
        info["reason"] = f"the simplified graph does not verify: {error.first.message}"
        return staged, runtime, info
    x = sample_input(p, 1, 32, np.random.default_rng(4))
    latency_before, latency_after = interleaved_latency([ort_session(before), ort_session(after)], p.input_names, x)
    info.update(kept=True, checks=[c.to_dict() for c in checks], latency_before_ms=latency_before,
                latency_after_ms=latency_after, latency_ratio=latency_after / latency_before)
    return candidate, candidate_runtime, info


def _slimmed(model_bytes: bytes) -> ir.Model:
    import onnx
    import onnxslim

    with quiet():
        slim = onnxslim.slim(onnx.load_model_from_string(model_bytes))
    if slim is None:
        raise RuntimeError("it returned no model")
    return shape_info(ir.from_proto(slim))


def _nodes(graph: ir.Model) -> int:
    return sum(1 for _ in graph.graph)

