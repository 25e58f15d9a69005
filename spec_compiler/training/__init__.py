"""Training: `specc train` / `Model.train()` and `specc evaluate` / `Model.evaluate()`.

Importing this package does not import torch (the train section's schemas live in
options/, and `specc compile` checks them); the modules that train do.

- target.py, readers.py, data.py: what the spec expects; the file formats; adaptation
  of the data to the spec's input and output, with checks;
- dataset.py (samples in memory or read from disk by rows), dataset_files.py and
  dataset_csv.py (columns on disk), dataset_loader.py (the rows of each step, DataLoader
  workers): data larger than memory;
- options/: every loss, optimizer, schedule, metric, augmentation and normalization,
  each schema beside its implementation;
- prepare.py: a run's data (split, vocabulary, normalization) and its preprocess record;
- overrides.py: Model.train() keywords and command-line options over the train section;
- fit.py: the fit loop; compiling.py: --compile and channels_last; callbacks.py: what
  happens around it (early stopping, plateau, checkpoints, logs); progress.py: bars and
  lines; scoring.py: loss and metrics over data;
- output.py: where a run is written (the run-folder contract of spec_compiler/run/);
  checkpoint.py: resume state, RNG state, weights;
- multitask.py: what is per output when a graph spec trains (its .npz, each output's loss,
  weight and metric), through the same fit loop;
- ddp.py: torch.distributed under torchrun; evaluate.py: evaluation of a run.
"""

from __future__ import annotations

import importlib

# Imported on first use (PEP 562): `specc compile` reads the train section's schemas from
# options/ and callbacks.py, and must not pay for the run folder and its records.
LAZY_NAMES = {"Callback": "callbacks", "TrainResult": "result", "TrainingInterrupted": "result"}

__all__ = ["Callback", "TrainResult", "TrainingInterrupted"]


def __getattr__(name: str):
    module = LAZY_NAMES.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f".{module}", __name__), name)
    globals()[name] = value
    return value
