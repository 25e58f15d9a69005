"""PyTorch modules for the normalization, attention and function kinds.

Conventions shared with torch_modules.py: every module takes a batch-first tensor
(images (N, C, H, W), sequences (N, T, F), vectors (N, F)); parameters keep PyTorch's
names (`weight`, `bias`, nn.Linear submodules) so state_dict keys stay readable and the
lowering's weight roles apply (a name containing `bias` is a bias, anything else a
weight); sizes are read from the tensor at run time, so a dynamic sequence length stays
dynamic in ONNX; everything exports with standard ONNX operators.

Normalization subclasses torch's own classes (nn.BatchNorm1d/2d, nn.LayerNorm,
nn.LocalResponseNorm), so code that looks for `_BatchNorm` (the lowering keeps the
batch norms of a frozen layer in inference mode) finds them.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

# --- normalization ---------------------------------------------------------------


class _CenterScale:
    """Mixin: Keras' `center` (beta, PyTorch's `bias`) and `scale` (gamma, `weight`)
    may be turned off one at a time; a missing one is registered as None, which
    F.batch_norm and F.layer_norm read as "no scale" / "no shift"."""

    def _keep(self, center: bool, scale: bool) -> None:
        self.center, self.scale = center, scale
        if not scale:
            self.weight = None  # type: ignore[assignment]
        if not center:
            self.bias = None  # type: ignore[assignment]

    def reset_parameters(self) -> None:  # nn.BatchNorm / nn.LayerNorm call it from __init__
        reset_running_stats = getattr(self, "reset_running_stats", None)
        if reset_running_stats is not None:
            reset_running_stats()
        weight, bias = getattr(self, "weight", None), getattr(self, "bias", None)
        if weight is not None:
            nn.init.ones_(weight)
        if bias is not None:
            nn.init.zeros_(bias)


class _BatchNorm(_CenterScale):
    """torch's batch norm with `center` and `scale` in place of `affine`. `momentum` is
    PyTorch's (the weight of the new batch); the builder converts Keras' to it."""

    def __init__(self, num_features: int, eps: float = 1e-5, momentum: float = 0.1, center: bool = True,
                 scale: bool = True):
        super().__init__(num_features, eps=eps, momentum=momentum, affine=center or scale)  # type: ignore[call-arg]
        self._keep(center, scale)


class BatchNorm1d(_BatchNorm, nn.BatchNorm1d):
    """Batch normalization of a (N, F) vector's features."""


class BatchNorm2d(_BatchNorm, nn.BatchNorm2d):
    """Batch normalization of a (N, C, H, W) image's channels."""


class BatchNormSequence(_BatchNorm, nn.BatchNorm1d):
    """Batch normalization of a (N, T, F) sequence's features (Keras' axis=-1): the
    statistics run over the batch and every time step."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return super().forward(x.transpose(1, 2)).transpose(1, 2)


def batch_norm(rank: int, features: int, momentum: float, eps: float, center: bool, scale: bool) -> nn.Module:
    """A batch norm for a sample of `rank` (1 vector, 2 sequence, 3 image).

    `momentum` is Keras' (the weight of the old running value, 0.99 by default);
    PyTorch's is the weight of the new batch value, so the module gets 1 - momentum."""
    cls = {1: BatchNorm1d, 2: BatchNormSequence, 3: BatchNorm2d}[rank]
    return cls(features, eps=eps, momentum=round(1.0 - momentum, 12), center=center, scale=scale)


class LayerNorm(_CenterScale, nn.LayerNorm):
    """Layer normalization over the last axis (features of a vector or sequence), with
    `center` and `scale` in place of `elementwise_affine` and `bias`."""

    def __init__(self, normalized_shape: int, eps: float = 1e-5, center: bool = True, scale: bool = True):
        super().__init__(normalized_shape, eps=eps, elementwise_affine=center or scale, bias=center)
        self._keep(center, scale)


class LayerNormChannels(LayerNorm):
    """Layer normalization over the channels of a (N, C, H, W) image at every position
    (what Keras' LayerNormalization(axis=-1) does on a channels-last image)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return super().forward(x.permute(0, 2, 3, 1)).permute(0, 3, 1, 2)


def layer_norm(rank: int, features: int, eps: float, center: bool, scale: bool) -> nn.Module:
    cls = LayerNormChannels if rank == 3 else LayerNorm
    return cls(features, eps=eps, center=center, scale=scale)


class LocalResponseNorm(nn.LocalResponseNorm):
    """AlexNet's local response normalization across channels (Krizhevsky et al. 2012):

        b_c = a_c / (k + alpha * sum_{c' within size/2 of c} a_c'^2) ^ beta

    `alpha` as in the paper and TensorFlow. PyTorch's nn.LocalResponseNorm divides alpha
    by `size`, so it is given alpha * size."""

    def __init__(self, size: int, alpha: float, beta: float, k: float):
        super().__init__(size, alpha * size, beta, k)
        self.paper_alpha = alpha

    def extra_repr(self) -> str:
        return f"size={self.size}, alpha={self.paper_alpha} (not divided by size), beta={self.beta}, k={self.k}"


# --- attention -------------------------------------------------------------------


def causal_mask(steps: int, device: torch.device) -> torch.Tensor:
    """True above the diagonal: query step i may not look at a later step j > i."""
    return torch.ones(steps, steps, dtype=torch.bool, device=device).triu(1)


class Attention(nn.Module):
    """Self-attention over a (N, T, F) sequence: queries, keys and values are the
    sequence itself, and step i's output is sum_j softmax_j(score(x_i, x_j)) x_j.

    score=dot       x_i . x_j                      (Luong), / sqrt(F) with scale=True
    score=general   x_i^T W x_j, W = kernel.weight (Luong's general), / sqrt(F) with scale
    score=additive  v . tanh(W1 x_i + W2 x_j)      (Bahdanau), W1 = query.weight (U x F),
                                                   W2 = key.weight (U x F), v = score.weight
    """

    def __init__(self, score: str, features: int, units: int, scale: bool, causal: bool):
        super().__init__()
        self.kind, self.scale, self.causal = score, scale, causal
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
        if self.causal:
            scores = scores.masked_fill(causal_mask(x.shape[1], x.device), float("-inf"))
        return torch.softmax(scores, dim=-1) @ x

    def extra_repr(self) -> str:
        return f"score={self.kind}, scale={self.scale}, causal={self.causal}"


class MultiheadSelfAttention(nn.MultiheadAttention):
    """torch's nn.MultiheadAttention (batch-first) used as self-attention: forward(x)
    returns the attention output for query = key = value = x, without the weights.

    It keeps nn.MultiheadAttention's parameters, names and initialization
    (`in_proj_weight` 3FxF, `in_proj_bias`, `out_proj`), and computes the same function
    with F.scaled_dot_product_attention, which both ONNX exporters turn into a graph
    whose sequence length stays dynamic (nn.MultiheadAttention's own forward, traced,
    fixes it). `torch_forward` runs the inherited forward, for comparison."""

    def __init__(self, features: int, heads: int, dropout: float, bias: bool, causal: bool):
        super().__init__(features, heads, dropout=dropout, bias=bias, batch_first=True)
        self.causal = causal

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # type: ignore[override]
        heads, head_dim = self.num_heads, self.head_dim
        q, k, v = F.linear(x, self.in_proj_weight, self.in_proj_bias).chunk(3, dim=-1)
        q, k, v = (z.unflatten(-1, (heads, head_dim)).transpose(1, 2) for z in (q, k, v))  # (N, H, T, D)
        out = F.scaled_dot_product_attention(q, k, v, dropout_p=self.dropout if self.training else 0.0,
                                             is_causal=self.causal)
        return self.out_proj(out.transpose(1, 2).flatten(2))

    def torch_forward(self, x: torch.Tensor) -> torch.Tensor:
        mask = causal_mask(x.shape[1], x.device) if self.causal else None
        out, _ = super().forward(x, x, x, need_weights=False, attn_mask=mask)
        return out

    def extra_repr(self) -> str:
        return f"embed_dim={self.embed_dim}, heads={self.num_heads}, dropout={self.dropout}, causal={self.causal}"


class AttentionPool(nn.Module):
    """Attention pooling over time (Bahdanau-style scoring; Yang et al. 2016):

        e_t = v . tanh(W h_t + b),  a = softmax_t(e),  output = sum_t a_t h_t

    W = proj.weight (U x F), b = proj.bias (U), v = score.weight (1 x U)."""

    def __init__(self, features: int, units: int):
        super().__init__()
        self.proj = nn.Linear(features, units)
        self.score = nn.Linear(units, 1, bias=False)

    def weights(self, x: torch.Tensor) -> torch.Tensor:
        """(N, T): the attention weights over time steps."""
        return torch.softmax(self.score(torch.tanh(self.proj(x))).squeeze(-1), dim=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return (self.weights(x).unsqueeze(-1) * x).sum(dim=1)


# --- parameter-free functions ----------------------------------------------------


def torch_dim(axis: int) -> int:
    """A spec axis (batch excluded, negatives from the end) as a batch-first torch dim."""
    return axis + 1 if axis >= 0 else axis


class L2Normalize(nn.Module):
    """x / max(||x||_2, eps) along one axis (F.normalize)."""

    def __init__(self, axis: int, eps: float = 1e-12):
        super().__init__()
        self.dim, self.eps = torch_dim(axis), eps

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.normalize(x, p=2.0, dim=self.dim, eps=self.eps)

    def extra_repr(self) -> str:
        return f"dim={self.dim}, eps={self.eps}"


class Scale(nn.Module):
    """x * factor (a constant, not a parameter)."""

    def __init__(self, factor: float):
        super().__init__()
        self.factor = factor

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.factor

    def extra_repr(self) -> str:
        return f"factor={self.factor}"


class Clip(nn.Module):
    """Clamps every value into [low, high] (either bound may be None)."""

    def __init__(self, low: float | None, high: float | None):
        super().__init__()
        self.low, self.high = low, high

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.clamp(x, self.low, self.high)

    def extra_repr(self) -> str:
        return f"min={self.low}, max={self.high}"


class Permute(nn.Module):
    """Reorders the axes of each sample; `order` numbers them from 1 (Keras' Permute)."""

    def __init__(self, order: tuple[int, ...]):
        super().__init__()
        self.order = tuple(order)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.permute(0, *self.order)

    def extra_repr(self) -> str:
        return f"order={self.order}"


class Reduce(nn.Module):
    """mean, sum or max over one axis."""

    def __init__(self, op: str, axis: int, keepdims: bool):
        super().__init__()
        self.op, self.dim, self.keepdims = op, torch_dim(axis), keepdims

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.op == "mean":
            return x.mean(dim=self.dim, keepdim=self.keepdims)
        if self.op == "sum":
            return x.sum(dim=self.dim, keepdim=self.keepdims)
        return x.amax(dim=self.dim, keepdim=self.keepdims)

    def extra_repr(self) -> str:
        return f"{self.op}, dim={self.dim}, keepdims={self.keepdims}"


class Elementwise(nn.Module):
    """A parameter-free function of each value: abs, square, sqrt, exp or log."""

    def __init__(self, op: str):
        super().__init__()
        if op not in ("abs", "square", "sqrt", "exp", "log"):
            raise ValueError(f"unknown elementwise function {op!r}")
        self.op = op

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.op == "abs":
            return torch.abs(x)
        if self.op == "square":
            return torch.square(x)
        if self.op == "sqrt":
            return torch.sqrt(x)
        if self.op == "exp":
            return torch.exp(x)
        return torch.log(x)

    def extra_repr(self) -> str:
        return self.op


class ExpandDims(nn.Module):
    """Inserts a size-1 axis (torch.unsqueeze)."""

    def __init__(self, dim: int):
        super().__init__()
        self.dim = dim

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.unsqueeze(self.dim)

    def extra_repr(self) -> str:
        return f"dim={self.dim}"


class Squeeze(nn.Module):
    """Removes one size-1 axis (torch.squeeze on that axis)."""

    def __init__(self, dim: int):
        super().__init__()
        self.dim = dim

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.squeeze(self.dim)

    def extra_repr(self) -> str:
        return f"dim={self.dim}"
