"""Judging one fuzz case: every stage a spec goes through, and what counts as wrong.

- decode and compile: a SpecError (which renders) or a model, within LIMIT_SECONDS;
- fmt: a SpecError, or a layout that is stable (formatting it again changes nothing),
  means the same (same AST without positions) and keeps every comment;
- a compiled model (`deep`): the built module holds the summary's parameter count, a
  forward pass on a random input gives the summary's output shape, `--emit torch`
  source builds the same parameters and computes the same output;
- `onnx`: the export verifies against PyTorch.

Anything else is a Finding, named by stage, exception type and the innermost
spec_compiler frame (its "site"): findings with the same name are one crash class.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import signal
import threading
import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path

from lark import Lark

from spec_compiler import SpecError, compile_source
from spec_compiler.formatter import format_source
from spec_compiler.parser import parse
from spec_compiler.source import decode_source, normalize_source

from .known import match_known

LIMIT_SECONDS = 5.0  # a compile (or fmt) taking more CPU time than this is a finding
HANG_SECONDS = 6.0  # ... and one still running after this much is interrupted
DEEP_MAX_PARAMS = 2_000_000  # larger models are only compiled (building them is slow)
DEEP_MAX_FLOPS = 50_000_000
DEEP_MAX_BYTES = 64 * 2**20  # ... and so are models whose activations (at the longest `?` length tried) are larger


class Timeout(Exception):
    """Raised inside a run that went on past HANG_SECONDS."""


@dataclass
class Finding:
    stage: str  # decode, compile, render, format, build, forward, emit, export
    error: str  # the exception's type, Timeout, Slow, or what disagreed
    site: str  # the innermost spec_compiler frame, path:function
    detail: str
    known: str | None = None  # the name of the known class it belongs to

    @property
    def key(self) -> str:
        return f"{self.stage}: {self.error} at {self.site}"


@dataclass
class Result:
    outcome: str = "compiled"  # compiled, spec_error, or finding
    seconds: float = 0.0  # CPU time of compile and fmt
    findings: list[Finding] = field(default_factory=list)

    @property
    def unknown(self) -> list[Finding]:
        return [f for f in self.findings if f.known is None]


@contextlib.contextmanager
def time_limit(seconds: float):
    """Interrupt the block with Timeout after `seconds` of CPU time (main thread only, else
    no limit). CPU time, not wall time: the machine may be busy with other work."""
    if threading.current_thread() is not threading.main_thread() or not hasattr(signal, "setitimer"):
        yield
        return

    def interrupt(signum, frame):
        raise Timeout(f"still running after {seconds:g} s of CPU time")

    previous = signal.signal(signal.SIGPROF, interrupt)
    signal.setitimer(signal.ITIMER_PROF, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_PROF, 0)
        signal.signal(signal.SIGPROF, previous)


def site_of(error: BaseException) -> str:
    """path:function of the innermost frame inside spec_compiler (else the innermost frame)."""
    frames = traceback.extract_tb(error.__traceback__)
    ours = [f for f in frames if "/spec_compiler/" in f.filename.replace("\\", "/")]
    frame = (ours or frames or [None])[-1]
    if frame is None:
        return "?"
    path = frame.filename.replace("\\", "/")
    path = path[path.rfind("/spec_compiler/") + 1:] if "/spec_compiler/" in path else Path(path).name
    return f"{path}:{frame.name}"


def _first_line(error: BaseException) -> str:
    text = str(error).strip()
    return (text.splitlines() or [""])[0][:300]


class _Run:
    def __init__(self, text: str, path: str, result: Result):
        self.text = text
        self.path = path
        self.result = result

    def finding(self, stage: str, error: str, site: str, detail: str) -> None:
        finding = Finding(stage, error, site, detail)
        finding.known = match_known(finding, self.text, self.path)
        self.result.findings.append(finding)
        self.result.outcome = "finding"

    def crash(self, stage: str, error: BaseException) -> None:
        self.finding(stage, type(error).__name__, site_of(error), _first_line(error))


def check_case(source: str | bytes, deep: bool = True, emit: bool = True, onnx: bool | str = False,
               path: str = "fuzz.spec", hang_seconds: float = HANG_SECONDS) -> Result:
    """Run one case through every stage; see the module docstring for what is checked.
    (`onnx="isolated"`: export with `specc export` in its own process; `hang_seconds`: a
    shorter limit shows a known hang sooner.)"""
    result = Result()
    if isinstance(source, bytes):
        try:
            text = decode_source(source, path)
        except SpecError as error:
            error.render()
            result.outcome = "spec_error"
            return result
        except Exception as error:  # noqa: BLE001 - a finding, not a failure of the fuzzer
            _Run(repr(source[:200]), path, result).crash("decode", error)
            return result
    else:
        text = source
    run = _Run(text, path, result)
    model = _compile(run, text, path, hang_seconds)
    _check_format(run, text, path, hang_seconds)
    if model is not None and deep and run.result.outcome != "finding":
        _check_built(run, model, emit, onnx)
    return result


def _compile(run: _Run, text: str, path: str, hang_seconds: float):
    started = time.process_time()
    model = None
    try:
        with time_limit(hang_seconds):
            model = compile_source(text, path)
            model.summary()  # what `specc compile` prints, and --json
            model.table()
    except SpecError as error:
        run.result.outcome = "spec_error"
        try:
            rendered = error.render()
            if "error:" not in rendered:
                run.finding("render", "NoMessage", "spec_compiler/errors.py:render", rendered[:200])
        except Exception as failure:  # noqa: BLE001
            run.crash("render", failure)
    except Exception as error:  # noqa: BLE001 - Timeout included
        run.crash("compile", error)
    seconds = time.process_time() - started
    run.result.seconds += seconds
    if seconds > LIMIT_SECONDS and not any(f.error == "Timeout" for f in run.result.findings):
        run.finding("compile", "Slow", "-", f"{seconds:.1f} s")
    return model


@functools.lru_cache(maxsize=1)
def _lexer() -> Lark:
    return Lark((Path(__file__).resolve().parents[2] / "grammars" / "spec.lark").read_text(encoding="utf-8"),
                parser="lalr")


def comments_of(text: str) -> list[str]:
    """Every comment in the text, found with the grammar's own lexer (independent of fmt)."""
    return [token.rstrip() for token in _lexer().lex(normalize_source(text), dont_ignore=True)
            if token.type == "COMMENT"]


def _check_format(run: _Run, text: str, path: str, hang_seconds: float) -> None:
    started = time.process_time()
    try:
        with time_limit(hang_seconds):
            formatted = format_source(text, path)
            again = format_source(formatted, path)
            before, after = _meaning(text), _meaning(formatted)
            lost = _missing(comments_of(text), comments_of(formatted))
    except SpecError:
        return
    except Exception as error:  # noqa: BLE001
        run.crash("format", error)
        return
    finally:
        seconds = time.process_time() - started
        run.result.seconds += seconds
    if seconds > LIMIT_SECONDS:
        run.finding("format", "Slow", "-", f"{seconds:.1f} s")
    if again != formatted:
        run.finding("format", "NotStable", "spec_compiler/formatter.py", "formatting twice changes the text")
    if before != after:
        run.finding("format", "MeaningChanged", "spec_compiler/formatter.py", "the formatted AST differs")
    if lost:
        run.finding("format", "CommentLost", "spec_compiler/formatter.py", f"lost {lost[:3]}")


def _meaning(text: str):
    return _strip_spans(parse(text).statements)


def _strip_spans(node):
    if isinstance(node, tuple):
        return tuple(_strip_spans(n) for n in node)
    if dataclasses.is_dataclass(node) and not isinstance(node, type):
        return (type(node).__name__,) + tuple(
            _strip_spans(getattr(node, f.name)) for f in dataclasses.fields(node) if f.name != "span")
    return node


def _missing(before: list[str], after: list[str]) -> list[str]:
    """Comments of `before` found in no comment of `after` (fmt may join the comments of a
    chain written over several lines into one: `# a  # b`)."""
    left = list(after)
    lost = []
    for comment in before:
        holder = next((i for i, text in enumerate(left) if comment in text), None)
        if holder is None:
            lost.append(comment)
        else:
            left[holder] = left[holder].replace(comment, "", 1)
    return lost


def _check_built(run: _Run, model, emit: bool, onnx: bool) -> None:
    from . import differential

    summary = model.summary()
    longest = differential.LONGEST
    inputs = model.info.inputs.values()
    activations = max(model.info.activation_bytes, 4 * sum(t.numel_estimate(longest) for t in inputs))
    if not differential.is_static(model):
        activations *= longest
    if summary["total_params"] > DEEP_MAX_PARAMS or summary["flops"] > DEEP_MAX_FLOPS or \
            differential.BATCH * activations > DEEP_MAX_BYTES:
        return
    checks = [("build", differential.check_build)] + ([("emit", differential.check_emitted)] if emit else [])
    for stage, check in checks:
        try:
            with time_limit(60):
                problem = check(model)
        except Exception as error:  # noqa: BLE001
            run.crash(stage, error)
            return
        if problem:
            run.finding(stage, problem[0], problem[1], problem[2])
            return
    if onnx:
        from .export_check import export_in_process, export_isolated

        problem = export_isolated(run.text) if onnx == "isolated" else export_in_process(model, site_of, _first_line)
        if problem:
            run.finding("export", *problem)


def compile_check(text: str):
    """The generator's check, under the same time limit: the outputs' types by name, None,
    or Trouble."""
    from .generate import SMALL, Trouble

    try:
        with time_limit(HANG_SECONDS):
            return compile_source(text, "generated.spec", limits=SMALL).info.outputs
    except SpecError:
        return None
    except Exception:  # noqa: BLE001 - Timeout included: the oracle will classify it
        raise Trouble(text) from None
