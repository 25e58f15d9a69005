"""`specc draw -o x.svg / x.png`: layered boxes drawn by specc itself, branches side by side."""

from __future__ import annotations

import io
import xml.etree.ElementTree as ET
from itertools import pairwise

import pytest
from click.testing import CliRunner
from conftest import ROOT
from PIL import Image

import spec_compiler
from spec_compiler.backends.picture import (
    FILLS,
    FONT_SIZE,
    FRAME_PAD,
    SMALL_FONT_SIZE,
    layout_picture,
    text_width,
)
from spec_compiler.backends.picture_png import MAX_SIDE, picture_png
from spec_compiler.backends.picture_svg import to_svg
from spec_compiler.backends.summary import shape_text
from spec_compiler.cli import main

SVG = "{http://www.w3.org/2000/svg}"


def _info(name: str):
    return spec_compiler.load(ROOT / "specs" / f"{name}.spec").info


def _all_layers(layers):
    for layer in layers:
        yield layer
        for body in layer.children:
            yield from _all_layers(body)


def _groups(svg: str) -> dict[str, ET.Element]:
    """The drawn groups (layer, merge, frame and input boxes) by data-path."""
    root = ET.fromstring(svg)
    groups = root.findall(f"{SVG}g")
    by_path = {g.get("data-path"): g for g in groups}
    assert len(by_path) == len(groups), "a path is drawn twice"
    return by_path


def _rect(group: ET.Element) -> tuple[int, int, int, int]:
    rect = group.find(f"{SVG}rect")
    return tuple(int(rect.get(key)) for key in ("x", "y", "width", "height"))


def _texts(group: ET.Element) -> list[str]:
    return [text.text for text in group.findall(f"{SVG}text")]


@pytest.mark.parametrize("name", ["resnet18", "inception", "bigru_text", "spam_lstm_timedistributed"])
def test_svg_draws_every_layer_once(name):
    info = _info(name)
    groups = _groups(to_svg(info))
    paths = [layer.path for layer in _all_layers(info.layers)]
    assert sorted(groups) == sorted([*paths, info.ir.input.name])
    for layer in _all_layers(info.layers):
        role = groups[layer.path].get("class")
        expected = "layer" if not layer.children else "merge" if len(layer.children) > 1 else "frame"
        assert role == expected, (layer.path, role)
        assert groups[layer.path].get("data-kind") == layer.node.kind


def test_each_box_holds_name_kind_shape_and_params():
    info = _info("lenet5")
    groups = _groups(to_svg(info))
    conv = groups["conv2d_1"]
    assert _texts(conv) == ["conv2d_1: conv2d + relu", "(None, 6, 28, 28) · 156 params"]
    assert _texts(groups["flatten_1"]) == ["flatten_1: flatten", "(None, 400)"]
    for layer in info.layers:
        title, detail = _texts(groups[layer.path])
        assert title.startswith(f"{layer.node.name}: {layer.node.kind}")
        assert detail.startswith(shape_text(layer.output))
        assert (f"{layer.count.total:,} params" in detail) == (layer.count.total > 0)
    assert ET.fromstring(to_svg(info)).find(f"{SVG}title").text == "lenet5: 61,706 parameters"


def test_a_sequence_runs_top_to_bottom_on_one_axis():
    info = _info("lenet5")
    groups = _groups(to_svg(info))
    rects = [_rect(groups[path]) for path in ["input", *(layer.path for layer in info.layers)]]
    for (x0, y0, w0, h0), (x1, y1, w1, _h1) in pairwise(rects):
        assert y1 > y0 + h0
        assert x0 + w0 // 2 == x1 + w1 // 2


def test_inception_branches_stand_side_by_side_and_merge_below():
    groups = _groups(to_svg(_info("inception")))
    firsts = [_rect(groups[f"concat_1.branch_{i}.{name}"])
              for i, name in enumerate(["conv2d_1", "conv2d_1", "conv2d_1", "maxpool2d_1"], start=1)]
    assert len({y for _, y, _, _ in firsts}) == 1
    for (x0, _, w0, _), (x1, _, _, _) in pairwise(firsts):
        assert x0 + w0 < x1
    merge = _rect(groups["concat_1"])
    lowest = max(y + h for x, y, w, h in (_rect(g) for p, g in groups.items() if p.startswith("concat_1.")))
    assert groups["concat_1"].get("class") == "merge" and merge[1] > lowest
    assert "(None, 256, 28, 28)" in _texts(groups["concat_1"])[1]


def test_resnet_shortcut_runs_beside_the_body_inside_the_block_frame():
    groups = _groups(to_svg(_info("resnet18")))
    body = _rect(groups["down_1.residual_1.body.conv2d_1"])
    shortcut = _rect(groups["down_1.residual_1.shortcut.conv2d_1"])
    assert body[1] == shortcut[1] and body[0] + body[2] < shortcut[0]
    add = _rect(groups["down_1.residual_1"])
    assert add[1] > _rect(groups["down_1.residual_1.body.batchnorm_2"])[1]
    frame = _rect(groups["down_1"])
    assert groups["down_1"].get("class") == "frame"
    for inner in (body, shortcut, add):
        assert frame[0] < inner[0] and inner[0] + inner[2] < frame[0] + frame[2]
        assert frame[1] < inner[1] and inner[1] + inner[3] < frame[1] + frame[3]


def test_frame_labels_stay_clear_of_the_wire_entering_at_the_middle():
    for name in ("resnet18", "bigru_text", "spam_lstm_timedistributed", "mobilenet"):
        for frame in layout_picture(_info(name)).frames:
            label = max(text_width(frame.lines[0], FONT_SIZE), text_width(frame.lines[1], SMALL_FONT_SIZE))
            assert FRAME_PAD + label < frame.width // 2, (name, frame.path)


def test_png_has_the_layout_size_and_draws_the_boxes():
    picture = layout_picture(_info("lenet5"))
    image = Image.open(io.BytesIO(picture_png(picture, scale=2)))
    assert image.format == "PNG" and image.size == (picture.width * 2, picture.height * 2)
    assert image.getpixel((1, 1)) == (255, 255, 255)
    conv = next(box for box in picture.boxes if box.path == "conv2d_1")
    inside = ((conv.x + 4) * 2, (conv.y + conv.height // 2) * 2)
    assert image.getpixel(inside) == Image.new("RGB", (1, 1), FILLS["convolution"]).getpixel((0, 0))


def test_png_sizes_follow_the_models():
    sizes = {name: Image.open(io.BytesIO(picture_png(layout_picture(_info(name)), scale=1))).size
             for name in ("lenet5", "inception", "resnet18")}
    assert sizes["resnet18"][1] > sizes["lenet5"][1] > sizes["inception"][1]  # depth
    assert sizes["inception"][0] > sizes["resnet18"][0] > sizes["lenet5"][0]  # branches side by side


def test_a_very_deep_model_is_scaled_down_to_fit_a_png():
    info = spec_compiler.compile_source("input vector 4\nrepeat 300 { dense 4 }\n").info
    picture = layout_picture(info)
    assert picture.height * 2 > MAX_SIDE
    image = Image.open(io.BytesIO(picture_png(picture, scale=2)))
    assert max(image.size) <= MAX_SIDE and image.size[1] > image.size[0]


def _draw(*args: str):
    return CliRunner().invoke(main, ["draw", str(ROOT / "specs" / "inception.spec"), *args])


def test_draw_chooses_the_picture_format_from_the_suffix(tmp_path):
    svg, png = tmp_path / "inception.svg", tmp_path / "inception.png"
    assert _draw("-o", str(svg)).exit_code == 0 and _draw("-o", str(png)).exit_code == 0
    assert ET.fromstring(svg.read_text(encoding="utf-8")).tag == f"{SVG}svg"
    assert Image.open(png).format == "PNG"
    printed = _draw("--format", "svg")
    assert printed.exit_code == 0 and printed.output.startswith("<svg ")
    assert _draw("-o", str(tmp_path / "x.mmd")).exit_code == 0
    assert (tmp_path / "x.mmd").read_text(encoding="utf-8").startswith("flowchart TD")


def test_a_png_needs_a_file():
    result = _draw("--format", "png")
    assert result.exit_code == 2
    assert "write it to a file with -o FILE.png" in result.output


@pytest.mark.parametrize("name", ["inception", "resnet18"])
def test_the_pictures_in_the_docs_are_current(name):
    shipped = (ROOT / "docs" / "img" / f"{name}.svg").read_text(encoding="utf-8")
    assert shipped == to_svg(_info(name)) + "\n", (
        f"docs/img/{name}.svg is stale: specc draw specs/{name}.spec -o docs/img/{name}.svg "
        f"(and -o docs/img/{name}.png)")
