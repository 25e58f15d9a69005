"""Reading a kind's pydantic schema for people: a field's type and default in the words a
spec uses (`valid | same | int >= 0 | sizes like 3x3`), and the words a value may be."""

from __future__ import annotations

import types as python_types
from typing import Annotated, Any, Literal, Union, get_args, get_origin

import annotated_types
from pydantic.fields import FieldInfo
from pydantic_core import PydanticUndefined

from ..layers import REGISTRY
from ..options import Choice

ACTIVATION_FIELD = "activation"  # the field that makes a kind take a trailing activation word
MAX_KINDS_NAMED = 4
_BOUNDS = ((annotated_types.Gt, "gt", ">"), (annotated_types.Ge, "ge", ">="), (annotated_types.Lt, "lt", "<"),
           (annotated_types.Le, "le", "<="))
_SIMPLE = {int: "int", float: "number", str: "text", bool: "true | false"}


def field_summary(field: FieldInfo, name: str = "") -> str:
    """`int > 0, required` or `valid | same | int >= 0 | sizes like 3x3; default valid`."""
    text = "an activation" if name == ACTIVATION_FIELD else type_text(field.annotation, field.metadata)
    if field.is_required():
        return f"{text}, required"
    return f"{text}; default {default_text(field)}"


def default_text(field: FieldInfo) -> str:
    if field.default is PydanticUndefined:
        return "empty" if field.default_factory is not None else "none"
    return value_text(field.default)


def value_text(value: Any) -> str:
    """A value as a spec writes it."""
    if value is None:
        return "none"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, tuple):
        return "x".join(map(str, value))
    return str(value)


def type_text(annotation: Any, metadata: list | tuple = ()) -> str:
    origin = get_origin(annotation)
    if origin is Annotated:
        base, *extra = get_args(annotation)
        choice = _choice(extra)
        return _kinds_text(list(choice.table)) if choice else type_text(base, [*metadata, *extra])
    if origin in (Union, python_types.UnionType):
        members = [m for m in get_args(annotation) if m is not type(None)]
        return " | ".join(type_text(m) for m in members) if members else "none"
    if origin is Literal:
        return " | ".join(map(value_text, get_args(annotation)))
    if origin is tuple:
        args = get_args(annotation)
        if len(args) == 2 and args[1] is Ellipsis:
            return "sizes like 3x3"
        return "(" + ", ".join(type_text(a) for a in args) + ")"
    if origin is list:
        (item,) = get_args(annotation) or (Any,)
        return f"[{type_text(item)}, ...]"
    return _SIMPLE.get(annotation, getattr(annotation, "__name__", str(annotation))) + _bounds(metadata)


def _kinds_text(kinds: list[str]) -> str:
    shown = " | ".join(kinds[:MAX_KINDS_NAMED])
    return shown + (f" | ... ({len(kinds)} in all)" if len(kinds) > MAX_KINDS_NAMED else "")


def _choice(metadata) -> Choice | None:
    """The table of named models (options.choice_type) an annotation's metadata holds, if any."""
    return next((m for m in metadata if isinstance(m, Choice)), None)


def value_words(field: FieldInfo, name: str = "") -> list[str]:
    """The words a field's value may be (literal choices, true/false, initializer names...)."""
    if name == ACTIVATION_FIELD:
        return REGISTRY.activations()
    words: list[str] = []
    _collect_words(field.annotation, words)
    return words


def _collect_words(annotation: Any, words: list[str]) -> None:
    origin = get_origin(annotation)
    if origin is Annotated:
        base, *extra = get_args(annotation)
        choice = _choice(extra)
        if choice:
            words += [k for k in choice.table if k not in words]
        else:
            _collect_words(base, words)
    elif origin in (Union, python_types.UnionType):
        for member in get_args(annotation):
            _collect_words(member, words)
    elif origin is Literal:
        words += [value_text(a) for a in get_args(annotation) if value_text(a) not in words]
    elif annotation is bool:
        words += [w for w in ("true", "false") if w not in words]


def _bounds(metadata) -> str:
    parts = []
    for item in metadata:
        constraints = getattr(item, "metadata", None) or [item]  # a FieldInfo inside Annotated holds them
        for constraint in constraints:
            for kind, attribute, symbol in _BOUNDS:
                if isinstance(constraint, kind):
                    parts.append(f"{symbol} {getattr(constraint, attribute)}")
    return (" " + " and ".join(parts)) if parts else ""
