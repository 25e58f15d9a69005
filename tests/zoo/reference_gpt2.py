"""GPT-2 (Radford et al. 2019) in plain PyTorch, with Hugging Face's module names
(transformer.h.0.attn.c_attn, lm_head, ...) and the sizes as arguments: `gpt2_small()` is
the 124M model. Hugging Face's Conv1D layers store their weights transposed (in x out);
here they are nn.Linear, so a checkpoint's c_attn/c_proj/c_fc weights load transposed.
The attention is written out (heads split by hand, a causal mask), not nn.MultiheadAttention,
so the comparison also checks specc's `causal=true`. The LM head is tied to wte: one
Parameter under both names, as in Hugging Face's GPT2LMHeadModel."""

from __future__ import annotations

import math

import torch
from torch import nn


class CausalSelfAttention(nn.Module):
    def __init__(self, features: int, heads: int):
        super().__init__()
        self.heads = heads
        self.c_attn = nn.Linear(features, 3 * features)
        self.c_proj = nn.Linear(features, features)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n, steps, features = x.shape
        q, k, v = self.c_attn(x).split(features, dim=2)
        q, k, v = (t.view(n, steps, self.heads, features // self.heads).transpose(1, 2) for t in (q, k, v))
        scores = q @ k.transpose(-2, -1) / math.sqrt(features // self.heads)
        later = torch.ones(steps, steps, dtype=torch.bool).triu(1)
        weights = scores.masked_fill(later, float("-inf")).softmax(dim=-1)
        return self.c_proj((weights @ v).transpose(1, 2).reshape(n, steps, features))


class MLP(nn.Module):
    def __init__(self, features: int, hidden: int):
        super().__init__()
        self.c_fc = nn.Linear(features, hidden)
        self.c_proj = nn.Linear(hidden, features)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.c_proj(nn.functional.gelu(self.c_fc(x), approximate="tanh"))


class Block(nn.Module):
    def __init__(self, features: int, heads: int, hidden: int):
        super().__init__()
        self.ln_1 = nn.LayerNorm(features, eps=1e-5)
        self.attn = CausalSelfAttention(features, heads)
        self.ln_2 = nn.LayerNorm(features, eps=1e-5)
        self.mlp = MLP(features, hidden)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.attn(self.ln_1(x))
        return x + self.mlp(self.ln_2(x))


class Transformer(nn.Module):
    def __init__(self, vocab: int, positions: int, features: int, layers: int, heads: int, hidden: int):
        super().__init__()
        self.wte = nn.Embedding(vocab, features)
        self.wpe = nn.Embedding(positions, features)
        self.h = nn.ModuleList(Block(features, heads, hidden) for _ in range(layers))
        self.ln_f = nn.LayerNorm(features, eps=1e-5)

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        x = self.wte(ids) + self.wpe(torch.arange(ids.shape[1]))
        for block in self.h:
            x = block(x)
        return self.ln_f(x)


class GPT2LMHead(nn.Module):
    """forward(ids) gives the next-token logits (N, T, vocab)."""

    def __init__(self, vocab: int = 50257, positions: int = 1024, features: int = 768, layers: int = 12,
                 heads: int = 12, hidden: int = 3072):
        super().__init__()
        self.transformer = Transformer(vocab, positions, features, layers, heads, hidden)
        self.lm_head = nn.Linear(features, vocab, bias=False)
        self.lm_head.weight = self.transformer.wte.weight
        self.layers = layers

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        return self.lm_head(self.transformer(ids))

    def specc_order(self) -> list[str]:
        """The state_dict keys in the order of the spec's (the tied head last)."""
        keys = ["transformer.wte.weight", "transformer.wpe.weight"]
        for i in range(self.layers):
            prefix = f"transformer.h.{i}"
            keys += [f"{prefix}.{p}" for p in ("ln_1.weight", "ln_1.bias", "attn.c_attn.weight", "attn.c_attn.bias",
                                                "attn.c_proj.weight", "attn.c_proj.bias", "ln_2.weight", "ln_2.bias",
                                                "mlp.c_fc.weight", "mlp.c_fc.bias", "mlp.c_proj.weight",
                                                "mlp.c_proj.bias")]
        return keys + ["transformer.ln_f.weight", "transformer.ln_f.bias", "lm_head.weight"]


def gpt2_small() -> GPT2LMHead:
    return GPT2LMHead()
