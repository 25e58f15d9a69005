"""`specc lsp` driven as a subprocess over stdio, the way an editor drives it."""

from __future__ import annotations

from pathlib import Path

import pytest
from lsp_client import LspClient

from spec_compiler import compile_source
from spec_compiler.errors import SpecError
from spec_compiler.formatter import format_source

ROOT = Path(__file__).resolve().parents[2]

NO_FLATTEN = """model lenet5
input image 1x32x32
conv 6x5x5 relu -> avgpool 2
conv 16x5x5 relu -> avgpool 2
dense 120 relu -> dense 84 relu -> dense 10 softmax
"""
LENET = ROOT / "specs" / "lenet5.spec"
RESNET = ROOT / "specs" / "resnet18.spec"


@pytest.fixture(scope="module")
def lsp():
    client = LspClient()
    capabilities = client.start()
    assert capabilities["inlayHintProvider"] and capabilities["codeActionProvider"]
    yield client
    client.close()


def uri_of(name: str) -> str:
    return (ROOT / "tests" / "lsp" / name).as_uri()


def at(line: int, character: int) -> dict:
    return {"line": line, "character": character}


def span(line: int, start: int, end: int) -> dict:
    return {"start": at(line, start), "end": at(line, end)}


def apply(text: str, edits: list[dict]) -> str:
    """Apply LSP text edits (ASCII text: a character is an offset within its line)."""
    starts = [0]
    for line in text.split("\n"):
        starts.append(starts[-1] + len(line) + 1)

    def offset(position):
        return starts[position["line"]] + position["character"]

    for edit in sorted(edits, key=lambda e: offset(e["range"]["start"]), reverse=True):
        text = text[: offset(edit["range"]["start"])] + edit["newText"] + text[offset(edit["range"]["end"]):]
    return text


def cli_diagnostics(text: str):
    with pytest.raises(SpecError) as caught:
        compile_source(text, "x.spec")
    return caught.value.diagnostics


def test_diagnostics_match_the_cli_and_clear_after_a_fix(lsp):
    uri = uri_of("no_flatten.spec")
    published = lsp.open(uri, NO_FLATTEN)
    (expected,) = cli_diagnostics(NO_FLATTEN)
    assert [d["message"] for d in published] == [f"{expected.message}\nhint: {expected.hint}"]
    assert published[0]["message"].startswith("dense expects a flat input, got 16x5x5 (from avgpool at line 4)")
    assert published[0]["range"] == span(4, 0, 5)  # the CLI's caret: line 5, columns 1-5
    assert published[0]["severity"] == 1

    lsp.change(uri, NO_FLATTEN.replace("dense 120", "flatten\ndense 120"), version=2)
    assert lsp.diagnostics(uri, 2) == []


def test_syntax_errors_are_reported_at_their_caret(lsp):
    text = "input image 1x28x28\nconv 6x5x5 -> -> relu\ndense 10\n"
    published = lsp.open(uri_of("arrows.spec"), text)
    (expected,) = cli_diagnostics(text)
    assert published[0]["message"] == f"{expected.message}\nhint: {expected.hint}"
    assert published[0]["range"] == span(1, 14, 16)


def test_unchanged_text_is_not_checked_again(lsp):
    uri = uri_of("same.spec")
    lsp.open(uri, NO_FLATTEN)
    lsp.change(uri, NO_FLATTEN, version=2)
    lsp.request("textDocument/hover", {"textDocument": {"uri": uri}, "position": at(2, 1)})
    published = [n for n in lsp.notifications if n["method"] == "textDocument/publishDiagnostics"
                 and n["params"]["uri"] == uri]
    assert published == []  # handled in order: a re-check of version 2 would have published before the hover
    lsp.change(uri, NO_FLATTEN + "relu\n", version=3)
    assert len(lsp.diagnostics(uri, 3)) == 1


def test_hover_shows_doc_shape_params_and_flops(lsp):
    uri = LENET.as_uri()
    lsp.open(uri, LENET.read_text())
    hover = lsp.request("textDocument/hover", {"textDocument": {"uri": uri}, "position": at(3, 2)})
    text = hover["contents"]["value"]
    assert text.startswith("**conv** (`conv2d`): 2d convolution")
    assert "output `6x28x28` · 156 params · 117,600 FLOPs" in text
    assert hover["range"] == span(3, 0, 4)


def test_inlay_hints_give_each_line_its_shape_and_params(lsp):
    uri = LENET.as_uri()
    lsp.open(uri, LENET.read_text())
    hints = lsp.request("textDocument/inlayHint", {"textDocument": {"uri": uri}, "range": {"start": at(0, 0), "end": at(100, 0)}})
    assert {h["position"]["line"]: h["label"] for h in hints} == {
        3: "→ 6x14x14 · 156 params", 4: "→ 16x5x5 · 2,416 params", 5: "→ 400", 6: "→ 10 · 59,134 params"}
    assert hints[0]["position"] == at(3, len("conv 6x5x5 relu -> avgpool 2"))


def test_completion_of_kinds_options_values_and_blocks(lsp):
    uri = uri_of("complete.spec")
    lsp.open(uri, "input image 1x32x32\nconv 6x5x5 \n")

    def labels(line, character):
        result = lsp.request("textDocument/completion", {"textDocument": {"uri": uri}, "position": at(line, character)})
        return {item["label"]: item for item in result["items"]}

    options = labels(1, 11)
    assert options["stride"]["detail"] == "int > 0 | sizes like 3x3; default 1"
    assert options["stride"]["insertText"] == "stride="
    assert "relu" in options and "units" not in options
    lsp.change(uri, "input image 1x32x32\nconv 6x5x5 pad=\n", version=2)
    assert set(labels(1, 15)) == {"valid", "same"}

    resnet = RESNET.as_uri()
    lsp.open(resnet, RESNET.read_text())
    result = lsp.request("textDocument/completion", {"textDocument": {"uri": resnet}, "position": at(10, 2)})
    words = {item["label"] for item in result["items"]}
    assert {"basic", "down", "conv", "repeat", "global_avgpool"} <= words


def test_definition_and_references_of_blocks_and_parameters(lsp):
    uri = RESNET.as_uri()
    lsp.open(uri, RESNET.read_text())
    where = lsp.request("textDocument/definition", {"textDocument": {"uri": uri}, "position": at(25, 1)})
    assert where == {"uri": uri, "range": span(5, 6, 11)}  # `block basic(c)`
    parameter = lsp.request("textDocument/definition", {"textDocument": {"uri": uri}, "position": at(7, 9)})
    assert parameter["range"] == span(5, 12, 13)
    uses = lsp.request("textDocument/references", {"textDocument": {"uri": uri}, "position": at(5, 7),
                                                   "context": {"includeDeclaration": True}})
    assert sorted(u["range"]["start"]["line"] for u in uses) == [5, 25, 25, 26, 27, 28]


def test_document_symbols(lsp):
    uri = RESNET.as_uri()
    lsp.open(uri, RESNET.read_text() + "train {\n  epochs=3 loss=sparse_categorical_crossentropy\n}\n")
    symbols = lsp.request("textDocument/documentSymbol", {"textDocument": {"uri": uri}})
    names = [s["name"] for s in symbols]
    assert names[:4] == ["model resnet18", "input", "basic", "down"]
    assert names[-1] == "train" and [c["name"] for c in symbols[-1]["children"]] == ["epochs", "loss"]
    basic = symbols[2]
    assert basic["range"] == {"start": at(5, 0), "end": at(11, 1)}
    assert [c["name"] for c in basic["children"]] == ["residual", "relu"]
    assert "conv 64 7x7 stride=2 pad=3 bias=false" in names


def test_formatting_is_specc_fmt(lsp):
    uri = uri_of("messy_lenet5.spec")
    canonical = LENET.read_text()
    messy = canonical.replace(" -> ", "->").replace("conv 6x5x5 relu", "conv   6x5x5  relu")
    lsp.open(uri, messy)
    edits = lsp.request("textDocument/formatting", {"textDocument": {"uri": uri},
                                                    "options": {"tabSize": 2, "insertSpaces": True}})
    assert apply(messy, edits) == format_source(messy) == canonical


def test_errors_past_the_limit_are_counted_as_the_cli_counts_them(lsp):
    text = "input image 1x8x8\n" + "".join(f"unknown{i} 3\n" for i in range(25))
    published = lsp.open(uri_of("many.spec"), text)
    assert len(published) == 21 and all(d["severity"] == 1 for d in published[:20])
    assert published[20]["severity"] == 3
    assert published[20]["message"] == "25 errors (5 more not shown; fix these first)"
    with pytest.raises(SpecError) as cli:
        compile_source(text, "x.spec")
    assert cli.value.render().splitlines()[-1] == published[20]["message"]


def test_code_actions_fix_shape_errors_and_misspellings(lsp):
    uri = uri_of("fixes.spec")
    (diagnostic,) = lsp.open(uri, NO_FLATTEN)
    actions = lsp.request("textDocument/codeAction", {"textDocument": {"uri": uri}, "range": diagnostic["range"],
                                                      "context": {"diagnostics": [diagnostic]}})
    assert [a["title"] for a in actions] == ["Insert `flatten` before it"]
    fixed = apply(NO_FLATTEN, actions[0]["edit"]["changes"][uri])
    assert "avgpool 2\nflatten\ndense 120" in fixed
    lsp.change(uri, fixed, version=2)
    assert lsp.diagnostics(uri, 2) == []

    misspelt = NO_FLATTEN.replace("avgpool 2\nconv", "avgpol 2\nconv")
    lsp.change(uri, misspelt, version=3)
    (diagnostic,) = lsp.diagnostics(uri, 3)
    actions = lsp.request("textDocument/codeAction", {"textDocument": {"uri": uri}, "range": diagnostic["range"],
                                                      "context": {"diagnostics": [diagnostic]}})
    assert [a["title"] for a in actions] == ["Change `avgpol` to `avgpool`"]
    assert actions[0]["edit"]["changes"][uri] == [{"range": span(2, 19, 25), "newText": "avgpool"}]


def test_code_action_adds_a_projection_shortcut(lsp):
    uri = uri_of("residual.spec")
    text = RESNET.read_text().replace("    shortcut { conv c 1x1 stride=2 bias=false -> batchnorm }\n", "")
    (diagnostic,) = lsp.open(uri, text)
    assert diagnostic["message"].startswith("residual body changes the shape from 64x56x56 to 128x28x28")
    actions = lsp.request("textDocument/codeAction", {"textDocument": {"uri": uri}, "range": diagnostic["range"],
                                                      "context": {"diagnostics": [diagnostic]}})
    assert [a["title"] for a in actions] == ["Add a projection shortcut: `shortcut { conv c 1x1 stride=2 }`"]
    fixed = apply(text, actions[0]["edit"]["changes"][uri])
    assert "    conv c 3x3 pad=1 bias=false -> batchnorm\n    shortcut { conv c 1x1 stride=2 }\n  }" in fixed
    lsp.change(uri, fixed, version=2)
    assert lsp.diagnostics(uri, 2) == []
