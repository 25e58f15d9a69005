"""What a run keeps in files that need torch: the resume state (checkpoint.pt, with every RNG
state, so a resumed run ends with the same weights as an uninterrupted one) and weights
(safetensors) read back for evaluation and --init-from."""

from __future__ import annotations

import io
import random
from pathlib import Path

import numpy as np
import torch
from torch import nn

from ..errors import SpecError
from ..files import write_bytes_atomic
from ..run import RunFolder

FORMAT = 2  # of checkpoint.pt's dict


def save_checkpoint(folder: RunFolder, state: dict) -> None:
    buffer = io.BytesIO()
    torch.save(state, buffer)
    write_bytes_atomic(folder.checkpoint_file, buffer.getvalue())


def load_checkpoint(folder: RunFolder) -> dict:
    path = folder.checkpoint_file
    if not path.exists():
        raise SpecError.at(None, f"{folder.path}: no {path.name} to resume from",
                           "pass --out with the folder of an interrupted run")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # noqa: BLE001 - any unreadable file is the user's data problem
        raise SpecError.at(None, f"{path}: cannot read the checkpoint: {error}") from None
    if not isinstance(state, dict) or state.get("format") != FORMAT:
        raise SpecError.at(None, f"{path}: a checkpoint of another specc version cannot be resumed",
                           "train again into this folder with --overwrite")
    return state


def rng_state() -> dict:
    kind, keys, pos, has_gauss, cached = np.random.get_state()
    state = {"torch": torch.get_rng_state(),
             "numpy": {"kind": kind, "keys": torch.from_numpy(keys.astype(np.int64)), "pos": int(pos),
                       "has_gauss": int(has_gauss), "cached": float(cached)},
             "python": random.getstate()}
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict) -> None:
    torch.set_rng_state(state["torch"])
    n = state["numpy"]
    np.random.set_state((n["kind"], n["keys"].numpy().astype(np.uint32), n["pos"], n["has_gauss"], n["cached"]))
    py = state["python"]
    random.setstate((py[0], tuple(py[1]), py[2]))
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def load_weights(file: Path) -> dict[str, torch.Tensor]:
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    try:
        return load_file(str(file))
    except (SafetensorError, OSError, ValueError) as error:
        raise SpecError.at(None, f"{file}: cannot read the weights: {error}") from None


def init_from(module: nn.Module, run: str | Path) -> str:
    """Load the tensors of another run's weights that match by name and shape; a report line."""
    _, file = RunFolder.of_weights(run)
    weights = load_weights(file)
    own = module.state_dict()
    matched = {k: v for k, v in weights.items() if k in own and tuple(own[k].shape) == tuple(v.shape)}
    shape_differs = [k for k, v in weights.items() if k in own and tuple(own[k].shape) != tuple(v.shape)]
    if not matched:
        raise SpecError.at(None, f"--init-from {run}: none of its {len(weights)} tensors matches this model "
                                 "(by name and shape)", "fine-tune from a run of a spec with the same layer names")
    module.load_state_dict(matched, strict=False)
    missing = [k for k in own if k not in matched]
    report = f"init-from {run}: loaded {len(matched)} of {len(own)} tensors"
    if shape_differs:
        report += f"; shape differs: {', '.join(shape_differs[:5])}" + ("..." if len(shape_differs) > 5 else "")
    if missing:
        report += f"; kept fresh: {', '.join(missing[:5])}" + ("..." if len(missing) > 5 else "")
    return report
