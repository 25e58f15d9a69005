"""The run-folder contract of `specc train` (spec_compiler/run/folder.py, training/output.py):
one process owns a folder; a finished run is replaced only with --overwrite, and then
whole; after a kill at any moment the folder holds the old run or a resumable new one.
"""

from __future__ import annotations

import multiprocessing
import os
import random
import threading
import time
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from safetensors.torch import load_file

import spec_compiler
from spec_compiler.cli import main
from spec_compiler.errors import SpecError
from spec_compiler.run import RunFolder
from spec_compiler.training import Callback, TrainingInterrupted

SPEC = """model vec
input vector 4
dense 8 relu
dense 3 softmax
"""


def data_file(folder: Path, n: int = 96) -> str:
    rng = np.random.default_rng(0)
    y = np.arange(n) % 3
    x = rng.normal(0, 0.3, (n, 4)).astype(np.float32) + np.eye(3, 4, dtype=np.float32)[y] * 2
    np.savez(folder / "d.npz", x=x, y=y)
    return str(folder / "d.npz")


@pytest.fixture
def job(tmp_path):
    """A spec file and its data; `train(out, *options)` runs `specc train` on them."""
    (tmp_path / "m.spec").write_text(SPEC)
    data = data_file(tmp_path)

    def train(out: Path, *options: str):
        args = ["train", str(tmp_path / "m.spec"), "--data", data, "--batch", "8", "--epochs", "2",
                "--out", str(out), *options]
        return CliRunner().invoke(main, args)

    return train


def files(folder: Path) -> dict[str, bytes]:
    """Each file's bytes; a subfolder (tensorboard/, whose file names hold a time) as one entry."""
    return {p.name + ("/" if p.is_dir() else ""): b"".join(f.read_bytes() for f in sorted(p.rglob("*")) if f.is_file())
            if p.is_dir() else p.read_bytes() for p in sorted(folder.iterdir())}


def run_ids(folder: Path) -> set:
    """The run ids of run.json, preprocess.json, the weights and the checkpoint."""
    import torch

    run = RunFolder(folder)
    ids = {run.read_record().run_id, run.read_preprocess().run_id,
           torch.load(run.checkpoint_file, weights_only=True)["run_id"]}
    if run.weights_file.exists():
        ids.add(RunFolder.weights_run_id(run.weights_file))
    return ids


def no_leftovers(folder: Path) -> None:
    assert not list(folder.glob(".*.tmp"))
    assert not folder.with_name(f".{folder.name}.next").exists()
    assert not folder.with_name(f".{folder.name}.old").exists()


# --- ownership -------------------------------------------------------------------------

class Hold(Callback):
    """Keeps a training run busy until released."""

    def __init__(self):
        self.started, self.release = threading.Event(), threading.Event()

    def on_epoch_begin(self, trainer, epoch):
        self.started.set()
        assert self.release.wait(60)


def test_a_second_training_into_a_busy_folder_fails_at_once(tmp_path, job):
    model = spec_compiler.load(tmp_path / "m.spec")
    hold, outcome = Hold(), {}

    def first():
        outcome["result"] = model.train(data=data_file(tmp_path), out=str(tmp_path / "run"), epochs=1,
                                           progress=False, callbacks=[hold])

    thread = threading.Thread(target=first)
    thread.start()
    try:
        assert hold.started.wait(60)
        assert RunFolder(tmp_path / "run").state() == "running"
        started = time.perf_counter()
        second = job(tmp_path / "run")
        assert time.perf_counter() - started < 10
        assert second.exit_code == 1
        assert f"error: {tmp_path / 'run'} is in use by another specc process" in second.output
    finally:
        hold.release.set()
        thread.join(60)
    assert outcome["result"].status == "completed"
    assert RunFolder(tmp_path / "run").state() == "completed"


# --- a finished run ----------------------------------------------------------------------

def test_a_finished_run_is_replaced_only_with_overwrite_and_then_whole(tmp_path, job):
    out = tmp_path / "run"
    assert job(out).exit_code == 0
    before = files(out)
    (old_id,) = run_ids(out)
    refused = job(out)
    assert refused.exit_code == 1
    assert f"{out} holds a finished run (completed); nothing was changed" in refused.output
    assert "--overwrite" in refused.output and "--resume" in refused.output
    assert files(out) == before
    replaced = job(out, "--overwrite", "--seed", "1")
    assert replaced.exit_code == 0, replaced.output
    (new_id,) = run_ids(out)
    assert new_id != old_id and set(files(out)) == set(before) and files(out) != before
    RunFolder(out).check_one_run()
    no_leftovers(out)
    assert {p.stat().st_mode for p in out.rglob("*") if p.is_file()} == {(out / "run.json").stat().st_mode}
    both = job(out, "--overwrite", "--resume")
    assert both.exit_code == 2 and "choose one" in both.output


def test_a_diverged_run_never_replaces_trained_weights(tmp_path, job):
    out = tmp_path / "run"
    assert job(out).exit_code == 0
    before = files(out)
    diverged = job(out, "--overwrite", "--lr", "1e30")
    assert diverged.exit_code == 1
    assert f"{out} keeps its previous run (the new one is dropped)" in diverged.output
    assert files(out) == before
    no_leftovers(out)


class StopAt(Callback):
    def __init__(self, epoch, step):
        self.at = (epoch, step)

    def on_batch_end(self, trainer, epoch, step):
        if (epoch, step) == self.at:
            trainer.request_stop()


def test_an_interrupted_overwrite_leaves_the_new_run_to_resume(tmp_path, job):
    out = tmp_path / "run"
    assert job(out).exit_code == 0
    (old_id,) = run_ids(out)
    model = spec_compiler.load(tmp_path / "m.spec")
    options = dict(data=data_file(tmp_path), out=str(out), epochs=2, batch=8, progress=False)
    with pytest.raises(TrainingInterrupted):
        model.train(overwrite=True, callbacks=[StopAt(1, 3)], **options)
    assert RunFolder(out).state() == "interrupted"
    (new_id,) = run_ids(out)
    assert new_id != old_id
    assert model.train(resume=True, **options).status == "completed"
    assert run_ids(out) == {new_id}
    no_leftovers(out)


def test_a_folder_of_other_files_is_not_a_run(tmp_path, job):
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "notes.txt").write_text("keep me")
    result = job(tmp_path / "mine")
    assert result.exit_code == 1 and "holds files that are not a specc run" in result.output
    assert files(tmp_path / "mine") == {"notes.txt": b"keep me"}


def test_evaluate_refuses_a_folder_that_mixes_runs(tmp_path, job):
    assert job(tmp_path / "a").exit_code == 0 and job(tmp_path / "b").exit_code == 0
    (tmp_path / "b" / "weights.safetensors").replace(tmp_path / "a" / "weights.safetensors")
    with pytest.raises(SpecError, match="mixes files of different runs"):
        spec_compiler.load(tmp_path / "m.spec").evaluate(tmp_path / "a")


# --- kills at random moments ------------------------------------------------------------------

def _train_in_child(argv: list[str], log: str) -> None:
    """A forked `specc train` (its output to `log`)."""
    fd = os.open(log, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    os.dup2(fd, 1)
    os.dup2(fd, 2)
    main(argv)


class Trainings:
    """`specc train` in processes forked from a server that has imported torch and specc
    already, so that one starts in milliseconds and can be killed at any moment."""

    def __init__(self, tmp_path: Path):
        self.context = multiprocessing.get_context("forkserver")
        self.context.set_forkserver_preload(["torch", "torch._dynamo", "matplotlib.pyplot", "spec_compiler.training.fit",
                                            __name__])
        (tmp_path / "m.spec").write_text(SPEC)
        self.argv = ["train", str(tmp_path / "m.spec"), "--data", data_file(tmp_path, 120), "--batch", "8",
                     "--epochs", "6"]
        self.log = str(tmp_path / "train.log")

    def start(self, out: Path, *options: str):
        process = self.context.Process(target=_train_in_child, args=([*self.argv, "--out", str(out), *options],
                                                                     self.log))
        process.start()
        return process

    def run(self, out: Path, *options: str) -> float:
        started = time.perf_counter()
        process = self.start(out, *options)
        process.join(120)
        assert process.exitcode == 0, Path(self.log).read_text()[-3000:]
        return time.perf_counter() - started

    def kill_after(self, out: Path, seconds: float, *options: str) -> None:
        process = self.start(out, *options)
        process.join(seconds)
        if process.is_alive():
            process.kill()
            process.join()


def check_new_run(trainings: Trainings, out: Path, reference: dict) -> None:
    """A new run after a kill: whole (one run id in every file) and resumable to the very
    weights of an uninterrupted run."""
    folder = RunFolder(out)
    assert len(run_ids(out)) == 1
    folder.check_one_run()
    if folder.state() != "completed":
        assert folder.state() == "stopped"  # killed while running
        trainings.run(out, "--resume")
    assert folder.state() == "completed"
    assert len(run_ids(out)) == 1
    with folder.owned():  # a kill while the retired run was being removed leaves it to the next owner
        pass
    no_leftovers(out)
    weights = load_file(str(folder.weights_file))
    assert weights.keys() == reference.keys() and all((weights[k] == reference[k]).all() for k in weights)


def test_a_kill_at_any_moment_leaves_the_old_run_or_a_resumable_new_one(tmp_path):
    trainings = Trainings(tmp_path)
    rng = random.Random(9)
    replaced = tmp_path / "replaced"
    trainings.run(replaced)  # starts the server too
    duration = trainings.run(tmp_path / "timed")
    reference = load_file(str(RunFolder(replaced).weights_file))
    outcomes = []
    for kill in range(20):
        moment = rng.uniform(0, duration * 1.1)
        if kill % 2 == 0:  # replacing a finished run with --overwrite
            before = files(replaced)
            (old_id,) = run_ids(replaced)
            trainings.kill_after(replaced, moment, "--overwrite")
            if RunFolder(replaced).read_record().run_id == old_id:
                assert files(replaced) == before, f"kill {kill} at {moment:.2f}s changed the old run"
                outcomes.append("old")
            else:
                check_new_run(trainings, replaced, reference)
                outcomes.append("new")
        else:  # a new run into a new folder
            fresh = tmp_path / f"fresh{kill}"
            trainings.kill_after(fresh, moment)
            if fresh.exists():
                check_new_run(trainings, fresh, reference)
            outcomes.append("new" if fresh.exists() else "none")
    assert "old" in outcomes and "new" in outcomes, outcomes
