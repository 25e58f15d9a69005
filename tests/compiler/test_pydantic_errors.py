"""pydantic's errors become specc diagnostics by error type, context and schema alone.

One case per error type elaboration words (on the real layer and train schemas where
one produces it), then the same cases with pydantic's English `msg` and its labels for
a union's alternatives scrambled: the diagnostics must not change, so a pydantic
upgrade that rewords them cannot change specc's messages.
"""

from __future__ import annotations

from typing import Annotated, Any, Union, get_args, get_origin

import pytest
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from spec_compiler.elaborate.declarations import InputParams
from spec_compiler.elaborate.pydantic_errors import translate
from spec_compiler.errors import Diagnostic, Span
from spec_compiler.layers import REGISTRY
from spec_compiler.train_config import TrainConfig

WHERE = Span("t.spec", 1, 1, 2)


class Strict(BaseModel):
    """Error types no specc schema produces today, worded all the same."""

    model_config = ConfigDict(extra="forbid")
    step: Annotated[int, Field(multiple_of=8)] = 8
    table: dict[str, int] = {}
    nothing: None = None
    positive: int = 1

    @field_validator("positive")
    @classmethod
    def _positive(cls, value: int) -> int:
        if value <= 0:  # raised, not asserted: pytest rewrites assert statements in test modules
            raise AssertionError("must be above zero")
        return value


class Inner(BaseModel):
    model_config = ConfigDict(extra="forbid")
    x: int = 0


class Outer(BaseModel):
    inner: Inner = Inner()


def params(word: str) -> type[BaseModel]:
    return REGISTRY.lookup(word).params


# (what, model, values, the one diagnostic's message, its hint or None)
CASES: list[tuple[str, type[BaseModel], dict[str, Any], str, str | None]] = [
    # out of range: gt, ge, lt, le and multiple_of in ctx
    ("dense", params("dense"), {"units": 0}, "dense units must be greater than 0, got 0", None),
    ("leaky_relu", params("leaky_relu"), {"negative_slope": -1},
     "leaky_relu negative_slope must be greater than or equal to 0, got -1", None),
    ("dropout", params("dropout"), {"rate": 1.5}, "dropout rate must be less than 1, got 1.5", None),
    ("batchnorm", params("batchnorm"), {"momentum": 2}, "batchnorm momentum must be less than or equal to 1, got 2", None),
    ("layer", Strict, {"step": 3}, "layer step must be a multiple of 8, got 3", None),
    # wrong type
    ("dense", params("dense"), {"units": "ten"}, "dense units must be a whole number, got `ten`", None),
    ("dense", params("dense"), {"units": 2.5}, "dense units must be a whole number, got 2.5", None),
    ("softmax", params("softmax"), {"axis": (3, 3)}, "softmax axis must be a whole number, got 3x3", None),
    ("leaky_relu", params("leaky_relu"), {"negative_slope": "x"}, "leaky_relu negative_slope must be a number, got `x`",
     None),
    ("leaky_relu", params("leaky_relu"), {"negative_slope": [1, 2]},
     "leaky_relu negative_slope must be a number, got [1, 2]", None),
    ("conv", params("conv"), {"filters": 8, "kernel": 3, "bias": "maybe"}, "conv bias must be true or false, got `maybe`",
     None),
    ("relu", params("relu"), {"frozen": 1.5}, "relu frozen must be true or false, got 1.5", None),
    ("relu", params("relu"), {"name": 0}, "relu name must be a valid string, got 0", None),
    ("train", TrainConfig, {"metrics": 0}, "train metrics must be a valid list, got 0", None),
    ("reshape", params("reshape"), {"shape": 0}, "reshape shape must be a valid tuple, got 0", None),
    ("layer", Strict, {"table": 3}, "layer table must be a valid dictionary, got 3", None),
    ("layer", Strict, {"nothing": 1}, "layer nothing must be none, got 1", None),
    # one of the words of a Literal: at the top, inside a call, inside a list of calls
    ("attention", params("attention"), {"score": 0}, "attention score must be `dot`, `general` or `additive`, got 0",
     None),
    ("dense", params("dense"), {"units": 4, "init": {"kind": "variance_scaling", "args": [], "mode": "fan"}},
     "dense init=variance_scaling: mode must be `fan_in`, `fan_out` or `fan_avg`, got `fan`", None),
    ("train", TrainConfig, {"augment": [{"kind": "flip", "args": ["diagonal"]}]},
     "train augment (mode) must be `horizontal`, `vertical` or `both`, got `diagonal`", None),
    # a range inside a call, and inside a tuple inside a call
    ("dense", params("dense"), {"units": 4, "init": {"kind": "normal", "args": [0, -1]}},
     "dense init=normal: std must be greater than 0, got -1", None),
    ("train", TrainConfig, {"optimizer": {"kind": "adam", "args": [], "betas": [0.9, 2]}},
     "train optimizer=adam: betas must be less than or equal to 1, got 2", None),
    # a union: the range error wins, else every alternative is listed
    ("conv", params("conv"), {"filters": 8, "kernel": 3, "stride": 0}, "conv stride must be greater than 0, got 0", None),
    ("conv", params("conv"), {"filters": 8, "kernel": 3, "stride": (2, 0)}, "conv stride must be greater than 0, got 0",
     None),
    ("conv", params("conv"), {"filters": 8, "kernel": 3, "stride": 1.5},
     "conv stride must be a whole number or sizes like 3x3, got 1.5", None),
    ("conv", params("conv"), {"filters": 8, "kernel": 3, "pad": "sane"},
     "conv pad must be `valid` or `same`, a whole number or sizes like 3x3, got `sane`", None),
    # lengths
    ("reshape", params("reshape"), {"shape": []}, "reshape shape must have at least 1 item, got []", None),
    ("train", TrainConfig, {"optimizer": {"kind": "adam", "args": [], "betas": [0.9, 0.9, 0.9]}},
     "train optimizer=adam: betas must have at most 2 items, got [0.9, 0.9, 0.9]", None),
    # missing and extra
    ("conv", params("conv"), {"filters": 8}, "`conv` needs a value for `kernel`",
     f"for example: `{REGISTRY.lookup('conv').example}`"),
    ("input", InputParams, {"vocabulary": 3}, "`input` has no option `vocabulary`", "did you mean `vocab`?"),
    ("train", TrainConfig, {"optimizer": {"kind": "adam", "args": [], "beta": 1}}, "`adam` has no option `beta`",
     "did you mean `betas`?"),
    ("train", TrainConfig, {"metrics": [{"kind": "top_k_accuracy", "args": [], "q": 1}]},
     "`top_k_accuracy` has no option `q`", "its options: k"),
    ("train", TrainConfig, {"schedule": {"kind": "constant", "args": [], "value": 1}}, "`constant` has no option `value`",
     "`constant` takes no options"),
    ("layer", Outer, {"inner": {"bogus": 1}}, "`layer` has no option `inner.bogus`", None),
    # a validator's own sentence: model-level, field-level, an assertion
    ("attention", params("attention"), {"score": "general", "units": 4},
     ("attention with score=general takes no units= (it sizes additive scores: use `attention score=additive units=U` "
      "or `bahdanau_attention U`)"), None),
    ("train", TrainConfig, {"metrics": [3]}, "train metrics expected a metric such as `accuracy`", None),
    ("layer", Strict, {"positive": -1}, "layer positive must be above zero", None),
    # a named choice that does not exist: specc's own error type
    ("dense", params("dense"), {"units": 4, "init": "he_normall"}, "unknown initializer `he_normall`",
     "did you mean `he_normal`?"),
    ("dense", params("dense"), {"units": 4, "activation": "rellu"}, "unknown activation `rellu`", "did you mean `relu`?"),
]


def _errors(model: type[BaseModel], values: dict) -> list[dict]:
    with pytest.raises(ValidationError) as caught:
        model.model_validate(values)
    return caught.value.errors(include_url=False)


def _translate(what: str, model: type[BaseModel], values: dict, errors: list[dict]) -> list[Diagnostic]:
    return translate(errors, model, values, {}, WHERE, what, {})


@pytest.mark.parametrize(("what", "model", "values", "message", "hint"), CASES,
                         ids=[f"{case[3][:60]}" for case in CASES])
def test_each_error_type_is_worded(what, model, values, message, hint):
    (diagnostic,) = _translate(what, model, values, _errors(model, values))
    assert diagnostic.message == message
    assert diagnostic.hint == hint
    assert diagnostic.span == WHERE


def test_the_cases_cover_every_error_type_translated():
    types = {item["type"] for _, model, values, _, _ in CASES for item in _errors(model, values)}
    assert types >= {
        "greater_than", "greater_than_equal", "less_than", "less_than_equal", "multiple_of", "int_parsing",
        "int_type", "int_from_float", "float_parsing", "float_type", "bool_parsing", "bool_type", "string_type",
        "list_type", "tuple_type", "dict_type", "none_required", "literal_error", "too_short", "too_long", "missing",
        "extra_forbidden", "value_error", "assertion_error", "unknown_choice",
    }


def _is_union_label(model: type[BaseModel], loc: tuple, index: int) -> bool:
    """Whether loc[index] is pydantic's label for one alternative of a union field."""
    if index != 1 or loc[0] not in model.model_fields:
        return False
    annotation = model.model_fields[loc[0]].annotation
    return get_origin(annotation) is Union and len([a for a in get_args(annotation) if a is not type(None)]) > 1


def _scrambled(model: type[BaseModel], errors: list[dict]) -> list[dict]:
    return [{**item, "msg": "<reworded by a future pydantic>",
             "loc": tuple(f"<label {i}>" if _is_union_label(model, item["loc"], i) else part
                          for i, part in enumerate(item["loc"]))}
            for item in errors]


def test_diagnostics_do_not_depend_on_pydantic_wording_or_labels():
    labels = 0
    for what, model, values, _, _ in CASES:
        errors = _errors(model, values)
        scrambled = _scrambled(model, errors)
        labels += sum(a["loc"] != b["loc"] for a, b in zip(errors, scrambled))
        assert _translate(what, model, values, scrambled) == _translate(what, model, values, errors), values
    assert labels >= 6  # the union cases did carry labels to scramble


def test_an_unknown_error_type_falls_back_to_pydantics_sentence():
    class Short(BaseModel):
        word: Annotated[str, Field(max_length=2)]

    errors = _errors(Short, {"word": "abcd"})
    assert errors[0]["type"] == "string_too_long"
    (diagnostic,) = _translate("layer", Short, {"word": "abcd"}, errors)
    assert diagnostic.message == f"layer word is not valid: {errors[0]['msg']}, got `abcd`"


def test_a_wrong_type_on_a_word_that_is_no_block_parameter_is_an_unknown_name():
    values = {"filters": "d", "kernel": 3}
    spans = {"filters": Span("t.spec", 2, 6, 7)}
    unknown = Diagnostic("unknown name `d` in block `basic`", spans["filters"], "did you mean `c`?")
    errors = _errors(params("conv"), values)
    assert translate(errors, params("conv"), values, spans, WHERE, "conv", {spans["filters"]: unknown}) == [unknown]
