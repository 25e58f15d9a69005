"""Property tests of integer expressions: drawn expressions, written with the least
parentheses their precedence needs and either spacing, compute what Python computes
(or fail as Python fails); sizes built of them are the parts drawn; `specc fmt` keeps
them as written; and any jumble of expression characters is a model or a SpecError.

Deterministic (derandomize) and quick (about 200 examples each, no deadline)."""

from __future__ import annotations

import operator
from dataclasses import dataclass

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from spec_compiler import SpecError, compile_source
from spec_compiler.formatter import format_source

SETTINGS = settings(max_examples=200, deadline=None, derandomize=True, database=None,
                    suppress_health_check=[HealthCheck.too_slow])

PARAMS = ("c", "k", "n")
PRECEDENCE = {"+": 1, "-": 1, "*": 2, "//": 2, "%": 2}
OPERATIONS = {"+": operator.add, "-": operator.sub, "*": operator.mul, "//": operator.floordiv, "%": operator.mod}


@dataclass(frozen=True)
class Drawn:
    """An expression as text, its precedence as written (3: an atom) and what Python makes of it."""

    text: str
    precedence: int
    value: int | None  # None: it divides by zero


def _apply(operator: str, left: int | None, right: int | None) -> int | None:
    if left is None or right is None or (operator in ("//", "%") and right == 0):
        return None
    return OPERATIONS[operator](left, right)


def _parenthesized(drawn: Drawn) -> Drawn:
    return Drawn(f"({drawn.text})", 3, drawn.value)


@st.composite
def atoms(draw, bindings: dict[str, int]) -> Drawn:
    kind = draw(st.sampled_from(["number", "number", "name", "name", "negative", "negated name"]))
    if kind == "number":
        value = draw(st.integers(0, 9))
        return Drawn(str(value), 3, value)
    if kind == "negative":  # a signed literal: `-3`
        value = draw(st.integers(1, 9))
        return Drawn(f"-{value}", 3, -value)
    name = draw(st.sampled_from(PARAMS))
    if kind == "negated name":
        return Drawn(f"-{name}", 3, -bindings[name])
    return Drawn(name, 3, bindings[name])


@st.composite
def expressions(draw, bindings: dict[str, int], depth: int = 3) -> Drawn:
    """An expression over the block parameters `bindings`, with the parentheses it needs
    (and sometimes more), each operator tight or spaced."""
    if depth == 0 or draw(st.integers(0, 3)) == 0:
        return draw(atoms(bindings))
    operator = draw(st.sampled_from(sorted(PRECEDENCE)))
    left = draw(expressions(bindings, depth - 1))
    right = draw(expressions(bindings, depth - 1))
    level = PRECEDENCE[operator]
    if left.precedence < level or draw(st.integers(0, 5)) == 0:
        left = _parenthesized(left)
    if right.precedence <= level or draw(st.integers(0, 5)) == 0:  # equal operators group from the left
        right = _parenthesized(right)
    spaced = draw(st.booleans())
    text = f"{left.text} {operator} {right.text}" if spaced else f"{left.text}{operator}{right.text}"
    return Drawn(text, level, _apply(operator, left.value, right.value))


@st.composite
def bound_expressions(draw) -> tuple[dict[str, int], Drawn]:
    bindings = {name: draw(st.integers(0, 9)) for name in PARAMS}
    return bindings, draw(expressions(bindings))


def _spec(bindings: dict[str, int], body: str) -> str:
    args = " ".join(str(bindings[name]) for name in PARAMS)
    return f"input vector 1\nblock b({', '.join(PARAMS)}) {{\n  {body}\n}}\nb {args}\n"


def _units(source: str) -> int:
    (group,) = compile_source(source, "drawn.spec").ir.nodes
    (dense,) = group.bodies[0]
    return dense.params.units


@SETTINGS
@given(bound_expressions())
def test_an_expression_computes_what_python_computes(drawn_case):
    bindings, drawn = drawn_case
    source = _spec(bindings, f"dense {drawn.text}")
    if drawn.value is not None and drawn.value >= 1:
        assert _units(source) == drawn.value, source
        return
    try:
        compile_source(source, "drawn.spec")
    except SpecError as error:
        message = error.first.message
    else:
        raise AssertionError(f"compiled, but Python gives {drawn.value}: {source}")
    if drawn.value is None:
        assert "divides by zero" in message, (source, message)
    else:
        assert message == f"dense units must be greater than 0, got {drawn.value}", (source, message)


@st.composite
def size_factors(draw, bindings: dict[str, int]) -> tuple[str, int | None]:
    """One part of a size: a number, a parameter, or an expression in parentheses."""
    kind = draw(st.sampled_from(["number", "name", "expression"]))
    if kind == "number":
        value = draw(st.integers(1, 4))
        return str(value), value
    if kind == "name":
        name = draw(st.sampled_from(PARAMS))
        return name, bindings[name]
    drawn = draw(expressions(bindings, depth=2))
    return f"({drawn.text})", drawn.value


@SETTINGS
@given(st.data())
def test_a_size_of_computed_parts_is_those_parts(data):
    bindings = {name: data.draw(st.integers(1, 4)) for name in PARAMS}
    (first, a), (second, b) = data.draw(size_factors(bindings)), data.draw(size_factors(bindings))
    args = " ".join(str(bindings[name]) for name in PARAMS)
    source = (f"input image 1x8x8\nblock b({', '.join(PARAMS)}) {{\n  conv 2 {first}x{second} pad=valid\n}}\n"
              f"b {args}\n")
    if a is not None and b is not None and 1 <= a <= 8 and 1 <= b <= 8:
        (group,) = compile_source(source, "drawn.spec").ir.nodes
        (conv,) = group.bodies[0]
        assert tuple(conv.params.kernel) == (a, b), source
    else:
        try:
            compile_source(source, "drawn.spec")
        except SpecError:
            return
        raise AssertionError(f"compiled a size with parts {a} and {b}: {source}")


@SETTINGS
@given(bound_expressions(), bound_expressions())
def test_fmt_keeps_expressions_as_written(first, second):
    (bindings, one), (_, two) = first, second
    source = _spec(bindings, f"dense {one.text} -> dense units={two.text}")
    formatted = format_source(source)
    assert f"dense {one.text} -> dense units={two.text}" in formatted
    assert format_source(formatted) == formatted


PIECES = ["c", "k", "kxk", "cx3", "1", "0", "2.5", "-1", "?", "3x3", "-", "+", "*", "//", "%", "/", "(", ")",
          "x", " ", " ", "[", "]", ",", "l2(", "=", "-k"]


@SETTINGS
@given(st.lists(st.sampled_from(PIECES), min_size=1, max_size=12))
def test_any_jumble_of_expression_characters_is_a_model_or_a_spec_error(pieces):
    value = "".join(pieces)
    for source in (f"input image 1x8x8\nblock b(c, k) {{\n  conv {value} pad=same\n}}\nb 2 3\n",
                   f"input vector 4\ndense {value}\n"):
        try:
            compile_source(source, "jumble.spec")
        except SpecError as error:
            error.render()
