"""A graph spec trains through the chains' fit loop (fit.py: Trainer): checkpoints each epoch
and --resume to the same weights, early stopping and the best checkpoint on any per-output
key, schedules, clipping, --max-steps and --steps-per-epoch, metrics.csv, and `specc
evaluate` with each output's loss and metric."""

from __future__ import annotations

import csv
import importlib.util
import json
from pathlib import Path

import numpy as np
import pytest
import torch
from click.testing import CliRunner
from safetensors.torch import load_file

import spec_compiler
from spec_compiler.cli import main
from spec_compiler.run import RunFolder
from spec_compiler.training import Callback, TrainingInterrupted

ROOT = Path(__file__).resolve().parents[2]
TWO_HEAD = ROOT / "specs" / "two_head.spec"
SIAMESE = ROOT / "specs" / "siamese.spec"


@pytest.fixture(scope="module")
def digits(tmp_path_factory) -> str:
    """300 of the bundled digits, with the digit and its parity as the two heads' targets."""
    from sklearn.datasets import load_digits

    bunch = load_digits()
    images = (bunch.images[:300] / 16.0).astype(np.float32)[:, None]
    labels = bunch.target[:300].astype(np.int64)
    path = tmp_path_factory.mktemp("data") / "digits.npz"
    np.savez(path, x=images, y_digit=labels, y_parity=(labels % 2).astype(np.float32))
    return str(path)


def weights(run_dir) -> dict[str, torch.Tensor]:
    return load_file(str(Path(run_dir) / "weights.safetensors"))


def same(a: dict, b: dict) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def logged(history: list[dict]) -> list[dict]:
    return [{k: v for k, v in row.items() if k != "time_s"} for row in history]


class StopAfter(Callback):
    def __init__(self, epoch, step):
        self.at = (epoch, step)

    def on_batch_end(self, trainer, epoch, step):
        if (epoch, step) == self.at:
            trainer.request_stop()


def test_a_graph_resumes_to_the_weights_of_an_uninterrupted_run(digits, tmp_path):
    model = spec_compiler.load(TWO_HEAD)
    kw = dict(data=digits, batch=16, seed=5, schedule="step(1, 0.5)", clip_norm=1.0, optimizer="sgd(0.1, momentum=0.9)",
              progress=False)
    straight = model.train(out=str(tmp_path / "straight"), epochs=4, **kw)
    model.train(out=str(tmp_path / "two_then_four"), epochs=2, **kw)
    resumed = model.train(out=str(tmp_path / "two_then_four"), epochs=4, resume=True, **kw)
    assert same(weights(straight.run_dir), weights(resumed.run_dir))
    assert logged(resumed.history) == logged(straight.history)
    assert [row["lr"] for row in straight.history] == [0.1, 0.05, 0.025, 0.0125]  # the schedule ran
    # interrupted in the middle of epoch 2 (as Ctrl-C does), then resumed
    with pytest.raises(TrainingInterrupted) as stop:
        model.train(out=str(tmp_path / "mid"), epochs=4, callbacks=[StopAfter(2, 3)], **kw)
    assert stop.value.saved and RunFolder(tmp_path / "mid").read_record().status == "interrupted"
    resumed = model.train(out=str(tmp_path / "mid"), epochs=4, resume=True, **kw)
    assert same(weights(straight.run_dir), weights(resumed.run_dir))
    assert logged(resumed.history) == logged(straight.history)


def test_the_checkpoint_holds_the_trained_weights(digits, tmp_path):
    model = spec_compiler.load(TWO_HEAD)
    result = model.train(data=digits, epochs=2, seed=1, out=str(tmp_path / "run"), progress=False)
    state = torch.load(tmp_path / "run" / "checkpoint.pt", weights_only=True)
    assert state["epoch"] == 2 and [row["epoch"] for row in state["history"]] == [1, 2]
    assert same(state["model"], weights(result.run_dir))
    assert not same(state["model"], model.build(seed=1).state_dict())  # not the starting weights
    with open(tmp_path / "run" / "metrics.csv", newline="") as file:  # the always-on logger ran
        rows = list(csv.DictReader(file))
    assert len(rows) == 2 and {"digit_loss", "val_parity_accuracy"} <= set(rows[0])


def test_early_stopping_and_the_best_weights_follow_an_output_s_metric(digits, tmp_path):
    model = spec_compiler.load(TWO_HEAD)
    # no later epoch beats the first by 0.5: training stops after the second, keeping the first
    result = model.train(data=digits, epochs=6, seed=2, out=str(tmp_path / "run"), progress=False, lr=0.003,
                         early_stopping={"kind": "early_stopping", "patience": 1, "min_delta": 0.5,
                                         "monitor": "val_digit_accuracy"})
    assert result.stopped_early and result.epochs_run == 2 and result.best_epoch == 1
    assert result.metrics["val_digit_accuracy"] == result.history[0]["val_digit_accuracy"]
    assert result.history[1]["val_digit_accuracy"] > result.history[0]["val_digit_accuracy"]  # it learnt, not enough
    record = RunFolder(tmp_path / "run").read_record()
    assert record.stopped_early and record.best_epoch == 1
    with pytest.raises(spec_compiler.SpecError, match="monitors `val_colour_accuracy`, which is not logged"):
        model.train(data=digits, epochs=2, out=str(tmp_path / "bad"), progress=False,
                    early_stopping={"kind": "early_stopping", "patience": 1, "monitor": "val_colour_accuracy"})


def test_specc_evaluate_gives_each_output_s_loss_and_metric(digits, tmp_path):
    model = spec_compiler.load(TWO_HEAD)
    result = model.train(data=digits, epochs=2, out=str(tmp_path / "run"), progress=False)
    runner = CliRunner()
    evaluated = runner.invoke(main, ["evaluate", str(TWO_HEAD), "--weights", str(tmp_path / "run"), "--json"])
    assert evaluated.exit_code == 0, evaluated.output
    scores = json.loads(evaluated.output.strip().splitlines()[-1])
    assert scores["samples"] == 60  # the run's validation fifth of 300
    for key in ("loss", "digit_loss", "digit_accuracy", "parity_loss", "parity_accuracy"):
        assert scores[key] == pytest.approx(result.metrics[f"val_{key}"], rel=1e-6), key
    whole = model.evaluate(tmp_path / "run", data=digits)
    assert whole["samples"] == 300 and 0.0 <= whole["digit_accuracy"] <= 1.0


def test_a_siamese_graph_takes_steps_per_epoch_and_max_steps(tmp_path):
    rng = np.random.default_rng(0)
    left, right = (rng.random((40, 1, 28, 28), dtype=np.float32) for _ in range(2))
    same_pair = rng.integers(0, 2, 40)
    right[same_pair == 1] = left[same_pair == 1]
    np.savez(tmp_path / "pairs.npz", left=left, right=right, y=same_pair.astype(np.float32))
    model = spec_compiler.load(SIAMESE)
    result = model.train(data=str(tmp_path / "pairs.npz"), batch=8, steps_per_epoch=2, max_steps=5,
                         out=str(tmp_path / "run"), progress=False)
    assert [row["epoch"] for row in result.history] == [1, 2, 3]  # 2 + 2 + 1 steps
    assert {"similarity_loss", "similarity_accuracy", "val_similarity_loss"} <= set(result.metrics)
    assert torch.load(tmp_path / "run" / "checkpoint.pt", weights_only=True)["step"] == 1


def test_a_graph_compiles_and_starts_from_another_run_s_weights(digits, tmp_path):
    model = spec_compiler.load(TWO_HEAD)
    eager = model.train(data=digits, epochs=1, seed=4, out=str(tmp_path / "eager"), progress=False)
    compiled = model.train(data=digits, epochs=1, seed=4, out=str(tmp_path / "compiled"), progress=False,
                           compile="aot_eager")
    assert RunFolder(tmp_path / "compiled").read_record().compile_s is not None
    assert compiled.metrics["loss"] == pytest.approx(eager.metrics["loss"], rel=1e-4)
    model.train(data=digits, epochs=1, seed=9, out=str(tmp_path / "tuned"), progress=False,
                init_from=str(tmp_path / "eager"), lr=1e-9)
    # a learning rate of 1e-9 leaves the weights it started from (seed 9 would build others)
    start, tuned = weights(tmp_path / "eager"), weights(tmp_path / "tuned")
    assert start.keys() == tuned.keys() and all(torch.allclose(start[k], tuned[k], atol=1e-6) for k in start)


def test_specc_train_runs_the_tracking_callbacks_on_a_graph(digits, tmp_path):
    out = tmp_path / "run"
    trained = CliRunner().invoke(main, ["train", str(TWO_HEAD), "--data", digits, "--set", "train.epochs=1",
                                        "--out", str(out)])
    assert trained.exit_code == 0, trained.output
    assert RunFolder(out).read_record().overrides == {"train.epochs": "1"}  # the run's labels
    assert (out / "tensorboard").is_dir() == (importlib.util.find_spec("tensorboard") is not None)
