"""Every spec in specs/ compiles to its published figure, and FLOPs match published values.

The figure is read from the spec's first comment line, so the comment and the test
cannot drift apart:

    # VGG-16 (...): 138,357,544 parameters
    # ResNet-18 (...): 11,699,112 parameters = 11,689,512 trainable + 9,600 non-trainable (...)
    # LeNet with batchnorm (...): 34,034 parameters, 40 non-trainable

`N parameters` is the total; `N trainable` and `N non-trainable` are checked where stated.
The table of each course model is also kept as a golden file in tests/golden/summaries/
(rewrite with `--overwrite` or SPECC_OVERWRITE=1 after an intended change).
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from conftest import ROOT, check_golden

import spec_compiler

SPECS = sorted((ROOT / "specs").glob("*.spec"))
SUMMARIES = ROOT / "tests" / "golden" / "summaries"

_NUMBER = r"(\d{1,3}(?:,\d{3})*|\d+)"


def stated_figures(path: Path) -> dict[str, int]:
    """{'total': N, 'trainable': N, 'non_trainable': N} from the first comment line."""
    first = path.read_text(encoding="utf-8").splitlines()[0]
    assert first.startswith("#"), f"{path.name}: the first line must be a comment with the published figure"
    figures: dict[str, int] = {}
    patterns = {
        "total": _NUMBER + r" parameters",
        "trainable": r"(?<![\w-])" + _NUMBER + r" trainable",
        "non_trainable": _NUMBER + r" non-trainable",
    }
    for key, pattern in patterns.items():
        match = re.search(pattern, first)
        if match:
            figures[key] = int(match.group(1).replace(",", ""))
    assert "total" in figures, f"{path.name}: the first line must state `N parameters`: {first!r}"
    return figures


def _load(name: str) -> spec_compiler.Model:
    return spec_compiler.load(ROOT / "specs" / f"{name}.spec")


def test_figure_parsing():
    import tempfile

    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "x.spec"
        path.write_text("# Net (2016): 11,699,112 parameters = 11,689,512 trainable + 9,600 non-trainable (BN)\n")
        assert stated_figures(path) == {"total": 11_699_112, "trainable": 11_689_512, "non_trainable": 9_600}
        path.write_text("# LeNet with batchnorm: 34,034 parameters, 40 non-trainable\n")
        assert stated_figures(path) == {"total": 34_034, "non_trainable": 40}


def test_the_course_models_are_all_here():
    names = {p.stem for p in SPECS}
    assert {"lenet5", "lenet_nobn", "alexnet", "vgg16", "resnet18", "inception", "mobilenet"} <= names


@pytest.mark.parametrize("path", SPECS, ids=[p.stem for p in SPECS])
def test_spec_matches_its_published_figure(path):
    figures = stated_figures(path)
    summary = spec_compiler.load(path).summary()
    assert summary["total_params"] == figures["total"]
    if "non_trainable" in figures:
        assert summary["non_trainable_params"] == figures["non_trainable"]
        assert summary["trainable_params"] == figures["total"] - figures["non_trainable"]
    if "trainable" in figures:
        assert summary["trainable_params"] == figures["trainable"]
    assert summary["trainable_params"] + summary["non_trainable_params"] == summary["total_params"]
    # the per-layer figures add up to the totals
    assert sum(layer["params"] for layer in summary["layers"]) == summary["total_params"]


# --- FLOPs (multiply-adds per sample) against published or hand-computed values ------

def test_lenet5_flops_by_hand():
    # conv1 6 filters 5x5x1 at 28x28: 117,600; conv2 16 filters 5x5x6 at 10x10: 240,000;
    # dense 400x120 + 120x84 + 84x10 = 48,000 + 10,080 + 840; pooling and activations: 0
    assert _load("lenet5").summary()["flops"] == 117_600 + 240_000 + 48_000 + 10_080 + 840 == 416_520


def test_lenet5_per_layer_shapes_and_params():
    layers = _load("lenet5").summary()["layers"]
    assert [(layer["name"], layer["output_shape"], layer["params"]) for layer in layers] == [
        ("conv2d_1", [None, 6, 28, 28], 156), ("avgpool2d_1", [None, 6, 14, 14], 0),
        ("conv2d_2", [None, 16, 10, 10], 2_416), ("avgpool2d_2", [None, 16, 5, 5], 0),
        ("flatten_1", [None, 400], 0), ("dense_1", [None, 120], 48_120), ("dense_2", [None, 84], 10_164),
        ("dense_3", [None, 10], 850),
    ]


@pytest.mark.parametrize("name, published, tolerance", [
    ("resnet18", 1.81e9, 0.02),     # torchvision / He et al.: 1.8 GFLOPs (multiply-adds)
    ("vgg16", 15.5e9, 0.01),        # Simonyan & Zisserman / torchvision: 15.5 GMACs
    ("inception", 128e6, 0.01),     # GoogLeNet table 1, inception (3a): 128M ops
    ("alexnet", 724e6, 0.01),       # Caffe bvlc_alexnet (grouped): 724M multiply-adds
    # Howard et al. table 8, 1.0 MobileNet-224: 569M mult-adds (convolutions and the classifier;
    # specc also counts batchnorm's per-element multiply-add, 5M more)
    ("mobilenet", 569e6, 0.01),
])
def test_flops_match_published(name, published, tolerance):
    flops = _load(name).summary()["flops"]
    assert abs(flops - published) <= tolerance * published, f"{name}: {flops:,} vs {published:,.0f}"


def test_resnet18_shapes():
    summary = _load("resnet18").summary()
    assert summary["output_shape"] == [None, 1000]
    by_name = {layer["name"]: layer for layer in summary["layers"]}
    assert by_name["maxpool2d_1"]["output_shape"] == [None, 64, 56, 56]
    assert by_name["down_3"]["output_shape"] == [None, 512, 7, 7]
    assert by_name["global_avgpool_1"]["output_shape"] == [None, 512]


def test_inception_concatenates_to_256_channels():
    assert _load("inception").summary()["output_shape"] == [None, 256, 28, 28]


# --- golden summary tables ------------------------------------------------------------

GOLDEN_TABLES = ["lenet5", "lenet_nobn", "alexnet", "vgg16", "resnet18", "inception", "mobilenet"]


@pytest.mark.parametrize("name", GOLDEN_TABLES)
def test_summary_table_golden(name, overwrite):
    model = spec_compiler.load(Path("specs") / f"{name}.spec") if Path.cwd() == ROOT else _load(name)
    check_golden(SUMMARIES / f"{name}.out", model.table(), overwrite)
