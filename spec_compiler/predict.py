"""`specc predict MODEL.onnx INPUT...`: top classes from an exported model, and `specc generate
MODEL.onnx PROMPT`: a language model's continuation (no torch).

INPUT is a .npy/.npz file (a batch, or one sample), an image file, a .txt file (one
text), or text itself. For a text model given words that are not files, the words are
joined into one text, so `specc predict spam.onnx win a free phone` works unquoted.

Labels come from the model file and input names from the command line: in the text
output their control characters (terminal escape sequences, bidi overrides) are shown
escaped (`\x1b`), never sent to the terminal; `--json` escapes them as JSON does.

A graph spec's file (several inputs or outputs): a model of several inputs takes .npz
files whose arrays are named after its inputs; each sample gets one entry per output.

A model whose output is a picture (a segmentation's KxHxW softmax: each pixel's class id;
a reconstruction's CxHxW image) writes it as PNG with `-o`: to `-o FILE.png` for one
sample, else into the folder `-o DIR`, one `NAME.png` per sample named after its input.
A graph's picture output (a U-Net's mask) goes to the same places; a graph with several
picture outputs writes `DIR/OUTPUT/NAME.png`, a folder per output, and prints the others.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np

from .errors import SpecError, UsageError, cannot_write, printable
from .runtime import IMAGE_SUFFIXES, ModelInputError, load, load_array, save_picture, top_classes


def _inputs(model, items: tuple[str, ...]) -> tuple[list[str], np.ndarray]:
    """(a name per sample, the batch array)."""
    files = [Path(i) for i in items if Path(i).is_file()]
    if model.kind == "tokens" and not files:
        text = " ".join(items)
        return [text if len(text) <= 40 else text[:37] + "..."], model.prepare([text])
    names, arrays = [], []
    for item in items:
        path = Path(item)
        if not path.is_file():
            raise UsageError(f"no such input file: {item}")
        suffix = path.suffix.lower()
        if suffix in (".npy", ".npz"):
            array = model.prepare(load_array(path))
            names += [f"{path.name}[{i}]" for i in range(len(array))] if len(array) > 1 else [path.name]
        elif suffix in IMAGE_SUFFIXES:
            array = model.prepare(str(path))
            names.append(path.name)
        elif suffix in (".txt", ".text", ".md", ""):
            if model.kind != "tokens":
                raise UsageError(f"{item}: a text file, but this model takes {model.kind} inputs")
            array = model.prepare([path.read_text(encoding="utf-8", errors="replace")])
            names.append(path.name)
        else:
            raise UsageError(f"{item}: unknown input type (use .npy, .npz, an image file, .txt, or text)")
        arrays.append(array)
    return names, np.concatenate(arrays)


def _named_inputs(model, items: tuple[str, ...]) -> tuple[list[str], dict[str, np.ndarray]]:
    """A model of several inputs: .npz files whose arrays are named after the inputs; (a name
    per sample, the arrays by input name, concatenated over the files)."""
    names, parts = [], {name: [] for name in model.input_names}
    for item in items:
        path = Path(item)
        if not path.is_file():
            raise UsageError(f"no such input file: {item}")
        if path.suffix.lower() != ".npz":
            raise UsageError(f"{item}: this model takes {len(model.input_names)} inputs "
                             f"({', '.join(model.input_names)}); give an .npz file with an array of each name")
        try:
            with np.load(path, allow_pickle=False) as archive:
                missing = [name for name in model.input_names if name not in archive.files]
                if missing:
                    raise ModelInputError(f"{item} holds {', '.join(archive.files) or 'no arrays'}; this model's inputs "
                                          f"are {', '.join(model.input_names)} (missing {', '.join(missing)})")
                feed = model.prepare_inputs({name: archive[name] for name in model.input_names})
        except (OSError, ValueError) as error:
            raise ModelInputError(f"cannot read {path}: {error}") from None
        count = len(next(iter(feed.values())))
        names += [f"{path.name}[{i}]" for i in range(count)] if count > 1 else [path.name]
        for name, array in feed.items():
            parts[name].append(array)
    return names, {name: np.concatenate(arrays) for name, arrays in parts.items()}


def _entry(row: np.ndarray, activation: str | None, labels, top: int) -> dict:
    """One output of one sample: its top classes (a softmax/sigmoid over a vector), else its values."""
    if activation in ("softmax", "sigmoid") and row.ndim == 1:
        return {"top": [{"label": label, "probability": p} for label, p in top_classes(row, labels, top)]}
    return {"output": np.asarray(row).tolist()}


def _graph_predictions(model, items: tuple[str, ...], top: int, output: str | None) -> list[dict]:
    """A graph spec's file: per sample, one entry per output (in the spec's `output` order);
    with `output` (-o), each picture output written as PNG (see write_graph_pictures)."""
    if len(model.input_names) == 1:
        names, x = _inputs(model, items)
    else:
        names, x = _named_inputs(model, items)
    y = model.predict(x)
    y = y if isinstance(y, dict) else {model.output_names[0]: y}
    pictures = write_graph_pictures(model, names, y, output) if output else {}
    activations = {o.name: o.activation for o in model.info.outputs or []}

    def entry(out: str, index: int) -> dict:
        if out in pictures:
            return {"picture": pictures[out][index]}
        return _entry(y[out][index], activations.get(out), model.labels, top)

    return [{"input": name, "outputs": [{"name": out, **entry(out, index)} for out in y]}
            for index, name in enumerate(names)]


def _lines(entry: dict, indent: str) -> list[str]:
    if "picture" in entry:
        return [f"{indent}wrote {printable(entry['picture'])}"]
    if "top" in entry:
        return [f"{indent}{printable(t['label']):>12}  {t['probability']:.4f}" for t in entry["top"]]
    flat = np.asarray(entry["output"]).ravel()
    shown = ", ".join(f"{v:.4g}" for v in flat[:8]) + (", ..." if flat.size > 8 else "")
    return [f"{indent}output {'x'.join(map(str, np.shape(entry['output'])))} [{shown}]"]


def picture_paths(names: list[str], output: str) -> list[Path]:
    """Where each sample's picture goes: `output` itself for one sample named *.png, else
    `output/NAME.png` (NAME from the input's name, made safe; repeated names get `_2`, ...)."""
    target = Path(output)
    if len(names) == 1 and target.suffix.lower() == ".png":
        return [target]
    if target.suffix.lower() == ".png":
        raise UsageError(f"-o {output}: {len(names)} pictures need a folder, not one .png file")
    paths, seen = [], set()
    for name in names:
        file, _, index = name.partition("[")  # `x.npy[3]`: sample 3 of x.npy
        stem = Path(file).stem + (f"_{index.rstrip(']')}" if index else "")
        stem = re.sub(r"[^A-Za-z0-9._-]+", "_", stem).strip("._") or "output"
        candidate, count = stem, 1
        while candidate in seen:
            count += 1
            candidate = f"{stem}_{count}"
        seen.add(candidate)
        paths.append(target / f"{candidate}.png")
    return paths


PICTURE_RULE = "a CxHxW image of 1, 3 or 4 channels, or a KxHxW softmax"


def write_pictures(model, names: list[str], y, output: str, name: str | None = None,
                   paths: list[Path] | None = None) -> list[str]:
    """Each sample of the output `name` (None: the only one) as a PNG picture (see the
    module's docstring), at `paths` (None: picture_paths); the paths written."""
    if model.picture_kind(name) is None:
        spec = model.output_spec(name)
        shape = "x".join(map(str, spec.shape)) if spec else "?"
        raise UsageError(f"-o writes pictures, and this model's output ({shape}) is not one: {PICTURE_RULE}")
    paths = paths or picture_paths(names, output)
    for path, row in zip(paths, y):
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            save_picture(model.picture(row, name), path)
        except OSError as error:
            raise cannot_write(str(path), error) from None
    return [str(path) for path in paths]


def write_graph_pictures(model, names: list[str], y: dict[str, np.ndarray], output: str) -> dict[str, list[str]]:
    """A graph's picture outputs as PNG: one picture output goes where a chain's does; several
    go into `output/OUTPUT/NAME.png`, a folder per output. Other outputs are printed as usual."""
    shown = [out for out in y if model.picture_kind(out) is not None]
    if not shown:
        shapes = ", ".join(f"{o.name} {'x'.join(map(str, o.shape))}" for o in model.info.outputs or [])
        raise UsageError(f"-o writes pictures, and none of this model's outputs ({shapes}) is one: {PICTURE_RULE}")
    if len(shown) == 1:
        return {shown[0]: write_pictures(model, names, y[shown[0]], output, shown[0])}
    if Path(output).suffix.lower() == ".png":
        raise UsageError(f"-o {output}: this model has {len(shown)} picture outputs ({', '.join(shown)}); "
                         "give a folder, with a folder per output")
    return {out: write_pictures(model, names, y[out], output, out,
                                [Path(output) / out / path.name for path in picture_paths(names, output)])
            for out in shown}


def predict_main(model_file: str, items: tuple[str, ...], top: int, as_json: bool, output: str | None = None) -> str:
    try:
        model = load(model_file)
    except Exception as error:  # noqa: BLE001 - onnxruntime raises its own kinds for bad files
        raise SpecError.at(None, f"cannot load {model_file}: {str(error).strip().splitlines()[0]}") from None
    try:
        if model.info.inputs is not None:
            graph_results = _graph_predictions(model, items, top, output)
        else:
            names, x = _inputs(model, items)
            y = model.predict(x)
    except UsageError:
        raise
    except ModelInputError as error:
        raise SpecError.at(None, str(error)) from None
    except (OSError, UnicodeDecodeError) as error:
        raise SpecError.at(None, f"cannot read the input: {error}") from None
    except Exception as error:  # noqa: BLE001 - onnxruntime's errors on a bad input
        raise SpecError.at(None, f"ONNX Runtime rejected the input: {str(error).strip().splitlines()[0]}") from None
    if model.info.inputs is not None:
        if as_json:
            return json.dumps({"model": model_file, "predictions": graph_results})
        lines = []
        for sample in graph_results:
            lines.append(f"{printable(sample['input'])}:")
            for entry in sample["outputs"]:
                if "top" in entry:
                    lines += [f"  {printable(entry['name'])}:", *_lines(entry, "  ")]
                else:
                    lines += _lines(entry, f"  {printable(entry['name'])}: ")
        return "\n".join(lines)
    pictures = write_pictures(model, names, y, output) if output else None
    info = model.info.output
    is_classifier = info is not None and info.activation in ("softmax", "sigmoid")
    results = []
    for index, (name, row) in enumerate(zip(names, y)):
        entry = {"input": name}
        if pictures:
            entry["picture"] = pictures[index]
        elif is_classifier and row.ndim == 1:
            entry["top"] = [{"label": label, "probability": p} for label, p in top_classes(row, model.labels, top)]
        else:
            entry["output"] = np.asarray(row).tolist()
        results.append(entry)
    if as_json:
        return json.dumps({"model": model_file, "predictions": results})
    lines = []
    for entry in results:
        name = printable(entry["input"])
        if "picture" in entry:
            lines.append(f"{name}: wrote {printable(entry['picture'])}")
        elif "top" in entry:
            lines.append(f"{name}:")
            lines.extend(f"  {printable(t['label']):>12}  {t['probability']:.4f}" for t in entry["top"])
        else:
            flat = np.asarray(entry["output"]).ravel()
            shown = ", ".join(f"{v:.4g}" for v in flat[:8]) + (", ..." if flat.size > 8 else "")
            lines.append(f"{name}: output {'x'.join(map(str, np.shape(entry['output'])))} [{shown}]")
    return "\n".join(lines)


def generate_main(model_file: str, prompt: str, tokens: int, temperature: float, top_k: int | None,
                  seed: int | None) -> str:
    """`specc generate`: the prompt and its continuation."""
    try:
        model = load(model_file)
    except Exception as error:  # noqa: BLE001 - onnxruntime raises its own kinds for bad files
        raise SpecError.at(None, f"cannot load {model_file}: {str(error).strip().splitlines()[0]}") from None
    try:
        text = prompt + model.generate(prompt, tokens, temperature, top_k, seed)
    except ModelInputError as error:
        raise SpecError.at(None, str(error)) from None
    return "".join(ch if ch in "\n\t" else printable(ch) for ch in text)  # the model's tokens: no terminal codes
