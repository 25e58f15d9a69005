"""Training data as the spec takes it: `load_raw` reads any supported source (readers.py),
`adapt_inputs` and `adapt_labels` turn it into the spec's input and output tensors.

Checks before training, each a SpecError naming the file: empty data, a sample shape
that is not the spec's input, NaN or infinite inputs, labels outside the output's
range, token ids that are not whole numbers or not below the vocabulary.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from ..run.records import Normalization
from ..shapes import format_dims
from ..text import Tokenizer
from .corpus_reader import CORPUS_SUFFIXES, load_corpus
from .folder_readers import is_mask_folder, is_unlabelled_folder, load_mask_folder, load_unlabelled_images
from .readers import (
    DIGITS,
    Raw,
    data_error,
    idx_labels_for,
    idx_pair_in,
    load_csv,
    load_digits,
    load_idx,
    load_image_folder,
    load_npy_pair,
    load_npz,
    parse_number,
)
from .target import Target


def load_raw(path: str | None, target: Target) -> Raw:
    """The data at `path`, in whichever supported format it is (None: the bundled digits)."""
    if path is None:
        return load_digits()
    p = Path(path)
    if not p.exists():
        raise data_error(path, "no such file or folder")
    if p.is_dir():
        if (p / "x.npy").exists() or (p / "X.npy").exists():
            x = p / ("x.npy" if (p / "x.npy").exists() else "X.npy")
            return load_npy_pair(x)
        if idx_pair_in(p) is not None:
            return load_idx(*idx_pair_in(p))
        if is_mask_folder(p):
            return load_mask_folder(p, target)
        if is_unlabelled_folder(p):
            return load_unlabelled_images(p, target)
        return load_image_folder(p, target)
    name = p.name.lower()
    if name.endswith(CORPUS_SUFFIXES):
        return load_corpus(p, target)
    if name.endswith(".npz"):
        return load_npz(p)
    if name.endswith(".npy"):
        return load_npy_pair(p)
    if name.endswith((".csv", ".tsv", ".csv.gz")):
        return load_csv(p, target)
    if "idx" in name or name.endswith("-ubyte") or name.endswith("-ubyte.gz"):
        return load_idx(p, idx_labels_for(p))
    raise data_error(path, "unknown data format",
                     "use .npz (x, y), x.npy + y.npy, .csv, an image folder (one subfolder per class), "
                     "a .txt corpus or MNIST IDX files")


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
    if raw.y is not None and x.shape[0] != len(raw.y):
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
            names = sorted(set(values), key=lambda v: (parse_number(v) is None, parse_number(v) or 0, v))
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
                             target.final_activation == "softmax" and _shape_matches(tuple(y.shape[1:]), tuple(out[:-1])))
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


def apply_normalization(x: torch.Tensor, normalization: Normalization | None) -> torch.Tensor:
    """x' = (x - mean) / std, the values running along the normalization's sample axis."""
    if normalization is None:
        return x
    mean = torch.tensor(normalization.mean, dtype=x.dtype)
    std = torch.tensor(normalization.std, dtype=x.dtype)
    if normalization.axis is not None:
        shape = [1] * (x.ndim - 1)
        shape[normalization.axis] = -1
        mean, std = mean.view(1, *shape), std.view(1, *shape)
    return (x - mean) / std
