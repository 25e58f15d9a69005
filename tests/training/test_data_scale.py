"""Data larger than memory: columns read by rows, data on disk that train exactly as in memory
(with or without DataLoader workers), bad samples found when they are read, max_steps and
steps_per_epoch, --compile, and memory that does not grow with the data."""

from __future__ import annotations

import csv
import gzip
import json
import multiprocessing
import pickle
import struct
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from click.testing import CliRunner
from safetensors.torch import load_file

import spec_compiler
from spec_compiler.cli import main
from spec_compiler.errors import SpecError
from spec_compiler.run import validation_split
from spec_compiler.training import Callback, compiling, ddp
from spec_compiler.training import data as data_mod
from spec_compiler.training.dataset_files import idx_column, npy_column, npz_column
from spec_compiler.training.dataset_loader import StepPlan

ROOT = Path(__file__).resolve().parents[2]

VECTOR = "model vec\ninput vector 4\ndense 8 relu\ndense 3 softmax\n"
IMAGE = "model img\ninput image 1x8x8\nconv 4x3x3 relu -> maxpool 2\nflatten\ndropout 0.2\ndense 3 softmax\n"
TOKENS = "model tok\ninput tokens 12 vocab=50\nembedding 8\ngru 8\ndense 1 sigmoid\n"


def spec(tmp_path: Path, text: str, name: str = "m.spec"):
    path = tmp_path / name
    path.write_text(text)
    return spec_compiler.load(path)


def blobs(n: int = 90, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    y = np.arange(n) % 3
    return rng.normal(0, 0.3, (n, 4)).astype(np.float32) + np.eye(3, 4, dtype=np.float32)[y] * 2, y.astype(np.int64)


def images(folder: Path, n: int = 120, seed: int = 1) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    np.save(folder / "x.npy", rng.random((n, 1, 8, 8), dtype=np.float32))
    np.save(folder / "y.npy", np.arange(n) % 3)
    return folder


def weights(run_dir) -> dict[str, torch.Tensor]:
    return load_file(str(Path(run_dir) / "weights.safetensors"))


def same(a: dict, b: dict) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


class Collect:
    """A stream that keeps what the run prints, line by line."""

    def __init__(self, lines: list[str]):
        self.lines = lines

    def write(self, text):
        self.lines.extend(line for line in text.splitlines() if line)

    def flush(self):
        pass

    def isatty(self):
        return False


def record(run_dir) -> dict:
    return json.loads((Path(run_dir) / "run.json").read_text())


@pytest.fixture
def on_disk(monkeypatch):
    """Every data set stays on disk, read by rows, whatever its size."""
    monkeypatch.setattr(data_mod, "IN_MEMORY_BYTES", -1)


# --- columns ---------------------------------------------------------------------------

def test_files_read_by_rows_give_what_numpy_reads(tmp_path):
    rng = np.random.default_rng(0)
    x = rng.random((50, 3, 4)).astype(">f4")
    rows = np.array([7, 3, 4, 5, 49, 0, 0])
    np.save(tmp_path / "x.npy", x)
    column = npy_column(tmp_path / "x.npy")
    assert column.shape == (50, 3, 4) and np.array_equal(column.read(rows), x[rows])
    assert np.array_equal(np.asarray(column), x) and np.array_equal(column[2:5], x[2:5])
    assert np.array_equal(pickle.loads(pickle.dumps(column)).read(rows), x[rows])  # a worker reopens the file
    np.savez(tmp_path / "d.npz", x=x, y=np.arange(50))
    assert np.array_equal(npz_column(tmp_path / "d.npz", "x").read(rows), x[rows])
    assert np.array_equal(npz_column(tmp_path / "d.npz", "y").read(rows), rows)
    np.savez_compressed(tmp_path / "c.npz", x=x)
    assert npz_column(tmp_path / "c.npz", "x") is None  # compressed: read whole
    np.save(tmp_path / "f.npy", np.asfortranarray(x))
    assert npy_column(tmp_path / "f.npy") is None
    pixels = rng.integers(0, 256, (20, 28, 28)).astype(np.uint8)
    header = bytes([0, 0, 0x08, 3]) + struct.pack(">3I", *pixels.shape)
    (tmp_path / "images-idx3-ubyte").write_bytes(header + pixels.tobytes())
    assert np.array_equal(idx_column(tmp_path / "images-idx3-ubyte", header).read(rows[:4]), pixels[rows[:4]])


def test_small_data_are_read_whole_and_large_data_stay_on_disk(tmp_path, monkeypatch):
    folder = images(tmp_path / "d")
    target = data_mod.Target.of(spec(tmp_path, IMAGE))
    raw = data_mod.load_raw(str(folder), target)
    assert not raw.lazy and isinstance(raw.x, np.ndarray)
    monkeypatch.setattr(data_mod, "IN_MEMORY_BYTES", raw.nbytes - 1)  # the labels alone still fit
    raw = data_mod.load_raw(str(folder), target)
    assert raw.lazy and isinstance(raw.y, np.ndarray) and raw.x.shape == (120, 1, 8, 8)


# --- training from disk ------------------------------------------------------------------

def test_data_on_disk_train_exactly_as_in_memory_with_or_without_workers(tmp_path, monkeypatch):
    model = spec(tmp_path, IMAGE)
    folder = images(tmp_path / "d")
    kw = dict(data=str(folder), epochs=2, batch=16, progress=False, normalize="standard", augment=["flip"], seed=3)
    memory = model.train(out=str(tmp_path / "memory"), **kw)
    monkeypatch.setattr(data_mod, "IN_MEMORY_BYTES", -1)
    disk = model.train(out=str(tmp_path / "disk"), workers=0, **kw)
    workers = model.train(out=str(tmp_path / "workers"), workers=2, **kw)
    assert same(weights(memory.run_dir), weights(disk.run_dir))
    assert same(weights(memory.run_dir), weights(workers.run_dir))
    assert disk.history == [{**h, "time_s": d["time_s"]} for h, d in zip(memory.history, disk.history)]
    assert (record(memory.run_dir)["workers"], record(workers.run_dir)["workers"]) == (0, 2)
    assert not multiprocessing.active_children()  # the workers are gone when training ends
    normalization = [json.loads((Path(r.run_dir) / "preprocess.json").read_text())["normalize"] for r in (memory, disk)]
    assert normalization[0] == normalization[1]
    assert normalization[0]["mean"][0] == pytest.approx(float(np.load(folder / "x.npy")[
        validation_split(120, 0.2, 3)[0]].mean()), rel=1e-6)


def test_a_validation_file_on_disk_beside_training_data_in_memory(tmp_path, monkeypatch):
    model = spec(tmp_path, VECTOR)
    np.savez(tmp_path / "train.npz", **dict(zip("xy", blobs(60))))
    np.savez(tmp_path / "val.npz", **dict(zip("xy", blobs(300, seed=1))))
    monkeypatch.setattr(data_mod, "IN_MEMORY_BYTES", 60 * 4 * 4 + 60 * 8)  # the training data fit, not the others
    result = model.train(data=str(tmp_path / "train.npz"), val_data=str(tmp_path / "val.npz"), epochs=3, lr=0.05,
                         batch=8, out=str(tmp_path / "r"), progress=False)
    assert record(result.run_dir)["data"]["n_val"] == 300 and result.metrics["val_accuracy"] > 0.9


def write_csv(path: Path, header: list[str], rows: list[list]) -> Path:
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(header)
        writer.writerows(rows)
    return path


def test_csv_text_and_image_folders_on_disk(tmp_path, on_disk):
    from PIL import Image

    x, y = blobs(60)
    names = np.array(["cat", "dog", "eel"])[y]
    path = write_csv(tmp_path / "d.csv", ["a", "b", "label", "c", "d"],
                     [[*row[:2], name, *row[2:]] for row, name in zip(x, names)])
    vec = spec(tmp_path, VECTOR)
    raw = data_mod.load_raw(str(path), data_mod.Target.of(vec))
    assert raw.lazy and raw.kind == "rows" and np.allclose(raw.x.read(np.array([5, 0])), x[[5, 0]], atol=1e-6)
    result = vec.train(data=str(path), epochs=3, lr=0.05, batch=8, out=str(tmp_path / "csv"), progress=False)
    assert result.metrics["val_accuracy"] > 0.9
    assert json.loads((tmp_path / "csv" / "preprocess.json").read_text())["labels"] == ["cat", "dog", "eel"]
    words = [["great movie, \"really\"\ngreat", 1], ["awful film", 0], ["great fun", 1], ["boring and awful", 0]] * 10
    texts = write_csv(tmp_path / "t.csv", ["text", "label"], words)
    tok = spec(tmp_path, TOKENS, "tok.spec")
    assert data_mod.load_raw(str(texts), data_mod.Target.of(tok)).x.read(np.array([0]))[0] == words[0][0]
    result = tok.train(data=str(texts), epochs=2, batch=8, out=str(tmp_path / "text"), progress=False, workers=1)
    vocab = json.loads((tmp_path / "text" / "preprocess.json").read_text())["text"]["vocab"]
    assert {"great", "awful", "really"} <= set(vocab) and result.epochs_run == 2
    for label, value in (("bright", 220), ("dark", 30)):
        (tmp_path / "imgs" / label).mkdir(parents=True)
        for i in range(8):
            Image.fromarray(np.full((10, 12), value, np.uint8)).save(tmp_path / "imgs" / label / f"{i}.png")
    img = spec(tmp_path, IMAGE.replace("dense 3", "dense 2"), "img.spec")
    raw = data_mod.load_raw(str(tmp_path / "imgs"), data_mod.Target.of(img))
    assert raw.lazy and raw.labels == ["bright", "dark"] and raw.x.read(np.array([9]))[0].max() < 0.2
    result = img.train(data=str(tmp_path / "imgs"), epochs=2, batch=4, out=str(tmp_path / "img"), progress=False)
    assert result.epochs_run == 2


@pytest.mark.parametrize("workers", [0, 1])
def test_a_bad_sample_is_reported_when_it_is_read(tmp_path, on_disk, workers):
    x, y = blobs(40)
    x[37, 2] = np.nan
    (tmp_path / "d").mkdir()
    np.save(tmp_path / "d" / "x.npy", x)
    np.save(tmp_path / "d" / "y.npy", y)
    with pytest.raises(SpecError) as error:
        spec(tmp_path, VECTOR).train(data=str(tmp_path / "d"), epochs=1, out=str(tmp_path / "r"), progress=False,
                                     workers=workers)
    assert error.value.first.message == (f"{tmp_path / 'd' / 'x.npy'}: the inputs hold 1 NaN or infinite values "
                                         "(first in sample 37)")
    rows = [[*row, label] for row, label in zip(blobs(40)[0].tolist(), y.tolist())]
    rows[23][1] = "n/a"
    path = write_csv(tmp_path / "bad.csv", ["a", "b", "c", "d", "label"], rows)
    with pytest.raises(SpecError, match=r"line 25, column 2: `n/a` is not a number"):
        spec(tmp_path, VECTOR).train(data=str(path), epochs=1, out=str(tmp_path / "c"), progress=False,
                                     workers=workers, normalize="standard")


def test_a_data_file_with_the_wrong_sample_shape_fails_before_training(tmp_path, on_disk):
    x, y = blobs(20)
    np.savez(tmp_path / "d.npz", x=x[:, :3], y=y)
    with pytest.raises(SpecError, match="the inputs hold samples of shape 3, but the spec's input is vector 4"):
        spec(tmp_path, VECTOR).train(data=str(tmp_path / "d.npz"), out=str(tmp_path / "r"), progress=False)
    assert not (tmp_path / "r").exists()
    np.savez(tmp_path / "n.npz", x=x, y=y[:10])
    with pytest.raises(SpecError, match="20 inputs but 10 labels"):
        spec(tmp_path, VECTOR).train(data=str(tmp_path / "n.npz"), out=str(tmp_path / "r"), progress=False)


# --- steps ---------------------------------------------------------------------------------

def test_max_steps_ends_the_run_and_resumes_to_the_same_weights(tmp_path):
    model = spec(tmp_path, VECTOR)
    np.savez(tmp_path / "d.npz", **dict(zip("xy", blobs())))
    data = str(tmp_path / "d.npz")
    kw = dict(data=data, batch=8, progress=False, optimizer="sgd(0.05, momentum=0.9)")
    straight = model.train(out=str(tmp_path / "straight"), max_steps=30, **kw)  # 72 samples: 9 steps per epoch
    assert straight.epochs_run == 4 and record(straight.run_dir)["config"]["max_steps"] == 30
    assert record(straight.run_dir)["config"]["epochs"] == 4 and "val_loss" in straight.history[-1]
    model.train(out=str(tmp_path / "part"), max_steps=13, **kw)
    resumed = model.train(out=str(tmp_path / "part"), max_steps=30, resume=True, **kw)
    assert same(weights(straight.run_dir), weights(resumed.run_dir))
    assert [h["loss"] for h in resumed.history] == [h["loss"] for h in straight.history]
    short = model.train(out=str(tmp_path / "short"), max_steps=30, epochs=2, **kw)
    assert short.epochs_run == 2


def test_steps_per_epoch_streams_on_across_epochs(tmp_path):
    model = spec(tmp_path, VECTOR)
    np.savez(tmp_path / "d.npz", **dict(zip("xy", blobs())))
    kw = dict(data=str(tmp_path / "d.npz"), batch=8, progress=False)
    stepped = model.train(out=str(tmp_path / "stepped"), steps_per_epoch=4, epochs=5, **kw)
    assert stepped.epochs_run == 5 and record(stepped.run_dir)["config"]["steps_per_epoch"] == 4
    steps = model.train(out=str(tmp_path / "steps"), max_steps=20, **kw)  # the same 20 steps in 3 epochs
    assert steps.epochs_run == 3
    assert same(weights(stepped.run_dir), weights(steps.run_dir))


def test_cli_train_takes_the_data_and_step_options(tmp_path):
    (tmp_path / "m.spec").write_text(VECTOR)
    np.savez(tmp_path / "d.npz", **dict(zip("xy", blobs())))
    out = str(tmp_path / "cli")
    result = CliRunner().invoke(main, ["train", str(tmp_path / "m.spec"), "--data", str(tmp_path / "d.npz"), "--out",
                                       out, "--max-steps", "7", "--steps-per-epoch", "3", "--workers", "1", "--json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout.strip().splitlines()[-1])["epochs_run"] == 3
    info = record(out)
    assert (info["config"]["max_steps"], info["config"]["steps_per_epoch"], info["workers"]) == (7, 3, 1)
    assert info["compile_s"] is None


# --- compile --------------------------------------------------------------------------------

def test_compile_is_timed_apart_and_its_warm_up_leaves_no_trace(tmp_path):
    net = spec(tmp_path, "input image 1x8x8\nconv 4x3x3 -> batchnorm relu\nflatten\ndropout 0.5\ndense 3 softmax\n",
               "bn.spec").build(seed=0)
    before = {k: v.clone() for k, v in net.state_dict().items()}
    compiled = compiling.compile_module(net, "eager")
    x, y = torch.rand(6, 1, 8, 8), torch.tensor([0, 1, 2, 0, 1, 2])
    rng = torch.get_rng_state()
    seconds = compiling.warm_up(net, [(x, y), (x[:5], y[:5])],
                                lambda a, b: torch.nn.functional.cross_entropy(compiled.forward_logits(a), b))
    assert seconds > 0 and same(before, net.state_dict()) and torch.equal(rng, torch.get_rng_state())
    assert all(p.grad is None for p in net.parameters())
    lines = []
    result = spec(tmp_path, IMAGE).train(data=str(images(tmp_path / "d")), epochs=1, batch=16, compile="aot_eager",
                                         out=str(tmp_path / "c"), stream=Collect(lines))
    assert record(result.run_dir)["compile_s"] > 0 and np.isfinite(result.metrics["val_loss"])
    assert any(line.startswith("compiled the model in") and "aot_eager" in line for line in lines)


@pytest.mark.filterwarnings("ignore::DeprecationWarning")  # importing inductor: torch.jit's own
def test_inductor_knows_the_options_specc_compiles_with():
    """torch.compile refuses an option inductor does not have, when called: one renamed in a
    later torch fails here, not in a user's run."""
    compiling.compile_module(torch.nn.Linear(2, 2), "inductor")
    with pytest.raises(RuntimeError, match="no_such_option"):
        torch.compile(torch.nn.Linear(2, 2), backend="inductor", options={"no_such_option": False})


def test_compiled_steps_train_as_eager_steps(tmp_path):
    """--compile compiles the step's forward with its loss and the regularization: the run
    ends where the eager run ends (aot_eager runs the graphs inductor would compile)."""
    model = spec(tmp_path, "model reg\ninput image 1x8x8\nconv 4x3x3 regularizer=l2(0.01) relu -> maxpool 2\n"
                           "flatten\ndense 3 softmax\n", "reg.spec")
    data = str(images(tmp_path / "d"))
    runs = {backend: model.train(data=data, epochs=2, batch=16, compile=backend, out=str(tmp_path / str(backend)),
                                 progress=False, device="cpu")
            for backend in (False, "aot_eager")}
    eager, compiled = (weights(runs[b].run_dir) for b in (False, "aot_eager"))
    assert eager.keys() == compiled.keys()
    assert all(torch.allclose(eager[k], compiled[k], atol=1e-5) for k in eager)
    assert runs["aot_eager"].metrics["loss"] == pytest.approx(runs[False].metrics["loss"], rel=1e-5)


def test_compile_warms_up_every_batch_size_the_steps_take(tmp_path):
    """Compiled steps skip Dynamo's full guard check (compiling.steady), so the warm-up must
    compile each batch size, though the short last batch comes only in a later epoch here."""
    plan = StepPlan(torch.arange(96), 20, seed=0, dist=ddp.SINGLE, merge_single=False, steps_per_epoch=2)
    assert [len(rows) for rows in plan.warm_up_rows(torch.device("cpu"))] == [20, 16]
    assert [len(rows) for rows in plan.epoch_rows(0, 0, torch.device("cpu"))] == [20, 20]
    merged = StepPlan(torch.arange(41), 20, seed=0, dist=ddp.SINGLE, merge_single=True)
    assert [len(rows) for rows in merged.warm_up_rows(torch.device("cpu"))] == [21, 20]
    model, data = spec(tmp_path, IMAGE), str(images(tmp_path / "d"))
    runs = [model.train(data=data, epochs=3, batch=20, steps_per_epoch=2, compile=backend, progress=False,
                        out=str(tmp_path / str(backend))) for backend in (False, "aot_eager")]
    eager, compiled = (weights(run.run_dir) for run in runs)
    assert all(torch.allclose(eager[k], compiled[k], atol=1e-5) for k in eager)


def test_a_layer_frozen_between_compiled_epochs_stays_frozen(tmp_path):
    """A callback that freezes a layer between compiled epochs (the steps after an epoch's first
    skip Dynamo's full guard check): the layer does not move again."""

    class Freeze(Callback):
        def on_epoch_end(self, trainer, epoch, logs):
            if epoch == 1:
                conv = next(m for m in trainer.module.modules() if isinstance(m, torch.nn.Conv2d))
                conv.weight.requires_grad_(False)
                conv.weight.grad = None
                self.frozen = conv.weight.detach().clone()

    freeze = Freeze()
    result = spec(tmp_path, IMAGE).train(data=str(images(tmp_path / "d")), epochs=3, batch=16, compile="aot_eager",
                                         out=str(tmp_path / "r"), progress=False, callbacks=[freeze])
    conv = next(v for k, v in weights(result.run_dir).items() if k.endswith("weight") and v.ndim == 4)
    assert torch.equal(conv, freeze.frozen)


def test_compile_says_which_layers_it_leaves_uncompiled(tmp_path):
    data = tmp_path / "tok.npz"
    np.savez(data, x=np.random.default_rng(0).integers(0, 50, (40, 12)), y=np.arange(40) % 2)
    lines = []
    result = spec(tmp_path, TOKENS, "tok.spec").train(data=str(data), epochs=1, batch=8, compile="aot_eager",
                                                      out=str(tmp_path / "r"), stream=Collect(lines))
    gru = next(m for m in result.module.modules() if isinstance(m, torch.nn.GRU))
    assert "forward" not in vars(gru)  # marked torch.compiler.disable for the run only
    assert ("note: torch.compile runs gru uncompiled (Dynamo does not trace recurrent layers): expect no gain "
            "from --compile; `--amp bf16` speeds them up on CPUs with bf16") in lines


# --- memory -----------------------------------------------------------------------------------

PEAK = """
import json, sys
import spec_compiler
from pathlib import Path

def peak_mib():
    line = next(l for l in Path("/proc/self/status").read_text().splitlines() if l.startswith("VmHWM:"))
    return int(line.split()[1]) / 1024

peaks = []
for folder in sys.argv[1:]:
    spec_compiler.load(Path(folder) / "m.spec").train(
        data=folder, max_steps=20, batch=32, workers=0, progress=False, validation_split=0.01, normalize="standard",
        out=str(Path(folder) / "run"), device="cpu")
    peaks.append(peak_mib())
print(json.dumps(peaks))
"""


def npy_images(folder: Path, rows: int) -> Path:
    """x.npy (rows, 3, 32, 32) uint8 written a chunk at a time, y.npy, and a small convnet."""
    folder.mkdir()
    (folder / "m.spec").write_text("input image 3x32x32\nconv 8x3x3 relu -> maxpool 4\nflatten\ndense 10 softmax\n")
    with open(folder / "x.npy", "wb") as handle:
        np.lib.format.write_array_header_1_0(handle, {"descr": "|u1", "fortran_order": False,
                                                      "shape": (rows, 3, 32, 32)})
        chunk = np.random.default_rng(0).integers(0, 256, (4096, 3 * 32 * 32), dtype=np.uint8).tobytes()
        for start in range(0, rows, 4096):
            handle.write(chunk[:min(4096, rows - start) * 3 * 32 * 32])
    np.save(folder / "y.npy", np.arange(rows) % 10)
    return folder


@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="peak RSS is read from /proc (Linux)")
def test_memory_does_not_grow_with_the_data(tmp_path):
    """One process trains on a tiny file, then on 200 MiB of uint8 (800 MiB as float32, read
    from disk, with a streaming normalization pass): its peak RSS grows by less than 100 MiB."""
    tiny, large = npy_images(tmp_path / "tiny", 256), npy_images(tmp_path / "large", 200 * 2**20 // 3072)
    out = subprocess.run([sys.executable, "-c", PEAK, str(tiny), str(large)], capture_output=True, text=True, cwd=ROOT,
                         env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"})
    assert out.returncode == 0, out.stderr
    after_tiny, after_large = json.loads(out.stdout.strip().splitlines()[-1])
    assert after_large - after_tiny < 100, (after_tiny, after_large)


def test_gzipped_idx_is_read_whole_and_raw_idx_by_rows(tmp_path, on_disk):
    pixels = np.random.default_rng(0).integers(0, 256, (30, 28, 28)).astype(np.uint8)
    header = bytes([0, 0, 0x08, 3]) + struct.pack(">3I", *pixels.shape)
    labels = bytes([0, 0, 0x08, 1]) + struct.pack(">I", 30) + (np.arange(30) % 3).astype(np.uint8).tobytes()
    (tmp_path / "train-images-idx3-ubyte").write_bytes(header + pixels.tobytes())
    (tmp_path / "train-labels-idx1-ubyte").write_bytes(labels)
    with gzip.open(tmp_path / "z-images-idx3-ubyte.gz", "wb") as handle:
        handle.write(header + pixels.tobytes())
    target = data_mod.Target.of(spec(tmp_path, IMAGE))
    raw = data_mod.load_raw(str(tmp_path / "train-images-idx3-ubyte"), target)
    assert raw.lazy and np.allclose(raw.x.read(np.array([4])), pixels[[4]] / 255.0)
    x, _ = data_mod.adapt_inputs(raw, target)
    assert x.shape == (30, 1, 8, 8)
    (tmp_path / "train-images-idx3-ubyte").write_bytes(header + pixels.tobytes()[:-5])
    with pytest.raises(SpecError, match="the IDX header promises 30x28x28 values but the file holds 23515"):
        data_mod.load_raw(str(tmp_path / "train-images-idx3-ubyte"), target)
