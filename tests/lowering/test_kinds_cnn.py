"""The CNN kinds of issue 10: transposed convolutions, upsample, pad, crop, slice,
channel_shuffle, the elementwise merges (multiply, maximum, minimum, average, and add)
with broadcasting, hardswish, mish, identity and global pooling that keeps its axes.

Each is checked against PyTorch computing the same thing directly (given the same
weights), for its shapes and counts, and for the errors users meet; then the axis rule,
"did you mean" and an ONNX export of all of them together.
"""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

import spec_compiler
from spec_compiler import compile_source
from spec_compiler.errors import SpecError, did_you_mean, edit_distance
from spec_compiler.layers import REGISTRY


def compiled(source: str):
    return compile_source(source, "t.spec")


def run(source: str, x: torch.Tensor, seed: int = 0):
    """(built module, its output on x) for a spec."""
    module = compiled(source).build(seed=seed).eval()
    with torch.no_grad():
        return module, module(x)


def spec_error(source: str):
    with pytest.raises(SpecError) as caught:
        compiled(source)
    return caught.value.diagnostics[0]


def only_layer(module: torch.nn.Module) -> torch.nn.Module:
    return next(iter(module.children()))


# --- conv_transpose ----------------------------------------------------------------------

@pytest.mark.parametrize("options, torch_args", [
    ("4x4 stride=2 pad=1", dict(kernel_size=4, stride=2, padding=1)),
    ("3x3 stride=2 pad=1 output_padding=1", dict(kernel_size=3, stride=2, padding=1, output_padding=1)),
    ("3x5 stride=2x1 pad=0x2 dilation=2 groups=2 bias=false",
     dict(kernel_size=(3, 5), stride=(2, 1), padding=(0, 2), dilation=2, groups=2, bias=False)),
    ("2x2 stride=2", dict(kernel_size=2, stride=2)),
])
def test_conv_transpose_equals_pytorch(options, torch_args):
    x = torch.randn(2, 4, 5, 7)
    module, y = run(f"input image 4x5x7\nconv_transpose 6 {options}", x)
    reference = torch.nn.ConvTranspose2d(4, 6, **torch_args)
    reference.load_state_dict(only_layer(module).state_dict())
    torch.testing.assert_close(y, reference(x), atol=1e-6, rtol=1e-5)
    model = compiled(f"input image 4x5x7\nconv_transpose 6 {options}")
    assert model.summary()["total_params"] == sum(p.numel() for p in reference.parameters())
    assert model.info.output.dims == tuple(y.shape[1:])


def test_conv_transpose1d_equals_pytorch_on_a_sequence():
    x = torch.randn(2, 9, 4)  # (N, T, F)
    module, y = run("input sequence ?x4\nconv_transpose1d 5 4 stride=2 pad=1", x)
    reference = torch.nn.ConvTranspose1d(4, 5, 4, stride=2, padding=1)
    reference.load_state_dict(only_layer(module).state_dict())
    torch.testing.assert_close(y, reference(x.transpose(1, 2)).transpose(1, 2), atol=1e-6, rtol=1e-5)
    assert tuple(y.shape) == (2, 18, 5)


@pytest.mark.parametrize("kernel, stride, size", [(k, s, n) for k in (1, 2, 3, 4, 5) for s in (1, 2, 3)
                                                    for n in (4, 5)])
def test_same_transpose_is_the_adjoint_of_the_same_conv(kernel, stride, size):
    """Keras' `same` for a transposed conv gives size * stride and is the transpose (the
    gradient) of a `same` conv on that size: <conv(a), b> = <a, conv_transpose(b)>."""
    conv, _ = run(f"input image 3x{size * stride}x{size * stride}\nconv 2 {kernel}x{kernel} stride={stride} "
                  f"pad=same bias=false", torch.zeros(1, 3, size * stride, size * stride))
    model = compiled(f"input image 2x{size}x{size}\nconv_transpose 3 {kernel}x{kernel} stride={stride} pad=same "
                     "bias=false")
    assert model.info.output.dims == (3, size * stride, size * stride)
    transpose = model.build().eval()
    only_layer(transpose).weight.data.copy_(only_layer(conv).weight.data)  # (2, 3, k, k) in both layouts
    a, b = torch.randn(1, 3, size * stride, size * stride), torch.randn(1, 2, size, size)
    with torch.no_grad():
        forward, backward = (conv(a) * b).sum(), (a * transpose(b)).sum()
    torch.testing.assert_close(forward, backward, atol=1e-4, rtol=1e-5)


def test_conv_transpose_errors():
    assert spec_error("input image 4x5x5\nconv_transpose 6 3x3 stride=2 output_padding=2").message == (
        "conv_transpose output_padding must be smaller than the stride or the dilation, got 2")
    assert "leave output_padding out" in spec_error(
        "input image 4x5x5\nconv_transpose 6 3x3 stride=2 pad=same output_padding=1").message
    assert spec_error("input image 4x2x2\nconv_transpose 6 3x3 pad=3").message == (
        "conv_transpose pad=3 is too large for its input 4x2x2: the height would be -2 (from input image at line 1)")
    assert did_you_mean("conv_transpse", REGISTRY.words()) == "did you mean `conv_transpose`?"


# --- upsample, pad, crop -------------------------------------------------------------------

@pytest.mark.parametrize("line, reference", [
    ("upsample 2", lambda x: F.interpolate(x, scale_factor=2, mode="nearest")),
    ("upsample 2x3", lambda x: F.interpolate(x, scale_factor=(2, 3), mode="nearest")),
    ("upsample 2 mode=bilinear", lambda x: F.interpolate(x, scale_factor=2, mode="bilinear")),
    ("upsample 2 mode=bilinear align_corners=true",
     lambda x: F.interpolate(x, scale_factor=2, mode="bilinear", align_corners=True)),
    ("upsample size=9x11 mode=bilinear", lambda x: F.interpolate(x, size=(9, 11), mode="bilinear")),
    ("pad 1", lambda x: F.pad(x, [1, 1, 1, 1])),
    ("pad 1x2 value=-1", lambda x: F.pad(x, [2, 2, 1, 1], value=-1.0)),
    ("pad [0, 1, 2, 3] mode=reflect", lambda x: F.pad(x, [2, 3, 0, 1], mode="reflect")),
    ("pad 2 mode=replicate", lambda x: F.pad(x, [2, 2, 2, 2], mode="replicate")),
    ("crop 1", lambda x: x[:, :, 1:-1, 1:-1]),
    ("crop [0, 1, 2, 0]", lambda x: x[:, :, 0:-1, 2:]),
    ("crop size=3x2", lambda x: x[:, :, 1:4, 2:4]),
])
def test_resizing_equals_pytorch_on_an_image(line, reference):
    x = torch.randn(2, 3, 5, 6)
    _, y = run(f"input image 3x5x6\n{line}", x)
    torch.testing.assert_close(y, reference(x))
    assert compiled(f"input image 3x5x6\n{line}").info.output.dims == tuple(y.shape[1:])


@pytest.mark.parametrize("line, reference", [
    ("upsample 3", lambda x: x.repeat_interleave(3, dim=1)),
    ("upsample 2 mode=linear", lambda x: F.interpolate(x.transpose(1, 2), scale_factor=2.0,
                                                       mode="linear").transpose(1, 2)),
    ("pad [1, 2]", lambda x: F.pad(x, [0, 0, 1, 2])),
    ("crop 1", lambda x: x[:, 1:-1]),
])
def test_resizing_acts_on_the_time_axis_of_a_sequence(line, reference):
    x = torch.randn(2, 7, 4)
    _, y = run(f"input sequence ?x4\n{line}", x)
    torch.testing.assert_close(y, reference(x))


def test_resizing_errors():
    assert spec_error("input image 3x8x8\nupsample 2 size=16x16").message == (
        "upsample takes a factor or a size=, not both")
    assert spec_error("input image 3x8x8\nupsample 2 mode=linear").hint == "use mode=nearest or mode=bilinear"
    assert spec_error("input vector 8\nupsample 2").message == (
        "upsample expects an image CxHxW or a sequence TxF, got 8 (a vector) (from input vector at line 1)")
    error = spec_error("input image 3x8x8\npad [1, 2, 3]")
    assert error.message == "pad needs 1, 2 or 4 amounts, got 3 (1x2x3)"
    assert error.hint == "one for every side, one per axis, or two per axis: [top, bottom, left, right]"
    assert "smaller than the size they mirror" in spec_error("input image 3x4x4\npad 4 mode=reflect").message
    assert spec_error("input image 3x4x4\ncrop 2").message == (
        "crop of 2 + 2 leaves nothing of axis 1 of 3x4x4 (from input image at line 1)")
    assert spec_error("input image 3x4x4\ncrop size=5x4").message == (
        "crop size 5x4 is larger than its input 3x4x4 (from input image at line 1)")
    assert "one of them" in spec_error("input image 3x4x4\ncrop").message


# --- slice and channel_shuffle ----------------------------------------------------------------

@pytest.mark.parametrize("source, reference", [
    ("input image 6x3x3\nslice 1 4", lambda x: x[:, 1:4]),
    ("input image 6x3x3\nslice start=-2", lambda x: x[:, -2:]),
    ("input image 6x3x3\nslice end=1 axis=2", lambda x: x[:, :, :, :1]),
    ("input sequence 5x6\nslice 2", lambda x: x[:, :, 2:]),
    ("input sequence 5x6\nslice 1 -1 axis=0", lambda x: x[:, 1:-1]),
])
def test_slice_keeps_a_range_along_an_axis(source, reference):
    x = torch.randn(2, *compiled(source).ir.input.type.dims)
    _, y = run(source, x)
    torch.testing.assert_close(y, reference(x))


def test_channel_split_and_concat_give_the_input_back():
    x = torch.randn(2, 6, 3, 3)
    _, y = run("input image 6x3x3\nconcat { branch { slice end=2 }; branch { slice start=2 } }", x)
    torch.testing.assert_close(y, x)


def test_channel_shuffle_equals_pytorch():
    x = torch.randn(2, 12, 3, 4)
    _, y = run("input image 12x3x4\nchannel_shuffle 3", x)
    torch.testing.assert_close(y, torch.nn.ChannelShuffle(3)(x))


def test_slice_and_shuffle_errors():
    assert spec_error("input image 6x3x3\nslice 4 2").message == (
        "slice 4 to 2 of axis 0 (size 6) of 6x3x3 is empty (from input image at line 1)")
    assert spec_error("input sequence ?x6\nslice 1 axis=0").message == (
        "slice along axis 0 of ?x6 (a sequence, TxF) needs its size known (from input sequence at line 1)")
    assert spec_error("input image 6x3x3\nslice 1 axis=3").message == (
        "slice axis 3 is out of range for 6x3x3 (an image, CxHxW) (from input image at line 1)")
    assert spec_error("input image 6x3x3\nchannel_shuffle 4").message == (
        "channel_shuffle groups=4 must divide the 6 channels of 6x3x3 (from input image at line 1)")


# --- merges -------------------------------------------------------------------------------------

SE = """input image 8x5x5
multiply {
  branch { identity }
  branch { global_avgpool keepdims=true -> conv 2 1x1 relu -> conv 8 1x1 sigmoid }
}
"""


def test_multiply_broadcasts_a_squeeze_excitation_gate():
    x = torch.randn(2, 8, 5, 5)
    module, y = run(SE, x)
    gate = module.multiply_1.branch_2
    squeeze, excite = gate.conv2d_1, gate.conv2d_2
    expected = x * torch.sigmoid(excite(torch.relu(squeeze(x.mean((2, 3), keepdim=True)))))
    torch.testing.assert_close(y, expected)
    summary = compiled(SE).summary()
    assert summary["output_shape"] == [None, 8, 5, 5]
    assert summary["total_params"] == (8 * 2 + 2) + (2 * 8 + 8)
    assert [layer["name"] for layer in summary["layers"][0]["children"][0]] == ["multiply_1.branch_1.identity_1"]


@pytest.mark.parametrize("kind, combine", [
    ("add", lambda a, b: a + b), ("multiply", lambda a, b: a * b), ("maximum", torch.maximum),
    ("minimum", torch.minimum), ("average", lambda a, b: (a + b) / 2),
])
def test_elementwise_merges_broadcast(kind, combine):
    source = f"input image 4x3x3\n{kind} {{ branch {{ conv 4 1x1 }}; branch {{ mean 2 keepdims=true }} }}"
    x = torch.randn(2, 4, 3, 3)
    module, y = run(source, x)
    conv = getattr(module, f"{kind}_1").branch_1.conv2d_1
    torch.testing.assert_close(y, combine(conv(x), x.mean(3, keepdim=True)))
    assert compiled(source).info.output.dims == (4, 3, 3)


def test_empty_branch_is_the_identity():
    x = torch.randn(2, 4, 3, 3)
    module, y = run("input image 4x3x3\nadd { branch { }; branch { conv 4 1x1 } }", x)
    torch.testing.assert_close(y, x + module.add_1.branch_2.conv2d_1(x))


def test_identity_keeps_token_ids():
    model = compiled("input tokens 5 vocab=9\nidentity\nembedding 3")
    assert [layer["name"] for layer in model.summary()["layers"]] == ["identity_1", "embedding_1"]


def test_merge_errors_name_the_branch_and_the_axis():
    error = spec_error("input image 4x3x3\nmaximum { branch { conv 4 1x1 }; branch { conv 2 1x1 }; branch { } }")
    assert error.message == ("maximum branches do not broadcast: branch 1 gives 4x3x3, branch 2 gives 2x3x3 "
                             "(axis 0: 4 and 2)")
    error = spec_error("input image 4x3x3\naverage { branch { mean 2 keepdims=true }; branch { }; branch { flatten } }")
    assert error.message == ("average branches give different ranks: branches 1 to 2 give 4x3x3, "
                             "branch 3 gives 36 (a vector)")
    assert error.span.line == 2 and error.span.column == 56  # the caret is on the third branch


# --- activations and global pooling ---------------------------------------------------------------

@pytest.mark.parametrize("word, function", [
    ("hardswish", F.hardswish), ("hard_swish", F.hardswish), ("mish", F.mish), ("hardsigmoid", F.hardsigmoid),
    ("swish", F.silu),  # an alias as a trailing word names its kind (it once raised a KeyError)
])
def test_new_activations_as_layers_and_trailing_words(word, function):
    x = torch.randn(2, 6) * 4
    _, y = run(f"input vector 6\n{word}", x)
    torch.testing.assert_close(y, function(x))
    module, y = run(f"input vector 6\ndense 3 {word}", x)
    torch.testing.assert_close(y, function(module.dense_1(x)))


@pytest.mark.parametrize("source, reference, dims", [
    ("input image 3x4x5\nglobal_avgpool keepdims=true", lambda x: x.mean((2, 3), keepdim=True), (3, 1, 1)),
    ("input image 3x4x5\nglobal_maxpool keepdims=true", lambda x: x.amax((2, 3), keepdim=True), (3, 1, 1)),
    ("input sequence ?x6\nglobal_avgpool keepdims=true", lambda x: x.mean(1, keepdim=True), (1, 6)),
])
def test_global_pooling_keeps_its_axes(source, reference, dims):
    model = compiled(source)
    assert model.info.output.dims == dims
    x = torch.randn(2, *(d if isinstance(d, int) else 7 for d in model.ir.input.type.dims))
    torch.testing.assert_close(run(source, x)[1], reference(x))


# --- one axis rule, close suggestions -----------------------------------------------------------

def test_every_axis_counts_from_zero():
    x = torch.randn(2, 2, 3, 4)
    source = "input image 2x3x4\n{kind} axis=1 {{ branch {{ }}; branch {{ slice end=1 axis=1 }} }}"
    _, y = run(source.format(kind="concat"), x)
    torch.testing.assert_close(y, torch.cat((x, x[:, :, :1]), dim=2))
    _, y = run("input image 2x3x4\npermute 1x2x0", x)
    torch.testing.assert_close(y, x.permute(0, 2, 3, 1))
    error = spec_error("input image 2x3x4\nconcat axis=3 { branch { }; branch { } }")
    assert error.message == "concat axis 3 is out of range for the branches' outputs (2x3x4 (an image, CxHxW))"
    assert error.hint == "axes count from 0 over a sample's 3 axes, the batch excluded (-1 is the last)"


@pytest.mark.parametrize("word, suggestion", [
    ("conv_transpse", "conv_transpose"), ("upsampel", "upsample"), ("deconv2d", "deconv"), ("rellu", "relu"),
    ("batchnrom", "batchnorm"), ("multipy", "multiply"), ("globalavgpool", "global_avgpool"),
    ("hardswhish", "hardswish"), ("gated_dense", None), ("depthwise_transpose", None),
])
def test_did_you_mean_only_for_close_words(word, suggestion):
    """The issue's cases: `conv_transpose` once went to `transpose`, `upsample` to `scale`,
    `deconv` to `dwconv`; a shared tail is not a close match."""
    words = [w for w in REGISTRY.words() if w != word]
    assert did_you_mean(word, words) == (f"did you mean `{suggestion}`?" if suggestion else None)


def test_the_issues_words_are_not_sent_elsewhere_when_missing():
    others = [w for w in REGISTRY.words() if w not in ("conv_transpose", "conv_transpose2d", "conv_transpose1d",
                                                        "upsample", "upsampling", "deconv")]
    assert did_you_mean("conv_transpose", others) is None  # not `transpose`
    assert did_you_mean("upsample", others) is None  # not `scale`


def test_edit_distance_counts_swaps_as_one():
    assert edit_distance("batchnrom", "batchnorm") == 1
    assert edit_distance("img", "image") == 2
    assert edit_distance("conv_transpose", "transpose") == 5
    assert edit_distance("", "abc") == 3 and edit_distance("abc", "abc") == 0


# --- ONNX ---------------------------------------------------------------------------------------

EVERY_NEW_KIND = """\
model every_new_kind
input image 8x6x6
conv_transpose 8 3x3 stride=2 pad=same hardswish
multiply { branch { identity }; branch { global_avgpool keepdims=true -> conv 8 1x1 hard_sigmoid } }
maximum { branch { conv 8 1x1 mish }; branch { } } -> minimum { branch { }; branch { conv 8 1x1 } }
average { branch { pad 1 mode=reflect -> crop 1 }; branch { upsample 2 mode=bilinear -> maxpool 2 } }
add { branch { }; branch { global_maxpool keepdims=true } }
concat { branch { slice end=4 }; branch { slice start=4 -> conv 4 3x3 pad=1 relu } }
channel_shuffle 2
pad [0, 1, 0, 1] -> crop size=12x12 -> upsample 2 -> conv_transpose 4 4x4 stride=2 pad=1
global_avgpool
dense 3 softmax
"""


def test_every_new_kind_exports_to_onnx_with_parity(tmp_path):
    spec = tmp_path / "every_new_kind.spec"
    spec.write_text(EVERY_NEW_KIND)
    model = spec_compiler.load(spec)
    assert model.summary()["output_shape"] == [None, 3]
    report = model.export(tmp_path / "every_new_kind.onnx")
    assert report.max_abs_diff <= 1e-5
