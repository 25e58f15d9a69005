"""spec_compiler/generated_parser.py is lark's stand-alone parser for grammars/spec.lark:
these tests fail when the grammar changes and the file is not written again with

    python -m lark.tools.standalone --maybe_placeholders grammars/spec.lark -o spec_compiler/generated_parser.py
"""

from __future__ import annotations

import subprocess
import sys

import lark
import pytest
from conftest import ROOT

from spec_compiler import generated_parser
from spec_compiler.parser import _parser

GRAMMAR = ROOT / "grammars" / "spec.lark"
REGENERATE = ("python -m lark.tools.standalone --maybe_placeholders grammars/spec.lark "
              "-o spec_compiler/generated_parser.py")


def generated_now() -> str:
    result = subprocess.run([sys.executable, "-m", "lark.tools.standalone", "--maybe_placeholders", str(GRAMMAR)],
                            capture_output=True, text=True, cwd=ROOT, timeout=120, check=True)
    return result.stdout


def tables(data: dict, memo: dict) -> dict:
    """A stand-alone parser's grammar and LALR tables, free of the numbering lark gives its
    tokens and states (set order: it changes from one run of lark's tool to the next)."""
    def resolve(value):
        if isinstance(value, dict):
            return resolve(memo[value["@"]]) if set(value) == {"@"} else {k: resolve(v) for k, v in value.items()}
        if isinstance(value, (list, tuple)):
            return [resolve(v) for v in value]
        return value

    parser = data["parser"]["parser"]
    names = parser["tokens"]

    def action(entry):
        kind, argument = entry
        return ("shift", "*") if kind == 0 else ("reduce", repr(resolve(argument)))

    states = sorted(repr(sorted((names[token], *action(entry)) for token, entry in state.items()))
                    for state in parser["states"].values())
    return {
        "terminals": sorted(repr(t) for t in resolve(data["parser"]["lexer_conf"]["terminals"])),
        "rules": sorted(repr(r) for r in resolve(data["rules"])),
        "options": data["options"],
        "states": states,
    }


def test_the_generated_parser_holds_the_grammars_tables():
    fresh: dict = {}
    exec(compile(generated_now(), "generated_now", "exec"), fresh)  # lark's own output, as the file is
    assert tables(generated_parser.DATA, generated_parser.MEMO) == tables(fresh["DATA"], fresh["MEMO"]), \
        f"run: {REGENERATE}"


def shape(tree) -> tuple | str:
    """A parse tree as plain data: rule names, and tokens as (type, text, line, column)."""
    if hasattr(tree, "data"):
        return (str(tree.data), tuple(shape(child) for child in tree.children))
    if tree is None:
        return "None"
    return (tree.type, str(tree), tree.line, tree.column)


@pytest.mark.parametrize("spec", sorted((ROOT / "specs").glob("*.spec")), ids=lambda p: p.name)
def test_it_parses_every_bundled_spec_as_lark_does(spec):
    built = lark.Lark(GRAMMAR.read_text(encoding="utf-8"), parser="lalr", maybe_placeholders=True)
    text = spec.read_text(encoding="utf-8")
    assert shape(_parser().parse(text)) == shape(built.parse(text))
