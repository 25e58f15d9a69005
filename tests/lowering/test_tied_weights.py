"""`tie=`: a dense layer whose weight is an embedding's table (GPT-2's head) holds one
Parameter with the table, in the built module, the emitted source, a run's weights file and
the exported ONNX graph (which holds the table once)."""

from __future__ import annotations

import numpy as np
import onnx
import torch
from lowering_checks import check_model, counted

from spec_compiler import compile_source
from spec_compiler.backends.torch_source import emit_source, load_source
from spec_compiler.export.weights import load_weights
from spec_compiler.run.folder import RunFolder

TIED = """\
model tied_lm
input tokens 12 vocab=40
embedding 16 name=wte
positional_embedding
layernorm
dense 40 bias=false tie=wte softmax
"""


def tied():
    return compile_source(TIED, "tied.spec")


def test_the_tied_weight_is_counted_once_at_the_table():
    summary = tied().summary()
    table, positions, norm = 40 * 16, 12 * 16, 2 * 16
    assert summary["total_params"] == table + positions + norm
    assert [layer["params"] for layer in summary["layers"]][-1] == 0
    untied = compile_source(TIED.replace(" tie=wte", ""), "untied.spec").summary()
    assert untied["total_params"] == summary["total_params"] + table


def test_the_built_module_holds_one_parameter_under_both_names():
    module = check_model(tied())
    assert module.tied == [("dense_1.weight", "wte.weight")]
    assert module.dense_1.weight is module.wte.weight
    state = module.state_dict()
    assert state["dense_1.weight"].data_ptr() == state["wte.weight"].data_ptr()
    assert counted(module)[0] == tied().summary()["total_params"]


def test_a_gradient_step_moves_the_table_for_both_uses():
    module = tied().build(seed=0)
    ids = torch.randint(0, 40, (4, 12), generator=torch.Generator().manual_seed(0))
    optimizer = torch.optim.SGD(module.parameters(), lr=0.5)
    before = module.wte.weight.detach().clone()
    module.forward_logits(ids).logsumexp(-1).mean().backward()
    optimizer.step()
    assert len(optimizer.param_groups[0]["params"]) == 4  # the table once, positions, norm scale and bias
    assert not torch.equal(module.wte.weight, before)
    assert module.dense_1.weight is module.wte.weight
    unseen = sorted(set(range(40)) - set(ids.flatten().tolist()))
    if unseen:  # a row no input looked up still moved: the head's use of the table trained it
        assert not torch.equal(module.wte.weight[unseen[0]], before[unseen[0]])


def test_emitted_source_ties_the_same_parameter():
    model = tied()
    text = emit_source(model)
    assert "self.dense_1.weight = self.wte.weight" in text
    emitted = load_source(text)["TiedLm"]()
    built = model.build(seed=1)
    assert emitted.dense_1.weight is emitted.wte.weight
    emitted.load_state_dict(built.state_dict())
    ids = torch.randint(0, 40, (2, 12))
    torch.testing.assert_close(emitted(ids), built(ids))


def test_a_run_s_weights_file_loads_back_tied(tmp_path):
    model = tied()
    trained = model.build(seed=2)
    RunFolder(tmp_path).save_weights(trained.state_dict(), "run-1")
    loaded = model.build(seed=3)
    load_weights(loaded, tmp_path / "weights.safetensors", TIED, None)
    assert loaded.dense_1.weight is loaded.wte.weight
    torch.testing.assert_close(loaded.wte.weight, trained.wte.weight)


def test_the_onnx_file_holds_the_table_once(tmp_path):
    model = tied()
    report = model.export(tmp_path / "tied.onnx")
    assert report.max_abs_diff <= 1e-4
    graph = onnx.load(tmp_path / "tied.onnx").graph
    stored = sum(int(np.prod(tensor.dims)) for tensor in graph.initializer)
    assert stored == model.summary()["total_params"]
    assert [tensor.dims for tensor in graph.initializer].count([40, 16]) == 1


def test_a_tie_inside_a_block_shares_the_table_named_by_its_path():
    source = ("input tokens 12 vocab=40\nembedding 16 name=wte\n"
              "block head() { layernorm -> dense 40 bias=false tie=wte }\nhead\n")
    model = compile_source(source, "nested.spec")
    module = check_model(model)
    assert module.tied == [("head_1.dense_1.weight", "wte.weight")]
    assert module.head_1.dense_1.weight is module.wte.weight
    assert counted(module)[0] == model.summary()["total_params"] == 40 * 16 + 2 * 16
    assert "self.head_1.dense_1.weight = self.wte.weight" in emit_source(model)
