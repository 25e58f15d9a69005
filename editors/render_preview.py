"""Render docs/img/editor-preview.png: what VS Code shows for a .spec file with the
extension, as a picture for docs/editors.md.

It is a rendering, not a screenshot (VS Code cannot run headless where the docs are
built), but every part of it is real: the colours come from the extension's TextMate
grammar run by vscode-textmate (editors/vscode/test/tokenize.js, so node and `npm ci`
in editors/vscode are needed), the hints from specc's inference in the language
server's format (`→ 6x28x28 · 156 params`), and the error from compiling the same file
with its `flatten` removed.

    python editors/render_preview.py [-o docs/img/editor-preview.png]
"""

from __future__ import annotations

import argparse
import io
import json
import subprocess
import tempfile
from pathlib import Path

from PIL import Image, ImageDraw, ImageFont

import spec_compiler
from spec_compiler.files import write_bytes_atomic, write_text_atomic

ROOT = Path(__file__).resolve().parent.parent
SPEC = ROOT / "specs" / "lenet5.spec"

FONT_SIZE, HINT_FONT_SIZE, LINE_HEIGHT = 14, 12, 22
GUTTER, TOP, WIDTH = 48, 36, 980
BACKGROUND, TAB_BAR, TEXT, LINE_NUMBER = "#1e1e1e", "#252526", "#d4d4d4", "#858585"
HINT_BACKGROUND, HINT_TEXT = "#2d2d30", "#9d9d9d"
ERROR, HOVER_BACKGROUND, HOVER_BORDER = "#f14c4c", "#252526", "#454545"
CAPTION_BACKGROUND, CAPTION_TEXT = "#f3f4f6", "#1f2937"
# VS Code's Dark+ theme, by scope prefix (the most specific prefix wins)
SCOPE_COLOURS = {
    "comment": "#6a9955",
    "keyword.operator": "#d4d4d4",
    "keyword": "#c586c0",
    "support.function": "#dcdcaa",
    "entity.name.function": "#dcdcaa",
    "entity.name.type": "#4ec9b0",
    "support.type": "#4ec9b0",
    "support.constant": "#4fc1ff",
    "constant.numeric": "#b5cea8",
    "constant.language": "#569cd6",
    "string": "#ce9178",
    "variable": "#9cdcfe",
    "punctuation": "#d4d4d4",
    "invalid": "#f44747",
}


def _font(size: int, bold: bool = False):
    try:
        return ImageFont.truetype("DejaVuSansMono-Bold.ttf" if bold else "DejaVuSansMono.ttf", size)
    except OSError:
        return ImageFont.load_default(size)


def tokenize(texts: dict[str, str]) -> dict[str, list]:
    """Scopes from the extension's grammar, run by vscode-textmate under node."""
    with tempfile.TemporaryDirectory() as folder:
        paths = {}
        for name, text in texts.items():
            paths[name] = str(Path(folder) / f"{name}.spec")
            write_text_atomic(paths[name], text)
        result = subprocess.run(["node", "test/tokenize.js", *paths.values()], cwd=ROOT / "editors" / "vscode",
                                capture_output=True, text=True, check=True, timeout=60)
    tokens = json.loads(result.stdout)
    return {name: tokens[path] for name, path in paths.items()}


def line_hints(source: str) -> dict[int, str]:
    """Per line: the output of its last layer and the parameters of its layers."""
    by_line: dict[int, list] = {}
    for layer in spec_compiler.compile_source(source, SPEC.name).info.layers:
        by_line.setdefault(layer.node.span.line, []).append(layer)
    hints = {}
    for line, layers in by_line.items():
        params = sum(layer.count.total for layer in layers)
        hints[line] = f"→ {layers[-1].output}" + (f" · {params:,} params" if params else "")
    return hints


def _colour(scopes: list[str]) -> str:
    best, colour = -1, TEXT
    for scope in scopes:
        for prefix, candidate in SCOPE_COLOURS.items():
            if scope.startswith(prefix) and len(prefix) > best:
                best, colour = len(prefix), candidate
    return colour


class _Editor:
    """One editor pane: a tab, line numbers, coloured code."""

    def __init__(self, draw: ImageDraw.ImageDraw, top: int, source: str, tokens: list, room: int = 0):
        self.draw, self.top, self.lines = draw, top, source.splitlines()
        self.font, self.char = _font(FONT_SIZE), _font(FONT_SIZE).getlength("m")
        self.height = TOP + LINE_HEIGHT * (len(self.lines) + room) + 16
        draw.rectangle((0, top, WIDTH, top + self.height), fill=BACKGROUND)
        draw.rectangle((0, top, WIDTH, top + 30), fill=TAB_BAR)
        draw.rectangle((0, top, 150, top + 30), fill=BACKGROUND)
        draw.text((14, top + 8), SPEC.name, font=_font(13), fill="#ffffff")
        for number in range(1, len(self.lines) + 1):
            draw.text((GUTTER - 12, self.y(number)), str(number), font=self.font, fill=LINE_NUMBER, anchor="ra")
        for line, start, _end, text, scopes in tokens:
            draw.text((self.x(start), self.y(line)), text, font=self.font, fill=_colour(scopes))

    def x(self, column: int) -> float:
        return GUTTER + 8 + column * self.char

    def y(self, line: int) -> float:
        return self.top + TOP + (line - 1) * LINE_HEIGHT + 3

    def hint(self, line: int, text: str) -> None:
        left = self.x(len(self.lines[line - 1]) + 1)
        font = _font(HINT_FONT_SIZE)
        width = font.getlength(text)
        self.draw.rounded_rectangle((left, self.y(line) - 1, left + width + 10, self.y(line) + 17), 4,
                                    fill=HINT_BACKGROUND)
        self.draw.text((left + 5, self.y(line) + 1), text, font=font, fill=HINT_TEXT)

    def squiggle(self, line: int, start: int, end: int) -> None:
        base, x = self.y(line) + 17, self.x(start)
        points = []
        while x <= self.x(end):
            points.append((x, base + (2 if len(points) % 2 else 0)))
            x += 2
        self.draw.line(points, fill=ERROR, width=1)

    def hover(self, line: int, column: int, lines: list[str]) -> None:
        font = _font(13)
        left, top = self.x(column), self.y(line) + 22
        width = max(font.getlength(text) for text in lines) + 24
        self.draw.rectangle((left, top, left + width, top + 14 + 20 * len(lines)), fill=HOVER_BACKGROUND,
                            outline=HOVER_BORDER)
        for index, text in enumerate(lines):
            self.draw.text((left + 12, top + 8 + 20 * index), text, font=font, fill=ERROR if index == 0 else TEXT)


def _caption(draw: ImageDraw.ImageDraw, top: int, text: str) -> int:
    draw.rectangle((0, top, WIDTH, top + 34), fill=CAPTION_BACKGROUND)
    draw.text((14, top + 9), text, font=_font(14, bold=True), fill=CAPTION_TEXT)
    return top + 34


def render() -> bytes:
    good = SPEC.read_text(encoding="utf-8")
    bad = good.replace("flatten\n", "", 1)
    try:
        spec_compiler.compile_source(bad, SPEC.name)
    except spec_compiler.SpecError as error:
        (mistake,) = error.diagnostics
    else:
        raise SystemExit(f"{SPEC} compiled without its flatten: this rendering needs a new mistake")
    tokens = tokenize({"good": good, "bad": bad})
    hover_room = 4  # blank lines below the last one, for the error's hover
    lines = len(good.splitlines()) + len(bad.splitlines()) + hover_room
    image = Image.new("RGB", (WIDTH, 2 * (34 + TOP + 16) + LINE_HEIGHT * lines + 36), CAPTION_BACKGROUND)
    draw = ImageDraw.Draw(image)
    top = _caption(draw, 0, "Inlay hints: each line's output shape and parameters (from specc lsp)")
    editor = _Editor(draw, top, good, tokens["good"])
    for line, text in line_hints(good).items():
        editor.hint(line, text)
    top = _caption(draw, top + editor.height, "A diagnostic: the same file without `flatten`, as you type")
    editor = _Editor(draw, top, bad, tokens["bad"], room=hover_room)
    span = mistake.span
    editor.squiggle(span.line, span.column - 1, (span.end_column or span.column + 1) - 1)
    editor.hover(span.line, span.column - 1, [f"error: {mistake.message}", f"hint: {mistake.hint}", "specc"])
    draw.text((14, image.height - 26), "A rendering, not a screenshot: grammar colours via vscode-textmate, "
              "hints and error from specc.", font=_font(12), fill="#6b7280")
    buffer = io.BytesIO()
    image.save(buffer, format="PNG", optimize=True)
    return buffer.getvalue()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-o", "--output", default=str(ROOT / "docs" / "img" / "editor-preview.png"))
    output = parser.parse_args().output
    write_bytes_atomic(output, render())
    print(f"wrote {output}")


if __name__ == "__main__":
    main()
