"""`specc draw`: the layer graph as DOT and Mermaid."""

from __future__ import annotations

import re

from spec_compiler import compile_source
from spec_compiler.backends.graph import to_dot, to_mermaid

SPEC = """\
input image 3x32x32
conv 16 3x3 pad=same relu
residual {
  conv 16 3x3 pad=same relu
  shortcut { conv 16 1x1 }
}
global_avgpool -> dense 10 softmax
"""


def _edges(dot: str) -> list[tuple[str, str]]:
    labels = dict(re.findall(r'(n\d+) \[label="([^"\\]*)', dot))
    return [(labels[a].split(":")[0], labels[b].split(":")[0]) for a, b in re.findall(r"(n\d+) -> (n\d+);", dot)]


def test_residual_draws_body_and_shortcut_merging_in_an_add():
    edges = _edges(to_dot(compile_source(SPEC).info))
    assert edges == [
        ("input", "conv2d_1"),
        ("conv2d_1", "residual_1.body.conv2d_1"),
        ("conv2d_1", "residual_1.shortcut.conv2d_1"),
        ("residual_1.body.conv2d_1", "residual_1"),
        ("residual_1.shortcut.conv2d_1", "residual_1"),
        ("residual_1", "global_avgpool_1"),
        ("global_avgpool_1", "dense_1"),
    ]


def test_labels_carry_shapes_and_params():
    dot = to_dot(compile_source(SPEC).info)
    assert 'label="dense_1: dense + softmax\\n(None, 10)\\n170 params"' in dot


def test_mermaid_has_one_line_per_node_and_edge():
    text = to_mermaid(compile_source(SPEC).info)
    assert text.splitlines()[0] == "flowchart TD"
    assert text.count("-->") == 7
    assert '["dense_1: dense + softmax<br/>(None, 10)<br/>170 params"]' in text
