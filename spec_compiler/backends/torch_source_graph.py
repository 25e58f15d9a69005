"""`--emit torch` for a graph spec: forward and forward_logits written out step by step,
each named tensor a local variable, as SpecGraph.run computes them (backends/torch_build.py).

The functions take what they need from the file's writer (how an activation and a
submodule are written) so that this module does not import torch_source."""

from __future__ import annotations

import keyword
from collections.abc import Callable

# Names the methods use themselves, or that the file imports.
TAKEN = {"self", "padding", "torch", "nn", "F", "math"}


def variables(module) -> dict[str, str]:
    """A local variable per input and step name (`_3` stays `_3`; a clash gets a `t_` prefix)."""
    names = {}
    for name in (*module.input_names, *(step.name for step in module.plan)):
        plain = name.isidentifier() and not keyword.iskeyword(name) and name not in TAKEN
        names[name] = name if plain else "t_" + "".join(c if c.isalnum() else "_" for c in name)
    return names


def graph_methods(module, activation_expr: Callable, attribute: Callable[[str], str],
                  padding_lines: Callable[[str], list[str]]) -> list[str]:
    """The lines of `forward` and `forward_logits`; `attribute(name)` writes a registered
    layer (`self.enc`), `padding_lines(x)` the lines that hand the padding of ids `x` on."""
    registered = {id(child): name for name, child in module._modules.items()}
    local = variables(module)
    arguments = ", ".join(f"{local[name]}: torch.Tensor" for name in module.input_names)
    lines = []
    for logits in (False, True):
        lines += [f"    def {'forward_logits' if logits else 'forward'}(self, {arguments}):"]
        lines += padding_lines(local[module.input_names[module.padding_input]])
        before_final = {}
        for step in module.plan:
            value = local[step.sources[0]]
            if step.merge is not None:
                merged = ", ".join(local[source] for source in step.sources)
                value = f"{attribute(registered[id(step.merge)])}.combine([{merged}])"
                if step.merge_activation is not None:
                    value = activation_expr(step.merge_activation).format(x=value)
            target = local[step.name]
            if logits and step.name in module.output_names and step.body.final is not None:
                before_final[step.name] = f"{target}_logits"
                lines += _body(step, value, f"{target}_logits", registered, activation_expr, attribute, True)
                if step.name not in module.read_later:
                    continue
            lines += _body(step, value, target, registered, activation_expr, attribute, False)
        results = [before_final.get(name, local[name]) for name in module.output_names]
        lines += [f"        return {', '.join(results)}", ""]
    return lines[:-1]


def _body(step, value: str, target: str, registered: dict, activation_expr: Callable, attribute: Callable,
          logits: bool) -> list[str]:
    """`target = ...` lines running a step's layers on `value` (without its final activation when `logits`)."""
    body = step.body
    lines, current = [], value
    names = list(zip(body._names, body._activations))
    for index, (name, activation) in enumerate(names):
        call = attribute(registered[id(body._modules[name])])
        last = logits and index == len(names) - 1
        if last and body.final == "step":
            break
        expression = f"{call}.forward_logits({current})" if last and body.final == "nested" else f"{call}({current})"
        if activation is not None and not (last and body.final == "trailing"):
            expression = activation_expr(activation).format(x=expression)
        lines.append(f"        {target} = {expression}")
        current = target
    if current != target:
        lines.append(f"        {target} = {current}")
    return lines


def graph_docstring(model) -> str:
    """The class docstring's first line: the inputs and outputs with their shapes."""
    info = model.info

    def shape(t) -> str:
        return ", ".join(str(d) for d in t.dims)

    inputs = "; ".join(f"{spec.name} {spec.kind} (N, {shape(spec.type)})"
                       + (" int64 token ids" if spec.type.dtype == "int" else " float32") for spec in info.ir.inputs)
    outputs = "; ".join(f"{name} (N, {shape(t)})" for name, t in info.outputs.items())
    return f"{info.ir.name}: inputs {inputs}; outputs {outputs}."


__all__ = ["graph_docstring", "graph_methods", "variables"]
