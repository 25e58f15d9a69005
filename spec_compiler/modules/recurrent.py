"""PyTorch modules for the recurrent and sequence kinds (layers/recurrent.py).

The recurrent layers subclass torch's own `nn.LSTM`, `nn.GRU` and `nn.RNN`
(batch-first), so their parameters keep PyTorch's names (`weight_ih_l0`,
`weight_hh_l0`, `bias_ih_l0`, `bias_hh_l0`, ...) and state_dict keys read like
`lstm_1.weight_ih_l0`; they only change what `forward` returns: the last time
step's output (Keras' default) or every step's (`return_sequences=true`).
Everything here exports to ONNX with standard operators (LSTM/GRU/RNN, Slice,
Reshape, Concat) and keeps a dynamic sequence length dynamic.
"""

from __future__ import annotations

import copy

import torch
from torch import nn


class _SequenceOutput:
    """Mixin for the torch recurrent classes: return the last step or all steps."""

    return_sequences: bool = False

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # type: ignore[override]
        out, _ = super().forward(x)  # type: ignore[misc]
        return out if self.return_sequences else out[:, -1]

    def extra_repr(self) -> str:
        return super().extra_repr() + f", return_sequences={self.return_sequences}"  # type: ignore[misc]


class LSTM(_SequenceOutput, nn.LSTM):
    pass


class GRU(_SequenceOutput, nn.GRU):
    pass


class RNN(_SequenceOutput, nn.RNN):
    pass


RECURRENT_CLASSES = {"lstm": LSTM, "gru": GRU, "rnn": RNN}


def recurrent(kind: str, input_size: int, units: int, layers: int = 1, return_sequences: bool = False,
              dropout: float = 0.0, bias: bool = True, nonlinearity: str = "tanh") -> nn.Module:
    """A batch-first recurrent layer over (N, T, F) returning (N, U) or (N, T, U)."""
    cls = RECURRENT_CLASSES[kind]
    extra = {"nonlinearity": nonlinearity} if kind == "rnn" else {}
    module = cls(input_size, units, num_layers=layers, bias=bias, batch_first=True,
                 dropout=dropout if layers > 1 else 0.0, **extra)
    module.return_sequences = return_sequences
    return module


def find_recurrent(module: nn.Module) -> nn.Module | None:
    """The single recurrent layer inside a built body (or the module itself)."""
    found = [m for m in module.modules() if isinstance(m, _SequenceOutput)]
    return found[0] if len(found) == 1 else None


class Bidirectional(nn.Module):
    """Keras' Bidirectional: the wrapped layer reads the sequence forward, a copy of
    it (own weights) reads it reversed, and the two outputs are merged. With
    `return_sequences` the backward outputs are flipped back into time order."""

    def __init__(self, forward_layer: nn.Module, merge: str = "concat"):
        super().__init__()
        if not isinstance(forward_layer, _SequenceOutput):
            raise TypeError("Bidirectional wraps one of this module's LSTM, GRU or RNN layers")
        self.forward_layer = forward_layer
        backward = copy.deepcopy(forward_layer)
        backward.reset_parameters()  # its own draw, not a copy of the forward weights
        self.backward_layer = backward
        self.merge = merge

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        ahead = self.forward_layer(x)
        behind = self.backward_layer(torch.flip(x, dims=[1]))
        if self.backward_layer.return_sequences:
            behind = torch.flip(behind, dims=[1])
        if self.merge == "concat":
            return torch.cat([ahead, behind], dim=-1)
        if self.merge == "sum":
            return ahead + behind
        if self.merge == "mul":
            return ahead * behind
        return (ahead + behind) * 0.5

    def extra_repr(self) -> str:
        return f"merge={self.merge}"


class TimeDistributed(nn.Module):
    """Applies `body` to every time step: (N, T, ...) -> (N*T, ...) -> body -> (N, T, ...).

    Sizes are read from the tensor at run time, so a dynamic T stays dynamic in ONNX."""

    def __init__(self, body: nn.Module):
        super().__init__()
        self.body = body

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.body(x.flatten(0, 1))
        return y.reshape(x.shape[0], x.shape[1], *y.shape[1:])

    def forward_logits(self, x: torch.Tensor) -> torch.Tensor:
        """As forward, leaving out a softmax/sigmoid that ends the body (per-step classifiers)."""
        logits = getattr(self.body, "forward_logits", self.body)
        y = logits(x.flatten(0, 1))
        return y.reshape(x.shape[0], x.shape[1], *y.shape[1:])
