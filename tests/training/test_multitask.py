"""Multi-task training (specs/two_head.spec): one loss per output, targets `y_<name>`,
per-output loss weights and metrics in the logs, run.json and --json; both heads learn the
bundled digits (which digit, and whether it is odd)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

import spec_compiler
from spec_compiler import SpecError, compile_source
from spec_compiler.cli import main
from spec_compiler.errors import UsageError
from spec_compiler.run import RunFolder

ROOT = Path(__file__).resolve().parents[2]
TWO_HEAD = ROOT / "specs" / "two_head.spec"


@pytest.fixture(scope="module")
def digits(tmp_path_factory) -> Path:
    from sklearn.datasets import load_digits

    bunch = load_digits()
    images = (bunch.images / 16.0).astype(np.float32)[:, None]
    labels = bunch.target.astype(np.int64)
    path = tmp_path_factory.mktemp("data") / "digits.npz"
    np.savez(path, x=images, y_digit=labels, y_parity=(labels % 2).astype(np.float32))
    return path


@pytest.fixture(scope="module")
def trained(digits, tmp_path_factory):
    out = tmp_path_factory.mktemp("runs") / "two_head"
    result = CliRunner().invoke(main, ["train", str(TWO_HEAD), "--data", str(digits), "--epochs", "8", "--out",
                                       str(out), "--json"])
    assert result.exit_code == 0, result.output
    return out, json.loads(result.output.strip().splitlines()[-1])


def test_both_heads_learn_the_digit_and_its_parity(trained):
    _, summary = trained
    # chance: 0.1 for the digit, 0.5 for the parity
    assert summary["val_digit_accuracy"] >= 0.85, summary
    assert summary["val_parity_accuracy"] >= 0.85, summary
    assert {"loss", "val_loss", "digit_loss", "parity_loss", "val_digit_loss", "val_parity_loss"} <= set(summary)


def test_the_run_folder_records_each_output_and_exports_both(trained, tmp_path):
    out, summary = trained
    record = RunFolder(out).read_record()
    assert record.status == "completed" and record.final_metrics["val_digit_accuracy"] == summary["val_digit_accuracy"]
    model = spec_compiler.load(TWO_HEAD)
    report = model.export(tmp_path / "two_head.onnx", weights=out)
    assert report.max_abs_diff <= 1e-4 and [o["name"] for o in report.outputs] == ["digit", "parity"]


def test_loss_weights_scale_each_output_s_share(digits, tmp_path):
    spec = TWO_HEAD.read_text(encoding="utf-8") + "train { loss_weight.parity=0 epochs=1 }\n"
    model = compile_source(spec, str(tmp_path / "weighted.spec"))
    result = model.train(data=str(digits), out=str(tmp_path / "run"), progress=False, seed=3)
    # loss is the weighted sum: with the parity's weight 0 it is the digit's loss alone
    assert result.history[0]["loss"] == pytest.approx(result.history[0]["digit_loss"], rel=1e-6)
    assert result.history[0]["parity_loss"] > 0


def test_a_loss_per_output_from_the_train_section(digits, tmp_path):
    spec = TWO_HEAD.read_text(encoding="utf-8") + "train { loss.parity=mse epochs=1 }\n"
    model = compile_source(spec, str(tmp_path / "mse.spec"))
    assert model.ir.train.output_losses["parity"].kind == "mse"
    result = model.train(data=str(digits), out=str(tmp_path / "run"), progress=False)
    assert "val_parity_mae" in result.metrics and "val_digit_accuracy" in result.metrics


def test_mistakes_in_per_output_training(digits, tmp_path):
    spec = TWO_HEAD.read_text(encoding="utf-8")
    with pytest.raises(SpecError, match="has no output `colour`"):
        compile_source(spec + "train { loss.colour=mse }\n", "t.spec").train(data=str(digits), progress=False,
                                                                              out=str(tmp_path / "a"))
    with pytest.raises(SpecError, match="unknown loss `msee`") as caught:
        compile_source(spec + "train { loss.parity=msee }\n", "t.spec")
    assert caught.value.diagnostics[0].span.column == len("train { loss.parity=") + 1  # at the value
    with pytest.raises(SpecError, match="has one output"):
        compile_source("input vector 4\ndense 2 softmax\ntrain { loss.output=mse }\n", "c.spec").train(
            data=str(digits), progress=False, out=str(tmp_path / "b"))
    np.savez(tmp_path / "no_parity.npz", x=np.zeros((4, 1, 8, 8), np.float32), y_digit=np.zeros(4, np.int64))
    with pytest.raises(SpecError, match="has no array y_parity"):
        spec_compiler.load(TWO_HEAD).train(data=str(tmp_path / "no_parity.npz"), progress=False,
                                           out=str(tmp_path / "c"))
    with pytest.raises(UsageError, match="trains on --data FILE.npz holding x, y_digit, y_parity"):
        spec_compiler.load(TWO_HEAD).train(progress=False, out=str(tmp_path / "d"))


def test_evaluate_gives_the_run_s_validation_metrics_per_output(trained):
    out, summary = trained
    scores = spec_compiler.load(TWO_HEAD).evaluate(out)
    assert scores["digit_accuracy"] == pytest.approx(summary["val_digit_accuracy"], rel=1e-6)
    assert scores["parity_accuracy"] == pytest.approx(summary["val_parity_accuracy"], rel=1e-6)


def test_options_not_yet_taken_by_a_graph_are_refused(digits, tmp_path):
    for option, value in (("augment", ["flip"]), ("normalize", "standard"), ("workers", 2),
                          ("validation_data", str(digits))):
        with pytest.raises(UsageError, match=f"{option}: not yet for a graph spec"):
            spec_compiler.load(TWO_HEAD).train(data=str(digits), progress=False, out=str(tmp_path / option),
                                               **{option: value})
        assert not (tmp_path / option).exists()


def test_metrics_per_output(digits, tmp_path):
    """`metrics.NAME=` measures that output with a chain's metrics, in place of its default one;
    the other keeps its default; evaluate reports the same figures."""
    spec = TWO_HEAD.read_text(encoding="utf-8") + "train { metrics.digit=[accuracy, top_k_accuracy(k=3)] epochs=2 }\n"
    (tmp_path / "m.spec").write_text(spec)
    result = spec_compiler.load(tmp_path / "m.spec").train(data=str(digits), out=str(tmp_path / "run"), progress=False)
    assert {"digit_accuracy", "digit_top_k_accuracy", "parity_accuracy", "val_digit_top_k_accuracy"} <= set(
        result.metrics)
    assert result.metrics["val_digit_top_k_accuracy"] >= result.metrics["val_digit_accuracy"]
    scores = spec_compiler.load(tmp_path / "m.spec").evaluate(tmp_path / "run")
    assert scores["digit_top_k_accuracy"] == pytest.approx(result.metrics["val_digit_top_k_accuracy"], rel=1e-6)
    with pytest.raises(SpecError, match="`metrics=` sets one output's metrics, and two_head has 2 outputs"):
        spec_compiler.load(TWO_HEAD).train(data=str(digits), metrics=["accuracy"], out=str(tmp_path / "a"),
                                           progress=False)
    with pytest.raises(SpecError, match="`metrics.colour=`: two_head has no output `colour`"):
        compile_source(TWO_HEAD.read_text(encoding="utf-8") + "train { metrics.colour=[mae] }\n", "t.spec").train(
            data=str(digits), out=str(tmp_path / "b"), progress=False)
    with pytest.raises(SpecError, match="unknown metric `acuracy`") as caught:
        compile_source(TWO_HEAD.read_text(encoding="utf-8") + "train { metrics.digit=[acuracy] }\n", "t.spec")
    assert caught.value.diagnostics[0].span.column == len("train { metrics.digit=") + 1


def test_a_graph_of_two_inputs_trains_from_arrays_named_after_them(tmp_path):
    """specs/siamese.spec: `left` and `right` in the .npz, its one output's target as `y`."""
    rng = np.random.default_rng(0)
    left, right = (rng.random((64, 1, 28, 28), dtype=np.float32) for _ in range(2))
    same = rng.integers(0, 2, 64)
    right[same == 1] = left[same == 1]  # a pair is "the same" when both images are
    np.savez(tmp_path / "pairs.npz", left=left, right=right, y=same.astype(np.float32))
    model = spec_compiler.load(ROOT / "specs" / "siamese.spec")
    result = model.train(data=str(tmp_path / "pairs.npz"), epochs=2, out=str(tmp_path / "run"), progress=False)
    assert [entry["epoch"] for entry in result.history] == [1, 2]
    assert {"similarity_loss", "similarity_accuracy", "val_similarity_accuracy"} <= set(result.metrics)
    assert RunFolder(tmp_path / "run").read_record().data.n_train == 51  # 64 less the validation fifth
    np.savez(tmp_path / "left_only.npz", left=left, y=same.astype(np.float32))
    with pytest.raises(SpecError, match="has no array right"):
        model.train(data=str(tmp_path / "left_only.npz"), out=str(tmp_path / "run2"), progress=False)


UNET = """model tiny_unet
input image 1x8x8
e1 = conv 4 3x3 pad=same relu
e2 = e1 -> maxpool 2 -> conv 8 3x3 pad=same relu
up = e2 -> conv_transpose 4 2x2 stride=2
mask = concat up e1 axis=0 -> conv 3 1x1 -> softmax 0
"""


def test_a_graph_with_a_softmax_over_the_channels_learns_a_class_per_pixel(tmp_path):
    """A U-Net written with named tensors (skip by name) is a graph of one output: its loss is the
    cross-entropy at every pixel, along the softmax's axis, and its accuracy that of the pixels."""
    rng = np.random.default_rng(0)
    x = rng.random((120, 1, 8, 8), dtype=np.float32)
    y = (x[:, 0] > 0.5).astype(np.int64) + (x[:, 0] > 0.8)  # a class per pixel from its value
    np.savez(tmp_path / "seg.npz", x=x, y=y)
    result = compile_source(UNET, "unet.spec").train(data=str(tmp_path / "seg.npz"), epochs=20, batch=16, lr=0.02,
                                                     out=str(tmp_path / "run"), progress=False)
    assert result.metrics["val_mask_accuracy"] > 0.8  # 3 classes; the largest holds half the pixels
    iou = compile_source(UNET + "train { metrics=[mean_iou, pixel_accuracy] }\n", "unet.spec").train(
        data=str(tmp_path / "seg.npz"), epochs=20, batch=16, lr=0.02, out=str(tmp_path / "iou"), progress=False)
    assert iou.metrics["val_mask_pixel_accuracy"] == pytest.approx(result.metrics["val_mask_accuracy"], abs=1e-9)
    assert 0.5 < iou.metrics["val_mask_mean_iou"] < iou.metrics["val_mask_pixel_accuracy"]
    wrong_axis = UNET.replace("softmax 0", "softmax")  # along the width
    with pytest.raises(SpecError, match=r"the targets of `mask` hold 8x8 class ids per sample; it gives 3x8x8 with "
                                        r"its softmax along axis 2, so it takes 3x8 per sample"):
        compile_source(wrong_axis, "unet.spec").train(data=str(tmp_path / "seg.npz"), out=str(tmp_path / "bad"),
                                                      progress=False)


def test_the_loss_of_a_graph_of_one_output_is_the_section_s_loss(tmp_path):
    """`loss=` is what a graph of one output trains with (dice over a softmax's classes, scored
    by accuracy); targets that do not fit it are named; a model of two outputs needs `loss.NAME=`."""
    rng = np.random.default_rng(0)
    x = rng.random((16, 1, 8, 8), dtype=np.float32)
    np.savez(tmp_path / "seg.npz", x=x, y=(x[:, 0] > 0.5).astype(np.int64))
    dice = compile_source(UNET + "train { loss=dice }\n", "unet.spec")
    result = dice.train(data=str(tmp_path / "seg.npz"), epochs=1, out=str(tmp_path / "dice"), progress=False)
    assert RunFolder(tmp_path / "dice").read_record().config["loss"]["kind"] == "dice"
    assert 0.0 <= result.metrics["mask_loss"] <= 1.0 and "val_mask_accuracy" in result.metrics
    mse = compile_source(UNET + "train { loss=mse }\n", "unet.spec")
    with pytest.raises(SpecError, match=r"the targets of `mask` hold 8x8 per sample; output `mask` gives 3x8x8 "
                                        r"values") as error:
        mse.train(data=str(tmp_path / "seg.npz"), out=str(tmp_path / "mse"), progress=False)
    assert "`loss=sparse_categorical_crossentropy`" in error.value.diagnostics[0].hint
    with pytest.raises(SpecError, match="`loss=` sets one loss, and two_head has 2 outputs"):
        compile_source(TWO_HEAD.read_text(encoding="utf-8") + "train { loss=mse }\n", "t.spec").train(
            data=str(tmp_path / "seg.npz"), out=str(tmp_path / "two"), progress=False)
