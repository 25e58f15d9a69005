"""Search values: `choice(64, 128)`, `range(0.1, 0.5)`, `log_range(1e-4, 1e-2)` written where a
value goes. Each is named by its spot (spots.py: `dense_1.units`, `train.lr`); a point of the
space gives each a value's text, and the spec at that point is the source with each search
value replaced by it.

The spec's default point: the first choice, the middle of a range, the geometric middle of a
log_range. `specc tune` tries it first, so a search never ends worse than the spec as written.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass

from .. import ast
from ..errors import Diagnostic, SpecError
from .spots import Edit, apply_edits, extent, layers_in_order, spots

SEARCH_WORDS = ("choice", "range", "log_range")
MAX_CHECKED_POINTS = 64  # compile checks every combination up to this many, else each value alone


@dataclass(frozen=True)
class SearchValue:
    """A search value in a spec (`choice(...)`, `range(...)`, `log_range(...)`): its name and domain."""

    name: str
    kind: str  # one of SEARCH_WORDS
    choices: tuple[str, ...]  # choice: each value's text
    low: float = 0.0
    high: float = 0.0
    integer: bool = False  # a range of whole numbers
    call: ast.Call | None = None

    def default(self) -> str:
        if self.kind == "choice":
            return self.choices[0]
        middle = math.sqrt(self.low * self.high) if self.kind == "log_range" else (self.low + self.high) / 2
        return number_text(round(middle) if self.integer else middle)

    def corners(self) -> tuple[str, ...]:
        """The values compile checks: every choice, or both ends of a range."""
        return self.choices if self.kind == "choice" else (number_text(self.low), number_text(self.high))

    def describe(self) -> str:
        if self.kind == "choice":
            return f"choice({', '.join(self.choices)})"
        return f"{self.kind}({number_text(self.low)}, {number_text(self.high)})"

    def to_dict(self) -> dict:
        return {"name": self.name, "kind": self.kind, "choices": list(self.choices) if self.kind == "choice" else None,
                "low": None if self.kind == "choice" else self.low, "high": None if self.kind == "choice" else self.high,
                "integer": self.integer, "default": self.default(), "line": self.call.span.line if self.call else None}


def number_text(value: float) -> str:
    """A number as spec text (a float keeps its exact value)."""
    if isinstance(value, int) or (isinstance(value, float) and value.is_integer() and abs(value) < 1e15):
        return str(int(value)) if isinstance(value, int) else repr(value)
    return repr(value)


def is_search(value: ast.Value) -> bool:
    return isinstance(value, ast.Call) and value.name in SEARCH_WORDS


def search_space(spec: ast.SpecFile) -> dict[str, SearchValue]:
    """The spec's search values by name; SpecError for a malformed one or one in a place
    that has no key (the input line)."""
    lines = spec.source.split("\n")
    found: dict[str, SearchValue] = {}
    seen: set = set()
    problems: list[Diagnostic] = []
    for key, places in spots(spec).items():
        for spot in places:
            if spot.value is None:
                continue
            for name, call in _searches_in(spot.value, key):
                if call.span in seen:
                    continue
                seen.add(call.span)
                if name in found:
                    name = f"{name}@{call.span.line}"
                try:
                    found[name] = _read(name, call, lines)
                except SpecError as error:
                    problems.extend(error.diagnostics)
    for call in _all_search_calls(spec):
        if call.span not in seen:
            problems.append(Diagnostic(f"`{call.name}(...)` cannot be searched here", call.span,
                                       "search values go where a layer, block or train value goes"))
    if problems:
        raise SpecError(sorted(problems, key=lambda d: (d.span.line, d.span.column)), spec.source)
    return dict(sorted(found.items(), key=lambda item: (item[1].call.span.line, item[1].call.span.column)))


def _searches_in(value: ast.Value, key: str):
    if is_search(value):
        yield key, value
        return
    if isinstance(value, ast.Call):
        for index, arg in enumerate(value.args):
            yield from _searches_in(arg, f"{key}.{index}")
        for option in value.options:
            yield from _searches_in(option.value, f"{key}.{option.key}")
    elif isinstance(value, ast.ListValue):
        for index, item in enumerate(value.items):
            yield from _searches_in(item, f"{key}.{index}")


def _values_in(value: ast.Value):
    yield value
    if isinstance(value, ast.Call):
        for item in (*value.args, *(o.value for o in value.options)):
            yield from _values_in(item)
    elif isinstance(value, ast.ListValue):
        for item in value.items:
            yield from _values_in(item)


def _all_search_calls(spec: ast.SpecFile):
    roots: list[ast.Value] = []
    for statement in spec.statements:
        if isinstance(statement, (ast.InputDecl, ast.TrainSection)):
            roots += [*getattr(statement, "args", ()), *(o.value for o in statement.options)]
        elif isinstance(statement, ast.BlockDef):
            roots += [p.default for p in statement.params if p.default is not None]
    for layer in layers_in_order(spec.statements):
        roots += [*layer.args, *(o.value for o in layer.options)]
    return [v for root in roots for v in _values_in(root) if is_search(v)]


def _read(name: str, call: ast.Call, lines: list[str]) -> SearchValue:
    hint = {"choice": "write choice(64, 128, 256)", "range": "write range(0.1, 0.5): low, then high",
            "log_range": "write log_range(1e-4, 1e-2): low, then high, both above 0"}[call.name]
    if call.options or any(is_search(a) for a in call.args):
        raise SpecError.at(call.span, f"`{call.name}` takes plain values, not options or search values", hint)
    if call.name == "choice":
        if not call.args:
            raise SpecError.at(call.span, "`choice` needs at least one value", hint)
        texts = []
        for arg in call.args:
            line, start, end = extent(lines, arg)
            texts.append(lines[line - 1][start - 1:end - 1])
        return SearchValue(name, "choice", tuple(texts), call=call)
    numbers = [a.value for a in call.args if isinstance(a, ast.Number)]
    if len(call.args) != 2 or len(numbers) != 2:
        raise SpecError.at(call.span, f"`{call.name}` needs two numbers", hint)
    low, high = numbers
    if not low < high:
        raise SpecError.at(call.span, f"`{call.name}` needs low < high, got {low} and {high}", hint)
    if call.name == "log_range" and low <= 0:
        raise SpecError.at(call.span, "`log_range` needs numbers above 0", hint)
    integer = all(isinstance(n, int) for n in numbers)
    return SearchValue(name, call.name, (), low, high, integer, call)


def at_point(spec: ast.SpecFile, space: dict[str, SearchValue], point: dict[str, str]) -> str:
    """The source with each search value replaced by the point's text for it."""
    lines = spec.source.split("\n")
    edits = []
    for name, value in space.items():
        line, start, end = extent(lines, value.call)
        edits.append(Edit(line, start, end, point[name]))
    return apply_edits(spec.source, edits)


def default_point(space: dict[str, SearchValue]) -> dict[str, str]:
    return {name: value.default() for name, value in space.items()}


def points_to_check(space: dict[str, SearchValue]) -> list[dict[str, str]]:
    """Every combination of choices and range ends when there are few, else each such value
    alone (the others at their defaults)."""
    names = list(space)
    corners = [space[n].corners() for n in names]
    if math.prod(len(c) for c in corners) <= MAX_CHECKED_POINTS:
        return [dict(zip(names, combo)) for combo in itertools.product(*corners)]
    base = default_point(space)
    return [{**base, name: text} for name in names for text in space[name].corners()]


def space_text(space: dict[str, SearchValue], checked: int) -> str:
    """The space as `specc compile` shows it under the table (the table is the default point)."""
    width = max(len(name) for name in space)
    shown = max(len(value.describe()) for value in space.values())
    lines = [f"Search space: {len(space)} value(s); {checked} point(s) checked; the table shows the default point"]
    lines += [f"  {name.ljust(width)}  {value.describe().ljust(shown)}  default {value.default()}"
              for name, value in space.items()]
    return "\n".join(lines)
