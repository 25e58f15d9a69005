"""The layer catalogue (spec_compiler/layers/__init__.py) against what each built-in module
registers, and the lazy loading it allows: a spec imports the modules of its words only."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from spec_compiler.layers import CATALOGUE, REGISTRY, LayerKind, LayerParams, register

ROOT = Path(__file__).resolve().parents[2]
EACH_MODULE = """
import json
from spec_compiler.layers import base, CATALOGUE, REGISTRY
registering, found = [], {}
add = base.register
base.register = lambda kind: registering.append(kind) or add(kind)  # modules take it as they load
for module, words in CATALOGUE.words.items():
    registering.clear()
    REGISTRY.lookup(words[0])  # imports the module
    found[module] = sorted(w for k in registering for w in (k.name, *k.aliases))
kinds = REGISTRY.kinds()
print(json.dumps({"found": found, "activations": sorted(w for k in kinds if k.is_activation for w in (k.name, *k.aliases)),
                  "markers": {m: [k.name for k in kinds if k.layout and k.layout.marker == m]
                              for m in {k.layout.marker for k in kinds if k.layout and k.layout.marker}}}))
"""
MODULES_LOADED = """
import json, sys
import spec_compiler
spec_compiler.load(sys.argv[1])
print(json.dumps(sorted(m.rsplit(".", 1)[1] for m in sys.modules if m.startswith("spec_compiler.layers."))))
"""


def run(script: str, *args: str) -> object:
    result = subprocess.run([sys.executable, "-c", script, *args], capture_output=True, text=True, cwd=ROOT,
                            env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"})
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def test_each_module_registers_the_words_the_catalogue_names():
    facts = run(EACH_MODULE)
    assert facts["found"] == {module: sorted(words) for module, words in CATALOGUE.words.items()}
    assert facts["activations"] == sorted(CATALOGUE.activations)
    assert facts["markers"] == {marker: list(kinds) for marker, kinds in CATALOGUE.markers.items()}


def test_a_spec_imports_the_modules_of_its_words_only():
    assert run(MODULES_LOADED, str(ROOT / "specs/lenet5.spec")) == ["activations", "base", "conv", "core"]


def test_kinds_are_listed_in_catalogue_order_whatever_was_loaded_first():
    assert [k.name for k in REGISTRY.kinds()][:3] == ["relu", "relu6", "selu"]
    order = list(CATALOGUE.order)
    names = [k.name for k in REGISTRY.kinds() if k.name in CATALOGUE.order]
    assert names == sorted(names, key=order.index)


class ClashParams(LayerParams):
    pass


@pytest.mark.parametrize("word", ["lstm", "relu"])
def test_a_plugin_taking_a_built_in_word_is_refused(word):
    with pytest.raises(ValueError, match=f"layer word `{word}` registered twice"):
        register(LayerKind(name=word, params=ClashParams, shape=lambda p, x: x, build=lambda p, x, y: None, doc="clash"))
