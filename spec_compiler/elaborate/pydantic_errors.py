"""Schema validation, and pydantic's errors turned into diagnostics.

Each error is worded from its `type`, its `ctx` (`gt`, `le`, `what`...), its input
and the schema type its location points at. pydantic's English `msg` is never parsed
(it is shown verbatim only for an error type not listed here) and its labels inside
locations are never read, so a pydantic upgrade cannot change a message.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from functools import cache
from typing import Any, Literal, get_args, get_origin

from pydantic import BaseModel, TypeAdapter, ValidationError

from ..errors import Diagnostic, Span, did_you_mean
from ..layers import REGISTRY
from .locations import Place, field_type, locate, union_members
from .report import Report

# Errors that say "the value has the wrong type" (as opposed to "it is out of range").
WRONG_TYPE = frozenset({
    "int_type", "int_parsing", "int_from_float", "float_type", "float_parsing", "bool_type", "bool_parsing",
    "string_type", "tuple_type", "list_type", "dict_type", "literal_error", "model_type", "none_required",
    "union_tag_invalid", "union_tag_not_found", "is_instance_of", "union_type",
})
# `union_type` is specc's own: every alternative of a union rejected the value's type.

# "must be ..." for a wrong type
TYPE_PHRASES = {
    "int_type": "a whole number", "int_parsing": "a whole number", "int_from_float": "a whole number",
    "float_type": "a number", "float_parsing": "a number", "bool_type": "true or false",
    "bool_parsing": "true or false", "string_type": "a valid string", "tuple_type": "a valid tuple",
    "list_type": "a valid list", "dict_type": "a valid dictionary", "none_required": "none",
}
# the same, as one alternative among several: "must be a whole number or sizes like 3x3"
ALTERNATIVE_NOUNS = {
    **TYPE_PHRASES, "string_type": "a word", "tuple_type": "sizes like 3x3", "list_type": "a list like [1, 2]",
}
# "must be ..." for a value out of range: the context key holding the bound, and the phrase
RANGE_PHRASES = {
    "greater_than": ("gt", "greater than {}"), "greater_than_equal": ("ge", "greater than or equal to {}"),
    "less_than": ("lt", "less than {}"), "less_than_equal": ("le", "less than or equal to {}"),
    "multiple_of": ("multiple_of", "a multiple of {}"),
}
# a validator's own sentence, carried in ctx["error"]
OWN_SENTENCE = frozenset({"value_error", "assertion_error"})


@dataclass(frozen=True)
class Problem:
    """One thing wrong with one value: a pydantic error, or a union's merged errors."""

    type: str
    loc: tuple
    ctx: Mapping[str, Any]
    input: Any
    place: Place
    msg: str  # pydantic's sentence: shown only for an error type this module does not know


def validate(model: type[BaseModel], values: dict, spans: Mapping[str, Span], where: Span, what: str,
             report: Report, unknown_names: Mapping[Span, Diagnostic] | None = None) -> BaseModel | None:
    """`model` filled from `values`, or None with the mistakes reported.

    `spans` places each field's value; `what` names the thing (`conv`, `train`) in
    messages; a wrong-type error on a value in `unknown_names` is reported as that
    diagnostic instead (a bare word in a block that is not one of its parameters)."""
    try:
        return model.model_validate(values)
    except ValidationError as error:
        for diagnostic in translate(error.errors(include_url=False), model, values, spans, where, what,
                                    unknown_names or {}):
            report.add(diagnostic)
        return None


def translate(errors: list[dict], model: type[BaseModel], values: dict, spans: Mapping[str, Span],
              where: Span, what: str, unknown_names: Mapping[Span, Diagnostic]) -> list[Diagnostic]:
    """Diagnostics for the errors (`ValidationError.errors()`) of validating `values` as `model`."""
    diagnostics = []
    for problem in _problems(errors, model, values):
        span = _span_of(problem.loc, spans, where)
        if span in unknown_names and problem.type in WRONG_TYPE:
            diagnostics.append(unknown_names[span])
        else:
            diagnostics.append(_diagnose(problem, model, values, span, what))
    return diagnostics


def _span_of(loc: tuple, spans: Mapping[str, Span], where: Span) -> Span:
    """Where the value at `loc` was written: its field's span, or for a field gathered from keys
    of their own (a train section's `loss.digit=`: output_losses.digit) that key's."""
    for depth in (2, 1):
        key = ".".join(str(part) for part in loc[:depth])
        if len(loc) >= depth and key in spans:
            return spans[key]
    return where


def _problems(items: list[dict], model: type[BaseModel], values: dict) -> list[Problem]:
    """The errors of one validation, those of each union-typed field merged into one."""
    by_field: dict[str, list[dict]] = {}
    for item in items:
        name = item["loc"][0] if len(item["loc"]) > 1 else None
        if name in model.model_fields and name in values and union_members(field_type(model, name)):
            by_field.setdefault(name, []).append(item)
    merged = {name: _merge_union(model, name, group, values[name]) for name, group in by_field.items()}
    result: list[Problem] = []
    for item in items:
        union = merged.get(item["loc"][0] if item["loc"] else None)
        if union is None:  # not a union field, or one whose errors the alternatives do not account for
            result.append(Problem(item["type"], item["loc"], item.get("ctx") or {}, item.get("input"),
                                  locate(model, item["loc"], values), item["msg"]))
        elif union not in result:
            result.append(union)
    return result


def _merge_union(model: type[BaseModel], name: str, group: list[dict], value: Any) -> Problem | None:
    """One problem for a union-typed field, from validating the value against each
    alternative alone. A range error (`greater than 0`) wins, since it names what the
    user meant; when every alternative rejects the type, the message lists what is
    accepted. None when the alternatives alone do not account for the errors."""
    value = next((item["input"] for item in group if len(item["loc"]) == 2), value)
    found: list[Problem] = []
    for member in union_members(field_type(model, name)):
        try:
            _adapter(member).validate_python(value)
        except ValidationError as error:
            for item in error.errors(include_url=False):
                place = locate(member, item["loc"], value)
                found.append(Problem(item["type"], (name, *item["loc"]), item.get("ctx") or {}, item.get("input"),
                                     Place((name, *place.names), place.expected, place.owner, place.call),
                                     item["msg"]))
        else:
            return None
    if len(found) != len(group):
        return None
    ranged = [problem for problem in found if problem.type not in WRONG_TYPE]
    if ranged or len(found) == 1:
        return (ranged or found)[0]
    nouns: list[str] = []
    for problem in found:
        noun = _literal_choices(problem) if problem.type == "literal_error" else ALTERNATIVE_NOUNS.get(problem.type)
        if noun and noun not in nouns:
            nouns.append(noun)
    return Problem("union_type", (name,), {"expected": _either(nouns) if nouns else "valid"}, value,
                   Place((name,), None, None, None), msg="")


@cache
def _adapter(annotation: Any) -> TypeAdapter:
    return TypeAdapter(annotation)


def _diagnose(problem: Problem, model: type[BaseModel], values: dict, span: Span, what: str) -> Diagnostic:
    field = str(problem.loc[0]) if problem.loc else None
    ctx = problem.ctx
    if problem.type == "unknown_choice":
        return Diagnostic(f"unknown {ctx['what']} `{ctx['word']}`", span,
                          did_you_mean(ctx["word"], ctx["choices"]) or f"choose one of: {', '.join(ctx['choices'])}")
    if problem.type == "missing":
        kind = REGISTRY.lookup(what)
        return Diagnostic(f"`{what}` needs a value for `{field}`", span,
                          f"for example: `{kind.example}`" if kind and kind.example else None)
    if problem.type == "extra_forbidden":
        return _extra_option(problem, model, values, span, what)
    location = ".".join(problem.place.names[1:])
    value = values.get(field) if field else None
    if field and location and isinstance(value, dict) and "kind" in value:
        subject = f"{what} {field}={value['kind']}: {location}"  # dense init=normal: std ...
    elif field:
        subject = f"{what} {field}" + (f" ({location})" if location else "")
    else:
        subject = what
    if problem.type in OWN_SENTENCE:
        return Diagnostic(f"{subject} {ctx['error']}", span)
    shown = _show(problem.input)
    return Diagnostic(f"{subject} {_phrase(problem)}" + (f", got {shown}" if shown is not None else ""), span)


def _phrase(problem: Problem) -> str:
    ctx = problem.ctx
    if problem.type in TYPE_PHRASES:
        return f"must be {TYPE_PHRASES[problem.type]}"
    if problem.type in RANGE_PHRASES:
        key, phrase = RANGE_PHRASES[problem.type]
        return "must be " + phrase.format(_number(ctx[key]))
    if problem.type == "literal_error":
        return f"must be {_literal_choices(problem)}"
    if problem.type == "union_type":
        return f"must be {ctx['expected']}"
    if problem.type in ("too_short", "too_long"):
        bound = ctx["min_length"] if problem.type == "too_short" else ctx["max_length"]
        return f"must have at {'least' if problem.type == 'too_short' else 'most'} {bound} item{'s' * (bound != 1)}"
    return f"is not valid: {problem.msg}"


def _extra_option(problem: Problem, model: type[BaseModel], values: dict, span: Span, what: str) -> Diagnostic:
    """An option the schema does not have: at the top (`input vocabulary=`) or in a call (`adam(beta=)`)."""
    word = str(problem.loc[-1])
    call, owner = problem.place.call, problem.place.owner
    if call is not None and owner is not None:
        fields = [f for f in owner.model_fields if f != "kind"]
        return Diagnostic(f"`{call['kind']}` has no option `{word}`", span,
                          did_you_mean(word, fields) or (f"its options: {', '.join(fields)}" if fields
                                                        else f"`{call['kind']}` takes no options"))
    if len(problem.loc) == 1:
        unused = [f for f in model.model_fields if f not in values]
        return Diagnostic(f"`{what}` has no option `{word}`", span,
                          did_you_mean(word, unused) or f"its options: {', '.join(model.model_fields)}")
    return Diagnostic(f"`{what}` has no option `{'.'.join(map(str, problem.loc))}`", span)


def _literal_choices(problem: Problem) -> str:
    """`valid` or `same`: the values of the Literal type the error's location expects."""
    if get_origin(problem.place.expected) is Literal:
        return _either([f"`{v}`" if isinstance(v, str) else str(v) for v in get_args(problem.place.expected)])
    return str(problem.ctx.get("expected", "one of the allowed values"))


def _either(words: list[str]) -> str:
    return ", ".join(words[:-1]) + f" or {words[-1]}" if len(words) > 1 else words[0]


def _number(bound: Any) -> str:
    """A bound as written in a spec: 0 rather than 0.0."""
    return str(int(bound)) if isinstance(bound, float) and bound.is_integer() else str(bound)


def _show(value: Any) -> str | None:
    if isinstance(value, (dict, BaseModel)):
        return None
    if isinstance(value, tuple):
        return "x".join(map(str, value))
    if isinstance(value, str):
        return f"`{value}`"
    return str(value)
