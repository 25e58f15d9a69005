"""Use an exported model in an app: ONNX Runtime and NumPy only (Pillow for image files).

    from spec_compiler import runtime
    model = runtime.load("lenet5.onnx")
    probabilities = model.predict(x)            # x: (N, 1, 32, 32) float32, any N
    model.top_k(x, k=3)                         # [[("7", 0.98), ("1", 0.01), ...], ...]
    spam = runtime.load("spam.onnx")
    spam.predict(["win a free phone now", "see you at lunch"])
    runtime.load("char_lm.onnx").generate("def ", tokens=80, temperature=0.8, seed=0)
    seg = runtime.load("shapes.onnx")
    runtime.save_picture(seg.picture(seg.predict("shapes.png")[0]), "mask.png")

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

A model exported with external data (over 1 GiB of weights, or `--external-data`) is
two files, `m.onnx` and `m.onnx.data` beside it: load the .onnx; ONNX Runtime reads the
weights from the side file.

This module never imports torch (tests check it), so an app needs only
`onnxruntime`, `numpy` and, for image files, `pillow`.
"""

from __future__ import annotations

import os
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from .run.records import ImageFormat, OnnxMetadata, OnnxOutput
from .text import Tokenizer

MAX_GENERATE_CONTEXT = 1024  # tokens fed to a language model of run-time length
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
        try:  # the real path: ONNX Runtime finds external data beside a symlink's target, not beside the link
            self.session = ort.InferenceSession(os.path.realpath(self.path), options,
                                                providers=list(providers or ["CPUExecutionProvider"]))
        except Exception as error:  # noqa: BLE001 - onnxruntime raises its own kinds
            if "external data" not in str(error).lower():
                raise
            line = str(error).strip().splitlines()[0]
            detail = re.split(r"\S+\.cc:\d+ \S+ ", line)[-1]  # the innermost reason, without C++ places
            raise ModelInputError(f"{self.path} keeps its weights in a file beside it that cannot be read "
                                  f"({detail}): keep the .onnx and its .onnx.data together") from None
        self.raw_metadata: dict[str, str] = dict(self.session.get_modelmeta().custom_metadata_map)
        try:
            self.info = OnnxMetadata.from_props(self.raw_metadata, str(self.path))
        except ValueError as error:
            raise ModelInputError(str(error)) from None
        self.metadata: dict[str, Any] = self.info.model_dump(mode="json")
        graph_input = self.session.get_inputs()[0]
        # A graph spec's file has several named inputs and outputs (`input_names`, `output_names`);
        # the single-input attributes below describe its first input.
        self.input_names: list[str] = [i.name for i in self.session.get_inputs()]
        self.output_names: list[str] = [o.name for o in self.session.get_outputs()]
        self.input_name: str = graph_input.name
        self.output_name: str = self.output_names[0]
        self.input_type: str = graph_input.type
        self.input_shape: list[Any] = list(graph_input.shape)
        first = self.info.input or (self.info.inputs[0] if self.info.inputs else None)
        self.kind: str | None = first.kind if first is not None else None
        self.vocab: int | None = first.vocab if first is not None else None
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
            self._check_token_ids(array, self.vocab)
        return np.ascontiguousarray(array, dtype=self.dtype)

    def _check_token_ids(self, array: np.ndarray, vocab: int | None) -> None:
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
                                  + (f" to {vocab - 1}" if vocab else ""))
        if vocab is not None and high >= vocab:
            sample = int(np.argwhere(array == high)[0][0])
            raise ModelInputError(f"token id {int(high)} (sample {sample}) is outside the vocabulary: "
                                  f"vocab={vocab} allows ids 0..{vocab - 1}")

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

    def prepare_inputs(self, x: Any) -> dict[str, np.ndarray]:
        """The graph's feed for `x`: a dict of arrays by input name (every input given, each
        checked as `prepare` checks one), or, for a model of one input, what `prepare` takes."""
        if not isinstance(x, dict):
            if len(self.input_names) != 1:
                raise ModelInputError(f"this model takes {len(self.input_names)} inputs "
                                      f"({', '.join(self.input_names)}): pass a dict of arrays by name")
            return {self.input_name: self.prepare(x)}
        missing = [name for name in self.input_names if name not in x]
        unknown = [str(name) for name in x if name not in self.input_names]
        if missing or unknown:
            raise ModelInputError("the inputs are " + ", ".join(self.input_names)
                                  + (f"; missing {', '.join(missing)}" if missing else "")
                                  + (f"; unknown {', '.join(unknown)}" if unknown else ""))
        feed = {}
        for graph_input, described in zip(self.session.get_inputs(), self.info.inputs or [None]):
            feed[graph_input.name] = self._one_input(x[graph_input.name], graph_input,
                                                     described.vocab if described is not None else self.vocab)
        if len({len(array) for array in feed.values()}) > 1:
            sizes = ", ".join(f"{name} {len(array)}" for name, array in feed.items())
            raise ModelInputError(f"every input needs the same number of samples, got {sizes}")
        return feed

    def _one_input(self, x: Any, graph_input, vocab: int | None) -> np.ndarray:
        """One named input's array, as `prepare` checks the first input's."""
        array = np.asarray(x)
        shape = list(graph_input.shape)
        if array.dtype.kind not in "biuf":
            raise ModelInputError(f"cannot feed an array of dtype {array.dtype} to input {graph_input.name}")
        if array.ndim == len(shape) - 1:
            array = array[None]
        if array.ndim != len(shape) or any(isinstance(want, int) and want != got
                                           for want, got in zip(shape[1:], array.shape[1:])):
            text = "(" + ", ".join(str(d) if d is not None else "?" for d in shape) + ")"
            raise ModelInputError(f"input {graph_input.name}: expected an array of shape {text}, "
                                  f"got {tuple(array.shape)}")
        if "int64" in graph_input.type:
            self._check_token_ids(array, vocab)
            return np.ascontiguousarray(array, dtype=np.int64)
        return np.ascontiguousarray(array, dtype=np.float32)

    # --- outputs -----------------------------------------------------------------
    def predict(self, x: Any) -> np.ndarray | dict[str, np.ndarray]:
        """The model's output for `x`, exactly as onnxruntime computes it. A model with several
        inputs takes a dict of arrays by input name; one with several outputs gives a dict of
        arrays by output name, in the spec's `output` order."""
        if self.info.inputs is None:
            return self.session.run([self.output_name], {self.input_name: self.prepare(x)})[0]
        results = self.session.run(self.output_names, self.prepare_inputs(x))
        return results[0] if len(results) == 1 else dict(zip(self.output_names, results))

    def __call__(self, x: Any) -> np.ndarray | dict[str, np.ndarray]:
        return self.predict(x)

    def top_k(self, x: Any, k: int = 3) -> list[list[tuple[str, float]]]:
        """Per sample, the k most probable classes as (label, probability)."""
        return [top_classes(row, self.labels, k) for row in self.predict(x)]

    # --- image outputs -----------------------------------------------------------
    @property
    def output_picture(self) -> str | None:
        """What one sample's output is as a picture (a graph's: its first output's), see picture_kind."""
        return self.picture_kind()

    def output_spec(self, name: str | None = None) -> OnnxOutput | None:
        """The output's metadata: a chain's one output, or a graph's output called `name` (None: the first)."""
        if self.info.outputs is None:
            return self.info.output
        return next((o for o in self.info.outputs if name is None or o.name == name), None)

    def picture_kind(self, name: str | None = None) -> str | None:
        """What one sample of the output `name` (None: the first) is as a picture: "mask" for a
        KxHxW softmax (a segmentation: the class of each pixel), "image" for a CxHxW output of
        1, 3 or 4 channels without one (a reconstruction), else None."""
        output = self.output_spec(name)
        if output is None or len(output.shape) != 3 or not all(isinstance(d, int) for d in output.shape):
            return None
        if output.activation == "softmax":
            return "mask"
        return "image" if output.shape[0] in (1, 3, 4) else None

    def picture(self, output: np.ndarray, name: str | None = None) -> np.ndarray:
        """One sample of the output `name` (None: the first; CxHxW) as pixels: for a mask, each
        pixel's class id (HxW, uint8, or uint16 past 256 classes); for an image, the values
        turned back into 0..255 as image inputs are read (the inverse of the input's scale and
        invert), HxW or HxWxC uint8."""
        kind = self.picture_kind(name)
        if kind is None:
            spec = self.output_spec(name)
            raise ModelInputError(f"this model's output {spec.shape if spec else '?'} is "
                                  "not an image (a CxHxW output of 1, 3 or 4 channels, or a KxHxW softmax)")
        output = np.asarray(output)
        if kind == "mask":
            ids = output.argmax(axis=0)
            return ids.astype(np.uint8 if output.shape[0] <= 256 else np.uint16)
        image = self.image or ImageFormat(channels=output.shape[0], height=output.shape[1], width=output.shape[2])
        values = float(image.max_value) - output if image.invert else output
        pixels = np.clip(np.rint(values / float(image.scale)), 0, 255).astype(np.uint8)
        return pixels[0] if pixels.shape[0] == 1 else pixels.transpose(1, 2, 0)

    # --- language models ---------------------------------------------------------
    def generate(self, prompt: str | Sequence[int], tokens: int = 100, temperature: float = 1.0,
                 top_k: int | None = None, seed: int | None = None) -> str | list[int]:
        """Sample `tokens` tokens after `prompt` from a language model (token input, TxV softmax
        output), one at a time, each fed back as input. The prompt is text, encoded with the
        model's vocabulary (its labels: characters, or the tokens of a tokenizer file, matched
        longest first), or token ids; the continuation comes back the same way. temperature 0
        takes the most probable token; top_k keeps the k most probable; seed fixes the draws.

        The model must be causal (each step's output depends only on the steps up to it): a
        fixed-length input is filled from the start, padded after the context, and read at the
        context's last step; a run-time length is fed the context alone: its last 1024 tokens, or
        as many as the model reads (a learned positional_embedding's max_length)."""
        vocabulary = self._vocabulary()
        as_text = isinstance(prompt, str)
        try:
            ids = encode_tokens(prompt, self.labels) if as_text else [int(i) for i in prompt]
        except ModelInputError as error:
            raise ModelInputError(f"the prompt: {error}") from None
        if not ids:
            raise ModelInputError("the prompt is empty: give at least one token to continue")
        if tokens < 0 or temperature < 0 or (top_k is not None and top_k < 1):
            raise ModelInputError("tokens and temperature must be 0 or more, top_k 1 or more")
        self._check_token_ids(np.asarray([ids]), self.vocab)
        rng = np.random.default_rng(seed)
        fixed = self.input_shape[1] if isinstance(self.input_shape[1], int) else None
        new: list[int] = []
        longest = fixed or MAX_GENERATE_CONTEXT  # the context the model is fed at most
        read = 0  # the longest context the model has read
        for _ in range(tokens):
            context = (ids + new)[-longest:]
            try:
                probabilities = self._next_token_probabilities(context, fixed)
            except ModelInputError:
                # a run-time length the model cannot take, where a shorter one ran: that one is its
                # longest context (a learned positional_embedding holds max_length positions)
                if fixed is not None or not read or len(context) <= read:
                    raise
                longest = read
                context = context[-longest:]
                probabilities = self._next_token_probabilities(context, fixed)
            read = max(read, len(context))
            new.append(sample_token(probabilities[:vocabulary], temperature, top_k, rng))
        return "".join(self.labels[i] for i in new) if as_text else new

    def _next_token_probabilities(self, context: list[int], fixed: int | None) -> np.ndarray:
        """The distribution of the token after `context`: the output at its last step."""
        import onnxruntime as ort

        row = np.zeros((1, fixed or len(context)), dtype=np.int64)
        row[0, :len(context)] = context
        quiet = ort.RunOptions()
        quiet.log_severity_level = 4  # a failure is reported by the error raised, not logged as well
        try:
            return self.session.run([self.output_name], {self.input_name: row}, quiet)[0][0, len(context) - 1]
        except Exception as error:  # noqa: BLE001 - onnxruntime raises its own kinds
            node = re.search(r"Name:'([^']*)'", str(error))
            where = f" (ONNX Runtime fails at node {node[1]})" if node else ""
            raise ModelInputError(f"the model cannot read a context of {len(context)} tokens{where}: a shorter "
                                  "prompt? (a learned positional_embedding holds max_length positions)") from None

    def _vocabulary(self) -> int:
        """How many tokens the model can generate (its labels, when it has them); refuses a
        model that is not a language model."""
        output = self.info.output
        if self.kind != "tokens" or output is None or len(output.shape) != 2 or output.activation != "softmax":
            raise ModelInputError("generate needs a language model: a token input and a TxV softmax output")
        units = output.shape[1]
        if self.labels is None:
            return units if isinstance(units, int) else self.vocab
        return min(len(self.labels), units) if isinstance(units, int) else len(self.labels)


def encode_tokens(text: str, vocabulary: list[str] | None) -> list[int]:
    """Token ids of `text`: at each position the longest token of `vocabulary` that matches
    (for a character vocabulary, one id per character)."""
    if not vocabulary:
        raise ModelInputError("this model file carries no vocabulary (labels); give the prompt as token ids")
    index = {token: i for i, token in enumerate(vocabulary) if token}
    longest = max(len(token) for token in index)
    ids, position = [], 0
    while position < len(text):
        for size in range(min(longest, len(text) - position), 0, -1):
            token = index.get(text[position:position + size])
            if token is not None:
                ids.append(token)
                position += size
                break
        else:
            raise ModelInputError(f"{text[position]!r} (character {position}) starts no token of the vocabulary")
    return ids


def sample_token(probabilities: np.ndarray, temperature: float, top_k: int | None, rng: np.random.Generator) -> int:
    """One token drawn from a step's probabilities, sharpened by `temperature` (0: the most
    probable) and cut to the `top_k` most probable."""
    probabilities = np.asarray(probabilities, dtype=np.float64)
    if temperature == 0:
        return int(np.argmax(probabilities))
    logits = np.log(np.clip(probabilities, 1e-12, None)) / temperature
    if top_k is not None and top_k < len(logits):
        logits[np.argsort(-logits, kind="stable")[top_k:]] = -np.inf
    weights = np.exp(logits - logits.max())
    return int(rng.choice(len(weights), p=weights / weights.sum()))


def save_picture(pixels: np.ndarray, path: str | os.PathLike) -> None:
    """Write pixels (HxW, or HxWxC of 3 or 4 channels) as a PNG file, atomically."""
    import io

    from PIL import Image

    from .files import write_bytes_atomic

    buffer = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(pixels)).save(buffer, format="PNG")
    write_bytes_atomic(Path(path), buffer.getvalue())


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


__all__ = ["Model", "ModelInputError", "encode_tokens", "load", "load_array", "load_image", "sample_token",
           "save_picture", "top_classes"]
