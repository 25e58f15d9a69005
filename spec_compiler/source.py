"""Spec source text: reading a file, decoding it, and the limits checked before parsing.

What people save is not always UTF-8 with LF line endings: Notepad adds a byte-order
mark, Windows writes CRLF, old Mac editors CR alone, some editors put form feeds
between sections, and a file may be Latin-1. All of it becomes the one form the
parser sees (LF line endings, no BOM, form feeds as spaces), so that line and column
numbers in messages are those an editor shows; a file that is not UTF-8 is an error
pointing at its first bad byte.

A spec is checked in well under a second, so anything larger than a hand-written
spec could be is refused before any parsing work: more than MAX_SOURCE_BYTES, or more
than MAX_TOKENS tokens. Without these limits 5 MB of layer lines took 41 s and 1.3 GB.
"""

from __future__ import annotations

import re
from pathlib import Path

from .errors import Diagnostic, Span, SpecError

MAX_SOURCE_BYTES = 1_000_000
# Words, numbers, sizes, symbols, comments and line breaks. The largest bundled spec
# has under 1,000; a 1,000-layer spec written out line by line about 4,000. Checking
# costs about 0.1 ms per layer, and a layer can be as short as two tokens (`relu;`).
MAX_TOKENS = 20_000
MAX_TOKEN_LENGTH = 1_000  # characters in one word, number, size or string (comments: any)
BOM = "\ufeff"

# Roughly the parser's tokens, counted with one C-speed regular expression: a comment
# or a string is one token, a run of line breaks is one.
_TOKEN = re.compile(r"""\#[^\n]*|"[^"\\\n]*(?:\\.[^"\\\n]*)*"?|'[^'\\\n]*(?:\\.[^'\\\n]*)*'?"""
                    r"""|[A-Za-z0-9_.?]+|->|\n\s*|\S""")


def read_spec_file(path: str | Path, normalize: bool = True) -> str:
    """The normalized text of a .spec file (never reads more than the size limit);
    `normalize=False`: the decoded text as it is (`specc fmt` compares against it)."""
    path = Path(path)
    try:
        with open(path, "rb") as stream:
            data = stream.read(MAX_SOURCE_BYTES + 1)
    except OSError as error:
        raise SpecError.at(None, f"cannot read {path}: {error.strerror or error}") from None
    if len(data) > MAX_SOURCE_BYTES:
        raise SpecError.at(None, f"{path} is larger than {MAX_SOURCE_BYTES:,} bytes: too large to be a spec",
                           "a spec describes a network in a few hundred lines; use `repeat` and blocks")
    return decode_source(data, str(path), normalize)


def decode_source(data: bytes, path: str = "<spec>", normalize: bool = True) -> str:
    """Bytes to normalized text; bytes that are not UTF-8 are a SpecError at their line and column."""
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as error:
        before = data[: error.start]
        line = before.count(b"\n") + 1
        column = len(before[before.rfind(b"\n") + 1:].decode("utf-8", "replace")) + 1
        hint = "save the file as UTF-8"
        if data[:2] in (b"\xff\xfe", b"\xfe\xff"):
            hint += " (it is UTF-16)"
        message = f"cannot read {path}: byte 0x{data[error.start]:02x} is not UTF-8 text"
        shown = normalize_source(data.decode("utf-8", "replace"))
        raise SpecError(Diagnostic(message, Span(path, line, column, column + 1), hint), shown) from None
    return normalize_source(text) if normalize else text


def normalize_source(text: str) -> str:
    """Drop a BOM; CRLF and CR become LF; form feeds and vertical tabs become spaces."""
    if text.startswith(BOM):
        text = text[1:]
    if "\r" in text:
        text = text.replace("\r\n", "\n").replace("\r", "\n")
    if "\f" in text or "\v" in text:
        text = text.replace("\f", " ").replace("\v", " ")
    return text


def check_size(text: str, path: str) -> None:
    """Refuse (normalized) text over the size or token limit, before it is parsed."""
    if len(text) > MAX_SOURCE_BYTES:
        raise SpecError.at(None, f"{path} is larger than {MAX_SOURCE_BYTES:,} characters: too large to be a spec",
                           "a spec describes a network in a few hundred lines; use `repeat` and blocks")
    if len(text) <= MAX_TOKEN_LENGTH:  # too short to break either limit
        return
    for count, match in enumerate(_TOKEN.finditer(text), start=1):
        if count > MAX_TOKENS:
            raise SpecError(Diagnostic(f"the spec has more than {MAX_TOKENS:,} tokens (words, numbers and symbols)",
                                       _span_at(text, path, match.start(), 1),
                                       "a spec describes a network in a few hundred lines; "
                                       "use `repeat` and blocks for repeated layers"), text)
        if match.end() - match.start() > MAX_TOKEN_LENGTH and text[match.start()] not in "#\n":
            length = match.end() - match.start()
            raise SpecError(Diagnostic(f"a word, number or string of {length:,} characters: at most "
                                       f"{MAX_TOKEN_LENGTH:,}", _span_at(text, path, match.start(), length)), text)


def _span_at(text: str, path: str, offset: int, length: int) -> Span:
    line = text.count("\n", 0, offset) + 1
    column = offset - (text.rfind("\n", 0, offset) + 1) + 1
    return Span(path, line, column, column + length)

