"""Installs: the base package needs no torch, and a command that needs the `train` extra
says which install line brings it (spec_compiler/extras.py).

A missing torch is simulated in a fresh process with `sys.modules["torch"] = None`,
which makes `import torch` fail as it does where torch is not installed."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import textwrap
from importlib import metadata

import pytest
from conftest import ROOT

from spec_compiler.extras import EVALUATION, EXPORT, TORCH, TRAINING, MissingExtra, is_installed, require_extra

# Runs each command line of argv (JSON) through the CLI with some modules blocked, and
# prints one JSON line per command: its exit code, stdout and stderr.
RUN_BLOCKED = textwrap.dedent("""
    import json, sys
    for module in json.loads(sys.argv[1]):
        sys.modules[module] = None
    from click.testing import CliRunner
    from spec_compiler.cli import main
    for argv in json.loads(sys.argv[2]):
        result = CliRunner().invoke(main, argv)
        print(json.dumps({"code": result.exit_code, "out": result.stdout, "err": result.stderr}))
    print(json.dumps({"torch_imported": any(m.split(".")[0] == "torch" and sys.modules[m] is not None
                                            for m in sys.modules)}))
""")


def run_blocked(blocked: list[str], commands: list[list[str]]) -> list[dict]:
    result = subprocess.run([sys.executable, "-c", RUN_BLOCKED, json.dumps(blocked), json.dumps(commands)],
                            capture_output=True, text=True, cwd=ROOT, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    return [json.loads(line) for line in result.stdout.splitlines()]


def test_commands_that_need_torch_name_the_install_line(tmp_path):
    commands = [
        ["train", "specs/lenet5.spec", "--out", str(tmp_path / "run")],
        ["evaluate", "specs/lenet5.spec", "--weights", "specs"],
        ["export", "specs/lenet5.spec", "-o", str(tmp_path / "lenet5.onnx")],
        ["compile", "specs/lenet5.spec", "--emit", "torch"],
    ]
    *results, final = run_blocked(["torch"], commands)
    names = ["specc train", "specc evaluate", "specc export", "specc compile --emit torch"]
    for name, result in zip(names, results, strict=True):
        assert result["code"] == 2, result
        assert result["err"] == f"error: {name} needs PyTorch: pip install 'specc[train]'\n"
        assert result["out"] == ""
    assert not final["torch_imported"]
    assert not (tmp_path / "run").exists() and not (tmp_path / "lenet5.onnx").exists()


def test_base_commands_work_without_torch(tmp_path):
    picture = tmp_path / "lenet5.svg"
    commands = [
        ["compile", "specs/lenet5.spec"],
        ["compile", "specs/resnet18.spec", "--json"],
        ["fmt", "--check", "specs/lenet5.spec"],
        ["draw", "specs/lenet5.spec", "-o", str(picture)],
        ["draw", "specs/lenet5.spec", "--format", "mermaid"],
    ]
    *results, final = run_blocked(["torch"], commands)
    assert [r["code"] for r in results] == [0] * len(commands), results
    assert "Total params: 61,706" in results[0]["out"]
    assert json.loads(results[1]["out"])["total_params"] == 11_699_112
    assert picture.read_text(encoding="utf-8").startswith("<svg")
    assert not final["torch_imported"]


def test_a_missing_package_other_than_torch_is_named_by_its_project(tmp_path):
    if not is_installed("torch"):
        pytest.skip("torch is not installed: it would be the first missing package named")
    (train, export, _final) = run_blocked(
        ["sklearn", "onnx"], [["train", "specs/lenet5.spec", "--out", str(tmp_path / "run")],
                              ["export", "specs/lenet5.spec", "-o", str(tmp_path / "x.onnx")]])
    assert train["err"] == "error: specc train needs scikit-learn: pip install 'specc[train]'\n"
    assert export["err"] == "error: specc export needs onnx: pip install 'specc[train]'\n"
    assert train["code"] == export["code"] == 2


def test_model_verbs_that_need_torch_name_the_install_line():
    code = textwrap.dedent("""
        import sys
        sys.modules["torch"] = None
        import spec_compiler
        from spec_compiler.extras import MissingExtra
        model = spec_compiler.load("specs/lenet5.spec")
        print(model.summary()["total_params"])
        for verb, call in [("build", lambda: model.build()), ("train", lambda: model.train(epochs=1)),
                           ("evaluate", lambda: model.evaluate("specs")), ("export", lambda: model.export("x.onnx"))]:
            try:
                call()
            except MissingExtra as error:
                print(error)
    """)
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.splitlines() == ["61706"] + [
        f"Model.{verb}() needs PyTorch: pip install 'specc[train]'" for verb in ("build", "train", "evaluate", "export")]


def test_require_extra_passes_when_installed_and_names_the_first_missing_module():
    require_extra("train", "json", "re", needed_by="a test")
    with pytest.raises(MissingExtra, match=r"^a test needs no_such_module_x: pip install 'specc\[extra\]'$"):
        require_extra("extra", "json", "no_such_module_x", "no_such_module_y", needed_by="a test")


def test_is_installed_never_imports_and_never_raises(monkeypatch):
    assert is_installed("json")
    assert not is_installed("no_such_module_x")
    assert not is_installed("no_such_package_x.submodule")
    monkeypatch.setitem(sys.modules, "blocked_module_x", None)
    assert not is_installed("blocked_module_x")


# --- pyproject.toml: what the base install and the train extra hold ---------------------

def _requirements() -> tuple[list[str], dict[str, list[str]]]:
    tomllib = pytest.importorskip("tomllib")
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    return project["dependencies"], project["optional-dependencies"]


def _name(requirement: str) -> str:
    return re.split(r"[<>=!~\[; ]", requirement, maxsplit=1)[0].lower().replace("_", "-")


def test_the_base_install_holds_no_training_packages():
    base, extras = _requirements()
    names = {_name(r) for r in base}
    assert not names & {"torch", "onnx", "onnxscript", "onnx-ir", "onnxslim", "safetensors", "scikit-learn",
                        "matplotlib"}
    # What the base commands import: the compiler, the runtime, pictures and the language server.
    assert {"pydantic", "click", "numpy", "onnxruntime", "pillow", "pygls", "lsprotocol"} <= names
    assert "lark" not in names  # the parser is generated_parser.py: lark only writes it (the test extra)
    assert {"train", "lsp", "test", "bench"} <= set(extras)
    assert "torch" in _expanded(extras, "train") and "torch" in _expanded(extras, "bench")
    assert "torch" not in _expanded(extras, "test")  # the README's test line names `train` itself


def _expanded(extras: dict[str, list[str]], extra: str) -> set[str]:
    """The project names an extra brings, through its `specc[other]` references."""
    names = set()
    for requirement in extras[extra]:
        if _name(requirement) == "specc":
            for inner in re.search(r"\[(.*)\]", requirement).group(1).split(","):
                names |= _expanded(extras, inner.strip())
        else:
            names.add(_name(requirement))
    return names


def test_the_train_extra_brings_every_module_the_checks_ask_for():
    """Each module named in extras.py's tuples comes from a distribution of the `train`
    extra (checked where the module is installed, so in the full environment)."""
    _, extras = _requirements()
    train = {_name(r) for r in extras["train"]}
    providers = metadata.packages_distributions()
    checked = 0
    for module in {*TORCH, *TRAINING, *EVALUATION, *EXPORT}:
        distributions = {d.lower().replace("_", "-") for d in providers.get(module, [])}
        if distributions:
            assert distributions & train, (module, distributions)
            checked += 1
    if not checked:
        pytest.skip("none of the train extra's packages is installed here")
