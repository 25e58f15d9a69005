"""Property tests over graphs.

1. Valid graphs, drawn as spec TEXT while tracking shapes and counts (several inputs,
   named tensors, towers that share one layer, merges of tensors, several outputs),
   compile to the parameter count and output shapes computed here, and `specc fmt`
   keeps their meaning.
2. Random lines of graph words (names, heads, merges, reuses, `output`) compile or
   raise a SpecError that renders, never another exception.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from spec_compiler import SpecError, compile_source
from spec_compiler.formatter import format_source

SETTINGS = settings(max_examples=150, deadline=None, derandomize=True, database=None,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])

ELEMENTWISE = ["add", "multiply", "maximum", "minimum", "average"]


@dataclass
class Graph:
    """A graph spec being drawn: its lines, the parameters and outputs it must have."""

    lines: list[str] = field(default_factory=list)
    params: int = 0
    outputs: dict[str, tuple[int, ...]] = field(default_factory=dict)

    def dense(self, features: int, units: int) -> int:
        self.params += features * units + units
        return units

    @property
    def text(self) -> str:
        return "model drawn\n" + "\n".join(self.lines) + "\n"


@st.composite
def towers(draw, graph: Graph, inputs: list[tuple[str, int]], shared: bool) -> list[tuple[str, int]]:
    """One line per input, `tN = xN -> dense ...`; shared: every tower after the first runs
    the first tower's named layer again (no parameters of its own)."""
    tensors = []
    for index, (source, size) in enumerate(inputs, start=1):
        if shared and index > 1:
            graph.lines.append(f"t{index} = {source} -> enc")
            tensors.append((f"t{index}", tensors[0][1]))
            continue
        units = graph.dense(size, draw(st.integers(1, 12)))
        name = " name=enc" if shared else ""
        graph.lines.append(f"t{index} = {source} -> dense {units} relu{name}")
        if draw(st.booleans()):
            graph.lines.append(draw(st.sampled_from(["  -> dropout 0.1", "  -> tanh", "  -> layernorm"])))
            if graph.lines[-1].endswith("layernorm"):
                graph.params += 2 * units
        tensors.append((f"t{index}", units))
    return tensors


@st.composite
def merged(draw, graph: Graph, tensors: list[tuple[str, int]]) -> tuple[str, int]:
    """The towers merged at a line's head (`m = concat t1 t2`), or the only tower."""
    if len(tensors) == 1:
        return tensors[0]
    names = " ".join(name for name, _ in tensors)
    if len({size for _, size in tensors}) == 1 and draw(st.booleans()):
        graph.lines.append(f"m = {draw(st.sampled_from(ELEMENTWISE))} {names}")
        return "m", tensors[0][1]
    axis = draw(st.sampled_from(["", " axis=0", " axis=-1"]))
    graph.lines.append(f"m = concat {names}{axis}")
    return "m", sum(size for _, size in tensors)


@st.composite
def valid_graphs(draw) -> Graph:
    graph = Graph()
    count = draw(st.integers(1, 3))
    shared = count > 1 and draw(st.booleans())
    first = draw(st.integers(1, 16))
    sizes = [first if shared else draw(st.integers(1, 16)) for _ in range(count)]
    named = count > 1 or draw(st.booleans())
    inputs = [(f"x{i}" if named else "input", size) for i, size in enumerate(sizes, start=1)]
    graph.lines += [f"input vector {size}" + (f" name={name}" if named else "") for name, size in inputs]
    trunk, features = draw(merged(graph, draw(towers(graph, inputs, shared))))
    if draw(st.booleans()):  # a line without a head continues from the line above
        features = graph.dense(features, draw(st.integers(1, 12)))
        graph.lines.append(f"h = dense {features} relu")
        trunk = "h"
    heads = draw(st.integers(1, 2))
    for index in range(1, heads + 1):
        units = graph.dense(features, draw(st.integers(1, 10)))
        activation = draw(st.sampled_from(["", " softmax", " sigmoid"]))
        if heads == 1 and draw(st.booleans()):  # unnamed: the model's output is called `output`
            graph.lines.append(f"{trunk} -> dense {units}{activation}")
            graph.outputs["output"] = (units,)
        else:
            graph.lines.append(f"o{index} = {trunk} -> dense {units}{activation}")
            graph.outputs[f"o{index}"] = (units,)
    if heads > 1 or (list(graph.outputs) != ["output"] and draw(st.booleans())):
        order = draw(st.permutations(list(graph.outputs)))
        graph.lines.append("output " + " ".join(order))
        graph.outputs = {name: graph.outputs[name] for name in order}
    return graph


@SETTINGS
@given(valid_graphs())
def test_valid_graphs_compile_to_the_expected_counts_and_outputs(graph):
    try:
        model = compile_source(graph.text, "graph.spec")
    except SpecError as error:  # pragma: no cover - a failure shows the spec and the error
        raise AssertionError(f"valid graph rejected:\n{graph.text}\n{error.render()}") from None
    summary = model.summary()
    assert summary["total_params"] == graph.params, graph.text
    assert summary["outputs"] == {name: [None, *dims] for name, dims in graph.outputs.items()}, graph.text
    assert "Reads -> names" in model.table() or model.ir.is_chain
    again = compile_source(format_source(graph.text), "graph.spec").summary()
    assert _without_lines(again) == _without_lines(summary), graph.text  # fmt joins `->` lines


def _without_lines(value):
    """A summary with its line numbers left out."""
    if isinstance(value, dict):
        return {key: _without_lines(item) for key, item in value.items() if key != "line"}
    if isinstance(value, list):
        return [_without_lines(item) for item in value]
    return value


# --- random graph lines: compile or SpecError ------------------------------------------

INPUT_LINES = st.sampled_from(["input vector 3 name=x", "input vector 3 name=y", "input vector 4 name=z",
                               "input vector 3", "input image 1x4x4 name=x", "input vector 3 name=dense"])
GRAPH_LINES = st.sampled_from([
    "a = x -> dense 3", "b = y -> dense 3 name=enc", "c = x -> enc", "c = z -> enc", "add a b", "concat a c axis=0",
    "multiply a b -> dense 2", "output a", "output b c", "output a a", "d = a", "x -> dense 2", "dense 4",
    "a = b -> dense 1", "b = a -> dense 1", "e = add a q", "enc 3", "output q", "-> relu", "m = add a", "flatten",
    "relu = x -> dense 1", "enc = x", "a -> enc", "t = concat x y z", "output", "x", "a 3 -> dense 1",
    "f = input -> dense 2", "concat { branch { dense 1 }; branch { dense 2 } }"])


@SETTINGS
@given(st.lists(INPUT_LINES, max_size=3), st.lists(GRAPH_LINES, max_size=6))
def test_random_graph_lines_compile_or_raise_spec_error(inputs, lines):
    text = "\n".join([*inputs, *lines]) + "\n"
    try:
        model = compile_source(text, "graph.spec")
    except SpecError as error:
        assert error.diagnostics and "error:" in error.render()
        return
    model.summary()
    model.table()


# --- mutated graph specs: only SpecError -----------------------------------------------

GRAPHS = [
    "model siamese\ninput image 1x8x8 name=left\ninput image 1x8x8 name=right\n"
    "block tower() { conv 4 3x3 relu -> flatten -> dense 8 }\na = left -> tower name=enc\nb = right -> enc\n"
    "d = add a b -> dense 1 sigmoid\ne = concat a b axis=0\noutput d e\n",
    "model two_head\ninput image 1x8x8\nconv 4 3x3 relu -> flatten\nfeatures = dense 16 relu\n"
    "digit = features -> dense 10 softmax\nparity = features -> dense 1 sigmoid\noutput digit parity\n",
]
PIECES = st.sampled_from(list("=-> \n{}abdefx0123") + ["->", " = ", "output ", "enc", "left", "add ", "a b"])


@st.composite
def mutated_graphs(draw) -> str:
    text = draw(st.sampled_from(GRAPHS))
    for _ in range(draw(st.integers(1, 5))):
        position = draw(st.integers(0, len(text)))
        action = draw(st.sampled_from(["insert", "delete", "replace"]))
        piece = draw(PIECES) if action != "delete" else ""
        text = text[:position] + piece + text[position + (action != "insert"):]
    return text


@SETTINGS
@given(mutated_graphs())
def test_mutated_graphs_yield_only_spec_errors(text):
    try:
        model = compile_source(text, "graph.spec")
    except SpecError as error:
        assert error.diagnostics and "error:" in error.render()
        return
    model.summary()
    model.table()
