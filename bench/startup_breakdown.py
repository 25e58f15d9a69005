"""Where the CPU time of `specc compile specs/lenet5.spec` goes, phase by phase.

    python bench/startup_breakdown.py [--repeats N]

A fresh process does what the `specc` program does (cli.run's start-up settings, then the
compile command) in phases, and reads its CPU clock between them; each phase's figure is
its least over N processes (noise only adds). The phases, in order:

- interpreter: Python's own start (site, encodings) up to the first line;
- click, pydantic: importing each (pydantic with the modules its models need);
- parser: spec_compiler/generated_parser.py, lark's stand-alone parser with its tables;
- importlib.metadata: pydantic imports it when it builds its first validator, for its
  plugin loader (even with plugins turned off, which only skips reading entry points);
- spec_compiler.cli: the command line's module;
- compile (first): the compile command in this process: the lazy imports of the
  compiler (parser, elaboration, inference, the layer modules the spec uses: their
  dataclasses and pydantic models), the parser built from its generated tables, the
  validators of the kinds used, and the work itself;
- compile (again): the same command once more in the same process: the work alone;
- exit: the child's whole CPU time less what it measured inside: its exit handlers, then
  the process ends at once, as a short command run by cli.run does (start_up.end_at_once).

bench/startup.py gives the whole-process figures and the side-by-side ratios.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from startup import LENET, ROOT, SPECC, environment, run

PHASES = """
import time
marks = [("interpreter", time.process_time())]
def mark(name):
    marks.append((name, time.process_time()))
from spec_compiler import start_up
start_up.begin_start_up()
import click; mark("click")
import pydantic; from pydantic import BaseModel, Field, TypeAdapter; import pydantic.types, pydantic.json_schema
mark("pydantic")
import spec_compiler.generated_parser; mark("parser")
import importlib.metadata; mark("importlib.metadata")
import spec_compiler.cli as cli; mark("spec_compiler.cli")
import contextlib, io, sys
for phase in ("compile (first)", "compile (again)"):
    with contextlib.redirect_stdout(io.StringIO()):
        try:
            cli.main(["compile", sys.argv[1]])
        except SystemExit:
            pass
    mark(phase)
phases = {name: now - before for (_, before), (name, now) in zip(marks, marks[1:])}
import json  # not before: specc compile does not import it
print(json.dumps({"interpreter": marks[0][1], **phases, "inside": marks[-1][1]}))
start_up.ending(0)
import gc
gc.freeze()  # as cli.run ends
"""


def one_process(env: dict[str, str]) -> dict[str, float]:
    """The phases of one fresh process, in seconds of CPU time, with its exit."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    result = subprocess.run([sys.executable, "-P", "-c", PHASES, str(LENET)], capture_output=True, text=True,
                            cwd=ROOT, env=env)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if result.returncode != 0:
        raise SystemExit(f"the breakdown process failed:\n{result.stderr}")
    phases = json.loads(result.stdout.splitlines()[-1])
    total = after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime
    phases["exit"] = total - phases.pop("inside")
    return phases


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=10, help="processes (each phase's least is kept)")
    args = parser.parse_args()
    env = environment()
    run([*SPECC, "compile", str(LENET)], env)  # bytecode written, as after a first run
    runs = [one_process(env) for _ in range(args.repeats)]
    best = {name: min(run[name] for run in runs) for name in runs[0]}
    for name, seconds in best.items():
        print(f"{name:<20} {seconds * 1000:6.1f} ms")
    print(f"{'sum of the least':<20} {sum(best.values()) * 1000:6.1f} ms  (CPU; least of {args.repeats} processes each)")


if __name__ == "__main__":
    main()
