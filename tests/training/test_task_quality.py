"""Each training task's example spec (specs/) reaches a stated quality on data made here, then
goes through export to what an app does with it: predict's pictures, generate's text.

- shapes segmentation: validation mean IoU at least 0.8;
- digits autoencoder: validation reconstruction mse at most 0.3x the data's variance (the
  mse of always answering the mean image);
- character language model on the standard library's pydoc topics: validation perplexity at
  most half the unigram baseline;
- multi-label on separable data: validation micro F1 at least 0.9;
- sequence tagger: validation accuracy over the non-padding steps at least 0.95.

Each trains for ten to twenty seconds on two cores.
"""

from __future__ import annotations

import json
import math
import subprocess
import sys
from collections import Counter
from pathlib import Path

import numpy as np
from click.testing import CliRunner
from PIL import Image

import spec_compiler
from spec_compiler.cli import main

ROOT = Path(__file__).resolve().parents[2]
SPECS = ROOT / "specs"


def shapes(n: int, size: int = 16, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Noisy pictures of a square (class 1) and a disk (class 2) on a background (class 0)."""
    rng = np.random.default_rng(seed)
    rows, cols = np.mgrid[:size, :size]
    y = np.zeros((n, size, size), np.int64)
    for mask in y:
        side = rng.integers(4, 8)
        top, left = rng.integers(0, size - side, 2)
        mask[top:top + side, left:left + side] = 1
        radius = rng.uniform(2.5, 4)
        center_row, center_col = rng.uniform(radius, size - radius, 2)
        mask[(rows - center_row) ** 2 + (cols - center_col) ** 2 <= radius ** 2] = 2
    x = ((y > 0) + rng.normal(0, 0.1, y.shape)).astype(np.float32)[:, None]
    return x, y


def tagged(n: int, length: int = 20, vocab: int = 50, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Token sequences padded in front with 0; a token's tag (1-3) depends on it and the one before."""
    rng = np.random.default_rng(seed)
    x, y = np.zeros((n, length), np.int64), np.zeros((n, length), np.int64)
    for row in range(n):
        real = rng.integers(5, length + 1)
        tokens = rng.integers(1, vocab, real)
        before = np.concatenate([[0], tokens[:-1]])
        x[row, length - real:] = tokens
        y[row, length - real:] = np.where(tokens < 20, 1, np.where(before < 20, 2, 3))
    return x, y


def train_json(tmp_path: Path, spec: str, *options: str) -> dict:
    result = CliRunner().invoke(main, ["train", str(SPECS / spec), "--out", str(tmp_path / "run"), "--json", *options])
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout.strip().splitlines()[-1])


def export(tmp_path: Path, spec: str) -> Path:
    out = tmp_path / f"{Path(spec).stem}.onnx"
    result = CliRunner().invoke(main, ["export", str(SPECS / spec), "--weights", str(tmp_path / "run"), "-o", str(out)])
    assert result.exit_code == 0, result.output
    return out


def test_shapes_segmentation_reaches_mean_iou_0_8_and_predict_writes_masks(tmp_path):
    x, y = shapes(600)
    np.savez(tmp_path / "shapes.npz", x=x, y=y)
    summary = train_json(tmp_path, "shapes_segmentation.spec", "--data", str(tmp_path / "shapes.npz"))
    assert summary["val_mean_iou"] >= 0.8
    assert summary["val_pixel_accuracy"] >= 0.9
    record = json.loads((tmp_path / "run" / "run.json").read_text())
    assert record["config"]["task"] == {"kind": "segmentation"}
    assert record["config"]["metrics"] == [{"kind": "pixel_accuracy"}, {"kind": "mean_iou"}]

    onnx_file = export(tmp_path, "shapes_segmentation.spec")
    test_x, test_y = shapes(4, seed=1)
    np.save(tmp_path / "pictures.npy", test_x)
    result = CliRunner().invoke(main, ["predict", str(onnx_file), str(tmp_path / "pictures.npy"),
                                       "-o", str(tmp_path / "masks"), "--json"])
    assert result.exit_code == 0, result.output
    written = [Path(p["picture"]) for p in json.loads(result.stdout)["predictions"]]
    assert [p.name for p in written] == [f"pictures_{i}.png" for i in range(4)]
    masks = np.stack([np.asarray(Image.open(p)) for p in written])
    assert masks.shape == (4, 16, 16) and set(np.unique(masks)) <= {0, 1, 2}
    assert (masks == test_y).mean() >= 0.9


def test_digits_autoencoder_reconstructs_within_0_3_of_the_variance(tmp_path):
    from sklearn.datasets import load_digits

    digits = (load_digits().images / 16.0).astype(np.float32)[:, None]
    np.save(tmp_path / "digits.npy", digits)  # inputs alone: a reconstruction's data
    summary = train_json(tmp_path, "digits_autoencoder.spec", "--data", str(tmp_path / "digits.npy"))
    variance = float(digits.var(axis=0).mean())
    assert summary["val_mse"] <= 0.3 * variance

    onnx_file = export(tmp_path, "digits_autoencoder.spec")
    Image.fromarray((digits[7, 0] * 255).astype(np.uint8)).save(tmp_path / "seven.png")
    result = CliRunner().invoke(main, ["predict", str(onnx_file), str(tmp_path / "seven.png"),
                                       "-o", str(tmp_path / "out.png")])
    assert result.exit_code == 0, result.output
    assert "wrote" in result.output
    picture = np.asarray(Image.open(tmp_path / "out.png"), dtype=np.float32) / 255
    assert picture.shape == (8, 8)
    assert float(((picture - digits[7, 0]) ** 2).mean()) <= 0.3 * variance + 0.01


def test_character_lm_halves_the_unigram_perplexity_and_generates(tmp_path):
    from pydoc_data.topics import topics

    text = "".join(topics[key] for key in sorted(topics))[:100_000]
    (tmp_path / "corpus.txt").write_text(text, encoding="utf-8")
    summary = train_json(tmp_path, "char_lm.spec", "--data", str(tmp_path / "corpus.txt"), "--epochs", "4")
    counts, total = Counter(text), len(text)
    unigram = math.exp(-sum(c / total * math.log(c / total) for c in counts.values()))
    assert summary["val_perplexity"] <= unigram / 2
    labels = json.loads((tmp_path / "run" / "preprocess.json").read_text())["labels"]
    assert labels == sorted(counts)

    onnx_file = export(tmp_path, "char_lm.spec")
    command = ["generate", str(onnx_file), "The ", "--tokens", "40", "--temperature", "0.8", "--top-k", "5",
               "--seed", "3"]
    first, again = CliRunner().invoke(main, command), CliRunner().invoke(main, command)
    assert first.exit_code == 0, first.output
    assert first.output == again.output and first.output.startswith("The ")
    assert len(first.output.rstrip("\n")) == len("The ") + 40
    code = ("import sys\nfrom spec_compiler import runtime\n"
            f"m = runtime.load({str(onnx_file)!r})\n"
            "text = m.generate('import ', tokens=30, temperature=0)\n"
            "assert len(text) == 30 and text == m.generate('import ', tokens=30, temperature=0)\n"
            "ids = m.generate([1, 2, 3], tokens=5, seed=0)\n"
            "assert len(ids) == 5 and all(0 <= i < len(m.labels) for i in ids)\n"
            "assert 'torch' not in sys.modules, 'torch was imported'\n")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, cwd=ROOT)
    assert done.returncode == 0, done.stderr


def test_multilabel_reaches_f1_0_9(tmp_path):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(1000, 20)).astype(np.float32)
    y = (x @ rng.normal(size=(20, 5)) > 0).astype(np.float32)
    np.savez(tmp_path / "multi.npz", x=x, y=y)
    summary = train_json(tmp_path, "multilabel.spec", "--data", str(tmp_path / "multi.npz"))
    metrics = summary
    assert metrics["val_f1"] >= 0.9 and metrics["val_macro_f1"] >= 0.9
    assert metrics["val_precision"] >= 0.9 and metrics["val_recall"] >= 0.9


def test_tagger_labels_every_step_and_ignores_the_padding(tmp_path):
    x, y = tagged(1000)
    np.savez(tmp_path / "tags.npz", x=x, y=y)
    model = spec_compiler.load(SPECS / "tagger.spec")
    result = model.train(data=str(tmp_path / "tags.npz"), out=str(tmp_path / "run"), progress=False)
    assert result.metrics["val_accuracy"] >= 0.95
    evaluated = model.evaluate(result.run_dir)
    assert evaluated["accuracy"] == result.metrics["val_accuracy"]
