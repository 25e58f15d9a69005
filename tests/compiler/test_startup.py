"""Start-up: what each entry point imports, and the parser tables' disk cache
(spec_compiler/parse_tables.py). Times themselves are measured by bench/startup.py;
these tests pin down the structure that keeps them low."""

from __future__ import annotations

import gc
import json
import os
import subprocess
import sys
import textwrap

import lark
import pytest
from conftest import ROOT

import spec_compiler
from spec_compiler import parse_tables, start_up
from spec_compiler.parser import grammar_text

OPTIONS = {"parser": "lalr", "propagate_positions": False, "maybe_placeholders": True}
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
    assert {"pydantic", "lark", "click"} <= loaded
    assert not loaded & {"numpy", "rich", "torch", "onnx", "onnxruntime", "PIL"}


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


# --- parser tables cache -------------------------------------------------------------

@pytest.fixture
def cache(tmp_path, monkeypatch):
    monkeypatch.setenv(parse_tables.CACHE_ENV, str(tmp_path / "cache"))
    return tmp_path / "cache"


def parses(parser: lark.Lark) -> bool:
    return parser.parse(SOURCE) == lark.Lark(grammar_text(), **OPTIONS).parse(SOURCE)


def test_built_tables_are_written_then_loaded_without_building(cache, monkeypatch):
    first = parse_tables.cached_lark(grammar_text(), **OPTIONS)
    (written,) = cache.iterdir()
    assert written == parse_tables.tables_path(grammar_text(), OPTIONS)
    assert parses(first)

    def no_building(*args, **kwargs):
        raise AssertionError("the cached tables should have been loaded")

    with monkeypatch.context() as patch:
        patch.setattr(lark.Lark, "__init__", no_building)
        loaded = parse_tables.cached_lark(grammar_text(), **OPTIONS)
    assert parses(loaded)


def test_a_damaged_cache_file_is_rebuilt(cache):
    path = parse_tables.tables_path(grammar_text(), OPTIONS)
    for damage in (b"", b"not marshal data", b"\xe9" * 100):
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(damage)
        assert parses(parse_tables.cached_lark(grammar_text(), **OPTIONS))
        assert path.read_bytes() != damage


def test_an_unwritable_cache_folder_only_costs_time(tmp_path, monkeypatch):
    blocker = tmp_path / "a_file"
    blocker.write_text("not a folder")
    monkeypatch.setenv(parse_tables.CACHE_ENV, str(blocker / "cache"))  # cannot be created, even by root
    assert parses(parse_tables.cached_lark(grammar_text(), **OPTIONS))
    assert blocker.read_text() == "not a folder"


def test_tables_that_are_not_plain_data_are_not_cached(cache, monkeypatch):
    """lark before 1.3 saves names as Token objects, which marshal refuses."""

    def refuse(value, *args):
        raise ValueError("unmarshallable object")

    with monkeypatch.context() as patch:
        patch.setattr(parse_tables.marshal, "dumps", refuse)
        assert parses(parse_tables.cached_lark(grammar_text(), **OPTIONS))
    assert not cache.exists() or list(cache.iterdir()) == []


def test_an_empty_cache_setting_turns_the_cache_off(tmp_path, monkeypatch):
    monkeypatch.setenv(parse_tables.CACHE_ENV, "")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    assert parse_tables.cache_dir() is None
    assert parses(parse_tables.cached_lark(grammar_text(), **OPTIONS))
    assert list(tmp_path.iterdir()) == []


def test_the_default_folder_follows_xdg(tmp_path, monkeypatch):
    monkeypatch.delenv(parse_tables.CACHE_ENV, raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    assert parse_tables.cache_dir() == tmp_path / "specc"


def test_the_key_changes_with_the_grammar_and_the_options():
    key = parse_tables.tables_key(grammar_text(), OPTIONS)
    assert parse_tables.tables_key(grammar_text() + "\n// changed\n", OPTIONS) != key
    assert parse_tables.tables_key(grammar_text(), {**OPTIONS, "maybe_placeholders": False}) != key
    assert parse_tables.tables_key(grammar_text(), dict(reversed(OPTIONS.items()))) == key


def test_specc_compile_fills_the_cache_and_uses_it(tmp_path):
    env = {**os.environ, parse_tables.CACHE_ENV: str(tmp_path)}
    command = [sys.executable, "-m", "spec_compiler.cli", "compile", "specs/lenet5.spec"]
    outputs = [subprocess.run(command, capture_output=True, text=True, cwd=ROOT, env=env, timeout=120)
               for _ in range(2)]
    assert [o.returncode for o in outputs] == [0, 0], outputs[0].stderr
    assert outputs[0].stdout == outputs[1].stdout == (ROOT / "tests/golden/summaries/lenet5.out").read_text()
    assert len(list(tmp_path.glob("parser-*.marshal"))) == 1


# --- the console script's start-up settings (spec_compiler/start_up.py) ------------------

SETTINGS_PROBE = textwrap.dedent("""
    import atexit, gc, json, os
    from spec_compiler.cli import run
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
