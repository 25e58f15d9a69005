"""Summary backend: the Keras-like table and the JSON object scripts rely on."""

from __future__ import annotations

from typing import Any

from ..errors import warning_dict
from ..inference import BYTES_PER_VALUE, LayerInfo, ModelInfo
from ..shapes import TensorType


def shape_list(t: TensorType) -> list[int | None]:
    """[null batch, sizes...] with null for dynamic lengths, as in JSON output."""
    return [None, *(d if isinstance(d, int) else None for d in t.dims)]


def shape_text(t: TensorType) -> str:
    return "(None, " + ", ".join(str(d) if isinstance(d, int) else "None" for d in t.dims) + ")" if t.dims else "(None,)"


def _layer_dict(info: LayerInfo) -> dict[str, Any]:
    entry: dict[str, Any] = {
        "name": info.path,
        "kind": info.node.kind,
        "line": info.node.span.line,
        "input_shape": shape_list(info.input),
        "output_shape": shape_list(info.output),
        "params": info.count.total,
        "trainable": info.as_trained.trainable,
        "non_trainable": info.as_trained.non_trainable,
        "flops": info.flops,
        "activation_bytes": info.activation_bytes,
    }
    if info.children:
        entry["children"] = [[_layer_dict(c) for c in body] for body in info.children]
    return entry


def summary_dict(info: ModelInfo) -> dict[str, Any]:
    trained = info.as_trained  # `frozen` layers count as non-trainable, as Keras does
    ir = info.ir
    return {
        "model": ir.name,
        "file": ir.path,
        "input": {"name": ir.input.name, "kind": ir.input.kind, "dtype": "int64" if ir.input.type.dtype == "int" else "float32",
                  "vocab": ir.input.type.vocab},
        "input_shape": shape_list(ir.input.type),
        "output_shape": shape_list(info.output),
        "total_params": trained.total,
        "trainable_params": trained.trainable,
        "non_trainable_params": trained.non_trainable,
        "param_bytes": trained.total * BYTES_PER_VALUE,
        "flops": info.flops,
        "activation_bytes": info.activation_bytes,
        "dynamic_length": not ir.input.type.is_static,
        "layers": [_layer_dict(layer) for layer in info.layers],
        "warnings": [warning_dict(w) for w in ir.warnings],
    }


def _human_bytes(n: int) -> str:
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if n < 1024 or unit == "TiB":
            return f"{n:.2f} {unit}" if unit != "B" else f"{n} B"
        n /= 1024
    return f"{n} B"


def _human_count(n: int) -> str:
    for unit, size in (("G", 1e9), ("M", 1e6), ("K", 1e3)):
        if n >= size:
            return f"{n / size:.2f} {unit}"
    return str(n)


def table_rows(info: ModelInfo, depth: int | None = None) -> list[tuple[str, str, str, str]]:
    rows: list[tuple[str, str, str, str]] = []

    def walk(layers: tuple[LayerInfo, ...], level: int) -> None:
        for layer in layers:
            indent = "  " * level
            rows.append((indent + layer.node.name, layer.node.kind, shape_text(layer.output), f"{layer.count.total:,}"))
            if layer.children and (depth is None or level + 1 <= depth):
                for index, body in enumerate(layer.children):
                    if len(layer.children) > 1 and body:
                        tag = layer.kind.layout.label(index).replace("_", " ")  # [shortcut], [branch 2]
                        rows.append((indent + "  " + f"[{tag}]", "", "", ""))
                    walk(body, level + (2 if len(layer.children) > 1 else 1))

    walk(info.layers, 0)
    return rows


def render_table(info: ModelInfo, depth: int | None = None) -> str:
    """The summary as plain text (also what a terminal shows, via rich when available)."""
    header = ("Layer (name)", "Kind", "Output shape", "Params")
    ir = info.ir
    input_row = (ir.input.name, f"input {ir.input.kind}", shape_text(ir.input.type), "0")
    rows = [header, input_row, *table_rows(info, depth)]
    widths = [max(len(r[i]) for r in rows) for i in range(4)]
    line = "=" * (sum(widths) + 6)
    thin = "-" * (sum(widths) + 6)

    def fmt(row):
        return f"{row[0]:<{widths[0]}}  {row[1]:<{widths[1]}}  {row[2]:<{widths[2]}}  {row[3]:>{widths[3]}}".rstrip()

    data = summary_dict(info)
    out = [f'Model: "{ir.name}"', line, fmt(header), line]
    out += [fmt(r) for r in rows[1:]]
    dynamic = " (per time step of the dynamic length)" if data["dynamic_length"] else ""
    out += [
        line,
        f"Total params: {data['total_params']:,} ({_human_bytes(data['param_bytes'])})",
        f"Trainable params: {data['trainable_params']:,}",
        f"Non-trainable params: {data['non_trainable_params']:,}",
        thin,
        f"FLOPs (multiply-adds) per sample: {data['flops']:,} ({_human_count(data['flops'])}){dynamic}",
        f"Activation memory per sample: {_human_bytes(data['activation_bytes'])}{dynamic}",
        line,
    ]
    return "\n".join(out)
