"""The built-in text tokenizer for CSV text columns.

One implementation, shared with export and the app runtime: spec_compiler/text.py
(pure Python + NumPy, no torch), re-exported here. Its method, saved in the run's
preprocess.json ``"text"`` entry: lowercase, words by the regex ``\\w+``, a vocabulary
of the most frequent training words (ties alphabetical) limited to ``vocab - 2``
entries with ids from 2 (0 = padding, 1 = out-of-vocabulary), each text padded with 0
and truncated at the front to the input length (Keras' ``pad_sequences`` defaults);
a dynamic token length (``input tokens ?``) pads to the longest training text, at
most 512 ids.
"""

from __future__ import annotations

from ..text import MAX_DYNAMIC_LENGTH, OOV_ID, PAD_ID, WORD, Tokenizer, words

__all__ = ["MAX_DYNAMIC_LENGTH", "OOV_ID", "PAD_ID", "WORD", "Tokenizer", "words"]
