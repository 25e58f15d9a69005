"""Recording how every nn.Module of a build was constructed, for `--emit torch`.

While `recording()` is active, each module constructed records the arguments of its
outermost `__init__` (the call as the builder wrote it: `nn.Conv2d(1, 6, (5, 5))`), with
arguments equal to their defaults left out, so torch_source.py can write the module as
that call.
"""

from __future__ import annotations

import contextlib
import inspect
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from torch import nn


@dataclass
class Call:
    """How one module was constructed: `cls(*positional, **keywords)`."""

    cls: type
    positional: list[Any]
    keywords: dict[str, Any]
    module: Any = None


@contextlib.contextmanager
def recording() -> Iterator[dict[int, Call]]:
    """Record, for every nn.Module constructed inside, the arguments of its outermost
    `__init__` (the class's own constructor, as the caller wrote it)."""
    records: dict[int, Call] = {}  # each Call holds its module: ids stay unique while recording
    original = nn.Module.__init__

    def init(self, *args, **kwargs):
        original(self, *args, **kwargs)
        frame = sys._getframe(1)
        outer = None
        while frame is not None and _is_init_of(frame, self):
            outer = frame
            frame = frame.f_back
        call = _call_from(self, outer)
        call.module = self
        records[id(self)] = call

    nn.Module.__init__ = init
    try:
        yield records
    finally:
        nn.Module.__init__ = original


def _is_init_of(frame, module) -> bool:
    code = frame.f_code
    return (code.co_name == "__init__" and code.co_argcount > 0
            and frame.f_locals.get(code.co_varnames[0]) is module)


def _call_from(module: nn.Module, frame) -> Call:
    cls = type(module)
    if frame is None:
        return Call(cls, [], {})
    code = frame.f_code
    function = next((klass.__dict__["__init__"] for klass in cls.__mro__
                     if getattr(klass.__dict__.get("__init__"), "__code__", None) is code), None)
    info = inspect.getargvalues(frame)
    values = info.locals
    if function is None:
        return Call(cls, [], {name: values[name] for name in info.args[1:]})
    signature = inspect.signature(function)
    positional: list[Any] = []
    keywords: dict[str, Any] = {}
    skipped = False
    for index, (name, parameter) in enumerate(signature.parameters.items()):
        if index == 0:
            continue  # self
        if parameter.kind is parameter.VAR_POSITIONAL:
            positional.extend(values[name])
            continue
        if parameter.kind is parameter.VAR_KEYWORD:
            keywords.update({k: v for k, v in values[name].items() if not _inner_default(cls, k, v)})
            continue
        value = values[name]
        if parameter.default is not parameter.empty and _same(value, parameter.default):
            skipped = True
            continue
        if (parameter.kind is parameter.POSITIONAL_OR_KEYWORD and parameter.default is parameter.empty
                and not skipped and index <= 3):
            positional.append(value)
        elif parameter.kind is parameter.POSITIONAL_ONLY:
            positional.append(value)
        else:
            keywords[name] = value
    return Call(cls, positional, keywords)


def _inner_default(cls: type, name: str, value: Any) -> bool:
    """A **kwargs value equal to the default a base class's constructor gives it."""
    for klass in cls.__mro__:
        init = klass.__dict__.get("__init__")
        if init is None or not inspect.isfunction(init):
            continue
        parameter = inspect.signature(init).parameters.get(name)
        if parameter is not None and parameter.default is not parameter.empty:
            return _same(value, parameter.default)
    return False


def _same(value: Any, default: Any) -> bool:
    """A value that needs not be written (it equals the default; `(1, 1)` equals 1)."""
    if type(value) is bool or type(default) is bool:
        return type(value) is type(default) and value == default
    if isinstance(value, tuple) and isinstance(default, int) and value and all(v == default for v in value):
        return all(type(v) is int for v in value)
    try:
        return type(value) is type(default) and bool(value == default)
    except Exception:  # noqa: BLE001 - tensors and the like
        return False
