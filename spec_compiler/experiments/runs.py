"""`specc runs [DIR]`: the run folders under a folder, one row each (spec, overrides, state,
epochs, best validation metric, time), read only through run.json and RunFolder.state()."""

from __future__ import annotations

import math
from pathlib import Path

from ..run import RunFolder
from ..run.folder import RECORD
from ..training.callbacks import monitor_mode

MAX_DEPTH = 4  # DIR/tune/trial_001/run.json is as deep as runs are kept


def find_runs(root: Path) -> list[RunFolder]:
    """Run folders under root (root itself too), in path order; staging copies are skipped."""
    found = []
    for record in sorted(root.rglob(RECORD)):
        folder = record.parent
        depth = len(folder.relative_to(root).parts)
        if depth <= MAX_DEPTH and not any(part.startswith(".") for part in folder.relative_to(root).parts):
            found.append(RunFolder(folder))
    return found


def _best_validation(record) -> tuple[str | None, float | None]:
    """The first validation metric (else val_loss) of the kept epoch."""
    metrics = {k: v for k, v in record.final_metrics.items() if k.startswith("val_") and v is not None}
    if not metrics:
        return None, None
    name = next((k for k in metrics if k != "val_loss"), "val_loss")
    return name, metrics[name]


def run_rows(root: Path) -> list[dict]:
    rows = []
    for folder in find_runs(root):
        record = folder.read_record()
        if record is None:
            continue
        metric, value = _best_validation(record)
        overrides = {**record.overrides, **(record.trial.params if record.trial else {})}
        rows.append({"run": str(folder.path), "spec": record.spec_file, "overrides": overrides,
                     "state": "pruned" if record.trial and record.trial.pruned else folder.state(),
                     "epochs": record.epochs_run, "metric": metric, "value": value, "time_s": record.time_s})
    return rows


def runs_table(rows: list[dict]) -> str:
    """The rows as an aligned text table, best first within each metric."""
    if not rows:
        return "no runs"

    def order(row):
        value = row["value"]
        if value is None or not math.isfinite(value):
            return (row["metric"] or "", 1, 0.0)
        return (row["metric"] or "", 0, -value if monitor_mode(row["metric"]) == "max" else value)

    header = ("run", "spec", "overrides", "state", "epochs", "best val", "time")
    lines = [header]
    for row in sorted(rows, key=order):
        shown = " ".join(f"{k}={v}" for k, v in row["overrides"].items()) or "-"
        best = f"{row['metric']} {row['value']:.4f}" if row["value"] is not None else "-"
        time = f"{row['time_s']:.1f}s" if row["time_s"] is not None else "-"
        lines.append((row["run"], Path(row["spec"]).name if row["spec"] else "-", shown, row["state"],
                      str(row["epochs"]), best, time))
    widths = [max(len(line[i]) for line in lines) for i in range(len(header))]
    return "\n".join("  ".join(cell.ljust(w) for cell, w in zip(line, widths)).rstrip() for line in lines)
