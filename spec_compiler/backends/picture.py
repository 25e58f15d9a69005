"""Pictures of a checked model: layered boxes top to bottom, branches side by side.

The model is laid out once, here, as positioned boxes, frames and wires; picture_svg.py
and picture_png.py only draw that layout, so the SVG and the PNG agree box for box and
neither needs Graphviz. Text is measured as monospace (DejaVu Sans Mono, which both
writers ask for), so the layout needs no font files.

Each layer is a box with its name, kind, output shape and parameters. A residual, concat
or add puts its bodies side by side (an empty body, the identity shortcut, is a bare wire)
and merges them in a rounded box; a block use, timedistributed or bidirectional is a
dashed frame around its body. A graph spec is drawn in rows: its inputs, then each line
one row below the tensors it reads (a merge of several in a rounded box; a named line's
layers in a frame labelled with its name), then its outputs.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from ..inference import LayerInfo, ModelInfo
from .summary import shape_text

FONT_SIZE = 12  # a box's first line: name and kind
SMALL_FONT_SIZE = 11  # its second line: output shape and parameters
TITLE_FONT_SIZE = 14
CHAR_WIDTH = 0.6  # monospace advance, as a fraction of the font size (DejaVu Sans Mono: 0.602)
LINE_HEIGHT = 16
PAD_X, PAD_Y = 10, 6  # inside a box
GAP = 28  # between layers in a column; wires bend halfway across it
BRANCH_GAP = 24  # between branches side by side
IDENTITY_WIDTH = 24  # the column of an empty body (a bare wire)
FRAME_PAD = 10
LABEL_CLEARANCE = 12  # between a frame's label and the wire entering at the frame's middle
MARGIN = 20
TITLE_HEIGHT = 30
MIN_BOX_WIDTH = 150

INK = "#334155"  # outlines, wires, text
MUTED_INK = "#64748b"  # a box's second line, frame outlines
FRAME_FILL = "#f8fafc"
MERGE_FILL = "#fef3c7"
INPUT_FILL = "#e2e8f0"
FILLS = {  # by the kind's registry category
    "convolution": "#dbeafe",
    "pooling": "#e0f2fe",
    "core": "#f1f5f9",
    "normalization": "#fef9c3",
    "activation": "#dcfce7",
    "recurrent": "#f3e8ff",
    "attention": "#ffe4e6",
    "function": "#f5f5f4",
}
DEFAULT_FILL = "#f3f4f6"  # plugin categories


@dataclass(frozen=True)
class Box:
    """A layer (role "layer"), a merge of branches ("merge") or the input ("input")."""

    x: int
    y: int
    width: int
    height: int
    lines: tuple[str, str]
    role: str
    kind: str
    path: str
    fill: str


@dataclass(frozen=True)
class Frame:
    """A dashed frame around a block use's (or a wrapper's) body, its label at the top left."""

    x: int
    y: int
    width: int
    height: int
    lines: tuple[str, str]
    kind: str
    path: str


@dataclass(frozen=True)
class Wire:
    points: tuple[tuple[int, int], ...]
    arrow: bool  # an arrowhead at the last point


@dataclass
class Picture:
    width: int
    height: int
    title: str
    boxes: list[Box] = field(default_factory=list)
    frames: list[Frame] = field(default_factory=list)
    wires: list[Wire] = field(default_factory=list)

    def connect(self, source: tuple[int, int], ports: list[tuple[int, int, bool]]) -> None:
        """Wire `source` to each port: straight down, or bending just above the port."""
        sx, sy = source
        for x, y, arrow in ports:
            if x == sx:
                self.wires.append(Wire(((sx, sy), (x, y)), arrow))
            else:
                bend = y - GAP // 2
                self.wires.append(Wire(((sx, sy), (sx, bend), (x, bend), (x, y)), arrow))


def text_width(text: str, size: int) -> int:
    return math.ceil(len(text) * size * CHAR_WIDTH)


# Layout elements. Each knows its size; place() draws it into the picture at (left, top)
# and returns its entry ports (x, y, arrowhead wanted) and its exit point.

class _Leaf:
    def __init__(self, lines: tuple[str, str], role: str, kind: str, path: str, fill: str):
        self.lines, self.role, self.kind, self.path, self.fill = lines, role, kind, path, fill
        widest = max(text_width(lines[0], FONT_SIZE), text_width(lines[1], SMALL_FONT_SIZE))
        self.width = max(MIN_BOX_WIDTH, widest + 2 * PAD_X)
        self.height = 2 * LINE_HEIGHT + 2 * PAD_Y

    def place(self, picture: Picture, left: int, top: int):
        picture.boxes.append(Box(left, top, self.width, self.height, self.lines, self.role, self.kind,
                                 self.path, self.fill))
        middle = left + self.width // 2
        return [(middle, top, True)], (middle, top + self.height)


class _Column:
    """Elements one below the other, centred; an empty column is the identity (a wire)."""

    def __init__(self, items: list):
        self.items = items
        layers = [item for item in items if isinstance(item, _Leaf) and item.role == "layer"]
        widest = max((leaf.width for leaf in layers), default=0)
        for leaf in layers:  # one width for the plain layers of a column reads as a stack
            leaf.width = widest
        self.width = max((item.width for item in items), default=IDENTITY_WIDTH)
        self.height = sum(item.height for item in items) + GAP * max(len(items) - 1, 0)

    def place(self, picture: Picture, left: int, top: int, height: int | None = None):
        middle = left + self.width // 2
        entries, exit_point, y = [(middle, top, False)], (middle, top), top
        for index, item in enumerate(self.items):
            ports, bottom = item.place(picture, middle - item.width // 2, y)
            if index == 0:
                entries = ports
            else:
                picture.connect(exit_point, ports)
            exit_point, y = bottom, y + item.height + GAP
        end = top + (self.height if height is None else height)
        if exit_point[1] < end:  # a shorter branch continues as a wire to the merge
            picture.wires.append(Wire((exit_point, (exit_point[0], end)), False))
            exit_point = (exit_point[0], end)
        return entries, exit_point


class _Parallel:
    """Bodies side by side on the same input, merged below (residual, concat, add)."""

    def __init__(self, branches: list[_Column], merge: _Leaf):
        self.branches, self.merge = branches, merge
        self.spread = sum(branch.width for branch in branches) + BRANCH_GAP * (len(branches) - 1)
        self.width = max(self.spread, merge.width)
        self.body_height = max(branch.height for branch in branches)
        self.height = self.body_height + GAP + merge.height

    def place(self, picture: Picture, left: int, top: int):
        x = left + (self.width - self.spread) // 2
        entries, exits = [], []
        for branch in self.branches:
            ports, bottom = branch.place(picture, x, top, self.body_height)
            entries += ports
            exits.append(bottom)
            x += branch.width + BRANCH_GAP
        merge_ports, merge_exit = self.merge.place(
            picture, left + self.width // 2 - self.merge.width // 2, top + self.body_height + GAP)
        for end in exits:
            picture.connect(end, merge_ports)
        return entries, merge_exit


class _Framed:
    """A body inside a dashed frame; the label sits left of the wire that enters at the middle."""

    def __init__(self, lines: tuple[str, str], kind: str, path: str, inner: _Column):
        self.lines, self.kind, self.path, self.inner = lines, kind, path, inner
        label = max(text_width(lines[0], FONT_SIZE), text_width(lines[1], SMALL_FONT_SIZE))
        self.width = max(inner.width + 2 * FRAME_PAD, 2 * (label + FRAME_PAD + LABEL_CLEARANCE))
        self.label_height = 2 * LINE_HEIGHT + PAD_Y
        self.height = self.label_height + GAP + inner.height + FRAME_PAD

    def place(self, picture: Picture, left: int, top: int):
        picture.frames.append(Frame(left, top, self.width, self.height, self.lines, self.kind, self.path))
        middle = left + self.width // 2
        ports, exit_point = self.inner.place(picture, middle - self.inner.width // 2, top + self.label_height + GAP)
        picture.connect((middle, top), ports)
        return [(middle, top, False)], exit_point


def _detail(info: LayerInfo) -> str:
    params = f" · {info.count.total:,} params" if info.count.total else ""
    shared = f" · shares {info.node.shares}" if info.node.shares else ""
    return shape_text(info.output) + params + shared


def _element(info: LayerInfo):
    kind = info.node.kind
    if not info.children:
        activation = getattr(info.node.params, "activation", None)
        title = f"{info.node.name}: {kind}" + (f" + {activation}" if activation else "")
        fill = FILLS.get(info.kind.category, DEFAULT_FILL)
        return _Leaf((title, _detail(info)), "layer", kind, info.path, fill)
    bodies = [_Column([_element(child) for child in body]) for body in info.children]
    merge = info.kind.layout.merge if info.kind.layout else None
    if len(bodies) == 1 and merge is None:
        title = info.node.name if kind == "group" else f"{info.node.name}: {kind}"
        return _Framed((title, _detail(info)), kind, info.path, bodies[0])
    title = f"{info.node.name}: {merge or kind}"
    return _Parallel(bodies, _Leaf((title, _detail(info)), "merge", kind, info.path, MERGE_FILL))


def _graph_rows(info: ModelInfo) -> list[list[tuple[str, object, tuple[str, ...]]]]:
    """A graph spec's rows, top to bottom: (tensor, element, tensors it reads). The inputs
    first; a step one row below the lowest row it reads; the outputs last."""
    rank = {spec.name: 0 for spec in info.ir.inputs}
    rows: list[list] = [[(spec.name, _Leaf((f"{spec.name}: input {spec.kind}", shape_text(spec.type)), "input",
                                           "input", spec.name, INPUT_FILL), ()) for spec in info.ir.inputs]]
    for step in info.steps:
        sources, layers = step.step.sources, step.layers
        items = [_element(layer) for layer in layers]
        if len(sources) > 1:  # the merge head: a merge box the sources' wires meet in
            head = layers[0]
            items[0] = _Leaf((f"{head.node.name}: {head.node.kind}", _detail(head)), "merge", head.node.kind,
                             head.path, MERGE_FILL)
        rank[step.step.name] = 1 + max(rank[source] for source in sources)
        while len(rows) <= rank[step.step.name]:
            rows.append([])
        element = _Column(items)
        if not step.step.name.startswith("_"):  # a named tensor: its layers framed under its name
            element = _Framed((f"{step.step.name} =", shape_text(step.output)), "tensor", step.step.name, element)
        rows[rank[step.step.name]].append((step.step.name, element, sources))
    rows.append([(f"output {name}", _Leaf((f"output {name}", shape_text(t)), "input", "output", name, INPUT_FILL),
                  (name,)) for name, t in info.outputs.items()])
    return rows


def _layout_graph(info: ModelInfo, title: str) -> Picture:
    """Rows of columns side by side, each wired from the bottoms of the tensors it reads
    (a wire that passes rows runs down the gap at the right of the row's items)."""
    rows = _graph_rows(info)
    widths = [sum(item.width for _, item, _ in row) + BRANCH_GAP * (len(row) - 1) for row in rows]
    width = max(max(widths), text_width(title, TITLE_FONT_SIZE)) + 2 * MARGIN
    heights = [max(item.height for _, item, _ in row) for row in rows]
    height = sum(heights) + 2 * GAP * (len(rows) - 1) + TITLE_HEIGHT + 2 * MARGIN
    picture = Picture(width, height, title)
    exits: dict[str, tuple[int, int]] = {}
    top = MARGIN + TITLE_HEIGHT
    for row, row_width, row_height in zip(rows, widths, heights):
        left = (width - row_width) // 2
        for name, item, sources in row:
            ports, exit_point = item.place(picture, left, top)
            for source in sources:
                (sx, sy), (x, _, _) = exits[source], ports[0]
                picture.connect((x, sy) if abs(x - sx) <= 2 else (sx, sy), ports)  # no jog for centring rounding
            exits[name] = exit_point
            left += item.width + BRANCH_GAP
        top += row_height + 2 * GAP
    return picture


def layout_picture(info: ModelInfo) -> Picture:
    """Place every layer of `info`: the picture both writers draw."""
    if not info.ir.is_chain:
        return _layout_graph(info, f"{info.ir.name}: {info.count.total:,} parameters")
    source = info.ir.input
    start = _Leaf((f"{source.name}: input {source.kind}", shape_text(source.type)), "input", "input",
                  source.name, INPUT_FILL)
    column = _Column([start, *(_element(layer) for layer in info.layers)])
    title = f"{info.ir.name}: {info.count.total:,} parameters"
    width = max(column.width, text_width(title, TITLE_FONT_SIZE)) + 2 * MARGIN
    picture = Picture(width, column.height + TITLE_HEIGHT + 2 * MARGIN, title)
    column.place(picture, (width - column.width) // 2, MARGIN + TITLE_HEIGHT)
    return picture
