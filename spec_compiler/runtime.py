"""Use an exported model in an app: ONNX Runtime and NumPy only (Pillow for image files).

    from spec_compiler import runtime
    model = runtime.load("lenet5.onnx")
    probabilities = model.predict(x)            # x: (N, 1, 32, 32) float32, any N
    model.top_k(x, k=3)                         # [[("7", 0.98), ("1", 0.01), ...], ...]
    spam = runtime.load("spam.onnx")
    spam.predict(["win a free phone now", "see you at lunch"])

`predict(array)` returns exactly what a raw `onnxruntime.InferenceSession` returns for
the array (normalization and the final softmax/sigmoid are inside the graph). Arrays of
another numeric dtype are cast to the model's (float32 or int64), and a single sample
without the batch axis gets one. Strings are tokenized with the vocabulary saved in the
file (the trainer's tokenizer, spec_compiler/text.py), and image file paths are loaded,
converted and resized as the metadata says.

This module never imports torch (tests check it), so an app needs only
`onnxruntime`, `numpy` and, for image files, `pillow`.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from .text import Tokenizer

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp", ".pgm", ".ppm")


class ModelInputError(ValueError):
    """An input that does not fit the model (wrong shape, no vocabulary, unreadable image)."""


def _json(metadata: dict[str, str], key: str) -> Any:
    text = metadata.get(key)
    if text is None:
        return None
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return text


class Model:
    """An ONNX file exported by specc, ready to predict."""

    def __init__(self, path: str | os.PathLike, providers: Sequence[str] | None = None):
        import onnxruntime as ort

        self.path = Path(path)
        options = ort.SessionOptions()
        options.log_severity_level = 3
        self.session = ort.InferenceSession(str(self.path), options,
                                            providers=list(providers or ["CPUExecutionProvider"]))
        raw = dict(self.session.get_modelmeta().custom_metadata_map)
        self.raw_metadata = raw
        self.metadata: dict[str, Any] = {key.removeprefix("specc."): _json(raw, key) if key != "specc.spec" else value
                                         for key, value in raw.items()}
        graph_input = self.session.get_inputs()[0]
        self.input_name: str = graph_input.name
        self.output_name: str = self.session.get_outputs()[0].name
        self.input_type: str = graph_input.type
        self.input_shape: list[Any] = list(graph_input.shape)
        info = self.metadata.get("input") or {}
        self.kind: str | None = info.get("kind") if isinstance(info, dict) else None
        self.labels: list[str] | None = self.metadata.get("labels") or None
        self.image: dict[str, Any] | None = self.metadata.get("image") or None
        text = self.metadata.get("text") or None
        self.tokenizer: Tokenizer | None = Tokenizer.from_json(text) if isinstance(text, dict) else None
        self.dtype = np.int64 if "int64" in self.input_type else np.float32

    # --- inputs ------------------------------------------------------------------
    def prepare(self, x: Any) -> np.ndarray:
        """The array the graph takes for `x` (an array, text(s), or image path(s))."""
        if isinstance(x, (str, os.PathLike)) or (isinstance(x, (list, tuple)) and x
                                                 and all(isinstance(i, (str, os.PathLike)) for i in x)):
            items = [x] if isinstance(x, (str, os.PathLike)) else list(x)
            if self.kind == "tokens":
                return self.encode_text([str(i) for i in items])
            if self.kind == "image":
                return np.stack([self.load_image(i) for i in items])
            raise ModelInputError(f"this model takes {self.kind or 'array'} inputs, not strings or paths")
        array = np.asarray(x)
        if array.dtype.kind not in "biuf":
            raise ModelInputError(f"cannot feed an array of dtype {array.dtype} to the model")
        if array.dtype != self.dtype:
            array = array.astype(self.dtype)
        rank = len(self.input_shape)
        if array.ndim == rank - 1:
            array = array[None]
        if array.ndim != rank:
            raise ModelInputError(f"expected an array of shape {self._shape_text()}, got {tuple(array.shape)}")
        for axis, (want, got) in enumerate(zip(self.input_shape[1:], array.shape[1:]), 1):
            if isinstance(want, int) and want != got:
                raise ModelInputError(f"expected an array of shape {self._shape_text()}, got {tuple(array.shape)}")
        return np.ascontiguousarray(array)

    def _shape_text(self) -> str:
        return "(" + ", ".join(str(d) if d is not None else "?" for d in self.input_shape) + ")"

    def encode_text(self, texts: list[str]) -> np.ndarray:
        if self.tokenizer is None:
            raise ModelInputError("this model file carries no vocabulary (it was exported without --weights RUN "
                                  "from a text run); pass token ids as an array")
        ids = self.tokenizer.encode(texts)
        fixed = self.input_shape[1] if len(self.input_shape) > 1 else None
        if isinstance(fixed, int) and fixed != ids.shape[1]:
            raise ModelInputError(f"the saved tokenizer makes {ids.shape[1]} ids but the model takes {fixed}")
        return ids

    def load_image(self, path: str | os.PathLike) -> np.ndarray:
        """One image file as the model's (C, H, W) float32 input (before the in-graph normalization)."""
        return load_image(path, self.image or {})

    # --- outputs -----------------------------------------------------------------
    def predict(self, x: Any) -> np.ndarray:
        """The model's output for `x`, exactly as onnxruntime computes it."""
        return self.session.run([self.output_name], {self.input_name: self.prepare(x)})[0]

    def __call__(self, x: Any) -> np.ndarray:
        return self.predict(x)

    def top_k(self, x: Any, k: int = 3) -> list[list[tuple[str, float]]]:
        """Per sample, the k most probable classes as (label, probability)."""
        return [top_classes(row, self.labels, k) for row in self.predict(x)]


def top_classes(row: np.ndarray, labels: list[str] | None, k: int) -> list[tuple[str, float]]:
    """One output row -> [(label, probability)], best first. A single sigmoid output is two classes."""
    row = np.asarray(row, dtype=np.float64).reshape(-1)
    if row.size == 1:
        probs = np.array([1.0 - row[0], row[0]])
        names = labels if labels and len(labels) == 2 else ["0", "1"]
    else:
        probs = row
        names = labels if labels and len(labels) == row.size else [str(i) for i in range(row.size)]
    order = np.argsort(-probs, kind="stable")[:k]
    return [(str(names[i]), float(probs[i])) for i in order]


def load_image(path: str | os.PathLike, image: dict[str, Any]) -> np.ndarray:
    """Read, convert (grayscale/RGB/RGBA by `channels`), resize to height x width (bilinear), to CHW float32.

    Pixel values are 0..255 times `image["scale"]` (default 1/255: 0..1, as the trainer
    reads image folders), inverted (1 - v) when `image["invert"]` is true."""
    from PIL import Image, UnidentifiedImageError

    channels = int(image.get("channels", 1))
    height, width = int(image.get("height", 0)), int(image.get("width", 0))
    mode = {1: "L", 3: "RGB", 4: "RGBA"}.get(channels)
    if mode is None or height <= 0 or width <= 0:
        raise ModelInputError(f"cannot load image files for a {channels}x{height}x{width} input")
    try:
        with Image.open(path) as picture:
            picture = picture.convert(mode)
            if picture.size != (width, height):
                picture = picture.resize((width, height), Image.BILINEAR)
            array = np.asarray(picture, dtype=np.float32)
    except (OSError, UnidentifiedImageError) as error:
        raise ModelInputError(f"cannot read image {path}: {error}") from None
    array = array.reshape(height, width, channels).transpose(2, 0, 1)
    array = array * float(image.get("scale", 1 / 255))
    if image.get("invert"):
        array = float(image.get("max_value", 1.0)) - array
    return np.ascontiguousarray(array, dtype=np.float32)


def load_array(path: str | os.PathLike) -> np.ndarray:
    """A .npy file, or the `x` array of a .npz file (its only array when there is no `x`)."""
    path = Path(path)
    try:
        if path.suffix == ".npz":
            with np.load(path, allow_pickle=False) as archive:
                if "x" in archive.files:
                    return archive["x"]
                if len(archive.files) == 1:
                    return archive[archive.files[0]]
                raise ModelInputError(f"{path} holds {', '.join(archive.files)}; name the input array `x`")
        return np.load(path, allow_pickle=False)
    except (OSError, ValueError) as error:
        raise ModelInputError(f"cannot read {path}: {error}") from None


def load(path: str | os.PathLike, providers: Sequence[str] | None = None) -> Model:
    """Open an ONNX file exported by `specc export`."""
    if not Path(path).is_file():
        raise FileNotFoundError(f"no such model file: {path}")
    return Model(path, providers)


__all__ = ["Model", "ModelInputError", "load", "load_array", "load_image", "top_classes"]
