"""Shared checks of the lowering tests: a built module against its summary, each
registry kind's first valid input, emitted source against the built module, and the
random-spec strategies (hypothesis)."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from torch import nn

from spec_compiler import SpecError, compile_source
from spec_compiler.backends.torch_build import SpecModule
from spec_compiler.ir import Node

SPECS = sorted((Path(__file__).resolve().parents[2] / "specs").glob("*.spec"))
# may change a dynamic length
LENGTH_CHANGING = {"conv1d", "maxpool1d", "avgpool1d", "class_token", "conv_transpose1d", "upsample", "pad", "crop"}
BIG_FLOPS = 300_000_000  # per sample: such specs run one real forward (batch 1)


def compiled(source: str):
    return compile_source(source, "test.spec")


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    """These models are tiny: one thread is as fast, and immune to a busy machine's
    thread contention (a 200-step LSTM waits on a barrier every step)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


# --- the shared check ----------------------------------------------------------------

def sample(t, batch: int, length: int) -> torch.Tensor:
    dims = [d if isinstance(d, int) else length for d in t.dims]
    if t.dtype == "int":
        return torch.randint(0, t.vocab, (batch, *dims))
    return torch.randn(batch, *dims)


def counted(module: nn.Module) -> tuple[int, int]:
    """(parameters + BatchNorm running statistics, trainable parameters) the module holds."""
    total = sum(p.numel() for p in module.parameters())
    total += sum(b.numel() for name, b in module.named_buffers() if name.endswith(("running_mean", "running_var")))
    trainable = sum(p.numel() for p in module.parameters() if p.requires_grad)
    return total, trainable


def kinds_in(nodes: tuple[Node, ...]) -> set[str]:
    found = set()
    for node in nodes:
        found.add(node.kind)
        for body in node.bodies:
            found |= kinds_in(body)
    return found


def check_model(model, batches=(1, 3), lengths=(6, 11), meta_batches=()) -> SpecModule:
    """Counts and real output shapes of the built module against the summary
    (`meta_batches`: batch sizes run on the meta device, shapes without arithmetic)."""
    summary = model.summary()
    module = model.build(seed=0)
    assert isinstance(module, SpecModule)
    total, trainable = counted(module)
    assert total == summary["total_params"], model.table()
    assert trainable == summary["trainable_params"], model.table()
    module.eval()
    t_ins, t_outs = list(model.info.inputs.values()), list(model.info.outputs.values())
    dynamic = any(not t_in.is_static for t_in in t_ins)
    exact_length = not (kinds_in(tuple(n for step in model.ir.steps for n in step.nodes)) & LENGTH_CHANGING)
    with torch.no_grad():
        for batch in batches:
            for length in (lengths if dynamic else lengths[:1]):
                for y, t_out in zip(outputs(module(*samples(t_ins, batch, length))), t_outs, strict=True):
                    assert y.dtype == torch.float32
                    assert y.dim() == 1 + t_out.rank, (tuple(y.shape), t_out)
                    for got, want in zip(y.shape[1:], t_out.dims):
                        if isinstance(want, int):
                            assert got == want, (tuple(y.shape), t_out)
                        elif exact_length:
                            assert got == length, (tuple(y.shape), t_out)
                        else:
                            assert got > 0
                    assert y.shape[0] == batch
        if meta_batches:
            on_meta = module.to("meta")
            for batch in meta_batches:
                ys = outputs(on_meta(*(x.to("meta") for x in samples(t_ins, batch, lengths[0]))))
                assert [tuple(y.shape) for y in ys] == [(batch, *t_out.dims) for t_out in t_outs]
    return module


def samples(types, batch: int, length: int) -> list[torch.Tensor]:
    """One random batch per model input, in the spec's order."""
    return [sample(t, batch, length) for t in types]


def outputs(result) -> tuple:
    """A module's outputs as a tuple (a graph with several outputs gives one already)."""
    return result if isinstance(result, tuple) else (result,)


CANDIDATE_INPUTS = [
    "image 3x12x12", "image 16x12x12", "sequence 10x8", "vector 16", "vector 400",
    "tokens 10 vocab=20", "sequence 4x3x12x12", "sequence 1x8", "image 64x8x8",
]


def first_valid(example: str):
    for candidate in CANDIDATE_INPUTS:
        try:
            return compiled(f"input {candidate}\n{example}\n"), candidate
        except SpecError:
            continue
    return None, None



def compare_emitted(model, namespace_class) -> None:
    built = model.build(seed=1).eval()
    emitted = namespace_class().eval()
    assert list(emitted.state_dict()) == list(built.state_dict())
    assert counted(emitted) == counted(built)  # frozen layers too
    built.train(), emitted.train()
    assert [m.training for m in emitted.modules()] == [m.training for m in built.modules()]
    built.eval(), emitted.eval()
    emitted.load_state_dict(built.state_dict())
    for batch in (1, 3):
        xs = samples(model.info.inputs.values(), batch, 9)
        with torch.no_grad():
            torch.testing.assert_close(emitted(*xs), built(*xs), atol=1e-6, rtol=0, equal_nan=True)
            torch.testing.assert_close(emitted.forward_logits(*xs), built.forward_logits(*xs), atol=1e-6, rtol=0,
                                       equal_nan=True)  # sqrt, log of random inputs
    if model.ir.is_chain:
        assert emitted.final_activation == built.final_activation
    else:
        assert emitted.final_activations == built.final_activations



# --- random specs (hypothesis) -------------------------------------------------------

@st.composite
def image_specs(draw) -> str:
    """A valid image model: convs, pools, blocks, repeat, residual, concat, add, options, the
    group, instance and channel-wise layer norms, and ConvNeXt-style branches (layer scale, drop path)."""
    c = draw(st.integers(1, 4))
    h, w = draw(st.integers(6, 14)), draw(st.integers(6, 14))
    lines = ["model random_image", f"input image {c}x{h}x{w}",
             "block unit(f, s=1) {", "  conv f 3x3 stride=s pad=same bias=false -> batchnorm -> relu", "}"]
    options = st.sampled_from(["", " init=he_normal", " init=glorot_uniform bias_init=constant(0.1)",
                               " regularizer=l2(0.01)", " constraint=max_norm(2)", " frozen=true"])
    activation = st.sampled_from(["", " relu", " tanh", " leaky_relu"])
    for _ in range(draw(st.integers(1, 6))):
        choice = draw(st.sampled_from(
            ["conv", "conv_valid", "strided", "pool", "block", "repeat", "residual", "projection",
             "concat", "add", "norm", "separable", "depthwise", "dropout", "groupnorm", "convnext",
             "gate", "merge", "transpose", "upsample", "pad_crop", "shuffle"]))
        f = draw(st.integers(1, 6))
        if choice == "conv":
            k = draw(st.sampled_from([1, 3, 5]))
            lines.append(f"conv {f} {k}x{k} pad=same{draw(activation)}{draw(options)}")
            c = f
        elif choice == "conv_valid" and min(h, w) >= 3:
            lines.append(f"conv {f}x3x3{draw(activation)}{draw(options)}")
            c, h, w = f, h - 2, w - 2
        elif choice == "strided":
            lines.append(f"conv {f} 3x3 stride=2 pad=same{draw(options)}")
            c, h, w = f, -(-h // 2), -(-w // 2)
        elif choice == "pool" and min(h, w) >= 2:
            lines.append(draw(st.sampled_from(["maxpool 2", "avgpool 2"])))
            h, w = h // 2, w // 2
        elif choice == "block":
            s = draw(st.sampled_from([1, 2]))
            lines.append(f"unit {f} s={s}")
            c, h, w = f, -(-h // s), -(-w // s)
        elif choice == "repeat":
            lines.append(f"repeat 2 {{ conv {c} 3x3 pad=same relu }}")
        elif choice == "residual":
            lines.append(f"residual {{ conv {c} 3x3 pad=same relu -> conv {c} 3x3 pad=same{draw(options)} }}")
        elif choice == "projection":
            lines += [f"residual {{ conv {f} 3x3 stride=2 pad=same -> batchnorm",
                      f"  shortcut {{ conv {f} 1x1 stride=2 }} }}"]
            c, h, w = f, -(-h // 2), -(-w // 2)
        elif choice == "concat":
            g = draw(st.integers(1, 4))
            lines.append(f"concat {{ branch {{ conv {f} 1x1 }}; branch {{ conv {g} 3x3 pad=same relu }}; "
                         f"branch {{ maxpool 3 stride=1 pad=same }} }}")
            c = f + g + c
        elif choice == "add":
            lines.append(f"add {{ branch {{ conv {f} 1x1 }}; branch {{ conv {f} 3x3 pad=same{draw(options)} }} }}")
            c = f
        elif choice == "norm":
            lines.append(draw(st.sampled_from(["batchnorm", "batchnorm frozen=true", "lrn 3"])))
        elif choice == "separable":
            lines.append(f"separable {f} 3x3 pad=same relu")
            c = f
        elif choice == "depthwise":
            lines.append("depthwise 3x3 pad=same multiplier=2")
            c = 2 * c
        elif choice == "dropout":
            lines.append("dropout 0.25")
        elif choice == "groupnorm":
            groups = draw(st.sampled_from([g for g in (1, 2, 3, 4) if c % g == 0]))
            lines.append(draw(st.sampled_from([f"groupnorm {groups}", "instancenorm", "instancenorm center=false",
                                               "layernorm eps=1e-6"])))
        elif choice == "convnext":
            lines.append(f"residual {{ depthwise 3x3 pad=same -> layernorm -> conv {2 * c} 1x1 gelu -> conv {c} 1x1 "
                         f"-> layer_scale {draw(st.sampled_from(['1e-6', '0.5']))} -> drop_path 0.1 }}")
        elif choice == "gate":  # squeeze-and-excitation: CxHxW times Cx1x1
            inner = draw(st.sampled_from(["relu", "hardswish", "mish"]))
            gate = draw(st.sampled_from(["sigmoid", "hard_sigmoid"]))
            lines.append(f"multiply {{ branch {{ identity }}; branch {{ global_avgpool keepdims=true -> "
                         f"conv {f} 1x1 {inner} -> conv {c} 1x1 {gate} }} }}")
        elif choice == "merge":
            merge = draw(st.sampled_from(["add", "multiply", "maximum", "minimum", "average"]))
            lines.append(f"{merge} {{ branch {{ conv {c} 3x3 pad=same }}; branch {{ }}; "
                         "branch { mean 1 keepdims=true } }")
        elif choice == "transpose" and h * w <= 100:
            k, s = draw(st.sampled_from([(2, 2), (3, 2), (4, 2), (3, 1), (1, 3)]))
            lines.append(f"conv_transpose {f} {k}x{k} stride={s} pad=same{draw(activation)}{draw(options)}")
            c, h, w = f, h * s, w * s
        elif choice == "upsample" and h * w <= 100:
            line, dh, dw = draw(st.sampled_from([("upsample 2", 2, 2), ("upsample 2 mode=bilinear", 2, 2),
                                                 ("upsample 2x1", 2, 1)]))
            lines.append(line)
            h, w = h * dh, w * dw
        elif choice == "pad_crop" and min(h, w) >= 3:  # (line, change of height, change of width)
            line, dh, dw = draw(st.sampled_from([("pad 1 -> crop 1", 0, 0),
                                                 ("pad [0, 1, 2, 0] mode=replicate -> crop 1x0", -1, 2),
                                                 ("crop [0, 1, 1, 0] -> pad 1 mode=reflect", 1, 1)]))
            lines.append(line)
            h, w = h + dh, w + dw
        elif choice == "shuffle" and c % 2 == 0:
            half = c // 2
            lines.append(f"concat {{ branch {{ slice end={half} }}; "
                         f"branch {{ slice start={half} -> conv {half} 1x1 relu }} }}")
            lines.append("channel_shuffle 2")
    lines.append(draw(st.sampled_from(["flatten", "global_avgpool", "global_maxpool"])))
    lines.append(f"dense {draw(st.integers(1, 8))}{draw(st.sampled_from(['', ' relu', ' softmax', ' sigmoid']))}")
    if draw(st.booleans()):
        lines.append(draw(st.sampled_from(["softmax", "sigmoid", "dense 3 softmax"])))
    return "\n".join(lines) + "\n"


@st.composite
def sequence_specs(draw) -> str:
    """A valid text/sequence model: embedding, recurrent, bidirectional, conv1d,
    time-distributed and attention layers (padding masks on token inputs), positional
    embeddings, the class token and layer scale, on a static or dynamic length."""
    length = draw(st.sampled_from(["12", "?"]))
    tokens = draw(st.booleans())
    if tokens:
        lines = ["model random_text", f"input tokens {length} vocab=30", f"embedding {draw(st.sampled_from([4, 8]))}"]
    else:
        lines = ["model random_sequence", f"input sequence {length}x{draw(st.sampled_from([4, 8]))}"]
    features = 8
    lines.append("dense 8")
    mask = ""  # mask=padding while the steps are still the tokens' steps
    if tokens:
        mask = draw(st.sampled_from(["", " mask=padding"]))
    for _ in range(draw(st.integers(0, 4))):
        choice = draw(st.sampled_from(["lstm", "gru", "rnn", "bidirectional", "conv1d", "timedistributed",
                                       "attention", "general", "additive", "multihead", "layernorm", "dropout",
                                       "positions", "class_token", "layer_scale"]))
        units = draw(st.sampled_from([4, 6, 8]))
        if choice in ("lstm", "gru", "rnn"):
            layers = draw(st.sampled_from([1, 2]))
            lines.append(f"{choice} {units} return_sequences=true layers={layers}")
            features = units
        elif choice == "bidirectional":
            merge = draw(st.sampled_from(["concat", "sum"]))
            lines.append(f"bidirectional merge={merge} {{ gru {units} return_sequences=true }}")
            features = 2 * units if merge == "concat" else units
        elif choice == "conv1d":
            lines.append(f"conv1d {units} 3 pad=same relu")
            features = units
        elif choice == "timedistributed":
            lines.append(f"timedistributed {{ dense {units} relu }}")
            features = units
        elif choice == "attention":
            lines.append(f"attention{mask}")
        elif choice == "general":
            lines.append(f"luong_attention general{mask}")
        elif choice == "additive":
            lines.append(f"bahdanau_attention units={units}{mask}")
        elif choice == "multihead" and features % 2 == 0:
            lines.append(f"multihead_attention heads=2{mask}{draw(st.sampled_from(['', ' causal=true']))}")
        elif choice == "positions":
            lines.append(draw(st.sampled_from(["positional_embedding sinusoidal", "positional_embedding max_length=20"])))
        elif choice == "class_token":
            lines.append("class_token")
            mask = ""
        elif choice == "layer_scale":
            lines.append("layer_scale 0.1")
        elif choice == "layernorm":
            lines.append("layernorm")
        elif choice == "dropout":
            lines.append("dropout 0.1")
    lines.append(draw(st.sampled_from(["lstm 5", "gru 5", f"attention_pool{mask}", "global_avgpool", "class_pool",
                                       "bidirectional { lstm 3 }", "timedistributed { dense 3 softmax }"])))
    lines.append(draw(st.sampled_from(["dense 2 softmax", "dense 1 sigmoid", "dense 3"])))
    return "\n".join(lines) + "\n"


HYPOTHESIS = settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow])



STRUCTURE = """\
model structure
input image 3x8x8
block basic(c) {
  conv c 3x3 pad=same -> relu
}
basic 4
residual { conv 4 3x3 pad=same
  shortcut { conv 4 1x1 } }
concat { branch { conv 2 1x1 }; branch { conv 3 1x1 } }
add { branch { conv 2 1x1 }; branch { conv 2 3x3 pad=same } }
flatten
dense 10 softmax
"""
