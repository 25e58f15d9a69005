"""Drawing a graph spec (`specc draw`): a node per input and per output, merges of named
tensors, shared uses marked, and the edges that carry a named tensor labelled with it (in
the pictures, a named line's layers framed under its name)."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET

from graph_models import siamese, two_head

from spec_compiler.backends.graph import to_dot, to_mermaid
from spec_compiler.backends.picture import layout_picture
from spec_compiler.backends.picture_png import to_png
from spec_compiler.backends.picture_svg import to_svg


def labels(dot: str) -> dict[str, str]:
    return dict(re.findall(r'  (n\d+) \[label="([^"]*)"', dot))


def test_dot_has_both_inputs_the_merge_and_the_output_with_named_edges():
    dot = to_dot(siamese().info)
    nodes = {label.split("\\n")[0]: node for node, label in labels(dot).items()}
    assert {"left: input image", "right: input image", "concat_1: concat", "output similarity"} <= set(nodes)
    assert f'  {nodes["left: input image"]} -> {nodes["flatten_1: flatten"]} [label="left"];' in dot
    assert f'  {nodes["enc: dense + tanh"]} -> {nodes["concat_1: concat"]} [label="a"];' in dot
    assert f'  {nodes["enc_2: dense + tanh"]} -> {nodes["concat_1: concat"]} [label="b"];' in dot
    assert "shares enc" in labels(dot)[nodes["enc_2: dense + tanh"]]


def test_mermaid_fans_one_tensor_out_to_two_heads_and_two_outputs():
    text = to_mermaid(two_head().info)
    assert text.count("-->|features|") == 2
    assert "output digit" in text and "output parity" in text


def test_the_picture_puts_inputs_first_and_outputs_last():
    picture = layout_picture(two_head().info)
    rows = {box.path: box.y for box in picture.boxes}
    assert rows["input"] < rows["flatten_1"] < rows["dense_2"] < rows["digit"]
    assert rows["dense_2"] == rows["dense_3"]  # the two heads side by side
    siamese_picture = layout_picture(siamese().info)
    frame = next(frame for frame in siamese_picture.frames if frame.path == "similarity")
    entry = (frame.x + frame.width // 2, frame.y)  # the merge's line: both towers' wires enter it
    assert sum(1 for wire in siamese_picture.wires if wire.points[-1] == entry) == 2
    assert [box.kind for box in siamese_picture.boxes if box.role == "merge"] == ["concat"]
    assert [frame.path for frame in siamese_picture.frames if frame.kind == "tensor"] == ["a", "b", "similarity"]
    assert siamese_picture.frames[0].lines[0] == "a ="
    svg = ET.fromstring(to_svg(siamese().info))
    assert svg.tag.endswith("svg")
    assert to_png(siamese().info).startswith(b"\x89PNG")
