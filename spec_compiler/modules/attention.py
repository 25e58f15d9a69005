"""PyTorch modules for the attention kinds (layers/attention.py).

Masks. `causal` keeps query step i from key steps j > i. `mask="padding"` keeps every
query from the key steps that are padding: the layer reads the padding of the model's
token ids, which the model (SpecModule, or the class `--emit torch` writes) hands it
through `padding` ((N, T), True at token id 0) before each forward. Masked scores are
set to the dtype's lowest finite value rather than -inf, so a row with no step to attend
to (a sequence of padding alone) gives finite values, not NaN.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn


def causal_mask(steps: int, device: torch.device) -> torch.Tensor:
    """True above the diagonal: query step i may not look at a later step j > i."""
    return torch.ones(steps, steps, dtype=torch.bool, device=device).triu(1)


class PaddingMasked:
    """Mixin: a layer that ignores the padding steps of its keys when `masks_padding`.
    `padding` is (N, T), True at padding; the model sets it before each forward."""

    masks_padding = False
    padding: torch.Tensor | None = None

    def key_padding(self) -> torch.Tensor:
        if self.padding is None:
            raise RuntimeError(f"{type(self).__name__} has mask=padding: it reads the padding of the model's token "
                               "ids, which the model hands it; run it inside the model")
        return self.padding


def lowest(scores: torch.Tensor) -> float:
    """The value a masked score takes: the lowest finite one (see the module's docstring)."""
    return torch.finfo(scores.dtype).min


class Attention(PaddingMasked, nn.Module):
    """Self-attention over a (N, T, F) sequence: queries, keys and values are the
    sequence itself, and step i's output is sum_j softmax_j(score(x_i, x_j)) x_j.

    score=dot       x_i . x_j                      (Luong), / sqrt(F) with scale=True
    score=general   x_i^T W x_j, W = kernel.weight (Luong's general), / sqrt(F) with scale
    score=additive  v . tanh(W1 x_i + W2 x_j)      (Bahdanau), W1 = query.weight (U x F),
                                                   W2 = key.weight (U x F), v = score.weight
    """

    def __init__(self, score: str, features: int, units: int, scale: bool, causal: bool, mask: str = "none"):
        super().__init__()
        self.kind, self.scale, self.causal = score, scale, causal
        self.masks_padding = mask == "padding"
        self.factor = 1.0 / math.sqrt(features) if scale else 1.0
        if score == "general":
            self.kernel = nn.Linear(features, features, bias=False)
        elif score == "additive":
            self.query = nn.Linear(features, units, bias=False)
            self.key = nn.Linear(features, units, bias=False)
            self.score = nn.Linear(units, 1, bias=False)

    def scores(self, x: torch.Tensor) -> torch.Tensor:
        """(N, T, T): score of query step i (rows) against key step j (columns)."""
        if self.kind == "dot":
            scores = x @ x.transpose(1, 2)
        elif self.kind == "general":
            scores = x @ self.kernel(x).transpose(1, 2)
        else:
            q = self.query(x).unsqueeze(2)  # (N, T, 1, U)
            k = self.key(x).unsqueeze(1)  # (N, 1, T, U)
            scores = self.score(torch.tanh(q + k)).squeeze(-1)
        return scores * self.factor if self.scale else scores

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        scores = self.scores(x)
        if self.masks_padding:
            scores = scores.masked_fill(self.key_padding()[:, None, :], lowest(scores))
        if self.causal:
            scores = scores.masked_fill(causal_mask(x.shape[1], x.device), float("-inf"))
        return torch.softmax(scores, dim=-1) @ x

    def extra_repr(self) -> str:
        return f"score={self.kind}, scale={self.scale}, causal={self.causal}, masks_padding={self.masks_padding}"


class MultiheadSelfAttention(PaddingMasked, nn.MultiheadAttention):
    """torch's nn.MultiheadAttention (batch-first) used as self-attention: forward(x)
    returns the attention output for query = key = value = x, without the weights.

    It keeps nn.MultiheadAttention's parameters, names and initialization
    (`in_proj_weight` 3FxF, `in_proj_bias`, `out_proj`), and computes the same function
    with F.scaled_dot_product_attention, which both ONNX exporters turn into a graph
    whose sequence length stays dynamic (nn.MultiheadAttention's own forward, traced,
    fixes it). `torch_forward` runs the inherited forward, for comparison."""

    def __init__(self, features: int, heads: int, dropout: float, bias: bool, causal: bool, mask: str = "none"):
        super().__init__(features, heads, dropout=dropout, bias=bias, batch_first=True)
        self.causal = causal
        self.masks_padding = mask == "padding"

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # type: ignore[override]
        heads, head_dim = self.num_heads, self.head_dim
        q, k, v = F.linear(x, self.in_proj_weight, self.in_proj_bias).chunk(3, dim=-1)
        q, k, v = (z.unflatten(-1, (heads, head_dim)).transpose(1, 2) for z in (q, k, v))  # (N, H, T, D)
        mask = None
        if self.masks_padding:  # an additive mask (N, 1, 1, T): the lowest value on padded keys
            padded = self.key_padding()[:, None, None, :]
            mask = torch.zeros(padded.shape, dtype=q.dtype, device=q.device).masked_fill(padded, lowest(q))
            if self.causal:
                mask = mask.masked_fill(causal_mask(x.shape[1], x.device), float("-inf"))
        out = F.scaled_dot_product_attention(q, k, v, attn_mask=mask, dropout_p=self.dropout if self.training else 0.0,
                                             is_causal=self.causal and mask is None)
        # Sizes read from x: flatten(2) exports with the tracing batch fixed, and a recurrent
        # layer after this one then gets an initial state of that batch in ONNX Runtime.
        return self.out_proj(out.transpose(1, 2).reshape(x.shape[0], x.shape[1], -1))

    def torch_forward(self, x: torch.Tensor) -> torch.Tensor:
        mask = causal_mask(x.shape[1], x.device) if self.causal else None
        padding = self.key_padding() if self.masks_padding else None
        out, _ = super().forward(x, x, x, need_weights=False, attn_mask=mask, key_padding_mask=padding)
        return out

    def extra_repr(self) -> str:
        return (f"embed_dim={self.embed_dim}, heads={self.num_heads}, dropout={self.dropout}, causal={self.causal}, "
                f"masks_padding={self.masks_padding}")


class AttentionPool(PaddingMasked, nn.Module):
    """Attention pooling over time (Bahdanau-style scoring; Yang et al. 2016):

        e_t = v . tanh(W h_t + b),  a = softmax_t(e),  output = sum_t a_t h_t

    W = proj.weight (U x F), b = proj.bias (U), v = score.weight (1 x U)."""

    def __init__(self, features: int, units: int, mask: str = "none"):
        super().__init__()
        self.proj = nn.Linear(features, units)
        self.score = nn.Linear(units, 1, bias=False)
        self.masks_padding = mask == "padding"

    def weights(self, x: torch.Tensor) -> torch.Tensor:
        """(N, T): the attention weights over time steps (none on padding with mask=padding)."""
        scores = self.score(torch.tanh(self.proj(x))).squeeze(-1)
        if self.masks_padding:
            scores = scores.masked_fill(self.key_padding(), lowest(scores))
        return torch.softmax(scores, dim=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return (self.weights(x).unsqueeze(-1) * x).sum(dim=1)
