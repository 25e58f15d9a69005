"""Export reads a run only through the run package: one run per folder, typed records,
the recorded split and seed."""

from __future__ import annotations

import json

import numpy as np
import onnxruntime as ort
import pytest
import torch
from click.testing import CliRunner
from safetensors.torch import save_file

import spec_compiler
from spec_compiler.cli import main
from spec_compiler.errors import SpecError
from spec_compiler.export.data import legacy_validation_split, run_data
from spec_compiler.export.prepare import prepare
from spec_compiler.run import (
    DataInfo,
    InputInfo,
    Normalization,
    OutputInfo,
    Preprocess,
    RunFolder,
    RunRecord,
    validation_split,
)

SPEC = "model tiny\ninput vector 8\ndense 3 softmax\n"


@pytest.fixture
def tiny(tmp_path):
    path = tmp_path / "tiny.spec"
    path.write_text(SPEC)
    return spec_compiler.load(path), path


def record(run_id: str | None, data: DataInfo | None = None, seed: int | None = 0) -> RunRecord:
    return RunRecord(run_id=run_id, specc_version="0.1.0", model="tiny", status="completed",
                     input=InputInfo(kind="vector", shape=[8]), output=OutputInfo(shape=[3], final_activation="softmax"),
                     config={"seed": seed, "loss": {"kind": "sparse_categorical_crossentropy"}}, data=data or DataInfo())


def run_folder(path, model, weights_id="a1", record_id="a1", preprocess_id="a1", **options) -> RunFolder:
    folder = RunFolder(path)
    folder.path.mkdir(parents=True)
    state = model.build(seed=1).state_dict()
    if weights_id is None:  # written before run ids
        save_file({k: v.contiguous() for k, v in state.items()}, str(folder.weights_file))
    else:
        folder.save_weights(state, weights_id)
    folder.write_record(record(record_id, **options))
    folder.write_preprocess(Preprocess(run_id=preprocess_id, input_kind="vector", input_shape=[8],
                                       labels=["a", "b", "c"]))
    folder.write_spec(SPEC)
    return folder


def test_one_run_exports_with_its_id(tiny, tmp_path):
    model, _ = tiny
    folder = run_folder(tmp_path / "run", model)
    model.export(tmp_path / "m.onnx", weights=folder.path)
    meta = ort.InferenceSession(str(tmp_path / "m.onnx")).get_modelmeta().custom_metadata_map
    assert meta["specc.run_id"] == "a1" and json.loads(meta["specc.labels"]) == ["a", "b", "c"]


@pytest.mark.parametrize("ids", [{"preprocess_id": "b2"}, {"weights_id": "b2"}])
def test_a_folder_that_mixes_runs_is_refused(tiny, tmp_path, ids):
    model, path = tiny
    folder = run_folder(tmp_path / "run", model, **ids)
    out = tmp_path / "m.onnx"
    result = CliRunner().invoke(main, ["export", str(path), "--weights", str(folder.path), "-o", str(out)])
    assert result.exit_code == 1, result.output
    assert "mixes files of different runs" in result.output and "Traceback" not in result.output
    assert not out.exists()


def test_normalization_formats_nothing_writes_are_refused(tiny, tmp_path):
    model, _ = tiny
    folder = run_folder(tmp_path / "run", model)
    folder.write_preprocess(Preprocess(run_id="a1", input_kind="vector",
                                       normalize=Normalization(kind="standard", mean=[0.0] * 8, std=[1.0] * 8)))
    with pytest.raises(SpecError, match="8 values but no axis to lay them along"):
        prepare(model, folder.path)
    (folder.path / "preprocess.json").write_text(json.dumps(
        {"run_id": "a1", "input_kind": "vector", "normalize": {"kind": "scale", "factor": 0.5}}))
    with pytest.raises(SpecError, match="normalize.mean"):
        prepare(model, folder.path)


def test_normalization_along_an_axis_is_in_the_graph(tiny, tmp_path):
    model, _ = tiny
    folder = run_folder(tmp_path / "run", model)
    mean, std = np.linspace(-1, 1, 8), np.linspace(0.5, 2, 8)
    folder.write_preprocess(Preprocess(run_id="a1", input_kind="vector", normalize=Normalization(
        kind="standard", mean=mean.tolist(), std=std.tolist(), axis=0)))
    p = prepare(model, folder.path)
    x = np.random.default_rng(0).standard_normal((4, 8)).astype(np.float32)
    with torch.no_grad():
        expected = p.module(torch.from_numpy(((x - mean) / std).astype(np.float32))).numpy()
        assert np.allclose(p.wrapper(torch.from_numpy(x)).numpy(), expected, atol=1e-6)


def saved_data(tmp_path, n: int = 40):
    rng = np.random.default_rng(0)
    x, y = rng.standard_normal((n, 8)).astype(np.float32), rng.integers(0, 3, n)
    np.savez(tmp_path / "data.npz", x=x, y=y)
    return str(tmp_path / "data.npz"), x


@pytest.mark.parametrize("run_id, split", [("a1", validation_split), (None, legacy_validation_split)])
def test_the_recorded_split_is_rebuilt(tiny, tmp_path, run_id, split):
    """A run with an id was split by run.validation_split; one written before run ids by torch.randperm."""
    model, _ = tiny
    data, x = saved_data(tmp_path)
    info = DataInfo(train=data, validation_split=0.25)
    folder = run_folder(tmp_path / "run", model, record_id=run_id, preprocess_id=run_id, weights_id=run_id,
                        data=info, seed=7)
    reloaded = run_data(prepare(model, folder.path), model)
    train_idx, val_idx = split(len(x), 0.25, 7)
    assert np.array_equal(reloaded.x_val, x[val_idx]) and np.array_equal(reloaded.x_train, x[train_idx])
    report = model.export(tmp_path / "m.onnx", weights=folder.path)
    assert report.validation["samples"] == 10 and "0.25 validation split" in report.validation["source"]


def test_a_run_without_a_recorded_seed_is_checked_on_random_inputs(tiny, tmp_path):
    model, _ = tiny
    data, _ = saved_data(tmp_path)
    folder = run_folder(tmp_path / "run", model, data=DataInfo(train=data, validation_split=0.25), seed=None)
    report = model.export(tmp_path / "m.onnx", weights=folder.path)
    assert report.validation is None
    assert any("records no seed" in note for note in report.notes)
