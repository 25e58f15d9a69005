"""Process settings that keep the `specc` program's start-up short (bench/startup.py).

A `specc compile` spends most of its time importing (pydantic, click, lark, the layer
registry) and building schemas and parser tables: objects that live until the process
ends. The garbage collector, by default run every 700 new objects, keeps looking through
them and finds almost nothing to free: a twentieth of the process. And pydantic, when it
builds its first validator, reads every installed package's entry points to look for
pydantic plugins, which would only observe specc's own validation.

These are settings of the `specc` process only (cli.run calls `begin_start_up`);
importing spec_compiler as a library changes neither. A command that runs for long
(training, the language server) has the usual collections back before it starts.
"""

from __future__ import annotations

import gc
import os

# New objects between two young-generation collections during start-up: more than
# checking LeNet-5 makes (about 50,000), so none runs before `specc compile` ends.
START_UP_GC_THRESHOLD = 100_000

# Commands done once their spec is read and checked: they keep the start-up settings to the end.
SHORT_COMMANDS = ("compile", "draw", "fmt", "runs")

_usual_gc_thresholds: tuple[int, ...] | None = None  # set by begin_start_up() until the usual ones are back


def begin_start_up() -> None:
    """Start-up settings: few garbage collections, and no search for pydantic plugins
    (pydantic's documented PYDANTIC_DISABLE_PLUGINS, unless the user has set it)."""
    global _usual_gc_thresholds
    os.environ.setdefault("PYDANTIC_DISABLE_PLUGINS", "__all__")
    if _usual_gc_thresholds is None:
        _usual_gc_thresholds = gc.get_threshold()
        gc.set_threshold(max(_usual_gc_thresholds[0], START_UP_GC_THRESHOLD), *_usual_gc_thresholds[1:])


def command_starts(command: str | None) -> None:
    """Before a command runs: unless it is a short one, the garbage collector's usual
    thresholds again (nothing to do when begin_start_up did not run)."""
    global _usual_gc_thresholds
    if _usual_gc_thresholds is not None and command not in SHORT_COMMANDS:
        gc.set_threshold(*_usual_gc_thresholds)
        _usual_gc_thresholds = None
