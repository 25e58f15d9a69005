"""A text corpus for a language model: `--data corpus.txt` (UTF-8).

The vocabulary is the corpus's characters, sorted by code point (character i is token id
i), or, when a tokenizer file `corpus.tokens.json` lies beside `corpus.txt`, its JSON list
of tokens (token i is id i), the text cut into the longest token that matches at each
position. The vocabulary is the run's labels (preprocess.json, then the exported file's
metadata), from which `specc generate` encodes a prompt and decodes what the model samples.

The ids are cut into windows of T + 1 tokens, T the spec's input length (64 for `input
tokens ?`), consecutive windows overlapping by one token: x is a window's first T ids, y its
last T (the next token at every step). The ids are held once; x and y are views of them.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from ..runtime import ModelInputError, encode_tokens
from .readers import Raw, data_error
from .target import Target

CORPUS_SUFFIXES = (".txt",)
TOKENIZER_SUFFIX = ".tokens.json"
DYNAMIC_CONTEXT = 64  # window length for a token input of run-time length


def read_text(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        raise data_error(str(path), f"cannot read the text: {error}") from None


def tokenizer_file(corpus: Path) -> Path:
    return corpus.with_name(corpus.name[: -len(corpus.suffix)] + TOKENIZER_SUFFIX)


def read_tokens(path: Path) -> list[str]:
    """A tokenizer file: a JSON list of distinct, non-empty strings."""
    try:
        tokens = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise data_error(str(path), f"cannot read the tokenizer file: {error}") from None
    if not isinstance(tokens, list) or not tokens or not all(isinstance(t, str) and t for t in tokens):
        raise data_error(str(path), "a tokenizer file is a JSON list of token strings", 'e.g. ["the", " ", "a", ...]')
    if len(set(tokens)) != len(tokens):
        raise data_error(str(path), "lists a token twice")
    return tokens


def load_corpus(path: Path, target: Target) -> Raw:
    source = str(path)
    if target.input_dtype != "int":
        raise data_error(source, f"a text corpus trains a language model, which reads token ids; the spec's "
                                 f"input is {target.input_text}", "use `input tokens T vocab=V`, then `embedding`")
    text = read_text(path)
    tokens = tokenizer_file(path)
    vocabulary = read_tokens(tokens) if tokens.exists() else sorted(set(text))
    what = "tokens" if tokens.exists() else "different characters"
    if target.vocab is not None and len(vocabulary) > target.vocab:
        raise data_error(source, f"holds {len(vocabulary)} {what}, more than the input's vocab={target.vocab}",
                         f"raise vocab= to at least {len(vocabulary)}, and the last layer's units with it")
    length = target.input_dims[0] if isinstance(target.input_dims[0], int) else DYNAMIC_CONTEXT
    return windows(encode(text, vocabulary, source), length, source, vocabulary)


def encode(text: str, vocabulary: list[str], source: str) -> np.ndarray:
    """The ids of `text`: one per character for a character vocabulary, else longest match first."""
    if all(len(token) == 1 for token in vocabulary):
        index = {character: i for i, character in enumerate(vocabulary)}
        unknown = next((c for c in text if c not in index), None)
        if unknown is None:
            return np.fromiter((index[c] for c in text), dtype=np.int64, count=len(text))
    try:
        return np.asarray(encode_tokens(text, vocabulary), dtype=np.int64)
    except ModelInputError as error:
        raise data_error(source, str(error), "a language model knows only the tokens it was trained on; "
                                                   "add them to the vocabulary (or its tokenizer file)") from None


def windows(ids: np.ndarray, length: int, source: str, vocabulary: list[str]) -> Raw:
    """Windows of `length` + 1 ids as (x, y) views: y is x shifted by one token."""
    count = (len(ids) - 1) // length
    if count < 1:
        raise data_error(source, f"holds {len(ids)} tokens, fewer than one window of {length + 1}",
                         "give more text, or a shorter input length")
    x = ids[:count * length].reshape(count, length)
    y = ids[1:count * length + 1].reshape(count, length)
    return Raw(x, y, source, "corpus", vocabulary)


def recode(raw: Raw, vocabulary: list[str]) -> Raw:
    """A corpus read with its own vocabulary, read again with `vocabulary` (the training text's)."""
    if raw.labels == vocabulary:
        return raw
    text = read_text(Path(raw.source))
    return windows(encode(text, vocabulary, raw.source), raw.x.shape[1], raw.source, vocabulary)
