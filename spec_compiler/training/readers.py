"""Reading training data from files, before any adaptation to the spec (data.py does that).

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
  tokenizer (spec_compiler/text.py) whose vocabulary goes to the run's
  preprocess.json. Labels may be numbers or names (names are sorted, or ordered as the
  spec's ``labels=[...]``).
- an image folder: one subfolder per class (sorted names are the labels), images read
  with Pillow, converted to grayscale (C=1) or RGB (C=3), resized to HxW (bilinear)
  and scaled to [0, 1].
- MNIST IDX files, raw or ``.gz``: ``--data path/train-images-idx3-ubyte[.gz]`` (the
  labels file is found by replacing ``images-idx3`` with ``labels-idx1``), or a folder
  holding one such pair (the ``train`` pair when there are several). Images are
  scaled to [0, 1] and adapted to the input like the digits.
"""

from __future__ import annotations

import csv
import gzip
import re
import struct
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import SpecError
from ..shapes import format_dims
from .target import Target

DIGITS = "digits (scikit-learn, bundled)"
LABEL_COLUMNS = ("label", "labels", "target", "class", "y")
IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp", ".ppm", ".pgm"}


def data_error(source: str, message: str, hint: str | None = None) -> SpecError:
    return SpecError.at(None, f"{source}: {message}", hint)


@dataclass
class Raw:
    """Data as read, before adaptation: `kind` says how x may be adapted."""

    x: Any  # np.ndarray, or a list of str for text
    y: np.ndarray | None  # None: inputs only (reconstruction: the task makes the input the target)
    source: str
    kind: str  # "array" (strict shape), "rows" (flat rows, reshaped), "images" (N,H,W or N,C,H,W in [0,1]), "text"
    labels: list[str] | None = None  # class names read with the data (image folders)

    def __len__(self) -> int:
        return len(self.x)

    def take(self, index: np.ndarray) -> Raw:
        x = [self.x[i] for i in index] if isinstance(self.x, list) else self.x[index]
        return Raw(x, self.y[index] if self.y is not None else None, self.source, self.kind, self.labels)


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
    inputs = [k for k in ("x", "x_train", "X") if k in keys] or (sorted(keys) if len(keys) == 1 else [])
    if inputs:  # inputs only: a reconstruction's data
        return Raw(arrays[inputs[0]], None, str(path), "array")
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
    if y_path is None or not y_path.exists():  # inputs only: a reconstruction's data
        return Raw(_np_load(x_path, "the inputs"), None, str(x_path), "array")
    return Raw(_np_load(x_path, "the inputs"), _np_load(y_path, "the labels"), str(x_path), "array")


def parse_number(text: str) -> float | None:
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
            not text_input and any(parse_number(c) is None for c in first[:-1])) or (
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
            value = parse_number(row[column])
            if value is None:
                line = r + (2 if header else 1)
                raise data_error(source, f"line {line}, column {column + 1}: `{row[column]}` is not a number",
                                 "a numeric CSV holds numbers in every column but the label"
                                 if target.input_dtype != "int" else None)
            values[r, c] = value
    return Raw(values, _labels_array(y_text), source, "rows")


def _labels_array(texts: list[str]) -> np.ndarray:
    numbers = [parse_number(t) for t in texts]
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


def idx_labels_for(images: Path) -> Path:
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


def idx_pair_in(folder: Path) -> tuple[Path, Path] | None:
    images = sorted(f for f in folder.iterdir() if "images" in f.name and "idx3" in f.name)
    if not images:
        return None
    chosen = next((f for f in images if "train" in f.name), images[0])
    return chosen, idx_labels_for(chosen)


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
