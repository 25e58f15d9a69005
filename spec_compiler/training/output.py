"""Where a training run is written, and how it ends there: the run-folder contract of
spec_compiler/run/folder.py as training keeps it.

- A new run into a missing or empty folder starts in the staging folder beside it (the
  spec, preprocess.json, the first checkpoint, run.json "running") and is then moved into
  place: from then on the folder holds a resumable run.
- A new run into a folder that holds a run (a finished one only with --overwrite) is built
  whole in staging and swapped in when it completes or is interrupted. A kill leaves the
  old run as it was; a diverged new run is dropped, so it never replaces trained weights.
- --resume continues the folder's run in place, under its run id.
- Only the main DDP process owns the folder and writes; the others write nothing.
"""

from __future__ import annotations

import contextlib
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Literal

from ..errors import SpecError, UsageError
from ..run import Preprocess, RunFolder, RunRecord, new_run_id
from . import checkpoint

Mode = Literal["new", "replace", "resume"]
FINISHED = ("completed", "diverged", "failed")


class RunOutput:
    """The run folder a training run writes (`folder`: the staging folder until the run is in place)."""

    def __init__(self, target: RunFolder, mode: Mode, run_id: str | None, writes: bool, note: str | None = None):
        self.target, self.mode, self.run_id, self.writes, self.note = target, mode, run_id, writes, note
        self.folder = target.staging() if writes and mode != "resume" else target

    @property
    def run_dir(self) -> Path:
        return self.target.path

    @property
    def staged(self) -> bool:
        """True while the run is built in the staging folder."""
        return self.folder is not self.target

    def start(self, spec_source: str, preprocess: Preprocess, record: RunRecord, first_checkpoint: dict) -> None:
        """A new run's first files, which make it resumable; in a missing or empty folder it
        then moves into place."""
        if not self.writes:
            return
        self.folder.write_spec(spec_source)
        self.folder.write_preprocess(preprocess)
        checkpoint.save_checkpoint(self.folder, first_checkpoint)
        self.folder.write_record(record)
        if self.mode == "new":
            self._commit()

    def write_record(self, record: RunRecord) -> None:
        if self.writes:
            self.folder.write_record(record)

    def save_checkpoint(self, state: dict) -> None:
        if self.writes:
            checkpoint.save_checkpoint(self.folder, state)

    def load_checkpoint(self) -> dict:
        return checkpoint.load_checkpoint(self.folder)

    def finish(self, weights: dict, record: RunRecord) -> None:
        """The run completed or was interrupted: its weights, then run.json; a replacing run
        is swapped in."""
        if not self.writes:
            return
        self.folder.save_weights(weights, self.run_id)
        self.folder.write_record(record)
        self._commit()

    def keep_unfinished(self) -> None:
        """Stopped hard (a second Ctrl-C): a replacing run is swapped in as it is, resumable
        from its last epoch's checkpoint."""
        if self.writes:
            self._commit()

    def diverged(self, record: RunRecord) -> str:
        """The run diverged: its folder keeps the last good checkpoint and its weights; a
        replacing run is dropped instead. Says where things are."""
        if not self.writes:
            return ""
        if self.mode == "replace":
            self.drop()
            return f"{self.run_dir} keeps its previous run (the new one is dropped)"
        state = checkpoint.load_checkpoint(self.folder)
        self.folder.save_weights(state["model"], self.run_id)
        self.folder.write_record(record)
        return (f"The last good checkpoint (end of epoch {record.epochs_run}) is kept in "
                f"{self.folder.checkpoint_file}, and its weights in {self.folder.weights_file}")

    def drop(self) -> None:
        """Remove a staging folder that was not swapped in (the folder keeps what it held)."""
        if self.writes and self.staged and self.folder.path.exists():
            shutil.rmtree(self.folder.path)

    def _commit(self) -> None:
        if self.staged:
            self.target.commit_staging(self.folder)
            self.folder = self.target


@contextlib.contextmanager
def open_output(out: str | Path | None, model_name: str, resume: bool, overwrite: bool,
                main: bool = True) -> Iterator[RunOutput]:
    """Own the run folder for the time of the block (a second process gets a clear error at
    once) and decide how this run writes it; a staging folder left unswapped is removed."""
    if resume and overwrite:
        raise UsageError("--resume continues the run in --out DIR and --overwrite replaces it: choose one")
    if out is None:
        if resume:
            raise UsageError("--resume needs --out DIR: the folder of the run to continue")
        target = RunFolder.new(model_name)
    else:
        target = RunFolder(out)
    if target.path.exists() and not target.path.is_dir():
        raise SpecError.at(None, f"{target.path} is a file, not a run folder", "pass --out with a folder")
    if not main:
        yield RunOutput(target, "resume" if resume else "new", None, writes=False)
        return
    with target.owned():
        output = RunOutput(target, *_plan(target, resume, overwrite))
        try:
            yield output
        finally:
            output.drop()


def _plan(target: RunFolder, resume: bool, overwrite: bool) -> tuple[Mode, str, bool, str | None]:
    """(mode, run id, writes, note) for a run into `target`, or a SpecError saying why not."""
    state = target.state()
    path = target.path
    if resume:
        if state == "empty":
            raise SpecError.at(None, f"{path} holds no run to resume", "pass --out with the folder of an interrupted run")
        return "resume", target.read_record().run_id, True, None
    if state == "empty":
        if target.holds_files():
            raise SpecError.at(None, f"{path} holds files that are not a specc run; nothing was changed",
                               "train into a new or empty folder")
        return "new", new_run_id(), True, None
    if state in FINISHED and not overwrite:
        raise SpecError.at(None, f"{path} holds a finished run ({state}); nothing was changed",
                           "pass --overwrite to replace it, or --resume to continue training it")
    note = None
    if state not in FINISHED:
        note = (f"note: {path} holds an unfinished run; this new run replaces it when it ends "
                "(use --resume to continue the old one instead)")
    return "replace", new_run_id(), True, note
