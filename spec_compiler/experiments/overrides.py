"""`--set KEY=VALUE`: a spec with some values changed, and the spec's search values handled.

An override is an edit of the source (spots.py names the keys), so the changed spec is
checked like any other: a bad value is reported at its line with a caret, an unknown key is
a UsageError (exit 2) that lists the keys."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, replace
from pathlib import Path

from ..ast import TrainSection
from ..errors import SpecError, UsageError, did_you_mean
from ..inference import Limits
from ..model import Model, compile_source
from ..parser import parse
from .space import SearchValue, at_point, default_point, points_to_check, search_space
from .spots import Edit, apply_edits, extent, spots


def parse_assignments(items: Iterable[str]) -> dict[str, str]:
    """`["train.lr=3e-4", "width=64"]` -> {"train.lr": "3e-4", "width": "64"}."""
    assignments: dict[str, str] = {}
    for item in items:
        key, equals, text = item.partition("=")
        key, text = key.strip(), text.strip()
        if not equals or not key or not text:
            raise UsageError(f"--set `{item}`: write KEY=VALUE, e.g. --set train.lr=3e-4")
        if key in assignments:
            raise UsageError(f"--set: `{key}` is set twice")
        _check_one_value(key, text)
        assignments[key] = text
    return assignments


def _check_one_value(key: str, text: str) -> None:
    """The value must be one spec value (a number, word, size, string, call or list)."""
    problem = any(c in text for c in "\n;{}#")
    if not problem:
        try:
            section = parse(f"train {{ v={text} }}", "<--set>").statements
            problem = len(section) != 1 or len(section[0].options) != 1
        except SpecError:
            problem = True
    if problem:
        raise UsageError(f"--set {key}=`{text}`: the value is not one spec value (a number, a word, 6x5x5, "
                         "\"text\", a call like sgd(0.1) or a list like [a, b])")


def with_train_section(source: str, path: str) -> str:
    """The source with an empty `train { }` at its end when it has none (for `train.KEY` overrides)."""
    if any(isinstance(s, TrainSection) for s in parse(source, path).statements):
        return source
    return source.rstrip("\n") + "\ntrain { }\n"


def override_source(source: str, path: str, overrides: dict[str, str]) -> str:
    """The source with each override written in; UsageError for an unknown or ambiguous key."""
    if not overrides:
        return source
    if any(key.startswith("train.") for key in overrides):
        source = with_train_section(source, path)
    spec = parse(source, path)
    places = spots(spec)
    searches = search_space(spec)
    lines = source.split("\n")
    edits, touched = [], {}
    for key, text in overrides.items():
        if key in places:
            if len(places[key]) > 1:
                where = ", ".join(str(p.value.span.line if p.value else p.insert.line) for p in places[key])
                raise UsageError(f"--set {key}: the key names {len(places[key])} places (lines {where}); "
                                 "give the layers distinct name= or use BLOCK.PARAM")
            edit = places[key][0].edit(lines, text)
        elif key in searches:
            line, start, end = extent(lines, searches[key].call)
            edit = Edit(line, start, end, text)
        else:
            known = sorted({*places, *searches})
            raise UsageError(f"--set: unknown key `{key}`; "
                             + (did_you_mean(key, known) or "keys are train.KEY, BLOCK.PARAM and LAYER.FIELD "
                                "(LAYER: its name= or word and count, e.g. dense_2)"))
        spot_id = (edit.line, edit.start)
        if spot_id in touched:
            raise UsageError(f"--set: `{key}` and `{touched[spot_id]}` name the same value")
        touched[spot_id] = key
        edits.append(edit)
    return apply_edits(source, edits)


@dataclass(frozen=True)
class Variant:
    """A spec as overridden: its source and its remaining search values."""

    path: str
    source: str
    overrides: dict[str, str]
    space: dict[str, SearchValue]

    def at(self, point: dict[str, str]) -> str:
        return at_point(parse(self.source, self.path), self.space, point) if self.space else self.source


def read_variant(path: str | Path, overrides: dict[str, str]) -> Variant:
    path = str(path)
    try:
        source = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        raise SpecError.at(None, f"cannot read {path}: {error}") from None
    source = override_source(source, path, overrides)
    return Variant(path, source, overrides, search_space(parse(source, path)))


def load_variant(path: str | Path, overrides: dict[str, str], plugins=(), limits: Limits = Limits()) -> Model:
    """The checked model with the overrides in; SpecError when search values remain (training
    and export need one model)."""
    variant = read_variant(path, overrides)
    if variant.space:
        first = next(iter(variant.space.values()))
        names = ", ".join(variant.space)
        raise SpecError.at(first.call.span, f"the spec has search values ({names}): it describes many models",
                           f"run `specc tune {path} --trials 20 --out DIR`, or fix each with "
                           f"--set {first.name}={first.default()}").with_source(variant.source)
    return compile_source(variant.source, variant.path, plugins, limits)


def check_space(variant: Variant, plugins=(), limits: Limits = Limits()) -> tuple[Model, int]:
    """Compile the spec at each checked point of its space (the first mistake is raised with
    the point named); the model at the default point, and how many points were checked."""
    if not variant.space:
        return compile_source(variant.source, variant.path, plugins, limits), 0
    points = points_to_check(variant.space)
    for point in points:
        try:
            compile_source(variant.at(point), variant.path, plugins, limits)
        except SpecError as error:
            where = ", ".join(f"{k}={v}" for k, v in point.items())
            first = error.diagnostics[0]
            error.diagnostics[0] = replace(first, message=f"{first.message} (with {where})")
            error.args = (error.render(),)
            raise
    return compile_source(variant.at(default_point(variant.space)), variant.path, plugins, limits), len(points)
