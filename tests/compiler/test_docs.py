"""docs/language.md stays true: its generated layer reference matches the registry, and
every ```spec example in it compiles (the ResNet walkthrough is specs/resnet18.spec)."""

from __future__ import annotations

import re
import subprocess
import sys

import pytest
from conftest import ROOT

from spec_compiler import REGISTRY, compile_source

DOC = ROOT / "docs" / "language.md"
EXAMPLES = re.findall(r"```spec\n(.*?)```", DOC.read_text(encoding="utf-8"), re.S)


def test_layer_reference_is_up_to_date():
    result = subprocess.run([sys.executable, "docs/gen_layer_table.py", "--check"], cwd=ROOT,
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr


def test_every_layer_word_is_documented():
    text = DOC.read_text(encoding="utf-8")
    # built-in kinds only: other tests may have registered plugin kinds in this process
    builtin = [kind for kind in REGISTRY.kinds() if kind.shape.__module__.startswith("spec_compiler.")]
    missing = [word for kind in builtin for word in (kind.name, *kind.aliases) if f"`{word}`" not in text]
    assert not missing, missing


@pytest.mark.parametrize("index", range(len(EXAMPLES)))
def test_doc_examples_compile(index):
    compile_source(EXAMPLES[index], f"docs/language.md example {index + 1}")


def test_walkthrough_is_the_resnet18_spec():
    walkthrough = next(example for example in EXAMPLES if example.startswith("# the whole file"))
    spec = (ROOT / "specs" / "resnet18.spec").read_text(encoding="utf-8")
    assert walkthrough.split("\n", 1)[1] == spec.split("\n", 1)[1]


def test_lenet5_output_shown_is_the_real_output():
    text = DOC.read_text(encoding="utf-8")
    shown = re.search(r"```text\n\$ specc compile specs/lenet5.spec\n(.*?)```", text, re.S).group(1)
    assert shown == (ROOT / "tests" / "golden" / "summaries" / "lenet5.out").read_text(encoding="utf-8")
