"""What a pydantic error location points at, found by walking the schema's types.

A location such as `("init", "std")` or `("metrics", 0, "k")` is read against the
model's field annotations (public typing introspection), never by parsing pydantic's
own labels: the walk says which parts are field names, which type is expected there,
and which call (`normal(...)`, `adam(...)`) the error is inside.
"""

from __future__ import annotations

import types
from dataclasses import dataclass
from functools import cache
from typing import Annotated, Any, Union, get_args, get_origin

from pydantic import BaseModel

from ..options import Choice


@dataclass(frozen=True)
class Place:
    """Where in a schema an error location ends."""

    names: tuple[str, ...]  # the field names along the location: ("init", "std") for init=normal(std=...)
    expected: Any  # the type expected there (None when the walk could not follow the location)
    owner: type[BaseModel] | None  # the model the location ends in
    call: dict | None  # the innermost call the location is inside (`{"kind": "adam", ...}`), if any


@cache
def field_type(model: type[BaseModel], name: str) -> Any:
    """A field's full annotation, with the metadata pydantic moved off it put back."""
    info = model.model_fields[name]
    return Annotated[(info.annotation, *info.metadata)] if info.metadata else info.annotation


def union_members(annotation: Any) -> tuple[Any, ...]:
    """The alternatives of a union type (None aside) when there are several, else ()."""
    members = _non_none_members(_strip(annotation))
    return members if len(members) > 1 else ()


def locate(root: Any, loc: tuple, value: Any) -> Place:
    """Walk `loc` from the type `root` (a model, or any field type), following the
    user's `value` through named choices."""
    current: Any = root
    names: list[str] = []
    owner: type[BaseModel] | None = None
    call: dict | None = None
    for depth, part in enumerate(loc):
        current, value, chosen = _resolve(current, value)
        if chosen:
            call = value if isinstance(value, dict) else None
        if isinstance(current, type) and issubclass(current, BaseModel) and isinstance(part, str):
            owner = current
            names.append(part)
            current = field_type(current, part) if part in current.model_fields else None
            value = value.get(part) if isinstance(value, dict) else None
        elif get_origin(current) in (list, tuple) and isinstance(part, int):
            current = _item_type(current, part)
            value = value[part] if isinstance(value, (list, tuple)) and part < len(value) else None
        else:  # lost: keep the names that follow, past a union's label for its alternative
            rest = loc[depth + 1:] if union_members(current) else loc[depth:]
            names += [p for p in rest if isinstance(p, str)]
            return Place(tuple(names), None, owner, call)
    current, value, chosen = _resolve(current, value)
    return Place(tuple(names), current, owner, value if chosen and isinstance(value, dict) else call)


def _resolve(annotation: Any, value: Any) -> tuple[Any, Any, bool]:
    """Strip Annotated and Optional; a named choice resolves to the model `value` names."""
    while True:
        if get_origin(annotation) is Annotated:
            base, *metadata = get_args(annotation)
            choice = next((m for m in metadata if isinstance(m, Choice)), None)
            if choice is not None:
                return choice.model_for(value), value, True
            annotation = base
            continue
        members = _non_none_members(annotation)
        if len(members) == 1:  # Optional[X]
            annotation = members[0]
            continue
        return annotation, value, False


def _non_none_members(annotation: Any) -> tuple[Any, ...]:
    if get_origin(annotation) in (Union, types.UnionType):
        return tuple(a for a in get_args(annotation) if a is not type(None))
    return ()


def _strip(annotation: Any) -> Any:
    while get_origin(annotation) is Annotated and not any(isinstance(m, Choice) for m in get_args(annotation)[1:]):
        annotation = get_args(annotation)[0]
    return annotation


def _item_type(annotation: Any, index: int) -> Any:
    args = get_args(annotation)
    if get_origin(annotation) is list or (len(args) == 2 and args[1] is Ellipsis):
        return args[0] if args else None
    return args[index] if index < len(args) else None
