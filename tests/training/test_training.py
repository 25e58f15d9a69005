"""specc train / evaluate: loaders, data checks, the loop's features, resume, DDP, CLI.

Tiny models, 1-4 epochs, small data: the whole file runs in well under a minute.
"""

from __future__ import annotations

import csv
import gzip
import json
import math
import random
import re
import socket
import struct
from pathlib import Path

import numpy as np
import pytest
import torch
from click.testing import CliRunner
from safetensors.torch import load_file

import spec_compiler
from spec_compiler.cli import main
from spec_compiler.errors import SpecError
from spec_compiler.training import Callback, TrainingInterrupted
from spec_compiler.training import data as data_mod

ROOT = Path(__file__).resolve().parents[2]

VECTOR = """model vec
input vector 4
dense 8 relu
dense 3 softmax
"""

IMAGE = """model img
input image 1x8x8
conv 4x3x3 relu -> maxpool 2
flatten
dropout 0.2
dense 3 softmax
"""

TOKENS = """model tok
input tokens 12 vocab=50
embedding 8
gru 8
dense 1 sigmoid
"""


def spec(tmp_path: Path, text: str, name: str = "m.spec"):
    path = tmp_path / name
    path.write_text(text)
    return spec_compiler.load(path)


def blobs(n: int = 90, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Three separable clusters in 4-D."""
    rng = np.random.default_rng(seed)
    y = np.arange(n) % 3
    x = rng.normal(0, 0.3, (n, 4)).astype(np.float32) + np.eye(3, 4, dtype=np.float32)[y] * 2
    return x, y.astype(np.int64)


def npz(tmp_path: Path, x, y, name="d.npz") -> str:
    path = tmp_path / name
    np.savez(path, x=x, y=y)
    return str(path)


def fit(model, tmp_path, out="run", **kw):
    kw.setdefault("epochs", 2)
    kw.setdefault("batch", 8)
    kw.setdefault("progress", False)
    return model.train(out=str(tmp_path / out), **kw)


def weights(run_dir) -> dict[str, torch.Tensor]:
    return load_file(str(Path(run_dir) / "weights.safetensors"))


def same(a: dict, b: dict) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


# --- loaders ------------------------------------------------------------------------

def test_npz_trains_and_writes_the_run_folder(tmp_path):
    model = spec(tmp_path, VECTOR)
    result = fit(model, tmp_path, data=npz(tmp_path, *blobs()), epochs=3, lr=0.05)
    run = Path(result.run_dir)
    for name in ("weights.safetensors", "model.spec", "run.json", "preprocess.json", "metrics.csv", "curves.png",
                 "checkpoint.pt"):
        assert (run / name).exists(), name
    assert not list(run.glob(".*.tmp"))
    assert (run / "model.spec").read_text() == VECTOR
    info = json.loads((run / "run.json").read_text())
    assert info["epochs_run"] == 3 and info["status"] == "completed"
    assert info["config"]["loss"]["kind"] == "sparse_categorical_crossentropy"
    assert info["input"] == {"kind": "vector", "shape": [4], "dtype": "float", "vocab": None}
    pre = json.loads((run / "preprocess.json").read_text())
    assert pre["input_kind"] == "vector" and pre["text"] is None
    rows = list(csv.DictReader((run / "metrics.csv").open()))
    assert [r["epoch"] for r in rows] == ["1", "2", "3"] and "val_accuracy" in rows[0]
    assert result.metrics["val_accuracy"] > 0.9
    module = model.build()
    module.load_state_dict(weights(run))


def test_validation_file_and_normalizations(tmp_path):
    x, y = blobs(60)
    xv, yv = blobs(30, seed=1)
    model = spec(tmp_path, VECTOR)
    r = fit(model, tmp_path, "v", data=npz(tmp_path, x * 10 + 3, y), val_data=npz(tmp_path, xv * 10 + 3, yv, "v.npz"),
            normalize="minmax", epochs=1)
    info = json.loads((Path(r.run_dir) / "run.json").read_text())
    assert info["data"]["n_train"] == 60 and info["data"]["n_val"] == 30
    norm = json.loads((Path(r.run_dir) / "preprocess.json").read_text())["normalize"]
    assert norm["kind"] == "minmax" and norm["mean"] == pytest.approx((x * 10 + 3).min(axis=0), rel=1e-5)
    r = fit(model, tmp_path, "s", data=npz(tmp_path, x, y), normalize="scale(0.5)", epochs=1)
    norm = json.loads((Path(r.run_dir) / "preprocess.json").read_text())["normalize"]
    assert norm["kind"] == "scale" and norm["std"] == [2.0] and norm["mean"] == [0.0]


def test_npy_pair(tmp_path):
    x, y = blobs()
    np.save(tmp_path / "x_train.npy", x)
    np.save(tmp_path / "y_train.npy", y)
    raw = data_mod.load_raw(str(tmp_path / "x_train.npy"), data_mod.Target.of(spec(tmp_path, VECTOR)))
    assert np.array_equal(raw.y, y) and raw.x.shape == (90, 4)
    (tmp_path / "pair").mkdir()
    np.save(tmp_path / "pair" / "x.npy", x)
    np.save(tmp_path / "pair" / "y.npy", y)
    result = fit(spec(tmp_path, VECTOR), tmp_path, data=str(tmp_path / "pair"), epochs=1)
    assert result.epochs_run == 1


def test_csv_numeric_with_label_column_and_names(tmp_path):
    x, y = blobs(60)
    names = np.array(["cat", "dog", "eel"])[y]
    path = tmp_path / "d.csv"
    with path.open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["label", "a", "b", "c", "d"])
        for row, name in zip(x, names):
            w.writerow([name, *row])
    model = spec(tmp_path, VECTOR)
    raw = data_mod.load_raw(str(path), data_mod.Target.of(model))
    assert raw.x.shape == (60, 4) and np.allclose(raw.x, x, atol=1e-6)
    result = fit(model, tmp_path, data=str(path), epochs=1)
    pre = json.loads((Path(result.run_dir) / "preprocess.json").read_text())
    assert pre["labels"] == ["cat", "dog", "eel"]


def text_csv(path: Path, n: int = 240, seed: int = 0) -> Path:
    """Reviews: filler words plus one word that gives the sentiment away."""
    rng = random.Random(seed)
    filler = [f"w{i}" for i in range(40)]
    with path.open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["text", "label"])
        for i in range(n):
            label = i % 2
            words = [rng.choice(filler) for _ in range(rng.randint(3, 9))]
            cue = rng.choice(["great", "love", "superb"] if label else ["awful", "hate", "boring"])
            words.insert(rng.randrange(len(words) + 1), cue.upper() if i % 5 == 0 else cue)
            w.writerow([" ".join(words) + "!", "pos" if label else "neg"])
    return path


def test_csv_text_tokenizer_and_vocabulary(tmp_path):
    path = text_csv(tmp_path / "t.csv")
    model = spec(tmp_path, TOKENS)
    result = fit(model, tmp_path, data=str(path), epochs=3, lr=0.02)
    pre = json.loads((Path(result.run_dir) / "preprocess.json").read_text())
    text = pre["text"]
    assert text["pad_id"] == 0 and text["oov_id"] == 1 and text["max_length"] == 12 and text["lowercase"]
    assert len(text["vocab"]) <= 48 and min(text["vocab"].values()) == 2
    assert "great" in text["vocab"] and "GREAT" not in text["vocab"]
    assert pre["labels"] == ["neg", "pos"]
    from spec_compiler.text import Tokenizer

    ids = Tokenizer.from_json(text).encode(["Great, unknownword!"])
    assert ids.shape == (1, 12) and list(ids[0, -2:]) == [text["vocab"]["great"], 1] and ids[0, 0] == 0


@pytest.mark.parametrize("name", ["spam_lstm", "bigru_text", "attention_text"])
def test_text_specs_beat_chance(tmp_path, name):
    path = text_csv(tmp_path / "t.csv", n=200)
    model = spectrum = spec_compiler.load(ROOT / "specs" / f"{name}.spec")
    result = fit(spectrum, tmp_path, data=str(path), epochs=3, lr=0.01)
    assert model.name == name
    assert result.metrics["val_accuracy"] >= 0.75, result.history


def test_image_folder(tmp_path):
    from PIL import Image

    rng = np.random.default_rng(0)
    for cls, value in (("bright", 220), ("dark", 30)):
        (tmp_path / "imgs" / cls).mkdir(parents=True)
        for i in range(6):
            pixels = np.clip(rng.normal(value, 10, (10, 12, 3)), 0, 255).astype(np.uint8)
            Image.fromarray(pixels).save(tmp_path / "imgs" / cls / f"{i}.png")
    (tmp_path / "imgs" / "bright" / "notes.txt").write_text("not an image")
    model = spec(tmp_path, IMAGE.replace("dense 3", "dense 2"))
    raw = data_mod.load_raw(str(tmp_path / "imgs"), data_mod.Target.of(model))
    assert raw.x.shape == (12, 1, 8, 8) and raw.labels == ["bright", "dark"]
    assert raw.x.max() <= 1.0 and raw.x[:6].mean() > 0.7 and raw.x[6:].mean() < 0.2
    result = fit(model, tmp_path, data=str(tmp_path / "imgs"), epochs=1, validation_split=0.25)
    assert json.loads((Path(result.run_dir) / "preprocess.json").read_text())["labels"] == ["bright", "dark"]


def write_idx(path: Path, array: np.ndarray, gz: bool) -> None:
    header = bytes([0, 0, 0x08, array.ndim]) + struct.pack(f">{array.ndim}I", *array.shape)
    data = header + array.astype(np.uint8).tobytes()
    (gzip.open if gz else open)(path, "wb").write(data)


@pytest.mark.parametrize("gz", [False, True])
def test_mnist_idx(tmp_path, gz):
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (20, 28, 28))
    labels = np.arange(20) % 3
    suffix = ".gz" if gz else ""
    write_idx(tmp_path / f"train-images-idx3-ubyte{suffix}", images, gz)
    write_idx(tmp_path / f"train-labels-idx1-ubyte{suffix}", labels, gz)
    model = spec(tmp_path, IMAGE)
    raw = data_mod.load_raw(str(tmp_path / f"train-images-idx3-ubyte{suffix}"), data_mod.Target.of(model))
    assert raw.x.shape == (20, 28, 28) and np.array_equal(raw.y, labels)
    assert np.allclose(raw.x, images / 255.0)
    x, _ = data_mod.adapt_inputs(raw, data_mod.Target.of(model))
    assert x.shape == (20, 1, 8, 8)
    raw2 = data_mod.load_raw(str(tmp_path), data_mod.Target.of(model))  # the folder
    assert np.array_equal(raw2.y, labels)


def test_digits_adaptation():
    lenet = spec_compiler.load(ROOT / "specs" / "lenet5.spec")
    raw = data_mod.load_digits()
    x, _ = data_mod.adapt_inputs(raw, data_mod.Target.of(lenet))
    assert x.shape == (1797, 1, 32, 32) and 0 <= float(x.min()) and float(x.max()) <= 1.0
    vec = spectrum_vector = spec_compiler.compile_source("input vector 64\ndense 10 softmax\n")
    xv, _ = data_mod.adapt_inputs(raw, data_mod.Target.of(spectrum_vector))
    assert vec is spectrum_vector and xv.shape == (1797, 64)
    assert torch.allclose(xv[0], torch.from_numpy(raw.x[0].reshape(-1)))
    seq = spec_compiler.compile_source("input sequence 10x5\nlstm 4\ndense 10 softmax\n")
    with pytest.raises(SpecError) as error:
        seq.train(progress=False)
    assert "pass --data" in str(error.value)


# --- bad data ------------------------------------------------------------------------

def _error(model, tmp_path, **kw) -> str:
    with pytest.raises(SpecError) as error:
        fit(model, tmp_path, epochs=1, **kw)
    assert error.value.first.span is None
    return error.value.first.message + (f"\nhint: {error.value.first.hint}" if error.value.first.hint else "")


def test_bad_data_errors(tmp_path):
    vec = spec(tmp_path, VECTOR)
    x, y = blobs(12)
    path = npz(tmp_path, x[:, :3], y, "shape.npz")
    assert _error(vec, tmp_path, data=path) == \
        f"{path}: the inputs hold samples of shape 3, but the spec's input is vector 4"
    path = npz(tmp_path, x, np.where(y == 2, 3, y), "range.npz")
    assert _error(vec, tmp_path, data=path) == (
        f"{path}: label 3 is outside the output's range: 3 classes allow labels 0..2\n"
        "hint: the last dense layer needs as many units as there are classes")
    bad = x.copy()
    bad[5, 1] = np.nan
    bad[7, 0] = np.inf
    path = npz(tmp_path, bad, y, "nan.npz")
    assert _error(vec, tmp_path, data=path) == (
        f"{path}: the inputs hold 2 NaN or infinite values (first in sample 5)\n"
        "hint: clean or impute them before training")
    path = npz(tmp_path, np.zeros((0, 4), np.float32), np.zeros(0, np.int64), "empty.npz")
    assert _error(vec, tmp_path, data=path) == f"{path}: no samples"
    tok = spec(tmp_path, TOKENS)
    ids = np.ones((10, 12))
    ids[3, 4] = 1.5
    path = npz(tmp_path, ids, np.zeros(10), "float_tokens.npz")
    assert _error(tok, tmp_path, data=path) == f"{path}: token ids must be whole numbers; sample 3 holds 1.5"
    ids = np.ones((10, 12), np.int64)
    ids[6, 0] = 50
    path = npz(tmp_path, ids, np.zeros(10), "vocab.npz")
    assert _error(tok, tmp_path, data=path) == (
        f"{path}: token id 50 (sample 6) is outside the vocabulary: vocab=50 allows ids 0..49\n"
        "hint: raise `vocab=` on the input, or re-index the tokens")
    path = npz(tmp_path, np.ones((10, 12), np.int64), np.full(10, 2.0), "binary.npz")
    assert _error(tok, tmp_path, data=path) == (
        f"{path}: label 2 is outside the output's range: a sigmoid output takes labels between 0 and 1\n"
        "hint: binary labels are 0 and 1")


def test_bad_data_on_the_command_line_is_one_clean_error(tmp_path):
    (tmp_path / "m.spec").write_text(VECTOR)
    x, y = blobs(12)
    path = npz(tmp_path, x[:, :2], y)
    result = CliRunner().invoke(main, ["train", str(tmp_path / "m.spec"), "--data", path, "--out",
                                       str(tmp_path / "r")])
    assert result.exit_code == 1
    assert result.output.strip() == f"error: {path}: the inputs hold samples of shape 2, but the spec's input is vector 4"


# --- the loop -------------------------------------------------------------------------

def test_early_stopping_stops_and_restores_best(tmp_path):
    model = spec(tmp_path, VECTOR)
    result = fit(model, tmp_path, data=npz(tmp_path, *blobs()), epochs=10,
                 early_stopping={"kind": "early_stopping", "patience": 1, "min_delta": 100.0})
    assert result.stopped_early and result.epochs_run == 2 and result.best_epoch == 1
    assert result.metrics["val_loss"] == result.history[0]["val_loss"]
    kept = weights(result.run_dir)
    assert same(kept, {k: v.cpu() for k, v in result.module.state_dict().items()})


def test_same_seed_same_weights_and_different_seed_differs(tmp_path):
    model = spec(tmp_path, IMAGE)
    data = str(tmp_path / "d.npz")
    rng = np.random.default_rng(1)
    np.savez(data, x=rng.random((40, 1, 8, 8), dtype=np.float32), y=np.arange(40) % 3)
    kw = dict(data=data, epochs=2, augment=["flip", "rotate", "translate", "noise"], normalize="standard")
    a = fit(model, tmp_path, "a", seed=3, **kw)
    b = fit(model, tmp_path, "b", seed=3, **kw)
    c = fit(model, tmp_path, "c", seed=4, **kw)
    assert same(weights(a.run_dir), weights(b.run_dir))
    assert not same(weights(a.run_dir), weights(c.run_dir))
    pre = json.loads((Path(a.run_dir) / "preprocess.json").read_text())
    assert pre["normalize"]["kind"] == "standard" and len(pre["normalize"]["mean"]) == 1


class StopAfter(Callback):
    def __init__(self, epoch, step):
        self.at = (epoch, step)

    def on_batch_end(self, trainer, epoch, step):
        if (epoch, step) == self.at:
            trainer.request_stop()


def test_resume_equals_an_uninterrupted_run(tmp_path):
    model = spec(tmp_path, IMAGE)
    data = str(tmp_path / "d.npz")
    rng = np.random.default_rng(2)
    np.savez(data, x=rng.random((48, 1, 8, 8), dtype=np.float32), y=np.arange(48) % 3)
    kw = dict(data=data, batch=8, seed=5, augment=["flip", "noise"], schedule="step(1, 0.5)", optimizer="sgd(0.1, momentum=0.9)")
    straight = fit(model, tmp_path, "straight", epochs=4, **kw)
    # stopped after 2 epochs, then continued to 4
    fit(model, tmp_path, "two_then_four", epochs=2, **kw)
    resumed = fit(model, tmp_path, "two_then_four", epochs=4, resume=True, **kw)
    assert same(weights(straight.run_dir), weights(resumed.run_dir))
    assert [h["loss"] for h in resumed.history] == [h["loss"] for h in straight.history]
    # interrupted in the middle of epoch 2 (as Ctrl-C does), then resumed
    with pytest.raises(TrainingInterrupted) as stop:
        fit(model, tmp_path, "mid", epochs=4, callbacks=[StopAfter(2, 3)], **kw)
    assert stop.value.saved and (tmp_path / "mid" / "checkpoint.pt").exists()
    assert json.loads((tmp_path / "mid" / "run.json").read_text())["status"] == "interrupted"
    resumed = fit(model, tmp_path, "mid", epochs=4, resume=True, **kw)
    assert same(weights(straight.run_dir), weights(resumed.run_dir))
    assert resumed.history[1]["loss"] == straight.history[1]["loss"]


def test_batchnorm_on_a_vector_trains_when_the_last_batch_holds_one_sample(tmp_path):
    """41 samples leave 33 for training with the default split and batch: 32 + 1. Batch norm
    cannot train on one sample, so the trailing sample joins the batch before it."""
    from spec_compiler.training.fit import batch_bounds

    model = spec(tmp_path, "input vector 4\ndense 8\nbatchnorm relu\ndense 3 softmax\n", "bn.spec")
    result = model.train(data=npz(tmp_path, *blobs(41)), epochs=2, out=str(tmp_path / "bn"), progress=False)
    assert result.epochs_run == 2 and all(math.isfinite(row["loss"]) for row in result.history)
    assert json.loads((tmp_path / "bn" / "run.json").read_text())["data"]["n_train"] == 33
    assert batch_bounds(33, 32, merge_single=True) == [(0, 33)]
    assert batch_bounds(33, 32, merge_single=False) == [(0, 32), (32, 33)]
    assert batch_bounds(64, 32, merge_single=True) == [(0, 32), (32, 64)]
    with pytest.raises(SpecError, match="batch norm cannot train on a single sample"):
        model.train(data=npz(tmp_path, *blobs(1), "one.npz"), validation_split=0, out=str(tmp_path / "one"),
                    progress=False)


def test_callbacks_subclass_callback(tmp_path):
    class Duck:
        def on_epoch_end(self, trainer, epoch, logs):
            pass

    with pytest.raises(TypeError, match="callbacks must subclass spec_compiler.training.Callback; got Duck"):
        fit(spec(tmp_path, VECTOR), tmp_path, data=npz(tmp_path, *blobs()), callbacks=[Duck()])
    assert not (tmp_path / "run").exists()


def test_nan_loss_stops_and_keeps_the_last_good_checkpoint(tmp_path):
    model = spec(tmp_path, VECTOR)
    with pytest.raises(SpecError) as error:
        fit(model, tmp_path, data=npz(tmp_path, *blobs()), epochs=3, lr=1e30, optimizer="sgd")
    message = error.value.first.message
    assert re.match(r"the loss became (nan|inf) at epoch 1, step \d+; training stopped\. The last good checkpoint "
                    r"\(end of epoch 0\) is kept in .*checkpoint\.pt", message), message
    assert "lower the learning rate" in error.value.first.hint
    kept = weights(tmp_path / "run")
    assert all(torch.isfinite(v).all() for v in kept.values())
    assert json.loads((tmp_path / "run" / "run.json").read_text())["status"] == "diverged"


def test_losses_optimizers_schedules_and_metrics_run(tmp_path):
    x, y = blobs()
    data = npz(tmp_path, x, y)
    onehot = npz(tmp_path, x, np.eye(3, dtype=np.float32)[y], "onehot.npz")
    model = spec(tmp_path, VECTOR)
    metrics = ["accuracy", "top_k_accuracy(2)", "precision", "recall", "mae", "mse", "sparse_categorical_accuracy"]
    r = fit(model, tmp_path, "a", data=data, optimizer="adamw(betas=[0.9, 0.99])", schedule="cosine(warmup=1)",
            clip_norm=1.0, clip_value=0.5, weight_decay=1e-3, metrics=metrics, loss="sparse_cce(label_smoothing=0.1)")
    assert set(metrics[:1] + ["top_k_accuracy", "precision", "recall", "mae", "mse"]) <= set(r.metrics)
    assert r.metrics["val_top_k_accuracy"] >= r.metrics["val_accuracy"]
    r = fit(model, tmp_path, "b", data=onehot, optimizer="rmsprop", schedule="plateau(0.5, 0)",
            metrics=["categorical_accuracy"])
    assert json.loads((Path(r.run_dir) / "run.json").read_text())["config"]["loss"]["kind"] == \
        "categorical_crossentropy"
    reg = spec(tmp_path, "input vector 4\ndense 8 relu regularizer=l2(0.01) constraint=max_norm(0.5)\n"
                         "dense 3 softmax frozen=true\n", "reg.spec")
    r = fit(reg, tmp_path, "c", data=data, loss="mse", optimizer="sgd(0.05, momentum=0.9, nesterov=true)")
    norms = r.module.state_dict()["dense_1.weight"].norm(dim=1)
    assert float(norms.max()) <= 0.5 + 1e-5
    assert same({"w": reg.build(seed=0).state_dict()["dense_2.weight"]},
                {"w": r.module.state_dict()["dense_2.weight"].cpu()})
    binary = spec(tmp_path, "input vector 4\ndense 1 sigmoid\n", "bin.spec")
    r = fit(binary, tmp_path, "d", data=npz(tmp_path, x, (y == 0).astype(np.float32), "bin.npz"), epochs=3, lr=0.05,
            metrics=["accuracy", "binary_accuracy", "precision", "recall"], loss="bce(label_smoothing=0.05)")
    assert r.metrics["val_accuracy"] == r.metrics["val_binary_accuracy"] > 0.8
    regress = spec(tmp_path, "input vector 4\ndense 2\n", "regress.spec")
    r = fit(regress, tmp_path, "e", data=npz(tmp_path, x, x[:, :2] * 2, "reg.npz"), loss="huber", metrics=["mae"])
    assert "val_mae" in r.metrics and "val_accuracy" not in r.metrics


@pytest.mark.parametrize("amp", ["bf16", "fp16"])
def test_mixed_precision_runs(tmp_path, amp):
    r = fit(spec(tmp_path, IMAGE), tmp_path, data=str(_images(tmp_path)), epochs=1, amp=amp)
    assert math.isfinite(r.metrics["val_loss"])
    assert json.loads((Path(r.run_dir) / "run.json").read_text())["amp"] == amp


def _images(tmp_path: Path) -> Path:
    rng = np.random.default_rng(4)
    path = tmp_path / "images.npz"
    np.savez(path, x=rng.random((24, 1, 8, 8), dtype=np.float32), y=np.arange(24) % 3)
    return path


def test_init_from_reports_and_rejects(tmp_path):
    model = spec(tmp_path, VECTOR)
    data = npz(tmp_path, *blobs())
    base = fit(model, tmp_path, "base", data=data, epochs=1)
    other = spec(tmp_path, VECTOR.replace("dense 3 softmax", "dense 2 softmax"), "two.spec")
    messages = []

    class Stream:
        def write(self, text):
            messages.append(text)

        def flush(self):
            pass

        def isatty(self):
            return False

    x, y = blobs()
    fit(other, tmp_path, "tuned", data=npz(tmp_path, x, y % 2, "two.npz"), epochs=1, init_from=base.run_dir,
        progress=True, stream=Stream())
    report = next(m for m in messages if m.startswith("init-from"))
    assert "loaded 2 of 4 tensors" in report and "dense_2.weight" in report
    lonely = spec(tmp_path, "input vector 4\ndense 3 softmax name=head\n", "lonely.spec")
    with pytest.raises(SpecError, match="none of its 4 tensors matches"):
        fit(lonely, tmp_path, "x", data=data, init_from=base.run_dir)


# --- DDP ------------------------------------------------------------------------------

def _ddp_worker(rank: int, world: int, port: int, spec_path: str, data: str, out: str) -> None:
    import os

    os.environ.update(RANK=str(rank), WORLD_SIZE=str(world), LOCAL_RANK=str(rank), LOCAL_WORLD_SIZE=str(world),
                      MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    model = spec_compiler.load(spec_path)
    result = model.train(data=data, epochs=2, batch=8, out=out, progress=False, device="cpu")
    torch.save({k: v.cpu() for k, v in result.module.state_dict().items()}, f"{out}/rank{rank}.pt")


def test_ddp_two_cpu_processes_end_identical(tmp_path):
    import torch.multiprocessing as mp

    (tmp_path / "m.spec").write_text(IMAGE)
    rng = np.random.default_rng(3)
    data = str(tmp_path / "d.npz")
    np.savez(data, x=rng.random((37, 1, 8, 8), dtype=np.float32), y=np.arange(37) % 3)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    out = str(tmp_path / "ddp")
    mp.spawn(_ddp_worker, args=(2, port, str(tmp_path / "m.spec"), data, out), nprocs=2, join=True)
    a = torch.load(f"{out}/rank0.pt", weights_only=True)
    b = torch.load(f"{out}/rank1.pt", weights_only=True)
    assert same(a, b)
    assert same(a, weights(out))
    info = json.loads((Path(out) / "run.json").read_text())
    assert info["world_size"] == 2 and info["epochs_run"] == 2


# --- command line ---------------------------------------------------------------------

def test_cli_train_json_and_evaluate(tmp_path):
    (tmp_path / "m.spec").write_text(VECTOR + "train {\n  epochs=2 lr=0.05\n}\n")
    data = npz(tmp_path, *blobs())
    out = str(tmp_path / "cli")
    runner = CliRunner()
    result = runner.invoke(main, ["train", str(tmp_path / "m.spec"), "--data", data, "--epochs", "3", "--batch", "8", "--out", out,
                                  "--json"])
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout.strip().splitlines()[-1])
    assert summary["run_dir"] == out and summary["epochs_run"] == 3
    assert summary["val_accuracy"] > 0.9 and summary["val_loss"] < 1.0
    evaluated = runner.invoke(main, ["evaluate", str(tmp_path / "m.spec"), "--weights", out, "--json"])
    assert evaluated.exit_code == 0, evaluated.output
    report = json.loads(evaluated.stdout.strip().splitlines()[-1])
    assert report["samples"] == 18
    assert report["accuracy"] == pytest.approx(summary["val_accuracy"])
    assert report["loss"] == pytest.approx(summary["val_loss"], rel=1e-5)
    whole = spec_compiler.load(tmp_path / "m.spec").evaluate(out, data=data)
    assert whole["samples"] == 90
