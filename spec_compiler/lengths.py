"""Lengths known only at run time (`?`, `T`) as symbols: which of them are the same length.

Such a length prints as the user wrote it, but two of them are one length only when they
come from the same input axis through layers that keep it. A layer that changes it
(pooling, a strided conv, pad, crop, a class token) makes a new length that prints alike
and compares different, so a residual or an add that meets the pooled sequence and the
original one is refused at compile time instead of failing at run time.

How: inference tags the inputs' run-time lengths with a trace, their values at a few
probe lengths. After a layer, its shape rule runs again on those concrete lengths; an
output axis whose values equal an input axis' trace is that length, any other is a new
length with the values found (so `maxpool1d 2` and `avgpool1d 2` of one sequence agree,
and pooling then upsampling by 2 is the original length again). A rule that refuses the
probe lengths (a `max_length`) keeps the length it returned. Compared with a plain
string (code outside inference), a tagged length compares by its text, as before.
"""

from __future__ import annotations

from dataclasses import replace

from .shapes import TensorType

# Probe values of an input's run-time axis (one row per axis): primes, large enough to
# survive many downsamplings, with differences and ratios that no layer maps between rows.
PROBES = ((4099, 5861, 7019), (4507, 6389, 7561), (4919, 6841, 8111), (5347, 7309, 8641))


class Length(str):
    """A run-time length: prints as `text`, equal to another Length with the same trace.
    `origin` says which layer made it, for messages."""

    def __new__(cls, text: str, trace: tuple, origin: str = ""):
        self = super().__new__(cls, text)
        self.trace = trace
        self.origin = origin
        return self

    def __getnewargs__(self):
        return str(self), self.trace, self.origin

    def __eq__(self, other):
        if isinstance(other, Length):
            return self.trace == other.trace
        return str.__eq__(self, other)

    def __ne__(self, other):
        return not self == other

    __hash__ = str.__hash__

    def __repr__(self) -> str:
        return f"Length({str(self)!r}, {self.trace!r})"


def track_inputs(types: list[TensorType]) -> list[TensorType]:
    """The inputs' types with their run-time lengths tagged: a `?` is its own length (on
    each axis of each input), a name (`T`) is one length wherever it is written."""
    traces: dict[tuple, tuple] = {}
    tracked = []
    for index, t in enumerate(types):
        dims = []
        for axis, dim in enumerate(t.dims):
            if isinstance(dim, str) and not isinstance(dim, Length):
                key = (dim,) if dim != "?" else (dim, index, axis)
                if key not in traces:
                    traces[key] = _probe_row(len(traces))
                dim = Length(dim, traces[key], "the input")
            dims.append(dim)
        tracked.append(replace(t, dims=tuple(dims)))
    return tracked


def _probe_row(n: int) -> tuple[int, ...]:
    """The probe values of the n-th run-time length: a row of PROBES, moved by unequal
    amounts past the fourth (no pad or crop, which move every probe alike, maps one to another)."""
    row, shift = PROBES[n % len(PROBES)], n // len(PROBES)
    return tuple(value + shift * step for value, step in zip(row, (2, 6, 14)))


def follow_leaf(rule, params, x: TensorType, y: TensorType, origin: str) -> TensorType:
    """`y` (the output of a leaf layer's shape `rule` on `x`) with each run-time length
    tagged: the input length it is, or a new one (see the module docstring)."""
    if all(isinstance(d, int) for d in y.dims):
        return y
    outputs = []
    for probe in range(len(PROBES[0])):
        concrete = tuple(d.trace[probe] if isinstance(d, Length) else d for d in x.dims)
        if any(isinstance(d, str) for d in concrete):
            return settle(y, x, origin)
        try:
            out = rule(params, replace(x, dims=concrete))
        except Exception:  # noqa: BLE001 - a rule refusing the probe lengths (max_length): no knowledge
            return settle(y, x, origin)
        if out.rank != y.rank:
            return settle(y, x, origin)
        outputs.append(out.dims)
    known = {d.trace: d for d in x.dims if isinstance(d, Length)}
    dims = []
    for axis, dim in enumerate(y.dims):
        if isinstance(dim, str):
            values = tuple(out[axis] for out in outputs)
            if all(isinstance(v, int) for v in values):
                dim = known.get(values) or Length(str(dim), values, origin)
            else:
                dim = _new(dim, x, origin, axis)
        dims.append(dim)
    return replace(y, dims=tuple(dims))


def settle(y: TensorType, x: TensorType, origin: str) -> TensorType:
    """`y` (a layer's output on `x`) with every untagged run-time length a new length; a
    tagged one stays as it is."""
    dims = tuple(d if isinstance(d, (int, Length)) else _new(d, x, origin, axis) for axis, d in enumerate(y.dims))
    return replace(y, dims=dims)


def _new(dim: str, x: TensorType, origin: str, axis: int) -> Length:
    """A length known only to differ from others: the same layer on the same input makes the same one."""
    return Length(str(dim), ("made by", origin, axis, x.dims), origin)


def joined_length(sizes: list) -> Length | str:
    """The length of pieces joined end to end (concat along a run-time length): the sum of
    their traces, or a plain `?` when a piece is not tracked."""
    if not all(isinstance(s, (int, Length)) for s in sizes):
        return "?"
    traces = [s.trace if isinstance(s, Length) else (s,) * len(PROBES[0]) for s in sizes]
    if not all(len(t) == len(PROBES[0]) and all(isinstance(v, int) for v in t) for t in traces):
        return "?"
    return Length("?", tuple(map(sum, zip(*traces))), "concat")


def differing_lengths(a: TensorType, b: TensorType) -> str:
    """For a message about two shapes that print alike: why they differ (empty if they print differently)."""
    if str(a) != str(b) or a.rank != b.rank:
        return ""
    for mine, theirs in zip(a.dims, b.dims):
        if isinstance(mine, Length) and isinstance(theirs, Length) and mine != theirs:
            changed = [d.origin for d in (mine, theirs) if d.origin and d.origin != "the input"]
            by = f" ({' and '.join(changed)} changed it)" if changed else ""
            return (f"; the run-time lengths print alike ({mine}) but are not the same length{by}")
    return ""


__all__ = ["Length", "track_inputs", "follow_leaf", "settle", "joined_length", "differing_lengths"]
