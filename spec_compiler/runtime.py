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
converted and resized as the metadata says. Token ids must lie in [0, vocab): a negative
id is refused, not wrapped as ONNX Runtime's Gather would.

The metadata is read only through the run package's OnnxMetadata (`model.info`; a plain
dict in `model.metadata`), which checks every size a file claims against its caps: a file
claiming a huge image size or text length gets a ModelInputError, not an allocation.

This module never imports torch (tests check it), so an app needs only
`onnxruntime`, `numpy` and, for image files, `pillow`.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from .run.records import ImageFormat, OnnxMetadata
from .text import Tokenizer

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp", ".pgm", ".ppm")


class ModelInputError(ValueError):
    """An input that does not fit the model (wrong shape, no vocabulary, unreadable image),
    or a model file whose metadata cannot be trusted (sizes over the caps, malformed)."""


class Model:
    """An ONNX file exported by specc, ready to predict."""

    def __init__(self, path: str | os.PathLike, providers: Sequence[str] | None = None):
        import onnxruntime as ort

        self.path = Path(path)
        options = ort.SessionOptions()
        options.log_severity_level = 3
        self.session = ort.InferenceSession(str(self.path), options,
                                            providers=list(providers or ["CPUExecutionProvider"]))
        self.raw_metadata: dict[str, str] = dict(self.session.get_modelmeta().custom_metadata_map)
        try:
            self.info = OnnxMetadata.from_props(self.raw_metadata, str(self.path))
        except ValueError as error:
            raise ModelInputError(str(error)) from None
        self.metadata: dict[str, Any] = self.info.model_dump(mode="json")
        graph_input = self.session.get_inputs()[0]
        self.input_name: str = graph_input.name
        self.output_name: str = self.session.get_outputs()[0].name
        self.input_type: str = graph_input.type
        self.input_shape: list[Any] = list(graph_input.shape)
        self.kind: str | None = self.info.input.kind if self.info.input is not None else None
        self.vocab: int | None = self.info.input.vocab if self.info.input is not None else None
        self.labels: list[str] | None = self.info.labels or None
        self.image: ImageFormat | None = self.info.image
        self.tokenizer: Tokenizer | None = (Tokenizer.from_json(self.info.text.model_dump())
                                            if self.info.text is not None else None)
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
        rank = len(self.input_shape)
        if array.ndim == rank - 1:
            array = array[None]
        if array.ndim != rank or any(isinstance(want, int) and want != got
                                     for want, got in zip(self.input_shape[1:], array.shape[1:])):
            raise ModelInputError(f"expected an array of shape {self._shape_text()}, got {tuple(array.shape)}")
        if self.dtype == np.int64:
            self._check_token_ids(array)
        return np.ascontiguousarray(array, dtype=self.dtype)

    def _check_token_ids(self, array: np.ndarray) -> None:
        """Token ids are whole numbers in [0, vocab): ONNX Runtime would wrap a negative id
        (Gather counts from the end) and fail on one past the vocabulary."""
        if array.size == 0:
            return
        if array.dtype.kind == "f":
            bad = ~np.isfinite(array) | (array != np.round(array))
            if bad.any():
                raise ModelInputError(f"token ids must be whole numbers; sample {int(np.argwhere(bad)[0][0])} "
                                      f"holds {float(array[bad][0]):g}")
        low, high = array.min(), array.max()
        if low < 0:
            sample = int(np.argwhere(array == low)[0][0])
            raise ModelInputError(f"token id {int(low)} (sample {sample}) is negative; ids run from 0"
                                  + (f" to {self.vocab - 1}" if self.vocab else ""))
        if self.vocab is not None and high >= self.vocab:
            sample = int(np.argwhere(array == high)[0][0])
            raise ModelInputError(f"token id {int(high)} (sample {sample}) is outside the vocabulary: "
                                  f"vocab={self.vocab} allows ids 0..{self.vocab - 1}")

    def _shape_text(self) -> str:
        return "(" + ", ".join(str(d) if d is not None else "?" for d in self.input_shape) + ")"

    def encode_text(self, texts: list[str]) -> np.ndarray:
        if self.tokenizer is None:
            raise ModelInputError("this model file carries no vocabulary (it was exported without --weights RUN "
                                  "from a text run); pass token ids as an array")
        fixed = self.input_shape[1] if len(self.input_shape) > 1 else None
        if isinstance(fixed, int) and fixed != self.tokenizer.max_length:
            raise ModelInputError(f"the saved tokenizer makes {self.tokenizer.max_length} ids but the model "
                                  f"takes {fixed}")
        return self.tokenizer.encode(texts)

    def load_image(self, path: str | os.PathLike) -> np.ndarray:
        """One image file as the model's (C, H, W) float32 input (before the in-graph normalization)."""
        if self.image is None:
            raise ModelInputError("this model file says nothing about image files (not an image input, or more "
                                  "channels than a picture has); pass an array")
        size = [self.image.channels, self.image.height, self.image.width]
        if any(isinstance(want, int) and want != got for want, got in zip(self.input_shape[1:], size)):
            raise ModelInputError(f"the file's image metadata says {'x'.join(map(str, size))} but its graph "
                                  f"takes {self._shape_text()}")
        return load_image(path, self.image)

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


def load_image(path: str | os.PathLike, image: ImageFormat | dict[str, Any]) -> np.ndarray:
    """Read, convert (grayscale/RGB/RGBA by `channels`), resize to height x width (bilinear), to CHW float32.

    Pixel values are 0..255 times `image.scale` (default 1/255: 0..1, as the trainer reads
    image folders), inverted (max_value - v) when `image.invert` is true. Sizes over the
    caps of ImageFormat, and pictures over Pillow's decompression-bomb limit, are refused
    before anything is allocated."""
    from PIL import Image, UnidentifiedImageError

    if not isinstance(image, ImageFormat):
        try:
            image = ImageFormat.model_validate(image)
        except ValueError as error:
            raise ModelInputError(f"cannot load image files with these settings: {error}") from None
    mode = {1: "L", 3: "RGB", 4: "RGBA"}.get(image.channels)
    if mode is None:
        raise ModelInputError(f"cannot load image files for a {image.channels}-channel input")
    try:
        with Image.open(path) as picture:
            if Image.MAX_IMAGE_PIXELS and picture.width * picture.height > Image.MAX_IMAGE_PIXELS:
                raise ModelInputError(f"{path} is {picture.width}x{picture.height} pixels, over the "
                                      f"{Image.MAX_IMAGE_PIXELS:,}-pixel limit for image files")
            picture = picture.convert(mode)
            if picture.size != (image.width, image.height):
                picture = picture.resize((image.width, image.height), Image.BILINEAR)
            array = np.asarray(picture, dtype=np.float32)
    except (OSError, UnidentifiedImageError, Image.DecompressionBombError) as error:
        raise ModelInputError(f"cannot read image {path}: {error}") from None
    array = array.reshape(image.height, image.width, image.channels).transpose(2, 0, 1) * float(image.scale)
    if image.invert:
        array = float(image.max_value) - array
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
