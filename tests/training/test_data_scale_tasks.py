"""Data on disk with tasks that make or reshape their targets (issue 11): reconstruction on
a lone x.npy, segmentation from an x.npy/y.npy pair and from images/ + masks/ folders, all
read by rows (never whole), training exactly as the same data held in memory."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

import spec_compiler
from spec_compiler.training import data as data_mod
from spec_compiler.training.readers import Raw

AUTOENCODER = ("model ae\ninput image 1x8x8\nflatten\ndense 12 relu\ndense 64 sigmoid\nreshape 1x8x8\n"
               "train { task=reconstruction }\n")
SEGMENTER = "model seg\ninput image 1x8x8\nconv 8 3x3 pad=same relu\nconv 2 1x1 -> softmax 0\n"


def spec(tmp_path: Path, text: str):
    path = tmp_path / "m.spec"
    path.write_text(text)
    return spec_compiler.load(path)


def weights(result) -> dict[str, torch.Tensor]:
    return load_file(str(Path(result.run_dir) / "weights.safetensors"))


def same(a: dict, b: dict) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def bright_squares(n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Dark 8x8 pictures, each with a bright square (class 1) somewhere; noise on top."""
    rng = np.random.default_rng(seed)
    x = rng.normal(0.2, 0.05, (n, 1, 8, 8)).astype(np.float32)
    y = np.zeros((n, 8, 8), np.int64)
    for i in range(n):
        top, left = rng.integers(0, 5, 2)
        y[i, top:top + 3, left:left + 3] = 1
        x[i, 0, top:top + 3, left:left + 3] += 0.6
    return np.clip(x, 0, 1), y


def train_in_memory_and_on_disk(model, data: Path, tmp_path: Path, monkeypatch, **options):
    """The same run twice: the data read whole, then on disk read by rows (reading whole fails)."""
    kw = dict(data=str(data), batch=8, progress=False, seed=1, **options)
    memory = model.train(out=str(tmp_path / "memory"), **kw)
    monkeypatch.setattr(data_mod, "IN_MEMORY_BYTES", -1)

    def read_whole(self):
        raise AssertionError(f"{self.source} was read whole")

    monkeypatch.setattr(Raw, "loaded", read_whole)
    disk = model.train(out=str(tmp_path / "disk"), **kw)
    return memory, disk


def test_reconstruction_on_a_lone_npy_on_disk(tmp_path, monkeypatch):
    x, _ = bright_squares(48)
    np.save(tmp_path / "x.npy", x)
    model = spec(tmp_path, AUTOENCODER)
    memory, disk = train_in_memory_and_on_disk(model, tmp_path / "x.npy", tmp_path, monkeypatch, epochs=3, lr=0.01,
                                               normalize="standard")
    # The targets are the inputs before normalization, on disk as in memory.
    assert same(weights(memory), weights(disk))
    assert disk.history == [{**m, "time_s": d["time_s"]} for m, d in zip(memory.history, disk.history)]
    assert json.loads((Path(disk.run_dir) / "run.json").read_text())["config"]["task"]["kind"] == "reconstruction"
    assert disk.history[-1]["loss"] < disk.history[0]["loss"]


def test_segmentation_from_an_npy_pair_on_disk(tmp_path, monkeypatch):
    x, y = bright_squares(64)
    np.save(tmp_path / "x.npy", x)
    np.save(tmp_path / "y.npy", y)
    model = spec(tmp_path, SEGMENTER)
    memory, disk = train_in_memory_and_on_disk(model, tmp_path, tmp_path, monkeypatch, epochs=4, lr=0.05)
    assert same(weights(memory), weights(disk))
    assert disk.history == [{**m, "time_s": d["time_s"]} for m, d in zip(memory.history, disk.history)]
    assert disk.metrics["val_mean_iou"] > 0.6


@pytest.mark.parametrize("workers", [0, 1])
def test_segmentation_from_image_and_mask_folders_on_disk(tmp_path, monkeypatch, workers):
    from PIL import Image

    x, y = bright_squares(40, seed=2)
    for folder in ("images", "masks"):
        (tmp_path / "shapes" / folder).mkdir(parents=True)
    for i in range(len(x)):
        Image.fromarray(np.round(x[i, 0] * 255).astype(np.uint8)).save(tmp_path / "shapes" / "images" / f"s{i:02d}.png")
        Image.fromarray(y[i].astype(np.uint8)).save(tmp_path / "shapes" / "masks" / f"s{i:02d}.png")
    model = spec(tmp_path, SEGMENTER)
    memory, disk = train_in_memory_and_on_disk(model, tmp_path / "shapes", tmp_path, monkeypatch, epochs=4, lr=0.05,
                                               workers=workers)
    raw = data_mod.load_raw(str(tmp_path / "shapes"), data_mod.Target.of(model))
    assert raw.lazy and raw.kind == "images"
    assert np.array_equal(raw.y.read(np.array([7, 3])), y[[7, 3]])
    assert same(weights(memory), weights(disk))
    assert disk.metrics["val_mean_iou"] > 0.6
