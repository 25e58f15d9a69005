"""Property tests: the checker never crashes.

1. Valid layer stacks, generated as spec TEXT while tracking the shape, always compile,
   and to the parameter count and output shape computed independently here.
2. Random stacks of real layer words with random arguments compile or raise SpecError.
3. Real specs with characters inserted, deleted or replaced yield a model or a
   SpecError (which renders), never another exception.

Deterministic (derandomize) and quick (about 200 examples each, no deadline).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from conftest import ROOT
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from spec_compiler import REGISTRY, SpecError, compile_source

SETTINGS = settings(max_examples=200, deadline=None, derandomize=True, database=None,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])

ACTIVATIONS = ["relu", "tanh", "sigmoid", "gelu", "elu", "selu", "silu", "relu6", "softplus", "leaky_relu 0.2"]


@dataclass
class Stack:
    """A spec being generated: its lines, current shape and expected parameter count."""

    shape: tuple[int, ...]
    lines: list[str] = field(default_factory=list)
    params: int = 0
    blocks: list[str] = field(default_factory=list)


def _out(size: int, kernel: int, stride: int, pad: str) -> int:
    return -(-size // stride) if pad == "same" else (size - kernel) // stride + 1


@st.composite
def image_layer(draw, stack: Stack) -> None:
    c, h, w = stack.shape
    choice = draw(st.sampled_from(["conv", "conv", "pool", "act", "dropout", "batchnorm", "residual",
                                   "concat", "add", "block", "depthwise"]))
    if choice == "conv":
        filters = draw(st.integers(1, 8))
        kernel = draw(st.integers(1, min(5, h, w)))
        stride = draw(st.integers(1, 2))
        pad = draw(st.sampled_from(["same", "valid"]))
        bias = draw(st.booleans())
        act = draw(st.sampled_from(["", " relu", " tanh"]))
        form = draw(st.sampled_from([f"conv {filters}x{kernel}x{kernel}", f"conv {filters} {kernel}x{kernel}",
                                     f"conv filters={filters} kernel={kernel}"]))
        stack.lines.append(f"{form}{act} stride={stride} pad={pad} bias={'true' if bias else 'false'}"
                           if "=" not in form else f"{form} stride={stride} pad={pad} bias={str(bias).lower()}")
        stack.params += filters * c * kernel * kernel + (filters if bias else 0)
        stack.shape = (filters, _out(h, kernel, stride, pad), _out(w, kernel, stride, pad))
    elif choice == "depthwise":
        stack.lines.append("depthwise 3x3 pad=same")
        stack.params += c * 9 + c
    elif choice == "pool" and h >= 2 and w >= 2:
        word = draw(st.sampled_from(["maxpool", "avgpool"]))
        stack.lines.append(f"{word} 2")
        stack.shape = (c, h // 2, w // 2)
    elif choice == "act":
        stack.lines.append(draw(st.sampled_from(ACTIVATIONS)))
    elif choice == "dropout":
        stack.lines.append(f"dropout {draw(st.sampled_from(['0', '0.1', '0.5', '0.9']))}")
    elif choice == "batchnorm":
        stack.lines.append("batchnorm")
        stack.params += 4 * c
    elif choice == "residual":
        stack.lines.append(f"residual {{ conv {c} 3x3 pad=same -> relu -> conv {c} 1x1 }}")
        stack.params += (c * c * 9 + c) + (c * c + c)
    elif choice in ("concat", "add"):
        a, b = draw(st.integers(1, 6)), draw(st.integers(1, 6))
        if choice == "add":
            b = a
        stack.lines.append(f"{choice} {{\n  branch {{ conv {a} 1x1 }}\n  branch {{ conv {b} 3x3 pad=same relu }}\n}}")
        stack.params += (a * c + a) + (b * c * 9 + b)
        stack.shape = (a + b if choice == "concat" else a, h, w)
    elif choice == "block":
        filters = draw(st.integers(1, 6))
        name = f"unit{len(stack.blocks)}"
        stack.blocks.append(f"block {name}(f, s=1) {{\n  conv f 3x3 stride=s pad=same -> relu\n}}")
        stride = draw(st.integers(1, 2))
        stack.lines.append(f"{name} {filters}" + (f" s={stride}" if stride > 1 else ""))
        stack.params += filters * c * 9 + filters
        stack.shape = (filters, -(-h // stride), -(-w // stride))


@st.composite
def vector_layer(draw, stack: Stack) -> None:
    (n,) = stack.shape
    choice = draw(st.sampled_from(["dense", "dense", "act", "dropout", "residual", "concat", "repeat"]))
    if choice == "dense":
        units = draw(st.integers(1, 64))
        act = draw(st.sampled_from(["", " relu", " softmax", " sigmoid"]))
        bias = draw(st.booleans())
        stack.lines.append(f"dense {units}{act}" + ("" if bias else " bias=false"))
        stack.params += n * units + (units if bias else 0)
        stack.shape = (units,)
    elif choice == "act":
        stack.lines.append(draw(st.sampled_from(ACTIVATIONS + ["softmax"])))
    elif choice == "dropout":
        stack.lines.append("dropout 0.25")
    elif choice == "residual":
        stack.lines.append(f"residual {{ dense {n} relu }}")
        stack.params += n * n + n
    elif choice == "concat":
        a, b = draw(st.integers(1, 16)), draw(st.integers(1, 16))
        stack.lines.append(f"concat {{ branch {{ dense {a} }}; branch {{ dense {b} tanh }} }}")
        stack.params += (n * a + a) + (n * b + b)
        stack.shape = (a + b,)
    elif choice == "repeat":
        times, units = draw(st.integers(1, 3)), draw(st.integers(1, 16))
        stack.lines.append(f"repeat {times} {{ dense {units} relu -> dropout 0.1 }}")
        stack.params += n * units + units + (times - 1) * (units * units + units)
        stack.shape = (units,)


@st.composite
def sequence_layer(draw, stack: Stack) -> None:
    t, f = stack.shape
    choice = draw(st.sampled_from(["dense", "conv1d", "pool", "lstm", "gru", "act", "dropout", "layernorm"]))
    if choice == "dense":  # per time step, as in Keras
        units = draw(st.integers(1, 16))
        stack.lines.append(f"dense {units} relu")
        stack.params += f * units + units
        stack.shape = (t, units)
    elif choice == "conv1d" and t >= 3:
        filters, kernel = draw(st.integers(1, 8)), draw(st.integers(1, 3))
        stack.lines.append(f"conv1d {filters} {kernel} relu")
        stack.params += filters * f * kernel + filters
        stack.shape = (t - kernel + 1, filters)
    elif choice == "pool" and t >= 2:
        stack.lines.append(draw(st.sampled_from(["maxpool1d 2", "avgpool1d 2"])))
        stack.shape = (t // 2, f)
    elif choice in ("lstm", "gru"):
        units = draw(st.integers(1, 12))
        gates = 4 if choice == "lstm" else 3
        stack.lines.append(f"{choice} {units} return_sequences=true")
        stack.params += gates * (units * f + units * units + 2 * units)  # PyTorch: two bias vectors
        stack.shape = (t, units)
    elif choice == "act":
        stack.lines.append(draw(st.sampled_from(["relu", "tanh", "softmax"])))
    elif choice == "dropout":
        stack.lines.append("dropout 0.2")
    elif choice == "layernorm":
        stack.lines.append("layernorm")
        stack.params += 2 * f


@st.composite
def valid_stacks(draw) -> Stack:
    if draw(st.integers(0, 3)) == 0:
        shape = (draw(st.integers(4, 20)), draw(st.integers(1, 12)))
        stack = Stack(shape)
        head = f"input sequence {shape[0]}x{shape[1]}"
        for _ in range(draw(st.integers(0, 4))):
            draw(sequence_layer(stack))
        stack.lines.append(draw(st.sampled_from(["global_avgpool", "global_maxpool"])))
        stack.shape = (stack.shape[1],)
    elif draw(st.booleans()):
        shape = (draw(st.integers(1, 4)), draw(st.integers(4, 24)), draw(st.integers(4, 24)))
        stack = Stack(shape)
        head = f"input image {'x'.join(map(str, shape))}"
        for _ in range(draw(st.integers(0, 6))):
            draw(image_layer(stack))
        ending = draw(st.sampled_from(["flatten", "global_avgpool", "global_maxpool"]))
        stack.lines.append(ending)
        c, h, w = stack.shape
        stack.shape = (c * h * w,) if ending == "flatten" else (c,)
    else:
        stack = Stack((draw(st.integers(1, 64)),))
        head = f"input vector {stack.shape[0]}"
    for _ in range(draw(st.integers(1, 5))):
        draw(vector_layer(stack))
    joiner = draw(st.sampled_from(["\n", " -> ", "\n-> "]))
    text = "\n".join([*stack.blocks, "model generated", head]) + "\n" + joiner.join(stack.lines) + "\n"
    stack.lines = [text]
    return stack


@SETTINGS
@given(valid_stacks())
def test_valid_stacks_compile_to_the_expected_counts(stack):
    text = stack.lines[0]
    try:
        model = compile_source(text, "generated.spec")
    except SpecError as error:  # pragma: no cover - a failure shows the spec and the error
        raise AssertionError(f"valid spec rejected:\n{text}\n{error.render()}") from None
    summary = model.summary()
    assert summary["total_params"] == stack.params, text
    assert summary["output_shape"] == [None, *stack.shape], text
    assert summary["flops"] >= 0
    model.table()  # renders


# --- random stacks of real words: compile or SpecError --------------------------------

WORDS = sorted(set(REGISTRY.words()) | {"repeat", "branch", "shortcut", "block", "unknownword", "blk"})
ARGUMENTS = st.sampled_from(["0", "1", "2", "3", "-1", "0.5", "1.5", "64", "3x3", "6x5x5", "2x2x2x2", "?x4",
                             "relu", "same", "valid", "true", "x", "\"s\"", "[1, 2]", "l2(0.01)", "1e9", "padding",
                             "sinusoidal",
                             "a", "b"])  # a, b: the parameters of the generated block `blk`
OPTIONS = st.sampled_from(["stride", "pad", "bias", "units", "rate", "axis", "groups", "dilation", "activation",
                           "init", "name", "frozen", "heads", "return_sequences", "vocab", "size", "kernel", "mask",
                           "encoding", "max_length", "causal"])
INPUTS = st.sampled_from(["input image 3x16x16", "input image 1x4x4", "input vector 10", "input sequence ?x8",
                          "input sequence 12x8", "input tokens 20 vocab=50", "input tokens ? vocab=9"])


@st.composite
def arbitrary_layer(draw, depth: int = 0) -> str:
    word = draw(st.sampled_from(WORDS))
    args = draw(st.lists(ARGUMENTS, max_size=3))
    options = draw(st.lists(st.tuples(OPTIONS, ARGUMENTS), max_size=2))
    text = " ".join([word, *args, *(f"{k}={v}" for k, v in options)])
    if depth < 2 and draw(st.integers(0, 4)) == 0:
        inner = draw(st.lists(arbitrary_layer(depth + 1), min_size=0, max_size=3))
        text += " { " + "; ".join(inner) + " }"
    return text


@SETTINGS
@given(INPUTS, st.lists(arbitrary_layer(), min_size=0, max_size=6), st.sampled_from(["\n", " -> "]),
       st.lists(arbitrary_layer(), min_size=0, max_size=3), st.sampled_from(["a, b=2", "a", "", "a, a", "b=1, a"]))
def test_arbitrary_stacks_compile_or_raise_spec_error(head, layers, joiner, block_body, block_params):
    block = f"block blk({block_params}) {{\n" + "\n".join(block_body) + "\n}\n"
    _compile_or_spec_error(block + head + "\n" + joiner.join(layers) + "\n")


# --- mutated real specs: only SpecError ------------------------------------------------

CORPUS = [p.read_text(encoding="utf-8") for p in sorted((ROOT / "specs").glob("*.spec"))]
CORPUS += [p.read_text(encoding="utf-8") for p in sorted((ROOT / "tests/golden/errors").glob("*.spec"))][:20]
ALPHABET = st.sampled_from(list("{}()[]-><=#x?,;.\"'\\\n\t 0123456789abcrsz_@") + ["->", "x3", " {", "}\n"])


@st.composite
def mutated(draw) -> str:
    text = draw(st.sampled_from(CORPUS))
    for _ in range(draw(st.integers(1, 6))):
        position = draw(st.integers(0, len(text)))
        action = draw(st.sampled_from(["insert", "delete", "replace", "cut"]))
        if action == "insert":
            text = text[:position] + draw(ALPHABET) + text[position:]
        elif action == "delete":
            text = text[:position] + text[position + 1:]
        elif action == "replace":
            text = text[:position] + draw(ALPHABET) + text[position + 1:]
        else:
            text = text[:position]
    return text


# pydantic's own wording and its labels for union alternatives: a diagnostic that shows
# one was not translated (elaboration words every error from its type and context)
PYDANTIC_WORDING = ("Input should", "Value error", "Field required", "Extra inputs", "after validation",
                    "constrained-", "function-", "literal[", "tuple[")


def _compile_or_spec_error(text: str) -> None:
    try:
        model = compile_source(text, "fuzz.spec")
    except SpecError as error:
        rendered = error.render()
        assert rendered and "error:" in rendered
        assert error.diagnostics
        for diagnostic in error.diagnostics:
            assert not any(words in diagnostic.message for words in PYDANTIC_WORDING), diagnostic.message
        return
    model.summary()
    model.table()


@SETTINGS
@given(mutated())
def test_mutated_specs_yield_only_spec_errors(text):
    _compile_or_spec_error(text)


@SETTINGS
@given(st.text(alphabet=st.characters(codec="utf-8", exclude_categories=["Cs"]), max_size=200))
def test_random_text_yields_only_spec_errors(text):
    _compile_or_spec_error(text)
