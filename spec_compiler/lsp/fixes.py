"""Quick fixes: the "did you mean" suggestion of a diagnostic, and the usual fix of a
shape error (insert the layer its hint names, e.g. `flatten`; give a residual whose body
changes the shape a projection shortcut).

A shape fix is offered only when re-checking the edited text shows that it removes the
error: an editor must never propose an edit that does not help.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from lsprotocol import types

from ..errors import Diagnostic, suggestion
from ..inference import Limits
from ..layers import REGISTRY
from ..shapes import TensorType
from .analysis import Analysis, analyze
from .outline import layer_sites
from .positions import Positions

_INSERT_BEFORE = re.compile(r"add `([a-z_][a-z0-9_]*)` before it")
_WORD = re.compile(r"[A-Za-z_][A-Za-z0-9_.]*")
SEQUENCE_KIND = "group"  # what every block use becomes: a residual written as one shows its body's output


@dataclass(frozen=True)
class Insertion:
    offset: int
    text: str


def code_actions(analysis: Analysis, positions: Positions, lsp_diagnostics: dict[Diagnostic, types.Diagnostic],
                 wanted: types.Range, uri: str, limits: Limits) -> list[types.CodeAction]:
    """Fixes for the diagnostics on the lines of `wanted` (lsp_diagnostics: each of the
    analysis' diagnostics as it was published)."""
    actions = []
    for diagnostic, published in lsp_diagnostics.items():
        if diagnostic.span is None or not wanted.start.line <= diagnostic.span.line - 1 <= wanted.end.line:
            continue
        word = suggestion(diagnostic.hint)
        written = positions.span_text(diagnostic.span)
        if word and diagnostic.span.end_column and _WORD.fullmatch(written) and written != word:
            edit = types.TextEdit(range=published.range, new_text=word)
            actions.append(_action(f"Change `{written}` to `{word}`", uri, [edit], published, preferred=True))
            continue
        fix = _shape_fix(analysis, positions, diagnostic, limits)
        if fix is not None:
            title, insertion = fix
            edit = types.TextEdit(range=positions.offset_range(insertion.offset, insertion.offset), new_text=insertion.text)
            actions.append(_action(title, uri, [edit], published, preferred=True))
    return actions


def _action(title: str, uri: str, edits: list[types.TextEdit], diagnostic: types.Diagnostic,
            preferred: bool) -> types.CodeAction:
    return types.CodeAction(title=title, kind=types.CodeActionKind.QuickFix, diagnostics=[diagnostic],
                            is_preferred=preferred, edit=types.WorkspaceEdit(changes={uri: edits}))


def _shape_fix(analysis: Analysis, positions: Positions, diagnostic: Diagnostic,
               limits: Limits) -> tuple[str, Insertion] | None:
    """The first candidate fix that re-checking shows to remove the error."""
    if analysis.spec is None or not diagnostic.hint:
        return None
    match = _INSERT_BEFORE.search(diagnostic.hint)
    if match and REGISTRY.lookup(match.group(1)):
        candidates = [(f"Insert `{match.group(1)}` before it", _insert_layer_before(positions, diagnostic, match.group(1)))]
    elif diagnostic.hint.startswith("add a projection inside the residual"):
        candidates = _projection_shortcuts(analysis, positions, diagnostic, limits)
    else:
        return None
    return next((fix for fix in candidates if _removes(analysis, positions, diagnostic, fix[1], limits)), None)


def _insert_layer_before(positions: Positions, diagnostic: Diagnostic, word: str) -> Insertion:
    span = diagnostic.span
    before = positions.lines[span.line - 1][: span.column - 1]
    offset = positions.offset(span.line, span.column)
    if before.strip():
        return Insertion(offset, f"{word} -> ")
    return Insertion(offset, f"{word}\n{before}")


def _projection_shortcuts(analysis: Analysis, positions: Positions, diagnostic: Diagnostic,
                          limits: Limits) -> list[tuple[str, Insertion]]:
    """`shortcut { conv C 1x1 stride=S }` with C and S read off the body: inference of the
    same text with the residual written as a plain group gives the body's input and output.
    Inside a block, C may be one of the block's parameters (then every use is fixed)."""
    site = next((s for s in layer_sites(analysis.spec) if s.layer.span == diagnostic.span and s.layer.body), None)
    kind = REGISTRY.lookup(site.layer.word) if site else None
    if kind is None or kind.layout is None or kind.layout.form != "main_and_marked":
        return []
    start = positions.offset(site.layer.span.line, site.layer.span.column)
    end = start + len(site.layer.word)
    as_group = analyze(analysis.source[:start] + SEQUENCE_KIND + analysis.source[end:], analysis.path, limits)
    group_span = next((span for span in as_group.infos_by_span
                       if (span.line, span.column) == (site.layer.span.line, site.layer.span.column)), None)
    body = analysis.braces.body_after(start)
    if group_span is None or body is None or body[1] is None:
        return []
    info = as_group.infos_by_span[group_span][0]
    names = [p.name for p in site.block.params] if site.block else []
    close = body[1]
    line, column = positions.line_column(close)
    inline = bool(positions.lines[line - 1][: column - 1].strip())
    body_line = positions.lines[line - 2] if line >= 2 else ""
    indent = body_line[: len(body_line) - len(body_line.lstrip())]
    fixes = []
    for projection in _projections(info.input, info.output, names):
        statement = f"{kind.layout.marker} {{ {projection} }}"
        if inline:
            insertion = Insertion(len(analysis.source[:close].rstrip()), f"; {statement}")
        else:
            insertion = Insertion(positions.offset(line, 1), f"{indent}{statement}\n")
        fixes.append((f"Add a projection shortcut: `{statement}`", insertion))
    return fixes


def _projections(x: TensorType, y: TensorType, names: list[str]) -> list[str]:
    """Layers that map the residual's input to its body's output shape, their size given
    by each of `names` (block parameters) and then as a number."""
    if not (x.is_static and y.is_static) or x.rank != y.rank:
        return []
    sizes = [*names, str(y.dims[0] if x.rank == 3 else y.dims[-1])]
    if x.rank == 3:
        (height, width), (out_h, out_w) = x.dims[1:], y.dims[1:]
        for stride in range(1, max(height, width) + 1):
            if -(-height // stride) == out_h and -(-width // stride) == out_w:
                return [f"conv {size} 1x1" + (f" stride={stride}" if stride > 1 else "") for size in sizes]
        return []
    if x.rank in (1, 2) and x.dims[:-1] == y.dims[:-1]:
        return [f"dense {size}" for size in sizes]
    return []


def _removes(analysis: Analysis, positions: Positions, diagnostic: Diagnostic, insertion: Insertion,
             limits: Limits) -> bool:
    """Whether the text with `insertion` no longer has the diagnostic (moved along with the
    text after it), and has no new error inside the inserted text."""
    fixed = analyze(analysis.source[: insertion.offset] + insertion.text + analysis.source[insertion.offset:],
                    analysis.path, limits)
    fixed_positions = Positions(fixed.source)
    original = positions.offset(diagnostic.span.line, diagnostic.span.column)
    moved = original + (len(insertion.text) if original >= insertion.offset else 0)
    for found in fixed.diagnostics:
        if found.span is None:
            return False
        at = fixed_positions.offset(found.span.line, found.span.column)
        if (found.message == diagnostic.message and at == moved) or \
                insertion.offset <= at < insertion.offset + len(insertion.text):
            return False
    return True
