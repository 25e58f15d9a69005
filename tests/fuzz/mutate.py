"""Damaging real specs: at the byte, token and structure level.

Token mutations swap numbers for huge, negative, zero, `?` or thousands of digits,
words for other layer words, aliases and keywords, and break arrows. Structure
mutations duplicate, delete, swap and move lines, unbalance braces, wrap lines in
`repeat`, `residual`, `concat` or deep nests, and insert comments where they are
easy to lose. Encoding mutations change line endings (CRLF, CR), indentation (tabs),
add form feeds, a BOM, NUL, U+2028 or bytes that are not UTF-8 (those cases are
bytes, read the way `specc` reads a file).
"""

from __future__ import annotations

import random
import re

from spec_compiler import REGISTRY

NUMBERS = ["0", "-1", "1", "2", "?", "-0", "1e309", "1e-400", "2147483648", "9223372036854775808", "0.0", ".5",
           "9" * 25, "9" * 5000, "1" + "0" * 400, "3x3", "0x0", "?x?", "1x1x1x1x1", "99999x99999"]
WORDS = REGISTRY.words() + ["repeat", "branch", "shortcut", "block", "model", "input", "train", "true", "false",
                            "same", "valid", "none", "?", "T", "_", "__class__", "training", "x"]
SNIPPETS = ["->", "-> ->", "{", "}", "{ }", "(", ")", "[", "]", "=", ",", ";", "#", "# c", "\\\n", "?", "\"", "'",
            "x", "\n", "\t", "name=a", "name=training", "frozen=true", "repeat 3 {", "branch {", "shortcut {"]
NUMBER = re.compile(r"(?<![A-Za-z_0-9.])[-+]?[0-9]+(?:\.[0-9]*)?(?:[eE][-+]?[0-9]+)?(?:x[0-9?]+)*")
WORD = re.compile(r"(?<![A-Za-z_0-9.])[A-Za-z_][A-Za-z0-9_]*")


def mutate(text: str, rng: random.Random) -> str | bytes:
    """1-4 mutations of `text`; bytes when an encoding mutation made it so."""
    result: str | bytes = text
    for _ in range(rng.randint(1, 4)):
        if isinstance(result, bytes):
            break
        operation = rng.choice(OPERATIONS)
        result = operation(result, rng)
    return result


# --- tokens ------------------------------------------------------------------------

def swap_number(text: str, rng: random.Random) -> str:
    matches = list(NUMBER.finditer(text))
    if not matches:
        return text
    m = rng.choice(matches)
    return text[: m.start()] + rng.choice(NUMBERS) + text[m.end():]


def swap_word(text: str, rng: random.Random) -> str:
    matches = list(WORD.finditer(text))
    if not matches:
        return text
    m = rng.choice(matches)
    return text[: m.start()] + rng.choice(WORDS) + text[m.end():]


def insert_snippet(text: str, rng: random.Random) -> str:
    at = rng.randint(0, len(text))
    return text[:at] + rng.choice(SNIPPETS) + text[at:]


def delete_span(text: str, rng: random.Random) -> str:
    at = rng.randint(0, len(text))
    return text[:at] + text[at + rng.randint(1, 8):]


def break_arrows(text: str, rng: random.Random) -> str:
    return rng.choice([text.replace("->", "\n", 1), text.replace("->", "-> ->", 1), text.replace("->", "- >", 1),
                       text.replace("\n", " ->\n", 1), text.replace("->", "->\n# note\n", 1)])


# --- structure ---------------------------------------------------------------------

def _lines(text: str) -> list[str]:
    return text.split("\n")


def duplicate_line(text: str, rng: random.Random) -> str:
    lines = _lines(text)
    i = rng.randrange(len(lines))
    lines.insert(rng.randint(0, len(lines)), lines[i])
    return "\n".join(lines)


def delete_line(text: str, rng: random.Random) -> str:
    lines = _lines(text)
    del lines[rng.randrange(len(lines))]
    return "\n".join(lines)


def swap_lines(text: str, rng: random.Random) -> str:
    lines = _lines(text)
    i, j = rng.randrange(len(lines)), rng.randrange(len(lines))
    lines[i], lines[j] = lines[j], lines[i]
    return "\n".join(lines)


def unbalance_braces(text: str, rng: random.Random) -> str:
    braces = [i for i, c in enumerate(text) if c in "{}"]
    if braces and rng.random() < 0.6:
        i = rng.choice(braces)
        return text[:i] + text[i + 1:]
    at = rng.randint(0, len(text))
    return text[:at] + rng.choice(["{", "}", "}}", "{{", " { ", "\n}\n"]) + text[at:]


def wrap_lines(text: str, rng: random.Random) -> str:
    """Put a run of lines inside a structural body (or an empty or huge repeat)."""
    lines = _lines(text)
    i = rng.randrange(len(lines))
    j = min(len(lines), i + rng.randint(1, 4))
    inner = "\n".join(lines[i:j])
    if rng.random() < 0.01:  # rare: a known hang (tests/fuzz/known.py) costs the oracle's whole time limit
        return "\n".join(lines[:i] + ["repeat 1000000000 { # only a comment\n}", inner] + lines[j:])
    wrapper = rng.choice([
        f"repeat {rng.choice(['2', '3', '0', '1000000000', '-2', '?'])} {{\n{inner}\n}}",
        f"residual {{\n{inner}\n}}",
        f"residual {{\n{inner}\nshortcut {{ }}\n}}",
        f"concat {{ branch {{\n{inner}\n}}; branch {{ }} }}",
        f"add {{ branch {{\n{inner}\n}}; branch {{\n{inner}\n}} }}",
        f"group {{\n{inner}\n}}",
        f"timedistributed {{\n{inner}\n}}",
        f"bidirectional {{\n{inner}\n}}",
        f"block w({rng.choice(['', 'a', 'a, b=2', 'a, a'])}) {{\n{inner}\n}}\nw 3",
    ])
    return "\n".join(lines[:i] + [wrapper] + lines[j:])


def nest_deep(text: str, rng: random.Random) -> str:
    depth = rng.choice([10, 49, 50, 51, 200])
    lines = _lines(text)
    i = rng.randrange(len(lines))
    lines[i] = "group { " * depth + lines[i] + " }" * depth
    return "\n".join(lines)


def insert_comment(text: str, rng: random.Random) -> str:
    """A comment where a formatter can lose it: after `}`, after `->`, on continuation lines."""
    spots = [m.end() for m in re.finditer(r"}|->|\\\n|$", text, flags=re.MULTILINE)]
    at = rng.choice(spots) if spots and rng.random() < 0.7 else rng.randint(0, len(text))
    comment = rng.choice([" # after", "  # x -> y { }", "# \"quoted\"", " #", "\n# whole line\n"])
    return text[:at] + comment + text[at:]


def blank_lines(text: str, rng: random.Random) -> str:
    lines = _lines(text)
    lines.insert(rng.randint(0, len(lines)), rng.choice(["", "   ", "\t", ";", ";;"]))
    return "\n".join(lines)


# --- encoding ----------------------------------------------------------------------

def line_endings(text: str, rng: random.Random) -> str:
    return rng.choice([text.replace("\n", "\r\n"), text.replace("\n", "\r"), text.rstrip("\n"), text + "\r"])


def whitespace(text: str, rng: random.Random) -> str:
    return rng.choice([text.replace("  ", "\t"), text.replace(" ", "\t", 3), text.replace("\n", "\n\f", 2),
                       text.replace(" ", "\f", 1), text.replace(" ", "\v", 1), text.replace(" ", "\u00a0", 1),
                       "\ufeff" + text, text.replace("\n", "\u2028", 1), text.replace(" ", "\x00", 1),
                       text.replace(" ", "\x1b[31m", 1)])


def encoding(text: str, rng: random.Random) -> bytes:
    data = text.encode("utf-8")
    at = rng.randint(0, len(data))
    return rng.choice([
        b"\xef\xbb\xbf" + data,
        data[:at] + rng.choice([b"\xff", b"\xe9", b"\xc3", b"\x80", b"\xed\xa0\x80"]) + data[at:],
        text.encode("utf-16"),
        text.encode("latin-1", "replace") + b"# caf\xe9\n",
        data.replace(b"\n", b"\r\n"),
    ])


OPERATIONS = [swap_number, swap_number, swap_word, insert_snippet, delete_span, break_arrows,
              duplicate_line, delete_line, swap_lines, unbalance_braces, wrap_lines, wrap_lines, nest_deep,
              insert_comment, insert_comment, blank_lines, line_endings, whitespace, encoding]
