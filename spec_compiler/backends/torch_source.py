"""`specc compile FILE --emit torch`: a readable, standalone PyTorch source file.

The file defines `class <ModelName>(nn.Module)` with the same submodules, state_dict
keys and outputs as `spec_compiler.load(FILE).build()`, so weights saved from one load
into the other. It imports torch and nothing of specc.

How: the model is built once (the registry's builders, exactly as `build()` does) while
every module's constructor arguments are recorded; each module is then written as the
call that makes it (`nn.Conv2d(1, 6, (5, 5))`), and the few specc classes it uses
(same-padding convs, pooling with Keras padding, the structure containers, recurrent
wrappers, ...) are copied into the file with the helpers they need. A plain attribute
a builder set after construction is written with `_set(...)`. So the source needs no
per-kind template: a new registry entry is emitted as soon as it builds.

Before returning, the text is executed and instantiated (on the meta device, without
allocating weights) to check that it declares exactly the built module's parameters
and buffers.
"""

from __future__ import annotations

import builtins
import contextlib
import inspect
import keyword
import math
import re
import sys
import textwrap
from typing import Any

import torch
from torch import nn

from ..errors import UsageError
from ..modules.structure import Sequence
from ..text import PAD_ID
from .python_text import Doc, flat, names_in, render
from .torch_build import SpecGraph, SpecModule, build_module
from .torch_record import Call, recording
from .torch_source_graph import graph_docstring, graph_methods

# Standard-library modules a copied helper may import (the file imports nothing else but torch).
STDLIB_OK = {"math", "copy", "typing", "functools", "itertools", "collections"}


class EmitError(UsageError):
    """The model holds something that cannot be written as standalone source."""


# --- the file --------------------------------------------------------------------------

def emit_source(model) -> str:
    """The standalone PyTorch source for a checked `Model`."""
    with recording() as records, torch.device("meta"), _quiet():  # meta: no weights are allocated
        module = build_module(model.info, seed=0)
    writer = _Writer(records)
    text, class_name = writer.file(model, module)
    check_source(text, module, class_name)
    return text


def _class_name(name: str) -> str:
    words = re.split(r"[^0-9A-Za-z]+", name)
    text = "".join(w[:1].upper() + w[1:] for w in words if w) or "Model"
    if text[0].isdigit() or keyword.iskeyword(text):
        text = "Model" + text  # `model 2d`, `model true`: a class name must be an identifier, not a keyword
    return text


def _docstring_text(text: str) -> str:
    """A model name or path as it may appear inside a triple-quoted docstring
    (backslashes of a Windows path, quotes)."""
    return text.replace("\\", "\\\\").replace('"', '\\"')


_RESERVED = {"forward_logits", "final_activation"}


def _attribute_ok(name: str) -> bool:
    """Whether `self.NAME` reaches a child: not a keyword, not an nn.Module attribute, and
    no leading underscore (`__x` is mangled inside a class, `_modules` is torch's own)."""
    return (name.isidentifier() and not keyword.iskeyword(name) and not name.startswith("_")
            and not hasattr(nn.Module, name) and name not in _RESERVED)


class _Writer:
    def __init__(self, records: dict[int, Call]):
        self.records = records
        self.definitions: dict[str, tuple[Any, str]] = {}  # name -> (object, source), in dependency order
        self.imports: dict[str, str] = {"torch": "torch", "nn": "torch.nn"}
        self.uses_set = False

    # -- the whole file --

    def file(self, model, module: SpecModule) -> tuple[str, str]:
        """The file's text and the model class's name."""
        info = model.info
        ir = info.ir
        init_lines = []
        for step_name, child, _ in _steps(module):
            target = f"self.{step_name}" if _attribute_ok(step_name) else f'self._modules["{step_name}"]'
            init_lines.append(f"        {target} = {render(self.expr(child), 8, 8 + len(target) + 3)}")
        if module.tied:
            init_lines += ["        # tied weights (tie= in the spec): one Parameter under both names"]
            init_lines += [f"        {_parameter_access(module, tied)} = {_parameter_access(module, table)}"
                           for tied, table in module.tied]
        frozen = _frozen_paths(module)
        if frozen:
            init_lines += ["        # frozen in the spec: not trained"]
            init_lines += [f"        {_access(module, path)}.requires_grad_(False)" for path in frozen]
        name = _class_name(model.name)
        if name in self.definitions or name in self.imports or name == "_set":
            name += "Model"  # a model called `residual` next to the copied Residual class
        readers = [path for path, inner in module.named_modules() if getattr(inner, "masks_padding", False)]

        def padding_lines(x: str) -> list[str]:  # as SpecModule.share_padding does
            if not readers:
                return []
            return [f"        padding = {x} == {PAD_ID}  # the padding id: layers with mask=padding ignore it",
                    *(f"        {_access(module, path)}.padding = padding" for path in readers)]

        trained = info.as_trained  # the summary's counts
        counts = f"    {trained.total:,} parameters ({trained.trainable:,} trainable)."
        if isinstance(module, SpecGraph):
            finals = {k: v for k, v in module.final_activations.items() if v}
            body = [f"class {name}(nn.Module):", f'    """{graph_docstring(model)}', "",
                    counts + (" forward() gives the outputs in this order, forward_logits() each before its final "
                              "activation." if finals else ""), '    """', "",
                    f"    final_activations = {module.final_activations!r}", "",
                    "    def __init__(self):", "        super().__init__()", *init_lines, "",
                    *graph_methods(module, self.activation_expr, lambda layer: _access(module, layer), padding_lines)]
        else:
            body = self.chain_class(model, module, name, counts, init_lines, padding_lines("x"))
        frozen_norms = [_access(module, path) for path in frozen if any(
            isinstance(m, nn.modules.batchnorm._BatchNorm) for m in _lookup(module, path).modules())]
        if frozen_norms:
            body += [
                "",
                "    def train(self, mode: bool = True):",
                "        super().train(mode)",
                f"        for layer in ({', '.join(frozen_norms)},):  # frozen: batch norms keep their statistics",
                "            for module in layer.modules():",
                "                if isinstance(module, nn.modules.batchnorm._BatchNorm):",
                "                    module.eval()",
                "        return self",
            ]
        header = [
            f'"""{_docstring_text(ir.name)}: generated by `specc compile {_docstring_text(ir.path)} --emit torch`.',
            "",
            "A standalone PyTorch model: it imports only torch (and, where a layer's module needs it,",
            "the Python standard library). Its state_dict keys match the module built by specc, so",
            "weights trained with `specc train` load into it:",
            "",
            "    from safetensors.torch import load_file",
            f"    model = {name}()",
            "    model.load_state_dict(load_file(\"runs/.../weights.safetensors\"))",
            '"""',
            "",
            "from __future__ import annotations",
            "",
            *self.import_lines(),
        ]
        definitions = [source for _, source in self.definitions.values()]
        if self.uses_set:
            definitions.append(_SET_SOURCE)
        parts = ["\n".join(header)]
        for source in definitions:
            parts.append(source.rstrip("\n"))
        parts.append("\n".join(body))
        return "\n\n\n".join(parts) + "\n", name

    def chain_class(self, model, module: SpecModule, name: str, counts: str, init_lines: list[str],
                    padding: list[str]) -> list[str]:
        """The class of a chain spec: its forward and forward_logits run the layers in order."""
        ir, info = model.ir, model.info
        logits_lines, final_expr = self.forward_lines(module)
        logits_lines = padding + logits_lines
        dtype = "int64 token ids" if ir.input.type.dtype == "int" else "float32"
        shape = ", ".join(str(d) if isinstance(d, int) else str(d) for d in ir.input.type.dims)
        out_shape = ", ".join(str(d) for d in info.output.dims)
        body = [
            f"class {name}(nn.Module):",
            f'    """{_docstring_text(ir.name)}: input {ir.input.kind} (N, {shape}), {dtype}; output (N, {out_shape}).',
            "",
            counts + (f" forward() ends in {module.final_activation};" if module.final_activation else ""),
            *(["    forward_logits() gives the values before it."] if module.final_activation else []),
            '    """',
            "",
            f"    final_activation = {module.final_activation!r}",
            "",
            "    def __init__(self):",
            "        super().__init__()",
            *init_lines,
            "",
        ]
        if module.final == "nested":  # the last layer's own forward_logits leaves its final activation out
            whole = logits_lines[:-1] + [logits_lines[-1].replace(".forward_logits(x)", "(x)")]
            body += ["    def forward(self, x: torch.Tensor) -> torch.Tensor:", *whole, "        return x", "",
                     "    def forward_logits(self, x: torch.Tensor) -> torch.Tensor:", *logits_lines,
                     "        return x"]
        elif final_expr is None:
            body += ["    def forward(self, x: torch.Tensor) -> torch.Tensor:", *logits_lines, "        return x", "",
                     "    def forward_logits(self, x: torch.Tensor) -> torch.Tensor:",
                     "        return self.forward(x)"]
        else:
            body += ["    def forward(self, x: torch.Tensor) -> torch.Tensor:",
                     f"        return {final_expr.format(x='self.forward_logits(x)')}", "",
                     "    def forward_logits(self, x: torch.Tensor) -> torch.Tensor:",
                     *logits_lines, "        return x"]
        return body

    def import_lines(self) -> list[str]:
        lines = []
        for alias, module in sorted(self.imports.items(), key=lambda item: (not item[1].startswith("torch"), item[1])):
            if alias == module:
                lines.append(f"import {module}")
            elif "." in module and module.rsplit(".", 1)[1] == alias:
                lines.append(f"from {module.rsplit('.', 1)[0]} import {alias}")
            else:
                lines.append(f"import {module} as {alias}")
        return lines

    # -- forward --

    def forward_lines(self, module: SpecModule) -> tuple[list[str], str | None]:
        """The lines of forward_logits (or forward), and the final activation's expression."""
        steps = _steps(module)
        lines = []
        final_expr = None
        for index, (name, child, activation) in enumerate(steps):
            last = index == len(steps) - 1
            call = f"self.{name}" if _attribute_ok(name) else f'self._modules["{name}"]'
            if last and module.final == "step":
                final_expr = self.activation_expr(child)
                break
            if last and module.final == "nested":
                lines.append(f"        x = {call}.forward_logits(x)")
                break
            if last and module.final == "trailing":
                lines.append(f"        x = {call}(x)")
                final_expr = self.activation_expr(activation)
                break
            value = f"{call}(x)"
            if activation is not None:
                value = self.activation_expr(activation).format(x=value)
            lines.append(f"        x = {value}")
        return lines, final_expr

    def activation_expr(self, module: nn.Module) -> str:
        """An expression with `{x}` for an activation module."""
        simple = {
            nn.ReLU: "torch.relu({x})", nn.Tanh: "torch.tanh({x})", nn.Sigmoid: "torch.sigmoid({x})",
            nn.SELU: "torch.selu({x})", nn.ReLU6: "F.relu6({x})", nn.SiLU: "F.silu({x})",
            nn.Hardsigmoid: "F.hardsigmoid({x})", nn.Identity: "{x}",
        }
        kind = type(module)
        if kind in simple:
            text = simple[kind]
        elif kind is nn.Softmax:
            text = f"torch.softmax({{x}}, dim={module.dim})"
        elif kind is nn.LogSoftmax:
            text = f"torch.log_softmax({{x}}, dim={module.dim})"
        elif kind is nn.LeakyReLU:
            text = f"F.leaky_relu({{x}}, {module.negative_slope!r})"
        elif kind is nn.ELU:
            text = f"F.elu({{x}}, {module.alpha!r})"
        elif kind is nn.GELU:
            approximate = "" if module.approximate == "none" else f", approximate={module.approximate!r}"
            text = f"F.gelu({{x}}{approximate})"
        elif kind is nn.Softplus and module.beta == 1 and module.threshold == 20:
            text = "F.softplus({x})"
        else:
            return flat(self.expr(module)).replace("{", "{{").replace("}", "}}") + "({x})"
        if text.startswith("F."):
            self.imports["F"] = "torch.nn.functional"
        return text

    # -- module expressions --

    def expr(self, module: nn.Module) -> Doc:
        """The constructor call that makes `module`, as a layout tree (see `render`)."""
        record = self.records.get(id(module))
        if record is None or record.module is not module:
            raise EmitError(f"cannot write {type(module).__name__} as source: it was not made by a constructor "
                            "(a copy); write the layer so that its builder constructs it")
        name = self.class_reference(record.cls)
        arguments = [self.value(v) for v in record.positional]
        arguments += [Doc(f"{k}=", [self.value(v)], "") for k, v in record.keywords.items()]
        doc = Doc(name + "(", arguments, ")")
        changed = self.changed_attributes(module, record)
        if changed:
            self.uses_set = True
            doc = Doc("_set(", [doc, *(Doc(f"{k}=", [self.value(v)], "") for k, v in changed.items())], ")")
        return doc

    def changed_attributes(self, module: nn.Module, record: Call) -> dict[str, Any]:
        """Plain attributes the builder set after construction (they differ from a fresh instance's)."""
        try:
            with torch.device("meta"), _quiet():
                fresh = record.cls(*record.positional, **record.keywords)
        except Exception:  # noqa: BLE001 - a constructor that cannot run on meta tensors
            with _quiet():
                fresh = record.cls(*record.positional, **record.keywords)
        changed = {}
        missing = object()
        for key, value in vars(module).items():
            if key.startswith("_") or key == "training" or not _plain(value):
                continue
            if not _equal(getattr(fresh, key, missing), value):
                changed[key] = value
        return changed

    def value(self, value: Any) -> Doc | str:
        if isinstance(value, nn.Module):
            return self.expr(value)
        if isinstance(value, bool) or value is None or isinstance(value, (int, str)):
            return repr(value)
        if isinstance(value, float):
            if math.isinf(value):
                return 'float("inf")' if value > 0 else 'float("-inf")'
            if math.isnan(value):
                return 'float("nan")'
            return repr(value)
        if isinstance(value, (list, tuple)):
            items = [self.value(v) for v in value]
            if isinstance(value, list):
                return Doc("[", items, "]")
            return Doc("(", items, ",)" if len(items) == 1 else ")")
        if isinstance(value, dict):
            return Doc("{", [Doc(f"{self.value(k)}: ", [self.value(v)], "") for k, v in value.items()], "}")
        if isinstance(value, torch.dtype):
            return str(value)
        if isinstance(value, torch.device):
            return f"torch.device({str(value)!r})"
        raise EmitError(f"cannot write a {type(value).__name__} ({value!r}) as source")

    def class_reference(self, cls: type) -> str:
        if getattr(nn, cls.__name__, None) is cls:
            return f"nn.{cls.__name__}"
        self.define(cls)
        return cls.__name__

    # -- copied definitions --

    def define(self, obj: Any) -> None:
        name = obj.__name__
        if name in self.definitions:
            if self.definitions[name][0] is not obj:
                raise EmitError(f"two different definitions named `{name}` ({obj.__module__})")
            return
        if obj.__module__.startswith("torch"):
            raise EmitError(f"`{name}` from {obj.__module__} is not reachable as torch.nn.{name}")
        try:
            source = textwrap.dedent(inspect.getsource(obj))
        except (OSError, TypeError) as error:
            raise EmitError(f"cannot read the source of `{name}` ({obj.__module__}): {error}") from None
        self.definitions[name] = (obj, "")  # placeholder: breaks cycles, fixes the order below
        namespace = vars(sys.modules[obj.__module__])
        loaded, bound = names_in(source)
        for used in sorted(loaded):
            if used in namespace:
                self.require(used, namespace[used], obj)
            elif not hasattr(builtins, used) and used not in bound:
                raise EmitError(f"`{name}` ({obj.__module__}) uses `{used}`, which cannot be resolved")
        self.definitions.pop(name)
        self.definitions[name] = (obj, source)

    def require(self, alias: str, value: Any, user: Any) -> None:
        if inspect.ismodule(value):
            root = value.__name__.split(".")[0]
            if root != "torch" and root not in STDLIB_OK:
                raise EmitError(f"`{user.__name__}` ({user.__module__}) uses the module {value.__name__}; "
                                "the emitted file may import only torch and the standard library")
            known = self.imports.get(alias)
            if known is not None and known != value.__name__:
                raise EmitError(f"`{alias}` names both {known} and {value.__name__}")
            self.imports[alias] = value.__name__
        elif inspect.isclass(value) or inspect.isfunction(value):
            module = getattr(value, "__module__", "") or ""
            if module.startswith("torch"):
                path = f"{module}.{value.__name__}"
                raise EmitError(f"`{user.__name__}` uses `{alias}` imported from torch ({path}); "
                                "refer to it through its module (nn., F., torch.)")
            if module in ("typing", "__future__"):
                return
            if value.__name__ != alias:
                raise EmitError(f"`{user.__name__}` uses `{alias}`, an alias of `{value.__name__}`")
            self.define(value)
        elif isinstance(value, (int, float, str, bool, tuple)) or value is None:
            if alias not in self.definitions:
                self.definitions[alias] = (value, f"{alias} = {value!r}\n")
        else:
            raise EmitError(f"`{user.__name__}` ({user.__module__}) uses `{alias}`, a {type(value).__name__} "
                            "that cannot be copied into the emitted file")


_SET_SOURCE = '''def _set(module, **attributes):
    """Set the plain attributes specc's builder gives a module after constructing it."""
    for name, value in attributes.items():
        setattr(module, name, value)
    return module
'''


def _steps(module: Sequence) -> list[tuple[str, nn.Module, nn.Module | None]]:
    return [(name, module._modules[name], activation) for name, activation in zip(module._names, module._activations)]


def _frozen_paths(module: SpecModule) -> list[str]:
    """Submodule paths of the spec's frozen layers (outermost only)."""
    frozen = {id(m) for m in module._frozen}
    found = [name for name, m in module.named_modules() if id(m) in frozen]  # model order
    return [p for p in found if not any(p.startswith(q + ".") for q in found if q != p)]


def _lookup(module: nn.Module, path: str) -> nn.Module:
    for part in path.split("."):
        module = module._modules[part]
    return module


def _access(module: nn.Module, path: str) -> str:
    """The expression that reaches submodule `path` from `self` in the emitted class."""
    text = "self"
    for part in path.split("."):
        plain = _attribute_ok(part) and part not in vars(module) and not hasattr(type(module), part)
        text += f".{part}" if plain else f'._modules["{part}"]'
        module = module._modules[part]
    return text


def _parameter_access(module: nn.Module, path: str) -> str:
    """The expression for the parameter at `path` (`self.dense_1.weight`)."""
    owner, name = path.rsplit(".", 1)
    return f"{_access(module, owner)}.{name}"


def _plain(value: Any) -> bool:
    if isinstance(value, (bool, int, float, str)) or value is None:
        return True
    if isinstance(value, (list, tuple)):
        return all(_plain(v) for v in value)
    if isinstance(value, dict):
        return all(_plain(k) and _plain(v) for k, v in value.items())
    return False


def _equal(a: Any, b: Any) -> bool:
    try:
        return type(a) is type(b) and bool(a == b)
    except Exception:  # noqa: BLE001
        return False


@contextlib.contextmanager
def _quiet():
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        yield


# --- the check -------------------------------------------------------------------------

def load_source(text: str, name: str = "specc_emitted") -> dict[str, Any]:
    """Execute emitted source in a fresh namespace (a test helper, and the self-check)."""
    namespace: dict[str, Any] = {"__name__": name}
    exec(compile(text, f"<{name}>", "exec"), namespace)  # noqa: S102 - our own output
    return namespace


def check_source(text: str, module: nn.Module, class_name: str) -> None:
    """The emitted class declares exactly the built module's parameters and buffers, and
    shares the Parameters the built module shares (`tie=`)."""
    namespace = load_source(text)
    with torch.device("meta"), _quiet():
        emitted = namespace[class_name]()
    expected = {k: tuple(v.shape) for k, v in module.state_dict().items()}
    got = {k: tuple(v.shape) for k, v in emitted.state_dict().items()}
    if expected != got:
        missing = sorted(set(expected) - set(got))[:5]
        extra = sorted(set(got) - set(expected))[:5]
        shapes = sorted(k for k in set(got) & set(expected) if got[k] != expected[k])[:5]
        raise RuntimeError(f"internal error: the emitted source does not match the built module "
                           f"(missing {missing}, extra {extra}, other shapes {shapes})")
    parameters = dict(emitted.named_parameters(remove_duplicate=False))
    untied = [tied for tied, table in getattr(module, "tied", []) if parameters[tied] is not parameters[table]]
    if untied:
        raise RuntimeError(f"internal error: the emitted source does not tie {untied}")


__all__ = ["emit_source", "load_source", "check_source"]
