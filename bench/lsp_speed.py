"""Language-server speed: how long `specc lsp` takes to re-check a 1,000-layer document
after an edit and publish its diagnostics, against a whole `specc compile` of the file.

    python bench/lsp_speed.py [--repeats N] [--json OUT.json]

In process, through the server's own JSON-RPC handling (pygls' protocol with a writer
that records what would go to the editor), two series of incremental `didChange` edits:
one line's text changed back and forth between a valid spec and one with a shape error
(so every edit changes the diagnostics), and a line inserted near the top and deleted
again (so every statement below moves). The time runs from the message's arrival to the
written `publishDiagnostics`. An edit that leaves the text unchanged must publish nothing.
The whole-process figure is `specc compile FILE` as a subprocess (interpreter start,
imports, parse, check, table). Needs the `lsp` extra.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from compile_speed import deep_spec_text, specc_command  # a sibling benchmark script
from timing import best_of, median

from spec_compiler.inference import Limits
from spec_compiler.lsp.server import create_server

BUDGET_S = 0.100  # the bound for re-check and publish
URI = "file:///bench/deep1000.spec"


class _Recorder:
    """Stands in for stdout: keeps what the server sends."""

    def __init__(self):
        self.sent: list[bytes] = []

    def write(self, data: bytes) -> None:
        self.sent.append(data)


class InProcessServer:
    def __init__(self):
        self.server = create_server(Limits())
        self.output = _Recorder()
        self.server.protocol.set_writer(self.output)
        self.next_id = 0

    def send(self, method: str, params: dict, request: bool = False) -> None:
        message = {"jsonrpc": "2.0", "method": method, "params": params}
        if request:
            self.next_id += 1
            message["id"] = self.next_id
        protocol = self.server.protocol
        protocol.handle_message(json.loads(json.dumps(message), object_hook=protocol.structure_message))

    def published(self) -> list[dict]:
        found = [json.loads(data.split(b"\r\n\r\n", 1)[1]) for data in self.output.sent]
        self.output.sent.clear()
        return [m["params"] for m in found if m.get("method") == "textDocument/publishDiagnostics"]


def _edit(line: int, old: str, new: str, version: int) -> dict:
    return {"textDocument": {"uri": URI, "version": version},
            "contentChanges": [{"range": {"start": {"line": line, "character": 0},
                                          "end": {"line": line, "character": len(old)}}, "text": new}]}


def _timed_edits(server: InProcessServer, edits: list[tuple[dict, bool]]) -> list[float]:
    """Send each (didChange params, expect errors) and time it until diagnostics are written."""
    times = []
    for params, broken in edits:
        start = time.perf_counter()
        server.send("textDocument/didChange", params)
        (published,) = server.published()
        times.append(time.perf_counter() - start)
        assert published["version"] == params["textDocument"]["version"]
        assert bool(published["diagnostics"]) == broken
    return times


def bench(repeats: int) -> dict:
    text = deep_spec_text()
    lines = text.split("\n")
    head = next(i for i, line in enumerate(lines) if line.startswith("global_avgpool"))
    valid, broken = lines[head], "relu"  # then `dense` gets an image: a shape error at the last line
    server = InProcessServer()
    server.send("initialize", {"processId": None, "rootUri": None, "capabilities": {}}, request=True)
    server.send("initialized", {})
    server.send("textDocument/didOpen", {"textDocument": {"uri": URI, "languageId": "spec", "version": 1,
                                                          "text": text}})
    assert server.published()[0]["diagnostics"] == []
    version = 1
    in_line = []  # change one line's text: the global pooling before the head, back and forth
    for _ in range(repeats):
        in_line += [(_edit(head, valid, broken, version + 1), True), (_edit(head, broken, valid, version + 2), False)]
        version += 2
    line_times = _timed_edits(server, in_line)
    moving = []  # insert a line near the top (every later statement moves down), then delete it
    for _ in range(repeats):
        moving += [(_edit(3, "", "relu\n", version + 1), False),
                   (_edit_range(3, 0, 4, 0, "", version + 2), False)]
        version += 2
    moving_times = _timed_edits(server, moving)
    checks = server.server.checker.checks
    start = time.perf_counter()
    server.send("textDocument/didChange", _edit(head, valid, valid, version + 1))
    unchanged_s = time.perf_counter() - start
    assert server.published() == [] and server.server.checker.checks == checks

    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "deep1000.spec"
        path.write_text(text, encoding="utf-8")
        compile_s = best_of(lambda: subprocess.run([*specc_command(), "compile", str(path)], check=True,
                                                   capture_output=True, env={**os.environ, "PYTHONWARNINGS": "ignore"}),
                            repeats)
    series = {}
    for name, times in (("edit_within_a_line", line_times), ("insert_or_delete_a_line", moving_times)):
        median_s = median(times)
        series[name] = {"edits": len(times), "best_s": min(times), "median_s": median_s, "worst_s": max(times),
                        "ratio": compile_s / median_s, "within_budget": median_s <= BUDGET_S}
    return {"layers": 1002, "whole_process_compile_s": compile_s, "unchanged_edit_s": unchanged_s, **series}


def _edit_range(line: int, character: int, end_line: int, end_character: int, text: str, version: int) -> dict:
    return {"textDocument": {"uri": URI, "version": version},
            "contentChanges": [{"range": {"start": {"line": line, "character": character},
                                          "end": {"line": end_line, "character": end_character}}, "text": text}]}


def report(r: dict) -> str:
    lines = [f"1,000-layer spec ({r['layers']} layers): re-check + publish diagnostics after an edit, in process"]
    for name in ("edit_within_a_line", "insert_or_delete_a_line"):
        t = r[name]
        lines.append(f"  {name.replace('_', ' '):<26} best {t['best_s'] * 1000:6.1f} ms  median "
                     f"{t['median_s'] * 1000:6.1f} ms  worst {t['worst_s'] * 1000:6.1f} ms  ({t['edits']} edits; "
                     f"{'within' if t['within_budget'] else 'OVER'} the {BUDGET_S * 1000:.0f} ms budget; "
                     f"{t['ratio']:.1f}x faster than a whole compile)")
    lines.append(f"  edit that leaves the text unchanged: {r['unchanged_edit_s'] * 1000:.2f} ms, nothing re-checked "
                 "or published")
    lines.append(f"  whole `specc compile` process: {r['whole_process_compile_s'] * 1000:.1f} ms (best)")
    lines.append("ratio = whole-process compile time / median re-check time")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=10, help="edit pairs (and compile runs) to time")
    parser.add_argument("--json", type=Path, help="also write the figures to this JSON file")
    args = parser.parse_args()
    results = bench(args.repeats)
    print(report(results))
    if args.json:
        args.json.write_text(json.dumps({"python": sys.version.split()[0], "cpus": os.cpu_count(),
                                         "results": results}, indent=2) + "\n")


if __name__ == "__main__":
    main()
