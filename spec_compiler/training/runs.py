"""The run folder (docs/CONTRACTS.md): every file written atomically.

    runs/<model>-<YYYYmmdd-HHMMSS>/   (or --out DIR)
      weights.safetensors   the kept weights (SpecModule state_dict)
      model.spec            the spec source
      run.json              resolved config, plugins, specc version, input, epochs, metrics
      preprocess.json       input kind, labels, normalization, image size, text vocabulary
      metrics.csv           one row per epoch
      curves.png            loss and metric curves
      checkpoint.pt         resume state (weights, optimizer, scheduler, RNG, epoch)
"""

from __future__ import annotations

import csv
import io
import json
import math
import time
from pathlib import Path

import torch

from ..errors import SpecError
from ..files import atomic_path, write_bytes_atomic, write_text_atomic

WEIGHTS = "weights.safetensors"
CHECKPOINT = "checkpoint.pt"


def new_run_dir(model_name: str, root: Path = Path("runs")) -> Path:
    stamp = time.strftime("%Y%m%d-%H%M%S")
    base = root / f"{model_name}-{stamp}"
    path, n = base, 1
    while path.exists():
        n += 1
        path = base.with_name(f"{base.name}-{n}")
    return path


def _json_safe(value):
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_json_safe(v) for v in value]
    return value


def write_json(path: Path, data: dict) -> None:
    write_text_atomic(path, json.dumps(_json_safe(data), indent=2) + "\n")


def save_weights(path: Path, state: dict[str, torch.Tensor]) -> None:
    from safetensors.torch import save_file

    tensors = {k: v.detach().to("cpu").contiguous().clone() for k, v in state.items()}
    with atomic_path(path) as temporary:
        save_file(tensors, str(temporary), metadata={"format": "pt"})


def weights_path(run: str | Path) -> Path:
    path = Path(run)
    if path.is_dir():
        path = path / WEIGHTS
    if not path.exists():
        raise SpecError.at(None, f"{run}: no {WEIGHTS} here", "pass a run folder written by `specc train`")
    return path


def load_weights(run: str | Path) -> dict[str, torch.Tensor]:
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    path = weights_path(run)
    try:
        return load_file(str(path))
    except (SafetensorError, OSError, ValueError) as error:
        raise SpecError.at(None, f"{path}: cannot read the weights: {error}") from None


def save_checkpoint(path: Path, state: dict) -> None:
    buffer = io.BytesIO()
    torch.save(state, buffer)
    write_bytes_atomic(path, buffer.getvalue())


def load_checkpoint(path: Path) -> dict:
    if not path.exists():
        raise SpecError.at(None, f"{path.parent}: no {CHECKPOINT} to resume from",
                           "pass --out with the folder of an interrupted run")
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # noqa: BLE001 - any unreadable file is the user's data problem
        raise SpecError.at(None, f"{path}: cannot read the checkpoint: {error}") from None


def write_metrics_csv(path: Path, history: list[dict]) -> None:
    columns: list[str] = []
    for row in history:
        for key in row:
            if key not in columns:
                columns.append(key)
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=columns, lineterminator="\n")
    writer.writeheader()
    for row in history:
        writer.writerow({k: (f"{v:.6g}" if isinstance(v, float) else v) for k, v in row.items()})
    write_text_atomic(path, out.getvalue())


def write_curves(path: Path, history: list[dict], title: str) -> None:
    if not history:
        return
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    epochs = [row["epoch"] for row in history]
    skip = {"epoch", "lr", "time_s"}
    names = [k for k in history[0] if k not in skip and not k.startswith("val_")]
    metric_names = [n for n in names if n != "loss"]
    panels = 1 + (1 if metric_names else 0)
    fig, axes = plt.subplots(1, panels, figsize=(5 * panels, 3.6), squeeze=False)
    for ax, keys in zip(axes[0], (["loss"], metric_names)):
        for key in keys:
            for prefix, style in (("", "-"), ("val_", "--")):
                name = prefix + key
                values = [row.get(name) for row in history]
                if any(isinstance(v, float) and math.isfinite(v) for v in values):
                    ax.plot(epochs, [v if isinstance(v, float) else float("nan") for v in values], style,
                            marker="o", markersize=3, label=name)
        ax.set_xlabel("epoch")
        ax.grid(alpha=0.3)
        ax.legend()
    axes[0][0].set_title(f"{title}: loss")
    if metric_names:
        axes[0][1].set_title("metrics")
    fig.tight_layout()
    with atomic_path(path) as temporary:
        fig.savefig(temporary, format="png", dpi=100)
    plt.close(fig)
