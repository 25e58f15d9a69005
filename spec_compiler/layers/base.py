"""The layer registry: one entry per layer kind.

An entry holds everything specc knows about a kind, so that adding one touches one
place: its names, its parameter schema (pydantic), how positional arguments fill the
schema, its shape rule, parameter-count rule, FLOPs rule and PyTorch builder, what each
parameter of the built module is (`WeightRoles`) and, for a structural kind, how its
bodies are written, named and merged (`BodyLayout`). Builders import torch inside the
function (from spec_compiler/modules/), so `specc compile` never loads torch.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from fnmatch import fnmatchcase
from typing import TYPE_CHECKING, Annotated, Any, Literal, Protocol

from pydantic import AfterValidator, BaseModel, ConfigDict

from ..shapes import ShapeError, TensorType

if TYPE_CHECKING:  # pragma: no cover
    from torch import nn


class LayerParams(BaseModel):
    """Options every layer accepts. Kinds subclass it with their own fields."""

    model_config = ConfigDict(extra="forbid", frozen=True, defer_build=True)

    name: str | None = None
    frozen: bool = False

    def advice(self) -> tuple[Advice, ...]:
        """Values that are valid but probably not what the user meant; elaboration prints
        each as a warning at the value. None by default."""
        return ()


@dataclass(frozen=True)
class Advice:
    """A warning about one field's value (`batchnorm momentum=0.1`)."""

    field: str
    message: str
    hint: str | None = None


@dataclass(frozen=True)
class Slot:
    """A positional argument. A `scalar` slot given `6x5x5` takes the 6 and passes
    `5x5` on to the next slot: that is how `conv 6x5x5` means `conv 6 5x5`."""

    field: str
    takes: Literal["scalar", "dims"] = "scalar"


@dataclass(frozen=True)
class Count:
    """Parameters, split as Keras splits them: trainable, and not (batch-norm statistics)."""

    trainable: int = 0
    non_trainable: int = 0

    def __add__(self, other: Count) -> Count:
        return Count(self.trainable + other.trainable, self.non_trainable + other.non_trainable)

    @property
    def total(self) -> int:
        return self.trainable + self.non_trainable


@dataclass(frozen=True)
class BodyResult:
    """What inference learned about a body (a sub-stack), handed to structural rules."""

    output: TensorType
    count: Count
    flops: int


class InferBody(Protocol):
    """The inference engine's callback for structural kinds."""

    bodies: int  # how many bodies the node has
    kinds: tuple[tuple[str, ...], ...]  # the layer kinds written in each body, in order

    def __call__(self, index: int, x: TensorType) -> BodyResult:
        """Infer body `index` on input `x` (an empty body is the identity)."""


def no_params(p: Any, x: TensorType, y: TensorType) -> Count:
    return Count()


def no_flops(p: Any, x: TensorType, y: TensorType) -> int:
    return 0


def sum_of_bodies_count(p: Any, x: TensorType, y: TensorType, bodies: list[BodyResult]) -> Count:
    total = Count()
    for body in bodies:
        total = total + body.count
    return total


def sum_of_bodies_flops(p: Any, x: TensorType, y: TensorType, bodies: list[BodyResult]) -> int:
    return sum(body.flops for body in bodies)


@dataclass(frozen=True)
class BodyLayout:
    """How a structural kind's `{ }` holds its bodies, what each body is called, and how
    their outputs meet. Elaboration, inference, the summary, drawings and lowering all
    ask this instead of knowing kinds by name.

    - `sequence`: the whole `{ }` is one body (`group`, `timedistributed`); it adds no
      segment to its layers' paths (`basic_1.conv2d_1`).
    - `branches`: every body is written `MARKER { ... }` (`branch`), at least `min_bodies`.
    - `main_and_marked`: the statements are body 0; one optional `MARKER { ... }`
      (`shortcut`) is body 1, and an absent one is the identity.

    Bodies of `branches` and `main_and_marked` all read the node's input (`parallel`);
    `merge` names how their outputs are combined, and drawings show it. A `transparent`
    node is only a name around its body (`group`): its output is its body's, so it adds no
    activation memory and no box of its own to a drawing.
    """

    form: Literal["sequence", "branches", "main_and_marked"]
    marker: str | None = None
    labels: tuple[str, ...] = ()  # body names in module paths; `branches` uses MARKER_1, MARKER_2, ...
    min_bodies: int = 1
    merge: str | None = None  # how the bodies' outputs are combined ("add", "concat"); None for one body
    transparent: bool = False

    @property
    def parallel(self) -> bool:
        return self.form != "sequence"

    def label(self, index: int) -> str:
        """The path segment of body `index` (`body`, `shortcut`, `branch_2`; none for a sequence).
        A structural module names its children the same way, so paths are module paths."""
        if self.form == "sequence":
            return ""
        if self.form == "branches":
            return f"{self.marker}_{index + 1}"
        return self.labels[index]


SEQUENCE = BodyLayout("sequence")
GROUP = BodyLayout("sequence", transparent=True)
BRANCHES = BodyLayout("branches", marker="branch", min_bodies=2)
MAIN_AND_SHORTCUT = BodyLayout("main_and_marked", marker="shortcut", labels=("body", "shortcut"), merge="add")


# The spec options that act on each weight role (Keras' names). Roles are listed most
# specific first: a parameter takes the first role with a pattern that matches it.
ROLE_OPTIONS = {
    "bias": ("bias_init", "bias_regularizer", "bias_constraint"),
    "scale": ("init", "regularizer", "constraint"),
    "embedding": ("init", "regularizer", "constraint"),
    "recurrent_kernel": ("recurrent_init", "recurrent_regularizer", "recurrent_constraint"),
    "kernel": ("init", "regularizer", "constraint"),
}


@dataclass(frozen=True)
class WeightRoles:
    """What each parameter of a kind's built module is, so that options reach the right
    weights without guessing from PyTorch's parameter names. Each role lists patterns
    (fnmatch) of parameter paths inside the kind's module: `weight`, `out_proj.bias`,
    `weight_hh_l*`.

    - kernel: a weight matrix or filter bank, output units first (`init=`, `regularizer=`,
      `constraint=`);
    - recurrent_kernel: a hidden-to-hidden kernel (`recurrent_init=`, ...);
    - embedding: a lookup table (vocabulary, units), input first, so its fan_in is the
      vocabulary (`init=`, ...);
    - scale: a normalization's gamma (`init=`, ...);
    - bias: a bias, or a normalization's beta (`bias_init=`, ...).

    `onnx_ops` names the ONNX operators the kernels end up in once exported (`Gemm`,
    `LSTM`, `Gather`): int8 export quantizes those.
    """

    kernel: tuple[str, ...] = ()
    recurrent_kernel: tuple[str, ...] = ()
    embedding: tuple[str, ...] = ()
    scale: tuple[str, ...] = ()
    bias: tuple[str, ...] = ()
    onnx_ops: tuple[str, ...] = ()

    def role(self, path: str) -> str | None:
        """The role of the parameter at `path` in the module, None if no pattern names it."""
        for role in ROLE_OPTIONS:
            if any(fnmatchcase(path, pattern) for pattern in getattr(self, role)):
                return role
        return None


NO_WEIGHTS = WeightRoles()
# For kinds that hold parameters and declare no roles (plugins): torch's naming
# convention, a parameter whose name holds `bias` is a bias and any other a kernel.
TORCH_NAMED_WEIGHTS = WeightRoles(kernel=("*",), bias=("*bias*",), onnx_ops=("Gemm", "MatMul"))


@dataclass(frozen=True)
class LayerKind:
    """One registry entry. Leaf kinds use `shape`, `count`, `flops`, `build`.

    Structural kinds (`layout` set) get an `InferBody` callback in their shape rule,
    their bodies' results (`BodyResult` list) in their count and FLOPs rules (which
    default to the sum of the bodies'), and the built bodies in their builder.
    `weights` says what each parameter of the built module is.
    """

    name: str
    params: type[LayerParams]
    shape: Callable[..., TensorType]
    build: Callable[..., nn.Module]
    doc: str
    slots: tuple[Slot, ...] = ()
    aliases: tuple[str, ...] = ()
    count: Callable[..., Count] = no_params
    flops: Callable[..., int] = no_flops
    # None: a leaf; else how its `{ }` holds bodies (see BodyLayout).
    layout: BodyLayout | None = None
    # What each parameter of the built module is (see WeightRoles). Left out: none for a
    # kind without parameters of its own, else TORCH_NAMED_WEIGHTS.
    weights: WeightRoles | None = None
    example: str = ""
    category: str = "core"
    # For activation kinds: the elementwise function, so other layers can take it
    # as a trailing word (`dense 120 relu`).
    is_activation: bool = False

    def __post_init__(self) -> None:
        if self.weights is None:
            holds_parameters = self.layout is None and self.count is not no_params
            object.__setattr__(self, "weights", TORCH_NAMED_WEIGHTS if holds_parameters else NO_WEIGHTS)
        if self.layout is not None:
            if self.count is no_params:
                object.__setattr__(self, "count", sum_of_bodies_count)
            if self.flops is no_flops:
                object.__setattr__(self, "flops", sum_of_bodies_flops)

    @property
    def takes_activation(self) -> bool:
        return "activation" in self.params.model_fields


class Registry:
    """Layer kinds by name and alias.

    Built-in kinds are registered by importing their module, which builds their schemas;
    a `Catalogue` of which module registers which words lets the registry import a module
    when one of its words is first looked up, so a spec builds only the kinds it uses.
    Listing every word or kind imports every module."""

    def __init__(self) -> None:
        self._kinds: dict[str, LayerKind] = {}
        self._names: dict[str, str] = {}
        self._activations: list[str] | None = None  # sorted once; elaboration asks per layer
        self._catalogue: Catalogue | None = None
        self._unloaded: list[str] = []  # catalogue modules not imported yet, in catalogue order

    def set_catalogue(self, catalogue: Catalogue) -> None:
        self._catalogue, self._unloaded = catalogue, list(catalogue.modules)
        self._activations = None

    def add(self, kind: LayerKind) -> LayerKind:
        self._activations = None
        for word in (kind.name, *kind.aliases):
            self._load(self._module_of(word))  # a built-in word taken by a plugin is a clash, loaded or not
            if word in self._names:
                raise ValueError(f"layer word `{word}` registered twice")
            self._names[word] = kind.name
        self._kinds[kind.name] = kind
        return kind

    def lookup(self, word: str) -> LayerKind | None:
        name = self._names.get(word)
        if name is None and self._unloaded:
            module = self._module_of(word)
            self._load(module) if module else self._load_all()  # not catalogued (a new kind): look everywhere
            name = self._names.get(word)
        return self._kinds[name] if name else None

    def __getitem__(self, name: str) -> LayerKind:
        kind = self.lookup(name)
        if kind is None or kind.name != name:
            raise KeyError(name)
        return kind

    def words(self) -> list[str]:
        self._load_all()
        return sorted(self._names)

    def kinds(self) -> list[LayerKind]:
        """Every kind: the built-in ones in catalogue order, then plugins' in registration order."""
        self._load_all()
        order = self._catalogue.order if self._catalogue else {}
        return sorted(self._kinds.values(), key=lambda kind: order.get(kind.name, len(order)))

    def activations(self) -> list[str]:
        """Every activation word, without importing any module."""
        if self._activations is None:
            words = {w for w, k in self._names.items() if self._kinds[k].is_activation}
            self._activations = sorted(words | set(self._catalogue.activations if self._catalogue else ()))
        return list(self._activations)

    def markers(self) -> dict[str, list[str]]:
        """Each body marker word (`branch`) and the kinds whose bodies it marks (`concat`, `add`),
        without importing any module."""
        owners: dict[str, list[str]] = {marker: list(kinds) for marker, kinds in
                                        (self._catalogue.markers if self._catalogue else {}).items()}
        for kind in self._kinds.values():
            if kind.layout is not None and kind.layout.marker and kind.name not in owners.get(kind.layout.marker, ()):
                owners.setdefault(kind.layout.marker, []).append(kind.name)
        return owners

    def _module_of(self, word: str) -> str | None:
        return self._catalogue.module_of.get(word) if self._catalogue else None

    def _load(self, module: str | None) -> None:
        if module in self._unloaded:
            self._unloaded.remove(module)  # first: the module's own registrations must not load it again
            self._catalogue.load(module)

    def _load_all(self) -> None:
        while self._unloaded:
            self._load(self._unloaded[0])


@dataclass(frozen=True)
class Catalogue:
    """The built-in layer modules and the words each registers (in registration order), the
    activation words and body markers among them, and how to import a module by name.
    tests/compiler/test_layer_catalogue.py checks it against what the modules register."""

    words: dict[str, tuple[str, ...]]  # module -> its words: each kind's name, then its aliases
    activations: tuple[str, ...]
    markers: dict[str, tuple[str, ...]]  # marker word -> the kinds whose bodies it marks
    load: Callable[[str], object]

    @property
    def modules(self) -> tuple[str, ...]:
        return tuple(self.words)

    @functools.cached_property
    def module_of(self) -> dict[str, str]:
        return {word: module for module, words in self.words.items() for word in words}

    @functools.cached_property
    def order(self) -> dict[str, int]:
        return {word: index for index, word in enumerate(self.module_of)}


REGISTRY = Registry()


def kernel_ops(kinds: Iterable[LayerKind]) -> list[str]:
    """The ONNX operators that hold these kinds' kernels once exported (sorted): what
    int8 export quantizes."""
    return sorted({op for kind in kinds for op in kind.weights.onnx_ops})


def register(kind: LayerKind) -> LayerKind:
    return REGISTRY.add(kind)


def _known_activation(word: str) -> str:
    from ..options import UnknownChoice

    if word not in REGISTRY.activations():
        raise UnknownChoice("activation", word, REGISTRY.activations())
    return REGISTRY.lookup(word).name  # an alias (`swish`) names its kind (`silu`)


# A trailing activation word: `dense 120 relu`.
ActivationName = Annotated[str, AfterValidator(_known_activation)]


def require_float(x: TensorType, kind: str) -> None:
    if x.dtype == "int":
        raise ShapeError(
            f"{kind} expects float features, got token ids {x}",
            "add `embedding N` after a tokens input to turn ids into vectors",
            about_input=True,
        )



def divisors(n: int) -> str:
    """The divisors of n for a hint (`heads=` one of 1, 2, 4, 8): at most twelve."""
    found = [d for d in range(1, n + 1) if n % d == 0]
    return ", ".join(map(str, found[:12])) + (", ..." if len(found) > 12 else "")
