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

Data larger than memory: ``.npy`` files, uncompressed ``.npz`` members (``np.savez``), raw
IDX files, image folders and CSV files are opened lazily, as columns read by rows
(dataset_files.py, dataset_csv.py); data.py's `load_raw` reads a small data set whole. A
compressed ``.npz`` member, a gzipped IDX file and a Fortran-ordered ``.npy`` are read whole.
"""

from __future__ import annotations

import gzip
import os
import re
import struct
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..shapes import format_dims
from .dataset_csv import LABEL_COLUMNS, index_csv, parse_number
from .dataset_files import IDX_DTYPES, Column, ScaledColumn, data_error, idx_column, npy_column, npz_column
from .target import Target

__all__ = ["DIGITS", "IMAGE_SUFFIXES", "LABEL_COLUMNS", "ImageFiles", "Raw", "data_error", "idx_labels_for",
           "idx_pair_in", "labels_file_for", "load_csv", "load_digits", "load_idx", "load_image_folder",
           "load_npy_pair", "load_npz", "parse_number"]

DIGITS = "digits (scikit-learn, bundled)"
IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp", ".ppm", ".pgm"}
FLOAT_BYTES = 4  # what an input sample takes per value once adapted (float32)


@dataclass
class Raw:
    """Data as read, before adaptation: `kind` says how x may be adapted. x and y are arrays
    in memory or Columns read by rows (dataset_files.py); y is None when the data hold
    inputs only."""

    x: Any  # np.ndarray, a Column, or a list of str for text
    y: Any  # np.ndarray, a Column, or None: inputs only (reconstruction: the task makes the input the target)
    source: str
    kind: str  # "array" (strict shape), "rows" (flat rows, reshaped), "images" (N,H,W or N,C,H,W in [0,1]), "text"
    labels: list[str] | None = None  # class names read with the data (image folders)

    def __len__(self) -> int:
        return len(self.x)

    @property
    def lazy(self) -> bool:
        """Some of it is still on disk."""
        return isinstance(self.x, Column) or isinstance(self.y, Column)

    @property
    def nbytes(self) -> int:
        """About what it takes in memory once adapted: inputs as float32 (text: its bytes)."""
        if self.kind == "text":
            x = self.x.nbytes if isinstance(self.x, Column) else sum(len(text) for text in self.x)
        else:
            x = len(self) * int(np.prod(self.x.shape[1:], dtype=np.int64)) * FLOAT_BYTES
        return int(x) + (int(self.y.nbytes) if self.y is not None else 0)

    def loaded(self) -> Raw:
        """The same data, read whole into memory."""
        return Raw(_whole(self.x), _whole(self.y), self.source, self.kind, self.labels)

    def take(self, index: np.ndarray) -> Raw:
        x = [self.x[i] for i in index] if isinstance(self.x, list) else self.x[index]
        return Raw(x, self.y[index] if self.y is not None else None, self.source, self.kind, self.labels)


def _whole(column):
    return column.read(np.arange(len(column))) if isinstance(column, Column) else column


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


def _npy(path: Path, what: str):
    """A .npy file: a column read by rows, or the array when it cannot be read so."""
    try:
        column = npy_column(path)
    except (OSError, ValueError) as error:
        raise data_error(str(path), f"cannot read {what}: {error}") from None
    return column if column is not None else _np_load(path, what)


def load_npz(path: Path) -> Raw:
    with _np_load(path, "the .npz file") as arrays:
        keys = set(arrays.files)
        for xk, yk in (("x", "y"), ("x_train", "y_train"), ("X", "Y"), ("X", "y")):
            if xk in keys and yk in keys:
                return Raw(_npz_member(path, arrays, xk), _npz_member(path, arrays, yk), str(path), "array")
        inputs = [k for k in ("x", "x_train", "X") if k in keys] or (sorted(keys) if len(keys) == 1 else [])
        if inputs:  # inputs only: a reconstruction's data
            return Raw(_npz_member(path, arrays, inputs[0]), None, str(path), "array")
    raise data_error(str(path), f"expected arrays `x` and `y`, found {', '.join(sorted(keys)) or 'none'}",
                     "save with np.savez(path, x=inputs, y=labels)")


def _npz_member(path: Path, arrays, key: str):
    """An .npz member as a column read by rows (stored uncompressed), else read whole."""
    try:
        column = npz_column(path, key)
        return column if column is not None else arrays[key]
    except (OSError, ValueError, KeyError) as error:
        raise data_error(str(path), f"cannot read `{key}`: {error}") from None


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
        return Raw(_npy(x_path, "the inputs"), None, str(x_path), "array")
    return Raw(_npy(x_path, "the inputs"), _npy(y_path, "the labels"), str(x_path), "array")


def load_csv(path: Path, target: Target) -> Raw:
    rows, labels, _ = index_csv(path, target.input_dtype == "int")
    return Raw(rows, _labels_array(labels), str(path), "text" if rows.text_column is not None else "rows")


def _labels_array(texts: list[str]) -> np.ndarray:
    numbers = [parse_number(t) for t in texts]
    if all(n is not None for n in numbers):
        return np.asarray(numbers, dtype=np.float64)
    return np.asarray(texts, dtype=object)


class ImageFiles(Column):
    """Image files decoded when read: converted to grayscale (C=1) or RGB (C=3), resized to
    HxW (bilinear) and scaled to [0, 1], as float32 CxHxW."""

    def __init__(self, files: list[Path], channels: int, height: int, width: int):
        self.files = [str(f) for f in files]
        self.shape, self.dtype = (len(self.files), channels, height, width), np.dtype(np.float32)

    def read(self, rows: np.ndarray) -> np.ndarray:
        from PIL import Image, UnidentifiedImageError

        _, channels, height, width = self.shape
        rows = np.asarray(rows, dtype=np.int64).reshape(-1)
        out = np.empty((len(rows), channels, height, width), dtype=np.float32)
        for position, row in enumerate(rows):
            file = self.files[row]
            try:
                with Image.open(file) as image:
                    pixels = image.convert("L" if channels == 1 else "RGB").resize((width, height), Image.BILINEAR)
                    array = np.asarray(pixels, dtype=np.float32) / 255.0
            except (OSError, UnidentifiedImageError) as error:
                raise data_error(file, f"cannot read the image: {error}") from None
            out[position] = array[None] if channels == 1 else array.transpose(2, 0, 1)
        return out


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
    files, labels = [], []
    for index, name in enumerate(classes):
        for file in sorted((folder / name).iterdir()):
            if file.suffix.lower() in IMAGE_SUFFIXES:
                files.append(file)
                labels.append(index)
    if not files:
        raise data_error(source, "no samples (no images in the class subfolders)")
    return Raw(ImageFiles(files, channels, height, width), np.asarray(labels, dtype=np.int64), source, "images",
               classes)


def _idx_header(path: Path, head: bytes) -> tuple[np.dtype, tuple]:
    if len(head) < 4 or head[0] != 0 or head[1] != 0:
        raise data_error(str(path), "not an IDX file (bad magic number)")
    if head[2] not in IDX_DTYPES:
        raise data_error(str(path), f"unknown IDX element type 0x{head[2]:02x}")
    ndim = head[3]
    if len(head) < 4 + 4 * ndim:
        raise data_error(str(path), "not an IDX file (the header is cut short)")
    return np.dtype(IDX_DTYPES[head[2]]), struct.unpack(f">{ndim}I", head[4:4 + 4 * ndim])


def _read_idx(path: Path):
    """A gzipped IDX file read whole; a raw one as a column read by rows."""
    try:
        if path.name.endswith(".gz"):
            with gzip.open(path, "rb") as handle:
                data = handle.read()
        else:
            with open(path, "rb") as handle:
                data = handle.read(4 + 4 * 255)
    except OSError as error:
        raise data_error(str(path), f"cannot read the IDX file: {error}") from None
    dtype, dims = _idx_header(path, data)
    header = 4 + 4 * len(dims)
    expected = int(np.prod(dims, dtype=np.int64)) * dtype.itemsize
    size = len(data) - header if path.name.endswith(".gz") else os.path.getsize(path) - header
    if size != expected:
        raise data_error(str(path), f"the IDX header promises {format_dims(dims)} values but the file holds "
                                    f"{size // dtype.itemsize}")
    if path.name.endswith(".gz"):
        return np.frombuffer(data[header:], dtype=dtype).reshape(dims)
    return idx_column(path, data)


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
    labels = np.asarray(_read_idx(labels_path))
    if images.ndim not in (3, 4):
        raise data_error(str(images_path), f"expected images N x H x W, the file holds {format_dims(images.shape)}")
    if labels.ndim != 1:
        raise data_error(str(labels_path), f"expected one label per image, the file holds {format_dims(labels.shape)}")
    scale = 1 / 255.0 if images.dtype == np.uint8 else 1.0
    x = ScaledColumn(images, scale) if isinstance(images, Column) else images.astype(np.float32) * np.float32(scale)
    return Raw(x, labels.astype(np.int64), str(images_path), "images")
