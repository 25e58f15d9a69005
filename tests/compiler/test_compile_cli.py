"""`specc compile`: the table, the JSON object scripts rely on, and no torch import."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

from click.testing import CliRunner
from conftest import ROOT

import spec_compiler
from spec_compiler.cli import main


def _cli(*args: str):
    cwd = os.getcwd()
    os.chdir(ROOT)
    try:
        return CliRunner().invoke(main, list(args), catch_exceptions=False)
    finally:
        os.chdir(cwd)


def test_compile_prints_the_table():
    result = _cli("compile", "specs/lenet5.spec")
    assert result.exit_code == 0
    assert result.output == (ROOT / "tests/golden/summaries/lenet5.out").read_text(encoding="utf-8")
    lines = result.output.splitlines()
    assert lines[0] == 'Model: "lenet5"'
    assert lines[2].split() == ["Layer", "(name)", "Kind", "Output", "shape", "Params"]
    assert "Total params: 61,706 (241.04 KiB)" in lines
    assert "Trainable params: 61,706" in lines and "Non-trainable params: 0" in lines
    assert "FLOPs (multiply-adds) per sample: 416,520 (416.52 K)" in lines


def test_table_columns_line_up_including_the_input_row():
    output = _cli("compile", "specs/resnet18.spec").output.splitlines()
    header = output[2]
    rows = [line for line in output[4:] if line and not line.startswith(("=", "-", "Total", "Trainable", "Non",
                                                                          "FLOPs", "Activation"))]
    params_end = len(header)  # the Params column is right-aligned to the header's end
    kind_start = header.index("Kind")
    shape_start = header.index("Output shape")
    for row in rows:
        if row.strip().startswith("["):
            continue  # [body] / [shortcut] labels
        assert len(row) == params_end, row
        assert row[kind_start - 1] == " " and row[kind_start] != " ", row
        assert row[shape_start] == "(", row


def test_depth_limits_nesting():
    full = _cli("compile", "specs/resnet18.spec").output
    top = _cli("compile", "specs/resnet18.spec", "--depth", "0").output
    assert "residual_1" in full and "residual_1" not in top
    assert "Total params: 11,699,112" in top


def test_json_keys_and_values():
    result = _cli("compile", "specs/lenet5.spec", "--json")
    assert result.exit_code == 0
    data = json.loads(result.output)
    for key in ("model", "input_shape", "total_params", "trainable_params", "non_trainable_params", "flops", "layers"):
        assert key in data, key
    assert data["model"] == "lenet5"
    assert data["input_shape"] == [None, 1, 32, 32]
    assert (data["total_params"], data["trainable_params"], data["non_trainable_params"]) == (61_706, 61_706, 0)
    assert data["flops"] == 416_520
    for layer in data["layers"]:
        for key in ("name", "kind", "output_shape", "params", "trainable"):
            assert key in layer, (layer, key)
        assert layer["output_shape"][0] is None  # the batch
    last = data["layers"][-1]
    assert (last["name"], last["kind"], last["output_shape"], last["params"]) == ("dense_3", "dense", [None, 10], 850)
    assert data["output_shape"] == last["output_shape"]
    # the Python API returns the same object
    assert spec_compiler.load(ROOT / "specs/lenet5.spec").summary() == {**data, "file": str(ROOT / "specs/lenet5.spec")}


def test_json_batchnorm_split_and_nested_layers():
    data = json.loads(_cli("compile", "specs/resnet18.spec", "--json").output)
    assert (data["trainable_params"], data["non_trainable_params"]) == (11_689_512, 9_600)
    bn = next(layer for layer in data["layers"] if layer["kind"] == "batchnorm")
    assert (bn["params"], bn["trainable"]) == (256, 128)
    block = next(layer for layer in data["layers"] if layer["name"] == "down_1")
    assert block["children"][0][0]["kind"] == "residual"
    assert data["layers"][-1]["output_shape"] == [None, 1000]


def test_json_dynamic_length_is_null(tmp_path):
    spec = tmp_path / "dyn.spec"
    spec.write_text("input sequence ?x16\ndense 8 relu\nglobal_maxpool\ndense 1 sigmoid\n")
    data = json.loads(_cli("compile", str(spec), "--json").output)
    assert data["model"] == "dyn"
    assert data["input_shape"] == [None, None, 16]
    assert data["layers"][0]["output_shape"] == [None, None, 8]
    assert data["layers"][-1]["output_shape"] == [None, 1]
    assert data["total_params"] == 16 * 8 + 8 + 8 + 1


def test_output_file(tmp_path):
    target = tmp_path / "summary.json"
    result = _cli("compile", "specs/vgg16.spec", "--json", "-o", str(target))
    assert result.exit_code == 0
    assert json.loads(target.read_text())["total_params"] == 138_357_544


def test_compile_as_a_process_prints_the_table():
    script = Path(sys.executable).with_name("specc")
    command = [str(script)] if script.exists() else [sys.executable, "-m", "spec_compiler.cli"]
    result = subprocess.run([*command, "compile", "specs/lenet5.spec", "--json"], capture_output=True, text=True,
                            cwd=ROOT, timeout=60)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["total_params"] == 61_706


def test_compile_does_not_import_torch_or_onnxruntime():
    """Checking a spec is instant: every spec in specs/ compiles (table and JSON) without
    torch, onnx or onnxruntime ever being imported."""
    code = textwrap.dedent("""
        import sys
        from pathlib import Path
        from spec_compiler.cli import main
        for spec in sorted(Path("specs").glob("*.spec")):
            for extra in ([], ["--json"]):
                try:
                    main(["compile", str(spec), *extra])
                except SystemExit as exit:
                    assert exit.code in (0, None), (spec, exit.code)
        heavy = sorted(m for m in sys.modules if m.split(".")[0] in ("torch", "onnx", "onnxruntime", "onnxscript"))
        print("HEAVY", heavy, file=sys.stderr)
        sys.exit(3 if heavy else 0)
    """)
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert "HEAVY []" in result.stderr, result.stderr[-3000:]
    assert result.returncode == 0
