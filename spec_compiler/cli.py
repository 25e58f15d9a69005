"""The `specc` command line. Each command is a thin shell over the Python API.

Exit codes: 0 ok, 1 the spec or data is wrong, 2 the command line is wrong.
User errors never print a traceback (`--debug` shows one).
"""

from __future__ import annotations

import functools
import json
import sys
from pathlib import Path

import click

from .errors import SpecError, UsageError
from .inference import DEFAULT_MAX_ACTIVATION_BYTES, DEFAULT_MAX_PARAMS, Limits


def _size(text: str) -> int:
    """'16GiB', '512MiB', '1e9' -> bytes."""
    units = {"kib": 2**10, "mib": 2**20, "gib": 2**30, "tib": 2**40, "kb": 10**3, "mb": 10**6, "gb": 10**9, "b": 1}
    lowered = text.strip().lower()
    for unit, factor in units.items():
        if lowered.endswith(unit):
            return int(float(lowered[: -len(unit)]) * factor)
    return int(float(lowered))


def handle_errors(command):
    """Turn user errors into compiler-style messages and exit codes."""

    @functools.wraps(command)
    def wrapper(*args, **kwargs):
        debug = click.get_current_context().find_root().params.get("debug", False)
        try:
            return command(*args, **kwargs)
        except SpecError as error:
            if debug:
                raise
            click.echo(error.render(), err=True)
            sys.exit(1)
        except UsageError as error:
            if debug:
                raise
            click.echo(f"error: {error}", err=True)
            sys.exit(2)
        except KeyboardInterrupt:
            click.echo("interrupted", err=True)
            sys.exit(130)

    return wrapper


def spec_options(command):
    """Options every command that reads a spec shares."""
    command = click.option("--plugin", "plugins", multiple=True, metavar="MODULE",
                           help="Python module or .py file that registers extra layer kinds (repeatable).")(command)
    command = click.option("--max-params", type=float, default=DEFAULT_MAX_PARAMS, show_default=True,
                           help="Reject models with more parameters.")(command)
    command = click.option("--max-activation-memory", default=f"{DEFAULT_MAX_ACTIVATION_BYTES // 2**30}GiB",
                           show_default=True, help="Reject models needing more activation memory per sample.")(command)
    return command


def limits_from(max_params: float, max_activation_memory: str) -> Limits:
    try:
        return Limits(int(max_params), _size(max_activation_memory))
    except ValueError:
        raise UsageError(f"--max-activation-memory: cannot read `{max_activation_memory}` (use e.g. 8GiB)") from None


def _write_or_print(text: str, output: str | None) -> None:
    if output:
        from .files import write_text_atomic

        write_text_atomic(Path(output), text + "\n")
        click.echo(f"wrote {output}", err=True)
    else:
        click.echo(text)


def load_model(spec: str, plugins, max_params, max_activation_memory):
    from .model import load

    return load(spec, plugins, limits_from(max_params, max_activation_memory))


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--debug", is_flag=True, help="Show Python tracebacks for errors.")
@click.version_option(package_name="specc", prog_name="specc")
def main(debug: bool) -> None:
    """specc: check, train and export neural networks written as .spec files."""


@main.command("compile")
@click.argument("spec", type=click.Path(exists=True, dir_okay=False))
@click.option("--json", "as_json", is_flag=True, help="Print the summary as one JSON object.")
@click.option("--emit", type=click.Choice(["summary", "torch"]), default="summary", show_default=True,
              help="What to produce: the summary, or a standalone PyTorch source file.")
@click.option("-o", "--output", type=click.Path(dir_okay=False), help="Write the output to this file.")
@click.option("--depth", type=int, default=None, help="How deep to show nested layers in the table.")
@spec_options
@handle_errors
def compile_command(spec, as_json, emit, output, depth, plugins, max_params, max_activation_memory):
    """Check SPEC and print its summary: shapes, parameters, FLOPs, memory."""
    model = load_model(spec, plugins, max_params, max_activation_memory)
    if emit == "torch":
        from .backends.torch_source import emit_source

        text = emit_source(model)
    elif as_json:
        text = json.dumps(model.summary(), indent=None if output is None else 2)
    else:
        text = model.table(depth)
    _write_or_print(text, output)


@main.command("draw")
@click.argument("spec", type=click.Path(exists=True, dir_okay=False))
@click.option("--format", "fmt", type=click.Choice(["dot", "mermaid", "svg", "png"]), default=None,
              help="Graphviz DOT, Mermaid, or a picture: SVG or PNG (default: from the -o suffix, else dot).")
@click.option("-o", "--output", type=click.Path(dir_okay=False),
              help="Write to this file (.dot, .gv, .mmd, .svg or .png).")
@spec_options
@handle_errors
def draw_command(spec, fmt, output, plugins, max_params, max_activation_memory):
    """Draw SPEC's layer graph: DOT or Mermaid text, or an SVG or PNG picture (no Graphviz needed)."""
    suffix = Path(output).suffix.lower() if output else ""
    if fmt is None:
        fmt = {".mmd": "mermaid", ".mermaid": "mermaid", ".svg": "svg", ".png": "png"}.get(suffix, "dot")
    if fmt == "png" and not output:
        raise UsageError("a PNG picture is binary: write it to a file with -o FILE.png")
    model = load_model(spec, plugins, max_params, max_activation_memory)
    if fmt == "png":
        from .backends.picture_png import to_png
        from .files import write_bytes_atomic

        write_bytes_atomic(Path(output), to_png(model.info))
        click.echo(f"wrote {output}", err=True)
        return
    if fmt == "svg":
        from .backends.picture_svg import to_svg

        text = to_svg(model.info)
    else:
        from .backends.graph import to_dot, to_mermaid

        text = to_mermaid(model.info) if fmt == "mermaid" else to_dot(model.info)
    _write_or_print(text, output)


@main.command("export")
@click.argument("spec", type=click.Path(exists=True, dir_okay=False))
@click.option("--weights", type=click.Path(exists=True), default=None, metavar="RUN",
              help="A run folder written by `specc train` (or a .safetensors file). Without it: the untrained network.")
@click.option("-o", "--output", type=click.Path(dir_okay=False), required=True, help="The .onnx file to write.")
@click.option("--opset", type=int, default=None, help="ONNX opset version (default 17).")
@click.option("--quantize", type=click.Choice(["int8"]), default=None, help="Quantize to int8 with onnxruntime.")
@click.option("--json", "as_json", is_flag=True, help="Print the export report as one JSON object.")
@spec_options
@handle_errors
def export_command(spec, weights, output, opset, quantize, as_json, plugins, max_params, max_activation_memory):
    """Export SPEC to ONNX, verified against PyTorch (nothing is written when the check fails)."""
    model = load_model(spec, plugins, max_params, max_activation_memory)
    report = model.export(output, weights=weights, opset=opset, quantize=quantize)
    click.echo(json.dumps(report.to_dict()) if as_json else report.render())


@main.command("predict")
@click.argument("model_file", metavar="MODEL.onnx", type=click.Path(exists=True, dir_okay=False))
@click.argument("inputs", metavar="INPUT", nargs=-1, required=True)
@click.option("--top", "top", type=click.IntRange(min=1), default=3, show_default=True, help="How many classes to show.")
@click.option("--json", "as_json", is_flag=True, help="Print the predictions as JSON.")
@handle_errors
def predict_command(model_file, inputs, top, as_json):
    """Run MODEL.onnx on INPUT: a .npy/.npz file, an image file, a .txt file, or text."""
    from .predict import predict_main

    click.echo(predict_main(model_file, inputs, top, as_json))


@main.command("train")
@click.argument("spec", type=click.Path(exists=True, dir_okay=False))
@click.option("--data", type=click.Path(exists=True), default=None,
              help="Training data: .npz, x.npy (+ y.npy), .csv, an image folder, MNIST IDX (default: the spec's "
                   "data=, else the bundled digits).")
@click.option("--val-data", type=click.Path(exists=True), default=None, help="Validation data (instead of a split).")
@click.option("--epochs", type=click.IntRange(min=1), default=None, help="Epochs (default: the spec's, else 10).")
@click.option("--batch", type=click.IntRange(min=1), default=None, help="Batch size per process (default 32).")
@click.option("--lr", type=click.FloatRange(min=0, min_open=True), default=None, help="Learning rate.")
@click.option("--seed", type=click.IntRange(min=0), default=None, help="Random seed (default: the spec's, else 0).")
@click.option("--device", type=click.Choice(["auto", "cpu", "cuda"]), default="auto", show_default=True)
@click.option("--amp", type=click.Choice(["bf16", "fp16"]), default=None, help="Mixed precision (autocast).")
@click.option("--out", type=click.Path(file_okay=False), default=None,
              help="Run folder (default: runs/<model>-<time>).")
@click.option("--resume", is_flag=True, help="Continue the run in --out DIR from its checkpoint.")
@click.option("--overwrite", is_flag=True,
              help="Replace the run in --out DIR: the new run takes its place when it completes.")
@click.option("--init-from", type=click.Path(exists=True), default=None,
              help="Start from another run's weights (tensors matching by name and shape).")
@click.option("--threads", type=click.IntRange(min=1), default=None,
              help="CPU threads (default: 1 for small models, else the cores).")
@click.option("--max-steps", type=click.IntRange(min=1), default=None,
              help="End the run after this many optimizer steps (the epoch it falls in ends there).")
@click.option("--steps-per-epoch", type=click.IntRange(min=1), default=None,
              help="Steps per epoch (default: one pass over the data); the data stream on across epochs.")
@click.option("--workers", type=click.IntRange(min=0), default=None,
              help="DataLoader worker processes reading batches; 0 reads them in the training process "
                   "(default: 0 for data held in memory, else half the cores, at most 4).")
@click.option("--compile", "compile_model", is_flag=True,
              help="torch.compile the model; the compile time is reported apart from the training time.")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON summary as the last line of stdout.")
@spec_options
@handle_errors
def train_command(spec, data, val_data, epochs, batch, lr, seed, device, amp, out, resume, overwrite, init_from,
                  threads, max_steps, steps_per_epoch, workers, compile_model, as_json, plugins, max_params,
                  max_activation_memory):
    """Train SPEC (its train section, overridden by these options); write a run folder."""
    from .training import TrainingInterrupted

    model = load_model(spec, plugins, max_params, max_activation_memory)
    try:
        result = model.train(data=data, validation_data=val_data, epochs=epochs, batch=batch, lr=lr, seed=seed,
                             device=device, amp=amp, out=out, resume=resume, overwrite=overwrite,
                             init_from=init_from, threads=threads, max_steps=max_steps, steps_per_epoch=steps_per_epoch,
                             workers=workers, compile=compile_model, stream=sys.stderr if as_json else sys.stdout)
    except TrainingInterrupted as stop:
        where = stop.run_dir
        if stop.saved:
            click.echo(f"interrupted in epoch {stop.epoch} after {stop.step} step(s): checkpoint saved in "
                       f"{where}/checkpoint.pt; continue with: specc train {spec} --out {where} --resume", err=True)
        else:
            click.echo(f"interrupted: the last epoch's checkpoint is in {where}/checkpoint.pt; continue with: "
                       f"specc train {spec} --out {where} --resume", err=True)
        sys.exit(130)
    if not result.is_main:  # a DDP process other than rank 0
        return
    if as_json:
        click.echo(json.dumps(result.to_json()))
    else:
        kept = ", ".join(f"{k} {v:.4f}" for k, v in result.metrics.items() if isinstance(v, float))
        click.echo(f"kept weights of epoch {result.best_epoch}: {kept}")
        click.echo(f"run folder: {result.run_dir}")


@main.command("evaluate")
@click.argument("spec", type=click.Path(exists=True, dir_okay=False))
@click.option("--weights", required=True, type=click.Path(exists=True),
              help="A run folder (or its weights.safetensors).")
@click.option("--data", type=click.Path(exists=True), default=None,
              help="Data to evaluate (default: the run's validation data).")
@click.option("--batch", type=click.IntRange(min=1), default=None, help="Batch size.")
@click.option("--device", type=click.Choice(["auto", "cpu", "cuda"]), default="auto", show_default=True)
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
@spec_options
@handle_errors
def evaluate_command(spec, weights, data, batch, device, as_json, plugins, max_params, max_activation_memory):
    """Loss and metrics of a run's weights on data."""
    model = load_model(spec, plugins, max_params, max_activation_memory)
    result = model.evaluate(weights, data=data, batch=batch, device=device)
    if as_json:
        click.echo(json.dumps(result))
    else:
        click.echo(f"{result['data']}: {result['samples']} samples")
        for key, value in result.items():
            if key not in ("weights", "data", "samples"):
                click.echo(f"  {key}: {value:.4f}" if isinstance(value, float) else f"  {key}: {value}")


@main.command("fmt")
@click.argument("specs", nargs=-1, required=True, type=click.Path(exists=True, dir_okay=False))
@click.option("--check", is_flag=True, help="Only report files that are not formatted (exit 1 if any).")
@click.option("--write", "-w", "write", is_flag=True, help="Rewrite the files in place (atomically).")
@handle_errors
def fmt_command(specs, check, write):
    """Print SPECS in the canonical layout (comments kept)."""
    from .files import write_text_atomic
    from .formatter import format_source

    unformatted = []
    for spec in specs:
        source = Path(spec).read_text(encoding="utf-8")
        formatted = format_source(source, spec)
        if check:
            if formatted != source:
                unformatted.append(spec)
                click.echo(f"would reformat {spec}", err=True)
        elif write:
            if formatted != source:
                write_text_atomic(Path(spec), formatted)
                click.echo(f"reformatted {spec}", err=True)
        else:
            click.echo(formatted, nl=False)
    if unformatted:
        sys.exit(1)


@main.command("lsp")
@click.option("--stdio", is_flag=True, help="Talk over stdin/stdout (the only transport; accepted because editors pass it).")
@spec_options
@handle_errors
def lsp_command(stdio, plugins, max_params, max_activation_memory):
    """Run the language server for editors (LSP over stdio)."""
    from .model import load_plugins

    try:
        from .lsp.server import serve
    except ImportError as error:
        raise UsageError(f"`specc lsp` needs the lsp extra: pip install 'specc[lsp]' ({error})") from None
    load_plugins(plugins)
    serve(limits_from(max_params, max_activation_memory))


if __name__ == "__main__":  # pragma: no cover
    main()
