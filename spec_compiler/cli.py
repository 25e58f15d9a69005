"""The `specc` command line. Each command is a thin shell over the Python API.

Exit codes: 0 ok, 1 the spec or data is wrong, 2 the command line is wrong.
User errors never print a traceback (`--debug` shows one).
"""

from __future__ import annotations

import functools
import math
import os
import sys
from pathlib import Path

import click

from .errors import SpecError, UsageError, cannot_write, describe_os_error
from .extras import EVALUATION, EXPORT, LANGUAGE_SERVER, TORCH, TRAINING, require_extra
from .limits import DEFAULT_MAX_ACTIVATION_BYTES, DEFAULT_MAX_PARAMS, Limits, parse_size
from .start_up import command_starts, run_program

# More intra-op threads than this per CPU never help, and torch crashes on absurd counts.
THREADS_PER_CPU = 4
MAX_SEED = 2**63 - 1  # what torch.manual_seed takes (and the largest whole number a spec may hold)


def cpu_count() -> int:
    """CPUs this process may run on (its affinity where the system tells it)."""
    if hasattr(os, "sched_getaffinity"):
        return max(1, len(os.sched_getaffinity(0)))
    return max(1, os.cpu_count() or 1)


def handle_errors(command):
    """Turn user errors into compiler-style messages and exit codes; a file that cannot be
    written (read-only folder, full disk) is one line and exit 1, never a traceback."""

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
        except BrokenPipeError:  # `specc compile x.spec | head -1`: click ends quietly
            raise
        except OSError as error:
            if debug:
                raise
            click.echo(f"error: {describe_os_error(error)}", err=True)
            sys.exit(1)

    return wrapper


def _finite_count(context, parameter, value: float) -> float:
    if not math.isfinite(value) or value < 1:
        raise click.BadParameter(f"{value:g} is not a count of parameters (use e.g. 2e9)")
    return value


def _memory_size(context, parameter, value: str) -> str:
    try:
        size = parse_size(value)
    except (ValueError, OverflowError):  # OverflowError: `inf`
        raise click.BadParameter(f"cannot read `{value}` (use e.g. 8GiB)") from None
    if size < 1:
        raise click.BadParameter(f"`{value}` is not a size (use e.g. 8GiB)")
    return value


def spec_options(command):
    """Options every command that reads a spec shares."""
    command = click.option("--plugin", "plugins", multiple=True, metavar="MODULE",
                           help="Python module or .py file that registers extra layer kinds (repeatable).")(command)
    command = click.option("--max-params", type=float, default=DEFAULT_MAX_PARAMS, show_default=True,
                           callback=_finite_count, help="Reject models with more parameters.")(command)
    command = click.option("--max-activation-memory", default=f"{DEFAULT_MAX_ACTIVATION_BYTES // 2**30}GiB",
                           show_default=True, callback=_memory_size,
                           help="Reject models needing more activation memory per sample.")(command)
    return command


def to_json(data, indent: int | None = None) -> str:
    """`--json` output; json is imported here, not by `specc compile` without --json."""
    import json

    return json.dumps(data, indent=indent)


def limits_from(max_params: float, max_activation_memory: str) -> Limits:
    """The size limits of the (already validated) --max-params and --max-activation-memory."""
    return Limits(int(max_params), parse_size(max_activation_memory))


def _write_or_print(text: str, output: str | None) -> None:
    if output:
        from .files import STDOUT, write_text_atomic

        try:
            write_text_atomic(Path(output) if output != STDOUT else STDOUT, text + "\n")
        except OSError as error:
            raise cannot_write(output, error) from None
        if output != STDOUT:
            click.echo(f"wrote {output}", err=True)
    else:
        click.echo(text)


def set_option(command):
    """`--set KEY=VALUE` (repeatable): change a value of the spec (docs/experiments.md)."""
    return click.option("--set", "assignments", multiple=True, metavar="KEY=VALUE",
                        help="Change a value of the spec: train.lr=3e-4, BLOCK.PARAM=64, dense_2.units=64 "
                             "(repeatable).")(command)


def log_option(command):
    return click.option("--log", type=click.Choice(["mlflow"]), default=None,
                        help="Also log to MLflow (MLFLOW_TRACKING_URI; needs mlflow installed).")(command)


def tracking_callbacks(log: str | None, experiment: str) -> list:
    """TensorBoard is written in every run folder; `--log mlflow` adds MLflow."""
    if log != "mlflow":
        return []
    from .training.tracking import MlflowLogger

    return [MlflowLogger(experiment)]


def load_model(spec: str, plugins, max_params, max_activation_memory, assignments=()):
    """The checked model (with `--set` overrides); its warnings go to stderr."""
    from .experiments.overrides import load_variant, parse_assignments

    model = load_variant(spec, parse_assignments(assignments), plugins, limits_from(max_params, max_activation_memory))
    if model.warnings:
        click.echo(model.warning_text(), err=True)
    return model


def _with_warnings(data: dict, model) -> dict:
    """A `--json` object with the spec's warnings, as `specc compile --json` carries them."""
    from .errors import warning_dict

    return {**data, "warnings": [warning_dict(w) for w in model.warnings]}


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--debug", is_flag=True, help="Show Python tracebacks for errors.")
@click.version_option(package_name="specc", prog_name="specc")
def main(debug: bool) -> None:
    """specc: check, train and export neural networks written as .spec files."""
    command_starts(click.get_current_context().invoked_subcommand)


@main.command("compile")
@click.argument("spec", type=click.Path(exists=True, dir_okay=False))
@click.option("--json", "as_json", is_flag=True, help="Print the summary as one JSON object.")
@click.option("--emit", type=click.Choice(["summary", "torch"]), default="summary", show_default=True,
              help="What to produce: the summary, or a standalone PyTorch source file.")
@click.option("-o", "--output", type=click.Path(dir_okay=False), help="Write the output to this file.")
@click.option("--depth", type=click.IntRange(min=0), default=None, help="How deep to show nested layers in the table.")
@set_option
@spec_options
@handle_errors
def compile_command(spec, as_json, emit, output, depth, assignments, plugins, max_params, max_activation_memory):
    """Check SPEC and print its summary: shapes, parameters, FLOPs, memory. A spec with search
    values is checked at every choice and shown at its default point, with its space."""
    if emit == "torch":
        require_extra("train", *TORCH, needed_by="specc compile --emit torch")
    from .experiments.overrides import check_space, parse_assignments, read_variant

    variant = read_variant(spec, parse_assignments(assignments))
    model, checked = check_space(variant, plugins, limits_from(max_params, max_activation_memory))
    if model.warnings:
        click.echo(model.warning_text(), err=True)
    space = [value.to_dict() for value in variant.space.values()]
    if emit == "torch":
        from .backends.torch_source import emit_source

        text = emit_source(model)
    elif as_json:
        summary = {**model.summary(), **({"search_space": space, "points_checked": checked} if space else {})}
        text = to_json(summary, indent=None if output is None else 2)
    else:
        text = model.table(depth)
        if space:
            from .experiments.space import space_text

            text += "\n" + space_text(variant.space, checked)
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
@click.option("--opset", type=int, default=None,
              help="ONNX opset version: 13 to the newest the installed onnxruntime runs (default 17).")
@click.option("--quantize", type=click.Choice(["int8", "int8-force"]), help="int8 where faster than fp32 (int8-force: always).")
@click.option("--external-data", is_flag=True,
              help="Put the weights in OUT.onnx.data beside the .onnx (automatic for models over 1 GiB of weights).")
@click.option("--simplify", is_flag=True, help="Simplify the graph with onnxslim; kept only if it verifies.")
@click.option("--json", "as_json", is_flag=True, help="Print the export report as one JSON object.")
@set_option
@spec_options
@handle_errors
def export_command(spec, weights, output, opset, quantize, external_data, simplify, as_json, assignments, plugins,
                   max_params, max_activation_memory):
    """Export SPEC to ONNX, verified against PyTorch (nothing is written when the check fails)."""
    require_extra("train", *EXPORT, needed_by="specc export")
    model = load_model(spec, plugins, max_params, max_activation_memory, assignments)
    report = model.export(output, weights=weights, opset=opset, quantize=quantize, external_data=external_data, simplify=simplify)
    click.echo(to_json(_with_warnings(report.to_dict(), model)) if as_json else report.render())


@main.command("predict")
@click.argument("model_file", metavar="MODEL.onnx", type=click.Path(exists=True, dir_okay=False))
@click.argument("inputs", metavar="INPUT", nargs=-1, required=True)
@click.option("--top", "top", type=click.IntRange(min=1), default=3, show_default=True, help="How many classes to show.")
@click.option("--json", "as_json", is_flag=True, help="Print the predictions as JSON.")
@click.option("-o", "--output", type=click.Path(), default=None, metavar="FILE.png|DIR",
              help="For a model whose output is a picture (segmentation mask, reconstructed image): write it as "
                   "PNG, to FILE.png for one sample, else into the folder DIR.")
@handle_errors
def predict_command(model_file, inputs, top, as_json, output):
    """Run MODEL.onnx on INPUT: a .npy/.npz file, an image file, a .txt file, or text."""
    from .predict import predict_main

    click.echo(predict_main(model_file, inputs, top, as_json, output))


@main.command("generate")
@click.argument("model_file", metavar="MODEL.onnx", type=click.Path(exists=True, dir_okay=False))
@click.argument("prompt")
@click.option("--tokens", type=click.IntRange(min=0), default=100, show_default=True, help="How many tokens to add.")
@click.option("--temperature", type=click.FloatRange(min=0), default=1.0, show_default=True,
              help="Sharpen (below 1) or flatten (above 1) the distribution; 0 takes the most probable token.")
@click.option("--top-k", type=click.IntRange(min=1), default=None, help="Sample among the k most probable tokens.")
@click.option("--seed", type=click.IntRange(min=0), default=None, help="Random seed (the same text each time).")
@handle_errors
def generate_command(model_file, prompt, tokens, temperature, top_k, seed):
    """Continue PROMPT with a language model exported by `specc export` (no torch needed)."""
    from .predict import generate_main

    click.echo(generate_main(model_file, prompt, tokens, temperature, top_k, seed))


@main.command("train")
@click.argument("spec", type=click.Path(exists=True, dir_okay=False))
@click.option("--data", type=click.Path(exists=True), default=None,
              help="Training data: .npz, x.npy (+ y.npy), .csv, an image folder, MNIST IDX (default: the spec's "
                   "data=, else the bundled digits).")
@click.option("--val-data", type=click.Path(exists=True), default=None, help="Validation data (instead of a split).")
@click.option("--epochs", type=click.IntRange(min=1), default=None, help="Epochs (default: the spec's, else 10).")
@click.option("--batch", type=click.IntRange(min=1), default=None, help="Batch size per process (default 32).")
@click.option("--lr", type=click.FloatRange(min=0, min_open=True), default=None, help="Learning rate.")
@click.option("--seed", type=click.IntRange(min=0, max=MAX_SEED), default=None,
              help="Random seed (default: the spec's, else 0).")
@click.option("--device", type=click.Choice(["auto", "cpu", "cuda"]), default="auto", show_default=True)
@click.option("--amp", type=click.Choice(["bf16", "fp16"]), default=None, help="Mixed precision (autocast).")
@click.option("--out", type=click.Path(file_okay=False), default=None,
              help="Run folder (default: runs/<model>-<time>).")
@click.option("--resume", is_flag=True, help="Continue the run in --out DIR from its checkpoint.")
@click.option("--overwrite", is_flag=True,
              help="Replace the run in --out DIR: the new run takes its place when it completes.")
@click.option("--init-from", type=click.Path(exists=True), default=None,
              help="Start from another run's weights (tensors matching by name and shape).")
@click.option("--threads", type=click.IntRange(min=1, max=THREADS_PER_CPU * cpu_count()), default=None,
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
@log_option
@set_option
@spec_options
@handle_errors
def train_command(spec, data, val_data, epochs, batch, lr, seed, device, amp, out, resume, overwrite, init_from,
                  threads, max_steps, steps_per_epoch, workers, compile_model, as_json, log, assignments, plugins,
                  max_params, max_activation_memory):
    """Train SPEC (its train section, overridden by these options); write a run folder."""
    require_extra("train", *TRAINING, needed_by="specc train")
    from .experiments.overrides import parse_assignments
    from .training import TrainingInterrupted
    from .training.tracking import RunLabels

    model = load_model(spec, plugins, max_params, max_activation_memory, assignments)
    callbacks = [RunLabels(overrides=parse_assignments(assignments)), *tracking_callbacks(log, model.name)]
    try:
        result = model.train(data=data, validation_data=val_data, epochs=epochs, batch=batch, lr=lr, seed=seed,
                             device=device, amp=amp, out=out, resume=resume, overwrite=overwrite,
                             init_from=init_from, threads=threads, max_steps=max_steps, steps_per_epoch=steps_per_epoch,
                             workers=workers, compile=compile_model, stream=sys.stderr if as_json else sys.stdout,
                             callbacks=callbacks)
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
        click.echo(to_json(_with_warnings(result.to_json(), model)))
    else:
        kept = ", ".join(f"{k} {v:.4f}" for k, v in result.metrics.items() if isinstance(v, float))
        click.echo(f"kept weights of epoch {result.best_epoch}: {kept}")
        click.echo(f"run folder: {result.run_dir}")


@main.command("tune")
@click.argument("spec", type=click.Path(exists=True, dir_okay=False))
@click.option("--trials", type=click.IntRange(min=1), required=True,
              help="Trials wanted in all (a resumed search counts those done).")
@click.option("--timeout", type=click.FloatRange(min=0, min_open=True), default=None, help="Stop starting trials after S seconds.")
@click.option("--jobs", type=click.IntRange(min=1), default=1, show_default=True, help="Trials run at once (threads).")
@click.option("--metric", default="val_loss", show_default=True, help="The logged value to optimize and prune on.")
@click.option("--out", type=click.Path(file_okay=False), required=True,
              help="The search folder: study.db, one run folder per trial, best.json.")
@click.option("--data", type=click.Path(exists=True), default=None, help="Training data (as for `specc train`).")
@click.option("--epochs", type=click.IntRange(min=1), default=None, help="Epochs per trial (default: the spec's).")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON summary as the last line of stdout.")
@log_option
@set_option
@spec_options
@handle_errors
def tune_command(spec, trials, timeout, jobs, metric, out, data, epochs, as_json, log, assignments, plugins,
                 max_params, max_activation_memory):
    """Search SPEC's choice/range/log_range values with Optuna; each trial is a run folder in --out."""
    require_extra("train", *TRAINING, needed_by="specc tune")
    from .experiments.overrides import parse_assignments, read_variant
    from .experiments.tune import tune

    variant = read_variant(spec, parse_assignments(assignments))
    result = tune(variant, trials, Path(out), timeout=timeout, jobs=jobs, metric=metric, plugins=plugins,
                  limits=limits_from(max_params, max_activation_memory), train_options={"data": data, "epochs": epochs},
                  callbacks=lambda: tracking_callbacks(log, Path(spec).stem))
    if as_json:
        click.echo(to_json(result.to_json()))
    else:
        click.echo(f"{result.trials_run} trial(s) run, {result.trials_pruned} pruned")
        if result.best_run:
            click.echo(f"best {metric} {result.best_value:.4f}: {result.best_run} "
                       + " ".join(f"{k}={v}" for k, v in result.best_params.items()))


@main.command("runs")
@click.argument("folder", type=click.Path(exists=True, file_okay=False), default="runs", required=False)
@click.option("--json", "as_json", is_flag=True, help="Print the runs as one JSON list.")
@handle_errors
def runs_command(folder, as_json):
    """List the runs under FOLDER (default runs/): spec, overrides, state, epochs, best validation metric, time."""
    from .experiments.runs import run_rows, runs_table

    rows = run_rows(Path(folder))
    click.echo(to_json(rows) if as_json else runs_table(rows))


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
    require_extra("train", *EVALUATION, needed_by="specc evaluate")
    model = load_model(spec, plugins, max_params, max_activation_memory)
    result = model.evaluate(weights, data=data, batch=batch, device=device)
    if as_json:
        click.echo(to_json(result))
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
    from .source import read_spec_file

    unformatted = []
    for spec in specs:
        source = read_spec_file(spec, normalize=False)  # CRLF or a BOM: not the canonical layout
        formatted = format_source(source, spec)
        if check:
            if formatted != source:
                unformatted.append(spec)
                click.echo(f"would reformat {spec}", err=True)
        elif write:
            if formatted != source:
                try:
                    write_text_atomic(Path(spec), formatted)
                except OSError as error:
                    raise cannot_write(spec, error) from None
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
    require_extra("lsp", *LANGUAGE_SERVER, needed_by="specc lsp")
    from .lsp.server import serve
    from .model import load_plugins

    load_plugins(plugins)
    serve(limits_from(max_params, max_activation_memory))


def run() -> None:
    """The `specc` program: `main` with the program's start-up and exit settings (start_up.py)."""
    run_program(main)


if __name__ == "__main__":  # pragma: no cover
    run()
