"""A text corpus for a language model: `--data corpus.txt` (UTF-8).

The vocabulary is the corpus's characters, sorted by code point: character i is token id i,
and the list is the run's labels (preprocess.json, then the exported file's metadata), from
which `specc generate` encodes a prompt and decodes what the model samples. The text is cut
into windows of T + 1 characters, T the spec's input length (64 for `input tokens ?`),
consecutive windows overlapping by one character: x is a window's first T ids, y its last T
(the next token at every step). The ids are held once; x and y are views of them.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from .readers import Raw, data_error
from .target import Target

CORPUS_SUFFIXES = (".txt",)
DYNAMIC_CONTEXT = 64  # window length for a token input of run-time length


def read_text(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        raise data_error(str(path), f"cannot read the text: {error}") from None


def load_corpus(path: Path, target: Target) -> Raw:
    source = str(path)
    if target.input_dtype != "int":
        raise data_error(source, f"a text corpus trains a language model, which reads token ids; the spec's "
                                 f"input is {target.input_text}", "use `input tokens T vocab=V`, then `embedding`")
    text = read_text(path)
    vocabulary = sorted(set(text))
    if target.vocab is not None and len(vocabulary) > target.vocab:
        raise data_error(source, f"holds {len(vocabulary)} different characters, more than the input's "
                                 f"vocab={target.vocab}",
                         f"raise vocab= to at least {len(vocabulary)}, and the last layer's units with it")
    length = target.input_dims[0] if isinstance(target.input_dims[0], int) else DYNAMIC_CONTEXT
    return windows(encode(text, vocabulary), length, source, vocabulary)


def encode(text: str, vocabulary: list[str]) -> np.ndarray:
    """The ids of each character of `text` (every character must be in `vocabulary`)."""
    index = {character: i for i, character in enumerate(vocabulary)}
    return np.fromiter((index[c] for c in text), dtype=np.int64, count=len(text))


def windows(ids: np.ndarray, length: int, source: str, vocabulary: list[str]) -> Raw:
    """Windows of `length` + 1 ids as (x, y) views: y is x shifted by one token."""
    count = (len(ids) - 1) // length
    if count < 1:
        raise data_error(source, f"holds {len(ids)} characters, fewer than one window of {length + 1}",
                         "give more text, or a shorter input length")
    x = ids[:count * length].reshape(count, length)
    y = ids[1:count * length + 1].reshape(count, length)
    return Raw(x, y, source, "corpus", vocabulary)


def recode(raw: Raw, vocabulary: list[str]) -> Raw:
    """A corpus read with its own characters, re-numbered as `vocabulary` (the training text's)."""
    if raw.labels == vocabulary:
        return raw
    index = {character: i for i, character in enumerate(vocabulary)}
    unknown = [c for c in raw.labels if c not in index]
    if unknown:
        raise data_error(raw.source, f"holds the character {unknown[0]!r}, which the training text does not",
                         "a language model knows only the characters of the text it was trained on")
    table = np.asarray([index[c] for c in raw.labels], dtype=np.int64)
    return Raw(table[raw.x], table[raw.y], raw.source, raw.kind, vocabulary)
