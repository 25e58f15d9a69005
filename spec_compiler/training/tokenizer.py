"""The built-in text tokenizer for CSV text columns (and for predict/export later).

Method (saved in the run's preprocess.json, so that the same text gives the same ids
at prediction time):

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
from dataclasses import dataclass, field
from typing import Iterable

import numpy as np

WORD = re.compile(r"\w+")
PAD_ID = 0
OOV_ID = 1
# With a dynamic token length (`input tokens ? vocab=...`), texts are padded to the
# longest training text, at most this many ids.
MAX_DYNAMIC_LENGTH = 512


def words(text: str, lowercase: bool = True) -> list[str]:
    return WORD.findall(text.lower() if lowercase else text)


@dataclass
class Tokenizer:
    vocab: dict[str, int] = field(default_factory=dict)
    max_length: int = 0
    lowercase: bool = True
    padding: str = "pre"
    truncating: str = "pre"

    @classmethod
    def fit(cls, texts: Iterable[str], vocab_size: int, max_length: int | None) -> "Tokenizer":
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

    def encode(self, texts: Iterable[str]) -> np.ndarray:
        """(N, max_length) int64 ids."""
        texts = list(texts)
        out = np.full((len(texts), self.max_length), PAD_ID, dtype=np.int64)
        for row, text in enumerate(texts):
            ids = [self.vocab.get(word, OOV_ID) for word in words(text, self.lowercase)]
            if len(ids) > self.max_length:
                ids = ids[-self.max_length:] if self.truncating == "pre" else ids[: self.max_length]
            if ids:
                if self.padding == "pre":
                    out[row, self.max_length - len(ids):] = ids
                else:
                    out[row, : len(ids)] = ids
        return out

    def to_json(self) -> dict:
        return {"vocab": self.vocab, "lowercase": self.lowercase, "max_length": self.max_length,
                "pad_id": PAD_ID, "oov_id": OOV_ID, "padding": self.padding, "truncating": self.truncating,
                "split": WORD.pattern}

    @classmethod
    def from_json(cls, data: dict) -> "Tokenizer":
        return cls(dict(data["vocab"]), int(data["max_length"]), bool(data.get("lowercase", True)),
                   data.get("padding", "pre"), data.get("truncating", "pre"))
