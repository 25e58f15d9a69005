"""`specc compile --emit torch`: the standalone source declares, loads and computes
exactly what the built module does, for every spec, structures, random specs and the CLI."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest
import torch
from click.testing import CliRunner
from hypothesis import given, settings
from hypothesis import strategies as st
from lowering_checks import (
    BIG_FLOPS,
    HYPOTHESIS,
    SPECS,
    STRUCTURE,
    compare_emitted,
    compiled,
    counted,
    image_specs,
    one_thread,  # noqa: F401  (autouse fixture: one torch thread)
    sequence_specs,
)

import spec_compiler
from spec_compiler.backends.torch_source import emit_source, load_source
from spec_compiler.cli import main as cli_main

# --- emitted source ------------------------------------------------------------------

EMIT_SPECS = [p for p in SPECS if spec_compiler.load(p).summary()["flops"] < BIG_FLOPS]


@pytest.mark.parametrize("path", EMIT_SPECS, ids=[p.stem for p in EMIT_SPECS])
def test_emitted_source_matches_the_built_module(path):
    """Outputs equal to 1e-6 for the same weights (the big ImageNet specs: below)."""
    model = spec_compiler.load(path)
    text = emit_source(model)
    namespace = load_source(text)
    class_name = next(name for name, value in namespace.items()
                      if isinstance(value, type) and value.__module__ == "specc_emitted"
                      and ("final_activation" in vars(value) or "final_activations" in vars(value)))
    compare_emitted(model, namespace[class_name])


BIG_SPECS = [p for p in SPECS if p not in EMIT_SPECS]


@pytest.mark.parametrize("path", BIG_SPECS, ids=[p.stem for p in BIG_SPECS])
def test_big_specs_emit_the_same_parameters(path):
    """emit_source executes its own output on the meta device and checks every
    state_dict key and shape; the class has the spec's name."""
    model = spec_compiler.load(path)
    namespace = load_source(emit_source(model))
    with torch.device("meta"):
        emitted = next(v for v in namespace.values() if isinstance(v, type)
                       and ("final_activation" in vars(v) or "final_activations" in vars(v)))()
    assert counted(emitted) == (model.summary()["total_params"], model.summary()["trainable_params"])


TAGGER = """\
model tagger
input tokens ? vocab=40
embedding 8 constraint=max_norm(1)
bidirectional merge=sum { gru 6 return_sequences=true init=orthogonal }
timedistributed { dense 5 relu -> dense 3 softmax }
"""
NAMED = """\
model sequence
input vector 6
dense 4 name=train relu frozen=true
batchnorm frozen=true
dense 3 name=forward_logits
block head(n) {
  dense n
  sigmoid
}
head 2 name=eval
"""


@pytest.mark.parametrize("source, name", [(STRUCTURE, "Structure"), (TAGGER, "Tagger"), (NAMED, "SequenceModel")])
def test_emitted_source_matches_for_structures(source, name):
    model = compiled(source)
    compare_emitted(model, load_source(emit_source(model))[name])


def test_emit_torch_cli_writes_an_importable_standalone_file(tmp_path):
    lenet = Path(__file__).resolve().parents[2] / "specs" / "lenet5.spec"
    target = tmp_path / "lenet_model.py"
    result = CliRunner().invoke(cli_main, ["compile", str(lenet), "--emit", "torch", "-o", str(target)])
    assert result.exit_code == 0, result.output
    text = target.read_text()
    imports = [line for line in text.splitlines() if line.startswith(("import ", "from "))]
    assert all(line.split()[1].split(".")[0] in ("torch", "__future__") for line in imports), imports
    assert "spec_compiler" not in text
    spec = importlib.util.spec_from_file_location("lenet_model", target)
    module = importlib.util.module_from_spec(spec)
    sys.modules["lenet_model"] = module
    try:
        spec.loader.exec_module(module)
        compare_emitted(spec_compiler.load(lenet), module.Lenet5)
    finally:
        sys.modules.pop("lenet_model", None)


@settings(HYPOTHESIS, max_examples=10)
@given(st.one_of(image_specs(), sequence_specs()))
def test_random_specs_emit_matching_source(source):
    model = compiled(source)
    namespace = load_source(emit_source(model))
    name = {"random_image": "RandomImage", "random_text": "RandomText"}.get(source.split()[1], "RandomSequence")
    compare_emitted(model, namespace[name])
