"""Training tasks (spec_compiler/training/tasks.py): inference from the output and the data,
the errors that refuse a mismatch, the task metrics and losses against references, the new
readers (corpus, images with masks, images alone), and the runtime's pictures and generation.

Tiny data, at most an epoch or two: the whole file runs in seconds. The quality each task
reaches is test_task_quality.py's.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from click.testing import CliRunner
from PIL import Image
from sklearn.metrics import f1_score, jaccard_score

import spec_compiler
from spec_compiler import runtime
from spec_compiler.cli import main
from spec_compiler.errors import SpecError
from spec_compiler.predict import picture_paths
from spec_compiler.training import data as data_mod
from spec_compiler.training.corpus_reader import recode
from spec_compiler.training.options.losses import Dice, Head, SparseCategoricalCrossentropy
from spec_compiler.training.options.metrics import ClassesLast, ClassHits, ClassOverlap, F1Score, Perplexity
from spec_compiler.training.readers import Raw
from spec_compiler.training.target import Target
from spec_compiler.training.tasks import infer_task

SEGMENTER = "input image 1x8x8\nconv 4 3x3 pad=same relu\nconv 3 1x1 -> softmax 0\n"
AUTOENCODER = "input image 1x8x8\nflatten\ndense 8 relu\ndense 64 sigmoid\nreshape 1x8x8\n"
CHAR_LM = "input tokens 8 vocab=16\nembedding 4\ngru 8 return_sequences=true\ndense 16 softmax\n"
CLASSIFIER = "input image 1x8x8\nflatten\ndense 3 softmax\n"


def load(tmp_path: Path, text: str, name: str = "m.spec") -> spec_compiler.Model:
    (tmp_path / name).write_text(text)
    return spec_compiler.load(tmp_path / name)


def train(tmp_path: Path, text: str, data: str, **options):
    options.setdefault("epochs", 1)
    return load(tmp_path, text).train(data=data, out=str(tmp_path / "run"), overwrite=True, progress=False, **options)


def refused(tmp_path: Path, text: str, data: str, **options) -> str:
    with pytest.raises(SpecError) as caught:
        train(tmp_path, text, data, **options)
    return caught.value.render()


def target(output_dims: tuple, final: str | None, axis: int = -1, input_dims: tuple = (1, 8, 8)) -> Target:
    dtype = "int" if len(input_dims) == 1 else "float"
    return Target("tokens" if dtype == "int" else "image", input_dims, dtype, 16 if dtype == "int" else None,
                  output_dims, final, axis)


# --- inference ------------------------------------------------------------------------

@pytest.mark.parametrize("output, final, axis, y, kind", [
    ((3, 8, 8), "softmax", -3, np.zeros((4, 8, 8)), "segmentation"),
    ((1, 8, 8), "sigmoid", -1, None, "reconstruction"),
    ((8, 5), "softmax", -1, np.zeros((4, 8)), "sequence_labelling"),
    ((5,), "sigmoid", -1, np.zeros((4, 5)), "multilabel"),
    ((1,), "sigmoid", -1, np.zeros(4), "classification"),
    ((5,), "softmax", -1, np.zeros((4, 5)), "classification"),
    ((5,), None, -1, np.zeros((4, 5)), "regression"),
])
def test_the_task_follows_from_the_output_and_the_labels(output, final, axis, y, kind):
    raw = Raw(np.zeros((4, 1, 8, 8)), y, "data", "array")
    assert infer_task(target(output, final, axis), raw).kind == kind


def test_a_corpus_is_a_language_model():
    raw = Raw(np.zeros((4, 8), np.int64), np.zeros((4, 8), np.int64), "c.txt", "corpus", ["a"])
    assert infer_task(target((8, 16), "softmax", input_dims=(8,)), raw).kind == "language_model"


def test_the_final_softmax_axis_is_read_from_the_spec(tmp_path):
    assert Target.of(load(tmp_path, SEGMENTER)).softmax_axis == -3
    assert Target.of(load(tmp_path, "input image 1x8x8\nconv 3 1x1 softmax\n")).softmax_axis == -1


def test_run_json_records_the_inferred_task_and_evaluate_uses_it(tmp_path):
    rng = np.random.default_rng(0)
    np.savez(tmp_path / "seg.npz", x=rng.random((24, 1, 8, 8), dtype=np.float32), y=rng.integers(0, 3, (24, 8, 8)))
    result = train(tmp_path, SEGMENTER, str(tmp_path / "seg.npz"))
    record = json.loads((Path(result.run_dir) / "run.json").read_text())
    assert record["config"]["task"] == {"kind": "segmentation"}
    assert record["config"]["loss"]["kind"] == "sparse_categorical_crossentropy"
    evaluated = load(tmp_path, SEGMENTER).evaluate(result.run_dir)
    assert evaluated["mean_iou"] == pytest.approx(result.metrics["val_mean_iou"])
    assert evaluated["pixel_accuracy"] == pytest.approx(result.metrics["val_pixel_accuracy"])


# --- what a task refuses -----------------------------------------------------------------

def test_a_segmentation_softmax_must_run_over_the_classes(tmp_path):
    np.savez(tmp_path / "seg.npz", x=np.zeros((8, 1, 8, 8), np.float32), y=np.zeros((8, 8, 8), np.int64))
    message = refused(tmp_path, "input image 1x8x8\nconv 3 1x1 softmax\n", str(tmp_path / "seg.npz"))
    assert "runs along axis 2" in message and "softmax 0" in message
    message = refused(tmp_path, SEGMENTER, str(tmp_path / "seg.npz"), augment="[flip]")
    assert "augment=flip" in message and "noise" in message


def test_masks_must_have_the_outputs_size(tmp_path):
    np.savez(tmp_path / "seg.npz", x=np.zeros((8, 1, 8, 8), np.float32), y=np.zeros((8, 4, 8), np.int64))
    assert "the masks are 4x8 per sample" in refused(tmp_path, SEGMENTER, str(tmp_path / "seg.npz"))


def test_inputs_alone_need_an_output_shaped_like_them(tmp_path):
    np.save(tmp_path / "x.npy", np.zeros((8, 1, 8, 8), np.float32))
    message = refused(tmp_path, CLASSIFIER, str(tmp_path / "x.npy"))
    assert "holds inputs only (no labels)" in message and "y.npy" in message
    message = refused(tmp_path, CLASSIFIER, str(tmp_path / "x.npy"), task="reconstruction")
    assert "shaped like the input (1x8x8); this one is 3" in message


def test_a_language_model_needs_every_step_and_the_corpus_fits_the_vocabulary(tmp_path):
    (tmp_path / "c.txt").write_text("hello world " * 20)
    message = refused(tmp_path, CHAR_LM.replace(" return_sequences=true", ""), str(tmp_path / "c.txt"))
    assert "TxK output" in message and "return_sequences=true" in message
    message = refused(tmp_path, CHAR_LM.replace("vocab=16", "vocab=4").replace("dense 16", "dense 4"),
                      str(tmp_path / "c.txt"))
    assert "8 different characters, more than the input's vocab=4" in message
    message = refused(tmp_path, "input vector 4\ndense 2 softmax\n", str(tmp_path / "c.txt"))
    assert "a text corpus trains a language model" in message


def test_the_task_key_is_checked_at_compile_time(tmp_path):
    with pytest.raises(SpecError, match="unknown task `bogus`"):
        load(tmp_path, CLASSIFIER + "train { task=bogus }\n")
    with pytest.raises(SpecError, match="pad must be greater than or equal to 0"):
        load(tmp_path, CLASSIFIER + "train { task=sequence_labelling(pad=-1) }\n")
    assert load(tmp_path, CLASSIFIER + "train { task=tagging(pad=none) }\n").ir.train.task.pad is None


# --- metrics and losses ------------------------------------------------------------------

def test_mean_iou_and_pixel_accuracy_read_the_class_axis():
    rng = np.random.default_rng(0)
    out = torch.from_numpy(rng.random((6, 3, 5, 5)))  # N, K, H, W
    y = torch.from_numpy(rng.integers(0, 3, (6, 5, 5)))
    pred = out.argmax(dim=1)
    overlap = ClassesLast(ClassOverlap("mean_iou", 3), -3)
    sums = torch.stack([torch.as_tensor(v, dtype=torch.float64) for v in overlap.stats(out, y)])
    assert overlap.value(sums) == pytest.approx(jaccard_score(y.reshape(-1), pred.reshape(-1), average="macro"))
    hits = ClassesLast(ClassHits("pixel_accuracy"), -3)
    right, total = hits.stats(out, y)
    assert float(right) / float(total) == pytest.approx(float((pred == y).double().mean()))


def test_f1_micro_and_macro_match_scikit_learn():
    rng = np.random.default_rng(1)
    out, y = torch.from_numpy(rng.random((40, 4))), torch.from_numpy((rng.random((40, 4)) > 0.5).astype(np.float32))
    for measure, average in ((F1Score("f1", 0.5), "micro"), (F1Score("macro_f1", 0.5, classes=4), "macro")):
        sums = torch.stack([torch.as_tensor(v, dtype=torch.float64) for v in measure.stats(out, y)])
        assert measure.value(sums) == pytest.approx(f1_score(y.numpy(), (out >= 0.5).numpy(), average=average))


def test_padding_counts_in_neither_the_loss_nor_the_metrics():
    rng = np.random.default_rng(2)
    z = torch.from_numpy(rng.normal(size=(3, 6, 4))).float()
    y = torch.from_numpy(rng.integers(1, 4, (3, 6)))
    y[:, :2] = 0  # padding in front
    loss = SparseCategoricalCrossentropy().function(Head.of(SparseCategoricalCrossentropy(), "softmax", ignore=0))
    changed = z.clone()
    changed[:, :2] = torch.from_numpy(rng.normal(size=(3, 2, 4))).float()
    assert torch.allclose(loss(z, y), loss(changed, y))
    probabilities = torch.softmax(z, -1)
    right, counted = ClassHits("accuracy", ignore=0).stats(probabilities, y)
    assert int(counted) == 12
    nll, steps = Perplexity("perplexity", ignore=0).stats(probabilities, y)
    assert float(nll) / float(steps) == pytest.approx(float(loss(z, y)), rel=1e-5)


def test_dice_is_near_zero_for_a_perfect_mask_and_adds_cross_entropy():
    y = torch.randint(0, 3, (2, 6, 6))
    perfect = torch.nn.functional.one_hot(y, 3).movedim(-1, 1).float() * 40  # logits, classes at dim 1
    head = Head.of(Dice(), "softmax", class_dim=-3)
    assert float(Dice().function(head)(perfect, y)) < 1e-3
    uniform = torch.zeros(2, 3, 6, 6)
    assert float(Dice(crossentropy=1.0).function(head)(uniform, y)) == pytest.approx(
        float(Dice().function(head)(uniform, y)) + np.log(3), rel=1e-4)


# --- readers ------------------------------------------------------------------------------

def test_images_with_masks_train_a_segmentation(tmp_path):
    folder = tmp_path / "shapes"
    (folder / "images").mkdir(parents=True)
    (folder / "masks").mkdir()
    rng = np.random.default_rng(3)
    for i in range(6):
        mask = rng.integers(0, 3, (16, 16)).astype(np.uint8)
        Image.fromarray(mask * 100).save(folder / "images" / f"s{i}.jpg")
        Image.fromarray(mask).save(folder / "masks" / f"s{i}.png")
    raw = data_mod.load_raw(str(folder), Target.of(load(tmp_path, SEGMENTER)))
    assert raw.x.shape == (6, 1, 8, 8) and raw.y.shape == (6, 8, 8) and set(np.unique(raw.y)) <= {0, 1, 2}
    result = train(tmp_path, SEGMENTER, str(folder))
    assert "val_mean_iou" in result.metrics
    (folder / "masks" / "s5.png").unlink()
    assert "has no mask" in refused(tmp_path, SEGMENTER, str(folder))
    Image.fromarray(np.zeros((16, 16, 3), np.uint8)).save(folder / "masks" / "s5.png")
    assert "a mask holds one class id per pixel; this image is RGB" in refused(tmp_path, SEGMENTER, str(folder))


def test_images_alone_and_an_npz_without_labels_train_a_reconstruction(tmp_path):
    (tmp_path / "pictures").mkdir()
    for i in range(6):
        Image.fromarray((np.random.default_rng(i).random((8, 8)) * 255).astype(np.uint8)).save(
            tmp_path / "pictures" / f"p{i}.png")
    result = train(tmp_path, AUTOENCODER, str(tmp_path / "pictures"))
    assert set(result.metrics) >= {"mse", "val_mse"}
    np.savez(tmp_path / "x.npz", x=np.random.default_rng(0).random((10, 1, 8, 8), dtype=np.float32))
    result = train(tmp_path, AUTOENCODER, str(tmp_path / "x.npz"), loss="binary_crossentropy")
    assert json.loads((Path(result.run_dir) / "run.json").read_text())["config"]["task"]["kind"] == "reconstruction"


def test_a_corpus_becomes_windows_of_next_characters(tmp_path):
    (tmp_path / "c.txt").write_text("abcabcabcabcabcabcab")
    raw = data_mod.load_raw(str(tmp_path / "c.txt"), Target.of(load(tmp_path, CHAR_LM)))
    assert raw.labels == ["a", "b", "c"] and raw.x.shape == (2, 8)
    assert np.array_equal(raw.x[0], [0, 1, 2, 0, 1, 2, 0, 1]) and np.array_equal(raw.y[0], [1, 2, 0, 1, 2, 0, 1, 2])
    again = recode(raw, ["c", "b", "a", "d"])
    assert again.labels == ["c", "b", "a", "d"] and np.array_equal(again.x[0][:3], [2, 1, 0])
    with pytest.raises(SpecError, match=r"'c' \(character 2\) starts no token of the vocabulary"):
        recode(raw, ["a", "b"])


def test_a_tokenizer_file_beside_the_corpus_is_its_vocabulary(tmp_path):
    (tmp_path / "c.txt").write_text("the cat. " * 12)
    (tmp_path / "c.tokens.json").write_text(json.dumps(["the", " ", "c", "a", "t", "."]))
    raw = data_mod.load_raw(str(tmp_path / "c.txt"), Target.of(load(tmp_path, CHAR_LM)))
    assert raw.labels == ["the", " ", "c", "a", "t", "."]
    assert np.array_equal(raw.x[0], [0, 1, 2, 3, 4, 5, 1, 0]) and np.array_equal(raw.y[0][:3], [1, 2, 3])
    result = train(tmp_path, CHAR_LM, str(tmp_path / "c.txt"))
    assert json.loads((Path(result.run_dir) / "preprocess.json").read_text())["labels"][0] == "the"
    (tmp_path / "c.tokens.json").write_text(json.dumps(["the", " "]))
    assert "'c' (character 4) starts no token" in refused(tmp_path, CHAR_LM, str(tmp_path / "c.txt"))
    (tmp_path / "c.tokens.json").write_text(json.dumps(["the", "the"]))
    assert "lists a token twice" in refused(tmp_path, CHAR_LM, str(tmp_path / "c.txt"))


def test_a_validation_text_is_numbered_as_the_training_texts(tmp_path):
    (tmp_path / "train.txt").write_text("the cat sat on the mat. " * 10)
    (tmp_path / "val.txt").write_text("the mat sat on the cat. " * 4)
    result = train(tmp_path, CHAR_LM, str(tmp_path / "train.txt"), validation_data=str(tmp_path / "val.txt"))
    assert result.metrics["val_perplexity"] > 1
    (tmp_path / "val.txt").write_text("the cat! " * 8)
    assert "'!' (character 7) starts no token" in refused(tmp_path, CHAR_LM, str(tmp_path / "train.txt"),
                                                validation_data=str(tmp_path / "val.txt"))


# --- the runtime ---------------------------------------------------------------------------

def test_prompts_are_encoded_longest_token_first():
    assert runtime.encode_tokens("the cat", ["t", "h", "e", " ", "c", "a", "the", "ca"]) == [6, 3, 7, 0]
    with pytest.raises(runtime.ModelInputError, match=r"'!' \(character 1\) starts no token of the vocabulary"):
        runtime.encode_tokens("a!", ["a"])


def test_sampling_sharpens_and_cuts():
    rng = np.random.default_rng(0)
    probabilities = np.array([0.1, 0.6, 0.3])
    assert runtime.sample_token(probabilities, 0, None, rng) == 1
    assert {runtime.sample_token(probabilities, 1.0, 1, rng) for _ in range(20)} == {1}
    draws = [runtime.sample_token(probabilities, 1.0, None, np.random.default_rng(s)) for s in range(300)]
    assert abs(draws.count(1) / 300 - 0.6) < 0.1


def test_picture_names_and_models_without_pictures(tmp_path):
    assert picture_paths(["a.png"], "out.png") == [Path("out.png")]
    assert picture_paths(["x.npy[0]", "x.npy[1]", "d/a.png", "e/a.png"], "dir") == [
        Path("dir/x_0.png"), Path("dir/x_1.png"), Path("dir/a.png"), Path("dir/a_2.png")]
    model = load(tmp_path, CLASSIFIER)
    model.export(tmp_path / "c.onnx")
    np.save(tmp_path / "x.npy", np.zeros((2, 1, 8, 8), np.float32))
    result = CliRunner().invoke(main, ["predict", str(tmp_path / "c.onnx"), str(tmp_path / "x.npy"), "-o", "o.png"])
    assert result.exit_code == 2 and "-o writes pictures" in result.output
    result = CliRunner().invoke(main, ["generate", str(tmp_path / "c.onnx"), "hi"])
    assert result.exit_code == 1 and "generate needs a language model" in result.output


GRAPH_SEGMENTER = """input image 1x8x8
skip = conv 4 3x3 pad=same relu
down = skip -> maxpool 2 -> conv 4 3x3 pad=same relu -> conv_transpose 4 2x2 stride=2
concat skip down axis=0
mask = conv 3 1x1 -> softmax 0
"""


def test_predict_writes_a_graph_s_picture_outputs(tmp_path):
    """A U-Net with named tensors writes its mask as a chain's would; a graph with two picture
    outputs writes a folder per output and prints its other outputs."""
    load(tmp_path, GRAPH_SEGMENTER).export(tmp_path / "u.onnx")
    np.save(tmp_path / "x.npy", np.random.default_rng(0).random((2, 1, 8, 8), dtype=np.float32))
    result = CliRunner().invoke(main, ["predict", str(tmp_path / "u.onnx"), str(tmp_path / "x.npy"),
                                       "-o", str(tmp_path / "masks")])
    assert result.exit_code == 0, result.output
    assert f"  mask: wrote {tmp_path / 'masks' / 'x_0.png'}" in result.output.splitlines()
    masks = [np.asarray(Image.open(tmp_path / "masks" / f"x_{i}.png")) for i in range(2)]
    expected = runtime.load(tmp_path / "u.onnx").predict(np.load(tmp_path / "x.npy")).argmax(axis=1)
    assert all(m.shape == (8, 8) and np.array_equal(m, e) for m, e in zip(masks, expected))
    two = GRAPH_SEGMENTER + "image = mask -> conv 1 1x1 sigmoid\nscore = mask -> flatten -> dense 1\noutput mask image score\n"
    load(tmp_path, two, "two.spec").export(tmp_path / "two.onnx")
    result = CliRunner().invoke(main, ["predict", str(tmp_path / "two.onnx"), str(tmp_path / "x.npy"),
                                       "-o", str(tmp_path / "out"), "--json"])
    assert result.exit_code == 0, result.output
    first = json.loads(result.output)["predictions"][0]["outputs"]
    assert [o["name"] for o in first] == ["mask", "image", "score"]
    assert first[0]["picture"] == str(tmp_path / "out" / "mask" / "x_0.png")
    assert first[1]["picture"] == str(tmp_path / "out" / "image" / "x_0.png") and len(first[2]["output"]) == 1
    assert np.asarray(Image.open(first[1]["picture"])).shape == (8, 8)
    result = CliRunner().invoke(main, ["predict", str(tmp_path / "two.onnx"), str(tmp_path / "x.npy"),
                                       "-o", str(tmp_path / "one.png")])
    assert result.exit_code == 2
    assert (f"-o {tmp_path / 'one.png'}: this model has 2 picture outputs (mask, image); give a folder, with a "
            "folder per output") in result.output


def test_generate_with_a_run_time_length_feeds_the_context(tmp_path):
    (tmp_path / "c.txt").write_text("abcd" * 60)
    spec = CHAR_LM.replace("tokens 8", "tokens ?")
    result = train(tmp_path, spec, str(tmp_path / "c.txt"), epochs=2, lr=0.05)
    counts = json.loads((Path(result.run_dir) / "run.json").read_text())["data"]
    assert counts["n_train"] + counts["n_val"] == 3  # 240 characters: 3 windows of 64 + 1
    load(tmp_path, spec).export(tmp_path / "lm.onnx", weights=result.run_dir)
    lm = runtime.load(tmp_path / "lm.onnx")
    assert lm.input_shape[1] not in (None, 64) and not isinstance(lm.input_shape[1], int)
    text = lm.generate("ab", tokens=12, temperature=0.5, seed=1)
    assert len(text) == 12 and set(text) <= set("abcd") and text == lm.generate("ab", tokens=12, temperature=0.5, seed=1)
    with pytest.raises(runtime.ModelInputError, match="the prompt is empty"):
        lm.generate("", tokens=3)


def test_generate_feeds_a_run_time_length_no_more_than_its_positions(tmp_path):
    """A learned positional_embedding of max_length=32 reads at most 32 steps: generation slides
    a 32-token context on (a prompt longer than that is refused, no traceback)."""
    spec = ("input tokens ? vocab=5\nembedding 4\npositional_embedding max_length=32\n"
            "multihead_attention heads=1 causal=true\ndense 5 softmax\n")
    load(tmp_path, spec).export(tmp_path / "lm.onnx")
    lm = runtime.load(tmp_path / "lm.onnx")
    continuation = lm.generate([1, 2], tokens=40, seed=0)
    assert len(continuation) == 40 and set(continuation) <= set(range(5))
    with pytest.raises(runtime.ModelInputError, match="cannot read a context of 33 tokens .*a shorter prompt"):
        lm.generate([1] * 33, tokens=1)


def test_early_stopping_knows_which_way_the_task_metrics_improve():
    from spec_compiler.training.callbacks import monitor_mode

    assert [monitor_mode(name) for name in ("val_mean_iou", "val_f1", "macro_f1", "val_pixel_accuracy")] == ["max"] * 4
    assert [monitor_mode(name) for name in ("val_perplexity", "val_mse", "val_loss")] == ["min"] * 3
