"""Image folders other than one subfolder per class (readers.py reads those):

- `images/` and `masks/` side by side: a segmentation's data. Each image has a mask of the
  same name (the suffix may differ: `cat.jpg` and `cat.png`), a single-channel PNG whose
  pixel values are class ids. Images are read as the class folders' are (grayscale or RGB,
  bilinear resize to the spec's HxW, scaled to [0, 1]); masks are resized with nearest
  neighbour, so they keep whole class ids.
- image files with no subfolders: inputs without labels, a reconstruction's data.

Both are columns read by rows (dataset_files.py): a folder larger than memory trains in
flat memory, a small one is read whole by data.load_raw.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from .dataset_files import Column
from .readers import IMAGE_SUFFIXES, ImageFiles, Raw, data_error
from .target import Target

MASK_MODES = ("L", "P", "I", "I;16", "1")


def _image_files(folder: Path) -> list[Path]:
    return [f for f in sorted(folder.iterdir()) if f.is_file() and f.suffix.lower() in IMAGE_SUFFIXES]


def is_mask_folder(folder: Path) -> bool:
    return (folder / "images").is_dir() and (folder / "masks").is_dir()


def is_unlabelled_folder(folder: Path) -> bool:
    """Image files and no subfolders (hidden ones aside)."""
    subfolders = [d for d in folder.iterdir() if d.is_dir() and not d.name.startswith(".")]
    return not subfolders and bool(_image_files(folder))


def _image_size(folder: Path, target: Target) -> tuple[int, int, int]:
    dims = target.input_dims
    if target.input_kind != "image" or len(dims) != 3 or not all(isinstance(d, int) for d in dims):
        raise data_error(str(folder), f"an image folder needs an image input CxHxW; the spec's input is "
                                      f"{target.input_text}")
    if dims[0] not in (1, 3):
        raise data_error(str(folder), f"image folders give 1 (grayscale) or 3 (RGB) channels; the spec asks for "
                                      f"{dims[0]}")
    return dims


class MaskFiles(Column):
    """Mask files decoded when read: HxW int64 class ids, resized with nearest neighbour (so
    they keep whole class ids)."""

    def __init__(self, files: list[Path], height: int, width: int):
        self.files = [str(f) for f in files]
        self.shape, self.dtype = (len(self.files), height, width), np.dtype(np.int64)

    def read(self, rows: np.ndarray) -> np.ndarray:
        rows = np.asarray(rows, dtype=np.int64).reshape(-1)
        _, height, width = self.shape
        out = np.empty((len(rows), height, width), dtype=np.int64)
        for position, row in enumerate(rows):
            out[position] = read_mask(self.files[row], height, width)
        return out


def read_mask(file: str, height: int, width: int) -> np.ndarray:
    """One mask file as an HxW int64 array of class ids (nearest-neighbour resize)."""
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(file) as mask:
            if mask.mode not in MASK_MODES:
                raise data_error(str(file), f"a mask holds one class id per pixel; this image is {mask.mode}",
                                 "save masks as single-channel (L or P) PNGs whose values are class ids")
            if mask.size != (width, height):
                mask = mask.resize((width, height), Image.NEAREST)
            return np.asarray(mask, dtype=np.int64)
    except (OSError, UnidentifiedImageError) as error:
        raise data_error(str(file), f"cannot read the mask: {error}") from None


def load_mask_folder(folder: Path, target: Target) -> Raw:
    """images/ and masks/, both read by rows as batches need them."""
    channels, height, width = _image_size(folder, target)
    masks = {f.stem: f for f in _image_files(folder / "masks")}
    images = _image_files(folder / "images")
    for file in images:
        if file.stem not in masks:
            raise data_error(str(file), f"has no mask: expected {folder / 'masks' / file.stem}.png",
                             "give every image a mask of the same name in masks/")
    if not images:
        raise data_error(str(folder / "images"), "no samples (no images)")
    return Raw(ImageFiles(images, channels, height, width), MaskFiles([masks[f.stem] for f in images], height, width),
               str(folder), "images")


def load_unlabelled_images(folder: Path, target: Target) -> Raw:
    channels, height, width = _image_size(folder, target)
    return Raw(ImageFiles(_image_files(folder), channels, height, width), None, str(folder), "images")
