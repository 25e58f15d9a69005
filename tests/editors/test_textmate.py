"""The VS Code extension, checked with the engine VS Code runs (vscode-textmate under node).

- Its TextMate grammar (editors/vscode/test/tokenize.js): every non-blank character of every
  spec gets a scope, valid specs get no `invalid` scope, the built-in word lists follow the
  registry.
- Its client (src/extension.js), run against stand-ins for VS Code's API (test/client.js).
- The editor preview in docs/editors.md (editors/render_preview.py) still renders.

Needs node and `npm ci` in editors/vscode; without them these tests are skipped, unless
SPECC_REQUIRE_NODE=1 (set by .ci/run) turns the skip into a failure.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys

import pytest
from conftest import ROOT

from spec_compiler import REGISTRY

EXTENSION = ROOT / "editors" / "vscode"
GRAMMAR = EXTENSION / "syntaxes" / "spec.tmLanguage.json"
VALID_SPECS = sorted((ROOT / "specs").glob("*.spec"))
ERROR_SPECS = sorted((ROOT / "tests" / "golden" / "errors").glob("*.spec"))
DOC_EXAMPLES = re.findall(r"```spec\n(.*?)```", (ROOT / "docs" / "language.md").read_text(encoding="utf-8"), re.DOTALL)

# Every construct of the language once, with the scope each token must get.
SAMPLE = """\
# a comment
model demo; input sequence Tx16 name=x
block pair(c, k=3) {
  conv1d c k pad=same relu init=normal(0, 0.05) -> my_kind 'a\\'b' "q"
}
repeat 2 { dense 8 leaky_relu }
concat { branch { pair 4 } branch { lstm 4 return_sequences=true } }
dense 10 -> reshape [-1, ?x2] \\
  scale=1e-3
  -> softmax
train { optimizer=adam(lr=.5) epochs=+3 }
"""
EXPECTED_SCOPES = [
    (1, "#", "punctuation.definition.comment.spec"),
    (1, " a comment", "comment.line.number-sign.spec"),
    (2, "model", "keyword.other.model.spec"),
    (2, "demo", "entity.name.type.model.spec"),
    (2, ";", "punctuation.terminator.statement.spec"),
    (2, "input", "keyword.other.input.spec"),
    (2, "sequence", "support.type.input-kind.spec"),
    (2, "Tx16", "constant.numeric.size.spec"),
    (2, "name", "variable.parameter.option.spec"),
    (2, "=", "keyword.operator.assignment.spec"),
    (2, "x", "variable.other.word.spec"),
    (3, "block", "keyword.other.block.spec"),
    (3, "pair", "entity.name.function.block.spec"),
    (3, "c", "variable.parameter.block.spec"),
    (3, "k", "variable.parameter.block.spec"),
    (3, "3", "constant.numeric.spec"),
    (3, "{", "punctuation.section.block.begin.spec"),
    (4, "conv1d", "support.function.layer.spec"),
    (4, "c", "variable.other.word.spec"),
    (4, "relu", "support.constant.activation.spec"),
    (4, "normal", "support.function.call.spec"),
    (4, "(", "punctuation.section.parens.begin.spec"),
    (4, "0.05", "constant.numeric.spec"),
    (4, "->", "keyword.operator.arrow.spec"),
    (4, "my_kind", "entity.name.function.layer.spec"),
    (4, "\\'", "constant.character.escape.spec"),
    (4, "q", "string.quoted.double.spec"),
    (5, "}", "punctuation.section.block.end.spec"),
    (6, "repeat", "keyword.control.spec"),
    (6, "2", "constant.numeric.spec"),
    (6, "dense", "support.function.layer.spec"),
    (6, "leaky_relu", "support.constant.activation.spec"),
    (7, "concat", "support.function.layer.spec"),
    (7, "branch", "keyword.control.spec"),
    (7, "pair", "entity.name.function.layer.spec"),
    (7, "lstm", "support.function.layer.spec"),
    (7, "true", "constant.language.boolean.spec"),
    (8, "reshape", "support.function.layer.spec"),
    (8, "[", "punctuation.section.brackets.begin.spec"),
    (8, "-1", "constant.numeric.spec"),
    (8, ",", "punctuation.separator.comma.spec"),
    (8, "?x2", "constant.numeric.size.spec"),
    (8, "\\", "punctuation.separator.continuation.spec"),
    (9, "scale", "variable.parameter.option.spec"),
    (9, "1e-3", "constant.numeric.spec"),
    (10, "softmax", "support.function.layer.spec"),
    (11, "train", "keyword.control.spec"),
    (11, "optimizer", "variable.parameter.option.spec"),
    (11, "adam", "support.function.call.spec"),
    (11, ".5", "constant.numeric.spec"),
    (11, "+3", "constant.numeric.spec"),
]


@pytest.fixture(scope="module")
def node() -> str:
    """The node program, with the extension's npm packages installed beside it."""
    program = shutil.which("node")
    missing = ("node is not installed" if program is None else
               "the extension's npm packages are not installed: run (cd editors/vscode && npm ci)"
               if not (EXTENSION / "node_modules" / "vscode-textmate").is_dir() else None)
    if missing:
        if os.environ.get("SPECC_REQUIRE_NODE") == "1":
            pytest.fail(f"SPECC_REQUIRE_NODE=1 but {missing}")
        pytest.skip(missing)
    return program


def _run_node(node: str, *args: str):
    result = subprocess.run([node, *args], cwd=EXTENSION, capture_output=True, text=True, timeout=60, check=False)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


@pytest.fixture(scope="module")
def tokenize(node):
    """Returns tokens(paths) -> {path: [(line, start, end, text, scopes)]}, run through node."""
    return lambda paths: _run_node(node, "test/tokenize.js", *map(str, paths))


def _unscoped(tokens) -> list:
    """Tokens holding non-blank text with no scope beyond the file's own `source.spec`."""
    return [t for t in tokens if t[3].strip() and t[4] == ["source.spec"]]


def _invalid(tokens) -> list:
    return [t for t in tokens if any(scope.startswith("invalid") for scope in t[4])]


def test_every_spec_and_doc_example_is_fully_scoped(tokenize, tmp_path):
    examples = []
    for index, text in enumerate(DOC_EXAMPLES):
        examples.append(tmp_path / f"language_md_example_{index + 1}.spec")
        examples[-1].write_text(text, encoding="utf-8")
    assert len(VALID_SPECS) >= 10 and examples
    tokens = tokenize([*VALID_SPECS, *examples])
    assert len(tokens) == len(VALID_SPECS) + len(examples)
    for path, found in tokens.items():
        assert found, path
        assert not _unscoped(found), (path, _unscoped(found))
        assert not _invalid(found), (path, _invalid(found))


def test_specs_with_mistakes_still_get_a_scope_for_every_character(tokenize):
    assert ERROR_SPECS
    for path, found in tokenize(ERROR_SPECS).items():
        assert not _unscoped(found), (path, _unscoped(found))


def test_each_construct_gets_its_scope(tokenize, tmp_path):
    sample = tmp_path / "sample.spec"
    sample.write_text(SAMPLE, encoding="utf-8")
    tokens = tokenize([sample])[str(sample)]
    for line, text, scope in EXPECTED_SCOPES:
        matches = [t for t in tokens if t[0] == line and t[3] == text]
        assert matches, f"line {line}: no token {text!r} in {[t[3] for t in tokens if t[0] == line]}"
        assert any(scope in t[4] for t in matches), (line, text, [t[4] for t in matches])
    assert not _unscoped(tokens) and not _invalid(tokens)


def test_a_stray_character_is_marked_invalid(tokenize, tmp_path):
    sample = tmp_path / "stray.spec"
    sample.write_text("input vector 4\ndense 2 @ relu\n", encoding="utf-8")
    tokens = tokenize([sample])[str(sample)]
    assert [t[3] for t in _invalid(tokens)] == ["@"]


def _alternatives(pattern: str, group: str) -> set[str]:
    """The words of the `(?:a|b|c)` alternation that follows `group` in a grammar regex."""
    found = re.search(re.escape(group) + r"\(\?:([A-Za-z0-9_|]+)\)", pattern) or re.search(
        re.escape(group) + r"\(([A-Za-z0-9_|]+)\)", pattern)
    assert found, f"no word list after {group!r} in {pattern[:80]}..."
    return set(found.group(1).split("|"))


def test_built_in_word_lists_follow_the_registry():
    repository = json.loads(GRAMMAR.read_text(encoding="utf-8"))["repository"]
    # built-in kinds only: other tests may have registered plugin kinds in this process
    builtin = [kind for kind in REGISTRY.kinds() if kind.shape.__module__.startswith("spec_compiler.")]
    words = {word for kind in builtin for word in (kind.name, *kind.aliases)}
    activations = {word for kind in builtin if kind.is_activation for word in (kind.name, *kind.aliases)}
    in_grammar = _alternatives(repository["layer-word"]["match"], "[\\t ]*(?:")
    assert in_grammar == words, (
        f"run `python editors/gen_word_lists.py` to update {GRAMMAR.relative_to(ROOT)}: "
        f"add {sorted(words - in_grammar)}, remove {sorted(in_grammar - words)}")
    activation_rule = next(p["match"] for p in repository["value"]["patterns"]
                           if p.get("name") == "support.constant.activation.spec")
    in_grammar = _alternatives(activation_rule, "(?<![A-Za-z0-9_.])")
    assert in_grammar == activations, (
        f"run `python editors/gen_word_lists.py` to update {GRAMMAR.relative_to(ROOT)}: "
        f"add {sorted(activations - in_grammar)}, remove {sorted(in_grammar - activations)}")


def test_the_manifest_points_at_files_that_exist():
    manifest = json.loads((EXTENSION / "package.json").read_text(encoding="utf-8"))
    contributes = manifest["contributes"]
    (language,) = contributes["languages"]
    (grammar,) = contributes["grammars"]
    assert language["extensions"] == [".spec"] and grammar["language"] == language["id"]
    assert grammar["scopeName"] == json.loads(GRAMMAR.read_text(encoding="utf-8"))["scopeName"]
    assert (EXTENSION / grammar["path"]).resolve() == GRAMMAR
    configuration = json.loads((EXTENSION / language["configuration"]).read_text(encoding="utf-8"))
    assert configuration["comments"]["lineComment"] == "#"
    assert (EXTENSION / manifest["main"]).is_file()
    settings = contributes["configuration"]["properties"]
    assert settings["specc.serverPath"]["default"] == "specc"
    assert settings["specc.serverArgs"]["default"] == ["lsp"]


def test_the_editor_preview_renders_from_the_grammar_and_specc(tokenize, tmp_path):
    from PIL import Image

    output = tmp_path / "preview.png"
    result = subprocess.run([sys.executable, "editors/render_preview.py", "-o", str(output)], cwd=ROOT,
                            env={**os.environ, "PYTHONPATH": str(ROOT)}, capture_output=True, text=True,
                            timeout=120, check=False)
    assert result.returncode == 0, result.stderr
    rendered = Image.open(output)
    shipped = Image.open(ROOT / "docs" / "img" / "editor-preview.png")
    assert rendered.format == shipped.format == "PNG" and rendered.size == shipped.size


def test_the_client_starts_specc_lsp_as_configured(node):
    found = _run_node(node, "test/client.js", json.dumps({
        "specc.serverPath": "${workspaceFolder}/.venv/bin/specc",
        "specc.serverArgs": ["lsp", "--plugin", "${workspaceFolder}/kinds.py"]}))
    started = {"command": "/home/me/project/.venv/bin/specc", "args": ["lsp", "--plugin", "/home/me/project/kinds.py"],
               "transport": 0}
    # activation, the restart command, a change of specc.serverPath (not an unrelated setting)
    assert found["started"] == [started] * 3 and found["stopped"] == 3
    assert found["commands"] == ["specc.restartServer"] and found["errors"] == []
    assert {"scheme": "file", "language": "spec"} in found["selectors"]
    defaults = _run_node(node, "test/client.js", "{}", "fail")
    assert defaults["started"] == [{"command": "specc", "args": ["lsp"], "transport": 0}]
    (error,) = defaults["errors"]
    assert "could not start the language server `specc lsp`" in error and "specc.serverPath" in error
