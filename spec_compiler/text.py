"""The text tokenizer, shared by training and by the app runtime (pure Python + NumPy).

`specc train` builds the vocabulary and encodes its text with these functions and
saves the settings in the run's preprocess.json (`"text": {...}`); `specc export` copies
them into the ONNX file's metadata; `spec_compiler.runtime` and `specc predict` encode
new text with the same functions, so an app sees exactly the ids the model was trained on.

The rules, Keras-like:
- lowercase (when `lowercase` is true), then words are the regex matches of
  `WORD_PATTERN` (letters, digits, underscores, with inner apostrophes: "don't");
- ids: 0 = padding, 1 = out of vocabulary, then words by falling frequency (ties in
  alphabetical order) up to the vocabulary size;
- every text becomes exactly `max_length` ids: shorter ones are padded with `pad_id`,
  longer ones truncated. As in Keras' `pad_sequences`, padding and truncation happen at
  the front by default (`"pre"`: a recurrent model's last state sees the real words last).
  `"post"` pads or truncates at the end instead.

This module must not import torch: the runtime uses it.
"""

from __future__ import annotations

import re
from collections import Counter
from typing import Any, Iterable, Mapping, Sequence

import numpy as np

WORD_PATTERN = r"\w+(?:'\w+)*"
PAD_ID = 0
OOV_ID = 1
_WORDS = re.compile(WORD_PATTERN)


def tokenize(text: str, lowercase: bool = True) -> list[str]:
    """The words of `text`: 'Don't WIN now!' -> ["don't", 'win', 'now']."""
    if lowercase:
        text = text.lower()
    return _WORDS.findall(text)


def build_vocab(texts: Iterable[str], size: int, lowercase: bool = True) -> dict[str, int]:
    """word -> id for the `size - 2` most frequent words (ids 0 and 1 are padding and OOV)."""
    if size < 2:
        raise ValueError(f"a vocabulary needs room for padding and OOV ids (size >= 2), got {size}")
    counts = Counter(word for text in texts for word in tokenize(text, lowercase))
    ranked = sorted(counts.items(), key=lambda item: (-item[1], item[0]))[: size - 2]
    return {word: index + 2 for index, (word, _) in enumerate(ranked)}


def encode_one(text: str, vocab: Mapping[str, int], max_length: int, *, lowercase: bool = True,
               pad_id: int = PAD_ID, oov_id: int = OOV_ID, padding: str = "pre",
               truncating: str = "pre") -> list[int]:
    ids = [vocab.get(word, oov_id) for word in tokenize(text, lowercase)]
    if len(ids) > max_length:
        ids = ids[-max_length:] if truncating == "pre" else ids[:max_length]
    fill = [pad_id] * (max_length - len(ids))
    return fill + ids if padding == "pre" else ids + fill


def encode(texts: Sequence[str] | str, vocab: Mapping[str, int], max_length: int, *, lowercase: bool = True,
           pad_id: int = PAD_ID, oov_id: int = OOV_ID, padding: str = "pre", truncating: str = "pre") -> np.ndarray:
    """Texts -> int64 ids of shape (len(texts), max_length)."""
    if isinstance(texts, str):
        texts = [texts]
    for name, value in (("padding", padding), ("truncating", truncating)):
        if value not in ("pre", "post"):
            raise ValueError(f"{name} must be 'pre' or 'post', got {value!r}")
    rows = [encode_one(text, vocab, max_length, lowercase=lowercase, pad_id=pad_id, oov_id=oov_id,
                       padding=padding, truncating=truncating) for text in texts]
    return np.asarray(rows, dtype=np.int64).reshape(len(rows), max_length)


def settings(vocab: Mapping[str, int], max_length: int, *, lowercase: bool = True, pad_id: int = PAD_ID,
             oov_id: int = OOV_ID, padding: str = "pre", truncating: str = "pre") -> dict[str, Any]:
    """The `"text"` entry of preprocess.json (and of the ONNX metadata)."""
    return {"vocab": dict(vocab), "lowercase": lowercase, "max_length": max_length, "pad_id": pad_id,
            "oov_id": oov_id, "padding": padding, "truncating": truncating, "pattern": WORD_PATTERN}


def encode_with(texts: Sequence[str] | str, text_settings: Mapping[str, Any], max_length: int | None = None) -> np.ndarray:
    """Encode with a preprocess.json `"text"` dict (missing keys take the defaults above)."""
    length = text_settings.get("max_length") if max_length is None else max_length
    if not isinstance(length, int) or length < 1:
        raise ValueError("the text settings carry no max_length")
    return encode(texts, text_settings.get("vocab") or {}, length,
                  lowercase=bool(text_settings.get("lowercase", True)),
                  pad_id=int(text_settings.get("pad_id", PAD_ID)), oov_id=int(text_settings.get("oov_id", OOV_ID)),
                  padding=text_settings.get("padding", "pre"), truncating=text_settings.get("truncating", "pre"))


__all__ = ["OOV_ID", "PAD_ID", "WORD_PATTERN", "build_vocab", "encode", "encode_one", "encode_with", "settings",
           "tokenize"]
