"""Python source text for `--emit torch`: laying out a constructor call within the line
length, and finding the global names a copied definition reads."""

from __future__ import annotations

import ast
from dataclasses import dataclass

LINE = 100


@dataclass
class Doc:
    """A bracketed expression to lay out: `open` items joined by ", " `close`. A Doc
    with an empty `close` and one item is a prefix (`stride=` value)."""

    open: str
    items: list
    close: str


def flat(doc: Doc | str) -> str:
    if isinstance(doc, str):
        return doc
    if doc.close == "" and len(doc.items) == 1:
        return doc.open + flat(doc.items[0])
    return doc.open + ", ".join(flat(item) for item in doc.items) + doc.close


def render(doc: Doc | str, indent: int, column: int) -> str:
    """Lay out `doc` starting at `column` on a line indented by `indent`: on one line if it
    fits, else hugging its last item (`("name", Residual(`), else one item per line."""
    one_line = flat(doc)
    if isinstance(doc, str) or column + len(one_line) <= LINE:
        return one_line
    if doc.close == "" and len(doc.items) == 1:  # keyword=value
        return doc.open + render(doc.items[0], indent, column + len(doc.open))
    items = doc.items
    if items and isinstance(items[-1], Doc):
        head = doc.open + "".join(flat(item) + ", " for item in items[:-1])
        last = items[-1]
        if column + len(head) + len(last.open) < LINE and len(head) <= LINE // 2:
            return head + render(last, indent, column + len(head)) + doc.close
    inner = indent + 4
    lines = [" " * inner + render(item, inner, inner) + "," for item in items]
    # every line ends in a comma already: a one-element tuple's `,)` closes with `)`
    return doc.open + "\n" + "\n".join(lines) + "\n" + " " * indent + doc.close.lstrip(",")


class _FreeNames(ast.NodeVisitor):
    """Global names a definition reads (annotations left out: the file has
    `from __future__ import annotations`, so they are never evaluated)."""

    def __init__(self):
        self.loaded: set[str] = set()
        self.bound: set[str] = set()

    def visit_Name(self, node: ast.Name) -> None:
        if isinstance(node.ctx, ast.Load):
            self.loaded.add(node.id)
        else:
            self.bound.add(node.id)

    def visit_arg(self, node: ast.arg) -> None:
        self.bound.add(node.arg)  # annotation skipped

    def visit_AnnAssign(self, node: ast.AnnAssign) -> None:
        self.visit(node.target)
        if node.value is not None:
            self.visit(node.value)

    def _function(self, node) -> None:
        self.bound.add(node.name)
        for decorator in node.decorator_list:
            self.visit(decorator)
        self.visit(node.args)
        for statement in node.body:
            self.visit(statement)

    visit_FunctionDef = _function
    visit_AsyncFunctionDef = _function

    def visit_ClassDef(self, node: ast.ClassDef) -> None:
        self.bound.add(node.name)
        for item in (*node.decorator_list, *node.bases, *node.keywords):
            self.visit(item)
        for statement in node.body:
            self.visit(statement)

    def visit_Import(self, node) -> None:
        for alias in node.names:
            self.bound.add((alias.asname or alias.name).split(".")[0])

    visit_ImportFrom = visit_Import

    def visit_ExceptHandler(self, node: ast.ExceptHandler) -> None:
        if node.name:
            self.bound.add(node.name)
        self.generic_visit(node)


def names_in(source: str) -> tuple[set[str], set[str]]:
    """(names read, names bound) in a definition. A name read that is a global of its
    module is copied along even where a local of that name shadows it: that only copies
    more than needed."""
    visitor = _FreeNames()
    visitor.visit(ast.parse(source))
    return visitor.loaded, visitor.bound
