"""Training data: loaders for every supported format, adaptation to the spec, checks.

Sources (`--data PATH`, or `data=` in the spec's train section):

- nothing: scikit-learn's bundled handwritten digits (1,797 8x8 images, offline),
  adapted to the spec's input: an image input CxHxW gets each 8x8 image resized to
  HxW with bilinear interpolation (``torch.nn.functional.interpolate``,
  ``align_corners=False``), scaled from 0..16 to [0, 1] and repeated over the C
  channels; a vector input of 64 gets the flattened pixels divided by 16. Any other
  input needs ``--data``.
- ``.npz``: arrays ``x`` and ``y`` (``x_train``/``y_train`` also accepted).
- ``.npy`` pairs: ``--data DIR`` holding ``x.npy`` and ``y.npy``, or ``--data
  path/NAME.npy`` where NAME contains ``x`` as a word (``x``, ``x_train``,
  ``digits-x``): the labels are the file named with that ``x`` replaced by ``y``
  (``y.npy``, ``y_train.npy``, ``digits-y.npy``); ``X``/``Y`` and
  ``images``/``labels`` work the same way.
- ``.csv`` (``.tsv``): a header row is optional; the label column is the one named
  ``label`` (or ``labels``, ``target``, ``class``, ``y``), else the last column.
  Every other column numeric: each row is one sample, reshaped to the spec's input.
  With a token input, the (single) other column is text, tokenized by the built-in
  tokenizer (spec_compiler/training/tokenizer.py) whose vocabulary goes to the run's
  preprocess.json. Labels may be numbers or names (names are sorted, or ordered as the
  spec's ``labels=[...]``).
- an image folder: one subfolder per class (sorted names are the labels), images read
  with Pillow, converted to grayscale (C=1) or RGB (C=3), resized to HxW (bilinear)
  and scaled to [0, 1].
- MNIST IDX files, raw or ``.gz``: ``--data path/train-images-idx3-ubyte[.gz]`` (the
  labels file is found by replacing ``images-idx3`` with ``labels-idx1``), or a folder
  holding one such pair (the ``train`` pair when there are several). Images are
  scaled to [0, 1] and adapted to the input like the digits.

Checks before training, each a SpecError naming the file: empty data, a sample shape
that is not the spec's input, NaN or infinite inputs, labels outside the output's
range, token ids that are not whole numbers or not below the vocabulary.
"""

from __future__ import annotations

import csv
import gzip
import re
import struct
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..errors import SpecError
from ..shapes import format_dims
from .tokenizer import Tokenizer

DIGITS = "digits (scikit-learn, bundled)"
LABEL_COLUMNS = ("label", "labels", "target", "class", "y")
IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp", ".ppm", ".pgm"}


def data_error(source: str, message: str, hint: str | None = None) -> SpecError:
    return SpecError.at(None, f"{source}: {message}", hint)


@dataclass(frozen=True)
class Target:
    """What the spec expects: its input, and what its output means."""

    input_kind: str
    input_dims: tuple  # ints, or str for a dynamic length
    input_dtype: str  # "float" | "int"
    vocab: int | None
    output_dims: tuple
    final_activation: str | None

    @classmethod
    def of(cls, model, module=None) -> "Target":
        """From the checked model; the final activation is the built module's (built here if not given)."""
        ir = model.ir
        final = (module if module is not None else model.build()).final_activation
        t = ir.input.type
        return cls(ir.input.kind, tuple(t.dims), t.dtype, t.vocab, tuple(model.info.output.dims), final)

    @property
    def input_text(self) -> str:
        extra = f" vocab={self.vocab}" if self.vocab else ""
        return f"{self.input_kind} {format_dims(self.input_dims)}{extra}"

    @property
    def units(self) -> int | None:
        last = self.output_dims[-1] if self.output_dims else 1
        return last if isinstance(last, int) else None

    @property
    def is_classifier(self) -> bool:
        return self.final_activation in ("softmax", "sigmoid")


@dataclass
class Raw:
    """Data as read, before adaptation: `kind` says how x may be adapted."""

    x: Any  # np.ndarray, or a list of str for text
    y: np.ndarray
    source: str
    kind: str  # "array" (strict shape), "rows" (flat rows, reshaped), "images" (N,H,W or N,C,H,W in [0,1]), "text"
    labels: list[str] | None = None  # class names read with the data (image folders)

    def __len__(self) -> int:
        return len(self.y)

    def take(self, index: np.ndarray) -> "Raw":
        x = [self.x[i] for i in index] if isinstance(self.x, list) else self.x[index]
        return Raw(x, self.y[index], self.source, self.kind, self.labels)


@dataclass
class Prepared:
    """Tensors ready for training (on the CPU) plus what preprocess.json records."""

    x: torch.Tensor
    y: torch.Tensor
    source: str
    tokenizer: Tokenizer | None = None
    labels: list[str] | None = None
    extra: dict = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.y)


# --- loading -----------------------------------------------------------------------

def load_raw(path: str | None, target: Target) -> Raw:
    if path is None:
        return load_digits()
    p = Path(path)
    if not p.exists():
        raise data_error(path, "no such file or folder")
    if p.is_dir():
        if (p / "x.npy").exists() or (p / "X.npy").exists():
            x = p / ("x.npy" if (p / "x.npy").exists() else "X.npy")
            return load_npy_pair(x)
        if _idx_pair_in(p) is not None:
            return load_idx(*_idx_pair_in(p))
        return load_image_folder(p, target)
    name = p.name.lower()
    if name.endswith(".npz"):
        return load_npz(p)
    if name.endswith(".npy"):
        return load_npy_pair(p)
    if name.endswith((".csv", ".tsv", ".csv.gz")):
        return load_csv(p, target)
    if "idx" in name or name.endswith("-ubyte") or name.endswith("-ubyte.gz"):
        return load_idx(p, _idx_labels_for(p))
    raise data_error(path, "unknown data format",
                     "use .npz (x, y), x.npy + y.npy, .csv, an image folder (one subfolder per class) "
                     "or MNIST IDX files")


def load_digits() -> Raw:
    from sklearn.datasets import load_digits as sk_digits

    digits = sk_digits()
    x = (digits.images / 16.0).astype(np.float32)  # (1797, 8, 8), [0, 1]
    return Raw(x, digits.target.astype(np.int64), DIGITS, "images", [str(i) for i in range(10)])


def _np_load(path: Path, what: str):
    try:
        return np.load(path, allow_pickle=False)
    except (OSError, ValueError) as error:
        raise data_error(str(path), f"cannot read {what}: {error}") from None


def load_npz(path: Path) -> Raw:
    arrays = _np_load(path, "the .npz file")
    keys = set(arrays.files)
    for xk, yk in (("x", "y"), ("x_train", "y_train"), ("X", "Y"), ("X", "y")):
        if xk in keys and yk in keys:
            return Raw(arrays[xk], arrays[yk], str(path), "array")
    raise data_error(str(path), f"expected arrays `x` and `y`, found {', '.join(sorted(keys)) or 'none'}",
                     "save with np.savez(path, x=inputs, y=labels)")


_PAIR = [(re.compile(r"(^|[_\-.])x($|[_\-.])"), "y"), (re.compile(r"(^|[_\-.])X($|[_\-.])"), "Y"),
         (re.compile(r"images"), "labels")]


def labels_file_for(x_path: Path) -> Path | None:
    stem = x_path.name[: -len(".npy")]
    for pattern, replacement in _PAIR:
        if pattern.search(stem):
            if replacement in ("y", "Y"):
                name = pattern.sub(lambda m: f"{m.group(1)}{replacement}{m.group(2)}", stem, count=1)
            else:
                name = pattern.sub(replacement, stem, count=1)
            return x_path.with_name(name + ".npy")
    return None


def load_npy_pair(x_path: Path) -> Raw:
    y_path = labels_file_for(x_path)
    if y_path is None:
        raise data_error(str(x_path), "cannot tell which file holds the labels",
                         "name the pair x.npy and y.npy (or x_train.npy and y_train.npy), or pass a .npz")
    if not y_path.exists():
        raise data_error(str(x_path), f"the labels file {y_path} is missing", "save the labels beside the inputs")
    return Raw(_np_load(x_path, "the inputs"), _np_load(y_path, "the labels"), str(x_path), "array")


def _number(text: str) -> float | None:
    try:
        return float(text)
    except ValueError:
        return None


def load_csv(path: Path, target: Target) -> Raw:
    source = str(path)
    opener = gzip.open if path.name.lower().endswith(".gz") else open
    try:
        with opener(path, "rt", encoding="utf-8", newline="") as handle:
            sample = handle.read(65536)
            handle.seek(0)
            delimiter = "\t" if path.name.lower().endswith(".tsv") else ","
            if delimiter == "," and sample.count(";") > sample.count(",") and "\n" in sample:
                delimiter = ";"
            rows = [row for row in csv.reader(handle, delimiter=delimiter) if row and any(c.strip() for c in row)]
    except (OSError, UnicodeDecodeError, csv.Error) as error:
        raise data_error(source, f"cannot read the CSV file: {error}") from None
    if not rows:
        raise data_error(source, "no samples (the file is empty)")
    width = len(rows[0])
    header = None
    text_input = target.input_dtype == "int"
    first = rows[0]
    lowered = [c.strip().lower() for c in first]
    if any(name in LABEL_COLUMNS for name in lowered) or (
            not text_input and any(_number(c) is None for c in first[:-1])) or (
            text_input and "text" in lowered):
        header, rows = lowered, rows[1:]
    if not rows:
        raise data_error(source, "no samples (only a header row)")
    for number, row in enumerate(rows, start=2 if header else 1):
        if len(row) != width:
            raise data_error(source, f"line {number} has {len(row)} columns, the first row has {width}")
    label_col = width - 1
    if header:
        for name in LABEL_COLUMNS:
            if name in header:
                label_col = header.index(name)
                break
    y_text = [row[label_col].strip() for row in rows]
    feature_cols = [i for i in range(width) if i != label_col]
    if not feature_cols:
        raise data_error(source, "needs at least one input column besides the label")
    if text_input:
        text_col = feature_cols[0]
        if len(feature_cols) > 1:
            if header and "text" in header:
                text_col = header.index("text")
            else:
                raise data_error(source, f"a token input takes one text column and a label; found {width} columns",
                                 "name the columns `text` and `label`")
        texts = [row[text_col] for row in rows]
        return Raw(texts, _labels_array(y_text), source, "text")
    values = np.empty((len(rows), len(feature_cols)), dtype=np.float32)
    for r, row in enumerate(rows):
        for c, column in enumerate(feature_cols):
            value = _number(row[column])
            if value is None:
                line = r + (2 if header else 1)
                raise data_error(source, f"line {line}, column {column + 1}: `{row[column]}` is not a number",
                                 "a numeric CSV holds numbers in every column but the label"
                                 if target.input_dtype != "int" else None)
            values[r, c] = value
    return Raw(values, _labels_array(y_text), source, "rows")


def _labels_array(texts: list[str]) -> np.ndarray:
    numbers = [_number(t) for t in texts]
    if all(n is not None for n in numbers):
        return np.asarray(numbers, dtype=np.float64)
    return np.asarray(texts, dtype=object)


def load_image_folder(folder: Path, target: Target) -> Raw:
    source = str(folder)
    if target.input_kind != "image" or len(target.input_dims) != 3 or not all(
            isinstance(d, int) for d in target.input_dims):
        raise data_error(source, f"an image folder needs an image input CxHxW; the spec's input is {target.input_text}")
    channels, height, width = target.input_dims
    if channels not in (1, 3):
        raise data_error(source, f"image folders give 1 (grayscale) or 3 (RGB) channels; the spec asks for {channels}")
    classes = sorted(d.name for d in folder.iterdir() if d.is_dir() and not d.name.startswith("."))
    if not classes:
        raise data_error(source, "no class subfolders", "put each class's images in a subfolder named after it")
    from PIL import Image, UnidentifiedImageError

    images, labels = [], []
    mode = "L" if channels == 1 else "RGB"
    for index, name in enumerate(classes):
        for file in sorted((folder / name).iterdir()):
            if file.suffix.lower() not in IMAGE_SUFFIXES:
                continue
            try:
                with Image.open(file) as image:
                    image = image.convert(mode).resize((width, height), Image.BILINEAR)
                    array = np.asarray(image, dtype=np.float32) / 255.0
            except (OSError, UnidentifiedImageError) as error:
                raise data_error(str(file), f"cannot read the image: {error}") from None
            images.append(array[None] if channels == 1 else array.transpose(2, 0, 1))
            labels.append(index)
    if not images:
        raise data_error(source, "no samples (no images in the class subfolders)")
    return Raw(np.stack(images), np.asarray(labels, dtype=np.int64), source, "images", classes)


def _read_idx(path: Path) -> np.ndarray:
    opener = gzip.open if path.name.endswith(".gz") else open
    try:
        with opener(path, "rb") as handle:
            data = handle.read()
    except OSError as error:
        raise data_error(str(path), f"cannot read the IDX file: {error}") from None
    if len(data) < 4 or data[0] != 0 or data[1] != 0:
        raise data_error(str(path), "not an IDX file (bad magic number)")
    dtypes = {0x08: ">u1", 0x09: ">i1", 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}
    if data[2] not in dtypes:
        raise data_error(str(path), f"unknown IDX element type 0x{data[2]:02x}")
    ndim = data[3]
    dims = struct.unpack(f">{ndim}I", data[4:4 + 4 * ndim])
    dtype = np.dtype(dtypes[data[2]])
    expected = int(np.prod(dims)) * dtype.itemsize
    body = data[4 + 4 * ndim:]
    if len(body) != expected:
        raise data_error(str(path), f"the IDX header promises {format_dims(dims)} values but the file holds "
                                    f"{len(body) // dtype.itemsize}")
    return np.frombuffer(body, dtype=dtype).reshape(dims)


def _idx_labels_for(images: Path) -> Path:
    name = images.name
    for a, b in (("images-idx3", "labels-idx1"), ("images.idx3", "labels.idx1"), ("images", "labels")):
        if a in name:
            candidate = images.with_name(name.replace(a, b))
            if not candidate.exists() and candidate.name.endswith(".gz"):
                candidate = candidate.with_name(candidate.name[:-3])
            elif not candidate.exists():
                gz = candidate.with_name(candidate.name + ".gz")
                candidate = gz if gz.exists() else candidate
            if candidate.exists():
                return candidate
            raise data_error(str(images), f"the labels file {candidate.name} is missing")
    raise data_error(str(images), "cannot tell which file holds the labels",
                     "name the pair like MNIST's: train-images-idx3-ubyte and train-labels-idx1-ubyte")


def _idx_pair_in(folder: Path) -> tuple[Path, Path] | None:
    images = sorted(f for f in folder.iterdir() if "images" in f.name and "idx3" in f.name)
    if not images:
        return None
    chosen = next((f for f in images if "train" in f.name), images[0])
    return chosen, _idx_labels_for(chosen)


def load_idx(images_path: Path, labels_path: Path) -> Raw:
    images = _read_idx(images_path)
    labels = _read_idx(labels_path)
    if images.ndim not in (3, 4):
        raise data_error(str(images_path), f"expected images N x H x W, the file holds {format_dims(images.shape)}")
    if labels.ndim != 1:
        raise data_error(str(labels_path), f"expected one label per image, the file holds {format_dims(labels.shape)}")
    scale = 255.0 if images.dtype == np.uint8 else 1.0
    return Raw((images.astype(np.float32) / scale), labels.astype(np.int64), str(images_path), "images")


# --- adaptation and checks ----------------------------------------------------------

def _shape_matches(shape: tuple, dims: tuple) -> bool:
    return len(shape) == len(dims) and all(not isinstance(d, int) or d == s for s, d in zip(shape, dims))


def adapt_inputs(raw: Raw, target: Target, tokenizer: Tokenizer | None = None) -> tuple[torch.Tensor, Tokenizer | None]:
    """x as the spec's input tensor (float32, or int64 token ids), checked."""
    source = raw.source
    if len(raw) == 0:
        raise data_error(source, "no samples")
    if raw.kind == "text":
        if target.input_dtype != "int":
            raise data_error(source, f"holds text, but the spec's input is {target.input_text}",
                             "text needs `input tokens T vocab=V`")
        if tokenizer is None:
            length = target.input_dims[0] if isinstance(target.input_dims[0], int) else None
            tokenizer = Tokenizer.fit(raw.x, target.vocab or 2, length)
        return torch.from_numpy(tokenizer.encode(raw.x)), tokenizer
    x = np.asarray(raw.x)
    if x.dtype == object or not (np.issubdtype(x.dtype, np.number) or x.dtype == np.bool_):
        raise data_error(source, f"the inputs are not numbers (dtype {x.dtype})")
    if x.shape[0] != len(raw.y):
        raise data_error(source, f"{x.shape[0]} inputs but {len(raw.y)} labels")
    dims = target.input_dims
    if raw.kind == "images" and not _shape_matches(x.shape[1:], dims):
        x = _adapt_images(x, target, source)
    elif raw.kind == "rows" and x.ndim == 2 and all(isinstance(d, int) for d in dims) and len(dims) > 1:
        if x.shape[1] == int(np.prod(dims)):
            x = x.reshape((x.shape[0], *dims))
    sample = tuple(x.shape[1:])
    if not _shape_matches(sample, dims):
        what = "columns per row" if raw.kind == "rows" else "samples of shape"
        got = f"{sample[0]} {what}" if raw.kind == "rows" else f"{what} {format_dims(sample)}"
        hint = None
        if raw.kind == "array" and len(sample) + 1 == len(dims) and dims[0] == 1 and target.input_kind == "image":
            hint = "add the channel axis: x = x[:, None]"
        raise data_error(source, f"the inputs hold {got}, but the spec's input is {target.input_text}", hint)
    if target.input_dtype == "int":
        if not np.issubdtype(x.dtype, np.integer):
            bad = ~np.isfinite(x) | (x != np.round(x)) if np.issubdtype(x.dtype, np.floating) else None
            if bad is not None and bad.any():
                sample_index = int(np.argwhere(bad)[0][0])
                raise data_error(source, f"token ids must be whole numbers; sample {sample_index} holds "
                                         f"{float(x[bad][0]):g}")
        ids = x.astype(np.int64)
        if ids.size and (ids.min() < 0 or (target.vocab is not None and ids.max() >= target.vocab)):
            value = int(ids.min()) if ids.min() < 0 else int(ids.max())
            sample_index = int(np.argwhere(ids == value)[0][0])
            raise data_error(source, f"token id {value} (sample {sample_index}) is outside the vocabulary: "
                                     f"vocab={target.vocab} allows ids 0..{target.vocab - 1}",
                             "raise `vocab=` on the input, or re-index the tokens")
        return torch.from_numpy(np.ascontiguousarray(ids)), tokenizer
    x = x.astype(np.float32, copy=False)
    finite = np.isfinite(x)
    if not finite.all():
        bad = np.argwhere(~finite.reshape(len(x), -1).all(axis=1))
        raise data_error(source, f"the inputs hold {int((~finite).sum())} NaN or infinite values "
                                 f"(first in sample {int(bad[0][0])})", "clean or impute them before training")
    return torch.from_numpy(np.ascontiguousarray(x)), tokenizer


def _adapt_images(x: np.ndarray, target: Target, source: str) -> np.ndarray:
    """Grayscale images (N,H,W) in [0,1] to the spec's input: resize/repeat, or flatten."""
    dims = target.input_dims
    gray = x if x.ndim == 3 else None
    if target.input_kind == "image" and len(dims) == 3 and all(isinstance(d, int) for d in dims):
        channels, height, width = dims
        images = torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32))
        if images.ndim == 3:
            images = images[:, None]
        if images.shape[-2:] != (height, width):
            images = torch.nn.functional.interpolate(images, size=(height, width), mode="bilinear",
                                                     align_corners=False)
        if images.shape[1] == 1 and channels != 1:
            images = images.repeat(1, channels, 1, 1)
        elif images.shape[1] == 3 and channels == 1:
            images = images.mean(dim=1, keepdim=True)
        return images.numpy()
    if target.input_kind == "vector" and len(dims) == 1 and gray is not None and dims[0] == gray[0].size:
        return gray.reshape(len(gray), -1)
    size = format_dims(x.shape[1:])
    raise data_error(source, f"holds {size} images, which the spec's input {target.input_text} cannot take",
                     f"pass --data with inputs of shape {format_dims(dims)} (.npz, .npy, .csv)"
                     if source != DIGITS else
                     "the bundled digits fit an image input CxHxW or a vector of 64; pass --data PATH for "
                     "other inputs")


def adapt_labels(raw: Raw, target: Target, loss_kind: str | None, names: list[str] | None) -> tuple[torch.Tensor, list[str] | None]:
    """y as class ids (int64) or float targets, checked against the output; plus class names."""
    source = raw.source
    y = np.asarray(raw.y)
    if len(y) == 0:
        raise data_error(source, "no samples")
    labels = names or raw.labels
    if y.dtype == object or y.dtype.kind in "US":
        values = [str(v) for v in y]
        if names is None:
            names = sorted(set(values), key=lambda v: (_number(v) is None, _number(v) or 0, v))
        index = {name: i for i, name in enumerate(names)}
        missing = sorted(set(values) - set(index))
        if missing:
            raise data_error(source, f"label `{missing[0]}` is not one of the spec's labels "
                                     f"({', '.join(names)})")
        y = np.asarray([index[v] for v in values], dtype=np.int64)
        labels = names
    if not np.issubdtype(y.dtype, np.number) and y.dtype != np.bool_:
        raise data_error(source, f"the labels are not numbers (dtype {y.dtype})")
    y = y.astype(np.float64) if y.dtype == np.bool_ else y
    if np.issubdtype(y.dtype, np.floating) and not np.isfinite(y).all():
        raise data_error(source, "the labels hold NaN or infinite values")
    out = target.output_dims
    units = target.units
    wants_one_hot = loss_kind == "categorical_crossentropy"
    as_ids = y.ndim == 1 or (y.ndim == len(out) and out[-1] != 1 and y.ndim >= 1 and
                             target.final_activation == "softmax" and tuple(y.shape[1:]) == tuple(out[:-1]))
    if target.final_activation == "softmax" and units and units > 1 and as_ids and not (
            y.ndim == 2 and y.shape[1] == units and len(out) == 1):
        whole = y == np.round(y)
        if not whole.all():
            raise data_error(source, f"label {float(y[~whole][0]):g} is not a class number "
                                     f"(the output {format_dims(out)} softmax takes ids 0..{units - 1})")
        bad = (y < 0) | (y >= units)
        if bad.any():
            raise data_error(source, f"label {int(y[bad][0])} is outside the output's range: "
                                     f"{units} classes allow labels 0..{units - 1}",
                             "the last dense layer needs as many units as there are classes")
        ids = torch.from_numpy(y.astype(np.int64))
        if wants_one_hot:
            return torch.nn.functional.one_hot(ids, units).float(), labels
        return ids, labels
    expected = tuple(out)
    flat = y.reshape(len(y), -1) if y.ndim > 1 else y.reshape(len(y), 1)
    if y.ndim == 1 and expected == (1,):
        y = y.reshape(len(y), 1)
    if not _shape_matches(tuple(y.shape[1:]), expected):
        raise data_error(source, f"the labels have shape {format_dims(y.shape[1:]) if y.ndim > 1 else 'scalar'} "
                                 f"per sample, but the output is {format_dims(expected)}")
    if target.final_activation in ("sigmoid", "softmax") or loss_kind in ("binary_crossentropy",
                                                                         "categorical_crossentropy"):
        bad = (flat < 0) | (flat > 1)
        if bad.any():
            what = "sigmoid" if target.final_activation == "sigmoid" else "probability"
            raise data_error(source, f"label {flat[bad][0]:g} is outside the output's range: a {what} output takes "
                                     "labels between 0 and 1",
                             "binary labels are 0 and 1" if units == 1 else None)
    return torch.from_numpy(np.ascontiguousarray(y, dtype=np.float32)), labels


def split_indices(n: int, fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """A reproducible random split: (train, validation) indices, validation of `fraction`."""
    if fraction <= 0:
        return np.arange(n), np.arange(0)
    order = torch.randperm(n, generator=torch.Generator().manual_seed(seed)).numpy()
    n_val = max(1, int(round(n * fraction)))
    if n_val >= n:
        raise data_error("validation_split", f"{fraction} leaves no training samples out of {n}")
    return np.sort(order[n_val:]), np.sort(order[:n_val])


def normalization_stats(x: torch.Tensor, kind: str, factor: float | None, input_kind: str) -> dict:
    """{kind, mean, std}: x_normalized = (x - mean) / std, per channel (images) or per feature."""
    if kind == "scale":
        return {"kind": "scale", "mean": [0.0], "std": [1.0 / factor], "axis": None}
    xd = x.double()
    if input_kind == "image" and x.ndim == 4:
        reduce, axis = (0, 2, 3), 0
    else:
        reduce, axis = tuple(range(x.ndim - 1)), x.ndim - 2  # last axis of a sample
    if kind == "standard":
        mean = xd.mean(dim=reduce)
        std = xd.std(dim=reduce, unbiased=False)
    else:  # minmax
        mean = xd.amin(dim=reduce)
        std = xd.amax(dim=reduce) - mean
    std = torch.where(std > 1e-12, std, torch.ones_like(std))
    return {"kind": kind, "mean": mean.tolist(), "std": std.tolist(), "axis": axis}


def apply_normalization(x: torch.Tensor, stats: dict | None) -> torch.Tensor:
    if not stats:
        return x
    mean = torch.tensor(stats["mean"], dtype=x.dtype)
    std = torch.tensor(stats["std"], dtype=x.dtype)
    axis = stats.get("axis")
    if axis is not None:
        shape = [1] * (x.ndim - 1)
        shape[axis] = -1
        mean, std = mean.view(1, *shape), std.view(1, *shape)
    return (x - mean) / std
