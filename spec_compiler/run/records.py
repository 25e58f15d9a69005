"""The schemas of what stages hand to each other in files: the run record (run.json), the
preprocessing (preprocess.json) and the metadata an exported ONNX file carries.

Training writes them, and evaluation, export, predict and the runtime read them, only
through these models: a field is added here once, and every reader sees it. Every size
read from a file is checked against a cap before anything is allocated from it.
"""

from __future__ import annotations

import json
import math
from typing import Any, Literal, get_args

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

# Caps on numbers read from files (a hostile or corrupt file must not make us allocate gigabytes).
MAX_RECORD_BYTES = 64 * 2**20  # run.json / preprocess.json / one ONNX metadata entry
MAX_IMAGE_SIDE = 16_384
MAX_IMAGE_CHANNELS = 4  # image files have 1 (L), 3 (RGB) or 4 (RGBA) channels
MAX_VOCAB = 10_000_000
MAX_TEXT_LENGTH = 1_000_000
MAX_LABELS = 1_000_000
MAX_DIM = 2**31 - 1

Dim = int | str  # a size, or the name of a length known at run time

RunStatus = Literal["running", "interrupted", "completed", "diverged", "failed"]


class Record(BaseModel):
    """Read leniently (fields a newer specc adds are ignored), written exactly."""

    model_config = ConfigDict(extra="ignore")

    @classmethod
    def from_json_text(cls, text: str, source: str):
        """Parse and validate; raises ValueError naming `source` on any problem."""
        if len(text) > MAX_RECORD_BYTES:
            raise ValueError(f"{source}: {len(text):,} bytes is over the {MAX_RECORD_BYTES:,}-byte limit")
        try:
            return cls.model_validate_json(text)
        except ValidationError as error:
            first = error.errors()[0]
            where = ".".join(str(part) for part in first["loc"]) or "the top level"
            raise ValueError(f"{source}: {where}: {first['msg']}") from None

    def to_json_text(self) -> str:
        return json.dumps(json_safe(self.model_dump(mode="json")), indent=2) + "\n"


def json_safe(value: Any) -> Any:
    """JSON has no NaN or infinity: write them as null."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: json_safe(v) for k, v in value.items()}
    if isinstance(value, list):
        return [json_safe(v) for v in value]
    return value


def _check_dims(dims: list[Dim]) -> list[Dim]:
    for d in dims:
        if isinstance(d, int) and not 0 < d <= MAX_DIM:
            raise ValueError(f"size {d} is out of range")
    return dims


# --- preprocess.json ---------------------------------------------------------------

class Normalization(Record):
    """x' = (x - mean) / std, with statistics of the training data (or a fixed scale)."""

    kind: str  # standard, minmax, scale
    mean: list[float] = Field(max_length=MAX_DIM)
    std: list[float] = Field(max_length=MAX_DIM)
    axis: int | None = None  # the sample axis the values run along; None: one value for all

    @field_validator("std")
    @classmethod
    def _usable_std(cls, std: list[float]) -> list[float]:
        if any(not math.isfinite(s) or s == 0 for s in std):
            raise ValueError("std holds a zero or non-finite value")
        return std


class ImageFormat(Record):
    """How an image file becomes the model's input: mode by channels, bilinear resize, scale."""

    channels: int = Field(ge=1, le=MAX_IMAGE_CHANNELS)
    height: int = Field(ge=1, le=MAX_IMAGE_SIDE)
    width: int = Field(ge=1, le=MAX_IMAGE_SIDE)
    scale: float = 1 / 255
    invert: bool = False
    max_value: float = 1.0


class TextFormat(Record):
    """The trainer's tokenizer (spec_compiler/text.py): vocabulary and padding rules."""

    vocab: dict[str, int] = Field(max_length=MAX_VOCAB)
    max_length: int = Field(ge=1, le=MAX_TEXT_LENGTH)
    lowercase: bool = True
    pad_id: int = Field(0, ge=0)
    oov_id: int = Field(1, ge=0)
    padding: Literal["pre", "post"] = "pre"
    truncating: Literal["pre", "post"] = "pre"
    split: str | None = None


class Preprocess(Record):
    """preprocess.json: what turns raw data into the model's input, and what its outputs mean."""

    run_id: str | None = None
    input_kind: str
    input_shape: list[Dim] = []
    input_dtype: Literal["float", "int"] = "float"
    labels: list[str] | None = Field(None, max_length=MAX_LABELS)
    normalize: Normalization | None = None
    image: ImageFormat | None = None
    text: TextFormat | None = None
    source: Literal["digits", "file"] = "file"
    digits_adaptation: str | None = None

    @field_validator("input_shape")
    @classmethod
    def _sizes_in_range(cls, dims: list[Dim]) -> list[Dim]:
        return _check_dims(dims)


# --- run.json ------------------------------------------------------------------------

class InputInfo(Record):
    kind: str
    shape: list[Dim]
    dtype: Literal["float", "int"] = "float"
    vocab: int | None = None


class OutputInfo(Record):
    shape: list[Dim]
    final_activation: str | None = None


class DataInfo(Record):
    train: str | None = None  # the --data argument (None: the bundled digits)
    source: str = ""
    validation: str | None = None
    validation_split: float = Field(0.0, ge=0, lt=1)
    n_train: int = Field(0, ge=0)
    n_val: int = Field(0, ge=0)


class TrialInfo(Record):
    """A run made by `specc tune`: its study, trial number and search values."""

    study: str
    number: int = Field(ge=0)
    params: dict[str, str] = {}
    pruned: bool = False


class RunRecord(Record):
    """run.json: which run this is, what it was trained from and how, and how it ended.

    `status` is written at each stage; a run killed without warning still says `running`,
    and `RunFolder.state()` tells that from a live one by its lock."""

    run_id: str | None = None  # None: a run written before run ids (specc 0.1.0)
    specc_version: str
    model: str
    spec_file: str | None = None
    plugins: list[str] = []
    status: RunStatus
    input: InputInfo
    output: OutputInfo
    config: dict[str, Any] = {}
    data: DataInfo = DataInfo()
    device: str = "cpu"
    amp: str | None = None
    world_size: int = 1
    threads: int | None = None
    workers: int = 0  # DataLoader worker processes (0: batches read in the training process)
    compile_s: float | None = None  # seconds torch.compile took before the first step (--compile), apart from time_s
    epochs_run: int = 0
    init_from: str | None = None
    best_epoch: int | None = None
    stopped_early: bool = False
    final_metrics: dict[str, float | None] = {}
    time_s: float | None = None
    samples_per_s: float | None = None
    overrides: dict[str, str] = {}  # `--set KEY=VALUE`, as given
    trial: TrialInfo | None = None


# --- ONNX metadata ---------------------------------------------------------------------

class OnnxInput(Record):
    name: str
    kind: str | None = None
    layout: str | None = None
    shape: list[Dim] = []
    dtype: str = "float32"
    vocab: int | None = None


class OnnxOutput(Record):
    name: str
    shape: list[Dim] = []
    activation: str | None = None


METADATA_PREFIX = "specc."


def _is_text(annotation: Any) -> bool:
    """`str` or `str | None`: stored in metadata_props as plain text."""
    return annotation is str or set(get_args(annotation)) == {str, type(None)}


class OnnxMetadata(Record):
    """The `specc.*` metadata_props of an exported file: enough for an app to feed it and read it."""

    version: str = ""
    model: str = ""
    spec: str = ""
    spec_path: str = ""
    input: OnnxInput | None = None
    output: OnnxOutput | None = None
    # A graph spec's (several) inputs and outputs in spec order; None for a chain (`input`, `output`).
    inputs: list[OnnxInput] | None = None
    outputs: list[OnnxOutput] | None = None
    labels: list[str] | None = Field(None, max_length=MAX_LABELS)
    normalization: Normalization | None = None
    normalization_in_graph: bool = True
    image: ImageFormat | None = None
    text: TextFormat | None = None
    weights: str = "initialized"
    run_id: str | None = None
    preprocess: dict[str, Any] = {}

    def to_props(self) -> dict[str, str]:
        """metadata_props entries: text fields as they are (left out when None), the rest as JSON."""
        props = {}
        for key, value in self.model_dump(mode="json").items():
            if not _is_text(type(self).model_fields[key].annotation):
                props[METADATA_PREFIX + key] = json.dumps(json_safe(value))
            elif value is not None:
                props[METADATA_PREFIX + key] = value
        return props

    @classmethod
    def from_props(cls, props: dict[str, str], source: str = "the model file") -> OnnxMetadata:
        """Read the entries back (entries of other tools are ignored); ValueError on a bad one."""
        fields: dict[str, Any] = {}
        for key, text in props.items():
            if not key.startswith(METADATA_PREFIX):
                continue
            name = key.removeprefix(METADATA_PREFIX)
            if name not in cls.model_fields:
                continue
            if len(text) > MAX_RECORD_BYTES:
                raise ValueError(f"{source}: metadata `{key}` is {len(text):,} bytes, over the limit")
            if _is_text(cls.model_fields[name].annotation):
                fields[name] = text
                continue
            try:
                fields[name] = json.loads(text)
            except json.JSONDecodeError:
                raise ValueError(f"{source}: metadata `{key}` is not valid JSON") from None
        try:
            return cls.model_validate(fields)
        except ValidationError as error:
            first = error.errors()[0]
            where = ".".join(str(part) for part in first["loc"])
            raise ValueError(f"{source}: metadata `{METADATA_PREFIX}{where}`: {first['msg']}") from None
