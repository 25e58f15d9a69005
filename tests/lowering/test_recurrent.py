"""Recurrent and sequence kinds: embedding, rnn/lstm/gru, bidirectional, timedistributed.

Counts and shapes come from the registry rules (no torch); each kind is also built
through the registry and run, and its module must hold exactly the counted parameters.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import torch
from torch import nn

import spec_compiler
from spec_compiler import REGISTRY, SpecError, compile_source
from spec_compiler.inference import LayerInfo

SPECS = Path(__file__).resolve().parents[2] / "specs"


# --- helpers -----------------------------------------------------------------------

def compiled(source: str):
    return compile_source(source, "test.spec")


def error_of(source: str):
    with pytest.raises(SpecError) as caught:
        compiled(source)
    return caught.value.diagnostics[0]


def build_layer(info: LayerInfo) -> nn.Module:
    """Build one node through its registry entry; structural kinds get their bodies
    built first (as nn.Sequential, the way the whole-model lowering hands them over)."""
    kind = REGISTRY[info.node.kind]
    if kind.layout is None:
        return kind.build(info.node.params, info.input, info.output)
    children = [nn.Sequential(*(build_layer(child) for child in body)) for body in info.children]
    return kind.build(info.node.params, info.input, info.output, children)


def numel(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def sample(x_type, batch: int = 3, length: int = 7) -> torch.Tensor:
    dims = [d if isinstance(d, int) else length for d in x_type.dims]
    if x_type.dtype == "int":
        return torch.randint(0, x_type.vocab, (batch, *dims))
    return torch.randn(batch, *dims)


def expected_shape(y_type, batch: int = 3, length: int = 7) -> tuple:
    return (batch, *(d if isinstance(d, int) else length for d in y_type.dims))


def run_layer(info: LayerInfo, length: int = 7):
    module = build_layer(info).eval()
    with torch.no_grad():
        out = module(sample(info.input, length=length))
    return module, out


# --- the specs: counts against their published figures ----------------------------------

@pytest.mark.parametrize("name, total, keras", [
    ("spam_lstm", 159_393, 159_137),
    ("spam_lstm_timedistributed", 156_257, 156_001),
    ("bigru_text", 338_881, 338_881),
])
def test_spec_counts(name, total, keras):
    path = SPECS / f"{name}.spec"
    model = spec_compiler.load(path)
    assert model.info.count.total == total
    assert model.info.count.non_trainable == 0
    first_line = path.read_text().splitlines()[0]
    assert first_line.startswith("#")
    figure = int(re.search(r"([\d,]+) parameters", first_line).group(1).replace(",", ""))
    assert figure == total
    # Keras' figure counts one bias vector per LSTM gate: 4 * 64 less.
    lstms = sum(1 for layer in model.info.layers if layer.node.kind == "lstm")
    assert total - 4 * 64 * lstms == keras


def test_spam_lstm_is_the_brief_example():
    text = (SPECS / "spam_lstm.spec").read_text()
    body = [line for line in text.splitlines() if line and not line.startswith("#")]
    assert body == ["model spam_lstm", "input tokens 150 vocab=1000", "embedding 100", "lstm 64",
                    "dense 256 relu -> dropout 0.5", "dense 1 sigmoid"]


def test_spam_lstm_shapes_and_layer_counts():
    model = spec_compiler.load(SPECS / "spam_lstm.spec")
    rows = [(layer.node.kind, layer.output.dims, layer.count.total) for layer in model.info.layers]
    assert rows == [
        ("embedding", (150, 100), 100_000),
        ("lstm", (64,), 4 * (64 * 100 + 64 * 64 + 2 * 64)),
        ("dense", (256,), 16_640),
        ("dropout", (256,), 0),
        ("dense", (1,), 257),
    ]
    lstm = model.info.layers[1]
    assert lstm.flops == 150 * 4 * 64 * (100 + 64)


def test_timedistributed_spec_shapes():
    model = spec_compiler.load(SPECS / "spam_lstm_timedistributed.spec")
    kinds = {layer.node.kind: layer for layer in model.info.layers}
    assert kinds["lstm"].output.dims == (150, 64)
    td = kinds["timedistributed"]
    assert td.output.dims == (150, 64)
    assert td.count.total == 64 * 64 + 64
    assert td.flops == 150 * 64 * 64
    assert td.children[0][0].input.dims == (64,)  # the body sees one time step
    assert kinds["flatten"].output.dims == (9600,)


def test_bigru_dynamic_length():
    model = spec_compiler.load(SPECS / "bigru_text.spec")
    embedding, bidirectional, dense = model.info.layers
    assert embedding.output.dims == ("?", 64)
    assert bidirectional.output.dims == (64,)
    assert bidirectional.count.total == 2 * 3 * (32 * 64 + 32 * 32 + 2 * 32)
    assert bidirectional.flops == 2 * 3 * 32 * (64 + 32)  # a dynamic length counts as one step
    assert model.info.output.dims == (1,)


# --- shape rules ------------------------------------------------------------------

@pytest.mark.parametrize("layer, dims", [
    ("lstm 16", (16,)),
    ("gru 16 return_sequences=true", ("T", 16)),
    ("rnn 16 layers=3 dropout=0.2 return_sequences=true", ("T", 16)),
    ("simple_rnn 16 nonlinearity=relu", (16,)),
    ("bidirectional { lstm 16 }", (32,)),
    ("bidirectional merge=ave { gru 16 return_sequences=true }", ("T", 16)),
    ("timedistributed { dense 5 }", ("T", 5)),
    ("time_distributed { dense 5 -> dense 2 }", ("T", 2)),
])
def test_sequence_shapes(layer, dims):
    model = compiled(f"input sequence Tx8\n{layer}\n")
    assert model.info.output.dims == dims


def test_stacked_count_and_no_bias():
    model = compiled("input sequence 10x8\nlstm 16 layers=2 dropout=0.1 return_sequences=true\ngru 4 bias=false\n")
    lstm, gru = model.info.layers
    assert lstm.count.total == 4 * (16 * 8 + 16 * 16 + 32) + 4 * (16 * 16 + 16 * 16 + 32)
    assert gru.count.total == 3 * (4 * 16 + 4 * 4)


def test_timedistributed_conv_per_frame():
    model = compiled("input sequence 5x3x16x16\n"
                     "timedistributed { conv 4x3x3 relu -> maxpool 2 -> flatten }\nlstm 8\n")
    td, lstm = model.info.layers
    assert td.output.dims == (5, 4 * 7 * 7)
    assert td.count.total == 4 * 3 * 9 + 4
    assert lstm.output.dims == (8,)


# --- errors (exact text) ------------------------------------------------------------

def test_lstm_on_an_image():
    error = error_of("input image 1x28x28\nlstm 64\n")
    assert error.message == "lstm expects a sequence TxF, got 1x28x28 (an image, CxHxW) (from input image at line 1)"
    assert error.hint == ("an image has no time axis: read its rows as time steps with `reshape 28x28`, "
                          "or turn each frame of a TxCxHxW video into a vector with `timedistributed { ... -> flatten }`")
    assert (error.span.line, error.span.column) == (2, 1)


def test_lstm_on_token_ids():
    error = error_of("input tokens 20 vocab=100\ngru 8\n")
    assert error.message == "gru expects a sequence TxF, got 20 (token ids) (from input tokens at line 1)"
    assert error.hint == "add `embedding N` before it to turn token ids into vectors"


def test_stacking_without_return_sequences():
    error = error_of("input sequence 10x8\nlstm 64\nlstm 32\n")
    assert error.message == "lstm expects a sequence TxF, got 64 (a vector) (from lstm at line 2)"
    assert "return_sequences=true" in error.hint


def test_embedding_on_float_input():
    error = error_of("input sequence 10x8\nembedding 16\n")
    assert error.message == "embedding expects token ids, got 10x8 (a sequence, TxF) (from input sequence at line 1)"
    assert error.hint == ("embedding turns integer token ids into vectors: declare `input tokens T vocab=V` "
                          "before it; a float input already has features, so remove the embedding")


def test_bidirectional_around_a_dense():
    error = error_of("input sequence ?x8\nbidirectional { dense 16 }\n")
    assert error.message == "bidirectional wraps an rnn, lstm or gru layer, got dense"
    assert error.hint == "write it as `bidirectional { lstm 64 }`; other layers need no direction"


def test_bidirectional_around_two_layers():
    error = error_of("input sequence ?x8\nbidirectional { lstm 16 -> dense 4 }\n")
    assert error.message == "bidirectional wraps exactly one rnn, lstm or gru layer, got 2 layers (lstm, dense)"


def test_dropout_needs_stacked_layers():
    error = error_of("input sequence 10x8\nlstm 64 dropout=0.2\n")
    assert error.message == ("lstm dropout=0.2 acts between stacked layers (as in PyTorch), and this layer has "
                             "layers=1; stack it with layers=2 or more, or add a `dropout` layer after it")


def test_timedistributed_needs_a_time_axis():
    error = error_of("input vector 10\ntimedistributed { dense 3 }\n")
    assert error.message == "timedistributed expects a sequence T x ..., got 10 (a vector) (from input vector at line 1)"


def test_rnn_nonlinearity_choices():
    error = error_of("input sequence 10x8\nrnn 4 nonlinearity=sigmoid\n")
    assert error.message == "rnn nonlinearity must be `tanh` or `relu`, got `sigmoid`"


# --- builders: real forward passes through the registry --------------------------------

@pytest.mark.parametrize("source", [
    "input tokens 12 vocab=50\nembedding 6\n",
    "input tokens ? vocab=50\nembedding 6\n",
    "input sequence ?x8\nlstm 5\n",
    "input sequence 12x8\nlstm 5 layers=2 dropout=0.3 return_sequences=true\n",
    "input sequence ?x8\ngru 5 return_sequences=true\n",
    "input sequence 12x8\ngru 5 layers=3 bias=false\n",
    "input sequence ?x8\nrnn 5 nonlinearity=relu\n",
    "input sequence 12x8\nsimple_rnn 5 layers=2 return_sequences=true\n",
    "input sequence ?x8\nbidirectional { lstm 5 }\n",
    "input sequence 12x8\nbidirectional merge=sum { gru 5 return_sequences=true }\n",
    "input sequence ?x8\nbidirectional merge=mul { rnn 5 layers=2 }\n",
    "input sequence ?x8\nbidirectional merge=ave { lstm 5 return_sequences=true }\n",
    "input sequence ?x8\ntimedistributed { dense 4 }\n",
    "input sequence 4x3x10x10\ntimedistributed { conv 2x3x3 -> maxpool 2 -> flatten -> dense 3 }\n",
])
def test_built_module_matches_the_rules(source):
    (info,) = compiled(source).info.layers
    for length in (7, 11):  # a dynamic length takes any T
        if length != 7 and info.input.is_static:
            continue
        module, out = run_layer(info, length)
        assert tuple(out.shape) == expected_shape(info.output, length=length)
    assert numel(module) == info.count.total


def test_state_dict_keys_are_readable():
    (lstm,) = compiled("input sequence ?x8\nlstm 5 layers=2 dropout=0.1\n").info.layers
    assert sorted(build_layer(lstm).state_dict()) == sorted(
        f"{w}_{ih}_l{layer}" for w in ("weight", "bias") for ih in ("ih", "hh") for layer in (0, 1))
    (bi,) = compiled("input sequence ?x8\nbidirectional { gru 5 }\n").info.layers
    keys = set(build_layer(bi).state_dict())
    assert "forward_layer.weight_ih_l0" in keys and "backward_layer.bias_hh_l0" in keys
    assert len(keys) == 8


def test_recurrent_module_is_torch_lstm():
    (info,) = compiled("input sequence ?x8\nlstm 5 layers=2 dropout=0.25\n").info.layers
    module = build_layer(info)
    assert isinstance(module, nn.LSTM)
    assert (module.batch_first, module.num_layers, module.dropout, module.bidirectional) == (True, 2, 0.25, False)
    x = torch.randn(2, 9, 8)
    module.eval()
    with torch.no_grad():
        full, _ = nn.LSTM.forward(module, x)
        assert torch.equal(module(x), full[:, -1])
    (rnn,) = compiled("input sequence ?x8\nrnn 5 nonlinearity=relu\n").info.layers
    assert build_layer(rnn).nonlinearity == "relu"


def test_bidirectional_reads_the_sequence_backwards():
    torch.manual_seed(0)
    (last,) = compiled("input sequence ?x4\nbidirectional { lstm 3 }\n").info.layers
    (every,) = compiled("input sequence ?x4\nbidirectional { lstm 3 return_sequences=true }\n").info.layers
    bi_last, bi_every = build_layer(last).eval(), build_layer(every).eval()
    bi_every.load_state_dict(bi_last.state_dict())
    x = torch.randn(2, 6, 4)
    with torch.no_grad():
        out = bi_last(x)
        seq = bi_every(x)
        backward_state = bi_last.backward_layer(torch.flip(x, dims=[1]))
    assert not torch.equal(bi_last.forward_layer.weight_ih_l0, bi_last.backward_layer.weight_ih_l0)
    assert torch.allclose(out[:, 3:], backward_state)
    assert torch.allclose(out[:, :3], seq[:, -1, :3])  # forward: the last step
    assert torch.allclose(out[:, 3:], seq[:, 0, 3:])  # backward: in time order, its state is at t=0


def test_timedistributed_applies_the_body_per_step():
    (info,) = compiled("input sequence ?x6\ntimedistributed { dense 4 }\n").info.layers
    module = build_layer(info).eval()
    x = torch.randn(2, 5, 6)
    with torch.no_grad():
        out = module(x)
        per_step = torch.stack([module.body(x[:, t]) for t in range(5)], dim=1)
    assert torch.allclose(out, per_step, atol=1e-6)


def test_every_recurrent_entry_is_documented():
    for word in ("embedding", "rnn", "lstm", "gru", "bidirectional", "timedistributed"):
        kind = REGISTRY.lookup(word)
        assert kind.category == "recurrent" and kind.doc and kind.example
        compiled_example = {
            "embedding": "input tokens 10 vocab=20\n", "timedistributed": "input sequence 5x64\n",
        }.get(word, "input sequence 5x16\n") + kind.example + "\n"
        assert compiled(compiled_example).info.layers
    assert "two bias vectors" in REGISTRY.lookup("lstm").doc
    assert REGISTRY.lookup("simple_rnn").name == "rnn"
    assert REGISTRY.lookup("time_distributed").name == "timedistributed"


def test_frozen_layer_inside_bidirectional_counts_both_directions():
    model = compiled("input sequence ?x8\nbidirectional { lstm 5 frozen=true }\ndense 3\n")
    summary = model.summary()
    assert summary["non_trainable_params"] == 2 * 4 * (5 * 8 + 5 * 5 + 2 * 5)
    assert summary["trainable_params"] == 10 * 3 + 3


# The legacy (TorchScript) exporter is used for speed; its deprecation and tracer
# notices are expected. (The torch.export-based exporter gives the same graph, slower.)
@pytest.mark.filterwarnings("ignore::UserWarning", "ignore::DeprecationWarning",
                            "ignore::torch.jit.TracerWarning")
def test_onnx_export_keeps_the_length_dynamic(tmp_path):
    onnxruntime = pytest.importorskip("onnxruntime")
    source = ("input sequence ?x8\nbidirectional { lstm 5 return_sequences=true }\n"
              "timedistributed { dense 4 }\ngru 3\n")
    module = nn.Sequential(*(build_layer(info) for info in compiled(source).info.layers)).eval()
    path = tmp_path / "model.onnx"
    torch.onnx.export(module, (torch.randn(2, 6, 8),), str(path), input_names=["x"], output_names=["y"],
                      dynamic_axes={"x": {0: "batch", 1: "length"}}, dynamo=False)
    session = onnxruntime.InferenceSession(str(path))
    for length in (3, 9):
        x = torch.randn(4, length, 8)
        with torch.no_grad():
            expected = module(x).numpy()
        (got,) = session.run(None, {"x": x.numpy()})
        assert got.shape == (4, 3)
        assert abs(got - expected).max() < 1e-5
