"""Graph drawing backend: the checked model as Graphviz DOT or Mermaid text.

Each node shows its name, kind, output shape and parameter count. The bodies of a
structural node are drawn as its kind's layout says: parallel bodies (residual,
concat, add) side by side, merging in a node named after the layout's merge rule; a
single body then the wrapper's own node, except for a transparent one (a block's group).
A graph spec's inputs and outputs are nodes of their own, and the edges that carry a
named tensor are labelled with its name.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ..inference import LayerInfo, ModelInfo
from .summary import shape_text


@dataclass
class _Graph:
    nodes: list[tuple[str, str, str]] = field(default_factory=list)  # id, label, shape
    edges: list[tuple[str, str]] = field(default_factory=list)
    names: dict[tuple[str, str], str] = field(default_factory=dict)  # an edge's tensor name (a graph spec's)

    def node(self, label: str, shape: str = "box") -> str:
        node_id = f"n{len(self.nodes)}"
        self.nodes.append((node_id, label, shape))
        return node_id


def _label(info: LayerInfo) -> str:
    activation = getattr(info.node.params, "activation", None)
    kind = info.node.kind + (f" + {activation}" if activation else "")
    params = f"\\n{info.count.total:,} params" if info.count.total else ""
    shared = f"\\nshares {info.node.shares}" if info.node.shares else ""
    return f"{info.path}: {kind}\\n{shape_text(info.output)}{params}{shared}"


def _sequence(graph: _Graph, layers: tuple[LayerInfo, ...], source: str) -> str:
    for info in layers:
        source = _layer(graph, info, source)
    return source


def _layer(graph: _Graph, info: LayerInfo, source: str) -> str:
    layout = info.kind.layout
    if layout is None:
        node = graph.node(_label(info))
        graph.edges.append((source, node))
        return node
    if layout.parallel:
        ends = [_sequence(graph, body, source) for body in info.children]
        merge = graph.node(f"{info.path}: {layout.merge}\\n{shape_text(info.output)}", shape="ellipse")
        graph.edges += [(end, merge) for end in ends]
        return merge
    end = _sequence(graph, info.children[0], source)
    if layout.transparent:
        return end
    wrapper = graph.node(_label(info), shape="ellipse")
    graph.edges.append((end, wrapper))
    return wrapper


def _build(info: ModelInfo) -> _Graph:
    graph = _Graph()
    ir = info.ir
    if ir.is_chain:
        start = graph.node(f"{ir.input.name}: input {ir.input.kind}\\n{shape_text(ir.input.type)}", shape="ellipse")
        _sequence(graph, info.layers, start)
        return graph
    return _build_graph(graph, info)


def _build_graph(graph: _Graph, info: ModelInfo) -> _Graph:
    """A graph spec: a node per input, each step's layers from the nodes that made the
    tensors it reads (a merge head merging them), and a node per output; an edge that
    carries a named tensor is labelled with its name."""
    ends = {spec.name: graph.node(f"{spec.name}: input {spec.kind}\\n{shape_text(spec.type)}", shape="ellipse")
            for spec in info.ir.inputs}
    named = set(ends) | {step.step.name for step in info.steps if not step.step.name.startswith("_")}

    def edge(tensor: str, target: str) -> None:
        graph.edges.append((ends[tensor], target))
        if tensor in named:
            graph.names[(ends[tensor], target)] = tensor

    for step in info.steps:
        layers = step.layers
        if len(step.step.sources) > 1:
            head = layers[0]
            merge = graph.node(f"{head.path}: {head.node.kind}\\n{shape_text(head.output)}", shape="ellipse")
            for source in step.step.sources:
                edge(source, merge)
            end, layers = merge, layers[1:]
        elif layers:
            source, before = step.step.sources[0], len(graph.edges)
            end = _layer(graph, layers[0], ends[source])
            if source in named:  # the edges into the step's first layer (every branch of a structure)
                graph.names.update({e: source for e in graph.edges[before:] if e[0] == ends[source]})
            layers = layers[1:]
        else:
            end = ends[step.step.sources[0]]
        ends[step.step.name] = _sequence(graph, layers, end)
    for spec in info.ir.outputs:
        edge(spec.name, graph.node(f"output {spec.name}\\n{shape_text(info.outputs[spec.name])}", shape="ellipse"))
    return graph


def to_dot(info: ModelInfo) -> str:
    graph = _build(info)
    lines = [f'digraph "{info.ir.name}" {{', "  rankdir=TB;", '  node [fontname="Helvetica", fontsize=10];']
    for node_id, label, shape in graph.nodes:
        lines.append(f'  {node_id} [label="{label}", shape={shape}];')
    lines += [f"  {a} -> {b}" + (f' [label="{graph.names[(a, b)]}"]' if (a, b) in graph.names else "") + ";"
              for a, b in graph.edges]
    lines.append("}")
    return "\n".join(lines)


def to_mermaid(info: ModelInfo) -> str:
    graph = _build(info)
    lines = ["flowchart TD"]
    for node_id, label, shape in graph.nodes:
        text = label.replace("\\n", "<br/>").replace('"', "'")
        lines.append(f'  {node_id}(["{text}"])' if shape == "ellipse" else f'  {node_id}["{text}"]')
    lines += [f"  {a} -->|{graph.names[(a, b)]}| {b}" if (a, b) in graph.names else f"  {a} --> {b}"
              for a, b in graph.edges]
    return "\n".join(lines)
