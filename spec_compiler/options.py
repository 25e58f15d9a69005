"""Per-layer weight options: initializers, regularizers, constraints.

Written in a spec as a word or a call: `init=he_normal`, `init=normal(0, 0.05)`,
`regularizer=l2(1e-4)`, `constraint=max_norm(3)`. Each is a pydantic model so that
wrong names and values are caught at compile time; the PyTorch side that applies
them lives in the torch backend.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Annotated, Any, ClassVar, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, SerializeAsAny, model_validator
from pydantic_core import PydanticCustomError


class _Spec(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, defer_build=True)
    # The order in which a call's positional arguments fill the fields.
    positional: ClassVar[tuple[str, ...]] = ()


def choice(kind: str, positional: tuple[str, ...] = (), **fields: Any) -> type[_Spec]:
    """A small spec model: a literal kind plus typed fields with defaults."""
    annotations = {"kind": Literal[kind]}
    namespace: dict[str, Any] = {"__annotations__": annotations, "kind": kind}
    for name, (annotation, default) in fields.items():
        annotations[name] = annotation
        namespace[name] = default
    namespace["positional"] = positional
    return type(f"{kind.title().replace('_', '')}Spec", (_Spec,), namespace)


def model(positional: tuple[str, ...] = (), **fields: Any) -> tuple[tuple[str, ...], dict[str, Any]]:
    """A named model's definition: the order its positional arguments fill the fields, and
    each field's (type, default)."""
    return positional, fields


class Models(Mapping):
    """Named spec models, each created on its first lookup: creating all of them when specc
    starts cost `specc compile` 3 ms, and most specs name none."""

    def __init__(self, definitions: dict[str, tuple[tuple[str, ...], dict[str, Any]]]):
        self.definitions = definitions
        self.created: dict[str, type[_Spec]] = {}

    def __getitem__(self, kind: str) -> type[_Spec]:
        if kind not in self.created:
            positional, fields = self.definitions[kind]
            self.created[kind] = choice(kind, positional, **fields)
        return self.created[kind]

    def __iter__(self) -> Iterator[str]:
        return iter(self.definitions)

    def __len__(self) -> int:
        return len(self.definitions)


PositiveFloat = Annotated[float, Field(gt=0)]
NonNegFloat = Annotated[float, Field(ge=0)]
FanMode = Literal["fan_in", "fan_out", "fan_avg"]
Distribution = Literal["truncated_normal", "untruncated_normal", "normal", "uniform"]

INITIALIZERS = Models({
    "zeros": model(),
    "ones": model(),
    "constant": model(("value",), value=(float, 0.0)),
    "normal": model(("mean", "std"), mean=(float, 0.0), std=(PositiveFloat, 0.05)),
    "uniform": model(("min", "max"), min=(float, -0.05), max=(float, 0.05)),
    "truncated_normal": model(("mean", "std"), mean=(float, 0.0), std=(PositiveFloat, 0.05)),
    "variance_scaling": model(
        ("scale", "mode", "distribution"),
        scale=(PositiveFloat, 1.0), mode=(FanMode, "fan_in"), distribution=(Distribution, "truncated_normal"),
    ),
    "lecun_normal": model(),
    "lecun_uniform": model(),
    "glorot_normal": model(),
    "glorot_uniform": model(),
    "he_normal": model(),
    "he_uniform": model(),
    "orthogonal": model(("gain",), gain=(PositiveFloat, 1.0)),
})
INITIALIZER_ALIASES = {
    "xavier_normal": "glorot_normal", "xavier_uniform": "glorot_uniform",
    "kaiming_normal": "he_normal", "kaiming_uniform": "he_uniform", "zero": "zeros", "one": "ones",
}

REGULARIZERS = Models({
    "l1": model(("l1",), l1=(NonNegFloat, 0.01)),
    "l2": model(("l2",), l2=(NonNegFloat, 0.01)),
    "l1_l2": model(("l1", "l2"), l1=(NonNegFloat, 0.01), l2=(NonNegFloat, 0.01)),
})

CONSTRAINTS = Models({
    "max_norm": model(("max_value", "axis"), max_value=(PositiveFloat, 2.0), axis=(int | None, None)),
    "non_neg": model(),
    "unit_norm": model(("axis",), axis=(int | None, None)),
    "min_max_norm": model(
        ("min_value", "max_value", "rate", "axis"),
        min_value=(NonNegFloat, 0.0), max_value=(PositiveFloat, 1.0), rate=(Annotated[float, Field(gt=0, le=1)], 1.0),
        axis=(int | None, None),
    ),
})


class UnknownChoice(PydanticCustomError):
    """A spec names an initializer, regularizer, activation... that does not exist.

    A pydantic error of type `unknown_choice` whose context holds `what`, `word` and
    `choices`, so elaboration words the diagnostic and its hint from the context alone."""

    def __new__(cls, what: str, word: str, choices: list[str]):
        context = {"what": what, "word": word, "choices": list(choices)}
        return super().__new__(cls, "unknown_choice", "unknown {what} `{word}`", context)


@dataclass(frozen=True, eq=False)
class Choice:
    """A field type's table of named models: it turns `word` or `word(args, key=value)`
    into the model the word names, and tells elaboration which model a value names."""

    what: str
    table: Mapping[str, type[_Spec]]
    aliases: dict[str, str]

    def model_for(self, value: Any) -> type[_Spec] | None:
        """The model a spec value (`"normal"` or `{"kind": "normal", ...}`) names, if any."""
        word = value.get("kind") if isinstance(value, dict) else value
        if not isinstance(word, str):
            return None
        return self.table.get(self.aliases.get(word, word))

    def normalize(self, value: Any) -> Any:
        if isinstance(value, _Spec):
            return value
        if isinstance(value, str):
            value = {"kind": value, "args": []}
        if not isinstance(value, dict) or "kind" not in value:
            raise ValueError(f"expected a {self.what} such as `{next(iter(self.table))}`")
        data = dict(value)
        kind = self.aliases.get(data.pop("kind"), None) or value["kind"]
        if kind not in self.table:
            raise UnknownChoice(self.what, kind, sorted(self.table) + sorted(self.aliases))
        model = self.table[kind]
        args = data.pop("args", [])
        names = model.positional
        if len(args) > len(names):
            raise ValueError(f"{kind} takes at most {len(names)} positional argument(s), got {len(args)}")
        data.update(zip(names, args))
        return model.model_validate({"kind": kind, **data})


def choice_type(what: str, table: Mapping[str, type[_Spec]], aliases: dict[str, str] | None = None):
    """A field type accepting `word` or `word(args, key=value)` for one of `table`: the
    validator turns it into the model the word names (its fields checked there), and the
    value is kept and written out as that model."""
    choice = Choice(what, table, aliases or {})
    return Annotated[SerializeAsAny[_Spec], BeforeValidator(choice.normalize), choice]


Initializer = choice_type("initializer", INITIALIZERS, INITIALIZER_ALIASES)
Regularizer = choice_type("regularizer", REGULARIZERS)
Constraint = choice_type("constraint", CONSTRAINTS)


class WeightOptions(BaseModel):
    """Options every layer with weights accepts (Keras' kernel_*/bias_* arguments)."""

    model_config = ConfigDict(extra="forbid", frozen=True, defer_build=True)

    init: Initializer | None = None
    bias_init: Initializer | None = None
    regularizer: Regularizer | None = None
    bias_regularizer: Regularizer | None = None
    constraint: Constraint | None = None
    bias_constraint: Constraint | None = None

    @model_validator(mode="after")
    def _check_bounds(self):
        for spec in (self.init, self.bias_init):
            if spec is not None and spec.kind == "uniform" and spec.min >= spec.max:
                raise ValueError(f"uniform needs min < max, got min={spec.min}, max={spec.max}")
        if self.bias_init is not None and self.bias_init.kind == "orthogonal":
            raise ValueError("bias_init=orthogonal needs a weight of rank 2 or more, but a bias is a vector")
        axis = getattr(self.bias_constraint, "axis", None)
        if axis is not None and axis not in (0, -1):
            raise ValueError(f"bias_constraint axis={axis} is out of range: a bias is a vector (axis 0 or -1)")
        for spec in (self.constraint, self.bias_constraint):
            if spec is not None and spec.kind == "min_max_norm" and spec.min_value > spec.max_value:
                raise ValueError("min_max_norm needs min_value <= max_value")
        return self
