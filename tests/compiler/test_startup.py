"""Start-up: what each entry point imports, and the `specc` program's start-up and exit
settings (spec_compiler/start_up.py). Times themselves are measured by bench/startup.py;
these tests pin down the structure that keeps them low."""

from __future__ import annotations

import gc
import json
import os
import subprocess
import sys
import textwrap

import pytest
from conftest import ROOT

import spec_compiler
from spec_compiler import start_up

SOURCE = "model tiny\ninput vector 4\ndense 3 relu -> dense 2 softmax\n"


def top_level_modules_after(code: str, env: dict | None = None) -> set[str]:
    """The top-level packages in sys.modules after running `code` in a fresh interpreter."""
    probe = code + "\nimport json, sys\nprint(json.dumps(sorted({m.split('.')[0] for m in sys.modules})))"
    result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, cwd=ROOT, timeout=120,
                            env={**os.environ, **(env or {})})
    assert result.returncode == 0, result.stderr[-3000:]
    return set(json.loads(result.stdout.splitlines()[-1]))


def spec_compiler_modules_after(code: str) -> set[str]:
    probe = code + "\nimport json, sys\nprint(json.dumps(sorted(m for m in sys.modules if m.startswith('spec_compiler'))))"
    result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert result.returncode == 0, result.stderr[-3000:]
    return set(json.loads(result.stdout.splitlines()[-1]))


def test_import_spec_compiler_loads_no_dependency():
    loaded = top_level_modules_after("import spec_compiler")
    assert not loaded & {"pydantic", "lark", "click", "numpy", "rich", "torch", "onnxruntime"}


def test_the_public_names_load_on_first_use():
    assert sorted(spec_compiler.__all__) == sorted([*spec_compiler.LAZY_NAMES, "__version__"])
    assert set(spec_compiler.__all__) <= set(dir(spec_compiler))
    for name in spec_compiler.LAZY_NAMES:
        assert getattr(spec_compiler, name) is not None
    assert spec_compiler.load is spec_compiler.model.load
    with pytest.raises(AttributeError, match="no attribute 'nothing_here'"):
        spec_compiler.nothing_here  # noqa: B018


def test_compile_loads_no_numpy_rich_or_torch():
    code = textwrap.dedent("""
        from spec_compiler.cli import main
        try:
            main(["compile", "specs/lenet5.spec"])
        except SystemExit as exit:
            assert exit.code in (0, None)
    """)
    loaded = top_level_modules_after(code)
    assert {"pydantic", "click"} <= loaded
    # lark's grammar compiler neither: the parser is generated_parser.py
    assert not loaded & {"lark", "numpy", "rich", "torch", "onnx", "onnxruntime", "PIL"}


def test_the_training_options_load_only_for_a_spec_with_a_train_section(tmp_path):
    trained = tmp_path / "trained.spec"
    trained.write_text(SOURCE + "train { epochs=3 }\n")
    probe = "import spec_compiler\nmodel = spec_compiler.load({!r})\n"
    untrained = spec_compiler_modules_after(probe.format("specs/lenet5.spec"))
    assert "spec_compiler.train_config" not in untrained
    assert not {m for m in untrained if m.startswith("spec_compiler.training")}
    assert "spec_compiler.train_config" in spec_compiler_modules_after(probe.format(str(trained)))
    assert spec_compiler.load(ROOT / "specs/lenet5.spec").ir.train.epochs is None  # the defaults, on first use


def test_the_console_script_exits_as_main_does(tmp_path):
    """`specc` is cli.run: main's exit codes and output, then gc.freeze() for a quick exit."""
    bad = tmp_path / "bad.spec"
    bad.write_text("input vector 4\ndense 0\n")
    for args, code in ((["compile", "specs/lenet5.spec"], 0), (["compile", str(bad)], 1), (["compile"], 2)):
        result = subprocess.run([sys.executable, "-c", "from spec_compiler.cli import run; run()", *args],
                                capture_output=True, text=True, cwd=ROOT, timeout=120)
        assert result.returncode == code, (args, result.stderr)
    assert "Total params: 61,706" in subprocess.run(
        [sys.executable, "-c", "from spec_compiler.cli import run; run()", "compile", "specs/lenet5.spec"],
        capture_output=True, text=True, cwd=ROOT, timeout=120).stdout


def test_commands_that_read_no_spec_load_no_compiler():
    """`specc --help`, `specc predict` and the runtime never load the layer catalogue."""
    for code in ("from spec_compiler.cli import main\ntry:\n    main(['--help'])\nexcept SystemExit:\n    pass",
                 "from spec_compiler import runtime"):
        loaded = spec_compiler_modules_after(code)
        assert not loaded & {"spec_compiler.layers", "spec_compiler.parser", "spec_compiler.model",
                             "spec_compiler.training.result"}, (code, loaded)


# --- the console script's start-up settings (spec_compiler/start_up.py) ------------------

SETTINGS_PROBE = textwrap.dedent("""
    import atexit, gc, json, os
    from spec_compiler import start_up
    from spec_compiler.cli import run
    start_up.begin_start_up()  # as run() does first; then this handler runs before the process ends
    atexit.register(lambda: print(json.dumps([os.environ.get("PYDANTIC_DISABLE_PLUGINS"), gc.get_threshold()[0]])))
    run()
""")


def console_script_settings(args: list[str], env: dict[str, str]) -> list:
    """[PYDANTIC_DISABLE_PLUGINS, the young generation's gc threshold] as `specc ARGS` ends."""
    result = subprocess.run([sys.executable, "-c", SETTINGS_PROBE, *args], capture_output=True, text=True, cwd=ROOT,
                            env={k: v for k, v in {**os.environ, **env}.items() if v is not None}, timeout=120)
    assert result.returncode == 0, result.stderr[-3000:]
    return json.loads(result.stdout.splitlines()[-1])


def test_the_console_script_skips_pydantic_plugins_unless_told_and_collects_little_while_short():
    compile_lenet = ["compile", "specs/lenet5.spec"]
    assert console_script_settings(compile_lenet, {"PYDANTIC_DISABLE_PLUGINS": None}) == [
        "__all__", start_up.START_UP_GC_THRESHOLD]
    assert console_script_settings(compile_lenet, {"PYDANTIC_DISABLE_PLUGINS": "some_plugin"})[0] == "some_plugin"
    # A long command has the usual thresholds back before it runs (`--help` ends it at once).
    assert console_script_settings(["train", "--help"], {})[1] < start_up.START_UP_GC_THRESHOLD


def test_few_collections_during_start_up_and_the_usual_ones_for_long_commands():
    usual = gc.get_threshold()
    try:
        start_up.command_starts("train")  # without begin_start_up (a library user): nothing changes
        assert gc.get_threshold() == usual
        start_up.begin_start_up()
        assert gc.get_threshold() == (start_up.START_UP_GC_THRESHOLD, *usual[1:])
        start_up.command_starts("compile")
        assert gc.get_threshold()[0] == start_up.START_UP_GC_THRESHOLD
        start_up.command_starts("train")
        assert gc.get_threshold() == usual
    finally:
        start_up.command_starts(None)
        gc.set_threshold(*usual)


# --- a short command ends at once (start_up.end_at_once) ------------------------------------

EXIT_PROBE = textwrap.dedent("""
    import sys
    from spec_compiler.cli import run
    left_open = open(sys.argv.pop(1), "w")  # never closed: the teardown would flush it
    left_open.write("flushed by the teardown")
    run()
""")


def test_a_short_command_runs_every_exit_handler_flushes_and_skips_the_teardown(tmp_path):
    marker = tmp_path / "handler_ran"
    plugin = tmp_path / "exit_plugin.py"
    plugin.write_text(f"import atexit\natexit.register(lambda: open({str(marker)!r}, 'w').write('ran'))\n")
    bad = tmp_path / "bad.spec"
    bad.write_text("input vector 4\ndense 0\n")
    golden = (ROOT / "tests/golden/summaries/lenet5.out").read_text()
    for args, status in ((["compile", "specs/lenet5.spec"], 0), (["compile", str(bad)], 1)):
        marker.unlink(missing_ok=True)
        result = subprocess.run([sys.executable, "-c", EXIT_PROBE, str(tmp_path / "open"), *args,
                                 "--plugin", str(plugin)], capture_output=True, text=True, cwd=ROOT, timeout=120)
        assert result.returncode == status, result.stderr
        assert marker.read_text() == "ran"  # the plugin's exit handler ran
        assert (tmp_path / "open").read_text() == ""  # no teardown
        if status == 0:
            assert result.stdout == golden  # all of it, though the process ended at once
        else:
            assert "dense 0" in result.stderr


def test_a_long_command_exits_as_python_does(tmp_path):
    result = subprocess.run([sys.executable, "-c", EXIT_PROBE, str(tmp_path / "open"), "train", "--help"],
                            capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert result.returncode == 0 and "Usage:" in result.stdout
    assert (tmp_path / "open").read_text() == "flushed by the teardown"


def test_a_closed_output_pipe_ends_as_click_ends_it(tmp_path):
    """`specc compile ... | head -1`: the pipe closes early. click ends with status 1 and
    silences the output's later flushes, as without the quick exit."""
    reader, writer = os.pipe()
    os.close(reader)
    try:
        result = subprocess.run([sys.executable, "-c", EXIT_PROBE, str(tmp_path / "open"), "compile",
                                 "specs/lenet5.spec"], stdout=writer,
                                stderr=subprocess.PIPE, text=True, cwd=ROOT, timeout=120)
    finally:
        os.close(writer)
    assert result.returncode == 1
    assert result.stderr == ""


# --- the weight options' models are created on first use (options.Models) ------------------

def test_weight_option_models_are_created_only_when_a_spec_names_one(tmp_path):
    named = tmp_path / "named.spec"
    named.write_text("input vector 4\ndense 3 init=normal(0, 0.1) regularizer=l2(1e-4)\n")
    probe = textwrap.dedent("""
        import json, sys
        import spec_compiler
        from spec_compiler import options
        spec_compiler.load(sys.argv[1])
        print(json.dumps([sorted(table.created) for table in
                          (options.INITIALIZERS, options.REGULARIZERS, options.CONSTRAINTS)]))
    """)
    created = [json.loads(subprocess.run([sys.executable, "-c", probe, spec], capture_output=True, text=True,
                                         cwd=ROOT, timeout=120, check=True).stdout.splitlines()[-1])
               for spec in ("specs/lenet5.spec", str(named))]
    assert created == [[[], [], []], [["normal"], ["l2"], []]]


def test_a_named_model_is_kept_and_written_out_whole():
    """A choice field holds the model its word names (not the base of all of them): its own
    fields are validated, kept, and written out, and read back equal."""
    from spec_compiler.options import INITIALIZERS, WeightOptions

    weights = WeightOptions.model_validate({"init": {"kind": "normal", "args": [0.5, 0.1]}, "constraint": "max_norm"})
    assert type(weights.init) is INITIALIZERS["normal"] and (weights.init.mean, weights.init.std) == (0.5, 0.1)
    dumped = weights.model_dump(mode="json")
    assert dumped["init"] == {"kind": "normal", "mean": 0.5, "std": 0.1}
    assert dumped["constraint"] == {"kind": "max_norm", "max_value": 2.0, "axis": None}
    assert WeightOptions.model_validate(dumped) == weights
