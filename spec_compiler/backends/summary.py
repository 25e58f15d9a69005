"""Summary backend: the Keras-like table and the JSON object scripts rely on.

A chain's table and JSON are as they always were. A graph's table adds a column that
says which tensors each line reads and names, marks further uses of a layer (`shares`)
and tied weights, and lists the outputs; its JSON adds each step."""

from __future__ import annotations

from typing import Any

from ..errors import warning_dict
from ..inference import BYTES_PER_VALUE, LayerInfo, ModelInfo, StepInfo
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
    if info.node.shares is not None:
        entry["shares"] = info.node.shares
    if tied_to(info) is not None:
        entry["tied_to"] = tied_to(info)
    if info.children:
        entry["children"] = [[_layer_dict(c) for c in body] for body in info.children]
    return entry


def tied_to(info: LayerInfo) -> str | None:
    """The embedding whose table a layer's weight is (`tie=`), if any."""
    return getattr(info.node.params, "tie", None)


def _step_dict(step: StepInfo) -> dict[str, Any]:
    return {"name": step.step.name, "reads": list(step.step.sources), "line": step.step.span.line,
            "layers": [layer.path for layer in step.layers], "output_shape": shape_list(step.output)}


def summary_dict(info: ModelInfo) -> dict[str, Any]:
    trained = info.as_trained  # `frozen` layers count as non-trainable, as Keras does
    ir = info.ir
    single: dict[str, Any] = {}  # a model with one input and one output keeps the keys it always had
    if len(ir.inputs) == 1:
        single["input"] = {"name": ir.input.name, "kind": ir.input.kind,
                           "dtype": "int64" if ir.input.type.dtype == "int" else "float32", "vocab": ir.input.type.vocab}
        single["input_shape"] = shape_list(ir.input.type)
    if len(ir.outputs) == 1:
        single["output_shape"] = shape_list(info.output)
    return {
        "model": ir.name,
        "file": ir.path,
        **single,
        "inputs": {name: shape_list(t) for name, t in info.inputs.items()},
        "outputs": {name: shape_list(t) for name, t in info.outputs.items()},
        "total_params": trained.total,
        "trainable_params": trained.trainable,
        "non_trainable_params": trained.non_trainable,
        "param_bytes": trained.total * BYTES_PER_VALUE,
        "flops": info.flops,
        "activation_bytes": info.activation_bytes,
        "dynamic_length": not all(t.is_static for t in info.inputs.values()),
        "steps": [_step_dict(step) for step in info.steps],
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


def table_rows(info: ModelInfo, depth: int | None = None) -> list[tuple[str, ...]]:
    """The table's rows below the inputs: each layer, its bodies' layers indented. A graph's
    rows have a fifth column: what a line reads (on its first row) and names (on its last)."""
    rows: list[tuple[str, ...]] = []
    graph = not info.ir.is_chain

    def walk(layers: tuple[LayerInfo, ...], level: int) -> None:
        for layer in layers:
            indent = "  " * level
            rows.append((indent + layer.node.name, _kind_text(layer), shape_text(layer.output), f"{layer.count.total:,}"))
            if layer.children and layer.node.shares is None and (depth is None or level + 1 <= depth):
                for index, body in enumerate(layer.children):
                    if len(layer.children) > 1 and body:
                        tag = layer.kind.layout.label(index).replace("_", " ")  # [shortcut], [branch 2]
                        rows.append((indent + "  " + f"[{tag}]", "", "", ""))
                    walk(body, level + (2 if len(layer.children) > 1 else 1))

    for step in info.steps:
        if not graph:
            walk(step.layers, 0)
            continue
        if not step.layers:  # `a = left`: another name for a tensor
            rows.append(("", "", shape_text(step.output), "", _flow(step, True, True)))
        for index, layer in enumerate(step.layers):
            first = len(rows)
            walk((layer,), 0)
            rows[first] = (*rows[first], _flow(step, index == 0, index == len(step.layers) - 1))
            rows[first + 1:] = [(*row, "") for row in rows[first + 1:]]
    return rows


def _kind_text(layer: LayerInfo) -> str:
    if layer.node.shares is not None:
        return f"{layer.node.kind} (shares {layer.node.shares})"
    if tied_to(layer) is not None:
        return f"{layer.node.kind} (tied to {tied_to(layer)})"
    return layer.node.kind


def _flow(step: StepInfo, first: bool, last: bool) -> str:
    """`left, right` on a line's first row, `-> a` on its last (names specc made up are not shown)."""
    parts = [", ".join(step.step.sources)] if first else []
    if last and not step.step.name.startswith("_"):
        parts.append(f"-> {step.step.name}")
    return " ".join(parts)


def render_table(info: ModelInfo, depth: int | None = None) -> str:
    """The summary as plain text (also what a terminal shows, via rich when available)."""
    ir = info.ir
    graph = not ir.is_chain
    header: tuple[str, ...] = ("Layer (name)", "Kind", "Output shape", "Params", *(("Reads -> names",) if graph else ()))
    inputs = [(spec.name, f"input {spec.kind}", shape_text(spec.type), "0", *(("",) if graph else ()))
              for spec in ir.inputs]
    rows = [header, *inputs, *table_rows(info, depth)]
    widths = [max(len(r[i]) for r in rows) for i in range(len(header))]
    line = "=" * (sum(widths) + 2 * (len(header) - 1))
    thin = "-" * (sum(widths) + 2 * (len(header) - 1))

    def fmt(row):
        text = f"{row[0]:<{widths[0]}}  {row[1]:<{widths[1]}}  {row[2]:<{widths[2]}}  {row[3]:>{widths[3]}}"
        return (text + (f"  {row[4]}" if graph else "")).rstrip()

    data = summary_dict(info)
    out = [f'Model: "{ir.name}"', line, fmt(header), line]
    out += [fmt(r) for r in rows[1:]]
    dynamic = " (per time step of the dynamic length)" if data["dynamic_length"] else ""
    out.append(line)
    if graph:
        out.append("Outputs: " + ", ".join(f"{name} {shape_text(t)}" for name, t in info.outputs.items()))
    out += [
        f"Total params: {data['total_params']:,} ({_human_bytes(data['param_bytes'])})",
        f"Trainable params: {data['trainable_params']:,}",
        f"Non-trainable params: {data['non_trainable_params']:,}",
        thin,
        f"FLOPs (multiply-adds) per sample: {data['flops']:,} ({_human_count(data['flops'])}){dynamic}",
        f"Activation memory per sample: {_human_bytes(data['activation_bytes'])}{dynamic}",
        line,
    ]
    return "\n".join(out)
