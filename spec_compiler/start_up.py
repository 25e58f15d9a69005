"""Process settings that keep the `specc` program's start-up short (bench/startup.py).

A `specc compile` spends most of its time importing (pydantic, click, the parser, the
layer registry) and building schemas: objects that live until the process ends. The
garbage collector, by default run every 700 new objects, keeps looking through them and
finds almost nothing to free: a twentieth of the process. And pydantic, when it
builds its first validator, reads every installed package's entry points to look for
pydantic plugins, which would only observe specc's own validation.

These are settings of the `specc` process only (cli.run calls `run_program`);
importing spec_compiler as a library changes neither. A command that runs for long
(training, the language server) has the usual collections back before it starts.

A short command also ends at once: the interpreter's teardown (freeing every module and
object one by one) would cost it a thirtieth of its time again. Its exit handlers still
run, the ones a plugin registers included, and its output is flushed; only the teardown
is skipped (`end_at_once`, the last exit handler to run), so a file left open and never
closed is not flushed by it.
"""

from __future__ import annotations

import atexit
import gc
import os
import sys
from collections.abc import Callable

# New objects between two young-generation collections during start-up: more than
# checking LeNet-5 makes (about 50,000), so none runs before `specc compile` ends.
START_UP_GC_THRESHOLD = 100_000

# Commands done once their spec is read and checked: they keep the start-up settings to the end.
SHORT_COMMANDS = ("compile", "draw", "fmt", "runs")

_usual_gc_thresholds: tuple[int, ...] | None = None  # set by begin_start_up() until the usual ones are back
_exit_status: int | None = None  # set by ending() when a short command ends with a status
_end_at_once_registered = False


def run_program(main: Callable[[], object]) -> None:
    """Run the command line `main` as the `specc` program: with the start-up settings, then
    gc.freeze() so the interpreter's last collections skip what it built, and, for a short
    command, the quick end."""
    begin_start_up()
    try:
        main()
    except SystemExit as exit:
        ending(exit.code)
        raise
    finally:
        gc.freeze()


def begin_start_up() -> None:
    """Start-up settings: few garbage collections, and no search for pydantic plugins
    (pydantic's documented PYDANTIC_DISABLE_PLUGINS, unless the user has set it)."""
    global _usual_gc_thresholds, _end_at_once_registered
    os.environ.setdefault("PYDANTIC_DISABLE_PLUGINS", "__all__")
    if _usual_gc_thresholds is None:
        _usual_gc_thresholds = gc.get_threshold()
        gc.set_threshold(max(_usual_gc_thresholds[0], START_UP_GC_THRESHOLD), *_usual_gc_thresholds[1:])
    if not _end_at_once_registered:
        # Exit handlers run last-registered first: registered before any other (importing
        # the program registers none), this one runs last.
        atexit.register(end_at_once)
        _end_at_once_registered = True


def command_starts(command: str | None) -> None:
    """Before a command runs: unless it is a short one, the garbage collector's usual
    thresholds again (nothing to do when begin_start_up did not run)."""
    global _usual_gc_thresholds
    if _usual_gc_thresholds is not None and command not in SHORT_COMMANDS:
        gc.set_threshold(*_usual_gc_thresholds)
        _usual_gc_thresholds = None


def ending(status: object) -> None:
    """The program is about to exit with `status` (a SystemExit's code): a short command's
    process may then end at once, once the other exit handlers have run."""
    global _exit_status
    if _usual_gc_thresholds is not None and (status is None or type(status) is int):
        _exit_status = status or 0


def end_at_once() -> None:
    """After every other exit handler: flush the output and end the process, skipping the
    teardown. Not when something is left to report: output that cannot be flushed (a
    closed pipe), which the interpreter's usual exit reports."""
    if _exit_status is None:
        return
    try:
        for stream in (sys.stdout, sys.stderr):
            if stream is not None:
                stream.flush()
    except (OSError, ValueError):
        return
    os._exit(_exit_status)
