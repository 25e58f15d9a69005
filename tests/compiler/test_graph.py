"""`specc draw`: the layer graph as DOT and Mermaid."""

from __future__ import annotations

import re

import pytest

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


MAX_OF_PLUGIN = '''
"""A structural kind from one registry entry and its module: the elementwise maximum of
its branches. Drawing, summary, paths and lowering follow its layout."""
from dataclasses import replace

import torch
from torch import nn

from spec_compiler.layers import LayerKind, LayerParams, register
from spec_compiler.layers.base import BRANCHES


class MaxOf(nn.Module):
    def __init__(self, branches: list):
        super().__init__()
        for index, branch in enumerate(branches, start=1):
            self._modules[f"branch_{index}"] = branch

    def forward(self, x):
        return torch.stack([branch(x) for branch in self._modules.values()]).amax(dim=0)


class MaxOfParams(LayerParams):
    pass


register(LayerKind(
    name="max_of_layout_test", params=MaxOfParams, shape=lambda p, x, infer: infer(0, x).output,
    build=lambda p, x, y, children: MaxOf(children), layout=replace(BRANCHES, merge="max"),
    doc="the elementwise maximum of its branches", example="max_of_layout_test { branch { dense 3 }; branch { dense 3 } }",
))
'''


@pytest.mark.torch
def test_a_structural_kind_is_drawn_summarized_and_built_by_its_layout(tmp_path):
    plugin = tmp_path / "max_of_plugin.py"
    plugin.write_text(MAX_OF_PLUGIN)
    model = compile_source("input vector 4\nmax_of_layout_test { branch { dense 3 }; branch { dense 3 relu } }\n"
                           "dense 2\n", "test.spec", plugins=[str(plugin)])
    dot = to_dot(model.info)
    assert _edges(dot) == [
        ("input", "max_of_layout_test_1.branch_1.dense_1"),
        ("input", "max_of_layout_test_1.branch_2.dense_1"),
        ("max_of_layout_test_1.branch_1.dense_1", "max_of_layout_test_1"),
        ("max_of_layout_test_1.branch_2.dense_1", "max_of_layout_test_1"),
        ("max_of_layout_test_1", "dense_1"),
    ]
    assert 'label="max_of_layout_test_1: max\\n(None, 3)", shape=ellipse' in dot
    table = model.table()
    assert "  [branch 1]" in table and "  [branch 2]" in table
    module = model.build()
    assert "max_of_layout_test_1.branch_2.dense_1.weight" in module.state_dict()
    summary = model.summary()
    assert summary["total_params"] == sum(p.numel() for p in module.parameters()) == 2 * 15 + 8


def test_a_block_is_drawn_as_its_layers_and_a_wrapper_as_its_own_node():
    dot = to_dot(compile_source("input sequence 5x4\nblock head(n) {\n  dense n\n}\nhead 3\n"
                                "timedistributed { dense 2 }\n").info)
    assert _edges(dot) == [
        ("input", "head_1.dense_1"),  # the block's group adds no node of its own
        ("head_1.dense_1", "timedistributed_1.dense_1"),
        ("timedistributed_1.dense_1", "timedistributed_1"),
    ]
