"""`specc draw -o model.png`: the picture's layout drawn with Pillow.

Uses DejaVu Sans Mono when the system has it (the font the layout measures), else
Pillow's own default font; no font is shipped. Drawn at `scale` times the layout's
size (2 by default) so text stays sharp on high-density screens, but never longer
than MAX_SIDE pixels a side: image viewers refuse larger ones, and a very deep model
would otherwise need gigabytes.
"""

from __future__ import annotations

import functools
import io
from itertools import pairwise

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
    Picture,
    layout_picture,
)

MAX_SIDE = 16384
ARROW_LENGTH, ARROW_HALF_WIDTH = 8, 4
DASH, DASH_GAP = 5, 3


@functools.lru_cache(maxsize=16)
def _font(size: float, bold: bool):
    from PIL import ImageFont

    try:
        return ImageFont.truetype("DejaVuSansMono-Bold.ttf" if bold else "DejaVuSansMono.ttf", size)
    except OSError:
        return ImageFont.load_default(size)


class _Canvas:
    """Draws in layout units; everything is multiplied by the scale here."""

    def __init__(self, picture: Picture, scale: float):
        from PIL import Image, ImageDraw

        self.scale = min(scale, MAX_SIDE / max(picture.width, picture.height))
        size = (round(picture.width * self.scale), round(picture.height * self.scale))
        self.image = Image.new("RGB", size, "white")
        self.draw = ImageDraw.Draw(self.image)

    def _xy(self, *values: float) -> list[float]:
        return [value * self.scale for value in values]

    def rectangle(self, x, y, width, height, radius, fill, outline=None) -> None:
        self.draw.rounded_rectangle(self._xy(x, y, x + width, y + height), radius=radius * self.scale,
                                    fill=fill, outline=outline, width=max(1, round(self.scale)))

    def dashed_outline(self, x, y, width, height, colour) -> None:
        corners = [(x, y), (x + width, y), (x + width, y + height), (x, y + height), (x, y)]
        for (x0, y0), (x1, y1) in pairwise(corners):
            length = abs(x1 - x0) + abs(y1 - y0)
            step = 0.0
            while step < length:
                end = min(step + DASH, length)
                a, b = step / length, end / length
                self.line([(x0 + (x1 - x0) * a, y0 + (y1 - y0) * a), (x0 + (x1 - x0) * b, y0 + (y1 - y0) * b)],
                          colour)
                step += DASH + DASH_GAP

    def line(self, points, colour) -> None:
        self.draw.line([tuple(self._xy(x, y)) for x, y in points], fill=colour,
                       width=max(1, round(1.2 * self.scale)), joint="curve")

    def arrowhead(self, tail: tuple[int, int], tip: tuple[int, int], colour) -> None:
        (tx, ty), (x, y) = tail, tip
        length = max(((x - tx) ** 2 + (y - ty) ** 2) ** 0.5, 1e-9)
        ux, uy = (x - tx) / length, (y - ty) / length
        bx, by = x - ux * ARROW_LENGTH, y - uy * ARROW_LENGTH
        points = [(x, y), (bx - uy * ARROW_HALF_WIDTH, by + ux * ARROW_HALF_WIDTH),
                  (bx + uy * ARROW_HALF_WIDTH, by - ux * ARROW_HALF_WIDTH)]
        self.draw.polygon([tuple(self._xy(px, py)) for px, py in points], fill=colour)

    def text(self, x, y, text: str, size: int, colour, centred: bool = False, bold: bool = False) -> None:
        font = _font(size * self.scale, bold)
        left = x * self.scale - (self.draw.textlength(text, font=font) / 2 if centred else 0)
        self.draw.text((left, y * self.scale), text, font=font, fill=colour)


def picture_png(picture: Picture, scale: float = 2) -> bytes:
    canvas = _Canvas(picture, scale)
    canvas.text(MARGIN, MARGIN, picture.title, TITLE_FONT_SIZE, INK, bold=True)
    for frame in picture.frames:
        canvas.rectangle(frame.x, frame.y, frame.width, frame.height, 8, FRAME_FILL)
        canvas.dashed_outline(frame.x, frame.y, frame.width, frame.height, MUTED_INK)
        canvas.text(frame.x + FRAME_PAD, frame.y + PAD_Y, frame.lines[0], FONT_SIZE, INK, bold=True)
        canvas.text(frame.x + FRAME_PAD, frame.y + PAD_Y + LINE_HEIGHT, frame.lines[1], SMALL_FONT_SIZE, MUTED_INK)
    for wire in picture.wires:
        canvas.line(wire.points, INK)
        if wire.arrow:
            canvas.arrowhead(wire.points[-2], wire.points[-1], INK)
    for box in picture.boxes:
        radius = box.height // 2 if box.role != "layer" else 4
        canvas.rectangle(box.x, box.y, box.width, box.height, radius, box.fill, INK)
        middle = box.x + box.width / 2
        canvas.text(middle, box.y + PAD_Y, box.lines[0], FONT_SIZE, INK, centred=True, bold=True)
        canvas.text(middle, box.y + PAD_Y + LINE_HEIGHT, box.lines[1], SMALL_FONT_SIZE, MUTED_INK, centred=True)
    buffer = io.BytesIO()
    canvas.image.save(buffer, format="PNG", optimize=True)
    return buffer.getvalue()


def to_png(info: ModelInfo, scale: float = 2) -> bytes:
    return picture_png(layout_picture(info), scale)
