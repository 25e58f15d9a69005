"""Graphs from spec text: the steps elaboration makes (what each line reads, its nodes,
the tensor it names), shared layers, outputs, and what `specc compile` prints for them."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from spec_compiler import SpecError, compile_source

SIAMESE = """\
model siamese
input image 1x28x28 name=left
input image 1x28x28 name=right

block tower() { conv 16 3x3 relu -> maxpool 2 -> flatten -> dense 32 }

a = left -> tower name=enc
b = right -> enc
add a b -> dense 1 sigmoid
"""

TWO_HEAD = """\
model two_head
input image 1x8x8
conv 16 3x3 relu -> flatten
features = dense 64 relu
digit = features -> dense 10 softmax
parity = features -> dense 1 sigmoid
output digit parity
"""


def steps_of(source: str) -> list[tuple[str, tuple[str, ...], list[str]]]:
    ir = compile_source(source).ir
    return [(step.name, step.sources, [node.name for node in step.nodes]) for step in ir.steps]


def test_a_chain_is_one_step_from_its_input_to_its_output():
    ir = compile_source("input image 1x8x8\nconv 4 3x3 relu\nflatten\n-> dense 10\n").ir
    assert ir.is_chain and [n.name for n in ir.nodes] == ["conv2d_1", "flatten_1", "dense_1"]
    assert (ir.steps[0].name, ir.outputs[0].name) == ("output", "output")


def test_siamese_lines_become_steps_and_the_second_tower_shares_the_first():
    assert steps_of(SIAMESE) == [("a", ("left",), ["enc"]), ("b", ("right",), ["enc_2"]),
                                 ("output", ("a", "b"), ["add_1", "dense_1"])]
    ir = compile_source(SIAMESE).ir
    first, again = ir.steps[0].nodes[0], ir.steps[1].nodes[0]
    assert (again.shares, again.kind, again.params, again.bodies) == ("enc", "group", first.params, first.bodies)
    assert again.span.line == 8 and [i.name for i in ir.inputs] == ["left", "right"]


def test_a_named_line_without_a_head_continues_the_line_above_and_outputs_come_in_order():
    assert steps_of(TWO_HEAD) == [("features", ("input",), ["conv2d_1", "flatten_1", "dense_1"]),
                                  ("digit", ("features",), ["dense_2"]), ("parity", ("features",), ["dense_3"])]
    model = compile_source(TWO_HEAD)
    assert [o.name for o in model.ir.outputs] == ["digit", "parity"]
    assert {name: t.dims for name, t in model.info.outputs.items()} == {"digit": (10,), "parity": (1,)}


def test_a_merge_head_takes_its_options_and_a_line_after_a_named_one_reads_it():
    source = ("input vector 8 name=x\ninput vector 8 name=y\nh = concat x y axis=0\n"
              "dense 4\n-> dense 2\n")
    assert steps_of(source) == [("h", ("x", "y"), ["concat_1"]), ("output", ("h",), ["dense_1", "dense_2"])]
    info = compile_source(source).info
    assert info.steps[0].output.dims == (16,) and info.output.dims == (2,)


def test_a_named_chain_continues_over_arrow_lines_and_an_alias_has_no_layers():
    source = "input vector 8\nh = input -> dense 4\n  -> relu\ng = h\noutput g\n"
    assert steps_of(source) == [("h", ("input",), ["dense_1", "relu_1"]), ("g", ("h",), [])]
    assert compile_source(source).info.output.dims == (4,)


def test_layer_names_are_unique_across_lines():
    source = "input vector 8\na = input -> dense 4 name=fc\nb = a -> dense 4 name=fc\noutput b\n"
    with pytest.raises(SpecError, match="layer name `fc` is used twice"):
        compile_source(source)


def test_a_kind_keeps_its_meaning_when_a_layer_is_named_after_it():
    ir = compile_source("input vector 8\ndense 4 name=relu\nrelu\n").ir
    assert ir.is_chain and [(n.kind, n.shares) for n in ir.nodes] == [("dense", None), ("relu", None)]


def test_a_third_use_shares_the_first_use_and_counts_nothing():
    source = ("input vector 8 name=x\ninput vector 8 name=y\ninput vector 8 name=z\n"
              "a = x -> dense 4 name=enc\nb = y -> enc\nc = z -> enc\nadd a b c\n")
    model = compile_source(source)
    assert [s.nodes[0].shares for s in model.ir.steps[1:3]] == ["enc", "enc"]
    assert [s.nodes[0].name for s in model.ir.steps[:3]] == ["enc", "enc_2", "enc_3"]
    assert model.info.count.total == 8 * 4 + 4


def test_the_table_of_a_graph_says_what_each_line_reads_and_names():
    table = compile_source(SIAMESE).table()
    assert "Reads -> names" in table
    assert [line.split()[-3:] for line in table.splitlines() if "left ->" in line or "right ->" in line] == [
        ["left", "->", "a"], ["right", "->", "b"]]
    assert "group (shares enc)" in table and "Outputs: output (None, 1)" in table
    two_head = compile_source(TWO_HEAD).table()
    assert "Outputs: digit (None, 10), parity (None, 1)" in two_head
    assert "features -> digit" in two_head and "features -> parity" in two_head


def test_a_chain_table_keeps_its_four_columns():
    table = compile_source("input vector 8\ndense 4\n").table()
    assert "Reads" not in table and "Outputs:" not in table


def test_json_of_a_graph_has_inputs_outputs_and_steps():
    summary = compile_source(TWO_HEAD).summary()
    assert summary["inputs"] == {"input": [None, 1, 8, 8]}
    assert summary["outputs"] == {"digit": [None, 10], "parity": [None, 1]}
    assert "output_shape" not in summary and summary["input_shape"] == [None, 1, 8, 8]
    assert [(s["name"], s["reads"]) for s in summary["steps"]] == [
        ("features", ["input"]), ("digit", ["features"]), ("parity", ["features"])]
    siamese = compile_source(SIAMESE).summary()
    assert "input" not in siamese and siamese["output_shape"] == [None, 1]
    assert [layer.get("shares") for layer in siamese["layers"]] == [None, "enc", None, None]


def test_json_of_a_chain_keeps_every_key_and_adds_inputs_and_outputs():
    summary = compile_source("input vector 8 name=x\ndense 4\n").summary()
    assert summary["input"]["name"] == "x" and summary["input_shape"] == [None, 8]
    assert summary["output_shape"] == [None, 4]
    assert summary["inputs"] == {"x": [None, 8]} and summary["outputs"] == {"output": [None, 4]}
    assert "shares" not in summary["layers"][0]


def test_specc_compile_json_of_a_graph(tmp_path: Path):
    spec = tmp_path / "two_head.spec"
    spec.write_text(TWO_HEAD)
    result = subprocess.run([sys.executable, "-m", "spec_compiler.cli", "compile", str(spec), "--json"],
                            capture_output=True, text=True, check=True)
    assert json.loads(result.stdout)["total_params"] == 160 + 576 * 64 + 64 + 650 + 65


@pytest.mark.parametrize(("source", "message", "where"), [
    ("input vector 3\nx = input -> dense 2\nx -> dense 3 -> x\n",
     "`x` is a tensor: only a line's first word reads one", (3, 17)),
    ("input vector 3\nx = input -> dense 2\nx 4 -> dense 3\n", "`x` is a tensor: it takes no arguments", (3, 1)),
    ("input vector 3\na = \n", "missing chain after `a =`", (2, 5)),
    ("input vector 3\ndense 3; b =\n", "missing chain after `b =`", (2, 13)),
    ("input vector 3\ndense 3 bias=\n", "missing value after `=`", (2, 14)),
    ("input vector 3 name=x\ninput vector 3 name=x\nx -> dense 2\n", "input name `x` is used twice", (2, 7)),
    ("input vector 3\nh = input -> dense 2\noutput h\noutput h\n", "a second `output` line", (4, 1)),
    ("input vector 3 name=x\ninput vector 3 name=y\nadd x -> dense 1\n", "`add` merges at least 2 tensors, got 1",
     (3, 1)),
    ("input vector 3\nh = input -> dense 2\noutput h h\n", "`h` is listed twice in `output`", (3, 10)),
    ("input vector 3\nblock b() { output x }\nb\n", "`output` cannot appear inside a body", (2, 13)),
])
def test_graph_mistakes_are_positioned(source, message, where):
    with pytest.raises(SpecError) as caught:
        compile_source(source)
    first = caught.value.first
    assert (first.message, (first.span.line, first.span.column)) == (message, where)
