"""Small text helpers shared by the export modules' error messages and report."""

from __future__ import annotations


def first_line(error: BaseException) -> str:
    """An exception's first line (tools put stack dumps and graphs after it)."""
    text = str(error).strip().splitlines()
    return text[0] if text else type(error).__name__


def listing(items: list[str], limit: int = 6) -> str:
    """`a`, `b`, ... (and N more): names quoted, phrases as they are."""
    shown = ", ".join(f"`{i}`" if " " not in i else i for i in items[:limit])
    return shown + (f" (and {len(items) - limit} more)" if len(items) > limit else "")


def dims_text(shape) -> str:
    """(6, 1, 5, 5) -> 6x1x5x5."""
    return "x".join(map(str, shape)) or "scalar"


def megabytes(n: int) -> str:
    return f"{n / 1e6:.2f} MB" if n >= 1e5 else f"{n / 1e3:.1f} kB"
