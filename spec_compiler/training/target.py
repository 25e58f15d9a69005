"""What a spec expects of its data: the input it takes and what its output means."""

from __future__ import annotations

from dataclasses import dataclass

from ..shapes import format_dims


@dataclass(frozen=True)
class Target:
    """The spec's input, and its output (shape and final activation)."""

    input_kind: str
    input_dims: tuple  # ints, or str for a dynamic length
    input_dtype: str  # "float" | "int"
    vocab: int | None
    output_dims: tuple
    final_activation: str | None
    softmax_axis: int = -1  # the axis, counted from the end, a final softmax runs along (segmentation: -3)

    @classmethod
    def of(cls, model, module=None) -> Target:
        """From the checked model; the final activation is the built module's (built here if not given)."""
        ir = model.ir
        final = (module if module is not None else model.build()).final_activation
        t = ir.input.type
        return cls(ir.input.kind, tuple(t.dims), t.dtype, t.vocab, tuple(model.info.output.dims), final,
                   final_softmax_axis(model.info.layers))

    @property
    def input_text(self) -> str:
        extra = f" vocab={self.vocab}" if self.vocab else ""
        return f"{self.input_kind} {format_dims(self.input_dims)}{extra}"

    @property
    def units(self) -> int | None:
        last = self.output_dims[-1] if self.output_dims else 1
        return last if isinstance(last, int) else None

    @property
    def is_classifier(self) -> bool:
        return self.final_activation in ("softmax", "sigmoid")


def final_softmax_axis(layers) -> int:
    """The axis, counted from the end, along which the last layer's softmax runs: a `softmax N`
    step's own axis, else the last (a trailing `softmax` word, or one nested in a block)."""
    if not layers:
        return -1
    last = layers[-1]
    if last.node.kind == "softmax":
        axis = last.node.params.axis
        return axis - last.output.rank if axis >= 0 else axis
    if last.children and getattr(last.node.params, "activation", None) is None:
        return final_softmax_axis(last.children[0])
    return -1
