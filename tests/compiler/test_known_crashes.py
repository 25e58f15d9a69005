"""Issue 9: crash classes the fuzzer found, now refused at compile time with a
positioned SpecError (exact text, so a regression shows as a changed message)."""

from __future__ import annotations

import time

import pytest

from spec_compiler import SpecError, compile_source


def _error(text: str) -> SpecError:
    with pytest.raises(SpecError) as caught:
        compile_source(text, "known.spec")
    return caught.value


def _first(text: str) -> tuple[int, int, str, str | None]:
    first = _error(text).first
    return first.span.line, first.span.column, first.message, first.hint


@pytest.mark.parametrize("body", ["{ }", "{ # only a comment\n}"])
def test_an_empty_repeat_is_refused_without_iterating(body):
    started = time.process_time()
    line, column, message, _ = _first(f"input vector 4\nrepeat 1000000000 {body}\ndense 2\n")
    assert (line, column, message) == (2, 1, "repeat needs at least one layer in its body")
    assert time.process_time() - started < 1


@pytest.mark.parametrize("text, column, made", [
    ("repeat 1000000000 { dense 2 }", 1, "1,000,000,000"),
    ("repeat 3 { repeat 1000000000 { dense 2 } }", 12, "1,000,000,000"),
    ("repeat 100000000 { repeat 2 { dense 2 } }", 1, "100,000,000"),
    ("repeat 30000 { dense 2 -> relu }", 1, "60,000"),
])
def test_a_repeat_past_the_layer_limit_is_refused_before_copying(text, column, made):
    started = time.process_time()
    error = _error(f"input vector 4\n{text}\n")
    assert len(error.diagnostics) == 1
    first = error.first
    assert (first.span.line, first.span.column) == (2, column)
    assert first.message == f"the model expands to more than 50,000 layers (this repeat adds at least {made})"
    assert time.process_time() - started < 1
