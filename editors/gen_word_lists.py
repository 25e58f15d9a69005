"""Rewrite the built-in word lists of the VS Code TextMate grammar from the registry.

    python editors/gen_word_lists.py          # rewrite editors/vscode/syntaxes/spec.tmLanguage.json
    python editors/gen_word_lists.py --check  # exit 1 when the grammar is out of date

Longest words first, so a regex alternation never stops at a prefix (`conv` before `conv1d`).
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from spec_compiler.layers import REGISTRY  # noqa: E402

GRAMMAR = ROOT / "editors" / "vscode" / "syntaxes" / "spec.tmLanguage.json"
LAYER_GROUP = "[\\t ]*(?:("
ACTIVATION_GROUP = "(?<![A-Za-z0-9_.])(?:"


def alternation(words: set[str]) -> str:
    return "|".join(sorted(words, key=lambda w: (-len(w), w)))


def replace_group(pattern: str, group: str, words: set[str]) -> str:
    start = pattern.index(group) + len(group)
    end = start + re.match(r"[A-Za-z0-9_|]+", pattern[start:]).end()
    return pattern[:start] + alternation(words) + pattern[end:]


def updated_grammar() -> str:
    grammar = json.loads(GRAMMAR.read_text(encoding="utf-8"))
    kinds = [kind for kind in REGISTRY.kinds() if kind.shape.__module__.startswith("spec_compiler.")]
    words = {word for kind in kinds for word in (kind.name, *kind.aliases)}
    activations = {word for kind in kinds if kind.is_activation for word in (kind.name, *kind.aliases)}
    repository = grammar["repository"]
    layer = repository["layer-word"]
    layer["match"] = replace_group(layer["match"], LAYER_GROUP, words)
    for rule in repository["value"]["patterns"]:
        if rule.get("name") == "support.constant.activation.spec":
            rule["match"] = replace_group(rule["match"], ACTIVATION_GROUP, activations)
    return json.dumps(grammar, indent=2, ensure_ascii=False) + "\n"


def main() -> int:
    text = updated_grammar()
    if "--check" in sys.argv:
        if GRAMMAR.read_text(encoding="utf-8") != text:
            print(f"{GRAMMAR.relative_to(ROOT)} is out of date: run python editors/gen_word_lists.py")
            return 1
        return 0
    GRAMMAR.write_text(text, encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
