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
    if output:
        from .files import write_text_atomic

        write_text_atomic(Path(output), text + "\n")
        click.echo(f"wrote {output}", err=True)
    else:
        click.echo(text)


@main.command("draw")
@click.argument("spec", type=click.Path(exists=True, dir_okay=False))
@click.option("--format", "fmt", type=click.Choice(["dot", "mermaid"]), default=None,
              help="Graphviz DOT or Mermaid (default: from the -o suffix, else dot).")
@click.option("-o", "--output", type=click.Path(dir_okay=False), help="Write to this file (.dot, .gv or .mmd).")
@spec_options
@handle_errors
def draw_command(spec, fmt, output, plugins, max_params, max_activation_memory):
    """Draw SPEC's layer graph as Graphviz DOT or Mermaid text."""
    from .backends.graph import to_dot, to_mermaid

    model = load_model(spec, plugins, max_params, max_activation_memory)
    if fmt is None:
        fmt = "mermaid" if output and output.endswith((".mmd", ".mermaid")) else "dot"
    text = to_mermaid(model.info) if fmt == "mermaid" else to_dot(model.info)
    if output:
        from .files import write_text_atomic

        write_text_atomic(Path(output), text + "\n")
        click.echo(f"wrote {output}", err=True)
    else:
        click.echo(text)


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


if __name__ == "__main__":  # pragma: no cover
    main()
