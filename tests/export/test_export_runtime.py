"""The app runtime and `specc predict` on files they cannot trust (issue 9): metadata over
the caps, token ids outside the vocabulary, labels holding terminal escape codes."""

from __future__ import annotations

import json

import numpy as np
import onnx
import pytest
from click.testing import CliRunner
from PIL import Image

import spec_compiler
from spec_compiler import runtime
from spec_compiler.cli import main
from spec_compiler.predict import printable


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    """A tiny image classifier and a tiny token classifier, exported untrained."""
    folder = tmp_path_factory.mktemp("exported")
    files = {}
    for name, text in {"image": "model img\ninput image 1x8x8\nflatten\ndense 3 softmax\n",
                       "tokens": "model tok\ninput tokens 6 vocab=20\nembedding 4\nflatten\ndense 2 softmax\n"}.items():
        spec = folder / f"{name}.spec"
        spec.write_text(text)
        files[name] = folder / f"{name}.onnx"
        spec_compiler.load(spec).export(files[name])
    return files


def with_metadata(source, target, **entries):
    """A copy of `source` whose specc.* metadata entries are replaced (values as JSON)."""
    proto = onnx.load(str(source))
    for entry in proto.metadata_props:
        key = entry.key.removeprefix("specc.")
        if key in entries:
            entry.value = json.dumps(entries[key])
    onnx.save(proto, str(target))
    return target


@pytest.mark.parametrize("key, value, where", [
    ("image", {"channels": 1, "height": 10**9, "width": 8}, "specc.image.height"),
    ("text", {"vocab": {"a": 2}, "max_length": 10**9}, "specc.text.max_length"),
    ("labels", "not a list", "specc.labels"),
])
def test_metadata_over_the_caps_is_refused_at_load(exported, tmp_path, key, value, where):
    bad = with_metadata(exported["image"], tmp_path / "bad.onnx", **{key: value})
    with pytest.raises(runtime.ModelInputError, match=where.replace(".", r"\.")):
        runtime.load(bad)
    np.save(tmp_path / "x.npy", np.zeros((1, 1, 8, 8), np.float32))
    result = CliRunner().invoke(main, ["predict", str(bad), str(tmp_path / "x.npy")])
    assert result.exit_code == 1 and "cannot load" in result.output and where in result.output
    assert "Traceback" not in result.output


def test_image_metadata_that_contradicts_the_graph_is_refused(exported, tmp_path):
    bad = with_metadata(exported["image"], tmp_path / "bad.onnx", image={"channels": 1, "height": 4000, "width": 4000})
    Image.new("L", (8, 8)).save(tmp_path / "a.png")
    with pytest.raises(runtime.ModelInputError, match="metadata says 1x4000x4000 but its graph takes"):
        runtime.load(bad).predict(str(tmp_path / "a.png"))


@pytest.mark.filterwarnings("ignore::PIL.Image.DecompressionBombWarning")  # Pillow warns, then we refuse
@pytest.mark.parametrize("side, message", [(40, "40x40 pixels, over the 1,000-pixel limit"),
                                           (64, "could be decompression bomb")])  # Pillow's own check, at 2x
def test_oversized_pictures_are_refused_before_decoding(exported, tmp_path, monkeypatch, side, message):
    Image.new("L", (side, side)).save(tmp_path / "big.png")
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 1000)
    with pytest.raises(runtime.ModelInputError, match=message):
        runtime.load(exported["image"]).predict(str(tmp_path / "big.png"))


@pytest.mark.parametrize("ids, message", [
    ([[-1, 2, 3, 4, 5, 6]], "token id -1 (sample 0) is negative"),
    ([[1, 2, 3, 4, 5, 20]], "token id 20 (sample 0) is outside the vocabulary: vocab=20 allows ids 0..19"),
    ([[1.5, 2, 3, 4, 5, 6]], "token ids must be whole numbers; sample 0 holds 1.5"),
])
def test_token_ids_outside_the_vocabulary_are_refused_not_wrapped(exported, tmp_path, ids, message):
    model = runtime.load(exported["tokens"])
    with pytest.raises(runtime.ModelInputError, match=message.replace("(", r"\(").replace(")", r"\)")):
        model.predict(np.array(ids))
    np.save(tmp_path / "ids.npy", np.array(ids))
    result = CliRunner().invoke(main, ["predict", str(exported["tokens"]), str(tmp_path / "ids.npy")])
    assert result.exit_code == 1 and message in result.output
    assert model.predict(np.array([[0, 1, 2, 3, 4, 19]])).shape == (1, 2)


def test_predict_escapes_control_characters_of_labels(exported, tmp_path):
    labels = ["\x1b[31mred", "blue\u202e", "gr\x9bn"]
    model = with_metadata(exported["image"], tmp_path / "m.onnx", labels=labels)
    np.save(tmp_path / "x.npy", np.zeros((1, 1, 8, 8), np.float32))
    result = CliRunner().invoke(main, ["predict", str(model), str(tmp_path / "x.npy")])
    assert result.exit_code == 0, result.output
    assert "\\x1b[31mred" in result.output and "blue\\u202e" in result.output and "gr\\x9bn" in result.output
    assert not any(ch in result.output for ch in "\x1b\u202e\x9b")
    result = CliRunner().invoke(main, ["predict", str(model), str(tmp_path / "x.npy"), "--json"])
    assert "\x1b" not in result.output
    shown = {t["label"] for t in json.loads(result.output)["predictions"][0]["top"]}
    assert shown == set(labels)


def test_printable_keeps_ordinary_text():
    assert printable("chat noir, 猫, naïve") == "chat noir, 猫, naïve"
    assert printable("a\tb\nc\x07") == "a\\tb\\nc\\x07"
