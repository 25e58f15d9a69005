"""BERT (Devlin et al. 2019) in plain PyTorch, with Hugging Face BertModel's module names
(embeddings.word_embeddings, encoder.layer.0.attention.self.query, pooler.dense, ...) and
the sizes as arguments: `bert_base()` is bert-base-uncased's BertModel with its pooler.
The attention is written out (separate query, key and value projections, heads split by
hand, the padding of the ids masked as Hugging Face's attention_mask = ids != 0 does)."""

from __future__ import annotations

import math

import torch
from torch import nn


class SelfAttention(nn.Module):
    def __init__(self, features: int, heads: int):
        super().__init__()
        self.heads = heads
        self.query, self.key, self.value = (nn.Linear(features, features) for _ in range(3))

    def forward(self, x: torch.Tensor, keep: torch.Tensor) -> torch.Tensor:
        n, steps, features = x.shape
        size = features // self.heads
        q, k, v = (p(x).view(n, steps, self.heads, size).transpose(1, 2) for p in (self.query, self.key, self.value))
        scores = (q @ k.transpose(-2, -1)) / math.sqrt(size)
        scores = scores.masked_fill(~keep[:, None, None, :], float("-inf"))
        return (scores.softmax(dim=-1) @ v).transpose(1, 2).reshape(n, steps, features)


class DenseNorm(nn.Module):
    """Hugging Face's BertSelfOutput / BertOutput: dense, then LayerNorm of it plus the residual."""

    def __init__(self, inputs: int, features: int):
        super().__init__()
        self.dense = nn.Linear(inputs, features)
        self.LayerNorm = nn.LayerNorm(features, eps=1e-12)

    def forward(self, x: torch.Tensor, residual: torch.Tensor) -> torch.Tensor:
        return self.LayerNorm(self.dense(x) + residual)


class Attention(nn.Module):
    def __init__(self, features: int, heads: int):
        super().__init__()
        self.self = SelfAttention(features, heads)
        self.output = DenseNorm(features, features)


class Intermediate(nn.Module):
    def __init__(self, features: int, hidden: int):
        super().__init__()
        self.dense = nn.Linear(features, hidden)


class Layer(nn.Module):
    def __init__(self, features: int, heads: int, hidden: int):
        super().__init__()
        self.attention = Attention(features, heads)
        self.intermediate = Intermediate(features, hidden)
        self.output = DenseNorm(hidden, features)

    def forward(self, x: torch.Tensor, keep: torch.Tensor) -> torch.Tensor:
        x = self.attention.output(self.attention.self(x, keep), x)
        return self.output(nn.functional.gelu(self.intermediate.dense(x)), x)


class Embeddings(nn.Module):
    def __init__(self, vocab: int, positions: int, types: int, features: int):
        super().__init__()
        self.word_embeddings = nn.Embedding(vocab, features)
        self.position_embeddings = nn.Embedding(positions, features)
        self.token_type_embeddings = nn.Embedding(types, features)
        self.LayerNorm = nn.LayerNorm(features, eps=1e-12)

    def forward(self, ids: torch.Tensor, types: torch.Tensor) -> torch.Tensor:
        positions = self.position_embeddings(torch.arange(ids.shape[1]))
        return self.LayerNorm(self.word_embeddings(ids) + positions + self.token_type_embeddings(types))


class Encoder(nn.Module):
    def __init__(self, layers: int, features: int, heads: int, hidden: int):
        super().__init__()
        self.layer = nn.ModuleList(Layer(features, heads, hidden) for _ in range(layers))


class Pooler(nn.Module):
    def __init__(self, features: int):
        super().__init__()
        self.dense = nn.Linear(features, features)


class BertModel(nn.Module):
    """forward(ids, types) gives (the last layer's hidden states, the pooled [CLS] vector)."""

    def __init__(self, vocab: int = 30522, positions: int = 512, types: int = 2, features: int = 768,
                 layers: int = 12, heads: int = 12, hidden: int = 3072):
        super().__init__()
        self.embeddings = Embeddings(vocab, positions, types, features)
        self.encoder = Encoder(layers, features, heads, hidden)
        self.pooler = Pooler(features)

    def forward(self, ids: torch.Tensor, types: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        keep = ids != 0  # Hugging Face's attention_mask for ids padded with [PAD] = 0
        x = self.embeddings(ids, types)
        for layer in self.encoder.layer:
            x = layer(x, keep)
        return x, torch.tanh(self.pooler.dense(x[:, 0]))

    def load_from_specc(self, state: dict[str, torch.Tensor]) -> None:
        """Load the state_dict of a module built from specs/bert_base.spec (or a smaller copy),
        read in its order: the embeddings, each layer (the attention's stacked in-projection
        split into query, key and value), the pooler."""
        values = iter(state.values())
        mapped = {f"embeddings.{name}": next(values) for name in (
            "word_embeddings.weight", "position_embeddings.weight", "token_type_embeddings.weight")}
        mapped["embeddings.LayerNorm.weight"], mapped["embeddings.LayerNorm.bias"] = next(values), next(values)
        for i in range(len(self.encoder.layer)):
            prefix = f"encoder.layer.{i}"
            weight, bias = next(values), next(values)
            for part, w, b in zip(("query", "key", "value"), weight.chunk(3), bias.chunk(3)):
                mapped[f"{prefix}.attention.self.{part}.weight"], mapped[f"{prefix}.attention.self.{part}.bias"] = w, b
            for name in ("attention.output.dense.weight", "attention.output.dense.bias",
                         "attention.output.LayerNorm.weight", "attention.output.LayerNorm.bias",
                         "intermediate.dense.weight", "intermediate.dense.bias", "output.dense.weight",
                         "output.dense.bias", "output.LayerNorm.weight", "output.LayerNorm.bias"):
                mapped[f"{prefix}.{name}"] = next(values)
        mapped["pooler.dense.weight"], mapped["pooler.dense.bias"] = next(values), next(values)
        assert next(values, None) is None, "the spec holds more tensors than BertModel"
        self.load_state_dict(mapped)


def bert_base() -> BertModel:
    return BertModel()
