"""Experiments (spec_compiler/experiments/, training/tracking.py): `--set` overrides, search
values, TensorBoard event files, `specc tune` and `specc runs`, all with tiny budgets."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from click.testing import CliRunner

from spec_compiler.cli import main
from spec_compiler.run import RunFolder

BASE = """model digits_mlp
input vector 64
block hidden(width=32) {
  dense width relu
}
hidden
dropout 0.2
dense 10 softmax name=head
train {
  lr=0.003
  epochs=3
}
"""

SEARCH = BASE.replace("width=32", "width=choice(32, 64)").replace("dropout 0.2", "dropout range(0.1, 0.3)") \
    .replace("lr=0.003", "lr=log_range(1e-3, 1e-2)")


def run(*args: str):
    return CliRunner().invoke(main, [*args], catch_exceptions=False)


@pytest.fixture
def spec(tmp_path: Path) -> Path:
    path = tmp_path / "mlp.spec"
    path.write_text(BASE, encoding="utf-8")
    return path


@pytest.fixture
def search_spec(tmp_path: Path) -> Path:
    path = tmp_path / "search.spec"
    path.write_text(SEARCH, encoding="utf-8")
    return path


def summary(*args: str) -> dict:
    result = run("compile", *args, "--json")
    assert result.exit_code == 0, result.output
    return json.loads(result.output)


def test_overrides_change_what_they_name_and_nothing_else(spec, tmp_path):
    plain = summary(str(spec))
    changed = summary(str(spec), "--set", "hidden.width=48", "--set", "head.activation=sigmoid")
    before = {layer["name"]: layer for layer in plain["layers"]}
    after = {layer["name"]: layer for layer in changed["layers"]}
    differing = {name for name in before if before[name] != after[name]}
    assert differing <= {"hidden_1", "dense_1", "head", "dropout_1"}
    assert changed["total_params"] == 64 * 48 + 48 + 48 * 10 + 10
    assert plain["total_params"] == 64 * 32 + 32 + 32 * 10 + 10
    result = run("train", str(spec), "--set", "train.epochs=1", "--set", "train.seed=3", "--out", str(tmp_path / "r"))
    assert result.exit_code == 0, result.output
    record = RunFolder(tmp_path / "r").read_record()
    assert record.epochs_run == 1 and record.config["seed"] == 3 and record.config["lr"] == 0.003
    assert record.overrides == {"train.epochs": "1", "train.seed": "3"}
    kept = (tmp_path / "r" / "model.spec").read_text().splitlines()
    assert [a for a, b in zip(kept, BASE.splitlines()) if a != b] == ["train { seed=3;", "  epochs=1"]


def test_short_block_parameter_and_positional_fields(spec):
    assert summary(str(spec), "--set", "width=16")["total_params"] == 64 * 16 + 16 + 16 * 10 + 10
    assert summary(str(spec), "--set", "dense_1.units=8")["total_params"] == 64 * 8 + 8 + 8 * 10 + 10  # in the block body


def test_unknown_key_is_a_usage_error_and_a_bad_value_points_at_its_line(spec):
    result = run("compile", str(spec), "--set", "hiden.width=3")
    assert result.exit_code == 2 and "unknown key `hiden.width`" in result.output and "hidden.width" in result.output
    assert run("compile", str(spec), "--set", "novalue").exit_code == 2
    assert run("compile", str(spec), "--set", "width=1; dense 3").exit_code == 2
    bad = run("compile", str(spec), "--set", "hidden.width=-4")
    assert bad.exit_code == 1 and re.search(r"mlp\.spec:3:\d+: error", bad.output), bad.output


def test_compile_checks_the_space_and_train_refuses_it(search_spec, tmp_path):
    result = run("compile", str(search_spec))
    assert result.exit_code == 0, result.output
    assert "Search space: 3 value(s); 8 point(s) checked" in result.output
    assert "hidden.width" in result.output and "dropout_1.rate" in result.output and "train.lr" in result.output
    data = summary(str(search_spec))
    assert [v["name"] for v in data["search_space"]] == ["hidden.width", "dropout_1.rate", "train.lr"]
    refused = run("train", str(search_spec), "--out", str(tmp_path / "r"))
    assert refused.exit_code == 1 and "specc tune" in refused.output and "--set" in refused.output
    broken = search_spec.with_name("broken.spec")
    broken.write_text(SEARCH.replace("choice(32, 64)", "choice(32, 0)"), encoding="utf-8")
    failed = run("compile", str(broken))
    assert failed.exit_code == 1 and "with hidden.width=0" in failed.output


def test_event_files_hold_the_scalars(spec, tmp_path):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    assert run("train", str(spec), "--set", "train.epochs=2", "--out", str(tmp_path / "r")).exit_code == 0
    events = EventAccumulator(str(tmp_path / "r" / "tensorboard"))
    events.Reload()
    tags = set(events.Tags()["scalars"])
    assert {"epoch/loss", "epoch/val_loss", "epoch/val_accuracy", "epoch/lr", "step/loss", "step/lr"} <= tags
    assert [e.step for e in events.Scalars("epoch/val_loss")] == [1, 2]
    history = (tmp_path / "r" / "metrics.csv").read_text().splitlines()
    last_val_loss = float(history[-1].split(",")[history[0].split(",").index("val_loss")])
    assert events.Scalars("epoch/val_loss")[-1].value == pytest.approx(last_val_loss, rel=1e-4)


def test_search_finds_a_run_at_least_as_good_as_the_default(search_spec, tmp_path):
    default = run("train", str(search_spec), "--set", "hidden.width=32", "--set", "dropout_1.rate=0.2",
                  "--set", "train.lr=0.0031622776601683794", "--out", str(tmp_path / "default"), "--json")
    assert default.exit_code == 0, default.output
    rows = [line for line in (tmp_path / "default" / "metrics.csv").read_text().splitlines()]
    column = rows[0].split(",").index("val_loss")
    default_best = min(float(row.split(",")[column]) for row in rows[1:])
    result = run("tune", str(search_spec), "--trials", "6", "--out", str(tmp_path / "search"), "--json")
    assert result.exit_code == 0, result.output
    last = json.loads(result.output.strip().splitlines()[-1])
    assert last["trials_run"] == 6 and last["best_value"] <= default_best + 1e-6
    assert set(last["best_params"]) == {"hidden.width", "dropout_1.rate", "train.lr"}
    assert json.loads((tmp_path / "search" / "best.json").read_text()) == last
    assert RunFolder(last["best_run"]).state() == "completed"
    listed = json.loads(run("runs", str(tmp_path / "search"), "--json").output)
    assert len(listed) == 6 and sum(row["state"] == "pruned" for row in listed) == last["trials_pruned"]


def test_a_stopped_search_resumes_without_repeating_finished_trials(search_spec, tmp_path):
    import optuna

    out = tmp_path / "search"
    assert run("tune", str(search_spec), "--trials", "2", "--out", str(out), "--set", "train.epochs=1").exit_code == 0
    run_ids = {p.name: RunFolder(p).read_record().run_id for p in sorted(out.glob("trial_*"))}
    study = optuna.load_study(study_name="specc", storage=f"sqlite:///{out / 'study.db'}")
    stale = study.ask()  # a trial a killed search left running
    result = run("tune", str(search_spec), "--trials", "3", "--out", str(out), "--set", "train.epochs=1", "--json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.output.strip().splitlines()[-1])["trials_run"] == 3
    assert {p.name: RunFolder(p).read_record().run_id for p in sorted(out.glob("trial_*")) if p.name in run_ids} == run_ids
    states = {t.number: t.state for t in optuna.load_study(study_name="specc", storage=f"sqlite:///{out / 'study.db'}").trials}
    assert states[stale.number] == optuna.trial.TrialState.FAIL
    assert sorted(p.name for p in out.glob("trial_*")) == ["trial_000", "trial_001", f"trial_{stale.number + 1:03d}"]


def test_runs_lists_a_folder(spec, tmp_path):
    assert run("train", str(spec), "--set", "train.epochs=1", "--out", str(tmp_path / "runs" / "a")).exit_code == 0
    table = run("runs", str(tmp_path / "runs"))
    assert table.exit_code == 0 and "train.epochs=1" in table.output and "completed" in table.output
    assert "val_accuracy" in table.output


def test_mlflow_logs_to_a_local_database(spec, tmp_path, monkeypatch):
    mlflow = pytest.importorskip("mlflow")
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path / 'mlflow.db'}")
    result = run("train", str(spec), "--set", "train.epochs=2", "--log", "mlflow", "--out", str(tmp_path / "r"))
    assert result.exit_code == 0, result.output
    runs = mlflow.search_runs(experiment_names=["digits_mlp"])
    assert len(runs) == 1 and "metrics.val_loss" in runs.columns
