"""The text tokenizer, shared by training, export and the app runtime (pure Python + NumPy).

This module must not import torch: `spec_compiler.runtime` uses it. Training fits it on
text data (spec_compiler/training/data.py); tests/test_export.py checks that the tokenizer
the trainer fits gives the same ids.

Method (saved in the run's preprocess.json `"text"` entry, copied into the ONNX file's
metadata, so that the same text gives the same ids at prediction time):

- lowercase the text, then split it into words with the regular expression ``\\w+``
  (letters, digits and underscores; punctuation separates words);
- the vocabulary holds the most frequent words of the training texts (ties broken
  alphabetically), at most ``vocab - 2`` of them, with ids 2, 3, ... in that order;
  id 0 is padding and id 1 stands for any word outside the vocabulary (OOV);
- each text becomes ``max_length`` ids: padded with 0 and truncated at the *front*
  (``padding="pre"``, ``truncating="pre"``, as Keras' ``pad_sequences`` does), so the
  last ids are always the text's last words, which is what an RNN's final state sees.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

WORD = re.compile(r"\w+")
PAD_ID = 0
OOV_ID = 1
# With a dynamic token length (`input tokens ? vocab=...`), texts are padded to the
# longest training text, at most this many ids.
MAX_DYNAMIC_LENGTH = 512


def words(text: str, lowercase: bool = True) -> list[str]:
    """'Win FREE cash-now!' -> ['win', 'free', 'cash', 'now']."""
    return WORD.findall(text.lower() if lowercase else text)


@dataclass
class Tokenizer:
    vocab: dict[str, int] = field(default_factory=dict)
    max_length: int = 0
    lowercase: bool = True
    padding: str = "pre"
    truncating: str = "pre"
    pad_id: int = PAD_ID
    oov_id: int = OOV_ID

    @classmethod
    def fit(cls, texts: Iterable[str], vocab_size: int, max_length: int | None) -> Tokenizer:
        """Learn the vocabulary from `texts`; `max_length` None means: the longest text (capped)."""
        counts: Counter[str] = Counter()
        longest = 0
        for text in texts:
            tokens = words(text)
            counts.update(tokens)
            longest = max(longest, len(tokens))
        ranked = sorted(counts.items(), key=lambda item: (-item[1], item[0]))[: max(vocab_size - 2, 0)]
        vocab = {word: index + 2 for index, (word, _) in enumerate(ranked)}
        if max_length is None:
            max_length = max(1, min(longest, MAX_DYNAMIC_LENGTH))
        return cls(vocab, max_length)

    def ids(self, text: str) -> list[int]:
        """One text's ids, before padding and truncation."""
        return [self.vocab.get(word, self.oov_id) for word in words(text, self.lowercase)]

    def encode(self, texts: Iterable[str] | str) -> np.ndarray:
        """(N, max_length) int64 ids."""
        texts = [texts] if isinstance(texts, str) else list(texts)
        out = np.full((len(texts), self.max_length), self.pad_id, dtype=np.int64)
        for row, text in enumerate(texts):
            ids = self.ids(text)
            if len(ids) > self.max_length:
                ids = ids[-self.max_length:] if self.truncating == "pre" else ids[: self.max_length]
            if ids:
                if self.padding == "pre":
                    out[row, self.max_length - len(ids):] = ids
                else:
                    out[row, : len(ids)] = ids
        return out

    def to_json(self) -> dict[str, Any]:
        return {"vocab": self.vocab, "lowercase": self.lowercase, "max_length": self.max_length,
                "pad_id": self.pad_id, "oov_id": self.oov_id, "padding": self.padding,
                "truncating": self.truncating, "split": WORD.pattern}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Tokenizer:
        """From preprocess.json's `"text"` entry (or the ONNX metadata's `specc.text`)."""
        split = data.get("split", WORD.pattern)
        if split != WORD.pattern:
            raise ValueError(f"the saved tokenizer splits words with {split!r}; this specc splits with {WORD.pattern!r}")
        for key in ("padding", "truncating"):
            if data.get(key, "pre") not in ("pre", "post"):
                raise ValueError(f"{key} must be 'pre' or 'post', got {data.get(key)!r}")
        return cls(dict(data["vocab"]), int(data["max_length"]), bool(data.get("lowercase", True)),
                   data.get("padding", "pre"), data.get("truncating", "pre"),
                   int(data.get("pad_id", PAD_ID)), int(data.get("oov_id", OOV_ID)))


__all__ = ["MAX_DYNAMIC_LENGTH", "OOV_ID", "PAD_ID", "WORD", "Tokenizer", "words"]
