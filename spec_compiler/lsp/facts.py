"""What inference knows about the layers written on a line, in words: the text of hovers
and inlay hints."""

from __future__ import annotations

from ..inference import LayerInfo
from ..layers.base import Count
from ..shapes import TensorType
from .analysis import Analysis


def shape_text(t: TensorType) -> str:
    return f"{t} ids" if t.dtype == "int" else str(t)


def params_text(count: Count) -> str:
    text = f"{count.total:,} params"
    return f"{text} ({count.non_trainable:,} non-trainable)" if count.non_trainable else text


def layer_facts(info: LayerInfo) -> str:
    return f"`{shape_text(info.output)}` · {params_text(info.count)} · {info.flops:,} FLOPs"


def line_hints(analysis: Analysis) -> dict[int, str]:
    """For each line that holds layers: the output of its last layer and the parameters
    of all of them (`6x14x14 · 156 params`).

    A line inside a block or a repeat is inferred once per use or copy; it gets a hint
    only when every one agrees, since one number for differing uses would mislead."""
    by_line: dict[int, list[tuple[LayerInfo, str]]] = {}
    for info, parent in analysis.inferred:
        by_line.setdefault(info.node.span.line, []).append((info, parent))
    hints = {}
    for line, entries in by_line.items():
        summaries = {_summary(instance) for instance in _instances(entries)}
        if len(summaries) == 1:
            hints[line] = summaries.pop()
    return hints


def _instances(entries: list[tuple[LayerInfo, str]]) -> list[list[LayerInfo]]:
    """Split one line's inferred layers into the instances of that line: a layer nested
    in another layer of the same line belongs to it; layers of one sequence belong
    together, until a span repeats (the next copy of a repeat)."""
    paths = {info.path for info, _ in entries}
    outer = [(info, parent) for info, parent in entries if not _inside_any(parent, paths)]
    instances: dict[str, list[list[LayerInfo]]] = {}
    for info, parent in outer:
        copies = instances.setdefault(parent, [[]])
        if any(other.node.span == info.node.span for other in copies[-1]):
            copies.append([])
        copies[-1].append(info)
    return [copy for copies in instances.values() for copy in copies]


def _inside_any(parent: str, paths: set[str]) -> bool:
    return any(parent == path or parent.startswith(path + ".") for path in paths)


def _summary(instance: list[LayerInfo]) -> str:
    instance.sort(key=lambda info: info.node.span.column)
    total = Count()
    for info in instance:
        total = total + info.count
    text = f"→ {shape_text(instance[-1].output)}"
    return f"{text} · {params_text(total)}" if total.total else text
