"""`specc draw -o model.svg`: the picture's layout written as SVG text, by hand.

Every box is a `<g>` with `class` (layer, merge or input, and frame for frames) and
`data-path` / `data-kind`, so scripts and tests can find a layer by its summary name.
"""

from __future__ import annotations

from xml.sax.saxutils import escape, quoteattr

from ..inference import ModelInfo
from .picture import (
    FONT_SIZE,
    FRAME_FILL,
    FRAME_PAD,
    INK,
    LINE_HEIGHT,
    MARGIN,
    MUTED_INK,
    PAD_Y,
    SMALL_FONT_SIZE,
    TITLE_FONT_SIZE,
    Box,
    Frame,
    Picture,
    Wire,
    layout_picture,
)

FONT_FAMILY = "DejaVu Sans Mono, Menlo, Consolas, monospace"
BASELINE = LINE_HEIGHT - 4  # from the top of a text line to its baseline


def _text(x: int, y: int, text: str, size: int, colour: str, anchor: str = "start", bold: bool = False) -> str:
    weight = ' font-weight="bold"' if bold else ""
    return (f'<text x="{x}" y="{y}" font-size="{size}" fill="{colour}" text-anchor="{anchor}"{weight}>'
            f"{escape(text)}</text>")


def _frame(frame: Frame) -> str:
    x = frame.x + FRAME_PAD
    y = frame.y + PAD_Y + BASELINE
    return (f'<g class="frame" data-path={quoteattr(frame.path)} data-kind={quoteattr(frame.kind)}>'
            f'<rect x="{frame.x}" y="{frame.y}" width="{frame.width}" height="{frame.height}" rx="8" '
            f'fill="{FRAME_FILL}" stroke="{MUTED_INK}" stroke-dasharray="5 3"/>'
            + _text(x, y, frame.lines[0], FONT_SIZE, INK, bold=True)
            + _text(x, y + LINE_HEIGHT, frame.lines[1], SMALL_FONT_SIZE, MUTED_INK) + "</g>")


def _wire(wire: Wire) -> str:
    points = " ".join(f"{x},{y}" for x, y in wire.points)
    arrow = ' marker-end="url(#arrow)"' if wire.arrow else ""
    return f'<polyline points="{points}" fill="none" stroke="{INK}" stroke-width="1.2"{arrow}/>'


def _box(box: Box) -> str:
    radius = box.height // 2 if box.role != "layer" else 4
    middle = box.x + box.width // 2
    y = box.y + PAD_Y + BASELINE
    return (f'<g class="{box.role}" data-path={quoteattr(box.path)} data-kind={quoteattr(box.kind)}>'
            f'<rect x="{box.x}" y="{box.y}" width="{box.width}" height="{box.height}" rx="{radius}" '
            f'fill="{box.fill}" stroke="{INK}"/>'
            + _text(middle, y, box.lines[0], FONT_SIZE, INK, "middle", bold=True)
            + _text(middle, y + LINE_HEIGHT, box.lines[1], SMALL_FONT_SIZE, MUTED_INK, "middle") + "</g>")


def picture_svg(picture: Picture) -> str:
    lines = [
        (f'<svg xmlns="http://www.w3.org/2000/svg" width="{picture.width}" height="{picture.height}" '
         f'viewBox="0 0 {picture.width} {picture.height}" font-family="{FONT_FAMILY}">'),
        f"<title>{escape(picture.title)}</title>",
        ('<defs><marker id="arrow" viewBox="0 0 10 10" refX="10" refY="5" markerWidth="7" markerHeight="7" '
         f'orient="auto"><path d="M0,0 L10,5 L0,10 z" fill="{INK}"/></marker></defs>'),
        f'<rect width="{picture.width}" height="{picture.height}" fill="white"/>',
        _text(MARGIN, MARGIN + TITLE_FONT_SIZE, picture.title, TITLE_FONT_SIZE, INK, bold=True),
        *(_frame(frame) for frame in picture.frames),
        *(_wire(wire) for wire in picture.wires),
        *(_box(box) for box in picture.boxes),
        "</svg>",
    ]
    return "\n".join(lines)


def to_svg(info: ModelInfo) -> str:
    return picture_svg(layout_picture(info))
