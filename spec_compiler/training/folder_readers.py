"""Image folders other than one subfolder per class (readers.py reads those):

- `images/` and `masks/` side by side: a segmentation's data. Each image has a mask of the
  same name (the suffix may differ: `cat.jpg` and `cat.png`), a single-channel PNG whose
  pixel values are class ids. Images are read as the class folders' are (grayscale or RGB,
  bilinear resize to the spec's HxW, scaled to [0, 1]); masks are resized with nearest
  neighbour, so they keep whole class ids.
- image files with no subfolders: inputs without labels, a reconstruction's data.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from .readers import IMAGE_SUFFIXES, Raw, data_error
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


def read_image(file: Path, channels: int, height: int, width: int) -> np.ndarray:
    """One image file as a CxHxW float32 array in [0, 1]."""
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(file) as image:
            image = image.convert("L" if channels == 1 else "RGB").resize((width, height), Image.BILINEAR)
            array = np.asarray(image, dtype=np.float32) / 255.0
    except (OSError, UnidentifiedImageError) as error:
        raise data_error(str(file), f"cannot read the image: {error}") from None
    return array[None] if channels == 1 else array.transpose(2, 0, 1)


def read_mask(file: Path, height: int, width: int) -> np.ndarray:
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
    channels, height, width = _image_size(folder, target)
    masks = {f.stem: f for f in _image_files(folder / "masks")}
    images, labels = [], []
    for file in _image_files(folder / "images"):
        if file.stem not in masks:
            raise data_error(str(file), f"has no mask: expected {folder / 'masks' / file.stem}.png",
                             "give every image a mask of the same name in masks/")
        images.append(read_image(file, channels, height, width))
        labels.append(read_mask(masks[file.stem], height, width))
    if not images:
        raise data_error(str(folder / "images"), "no samples (no images)")
    return Raw(np.stack(images), np.stack(labels), str(folder), "array")


def load_unlabelled_images(folder: Path, target: Target) -> Raw:
    channels, height, width = _image_size(folder, target)
    images = [read_image(file, channels, height, width) for file in _image_files(folder)]
    return Raw(np.stack(images), None, str(folder), "array")
