"""Start-up benchmark: how long a fresh process takes to `import spec_compiler` and to run
`specc compile specs/lenet5.spec`, against a torchinfo summary of the same model.

    python bench/startup.py [--repeats N] [--json OUT.json]

Every figure is a whole process, the best of N runs (noise on a shared machine only adds),
as wall time and as CPU time (user + system of the child; a loaded machine inflates wall
time far more than CPU time). Rows:

- python: `python -c pass`, the interpreter alone;
- dependencies: importing what `specc compile` cannot do without (pydantic with the parts
  its models use, click, and importlib.metadata, which pydantic loads to look for
  plugins when it builds its first validator): the floor under specc's own work;
- import spec_compiler: `python -c "import spec_compiler"` (names load on first use);
- specc compile: `specc compile specs/lenet5.spec` (what the console script runs), its
  bytecode written as after a first run;
- torchinfo: a process that imports torch and torchinfo, builds LeNet-5 by hand and prints
  torchinfo.summary of it (bench/compile_speed.py), when the `bench` extra is installed.

With `--against CHECKOUT` (another copy of the repository, e.g. main's) every row is also
run from that checkout, interleaved round by round with this one (bench/timing.py), and
reported as medians and the per-round ratio: the side-by-side figure a busy machine allows.

Targets (issue 13): compile within 150 ms, import within 100 ms, on an unloaded machine.
Bytecode is written first (one run without PYTHONDONTWRITEBYTECODE), as an installed
package has it: compiling the sources on every start is not start-up.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from compile_speed import TORCHINFO_PROCESS  # a sibling benchmark script
from timing import best_of, interleaved, median, paired_ratio

from spec_compiler.files import write_text_atomic

ROOT = Path(__file__).resolve().parent.parent
LENET = ROOT / "specs" / "lenet5.spec"
TARGETS_S = {"import spec_compiler": 0.100, "specc compile": 0.150}
# What the `specc` console script runs: pyproject's entry point (`run`; `main` in checkouts
# older than it), with -P so that PYTHONPATH, not the current folder, says which checkout.
SPECC = [sys.executable, "-P", "-c", "import spec_compiler.cli as cli; (getattr(cli, 'run', None) or cli.main)()"]
DEPENDENCIES = ("from pydantic import BaseModel, Field, TypeAdapter; import pydantic.types, pydantic.json_schema; "
                "import click, importlib.metadata")


def environment(checkout: Path = ROOT) -> dict[str, str]:
    """This environment, with `checkout` importable (first on the path) and bytecode allowed."""
    env = {key: value for key, value in os.environ.items() if key != "PYTHONDONTWRITEBYTECODE"}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(checkout), env.get("PYTHONPATH")]))
    env["PYTHONWARNINGS"] = "ignore"
    return env


def run(command: list[str], env: dict[str, str]) -> None:
    result = subprocess.run(command, capture_output=True, text=True, cwd=ROOT, env=env)
    if result.returncode != 0:
        raise SystemExit(f"{' '.join(command)} failed:\n{result.stderr}")


def cpu_of(command: list[str], env: dict[str, str]) -> float:
    """CPU time (user + system, seconds) of one run of `command`."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    run(command, env)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime


def best_cpu(command: list[str], env: dict[str, str], repeats: int) -> float:
    """The least CPU time (user + system, seconds) of `repeats` runs of `command`."""
    return min(cpu_of(command, env) for _ in range(repeats))


def commands(folder: Path) -> dict[str, list[str]]:
    rows = {
        "python": [sys.executable, "-c", "pass"],
        "dependencies": [sys.executable, "-c", DEPENDENCIES],
        "import spec_compiler": [sys.executable, "-c", "import spec_compiler"],
        "specc compile": [*SPECC, "compile", str(LENET)],
    }
    if importlib.util.find_spec("torchinfo") and importlib.util.find_spec("torch"):
        script = folder / "torchinfo_summary.py"
        script.write_text(TORCHINFO_PROCESS, encoding="utf-8")
        rows["torchinfo"] = [sys.executable, str(script), "lenet5"]
    return rows


def bench(repeats: int) -> dict:
    env = environment()
    results = {}
    with tempfile.TemporaryDirectory() as folder:
        for name, command in commands(Path(folder)).items():
            run(command, env)  # writes bytecode
            wall = best_of(lambda: run(command, env), repeats)
            results[name] = {"wall_s": wall, "cpu_s": best_cpu(command, env, repeats)}
    return results


def side_by_side(against: Path, rounds: int) -> dict:
    """Each spec_compiler row from this checkout and from `against`, interleaved: medians of
    CPU and wall time, and the median per-round ratio this / against."""
    envs = {"this": environment(), "against": environment(against)}
    results = {}
    with tempfile.TemporaryDirectory() as folder:
        rows = commands(Path(folder))
        for name in ("import spec_compiler", "specc compile"):
            command = rows[name]

            def runner(env):
                def timed() -> tuple[float, float]:
                    start = time.perf_counter()
                    cpu = cpu_of(command, env)
                    return time.perf_counter() - start, cpu
                return timed

            samples = interleaved({side: runner(env) for side, env in envs.items()}, rounds)
            row = {}
            for clock, index in (("wall", 0), ("cpu", 1)):
                this, other = ([t[index] for t in samples[side]] for side in ("this", "against"))
                row[f"{clock}_s"] = median(this)
                row[f"against_{clock}_s"] = median(other)
                row[f"{clock}_ratio"] = paired_ratio(this, other)
            results[name] = row
    return results


def side_by_side_report(results: dict, against: Path, rounds: int) -> str:
    lines = [f"side by side with {against} ({rounds} interleaved rounds, medians; ratio this / that)",
             f"{'process':<22} {'cpu':>9} {'that cpu':>9} {'ratio':>6}   {'wall':>9} {'that wall':>9} {'ratio':>6}"]
    for name, r in results.items():
        lines.append(f"{name:<22} {r['cpu_s'] * 1000:>7.1f}ms {r['against_cpu_s'] * 1000:>7.1f}ms {r['cpu_ratio']:>6.3f}"
                     f"   {r['wall_s'] * 1000:>7.1f}ms {r['against_wall_s'] * 1000:>7.1f}ms {r['wall_ratio']:>6.3f}")
    lines.append(f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs")
    return "\n".join(lines)


def report(results: dict) -> str:
    lines = [f"{'process':<22} {'wall':>9} {'cpu':>9}  target", "-" * 52]
    for name, r in results.items():
        target = TARGETS_S.get(name)
        mark = f"{target * 1000:.0f} ms" if target else ""
        lines.append(f"{name:<22} {r['wall_s'] * 1000:>7.1f}ms {r['cpu_s'] * 1000:>7.1f}ms  {mark}")
    if "torchinfo" in results:
        compile_s, torchinfo_s = results["specc compile"], results["torchinfo"]
        lines.append(f"torchinfo / specc compile: {torchinfo_s['wall_s'] / compile_s['wall_s']:.1f}x wall, "
                     f"{torchinfo_s['cpu_s'] / compile_s['cpu_s']:.1f}x cpu")
    lines.append(f"best of the repeats; load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs "
                 "(under load, CPU time is the steadier figure)")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=10, help="runs per measurement (the best is kept)")
    parser.add_argument("--json", type=Path, help="also write the figures to this JSON file")
    parser.add_argument("--against", type=Path, metavar="CHECKOUT",
                        help="also run spec_compiler from this checkout, interleaved, and report the ratios")
    parser.add_argument("--rounds", type=int, default=20, help="interleaved rounds of --against")
    args = parser.parse_args()
    started = time.strftime("%Y-%m-%d %H:%M:%S")
    results = bench(args.repeats)
    print(report(results))
    if args.against:
        results["side_by_side"] = side_by_side(args.against.resolve(), args.rounds)
        print(side_by_side_report(results["side_by_side"], args.against, args.rounds))
    if args.json:
        write_text_atomic(args.json, json.dumps({"python": sys.version.split()[0], "cpus": os.cpu_count(),
                                                 "started": started, "load_average": os.getloadavg()[0],
                                                 "statistic": "best of repeats", "results": results}, indent=2) + "\n")


if __name__ == "__main__":
    main()
